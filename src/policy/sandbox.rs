//! The Lua state a policy (or the REPL) runs in: a reduced standard library, a memory limit,
//! an instruction and time budget per entry (see [`crate::lua_limits`]), no finalizers, string
//! patterns bounded in cost, and `require` restricted to the policy's directory and the
//! bundled library.

use super::patterns;
pub use crate::lua_limits::{Budget, Entry};
use mlua::{Lua, LuaOptions, StdLib, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Limits for one Lua state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Bytes the Lua heap may use.
    pub memory: usize,
    /// VM instructions for loading the policy.
    pub instructions: u64,
    /// Wall-clock time for loading the policy (the hook stops it).
    pub load_time: Duration,
    /// VM instructions for each later call: a hook, a weight function, a track, a REPL
    /// evaluation, and each resumption of a Lua check.
    pub hook_instructions: u64,
    /// Wall-clock time for each such call: these run beside the director's work.
    pub hook_time: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory: 64 << 20,
            instructions: 200_000_000,
            load_time: Duration::from_secs(10),
            hook_instructions: 10_000_000,
            hook_time: Duration::from_millis(100),
        }
    }
}

impl Limits {
    /// The budget of loading the policy.
    pub fn load(&self) -> Entry {
        Entry { instructions: self.instructions, time: self.load_time }
    }
    /// The budget of each later call.
    pub fn hook(&self) -> Entry {
        Entry { instructions: self.hook_instructions.min(self.instructions), time: self.hook_time }
    }
}

/// The largest policy or module file read (`lvsd check /dev/zero` ends at once).
pub const MAX_FILE: u64 = 4 << 20;

/// The Lua library shipped inside the binary (`lua/` in the source tree).
pub const BUNDLED: &[(&str, &str)] = &[("lvsd.helpers", include_str!("../../lua/lvsd/helpers.lua"))];

/// Read a policy or module file of at most [`MAX_FILE`] bytes.
pub fn read_bounded(path: &Path) -> std::io::Result<String> {
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    f.take(MAX_FILE + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("larger than {} MiB", MAX_FILE >> 20)));
    }
    String::from_utf8(buf).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// `setmetatable` that refuses a `__gc` field: Lua runs finalizers with hooks off, so a
/// finalizer could loop forever outside every limit (even at exit). Lua marks an object for
/// finalization only if its metatable has `__gc` when it is set (Lua 5.4 manual, 2.5.3), so
/// refusing it here is enough; `debug.setmetatable` is not in the sandbox.
const SETMETATABLE: &str = r#"
local raw, rawget, type, error = setmetatable, rawget, type, error
return function(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc is not allowed (finalizers run outside the instruction and time limits)", 2)
  end
  return raw(t, mt)
end
"#;

/// Build a fresh state: no io, no debug, no os.execute/exit/remove/rename/tmpname/getenv, no
/// C modules, text-only `load`, no `__gc`, bounded patterns, and the limits. `budget` meters
/// every entry; `reset` starts a call's budget (`limits.hook()`).
pub fn new_state(limits: Limits, budget: &Budget) -> mlua::Result<Lua> {
    let libs = StdLib::TABLE | StdLib::STRING | StdLib::UTF8 | StdLib::MATH | StdLib::OS | StdLib::PACKAGE | StdLib::COROUTINE;
    let lua = Lua::new_with(libs, LuaOptions::default())?;
    lua.set_memory_limit(limits.memory)?;

    let g = lua.globals();
    let os: mlua::Table = g.get("os")?;
    // getenv: the daemon's environment is none of a policy's business (and differs between
    // `lvsd check` and the running director).
    for name in ["execute", "exit", "remove", "rename", "tmpname", "setlocale", "getenv"] {
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
    let setmetatable: mlua::Function = lua.load(SETMETATABLE).set_name("=setmetatable").call(())?;
    g.set("setmetatable", setmetatable)?;
    install_patterns(&lua)?;

    crate::lua_limits::install(&lua, budget)?;
    budget.set_default(limits.hook());
    budget.set_call_limits(limits.hook());
    Ok(lua)
}

/// Wrap string.find/match/gmatch/gsub with [`patterns::refuse`]. Strings share the `string` table as
/// their `__index`, so `s:find(p)` goes through the wrappers too.
fn install_patterns(lua: &Lua) -> mlua::Result<()> {
    let check = lua.create_function(|_, (f, s, p, init, plain): (String, Value, Value, Value, Value)| {
        let bytes = |v: &Value| match v {
            Value::String(s) => Some(s.as_bytes().to_vec()),
            Value::Integer(i) => Some(i.to_string().into_bytes()),
            Value::Number(n) => Some(n.to_string().into_bytes()),
            _ => None,
        };
        // Anything else is Lua's own argument error.
        let (Some(s), Some(p)) = (bytes(&s), bytes(&p)) else { return Ok(None) };
        let plain = f == "find" && !matches!(plain, Value::Nil | Value::Boolean(false));
        // gsub's third argument is the replacement, not a start.
        let init = match init {
            Value::Integer(i) if f != "gsub" => Some(i),
            Value::Number(n) if f != "gsub" => Some(n as i64),
            _ => None,
        };
        Ok(patterns::refuse(&f, &s, init, &p, plain))
    })?;
    let wrap: mlua::Function = lua
        .load(
            r#"
local check, string = ...
local error = error
for _, name in ipairs { "find", "match", "gmatch", "gsub" } do
  local raw = string[name]
  string[name] = function(s, p, a, b)
    local why = check(name, s, p, a, b)
    if why then error(why, 2) end
    return raw(s, p, a, b)
  end
end
"#,
        )
        .set_name("=patterns")
        .into_function()?;
    let string: mlua::Table = lua.globals().get("string")?;
    wrap.call::<()>((check, string))
}

/// A module name is dot-separated words of letters, digits, `_` and `-`: no path, no
/// leading dot, no `..`, so that `require` cannot leave the policy's directory.
pub fn module_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.split('.').all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

/// The files being loaded, outermost first: a `require` of one of them is circular.
pub type Loading = Arc<Mutex<Vec<PathBuf>>>;

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Install a `require` searcher that loads `name.lua` (dots become slashes) from the
/// policy's directory, then from the bundled library. Files loaded are recorded in `files`
/// so that a reload can watch them. `loading` starts with the policy file itself.
pub fn install_require(lua: &Lua, dir: &Path, files: Arc<Mutex<Vec<PathBuf>>>, loading: Loading) -> mlua::Result<()> {
    let package: mlua::Table = lua.globals().get("package")?;
    let searchers: mlua::Table = package.get("searchers")?;
    let preload = searchers.get::<mlua::Function>(1)?;
    let dir = dir.to_path_buf();
    let searcher = lua.create_function(move |lua, name: String| {
        let at = super::api::caller(lua);
        if !module_name_ok(&name) {
            return Err(mlua::Error::runtime(format!(
                "{at}: require '{name}': a module name is dot-separated words (letters, digits, '_', '-'), found in the policy's directory: no path, no leading '.', no '..'"
            )));
        }
        let rel = format!("{}.lua", name.replace('.', "/"));
        let path = dir.join(&rel);
        if path.is_file() {
            // A symbolic link may still point out of the directory.
            if let (Ok(real), Ok(base)) = (path.canonicalize(), dir.canonicalize())
                && !real.starts_with(&base)
            {
                return Err(mlua::Error::runtime(format!("{at}: require '{name}': {} leads out of the policy's directory", display_path(&path))));
            }
            let shown = display_path(&path);
            {
                let stack = loading.lock().unwrap_or_else(|e| e.into_inner());
                if stack.iter().any(|p| same_file(p, &path)) {
                    let chain: Vec<String> = stack.iter().map(|p| display_path(p)).chain([shown.clone()]).collect();
                    return Err(mlua::Error::runtime(format!("{at}: circular require of '{name}': {}", chain.join(" -> "))));
                }
            }
            let src = read_bounded(&path).map_err(|e| mlua::Error::runtime(format!("{at}: require '{name}': {shown}: {e}")))?;
            files.lock().unwrap_or_else(|e| e.into_inner()).push(path.clone());
            let chunk = lua.load(src).set_name(format!("@{shown}")).set_mode(mlua::ChunkMode::Text).into_function()?;
            // The loader marks the file as being loaded while its chunk runs.
            let loading = loading.clone();
            let loader = lua.create_function(move |_, args: mlua::MultiValue| {
                loading.lock().unwrap_or_else(|e| e.into_inner()).push(path.clone());
                let r = chunk.call::<mlua::MultiValue>(args);
                loading.lock().unwrap_or_else(|e| e.into_inner()).pop();
                r
            })?;
            return Ok(Value::Function(loader));
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
    if let Ok(cwd) = std::env::current_dir()
        && let Ok(rel) = p.strip_prefix(&cwd)
    {
        return rel.display().to_string();
    }
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        for ok in ["a", "lvsd.helpers", "site.web-farm", "x_1.y2"] {
            assert!(module_name_ok(ok), "{ok}");
        }
        for bad in ["", "/etc/passwd", ".hidden", "..up", "a..b", "a.", "../x", "a/b", "a\0b", "~root", "a b"] {
            assert!(!module_name_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn reads_are_bounded() {
        let e = read_bounded(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("larger than 4 MiB"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.lua");
        std::fs::write(&p, "return 1").unwrap();
        assert_eq!(read_bounded(&p).unwrap(), "return 1");
    }

    #[test]
    fn an_evaluation_gets_the_hook_budget() {
        // What the REPL does: a state of its own, `reset` before each evaluation.
        let budget = Budget::default();
        let limits = Limits { hook_instructions: 1_000_000, ..Limits::default() };
        let lua = new_state(limits, &budget).unwrap();
        for code in [
            "coroutine.wrap(function() while true do pcall(function() while true do end end) end end)()",
            "while true do xpcall(function() while true do end end, function() while true do end end) end",
        ] {
            budget.reset();
            let e = lua.load(code).set_name("=repl").exec().unwrap_err().to_string();
            assert!(e.contains("instruction limit of 1000000 exceeded"), "{code}: {e}");
        }
        budget.reset();
        assert_eq!(lua.load("return 6 * 7").eval::<i64>().unwrap(), 42);
    }

    #[test]
    fn patterns_are_bounded_through_the_string_methods() {
        let lua = new_state(Limits::default(), &Budget::default()).unwrap();
        let e = lua.load("local s = ('a'):rep(1e5) local i = s:find('.-.-b') return i").set_name("@p.lua").exec().unwrap_err();
        assert!(e.to_string().contains("p.lua:1: string.find: this pattern may take too long"), "{e}");
        let n: i64 = lua.load("return select(2, ('a,b,c'):gsub(',', ';'))").eval().unwrap();
        assert_eq!(n, 2);
        let m: String = lua.load("return ('HTTP/1.1 200 OK'):match('^HTTP/1%.%d (%d+)')").eval().unwrap();
        assert_eq!(m, "200");
    }

    #[test]
    fn gc_metatables_are_refused_and_others_kept() {
        let lua = new_state(Limits::default(), &Budget::default()).unwrap();
        let e = lua.load("setmetatable({}, { __gc = true })").set_name("@p.lua").exec().unwrap_err();
        assert!(e.to_string().contains("p.lua:1: setmetatable: __gc is not allowed"), "{e}");
        let n: i64 = lua.load("return setmetatable({}, { __index = function() return 7 end }).x").eval().unwrap();
        assert_eq!(n, 7);
        let e = lua.load("return os.getenv('HOME')").exec().unwrap_err();
        assert!(e.to_string().contains("getenv"), "{e}");
    }
}
