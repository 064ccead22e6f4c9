//! Scale-out: the VIPs this director announces over BGP, through the local BIRD 2.

use super::{HookRef, Origin};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// Where BIRD's control socket is in Debian's `bird2` package.
pub const DEFAULT_BIRD_SOCKET: &str = "/run/bird/bird.ctl";
/// The file lvsd writes and `bird.conf` includes (`include "/etc/bird/lvsd.conf";`).
pub const DEFAULT_BIRD_INCLUDE: &str = "/etc/bird/lvsd.conf";

/// `lvsd.bgp { ... }`: the local BIRD and the sessions it holds for lvsd.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bgp {
    /// BIRD's control socket (`bird -s`).
    pub socket: PathBuf,
    /// The include file lvsd writes: the BGP sessions and one static protocol per VIP.
    pub include: PathBuf,
    pub local_as: u32,
    /// BIRD's router id (written into the include file); None: BIRD picks one.
    pub router_id: Option<Ipv4Addr>,
    pub neighbors: Vec<Neighbor>,
    /// Communities added to every announced VIP (`(asn, value)`, RFC 1997).
    pub communities: Vec<(u16, u16)>,
    /// MULTI_EXIT_DISC of every announced VIP (RFC 4271 5.1.4), unless a service sets its own.
    pub med: Option<u32>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbor {
    pub address: IpAddr,
    /// The neighbour's AS.
    pub asn: u32,
    /// BFD on the session (BIRD runs it; a `protocol bfd` is written when any neighbour has it).
    pub bfd: bool,
    /// BFD's transmit and receive interval in milliseconds; None: BIRD's default (10 ms
    /// receive, 100 ms transmit), which a loaded or emulated host may not keep up with.
    pub bfd_interval_ms: Option<u32>,
    /// BFD's detection multiplier (RFC 5880 6.8.4: missed packets before the session is
    /// down); None: BIRD's default (5).
    pub bfd_multiplier: Option<u8>,
    /// Hold time in seconds (RFC 4271 4.2: 0 or at least 3); None: BIRD's default (240).
    pub hold: Option<u16>,
    /// Keepalive time in seconds; None: BIRD's default (a third of the hold time).
    pub keepalive: Option<u16>,
    /// Seconds before a failed connect is tried again (RFC 4271 8: ConnectRetryTimer); None:
    /// BIRD's default (120).
    pub connect_retry: Option<u16>,
    /// Seconds from start to the first connect; None: BIRD's default (5).
    pub connect_delay: Option<u16>,
    /// Seconds before a session that failed is restarted, first and longest (it doubles on
    /// failures in a row); None: BIRD's default (60, 300).
    pub error_wait: Option<(u16, u16)>,
    /// The session's local address (`source address`), when the route to the neighbour would pick another.
    pub source: Option<IpAddr>,
    /// Multihop eBGP (TTL); None: a directly connected neighbour.
    pub multihop: Option<u8>,
    pub password: Option<String>,
}

/// A service's `announce = ...`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Announce {
    pub when: AnnounceWhen,
    /// Communities added to this VIP's route (on top of `lvsd.bgp`'s).
    pub communities: Vec<(u16, u16)>,
    /// This VIP's MED (instead of `lvsd.bgp`'s).
    pub med: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnounceWhen {
    /// `announce = true`: while the service has quorum here and the director is in service.
    Quorum,
    /// `announce = function(state) ... end`: what it returns (called on each change of the
    /// service's state); the director's drain still withdraws.
    Function(HookRef),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Model, warnings};
    use crate::policy::{LoadOptions, PolicyError, load_source};
    use std::path::Path;

    fn load(src: &str, node: &str) -> Result<Model, Vec<String>> {
        let o = LoadOptions { node: node.into(), limits: Default::default() };
        match load_source(src, Path::new("p.lua"), Path::new("."), &o) {
            Ok(p) => Ok(p.model),
            Err(PolicyError::Invalid(e)) => Err(e.iter().map(|e| e.to_string()).collect()),
            Err(e) => Err(vec![e.to_string()]),
        }
    }

    const GOOD: &str = r#"local me = { d1 = "192.0.2.2", d2 = "192.0.2.3" }
lvsd.bgp {
  socket = "/run/bird/bird.ctl", local_as = 65001, router_id = me[lvsd.node],
  neighbors = { { address = "192.0.2.1", as = 65000, bfd = true, hold = 9, keepalive = 3 } },
  communities = { "65001:1" }, med = 10,
}
lvsd.service "web" { vip = "203.0.113.10:80", scheduler = "mh", announce = true, reals = { "198.51.100.1:80" } }
lvsd.service "tls" {
  vip = "203.0.113.12:443", scheduler = "mh",
  announce = { when = function(s) return s.quorum end, communities = { "65000:7" }, med = 5 },
  reals = { "198.51.100.1:443" },
}
lvsd.service "dns" { vip = "203.0.113.11:53", protocol = "udp", scheduler = "mh", reals = { "198.51.100.1:53" } }
"#;

    #[test]
    fn one_policy_serves_every_director() {
        for (node, id) in [("d1", "192.0.2.2"), ("d2", "192.0.2.3")] {
            let m = load(GOOD, node).unwrap();
            let b = m.bgp.as_ref().unwrap();
            assert_eq!(b.router_id, Some(id.parse().unwrap()));
            assert_eq!((b.local_as, b.med, &b.communities), (65001, Some(10), &vec![(65001, 1)]));
            let n = &b.neighbors[0];
            assert_eq!((n.address.to_string(), n.asn, n.bfd, n.hold, n.keepalive), ("192.0.2.1".into(), 65000, true, Some(9), Some(3)));
            assert_eq!((n.bfd_interval_ms, n.bfd_multiplier, n.connect_retry, n.error_wait), (None, None, None, None));
            assert_eq!(m.services[0].announce.as_ref().unwrap().when, AnnounceWhen::Quorum);
            let tls = m.services[1].announce.as_ref().unwrap();
            assert!(matches!(tls.when, AnnounceWhen::Function(_)));
            assert_eq!((tls.communities.clone(), tls.med), (vec![(65000, 7)], Some(5)));
            assert_eq!(m.services[2].announce, None, "no announce: not announced");
        }
    }

    #[test]
    fn session_timers() {
        let src = "lvsd.bgp { local_as = 65001, neighbors = { { address = \"192.0.2.1\", as = 65000, \
bfd = { interval = 0.3, multiplier = 4 }, connect_retry = 5, connect_delay = 0, error_wait = { min = 2, max = 30 } } } }";
        let m = load(src, "d1").unwrap();
        let n = &m.bgp.as_ref().unwrap().neighbors[0];
        assert_eq!((n.bfd, n.bfd_interval_ms, n.bfd_multiplier), (true, Some(300), Some(4)), "a bfd table turns BFD on");
        assert_eq!((n.connect_retry, n.connect_delay, n.error_wait), (Some(5), Some(0), Some((2, 30))));
    }

    fn rejects(src: &str, line: u32, needle: &str) {
        let errs = load(src, "d1").expect_err("should be rejected");
        let prefix = format!("p.lua:{line}: ");
        assert!(errs.iter().any(|e| e.starts_with(&prefix) && e.contains(needle)), "want {prefix}..{needle:?} in:\n{}", errs.join("\n"));
    }

    #[test]
    fn mistakes_are_reported_at_their_line() {
        let svc =
            "lvsd.service \"web\" { vip = \"203.0.113.10:80\", scheduler = \"mh\", announce = true, reals = { \"198.51.100.1:80\" } }";
        let bgp = "lvsd.bgp { local_as = 65001, neighbors = { { address = \"192.0.2.1\", as = 65000 } } }";
        rejects(svc, 1, "announce needs lvsd.bgp");
        rejects(
            &format!("{bgp}\n\nlvsd.bgp {{ local_as = 1, neighbors = {{ {{ address = \"192.0.2.1\", as = 2 }} }} }}"),
            3,
            "bgp is declared twice",
        );
        rejects("lvsd.bgp { neighbors = { { address = \"192.0.2.1\", as = 65000 } } }", 1, "local_as is required");
        rejects("lvsd.bgp { local_as = 65001 }", 1, "neighbors is required");
        rejects("\nlvsd.bgp { local_as = 65001, neighbors = { { address = \"192.0.2.x\", as = 65000 } } }", 2, "is not an IP address");
        rejects("lvsd.bgp { local_as = 65001, neighbors = { { address = \"192.0.2.1\" } } }", 1, "as is required");
        rejects("lvsd.bgp { local_as = 65001, neighbors = { { address = \"192.0.2.1\", as = 1, hold = 2 } } }", 1, "RFC 4271");
        rejects(
            "lvsd.bgp { local_as = 65001, neighbors = { { address = \"192.0.2.1\", as = 1, hold = 3, keepalive = 3 } } }",
            1,
            "below hold",
        );
        rejects(
            "lvsd.bgp { local_as = 65001, router_id = \"2001:db8::1\", neighbors = { { address = \"192.0.2.1\", as = 1 } } }",
            1,
            "router_id",
        );
        rejects(
            "lvsd.bgp { local_as = 65001, communities = { \"65001\" }, neighbors = { { address = \"192.0.2.1\", as = 1 } } }",
            1,
            "community '65001'",
        );
        rejects(
            "lvsd.bgp { local_as = 65001, socket = \"bird.ctl\", neighbors = { { address = \"192.0.2.1\", as = 1 } } }",
            1,
            "absolute path",
        );
        rejects(
            "lvsd.bgp { local_as = 65001, neighbors = { { address = \"192.0.2.1\", as = 1, error_wait = { min = 30, max = 2 } } } }",
            1,
            "min = 30 is above max = 2",
        );
        rejects(
            "lvsd.bgp { local_as = 65001, neighbors = { { address = \"192.0.2.1\", as = 1, error_wait = { min = 3 } } } }",
            1,
            "max is required",
        );
        rejects(
            "lvsd.bgp { local_as = 65001, neighbors = { { address = \"192.0.2.1\", as = 1, bfd = { multiplier = 0 } } } }",
            1,
            "multiplier",
        );
        rejects(
            "lvsd.bgp { local_as = 65001, neighbors = { { address = \"192.0.2.1\", as = 1, bfd = { intervall = 1 } } } }",
            1,
            "intervall",
        );
        rejects("lvsd.bgp { local_as = 65001, neighbors = { { address = \"192.0.2.1\", as = 1, bfd = 1 } } }", 1, "bfd must be");
        rejects(
            "lvsd.bgp { local_as = 65001, neighbors = { { address = \"192.0.2.1\", as = 1, connect_retry = 0 } } }",
            1,
            "connect_retry",
        );
        rejects("lvsd.bgp { local_as = 65001, neighbours = {}, neighbors = { { address = \"192.0.2.1\", as = 1 } } }", 1, "neighbours");
        rejects(
            "lvsd.bgp { local_as = 65001, neighbors = { { address = \"192.0.2.1\", as = 1 }, { address = \"192.0.2.1\", as = 1 } } }",
            1,
            "listed twice",
        );
        rejects(&format!("{bgp}\nlvsd.service \"m\" {{ fwmark = 1, announce = true, reals = {{ \"198.51.100.1:80\" }} }}"), 2, "fwmark");
        rejects(&format!("{bgp}\nlvsd.service \"w\" {{ vip = \"203.0.113.10:80\", announce = 1, reals = {{}} }}"), 2, "announce must be");
        rejects(
            &format!(
                "{bgp}\n{svc}\nlvsd.service \"tls\" {{ vip = \"203.0.113.10:443\", announce = {{ med = 3 }}, reals = {{ \"198.51.100.1:443\" }} }}"
            ),
            3,
            "differ from service 'web'",
        );
    }

    #[test]
    fn scale_out_without_a_flow_hash_is_a_warning() {
        let m = load(GOOD, "d1").unwrap();
        assert!(warnings(&m).is_empty(), "{:?}", warnings(&m));
        let m = load(&GOOD.replacen("scheduler = \"mh\"", "scheduler = \"wlc\"", 1), "d1").unwrap();
        let w: Vec<String> = warnings(&m).iter().map(|e| e.to_string()).collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("p.lua:7: warning: service 'web'") && w[0].contains("\"mh\""), "{w:?}");
        // Not announced: no warning whatever the scheduler.
        let m =
            load(&GOOD.replace("scheduler = \"mh\", reals = { \"198.51.100.1:53\" }", "reals = { \"198.51.100.1:53\" }"), "d1").unwrap();
        assert!(warnings(&m).is_empty());
    }
}
