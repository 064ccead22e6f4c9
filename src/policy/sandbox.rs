//! The Lua state a policy runs in: a reduced standard library, a memory limit and an
//! instruction limit, and `require` restricted to the policy's directory and the bundled library.

use mlua::{HookTriggers, Lua, LuaOptions, StdLib, Value, VmState};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Limits for one Lua state.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes the Lua heap may use.
    pub memory: usize,
    /// VM instructions for loading the policy, and again for each later hook call.
    pub instructions: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { memory: 64 << 20, instructions: 200_000_000 }
    }
}

/// How often the instruction hook runs; the limit is checked at this granularity.
const HOOK_EVERY: u32 = 10_000;

/// The Lua library shipped inside the binary (`lua/` in the source tree).
pub const BUNDLED: &[(&str, &str)] = &[("lvsd.helpers", include_str!("../../lua/lvsd/helpers.lua"))];

/// Counts instructions; `reset` before each entry into Lua. Also remembers where the code
/// last was, so that a memory-limit error (which carries no position) can name a line.
#[derive(Clone, Default)]
pub struct Budget {
    used: Arc<AtomicU64>,
    last_seen: Arc<Mutex<(String, u32)>>,
}

impl Budget {
    pub fn reset(&self) {
        self.used.store(0, Ordering::Relaxed);
    }
    /// File and line the Lua code was at when the instruction hook last ran.
    pub fn last_seen(&self) -> (String, u32) {
        self.last_seen.lock().unwrap().clone()
    }
}

/// Build a fresh state: no io, no debug, no os.execute/exit/remove/rename/tmpname, no C
/// modules, text-only `load`, and the two limits.
pub fn new_state(limits: Limits, budget: &Budget) -> mlua::Result<Lua> {
    let libs = StdLib::TABLE | StdLib::STRING | StdLib::UTF8 | StdLib::MATH | StdLib::OS | StdLib::PACKAGE | StdLib::COROUTINE;
    let lua = Lua::new_with(libs, LuaOptions::default())?;
    lua.set_memory_limit(limits.memory)?;

    let g = lua.globals();
    let os: mlua::Table = g.get("os")?;
    for name in ["execute", "exit", "remove", "rename", "tmpname", "setlocale"] {
        os.set(name, Value::Nil)?;
    }
    let package: mlua::Table = g.get("package")?;
    package.set("loadlib", Value::Nil)?;
    package.set("cpath", "")?;
    for name in ["dofile", "loadfile"] {
        g.set(name, Value::Nil)?;
    }
    let string: mlua::Table = g.get("string")?;
    string.set("dump", Value::Nil)?;
    // load(chunk, name, mode, env) with mode forced to text: bytecode can break the VM's safety.
    let raw_load: mlua::Function = g.get("load")?;
    let text_load = lua.create_function(move |_, (chunk, name, _mode, env): (Value, Value, Value, Value)| {
        raw_load.call::<mlua::MultiValue>((chunk, name, "t", env))
    })?;
    g.set("load", text_load)?;

    let budget = budget.clone();
    let limit = limits.instructions;
    lua.set_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |_lua, debug| {
        let used = budget.used.fetch_add(HOOK_EVERY as u64, Ordering::Relaxed) + HOOK_EVERY as u64;
        let src = debug.source();
        let file = src.source.as_deref().unwrap_or("?").trim_start_matches('@');
        let line = debug.curr_line().max(0) as u32;
        {
            let mut seen = budget.last_seen.lock().unwrap();
            if seen.0 != file {
                seen.0 = file.to_string();
            }
            seen.1 = line;
        }
        if used > limit {
            return Err(mlua::Error::RuntimeError(format!(
                "{file}:{line}: instruction limit of {limit} exceeded (an endless loop?)"
            )));
        }
        Ok(VmState::Continue)
    });
    Ok(lua)
}

/// Install a `require` searcher that loads `name.lua` (dots become slashes) from the
/// policy's directory, then from the bundled library. Files loaded are recorded in `files`
/// so that a reload can watch them.
pub fn install_require(lua: &Lua, dir: &Path, files: Arc<Mutex<Vec<PathBuf>>>) -> mlua::Result<()> {
    let package: mlua::Table = lua.globals().get("package")?;
    let searchers: mlua::Table = package.get("searchers")?;
    let preload = searchers.get::<mlua::Function>(1)?;
    let dir = dir.to_path_buf();
    let searcher = lua.create_function(move |lua, name: String| {
        let rel = format!("{}.lua", name.replace('.', "/"));
        let path = dir.join(&rel);
        if path.is_file() {
            let src = std::fs::read_to_string(&path).map_err(mlua::Error::external)?;
            let shown = display_path(&path);
            files.lock().unwrap().push(path.clone());
            let f = lua.load(src).set_name(format!("@{shown}")).set_mode(mlua::ChunkMode::Text).into_function()?;
            return Ok(Value::Function(f));
        }
        if let Some((_, src)) = BUNDLED.iter().find(|(n, _)| *n == name) {
            let f = lua.load(*src).set_name(format!("@lua/{rel}")).set_mode(mlua::ChunkMode::Text).into_function()?;
            return Ok(Value::Function(f));
        }
        Ok(Value::String(lua.create_string(format!("\n\tno file '{}' and no bundled module '{}'", path.display(), name))?))
    })?;
    let list = lua.create_table()?;
    list.raw_set(1, preload)?;
    list.raw_set(2, searcher)?;
    package.set("searchers", list)?;
    package.set("path", "")?;
    Ok(())
}

/// Paths in messages: as short as possible, relative to the working directory when inside it.
pub fn display_path(p: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(rel) = p.strip_prefix(&cwd) {
            return rel.display().to_string();
        }
    }
    p.display().to_string()
}
