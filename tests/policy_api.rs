//! The policy API: declarations, defaults, and the values they turn into.

use lvsd::ipvs::table::{Family, Protocol};
use lvsd::model::*;
use lvsd::policy::{LoadOptions, Policy, PolicyError, load_source};
use std::path::Path;

fn opts(node: &str) -> LoadOptions {
    LoadOptions { node: node.into(), limits: Default::default() }
}

fn load(src: &str) -> Policy {
    match load_source(src, Path::new("test.lua"), Path::new("."), &opts("lvs01")) {
        Ok(p) => p,
        Err(e) => panic!("policy failed:\n{e}"),
    }
}

#[test]
fn node_is_visible_and_selects_values() {
    let src = r#"
        local master = lvsd.node == "lvs01"
        lvsd.vrrp "VI_1" { interface = "eth0", vrid = 51, priority = master and 100 or 90,
                           state = master and "master" or "backup", vips = { "192.0.2.10" } }
    "#;
    let a = load_source(src, Path::new("p.lua"), Path::new("."), &opts("lvs01")).unwrap();
    let b = load_source(src, Path::new("p.lua"), Path::new("."), &opts("lvs02")).unwrap();
    assert_eq!(a.model.node, "lvs01");
    assert_eq!((a.model.vrrp[0].priority, a.model.vrrp[0].state), (100, InitialState::Master));
    assert_eq!((b.model.vrrp[0].priority, b.model.vrrp[0].state), (90, InitialState::Backup));
}

#[test]
fn vrrp_defaults_are_keepalived_defaults() {
    let p = load(r#"lvsd.vrrp "V" { interface = "eth0", vrid = 7, vips = { "192.0.2.1" } }"#);
    let v = &p.model.vrrp[0];
    assert_eq!(v.priority, 100);
    assert_eq!(v.version, 2);
    assert_eq!(v.advert_int_cs, 100);
    assert_eq!(v.state, InitialState::Backup);
    assert!(!v.nopreempt);
    assert_eq!(v.preempt_delay, 0);
    assert_eq!(
        v.garp,
        Garp {
            master_delay: 5,
            master_repeat: 5,
            master_refresh: 0,
            master_refresh_repeat: 1,
            interval: 0.0,
            lower_prio_delay: 5,
            lower_prio_repeat: 5
        }
    );
    assert_eq!(v.vips[0].prefix, 32);
    assert_eq!(v.origin.line, 1);
}

#[test]
fn vrrp_full_declaration() {
    let p = load(
        r#"
        lvsd.vrrp "V6" {
          interface = "eth1", vrid = 9, version = 3, advert_int = 0.5, priority = 255,
          vips = { "2001:db8::10/64 dev eth1", { address = "2001:db8::11", prefix = 128, label = "x" } },
          nopreempt = true, preempt_delay = 30,
          unicast_src = "2001:db8::1", unicast_peers = { "2001:db8::2" },
          track_interfaces = { "eth2", { name = "eth3", weight = -20 } },
          track = { lvsd.track.exec { name = "chk", command = { "/bin/true" }, interval = 2, weight = -10, fall = 3 } },
          garp = { master_delay = 1, master_repeat = 3 },
          notify = { master = { "/usr/local/bin/notify", "master" } },
          on_change = function(ev) end,
        }
    "#,
    );
    let v = &p.model.vrrp[0];
    assert_eq!(v.version, 3);
    assert_eq!(v.advert_int_cs, 50);
    assert!(v.is_ipv6());
    assert_eq!(v.vips[0].prefix, 64);
    assert_eq!(v.vips[0].dev.as_deref(), Some("eth1"));
    assert_eq!(v.vips[1].label.as_deref(), Some("x"));
    assert_eq!(
        v.track_interfaces,
        vec![
            TrackInterface { name: "eth2".into(), weight: 0, reverse: false },
            TrackInterface { name: "eth3".into(), weight: -20, reverse: false },
        ]
    );
    assert_eq!(v.tracks[0].name, "chk");
    assert_eq!(v.tracks[0].fall, 3);
    assert_eq!(v.tracks[0].kind, TrackKind::Exec { command: vec!["/bin/true".to_string()].into() });
    assert_eq!(v.garp.master_delay, 1);
    assert_eq!(v.garp.master_refresh_repeat, 1);
    assert_eq!(v.notify.master.as_ref().unwrap()[1], "master");
    assert!(v.on_change.is_some());
}

#[test]
fn service_defaults() {
    let p = load(r#"lvsd.service "web" { vip = "192.0.2.1:80", reals = { "198.51.100.1:80", "198.51.100.2" } }"#);
    let s = &p.model.services[0];
    assert_eq!(s.vip, Vip::Addr { protocol: Protocol::Tcp, addr: "192.0.2.1:80".parse().unwrap() });
    assert_eq!(s.scheduler, "wlc");
    assert_eq!(s.forward, ForwardMethod::Dr);
    assert_eq!(s.persistence, None);
    assert_eq!(s.quorum, 1);
    assert_eq!(s.hysteresis, 0);
    assert!(!s.inhibit_on_failure && !s.alpha && !s.omega);
    assert_eq!(s.reals[0].weight, 1);
    // A real without a port takes the VIP's.
    assert_eq!(s.reals[1].addr, "198.51.100.2:80".parse().unwrap());
    assert!(s.reals[0].checks.is_empty());
}

#[test]
fn persistence_true_is_keepalived_360() {
    let p = load(
        r#"lvsd.service "a" { vip = "192.0.2.1:80", persistence = true }
                   lvsd.service "b" { vip = "192.0.2.1:81", persistence = 50, netmask = "255.255.255.0" }
                   lvsd.service "c" { vip = "[2001:db8::1]:80", persistence = 10, netmask = 64 }"#,
    );
    assert_eq!(p.model.services[0].persistence, Some(360));
    assert_eq!(p.model.services[1].netmask, Some(0xffff_ff00));
    assert_eq!(p.model.services[2].netmask, Some(64));
}

#[test]
fn check_defaults_match_keepalived() {
    let p = load(r#"lvsd.service "web" { vip = "192.0.2.1:80", check = lvsd.check.tcp {}, reals = { "198.51.100.1:80" } }"#);
    let c = &p.model.services[0].reals[0].checks[0];
    assert_eq!(c.common.interval, 60.0, "delay_loop");
    assert_eq!(c.common.timeout, 5.0, "connect_timeout");
    assert_eq!(c.common.retries, 1, "retry");
    assert_eq!(c.common.retry_delay, 1.0, "delay_before_retry");
    assert_eq!(c.common.port, None);
    assert_eq!((c.common.rise, c.common.fall), (1, 1));
}

#[test]
fn every_check_kind() {
    let p = load(
        r#"
        local checks = {
          lvsd.check.tcp { send = "PING\r\n", expect = "+PONG" },
          lvsd.check.http { path = "/health", status = "200-299,301", digest = "9b3a0c85a887a256d6939da88aabd8cd" },
          lvsd.check.https { urls = { { path = "/a" }, { path = "/b", status = 204 } }, sni = "www.example.org" },
          lvsd.check.udp { payload = "ping", expect = "pong" },
          lvsd.check.dns {},
          lvsd.check.smtp { helo = "lvs01.example.org" },
          lvsd.check.ping { timeout = 1 },
          lvsd.check.exec { command = { "/usr/local/bin/chk", "--fast" }, dynamic = true, timeout = 2 },
          lvsd.check.lua { run = function(rs) return true end, interval = 2 },
        }
        lvsd.service "web" { vip = "192.0.2.1:80", check = checks, reals = { "198.51.100.1:80" } }
    "#,
    );
    let c = &p.model.services[0].reals[0].checks;
    let names: Vec<&str> = c.iter().map(|c| c.kind.name()).collect();
    assert_eq!(names, CHECK_KINDS);
    match &c[1].kind {
        CheckKind::Http { urls, tls: false, method, .. } => {
            assert_eq!(urls[0].status, vec![(200, 299), (301, 301)]);
            assert_eq!(method, "GET");
        }
        k => panic!("{k:?}"),
    }
    match &c[2].kind {
        CheckKind::Http { urls, tls: true, .. } => {
            assert_eq!(urls.len(), 2);
            assert_eq!(urls[0].status, vec![(200, 299)]);
            assert_eq!(urls[1].status, vec![(204, 204)]);
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(c[4].kind, CheckKind::Dns { name: ".".into(), qtype: "SOA".into() });
    assert_eq!((&c[6].kind, c[6].common.timeout), (&CheckKind::Ping, 1.0));
    assert!(matches!(&c[7].kind, CheckKind::Exec { dynamic: true, .. }));
    assert_eq!(c[7].common.timeout, 2.0);
    assert_eq!(c[8].common.interval, 2.0);
}

#[test]
fn real_overrides_and_fwmark_services() {
    let p = load(
        r#"
        lvsd.service "fw" {
          fwmark = 5, family = "inet6", scheduler = "sh", sched_flags = { "sh-port" }, forward = "tun",
          tunnel = { type = "gue", port = 6080, csum = "csum" },
          check = lvsd.check.tcp { port = 80 },
          reals = {
            { address = "[2001:db8::5]:0", weight = 10, upper_threshold = 100, lower_threshold = 50, check = false },
            { address = "198.51.100.7", weight = function(rs, h) return 3 end },
          },
          sorry_server = "[2001:db8::99]:80",
        }
    "#,
    );
    let s = &p.model.services[0];
    assert_eq!(s.vip, Vip::Fwmark { mark: 5, family: Family::Inet6 });
    assert_eq!(s.reals[0].upper_threshold, 100);
    assert!(s.reals[0].checks.is_empty(), "check = false removes the service's check");
    assert_eq!(s.reals[1].checks.len(), 1);
    assert!(s.reals[1].weight_fn.is_some());
    assert_eq!(s.reals[1].tunnel.port, 6080);
    assert_eq!(s.reals[1].addr.port(), 0);
}

#[test]
fn sync_group_and_global() {
    let p = load(
        r#"
        lvsd.global { router_id = "LVS_01", notification_email = { "ops@example.org" }, foreign = "remove", drain_timeout = 30 }
        lvsd.vrrp "A" { interface = "eth0", vrid = 1, vips = { "192.0.2.1" } }
        lvsd.vrrp "B" { interface = "eth1", vrid = 1, vips = { "198.51.100.1" } }
        lvsd.sync_group "G" { instances = { "A", "B" } }
        lvsd.sync_daemon { interface = "eth1", id = 3, instance = "A" }
    "#,
    );
    assert_eq!(p.model.global.router_id.as_deref(), Some("LVS_01"));
    assert_eq!(p.model.global.foreign, Foreign::Remove);
    assert_eq!(p.model.global.drain_timeout, 30);
    assert_eq!(p.model.global.smtp_connect_timeout, 30);
    assert_eq!(p.model.sync_groups[0].instances, vec!["A", "B"]);
    assert_eq!(p.model.sync_daemon.as_ref().unwrap().id, 3);
}

#[test]
fn require_finds_modules_next_to_the_policy_and_bundled_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("site")).unwrap();
    std::fs::write(dir.path().join("site/farm.lua"), "return { reals = { '198.51.100.1:80' } }").unwrap();
    std::fs::write(
        dir.path().join("policy.lua"),
        r#"local farm = require "site.farm"
           local h = require "lvsd.helpers"
           lvsd.service "web" { vip = "192.0.2.1:80", reals = farm.reals }
           lvsd.service "big" { vip = "192.0.2.1:81", reals = h.with(h.range("198.51.100.", 10, 13, 81), { weight = 2 }) }"#,
    )
    .unwrap();
    let p = lvsd::policy::load(&dir.path().join("policy.lua"), &opts("n")).unwrap();
    assert_eq!(p.model.services[0].reals.len(), 1);
    assert_eq!(p.model.services[1].reals.len(), 4);
    assert_eq!(p.model.services[1].reals[3].weight, 2);
    assert_eq!(p.files.len(), 2, "the policy and the module it required are watched: {:?}", p.files);
}

#[test]
fn errors_are_all_reported_with_lines() {
    let src = "lvsd.vrrp \"A\" { interface = \"eth0\", vrid = 300, vips = {\"192.0.2.1\"} }\n\
               lvsd.service \"s\" { vip = \"192.0.2.1:80\", scheduler = \"nope\" }\n";
    let Err(PolicyError::Invalid(errs)) = load_source(src, Path::new("bad.lua"), Path::new("."), &opts("n")) else { panic!("must fail") };
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].to_string().starts_with("bad.lua:1: "), "{}", errs[0]);
    assert!(errs[1].to_string().starts_with("bad.lua:2: "), "{}", errs[1]);
}

#[test]
fn unicast_source_and_ttl_checks_are_opt_in() {
    let p = load(
        r#"lvsd.vrrp "U" { interface = "eth0", vrid = 7, vips = {"192.0.2.1"}, unicast_src = "192.0.2.2",
             unicast_peers = {"192.0.2.3"}, check_unicast_src = true, relax_unicast_ttl = true }
           lvsd.vrrp "D" { interface = "eth0", vrid = 8, vips = {"192.0.2.5"}, unicast_peers = {"192.0.2.3"} }"#,
    );
    assert!(p.model.vrrp[0].check_unicast_src && p.model.vrrp[0].relax_unicast_ttl);
    assert!(!p.model.vrrp[1].check_unicast_src && !p.model.vrrp[1].relax_unicast_ttl, "defaults: off (RFC 5798 7.1)");
    let src = "lvsd.vrrp \"M\" { interface = \"eth0\", vrid = 9, vips = {\"192.0.2.1\"}, check_unicast_src = true }\n";
    let Err(PolicyError::Invalid(errs)) = load_source(src, Path::new("m.lua"), Path::new("."), &opts("n")) else {
        panic!("a multicast instance with check_unicast_src must be refused")
    };
    assert!(errs[0].to_string().starts_with("m.lua:1: ") && errs[0].to_string().contains("unicast_peers"), "{}", errs[0]);
}

#[test]
fn ipvs_is_released_on_stop_unless_told_otherwise() {
    assert!(load("").model.global.release_ipvs_on_stop, "keepalived's default");
    assert!(!load("lvsd.global { release_ipvs_on_stop = false }").model.global.release_ipvs_on_stop);
}

#[test]
fn a_file_track_has_keepalived_defaults_and_no_rise_or_fall() {
    let p = load(
        r#"lvsd.vrrp "A" { interface = "eth0", vrid = 51, vips = { "192.0.2.1" },
  track = { lvsd.track.file { name = "maint", path = "/etc/lvsd/maintenance" },
            lvsd.track.file { path = "/run/prio", weight = -2, reverse = true, interval = 0.5 } } }"#,
    );
    let t = &p.model.vrrp[0].tracks;
    assert_eq!(t[0].kind, TrackKind::File { path: "/etc/lvsd/maintenance".into() });
    assert!(!t[0].reverse);
    assert_eq!((t[0].weight, t[0].interval, t[0].rise, t[0].fall), (1, 1.0, 1, 1), "keepalived's weight 1");
    assert_eq!(t[1].kind, TrackKind::File { path: "/run/prio".into() });
    assert!(t[1].reverse);
    assert_eq!((t[1].weight, t[1].interval), (-2, 0.5));
    let src = "lvsd.track.file { path = \"maintenance\" }\n\
               lvsd.track.file { name = \"x\" }\n\
               lvsd.track.file { path = \"/m\", rise = 2 }\n\
               lvsd.track.exec { command = { \"/bin/true\" }, reverse = 1 }\n";
    let Err(PolicyError::Invalid(errs)) = load_source(src, Path::new("bad.lua"), Path::new("."), &opts("n")) else { panic!("must fail") };
    let errs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(errs[0].starts_with("bad.lua:1: ") && errs[0].contains("path 'maintenance' must be absolute"), "{errs:?}");
    assert!(errs[1].starts_with("bad.lua:2: ") && errs[1].contains("path is required (the file's absolute path)"), "{errs:?}");
    assert!(errs[2].starts_with("bad.lua:3: ") && errs[2].contains("unknown key 'rise'"), "{errs:?}");
    assert!(errs[3].starts_with("bad.lua:4: ") && errs[3].contains("reverse must be true or false"), "{errs:?}");
}
