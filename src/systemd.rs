//! systemd `Type=notify` support without libsystemd: datagrams to $NOTIFY_SOCKET.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Send a state string such as "READY=1" or "RELOADING=1"; does nothing outside systemd.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let Ok(sock) = UnixDatagram::unbound() else { return };
    let bytes = path.as_encoded_bytes();
    let res = if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket: the leading '@' stands for a NUL byte.
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name).and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(&path))
    };
    if let Err(e) = res {
        tracing::debug!("sd_notify {state}: {e}");
    }
}

/// "RELOADING=1" must carry MONOTONIC_USEC for systemd's reload tracking (systemd 253+).
pub fn notify_reloading() {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}

/// Why the watchdog settings in the environment were not used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WatchdogError {
    #[error("WATCHDOG_USEC={0:?} is not a positive number of microseconds")]
    Usec(String),
    #[error("WATCHDOG_PID={0:?} is not a process id")]
    Pid(String),
}

/// The watchdog timeout systemd asks for, from WATCHDOG_USEC and WATCHDOG_PID as
/// sd_watchdog_enabled(3) reads them: none when WATCHDOG_USEC is unset or when WATCHDOG_PID
/// names another process (the variables were inherited, not meant for us).
pub fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, me: u32) -> Result<Option<Duration>, WatchdogError> {
    let Some(usec) = usec else { return Ok(None) };
    if let Some(pid) = pid {
        let p: u32 = pid.trim().parse().map_err(|_| WatchdogError::Pid(pid.to_string()))?;
        if p != me {
            return Ok(None);
        }
    }
    match usec.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(Duration::from_micros(n))),
        _ => Err(WatchdogError::Usec(usec.to_string())),
    }
}

/// `WatchdogSec=` support: WATCHDOG=1 at half the timeout (sd_watchdog_enabled(3) advises
/// pinging at half), sent from the director's loop and only while the VRRP thread also shows
/// signs of life, so that a stuck loop or a stuck heartbeat both get the service restarted.
#[derive(Debug)]
pub struct Watchdog {
    timeout: Duration,
    /// A ping was withheld last time (the change is logged once, not at every tick).
    withheld: bool,
}

impl Watchdog {
    /// From the environment; None outside systemd or without `WatchdogSec=`.
    pub fn from_env() -> Option<Watchdog> {
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        match parse_watchdog(usec.as_deref(), pid.as_deref(), std::process::id()) {
            Ok(t) => t.map(Watchdog::new),
            Err(e) => {
                tracing::warn!("watchdog disabled: {e}");
                None
            }
        }
    }

    pub fn new(timeout: Duration) -> Watchdog {
        Watchdog { timeout, withheld: false }
    }

    pub fn ping_every(&self) -> Duration {
        (self.timeout / 2).max(Duration::from_millis(1))
    }

    /// Whether a heartbeat last seen `age` ago (None: no heartbeat) is alive. It wakes at
    /// least every `beat_every` when idle; three of those, or a ping interval if longer, is
    /// the most it may stay silent.
    pub fn alive(&self, age: Option<Duration>, beat_every: Duration) -> bool {
        age.is_some_and(|a| a <= self.ping_every().max(beat_every * 3))
    }

    /// One tick of the director's loop: ping when the heartbeat is alive; true when pinged.
    pub fn tick(&mut self, heartbeat_age: Option<Duration>, beat_every: Duration) -> bool {
        let alive = self.alive(heartbeat_age, beat_every);
        if alive {
            notify("WATCHDOG=1");
            if std::mem::take(&mut self.withheld) {
                tracing::warn!("the VRRP thread is alive again: watchdog pings resumed");
            }
        } else if !self.withheld {
            self.withheld = true;
            match heartbeat_age {
                Some(a) => tracing::error!(
                    "the VRRP thread has been silent for {:.1} s: watchdog pings withheld, systemd will restart lvsd",
                    a.as_secs_f64()
                ),
                None => tracing::error!("the VRRP thread is not running: watchdog pings withheld, systemd will restart lvsd"),
            }
        }
        alive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_environment() {
        assert_eq!(parse_watchdog(None, None, 7), Ok(None));
        assert_eq!(parse_watchdog(Some("4000000"), None, 7), Ok(Some(Duration::from_secs(4))));
        assert_eq!(parse_watchdog(Some("4000000"), Some("7"), 7), Ok(Some(Duration::from_secs(4))));
        // Inherited from a parent that systemd watches: not ours.
        assert_eq!(parse_watchdog(Some("4000000"), Some("8"), 7), Ok(None));
        assert_eq!(parse_watchdog(Some("0"), None, 7), Err(WatchdogError::Usec("0".into())));
        assert_eq!(parse_watchdog(Some("-1"), None, 7), Err(WatchdogError::Usec("-1".into())));
        assert_eq!(parse_watchdog(Some("4s"), None, 7), Err(WatchdogError::Usec("4s".into())));
        assert_eq!(parse_watchdog(Some("1"), Some("x"), 7), Err(WatchdogError::Pid("x".into())));
    }

    #[test]
    fn pings_stop_when_the_heartbeat_is_silent() {
        let beat = Duration::from_secs(1);
        let mut w = Watchdog::new(Duration::from_secs(10));
        assert_eq!(w.ping_every(), Duration::from_secs(5));
        assert!(w.tick(Some(Duration::from_millis(200)), beat));
        // A heartbeat idle between its 1 s maintenance wake-ups is alive.
        assert!(w.alive(Some(Duration::from_secs(3)), beat));
        // Silent for longer than a ping interval: stuck.
        assert!(!w.tick(Some(Duration::from_secs(6)), beat));
        assert!(w.withheld);
        assert!(!w.tick(None, beat));
        assert!(w.tick(Some(Duration::ZERO), beat));
        assert!(!w.withheld);
        // A short WatchdogSec still leaves the heartbeat three wake-ups.
        let w = Watchdog::new(Duration::from_secs(1));
        assert!(w.alive(Some(Duration::from_millis(2500)), beat));
        assert!(!w.alive(Some(Duration::from_millis(3500)), beat));
    }
}
