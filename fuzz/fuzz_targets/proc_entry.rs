//! Fuzz target for the reading of /proc/PID/stat and /proc/PID/cmdline for tracked processes
//! (keepalived's vrrp_track_process): see check_harness.rs for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
mod check_harness;

fuzz_target!(|data: &[u8]| {
    check_harness::proc_entry(data);
});
