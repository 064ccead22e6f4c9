//! Model + health -> the IPVS table the director wants. Pure.

use crate::ipvs::table::{Dest, DestKey, Forward, Service, ServiceConf, ServiceKey, Table, default_netmask, svc_flags};
use crate::model::{ForwardMethod, Model, RealServer, TunnelCsum, Vip, VirtualServer};

/// What the director knows about one real server right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealState {
    /// Healthy, at this weight.
    Up(u32),
    /// Failed: removed, or kept at weight 0 with inhibit_on_failure.
    Down,
    /// Draining: kept at weight 0 so existing connections finish.
    Draining,
}

pub fn service_key(vip: &Vip) -> ServiceKey {
    match *vip {
        Vip::Addr { protocol, addr } => ServiceKey::Addr { protocol, addr },
        Vip::Fwmark { mark, family } => ServiceKey::Fwmark { mark, family },
    }
}

pub fn service_conf(vs: &VirtualServer) -> ServiceConf {
    let mut conf = conf_settings(vs);
    conf.scheduler = vs.scheduler.clone();
    conf
}

/// The service's settings but its scheduler's name (left empty: no allocation).
fn conf_settings(vs: &VirtualServer) -> ServiceConf {
    let fam = vs.vip.family();
    let mut conf = ServiceConf::new("", fam);
    for f in &vs.sched_flags {
        conf.flags |= if f.ends_with("fallback") { svc_flags::SCHED1 } else { svc_flags::SCHED2 };
    }
    if vs.ops {
        conf.flags |= svc_flags::ONEPACKET;
    }
    if let Some(t) = vs.persistence {
        conf.flags |= svc_flags::PERSISTENT;
        conf.timeout = t;
        conf.netmask = vs.netmask.unwrap_or(default_netmask(fam));
        conf.pe_name = vs.pe.clone();
    }
    conf
}

fn forward(f: ForwardMethod) -> Forward {
    match f {
        ForwardMethod::Dr => Forward::Dr,
        ForwardMethod::Nat => Forward::Nat,
        ForwardMethod::Tun => Forward::Tun,
    }
}

pub fn dest(r: &RealServer, weight: u32) -> Dest {
    let mut d = Dest::new(forward(r.forward), weight);
    d.u_threshold = r.upper_threshold;
    d.l_threshold = r.lower_threshold;
    if r.forward == ForwardMethod::Tun {
        d.tun_type = r.tunnel.kind;
        d.tun_port = r.tunnel.port;
        d.tun_flags = match r.tunnel.csum {
            TunnelCsum::NoCsum => 0,
            TunnelCsum::Csum => 1,
            TunnelCsum::RemCsum => 2,
        };
    }
    d
}

/// The sum of the weights of the live reals of `vs`: what quorum is measured against.
pub fn live_weight(vs: &VirtualServer, state: impl Fn(usize) -> RealState) -> u64 {
    (0..vs.reals.len()).map(|ri| if let RealState::Up(w) = state(ri) { w as u64 } else { 0 }).sum()
}

/// One service as the director wants it, asking `state` about each real (by index).
///
/// `quorum_up` is the service's quorum state (keepalived semantics, with hysteresis kept by
/// the caller): while it is lost the sorry server (if any) is put in and takes all the
/// traffic: the reals still alive are taken out (weight 0 with `inhibit_on_failure`), as
/// keepalived's "Remove remaining alive real servers" does. Otherwise the sorry server stays
/// out, or at weight 0 with `inhibit`.
pub fn service(vs: &VirtualServer, state: impl Fn(usize) -> RealState, quorum_up: bool) -> (ServiceKey, Service) {
    let mut svc = Service::new(service_conf(vs));
    let sorry_only = !quorum_up && vs.sorry_server.is_some();
    for (ri, r) in vs.reals.iter().enumerate() {
        if let Some(w) = real_weight(r, state(ri), sorry_only) {
            svc.dests.insert(DestKey(r.addr), dest(r, w));
        }
    }
    if let Some((addr, d)) = sorry_dest(vs, quorum_up) {
        svc.dests.insert(DestKey(addr), d);
    }
    (service_key(&vs.vip), svc)
}

/// A real's weight in the table, or None when it is left out.
fn real_weight(r: &RealServer, state: RealState, sorry_only: bool) -> Option<u32> {
    match state {
        RealState::Up(_) if sorry_only => r.inhibit_on_failure.then_some(0),
        RealState::Up(w) => Some(w),
        RealState::Draining => Some(0),
        RealState::Down if r.inhibit_on_failure => Some(0),
        RealState::Down => None,
    }
}

/// The sorry server's destination, when it is in the table: while quorum is lost, and at
/// weight 0 otherwise when it is `inhibit`.
fn sorry_dest(vs: &VirtualServer, quorum_up: bool) -> Option<(std::net::SocketAddr, Dest)> {
    let sorry = vs.sorry_server.as_ref()?;
    let mut d = Dest::new(forward(sorry.forward), 1);
    if quorum_up {
        if !sorry.inhibit {
            return None;
        }
        d.weight = 0;
    }
    Some((sorry.addr, d))
}

/// Whether `have` is exactly what [`service`] would make with the same arguments, found
/// without making it: a periodic pass with nothing changed allocates nothing per service.
pub fn service_is(vs: &VirtualServer, state: impl Fn(usize) -> RealState, quorum_up: bool, have: &Service) -> bool {
    let settings = conf_settings(vs);
    let conf = &have.conf;
    if conf.scheduler != vs.scheduler
        || (conf.flags, conf.timeout, conf.netmask) != (settings.flags, settings.timeout, settings.netmask)
        || conf.pe_name != settings.pe_name
        || have.stats != Default::default()
    {
        return false;
    }
    let sorry_only = !quorum_up && vs.sorry_server.is_some();
    let mut count = 0;
    for (ri, r) in vs.reals.iter().enumerate() {
        if let Some(w) = real_weight(r, state(ri), sorry_only) {
            count += 1;
            if have.dests.get(&DestKey(r.addr)) != Some(&dest(r, w)) {
                return false;
            }
        }
    }
    if let Some((addr, d)) = sorry_dest(vs, quorum_up) {
        count += 1;
        if have.dests.get(&DestKey(addr)) != Some(&d) {
            return false;
        }
    }
    // Every destination it would make is there; none more (the addresses are distinct: the
    // policy's validation refuses a real listed twice and a sorry server that is a real).
    count == have.dests.len()
}

/// The table for `model`, asking `state` about each real (service index, real index), with
/// quorum measured without hysteresis (live weight below `quorum` = lost).
pub fn table(model: &Model, state: impl Fn(usize, usize) -> RealState) -> Table {
    let mut t = Table::default();
    for (si, vs) in model.services.iter().enumerate() {
        let quorum_up = live_weight(vs, |ri| state(si, ri)) >= vs.quorum as u64;
        let (key, svc) = service(vs, |ri| state(si, ri), quorum_up);
        t.services.insert(key, svc);
    }
    t
}

/// The table with every real up at its configured weight: what `plan` and `run --once` use.
pub fn all_up(model: &Model) -> Table {
    table(model, |si, ri| RealState::Up(model.services[si].reals[ri].weight))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `service_is` says yes exactly when `service` would make the same service: for every
    /// state of each real, with quorum kept and lost, with and without a sorry server; and no
    /// when the installed service differs in a weight, a destination, or a setting.
    #[test]
    fn service_is_agrees_with_service() {
        let m = crate::policy::test_model(
            r#"
lvsd.service "a" { vip = "192.0.2.1:80", scheduler = "wrr", reals = {
  "198.51.100.1:80", { address = "198.51.100.2:80", inhibit_on_failure = true, weight = 3 },
  { address = "198.51.100.3:80", forward = "tun", tunnel = { type = "gue", port = 6080 } } } }
lvsd.service "b" { vip = "192.0.2.2:80", persistence = 60, sorry_server = { address = "198.51.100.9:80", inhibit = true },
  reals = { "198.51.100.1:80", "198.51.100.2:80" } }
"#,
            "n",
        );
        let states = [RealState::Up(7), RealState::Down, RealState::Draining];
        for vs in &m.services {
            let n = vs.reals.len();
            for code in 0..states.len().pow(n as u32) {
                let state = |ri: usize| states[code / states.len().pow(ri as u32) % states.len()];
                for up in [true, false] {
                    let (_, made) = service(vs, state, up);
                    assert!(service_is(vs, state, up, &made), "{}: {code} {up}", vs.name);
                    // Another state of the first real: yes only if the same service comes of it.
                    for other in states {
                        let state2 = |ri: usize| if ri == 0 { other } else { state(ri) };
                        let same = service(vs, state2, up).1 == made;
                        assert_eq!(service_is(vs, state2, up, &made), same, "{}: {code} {up} {other:?}", vs.name);
                    }
                    assert_eq!(service_is(vs, state, !up, &made), service(vs, state, !up).1 == made);
                    let mut extra = made.clone();
                    extra.dests.insert(DestKey("203.0.113.1:80".parse().unwrap()), Dest::new(Forward::Dr, 1));
                    assert!(!service_is(vs, state, up, &extra));
                    let mut conf = made.clone();
                    conf.conf.scheduler = "rr".into();
                    assert!(!service_is(vs, state, up, &conf));
                    if let Some(d) = made.dests.values().next() {
                        let mut weight = made.clone();
                        weight.dests.values_mut().next().unwrap().weight = d.weight + 1;
                        assert!(!service_is(vs, state, up, &weight));
                    }
                }
            }
        }
    }
}
