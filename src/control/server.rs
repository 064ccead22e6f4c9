//! The daemon side of the control socket: where it may live, who may talk to it, and the
//! request loop.

use super::accept::Backoff;
use super::{Command, ControlError, MAX_REQUEST, Response, encode_response, parse_request};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// A request on its way to the director, with the channel for its answer.
pub type Call = (Command, oneshot::Sender<Response>);

/// Connections served at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a peer that is neither root nor the daemon's user has to send its request.
const STRANGER_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);
/// Symlinks followed while checking the socket's ancestors (the kernel's ELOOP bound).
const MAX_SYMLINKS: usize = 40;

/// What the trust rule needs to know about one path on the way to the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub uid: u32,
    pub mode: u32,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Symlink,
    Other,
}

/// The socket's own directory, or a directory (or symlink) above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Parent,
    Ancestor,
}

/// Whether `path` may hold (or lead to) the control socket of a daemon running as `euid`.
/// Whoever can rename an entry on the way can put an impostor at the socket's path, so each
/// one must belong to root or to the daemon's user, and no directory may let others rename
/// what it holds: not writable by group or others, except above the socket's own directory
/// with the sticky bit (like /tmp: others cannot rename or remove entries they do not own).
pub fn judge(path: &Path, e: Entry, role: Role, euid: u32) -> Result<(), String> {
    let p = path.display();
    if e.uid != 0 && e.uid != euid {
        let who = if euid == 0 { "root".to_string() } else { format!("root or uid {euid} (the daemon's user)") };
        return Err(format!("{p} is owned by uid {}, not {who}: its owner could replace the control socket", e.uid));
    }
    let writable = e.mode & 0o022 != 0;
    let sticky = e.mode & 0o1000 != 0;
    match (role, e.kind) {
        (Role::Parent, Kind::Symlink) => Err(format!("{p} (the control socket's directory) is a symlink; give the real directory")),
        (_, Kind::Other) => Err(format!("{p} is not a directory")),
        (Role::Parent, Kind::Dir) if writable => Err(format!(
            "{p} (the control socket's directory) is writable by group or others (mode {:o}); make it 0700 or 0755",
            e.mode & 0o7777
        )),
        (Role::Ancestor, Kind::Dir) if writable && !sticky => Err(format!(
            "{p} is writable by group or others without the sticky bit (mode {:o}): another user could replace the control socket's directory",
            e.mode & 0o7777
        )),
        _ => Ok(()),
    }
}

fn entry(path: &Path) -> std::io::Result<Entry> {
    let m = std::fs::symlink_metadata(path)?;
    let t = m.file_type();
    let kind = if t.is_symlink() {
        Kind::Symlink
    } else if t.is_dir() {
        Kind::Dir
    } else {
        Kind::Other
    };
    Ok(Entry { uid: m.uid(), mode: m.mode(), kind })
}

/// Check `dir` (the socket's directory, existing, absolute) and every entry above it; a
/// symlink on the way is checked, and so is the chain of its target.
fn check_chain(dir: &Path, euid: u32) -> Result<(), ControlError> {
    let refused = |m: String| ControlError::Refused(format!("control socket {m}; use a root-only directory (--control)"));
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| ControlError::Io { path: p, source }
    };
    let mut todo: Vec<(PathBuf, Role)> = vec![(dir.to_path_buf(), Role::Parent)];
    todo.extend(dir.ancestors().skip(1).map(|a| (a.to_path_buf(), Role::Ancestor)));
    let mut links = 0;
    while let Some((p, role)) = todo.pop() {
        let e = entry(&p).map_err(io(&p))?;
        judge(&p, e, role, euid).map_err(refused)?;
        if e.kind == Kind::Symlink {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(refused(format!("{}: too many symlinks", dir.display())));
            }
            let target = std::fs::canonicalize(&p).map_err(io(&p))?;
            todo.extend(target.ancestors().map(|a| (a.to_path_buf(), Role::Ancestor)));
        }
    }
    Ok(())
}

/// Bind the socket: its directory is created 0700 if missing and must be trusted (see
/// [`judge`]), the socket is 0600, and a stale socket from a previous run is replaced.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let io = |source| ControlError::Io { path: path.display().to_string(), source };
    let path = &std::path::absolute(path).map_err(io)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    }
    check_chain(dir, unsafe { libc::geteuid() })?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path).map_err(io)?,
        Ok(_) => {
            return Err(ControlError::Refused(format!(
                "{}: exists and is not a socket; refusing to replace it (--control)",
                path.display()
            )));
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// Accept connections until the listener is dropped; each request goes to `tx`.
pub async fn serve(listener: UnixListener, tx: mpsc::Sender<Call>) {
    let our_uid = unsafe { libc::geteuid() };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = Backoff::default();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                backoff.pause("control socket", &e).await;
                continue;
            }
        };
        backoff.succeeded();
        // The socket is 0600 already; the peer's credentials are checked as well so that a
        // socket moved to a laxer place still answers only root (or the daemon's own user).
        let peer = stream.peer_cred().map(|c| c.uid()).unwrap_or(u32::MAX);
        let tx = tx.clone();
        tokio::task::spawn_local(async move {
            let _slot = slot;
            if peer != 0 && peer != our_uid {
                // Take the request first, so the client reads our answer instead of a broken pipe.
                let mut stream = BufReader::new(stream);
                let mut line = Vec::new();
                // Bounded in time too: a stranger must not hold a connection slot.
                let mut limited = AsyncReadExt::take(&mut stream, MAX_REQUEST as u64);
                let _ = tokio::time::timeout(STRANGER_WITHIN, limited.read_until(b'\n', &mut line)).await;
                let _ = reply(stream.into_inner(), Response::err("permission denied: the control socket is root-only")).await;
                return;
            }
            let _ = connection(stream, tx).await;
        });
    }
}

async fn reply(mut stream: UnixStream, r: Response) -> std::io::Result<()> {
    stream.write_all(&encode_response(&r)).await
}

async fn connection(stream: UnixStream, tx: mpsc::Sender<Call>) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Read one line, but never more than MAX_REQUEST bytes of it (one more to notice).
        let n = AsyncReadExt::take(&mut rd, MAX_REQUEST as u64 + 1).read_until(b'\n', &mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let parsed = parse_request(&buf);
        let too_long = parsed == Err(super::RequestError::TooLong);
        let resp = match parsed {
            Err(e) => Response::err(e.to_string()),
            Ok(command) => {
                let (otx, orx) = oneshot::channel();
                if tx.send((command, otx)).await.is_err() {
                    return Ok(());
                }
                orx.await.unwrap_or_else(|_| Response::err("the director is shutting down"))
            }
        };
        // A big reply (status of a thousand services) is serialized off the event loop.
        let line = tokio::task::spawn_blocking(move || encode_response(&resp)).await.unwrap_or_default();
        wr.write_all(&line).await?;
        if too_long {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u32 = 1000;
    fn dir(uid: u32, mode: u32) -> Entry {
        Entry { uid, mode: 0o040000 | mode, kind: Kind::Dir }
    }

    #[test]
    fn the_socket_directory_must_be_ours_and_closed() {
        let p = Path::new("/run/lvsd");
        assert_eq!(judge(p, dir(0, 0o700), Role::Parent, 0), Ok(()));
        assert_eq!(judge(p, dir(0, 0o755), Role::Parent, 0), Ok(()));
        assert_eq!(judge(p, dir(ME, 0o700), Role::Parent, ME), Ok(()));
        let e = judge(p, dir(65534, 0o700), Role::Parent, 0).unwrap_err();
        assert!(e.contains("owned by uid 65534"), "{e}");
        assert!(judge(p, dir(ME, 0o700), Role::Parent, 0).is_err(), "another user's directory, even closed");
        let e = judge(p, dir(0, 0o770), Role::Parent, 0).unwrap_err();
        assert!(e.contains("writable by group or others"), "{e}");
        assert!(judge(p, dir(0, 0o1777), Role::Parent, 0).is_err(), "sticky is not enough for the socket's own directory");
        let link = Entry { uid: 0, mode: 0o120777, kind: Kind::Symlink };
        assert!(judge(p, link, Role::Parent, 0).unwrap_err().contains("symlink"));
    }

    #[test]
    fn ancestors_may_be_sticky_but_not_open() {
        let p = Path::new("/tmp");
        assert_eq!(judge(p, dir(0, 0o1777), Role::Ancestor, 0), Ok(()));
        assert!(judge(p, dir(0, 0o777), Role::Ancestor, 0).is_err());
        assert!(judge(p, dir(65534, 0o755), Role::Ancestor, 0).is_err());
        let link = Entry { uid: 0, mode: 0o120777, kind: Kind::Symlink };
        assert_eq!(judge(Path::new("/var/run"), link, Role::Ancestor, 0), Ok(()));
        assert!(judge(p, Entry { uid: 0, mode: 0o100644, kind: Kind::Other }, Role::Ancestor, 0).is_err());
    }
}
