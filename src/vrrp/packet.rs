//! VRRP advertisements on the wire: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798, RFC 9568).
//!
//! This module only turns bytes into [`Advert`] and back and keeps no state. [`decode`] runs
//! every receive check of RFC 3768 section 7.1 / RFC 5798 section 7.1 against what the local
//! instance expects ([`Expect`]) and how the packet arrived ([`RxMeta`]); each failed check is
//! its own [`DecodeError`] variant, and [`DropReason`] / [`DropCounters`] give the daemon a
//! stable name and a counter per reason.
//!
//! The bytes handled here are the VRRP message only (the IP payload); the IP header is built
//! and read by the socket layer, which passes TTL / hop limit and addresses in [`RxMeta`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use super::checksum;

/// IP protocol number of VRRP (RFC 3768 section 5.2.4, RFC 5798 section 5.1.1.3).
pub const IPPROTO_VRRP: u8 = 112;
/// The only TTL / hop limit a sender may use and a receiver may accept (RFC 5798 5.1.1.3).
pub const VRRP_TTL: u8 = 255;
/// IPv4 multicast group for adverts (RFC 5798 section 5.1.1.2).
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group for adverts (RFC 5798 section 5.1.2.2).
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The only packet type defined (RFC 5798 section 5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Version, type, VRID, priority, count, auth/interval, checksum.
pub const HEADER_LEN: usize = 8;
/// VRRPv2 always carries 8 bytes of authentication data (RFC 3768 section 5.3.10).
pub const V2_AUTH_LEN: usize = 8;
/// VRRPv3 Max Adver Int is 12 bits of centiseconds (RFC 5798 section 5.2.7).
pub const V3_MAX_INTERVAL: u16 = 0x0fff;

/// VRRP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, interval in whole seconds, optional simple password.
    V2,
    /// RFC 5798 / RFC 9568: IPv4 and IPv6, interval in centiseconds, no authentication.
    V3,
}

impl Version {
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// Address family of an instance: every address in an advert is of this family. The one
/// family type of the crate (the IPVS table's); what VRRP needs of it is added here.
pub use crate::ipvs::table::Family;

impl Family {
    /// Bytes per address in the advert's address list.
    pub fn addr_len(self) -> usize {
        match self {
            Family::Inet => 4,
            Family::Inet6 => 16,
        }
    }

    /// The advert multicast group of this family.
    pub fn multicast_group(self) -> IpAddr {
        match self {
            Family::Inet => IpAddr::V4(MCAST_V4),
            Family::Inet6 => IpAddr::V6(MCAST_V6),
        }
    }
}

/// VRRPv2 authentication (RFC 3768 section 5.3.6; type 1 is the RFC 2338 simple text
/// password that keepalived still offers as `auth_type PASS`).
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// The password as sent: up to 8 bytes, zero padded.
    Pass([u8; 8]),
}

impl Auth {
    /// A simple text password. Like keepalived, only the first 8 bytes are used; the model
    /// layer should reject longer ones so the operator is told.
    pub fn pass(text: &str) -> Auth {
        let mut data = [0u8; 8];
        let n = text.len().min(8);
        data[..n].copy_from_slice(&text.as_bytes()[..n]);
        Auth::Pass(data)
    }

    /// The Auth Type field value.
    pub fn type_code(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Pass(_) => 1,
        }
    }
}

// Never print a password into a log line.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Pass(_) => f.write_str("Pass(..)"),
        }
    }
}

/// One VRRP advertisement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    /// 0 means the master is stopping (RFC 5798 section 5.2.4), 255 the address owner.
    pub priority: u8,
    /// Advertisement interval in centiseconds. VRRPv2 sends whole seconds, so a v2 advert
    /// decodes to a multiple of 100.
    pub advert_int: u16,
    /// Always [`Auth::None`] for VRRPv3.
    pub auth: Auth,
    pub addresses: Vec<IpAddr>,
}

/// Source and destination of the IP packet carrying an advert; VRRPv3 checksums cover them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub src: IpAddr,
    pub dst: IpAddr,
}

/// Why an advert could not be encoded (a configuration the model should have refused).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    #[error("VRRPv2 is IPv4 only (RFC 3768); use version 3 for IPv6")]
    V2Ipv6,
    #[error("address {0} is not of the family of the packet's source and destination")]
    MixedFamily(IpAddr),
    #[error("{0} addresses do not fit the 8-bit address count")]
    TooManyAddresses(usize),
    #[error("VRRPv2 advert interval must be whole seconds from 1 to 255, got {0} centiseconds")]
    V2Interval(u16),
    #[error("VRRPv3 advert interval must be 1 to 4095 centiseconds, got {0}")]
    V3Interval(u16),
    #[error("VRRPv3 has no authentication (RFC 5798 section 9); remove the password")]
    V3Auth,
    #[error("source {src} and destination {dst} are not of one address family")]
    Endpoints { src: IpAddr, dst: IpAddr },
}

impl Advert {
    /// Encodes the VRRP message with its checksum. The address family is that of `ep`; VRRPv3
    /// needs `ep` for its checksum, which covers a pseudo-header (RFC 5798 section 5.2.8);
    /// `v3_checksum_as_v2` leaves the pseudo-header out for IPv4, like keepalived's option of
    /// that name.
    pub fn encode(&self, ep: &Endpoints, v3_checksum_as_v2: bool) -> Result<Vec<u8>, EncodeError> {
        let family = Family::of(&ep.src);
        if Family::of(&ep.dst) != family {
            return Err(EncodeError::Endpoints { src: ep.src, dst: ep.dst });
        }
        if let Some(a) = self.addresses.iter().find(|a| Family::of(a) != family) {
            return Err(EncodeError::MixedFamily(*a));
        }
        let count = u8::try_from(self.addresses.len()).map_err(|_| EncodeError::TooManyAddresses(self.addresses.len()))?;

        let mut out = Vec::with_capacity(expected_len(self.version, family, count));
        out.push((self.version.number() << 4) | TYPE_ADVERTISEMENT);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(count);
        match self.version {
            Version::V2 => {
                if family == Family::Inet6 {
                    return Err(EncodeError::V2Ipv6);
                }
                // RFC 3768 section 5.3.7: Adver Int in seconds, default 1.
                let secs = self.advert_int / 100;
                if !self.advert_int.is_multiple_of(100) || !(1..=255).contains(&secs) {
                    return Err(EncodeError::V2Interval(self.advert_int));
                }
                out.push(self.auth.type_code());
                out.push(secs as u8);
            }
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(EncodeError::V3Auth);
                }
                if !(1..=V3_MAX_INTERVAL).contains(&self.advert_int) {
                    return Err(EncodeError::V3Interval(self.advert_int));
                }
                // RFC 5798 section 5.2.6: the 4 reserved bits MUST be sent as zero.
                out.extend_from_slice(&self.advert_int.to_be_bytes());
            }
        }
        out.extend_from_slice(&[0, 0]); // checksum, filled in below
        for a in &self.addresses {
            match a {
                IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
                IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
            }
        }
        let sum = match self.version {
            Version::V2 => {
                // RFC 3768 section 5.3.10: 8 bytes of auth data, the password or zeros.
                match &self.auth {
                    Auth::None => out.extend_from_slice(&[0; V2_AUTH_LEN]),
                    Auth::Pass(p) => out.extend_from_slice(p),
                }
                // RFC 3768 section 5.3.8: checksum of the VRRP message alone.
                checksum::internet(&out)
            }
            Version::V3 => checksum::v3(ep.src, ep.dst, &out, v3_checksum_as_v2).expect("families checked above"),
        };
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(out)
    }
}

/// How many addresses an advert carries on a link of `mtu` bytes, as keepalived counts them
/// (`vrrp_complete_instance`): what fits after an Ethernet, an IP and the VRRP header (and
/// VRRPv2's authentication data), and at most 255, the 8-bit count. keepalived holds the
/// rest without advertising them, as excluded addresses; a peer must do the same to agree.
pub fn max_addresses(version: Version, family: Family, mtu: u32) -> usize {
    let ip_header = match family {
        Family::Inet => 20,
        Family::Inet6 => 40,
    };
    let auth = if version == Version::V2 { V2_AUTH_LEN } else { 0 };
    let room = (mtu as usize).saturating_sub(14 + ip_header + HEADER_LEN + auth);
    (room / family.addr_len()).min(usize::from(u8::MAX))
}

/// Length of a complete message with `count` addresses.
fn expected_len(version: Version, family: Family, count: u8) -> usize {
    let auth = if version == Version::V2 { V2_AUTH_LEN } else { 0 };
    HEADER_LEN + usize::from(count) * family.addr_len() + auth
}

/// The VRID of a message, without any check: lets the socket layer find the instance a
/// packet is for before decoding it against that instance.
/// What an IPv4 raw socket hands over besides the VRRP message: the IP header's source,
/// destination and TTL (RFC 5798 5.1.1.3: the TTL must be 255).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Head {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
}

/// An IPv4 datagram as received on a raw socket, split into its header and its payload
/// (the VRRP message). None when it is not IPv4 or its lengths do not fit the buffer; a
/// total length past the buffer is cut to it, one shorter ends the payload there.
pub fn split_ipv4(data: &[u8]) -> Option<(Ipv4Head, &[u8])> {
    if data.len() < 20 || data[0] >> 4 != 4 {
        return None;
    }
    let hdr_len = usize::from(data[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([data[2], data[3]])).min(data.len());
    if hdr_len < 20 || hdr_len > total {
        return None;
    }
    let head = Ipv4Head {
        src: Ipv4Addr::new(data[12], data[13], data[14], data[15]),
        dst: Ipv4Addr::new(data[16], data[17], data[18], data[19]),
        ttl: data[8],
    };
    Some((head, &data[hdr_len..total]))
}

pub fn peek_vrid(buf: &[u8]) -> Option<u8> {
    buf.get(1).copied()
}

/// How a packet arrived, from the IP header and the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
}

impl RxMeta {
    /// Whether the packet was sent to a unicast address (a `unicast_peer` setup).
    pub fn unicast(&self) -> bool {
        !self.dst.is_multicast()
    }
}

/// What the local instance expects of an advert for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub version: Version,
    pub family: Family,
    pub vrid: u8,
    /// VRRPv2 only; must be [`Auth::None`] for VRRPv3.
    pub auth: Auth,
    /// Configured interval in centiseconds; VRRPv2 adverts must carry the same.
    pub advert_int: u16,
    /// The configured virtual addresses (order does not matter).
    pub addresses: Vec<IpAddr>,
    /// The local router is the address owner (configured priority 255).
    pub owner: bool,
    /// The instance talks to unicast peers instead of the multicast group.
    pub unicast: bool,
    /// When set (and `unicast`), only these sources are accepted (keepalived's
    /// `check_unicast_src`). Empty: any source.
    pub unicast_peers: Vec<IpAddr>,
    /// Skip the TTL / hop limit check for unicast adverts, which may cross routers. keepalived
    /// does this for every unicast instance.
    pub relax_unicast_ttl: bool,
    /// VRRPv3 over IPv4: checksum without the pseudo-header (keepalived `v3_checksum_as_v2`).
    pub v3_checksum_as_v2: bool,
}

/// An advert that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub advert: Advert,
    /// The address list differs from ours, but the sender is the address owner (priority
    /// 255), so RFC 5798 section 7.1 says to keep processing. Log it as a misconfiguration.
    pub address_mismatch: bool,
}

/// A failed receive check: the packet MUST be discarded (RFC 3768 / RFC 5798 section 7.1).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("packet from {got} is not of the instance's address family")]
    Family { got: IpAddr },
    #[error("TTL/hop limit is {got}, must be 255 (RFC 5798 section 7.1): sent from beyond the link")]
    Ttl { got: u8 },
    #[error("{len} bytes is shorter than the 8-byte VRRP header")]
    Truncated { len: usize },
    #[error("VRRP version {got}, this instance runs version {expected}")]
    Version { got: u8, expected: u8 },
    #[error("VRRP packet type {got}, only 1 (advertisement) exists")]
    Type { got: u8 },
    #[error("{got} bytes, but {count} addresses make {expected}")]
    Length { got: usize, expected: usize, count: u8 },
    #[error("bad checksum {got:#06x}, computed {computed:#06x}")]
    Checksum { got: u16, computed: u16 },
    #[error("VRID {got}, this instance is VRID {expected}")]
    Vrid { got: u8, expected: u8 },
    #[error("advert for VRID {vrid} whose addresses we own (priority 255): ignored (RFC 5798 section 7.1)")]
    LocalOwner { vrid: u8 },
    #[error("auth type {got}, this instance uses {expected} (auth_type must match on every router)")]
    AuthType { got: u8, expected: u8 },
    #[error("wrong password (auth_pass must match on every router)")]
    AuthFailure,
    #[error("advert interval {got} cs, this instance uses {expected} cs (advert_int must match for VRRPv2)")]
    AdvertInterval { got: u16, expected: u16 },
    #[error("advert interval 0 (RFC 5798 section 5.2.7 needs at least 1 centisecond)")]
    ZeroInterval,
    #[error("received a {} advert, this instance is configured for {}", if *.unicast { "unicast" } else { "multicast" }, if *.unicast { "multicast" } else { "unicast peers" })]
    Delivery { unicast: bool },
    #[error("unicast advert from {src}, which is not a configured peer")]
    UnknownPeer { src: IpAddr },
    #[error("address list differs from ours ({got} addresses, we have {expected}): check virtual addresses on every router")]
    AddressList { got: usize, expected: usize },
}

/// The reason a packet was dropped, without its details: what the counters count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    Family,
    Ttl,
    Truncated,
    Version,
    Type,
    Length,
    Checksum,
    Vrid,
    LocalOwner,
    AuthType,
    AuthFailure,
    AdvertInterval,
    ZeroInterval,
    Delivery,
    UnknownPeer,
    AddressList,
    /// The IP header could not be read, or the datagram was larger than any advert can be
    /// (cut by the receive buffer): not VRRP at all.
    Malformed,
}

impl DropReason {
    pub const ALL: [DropReason; 17] = [
        DropReason::Family,
        DropReason::Ttl,
        DropReason::Truncated,
        DropReason::Version,
        DropReason::Type,
        DropReason::Length,
        DropReason::Checksum,
        DropReason::Vrid,
        DropReason::LocalOwner,
        DropReason::AuthType,
        DropReason::AuthFailure,
        DropReason::AdvertInterval,
        DropReason::ZeroInterval,
        DropReason::Delivery,
        DropReason::UnknownPeer,
        DropReason::AddressList,
        DropReason::Malformed,
    ];

    /// Stable name for metrics, logs and status output. Never rename one.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Family => "family",
            DropReason::Ttl => "ttl",
            DropReason::Truncated => "truncated",
            DropReason::Version => "version",
            DropReason::Type => "type",
            DropReason::Length => "length",
            DropReason::Checksum => "checksum",
            DropReason::Vrid => "vrid",
            DropReason::LocalOwner => "local_owner",
            DropReason::AuthType => "auth_type",
            DropReason::AuthFailure => "auth_failure",
            DropReason::AdvertInterval => "advert_interval",
            DropReason::ZeroInterval => "zero_interval",
            DropReason::Delivery => "delivery",
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::AddressList => "address_list",
            DropReason::Malformed => "malformed",
        }
    }

    /// Reasons that point at a configuration difference between routers of one VRID (an
    /// operator should hear about them at warning level) rather than at noise or an attack.
    pub fn is_misconfiguration(self) -> bool {
        matches!(
            self,
            DropReason::Version
                | DropReason::LocalOwner
                | DropReason::AuthType
                | DropReason::AuthFailure
                | DropReason::AdvertInterval
                | DropReason::Delivery
                | DropReason::AddressList
        )
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DecodeError {
    pub fn reason(&self) -> DropReason {
        match self {
            DecodeError::Family { .. } => DropReason::Family,
            DecodeError::Ttl { .. } => DropReason::Ttl,
            DecodeError::Truncated { .. } => DropReason::Truncated,
            DecodeError::Version { .. } => DropReason::Version,
            DecodeError::Type { .. } => DropReason::Type,
            DecodeError::Length { .. } => DropReason::Length,
            DecodeError::Checksum { .. } => DropReason::Checksum,
            DecodeError::Vrid { .. } => DropReason::Vrid,
            DecodeError::LocalOwner { .. } => DropReason::LocalOwner,
            DecodeError::AuthType { .. } => DropReason::AuthType,
            DecodeError::AuthFailure => DropReason::AuthFailure,
            DecodeError::AdvertInterval { .. } => DropReason::AdvertInterval,
            DecodeError::ZeroInterval => DropReason::ZeroInterval,
            DecodeError::Delivery { .. } => DropReason::Delivery,
            DecodeError::UnknownPeer { .. } => DropReason::UnknownPeer,
            DecodeError::AddressList { .. } => DropReason::AddressList,
        }
    }
}

/// Dropped packets counted per reason (one per instance, or one per socket for packets that
/// match no instance).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u64; DropReason::ALL.len()],
}

impl DropCounters {
    pub fn record(&mut self, reason: DropReason) {
        self.counts[reason.index()] = self.counts[reason.index()].saturating_add(1);
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason.index()]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Every reason with its count, zeros included, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.get(*r)))
    }
}

/// Structure-only parse: header, version 2 or 3, type, exact length. No checksum, no
/// context. For display, tests, and reading the address list an advert carries; the receive
/// checks are [`decode`]'s.
pub fn parse(buf: &[u8], family: Family) -> Result<Advert, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated { len: buf.len() });
    }
    let version = match buf[0] >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        got => return Err(DecodeError::Version { got, expected: 3 }),
    };
    parse_as(buf, family, version)
}

fn parse_as(buf: &[u8], family: Family, version: Version) -> Result<Advert, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated { len: buf.len() });
    }
    let got_version = buf[0] >> 4;
    if got_version != version.number() {
        return Err(DecodeError::Version { got: got_version, expected: version.number() });
    }
    let ty = buf[0] & 0x0f;
    if ty != TYPE_ADVERTISEMENT {
        return Err(DecodeError::Type { got: ty });
    }
    let count = buf[3];
    let expected = expected_len(version, family, count);
    // RFC 5798 section 7.1: MUST verify the packet contains the complete VRRP packet. Like
    // keepalived we also refuse trailing bytes: a peer that sends them is not one of ours.
    if buf.len() != expected {
        return Err(DecodeError::Length { got: buf.len(), expected, count });
    }
    let addr_end = HEADER_LEN + usize::from(count) * family.addr_len();
    let addresses = buf[HEADER_LEN..addr_end]
        .chunks_exact(family.addr_len())
        .map(|c| match family {
            Family::Inet => IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])),
            Family::Inet6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(c);
                IpAddr::V6(Ipv6Addr::from(o))
            }
        })
        .collect();
    let (advert_int, auth) = match version {
        Version::V2 => {
            let auth = match buf[4] {
                0 => Auth::None,
                1 => {
                    let mut p = [0u8; 8];
                    p.copy_from_slice(&buf[addr_end..addr_end + V2_AUTH_LEN]);
                    Auth::Pass(p)
                }
                // Type 2 (IP AH) and unknown types: keep the code so checks can report it.
                _ => Auth::None,
            };
            (u16::from(buf[5]) * 100, auth)
        }
        // RFC 5798 section 5.2.6: reserved bits MUST be ignored on receipt.
        Version::V3 => (u16::from_be_bytes([buf[4], buf[5]]) & V3_MAX_INTERVAL, Auth::None),
    };
    Ok(Advert { version, vrid: buf[1], priority: buf[2], advert_int, auth, addresses })
}

/// Decodes an advert received for the instance described by `expect`, running every receive
/// check of RFC 3768 section 7.1 (v2) / RFC 5798 section 7.1 (v3) in the RFC's order.
pub fn decode(buf: &[u8], rx: &RxMeta, expect: &Expect) -> Result<Received, DecodeError> {
    if Family::of(&rx.src) != expect.family || Family::of(&rx.dst) != expect.family {
        return Err(DecodeError::Family { got: rx.src });
    }
    // "MUST verify that the IP TTL [IPv6 Hop Limit] is 255." keepalived skips this for
    // unicast peers, which may sit behind a router; we do so only when asked.
    let ttl_relaxed = rx.unicast() && expect.unicast && expect.relax_unicast_ttl;
    if rx.ttl != VRRP_TTL && !ttl_relaxed {
        return Err(DecodeError::Ttl { got: rx.ttl });
    }
    // "MUST verify the VRRP version", "... contains the complete VRRP packet".
    let advert = parse_as(buf, expect.family, expect.version)?;
    // "MUST verify the VRRP checksum." Summing the message with its checksum gives zero
    // (RFC 1071), which also accepts either form of one's-complement zero in the field.
    let sum = |data: &[u8]| match expect.version {
        Version::V2 => checksum::internet(data),
        Version::V3 => checksum::v3(rx.src, rx.dst, data, expect.v3_checksum_as_v2).expect("families checked above"),
    };
    if sum(buf) != 0 {
        let mut zeroed = buf.to_vec();
        zeroed[6] = 0;
        zeroed[7] = 0;
        return Err(DecodeError::Checksum { got: u16::from_be_bytes([buf[6], buf[7]]), computed: sum(&zeroed) });
    }
    // "MUST verify that the VRID is configured on the receiving interface and the local
    // router is not the IPvX address owner (Priority = 255 (decimal))."
    if advert.vrid != expect.vrid {
        return Err(DecodeError::Vrid { got: advert.vrid, expected: expect.vrid });
    }
    if expect.owner {
        return Err(DecodeError::LocalOwner { vrid: advert.vrid });
    }
    if expect.version == Version::V2 {
        // RFC 3768 7.1: "MUST verify that the Auth Type matches the locally configured
        // authentication method for the virtual router and perform that authentication".
        let got_type = buf[4];
        let expected_type = expect.auth.type_code();
        if got_type != expected_type {
            return Err(DecodeError::AuthType { got: got_type, expected: expected_type });
        }
        if let Auth::Pass(ours) = &expect.auth {
            let theirs = &buf[buf.len() - V2_AUTH_LEN..];
            // Compare all 8 bytes whatever differs first, so timing tells nothing.
            let diff = ours.iter().zip(theirs).fold(0u8, |d, (a, b)| d | (a ^ b));
            if diff != 0 {
                return Err(DecodeError::AuthFailure);
            }
        }
        // RFC 3768 7.1: "MUST verify that the Adver Interval in the packet is the same as the
        // locally configured for this virtual router".
        if advert.advert_int != expect.advert_int {
            return Err(DecodeError::AdvertInterval { got: advert.advert_int, expected: expect.advert_int });
        }
    } else if advert.advert_int == 0 {
        // A zero interval would make a backup's Master_Down_Interval almost nothing.
        return Err(DecodeError::ZeroInterval);
    }
    // keepalived: a multicast instance drops unicast adverts and the other way round.
    if rx.unicast() != expect.unicast {
        return Err(DecodeError::Delivery { unicast: rx.unicast() });
    }
    if expect.unicast && !expect.unicast_peers.is_empty() && !expect.unicast_peers.contains(&rx.src) {
        return Err(DecodeError::UnknownPeer { src: rx.src });
    }
    // "MAY verify that the 'Count IPvX Addrs' and the list of IPvX address(es) match the
    // IPvX address(es) configured for the VRID. If the packet was not generated by the
    // address owner (Priority does not equal 255 (decimal)), the receiver MUST drop the
    // packet; otherwise, continue processing."
    let address_mismatch = !same_addresses(&advert.addresses, &expect.addresses);
    if address_mismatch && advert.priority != 255 {
        return Err(DecodeError::AddressList { got: advert.addresses.len(), expected: expect.addresses.len() });
    }
    Ok(Received { advert, address_mismatch })
}

/// Same set of addresses, in any order (keepalived checks each of ours is present).
fn same_addresses(got: &[IpAddr], ours: &[IpAddr]) -> bool {
    got.len() == ours.len() && ours.iter().all(|a| got.contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_datagram_splits_into_head_and_message() {
        let mut pkt = vec![0u8; 28];
        pkt[0] = 0x45;
        pkt[2..4].copy_from_slice(&28u16.to_be_bytes());
        pkt[8] = 255;
        pkt[12..16].copy_from_slice(&[192, 0, 2, 1]);
        pkt[16..20].copy_from_slice(&[224, 0, 0, 18]);
        pkt[20] = 0x31;
        let (head, msg) = split_ipv4(&pkt).unwrap();
        assert_eq!(head, Ipv4Head { src: Ipv4Addr::new(192, 0, 2, 1), dst: MCAST_V4, ttl: 255 });
        assert_eq!((msg.len(), msg[0]), (8, 0x31));
        // Options: IHL 6.
        pkt[0] = 0x46;
        assert_eq!(split_ipv4(&pkt).unwrap().1.len(), 4);
        // A total length shorter than the buffer ends the message; a longer one is cut to it.
        pkt[0] = 0x45;
        pkt[2..4].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(split_ipv4(&pkt).unwrap().1.len(), 4);
        pkt[2..4].copy_from_slice(&900u16.to_be_bytes());
        assert_eq!(split_ipv4(&pkt).unwrap().1.len(), 8);
        // Not IPv4, too short, IHL < 5, IHL beyond the data.
        pkt[0] = 0x65;
        assert_eq!(split_ipv4(&pkt), None);
        assert_eq!(split_ipv4(&pkt[..10]), None);
        pkt[0] = 0x44;
        assert_eq!(split_ipv4(&pkt), None);
        pkt[0] = 0x4f;
        assert_eq!(split_ipv4(&pkt), None);
    }

    #[test]
    fn an_advert_carries_what_keepalived_fits_in_the_mtu() {
        // keepalived on Ethernet (1500): 255 IPv4 addresses (the count's limit), 89 IPv6 ones
        // ((1500 - 14 - 40 - 8) / 16).
        assert_eq!(max_addresses(Version::V2, Family::Inet, 1500), 255);
        assert_eq!(max_addresses(Version::V3, Family::Inet6, 1500), 89);
        // A small MTU: (576 - 14 - 20 - 8 - 8) / 4 and without v2's authentication data.
        assert_eq!(max_addresses(Version::V2, Family::Inet, 576), 131);
        assert_eq!(max_addresses(Version::V3, Family::Inet, 576), 133);
        assert_eq!(max_addresses(Version::V3, Family::Inet6, 0), 0);
    }

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn v2_expect() -> Expect {
        Expect {
            version: Version::V2,
            family: Family::Inet,
            vrid: 51,
            auth: Auth::pass("1111"),
            advert_int: 100,
            addresses: vec![v4("192.0.2.100"), v4("192.0.2.101")],
            owner: false,
            unicast: false,
            unicast_peers: vec![],
            relax_unicast_ttl: false,
            v3_checksum_as_v2: false,
        }
    }

    fn v2_advert(priority: u8) -> Advert {
        Advert {
            version: Version::V2,
            vrid: 51,
            priority,
            advert_int: 100,
            auth: Auth::pass("1111"),
            addresses: vec![v4("192.0.2.100"), v4("192.0.2.101")],
        }
    }

    fn mcast_ep() -> Endpoints {
        Endpoints { src: v4("192.0.2.1"), dst: IpAddr::V4(MCAST_V4) }
    }

    fn rx() -> RxMeta {
        RxMeta { src: v4("192.0.2.1"), dst: IpAddr::V4(MCAST_V4), ttl: 255 }
    }

    fn v3_expect() -> Expect {
        Expect {
            version: Version::V3,
            auth: Auth::None,
            advert_int: 50,
            vrid: 52,
            addresses: vec![v4("192.0.2.110"), v4("192.0.2.111")],
            ..v2_expect()
        }
    }

    fn v3_advert() -> Advert {
        Advert {
            version: Version::V3,
            vrid: 52,
            priority: 150,
            advert_int: 50,
            auth: Auth::None,
            addresses: vec![v4("192.0.2.110"), v4("192.0.2.111")],
        }
    }

    fn err(buf: &[u8], rx: &RxMeta, e: &Expect) -> DropReason {
        decode(buf, rx, e).unwrap_err().reason()
    }

    #[test]
    fn v2_round_trip() {
        let a = v2_advert(100);
        let buf = a.encode(&mcast_ep(), false).unwrap();
        assert_eq!(buf.len(), 8 + 8 + 8);
        let got = decode(&buf, &rx(), &v2_expect()).unwrap();
        assert_eq!(got.advert, a);
        assert!(!got.address_mismatch);
    }

    /// A VIP listed twice (keepalived keeps the repeat): the advert carries every entry and
    /// counts them all, and a receiver with the same list accepts it; one with the list
    /// without the repeat drops it on the count, as keepalived's vrrp_in_chk does
    /// ("received an unexpected ip number count").
    #[test]
    fn a_repeated_address_is_carried_and_counted() {
        let mut a = v2_advert(100);
        a.addresses.push(v4("192.0.2.100"));
        let buf = a.encode(&mcast_ep(), false).unwrap();
        assert_eq!(buf[3], 3);
        assert_eq!(buf.len(), 8 + 3 * 4 + 8);
        let e = Expect { addresses: a.addresses.clone(), ..v2_expect() };
        assert_eq!(decode(&buf, &rx(), &e).unwrap().advert, a);
        assert_eq!(err(&buf, &rx(), &v2_expect()), DropReason::AddressList);
        let ours_twice = v2_advert(100).encode(&mcast_ep(), false).unwrap();
        assert_eq!(err(&ours_twice, &rx(), &e), DropReason::AddressList);
    }

    #[test]
    fn v3_ipv6_round_trip_needs_the_pseudo_header() {
        let src: IpAddr = "fe80::1".parse().unwrap();
        let a = Advert {
            version: Version::V3,
            vrid: 53,
            priority: 200,
            advert_int: 100,
            auth: Auth::None,
            addresses: vec!["2001:db8::100".parse().unwrap()],
        };
        let ep = Endpoints { src, dst: IpAddr::V6(MCAST_V6) };
        let buf = a.encode(&ep, false).unwrap();
        let e = Expect {
            version: Version::V3,
            family: Family::Inet6,
            vrid: 53,
            auth: Auth::None,
            advert_int: 100,
            addresses: a.addresses.clone(),
            ..v2_expect()
        };
        let meta = RxMeta { src, dst: ep.dst, ttl: 255 };
        assert_eq!(decode(&buf, &meta, &e).unwrap().advert, a);
        // Another source address changes the pseudo-header, so the checksum fails.
        let other = RxMeta { src: "fe80::2".parse().unwrap(), ..meta };
        assert_eq!(err(&buf, &other, &e), DropReason::Checksum);
    }

    // RFC 3768 7.1 / RFC 5798 7.1: "MUST verify that the IP TTL is 255".
    #[test]
    fn ttl_not_255_is_dropped() {
        let buf = v2_advert(100).encode(&mcast_ep(), false).unwrap();
        let meta = RxMeta { ttl: 254, ..rx() };
        assert_eq!(decode(&buf, &meta, &v2_expect()).unwrap_err(), DecodeError::Ttl { got: 254 });
    }

    #[test]
    fn unicast_ttl_relaxed_only_when_configured() {
        let ep = Endpoints { src: v4("192.0.2.1"), dst: v4("192.0.2.2") };
        let buf = v3_advert().encode(&ep, false).unwrap();
        let meta = RxMeta { src: ep.src, dst: ep.dst, ttl: 63 };
        let mut e = Expect { unicast: true, ..v3_expect() };
        assert_eq!(err(&buf, &meta, &e), DropReason::Ttl);
        e.relax_unicast_ttl = true;
        assert!(decode(&buf, &meta, &e).is_ok());
        // Relaxing never applies to multicast.
        let mbuf = v3_advert().encode(&mcast_ep(), false).unwrap();
        let mmeta = RxMeta { ttl: 63, ..rx() };
        assert_eq!(err(&mbuf, &mmeta, &Expect { unicast: false, ..e }), DropReason::Ttl);
    }

    #[test]
    fn version_type_and_length_checks() {
        let buf = v2_advert(100).encode(&mcast_ep(), false).unwrap();
        assert_eq!(err(&buf, &rx(), &v3_expect()), DropReason::Version);
        let mut t = buf.clone();
        t[0] = 0x22;
        assert_eq!(err(&t, &rx(), &v2_expect()), DropReason::Type);
        assert_eq!(err(&buf[..7], &rx(), &v2_expect()), DropReason::Truncated);
        assert_eq!(err(&buf[..20], &rx(), &v2_expect()), DropReason::Length);
        let mut long = buf.clone();
        long.push(0);
        assert_eq!(err(&long, &rx(), &v2_expect()), DropReason::Length);
        // Count says 3 addresses but only 2 are there.
        let mut c = buf.clone();
        c[3] = 3;
        assert_eq!(err(&c, &rx(), &v2_expect()), DropReason::Length);
    }

    #[test]
    fn checksum_vrid_owner() {
        let buf = v2_advert(100).encode(&mcast_ep(), false).unwrap();
        let mut bad = buf.clone();
        bad[7] ^= 1;
        assert_eq!(err(&bad, &rx(), &v2_expect()), DropReason::Checksum);
        assert_eq!(err(&buf, &rx(), &Expect { vrid: 52, ..v2_expect() }), DropReason::Vrid);
        assert_eq!(err(&buf, &rx(), &Expect { owner: true, ..v2_expect() }), DropReason::LocalOwner);
    }

    #[test]
    fn auth_checks() {
        let buf = v2_advert(100).encode(&mcast_ep(), false).unwrap();
        assert_eq!(err(&buf, &rx(), &Expect { auth: Auth::None, ..v2_expect() }), DropReason::AuthType);
        assert_eq!(err(&buf, &rx(), &Expect { auth: Auth::pass("1112"), ..v2_expect() }), DropReason::AuthFailure);
        // keepalived uses the first 8 characters only.
        assert_eq!(Auth::pass("123456789"), Auth::pass("12345678"));
        assert_eq!(format!("{:?}", Auth::pass("secret")), "Pass(..)");
    }

    #[test]
    fn v2_interval_must_match_v3_need_not() {
        let buf = v2_advert(100).encode(&mcast_ep(), false).unwrap();
        assert_eq!(
            decode(&buf, &rx(), &Expect { advert_int: 200, ..v2_expect() }).unwrap_err(),
            DecodeError::AdvertInterval { got: 100, expected: 200 }
        );
        let b3 = v3_advert().encode(&mcast_ep(), false).unwrap();
        assert!(decode(&b3, &rx(), &Expect { advert_int: 100, ..v3_expect() }).is_ok());
    }

    #[test]
    fn v3_zero_interval_is_dropped() {
        let mut b = v3_advert().encode(&mcast_ep(), false).unwrap();
        b[4] = 0xf0; // reserved bits set (ignored), interval 0
        b[5] = 0;
        b[6] = 0;
        b[7] = 0;
        let c = checksum::v3(rx().src, rx().dst, &b, false).unwrap();
        b[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(err(&b, &rx(), &v3_expect()), DropReason::ZeroInterval);
    }

    #[test]
    fn delivery_and_peer_checks() {
        let b = v3_advert().encode(&mcast_ep(), false).unwrap();
        assert_eq!(err(&b, &rx(), &Expect { unicast: true, ..v3_expect() }), DropReason::Delivery);
        let ep = Endpoints { src: v4("192.0.2.9"), dst: v4("192.0.2.2") };
        let u = v3_advert().encode(&ep, false).unwrap();
        let meta = RxMeta { src: ep.src, dst: ep.dst, ttl: 255 };
        assert_eq!(err(&u, &meta, &v3_expect()), DropReason::Delivery);
        let e = Expect { unicast: true, unicast_peers: vec![v4("192.0.2.1")], ..v3_expect() };
        assert_eq!(err(&u, &meta, &e), DropReason::UnknownPeer);
    }

    // RFC 5798 7.1: address list mismatch drops unless the sender is the owner.
    #[test]
    fn address_list_mismatch() {
        let mut a = v3_advert();
        a.addresses = vec![v4("192.0.2.111"), v4("192.0.2.110")];
        let b = a.encode(&mcast_ep(), false).unwrap();
        assert!(decode(&b, &rx(), &v3_expect()).is_ok(), "order does not matter");
        a.addresses = vec![v4("192.0.2.110"), v4("192.0.2.112")];
        let b = a.encode(&mcast_ep(), false).unwrap();
        assert_eq!(err(&b, &rx(), &v3_expect()), DropReason::AddressList);
        a.priority = 255;
        let b = a.encode(&mcast_ep(), false).unwrap();
        assert!(decode(&b, &rx(), &v3_expect()).unwrap().address_mismatch);
    }

    #[test]
    fn checksum_as_v2_switch() {
        let as_v2 = v3_advert().encode(&mcast_ep(), true).unwrap();
        let rfc = v3_advert().encode(&mcast_ep(), false).unwrap();
        assert_ne!(as_v2, rfc);
        assert_eq!(err(&as_v2, &rx(), &v3_expect()), DropReason::Checksum);
        assert!(decode(&as_v2, &rx(), &Expect { v3_checksum_as_v2: true, ..v3_expect() }).is_ok());
    }

    #[test]
    fn encode_refuses_bad_settings() {
        let mut a = v2_advert(100);
        a.advert_int = 50;
        assert_eq!(a.encode(&mcast_ep(), false), Err(EncodeError::V2Interval(50)));
        let mut a = v3_advert();
        a.advert_int = 4096;
        assert_eq!(a.encode(&mcast_ep(), false), Err(EncodeError::V3Interval(4096)));
        a.advert_int = 100;
        a.auth = Auth::pass("x");
        assert_eq!(a.encode(&mcast_ep(), false), Err(EncodeError::V3Auth));
        let mut a = v3_advert();
        a.addresses.push("2001:db8::1".parse().unwrap());
        assert!(matches!(a.encode(&mcast_ep(), false), Err(EncodeError::MixedFamily(_))));
    }

    // Found by tests/vrrp_fuzz.rs: with no addresses the family comes from the endpoints.
    #[test]
    fn ipv6_advert_without_addresses_round_trips() {
        let a = Advert { addresses: vec![], ..v3_advert() };
        let ep = Endpoints { src: "fe80::1".parse().unwrap(), dst: IpAddr::V6(MCAST_V6) };
        let buf = a.encode(&ep, false).unwrap();
        assert_eq!(parse(&buf, Family::Inet6).unwrap(), a);
    }

    // RFC 1071: 0x0000 and 0xffff are the same one's-complement value; accept both.
    #[test]
    fn checksum_of_negative_zero_is_accepted() {
        let (vrid, priority, buf) = (1..=255u8)
            .flat_map(|v| (0..=255u8).map(move |p| (v, p)))
            .map(|(v, p)| (v, p, Advert { vrid: v, priority: p, ..v2_advert(0) }))
            .map(|(v, p, a)| (v, p, a.encode(&mcast_ep(), false).unwrap()))
            .find(|(_, _, b)| b[6..8] == [0, 0])
            .expect("some VRID and priority sum to a zero checksum");
        let mut other = buf.clone();
        other[6..8].copy_from_slice(&[0xff, 0xff]);
        let e = Expect { vrid, ..v2_expect() };
        assert_eq!(decode(&buf, &rx(), &e).unwrap().advert.priority, priority);
        assert_eq!(decode(&other, &rx(), &e).unwrap().advert.priority, priority);
    }

    #[test]
    fn counters() {
        let mut c = DropCounters::default();
        c.record(DropReason::Ttl);
        c.record(DropReason::Ttl);
        c.record(DropReason::AuthFailure);
        assert_eq!(c.get(DropReason::Ttl), 2);
        assert_eq!(c.total(), 3);
        assert_eq!(c.iter().count(), DropReason::ALL.len());
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let names: std::collections::BTreeSet<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), DropReason::ALL.len(), "names are unique");
    }
}
