//! Accept loops that do not spin. When `accept()` fails (EMFILE, ENFILE, ENOBUFS: the
//! pending connection stays queued, so the listener stays readable) the loop sleeps a little,
//! doubling up to a second, and logs one line per interval with how many failures it saw.

use crate::ratelimit::LogLimiter;
use std::time::{Duration, Instant};

const FIRST_DELAY: Duration = Duration::from_millis(10);
const MAX_DELAY: Duration = Duration::from_secs(1);

/// The backoff state of one accept loop (pure: the caller passes the time). Logs at most one
/// line per [`LogLimiter`]'s default interval (10 s).
#[derive(Debug, Default)]
pub struct Backoff {
    delay: Option<Duration>,
    log: LogLimiter,
}

impl Backoff {
    /// One more failure at `now`: how long to wait before the next accept, and whether to log
    /// now (Some(n): n failures since the last line, this one included).
    pub fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        let delay = self.delay.map_or(FIRST_DELAY, |d| (d * 2).min(MAX_DELAY));
        self.delay = Some(delay);
        (delay, self.log.allow(now).map(|held| held + 1))
    }

    /// A connection was accepted: the next failure starts from the shortest delay again.
    pub fn succeeded(&mut self) {
        self.delay = None;
    }

    /// Log (rate-limited) and sleep after a failed accept on `what`.
    pub async fn pause(&mut self, what: &str, e: &std::io::Error) {
        let (delay, log) = self.failed(Instant::now());
        if let Some(n) = log {
            tracing::warn!("{what}: accept failed: {e} ({n} failure(s) since the last report); retrying in {delay:?}");
        }
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_to_a_second_and_log_once_per_interval() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        let (d, log) = b.failed(t0);
        assert_eq!((d, log), (FIRST_DELAY, Some(1)));
        let mut total = Duration::ZERO;
        let mut logs = 0;
        // A thousand failures in a row: the delay grows to the cap, and only the first logs.
        for i in 1..1000u32 {
            let (d, log) = b.failed(t0 + Duration::from_millis(i as u64));
            assert!(d <= MAX_DELAY && d >= FIRST_DELAY);
            total += d;
            logs += log.is_some() as u32;
        }
        assert_eq!(logs, 0);
        assert!(total > Duration::from_secs(900), "the loop sleeps, not spins: {total:?}");
        // The next interval reports everything it held back, this failure included.
        assert_eq!(b.failed(t0 + Duration::from_secs(10)).1, Some(1000));
        b.succeeded();
        assert_eq!(b.failed(t0 + Duration::from_secs(10)).0, FIRST_DELAY);
    }
}
