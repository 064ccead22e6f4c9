//! `lvsd import` proven against keepalived itself (VM tier, tests/vm/import.sh): for each of
//! thirteen keepalived fixtures (the seed's configurations, the importer's keyword files,
//! samples/ in the forms of keepalived's doc/samples, and fidelity/group-families),
//! keepalived 2.2.7 and lvsd on the imported policy build the same IPVS table, as
//! `ipvsadm -L -n` prints it.
//!
//! Skips when the VM cannot run here (no qemu, not root, no apt) or keepalived is not
//! installed on the host (scripts/vm copies the host's into the guest); with
//! LVSD_REQUIRE_PRIVILEGED=1 either is a failure.

use std::process::Command;

mod common;

#[test]
fn keepalived_and_imported_policy_build_the_same_ipvs_table() {
    let required = std::env::var("LVSD_REQUIRE_PRIVILEGED").as_deref() == Ok("1");
    if Command::new("keepalived").arg("--version").output().is_err() {
        assert!(!required, "keepalived is not installed (scripts/test installs it)");
        eprintln!("SKIPPED: keepalived is not installed");
        return;
    }
    common::vm::run_scenarios("import equivalence", &["import"]);
}
