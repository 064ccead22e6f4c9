//! The daemon side of the control socket.

use super::{Command, ControlError, Request, Response, MAX_REQUEST, PROTOCOL_VERSION};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// A request on its way to the director, with the channel for its answer.
pub type Call = (Command, oneshot::Sender<Response>);

/// Bind the socket: its directory is created 0700 if missing, the socket is 0600, and a stale
/// socket from a previous run is replaced. Refuses a directory others can write to.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let io = |source| ControlError::Io { path: path.display().to_string(), source };
    let dir = path.parent().unwrap_or(Path::new("/"));
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    }
    let mode = std::fs::metadata(dir).map_err(io)?.permissions().mode();
    if mode & 0o002 != 0 {
        return Err(ControlError::Refused(format!(
            "{}: the control socket's directory is world-writable; use a root-only directory (--control)",
            dir.display()
        )));
    }
    if path.exists() {
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// Accept connections until the listener fails; each request goes to `tx`.
pub async fn serve(listener: UnixListener, tx: mpsc::Sender<Call>) {
    let our_uid = unsafe { libc::geteuid() };
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        // The socket is 0600 already; the peer's credentials are checked as well so that a
        // socket moved to a laxer place still answers only root (or the daemon's own user).
        let peer = stream.peer_cred().map(|c| c.uid()).unwrap_or(u32::MAX);
        let tx = tx.clone();
        tokio::task::spawn_local(async move {
            if peer != 0 && peer != our_uid {
                // Take the request first, so the client reads our answer instead of a broken pipe.
                let mut stream = BufReader::new(stream);
                let mut line = Vec::new();
                let _ = AsyncReadExt::take(&mut stream, MAX_REQUEST as u64).read_until(b'\n', &mut line).await;
                let _ = reply(stream.into_inner(), Response::err("permission denied: the control socket is root-only")).await;
                return;
            }
            let _ = connection(stream, tx).await;
        });
    }
}

async fn reply(mut stream: UnixStream, r: Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(&r).unwrap_or_default();
    line.push(b'\n');
    stream.write_all(&line).await
}

async fn connection(stream: UnixStream, tx: mpsc::Sender<Call>) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Read one line, but never more than MAX_REQUEST bytes of it.
        let n = AsyncReadExt::take(&mut rd, MAX_REQUEST as u64 + 1).read_until(b'\n', &mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let too_long = buf.len() > MAX_REQUEST;
        let resp = if too_long {
            Response::err(format!("request longer than {MAX_REQUEST} bytes"))
        } else {
            match serde_json::from_slice::<Request>(&buf) {
                Err(e) => Response::err(format!("malformed request: {e}")),
                Ok(r) if r.v != PROTOCOL_VERSION => {
                    Response::err(format!("protocol version {} is not supported (this daemon speaks {PROTOCOL_VERSION})", r.v))
                }
                Ok(r) => {
                    let (otx, orx) = oneshot::channel();
                    if tx.send((r.command, otx)).await.is_err() {
                        return Ok(());
                    }
                    orx.await.unwrap_or_else(|_| Response::err("the director is shutting down"))
                }
            }
        };
        // A big reply (status of a thousand services) is serialized off the event loop.
        let line = tokio::task::spawn_blocking(move || {
            let mut line = serde_json::to_vec(&resp).unwrap_or_default();
            line.push(b'\n');
            line
        })
        .await
        .unwrap_or_default();
        wr.write_all(&line).await?;
        if too_long {
            return Ok(());
        }
    }
}
