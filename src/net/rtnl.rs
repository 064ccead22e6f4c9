//! Minimal rtnetlink request/response over a neli socket, shared by `addr` and `link`.

use std::io::{self, Cursor};
use std::os::fd::AsRawFd;

use neli::consts::nl::NlmF;
use neli::consts::rtnl::Rtm;
use neli::consts::socket::{Msg, NlFamily};
use neli::nl::{NlPayload, NlmsghdrBuilder};
use neli::socket::NlSocket;
use neli::utils::Groups;
use neli::{Size, ToBytes};
use thiserror::Error;

use super::rtnl_msg::{self, Answer, Malformed};

/// Kernel replies never exceed this in one datagram for the requests we make (dumps are
/// split by the kernel into datagrams of at most a page or so).
pub(crate) const RECV_BUF: usize = 64 * 1024;

/// An rtnetlink request that failed.
#[derive(Debug, Error)]
pub enum RtnlError {
    #[error("opening rtnetlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("rtnetlink {op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The kernel answered with an error (errno in `source`).
    #[error("kernel refused {op}: {source}")]
    Kernel {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("rtnetlink {op}: malformed message: {detail}")]
    Malformed { op: &'static str, detail: String },
}

impl From<Malformed> for RtnlError {
    fn from(Malformed { op, source }: Malformed) -> Self {
        RtnlError::Malformed { op, detail: source.to_string() }
    }
}

impl RtnlError {
    /// The errno the kernel answered with, if this is a kernel refusal.
    pub fn errno(&self) -> Option<i32> {
        match self {
            RtnlError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

pub(crate) fn open_socket(groups: Groups) -> Result<NlSocket, RtnlError> {
    let sock = NlSocket::connect(NlFamily::Route, None, groups).map_err(RtnlError::Socket)?;
    // A request should never hang the caller forever if the kernel does not answer.
    let tv = libc::timeval { tv_sec: 5, tv_usec: 0 };
    // SAFETY: valid fd and a correctly sized timeval.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(RtnlError::Socket(io::Error::last_os_error()));
    }
    Ok(sock)
}

/// Send one request and collect the payloads of every reply until the final ACK or DONE.
/// `flags` gets REQUEST and ACK added.
pub(crate) fn request<P>(op: &'static str, ty: Rtm, flags: NlmF, payload: P) -> Result<Vec<Vec<u8>>, RtnlError>
where
    P: Size + ToBytes,
{
    let sock = open_socket(Groups::empty())?;
    let msg = NlmsghdrBuilder::default()
        .nl_type(ty)
        .nl_flags(flags | NlmF::REQUEST | NlmF::ACK)
        .nl_seq(1)
        .nl_payload(NlPayload::Payload(payload))
        .build()
        .map_err(|e| RtnlError::Malformed { op, detail: e.to_string() })?;
    let mut out = Cursor::new(vec![0u8; msg.padded_size()]);
    msg.to_bytes(&mut out).map_err(|e| RtnlError::Malformed { op, detail: e.to_string() })?;
    sock.send(out.get_ref(), Msg::empty()).map_err(|source| RtnlError::Io { op, source })?;

    let mut replies = Vec::new();
    REPLIES.with_borrow_mut(|buf| {
        loop {
            let (n, _) = sock.recv(&mut buf[..], Msg::empty()).map_err(|source| RtnlError::Io { op, source })?;
            if n == 0 {
                return Ok(replies);
            }
            // Our socket is private to this call: only our one request is answered on it.
            match rtnl_msg::read_answers(op, &buf[..n], 1, &mut replies)? {
                Answer::More => {}
                Answer::Done => return Ok(replies),
                Answer::Refused(errno) => return Err(RtnlError::Kernel { op, source: io::Error::from_raw_os_error(errno) }),
            }
        }
    })
}

thread_local! {
    /// Where [`request`] reads replies: one per thread, made once. The heartbeat checks its
    /// VIPs every second, and a buffer zeroed for each request was a tenth of its work.
    static REPLIES: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; RECV_BUF]);
}

/// What one read from a multicast subscription produced.
pub(crate) enum Datagram<'a> {
    Messages(&'a [u8]),
    /// The kernel dropped notifications (ENOBUFS): the caller must re-read full state.
    Overrun,
}

/// A non-blocking rtnetlink socket subscribed to multicast groups, driven by tokio.
pub(crate) struct Subscription {
    fd: tokio::io::unix::AsyncFd<NlSocket>,
    buf: Vec<u8>,
}

impl Subscription {
    /// Must be called inside a tokio runtime.
    pub(crate) fn new(groups: &[u32]) -> Result<Self, RtnlError> {
        let sock = open_socket(Groups::new_groups(groups))?;
        sock.nonblock().map_err(RtnlError::Socket)?;
        // A larger buffer makes overruns on event storms unlikely; they are handled anyway.
        let size: libc::c_int = 1 << 20;
        // SAFETY: valid fd and int-sized option. Failure only keeps the default size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &size as *const _ as *const libc::c_void,
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        // SAFETY: NlSocket owns its fd and closes it only when dropped, which happens only
        // when the AsyncFd is dropped.
        let fd = unsafe { tokio::io::unix::AsyncFd::register_with_interest(sock, tokio::io::Interest::READABLE) }
            .map_err(|e| RtnlError::Socket(e.into()))?;
        Ok(Subscription { fd, buf: vec![0; RECV_BUF] })
    }

    pub(crate) async fn next(&mut self, op: &'static str) -> Result<Datagram<'_>, RtnlError> {
        loop {
            let mut guard = self.fd.readable().await.map_err(|source| RtnlError::Io { op, source })?;
            let buf = &mut self.buf;
            match guard.try_io(|fd| fd.get_ref().recv(&mut buf[..], Msg::empty()).map(|(n, _)| n)) {
                Err(_would_block) => continue,
                Ok(Ok(n)) => return Ok(Datagram::Messages(&self.buf[..n])),
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Ok(Datagram::Overrun);
                }
                Ok(Err(source)) => return Err(RtnlError::Io { op, source }),
            }
        }
    }
}
