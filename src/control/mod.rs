//! The control socket: a root-only Unix socket speaking JSON lines, one request per line and
//! one response per line. Used by `lvsd status`, `lvsd reload`, `lvsd repl` and scripts.
//!
//! Request:  `{"v":1,"cmd":"status"}`
//! Response: `{"v":1,"ok":true,"result":...}` or `{"v":1,"ok":false,"error":"..."}`

pub mod client;
pub mod metrics;
pub mod server;

use serde::{Deserialize, Serialize};

pub const PROTOCOL_VERSION: u32 = 1;
pub const DEFAULT_PATH: &str = "/run/lvsd/lvsd.sock";
/// Longest request line accepted; longer ones get an error reply and the connection closes.
pub const MAX_REQUEST: usize = 1 << 20;

/// A real server named by its service and address ("web", "198.51.100.1:80").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealRef {
    pub service: String,
    pub real: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// The director's whole view (see `director::status`).
    Status,
    /// Reload the policy now.
    Reload,
    /// Evaluate Lua in the inspection context.
    Eval { code: String },
    /// Weight 0 until undrained: existing connections finish, new ones go elsewhere.
    Drain(RealRef),
    Undrain(RealRef),
    /// Force a weight until cleared.
    SetWeight {
        #[serde(flatten)]
        real: RealRef,
        weight: u32,
    },
    ClearWeight(RealRef),
    /// Run the real's checks now.
    CheckNow(RealRef),
    /// Give up mastership of an instance: send one priority-0 advert, as on a graceful stop.
    Yield { instance: String },
    /// Undo `yield`: the instance's configured priority applies again.
    Unyield { instance: String },
    /// Recent check results of a real.
    History(RealRef),
    /// Recent events (transitions, reloads, health changes).
    Events {
        #[serde(default)]
        limit: Option<usize>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub v: u32,
    #[serde(flatten)]
    pub command: Command,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub v: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    pub fn ok(result: serde_json::Value) -> Response {
        Response { v: PROTOCOL_VERSION, ok: true, result: Some(result), error: None }
    }
    pub fn err(msg: impl Into<String>) -> Response {
        Response { v: PROTOCOL_VERSION, ok: false, result: None, error: Some(msg.into()) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Protocol(String),
    #[error("{0}")]
    Refused(String),
}
