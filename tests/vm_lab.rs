//! The production simulation as a test (VM tier): `lvsd lab --verify` in DR, NAT and TUN
//! modes inside the QEMU guest, where the kernel has IPVS. The lab checks its own claims:
//! every real server serves, the backup takes over after SIGKILL within the bound set by
//! Master_Down_Interval, a graceful stop fails no request, a dead real server leaves the
//! table and comes back, a hot-reloaded weight shows in the distribution, and no namespace
//! is left behind; every long-lived connection open at a fault survives it (the sync daemon),
//! and in DR the backup lists the master's connections before each fault.

mod common;

#[test]
fn lab_in_vm() {
    common::vm::run_scenarios("lab", &["lab-dr", "lab-nat", "lab-tun"]);
}
