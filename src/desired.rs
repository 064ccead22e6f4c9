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
    let fam = vs.vip.family();
    let mut conf = ServiceConf::new(&vs.scheduler, fam);
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
        let w = match state(ri) {
            RealState::Up(_) if sorry_only => r.inhibit_on_failure.then_some(0),
            RealState::Up(w) => Some(w),
            RealState::Draining => Some(0),
            RealState::Down if r.inhibit_on_failure => Some(0),
            RealState::Down => None,
        };
        if let Some(w) = w {
            svc.dests.insert(DestKey(r.addr), dest(r, w));
        }
    }
    if let Some(sorry) = &vs.sorry_server {
        let mut d = Dest::new(forward(sorry.forward), 1);
        if !quorum_up {
            svc.dests.insert(DestKey(sorry.addr), d);
        } else if sorry.inhibit {
            d.weight = 0;
            svc.dests.insert(DestKey(sorry.addr), d);
        }
    }
    (service_key(&vs.vip), svc)
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
