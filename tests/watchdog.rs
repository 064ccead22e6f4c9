//! systemd's watchdog where systemd is not PID 1: lvsd is started with NOTIFY_SOCKET on a
//! datagram socket the test owns and WATCHDOG_USEC set, as systemd would for `WatchdogSec=`.
//! WATCHDOG=1 must come at about half the timeout, and stop while the director's loop is
//! stalled (the process stopped for seconds), then resume.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = r#"
lvsd.service "web" {
  vip = "192.0.2.10:80",
  reals = { "198.51.100.11:80" },
}
"#;

/// The watchdog timeout given to lvsd; pings are due every half of it.
const TIMEOUT: Duration = Duration::from_secs(2);

struct Notes {
    sock: UnixDatagram,
    /// (when, message) of every datagram so far.
    seen: Vec<(Instant, String)>,
}

impl Notes {
    /// Read datagrams until `until` is true of what was seen, or `bound` passes.
    fn read_until(&mut self, bound: Duration, until: impl Fn(&[(Instant, String)]) -> bool) -> bool {
        let end = Instant::now() + bound;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if until(&self.seen) {
                return true;
            }
            if let Ok(n) = self.sock.recv(&mut buf) {
                self.seen.push((Instant::now(), String::from_utf8_lossy(&buf[..n]).into_owned()));
            }
        }
        until(&self.seen)
    }

    fn pings(&self, from: Instant) -> Vec<Instant> {
        self.seen.iter().filter(|(t, m)| *t >= from && m == "WATCHDOG=1").map(|(t, _)| *t).collect()
    }
}

fn count_pings_since(seen: &[(Instant, String)], from: Instant) -> usize {
    seen.iter().filter(|(t, m)| *t >= from && m == "WATCHDOG=1").count()
}

#[test]
fn watchdog_pings_at_half_the_timeout_and_stop_while_the_loop_is_stalled() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.lua");
    std::fs::write(&policy, POLICY).unwrap();
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut notes = Notes { sock, seen: Vec::new() };
    let control = dir.path().join("lvsd.sock");
    let log = std::fs::File::create(dir.path().join("lvsd.log")).unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(
        Command::new(common::lvsd_bin())
            .args(["run", "-p", policy.to_str().unwrap(), "--node", "lvs01", "--dry-run", "--control", control.to_str().unwrap()])
            // The stall below must outlast the timeout without hitting the instruction limit.
            .args(["--instruction-limit", "1000000000000"])
            .env("NOTIFY_SOCKET", &notify)
            .env("WATCHDOG_USEC", TIMEOUT.as_micros().to_string())
            .env_remove("WATCHDOG_PID")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(dir.path().join("lvsd.log")).unwrap_or_default();

    // READY=1, then the pings.
    assert!(notes.read_until(Duration::from_secs(20), |s| s.iter().any(|(_, m)| m == "READY=1")), "no READY=1; log:\n{}", log());
    let ready = notes.seen.iter().find(|(_, m)| m == "READY=1").unwrap().0;
    assert!(
        notes.read_until(Duration::from_secs(15), |s| count_pings_since(s, ready) >= 5),
        "fewer than 5 pings in 15 s; seen {:?}; log:\n{}",
        notes.seen,
        log()
    );
    let pings = notes.pings(ready);
    let gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = gaps.iter().sum::<Duration>() / gaps.len() as u32;
    // Half the timeout apart: never bunched up, and on average well inside the timeout.
    assert!(gaps.iter().all(|g| *g >= TIMEOUT / 4), "pings bunched up: {gaps:?}");
    assert!(mean < TIMEOUT, "pings on average {mean:?} apart, past the {TIMEOUT:?} timeout: {gaps:?}");

    // Stall the process for 5 s (SIGSTOP, then SIGCONT): no evaluation can hold the loop that
    // long any more (the REPL's Lua has a one-second deadline), and a stopped process is what
    // a stuck one looks like from outside.
    let stall = Duration::from_secs(5);
    let pid = child.0.id() as i32;
    let asked = Instant::now();
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    notes.read_until(stall, |_| false);
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let answered = Instant::now();
    let stalled_for = answered - asked;
    // Pings resume afterwards.
    assert!(notes.read_until(Duration::from_secs(15), |s| count_pings_since(s, answered) >= 3), "pings did not resume; log:\n{}", log());

    // While the loop was held, the pings stopped: the longest silence around the stall covers
    // most of it and exceeds the timeout, so systemd would have restarted lvsd.
    let around = notes.pings(asked - TIMEOUT);
    let longest = around.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(longest > TIMEOUT, "longest silence {longest:?}, not past the {TIMEOUT:?} timeout");
    assert!(longest >= stalled_for - TIMEOUT, "pings went on during the stall: longest silence {longest:?} in a {stalled_for:?} stall");
    eprintln!("ping gaps {gaps:?} (mean {mean:?}); stall {stalled_for:?}, longest silence around it {longest:?}");
    let during = notes.pings(asked + TIMEOUT).into_iter().filter(|t| *t + TIMEOUT / 2 < answered).count();
    assert_eq!(during, 0, "pings sent while the loop was held");

    // A clean stop still says so.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    assert!(notes.read_until(Duration::from_secs(20), |s| s.iter().any(|(_, m)| m == "STOPPING=1")), "no STOPPING=1; log:\n{}", log());
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}; log:\n{}", log());
}
