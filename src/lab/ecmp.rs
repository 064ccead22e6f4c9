//! `lvsd lab --topology ecmp`: scale-out rehearsed on one machine. A router (BIRD) peers over
//! eBGP with N directors, each running its own BIRD and lvsd with one shared policy
//! (`lvsd.bgp`, `mh`, DR, the sync daemon on every director); the router's kernel route to
//! the VIP has one next hop per announcing director, chosen per flow by an L4 hash
//! (`fib_multipath_hash_policy = 1`). A client behind the router sends short requests and
//! holds long-lived connections while the phases play: baseline, drain one director
//! (`drain-director`), undrain, a director dies (its link goes down, lvsd and BIRD get
//! SIGKILL: no BGP notification reaches the router, whose hold timer detects it), it comes
//! back, a real server dies, and one lvsd gets SIGTERM (it withdraws the VIP before it stops).
//!
//! Measured per phase: requests and new connections seen on each director's link (a packet
//! socket per director), the real of each answer, broken long-lived connections, failed
//! requests, and the time from the fault to the router's kernel route change (`ip -o monitor
//! route` in the router) and to the traffic moving on the wire.

pub mod wire;

use super::longlived::{self, Tracker};
use super::observe::{self, Shared};
use super::{LabError, Options, Proc, setup, source_pool, spawn_in};
use crate::net::netns::{self, Netns};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wire::Seen;

pub const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub const PORT: u16 = 80;
const ROUTER: &str = "192.0.2.1";
const ROUTER_AS: u32 = 65000;
const DIRECTOR_AS: u32 = 65001;
/// BGP timers: the router notices a dead director when the hold time passes without a
/// keepalive. BIRD's smallest hold time is 3 s; TCG on a busy host can stall a BIRD for a
/// second or more, so a little more than that. (BFD would detect in well under a second, but
/// its 100 ms-scale timers flap under TCG.)
pub const HOLD: u32 = 4;
pub const KEEPALIVE: u32 = 1;
/// How long each phase runs after its fault has taken effect.
const STEADY: f64 = 3.0;
/// The most directors (addresses 192.0.2.2..) and reals (192.0.2.11..) the lab lays out.
pub const MAX_DIRECTORS: usize = 8;
pub const MAX_REALS: usize = 8;
/// Sources of the short requests (mh hashes the source address).
const SOURCES: usize = 16;

/// The short requests' source addresses (from the lab's pool, clear of the long-lived ones).
fn sources(long_lived: usize) -> Vec<IpAddr> {
    let pool = source_pool();
    let n = SOURCES.min(pool.len().saturating_sub(long_lived.max(1)));
    pool.iter().take(n.max(1)).map(|o| IpAddr::from([198, 51, 100, *o])).collect()
}

/// The long-lived connections' sources: one each, from the pool's other end.
fn long_sources(long_lived: usize) -> Vec<IpAddr> {
    source_pool().iter().rev().take(long_lived.max(1)).map(|o| IpAddr::from([198, 51, 100, *o])).collect()
}

fn director_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 2 + i as u8)
}

fn real_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 11 + i as u8)
}

/// Locally administered MAC addresses: a forwarded SYN's destination names its real.
fn real_mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x02, i as u8 + 1]
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn director_name(i: usize) -> String {
    format!("lvs{:02}", i + 1)
}

/// The one policy every director runs (`--node lvsNN` picks its router id and files).
pub fn policy(dir: &Path, directors: usize, reals: usize, sync: bool) -> String {
    let ids: Vec<String> = (0..directors).map(|i| format!("{} = \"{}\"", director_name(i), director_addr(i))).collect();
    let rs: Vec<String> = (0..reals).map(|i| format!("\"{}:{PORT}\"", real_addr(i))).collect();
    let mut s = format!(
        "-- lvsd lab --topology ecmp: every director announces the VIP to the router while it can serve it.\n\
         local ids = {{ {ids} }}\n\
         local here = \"{dir}/\" .. lvsd.node\n\
         lvsd.bgp {{\n  socket = here .. \"/bird.ctl\", include = here .. \"/lvsd.conf\",\n  local_as = {DIRECTOR_AS}, router_id = ids[lvsd.node],\n  \
         neighbors = {{ {{ address = \"{ROUTER}\", as = {ROUTER_AS}, hold = {HOLD}, keepalive = {KEEPALIVE} }} }},\n}}\n\
         -- mh gives every director the same choice of real for a flow; DR sends the answers past the directors.\n\
         lvsd.service \"web\" {{\n  vip = \"{VIP}:{PORT}\", scheduler = \"mh\", forward = \"dr\", announce = true,\n  \
         check = lvsd.check.tcp {{ interval = 0.5, timeout = 1, retries = 0 }},\n  reals = {{ {rs} }},\n}}\n",
        ids = ids.join(", "),
        dir = dir.display(),
        rs = rs.join(", "),
    );
    if sync {
        s.push_str("-- Every director runs the master and the backup daemon: each learns the others' connections.\n");
        s.push_str("lvsd.sync_daemon { interface = \"eth0\", id = 52 }\n");
    }
    s
}

/// The router's BIRD: one eBGP session per director, the merged (ECMP) route into the kernel.
pub fn router_bird(dir: &Path, directors: usize) -> String {
    let mut s = format!(
        "log \"{}/router-bird.log\" all;\nrouter id {ROUTER};\nprotocol device {{ scan time 1; }}\n\
         protocol kernel {{ merge paths on; ipv4 {{ import none; export all; }}; }}\n",
        dir.display()
    );
    for i in 0..directors {
        s.push_str(&format!(
            "protocol bgp {} {{ local as {ROUTER_AS}; neighbor {} as {DIRECTOR_AS}; hold time {HOLD}; keepalive time {KEEPALIVE}; \
             connect delay time 1; connect retry time 1; error wait time 1, 2; ipv4 {{ import all; export none; }}; }}\n",
            director_name(i),
            director_addr(i)
        ));
    }
    s
}

/// A director's BIRD: what lvsd writes (its include file) and nothing else.
pub fn director_bird(dir: &Path, name: &str) -> String {
    format!("log \"{0}/{name}/bird.log\" all;\nprotocol device {{ scan time 1; }}\ninclude \"{0}/{name}/lvsd.conf\";\n", dir.display())
}

struct Director {
    // Processes before the namespace (fields drop in declaration order).
    lvsd: Option<Proc>,
    bird: Option<Proc>,
    name: String,
    ns: Netns,
    dir: PathBuf,
    socket: PathBuf,
}

struct Real {
    http: Option<Proc>,
    name: String,
    ns: Netns,
}

#[derive(Debug, Clone)]
struct Phase {
    name: String,
    what: String,
    start: Duration,
    end: Duration,
    /// When the fault was made, and to which director.
    fault: Option<Duration>,
    target: Option<usize>,
    /// When the target's lvsd had exited (the stop phase).
    exited: Option<Duration>,
}

/// What the wire watchers record.
#[derive(Default)]
struct Watch {
    /// (when, director, what)
    frames: Mutex<Vec<(Duration, usize, Seen)>>,
    /// The router's next hops for the VIP after each change, from `ip monitor`.
    routes: Mutex<Vec<(Duration, Vec<Ipv4Addr>)>>,
    stop: AtomicBool,
}

struct Lab {
    opts: Options,
    t0: Instant,
    /// The wall clock at `t0` (the kernel stamps frames with it).
    epoch0: f64,
    dir: PathBuf,
    exe: PathBuf,
    policy_file: PathBuf,
    monitor: Option<Proc>,
    router_bird: Option<Proc>,
    directors: Vec<Director>,
    reals: Vec<Real>,
    client: Netns,
    router: Netns,
    _lan: Netns,
    phases: Vec<Phase>,
    notes: Vec<(Duration, String)>,
    shared: Arc<Shared>,
    watch: Arc<Watch>,
}

/// A veth `ifname` (with `mac`, if given) in `host`, its peer `port` on the LAN's bridge.
fn plug(host: &Netns, ifname: &str, mac: Option<[u8; 6]>, lan: &Netns, port: &str) -> Result<(), LabError> {
    let mac = mac.map(mac_text);
    let mut args = vec!["link", "add", ifname];
    if let Some(m) = &mac {
        args.extend(["address", m.as_str()]);
    }
    args.extend(["type", "veth", "peer", "name", port, "netns", lan.name()]);
    host.ip(&args).map_err(setup("veth"))?;
    netns::attach(lan, port, "br0").map_err(setup("bridge port"))?;
    lan.ip(&["link", "set", port, "up"]).map_err(setup("port up"))?;
    host.ip(&["link", "set", ifname, "up"]).map_err(setup("link up"))?;
    Ok(())
}

fn sysctls(ns: &Netns, keys: &[&str]) -> Result<(), LabError> {
    for k in keys {
        ns.exec("sysctl", &["-qw", k]).map_err(setup("sysctl"))?;
    }
    Ok(())
}

impl Lab {
    fn note(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        if !self.opts.json {
            println!("[{:7.2}s] {msg}", self.t0.elapsed().as_secs_f64());
        }
        self.notes.push((self.t0.elapsed(), msg));
    }

    fn spawn(&self, ns: &Netns, program: &Path, args: &[&str], log: &Path) -> Result<std::process::Child, LabError> {
        let log = std::fs::File::create(log).map_err(setup("log file"))?;
        Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(setup("log file"))?)
            .stderr(log)
            .spawn()
            .map_err(setup(&format!("start {}", program.display())))
    }

    fn build(opts: Options) -> Result<Lab, LabError> {
        let n = opts.directors;
        if !(2..=MAX_DIRECTORS).contains(&n) {
            return Err(LabError::Setup(format!("--directors {n}: the ecmp topology takes 2 to {MAX_DIRECTORS}")));
        }
        if opts.mode != super::Mode::Dr {
            return Err(LabError::Setup("the ecmp topology forwards in DR mode only (--mode dr)".into()));
        }
        if opts.policy.is_some() {
            return Err(LabError::Setup("the ecmp topology writes its own policy (--policy is for the pair)".into()));
        }
        let exe = std::env::current_exe().map_err(setup("own executable"))?;
        let dir = PathBuf::from(format!("/run/lvsd/lab-{}", std::process::id()));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(setup("lab directory"))?;
        }
        let reals_n = opts.reals.clamp(1, MAX_REALS);
        let policy_file = dir.join("policy.lua");
        std::fs::write(&policy_file, policy(&dir, n, reals_n, !opts.long.no_sync)).map_err(setup("policy"))?;

        let id = std::process::id();
        let ns = |name: &str| Netns::create(&format!("lab{id}-{name}")).map_err(setup("namespace"));
        let lan = ns("lan")?;
        netns::bridge(&lan, "br0").map_err(setup("bridge"))?;
        // The router: eth0 on the directors' LAN, eth1 to the client.
        let router = ns("router")?;
        plug(&router, "eth0", None, &lan, "prt")?;
        router.ip(&["addr", "add", &format!("{ROUTER}/24"), "dev", "eth0"]).map_err(setup("address"))?;
        sysctls(&router, &["net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1"])?;
        let client = ns("client")?;
        netns::veth(&router, "eth1", &client, "eth0").map_err(setup("veth"))?;
        router.ip(&["addr", "add", "198.51.100.1/24", "dev", "eth1"]).map_err(setup("address"))?;
        client.ip(&["addr", "add", "198.51.100.5/24", "dev", "eth0"]).map_err(setup("address"))?;
        // Only the sources the clients use (each `ip` run costs in a slow guest).
        for o in sources(opts.long.long_lived).iter().chain(&long_sources(opts.long.long_lived)) {
            client.ip(&["addr", "add", &format!("{o}/24"), "dev", "eth0"]).map_err(setup("address"))?;
        }
        client.ip(&["route", "add", "default", "via", "198.51.100.1"]).map_err(setup("route"))?;

        let mut directors = Vec::new();
        for i in 0..n {
            let name = director_name(i);
            let d = ns(&name)?;
            plug(&d, "eth0", None, &lan, &format!("pd{i}"))?;
            d.ip(&["addr", "add", &format!("{}/24", director_addr(i)), "dev", "eth0"]).map_err(setup("address"))?;
            d.ip(&["route", "add", "default", "via", ROUTER]).map_err(setup("route"))?;
            // The VIP is local (IPVS takes what is addressed to the host) but never answered
            // for in ARP: the router reaches it through the next hops BGP gives.
            d.ip(&["addr", "add", &format!("{VIP}/32"), "dev", "lo"]).map_err(setup("address"))?;
            sysctls(&d, &["net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"])?;
            // A flow ECMP moves here mid-stream: IPVS schedules its first non-SYN packet too
            // (mh picks the same real) when the sync daemon has not told this director yet.
            let _ = d.exec("sysctl", &["-qw", "net.ipv4.vs.sloppy_tcp=1"]);
            let ddir = dir.join(&name);
            std::fs::create_dir_all(&ddir).map_err(setup("director directory"))?;
            std::fs::write(ddir.join("bird.conf"), director_bird(&dir, &name)).map_err(setup("bird.conf"))?;
            directors.push(Director { lvsd: None, bird: None, socket: ddir.join("lvsd.sock"), name, ns: d, dir: ddir });
        }
        let mut reals = Vec::new();
        for i in 0..reals_n {
            let name = format!("rs{}", i + 1);
            let r = ns(&name)?;
            plug(&r, "eth0", Some(real_mac(i)), &lan, &format!("pr{i}"))?;
            r.ip(&["addr", "add", &format!("{}/24", real_addr(i)), "dev", "eth0"]).map_err(setup("address"))?;
            r.ip(&["route", "add", "default", "via", ROUTER]).map_err(setup("route"))?;
            reals.push(Real { http: None, name, ns: r });
        }
        std::fs::write(dir.join("router-bird.conf"), router_bird(&dir, n)).map_err(setup("bird.conf"))?;
        Ok(Lab {
            opts,
            t0: Instant::now(),
            epoch0: super::now_epoch(),
            dir,
            exe,
            policy_file,
            monitor: None,
            router_bird: None,
            directors,
            reals,
            client,
            router,
            _lan: lan,
            phases: Vec::new(),
            notes: Vec::new(),
            shared: Arc::new(Shared::default()),
            watch: Arc::new(Watch::default()),
        })
    }

    fn interrupted(&self) -> Result<(), LabError> {
        if super::INTERRUPTED.load(Ordering::SeqCst) { Err(LabError::Interrupted) } else { Ok(()) }
    }

    fn settle(&self, secs: f64) -> Result<(), LabError> {
        let end = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < end {
            self.interrupted()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn wait(&self, what: &str, limit: Duration, cond: impl Fn(&Lab) -> bool) -> Result<(), LabError> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            self.interrupted()?;
            if cond(self) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut msg = format!("timed out after {limit:?} waiting for {what}; the router's route: {:?}", self.hops());
        let tail = |path: PathBuf| {
            let log = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().rev().take(8).collect();
            lines.into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        msg.push_str(&format!("\n--- the router's BIRD:\n{}", tail(self.dir.join("router-bird.log"))));
        for d in &self.directors {
            msg.push_str(&format!("\n--- {} lvsd:\n{}", d.name, tail(d.dir.join("lvsd.log"))));
            msg.push_str(&format!("\n--- {} BIRD:\n{}", d.name, tail(d.dir.join("bird.log"))));
        }
        Err(LabError::Setup(msg))
    }

    fn status(&self, i: usize) -> Option<Value> {
        let mut c = crate::control::client::Client::connect(&self.directors[i].socket).ok()?;
        c.call(crate::control::Command::Status).ok()?.result
    }

    fn control(&self, i: usize, cmd: crate::control::Command) -> Result<Value, LabError> {
        let name = &self.directors[i].name;
        let mut c = crate::control::client::Client::connect(&self.directors[i].socket).map_err(setup(name))?;
        let r = c.call(cmd).map_err(setup(name))?;
        if !r.ok {
            return Err(LabError::Setup(format!("{name}: {}", r.error.unwrap_or_default())));
        }
        Ok(r.result.unwrap_or_default())
    }

    /// The router's next hops for the VIP now (asked, not from the monitor).
    fn hops(&self) -> Vec<Ipv4Addr> {
        let out = self.router.ip(&["-o", "route", "show", "exact", &format!("{VIP}/32")]).unwrap_or_default();
        out.lines().find_map(|l| wire::route_line(l, VIP)).unwrap_or_default()
    }

    fn hops_of(&self, up: &[usize]) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = up.iter().map(|i| director_addr(*i)).collect();
        v.sort_unstable();
        v
    }

    fn start_router(&mut self) -> Result<(), LabError> {
        // The route monitor first, so that it sees the first announcement too.
        let mut child = Command::new("ip")
            .args(["-n", self.router.name(), "-o", "monitor", "route"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(setup("ip monitor"))?;
        let out = child.stdout.take().ok_or_else(|| LabError::Setup("ip monitor: no stdout".into()))?;
        self.monitor = Some(Proc { name: "ip monitor".into(), child });
        let (watch, t0) = (self.watch.clone(), self.t0);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(hops) = wire::route_line(&line, VIP) {
                    watch.routes.lock().unwrap().push((t0.elapsed(), hops));
                }
            }
        });
        let bird = PathBuf::from("bird");
        let conf = self.dir.join("router-bird.conf");
        let ctl = self.dir.join("router-bird.ctl");
        let pid = self.dir.join("router-bird.pid");
        let args = ["-f", "-c", conf.to_str().unwrap_or(""), "-s", ctl.to_str().unwrap_or(""), "-P", pid.to_str().unwrap_or("")];
        let child = self.spawn(&self.router, &bird, &args, &self.dir.join("router-bird.out"))?;
        self.router_bird = Some(Proc { name: "router BIRD".into(), child });
        Ok(())
    }

    fn start_lvsd(&mut self, i: usize) -> Result<(), LabError> {
        let d = &self.directors[i];
        let args = [
            "run",
            "-p",
            self.policy_file.to_str().unwrap_or(""),
            "--node",
            &d.name,
            "--control",
            d.socket.to_str().unwrap_or(""),
            "--resync",
            "2",
        ];
        let child = self.spawn(&d.ns, &self.exe.clone(), &args, &d.dir.join("lvsd.log"))?;
        let name = d.name.clone();
        self.directors[i].lvsd = Some(Proc { name: format!("{name} lvsd"), child });
        Ok(())
    }

    fn start_bird(&mut self, i: usize) -> Result<(), LabError> {
        let d = &self.directors[i];
        let (conf, ctl, pid) = (d.dir.join("bird.conf"), d.dir.join("bird.ctl"), d.dir.join("bird.pid"));
        let args = ["-f", "-c", conf.to_str().unwrap_or(""), "-s", ctl.to_str().unwrap_or(""), "-P", pid.to_str().unwrap_or("")];
        let child = self.spawn(&d.ns, Path::new("bird"), &args, &d.dir.join("bird.out"))?;
        let name = d.name.clone();
        self.directors[i].bird = Some(Proc { name: format!("{name} BIRD"), child });
        Ok(())
    }

    /// lvsd wants the VIP announced (its service has quorum): BIRD may start.
    fn wants_vip(&self, i: usize) -> bool {
        self.status(i).is_some_and(|s| s["bgp"]["vips"].as_array().is_some_and(|v| !v.is_empty() && v.iter().all(|v| v["wanted"] == true)))
    }

    /// Every real of the service in director `i`'s table (`Some(false)`: one is out).
    fn reals_in(&self, i: usize, want: &[bool]) -> bool {
        let Some(s) = self.status(i) else { return false };
        let Some(rs) = s["services"].get(0).and_then(|v| v["reals"].as_array().cloned()) else { return false };
        want.iter().enumerate().all(|(ri, w)| {
            let addr = format!("{}:", real_addr(ri));
            rs.iter().find(|r| r["address"].as_str().is_some_and(|a| a.starts_with(&addr))).is_some_and(|r| (r["in_table"] == true) == *w)
        })
    }

    fn start_http(&mut self, i: usize) -> Result<(), LabError> {
        let r = &self.reals[i];
        let args = ["lab-http", "--name", &r.name, "--port", "80"];
        let child = self.spawn(&r.ns, &self.exe.clone(), &args, &self.dir.join(format!("{}-http.log", r.name)))?;
        self.reals[i].http = Some(Proc { name: self.reals[i].name.clone(), child });
        Ok(())
    }

    fn prepare_reals(&mut self) -> Result<(), LabError> {
        for i in 0..self.reals.len() {
            let r = &self.reals[i];
            let sd = self.dir.join(format!("{}-state", r.name));
            let vip = VIP.to_string();
            let out = Command::new("ip")
                .args(["netns", "exec", r.ns.name()])
                .arg(&self.exe)
                .args(["realserver", "up", "--vip", &vip, "--state-dir", sd.to_str().unwrap_or("")])
                .output()
                .map_err(setup("lvsd realserver"))?;
            if !out.status.success() {
                return Err(LabError::Setup(format!("{}: lvsd realserver up: {}", r.name, String::from_utf8_lossy(&out.stderr))));
            }
            self.start_http(i)?;
        }
        Ok(())
    }

    /// A packet socket on each director's link: new connections, requests and forwards.
    fn watch_directors(&self) -> Vec<std::thread::JoinHandle<()>> {
        (0..self.directors.len())
            .map(|i| {
                let (watch, t0, epoch0) = (self.watch.clone(), self.t0, self.epoch0);
                spawn_in(self.directors[i].ns.name(), move || capture(watch, i, t0, epoch0))
            })
            .collect()
    }

    fn phase<F>(&mut self, name: &str, what: &str, target: Option<usize>, action: F) -> Result<(), LabError>
    where
        F: FnOnce(&mut Lab) -> Result<(), LabError>,
    {
        self.interrupted()?;
        let idx = self.phases.len();
        self.shared.phase.store(idx, Ordering::SeqCst);
        let start = self.t0.elapsed();
        self.phases.push(Phase { name: name.into(), what: what.into(), start, end: start, fault: None, target, exited: None });
        self.note(format!("phase {name}: {what}"));
        action(self)?;
        self.phases[idx].end = self.t0.elapsed();
        Ok(())
    }

    /// Mark the fault of the current phase (now).
    fn fault(&mut self) {
        let at = self.t0.elapsed();
        if let Some(p) = self.phases.last_mut() {
            p.fault = Some(at);
        }
    }

    /// The long-lived connections (by their source addresses) through director `d` in the
    /// second before `at`.
    fn long_lived_on(&self, d: usize, at: Duration) -> usize {
        long_lived_through(&self.watch.frames.lock().unwrap(), &long_sources(self.opts.long.long_lived), d, at)
    }

    /// The director that carries the most long-lived connections now: the one whose
    /// withdrawal or death tests the most of them (with N directors it carries at least 1/N).
    fn busiest(&self) -> usize {
        let at = self.t0.elapsed();
        (0..self.directors.len()).rev().max_by_key(|d| self.long_lived_on(*d, at)).unwrap_or(0)
    }

    /// Director `d` has taken a new connection since `since` (seen on its link).
    fn took(&self, d: usize, since: Duration) -> bool {
        self.watch.frames.lock().unwrap().iter().any(|(t, x, s)| *x == d && *s == Seen::Syn && *t >= since)
    }

    /// Wait (bounded) until director `d` takes a new connection after `since`: ECMP sends it
    /// flows again (a short phase might otherwise see none by chance).
    fn wait_took(&self, d: usize, since: Duration) -> Result<(), LabError> {
        let name = self.directors[d].name.clone();
        self.wait(&format!("{name} to take a new connection"), Duration::from_secs(30), |l| l.took(d, since))
    }

    fn wait_hops(&self, up: &[usize], what: &str) -> Result<(), LabError> {
        let want = self.hops_of(up);
        self.wait(what, Duration::from_secs(45), |l| l.hops() == want)
    }

    fn play(&mut self) -> Result<(), LabError> {
        let n = self.directors.len();
        let all: Vec<usize> = (0..n).collect();
        let but = |x: usize| -> Vec<usize> { (0..n).filter(|i| *i != x).collect() };
        self.phase("baseline", "every director announces the VIP; ECMP spreads the flows", None, |l| {
            let start = l.phases[0].start;
            for d in 0..n {
                l.wait_took(d, start)?;
            }
            l.settle(STEADY)
        })?;
        // The director carrying the most long-lived connections is drained, and later killed.
        let drained = self.busiest();
        let dn = self.directors[drained].name.clone();
        self.phase("drain", &format!("lvsd drain-director on {dn}"), Some(drained), |l| {
            l.fault();
            l.control(drained, crate::control::Command::DrainDirector { timeout: Some(30) })?;
            l.wait_hops(&but(drained), &format!("the router to drop {dn}"))?;
            l.note(format!("the router's route no longer has {dn}"));
            l.settle(STEADY)
        })?;
        self.phase("undrain", &format!("lvsd undrain-director on {dn}"), Some(drained), |l| {
            l.fault();
            l.control(drained, crate::control::Command::UndrainDirector)?;
            l.wait_hops(&all, &format!("the router to take {dn} back"))?;
            l.note(format!("the router's route has {dn} again"));
            l.wait_took(drained, l.t0.elapsed())?;
            l.settle(STEADY)
        })?;
        let killed = self.busiest();
        let kn = self.directors[killed].name.clone();
        self.phase(
            "kill",
            &format!("{kn} dies: its link goes down, lvsd and BIRD get SIGKILL (the router's hold timer, {HOLD} s, detects)"),
            Some(killed),
            |l| {
                // The link first: the kernel closing BIRD's socket must not tell the router. The
                // fault counts from when `ip` has set it down.
                l.directors[killed].ns.ip(&["link", "set", "eth0", "down"]).map_err(setup("link down"))?;
                l.fault();
                for p in [l.directors[killed].lvsd.take(), l.directors[killed].bird.take()].into_iter().flatten() {
                    let mut p = p;
                    unsafe { libc::kill(p.child.id() as i32, libc::SIGKILL) };
                    let _ = p.child.wait();
                }
                l.wait_hops(&but(killed), &format!("the router to drop {kn}"))?;
                l.note(format!("the router's route no longer has {kn}"));
                l.settle(STEADY)
            },
        )?;
        self.phase("return", &format!("{kn} comes back: link up, lvsd, then BIRD"), Some(killed), |l| {
            l.fault();
            l.directors[killed].ns.ip(&["link", "set", "eth0", "up"]).map_err(setup("link up"))?;
            l.start_lvsd(killed)?;
            l.wait(&format!("{kn}'s lvsd to want the VIP announced"), Duration::from_secs(45), |l| l.wants_vip(killed))?;
            l.note(format!("{kn}: lvsd wants the VIP announced (its service has quorum); its BIRD starts"));
            l.start_bird(killed)?;
            l.wait_hops(&all, &format!("the router to take {kn} back"))?;
            l.note(format!("the router's route has {kn} again"));
            l.wait_took(killed, l.t0.elapsed())?;
            l.settle(STEADY)
        })?;
        let rn = self.reals[0].name.clone();
        let mut want = vec![true; self.reals.len()];
        want[0] = false;
        if self.reals.len() >= 2 {
            self.phase("real-down", &format!("{rn}'s web server dies"), None, move |l| {
                l.fault();
                l.reals[0].http = None;
                l.wait(&format!("{rn} to leave every director's table"), Duration::from_secs(45), |l| {
                    (0..l.directors.len()).all(|i| l.reals_in(i, &want))
                })?;
                l.note(format!("{rn} is out of every director's table"));
                l.settle(STEADY)
            })?;
        }
        let stopped = self.busiest();
        let sn = self.directors[stopped].name.clone();
        self.phase("stop", &format!("SIGTERM to {sn}'s lvsd: it withdraws the VIP before it stops"), Some(stopped), |l| {
            l.fault();
            if let Some(mut p) = l.directors[stopped].lvsd.take() {
                unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
                let end = Instant::now() + Duration::from_secs(30);
                while Instant::now() < end && !matches!(p.child.try_wait(), Ok(Some(_))) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let at = l.t0.elapsed();
                if let Some(ph) = l.phases.last_mut() {
                    ph.exited = Some(at);
                }
                l.note(format!("{sn}: lvsd exited"));
            }
            l.wait_hops(&but(stopped), &format!("the router to drop {sn}"))?;
            l.note(format!("the router's route no longer has {sn}"));
            l.settle(STEADY)
        })?;
        Ok(())
    }
}

/// How many of the long-lived connections' `sources` sent a request through director `d` in
/// the second before `at`.
fn long_lived_through(frames: &[(Duration, usize, Seen)], sources: &[IpAddr], d: usize, at: Duration) -> usize {
    let from = at.saturating_sub(Duration::from_secs(1));
    let mut seen: Vec<Ipv4Addr> = frames
        .iter()
        .filter(|(t, x, _)| *x == d && *t >= from && *t < at)
        .filter_map(|(_, _, s)| match s {
            Seen::Request(src) if sources.contains(&IpAddr::V4(*src)) => Some(*src),
            _ => None,
        })
        .collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// Short requests, one at a time from `sources` in turn, every `gap`, at most `max`. Each
/// counts in the phase in which it ended: a request cut by the next phase's fault is that
/// phase's failure.
fn client(shared: Arc<Shared>, sources: Vec<IpAddr>, vip: SocketAddr, gap: Duration, max: usize) {
    for i in 0..max {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let at = Instant::now();
        let result = observe::get(sources[i % sources.len()], vip, Duration::from_secs(3));
        let phase = shared.phase.load(Ordering::Relaxed);
        shared.requests.lock().unwrap().push(observe::Request { phase, at, result });
        std::thread::sleep(gap);
    }
}

/// `SIOCGSTAMP` (linux/sockios.h; the 64-bit `timeval` one on 64-bit hosts).
const SIOCGSTAMP: libc::c_ulong = 0x8906;

/// Count the frames that matter on this thread's namespace's eth0 until told to stop.
fn capture(watch: Arc<Watch>, director: usize, t0: Instant, epoch0: f64) {
    // SAFETY: plain socket calls on a descriptor this function owns and closes.
    unsafe {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto as i32);
        if fd < 0 {
            return;
        }
        let Ok(idx) = crate::net::ifindex("eth0") else {
            libc::close(fd);
            return;
        };
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = idx as i32;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        if libc::bind(fd, &sll as *const _ as *const libc::sockaddr, len) != 0 {
            libc::close(fd);
            return;
        }
        let tv = libc::timeval { tv_sec: 0, tv_usec: 200_000 };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let mut buf = [0u8; 256];
        while !watch.stop.load(Ordering::Relaxed) {
            let mut from: libc::sockaddr_ll = std::mem::zeroed();
            let mut flen = len;
            // Only the headers and the first bytes of data matter: a longer frame is cut.
            let n = libc::recvfrom(
                fd,
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
                &mut from as *mut _ as *mut libc::sockaddr,
                &mut flen,
            );
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted) {
                    // The link is down (the director died): wait for it.
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            let outgoing = from.sll_pkttype == libc::PACKET_OUTGOING;
            // Frames for another host (flooded by the bridge while a director is gone) are not this director's.
            if !outgoing && from.sll_pkttype != libc::PACKET_HOST {
                continue;
            }
            if let Some(seen) = wire::classify(&buf[..n as usize], outgoing, VIP, PORT) {
                // The kernel's time of the frame (SIOCGSTAMP): this thread may run late under load.
                let mut tv: libc::timeval = std::mem::zeroed();
                let at = if libc::ioctl(fd, SIOCGSTAMP, &mut tv as *mut libc::timeval) == 0 {
                    let epoch = tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
                    Duration::from_secs_f64((epoch - epoch0).max(0.0))
                } else {
                    t0.elapsed()
                };
                watch.frames.lock().unwrap().push((at, director, seen));
            }
        }
        libc::close(fd);
    }
}

pub fn run(opts: Options) -> Result<Value, LabError> {
    unsafe { libc::signal(libc::SIGINT, super::on_sigint as *const () as libc::sighandler_t) };
    let mut lab = Lab::build(opts)?;
    let n = lab.directors.len();
    lab.note(format!(
        "topology: router {ROUTER} (BIRD, AS {ROUTER_AS}, ECMP with an L4 hash) peering with {n} directors {} (each BIRD + lvsd, AS {DIRECTOR_AS}, hold time {HOLD} s), {} real servers (DR) behind VIP {VIP}:{PORT} (mh), client 198.51.100.5 behind the router",
        (0..n).map(|i| format!("{} ({})", director_name(i), director_addr(i))).collect::<Vec<_>>().join(", "),
        lab.reals.len(),
    ));
    lab.prepare_reals()?;
    lab.start_router()?;
    for i in 0..n {
        lab.start_lvsd(i)?;
    }
    // lvsd writes BIRD's include file; then each director's BIRD starts.
    lab.wait("every lvsd to want the VIP announced", Duration::from_secs(45), |l| (0..n).all(|i| l.wants_vip(i)))?;
    lab.note("every lvsd wants the VIP announced; each director's BIRD starts");
    for i in 0..n {
        lab.start_bird(i)?;
    }
    let all: Vec<usize> = (0..n).collect();
    lab.wait_hops(&all, "the router's ECMP route over every director")?;
    let want = vec![true; lab.reals.len()];
    lab.wait("every real in every director's table", Duration::from_secs(45), |l| (0..n).all(|i| l.reals_in(i, &want)))?;
    lab.note(format!("the router's route to {VIP}: {} next hops; every real in every table", n));
    let vip = SocketAddr::new(IpAddr::V4(VIP), PORT);
    lab.wait("the VIP to answer", Duration::from_secs(30), |l| {
        let ok = Arc::new(AtomicBool::new(false));
        let ok2 = ok.clone();
        let _ = spawn_in(l.client.name(), move || {
            ok2.store(std::net::TcpStream::connect_timeout(&vip, Duration::from_millis(500)).is_ok(), Ordering::SeqCst);
        })
        .join();
        ok.load(Ordering::SeqCst)
    })?;

    let capture = lab.watch_directors();
    let shared = lab.shared.clone();
    let max = lab.opts.requests;
    let sources = sources(lab.opts.long.long_lived);
    let load = spawn_in(lab.client.name(), {
        let shared = shared.clone();
        move || client(shared, sources, vip, Duration::from_millis(20), max)
    });
    let long = Arc::new(Tracker::default());
    let long_stop = Arc::new(AtomicBool::new(false));
    let ln = lab.opts.long.long_lived;
    let lsources = long_sources(ln);
    let held = (ln > 0).then(|| longlived::start(lab.client.name(), long.clone(), long_stop.clone(), lsources, vip, lab.t0, ln));
    if ln > 0 {
        lab.wait("the long-lived connections to be answered", Duration::from_secs(30), |_| {
            long.conns.lock().unwrap().iter().filter(|c| !c.answers.is_empty()).count() >= ln
        })?;
        lab.note(format!("{ln} long-lived connections open (a request every 100 ms on each)"));
        lab.settle(longlived::SYNCED_AFTER.as_secs_f64())?;
    }
    let result = lab.play();
    lab.settle(0.5).ok();
    shared.stop.store(true, Ordering::SeqCst);
    long_stop.store(true, Ordering::SeqCst);
    lab.watch.stop.store(true, Ordering::SeqCst);
    let _ = load.join();
    if let Some(h) = held {
        let _ = h.join();
    }
    for c in capture {
        let _ = c.join();
    }
    result?;
    Ok(report(&lab, &long))
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn report(lab: &Lab, long: &Tracker) -> Value {
    let requests = lab.shared.requests.lock().unwrap().clone();
    let frames = lab.watch.frames.lock().unwrap().clone();
    let routes = lab.watch.routes.lock().unwrap().clone();
    let conns = long.conns.lock().unwrap().clone();
    let names: Vec<String> = lab.directors.iter().map(|d| d.name.clone()).collect();
    let reals: Vec<String> = lab.reals.iter().map(|r| r.name.clone()).collect();
    let real_of = |mac: [u8; 6]| (0..reals.len()).find(|i| real_mac(*i) == mac).map(|i| reals[i].clone()).unwrap_or_else(|| mac_text(mac));
    let mut phases = Vec::new();
    for (i, p) in lab.phases.iter().enumerate() {
        let rs: Vec<&observe::Request> = requests.iter().filter(|r| r.phase == i).collect();
        let at = |r: &observe::Request| r.at.saturating_duration_since(lab.t0);
        let fault = p.fault.unwrap_or(p.start);
        let errors: Vec<String> = rs
            .iter()
            .filter_map(|r| {
                let off = at(r).as_secs_f64() - fault.as_secs_f64();
                r.result.as_ref().err().map(|e| format!("{off:+.2} s after the fault: {e}"))
            })
            .collect();
        let mut dist: BTreeMap<String, u64> = reals.iter().map(|r| (r.clone(), 0)).collect();
        for r in &rs {
            if let Ok(name) = &r.result {
                *dist.entry(name.clone()).or_default() += 1;
            }
        }
        let inside = |t: Duration| t >= p.start && t < p.end;
        let mut per: BTreeMap<String, Value> = BTreeMap::new();
        for (di, name) in names.iter().enumerate() {
            let mine = frames.iter().filter(|(t, d, _)| *d == di && inside(*t));
            let (mut syn, mut req) = (0u64, 0u64);
            let mut to: BTreeMap<String, u64> = BTreeMap::new();
            for (_, _, s) in mine {
                match s {
                    Seen::Syn => syn += 1,
                    Seen::Request(_) => req += 1,
                    Seen::Forwarded(mac) => *to.entry(real_of(*mac)).or_default() += 1,
                }
            }
            per.insert(name.clone(), json!({ "connections": syn, "requests": req, "reals": to }));
        }
        // The router's kernel route: its first change after the fault, and what it ended as.
        let change = routes.iter().find(|(t, _)| *t >= fault && *t < p.end).map(|(t, _)| *t);
        let after: Vec<String> =
            routes.iter().rfind(|(t, _)| *t < p.end).map(|(_, h)| h.iter().map(|a| a.to_string()).collect()).unwrap_or_default();
        // The traffic on the wire: the target's last new connection after a withdrawal, its
        // first one after a return.
        let syns_of =
            |d: usize| frames.iter().filter(move |(t, x, s)| *x == d && *s == Seen::Syn && *t >= fault && *t < p.end).map(|(t, ..)| *t);
        let moved = p.target.and_then(|d| match p.name.as_str() {
            "drain" | "kill" | "stop" => Some(syns_of(d).next_back().map(|t| ms(t - fault)).unwrap_or(0)),
            "undrain" | "return" => syns_of(d).next().map(|t| ms(t - fault)),
            _ => None,
        });
        // New connections that the target took after the router dropped it (drain: must be none).
        let late = match (p.target, change) {
            (Some(d), Some(c)) if p.name == "drain" || p.name == "stop" => {
                syns_of(d).filter(|t| *t > c + Duration::from_millis(200)).count()
            }
            _ => 0,
        };
        let withdrawn = ["drain", "kill", "stop"].contains(&p.name.as_str());
        let on_target =
            p.target.filter(|_| withdrawn).map(|d| long_lived_through(&frames, &long_sources(lab.opts.long.long_lived), d, fault));
        // The long-lived flows through the target at the fault: when each was first seen at
        // another director after it (the flow moved, on the wire); the slowest.
        let flows_moved = p.target.filter(|_| withdrawn).and_then(|d| {
            let long = long_sources(lab.opts.long.long_lived);
            let from = fault.saturating_sub(Duration::from_secs(1));
            let mut srcs: Vec<Ipv4Addr> = frames
                .iter()
                .filter(|(t, x, _)| *x == d && *t >= from && *t < fault)
                .filter_map(|(_, _, s)| match s {
                    Seen::Request(a) if long.contains(&IpAddr::V4(*a)) => Some(*a),
                    _ => None,
                })
                .collect();
            srcs.sort_unstable();
            srcs.dedup();
            let moved: Vec<Option<Duration>> = srcs
                .iter()
                .map(|a| frames.iter().find(|(t, x, s)| *x != d && *t >= fault && *s == Seen::Request(*a)).map(|(t, ..)| *t - fault))
                .collect();
            (!moved.is_empty()).then(|| moved.iter().map(|m| m.map(ms)).max().flatten())
        });
        let failed_after_change = change.map(|c| rs.iter().filter(|r| r.result.is_err() && at(r) > c).count());
        let ll = (p.name != "baseline" && !conns.is_empty()).then(|| {
            let f = longlived::figures(&conns, fault, p.end);
            let pct = |v: &[u64], q: usize| v.get((v.len().saturating_sub(1)) * q / 100).copied();
            json!({
                "open": f.open, "survived": f.survived, "broken": f.broken, "young": f.young, "fault_at": fault.as_secs_f64(),
                "longest_gap_ms": { "median": pct(&f.first_answer_ms, 50), "max": f.first_answer_ms.last() },
                "reasons": f.reasons,
            })
        });
        phases.push(json!({
            "name": p.name, "what": p.what, "start": p.start.as_secs_f64(), "end": p.end.as_secs_f64(),
            "fault": p.fault.map(|f| f.as_secs_f64()), "target": p.target.map(|d| names[d].clone()),
            "sent": rs.len(), "failed": errors.len(), "ok_at_end": rs.iter().rev().take_while(|r| r.result.is_ok()).count(),
            "failed_after_route_change": failed_after_change,
            "errors": errors.iter().take(5).collect::<Vec<_>>(),
            "distribution": dist, "directors": per,
            "route_change_ms": change.map(|c| ms(c - fault)), "route_after": after,
            "traffic_moved_ms": moved, "exited_ms": p.exited.map(|e| ms(e.saturating_sub(fault))), "new_connections_after_withdrawal": late,
            "long_lived": ll, "long_lived_on_target": on_target, "long_lived_moved_ms": flows_moved,
        }));
    }
    let mut timeline = lab.notes.clone();
    for (t, hops) in &routes {
        let h: Vec<String> = hops.iter().map(|a| a.to_string()).collect();
        timeline.push((*t, format!("router: {VIP} via {}", if h.is_empty() { "nothing (withdrawn)".into() } else { h.join(", ") })));
    }
    timeline.sort_by_key(|(t, _)| *t);
    json!({
        "topology": "ecmp",
        "mode": "dr",
        "scheduler": "mh",
        "vip": format!("{VIP}:{PORT}"),
        "directors": names,
        "reals": reals,
        "detection": format!("BGP hold timer {HOLD} s (keepalive {KEEPALIVE} s), no BFD"),
        "sync": !lab.opts.long.no_sync,
        "sloppy_tcp": true,
        "long_lived_connections": lab.opts.long.long_lived,
        "phases": phases,
        "timeline": timeline.iter().map(|(t, m)| json!({ "at": t.as_secs_f64(), "event": m })).collect::<Vec<_>>(),
        "requests": requests.len(),
        "duration": lab.t0.elapsed().as_secs_f64(),
    })
}

/// The summary for people.
pub fn print(report: &Value) {
    println!("\nTimeline");
    for e in report["timeline"].as_array().into_iter().flatten() {
        println!("  {:8.2}s  {}", e["at"].as_f64().unwrap_or(0.0), e["event"].as_str().unwrap_or(""));
    }
    let strs = |v: &Value| -> Vec<String> { v.as_array().into_iter().flatten().filter_map(|r| r.as_str().map(str::to_string)).collect() };
    let (directors, reals) = (strs(&report["directors"]), strs(&report["reals"]));
    let opt = |v: &Value| v.as_u64().map(|m| format!("{m} ms")).unwrap_or_else(|| "-".into());
    println!(
        "\nSummary (ecmp: {} directors behind the router's ECMP route, VIP {}, {} + {}, sync daemon {}; detection: {})",
        directors.len(),
        report["vip"].as_str().unwrap_or(""),
        report["scheduler"].as_str().unwrap_or(""),
        report["mode"].as_str().unwrap_or("").to_uppercase(),
        if report["sync"] == true { "on" } else { "off" },
        report["detection"].as_str().unwrap_or("")
    );
    let mut head = format!("  {:<10} {:>6} {:>6}", "phase", "sent", "failed");
    for r in &reals {
        head.push_str(&format!(" {r:>6}"));
    }
    head.push_str(&format!("  {:>13} {:>13}", "route change", "traffic moved"));
    println!("{head}");
    for p in report["phases"].as_array().into_iter().flatten() {
        let mut line = format!("  {:<10} {:>6} {:>6}", p["name"].as_str().unwrap_or(""), p["sent"].to_string(), p["failed"].to_string());
        for r in &reals {
            line.push_str(&format!(" {:>6}", p["distribution"][r].to_string()));
        }
        line.push_str(&format!("  {:>13} {:>13}", opt(&p["route_change_ms"]), opt(&p["traffic_moved_ms"])));
        println!("{line}");
        for e in p["errors"].as_array().into_iter().flatten().take(3) {
            println!("  {:<10}   failed: {}", "", e.as_str().unwrap_or(""));
        }
    }
    println!("  (route change: the router's kernel route, as `ip monitor` saw it; traffic moved: the target's last new connection");
    println!("   after a withdrawal, 0 if none came, or its first after a return, in the kernel's packet time)");
    println!("\nPer director: new connections / requests seen on its link (connections per real)");
    let mut head = format!("  {:<10}", "phase");
    for d in &directors {
        head.push_str(&format!(" {d:>24}"));
    }
    println!("{head}");
    for p in report["phases"].as_array().into_iter().flatten() {
        let mut line = format!("  {:<10}", p["name"].as_str().unwrap_or(""));
        for d in &directors {
            let x = &p["directors"][d];
            let to: Vec<String> = x["reals"].as_object().into_iter().flatten().map(|(r, n)| format!("{r} {n}")).collect();
            let cell = format!("{}/{} ({})", x["connections"], x["requests"], if to.is_empty() { "-".into() } else { to.join(", ") });
            line.push_str(&format!(" {cell:>24}"));
        }
        println!("{line}");
    }
    if report["long_lived_connections"].as_u64().unwrap_or(0) > 0 {
        println!("\nLong-lived connections ({} held, a request every 100 ms on each)", report["long_lived_connections"]);
        println!(
            "  {:<10} {:>5} {:>8} {:>6} {:>5}  longest silence around the fault (median / max)",
            "phase", "open", "survived", "broken", "young"
        );
        for p in report["phases"].as_array().into_iter().flatten() {
            let l = &p["long_lived"];
            if l.is_null() {
                continue;
            }
            println!(
                "  {:<10} {:>5} {:>8} {:>6} {:>5}  {} / {}",
                p["name"].as_str().unwrap_or(""),
                l["open"].to_string(),
                l["survived"].to_string(),
                l["broken"].to_string(),
                l["young"].to_string(),
                opt(&l["longest_gap_ms"]["median"]),
                opt(&l["longest_gap_ms"]["max"])
            );
            if !p["long_lived_on_target"].is_null() {
                println!(
                    "  {:<10}   {} through {} at the fault; the last of them seen at another director {} after it",
                    "",
                    p["long_lived_on_target"],
                    p["target"].as_str().unwrap_or(""),
                    opt(&p["long_lived_moved_ms"])
                );
            }
            for r in l["reasons"].as_array().into_iter().flatten() {
                println!("  {:<10}   broken: {}", "", r.as_str().unwrap_or(""));
            }
        }
    }
}

/// The claims, checked: each with a verdict line.
pub fn verify(report: &Value) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let phase = |n: &str| report["phases"].as_array().and_then(|ps| ps.iter().find(|p| p["name"] == n)).cloned();
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    let long = report["long_lived_connections"].as_u64().unwrap_or(0) > 0;
    // Every connection open at the fault kept its real and kept being answered.
    let unbroken = |out: &mut Vec<(bool, String)>, p: &Value, name: &str| {
        if !long {
            return;
        }
        let l = &p["long_lived"];
        let (open, broken) = (u(&l["open"]), u(&l["broken"]));
        out.push((
            open > 0 && broken == 0 && u(&l["survived"]) == open,
            format!("{name}: {broken} of {open} long-lived connections broken (longest silence {} ms)", l["longest_gap_ms"]["max"]),
        ));
    };
    // The fault touched long-lived connections: some went through its target.
    let touched = |out: &mut Vec<(bool, String)>, p: &Value, name: &str| {
        if long {
            let n = u(&p["long_lived_on_target"]);
            out.push((
                n > 0,
                format!("{name}: {n} long-lived connections went through {} at the fault", p["target"].as_str().unwrap_or("")),
            ));
        }
    };
    let took = |p: &Value, d: &str| u(&p["directors"][d]["connections"]);
    if let Some(b) = phase("baseline") {
        let ds: Vec<String> = report["directors"].as_array().into_iter().flatten().filter_map(|d| d.as_str().map(str::to_string)).collect();
        let every = !ds.is_empty() && ds.iter().all(|d| took(&b, d) > 0);
        let counts: Vec<String> = ds.iter().map(|d| format!("{d} {}", took(&b, d))).collect();
        out.push((every, format!("baseline: every director took new connections ({})", counts.join(", "))));
        let reals = b["distribution"].as_object().is_some_and(|d| !d.is_empty() && d.values().all(|v| u(v) > 0));
        out.push((reals && u(&b["failed"]) == 0, format!("baseline: every real answered, no request failed ({})", b["distribution"])));
    }
    if let Some(p) = phase("drain") {
        let t = p["target"].as_str().unwrap_or("");
        out.push((u(&p["failed"]) == 0, format!("drain: no request failed ({} sent)", p["sent"])));
        unbroken(&mut out, &p, "drain");
        touched(&mut out, &p, "drain");
        out.push((
            !p["route_change_ms"].is_null() && u(&p["new_connections_after_withdrawal"]) == 0,
            format!(
                "drain: the router dropped {t} {} ms after drain-director; {t} took {} new connections after that",
                p["route_change_ms"], p["new_connections_after_withdrawal"]
            ),
        ));
    }
    if let Some(p) = phase("undrain") {
        let t = p["target"].as_str().unwrap_or("");
        out.push((u(&p["failed"]) == 0, format!("undrain: no request failed ({} sent)", p["sent"])));
        unbroken(&mut out, &p, "undrain");
        out.push((took(&p, t) > 0, format!("undrain: {t} takes new connections again ({})", took(&p, t))));
    }
    if let Some(p) = phase("kill") {
        unbroken(&mut out, &p, "kill");
        touched(&mut out, &p, "kill");
        let after = u(&p["failed_after_route_change"]);
        out.push((
            !p["route_change_ms"].is_null() && after == 0,
            format!(
                "kill: the router dropped the dead director after {} ms; {} requests failed, none sent after the route change ({after})",
                p["route_change_ms"], p["failed"]
            ),
        ));
    }
    if let Some(p) = phase("return") {
        let t = p["target"].as_str().unwrap_or("");
        out.push((u(&p["failed"]) == 0, format!("return: no request failed ({} sent)", p["sent"])));
        unbroken(&mut out, &p, "return");
        out.push((took(&p, t) > 0, format!("return: {t} takes new connections again ({})", took(&p, t))));
    }
    if let Some(p) = phase("stop") {
        let t = p["target"].as_str().unwrap_or("");
        out.push((u(&p["failed"]) == 0, format!("stop: no request failed ({} sent)", p["sent"])));
        unbroken(&mut out, &p, "stop");
        out.push((
            !p["route_change_ms"].is_null() && !p["exited_ms"].is_null() && u(&p["new_connections_after_withdrawal"]) == 0,
            format!(
                "stop: {t} withdrew (the router's route changed {} ms after SIGTERM; lvsd exited after {} ms); {t} took {} new connections after the route change",
                p["route_change_ms"], p["exited_ms"], p["new_connections_after_withdrawal"]
            ),
        ));
    }
    if let Some(p) = phase("real-down") {
        out.push((u(&p["ok_at_end"]) >= 3, format!("real-down: the service keeps answering without rs1 ({} failed)", p["failed"])));
    }
    out
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Every lvsd gets SIGTERM at once (each withdraws through its BIRD first), bounded.
        for d in &self.directors {
            if let Some(p) = &d.lvsd {
                unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
            }
        }
        let end = Instant::now() + Duration::from_secs(4);
        for d in &mut self.directors {
            if let Some(p) = d.lvsd.as_mut() {
                while Instant::now() < end && !matches!(p.child.try_wait(), Ok(Some(_))) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        self.watch.stop.store(true, Ordering::SeqCst);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lived_connections_are_told_by_their_source() {
        let s = |o: u8| Seen::Request(Ipv4Addr::new(198, 51, 100, o));
        let long = long_sources(3);
        let frames = [
            (Duration::from_millis(9500), 1, s(254)),
            (Duration::from_millis(9600), 1, s(254)),
            (Duration::from_millis(9700), 1, s(253)),
            (Duration::from_millis(9800), 1, s(20)), // a short request
            (Duration::from_millis(9900), 2, s(252)),
            (Duration::from_millis(8000), 1, s(252)), // too long before
            (Duration::from_millis(9950), 1, Seen::Syn),
        ];
        assert_eq!(long_lived_through(&frames, &long, 1, Duration::from_secs(10)), 2);
        assert_eq!(long_lived_through(&frames, &long, 2, Duration::from_secs(10)), 1);
        assert_eq!(long_lived_through(&frames, &long, 0, Duration::from_secs(10)), 0);
        assert!(!sources(3).iter().any(|a| long.contains(a)), "short and long-lived sources apart");
    }

    #[test]
    fn one_policy_names_every_director_and_real() {
        let p = policy(Path::new("/run/lvsd/lab-1"), 3, 2, true);
        assert!(p.contains("lvs01 = \"192.0.2.2\", lvs02 = \"192.0.2.3\", lvs03 = \"192.0.2.4\""), "{p}");
        assert!(p.contains("reals = { \"192.0.2.11:80\", \"192.0.2.12:80\" }"), "{p}");
        assert!(p.contains("scheduler = \"mh\", forward = \"dr\", announce = true"));
        assert!(p.contains(&format!("hold = {HOLD}, keepalive = {KEEPALIVE}")));
        assert!(p.contains("lvsd.sync_daemon { interface = \"eth0\", id = 52 }"));
        assert!(!policy(Path::new("/x"), 2, 1, false).contains("sync_daemon"));
    }

    #[test]
    fn the_router_peers_with_every_director() {
        let r = router_bird(Path::new("/d"), 3);
        assert_eq!(r.matches("protocol bgp ").count(), 3);
        assert!(r.contains("protocol bgp lvs03 { local as 65000; neighbor 192.0.2.4 as 65001;"), "{r}");
        assert!(r.contains("merge paths on"));
        assert!(director_bird(Path::new("/d"), "lvs02").contains("include \"/d/lvs02/lvsd.conf\";"));
    }

    fn report(kill: Value) -> Value {
        json!({ "long_lived_connections": 4, "directors": ["lvs01", "lvs02"], "phases": [kill] })
    }

    #[test]
    fn a_kill_may_fail_requests_only_before_the_route_change() {
        let p = |after: u64, broken: u64| {
            json!({ "name": "kill", "target": "lvs02", "long_lived_on_target": 2, "failed": 5, "failed_after_route_change": after, "route_change_ms": 4100,
                    "long_lived": { "open": 4, "survived": 4 - broken, "broken": broken, "longest_gap_ms": { "max": 4200 } } })
        };
        let v = verify(&report(p(0, 0)));
        assert_eq!(v.len(), 3);
        assert!(v.iter().all(|(ok, _)| *ok), "{v:?}");
        assert!(!verify(&report(p(1, 0)))[2].0, "a request failed after the route change");
        assert!(!verify(&report(p(0, 1)))[0].0, "a connection broke");
        let no_change = json!({ "name": "kill", "long_lived_on_target": 1, "failed": 0, "failed_after_route_change": null, "route_change_ms": null,
                                "long_lived": { "open": 4, "survived": 4, "broken": 0 } });
        assert!(!verify(&report(no_change))[2].0, "the route never changed");
        let untouched = json!({ "name": "kill", "long_lived_on_target": 0, "failed": 0, "failed_after_route_change": 0, "route_change_ms": 3000,
                                "long_lived": { "open": 4, "survived": 4, "broken": 0 } });
        assert!(!verify(&report(untouched))[1].0, "no connection went through the dead director: the claim is empty");
    }

    #[test]
    fn a_stop_must_withdraw_and_fail_nothing() {
        let p = |route: Value, failed: u64| {
            json!({ "name": "stop", "target": "lvs01", "failed": failed, "sent": 40, "route_change_ms": route, "exited_ms": 900,
                    "new_connections_after_withdrawal": 0, "long_lived": { "open": 4, "survived": 4, "broken": 0 } })
        };
        assert!(verify(&report(p(json!(300), 0))).iter().all(|(ok, _)| *ok));
        assert!(!verify(&report(p(json!(300), 1)))[0].0);
        assert!(!verify(&report(p(Value::Null, 0)))[2].0, "the route never changed");
    }

    #[test]
    fn a_drain_fails_nothing_and_the_drained_director_takes_nothing() {
        let p = |failed: u64, late: u64| {
            json!({ "name": "drain", "target": "lvs02", "long_lived_on_target": 3, "failed": failed, "sent": 100, "route_change_ms": 30,
                    "new_connections_after_withdrawal": late, "long_lived": { "open": 4, "survived": 4, "broken": 0 } })
        };
        assert!(verify(&report(p(0, 0))).iter().all(|(ok, _)| *ok));
        assert!(!verify(&report(p(1, 0)))[0].0);
        assert!(!verify(&report(p(0, 2)))[3].0);
    }
}
