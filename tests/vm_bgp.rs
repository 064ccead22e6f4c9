//! Scale-out in the VM tier: a BIRD router and two directors running BIRD and lvsd with the
//! kernel's IPVS (`mh`, DR); ECMP spreads the requests over both directors, drain-director and
//! SIGTERM withdraw a director's route and fail no request (tests/vm/ecmp.sh).

mod common;

#[test]
fn ecmp_in_vm() {
    for p in ["/usr/sbin/bird", "/usr/sbin/birdc"] {
        if !std::path::Path::new(p).exists() {
            lvsd::net::netns::cannot_run("ecmp_in_vm", &format!("{p} is missing (apt-get install bird2)"));
            return;
        }
    }
    common::vm::run_scenarios_with("ecmp", &["/usr/sbin/bird", "/usr/sbin/birdc"], &["ecmp"]);
}
