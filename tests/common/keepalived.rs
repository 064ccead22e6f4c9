//! A real keepalived (Debian's 2.2.7) in a namespace, as a peer for tests.
#![allow(dead_code)]

use lvsd::net::netns::{Netns, privileged_or_skip};
use std::fs::File;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn keepalived_available(test: &str) -> bool {
    if !privileged_or_skip(test) {
        return false;
    }
    Command::new("keepalived").arg("--version").output().is_ok()
        || lvsd::net::netns::cannot_run(test, "keepalived is not installed (scripts/test installs it)")
}

/// keepalived in a namespace; stopped (SIGTERM, then SIGKILL after a bound) on drop.
pub struct Keepalived {
    pub child: Child,
    pub dir: tempfile::TempDir,
}

impl Keepalived {
    pub fn start(ns: &Netns, conf: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
        std::fs::write(path("keepalived.conf"), conf).unwrap();
        let log = File::create(path("log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp"])
            .args(["-f", &path("keepalived.conf"), "-p", &path("k.pid"), "-r", &path("v.pid")])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn keepalived");
        Keepalived { child, dir }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        // `ip netns exec` execs keepalived, so this pid is keepalived's parent process,
        // which stops its VRRP child on SIGTERM.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Keepalived {
    /// The last "Entering X STATE" keepalived logged for `instance`, as "master"/"backup"/"fault".
    pub fn state(&self, instance: &str) -> Option<String> {
        let log = self.log();
        let needle = format!("({instance}) Entering ");
        log.lines()
            .filter_map(|l| l.split_once(&needle).map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_ascii_lowercase()))
            .next_back()
    }

    /// Send a signal to keepalived's parent process.
    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}
