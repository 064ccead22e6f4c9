//! The probes' start grid: runs start at points `epoch + k × step` (50 ms by default), and one
//! timer per check manager wakes every probe due at a point, instead of one timer per probe
//! per run. Jitter still spreads the runs over the interval; those falling in the same step
//! start together, with one timer firing and one poll of their sockets for the lot, which is
//! how a spread-out checker keeps its wake-ups few (keepalived's checkers run in bursts too).
//!
//! A point's waiters are tasks (their wakers) or bare TCP probes, which have no task: those
//! are handed to the check manager's probe driver when their point comes.

use super::runner::Prober;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The wait before the next run: `interval` × (1 ± `jitter`), `r` uniform in 0..1.
pub fn jittered(interval: f64, jitter: f64, r: f64) -> Duration {
    let f = 1.0 + jitter.clamp(0.0, 0.9) * (2.0 * r - 1.0);
    Duration::from_secs_f64((interval * f).max(0.0))
}

/// The wait before the first run: a random part of `warmup` (keepalived), or without one,
/// of the first jitter window so that thousands of checks do not start together.
pub fn first_delay(interval: f64, warmup: f64, jitter: f64, r: f64) -> Duration {
    let window = if warmup > 0.0 { warmup } else { interval * jitter.clamp(0.0, 0.9) };
    Duration::from_secs_f64((window * r).max(0.0))
}

/// The grid step for a check of `interval` seconds: `tick`, or a twentieth of the interval
/// when that is shorter, so short intervals keep their precision.
pub fn grid_step(interval: f64, tick: Duration) -> Duration {
    tick.min(Duration::from_secs_f64((interval / 20.0).max(0.0)))
}

/// `deadline` moved to the nearest point `epoch + k × step` (never before `epoch`).
pub fn on_grid(epoch: Instant, deadline: Instant, step: Duration) -> Instant {
    // u64 nanoseconds (584 years) keep the division cheap.
    let step_ns = step.as_nanos() as u64;
    if step_ns == 0 || deadline <= epoch {
        return deadline.max(epoch);
    }
    let since = deadline.duration_since(epoch).as_nanos() as u64;
    let k = (since + step_ns / 2) / step_ns;
    epoch + Duration::from_nanos(k * step_ns)
}

/// Who waits for a grid point.
enum Waiter {
    Task(Waker),
    /// A probe run by the driver: 8 bytes per idle probe instead of a task.
    Probe(Rc<Prober>),
}

/// The wakers of the probes waiting for each grid point, and the one timer that wakes them.
pub struct Grid {
    epoch: Instant,
    waiting: RefCell<BTreeMap<Instant, Vec<Waiter>>>,
    /// Probes whose point has come, for the driver to run.
    due: RefCell<Vec<Rc<Prober>>>,
    /// Tells the driver that `due` has probes.
    ready: Notify,
    /// The latest point whose waiters were woken: a wait for it or earlier is over.
    passed: Cell<Instant>,
    /// The point the timer is set for, if any: a wait for an earlier one resets it.
    armed: Cell<Option<Instant>>,
    earlier: Notify,
}

impl Grid {
    pub fn new(epoch: Instant) -> Grid {
        Grid {
            epoch,
            waiting: RefCell::default(),
            due: RefCell::default(),
            ready: Notify::new(),
            passed: Cell::new(epoch),
            armed: Cell::new(None),
            earlier: Notify::new(),
        }
    }

    /// Wait until `wait` from now, moved onto the grid of `step`. Needs [`run`](Self::run)
    /// running on the same thread.
    pub async fn sleep(&self, wait: Duration, step: Duration) {
        let at = on_grid(self.epoch, Instant::now() + wait, step);
        let mut queued = false;
        poll_fn(|cx| {
            if at <= self.passed.get() {
                return Poll::Ready(());
            }
            if !queued {
                queued = true;
                self.wait_for(at, Waiter::Task(cx.waker().clone()));
            }
            Poll::Pending
        })
        .await
    }

    /// Hand `probe` to the driver ([`take_due`](Self::take_due)) `wait` from now, moved onto
    /// the grid of `step`.
    pub fn schedule(&self, wait: Duration, step: Duration, probe: Rc<Prober>) {
        let at = on_grid(self.epoch, Instant::now() + wait, step);
        if at <= self.passed.get() {
            self.due.borrow_mut().push(probe);
            self.ready.notify_one();
        } else {
            self.wait_for(at, Waiter::Probe(probe));
        }
    }

    fn wait_for(&self, at: Instant, w: Waiter) {
        self.waiting.borrow_mut().entry(at).or_default().push(w);
        if self.armed.get().is_none_or(|a| at < a) {
            self.earlier.notify_one();
        }
    }

    /// Wait until probes are due.
    pub async fn due(&self) {
        if self.due.borrow().is_empty() {
            self.ready.notified().await;
        }
    }

    /// The probes whose point has come (into `out`, emptied first).
    pub fn take_due(&self, out: &mut Vec<Rc<Prober>>) {
        out.clear();
        std::mem::swap(&mut *self.due.borrow_mut(), out);
    }

    /// Forget every probe waiting or due (the manager stops; its probes are scheduled
    /// again when it starts).
    pub fn clear_probes(&self) {
        self.due.borrow_mut().clear();
        for ws in self.waiting.borrow_mut().values_mut() {
            ws.retain(|w| matches!(w, Waiter::Task(_)));
        }
    }

    /// The timer: run it as a local task for as long as probes may wait.
    pub async fn run(self: Rc<Self>) {
        let timer = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(timer);
        loop {
            let next = self.waiting.borrow().keys().next().copied();
            self.armed.set(next);
            let Some(at) = next else {
                self.earlier.notified().await;
                continue;
            };
            timer.as_mut().reset(at.into());
            tokio::select! {
                _ = &mut timer => self.wake_due(Instant::now()),
                _ = self.earlier.notified() => {}
            }
        }
    }

    /// Wake the waiters of every point up to `now`.
    fn wake_due(&self, now: Instant) {
        let due = {
            let mut waiting = self.waiting.borrow_mut();
            let later = waiting.split_off(&(now + Duration::from_nanos(1)));
            std::mem::replace(&mut *waiting, later)
        };
        if let Some(&last) = due.keys().next_back() {
            self.passed.set(last);
        }
        let mut probes = false;
        for w in due.into_values().flatten() {
            match w {
                Waiter::Task(w) => w.wake(),
                Waiter::Probe(p) => {
                    self.due.borrow_mut().push(p);
                    probes = true;
                }
            }
        }
        if probes {
            self.ready.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_its_window() {
        assert_eq!(jittered(10.0, 0.1, 0.0), Duration::from_secs(9));
        assert_eq!(jittered(10.0, 0.1, 0.5), Duration::from_secs(10));
        assert_eq!(jittered(10.0, 0.1, 1.0), Duration::from_secs(11));
        assert_eq!(jittered(10.0, 0.0, 0.9), Duration::from_secs(10));
        assert_eq!(first_delay(10.0, 0.0, 0.1, 1.0), Duration::from_secs(1));
        assert_eq!(first_delay(10.0, 4.0, 0.1, 0.5), Duration::from_secs(2));
    }

    #[test]
    fn runs_start_on_the_nearest_grid_point() {
        let e = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(on_grid(e, e + ms(1024), ms(50)), e + ms(1000));
        assert_eq!(on_grid(e, e + ms(1025), ms(50)), e + ms(1050));
        assert_eq!(on_grid(e, e + ms(1049), ms(50)), e + ms(1050));
        assert_eq!(on_grid(e, e + ms(7), ms(0)), e + ms(7));
        assert_eq!(grid_step(1.0, ms(50)), ms(50));
        assert_eq!(grid_step(0.2, ms(50)), ms(10));
        assert_eq!(grid_step(0.0, ms(50)), ms(0));
    }

    fn local<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    /// Many waits on few points: each ends at its point (not before, and within a few ms
    /// after), a wait for an earlier point than the timer's resets it, and a wait already
    /// past ends at once.
    #[test]
    fn waits_end_at_their_grid_point() {
        local(async {
            let grid = Rc::new(Grid::new(Instant::now()));
            let timer = tokio::task::spawn_local(grid.clone().run());
            let step = Duration::from_millis(20);
            let mut tasks = Vec::new();
            // Longest first, so that shorter waits come in earlier than the armed point.
            for i in (0..40u64).rev() {
                let grid = grid.clone();
                tasks.push(tokio::task::spawn_local(async move {
                    let wait = Duration::from_millis(5 * i);
                    let start = Instant::now();
                    let at = on_grid(grid.epoch, start + wait, step);
                    grid.sleep(wait, step).await;
                    let woke = Instant::now();
                    (at, woke)
                }));
            }
            for t in tasks {
                let (at, woke) = t.await.unwrap();
                assert!(woke >= at, "woke {:?} before its point", at - woke);
                assert!(woke - at < Duration::from_millis(200), "woke {:?} after its point", woke - at);
            }
            let before = Instant::now();
            grid.sleep(Duration::ZERO, step).await;
            assert!(before.elapsed() < step + Duration::from_millis(30));
            assert!(grid.waiting.borrow().is_empty());
            timer.abort();
        });
    }
}
