//! The seed's classic keepalived configurations (sections 6.1-6.3), imported.

mod import_support;
use import_support::*;

/// The hand-written seed policies use the seed's addresses; the fixtures use documentation
/// ranges (tests/fixtures/keepalived/README.md).
fn seed_policy(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies").join(name);
    std::fs::read_to_string(path)
        .unwrap()
        .replace("192.168.65.", "198.51.100.")
        .replace("192.168.1.", "203.0.113.")
        .replace("10.20.40.", "192.0.2.")
}

#[test]
fn dr_master_and_backup_plan_like_the_seed_policy() {
    for (file, node) in [("dr-master.conf", "lvs01"), ("dr-backup.conf", "lvs02")] {
        let imp = import(file);
        assert_eq!(plan(&imp.lua, node).0, plan(&seed_policy("seed-dr.lua"), node).0, "{file}:\n{}", imp.lua);
    }
}

#[test]
fn dr_master_output_reads_like_a_policy() {
    let lua = import("dr-master.conf").lua;
    for line in [
        "lvsd.vrrp \"VI_1\" {",
        "  state = \"master\",",
        "  vrid = 51,",
        "  auth_pass = \"1111\",",
        "  vips = { \"198.51.100.123\" },",
        "lvsd.service \"198.51.100.123:80\" {",
        "  scheduler = \"wrr\",",
        "  persistence = 50,",
        // keepalived 2.2 ignores nb_get_retry in TCP_CHECK: the default retry (1) applies.
        "  check = lvsd.check.tcp { interval = 6, timeout = 8, retry_delay = 3 },",
        "  -- keepalived: nb_get_retry 3 (ignored by keepalived 2.2 in TCP_CHECK: retries = 1)",
        "  reals = { \"198.51.100.156:80\", \"198.51.100.157:80\" },",
        "  -- keepalived: nat_mask 255.255.255.0 (not translated: obsolete: only used by Linux 2.2 LVS; keepalived 2.x ignores it)",
    ] {
        assert!(lua.lines().any(|l| l == line), "missing line {line:?} in\n{lua}");
    }
    // Defaults are omitted: priority 100, DR forwarding, TCP, weight 1, connect_port = the real's port.
    for absent in ["priority", "forward", "protocol", "weight", "port ="] {
        assert!(!lua.contains(absent), "{absent} should be omitted:\n{lua}");
    }
}

#[test]
fn dr_warnings_name_file_and_line() {
    assert_eq!(
        warnings(&import("dr-master.conf")),
        vec![
            "dr-master.conf:18: keyword 'lvs_sync_daemon_inteface' is a misspelling of 'lvs_sync_daemon_interface' from keepalived's documentation, which keepalived does not read (it starts no sync daemon); translated as lvsd.sync_daemon, as the configuration means",
            "dr-master.conf:36: keyword 'nat_mask' is not supported by lvsd (obsolete: only used by Linux 2.2 LVS; keepalived 2.x ignores it)",
            "dr-master.conf:44: keyword 'nb_get_retry' is not read in TCP_CHECK by keepalived 2.2 (only HTTP_GET and SSL_GET take it), so keepalived retries 1 time(s), not 3: translated as retries = 1",
            "dr-master.conf:54: keyword 'nb_get_retry' is not read in TCP_CHECK by keepalived 2.2 (only HTTP_GET and SSL_GET take it), so keepalived retries 1 time(s), not 3: translated as retries = 1",
        ]
    );
}

#[test]
fn nat_howto_plans_like_the_seed_policy() {
    let imp = import("lvs-nat-howto.conf");
    let (text, json) = plan(&imp.lua, "lvs01");
    assert_eq!(text, plan(&seed_policy("seed-nat.lua"), "lvs01").0, "\n{}", imp.lua);
    assert!(text.contains("TCP  203.0.113.11:22 rr\n  -> 192.0.2.10:22                Masq    1"), "{text}");
    assert!(json.contains("\"VI_GATEWAY\""));
    // lb_kind NAT is written out (lvsd's default is DR), the sync group and daemon are kept.
    for line in [
        "  forward = \"nat\",",
        "lvsd.sync_group \"VG1\" {",
        "  instances = { \"VI_1\", \"VI_GATEWAY\" },",
        "lvsd.sync_daemon {",
        "  instance = \"VI_1\",",
        "  smtp_alert = true,",
        "  check = lvsd.check.tcp { interval = 6, timeout = 3 },",
    ] {
        assert!(imp.lua.lines().any(|l| l == line), "missing line {line:?} in\n{}", imp.lua);
    }
}

#[test]
fn nat_howto_warnings() {
    let w = warnings(&import("lvs-nat-howto.conf"));
    assert!(w[0].starts_with("lvs-nat-howto.conf:20: keyword 'lvs_id' is keepalived 1.x's name for 'router_id'"), "{w:#?}");
    assert!(w.iter().any(|x| x.starts_with("lvs-nat-howto.conf:95: lvs_sync_daemon_inteface: already given (line ")), "{w:#?}");
    assert!(w.iter().any(|x| x.starts_with("lvs-nat-howto.conf:125: keyword 'nat_mask'")), "{w:#?}");
}

#[test]
fn pair_plans_equal_the_single_imports() {
    let merged = pair(("lvs01", "dr-master.conf"), ("lvs02", "dr-backup.conf"));
    for (node, file) in [("lvs01", "dr-master.conf"), ("lvs02", "dr-backup.conf")] {
        let single = import(file);
        assert_eq!(plan(&merged.lua, node), plan(&single.lua, node), "node {node}:\n{}", merged.lua);
    }
}

#[test]
fn pair_conditions_only_what_differs() {
    let lua = pair(("lvs01", "dr-master.conf"), ("lvs02", "dr-backup.conf")).lua;
    assert!(lua.contains("local node = lvsd.node\n"));
    for line in [
        "  router_id = node == \"lvs01\" and \"LVS_oldboy01\" or \"LVS_oldboy02\",",
        "  state = node == \"lvs01\" and \"master\" or \"backup\",",
        "  priority = node == \"lvs01\" and 100 or 90,",
        "  vrid = 51,",
        "  vips = { \"198.51.100.123\" },",
    ] {
        assert!(lua.lines().any(|l| l == line), "missing line {line:?} in\n{lua}");
    }
    assert_eq!(lua.matches("node ==").count(), 3, "{lua}");
    assert_eq!(lua.matches("lvsd.service").count(), 1, "{lua}");
}
