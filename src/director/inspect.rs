//! The REPL's inspection context: a sandboxed Lua state, separate from the policy's, with the
//! live state as `lvsd.state` and the live actions as functions. Actions are collected during
//! evaluation and carried out by the director afterwards.

use crate::control::{Command, RealRef};
use crate::policy::sandbox::{self, Budget, Limits};
use mlua::{Lua, LuaSerdeExt, MultiValue, Value};
use serde_json::value::RawValue;
use std::sync::{Arc, Mutex};

pub struct Inspector {
    lua: Lua,
    budget: Budget,
    actions: Arc<Mutex<Vec<Command>>>,
    /// The evaluation's memory limit; `lvsd.state` is made beyond it (see `eval_inner`).
    memory: usize,
}

fn real(service: String, real: String) -> RealRef {
    RealRef { service, real }
}

impl Inspector {
    pub fn new(node: &str, limits: Limits) -> mlua::Result<Inspector> {
        let budget = Budget::default();
        let lua = sandbox::new_state(limits, &budget)?;
        // An operator's eval may take longer than a hook (it runs on the director's loop, never
        // on the heartbeat's): ten times a hook's instructions, and a second.
        budget.set_default(crate::lua_limits::Entry {
            instructions: limits.hook_instructions.saturating_mul(10).min(limits.instructions),
            time: std::time::Duration::from_secs(1),
        });
        let actions: Arc<Mutex<Vec<Command>>> = Arc::default();
        let lvsd = lua.create_table()?;
        lvsd.set("node", node)?;
        let a = actions.clone();
        lvsd.set(
            "drain",
            lua.create_function(move |_, (s, r): (String, String)| {
                a.lock().unwrap().push(Command::Drain(real(s, r)));
                Ok(())
            })?,
        )?;
        let a = actions.clone();
        lvsd.set(
            "undrain",
            lua.create_function(move |_, (s, r): (String, String)| {
                a.lock().unwrap().push(Command::Undrain(real(s, r)));
                Ok(())
            })?,
        )?;
        let a = actions.clone();
        lvsd.set(
            "drain_director",
            lua.create_function(move |_, timeout: Option<u64>| {
                a.lock().unwrap().push(Command::DrainDirector { timeout });
                Ok(())
            })?,
        )?;
        let a = actions.clone();
        lvsd.set(
            "undrain_director",
            lua.create_function(move |_, ()| {
                a.lock().unwrap().push(Command::UndrainDirector);
                Ok(())
            })?,
        )?;
        let a = actions.clone();
        lvsd.set(
            "weight",
            lua.create_function(move |_, (s, r, w): (String, String, Option<u32>)| {
                a.lock().unwrap().push(match w {
                    Some(weight) => Command::SetWeight { real: real(s, r), weight },
                    None => Command::ClearWeight(real(s, r)),
                });
                Ok(())
            })?,
        )?;
        let a = actions.clone();
        lvsd.set(
            "check_now",
            lua.create_function(move |_, (s, r): (String, String)| {
                a.lock().unwrap().push(Command::CheckNow(real(s, r)));
                Ok(())
            })?,
        )?;
        let a = actions.clone();
        lvsd.set(
            "yield",
            lua.create_function(move |_, instance: String| {
                a.lock().unwrap().push(Command::Yield { instance });
                Ok(())
            })?,
        )?;
        let a = actions.clone();
        lvsd.set(
            "unyield",
            lua.create_function(move |_, instance: String| {
                a.lock().unwrap().push(Command::Unyield { instance });
                Ok(())
            })?,
        )?;
        let a = actions.clone();
        lvsd.set(
            "reload",
            lua.create_function(move |_, ()| {
                a.lock().unwrap().push(Command::Reload { force: false });
                Ok(())
            })?,
        )?;
        lua.globals().set("lvsd", lvsd)?;
        Ok(Inspector { lua, budget, actions, memory: limits.memory })
    }

    /// Evaluate `code`: first as `return <code>`, then as a statement (as a REPL should).
    /// `status` writes the status document, asked only if the code reads `lvsd.state`.
    pub fn eval(
        &self,
        code: &str,
        status: &mut dyn FnMut() -> Result<Box<RawValue>, String>,
        events: &[super::Event],
    ) -> (Result<serde_json::Value, String>, Vec<Command>) {
        self.actions.lock().unwrap().clear();
        let result = self.eval_inner(code, status, events);
        (result, self.actions.lock().unwrap().drain(..).collect())
    }

    fn eval_inner(
        &self,
        code: &str,
        status: &mut dyn FnMut() -> Result<Box<RawValue>, String>,
        events: &[super::Event],
    ) -> Result<serde_json::Value, String> {
        let lua = &self.lua;
        // A fresh entry before anything touches the state: a previous eval that hit its limit
        // leaves the meter exceeded, and even mlua's own calls below would raise that again.
        self.budget.reset();
        let lvsd: mlua::Table = lua.globals().get("lvsd").map_err(|e| e.to_string())?;
        let result = lua.scope(|scope| {
            // `lvsd.state` is made when the code first reads it: at 10,000 services reading
            // the table and making the document takes seconds and more memory than the
            // evaluation's limit, and most evaluations (drain, weight, yield) never read it.
            let make = scope.create_function_mut(|lua, (t, key): (mlua::Table, Value)| {
                if !matches!(&key, Value::String(k) if k == "state") {
                    return Ok(Value::Nil);
                }
                // Our data, not the code's: it is not counted against the code's memory or time.
                // Read from the written document as Lua takes it, never whole as a `Value`.
                let doc = status().map_err(mlua::Error::runtime)?;
                let (used, limit) = (lua.used_memory(), lua.set_memory_limit(0)?);
                let state = lua.to_value(&serde_transcode::Transcoder::new(&mut serde_json::Deserializer::from_str(doc.get())));
                drop(doc);
                let grown = lua.used_memory().saturating_sub(used);
                lua.set_memory_limit(limit.saturating_add(grown))?;
                let state = state?;
                if let Value::Table(st) = &state {
                    st.set("events", lua.to_value(events)?)?;
                }
                t.raw_set("state", &state)?;
                self.budget.reset();
                Ok(state)
            })?;
            let meta = lua.create_table()?;
            meta.set("__index", make)?;
            lvsd.raw_set("state", Value::Nil)?;
            lvsd.set_metatable(Some(meta));
            let chunk = match lua.load(format!("return {code}")).set_name("=repl").into_function() {
                Ok(f) => f,
                Err(_) => lua.load(code).set_name("=repl").into_function()?,
            };
            let values: MultiValue = chunk.call(())?;
            Ok(values.into_iter().map(|v| to_json(lua, v)).collect::<Vec<_>>())
        });
        // The state and its room go with this evaluation.
        lvsd.set_metatable(None);
        let _ = lvsd.raw_set("state", Value::Nil);
        let _ = lua.gc_collect();
        let _ = lua.set_memory_limit(self.memory);
        let mut out = result.map_err(|e| clean(&e))?;
        Ok(match out.len() {
            0 => serde_json::Value::Null,
            1 => out.remove(0),
            _ => serde_json::Value::Array(out),
        })
    }
}

fn clean(e: &mlua::Error) -> String {
    let s = match e {
        mlua::Error::CallbackError { cause, .. } => return clean(cause),
        other => other.to_string(),
    };
    s.split("\nstack traceback:").next().unwrap_or("").to_string()
}

/// Lua values as JSON; what JSON cannot hold (functions, userdata) is shown by its type.
fn to_json(lua: &Lua, v: Value) -> serde_json::Value {
    match &v {
        Value::Function(_) | Value::UserData(_) | Value::Thread(_) | Value::LightUserData(_) => {
            serde_json::Value::String(format!("<{}>", v.type_name()))
        }
        _ => lua.from_value::<serde_json::Value>(v.clone()).unwrap_or_else(|_| serde_json::Value::String(format!("<{}>", v.type_name()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn written(v: serde_json::Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).unwrap()
    }

    fn inspector(memory: usize) -> Inspector {
        Inspector::new("lvs01", Limits { memory, ..Limits::default() }).unwrap()
    }

    /// Actions do not make the status document; reading `lvsd.state` makes it once per
    /// evaluation, with the events in it.
    #[test]
    fn the_state_is_made_only_when_read() {
        let insp = inspector(Limits::default().memory);
        let made = std::cell::Cell::new(0);
        let mut status = || {
            made.set(made.get() + 1);
            Ok(written(json!({ "generation": 7, "services": [] })))
        };
        let events = [crate::director::Event { at: 1.0, kind: "reload", message: "loaded".into() }];
        let (r, actions) = insp.eval("lvsd.drain('web', '198.51.100.1:80')", &mut status, &events);
        assert_eq!(r, Ok(serde_json::Value::Null));
        assert_eq!(actions, vec![Command::Drain(real("web".into(), "198.51.100.1:80".into()))]);
        assert_eq!(made.get(), 0);
        let (r, _) = insp.eval("lvsd.state.generation + lvsd.state.generation", &mut status, &events);
        assert_eq!(r, Ok(json!(14)));
        assert_eq!(made.get(), 1);
        let (r, _) = insp.eval("lvsd.state.events[1].message", &mut status, &events);
        assert_eq!(r, Ok(json!("loaded")));
        assert_eq!(made.get(), 2);
        // Not kept from one evaluation to the next: the next one makes it afresh.
        let (r, _) = insp.eval("rawget(lvsd, 'state')", &mut status, &events);
        assert_eq!(r, Ok(serde_json::Value::Null));
        assert_eq!(made.get(), 2);
        assert_eq!(insp.eval("lvsd.nothing", &mut status, &events).0, Ok(serde_json::Value::Null));
    }

    /// A state larger than the evaluation's memory limit (a large site's) is read whole; the
    /// code itself stays limited, and so does the next evaluation.
    #[test]
    fn a_state_beyond_the_memory_limit_is_read() {
        let limit = 4 << 20;
        let insp = inspector(limit);
        let reals: Vec<_> = (0..40_000).map(|i| json!({ "address": format!("198.51.100.{}:{}", i % 250, i), "weight": 1 })).collect();
        let doc = json!({ "services": [{ "name": "web", "reals": reals }] });
        let mut status = || Ok(written(doc.clone()));
        let (r, _) = insp.eval("#lvsd.state.services[1].reals", &mut status, &[]);
        assert_eq!(r, Ok(json!(40_000)));
        let (r, _) = insp.eval("#lvsd.state.services[1].reals, string.rep('x', 8 << 20)", &mut status, &[]);
        assert!(r.as_ref().is_err_and(|e| e.contains("memory")), "{r:?}");
        let (r, _) = insp.eval("#string.rep('x', 8 << 20)", &mut status, &[]);
        assert!(r.as_ref().is_err_and(|e| e.contains("memory")), "{r:?}");
        assert_eq!(insp.eval("1 + 1", &mut status, &[]).0, Ok(json!(2)));
    }
}
