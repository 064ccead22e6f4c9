//! Listener farm for the health-check benchmark in the VM (`scripts/bench-check-vm`, guest
//! scenario `tests/vm/bench-check.sh`): the "real servers" that lvsd and keepalived check.
//!
//!   check-listen --count FILE < LIST
//!
//! Listens on every `ADDR:PORT` of LIST (one per line; the addresses must be local), accepts
//! every connection and closes it at once. Every second it replaces FILE with one line:
//!
//!   <CLOCK_BOOTTIME seconds> <connections accepted so far> <sockets that accepted one in the
//!   last 3 s> <sockets> <handshakes answered in this network namespace so far>
//!
//! so a reader gets exact rates from two samples (the same clock as the guest's /proc/uptime),
//! and can see that every listener is being checked, not only some of them. A half-open check
//! (lvsd's bare TCP check) is never accepted: the last figure, the namespace's kernel
//! counters, counts it and a full handshake alike (see net_counters.rs). The first line is
//! written once every socket listens. One thread (a current-thread tokio runtime), so it takes
//! at most one CPU away from the daemon under test.

mod net_counters;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// CLOCK_BOOTTIME in milliseconds (what /proc/uptime shows, in seconds).
fn boot_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

fn raise_fd_limit(want: u64) {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        if l.rlim_cur < want {
            l.rlim_cur = want;
            l.rlim_max = l.rlim_max.max(want);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                eprintln!("check-listen: cannot raise the file limit to {want}");
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count_file = match args.iter().position(|a| a == "--count").and_then(|i| args.get(i + 1)) {
        Some(f) => f.clone(),
        None => {
            eprintln!("usage: check-listen --count FILE < LIST (ADDR:PORT per line)");
            std::process::exit(2);
        }
    };
    let addrs: Vec<SocketAddr> = std::io::stdin()
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse().unwrap_or_else(|e| panic!("check-listen: bad address {l:?}: {e}")))
        .collect();
    raise_fd_limit(addrs.len() as u64 + 256);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let total = Arc::new(AtomicU64::new(0));
        let last: Arc<Vec<AtomicU64>> = Arc::new((0..addrs.len()).map(|_| AtomicU64::new(0)).collect());
        for (i, a) in addrs.iter().enumerate() {
            // std sets SO_REUSEADDR, so a listener killed and started again binds at once.
            let l = std::net::TcpListener::bind(a).unwrap_or_else(|e| {
                eprintln!("check-listen: bind {a}: {e}");
                std::process::exit(1)
            });
            l.set_nonblocking(true).unwrap();
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            let (total, last) = (total.clone(), last.clone());
            tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, _)) => {
                            drop(s);
                            total.fetch_add(1, Relaxed);
                            last[i].store(boot_ms(), Relaxed);
                        }
                        // EMFILE and the like: the connection waits in the backlog.
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            });
        }
        let tmp = format!("{count_file}.tmp");
        loop {
            let now = boot_ms();
            let fresh = last.iter().filter(|t| now.saturating_sub(t.load(Relaxed)) <= 3000).count();
            let line = format!(
                "{}.{:03} {} {} {} {}\n",
                now / 1000,
                now % 1000,
                total.load(Relaxed),
                fresh,
                addrs.len(),
                net_counters::handshakes()
            );
            if std::fs::write(&tmp, line).and_then(|_| std::fs::rename(&tmp, &count_file)).is_err() {
                eprintln!("check-listen: cannot write {count_file}");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}
