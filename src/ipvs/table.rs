//! The IPVS table as plain data: what the kernel holds, or what the policy wants it to hold.
//!
//! Field meanings and numeric values follow `include/uapi/linux/ip_vs.h`.

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// Address family of a service or destination (AF_INET / AF_INET6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Inet,
    Inet6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() { Family::Inet } else { Family::Inet6 }
    }
    /// The kernel's AF_* number.
    pub fn af(self) -> u16 {
        match self {
            Family::Inet => 2,
            Family::Inet6 => 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// IPPROTO_* number.
    pub fn number(self) -> u16 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }
    pub fn from_number(n: u16) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }
    /// The name ipvsadm prints.
    pub fn ipvsadm_name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// How a virtual service is identified: protocol + address + port, or a firewall mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ServiceKey {
    Addr { protocol: Protocol, addr: SocketAddr },
    Fwmark { mark: u32, family: Family },
}

impl ServiceKey {
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(&addr.ip()),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }
}

/// ipvsadm's sort order (libipvs `ipvs_cmp_services`): fwmark, family, protocol, address, port,
/// with addresses compared as [`cmp_addr_port`] says.
impl Ord for ServiceKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        fn parts(k: &ServiceKey) -> (u32, u16, u16, Option<SocketAddr>) {
            match k {
                ServiceKey::Addr { protocol, addr } => (0, Family::of(&addr.ip()).af(), protocol.number(), Some(*addr)),
                ServiceKey::Fwmark { mark, family } => (*mark, family.af(), 0, None),
            }
        }
        // The usual case, two address services, without building the general tuple (a
        // service table's maps compare keys often): mark 0 on both sides, then the same fields.
        if let (ServiceKey::Addr { protocol: p1, addr: a1 }, ServiceKey::Addr { protocol: p2, addr: a2 }) = (self, other) {
            return a1.is_ipv6().cmp(&a2.is_ipv6()).then(p1.number().cmp(&p2.number())).then_with(|| cmp_addr_port(a1, a2));
        }
        let (m1, f1, p1, a1) = parts(self);
        let (m2, f2, p2, a2) = parts(other);
        (m1 as i64).cmp(&(m2 as i64)).then(f1.cmp(&f2)).then(p1.cmp(&p2)).then_with(|| match (a1, a2) {
            (Some(a), Some(b)) => cmp_addr_port(&a, &b),
            _ => std::cmp::Ordering::Equal,
        })
    }
}
impl PartialOrd for ServiceKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Family, then the address's host-order 32-bit words, each compared as a C `int`, then the
/// port: a total order, which the maps and sorted lists keyed by it need. libipvs (and so
/// ipvsadm's listing) compares the same words by the sign of their wrapping difference,
/// which is no order at all once two words are 2^31 or more apart (for IPv4 10.0.0.1 >
/// 192.0.2.1 > 100.64.0.1 > 10.0.0.1), and a map or binary search built on it misses keys it
/// holds. The two agree whenever a word's difference does not wrap as signed numbers, which
/// covers the usual tables (10/8 beside 192.168/16, 2001:db8::10 beside 2001:db8:ffff::1),
/// so listings still come out as ipvsadm's.
pub fn cmp_addr_port(a: &SocketAddr, b: &SocketAddr) -> std::cmp::Ordering {
    // Host-order words, as signed numbers. No allocation: a resync sorts every destination.
    fn words(ip: &IpAddr) -> [i32; 4] {
        match ip {
            IpAddr::V4(v4) => [u32::from(*v4) as i32, 0, 0, 0],
            IpAddr::V6(v6) => {
                let s = v6.segments().map(u32::from);
                [s[0] << 16 | s[1], s[2] << 16 | s[3], s[4] << 16 | s[5], s[6] << 16 | s[7]].map(|w| w as i32)
            }
        }
    }
    if let (SocketAddr::V4(x), SocketAddr::V4(y)) = (a, b) {
        return (u32::from(*x.ip()) as i32).cmp(&(u32::from(*y.ip()) as i32)).then(x.port().cmp(&y.port()));
    }
    let family = |ip: &IpAddr| ip.is_ipv6();
    family(&a.ip()).cmp(&family(&b.ip())).then_with(|| words(&a.ip()).cmp(&words(&b.ip()))).then(a.port().cmp(&b.port()))
}

/// IP_VS_SVC_F_* flags.
pub mod svc_flags {
    pub const PERSISTENT: u32 = 0x0001;
    pub const HASHED: u32 = 0x0002;
    pub const ONEPACKET: u32 = 0x0004;
    pub const SCHED1: u32 = 0x0008;
    pub const SCHED2: u32 = 0x0010;
    pub const SCHED3: u32 = 0x0020;
    /// sh-fallback / mh-fallback share SCHED1; sh-port / mh-port share SCHED2.
    pub const SCHED_SH_FALLBACK: u32 = SCHED1;
    pub const SCHED_SH_PORT: u32 = SCHED2;
    pub const SCHED_MH_FALLBACK: u32 = SCHED1;
    pub const SCHED_MH_PORT: u32 = SCHED2;
}

/// Settings of a virtual service that can be edited in place (IPVS_CMD_SET_SERVICE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceConf {
    /// Scheduler name as the kernel knows it ("wlc", "rr", ...).
    pub scheduler: String,
    /// IP_VS_SVC_F_* flags that matter to the user: PERSISTENT, ONEPACKET, SCHED1..3.
    pub flags: u32,
    /// Persistence timeout in seconds (only meaningful with PERSISTENT).
    pub timeout: u32,
    /// IPv4: the netmask as a host-order u32 (0xffffffff = /32); IPv6: a prefix length (128).
    pub netmask: u32,
    /// Persistence engine ("sip"), if any.
    pub pe_name: Option<String>,
}

impl ServiceConf {
    pub fn new(scheduler: &str, family: Family) -> ServiceConf {
        ServiceConf { scheduler: scheduler.to_string(), flags: 0, timeout: 0, netmask: default_netmask(family), pe_name: None }
    }
    pub fn persistent(&self) -> bool {
        self.flags & svc_flags::PERSISTENT != 0
    }
}

pub fn default_netmask(family: Family) -> u32 {
    match family {
        Family::Inet => 0xffff_ffff,
        Family::Inet6 => 128,
    }
}

/// IP_VS_CONN_F_FWD_MASK values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    /// IP_VS_CONN_F_MASQ = 0
    Nat,
    /// IP_VS_CONN_F_LOCALNODE = 1
    Local,
    /// IP_VS_CONN_F_TUNNEL = 2
    Tun,
    /// IP_VS_CONN_F_DROUTE = 3
    Dr,
    /// IP_VS_CONN_F_BYPASS = 4
    Bypass,
}

impl Forward {
    pub fn conn_flags(self) -> u32 {
        match self {
            Forward::Nat => 0,
            Forward::Local => 1,
            Forward::Tun => 2,
            Forward::Dr => 3,
            Forward::Bypass => 4,
        }
    }
    pub fn from_conn_flags(f: u32) -> Forward {
        match f & 0x7 {
            0 => Forward::Nat,
            1 => Forward::Local,
            2 => Forward::Tun,
            3 => Forward::Dr,
            _ => Forward::Bypass,
        }
    }
    /// The name ipvsadm prints in the Forward column.
    pub fn ipvsadm_name(self) -> &'static str {
        match self {
            Forward::Nat => "Masq",
            Forward::Local => "Local",
            Forward::Tun => "Tunnel",
            Forward::Dr => "Route",
            Forward::Bypass => "Bypass",
        }
    }
}

/// IP_VS_CONN_F_TUNNEL_TYPE_*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    #[default]
    Ipip,
    Gue,
    Gre,
}

impl TunnelType {
    pub fn number(self) -> u8 {
        match self {
            TunnelType::Ipip => 0,
            TunnelType::Gue => 1,
            TunnelType::Gre => 2,
        }
    }
    pub fn from_number(n: u8) -> Option<TunnelType> {
        match n {
            0 => Some(TunnelType::Ipip),
            1 => Some(TunnelType::Gue),
            2 => Some(TunnelType::Gre),
            _ => None,
        }
    }
}

/// A destination (real server) is identified inside its service by address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DestKey(pub SocketAddr);

/// libipvs `ipvs_cmp_dests`: address words, then port.
impl Ord for DestKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        cmp_addr_port(&self.0, &other.0)
    }
}
impl PartialOrd for DestKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Editable settings of a destination (IPVS_CMD_SET_DEST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dest {
    pub forward: Forward,
    pub weight: u32,
    /// Upper connection threshold (0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold (0 = none).
    pub l_threshold: u32,
    pub tun_type: TunnelType,
    /// GUE destination port (0 when unused).
    pub tun_port: u16,
    /// IP_VS_TUNNEL_ENCAP_FLAG_* (checksum options for GUE/GRE).
    pub tun_flags: u16,
    /// Counters: live values from the kernel, zero in desired tables. Not compared by reconcile.
    pub stats: Counters,
}

impl Dest {
    pub fn new(forward: Forward, weight: u32) -> Dest {
        Dest {
            forward,
            weight,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: TunnelType::Ipip,
            tun_port: 0,
            tun_flags: 0,
            stats: Counters::default(),
        }
    }
    /// True when the settings (not the counters) equal.
    pub fn same_settings(&self, other: &Dest) -> bool {
        self.forward == other.forward
            && self.weight == other.weight
            && self.u_threshold == other.u_threshold
            && self.l_threshold == other.l_threshold
            && (self.forward != Forward::Tun
                || (self.tun_type == other.tun_type && self.tun_port == other.tun_port && self.tun_flags == other.tun_flags))
    }
}

/// Connection and traffic counters (IPVS_STATS_ATTR_* / IPVS_STATS64), plus the kernel's
/// per-destination connection counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
    pub active_conns: u32,
    pub inact_conns: u32,
    pub persist_conns: u32,
}

impl Stats {
    const ZERO: Stats = Stats {
        conns: 0,
        inpkts: 0,
        outpkts: 0,
        inbytes: 0,
        outbytes: 0,
        cps: 0,
        inpps: 0,
        outpps: 0,
        inbps: 0,
        outbps: 0,
        active_conns: 0,
        inact_conns: 0,
        persist_conns: 0,
    };
}

/// A destination's [`Stats`], boxed only when some counter is not zero: a desired table's
/// are all zero, and 10,000 destinations carried 96 bytes of zeros each. Reads as a
/// `Stats` (zeros when there is no box); writing a counter makes the box.
#[derive(Clone, Default)]
pub struct Counters(Option<Box<Stats>>);

impl From<Stats> for Counters {
    fn from(s: Stats) -> Counters {
        Counters((s != Stats::ZERO).then(|| Box::new(s)))
    }
}

impl std::ops::Deref for Counters {
    type Target = Stats;
    fn deref(&self) -> &Stats {
        self.0.as_deref().unwrap_or(&Stats::ZERO)
    }
}

impl std::ops::DerefMut for Counters {
    fn deref_mut(&mut self) -> &mut Stats {
        self.0.get_or_insert_with(Box::default)
    }
}

/// Equal when the counters are, boxed or not.
impl PartialEq for Counters {
    fn eq(&self, other: &Counters) -> bool {
        **self == **other
    }
}
impl Eq for Counters {}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// Serialized as the `Stats` it reads as.
impl Serialize for Counters {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub conf: ServiceConf,
    pub dests: BTreeMap<DestKey, Dest>,
    pub stats: Stats,
}

impl Service {
    pub fn new(conf: ServiceConf) -> Service {
        Service { conf, dests: BTreeMap::new(), stats: Stats::default() }
    }
}

/// A whole IPVS table, kept in ipvsadm's sort order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub services: BTreeMap<ServiceKey, Service>,
}

impl Table {
    pub fn dest_count(&self) -> usize {
        self.services.values().map(|s| s.dests.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::{Equal, Greater, Less};

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_compare_as_libipvs_where_it_is_an_order() {
        assert_eq!(cmp_addr_port(&sa("192.0.2.1:80"), &sa("192.0.2.2:80")), Less);
        assert_eq!(cmp_addr_port(&sa("192.0.2.1:81"), &sa("192.0.2.1:80")), Greater);
        assert_eq!(cmp_addr_port(&sa("192.0.2.1:80"), &sa("192.0.2.1:80")), Equal);
        // As libipvs: 1.0.0.0 - 203.0.113.1 as a C int is positive, and so is the signed
        // comparison (203 is negative as an int).
        assert_eq!(cmp_addr_port(&sa("1.0.0.0:80"), &sa("203.0.113.1:80")), Greater);
        assert_eq!(cmp_addr_port(&sa("10.0.0.1:80"), &sa("192.168.0.1:80")), Greater);
        assert_eq!(cmp_addr_port(&sa("[2001:db8::1]:80"), &sa("[2001:db8:0:1::]:80")), Less);
        assert_eq!(cmp_addr_port(&sa("[2001:db8::8000:1]:80"), &sa("[2001:db8::1]:80")), Less);
        assert_eq!(cmp_addr_port(&sa("[2001:db8:ffff::1]:80"), &sa("[2001:db8::10]:80")), Less);
        // IPv4 before IPv6, whatever the words.
        assert_eq!(cmp_addr_port(&sa("203.0.113.1:80"), &sa("[::1]:80")), Less);
        assert_eq!(cmp_addr_port(&sa("[2001:db8::2]:80"), &sa("[2001:db8::1]:80")), Greater);
    }

    /// Addresses spread over the whole space (more than 2^31 apart, where libipvs's
    /// comparison goes round in a circle): the order is transitive, and a table keyed by it
    /// finds every service and destination it holds.
    #[test]
    fn tables_find_every_key_whatever_the_addresses() {
        let addrs: Vec<SocketAddr> = (0..600u32)
            .map(|i| {
                let ip = std::net::Ipv4Addr::from(i.wrapping_mul(0x9E37_79B9));
                SocketAddr::new(ip.into(), 80 + (i % 3) as u16)
            })
            .chain(["10.0.0.1:80", "100.64.0.1:80", "192.0.2.1:80", "[2001:db8::1]:80", "[2001:db8::8000:1]:80"].map(sa))
            .collect();
        for a in &addrs {
            for b in &addrs {
                for c in addrs.iter().step_by(37) {
                    if cmp_addr_port(a, b) == Less && cmp_addr_port(b, c) == Less {
                        assert_eq!(cmp_addr_port(a, c), Less, "{a} < {b} < {c}");
                    }
                }
            }
        }
        let mut t = Table::default();
        for (i, a) in addrs.iter().enumerate() {
            let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: *a };
            let mut svc = Service::new(ServiceConf::new("rr", Family::of(&a.ip())));
            svc.dests.insert(DestKey(addrs[(i * 7) % addrs.len()]), Dest::new(Forward::Dr, 1));
            t.services.insert(key, svc);
        }
        for (i, a) in addrs.iter().enumerate() {
            let svc = t.services.get(&ServiceKey::Addr { protocol: Protocol::Tcp, addr: *a });
            let svc = svc.unwrap_or_else(|| panic!("service {a} not found"));
            assert!(svc.dests.contains_key(&DestKey(addrs[(i * 7) % addrs.len()])));
        }
        let mut keys: Vec<ServiceKey> = t.services.keys().copied().collect();
        keys.sort_unstable();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    /// Service keys sort by fwmark, family, protocol, address words (signed), port, whichever
    /// kinds meet: the shortcut for two address services gives the order its definition gives.
    #[test]
    fn service_keys_sort_as_defined() {
        fn definition(k: &ServiceKey) -> (i64, u16, u16, [i32; 4], u16) {
            let words = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => [u32::from(v4) as i32, 0, 0, 0],
                IpAddr::V6(v6) => {
                    let o = v6.octets();
                    std::array::from_fn(|i| u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]]) as i32)
                }
            };
            match k {
                ServiceKey::Addr { protocol, addr } => (0, Family::of(&addr.ip()).af(), protocol.number(), words(addr.ip()), addr.port()),
                ServiceKey::Fwmark { mark, family } => (*mark as i64, family.af(), 0, [0; 4], 0),
            }
        }
        let addrs =
            ["10.0.0.1:80", "10.0.0.1:81", "100.64.0.1:80", "192.0.2.1:80", "[2001:db8::1]:80", "[2001:db8::8000:1]:80", "[::1]:80"];
        let mut keys: Vec<ServiceKey> = Vec::new();
        for a in addrs.map(sa) {
            for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
                keys.push(ServiceKey::Addr { protocol, addr: a });
            }
        }
        for mark in [0, 1, 7, u32::MAX] {
            for family in [Family::Inet, Family::Inet6] {
                keys.push(ServiceKey::Fwmark { mark, family });
            }
        }
        for a in &keys {
            for b in &keys {
                assert_eq!(a.cmp(b), definition(a).cmp(&definition(b)), "{a:?} against {b:?}");
            }
        }
    }

    /// A desired destination carries no counters; one read with counters reads them back,
    /// and zeros compare and serialize the same boxed or not.
    #[test]
    fn counters_are_boxed_only_when_not_zero() {
        let d = Dest::new(Forward::Dr, 1);
        assert!(d.stats.0.is_none());
        assert!(std::mem::size_of::<Dest>() <= 32, "{}", std::mem::size_of::<Dest>());
        assert!(Counters::from(Stats::default()).0.is_none());
        let s = Stats { conns: 3, persist_conns: 1, ..Stats::default() };
        let c = Counters::from(s.clone());
        assert_eq!(*c, s);
        let mut e = Dest::new(Forward::Dr, 1);
        e.stats.conns = 3;
        e.stats.persist_conns = 1;
        assert_eq!(e.stats, c);
        // Written through (a zero written makes the box): still equal to none.
        let mut z = Counters::default();
        *z = Stats::default();
        assert!(z.0.is_some());
        assert_eq!(z, Counters::default());
        assert_eq!(serde_json::to_value(&z).unwrap(), serde_json::to_value(Stats::default()).unwrap());
        assert_eq!(serde_json::to_value(&c).unwrap(), serde_json::to_value(&s).unwrap());
    }
}
