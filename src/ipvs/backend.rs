//! What the director needs from an IPVS backend (kernel or in-memory), and the one sync
//! routine both use: dump, diff, apply in order, retry once on a race.

use super::memory::{MemoryBackend, MemoryError};
use super::reconcile::{diff, Op};
use super::table::{ServiceKey, Table};

/// Why one op failed. `Exists`/`NotFound` mean the table changed under us (EEXIST/ESRCH).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("already exists")]
    Exists,
    #[error("no such service or real server")]
    NotFound,
    #[error("{0}")]
    Other(String),
}

pub trait Backend {
    /// Read the whole table.
    fn dump(&mut self) -> Result<Table, ApplyError>;
    /// Apply one op.
    fn apply(&mut self, op: &Op) -> Result<(), ApplyError>;
    /// Write ops sent so far (for status and benchmarks).
    fn writes(&self) -> u64;
    /// Run the connection sync daemon as `want` says (None: leave it alone). Returns what
    /// was done. Backends without one do nothing.
    fn sync_daemon(&mut self, _want: Option<&super::wire::SyncDaemon>) -> Result<Vec<String>, ApplyError> {
        Ok(Vec::new())
    }
}

impl Backend for MemoryBackend {
    fn dump(&mut self) -> Result<Table, ApplyError> {
        Ok(self.table.clone())
    }
    fn apply(&mut self, op: &Op) -> Result<(), ApplyError> {
        MemoryBackend::apply(self, op).map_err(|e| match e {
            MemoryError::Exists(_) => ApplyError::Exists,
            MemoryError::NotFound(_) => ApplyError::NotFound,
        })
    }
    fn writes(&self) -> u64 {
        self.writes
    }
}

/// The outcome of one sync: what was sent and what failed (each with its op).
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    pub applied: Vec<Op>,
    pub failed: Vec<(Op, ApplyError)>,
    /// Set when the table could not even be read.
    pub dump_error: Option<ApplyError>,
}

impl SyncReport {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.dump_error.is_none()
    }
}

/// Bring the backend's table to `desired`. `owned` says which services not in `desired` we may
/// delete. When an op meets EEXIST/ESRCH (someone else changed the table), the table is
/// dumped again and the remaining diff applied once more; what fails then is reported.
pub fn sync(backend: &mut dyn Backend, desired: &Table, owned: &dyn Fn(&ServiceKey) -> bool) -> SyncReport {
    let mut report = SyncReport::default();
    for attempt in 0..2 {
        let actual = match backend.dump() {
            Ok(t) => t,
            Err(e) => {
                report.dump_error = Some(e);
                return report;
            }
        };
        let mut raced = false;
        for op in diff(desired, &actual, owned) {
            match backend.apply(&op) {
                Ok(()) => report.applied.push(op),
                Err(ApplyError::Exists | ApplyError::NotFound) if attempt == 0 => raced = true,
                Err(e) => report.failed.push((op, e)),
            }
        }
        if !raced {
            break;
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::table::{Dest, DestKey, Family, Forward, Protocol, Service, ServiceConf};

    fn desired() -> Table {
        let mut t = Table::default();
        let mut s = Service::new(ServiceConf::new("rr", Family::Inet));
        s.dests.insert(DestKey("198.51.100.1:80".parse().unwrap()), Dest::new(Forward::Dr, 1));
        t.services.insert(ServiceKey::Addr { protocol: Protocol::Tcp, addr: "192.0.2.1:80".parse().unwrap() }, s);
        t
    }

    /// A backend whose first dump is stale: the first apply meets EEXIST.
    struct Racy {
        inner: MemoryBackend,
        stale_dumps: u32,
    }
    impl Backend for Racy {
        fn dump(&mut self) -> Result<Table, ApplyError> {
            if self.stale_dumps > 0 {
                self.stale_dumps -= 1;
                return Ok(Table::default());
            }
            Ok(self.inner.table.clone())
        }
        fn apply(&mut self, op: &Op) -> Result<(), ApplyError> {
            Backend::apply(&mut self.inner, op)
        }
        fn writes(&self) -> u64 {
            self.inner.writes
        }
    }

    #[test]
    fn second_sync_sends_nothing() {
        let mut m = MemoryBackend::new();
        let r = sync(&mut m, &desired(), &|_| true);
        assert!(r.ok());
        assert_eq!(r.applied.len(), 2);
        let r = sync(&mut m, &desired(), &|_| true);
        assert!(r.applied.is_empty());
        assert_eq!(m.writes, 2);
    }

    #[test]
    fn a_race_is_retried_once_after_a_fresh_dump() {
        let mut m = MemoryBackend::new();
        sync(&mut m, &desired(), &|_| true);
        // The service exists, but our dump says the table is empty: AddService gets EEXIST.
        let mut racy = Racy { inner: m, stale_dumps: 1 };
        let r = sync(&mut racy, &desired(), &|_| true);
        assert!(r.ok(), "{r:?}");
        assert_eq!(racy.inner.table, desired());
    }

    #[test]
    fn persistent_races_are_reported_with_the_op() {
        let mut m = MemoryBackend::new();
        sync(&mut m, &desired(), &|_| true);
        let mut racy = Racy { inner: m, stale_dumps: 2 };
        let r = sync(&mut racy, &desired(), &|_| true);
        assert!(!r.ok());
        assert!(matches!(r.failed[0], (Op::AddService { .. }, ApplyError::Exists)));
    }
}
