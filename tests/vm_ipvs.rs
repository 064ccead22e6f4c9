//! The VM tier for IPVS: boots Debian's kernel under QEMU (scripts/vm) and runs the guest
//! scenarios in tests/vm/ against the real kernel and the real ipvsadm, in one boot.
//!
//! Skips (passes with a message) when the VM cannot run here: no qemu, not root, no apt.
//! With LVSD_REQUIRE_PRIVILEGED=1 (CI) it installs what it needs and a VM that cannot run
//! is a failure.

use std::process::Command;

const SCENARIOS: &[&str] = &["seed", "roundtrip", "format", "adopt", "daemon"];

#[test]
fn ipvs_scenarios_in_vm() {
    let required = std::env::var("LVSD_REQUIRE_PRIVILEGED").as_deref() == Ok("1");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/vm");
    let mut cmd = Command::new(script);
    cmd.arg("--lvsd").arg(env!("CARGO_BIN_EXE_lvsd"));
    if required {
        cmd.arg("--install");
    }
    let status = cmd.args(SCENARIOS).status().expect("run scripts/vm");
    match status.code() {
        Some(0) => {}
        Some(77) if !required => {
            eprintln!("SKIPPED: the VM tier cannot run here (see above); set LVSD_REQUIRE_PRIVILEGED=1 to make this a failure");
        }
        Some(77) => panic!("the VM tier cannot run and LVSD_REQUIRE_PRIVILEGED=1"),
        other => panic!("VM scenarios failed: scripts/vm exited with {other:?} (console log above)"),
    }
}
