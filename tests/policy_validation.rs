//! Every validation rule, each with a bad policy: the error names file and line.

use lvsd::policy::{LoadOptions, PolicyError, load_source};
use std::path::Path;

fn errors(src: &str) -> Vec<String> {
    let opts = LoadOptions { node: "lvs01".into(), limits: Default::default() };
    match load_source(src, Path::new("bad.lua"), Path::new("."), &opts) {
        Ok(_) => panic!("policy should be rejected:\n{src}"),
        Err(PolicyError::Invalid(errs)) => errs.iter().map(|e| e.to_string()).collect(),
        Err(e) => panic!("{e}"),
    }
}

/// The policy fails with an error at `line` containing `needle`.
fn rejects(src: &str, line: u32, needle: &str) {
    let errs = errors(src);
    let prefix = format!("bad.lua:{line}: ");
    assert!(
        errs.iter().any(|e| e.starts_with(&prefix) && e.contains(needle)),
        "expected an error at line {line} containing {needle:?}, got:\n{}",
        errs.join("\n")
    );
}

const OK_VRRP: &str = r#"lvsd.vrrp "A" { interface = "eth0", vrid = 51, vips = { "192.0.2.1" } }"#;

#[test]
fn duplicate_vrid_on_one_interface() {
    rejects(
        &format!("{OK_VRRP}\nlvsd.vrrp \"B\" {{ interface = \"eth0\", vrid = 51, vips = {{ \"192.0.2.2\" }} }}"),
        2,
        "vrid 51 is already used on eth0 by 'A'",
    );
}

#[test]
fn same_vrid_on_other_interface_or_family_is_fine() {
    let src = format!(
        "{OK_VRRP}\nlvsd.vrrp \"B\" {{ interface = \"eth1\", vrid = 51, vips = {{ \"192.0.2.2\" }} }}\n\
         lvsd.vrrp \"C\" {{ interface = \"eth0\", vrid = 51, version = 3, vips = {{ \"2001:db8::1\" }} }}"
    );
    let opts = LoadOptions { node: "n".into(), limits: Default::default() };
    load_source(&src, Path::new("ok.lua"), Path::new("."), &opts).unwrap();
}

#[test]
fn vip_family_mismatch() {
    rejects(
        r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, version = 3, vips = { "192.0.2.1", "2001:db8::1" } }"#,
        1,
        "not in the same address family",
    );
}

#[test]
fn ipv6_needs_v3_and_auth_is_v2_only() {
    rejects(r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, vips = { "2001:db8::1" } }"#, 1, "need version = 3");
    rejects(
        r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, version = 3, auth_pass = "x", vips = { "192.0.2.1" } }"#,
        1,
        "auth_pass is VRRPv2 only",
    );
    rejects(r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, auth_pass = "123456789", vips = { "192.0.2.1" } }"#, 1, "1 to 8 characters");
}

#[test]
fn out_of_range_numbers() {
    rejects(r#"lvsd.vrrp "A" { interface = "eth0", vrid = 0, vips = { "192.0.2.1" } }"#, 1, "vrid = 0 is out of range (1..255)");
    rejects(
        r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, priority = 256, vips = { "192.0.2.1" } }"#,
        1,
        "priority = 256 is out of range",
    );
    rejects(
        r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, version = 4, vips = { "192.0.2.1" } }"#,
        1,
        "version = 4 is out of range (2..3)",
    );
    rejects(
        r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, advert_int = 0.5, vips = { "192.0.2.1" } }"#,
        1,
        "advert_int = 0.5 is out of range (1..255)",
    );
    rejects(
        r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, version = 3, advert_int = 41, vips = { "192.0.2.1" } }"#,
        1,
        "advert_int = 41 is out of range (0.01..40.95)",
    );
    rejects(r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, advert_int = 1.5, version = 2, vips = { "192.0.2.1" } }"#, 1, "advert_int");
    rejects(r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1.5, vips = { "192.0.2.1" } }"#, 1, "vrid = 1.5 must be a whole number");
    rejects(
        "\n\nlvsd.service \"s\" { vip = \"192.0.2.1:80\", reals = { { address = \"198.51.100.1:80\", weight = 65536 } } }",
        3,
        "weight = 65536 is out of range (0..65535)",
    );
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:70000" }"#, 1, "is not an address:port");
    rejects("lvsd.global { vrrp_rt_priority = 100 }", 1, "vrrp_rt_priority = 100 is out of range (0..99)");
    let opts = LoadOptions { node: "lvs01".into(), limits: Default::default() };
    for (src, want) in [("", None), ("lvsd.global { vrrp_rt_priority = 0 }", Some(0)), ("lvsd.global { vrrp_rt_priority = 99 }", Some(99))]
    {
        let p = load_source(src, Path::new("ok.lua"), Path::new("."), &opts).unwrap();
        assert_eq!(p.model.global.vrrp_rt_priority, want, "{src}");
    }
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:80", check = lvsd.check.tcp { timeout = -1 } }"#, 1, "timeout = -1 is out of range");
    rejects(
        r#"lvsd.service "s" { vip = "192.0.2.1:80", check = lvsd.check.http { status = 99 } }"#,
        1,
        "status '99' is not an HTTP status code",
    );
}

/// RFC 5798 5.2.7: Max Adver Int is 12 bits of centiseconds, so VRRPv3 goes down to 0.01 s;
/// RFC 3768 5.3.7: VRRPv2's Adver Int is whole seconds.
#[test]
fn ten_millisecond_adverts_are_v3_only() {
    let opts = LoadOptions { node: "lvs01".into(), limits: Default::default() };
    let src = r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, version = 3, advert_int = 0.01, vips = { "192.0.2.1" } }"#;
    let p = load_source(src, Path::new("ok.lua"), Path::new("."), &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.model.vrrp[0].advert_int_cs, 1);
    rejects(
        r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, version = 3, advert_int = 0.005, vips = { "192.0.2.1" } }"#,
        1,
        "advert_int = 0.005 is out of range (0.01..40.95)",
    );
    rejects(
        r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, version = 2, advert_int = 0.01, vips = { "192.0.2.1" } }"#,
        1,
        "advert_int = 0.01 is out of range (1..255)",
    );
}

#[test]
fn duplicate_service() {
    rejects(
        "lvsd.service \"a\" { vip = \"192.0.2.1:80\" }\nlvsd.service \"b\" { vip = \"192.0.2.1:80\" }",
        2,
        "TCP 192.0.2.1:80 is already service 'a' (bad.lua:1)",
    );
    rejects("lvsd.service \"a\" { fwmark = 3 }\nlvsd.service \"b\" { fwmark = 3 }", 2, "is already service 'a'");
    rejects("lvsd.service \"a\" { vip = \"192.0.2.1:80\" }\nlvsd.service \"a\" { vip = \"192.0.2.1:81\" }", 2, "declared twice");
}

#[test]
fn udp_and_tcp_on_one_port_are_different_services() {
    let opts = LoadOptions { node: "n".into(), limits: Default::default() };
    let src = "lvsd.service \"a\" { vip = \"192.0.2.1:53\", protocol = \"udp\" }\nlvsd.service \"b\" { vip = \"192.0.2.1:53\" }";
    load_source(src, Path::new("ok.lua"), Path::new("."), &opts).unwrap();
}

#[test]
fn real_family_mismatch_outside_tun() {
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:80", reals = { "[2001:db8::1]:80" } }"#, 1, "not in the family of the VIP");
    let opts = LoadOptions { node: "n".into(), limits: Default::default() };
    let tun = r#"lvsd.service "s" { vip = "192.0.2.1:80", forward = "tun", reals = { "[2001:db8::1]:80" } }"#;
    load_source(tun, Path::new("ok.lua"), Path::new("."), &opts).unwrap();
}

#[test]
fn unknown_names_list_the_valid_ones() {
    rejects(
        r#"lvsd.service "s" { vip = "192.0.2.1:80", scheduler = "fastest" }"#,
        1,
        "unknown scheduler 'fastest' (valid: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)",
    );
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:80", forward = "fullnat" }"#, 1, "unknown forward 'fullnat' (valid: dr, nat, tun)");
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:80", protocol = "icmp" }"#, 1, "unknown protocol 'icmp' (valid: tcp, udp, sctp)");
    rejects(
        r#"lvsd.service "s" { vip = "192.0.2.1:80", scheduler = "sh", sched_flags = { "sh-everything" } }"#,
        1,
        "valid: sh-fallback, sh-port, mh-fallback, mh-port",
    );
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:80", persistance = 50 }"#, 1, "unknown key 'persistance' (valid keys: ");
    rejects(
        r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, vips = { "192.0.2.1" }, state = "leader" }"#,
        1,
        "unknown state 'leader' (valid: master, backup)",
    );
    rejects(
        &format!("{OK_VRRP}\nlvsd.sync_group \"G\" {{ instances = {{ \"A\", \"B\" }} }}"),
        2,
        "unknown vrrp instance 'B' (declared instances: A)",
    );
    rejects(
        r#"lvsd.service "s" { vip = "192.0.2.1:80", check = lvsd.check.tcp { intervall = 3 } }"#,
        1,
        "check.tcp: unknown key 'intervall'",
    );
}

/// A declaration with more keys than are kept per table is still read whole: its valid keys
/// (wherever the table's order puts them) take effect and every unknown key is named.
#[test]
fn a_table_with_hundreds_of_keys_is_read_whole() {
    let extra: String = (0..300).map(|i| format!("x{i} = {i}, ")).collect();
    let src =
        format!("lvsd.service \"s\" {{ {extra}vip = \"192.0.2.1:80\", scheduler = \"sched-of-nowhere\", reals = {{ \"198.51.100.1\" }} }}");
    let errs = errors(&src);
    let unknown = errs.iter().filter(|e| e.contains("unknown key 'x")).count();
    assert_eq!(unknown, 300, "{}", errs.join("\n"));
    // The scheduler was read (and rejected), not taken as absent.
    assert!(errs.iter().any(|e| e.contains("sched-of-nowhere")), "{}", errs.join("\n"));
    assert!(!errs.iter().any(|e| e.contains("vip = ")), "the vip was read: {}", errs.join("\n"));
}

#[test]
fn structural_rules() {
    rejects(
        r#"lvsd.service "s" { vip = "192.0.2.1:80", scheduler = "wrr", sched_flags = { "sh-port" } }"#,
        1,
        "sched_flags only apply to the sh and mh schedulers",
    );
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:80", netmask = "255.255.255.0" }"#, 1, "needs persistence");
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:80", persistence = 5, netmask = "255.0.255.0" }"#, 1, "not a contiguous IPv4 netmask");
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:80", reals = { "198.51.100.1:80", "198.51.100.1:80" } }"#, 1, "listed twice");
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:80", fwmark = 1 }"#, 1, "either vip or fwmark");
    rejects(r#"lvsd.service "s" { protocol = "tcp" }"#, 1, "vip = \"addr:port\" (or fwmark = N) is required");
    rejects(r#"lvsd.vrrp "A" { vrid = 1, vips = { "192.0.2.1" } }"#, 1, "interface is required");
    rejects(r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, version = 3 }"#, 1, "a VRRPv3 instance needs at least one virtual address");
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:80", check = lvsd.check.exec { } }"#, 1, "command = {");
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:80", check = "tcp" }"#, 1, "check must be an lvsd.check.* value");
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:80", quorum = 2, hysteresis = 2 }"#, 1, "hysteresis 2 must be below quorum 2");
    rejects(r#"lvsd.service "s" { vip = "192.0.2.1:80", sorry_server = "[2001:db8::1]:80" }"#, 1, "sorry_server");
}

#[test]
fn lua_errors_name_file_and_line() {
    rejects("local x = 1\nlocal y = nil\ny.z = 2\n", 3, "attempt to index a nil value");
    rejects("lvsd.service \"x\" {\n  vip = \"192.0.2.1:80\"\n", 3, "'}' expected");
    rejects("lvsd.service { vip = \"192.0.2.1:80\" }", 1, "lvsd.service needs a name first");
}

#[test]
fn errors_before_a_lua_error_are_kept() {
    let errs = errors("lvsd.service \"s\" { vip = \"192.0.2.1:80\", scheduler = \"x\" }\nerror(\"boom\")\n");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[1].starts_with("bad.lua:2: boom"), "{errs:?}");
}

#[test]
fn thresholds_lower_above_upper_is_an_error_lower_alone_a_warning_the_kernel_refuses_it_too() {
    let real = |t: &str| format!("lvsd.service \"s\" {{ vip = \"192.0.2.1:80\", reals = {{ {{ address = \"198.51.100.1:80\", {t} }} }} }}");
    rejects(&real("upper_threshold = 10, lower_threshold = 20"), 1, "lower_threshold 20 is above upper_threshold 10");
    let opts = LoadOptions { node: "lvs01".into(), limits: Default::default() };
    let m =
        load_source(&real("lower_threshold = 20"), Path::new("ok.lua"), Path::new("."), &opts).expect("a lower threshold alone is valid");
    let w: Vec<String> = lvsd::model::warnings(&m.model).iter().map(|e| e.to_string()).collect();
    assert!(
        w.iter().any(|w| w.starts_with("ok.lua:1: ") && w.contains("lower_threshold 20 without upper_threshold: the kernel refuses")),
        "{w:?}"
    );
    let m = load_source(&real("upper_threshold = 30, lower_threshold = 20"), Path::new("ok.lua"), Path::new("."), &opts).unwrap();
    assert!(lvsd::model::warnings(&m.model).is_empty());
}

#[test]
fn excluded_vips_take_either_family_and_the_vips_syntax() {
    let ok = r#"lvsd.vrrp "A" { interface = "eth0", vrid = 51, vips = { "192.0.2.1" },
  excluded_vips = { "2001:db8::1/64", { address = "192.0.2.9", dev = "eth1" } } }"#;
    let opts = LoadOptions { node: "lvs01".into(), limits: Default::default() };
    let m = load_source(ok, Path::new("ok.lua"), Path::new("."), &opts).unwrap().model;
    let shown: Vec<String> = m.vrrp[0].excluded_vips.iter().map(|v| v.to_string()).collect();
    assert_eq!(shown, ["2001:db8::1/64", "192.0.2.9/32 dev eth1"]);
    assert!(!m.vrrp[0].is_ipv6(), "the family is the VIPs'");
    rejects(
        r#"lvsd.vrrp "A" { interface = "eth0", vrid = 51, vips = { "192.0.2.1" }, excluded_vips = 5 }"#,
        1,
        "excluded_vips must be a list of addresses, not a integer",
    );
    // Held once on the interface: one address cannot have two settings across the lists.
    rejects(
        r#"lvsd.vrrp "A" { interface = "eth0", vrid = 51, vips = { "192.0.2.1" }, excluded_vips = { "192.0.2.1/24" } }"#,
        1,
        "VIP 192.0.2.1 is listed twice with different settings (192.0.2.1/32 and 192.0.2.1/24)",
    );
}

#[test]
fn a_vrrp_v2_instance_may_have_no_vip() {
    // keepalived runs one ("No VIP specified; at least one is sensible"): its adverts list none.
    let opts = LoadOptions { node: "lvs01".into(), limits: Default::default() };
    let m = load_source(r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1 }"#, Path::new("ok.lua"), Path::new("."), &opts).unwrap().model;
    assert!(m.vrrp[0].vips.is_empty() && !m.vrrp[0].is_ipv6());
}

#[test]
fn use_vmac_names_its_interface_and_needs_xmit_base_with_unicast() {
    let opts = LoadOptions { node: "lvs01".into(), limits: Default::default() };
    let ok = r#"lvsd.vrrp "A" { interface = "eth0", vrid = 51, vips = { "192.0.2.1" }, use_vmac = true }
lvsd.vrrp "B" { interface = "eth0", vrid = 52, vips = { "192.0.2.2" }, use_vmac = "vmac52", vmac_xmit_base = true,
  unicast_peers = { "192.0.2.9" } }"#;
    let m = load_source(ok, Path::new("ok.lua"), Path::new("."), &opts).unwrap().model;
    let vm: Vec<_> =
        m.vrrp.iter().map(|v| (v.vmac.clone().unwrap(), v.advert_interface().to_string(), v.vip_interface().to_string())).collect();
    assert_eq!((vm[0].0.name.as_str(), vm[0].0.xmit_base, vm[0].1.as_str(), vm[0].2.as_str()), ("vrrp.51", false, "vrrp.51", "vrrp.51"));
    assert_eq!((vm[1].0.name.as_str(), vm[1].0.xmit_base, vm[1].1.as_str(), vm[1].2.as_str()), ("vmac52", true, "eth0", "vmac52"));

    let base = r#"lvsd.vrrp "A" { interface = "eth0", vrid = 51, vips = { "192.0.2.1" }, "#;
    rejects(&format!("{base}use_vmac = \"eth0:1\" }}"), 1, "use_vmac: \"eth0:1\" is not a usable interface name");
    rejects(&format!("{base}use_vmac = 5 }}"), 1, "use_vmac must be true or an interface name");
    rejects(&format!("{base}vmac_xmit_base = true }}"), 1, "vmac_xmit_base applies to an instance with use_vmac");
    rejects(&format!("{base}use_vmac = true, unicast_peers = {{ \"192.0.2.9\" }} }}"), 1, "needs vmac_xmit_base = true");
    rejects(
        &format!(
            "{base}use_vmac = true }}\nlvsd.vrrp \"B\" {{ interface = \"eth1\", vrid = 51, vips = {{ \"192.0.2.2\" }}, use_vmac = true }}"
        ),
        2,
        "use_vmac vrrp.51 is already the virtual MAC interface of 'A'",
    );
    rejects(
        &format!("{base}use_vmac = \"eth1\" }}\nlvsd.vrrp \"B\" {{ interface = \"eth1\", vrid = 52, vips = {{ \"192.0.2.2\" }} }}"),
        1,
        "is an instance's own interface",
    );
}

#[test]
fn a_vip_broadcast_is_read_as_ip_reads_it() {
    use lvsd::policy::parse_vip;
    let brd = |s: &str| parse_vip(s).map(|v| v.broadcast.map(|b| b.to_string()));
    assert_eq!(brd("192.0.2.10/24 brd 192.0.2.255"), Ok(Some("192.0.2.255".into())));
    assert_eq!(brd("192.0.2.10/24 brd +"), Ok(Some("192.0.2.255".into())));
    assert_eq!(brd("192.0.2.10/24 broadcast -"), Ok(Some("192.0.2.0".into())));
    assert_eq!(brd("192.0.2.10/30 brd +"), Ok(Some("192.0.2.11".into())));
    assert_eq!(parse_vip("192.0.2.10/24 brd +").unwrap().to_string(), "192.0.2.10/24 brd 192.0.2.255");
    assert!(brd("192.0.2.10/31 brd +").unwrap_err().contains("needs a prefix of 30 or less"));
    assert!(brd("2001:db8::1/64 brd +").unwrap_err().contains("IPv6 addresses have no broadcast"));
    assert!(brd("192.0.2.10/24 brd x").unwrap_err().contains("is not an IPv4 address, + or -"));
    rejects(
        r#"lvsd.vrrp "A" { interface = "eth0", vrid = 51, vips = { { address = "192.0.2.1/24", broadcast = "+" }, { address = "192.0.2.2", broadcast = "+" } } }"#,
        1,
        "brd + needs a prefix of 30 or less",
    );
}

#[test]
fn lvs_timeouts_take_seconds_up_to_31_days() {
    let opts = LoadOptions { node: "lvs01".into(), limits: Default::default() };
    let ok = r#"lvsd.global { lvs_timeouts = { tcp = 7200, udp = 60 } }"#;
    let m = load_source(ok, Path::new("ok.lua"), Path::new("."), &opts).unwrap().model;
    assert_eq!(m.global.lvs_timeouts, Some(lvsd::model::LvsTimeouts { tcp: 7200, tcp_fin: 0, udp: 60 }));
    rejects(r#"lvsd.global { lvs_timeouts = { tcp = 2678401 } }"#, 1, "tcp");
    rejects(r#"lvsd.global { lvs_timeouts = { tcp_fin = 60 } }"#, 1, "tcp_fin");
}
