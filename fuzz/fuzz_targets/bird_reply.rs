//! Fuzz target for BIRD's control-socket reply parser (src/bgp/birdc.rs, compiled alone):
//! any bytes, cut into chunks anywhere, decode into replies or a typed error, never a panic;
//! the same bytes give the same replies whole or in chunks; the protocol and BFD readers take
//! every reply.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/bgp/birdc.rs"]
#[allow(dead_code)]
mod birdc;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else { return };
    let whole = birdc::parse_replies(bytes);
    let mut d = birdc::Decoder::new();
    let mut chunked = Vec::new();
    let mut failed = false;
    for chunk in bytes.chunks(1 + cut as usize) {
        d.push(chunk);
        loop {
            match d.next_reply() {
                Ok(Some(r)) => chunked.push(r),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            break;
        }
    }
    for r in chunked.iter() {
        let _ = birdc::protocols(r);
        let _ = birdc::bfd_sessions(r);
    }
    if let Ok(w) = whole {
        assert!(!failed, "whole bytes parse, chunks fail");
        assert_eq!(w, chunked);
    }
});
