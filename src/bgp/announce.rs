//! The announcements this director wants, from the model and the state of its services:
//! pure, like `desired` for the IPVS table. One route per VIP address (a /32 or /128); it is
//! announced while any announced service on that address may be served from here.

use crate::model::{AnnounceWhen, Model, Vip};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// What the director knows of one service, for its announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceView {
    /// The service has quorum (keepalived's quorum with hysteresis).
    pub quorum: bool,
    /// Held out of the IPVS table (ha_suspend: not master of its VIP).
    pub suspended: bool,
    /// What `announce = function(state)` returned (None: it failed, or was not called).
    pub function: Option<bool>,
}

/// One VIP's route as it should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wanted {
    pub addr: IpAddr,
    /// 32 or 128.
    pub prefix: u8,
    pub announce: bool,
    /// Why (or why not), for status and events.
    pub why: String,
    pub communities: Vec<(u16, u16)>,
    pub med: Option<u32>,
    /// The services on this address that asked for the announcement.
    pub services: Vec<String>,
}

impl Wanted {
    /// The BIRD protocol that carries this route: a name made of the address, so that it
    /// stays the same across reloads.
    pub fn protocol(&self) -> String {
        vip_protocol(self.addr)
    }

    pub fn net(&self) -> String {
        format!("{}/{}", self.addr, self.prefix)
    }
}

/// `lvsd_vip_203_0_113_10`, `lvsd_vip6_2001_0db8_..._0001`: a BIRD symbol (letters, digits,
/// underscores), unique per address.
pub fn vip_protocol(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("lvsd_vip_{}", a.octets().map(|o| o.to_string()).join("_")),
        IpAddr::V6(a) => format!("lvsd_vip6_{}", a.segments().map(|s| format!("{s:04x}")).join("_")),
    }
}

/// The BIRD protocol of the session with a neighbour.
pub fn neighbor_protocol(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("lvsd_bgp_{}", a.octets().map(|o| o.to_string()).join("_")),
        IpAddr::V6(a) => format!("lvsd_bgp6_{}", a.segments().map(|s| format!("{s:04x}")).join("_")),
    }
}

/// Every VIP address an announced service has, in address order, with whether it should be
/// announced now. `drained`: the operator took the director out of service
/// (`lvsd drain-director`), or it is stopping: nothing is announced.
pub fn wanted(model: &Model, view: impl Fn(usize) -> ServiceView, drained: bool) -> Vec<Wanted> {
    let Some(bgp) = &model.bgp else { return Vec::new() };
    let mut by_addr: BTreeMap<IpAddr, Wanted> = BTreeMap::new();
    for (si, s) in model.services.iter().enumerate() {
        let (Some(a), Vip::Addr { addr, .. }) = (&s.announce, s.vip) else { continue };
        let ip = addr.ip();
        let w = by_addr.entry(ip).or_insert_with(|| {
            let mut communities = bgp.communities.clone();
            communities.extend(&a.communities);
            communities.sort_unstable();
            communities.dedup();
            Wanted {
                addr: ip,
                prefix: if ip.is_ipv4() { 32 } else { 128 },
                announce: false,
                why: String::new(),
                communities,
                med: a.med.or(bgp.med),
                services: Vec::new(),
            }
        });
        w.services.push(s.name.clone());
        let v = view(si);
        let (yes, why) = if v.suspended {
            (false, "suspended (ha_suspend: not master of its VIP)")
        } else {
            match a.when {
                AnnounceWhen::Quorum if v.quorum => (true, "has quorum"),
                AnnounceWhen::Quorum => (false, "has no quorum"),
                AnnounceWhen::Function(_) => match v.function {
                    Some(true) => (true, "announce function says yes"),
                    Some(false) => (false, "announce function says no"),
                    None => (false, "announce function failed"),
                },
            }
        };
        // The first service that says yes gives the reason; else every "no" is listed.
        if yes && !w.announce {
            w.announce = true;
            w.why = format!("{} {why}", s.name);
        } else if !w.announce {
            if !w.why.is_empty() {
                w.why.push_str("; ");
            }
            w.why.push_str(&format!("{} {why}", s.name));
        }
    }
    let mut out: Vec<Wanted> = by_addr.into_values().collect();
    if drained {
        for w in &mut out {
            w.announce = false;
            w.why = "director drained".to_string();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(src: &str) -> Model {
        crate::policy::test_model(src, "d1")
    }

    const SRC: &str = r#"
lvsd.bgp { local_as = 65001, communities = { "65001:1" }, med = 10, neighbors = { { address = "192.0.2.1", as = 65000 } } }
lvsd.service "web" { vip = "203.0.113.10:80", scheduler = "mh", announce = true, reals = { "198.51.100.1:80" } }
lvsd.service "tls" { vip = "203.0.113.10:443", scheduler = "mh", announce = true, reals = { "198.51.100.1:443" } }
lvsd.service "api" {
  vip = "[2001:db8::10]:80", scheduler = "mh", reals = { "[2001:db8:1::1]:80" },
  announce = { when = function(s) return s.quorum end, communities = { "65000:7", "65001:1" }, med = 5 },
}
lvsd.service "quiet" { vip = "203.0.113.12:80", reals = { "198.51.100.1:80" } }
"#;

    #[test]
    fn one_route_per_address_announced_while_any_service_on_it_has_quorum() {
        let m = model(SRC);
        let view = |up: &'static [usize]| {
            move |si: usize| ServiceView { quorum: up.contains(&si), function: Some(up.contains(&si)), ..Default::default() }
        };
        let w = wanted(&m, view(&[0, 1, 2]), false);
        assert_eq!(w.iter().map(|w| w.net()).collect::<Vec<_>>(), vec!["203.0.113.10/32", "2001:db8::10/128"]);
        assert!(w.iter().all(|w| w.announce));
        assert_eq!((w[0].services.clone(), w[0].why.as_str()), (vec!["web".to_string(), "tls".to_string()], "web has quorum"));
        assert_eq!((w[0].communities.clone(), w[0].med), (vec![(65001, 1)], Some(10)));
        assert_eq!((w[1].communities.clone(), w[1].med), (vec![(65000, 7), (65001, 1)], Some(5)), "merged, deduplicated, own MED");

        // web lost its quorum, tls still has it: the address stays announced.
        let w = wanted(&m, view(&[1]), false);
        assert!(w[0].announce, "{w:?}");
        assert_eq!(w[0].why, "tls has quorum");
        assert!(!w[1].announce);
        assert_eq!(w[1].why, "api announce function says no");
        // Both lost it: withdrawn, every reason given.
        let w = wanted(&m, view(&[]), false);
        assert!(!w[0].announce);
        assert_eq!(w[0].why, "web has no quorum; tls has no quorum");
        // A failing function withdraws; suspended services are not announced.
        let w = wanted(&m, |si| ServiceView { quorum: true, suspended: si == 0, function: None }, false);
        assert_eq!((w[0].announce, w[0].why.as_str()), (true, "tls has quorum"));
        assert_eq!((w[1].announce, w[1].why.as_str()), (false, "api announce function failed"));
        // Drained: nothing, whatever the services say.
        let w = wanted(&m, view(&[0, 1, 2]), true);
        assert!(w.iter().all(|w| !w.announce && w.why == "director drained"));
    }

    #[test]
    fn no_bgp_no_routes_and_stable_names() {
        assert!(
            wanted(&model(r#"lvsd.service "w" { vip = "203.0.113.10:80", reals = {} }"#), |_| ServiceView::default(), false).is_empty()
        );
        assert_eq!(vip_protocol("203.0.113.10".parse().unwrap()), "lvsd_vip_203_0_113_10");
        assert_eq!(vip_protocol("2001:db8::10".parse().unwrap()), "lvsd_vip6_2001_0db8_0000_0000_0000_0000_0000_0010");
        assert_eq!(neighbor_protocol("192.0.2.1".parse().unwrap()), "lvsd_bgp_192_0_2_1");
    }
}
