//! Health checks: runners (tcp, http/https, udp, dns, smtp, ping, exec, lua), rise/fall
//! hysteresis, shared probes, dynamic weights, and the manager that runs them for a model.
//!
//! Pure parts (no clock, no I/O): [`health`], [`weight`], [`registry`], and the parsers of
//! what targets answer: [`http_response`], [`dns`], [`smtp`], [`icmp`] (each with a fuzz
//! target under fuzz/). I/O: [`runner`], [`http`] (the client), `ping`, [`lua`], [`manager`]
//! (with its start grid, `grid`, its connect poller, `connects`, and the supervision of its
//! tasks, `supervise`).

mod connects;
pub mod dns;
mod grid;
pub mod health;
pub mod http;
pub mod http_response;
pub mod icmp;
pub mod lua;
pub mod manager;
mod ping;
pub mod registry;
pub mod runner;
pub mod smtp;
pub(crate) mod supervise;
pub mod weight;

pub use connects::Connects;
pub use health::{CheckResult, Health, History, Quorum, Scalar, Transition};
pub use lua::{RsInfo, install_net};
pub use manager::{CheckEvent, CheckManager, CheckOptions, RealChange, RealStatus};
pub use registry::{Plan, ProbeKey};
pub use runner::{Prober, RunCtx};
