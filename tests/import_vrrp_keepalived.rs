//! The imported pair policy speaks VRRP with keepalived 2.2.7 running the original files:
//! lvsd on one director, keepalived on the other, in both roles. keepalived's adverts all
//! pass lvsd's checks (same VRID, PASS auth, VIPs, advert interval), the higher priority
//! holds the VIP, and the survivor takes over. Host tier: root, network namespaces.

mod common;
mod import_support;

use common::keepalived::{Keepalived, keepalived_available};
use common::lan::Lan;
use common::{Daemon, wait_until as wait};
use import_support::{fixture, pair};
use std::time::Duration;

const VIP: &str = "198.51.100.123";

/// Two directors on one LAN, 192.0.2.1 and 192.0.2.2.
fn two_directors(prefix: &str) -> Lan {
    let lan = Lan::new(prefix, 2).unwrap();
    for h in 0..2 {
        lan.host(h).ip(&["addr", "add", &format!("192.0.2.{}/24", h + 1), "dev", "eth0"]).unwrap();
    }
    lan
}

/// lvsd on host 0 becomes master of VI_1 and keepalived on host 1 backup, and keepalived does
/// not take the VIP for 4 s, more than its master-down interval: it accepts lvsd's adverts.
fn keepalived_stays_backup(lan: &Lan, l: &Daemon, k: &Keepalived) {
    wait("lvsd master, keepalived backup", || has_vip(lan, 0) && !has_vip(lan, 1), || format!("{}\n{}", l.log(), k.log()));
    wait("keepalived backup", || k.state("VI_1").as_deref() == Some("backup"), || k.log());
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        assert!(!has_vip(lan, 1), "keepalived took the VIP: it rejects lvsd's adverts\n{}", k.log());
    }
    assert_eq!(l.vrrp_state("VI_1"), "master");
}

/// On any of the host's links (eth0, or the virtual MAC interface of `use_vmac`).
fn has_vip(lan: &Lan, host: usize) -> bool {
    lan.host(host).ip(&["-o", "addr", "show"]).unwrap().contains(&format!(" {VIP}/"))
}

#[test]
fn imported_pair_and_keepalived_form_one_vrrp_pair() {
    if !keepalived_available("imported_pair_and_keepalived_form_one_vrrp_pair") {
        return;
    }
    let lan = two_directors("lvim");
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
    let test = "strict_mode_and_repeated_keywords_agree_with_keepalived_on_the_wire";
    let high = import_support::import("fidelity/wire-a.conf").lua;
    assert!(!high.contains("auth_pass =") && !high.contains("advert_int =") && !high.contains("state ="), "{high}");
    agree_on_the_wire(test, "lvst", ("fidelity/wire-a.conf", 150), "fidelity/wire-b.conf", |_, _| {});
}

/// Issue 16 item 6: a VIP listed twice. keepalived sends and expects three addresses;
/// lvsd on the imported policy does the same, and holds the address once.
#[test]
fn a_duplicate_vip_agrees_with_keepalived_on_the_wire() {
    let test = "a_duplicate_vip_agrees_with_keepalived_on_the_wire";
    let high = import_support::import("fidelity/dup-wire-a.conf").lua;
    assert!(high.contains("vips = { \"198.51.100.123\", \"198.51.100.124\", \"198.51.100.123\" }"), "{high}");
    agree_on_the_wire(test, "lvdv", ("fidelity/dup-wire-a.conf", 150), "fidelity/dup-wire-b.conf", |lan, lvsd_master| {
        if !lvsd_master {
            return;
        }
        let shown = lan.host(0).ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap();
        assert_eq!(shown.matches(&format!(" {VIP}/")).count(), 1, "the VIP is configured once:\n{shown}");
    });
}

/// `virtual_ipaddress_excluded`: keepalived leaves those addresses out of its adverts and
/// ignores a VIP of the other family; lvsd on the import does the same (an address count that
/// differed would make each side drop the other's adverts), holds the excluded addresses with
/// the VIP as master and none of them as backup.
#[test]
fn excluded_addresses_agree_with_keepalived_on_the_wire() {
    let test = "excluded_addresses_agree_with_keepalived_on_the_wire";
    let excluded = |lan: &Lan, host: usize| {
        let shown = lan.host(host).ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap();
        ["2001:db8::123/64", "198.51.100.200/32", "2001:db8::5/"].map(|a| shown.contains(&format!(" {a}")))
    };
    agree_on_the_wire(test, "lvev", ("fidelity/evip-wire-a.conf", 150), "fidelity/evip-wire-b.conf", |lan, lvsd_master| {
        // The master holds the excluded addresses (not the ignored VIP), the backup none.
        let (m, b) = if lvsd_master { (0, 1) } else { (1, 0) };
        assert_eq!(excluded(lan, m), [true, true, false], "the master (lvsd: {lvsd_master})");
        assert_eq!(excluded(lan, b), [false, false, false], "the backup (lvsd: {})", !lvsd_master);
    });
}

/// `virtual_routes`: lvsd on the import installs the routes keepalived installs, as master
/// only (the "or" route, not carried, aside).
#[test]
fn virtual_routes_agree_with_keepalived() {
    let test = "virtual_routes_agree_with_keepalived";
    let high = import_support::import("fidelity/routes-wire-a.conf");
    assert!(high.lua.contains("\"203.0.113.0/24 via 192.0.2.254 dev eth0 src 198.51.100.123\""), "{}", high.lua);
    let held = |lan: &Lan, host: usize| {
        let main = lan.host(host).ip(&["route", "show"]).unwrap();
        // A table with no route in it does not exist: an error, read as empty.
        let t100 = lan.host(host).ip(&["route", "show", "table", "100"]).unwrap_or_default();
        [
            main.lines().any(|l| l.starts_with("203.0.113.0/24 via 192.0.2.254 dev eth0") && l.contains("src 198.51.100.123")),
            main.lines().any(|l| l.starts_with("blackhole 198.51.100.128/25")),
            t100.lines().any(|l| l.starts_with("198.51.100.0/26 dev eth0") && l.contains("metric 7")),
        ]
    };
    agree_on_the_wire(test, "lvrt", ("fidelity/routes-wire-a.conf", 150), "fidelity/routes-wire-b.conf", |lan, lvsd_master| {
        let (m, b) = if lvsd_master { (0, 1) } else { (1, 0) };
        assert_eq!(
            held(lan, m),
            [true; 3],
            "the master (lvsd: {lvsd_master}):\n{}",
            lan.host(m).ip(&["route", "show", "table", "all"]).unwrap()
        );
        assert_eq!(held(lan, b), [false; 3], "the backup (lvsd: {})", !lvsd_master);
    });
}

/// `use_vmac`: keepalived and lvsd on the import both make vrrp.66 with the virtual router
/// MAC; the master holds the VIP on it, not on eth0; each hears the other's adverts, sent
/// from that MAC.
#[test]
fn use_vmac_agrees_with_keepalived_on_the_wire() {
    let test = "use_vmac_agrees_with_keepalived_on_the_wire";
    let high = import_support::import("fidelity/vmac-wire-a.conf");
    assert!(high.lua.contains("use_vmac = true,"), "{}", high.lua);
    agree_on_the_wire(test, "lvvm", ("fidelity/vmac-wire-a.conf", 150), "fidelity/vmac-wire-b.conf", |lan, lvsd_master| {
        let (m, b) = if lvsd_master { (0, 1) } else { (1, 0) };
        for h in [m, b] {
            let link = lan.host(h).ip(&["-d", "link", "show", "dev", "vrrp.66"]).unwrap_or_default();
            assert!(link.contains("00:00:5e:00:01:42") && link.contains("macvlan mode private"), "host {h} (lvsd: {}): {link}", h == 0);
        }
        let on = |h: usize, dev: &str| lan.host(h).ip(&["-o", "addr", "show", "dev", dev]).unwrap().contains(&format!(" {VIP}/24"));
        assert!(on(m, "vrrp.66") && !on(m, "eth0"), "the master (lvsd: {lvsd_master}) holds the VIP on vrrp.66");
        assert!(!on(b, "vrrp.66"), "the backup (lvsd: {}) holds none", !lvsd_master);
    });
}

/// keepalived on `high.0` (priority `high.1`) and lvsd on the import of `low` (the same
/// instance at a lower priority): lvsd stays backup and drops none of keepalived's adverts.
/// Then the other way round: lvsd on the import of `high`, keepalived on `low`, which
/// accepts lvsd's adverts and never takes the VIP. `roles` looks at the LAN in each case,
/// told whether lvsd (host 0) is the master.
fn agree_on_the_wire(test: &str, prefix: &str, high: (&str, u8), low: &str, roles: impl Fn(&Lan, bool)) {
    if !keepalived_available(test) {
        return;
    }
    let lan = two_directors(prefix);
    let ns0 = lan.host(0).name().to_string();
    let conf = |f: &str| std::fs::read_to_string(fixture(f)).unwrap();
    let high_lua = import_support::import(high.0).lua;
    let low_lua = import_support::import(low).lua;

    // 1. keepalived (high) is master; lvsd on the imported low file stays backup and drops nothing.
    let k = Keepalived::start(lan.host(1), &conf(high.0));
    wait("keepalived master", || has_vip(&lan, 1), || k.log());
    let mut l = Daemon::start_in(Some(&ns0), &low_lua, "lvs01", &[]);
    l.wait_for(|d| d.status()["vrrp"][0]["master"]["priority"] == high.1, "keepalived's adverts seen");
    assert_eq!(l.vrrp_state("VI_1"), "backup");
    assert!(!has_vip(&lan, 0));
    let dropped = &l.status()["vrrp"][0]["dropped"];
    assert!(dropped.as_object().unwrap().is_empty(), "keepalived's adverts all pass lvsd's checks: {dropped}");
    roles(&lan, false);
    assert_eq!(l.stop(), 0);
    drop(k);

    // 2. Roles swapped: lvsd (high) is master, keepalived (low) accepts its adverts and stays backup.
    let k = Keepalived::start(lan.host(1), &conf(low));
    let l = Daemon::start_in(Some(&ns0), &high_lua, "lvs01", &[]);
    keepalived_stays_backup(&lan, &l, &k);
    assert!(!k.log().contains("unexpected ip number count"), "{}", k.log());
    roles(&lan, true);
}

/// `mcast_src_ip` on the wire (VRRPv3, whose checksum covers the source address): lvsd on the
/// import of msrc-wire-a.conf sends its multicast adverts from 192.0.2.9, not its interface's
/// primary address, and keepalived on msrc-wire-b.conf accepts them and stays backup.
#[test]
fn a_configured_source_address_agrees_with_keepalived_on_the_wire() {
    if !keepalived_available("a_configured_source_address_agrees_with_keepalived_on_the_wire") {
        return;
    }
    let lan = two_directors("lvms");
    lan.host(0).ip(&["addr", "add", "192.0.2.9/24", "dev", "eth0"]).unwrap();
    let high = import_support::import("fidelity/msrc-wire-a.conf").lua;
    assert!(high.contains("unicast_src = \"192.0.2.9\""), "{high}");
    let k = Keepalived::start(lan.host(1), &std::fs::read_to_string(fixture("fidelity/msrc-wire-b.conf")).unwrap());
    let l = Daemon::start_in(Some(lan.host(0).name()), &high, "lvs01", &[]);
    keepalived_stays_backup(&lan, &l, &k);
}

/// `track_file`: keepalived and lvsd on the import read the same file to the same priority (a
/// negative number, a hexadecimal one), and -254 is Fault on both.
#[test]
fn a_tracked_file_is_read_as_keepalived_reads_it() {
    if !keepalived_available("a_tracked_file_is_read_as_keepalived_reads_it") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("maintenance");
    let conf = |f: &str| std::fs::read_to_string(fixture(f)).unwrap().replace("/etc/keepalived/maintenance", &file.display().to_string());
    let (high, low) = (conf("fidelity/tfile-wire-a.conf"), conf("fidelity/tfile-wire-b.conf"));
    let lua = |text: &str, name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        lvsd::import::import_file(&path, &Default::default()).unwrap().lua
    };
    let (high_lua, low_lua) = (lua(&high, "a.conf"), lua(&low, "b.conf"));
    assert!(high_lua.contains(&format!("path = \"{}\"", file.display())), "{high_lua}");
    let lan = two_directors("lvtf");
    let ns0 = lan.host(0).name().to_string();
    let master_priority = |l: &Daemon| l.status()["vrrp"][0]["master"]["priority"].clone();

    // 1. keepalived reads the file; lvsd (backup) sees the priority it advertises.
    std::fs::write(&file, "-20\n").unwrap();
    let k = Keepalived::start(lan.host(1), &high);
    wait("keepalived master", || has_vip(&lan, 1), || k.log());
    let l = Daemon::start_in(Some(&ns0), &low_lua, "lvs01", &[]);
    l.wait_for(|d| master_priority(d) == 130, "keepalived advertises 150 - 20");
    std::fs::write(&file, "0x10").unwrap();
    l.wait_for(|d| master_priority(d) == 166, "keepalived advertises 150 + 16");
    drop(l);
    drop(k);

    // 2. lvsd on the same file reads the same, and goes to Fault at -254: keepalived takes over.
    let k = Keepalived::start(lan.host(1), &low);
    let l = Daemon::start_in(Some(&ns0), &high_lua, "lvs01", &[]);
    keepalived_stays_backup(&lan, &l, &k);
    assert_eq!(l.status()["vrrp"][0]["priority"], 166, "lvsd reads 0x10 as 16");
    std::fs::write(&file, "-20\n").unwrap();
    l.wait_for(|d| d.status()["vrrp"][0]["priority"] == 130, "lvsd at 150 - 20");
    std::fs::write(&file, "-254").unwrap();
    l.wait_for(|d| d.vrrp_state("VI_1") == "fault", "-254 is Fault");
    wait("keepalived takes over", || has_vip(&lan, 1) && !has_vip(&lan, 0), || k.log());
}
