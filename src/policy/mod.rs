//! The policy engine: a fresh sandboxed Lua state per load evaluates `policy.lua` into a
//! validated [`Model`]. The state is kept afterwards because hooks, weight functions and Lua
//! checks live in it.

mod api;
mod convert;
mod fields;
pub mod guard;
pub mod patterns;
pub mod sandbox;
pub mod security;
pub mod watch;

pub use convert::{parse_addr_port, parse_route, parse_vip};
pub use sandbox::Limits;

use crate::model::{Model, ModelError, Origin};
use mlua::Lua;
use sandbox::Budget;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("{path}: cannot read policy: {source}")]
    Read { path: String, source: std::io::Error },
    /// Every problem found, each with file and line.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ModelError>),
    #[error("loading the policy failed: {0}")]
    Failed(String),
    /// The load did not finish in time; it was abandoned (its thread is left to end alone).
    #[error(
        "{path}: loading the policy took longer than {secs:.1} s and was abandoned (an endless loop in a C call, or a file that never ends?)"
    )]
    Timeout { path: String, secs: f64 },
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The value of `lvsd.node`.
    pub node: String,
    pub limits: Limits,
}

/// A loaded policy: the model plus the Lua state its functions live in.
pub struct Policy {
    pub model: Model,
    pub lua: Lua,
    /// The policy file and every module it required (for the file watcher).
    pub files: Vec<PathBuf>,
    pub budget: Budget,
    pub limits: Limits,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy").field("model", &self.model).field("files", &self.files).finish()
    }
}

/// The machine's host name, the default for `lvsd.node`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Turn an error from Lua into `file:line: message` entries.
fn lua_error(e: &mlua::Error, main: &Path, budget: &Budget) -> ModelError {
    let text = match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::MemoryError(_) => {
            let (file, line) = budget.last_seen();
            let origin =
                if file.is_empty() { Origin { file: main.into(), line: 0 } } else { Origin { file: Path::new(&file).into(), line } };
            return ModelError::new(
                &origin,
                "memory limit exceeded while evaluating the policy (near this line; raise --memory-limit if the policy really needs more)",
            );
        }
        mlua::Error::CallbackError { cause, .. } => return lua_error(cause, main, budget),
        mlua::Error::WithContext { cause, .. } => return lua_error(cause, main, budget),
        other => other.to_string(),
    };
    let text = text.split("\nstack traceback:").next().unwrap_or("").trim().to_string();
    // Lua messages start with "chunkname:line:"; keep that as the origin.
    if let Some((file, rest)) = text.split_once(':')
        && let Some((line, msg)) = rest.split_once(':')
        && let Ok(n) = line.trim().parse::<u32>()
    {
        return ModelError::new(&Origin { file: Path::new(file).into(), line: n }, msg.trim());
    }
    ModelError::new(&Origin { file: main.into(), line: 0 }, text)
}

/// Load, evaluate and validate a policy file (at most [`sandbox::MAX_FILE`] bytes).
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Policy, PolicyError> {
    let src = sandbox::read_bounded(path).map_err(|source| PolicyError::Read { path: path.display().to_string(), source })?;
    let shown = sandbox::display_path(path);
    load_source(&src, Path::new(&shown), path.parent().unwrap_or(Path::new(".")), opts)
}

/// [`load`] on a thread of its own, waiting at most `deadline`: past it, the load is
/// abandoned with [`PolicyError::Timeout`] and its thread is never joined. The hook stops Lua
/// code at `opts.limits.load_time`; this bounds what it cannot see (a C call that does not
/// end, a read of a file that never ends). A load that finishes after its caller gave up
/// drops its Lua state on its own thread, never on the caller's.
pub fn load_with_deadline(path: &Path, opts: &LoadOptions, deadline: std::time::Duration) -> Result<Policy, PolicyError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (p, o) = (path.to_path_buf(), opts.clone());
    let spawned = std::thread::Builder::new().name("lvsd-load".into()).spawn(move || {
        // A send to a caller that gave up fails and gives the policy back: drop it here.
        let _ = tx.send(load(&p, &o));
    });
    if let Err(e) = spawned {
        return Err(PolicyError::Failed(format!("cannot start the loading thread: {e}")));
    }
    match rx.recv_timeout(deadline) {
        Ok(r) => r,
        Err(_) => Err(PolicyError::Timeout { path: path.display().to_string(), secs: deadline.as_secs_f64() }),
    }
}

/// Evaluate policy text as if it were the file `name` in directory `dir`.
pub fn load_source(src: &str, name: &Path, dir: &Path, opts: &LoadOptions) -> Result<Policy, PolicyError> {
    let budget = Budget::default();
    let invalid = |m: String| PolicyError::Invalid(vec![ModelError::new(&Origin { file: name.into(), line: 0 }, m)]);
    let lua = sandbox::new_state(opts.limits, &budget).map_err(|e| invalid(format!("cannot create the Lua state: {e}")))?;
    let files = Arc::new(Mutex::new(Vec::new()));
    // The policy file itself is being loaded: a `require` of it is circular.
    let main_path = dir.join(name.file_name().unwrap_or_default());
    let loading = Arc::new(Mutex::new(vec![main_path]));
    sandbox::install_require(&lua, dir, files.clone(), loading).map_err(|e| invalid(e.to_string()))?;
    api::install(&lua, &opts.node).map_err(|e| invalid(e.to_string()))?;
    lua.set_app_data(api::Collected { main_file: name.to_path_buf(), ..Default::default() });

    // Which limit stopped the load, read before `run` re-arms the meter.
    let (result, over) = budget.run(opts.limits.load(), || {
        let r = lua.load(src).set_name(format!("@{}", name.display())).set_mode(mlua::ChunkMode::Text).exec();
        (r, budget.exceeded().then(|| budget.exceeded_time()))
    });

    let collected = lua.remove_app_data::<api::Collected>().expect("collector");
    let mut errors = collected.errors;
    if let Err(e) = &result {
        let mut err = lua_error(e, name, &budget);
        if let Some(by_time) = over {
            let option = if by_time { "--load-time-limit" } else { "--instruction-limit" };
            err.message.push_str(&format!("; raise {option} if the policy really needs more"));
        }
        errors.push(err);
    }
    let mut model = collected.model;
    model.node = opts.node.clone();
    errors.extend(crate::model::validate(&model));
    if errors.is_empty() && model.global.enable_script_security {
        errors.extend(security::check_model(&model));
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| (&a.origin.file, a.origin.line).cmp(&(&b.origin.file, b.origin.line)));
        errors.dedup();
        return Err(PolicyError::Invalid(errors));
    }
    // What the evaluation left behind (the tables the policy built its services from) is
    // garbage now: a full collection before the state is kept for as long as the policy runs,
    // twice because an object with a finalizer (mlua's userdata) is freed only by the cycle
    // after the one that finalized it (Lua 5.4 manual, 2.5.3). No finalizer of the policy
    // can run: the sandbox refuses `__gc`.
    let before = lua.used_memory();
    let _ = lua.gc_collect();
    let _ = lua.gc_collect();
    tracing::debug!("policy Lua state: {} KiB after a full collection ({} KiB before)", lua.used_memory() / 1024, before / 1024);
    let mut all_files = vec![name.to_path_buf()];
    all_files.extend(files.lock().unwrap().iter().cloned());
    Ok(Policy { model, lua, files: all_files, budget, limits: opts.limits })
}

impl Policy {
    /// Call a hook kept by the policy (on_change, weight, track or check function) under the
    /// hook budget (`limits.hook()`: instructions and time, coroutines it makes included;
    /// `pcall` cannot catch the limit for good). Errors come back as text with the policy's
    /// file and line. A call that runs into a C call that never ends cannot be stopped: call
    /// from a thread that may be abandoned, and abandon the whole `Policy` with it.
    pub fn call_hook<A: mlua::IntoLuaMulti, R: mlua::FromLuaMulti>(&self, hook: crate::model::HookRef, args: A) -> Result<R, String> {
        let hooks: mlua::Table = self.lua.named_registry_value(api::HOOKS).map_err(|e| e.to_string())?;
        let f: mlua::Function = hooks.raw_get(hook.0).map_err(|e| e.to_string())?;
        // In a metered coroutine: mlua's hook covers one thread only, so a hook that starts
        // coroutines of its own would otherwise escape the instruction limit.
        let v = crate::lua_limits::call_sync(&self.lua, f, args, self.limits.hook_instructions)?;
        R::from_lua_multi(mlua::MultiValue::from(vec![v]), &self.lua).map_err(|e| e.to_string())
    }

    /// A Lua table from string keys and values, for hook arguments (`ev`).
    pub fn table<'a>(&self, fields: impl IntoIterator<Item = (&'a str, mlua::Value)>) -> mlua::Result<mlua::Table> {
        let t = self.lua.create_table()?;
        for (k, v) in fields {
            t.raw_set(k, v)?;
        }
        Ok(t)
    }

    pub fn string(&self, s: &str) -> mlua::Value {
        self.lua.create_string(s).map(mlua::Value::String).unwrap_or(mlua::Value::Nil)
    }
}

/// For unit tests: the model of policy text `src` as the file `p.lua` on node `node`
/// (panics with the policy's errors).
#[cfg(test)]
pub fn test_model(src: &str, node: &str) -> Model {
    let opts = LoadOptions { node: node.into(), limits: Limits::default() };
    load_source(src, Path::new("p.lua"), Path::new("."), &opts).unwrap_or_else(|e| panic!("{e}")).model
}
