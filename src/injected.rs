//! Fault injection for the tests of supervision, in debug builds only. A loop calls
//! [`Fault::panic_if_due`] as it goes round; when its environment variable says `SECS`, it
//! panics once, on the first call at least SECS after its first call.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct Fault {
    var: &'static str,
    at: OnceLock<Option<Instant>>,
    fired: AtomicBool,
}

/// The VRRP thread's loop (director::heartbeat).
pub static VRRP: Fault = Fault::new("LVSD_TEST_VRRP_PANIC_AFTER");
/// The VRRP thread's link watcher, on a link change (director::vrrp).
pub static LINK_WATCH: Fault = Fault::new("LVSD_TEST_LINK_WATCH_PANIC_AFTER");
/// The director's loop (director::Director::run).
pub static DIRECTOR: Fault = Fault::new("LVSD_TEST_DIRECTOR_PANIC_AFTER");

impl Fault {
    const fn new(var: &'static str) -> Fault {
        Fault { var, at: OnceLock::new(), fired: AtomicBool::new(false) }
    }

    pub fn panic_if_due(&self) {
        let at = self.at.get_or_init(|| {
            let secs: f64 = std::env::var(self.var).ok()?.parse().ok()?;
            Some(Instant::now() + Duration::from_secs_f64(secs))
        });
        if at.is_some_and(|t| Instant::now() >= t) && !self.fired.swap(true, Ordering::SeqCst) {
            panic!("injected panic ({})", self.var);
        }
    }
}
