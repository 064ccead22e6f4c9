//! Reloads against running VRRP instances: tracks, yields and restarted instances end in the
//! state the new policy says; a load that never finishes is abandoned and the next save is
//! applied; SIGTERM is not held by it.

mod common;
use common::lan::Lan;
use common::*;
use lvsd::net::netns::privileged_or_skip;
use std::time::{Duration, Instant};

fn lan() -> Lan {
    let lan = Lan::new("lvr", 1).unwrap();
    lan.host(0).ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]).unwrap();
    lan
}

/// One instance; `vrid` and `track` vary between generations.
fn policy(vrid: u8, track: &str) -> String {
    format!(
        r#"
lvsd.vrrp "VI_1" {{
  interface = "eth0", vrid = {vrid}, version = 3, advert_int = 0.2, priority = 100,
  vips = {{ "192.0.2.100/24" }},
  track = {{ {track} }},
}}
lvsd.service "web" {{ vip = "192.0.2.100:80", reals = {{ "198.51.100.1:80" }} }}
"#
    )
}

const FAILING: &str = r#"lvsd.track.lua { name = "chk", interval = 0.2, weight = 0, run = function() return false end }"#;
const LOWERING: &str = r#"lvsd.track.lua { name = "chk", interval = 0.2, weight = -30, run = function() return false end }"#;

fn save(d: &Daemon, src: &str) {
    let tmp = d.policy.with_extension("new");
    std::fs::write(&tmp, src).unwrap();
    std::fs::rename(&tmp, &d.policy).unwrap();
}

fn generation(d: &Daemon) -> u64 {
    d.status()["generation"].as_u64().unwrap_or(0)
}

fn reload_to(d: &Daemon, src: &str) {
    let g = generation(d);
    save(d, src);
    d.wait_for(|d| generation(d) > g, "the save is applied");
}

#[test]
fn reload_reconciles_tracks_yield_and_restarted_instances() {
    if !privileged_or_skip("reload_reconciles_tracks_yield_and_restarted_instances") {
        return;
    }
    let lan = lan();
    let d = Daemon::start_in(Some(lan.host(0).name()), &policy(51, FAILING), "lvs01", &[]);
    d.wait_for(|d| d.vrrp_state("VI_1") == "fault", "a failing track of weight 0 is Fault");

    // The track removed: the instance leaves Fault and, alone on its LAN, becomes master.
    reload_to(&d, &policy(51, ""));
    d.wait_for(|d| d.vrrp_state("VI_1") == "master", "the removed track no longer holds it in Fault");

    // Back in, then the VRID changes (the instance restarts): the restarted instance knows
    // the failing track before it elects itself and never becomes master.
    reload_to(&d, &policy(51, FAILING));
    d.wait_for(|d| d.vrrp_state("VI_1") == "fault", "failing again");
    let masters_before = d.events("vrrp").iter().filter(|e| e.contains("-> master")).count();
    reload_to(&d, &policy(52, FAILING));
    d.wait_for(|d| d.status()["vrrp"][0]["vrid"] == 52, "restarted with VRID 52");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(d.vrrp_state("VI_1"), "fault", "the restarted instance stays in Fault: {:?}", d.events("vrrp"));
    let masters_after = d.events("vrrp").iter().filter(|e| e.contains("-> master")).count();
    assert_eq!(masters_before, masters_after, "never master in between: {:?}", d.events("vrrp"));

    // A weight change is sent again: -30 instead of Fault.
    reload_to(&d, &policy(52, LOWERING));
    d.wait_for(|d| d.vrrp_state("VI_1") == "master" && d.status()["vrrp"][0]["priority"] == 70, "priority 100 - 30");

    // A yield holds priority 1; a reload clears it (as the README says).
    reload_to(&d, &policy(52, ""));
    d.wait_for(|d| d.status()["vrrp"][0]["priority"] == 100, "no track, full priority");
    let (code, _, err) = d.cli(&["yield", "VI_1"]);
    assert_eq!(code, 0, "{err}");
    d.wait_for(|d| d.status()["vrrp"][0]["priority"] == 1, "yielded: priority 1");
    reload_to(&d, &policy(52, "").replace("priority = 100", "priority = 101"));
    d.wait_for(|d| d.status()["vrrp"][0]["priority"] == 101, "the reload cleared the yield");
}

/// A policy whose load never ends inside one C call (a pattern that backtracks for ever),
/// or ends only when something stops it.
const HANGS: &str = r#"
local s = string.rep("a", 60)
string.find(s, string.rep("a-", 30) .. "b")
"#;

#[test]
fn a_hung_load_is_abandoned_and_the_next_save_applies() {
    if !need_root("a_hung_load_is_abandoned_and_the_next_save_applies") {
        return;
    }
    let src = policy(51, "");
    let mut d = Daemon::start(&src, "lvs01", &[]);
    let g = generation(&d);
    save(&d, &format!("{src}\n{HANGS}"));
    // Whatever ends that load (a limit, or its deadline), it is reported and not applied,
    // and a good save afterwards is.
    let end = Instant::now() + Duration::from_secs(25);
    while d.events("reload_failed").is_empty() {
        assert!(Instant::now() < end, "the hung load was never given up; log:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(generation(&d), g, "nothing of it was applied");
    reload_to(&d, &src.replace("\"198.51.100.1:80\"", "\"198.51.100.2:80\""));

    // Again, and SIGTERM while it hangs: the process exits within seconds.
    save(&d, &format!("{src}\n{HANGS}"));
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    unsafe { libc::kill(d.child.id() as i32, libc::SIGTERM) };
    let code = loop {
        if let Some(s) = d.child.try_wait().unwrap() {
            break s.code();
        }
        if t0.elapsed() > Duration::from_secs(8) {
            d.kill9();
            panic!("still running 8 s after SIGTERM; log:\n{}", d.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
}

fn has_vip(lan: &Lan) -> bool {
    lan.host(0).ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap().contains("192.0.2.100/24")
}

#[test]
fn empty_truncated_and_two_step_saves_never_take_the_site_down() {
    if !privileged_or_skip("empty_truncated_and_two_step_saves_never_take_the_site_down") {
        return;
    }
    let lan = lan();
    let src = policy(51, "");
    let d = Daemon::start_in(Some(lan.host(0).name()), &src, "lvs01", &[]);
    d.wait_for(|d| d.vrrp_state("VI_1") == "master", "master");
    assert!(has_vip(&lan));
    let services = |d: &Daemon| d.status()["services"].as_array().map(|a| a.len()).unwrap_or(0);
    assert_eq!(services(&d), 1);
    let g = generation(&d);

    // Truncated in place, then the same content written 300 ms later (an editor or a
    // configuration-management run writing in two steps); then emptied and left so.
    for body in ["", "lvsd.vrrp \"VI_1\" { interf", ""] {
        std::fs::write(&d.policy, body).unwrap();
        for _ in 0..15 {
            std::thread::sleep(Duration::from_millis(20));
            assert!(has_vip(&lan), "the VIP never leaves");
            assert_eq!(d.vrrp_state("VI_1"), "master");
        }
        std::fs::write(&d.policy, &src).unwrap();
        std::thread::sleep(Duration::from_millis(400));
    }
    std::fs::write(&d.policy, "").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(has_vip(&lan) && services(&d) == 1, "an empty file is a save in progress, never a policy");

    // A complete policy that declares nothing is refused by the guard, and says so...
    let failed = d.events("reload_failed").len();
    save(&d, "-- nothing here yet\n");
    d.wait_for(|d| d.events("reload_failed").len() > failed, "the empty policy is refused");
    assert!(d.events("reload_failed").last().unwrap().contains("--force"), "{:?}", d.events("reload_failed"));
    assert!(has_vip(&lan) && services(&d) == 1 && d.vrrp_state("VI_1") == "master");
    assert!(generation(&d) >= g);

    // ...until the operator forces it.
    let (code, _, err) = d.cli(&["reload", "--force"]);
    assert_eq!(code, 0, "{err}");
    d.wait_for(|d| services(d) == 0 && d.status()["vrrp"].as_array().is_none_or(|a| a.is_empty()), "forced: applied");
    d.wait_for(|_| !has_vip(&lan), "and the VIP goes with it");
}

#[test]
fn a_unicast_peer_change_is_applied_in_place() {
    if !privileged_or_skip("a_unicast_peer_change_is_applied_in_place") {
        return;
    }
    let lan = lan();
    let unicast = |peers: &str| {
        policy(51, "").replace("priority = 100,", &format!("priority = 100, unicast_src = \"192.0.2.1\", unicast_peers = {{ {peers} }},"))
    };
    let d = Daemon::start_in(Some(lan.host(0).name()), &unicast("\"192.0.2.2\""), "lvs01", &[]);
    d.wait_for(|d| d.vrrp_state("VI_1") == "master", "alone on its LAN: master");
    let transitions = d.events("vrrp").len();
    let sent = |d: &Daemon| d.status()["vrrp"][0]["adverts_sent"].as_u64().unwrap_or(0);
    reload_to(&d, &unicast("\"192.0.2.2\", \"192.0.2.3\""));
    let before = sent(&d);
    d.wait_for(|d| sent(d) > before + 3, "adverts go on after the change");
    assert_eq!(d.vrrp_state("VI_1"), "master");
    assert_eq!(d.events("vrrp").len(), transitions, "no restart, no transition: {:?}", d.events("vrrp"));
}

/// The VRRP thread's scheduling class and real-time priority (`/proc/PID/task/TID/stat`
/// fields 41 and 40; see proc(5)).
fn vrrp_thread_scheduling(d: &Daemon) -> (u32, u32) {
    let pid = d.child.id();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        if std::fs::read_to_string(dir.join("comm")).unwrap_or_default().trim() != "lvsd-vrrp" {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        // Fields after the command name, which is in parentheses, start at field 3.
        let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        return (f[41 - 3].parse().unwrap(), f[40 - 3].parse().unwrap());
    }
    panic!("no lvsd-vrrp thread in {pid}");
}

#[test]
fn the_vrrp_threads_scheduling_follows_the_policy() {
    if !privileged_or_skip("the_vrrp_threads_scheduling_follows_the_policy") {
        return;
    }
    const RR: u32 = libc::SCHED_RR as u32;
    const OTHER: u32 = libc::SCHED_OTHER as u32;
    let service = r#"lvsd.service "web" { vip = "192.0.2.100:80", reals = { "198.51.100.1:80" } }"#;
    let d = Daemon::start(service, "lvs01", &[]);
    // The heartbeat takes a new generation's setting after the director has: wait for it.
    let takes = |d: &Daemon, want: (u32, u32), what: &str| d.wait_for(|d| vrrp_thread_scheduling(d) == want, what);
    takes(&d, (RR, 1), "by default the lowest real-time priority");
    reload_to(&d, &format!("lvsd.global {{ vrrp_rt_priority = 0 }}\n{service}"));
    takes(&d, (OTHER, 0), "0: the ordinary class, as keepalived by default");
    reload_to(&d, &format!("lvsd.global {{ vrrp_rt_priority = 40 }}\n{service}"));
    takes(&d, (RR, 40), "40: SCHED_RR at 40");
    reload_to(&d, service);
    takes(&d, (RR, 1), "the setting removed: the default again");
}
