//! ICMP echo for `ping` checks (keepalived's PING_CHECK): the request a check sends and the
//! reading of what its raw socket receives. Pure: no sockets (those are in `ping`).
//!
//! An ICMPv4 raw socket receives each datagram with its IPv4 header; an ICMPv6 raw socket
//! without one, and the kernel computes and verifies ICMPv6 checksums itself (RFC 3542 3.1),
//! so only ICMPv4's is computed and checked here.

use thiserror::Error;

/// Echo request and reply types: RFC 792 (ICMPv4), RFC 4443 4.1 and 4.2 (ICMPv6).
pub const ECHO_REQUEST_V4: u8 = 8;
pub const ECHO_REPLY_V4: u8 = 0;
pub const ECHO_REQUEST_V6: u8 = 128;
pub const ECHO_REPLY_V6: u8 = 129;

/// The ICMP header: type, code, checksum, identifier, sequence number.
const HEADER: usize = 8;
/// Data after the header, as ping(8) sends by default.
const DATA: usize = 56;
/// The length of a request.
pub const REQUEST_LEN: usize = HEADER + DATA;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IcmpError {
    #[error("{len} bytes: too short for {what}")]
    Truncated { what: &'static str, len: usize },
    #[error("not an IPv4 datagram (version {0})")]
    NotIpv4(u8),
    #[error("IPv4 header length {0} is invalid")]
    HeaderLength(usize),
    #[error("IPv4 protocol {0} is not ICMP")]
    NotIcmp(u8),
    #[error("bad ICMP checksum")]
    Checksum,
}

/// What a received datagram is to the check that sent (`id`, `seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// The echo reply to its request.
    Ours,
    /// Anything else the socket was given: another request's reply, another ICMP type.
    Other,
}

/// The internet checksum (RFC 1071) of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request with identifier `id` and sequence number `seq`. ICMPv6's checksum is left
/// at zero for the kernel to fill.
pub fn echo_request(v6: bool, id: u16, seq: u16) -> [u8; REQUEST_LEN] {
    let mut m = [0u8; REQUEST_LEN];
    m[0] = if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 };
    m[4..6].copy_from_slice(&id.to_be_bytes());
    m[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in m[HEADER..].iter_mut().enumerate() {
        *b = i as u8;
    }
    if !v6 {
        let c = checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
    }
    m
}

/// Read one datagram from the check's raw socket: ICMPv4 with its IPv4 header, ICMPv6 bare.
/// An error is a datagram that cannot be an ICMP message at all; the check ignores it as it
/// ignores [`Received::Other`].
pub fn read(v6: bool, datagram: &[u8], id: u16, seq: u16) -> Result<Received, IcmpError> {
    let (icmp, reply) = if v6 {
        (datagram, ECHO_REPLY_V6)
    } else {
        let first = *datagram.first().ok_or(IcmpError::Truncated { what: "an IPv4 header", len: 0 })?;
        if first >> 4 != 4 {
            return Err(IcmpError::NotIpv4(first >> 4));
        }
        let ihl = usize::from(first & 0x0f) * 4;
        if ihl < 20 {
            return Err(IcmpError::HeaderLength(ihl));
        }
        if datagram.len() < ihl {
            return Err(IcmpError::Truncated { what: "its IPv4 header", len: datagram.len() });
        }
        if datagram[9] != 1 {
            return Err(IcmpError::NotIcmp(datagram[9]));
        }
        (&datagram[ihl..], ECHO_REPLY_V4)
    };
    if icmp.len() < HEADER {
        return Err(IcmpError::Truncated { what: "an ICMP header", len: icmp.len() });
    }
    if !v6 && checksum(icmp) != 0 {
        return Err(IcmpError::Checksum);
    }
    let ours =
        icmp[0] == reply && icmp[1] == 0 && u16::from_be_bytes([icmp[4], icmp[5]]) == id && u16::from_be_bytes([icmp[6], icmp[7]]) == seq;
    Ok(if ours { Received::Ours } else { Received::Other })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `icmp` behind a 20-byte IPv4 header (protocol ICMP), as a raw socket gives it.
    fn in_ipv4(icmp: &[u8]) -> Vec<u8> {
        let mut d = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2];
        d.extend_from_slice(icmp);
        d
    }

    /// What a host answers to `request`: the same message as a reply (RFC 792: type 0, the
    /// checksum made again).
    fn answer_v4(request: &[u8]) -> Vec<u8> {
        let mut r = request.to_vec();
        r[0] = ECHO_REPLY_V4;
        r[2..4].fill(0);
        let c = checksum(&r);
        r[2..4].copy_from_slice(&c.to_be_bytes());
        r
    }

    #[test]
    fn a_request_as_ping_sends_it() {
        let m = echo_request(false, 0x1234, 7);
        assert_eq!(&m[..2], [8, 0]);
        assert_eq!(&m[4..8], [0x12, 0x34, 0, 7]);
        assert_eq!(checksum(&m), 0, "a message with its checksum sums to zero");
        assert_eq!(m.len(), 64);
        let m6 = echo_request(true, 0x1234, 7);
        assert_eq!((m6[0], m6[1], &m6[2..4]), (128, 0, &[0, 0][..]), "the kernel fills ICMPv6's checksum");
    }

    #[test]
    fn the_checksum_is_rfc_1071s() {
        // RFC 1071 section 3's example: the one's complement sum of these words is ddf2.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
        assert_eq!(checksum(&[0xff]), !0xff00, "an odd byte is padded with zero");
    }

    #[test]
    fn only_the_reply_to_our_request_is_ours() {
        let req = echo_request(false, 9, 300);
        assert_eq!(read(false, &in_ipv4(&answer_v4(&req)), 9, 300), Ok(Received::Ours));
        assert_eq!(read(false, &in_ipv4(&answer_v4(&req)), 9, 301), Ok(Received::Other), "an earlier request's reply");
        assert_eq!(read(false, &in_ipv4(&answer_v4(&req)), 10, 300), Ok(Received::Other), "another pinger's");
        assert_eq!(read(false, &in_ipv4(&req), 9, 300), Ok(Received::Other), "a request is no reply");
        let mut bad = answer_v4(&req);
        bad[20] ^= 1;
        assert_eq!(read(false, &in_ipv4(&bad), 9, 300), Err(IcmpError::Checksum));

        let mut r6 = echo_request(true, 9, 300).to_vec();
        r6[0] = ECHO_REPLY_V6;
        assert_eq!(read(true, &r6, 9, 300), Ok(Received::Ours));
        assert_eq!(read(true, &r6, 9, 299), Ok(Received::Other));
        assert_eq!(read(true, &echo_request(true, 9, 300), 9, 300), Ok(Received::Other));
    }

    #[test]
    fn an_ipv4_header_with_options_is_skipped() {
        let reply = answer_v4(&echo_request(false, 1, 2));
        let mut d = vec![0x46, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2, 1, 1, 1, 0];
        d.extend_from_slice(&reply);
        assert_eq!(read(false, &d, 1, 2), Ok(Received::Ours));
    }

    #[test]
    fn what_cannot_be_icmp_is_an_error() {
        let reply = answer_v4(&echo_request(false, 1, 2));
        assert!(matches!(read(false, &[], 1, 2), Err(IcmpError::Truncated { .. })));
        assert_eq!(read(false, &[0x65; 28], 1, 2), Err(IcmpError::NotIpv4(6)));
        assert_eq!(read(false, &[0x44; 28], 1, 2), Err(IcmpError::HeaderLength(16)));
        assert!(matches!(read(false, &[0x4f; 40], 1, 2), Err(IcmpError::Truncated { .. })), "header longer than the datagram");
        let mut udp = in_ipv4(&reply);
        udp[9] = 17;
        assert_eq!(read(false, &udp, 1, 2), Err(IcmpError::NotIcmp(17)));
        assert!(matches!(read(false, &in_ipv4(&reply[..7]), 1, 2), Err(IcmpError::Truncated { .. })));
        assert!(matches!(read(true, &[129, 0, 0], 1, 2), Err(IcmpError::Truncated { .. })));
        // Every prefix of a good datagram is read without a panic.
        let d = in_ipv4(&reply);
        for n in 0..d.len() {
            let _ = read(false, &d[..n], 1, 2);
            let _ = read(true, &d[..n], 1, 2);
        }
    }
}
