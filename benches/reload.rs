//! Hot-reload benchmark (issue 6): time from saving the policy to the change being in the
//! IPVS backend, for 10 and 1,000 services; IPVS writes for a one-weight change; and the
//! largest gap between the master's VRRP adverts (v3, advert 0.1 s) while reloads happen,
//! captured on the wire in another namespace.
//!
//! One lvsd (`run --dry-run`: in-memory IPVS) in namespace h0 is VRRP master; h1 captures.
//! Each save writes a temporary file and renames it over the policy (as editors do), changing
//! the weight of one real of one service. For each save:
//!   - mtime -> reload event: the file's mtime to the `at` of the director's "reload" event
//!     (recorded after the new policy loaded, before the IPVS diff is applied);
//!   - mtime -> seen: the file's mtime to the first answer on the control socket (polled every
//!     2 ms) that shows the new generation; the director applies the IPVS diff before it answers
//!     anything else, so this bounds "change in the backend" from above. The new weight is then
//!     checked in `status --json`.
//!
//!   sudo cargo bench --bench reload                 # both sizes, 20 saves each, < 1 minute
//!   sudo cargo bench --bench reload -- --saves 20 --sizes 10,1000
//!
//! Prints figures; asserts nothing about time.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::Daemon;
use common::lan::Lan;
use lvsd::net::netns::privileged_or_skip;
use serde_json::json;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use support::{Capture, Frame, Kind, mmm, ms, now};

const MASTER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const ADVERT: f64 = 0.1;

fn policy(services: usize, weight: u32) -> String {
    format!(
        r#"local W = {weight}
lvsd.vrrp "VI_1" {{
  interface = "eth0", vrid = 51, version = 3, advert_int = {ADVERT}, priority = 200,
  state = "master", vips = {{ "192.0.2.100" }},
}}
for i = 1, {services} do
  lvsd.service("s" .. i) {{
    vip = "203.0.113." .. (1 + (i - 1) % 250) .. ":" .. (1000 + (i - 1) // 250),
    scheduler = "wrr",
    reals = {{ {{ address = "198.51.100.1:80", weight = (i == 1) and W or 1 }}, "198.51.100.2:80" }},
  }}
end
"#
    )
}

/// Write `src` to a temporary file next to `path` and rename it over `path`.
fn save(path: &std::path::Path, src: &str) -> f64 {
    let tmp = path.with_extension("lua.tmp");
    std::fs::write(&tmp, src).unwrap();
    std::fs::rename(&tmp, path).unwrap();
    let m = std::fs::metadata(path).unwrap().modified().unwrap();
    m.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The `at` of the reload event that produced `generation`, if the director has it yet.
fn reload_event(d: &Daemon, generation: u64) -> Option<f64> {
    let r = d.call(json!({"v": 1, "cmd": "events", "limit": 5}));
    let want = format!("generation {generation}");
    r["result"].as_array()?.iter().find(|e| e["kind"] == "reload" && e["message"].as_str().is_some_and(|m| m.ends_with(&want)))?["at"]
        .as_f64()
}

fn weight_of_first_real(st: &serde_json::Value) -> Option<u64> {
    st["services"].as_array()?.iter().find(|s| s["name"] == "s1")?["reals"][0]["weight"].as_u64()
}

/// Gaps between consecutive adverts of the master: (end time, gap).
fn gaps(fs: &[Frame]) -> Vec<(f64, f64)> {
    let ts: Vec<f64> = fs.iter().filter(|f| matches!(f.kind, Kind::Vrrp { src, vrid: 51, .. } if src == MASTER_IP)).map(|f| f.t).collect();
    ts.windows(2).map(|w| (w[1], w[1] - w[0])).collect()
}

struct Row {
    services: usize,
    to_event: Vec<f64>,
    to_seen: Vec<f64>,
    /// IPVS writes over the timed saves, and the number of those saves.
    writes_total: u64,
    /// IPVS writes of each save in the second phase (status read after each save).
    writes: Vec<u64>,
    /// Round-trip time of `status --json` (second phase).
    status_rtt: Vec<f64>,
    baseline_gap: f64,
    reload_gap: f64,
    series_gap: f64,
    late: usize,
    adverts: usize,
    status_gap: f64,
    failures: usize,
}

/// Save the policy with `weight` and wait for the director to load it: (mtime, event at,
/// seen), or `None` after 10 s.
fn save_and_wait(d: &Daemon, services: usize, weight: u32, generation: u64) -> Option<(f64, f64, f64)> {
    let mtime = save(&d.policy, &policy(services, weight));
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if let Some(at) = reload_event(d, generation) {
            return Some((mtime, at, now()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

fn largest(g: &[(f64, f64)]) -> f64 {
    g.iter().map(|g| g.1).fold(0.0, f64::max)
}

fn bench(lan: &Lan, cap: &Capture, services: usize, saves: usize) -> Row {
    let mut d = Daemon::start_in(Some(lan.host(0).name()), &policy(services, 10), "lvs01", &[]);
    assert!(support::wait_until(Duration::from_secs(10), || d.vrrp_state("VI_1") == "master"), "lvsd master:\n{}", d.log());
    // Baseline: adverts with nothing happening.
    cap.clear();
    std::thread::sleep(Duration::from_secs(3));
    let baseline_gap = largest(&gaps(&cap.frames()));

    // Phase 1: timed saves, nothing but the small events request on the control socket.
    let st = d.status();
    let mut generation = st["generation"].as_u64().unwrap();
    let writes_start = st["ipvs_writes"].as_u64().unwrap();
    cap.clear();
    let (mut to_event, mut to_seen, mut windows) = (Vec::new(), Vec::new(), Vec::new());
    let mut failures = 0;
    let mut weight = 10;
    for k in 1..=saves {
        weight += 1;
        generation += 1;
        let Some((mtime, at, seen)) = save_and_wait(&d, services, weight, generation) else {
            eprintln!("{services} services, save {k}: no reload to generation {generation} within 10 s");
            failures += 1;
            generation = d.status()["generation"].as_u64().unwrap();
            continue;
        };
        to_event.push(at - mtime);
        to_seen.push(seen - mtime);
        windows.push((mtime - 0.05, seen + 0.05));
        // Let a few adverts pass between saves.
        std::thread::sleep(Duration::from_millis(300));
    }
    let g = gaps(&cap.frames());
    let adverts = g.len() + 1;
    let in_window = |t_end: f64, gap: f64| windows.iter().any(|&(a, b)| t_end - gap < b && t_end > a);
    let reload_gap = g.iter().filter(|&&(t, gap)| in_window(t, gap)).map(|g| g.1).fold(0.0, f64::max);
    let series_gap = largest(&g);
    let late = g.iter().filter(|g| g.1 > ADVERT + 0.010).count();
    if std::env::var_os("LVSD_BENCH_VERBOSE").is_some() {
        // Each late advert, placed relative to the nearest save.
        for &(t, gap) in g.iter().filter(|g| g.1 > ADVERT + 0.010) {
            let near = windows.iter().min_by(|a, b| (a.0 - t).abs().partial_cmp(&(b.0 - t).abs()).unwrap());
            let rel = near.map(|w| {
                format!(
                    "starts {:+.1} ms from the save, which was seen at {:+.1} ms",
                    (t - gap - w.0 - 0.05) * 1e3,
                    (w.1 - w.0 - 0.1) * 1e3
                )
            });
            eprintln!("{services} services: late advert, gap {:.1} ms, {}", gap * 1e3, rel.unwrap_or_default());
        }
    }
    let st = d.status();
    let writes_total = st["ipvs_writes"].as_u64().unwrap() - writes_start;
    if weight_of_first_real(&st) != Some(weight as u64) {
        eprintln!("{services} services: weight in the backend is {:?}, want {weight}", weight_of_first_real(&st));
        failures += 1;
    }

    // Phase 2: the IPVS writes of each save, read from status after it (and what a status
    // request of this size costs the advert timing).
    let mut writes = Vec::new();
    let mut status_rtt = Vec::new();
    let mut writes_before = writes_start + writes_total;
    cap.clear();
    for _ in 0..5 {
        weight += 1;
        generation += 1;
        if save_and_wait(&d, services, weight, generation).is_none() {
            failures += 1;
            generation = d.status()["generation"].as_u64().unwrap();
            continue;
        }
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let st = d.status();
        status_rtt.push(t.elapsed().as_secs_f64());
        if weight_of_first_real(&st) != Some(weight as u64) {
            failures += 1;
        }
        let w = st["ipvs_writes"].as_u64().unwrap();
        writes.push(w - writes_before);
        writes_before = w;
        std::thread::sleep(Duration::from_millis(300));
    }
    let status_gap = largest(&gaps(&cap.frames()));
    let _ = d.stop();
    Row {
        services,
        to_event,
        to_seen,
        writes_total,
        writes,
        status_rtt,
        baseline_gap,
        reload_gap,
        series_gap,
        late,
        adverts,
        status_gap,
        failures,
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it,
    // and a benchmark is no test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("reload: a benchmark; run it with `cargo bench --bench reload`");
        return;
    }
    if !privileged_or_skip("reload benchmark") {
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let saves: usize = arg("--saves").and_then(|v| v.parse().ok()).unwrap_or(20);
    let sizes: Vec<usize> = arg("--sizes").map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect()).unwrap_or(vec![10, 1000]);

    println!("# Hot-reload benchmark: {saves} saves per size, one real's weight changed per save");
    println!("machine: {}", support::machine());
    let lan = Lan::new("br", 2).expect("namespaces");
    lan.host(0).ip(&["addr", "add", &format!("{MASTER_IP}/24"), "dev", "eth0"]).unwrap();
    lan.host(1).ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]).unwrap();
    let cap = Capture::start(lan.host(1), "eth0");
    let rows: Vec<Row> = sizes.iter().map(|&n| bench(&lan, &cap, n, saves)).collect();

    println!("\n## save -> change in the backend, ms (median / min / max over {saves} saves)");
    println!("| services | saves | failures | mtime -> reload event | mtime -> seen on the control socket |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        let (a, b, c) = mmm(&r.to_event);
        let (d, e, f) = mmm(&r.to_seen);
        println!(
            "| {} | {} | {} | {} / {} / {} | {} / {} / {} |",
            r.services,
            r.to_seen.len(),
            r.failures,
            ms(a),
            ms(b),
            ms(c),
            ms(d),
            ms(e),
            ms(f)
        );
    }
    println!("\n## IPVS writes for a one-weight change");
    println!("| services | writes over the timed saves | per save (5 more saves, status after each) |");
    println!("|---|---|---|");
    for r in &rows {
        let each: Vec<String> = r.writes.iter().map(u64::to_string).collect();
        println!("| {} | {} in {} saves | {} |", r.services, r.writes_total, r.to_seen.len(), each.join(", "));
    }
    println!("\n## VRRP adverts of the master (v3, advert {} ms) on the wire, largest gap between adverts, ms", ADVERT * 1000.0);
    println!(
        "| services | baseline (3 s, no reloads) | around reloads (save .. seen) | whole timed series | adverts later than interval + 10 ms (of adverts) | with a status --json after each save | status --json round trip (median / max) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        let (m, _, x) = mmm(&r.status_rtt);
        println!(
            "| {} | {} | {} | {} | {} of {} | {} | {} / {} |",
            r.services,
            ms(r.baseline_gap),
            ms(r.reload_gap),
            ms(r.series_gap),
            r.late,
            r.adverts,
            ms(r.status_gap),
            ms(m),
            ms(x)
        );
    }
}
