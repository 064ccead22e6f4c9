//! `lvsd lab`: the production setup rehearsed on one machine. Two directors running lvsd with
//! one shared policy, real servers prepared with `lvsd realserver up` serving HTTP, and a
//! client, each in a network namespace of its own on a bridged LAN; a bounded client load
//! runs through the VIP while a scenario plays; then a timeline and a summary.
//!
//! Namespaces and processes are owned by guards and removed when the lab ends, also on
//! failure and on Ctrl-C.

pub mod ecmp;
pub mod http;
pub mod longlived;
mod observe;
pub mod policy;
pub mod report;
pub mod vm;

use crate::net::netns::{self, Netns};
use observe::Shared;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Dr,
    Nat,
    Tun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Every scenario below, in turn.
    All,
    /// The master is killed (SIGKILL), then comes back.
    Kill,
    /// The master stops gracefully (SIGTERM), then comes back.
    Stop,
    /// The master's link goes down, then up.
    Link,
    /// kill, stop and link (the director failures), without real and reload.
    Failover,
    /// A real server dies and returns.
    Real,
    /// A weight change in the policy, hot-reloaded on both directors.
    Reload,
}

/// How the directors stand in front of the reals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Topology {
    /// Two directors, one VIP moved by VRRP (the classic pair).
    Pair,
    /// N active directors behind a BIRD router's ECMP route, announcing over BGP (ecmp.rs).
    Ecmp,
}

/// How the ecmp topology's router notices a dead director.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Detect {
    /// BFD on every BGP session (what a production site runs).
    Bfd,
    /// The BGP hold timer alone (an emulated guest stalls longer than BFD allows).
    Hold,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub topology: Topology,
    /// Directors of the ecmp topology (the pair has two).
    pub directors: usize,
    /// The ecmp topology's scheduler (None: mh).
    pub scheduler: Option<String>,
    /// How the ecmp topology's router detects a dead director (None: BFD, or the hold timer
    /// when the lab runs in the emulated guest).
    pub detect: Option<Detect>,
    pub mode: Mode,
    pub reals: usize,
    pub requests: usize,
    pub scenario: Scenario,
    pub policy: Option<PathBuf>,
    pub json: bool,
    pub verify: bool,
    /// Long-lived connections and the sync daemon.
    pub long: longlived::Args,
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{0}")]
    Setup(String),
    #[error("interrupted")]
    Interrupted,
}

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> LabError + '_ {
    move |e| LabError::Setup(format!("{what}: {e}"))
}

/// The client's source addresses (last octet in 198.51.100.0/24): clear of the directors,
/// the VIPs and the reals. Each phase takes fresh ones (see `run`).
fn source_pool() -> Vec<u8> {
    (20..100).chain(200..255).collect()
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Err once ^C came: every wait of a lab checks it.
fn interrupted() -> Result<(), LabError> {
    if INTERRUPTED.load(Ordering::SeqCst) { Err(LabError::Interrupted) } else { Ok(()) }
}

/// Poll `cond` every 50 ms for at most `limit`: Ok(true) once it holds, Ok(false) when the
/// time is up, Err on ^C.
fn poll_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Result<bool, LabError> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        interrupted()?;
        if cond() {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(false)
}

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// A child process killed when dropped.
struct Proc {
    name: String,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Fields drop in declaration order: the process before its namespace.
struct Director {
    proc: Option<Proc>,
    name: String,
    ns: Netns,
    socket: PathBuf,
}

struct Real {
    http: Option<Proc>,
    name: String,
    ns: Netns,
    addr: String,
}

/// One phase of the rehearsal, with what was seen during it.
#[derive(Debug, Clone)]
struct Phase {
    name: String,
    what: String,
    start: Duration,
    end: Duration,
}

struct Lab {
    opts: Options,
    t0: Instant,
    epoch0: f64,
    dir: PathBuf,
    exe: PathBuf,
    plan: policy::Plan,
    policy_file: PathBuf,
    // Drop order: processes first (fields drop in declaration order), then namespaces.
    directors: Vec<Director>,
    reals: Vec<Real>,
    client: Netns,
    /// The LAN bridges; kept until the end so the links stay up.
    _switches: Vec<Netns>,
    phases: Vec<Phase>,
    notes: Vec<(Duration, String)>,
    shared: Arc<Shared>,
}

fn plug(host: &Netns, ifname: &str, switch: &Netns, port: &str) -> Result<(), LabError> {
    host.ip(&["link", "add", ifname, "type", "veth", "peer", "name", port, "netns", switch.name()]).map_err(setup("veth"))?;
    netns::attach(switch, port, "br0").map_err(setup("bridge port"))?;
    switch.ip(&["link", "set", port, "up"]).map_err(setup("port up"))?;
    host.ip(&["link", "set", ifname, "up"]).map_err(setup("link up"))?;
    Ok(())
}

fn now_epoch() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Spawn `f` on a thread that has entered namespace `ns` first.
fn spawn_in<F: FnOnce() + Send + 'static>(ns: &str, f: F) -> std::thread::JoinHandle<()> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let Ok(file) = std::fs::File::open(&path) else { return };
        // SAFETY: setns on this thread only; the fd is valid for the call.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return;
        }
        f()
    })
}

impl Lab {
    fn note(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        if !self.opts.json {
            println!("[{:7.2}s] {msg}", self.t0.elapsed().as_secs_f64());
        }
        self.notes.push((self.t0.elapsed(), msg));
    }

    fn lvsd(&self, ns: &Netns, args: &[&str], log: &Path) -> Result<Child, LabError> {
        let log = std::fs::File::create(log).map_err(setup("log file"))?;
        Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(&self.exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(setup("log file"))?)
            .stderr(log)
            .spawn()
            .map_err(setup("start lvsd"))
    }

    fn build(opts: Options) -> Result<Lab, LabError> {
        let exe = std::env::current_exe().map_err(setup("own executable"))?;
        let dir = PathBuf::from(format!("/run/lvsd/lab-{}", std::process::id()));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(setup("lab directory"))?;
        }
        let plan = policy::plan(opts.mode, opts.reals);
        let policy_src = match &opts.policy {
            Some(p) => std::fs::read_to_string(p).map_err(setup("policy"))?,
            None => {
                let seed = match opts.mode {
                    Mode::Nat => include_str!("../../policies/seed-nat.lua"),
                    _ => include_str!("../../policies/seed-dr.lua"),
                };
                policy::from_seed(seed, opts.mode, &plan)
            }
        };
        let policy_src = longlived::policy(&policy_src, &opts.long);
        let policy_file = dir.join("policy.lua");
        std::fs::write(&policy_file, &policy_src).map_err(setup("policy"))?;

        let id = std::process::id();
        let ns = |n: &str| Netns::create(&format!("lab{id}-{n}")).map_err(setup("namespace"));
        let public = ns("lan")?;
        netns::bridge(&public, "br0").map_err(setup("bridge"))?;
        let mut switches = vec![public];
        let private = if opts.mode == Mode::Nat {
            let p = ns("lan2")?;
            netns::bridge(&p, "br0").map_err(setup("bridge"))?;
            Some(p)
        } else {
            None
        };
        let client = ns("client")?;
        plug(&client, "eth0", &switches[0], "pc")?;
        client.ip(&["addr", "add", "198.51.100.5/24", "dev", "eth0"]).map_err(setup("address"))?;
        for n in source_pool() {
            client.ip(&["addr", "add", &format!("198.51.100.{n}/24"), "dev", "eth0"]).map_err(setup("address"))?;
        }
        let mut directors = Vec::new();
        for (i, name) in ["lvs01", "lvs02"].iter().enumerate() {
            let d = ns(name)?;
            plug(&d, "eth0", &switches[0], &format!("pd{i}"))?;
            d.ip(&["addr", "add", &format!("198.51.100.{}/24", 11 + i), "dev", "eth0"]).map_err(setup("address"))?;
            if let Some(p) = &private {
                plug(&d, "eth1", p, &format!("qd{i}"))?;
                d.ip(&["addr", "add", &format!("203.0.113.{}/24", 2 + i), "dev", "eth1"]).map_err(setup("address"))?;
                d.exec("sysctl", &["-qw", "net.ipv4.ip_forward=1"]).map_err(setup("ip_forward"))?;
            }
            // IPVS keeps per-connection state the backup does not have; let the backup's
            // table take over connections it has not seen (as production directors do).
            let _ = d.exec("sysctl", &["-qw", "net.ipv4.vs.conntrack=1"]);
            directors.push(Director { name: name.to_string(), ns: d, socket: dir.join(format!("{name}.sock")), proc: None });
        }
        let mut reals = Vec::new();
        for (i, addr) in plan.reals.iter().enumerate() {
            let name = format!("rs{}", i + 1);
            let r = ns(&name)?;
            match &private {
                Some(p) => {
                    plug(&r, "eth0", p, &format!("qr{i}"))?;
                    r.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"]).map_err(setup("address"))?;
                    r.ip(&["route", "add", "default", "via", plan.gateway.as_deref().unwrap_or("")]).map_err(setup("route"))?;
                }
                None => {
                    plug(&r, "eth0", &switches[0], &format!("pr{i}"))?;
                    r.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"]).map_err(setup("address"))?;
                }
            }
            reals.push(Real { name, ns: r, addr: addr.clone(), http: None });
        }
        if let Some(p) = private {
            switches.push(p);
        }
        Ok(Lab {
            opts,
            t0: Instant::now(),
            epoch0: now_epoch(),
            dir,
            exe,
            plan,
            policy_file,
            directors,
            reals,
            client,
            _switches: switches,
            phases: Vec::new(),
            notes: Vec::new(),
            shared: Arc::new(Shared::default()),
        })
    }

    fn start_director(&mut self, i: usize) -> Result<(), LabError> {
        let d = &self.directors[i];
        let log = self.dir.join(format!("{}.log", d.name));
        let child = self.lvsd(
            &d.ns,
            &["run", "-p", self.policy_file.to_str().unwrap(), "--node", &d.name, "--control", d.socket.to_str().unwrap(), "--resync", "2"],
            &log,
        )?;
        self.directors[i].proc = Some(Proc { name: self.directors[i].name.clone(), child });
        let name = self.directors[i].name.clone();
        self.note(format!("{name}: lvsd started"));
        Ok(())
    }

    fn start_http(&mut self, i: usize) -> Result<(), LabError> {
        let r = &self.reals[i];
        let log = self.dir.join(format!("{}-http.log", r.name));
        let child = self.lvsd(&r.ns, &["lab-http", "--name", &r.name, "--port", &self.plan.port.to_string()], &log)?;
        self.reals[i].http = Some(Proc { name: self.reals[i].name.clone(), child });
        Ok(())
    }

    fn prepare_reals(&mut self) -> Result<(), LabError> {
        for i in 0..self.reals.len() {
            if self.opts.mode != Mode::Nat {
                let r = &self.reals[i];
                let mut args = vec!["realserver", "up", "--vip", self.plan.vip.as_str(), "--state-dir"];
                let sd = self.dir.join(format!("{}-state", r.name));
                args.push(sd.to_str().unwrap());
                if self.opts.mode == Mode::Tun {
                    args.extend(["--mode", "tun"]);
                }
                let out = Command::new("ip")
                    .args(["netns", "exec", r.ns.name()])
                    .arg(&self.exe)
                    .args(&args)
                    .output()
                    .map_err(setup("lvsd realserver"))?;
                if !out.status.success() {
                    return Err(LabError::Setup(format!("{}: lvsd realserver up: {}", r.name, String::from_utf8_lossy(&out.stderr))));
                }
            }
            self.start_http(i)?;
        }
        let n = self.reals.len();
        let what = if self.opts.mode == Mode::Nat {
            "default route via the gateway VIP"
        } else {
            "lvsd realserver up (VIP on lo, ARP suppressed)"
        };
        self.note(format!("{n} real servers: {what}, HTTP on port {}", self.plan.port));
        Ok(())
    }

    /// The director's status document, if it answers.
    fn status(&self, i: usize) -> Option<Value> {
        let mut c = crate::control::client::Client::connect(&self.directors[i].socket).ok()?;
        let r = c.call(crate::control::Command::Status { text_only: false, brief: false }).ok()?;
        r.result
    }

    fn vrrp_state_of(&self, d: &Director) -> String {
        self.directors.iter().position(|x| x.name == d.name).map(|i| self.vrrp_state(i)).unwrap_or_default()
    }

    fn vrrp_state(&self, i: usize) -> String {
        self.status(i).and_then(|s| s["vrrp"].get(0).and_then(|v| v["state"].as_str()).map(str::to_string)).unwrap_or_else(|| "down".into())
    }

    /// Wait (bounded) until `cond` holds, polling every 50 ms.
    fn wait(&self, what: &str, limit: Duration, cond: impl Fn(&Lab) -> bool) -> Result<(), LabError> {
        if poll_until(limit, || cond(self))? {
            return Ok(());
        }
        let mut msg = format!("timed out after {limit:?} waiting for {what}");
        for d in &self.directors {
            let log = std::fs::read_to_string(self.dir.join(format!("{}.log", d.name))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(12).collect();
            msg.push_str(&format!("\n--- {} (state {}), last lines of its log:\n", d.name, self.vrrp_state_of(d)));
            for l in tail.iter().rev() {
                msg.push_str(l);
                msg.push('\n');
            }
        }
        Err(LabError::Setup(msg))
    }

    fn real_health(&self, i: usize, real: &str) -> Option<String> {
        let st = self.status(i)?;
        st["services"].get(0)?["reals"]
            .as_array()?
            .iter()
            .find(|r| r["address"].as_str().is_some_and(|a| a.starts_with(real)))
            .map(|r| if r["in_table"] == true { "in".to_string() } else { "out".to_string() })
    }

    /// Run the load for `secs` in a named phase.
    fn phase<F>(&mut self, name: &str, what: &str, action: F) -> Result<(), LabError>
    where
        F: FnOnce(&mut Lab) -> Result<(), LabError>,
    {
        interrupted()?;
        // What the backup holds, read before the phase (and its fault) begins.
        if ["kill", "stop", "link-down"].contains(&name) && self.opts.long.long_lived > 0 {
            self.note_backup_table(1)?;
        }
        let idx = self.phases.len();
        self.shared.phase.store(idx, Ordering::SeqCst);
        let start = self.t0.elapsed();
        self.phases.push(Phase { name: name.into(), what: what.into(), start, end: start });
        self.note(format!("phase {name}: {what}"));
        action(self)?;
        self.phases[idx].end = self.t0.elapsed();
        Ok(())
    }

    fn settle(&self, secs: f64) -> Result<(), LabError> {
        poll_until(Duration::from_secs_f64(secs), || false).map(drop)
    }

    fn play(&mut self) -> Result<(), LabError> {
        const STEADY: f64 = 2.0;
        // Generous: under TCG on a busy machine a reload or takeover can take several seconds.
        let t = Duration::from_secs(45);
        self.phase("baseline", "both directors up, all reals healthy", |l| l.settle(STEADY))?;
        let s = self.opts.scenario;
        for (scenario, sig, name, what) in [
            (Scenario::Kill, libc::SIGKILL, "kill", "SIGKILL the master (lvs01)"),
            (Scenario::Stop, libc::SIGTERM, "stop", "SIGTERM the master (graceful: priority 0)"),
        ] {
            if !matches!(s, Scenario::All | Scenario::Failover) && s != scenario {
                continue;
            }
            self.phase(name, what, |l| {
                if let Some(mut p) = l.directors[0].proc.take() {
                    unsafe { libc::kill(p.child.id() as i32, sig) };
                    let _ = p.child.wait();
                }
                l.wait("lvs02 to become master", t, |l| l.vrrp_state(1) == "master")?;
                l.note("lvs02 is master");
                // Long enough that requests through the backup are seen even after one that
                // was cut mid-way has waited out its timeout.
                l.settle(2.0 * STEADY)
            })?;
            self.phase(&format!("return-{name}"), "lvs01 restarts and preempts", |l| {
                l.start_director(0)?;
                l.wait("lvs01 master again", t, |l| l.vrrp_state(0) == "master")?;
                l.note("lvs01 is master again");
                l.settle(STEADY)
            })?;
        }
        if matches!(s, Scenario::All | Scenario::Failover | Scenario::Link) {
            self.phase("link-down", "the master's eth0 goes down", |l| {
                l.directors[0].ns.ip(&["link", "set", "eth0", "down"]).map_err(setup("link down"))?;
                l.wait("lvs02 to become master", t, |l| l.vrrp_state(1) == "master")?;
                l.note(format!("lvs01 is {}, lvs02 is master", l.vrrp_state(0)));
                l.settle(2.0 * STEADY)
            })?;
            self.phase("link-up", "the master's eth0 comes back", |l| {
                l.directors[0].ns.ip(&["link", "set", "eth0", "up"]).map_err(setup("link up"))?;
                l.wait("lvs01 master again", t, |l| l.vrrp_state(0) == "master")?;
                l.settle(STEADY)
            })?;
        }
        if matches!(s, Scenario::All | Scenario::Real) {
            let rs = format!("{}:{}", self.reals[0].addr, self.plan.port);
            let rs2 = rs.clone();
            self.phase("real-down", "rs1's web server dies", move |l| {
                l.reals[0].http = None;
                l.wait("rs1 to leave the table", t, |l| l.real_health(0, &rs).as_deref() == Some("out"))?;
                l.note("rs1 removed from the IPVS table");
                l.settle(STEADY)
            })?;
            self.phase("real-up", "rs1's web server returns", move |l| {
                l.start_http(0)?;
                l.wait("rs1 back in the table", t, |l| l.real_health(0, &rs2).as_deref() == Some("in"))?;
                l.note("rs1 back in the IPVS table");
                Ok(())
            })?;
            // New clients (fresh sources: persistence keeps the old ones where they were).
            self.phase("real-back", "rs1 serves new clients again", |l| l.settle(STEADY))?;
        }
        if matches!(s, Scenario::All | Scenario::Reload) && self.reals.len() >= 2 {
            let rs2 = format!("{}:{}", self.reals[1].addr, self.plan.port);
            self.phase("reload", "policy edit: rs2 weight 1 -> 3, hot-reloaded on both directors", move |l| {
                let before: Vec<u64> = (0..2).map(|i| l.status(i).map(|s| s["generation"].as_u64().unwrap_or(0)).unwrap_or(0)).collect();
                let src = std::fs::read_to_string(&l.policy_file).map_err(setup("policy"))?;
                let tmp = l.policy_file.with_extension("tmp");
                std::fs::write(&tmp, policy::with_weight(&src, &rs2, 3)).map_err(setup("policy"))?;
                std::fs::rename(&tmp, &l.policy_file).map_err(setup("policy"))?;
                l.wait("both directors to reload", t, |l| {
                    (0..2).all(|i| l.status(i).is_some_and(|s| s["generation"].as_u64().unwrap_or(0) > before[i]))
                })?;
                let weights: Vec<String> = (0..2)
                    .map(|i| {
                        let w = l.status(i).and_then(|s| {
                            s["services"][0]["reals"].as_array()?.iter().find(|r| r["address"] == rs2.as_str())?["weight"].as_u64()
                        });
                        format!("{} {}", l.directors[i].name, w.map(|w| w.to_string()).unwrap_or("-".into()))
                    })
                    .collect();
                l.note(format!("both directors reloaded; rs2 weight in the tables: {}", weights.join(", ")));
                Ok(())
            })?;
            self.phase("reloaded", "new clients under the new weights", |l| l.settle(STEADY * 2.0))?;
        }
        Ok(())
    }

    fn director_events(&self) -> Vec<(Duration, String)> {
        let mut out = Vec::new();
        for (i, d) in self.directors.iter().enumerate() {
            let Ok(mut c) = crate::control::client::Client::connect(&d.socket) else { continue };
            let Ok(r) = c.call(crate::control::Command::Events { limit: Some(1000) }) else { continue };
            for e in r.result.unwrap_or_default().as_array().into_iter().flatten() {
                let at = e["at"].as_f64().unwrap_or(0.0) - self.epoch0;
                let kind = e["kind"].as_str().unwrap_or("");
                if at >= 0.0
                    && ["vrrp", "reload", "reload_failed", "health", "ipvs_error", "preempt_wait", "sync_daemon_error"].contains(&kind)
                {
                    out.push((Duration::from_secs_f64(at), format!("{}: {}", self.directors[i].name, e["message"].as_str().unwrap_or(""))));
                }
            }
        }
        out
    }
}

/// Failovers seen on the wire: the new master's first advert after the old one's last.
/// During a preemption both routers advertise for a moment; a change counts only once the
/// next advert comes from the new master too.
fn failovers(adverts: &[observe::Advert], vrid: u8) -> Vec<(Duration, IpAddr, IpAddr, Duration)> {
    let ads: Vec<&observe::Advert> = adverts.iter().filter(|a| a.vrid == vrid && a.priority > 0).collect();
    let mut out = Vec::new();
    let mut master: Option<IpAddr> = ads.first().map(|a| a.src);
    for w in ads.windows(2) {
        let (prev, a) = (w[0], w[1]);
        if Some(a.src) == master || prev.src == a.src {
            continue;
        }
        let confirmed = ads.iter().skip_while(|x| !std::ptr::eq(**x, a)).nth(1).is_none_or(|next| next.src == a.src);
        if confirmed {
            out.push((a.at, master.unwrap_or(prev.src), a.src, a.at.saturating_sub(prev.at)));
            master = Some(a.src);
        }
    }
    out
}

pub fn run(opts: Options) -> Result<Value, LabError> {
    if opts.topology == Topology::Ecmp {
        return ecmp::run(opts);
    }
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    let mut lab = Lab::build(opts)?;
    lab.note(format!(
        "topology: {:?} mode, VIP {}:{}, directors lvs01 (198.51.100.11) and lvs02 (198.51.100.12), {} real servers, client 198.51.100.5; policy {}",
        lab.opts.mode,
        lab.plan.vip,
        lab.plan.port,
        lab.reals.len(),
        lab.opts.policy.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "seed (remapped, check timers shortened)".into())
    ));
    lab.prepare_reals()?;
    lab.start_director(0)?;
    lab.start_director(1)?;
    lab.wait("lvs01 to become master", Duration::from_secs(30), |l| l.vrrp_state(0) == "master" && l.vrrp_state(1) == "backup")?;
    lab.note("lvs01 is master, lvs02 backup");
    let vip: SocketAddr = format!("{}:{}", lab.plan.vip, lab.plan.port).parse().map_err(setup("VIP"))?;
    lab.wait("the VIP to answer", Duration::from_secs(30), |l| {
        let ok = Arc::new(AtomicBool::new(false));
        let ok2 = ok.clone();
        let _ = spawn_in(l.client.name(), move || {
            let r = std::net::TcpStream::connect_timeout(&vip, Duration::from_millis(300));
            ok2.store(r.is_ok(), Ordering::SeqCst);
        })
        .join();
        ok.load(Ordering::SeqCst)
    })?;

    // The observers: adverts on the wire and the client load.
    let shared = lab.shared.clone();
    let t0 = lab.t0;
    let wire = spawn_in(lab.client.name(), {
        let shared = shared.clone();
        move || {
            let _ = observe::adverts(shared, "eth0", t0);
        }
    });
    // A fresh set of source addresses per phase: persistence (by source address) would
    // otherwise pin every source to the real it first met, hiding weight changes.
    let max = lab.opts.requests;
    let load = spawn_in(lab.client.name(), {
        let shared = shared.clone();
        move || {
            let per_phase = 8;
            let pool = source_pool();
            let mut sent = 0;
            while sent < max && !shared.stop.load(Ordering::Relaxed) {
                let phase = shared.phase.load(Ordering::Relaxed);
                let sources: Vec<IpAddr> =
                    (0..per_phase).map(|k| IpAddr::from([198, 51, 100, pool[(phase * per_phase + k) % pool.len()]])).collect();
                let before = shared.requests.lock().unwrap().len();
                observe::client(shared.clone(), sources, vip, Duration::from_millis(20), per_phase);
                sent += shared.requests.lock().unwrap().len() - before;
            }
        }
    });
    // Each director's VRRP state over time, for the report's chart.
    let sockets: Vec<PathBuf> = lab.directors.iter().map(|d| d.socket.clone()).collect();
    let states = std::thread::spawn({
        let shared = shared.clone();
        move || observe::vrrp_states(shared, sockets, t0, Duration::from_millis(250))
    });
    // Long-lived connections: open, answered, and given the time to reach the backup.
    let n = lab.opts.long.long_lived;
    let sources: Vec<IpAddr> = source_pool().iter().rev().take(n.max(1)).map(|o| IpAddr::from([198, 51, 100, *o])).collect();
    let mut held = longlived::Held::open(lab.client.name(), sources, vip, lab.t0, n);
    if n > 0 {
        lab.wait("the long-lived connections to be answered", Duration::from_secs(30), |_| held.answered() >= n)?;
        lab.note(format!("{n} long-lived connections open (a request every 100 ms on each)"));
        lab.settle(longlived::SYNCED_AFTER.as_secs_f64())?;
    }
    let result = lab.play();
    lab.settle(0.5).ok();
    shared.stop.store(true, Ordering::SeqCst);
    held.finish();
    let _ = load.join();
    let _ = wire.join();
    let _ = states.join();
    result?;
    let mut r = report(&mut lab);
    longlived::annotate(&mut r, &held.tracker, !lab.opts.long.no_sync, n);
    Ok(r)
}

fn report(lab: &mut Lab) -> Value {
    let requests = lab.shared.requests.lock().unwrap().clone();
    let adverts = lab.shared.adverts.lock().unwrap().clone();
    let fo = failovers(&adverts, 51);
    let name_of = |ip: &IpAddr| match ip.to_string().as_str() {
        "198.51.100.11" => "lvs01".to_string(),
        "198.51.100.12" => "lvs02".to_string(),
        other => other.to_string(),
    };
    let mut timeline = lab.notes.clone();
    timeline.extend(lab.director_events());
    for (at, from, to, gap) in &fo {
        timeline.push((*at, format!("wire: VIP moved {} -> {} ({} ms without adverts)", name_of(from), name_of(to), gap.as_millis())));
    }
    timeline.sort_by_key(|(t, _)| *t);

    let reals: Vec<String> = lab.reals.iter().map(|r| r.name.clone()).collect();
    let mut phases = Vec::new();
    for (i, p) in lab.phases.iter().enumerate() {
        let rs: Vec<&observe::Request> = requests.iter().filter(|r| r.phase == i).collect();
        let failed = rs.iter().filter(|r| r.result.is_err()).count();
        let mut dist: BTreeMap<String, usize> = reals.iter().map(|r| (r.clone(), 0)).collect();
        for r in &rs {
            if let Ok(n) = &r.result {
                *dist.entry(n.clone()).or_default() += 1;
            }
        }
        let f: Vec<Value> = fo
            .iter()
            .filter(|(at, ..)| *at >= p.start && *at <= p.end + Duration::from_millis(500))
            .map(|(at, from, to, gap)| json!({ "at": at.as_secs_f64(), "from": name_of(from), "to": name_of(to), "ms": gap.as_millis() as u64 }))
            .collect();
        // Requests after the last failure of the phase that succeeded: the service is back.
        let recovered = rs.iter().rev().take_while(|r| r.result.is_ok()).count();
        // Requests sent after the VIP last moved that succeeded: the backup serves. Counted by
        // start time, so one slow request that fails late does not hide the ones that worked.
        let moved = fo.iter().filter(|(at, ..)| *at >= p.start && *at <= p.end + Duration::from_millis(500)).map(|(at, ..)| *at).max();
        let since = |r: &&observe::Request| r.at.saturating_duration_since(lab.t0);
        let served_after_move = moved.map(|m| rs.iter().filter(|r| r.result.is_ok() && since(r) >= m).count()).unwrap_or(0);
        let failed_at: Vec<f64> =
            rs.iter().filter(|r| r.result.is_err()).take(10).map(|r| (since(r).as_secs_f64() * 100.0).round() / 100.0).collect();
        phases.push(json!({
            "name": p.name, "what": p.what, "start": p.start.as_secs_f64(), "end": p.end.as_secs_f64(),
            "sent": rs.len(), "failed": failed, "ok_at_end": recovered, "ok_after_move": served_after_move, "failed_at": failed_at, "distribution": dist, "failovers": f,
            "errors": rs.iter().filter_map(|r| r.result.as_ref().err().cloned()).take(5).collect::<Vec<_>>(),
            "all_errors": rs.iter().filter_map(|r| r.result.as_ref().err().cloned()).collect::<Vec<_>>(),
        }));
    }
    let mdi = lab.status(1).and_then(|s| s["vrrp"][0]["master_down_interval_ms"].as_u64()).unwrap_or(0);
    // Requests per second of the run, by the real that answered and failed; and each
    // director's VRRP state changes: what the HTML report draws.
    let secs = requests.iter().map(|r| r.at.saturating_duration_since(lab.t0).as_secs() as usize + 1).max().unwrap_or(0);
    let mut per_real: BTreeMap<String, Vec<u64>> = reals.iter().map(|r| (r.clone(), vec![0; secs])).collect();
    let mut failed = vec![0u64; secs];
    for r in &requests {
        let s = r.at.saturating_duration_since(lab.t0).as_secs() as usize;
        match &r.result {
            Ok(n) => per_real.entry(n.clone()).or_insert_with(|| vec![0; secs])[s] += 1,
            Err(_) => failed[s] += 1,
        }
    }
    let states = lab.shared.states.lock().unwrap().clone();
    let vrrp_states: serde_json::Map<String, Value> = lab
        .directors
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let changes: Vec<Value> =
                states.iter().filter(|(_, j, _)| *j == i).map(|(at, _, st)| json!({ "at": at.as_secs_f64(), "state": st })).collect();
            (d.name.clone(), Value::Array(changes))
        })
        .collect();
    json!({
        "mode": format!("{:?}", lab.opts.mode).to_lowercase(),
        "vip": format!("{}:{}", lab.plan.vip, lab.plan.port),
        "reals": reals,
        "master_down_interval_ms": mdi,
        // rr and other weight-blind schedulers do not show weights in the distribution.
        "weighted": lab.status(0).and_then(|s| s["services"][0]["scheduler"].as_str().map(|x| !["rr", "dh", "sh", "mh", "fo"].contains(&x))).unwrap_or(false),
        "phases": phases,
        "timeline": timeline.iter().map(|(t, m)| json!({ "at": t.as_secs_f64(), "event": m })).collect::<Vec<_>>(),
        "requests": requests.len(),
        "duration": lab.t0.elapsed().as_secs_f64(),
        "per_second": { "reals": per_real, "failed": failed },
        "vrrp_states": vrrp_states,
    })
}

/// The summary table for people.
pub fn print(report: &Value) {
    if report["topology"] == "ecmp" {
        return ecmp::print(report);
    }
    println!("\nTimeline");
    for e in report["timeline"].as_array().into_iter().flatten() {
        println!("  {:8.2}s  {}", e["at"].as_f64().unwrap_or(0.0), e["event"].as_str().unwrap_or(""));
    }
    let reals: Vec<String> = report["reals"].as_array().into_iter().flatten().filter_map(|r| r.as_str().map(str::to_string)).collect();
    println!(
        "\nSummary ({} mode, VIP {}, Master_Down_Interval {} ms)",
        report["mode"].as_str().unwrap_or(""),
        report["vip"].as_str().unwrap_or(""),
        report["master_down_interval_ms"]
    );
    let mut head = format!("  {:<12} {:>6} {:>6}", "phase", "sent", "failed");
    for r in &reals {
        head.push_str(&format!(" {:>6}", r));
    }
    head.push_str("  failover on the wire");
    println!("{head}");
    for p in report["phases"].as_array().into_iter().flatten() {
        let mut line = format!("  {:<12} {:>6} {:>6}", p["name"].as_str().unwrap_or(""), p["sent"].to_string(), p["failed"].to_string());
        for r in &reals {
            line.push_str(&format!(" {:>6}", p["distribution"][r].to_string()));
        }
        let fo: Vec<String> = p["failovers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| format!("{}->{} {} ms", f["from"].as_str().unwrap_or(""), f["to"].as_str().unwrap_or(""), f["ms"]))
            .collect();
        line.push_str(&format!("  {}", if fo.is_empty() { "-".into() } else { fo.join(", ") }));
        println!("{line}");
        for e in p["errors"].as_array().into_iter().flatten().take(3) {
            println!("  {:<12}   failed: {}", "", e.as_str().unwrap_or(""));
        }
    }
    longlived::print(report);
}

/// The rehearsal's claims, checked: each with a verdict line. True when all hold.
pub fn verify(report: &Value) -> Vec<(bool, String)> {
    if report["topology"] == "ecmp" {
        return ecmp::verify(report);
    }
    let mut out = Vec::new();
    let phase = |n: &str| report["phases"].as_array().and_then(|ps| ps.iter().find(|p| p["name"] == n)).cloned();
    let mdi = report["master_down_interval_ms"].as_u64().unwrap_or(4000) as f64 / 1000.0;
    // The client sends one request at a time with a 1 s timeout: during an outage of D
    // seconds at most D/1 s + 1 requests can fail, plus one in flight at each end.
    let bound = (mdi.ceil() as u64) + 3;
    if let Some(b) = phase("baseline") {
        let all = b["distribution"].as_object().map(|d| d.values().all(|v| v.as_u64().unwrap_or(0) > 0)).unwrap_or(false);
        out.push((all && b["failed"] == 0, format!("baseline: every real server answered, none failed ({})", b["distribution"])));
    }
    for name in ["kill", "link-down"] {
        if let Some(p) = phase(name) {
            let failed = p["failed"].as_u64().unwrap_or(0);
            out.push((failed <= bound, format!("{name}: {failed} failed requests, bound {bound} (Master_Down_Interval {mdi:.2} s)")));
            let (served, failed_at) = (p["ok_after_move"].as_u64().unwrap_or(0), &p["failed_at"]);
            out.push((
                served >= 3,
                format!("{name}: requests succeed again through the backup ({served} after the VIP moved; failures at {failed_at} s)"),
            ));
            out.push((
                !p["failovers"].as_array().map(|f| f.is_empty()).unwrap_or(true),
                format!("{name}: the VIP moved on the wire ({})", p["failovers"]),
            ));
        }
    }
    if let Some(p) = phase("stop") {
        // The backup takes the VIP within its skew time, so no new request fails. Without a
        // connection sync daemon the backup does not know the one connection that may be in
        // flight at the moment of the stop: that one can be reset, as with keepalived.
        let errors: Vec<&str> = p["all_errors"].as_array().into_iter().flatten().filter_map(|e| e.as_str()).collect();
        let new_failed = errors.iter().filter(|e| e.starts_with("connect") || e.starts_with("bind")).count();
        out.push((
            new_failed == 0 && errors.len() <= 1,
            format!(
                "stop: a graceful stop fails no new request ({new_failed} failed to connect; {} in-flight reset, at most 1 allowed)",
                errors.len() - new_failed
            ),
        ));
    }
    if let Some(p) = phase("real-down") {
        let rs1 = p["distribution"]["rs1"].as_u64().unwrap_or(0);
        out.push((
            p["ok_at_end"].as_u64().unwrap_or(0) >= 3,
            format!("real-down: the service keeps answering without rs1 (rs1 got {rs1} before removal)"),
        ));
    }
    if let Some(p) = phase("real-back") {
        out.push((
            p["distribution"]["rs1"].as_u64().unwrap_or(0) > 0,
            format!("real-back: rs1 receives requests again ({})", p["distribution"]),
        ));
    }
    if phase("reload").is_some() {
        let reloaded = report["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["event"].as_str().is_some_and(|m| m.contains("rs2 weight in the tables: lvs01 3, lvs02 3")));
        out.push((reloaded, "reload: both directors reloaded and put rs2 at weight 3".to_string()));
    }
    out.extend(longlived::verify(report));
    if let Some(p) = phase("reloaded") {
        let (a, b) = (p["distribution"]["rs1"].as_u64().unwrap_or(0), p["distribution"]["rs2"].as_u64().unwrap_or(0));
        if report["weighted"] == true {
            out.push((b > a, format!("reloaded: rs2 (weight 3) gets more than rs1 (weight 1): {b} vs {a}")));
        }
    }
    out
}

/// Namespaces this lab run left behind (should be none).
pub fn leftovers(pid: u32) -> Vec<String> {
    let prefix = format!("lab{pid}-");
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(&prefix)).collect()
        })
        .unwrap_or_default()
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Stop the directors gracefully first (their VIPs go), then everything else.
        for d in &mut self.directors {
            if let Some(p) = d.proc.as_mut() {
                unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
                let end = Instant::now() + Duration::from_secs(3);
                while Instant::now() < end {
                    if let Ok(Some(_)) = p.child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                tracing::debug!("stopped {}", p.name);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad(ms: u64, src: u8) -> observe::Advert {
        observe::Advert { at: Duration::from_millis(ms), src: IpAddr::from([198, 51, 100, src]), vrid: 51, priority: 100 }
    }

    #[test]
    fn a_kill_is_one_failover_with_the_silent_gap() {
        let ads = [ad(0, 11), ad(1000, 11), ad(4700, 12), ad(5700, 12)];
        let f = failovers(&ads, 51);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].3, Duration::from_millis(3700));
    }

    #[test]
    fn a_graceful_stop_may_reset_only_the_request_in_flight() {
        let report =
            |errors: &[&str]| json!({ "phases": [{ "name": "stop", "failed": errors.len(), "failovers": [], "all_errors": errors }] });
        let verdict = |errors: &[&str]| verify(&report(errors)).iter().find(|(_, l)| l.starts_with("stop:")).unwrap().0;
        assert!(verdict(&[]));
        assert!(verdict(&["read: Connection reset by peer (os error 104)"]));
        assert!(!verdict(&["connect: timed out"]), "a new request failing means the VIP was unreachable");
        assert!(!verdict(&["read: reset", "read: reset"]), "one client has at most one request in flight");
    }

    #[test]
    fn the_backup_serves_when_requests_sent_after_the_move_succeed() {
        let report = |served: u64| json!({ "phases": [{ "name": "kill", "failed": 2, "ok_at_end": 0, "ok_after_move": served, "failed_at": [10.5, 21.0], "failovers": [{ "ms": 3600 }] }] });
        let verdict = |served| verify(&report(served)).into_iter().find(|(_, l)| l.contains("succeed again")).unwrap();
        // A slow request failing at the end of the phase does not hide the ones that worked.
        assert!(verdict(12).0);
        assert!(verdict(12).1.contains("failures at [10.5,21.0] s"), "{}", verdict(12).1);
        assert!(!verdict(2).0);
    }

    #[test]
    fn a_preemption_flutter_is_one_failover() {
        let ads = [ad(0, 12), ad(1000, 12), ad(1400, 11), ad(1410, 12), ad(1420, 11), ad(2420, 11)];
        let f = failovers(&ads, 51);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].2, IpAddr::from([198, 51, 100, 11]));
    }
}
