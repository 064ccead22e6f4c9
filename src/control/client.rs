//! The client side: one connection, requests and responses in order. Before anything is
//! sent the server's credentials are checked: whoever could replace the socket must not
//! receive our requests (or answer them).

use super::{Command, ControlError, Response, encode_request};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Longest response line read (a thousand services' status is a few MB).
const MAX_RESPONSE: u64 = 256 << 20;
/// A daemon that has not answered (or taken a request) in this long is stuck: say so rather
/// than hang the operator's shell. Every command answers at once or after bounded work (a
/// check's timeout, a Lua evaluation's instruction limit), far below this.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Client {
    path: String,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

/// The server's process as the kernel saw it when it called listen() (SO_PEERCRED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
}

fn peer_of(s: &UnixStream) -> std::io::Result<Peer> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given.
    let rc = unsafe { libc::getsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&raw mut cred).cast(), &mut len) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Peer { pid: cred.pid, uid: cred.uid })
}

/// Whether a server running as `peer` may be trusted by a client running as `euid`: root's
/// daemon, or one of the client's own user.
pub fn trust(path: &str, peer: Peer, euid: u32) -> Result<(), ControlError> {
    if peer.uid == 0 || peer.uid == euid {
        return Ok(());
    }
    Err(ControlError::Refused(format!(
        "{path}: refusing to use this control socket: it is served by uid {} (pid {}), not by root{}; \
         another user may have replaced it. Nothing was sent. Check who owns the socket's directory.",
        peer.uid,
        peer.pid,
        if euid == 0 { String::new() } else { format!(" or you (uid {euid})") }
    )))
}

/// Refuse a server that is neither root nor the client's own user (see [`trust`]); every
/// client of the socket calls this before it sends anything.
pub fn check_server(stream: &UnixStream, path: &str) -> Result<(), ControlError> {
    let peer = peer_of(stream).map_err(|source| ControlError::Io { path: path.to_string(), source })?;
    trust(path, peer, unsafe { libc::geteuid() })
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ControlError> {
        let shown = path.display().to_string();
        let stream = UnixStream::connect(path)
            .map_err(|source| ControlError::Io { path: format!("{shown} (is `lvsd run` running, and are you root?)"), source })?;
        check_server(&stream, &shown)?;
        let io = |source| ControlError::Io { path: shown.clone(), source };
        stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(ANSWER_TIMEOUT)).map_err(io)?;
        let writer = stream.try_clone().map_err(io)?;
        Ok(Client { path: shown, reader: BufReader::new(stream), writer })
    }

    /// Change how long [`Client::call`] waits for the daemon (default [`ANSWER_TIMEOUT`]).
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), ControlError> {
        let io = |source| ControlError::Io { path: self.path.clone(), source };
        self.writer.set_read_timeout(Some(timeout)).map_err(io)?;
        self.writer.set_write_timeout(Some(timeout)).map_err(io)
    }

    pub fn call(&mut self, command: Command) -> Result<Response, ControlError> {
        let answer = self.exchange(command)?;
        serde_json::from_slice(&answer).map_err(|e| ControlError::Protocol(format!("bad response: {e}")))
    }

    /// [`Client::call`] with the result left as the JSON text the daemon wrote
    /// (`Response::written`): a status of 10,000 services is printed without becoming a tree
    /// of `Value`s first.
    pub fn call_written(&mut self, command: Command) -> Result<Response, ControlError> {
        #[derive(serde::Deserialize)]
        struct Written {
            v: u32,
            ok: bool,
            result: Option<Box<serde_json::value::RawValue>>,
            error: Option<String>,
        }
        let answer = self.exchange(command)?;
        let r: Written = serde_json::from_slice(&answer).map_err(|e| ControlError::Protocol(format!("bad response: {e}")))?;
        Ok(Response { v: r.v, ok: r.ok, result: None, error: r.error, written: r.result })
    }

    /// Send one request and read its answer line.
    fn exchange(&mut self, command: Command) -> Result<Vec<u8>, ControlError> {
        let io = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                ControlError::Protocol(format!("{}: the daemon did not answer in time; it may be stuck (see its log)", self.path))
            }
            _ => ControlError::Io { path: self.path.clone(), source },
        };
        // A daemon that refuses us (we are not root) answers and closes at once: our write may
        // then find the connection closed, but its answer is still there to be read.
        let sent = self.writer.write_all(&encode_request(command));
        if let Err(e) = sent
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(io(e));
        }
        let mut answer = Vec::new();
        (&mut self.reader).take(MAX_RESPONSE).read_until(b'\n', &mut answer).map_err(io)?;
        if answer.is_empty() {
            return Err(ControlError::Protocol("the daemon closed the connection".into()));
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_or_our_own_user_is_trusted() {
        assert!(trust("s", Peer { pid: 1, uid: 0 }, 0).is_ok());
        assert!(trust("s", Peer { pid: 1, uid: 0 }, 1000).is_ok());
        assert!(trust("s", Peer { pid: 1, uid: 1000 }, 1000).is_ok());
        let e = trust("/run/lvsd/lvsd.sock", Peer { pid: 42, uid: 65534 }, 0).unwrap_err().to_string();
        assert!(e.contains("served by uid 65534 (pid 42)") && e.contains("Nothing was sent"), "{e}");
        assert!(trust("s", Peer { pid: 1, uid: 1000 }, 1001).is_err());
    }

    #[test]
    fn peer_credentials_are_read() {
        let (a, _b) = UnixStream::pair().unwrap();
        let p = peer_of(&a).unwrap();
        assert_eq!(p.uid, unsafe { libc::geteuid() });
        assert_eq!(p.pid, std::process::id() as i32);
    }

    /// A client connected to a server socket of our own, and the server's end.
    fn connected() -> (tempfile::TempDir, Client, UnixStream) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lvsd.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let client = Client::connect(&path).unwrap();
        let (server, _) = listener.accept().unwrap();
        (dir, client, server)
    }

    #[test]
    fn a_daemon_that_never_answers_is_reported_not_waited_for() {
        let (_dir, mut client, _held) = connected();
        client.set_timeout(Duration::from_millis(200)).unwrap();
        let e = client.call(Command::Status { text_only: false, brief: false }).unwrap_err().to_string();
        assert!(e.contains("did not answer in time"), "{e}");
    }

    #[test]
    fn a_refusal_sent_before_our_request_is_read_not_lost_to_a_broken_pipe() {
        let (_dir, mut client, mut server) = connected();
        server.write_all(b"{\"v\":1,\"ok\":false,\"error\":\"permission denied: the control socket is root-only\"}\n").unwrap();
        drop(server);
        let r = client.call(Command::Status { text_only: false, brief: false }).unwrap();
        assert_eq!(r.error.as_deref(), Some("permission denied: the control socket is root-only"));
    }
}
