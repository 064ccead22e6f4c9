//! The kernel's IPVS connection sync message, as its master daemon sends it over UDP to the
//! sync group (224.0.0.81:8848 by default) and its backup daemon reads it
//! (net/netfilter/ipvs/ip_vs_sync.c). Pure: bytes in, a typed message or an error out. The
//! checks follow the backup's receive path (`ip_vs_process_message`): a datagram it would drop
//! is an error here too.
//!
//! Version 1 (kernels since 2.6.39, `net.ipv4.vs.sync_version = 1`):
//! `reserved(1)=0 syncid(1) size(2) nr_conns(1) version(1)=1 spare(2)=0`, then `nr_conns`
//! entries: `type(1) protocol(1) ver_size(2) flags(4) state(2) cport vport dport(2 each)
//! fwmark(4) timeout(4) caddr vaddr daddr` (4 bytes each, 16 with IPv6), options, each padded to
//! 4 bytes. Version 0: `nr_conns(1) syncid(1) size(2)`, then 24-byte IPv4 entries, each followed
//! by 24 bytes of TCP sequence data when its flags carry IP_VS_CONN_F_SEQ_MASK.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

/// The message format: the header's `version` byte (1), or the older format without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncVersion {
    V0,
    V1,
}

/// One connection (or persistence template) in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConn {
    /// IP protocol number (6 TCP, 17 UDP, 132 SCTP).
    pub protocol: u8,
    /// IP_VS_CONN_F_* flags.
    pub flags: u32,
    /// The protocol's IPVS state number.
    pub state: u16,
    pub client: SocketAddr,
    pub vip: SocketAddr,
    pub dest: SocketAddr,
    /// Firewall mark (version 1 only; 0 otherwise).
    pub fwmark: u32,
    /// Seconds (version 1 only; 0 otherwise).
    pub timeout: u32,
}

/// IP_VS_CONN_F_TEMPLATE: a persistence template, not a connection.
pub const CONN_F_TEMPLATE: u32 = 0x1000;
/// IP_VS_CONN_F_SEQ_MASK: version 0 entries carrying TCP sequence data.
const CONN_F_SEQ_MASK: u16 = 0x0600;

impl SyncConn {
    pub fn is_template(&self) -> bool {
        self.flags & CONN_F_TEMPLATE != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncMessage {
    pub version: SyncVersion,
    /// The sender's sync id: a backup daemon with a non-zero id drops any other.
    pub sync_id: u8,
    pub conns: Vec<SyncConn>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SyncMessageError {
    #[error("{0} bytes: shorter than a sync message header (4)")]
    Short(usize),
    #[error("the header says {said} bytes, the datagram has {got}")]
    Size { said: u16, got: usize },
    #[error("connection {index} of {count}: the message ends inside it")]
    Truncated { index: u8, count: u8 },
    #[error("connection {index}: unknown entry version {version}")]
    EntryVersion { index: u8, version: u8 },
    #[error("connection {index}: unknown entry type {kind}")]
    EntryType { index: u8, kind: u8 },
}

/// Both header formats start with 4 bytes (the version 0 header).
const HEADER_V0: usize = 4;
const HEADER_V1: usize = 8;
/// struct ip_vs_sync_v4 / ip_vs_sync_v6.
const ENTRY_V4: usize = 36;
const ENTRY_V6: usize = 72;
/// struct ip_vs_sync_conn_v0 and its optional sequence data.
const ENTRY_V0: usize = 24;
const SEQ_V0: usize = 24;
/// ver_size: the entry version in the top 4 bits, its size in the other 12.
const SVER_SHIFT: u16 = 12;
const SVER_MASK: u16 = 0x0fff;
const STYPE_F_INET6: u8 = 1;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn v4(b: &[u8], at: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
}

fn v6(b: &[u8], at: usize) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    IpAddr::V6(Ipv6Addr::from(a))
}

/// Parse one datagram. Every index is checked against the length before use: no panic on
/// any input.
pub fn parse(buf: &[u8]) -> Result<SyncMessage, SyncMessageError> {
    if buf.len() < HEADER_V0 {
        return Err(SyncMessageError::Short(buf.len()));
    }
    let said = be16(buf, 2);
    if usize::from(said) != buf.len() {
        return Err(SyncMessageError::Size { said, got: buf.len() });
    }
    let sync_id = buf[1];
    // The kernel's test for the new format: version 1 with reserved and spare zero.
    if buf.len() >= HEADER_V1 && buf[5] == 1 && buf[0] == 0 && be16(buf, 6) == 0 {
        let count = buf[4];
        let conns = parse_v1(buf, count)?;
        return Ok(SyncMessage { version: SyncVersion::V1, sync_id, conns });
    }
    let count = buf[0];
    let conns = parse_v0(buf, count)?;
    Ok(SyncMessage { version: SyncVersion::V0, sync_id, conns })
}

fn parse_v1(buf: &[u8], count: u8) -> Result<Vec<SyncConn>, SyncMessageError> {
    let mut conns = Vec::with_capacity(usize::from(count));
    let mut p = HEADER_V1;
    for index in 0..count {
        let truncated = SyncMessageError::Truncated { index, count };
        if p + ENTRY_V4 > buf.len() {
            return Err(truncated);
        }
        let ver_size = be16(buf, p + 2);
        let size = usize::from(ver_size & SVER_MASK);
        if p + size > buf.len() {
            return Err(truncated);
        }
        let version = (ver_size >> SVER_SHIFT) as u8;
        if version != 0 {
            return Err(SyncMessageError::EntryVersion { index, version });
        }
        let kind = buf[p];
        let (v6_entry, fixed) = match kind {
            0 => (false, ENTRY_V4),
            k if k & STYPE_F_INET6 != 0 => (true, ENTRY_V6),
            k => return Err(SyncMessageError::EntryType { index, kind: k }),
        };
        // The fixed part must fit both the entry's own size and the datagram.
        if size < fixed || p + fixed > buf.len() {
            return Err(truncated);
        }
        let port = |off: usize| be16(buf, p + off);
        let (client, vip, dest) = if v6_entry {
            (v6(buf, p + 24), v6(buf, p + 40), v6(buf, p + 56))
        } else {
            (v4(buf, p + 24), v4(buf, p + 28), v4(buf, p + 32))
        };
        conns.push(SyncConn {
            protocol: buf[p + 1],
            flags: be32(buf, p + 4),
            state: be16(buf, p + 8),
            client: SocketAddr::new(client, port(10)),
            vip: SocketAddr::new(vip, port(12)),
            dest: SocketAddr::new(dest, port(14)),
            fwmark: be32(buf, p + 16),
            timeout: be32(buf, p + 20),
        });
        // Options (sequence data, persistence engine data) are skipped; entries are padded to 4.
        p += (size + 3) & !3;
    }
    Ok(conns)
}

fn parse_v0(buf: &[u8], count: u8) -> Result<Vec<SyncConn>, SyncMessageError> {
    let mut conns = Vec::with_capacity(usize::from(count));
    let mut p = HEADER_V0;
    for index in 0..count {
        let truncated = SyncMessageError::Truncated { index, count };
        if p + ENTRY_V0 > buf.len() {
            return Err(truncated);
        }
        let flags = be16(buf, p + 20);
        let port = |off: usize| be16(buf, p + off);
        conns.push(SyncConn {
            protocol: buf[p + 1],
            flags: u32::from(flags),
            state: be16(buf, p + 22),
            client: SocketAddr::new(v4(buf, p + 8), port(2)),
            vip: SocketAddr::new(v4(buf, p + 12), port(4)),
            dest: SocketAddr::new(v4(buf, p + 16), port(6)),
            fwmark: 0,
            timeout: 0,
        });
        p += ENTRY_V0;
        if flags & CONN_F_SEQ_MASK != 0 {
            p += SEQ_V0;
            if p > buf.len() {
                return Err(truncated);
            }
        }
    }
    Ok(conns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 1 message with one IPv4 TCP connection, as a 6.1 kernel's master daemon with
    /// `--syncid 7` sends it: 198.51.100.7:40000 -> 203.0.113.10:80 via 198.51.100.21:80,
    /// state 1 (ESTABLISHED), flags 0x0003 (IP_VS_CONN_F_DROUTE), timeout 900 s.
    pub(crate) fn one_v4(sync_id: u8) -> Vec<u8> {
        let mut m = vec![0, sync_id, 0, 44, 1, 1, 0, 0];
        m.extend_from_slice(&[0, 6, 0, 36]); // type v4, TCP, entry version 0 size 36
        m.extend_from_slice(&3u32.to_be_bytes()); // flags
        m.extend_from_slice(&1u16.to_be_bytes()); // state
        m.extend_from_slice(&40000u16.to_be_bytes());
        m.extend_from_slice(&80u16.to_be_bytes());
        m.extend_from_slice(&80u16.to_be_bytes());
        m.extend_from_slice(&0u32.to_be_bytes()); // fwmark
        m.extend_from_slice(&900u32.to_be_bytes());
        m.extend_from_slice(&[198, 51, 100, 7, 203, 0, 113, 10, 198, 51, 100, 21]);
        assert_eq!(m.len(), 44);
        m
    }

    #[test]
    fn a_version_1_message_with_one_connection() {
        let m = parse(&one_v4(7)).unwrap();
        assert_eq!((m.version, m.sync_id, m.conns.len()), (SyncVersion::V1, 7, 1));
        let c = &m.conns[0];
        assert_eq!(c.protocol, 6);
        assert_eq!(c.client, "198.51.100.7:40000".parse().unwrap());
        assert_eq!(c.vip, "203.0.113.10:80".parse().unwrap());
        assert_eq!(c.dest, "198.51.100.21:80".parse().unwrap());
        assert_eq!((c.state, c.timeout, c.flags, c.is_template()), (1, 900, 3, false));
    }

    #[test]
    fn an_ipv6_entry_with_options_and_padding_then_an_ipv4_one() {
        let mut m = vec![0, 3, 0, 0, 2, 1, 0, 0];
        // v6 entry of 72 + 6 bytes of options (padded to 80).
        let mut e = vec![1, 17, 0, 78];
        e.extend_from_slice(&CONN_F_TEMPLATE.to_be_bytes());
        e.extend_from_slice(&[0, 0, 0, 53, 0, 53, 0, 53]);
        e.extend_from_slice(&[0; 8]);
        for last in [1u8, 0x64, 0x15] {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            a[15] = last;
            e.extend_from_slice(&a);
        }
        e.extend_from_slice(&[2, 4, 0, 0, 0, 0, 0, 0]);
        assert_eq!(e.len(), 80);
        m.extend_from_slice(&e);
        m.extend_from_slice(&one_v4(3)[8..]);
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        let p = parse(&m).unwrap();
        assert_eq!(p.conns.len(), 2);
        assert!(p.conns[0].is_template());
        assert_eq!(p.conns[0].vip, "[2001:db8::64]:53".parse().unwrap());
        assert_eq!(p.conns[1].dest, "198.51.100.21:80".parse().unwrap());
    }

    #[test]
    fn a_version_0_message() {
        // nr_conns 1, syncid 9, size 28; one entry without sequence data.
        let mut m = vec![1, 9, 0, 28, 0, 6, 0x9c, 0x40, 0, 80, 0, 80];
        m.extend_from_slice(&[198, 51, 100, 7, 203, 0, 113, 10, 198, 51, 100, 21, 0, 0, 0, 1]);
        let p = parse(&m).unwrap();
        assert_eq!((p.version, p.sync_id), (SyncVersion::V0, 9));
        assert_eq!(p.conns[0].client, "198.51.100.7:40000".parse().unwrap());
        // With IP_VS_CONN_F_SEQ_MASK the 24 bytes of sequence data must follow.
        m[24] = 0x02;
        assert_eq!(parse(&m), Err(SyncMessageError::Truncated { index: 0, count: 1 }));
    }

    #[test]
    fn what_the_backup_drops_is_an_error() {
        assert_eq!(parse(&[0, 7, 0]), Err(SyncMessageError::Short(3)));
        let mut m = one_v4(7);
        m.push(0);
        assert_eq!(parse(&m), Err(SyncMessageError::Size { said: 44, got: 45 }));
        let mut m = one_v4(7);
        m[10] = 0x10; // entry version 1
        assert_eq!(parse(&m), Err(SyncMessageError::EntryVersion { index: 0, version: 1 }));
        let mut m = one_v4(7);
        m[8] = 2; // neither IPv4 (0) nor IPv6 (bit 0)
        assert_eq!(parse(&m), Err(SyncMessageError::EntryType { index: 0, kind: 2 }));
        let mut m = one_v4(7);
        m[4] = 2; // two entries announced, one present
        assert_eq!(parse(&m), Err(SyncMessageError::Truncated { index: 1, count: 2 }));
        let mut m = one_v4(7);
        m[11] = 200; // entry size past the end
        assert_eq!(parse(&m), Err(SyncMessageError::Truncated { index: 0, count: 1 }));
        let mut m = one_v4(7);
        m[11] = 20; // entry size below the fixed part
        assert_eq!(parse(&m), Err(SyncMessageError::Truncated { index: 0, count: 1 }));
    }

    #[test]
    fn any_prefix_or_byte_flip_is_an_error_or_a_message_never_a_panic() {
        let m = one_v4(7);
        for n in 0..m.len() {
            let _ = parse(&m[..n]);
            for bit in 0..8 {
                let mut x = m.clone();
                x[n] ^= 1 << bit;
                let _ = parse(&x);
            }
        }
    }
}
