//! The service sync: the desired IPVS table from the policy and the health of the reals
//! (quorum, ha_suspend, drains), the diff sent to the backend, and what happens to services
//! that go away (omega, release on stop).

use super::hooks::spawn_program;
use super::*;
use std::time::Instant;

/// Failed writes noted as one event each per pass; the rest go in one event that counts
/// them. A kernel that refuses every write (a scheduler module missing, say) must not push
/// VRRP transitions and reloads out of the event log at every resync.
pub(super) const FAILURES_NOTED: usize = 20;

/// A service whose quorum was gained or lost.
pub(super) struct QuorumChange {
    service: usize,
    up: bool,
    live: u64,
}

impl Director {
    pub(super) fn real_state(&self, si: usize, ri: usize) -> RealState {
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

    /// Service `si` as wanted now, and its quorum change if it has one (keepalived's quorum
    /// with hysteresis). Computes only: the caller records the change and runs its programs.
    pub(super) fn want_service(&mut self, si: usize) -> (ServiceKey, crate::ipvs::table::Service, Option<QuorumChange>) {
        let (up, change) = self.want_quorum(si);
        let (k, svc) = desired::service(&self.policy.model.services[si], |ri| self.real_state(si, ri), up);
        (k, svc, change)
    }

    /// Service `si`'s quorum now (kept with its hysteresis), and its change if any.
    fn want_quorum(&mut self, si: usize) -> (bool, Option<QuorumChange>) {
        let vs = &self.policy.model.services[si];
        let live = desired::live_weight(vs, |ri| self.real_state(si, ri));
        // Looked up before inserted: `entry` would take a copy of the name at every pass.
        if !self.quorum.contains_key(&vs.name) {
            self.quorum.insert(vs.name.clone(), crate::check::Quorum::new(vs.quorum, vs.hysteresis));
        }
        let q = self.quorum.get_mut(&vs.name).expect("inserted above");
        q.quorum = vs.quorum as u64;
        q.hysteresis = vs.hysteresis as u64;
        let (changed, up) = (q.update(live), q.up);
        (up, changed.map(|up| QuorumChange { service: si, up, live }))
    }

    /// Record a quorum change and run quorum_up / quorum_down.
    fn act_on_quorum(&mut self, c: QuorumChange) {
        let vs = &self.policy.model.services[c.service];
        let what = if c.up { "quorum gained" } else { "quorum lost" };
        let sorry = match (&vs.sorry_server, c.up) {
            (Some(s), false) => format!("; sorry server {} in", s.addr),
            (Some(s), true) => format!("; sorry server {} out", s.addr),
            (None, _) => String::new(),
        };
        let msg = format!("{}: {what} (live weight {}, quorum {} hysteresis {}){sorry}", vs.name, c.live, vs.quorum, vs.hysteresis);
        if let Some(argv) = if c.up { &vs.quorum_up } else { &vs.quorum_down } {
            spawn_program(argv.clone());
        }
        self.events.push("quorum", msg);
    }

    /// keepalived's `omega`: a service that goes away (shutdown, or dropped from the policy)
    /// runs `notify_down` for each of its reals still up, and `quorum_down` if it had quorum.
    pub(super) fn omega(&mut self, services: &[usize]) {
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
    pub(super) fn release_ipvs(&mut self) {
        let keys: Vec<ServiceKey> = self.owned.iter().copied().collect();
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
        self.sync_services(0..n, Reach::Whole)
    }

    /// The same for some services only (a health change, a drain): only they are read and
    /// written, so a change costs the same with ten services or ten thousand.
    pub(super) fn resync_services(&mut self, services: impl IntoIterator<Item = usize>) {
        self.sync_services(services, Reach::Listed);
    }

    /// After a reload or a drain's end: read and write only the services whose wanted state
    /// changed (and those that left the policy), so a one-weight change at ten thousand
    /// services costs one read and one write. Drift in the others is the periodic resync's.
    pub(super) fn sync_changed(&mut self) -> &SyncReport {
        let n = self.policy.model.services.len();
        self.sync_services(0..n, Reach::Changed)
    }

    /// One pass: the wanted table made (of `services` for `Reach::Listed`, of every service
    /// otherwise), compared with the backend's and the difference written.
    pub(super) fn sync_services(&mut self, services: impl IntoIterator<Item = usize>, reach: Reach) -> &SyncReport {
        let now = std::time::Instant::now();
        let (scope, next) = match reach {
            Reach::Listed => self.wanted_listed(services, now),
            Reach::Whole | Reach::Changed => self.wanted_all(reach, now),
        };
        let remove_all = self.policy.model.global.foreign == Foreign::Remove;
        let owned = &self.owned;
        let report = if reach == Reach::Whole {
            backend::sync(self.backend.as_mut(), &next, &|k| remove_all || owned.contains(k))
        } else {
            backend::sync_services(self.backend.as_mut(), &next, &|k| remove_all || owned.contains(k), &scope)
        };
        report.log_applied();
        // pass_ms: the whole pass on the director's loop (the wanted table made, the read,
        // the writes); read_ms and write_ms are the backend's part of it.
        tracing::debug!(
            target: "ipvs_timing",
            "{} reach={reach:?} services={} applied={} pass_ms={:.1}",
            report.timing,
            scope.len(),
            report.applied.len(),
            now.elapsed().as_secs_f64() * 1000.0
        );
        let (noted, rest) = report.failed.split_at(report.failed.len().min(FAILURES_NOTED));
        for (op, e) in noted {
            self.events.push("ipvs_error", format!("{op}: {e} (will retry at the next resync)"));
        }
        if !rest.is_empty() {
            let n = rest.len();
            self.events.push("ipvs_error", format!("and {n} more failed writes (will retry at the next resync; listed at debug level)"));
            for (op, e) in rest {
                tracing::debug!(target: "ipvs", "{op}: {e}");
            }
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
        if reach == Reach::Whole {
            // Every key lvsd owns was in the pass: what it owns now is what it wrote.
            self.owned = next.services.keys().copied().collect();
        } else {
            for k in &scope {
                self.owned.remove(k);
            }
            self.owned.extend(next.services.keys().copied());
        }
        if self.wanted.services.is_empty() {
            // A whole pass: the table in the pass is the whole wanted table, as built.
            self.wanted = next;
        } else {
            self.wanted.services.extend(next.services);
        }
        // Quorum may have changed: the announcements follow (handed over, never waited on).
        self.bgp_follow();
        self.last_sync = Some(report);
        self.last_sync.as_ref().unwrap()
    }

    /// The services listed (a health change, a drain), as wanted now: the keys in the pass
    /// and the table of those still wanted. They leave `self.wanted` until the pass is done.
    fn wanted_listed(&mut self, services: impl IntoIterator<Item = usize>, now: Instant) -> (Vec<ServiceKey>, Table) {
        let timeout = Duration::from_secs(self.policy.model.global.drain_timeout as u64);
        let mut want = Table::default();
        let mut scope: Vec<ServiceKey> = Vec::new();
        let mut quorum_changes = Vec::new();
        for si in services {
            let (k, svc, change) = self.want_service(si);
            scope.push(k);
            quorum_changes.extend(change);
            if !self.ha_suspended(si) {
                want.services.insert(k, svc);
            }
        }
        for c in quorum_changes {
            self.act_on_quorum(c);
        }
        scope.sort_unstable();
        scope.dedup();
        let mut next = Table::default();
        for &k in &scope {
            let prev = self.wanted.services.remove(&k);
            let svc = self.drain.apply(k, prev.as_ref(), want.services.remove(&k), now, timeout);
            next.services.extend(svc.map(|s| (k, s)));
        }
        (scope, next)
    }

    /// Every service of the policy as wanted now, and those that left it (a periodic pass, a
    /// reload): walked in key order beside `self.wanted`, so that a pass of ten thousand
    /// services makes no map lookup per service. Whole: every key is in the pass. Changed:
    /// only those whose wanted state changed; the others go back to `self.wanted` as they were.
    fn wanted_all(&mut self, reach: Reach, now: Instant) -> (Vec<ServiceKey>, Table) {
        let timeout = Duration::from_secs(self.policy.model.global.drain_timeout as u64);
        let n = self.policy.model.services.len();
        if self.key_order.0 != self.generation || self.key_order.1.len() != n {
            let mut order: Vec<(ServiceKey, usize)> =
                self.policy.model.services.iter().enumerate().map(|(si, vs)| (desired::service_key(&vs.vip), si)).collect();
            order.sort_unstable();
            self.key_order = (self.generation, order);
        }
        let order = std::mem::take(&mut self.key_order.1);
        // A reload's pass leaves the services declared as before as they are installed.
        let as_before = std::mem::take(&mut self.declared_as_before);
        let as_before = |si: usize| reach == Reach::Changed && as_before.get(si).copied().unwrap_or(false);
        // (key, service, its quorum, wanted at all, as before): what the service is made of.
        let mut want: Vec<(ServiceKey, usize, bool, bool, bool)> = Vec::with_capacity(n);
        let mut quorum_changes = Vec::new();
        for &(k, si) in &order {
            debug_assert_eq!(k, desired::service_key(&self.policy.model.services[si].vip), "key order of another generation");
            if as_before(si) {
                want.push((k, si, true, true, true));
                continue;
            }
            let (up, change) = self.want_quorum(si);
            quorum_changes.extend(change);
            want.push((k, si, up, !self.ha_suspended(si), false));
        }
        self.key_order.1 = order;
        // In the policy's order, as they would be met one by one.
        quorum_changes.sort_by_key(|c| c.service);
        for c in quorum_changes {
            self.act_on_quorum(c);
        }
        let mut old = std::mem::take(&mut self.wanted.services).into_iter().peekable();
        let mut want = want.into_iter().peekable();
        let (mut scope, mut pass, mut kept) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            // The smaller key of the two walks, with what each has for it.
            let k = match (want.peek(), old.peek()) {
                (None, None) => break,
                (Some(w), Some(o)) => w.0.min(o.0),
                (Some(w), None) => w.0,
                (None, Some(o)) => o.0,
            };
            let w = if want.peek().is_some_and(|w| w.0 == k) { want.next() } else { None };
            let prev = if old.peek().is_some_and(|o| o.0 == k) { old.next().map(|o| o.1) } else { None };
            if w.is_some_and(|w| w.4) {
                // Declared as before (a reload's pass): as installed, not looked at.
                kept.extend(prev.map(|s| (k, s)));
                continue;
            }
            let wanted = w.filter(|w| w.3);
            let unchanged = match (&wanted, &prev) {
                (Some((_, si, up, ..)), Some(p)) => {
                    desired::service_is(&self.policy.model.services[*si], |ri| self.real_state(*si, ri), *up, p)
                }
                _ => false,
            };
            let svc = if unchanged {
                // Wanted exactly as installed: nothing made, nothing copied.
                let p = prev.expect("unchanged: installed");
                self.drain.keep(k, &p, timeout);
                if reach == Reach::Changed {
                    // Left out of the pass, neither read nor written.
                    kept.push((k, p));
                    continue;
                }
                Some(p)
            } else {
                let made =
                    wanted.map(|(_, si, up, ..)| desired::service(&self.policy.model.services[si], |ri| self.real_state(si, ri), up).1);
                let svc = self.drain.apply(k, prev.as_ref(), made, now, timeout);
                if reach == Reach::Changed && svc == prev {
                    kept.extend(prev.map(|s| (k, s)));
                    continue;
                }
                svc
            };
            scope.push(k);
            pass.extend(svc.map(|s| (k, s)));
        }
        // Both come out in key order, which BTreeMap builds from without a search per key.
        self.wanted.services = kept.into_iter().collect();
        (scope, Table { services: pass.into_iter().collect() })
    }

    /// keepalived's `ha_suspend` for service `si`, with the VRRP states of now.
    pub(super) fn ha_suspended(&self, si: usize) -> bool {
        let m = &self.policy.model;
        let master = |name: &str| self.heartbeat.as_ref().and_then(|h| h.state_of(name)) == Some(fsm_state::State::Master);
        suspend::suspended(&m.services[si], &m.vrrp, master)
    }

    /// Follow VRRP into `ha_suspend`: services that became suspended leave the table and
    /// their checks pause; those resumed come back. `force` tells the checks even when
    /// nothing changed (after a reload, whose new probes know nothing of it).
    pub(super) fn follow_ha_suspend(&mut self, force: bool) {
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
    pub(super) fn service_index(&self, id: &RealId) -> Option<usize> {
        self.policy.model.services.iter().position(|s| s.name == id.0)
    }
}

/// How much of the table a sync reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reach {
    /// The whole table, foreign services included: catches drift.
    Whole,
    /// The services of the policy (and those that left it) whose wanted state changed.
    Changed,
    /// The services listed.
    Listed,
}
