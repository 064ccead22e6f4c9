//! Fuzz target for the reader of /proc/net/ip_vs_conn_sync (src/director/sync.rs): any text
//! counts without a panic, and the counts stay consistent with the lines. The same bytes go
//! to the lab's keep-alive answer parser (src/lab/longlived.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvsd::director::sync::{count_conns, parse_conn_line};
use lvsd::lab::longlived::parse_answer;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let c = count_conns(&text);
    assert!(c.synced <= c.total && c.established <= c.total);
    assert!(c.total + c.malformed <= text.lines().count() as u64);
    for line in text.lines() {
        let _ = parse_conn_line(line);
    }
    if let Ok(Some((n, body))) = parse_answer(data) {
        assert!(n <= data.len() && body.len() <= 3 * 256);
    }
});
