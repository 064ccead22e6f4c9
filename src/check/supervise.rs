//! Supervision of the check manager's tasks: a task's future polled under `catch_unwind`, so
//! that a panic in a probe (or in the manager's timer or connect poller) is seen by the
//! manager instead of ending the task silently, and how long to wait before a restart.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// `f`, with a panic while it is polled turned into `Err(message)`. The panicked future is
/// not polled again: the caller starts a new one.
pub struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> CatchUnwind<F> {
    pub fn new(f: F) -> CatchUnwind<F> {
        CatchUnwind(Box::pin(f))
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let f = self.0.as_mut();
        // The future is dropped after a panic, so state it left half-updated is never seen
        // through it again (what makes asserting unwind safety sound here). State shared with
        // the manager (RefCells) is released by the unwinding itself.
        match std::panic::catch_unwind(AssertUnwindSafe(|| f.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(p) => Poll::Ready(Err(panic_message(p.as_ref()))),
        }
    }
}

/// The message a panic carried (`panic!("...")` gives a `&str` or a `String`).
pub fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic without a message".to_string()
    }
}

/// The longest wait before a restart.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The wait before restart number `n` (1, 2, ...) of a task that failed: `base` doubled each
/// time, at most [`MAX_BACKOFF`], so a task that fails at once every time costs one log line
/// per wait and not a hot loop.
pub fn backoff(base: Duration, n: u32) -> Duration {
    base.saturating_mul(1 << n.saturating_sub(1).min(16)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(1), 1), s(1));
        assert_eq!(backoff(s(1), 2), s(2));
        assert_eq!(backoff(s(1), 5), s(16));
        assert_eq!(backoff(s(1), 6), MAX_BACKOFF);
        assert_eq!(backoff(s(1), u32::MAX), MAX_BACKOFF);
        assert_eq!(backoff(s(60), 1), MAX_BACKOFF);
    }

    #[test]
    fn a_panic_becomes_its_message() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let r = rt.block_on(CatchUnwind::new(async {
            tokio::task::yield_now().await;
            if true {
                panic!("boom {}", 7);
            }
        }));
        assert_eq!(r, Err("boom 7".to_string()));
        let r = rt.block_on(CatchUnwind::new(async { 5 }));
        assert_eq!(r, Ok(5));
    }
}
