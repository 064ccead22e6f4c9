//! Raw VRRP sockets (IP protocol 112), IPv4 and IPv6, multicast or unicast, bound to one
//! interface. Bytes in, bytes out: encoding, checksums and every RFC receive check belong
//! to `vrrp::packet`; this module only reports what the kernel says about each packet
//! (source, destination, TTL / hop limit, interface).

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::task::{Context, Poll, Waker};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use thiserror::Error;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::addr::{self, AddrError};
use super::link::{self, LinkError};

// The protocol number, groups and family are the codec's: one definition each.
pub use crate::vrrp::packet::{Family, IPPROTO_VRRP, MCAST_V4 as VRRP_GROUP_V4, MCAST_V6 as VRRP_GROUP_V6};
/// TTL / hop limit every VRRP packet is sent with (RFC 3768 5.2.3, RFC 5798 5.1.1.3).
pub const VRRP_TTL: u32 = 255;
/// DSCP/precedence "internetwork control", as keepalived marks adverts.
const TOS_INTERNETWORK_CONTROL: u32 = 0xc0;
/// Largest datagram we accept: well above any VRRP packet (max 255 addresses) plus headers.
const RECV_BUF: usize = 4096;

/// Where adverts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// To 224.0.0.18 / ff02::12 on the interface. The source is the interface's primary
    /// IPv4 address, or its IPv6 link-local address (RFC 5798 5.1.2.1).
    Multicast,
    /// To each peer, from `src` (keepalived's `unicast_src_ip` / `unicast_peer`).
    Unicast { src: IpAddr, peers: Vec<IpAddr> },
}

#[derive(Debug, Error)]
pub enum VrrpSocketError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Addr(#[from] AddrError),
    #[error(
        "{ifname} has no {what} to send VRRP adverts from (for IPv6 the link-local address may still be in duplicate address detection; retry shortly)"
    )]
    NoSourceAddress { ifname: String, what: &'static str },
    #[error("address {addr} does not belong to the {family:?} family of this VRRP socket")]
    FamilyMismatch { addr: IpAddr, family: Family },
    #[error("unicast mode on {ifname} needs at least one peer")]
    NoPeers { ifname: String },
    #[error("VRRP socket on {ifname}: {op}: {source}")]
    Io {
        ifname: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("VRRP socket on {ifname}: sending to {dst}: {source}")]
    Send {
        ifname: String,
        dst: IpAddr,
        #[source]
        source: io::Error,
    },
    #[error("VRRP socket on {ifname}: received a malformed or truncated datagram ({len} bytes)")]
    Malformed { ifname: String, len: usize },
}

/// What the kernel told us about a received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit as received (RFC check: must be 255).
    pub ttl: u8,
    /// Interface the packet arrived on.
    pub ifindex: u32,
}

/// An open VRRP socket for one interface and family.
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    family: Family,
    ifname: String,
    ifindex: u32,
    src: IpAddr,
    dests: Vec<IpAddr>,
}

impl std::fmt::Debug for VrrpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VrrpSocket")
            .field("family", &self.family)
            .field("ifname", &self.ifname)
            .field("ifindex", &self.ifindex)
            .field("src", &self.src)
            .field("dests", &self.dests)
            .finish()
    }
}

fn family_of(a: &IpAddr) -> Family {
    if a.is_ipv4() { Family::Inet } else { Family::Inet6 }
}

/// The interface's primary IPv4 address; for a VRRP virtual MAC interface, which has none
/// (a macvlan), that of the link under it, as keepalived's adverts carry.
fn primary_ipv4_or_lower(ifindex: u32) -> Result<Option<std::net::Ipv4Addr>, VrrpSocketError> {
    if let Some(a) = addr::primary_ipv4(ifindex)? {
        return Ok(Some(a));
    }
    match link::link_by_index(ifindex)? {
        l if l.kind.as_deref() == Some("macvlan") => match l.lower {
            Some(lower) => Ok(addr::primary_ipv4(lower)?),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

fn setsockopt_int(sock: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: valid fd, int-sized option value.
    let rc = unsafe {
        libc::setsockopt(sock.as_raw_fd(), level, name, &value as *const i32 as *const libc::c_void, size_of::<i32>() as libc::socklen_t)
    };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

impl VrrpSocket {
    /// Open, configure and register the socket. Must be called inside a tokio runtime; the
    /// socket lives in the calling thread's network namespace.
    pub fn open(ifname: &str, family: Family, mode: Mode) -> Result<Self, VrrpSocketError> {
        let ifindex = link::ifindex(ifname)?;
        let io_err = |op: &'static str| {
            let ifname = ifname.to_owned();
            move |source| VrrpSocketError::Io { ifname: ifname.clone(), op, source }
        };

        // Validate the mode and find the source address before touching the kernel.
        let (src, dests) = match &mode {
            Mode::Multicast => {
                let src = match family {
                    Family::Inet => primary_ipv4_or_lower(ifindex)?.map(IpAddr::V4),
                    Family::Inet6 => addr::link_local_ipv6(ifindex)?.map(IpAddr::V6),
                };
                let src = src.ok_or_else(|| VrrpSocketError::NoSourceAddress {
                    ifname: ifname.to_owned(),
                    what: match family {
                        Family::Inet => "primary IPv4 address",
                        Family::Inet6 => "usable IPv6 link-local address",
                    },
                })?;
                let group = match family {
                    Family::Inet => IpAddr::V4(VRRP_GROUP_V4),
                    Family::Inet6 => IpAddr::V6(VRRP_GROUP_V6),
                };
                (src, vec![group])
            }
            Mode::Unicast { src, peers } => {
                for a in std::iter::once(src).chain(peers) {
                    if family_of(a) != family {
                        return Err(VrrpSocketError::FamilyMismatch { addr: *a, family });
                    }
                }
                if peers.is_empty() {
                    return Err(VrrpSocketError::NoPeers { ifname: ifname.to_owned() });
                }
                (*src, peers.clone())
            }
        };

        let domain = match family {
            Family::Inet => Domain::IPV4,
            Family::Inet6 => Domain::IPV6,
        };
        let sock =
            Socket::new(domain, Type::RAW, Some(Protocol::from(i32::from(IPPROTO_VRRP)))).map_err(io_err("socket(SOCK_RAW, 112)"))?;
        sock.set_nonblocking(true).map_err(io_err("O_NONBLOCK"))?;
        sock.bind_device(Some(ifname.as_bytes())).map_err(io_err("SO_BINDTODEVICE"))?;

        match family {
            Family::Inet => {
                // Only deliver groups this socket joined, not every group any socket joined.
                sock.set_multicast_all_v4(false).map_err(io_err("IP_MULTICAST_ALL"))?;
                setsockopt_int(&sock, libc::IPPROTO_IP, libc::IP_PKTINFO, 1).map_err(io_err("IP_PKTINFO"))?;
                sock.set_ttl_v4(VRRP_TTL).map_err(io_err("IP_TTL"))?;
                sock.set_multicast_ttl_v4(VRRP_TTL).map_err(io_err("IP_MULTICAST_TTL"))?;
                sock.set_multicast_loop_v4(false).map_err(io_err("IP_MULTICAST_LOOP"))?;
                sock.set_tos_v4(TOS_INTERNETWORK_CONTROL).map_err(io_err("IP_TOS"))?;
                let IpAddr::V4(src4) = src else { unreachable!("family checked") };
                // The interface and the source of multicast sends.
                set_multicast_if_v4(&sock, ifindex, src4).map_err(io_err("IP_MULTICAST_IF"))?;
                if mode == Mode::Multicast {
                    // No bind(): an IPv4 raw socket bound to an address only receives
                    // packets addressed to it, never the group.
                    sock.join_multicast_v4_n(&VRRP_GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))
                        .map_err(io_err("joining 224.0.0.18"))?;
                } else {
                    sock.bind(&SockAddr::from(SocketAddrV4::new(src4, 0))).map_err(io_err("binding the source address"))?;
                }
            }
            Family::Inet6 => {
                match sock.set_multicast_all_v6(false) {
                    // Kernels before 4.20 lack the option; SO_BINDTODEVICE still limits
                    // delivery to this interface.
                    Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {}
                    r => r.map_err(io_err("IPV6_MULTICAST_ALL"))?,
                }
                setsockopt_int(&sock, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1).map_err(io_err("IPV6_RECVPKTINFO"))?;
                sock.set_recv_hoplimit_v6(true).map_err(io_err("IPV6_RECVHOPLIMIT"))?;
                sock.set_unicast_hops_v6(VRRP_TTL).map_err(io_err("IPV6_UNICAST_HOPS"))?;
                sock.set_multicast_hops_v6(VRRP_TTL).map_err(io_err("IPV6_MULTICAST_HOPS"))?;
                sock.set_multicast_loop_v6(false).map_err(io_err("IPV6_MULTICAST_LOOP"))?;
                sock.set_multicast_if_v6(ifindex).map_err(io_err("IPV6_MULTICAST_IF"))?;
                sock.set_tclass_v6(TOS_INTERNETWORK_CONTROL).map_err(io_err("IPV6_TCLASS"))?;
                let IpAddr::V6(src6) = src else { unreachable!("family checked") };
                sock.bind(&SockAddr::from(SocketAddrV6::new(src6, 0, 0, scope_for(&src6, ifindex))))
                    .map_err(io_err("binding the source address"))?;
                if mode == Mode::Multicast {
                    sock.join_multicast_v6(&VRRP_GROUP_V6, ifindex).map_err(io_err("joining ff02::12"))?;
                }
            }
        }

        // Readable only: sends never wait for room (`send_to`), and a write interest would
        // wake the runtime each time an advert leaves the send buffer.
        // SAFETY: the Socket owns its fd and closes it only when dropped, which happens only
        // when the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }.map_err(|e| VrrpSocketError::Io {
            ifname: ifname.to_owned(),
            op: "registering with tokio",
            source: e.into(),
        })?;
        Ok(VrrpSocket { fd, family, ifname: ifname.to_owned(), ifindex, src, dests })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The source address every packet carries (needed for the VRRPv3 pseudo-header).
    pub fn source(&self) -> IpAddr {
        self.src
    }

    /// Where [`send`](Self::send) sends: the group, or the unicast peers.
    pub fn destinations(&self) -> &[IpAddr] {
        &self.dests
    }

    /// Replace the unicast peers (policy reload). Ignored for a multicast socket's group.
    pub fn set_unicast_peers(&mut self, peers: Vec<IpAddr>) -> Result<(), VrrpSocketError> {
        if let Some(a) = peers.iter().find(|a| family_of(a) != self.family) {
            return Err(VrrpSocketError::FamilyMismatch { addr: *a, family: self.family });
        }
        if peers.is_empty() {
            return Err(VrrpSocketError::NoPeers { ifname: self.ifname.clone() });
        }
        self.dests = peers;
        Ok(())
    }

    /// Send the same bytes to every destination. Right for multicast and for VRRPv2; for
    /// VRRPv3 unicast the checksum depends on the destination: use [`send_each`](Self::send_each).
    /// Tries every destination; returns the first error.
    pub fn send(&self, payload: &[u8]) -> Result<(), VrrpSocketError> {
        self.send_each(|_| payload.to_vec())
    }

    /// Send a payload built for each destination (VRRPv3 checksums cover the destination
    /// address). Tries every destination; returns the first error.
    pub fn send_each(&self, mut build: impl FnMut(IpAddr) -> Vec<u8>) -> Result<(), VrrpSocketError> {
        let mut first_err = None;
        for &dst in &self.dests {
            let payload = build(dst);
            if let Err(e) = self.send_to(&payload, dst) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The address packets leave from unless a send names another.
    pub fn src(&self) -> IpAddr {
        self.src
    }

    /// Send one payload to one destination, never waiting. A link that transmits nothing
    /// fills the socket's send buffer; a raw socket then fails with ENOBUFS at once, and any
    /// send that would block is an error too: waiting for room would hold up every other
    /// instance's adverts behind this one link.
    pub fn send_to(&self, payload: &[u8], dst: IpAddr) -> Result<(), VrrpSocketError> {
        self.send_from(payload, dst, None)
    }

    /// As [`send_to`](Self::send_to), from `src` when it is given and is not the socket's own
    /// source: a local address of the instance's own (keepalived's `mcast_src_ip`). The
    /// kernel is given it with the packet (IP_PKTINFO / IPV6_PKTINFO), so that the instances
    /// of one link keep sharing its multicast socket whatever their sources.
    pub fn send_from(&self, payload: &[u8], dst: IpAddr, src: Option<IpAddr>) -> Result<(), VrrpSocketError> {
        let sa = match dst {
            IpAddr::V4(a) => SockAddr::from(SocketAddrV4::new(a, 0)),
            IpAddr::V6(a) => SockAddr::from(SocketAddrV6::new(a, 0, 0, scope_for(&a, self.ifindex))),
        };
        if family_of(&dst) != self.family {
            return Err(VrrpSocketError::FamilyMismatch { addr: dst, family: self.family });
        }
        let from = src.filter(|s| *s != self.src);
        if let Some(s) = from
            && family_of(&s) != self.family
        {
            return Err(VrrpSocketError::FamilyMismatch { addr: s, family: self.family });
        }
        // The socket is non-blocking (it is registered with the runtime).
        let sent = match from {
            None => self.fd.get_ref().send_to(payload, &sa).map(|_| ()),
            Some(s) => sendmsg_from(self.fd.get_ref(), payload, &sa, s, self.ifindex),
        };
        sent.map_err(|source| VrrpSocketError::Send { ifname: self.ifname.clone(), dst, source })
    }

    /// Receive the next packet: the VRRP bytes (IP header removed) and what the kernel
    /// says about it.
    pub async fn recv(&self) -> Result<(Vec<u8>, RecvMeta), VrrpSocketError> {
        let mut buf = vec![0u8; RECV_BUF];
        let raw = self.fd.async_io(Interest::READABLE, |s| recvmsg(s, &mut buf)).await.map_err(|source| VrrpSocketError::Io {
            ifname: self.ifname.clone(),
            op: "recvmsg",
            source,
        })?;
        self.packet(&buf, &raw).map(|(bytes, meta)| (bytes.to_vec(), meta))
    }

    /// Ready when datagrams may be waiting; otherwise `cx` is woken when some arrive. For a
    /// loop that reads with [`recv_queued`](Self::recv_queued) itself instead of a task per
    /// socket: one wake-up per packet, not one for a reader task and one for its channel.
    pub fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        // An error (the runtime shutting down) is ready too: `recv_queued` reports it.
        self.fd.poll_read_ready(cx).map(|_| ())
    }

    /// Read the datagrams waiting, at most [`RECV_BATCH`], with one `recvmmsg` and without
    /// waiting; 0 when none waited (or the runtime has not seen the socket readable). Read
    /// each with [`packet_in`](Self::packet_in). The socket stays readable for
    /// [`poll_recv_ready`](Self::poll_recv_ready) only when the batch was full: a shorter one
    /// emptied the queue, and any datagram arriving later is a new readiness event (epoll
    /// reports every arrival), so no second call finding the socket empty is needed.
    pub fn recv_queued(&self, bufs: &mut RecvBuffers) -> Result<usize, VrrpSocketError> {
        bufs.count = 0;
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(ready) = self.fd.poll_read_ready(&mut cx) else { return Ok(0) };
        let io_err = |source| VrrpSocketError::Io { ifname: self.ifname.clone(), op: "recvmmsg", source };
        let mut guard = ready.map_err(io_err)?;
        let n = match guard.try_io(|s| recvmmsg(s.get_ref(), bufs)) {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(io_err(e)),
            // Nothing waited: `try_io` cleared the readiness.
            Err(_) => return Ok(0),
        };
        if n < RECV_BATCH {
            guard.clear_ready();
        }
        bufs.count = n;
        Ok(n)
    }

    /// Datagram `i` of the last [`recv_queued`](Self::recv_queued): the VRRP bytes and what the
    /// kernel says about it. `None` past the datagrams read.
    pub fn packet_in<'a>(&self, bufs: &'a RecvBuffers, i: usize) -> Option<Result<(&'a [u8], RecvMeta), VrrpSocketError>> {
        (i < bufs.count).then(|| self.packet(&bufs.bufs[i], &bufs.raw[i]))
    }

    /// The VRRP bytes of one datagram in `buf` and what the kernel says about it.
    fn packet<'a>(&self, buf: &'a [u8], raw: &RawRecv) -> Result<(&'a [u8], RecvMeta), VrrpSocketError> {
        let malformed = || VrrpSocketError::Malformed { ifname: self.ifname.clone(), len: raw.len };
        if raw.truncated || raw.len > buf.len() {
            return Err(malformed());
        }
        let data = &buf[..raw.len];
        match self.family {
            Family::Inet => {
                // The IPv4 raw socket hands us the IP header: TTL, src and dst come from it.
                let (head, message) = crate::vrrp::packet::split_ipv4(data).ok_or_else(malformed)?;
                let meta = RecvMeta {
                    src: IpAddr::V4(head.src),
                    dst: IpAddr::V4(head.dst),
                    ttl: head.ttl,
                    ifindex: raw.ifindex.unwrap_or(self.ifindex),
                };
                Ok((message, meta))
            }
            Family::Inet6 => {
                let src = match raw.src {
                    Some(SocketAddr::V6(a)) => IpAddr::V6(*a.ip()),
                    _ => return Err(malformed()),
                };
                let meta = RecvMeta {
                    src,
                    dst: raw.dst6.map(IpAddr::V6).ok_or_else(malformed)?,
                    ttl: raw.hoplimit.ok_or_else(malformed)?,
                    ifindex: raw.ifindex.unwrap_or(self.ifindex),
                };
                Ok((data, meta))
            }
        }
    }
}

/// How many datagrams one [`VrrpSocket::recv_queued`] reads at most.
pub const RECV_BATCH: usize = 8;

/// Buffers for [`VrrpSocket::recv_queued`], kept between calls: receiving allocates nothing.
pub struct RecvBuffers {
    bufs: Box<[[u8; RECV_BUF]; RECV_BATCH]>,
    raw: [RawRecv; RECV_BATCH],
    /// Datagrams read by the last call.
    count: usize,
}

impl Default for RecvBuffers {
    fn default() -> Self {
        const EMPTY: RawRecv = RawRecv { len: 0, truncated: false, src: None, ifindex: None, dst6: None, hoplimit: None };
        RecvBuffers { bufs: Box::new([[0; RECV_BUF]; RECV_BATCH]), raw: [EMPTY; RECV_BATCH], count: 0 }
    }
}

impl std::fmt::Debug for RecvBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBuffers").field("count", &self.count).finish()
    }
}

/// Link-local addresses need the interface as scope id; others must not have one.
fn scope_for(a: &Ipv6Addr, ifindex: u32) -> u32 {
    if addr::is_link_local(a) || a.segments()[0] == 0xff02 { ifindex } else { 0 }
}

fn set_multicast_if_v4(sock: &Socket, ifindex: u32, src: Ipv4Addr) -> io::Result<()> {
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: u32::from(src).to_be() },
        imr_ifindex: ifindex as i32,
    };
    // SAFETY: valid fd and a correctly sized ip_mreqn.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            &mreqn as *const _ as *const libc::c_void,
            size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// sendmsg(2) of `payload` to `dst` with the source address `src` and the interface in a
/// packet-info control message (ip(7) IP_PKTINFO `ipi_spec_dst`, ipv6(7) IPV6_PKTINFO).
fn sendmsg_from(sock: &Socket, payload: &[u8], dst: &SockAddr, src: IpAddr, ifindex: u32) -> io::Result<()> {
    // u64 alignment satisfies cmsghdr alignment; 64 bytes hold either control message.
    let mut control = [0u64; 8];
    let (level, kind, len) = match src {
        IpAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_PKTINFO, size_of::<libc::in_pktinfo>()),
        IpAddr::V6(_) => (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, size_of::<libc::in6_pktinfo>()),
    };
    let mut iov = libc::iovec { iov_base: payload.as_ptr() as *mut libc::c_void, iov_len: payload.len() };
    // SAFETY: an all-zero msghdr is a valid initial value.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = dst.as_ptr() as *mut libc::c_void;
    msg.msg_namelen = dst.len();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(len as u32) } as usize;
    debug_assert!(msg.msg_controllen <= size_of_val(&control));
    // SAFETY: msg_control points at `control`, which has room for one control message of
    // `len` bytes (checked above); CMSG_FIRSTHDR and CMSG_DATA stay inside it, and the data
    // is written unaligned.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = level;
        (*c).cmsg_type = kind;
        (*c).cmsg_len = libc::CMSG_LEN(len as u32) as usize;
        match src {
            IpAddr::V4(a) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: ifindex as i32,
                    ipi_spec_dst: libc::in_addr { s_addr: u32::from(a).to_be() },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>(), info);
            }
            IpAddr::V6(a) => {
                let info = libc::in6_pktinfo { ipi6_addr: libc::in6_addr { s6_addr: a.octets() }, ipi6_ifindex: ifindex };
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>(), info);
            }
        }
    }
    // SAFETY: msg points at live buffers of the stated sizes for the duration of the call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_DONTWAIT) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

struct RawRecv {
    len: usize,
    truncated: bool,
    src: Option<SocketAddr>,
    ifindex: Option<u32>,
    dst6: Option<Ipv6Addr>,
    hoplimit: Option<u8>,
}

fn recvmsg(sock: &Socket, buf: &mut [u8]) -> io::Result<RawRecv> {
    // SAFETY: all-zero sockaddr_storage / msghdr are valid initial values.
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    // u64 alignment satisfies cmsghdr alignment.
    let mut control = [MaybeUninit::<u64>::uninit(); 32];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);

    // SAFETY: msg points at live buffers of the stated sizes for the duration of the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(raw_of(&msg, n as usize, &name))
}

/// Read up to [`RECV_BATCH`] datagrams into `bufs` with one `recvmmsg` (the socket is
/// non-blocking: it returns what is queued, or `WouldBlock` when nothing is).
fn recvmmsg(sock: &Socket, bufs: &mut RecvBuffers) -> io::Result<usize> {
    // SAFETY: all-zero sockaddr_storage / mmsghdr are valid initial values.
    let mut names: [libc::sockaddr_storage; RECV_BATCH] = unsafe { zeroed() };
    let mut control = [[MaybeUninit::<u64>::uninit(); 32]; RECV_BATCH];
    let mut iovs: [libc::iovec; RECV_BATCH] = unsafe { zeroed() };
    let mut msgs: [libc::mmsghdr; RECV_BATCH] = unsafe { zeroed() };
    for i in 0..RECV_BATCH {
        iovs[i] = libc::iovec { iov_base: bufs.bufs[i].as_mut_ptr().cast(), iov_len: RECV_BUF };
        let m = &mut msgs[i].msg_hdr;
        m.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
        m.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        m.msg_iov = &mut iovs[i];
        m.msg_iovlen = 1;
        m.msg_control = control[i].as_mut_ptr().cast();
        m.msg_controllen = size_of_val(&control[i]);
    }
    // SAFETY: every mmsghdr points at live buffers of the stated sizes for the duration of the
    // call; a null timeout.
    let n = unsafe { libc::recvmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), RECV_BATCH as libc::c_uint, 0, std::ptr::null_mut()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = (n as usize).min(RECV_BATCH);
    for i in 0..n {
        bufs.raw[i] = raw_of(&msgs[i].msg_hdr, msgs[i].msg_len as usize, &names[i]);
    }
    Ok(n)
}

/// What one `recvmsg` (or one message of a `recvmmsg`) returned: its length, flags, source
/// and the control messages the socket asked for.
fn raw_of(msg: &libc::msghdr, len: usize, name: &libc::sockaddr_storage) -> RawRecv {
    let mut out = RawRecv { len, truncated: msg.msg_flags & libc::MSG_TRUNC != 0, src: None, ifindex: None, dst6: None, hoplimit: None };
    out.src = match i32::from(name.ss_family) {
        libc::AF_INET6 if msg.msg_namelen as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the kernel wrote a sockaddr_in6 (family checked, length checked).
            let sin6: libc::sockaddr_in6 = unsafe { std::ptr::read_unaligned((name as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(sin6.sin6_addr.s6_addr), 0, 0, sin6.sin6_scope_id)))
        }
        libc::AF_INET if msg.msg_namelen as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: as above, for sockaddr_in.
            let sin: libc::sockaddr_in = unsafe { std::ptr::read_unaligned((name as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)), 0)))
        }
        _ => None,
    };

    // SAFETY: walking the control buffer the kernel filled, with the libc CMSG macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let pi: libc::in_pktinfo = std::ptr::read_unaligned(data.cast());
                    out.ifindex = Some(pi.ipi_ifindex as u32);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let pi: libc::in6_pktinfo = std::ptr::read_unaligned(data.cast());
                    out.ifindex = Some(pi.ipi6_ifindex);
                    out.dst6 = Some(Ipv6Addr::from(pi.ipi6_addr.s6_addr));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    let h: libc::c_int = std::ptr::read_unaligned(data.cast());
                    out.hoplimit = u8::try_from(h).ok();
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_ids() {
        assert_eq!(scope_for(&"fe80::1".parse().unwrap(), 7), 7);
        assert_eq!(scope_for(&VRRP_GROUP_V6, 7), 7);
        assert_eq!(scope_for(&"2001:db8::1".parse().unwrap(), 7), 0);
    }
}
