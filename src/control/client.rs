//! The client side: one connection, requests and responses in order.

use super::{Command, ControlError, Request, Response, PROTOCOL_VERSION};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

pub struct Client {
    path: String,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ControlError> {
        let shown = path.display().to_string();
        let stream = UnixStream::connect(path).map_err(|source| ControlError::Io {
            path: format!("{shown} (is `lvsd run` running, and are you root?)"),
            source,
        })?;
        let writer = stream.try_clone().map_err(|source| ControlError::Io { path: shown.clone(), source })?;
        Ok(Client { path: shown, reader: BufReader::new(stream), writer })
    }

    pub fn call(&mut self, command: Command) -> Result<Response, ControlError> {
        let io = |source| ControlError::Io { path: self.path.clone(), source };
        let mut line = serde_json::to_vec(&Request { v: PROTOCOL_VERSION, command }).expect("request serializes");
        line.push(b'\n');
        self.writer.write_all(&line).map_err(io)?;
        let mut answer = String::new();
        self.reader.read_line(&mut answer).map_err(|source| ControlError::Io { path: self.path.clone(), source })?;
        if answer.is_empty() {
            return Err(ControlError::Protocol("the daemon closed the connection".into()));
        }
        serde_json::from_str(&answer).map_err(|e| ControlError::Protocol(format!("bad response: {e}")))
    }
}
