//! Heartbeat benchmark (issue 15): the largest delay of a master's VRRP adverts (v3, advert
//! 0.1 s) while, at once,
//!   (a) a runaway Lua hook (`on_up`/`on_down`: an endless loop the instruction limit stops)
//!       fires on every check event, the reals' Lua checks flapping on every run;
//!   (b) the director resyncs a 10,000-service table every second (`--resync 1`): against the
//!       in-memory backend (`--dry-run`) on the host, against the kernel's IPVS with `--kernel`
//!       (the QEMU guest, scripts/bench-heartbeat --vm);
//!   (c) `lvsd status` (the CLI, text) and a Prometheus scrape are each requested `--rate` times
//!       a second (at most 4 of each in flight; a tick that finds 4 waiting is counted skipped).
//!
//! Topology: a bridge with three hosts. h0 runs the master (priority 200) under load, h1 the
//! backup (priority 100, the same binary, VRRP only), h2 captures every frame (AF_PACKET, kernel
//! timestamps; see support/mod.rs). Figures over the window: the gaps between consecutive
//! adverts of the master on the wire (largest, 99th percentile, median, how many later than
//! interval + 5 ms), adverts from the backup (it became master) and the backup's transitions.
//!
//! The same load runs against each binary given: `--lvsd PATH` (default: this tree's) and
//! `--peer PATH` (e.g. a build of the tree before the heartbeat had a thread of its own).
//!
//!   sudo cargo bench --bench heartbeat -- [--peer PATH] [--seconds 30] [--services 10000]
//!        [--rate 10] [--flap 1] [--check-interval 3] [--resync 1] [--warm 8] [--rounds 1] [--baseline 10]
//!        [--instruction-limit N] [--vrrp-rt PRIO] [--kernel] [--lvsd-label TEXT] [--peer-label TEXT]
//!
//! `--baseline S` (default 10, 0 for none) first measures each binary for S seconds with the
//! table and its resync only. `--vrrp-rt PRIO` puts the daemons' `lvsd-vrrp` thread in
//! SCHED_FIFO (a tree without that thread is left as it is).
//!
//! Prints figures; asserts nothing about time. Every wait is bounded, daemons are killed with
//! the benchmark (PR_SET_PDEATHSIG) and the namespaces are deleted on drop.

#[path = "../tests/common/lan.rs"]
mod lan;
mod support;

use lan::Lan;
use lvsd::net::netns::privileged_or_skip;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Capture, Frame, Kind, control_call, ms, now};

const MASTER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const BACKUP_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const VRID: u8 = 51;
const ADVERT: f64 = 0.1;
/// An advert is late when its gap to the previous one exceeds the interval by this much.
const LATE: f64 = 0.005;
const METRICS_PORT: u16 = 9815;
/// Requests of one kind (status or scrape) waiting at once; a tick beyond that is skipped.
const IN_FLIGHT: usize = 4;
/// Bound on one status or scrape request.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Opts {
    services: usize,
    seconds: f64,
    warm: f64,
    rate: f64,
    flap: usize,
    check_interval: f64,
    resync: u64,
    instruction_limit: Option<u64>,
    kernel: bool,
    /// The baseline: the same table and resync, no flapping checks, no hook, no requests.
    quiet: bool,
    /// SCHED_FIFO priority for the daemons' `lvsd-vrrp` thread (what the operating system can
    /// add once VRRP has a thread of its own; a tree without that thread is left as it is).
    vrrp_rt: Option<i32>,
}

fn policy(o: &Opts) -> String {
    let reals: Vec<String> = (0..o.flap).map(|i| format!("\"198.51.100.{}:80\"", 11 + i)).collect();
    format!(
        r#"-- The master carries the load; the backup runs VRRP only.
local master = lvsd.node == "lvs01"
lvsd.vrrp "VI_1" {{
  interface = "eth0", vrid = {VRID}, version = 3, advert_int = {ADVERT},
  priority = master and 200 or 100, state = master and "master" or "backup",
  vips = {{ "192.0.2.100" }},
}}
if not master then return end

if {quiet} then
  for i = 1, {n} do
    lvsd.service("s" .. i) {{
      vip = "203.0.113." .. (1 + (i - 1) % 250) .. ":" .. (1000 + (i - 1) // 250),
      scheduler = "wrr",
      reals = {{ "198.51.100.1:80", "198.51.100.2:80" }},
    }}
  end
  return
end
-- Each real's check alternates: down, up, down... so every run is a health change.
local flip = {{}}
local flap = lvsd.check.lua {{ interval = {ci}, timeout = 1, retries = 0, run = function(rs)
  flip[rs.address] = not flip[rs.address]
  return flip[rs.address]
end }}
-- A runaway hook: loops until the instruction limit stops it.
local function runaway(ev)
  local n = 0
  while true do n = n + 1 end
end
lvsd.service "flap" {{
  vip = "192.0.2.200:80", scheduler = "wrr", check = flap,
  on_up = runaway, on_down = runaway,
  reals = {{ {reals} }},
}}
for i = 1, {n} do
  lvsd.service("s" .. i) {{
    vip = "203.0.113." .. (1 + (i - 1) % 250) .. ":" .. (1000 + (i - 1) // 250),
    scheduler = "wrr",
    reals = {{ "198.51.100.1:80", "198.51.100.2:80" }},
  }}
end
"#,
        ci = o.check_interval,
        reals = reals.join(", "),
        n = o.services,
        quiet = o.quiet,
    )
}

/// One `lvsd run` in a namespace (`ip netns exec` execs lvsd, so the child's pid is lvsd's);
/// killed if the benchmark dies, stopped (SIGTERM, then SIGKILL after 3 s) on drop.
struct Director {
    child: Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Director {
    fn start(bin: &Path, ns: &str, node: &str, o: &Opts, metrics: bool) -> Director {
        let dir = tempfile::Builder::new().prefix("lvsd-hb").tempdir().unwrap();
        let pol = dir.path().join("policy.lua");
        std::fs::write(&pol, policy(o)).unwrap();
        let socket = dir.path().join("ctl").join("lvsd.sock");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(bin);
        cmd.args(["run", "-p"]).arg(&pol).args(["--node", node, "--control"]).arg(&socket);
        cmd.args(["--resync", &o.resync.to_string()]);
        if !o.kernel {
            cmd.arg("--dry-run");
        }
        if metrics {
            cmd.args(["--metrics", &format!("127.0.0.1:{METRICS_PORT}")]);
        }
        if let Some(n) = o.instruction_limit {
            cmd.args(["--instruction-limit", &n.to_string()]);
        }
        cmd.env("LVSD_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::from(std::fs::File::create(dir.path().join("lvsd.log")).unwrap()));
        // SAFETY: prctl is async-signal-safe; the death signal survives the exec of lvsd.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn lvsd");
        let mut d = Director { child, dir, socket };
        let ok = support::wait_until(Duration::from_secs(120), || {
            std::os::unix::net::UnixStream::connect(&d.socket).is_ok() || matches!(d.child.try_wait(), Ok(Some(_)))
        });
        if !ok || matches!(d.child.try_wait(), Ok(Some(_))) {
            panic!("{node}: lvsd did not answer on its control socket; log:\n{}", d.log());
        }
        if let Some(prio) = o.vrrp_rt {
            d.realtime_vrrp_thread(prio);
        }
        d
    }

    /// Put the `lvsd-vrrp` thread, if there is one, in SCHED_FIFO at `prio`.
    fn realtime_vrrp_thread(&self, prio: i32) {
        let pid = self.child.id();
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
        for t in tasks {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
            if comm.trim() == "lvsd-vrrp" {
                let p = libc::sched_param { sched_priority: prio };
                // SAFETY: plain syscall on a thread id of our child.
                if unsafe { libc::sched_setscheduler(tid, libc::SCHED_FIFO, &p) } != 0 {
                    eprintln!("sched_setscheduler({tid}): {}", std::io::Error::last_os_error());
                }
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("lvsd.log")).unwrap_or_default()
    }

    fn status(&self, limit: Duration) -> Option<serde_json::Value> {
        control_call(&self.socket, &serde_json::json!({"v": 1, "cmd": "status"}), limit)
    }

    /// (state, transitions) of VI_1.
    fn vrrp(&self, limit: Duration) -> Option<(String, u64)> {
        let st = self.status(limit)?;
        let v = st["vrrp"].as_array()?.iter().find(|v| v["name"] == "VI_1")?.clone();
        Some((v["state"].as_str().unwrap_or("").to_owned(), v["transitions"].as_u64().unwrap_or(0)))
    }

    fn stop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Director {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Requests made at a fixed rate by one client kind.
#[derive(Default)]
struct Load {
    requested: usize,
    skipped: usize,
    answered: Vec<f64>,
    failed: usize,
}

/// Start `request` every `1 / rate` s until `stop`, with at most IN_FLIGHT waiting.
fn drive(rate: f64, stop: Arc<AtomicBool>, request: Arc<dyn Fn() -> bool + Send + Sync>) -> std::thread::JoinHandle<Load> {
    std::thread::spawn(move || {
        let load = Arc::new(Mutex::new(Load::default()));
        let inflight = Arc::new(AtomicUsize::new(0));
        let period = Duration::from_secs_f64(1.0 / rate);
        let mut next = Instant::now();
        let mut workers = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now < next {
                std::thread::sleep(next - now);
                continue;
            }
            next += period;
            load.lock().unwrap().requested += 1;
            if inflight.load(Ordering::Relaxed) >= IN_FLIGHT {
                load.lock().unwrap().skipped += 1;
                continue;
            }
            inflight.fetch_add(1, Ordering::Relaxed);
            let (load, inflight, request) = (load.clone(), inflight.clone(), request.clone());
            workers.push(std::thread::spawn(move || {
                let t = Instant::now();
                let ok = request();
                let mut l = load.lock().unwrap();
                if ok {
                    l.answered.push(t.elapsed().as_secs_f64())
                } else {
                    l.failed += 1
                }
                inflight.fetch_sub(1, Ordering::Relaxed);
            }));
            workers.retain(|w| !w.is_finished());
        }
        // Every request is bounded (REQUEST_LIMIT), so this ends.
        for w in workers {
            let _ = w.join();
        }
        Arc::try_unwrap(load).ok().unwrap().into_inner().unwrap()
    })
}

/// `lvsd status` (text) as an operator runs it; killed at REQUEST_LIMIT.
fn status_cli(bin: &Path, socket: &Path) -> bool {
    let Ok(mut c) = Command::new(bin).arg("status").arg("--control").arg(socket).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()
    else {
        return false;
    };
    let mut out = c.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut n = 0usize;
        let mut buf = [0u8; 65536];
        while let Ok(k) = out.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    });
    let end = Instant::now() + REQUEST_LIMIT;
    let code = loop {
        if let Ok(Some(s)) = c.try_wait() {
            break s.success();
        }
        if Instant::now() > end {
            let _ = c.kill();
            let _ = c.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let n = reader.join().unwrap_or(0);
    code && n > 0
}

/// One Prometheus scrape from inside namespace `ns` (the listener is on its loopback).
fn scrape(ns: &str) -> bool {
    let Ok(f) = std::fs::File::open(format!("/run/netns/{ns}")) else { return false };
    // A thread of its own: setns changes only the calling thread.
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return false;
        }
        let addr = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, METRICS_PORT));
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, REQUEST_LIMIT) else { return false };
        let end = Instant::now() + REQUEST_LIMIT;
        let _ = s.set_write_timeout(Some(REQUEST_LIMIT));
        if s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
            return false;
        }
        let mut body = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
                return false;
            }
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => body.extend_from_slice(&buf[..k]),
                Err(_) => return false,
            }
        }
        body.starts_with(b"HTTP/1.0 200") && body.windows(13).any(|w| w == b"lvsd_vrrp_sta")
    })
    .join()
    .unwrap_or(false)
}

struct Row {
    label: String,
    adverts: usize,
    gaps: Vec<f64>,
    /// The same gaps seen on the master's own eth0 (outgoing frames, timestamped as they are
    /// queued to the device): the sender's part of a delay, without the LAN's delivery.
    sent_gaps: Vec<f64>,
    backup_adverts: usize,
    backup_transitions: Option<u64>,
    master_prio_changes: usize,
    hooks_stopped: Option<usize>,
    health_events: Option<usize>,
    status: Load,
    scrapes: Load,
    cpu: Option<f64>,
    drops: u64,
    load_avg: String,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[k - 1]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Gaps between consecutive adverts from `src` inside [t0, t1], with the edges of the window
/// counted when the master was already late there.
fn advert_gaps(frames: &[Frame], src: Ipv4Addr, t0: f64, t1: f64) -> (Vec<f64>, Vec<f64>) {
    let ts: Vec<f64> = frames
        .iter()
        .filter(|f| f.t >= t0 && f.t <= t1 && matches!(f.kind, Kind::Vrrp { src: s, vrid: VRID, .. } if s == src))
        .map(|f| f.t)
        .collect();
    let mut gaps: Vec<f64> = ts.windows(2).map(|w| w[1] - w[0]).collect();
    // A master silent at the window's edges: the part of that gap inside the window counts
    // (a lower bound of the whole gap), when it is already late.
    for edge in [ts.first().map_or(t1 - t0, |f| f - t0), ts.last().map_or(0.0, |l| t1 - l)] {
        if edge > ADVERT + LATE {
            gaps.push(edge);
        }
    }
    (ts, gaps)
}

fn run_one(lan: &Lan, cap: &Capture, tap: &Capture, bin: &Path, label: &str, o: &Opts) -> Row {
    let (h0, h1) = (lan.host(0).name().to_owned(), lan.host(1).name().to_owned());
    eprintln!("{label}: starting the master ({} services{})", o.services, if o.kernel { ", kernel IPVS" } else { ", in-memory IPVS" });
    cap.clear();
    let master = Director::start(bin, &h0, "lvs01", o, true);
    let mine = |f: &Frame, src: Ipv4Addr| matches!(f.kind, Kind::Vrrp { src: s, vrid: VRID, .. } if s == src);
    if cap.wait_for(Duration::from_secs(120), |fs| fs.iter().any(|f| mine(f, MASTER_IP)).then_some(())).is_none() {
        panic!("{label}: no advert from the master within 120 s; log:\n{}", master.log());
    }
    let backup = Director::start(bin, &h1, "lvs02", o, false);
    if !support::wait_until(Duration::from_secs(20), || backup.vrrp(Duration::from_secs(2)).is_some_and(|(s, _)| s == "backup")) {
        eprintln!("{label}: the backup is not in state backup after 20 s: {:?}", backup.vrrp(Duration::from_secs(2)));
    }
    // Let the table be applied and the checks start flapping.
    std::thread::sleep(Duration::from_secs_f64(o.warm));
    let cpu_before = support::proc_usage(master.child.id()).map(|u| u.0);
    let load_avg = loadavg();

    eprintln!("{label}: {} for {} s", if o.quiet { "no load" } else { "load on" }, o.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let (b, s) = (bin.to_owned(), master.socket.clone());
    let ns = h0.clone();
    let drivers = (!o.quiet).then(|| {
        (drive(o.rate, stop.clone(), Arc::new(move || status_cli(&b, &s))), drive(o.rate, stop.clone(), Arc::new(move || scrape(&ns))))
    });
    let t0 = now();
    cap.clear();
    tap.clear();
    std::thread::sleep(Duration::from_secs_f64(o.seconds));
    let t1 = now();
    let frames = cap.frames();
    let tapped = tap.frames();
    let cpu_after = support::proc_usage(master.child.id()).map(|u| u.0);
    stop.store(true, Ordering::Relaxed);
    let (status, scrapes) = match drivers {
        Some((st, sc)) => (st.join().unwrap(), sc.join().unwrap()),
        None => (Load::default(), Load::default()),
    };

    let window: Vec<&Frame> = frames.iter().filter(|f| f.t >= t0 && f.t <= t1).collect();
    let (ts, gaps) = advert_gaps(&frames, MASTER_IP, t0, t1);
    let (_, sent_gaps) = advert_gaps(&tapped, MASTER_IP, t0, t1);
    let prios: Vec<u8> = window
        .iter()
        .filter_map(|f| match f.kind {
            Kind::Vrrp { src, vrid: VRID, prio, .. } if src == MASTER_IP => Some(prio),
            _ => None,
        })
        .collect();
    let master_prio_changes = prios.windows(2).filter(|w| w[0] != w[1]).count();
    let backup_adverts = window.iter().filter(|f| mine(f, BACKUP_IP)).count();
    // The backup's transitions in the window, from its events (it carries no load).
    let bev = control_call(&backup.socket, &serde_json::json!({"v": 1, "cmd": "events", "limit": 1000}), Duration::from_secs(5));
    let backup_changes: Option<Vec<String>> = bev.as_ref().and_then(|e| e.as_array()).map(|a| {
        a.iter()
            .filter(|e| e["kind"] == "vrrp" && e["at"].as_f64().is_some_and(|t| t >= t0 && t <= t1))
            .map(|e| format!("{:+.3} s: {}", e["at"].as_f64().unwrap_or(0.0) - t0, e["message"].as_str().unwrap_or("")))
            .collect()
    });
    for c in backup_changes.iter().flatten() {
        eprintln!("{label}: backup transition at {c}");
    }
    let backup_transitions = backup_changes.map(|c| c.len() as u64);
    // Events of the window, from the master (it may be slow to answer: bounded).
    let events = control_call(&master.socket, &serde_json::json!({"v": 1, "cmd": "events", "limit": 100000}), Duration::from_secs(30));
    let count = |kind: &str| {
        events
            .as_ref()
            .and_then(|e| e.as_array())
            .map(|a| a.iter().filter(|e| e["kind"] == kind && e["at"].as_f64().is_some_and(|t| t >= t0 && t <= t1)).count())
    };
    let (hooks_stopped, health_events) = (count("hook_error"), count("health"));
    if std::env::var_os("LVSD_BENCH_VERBOSE").is_some() {
        let mut late: Vec<(f64, f64)> = ts.windows(2).map(|w| (w[0] - t0, w[1] - w[0])).filter(|g| g.1 > ADVERT + LATE).collect();
        late.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
        for (at, g) in late.iter().take(20) {
            eprintln!("{label}: gap {:.1} ms from {:.3} s into the window", g * 1e3, at);
        }
        if let Some(e) = &events {
            for ev in e.as_array().into_iter().flatten().filter(|e| e["kind"] == "hook_error").take(2) {
                eprintln!("{label}: {}", ev["message"]);
            }
        }
    }
    drop(backup);
    drop(master);
    Row {
        label: label.to_owned(),
        adverts: ts.len(),
        gaps,
        sent_gaps,
        backup_adverts,
        backup_transitions,
        master_prio_changes,
        hooks_stopped,
        health_events,
        status,
        scrapes,
        cpu: cpu_before.zip(cpu_after).map(|(a, b)| (b - a) / (t1 - t0)),
        drops: cap.drops() + tap.drops(),
        load_avg,
    }
}

fn load_cell(l: &Load) -> String {
    let mut v = l.answered.clone();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "{} of {} ({} skipped, {} failed); {} / {}",
        v.len(),
        l.requested,
        l.skipped,
        l.failed,
        ms(percentile(&v, 0.5)),
        ms(v.last().copied().unwrap_or(f64::NAN))
    )
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it,
    // and a benchmark is no test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("heartbeat: a benchmark; run it with `cargo bench --bench heartbeat` (scripts/bench-heartbeat)");
        return;
    }
    if !privileged_or_skip("heartbeat benchmark") {
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let num = |name: &str, default: f64| {
        arg(name).map(|v| v.parse::<f64>().unwrap_or_else(|_| panic!("{name}: not a number: {v}"))).unwrap_or(default)
    };
    let o = Opts {
        services: num("--services", 10_000.0) as usize,
        seconds: num("--seconds", 30.0).clamp(1.0, 600.0),
        warm: num("--warm", 8.0).clamp(0.0, 120.0),
        rate: num("--rate", 10.0).clamp(0.1, 100.0),
        flap: (num("--flap", 1.0) as usize).clamp(1, 200),
        check_interval: num("--check-interval", 3.0),
        resync: num("--resync", 1.0) as u64,
        instruction_limit: arg("--instruction-limit").map(|v| v.parse().expect("--instruction-limit")),
        kernel: args.iter().any(|a| a == "--kernel"),
        quiet: false,
        vrrp_rt: arg("--vrrp-rt").map(|v| v.parse().expect("--vrrp-rt: a priority, 1..99")),
    };
    let baseline = num("--baseline", 10.0).clamp(0.0, 600.0);
    let rounds = (num("--rounds", 1.0) as usize).clamp(1, 10);
    let ours = arg("--lvsd").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lvsd")));
    let mut bins = vec![(arg("--lvsd-label").unwrap_or_else(|| "lvsd".into()), ours)];
    if let Some(p) = arg("--peer") {
        bins.push((arg("--peer-label").unwrap_or_else(|| "peer".into()), PathBuf::from(p)));
    }

    println!("# Heartbeat benchmark: master's adverts (v3, advert {} ms) under load", ADVERT * 1e3);
    println!("machine: {}", support::machine());
    println!(
        "load: {} services resynced every {} s ({}), {} reals with a flapping Lua check every {} s and a runaway on_up/on_down hook (instruction limit: {}), `lvsd status` and a metrics scrape {} times a second each; {} s window after {} s warm-up",
        o.services,
        o.resync,
        if o.kernel { "kernel IPVS" } else { "in-memory IPVS, --dry-run" },
        o.flap,
        o.check_interval,
        o.instruction_limit.map(|n| n.to_string()).unwrap_or_else(|| "the daemon's default".into()),
        o.rate,
        o.seconds,
        o.warm
    );
    if let Some(p) = o.vrrp_rt {
        println!("the daemons' lvsd-vrrp thread, where there is one, runs in SCHED_FIFO at priority {p}");
    }
    let lan = Lan::new("hb", 3).expect("namespaces");
    for (h, a) in [(0, MASTER_IP), (1, BACKUP_IP), (2, Ipv4Addr::new(192, 0, 2, 3))] {
        lan.host(h).ip(&["addr", "add", &format!("{a}/24"), "dev", "eth0"]).unwrap();
    }
    let cap = Capture::start(lan.host(2), "eth0");
    let tap = Capture::start(lan.host(0), "eth0");
    let mut rows = Vec::new();
    if baseline > 0.0 {
        let q = Opts { quiet: true, seconds: baseline, ..o.clone() };
        for (label, bin) in &bins {
            rows.push(run_one(&lan, &cap, &tap, bin, &format!("{label}, baseline: table and resync only"), &q));
        }
    }
    for _ in 0..rounds {
        for (label, bin) in &bins {
            rows.push(run_one(&lan, &cap, &tap, bin, label, &o));
        }
    }

    println!("\n## Gaps between the master's adverts on the wire, ms");
    println!(
        "| binary | load average | adverts | largest gap | 99th percentile | median | later than {:.0} ms | at the master's eth0: largest / later | adverts from the backup | backup transitions | master priority changes | hooks stopped by a limit | health changes | master CPU, % of a core | capture drops |",
        (ADVERT + LATE) * 1e3
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let mut g = r.gaps.clone();
        g.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let late = g.iter().filter(|&&x| x > ADVERT + LATE).count();
        let opt = |x: Option<usize>| x.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "| {} | {} | {} | **{}** | {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            r.load_avg,
            r.adverts,
            ms(g.last().copied().unwrap_or(f64::NAN)),
            ms(percentile(&g, 0.99)),
            ms(percentile(&g, 0.5)),
            late,
            ms(r.sent_gaps.iter().copied().fold(f64::NAN, f64::max)),
            r.sent_gaps.iter().filter(|&&x| x > ADVERT + LATE).count(),
            r.backup_adverts,
            r.backup_transitions.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            r.master_prio_changes,
            opt(r.hooks_stopped),
            opt(r.health_events),
            r.cpu.map(|c| format!("{:.0}", c * 100.0)).unwrap_or_else(|| "-".into()),
            r.drops
        );
    }
    println!("\n## The load's requests: answered of requested (skipped: {IN_FLIGHT} already waiting); round trip median / max, ms");
    println!("| binary | `lvsd status` | metrics scrape |");
    println!("|---|---|---|");
    for r in &rows {
        println!("| {} | {} | {} |", r.label, load_cell(&r.status), load_cell(&r.scrapes));
    }
}
