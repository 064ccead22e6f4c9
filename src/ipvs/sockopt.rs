//! The IPVS sockopt interface (`getsockopt(IP_VS_SO_GET_*)` on a raw IPv4 socket, as ipvsadm's
//! libipvs uses without netlink): requests built and answers parsed here, no I/O.
//!
//! Layouts are those of `include/uapi/linux/ip_vs.h` on x86_64 (Linux 6.1, checked with
//! `offsetof`): `struct ip_vs_get_dests` is a 24-byte header followed by 96-byte
//! `struct ip_vs_dest_entry`s; `struct ip_vs_get_services` an 8-byte header followed by
//! 104-byte `struct ip_vs_service_entry`s. Addresses and ports are network order, the rest
//! host order.
//!
//! The kernel writes back only the entries it fills (net/netfilter/ipvs/ip_vs_ctl.c,
//! `__ip_vs_get_dest_entries`, `__ip_vs_get_service_entries`), never how many: the caller
//! marks every entry as unfilled before the call and the parser takes the filled prefix.
//! What this interface leaves out: IPv6 services, destinations of the other family than
//! their service (`dest->af != svc->af` is skipped), and tunnel settings.

use super::table::{Dest, DestKey, Family, Forward, Protocol, ServiceKey, Stats};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use thiserror::Error;

/// IP_VS_BASE_CTL (64 + 1024 + 64) and the get commands used here.
pub const IP_VS_SO_GET_SERVICES: i32 = 64 + 1024 + 64 + 2;
pub const IP_VS_SO_GET_DESTS: i32 = 64 + 1024 + 64 + 4;

/// sizeof(struct ip_vs_get_dests), sizeof(struct ip_vs_dest_entry).
pub const GET_DESTS_LEN: usize = 24;
pub const DEST_ENTRY_LEN: usize = 96;
/// sizeof(struct ip_vs_get_services), sizeof(struct ip_vs_service_entry).
pub const GET_SERVICES_LEN: usize = 8;
pub const SERVICE_ENTRY_LEN: usize = 104;

/// Offsets in struct ip_vs_dest_entry.
const D_PORT: usize = 4;
const D_CONN_FLAGS: usize = 8;
const D_WEIGHT: usize = 12;
const D_U_THRESH: usize = 16;
const D_L_THRESH: usize = 20;
const D_ACTIVE: usize = 24;
const D_INACT: usize = 28;
const D_PERSIST: usize = 32;
const D_STATS: usize = 40;
/// Offsets in struct ip_vs_service_entry.
const S_SCHED: usize = 16;
const S_NUM_DESTS: usize = 44;

/// The weight an entry is given before the call: the kernel never holds a negative weight
/// (ip_vs_ctl.c `ip_vs_add_dest` / `ip_vs_edit_dest`: "server weight less than zero",
/// -ERANGE), so an entry still negative after the call was not filled.
const UNFILLED_WEIGHT: i32 = -1;

/// Entries asked for at most in one call: `struct_size` in the kernel is an int, and a
/// service with more destinations than this goes by netlink.
pub const MAX_ENTRIES: u32 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SockoptError {
    #[error("the sockopt interface shows IPv4 services only")]
    NotIpv4,
    #[error("too many entries asked for: {0}")]
    TooMany(u32),
    #[error("{what}: {len} bytes, shorter than its {need}-byte header")]
    Truncated { what: &'static str, len: usize, need: usize },
    #[error("{what}: {len} bytes do not hold the {count} entries the header counts ({need} bytes)")]
    CountMismatch { what: &'static str, count: u32, len: usize, need: usize },
    #[error("unknown service protocol {0}")]
    BadProtocol(u16),
    #[error("{what}: entry {index} filled after an unfilled one")]
    Gap { what: &'static str, index: usize },
}

fn u16_ne(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}
fn u32_ne(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_ne(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(a)
}
fn ipv4(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}
fn port(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The service fields shared by `ip_vs_get_dests` and `ip_vs_service_entry` (offsets 0-16:
/// protocol, addr, port, fwmark); a non-zero fwmark names the service alone, as in the kernel.
fn service_key(b: &[u8]) -> Result<ServiceKey, SockoptError> {
    let mark = u32_ne(b, 12);
    if mark != 0 {
        return Ok(ServiceKey::Fwmark { mark, family: Family::Inet });
    }
    let p = u16_ne(b, 0);
    let protocol = Protocol::from_number(p).ok_or(SockoptError::BadProtocol(p))?;
    Ok(ServiceKey::Addr { protocol, addr: SocketAddr::new(IpAddr::V4(ipv4(b, 4)), port(b, 8)) })
}

fn put_service_key(key: &ServiceKey, out: &mut [u8]) -> Result<(), SockoptError> {
    match key {
        ServiceKey::Fwmark { mark, family: Family::Inet } => out[12..16].copy_from_slice(&mark.to_ne_bytes()),
        ServiceKey::Addr { protocol, addr: SocketAddr::V4(a) } => {
            out[0..2].copy_from_slice(&protocol.number().to_ne_bytes());
            out[4..8].copy_from_slice(&a.ip().octets());
            out[8..10].copy_from_slice(&a.port().to_be_bytes());
        }
        _ => return Err(SockoptError::NotIpv4),
    }
    Ok(())
}

fn entries_len(n: u32, entry: usize, head: usize) -> Result<usize, SockoptError> {
    if n > MAX_ENTRIES {
        return Err(SockoptError::TooMany(n));
    }
    Ok(head + n as usize * entry)
}

/// Build the argument of IP_VS_SO_GET_DESTS for `key` with room for `n` entries into `buf`
/// (its length is what the kernel checks: exactly header + n entries), every entry marked
/// unfilled.
pub fn get_dests_request(key: &ServiceKey, n: u32, buf: &mut Vec<u8>) -> Result<(), SockoptError> {
    let len = entries_len(n, DEST_ENTRY_LEN, GET_DESTS_LEN)?;
    buf.clear();
    buf.resize(len, 0);
    put_service_key(key, &mut buf[..GET_DESTS_LEN])?;
    buf[16..20].copy_from_slice(&n.to_ne_bytes());
    for e in buf[GET_DESTS_LEN..].chunks_exact_mut(DEST_ENTRY_LEN) {
        e[D_WEIGHT..D_WEIGHT + 4].copy_from_slice(&UNFILLED_WEIGHT.to_ne_bytes());
    }
    Ok(())
}

/// An IP_VS_SO_GET_DESTS answer, checked: the service it is for, how many entries were asked
/// for, and the filled ones (a prefix of the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetDests<'a> {
    pub key: ServiceKey,
    pub asked: u32,
    filled: &'a [u8],
}

impl<'a> GetDests<'a> {
    /// How many entries the kernel filled.
    pub fn len(&self) -> usize {
        self.filled.len() / DEST_ENTRY_LEN
    }
    pub fn is_empty(&self) -> bool {
        self.filled.is_empty()
    }
    /// The destinations, in the kernel's order, as the netlink dump gives them (tunnel
    /// settings at their defaults: this interface has none).
    pub fn dests(&self) -> impl Iterator<Item = (DestKey, Dest)> + 'a {
        self.filled.chunks_exact(DEST_ENTRY_LEN).map(dest_entry)
    }
}

/// One filled `struct ip_vs_dest_entry` (exactly DEST_ENTRY_LEN bytes) as (key, settings).
fn dest_entry(e: &[u8]) -> (DestKey, Dest) {
    let mut d = Dest::new(Forward::from_conn_flags(u32_ne(e, D_CONN_FLAGS)), u32_ne(e, D_WEIGHT));
    d.u_threshold = u32_ne(e, D_U_THRESH);
    d.l_threshold = u32_ne(e, D_L_THRESH);
    let s = &e[D_STATS..];
    d.stats = Stats {
        conns: u32_ne(s, 0).into(),
        inpkts: u32_ne(s, 4).into(),
        outpkts: u32_ne(s, 8).into(),
        inbytes: u64_ne(s, 16),
        outbytes: u64_ne(s, 24),
        cps: u32_ne(s, 32).into(),
        inpps: u32_ne(s, 36).into(),
        outpps: u32_ne(s, 40).into(),
        inbps: u32_ne(s, 44).into(),
        outbps: u32_ne(s, 48).into(),
        active_conns: u32_ne(e, D_ACTIVE),
        inact_conns: u32_ne(e, D_INACT),
        persist_conns: u32_ne(e, D_PERSIST),
    }
    .into();
    (DestKey(SocketAddr::new(IpAddr::V4(ipv4(e, 0)), port(e, D_PORT))), d)
}

/// Parse the buffer given to IP_VS_SO_GET_DESTS after the call: its header's count must
/// match its length, and the filled entries must come first.
pub fn parse_get_dests(buf: &[u8]) -> Result<GetDests<'_>, SockoptError> {
    const WHAT: &str = "get dests";
    if buf.len() < GET_DESTS_LEN {
        return Err(SockoptError::Truncated { what: WHAT, len: buf.len(), need: GET_DESTS_LEN });
    }
    let key = service_key(buf)?;
    let asked = u32_ne(buf, 16);
    let need = entries_len(asked, DEST_ENTRY_LEN, GET_DESTS_LEN)?;
    if buf.len() != need {
        return Err(SockoptError::CountMismatch { what: WHAT, count: asked, len: buf.len(), need });
    }
    let table = &buf[GET_DESTS_LEN..];
    let filled = table.chunks_exact(DEST_ENTRY_LEN).take_while(|e| (u32_ne(e, D_WEIGHT) as i32) >= 0).count();
    if let Some(i) = table.chunks_exact(DEST_ENTRY_LEN).skip(filled).position(|e| (u32_ne(e, D_WEIGHT) as i32) >= 0) {
        return Err(SockoptError::Gap { what: WHAT, index: filled + i });
    }
    Ok(GetDests { key, asked, filled: &table[..filled * DEST_ENTRY_LEN] })
}

/// Build the argument of IP_VS_SO_GET_SERVICES with room for `n` entries, all zero: a filled
/// entry has a scheduler name (the kernel copies the scheduler's, or "none"), an unfilled one
/// an empty one.
pub fn get_services_request(n: u32, buf: &mut Vec<u8>) -> Result<(), SockoptError> {
    let len = entries_len(n, SERVICE_ENTRY_LEN, GET_SERVICES_LEN)?;
    buf.clear();
    buf.resize(len, 0);
    buf[0..4].copy_from_slice(&n.to_ne_bytes());
    Ok(())
}

/// Parse the buffer given to IP_VS_SO_GET_SERVICES after the call into (service, number of
/// destinations of every family), for the filled entries, in the kernel's order.
pub fn parse_get_services(buf: &[u8], out: &mut Vec<(ServiceKey, u32)>) -> Result<(), SockoptError> {
    const WHAT: &str = "get services";
    out.clear();
    if buf.len() < GET_SERVICES_LEN {
        return Err(SockoptError::Truncated { what: WHAT, len: buf.len(), need: GET_SERVICES_LEN });
    }
    let asked = u32_ne(buf, 0);
    let need = entries_len(asked, SERVICE_ENTRY_LEN, GET_SERVICES_LEN)?;
    if buf.len() != need {
        return Err(SockoptError::CountMismatch { what: WHAT, count: asked, len: buf.len(), need });
    }
    let mut ended = None;
    for (i, e) in buf[GET_SERVICES_LEN..].chunks_exact(SERVICE_ENTRY_LEN).enumerate() {
        let filled = e[S_SCHED] != 0;
        match (filled, ended) {
            (true, None) => out.push((service_key(e)?, u32_ne(e, S_NUM_DESTS))),
            (true, Some(_)) => {
                out.clear();
                return Err(SockoptError::Gap { what: WHAT, index: i });
            }
            (false, _) => ended = Some(i),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::table::TunnelType;

    fn tcp(s: &str) -> ServiceKey {
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: s.parse().unwrap() }
    }

    /// Fill entry `i` of a get-dests buffer as the kernel would.
    fn fill(buf: &mut [u8], i: usize, dk: &DestKey, d: &Dest) {
        let e = &mut buf[GET_DESTS_LEN + i * DEST_ENTRY_LEN..][..DEST_ENTRY_LEN];
        e.fill(0);
        let SocketAddr::V4(a) = dk.0 else { panic!("IPv4 only") };
        e[0..4].copy_from_slice(&a.ip().octets());
        e[4..6].copy_from_slice(&a.port().to_be_bytes());
        e[D_CONN_FLAGS..][..4].copy_from_slice(&d.forward.conn_flags().to_ne_bytes());
        e[D_WEIGHT..][..4].copy_from_slice(&d.weight.to_ne_bytes());
        e[D_U_THRESH..][..4].copy_from_slice(&d.u_threshold.to_ne_bytes());
        e[D_L_THRESH..][..4].copy_from_slice(&d.l_threshold.to_ne_bytes());
        e[D_ACTIVE..][..4].copy_from_slice(&d.stats.active_conns.to_ne_bytes());
        e[D_INACT..][..4].copy_from_slice(&d.stats.inact_conns.to_ne_bytes());
        e[D_PERSIST..][..4].copy_from_slice(&d.stats.persist_conns.to_ne_bytes());
        let s = &mut e[D_STATS..];
        s[0..4].copy_from_slice(&(d.stats.conns as u32).to_ne_bytes());
        s[16..24].copy_from_slice(&d.stats.inbytes.to_ne_bytes());
        s[24..32].copy_from_slice(&d.stats.outbytes.to_ne_bytes());
        s[48..52].copy_from_slice(&(d.stats.outbps as u32).to_ne_bytes());
    }

    fn dests() -> Vec<(DestKey, Dest)> {
        let mut a = Dest::new(Forward::Dr, 5);
        a.u_threshold = 100;
        a.l_threshold = 10;
        a.stats.conns = 7;
        a.stats.inbytes = 1 << 40;
        a.stats.outbytes = 3;
        a.stats.outbps = 9;
        a.stats.active_conns = 2;
        a.stats.inact_conns = 3;
        a.stats.persist_conns = 4;
        let b = Dest::new(Forward::Nat, 0);
        vec![(DestKey("192.0.2.10:8080".parse().unwrap()), a), (DestKey("198.51.100.7:80".parse().unwrap()), b)]
    }

    #[test]
    fn dests_round_trip_through_the_kernels_layout() {
        let key = tcp("203.0.113.1:80");
        let want = dests();
        let mut buf = Vec::new();
        get_dests_request(&key, 3, &mut buf).unwrap();
        assert_eq!(buf.len(), GET_DESTS_LEN + 3 * DEST_ENTRY_LEN);
        // Nothing filled yet: no destinations, not an error.
        let empty = parse_get_dests(&buf).unwrap();
        assert_eq!((empty.key, empty.asked, empty.len()), (key, 3, 0));
        for (i, (dk, d)) in want.iter().enumerate() {
            fill(&mut buf, i, dk, d);
        }
        let got = parse_get_dests(&buf).unwrap();
        assert_eq!((got.key, got.asked, got.len()), (key, 3, 2));
        assert_eq!(got.dests().collect::<Vec<_>>(), want);
        // Tunnel settings are not in this interface: the defaults, as an absent netlink attribute.
        assert!(got.dests().all(|(_, d)| d.tun_type == TunnelType::Ipip && d.tun_port == 0 && d.tun_flags == 0));
    }

    #[test]
    fn fwmark_services_are_named_by_their_mark_and_ipv6_is_refused() {
        let key = ServiceKey::Fwmark { mark: 42, family: Family::Inet };
        let mut buf = Vec::new();
        get_dests_request(&key, 0, &mut buf).unwrap();
        assert_eq!(parse_get_dests(&buf).unwrap().key, key);
        assert_eq!(get_dests_request(&tcp("[2001:db8::1]:80"), 1, &mut buf), Err(SockoptError::NotIpv4));
        let v6mark = ServiceKey::Fwmark { mark: 42, family: Family::Inet6 };
        assert_eq!(get_dests_request(&v6mark, 1, &mut buf), Err(SockoptError::NotIpv4));
        assert_eq!(get_dests_request(&key, MAX_ENTRIES + 1, &mut buf), Err(SockoptError::TooMany(MAX_ENTRIES + 1)));
    }

    #[test]
    fn truncated_and_miscounted_buffers_are_errors() {
        let key = tcp("203.0.113.1:80");
        let mut buf = Vec::new();
        get_dests_request(&key, 2, &mut buf).unwrap();
        for (dk, d) in dests().iter().take(1) {
            fill(&mut buf, 0, dk, d);
        }
        assert!(matches!(parse_get_dests(&buf[..GET_DESTS_LEN - 1]), Err(SockoptError::Truncated { .. })));
        // One byte short, one entry short, one byte over: the count does not match the length.
        for len in [buf.len() - 1, buf.len() - DEST_ENTRY_LEN, GET_DESTS_LEN] {
            assert_eq!(
                parse_get_dests(&buf[..len]),
                Err(SockoptError::CountMismatch { what: "get dests", count: 2, len, need: buf.len() })
            );
        }
        let mut over = buf.clone();
        over.push(0);
        assert!(matches!(parse_get_dests(&over), Err(SockoptError::CountMismatch { count: 2, .. })));
        // A header counting more than any call may ask for.
        let mut huge = buf.clone();
        huge[16..20].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(parse_get_dests(&huge), Err(SockoptError::TooMany(u32::MAX)));
        // An unknown protocol.
        let mut bad = buf.clone();
        bad[0..2].copy_from_slice(&99u16.to_ne_bytes());
        assert_eq!(parse_get_dests(&bad), Err(SockoptError::BadProtocol(99)));
    }

    #[test]
    fn an_entry_filled_after_an_unfilled_one_is_an_error() {
        let key = tcp("203.0.113.1:80");
        let mut buf = Vec::new();
        get_dests_request(&key, 3, &mut buf).unwrap();
        let (dk, d) = &dests()[0];
        fill(&mut buf, 2, dk, d);
        assert_eq!(parse_get_dests(&buf), Err(SockoptError::Gap { what: "get dests", index: 2 }));
    }

    #[test]
    fn services_give_their_key_and_every_destination_counted() {
        let mut buf = Vec::new();
        get_services_request(3, &mut buf).unwrap();
        assert_eq!(buf.len(), GET_SERVICES_LEN + 3 * SERVICE_ENTRY_LEN);
        let put = |buf: &mut Vec<u8>, i: usize, key: &ServiceKey, n: u32| {
            let e = &mut buf[GET_SERVICES_LEN + i * SERVICE_ENTRY_LEN..][..SERVICE_ENTRY_LEN];
            put_service_key(key, e).unwrap();
            e[S_SCHED..S_SCHED + 2].copy_from_slice(b"rr");
            e[S_NUM_DESTS..S_NUM_DESTS + 4].copy_from_slice(&n.to_ne_bytes());
        };
        let a = tcp("203.0.113.1:80");
        let b = ServiceKey::Fwmark { mark: 7, family: Family::Inet };
        put(&mut buf, 0, &a, 4);
        put(&mut buf, 1, &b, 5);
        let mut out = Vec::new();
        parse_get_services(&buf, &mut out).unwrap();
        assert_eq!(out, vec![(a, 4), (b, 5)]);
        assert!(matches!(parse_get_services(&buf[..buf.len() - 1], &mut out), Err(SockoptError::CountMismatch { .. })));
        assert!(out.is_empty());
        assert!(matches!(parse_get_services(&buf[..4], &mut out), Err(SockoptError::Truncated { .. })));
        let mut gap = buf.clone();
        put(&mut gap, 2, &a, 1);
        gap[GET_SERVICES_LEN + SERVICE_ENTRY_LEN + S_SCHED] = 0;
        assert_eq!(parse_get_services(&gap, &mut out), Err(SockoptError::Gap { what: "get services", index: 2 }));
    }
}
