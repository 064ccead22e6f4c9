//! keepalived's preprocessor: include with globs, `@id` lines, `$NAME` parameters,
//! multi-line definitions.

mod import_support;
use import_support::*;

#[test]
fn include_globs_are_relative_to_the_including_file() {
    let imp = import("include/main.conf");
    let lua = &imp.lua;
    // conf.d/*.conf in name order; conf.d/ignored.txt is not read (it would not parse).
    let vi1 = lua.find("lvsd.vrrp \"VI_1\"").expect(lua);
    let vi2 = lua.find("lvsd.vrrp \"VI_2\"").expect(lua);
    assert!(vi1 < vi2, "{lua}");
    // sub/{vs,missing}.conf: the brace expands, sub/vs.conf includes reals.inc relative to sub/.
    assert!(lua.contains("lvsd.service \"192.0.2.10:80\" {\n  vip = \"192.0.2.10:80\",\n  reals = { \"192.0.2.20:80\" },\n}"), "{lua}");
    assert!(imp.warnings.is_empty(), "{:?}", imp.warnings);
    plan(lua, "lvs01");
}

#[test]
fn include_of_nothing_warns() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k.conf");
    std::fs::write(&p, "include none/*.conf\n").unwrap();
    let imp = lvsd::import::import_file(&p, &Default::default()).unwrap();
    assert_eq!(imp.warnings.len(), 1);
    assert_eq!(imp.warnings[0].to_string(), format!("{}:1: include 'none/*.conf' matches no file", p.display()));
}

#[test]
fn conditional_lines_follow_the_config_id() {
    let lua = import_as("preprocess.conf", "lvs01").lua;
    assert!(lua.contains("router_id = \"LVS_01\""), "{lua}");
    assert!(lua.contains("state = \"master\""), "{lua}");
    assert!(lua.contains("priority = 150"), "{lua}");
    assert!(!lua.contains("nopreempt"), "@^lvs01 lines are skipped on lvs01:\n{lua}");

    let lua = import_as("preprocess.conf", "lvs02").lua;
    assert!(lua.contains("router_id = \"LVS_02\""), "{lua}");
    assert!(!lua.contains("state ="), "{lua}");
    assert!(lua.contains("priority = 50"), "{lua}");
    assert!(lua.contains("nopreempt = true"), "{lua}");
}

#[test]
fn conditional_lines_without_a_config_id_warn() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k.conf");
    std::fs::write(&p, "global_defs {\n  @lvs01 router_id A\n  @^lvs01 smtp_connect_timeout 9\n}\n").unwrap();
    let imp = lvsd::import::import_file(&p, &Default::default()).unwrap();
    let w: Vec<String> = imp.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w, vec![format!("{}:2: line for config-id 'lvs01' skipped (no config-id given: use --config-id or --pair)", p.display())]);
    assert!(!imp.lua.contains("router_id"), "{}", imp.lua);
    assert!(imp.lua.contains("smtp_connect_timeout = 9"), "@^ lines apply when no id matches:\n{}", imp.lua);
}

#[test]
fn undefined_parameters_stay_as_written() {
    // Without a config-id $PRIO is never defined; keepalived leaves `$PRIO` in place too,
    // finds no number there and uses its default priority ("Priority not valid! ... Using
    // default 100").
    let imp = lvsd::import::import_file(&fixture("preprocess.conf"), &Default::default()).unwrap();
    let last = imp.warnings.last().unwrap().to_string();
    assert!(
        last.ends_with("preprocess.conf:21: vrrp_instance VI_1: priority '$PRIO' is not valid (1..255); keepalived uses 100"),
        "{last}"
    );
    assert!(!imp.lua.contains("priority"), "{}", imp.lua);
}

#[test]
fn parameters_and_multiline_definitions_expand() {
    let lua = import_as("preprocess.conf", "lvs01").lua;
    assert!(lua.contains("interface = \"eth0\""), "$IFACE:\n{lua}");
    assert!(lua.contains("vips = { \"192.0.2.10\" }"), "$VIP:\n{lua}");
    assert!(lua.contains("lvsd.service \"192.0.2.10:80\""), "$VIP in the virtual_server line:\n{lua}");
    // $REAL is a multi-line definition using ${NET} and ${HOST}, redefined between uses.
    assert!(lua.contains("reals = { \"192.0.2.20:80\", \"192.0.2.21:80\" }"), "{lua}");
}

#[test]
fn one_conditional_file_makes_a_pair() {
    let merged = pair(("lvs01", "preprocess.conf"), ("lvs02", "preprocess.conf"));
    for line in [
        "  router_id = node == \"lvs01\" and \"LVS_01\" or \"LVS_02\",",
        "  state = node == \"lvs01\" and \"master\" or \"backup\",",
        "  priority = node == \"lvs01\" and 150 or 50,",
        "  nopreempt = node ~= \"lvs01\",",
    ] {
        assert!(merged.lua.lines().any(|l| l == line), "missing {line:?} in\n{}", merged.lua);
    }
    for node in ["lvs01", "lvs02"] {
        assert_eq!(plan(&merged.lua, node), plan(&import_as("preprocess.conf", node).lua, node), "{node}");
    }
}
