//! The heartbeat: the VRRP instances (`vrrp.rs`), their sockets, VIPs and gratuitous ARP run
//! on a thread of their own with its own runtime, so that nothing else the director does (Lua
//! hooks, netlink dumps, status and metrics, reloads, notify programs) can delay an advert.
//! The director talks to it over bounded channels and reads its state from a shared view.

use super::track::TrackChange;
use super::vrrp::{self, Transition, Vrrp};
use super::vrrp_status::InstanceStatus;
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
    /// The loop failed and its instances were stopped (why, and what was taken down); they
    /// start again shortly, without their tracks' states until the director sends them.
    Restarting(String),
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
/// How long the director waits for the instances to start before it goes on without them.
const STARTUP_WAIT: Duration = Duration::from_secs(5);

/// The heartbeat's state as the director sees it (status, ha_suspend).
#[derive(Debug, Default, Clone)]
pub struct View {
    pub status: Vec<InstanceStatus>,
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
    /// Disconnected when the thread has ended.
    ended: std::sync::mpsc::Receiver<()>,
}

/// How long a director that goes away without a graceful stop waits for the instances to stop.
const STOP_WAIT: Duration = Duration::from_secs(2);

impl Drop for Heartbeat {
    /// The director's loop ending without a graceful stop (it panicked, and the process is
    /// about to exit): closing the queue makes the VRRP loop stop its instances (priority 0
    /// adverts, VIPs down), and the process waits for that, bounded, so that no VIP outlives
    /// it and the backup takes over at once. After a graceful stop the thread has ended and
    /// nothing waits.
    fn drop(&mut self) {
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.tx, closed));
        let _ = self.ended.recv_timeout(STOP_WAIT);
    }
}

impl Heartbeat {
    /// Start the thread and the model's instances on it.
    pub fn start(model: Model) -> std::io::Result<(Heartbeat, mpsc::Receiver<Report>)> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (report_tx, report_rx) = mpsc::channel(QUEUE);
        let view = Arc::new(Mutex::new(View::default()));
        let shared = view.clone();
        let (started_tx, started) = std::sync::mpsc::sync_channel(1);
        let (ended_tx, ended) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new().name("lvsd-vrrp".into()).spawn(move || {
            let _ended = ended_tx;
            supervise(model, rx, report_tx, shared, started_tx)
        })?;
        // Ready once the instances have started and their state is in the view, so that the
        // first status after start-up (and systemd's READY) shows them. A thread that could
        // not start drops the sender and ends the wait at once.
        let _ = started.recv_timeout(STARTUP_WAIT);
        Ok((Heartbeat { tx, view, ended }, report_rx))
    }

    pub fn view(&self) -> View {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn state_of(&self, name: &str) -> Option<State> {
        self.view.lock().ok()?.states.get(name).copied()
    }

    /// Each instance's status as JSON (made here, on the caller's thread).
    pub fn status(&self) -> Vec<Value> {
        let status = self.view.lock().map(|v| v.status.clone()).unwrap_or_default();
        status.iter().map(InstanceStatus::to_json).collect()
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

/// The heartbeat thread's scheduling class, `lvsd.global { vrrp_rt_priority = N }`. By default
/// the lowest real-time priority (SCHED_RR 1): a busy machine (a spinning hook, a big resync,
/// other daemons) must not delay an advert. Nothing runs on this thread but VRRP, which never
/// spins; the kernel's real-time throttling still leaves the rest of the machine its share.
/// 0 is the ordinary class, keepalived's default (without `vrrp_rt_priority`): adverts then
/// take their turn with everything else on the machine. Raising the class needs CAP_SYS_NICE
/// (or RLIMIT_RTPRIO); without it the thread stays as it was.
fn set_scheduling(priority: Option<u8>) -> Result<(), String> {
    let p = priority.unwrap_or(DEFAULT_RT_PRIORITY);
    let class = if p == 0 { libc::SCHED_OTHER } else { libc::SCHED_RR };
    let param = libc::sched_param { sched_priority: i32::from(p) };
    // SAFETY: pid 0 is the calling thread; param is a valid sched_param.
    if unsafe { libc::sched_setscheduler(0, class, &param) } != 0 {
        let class = if p == 0 { "the ordinary scheduling class".to_string() } else { format!("real-time priority {p}") };
        return Err(format!("VRRP thread: cannot take {class}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// SCHED_RR's lowest priority: above every ordinary thread, below any other real-time one.
const DEFAULT_RT_PRIORITY: u8 = 1;

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

    /// Take the scheduling the policy asks for; a failure is an event only when the policy
    /// asked (the default needs a privilege tests and `--dry-run` runs may lack).
    fn schedule(&mut self, priority: Option<u8>) {
        match set_scheduling(priority) {
            Ok(()) => {}
            Err(e) if priority.is_some() => {
                tracing::warn!("{e}");
                self.report(Report::Note("vrrp_error", e));
            }
            Err(e) => tracing::debug!("{e}"),
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

    fn flush(&mut self) {
        let ts = self.vrrp.flush(Instant::now());
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

/// The heartbeat thread: the loop, started again when it fails. A panic in it (a bug: no
/// input from outside may cause one) would leave a master's addresses up with nobody
/// advertising them, so that the backup takes over and both hold them. Instead every
/// instance's addresses and routes are taken down at once, the director is told why, and
/// after a wait (doubled at each failure in a row, at most 30 s) the instances start again
/// from the latest model, as at start-up: they elect anew and the director sends their
/// tracks' states.
fn supervise(
    mut model: Model,
    mut cmds: mpsc::Receiver<Command>,
    reports: mpsc::Sender<Report>,
    view: Arc<Mutex<View>>,
    started: std::sync::mpsc::SyncSender<()>,
) {
    use crate::check::supervise::{backoff, panic_message};
    let mut started = Some(started);
    let mut failures = 0u32;
    loop {
        // Sockets and timers only: no signal or child-process driver to look at on every turn.
        let rt = match tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!("VRRP runtime: {e}");
                let _ = reports.try_send(Report::Note("vrrp_error", format!("cannot start the VRRP thread's runtime: {e}")));
                return;
            }
        };
        let local = tokio::task::LocalSet::new();
        let since = Instant::now();
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            local.block_on(&rt, run(&mut model, &mut cmds, reports.clone(), view.clone(), started.take()))
        }));
        let Err(p) = ran else { return };
        drop(local);
        drop(rt);
        // A loop that ran for a while before it failed starts again after the first wait.
        failures = if since.elapsed() > STEADY { 1 } else { failures + 1 };
        let wait = backoff(RESTART_AFTER, failures);
        let (taken, moves) = release_all(&model, &view);
        let taken = if taken.is_empty() { "nothing was held".to_string() } else { format!("taken down: {}", taken.join(", ")) };
        let why = format!(
            "the VRRP thread failed ({}): every instance stopped and {taken}; starting them again in {wait:?}",
            panic_message(p.as_ref())
        );
        tracing::error!("{why}");
        let _ = reports.try_send(Report::Restarting(why));
        if !moves.is_empty() {
            let _ = reports.try_send(Report::Transitions(moves));
        }
        std::thread::sleep(wait);
    }
}

/// The first wait before the instances start again after the loop failed.
const RESTART_AFTER: Duration = Duration::from_millis(500);
/// How long the loop must have run for its next failure to count as a first one.
const STEADY: Duration = Duration::from_secs(60);

/// After the loop failed: no instance holds anything and the view shows none running (a
/// panic while the view was locked left it poisoned: its data is replaced whole here).
/// Returns what was taken down, and each instance's move to Fault for the director (its
/// notify programs and hooks run as for any other move).
fn release_all(model: &Model, view: &Mutex<View>) -> (Vec<String>, Vec<Transition>) {
    view.clear_poison();
    let mut was = HashMap::new();
    if let Ok(mut v) = view.lock() {
        was = std::mem::take(&mut v.states);
        let lost_reports = v.lost_reports;
        *v = View { lost_reports, ..View::default() };
    }
    let mut taken = Vec::new();
    let mut moves = Vec::new();
    for v in &model.vrrp {
        taken.extend(super::vrrp_config::release_held(v).into_iter().map(|w| format!("{} {w}", v.name)));
        if let Some(&from) = was.get(&v.name).filter(|s| **s != State::Fault) {
            moves.push(Transition {
                instance: v.name.clone(),
                from,
                to: State::Fault,
                reason: "the VRRP thread failed".into(),
                priority: v.priority,
                group: model.sync_groups.iter().find(|g| g.instances.contains(&v.name)).map(|g| g.name.clone()),
            });
        }
    }
    (taken, moves)
}

async fn run(
    model: &mut Model,
    cmds: &mut mpsc::Receiver<Command>,
    reports: mpsc::Sender<Report>,
    view: Arc<Mutex<View>>,
    started: Option<std::sync::mpsc::SyncSender<()>>,
) {
    let (in_tx, mut inputs) = mpsc::channel(vrrp::INPUT_QUEUE);
    let mut l = Loop { vrrp: Vrrp::new(in_tx), reports, view, view_at: None, lost: 0 };
    let mut priority = model.global.vrrp_rt_priority;
    l.schedule(priority);
    let (ts, errors) = l.vrrp.start(model, Instant::now());
    for e in errors {
        l.report(Report::Note("vrrp_error", e));
    }
    l.transitions(ts);
    l.flush();
    l.publish(true);
    if let Some(started) = started {
        let _ = started.send(());
    }
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
                        if m.global.vrrp_rt_priority != priority {
                            priority = m.global.vrrp_rt_priority;
                            l.schedule(priority);
                        }
                        let (ts, errors) = l.vrrp.update(&m, &tracks, now);
                        for e in errors {
                            l.report(Report::Note("vrrp_error", e));
                        }
                        l.transitions(ts);
                        l.publish(true);
                        *model = *m;
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
                        let ts = l.vrrp.shutdown(Instant::now());
                        l.transitions(ts);
                        l.publish(true);
                        let _ = done.send(());
                        return;
                    }
                    // The director is gone without a graceful stop: stop anyway, so that no
                    // VIP outlives the process's will to advertise it.
                    None => {
                        l.vrrp.shutdown(Instant::now());
                        return;
                    }
                }
            }
            _ = maintain.tick() => {
                #[cfg(debug_assertions)]
                crate::injected::VRRP.panic_if_due();
                let ts = l.vrrp.maintain(Instant::now());
                l.transitions(ts);
            }
        }
        l.flush();
        l.publish(false);
        if let Ok(mut v) = l.view.lock() {
            v.last_beat = Some(Instant::now());
        }
    }
}

/// The state machines' next deadline, on a timerfd of the heartbeat's own.
///
/// tokio's timers cost a master at advert 0.01 s wake-ups it need not have: a timer set
/// earlier than every other one of the runtime (the next advert, after each advert) writes
/// the runtime's eventfd and makes the next `epoll_wait` return at once; a deadline in the
/// next 64 ms block of tokio's timer wheel wakes the thread at the block's start to move
/// it down a level (about one advert in six, and as often on a backup); a sleep pushed later
/// (a backup's down timer, at each advert) still wakes at its first deadline. A timerfd
/// wakes `epoll_wait` once, at the deadline to the nanosecond (tokio rounds up to the
/// next millisecond), for one `timerfd_settime` when the deadline changes. Without a
/// timerfd (none could be made), a tokio sleep as before.
struct Timer {
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
    /// The deadline the timer is set to (None: none, the branch is off).
    armed: Option<Instant>,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Timer {
    fn new() -> Timer {
        use std::os::fd::FromRawFd;
        // SAFETY: plain system call; a valid fd is owned by the OwnedFd from here on.
        let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        let fd = if raw < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            // SAFETY: `raw` was just created and is owned by nothing else; the OwnedFd closes it
            // only when dropped, which happens only when the AsyncFd is dropped.
            unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(std::os::fd::OwnedFd::from_raw_fd(raw), tokio::io::Interest::READABLE)
            }
            .map_err(std::io::Error::from)
        };
        let fd = fd.map_err(|e| tracing::warn!("VRRP timer: no timerfd ({e}), tokio's timer instead")).ok();
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
        Timer { fd, armed: None, sleep: Box::pin(tokio::time::sleep_until(far)) }
    }

    /// Set for `deadline` (unchanged: nothing to do).
    fn set(&mut self, deadline: Option<Instant>) {
        if deadline == self.armed {
            return;
        }
        self.armed = deadline;
        let Some(fd) = &self.fd else {
            if let Some(t) = deadline {
                self.sleep.as_mut().set(tokio::time::sleep_until(tokio::time::Instant::from_std(t)));
            }
            return;
        };
        use std::os::fd::AsRawFd;
        // Relative to now: Instant is CLOCK_MONOTONIC; a zero value would disarm, so a
        // deadline already past is 1 ns away. No deadline disarms.
        let left = deadline.map(|t| t.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1))).unwrap_or_default();
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec { tv_sec: left.as_secs() as libc::time_t, tv_nsec: left.subsec_nanos() as libc::c_long },
        };
        // SAFETY: a valid timerfd and a valid itimerspec; the old value is not asked for.
        if unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } != 0 {
            // Cannot happen with a valid fd and value; tokio's timer then, for good.
            tracing::warn!("VRRP timer: timerfd_settime: {}; tokio's timer instead", std::io::Error::last_os_error());
            self.fd = None;
            self.armed = None;
            self.set(deadline);
        }
    }

    /// Completes when the deadline set is reached; never without one. (May complete early
    /// once after a change of deadline, for an expiry of the previous one: the state
    /// machines then find nothing due.)
    async fn fired(&mut self) {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        match &self.fd {
            Some(fd) => match fd.readable().await {
                // The expiry count is not read: setting the timer again resets it, and each
                // expiry is a new edge for epoll.
                Ok(mut guard) => guard.clear_ready(),
                Err(e) => {
                    tracing::warn!("VRRP timer: {e}; tokio's timer instead");
                    self.fd = None;
                }
            },
            None => self.sleep.as_mut().await,
        }
        // Set again at the next turn, even to the same deadline.
        self.armed = None;
    }
}
