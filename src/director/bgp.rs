//! The director's side of BGP: the wanted announcements computed from the services' state
//! and handed to the BGP thread (never waited on), `drain-director`, and the withdrawal on
//! stop.

use super::*;
use crate::bgp::announce::{self, ServiceView, Wanted};
use crate::bgp::{Plan, Speaker};
use crate::model::{AnnounceWhen, Bgp};
use std::time::Instant;

/// No new connection for this long after the withdrawal: the router has moved the traffic.
const QUIET: Duration = Duration::from_secs(2);
/// The longest a stop waits for BIRD to confirm the withdrawal.
const STOP_WITHDRAW: Duration = Duration::from_secs(3);
/// `drain-director` without a timeout.
pub const DEFAULT_DRAIN_TIMEOUT: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum DrainState {
    /// Waiting for BIRD to confirm every VIP withdrawn.
    Withdrawing,
    /// Waiting for new connections to stop and local ones to finish.
    Waiting,
    Done,
}

/// `lvsd drain-director`: the director out of service until `undrain-director`.
#[derive(Debug, Clone)]
pub(super) struct DirectorDrain {
    since: Instant,
    timeout: Duration,
    /// The plan that withdrew everything.
    seq: u64,
    state: DrainState,
    withdrawn_after: Option<Duration>,
    /// Connections counted so far by the announced services, and since when unchanged.
    conns: Option<u64>,
    quiet_since: Instant,
    active: u64,
    note: String,
}

/// The BGP side of the director.
#[derive(Default)]
pub(super) struct BgpState {
    pub(super) speaker: Option<Speaker>,
    seq: u64,
    /// The last plan sent: its settings and routes.
    sent: Option<(Bgp, Vec<Wanted>)>,
    pub(super) drain: Option<DirectorDrain>,
    /// The director is stopping: everything is withdrawn.
    stopping: bool,
    /// The last failure of each service's announce function: logged when it changes, not at
    /// every resync.
    announce_failed: std::cell::RefCell<HashMap<String, String>>,
}

impl Director {
    fn announce_view(&self, si: usize) -> ServiceView {
        let vs = &self.policy.model.services[si];
        let quorum = self.quorum.get(&vs.name).is_some_and(|q| q.up);
        let suspended = self.suspended.contains(&vs.name);
        let function = match vs.announce.as_ref().map(|a| &a.when) {
            Some(AnnounceWhen::Function(h)) => self.call_announce(si, *h, quorum, suspended),
            _ => None,
        };
        ServiceView { quorum, suspended, function }
    }

    /// `announce = function(state)`: `state` has service, vip, node, quorum, live_weight,
    /// reals_up, reals, suspended, drained. Its error withdraws (and is logged).
    fn call_announce(&self, si: usize, h: crate::model::HookRef, quorum: bool, suspended: bool) -> Option<bool> {
        use mlua::Value;
        let vs = &self.policy.model.services[si];
        let live = desired::live_weight(vs, |ri| self.real_state(si, ri));
        let up = (0..vs.reals.len()).filter(|&ri| matches!(self.real_state(si, ri), RealState::Up(_))).count();
        let vip = match vs.vip {
            crate::model::Vip::Addr { addr, .. } => addr.ip().to_string(),
            crate::model::Vip::Fwmark { mark, .. } => format!("fwmark {mark}"),
        };
        let t = self
            .policy
            .table([
                ("service", self.policy.string(&vs.name)),
                ("vip", self.policy.string(&vip)),
                ("node", self.policy.string(&self.policy.model.node)),
                ("quorum", Value::Boolean(quorum)),
                ("live_weight", Value::Integer(live as i64)),
                ("reals_up", Value::Integer(up as i64)),
                ("reals", Value::Integer(vs.reals.len() as i64)),
                ("suspended", Value::Boolean(suspended)),
                ("drained", Value::Boolean(self.bgp.drain.is_some())),
            ])
            .ok()?;
        let (answer, failure) = match self.policy.call_hook::<_, Value>(h, t) {
            Ok(Value::Boolean(b)) => (Some(b), None),
            Ok(Value::Nil) => (Some(false), None),
            Ok(other) => (None, Some(format!("announce function returned a {}, not true or false: withdrawn", other.type_name()))),
            Err(e) => (None, Some(format!("announce function failed: {e}"))),
        };
        self.note_announce_failure(&vs.name, failure);
        answer
    }

    /// Log an announce function's failure when it starts or changes, and its recovery.
    fn note_announce_failure(&self, service: &str, failure: Option<String>) {
        let mut failed = self.bgp.announce_failed.borrow_mut();
        match failure {
            Some(f) if failed.get(service) != Some(&f) => {
                tracing::warn!("{service}: {f}");
                failed.insert(service.to_string(), f);
            }
            None if failed.remove(service).is_some() => tracing::info!("{service}: announce function works again"),
            _ => {}
        }
    }

    /// Compute the announcements and hand them to the BGP thread if they changed. Starts the
    /// thread at the first plan of a running director.
    pub(super) fn bgp_follow(&mut self) {
        // Only a running director talks to BIRD (not `--once`, not a plan).
        if self.checks.is_none() {
            return;
        }
        let (bgp, wanted) = match self.policy.model.bgp.clone() {
            Some(b) => {
                let n = self.policy.model.services.len();
                let views: Vec<ServiceView> =
                    (0..n)
                        .map(|si| {
                            if self.policy.model.services[si].announce.is_some() { self.announce_view(si) } else { ServiceView::default() }
                        })
                        .collect();
                let drained = self.bgp.drain.is_some() || self.bgp.stopping;
                let mut w = announce::wanted(&self.policy.model, |si| views[si], drained);
                if self.bgp.stopping {
                    w.iter_mut().for_each(|w| w.why = "director stopping".into());
                }
                (b, w)
            }
            // lvsd.bgp left the policy: everything it announced is withdrawn (the thread goes on
            // until the director stops, in case it comes back).
            None => match &self.bgp.sent {
                Some((b, w)) => {
                    let w = w.iter().map(|w| Wanted { announce: false, why: "lvsd.bgp left the policy".into(), ..w.clone() }).collect();
                    (b.clone(), w)
                }
                None => return,
            },
        };
        if self.bgp.speaker.is_some() && self.bgp.sent.as_ref().is_some_and(|(b, w)| *b == bgp && *w == wanted) {
            return;
        }
        for w in &wanted {
            let before = self.bgp.sent.as_ref().and_then(|(_, s)| s.iter().find(|x| x.addr == w.addr)).map(|x| x.announce);
            if before != Some(w.announce) && (before.is_some() || w.announce) {
                let what = if w.announce { "announce" } else { "withdraw" };
                self.events.push("bgp", format!("{} {what}: {}", w.net(), w.why));
            }
        }
        self.bgp.seq += 1;
        let plan = Plan { seq: self.bgp.seq, bgp: bgp.clone(), wanted: wanted.clone() };
        match &self.bgp.speaker {
            Some(s) => s.send(plan),
            None => match Speaker::start(plan) {
                Ok(s) => self.bgp.speaker = Some(s),
                Err(e) => self.events.push("bgp_error", format!("cannot start the BGP thread: {e}")),
            },
        }
        self.bgp.sent = Some((bgp, wanted));
    }

    /// Send the last plan again (to a new thread).
    fn bgp_resend(&mut self) {
        self.bgp.sent = None;
        self.bgp_follow();
    }

    /// Periodic: BIRD's events into the log, and the progress of a director drain.
    pub(super) fn bgp_tick(&mut self) {
        // Supervised: a BGP thread that ended by itself is started again with the last plan.
        if self.bgp.speaker.as_ref().is_some_and(|s| !s.is_alive()) {
            self.bgp.speaker = None;
            self.events.push("bgp_error", "the BGP thread ended; starting it again");
            self.bgp_resend();
        }
        let Some(s) = &self.bgp.speaker else { return };
        for e in s.take_events() {
            self.events.push("bgp", e);
        }
        let status = s.status();
        let conns =
            if self.bgp.drain.as_ref().is_some_and(|d| d.state == DrainState::Waiting) { Some(self.announced_conns()) } else { None };
        let Some(d) = self.bgp.drain.as_mut() else { return };
        let now = Instant::now();
        let mut done = None;
        match d.state {
            DrainState::Done => return,
            DrainState::Withdrawing if status.withdrawn(d.seq) => {
                d.state = DrainState::Waiting;
                d.withdrawn_after = Some(now - d.since);
                d.quiet_since = now;
                let ms = (now - d.since).as_millis();
                self.events.push("drain_director", format!("every VIP withdrawn ({ms} ms); waiting for the connections"));
            }
            DrainState::Withdrawing => {}
            DrainState::Waiting => {
                let (total, active) = conns.unwrap_or((0, 0));
                if d.conns != Some(total) {
                    d.conns = Some(total);
                    d.quiet_since = now;
                }
                d.active = active;
                if active == 0 && now - d.quiet_since >= QUIET.min(d.timeout) {
                    done = Some(format!("no new connection for {} s and none active", QUIET.min(d.timeout).as_secs_f64()));
                }
            }
        }
        if done.is_none() && now - d.since >= d.timeout {
            done = Some(format!(
                "timeout after {} s ({}; {} connections still active)",
                d.timeout.as_secs(),
                if d.state == DrainState::Withdrawing {
                    "BIRD did not confirm the withdrawal"
                } else {
                    "connections still arriving or active"
                },
                d.active
            ));
        }
        if let Some(note) = done {
            d.state = DrainState::Done;
            d.note = note.clone();
            let secs = (now - d.since).as_secs_f64();
            self.events.push("drain_director", format!("drained in {secs:.1} s: {note}"));
        }
    }

    /// Connections ever counted and active now, summed over the announced services.
    fn announced_conns(&mut self) -> (u64, u64) {
        let keys: HashSet<crate::ipvs::table::ServiceKey> =
            self.policy.model.services.iter().filter(|s| s.announce.is_some()).map(|s| desired::service_key(&s.vip)).collect();
        let Ok(t) = self.backend.dump() else { return (0, 0) };
        let mut total = 0u64;
        let mut active = 0u64;
        for (k, svc) in t.services.iter().filter(|(k, _)| keys.contains(k)) {
            let _ = k;
            total += svc.stats.conns;
            active += svc.dests.values().map(|d| d.stats.active_conns as u64).sum::<u64>();
        }
        (total, active)
    }

    pub(super) fn drain_director(&mut self, timeout: Option<u64>) -> Response {
        if self.policy.model.bgp.is_none() {
            return Response::err("the policy has no lvsd.bgp: this director announces nothing to withdraw");
        }
        if let Some(d) = &self.bgp.drain {
            return Response::ok(json!({ "draining": true, "state": d.state, "already": true }));
        }
        let timeout = Duration::from_secs(timeout.unwrap_or(DEFAULT_DRAIN_TIMEOUT));
        let now = Instant::now();
        self.bgp.drain = Some(DirectorDrain {
            since: now,
            timeout,
            seq: 0,
            state: DrainState::Withdrawing,
            withdrawn_after: None,
            conns: None,
            quiet_since: now,
            active: 0,
            note: String::new(),
        });
        self.events.push("drain_director", format!("draining the director: withdrawing every VIP (timeout {} s)", timeout.as_secs()));
        self.bgp_follow();
        let seq = self.bgp.seq;
        if let Some(d) = self.bgp.drain.as_mut() {
            d.seq = seq;
        }
        Response::ok(json!({ "draining": true, "state": DrainState::Withdrawing, "timeout": timeout.as_secs() }))
    }

    pub(super) fn undrain_director(&mut self) -> Response {
        if self.bgp.drain.take().is_none() {
            return Response::ok(json!({ "drained": false, "already": true }));
        }
        self.events.push("drain_director", "undrained: the VIPs are announced again as their services allow");
        self.bgp_follow();
        Response::ok(json!({ "drained": false }))
    }

    /// On stop, before anything else is torn down: withdraw every VIP and wait (bounded)
    /// for BIRD to confirm, so the router moves the traffic while IPVS still serves it.
    pub(super) async fn bgp_withdraw_for_stop(&mut self) {
        if self.bgp.speaker.is_none() {
            return;
        }
        self.bgp.stopping = true;
        let started = Instant::now();
        self.bgp_follow();
        let seq = self.bgp.seq;
        while started.elapsed() < STOP_WITHDRAW {
            if self.bgp.speaker.as_ref().is_none_or(|s| s.status().withdrawn(seq)) {
                self.events.push("bgp", format!("every VIP withdrawn before stopping ({} ms)", started.elapsed().as_millis()));
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.events.push("bgp_error", format!("BIRD did not confirm the withdrawal within {} s; stopping anyway", STOP_WITHDRAW.as_secs()));
    }

    /// The end of a stop: the BGP thread goes (bounded).
    pub(super) fn bgp_stop(&mut self) {
        if let Some(s) = self.bgp.speaker.take() {
            s.stop(Duration::from_secs(1));
        }
    }

    /// The `bgp` part of the status document (null without lvsd.bgp and no thread).
    pub(super) fn bgp_status(&self) -> Option<serde_json::Value> {
        let s = self.bgp.speaker.as_ref()?;
        let st = match &self.bgp.sent {
            Some((_, wanted)) => s.status().with_wanted(wanted),
            None => s.status(),
        };
        let mut v = serde_json::to_value(st).ok()?;
        v["drain"] = match &self.bgp.drain {
            None => serde_json::Value::Null,
            Some(d) => json!({
                "state": d.state,
                "for_secs": d.since.elapsed().as_secs_f64(),
                "timeout": d.timeout.as_secs(),
                "withdrawn_after_ms": d.withdrawn_after.map(|t| t.as_millis() as u64),
                "active_conns": d.active,
                "note": d.note,
            }),
        };
        Some(v)
    }
}
