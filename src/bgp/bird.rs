//! The thin adapter: BIRD's unix control socket spoken directly (what birdc does, without a
//! process per change). Blocking, with timeouts: it runs on the BGP thread only.

use super::birdc::{self, Decoder, Reply, ReplyError};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BirdError {
    #[error("cannot connect to BIRD's control socket {path}: {source}")]
    Connect { path: String, source: std::io::Error },
    #[error("BIRD's control socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("BIRD closed the control socket")]
    Closed,
    #[error(transparent)]
    Reply(#[from] ReplyError),
    #[error("BIRD did not greet with 0001 (got {0} {1:?})")]
    Greeting(u16, String),
    #[error("BIRD refused `{command}`: {code} {text}")]
    Refused { command: String, code: u16, text: String },
}

/// One connection to BIRD's control socket.
pub struct Bird {
    stream: UnixStream,
    decoder: Decoder,
}

impl Bird {
    /// Connect and read the greeting (`0001 BIRD 2.0.12 ready.`). Every read and write is
    /// bounded by `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Bird, BirdError> {
        let stream = UnixStream::connect(path).map_err(|source| BirdError::Connect { path: path.display().to_string(), source })?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut b = Bird { stream, decoder: Decoder::new() };
        let hello = b.read_reply()?;
        if hello.code != 1 {
            return Err(BirdError::Greeting(hello.code, hello.text()));
        }
        Ok(b)
    }

    fn read_reply(&mut self) -> Result<Reply, BirdError> {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(r) = self.decoder.next_reply()? {
                return Ok(r);
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(BirdError::Closed);
            }
            self.decoder.push(&buf[..n]);
        }
    }

    /// Send one command line and read its reply (errors included: see [`Bird::command`]).
    pub fn call(&mut self, command: &str) -> Result<Reply, BirdError> {
        // Commands are made by lvsd from protocol names and fixed words: no newline in them.
        debug_assert!(!command.contains('\n'));
        self.stream.write_all(format!("{command}\n").as_bytes())?;
        self.read_reply()
    }

    /// A command whose 8xxx/9xxx reply is an error.
    pub fn command(&mut self, command: &str) -> Result<Reply, BirdError> {
        let r = self.call(command)?;
        if r.is_error() {
            return Err(BirdError::Refused { command: command.to_string(), code: r.code, text: r.text() });
        }
        Ok(r)
    }

    /// `show protocols "PATTERN"`; none matching is an empty list (BIRD's 8003).
    pub fn protocols(&mut self, pattern: &str) -> Result<Vec<birdc::Protocol>, BirdError> {
        let r = self.call(&format!("show protocols \"{pattern}\""))?;
        if r.code == 8003 {
            return Ok(Vec::new());
        }
        if r.is_error() {
            return Err(BirdError::Refused { command: "show protocols".into(), code: r.code, text: r.text() });
        }
        Ok(birdc::protocols(&r))
    }

    /// `enable NAME` / `disable NAME` (a name or a quoted pattern).
    pub fn set_enabled(&mut self, name: &str, on: bool) -> Result<Reply, BirdError> {
        self.command(&format!("{} {name}", if on { "enable" } else { "disable" }))
    }

    /// `configure`: BIRD reads its configuration (and lvsd's include file) again. Protocols
    /// whose configuration did not change keep running.
    pub fn configure(&mut self) -> Result<Reply, BirdError> {
        self.command("configure")
    }
}
