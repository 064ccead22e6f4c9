//! The imported pair policy speaks VRRP with keepalived 2.2.7 running the original files:
//! lvsd on one director, keepalived on the other, in both roles. keepalived's adverts all
//! pass lvsd's checks (same VRID, PASS auth, VIPs, advert interval), the higher priority
//! holds the VIP, and the survivor takes over. Host tier: root, network namespaces.

mod common;
mod import_support;

use common::Daemon;
use common::keepalived::{Keepalived, keepalived_available};
use import_support::{fixture, pair};
use lvsd::net::netns::Lan;
use std::time::{Duration, Instant};

const VIP: &str = "198.51.100.123";

fn has_vip(lan: &Lan, host: usize) -> bool {
    lan.host(host).ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap().contains(&format!(" {VIP}/"))
}

fn wait(what: &str, mut cond: impl FnMut() -> bool, log: impl Fn() -> String) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out: {what}\n{}", log());
}

#[test]
fn imported_pair_and_keepalived_form_one_vrrp_pair() {
    if !keepalived_available("imported_pair_and_keepalived_form_one_vrrp_pair") {
        return;
    }
    let lan = Lan::new("lvim", 2).unwrap();
    for h in 0..2 {
        lan.host(h).ip(&["addr", "add", &format!("192.0.2.{}/24", h + 1), "dev", "eth0"]).unwrap();
    }
    let ns0 = lan.host(0).name().to_string();
    let policy = pair(("lvs01", "dr-master.conf"), ("lvs02", "dr-backup.conf")).lua;
    let master_conf = std::fs::read_to_string(fixture("dr-master.conf")).unwrap();
    let backup_conf = std::fs::read_to_string(fixture("dr-backup.conf")).unwrap();

    // 1. keepalived on the master's file; lvsd as lvs02 (priority 90) stays backup.
    let k = Keepalived::start(lan.host(1), &master_conf);
    wait("keepalived master", || has_vip(&lan, 1), || k.log());
    let mut l = Daemon::start_in(Some(&ns0), &policy, "lvs02", &[]);
    l.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvsd backup");
    l.wait_for(|d| d.status()["vrrp"][0]["master"]["priority"] == 100, "keepalived's adverts seen");
    assert!(!has_vip(&lan, 0));
    let dropped = &l.status()["vrrp"][0]["dropped"];
    assert!(dropped.as_object().unwrap().is_empty(), "keepalived's adverts all pass lvsd's checks: {dropped}");

    // 2. keepalived stops: lvsd takes the VIP.
    drop(k);
    wait("lvsd takes over", || has_vip(&lan, 0), || l.log());
    assert_eq!(l.stop(), 0);

    // 3. Roles swapped: keepalived on the backup's file (90), lvsd as lvs01 (100) is master.
    let k = Keepalived::start(lan.host(1), &backup_conf);
    let l = Daemon::start_in(Some(&ns0), &policy, "lvs01", &[]);
    wait("lvsd master, keepalived backup", || has_vip(&lan, 0) && !has_vip(&lan, 1), || format!("{}\n{}", l.log(), k.log()));
    wait("keepalived backup", || k.state("VI_1").as_deref() == Some("backup"), || k.log());
    assert_eq!(l.vrrp_state("VI_1"), "master");
}

/// Issue 16 items 1 and 5: `vrrp_strict` (no authentication, non-owners start as backup),
/// a repeated advert_int (the last counts) and a second virtual_ipaddress block (added to
/// the first), imported and run against keepalived on the original files, both ways round.
/// Any disagreement (auth, advert interval, address count) would make each side drop the
/// other's adverts and both hold the VIPs.
#[test]
fn strict_mode_and_repeated_keywords_agree_with_keepalived_on_the_wire() {
    if !keepalived_available("strict_mode_and_repeated_keywords_agree_with_keepalived_on_the_wire") {
        return;
    }
    let lan = Lan::new("lvst", 2).unwrap();
    for h in 0..2 {
        lan.host(h).ip(&["addr", "add", &format!("192.0.2.{}/24", h + 1), "dev", "eth0"]).unwrap();
    }
    let ns0 = lan.host(0).name().to_string();
    let conf = |f: &str| std::fs::read_to_string(fixture(f)).unwrap();
    let high = import_support::import("fidelity/wire-a.conf").lua;
    let low = import_support::import("fidelity/wire-b.conf").lua;
    assert!(!high.contains("auth_pass =") && !high.contains("advert_int =") && !high.contains("state ="), "{high}");

    // 1. keepalived (150) is master; lvsd on the imported 100 file stays backup and drops nothing.
    let k = Keepalived::start(lan.host(1), &conf("fidelity/wire-a.conf"));
    wait("keepalived master", || has_vip(&lan, 1), || k.log());
    let mut l = Daemon::start_in(Some(&ns0), &low, "lvs01", &[]);
    l.wait_for(|d| d.status()["vrrp"][0]["master"]["priority"] == 150, "keepalived's adverts seen");
    assert_eq!(l.vrrp_state("VI_1"), "backup");
    assert!(!has_vip(&lan, 0));
    let dropped = &l.status()["vrrp"][0]["dropped"];
    assert!(dropped.as_object().unwrap().is_empty(), "keepalived's adverts all pass lvsd's checks: {dropped}");
    assert_eq!(l.stop(), 0);
    drop(k);

    // 2. Roles swapped: lvsd (150) is master, keepalived (100) accepts its adverts and stays backup.
    let k = Keepalived::start(lan.host(1), &conf("fidelity/wire-b.conf"));
    let l = Daemon::start_in(Some(&ns0), &high, "lvs01", &[]);
    wait("lvsd master, keepalived backup", || has_vip(&lan, 0) && !has_vip(&lan, 1), || format!("{}\n{}", l.log(), k.log()));
    wait("keepalived backup", || k.state("VI_1").as_deref() == Some("backup"), || k.log());
    // Held for a few of keepalived's master-down intervals: it never takes over.
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        assert!(!has_vip(&lan, 1), "keepalived took the VIP: it rejects lvsd's adverts\n{}", k.log());
    }
    assert_eq!(l.vrrp_state("VI_1"), "master");
}
