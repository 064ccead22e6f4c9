//! What the kernel's rtnetlink messages say, read without I/O: the answers to a request or a
//! dump, and the address and link notifications the watchers receive. Everything here reads
//! bytes from outside the process (fuzz target `rtnl_reply`), so every length is checked and
//! anything unreadable is a [`Malformed`], never a panic. The netlink framing and the
//! attribute reader are the ones the IPVS replies go through (src/ipvs/wire.rs, attrs.rs):
//! rtnetlink is netlink too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use crate::ipvs::attrs::{self, DecodeError};
use crate::ipvs::wire::{self, NlReply};

/// A message that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("rtnetlink {op}: malformed message: {source}")]
pub struct Malformed {
    pub op: &'static str,
    #[source]
    pub source: DecodeError,
}

/// Message types (linux/rtnetlink.h).
pub mod rtm {
    pub const NEWLINK: u16 = 16;
    pub const DELLINK: u16 = 17;
    pub const NEWADDR: u16 = 20;
    pub const DELADDR: u16 = 21;
}

// Attribute types (linux/if_addr.h, linux/if_link.h).
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_FLAGS: u16 = 8;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKINFO: u16 = 18;
// Inside IFLA_LINKINFO, and a macvlan's IFLA_INFO_DATA (linux/if_link.h).
pub(super) const IFLA_INFO_KIND: u16 = 1;
pub(super) const IFLA_INFO_DATA: u16 = 2;
pub(super) const IFLA_MACVLAN_MODE: u16 = 1;

/// Where a request's answers stand after one datagram of them.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// More datagrams follow (a dump in progress).
    More,
    /// The final ACK or DONE came: every payload has been collected.
    Done,
    /// The kernel refused the request with this errno.
    Refused(i32),
}

/// Reads one datagram of answers to the request numbered `seq`, adding each payload to
/// `payloads`. Messages with another sequence number are not ours and are skipped.
pub fn read_answers(op: &'static str, bytes: &[u8], seq: u32, payloads: &mut Vec<Vec<u8>>) -> Result<Answer, Malformed> {
    for m in wire::parse_replies(bytes).map_err(|source| Malformed { op, source })? {
        match m {
            _ if m.seq() != seq => {}
            NlReply::Data { payload, .. } => payloads.push(payload.to_vec()),
            // DONE ends a dump; with ACK asked the kernel still sends no separate ACK.
            NlReply::Ack { errno: 0, .. } | NlReply::Done { errno: 0, .. } => return Ok(Answer::Done),
            NlReply::Ack { errno, .. } | NlReply::Done { errno, .. } => return Ok(Answer::Refused(errno)),
        }
    }
    Ok(Answer::More)
}

/// Address scope (`ip addr add ... scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    Global,
    Site,
    Link,
    Host,
}

impl Scope {
    fn from_u8(v: u8) -> Self {
        match v {
            200 => Scope::Site,
            253 => Scope::Link,
            254 => Scope::Host,
            _ => Scope::Global,
        }
    }
}

/// One address on a link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrInfo {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub label: Option<String>,
    pub scope: Scope,
    /// IFA_F_* bits (from IFA_FLAGS when present, which carries the full 32 bits).
    pub flags: u32,
}

impl AddrInfo {
    pub fn is_secondary(&self) -> bool {
        self.flags & libc::IFA_F_SECONDARY != 0
    }
    /// Still doing duplicate address detection (IPv6): not usable as a source yet.
    pub fn is_tentative(&self) -> bool {
        self.flags & libc::IFA_F_TENTATIVE != 0
    }
    pub fn is_dad_failed(&self) -> bool {
        self.flags & libc::IFA_F_DADFAILED != 0
    }
    pub fn is_nodad(&self) -> bool {
        self.flags & libc::IFA_F_NODAD != 0
    }

    /// An RTM_NEWADDR / RTM_DELADDR payload (struct ifaddrmsg and its attributes); `None`
    /// for one without an address of either family's length.
    pub fn read(payload: &[u8]) -> Result<Option<Self>, DecodeError> {
        let (head, rest) = payload.split_at_checked(8).ok_or(DecodeError::Truncated("ifaddrmsg"))?;
        let (prefix_len, ifa_flags, scope) = (head[1], head[2], head[3]);
        let ifindex = u32::from_ne_bytes([head[4], head[5], head[6], head[7]]);
        let (mut local, mut address, mut label, mut flags) = (None, None, None, u32::from(ifa_flags));
        for a in attrs::parse(rest)?.iter() {
            match a.ty {
                IFA_LOCAL => local = ip_from(a.data),
                IFA_ADDRESS => address = ip_from(a.data),
                IFA_LABEL => label = Some(c_string(a.data)),
                // The whole 32 bits; the header's byte holds only the low eight.
                IFA_FLAGS => flags = a.u32("address flags").unwrap_or(flags),
                _ => {}
            }
        }
        // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
        // point-to-point links); IPv6 usually sends only IFA_ADDRESS.
        let Some(addr) = local.or(address) else {
            return Ok(None);
        };
        Ok(Some(AddrInfo { ifindex, addr, prefix_len, label, scope: Scope::from_u8(scope), flags }))
    }
}

/// RFC 2863 operational state as the kernel reports it (IFLA_OPERSTATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperState {
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
}

impl OperState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => OperState::NotPresent,
            2 => OperState::Down,
            3 => OperState::LowerLayerDown,
            4 => OperState::Testing,
            5 => OperState::Dormant,
            6 => OperState::Up,
            _ => OperState::Unknown,
        }
    }
}

/// One link as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub name: String,
    /// IFF_UP: administratively up (`ip link set up`).
    pub admin_up: bool,
    /// IFF_LOWER_UP: carrier present.
    pub carrier: bool,
    /// IFF_RUNNING: the kernel considers the link operational.
    pub running: bool,
    pub oper_state: OperState,
    /// Hardware address (6 bytes on Ethernet; empty on loopback-like links without one).
    pub mac: Vec<u8>,
    pub mtu: Option<u32>,
    /// The link it is stacked on (IFLA_LINK), e.g. a macvlan's lower device.
    pub lower: Option<u32>,
    /// The driver kind of a virtual link (IFLA_INFO_KIND: "macvlan", "veth", ...).
    pub kind: Option<String>,
    /// A macvlan's mode (IFLA_MACVLAN_MODE: 1 private, 2 vepa, 4 bridge, 8 passthru).
    pub macvlan_mode: Option<u32>,
}

impl LinkInfo {
    /// Usable for traffic: administratively up and operational (carrier present).
    /// This is the "up" that link events report.
    pub fn is_up(&self) -> bool {
        self.admin_up && self.running
    }

    /// An RTM_NEWLINK / RTM_DELLINK payload (struct ifinfomsg and its attributes).
    pub fn read(payload: &[u8]) -> Result<Self, DecodeError> {
        let (head, rest) = payload.split_at_checked(16).ok_or(DecodeError::Truncated("ifinfomsg"))?;
        let ifindex = u32::from_ne_bytes([head[4], head[5], head[6], head[7]]);
        let flags = u32::from_ne_bytes([head[8], head[9], head[10], head[11]]);
        let has = |bit: libc::c_int| flags & bit as u32 != 0;
        let mut info = LinkInfo {
            ifindex,
            name: String::new(),
            admin_up: has(libc::IFF_UP),
            carrier: has(libc::IFF_LOWER_UP),
            running: has(libc::IFF_RUNNING),
            oper_state: OperState::Unknown,
            mac: Vec::new(),
            mtu: None,
            lower: None,
            kind: None,
            macvlan_mode: None,
        };
        for a in attrs::parse(rest)?.iter() {
            match a.ty {
                IFLA_IFNAME => info.name = c_string(a.data),
                IFLA_OPERSTATE => info.oper_state = a.data.first().map_or(OperState::Unknown, |&v| OperState::from_u8(v)),
                IFLA_ADDRESS => info.mac = a.data.to_vec(),
                IFLA_MTU => info.mtu = a.u32("mtu").ok(),
                IFLA_LINK => info.lower = a.u32("link").ok(),
                // What a link is stacked as only matters for VRRP's own macvlans: an
                // unreadable nest leaves it unknown rather than the whole link unreadable.
                IFLA_LINKINFO => {
                    for i in a.nested().iter().flat_map(|n| n.iter()) {
                        match i.ty {
                            IFLA_INFO_KIND => info.kind = Some(c_string(i.data)),
                            IFLA_INFO_DATA if info.kind.as_deref() == Some("macvlan") => {
                                let mode = i.nested().ok().and_then(|d| d.iter().find(|m| m.ty == IFLA_MACVLAN_MODE));
                                info.macvlan_mode = mode.and_then(|m| m.u32("macvlan mode").ok());
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(info)
    }
}

/// An address or link notification: added (or changed) when `present`, else removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<T> {
    pub present: bool,
    pub info: T,
}

/// The messages of one notification datagram whose type is `added` or `removed`, each read
/// by `read` (`None`: skipped).
fn changes<T>(
    op: &'static str,
    bytes: &[u8],
    (added, removed): (u16, u16),
    read: impl Fn(&[u8]) -> Result<Option<T>, DecodeError>,
) -> Result<Vec<Change<T>>, Malformed> {
    let mut out = Vec::new();
    for m in wire::parse_replies(bytes).map_err(|source| Malformed { op, source })? {
        let NlReply::Data { ty, payload, .. } = m else { continue };
        if ty == added || ty == removed {
            out.extend(read(payload).map_err(|source| Malformed { op, source })?.map(|info| Change { present: ty == added, info }));
        }
    }
    Ok(out)
}

/// The address notifications in one datagram (RTM_NEWADDR / RTM_DELADDR).
pub fn address_changes(bytes: &[u8]) -> Result<Vec<Change<AddrInfo>>, Malformed> {
    changes("address watch", bytes, (rtm::NEWADDR, rtm::DELADDR), AddrInfo::read)
}

/// The link notifications in one datagram (RTM_NEWLINK / RTM_DELLINK).
pub fn link_changes(bytes: &[u8]) -> Result<Vec<Change<LinkInfo>>, Malformed> {
    changes("link watch", bytes, (rtm::NEWLINK, rtm::DELLINK), |p| LinkInfo::read(p).map(Some))
}

/// The addresses in the payloads of an address dump.
pub fn addresses(op: &'static str, payloads: &[Vec<u8>]) -> Result<Vec<AddrInfo>, Malformed> {
    let read = |p: &Vec<u8>| AddrInfo::read(p).map_err(|source| Malformed { op, source });
    payloads.iter().filter_map(|p| read(p).transpose()).collect()
}

/// The links in the payloads of a link dump (or a get's one answer).
pub fn links(op: &'static str, payloads: &[Vec<u8>]) -> Result<Vec<LinkInfo>, Malformed> {
    payloads.iter().map(|p| LinkInfo::read(p).map_err(|source| Malformed { op, source })).collect()
}

fn ip_from(p: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(p) {
        Some(IpAddr::V4(Ipv4Addr::from(v4)))
    } else {
        <[u8; 16]>::try_from(p).ok().map(|v6| IpAddr::V6(Ipv6Addr::from(v6)))
    }
}

/// A NUL-terminated name (label, interface name); bytes that are not UTF-8 are replaced.
fn c_string(p: &[u8]) -> String {
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    String::from_utf8_lossy(&p[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Messages written byte by byte as the kernel lays them out (linux/netlink.h,
    // linux/if_addr.h, linux/rtnetlink.h).
    fn pad(v: &mut Vec<u8>) {
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
    }

    fn attr(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
        v.extend(ty.to_ne_bytes());
        v.extend(payload);
        pad(&mut v);
        v
    }

    fn message(ty: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut v = ((16 + body.len()) as u32).to_ne_bytes().to_vec();
        v.extend(ty.to_ne_bytes());
        v.extend(0u16.to_ne_bytes());
        v.extend(seq.to_ne_bytes());
        v.extend(0u32.to_ne_bytes());
        v.extend(body);
        pad(&mut v);
        v
    }

    fn ifaddrmsg(family: u8, prefix: u8, flags: u8, scope: u8, index: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![family, prefix, flags, scope];
        v.extend(index.to_ne_bytes());
        v.extend(attrs.concat());
        v
    }

    fn ifinfomsg(index: i32, flags: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![0, 0];
        v.extend(1u16.to_ne_bytes()); // ARPHRD_ETHER
        v.extend(index.to_ne_bytes());
        v.extend(flags.to_ne_bytes());
        v.extend(0u32.to_ne_bytes());
        v.extend(attrs.concat());
        v
    }

    use rtm::{DELADDR, DELLINK, NEWADDR, NEWLINK};

    fn two_addresses() -> Vec<u8> {
        let v4 = ifaddrmsg(
            2,
            24,
            0,
            0,
            7,
            &[
                attr(IFA_ADDRESS, &[198, 51, 100, 1]),
                attr(IFA_LOCAL, &[192, 0, 2, 10]),
                attr(IFA_LABEL, b"eth0:vip\0"),
                attr(IFA_FLAGS, &libc::IFA_F_SECONDARY.to_ne_bytes()),
            ],
        );
        let v6 =
            ifaddrmsg(10, 64, libc::IFA_F_TENTATIVE as u8, 253, 7, &[attr(IFA_ADDRESS, &"fe80::1".parse::<Ipv6Addr>().unwrap().octets())]);
        [message(NEWADDR, 0, &v4), message(DELADDR, 0, &v6)].concat()
    }

    #[test]
    fn address_notifications_are_read_as_changes() {
        let changes = address_changes(&two_addresses()).unwrap();
        assert_eq!(changes.len(), 2);
        let added = &changes[0];
        assert!(added.present);
        // IFA_LOCAL wins over IFA_ADDRESS (the peer on a point-to-point link).
        assert_eq!(added.info.addr, "192.0.2.10".parse::<IpAddr>().unwrap());
        assert_eq!((added.info.ifindex, added.info.prefix_len, added.info.scope), (7, 24, Scope::Global));
        assert_eq!(added.info.label.as_deref(), Some("eth0:vip"));
        assert!(added.info.is_secondary());
        let removed = &changes[1];
        assert!(!removed.present);
        assert_eq!(removed.info.addr, "fe80::1".parse::<IpAddr>().unwrap());
        assert_eq!(removed.info.scope, Scope::Link);
        assert!(removed.info.is_tentative() && !removed.info.is_secondary());
    }

    #[test]
    fn link_notifications_are_read_as_changes() {
        let flags = (libc::IFF_UP | libc::IFF_RUNNING | libc::IFF_LOWER_UP) as u32;
        let up = ifinfomsg(3, flags, &[attr(3, b"eth1\0"), attr(16, &[6]), attr(4, &1500u32.to_ne_bytes()), attr(1, &[2, 0, 0, 0, 0, 1])]);
        let gone = ifinfomsg(4, 0, &[attr(3, b"eth2\0"), attr(4, &[1])]);
        let changes = link_changes(&[message(NEWLINK, 0, &up), message(DELLINK, 0, &gone)].concat()).unwrap();
        assert_eq!(changes.len(), 2);
        let eth1 = &changes[0].info;
        assert!(changes[0].present && eth1.is_up() && eth1.carrier);
        assert_eq!((eth1.ifindex, eth1.name.as_str(), eth1.oper_state, eth1.mtu), (3, "eth1", OperState::Up, Some(1500)));
        assert_eq!(eth1.mac, [2, 0, 0, 0, 0, 1]);
        // A short IFLA_MTU is no MTU, not a panic.
        assert!(!changes[1].present);
        assert_eq!((changes[1].info.name.as_str(), changes[1].info.mtu, changes[1].info.is_up()), ("eth2", None, false));
    }

    #[test]
    fn answers_end_at_done_or_a_refusal_and_skip_other_requests() {
        let link = ifinfomsg(1, 0, &[attr(3, b"lo\0")]);
        let mut payloads = Vec::new();
        let part = [message(NEWLINK, 1, &link), message(NEWLINK, 9, &link)].concat();
        assert_eq!(read_answers("dump", &part, 1, &mut payloads), Ok(Answer::More));
        assert_eq!(payloads.len(), 1, "the answer to request 9 is not ours");
        let done = message(3, 1, &0i32.to_ne_bytes());
        assert_eq!(read_answers("dump", &done, 1, &mut payloads), Ok(Answer::Done));
        assert_eq!(links("dump", &payloads).unwrap()[0].name, "lo");

        // NLMSG_ERROR with -ENODEV and the request's header.
        let mut refusal = (-libc::ENODEV).to_ne_bytes().to_vec();
        refusal.extend(&message(18, 1, &[])[..16]);
        assert_eq!(read_answers("get", &message(2, 1, &refusal), 1, &mut Vec::new()), Ok(Answer::Refused(libc::ENODEV)));
        // An error of zero is the ACK.
        let mut ack = 0i32.to_ne_bytes().to_vec();
        ack.extend(&message(18, 1, &[])[..16]);
        assert_eq!(read_answers("set", &message(2, 1, &ack), 1, &mut Vec::new()), Ok(Answer::Done));
        // An errno the kernel never sends does not overflow.
        let mut odd = i32::MIN.to_ne_bytes().to_vec();
        odd.extend(&message(18, 1, &[])[..16]);
        assert!(read_answers("set", &message(2, 1, &odd), 1, &mut Vec::new()).is_ok());
    }

    #[test]
    fn every_cut_of_a_datagram_is_read_or_refused_without_a_panic() {
        let whole = two_addresses();
        for end in 0..whole.len() {
            let _ = address_changes(&whole[..end]);
            let _ = link_changes(&whole[..end]);
            let _ = read_answers("cut", &whole[..end], 0, &mut Vec::new());
        }
        let mut lying = whole.clone();
        lying[0] = 0xff; // a length past the end
        assert!(address_changes(&lying).is_err());
    }
}
