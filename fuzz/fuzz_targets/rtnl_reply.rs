//! Fuzz target for the rtnetlink readers (src/net/rtnl_msg.rs): any bytes, read as the answers
//! to a request or dump, as address notifications and as link notifications, are read or
//! refused with a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvsd::net::rtnl_msg;

fuzz_target!(|data: &[u8]| {
    let mut payloads = Vec::new();
    let _ = rtnl_msg::read_answers("fuzz", data, 1, &mut payloads);
    // What a dump collected, read as either kind of answer.
    let _ = rtnl_msg::addresses("fuzz", &payloads);
    let _ = rtnl_msg::links("fuzz", &payloads);
    let _ = rtnl_msg::address_changes(data);
    let _ = rtnl_msg::link_changes(data);
});
