//! What a policy's VRRP instance means for the state machine (`fsm::Config`) and for the
//! netlink adapters (its addresses and routes as they take them), and the two reads of the
//! kernel an instance starts from: its links' state and its adverts' source address.

use crate::model::{self, VrrpInstance};
use crate::net;
use crate::vrrp::fsm::{self, Config, Input};
use crate::vrrp::packet::{self, Auth, Version};
use std::net::IpAddr;
use std::time::Duration;

fn secs(n: u32) -> Duration {
    Duration::from_secs(n as u64)
}

/// The policy's instance as the state machine's configuration, on a link of `mtu` bytes: VIPs
/// past what one advert carries there are held but not advertised, as keepalived does.
pub fn fsm_config(v: &VrrpInstance, primary: IpAddr, mtu: u32) -> Config {
    let mut c = Config::new(&v.interface, v.vrid, primary);
    c.version = if v.version == 3 { Version::V3 } else { Version::V2 };
    c.priority = v.priority;
    c.advert_int = v.advert_int_cs;
    c.preempt = !v.nopreempt;
    c.preempt_delay = secs(v.preempt_delay);
    c.preempt_sync_wait = Duration::from_millis(u64::from(v.preempt_sync_wait_ms));
    c.initial_state = v.state;
    c.addresses = v.vips.iter().map(|a| a.addr).collect();
    let fits = packet::max_addresses(c.version, c.family(), mtu);
    c.excluded = c.addresses.split_off(fits.min(c.addresses.len()));
    c.excluded.extend(v.excluded_vips.iter().map(|a| a.addr));
    c.track_interfaces =
        v.track_interfaces.iter().map(|t| fsm::TrackedInterface { name: t.name.clone(), weight: t.weight, reverse: t.reverse }).collect();
    // The virtual MAC interface is followed as the instance's own (keepalived's vrrp->ifp).
    if let Some(m) = v.vmac.as_ref().filter(|_| !v.dont_track_primary) {
        c.track_interfaces.push(fsm::TrackedInterface { name: m.name.clone(), weight: 0, reverse: false });
    }
    let g = &v.garp;
    c.garp = fsm::Garp {
        master_delay: secs(g.master_delay),
        master_repeat: g.master_repeat,
        master_refresh: (g.master_refresh > 0).then(|| secs(g.master_refresh)),
        master_refresh_repeat: g.master_refresh_repeat,
        interval: Duration::from_secs_f64(g.interval),
        lower_prio_repeat: g.lower_prio_repeat,
        lower_prio_delay: secs(g.lower_prio_delay),
    };
    c.auth = v.auth_pass.as_deref().map(Auth::pass).unwrap_or(Auth::None);
    c.unicast_peers = v.unicast_peers.clone();
    c.v3_checksum_as_v2 = v.v3_checksum_as_v2;
    c.check_unicast_src = v.check_unicast_src;
    c.relax_unicast_ttl = v.relax_unicast_ttl;
    c.dont_track_primary = v.dont_track_primary;
    c
}

/// The instance `lvsd.sync_daemon` follows, with the members of its sync group.
pub(super) fn sync_instances(m: &model::Model) -> Vec<String> {
    let Some(name) = m.sync_daemon.as_ref().and_then(|s| s.instance.clone()) else { return Vec::new() };
    match m.sync_groups.iter().find(|g| g.instances.contains(&name)) {
        Some(g) => g.instances.clone(),
        None => vec![name],
    }
}

/// The state of the links an instance watches, as inputs for its state machine.
pub(super) fn link_inputs(v: &VrrpInstance) -> Vec<Input> {
    std::iter::once(&v.interface)
        .chain(v.vmac.as_ref().map(|m| &m.name))
        .chain(v.track_interfaces.iter().map(|t| &t.name))
        .map(|name| Input::Interface { name: name.clone(), up: net::link_by_name(name).map(|l| l.is_up()).unwrap_or(false) })
        .collect()
}

pub(super) fn scope_of(name: Option<&str>) -> net::Scope {
    match name {
        Some("host") => net::Scope::Host,
        Some("link") => net::Scope::Link,
        Some("site") => net::Scope::Site,
        _ => net::Scope::Global,
    }
}

/// The policy's route as the netlink adapter takes it.
pub(super) fn net_route(r: &model::VirtualRoute) -> net::route::Route {
    use model::RouteType;
    net::route::Route {
        dst: r.dst,
        prefix_len: r.prefix,
        via: r.via,
        dev: r.dev.clone(),
        src: r.src,
        scope: r.scope.as_deref().map(|s| scope_of(Some(s))),
        table: r.table,
        metric: r.metric,
        kind: match r.kind {
            RouteType::Unicast => net::route::RouteKind::Unicast,
            RouteType::Blackhole => net::route::RouteKind::Blackhole,
            RouteType::Unreachable => net::route::RouteKind::Unreachable,
            RouteType::Prohibit => net::route::RouteKind::Prohibit,
        },
    }
}

/// Take down what an instance holds while master, its addresses and routes, whatever its
/// state: at its start (a run killed with SIGKILL left them) and when the VRRP thread failed.
/// Returns what was there ("VIP 192.0.2.100", "route ...").
pub fn release_held(v: &VrrpInstance) -> Vec<String> {
    let mut taken = Vec::new();
    for a in v.held_vips() {
        if let Ok(true) = net::addr::del_address(&net_vip(v, a.addr)) {
            taken.push(format!("VIP {}", a.addr));
        }
    }
    for r in &v.routes {
        if let Ok(true) = net::route::del_route(&net_route(r)) {
            taken.push(format!("route {r}"));
        }
    }
    taken
}

pub(super) fn net_vip(v: &VrrpInstance, addr: IpAddr) -> net::Vip {
    let m = v.held_vips().find(|a| a.addr == addr);
    let dev = m.and_then(|a| a.dev.clone()).unwrap_or_else(|| v.vip_interface().to_owned());
    let mut vip = net::Vip::host(addr, &dev);
    if let Some(m) = m {
        vip = vip.with_prefix(m.prefix);
        if let Some(l) = &m.label {
            vip = vip.with_label(l);
        }
        vip = vip.with_scope(scope_of(m.scope.as_deref())).with_broadcast(m.broadcast);
    }
    vip
}

/// The advert source: `unicast_src`, else the interface's primary IPv4 or IPv6 link-local.
pub(super) fn primary_address(v: &VrrpInstance) -> Result<IpAddr, String> {
    if let Some(src) = v.unicast_src {
        return Ok(src);
    }
    let idx = net::ifindex(&v.interface).map_err(|e| e.to_string())?;
    let found = if v.is_ipv6() {
        net::addr::link_local_ipv6(idx).map_err(|e| e.to_string())?.map(IpAddr::V6)
    } else {
        net::addr::primary_ipv4(idx).map_err(|e| e.to_string())?.map(IpAddr::V4)
    };
    found.ok_or_else(|| {
        format!("{} has no {} address to send adverts from", v.interface, if v.is_ipv6() { "IPv6 link-local" } else { "IPv4" })
    })
}
