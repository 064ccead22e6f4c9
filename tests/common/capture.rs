//! Frames on the wire, read by a packet socket in a test's namespace.
#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use lvsd::net::link;
use lvsd::net::netns::Netns;
use socket2::{Domain, Protocol, Socket, Type};

const WAIT: Duration = Duration::from_secs(5);

/// A packet socket receiving every frame on `eth0` of the namespace it is created in.
pub fn capture(ns: &Netns) -> Socket {
    ns.run(|| {
        let all = (libc::ETH_P_ALL as u16).to_be();
        let s = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(i32::from(all)))).unwrap();
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = all;
        sll.sll_ifindex = link::ifindex("eth0").unwrap() as i32;
        let rc = unsafe {
            libc::bind(s.as_raw_fd(), (&sll as *const libc::sockaddr_ll).cast(), size_of::<libc::sockaddr_ll>() as libc::socklen_t)
        };
        assert_eq!(rc, 0, "bind packet socket: {}", std::io::Error::last_os_error());
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        s
    })
    .unwrap()
}

/// Read frames (bounded in time and count) until `want` accepts one.
pub fn wait_frame(sock: &Socket, what: &str, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let start = Instant::now();
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
    for _ in 0..10_000 {
        assert!(start.elapsed() < WAIT, "no {what} seen within {WAIT:?}");
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("capture: {e}"),
        };
        // SAFETY: recv initialised the first n bytes.
        let frame: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
        if want(&frame) {
            return frame;
        }
    }
    panic!("no {what} among 10000 frames");
}

/// A VRRP advert (IPv4 or IPv6, protocol 112) in an Ethernet frame.
pub fn is_vrrp(frame: &[u8]) -> bool {
    match frame.get(12..14) {
        Some([0x08, 0x00]) => frame.get(23) == Some(&112),
        Some([0x86, 0xdd]) => frame.get(20) == Some(&112),
        _ => false,
    }
}
