//! Long-lived connections through the VIP: what the connection sync daemon is for.
//!
//! N clients each hold one established TCP connection (HTTP keep-alive against the reals'
//! `lab-http`) and send a request every 100 ms on it. A connection is *broken* when it is
//! reset or closed, when an answer takes longer than [`STALL`], or when an answer comes from
//! another real server than the first (the new director scheduled it afresh). Each
//! connection lives for [`LIFETIME`] (staggered) and is then closed and opened again, so
//! that at any moment some exist only since the last failover: those are what a returning
//! master must learn before it preempts (sync-aware preemption).
//!
//! Per phase, with the fault at the VIP's move on the wire (a killed lvsd leaves the VIP and
//! the kernel's table forwarding until the backup takes over), or at the phase's start when
//! the VIP did not move: `open` = connections alive at the fault and answered at
//! least [`SYNCED_AFTER`] before it (the kernel's sync daemon sends within 3 s); `survived`
//! = those that kept getting answers from the same real after the fault; `broken` = those
//! that did not. Younger ones are counted apart (`young`).

use super::{Lab, LabError, spawn_in};

mod answer;
pub use answer::{AnswerError, parse_answer};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Time between requests on one connection.
pub const EVERY: Duration = Duration::from_millis(100);
/// An answer that takes longer breaks the connection (beyond any failover's stall).
pub const STALL: Duration = Duration::from_secs(15);
/// How long one connection is kept before it is closed and opened again.
pub const LIFETIME: Duration = Duration::from_secs(20);
/// A connection counts at a fault once it has been answered this long before it. The kernel
/// queues a connection for sync at its third packet and its master thread sends a buffer once
/// it is 2 s old, looking once a second (IPVS_SYNC_FLUSH_TIME, IPVS_SYNC_CHECK_PERIOD in
/// ip_vs_sync.c): up to 3 s, plus the time a busy emulated guest takes to run the thread.
pub const SYNCED_AFTER: Duration = Duration::from_secs(5);

/// `lvsd lab` options for long-lived connections and the sync daemon.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Established TCP connections held through the VIP (HTTP keep-alive, a request every
    /// 100 ms on each); 0: none.
    #[arg(long = "long-lived", default_value_t = 16)]
    pub long_lived: usize,
    /// Run without the IPVS connection sync daemon (to see what it saves).
    #[arg(long = "no-sync")]
    pub no_sync: bool,
    /// `preempt_sync_wait` of the lab's VRRP instance, seconds (0: preempt at once, as keepalived).
    #[arg(long = "preempt-sync-wait")]
    pub preempt_sync_wait: Option<f64>,
}

impl Default for Args {
    fn default() -> Args {
        Args { long_lived: 16, no_sync: false, preempt_sync_wait: None }
    }
}

/// The lab's policy with the sync daemon (unless `--no-sync` or the policy has one) on the
/// client-side LAN, following VI_1, and the preemption wait asked for.
pub fn policy(src: &str, a: &Args) -> String {
    let mut s = src.to_string();
    if let Some(w) = a.preempt_sync_wait {
        s = s.replacen("lvsd.vrrp \"VI_1\" {", &format!("lvsd.vrrp \"VI_1\" {{\n  preempt_sync_wait = {w},"), 1);
    }
    if !a.no_sync && !s.contains("lvsd.sync_daemon") {
        s.push_str("\n-- lvsd lab: connections survive failover (--no-sync to see the difference)\n");
        s.push_str("lvsd.sync_daemon { interface = \"eth0\", id = 51, instance = \"VI_1\" }\n");
    }
    s
}

/// One connection's life.
#[derive(Debug, Clone, Default)]
pub struct Conn {
    pub opened: Duration,
    /// The real server of its first answer.
    pub real: Option<String>,
    pub answers: Vec<Duration>,
    /// When and why it broke.
    pub broken: Option<(Duration, String)>,
    /// Closed by the client at the end of its lifetime (or of the lab).
    pub closed: Option<Duration>,
}

impl Conn {
    fn alive_at(&self, t: Duration) -> bool {
        self.opened <= t && self.broken.as_ref().is_none_or(|(b, _)| *b > t) && self.closed.is_none_or(|c| c > t)
    }
}

#[derive(Debug, Default)]
pub struct Tracker {
    pub conns: Mutex<Vec<Conn>>,
}

fn connect(src: IpAddr, vip: SocketAddr) -> Result<TcpStream, String> {
    let sock = socket2::Socket::new(socket2::Domain::for_address(vip), socket2::Type::STREAM, None).map_err(|e| e.to_string())?;
    sock.bind(&SocketAddr::new(src, 0).into()).map_err(|e| format!("bind {src}: {e}"))?;
    sock.connect_timeout(&vip.into(), Duration::from_secs(3)).map_err(|e| format!("connect: {e}"))?;
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(STALL)).map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(s)
}

/// One request and its answer on an open connection.
fn ask(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<String, String> {
    s.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: keep-alive\r\n\r\n").map_err(|e| format!("send: {e}"))?;
    let mut chunk = [0u8; 512];
    loop {
        if let Some((n, body)) = parse_answer(buf).map_err(|e| e.to_string())? {
            buf.drain(..n);
            return Ok(body);
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err("closed by the other end".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(format!("stalled: no answer within {} s", STALL.as_secs()));
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// One client slot: a connection at a time, each for its lifetime (the first one shortened
/// by `stagger`), until `stop`.
fn slot(t: Arc<Tracker>, stop: Arc<AtomicBool>, src: IpAddr, vip: SocketAddr, t0: Instant, stagger: Duration) {
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let idx = {
            let mut c = t.conns.lock().unwrap();
            c.push(Conn { opened: t0.elapsed(), ..Conn::default() });
            c.len() - 1
        };
        let set = |f: &dyn Fn(&mut Conn)| f(&mut t.conns.lock().unwrap()[idx]);
        let mut s = match connect(src, vip) {
            Ok(s) => s,
            Err(e) => {
                let at = t0.elapsed();
                set(&|c| c.broken = Some((at, e.clone())));
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        let life = if first { LIFETIME.saturating_sub(stagger) } else { LIFETIME };
        first = false;
        let born = Instant::now();
        let mut buf = Vec::new();
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) && born.elapsed() < life {
            let r = ask(&mut s, &mut buf);
            let at = t0.elapsed();
            match r {
                Ok(real) => {
                    let moved = {
                        let mut c = t.conns.lock().unwrap();
                        let c = &mut c[idx];
                        let first_real = c.real.get_or_insert_with(|| real.clone()).clone();
                        c.answers.push(at);
                        (first_real != real).then_some(first_real)
                    };
                    if let Some(was) = moved {
                        set(&|c| c.broken = Some((at, format!("moved from {was} to {real}"))));
                        break;
                    }
                }
                Err(e) => {
                    set(&|c| c.broken = Some((at, e.clone())));
                    break;
                }
            }
            next += EVERY;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                next = now;
            }
        }
        let at = t0.elapsed();
        set(&|c| {
            if c.broken.is_none() {
                c.closed = Some(at)
            }
        });
    }
}

/// Start `n` slots from the client's `sources` (in its namespace); joined by the handle.
fn start(
    client_ns: &str,
    t: Arc<Tracker>,
    stop: Arc<AtomicBool>,
    sources: Vec<IpAddr>,
    vip: SocketAddr,
    t0: Instant,
    n: usize,
) -> std::thread::JoinHandle<()> {
    spawn_in(client_ns, move || {
        // Threads made here share this thread's namespace.
        let slots: Vec<_> = (0..n)
            .map(|i| {
                let (t, stop) = (t.clone(), stop.clone());
                let src = sources[i % sources.len()];
                let stagger = LIFETIME * i as u32 / n.max(1) as u32;
                std::thread::spawn(move || slot(t, stop, src, vip, t0, stagger))
            })
            .collect();
        for s in slots {
            let _ = s.join();
        }
    })
}

/// A lab run's long-lived connections: their tracker, and the thread holding them until
/// [`Held::finish`].
pub struct Held {
    pub tracker: Arc<Tracker>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Held {
    /// Open `n` (none when 0) from `sources`, in the client's namespace.
    pub fn open(client_ns: &str, sources: Vec<IpAddr>, vip: SocketAddr, t0: Instant, n: usize) -> Held {
        let (tracker, stop) = (Arc::new(Tracker::default()), Arc::new(AtomicBool::new(false)));
        let thread = (n > 0).then(|| start(client_ns, tracker.clone(), stop.clone(), sources, vip, t0, n));
        Held { tracker, stop, thread }
    }

    /// How many have had an answer.
    pub fn answered(&self) -> usize {
        self.tracker.conns.lock().unwrap().iter().filter(|c| !c.answers.is_empty()).count()
    }

    /// Close them all and wait for the thread.
    pub fn finish(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

/// Also on an early return: the connections are closed and their thread joined.
impl Drop for Held {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What happened to the long-lived connections at one fault.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseFigures {
    pub open: usize,
    pub survived: usize,
    pub broken: usize,
    pub young: usize,
    /// The longest silence of each surviving connection around the fault (between two of its
    /// answers, the later one after the fault), in ms.
    pub first_answer_ms: Vec<u64>,
    /// Why connections broke (a few).
    pub reasons: Vec<String>,
}

/// The figures for a fault at `fault`, in a phase that ends at `end`.
pub fn figures(conns: &[Conn], fault: Duration, end: Duration) -> PhaseFigures {
    let mut f = PhaseFigures::default();
    for c in conns.iter().filter(|c| c.alive_at(fault) && c.real.is_some()) {
        let answered_before = c.answers.iter().any(|a| *a + SYNCED_AFTER <= fault);
        if !answered_before {
            f.young += 1;
            continue;
        }
        f.open += 1;
        let broke = c.broken.as_ref().filter(|(b, _)| *b <= end);
        let first = c.answers.iter().find(|a| **a > fault);
        match (broke, first) {
            (None, Some(_)) => {
                f.survived += 1;
                let gap = c.answers.windows(2).filter(|w| w[1] > fault && w[1] <= end).map(|w| w[1] - w[0]).max().unwrap_or_default();
                f.first_answer_ms.push(gap.as_millis() as u64);
            }
            (Some((_, why)), _) => {
                f.broken += 1;
                if f.reasons.len() < 3 {
                    f.reasons.push(why.clone());
                }
            }
            // Closed at the end of its lifetime before answering again: neither.
            (None, None) if c.closed.is_some_and(|t| t <= end) => f.open -= 1,
            (None, None) => {
                f.broken += 1;
                if f.reasons.len() < 3 {
                    f.reasons.push("no answer after the fault".into());
                }
            }
        }
    }
    f.first_answer_ms.sort_unstable();
    f
}

/// Phases in which the VIP moves.
fn is_fault(name: &str) -> bool {
    ["kill", "stop", "link-down", "return-kill", "return-stop", "link-up"].contains(&name)
}

/// Add `long_lived` to each fault phase of the report.
pub fn annotate(report: &mut Value, t: &Tracker, sync: bool, n: usize) {
    let conns = t.conns.lock().unwrap().clone();
    report["long_lived_connections"] = json!(n);
    report["sync"] = json!(sync);
    let Some(phases) = report["phases"].as_array_mut() else { return };
    for p in phases {
        if !is_fault(p["name"].as_str().unwrap_or("")) {
            continue;
        }
        let start = Duration::from_secs_f64(p["start"].as_f64().unwrap_or(0.0));
        let end = Duration::from_secs_f64(p["end"].as_f64().unwrap_or(0.0));
        let moved = p["failovers"].get(0).and_then(|f| f["at"].as_f64()).map(Duration::from_secs_f64);
        let fault = moved.unwrap_or(start);
        let f = figures(&conns, fault, end);
        let pct = |v: &[u64], q: usize| v.get((v.len().saturating_sub(1)) * q / 100).copied();
        p["long_lived"] = json!({
            "open": f.open, "survived": f.survived, "broken": f.broken, "young": f.young,
            "fault_at": fault.as_secs_f64(),
            "longest_gap_ms": { "median": pct(&f.first_answer_ms, 50), "max": f.first_answer_ms.last() },
            "reasons": f.reasons,
        });
    }
}

/// The summary lines for people.
pub fn print(report: &Value) {
    let Some(n) = report["long_lived_connections"].as_u64().filter(|n| *n > 0) else { return };
    let sync = if report["sync"] == true { "sync daemon on" } else { "no sync daemon" };
    println!("\nLong-lived connections ({n} held, a request every 100 ms on each; {sync})");
    println!(
        "  {:<12} {:>5} {:>8} {:>6} {:>5}  longest silence around the fault (median / max)",
        "phase", "open", "survived", "broken", "young"
    );
    for p in report["phases"].as_array().into_iter().flatten() {
        let l = &p["long_lived"];
        if l.is_null() {
            continue;
        }
        let ms = |v: &Value| v.as_u64().map(|m| format!("{m} ms")).unwrap_or("-".into());
        println!(
            "  {:<12} {:>5} {:>8} {:>6} {:>5}  {} / {}",
            p["name"].as_str().unwrap_or(""),
            l["open"].to_string(),
            l["survived"].to_string(),
            l["broken"].to_string(),
            l["young"].to_string(),
            ms(&l["longest_gap_ms"]["median"]),
            ms(&l["longest_gap_ms"]["max"])
        );
        for r in l["reasons"].as_array().into_iter().flatten() {
            println!("  {:<12}   broken: {}", "", r.as_str().unwrap_or(""));
        }
    }
}

/// The survival claims (with the sync daemon on): every connection open at a fault survives it.
pub fn verify(report: &Value) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    if report["sync"] != true || report["long_lived_connections"].as_u64().unwrap_or(0) == 0 {
        return out;
    }
    for p in report["phases"].as_array().into_iter().flatten() {
        let l = &p["long_lived"];
        if l.is_null() {
            continue;
        }
        let (open, survived) = (l["open"].as_u64().unwrap_or(0), l["survived"].as_u64().unwrap_or(0));
        let name = p["name"].as_str().unwrap_or("");
        out.push((
            open > 0 && survived == open,
            format!("{name}: {survived} of {open} long-lived connections survived (longest silence {} ms)", l["longest_gap_ms"]["max"]),
        ));
    }
    out
}

impl Lab {
    /// Before a fault: what the backup's IPVS table holds (its own count, and ipvsadm's
    /// listing when ipvsadm is there), in the timeline.
    pub(super) fn note_backup_table(&mut self, backup: usize) -> Result<(), LabError> {
        let name = self.directors[backup].name.clone();
        let counted = self.status(backup).map(|s| s["sync_daemon"]["connections"].clone()).filter(|c| !c.is_null());
        if let Some(c) = counted {
            self.note(format!(
                "{name} (backup) before the fault: {} connections in its IPVS table, {} from the sync daemon",
                c["total"], c["synced"]
            ));
        }
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", self.directors[backup].ns.name(), "ipvsadm", "-L", "-n", "-c"])
            .output();
        if let Some(o) = out.ok().filter(|o| o.status.success()) {
            let text = String::from_utf8_lossy(&o.stdout);
            let est = text.lines().filter(|l| l.contains("ESTABLISHED")).count();
            self.note(format!("{name} (backup): ipvsadm -L -n -c lists {est} ESTABLISHED connections"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn conn(opened: u64, answers: &[u64], broken: Option<u64>) -> Conn {
        Conn {
            opened: Duration::from_secs(opened),
            real: Some("rs1".into()),
            answers: answers.iter().map(|a| Duration::from_millis(*a)).collect(),
            broken: broken.map(|b| (Duration::from_millis(b), "read: Connection reset by peer".into())),
            closed: None,
        }
    }

    #[test]
    fn a_fault_counts_old_connections_and_judges_them() {
        let conns = [
            conn(0, &[1000, 2000, 9000, 9100], None),       // survived, first answer 2 s after
            conn(0, &[1000, 2000], Some(7500)),             // reset after the fault
            conn(4, &[4500], None),                         // young: answered 2.5 s before
            conn(0, &[1000], Some(3000)),                   // gone before the fault
            conn(0, &[1000, 2000, 4000, 6000, 7200], None), // survived, silent 1.2 s
        ];
        let f = figures(&conns, 7 * S, 14 * S);
        assert_eq!((f.open, f.survived, f.broken, f.young), (3, 2, 1, 1));
        assert_eq!(f.first_answer_ms, [1200, 7000]);
        assert_eq!(f.reasons, ["read: Connection reset by peer"]);
    }

    #[test]
    fn a_connection_silent_after_the_fault_is_broken() {
        let f = figures(&[conn(0, &[1000, 2000], None)], 7 * S, 14 * S);
        assert_eq!((f.open, f.broken), (1, 1));
    }

    #[test]
    fn answers_are_parsed_whole_or_not_at_all() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\nrs1\nHTTP/1.1";
        let (n, body) = parse_answer(a).unwrap().unwrap();
        assert_eq!(body, "rs1");
        assert_eq!(&a[n..], b"HTTP/1.1");
        assert_eq!(parse_answer(&a[..20]), Ok(None));
        assert_eq!(parse_answer(&a[..60]), Ok(None), "body not all there");
        assert_eq!(parse_answer(b"HTTP/1.1 200 OK\r\n\r\n"), Err(AnswerError::NoLength));
        assert!(matches!(parse_answer(b"\x00\x01 junk\r\n\r\n"), Err(AnswerError::Http(_))));
        assert_eq!(parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n"), Err(AnswerError::TooLong(99999)));
    }

    #[test]
    fn the_lab_policy_gets_the_sync_daemon_unless_told_not_to() {
        let seed = "lvsd.vrrp \"VI_1\" {\n  interface = \"eth0\",\n}\n";
        let on = policy(seed, &Args::default());
        assert!(on.contains("lvsd.sync_daemon { interface = \"eth0\", id = 51, instance = \"VI_1\" }"), "{on}");
        let off = policy(seed, &Args { no_sync: true, preempt_sync_wait: Some(0.0), ..Args::default() });
        assert!(!off.contains("lvsd.sync_daemon"));
        assert!(off.contains("lvsd.vrrp \"VI_1\" {\n  preempt_sync_wait = 0,"), "{off}");
    }

    #[test]
    fn verify_claims_survival_only_with_the_sync_daemon() {
        let report = |sync: bool, survived: u64| {
            json!({ "sync": sync, "long_lived_connections": 8, "phases": [
                { "name": "kill", "long_lived": { "open": 6, "survived": survived, "broken": 6 - survived, "longest_gap_ms": { "max": 4000 } } },
                { "name": "baseline" },
            ]})
        };
        assert_eq!(verify(&report(true, 6)).len(), 1);
        assert!(verify(&report(true, 6))[0].0);
        assert!(!verify(&report(true, 5))[0].0);
        assert!(verify(&report(false, 0)).is_empty());
    }
}
