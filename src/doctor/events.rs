//! Recent errors from a running lvsd, read over its control socket (`events`): failed
//! reloads, IPVS write errors, VRRP socket errors, hook errors.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::Finding;

const CHECK: &str = "events";
/// Errors older than this are history, not a current problem.
const RECENT_SECS: f64 = 3600.0;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    pub at: f64,
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Gathered {
    /// No daemon answers on the socket.
    NotRunning(String),
    Error(String),
    Events {
        now: f64,
        events: Vec<Event>,
    },
}

/// One request to the daemon, with timeouts so a stuck daemon cannot hang the doctor.
fn request(socket: &Path, line: &[u8]) -> Result<serde_json::Value, Gathered> {
    let s = UnixStream::connect(socket).map_err(|e| Gathered::NotRunning(format!("{}: {e}", socket.display())))?;
    let io = |e: std::io::Error| Gathered::Error(format!("{}: {e}", socket.display()));
    crate::control::client::check_server(&s, &socket.display().to_string()).map_err(|e| Gathered::Error(e.to_string()))?;
    s.set_read_timeout(Some(Duration::from_secs(3))).map_err(io)?;
    s.set_write_timeout(Some(Duration::from_secs(3))).map_err(io)?;
    s.try_clone().map_err(io)?.write_all(line).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).map_err(io)?;
    let r: crate::control::Response =
        serde_json::from_str(&answer).map_err(|e| Gathered::Error(format!("bad answer from {}: {e}", socket.display())))?;
    match (r.ok, r.result) {
        (true, Some(v)) => Ok(v),
        _ => Err(Gathered::Error(r.error.unwrap_or_else(|| "no result".into()))),
    }
}

pub fn gather(socket: &Path) -> Gathered {
    match request(socket, b"{\"v\":1,\"cmd\":\"events\",\"limit\":1000}\n") {
        Ok(v) => match serde_json::from_value(v) {
            Ok(events) => Gathered::Events { now: now_secs(), events },
            Err(e) => Gathered::Error(format!("bad events from {}: {e}", socket.display())),
        },
        Err(g) => g,
    }
}

/// The running lvsd's VRRP instance states ("VI_1" -> "master"); empty when none answers.
pub fn vrrp_states(socket: &Path) -> BTreeMap<String, String> {
    let Ok(v) = request(socket, b"{\"v\":1,\"cmd\":\"status\"}\n") else { return BTreeMap::new() };
    v["vrrp"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| Some((i["name"].as_str()?.to_owned(), i["state"].as_str()?.to_owned()))).collect())
        .unwrap_or_default()
}

fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn is_error(kind: &str) -> bool {
    kind.contains("error") || kind.contains("failed")
}

/// Pure.
pub fn check(g: &Gathered) -> Vec<Finding> {
    match g {
        Gathered::NotRunning(why) => vec![Finding::warn(
            CHECK,
            format!("no running lvsd answers on the control socket ({why})"),
            "start it (`systemctl start lvsd` or `lvsd run -p POLICY`), or pass --control PATH",
        )],
        Gathered::Error(e) => vec![Finding::warn(CHECK, format!("lvsd did not answer: {e}"), "check `journalctl -u lvsd`")],
        Gathered::Events { now, events } => {
            let recent: Vec<&Event> = events.iter().filter(|e| is_error(&e.kind) && now - e.at <= RECENT_SECS).collect();
            if recent.is_empty() {
                return vec![Finding::pass(CHECK, "lvsd is running; no errors in its events in the last hour")];
            }
            let mut out: Vec<Finding> = recent
                .iter()
                .rev()
                .take(5)
                .map(|e| {
                    Finding::warn(
                        CHECK,
                        format!("lvsd {} {:.0} s ago: {}", e.kind, now - e.at, e.message),
                        "see `lvsd status` and `journalctl -u lvsd` for the context",
                    )
                })
                .collect();
            if recent.len() > 5 {
                out.push(Finding::warn(CHECK, format!("{} more errors in the last hour", recent.len() - 5), "lvsd repl: events"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Level;

    fn ev(at: f64, kind: &str) -> Event {
        Event { at, kind: kind.into(), message: "m".into() }
    }

    #[test]
    fn recent_errors_warn() {
        let g =
            Gathered::Events { now: 10_000.0, events: vec![ev(9_990.0, "reload"), ev(9_995.0, "reload_failed"), ev(1.0, "ipvs_error")] };
        let f = check(&g);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].level, Level::Warn);
        assert!(f[0].message.contains("reload_failed 5 s ago"));
        let g = Gathered::Events { now: 10.0, events: vec![ev(9.0, "vrrp")] };
        assert_eq!(check(&g)[0].level, Level::Pass);
        assert_eq!(check(&Gathered::NotRunning("x".into()))[0].level, Level::Warn);
    }
}
