//! Fuzz target for the reading of a tracked file's number (keepalived's track_file): see
//! check_harness.rs for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
mod check_harness;

fuzz_target!(|data: &[u8]| {
    check_harness::track_file(data);
});
