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
