//! Scale-out rehearsed in the VM tier: `lvsd lab --topology ecmp --verify` with three
//! directors behind a BIRD router's ECMP route (tests/vm/lab-ecmp.sh). The lab checks its
//! own claims: every director takes traffic; a third director that joins fails no request,
//! breaks no long-lived connection, learns the others' connections from the sync daemons and
//! takes new ones; drain-director and undrain fail no request and break no long-lived
//! connection; a director that dies breaks no established connection (mh + DR, the sync
//! daemon) and fails only requests sent before the router's route changed; its return breaks
//! none; the router's route changes only at the faults.

mod common;

#[test]
fn ecmp_lab_in_vm() {
    for p in lvsd::lab::vm::BIRD {
        if !std::path::Path::new(p).exists() {
            lvsd::net::netns::cannot_run("ecmp_lab_in_vm", &format!("{p} is missing (apt-get install bird2)"));
            return;
        }
    }
    common::vm::run_scenarios_with("ecmp_lab", &lvsd::lab::vm::BIRD, &["lab-ecmp"]);
}
