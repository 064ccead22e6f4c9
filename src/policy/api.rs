//! The `lvsd` table a policy sees: declarations (`lvsd.vrrp`, `lvsd.service`, ...), check and
//! track constructors, logging, and `lvsd.node`.

use super::convert::{self, CheckHandle, Ctx, TrackHandle};
use super::fields::Fields;
use crate::model::{CheckSpec, HookRef, Model, ModelError, Origin, Track};
use mlua::{Function, Lua, Table, Value};
use std::path::PathBuf;

/// What evaluation collects; lives in the Lua state's app data while the policy runs.
#[derive(Default)]
pub struct Collected {
    pub model: Model,
    pub errors: Vec<ModelError>,
    /// Shared with every real that uses the check.
    pub checks: Vec<std::sync::Arc<CheckSpec>>,
    pub tracks: Vec<Track>,
    pub main_file: PathBuf,
}

/// Name of the registry table holding hook functions; a `HookRef` is an index into it.
pub const HOOKS: &str = "lvsd.hooks";

struct LuaCtx<'a>(&'a Lua);

impl Ctx for LuaCtx<'_> {
    fn hook(&self, f: Function) -> HookRef {
        let hooks: Table = self.0.named_registry_value(HOOKS).expect("hook table");
        // A u32 (an `Option<HookRef>` in 8 bytes: each real has three): the policy's memory
        // limit keeps the table far below 2^32 functions.
        let n = u32::try_from(hooks.raw_len() + 1).expect("fewer than 2^32 hooks");
        hooks.raw_set(n, f).expect("hook table");
        HookRef(n)
    }
    fn check(&self, i: usize) -> Option<std::sync::Arc<CheckSpec>> {
        self.0.app_data_ref::<Collected>()?.checks.get(i).cloned()
    }
    fn track(&self, i: usize) -> Option<Track> {
        self.0.app_data_ref::<Collected>()?.tracks.get(i).cloned()
    }
}

/// The file and line of the Lua code calling into the API.
pub fn caller(lua: &Lua) -> Origin {
    let main = lua.app_data_ref::<Collected>().map(|c| c.main_file.clone()).unwrap_or_default();
    // Level 1 is the Lua function that called the Rust callback.
    for level in 1..4 {
        if let Some(d) = lua.inspect_stack(level) {
            let src = d.source();
            if let Some(s) = src.source.as_deref()
                && let Some(path) = s.strip_prefix('@')
            {
                return Origin { file: std::path::Path::new(path).into(), line: d.curr_line().max(0) as u32 };
            }
        }
    }
    Origin { file: main.into(), line: 0 }
}

/// A Lua error positioned at the calling line, for misuse of the API itself.
fn raise(lua: &Lua, msg: String) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{}: {msg}", caller(lua)))
}

fn push_errors(lua: &Lua, errs: Vec<ModelError>) {
    if let Some(mut c) = lua.app_data_mut::<Collected>() {
        c.errors.extend(errs);
    }
}

/// `lvsd.KIND "NAME" { ... }`: a function of the name returning a function of the table.
fn declaration(lua: &Lua, kind: &'static str, store: fn(&Lua, &str, &mut Fields, &dyn Ctx)) -> mlua::Result<Function> {
    lua.create_function(move |lua, name: Value| {
        let name = match name {
            Value::String(s) => s.to_string_lossy(),
            _ => {
                return Err(raise(lua, format!("lvsd.{kind} needs a name first: lvsd.{kind} \"NAME\" {{ ... }}")));
            }
        };
        lua.create_function(move |lua, t: Value| {
            let origin = caller(lua);
            let Value::Table(t) = t else {
                return Err(raise(lua, format!("lvsd.{kind} \"{name}\" needs a table: {{ ... }}")));
            };
            let mut errs = Vec::new();
            let mut f = Fields::new(t, format!("{kind} '{name}'"), origin, &mut errs);
            store(lua, &name, &mut f, &LuaCtx(lua));
            f.finish();
            push_errors(lua, errs);
            Ok(())
        })
    })
}

fn store_vrrp(lua: &Lua, name: &str, f: &mut Fields, ctx: &dyn Ctx) {
    if let Some(v) = convert::vrrp(name, f, ctx)
        && let Some(mut c) = lua.app_data_mut::<Collected>()
    {
        c.model.vrrp.push(v);
    }
}

fn store_service(lua: &Lua, name: &str, f: &mut Fields, ctx: &dyn Ctx) {
    if let Some(v) = convert::service(name, f, ctx)
        && let Some(mut c) = lua.app_data_mut::<Collected>()
    {
        c.model.services.push(v);
    }
}

fn store_sync_group(lua: &Lua, name: &str, f: &mut Fields, ctx: &dyn Ctx) {
    if let Some(v) = convert::sync_group(name, f, ctx)
        && let Some(mut c) = lua.app_data_mut::<Collected>()
    {
        c.model.sync_groups.push(v);
    }
}

/// `lvsd.global { ... }` and `lvsd.sync_daemon { ... }`: a function of one table.
fn settings(lua: &Lua, what: &'static str, store: fn(&Lua, &mut Fields)) -> mlua::Result<Function> {
    lua.create_function(move |lua, t: Value| {
        let origin = caller(lua);
        let Value::Table(t) = t else {
            return Err(raise(lua, format!("lvsd.{what} needs a table: lvsd.{what} {{ ... }}")));
        };
        let mut errs = Vec::new();
        let mut f = Fields::new(t, what, origin, &mut errs);
        store(lua, &mut f);
        f.finish();
        push_errors(lua, errs);
        Ok(())
    })
}

/// `lvsd.check.KIND { ... }` -> a handle to the converted check.
fn check_ctor(lua: &Lua, kind: &'static str) -> mlua::Result<Function> {
    lua.create_function(move |lua, t: Option<Table>| {
        let origin = caller(lua);
        let t = t.unwrap_or(lua.create_table()?);
        let mut errs = Vec::new();
        let mut f = Fields::new(t, format!("check.{kind}"), origin, &mut errs);
        let spec = convert::check(kind, &mut f, &LuaCtx(lua));
        f.finish();
        push_errors(lua, errs);
        let mut c = lua.app_data_mut::<Collected>().expect("collector");
        let spec = spec.unwrap_or_else(|| placeholder_check(kind));
        c.checks.push(spec.into());
        Ok(CheckHandle(c.checks.len() - 1))
    })
}

/// Stands in for a check whose declaration had errors, so that evaluation can go on and
/// report everything; the policy is rejected anyway.
fn placeholder_check(_kind: &str) -> CheckSpec {
    CheckSpec { common: Default::default(), kind: crate::model::CheckKind::Tcp { send: None, expect: None }, origin: Origin::default() }
}

fn track_ctor(lua: &Lua, kind: &'static str) -> mlua::Result<Function> {
    lua.create_function(move |lua, t: Table| {
        let origin = caller(lua);
        let n = lua.app_data_ref::<Collected>().map(|c| c.tracks.len()).unwrap_or(0);
        let mut errs = Vec::new();
        let mut f = Fields::new(t, format!("track.{kind}"), origin, &mut errs);
        let tr = convert::track(kind, &mut f, &LuaCtx(lua), n + 1);
        f.finish();
        push_errors(lua, errs);
        let mut c = lua.app_data_mut::<Collected>().expect("collector");
        match tr {
            Some(tr) => {
                c.tracks.push(tr);
                Ok(Some(TrackHandle(c.tracks.len() - 1)))
            }
            None => Ok(None),
        }
    })
}

fn log_fn(lua: &Lua, level: tracing::Level) -> mlua::Result<Function> {
    lua.create_function(move |lua, msg: Value| {
        let o = caller(lua);
        let text = match msg {
            Value::String(s) => s.to_string_lossy(),
            other => format!("{other:?}"),
        };
        match level {
            tracing::Level::ERROR => tracing::error!(target: "policy", "{o}: {text}"),
            tracing::Level::WARN => tracing::warn!(target: "policy", "{o}: {text}"),
            tracing::Level::DEBUG => tracing::debug!(target: "policy", "{o}: {text}"),
            _ => tracing::info!(target: "policy", "{o}: {text}"),
        }
        Ok(())
    })
}

/// `print(a, b, ...)`: every argument through `tostring` (`__tostring` and `__name`
/// included), separated by tabs, as Lua's own `print`; logged at info level.
fn print_fn(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, args: mlua::MultiValue| {
        let o = caller(lua);
        let parts = args.iter().map(|v| v.to_string()).collect::<mlua::Result<Vec<_>>>()?;
        tracing::info!(target: "policy", "{o}: {}", parts.join("\t"));
        Ok(())
    })
}

/// Build the `lvsd` global.
pub fn install(lua: &Lua, node: &str) -> mlua::Result<()> {
    lua.set_named_registry_value(HOOKS, lua.create_table()?)?;
    let lvsd = lua.create_table()?;
    lvsd.set("node", node)?;
    lvsd.set("version", env!("CARGO_PKG_VERSION"))?;
    lvsd.set("vrrp", declaration(lua, "vrrp", store_vrrp)?)?;
    lvsd.set("service", declaration(lua, "service", store_service)?)?;
    lvsd.set("sync_group", declaration(lua, "sync_group", store_sync_group)?)?;
    lvsd.set(
        "global",
        settings(lua, "global", |lua, f| {
            let mut g = lua.app_data_ref::<Collected>().map(|c| c.model.global.clone()).unwrap_or_default();
            convert::global(f, &mut g);
            if let Some(mut c) = lua.app_data_mut::<Collected>() {
                c.model.global = g;
            }
        })?,
    )?;
    lvsd.set(
        "sync_daemon",
        settings(lua, "sync_daemon", |lua, f| {
            let sd = convert::sync_daemon(f);
            if let Some(mut c) = lua.app_data_mut::<Collected>() {
                if c.model.sync_daemon.is_some() {
                    let e = ModelError::new(&f.origin, "sync_daemon is declared twice");
                    c.errors.push(e);
                }
                c.model.sync_daemon = sd;
            }
        })?,
    )?;
    lvsd.set(
        "bgp",
        settings(lua, "bgp", |lua, f| {
            let b = convert::bgp(f);
            if let Some(mut c) = lua.app_data_mut::<Collected>() {
                if let Some(prev) = &c.model.bgp {
                    let e = ModelError::new(&f.origin, format!("bgp is declared twice (first at {})", prev.origin));
                    c.errors.push(e);
                }
                c.model.bgp = b;
            }
        })?,
    )?;
    let check = lua.create_table()?;
    for kind in crate::model::CHECK_KINDS {
        check.set(*kind, check_ctor(lua, kind)?)?;
    }
    lvsd.set("check", check)?;
    let track = lua.create_table()?;
    track.set("exec", track_ctor(lua, "exec")?)?;
    track.set("lua", track_ctor(lua, "lua")?)?;
    track.set("file", track_ctor(lua, "file")?)?;
    track.set("process", track_ctor(lua, "process")?)?;
    lvsd.set("track", track)?;
    let log = lua.create_table()?;
    log.set("debug", log_fn(lua, tracing::Level::DEBUG)?)?;
    log.set("info", log_fn(lua, tracing::Level::INFO)?)?;
    log.set("warn", log_fn(lua, tracing::Level::WARN)?)?;
    log.set("error", log_fn(lua, tracing::Level::ERROR)?)?;
    lvsd.set("log", log)?;
    let g = lua.globals();
    // `print` goes to the log, not to stdout (the daemon's stdout is not a terminal).
    g.set("print", print_fn(lua)?)?;
    g.set("lvsd", lvsd)?;
    Ok(())
}
