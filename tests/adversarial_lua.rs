//! Lua that tries to escape its limits, and saves that try to tear the site down: each case
//! ends with an error (or a refusal) well within its bound, never a hang. Every wait here is
//! bounded; the bounds are generous (debug build, shared machine) and only catch hangs.

use lvsd::check::lua::{call_weight, run_check};
use lvsd::check::{CheckResult, RsInfo};
use lvsd::model::CheckKind;
use lvsd::policy::{Limits, LoadOptions, Policy, PolicyError, guard, load_source, load_with_deadline, watch};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Small limits so that each escape ends quickly: 20M instructions, 2 s per load.
fn small() -> Limits {
    Limits { instructions: 20_000_000, load_time: Duration::from_secs(2), ..Limits::default() }
}

fn opts(limits: Limits) -> LoadOptions {
    LoadOptions { node: "lvs01".into(), limits }
}

/// A hang shows as this bound being hit, not as a test that never ends.
const BOUND: Duration = Duration::from_secs(60);

/// The escapes of issue 15, item 1, each a whole policy whose loading must fail.
const ESCAPES: &[(&str, &str)] = &[
    ("pcall loop", "while true do pcall(function() while true do end end) end\n"),
    (
        "nested coroutine with pcall",
        "coroutine.wrap(function()\n  coroutine.wrap(function()\n    while true do pcall(function() while true do end end) end\n  end)()\nend)()\n",
    ),
    ("coroutine.wrap at load time", "local f = coroutine.wrap(function() while true do end end)\nf()\n"),
    (
        "resumed coroutine in a pcall loop",
        "local co = coroutine.create(function() while true do pcall(coroutine.yield) end end)\nwhile true do pcall(coroutine.resume, co) end\n",
    ),
    ("__gc loop", "local t = setmetatable({}, { __gc = function() while true do end end })\nt = nil\ncollectgarbage()\n"),
    (
        "xpcall with a looping handler",
        "while true do\n  xpcall(function() while true do end end, function(m) while true do end end)\nend\n",
    ),
    ("error object whose __tostring loops", "error(setmetatable({}, { __tostring = function() while true do end end }))\n"),
    ("pathological pattern", "local s = string.rep('a', 100000)\nlocal i = string.find(s, '.-.-.-.-b')\n"),
];

fn write(dir: &Path, name: &str, src: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, src).unwrap();
    p
}

fn load_err(path: &Path, limits: Limits) -> (String, Duration) {
    let t = Instant::now();
    let r = load_with_deadline(path, &opts(limits), BOUND);
    let took = t.elapsed();
    match r {
        Ok(_) => panic!("{} must fail", path.display()),
        Err(PolicyError::Timeout { .. }) => panic!("{}: the hook did not stop it; abandoned after {BOUND:?}", path.display()),
        Err(e) => (e.to_string(), took),
    }
}

/// `text` has "FILE:LINE:" with a line above 0.
fn names_a_line(text: &str, file: &str) -> bool {
    text.match_indices(&format!("{file}:")).any(|(at, m)| {
        let digits: String = text[at + m.len()..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().is_ok_and(|n| n > 0)
    })
}

#[test]
fn every_escape_at_load_time_ends_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (what, src)) in ESCAPES.iter().enumerate() {
        let p = write(dir.path(), &format!("escape{i}.lua"), src);
        let (e, took) = load_err(&p, small());
        assert!(names_a_line(&e, &format!("escape{i}.lua")), "{what}: the error names the file and a line: {e}");
        assert!(e.contains("limit of") || e.contains("__gc is not allowed") || e.contains("may take too long"), "{what}: {e}");
        assert!(took < BOUND, "{what}: {took:?}");
    }
}

#[test]
fn the_time_limit_alone_stops_them_too() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { instructions: u64::MAX, load_time: Duration::from_millis(300), ..Limits::default() };
    for (i, (what, src)) in ESCAPES.iter().enumerate().filter(|(_, (w, _))| w.contains("loop") || w.contains("coroutine")) {
        let p = write(dir.path(), &format!("t{i}.lua"), src);
        let (e, _) = load_err(&p, limits);
        assert!(e.contains("time limit of 300 ms exceeded") || e.contains("__gc"), "{what}: {e}");
    }
    // C calls in a loop: the deadline is looked at between calls.
    let p = write(dir.path(), "rep.lua", "while true do local s = string.rep('x', 1 << 22) end\n");
    let (e, _) = load_err(&p, limits);
    assert!(e.contains("rep.lua:1: time limit of 300 ms exceeded"), "{e}");
}

#[test]
fn a_gc_added_after_setmetatable_never_runs() {
    // Lua marks an object for finalization when its metatable is set; a __gc added later is
    // ignored, so this policy is valid and nothing loops, not even at exit.
    let p = load_source(
        "local mt = {}\nlocal t = setmetatable({}, mt)\nmt.__gc = function() while true do end end\nt = nil\ncollectgarbage()\n",
        Path::new("lazy.lua"),
        Path::new("."),
        &opts(small()),
    )
    .unwrap();
    p.lua.gc_collect().unwrap();
    drop(p);
}

fn hook_policy(src: &str) -> Policy {
    load_source(src, Path::new("hooks.lua"), Path::new("."), &opts(Limits::default())).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn hooks_and_weight_functions_have_their_own_small_budget() {
    let p = hook_policy(
        r#"lvsd.service "s" { vip = "192.0.2.1:80",
             on_up = function(ev) while true do pcall(function() while true do end end) end end,
             on_down = function(ev) coroutine.wrap(function() while true do xpcall(function() while true do end end, function() while true do end end) end end)() end,
             reals = {
               { address = "198.51.100.1:80", weight = function(rs, h) while true do pcall(error) end end },
               { address = "198.51.100.2:80", weight = function(rs, h) return 5 end },
             } }"#,
    );
    let s = &p.model.services[0];
    for hook in [s.on_up.unwrap(), s.on_down.unwrap()] {
        let t = Instant::now();
        let e = p.call_hook::<_, ()>(hook, ()).unwrap_err();
        assert!(e.contains("limit of"), "{e}");
        assert!(t.elapsed() < BOUND);
    }
    let rs = RsInfo { address: s.reals[0].addr, port: 80, service: "s".into(), weight: 1 };
    let r = CheckResult::up(Duration::from_millis(1));
    // The caller asks for 200M instructions; the state's hook budget (10M) wins.
    let e = call_weight(&p.lua, s.reals[0].weight_fn.unwrap(), &rs, &r, 200_000_000).unwrap_err();
    assert!(e.contains("instruction limit of 10000000 exceeded") || e.contains("time limit of 100 ms exceeded"), "{e}");
    // The state is fine afterwards.
    assert_eq!(call_weight(&p.lua, s.reals[1].weight_fn.unwrap(), &rs, &r, 200_000_000), Ok(5));
}

#[test]
fn lua_checks_cannot_escape_either() {
    let p = hook_policy(
        r#"lvsd.service "s" { vip = "192.0.2.1:80", reals = {
             { address = "198.51.100.1:80", check = lvsd.check.lua { run = function(rs)
                 coroutine.wrap(function() while true do pcall(function() while true do end end) end end)() end } },
             { address = "198.51.100.2:80", check = lvsd.check.lua { run = function(rs)
                 local t = {} for i = 1, 100 do t[i] = i end
                 table.sort(t, function(a, b) while true do end end) end } },
             { address = "198.51.100.3:80", check = lvsd.check.lua { run = function(rs)
                 return string.find(string.rep("a", 1e5), ".-.-b") end } },
           } }"#,
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (i, want) in [(0, "limit of"), (1, "limit of"), (2, "may take too long")] {
        let real = &p.model.services[0].reals[i];
        let CheckKind::Lua { run } = real.checks[0].kind else { panic!() };
        let rs = RsInfo { address: real.addr, port: 80, service: "s".into(), weight: 1 };
        let t = Instant::now();
        let e = rt.block_on(run_check(&p.lua, run, &rs, 20_000_000, None)).unwrap_err();
        assert!(e.0.contains(want), "check {i}: {e}");
        assert!(t.elapsed() < BOUND);
    }
}

/// Run `lvsd check FILE` with a hard timeout; (exit code, stderr).
fn lvsd_check(file: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lvsd"))
        .arg("check")
        .arg(file)
        .args(["--node", "lvs01"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lvsd check {} did not end within {BOUND:?}", file.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    (status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn lvsd_check_exits_non_zero_on_every_escape() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (what, src)) in ESCAPES.iter().enumerate() {
        let p = write(dir.path(), &format!("escape{i}.lua"), src);
        let (code, err) = lvsd_check(&p, &["--instruction-limit", "20000000"]);
        assert_eq!(code, Some(1), "{what}: {err}");
        assert!(names_a_line(&err, &format!("escape{i}.lua")), "{what}: {err}");
    }
    // A file that never ends is cut at 4 MiB.
    let (code, err) = lvsd_check(Path::new("/dev/zero"), &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("larger than 4 MiB"), "{err}");
    // The lazy __gc: valid, and the process ends.
    let p = write(dir.path(), "lazy.lua", "local mt = {}\nlocal t = setmetatable({}, mt)\nmt.__gc = function() while true do end end\n");
    let (code, err) = lvsd_check(&p, &[]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_load_that_never_ends_is_abandoned() {
    // A FIFO nobody writes: the read blocks in the kernel, where no hook reaches.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("policy.lua");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let t = Instant::now();
    let e = load_with_deadline(&fifo, &opts(small()), Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, PolicyError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("policy.lua: loading the policy took longer than 0.3 s"), "{e}");
    assert!(t.elapsed() < BOUND);
}

// ---------------------------------------------------------------- require and print

fn dir_load(dir: &Path, main: &str) -> Result<Policy, PolicyError> {
    lvsd::policy::load(&dir.join(main), &opts(small()))
}

#[test]
fn require_stays_in_the_policy_directory() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("site");
    std::fs::create_dir(&dir).unwrap();
    write(outer.path(), "secret.lua", "return { leaked = true }\n");
    std::os::unix::fs::symlink(outer.path().join("secret.lua"), dir.join("link.lua")).unwrap();
    write(&dir, "ok.lua", "return { fine = true }\n");
    for (name, want) in [
        ("/etc/passwd", "a module name is dot-separated words"),
        (".secret", "no leading '.'"),
        ("..secret", "a module name"),
        ("../secret", "a module name"),
        ("a..b", "a module name"),
        ("link", "leads out of the policy's directory"),
    ] {
        write(&dir, "policy.lua", &format!("local m = require {name:?}\n"));
        let e = dir_load(&dir, "policy.lua").unwrap_err().to_string();
        assert!(e.contains("policy.lua:1:") && e.contains(want), "{name}: {e}");
    }
    write(&dir, "policy.lua", "local m = require 'ok'\nassert(m.fine)\nlocal h = require 'lvsd.helpers'\nassert(h.range)\n");
    let p = dir_load(&dir, "policy.lua").unwrap();
    assert_eq!(p.files.len(), 2, "{:?}", p.files);
}

#[test]
fn circular_requires_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "policy.lua", "-- self\nrequire 'policy'\n");
    let e = dir_load(dir.path(), "policy.lua").unwrap_err().to_string();
    assert!(e.contains("policy.lua:2: circular require of 'policy'"), "{e}");
    write(dir.path(), "policy.lua", "require 'a'\n");
    write(dir.path(), "a.lua", "require 'b'\nreturn {}\n");
    write(dir.path(), "b.lua", "\nrequire 'a'\nreturn {}\n");
    let e = dir_load(dir.path(), "policy.lua").unwrap_err().to_string();
    assert!(e.contains("b.lua:2: circular require of 'a'"), "{e}");
    assert!(e.contains("policy.lua -> ") && e.contains("a.lua -> ") && e.contains("b.lua -> "), "{e}");
    // Requiring the same module twice is not a cycle.
    write(dir.path(), "policy.lua", "require 'c'\nrequire 'c'\n");
    write(dir.path(), "c.lua", "return {}\n");
    assert!(dir_load(dir.path(), "policy.lua").is_ok());
}

#[test]
fn module_reads_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "big.lua", &"-".repeat(5 << 20));
    write(dir.path(), "policy.lua", "require 'big'\n");
    let e = dir_load(dir.path(), "policy.lua").unwrap_err().to_string();
    assert!(e.contains("policy.lua:1: require 'big'") && e.contains("larger than 4 MiB"), "{e}");
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn print_logs_every_argument_and_getenv_is_gone() {
    let buf = Captured::default();
    let w = buf.clone();
    let sub = tracing_subscriber::fmt().with_writer(move || w.clone()).with_ansi(false).finish();
    let r = tracing::subscriber::with_default(sub, || {
        load_source(
            "print('a', 2, nil, true, setmetatable({}, { __tostring = function() return 'T' end }))\n",
            Path::new("print.lua"),
            Path::new("."),
            &opts(small()),
        )
    });
    assert!(r.is_ok());
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(out.contains("print.lua:1: a\t2\tnil\ttrue\tT"), "{out}");
    let e = load_source("local home = os.getenv('HOME')\n", Path::new("env.lua"), Path::new("."), &opts(small())).unwrap_err();
    assert!(e.to_string().contains("env.lua:1:") && e.to_string().contains("getenv"), "{e}");
}

// ---------------------------------------------------------------- saves

const SITE: &str = r#"
lvsd.vrrp "VI_1" { interface = "eth0", vrid = 51, vips = { "192.0.2.100" } }
lvsd.service "web" { vip = "192.0.2.100:80", reals = { "198.51.100.1:80" } }
lvsd.service "dns" { vip = "192.0.2.100:53", protocol = "udp", reals = { "198.51.100.1:53" } }
"#;

#[test]
fn empty_and_truncated_saves_are_never_applied() {
    let running = load_source(SITE, Path::new("p.lua"), Path::new("."), &opts(small())).unwrap().model;
    // Empty: valid Lua, and refused by the guard.
    let empty = load_source("", Path::new("p.lua"), Path::new("."), &opts(small())).unwrap().model;
    let e = guard::check(&running, &empty, false).unwrap_err();
    assert!(e.to_string().contains("no VRRP instance and no service"), "{e}");
    assert_eq!(guard::check(&running, &empty, true), Ok(()));
    // Cut in the middle of a declaration: does not parse.
    let cut = &SITE[..SITE.find("reals").unwrap()];
    assert!(load_source(cut, Path::new("p.lua"), Path::new("."), &opts(small())).is_err());
    // Cut after the first service: the other one would go (1 of 2 is not more than half).
    let first = &SITE[..SITE.find("lvsd.service \"dns\"").unwrap()];
    let m = load_source(first, Path::new("p.lua"), Path::new("."), &opts(small())).unwrap().model;
    assert_eq!(guard::check(&running, &m, false), Ok(()));
    let strict = SITE.replace("lvsd.vrrp", "lvsd.global { reload_guard = 0.25 }\nlvsd.vrrp");
    let running = load_source(&strict, Path::new("p.lua"), Path::new("."), &opts(small())).unwrap().model;
    let e = guard::check(&running, &m, false).unwrap_err();
    assert!(e.to_string().contains("removes 1 of the 2 running services"), "{e}");
}

#[test]
fn the_watcher_reports_a_two_step_save_once_complete() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "policy.lua", SITE);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _w = watch::watch_with(std::slice::from_ref(&file), tx, Duration::from_millis(150)).unwrap();
        // Truncate, wait a little, write the new content in two pieces.
        std::fs::write(&file, "").unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let new = SITE.replace("198.51.100.1:80", "198.51.100.2:80");
        let (a, b) = new.split_at(new.len() / 2);
        let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(a.as_bytes()).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        f.write_all(b.as_bytes()).unwrap();
        drop(f);
        let c = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a change within 10 s").unwrap();
        assert!(c.complete);
        // When it is reported, the file is whole.
        assert_eq!(std::fs::read_to_string(&c.path).unwrap(), new);
        assert!(tokio::time::timeout(Duration::from_millis(500), rx.recv()).await.is_err(), "one report for one save");
    });
}

#[test]
fn enable_script_security_refuses_programs_others_can_change() {
    use std::os::unix::fs::PermissionsExt;
    let src = |prog: &str| {
        format!(
            "lvsd.global {{ enable_script_security = true }}\nlvsd.vrrp \"VI_1\" {{ interface = \"eth0\", vrid = 51, vips = {{ \"192.0.2.100\" }}, notify = {{ master = {{ {prog:?}, \"up\" }} }} }}\n"
        )
    };
    let ok = load_source(&src("/bin/sh"), Path::new("p.lua"), Path::new("."), &opts(small()));
    assert!(ok.is_ok(), "{:?}", ok.err());
    // A program missing on this machine cannot be judged here (the policy may be checked
    // elsewhere than where it runs).
    let missing = load_source(&src("/no/such/program"), Path::new("p.lua"), Path::new("."), &opts(small()));
    assert!(missing.is_ok(), "{:?}", missing.err());
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let prog = write(dir.path(), "notify.sh", "#!/bin/sh\n");
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = load_source(&src(prog.to_str().unwrap()), Path::new("p.lua"), Path::new("."), &opts(small())).unwrap_err().to_string();
    assert!(e.contains("(the program) is owned by uid 0 with mode 777"), "{e}");
    // Without the key, the same policy loads (keepalived only warns then).
    let lax = src(prog.to_str().unwrap()).replace("enable_script_security = true", "enable_script_security = false");
    assert!(load_source(&lax, Path::new("p.lua"), Path::new("."), &opts(small())).is_ok());
}

#[test]
fn load_time_limit_is_the_operators() {
    let dir = tempfile::tempdir().unwrap();
    // Endless, and far under the instruction limit: only the wall clock stops it.
    let p = write(dir.path(), "spin.lua", "while true do end\n");
    let (code, err) = lvsd_check(&p, &["--instruction-limit", "1000000000000", "--load-time-limit", "0.3"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("time limit of 300 ms exceeded"), "{err}");
    assert!(err.contains("raise --load-time-limit"), "the error names the option: {err}");
    let (_, err) = lvsd_check(&p, &["--instruction-limit", "1000000"]);
    assert!(err.contains("instruction limit of 1000000 exceeded") && err.contains("raise --instruction-limit"), "{err}");
    assert!(names_a_line(&err, "spin.lua"), "{err}");
    // Not a positive number of seconds: refused before loading anything.
    for bad in ["0", "-1", "ten", "NaN"] {
        let (code, err) = lvsd_check(&p, &[&format!("--load-time-limit={bad}")]);
        assert_eq!(code, Some(2), "{bad}: {err}");
        assert!(err.contains("--load-time-limit"), "{bad}: {err}");
    }
}
