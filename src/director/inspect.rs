//! The REPL's inspection context: a sandboxed Lua state, separate from the policy's, with the
//! live state as `lvsd.state` and the live actions as functions. Actions are collected during
//! evaluation and carried out by the director afterwards.

use crate::control::{Command, RealRef};
use crate::policy::sandbox::{self, Budget, Limits};
use mlua::{Lua, LuaSerdeExt, MultiValue, Value};
use std::sync::{Arc, Mutex};

pub struct Inspector {
    lua: Lua,
    budget: Budget,
    actions: Arc<Mutex<Vec<Command>>>,
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
        Ok(Inspector { lua, budget, actions })
    }

    /// Evaluate `code`: first as `return <code>`, then as a statement (as a REPL should).
    pub fn eval(
        &self,
        code: &str,
        status: &serde_json::Value,
        events: &[super::Event],
    ) -> (Result<serde_json::Value, String>, Vec<Command>) {
        self.actions.lock().unwrap().clear();
        let result = self.eval_inner(code, status, events);
        (result, self.actions.lock().unwrap().drain(..).collect())
    }

    fn eval_inner(&self, code: &str, status: &serde_json::Value, events: &[super::Event]) -> Result<serde_json::Value, String> {
        let lua = &self.lua;
        // A fresh entry before anything touches the state: a previous eval that hit its limit
        // leaves the meter exceeded, and even mlua's own calls below would raise that again.
        self.budget.reset();
        let set_state = || -> mlua::Result<()> {
            let state = lua.to_value(status)?;
            if let Value::Table(t) = &state {
                t.set("events", lua.to_value(events)?)?;
            }
            lua.globals().get::<mlua::Table>("lvsd")?.set("state", state)?;
            Ok(())
        };
        set_state().map_err(|e| e.to_string())?;
        let chunk = match lua.load(format!("return {code}")).set_name("=repl").into_function() {
            Ok(f) => f,
            Err(_) => lua.load(code).set_name("=repl").into_function().map_err(|e| clean(&e))?,
        };
        let values: MultiValue = chunk.call(()).map_err(|e| clean(&e))?;
        let mut out: Vec<serde_json::Value> = values.into_iter().map(|v| to_json(lua, v)).collect();
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
