//! Fuzz target for the reader of /proc/net/ip_vs_conn_sync (src/director/sync.rs): any text
//! counts without a panic, and the counts stay consistent with the lines. The same bytes go
//! to the lab's keep-alive answer parser (src/lab/longlived.rs) and to the sync daemon's wire
//! message parser (src/director/sync/message.rs), which `lvsd doctor` feeds what it hears.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvsd::director::sync::{count_conns, message, parse_conn_line};
use lvsd::lab::longlived::parse_answer;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let c = count_conns(&text);
    assert!(c.synced <= c.total && c.established <= c.total);
    assert!(c.total + c.malformed <= text.lines().count() as u64);
    for line in text.lines() {
        let _ = parse_conn_line(line);
    }
    if let Ok(m) = message::parse(data) {
        // Every entry takes at least 24 bytes after a 4-byte header.
        assert!(4 + 24 * m.conns.len() <= data.len());
    }
    if let Ok(Some((n, body))) = parse_answer(data) {
        assert!(n <= data.len() && body.len() <= 3 * 256);
    }
});
