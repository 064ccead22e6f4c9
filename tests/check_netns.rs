//! Timeouts against a blackholed address: in a network namespace the test creates (and
//! always deletes), documentation-range addresses are sent out of a veth whose peer drops
//! them silently (a permanent neighbour entry to a MAC nobody has). A check of them must time out, count as a failure, and never hold
//! up the other checks. Needs root: skips without it, fails when LVSD_REQUIRE_PRIVILEGED=1.

mod check_support;

use check_support::*;
use lvsd::check::{CheckManager, CheckOptions};
use lvsd::desired::RealState;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

fn privileged() -> bool {
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("LVSD_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("this test needs root (network namespaces) and LVSD_REQUIRE_PRIVILEGED=1");
    }
    eprintln!("skipped: needs root for network namespaces");
    false
}

/// A network namespace deleted on drop.
struct Netns(String);

impl Netns {
    /// `tag`: the test's own, as tests of this file run at once.
    fn new(tag: &str) -> Netns {
        let name = format!("lvsd-{tag}-{}", std::process::id());
        let ns = Netns(name);
        ns.ip(&["netns", "add", &ns.0]);
        ns
    }
    fn ip(&self, args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("ip(8) is needed");
        assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    fn exec(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.0];
        all.extend_from_slice(args);
        self.ip(&all);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "delete", &self.0]).status();
    }
}

/// Move the calling thread into `ns` (sockets made afterwards live there) until dropped.
struct Entered(std::fs::File);

fn enter(ns: &Netns) -> Entered {
    let home = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
    let f = std::fs::File::open(format!("/run/netns/{}", ns.0)).unwrap();
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns: {}", std::io::Error::last_os_error());
    Entered(home)
}

impl Drop for Entered {
    fn drop(&mut self) {
        unsafe { libc::setns(self.0.as_raw_fd(), libc::CLONE_NEWNET) };
    }
}

#[test]
fn blackholed_reals_time_out_without_blocking_others() {
    if !privileged() {
        return;
    }
    let ns = Netns::new("check");
    ns.exec(&["link", "set", "lo", "up"]);
    ns.exec(&["link", "add", "bh0", "type", "veth", "peer", "name", "bh1"]);
    ns.exec(&["addr", "add", "198.51.100.1/24", "dev", "bh0"]);
    ns.exec(&["addr", "add", "2001:db8::1/64", "dev", "bh0", "nodad"]);
    ns.exec(&["link", "set", "bh0", "up"]);
    ns.exec(&["link", "set", "bh1", "up"]);
    for a in ["198.51.100.2", "198.51.100.3", "2001:db8::2"] {
        ns.exec(&["neigh", "add", a, "lladdr", "02:00:00:00:00:02", "dev", "bh0", "nud", "permanent"]);
    }
    let _inside = enter(&ns);
    local(async {
        let good = tcp_server(true, Switch::on(), |_| Vec::new()).await;
        let p = policy(&format!(
            r#"lvsd.service "s" {{ vip = "192.0.2.1:80", reals = {{
                {{ address = "198.51.100.2:80", check = lvsd.check.tcp {{ interval = 0.1, timeout = 0.5, retries = 1, retry_delay = 0.1 }} }},
                {{ address = "198.51.100.3:53", check = lvsd.check.dns {{ interval = 0.1, timeout = 0.5, retries = 0 }} }},
                {{ address = "{good}", check = lvsd.check.tcp {{ interval = 0.05, timeout = 1, retries = 0 }} }},
            }} }}
            lvsd.service "s6" {{ vip = "[2001:db8:1::1]:80", reals = {{
                {{ address = "[2001:db8::2]:80", check = lvsd.check.http {{ interval = 0.1, timeout = 0.5, retries = 0 }} }},
            }} }}"#
        ));
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let m = CheckManager::with_options(&p.model, p.lua.clone(), tx, CheckOptions::default());
        m.start();
        let blackholed = [(0, 0), (0, 1), (1, 0)];
        let all_down = || blackholed.iter().all(|&(s, r)| m.real_state(s, r) == RealState::Down);
        assert!(wait_until(Duration::from_secs(15), all_down).await, "blackholed reals did not go down");
        for (s, r) in blackholed {
            let st = m.real_status(s, r).unwrap();
            let e = st.checks[0].history.last().unwrap().error.clone().unwrap();
            assert!(e.contains("timed out"), "real {s}/{r}: {e}");
        }
        let st = m.real_status(0, 2).unwrap();
        assert!(st.checks[0].history.len() >= 8, "the good check was held up: {} results", st.checks[0].history.len());
        assert!(st.checks[0].history.iter().all(|r| r.ok));
        assert_eq!(m.real_state(0, 2), RealState::Up(1));
    });
}

/// `ping`: an echo request to the real's address, up on its reply. Addresses of the namespace
/// itself answer (the kernel replies to its own addresses); one taken away goes unanswered
/// and its real goes down, until the address is back.
#[test]
fn ping_checks_follow_the_address() {
    if !privileged() {
        return;
    }
    let ns = Netns::new("ping");
    ns.exec(&["link", "set", "lo", "up"]);
    ns.exec(&["link", "add", "pg0", "type", "veth", "peer", "name", "pg1"]);
    ns.exec(&["addr", "add", "198.51.100.1/24", "dev", "pg0"]);
    ns.exec(&["addr", "add", "198.51.100.5/32", "dev", "pg0"]);
    ns.exec(&["addr", "add", "2001:db8::1/64", "dev", "pg0", "nodad"]);
    ns.exec(&["link", "set", "pg0", "up"]);
    ns.exec(&["link", "set", "pg1", "up"]);
    let _inside = enter(&ns);
    local(async {
        let p = policy(
            r#"local ping = lvsd.check.ping { interval = 0.1, timeout = 0.5, retries = 0 }
            lvsd.service "s" { vip = "192.0.2.1:80", reals = {
                { address = "198.51.100.5:80", check = ping },
                { address = "198.51.100.1:80", check = ping },
            } }
            lvsd.service "s6" { vip = "[2001:db8:1::1]:80", reals = {
                { address = "[2001:db8::1]:80", check = ping },
            } }"#,
        );
        assert_eq!(p.model.services[0].reals[0].checks[0].kind.name(), "ping");
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let m = CheckManager::with_options(&p.model, p.lua.clone(), tx, CheckOptions::default());
        m.start();
        let up = |s: usize, r: usize| matches!(m.real_state(s, r), RealState::Up(_));
        assert!(wait_until(Duration::from_secs(15), || up(0, 0) && up(0, 1) && up(1, 0)).await, "answered pings bring every real up");

        // 198.51.100.5 leaves: on the link, but nobody answers for it.
        ns.exec(&["addr", "del", "198.51.100.5/32", "dev", "pg0"]);
        assert!(wait_until(Duration::from_secs(15), || m.real_state(0, 0) == RealState::Down).await, "an unanswered ping takes it down");
        let e = m.real_status(0, 0).unwrap().checks[0].history.last().unwrap().error.clone().unwrap();
        assert!(e.contains("timed out") || e.contains("unreachable"), "{e}");
        assert!(up(0, 1) && up(1, 0), "the others stay up");

        ns.exec(&["addr", "add", "198.51.100.5/32", "dev", "pg0"]);
        assert!(wait_until(Duration::from_secs(15), || up(0, 0)).await, "it comes back with its address");
    });
}
