//! The check manager: runs every probe a model needs as a local tokio task, keeps each
//! probe's health, combines them per real (up only if all its checks are up), applies
//! dynamic weights, and tells the director about changes over a channel.
//!
//! Runs on the director's current-thread runtime inside a `LocalSet` (the Lua state is not
//! `Send`); `start` must be called from within that LocalSet.

use super::connects::Connects;
use super::grid::{first_delay, grid_step, jittered, Grid};
use super::health::{CheckResult, Health, History, Transition};
use super::lua::{call_weight, RsInfo};
use super::registry::{Plan, ProbeKey};
use super::runner::{Prober, RunCtx};
use crate::desired::RealState;
use crate::model::Model;
use mlua::Lua;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
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
    key: ProbeKey,
    prober: Rc<Prober>,
    health: Health,
    users: Vec<(usize, usize)>,
    /// A real using this probe has a weight function, which sees every result.
    weighs: bool,
    /// Every service using this probe is suspended (`ha_suspend`): runs are skipped.
    suspended: bool,
    task: Option<JoinHandle<()>>,
}

struct RealSlot {
    probes: Vec<usize>,
    state: RealState,
    /// Weight set by a check (exec dynamic, Lua); keepalived keeps it until changed.
    check_weight: Option<u32>,
    /// Last good value of the weight function.
    fn_weight: Option<u32>,
}

struct Inner {
    model: Model,
    lua: Lua,
    opts: CheckOptions,
    probes: Vec<ProbeSlot>,
    index: HashMap<ProbeKey, usize>,
    reals: Vec<Vec<RealSlot>>,
    tx: mpsc::UnboundedSender<CheckEvent>,
    started: bool,
    /// Finishes the bare TCP checks' connects; its task runs while the probes do.
    connects: Rc<Connects>,
    poller: Option<JoinHandle<()>>,
    /// When probe runs start; its timer task runs while the probes do.
    grid: Rc<Grid>,
    ticker: Option<JoinHandle<()>>,
}

pub struct CheckManager {
    inner: Rc<RefCell<Inner>>,
}

impl CheckManager {
    /// Probes for `model`; events go to `tx`. Nothing runs until [`start`](Self::start).
    pub fn new(model: Model, lua: Lua, tx: mpsc::UnboundedSender<CheckEvent>) -> CheckManager {
        CheckManager::with_options(model, lua, tx, CheckOptions::default())
    }

    pub fn with_options(model: Model, lua: Lua, tx: mpsc::UnboundedSender<CheckEvent>, opts: CheckOptions) -> CheckManager {
        let inner = Inner { model: Model::default(), lua, opts, probes: Vec::new(), index: HashMap::new(), reals: Vec::new(), tx, started: false, connects: Rc::default(), poller: None, grid: Rc::new(Grid::new(Instant::now())), ticker: None };
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
                inner.poller = Some(tokio::task::spawn_local(inner.connects.clone().run()));
            }
            if inner.ticker.is_none() {
                inner.ticker = Some(tokio::task::spawn_local(inner.grid.clone().run()));
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
        for p in &mut inner.probes {
            if let Some(t) = p.task.take() {
                t.abort();
            }
        }
    }

    /// Hot reload: probes whose (target, spec) is unchanged keep running with their health
    /// and history; others stop or start. Reals keep their state and dynamic weights when
    /// their service name, address and checks are unchanged. Read [`real_state`](Self::real_state)
    /// afterwards: no events are sent for the swap itself.
    pub fn update(&self, model: Model, lua: Lua) {
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
        let rs = &inner.model.services[si].reals[ri];
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
                ProbeStatus { kind: p.prober.spec.kind.name(), target: p.prober.target, up: p.health.is_up(), history: p.health.history().clone() }
            })
            .collect();
        Some(RealStatus { address: rs.addr, state: state.into(), weight, checks })
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
        let jobs: Vec<(ProbeKey, Rc<Prober>, RunCtx)> = {
            let inner = self.inner.borrow();
            let Some(slot) = inner.reals.get(si).and_then(|s| s.get(ri)) else { return Vec::new() };
            slot.probes.iter().map(|&p| (inner.probes[p].key.clone(), inner.probes[p].prober.clone(), inner.ctx(p))).collect()
        };
        let mut out = Vec::new();
        for (key, prober, ctx) in jobs {
            let r = prober.run(&ctx).await;
            let mut inner = self.inner.borrow_mut();
            if let Some(id) = inner.index.get(&key).copied() {
                inner.record(id, r.clone());
            }
            out.push(r);
        }
        out
    }

    fn spawn(&self, id: usize) {
        let weak = Rc::downgrade(&self.inner);
        let mut inner = self.inner.borrow_mut();
        let timing = Timing { jitter: inner.opts.jitter, tick: inner.opts.tick, grid: inner.grid.clone() };
        let p = &mut inner.probes[id];
        if p.task.is_some() {
            return;
        }
        let (key, prober) = (p.key.clone(), p.prober.clone());
        p.task = Some(tokio::task::spawn_local(probe_loop(weak, key, prober, timing)));
    }

    fn install(&self, model: Model, lua: Option<Lua>) {
        let plan = Plan::of(&model);
        let mut inner = self.inner.borrow_mut();
        if let Some(lua) = lua {
            inner.lua = lua;
        }
        // Old reals by (service name, address), with the keys of their probes.
        type Kept = (Vec<ProbeKey>, Option<u32>, Option<u32>);
        let mut old_reals: HashMap<(String, SocketAddr), Kept> = HashMap::new();
        for (si, vs) in inner.model.services.iter().enumerate() {
            for (ri, r) in vs.reals.iter().enumerate() {
                let slot = &inner.reals[si][ri];
                let keys = slot.probes.iter().map(|&p| inner.probes[p].key.clone()).collect();
                old_reals.insert((vs.name.clone(), r.addr), (keys, slot.check_weight, slot.fn_weight));
            }
        }
        let mut old: HashMap<ProbeKey, ProbeSlot> = inner.probes.drain(..).map(|p| (p.key.clone(), p)).collect();
        let mut probes = Vec::with_capacity(plan.probes.len());
        let mut index = HashMap::with_capacity(plan.probes.len());
        for p in plan.probes {
            let weighs = p.users.iter().any(|&(si, ri)| model.services[si].reals[ri].weight_fn.is_some());
            let slot = match old.remove(&p.key) {
                Some(mut s) => {
                    s.users = p.users;
                    s.weighs = weighs;
                    s.suspended = false;
                    s
                }
                None => ProbeSlot {
                    prober: Rc::new(Prober::new(&p.spec, p.key.target)),
                    health: Health::new(p.spec.common.rise, p.spec.common.fall, p.alpha),
                    key: p.key.clone(),
                    users: p.users,
                    weighs,
                    suspended: false,
                    task: None,
                },
            };
            index.insert(p.key, probes.len());
            probes.push(slot);
        }
        for (_, mut gone) in old {
            if let Some(t) = gone.task.take() {
                t.abort();
            }
        }
        let mut reals = Vec::with_capacity(model.services.len());
        for (si, vs) in model.services.iter().enumerate() {
            let mut row = Vec::with_capacity(vs.reals.len());
            for (ri, r) in vs.reals.iter().enumerate() {
                let ids = plan.reals[si][ri].clone();
                let keys: Vec<ProbeKey> = ids.iter().map(|&i| probes[i].key.clone()).collect();
                let (check_weight, fn_weight) = match old_reals.get(&(vs.name.clone(), r.addr)) {
                    Some((k, cw, fw)) if *k == keys => (*cw, *fw),
                    _ => (None, None),
                };
                let all_up = ids.iter().all(|&i| probes[i].health.is_up());
                let w = fn_weight.or(check_weight).unwrap_or(r.weight);
                let state = if all_up { RealState::Up(w) } else { RealState::Down };
                row.push(RealSlot { probes: ids, state, check_weight, fn_weight });
            }
            reals.push(row);
        }
        inner.model = model;
        inner.probes = probes;
        inner.index = index;
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
    fn ctx(&self, id: usize) -> RunCtx {
        let p = &self.probes[id];
        let target = p.prober.target;
        // Built per run: only a Lua check pays for the state and the real's details.
        let rs = if p.prober.is_lua() {
            let (si, ri) = p.users[0];
            let vs = &self.model.services[si];
            let r = &vs.reals[ri];
            RsInfo { address: r.addr, port: target.port(), service: vs.name.clone(), weight: r.weight }
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

    /// The probe's index now: `hint` (where it was last time) when that slot still holds
    /// this prober (a reload keeps the slot, prober and all, of an unchanged probe), which
    /// spares hashing and comparing the key's spec text on every run.
    fn find(&self, key: &ProbeKey, prober: &Rc<Prober>, hint: usize) -> Option<usize> {
        if self.probes.get(hint).is_some_and(|p| Rc::ptr_eq(&p.prober, prober)) {
            return Some(hint);
        }
        self.index.get(key).copied()
    }

    /// Take one result of probe `key`: update its health, then every real using it.
    fn record(&mut self, id: usize, r: CheckResult) {
        let p = &mut self.probes[id];
        // Most results change nothing: the probe stays up (or down) and no weight depends
        // on the result; those only go into the history.
        let quiet = r.weight.is_none() && !p.weighs && !self.opts.every_result;
        let (t, r) = if quiet {
            let Some(t) = p.health.record(r) else { return };
            (Some(t), p.health.last().expect("just recorded").clone())
        } else {
            (p.health.record(r.clone()), r)
        };
        if let Some(t) = t {
            match t {
                Transition::Up => tracing::info!(target: "check", "{} check of {} is up", p.prober.spec.kind.name(), p.prober.target),
                Transition::Down => tracing::warn!(target: "check", "{} check of {} is down: {}", p.prober.spec.kind.name(), p.prober.target, r.error.as_deref().unwrap_or("failed")),
            }
        }
        for k in 0..p.users.len() {
            let (si, ri) = self.probes[id].users[k];
            self.update_real(si, ri, id, &r);
        }
    }

    fn update_real(&mut self, si: usize, ri: usize, probe: usize, r: &CheckResult) {
        let vs = &self.model.services[si];
        let rs = &vs.reals[ri];
        let all_up = self.reals[si][ri].probes.iter().all(|&i| self.probes[i].health.is_up());
        if let Some(w) = r.weight {
            self.reals[si][ri].check_weight = Some(w);
        }
        if let Some(f) = rs.weight_fn {
            let info = RsInfo { address: rs.addr, port: self.probes[probe].prober.target.port(), service: vs.name.clone(), weight: rs.weight };
            match call_weight(&self.lua, f, &info, r, self.opts.instructions) {
                Ok(w) => self.reals[si][ri].fn_weight = Some(w),
                Err(e) => tracing::warn!(target: "check", "{}: weight function for {} in '{}' failed, keeping the previous weight: {e}", rs.origin, rs.addr, vs.name),
            }
        }
        let slot = &mut self.reals[si][ri];
        let w = slot.fn_weight.or(slot.check_weight).unwrap_or(rs.weight);
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
                    .map(|p| format!("{} {}: {}", p.prober.spec.kind.name(), p.prober.target, p.health.last().and_then(|l| l.error.clone()).unwrap_or_else(|| "failed".into())))
                    .unwrap_or_default();
                Some(RealChange::Down { reason })
            }
            (RealState::Down, RealState::Up(_)) => Some(RealChange::Up),
            _ => None,
        };
        if old != new_state || self.opts.every_result {
            if let Some(c) = &change {
                tracing::info!(target: "check", "real {} of '{}' is {}", rs.addr, vs.name, match c { RealChange::Up => "up".to_string(), RealChange::Down { reason } => format!("down ({reason})") });
            }
            let _ = self.tx.send(CheckEvent { service: si, real: ri, result: r.clone(), new_state, change });
        }
    }
}

/// When a probe's runs start.
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
}

async fn probe_loop(inner: Weak<RefCell<Inner>>, key: ProbeKey, prober: Rc<Prober>, timing: Timing) {
    let c = prober.spec.common.clone();
    timing.sleep(c.interval, first_delay(c.interval, c.warmup, timing.jitter, fastrand::f64())).await;
    let mut id = usize::MAX;
    loop {
        let ctx = {
            let Some(inner) = inner.upgrade() else { return };
            let inner = inner.borrow();
            let Some(found) = inner.find(&key, &prober, id) else { return };
            id = found;
            (!inner.probes[id].suspended).then(|| inner.ctx(id))
        };
        if let Some(ctx) = ctx {
            let r = prober.run(&ctx).await;
            let Some(inner) = inner.upgrade() else { return };
            let mut inner = inner.borrow_mut();
            // The model may have changed while the check ran.
            let Some(found) = inner.find(&key, &prober, id) else { return };
            id = found;
            inner.record(id, r);
        }
        timing.sleep(c.interval, jittered(c.interval, timing.jitter, fastrand::f64())).await;
    }
}
