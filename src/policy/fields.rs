//! Reading a Lua table into typed fields, collecting every error instead of stopping at the
//! first, and naming the keys that were not understood.

use crate::model::{Argv, ModelError, Origin, RunAs};
use mlua::{Function, Table, Value};

/// One declaration's table being read. Every key the reader asks for is recorded, so that
/// `finish` can list exactly the valid keys when it meets an unknown one.
///
/// The table's keys are read once, when the reader is made: asking the table for each of a
/// declaration's thirty-odd possible keys made a Lua string of every key name, most of them
/// absent, and that was most of the cost of loading a policy with thousands of services.
pub struct Fields<'e> {
    table: Table,
    keys: Vec<Key>,
    /// More keys than [`KEPT`]: values past the first ones are read from the table when asked.
    overflow: bool,
    what: String,
    pub origin: Origin,
    asked: Vec<&'static str>,
    pub errs: &'e mut Vec<ModelError>,
}

/// A key of the table, as `finish` names it, and its value until it is asked for.
struct Key {
    name: String,
    /// A string key (a number key may print as "[1]" but is never asked for).
    string: bool,
    /// Taken by the first reader; one that asks again reads the table.
    value: Option<Value>,
    /// Some reader asked for it: not an unknown key.
    asked: bool,
}

/// Values kept per table; past this a table is read key by key. Each kept value holds a slot
/// of the interpreter's reference stack, which a table with a million keys would exhaust.
const KEPT: usize = 64;

/// Room for the keys a declaration's reader asks for (a service asks about forty): one
/// allocation instead of growing.
const ASKED: usize = 48;

/// The ids of `user` (and `group`, else the user's own group), from the host's user database.
pub fn run_as(user: &str, group: Option<&str>) -> Result<RunAs, String> {
    use nix::unistd::{Group, User};
    let u = User::from_name(user).map_err(|e| format!("user '{user}': {e}"))?;
    let u = u.ok_or_else(|| format!("user '{user}' is not a user of this host"))?;
    let gid = match group {
        None => u.gid,
        Some(g) => {
            let found = Group::from_name(g).map_err(|e| format!("group '{g}': {e}"))?;
            found.ok_or_else(|| format!("group '{g}' is not a group of this host"))?.gid
        }
    };
    Ok(RunAs { uid: u.uid.as_raw(), gid: gid.as_raw() })
}

pub fn type_name(v: &Value) -> &'static str {
    v.type_name()
}

impl<'e> Fields<'e> {
    pub fn new(table: Table, what: impl Into<String>, origin: Origin, errs: &'e mut Vec<ModelError>) -> Fields<'e> {
        let mut keys = Vec::new();
        let mut overflow = false;
        // Raw, as the reads were: no __pairs or __index of the policy's runs here.
        let read = table.for_each::<Value, Value>(|k, v| {
            let keep = keys.len() < KEPT;
            overflow |= !keep;
            let (name, string) = (key_name(&k), matches!(k, Value::String(_)));
            keys.push(Key { name, string, value: (keep && string).then_some(v), asked: false });
            Ok(())
        });
        if read.is_err() {
            // Cannot happen (a raw walk of the table's own keys); read key by key then, and
            // leave unknown keys unreported.
            keys.clear();
            overflow = true;
        }
        Fields { table, keys, overflow, what: what.into(), origin, asked: Vec::with_capacity(ASKED), errs }
    }

    /// The fields of a table inside this one, named "<what> <label>" in errors, which go to
    /// the same list.
    pub fn nested(&mut self, table: Table, label: &str) -> Fields<'_> {
        Fields::new(table, format!("{} {label}", self.what), self.origin.clone(), self.errs)
    }

    /// The fields of the table at `key`: None when it is absent, or (reported) when it is not
    /// a table; `shape` says what it should be.
    pub fn table(&mut self, key: &'static str, shape: &str) -> Option<Fields<'_>> {
        match self.value(key) {
            Value::Nil => None,
            Value::Table(t) => Some(self.nested(t, key)),
            v => {
                self.wrong_type(key, shape, &v);
                None
            }
        }
    }

    /// Report a required key that is absent (a present but bad value was reported already).
    pub fn require<T>(&mut self, key: &str, v: &Option<T>, hint: &str) {
        // Absent: not among the keys read, and (if they could not all be read) not in the table.
        let absent = entry(&mut self.keys, key).is_none() && (!self.overflow || matches!(self.table.raw_get::<Value>(key), Ok(Value::Nil)));
        if v.is_none() && absent {
            self.error(format!("{key} is required ({hint})"));
        }
    }

    pub fn error(&mut self, msg: impl AsRef<str>) {
        let m = format!("{}: {}", self.what, msg.as_ref());
        self.errs.push(ModelError::new(&self.origin, m));
    }

    /// The raw value of `key` (nil when absent).
    pub fn value(&mut self, key: &'static str) -> Value {
        self.asked.push(key);
        self.get(key)
    }

    fn get(&mut self, key: &str) -> Value {
        let kept = match entry(&mut self.keys, key) {
            Some(k) => {
                k.asked = true;
                k.value.take()
            }
            None if !self.overflow => return Value::Nil,
            None => None,
        };
        kept.unwrap_or_else(|| self.table.raw_get::<Value>(key).unwrap_or(Value::Nil))
    }

    fn wrong_type(&mut self, key: &str, want: &str, got: &Value) {
        self.error(format!("{key} must be {want}, not a {}", type_name(got)));
    }

    pub fn string(&mut self, key: &'static str) -> Option<String> {
        match self.value(key) {
            Value::Nil => None,
            Value::String(s) => Some(s.to_string_lossy()),
            v => {
                self.wrong_type(key, "a string", &v);
                None
            }
        }
    }

    pub fn boolean(&mut self, key: &'static str) -> Option<bool> {
        match self.value(key) {
            Value::Nil => None,
            Value::Boolean(b) => Some(b),
            v => {
                self.wrong_type(key, "true or false", &v);
                None
            }
        }
    }

    pub fn flag(&mut self, key: &'static str) -> bool {
        self.boolean(key).unwrap_or(false)
    }

    /// A number in `lo..=hi`.
    pub fn number(&mut self, key: &'static str, lo: f64, hi: f64) -> Option<f64> {
        let v = self.value(key);
        let n = match v {
            Value::Nil => return None,
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            v => {
                self.wrong_type(key, "a number", &v);
                return None;
            }
        };
        if !(lo..=hi).contains(&n) || n.is_nan() {
            self.error(format!("{key} = {n} is out of range ({lo}..{hi})"));
            return None;
        }
        Some(n)
    }

    /// A whole number in `lo..=hi`.
    pub fn integer(&mut self, key: &'static str, lo: i64, hi: i64) -> Option<i64> {
        let v = self.value(key);
        int_value(&v, key, lo, hi).unwrap_or_else(|e| {
            if let Some(e) = e {
                self.error(e);
            }
            None
        })
    }

    pub fn function(&mut self, key: &'static str) -> Option<Function> {
        match self.value(key) {
            Value::Nil => None,
            Value::Function(f) => Some(f),
            v => {
                self.wrong_type(key, "a function", &v);
                None
            }
        }
    }

    /// A list of strings (a single string is accepted as a list of one).
    pub fn strings(&mut self, key: &'static str) -> Option<Vec<String>> {
        let v = self.value(key);
        self.strings_of(key, v)
    }

    pub fn strings_of(&mut self, key: &str, v: Value) -> Option<Vec<String>> {
        match v {
            Value::Nil => None,
            Value::String(s) => Some(vec![s.to_string_lossy()]),
            Value::Table(t) => {
                let mut out = Vec::new();
                for item in t.sequence_values::<Value>() {
                    match item {
                        Ok(Value::String(s)) => out.push(s.to_string_lossy()),
                        Ok(Value::Integer(i)) => out.push(i.to_string()),
                        Ok(other) => {
                            self.wrong_type(key, "a list of strings", &other);
                            return None;
                        }
                        Err(e) => {
                            self.error(format!("{key}: {e}"));
                            return None;
                        }
                    }
                }
                Some(out)
            }
            v => {
                self.wrong_type(key, "a list of strings", &v);
                None
            }
        }
    }

    /// An argument vector for an external program: a non-empty list of strings, and in the
    /// same table, optionally, the user (and group) it runs as: `{ "/path", "arg", user =
    /// "nobody", group = "nogroup" }` (keepalived's `user USER [GROUP]` of a script).
    pub fn argv(&mut self, key: &'static str) -> Option<Argv> {
        let v = self.value(key);
        let run_as = match &v {
            Value::Table(t) => self.program_user(key, t),
            _ => None,
        };
        let args = self.strings_of(key, v)?;
        if args.is_empty() || args[0].is_empty() {
            self.error(format!("{key} must name a program: {{ \"/path/to/program\", \"arg\", ... }}"));
            return None;
        }
        Some(Argv { args, run_as })
    }

    /// The `user` and `group` keys of a program's table, looked up on this host; any other
    /// named key is an error (a misspelt `usr` would run the program as root).
    fn program_user(&mut self, key: &str, t: &Table) -> Option<RunAs> {
        let (mut user, mut group) = (None, None);
        for (k, v) in t.pairs::<Value, Value>().filter_map(|p| p.ok()) {
            let Value::String(k) = k else { continue };
            let slot = match k.to_string_lossy().as_str() {
                "user" => &mut user,
                "group" => &mut group,
                other => {
                    self.error(format!("{key}: unknown key '{other}' (valid: the program's arguments, user, group)"));
                    continue;
                }
            };
            match v {
                Value::String(s) => *slot = Some(s.to_string_lossy()),
                other => self.wrong_type(&format!("{key}.{}", k.to_string_lossy()), "a string", &other),
            }
        }
        match (user, group) {
            (Some(u), g) => match run_as(&u, g.as_deref()) {
                Ok(r) => Some(r),
                Err(e) => {
                    self.error(format!("{key}: {e}"));
                    None
                }
            },
            (None, Some(_)) => {
                self.error(format!("{key}: group needs user"));
                None
            }
            (None, None) => None,
        }
    }

    /// Report every key of the table that no reader asked for, with the valid keys.
    pub fn finish(self) {
        let Fields { keys, what, origin, mut asked, errs, .. } = self;
        let unknown: Vec<String> = keys.into_iter().filter(|k| !k.asked).map(|k| k.name).collect();
        if unknown.is_empty() {
            return;
        }
        asked.sort();
        asked.dedup();
        for name in unknown {
            errs.push(ModelError::new(&origin, format!("{what}: unknown key '{name}' (valid keys: {})", asked.join(", "))));
        }
    }
}

/// The table's string key `key`, if it has one.
fn entry<'k>(keys: &'k mut [Key], key: &str) -> Option<&'k mut Key> {
    keys.iter_mut().find(|k| k.string && k.name == key)
}

/// A key as errors name it.
fn key_name(k: &Value) -> String {
    match k {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(i) => format!("[{i}]"),
        other => format!("<{}>", other.type_name()),
    }
}

/// A whole number in range; Err(None) for nil.
pub fn int_value(v: &Value, key: &str, lo: i64, hi: i64) -> Result<Option<i64>, Option<String>> {
    let n = match v {
        Value::Nil => return Ok(None),
        Value::Integer(i) => *i,
        Value::Number(n) if n.fract() == 0.0 && n.is_finite() => *n as i64,
        Value::Number(n) => return Err(Some(format!("{key} = {n} must be a whole number"))),
        v => return Err(Some(format!("{key} must be a whole number, not a {}", v.type_name()))),
    };
    if n < lo || n > hi {
        return Err(Some(format!("{key} = {n} is out of range ({lo}..{hi})")));
    }
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(lua: &mlua::Lua, src: &str) -> Table {
        lua.load(src).eval().unwrap()
    }

    #[test]
    fn a_key_asked_twice_has_its_value_both_times() {
        let lua = mlua::Lua::new();
        let mut errs = Vec::new();
        let mut f = Fields::new(table(&lua, r#"{ vip = "192.0.2.1:80", weight = 3 }"#), "service 's'", Origin::default(), &mut errs);
        assert_eq!(f.string("vip").as_deref(), Some("192.0.2.1:80"));
        assert_eq!(f.string("vip").as_deref(), Some("192.0.2.1:80"));
        assert_eq!(f.integer("weight", 0, 10), Some(3));
        assert_eq!(f.string("absent"), None);
        let weight = Some(3);
        f.require("weight", &weight, "");
        f.require("absent", &None::<i64>, "say it");
        f.finish();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].to_string().contains("absent is required (say it)"), "{errs:?}");
    }

    #[test]
    fn unknown_keys_are_named_with_the_valid_ones() {
        let lua = mlua::Lua::new();
        let mut errs = Vec::new();
        let mut f =
            Fields::new(table(&lua, r#"{ vip = "192.0.2.1:80", [1] = "x", weigth = 2 }"#), "service 's'", Origin::default(), &mut errs);
        let _ = f.string("vip");
        let _ = f.integer("weight", 0, 10);
        f.finish();
        let mut got: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        got.sort();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].contains("unknown key '[1]' (valid keys: vip, weight)"), "{got:?}");
        assert!(got[1].contains("unknown key 'weigth' (valid keys: vip, weight)"), "{got:?}");
    }
}
