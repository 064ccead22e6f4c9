//! What the lab measures from the client's side of the LAN: HTTP requests through the VIP,
//! and VRRP adverts on the wire (for failover times). Both run on threads that have entered
//! the client's namespace.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Request {
    pub phase: usize,
    /// When it was sent.
    pub at: Instant,
    /// The real server's name, or the error.
    pub result: Result<String, String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Advert {
    pub at: Duration,
    pub src: IpAddr,
    pub vrid: u8,
    pub priority: u8,
}

/// State shared between the orchestrator and the observer threads.
#[derive(Default)]
pub struct Shared {
    pub phase: AtomicUsize,
    pub stop: AtomicBool,
    pub requests: Mutex<Vec<Request>>,
    pub adverts: Mutex<Vec<Advert>>,
    /// Each director's VRRP state when it changed (by director index; "down": no answer).
    pub states: Mutex<Vec<(Duration, usize, String)>>,
}

pub(super) fn get(src: IpAddr, dst: SocketAddr, timeout: Duration) -> Result<String, String> {
    let sock = socket2::Socket::new(socket2::Domain::for_address(dst), socket2::Type::STREAM, None).map_err(|e| e.to_string())?;
    sock.bind(&SocketAddr::new(src, 0).into()).map_err(|e| format!("bind {src}: {e}"))?;
    sock.connect_timeout(&dst.into(), timeout).map_err(|e| format!("connect: {e}"))?;
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n").map_err(|e| format!("send: {e}"))?;
    let mut r = String::new();
    s.read_to_string(&mut r).map_err(|e| format!("read: {e}"))?;
    let body = r.split_once("\r\n\r\n").map(|(_, b)| b.trim().to_string()).ok_or("no HTTP response")?;
    if body.is_empty() { Err("empty response".into()) } else { Ok(body) }
}

/// Send requests one at a time from the `sources` in turn, every `gap`, until told to stop
/// or `max` requests were sent. Returns when done; results go to `shared.requests`.
pub fn client(shared: Arc<Shared>, sources: Vec<IpAddr>, vip: SocketAddr, gap: Duration, max: usize) {
    for i in 0..max {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let phase = shared.phase.load(Ordering::Relaxed);
        // A client's TCP retransmits its SYN: give a request the time a browser would.
        let at = Instant::now();
        let result = get(sources[i % sources.len()], vip, Duration::from_secs(3));
        shared.requests.lock().unwrap().push(Request { phase, at, result });
        std::thread::sleep(gap);
    }
}

/// Record every VRRP advert seen on the client's LAN (IPv4 multicast) until told to stop.
pub fn adverts(shared: Arc<Shared>, ifname: &str, t0: Instant) -> std::io::Result<()> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))?;
    s.bind_device(Some(ifname.as_bytes()))?;
    // Join on this interface explicitly: the namespace has no route to pick one.
    let idx = crate::net::ifindex(ifname).map_err(std::io::Error::other)?;
    s.join_multicast_v4_n(&"224.0.0.18".parse().unwrap(), &socket2::InterfaceIndexOrAddress::Index(idx))?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
    while !shared.stop.load(Ordering::Relaxed) {
        let Ok(n) = s.recv(&mut buf) else { continue };
        // SAFETY: recv initialised the first n bytes.
        let b: Vec<u8> = buf[..n].iter().map(|x| unsafe { x.assume_init() }).collect();
        let ihl = ((b.first().copied().unwrap_or(0) & 0x0f) as usize) * 4;
        if b.len() < ihl + 4 || ihl < 20 {
            continue;
        }
        let src = IpAddr::from([b[12], b[13], b[14], b[15]]);
        let at = t0.elapsed();
        shared.adverts.lock().unwrap().push(Advert { at, src, vrid: b[ihl + 1], priority: b[ihl + 2] });
    }
    Ok(())
}

/// Ask each director (by control socket) for its first VRRP instance's state every `every`
/// until told to stop, recording the changes; a director that does not answer is "down".
pub fn vrrp_states(shared: Arc<Shared>, sockets: Vec<std::path::PathBuf>, t0: Instant, every: Duration) {
    let mut last: Vec<Option<String>> = vec![None; sockets.len()];
    while !shared.stop.load(Ordering::Relaxed) {
        for (i, path) in sockets.iter().enumerate() {
            let state = crate::control::client::Client::connect(path)
                .ok()
                .and_then(|mut c| c.call(crate::control::Command::Status { text_only: false, brief: true }).ok())
                .and_then(|r| r.result)
                .and_then(|s| s["vrrp"].get(0).and_then(|v| v["state"].as_str()).map(str::to_string))
                .unwrap_or_else(|| "down".into());
            if last[i].as_ref() != Some(&state) {
                shared.states.lock().unwrap().push((t0.elapsed(), i, state.clone()));
                last[i] = Some(state);
            }
        }
        std::thread::sleep(every);
    }
}
