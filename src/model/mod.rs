//! The model: plain data saying what the director should do, validated. No I/O, no Lua.
//!
//! A policy file is evaluated into a [`Model`]; everything downstream (plan, IPVS, VRRP,
//! checks) reads only this.

mod bgp;
mod check;
mod service;
mod validate;
mod vrrp;

pub use bgp::*;
pub use check::*;
pub use service::*;
pub use validate::{validate, warnings};
pub use vrrp::*;

use serde::Serialize;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Where a declaration came from: file and line, for every error message. The path is
/// shared: every real of a service holds its service's (10,000 reals held a copy each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    #[serde(serialize_with = "serialize_path")]
    pub file: Arc<Path>,
    pub line: u32,
}

impl Default for Origin {
    fn default() -> Origin {
        Origin { file: Path::new("").into(), line: 0 }
    }
}

fn serialize_path<S: serde::Serializer>(p: &Arc<Path>, s: S) -> Result<S::Ok, S::Error> {
    p.serialize(s)
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: the position is not known (the whole file is meant).
        if self.line == 0 { write!(f, "{}", self.file.display()) } else { write!(f, "{}:{}", self.file.display(), self.line) }
    }
}

/// A validation or policy error with its place in the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ModelError {
    pub origin: Origin,
    pub message: String,
}

impl ModelError {
    pub fn new(origin: &Origin, message: impl Into<String>) -> ModelError {
        ModelError { origin: origin.clone(), message: message.into() }
    }
}

/// A Lua function kept by the policy engine (hook, weight function, check body).
/// The model only holds its index; the policy engine owns the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct HookRef(pub u32);

/// An external program given as an argument vector: never run through a shell unless the
/// policy itself names one.
/// A program to run: its argument vector (the first is the program) and, when the policy
/// names one (keepalived's `user USER [GROUP]` of a script), the user and group it runs as;
/// otherwise it runs as the global `script_user`, or root. Shown as the argument vector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Argv {
    pub args: Vec<String>,
    pub run_as: Option<RunAs>,
}

impl std::ops::Deref for Argv {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.args
    }
}

impl From<Vec<String>> for Argv {
    fn from(args: Vec<String>) -> Self {
        Argv { args, run_as: None }
    }
}

impl Serialize for Argv {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.args.serialize(s)
    }
}

/// A user and group to run programs as, looked up when the policy is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// Settings that apply to the whole director (keepalived's global_defs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Global {
    pub router_id: Option<String>,
    pub notification_email: Vec<String>,
    pub notification_email_from: Option<String>,
    pub smtp_server: Option<String>,
    /// keepalived default: 30 s.
    pub smtp_connect_timeout: u32,
    pub enable_script_security: bool,
    /// keepalived's `script_user USER [GROUP]`: the user (and group) the programs the policy
    /// names run as (checks, tracks, notify and quorum programs); None: root, as lvsd runs.
    pub script_user: Option<RunAs>,
    pub garp: Garp,
    /// What to do with IPVS services that are not in the policy.
    pub foreign: Foreign,
    /// Seconds a removed or failed real stays at weight 0 before removal (0 = at once, as keepalived).
    pub drain_timeout: u32,
    /// Delete the IPVS services lvsd put in when it stops (keepalived's default; its
    /// `--dont-release-ipvs` is `false` here).
    pub release_ipvs_on_stop: bool,
    /// The largest share (0..1) of the running services a reload may remove unless forced.
    pub reload_guard: f64,
    /// The VRRP thread's scheduling: None is lvsd's default (SCHED_RR at priority 1),
    /// Some(1..=99) SCHED_RR at that priority (keepalived's `vrrp_rt_priority`), Some(0) the
    /// ordinary class (keepalived's default).
    pub vrrp_rt_priority: Option<u8>,
    /// IPVS connection timeouts (keepalived's `lvs_timeouts`, `ipvsadm --set`), in seconds;
    /// None leaves the kernel's as they are.
    pub lvs_timeouts: Option<LvsTimeouts>,
}

/// `lvs_timeouts`: each is seconds, 0 leaves that one as it is (as SET_CONFIG reads 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LvsTimeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

impl Default for Global {
    fn default() -> Global {
        Global {
            router_id: None,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_connect_timeout: 30,
            enable_script_security: false,
            script_user: None,
            garp: Garp::default(),
            foreign: Foreign::Keep,
            drain_timeout: 0,
            release_ipvs_on_stop: true,
            reload_guard: 0.5,
            vrrp_rt_priority: None,
            lvs_timeouts: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Foreign {
    /// Leave services lvsd did not create alone (default; warn once).
    Keep,
    /// Delete every service that is not in the policy.
    Remove,
}

/// The kernel's IPVS connection sync daemon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncDaemon {
    pub interface: String,
    /// Sync id 0-255 (keepalived default 0... both directors must agree).
    pub id: u8,
    pub maxlen: Option<u16>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
    pub group: Option<std::net::IpAddr>,
    /// The VRRP instance whose state drives master/backup.
    pub instance: Option<String>,
    pub origin: Origin,
}

/// Everything one policy evaluation produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Model {
    pub node: String,
    pub global: Global,
    pub vrrp: Vec<VrrpInstance>,
    pub sync_groups: Vec<SyncGroup>,
    pub services: Vec<VirtualServer>,
    pub sync_daemon: Option<SyncDaemon>,
    /// `lvsd.bgp`: VIPs announced through the local BIRD (scale-out).
    pub bgp: Option<Bgp>,
}

impl Model {
    /// Everything but the services: what the VRRP thread needs. Its copy does not carry the
    /// reals (10,000 of them are ~2 MiB), and a reload's copy is not freed on that thread.
    pub fn without_services(&self) -> Model {
        Model {
            node: self.node.clone(),
            global: self.global.clone(),
            vrrp: self.vrrp.clone(),
            sync_groups: self.sync_groups.clone(),
            services: Vec::new(),
            sync_daemon: self.sync_daemon.clone(),
            bgp: self.bgp.clone(),
        }
    }

    pub fn real_count(&self) -> usize {
        self.services.iter().map(|s| s.reals.len()).sum()
    }
}
