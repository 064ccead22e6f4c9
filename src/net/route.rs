//! IP routes over rtnetlink: add and delete the routes keepalived's `virtual_routes` names
//! (unicast via a gateway or on a link, blackhole, unreachable, prohibit; any table, metric,
//! preferred source), which a VRRP master installs while it is master.

use std::fmt::Write as _;
use std::net::IpAddr;

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{RtAddrFamily, RtScope, RtTable, Rta, Rtm, Rtn, Rtprot};
use neli::rtnl::{RtattrBuilder, Rtmsg, RtmsgBuilder};
use neli::types::{Buffer, RtBuffer};
use thiserror::Error;

use super::addr::rt_scope;
use super::link::{self, LinkError};
use super::rtnl::{self, RtnlError};
pub use super::rtnl_msg::Scope;

/// What the kernel does with a packet matching the route (`rtm_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Forwarded via the gateway or out of the link.
    Unicast,
    /// Dropped silently.
    Blackhole,
    /// Dropped with ICMP host unreachable.
    Unreachable,
    /// Dropped with ICMP administratively prohibited.
    Prohibit,
}

impl RouteKind {
    fn rtn(self) -> Rtn {
        match self {
            RouteKind::Unicast => Rtn::Unicast,
            RouteKind::Blackhole => Rtn::Blackhole,
            RouteKind::Unreachable => Rtn::Unreachable,
            RouteKind::Prohibit => Rtn::Prohibit,
        }
    }

    /// The keyword `ip route` puts before the destination; none for unicast.
    fn keyword(self) -> Option<&'static str> {
        match self {
            RouteKind::Unicast => None,
            RouteKind::Blackhole => Some("blackhole"),
            RouteKind::Unreachable => Some("unreachable"),
            RouteKind::Prohibit => Some("prohibit"),
        }
    }
}

#[derive(Debug, Error)]
pub enum RouteError {
    /// The route's `dev` does not exist (in the calling thread's namespace).
    #[error("{op} route {route}: {source}")]
    Link {
        op: &'static str,
        route: String,
        #[source]
        source: LinkError,
    },
    /// The kernel refused the request.
    #[error("{op} route {route}: {source}")]
    Rtnl {
        op: &'static str,
        route: String,
        #[source]
        source: RtnlError,
    },
    #[error("route {route}: prefix length {prefix_len} is too long for {dst}")]
    BadPrefix { route: String, dst: IpAddr, prefix_len: u8 },
    #[error("route {route}: {what} {addr} is not of the same family as {dst}")]
    FamilyMismatch { route: String, what: &'static str, addr: IpAddr, dst: IpAddr },
    #[error("route {route}: a {kind} route takes no {what}")]
    NotForKind { route: String, kind: &'static str, what: &'static str },
}

/// A route as `ip route` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Network address; host bits are sent as given (the kernel refuses them for IPv4).
    pub dst: IpAddr,
    /// 0..=32 for IPv4, 0..=128 for IPv6.
    pub prefix_len: u8,
    /// Gateway (RTA_GATEWAY), same family as `dst`.
    pub via: Option<IpAddr>,
    /// Outgoing interface by name (RTA_OIF).
    pub dev: Option<String>,
    /// Preferred source address (RTA_PREFSRC), same family as `dst`.
    pub src: Option<IpAddr>,
    /// `None`: as ip(8) picks: link for an IPv4 unicast route with `dev` and no `via`,
    /// universe (global) otherwise; host is never implied.
    pub scope: Option<Scope>,
    /// `None`: the main table (254).
    pub table: Option<u32>,
    /// RTA_PRIORITY; `None` leaves the kernel's default (0 for IPv4, 1024 for IPv6).
    pub metric: Option<u32>,
    pub kind: RouteKind,
}

impl Route {
    /// A unicast route to `dst/prefix_len` with nothing else set.
    pub fn to(dst: IpAddr, prefix_len: u8) -> Route {
        Route { dst, prefix_len, via: None, dev: None, src: None, scope: None, table: None, metric: None, kind: RouteKind::Unicast }
    }
}

/// The protocol routes are added with and deleted by: RTPROT_KEEPALIVED, what keepalived's
/// virtual routes carry (`ip route` shows "proto keepalived"), so that `ip route flush proto
/// keepalived` clears them as before and a delete never takes an operator's own route.
const PROTOCOL: u8 = 18;

/// Which request a message is built for: they differ in flags and scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Del,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Del => "delete",
        }
    }
}

impl Route {
    /// How `ip route` would print it, roughly: `blackhole 203.0.113.0/24`,
    /// `203.0.113.0/24 via 192.0.2.254 dev eth0 table 100 metric 5`.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(k) = self.kind.keyword() {
            s.push_str(k);
            s.push(' ');
        }
        let _ = write!(s, "{}/{}", self.dst, self.prefix_len);
        if let Some(via) = self.via {
            let _ = write!(s, " via {via}");
        }
        if let Some(dev) = &self.dev {
            let _ = write!(s, " dev {dev}");
        }
        if let Some(src) = self.src {
            let _ = write!(s, " src {src}");
        }
        if let Some(scope) = self.scope {
            let _ = write!(s, " scope {}", scope_name(scope));
        }
        if let Some(table) = self.table {
            let _ = write!(s, " table {table}");
        }
        if let Some(metric) = self.metric {
            let _ = write!(s, " metric {metric}");
        }
        s
    }

    /// The scope sent when none is given, as ip(8) picks it: link for an IPv4 unicast
    /// route with a device and no gateway (the destination is on the link), universe
    /// otherwise; never host. IPv6 gets universe always: the kernel ignores the scope of
    /// IPv6 routes.
    fn scope_or_default(&self) -> RtScope {
        match self.scope {
            Some(s) => rt_scope(s),
            None if self.dst.is_ipv4() && self.kind == RouteKind::Unicast && self.via.is_none() && self.dev.is_some() => RtScope::Link,
            None => RtScope::Universe,
        }
    }

    fn validate(&self) -> Result<(), RouteError> {
        let max = if self.dst.is_ipv4() { 32 } else { 128 };
        if self.prefix_len > max {
            return Err(RouteError::BadPrefix { route: self.describe(), dst: self.dst, prefix_len: self.prefix_len });
        }
        for (what, addr) in [("gateway", self.via), ("source", self.src)] {
            if let Some(a) = addr
                && a.is_ipv4() != self.dst.is_ipv4()
            {
                return Err(RouteError::FamilyMismatch { route: self.describe(), what, addr: a, dst: self.dst });
            }
        }
        if let Some(kind) = self.kind.keyword() {
            // These routes end at the kernel: no next hop to name.
            let what = match (&self.via, &self.dev) {
                (Some(_), _) => Some("gateway"),
                (None, Some(_)) => Some("device"),
                (None, None) => None,
            };
            if let Some(what) = what {
                return Err(RouteError::NotForKind { route: self.describe(), kind, what });
            }
        }
        Ok(())
    }

    /// The RTM_NEWROUTE / RTM_DELROUTE payload, `oif` being `dev`'s index. Delete carries
    /// the same attributes and protocol so that only this route, as added here, matches (an
    /// operator's identical static route is left alone), with scope "nowhere" (any), as
    /// `ip route del` sends.
    fn message(&self, oif: Option<u32>, op: Op) -> Result<Rtmsg, RtnlError> {
        let bad = |e: String| RtnlError::Malformed { op: "build route", detail: e };
        let mut attrs: Vec<(Rta, Vec<u8>)> = vec![(Rta::Dst, octets(self.dst))];
        if let Some(via) = self.via {
            attrs.push((Rta::Gateway, octets(via)));
        }
        if let Some(oif) = oif {
            attrs.push((Rta::Oif, oif.to_ne_bytes().to_vec()));
        }
        if let Some(src) = self.src {
            attrs.push((Rta::Prefsrc, octets(src)));
        }
        if let Some(metric) = self.metric {
            attrs.push((Rta::Priority, metric.to_ne_bytes().to_vec()));
        }
        let (table, table_attr) = table_encoding(self.table);
        if let Some(t) = table_attr {
            attrs.push((Rta::Table, t.to_ne_bytes().to_vec()));
        }
        let rtattrs = attrs
            .into_iter()
            .map(|(ty, payload)| RtattrBuilder::default().rta_type(ty).rta_payload(Buffer::from(payload)).build())
            .collect::<Result<RtBuffer<Rta, Buffer>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let protocol = Rtprot::from(PROTOCOL);
        let scope = match op {
            Op::Add => self.scope_or_default(),
            Op::Del => RtScope::Nowhere,
        };
        RtmsgBuilder::default()
            .rtm_family(if self.dst.is_ipv4() { RtAddrFamily::Inet } else { RtAddrFamily::Inet6 })
            .rtm_dst_len(self.prefix_len)
            .rtm_src_len(0)
            .rtm_tos(0)
            .rtm_table(table)
            .rtm_protocol(protocol)
            .rtm_scope(scope)
            .rtm_type(self.kind.rtn())
            .rtattrs(rtattrs)
            .build()
            .map_err(|e| bad(e.to_string()))
    }

    /// Validate, resolve `dev` and build the message for `op`.
    fn request(&self, op: Op) -> Result<Rtmsg, RouteError> {
        self.validate()?;
        let oif = match &self.dev {
            Some(dev) => Some(link::ifindex(dev).map_err(|source| RouteError::Link { op: op.verb(), route: self.describe(), source })?),
            None => None,
        };
        self.message(oif, op).map_err(|source| RouteError::Rtnl { op: op.verb(), route: self.describe(), source })
    }
}

/// `rtm_table` and the RTA_TABLE attribute for a table, as iproute2 encodes them: the
/// header's byte holds ids below 256 (others go as unspecified), and a table given is also
/// sent in full as RTA_TABLE, which the kernel prefers.
fn table_encoding(table: Option<u32>) -> (RtTable, Option<u32>) {
    match table {
        None => (RtTable::Main, None),
        Some(t) => match u8::try_from(t) {
            Ok(byte) => (RtTable::from(byte), Some(t)),
            Err(_) => (RtTable::Unspec, Some(t)),
        },
    }
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Global => "global",
        Scope::Site => "site",
        Scope::Link => "link",
        Scope::Host => "host",
    }
}

/// Add the route. Returns `true` if it was added, `false` if it was already there (EEXIST:
/// the kernel's notion of "there" is a route to the same prefix with the same metric in
/// the same table, whatever its gateway or device).
pub fn add_route(r: &Route) -> Result<bool, RouteError> {
    let msg = r.request(Op::Add)?;
    match rtnl::request("newroute", Rtm::Newroute, NlmF::CREATE | NlmF::EXCL, msg) {
        Ok(_) => Ok(true),
        Err(e) if e.errno() == Some(libc::EEXIST) => Ok(false),
        Err(source) => Err(RouteError::Rtnl { op: Op::Add.verb(), route: r.describe(), source }),
    }
}

/// Delete the route (matched by every attribute it names). Returns `true` if it was
/// removed, `false` if it was not there (ESRCH, or ENOENT).
pub fn del_route(r: &Route) -> Result<bool, RouteError> {
    let msg = r.request(Op::Del)?;
    match rtnl::request("delroute", Rtm::Delroute, NlmF::empty(), msg) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.errno(), Some(libc::ESRCH | libc::ENOENT)) => Ok(false),
        Err(source) => Err(RouteError::Rtnl { op: Op::Del.verb(), route: r.describe(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, prefix_len: u8) -> Route {
        Route::to(dst.parse().unwrap(), prefix_len)
    }

    fn attrs(m: &Rtmsg) -> Vec<(Rta, Vec<u8>)> {
        m.rtattrs().as_ref().iter().map(|a| (*a.rta_type(), a.rta_payload().as_ref().to_vec())).collect()
    }

    fn attr(m: &Rtmsg, ty: Rta) -> Option<Vec<u8>> {
        attrs(m).into_iter().find(|(t, _)| *t == ty).map(|(_, p)| p)
    }

    #[test]
    fn gateway_route_message() {
        let r = Route {
            via: Some("192.0.2.254".parse().unwrap()),
            dev: Some("eth0".into()),
            src: Some("192.0.2.1".parse().unwrap()),
            metric: Some(5),
            ..route("203.0.113.0", 24)
        };
        let m = r.message(Some(7), Op::Add).unwrap();
        assert_eq!(*m.rtm_family(), RtAddrFamily::Inet);
        assert_eq!(*m.rtm_dst_len(), 24);
        assert_eq!(*m.rtm_table(), RtTable::Main);
        assert_eq!(*m.rtm_protocol(), Rtprot::from(18));
        assert_eq!(*m.rtm_scope(), RtScope::Universe);
        assert_eq!(*m.rtm_type(), Rtn::Unicast);
        assert_eq!(
            attrs(&m),
            vec![
                (Rta::Dst, vec![203, 0, 113, 0]),
                (Rta::Gateway, vec![192, 0, 2, 254]),
                (Rta::Oif, 7u32.to_ne_bytes().to_vec()),
                (Rta::Prefsrc, vec![192, 0, 2, 1]),
                (Rta::Priority, 5u32.to_ne_bytes().to_vec()),
            ]
        );
    }

    #[test]
    fn delete_matches_our_protocol_and_any_scope_with_the_same_attributes() {
        let r = Route { via: Some("192.0.2.254".parse().unwrap()), table: Some(100), metric: Some(7), ..route("203.0.113.0", 24) };
        let add = r.message(None, Op::Add).unwrap();
        let del = r.message(None, Op::Del).unwrap();
        assert_eq!(*del.rtm_protocol(), *add.rtm_protocol());
        assert_eq!(*del.rtm_scope(), RtScope::Nowhere);
        assert_eq!(attrs(&add), attrs(&del));
        assert_eq!((*del.rtm_table(), *del.rtm_type(), *del.rtm_dst_len()), (*add.rtm_table(), *add.rtm_type(), *add.rtm_dst_len()));
    }

    #[test]
    fn ipv6_message() {
        let r = Route { via: Some("2001:db8::fe".parse().unwrap()), ..route("2001:db8:1::", 48) };
        let m = r.message(None, Op::Add).unwrap();
        assert_eq!(*m.rtm_family(), RtAddrFamily::Inet6);
        assert_eq!(*m.rtm_dst_len(), 48);
        let gw: std::net::Ipv6Addr = "2001:db8::fe".parse().unwrap();
        assert_eq!(attr(&m, Rta::Gateway), Some(gw.octets().to_vec()));
        assert_eq!(attr(&m, Rta::Dst).map(|d| d.len()), Some(16));
        assert_eq!(attr(&m, Rta::Oif), None);
    }

    #[test]
    fn default_scope_as_ip_picks_it() {
        let on_link = Route { dev: Some("eth0".into()), ..route("198.51.100.0", 25) };
        assert_eq!(on_link.scope_or_default(), RtScope::Link);
        let via = Route { via: Some("192.0.2.254".parse().unwrap()), ..on_link.clone() };
        assert_eq!(via.scope_or_default(), RtScope::Universe);
        let blackhole = Route { kind: RouteKind::Blackhole, ..route("198.51.100.128", 25) };
        assert_eq!(blackhole.scope_or_default(), RtScope::Universe);
        let v6 = Route { dev: Some("eth0".into()), ..route("2001:db8:1::", 48) };
        assert_eq!(v6.scope_or_default(), RtScope::Universe);
        // Given scopes are sent as given; host is never implied.
        let host = Route { scope: Some(Scope::Host), ..on_link.clone() };
        assert_eq!(host.scope_or_default(), RtScope::Host);
        let global = Route { scope: Some(Scope::Global), ..on_link };
        assert_eq!(global.scope_or_default(), RtScope::Universe);
        assert_eq!(*global.message(Some(2), Op::Add).unwrap().rtm_scope(), RtScope::Universe);
    }

    #[test]
    fn table_encoding_follows_iproute2() {
        assert_eq!(table_encoding(None), (RtTable::Main, None));
        assert_eq!(table_encoding(Some(254)), (RtTable::Main, Some(254)));
        assert_eq!(table_encoding(Some(100)), (RtTable::UnrecognizedConst(100), Some(100)));
        assert_eq!(table_encoding(Some(255)), (RtTable::Local, Some(255)));
        assert_eq!(table_encoding(Some(256)), (RtTable::Unspec, Some(256)));
        assert_eq!(table_encoding(Some(100_000)), (RtTable::Unspec, Some(100_000)));

        let main = route("203.0.113.0", 24).message(None, Op::Add).unwrap();
        assert_eq!(attr(&main, Rta::Table), None);
        let big = Route { table: Some(1000), ..route("203.0.113.0", 24) }.message(None, Op::Add).unwrap();
        assert_eq!(*big.rtm_table(), RtTable::Unspec);
        assert_eq!(attr(&big, Rta::Table), Some(1000u32.to_ne_bytes().to_vec()));
    }

    #[test]
    fn kinds_map_to_route_types() {
        for (kind, rtn) in [
            (RouteKind::Unicast, Rtn::Unicast),
            (RouteKind::Blackhole, Rtn::Blackhole),
            (RouteKind::Unreachable, Rtn::Unreachable),
            (RouteKind::Prohibit, Rtn::Prohibit),
        ] {
            let r = Route { kind, ..route("198.51.100.128", 25) };
            assert_eq!(*r.message(None, Op::Add).unwrap().rtm_type(), rtn);
        }
    }

    #[test]
    fn describe_reads_like_ip_route() {
        assert_eq!(Route { kind: RouteKind::Blackhole, ..route("203.0.113.0", 24) }.describe(), "blackhole 203.0.113.0/24");
        let r = Route {
            via: Some("192.0.2.254".parse().unwrap()),
            dev: Some("eth0".into()),
            table: Some(100),
            metric: Some(5),
            ..route("203.0.113.0", 24)
        };
        assert_eq!(r.describe(), "203.0.113.0/24 via 192.0.2.254 dev eth0 table 100 metric 5");
        let r = Route {
            src: Some("192.0.2.1".parse().unwrap()),
            scope: Some(Scope::Link),
            dev: Some("eth0".into()),
            ..route("198.51.100.0", 25)
        };
        assert_eq!(r.describe(), "198.51.100.0/25 dev eth0 src 192.0.2.1 scope link");
        assert_eq!(route("2001:db8:1::", 48).describe(), "2001:db8:1::/48");
    }

    #[test]
    fn validation() {
        assert!(route("0.0.0.0", 0).validate().is_ok());
        assert!(route("2001:db8::", 128).validate().is_ok());
        assert!(matches!(route("203.0.113.0", 33).validate(), Err(RouteError::BadPrefix { prefix_len: 33, .. })));
        assert!(matches!(route("2001:db8::", 129).validate(), Err(RouteError::BadPrefix { .. })));

        let mixed = Route { via: Some("2001:db8::fe".parse().unwrap()), ..route("203.0.113.0", 24) };
        let e = mixed.validate().unwrap_err();
        assert!(matches!(e, RouteError::FamilyMismatch { what: "gateway", .. }), "{e}");
        assert!(e.to_string().contains("203.0.113.0/24") && e.to_string().contains("2001:db8::fe"), "{e}");
        let mixed_src = Route { src: Some("192.0.2.1".parse().unwrap()), ..route("2001:db8:1::", 48) };
        assert!(matches!(mixed_src.validate(), Err(RouteError::FamilyMismatch { what: "source", .. })));

        let bh_via = Route { kind: RouteKind::Blackhole, via: Some("192.0.2.254".parse().unwrap()), ..route("203.0.113.0", 24) };
        let e = bh_via.validate().unwrap_err();
        assert!(matches!(e, RouteError::NotForKind { kind: "blackhole", what: "gateway", .. }), "{e}");
        let unr_dev = Route { kind: RouteKind::Unreachable, dev: Some("eth0".into()), ..route("203.0.113.0", 24) };
        assert!(matches!(unr_dev.validate(), Err(RouteError::NotForKind { kind: "unreachable", what: "device", .. })));
        // A source and a table are fine on a blackhole route.
        let bh = Route { kind: RouteKind::Prohibit, src: Some("192.0.2.1".parse().unwrap()), table: Some(7), ..route("203.0.113.0", 24) };
        assert!(bh.validate().is_ok());
    }

    #[test]
    fn bad_route_fails_before_any_netlink_call() {
        // An interface that cannot exist would be looked up if validation came second.
        let r = Route { dev: Some("no-such-link-x".into()), ..route("203.0.113.0", 40) };
        assert!(matches!(add_route(&r), Err(RouteError::BadPrefix { .. })));
        assert!(matches!(del_route(&r), Err(RouteError::BadPrefix { .. })));
    }

    #[test]
    fn unknown_device_names_the_route() {
        let r = Route { dev: Some("lvsd-nope0".into()), ..route("203.0.113.0", 24) };
        let e = add_route(&r).unwrap_err();
        assert!(matches!(e, RouteError::Link { .. }), "{e}");
        assert_eq!(e.to_string(), "add route 203.0.113.0/24 dev lvsd-nope0: no such interface \"lvsd-nope0\"");
    }
}
