//! `lvsd lab --topology ecmp`: scale-out rehearsed on one machine. A router (BIRD) peers over
//! eBGP with N directors, each running its own BIRD and lvsd with one shared policy
//! (`lvsd.bgp`, `mh`, DR, the sync daemon on every director); the router's kernel route to
//! the VIP has one next hop per announcing director, chosen per flow by an L4 hash
//! (`fib_multipath_hash_policy = 1`). A client behind the router sends short requests and
//! holds long-lived connections while the phases play: baseline (every director but the
//! last), the last director joins (its sync daemons learn the others' connections; ECMP moves
//! some flows onto it), drain one director (`drain-director`), undrain, a director dies (its
//! link goes down, lvsd and BIRD get SIGKILL: no BGP notification reaches the router, whose
//! hold timer detects it), it comes back, a real server dies, and one lvsd gets SIGTERM (it
//! withdraws the VIP before it stops).
//!
//! Measured per phase: requests and new connections seen on each director's link (a packet
//! socket per director), the real of each answer, broken long-lived connections, failed
//! requests, and the time from the fault to the router's kernel route change (`ip -o monitor
//! route` in the router) and to the traffic moving on the wire.

mod play;
mod setup;
mod summary;
pub mod wire;

use super::longlived::{self, Tracker};
use super::observe::{self, Shared};
use super::{Detect, LabError, Options, Proc, setup, source_pool, spawn_in};
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

use play::{capture, client, long_lived_listed_in, long_lived_through, open_entry, requesters};
use summary::report;
pub use summary::{print, verify};

pub const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub const PORT: u16 = 80;
const ROUTER: &str = "192.0.2.1";
const ROUTER_AS: u32 = 65000;
const DIRECTOR_AS: u32 = 65001;
/// BGP timers: the router notices a dead director when the hold time passes without a
/// keepalive. BIRD's smallest hold time is 3 s; TCG on a busy host can stall a BIRD for a
/// second or more, so a little more than that.
pub const HOLD: u32 = 4;
pub const KEEPALIVE: u32 = 1;
/// BFD's timers with `--detect bfd` (interval in ms, multiplier), on the router and in the
/// directors' policy (`bfd = { interval, multiplier }`). Under TCG, 100 ms-scale timers
/// flapped; 300 ms x 5 detected the kill in 1.1-1.4 s and passed 8 guest runs, but in the 9th
/// the router dropped two live directors at once (a stalled guest): not stable enough for the
/// VM tier, which detects by the hold timer.
pub const BFD: (u32, u32) = (300, 5);

/// How the router detects a dead director, for the report.
pub fn detection(bfd: Option<(u32, u32)>) -> String {
    match bfd {
        Some((i, m)) => format!("BFD ({i} ms x {m}), BGP hold timer {HOLD} s behind it"),
        None => format!("BGP hold timer {HOLD} s (keepalive {KEEPALIVE} s), no BFD"),
    }
}
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

/// The scheduler unless `--scheduler` says otherwise: the consistent hash.
pub const SCHEDULER: &str = "mh";

/// Schedulers that give every director the same choice of real for a flow (with the same
/// reals, weights and order): the claims that a flow moved between directors keeps its real
/// hold only with these (or with a synced entry).
pub fn consistent(scheduler: &str) -> bool {
    scheduler == "mh" || scheduler == "sh"
}

/// The one policy every director runs (`--node lvsNN` picks its router id and files).
pub fn policy(dir: &Path, directors: usize, reals: usize, sync: bool, scheduler: &str, bfd: Option<(u32, u32)>) -> String {
    let ids: Vec<String> = (0..directors).map(|i| format!("{} = \"{}\"", director_name(i), director_addr(i))).collect();
    let rs: Vec<String> = (0..reals).map(|i| format!("\"{}:{PORT}\"", real_addr(i))).collect();
    let mut s = format!(
        "-- lvsd lab --topology ecmp: every director announces the VIP to the router while it can serve it.\n\
         local ids = {{ {ids} }}\n\
         local here = \"{dir}/\" .. lvsd.node\n\
         lvsd.bgp {{\n  socket = here .. \"/bird.ctl\", include = here .. \"/lvsd.conf\",\n  local_as = {DIRECTOR_AS}, router_id = ids[lvsd.node],\n  \
         neighbors = {{ {{ address = \"{ROUTER}\", as = {ROUTER_AS}, hold = {HOLD}, keepalive = {KEEPALIVE}{bfd},\n    \
         connect_delay = 1, connect_retry = 1, error_wait = {{ min = 1, max = 2 }} }} }},\n}}\n\
         -- mh gives every director the same choice of real for a flow; DR sends the answers past the directors.\n\
         lvsd.service \"web\" {{\n  vip = \"{VIP}:{PORT}\", scheduler = \"{scheduler}\", forward = \"dr\", announce = true,\n  \
         check = lvsd.check.tcp {{ interval = 0.5, timeout = 1, retries = 0 }},\n  reals = {{ {rs} }},\n}}\n",
        ids = ids.join(", "),
        bfd = bfd.map(|(i, m)| format!(", bfd = {{ interval = {}, multiplier = {m} }}", f64::from(i) / 1000.0)).unwrap_or_default(),
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
pub fn router_bird(dir: &Path, directors: usize, bfd: Option<(u32, u32)>) -> String {
    let mut s = format!(
        "log \"{}/router-bird.log\" all;\nrouter id {ROUTER};\nprotocol device {{ scan time 1; }}\n\
         protocol kernel {{ merge paths on; ipv4 {{ import none; export all; }}; }}\n",
        dir.display()
    );
    if let Some((interval, mult)) = bfd {
        s.push_str(&format!("protocol bfd {{ interface \"eth0\" {{ interval {interval} ms; multiplier {mult}; }}; }}\n"));
    }
    let bfd = if bfd.is_some() { " bfd on;" } else { "" };
    for i in 0..directors {
        s.push_str(&format!(
            "protocol bgp {} {{ local as {ROUTER_AS}; neighbor {} as {DIRECTOR_AS}; hold time {HOLD}; keepalive time {KEEPALIVE}; \
             connect delay time 1; connect retry time 1; error wait time 1, 2;{bfd} ipv4 {{ import all; export none; }}; }}\n",
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
    /// When the dead real had left every director's table (the real-down phase).
    real_gone: Option<Duration>,
    /// The added director (the add phase): its connection table when the router's route
    /// first had it, and at the phase's end; when it first listed every long-lived
    /// connection alive then, and how many were.
    table_at_route: Option<Vec<wire::Conn>>,
    table_at_end: Option<Vec<wire::Conn>>,
    learned: Option<(Duration, usize)>,
    /// The real-down phase: entries left naming the dead real in each director's table, by
    /// state and origin.
    stale: Option<Vec<Option<BTreeMap<String, usize>>>>,
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
    scheduler: String,
    /// BFD's timers on every session (None: the hold timer detects).
    bfd: Option<(u32, u32)>,
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

pub fn run(opts: Options) -> Result<Value, LabError> {
    unsafe { libc::signal(libc::SIGINT, super::on_sigint as *const () as libc::sighandler_t) };
    let mut lab = Lab::build(opts)?;
    let n = lab.directors.len();
    lab.note(format!(
        "topology: router {ROUTER} (BIRD, AS {ROUTER_AS}, ECMP with an L4 hash) peering with {n} directors {} (each BIRD + lvsd, AS {DIRECTOR_AS}; detection: {}; the last one joins in the add phase), {} real servers (DR) behind VIP {VIP}:{PORT} ({}), client 198.51.100.5 behind the router",
        (0..n).map(|i| format!("{} ({})", director_name(i), director_addr(i))).collect::<Vec<_>>().join(", "),
        detection(lab.bfd),
        lab.reals.len(),
        lab.scheduler,
    ));
    lab.prepare_reals()?;
    lab.start_router()?;
    // The last director stays down until the add phase.
    let n = n - 1;
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
    lab.wait_hops(&all, "the router's ECMP route over every started director")?;
    let want = vec![true; lab.reals.len()];
    lab.wait("every real in every director's table", Duration::from_secs(45), |l| (0..n).all(|i| l.reals_in(i, &want)))?;
    lab.note(format!("the router's route to {VIP}: {n} next hops; every real in every started director's table"));
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
    let ln = lab.opts.long.long_lived;
    let mut held = longlived::Held::open(lab.client.name(), long_sources(ln), vip, lab.t0, ln);
    if ln > 0 {
        lab.wait("the long-lived connections to be answered", Duration::from_secs(30), |_| held.answered() >= ln)?;
        lab.note(format!("{ln} long-lived connections open (a request every 100 ms on each)"));
        lab.settle(longlived::SYNCED_AFTER.as_secs_f64())?;
    }
    let result = lab.play();
    lab.settle(0.5).ok();
    shared.stop.store(true, Ordering::SeqCst);
    held.finish();
    lab.watch.stop.store(true, Ordering::SeqCst);
    let _ = load.join();
    for c in capture {
        let _ = c.join();
    }
    result?;
    Ok(report(&lab, &held.tracker))
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
        let p = policy(Path::new("/run/lvsd/lab-1"), 3, 2, true, SCHEDULER, None);
        assert!(p.contains("lvs01 = \"192.0.2.2\", lvs02 = \"192.0.2.3\", lvs03 = \"192.0.2.4\""), "{p}");
        assert!(p.contains("reals = { \"192.0.2.11:80\", \"192.0.2.12:80\" }"), "{p}");
        assert!(p.contains("scheduler = \"mh\", forward = \"dr\", announce = true"));
        assert!(p.contains(&format!("hold = {HOLD}, keepalive = {KEEPALIVE}")));
        assert!(p.contains("lvsd.sync_daemon { interface = \"eth0\", id = 52 }"));
        assert!(!policy(Path::new("/x"), 2, 1, false, SCHEDULER, None).contains("sync_daemon"));
        assert!(policy(Path::new("/x"), 2, 1, true, "wlc", None).contains("scheduler = \"wlc\", forward = \"dr\""));
        assert!(consistent("mh") && consistent("sh") && !consistent("wlc") && !consistent("rr"));
    }

    #[test]
    fn the_router_peers_with_every_director() {
        let r = router_bird(Path::new("/d"), 3, None);
        assert_eq!(r.matches("protocol bgp ").count(), 3);
        assert!(r.contains("protocol bgp lvs03 { local as 65000; neighbor 192.0.2.4 as 65001;"), "{r}");
        assert!(r.contains("merge paths on"));
        assert!(!r.contains("bfd"), "{r}");
        let b = router_bird(Path::new("/d"), 3, Some((300, 5)));
        assert!(b.contains("protocol bfd { interface \"eth0\" { interval 300 ms; multiplier 5; }; }"), "{b}");
        assert_eq!(b.matches(" bfd on;").count(), 3, "{b}");
        let p = policy(Path::new("/x"), 2, 1, true, SCHEDULER, Some((300, 5)));
        assert!(p.contains("keepalive = 1, bfd = { interval = 0.3, multiplier = 5 },"), "{p}");
        // The policy loads, and its session timers reach the model.
        let m = crate::policy::test_model(&p, "lvs02");
        let n = &m.bgp.as_ref().unwrap().neighbors[0];
        assert_eq!(
            (n.bfd, n.bfd_interval_ms, n.bfd_multiplier, n.error_wait, n.connect_retry),
            (true, Some(300), Some(5), Some((1, 2)), Some(1))
        );
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
    fn a_dead_real_may_fail_requests_only_until_every_director_took_it_out() {
        let p = |sent: u64, failed: u64| json!({ "name": "real-down", "failed": 4, "real_gone_ms": 2400, "after_real_gone": { "sent": sent, "failed": failed } });
        let v = verify(&report(p(12, 0)));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].0 && v[0].1.contains("0 of 12 requests failed (4 failed before)"), "{v:?}");
        assert!(!verify(&report(p(12, 1)))[0].0, "a request failed after the real left every table");
        assert!(!verify(&report(p(2, 0)))[0].0, "too few requests to tell");
    }

    #[test]
    fn a_stop_must_withdraw_and_fail_nothing() {
        let p = |route: Value, failed: u64, after: u64| {
            json!({ "name": "stop", "target": "lvs01", "failed": failed, "failed_after_route_change": after, "sent": 40,
                    "route_change_ms": route, "exited_ms": 900, "new_connections_after_withdrawal": 0,
                    "long_lived": { "open": 4, "survived": 4, "broken": 0 } })
        };
        assert!(verify(&report(p(json!(300), 0, 0))).iter().all(|(ok, _)| *ok));
        assert!(!verify(&report(p(json!(300), 1, 0)))[0].0, "a request failed before the route change");
        let later = verify(&report(p(json!(300), 1, 1)));
        assert!(later[0].0 && later[0].1.contains("1 failed after it"), "{later:?}");
        assert!(!verify(&report(p(Value::Null, 0, 0)))[2].0, "the route never changed");
    }

    #[test]
    fn an_added_director_learns_the_connections_and_takes_new_ones() {
        let p = |failed: u64, took: u64, listed: u64, synced: u64| {
            json!({ "name": "add", "target": "lvs03", "failed": failed, "sent": 90, "route_change_ms": 2500,
                    "long_lived": { "open": 4, "survived": 4, "broken": 0 },
                    "added": { "table_at_route_change": { "listed": 2, "synced": 2 }, "table_at_end": { "listed": listed, "synced": synced },
                               "learned_ms": if listed >= 4 { json!(3000) } else { Value::Null }, "alive": 4,
                               "long_lived_moved_here": 1, "moved_here_without_synced_entry": 1, "new_connections_after_route_change": took } })
        };
        let mut r = report(p(0, 5, 4, 3));
        r["sync"] = json!(true);
        let v = verify(&r);
        assert_eq!(v.len(), 5, "{v:?}");
        assert!(v.iter().all(|(ok, _)| *ok), "{v:?}");
        assert!(v[4].1.contains("1 long-lived flows onto lvs03, 1 of them without a synced entry there [reported]"), "{v:?}");
        let bad = |x: Value, i: usize, why: &str| {
            let mut r = report(x);
            r["sync"] = json!(true);
            assert!(!verify(&r)[i].0, "{why}");
        };
        bad(p(1, 5, 4, 3), 0, "a request failed");
        bad(p(0, 0, 4, 3), 2, "it took no new connection");
        bad(p(0, 5, 3, 3), 3, "a long-lived connection is missing from its table");
        bad(p(0, 5, 4, 0), 3, "nothing came from the sync daemons");
        // Without the sync daemon there is nothing to learn: no such claim.
        assert_eq!(verify(&report(p(0, 5, 0, 0))).len(), 4);
    }

    #[test]
    fn without_a_consistent_hash_broken_connections_are_reported_not_claimed() {
        let kill = json!({ "name": "kill", "target": "lvs02", "long_lived_on_target": 2, "failed": 5, "failed_after_route_change": 0,
                           "route_change_ms": 4100, "long_lived": { "open": 4, "survived": 2, "broken": 2, "longest_gap_ms": { "max": 4200 } } });
        let mut r = report(kill);
        assert!(!verify(&r)[0].0, "mh: a broken connection fails the claim");
        r["scheduler"] = json!("wlc");
        let v = verify(&r);
        assert!(v[0].0 && v[0].1.contains("2 of 4 long-lived connections broken") && v[0].1.contains("not claimed: wlc"), "{v:?}");
        assert!(v[1].0 && v[2].0, "the claims that hold for any scheduler still checked: {v:?}");
    }

    #[test]
    fn a_route_change_no_fault_explains_is_a_flap() {
        let r = |changes: [u64; 3]| {
            json!({ "long_lived_connections": 0, "directors": ["lvs01"], "phases": [
                { "name": "baseline", "route_changes": changes[0], "directors": { "lvs01": { "connections": 1 } }, "distribution": { "rs1": 1 }, "failed": 0 },
                { "name": "drain", "route_changes": changes[1], "failed": 0, "route_change_ms": 30, "new_connections_after_withdrawal": 0 },
                { "name": "real-down", "route_changes": changes[2], "failed": 0, "after_real_gone": { "sent": 5, "failed": 0 } } ] })
        };
        let line = |v: Vec<(bool, String)>| v.into_iter().find(|(_, l)| l.starts_with("routes:")).expect("a routes verdict");
        let ok = line(verify(&r([0, 1, 0])));
        assert!(ok.0 && ok.1.contains("baseline 0, drain 1, real-down 0"), "{ok:?}");
        assert!(!line(verify(&r([0, 3, 0]))).0, "the drained director came back and left again");
        assert!(!line(verify(&r([2, 1, 0]))).0, "a flap in the baseline");
        assert!(!line(verify(&r([0, 1, 1]))).0, "a flap while a real died");
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
