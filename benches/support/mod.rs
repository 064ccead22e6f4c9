//! Shared by the benchmarks: an on-the-wire capture (AF_PACKET with kernel timestamps) that
//! decodes VRRP adverts and gratuitous ARP, statistics, and per-process CPU and memory from
//! /proc.
#![allow(dead_code)]

use lvsd::net::netns::Netns;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, the clock of capture timestamps, file mtimes and lvsd events.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A VRRP advert: IPv4 source, version, VRID, priority.
    Vrrp { src: Ipv4Addr, version: u8, vrid: u8, prio: u8 },
    /// A gratuitous ARP (sender address == target address).
    Garp { ip: Ipv4Addr },
}

#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Kernel receive timestamp, seconds since the epoch.
    pub t: f64,
    /// Ethernet source address.
    pub mac: [u8; 6],
    pub kind: Kind,
}

/// Decode the frames the benchmarks care about; everything else is `None`.
pub fn decode(f: &[u8]) -> Option<([u8; 6], Kind)> {
    if f.len() < 14 {
        return None;
    }
    let mac: [u8; 6] = f[6..12].try_into().unwrap();
    let ethertype = u16::from_be_bytes([f[12], f[13]]);
    let p = &f[14..];
    match ethertype {
        0x0800 if p.len() >= 20 => {
            let ihl = ((p[0] & 0x0f) as usize) * 4;
            if p[9] != 112 || p.len() < ihl + 3 {
                return None;
            }
            let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let v = &p[ihl..];
            Some((mac, Kind::Vrrp { src, version: v[0] >> 4, vrid: v[1], prio: v[2] }))
        }
        0x0806 if p.len() >= 28 => {
            let spa = Ipv4Addr::new(p[14], p[15], p[16], p[17]);
            let tpa = Ipv4Addr::new(p[24], p[25], p[26], p[27]);
            (spa == tpa).then_some((mac, Kind::Garp { ip: spa }))
        }
        _ => None,
    }
}

/// A packet capture on one interface of a namespace, running on its own thread until
/// stopped, dropped, or its bounds (time and frame count) are reached.
pub struct Capture {
    frames: Arc<Mutex<Vec<Frame>>>,
    drops: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const MAX_FRAMES: usize = 2_000_000;
const MAX_SECONDS: u64 = 900;

impl Capture {
    pub fn start(ns: &Netns, ifname: &str) -> Capture {
        let ifname = ifname.to_owned();
        let fd: OwnedFd = ns.run(move || open_packet_socket(&ifname)).expect("enter namespace").expect("packet socket");
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let drops = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (f2, s2, d2) = (frames.clone(), stop.clone(), drops.clone());
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut buf = [0u8; 2048];
            let mut cbuf = [0u64; 16];
            let mut polled = 0u64;
            while !s2.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(MAX_SECONDS) {
                let Some((n, t)) = recv(&fd, &mut buf, &mut cbuf) else {
                    d2.fetch_add(kernel_drops(&fd), Ordering::Relaxed);
                    continue;
                };
                polled += 1;
                if polled.is_multiple_of(256) {
                    d2.fetch_add(kernel_drops(&fd), Ordering::Relaxed);
                }
                if let Some((mac, kind)) = decode(&buf[..n]) {
                    let mut v = f2.lock().unwrap();
                    if v.len() >= MAX_FRAMES {
                        eprintln!("capture: {MAX_FRAMES} frames, stopping");
                        break;
                    }
                    v.push(Frame { t, mac, kind });
                }
            }
            if start.elapsed() >= Duration::from_secs(MAX_SECONDS) {
                eprintln!("capture: {MAX_SECONDS} s, stopping");
            }
        });
        Capture { frames, drops, stop, thread: Some(thread) }
    }

    /// Frames the kernel dropped because the capture did not keep up (all frames, not only
    /// the decoded ones), since the start. A figure taken with drops is not to be trusted.
    pub fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }

    /// Whether the capture thread still runs (it stops at its time and frame bounds).
    pub fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// A copy of what was captured so far.
    pub fn frames(&self) -> Vec<Frame> {
        self.frames.lock().unwrap().clone()
    }

    /// Forget what was captured so far.
    pub fn clear(&self) {
        self.frames.lock().unwrap().clear();
    }

    /// Poll `cond` over the captured frames until it returns `Some`, for at most `limit`.
    pub fn wait_for<T>(&self, limit: Duration, mut cond: impl FnMut(&[Frame]) -> Option<T>) -> Option<T> {
        let end = Instant::now() + limit;
        loop {
            if let Some(x) = cond(&self.frames.lock().unwrap()) {
                return Some(x);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open_packet_socket(ifname: &str) -> std::io::Result<OwnedFd> {
    let err = std::io::Error::last_os_error;
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, (libc::ETH_P_ALL as u16).to_be() as i32);
        if fd < 0 {
            return Err(err());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let cname = std::ffi::CString::new(ifname).unwrap();
        let ifindex = libc::if_nametoindex(cname.as_ptr());
        if ifindex == 0 {
            return Err(err());
        }
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        if libc::bind(fd.as_raw_fd(), &sll as *const _ as *const libc::sockaddr, std::mem::size_of_val(&sll) as u32) != 0 {
            return Err(err());
        }
        let mut mr: libc::packet_mreq = std::mem::zeroed();
        mr.mr_ifindex = ifindex as i32;
        mr.mr_type = libc::PACKET_MR_PROMISC as u16;
        let setopt = |level, name, val: *const libc::c_void, len| libc::setsockopt(fd.as_raw_fd(), level, name, val, len as u32);
        if setopt(libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mr as *const _ as *const _, std::mem::size_of_val(&mr)) != 0 {
            return Err(err());
        }
        let one: libc::c_int = 1;
        if setopt(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &one as *const _ as *const _, 4) != 0 {
            return Err(err());
        }
        let tv = libc::timeval { tv_sec: 0, tv_usec: 50_000 };
        if setopt(libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv as *const _ as *const _, std::mem::size_of_val(&tv)) != 0 {
            return Err(err());
        }
        // Room for seconds of frames even when the machine is busy (root may exceed rmem_max).
        let big: libc::c_int = 16 << 20;
        if setopt(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &big as *const _ as *const _, 4) != 0 {
            setopt(libc::SOL_SOCKET, libc::SO_RCVBUF, &big as *const _ as *const _, 4);
        }
        Ok(fd)
    }
}

/// Drops since the last call (PACKET_STATISTICS resets the counters it returns).
fn kernel_drops(fd: &OwnedFd) -> u64 {
    let mut st: libc::tpacket_stats = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&st) as libc::socklen_t;
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_STATISTICS, &mut st as *mut _ as *mut _, &mut len) };
    if r == 0 { st.tp_drops as u64 } else { 0 }
}

/// One frame and its kernel timestamp (seconds since the epoch); `None` on timeout.
fn recv(fd: &OwnedFd, buf: &mut [u8], cbuf: &mut [u64]) -> Option<(usize, f64)> {
    unsafe {
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut _, iov_len: buf.len() };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut _;
        msg.msg_controllen = std::mem::size_of_val(cbuf);
        let n = libc::recvmsg(fd.as_raw_fd(), &mut msg, 0);
        if n < 0 {
            return None;
        }
        let mut t = now();
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                t = ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Some((n as usize, t))
    }
}

/// The MAC address of `ifname` in `ns`.
pub fn mac_of(ns: &Netns, ifname: &str) -> [u8; 6] {
    let out = ns.ip(&["-o", "link", "show", "dev", ifname]).unwrap();
    let s = out.split("link/ether ").nth(1).expect("ether address").split_whitespace().next().unwrap();
    let v: Vec<u8> = s.split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
    v.try_into().unwrap()
}

/// Median, minimum and maximum (NaN when empty).
pub fn mmm(xs: &[f64]) -> (f64, f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    let med = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    (med, v[0], v[n - 1])
}

/// CPU seconds and resident memory (KiB) of one process, from /proc. The CPU is the sum of
/// its threads' time on a CPU in `/proc/PID/task/*/schedstat`, counted in nanoseconds by the
/// scheduler: utime + stime from `stat` are sampled at the clock tick, and a thread that wakes
/// a hundred times a second for microseconds is charged whole ticks or none, depending on
/// when it runs (its scheduling class changes that, not only its work).
pub fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).unwrap_or_default();
        ns += stat.split_whitespace().next().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    Some((ns as f64 / 1e9, rss))
}

/// Sum of [`proc_usage`] over several processes.
pub fn usage_of(pids: &[u32]) -> (f64, u64) {
    pids.iter().filter_map(|p| proc_usage(*p)).fold((0.0, 0), |(c, r), (c2, r2)| (c + c2, r + r2))
}

pub fn ms(x: f64) -> String {
    if x.is_nan() { "-".into() } else { format!("{:.1}", x * 1000.0) }
}

/// A short description of the machine for the figures.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned()))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cpus} CPUs ({model}), kernel {}, load average at start {}", kernel.trim(), load.join(" "))
}

/// Poll `cond` every 20 ms for at most `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// One request on a director's control socket, with a bound on the wait; `None` when the
/// director does not answer in time (the caller reports it instead of failing).
pub fn control_call(socket: &std::path::Path, req: &serde_json::Value, limit: Duration) -> Option<serde_json::Value> {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    s.set_write_timeout(Some(limit)).ok()?;
    let mut line = serde_json::to_vec(req).ok()?;
    line.push(b'\n');
    s.write_all(&line).ok()?;
    let mut r = String::new();
    BufReader::new(s).read_line(&mut r).ok()?;
    let v: serde_json::Value = serde_json::from_str(&r).ok()?;
    (v["ok"] == true).then(|| v["result"].clone())
}
