//! Fuzz target for what `lvsd doctor` reads from other programs and from /proc: any text, read
//! as nftables' JSON ruleset, as `iptables-save` and `ip6tables-save` output, and as
//! /proc/net/ip_vs, is read or refused with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvsd::doctor::{proc_ipvs, ruleset};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = ruleset::parse_nft(&text);
    let _ = ruleset::parse_iptables(&text, 4);
    let _ = ruleset::parse_iptables(&text, 6);
    let _ = proc_ipvs::parse_proc(&text);
});
