//! The kernel's IPVS connection sync daemons, from `lvsd.sync_daemon { ... }`.
//!
//! Every node runs both daemons, from start-up to exit (the kernel allows one daemon of each
//! state at once):
//! - the backup daemon fills the local table from the others, so a node that becomes master
//!   already holds the connections, and a node that returns refills it before it preempts
//!   (see `vrrp::preempt_sync`);
//! - the master daemon sends the connections this node's IPVS forwards. A backup that holds no
//!   VIP forwards nothing, so it sends nothing; a node that becomes master sends from its first
//!   packet, with no window between the VRRP transition and the daemon's start (a connection
//!   opened in that window would reach the backup only at its 50th packet,
//!   `net.ipv4.vs.sync_period`); and a former master still forwarding stray packets keeps the
//!   new master's entries fresh. In scale-out (`lvsd.bgp`) every director forwards and sends.
//!
//! keepalived instead switches one daemon for the other on each transition: its new backup
//! starts from an empty table and its new master sends only after the switch.
//!
//! lvsd stops on exit only the daemons it started. The local connection table is counted
//! from `/proc/net/ip_vs_conn_sync` (the kernel has no netlink dump of connections) for
//! status, metrics and the preemption wait.

use super::{Director, vrrp::Transition};
use crate::ipvs::wire::{DaemonState, SyncDaemon};
use crate::vrrp::preempt_sync::{self, PreemptWait};
use serde_json::{Value, json};

mod conns;
pub mod message;
pub use conns::{ConnCounts, ConnLine, ConnLineError, count_conns, parse_conn_line};

/// How often the local connection table is counted.
pub const COUNT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One change to the running daemons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonOp {
    Start(SyncDaemon),
    /// Stop the daemon that runs with these settings.
    Stop(SyncDaemon),
}

fn state_name(s: DaemonState) -> &'static str {
    match s {
        DaemonState::Master => "master",
        DaemonState::Backup => "backup",
    }
}

/// One line for events: "master sync daemon on eth0 id 7".
pub fn describe(d: &SyncDaemon) -> String {
    format!("{} sync daemon on {} id {}", state_name(d.state), d.interface, d.sync_id)
}

fn with_state(d: &SyncDaemon, state: DaemonState) -> SyncDaemon {
    SyncDaemon { state, ..d.clone() }
}

/// The daemons a node runs with the policy's settings `base`: both, always (see the module).
pub fn wanted(base: &SyncDaemon) -> Vec<SyncDaemon> {
    vec![with_state(base, DaemonState::Master), with_state(base, DaemonState::Backup)]
}

/// Whether the policy is scale-out: `lvsd.bgp` and at least one service announced over it.
/// Every such director may receive any flow (the router's ECMP picks), so every one of them
/// is active.
pub fn scale_out(m: &crate::model::Model) -> bool {
    m.bgp.is_some() && m.services.iter().any(|s| s.announce.is_some())
}

/// The ops that bring `running` to `want` (stops first: a state holds one daemon). A daemon
/// of a wanted state with other settings is replaced; one of a state not wanted is stopped
/// only when it has the policy's settings (`base`: ours, or a previous lvsd's); any other
/// is left alone.
pub fn plan(want: &[SyncDaemon], running: &[SyncDaemon], base: &SyncDaemon) -> Vec<DaemonOp> {
    let mut stops = Vec::new();
    let mut starts = Vec::new();
    for s in [DaemonState::Master, DaemonState::Backup] {
        let have = running.iter().find(|d| d.state == s);
        let w = want.iter().find(|d| d.state == s);
        match (have, w) {
            (Some(h), Some(w)) if !h.satisfies(w) => {
                stops.push(DaemonOp::Stop(h.clone()));
                starts.push(DaemonOp::Start(w.clone()));
            }
            (Some(_), Some(_)) => {}
            (None, Some(w)) => starts.push(DaemonOp::Start(w.clone())),
            (Some(h), None) if h.satisfies(&with_state(base, s)) => stops.push(DaemonOp::Stop(h.clone())),
            (Some(_), None) | (None, None) => {}
        }
    }
    stops.extend(starts);
    stops
}

/// Read and count the local table (blocking: run it off the director's loop). Error: the
/// kernel has no IPVS here, or the file cannot be read.
pub fn read_conns() -> Result<ConnCounts, String> {
    std::fs::read_to_string("/proc/net/ip_vs_conn_sync").map(|t| count_conns(&t)).map_err(|e| format!("/proc/net/ip_vs_conn_sync: {e}"))
}

/// What the director knows of the daemons.
#[derive(Debug, Default)]
pub struct SyncDaemons {
    /// States of the daemons this process started (stopped on exit).
    started: Vec<DaemonState>,
    /// The daemons as last read from the backend.
    running: Vec<SyncDaemon>,
    /// The last error, with the policy line (cleared by a pass that succeeds).
    error: Option<String>,
    /// The local connection table, as last counted, and when (seconds since the epoch).
    pub conns: Option<(ConnCounts, f64)>,
    pub conns_error: Option<String>,
    /// A count is being read.
    pub reading: bool,
    /// A preemption held for the connection table: (the instances holding it, the master
    /// they would preempt, the rule). The members of a sync group hold together.
    preempt: Option<(Vec<String>, std::net::IpAddr, PreemptWait)>,
}

impl SyncDaemons {
    /// The daemons for status and metrics.
    pub fn status(&self, configured: Option<&crate::model::SyncDaemon>) -> Value {
        let Some(sd) = configured else { return Value::Null };
        let daemon = |s: DaemonState| {
            let d = self.running.iter().find(|d| d.state == s);
            json!({
                "running": d.is_some(),
                "started_here": self.started.contains(&s),
                "interface": d.map(|d| d.interface.clone()),
                "sync_id": d.map(|d| d.sync_id),
            })
        };
        json!({
            "interface": sd.interface,
            "id": sd.id,
            "instance": sd.instance,
            "master": daemon(DaemonState::Master),
            "backup": daemon(DaemonState::Backup),
            "error": self.error,
            "connections": self.conns.map(|(c, _)| c),
            "connections_at": self.conns.map(|(_, at)| at),
            "connections_error": self.conns_error,
            "preempt_wait": self.preempt.as_ref().map(|(i, m, w)| json!({
                "instances": i, "master": m.to_string(), "waiting_s": w.started().elapsed().as_secs_f64(),
            })),
        })
    }
}

impl Director {
    /// The policy's daemon settings, if it asks for a sync daemon.
    fn sync_base(&self) -> Option<SyncDaemon> {
        crate::ipvs::cli::daemon_from_model(&self.policy.model)
    }

    /// Bring the daemons to what the policy wants (start, reload, resync).
    pub(super) fn sync_daemons_reconcile(&mut self) {
        let Some(base) = self.sync_base() else { return };
        let origin = self.policy.model.sync_daemon.as_ref().map(|s| s.origin.to_string()).unwrap_or_default();
        let running = match self.backend.daemons() {
            Ok(r) => r,
            Err(e) => {
                self.sync_error(format!("{origin}: sync daemon: cannot list the running daemons: {e}"));
                return;
            }
        };
        let mut failed = None;
        for op in plan(&wanted(&base), &running, &base) {
            match &op {
                DaemonOp::Stop(d) => match self.backend.stop_daemon(d.state) {
                    Ok(()) => {
                        self.sync.started.retain(|s| *s != d.state);
                        self.events.push("sync_daemon", format!("stopped the {}", describe(d)));
                    }
                    Err(e) => failed = Some(format!("{origin}: sync daemon: stop the {}: {e}", describe(d))),
                },
                DaemonOp::Start(d) => match self.backend.start_daemon(d) {
                    Ok(()) => {
                        if !self.sync.started.contains(&d.state) {
                            self.sync.started.push(d.state);
                        }
                        self.events.push("sync_daemon", format!("started the {}", describe(d)));
                    }
                    Err(e) => failed = Some(format!("{origin}: sync daemon: start the {}: {e}", describe(d))),
                },
            }
        }
        self.sync.running = self.backend.daemons().unwrap_or(running);
        match failed {
            Some(e) => self.sync_error(e),
            None => self.sync.error = None,
        }
    }

    fn sync_error(&mut self, e: String) {
        // Once per distinct error: a resync every few seconds must not flood the log.
        if self.sync.error.as_deref() != Some(e.as_str()) {
            tracing::error!("{e}");
            self.events.push("sync_daemon_error", e.clone());
        }
        self.sync.error = Some(e);
    }

    /// A transition of a held instance ends its preemption wait (the daemons do not follow
    /// transitions: both run always).
    pub(super) fn preempt_wait_on_transitions(&mut self, ts: &[Transition]) {
        let held = |i: &str| self.sync.preempt.as_ref().is_some_and(|p| p.0.iter().any(|h| h == i));
        let Some(t) = ts.iter().rev().find(|t| held(&t.instance)) else { return };
        if let Some((i, m, w)) = self.sync.preempt.take() {
            let waited = w.started().elapsed().as_secs_f64();
            self.events.push(
                "preempt_wait",
                format!(
                    "{}: {} {} -> {} while the preemption of {m} waited ({waited:.1} s): wait ended",
                    i.join(", "),
                    t.instance,
                    t.from,
                    t.to
                ),
            );
        }
    }

    /// The heartbeat holds a preemption: watch the table until it settles (or the bound).
    pub(super) fn on_preempt_held(&mut self, instance: String, master: std::net::IpAddr, priority: u8, bound: std::time::Duration) {
        self.events.push(
            "preempt_wait",
            format!(
                "{instance}: would preempt {master} (priority {priority}); waiting up to {:.1} s for the connection table to fill from its sync daemon",
                bound.as_secs_f64()
            ),
        );
        if let Some((held, _, _)) = self.sync.preempt.as_mut() {
            // Another member of the group: released with the first.
            if !held.contains(&instance) {
                held.push(instance);
            }
            return;
        }
        // The backup daemon should run already; make sure (it fills the table).
        self.sync_daemons_reconcile();
        let now = std::time::Instant::now();
        self.sync.preempt = Some((vec![instance], master, PreemptWait::new(now, bound, preempt_sync::SETTLE)));
    }

    /// A new count (or none) for a held preemption: release it when the rule says so.
    fn sync_preempt_poll(&mut self) {
        let kernel = self.opts.backend_name == "kernel";
        let fresh = self.sync.conns.filter(|_| self.sync.conns_error.is_none()).map(|(c, _)| c.established);
        let Some((instance, master, w)) = self.sync.preempt.as_mut() else { return };
        let now = std::time::Instant::now();
        // The in-memory backend has no connections: an empty table, which settles.
        let count = if kernel { fresh } else { Some(0) };
        let verdict = match count {
            Some(n) => {
                w.sample(now, n);
                w.poll(now)
            }
            None => w.poll_blind(now),
        };
        let Some(release) = verdict else { return };
        let (instances, master) = (instance.clone(), *master);
        self.sync.preempt = None;
        self.events.push("preempt_wait", format!("{}: {release}: preempting {master}", instances.join(", ")));
        for instance in instances {
            if let Some(h) = &self.heartbeat
                && let Err(e) = h.send(super::heartbeat::Command::ReleasePreempt(instance.clone()))
            {
                self.events.push("vrrp_error", format!("{instance}: release of the held preemption not sent: {e}"));
            }
        }
    }

    /// On exit: stop the daemons this process started. A master daemon keeps up to 2 s of
    /// changes in its buffer (IPVS_SYNC_FLUSH_TIME) and drops them when stopped, so it is
    /// given that long first: the connections opened just before the stop reach the backup.
    pub(super) async fn sync_daemons_stop(&mut self) {
        if self.sync.started.contains(&DaemonState::Master) {
            tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        }
        for s in std::mem::take(&mut self.sync.started) {
            match self.backend.stop_daemon(s) {
                Ok(()) => self.events.push("sync_daemon", format!("stopped the {} sync daemon (lvsd stops)", state_name(s))),
                Err(e) => tracing::warn!("stopping the {} sync daemon: {e}", state_name(s)),
            }
        }
    }

    /// Count the local connection table off the loop; the result comes back on `tx`.
    pub(super) fn sync_count(&mut self, tx: &tokio::sync::mpsc::UnboundedSender<Result<ConnCounts, String>>) {
        if self.opts.backend_name != "kernel" {
            self.sync_preempt_poll();
        }
        if self.policy.model.sync_daemon.is_none() || self.opts.backend_name != "kernel" || self.sync.reading {
            return;
        }
        self.sync.reading = true;
        let tx = tx.clone();
        tokio::task::spawn_blocking(move || {
            let _ = tx.send(read_conns());
        });
    }

    pub(super) fn on_sync_count(&mut self, r: Result<ConnCounts, String>) {
        self.sync.reading = false;
        match r {
            Ok(c) => {
                self.sync.conns = Some((c, super::now_secs()));
                self.sync.conns_error = None;
            }
            Err(e) => self.sync.conns_error = Some(e),
        }
        self.sync_preempt_poll();
    }

    pub(super) fn sync_status(&self) -> Value {
        self.sync.status(self.policy.model.sync_daemon.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SyncDaemon {
        SyncDaemon::new(DaemonState::Backup, "eth0", 7)
    }
    fn d(s: DaemonState, ifname: &str, id: u32) -> SyncDaemon {
        SyncDaemon::new(s, ifname, id)
    }

    #[test]
    fn every_node_runs_both_daemons() {
        assert_eq!(wanted(&base()).iter().map(|d| d.state).collect::<Vec<_>>(), [DaemonState::Master, DaemonState::Backup]);
    }

    fn policy(src: &str) -> crate::model::Model {
        crate::policy::test_model(src, "n")
    }

    #[test]
    fn scale_out_is_bgp_with_an_announced_service() {
        let bgp = r#"lvsd.bgp { local_as = 65001, neighbors = { { address = "192.0.2.1", as = 65000 } } }
lvsd.sync_daemon { interface = "eth0", id = 7 }
"#;
        let svc = |announce: bool| {
            format!(
                r#"lvsd.service "web" {{ vip = "203.0.113.10:80", scheduler = "mh", announce = {announce}, reals = {{ "198.51.100.1:80" }} }}"#
            )
        };
        assert!(scale_out(&policy(&format!("{bgp}{}", svc(true)))));
        assert!(!scale_out(&policy(&format!("{bgp}{}", svc(false)))));
        assert!(!scale_out(&policy(&format!("lvsd.sync_daemon {{ interface = \"eth0\" }}\n{}", svc(false)))));
    }

    #[test]
    fn a_missing_daemon_is_started_and_a_full_set_left_alone() {
        let running = [d(DaemonState::Backup, "eth0", 7)];
        assert_eq!(plan(&wanted(&base()), &running, &base()), [DaemonOp::Start(d(DaemonState::Master, "eth0", 7))]);
        let running = [d(DaemonState::Master, "eth0", 7), d(DaemonState::Backup, "eth0", 7)];
        assert!(plan(&wanted(&base()), &running, &base()).is_empty());
        // Ours with another id (a reload changed it) is replaced.
        let running = [d(DaemonState::Master, "eth0", 9), d(DaemonState::Backup, "eth0", 7)];
        assert_eq!(
            plan(&wanted(&base()), &running, &base()),
            [DaemonOp::Stop(d(DaemonState::Master, "eth0", 9)), DaemonOp::Start(d(DaemonState::Master, "eth0", 7))]
        );
    }

    #[test]
    fn a_foreign_daemon_is_left_alone_unless_its_state_is_needed() {
        // Someone else's master daemon (other id): the state is needed, so it is replaced,
        // stop first.
        let running = [d(DaemonState::Master, "eth1", 9)];
        assert_eq!(
            plan(&wanted(&base()), &running, &base()),
            [
                DaemonOp::Stop(d(DaemonState::Master, "eth1", 9)),
                DaemonOp::Start(d(DaemonState::Master, "eth0", 7)),
                DaemonOp::Start(d(DaemonState::Backup, "eth0", 7)),
            ]
        );
    }

    #[test]
    fn settings_left_unset_take_the_kernels_defaults() {
        let mut have = d(DaemonState::Backup, "eth0", 7);
        have.sync_maxlen = Some(1472);
        have.mcast_port = Some(8848);
        assert!(have.satisfies(&base()));
        let mut other = base();
        other.mcast_port = Some(9000);
        assert!(!have.satisfies(&other));
    }

    const SAMPLE: &str = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n\
TCP C6336414 A1B2 CB00710A 0050 C6336415 0050 ESTABLISHED Local      899\n\
TCP C6336415 A1B3 CB00710A 0050 C6336416 0050 ESTABLISHED Sync       880\n\
TCP C6336416 A1B4 CB00710A 0050 C6336416 0050 FIN_WAIT    Sync        60\n\
TCP 2001:0db8:0000:0000:0000:0000:0000:0001 A1B2 2001:0db8:0000:0000:0000:0000:0000:0064 0050 2001:0db8:0000:0000:0000:0000:0000:0015 0050 ESTABLISHED Sync 700\n\
UDP C6336414 0035 CB00710A 0035 C6336415 0035 UDP         Local      120\n";

    #[test]
    fn the_kernels_table_is_counted_by_origin_and_state() {
        let c = count_conns(SAMPLE);
        assert_eq!(c, ConnCounts { total: 5, synced: 3, established: 3, malformed: 0 });
        assert_eq!(count_conns(""), ConnCounts::default());
    }

    #[test]
    fn bad_lines_are_counted_never_fatal() {
        let c = count_conns("TCP C6336414 A1B2\nTCP a b c d e f ESTABLISHED Elsewhere 9\n\u{0}\u{ff}\n");
        assert_eq!(c.malformed, 3);
        assert_eq!(c.total, 0);
        assert_eq!(parse_conn_line("TCP a b"), Err(ConnLineError::Fields(3)));
        assert!(matches!(parse_conn_line("TCP a b c d e f S Elsewhere 9"), Err(ConnLineError::Origin(_))));
    }
}
