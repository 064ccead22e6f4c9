//! Virtual services and real servers.

use super::{Announce, Argv, CheckSpec, HookRef, Origin};
use crate::ipvs::table::{Family, Protocol, TunnelType};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;

/// The IPVS schedulers (ipvsadm(8)).
pub const SCHEDULERS: &[&str] = &["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"];

/// Scheduler flags: only sh and mh have any.
pub const SCHED_FLAGS: &[&str] = &["sh-fallback", "sh-port", "mh-fallback", "mh-port"];

/// keepalived's `persistence_timeout` without a value, and lvsd's `persistence = true`.
pub const DEFAULT_PERSISTENCE: u32 = 360;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMethod {
    Dr,
    Nat,
    Tun,
}

pub const FORWARD_METHODS: &[&str] = &["dr", "nat", "tun"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TunnelCsum {
    NoCsum,
    Csum,
    RemCsum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tunnel {
    pub kind: TunnelType,
    /// GUE only: destination UDP port.
    pub port: u16,
    pub csum: TunnelCsum,
}

impl Default for Tunnel {
    fn default() -> Tunnel {
        Tunnel { kind: TunnelType::Ipip, port: 0, csum: TunnelCsum::NoCsum }
    }
}

/// How a virtual service is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Vip {
    Addr { protocol: Protocol, addr: SocketAddr },
    Fwmark { mark: u32, family: Family },
}

impl Vip {
    pub fn family(&self) -> Family {
        match self {
            Vip::Addr { addr, .. } => Family::of(&addr.ip()),
            Vip::Fwmark { family, .. } => *family,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    pub addr: SocketAddr,
    /// 0..=65535; default 1.
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    /// Forwarding method of this real (default: the service's).
    pub forward: ForwardMethod,
    pub tunnel: Tunnel,
    /// Checks of this real (default: the service's). Shared: every real of a service holds
    /// the same specs, and the same list of them, not a copy each (10,000 reals held ~2 MiB
    /// of copies per model).
    #[serde(serialize_with = "super::check::serialize_specs")]
    pub checks: Arc<[Arc<CheckSpec>]>,
    pub inhibit_on_failure: bool,
    pub weight_fn: Option<HookRef>,
    pub on_up: Option<HookRef>,
    pub on_down: Option<HookRef>,
    pub notify_up: Option<Argv>,
    pub notify_down: Option<Argv>,
    /// Shared with the other reals of its declaration (the service's place in the policy).
    #[serde(serialize_with = "serialize_shared")]
    pub origin: Arc<Origin>,
}

fn serialize_shared<S: serde::Serializer>(o: &Arc<Origin>, s: S) -> Result<S::Ok, S::Error> {
    o.as_ref().serialize(s)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SorryServer {
    pub addr: SocketAddr,
    pub forward: ForwardMethod,
    /// keepalived's sorry_server_inhibit: keep it in the table at weight 0 while unused.
    pub inhibit: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    pub name: String,
    pub vip: Vip,
    /// Scheduler name, one of [`SCHEDULERS`]; default "wlc".
    pub scheduler: String,
    pub sched_flags: Vec<String>,
    /// One-packet scheduling (UDP).
    pub ops: bool,
    /// Default forwarding method for the reals; default DR.
    pub forward: ForwardMethod,
    /// Persistence timeout in seconds (None = not persistent).
    pub persistence: Option<u32>,
    /// Persistence granularity: IPv4 netmask as a host-order u32, IPv6 prefix length.
    pub netmask: Option<u32>,
    pub pe: Option<String>,
    pub reals: Vec<RealServer>,
    pub sorry_server: Option<SorryServer>,
    /// Minimum sum of weights of live reals; below it the sorry server is used. Default 1.
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<Argv>,
    pub quorum_down: Option<Argv>,
    pub inhibit_on_failure: bool,
    /// Reals start down until their first successful check.
    pub alpha: bool,
    /// Run notify_down for every real on shutdown/removal.
    pub omega: bool,
    /// Do not install the service while the VRRP instance owning the VIP is not master.
    pub ha_suspend: bool,
    pub on_up: Option<HookRef>,
    pub on_down: Option<HookRef>,
    /// Announce the VIP over BGP (`lvsd.bgp`); None: not announced.
    pub announce: Option<Announce>,
    pub origin: Origin,
}

impl VirtualServer {
    /// The port reals default to: the VIP's, or 0 for fwmark services.
    pub fn vip_port(&self) -> u16 {
        match self.vip {
            Vip::Addr { addr, .. } => addr.port(),
            Vip::Fwmark { .. } => 0,
        }
    }
}
