//! The sandbox: limits end runaway policies with an error, and nothing runs programs.

use lvsd::policy::{Limits, LoadOptions, PolicyError, load_source};
use std::path::Path;

fn first_error(src: &str, limits: Limits) -> String {
    let opts = LoadOptions { node: "n".into(), limits };
    match load_source(src, Path::new("evil.lua"), Path::new("."), &opts) {
        Ok(_) => panic!("must fail: {src}"),
        Err(PolicyError::Invalid(errs)) => errs[0].to_string(),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn endless_loop_hits_the_instruction_limit() {
    let e = first_error("local n = 0\nwhile true do n = n + 1 end\n", Limits::default());
    assert!(e.starts_with("evil.lua:2: instruction limit"), "{e}");
}

#[test]
fn endless_recursion_is_an_error() {
    let e = first_error("local function f() return 1 + f() end\nf()\n", Limits::default());
    assert!(e.starts_with("evil.lua:1: "), "{e}");
    assert!(e.contains("stack overflow") || e.contains("memory limit exceeded"), "{e}");
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let e = first_error(
        "local t = {}\nfor i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end\n",
        Limits { memory: 16 << 20, ..Limits::default() },
    );
    assert!(e.starts_with("evil.lua:2: memory limit exceeded"), "{e}");
    let e = first_error("local s = string.rep('x', 1 << 30)\n", Limits { memory: 16 << 20, ..Limits::default() });
    assert!(e.contains("memory limit exceeded"), "{e}");
}

#[test]
fn no_way_to_run_programs_or_load_native_code() {
    for (src, needle) in [
        ("os.execute('id')", "field 'execute'"),
        ("io.popen('id')", "global 'io'"),
        ("package.loadlib('libc.so.6', 'system')", "field 'loadlib'"),
        ("debug.getinfo(1)", "global 'debug'"),
        ("dofile('/etc/passwd')", "global 'dofile'"),
        ("loadfile('/etc/passwd')", "global 'loadfile'"),
        ("string.dump(print)", "field 'dump'"),
        ("require 'os_execute_module_that_does_not_exist'", "not found"),
        ("os.exit(1)", "field 'exit'"),
    ] {
        let e = first_error(src, Limits::default());
        assert!(e.contains(needle), "{src}: {e}");
    }
}

#[test]
fn load_refuses_bytecode() {
    // A precompiled chunk starts with ESC 'Lua'; text-only load refuses it.
    let e = first_error("local f, err = load('\\27Lua\\84\\0')\nerror(err)\n", Limits::default());
    assert!(e.contains("attempt to load a binary chunk"), "{e}");
}

#[test]
fn c_modules_cannot_be_required() {
    let e = first_error("package.cpath = '/usr/lib/x86_64-linux-gnu/?.so'\nrequire 'libc'\n", Limits::default());
    assert!(e.contains("module 'libc' not found"), "{e}");
}
