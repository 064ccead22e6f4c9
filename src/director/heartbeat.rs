//! The heartbeat: the VRRP instances (`vrrp.rs`), their sockets, VIPs and gratuitous ARP run
//! on a thread of their own with its own runtime, so that nothing else the director does (Lua
//! hooks, netlink dumps, status and metrics, reloads, notify programs) can delay an advert.
//! The director talks to it over bounded channels and reads its state from a shared view.

use super::track::TrackChange;
use super::vrrp::{self, Transition, Vrrp};
use crate::model::Model;
use crate::vrrp::fsm::State;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Requests from the director.
pub enum Command {
    /// A new policy generation: instances kept, restarted, started or stopped; with the state
    /// of every track function for them.
    Update(Box<Model>, Vec<TrackChange>),
    /// A track function changed.
    Track {
        instance: String,
        name: String,
        up: bool,
        weight: i32,
    },
    Yield(String),
    Unyield(String),
    /// Sync-aware preemption: the connection table caught up, the instance may preempt.
    ReleasePreempt(String),
    /// Graceful stop: masters send priority 0 and drop their VIPs; answered when done.
    Shutdown(oneshot::Sender<()>),
}

/// What the heartbeat tells the director.
#[derive(Debug)]
pub enum Report {
    Transitions(Vec<Transition>),
    /// For the event log: (kind, message).
    Note(&'static str, String),
    /// An instance holds a preemption of `master` for at most `bound` (sync-aware
    /// preemption): the director watches the connection table and sends `ReleasePreempt`.
    PreemptHeld {
        instance: String,
        master: std::net::IpAddr,
        priority: u8,
        bound: Duration,
    },
}

/// How many requests and reports may wait. Neither side ever blocks on the other: the
/// director's requests are tried (a full queue is an error it reports), the heartbeat's
/// reports too (a director that stopped reading loses reports, never adverts).
const QUEUE: usize = 1024;

/// The heartbeat's state as the director sees it (status, ha_suspend).
#[derive(Debug, Default, Clone)]
pub struct View {
    pub status: Vec<Value>,
    pub states: HashMap<String, State>,
    /// Reports that could not be delivered (the director was not reading).
    pub lost_reports: u64,
    /// The end of the heartbeat loop's latest turn: the systemd watchdog's sign of life.
    pub last_beat: Option<Instant>,
}

/// The director's handle on the heartbeat thread.
pub struct Heartbeat {
    tx: mpsc::Sender<Command>,
    view: Arc<Mutex<View>>,
}

impl Heartbeat {
    /// Start the thread and the model's instances on it.
    pub fn start(model: Model) -> std::io::Result<(Heartbeat, mpsc::Receiver<Report>)> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (report_tx, report_rx) = mpsc::channel(QUEUE);
        let view = Arc::new(Mutex::new(View::default()));
        let shared = view.clone();
        std::thread::Builder::new().name("lvsd-vrrp".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("VRRP runtime: {e}");
                    return;
                }
            };
            realtime();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, run(model, rx, report_tx, shared));
        })?;
        Ok((Heartbeat { tx, view }, report_rx))
    }

    pub fn view(&self) -> View {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn state_of(&self, name: &str) -> Option<State> {
        self.view.lock().ok()?.states.get(name).copied()
    }

    pub fn status(&self) -> Vec<Value> {
        self.view.lock().map(|v| v.status.clone()).unwrap_or_default()
    }

    /// When the heartbeat loop last went round (it does at least every [`BEAT_EVERY`]).
    pub fn last_beat(&self) -> Option<Instant> {
        self.view.lock().ok()?.last_beat
    }

    pub fn is_running(&self, name: &str) -> bool {
        self.view.lock().is_ok_and(|v| v.states.contains_key(name))
    }

    /// Queue a request; an error when the heartbeat is gone or not keeping up.
    pub fn send(&self, cmd: Command) -> Result<(), String> {
        self.tx.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => "the VRRP thread is not keeping up: request dropped".to_string(),
            mpsc::error::TrySendError::Closed(_) => "the VRRP thread has stopped".to_string(),
        })
    }

    /// Stop every instance gracefully; waits at most `bound`.
    pub async fn shutdown(self, bound: Duration) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(done_tx)).await.is_ok() {
            let _ = tokio::time::timeout(bound, done_rx).await;
        }
    }
}

/// Run the heartbeat's thread at a real-time priority (SCHED_RR, the lowest such priority):
/// a busy machine (a spinning hook, a big resync, other daemons) must not delay an advert.
/// Nothing runs on this thread but VRRP, which never spins; the kernel's real-time throttling
/// still leaves the rest of the machine its share. Without CAP_SYS_NICE it stays as it was.
fn realtime() {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: pid 0 is the calling thread; param is a valid sched_param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) } != 0 {
        tracing::debug!("VRRP thread: no real-time priority: {}", std::io::Error::last_os_error());
    }
}

/// How often sockets and VIPs are compared with what they should be (a link re-created, a
/// VIP deleted by hand), and the longest the view may lag behind the counters.
const MAINTAIN_EVERY: Duration = Duration::from_secs(1);
const VIEW_EVERY: Duration = Duration::from_millis(100);
/// The longest the loop waits between turns when idle (the maintenance tick).
pub const BEAT_EVERY: Duration = MAINTAIN_EVERY;
/// Link events handled before timers are looked at again.
const BATCH: usize = 64;

struct Loop {
    vrrp: Vrrp,
    reports: mpsc::Sender<Report>,
    view: Arc<Mutex<View>>,
    view_at: Option<Instant>,
    lost: u64,
}

impl Loop {
    fn report(&mut self, r: Report) {
        if self.reports.try_send(r).is_err() {
            self.lost += 1;
        }
    }

    fn transitions(&mut self, ts: Vec<Transition>) {
        if !ts.is_empty() {
            // The states the director reads for ha_suspend follow at once.
            self.publish(true);
            self.report(Report::Transitions(ts));
        }
    }

    fn publish(&mut self, now_please: bool) {
        let now = Instant::now();
        if !now_please && self.view_at.is_some_and(|t| now.duration_since(t) < VIEW_EVERY) {
            return;
        }
        self.view_at = Some(now);
        let status = self.vrrp.status();
        let states = self.vrrp.names().into_iter().filter_map(|n| self.vrrp.state_of(&n).map(|s| (n, s))).collect();
        if let Ok(mut v) = self.view.lock() {
            *v = View { status, states, lost_reports: self.lost, last_beat: Some(now) };
        }
    }

    async fn flush(&mut self) {
        let ts = self.vrrp.flush(Instant::now()).await;
        self.vrrp.tidy();
        self.transitions(ts);
        for (kind, msg) in self.vrrp.take_notes() {
            self.report(Report::Note(kind, msg));
        }
        for (instance, master, priority, bound) in self.vrrp.take_held() {
            self.report(Report::PreemptHeld { instance, master, priority, bound });
        }
    }
}

async fn run(model: Model, mut cmds: mpsc::Receiver<Command>, reports: mpsc::Sender<Report>, view: Arc<Mutex<View>>) {
    let (in_tx, mut inputs) = mpsc::channel(vrrp::INPUT_QUEUE);
    let mut l = Loop { vrrp: Vrrp::new(in_tx), reports, view, view_at: None, lost: 0 };
    let (ts, errors) = l.vrrp.start(&model, Instant::now());
    for e in errors {
        l.report(Report::Note("vrrp_error", e));
    }
    l.transitions(ts);
    l.flush().await;
    l.publish(true);
    let mut maintain = tokio::time::interval(MAINTAIN_EVERY);
    maintain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut timer = Timer::new();
    loop {
        timer.set(l.vrrp.next_deadline());
        // Timers first: an advert that is due goes out before any packet is looked at.
        tokio::select! {
            biased;
            _ = timer.fired() => {
                // Adverts already received come first: on a starved machine the master's advert
                // may be waiting here while the backup's timer runs out, and it cancels that timer.
                // (Only sockets the runtime saw readable are read: no system call otherwise.)
                let mut ts = l.vrrp.receive(Instant::now());
                ts.extend(l.vrrp.on_timeout(Instant::now()));
                l.transitions(ts);
            }
            _ = l.vrrp.readable() => {
                let ts = l.vrrp.receive(Instant::now());
                l.transitions(ts);
            }
            Some(input) = inputs.recv() => {
                let mut ts = l.vrrp.on_input(input, Instant::now());
                for _ in 1..BATCH {
                    let Ok(input) = inputs.try_recv() else { break };
                    ts.extend(l.vrrp.on_input(input, Instant::now()));
                }
                l.transitions(ts);
            }
            cmd = cmds.recv() => {
                let now = Instant::now();
                match cmd {
                    Some(Command::Update(m, tracks)) => {
                        let (ts, errors) = l.vrrp.update(&m, &tracks, now);
                        for e in errors {
                            l.report(Report::Note("vrrp_error", e));
                        }
                        l.transitions(ts);
                        l.publish(true);
                    }
                    Some(Command::Track { instance, name, up, weight }) => {
                        let ts = l.vrrp.track(&instance, &name, up, weight, now);
                        l.transitions(ts);
                    }
                    Some(Command::Yield(name)) => match l.vrrp.yield_instance(&name, now) {
                        Ok(ts) => l.transitions(ts),
                        Err(e) => l.report(Report::Note("vrrp_error", e)),
                    },
                    Some(Command::Unyield(name)) => match l.vrrp.unyield(&name, now) {
                        Ok(ts) => l.transitions(ts),
                        Err(e) => l.report(Report::Note("vrrp_error", e)),
                    },
                    Some(Command::ReleasePreempt(name)) => {
                        let ts = l.vrrp.release_preempt(&name, now);
                        l.transitions(ts);
                    }
                    Some(Command::Shutdown(done)) => {
                        let ts = l.vrrp.shutdown(Instant::now()).await;
                        l.transitions(ts);
                        l.publish(true);
                        let _ = done.send(());
                        return;
                    }
                    // The director is gone without a graceful stop: stop anyway, so that no
                    // VIP outlives the process's will to advertise it.
                    None => {
                        l.vrrp.shutdown(Instant::now()).await;
                        return;
                    }
                }
            }
            _ = maintain.tick() => {
                let ts = l.vrrp.maintain(Instant::now());
                l.transitions(ts);
            }
        }
        l.flush().await;
        l.publish(false);
        if let Ok(mut v) = l.view.lock() {
            v.last_beat = Some(Instant::now());
        }
    }
}

/// The state machines' next deadline as one tokio sleep, kept armed between turns.
///
/// A tokio timer set earlier than every other timer of the runtime wakes the runtime's
/// driver (an eventfd write, then an `epoll_wait` that returns at once) even on the driver's
/// own thread — for a master at advert 0.01 s, after every advert: the advert just sent
/// leaves its next one as the earliest timer. A second sleep (`ahead`), never awaited, is
/// kept at the deadline after next, predicted from the last period (`deadline + (deadline -
/// fired)`): the next deadline is then never earlier than the earliest timer and the wake-up
/// is saved. A wrong prediction only costs that wake-up; `ahead` never fires anything.
struct Timer {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    ahead: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// The deadline `sleep` is set to (None: no deadline, the branch is off).
    armed: Option<Instant>,
    /// The deadline that fired last, while the next one is not set yet.
    fired: Option<Instant>,
}

impl Timer {
    fn new() -> Timer {
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
        Timer { sleep: Box::pin(tokio::time::sleep_until(far)), ahead: Box::pin(tokio::time::sleep_until(far)), armed: None, fired: None }
    }

    /// Arm for `deadline` (unchanged: nothing to do).
    fn set(&mut self, deadline: Option<Instant>) {
        if deadline == self.armed {
            return;
        }
        self.armed = deadline;
        let Some(t) = deadline else { return };
        self.sleep.as_mut().reset(tokio::time::Instant::from_std(t));
        if let Some(f) = self.fired.take()
            && t > f
        {
            self.ahead.as_mut().reset(tokio::time::Instant::from_std(t + (t - f)));
        }
    }

    /// Completes when the armed deadline is reached; never without one.
    async fn fired(&mut self) {
        match self.armed {
            Some(t) => {
                self.sleep.as_mut().await;
                // A completed sleep completes again at once: it must be set anew.
                self.armed = None;
                self.fired = Some(t);
            }
            None => std::future::pending().await,
        }
    }
}
