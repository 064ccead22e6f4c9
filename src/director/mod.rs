//! The director: the one place that wires the policy, the IPVS backend and the control
//! socket together. Inputs arrive on channels; the director decides and acts.

mod alert;
mod bgp;
mod commands;
mod events;
pub mod heartbeat;
mod hooks;
mod inspect;
mod reload;
mod services;
pub mod status;
mod suspend;
pub mod sync;
mod timeouts;
mod track;
mod vmac;
pub mod vrrp;
mod vrrp_config;
pub mod vrrp_status;

pub use events::{Event, EventLog, now_secs};
use reload::Reloads;

use crate::control::server::Call;
use crate::control::{Command, RealRef, Response};
use crate::desired::{self, RealState};
use crate::ipvs::backend::{self, Backend, SyncReport};
use crate::ipvs::table::{ServiceKey, Table};
use crate::model::Foreign;
use crate::policy::{self, LoadOptions, Policy, PolicyError};
use crate::vrrp::fsm as fsm_state;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct Options {
    pub policy: PathBuf,
    pub load: LoadOptions,
    /// Where the control socket lives; None = no control socket.
    pub control: Option<PathBuf>,
    /// How often the kernel table is compared with the policy even when nothing changed,
    /// so that a rule deleted or edited by hand comes back.
    pub resync_interval: Duration,
    /// Quiet time after a file change before reloading (editors write in several steps).
    pub debounce: Duration,
    pub backend_name: &'static str,
    /// Prometheus text exposition on this address (opt-in).
    pub metrics: Option<std::net::SocketAddr>,
    /// The compatible name sets on the metrics page besides lvsd's own.
    pub metrics_compat: crate::control::metrics_page::Compat,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectorError {
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("control socket: {0}")]
    Control(#[from] crate::control::ControlError),
}

/// The result of the last reload, for status and the REPL.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadStatus {
    pub at: f64,
    pub ok: bool,
    pub errors: Vec<String>,
    pub generation: u64,
}

/// A real server as the director names it: service name + address.
pub type RealId = (String, SocketAddr);

pub struct Director {
    opts: Options,
    policy: Policy,
    generation: u64,
    last_reload: ReloadStatus,
    backend: Box<dyn Backend>,
    /// Services we put in the table (so we may delete them when the policy drops them); in
    /// key order, so that a whole pass makes it again from its sorted keys without hashing.
    owned: std::collections::BTreeSet<ServiceKey>,
    /// The table as last sent to the backend (drains included): what `drain` compares with.
    wanted: Table,
    drain: crate::drain::Drain,
    /// Each service's quorum state (with hysteresis), by service name.
    quorum: HashMap<String, crate::check::Quorum>,
    /// Set by a reload for its pass: which services of the new generation are declared
    /// exactly as before, so that the pass need not look at them (empty: look at all).
    declared_as_before: Vec<bool>,
    /// The policy's services in IPVS key order, for the generation it was made of (a reload
    /// bumps the generation as it swaps the policy in).
    key_order: (u64, Vec<(ServiceKey, usize)>),
    warned_foreign: HashSet<ServiceKey>,
    drained: HashSet<RealId>,
    weight_overrides: HashMap<RealId, u32>,
    /// The health checks (None until `run` starts them: `--once` and tests count reals up).
    checks: Option<std::rc::Rc<crate::check::CheckManager>>,
    events: EventLog,
    inspect: Option<inspect::Inspector>,
    last_sync: Option<SyncReport>,
    shutdown: bool,
    /// The file watcher and the files it watches (re-created only when that list changes).
    watcher: Option<(policy::watch::PolicyWatcher, Vec<PathBuf>)>,
    /// The VRRP instances, on their own thread (None until `run` starts them).
    heartbeat: Option<heartbeat::Heartbeat>,
    reloads_ok: u64,
    reloads_failed: u64,
    tracks: Option<track::Tracks>,
    /// Services held out by `ha_suspend` (not master of their VIP), by name.
    suspended: HashSet<String>,
    /// A reload asked for from the REPL, started by the loop.
    reload_requested: bool,
    /// The next policy loaded is applied even when a reload guard refuses it.
    force_reload: bool,
    /// VIPs announced over BGP by the local BIRD, and `drain-director`.
    bgp: bgp::BgpState,
    /// The IPVS connection sync daemons and the local connection count.
    sync: sync::SyncDaemons,
    /// The last error setting `lvs_timeouts` (said once).
    timeouts_error: Option<String>,
}

impl Director {
    pub fn new(opts: Options, backend: Box<dyn Backend>) -> Result<Director, DirectorError> {
        let policy = policy::load(&opts.policy, &opts.load)?;
        for w in crate::model::warnings(&policy.model) {
            tracing::warn!("{w}");
        }
        let mut events = EventLog::default();
        events.push("reload", format!("policy {} loaded (generation 1)", opts.policy.display()));
        Ok(Director {
            last_reload: ReloadStatus { at: now_secs(), ok: true, errors: Vec::new(), generation: 1 },
            opts,
            policy,
            generation: 1,
            backend,
            owned: std::collections::BTreeSet::new(),
            wanted: Table::default(),
            drain: crate::drain::Drain::default(),
            quorum: HashMap::new(),
            key_order: (0, Vec::new()),
            declared_as_before: Vec::new(),
            warned_foreign: HashSet::new(),
            drained: HashSet::new(),
            weight_overrides: HashMap::new(),
            checks: None,
            events,
            inspect: None,
            last_sync: None,
            shutdown: false,
            watcher: None,
            heartbeat: None,
            reloads_ok: 0,
            reloads_failed: 0,
            tracks: None,
            suspended: HashSet::new(),
            reload_requested: false,
            force_reload: false,
            bgp: bgp::BgpState::default(),
            sync: sync::SyncDaemons::default(),
            timeouts_error: None,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Run until SIGTERM/SIGINT. Must be called inside a tokio LocalSet.
    pub async fn run(mut self) -> Result<(), DirectorError> {
        use tokio::signal::unix::{SignalKind, signal};
        // Signal handlers first: a SIGHUP sent as soon as the socket appears must not kill us.
        let mut sigterm = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut sigint = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let mut sighup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        let (call_tx, mut call_rx) = mpsc::channel::<Call>(64);
        // Metrics first: an address that cannot be bound fails the start, before the socket exists.
        if let Some(addr) = self.opts.metrics {
            let l = crate::control::metrics::bind(addr).await?;
            let mo = crate::control::metrics::Options { compat: self.opts.metrics_compat, ..Default::default() };
            tokio::task::spawn_local(crate::control::metrics::serve_with(l, call_tx.clone(), mo));
            tracing::info!("metrics on http://{addr}/metrics");
        }
        if let Some(path) = &self.opts.control {
            let listener = crate::control::server::bind(path)?;
            tokio::task::spawn_local(crate::control::server::serve(listener, call_tx.clone()));
            tracing::info!("control socket {}", path.display());
        }
        drop(call_tx);
        let (watch_tx, mut watch_rx) = mpsc::unbounded_channel();
        self.rewatch(&watch_tx);
        let mut resync = tokio::time::interval(self.opts.resync_interval);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reload_at: Option<tokio::time::Instant> = None;
        let mut reloads = Reloads::default();

        let (check_tx, mut check_rx) = mpsc::unbounded_channel();
        if let Err(e) = crate::check::install_net(&self.policy.lua) {
            self.events.push("check_error", format!("lvsd.net: {e}"));
        }
        crate::programs::set_run_as(self.policy.model.global.script_user);
        let checks = std::rc::Rc::new(crate::check::CheckManager::new(&self.policy.model, self.policy.lua.clone(), check_tx));
        checks.start();
        self.checks = Some(checks);
        self.resync();
        // Before VRRP starts: both daemons, on every node (see director::sync).
        self.sync_daemons_reconcile();
        self.lvs_timeouts_reconcile();
        let (count_tx, mut count_rx) = mpsc::unbounded_channel();
        let mut count_tick = tokio::time::interval(sync::COUNT_EVERY);
        count_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (track_tx, mut track_rx) = mpsc::unbounded_channel();
        let mut tracks = track::Tracks::new(track_tx);
        tracks.set(&self.policy.model, std::time::Instant::now());
        self.tracks = Some(tracks);
        let mut reports = match heartbeat::Heartbeat::start(self.policy.model.without_services()) {
            Ok((h, reports)) => {
                self.heartbeat = Some(h);
                Some(reports)
            }
            Err(e) => {
                self.events.push("vrrp_error", format!("cannot start the VRRP thread: {e}"));
                None
            }
        };
        crate::systemd::notify("READY=1");
        let mut watchdog = crate::systemd::Watchdog::from_env();
        let mut watchdog_tick = tokio::time::interval(watchdog.as_ref().map_or(Duration::from_secs(3600), |w| w.ping_every()));
        watchdog_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut bgp_tick = tokio::time::interval(Duration::from_millis(100));
        bgp_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.shutdown {
            #[cfg(debug_assertions)]
            crate::injected::DIRECTOR.panic_if_due();
            let report = async {
                match reports.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            };
            let track_deadline = self.tracks.as_ref().and_then(|t| t.next_deadline());
            let track_sleep = async {
                match track_deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            let drain_deadline = self.drain.next_deadline();
            let drain_sleep = async {
                match drain_deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            let reload_sleep = async {
                match reload_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            let load_done = async {
                match reloads.loading.as_mut() {
                    Some((_, task)) => task.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                res = load_done => {
                    let (why, _) = reloads.loading.take().expect("a load was running");
                    let result = res.unwrap_or_else(|e| Err(PolicyError::Failed(e.to_string())));
                    let applied = self.apply_reload(&why, result);
                    let resp = if applied {
                        Response::ok(json!({ "generation": self.generation }))
                    } else {
                        Response::err(self.last_reload.errors.join("\n"))
                    };
                    for w in reloads.waiting.drain(..) {
                        let _ = w.send(resp.clone());
                    }
                    self.rewatch(&watch_tx);
                    if let Some((why, next)) = reloads.again.take() {
                        reloads.waiting = next;
                        reloads.loading = Some((why, self.load_in_background()));
                    }
                }
                _ = sigterm.recv() => { self.events.push("stop", "SIGTERM: stopping"); break; }
                _ = sigint.recv() => { self.events.push("stop", "SIGINT: stopping"); break; }
                _ = sighup.recv() => {
                    if let Some(why) = reloads.request("SIGHUP", None) {
                        reloads.loading = Some((why, self.load_in_background()));
                    }
                }
                Some(change) = watch_rx.recv() => {
                    // A finished save reloads almost at once (the few events of one rename
                    // still come together); a write in progress waits for quiet.
                    let wait = if change.complete { Duration::from_millis(2) } else { self.opts.debounce };
                    reload_at = Some(tokio::time::Instant::now() + wait);
                }
                _ = reload_sleep => {
                    reload_at = None;
                    if let Some(why) = reloads.request("file changed", None) {
                        reloads.loading = Some((why, self.load_in_background()));
                    }
                }
                _ = track_sleep => {
                    let changes = match self.tracks.as_mut() {
                        Some(t) => t.run_due(&self.policy, std::time::Instant::now()),
                        None => Vec::new(),
                    };
                    self.on_track_changes(changes);
                }
                Some(done) = track_rx.recv() => {
                    let change = self.tracks.as_mut().and_then(|t| t.on_done(done));
                    self.on_track_changes(change.into_iter().collect());
                }
                Some(ev) = check_rx.recv() => {
                    let mut batch = vec![ev];
                    while let Ok(ev) = check_rx.try_recv() {
                        batch.push(ev);
                    }
                    self.on_check_events(batch);
                }
                Some((cmd, reply)) = call_rx.recv() => {
                    if let Command::CheckNow(r) = cmd {
                        self.check_now(r, reply);
                    } else if let Command::Eval { code } = cmd {
                        self.eval_reply(&code, reply);
                        self.rewatch(&watch_tx);
                    } else if let Command::Status { text_only, brief } = cmd {
                        self.status_reply(reply, text_only, brief);
                    } else if let Command::Reload { force } = cmd {
                        self.force_reload |= force;
                        if let Some(why) = reloads.request("requested", Some(reply)) {
                            reloads.loading = Some((why, self.load_in_background()));
                        }
                    } else {
                        let resp = self.handle(cmd);
                        self.rewatch(&watch_tx);
                        let _ = reply.send(resp);
                    }
                }
                _ = watchdog_tick.tick(), if watchdog.is_some() => {
                    let age = self.heartbeat.as_ref().and_then(|h| h.last_beat()).map(|t| t.elapsed());
                    if let Some(w) = watchdog.as_mut() {
                        w.tick(age, heartbeat::BEAT_EVERY);
                    }
                }
                _ = bgp_tick.tick(), if self.bgp.speaker.is_some() => self.bgp_tick(),
                _ = resync.tick() => { self.resync(); self.sync_daemons_reconcile(); self.lvs_timeouts_reconcile(); }
                _ = count_tick.tick() => self.sync_count(&count_tx),
                Some(c) = count_rx.recv() => self.on_sync_count(c),
                _ = drain_sleep => { self.sync_changed(); }
                Some(r) = report => self.on_report(r),
            }
            if std::mem::take(&mut self.reload_requested)
                && let Some(why) = reloads.request("requested", None)
            {
                reloads.loading = Some((why, self.load_in_background()));
            }
        }
        // The router moves the traffic away first, while everything here still serves it.
        self.bgp_withdraw_for_stop().await;
        self.omega(&(0..self.policy.model.services.len()).collect::<Vec<_>>());
        if let Some(h) = self.heartbeat.take() {
            h.shutdown(Duration::from_secs(3)).await;
            // The stop's own transitions (notify_stop and friends).
            while let Some(r) = reports.as_mut().and_then(|r| r.try_recv().ok()) {
                self.on_report(r);
            }
        }
        self.sync_daemons_stop().await;
        if self.policy.model.global.release_ipvs_on_stop {
            self.release_ipvs();
        }
        if let Some(c) = self.checks.take() {
            c.stop();
        }
        self.watcher = None;
        self.bgp_stop();
        crate::systemd::notify("STOPPING=1");
        if let Some(path) = &self.opts.control {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }
}
