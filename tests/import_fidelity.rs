//! `lvsd import` does what keepalived 2.2.7 does with the same file (issue 16): one fixture
//! per behaviour under tests/fixtures/keepalived/fidelity/, each written from keepalived.conf(5)
//! and checked against keepalived's source (the function is named at each test) and, where
//! the host has it, `keepalived -t`.

mod import_support;
use import_support::*;

/// The warnings of an import without the fixture directory's path.
fn warned(imp: &lvsd::import::Import) -> Vec<String> {
    warnings(imp).into_iter().map(|w| w.replacen("fidelity/", "", 1)).collect()
}

#[test]
fn sync_group_members_that_do_not_exist_are_left_out() {
    let imp = import("fidelity/sync-group-undefined.conf");
    assert!(imp.lua.contains("lvsd.sync_group \"G1\" {\n  instances = { \"VI_1\" },\n}"), "{}", imp.lua);
    assert!(!imp.lua.contains("lvsd.sync_group \"G2\""), "{}", imp.lua);
    assert_eq!(
        warned(&imp),
        vec![
            "sync-group-undefined.conf:5: vrrp_sync_group G1: instance VI_MISSING is not defined; keepalived ignores it: left out",
            "sync-group-undefined.conf:10: vrrp_sync_group G2 has no defined instance; keepalived removes it: not translated",
            "sync-group-undefined.conf:11: vrrp_sync_group G2: instance VI_GONE is not defined; keepalived ignores it: left out",
        ]
    );
    plan(&imp.lua, "lvs01");
}

/// The body of `lvsd.vrrp "NAME" { ... }` in a policy.
fn vrrp_block<'a>(lua: &'a str, name: &str) -> &'a str {
    let start = lua.find(&format!("lvsd.vrrp \"{name}\" {{\n")).unwrap_or_else(|| panic!("no {name} in:\n{lua}"));
    let end = lua[start..].find("\n}\n").unwrap() + start;
    &lua[start..end]
}

#[test]
fn repeated_keywords_follow_keepalived() {
    // Checked with `keepalived -t` 2.2.7: "state previously set as MASTER - ignoring BACKUP",
    // "notify_master script already specified - ignoring /bin/true second".
    let imp = import("fidelity/repeated-keywords.conf");
    let vi = vrrp_block(&imp.lua, "VI_1");
    assert!(vi.contains("  priority = 120,\n"), "the last priority:\n{vi}");
    assert!(!vi.contains("advert_int"), "the last advert_int is 1, the default:\n{vi}");
    assert!(vi.contains("  state = \"master\",\n"), "{vi}");
    assert!(vi.contains("  vips = { \"192.0.2.10\", \"192.0.2.11\" },\n"), "the second block adds:\n{vi}");
    assert!(vi.contains("notify = { master = { \"/bin/true\", \"first\" } }"), "{vi}");
    assert_eq!(vi.matches("priority =").count(), 1, "{vi}");
    assert_eq!(
        warned(&imp),
        vec![
            "repeated-keywords.conf:15: keyword 'priority' repeated (also at line 10); keepalived uses the last",
            "repeated-keywords.conf:16: keyword 'advert_int' repeated (also at line 11); keepalived uses the last",
            "repeated-keywords.conf:17: vrrp_instance VI_1: state previously set as MASTER; keepalived ignores BACKUP",
            "repeated-keywords.conf:22: keyword 'notify_master' repeated; keepalived keeps the first script: not translated",
        ]
    );
    let (text, _) = plan(&imp.lua, "lvs01");
    assert!(text.contains("192.0.2.11"), "{text}");
}

#[test]
fn vrrp_strict_is_applied_as_keepalived_applies_it() {
    // keepalived -t 2.2.7: "(VI_1) State MASTER must match being address owner",
    // "(VI_1) Strict mode does not support authentication. Ignoring.",
    // "(VI_2) preempt_delay is incompatible with strict mode - resetting".
    let imp = import("fidelity/vrrp-strict.conf");
    let vi1 = vrrp_block(&imp.lua, "VI_1");
    assert!(!vi1.contains("state ="), "not the owner: starts as backup:\n{vi1}");
    assert!(!vi1.contains("auth_pass ="), "{vi1}");
    let vi2 = vrrp_block(&imp.lua, "VI_2");
    assert!(!vi2.contains("preempt_delay ="), "{vi2}");
    let w = warned(&imp);
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(w[0].contains("VI_1: vrrp_strict: only the address owner (priority 255) may start as MASTER"), "{w:#?}");
    assert!(w[1].starts_with("vrrp-strict.conf:16: vrrp_instance VI_1: vrrp_strict: keepalived uses no authentication"), "{w:#?}");
    assert!(w[2].starts_with("vrrp-strict.conf:27: vrrp_instance VI_2: vrrp_strict: preempt_delay"), "{w:#?}");
    let (text, _) = plan(&imp.lua, "lvs01");
    assert!(!text.contains("MASTER"), "both start as backup:\n{text}");
}

#[test]
fn ah_authentication_starts_a_non_owner_as_backup() {
    // keepalived -t 2.2.7: "(VI_1) Initial state master is incompatible with AH authentication - clearing".
    let imp = import("fidelity/ah-auth.conf");
    let vi = vrrp_block(&imp.lua, "VI_1");
    assert!(!vi.contains("state ="), "{vi}");
    assert!(!vi.contains("auth_pass ="), "{vi}");
    assert!(
        warned(&imp).contains(&"ah-auth.conf:9: vrrp_instance VI_1: keepalived starts an instance with AH authentication as BACKUP unless it is the address owner: translated without state = \"master\"".to_string()),
        "{:#?}",
        warned(&imp)
    );
    plan(&imp.lua, "lvs01");
}

#[test]
fn values_keepalived_ignores_get_its_fallback_and_a_warning() {
    // keepalived -t 2.2.7 on the same file: "unknown state 'master', defaulting to BACKUP",
    // "Priority not valid! ... Using default 100", "Advert interval (0) not valid! ... ignoring",
    // "Invalid lvs_scheduler 'fastest' - ignoring", "Unknown protocol XTP - ignoring",
    // "Quorum 0 must be in [1, 4294967295]. Setting to 1.", "Hysteresis -1 must be in [0, ...] -
    // ignoring", "Real server weight -5 is outside range 0-2147483647".
    let imp = import("fidelity/ignored-values.conf");
    let vi = vrrp_block(&imp.lua, "VI_1");
    assert_eq!(vi, "lvsd.vrrp \"VI_1\" {\n  interface = \"eth0\",\n  vrid = 51,\n  vips = { \"192.0.2.10\" },");
    assert!(
        imp.lua.contains("lvsd.service \"192.0.2.10:80\" {\n  vip = \"192.0.2.10:80\",\n  reals = { \"192.0.2.20:80\" },\n}"),
        "{}",
        imp.lua
    );
    let w = warned(&imp);
    let lines: Vec<&str> = w.iter().map(|w| w.split(": ").next().unwrap()).collect();
    assert_eq!(
        lines,
        vec![
            "ignored-values.conf:5",
            "ignored-values.conf:8",
            "ignored-values.conf:9",
            "ignored-values.conf:15",
            "ignored-values.conf:18",
            "ignored-values.conf:19",
            "ignored-values.conf:20",
            "ignored-values.conf:22",
        ]
    );
    let (text, _) = plan(&imp.lua, "lvs01");
    assert!(text.contains("TCP  192.0.2.10:80 wlc"), "{text}");
}

#[test]
fn cidr_ranges_in_a_server_group_expand_as_keepalived_does() {
    let imp = import("fidelity/group-cidr.conf");
    assert!(imp.warnings.is_empty(), "{:?}", imp.warnings);
    let (text, _) = plan(&imp.lua, "lvs01");
    let services: Vec<&str> = text.lines().filter(|l| l.starts_with("TCP")).map(|l| l.split_whitespace().nth(1).unwrap()).collect();
    assert_eq!(services, vec!["192.0.2.8:80", "192.0.2.9:80", "192.0.2.10:80", "192.0.2.11:80", "192.0.2.20:80"], "{text}");
    // Host bits set: keepalived skips the entry ("Address mask bits not empty"); refused here.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.conf");
    std::fs::write(&p, "virtual_server_group G {\n  192.0.2.9/30 80\n}\n").unwrap();
    let e = lvsd::import::import_file(&p, &Default::default()).unwrap_err().to_string();
    assert!(
        e.ends_with("g.conf:2: 192.0.2.9/30: '192.0.2.9/30' is not valid (a prefix without host bits set (keepalived skips it))"),
        "{e}"
    );
}

#[test]
fn a_duplicate_vip_is_advertised_as_keepalived_advertises_it() {
    // alloc_vrrp_vip (vrrp_data.c) appends a repeated VIP; vrrp_build_vrrp_v2 writes
    // naddr = vip_cnt and every entry; vrrp_in_chk drops an advert whose count differs.
    let imp = import("fidelity/duplicate-vip.conf");
    let vi = vrrp_block(&imp.lua, "VI_1");
    assert!(vi.contains("vips = { \"192.0.2.10\", \"192.0.2.11\", \"192.0.2.10\", \"192.0.2.11\" },"), "{vi}");
    assert_eq!(
        warned(&imp),
        vec![
            "duplicate-vip.conf:12: VIP 192.0.2.10 is listed twice; keepalived keeps both and its adverts count it twice: kept twice (the address is configured once)",
            "duplicate-vip.conf:15: VIP 192.0.2.11 is listed twice; keepalived keeps both and its adverts count it twice: kept twice (the address is configured once, with the first entry's settings)",
        ]
    );
    // The advert lvsd sends: four addresses, as keepalived's.
    let m = model(&imp.lua, "lvs01");
    let v = &m.vrrp[0];
    let primary: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let cfg = lvsd::director::vrrp::fsm_config(v, primary, 1500);
    let ep = lvsd::vrrp::packet::Endpoints { src: primary, dst: "224.0.0.18".parse().unwrap() };
    let bytes = cfg.advert(100).encode(&ep, false).unwrap();
    assert_eq!(bytes[3], 4, "the address count");
    let got = lvsd::vrrp::packet::parse(&bytes, lvsd::vrrp::packet::Family::Inet).unwrap().addresses;
    let want: Vec<std::net::IpAddr> = ["192.0.2.10", "192.0.2.11", "192.0.2.10", "192.0.2.11"].iter().map(|a| a.parse().unwrap()).collect();
    assert_eq!(got, want);
    plan(&imp.lua, "lvs01");
}

#[test]
fn a_redirection_script_runs_through_the_shell() {
    let imp = import("fidelity/shell-script.conf");
    assert!(imp.lua.contains("command = { \"/bin/sh\", \"-c\", \"</dev/tcp/127.0.0.1/80\" },"), "{}", imp.lua);
    assert!(imp.lua.contains("command = { \"/bin/true\", \"arg\" },"), "other scripts are exec'd as before:\n{}", imp.lua);
    assert_eq!(
        warned(&imp),
        vec![
            "shell-script.conf:6: keyword 'script': a script starting with '<' is run by keepalived through /bin/sh; translated as { \"/bin/sh\", \"-c\", ... }"
        ]
    );
    plan(&imp.lua, "lvs01");
}

#[test]
fn nb_get_retry_counts_only_where_keepalived_reads_it() {
    let imp = import("fidelity/tcp-nb-get-retry.conf");
    let lua = &imp.lua;
    assert!(lua.contains("{ address = \"192.0.2.20:80\", check = lvsd.check.tcp { timeout = 3 } }"), "the default, 1:\n{lua}");
    assert!(
        lua.contains("{ address = \"192.0.2.21:80\", check = lvsd.check.tcp { timeout = 3, retries = 2 } }"),
        "the real's retry:\n{lua}"
    );
    assert!(lua.contains("lvsd.check.http { retries = 4, retry_delay = 3, path = \"/\" }"), "HTTP_GET reads it:\n{lua}");
    let w = warned(&imp);
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(
        w[0].starts_with("tcp-nb-get-retry.conf:12: keyword 'nb_get_retry' is not read in TCP_CHECK by keepalived 2.2")
            && w[0].ends_with("so keepalived retries 1 time(s), not 5: translated as retries = 1"),
        "{w:#?}"
    );
    assert!(
        w[1].starts_with("tcp-nb-get-retry.conf:19: ") && w[1].ends_with("retries 2 time(s), not 5: translated as retries = 2"),
        "{w:#?}"
    );
    assert_eq!(w[2], "tcp-nb-get-retry.conf:27: keyword 'nb_get_retry' is deprecated (keepalived 2.x: 'retry'); translated as retries");
    plan(lua, "lvs01");
}

#[test]
fn address_families_in_a_server_group_follow_keepalived() {
    // keepalived 2.2.7 running this file (checker, -C): "(Line 52) Address family of virtual
    // server and real server 2001:db8::5 don't match - skipping real server.", "MIXED: virtual
    // server group with IPv4 & IPv6 doesn't match virtual server [MIXED]:0 - ignoring",
    // "V6ONLY: address family doesn't match virtual server [V6ONLY]:0 - ignoring", "Virtual
    // server group REMOVED specified but not configured - ignoring virtual server [REMOVED]:0";
    // at parse: "virtual server group REMOVED cannot have IPv4, IPv6 and fwmark without family
    // - removing". The second virtual server on MIXED (all reals tunnelled) is kept.
    let imp = import("fidelity/group-families.conf");
    let w = warned(&imp);
    let lines: Vec<&str> = w.iter().map(|w| w.split(": ").next().unwrap()).collect();
    assert_eq!(
        lines,
        vec![
            "group-families.conf:15",
            "group-families.conf:20",
            "group-families.conf:34",
            "group-families.conf:40",
            "group-families.conf:51",
            "group-families.conf:56",
            "group-families.conf:61",
        ],
        "{w:#?}"
    );
    assert!(
        w[0].ends_with("virtual_server_group REMOVED cannot have IPv4, IPv6 and fwmark without family; keepalived removes it"),
        "{w:#?}"
    );
    assert!(w[1].contains("virtual_server group MIXED uses virtual_server_group MIXED, which has IPv4 and IPv6 entries"), "{w:#?}");
    assert!(w[1].ends_with("keepalived ignores it: not translated"), "{w:#?}");
    assert!(w[2].contains("uses virtual_server_group V6ONLY, whose address family is not its servers'"), "{w:#?}");
    assert!(w[3].contains("uses virtual_server_group REMOVED, which is not defined (or was removed)"), "{w:#?}");
    assert!(w[4].contains("real server 2001:db8::5 80 is not in the virtual server's address family (IPv4)"), "{w:#?}");
    // "(Line 59) Address family of virtual server and sorry server 192.0.2.99 don't match -
    // skipping sorry server." (keepalived names the block's last line).
    assert!(w[5].contains("sorry server 192.0.2.99 0 is not in the virtual server's address family (IPv6)"), "{w:#?}");
    let (text, _) = plan(&imp.lua, "lvs01");
    let services: Vec<&str> = text.lines().filter(|l| l.starts_with("TCP")).map(|l| l.split_whitespace().nth(1).unwrap()).collect();
    assert_eq!(services, vec!["192.0.2.10:80", "192.0.2.20:80", "[2001:db8::10]:80"], "{text}");
    assert!(text.contains("-> [2001:db8::2]:80"), "the tunnelled IPv6 real of the mixed group:\n{text}");
    assert!(!text.contains("198.51.100.1:") && !text.contains("198.51.100.3:") && !text.contains("198.51.100.4:"), "{text}");
    assert!(!text.contains("2001:db8::5"), "{text}");
    // The fwmark service takes its real's family; the sorry server of the other one is gone.
    assert!(text.contains("FWM  9 IPv6 wlc\n  -> [2001:db8::9]:0"), "{text}");
    assert!(!text.contains("192.0.2.99"), "{text}");
    // "(Line 61) (MARKS): fwmark '10' family ipx unknown - ignoring": fwmark 11 alone remains.
    assert!(w[6].ends_with("fwmark 10: family 'ipx' is not inet or inet6; keepalived ignores the entry"), "{w:#?}");
    assert!(text.contains("FWM  11 wlc\n  -> 192.0.2.30:0") && !text.contains("FWM  10"), "{text}");
}

#[test]
fn a_vip_listed_twice_must_keep_its_settings() {
    // The address is configured once: two different settings for it cannot both hold.
    let opts = lvsd::policy::LoadOptions { node: "lvs01".into(), limits: Default::default() };
    let load = |vips: &str| {
        let src = format!("lvsd.vrrp \"VI_1\" {{ interface = \"eth0\", vrid = 51, vips = {{ {vips} }} }}");
        lvsd::policy::load_source(&src, std::path::Path::new("policy.lua"), std::path::Path::new("."), &opts).map(|p| p.model)
    };
    let m = load("\"192.0.2.10\", \"192.0.2.11\", \"192.0.2.10/32\"").unwrap();
    assert_eq!(m.vrrp[0].vips.len(), 3);
    let e = load("\"192.0.2.10\", \"192.0.2.10/24\"").map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("VIP 192.0.2.10 is listed twice with different settings (192.0.2.10/32 and 192.0.2.10/24)"), "{e}");
}

#[test]
fn a_ping_check_is_a_ping_check() {
    // check_ping.c: one echo request per try, up on the reply; the common checker options
    // (connect_timeout, retry, delay_loop) as for TCP_CHECK. tests/vm/import.sh runs this
    // file against keepalived.
    let imp = import("fidelity/ping-check.conf");
    assert_eq!(warned(&imp), Vec::<String>::new());
    assert!(imp.lua.contains("check = lvsd.check.ping { interval = 1, timeout = 1, retries = 0 },"), "{}", imp.lua);
    let (text, _) = plan(&imp.lua, "lvs01");
    assert!(text.contains("  -> 203.0.113.9:80"), "every real starts in the table, as keepalived's:\n{text}");
}

#[test]
fn mcast_src_ip_is_the_source_of_the_adverts() {
    // vrrp_parser.c: mcast_src_ip and unicast_src_ip both set the instance's source address
    // (vrrp_srcip_handler); lvsd's unicast_src is that address for multicast adverts too
    // (tests/vrrp_pair.rs `multicast_adverts_leave_from_the_configured_source`).
    let imp = import("fidelity/mcast-src.conf");
    assert_eq!(warned(&imp), Vec::<String>::new());
    assert!(imp.lua.contains("  unicast_src = \"192.0.2.9\",\n"), "{}", imp.lua);
    assert!(!imp.lua.contains("unicast_peers"), "{}", imp.lua);
    plan(&imp.lua, "lvs01");
}

#[test]
fn excluded_addresses_are_held_and_not_advertised() {
    // vrrp_parser.c: virtual_ipaddress_excluded (vrrp_evip_handler) takes addresses of either
    // family, held with the VIPs but in no advert; a virtual_ipaddress entry of the other
    // family than the instance's first address is ignored (alloc_vrrp_vip).
    let imp = import("fidelity/evip-wire-a.conf");
    assert_eq!(
        warned(&imp),
        vec![
            "evip-wire-a.conf:18: virtual_ipaddress 2001:db8::5: not of the instance's family, set by its first address; keepalived ignores it"
        ]
    );
    assert!(imp.lua.contains("  vips = { \"198.51.100.123\" },\n"), "{}", imp.lua);
    assert!(imp.lua.contains("  excluded_vips = { \"2001:db8::123/64\", \"198.51.100.200\" },\n"), "{}", imp.lua);
    let m = model(&imp.lua, "lvs01");
    let v = &m.vrrp[0];
    assert_eq!(v.version, 2, "the excluded IPv6 address does not make the instance IPv6");
    let primary: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let cfg = lvsd::director::vrrp::fsm_config(v, primary, 1500);
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    assert_eq!(cfg.advert(150).addresses, vec![ip("198.51.100.123")]);
    assert_eq!(cfg.held(), vec![ip("198.51.100.123"), ip("2001:db8::123"), ip("198.51.100.200")]);
    let (text, json) = plan(&imp.lua, "lvs01");
    assert!(text.contains("198.51.100.123/32, 2001:db8::123/64 (excluded), 198.51.100.200/32 (excluded)"), "{text}");
    assert!(json.contains("\"excluded_vips\": [\n        \"2001:db8::123/64\",\n        \"198.51.100.200/32\"\n      ]"), "{json}");
}

#[test]
fn vips_past_what_an_advert_carries_are_held_but_not_advertised() {
    // vrrp.c, vrrp_complete_instance: "Number of VIPs (95) exceeds maximum/space available in
    // packet (max 89 addresses) - excess moved to eVIPs" for IPv6 on a 1500-byte link.
    let vips: String = (1..=95).map(|i| format!("        2001:db8::{i:x}\n")).collect();
    let conf = format!("vrrp_instance VI_6 {{\n    interface eth0\n    virtual_router_id 64\n    virtual_ipaddress {{\n{vips}    }}\n}}\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.conf");
    std::fs::write(&path, conf).unwrap();
    let imp = lvsd::import::import_file(&path, &Default::default()).unwrap();
    let m = model(&imp.lua, "lvs01");
    let v = &m.vrrp[0];
    assert_eq!((v.version, v.vips.len()), (3, 95));
    let cfg = lvsd::director::vrrp::fsm_config(v, "fe80::1".parse().unwrap(), 1500);
    assert_eq!(cfg.addresses.len(), 89);
    assert_eq!(cfg.addresses[88].to_string(), "2001:db8::59");
    assert_eq!(cfg.excluded.len(), 6);
    assert_eq!(cfg.held().len(), 95);
    // On a larger MTU all fit.
    assert_eq!(lvsd::director::vrrp::fsm_config(v, "fe80::1".parse().unwrap(), 9000).addresses.len(), 95);
}

#[test]
fn tracked_files_are_read_as_keepalived_defines_them() {
    let imp = import("fidelity/track-file.conf");
    assert_eq!(
        warned(&imp),
        vec![
            "track-file.conf:10: keyword 'vrrp_track_file' is deprecated (keepalived 2.x: 'track_file'); translated as lvsd.track.file",
            "track-file.conf:11: track_file prio: relative path 'run/prio' is read from / by keepalived: translated as \"/run/prio\"",
            "track-file.conf:33: vrrp_instance VI_1: track file missing not found; keepalived ignores it",
            "track-file.conf:34: vrrp_instance VI_1: duplicate track_file maint; keepalived ignores it",
        ]
    );
    for needle in [
        "local maint = lvsd.track.file {\n  name = \"maint\",\n  path = \"/etc/keepalived/maintenance\",\n  -- keepalived: init_file (a missing file reads as 0 in lvsd too)\n}",
        "local prio = lvsd.track.file {\n  name = \"prio\",\n  path = \"/run/prio\",\n  weight = -2,\n  reverse = true,\n}",
        "local chk_file = lvsd.track.file {\n  name = \"chk_file\",\n  path = \"/etc/keepalived/chk\",\n}",
        "    chk,\n    maint,\n    lvsd.track.file { name = \"prio\", path = \"/run/prio\", weight = 3 },\n    chk_file,\n  },",
    ] {
        assert!(imp.lua.contains(needle), "missing {needle:?} in\n{}", imp.lua);
    }
    let m = model(&imp.lua, "lvs01");
    let tracks: Vec<(&str, i32)> = m.vrrp[0].tracks.iter().map(|t| (t.name.as_str(), t.weight)).collect();
    assert_eq!(tracks, [("chk", 0), ("maint", 1), ("prio", 3), ("chk_file", 1)]);
    plan(&imp.lua, "lvs01");
}

#[test]
fn a_reversed_weight_is_kept_and_can_be_undone_per_instance() {
    let imp = import("fidelity/script-reverse.conf");
    assert_eq!(warned(&imp), Vec::<String>::new());
    let m = model(&imp.lua, "lvs01");
    let t = |i: usize| (m.vrrp[i].tracks[0].weight, m.vrrp[i].tracks[0].reverse);
    assert_eq!(t(0), (20, true));
    assert_eq!(t(1), (20, false), "noreverse in track_script");
    let ti = &m.vrrp[2].track_interfaces[0];
    assert_eq!((ti.name.as_str(), ti.weight, ti.reverse), ("eth1", 30, true));
}

#[test]
fn virtual_routes_are_routes_and_an_or_route_is_reported() {
    let imp = import("fidelity/routes-wire-a.conf");
    assert_eq!(
        warned(&imp),
        vec![
            "routes-wire-a.conf:23: virtual_routes entry '203.0.113.0/25 via 192.0.2.252 or 192.0.2.253' is not translated: option 'or' has no equivalent in lvsd's routes"
        ]
    );
    let m = model(&imp.lua, "lvs01");
    let routes: Vec<String> = m.vrrp[0].routes.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        routes,
        [
            "203.0.113.0/24 via 192.0.2.254 dev eth0 src 198.51.100.123",
            "blackhole 198.51.100.128/25",
            "198.51.100.0/26 dev eth0 table 100 metric 7"
        ]
    );
    let (text, _) = plan(&imp.lua, "lvs01");
    assert!(!text.is_empty());
}

#[test]
fn a_labelled_vip_is_still_ipv4() {
    let imp = import("fidelity/vip-label.conf");
    assert_eq!(warned(&imp), Vec::<String>::new());
    let m = model(&imp.lua, "lvs01");
    let v = &m.vrrp[0];
    assert_eq!((v.version, v.auth_pass.as_deref()), (2, Some("1111")), "{}", imp.lua);
    assert_eq!(v.vips[0].label.as_deref(), Some("eth0:1"));
}

#[test]
fn tracked_processes_are_read_as_keepalived_defines_them() {
    use lvsd::model::TrackKind;
    use lvsd::vrrp::track_process::ParamMatch;
    let imp = import("fidelity/track-process.conf");
    assert_eq!(warned(&imp), vec!["track-process.conf:27: vrrp_instance VI_1: track process nginx not found; keepalived ignores it",]);
    let m = model(&imp.lua, "lvs01");
    let t = &m.vrrp[0].tracks;
    assert_eq!(t.len(), 2);
    assert_eq!((t[0].name.as_str(), t[0].weight), ("haproxy", -30), "the instance's weight");
    // delay 0.5: a loss or a start is taken when the next count (a second later) still sees it.
    assert_eq!((t[0].rise, t[0].fall, t[1].rise, t[1].fall), (1, 1, 2, 2));
    assert_eq!(
        t[0].kind,
        TrackKind::Process {
            process: "haproxy".into(),
            params: None,
            param_match: ParamMatch::None,
            full_command: false,
            quorum: 1,
            quorum_max: u32::MAX
        }
    );
    assert_eq!(
        t[1].kind,
        TrackKind::Process {
            process: "/usr/sbin/bird".into(),
            params: Some(vec!["-c".into(), "/etc/bird/bird.conf".into()]),
            param_match: ParamMatch::Partial,
            full_command: true,
            quorum: 1,
            quorum_max: 2
        }
    );
    assert_eq!(t[1].weight, 0);
}

#[test]
fn an_instance_without_vips_runs_as_keepalived_runs_it() {
    let imp = import("fidelity/no-vip.conf");
    assert_eq!(
        warned(&imp),
        vec![
            "no-vip.conf:4: vrrp_instance VI_2: no virtual_ipaddress; keepalived runs it (\"at least one is sensible\"), and so does lvsd",
            "no-vip.conf:9: keyword 'vrrp_instance' is not supported by lvsd (no virtual_ipaddress: keepalived requires one for VRRPv3 and strict mode and ignores the instance)",
        ]
    );
    let m = model(&imp.lua, "lvs01");
    assert_eq!(m.vrrp.len(), 1);
    assert_eq!((m.vrrp[0].name.as_str(), m.vrrp[0].vips.len(), m.vrrp[0].version), ("VI_2", 0, 2));
    let cfg = lvsd::director::vrrp::fsm_config(&m.vrrp[0], "192.0.2.1".parse().unwrap(), 1500);
    let ep = lvsd::vrrp::packet::Endpoints { src: "192.0.2.1".parse().unwrap(), dst: "224.0.0.18".parse().unwrap() };
    let bytes = cfg.advert(100).encode(&ep, false).unwrap();
    assert_eq!(bytes[3], 0, "the advert lists no address, as keepalived's");
}

#[test]
fn a_service_declared_twice_is_one_service_as_keepalived_makes_it() {
    // keepalived 2.2.7 adds both blocks to IPVS and takes EEXIST for success (ipvswrapper.c
    // ipvs_talk): one service with the first block's scheduler and no persistence, the second
    // block's reals added with their own forwarding, the real in both as the first made it.
    // tests/vm/import.sh compares the kernel tables of keepalived and lvsd for this file.
    let imp = import("samples/duplicate.conf");
    assert_eq!(imp.lua.matches("lvsd.service ").count(), 1, "{}", imp.lua);
    let w = warnings(&imp);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].starts_with("samples/duplicate.conf:26: virtual_server 203.0.113.60:80 is declared again (first at "), "{w:#?}");
    assert!(w[0].contains("except 198.51.100.157:80 (already there: the first one's stays)"), "{w:#?}");
    assert!(w[0].ends_with("its service settings differ (scheduler, persistence): keepalived keeps the first one's"), "{w:#?}");
    let (text, _) = plan(&imp.lua, "lvs01");
    assert!(text.contains("TCP  203.0.113.60:80 rr\n"), "{text}");
    for real in
        ["192.0.2.61:80                Tunnel  3", "192.0.2.62:80                Route   1", "198.51.100.157:80            Route   1"]
    {
        assert!(text.contains(real), "{real}:\n{text}");
    }
    // The first block's check stays with its reals; the second block's reals had none.
    let p = load(&imp.lua, "lvs01");
    let checks: Vec<(String, usize)> = p.model.services[0].reals.iter().map(|r| (r.addr.to_string(), r.checks.len())).collect();
    assert_eq!(
        checks,
        [("198.51.100.156:80", 1), ("198.51.100.157:80", 1), ("192.0.2.61:80", 0), ("192.0.2.62:80", 0)].map(|(a, n)| (a.to_string(), n))
    );
}
