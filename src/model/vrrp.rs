//! VRRP instances and sync groups.

use super::{Argv, HookRef, Origin};
use serde::Serialize;
use std::net::IpAddr;

/// keepalived's `state MASTER|BACKUP`: the state machine's own type.
pub use crate::vrrp::fsm::InitialState;

/// A virtual IP address held by the master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipAddr {
    pub addr: IpAddr,
    /// Prefix length; keepalived's default is /32 (/128).
    pub prefix: u8,
    /// Device (default: the instance's interface).
    pub dev: Option<String>,
    pub label: Option<String>,
    pub scope: Option<String>,
    /// IPv4 broadcast address (`brd`), resolved from `+` / `-` when read.
    pub broadcast: Option<std::net::Ipv4Addr>,
}

impl std::fmt::Display for VipAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)?;
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        if let Some(l) = &self.label {
            write!(f, " label {l}")?;
        }
        if let Some(s) = &self.scope {
            write!(f, " scope {s}")?;
        }
        if let Some(b) = &self.broadcast {
            write!(f, " brd {b}")?;
        }
        Ok(())
    }
}

/// keepalived's `virtual_routes`: a route the master installs after its VIPs and removes when
/// it stops being master. Written as `ip route` takes it ([`std::fmt::Display`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualRoute {
    pub kind: RouteType,
    pub dst: IpAddr,
    pub prefix: u8,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// The preferred source (often a VIP: the route then needs it, as keepalived adds it after).
    pub src: Option<IpAddr>,
    /// "host", "link", "site" or "global"; None: ip(8)'s choice (link for a route through a
    /// device alone, global otherwise).
    pub scope: Option<String>,
    /// None: the main table.
    pub table: Option<u32>,
    pub metric: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteType {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

impl std::fmt::Display for VirtualRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            RouteType::Unicast => {}
            RouteType::Blackhole => write!(f, "blackhole ")?,
            RouteType::Unreachable => write!(f, "unreachable ")?,
            RouteType::Prohibit => write!(f, "prohibit ")?,
        }
        write!(f, "{}/{}", self.dst, self.prefix)?;
        if let Some(v) = &self.via {
            write!(f, " via {v}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        if let Some(s) = &self.src {
            write!(f, " src {s}")?;
        }
        if let Some(s) = &self.scope {
            write!(f, " scope {s}")?;
        }
        if let Some(t) = &self.table {
            write!(f, " table {t}")?;
        }
        if let Some(m) = &self.metric {
            write!(f, " metric {m}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackInterface {
    pub name: String,
    /// 0: the instance goes to Fault when the link is down; otherwise the priority changes by weight.
    pub weight: i32,
    /// keepalived's `weight N reverse`: the weight works the other way round.
    pub reverse: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TrackKind {
    /// Run a program; exit 0 = up (keepalived's vrrp_script).
    Exec { command: Argv },
    /// Call a Lua function; a true result = up.
    Lua { run: HookRef },
    /// Read a number from a file each interval (keepalived's track_file): the priority changes
    /// by number x weight (negated with `reverse`), or, with weight 0, any number but 0 is
    /// Fault ([`crate::vrrp::track_file`]). A missing file reads as 0.
    File { path: std::path::PathBuf },
    /// Count the running processes of a name each interval (keepalived's
    /// vrrp_track_process): up while the count is within `quorum..=quorum_max`
    /// ([`crate::vrrp::track_process`]).
    Process {
        process: String,
        params: Option<Vec<String>>,
        param_match: crate::vrrp::track_process::ParamMatch,
        full_command: bool,
        quorum: u32,
        quorum_max: u32,
    },
}

/// keepalived's vrrp_script / track_script, as a track function.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Track {
    pub name: String,
    pub kind: TrackKind,
    /// Seconds between runs; keepalived default 1.
    pub interval: f64,
    /// Seconds before a run counts as failed; 0 = the interval (keepalived's behaviour).
    pub timeout: f64,
    /// 0: failure sends the instance to Fault; otherwise priority changes by weight (a file
    /// track's weight multiplies its number).
    pub weight: i32,
    /// keepalived's `weight N reverse`: the weight works the other way round. A program or Lua
    /// track then changes the priority by -weight while up (weight > 0) or by +|weight| while
    /// down (weight < 0); with weight 0, success is Fault. A file's number is negated.
    pub reverse: bool,
    pub rise: u32,
    pub fall: u32,
    /// keepalived's `init_fail`: a program or Lua track counts as failed until it has
    /// succeeded `rise` times (else it counts as up until its first failure).
    pub init_fail: bool,
    pub origin: Origin,
}

impl Track {
    /// A program or Lua track's result as the instance takes it: (up, weight). keepalived's
    /// `reverse` (process_script_update_priority with the multiplier at -1): the opposite
    /// weight, under the opposite condition, is the same change.
    pub fn as_reported(&self, healthy: bool) -> (bool, i32) {
        if self.reverse { (!healthy, -self.weight) } else { (healthy, self.weight) }
    }
}

/// Gratuitous ARP / unsolicited NA timing (keepalived's vrrp_garp_* / garp_*).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Garp {
    /// Seconds after becoming master before the second burst; keepalived default 5.
    pub master_delay: u32,
    /// GARPs per burst; keepalived default 5.
    pub master_repeat: u32,
    /// Seconds between periodic refreshes while master; 0 = off (default).
    pub master_refresh: u32,
    /// GARPs per refresh; default 1.
    pub master_refresh_repeat: u32,
    /// Seconds between GARPs of a burst; default 0.
    pub interval: f64,
    /// After a lower-priority advert is received as master; default 5 / 5.
    pub lower_prio_delay: u32,
    pub lower_prio_repeat: u32,
}

impl Default for Garp {
    fn default() -> Garp {
        Garp {
            master_delay: 5,
            master_repeat: 5,
            master_refresh: 0,
            master_refresh_repeat: 1,
            interval: 0.0,
            lower_prio_delay: 5,
            lower_prio_repeat: 5,
        }
    }
}

/// keepalived's notify_master / notify_backup / notify_fault / notify_stop / notify scripts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Notify {
    pub master: Option<Argv>,
    pub backup: Option<Argv>,
    pub fault: Option<Argv>,
    pub stop: Option<Argv>,
    /// Called on every transition with INSTANCE NAME STATE PRIORITY appended, as keepalived's `notify`.
    pub any: Option<Argv>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpInstance {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    /// 1..=255; 255 = the address owner. keepalived default 100.
    pub priority: u8,
    /// 2 or 3; default 2 (keepalived's vrrp_version default).
    pub version: u8,
    /// Advertisement interval in centiseconds (v2: whole seconds only). Default 1 s.
    pub advert_int_cs: u16,
    pub auth_pass: Option<String>,
    pub vips: Vec<VipAddr>,
    /// keepalived's `virtual_ipaddress_excluded`: held with the VIPs while master, but not
    /// listed in adverts (so of either family, and beyond what one advert carries).
    pub excluded_vips: Vec<VipAddr>,
    /// keepalived's `virtual_routes`.
    pub routes: Vec<VirtualRoute>,
    pub state: InitialState,
    pub nopreempt: bool,
    /// Seconds after start-up before this instance preempts a lower-priority master.
    pub preempt_delay: u32,
    /// Sync-aware preemption: the longest a preemption waits for the connection table, in
    /// milliseconds (0 = preempt at once). Applies to the instance `lvsd.sync_daemon` follows.
    pub preempt_sync_wait_ms: u32,
    pub unicast_src: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    pub track_interfaces: Vec<TrackInterface>,
    pub tracks: Vec<Track>,
    pub garp: Garp,
    pub notify: Notify,
    pub smtp_alert: bool,
    /// keepalived's compatibility switch: compute the v3 IPv4 checksum without the pseudo-header.
    pub v3_checksum_as_v2: bool,
    /// keepalived `check_unicast_src`: accept unicast adverts only from `unicast_peers`.
    pub check_unicast_src: bool,
    /// Accept unicast adverts whatever their TTL / hop limit (peers behind a router).
    /// Off by default: RFC 5798 7.1 wants 255.
    pub relax_unicast_ttl: bool,
    /// keepalived's `dont_track_primary`: the interface going down is not a Fault.
    pub dont_track_primary: bool,
    /// keepalived's `skip_check_adv_addr`: the address list of adverts from the master already
    /// known is not checked again (a master that adds a VIP before its backup does is still
    /// heard).
    pub skip_check_adv_addr: bool,
    /// keepalived's `use_vmac`: the VIPs live on a macvlan carrying the virtual router MAC.
    pub vmac: Option<Vmac>,
    pub on_change: Option<HookRef>,
    pub origin: Origin,
}

/// keepalived's `use_vmac [NAME]` and `vmac_xmit_base`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vmac {
    /// The macvlan's name: keepalived's default is `vrrp.VRID`.
    pub name: String,
    /// Adverts leave and arrive on the instance's own interface (with its MAC); only the VIPs
    /// are on the macvlan. Required with unicast peers, as keepalived forces it.
    pub xmit_base: bool,
}

impl VrrpInstance {
    /// The link adverts go out on: the virtual MAC interface, unless adverts use the base.
    pub fn advert_interface(&self) -> &str {
        match &self.vmac {
            Some(m) if !m.xmit_base => &m.name,
            _ => &self.interface,
        }
    }
    /// The link VIPs without a `dev` of their own go on: the virtual MAC interface if any.
    pub fn vip_interface(&self) -> &str {
        self.vmac.as_ref().map_or(&self.interface, |m| &m.name)
    }
    /// The address family of the instance: that of its VIPs (IPv4 when it has none).
    pub fn is_ipv6(&self) -> bool {
        self.vips.first().is_some_and(|v| v.addr.is_ipv6())
    }
    /// Every address the instance holds while master: the VIPs, then the excluded ones.
    pub fn held_vips(&self) -> impl Iterator<Item = &VipAddr> {
        self.vips.iter().chain(&self.excluded_vips)
    }
    /// Advert interval in seconds, for display.
    pub fn advert_int_secs(&self) -> f64 {
        self.advert_int_cs as f64 / 100.0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncGroup {
    pub name: String,
    pub instances: Vec<String>,
    pub notify: Notify,
    pub smtp_alert: bool,
    pub on_change: Option<HookRef>,
    pub origin: Origin,
}
