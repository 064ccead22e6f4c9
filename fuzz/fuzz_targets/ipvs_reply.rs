//! Fuzz target for the IPVS generic-netlink reply decoders (what the kernel answers to a dump or
//! a get): any bytes, read as each kind of reply, decode or fail with a typed error, never a
//! panic. The decoders are pure (src/ipvs/wire.rs, attrs.rs) and compiled from the sources.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvsd::ipvs::{table::Family, wire};

fuzz_target!(|data: &[u8]| {
    // A whole datagram: netlink headers, acks and errors, dump ends.
    let _ = wire::parse_replies(data);
    let _ = wire::parse_genl(data);
    let _ = wire::decode_service(data);
    let _ = wire::decode_dest(data, Family::Inet);
    let _ = wire::decode_dest(data, Family::Inet6);
    let _ = wire::decode_info(data);
    let _ = wire::decode_config(data);
    let _ = wire::decode_daemon(data);
    let _ = wire::decode_family_id(data);
});
