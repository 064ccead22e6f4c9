//! Helpers shared by integration tests: a director process and control-socket calls.
#![allow(dead_code)]

pub mod capture;
pub mod fuzz;
pub mod keepalived;
pub mod lan;
pub mod vm;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn lvsd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lvsd")
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Skip a privileged test, or fail it when LVSD_REQUIRE_PRIVILEGED=1.
pub fn need_root(what: &str) -> bool {
    is_root() || lvsd::net::netns::cannot_run(what, "needs root")
}

/// A `lvsd run --dry-run` process; killed on drop.
pub struct Daemon {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub policy: PathBuf,
}

impl Daemon {
    pub fn start(policy_src: &str, node: &str, extra: &[&str]) -> Daemon {
        Daemon::start_in(None, policy_src, node, extra)
    }

    /// Start inside network namespace `netns` (with `ip netns exec`, which execs lvsd: the
    /// child's pid is lvsd's, so signals reach it).
    pub fn start_in(netns: Option<&str>, policy_src: &str, node: &str, extra: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.lua");
        std::fs::write(&policy, policy_src).unwrap();
        Daemon::start_with(dir, policy, netns, node, extra, &[])
    }

    /// As [`Daemon::start_in`], with variables added to the daemon's environment.
    pub fn start_in_env(netns: Option<&str>, policy_src: &str, node: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.lua");
        std::fs::write(&policy, policy_src).unwrap();
        Daemon::start_with(dir, policy, netns, node, &[], env)
    }

    /// Start again with the same directory and policy (after a kill).
    pub fn restart(self, netns: Option<&str>, node: &str, extra: &[&str]) -> Daemon {
        let mut me = self;
        let _ = me.child.kill();
        let _ = me.child.wait();
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&me.policy, dir.path().join("policy.lua")).unwrap();
        let policy = dir.path().join("policy.lua");
        Daemon::start_with(dir, policy, netns, node, extra, &[])
    }

    fn start_with(
        dir: tempfile::TempDir,
        policy: PathBuf,
        netns: Option<&str>,
        node: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let socket = dir.path().join("ctl").join("lvsd.sock");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, lvsd_bin()]);
                c
            }
            None => Command::new(lvsd_bin()),
        };
        let child = cmd
            .args(["run", "-p", policy.to_str().unwrap(), "--node", node, "--dry-run", "--control", socket.to_str().unwrap()])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("lvsd.log")).unwrap()))
            .spawn()
            .unwrap();
        let mut d = Daemon { child, dir, socket, policy };
        // Ready when the control socket answers; a daemon that exited is reported with its log.
        let end = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&d.socket).is_err() {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("lvsd exited ({status}) before answering; log:\n{}", d.log());
            }
            assert!(Instant::now() < end, "the control socket never answered; log:\n{}", d.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("lvsd.log")).unwrap_or_default()
    }

    /// Poll `cond` for up to 10 s.
    pub fn wait_for(&self, cond: impl Fn(&Daemon) -> bool, what: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if cond(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}; log:\n{}", self.log());
    }

    /// Send one raw line, return the raw reply line.
    pub fn raw(&self, line: &[u8]) -> String {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Write from a thread: the daemon may answer (and hang up) before taking all of a
        // request that is too long.
        let mut w = s.try_clone().unwrap();
        let line = line.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = w.write_all(&line);
        });
        let mut r = String::new();
        BufReader::new(s).read_line(&mut r).unwrap();
        let _ = writer.join();
        r
    }

    pub fn call(&self, req: serde_json::Value) -> serde_json::Value {
        let mut line = serde_json::to_vec(&req).unwrap();
        line.push(b'\n');
        serde_json::from_str(&self.raw(&line)).unwrap()
    }

    pub fn status(&self) -> serde_json::Value {
        let r = self.call(serde_json::json!({"v": 1, "cmd": "status"}));
        assert_eq!(r["ok"], true, "{r}");
        r["result"].clone()
    }

    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        cli_at(&self.socket, args)
    }

    pub fn stop(&mut self) -> i32 {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap().code().unwrap_or(-1)
    }

    /// The exit code once the daemon has ended on its own, waiting at most 10 s.
    pub fn exit_code(&mut self) -> i32 {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < end, "lvsd is still running; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    /// The state of VRRP instance `name` as status reports it ("master", "backup", ...).
    pub fn vrrp_state(&self, name: &str) -> String {
        let st = self.status();
        st["vrrp"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .map(|v| v["state"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    /// Feed `script` to `lvsd repl` on a pipe (it must exit 0); what it printed.
    pub fn repl(&self, script: &str) -> String {
        let mut child = Command::new(lvsd_bin())
            .args(["repl", "--control", self.socket.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text
    }

    /// When the last event of `kind` whose message contains `what` happened (seconds).
    pub fn event_at(&self, kind: &str, what: &str) -> f64 {
        let r = self.call(serde_json::json!({"v": 1, "cmd": "events", "limit": 100}));
        let found = r["result"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|e| e["kind"] == kind && e["message"].as_str().unwrap().contains(what))
            .cloned();
        found.unwrap_or_else(|| panic!("no {kind} event with '{what}': {r}"))["at"].as_f64().unwrap()
    }

    /// Recent events of one kind, as messages.
    pub fn events(&self, kind: &str) -> Vec<String> {
        let r = self.call(serde_json::json!({"v": 1, "cmd": "events", "limit": 1000}));
        r["result"].as_array().unwrap().iter().filter(|e| e["kind"] == kind).map(|e| e["message"].as_str().unwrap().to_string()).collect()
    }
}

pub fn cli_at(socket: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(lvsd_bin()).args(args).arg("--control").arg(socket).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait (bounded: 20 s) until `cond` holds; on timeout fail with `log()`.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool, log: impl Fn() -> String) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out: {what}\n{}", log());
}
