//! Bare TCP connect checks without a reactor registration per socket: a check opens a
//! non-blocking socket and starts the connect, and one task per check manager asks the kernel
//! about every connect in flight with a single poll(2): right after the checks due together
//! have sent their SYNs (on a LAN most answers are back by then), or as soon as 64 are
//! pending, then after 1, 2, 4 ... 64 ms while some still are.
//!
//! The check is half-open: SYN, the real server's SYN-ACK, then a reset. The socket asks for
//! delayed ACKs (TCP_QUICKACK off) before it connects, so the kernel completes the connect on
//! the SYN-ACK but holds back the handshake's last ACK (`tcp_rcv_synsent_state_process`), and
//! the reset reaches the real server before it: its kernel drops the half-made connection
//! (counted as `EmbryonicRsts`) and never makes a socket for the server's program to accept.
//! The check's outcome is the connect's, as with a full handshake: it succeeds exactly when a
//! SYN-ACK comes back. It saves the real server a socket, its accept and its teardown, and
//! the director a packet each way; HAProxy's bare TCP checks behave the same. Should the reset
//! come later than the delayed ACK's timer (200 ms), the handshake completes and is reset as
//! before.
//!
//! A socket whose connect succeeded is not closed but disconnected (connect(2) to AF_UNSPEC:
//! the peer gets a reset, as from a close with SO_LINGER 0) and kept for a later check, so a
//! passing check costs connect and disconnect plus its share of one poll: no socket creation
//! and teardown, no epoll_ctl add and delete. That is about a third less kernel time per check
//! than a fresh socket each time. The disconnect leaves ECONNRESET as the socket's pending
//! error; the next connect clears it as it starts (`tcp_connect_init`), so no getsockopt is
//! spent on it. It also clears the delayed-ACK setting (`inet_csk_delack_init`), so each
//! connect asks for it again.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::OnceLock;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The first wait after a poll that left connects pending; it doubles up to the longest.
const FIRST_WAIT: Duration = Duration::from_millis(1);
const LONGEST_WAIT: Duration = Duration::from_millis(64);
/// Connects a check may start before one of them polls them all, so that a burst of checks
/// does not hold thousands of sockets (descriptors) at once waiting for the poller's turn.
const BATCH: usize = 64;
/// Disconnected sockets kept for later checks, at most this many per address family.
const POOL: usize = 256;

/// How many sockets to keep per address family: [`POOL`], or a sixteenth of the limit on open
/// files when that is less, so that idle sockets never crowd out those the checks need.
fn pool_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| (crate::limits::open_files_soft() / 16).min(POOL as u64) as usize)
}

struct Entry {
    fd: RawFd,
    deadline: Instant,
    waker: Option<Waker>,
    /// poll's `revents` once the connect finished, [`TIMED_OUT`] if it did not in time.
    revents: Option<i16>,
}

/// `revents` of a connect that reached its deadline (poll reports only non-zero ones).
const TIMED_OUT: i16 = 0;

#[derive(Default)]
struct Slots {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    pending: usize,
    /// Pending connects at which the next one added polls them all: twice what the last poll
    /// left (connects to slow peers), at least [`BATCH`], so the polls stay linear in count.
    poll_at: usize,
    fds: Vec<libc::pollfd>,
    which: Vec<usize>,
}

/// The connects in flight of one check manager, and the poller that finishes them.
#[derive(Default)]
pub struct Connects {
    slots: RefCell<Slots>,
    added: Notify,
    /// Sockets ready to connect again: IPv4, IPv6.
    pool: RefCell<[Vec<Socket>; 2]>,
}

/// Takes a connect's slot back when its check ends or is dropped (timeout), before the
/// socket is closed: the poller never sees a closed, perhaps reused, descriptor.
struct Release<'a>(&'a Connects, usize);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let mut s = self.0.slots.borrow_mut();
        if let Some(e) = s.entries[self.1].take()
            && e.revents.is_none()
        {
            s.pending -= 1;
        }
        s.free.push(self.1);
    }
}

impl Connects {
    /// Check that `target` accepts a connection (from `bind`, if any) within `timeout`
    /// (`ErrorKind::TimedOut` after it, noticed within the poller's longest wait). The
    /// connection is reset at once. Needs [`run`](Self::run) running on the same thread.
    pub async fn check(&self, target: SocketAddr, bind: Option<IpAddr>, timeout: Duration) -> io::Result<()> {
        let s = self.connect(target, bind, timeout).await?;
        // A bound socket keeps its address after a disconnect: only unbound ones are kept.
        if bind.is_none() {
            self.keep(s, target.is_ipv6());
        }
        Ok(())
    }

    /// Connect from `bind` (if any) to `target` within `timeout`; the connected socket,
    /// non-blocking, with SO_LINGER 0 (a close resets the connection).
    async fn connect(&self, target: SocketAddr, bind: Option<IpAddr>, timeout: Duration) -> io::Result<Socket> {
        let s = match bind {
            None => self.pool.borrow_mut()[target.is_ipv6() as usize].pop(),
            Some(_) => None,
        };
        let s = match s {
            Some(s) => s,
            None => {
                let s = Socket::new(Domain::for_address(target), Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP))?;
                // A close resets the connection too (see `close_with_reset` in the runner).
                s.set_linger(Some(Duration::ZERO))?;
                if let Some(b) = bind {
                    s.bind(&SockAddr::from(SocketAddr::new(b, 0)))?;
                }
                s
            }
        };
        // Half-open: the kernel holds back the handshake's last ACK (see the module's text).
        s.set_tcp_quickack(false)?;
        match s.connect(&SockAddr::from(target)) {
            Ok(()) => return Ok(s),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let release = Release(self, self.add(s.as_raw_fd(), Instant::now() + timeout));
        let revents = poll_fn(|cx| {
            let mut slots = self.slots.borrow_mut();
            let e = slots.entries[release.1].as_mut().expect("a connect's slot is kept until it ends");
            match e.revents {
                Some(r) => Poll::Ready(r),
                None => {
                    e.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        drop(release);
        if revents == TIMED_OUT {
            return Err(io::ErrorKind::TimedOut.into());
        }
        if revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            return Err(s.take_error()?.unwrap_or_else(|| io::Error::new(io::ErrorKind::ConnectionReset, "connection closed")));
        }
        Ok(s)
    }

    /// Reset `s`'s connection and keep the socket for a later check (or close it when the
    /// pool is full or the disconnect fails).
    fn keep(&self, s: Socket, v6: bool) {
        let mut pool = self.pool.borrow_mut();
        let pool = &mut pool[v6 as usize];
        if pool.len() < pool_size() && disconnect(&s).is_ok() {
            pool.push(s);
        }
    }

    fn add(&self, fd: RawFd, deadline: Instant) -> usize {
        let mut s = self.slots.borrow_mut();
        let entry = Some(Entry { fd, deadline, waker: None, revents: None });
        let i = match s.free.pop() {
            Some(i) => {
                s.entries[i] = entry;
                i
            }
            None => {
                s.entries.push(entry);
                s.entries.len() - 1
            }
        };
        s.pending += 1;
        let now = s.pending >= s.poll_at.max(BATCH);
        drop(s);
        if now {
            self.poll_once();
        }
        self.added.notify_one();
        i
    }

    /// Ask about every pending connect once; wake those that finished or reached their
    /// deadline. Returns how many are still pending.
    fn poll_once(&self) -> usize {
        let mut guard = self.slots.borrow_mut();
        let s = &mut *guard;
        let (fds, which) = (&mut s.fds, &mut s.which);
        fds.clear();
        which.clear();
        for (i, e) in s.entries.iter().enumerate() {
            if let Some(e) = e.as_ref().filter(|e| e.revents.is_none()) {
                fds.push(libc::pollfd { fd: e.fd, events: libc::POLLOUT, revents: 0 });
                which.push(i);
            }
        }
        if fds.is_empty() {
            return 0;
        }
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd; timeout 0 never blocks.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
        if n < 0 {
            // EINTR or out of memory: ask again next time.
            fds.iter_mut().for_each(|p| p.revents = 0);
        }
        let now = Instant::now();
        for (p, &i) in fds.iter().zip(which.iter()) {
            let e = s.entries[i].as_mut().expect("pending slot");
            if p.revents != 0 || e.deadline <= now {
                e.revents = Some(p.revents);
                if let Some(w) = e.waker.take() {
                    w.wake();
                }
                s.pending -= 1;
            }
        }
        s.poll_at = 2 * s.pending;
        s.pending
    }

    /// The poller: run it as a local task for as long as checks may connect.
    pub async fn run(self: Rc<Self>) {
        let mut wait = Duration::ZERO;
        loop {
            if self.slots.borrow().pending == 0 {
                self.added.notified().await;
                wait = Duration::ZERO;
            } else if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    // New connects cut a long wait short.
                    _ = self.added.notified() => wait = Duration::ZERO,
                }
            }
            if wait.is_zero() {
                // Poll after the other checks due now have started their connects.
                tokio::task::yield_now().await;
            }
            let left = self.poll_once();
            wait = match left {
                0 => Duration::ZERO,
                _ => (wait * 2).clamp(FIRST_WAIT, LONGEST_WAIT),
            };
        }
    }
}

/// connect(2) to an AF_UNSPEC address dissolves a socket's association (Linux, connect(2)):
/// for TCP, `tcp_disconnect` aborts the connection with a reset and leaves the socket closed,
/// unbound from its port, ready to connect again. The error the abort leaves on the socket
/// (ECONNRESET) is cleared by the next connect (`tcp_connect_init` zeroes `sk_err`) before
/// any poll could report it; `kept_sockets_connect_again` holds the kernel to that.
fn disconnect(s: &Socket) -> io::Result<()> {
    let unspec = libc::sockaddr { sa_family: libc::AF_UNSPEC as libc::sa_family_t, sa_data: [0; 14] };
    // SAFETY: a valid sockaddr of the size given; the descriptor is owned by `s`.
    let r = unsafe { libc::connect(s.as_raw_fd(), &unspec, std::mem::size_of::<libc::sockaddr>() as libc::socklen_t) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn local<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    /// A `Connects` with its poller running (call inside `local`).
    fn polling() -> Rc<Connects> {
        let c = Rc::new(Connects::default());
        tokio::task::spawn_local(c.clone().run());
        c
    }

    fn closed_port() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }

    #[test]
    fn many_connects_finish_and_free_their_slots() {
        local(async {
            let c = polling();
            let open = TcpListener::bind("127.0.0.1:0").unwrap();
            let (up, down) = (open.local_addr().unwrap(), closed_port());
            let runs: Vec<_> = (0..40)
                .map(|i| {
                    let c = c.clone();
                    let to = if i % 2 == 0 { up } else { down };
                    tokio::task::spawn_local(async move { (to, c.connect(to, None, Duration::from_secs(5)).await.map(|_| ())) })
                })
                .collect();
            for r in runs {
                match r.await.unwrap() {
                    (to, Ok(())) => assert_eq!(to, up),
                    (to, Err(e)) => {
                        assert_eq!(to, down);
                        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
                    }
                }
            }
            let s = c.slots.borrow();
            assert_eq!(s.pending, 0);
            assert!(s.entries.iter().all(Option::is_none));
            assert_eq!(s.free.len(), s.entries.len());
        });
    }

    /// A passing check is half-open: the listener's kernel answers the SYN, the check resets
    /// the connection before the handshake's last ACK, so there is never a connection to
    /// accept. Its socket is kept, and the next checks use it again, to the same target or
    /// others, each half-open again (the disconnect clears the delayed-ACK setting).
    #[test]
    fn kept_sockets_connect_again() {
        local(async {
            let c = polling();
            let open = TcpListener::bind("127.0.0.1:0").unwrap();
            open.set_nonblocking(true).unwrap();
            let up = open.local_addr().unwrap();
            for i in 0..5 {
                c.check(up, None, Duration::from_secs(5)).await.unwrap();
                assert_eq!(c.pool.borrow()[0].len(), 1);
                // On loopback a sent ACK would have made the connection before the connect
                // returned; it would be waiting to be accepted (reset, but there).
                match open.accept() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    other => panic!("check {i}: the handshake completed: {other:?}"),
                }
            }
            // The kept socket meets a refusal, is closed, and a new one takes its place.
            let e = c.check(closed_port(), None, Duration::from_secs(5)).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
            assert_eq!(c.pool.borrow()[0].len(), 0);
            c.check(up, None, Duration::from_secs(5)).await.unwrap();
            assert_eq!(c.pool.borrow()[0].len(), 1);
            // IPv6 sockets are kept apart, and half-open too.
            if let Ok(open6) = TcpListener::bind("[::1]:0") {
                open6.set_nonblocking(true).unwrap();
                for _ in 0..2 {
                    c.check(open6.local_addr().unwrap(), None, Duration::from_secs(5)).await.unwrap();
                    assert!(open6.accept().is_err_and(|e| e.kind() == io::ErrorKind::WouldBlock), "an IPv6 handshake completed");
                }
                c.check(up, None, Duration::from_secs(5)).await.unwrap();
                assert_eq!(c.pool.borrow()[1].len(), 1);
                assert_eq!(c.pool.borrow()[0].len(), 1);
            }
        });
    }

    #[test]
    fn a_connect_given_up_leaves_nothing_behind() {
        local(async {
            let c = polling();
            // A listener that accepts nothing with a backlog of 0: once its queue is full,
            // further SYNs are dropped and their connects stay pending. Half-open checks never
            // fill it, so full handshakes do.
            let l = socket2::Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            l.bind(&SockAddr::from("127.0.0.1:0".parse::<SocketAddr>().unwrap())).unwrap();
            l.listen(0).unwrap();
            let to = l.local_addr().unwrap().as_socket().unwrap();
            let mut held = Vec::new();
            while let Ok(s) = std::net::TcpStream::connect_timeout(&to, Duration::from_millis(300)) {
                held.push(s);
                assert!(held.len() < 8, "{} connections to a queue of 0", held.len());
            }
            let given_up = tokio::time::timeout(Duration::from_millis(300), c.connect(to, None, Duration::from_secs(5))).await;
            assert!(given_up.is_err(), "a connect to a full queue finished: {given_up:?}");
            {
                let s = c.slots.borrow();
                assert_eq!(s.pending, 0, "the abandoned connect is still polled");
                assert!(s.entries.iter().all(Option::is_none));
            }
            // The poller still serves connects afterwards.
            let open = TcpListener::bind("127.0.0.1:0").unwrap();
            assert!(c.connect(open.local_addr().unwrap(), None, Duration::from_secs(5)).await.is_ok());
            // A connect to the full queue ends at its own deadline.
            let t0 = Instant::now();
            let e = c.connect(to, None, Duration::from_millis(200)).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            let took = t0.elapsed();
            assert!(took >= Duration::from_millis(200) && took < Duration::from_millis(200) + 2 * LONGEST_WAIT, "{took:?}");
            assert_eq!(c.slots.borrow().pending, 0);
        });
    }
}
