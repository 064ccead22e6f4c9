//! IPVS: the table type, the ipvsadm-compatible formatter, the pure reconcile diff and the backends.

pub mod answers;
pub mod attrs;
pub mod backend;
pub mod cli;
pub mod format;
pub mod kernel;
pub mod memory;
pub mod nlsock;
pub mod reconcile;
pub mod sockopt;
pub mod table;
pub mod wire;
#[cfg(test)]
mod wire_tests;

pub use table::{Dest, DestKey, Forward, Protocol, Service, ServiceConf, ServiceKey, Table, TunnelType};
