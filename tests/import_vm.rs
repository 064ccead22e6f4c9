//! `lvsd import` proven against keepalived itself (VM tier, tests/vm/import.sh): for each
//! keepalived fixture, keepalived 2.2.7 and lvsd on the imported policy build the same IPVS
//! table, as `ipvsadm -L -n` prints it.
//!
//! Skips when the VM cannot run here (no qemu, not root, no apt) or keepalived is not
//! installed on the host (scripts/vm copies the host's into the guest); with
//! LVSD_REQUIRE_PRIVILEGED=1 either is a failure.

use std::process::Command;

#[test]
fn keepalived_and_imported_policy_build_the_same_ipvs_table() {
    let required = std::env::var("LVSD_REQUIRE_PRIVILEGED").as_deref() == Ok("1");
    if Command::new("keepalived").arg("--version").output().is_err() {
        assert!(!required, "keepalived is not installed (scripts/test installs it)");
        eprintln!("SKIPPED: keepalived is not installed");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/vm");
    let mut cmd = Command::new(script);
    cmd.arg("--lvsd").arg(env!("CARGO_BIN_EXE_lvsd"));
    if required {
        cmd.arg("--install");
    }
    let status = cmd.arg("import").status().expect("run scripts/vm");
    match status.code() {
        Some(0) => {}
        Some(77) if !required => eprintln!("SKIPPED: the VM tier cannot run here (see above)"),
        Some(77) => panic!("the VM tier cannot run and LVSD_REQUIRE_PRIVILEGED=1"),
        other => panic!("import scenario failed: scripts/vm exited with {other:?} (console log above)"),
    }
}
