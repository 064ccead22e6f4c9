//! Fuzz target for the control-socket request parser (src/control/proto.rs, compiled alone):
//! no input may panic it, and an accepted request must encode and parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/control/proto.rs"]
#[allow(dead_code)]
mod proto;

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = proto::parse_request(data) {
        let line = proto::encode_request(command.clone());
        assert_eq!(proto::parse_request(&line), Ok(command), "re-encoded: {}", String::from_utf8_lossy(&line));
    }
});
