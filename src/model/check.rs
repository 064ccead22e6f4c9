//! Health check specifications. Defaults are keepalived's (keepalived.conf(5)):
//!
//! | key | default | keepalived |
//! |---|---|---|
//! | interval | 60 s | `delay_loop` |
//! | timeout | 5 s | `connect_timeout` |
//! | retries | 1 | `retry` (`nb_get_retry` for HTTP_GET/SSL_GET) |
//! | retry_delay | 1 s | `delay_before_retry` |
//! | port | the real's port | `connect_port` |
//! | warmup | 0 s | `warmup` |
//! | http status | 200-299 | `status_code` |
//! | dns name / type | "." / SOA | `name` / `type` |
//! | rise / fall | 1 / 1 | (lvsd: consecutive results before a state change) |

use super::{Argv, HookRef, Origin};
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;

pub const CHECK_KINDS: &[&str] = &["tcp", "http", "https", "udp", "dns", "smtp", "ping", "exec", "lua"];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckCommon {
    /// Seconds between checks (delay_loop).
    pub interval: f64,
    /// Seconds before one attempt counts as failed (connect_timeout).
    pub timeout: f64,
    /// Extra attempts before a failure counts (retry).
    pub retries: u32,
    /// Seconds between attempts (delay_before_retry).
    pub retry_delay: f64,
    /// Port to probe instead of the real's port (connect_port).
    pub port: Option<u16>,
    /// Source address (bindto).
    pub bind: Option<IpAddr>,
    /// Seconds to wait before the first check (a random part of it, as keepalived).
    pub warmup: f64,
    /// Consecutive successes before a down real comes up.
    pub rise: u32,
    /// Consecutive failures before an up real goes down.
    pub fall: u32,
}

impl Default for CheckCommon {
    fn default() -> CheckCommon {
        CheckCommon { interval: 60.0, timeout: 5.0, retries: 1, retry_delay: 1.0, port: None, bind: None, warmup: 0.0, rise: 1, fall: 1 }
    }
}

/// Accepted HTTP status codes: inclusive ranges.
pub type StatusSet = Vec<(u16, u16)>;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpUrl {
    pub path: String,
    pub status: StatusSet,
    /// MD5 of the body in hex (keepalived's genhash digest).
    pub digest: Option<String>,
    /// A regular expression the body must match.
    pub regex: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CheckKind {
    Tcp {
        send: Option<String>,
        expect: Option<String>,
    },
    Http {
        tls: bool,
        method: String,
        urls: Vec<HttpUrl>,
        virtualhost: Option<String>,
        sni: Option<String>,
        verify: bool,
    },
    Udp {
        payload: Option<String>,
        expect: Option<String>,
    },
    Dns {
        name: String,
        qtype: String,
    },
    Smtp {
        /// The HELO name; keepalived's default, the host name, is filled in when the policy is read.
        helo: String,
    },
    /// An ICMP echo to the real's address (keepalived's PING_CHECK); no port.
    Ping,
    Exec {
        command: Argv,
        /// keepalived's misc_dynamic: exit codes 2..=255 set the weight to code - 2.
        dynamic: bool,
    },
    Lua {
        run: HookRef,
    },
}

impl CheckKind {
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Http { tls: false, .. } => "http",
            CheckKind::Http { tls: true, .. } => "https",
            CheckKind::Udp { .. } => "udp",
            CheckKind::Dns { .. } => "dns",
            CheckKind::Smtp { .. } => "smtp",
            CheckKind::Ping => "ping",
            CheckKind::Exec { .. } => "exec",
            CheckKind::Lua { .. } => "lua",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckSpec {
    pub common: CheckCommon,
    pub kind: CheckKind,
    pub origin: Origin,
}

/// Serializes shared specs as the specs themselves (serde's `rc` feature is not enabled).
pub fn serialize_specs<S: serde::Serializer>(specs: &[Arc<CheckSpec>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(specs.iter().map(|c| &**c))
}
