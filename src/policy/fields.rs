//! Reading a Lua table into typed fields, collecting every error instead of stopping at the
//! first, and naming the keys that were not understood.

use crate::model::{ModelError, Origin};
use mlua::{Function, Table, Value};

/// One declaration's table being read. Every key the reader asks for is recorded, so that
/// `finish` can list exactly the valid keys when it meets an unknown one.
pub struct Fields<'e> {
    table: Table,
    what: String,
    pub origin: Origin,
    asked: Vec<&'static str>,
    pub errs: &'e mut Vec<ModelError>,
}

pub fn type_name(v: &Value) -> &'static str {
    v.type_name()
}

impl<'e> Fields<'e> {
    pub fn new(table: Table, what: impl Into<String>, origin: Origin, errs: &'e mut Vec<ModelError>) -> Fields<'e> {
        Fields { table, what: what.into(), origin, asked: Vec::new(), errs }
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
        if v.is_none() && matches!(self.table.raw_get::<Value>(key), Ok(Value::Nil)) {
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
        self.table.raw_get::<Value>(key).unwrap_or(Value::Nil)
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

    /// An argument vector for an external program: a non-empty list of strings.
    pub fn argv(&mut self, key: &'static str) -> Option<Vec<String>> {
        let v = self.strings(key)?;
        if v.is_empty() || v[0].is_empty() {
            self.error(format!("{key} must name a program: {{ \"/path/to/program\", \"arg\", ... }}"));
            return None;
        }
        Some(v)
    }

    /// Report every key of the table that no reader asked for, with the valid keys.
    pub fn finish(self) {
        let Fields { table, what, origin, mut asked, errs } = self;
        asked.sort();
        asked.dedup();
        for pair in table.pairs::<Value, Value>() {
            let Ok((k, _)) = pair else { continue };
            let name = match &k {
                Value::String(s) => s.to_string_lossy(),
                Value::Integer(i) => format!("[{i}]"),
                other => format!("<{}>", other.type_name()),
            };
            if !asked.contains(&name.as_str()) {
                errs.push(ModelError::new(&origin, format!("{what}: unknown key '{name}' (valid keys: {})", asked.join(", "))));
            }
        }
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
