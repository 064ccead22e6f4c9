//! The VM tier for IPVS: boots Debian's kernel under QEMU (scripts/vm) and runs the guest
//! scenarios in tests/vm/ against the real kernel and the real ipvsadm, in one boot.
//!
//! Skips (passes with a message) when the VM cannot run here: no qemu, not root, no apt.
//! With LVSD_REQUIRE_PRIVILEGED=1 (CI) it installs what it needs and a VM that cannot run
//! is a failure.

mod common;

const SCENARIOS: &[&str] = &["seed", "roundtrip", "format", "adopt", "daemon"];

#[test]
fn ipvs_scenarios_in_vm() {
    common::vm::run_scenarios("IPVS scenarios", SCENARIOS);
}
