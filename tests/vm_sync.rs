//! Connections survive director failover (VM tier), the control half: `lvsd lab` in DR mode
//! inside the QEMU guest with long-lived connections and *without* the kernel's connection
//! sync daemon breaks connections at SIGKILL of the master. The half with the daemon (every
//! connection survives kill, stop, link down and the returns, and the backup's
//! `ipvsadm -L -n -c` lists them before each fault) is the lab's own claims in tests/vm_lab.rs.

mod common;

#[test]
fn connections_break_at_failover_without_the_sync_daemon() {
    common::vm::run_scenarios("sync lab", &["lab-sync"]);
}
