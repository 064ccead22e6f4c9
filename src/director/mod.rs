//! The director: the one place that wires the policy, the IPVS backend and the control
//! socket together. Inputs arrive on channels; the director decides and acts.

mod alert;
mod events;
mod inspect;
mod suspend;
mod track;
pub mod vrrp;
pub mod status;

pub use events::{now_secs, Event, EventLog};

use crate::control::server::Call;
use crate::vrrp::fsm as fsm_state;
use crate::control::{Command, RealRef, Response};
use crate::desired::{self, RealState};
use crate::ipvs::backend::{self, Backend, SyncReport};
use crate::ipvs::table::{ServiceKey, Table};
use crate::model::Foreign;
use crate::policy::{self, LoadOptions, Policy, PolicyError};
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
    /// Services we put in the table (so we may delete them when the policy drops them).
    owned: HashSet<ServiceKey>,
    /// The table as last sent to the backend (drains included): what `drain` compares with.
    wanted: Table,
    drain: crate::drain::Drain,
    /// Each service's quorum state (with hysteresis), by service name.
    quorum: HashMap<String, crate::check::Quorum>,
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
    /// Running VRRP instances (None until `run` starts them).
    vrrp: Option<vrrp::Vrrp>,
    reloads_ok: u64,
    reloads_failed: u64,
    /// How long applying the last reload held the event loop.
    last_apply: Duration,
    tracks: Option<track::Tracks>,
    /// Services held out by `ha_suspend` (not master of their VIP), by name.
    suspended: HashSet<String>,
}

impl Director {
    pub fn new(opts: Options, backend: Box<dyn Backend>) -> Result<Director, DirectorError> {
        let policy = policy::load(&opts.policy, &opts.load)?;
        let mut events = EventLog::default();
        events.push("reload", format!("policy {} loaded (generation 1)", opts.policy.display()));
        Ok(Director {
            last_reload: ReloadStatus { at: now_secs(), ok: true, errors: Vec::new(), generation: 1 },
            opts,
            policy,
            generation: 1,
            backend,
            owned: HashSet::new(),
            wanted: Table::default(),
            drain: crate::drain::Drain::default(),
            quorum: HashMap::new(),
            warned_foreign: HashSet::new(),
            drained: HashSet::new(),
            weight_overrides: HashMap::new(),
            checks: None,
            events,
            inspect: None,
            last_sync: None,
            shutdown: false,
            watcher: None,
            vrrp: None,
            reloads_ok: 0,
            reloads_failed: 0,
            last_apply: Duration::from_millis(10),
            tracks: None,
            suspended: HashSet::new(),
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn real_state(&self, si: usize, ri: usize) -> RealState {
        let vs = &self.policy.model.services[si];
        let r = &vs.reals[ri];
        // Most directors have no drains or overrides: skip building the key then.
        let (mut forced, mut drained) = (None, false);
        if !self.weight_overrides.is_empty() || !self.drained.is_empty() {
            let id = (vs.name.clone(), r.addr);
            forced = self.weight_overrides.get(&id).copied();
            drained = self.drained.contains(&id);
        }
        if drained {
            return RealState::Draining;
        }
        match self.checks.as_ref().map(|c| c.real_state(si, ri)) {
            None => RealState::Up(forced.unwrap_or(r.weight)),
            Some(RealState::Up(w)) => RealState::Up(forced.unwrap_or(w)),
            Some(other) => other,
        }
    }

    /// Service `si` as wanted now. Its quorum state is updated first (keepalived's quorum
    /// with hysteresis), and a change is recorded and runs quorum_up / quorum_down.
    fn want_service(&mut self, si: usize) -> (ServiceKey, crate::ipvs::table::Service) {
        let vs = &self.policy.model.services[si];
        let live = desired::live_weight(vs, |ri| self.real_state(si, ri));
        if !self.quorum.contains_key(&vs.name) {
            self.quorum.insert(vs.name.clone(), crate::check::Quorum::new(vs.quorum, vs.hysteresis));
        }
        let q = self.quorum.get_mut(&vs.name).expect("inserted above");
        q.quorum = vs.quorum as u64;
        q.hysteresis = vs.hysteresis as u64;
        let (changed, up) = (q.update(live), q.up);
        if let Some(up) = changed {
            let vs = vs.clone();
            let what = if up { "quorum gained" } else { "quorum lost" };
            let sorry = match (&vs.sorry_server, up) {
                (Some(s), false) => format!("; sorry server {} in", s.addr),
                (Some(s), true) => format!("; sorry server {} out", s.addr),
                (None, _) => String::new(),
            };
            self.events.push("quorum", format!("{}: {what} (live weight {live}, quorum {} hysteresis {}){sorry}", vs.name, vs.quorum, vs.hysteresis));
            if let Some(argv) = if up { &vs.quorum_up } else { &vs.quorum_down } {
                spawn_program(argv.clone());
            }
        }
        let vs = &self.policy.model.services[si];
        desired::service(vs, |ri| self.real_state(si, ri), up)
    }

    /// keepalived's `omega`: a service that goes away (shutdown, or dropped from the policy)
    /// runs `notify_down` for each of its reals still up, and `quorum_down` if it had quorum.
    fn omega(&mut self, services: &[usize]) {
        for &si in services {
            let vs = &self.policy.model.services[si];
            if !vs.omega {
                continue;
            }
            for (ri, r) in vs.reals.iter().enumerate() {
                if let (Some(argv), RealState::Up(_)) = (&r.notify_down, self.real_state(si, ri)) {
                    spawn_program(argv.clone());
                }
            }
            if let (Some(argv), true) = (&vs.quorum_down, self.quorum.get(&vs.name).is_none_or(|q| q.up)) {
                spawn_program(argv.clone());
            }
            self.events.push("omega", format!("{}: going away, notify_down run for its reals", vs.name));
        }
    }

    /// Delete the services lvsd put in (on stop, as keepalived does), and say what failed.
    fn release_ipvs(&mut self) {
        let mut keys: Vec<ServiceKey> = self.owned.iter().copied().collect();
        keys.sort();
        for key in keys {
            let op = crate::ipvs::reconcile::Op::DelService { key };
            match self.backend.apply(&op) {
                Ok(()) | Err(crate::ipvs::backend::ApplyError::NotFound) => tracing::info!(target: "ipvs", "{op}"),
                Err(e) => tracing::warn!("{op} on stop: {e}"),
            }
        }
        self.owned.clear();
    }

    /// Bring the whole backend table to what the policy and the health of the reals want.
    pub fn resync(&mut self) -> &SyncReport {
        let n = self.policy.model.services.len();
        self.sync_services(0..n, true)
    }

    /// The same for some services only (a health change, a drain): only they are read and
    /// written, so a change costs the same with ten services or ten thousand.
    fn resync_services(&mut self, services: impl IntoIterator<Item = usize>) {
        self.sync_services(services, false);
    }

    fn sync_services(&mut self, services: impl IntoIterator<Item = usize>, whole: bool) -> &SyncReport {
        let now = std::time::Instant::now();
        let timeout = Duration::from_secs(self.policy.model.global.drain_timeout as u64);
        let mut want = Table::default();
        let mut scope: Vec<ServiceKey> = Vec::new();
        for si in services {
            let (k, svc) = self.want_service(si);
            scope.push(k);
            if !self.ha_suspended(si) {
                want.services.insert(k, svc);
            }
        }
        // Services that left the policy: only a whole sync sees them go.
        if whole {
            scope.extend(self.wanted.services.keys().filter(|k| !want.services.contains_key(k)));
        }
        scope.sort_unstable();
        scope.dedup();
        let mut next = Table::default();
        for &k in &scope {
            let prev = self.wanted.services.remove(&k);
            if let Some(svc) = self.drain.apply(k, prev.as_ref(), want.services.remove(&k), now, timeout) {
                next.services.insert(k, svc);
            }
        }
        let remove_all = self.policy.model.global.foreign == Foreign::Remove;
        let owned = &self.owned;
        let report = if whole {
            backend::sync(self.backend.as_mut(), &next, &|k| remove_all || owned.contains(k))
        } else {
            backend::sync_services(self.backend.as_mut(), &next, &|k| remove_all || owned.contains(k), &scope)
        };
        for op in &report.applied {
            tracing::info!(target: "ipvs", "{op}");
        }
        for (op, e) in &report.failed {
            self.events.push("ipvs_error", format!("{op}: {e} (will retry at the next resync)"));
        }
        if let Some(e) = &report.dump_error {
            self.events.push("ipvs_error", format!("reading the IPVS table failed: {e}"));
        }
        for k in &report.foreign {
            if self.warned_foreign.insert(*k) {
                tracing::warn!(
                    "IPVS service {} is not in the policy; leaving it alone (set foreign = \"remove\" in lvsd.global to delete such services)",
                    crate::ipvs::format::service_name(k)
                );
            }
        }
        for k in &scope {
            self.owned.remove(k);
        }
        self.owned.extend(next.services.keys().copied());
        self.wanted.services.extend(next.services);
        self.last_sync = Some(report);
        self.last_sync.as_ref().unwrap()
    }

    /// keepalived's `ha_suspend` for service `si`, with the VRRP states of now.
    fn ha_suspended(&self, si: usize) -> bool {
        let m = &self.policy.model;
        let master = |name: &str| self.vrrp.as_ref().and_then(|v| v.state_of(name)) == Some(fsm_state::State::Master);
        suspend::suspended(&m.services[si], &m.vrrp, master)
    }

    /// Follow VRRP into `ha_suspend`: services that became suspended leave the table and
    /// their checks pause; those resumed come back. `force` tells the checks even when
    /// nothing changed (after a reload, whose new probes know nothing of it).
    fn follow_ha_suspend(&mut self, force: bool) {
        let m = &self.policy.model;
        if !force && self.suspended.is_empty() && !m.services.iter().any(|s| s.ha_suspend) {
            return;
        }
        let now: Vec<bool> = (0..m.services.len()).map(|si| self.ha_suspended(si)).collect();
        let changed: Vec<usize> = (0..now.len()).filter(|&si| now[si] != self.suspended.contains(&m.services[si].name)).collect();
        if !force && changed.is_empty() {
            return;
        }
        for &si in &changed {
            let what = if now[si] { "suspended: no VRRP instance holding its VIP is master here" } else { "resumed: master of its VIP" };
            self.events.push("ha_suspend", format!("{}: {what}", m.services[si].name));
        }
        self.suspended = (0..now.len()).filter(|&si| now[si]).map(|si| m.services[si].name.clone()).collect();
        if let Some(c) = &self.checks {
            c.suspend(&now);
        }
        self.resync_services(changed);
    }

    /// The index of the service a real belongs to, for a sync of that service only.
    fn service_index(&self, id: &RealId) -> Option<usize> {
        self.policy.model.services.iter().position(|s| s.name == id.0)
    }

    /// Load the policy again; on any error the running generation stays.
    pub fn reload(&mut self, why: &str) -> bool {
        crate::systemd::notify_reloading();
        let result = policy::load(&self.opts.policy, &self.opts.load);
        self.apply_reload(why, result)
    }

    /// Load the policy on a worker thread (a big policy takes tens of milliseconds to
    /// evaluate, which must not delay VRRP adverts); `apply_reload` takes the result.
    fn load_in_background(&self) -> tokio::task::JoinHandle<Result<Policy, PolicyError>> {
        crate::systemd::notify_reloading();
        let (path, opts) = (self.opts.policy.clone(), self.opts.load.clone());
        tokio::task::spawn_blocking(move || policy::load(&path, &opts))
    }

    /// Applying a big policy holds the event loop for a while (tens of ms for a thousand
    /// services: the IPVS diff and the checks' update). When a VRRP advert falls due within
    /// that time, wait for it and send it first, so that no advert is late because of a
    /// reload. Waits at most as long as the last apply took.
    async fn advertise_before_apply(&mut self) {
        let budget = self.last_apply + Duration::from_millis(5);
        let Some(due) = self.vrrp.as_ref().and_then(|v| v.next_deadline()) else { return };
        let now = std::time::Instant::now();
        if due > now + budget {
            return;
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        let ts = self.vrrp.as_mut().map(|v| v.on_timeout(std::time::Instant::now())).unwrap_or_default();
        self.on_transitions(ts);
        self.flush_vrrp().await;
    }

    /// Swap in a freshly loaded policy, or keep the running one and report why not.
    fn apply_reload(&mut self, why: &str, result: Result<Policy, PolicyError>) -> bool {
        let started = std::time::Instant::now();
        let ok = match result {
            Ok(p) => {
                let gone: Vec<usize> = (0..self.policy.model.services.len())
                    .filter(|&si| !p.model.services.iter().any(|s| s.name == self.policy.model.services[si].name))
                    .collect();
                self.omega(&gone);
                let old = std::mem::replace(&mut self.policy, p);
                // Closing a big Lua state takes a while too.
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => drop(rt.spawn_blocking(move || drop(old))),
                    Err(_) => drop(old),
                }
                self.generation += 1;
                self.inspect = None;
                self.last_reload = ReloadStatus { at: now_secs(), ok: true, errors: Vec::new(), generation: self.generation };
                self.reloads_ok += 1;
                self.forget_unknown_reals();
                if let Some(c) = &self.checks {
                    if let Err(e) = crate::check::install_net(&self.policy.lua) {
                        self.events.push("check_error", format!("lvsd.net: {e}"));
                    }
                    c.update(self.policy.model.clone(), self.policy.lua.clone());
                }
                let checked = started.elapsed();
                self.resync();
                tracing::debug!("reload applied: checks updated in {checked:?}, IPVS synced at {:?}", started.elapsed());
                // Recorded once the table has the change, so its time is when it took effect.
                self.events.push("reload", format!("policy reloaded ({why}): generation {}", self.generation));
                if let Some(t) = self.tracks.as_mut() {
                    t.set(&self.policy.model, std::time::Instant::now());
                }
                if let Some(mut v) = self.vrrp.take() {
                    let (ts, errors) = v.update(&self.policy.model, std::time::Instant::now());
                    self.vrrp = Some(v);
                    for e in errors {
                        self.events.push("vrrp_error", e);
                    }
                    self.on_transitions(ts);
                }
                self.follow_ha_suspend(true);
                true
            }
            Err(e) => {
                let errors: Vec<String> = match e {
                    PolicyError::Invalid(errs) => errs.iter().map(|e| e.to_string()).collect(),
                    other => vec![other.to_string()],
                };
                for e in &errors {
                    tracing::error!("{e}");
                }
                self.events.push(
                    "reload_failed",
                    format!("policy not reloaded ({why}): {}; generation {} keeps running", errors.join("; "), self.generation),
                );
                self.last_reload = ReloadStatus { at: now_secs(), ok: false, errors, generation: self.generation };
                self.reloads_failed += 1;
                false
            }
        };
        crate::systemd::notify("READY=1");
        ok
    }

    /// Drop overrides of reals the new policy no longer has.
    fn forget_unknown_reals(&mut self) {
        let known: HashSet<RealId> = self
            .policy
            .model
            .services
            .iter()
            .flat_map(|s| s.reals.iter().map(move |r| (s.name.clone(), r.addr)))
            .collect();
        self.drained.retain(|id| known.contains(id));
        self.weight_overrides.retain(|id, _| known.contains(id));
    }

    fn real_index(&self, id: &RealId) -> Option<(usize, usize)> {
        let si = self.policy.model.services.iter().position(|s| s.name == id.0)?;
        let ri = self.policy.model.services[si].reals.iter().position(|r| r.addr == id.1)?;
        Some((si, ri))
    }

    fn find_real(&self, r: &RealRef) -> Result<RealId, String> {
        let Some(vs) = self.policy.model.services.iter().find(|s| s.name == r.service) else {
            let names: Vec<&str> = self.policy.model.services.iter().map(|s| s.name.as_str()).collect();
            return Err(format!("no service '{}' (services: {})", r.service, names.join(", ")));
        };
        let addr = policy::parse_addr_port(&r.real, Some(vs.vip_port())).map_err(|e| format!("real {e}"))?;
        if !vs.reals.iter().any(|x| x.addr == addr) {
            let reals: Vec<String> = vs.reals.iter().map(|x| x.addr.to_string()).collect();
            return Err(format!("service '{}' has no real {} (reals: {})", vs.name, addr, reals.join(", ")));
        }
        Ok((vs.name.clone(), addr))
    }

    /// Handle one control request.
    pub fn handle(&mut self, cmd: Command) -> Response {
        match cmd {
            Command::Status => Response::ok(self.status()),
            Command::Reload => {
                if self.reload("requested") {
                    Response::ok(json!({ "generation": self.generation }))
                } else {
                    Response::err(self.last_reload.errors.join("\n"))
                }
            }
            Command::Eval { code } => self.eval(&code),
            Command::Drain(r) | Command::Undrain(r) | Command::ClearWeight(r) | Command::CheckNow(r) | Command::History(r)
                if self.find_real(&r).is_err() =>
            {
                Response::err(self.find_real(&r).unwrap_err())
            }
            Command::Drain(r) => {
                let id = self.find_real(&r).unwrap();
                let si = self.service_index(&id);
                self.drained.insert(id);
                self.events.push("drain", format!("{} {} drained (weight 0)", r.service, r.real));
                self.resync_services(si);
                Response::ok(json!({ "drained": true }))
            }
            Command::Undrain(r) => {
                let id = self.find_real(&r).unwrap();
                let si = self.service_index(&id);
                self.drained.remove(&id);
                self.events.push("drain", format!("{} {} undrained", r.service, r.real));
                self.resync_services(si);
                Response::ok(json!({ "drained": false }))
            }
            Command::SetWeight { real, weight } => match self.find_real(&real) {
                Err(e) => Response::err(e),
                Ok(_) if weight > 65535 => Response::err("weight must be 0..65535"),
                Ok(id) => {
                    let si = self.service_index(&id);
                    self.weight_overrides.insert(id, weight);
                    self.events.push("weight", format!("{} {} weight forced to {weight}", real.service, real.real));
                    self.resync_services(si);
                    Response::ok(json!({ "weight": weight }))
                }
            },
            Command::ClearWeight(r) => {
                let id = self.find_real(&r).unwrap();
                let si = self.service_index(&id);
                self.weight_overrides.remove(&id);
                self.events.push("weight", format!("{} {} weight override cleared", r.service, r.real));
                self.resync_services(si);
                Response::ok(json!({ "weight": null }))
            }
            Command::CheckNow(_) => Response::err("checks are not running in this director"),
            Command::History(r) => {
                let id = self.find_real(&r).unwrap();
                let (si, ri) = self.real_index(&id).unwrap();
                match self.checks.as_ref().and_then(|c| c.real_status(si, ri)) {
                    Some(st) => Response::ok(serde_json::to_value(st).unwrap_or_default()),
                    None => Response::ok(json!(null)),
                }
            }
            Command::Yield { instance } | Command::Unyield { instance } if self.vrrp.is_none() => {
                Response::err(format!("no running VRRP instance '{instance}'"))
            }
            Command::Yield { instance } => {
                let r = self.vrrp.as_mut().unwrap().yield_instance(&instance, std::time::Instant::now());
                match r {
                    Ok(ts) => {
                        self.events.push("yield", format!("{instance}: yielding mastership (priority 0 sent, held at priority 1)"));
                        self.on_transitions(ts);
                        Response::ok(json!({ "yielded": instance }))
                    }
                    Err(e) => Response::err(e),
                }
            }
            Command::Unyield { instance } => {
                let r = self.vrrp.as_mut().unwrap().unyield(&instance, std::time::Instant::now());
                match r {
                    Ok(ts) => {
                        self.events.push("yield", format!("{instance}: priority restored"));
                        self.on_transitions(ts);
                        Response::ok(json!({ "yielded": null }))
                    }
                    Err(e) => Response::err(e),
                }
            }
            Command::Events { limit } => Response::ok(json!(self.events.recent(limit.unwrap_or(50)))),
        }
    }

    fn eval(&mut self, code: &str) -> Response {
        let status = self.status();
        let insp = match self.inspect.take() {
            Some(i) => i,
            None => match inspect::Inspector::new(&self.policy.model.node, self.opts.load.limits) {
                Ok(i) => i,
                Err(e) => return Response::err(format!("cannot create the inspection state: {e}")),
            },
        };
        let (result, actions) = insp.eval(code, &status, &self.events.recent(100));
        self.inspect = Some(insp);
        let mut action_results = Vec::new();
        for a in actions {
            let r = self.handle(a);
            if !r.ok {
                return Response::err(r.error.unwrap_or_default());
            }
            action_results.push(r.result);
        }
        match result {
            Ok(v) => Response::ok(v),
            Err(e) => Response::err(e),
        }
    }

    pub fn status(&mut self) -> serde_json::Value {
        status::build(&self.snapshot())
    }

    /// What the status document needs, copied out (the document is built from it).
    pub fn snapshot(&mut self) -> status::Snapshot {
        let actual = self.backend.dump().ok();
        let now = std::time::Instant::now();
        let mut leaving = HashMap::new();
        for (k, svc) in actual.iter().flat_map(|t| t.services.iter()) {
            for dk in svc.dests.keys() {
                if let Some(until) = self.drain.until(k, dk) {
                    leaving.insert((*k, *dk), until.saturating_duration_since(now).as_secs_f64().ceil() as u64);
                }
            }
        }
        let m = &self.policy.model;
        status::Snapshot {
            model: m.clone(),
            policy: self.opts.policy.display().to_string(),
            generation: self.generation,
            last_reload: self.last_reload.clone(),
            reloads: (self.reloads_ok, self.reloads_failed),
            backend: self.opts.backend_name,
            writes: self.backend.writes(),
            vrrp: self.vrrp.as_ref().map(|v| v.status()),
            states: m.services.iter().enumerate().map(|(si, vs)| (0..vs.reals.len()).map(|ri| self.real_state(si, ri)).collect()).collect(),
            drained: self.drained.clone(),
            overrides: self.weight_overrides.clone(),
            leaving,
            actual,
            suspended: self.suspended.clone(),
        }
    }

    /// Answer a status request: the document is built on a worker thread.
    fn status_reply(&mut self, reply: tokio::sync::oneshot::Sender<Response>) {
        let snap = self.snapshot();
        tokio::task::spawn_local(async move {
            let doc = tokio::task::spawn_blocking(move || status::build(&snap)).await;
            let _ = reply.send(match doc {
                Ok(d) => Response::ok(d),
                Err(e) => Response::err(format!("status: {e}")),
            });
        });
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Run a real's checks now; checks are async, so a task answers when they are done.
    fn check_now(&mut self, r: RealRef, reply: tokio::sync::oneshot::Sender<Response>) {
        let found = self.find_real(&r).map(|id| self.real_index(&id));
        match (found, self.checks.clone()) {
            (Err(e), _) => {
                let _ = reply.send(Response::err(e));
            }
            (Ok(Some((si, ri))), Some(c)) => {
                tokio::task::spawn_local(async move {
                    let results = c.run_now(si, ri).await;
                    let _ = reply.send(Response::ok(serde_json::to_value(results).unwrap_or_default()));
                });
            }
            _ => {
                let _ = reply.send(Response::err("checks are not running in this director"));
            }
        }
    }

    /// The IPVS connection sync daemon follows its VRRP instance: master while the instance
    /// is master, backup otherwise (keepalived's lvs_sync_daemon behaviour).
    fn follow_sync_daemon(&mut self, ts: &[vrrp::Transition]) {
        let Some(sd) = self.policy.model.sync_daemon.clone() else { return };
        let Some(name) = sd.instance.clone() else { return };
        let Some(t) = ts.iter().rev().find(|t| t.instance == name) else { return };
        let Some(mut want) = crate::ipvs::cli::daemon_from_model(&self.policy.model) else { return };
        want.state = if t.to == fsm_state::State::Master {
            crate::ipvs::wire::DaemonState::Master
        } else {
            crate::ipvs::wire::DaemonState::Backup
        };
        match self.backend.sync_daemon(Some(&want)) {
            Ok(done) => {
                for d in done {
                    self.events.push("sync_daemon", d);
                }
            }
            Err(e) => self.events.push("ipvs_error", format!("sync daemon: {e}")),
        }
    }

    fn on_track_changes(&mut self, changes: Vec<track::TrackChange>) {
        for (instance, name, up, weight) in changes {
            self.events.push("track", format!("{instance}: track {name} is {}", if up { "up" } else { "down" }));
            let ts = self.vrrp.as_mut().map(|v| v.track(&instance, &name, up, weight, std::time::Instant::now())).unwrap_or_default();
            self.on_transitions(ts);
        }
    }

    /// Health changes: log them, run the reals' and services' hooks and notify programs, and
    /// send the table the difference (one sync of the services concerned for the whole batch).
    fn on_check_events(&mut self, batch: Vec<crate::check::CheckEvent>) {
        let mut changed = std::collections::BTreeSet::new();
        for ev in batch {
            if ev.service < self.policy.model.services.len() {
                changed.insert(ev.service);
            }
            let Some(change) = ev.change else { continue };
            let Some(vs) = self.policy.model.services.get(ev.service).cloned() else { continue };
            let Some(r) = vs.reals.get(ev.real).cloned() else { continue };
            let (up, reason) = match &change {
                crate::check::RealChange::Up => (true, "checks pass".to_string()),
                crate::check::RealChange::Down { reason } => (false, reason.clone()),
            };
            let state = if up { "up" } else { "down" };
            self.events.push("health", format!("{} {}: {state} ({reason})", vs.name, r.addr));
            for hook in [if up { r.on_up } else { r.on_down }, if up { vs.on_up } else { vs.on_down }].into_iter().flatten() {
                let p = &self.policy;
                if let Ok(t) = p.table([
                    ("service", p.string(&vs.name)),
                    ("real", p.string(&r.addr.to_string())),
                    ("state", p.string(state)),
                    ("reason", p.string(&reason)),
                ]) {
                    if let Err(e) = p.call_hook::<_, ()>(hook, t) {
                        self.events.push("hook_error", format!("{} {} on_{state}: {e}", vs.name, r.addr));
                    }
                }
            }
            if let Some(argv) = if up { &r.notify_up } else { &r.notify_down } {
                spawn_program(argv.clone());
            }
        }
        if !changed.is_empty() {
            self.resync_services(changed);
        }
    }

    /// Record VRRP transitions and run the policy's hooks and notify programs, in order.
    fn on_transitions(&mut self, ts: Vec<vrrp::Transition>) {
        if ts.is_empty() {
            return;
        }
        self.follow_sync_daemon(&ts);
        let mut groups_done: Vec<(String, fsm_state::State)> = Vec::new();
        for t in ts {
            self.events.push("vrrp", format!("{}: {} -> {} ({}, priority {})", t.instance, t.from, t.to, t.reason, t.priority));
            let Some(model) = self.policy.model.vrrp.iter().find(|v| v.name == t.instance).cloned() else { continue };
            let ev = |p: &Policy, name: &str| {
                p.table([
                    ("instance", p.string(name)),
                    ("from", p.string(t.from.as_str())),
                    ("to", p.string(t.to.as_str())),
                    ("priority", mlua::Value::Integer(t.priority as i64)),
                    ("reason", p.string(&t.reason)),
                ])
            };
            if let Some(h) = model.on_change {
                if let Ok(tbl) = ev(&self.policy, &t.instance) {
                    if let Err(e) = self.policy.call_hook::<_, ()>(h, tbl) {
                        self.events.push("hook_error", format!("{} on_change: {e}", t.instance));
                    }
                }
            }
            run_notify(&model.notify, "INSTANCE", &t.instance, t.to, t.priority);
            if model.smtp_alert {
                self.mail_alert("Instance", &t.instance, &t);
            }
            if let Some(g) = &t.group {
                if groups_done.iter().any(|(n, s)| n == g && *s == t.to) {
                    continue;
                }
                groups_done.push((g.clone(), t.to));
                if let Some(gm) = self.policy.model.sync_groups.iter().find(|x| &x.name == g).cloned() {
                    if let Some(h) = gm.on_change {
                        if let Ok(tbl) = ev(&self.policy, g) {
                            if let Err(e) = self.policy.call_hook::<_, ()>(h, tbl) {
                                self.events.push("hook_error", format!("sync group {g} on_change: {e}"));
                            }
                        }
                    }
                    run_notify(&gm.notify, "GROUP", g, t.to, t.priority);
                    if gm.smtp_alert {
                        self.mail_alert("Group", g, &t);
                    }
                }
            }
        }
        self.follow_ha_suspend(false);
    }

    /// Run until SIGTERM/SIGINT. Must be called inside a tokio LocalSet.
    pub async fn run(mut self) -> Result<(), DirectorError> {
        use tokio::signal::unix::{signal, SignalKind};
        // Signal handlers first: a SIGHUP sent as soon as the socket appears must not kill us.
        let mut sigterm = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut sigint = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let mut sighup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        let (call_tx, mut call_rx) = mpsc::channel::<Call>(64);
        // Metrics first: an address that cannot be bound fails the start, before the socket exists.
        if let Some(addr) = self.opts.metrics {
            let l = crate::control::metrics::bind(addr).await?;
            tokio::task::spawn_local(crate::control::metrics::serve(l, call_tx.clone()));
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
        let checks = std::rc::Rc::new(crate::check::CheckManager::new(self.policy.model.clone(), self.policy.lua.clone(), check_tx));
        checks.start();
        self.checks = Some(checks);
        self.resync();
        match self.backend.sync_daemon(crate::ipvs::cli::daemon_from_model(&self.policy.model).as_ref()) {
            Ok(done) => done.into_iter().for_each(|d| self.events.push("sync_daemon", d)),
            Err(e) => self.events.push("ipvs_error", format!("sync daemon: {e}")),
        }
        let (track_tx, mut track_rx) = mpsc::unbounded_channel();
        let mut tracks = track::Tracks::new(track_tx);
        tracks.set(&self.policy.model, std::time::Instant::now());
        self.tracks = Some(tracks);
        let (vrrp_tx, mut vrrp_rx) = mpsc::unbounded_channel();
        let mut v = vrrp::Vrrp::new(vrrp_tx);
        let (ts, errors) = v.start(&self.policy.model, std::time::Instant::now());
        self.vrrp = Some(v);
        for e in errors {
            self.events.push("vrrp_error", e);
        }
        self.on_transitions(ts);
        // The first sync ran before VRRP: services with ha_suspend were held out of it.
        self.follow_ha_suspend(false);
        self.flush_vrrp().await;
        crate::systemd::notify("READY=1");
        while !self.shutdown {
            let deadline = self.vrrp.as_ref().and_then(|v| v.next_deadline());
            let track_deadline = self.tracks.as_ref().and_then(|t| t.next_deadline());
            let track_sleep = async {
                match track_deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            let vrrp_sleep = async {
                match deadline {
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
                    if result.is_ok() {
                        self.advertise_before_apply().await;
                    }
                    let started = std::time::Instant::now();
                    let applied = self.apply_reload(&why, result);
                    if applied {
                        self.last_apply = started.elapsed();
                    }
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
                    } else if let Command::Status = cmd {
                        self.status_reply(reply);
                    } else if let Command::Reload = cmd {
                        if let Some(why) = reloads.request("requested", Some(reply)) {
                            reloads.loading = Some((why, self.load_in_background()));
                        }
                    } else {
                        let resp = self.handle(cmd);
                        self.rewatch(&watch_tx);
                        let _ = reply.send(resp);
                    }
                }
                _ = resync.tick() => { self.resync(); }
                _ = drain_sleep => { self.resync(); }
                Some(input) = vrrp_rx.recv() => {
                    let ts = self.vrrp.as_mut().map(|v| v.on_input(input, std::time::Instant::now())).unwrap_or_default();
                    self.on_transitions(ts);
                }
                _ = vrrp_sleep => {
                    let ts = self.vrrp.as_mut().map(|v| v.on_timeout(std::time::Instant::now())).unwrap_or_default();
                    self.on_transitions(ts);
                }
            }
            self.flush_vrrp().await;
        }
        self.omega(&(0..self.policy.model.services.len()).collect::<Vec<_>>());
        if let Some(mut v) = self.vrrp.take() {
            let ts = v.shutdown(std::time::Instant::now()).await;
            self.on_transitions(ts);
        }
        if self.policy.model.global.release_ipvs_on_stop {
            self.release_ipvs();
        }
        if let Some(c) = self.checks.take() {
            c.stop();
        }
        self.watcher = None;
        crate::systemd::notify("STOPPING=1");
        if let Some(path) = &self.opts.control {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// keepalived's alert: "[router_id] VRRP Instance VI_1 - Entering MASTER state".
    fn mail_alert(&mut self, kind: &str, name: &str, t: &vrrp::Transition) {
        let g = &self.policy.model.global;
        let (Some(server), false) = (g.smtp_server.clone(), g.notification_email.is_empty()) else {
            self.events.push("alert_error", format!("smtp_alert on {name}, but lvsd.global has no smtp_server or notification_email"));
            return;
        };
        let router = g.router_id.clone().unwrap_or_else(|| self.policy.model.node.clone());
        let state = t.to.as_str().to_ascii_uppercase();
        let mail = alert::Mail {
            server,
            timeout: std::time::Duration::from_secs(g.smtp_connect_timeout as u64),
            helo: self.policy.model.node.clone(),
            from: g.notification_email_from.clone().unwrap_or_else(|| format!("lvsd@{}", self.policy.model.node)),
            to: g.notification_email.clone(),
            subject: format!("[{router}] VRRP {kind} {name} - Entering {state} state"),
            body: format!("=> VRRP {kind} {name} is now {state} ({}, priority {}) <=", t.reason, t.priority),
        };
        tokio::task::spawn_local(async move {
            if let Err(e) = alert::send(&mail).await {
                tracing::warn!("e-mail alert \"{}\": {e}", mail.subject);
            }
        });
    }

    async fn flush_vrrp(&mut self) {
        if let Some(v) = self.vrrp.as_mut() {
            v.flush().await;
            v.tidy();
        }
    }

    /// Watch the policy's files, unless the watcher already covers exactly these.
    fn rewatch(&mut self, tx: &mpsc::UnboundedSender<policy::watch::Change>) {
        if self.watcher.as_ref().is_some_and(|(_, files)| *files == self.policy.files) {
            return;
        }
        self.watcher = None;
        match policy::watch::watch(&self.policy.files, tx.clone()) {
            Ok(w) => self.watcher = Some((w, self.policy.files.clone())),
            Err(e) => self.events.push("watch_error", format!("{e}; reload with SIGHUP or `lvsd reload`")),
        }
    }
}

/// Reload requests while a policy loads in the background.
#[derive(Default)]
struct Reloads {
    /// The load running now: why, and its task.
    loading: Option<(String, tokio::task::JoinHandle<Result<Policy, PolicyError>>)>,
    /// Control requests answered when it is done.
    waiting: Vec<tokio::sync::oneshot::Sender<Response>>,
    /// Requests that came during the load: the file may have changed since it was read, so
    /// one more load follows, and these wait for that one.
    again: Option<(String, Vec<tokio::sync::oneshot::Sender<Response>>)>,
}

impl Reloads {
    /// Note a request; returns the reason when a load must start now.
    fn request(&mut self, why: &str, reply: Option<tokio::sync::oneshot::Sender<Response>>) -> Option<String> {
        if self.loading.is_none() {
            self.waiting.extend(reply);
            return Some(why.to_string());
        }
        self.again.get_or_insert_with(|| (why.to_string(), Vec::new())).1.extend(reply);
        None
    }
}

/// keepalived's notify scripts: `notify_master` etc. as given, and `notify` with
/// TYPE NAME STATE PRIORITY appended. Argument vectors, never a shell.
fn run_notify(n: &crate::model::Notify, kind: &str, name: &str, to: fsm_state::State, priority: u8) {
    use fsm_state::State;
    let specific = match to {
        State::Master => n.master.clone(),
        State::Backup => n.backup.clone(),
        State::Fault => n.fault.clone(),
        State::Initialize => n.stop.clone(),
    };
    let mut runs: Vec<Vec<String>> = specific.into_iter().collect();
    if let Some(mut any) = n.any.clone() {
        let state = if to == State::Initialize { "STOP".to_string() } else { to.as_str().to_ascii_uppercase() };
        any.extend([kind.to_string(), name.to_string(), state, priority.to_string()]);
        runs.push(any);
    }
    for argv in runs {
        spawn_program(argv);
    }
}

/// Run a program the policy named (an argument vector, no shell) and log how it ended.
fn spawn_program(argv: Vec<String>) {
    {
        let shown = argv.join(" ");
        match tokio::process::Command::new(&argv[0]).args(&argv[1..]).kill_on_drop(false).spawn() {
            Ok(mut child) => {
                tokio::task::spawn_local(async move {
                    match child.wait().await {
                        Ok(s) if s.success() => {}
                        Ok(s) => tracing::warn!("notify {shown}: {s}"),
                        Err(e) => tracing::warn!("notify {shown}: {e}"),
                    }
                });
            }
            Err(e) => tracing::warn!("notify {shown}: cannot run: {e}"),
        }
    }
}
