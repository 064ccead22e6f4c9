//! Fuzz target for the IPVS sockopt answer parsers (the buffers the kernel fills for
//! IP_VS_SO_GET_DESTS and IP_VS_SO_GET_SERVICES): any bytes parse or fail with a typed error,
//! never a panic, and a parsed answer's destinations can all be read. The parsers are pure
//! (src/ipvs/sockopt.rs) and compiled from the sources.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvsd::ipvs::sockopt;

fuzz_target!(|data: &[u8]| {
    if let Ok(got) = sockopt::parse_get_dests(data) {
        assert_eq!(got.dests().count(), got.len());
        assert!(got.len() <= got.asked as usize);
    }
    let mut out = Vec::new();
    let _ = sockopt::parse_get_services(data, &mut out);
});
