//! Check manager benchmark (prints figures; not a timed test).
//!
//!   cargo bench --bench check -- [--reals N] [--lua N] [--lua-pure N] [--seconds S]
//!
//! 1. N loopback listeners (served by a separate thread), each TCP-checked every second by
//!    one CheckManager on a current-thread runtime, set up as the daemon sets it up: CPU
//!    seconds per minute of the manager's thread, checks per second (handshakes the
//!    listeners' kernel answered: a bare check is half-open, never accepted), RSS.
//! 2. N Lua checks per second (each opens a TCP connection with lvsd.net.tcp): CPU of the
//!    manager's thread. `--lua-pure N`: Lua checks without network calls.
//!
//! The keepalived comparison (the same checks, in the VM where its IPVS setup works) is
//! `scripts/bench-check-vm` (tests/vm/bench-check.sh).

#[path = "support/net_counters.rs"]
mod net_counters;

use lvsd::check::{CheckManager, CheckOptions};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// User and system CPU time of the calling thread.
fn thread_cpu() -> (Duration, Duration) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let d = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (d(ru.ru_utime), d(ru.ru_stime))
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// `n` listeners on 127.0.0.1, accepted and closed by their own thread, which counts the
/// connections accepted.
fn listeners(n: usize) -> (Vec<SocketAddr>, Arc<AtomicU64>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let mut addrs = Vec::with_capacity(n);
            for _ in 0..n {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addrs.push(l.local_addr().unwrap());
                let count = count.clone();
                tokio::spawn(async move {
                    loop {
                        match l.accept().await {
                            Ok((s, _)) => {
                                count.fetch_add(1, Ordering::Relaxed);
                                drop(s)
                            }
                            // Out of descriptors, say: keep listening.
                            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                });
            }
            tx.send(addrs).unwrap();
            std::future::pending::<()>().await;
        });
    });
    (rx.recv().unwrap(), accepted)
}

/// How a run counts checks: the connections the listeners accepted (the manager as the
/// daemon runs it); the handshakes the listeners' kernel answered (a bare TCP check resets
/// its connection before it is accepted); or, for checks that connect nowhere, every result
/// the manager reports (which it does only when asked to, at a cost on its thread that this
/// count includes).
enum Count<'a> {
    Accepted(&'a AtomicU64),
    Handshakes,
    Results,
}

impl Count<'_> {
    fn now(&self) -> u64 {
        match self {
            Count::Accepted(a) => a.load(Ordering::Relaxed),
            Count::Handshakes => net_counters::handshakes(),
            Count::Results => 0,
        }
    }
}

fn run(name: &str, check: &str, addrs: &[SocketAddr], count: Count, seconds: u64) {
    let reals: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    let src = format!(r#"lvsd.service "bench" {{ vip = "192.0.2.1:80", check = {check}, reals = {{ {} }} }}"#, reals.join(", "));
    let opts = lvsd::policy::LoadOptions { node: "bench".into(), limits: Default::default() };
    let p = lvsd::policy::load_source(&src, "bench.lua".as_ref(), ".".as_ref(), &opts).unwrap();
    lvsd::check::install_net(&p.lua).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let set = tokio::task::LocalSet::new();
    let rss0 = rss_kib();
    set.block_on(&rt, async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let every_result = matches!(count, Count::Results);
        let m = CheckManager::with_options(&p.model, p.lua.clone(), tx, CheckOptions { every_result, ..Default::default() });
        let rss_new = rss_kib();
        m.start();
        // Let the first-run spread (10% of the interval) pass, then measure.
        let warm_until = tokio::time::Instant::now() + Duration::from_secs(2);
        while tokio::time::Instant::now() < warm_until {
            let _ = tokio::time::timeout_at(warm_until, rx.recv()).await;
        }
        let rss_warm = rss_kib();
        let (cpu0, t0) = (thread_cpu(), Instant::now());
        let counted0 = count.now();
        let (mut results, mut failed) = (0u64, 0u64);
        // Why checks failed, by the error without its address.
        let mut why: std::collections::BTreeMap<String, u64> = Default::default();
        let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
        while let Ok(Some(ev)) = tokio::time::timeout_at(end, rx.recv()).await {
            results += 1;
            if !ev.result.ok {
                failed += 1;
                let e = ev.result.error.unwrap_or_default();
                *why.entry(e.rsplit(": ").next().unwrap_or_default().to_string()).or_default() += 1;
            }
        }
        let (cpu1, wall) = (thread_cpu(), t0.elapsed().as_secs_f64());
        // Counted at the listeners, a check is a connection accepted or a handshake answered;
        // `failed` then counts the state changes to down the manager reported.
        if !matches!(count, Count::Results) {
            results = count.now() - counted0;
        }
        let (user, sys) = ((cpu1.0 - cpu0.0).as_secs_f64(), (cpu1.1 - cpu0.1).as_secs_f64());
        println!(
            "{name}: {} reals, {:.0} results/s ({failed} failed), manager thread CPU {:.1} s per minute \
             (user {:.1} + system {:.1}; {:.0}% of a core), RSS {} MiB (+{} MiB for the manager), {} probes",
            addrs.len(),
            results as f64 / wall,
            (user + sys) / wall * 60.0,
            user / wall * 60.0,
            sys / wall * 60.0,
            (user + sys) / wall * 100.0,
            rss_kib() / 1024,
            rss_kib().saturating_sub(rss0) / 1024,
            m.probe_count(),
        );
        // Per check and per real, the figures to set beside keepalived's (whose checker needs
        // IPVS, so it runs only in the VM: scripts/bench-check-vm).
        println!(
            "  per check: user {:.1} us + system {:.1} us; manager's RSS per real {:.2} KiB",
            user / results.max(1) as f64 * 1e6,
            sys / results.max(1) as f64 * 1e6,
            rss_kib().saturating_sub(rss0) as f64 / addrs.len().max(1) as f64,
        );
        for (e, n) in &why {
            println!("  failed {n} times: {e}");
        }
        println!(
            "  RSS before the manager {} MiB, after new() {} MiB, after 2 s of checks {} MiB, at the end {} MiB",
            rss0 / 1024,
            rss_new / 1024,
            rss_warm / 1024,
            rss_kib() / 1024
        );
        m.stop();
    });
}

fn main() {
    lvsd::limits::raise_open_files().expect("open files limit");
    let reals = arg("--reals", 10_000) as usize;
    let lua = arg("--lua", 5_000) as usize;
    // Lua checks that touch no network: the cost of the coroutine machinery alone.
    let pure = arg("--lua-pure", 0) as usize;
    let seconds = arg("--seconds", 30);
    println!("lvsd check benchmark: {seconds} s per run, 2 s warm-up; the listeners run on their own thread");
    let (addrs, accepted) = listeners(reals.max(lua).max(pure));
    if reals > 0 {
        run("tcp", "lvsd.check.tcp { interval = 1, timeout = 5, retries = 0 }", &addrs[..reals], Count::Handshakes, seconds);
    }
    if lua > 0 {
        let check = "lvsd.check.lua { interval = 1, timeout = 5, retries = 0, run = function(rs) \
                     local c = lvsd.net.tcp(rs.ip, rs.port) c:close() return true end }";
        run("lua", check, &addrs[..lua], Count::Accepted(&accepted), seconds);
    }
    if pure > 0 {
        run(
            "lua-pure",
            "lvsd.check.lua { interval = 1, timeout = 5, retries = 0, run = function(rs) return true end }",
            &addrs[..pure],
            Count::Results,
            seconds,
        );
    }
}
