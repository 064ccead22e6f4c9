//! The IPVS connection sync daemons in the running director: every node runs both, whatever
//! its VRRP role (a backup forwards nothing, so its master daemon sends nothing; a new master
//! sends from its first packet); status shows both. Two
//! directors on one LAN (network namespaces on a bridge), in-memory IPVS (its daemons are
//! plain records, so the test sees what lvsd asked for).

mod common;
use common::lan::Lan;
use common::*;
use lvsd::net::netns::privileged_or_skip;
use serde_json::Value;

fn daemons(d: &Daemon) -> (bool, bool) {
    let st = d.status();
    let sd = &st["sync_daemon"];
    (sd["master"]["running"] == true, sd["backup"]["running"] == true)
}

fn policy(extra: &str) -> String {
    format!(
        r#"
local first = lvsd.node == "lvs01"
lvsd.vrrp "VI_1" {{
  interface = "eth0", vrid = 62, version = 3, advert_int = 0.2, state = "backup",
  priority = first and 100 or 200, vips = {{ "192.0.2.100/24" }}, {extra}
}}
lvsd.sync_daemon {{ interface = "eth0", id = 7, instance = "VI_1" }}
lvsd.service "web" {{ vip = "192.0.2.100:80", reals = {{ "192.0.2.21:80" }} }}
"#
    )
}

fn lan(name: &str) -> Lan {
    let lan = Lan::new(name, 2).unwrap();
    for (i, h) in lan.hosts.iter().enumerate() {
        h.ip(&["link", "set", "lo", "up"]).unwrap();
        h.ip(&["addr", "add", &format!("192.0.2.{}/24", i + 1), "dev", "eth0"]).unwrap();
    }
    lan
}

#[test]
fn every_node_runs_both_daemons_whatever_its_role() {
    if !privileged_or_skip("every_node_runs_both_daemons_whatever_its_role") {
        return;
    }
    let lan = lan("lsd");
    let src = policy("preempt_sync_wait = 0,");
    let a = Daemon::start_in(Some(lan.host(0).name()), &src, "lvs01", &[]);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master while alone");
    a.wait_for(|d| daemons(d) == (true, true), "lvs01 runs the master and the backup daemon");
    let st = a.status();
    let sd: &Value = &st["sync_daemon"];
    assert_eq!(sd["master"]["started_here"], true, "{sd}");
    assert_eq!(sd["backup"]["started_here"], true, "{sd}");
    assert_eq!(sd["id"], 7);
    assert!(sd["error"].is_null(), "{sd}");
    let ev = a.events("sync_daemon");
    assert!(ev.iter().any(|e| e == "started the backup sync daemon on eth0 id 7"), "{ev:?}");
    assert!(ev.iter().any(|e| e == "started the master sync daemon on eth0 id 7"), "{ev:?}");

    // A peer of higher priority takes over: both nodes run both daemons; nothing is switched.
    let b = Daemon::start_in(Some(lan.host(1).name()), &src, "lvs02", &[]);
    b.wait_for(|d| daemons(d) == (true, true), "lvs02 runs both from start-up");
    a.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs01 backup");
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 master");
    assert_eq!(daemons(&a), (true, true), "lvs01 keeps both daemons as backup");
    let ev = a.events("sync_daemon");
    assert!(!ev.iter().any(|e| e.starts_with("stopped")), "{ev:?}");
    assert_eq!(ev.len(), 2, "{ev:?}");
}

/// Sync-aware preemption: a returning node of higher priority holds its preemption until its
/// connection table stops growing (the in-memory backend has none: it settles at 0 after the
/// settle time), and says so in its events, in order.
#[test]
fn a_returning_master_waits_for_the_connection_table_before_preempting() {
    if !privileged_or_skip("a_returning_master_waits_for_the_connection_table_before_preempting") {
        return;
    }
    let lan = lan("lsp");
    let src = policy("preempt_sync_wait = 8,");
    let a = Daemon::start_in(Some(lan.host(0).name()), &src, "lvs01", &[]);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master while alone");
    let b = Daemon::start_in(Some(lan.host(1).name()), &src, "lvs02", &[]);
    b.wait_for(|d| !d.events("preempt_wait").is_empty(), "lvs02 holds its preemption");
    assert_eq!(b.vrrp_state("VI_1"), "backup");
    assert_eq!(b.status()["sync_daemon"]["backup"]["running"], true, "the returning node fills its table meanwhile");
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 preempts after the wait");
    a.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs01 backup");
    let ev = b.events("preempt_wait");
    assert!(ev[0].starts_with("VI_1: would preempt 192.0.2.1 (priority 100); waiting up to 8.0 s"), "{ev:?}");
    let released = ev.iter().find(|e| e.contains("settled at 0")).unwrap_or_else(|| panic!("{ev:?}"));
    // The rule's own figure: the table stayed flat (empty) for the 3 s settle time.
    let waited: f64 = released.split(" after ").nth(1).and_then(|r| r.split(' ').next()).and_then(|s| s.parse().ok()).unwrap();
    assert!((3.0..8.0).contains(&waited), "{released}");
    assert!(released.ends_with("preempting 192.0.2.1"), "{released}");
    // The order in the whole log: held, released, then the transition to master.
    let all: Vec<String> = {
        let r = b.call(serde_json::json!({"v": 1, "cmd": "events", "limit": 1000}));
        r["result"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap().to_string()).collect()
    };
    let pos = |needle: &str| all.iter().position(|m| m.contains(needle)).unwrap_or_else(|| panic!("{needle} not in {all:?}"));
    assert!(pos("would preempt") < pos("settled at 0"));
    assert!(pos("settled at 0") < pos("backup -> master"), "{all:?}");
}

/// `lvs_timeouts` (keepalived's, `ipvsadm --set`) in the running director: set at start from
/// the kernel's defaults, set again by a reload that changes them, left alone by one that
/// does not. (The kernel's side is the VM tier's tests/vm/daemon.sh.)
#[test]
fn lvs_timeouts_are_set_at_start_and_by_a_reload() {
    let src = |udp: u32| {
        format!(
            "lvsd.global {{ lvs_timeouts = {{ tcp = 7200, udp = {udp} }} }}\n\
             lvsd.service \"web\" {{ vip = \"192.0.2.100:80\", reals = {{ \"192.0.2.21:80\" }} }}\n"
        )
    };
    let d = Daemon::start(&src(60), "lvs01", &[]);
    let set = |d: &Daemon| d.events("ipvs").into_iter().filter(|e| e.contains("connection timeouts")).collect::<Vec<_>>();
    d.wait_for(|d| !set(d).is_empty(), "the timeouts set at start");
    assert!(set(&d)[0].contains("connection timeouts (tcp tcpfin udp) 7200 120 60, were 900 120 300"), "{:?}", set(&d));
    for (udp, events) in [(90, 2), (90, 2)] {
        let g = d.status()["generation"].as_u64().unwrap();
        // The same policy again with a comment: a reload that changes nothing of them.
        std::fs::write(&d.policy, format!("{}-- {g}\n", src(udp))).unwrap();
        d.wait_for(|d| d.status()["generation"].as_u64().unwrap() > g, "the reload");
        assert_eq!(set(&d).len(), events, "{:?}", set(&d));
    }
    assert!(set(&d)[1].contains("7200 120 90, were 7200 120 60"), "{:?}", set(&d));
}
