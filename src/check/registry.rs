//! Which probes a model needs: one probe per (target address, port, check spec), shared by
//! every service and real that uses it. Pure.

use crate::model::{CheckKind, CheckSpec, Model};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

/// Identity of a probe. Two checks are the same probe when they hit the same address and
/// port with the same settings; where they were declared does not matter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProbeKey {
    pub target: SocketAddr,
    /// The spec without its origin, in a canonical text form (CheckSpec holds floats,
    /// which are not `Hash`). Shared by every probe of the same spec (one service's reals
    /// usually have one): a copy per probe and per clone of the key cost ~1 KiB per real.
    pub spec: Arc<str>,
}

impl ProbeKey {
    pub fn new(real: SocketAddr, spec: &CheckSpec) -> ProbeKey {
        ProbeKey { target: Self::target(real, spec), spec: Self::canonical(spec).into() }
    }

    /// The port is folded into the target, so `port = 80` on a real at :80 is the same probe.
    /// A ping has no port: one probe per address, whatever the reals' ports.
    fn target(real: SocketAddr, spec: &CheckSpec) -> SocketAddr {
        let port = if matches!(spec.kind, CheckKind::Ping) { 0 } else { spec.common.port.unwrap_or(real.port()) };
        SocketAddr::new(real.ip(), port)
    }

    fn canonical(spec: &CheckSpec) -> String {
        let mut common = spec.common.clone();
        common.port = None;
        serde_json::to_string(&(&common, &spec.kind)).expect("check spec serializes")
    }
}

impl std::fmt::Display for ProbeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.target, self.spec)
    }
}

/// One distinct probe and who uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub key: ProbeKey,
    pub spec: Arc<CheckSpec>,
    /// (service index, real index) of every user, in model order.
    pub users: Vec<(usize, usize)>,
    /// Any user wants alpha (start down).
    pub alpha: bool,
}

/// The probes of a model, and for each real the probes it depends on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub probes: Vec<Probe>,
    /// `reals[service][real]` = indexes into `probes`.
    pub reals: Vec<Vec<Vec<usize>>>,
}

impl Plan {
    pub fn of(model: &Model) -> Plan {
        let mut plan = Plan::default();
        let mut index: HashMap<ProbeKey, usize> = HashMap::new();
        // Canonical texts made so far, by text: equal specs share one.
        let mut texts: HashSet<Arc<str>> = HashSet::new();
        // The last spec seen and its text: reals of a service mostly share their spec.
        let mut last: Option<(&Arc<CheckSpec>, Arc<str>)> = None;
        for (si, vs) in model.services.iter().enumerate() {
            let mut reals = Vec::with_capacity(vs.reals.len());
            for (ri, r) in vs.reals.iter().enumerate() {
                let mut ids = Vec::with_capacity(r.checks.len());
                for spec in r.checks.iter() {
                    let text = match &last {
                        Some((s, t)) if Arc::ptr_eq(s, spec) || *s == spec => t.clone(),
                        _ => {
                            let t = ProbeKey::canonical(spec);
                            let t = texts.get(t.as_str()).cloned().unwrap_or_else(|| {
                                let t: Arc<str> = t.into();
                                texts.insert(t.clone());
                                t
                            });
                            last = Some((spec, t.clone()));
                            t
                        }
                    };
                    let key = ProbeKey { target: ProbeKey::target(r.addr, spec), spec: text };
                    let id = *index.entry(key.clone()).or_insert_with(|| {
                        plan.probes.push(Probe { key, spec: spec.clone(), users: Vec::new(), alpha: false });
                        plan.probes.len() - 1
                    });
                    let p = &mut plan.probes[id];
                    p.users.push((si, ri));
                    p.alpha |= vs.alpha;
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                reals.push(ids);
            }
            plan.reals.push(reals);
        }
        // A probe mostly has one user, and a first push leaves room for four: the probe
        // slots keep these lists for as long as the policy runs.
        for p in &mut plan.probes {
            p.users.shrink_to_fit();
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{LoadOptions, load_source};
    use std::path::Path;

    fn model(src: &str) -> Model {
        let opts = LoadOptions { node: "t".into(), limits: Default::default() };
        load_source(src, Path::new("t.lua"), Path::new("."), &opts).unwrap().model
    }

    #[test]
    fn identical_checks_are_one_probe() {
        let m = model(
            r#"
            local c = lvsd.check.tcp { interval = 1 }
            lvsd.service "a" { vip = "192.0.2.1:80", check = c, reals = { "198.51.100.1:80", "198.51.100.2:80" } }
            lvsd.service "b" { vip = "192.0.2.2:80", check = lvsd.check.tcp { interval = 1 }, reals = { "198.51.100.1:80" } }
            lvsd.service "c" { vip = "192.0.2.3:80", check = lvsd.check.tcp { interval = 2 }, reals = { "198.51.100.1:80" } }
            lvsd.service "d" { vip = "192.0.2.4:81", check = lvsd.check.tcp { interval = 1, port = 80 }, reals = { "198.51.100.1:81" } }
            "#,
        );
        let p = Plan::of(&m);
        // a/198.51.100.1, b and d share one probe; a/.2 and c have their own.
        assert_eq!(p.probes.len(), 3, "{:#?}", p.probes.iter().map(|p| &p.key).collect::<Vec<_>>());
        assert_eq!(p.reals[0][0][0], p.reals[1][0][0]);
        assert_ne!(p.reals[0][0][0], p.reals[0][1][0]);
        assert_ne!(p.reals[0][0][0], p.reals[2][0][0]);
        assert_eq!(p.reals[0][0][0], p.reals[3][0][0]); // port = 80 probes the same address and port
        assert_eq!(p.probes[p.reals[0][0][0]].users, vec![(0, 0), (1, 0), (3, 0)]);
        assert_eq!(p.probes[p.reals[3][0][0]].key.target, "198.51.100.1:80".parse().unwrap());
    }

    #[test]
    fn a_ping_is_one_probe_per_address_whatever_the_port() {
        let m = model(
            r#"
            local ping = lvsd.check.ping { interval = 1 }
            lvsd.service "web" { vip = "192.0.2.1:80", check = ping, reals = { "198.51.100.1:80", "198.51.100.2:80" } }
            lvsd.service "tls" { vip = "192.0.2.1:443", check = ping, reals = { "198.51.100.1:443" } }
            "#,
        );
        let p = Plan::of(&m);
        assert_eq!(p.probes.len(), 2, "{:#?}", p.probes.iter().map(|p| &p.key).collect::<Vec<_>>());
        assert_eq!(p.reals[0][0][0], p.reals[1][0][0], "198.51.100.1 is pinged once for both services");
        assert_eq!(p.probes[p.reals[0][0][0]].key.target, "198.51.100.1:0".parse().unwrap());
    }

    #[test]
    fn reals_without_checks_have_no_probes() {
        let m = model(r#"lvsd.service "a" { vip = "192.0.2.1:80", reals = { "198.51.100.1:80" } }"#);
        let p = Plan::of(&m);
        assert!(p.probes.is_empty());
        assert_eq!(p.reals, vec![vec![Vec::<usize>::new()]]);
    }
}
