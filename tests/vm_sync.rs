//! Connections survive director failover (VM tier): `lvsd lab` in DR mode inside the QEMU
//! guest with long-lived connections and the kernel's connection sync daemon. Every connection
//! open at a fault survives SIGKILL of the master, a graceful stop, link down and the master's
//! return with sync-aware preemption; the backup's `ipvsadm -L -n -c` lists the connections
//! before each fault; the same kill with `--no-sync` breaks connections. NAT mode is the
//! scenario `lab-sync-nat` (scripts/vm lab-sync-nat), left out here to keep the target short.

mod common;

#[test]
fn connections_survive_failover_in_vm() {
    common::vm::run_scenarios("sync lab", &["lab-sync"]);
}
