//! The control socket and the metrics endpoint under attack or misuse: a socket directory
//! another user could rewrite, an impostor server at the socket's path, junk and oversized
//! requests, descriptor exhaustion, scrapes beyond the limit, and a reader that goes away.
//! Every case is bounded in count and time.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = r#"
lvsd.service "web" {
  vip = "192.0.2.10:80", scheduler = "wrr",
  reals = { "198.51.100.1:80", "198.51.100.2:80" },
}
"#;

const NOBODY: u32 = 65534;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
}

/// Wait (bounded) for a child to exit; kill it and fail when it does not.
fn exit_within(child: &mut Child, secs: u64, what: &str) -> i32 {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `lvsd run` with its control socket at `socket`: it must refuse to start. Its stderr.
fn run_is_refused(dir: &Path, socket: &Path) -> String {
    let policy = dir.join("policy.lua");
    std::fs::write(&policy, POLICY).unwrap();
    let log = dir.join("run.log");
    let mut child = Command::new(lvsd_bin())
        .args(["run", "-p", policy.to_str().unwrap(), "--node", "lvs01", "--dry-run", "--control", socket.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let code = exit_within(&mut child, 20, "lvsd run with an untrusted socket directory");
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, 1, "{err}");
    let is_socket = std::fs::symlink_metadata(socket).map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type())).unwrap_or(false);
    assert!(!is_socket, "no socket was bound");
    err
}

#[test]
fn world_writable_socket_directory_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let ctl = t.path().join("ctl");
    std::fs::create_dir(&ctl).unwrap();
    chmod(&ctl, 0o777);
    let err = run_is_refused(t.path(), &ctl.join("lvsd.sock"));
    assert!(err.contains("writable by group or others"), "{err}");
    // Group-writable is refused as well, and so is sticky for the socket's own directory.
    chmod(&ctl, 0o1770);
    let err = run_is_refused(t.path(), &ctl.join("lvsd.sock"));
    assert!(err.contains("writable by group or others"), "{err}");
}

#[test]
fn writable_ancestor_without_sticky_bit_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let open = t.path().join("open");
    let ctl = open.join("ctl");
    std::fs::create_dir_all(&ctl).unwrap();
    chmod(&ctl, 0o700);
    chmod(&open, 0o777);
    let err = run_is_refused(t.path(), &ctl.join("lvsd.sock"));
    assert!(err.contains("without the sticky bit"), "{err}");
    // With the sticky bit (as /tmp) others cannot rename our directory: accepted.
    chmod(&open, 0o1777);
    let d = spawn_daemon(t.path(), &ctl.join("lvsd.sock"), &[], None);
    drop(d);
}

#[test]
fn symlinked_socket_directory_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let real = t.path().join("real");
    std::fs::create_dir(&real).unwrap();
    chmod(&real, 0o700);
    let link = t.path().join("link");
    symlink(&real, &link).unwrap();
    let err = run_is_refused(t.path(), &link.join("lvsd.sock"));
    assert!(err.contains("is a symlink"), "{err}");
}

#[test]
fn a_file_at_the_socket_path_is_not_replaced() {
    let t = tempfile::tempdir().unwrap();
    let ctl = t.path().join("ctl");
    std::fs::create_dir(&ctl).unwrap();
    chmod(&ctl, 0o700);
    let file = ctl.join("lvsd.sock");
    std::fs::write(&file, "precious").unwrap();
    let err = run_is_refused(t.path(), &file);
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
}

#[test]
fn socket_directory_owned_by_another_user_is_refused() {
    if !need_root("socket_directory_owned_by_another_user_is_refused") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let ctl = t.path().join("ctl");
    std::fs::create_dir(&ctl).unwrap();
    chmod(&ctl, 0o700);
    chown(&ctl, NOBODY);
    let err = run_is_refused(t.path(), &ctl.join("lvsd.sock"));
    assert!(err.contains("owned by uid 65534"), "{err}");

    // An ancestor of another user's could rename our directory away: refused too.
    let theirs = t.path().join("theirs");
    let ours = theirs.join("ctl");
    std::fs::create_dir_all(&ours).unwrap();
    chmod(&ours, 0o700);
    chmod(&theirs, 0o755);
    chown(&theirs, NOBODY);
    let err = run_is_refused(t.path(), &ours.join("lvsd.sock"));
    assert!(err.contains("owned by uid 65534"), "{err}");
}

/// A server written by someone else, run as nobody at `socket`: it answers every connection
/// at once with a fake status, then reports how many bytes the client sent (one line per
/// connection on its stdout).
fn impostor(socket: &Path, connections: usize) -> (Child, BufReader<std::process::ChildStdout>) {
    let script = r#"
import socket, sys
path, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(4)
s.settimeout(20)
print("ready", flush=True)
for _ in range(n):
    c, _ = s.accept()
    c.settimeout(5)
    try:
        c.sendall(b'{"v":1,"ok":true,"result":{"text":"IMPOSTOR\\n","generation":99}}\n')
    except OSError:
        pass  # a careful client may have hung up already; what it sent is still counted
    got = 0
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            got += len(b)
    except OSError:
        pass
    print(got, flush=True)
    c.close()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script, socket.to_str().unwrap(), &connections.to_string()])
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the impostor did not start");
    (child, out)
}

#[test]
fn impostor_server_is_refused_before_anything_is_sent() {
    if !need_root("impostor_server_is_refused_before_anything_is_sent") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    chmod(t.path(), 0o755);
    let ctl = t.path().join("ctl");
    std::fs::create_dir(&ctl).unwrap();
    chown(&ctl, NOBODY);
    let socket = ctl.join("lvsd.sock");
    let (mut child, mut reports) = impostor(&socket, 2);
    for args in [&["status"][..], &["reload"][..]] {
        let (code, out, err) = cli_at(&socket, args);
        assert_ne!(code, 0, "lvsd {args:?} trusted an impostor: {out}");
        assert!(!out.contains("IMPOSTOR") && !out.contains("99"), "{out}");
        assert!(err.contains("served by uid 65534") && err.contains("Nothing was sent"), "{err}");
        let mut got = String::new();
        reports.read_line(&mut got).unwrap();
        assert_eq!(got.trim(), "0", "lvsd {args:?} sent bytes to the impostor");
    }
    assert_eq!(exit_within(&mut child, 10, "the impostor"), 0);
}

/// A `lvsd run --dry-run` of our own making (the shared helper has no place for limits).
struct Proc {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start lvsd with its socket at `socket` (and RLIMIT_NOFILE at `nofile`), ready when the
/// socket answers.
fn spawn_daemon(dir: &Path, socket: &Path, extra: &[&str], nofile: Option<u64>) -> Proc {
    let policy = dir.join("policy.lua");
    std::fs::write(&policy, POLICY).unwrap();
    let log = dir.join("lvsd.log");
    let mut cmd = Command::new(lvsd_bin());
    cmd.args(["run", "-p", policy.to_str().unwrap(), "--node", "lvs01", "--dry-run", "--control", socket.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    if let Some(n) = nofile {
        // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let l = libc::rlimit { rlim_cur: n, rlim_max: n };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut p = Proc { child: cmd.spawn().unwrap(), socket: socket.to_path_buf(), log };
    let end = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(socket).is_err() {
        if let Ok(Some(s)) = p.child.try_wait() {
            panic!("lvsd exited ({s}) before answering; log:\n{}", p.log());
        }
        assert!(Instant::now() < end, "the control socket never answered; log:\n{}", p.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

fn proc_stat(pid: u32) -> (u64, u64) {
    // utime and stime (fields 14 and 15) in clock ticks; the command name may hold spaces.
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    (f[11].parse().unwrap(), f[12].parse().unwrap())
}

fn cpu_ticks(pid: u32) -> u64 {
    let (u, s) = proc_stat(pid);
    u + s
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn accept_failures_back_off_instead_of_spinning() {
    let t = tempfile::tempdir().unwrap();
    let ctl = t.path().join("ctl");
    let port = free_port();
    let maddr = format!("127.0.0.1:{port}");
    // Some 20 descriptors at rest: 48 leaves room for a few connections only.
    let d = spawn_daemon(t.path(), &ctl.join("lvsd.sock"), &["--metrics", &maddr], Some(48));
    let pid = d.child.id();
    // Connections the daemon accepts and holds (they never send a request) until it has no
    // descriptor left; the rest wait in the listen queues.
    let mut held: Vec<UnixStream> = (0..60).map(|_| UnixStream::connect(&d.socket).unwrap()).collect();
    let mut pending = vec![std::net::TcpStream::connect(&maddr).unwrap()];
    let end = Instant::now() + Duration::from_secs(10);
    while !(d.log().contains("control socket: accept failed") && d.log().contains("metrics: accept failed")) {
        assert!(Instant::now() < end, "no accept failure was logged; log:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // With connections queued and no descriptor, a spinning loop would burn a whole core.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let (c0, t0) = (cpu_ticks(pid), Instant::now());
    std::thread::sleep(Duration::from_millis(1500));
    let (used, wall) = (cpu_ticks(pid) - c0, t0.elapsed());
    let used_s = used as f64 / hz as f64;
    assert!(used_s < wall.as_secs_f64() / 4.0, "{used_s:.2} s of CPU in {wall:?} while out of descriptors");
    let lines = d.log().lines().filter(|l| l.contains("accept failed")).count();
    assert!(lines <= 4, "accept failures are logged rate-limited: {lines} lines\n{}", d.log());
    // Descriptors back: the daemon answers again.
    held.clear();
    pending.clear();
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, out, _) = cli_at(&d.socket, &["status", "--json"]);
        if code == 0 && out.contains("\"generation\": 1") {
            break;
        }
        assert!(Instant::now() < end, "the daemon did not recover; log:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Send `bytes` on a new connection (from a thread: the daemon may hang up first) and read
/// every reply line until the daemon closes.
fn exchange(socket: &Path, bytes: Vec<u8>) -> Vec<serde_json::Value> {
    let s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&bytes);
        let _ = w.shutdown(std::net::Shutdown::Write);
    });
    let mut replies = Vec::new();
    for line in BufReader::new(s).lines() {
        let Ok(line) = line else { break };
        replies.push(serde_json::from_str(&line).unwrap());
    }
    let _ = writer.join();
    replies
}

#[test]
fn junk_and_oversized_requests_are_refused_in_bounded_memory() {
    let d = Daemon::start(POLICY, "lvs01", &[]);
    let pid = d.child.id();
    // One connection, many kinds of junk: one error reply each, in order.
    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let junk: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02\xff\xfe\xfd".to_vec(),
        b"{\"v\":1,\"cmd\":\"eval\",\"code\":\"\xff\xfe\"}".to_vec(),
        b"{\"v\":1,\"cmd\":\"status\",\"cmd\":\"reload\"}".to_vec(),
        b"{\"v\":1,\"cmd\":\"set_weight\",\"service\":\"web\",\"real\":\"198.51.100.1:80\",\"weight\":1e99}".to_vec(),
        b"{\"v\":18446744073709551616,\"cmd\":\"status\"}".to_vec(),
        b"[]".to_vec(),
        b"".to_vec(),
        deep.into_bytes(),
    ];
    let mut all = Vec::new();
    for j in &junk {
        all.extend_from_slice(j);
        all.push(b'\n');
    }
    all.extend_from_slice(b"{\"v\":1,\"cmd\":\"events\",\"limit\":1}\n");
    let replies = exchange(&d.socket, all);
    assert_eq!(replies.len(), junk.len() + 1, "{replies:?}");
    for r in &replies[..junk.len()] {
        assert_eq!(r["ok"], false, "{r}");
        assert!(r["error"].as_str().unwrap().starts_with("malformed request"), "{r}");
    }
    assert_eq!(replies[junk.len()]["ok"], true, "the connection still serves: {}", replies[junk.len()]);

    // 64 MiB without a newline: refused after the first MiB, and the daemon never holds it.
    let before = vm_hwm_kib(pid);
    let replies = exchange(&d.socket, vec![b'x'; 64 << 20]);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0]["error"].as_str().unwrap().contains("longer than 1048576 bytes"), "{}", replies[0]);
    let grown = vm_hwm_kib(pid).saturating_sub(before);
    assert!(grown < 16 << 10, "peak memory grew by {grown} KiB for a 64 MiB request");
    // A thousand short junk lines in a row: as many replies, the daemon lives on.
    let replies = exchange(&d.socket, b"nope\n".repeat(1000));
    assert_eq!(replies.len(), 1000);
    assert_eq!(d.status()["generation"], 1);
}

fn scrape(addr: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    Some(r)
}

const WEIGHT_1: &str = "lvsd_real_weight{service=\"web\",real=\"198.51.100.1:80\"}";

fn weight_in(page: &str) -> Option<u64> {
    page.lines().find_map(|l| l.strip_prefix(WEIGHT_1)).and_then(|v| v.trim().parse().ok())
}

#[test]
fn metrics_are_cached_and_scrapes_are_limited() {
    let addr = format!("127.0.0.1:{}", free_port());
    let d = Daemon::start(POLICY, "lvs01", &["--metrics", &addr]);
    d.wait_for(|_| scrape(&addr).is_some_and(|r| r.starts_with("HTTP/1.0 200")), "the metrics listener");

    // Caching: a change made right after a scrape that built the page is not seen by a
    // scrape soon after it; it is seen once the page is older than a second. The first
    // part is only judged when the two scrapes were less than 0.8 s apart.
    let mut judged = false;
    for w in 2..7u32 {
        std::thread::sleep(Duration::from_millis(1200));
        let t0 = Instant::now();
        let a = scrape(&addr).unwrap();
        let r = d.call(serde_json::json!({"v": 1, "cmd": "set_weight", "service": "web", "real": "198.51.100.1:80", "weight": w}));
        assert_eq!(r["ok"], true, "{r}");
        let b = scrape(&addr).unwrap();
        if t0.elapsed() < Duration::from_millis(800) {
            assert_eq!(weight_in(&a), weight_in(&b), "the second scrape was served from the cache:\n{b}");
            assert_ne!(weight_in(&b), Some(w as u64));
            judged = true;
            d.wait_for(|_| scrape(&addr).and_then(|p| weight_in(&p)) == Some(w as u64), "the cached page to expire");
            break;
        }
    }
    assert!(judged, "the machine never scraped twice within 0.8 s");

    // Eight connections that never send a request hold every slot: the next scrape gets a
    // 503 at once, not a wait.
    let idle: Vec<std::net::TcpStream> = (0..8).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    let r = scrape(&addr).unwrap();
    assert!(r.starts_with("HTTP/1.0 503 Service Unavailable\r\n"), "{r}");
    assert!(r.ends_with("too many concurrent scrapes\n"), "{r}");
    drop(idle);
    d.wait_for(|_| scrape(&addr).is_some_and(|r| r.starts_with("HTTP/1.0 200")), "the slots to come back");
}

#[test]
fn metrics_address_that_cannot_be_bound_fails_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let t = tempfile::tempdir().unwrap();
    let policy = t.path().join("policy.lua");
    std::fs::write(&policy, POLICY).unwrap();
    let socket = t.path().join("ctl").join("lvsd.sock");
    let out = Command::new(lvsd_bin())
        .args(["run", "-p", policy.to_str().unwrap(), "--dry-run", "--control", socket.to_str().unwrap(), "--metrics", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = out;
    let code = exit_within(&mut out, 20, "lvsd run with a taken metrics address");
    let mut err = String::new();
    out.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("metrics address {addr}")) && err.contains("in use"), "{err}");
    assert!(!socket.exists(), "no control socket left behind");
}

/// Run `lvsd ARGS` with stdout a pipe nobody reads any more.
fn into_closed_pipe(args: &[&str]) -> (i32, String) {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just created and are owned here alone.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(rd);
    let out = Command::new(lvsd_bin()).args(args).stdout(Stdio::from(wr)).stderr(Stdio::piped()).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn commands_end_quietly_when_their_reader_goes_away() {
    let d = Daemon::start(POLICY, "lvs01", &[]);
    let s = d.socket.to_str().unwrap();
    let p = d.policy.to_str().unwrap();
    for args in [
        &["status", "--control", s][..],
        &["status", "--json", "--control", s][..],
        &["events", "--control", s][..],
        &["reload", "--control", s][..],
        &["drain", "--control", s, "web", "198.51.100.1:80"][..],
        &["check", p][..],
        &["plan", p][..],
        &["plan", "--json", p][..],
    ] {
        let (code, err) = into_closed_pipe(args);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "lvsd {args:?}: {err}");
        assert_eq!(code, 0, "lvsd {args:?}: {err}");
    }
}

#[test]
fn status_piped_into_head_does_not_panic() {
    // Enough services that the text outgrows the pipe's buffer: head exits while lvsd writes.
    let src = r#"
for i = 1, 900 do
  lvsd.service ("svc" .. i) {
    vip = string.format("192.0.2.%d:%d", 1 + i % 200, 1000 + i),
    reals = { "198.51.100.1", "198.51.100.2" },
  }
end
"#;
    let d = Daemon::start(src, "lvs01", &[]);
    d.wait_for(|d| d.status()["ipvs_writes"] == 2700, "the table");
    let text_len = d.status()["text"].as_str().unwrap().len();
    assert!(text_len > 1 << 17, "the text ({text_len} bytes) must outgrow a pipe");
    let script = format!("{} status --control {} | head -1; echo \"rc=${{PIPESTATUS[0]}}\" >&2", lvsd_bin(), d.socket.display());
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("lvsd on lvs01: policy") && stdout.lines().count() == 1, "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("rc=0"), "{stderr}");
}
