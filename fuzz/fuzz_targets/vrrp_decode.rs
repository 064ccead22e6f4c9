//! Fuzz target for the VRRP advert decoder: see harness.rs for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod harness;

fuzz_target!(|data: &[u8]| {
    harness::check(data);
});
