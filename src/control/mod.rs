//! The control socket: a root-only Unix socket speaking JSON lines, one request per line and
//! one response per line. Used by `lvsd status`, `lvsd reload`, `lvsd repl` and scripts.
//!
//! Request:  `{"v":1,"cmd":"status"}`
//! Response: `{"v":1,"ok":true,"result":...}` or `{"v":1,"ok":false,"error":"..."}`
//!
//! Trust runs both ways: the daemon binds only in a directory no other user can rewrite
//! (`server::judge`) and answers only root or its own user; a client talks only to a server
//! run by root or by its own user (SO_PEERCRED, `client::trust`), before it sends anything.

pub mod accept;
pub mod client;
pub mod metrics;
pub mod metrics_page;
pub mod proto;
pub mod server;

pub use proto::*;

pub const DEFAULT_PATH: &str = "/run/lvsd/lvsd.sock";

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Protocol(String),
    #[error("{0}")]
    Refused(String),
}
