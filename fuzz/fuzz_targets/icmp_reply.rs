//! Fuzz target for the reading of what a ping check's raw socket receives: see
//! check_harness.rs for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
mod check_harness;

fuzz_target!(|data: &[u8]| {
    check_harness::icmp(data);
});
