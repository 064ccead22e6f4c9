//! Health checks against the real kernel (VM tier): `lvsd run` with the kernel backend in the
//! QEMU guest, real servers in namespaces, every assertion read from `ipvsadm -L -n`
//! (tests/vm/checks.sh): TCP- and HTTP-checked reals leave and return within the fall/rise
//! bounds, an inhibit_on_failure real stays at weight 0, losing quorum brings in the sorry
//! server, a Lua check and a weight function set kernel weights, drain/undrain over the
//! control socket, and a clean stop on SIGTERM. The same behaviour with the in-memory
//! backend is tests/daemon_checks.rs.

mod common;

#[test]
fn checks_drive_the_kernel_table_in_vm() {
    common::vm::run_scenarios("health checks", &["checks"]);
}
