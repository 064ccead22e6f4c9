//! Sync-aware preemption: when to let a returning master take the VIP back.
//!
//! The rule (keepalived has none; its issues 237 and 1966 ask for one). A node in Backup that
//! hears a live master of lower priority would preempt it (RFC 5798 6.4.2: it discards the
//! advert and its Master_Down_Timer fires). If it did at once, every connection the current
//! master holds and this node's IPVS table does not know would be reset: IPVS schedules only
//! SYNs, so a mid-stream segment of an unknown connection gets no real server. So the state
//! machine holds the preemption (it keeps accepting the lower master's adverts, see
//! `fsm::Config::preempt_sync_wait`) while the node's backup sync daemon fills its table from
//! the master's sync daemon, and the director releases the hold when:
//!
//! 1. the count of established connections in the local table has not grown (by more than
//!    2%, the churn of a steady load) for `settle` (it has caught up: the master
//!    re-sends a busy connection at least every 50 packets, `sync_threshold`, and flushes its
//!    buffer within 2 s, IPVS_SYNC_FLUSH_TIME), or
//! 2. `bound` (`preempt_sync_wait`) has passed since the hold began (the state machine
//!    enforces this one itself, so a stuck director cannot keep a node from preempting).
//!
//! The count is of the local table's ESTABLISHED TCP entries (`/proc/net/ip_vs_conn_sync`):
//! what a preemption would break. On a backup the VIP is not here, so it only grows by what
//! the sync daemon brings; under a steady load of short connections it levels off (each is
//! synced again when it closes), where the whole table would keep growing until entries
//! expire. Connections that send nothing during the wait are not re-sent by the master and
//! are not waited for.
//!
//! Pure: samples and time come in as values; tested on a simulated clock.

use std::time::{Duration, Instant};

/// The default bound on the wait (policy `preempt_sync_wait`, seconds; 0 turns it off).
pub const DEFAULT_BOUND: Duration = Duration::from_secs(10);
/// How long the count must stay flat: longer than the master's 2 s flush period.
pub const SETTLE: Duration = Duration::from_secs(3);

/// Why the wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The count stopped growing for the settle time.
    Settled { connections: u64, grew_by: u64, waited: Duration },
    /// The bound passed first.
    Bound { connections: u64, grew_by: u64, waited: Duration },
}

impl Release {
    pub fn waited(&self) -> Duration {
        match self {
            Release::Settled { waited, .. } | Release::Bound { waited, .. } => *waited,
        }
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Release::Settled { connections, grew_by, waited } => {
                write!(f, "connection table settled at {connections} (+{grew_by} while waiting) after {:.1} s", waited.as_secs_f64())
            }
            Release::Bound { connections, grew_by, waited } => write!(
                f,
                "preempt_sync_wait reached after {:.1} s with {connections} connections (+{grew_by}), still growing",
                waited.as_secs_f64()
            ),
        }
    }
}

/// One preemption being held.
#[derive(Debug, Clone)]
pub struct PreemptWait {
    started: Instant,
    bound: Duration,
    settle: Duration,
    first: Option<u64>,
    max: u64,
    /// When the count last grew (the start until a sample comes).
    grew_at: Instant,
}

impl PreemptWait {
    pub fn new(now: Instant, bound: Duration, settle: Duration) -> PreemptWait {
        PreemptWait { started: now, bound, settle, first: None, max: 0, grew_at: now }
    }

    /// A count of the local table taken at `now`.
    pub fn sample(&mut self, now: Instant, connections: u64) {
        match self.first {
            None => {
                self.first = Some(connections);
                self.max = connections;
            }
            // Growth within the churn of a steady load (2%) does not restart the settle time.
            Some(_) if connections > self.max + self.max / 50 => {
                self.max = connections;
                self.grew_at = now;
            }
            Some(_) => self.max = self.max.max(connections),
        }
    }

    /// Whether to release at `now`, and why.
    pub fn poll(&self, now: Instant) -> Option<Release> {
        let waited = now.saturating_duration_since(self.started);
        let first = self.first?;
        let (connections, grew_by) = (self.max, self.max - first);
        if now.saturating_duration_since(self.grew_at) >= self.settle {
            return Some(Release::Settled { connections, grew_by, waited });
        }
        (waited >= self.bound).then_some(Release::Bound { connections, grew_by, waited })
    }

    /// Without any count (none can be read), only the bound ends the wait.
    pub fn poll_blind(&self, now: Instant) -> Option<Release> {
        let waited = now.saturating_duration_since(self.started);
        (waited >= self.bound).then_some(Release::Bound { connections: 0, grew_by: 0, waited })
    }

    pub fn started(&self) -> Instant {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn wait(t0: Instant) -> PreemptWait {
        PreemptWait::new(t0, 10 * S, 3 * S)
    }

    #[test]
    fn a_table_that_fills_then_stays_flat_releases_after_the_settle_time() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        // Counts once a second: 0, 40, 90, 100, then flat.
        for (i, n) in [0, 40, 90, 100, 100, 100].into_iter().enumerate() {
            let now = t0 + i as u32 * S;
            w.sample(now, n);
            assert_eq!(w.poll(now), None, "second {i}");
        }
        // It last grew at 3 s: settled at 6 s.
        assert_eq!(w.poll(t0 + 6 * S), Some(Release::Settled { connections: 100, grew_by: 100, waited: 6 * S }));
    }

    #[test]
    fn a_table_that_keeps_growing_is_released_by_the_bound() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        for i in 0..=10u32 {
            w.sample(t0 + i * S, 10 * u64::from(i));
            if i < 10 {
                assert_eq!(w.poll(t0 + i * S), None);
            }
        }
        assert_eq!(w.poll(t0 + 10 * S), Some(Release::Bound { connections: 100, grew_by: 100, waited: 10 * S }));
    }

    #[test]
    fn an_empty_master_costs_only_the_settle_time() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        w.sample(t0, 0);
        w.sample(t0 + S, 0);
        assert_eq!(w.poll(t0 + 2 * S), None);
        assert_eq!(w.poll(t0 + 3 * S), Some(Release::Settled { connections: 0, grew_by: 0, waited: 3 * S }));
    }

    #[test]
    fn expiring_entries_are_not_growth() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        w.sample(t0, 50);
        w.sample(t0 + S, 60);
        // Old entries expire while the new ones arrive: the count falls, nothing new.
        w.sample(t0 + 2 * S, 55);
        w.sample(t0 + 3 * S, 58);
        assert_eq!(w.poll(t0 + 3 * S), None);
        assert_eq!(w.poll(t0 + 4 * S), Some(Release::Settled { connections: 60, grew_by: 10, waited: 4 * S }));
    }

    #[test]
    fn the_churn_of_a_steady_load_is_not_growth() {
        let t0 = Instant::now();
        let mut w = wait(t0);
        w.sample(t0, 500);
        w.sample(t0 + S, 505);
        w.sample(t0 + 2 * S, 509);
        assert_eq!(w.poll(t0 + 2 * S), None);
        assert_eq!(w.poll(t0 + 3 * S), Some(Release::Settled { connections: 509, grew_by: 9, waited: 3 * S }));
    }

    #[test]
    fn without_counts_only_the_bound_releases() {
        let t0 = Instant::now();
        let w = wait(t0);
        assert_eq!(w.poll(t0 + 20 * S), None, "no sample: poll never decides");
        assert_eq!(w.poll_blind(t0 + 9 * S), None);
        assert!(matches!(w.poll_blind(t0 + 10 * S), Some(Release::Bound { .. })));
    }

    #[test]
    fn the_release_says_why_and_how_long() {
        let r = Release::Settled { connections: 120, grew_by: 118, waited: Duration::from_millis(4200) };
        assert_eq!(r.to_string(), "connection table settled at 120 (+118 while waiting) after 4.2 s");
        assert_eq!(r.waited(), Duration::from_millis(4200));
    }

    // The state machine's side: the hold (fsm::Config::preempt_sync_wait) on a simulated clock.
    mod fsm_hold {
        use crate::vrrp::fsm::{Action, Config, Input, Instance, State};
        use std::net::IpAddr;
        use std::time::{Duration, Instant};

        const MS: Duration = Duration::from_millis(1);

        fn ip(s: &str) -> IpAddr {
            s.parse().unwrap()
        }

        /// A returning node of priority 200 (advert 1 s) in Backup, beside a live master of 100.
        fn returning(wait: Duration, t0: Instant) -> Instance {
            let mut c = Config::new("eth0", 51, ip("192.0.2.1"));
            c.priority = 200;
            c.addresses = vec![ip("192.0.2.100")];
            c.preempt_sync_wait = wait;
            let mut i = Instance::new(c);
            i.handle(t0, Input::Startup);
            assert_eq!(i.state(), State::Backup);
            i
        }

        /// Adverts of the lower master every second from `from_s`, timers run in between,
        /// `release` sent at that second; returns when the node became master (ms after t0)
        /// and the actions it took.
        fn play(i: &mut Instance, t0: Instant, release_at_s: Option<u64>) -> (Option<u64>, Vec<Action>) {
            let mut all = Vec::new();
            for ms in 1..=40_000u64 {
                let now = t0 + Duration::from_millis(ms);
                if i.poll_timeout().is_some_and(|t| t <= now) {
                    all.extend(i.handle(now, Input::Timeout));
                }
                if i.state() == State::Master {
                    return (Some(ms), all);
                }
                if ms % 1000 == 0 {
                    if release_at_s == Some(ms / 1000) {
                        all.extend(i.handle(now, Input::ReleasePreempt));
                    }
                    all.extend(i.handle(now, Input::Advert { from: ip("192.0.2.2"), priority: 100, advert_int: 100 }));
                }
            }
            (None, all)
        }

        fn held(a: &[Action]) -> Vec<(IpAddr, u8, Duration)> {
            a.iter()
                .filter_map(|a| match a {
                    Action::PreemptHeld { master, priority, bound } => Some((*master, *priority, *bound)),
                    _ => None,
                })
                .collect()
        }

        // Without the wait: RFC 5798 6.4.2, the lower advert at 1 s is discarded and the
        // Master_Down_Timer started at startup fires (3 s + skew 0.22 s).
        #[test]
        fn without_a_wait_the_node_preempts_at_once() {
            let t0 = Instant::now();
            let mut i = returning(Duration::ZERO, t0);
            let (at, actions) = play(&mut i, t0, None);
            assert_eq!(at, Some(3219));
            assert!(held(&actions).is_empty());
        }

        #[test]
        fn a_held_preemption_goes_ahead_once_released() {
            let t0 = Instant::now();
            let mut i = returning(Duration::from_secs(10), t0);
            let (at, actions) = play(&mut i, t0, Some(5));
            assert_eq!(held(&actions), [(ip("192.0.2.2"), 100, Duration::from_secs(10))], "held once, at the first advert");
            // Adverts up to 4 s accepted (timer 4 s + 3.22 s); released at 5 s, the 5 s advert
            // is discarded: master at 7.22 s.
            assert_eq!(at, Some(7219));
            assert!(!i.preempt_held(t0 + Duration::from_secs(8)));
        }

        #[test]
        fn the_bound_ends_the_hold_without_a_release() {
            let t0 = Instant::now();
            let mut i = returning(Duration::from_secs(6), t0);
            assert!(!i.preempt_held(t0));
            let (at, actions) = play(&mut i, t0, None);
            // Held from 1 s until 7 s: the advert at 6 s is the last accepted.
            assert_eq!(held(&actions).len(), 1);
            assert_eq!(at, Some(9219));
        }

        #[test]
        fn a_master_that_stops_is_not_waited_for() {
            let t0 = Instant::now();
            let mut i = returning(Duration::from_secs(10), t0);
            i.handle(t0 + 1000 * MS, Input::Advert { from: ip("192.0.2.2"), priority: 100, advert_int: 100 });
            assert!(i.preempt_held(t0 + 1000 * MS));
            // Priority 0 (RFC 5798 6.4.2): Master_Down_Timer = Skew_Time, hold or not.
            i.handle(t0 + 1500 * MS, Input::Advert { from: ip("192.0.2.2"), priority: 0, advert_int: 100 });
            let a = i.handle(t0 + 1800 * MS, Input::Timeout);
            assert_eq!(i.state(), State::Master, "{a:?}");
        }

        #[test]
        fn a_higher_master_clears_the_hold_and_a_later_preemption_is_held_afresh() {
            let t0 = Instant::now();
            let mut i = returning(Duration::from_secs(10), t0);
            let adv = |p| Input::Advert { from: ip("192.0.2.2"), priority: p, advert_int: 100 };
            assert_eq!(held(&i.handle(t0 + 1000 * MS, adv(100))).len(), 1);
            i.handle(t0 + 1500 * MS, Input::ReleasePreempt);
            assert!(!i.preempt_held(t0 + 1500 * MS));
            // The master's priority rises above ours: nothing to preempt any more.
            i.handle(t0 + 2000 * MS, adv(250));
            assert_eq!(held(&i.handle(t0 + 3000 * MS, adv(100))).len(), 1, "held again");
            assert!(i.preempt_held(t0 + 3000 * MS));
        }
    }
}
