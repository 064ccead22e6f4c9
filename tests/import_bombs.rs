//! Hostile keepalived.conf input: `lvsd import` gives a clear `file:line` error within a
//! memory limit, and prints nothing of a file that is not a keepalived configuration.
//!
//! The binary runs under RLIMIT_AS (set in the child before exec), so a bomb that allocates
//! or recurses without bound dies instead of passing; a run that does not end is killed.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Address space for the importer: ample for any real configuration.
const MEMORY: u64 = 512 << 20;
/// Only a guard against a hang; the bombs end in well under a second.
const HANG: Duration = Duration::from_secs(60);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn import(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lvsd"));
    cmd.arg("import").args(args).env("LVSD_LOG", "error").stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: MEMORY, rlim_max: MEMORY };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        out.read_to_end(&mut s).ok();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        err.read_to_end(&mut s).ok();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > HANG {
            child.kill().ok();
            child.wait().ok();
            panic!("lvsd import {args:?} did not finish within {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
    Run { code: status.code(), stdout, stderr }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exit 1 with exactly one line on stderr, the error, which ends with `want`.
fn refused(r: &Run, want: &str) {
    assert_eq!(r.code, Some(1), "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.trim_end().ends_with(want), "want {want:?} in:\n{}", r.stderr);
    assert!(r.stderr.len() < 4096, "a bounded report, not {} bytes", r.stderr.len());
}

#[test]
fn deep_nesting_is_an_error_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // One brace per line (150,000 levels), and as many as a line may hold on one line.
    let p = dir.path().join("deep.conf");
    std::fs::write(&p, "vrrp_instance V {\n".repeat(150_000)).unwrap();
    refused(&import(&[s(&p)], &[]), "deep.conf:65: blocks nested deeper than 64 levels");
    let q = dir.path().join("flat.conf");
    std::fs::write(&q, format!("global_defs {{\n{}\n", "a {".repeat(20_000))).unwrap();
    refused(&import(&[s(&q)], &[]), "flat.conf:2: blocks nested deeper than 64 levels");
    std::fs::write(&q, format!("global_defs {{\n{}\n", "a {".repeat(150_000))).unwrap();
    refused(&import(&[s(&q)], &[]), "flat.conf:2: line longer than 65536 bytes");
    let r = dir.path().join("bare.conf");
    std::fs::write(&r, format!("a {}\n", "{".repeat(60_000))).unwrap();
    refused(&import(&[s(&r)], &[]), "bare.conf:1: '{' without a keyword before it");
}

#[test]
fn parameter_bombs_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    // Twelve definitions, each twice the previous: 2^12 x 1 KiB if expanded.
    let mut text = format!("$P0={}\n", "x".repeat(1024));
    for i in 1..=12 {
        text.push_str(&format!("$P{i}=$P{} $P{}\n", i - 1, i - 1));
    }
    text.push_str("global_defs {\n  router_id $P12\n}\n");
    let p = dir.path().join("params.conf");
    std::fs::write(&p, &text).unwrap();
    refused(&import(&[s(&p)], &[]), "params.conf:15: parameter substitution grows the line past 65536 bytes");

    // A definition that names itself never settles.
    let q = dir.path().join("self.conf");
    std::fs::write(&q, "$A=$B\n$B=$A\nglobal_defs {\n  router_id $A\n}\n").unwrap();
    refused(&import(&[s(&q)], &[]), "self.conf:4: parameter substitution does not terminate after 64 rounds (recursive definition?)");
}

#[test]
fn only_regular_files_of_bounded_size_are_read() {
    let r = import(&["/dev/zero"], &[]);
    refused(&r, "/dev/zero: not a regular file (only regular files are read)");

    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.conf");
    std::fs::write(&big, "# padding\n".repeat(500_000)).unwrap();
    refused(&import(&[s(&big)], &[]), "big.conf: larger than 4194304 bytes");

    for (target, want) in [
        ("/dev/zero", "/dev/zero: not a regular file (only regular files are read)"),
        (s(dir.path()), "not a regular file (only regular files are read)"),
    ] {
        let p = dir.path().join("inc.conf");
        std::fs::write(&p, format!("global_defs {{\n}}\ninclude {target}\n")).unwrap();
        let r = import(&[s(&p)], &[]);
        refused(&r, want);
        assert!(r.stderr.contains("inc.conf:3: "), "names the include line: {}", r.stderr);
    }

    // A FIFO is refused before it is opened (opening it would wait for a writer).
    let fifo = dir.path().join("fifo.conf");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    refused(&import(&[s(&fifo)], &[]), "fifo.conf: not a regular file (only regular files are read)");

    // Many includes of one (allowed) file add up to the total bound.
    let part = dir.path().join("part.conf");
    std::fs::write(&part, format!("{}\n", "#".repeat(3 << 20))).unwrap();
    let many = dir.path().join("many.conf");
    std::fs::write(&many, format!("include {}\n", s(&part)).repeat(8)).unwrap();
    refused(&import(&[s(&many)], &[]), "the configuration read so far exceeds 16777216 bytes");
}

/// A file that is not a keepalived configuration, with markers that must never be printed.
const SECRET: &str = "root:$6$SECRETSALT$Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5:19000:0:99999:7:::\n\
daemon:*:19000:0:99999:7:::\n\
password LEAKEDWORD\n\
x SECRETARG {\n\
}\n";

fn assert_nothing_of_the_secret(r: &Run) {
    for marker in ["SECRET", "LEAKED", "Zm9v", "daemon:", "99999"] {
        assert!(!r.stdout.contains(marker), "{marker} on stdout:\n{}", r.stdout);
        assert!(!r.stderr.contains(marker), "{marker} on stderr:\n{}", r.stderr);
    }
}

#[test]
fn an_included_foreign_file_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("shadow");
    std::fs::write(&secret, SECRET).unwrap();

    // At the top level: not keepalived statements, an error that shows no text.
    let p = dir.path().join("top.conf");
    std::fs::write(&p, format!("global_defs {{\n}}\ninclude {}\n", s(&secret))).unwrap();
    let r = import(&[s(&p)], &[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("shadow:1: not a keepalived statement (its text is not shown)"), "{}", r.stderr);
    assert_nothing_of_the_secret(&r);

    // Inside a block: unknown keywords are quoted by keyword only, on stderr and in the policy.
    let q = dir.path().join("block.conf");
    std::fs::write(&q, format!("vrrp_instance V {{\n  interface eth0\n  virtual_router_id 7\n  include {}\n}}\n", s(&secret))).unwrap();
    let r = import(&[s(&q)], &[]);
    assert_nothing_of_the_secret(&r);

    // /proc/self/environ: NUL-separated, refused as binary; the child's environment not shown.
    let e = dir.path().join("environ.conf");
    std::fs::write(&e, "include /proc/self/environ\n").unwrap();
    let r = import(&[s(&e)], &[("LVSD_TEST_SECRET", "SECRETENV")]);
    refused(&r, "/proc/self/environ:1: binary data (a NUL byte); not a keepalived configuration");
    assert_nothing_of_the_secret(&r);
}

#[test]
fn include_pattern_bombs_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("glob.conf");
    // 2^40 alternatives, and a pattern that would backtrack exponentially.
    std::fs::write(&p, format!("include {}\ninclude {}x\n", "{a,b}".repeat(40), "*a".repeat(5000))).unwrap();
    refused(&import(&[s(&p)], &[]), "glob.conf:1: include pattern expands to more than 256 paths");
    std::fs::write(&p, format!("include {}{}x\n", s(dir.path()), "/*a".to_string() + &"*a".repeat(5000))).unwrap();
    let r = import(&[s(&p)], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("matches no file"), "{}", r.stderr);
}
