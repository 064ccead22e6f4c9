//! `lvsd run` raises its soft limit on open files to the hard limit (checks hold sockets).
//! Alone in its file: it lowers the test process's own limit, which its children inherit.

mod common;

use common::Daemon;

fn soft_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("Max open files in /proc/PID/limits");
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[3].to_string(), f[4].to_string())
}

#[test]
fn run_raises_the_open_files_limit() {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) };
    assert!(l.rlim_max > 256, "hard limit {} leaves nothing to raise", l.rlim_max);
    l.rlim_cur = 256;
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) }, 0);
    let d = Daemon::start("lvsd.service 's' { vip = '192.0.2.1:80', reals = { '198.51.100.1:80' } }", "a", &[]);
    let (soft, hard) = soft_limit(d.child.id());
    assert_eq!(soft, hard, "soft limit of lvsd run; log:\n{}", d.log());
    assert_ne!(soft, "256");
}
