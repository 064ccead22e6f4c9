//! The Internet checksum (RFC 1071) and the pseudo-headers VRRPv3 adds to it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::packet::IPPROTO_VRRP;

/// One's-complement sum of `data` folded into `acc` (not yet complemented).
fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    // An odd trailing byte is padded with zero (RFC 1071 section 4.1).
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn finish(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Checksum of `data` alone (VRRPv2, RFC 3768 section 5.3.8; and VRRPv3 over IPv4 when
/// keepalived's `v3_checksum_as_v2` is set).
pub fn internet(data: &[u8]) -> u16 {
    finish(sum(0, data))
}

/// Checksum over the IPv4 pseudo-header (src, dst, zero, protocol 112, length) and `data`:
/// RFC 5798 section 5.2.8, as keepalived 2.2.7 computes it for VRRPv3 over IPv4.
pub fn with_ipv4_pseudo(src: Ipv4Addr, dst: Ipv4Addr, data: &[u8]) -> u16 {
    let mut ph = [0u8; 12];
    ph[0..4].copy_from_slice(&src.octets());
    ph[4..8].copy_from_slice(&dst.octets());
    ph[9] = IPPROTO_VRRP;
    ph[10..12].copy_from_slice(&(data.len() as u16).to_be_bytes());
    finish(sum(sum(0, &ph), data))
}

/// Checksum over the IPv6 pseudo-header of RFC 8200 section 8.1 (src, dst, 32-bit length,
/// next header 112) and `data`: RFC 5798 section 5.2.8.
pub fn with_ipv6_pseudo(src: Ipv6Addr, dst: Ipv6Addr, data: &[u8]) -> u16 {
    let mut ph = [0u8; 40];
    ph[0..16].copy_from_slice(&src.octets());
    ph[16..32].copy_from_slice(&dst.octets());
    ph[32..36].copy_from_slice(&(data.len() as u32).to_be_bytes());
    ph[39] = IPPROTO_VRRP;
    finish(sum(sum(0, &ph), data))
}

/// Checksum for a VRRPv3 message between `src` and `dst` (both of one family).
/// Returns `None` when the families differ.
pub fn v3(src: IpAddr, dst: IpAddr, data: &[u8], as_v2: bool) -> Option<u16> {
    match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) if as_v2 => Some(internet(data)),
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(with_ipv4_pseudo(s, d, data)),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(with_ipv6_pseudo(s, d, data)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: sum of 0001 f203 f4f5 f6f7 is ddf2, checksum 220d.
        assert_eq!(internet(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0x220d);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(internet(&[0x12, 0x34, 0x56]), internet(&[0x12, 0x34, 0x56, 0x00]));
    }

    #[test]
    fn a_correct_checksum_sums_to_zero() {
        let mut msg = vec![0x21, 0x33, 0x64, 0x02, 0x01, 0x01, 0, 0, 192, 0, 2, 100];
        let c = internet(&msg);
        msg[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(internet(&msg), 0);
    }
}
