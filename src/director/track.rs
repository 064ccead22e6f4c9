//! VRRP track functions (keepalived's vrrp_script as Lua or exec): run each on its interval,
//! apply rise/fall, and tell the instance when one changes.

use crate::check::{CheckResult, Health};
use crate::model::{Model, Track, TrackKind};
use crate::policy::Policy;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub struct TrackRun {
    pub instance: String,
    pub track: Track,
    health: Health,
    /// Whether the instance has been told this track's state yet.
    reported: bool,
    next: Instant,
    /// An exec run is under way (its result arrives on the channel).
    busy: bool,
}

/// An exec track's result, from its task.
pub struct TrackDone {
    pub index: usize,
    pub generation: u64,
    pub result: CheckResult,
}

pub struct Tracks {
    runs: Vec<TrackRun>,
    /// Bumped when the policy changes, so that results of old runs are ignored.
    generation: u64,
    tx: mpsc::UnboundedSender<TrackDone>,
}

/// What the director must tell a VRRP instance: (instance, track name, up, weight).
pub type TrackChange = (String, String, bool, i32);

impl Tracks {
    pub fn new(tx: mpsc::UnboundedSender<TrackDone>) -> Tracks {
        Tracks { runs: Vec::new(), generation: 0, tx }
    }

    /// Track functions of a (new) model; history of unchanged tracks is kept. Returns what the
    /// instances must be told so that they agree with it: the state of every track known
    /// (with its weight as the model now says), and removed tracks as neutral (up, weight 0).
    pub fn set(&mut self, m: &Model, now: Instant) -> Vec<TrackChange> {
        let mut old = std::mem::take(&mut self.runs);
        self.generation += 1;
        for v in &m.vrrp {
            for t in &v.tracks {
                let kept = old.iter().position(|r| r.instance == v.name && r.track.name == t.name && r.track.kind == t.kind);
                let run = match kept {
                    Some(i) => {
                        let mut r = old.swap_remove(i);
                        r.health.set_thresholds(t.rise, t.fall);
                        r.track = t.clone();
                        r.busy = false;
                        r
                    }
                    None => TrackRun {
                        instance: v.name.clone(),
                        track: t.clone(),
                        health: Health::new(t.rise, t.fall, false),
                        reported: false,
                        next: now,
                        busy: false,
                    },
                };
                self.runs.push(run);
            }
        }
        let known =
            self.runs.iter().filter(|r| r.reported).map(|r| (r.instance.clone(), r.track.name.clone(), r.health.is_up(), r.track.weight));
        let removed = old.into_iter().filter(|r| r.reported).map(|r| (r.instance, r.track.name, true, 0));
        known.chain(removed).collect()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.runs.iter().filter(|r| !r.busy).map(|r| r.next).min()
    }

    fn timeout(t: &Track) -> Duration {
        Duration::from_secs_f64(if t.timeout > 0.0 { t.timeout } else { t.interval })
    }

    /// Start every track that is due. Lua tracks run here (under the instruction limit);
    /// exec tracks run as tasks whose results come back through `on_done`.
    pub fn run_due(&mut self, policy: &Policy, now: Instant) -> Vec<TrackChange> {
        let mut out = Vec::new();
        for i in 0..self.runs.len() {
            let r = &mut self.runs[i];
            if r.busy || r.next > now {
                continue;
            }
            r.next = now + Duration::from_secs_f64(r.track.interval);
            match &r.track.kind {
                TrackKind::Lua { run } => {
                    let t0 = Instant::now();
                    let result = match policy.call_hook::<_, mlua::Value>(*run, ()) {
                        Ok(mlua::Value::Nil | mlua::Value::Boolean(false)) => CheckResult::down(t0.elapsed(), "returned false"),
                        Ok(_) => CheckResult::up(t0.elapsed()),
                        Err(e) => CheckResult::down(t0.elapsed(), e),
                    };
                    out.extend(self.record(i, result));
                }
                TrackKind::Exec { command } => {
                    r.busy = true;
                    let (argv, timeout, tx, generation) = (command.clone(), Self::timeout(&r.track), self.tx.clone(), self.generation);
                    tokio::task::spawn_local(async move {
                        let result = crate::check::runner::exec(&argv, false, timeout).await;
                        let _ = tx.send(TrackDone { index: i, generation, result });
                    });
                }
            }
        }
        out
    }

    pub fn on_done(&mut self, d: TrackDone) -> Option<TrackChange> {
        if d.generation != self.generation || d.index >= self.runs.len() {
            return None;
        }
        self.runs[d.index].busy = false;
        self.record(d.index, d.result)
    }

    fn record(&mut self, i: usize, result: CheckResult) -> Option<TrackChange> {
        let r = &mut self.runs[i];
        let changed = r.health.record(result).is_some();
        if changed || !r.reported {
            r.reported = true;
            return Some((r.instance.clone(), r.track.name.clone(), r.health.is_up(), r.track.weight));
        }
        None
    }
}
