//! Scale-out over BGP: the VIPs this director can serve are announced by the local BIRD 2.
//!
//! The same one-way flow as IPVS: `announce` computes the wanted routes from the model and
//! the services' state (pure); `config` renders BIRD's include file (pure); `birdc` parses
//! BIRD's replies (pure); `bird` is the thin socket adapter. The [`Speaker`] thread owns the
//! connection: the director sends it each new plan and never waits on BIRD; the VRRP thread
//! never hears of it.

pub mod announce;
pub mod bird;
pub mod birdc;
pub mod config;

use crate::model::Bgp;
use announce::{Wanted, neighbor_protocol};
use bird::{Bird, BirdError};
use serde::Serialize;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every read and write on BIRD's socket is bounded by this.
const IO_TIMEOUT: Duration = Duration::from_secs(3);
/// How often BIRD is asked for the state of the routes and sessions.
const POLL: Duration = Duration::from_millis(500);
/// How often a lost BIRD is tried again.
const RETRY: Duration = Duration::from_millis(250);

/// What the director wants BIRD to announce.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Increases with every plan sent; the status says which one BIRD has.
    pub seq: u64,
    pub bgp: Bgp,
    pub wanted: Vec<Wanted>,
}

/// One VIP's route: wanted, and as BIRD reports it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct VipStatus {
    pub vip: String,
    pub protocol: String,
    pub wanted: bool,
    pub why: String,
    /// BIRD's static protocol for it is up (the route is exported to the sessions); None:
    /// not known (BIRD down, or not loaded yet).
    pub announced: Option<bool>,
    pub services: Vec<String>,
}

/// One BGP session, as BIRD reports it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SessionStatus {
    pub neighbor: String,
    pub protocol: String,
    pub bfd: bool,
    /// BIRD's protocol state ("up", "start", ...); "unknown" while BIRD cannot be asked.
    pub state: String,
    /// BGP state and last error ("Established", "Active   Socket: Connection refused").
    pub info: String,
    pub since: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Status {
    pub socket: String,
    pub include: String,
    /// The control socket answers.
    pub bird_up: bool,
    /// The last problem with BIRD or the include file (None: none now).
    pub error: Option<String>,
    /// The last plan applied in full while BIRD was up.
    pub applied: u64,
    pub vips: Vec<VipStatus>,
    pub sessions: Vec<SessionStatus>,
}

impl Status {
    /// Nothing of `seq` is announced any more: BIRD says so, or BIRD is down (its sessions
    /// went with it).
    pub fn withdrawn(&self, seq: u64) -> bool {
        !self.bird_up || (self.applied >= seq && self.vips.iter().all(|v| v.announced != Some(true)))
    }

    /// This status with the VIPs as `wanted` says, each with what BIRD last reported of its
    /// route. The BGP thread reports a plan only once it has been through BIRD (a configure
    /// can take seconds); the director shows what it wants from the moment it decides, and
    /// `applied` still says which plan BIRD has.
    pub fn with_wanted(mut self, wanted: &[Wanted]) -> Status {
        let reported = std::mem::take(&mut self.vips);
        self.vips = wanted
            .iter()
            .map(|w| {
                let protocol = w.protocol();
                let announced = reported.iter().find(|v| v.protocol == protocol).and_then(|v| v.announced);
                VipStatus { vip: w.net(), protocol, wanted: w.announce, why: w.why.clone(), announced, services: w.services.clone() }
            })
            .collect();
        self
    }
}

enum Msg {
    Plan(Box<Plan>),
    Stop,
}

#[derive(Default)]
struct Shared {
    status: Status,
    events: Vec<String>,
}

/// The BGP thread: applies the newest plan, keeps BIRD in line with it, and reports.
pub struct Speaker {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Mutex<Shared>>,
    thread: std::thread::JoinHandle<()>,
}

impl Speaker {
    pub fn start(plan: Plan) -> std::io::Result<Speaker> {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s = shared.clone();
        let thread = std::thread::Builder::new().name("lvsd-bgp".into()).spawn(move || run(rx, s, plan))?;
        Ok(Speaker { tx, shared, thread })
    }

    /// The thread still runs (it ends only when stopped; anything else is a fault).
    pub fn is_alive(&self) -> bool {
        !self.thread.is_finished()
    }

    /// Hand over a new plan; returns at once.
    pub fn send(&self, plan: Plan) {
        let _ = self.tx.send(Msg::Plan(Box::new(plan)));
    }

    pub fn status(&self) -> Status {
        self.shared.lock().map(|s| s.status.clone()).unwrap_or_default()
    }

    /// Events since the last call (BIRD lost, back, refused a command).
    pub fn take_events(&self) -> Vec<String> {
        self.shared.lock().map(|mut s| std::mem::take(&mut s.events)).unwrap_or_default()
    }

    /// Stop the thread, waiting at most `wait` (a hung BIRD leaves it behind, never waited for).
    pub fn stop(self, wait: Duration) {
        let _ = self.tx.send(Msg::Stop);
        let until = Instant::now() + wait;
        while !self.thread.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Write the include file whole or not at all (BIRD may read it at any moment).
fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".lvsd-tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

struct Loop {
    shared: Arc<Mutex<Shared>>,
    conn: Option<Bird>,
    /// The socket `conn` is connected to (a reload may move it).
    conn_socket: std::path::PathBuf,
    /// The include file as last written.
    written: Option<String>,
    /// The shape of the file BIRD last loaded on this connection (None: configure needed).
    configured: Option<String>,
    next_try: Instant,
}

impl Loop {
    fn event(&self, msg: String) {
        tracing::info!(target: "bgp", "{msg}");
        if let Ok(mut s) = self.shared.lock() {
            s.events.push(msg);
        }
    }

    fn set_error(&self, e: Option<String>) {
        let changed = self.shared.lock().map(|mut s| std::mem::replace(&mut s.status.error, e.clone()) != e).unwrap_or(false);
        if let (true, Some(e)) = (changed, e) {
            self.event(e);
        }
    }

    fn step(&mut self, plan: &Plan) {
        let text = config::render(&plan.bgp, &plan.wanted);
        if self.written.as_ref() != Some(&text) {
            match write_atomic(&plan.bgp.include, &text) {
                Ok(()) => self.written = Some(text),
                Err(e) => self.set_error(Some(format!("cannot write BIRD's include file {}: {e}", plan.bgp.include.display()))),
            }
        }
        if self.conn.is_some() && self.conn_socket != plan.bgp.socket {
            self.conn = None;
            self.next_try = Instant::now();
        }
        if self.conn.is_none() && Instant::now() >= self.next_try {
            match Bird::connect(&plan.bgp.socket, IO_TIMEOUT) {
                Ok(b) => {
                    self.conn = Some(b);
                    self.conn_socket = plan.bgp.socket.clone();
                    self.configured = None;
                    self.event(format!("BIRD's control socket {} answers: re-syncing the announcements", plan.bgp.socket.display()));
                }
                Err(e) => {
                    self.next_try = Instant::now() + RETRY;
                    self.set_error(Some(format!("{e} (announcements are re-synced when it answers)")));
                }
            }
        }
        let rows = match self.conn.as_mut() {
            None => None,
            Some(b) => match reconcile(b, plan, &mut self.configured) {
                Ok((rows, refused, toggled)) => {
                    self.set_error(refused);
                    for (name, on) in toggled {
                        self.event(format!("BIRD: {} {name}", if on { "enabled" } else { "disabled" }));
                    }
                    Some(rows)
                }
                Err(e) => {
                    self.conn = None;
                    self.next_try = Instant::now() + RETRY;
                    self.set_error(Some(format!("{e}; announcements are re-synced when BIRD answers again")));
                    None
                }
            },
        };
        let status = status_of(plan, rows.as_deref());
        if let Ok(mut s) = self.shared.lock() {
            let error = s.status.error.take();
            s.status = Status { error, ..status };
        }
    }
}

fn status_of(plan: &Plan, rows: Option<&[birdc::Protocol]>) -> Status {
    let find = |name: &str| rows.and_then(|r| r.iter().find(|p| p.name == name));
    Status {
        socket: plan.bgp.socket.display().to_string(),
        include: plan.bgp.include.display().to_string(),
        bird_up: rows.is_some(),
        error: None,
        applied: if rows.is_some() { plan.seq } else { 0 },
        vips: plan
            .wanted
            .iter()
            .map(|w| VipStatus {
                vip: w.net(),
                protocol: w.protocol(),
                wanted: w.announce,
                why: w.why.clone(),
                announced: find(&w.protocol()).map(|p| p.is_up()),
                services: w.services.clone(),
            })
            .collect(),
        sessions: plan
            .bgp
            .neighbors
            .iter()
            .map(|n| {
                let name = neighbor_protocol(n.address);
                let p = find(&name);
                SessionStatus {
                    neighbor: n.address.to_string(),
                    protocol: name,
                    bfd: n.bfd,
                    state: p.map_or("unknown".into(), |p| p.state.clone()),
                    info: p.map_or(String::new(), |p| p.info.clone()),
                    since: p.map_or(String::new(), |p| p.since.clone()),
                }
            })
            .collect(),
    }
}

/// Bring BIRD to the plan: `configure` when the shape of the include file changed (or on a
/// new connection), then `enable`/`disable` each VIP whose state differs. Returns BIRD's
/// protocols, a refusal worth reporting (a bad include file) that is not a lost connection,
/// and the protocols enabled or disabled.
type Reconciled = (Vec<birdc::Protocol>, Option<String>, Vec<(String, bool)>);

fn reconcile(b: &mut Bird, plan: &Plan, configured: &mut Option<String>) -> Result<Reconciled, BirdError> {
    let mut refused = None;
    let shape = config::shape(&plan.bgp, &plan.wanted);
    if configured.as_ref() != Some(&shape) {
        match b.configure() {
            Ok(_) => {}
            // Not tried again until the file changes: BIRD keeps its running configuration.
            Err(BirdError::Refused { code, text, .. }) => refused = Some(format!("BIRD refused the configuration: {code} {text}")),
            Err(e) => return Err(e),
        }
        *configured = Some(shape);
    }
    let mut rows = b.protocols("lvsd_*")?;
    let mut toggled = Vec::new();
    for w in &plan.wanted {
        let name = w.protocol();
        // A protocol BIRD does not have yet (a configure in progress) is seen at the next poll.
        if let Some(p) = rows.iter().find(|p| p.name == name) {
            // "start"/"stop" are on their way: only a settled state that differs is changed.
            let on = p.state != "down";
            if on != w.announce {
                b.set_enabled(&name, w.announce)?;
                toggled.push((name, w.announce));
            }
        }
    }
    if !toggled.is_empty() {
        rows = b.protocols("lvsd_*")?;
    }
    Ok((rows, refused, toggled))
}

fn run(rx: mpsc::Receiver<Msg>, shared: Arc<Mutex<Shared>>, mut plan: Plan) {
    let mut l = Loop { shared, conn: None, conn_socket: Default::default(), written: None, configured: None, next_try: Instant::now() };
    loop {
        l.step(&plan);
        let wait = if l.conn.is_some() { POLL } else { RETRY };
        let mut msg = rx.recv_timeout(wait);
        // Only the newest plan matters.
        loop {
            match msg {
                Ok(Msg::Plan(p)) => plan = *p,
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => break,
            }
            msg = match rx.try_recv() {
                Ok(m) => Ok(m),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            };
        }
    }
}

/// The `bgp` part of the status document as Prometheus text (the metrics page appends it):
/// BIRD reachable, each VIP wanted and announced, each session established, the drain.
pub fn metrics(doc_bgp: &serde_json::Value) -> Result<String, String> {
    use std::fmt::Write;
    let s: Status =
        serde_json::from_value(doc_bgp.clone()).map_err(|e| format!("the status document's bgp does not read as expected: {e}"))?;
    let esc = crate::control::metrics_page::esc;
    let mut o = String::new();
    let family = |o: &mut String, name: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
    };
    family(&mut o, "lvsd_bgp_bird_up", "1 when BIRD's control socket answers.");
    let _ = writeln!(o, "lvsd_bgp_bird_up {}", s.bird_up as u8);
    family(&mut o, "lvsd_bgp_vip_wanted", "1 when the director wants the VIP announced.");
    for v in &s.vips {
        let _ = writeln!(o, "lvsd_bgp_vip_wanted{{vip=\"{}\"}} {}", esc(&v.vip), v.wanted as u8);
    }
    family(&mut o, "lvsd_bgp_vip_announced", "1 when BIRD exports the VIP's route (absent: BIRD not asked).");
    for v in &s.vips {
        if let Some(a) = v.announced {
            let _ = writeln!(o, "lvsd_bgp_vip_announced{{vip=\"{}\"}} {}", esc(&v.vip), a as u8);
        }
    }
    family(&mut o, "lvsd_bgp_session_established", "1 when the BGP session with the neighbour is established.");
    for n in &s.sessions {
        let up = n.state == "up" && n.info.starts_with("Established");
        let _ = writeln!(o, "lvsd_bgp_session_established{{neighbor=\"{}\"}} {}", esc(&n.neighbor), up as u8);
    }
    family(&mut o, "lvsd_director_drained", "1 while the director is drained (drain-director).");
    let _ = writeln!(o, "lvsd_director_drained {}", (!doc_bgp["drain"].is_null()) as u8);
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_from_the_status_document() {
        let doc = serde_json::json!({
            "socket": "/run/bird/bird.ctl", "include": "/etc/bird/lvsd.conf", "bird_up": true, "error": null, "applied": 3,
            "vips": [
                { "vip": "203.0.113.10/32", "protocol": "lvsd_vip_203_0_113_10", "wanted": true, "why": "web has quorum", "announced": true, "services": ["web"] },
                { "vip": "203.0.113.11/32", "protocol": "lvsd_vip_203_0_113_11", "wanted": false, "why": "x", "announced": null, "services": ["x"] },
            ],
            "sessions": [{ "neighbor": "192.0.2.1", "protocol": "lvsd_bgp_192_0_2_1", "bfd": true, "state": "up", "info": "Established", "since": "" }],
            "drain": { "state": "done" },
        });
        let m = metrics(&doc).unwrap();
        for line in [
            "lvsd_bgp_bird_up 1",
            "lvsd_bgp_vip_wanted{vip=\"203.0.113.11/32\"} 0",
            "lvsd_bgp_vip_announced{vip=\"203.0.113.10/32\"} 1",
            "lvsd_bgp_session_established{neighbor=\"192.0.2.1\"} 1",
            "lvsd_director_drained 1",
        ] {
            assert!(m.lines().any(|l| l == line), "{line} in:\n{m}");
        }
        assert!(!m.contains("lvsd_bgp_vip_announced{vip=\"203.0.113.11/32\"}"), "unknown is absent, not 0");
        assert!(metrics(&serde_json::json!({ "bird_up": "yes" })).is_err(), "a mistyped document is an error");
        let st = Status { applied: 2, bird_up: true, ..Default::default() };
        assert!(st.withdrawn(2) && !st.withdrawn(3), "a plan not yet applied is not confirmed");
    }

    #[test]
    fn the_wanted_vips_are_shown_before_bird_has_them() {
        let want = |last: u8, announce: bool, why: &str| Wanted {
            addr: std::net::IpAddr::from([203, 0, 113, last]),
            prefix: 32,
            announce,
            why: why.into(),
            communities: vec![],
            med: None,
            services: vec![format!("s{last}")],
        };
        let old = [want(10, false, "director drained"), want(11, false, "director drained")];
        let mut reported = status_of(&Plan { seq: 4, bgp: config::tests::bgp(), wanted: old.to_vec() }, Some(&[]));
        reported.vips[0].announced = Some(false);
        let new = [want(12, true, "s12 has quorum"), want(10, true, "s10 has quorum")];
        let st = reported.clone().with_wanted(&new);
        let shown: Vec<_> = st.vips.iter().map(|v| (v.vip.as_str(), v.wanted, v.why.as_str(), v.announced)).collect();
        assert_eq!(
            shown,
            [("203.0.113.12/32", true, "s12 has quorum", None), ("203.0.113.10/32", true, "s10 has quorum", Some(false))],
            "the plan's VIPs, with BIRD's last word on each (none yet for a new one)"
        );
        assert_eq!(st.vips[1].services, ["s10"]);
        assert_eq!((st.applied, st.bird_up), (reported.applied, reported.bird_up), "which plan BIRD has is BIRD's to say");
        assert!(!st.withdrawn(5), "a plan BIRD has not had is not confirmed");
    }
}
