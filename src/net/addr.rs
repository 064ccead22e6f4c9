//! Interface addresses over rtnetlink: add/delete VIPs (IPv4 and IPv6, prefix, label,
//! scope, IFA_F_NODAD for IPv6 as keepalived does) and list a link's addresses.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Ifa, IfaF, RtAddrFamily, RtScope, Rtm};
use neli::rtnl::{Ifaddrmsg, IfaddrmsgBuilder, RtattrBuilder};
use neli::types::{Buffer, RtBuffer};
use thiserror::Error;

use super::link::{self, LinkError};
use super::rtnl::{self, Datagram, RtnlError, Subscription};
use super::rtnl_msg::{self, Change};
pub use super::rtnl_msg::{AddrInfo, Scope};

#[derive(Debug, Error)]
pub enum AddrError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("{op} {addr}/{prefix_len} on {ifname}: {source}")]
    Rtnl {
        op: &'static str,
        addr: IpAddr,
        prefix_len: u8,
        ifname: String,
        #[source]
        source: RtnlError,
    },
    #[error(transparent)]
    List(RtnlError),
    #[error("prefix length {prefix_len} is too long for {addr}")]
    BadPrefix { addr: IpAddr, prefix_len: u8 },
    #[error("label {label:?} must be {ifname:?} or start with \"{ifname}:\", at most 15 bytes")]
    BadLabel { label: String, ifname: String },
    #[error("label {label:?} given for IPv6 address {addr}: IPv6 addresses have no labels")]
    LabelOnIpv6 { label: String, addr: IpAddr },
}

/// An address to put on (or take off) an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub ifname: String,
    /// IPv4 only: `eth0:0`, `lo:123` (must be the interface name or start with `<ifname>:`).
    pub label: Option<String>,
    pub scope: Scope,
    /// IPv4 broadcast address (IFA_BROADCAST).
    pub broadcast: Option<Ipv4Addr>,
}

impl Vip {
    /// A host address (/32 or /128), global scope, no label.
    pub fn host(addr: IpAddr, ifname: &str) -> Self {
        Vip {
            addr,
            prefix_len: if addr.is_ipv4() { 32 } else { 128 },
            ifname: ifname.to_owned(),
            label: None,
            scope: Scope::Global,
            broadcast: None,
        }
    }

    pub fn with_prefix(mut self, prefix_len: u8) -> Self {
        self.prefix_len = prefix_len;
        self
    }

    pub fn with_label(mut self, label: &str) -> Self {
        self.label = Some(label.to_owned());
        self
    }

    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    pub fn with_broadcast(mut self, broadcast: Option<Ipv4Addr>) -> Self {
        self.broadcast = broadcast;
        self
    }

    fn validate(&self) -> Result<(), AddrError> {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix_len > max {
            return Err(AddrError::BadPrefix { addr: self.addr, prefix_len: self.prefix_len });
        }
        if let Some(label) = &self.label {
            if self.addr.is_ipv6() {
                return Err(AddrError::LabelOnIpv6 { label: label.clone(), addr: self.addr });
            }
            // Same rule as iproute2; the kernel stores at most IFNAMSIZ-1 bytes.
            let ok = label.len() <= 15 && (label == &self.ifname || label.starts_with(&format!("{}:", self.ifname)));
            if !ok {
                return Err(AddrError::BadLabel { label: label.clone(), ifname: self.ifname.clone() });
            }
        }
        Ok(())
    }

    fn message(&self, ifindex: u32) -> Result<Ifaddrmsg, RtnlError> {
        let bad = |e: String| RtnlError::Malformed { op: "build address", detail: e };
        let mut attrs = RtBuffer::new();
        let octets: Vec<u8> = match self.addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        for ty in [Ifa::Local, Ifa::Address] {
            attrs.push(
                RtattrBuilder::default().rta_type(ty).rta_payload(Buffer::from(octets.clone())).build().map_err(|e| bad(e.to_string()))?,
            );
        }
        if let Some(b) = self.broadcast {
            attrs.push(
                RtattrBuilder::default()
                    .rta_type(Ifa::Broadcast)
                    .rta_payload(Buffer::from(b.octets().to_vec()))
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            );
        }
        if let Some(label) = &self.label {
            attrs.push(RtattrBuilder::default().rta_type(Ifa::Label).rta_payload(label.as_str()).build().map_err(|e| bad(e.to_string()))?);
        }
        let (family, flags) = match self.addr {
            IpAddr::V4(_) => (RtAddrFamily::Inet, IfaF::empty()),
            // No duplicate address detection: a VIP must be usable at once after takeover.
            IpAddr::V6(_) => (RtAddrFamily::Inet6, IfaF::NODAD),
        };
        IfaddrmsgBuilder::default()
            .ifa_family(family)
            .ifa_prefixlen(self.prefix_len)
            .ifa_flags(flags)
            .ifa_scope(rt_scope(self.scope))
            .ifa_index(ifindex)
            .rtattrs(attrs)
            .build()
            .map_err(|e| bad(e.to_string()))
    }
}

pub(super) fn rt_scope(scope: Scope) -> RtScope {
    match scope {
        Scope::Global => RtScope::Universe,
        Scope::Site => RtScope::Site,
        Scope::Link => RtScope::Link,
        Scope::Host => RtScope::Host,
    }
}

/// Add the address. Returns `true` if it was added, `false` if it was already there (EEXIST).
pub fn add_address(vip: &Vip) -> Result<bool, AddrError> {
    vip.validate()?;
    let idx = link::ifindex(&vip.ifname)?;
    let err = |source| AddrError::Rtnl { op: "adding", addr: vip.addr, prefix_len: vip.prefix_len, ifname: vip.ifname.clone(), source };
    let msg = vip.message(idx).map_err(err)?;
    match rtnl::request("newaddr", Rtm::Newaddr, NlmF::CREATE | NlmF::EXCL, msg) {
        Ok(_) => Ok(true),
        Err(e) if e.errno() == Some(libc::EEXIST) => Ok(false),
        Err(e) => Err(err(e)),
    }
}

/// Delete the address (matched by address and prefix length). Returns `true` if it was
/// removed, `false` if it was not there (EADDRNOTAVAIL).
pub fn del_address(vip: &Vip) -> Result<bool, AddrError> {
    vip.validate()?;
    let idx = link::ifindex(&vip.ifname)?;
    let err = |source| AddrError::Rtnl { op: "deleting", addr: vip.addr, prefix_len: vip.prefix_len, ifname: vip.ifname.clone(), source };
    // The label is not used for matching: a VIP added with another label is still ours.
    let mut unlabelled = vip.clone();
    unlabelled.label = None;
    let msg = unlabelled.message(idx).map_err(err)?;
    match rtnl::request("deladdr", Rtm::Deladdr, NlmF::empty(), msg) {
        Ok(_) => Ok(true),
        Err(e) if e.errno() == Some(libc::EADDRNOTAVAIL) => Ok(false),
        Err(e) => Err(err(e)),
    }
}

/// All addresses (both families) on the interface `ifname`.
pub fn list_addresses(ifname: &str) -> Result<Vec<AddrInfo>, AddrError> {
    let idx = link::ifindex(ifname)?;
    list_addresses_by_index(idx)
}

/// All addresses (both families) on the interface with index `ifindex`.
pub fn list_addresses_by_index(ifindex: u32) -> Result<Vec<AddrInfo>, AddrError> {
    Ok(list_all_addresses()?.into_iter().filter(|a| a.ifindex == ifindex).collect())
}

/// All addresses on all interfaces of the calling thread's namespace.
pub fn list_all_addresses() -> Result<Vec<AddrInfo>, AddrError> {
    let req = IfaddrmsgBuilder::default()
        .ifa_family(RtAddrFamily::Unspecified)
        .ifa_prefixlen(0)
        .ifa_scope(RtScope::Universe)
        .ifa_index(0)
        .build()
        .map_err(|e| AddrError::List(RtnlError::Malformed { op: "getaddr", detail: e.to_string() }))?;
    let replies = rtnl::request("getaddr dump", Rtm::Getaddr, NlmF::DUMP, req).map_err(AddrError::List)?;
    rtnl_msg::addresses("getaddr dump", &replies).map_err(|e| AddrError::List(e.into()))
}

/// The interface's primary IPv4 address (the first one that is not secondary), which
/// VRRPv2/v3 over IPv4 use as the advert source.
pub fn primary_ipv4(ifindex: u32) -> Result<Option<Ipv4Addr>, AddrError> {
    Ok(list_addresses_by_index(ifindex)?.into_iter().find_map(|a| match a.addr {
        IpAddr::V4(v4) if !a.is_secondary() => Some(v4),
        _ => None,
    }))
}

/// The interface's usable (not tentative, not DAD-failed) IPv6 link-local address, which
/// VRRPv3 over IPv6 must use as the advert source (RFC 5798 5.1.2.1).
pub fn link_local_ipv6(ifindex: u32) -> Result<Option<Ipv6Addr>, AddrError> {
    Ok(list_addresses_by_index(ifindex)?.into_iter().find_map(|a| match a.addr {
        IpAddr::V6(v6) if is_link_local(&v6) && !a.is_tentative() && !a.is_dad_failed() => Some(v6),
        _ => None,
    }))
}

/// An address appearing on or disappearing from an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrEvent {
    /// `true` for added (or changed, e.g. no longer tentative), `false` for removed.
    pub present: bool,
    pub info: AddrInfo,
}

/// Watches RTNLGRP_IPV4_IFADDR and RTNLGRP_IPV6_IFADDR: a VIP removed by hand, an IPv6
/// link-local address finishing DAD (becoming usable as the VRRP source).
pub struct AddrWatcher {
    sub: Subscription,
    known: HashMap<(u32, IpAddr, u8), AddrInfo>,
    initial: Vec<AddrInfo>,
    pending: VecDeque<AddrEvent>,
}

impl AddrWatcher {
    /// Subscribe, then dump. Must be called inside a tokio runtime; the socket belongs to
    /// the calling thread's namespace.
    pub fn new() -> Result<Self, AddrError> {
        let sub = Subscription::new(&[libc::RTNLGRP_IPV4_IFADDR, libc::RTNLGRP_IPV6_IFADDR]).map_err(AddrError::List)?;
        let initial = list_all_addresses()?;
        let known = initial.iter().map(|a| (key(a), a.clone())).collect();
        Ok(AddrWatcher { sub, known, initial, pending: VecDeque::new() })
    }

    /// Every address as it was when the watcher started.
    pub fn initial(&self) -> &[AddrInfo] {
        &self.initial
    }

    /// Wait for the next change. Errors are fatal for this watcher.
    pub async fn next(&mut self) -> Result<AddrEvent, AddrError> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Ok(ev);
            }
            let changes = match self.sub.next("address watch").await.map_err(AddrError::List)? {
                Datagram::Messages(bytes) => rtnl_msg::address_changes(bytes).map_err(|e| AddrError::List(e.into()))?,
                Datagram::Overrun => {
                    tracing::warn!("address watcher overrun, re-reading addresses");
                    let now = list_all_addresses()?;
                    let gone: Vec<_> = self.known.keys().filter(|k| !now.iter().any(|a| key(a) == **k)).cloned().collect();
                    for k in gone {
                        if let Some(info) = self.known.remove(&k) {
                            self.pending.push_back(AddrEvent { present: false, info });
                        }
                    }
                    for a in now {
                        self.seen(a);
                    }
                    continue;
                }
            };
            for Change { present, info } in changes {
                if present {
                    self.seen(info);
                } else {
                    self.known.remove(&key(&info));
                    self.pending.push_back(AddrEvent { present: false, info });
                }
            }
        }
    }

    fn seen(&mut self, info: AddrInfo) {
        if self.known.get(&key(&info)) != Some(&info) {
            self.known.insert(key(&info), info.clone());
            self.pending.push_back(AddrEvent { present: true, info });
        }
    }
}

fn key(a: &AddrInfo) -> (u32, IpAddr, u8) {
    (a.ifindex, a.addr, a.prefix_len)
}

pub(crate) fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_rules() {
        let v = Vip::host("192.0.2.10".parse().unwrap(), "eth0");
        assert!(v.clone().with_label("eth0:0").validate().is_ok());
        assert!(v.clone().with_label("eth0").validate().is_ok());
        assert!(matches!(v.clone().with_label("eth1:0").validate(), Err(AddrError::BadLabel { .. })));
        assert!(matches!(v.clone().with_label("eth0x").validate(), Err(AddrError::BadLabel { .. })));
        assert!(matches!(v.clone().with_label("eth0:0123456789ab").validate(), Err(AddrError::BadLabel { .. })));
        let v6 = Vip::host("2001:db8::10".parse().unwrap(), "eth0").with_label("eth0:1");
        assert!(matches!(v6.validate(), Err(AddrError::LabelOnIpv6 { .. })));
        assert!(matches!(Vip::host("192.0.2.1".parse().unwrap(), "lo").with_prefix(33).validate(), Err(AddrError::BadPrefix { .. })));
    }

    #[test]
    fn loopback_has_127_0_0_1() {
        let addrs = list_addresses("lo").unwrap();
        assert!(addrs.iter().any(|a| a.addr == IpAddr::V4(Ipv4Addr::LOCALHOST) && a.prefix_len == 8));
    }

    #[test]
    fn link_local_check() {
        assert!(is_link_local(&"fe80::1".parse().unwrap()));
        assert!(!is_link_local(&"2001:db8::1".parse().unwrap()));
    }
}
