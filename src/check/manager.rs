//! The check manager: runs every probe a model needs, keeps each probe's health, combines them per real (up only if all its checks are up), applies
//! dynamic weights, and tells the director about changes over a channel. Bare TCP probes
//! (a connect, nothing sent or expected: most of a large site's) have no task of their own:
//! they wait on the start grid as an `Rc` each, and one driver task per manager runs those
//! due, with only the runs in flight held as futures. Other probes run as a local task each.
//!
//! Runs on the director's current-thread runtime inside a `LocalSet` (the Lua state is not
//! `Send`); `start` must be called from within that LocalSet.
//!
//! Every probe is supervised: a probe (task or driven run) that panics (or ends while its probe is still
//! wanted) takes its probe down at once, which sends the director a `Down` event with the
//! reason, and is started again after a backoff; the timer and the connect poller, on
//! which every probe waits, are restarted the same way.

use super::connects::Connects;
use super::grid::{Grid, first_delay, grid_step, jittered};
use super::health::{CheckResult, Health, History, Transition};
use super::lua::{RsInfo, call_weight};
use super::registry::{Plan, ProbeKey};
use super::runner::{Prober, RunCtx};
use super::supervise::{CatchUnwind, MAX_BACKOFF, backoff, panic_message};
use crate::desired::RealState;
use crate::model::{HookRef, Model, Origin};
use futures_util::stream::{FuturesUnordered, StreamExt};
use mlua::Lua;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Lua instructions per check run and per weight function call.
    pub instructions: u64,
    /// Interval jitter: each wait is interval × (1 ± jitter), spreading many checks.
    pub jitter: f64,
    /// Send an event for every result, not only when a real's state or weight changes.
    pub every_result: bool,
    /// Runs start on a grid of this step (at most a twentieth of the check's interval), so
    /// that checks due within a few milliseconds of each other share one wake-up of the loop.
    pub tick: Duration,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions { instructions: 10_000_000, jitter: 0.1, every_result: false, tick: Duration::from_millis(50) }
    }
}

/// How a real's state changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum RealChange {
    /// Every check of the real is up again.
    Up,
    /// A check went down; the reason is its error.
    Down { reason: String },
}

/// Sent to the director.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckEvent {
    /// Index into `model.services`.
    pub service: usize,
    /// Index into that service's `reals`.
    pub real: usize,
    /// The result that caused the event.
    pub result: CheckResult,
    /// The real's state now: `Up(effective weight)` or `Down`.
    pub new_state: RealState,
    /// `Some` when the real went up or down (not for a weight change alone).
    pub change: Option<RealChange>,
}

/// One check on one target, as status shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeStatus {
    pub kind: &'static str,
    pub target: SocketAddr,
    pub up: bool,
    pub history: History,
}

/// One real, as status shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RealStatus {
    pub address: SocketAddr,
    pub state: String,
    pub weight: Option<u32>,
    pub checks: Vec<ProbeStatus>,
}

struct ProbeSlot {
    /// The spec's canonical text: with the prober's target, the probe's [`ProbeKey`].
    spec: Arc<str>,
    prober: Rc<Prober>,
    health: Health,
    users: Few<(usize, usize)>,
    /// A real using this probe has a weight function, which sees every result.
    weighs: bool,
    /// Every service using this probe is suspended (`ha_suspend`): runs are skipped.
    suspended: bool,
    task: Option<JoinHandle<()>>,
    /// A bare TCP probe scheduled on the grid for the driver (instead of a task).
    driven: bool,
}

impl ProbeSlot {
    fn key(&self) -> ProbeKey {
        ProbeKey { target: self.prober.target, spec: self.spec.clone() }
    }
}

/// A short list held in place when it has one item, as most have (a probe's users, a
/// real's probes): 10,000 lists of one cost an allocation each otherwise.
enum Few<T> {
    One(T),
    Many(Box<[T]>),
}

impl<T: Copy> From<&[T]> for Few<T> {
    fn from(v: &[T]) -> Few<T> {
        match v {
            [one] => Few::One(*one),
            _ => Few::Many(v.into()),
        }
    }
}

impl<T> std::ops::Deref for Few<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Few::One(t) => std::slice::from_ref(t),
            Few::Many(v) => v,
        }
    }
}

/// One real: what the manager needs of the model's `RealServer` (not a copy of it: the
/// director holds the model), and its state.
struct RealSlot {
    addr: SocketAddr,
    /// The weight the policy gives it.
    weight: u32,
    /// The weight function, and where the real was declared for its errors (reals with
    /// one only: boxed, as most have none).
    weight_fn: Option<Box<(HookRef, Arc<Origin>)>>,
    probes: Few<usize>,
    state: RealState,
    /// Weight set by a check (exec dynamic, Lua); keepalived keeps it until changed.
    check_weight: Option<u32>,
    /// Last good value of the weight function.
    fn_weight: Option<u32>,
}

struct Inner {
    /// The name of each service of the model.
    names: Vec<Box<str>>,
    lua: Lua,
    opts: CheckOptions,
    probes: Vec<ProbeSlot>,
    reals: Vec<Vec<RealSlot>>,
    tx: mpsc::UnboundedSender<CheckEvent>,
    started: bool,
    /// Finishes the bare TCP checks' connects; its task runs while the probes do.
    connects: Rc<Connects>,
    poller: Option<JoinHandle<()>>,
    /// When probe runs start; its timer task runs while the probes do.
    grid: Rc<Grid>,
    ticker: Option<JoinHandle<()>>,
    /// Runs bare TCP probes as they come due on the grid; its task runs while the probes do.
    driven: Rc<Driven>,
    driver: Option<JoinHandle<()>>,
}

pub struct CheckManager {
    inner: Rc<RefCell<Inner>>,
}

impl CheckManager {
    /// Probes for `model`; events go to `tx`. Nothing runs until [`start`](Self::start).
    pub fn new(model: &Model, lua: Lua, tx: mpsc::UnboundedSender<CheckEvent>) -> CheckManager {
        CheckManager::with_options(model, lua, tx, CheckOptions::default())
    }

    pub fn with_options(model: &Model, lua: Lua, tx: mpsc::UnboundedSender<CheckEvent>, opts: CheckOptions) -> CheckManager {
        let inner = Inner {
            names: Vec::new(),
            lua,
            opts,
            probes: Vec::new(),
            reals: Vec::new(),
            tx,
            started: false,
            connects: Rc::default(),
            poller: None,
            grid: Rc::new(Grid::new(Instant::now())),
            ticker: None,
            driven: Rc::default(),
            driver: None,
        };
        let m = CheckManager { inner: Rc::new(RefCell::new(inner)) };
        m.install(model, None);
        m
    }

    /// Spawn a local task per probe. Call from within the director's `LocalSet`.
    pub fn start(&self) {
        {
            let mut inner = self.inner.borrow_mut();
            inner.started = true;
            if inner.poller.is_none() {
                let connects = inner.connects.clone();
                inner.poller = Some(tokio::task::spawn_local(keep_running("connect poller", move || connects.clone().run())));
            }
            if inner.ticker.is_none() {
                let grid = inner.grid.clone();
                inner.ticker = Some(tokio::task::spawn_local(keep_running("timer", move || grid.clone().run())));
            }
            if inner.driver.is_none() {
                let weak = Rc::downgrade(&self.inner);
                let timing = inner.timing();
                let driven = inner.driven.clone();
                inner.driver = Some(tokio::task::spawn_local(keep_running("probe driver", move || {
                    drive(weak.clone(), timing.clone(), driven.clone())
                })));
            }
        }
        let n = self.inner.borrow().probes.len();
        for id in 0..n {
            self.spawn(id);
        }
    }

    /// Stop every probe task.
    pub fn stop(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.started = false;
        if let Some(t) = inner.poller.take() {
            t.abort();
        }
        if let Some(t) = inner.ticker.take() {
            t.abort();
        }
        if let Some(t) = inner.driver.take() {
            t.abort();
        }
        // The driven probes are scheduled again by `start`; their runs in flight end here.
        inner.grid.clear_probes();
        inner.driven.waiting.borrow_mut().clear();
        let runs = std::mem::take(&mut *inner.driven.runs.borrow_mut());
        for p in &mut inner.probes {
            if let Some(t) = p.task.take() {
                t.abort();
            }
            p.driven = false;
        }
        drop(inner);
        drop(runs);
    }

    /// Hot reload: probes whose (target, spec) is unchanged keep running with their health
    /// and history; others stop or start. Reals keep their state and dynamic weights when
    /// their service name, address and checks are unchanged. Read [`real_state`](Self::real_state)
    /// afterwards: no events are sent for the swap itself.
    pub fn update(&self, model: &Model, lua: Lua) {
        self.install(model, Some(lua));
    }

    /// The state of real `ri` of service `si` in the current model, for `desired::service`.
    pub fn real_state(&self, si: usize, ri: usize) -> RealState {
        let inner = self.inner.borrow();
        inner.reals.get(si).and_then(|s| s.get(ri)).map(|r| r.state).unwrap_or(RealState::Down)
    }

    /// Health, weight and the last results of one real (status, REPL).
    pub fn real_status(&self, si: usize, ri: usize) -> Option<RealStatus> {
        let inner = self.inner.borrow();
        let slot = inner.reals.get(si)?.get(ri)?;
        let (state, weight) = match slot.state {
            RealState::Up(w) => ("up", Some(w)),
            RealState::Down => ("down", None),
            RealState::Draining => ("draining", Some(0)),
        };
        let checks = slot
            .probes
            .iter()
            .map(|&p| {
                let p = &inner.probes[p];
                ProbeStatus {
                    kind: p.prober.spec.kind.name(),
                    target: p.prober.target,
                    up: p.health.is_up(),
                    history: p.health.history().clone(),
                }
            })
            .collect();
        Some(RealStatus { address: slot.addr, state: state.into(), weight, checks })
    }

    /// keepalived's `ha_suspend`: `services[si]` tells whether service `si` is suspended. A
    /// probe used only by suspended services skips its runs (its health and history stay as
    /// they were) until one of them resumes; a probe shared with an active service runs on.
    /// A reload clears this: call it again afterwards.
    pub fn suspend(&self, services: &[bool]) {
        let mut inner = self.inner.borrow_mut();
        for p in &mut inner.probes {
            p.suspended = !p.users.is_empty() && p.users.iter().all(|&(si, _)| services.get(si).copied().unwrap_or(false));
        }
    }

    /// Number of distinct probes (after sharing).
    pub fn probe_count(&self) -> usize {
        self.inner.borrow().probes.len()
    }

    /// Run every check of a real now (REPL), record the results as usual and return them.
    pub async fn run_now(&self, si: usize, ri: usize) -> Vec<CheckResult> {
        let jobs: Vec<(Rc<Prober>, RunCtx)> = {
            let inner = self.inner.borrow();
            let Some(slot) = inner.reals.get(si).and_then(|s| s.get(ri)) else { return Vec::new() };
            slot.probes.iter().map(|&p| (inner.probes[p].prober.clone(), inner.ctx(p))).collect()
        };
        let mut out = Vec::new();
        for (prober, ctx) in jobs {
            let run = CatchUnwind::new(run_once(&prober, &ctx)).await;
            let mut inner = self.inner.borrow_mut();
            let r = match run {
                Ok(r) => {
                    if let Some(id) = inner.slot_of(&prober) {
                        inner.record(id, r.clone());
                    }
                    r
                }
                Err(m) => {
                    let why = format!("check panicked: {m}");
                    tracing::error!(target: "check", "{} check of {}: {why}", prober.spec.kind.name(), prober.target);
                    if let Some(id) = inner.slot_of(&prober) {
                        inner.fail(id, why.clone());
                    }
                    CheckResult::down(Duration::ZERO, why)
                }
            };
            out.push(r);
        }
        out
    }

    fn spawn(&self, id: usize) {
        let weak = Rc::downgrade(&self.inner);
        let mut inner = self.inner.borrow_mut();
        let timing = inner.timing();
        let p = &mut inner.probes[id];
        if p.task.is_some() || p.driven {
            return;
        }
        if p.prober.is_bare_tcp() {
            p.driven = true;
            let c = &p.prober.spec.common;
            timing.schedule(first_delay(c.interval, c.warmup, timing.jitter, fastrand::f64()), p.prober.clone());
            return;
        }
        let prober = p.prober.clone();
        p.task = Some(tokio::task::spawn_local(supervised(weak, prober, timing)));
    }

    fn install(&self, model: &Model, lua: Option<Lua>) {
        let plan = Plan::of(model);
        let mut inner = self.inner.borrow_mut();
        if let Some(lua) = lua {
            inner.lua = lua;
        }
        // Old reals by (service name, address), with the keys of their probes.
        type Kept = (Vec<ProbeKey>, Option<u32>, Option<u32>);
        let mut old_reals: HashMap<(String, SocketAddr), Kept> = HashMap::new();
        for (name, row) in inner.names.iter().zip(&inner.reals) {
            for slot in row {
                let keys = slot.probes.iter().map(|&p| inner.probes[p].key()).collect();
                old_reals.insert((name.to_string(), slot.addr), (keys, slot.check_weight, slot.fn_weight));
            }
        }
        let mut old: HashMap<ProbeKey, ProbeSlot> = inner.probes.drain(..).map(|p| (p.key(), p)).collect();
        let mut probes = Vec::with_capacity(plan.probes.len());
        for p in plan.probes {
            let weighs = p.users.iter().any(|&(si, ri)| model.services[si].reals[ri].weight_fn.is_some());
            let slot = match old.remove(&p.key) {
                Some(mut s) => {
                    s.users = p.users.as_slice().into();
                    s.weighs = weighs;
                    s.suspended = false;
                    s
                }
                None => ProbeSlot {
                    prober: Rc::new(Prober::shared(p.spec.clone(), p.key.target)),
                    health: Health::new(p.spec.common.rise, p.spec.common.fall, p.alpha),
                    spec: p.key.spec.clone(),
                    users: p.users.as_slice().into(),
                    weighs,
                    suspended: false,
                    task: None,
                    driven: false,
                },
            };
            probes.push(slot);
        }
        for (i, p) in probes.iter().enumerate() {
            p.prober.slot.set(i);
        }
        for (_, mut gone) in old {
            if let Some(t) = gone.task.take() {
                t.abort();
            }
            // A driven probe's next run finds no slot and ends it.
            gone.prober.slot.set(usize::MAX);
        }
        let mut reals = Vec::with_capacity(model.services.len());
        for (si, vs) in model.services.iter().enumerate() {
            let mut row = Vec::with_capacity(vs.reals.len());
            for (ri, r) in vs.reals.iter().enumerate() {
                let ids: Few<usize> = plan.reals[si][ri].as_slice().into();
                let keys: Vec<ProbeKey> = ids.iter().map(|&i| probes[i].key()).collect();
                let (check_weight, fn_weight) = match old_reals.get(&(vs.name.clone(), r.addr)) {
                    Some((k, cw, fw)) if *k == keys => (*cw, *fw),
                    _ => (None, None),
                };
                let all_up = ids.iter().all(|&i| probes[i].health.is_up());
                let w = fn_weight.or(check_weight).unwrap_or(r.weight);
                let state = if all_up { RealState::Up(w) } else { RealState::Down };
                row.push(RealSlot {
                    addr: r.addr,
                    weight: r.weight,
                    weight_fn: r.weight_fn.map(|f| Box::new((f, r.origin.clone()))),
                    probes: ids,
                    state,
                    check_weight,
                    fn_weight,
                });
            }
            reals.push(row);
        }
        inner.names = model.services.iter().map(|vs| vs.name.as_str().into()).collect();
        inner.probes = probes;
        inner.reals = reals;
        let started = inner.started;
        let n = inner.probes.len();
        drop(inner);
        if started {
            for id in 0..n {
                self.spawn(id);
            }
        }
    }
}

impl Drop for CheckManager {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Inner {
    fn timing(&self) -> Timing {
        Timing { jitter: self.opts.jitter, tick: self.opts.tick, grid: self.grid.clone() }
    }

    /// The index of `prober`'s probe, if it is still the manager's: `install` keeps each
    /// prober's `slot` up to date (an unchanged probe keeps its prober across a reload), so a
    /// run finds its probe without hashing the key's spec text, and without a map by key.
    fn slot_of(&self, prober: &Rc<Prober>) -> Option<usize> {
        let i = prober.slot.get();
        self.probes.get(i).is_some_and(|p| Rc::ptr_eq(&p.prober, prober)).then_some(i)
    }

    fn ctx(&self, id: usize) -> RunCtx {
        let p = &self.probes[id];
        let target = p.prober.target;
        // Built per run: only a Lua check pays for the state and the real's details.
        let rs = if p.prober.is_lua() {
            let (si, ri) = p.users[0];
            let r = &self.reals[si][ri];
            RsInfo { address: r.addr, port: target.port(), service: self.names[si].to_string(), weight: r.weight }
        } else {
            RsInfo { address: target, port: target.port(), service: String::new(), weight: 0 }
        };
        RunCtx {
            lua: p.prober.is_lua().then(|| self.lua.clone()),
            rs,
            instructions: self.opts.instructions,
            connects: self.poller.as_ref().map(|_| self.connects.clone()),
        }
    }

    /// Take one result of probe `key`: update its health, then every real using it.
    fn record(&mut self, id: usize, r: CheckResult) {
        let p = &mut self.probes[id];
        // Most results change nothing: the probe stays up (or down) and no weight depends
        // on the result; those only go into the history.
        let quiet = r.weight.is_none() && !p.weighs && !self.opts.every_result;
        let (t, r) = if quiet {
            let Some(t) = p.health.record(r) else { return };
            (Some(t), p.health.last().expect("just recorded"))
        } else {
            (p.health.record(r.clone()), r)
        };
        if let Some(t) = t {
            match t {
                Transition::Up => tracing::info!(target: "check", "{} check of {} is up", p.prober.spec.kind.name(), p.prober.target),
                Transition::Down => {
                    tracing::warn!(target: "check", "{} check of {} is down: {}", p.prober.spec.kind.name(), p.prober.target, r.error.as_deref().unwrap_or("failed"))
                }
            }
        }
        for k in 0..p.users.len() {
            let (si, ri) = self.probes[id].users[k];
            self.update_real(si, ri, id, &r, true);
        }
    }

    /// Probe `id` could not run (its task failed): down at once, whatever its `fall`, and
    /// so every real using it, with `reason` in the event the director gets. Weight
    /// functions are not called: the reals are down, and the failure may have been theirs.
    fn fail(&mut self, id: usize, reason: String) {
        let r = CheckResult::down(Duration::ZERO, reason);
        let p = &mut self.probes[id];
        if p.health.fail_now(r.clone()).is_some() {
            tracing::warn!(target: "check", "{} check of {} is down: {}", p.prober.spec.kind.name(), p.prober.target, r.error.as_deref().unwrap_or("failed"));
        }
        for k in 0..p.users.len() {
            let (si, ri) = self.probes[id].users[k];
            self.update_real(si, ri, id, &r, false);
        }
    }

    fn update_real(&mut self, si: usize, ri: usize, probe: usize, r: &CheckResult, weigh: bool) {
        let rs = &self.reals[si][ri];
        let (addr, weight, weight_fn) = (rs.addr, rs.weight, rs.weight_fn.as_ref().map(|f| f.0));
        let all_up = self.reals[si][ri].probes.iter().all(|&i| self.probes[i].health.is_up());
        if let Some(w) = r.weight {
            self.reals[si][ri].check_weight = Some(w);
        }
        if let Some(f) = weight_fn.filter(|_| weigh) {
            let info = RsInfo { address: addr, port: self.probes[probe].prober.target.port(), service: self.names[si].to_string(), weight };
            match call_weight(&self.lua, f, &info, r, self.opts.instructions) {
                Ok(w) => self.reals[si][ri].fn_weight = Some(w),
                Err(e) => {
                    let origin = self.reals[si][ri].weight_fn.as_ref().map(|f| f.1.to_string()).unwrap_or_default();
                    tracing::warn!(target: "check", "{origin}: weight function for {addr} in '{}' failed, keeping the previous weight: {e}", self.names[si])
                }
            }
        }
        let slot = &mut self.reals[si][ri];
        let w = slot.fn_weight.or(slot.check_weight).unwrap_or(weight);
        let new_state = if all_up { RealState::Up(w) } else { RealState::Down };
        let old = slot.state;
        slot.state = new_state;
        let change = match (old, new_state) {
            (RealState::Up(_), RealState::Down) | (RealState::Draining, RealState::Down) => {
                // The reason is the error of a check that is down now.
                let reason = slot
                    .probes
                    .iter()
                    .map(|&i| &self.probes[i])
                    .find(|p| !p.health.is_up())
                    .map(|p| format!("{} {}: {}", p.prober.spec.kind.name(), p.prober.target, p.health.last_error().unwrap_or("failed")))
                    .unwrap_or_default();
                Some(RealChange::Down { reason })
            }
            (RealState::Down, RealState::Up(_)) => Some(RealChange::Up),
            _ => None,
        };
        if old != new_state || self.opts.every_result {
            if let Some(c) = &change {
                tracing::info!(target: "check", "real {addr} of '{}' is {}", self.names[si], match c { RealChange::Up => "up".to_string(), RealChange::Down { reason } => format!("down ({reason})") });
            }
            let _ = self.tx.send(CheckEvent { service: si, real: ri, result: r.clone(), new_state, change });
        }
    }
}

/// When a probe's runs start.
#[derive(Clone)]
struct Timing {
    jitter: f64,
    tick: Duration,
    /// The grid shared by all probes of the manager.
    grid: Rc<Grid>,
}

impl Timing {
    /// Sleep until `wait` from now, moved onto the grid.
    async fn sleep(&self, interval: f64, wait: Duration) {
        self.grid.sleep(wait, grid_step(interval, self.tick)).await
    }

    /// Hand a driven probe to the driver `wait` from now, moved onto the grid.
    fn schedule(&self, wait: Duration, prober: Rc<Prober>) {
        let step = grid_step(prober.spec.common.interval, self.tick);
        self.grid.schedule(wait, step, prober)
    }
}

/// Runs the driver starts before it lets the connect poller run: thousands due at one grid
/// point (the first runs of a large site come within a tenth of the interval) are started
/// in batches, so that only a few hundred runs are in flight at once, not all of them.
const START_BATCH: usize = 256;

/// A driven probe's run, and how it ended (`Err`: it panicked, with the message).
type Outcome = (Rc<Prober>, Result<CheckResult, String>);

/// The driven probes' runs in flight, and the restarts of those that panicked.
#[derive(Default)]
struct Driven {
    /// Due, waiting for their batch (see [`START_BATCH`]).
    waiting: RefCell<std::collections::VecDeque<Rc<Prober>>>,
    runs: RefCell<FuturesUnordered<Pin<Box<dyn Future<Output = Outcome>>>>>,
    /// Probes whose run panicked: restarts so far and when the last one was (as a task's
    /// supervision counts them).
    #[allow(clippy::type_complexity)]
    failures: RefCell<HashMap<*const Prober, (Weak<Prober>, u32, Instant)>>,
}

/// The driver of the bare TCP probes: starts the runs of the probes due on the grid, and
/// records each result as it comes, then puts the probe back on the grid for its next run.
/// Timing is a probe task's: a run every interval (jittered), `retries` attempts of
/// `timeout` each `retry_delay` apart within a run (the run is `Prober::run`, the same as a
/// task's), the first run after a random part of `warmup`.
async fn drive(inner: Weak<RefCell<Inner>>, timing: Timing, driven: Rc<Driven>) {
    let mut due = Vec::new();
    let mut batch = Vec::with_capacity(START_BATCH);
    let mut done = Vec::new();
    loop {
        timing.grid.take_due(&mut due);
        let more = {
            let mut waiting = driven.waiting.borrow_mut();
            waiting.extend(due.drain(..));
            let n = waiting.len().min(START_BATCH);
            batch.extend(waiting.drain(..n));
            !waiting.is_empty()
        };
        for prober in batch.drain(..) {
            start_run(&inner, &timing, &driven, prober);
        }
        if driven.runs.borrow().is_empty() {
            if !more {
                timing.grid.due().await;
            }
            continue;
        }
        // Polls the runs (the new ones start their connects here) until some end or more
        // probes come due.
        let finished = poll_fn(|cx| {
            let mut runs = driven.runs.borrow_mut();
            while let Poll::Ready(Some(o)) = runs.poll_next_unpin(cx) {
                done.push(o);
            }
            if done.is_empty() { Poll::Pending } else { Poll::Ready(()) }
        });
        if !more {
            tokio::select! {
                biased;
                _ = finished => {}
                _ = timing.grid.due() => {}
            }
        } else {
            // More are due: start this batch's connects, let the connect poller finish them,
            // then start the next batch.
            tokio::select! {
                biased;
                _ = finished => {}
                _ = tokio::task::yield_now() => {}
            }
        }
        for (prober, outcome) in done.drain(..) {
            finish_run(&inner, &timing, &driven, prober, outcome);
        }
    }
}

fn start_run(inner: &Weak<RefCell<Inner>>, timing: &Timing, driven: &Driven, prober: Rc<Prober>) {
    let Some(rc) = inner.upgrade() else { return };
    let ctx = {
        let inner = rc.borrow();
        // Gone from the model: no more runs.
        let Some(id) = inner.slot_of(&prober) else { return };
        (!inner.probes[id].suspended).then(|| inner.ctx(id))
    };
    match ctx {
        Some(ctx) => driven.runs.borrow_mut().push(Box::pin(async move {
            let r = CatchUnwind::new(run_once(&prober, &ctx)).await;
            (prober, r)
        })),
        // Suspended: this run is skipped.
        None => {
            let interval = prober.spec.common.interval;
            timing.schedule(jittered(interval, timing.jitter, fastrand::f64()), prober)
        }
    }
}

fn finish_run(inner: &Weak<RefCell<Inner>>, timing: &Timing, driven: &Driven, prober: Rc<Prober>, outcome: Result<CheckResult, String>) {
    let Some(rc) = inner.upgrade() else { return };
    let r = match outcome {
        Ok(r) => r,
        Err(m) => return panicked(&rc, timing, driven, prober, m),
    };
    // Recording runs the weight functions: a panic there is the probe's, as in a task.
    let recorded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut inner = rc.borrow_mut();
        // The model may have changed while the check ran.
        let Some(id) = inner.slot_of(&prober) else { return false };
        inner.record(id, r);
        true
    }));
    match recorded {
        Ok(true) => {
            let interval = prober.spec.common.interval;
            timing.schedule(jittered(interval, timing.jitter, fastrand::f64()), prober)
        }
        Ok(false) => {}
        Err(p) => panicked(&rc, timing, driven, prober, panic_message(p.as_ref())),
    }
}

/// A driven probe's run panicked: as for a probe task that did (see [`supervised`]), the
/// probe goes down at once and runs again after a backoff.
fn panicked(rc: &Rc<RefCell<Inner>>, timing: &Timing, driven: &Driven, prober: Rc<Prober>, m: String) {
    let Some(id) = rc.borrow().slot_of(&prober) else { return };
    let base = Duration::from_secs_f64(prober.spec.common.interval.max(1.0));
    let now = Instant::now();
    let n = {
        let mut failures = driven.failures.borrow_mut();
        // Entries of probes gone since are dropped here, before one's address is reused.
        failures.retain(|_, (w, _, _)| w.strong_count() > 0);
        let e = failures.entry(Rc::as_ptr(&prober)).or_insert_with(|| (Rc::downgrade(&prober), 0, now));
        if now.duration_since(e.2) > MAX_BACKOFF {
            e.1 = 0;
        }
        e.1 += 1;
        e.1
    };
    let wait = backoff(base, n);
    let why = format!("probe task panicked: {m}");
    tracing::error!(target: "check", "{} check of {}: {why}; restarting it in {:.1}s", prober.spec.kind.name(), prober.target, wait.as_secs_f64());
    rc.borrow_mut().fail(id, format!("{why}; restarted"));
    if let Some(e) = driven.failures.borrow_mut().get_mut(&Rc::as_ptr(&prober)) {
        // Counted from the restart, as a task's time runs from its loop's start.
        e.2 = now + wait;
    }
    timing.schedule(wait, prober);
}

/// A probe's task: its loop, started again whenever it panics or ends while the probe is
/// still wanted. Each failure takes the probe down at once (see [`Inner::fail`]) and waits a
/// backoff before the restart; the restarted loop runs at once, without the warm-up wait.
async fn supervised(inner: Weak<RefCell<Inner>>, prober: Rc<Prober>, timing: Timing) {
    let base = Duration::from_secs_f64(prober.spec.common.interval.max(1.0));
    let mut failures = 0;
    let mut first = true;
    loop {
        let started = Instant::now();
        let outcome = CatchUnwind::new(probe_loop(&inner, &prober, &timing, first)).await;
        first = false;
        let Some(rc) = inner.upgrade() else { return };
        // Still this task's probe (a reload may have put another prober under the same key:
        // that one has a task of its own).
        let id = rc.borrow().slot_of(&prober);
        let Some(id) = id else { return };
        let why = match outcome {
            // The loop ends by itself only when its probe is gone: here it is not.
            Ok(()) => "probe task ended unexpectedly".to_string(),
            Err(m) => format!("probe task panicked: {m}"),
        };
        if started.elapsed() > MAX_BACKOFF {
            failures = 0;
        }
        failures += 1;
        let wait = backoff(base, failures);
        tracing::error!(target: "check", "{} check of {}: {why}; restarting it in {:.1}s", prober.spec.kind.name(), prober.target, wait.as_secs_f64());
        rc.borrow_mut().fail(id, format!("{why}; restarted"));
        drop(rc);
        // Boxed: a timer kept in every idle probe task for this rare wait is memory for nothing.
        Box::pin(tokio::time::sleep(wait)).await;
    }
}

/// Run the future `make` gives for as long as the manager runs: when it panics or ends, log
/// why and start a new one after a backoff (from 100 ms).
async fn keep_running<F: Future<Output = ()>>(what: &'static str, make: impl Fn() -> F) {
    let mut failures = 0;
    loop {
        let started = Instant::now();
        let why = match CatchUnwind::new(make()).await {
            Ok(()) => "ended".to_string(),
            Err(m) => format!("panicked: {m}"),
        };
        if started.elapsed() > MAX_BACKOFF {
            failures = 0;
        }
        failures += 1;
        let wait = backoff(Duration::from_millis(100), failures);
        tracing::error!(target: "check", "the checks' {what} {why}; restarting it in {:.1}s", wait.as_secs_f64());
        tokio::time::sleep(wait).await;
    }
}

/// One run of a probe (where the tests make one panic).
async fn run_once(prober: &Prober, ctx: &RunCtx) -> CheckResult {
    #[cfg(test)]
    tests::injected_panic(prober.target);
    prober.run(ctx).await
}

async fn probe_loop(inner: &Weak<RefCell<Inner>>, prober: &Rc<Prober>, timing: &Timing, first: bool) {
    let (interval, warmup) = (prober.spec.common.interval, prober.spec.common.warmup);
    if first {
        timing.sleep(interval, first_delay(interval, warmup, timing.jitter, fastrand::f64())).await;
    }
    loop {
        let ctx = {
            let Some(inner) = inner.upgrade() else { return };
            let inner = inner.borrow();
            let Some(id) = inner.slot_of(prober) else { return };
            (!inner.probes[id].suspended).then(|| inner.ctx(id))
        };
        if let Some(ctx) = ctx {
            // Boxed: a run's state (timeouts, connect, retry timer) lives only while it runs,
            // not in each of 10,000 idle probe tasks between runs.
            let r = Box::pin(run_once(prober, &ctx)).await;
            let Some(inner) = inner.upgrade() else { return };
            let mut inner = inner.borrow_mut();
            // The model may have changed while the check ran.
            let Some(id) = inner.slot_of(prober) else { return };
            inner.record(id, r);
        }
        timing.sleep(interval, jittered(interval, timing.jitter, fastrand::f64())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{LoadOptions, load_source};
    use std::cell::Cell;
    use std::path::Path;

    thread_local! {
        /// Targets whose probe panics in its next run (this thread's managers only).
        static PANIC_AT: RefCell<Vec<SocketAddr>> = const { RefCell::new(Vec::new()) };
    }

    /// A list of one is held in place; others are the slice they were made from.
    #[test]
    fn few_holds_one_in_place() {
        let one: Few<(usize, usize)> = [(3, 4)].as_slice().into();
        assert!(matches!(one, Few::One(_)));
        assert_eq!(&*one, &[(3, 4)]);
        let none: Few<usize> = [].as_slice().into();
        assert!(none.is_empty());
        let many: Few<usize> = [1, 2, 3].as_slice().into();
        assert_eq!(&*many, &[1, 2, 3]);
        assert!(std::mem::size_of::<Few<(usize, usize)>>() <= 24);
    }

    fn panic_next_run(target: SocketAddr) {
        PANIC_AT.with(|p| p.borrow_mut().push(target));
    }

    /// Called by the probe loop before each run: nothing can make a check panic from outside
    /// any more, so the tests provoke one here.
    pub(super) fn injected_panic(target: SocketAddr) {
        let hit = PANIC_AT.with(|p| {
            let mut p = p.borrow_mut();
            p.iter().position(|&t| t == target).map(|i| p.remove(i)).is_some()
        });
        if hit {
            panic!("injected panic for {target}");
        }
    }

    fn local<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<CheckEvent>) -> CheckEvent {
        tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("an event within 10 s").expect("the channel is open")
    }

    /// A listener that accepts nothing: a bare check is half-open, so there is never a
    /// connection to accept (the kernel answers the SYN).
    fn listener() -> (SocketAddr, std::net::TcpListener) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        (l.local_addr().unwrap(), l)
    }

    /// Successful results per target.
    type Seen = RefCell<HashMap<SocketAddr, usize>>;

    /// A manager that reports every result, and a task that counts the successful ones per
    /// target (the runs that reached it) and passes on the events that change a real.
    fn counting(model: &Model, lua: Lua) -> (CheckManager, Rc<Seen>, mpsc::UnboundedReceiver<CheckEvent>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let m = CheckManager::with_options(model, lua, tx, CheckOptions { every_result: true, ..Default::default() });
        let seen = Rc::new(RefCell::new(HashMap::new()));
        let (changes_tx, changes) = mpsc::unbounded_channel();
        let (view, counts) = (CheckManager { inner: m.inner.clone() }, seen.clone());
        tokio::task::spawn_local(async move {
            while let Some(ev) = rx.recv().await {
                if ev.result.ok
                    && let Some(st) = view.real_status(ev.service, ev.real)
                {
                    *counts.borrow_mut().entry(st.address).or_insert(0) += 1;
                }
                if ev.change.is_some() {
                    let _ = changes_tx.send(ev);
                }
            }
        });
        (m, seen, changes)
    }

    fn count(seen: &Seen, a: SocketAddr) -> usize {
        seen.borrow().get(&a).copied().unwrap_or(0)
    }

    async fn wait_until(mut f: impl FnMut() -> bool) -> bool {
        for _ in 0..500 {
            if f() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        f()
    }

    /// A probe that panics (fall = 3, so one ordinary failure would change nothing) takes its
    /// real down at once, the director hears why, and the probe runs again: the target sees
    /// new connections and the real comes back up after `rise` successes.
    #[test]
    fn a_panicking_probe_takes_its_real_down_and_is_restarted() {
        local(async {
            let (addr, _l) = listener();
            let src = format!(
                r#"lvsd.service "s" {{ vip = "192.0.2.1:80", check = lvsd.check.tcp {{ interval = 0.1, timeout = 1, retries = 0, fall = 3, rise = 2 }}, reals = {{ "{addr}" }} }}"#
            );
            let opts = LoadOptions { node: "t".into(), limits: Default::default() };
            let p = load_source(&src, Path::new("t.lua"), Path::new("."), &opts).unwrap();
            let (m, seen, mut rx) = counting(&p.model, p.lua);
            let reached = || count(&seen, addr);
            m.start();
            assert!(wait_until(|| reached() >= 2).await, "the probe runs");
            assert_eq!(m.real_state(0, 0), RealState::Up(1));

            panic_next_run(addr);
            let ev = next(&mut rx).await;
            assert_eq!(ev.new_state, RealState::Down, "{ev:?}");
            let Some(RealChange::Down { reason }) = &ev.change else { panic!("{ev:?}") };
            assert!(reason.contains("probe task panicked: injected panic"), "{reason}");
            assert!(reason.contains("restarted"), "{reason}");
            assert_eq!(m.real_state(0, 0), RealState::Down);
            let h = m.real_status(0, 0).unwrap();
            assert!(h.checks[0].history.last().unwrap().error.as_deref().unwrap().contains("panicked"));

            let before = reached();
            let ev = next(&mut rx).await;
            assert_eq!(ev.change, Some(RealChange::Up), "{ev:?}");
            assert!(reached() >= before + 2, "the restarted probe connects again");
            // and the restarted probe is the manager's: it goes on running
            let now = reached();
            assert!(wait_until(|| reached() > now + 2).await);
            m.stop();
        });
    }

    /// A panic in `run_now` (the REPL's check-now) is a failed result that takes the real
    /// down, not a crash of the director that called it.
    #[test]
    fn a_panic_in_a_forced_run_is_a_result() {
        local(async {
            let (addr, _l) = listener();
            let src = format!(
                r#"lvsd.service "s" {{ vip = "192.0.2.1:80", check = lvsd.check.tcp {{ timeout = 1, retries = 0, fall = 3 }}, reals = {{ "{addr}" }} }}"#
            );
            let opts = LoadOptions { node: "t".into(), limits: Default::default() };
            let p = load_source(&src, Path::new("t.lua"), Path::new("."), &opts).unwrap();
            let (tx, mut rx) = mpsc::unbounded_channel();
            // Not started: only the forced runs reach the target.
            let m = CheckManager::new(&p.model, p.lua, tx);
            assert!(m.run_now(0, 0).await[0].ok);
            panic_next_run(addr);
            let r = m.run_now(0, 0).await;
            assert!(!r[0].ok);
            assert!(r[0].error.as_deref().unwrap().contains("check panicked: injected panic"), "{r:?}");
            assert_eq!(m.real_state(0, 0), RealState::Down);
            let ev = next(&mut rx).await;
            assert!(matches!(ev.change, Some(RealChange::Down { .. })), "{ev:?}");
        });
    }

    /// Bare TCP probes have no task: the driver runs them. A probe dropped by a reload stops
    /// connecting, a suspended one skips its runs, and a stopped manager's probes run again
    /// after `start`, once each (not twice).
    #[test]
    fn bare_tcp_probes_run_without_a_task_of_their_own() {
        local(async {
            let ((a, _la), (b, _lb)) = (listener(), listener());
            let policy = |reals: &str| {
                let src = format!(
                    r#"lvsd.service "s" {{ vip = "192.0.2.1:80", check = lvsd.check.tcp {{ interval = 0.05, timeout = 1, retries = 0 }}, reals = {{ {reals} }} }}
                    lvsd.service "h" {{ vip = "192.0.2.2:80", check = lvsd.check.tcp {{ interval = 0.05, timeout = 1, retries = 0, send = "x" }}, reals = {{ "{b}" }} }}"#
                );
                let opts = LoadOptions { node: "t".into(), limits: Default::default() };
                load_source(&src, Path::new("t.lua"), Path::new("."), &opts).unwrap()
            };
            let p = policy(&format!(r#""{a}", "{b}""#));
            let (m, seen, _changes) = counting(&p.model, p.lua);
            let (seen_a, seen_b) = (|| count(&seen, a), || count(&seen, b));
            m.start();
            {
                let inner = m.inner.borrow();
                let kinds: Vec<(bool, bool)> = inner.probes.iter().map(|p| (p.driven, p.task.is_some())).collect();
                // a and b bare (driven), b with `send` (a task)
                assert_eq!(kinds, vec![(true, false), (true, false), (false, true)]);
            }
            assert!(wait_until(|| seen_a() >= 3 && seen_b() >= 6).await);

            // a dropped: its runs end; b's go on.
            let p = policy(&format!(r#""{b}""#));
            m.update(&p.model, p.lua);
            tokio::time::sleep(Duration::from_millis(100)).await;
            // A run of a's probe would now panic (and its results would go nowhere to count).
            panic_next_run(a);
            let nb = seen_b();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let ran = PANIC_AT.with(|p| std::mem::take(&mut *p.borrow_mut())).is_empty();
            assert!(!ran, "a dropped probe still runs");
            assert!(seen_b() >= nb + 4);

            // Suspended: no runs; resumed: runs again.
            m.suspend(&[true, true]);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let nb = seen_b();
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(seen_b(), nb, "a suspended probe still connects");
            m.suspend(&[false, false]);
            assert!(wait_until(|| seen_b() >= nb + 4).await);

            // Stopped: no runs; started again: one run per interval, not two.
            m.stop();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let nb = seen_b();
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(seen_b(), nb, "a stopped manager still connects");
            m.start();
            m.start();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (nb, t0) = (seen_b(), Instant::now());
            tokio::time::sleep(Duration::from_millis(1000)).await;
            // b: its bare probe every 50 ms (± 10 %) and its `send` probe as often.
            let per_s = (seen_b() - nb) as f64 / t0.elapsed().as_secs_f64();
            assert!(per_s < 2.0 * 1.0 / 0.045 + 5.0, "{per_s} connects/s: runs doubled");
            m.stop();
        });
    }

    /// What a driven run holds while in flight (hundreds are, every grid point at 10,000
    /// checks a second): the run's future, boxed once, stays small.
    #[test]
    fn a_bare_run_in_flight_is_small() {
        let src = r#"lvsd.service "s" { vip = "192.0.2.1:80", check = lvsd.check.tcp { timeout = 1 }, reals = { "127.0.0.1:1" } }"#;
        let opts = LoadOptions { node: "t".into(), limits: Default::default() };
        let p = load_source(src, Path::new("t.lua"), Path::new("."), &opts).unwrap();
        let prober = Prober::new(&p.model.services[0].reals[0].checks[0], "127.0.0.1:1".parse().unwrap());
        let ctx = RunCtx {
            lua: None,
            rs: RsInfo { address: prober.target, port: 1, service: String::new(), weight: 0 },
            instructions: 0,
            connects: None,
        };
        let run = run_once(&prober, &ctx);
        // 608 bytes in a debug build when this was written.
        assert!(std::mem::size_of_val(&run) <= 1024, "{} bytes", std::mem::size_of_val(&run));
    }

    /// The timer and the connect poller are started again when they panic.
    #[test]
    fn a_panicking_helper_task_is_restarted() {
        local(async {
            let starts = Rc::new(Cell::new(0));
            let s = starts.clone();
            let task = tokio::task::spawn_local(keep_running("test task", move || {
                let s = s.clone();
                async move {
                    s.set(s.get() + 1);
                    tokio::task::yield_now().await;
                    if s.get() < 3 {
                        panic!("helper failed");
                    }
                    std::future::pending::<()>().await
                }
            }));
            assert!(wait_until(|| starts.get() == 3).await, "started {} times", starts.get());
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(starts.get(), 3, "a task that runs on is left alone");
            task.abort();
        });
    }
}
