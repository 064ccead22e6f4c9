//! VRRP benchmark (issues 4 and 20): takeover after the master's death, graceful handover, the
//! CPU and memory of 100 instances at advert 0.1 s, and at advert 0.01 s takeover and one
//! instance pair's CPU and late adverts — lvsd against keepalived 2.2.7, same topology,
//! measured on the wire.
//!
//! Topology: a bridge with three hosts. h0 runs the master (always lvsd, priority 200), h1 the
//! backup under test (lvsd or keepalived, priority 100), h2 captures every frame with an
//! AF_PACKET socket and kernel timestamps. Times are taken from the capture: the last advert
//! of the dead master (or its priority-0 advert) to the first gratuitous ARP for the VIP from
//! the backup.
//!
//!   sudo cargo bench --bench vrrp_failover                      # everything, ~7 minutes
//!   sudo cargo bench --bench vrrp_failover -- --reps 5 --cpu-secs 20 [failover] [graceful] [cpu] [fast]
//!   sudo cargo bench --bench vrrp_failover -- --fast-secs 20 --keepalived-rt 1 fast
//!   sudo cargo bench --bench vrrp_failover -- --fast-secs 20 --lvsd-rt 0 fast    # lvsd not real-time
//!
//! Prints figures; asserts nothing about time.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::Daemon;
use common::keepalived::Keepalived;
use common::lan::Lan;
use lvsd::net::netns::{Netns, privileged_or_skip};
use std::net::Ipv4Addr;
use std::time::Duration;
use support::{Capture, Frame, Kind, mmm, ms, now};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const MASTER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const BACKUP_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const MASTER_PRIO: u8 = 200;
const BACKUP_PRIO: u8 = 100;

#[derive(Clone, Copy, PartialEq)]
enum Impl {
    Lvsd,
    Keepalived,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Lvsd => "lvsd",
            Impl::Keepalived => "keepalived",
        }
    }
}

#[derive(Clone, Copy)]
struct Case {
    version: u8,
    /// Advert interval, seconds.
    advert: f64,
}

impl Case {
    fn label(&self) -> String {
        format!("v{} advert {} s", self.version, self.advert)
    }
    /// Skew_Time of the backup: RFC 3768 (v2) (256 - prio) / 256 s; RFC 5798 (v3)
    /// ((256 - prio) * Master_Adver_Interval) / 256.
    fn skew(&self) -> f64 {
        let s = (256.0 - BACKUP_PRIO as f64) / 256.0;
        if self.version == 2 { s } else { s * self.advert }
    }
    /// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time.
    fn mdi(&self) -> f64 {
        3.0 * self.advert + self.skew()
    }
}

const CASES: [Case; 2] = [Case { version: 2, advert: 1.0 }, Case { version: 3, advert: 0.1 }];
/// The fastest advert RFC 5798 allows (5.2.7: Max Adver Int is in centiseconds).
const FAST: Case = Case { version: 3, advert: 0.01 };

/// Gratuitous ARP settings of the 100-instance runs: keepalived's defaults (5 at once and 5
/// more after 5 s) or one per address and no second burst.
static GARP_REDUCED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn garp_reduced() -> bool {
    GARP_REDUCED.load(std::sync::atomic::Ordering::Relaxed)
}

/// lvsd's `vrrp_rt_priority` (`--lvsd-rt P`; unset: lvsd's default, SCHED_RR 1; 0: the
/// ordinary class, as keepalived's default).
static LVSD_RT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

fn lvsd_policy(version: u8, advert: f64, count: u32, prio: u8, state: &str) -> String {
    match LVSD_RT.load(std::sync::atomic::Ordering::Relaxed) {
        -1 => lvsd_instances(version, advert, count, prio, state),
        p => format!("lvsd.global {{ vrrp_rt_priority = {p} }}\n{}", lvsd_instances(version, advert, count, prio, state)),
    }
}

fn lvsd_instances(version: u8, advert: f64, count: u32, prio: u8, state: &str) -> String {
    if count > 1 && garp_reduced() {
        return format!(
            "for i = 1, {count} do\n  lvsd.vrrp(\"VI_\" .. i) {{ interface = \"eth0\", vrid = i, version = {version}, advert_int = {advert}, priority = {prio}, state = \"{state}\", vips = {{ \"198.51.100.\" .. i }}, garp = {{ master_delay = 0, master_repeat = 1 }} }}\nend\n"
        );
    }
    if count == 1 {
        return format!(
            "lvsd.vrrp \"VI_1\" {{ interface = \"eth0\", vrid = 51, version = {version}, advert_int = {advert}, priority = {prio}, state = \"{state}\", vips = {{ \"{VIP}\" }} }}\n"
        );
    }
    format!(
        "for i = 1, {count} do\n  lvsd.vrrp(\"VI_\" .. i) {{ interface = \"eth0\", vrid = i, version = {version}, advert_int = {advert}, priority = {prio}, state = \"{state}\", vips = {{ \"198.51.100.\" .. i }} }}\nend\n"
    )
}

/// keepalived's `vrrp_rt_priority` (`--keepalived-rt P`; 0: keepalived's default, none).
static KEEPALIVED_RT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

fn keepalived_conf(version: u8, advert: f64, count: u32, prio: u8, state: &str) -> String {
    let garp = if count > 1 && garp_reduced() { " vrrp_garp_master_delay 0\n vrrp_garp_master_repeat 1\n" } else { "" };
    let rt = match KEEPALIVED_RT.load(std::sync::atomic::Ordering::Relaxed) {
        0 => String::new(),
        p => format!(" vrrp_rt_priority {p}\n"),
    };
    let mut s = format!("global_defs {{\n router_id K\n vrrp_version {version}\n{garp}{rt}}}\n");
    for i in 1..=count {
        let (name, vrid, vip) =
            if count == 1 { ("VI_1".to_string(), 51, VIP.to_string()) } else { (format!("VI_{i}"), i, format!("198.51.100.{i}")) };
        s.push_str(&format!(
            "vrrp_instance {name} {{\n state {state}\n interface eth0\n virtual_router_id {vrid}\n priority {prio}\n advert_int {advert}\n virtual_ipaddress {{\n {vip}\n }}\n}}\n"
        ));
    }
    s
}

/// Nice value given to every daemon under test (`--nice N`; 0 leaves them alone).
static NICE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

enum Node {
    Lvsd(Daemon),
    Keepalived(Keepalived),
}

impl Node {
    fn start(which: Impl, ns: &Netns, version: u8, advert: f64, count: u32, prio: u8, state: &str) -> Node {
        let node = match which {
            Impl::Lvsd => Node::Lvsd(Daemon::start_in(Some(ns.name()), &lvsd_policy(version, advert, count, prio, state), ns.name(), &[])),
            Impl::Keepalived => {
                let k = Keepalived::start(ns, &keepalived_conf(version, advert, count, prio, &state.to_ascii_uppercase()));
                let vpid = k.dir.path().join("v.pid");
                support::wait_until(Duration::from_secs(5), || vpid.exists());
                Node::Keepalived(k)
            }
        };
        let nice = NICE.load(std::sync::atomic::Ordering::Relaxed);
        if nice != 0 {
            for p in node.pids() {
                unsafe { libc::setpriority(libc::PRIO_PROCESS, p, nice) };
            }
        }
        node
    }

    fn state(&self) -> String {
        match self {
            Node::Lvsd(d) => d.vrrp_state("VI_1"),
            Node::Keepalived(k) => k.state("VI_1").unwrap_or_default(),
        }
    }

    /// State changes so far: lvsd's status (bounded wait: a busy director may not answer),
    /// keepalived's "Entering ... STATE" log lines.
    fn transitions(&self) -> Option<u64> {
        match self {
            Node::Lvsd(d) => {
                let st = support::control_call(&d.socket, &serde_json::json!({"v": 1, "cmd": "status"}), Duration::from_secs(20))?;
                Some(st["vrrp"].as_array()?.iter().filter_map(|v| v["transitions"].as_u64()).sum())
            }
            Node::Keepalived(k) => Some(k.log().matches(") Entering ").count() as u64),
        }
    }

    fn log(&self) -> String {
        match self {
            Node::Lvsd(d) => d.log(),
            Node::Keepalived(k) => k.log(),
        }
    }

    /// Every process doing the work (keepalived: the parent and its VRRP child).
    fn pids(&self) -> Vec<u32> {
        match self {
            Node::Lvsd(d) => vec![d.child.id()],
            Node::Keepalived(k) => {
                let mut v = vec![k.child.id()];
                if let Ok(s) = std::fs::read_to_string(k.dir.path().join("v.pid")) {
                    v.extend(s.trim().parse::<u32>().ok());
                }
                v
            }
        }
    }

    fn signal(&mut self, sig: i32) {
        for p in self.pids().into_iter().take(1) {
            unsafe { libc::kill(p as i32, sig) };
        }
        if let Node::Lvsd(d) = self {
            let _ = d.child.wait();
        }
    }
}

fn del_vips(lan: &Lan) {
    for h in 0..2 {
        let _ = lan.host(h).ip(&["addr", "del", &format!("{VIP}/32"), "dev", "eth0"]);
    }
}

struct Sample {
    /// Last advert of the old master (or its priority-0 advert) -> first GARP of the backup.
    wire: f64,
    /// Signal sent -> first GARP of the backup.
    from_signal: f64,
    /// Last advert of the old master -> first advert of the new master.
    first_advert: f64,
    /// Largest gap between the new master's first five adverts.
    early_gap: f64,
}

/// One takeover: master lvsd on h0, `which` as backup on h1; the master gets `sig`.
fn takeover(lan: &Lan, cap: &Capture, macs: &[[u8; 6]], which: Impl, c: Case, sig: i32, phase: f64) -> Result<Sample, String> {
    del_vips(lan);
    cap.clear();
    let mut master = Node::start(Impl::Lvsd, lan.host(0), c.version, c.advert, 1, MASTER_PRIO, "master");
    if !support::wait_until(Duration::from_secs(10), || master.state() == "master") {
        return Err(format!("master never became master:\n{}", master.log()));
    }
    let backup = Node::start(which, lan.host(1), c.version, c.advert, 1, BACKUP_PRIO, "backup");
    if !support::wait_until(Duration::from_secs(10), || backup.state() == "backup") {
        return Err(format!("{} never became backup:\n{}", which.name(), backup.log()));
    }
    // Let the backup hear a few adverts, then kill at a different phase of the interval
    // in each repetition.
    std::thread::sleep(Duration::from_secs_f64(2.0 * c.advert + phase * c.advert));
    let t_sig = now();
    master.signal(sig);
    let garp = |fs: &[Frame]| fs.iter().find(|f| f.t > t_sig && f.mac == macs[1] && f.kind == Kind::Garp { ip: VIP }).map(|f| f.t);
    let limit = Duration::from_secs_f64(c.mdi() * 2.0 + 5.0);
    let Some(t_garp) = cap.wait_for(limit, garp) else {
        return Err(format!("no GARP from the {} backup:\n{}", which.name(), backup.log()));
    };
    let fs = cap.frames();
    let from_master = |f: &&Frame| matches!(f.kind, Kind::Vrrp { src, vrid: 51, .. } if src == MASTER_IP);
    let last = fs
        .iter()
        .filter(from_master)
        .filter(|f| f.t < t_garp && (sig == libc::SIGKILL || matches!(f.kind, Kind::Vrrp { prio: 0, .. })))
        .map(|f| f.t)
        .fold(f64::NAN, f64::max);
    let new_master =
        |f: &&Frame| f.t > t_sig && matches!(f.kind, Kind::Vrrp { src, vrid: 51, prio, .. } if src == BACKUP_IP && prio == BACKUP_PRIO);
    // The new master's first adverts: the first one, and the largest gap among the first
    // five (wait for them).
    cap.wait_for(Duration::from_secs_f64(6.0 * c.advert + 1.0), |fs| (fs.iter().filter(new_master).count() >= 5).then_some(()));
    let fs = cap.frames();
    let adverts: Vec<f64> = fs.iter().filter(new_master).map(|f| f.t).take(5).collect();
    let first_advert = adverts.first().copied().unwrap_or(f64::NAN);
    let early_gap = adverts.windows(2).map(|w| w[1] - w[0]).fold(f64::NAN, f64::max);
    drop(backup);
    drop(master);
    del_vips(lan);
    Ok(Sample { wire: t_garp - last, from_signal: t_garp - t_sig, first_advert: first_advert - last, early_gap })
}

fn bench_takeovers(lan: &Lan, cap: &Capture, macs: &[[u8; 6]], reps: usize, graceful: bool, cases: &[Case]) -> Vec<String> {
    let (sig, title) = if graceful {
        (libc::SIGTERM, "graceful handover (SIGTERM to the master: priority 0), priority-0 advert -> first GARP of the backup")
    } else {
        (libc::SIGKILL, "takeover after SIGKILL of the master, last advert of the dead master -> first GARP of the backup")
    };
    println!("\n## VRRP {title}; {reps} repetitions, ms");
    println!(
        "| case | backup | limit (ms) | median | min | max | within limit + 5 ms | signal->GARP median | ->first advert median | new master's largest gap, first 5 adverts (max) | lvsd/keepalived (median) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut lines = Vec::new();
    for &c in cases {
        let limit = if graceful { c.skew() } else { c.mdi() };
        let mut medians = Vec::new();
        for which in [Impl::Lvsd, Impl::Keepalived] {
            let mut s = Vec::new();
            for r in 0..reps {
                match takeover(lan, cap, macs, which, c, sig, r as f64 / reps as f64) {
                    Ok(x) => s.push(x),
                    Err(e) => eprintln!("{} {} rep {r}: {e}", c.label(), which.name()),
                }
            }
            let (med, min, max) = mmm(&s.iter().map(|x| x.wire).collect::<Vec<_>>());
            let (sig_med, _, _) = mmm(&s.iter().map(|x| x.from_signal).collect::<Vec<_>>());
            let (adv_med, _, _) = mmm(&s.iter().map(|x| x.first_advert).collect::<Vec<_>>());
            let (_, _, gap_max) = mmm(&s.iter().map(|x| x.early_gap).collect::<Vec<_>>());
            medians.push(med);
            let ratio = if which == Impl::Keepalived { format!("{:.3}", medians[0] / medians[1]) } else { String::new() };
            let limit_name = if graceful { "Skew_Time" } else { "MDI" };
            let within = s.iter().filter(|x| x.wire <= limit + 0.005).count();
            let line = format!(
                "| {} | {} ({} ok) | {limit_name} {} | {} | {} | {} | {within} of {} | {} | {} | {} | {ratio} |",
                c.label(),
                which.name(),
                s.len(),
                ms(limit),
                ms(med),
                ms(min),
                ms(max),
                s.len(),
                ms(sig_med),
                ms(adv_med),
                ms(gap_max)
            );
            println!("{line}");
            lines.push(line);
        }
    }
    lines
}

/// One instance pair (master on h0, backup on h1, same implementation) at the case's advert
/// interval: CPU of each over `secs`, and the master's adverts on the wire — how many came
/// later than interval + 5 ms after the previous one, the largest gap, the 99th percentile.
fn bench_pair(lan: &Lan, cap: &Capture, c: Case, secs: f64) -> Vec<String> {
    let late_after = c.advert + 0.005;
    println!("\n## One VRRP instance pair, {}, over {secs} s (master on h0, backup on h1, same implementation; GARP defaults)", c.label());
    println!(
        "| implementation | master, % of one core | backup, % of one core | pair, % of one core | RSS KiB (master / backup) | master adverts/s | largest gap, ms | 99th percentile, ms | later than {} ms | adverts from the backup | state changes (master / backup) | capture drops |",
        ms(late_after)
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut lines = Vec::new();
    let mut pair_cpu = Vec::new();
    for which in [Impl::Lvsd, Impl::Keepalived] {
        del_vips(lan);
        let master = Node::start(which, lan.host(0), c.version, c.advert, 1, MASTER_PRIO, "master");
        if !support::wait_until(Duration::from_secs(10), || master.state() == "master") {
            eprintln!("{}: the master never became master:\n{}", which.name(), master.log());
            continue;
        }
        // Past the second GARP burst (master_delay, 5 s) before the backup starts.
        std::thread::sleep(Duration::from_secs(6));
        let backup = Node::start(which, lan.host(1), c.version, c.advert, 1, BACKUP_PRIO, "backup");
        if !support::wait_until(Duration::from_secs(10), || backup.state() == "backup") {
            eprintln!("{}: the backup never became backup:\n{}", which.name(), backup.log());
        }
        std::thread::sleep(Duration::from_secs(2));
        let pids = [master.pids(), backup.pids()];
        let before = [support::usage_of(&pids[0]), support::usage_of(&pids[1])];
        let trans_before = [master.transitions(), backup.transitions()];
        let drops_before = cap.drops();
        cap.clear();
        let t0 = now();
        std::thread::sleep(Duration::from_secs_f64(secs));
        let after = [support::usage_of(&pids[0]), support::usage_of(&pids[1])];
        let t1 = now();
        let fs = cap.frames();
        let drops = cap.drops() - drops_before;
        let trans: Vec<String> = [(&master, 0), (&backup, 1)]
            .iter()
            .map(|(n, i)| match (trans_before[*i], n.transitions()) {
                (Some(a), Some(b)) => (b - a).to_string(),
                _ => "?".to_string(),
            })
            .collect();
        let of = |src: Ipv4Addr| -> Vec<f64> {
            fs.iter().filter(|f| matches!(f.kind, Kind::Vrrp { src: s, vrid: 51, .. } if s == src)).map(|f| f.t).collect()
        };
        let adverts = of(MASTER_IP);
        let mut gaps: Vec<f64> = adverts.windows(2).map(|w| w[1] - w[0]).collect();
        // The partial gaps at the window's edges count when they are already late.
        if let (Some(first), Some(last)) = (adverts.first(), adverts.last()) {
            gaps.extend([first - t0, t1 - last].into_iter().filter(|g| *g > late_after));
        }
        gaps.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let late = gaps.iter().filter(|g| **g > late_after).count();
        let largest = gaps.last().copied().unwrap_or(f64::NAN);
        let p99 = gaps.get((gaps.len() as f64 * 0.99) as usize).copied().unwrap_or(largest);
        let cpu = [after[0].0 - before[0].0, after[1].0 - before[1].0];
        let pct = |x: f64| 100.0 * x / (t1 - t0);
        pair_cpu.push(pct(cpu[0] + cpu[1]));
        let line = format!(
            "| {} ({} + {} processes) | {:.2} | {:.2} | **{:.2}** | {} / {} | {:.1} | {} | {} | {late} of {} | {} | {} / {} | {drops} |",
            which.name(),
            pids[0].len(),
            pids[1].len(),
            pct(cpu[0]),
            pct(cpu[1]),
            pct(cpu[0] + cpu[1]),
            after[0].1,
            after[1].1,
            adverts.len() as f64 / (t1 - t0),
            ms(largest),
            ms(p99),
            gaps.len(),
            of(BACKUP_IP).len(),
            trans[0],
            trans[1],
        );
        println!("{line}");
        lines.push(line);
        drop(backup);
        drop(master);
        del_vips(lan);
    }
    if pair_cpu.len() == 2 {
        let line = format!("| ratio lvsd/keepalived (pair CPU) | | | {:.2} | | | | | | | | |", pair_cpu[0] / pair_cpu[1]);
        println!("{line}");
        lines.push(line);
    }
    lines
}

/// 100 instances, v3 advert 0.1 s: masters on h0 and backups on h1, both of one kind.
fn bench_cpu(lan: &Lan, cap: &Capture, secs: f64) -> Vec<String> {
    let mut lines = Vec::new();
    for reduced in [false, true] {
        GARP_REDUCED.store(reduced, std::sync::atomic::Ordering::Relaxed);
        lines.extend(bench_cpu_once(lan, cap, secs));
    }
    lines
}

fn bench_cpu_once(lan: &Lan, cap: &Capture, secs: f64) -> Vec<String> {
    const N: u32 = 100;
    let garp = if garp_reduced() { "1 GARP per VIP, no second burst" } else { "GARP defaults: 5 per VIP, 5 more after 5 s" };
    println!(
        "\n## CPU and memory of {N} VRRP v3 instances at advert 0.1 s, over {secs} s (master on h0, backup on h1, same implementation; {garp})"
    );
    println!(
        "| implementation | role | master steady after (s) | master alone, % of one core (3 s) | CPU s | % of one core | RSS KiB | adverts/s sent (on the wire; {} expected from the master) | state changes in the window | capture drops |",
        N * 10
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut lines = Vec::new();
    let mut cpu_master = Vec::new();
    for which in [Impl::Lvsd, Impl::Keepalived] {
        // The master first, alone until it holds every VIP and its second GARP burst
        // (master_delay, 5 s) is over; then the backup. (Both at once makes every instance
        // time out together on both sides: an election storm.)
        let vips = |h: usize| lan.host(h).ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap().matches("198.51.100.").count();
        let t_start = now();
        let master = Node::start(which, lan.host(0), 3, 0.1, N, MASTER_PRIO, "master");
        if !support::wait_until(Duration::from_secs(30), || vips(0) == N as usize) {
            eprintln!("{}: the master holds {} of {N} VIPs after 30 s", which.name(), vips(0));
        }
        std::thread::sleep(Duration::from_secs(if garp_reduced() { 1 } else { 6 }));
        // Steady: the master sent at least 90 % of its adverts over the last second.
        let steady = support::wait_until(Duration::from_secs(40), || {
            let t = now();
            let n = cap.frames().iter().filter(|f| f.t > t - 1.0 && matches!(f.kind, Kind::Vrrp { src, .. } if src == MASTER_IP)).count();
            n >= (N * 9) as usize
        });
        let steady_after = if steady { format!("{:.1}", now() - t_start) } else { "not in 40 s".to_string() };
        // The master alone, steady, for 3 s.
        let (c0, t0) = (support::usage_of(&master.pids()).0, now());
        std::thread::sleep(Duration::from_secs(3));
        let alone = 100.0 * (support::usage_of(&master.pids()).0 - c0) / (now() - t0);
        let backup = Node::start(which, lan.host(1), 3, 0.1, N, BACKUP_PRIO, "backup");
        std::thread::sleep(Duration::from_secs(3));
        if vips(0) != N as usize || vips(1) != 0 {
            eprintln!("{}: before the window, {} VIPs on the master and {} on the backup (want {N} and 0)", which.name(), vips(0), vips(1));
        }
        let pids = [master.pids(), backup.pids()];
        let nodes = [&master, &backup];
        let before = [support::usage_of(&pids[0]), support::usage_of(&pids[1])];
        let trans_before = [master.transitions(), backup.transitions()];
        let drops_before = cap.drops();
        cap.clear();
        let t0 = now();
        std::thread::sleep(Duration::from_secs_f64(secs));
        let after = [support::usage_of(&pids[0]), support::usage_of(&pids[1])];
        let t1 = now();
        let fs = cap.frames();
        let drops = cap.drops() - drops_before;
        if !cap.running() {
            eprintln!("the capture stopped: adverts/s figures are wrong");
        }
        if std::env::var_os("LVSD_BENCH_VERBOSE").is_some() {
            let mut by: std::collections::BTreeMap<(Ipv4Addr, u8), usize> = Default::default();
            for f in &fs {
                if let Kind::Vrrp { src, vrid, .. } = f.kind {
                    *by.entry((src, vrid)).or_default() += 1;
                }
            }
            for ((src, vrid), n) in &by {
                eprintln!("{}: {src} vrid {vrid}: {n} adverts", which.name());
            }
        }
        for (role, i) in [("master", 0), ("backup", 1)] {
            let cpu = after[i].0 - before[i].0;
            let src = if i == 0 { MASTER_IP } else { BACKUP_IP };
            let adverts = fs.iter().filter(|f| matches!(f.kind, Kind::Vrrp { src: s, .. } if s == src)).count() as f64 / (t1 - t0);
            let trans = match (trans_before[i], nodes[i].transitions()) {
                (Some(a), Some(b)) => (b - a).to_string(),
                _ => "? (no answer)".to_string(),
            };
            if i == 0 {
                cpu_master.push(cpu);
            }
            let line = format!(
                "| {} | {role} ({} process{}) | {} | {} | {cpu:.2} | {:.1} | {} | {adverts:.0} | {trans} | {drops} |",
                which.name(),
                pids[i].len(),
                if pids[i].len() == 1 { "" } else { "es" },
                if i == 0 { steady_after.as_str() } else { "" },
                if i == 0 { format!("{alone:.1}") } else { String::new() },
                100.0 * cpu / (t1 - t0),
                after[i].1
            );
            println!("{line}");
            lines.push(line);
        }
        drop(backup);
        drop(master);
        // A killed lvsd leaves its VIPs behind (as keepalived does).
        for h in 0..2 {
            let _ = lan.host(h).ip(&["addr", "flush", "dev", "eth0", "to", "198.51.100.0/24"]);
        }
    }
    let line = format!("| ratio lvsd/keepalived (master CPU, with the backup) | | | | {:.2} | | | | | |", cpu_master[0] / cpu_master[1]);
    println!("{line}");
    lines.push(line);
    lines
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it,
    // and a benchmark is no test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("vrrp_failover: a benchmark; run it with `cargo bench --bench vrrp_failover`");
        return;
    }
    if !privileged_or_skip("vrrp_failover benchmark") {
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str, default: f64| {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let reps = opt("--reps", 5.0) as usize;
    let cpu_secs = opt("--cpu-secs", 20.0);
    NICE.store(opt("--nice", 0.0) as i32, std::sync::atomic::Ordering::Relaxed);
    let fast_secs = opt("--fast-secs", 20.0);
    KEEPALIVED_RT.store(opt("--keepalived-rt", 0.0) as i32, std::sync::atomic::Ordering::Relaxed);
    LVSD_RT.store(opt("--lvsd-rt", -1.0) as i32, std::sync::atomic::Ordering::Relaxed);
    let parts: Vec<&str> = args.iter().map(String::as_str).filter(|a| ["failover", "graceful", "cpu", "fast"].contains(a)).collect();
    let want = |p: &str| parts.is_empty() || parts.contains(&p);

    println!("# VRRP benchmark: lvsd vs keepalived ({})", version_of_keepalived());
    println!("machine: {}", support::machine());
    match NICE.load(std::sync::atomic::Ordering::Relaxed) {
        0 => println!("daemons under test run at the benchmark's own nice value ({})", unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }),
        n => println!("daemons under test run at nice {n}"),
    }
    match KEEPALIVED_RT.load(std::sync::atomic::Ordering::Relaxed) {
        0 => println!("keepalived: no vrrp_rt_priority (its default)"),
        p => println!("keepalived: vrrp_rt_priority {p}"),
    }
    match LVSD_RT.load(std::sync::atomic::Ordering::Relaxed) {
        -1 => println!("lvsd: no vrrp_rt_priority (its default: the VRRP thread at SCHED_RR 1)"),
        0 => println!("lvsd: vrrp_rt_priority = 0 (the VRRP thread in the ordinary class)"),
        p => println!("lvsd: vrrp_rt_priority = {p} (the VRRP thread at SCHED_RR {p})"),
    }
    let lan = Lan::new("bv", 3).expect("namespaces");
    for (h, a) in [(0, MASTER_IP), (1, BACKUP_IP), (2, Ipv4Addr::new(192, 0, 2, 3))] {
        lan.host(h).ip(&["addr", "add", &format!("{a}/24"), "dev", "eth0"]).unwrap();
    }
    let macs: Vec<[u8; 6]> = (0..3).map(|h| support::mac_of(lan.host(h), "eth0")).collect();
    let cap = Capture::start(lan.host(2), "eth0");
    if want("failover") {
        bench_takeovers(&lan, &cap, &macs, reps, false, &CASES);
    }
    if want("graceful") {
        bench_takeovers(&lan, &cap, &macs, reps, true, &CASES);
    }
    if want("fast") {
        bench_takeovers(&lan, &cap, &macs, reps, false, &[FAST]);
        bench_pair(&lan, &cap, FAST, fast_secs);
    }
    if want("cpu") {
        bench_cpu(&lan, &cap, cpu_secs);
    }
}

fn version_of_keepalived() -> String {
    std::process::Command::new("keepalived")
        .arg("--version")
        .output()
        .map(|o| {
            let s = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            s.lines().next().unwrap_or("").trim().to_owned()
        })
        .unwrap_or_else(|_| "keepalived not installed".into())
}
