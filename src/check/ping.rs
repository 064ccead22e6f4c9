//! `ping` checks: one ICMP echo request to the real server, up when its reply comes back
//! (keepalived's PING_CHECK). The caller bounds the wait by the check's timeout.
//!
//! A raw socket per attempt (the director runs with CAP_NET_RAW, as VRRP needs), connected
//! to the real server so that the kernel passes only what comes from it, and filtered to
//! echo replies. keepalived uses unprivileged ICMP sockets instead and widens
//! `net.ipv4.ping_group_range` for them; a raw socket needs no system setting changed.

use super::icmp::{self, Received};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Sequence numbers of this process's requests: a reply is matched to its request by it
/// (several checks may ping one address at once, and every one of their sockets gets every
/// reply).
static SEQ: AtomicU16 = AtomicU16::new(0);

/// ICMP_FILTER (linux/icmp.h) on SOL_RAW: a bit set per ICMPv4 type the socket does not want.
const ICMP_FILTER: libc::c_int = 1;
/// ICMP6_FILTER (netinet/icmp6.h) on IPPROTO_ICMPV6: 256 bits, a bit set per type blocked.
const ICMP6_FILTER: libc::c_int = 1;

fn filter_to_echo_replies(s: &Socket, v6: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (level, name, mask): (libc::c_int, libc::c_int, Vec<u32>) = if v6 {
        let mut m = vec![u32::MAX; 8];
        let t = usize::from(icmp::ECHO_REPLY_V6);
        m[t / 32] &= !(1 << (t % 32));
        (libc::IPPROTO_ICMPV6, ICMP6_FILTER, m)
    } else {
        (libc::SOL_RAW, ICMP_FILTER, vec![!(1u32 << icmp::ECHO_REPLY_V4)])
    };
    let len = (mask.len() * 4) as libc::socklen_t;
    // SAFETY: `mask` outlives the call and `len` is its size in bytes.
    let r = unsafe { libc::setsockopt(s.as_raw_fd(), level, name, mask.as_ptr().cast(), len) };
    if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

fn socket(target: IpAddr, bind: Option<IpAddr>) -> std::io::Result<Socket> {
    let v6 = target.is_ipv6();
    let (domain, proto) = if v6 { (Domain::IPV6, Protocol::ICMPV6) } else { (Domain::IPV4, Protocol::ICMPV4) };
    let s = Socket::new(domain, Type::RAW.nonblocking().cloexec(), Some(proto))?;
    filter_to_echo_replies(&s, v6)?;
    if let Some(b) = bind {
        s.bind(&SocketAddr::new(b, 0).into())?;
    }
    s.connect(&SocketAddr::new(target, 0).into())?;
    Ok(s)
}

/// One echo request to `target` from `bind` (if any); Ok when its reply arrives. Waits until
/// then: the caller's timeout ends it. An error the socket reports (the kernel's host
/// unreachable, when it reports one) fails it at once.
pub async fn ping(target: IpAddr, bind: Option<IpAddr>) -> Result<(), String> {
    let v6 = target.is_ipv6();
    let sock = socket(target, bind).map_err(|e| format!("ICMP socket for {target}: {e}"))?;
    // Readable only: the one send never waits.
    // SAFETY: the Socket owns its fd and closes it only when dropped, which happens only when
    // the AsyncFd is dropped.
    let fd = unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }.map_err(|e| format!("ICMP socket for {target}: {e}"))?;
    let id = std::process::id() as u16;
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    fd.get_ref().send(&icmp::echo_request(v6, id, seq)).map_err(|e| format!("ping {target}: {e}"))?;
    // An IPv4 header (at most 60 bytes), the header and data of a reply as large as the
    // request; anything longer is cut, which a reply of ours never is.
    let mut buf = [0u8; 60 + icmp::REQUEST_LEN];
    loop {
        let mut ready = fd.readable().await.map_err(|e| format!("ping {target}: {e}"))?;
        match ready.try_io(|s| {
            let mut sock: &Socket = s.get_ref();
            sock.read(&mut buf)
        }) {
            Ok(Ok(n)) => {
                if icmp::read(v6, &buf[..n], id, seq) == Ok(Received::Ours) {
                    return Ok(());
                }
            }
            Ok(Err(e)) => return Err(format!("ping {target}: {e}")),
            Err(_would_block) => {}
        }
    }
}
