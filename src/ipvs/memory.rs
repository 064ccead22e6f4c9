//! The in-memory IPVS backend: a table that ops are applied to, for `--dry-run`, `plan` and tests.

use super::reconcile::Op;
use super::table::{Service, Table};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MemoryError {
    #[error("{0}: already exists")]
    Exists(String),
    #[error("{0}: no such service or real server")]
    NotFound(String),
}

#[derive(Debug, Clone)]
pub struct MemoryBackend {
    pub table: Table,
    /// Number of write ops applied since creation (what the kernel would have been sent).
    pub writes: u64,
    /// Connection sync daemons "running" (at most one per state, as in the kernel).
    pub daemons: Vec<super::wire::SyncDaemon>,
    /// Connection timeouts, the kernel's defaults at first.
    pub timeouts: super::wire::Timeouts,
}

/// The kernel's connection timeouts before anyone sets them (ip_vs_proto_tcp.c, _udp.c).
pub const DEFAULT_TIMEOUTS: super::wire::Timeouts = super::wire::Timeouts { tcp: 900, tcp_fin: 120, udp: 300 };

/// `old` after a SET_CONFIG of `t`: as the kernel's ip_vs_set_timeout, a 0 changes nothing.
pub fn set_timeouts(old: super::wire::Timeouts, t: &super::wire::Timeouts) -> super::wire::Timeouts {
    let pick = |new: u32, old: u32| if new == 0 { old } else { new };
    super::wire::Timeouts { tcp: pick(t.tcp, old.tcp), tcp_fin: pick(t.tcp_fin, old.tcp_fin), udp: pick(t.udp, old.udp) }
}

impl Default for MemoryBackend {
    fn default() -> MemoryBackend {
        MemoryBackend { table: Table::default(), writes: 0, daemons: Vec::new(), timeouts: DEFAULT_TIMEOUTS }
    }
}

impl MemoryBackend {
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    /// Apply one op with the kernel's semantics: adding what exists and touching what does
    /// not are errors (EEXIST / ESRCH); deleting a service deletes its destinations.
    pub fn apply(&mut self, op: &Op) -> Result<(), MemoryError> {
        let t = &mut self.table;
        match op {
            Op::AddService { key, conf } => {
                if t.services.contains_key(key) {
                    return Err(MemoryError::Exists(op.to_string()));
                }
                t.services.insert(*key, Service::new(conf.clone()));
            }
            Op::EditService { key, conf } => {
                let s = t.services.get_mut(key).ok_or_else(|| MemoryError::NotFound(op.to_string()))?;
                s.conf = conf.clone();
            }
            Op::DelService { key } => {
                t.services.remove(key).ok_or_else(|| MemoryError::NotFound(op.to_string()))?;
            }
            Op::AddDest { svc, dest, conf } => {
                let s = t.services.get_mut(svc).ok_or_else(|| MemoryError::NotFound(op.to_string()))?;
                if s.dests.contains_key(dest) {
                    return Err(MemoryError::Exists(op.to_string()));
                }
                s.dests.insert(*dest, conf.clone());
            }
            Op::EditDest { svc, dest, conf } => {
                let s = t.services.get_mut(svc).ok_or_else(|| MemoryError::NotFound(op.to_string()))?;
                let d = s.dests.get_mut(dest).ok_or_else(|| MemoryError::NotFound(op.to_string()))?;
                let stats = std::mem::take(&mut d.stats);
                *d = conf.clone();
                d.stats = stats;
            }
            Op::DelDest { svc, dest } => {
                let s = t.services.get_mut(svc).ok_or_else(|| MemoryError::NotFound(op.to_string()))?;
                s.dests.remove(dest).ok_or_else(|| MemoryError::NotFound(op.to_string()))?;
            }
        }
        self.writes += 1;
        Ok(())
    }
}
