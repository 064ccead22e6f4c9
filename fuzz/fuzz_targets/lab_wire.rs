//! Fuzz target for what the ecmp lab reads (src/lab/ecmp/wire.rs, compiled alone): frames
//! from a packet socket on each director's link and the router's `ip -o monitor route`
//! lines and a director's `/proc/net/ip_vs_conn_sync`. No input may panic them; a forwarded
//! SYN names the frame's own destination.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

#[path = "../../src/lab/ecmp/wire.rs"]
mod wire;

fuzz_target!(|data: &[u8]| {
    let vip = Ipv4Addr::new(203, 0, 113, 10);
    let Some((first, frame)) = data.split_first() else { return };
    if let Some(wire::Seen::Forwarded(mac)) = wire::classify(frame, first & 1 == 1, vip, 80) {
        assert_eq!(&mac[..], &frame[..6]);
    }
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Some(hops) = wire::route_line(line, vip) {
            assert!(hops.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
        }
        if let Some(c) = wire::conn_line(line) {
            assert!(c.state.chars().count() <= 16 && c.protocol.chars().count() <= 8, "bounded");
        }
    }
});
