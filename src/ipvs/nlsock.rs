//! The IPVS socket itself: a generic netlink socket as a file descriptor that sends a
//! datagram and receives one. No parsing and no decisions (those are in `wire` and `kernel`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// SOL_NETLINK and NETLINK_CAP_ACK (include/uapi/linux/netlink.h): with CAP_ACK the kernel's
/// error answers carry only the request's header, not its whole payload, so a batch's answers
/// take less of the receive buffer.
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;

/// At most this many datagrams per receive.
const MAX_SLOTS: usize = 64;

/// The receive buffer asked for (the kernel doubles it for its bookkeeping).
const RCVBUF: libc::c_int = 1 << 20;

pub struct NlSock {
    fd: OwnedFd,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(rc) }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: a valid socket, and a pointer to a live value of the size given.
    check(unsafe {
        libc::setsockopt(fd.as_raw_fd(), level, name, v as *const T as *const libc::c_void, std::mem::size_of::<T>() as libc::socklen_t)
    })
    .map(|_| ())
}

impl NlSock {
    /// A NETLINK_GENERIC socket bound to a port id the kernel picks. A receive that waits
    /// longer than `recv_timeout` fails (EAGAIN) instead of holding the caller.
    pub fn open(recv_timeout: Duration) -> io::Result<NlSock> {
        // SAFETY: plain socket(2); the descriptor is owned at once.
        let fd = check(unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_GENERIC) })?;
        // SAFETY: fd was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; all zero means "the kernel picks the port id".
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: a valid socket and a correctly sized sockaddr_nl.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        })?;
        let tv =
            libc::timeval { tv_sec: recv_timeout.as_secs() as libc::time_t, tv_usec: recv_timeout.subsec_micros() as libc::suseconds_t };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        // Older kernels lack CAP_ACK: answers are then only larger.
        let _ = setsockopt(&fd, SOL_NETLINK, NETLINK_CAP_ACK, &1 as &libc::c_int);
        // Room for a batch's answers: an answer that finds the receive buffer full is dropped
        // (and the next receive fails with ENOBUFS). FORCE passes net.core.rmem_max, as root;
        // otherwise the kernel caps the size at rmem_max.
        if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RCVBUF).is_err() {
            let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &RCVBUF);
        }
        Ok(NlSock { fd })
    }

    /// Send one datagram (one or several netlink messages) to the kernel.
    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        loop {
            // SAFETY: a valid socket and a live buffer of that length; the socket is bound, so
            // no address is needed (the kernel is port 0).
            let n = unsafe { libc::send(self.fd.as_raw_fd(), buf.as_ptr() as *const libc::c_void, buf.len(), 0) };
            match n {
                n if n as usize == buf.len() => return Ok(()),
                n if n >= 0 => return Err(io::Error::other(format!("short send: {n} of {} bytes", buf.len()))),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Receive what has come: block for one datagram, then take those already queued,
    /// into `buf` cut into slots of `slot` bytes (one datagram each). Their (offset, length)
    /// go to `out`. A datagram larger than its slot is an error, not a silent truncation.
    /// One recvmmsg(2) returns a whole batch's acks, or a dump's part and its end.
    pub fn recv_many(&self, buf: &mut [u8], slot: usize, out: &mut Vec<(usize, usize)>) -> io::Result<()> {
        out.clear();
        let n = (buf.len() / slot).clamp(1, MAX_SLOTS);
        let slot = slot.min(buf.len());
        let base = buf.as_mut_ptr();
        let mut iov: [libc::iovec; MAX_SLOTS] = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; MAX_SLOTS];
        // SAFETY: mmsghdr is plain data; all zero is a valid empty header.
        let mut hdrs: [libc::mmsghdr; MAX_SLOTS] = unsafe { std::mem::zeroed() };
        for i in 0..n {
            // SAFETY: slot i lies inside `buf` (n * slot <= buf.len()).
            iov[i] = libc::iovec { iov_base: unsafe { base.add(i * slot) } as *mut libc::c_void, iov_len: slot };
            hdrs[i].msg_hdr.msg_iov = &mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        let got = loop {
            // SAFETY: a valid socket; `n` headers, each pointing at its own live iovec and
            // slot of `buf`, all borrowed for the call only.
            let r = unsafe {
                libc::recvmmsg(self.fd.as_raw_fd(), hdrs.as_mut_ptr(), n as libc::c_uint, libc::MSG_WAITFORONE, std::ptr::null_mut())
            };
            if r >= 0 {
                break r as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        for (i, h) in hdrs.iter().enumerate().take(got) {
            if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                return Err(io::Error::other(format!("an answer does not fit the {slot}-byte buffer")));
            }
            out.push((i * slot, h.msg_len as usize));
        }
        Ok(())
    }
}

/// The socket of IPVS's sockopt interface: a raw IPv4 socket, as libipvs opens it
/// (`socket(AF_INET, SOCK_RAW, IPPROTO_RAW)`; needs CAP_NET_RAW to open and CAP_NET_ADMIN
/// for the calls). Only `getsockopt` is used on it; nothing is sent or received.
pub struct SockoptSock {
    fd: OwnedFd,
}

impl SockoptSock {
    pub fn open() -> io::Result<SockoptSock> {
        // SAFETY: plain socket(2); the descriptor is owned at once.
        let fd = check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_RAW) })?;
        // SAFETY: fd was just returned by socket(2) and nothing else owns it.
        Ok(SockoptSock { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// `getsockopt(IPPROTO_IP, cmd)` with `buf` as the argument the kernel reads and fills
    /// in place; its length is what the kernel checks (the kernel does not change it).
    pub fn get(&self, cmd: libc::c_int, buf: &mut [u8]) -> io::Result<()> {
        let want = libc::socklen_t::try_from(buf.len()).map_err(|_| io::Error::other("sockopt argument too large"))?;
        loop {
            let mut len = want;
            // SAFETY: a valid socket and a live, writable buffer of `len` bytes.
            let rc =
                unsafe { libc::getsockopt(self.fd.as_raw_fd(), libc::IPPROTO_IP, cmd, buf.as_mut_ptr() as *mut libc::c_void, &mut len) };
            if rc == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}
