//! Every translated keyword, and the keywords lvsd has no home for.

mod import_support;
use import_support::*;

#[test]
fn every_supported_keyword_passes_check_and_plans() {
    let imp = import("all-keywords.conf");
    let (text, _) = plan(&imp.lua, "lvs01");
    for line in [
        "TCP  192.0.2.10:80 wrr persistent 600 mask 255.255.255.0",
        "  -> 192.0.2.20:80                Masq    2      0          0",
        "TCP  192.0.2.10:443 sh (sh-fallback,sh-port) persistent 360",
        "UDP  192.0.2.10:53 rr ops",
        "  -> 192.0.2.22:53                Tunnel  1      0          0",
        "SCTP 192.0.2.30:80 wlc",
        "SCTP 192.0.2.31:80 wlc",
        "FWM  5 IPv6 mh (mh-port) persistent 300 pe sip",
        "  -> [2001:db8::20]:0             Tunnel  1      0          0",
    ] {
        assert!(text.lines().any(|l| l.trim_end() == line), "missing {line:?} in plan:\n{text}");
    }
    assert!(text.contains("VI_6  eth0       61    3        200       MASTER  0.50s   2001:db8::10/64"), "{text}");
}

#[test]
fn every_supported_keyword_has_its_lvsd_spelling() {
    let lua = import("all-keywords.conf").lua;
    for needle in [
        // global_defs
        "router_id = \"LVS_ALL\"",
        "notification_email = { \"ops@example.org\", \"oncall@example.org\" }",
        "notification_email_from = \"lvs@example.org\"",
        "smtp_server = \"192.0.2.25:25\"",
        "smtp_connect_timeout = 20",
        "enable_script_security = true",
        "vrrp_rt_priority = 50",
        "master_delay = 10",
        "lower_prio_repeat = 3",
        "interval = 0.001",
        // vrrp_script
        "local chk_haproxy = lvsd.track.exec {",
        "command = { \"/usr/bin/killall\", \"-0\", \"haproxy\" }",
        "weight = -20",
        "rise = 2",
        "fall = 3",
        // vrrp_instance
        "state = \"master\"",
        "priority = 150",
        "advert_int = 2",
        "auth_pass = \"secret12\"",
        "\"192.0.2.11/24 dev eth1 label eth1:1\"",
        "\"192.0.2.12/32 dev eth0 scope global\"",
        "excluded_vips = { \"2001:db8::50/64 dev eth1\" }",
        "unicast_src = \"192.0.2.1\"",
        "unicast_peers = { \"192.0.2.2\" }",
        "nopreempt = true",
        "preempt_delay = 5",
        "track_interfaces = { \"eth1\", { name = \"eth2\", weight = -10 } }",
        "track = { chk_haproxy }",
        "master = { \"/etc/keepalived/notify.sh\", \"master\", \"VI_1\" }",
        "fault = { \"/etc/keepalived/notify.sh\", \"fault\", \"two words\" }",
        "any = { \"/etc/keepalived/any.sh\" }",
        "smtp_alert = true",
        "version = 3",
        "advert_int = 0.5",
        "weight = -30",
        // sync group and daemon
        "instances = { \"VI_1\", \"VI_6\" }",
        "lvsd.sync_daemon {",
        // virtual_server
        "persistence = 600",
        "netmask = \"255.255.255.0\"",
        "quorum = 2",
        "hysteresis = 1",
        "quorum_up = { \"/etc/keepalived/quorum.sh\", \"up\" }",
        "alpha = true",
        "omega = true",
        "ha_suspend = true",
        "inhibit_on_failure = true",
        "sorry_server = { address = \"192.0.2.99:8080\", inhibit = true, forward = \"nat\" }",
        "scheduler = \"sh\"",
        "sched_flags = { \"sh-port\", \"sh-fallback\" }",
        "persistence = true",
        "ops = true",
        "forward = \"tun\"",
        "tunnel = { type = \"gue\", port = 6080, csum = \"csum\" }",
        "pe = \"sip\"",
        "family = \"inet6\"",
        "fwmark = 5",
        "protocol = \"sctp\"",
        // real_server
        "weight = 2",
        "upper_threshold = 1000",
        "lower_threshold = 10",
        "notify_up = { \"/etc/keepalived/rs.sh\", \"up\", \"192.0.2.20\" }",
        // checks
        "lvsd.check.http {",
        "port = 8080",
        "bind = \"192.0.2.1\"",
        "retries = 4",
        "warmup = 2",
        "virtualhost = \"www.example.org\"",
        "{ path = \"/health\", digest = \"9b3a0c85a887a256d6939da88aabd8cd\", status = 200 }",
        "status = { 200, \"301-302\" }",
        "lvsd.check.tcp { interval = 10, timeout = 4, retries = 2, retry_delay = 2, warmup = 1 }",
        "helo = \"lvs.example.org\"",
        "lvsd.check.https {",
        "sni = \"www.example.org\"",
        "lvsd.check.dns { retries = 3, retry_delay = 60, type = \"A\", name = \"example.org\" }",
        "lvsd.check.udp { payload = \"00 01 02\", expect = \"0a 0b\" }",
        "lvsd.check.ping { timeout = 2, retries = 2 }",
        "lvsd.check.exec {",
        "command = { \"/usr/local/bin/check\", \"--host\", \"2001:db8::20\" }",
        "timeout = 7",
        "dynamic = true",
    ] {
        assert!(lua.contains(needle), "missing {needle:?} in\n{lua}");
    }
}

#[test]
fn keepalived_defaults_that_differ_from_lvsd_are_written_out() {
    let lua = import("all-keywords.conf").lua;
    // HTTP/SSL delay_before_retry defaults to 3 s, DNS retry to 3 and its delay to delay_loop,
    // MISC retry to 0; a virtual_server without lb_kind is NAT, without protocol UDP.
    assert!(lua.contains("lvsd.check.https {\n    retry_delay = 3,"), "{lua}");
    assert!(lua.contains("lvsd.check.exec {\n    retries = 0,"), "{lua}");
    let imp = import("defaults.conf");
    for line in [
        "  protocol = \"udp\", -- keepalived 2.2 defaults to UDP when 'protocol' is absent",
        "  forward = \"nat\", -- keepalived's default when lb_kind is absent",
        "  check = lvsd.check.http { retry_delay = 3, path = \"/\" },",
        "  reals = { \"192.0.2.20:8080\" },",
    ] {
        assert!(imp.lua.lines().any(|l| l == line), "missing {line:?} in\n{}", imp.lua);
    }
    let (text, _) = plan(&imp.lua, "lvs01");
    assert!(text.contains("UDP  192.0.2.10:8080 wlc\n  -> 192.0.2.20:8080              Masq    1"), "{text}");
    let dr = import("include/main.conf").lua;
    assert!(!dr.contains("forward"), "lb_kind DR is lvsd's default:\n{dr}");
}

#[test]
fn unsupported_keywords_warn_with_file_and_line_and_stay_as_comments() {
    let imp = import("unsupported.conf");
    assert_eq!(
        warnings(&imp),
        vec![
            "unsupported.conf:5: keyword 'lvs_flush' is not supported by lvsd (no equivalent in the lvsd policy API)",
            "unsupported.conf:8: keyword 'static_ipaddress' is not supported by lvsd (no equivalent in the lvsd policy API)",
            "unsupported.conf:15: keyword 'use_ipvlan' is not supported by lvsd (no equivalent in the lvsd policy API)",
            "unsupported.conf:16: keyword 'authentication' is not supported by lvsd (AH authentication; only PASS is supported)",
            "unsupported.conf:21: keyword 'virtual_ipaddress' option 'peer 192.0.2.11' is not supported by lvsd (no equivalent in the lvsd policy API)",
            "unsupported.conf:23: keyword 'virtual_rules' is not supported by lvsd (no equivalent in the lvsd policy API)",
            "unsupported.conf:32: keyword 'smtp_alert' is not supported by lvsd (no equivalent in the lvsd policy API)",
            "unsupported.conf:38: keyword 'regex_no_match' is not supported by lvsd (no equivalent in the lvsd policy API)",
            "unsupported.conf:40: keyword 'http_protocol' is not supported by lvsd (no equivalent in the lvsd policy API)",
        ]
    );
    for comment in [
        "  -- keepalived: vrrp_strict (applied to each VRRP instance as keepalived does)",
        "-- keepalived: static_ipaddress { (not translated: no equivalent in the lvsd policy API)",
        "-- keepalived:   192.0.2.200/24 dev eth0",
        "  -- keepalived: authentication { (not translated: AH authentication; only PASS is supported)",
        "  -- keepalived: 192.0.2.10 peer 192.0.2.11 (not translated: option 'peer 192.0.2.11')",
        "  -- keepalived: virtual_rules { (not translated: no equivalent in the lvsd policy API)",
    ] {
        assert!(imp.lua.lines().any(|l| l == comment), "missing {comment:?} in\n{}", imp.lua);
    }
    // What is supported around them still works.
    assert!(imp.lua.contains("regex = \"ok\""), "{}", imp.lua);
    plan(&imp.lua, "lvs01");
}

#[test]
fn keepalived_corrections_are_made_and_reported() {
    // Each warning below matches a message keepalived 2.2.7 prints for the same file
    // (`keepalived -t -f normalized.conf`); the table is the one keepalived builds.
    // Warnings come in file order.
    let imp = import("normalized.conf");
    assert_eq!(
        warnings(&imp),
        vec![
            "normalized.conf:6: keyword 'ops' needs UDP; keepalived resets it for this service; not translated",
            "normalized.conf:7: quorum 5 exceeds the total weight of the real servers 3; keepalived reduces it: translated as quorum = 3",
            "normalized.conf:9: real server port 8080 differs from the virtual server's (dr forwarding); keepalived uses 80",
            "normalized.conf:14: real server 192.0.2.21 80 is listed twice; keepalived removes the second",
            "normalized.conf:19: a virtual server without a port must be persistent; keepalived makes it persistent (360 s); translated as persistence = true",
            "normalized.conf:28: keyword 'ha_suspend' does not apply to fwmark services (keepalived clears it); not translated",
            "normalized.conf:29: real server port 443: a fwmark service's dr servers have no port; keepalived clears it",
            "normalized.conf:36: hysteresis 1 is not below the quorum 1; keepalived sets it to 0",
            "normalized.conf:41: virtual_server 192.0.2.11 80 has no real servers; keepalived ignores it: not translated",
        ]
    );
    let (text, _) = plan(&imp.lua, "lvs01");
    let want = "\
TCP  192.0.2.10:0 wlc persistent 360
  -> 192.0.2.20:0                 Route   1      0          0
TCP  192.0.2.10:80 wlc
  -> 192.0.2.20:80                Route   2      0          0
  -> 192.0.2.21:80                Route   1      0          0
TCP  192.0.2.12:80 wlc
  -> 192.0.2.23:80                Route   1      0          0
FWM  9 wlc
  -> 192.0.2.22:0                 Route   1      0          0";
    let got: Vec<&str> = text.lines().skip(2).take(9).map(str::trim_end).collect();
    assert_eq!(got.join("\n"), want, "{text}");
    assert!(imp.lua.contains("  sorry_server = \"192.0.2.99:80\",\n  quorum = 3,\n"), "{}", imp.lua);
    assert!(!imp.lua.contains("hysteresis"), "{}", imp.lua);
}
