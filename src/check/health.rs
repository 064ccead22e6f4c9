//! Pure health bookkeeping: one result, the last N results, and rise/fall hysteresis.
//! No clock and no I/O: callers pass results in, transitions come out.

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many results each check keeps for status and the REPL.
pub const HISTORY: usize = 10;

/// A value a Lua check returned beside `ok` (passed on to weight functions).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
}

/// The outcome of one check run (after its retries).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// When the run finished (wall clock, for display).
    pub at: SystemTime,
    pub ok: bool,
    /// Time of the last attempt.
    pub latency: Duration,
    /// Why it failed (or a note from a Lua check).
    pub error: Option<String>,
    /// HTTP status of the last response, if any.
    pub status: Option<u16>,
    /// A weight set by the check itself (exec `dynamic`, a Lua check returning a number or `weight`).
    pub weight: Option<u32>,
    /// Custom values returned by a Lua check.
    pub values: BTreeMap<String, Scalar>,
    /// The start of the HTTP body; given to weight functions, never kept in the history.
    #[serde(skip)]
    pub body: Option<String>,
}

impl CheckResult {
    pub fn up(latency: Duration) -> CheckResult {
        CheckResult {
            at: SystemTime::now(),
            ok: true,
            latency,
            error: None,
            status: None,
            weight: None,
            values: BTreeMap::new(),
            body: None,
        }
    }
    pub fn down(latency: Duration, error: impl Into<String>) -> CheckResult {
        CheckResult { ok: false, error: Some(error.into()), ..CheckResult::up(latency) }
    }
    pub fn latency_ms(&self) -> f64 {
        self.latency.as_secs_f64() * 1000.0
    }
}

/// The last [`HISTORY`] results, oldest first, kept compact: 10,000 checks keep 100,000 of
/// them, so each is a [`Past`] of 16 bytes in a ring held in place (no allocation), not a
/// [`CheckResult`] (120 bytes). What few results have beyond that (an error, Lua values, a
/// check's weight) is kept beside the ring, only for the results that have it.
#[derive(Clone, Default)]
pub struct History {
    ring: [Past; HISTORY],
    /// Where the oldest result is in `ring`.
    head: u8,
    len: u8,
    /// The rare parts of the results that have one (see [`Past::RARE`]), oldest first.
    rare: Vec<Rare>,
}

/// One result as the history keeps it (no body). Times are whole nanoseconds, as exact as
/// the `SystemTime` and `Duration` they came from (for any date from 1678 to 2262).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Past {
    /// When, in nanoseconds since the Unix epoch (negative before it).
    at: i64,
    /// Bit 0: ok; bit 1: the result has a [`Rare`] part; bits 2-18: the HTTP status + 1
    /// (0: none); bits 19-63: the latency in nanoseconds (up to 9.7 hours), or all ones when
    /// it does not fit (then it is in the rare part).
    bits: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct Rare {
    error: Option<Box<str>>,
    values: BTreeMap<String, Scalar>,
    weight: Option<u32>,
    /// The latency in nanoseconds, when it is too long for [`Past`].
    latency: Option<u64>,
}

fn to_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map(|n| -n).unwrap_or(i64::MIN),
    }
}

fn from_nanos(n: i64) -> SystemTime {
    let d = Duration::from_nanos(n.unsigned_abs());
    if n >= 0 { UNIX_EPOCH + d } else { UNIX_EPOCH - d }
}

impl Past {
    const OK: u64 = 1;
    const RARE: u64 = 2;
    const STATUS_SHIFT: u32 = 2;
    const STATUS_MASK: u64 = (1 << 17) - 1;
    const LATENCY_SHIFT: u32 = 19;
    /// All ones in the latency's bits: the latency is in the rare part.
    const LATENCY_FAR: u64 = u64::MAX >> Past::LATENCY_SHIFT;

    /// The compact form of `r`, and its rare part if it has one.
    fn of(r: CheckResult) -> (Past, Option<Rare>) {
        let latency = u64::try_from(r.latency.as_nanos()).unwrap_or(u64::MAX);
        let far = latency >= Past::LATENCY_FAR;
        let rare = (far || r.error.is_some() || !r.values.is_empty() || r.weight.is_some()).then(|| Rare {
            error: r.error.map(String::into_boxed_str),
            values: r.values,
            weight: r.weight,
            latency: far.then_some(latency),
        });
        let status = r.status.map_or(0, |s| u64::from(s) + 1);
        let bits = (u64::from(r.ok) * Past::OK)
            | (u64::from(rare.is_some()) * Past::RARE)
            | (status << Past::STATUS_SHIFT)
            | (latency.min(Past::LATENCY_FAR) << Past::LATENCY_SHIFT);
        (Past { at: to_nanos(r.at), bits }, rare)
    }

    fn has_rare(self) -> bool {
        self.bits & Past::RARE != 0
    }

    /// The result back; `rare` is this result's rare part (when it has one).
    fn result(self, rare: Option<&Rare>) -> CheckResult {
        let latency = match self.bits >> Past::LATENCY_SHIFT {
            Past::LATENCY_FAR => rare.and_then(|r| r.latency).unwrap_or(u64::MAX),
            n => n,
        };
        let status = (self.bits >> Past::STATUS_SHIFT) & Past::STATUS_MASK;
        CheckResult {
            at: from_nanos(self.at),
            ok: self.bits & Past::OK != 0,
            latency: Duration::from_nanos(latency),
            error: rare.and_then(|r| r.error.as_deref()).map(str::to_owned),
            status: status.checked_sub(1).map(|s| s as u16),
            weight: rare.and_then(|r| r.weight),
            values: rare.map(|r| r.values.clone()).unwrap_or_default(),
            body: None,
        }
    }
}

impl History {
    pub fn push(&mut self, r: CheckResult) {
        if usize::from(self.len) == HISTORY {
            if self.ring[usize::from(self.head)].has_rare() {
                self.rare.remove(0);
                if self.rare.is_empty() {
                    // The check is well again: give the room back.
                    self.rare = Vec::new();
                }
            }
            self.head = ((usize::from(self.head) + 1) % HISTORY) as u8;
            self.len -= 1;
        }
        let (past, rare) = Past::of(r);
        if let Some(rare) = rare {
            if self.rare.capacity() == 0 {
                self.rare.reserve_exact(HISTORY);
            }
            self.rare.push(rare);
        }
        self.ring[(usize::from(self.head) + usize::from(self.len)) % HISTORY] = past;
        self.len += 1;
    }
    fn newest(&self) -> Option<Past> {
        let n = usize::from(self.len).checked_sub(1)?;
        Some(self.ring[(usize::from(self.head) + n) % HISTORY])
    }
    pub fn last(&self) -> Option<CheckResult> {
        let p = self.newest()?;
        // The newest result's rare part, if it has one, is the last kept.
        Some(p.result(self.rare.last().filter(|_| p.has_rare())))
    }
    /// Whether the latest result failed, and why (without copying the rest of it).
    pub fn last_error(&self) -> Option<&str> {
        self.newest().filter(|p| p.has_rare())?;
        self.rare.last()?.error.as_deref()
    }
    pub fn iter(&self) -> impl Iterator<Item = CheckResult> + '_ {
        let mut rare = self.rare.iter();
        (0..usize::from(self.len)).map(move |k| {
            let p = self.ring[(usize::from(self.head) + k) % HISTORY];
            p.result(if p.has_rare() { rare.next() } else { None })
        })
    }
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Equal when they hold the same results.
impl PartialEq for History {
    fn eq(&self, other: &History) -> bool {
        self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Shown as the results it holds (status, the REPL's history).
impl Serialize for History {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// A change of a check's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Transition {
    Up,
    Down,
}

/// The state of one check on one target: rise/fall counting over consecutive results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    up: bool,
    /// Consecutive results that disagree with `up`.
    streak: u32,
    rise: u32,
    fall: u32,
    history: History,
}

impl Health {
    /// `alpha`: start down and wait for `rise` successes (keepalived's alpha); otherwise
    /// start up, as keepalived does.
    pub fn new(rise: u32, fall: u32, alpha: bool) -> Health {
        Health { up: !alpha, streak: 0, rise: rise.max(1), fall: fall.max(1), history: History::default() }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn last(&self) -> Option<CheckResult> {
        self.history.last()
    }

    pub fn last_error(&self) -> Option<&str> {
        self.history.last_error()
    }

    /// Change rise/fall on reload without losing the state or the history.
    pub fn set_thresholds(&mut self, rise: u32, fall: u32) {
        self.rise = rise.max(1);
        self.fall = fall.max(1);
    }

    /// Record one result; returns the transition it caused, if any.
    pub fn record(&mut self, r: CheckResult) -> Option<Transition> {
        let ok = r.ok;
        self.history.push(r);
        if ok == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.up { self.fall } else { self.rise };
        if self.streak < needed {
            return None;
        }
        self.up = ok;
        self.streak = 0;
        Some(if ok { Transition::Up } else { Transition::Down })
    }

    /// Record a failure that counts at once, whatever `fall` says: the check could not run
    /// at all (its task panicked), so nothing vouches for the target any more. Coming back
    /// up takes `rise` successes as usual.
    pub fn fail_now(&mut self, r: CheckResult) -> Option<Transition> {
        self.history.push(r);
        self.streak = 0;
        let was_up = std::mem::replace(&mut self.up, false);
        was_up.then_some(Transition::Down)
    }
}

/// keepalived's quorum with hysteresis: the service is "up" once the live weight reaches
/// `quorum + hysteresis` and "down" once it falls below `quorum - hysteresis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quorum {
    pub quorum: u64,
    pub hysteresis: u64,
    pub up: bool,
}

impl Quorum {
    pub fn new(quorum: u32, hysteresis: u32) -> Quorum {
        Quorum { quorum: quorum as u64, hysteresis: hysteresis as u64, up: true }
    }
    /// Feed the current sum of live weights; returns `Some(new_state)` on a change.
    pub fn update(&mut self, live_weight: u64) -> Option<bool> {
        let next = if self.up { live_weight + self.hysteresis >= self.quorum } else { live_weight >= self.quorum + self.hysteresis };
        (next != self.up).then(|| {
            self.up = next;
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> CheckResult {
        CheckResult::up(Duration::from_millis(1))
    }
    fn bad() -> CheckResult {
        CheckResult::down(Duration::from_millis(1), "refused")
    }

    #[test]
    fn starts_up_without_alpha_and_down_with_it() {
        assert!(Health::new(1, 1, false).is_up());
        assert!(!Health::new(1, 1, true).is_up());
    }

    #[test]
    fn fall_needs_consecutive_failures() {
        let mut h = Health::new(2, 3, false);
        assert_eq!(h.record(bad()), None);
        assert_eq!(h.record(bad()), None);
        assert_eq!(h.record(ok()), None); // streak broken
        assert_eq!(h.record(bad()), None);
        assert_eq!(h.record(bad()), None);
        assert_eq!(h.record(bad()), Some(Transition::Down));
        assert!(!h.is_up());
        assert_eq!(h.record(ok()), None);
        assert_eq!(h.record(bad()), None);
        assert_eq!(h.record(ok()), None);
        assert_eq!(h.record(ok()), Some(Transition::Up));
    }

    #[test]
    fn fail_now_ignores_fall_but_not_rise() {
        let mut h = Health::new(2, 5, false);
        assert_eq!(h.record(bad()), None);
        assert_eq!(h.fail_now(bad()), Some(Transition::Down));
        assert!(!h.is_up());
        assert_eq!(h.fail_now(bad()), None);
        assert_eq!(h.record(ok()), None);
        assert_eq!(h.record(ok()), Some(Transition::Up));
        assert_eq!(h.history().len(), 5);
    }

    #[test]
    fn flapping_within_rise_and_fall_changes_nothing() {
        let mut h = Health::new(2, 2, false);
        for i in 0..50 {
            let r = if i % 2 == 0 { bad() } else { ok() };
            assert_eq!(h.record(r), None);
        }
        assert!(h.is_up());
    }

    #[test]
    fn alpha_comes_up_on_first_success_with_rise_1() {
        let mut h = Health::new(1, 1, true);
        assert_eq!(h.record(bad()), None);
        assert_eq!(h.record(ok()), Some(Transition::Up));
    }

    #[test]
    fn history_keeps_the_last_n_without_bodies() {
        let mut h = Health::new(1, 1, false);
        for i in 0..25u64 {
            let mut r = ok();
            r.latency = Duration::from_millis(i);
            r.body = Some("x".into());
            h.record(r);
        }
        assert_eq!(h.history().len(), HISTORY);
        assert_eq!(h.history().iter().next().unwrap().latency, Duration::from_millis(15));
        assert_eq!(h.last().unwrap().latency, Duration::from_millis(24));
        assert!(h.history().iter().all(|r| r.body.is_none()));
    }

    /// The compact form keeps every field status shows: a result read back (and serialized)
    /// is the one recorded, less its body.
    #[test]
    fn history_gives_back_what_was_recorded() {
        let mut h = History::default();
        let mut r = CheckResult::down(Duration::from_nanos(1_234_567), "connect to 192.0.2.1:80: refused");
        r.status = Some(503);
        r.weight = Some(7);
        r.values.insert("load".into(), Scalar::Num(0.5));
        r.body = Some("<html>".into());
        h.push(r.clone());
        h.push(ok());
        r.body = None;
        assert_eq!(h.iter().next(), Some(r.clone()));
        assert_eq!(h.last_error(), None);
        assert_eq!(serde_json::to_value(&h).unwrap(), serde_json::to_value([r, h.last().unwrap()]).unwrap());
    }

    /// What 10,000 checks x 10 results cost: 16 bytes each, in place.
    #[test]
    fn a_kept_result_is_small() {
        assert_eq!(std::mem::size_of::<Past>(), 16);
        assert!(std::mem::size_of::<History>() <= 192, "{}", std::mem::size_of::<History>());
        let before = UNIX_EPOCH - Duration::from_nanos(1_500);
        assert_eq!(from_nanos(to_nanos(before)), before);
    }

    /// Rare parts stay with their results as the ring turns, and what does not fit the
    /// compact form (a latency of days, status 0 or 65535) comes back as it was.
    #[test]
    fn history_keeps_rare_parts_in_step() {
        let mut h = History::default();
        let mut all = Vec::new();
        for i in 0..37u64 {
            let mut r = if i % 3 == 0 { CheckResult::down(Duration::from_nanos(i), format!("error {i}")) } else { ok() };
            r.at = UNIX_EPOCH + Duration::from_secs(i);
            match i % 7 {
                1 => r.status = Some(0),
                2 => r.status = Some(u16::MAX),
                3 => r.latency = Duration::from_secs(3 * 86_400),
                4 => r.latency = Duration::MAX,
                5 => r.weight = Some(i as u32),
                _ => {}
            }
            h.push(r.clone());
            if r.latency == Duration::MAX {
                r.latency = Duration::from_nanos(u64::MAX);
            }
            all.push(r);
            let want = &all[all.len().saturating_sub(HISTORY)..];
            assert_eq!(h.iter().collect::<Vec<_>>(), want, "after {i}");
            assert_eq!(h.last().as_ref(), want.last());
            assert_eq!(h.last_error(), want.last().unwrap().error.as_deref());
        }
        for _ in 0..HISTORY {
            h.push(ok());
        }
        assert_eq!(h.rare.capacity(), 0, "a well check keeps no room for rare parts");
        assert_eq!(h.len(), HISTORY);
    }

    #[test]
    fn quorum_hysteresis() {
        let mut q = Quorum::new(10, 2);
        assert_eq!(q.update(12), None);
        assert_eq!(q.update(8), None); // 8 + 2 >= 10: still up
        assert_eq!(q.update(7), Some(false));
        assert_eq!(q.update(11), None); // needs 12 to come back
        assert_eq!(q.update(12), Some(true));
    }
}
