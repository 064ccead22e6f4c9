//! One fuzz case for the VRRP decoder, shared by the cargo-fuzz target and the fixed-seed
//! property test (tests/vrrp_fuzz.rs).
//!
//! The first byte picks the receive context; the rest is the VRRP message. Besides "never
//! panics", an accepted advert must survive encode -> decode unchanged.

use std::net::IpAddr;

use lvsd::vrrp::checksum;
use lvsd::vrrp::packet::{self, Auth, Endpoints, Expect, Family, RxMeta, Version};

/// Returns whether the decoder accepted the message.
pub fn check(data: &[u8]) -> bool {
    let Some((&sel, buf)) = data.split_first() else {
        return false;
    };
    let version = if sel & 1 == 0 { Version::V2 } else { Version::V3 };
    let family = if sel & 2 == 0 { Family::Inet } else { Family::Inet6 };
    let unicast = sel & 4 != 0;
    let (src, dst): (IpAddr, IpAddr) = match (family, unicast) {
        (Family::Inet, false) => ("192.0.2.1".parse().unwrap(), family.multicast_group()),
        (Family::Inet, true) => ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()),
        (Family::Inet6, false) => ("fe80::1".parse().unwrap(), family.multicast_group()),
        (Family::Inet6, true) => ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap()),
    };
    let as_v2 = sel & 32 != 0;

    // Structure-only parsing must never panic either.
    let parsed = packet::parse(buf, family);
    let _ = packet::parse(buf, Family::Inet);
    let _ = packet::parse(buf, Family::Inet6);
    let _ = packet::peek_vrid(buf);
    // The same bytes as an IPv4 raw socket's datagram, split before the VRRP decoder sees it.
    let _ = packet::split_ipv4(buf);

    // Optionally fix the checksum so the later checks are reached too.
    let mut msg = buf.to_vec();
    if sel & 128 != 0 && msg.len() >= packet::HEADER_LEN {
        msg[6] = 0;
        msg[7] = 0;
        let sum = if version == Version::V2 { checksum::internet(&msg) } else { checksum::v3(src, dst, &msg, as_v2).unwrap() };
        msg[6..8].copy_from_slice(&sum.to_be_bytes());
    }

    // Either a fixed expectation or one built from the packet itself (reaches the Ok path).
    let mut expect = Expect {
        version,
        family,
        vrid: 51,
        auth: Auth::None,
        advert_int: 100,
        addresses: vec![],
        owner: sel & 16 != 0,
        unicast,
        unicast_peers: vec![],
        relax_unicast_ttl: sel & 8 != 0,
        v3_checksum_as_v2: as_v2,
    };
    if let (true, Ok(a)) = (sel & 64 != 0, &parsed) {
        expect.vrid = a.vrid;
        expect.auth = if version == Version::V2 { a.auth.clone() } else { Auth::None };
        expect.advert_int = a.advert_int;
        expect.addresses = a.addresses.clone();
    }
    let rx = RxMeta { src, dst, ttl: 255 };
    let Ok(got) = packet::decode(&msg, &rx, &expect) else {
        return false;
    };

    // Accepted: the advert must encode, and decode back to itself.
    let a = &got.advert;
    assert_eq!(a.vrid, expect.vrid);
    assert_eq!(a.version, version);
    let ep = Endpoints { src, dst };
    match a.encode(&ep, as_v2) {
        Ok(bytes) => {
            let again = packet::decode(&bytes, &rx, &expect).expect("re-encoded advert decodes");
            assert_eq!(&again.advert, a);
        }
        // VRRPv2 over IPv6 and a v2 interval of 0 pass decode when expected, but encode
        // refuses to produce them; nothing else may fail.
        Err(e) => {
            assert!(matches!(e, packet::EncodeError::V2Ipv6 | packet::EncodeError::V2Interval(_)), "decoded advert failed to encode: {e}")
        }
    }
    true
}
