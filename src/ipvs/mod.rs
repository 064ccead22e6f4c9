//! IPVS: the table type, the ipvsadm-compatible formatter, the pure reconcile diff and the backends.

pub mod backend;
pub mod format;
pub mod memory;
pub mod reconcile;
pub mod table;

pub use table::{Dest, DestKey, Forward, Protocol, Service, ServiceConf, ServiceKey, Table, TunnelType};
