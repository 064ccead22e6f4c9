//! What the director needs from an IPVS backend (kernel or in-memory), and the one sync
//! routine both use: dump, diff, apply in order, retry once on a race.

use super::memory::{MemoryBackend, MemoryError};
use super::reconcile::{Op, diff};
use super::table::{ServiceKey, Table};
use super::wire::{DaemonState, SyncDaemon, Timeouts};

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

/// A read of the whole table to be made later, on another thread (see [`Backend::reader`]).
pub type Reader = Box<dyn FnOnce() -> Result<Table, ApplyError> + Send>;

pub trait Backend {
    /// Read the whole table.
    fn dump(&mut self) -> Result<Table, ApplyError>;
    /// What reads the whole table as `dump` does, but on a worker: a status of a big table is
    /// not read on the director's loop. Made on the caller's thread, since a netlink socket
    /// belongs to the namespace of the thread that opens it. By default the table is read now
    /// (an in-memory table is only copied).
    fn reader(&mut self) -> Reader {
        let table = self.dump();
        Box::new(move || table)
    }
    /// Read only these services (those that do not exist are left out). Backends that can
    /// ask for one service at a time override this; the default reads everything.
    fn dump_services(&mut self, keys: &[ServiceKey]) -> Result<Table, ApplyError> {
        let mut all = self.dump()?;
        all.services.retain(|k, _| keys.contains(k));
        Ok(all)
    }
    /// Apply one op.
    fn apply(&mut self, op: &Op) -> Result<(), ApplyError>;
    /// Apply ops in order and answer each, as if each were applied alone (a failed op does
    /// not stop the ones after it). The kernel backend sends them many to a datagram.
    fn apply_batch(&mut self, ops: &[Op]) -> Vec<Result<(), ApplyError>> {
        ops.iter().map(|op| self.apply(op)).collect()
    }
    /// Read the table (all of it, or only `scope`) and return the ops that turn it into
    /// `desired` (`reconcile::diff`, deleting extra services that are `owned`) and the extra
    /// services that are not owned. The kernel backend compares while it reads.
    fn read_diff(
        &mut self,
        desired: &Table,
        owned: &dyn Fn(&ServiceKey) -> bool,
        scope: Option<&[ServiceKey]>,
    ) -> Result<(Vec<Op>, Vec<ServiceKey>), ApplyError> {
        let actual = match scope {
            Some(keys) => self.dump_services(keys)?,
            None => self.dump()?,
        };
        let foreign = actual.services.keys().filter(|k| !desired.services.contains_key(k) && !owned(k)).copied().collect();
        Ok((diff(desired, &actual, owned), foreign))
    }
    /// Write ops sent so far (for status and benchmarks).
    fn writes(&self) -> u64;
    /// Run the connection sync daemon as `want` says (None: leave it alone). Returns what
    /// was done. Backends without one do nothing.
    fn sync_daemon(&mut self, _want: Option<&super::wire::SyncDaemon>) -> Result<Vec<String>, ApplyError> {
        Ok(Vec::new())
    }
    /// The connection sync daemons running now (none for backends without them).
    fn daemons(&mut self) -> Result<Vec<SyncDaemon>, ApplyError> {
        Ok(Vec::new())
    }
    /// Start one sync daemon.
    fn start_daemon(&mut self, _d: &SyncDaemon) -> Result<(), ApplyError> {
        Err(ApplyError::Other("this backend runs no sync daemon".into()))
    }
    /// Stop the sync daemon of one state.
    fn stop_daemon(&mut self, _state: DaemonState) -> Result<(), ApplyError> {
        Err(ApplyError::Other("this backend runs no sync daemon".into()))
    }
    /// The connection timeouts (`ipvsadm -L --timeout`).
    fn timeouts(&mut self) -> Result<Timeouts, ApplyError> {
        Err(ApplyError::Other("this backend has no connection timeouts".into()))
    }
    /// Set them (`ipvsadm --set`); a 0 leaves that one as it is.
    fn set_timeouts(&mut self, _t: &Timeouts) -> Result<(), ApplyError> {
        Err(ApplyError::Other("this backend has no connection timeouts".into()))
    }
}

/// Bring the connection timeouts to `want` (a 0 leaves one as it is), reading them first so
/// that timeouts already right cost no write. Returns the ones from before when it set them.
pub fn reconcile_timeouts(b: &mut dyn Backend, want: &Timeouts) -> Result<Option<Timeouts>, ApplyError> {
    let now = b.timeouts()?;
    if super::memory::set_timeouts(now, want) == now {
        return Ok(None);
    }
    b.set_timeouts(want).map(|()| Some(now))
}

impl Backend for MemoryBackend {
    fn dump(&mut self) -> Result<Table, ApplyError> {
        Ok(self.table.clone())
    }
    fn dump_services(&mut self, keys: &[ServiceKey]) -> Result<Table, ApplyError> {
        let mut t = Table::default();
        for k in keys {
            if let Some(s) = self.table.services.get(k) {
                t.services.insert(*k, s.clone());
            }
        }
        Ok(t)
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
    fn daemons(&mut self) -> Result<Vec<SyncDaemon>, ApplyError> {
        Ok(self.daemons.clone())
    }
    fn timeouts(&mut self) -> Result<Timeouts, ApplyError> {
        Ok(self.timeouts)
    }
    fn set_timeouts(&mut self, t: &Timeouts) -> Result<(), ApplyError> {
        self.timeouts = super::memory::set_timeouts(self.timeouts, t);
        self.writes += 1;
        Ok(())
    }
    /// As the kernel: one daemon per state (EEXIST for a second).
    fn start_daemon(&mut self, d: &SyncDaemon) -> Result<(), ApplyError> {
        if self.daemons.iter().any(|x| x.state == d.state) {
            return Err(ApplyError::Exists);
        }
        self.daemons.push(d.clone());
        self.writes += 1;
        Ok(())
    }
    fn stop_daemon(&mut self, state: DaemonState) -> Result<(), ApplyError> {
        let before = self.daemons.len();
        self.daemons.retain(|x| x.state != state);
        if self.daemons.len() == before {
            return Err(ApplyError::NotFound);
        }
        self.writes += 1;
        Ok(())
    }
}

/// The outcome of one sync: what was sent and what failed (each with its op).
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    pub applied: Vec<Op>,
    pub failed: Vec<(Op, ApplyError)>,
    /// Set when the table could not even be read.
    pub dump_error: Option<ApplyError>,
    /// Services in the table that are neither wanted nor ours, left alone.
    pub foreign: Vec<ServiceKey>,
    /// Where the time went (all attempts summed): for benchmarks and the timing log line.
    pub timing: SyncTiming,
}

/// Time spent reading the table and comparing it with the desired one, and writing the diff.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncTiming {
    pub read: std::time::Duration,
    pub write: std::time::Duration,
}

/// `read_ms=… write_ms=…`: the `ipvs_timing` log line's fields, which the benchmarks read.
impl std::fmt::Display for SyncTiming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        write!(f, "read_ms={:.1} write_ms={:.1}", ms(self.read), ms(self.write))
    }
}

/// Writes logged one line each at info level per pass; the rest are counted in one line and
/// listed at debug level. A first pass at 10,000 services x 4 makes 50,000 writes: one line
/// each would go past journald's default burst (10,000 lines in 30 s per unit, the rest
/// dropped, other lines with them) and take most of the pass's CPU to format.
pub const OPS_LOGGED: usize = 100;

impl SyncReport {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.dump_error.is_none()
    }

    /// Log what was written: every op up to [`OPS_LOGGED`], then a count.
    pub fn log_applied(&self) {
        let (shown, rest) = self.applied.split_at(self.applied.len().min(OPS_LOGGED));
        for op in shown {
            tracing::info!(target: "ipvs", "{op}");
        }
        if rest.is_empty() {
            return;
        }
        tracing::info!(target: "ipvs", "and {} more writes (listed at debug level: LVSD_LOG=info,ipvs=debug)", rest.len());
        for op in rest {
            tracing::debug!(target: "ipvs", "{op}");
        }
    }
}

/// Bring the backend's table to `desired`. `owned` says which services not in `desired` we may
/// delete. When an op meets EEXIST/ESRCH (someone else changed the table), the table is
/// dumped again and the remaining diff applied once more; what fails then is reported.
pub fn sync(backend: &mut dyn Backend, desired: &Table, owned: &dyn Fn(&ServiceKey) -> bool) -> SyncReport {
    sync_scoped(backend, desired, owned, None)
}

/// [`sync`] for some services only: reads and changes only `scope` (`desired` holds those of
/// them that are wanted; the others are deleted if `owned`). What a health change needs,
/// without reading the whole table.
pub fn sync_services(backend: &mut dyn Backend, desired: &Table, owned: &dyn Fn(&ServiceKey) -> bool, scope: &[ServiceKey]) -> SyncReport {
    sync_scoped(backend, desired, owned, Some(scope))
}

fn sync_scoped(
    backend: &mut dyn Backend,
    desired: &Table,
    owned: &dyn Fn(&ServiceKey) -> bool,
    scope: Option<&[ServiceKey]>,
) -> SyncReport {
    let mut report = SyncReport::default();
    for attempt in 0..2 {
        let t0 = std::time::Instant::now();
        let (ops, foreign) = match backend.read_diff(desired, owned, scope) {
            Ok(r) => r,
            Err(e) => {
                report.dump_error = Some(e);
                return report;
            }
        };
        report.foreign = foreign;
        let t1 = std::time::Instant::now();
        report.timing.read += t1 - t0;
        let mut raced = false;
        let mut answers = backend.apply_batch(&ops).into_iter();
        for op in ops {
            // A backend that answers fewer ops than it was given leaves the rest unknown.
            match answers.next().unwrap_or_else(|| Err(ApplyError::Other("no answer from the backend".into()))) {
                Ok(()) => report.applied.push(op),
                Err(ApplyError::Exists | ApplyError::NotFound) if attempt == 0 => raced = true,
                Err(e) => report.failed.push((op, e)),
            }
        }
        report.timing.write += t1.elapsed();
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

    #[test]
    fn timeouts_are_set_once_and_a_zero_leaves_one_as_it_is() {
        let mut b = MemoryBackend::new();
        let want = Timeouts { tcp: 7200, tcp_fin: 0, udp: 60 };
        assert_eq!(reconcile_timeouts(&mut b, &want), Ok(Some(Timeouts { tcp: 900, tcp_fin: 120, udp: 300 })));
        assert_eq!(b.timeouts, Timeouts { tcp: 7200, tcp_fin: 120, udp: 60 });
        let writes = b.writes;
        assert_eq!(reconcile_timeouts(&mut b, &want), Ok(None), "already right: nothing sent");
        assert_eq!(b.writes, writes);
    }

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

    #[test]
    fn a_scoped_sync_reads_and_changes_only_its_services() {
        let mut m = MemoryBackend::new();
        sync(&mut m, &desired(), &|_| true);
        let other = ServiceKey::Addr { protocol: Protocol::Udp, addr: "192.0.2.2:53".parse().unwrap() };
        m.table.services.insert(other, Service::new(ServiceConf::new("rr", Family::Inet)));
        let key = *desired().services.keys().next().unwrap();
        let mut want = desired();
        want.services.get_mut(&key).unwrap().dests.values_mut().for_each(|d| d.weight = 7);
        // `other` is not in the scope: not deleted although everything is "owned".
        let r = sync_services(&mut m, &want, &|_| true, &[key]);
        assert_eq!(r.applied.len(), 1, "{:?}", r.applied);
        assert!(m.table.services.contains_key(&other));
        // An owned service in the scope that is not wanted is deleted.
        let r = sync_services(&mut m, &Table::default(), &|_| true, &[key]);
        assert!(matches!(r.applied[..], [Op::DelService { .. }]), "{:?}", r.applied);
        assert_eq!(m.table.services.len(), 1);
    }

    /// A backend that refuses one op (as the kernel refuses a bad request) and applies the rest.
    struct Refusing {
        inner: MemoryBackend,
        refuse: Op,
    }
    impl Backend for Refusing {
        fn dump(&mut self) -> Result<Table, ApplyError> {
            Ok(self.inner.table.clone())
        }
        fn apply(&mut self, op: &Op) -> Result<(), ApplyError> {
            self.inner.writes += 1;
            if *op == self.refuse {
                return Err(ApplyError::Other(format!("{op}: Numerical result out of range (os error 34)")));
            }
            MemoryBackend::apply(&mut self.inner, op).map_err(|_| ApplyError::NotFound)
        }
        fn writes(&self) -> u64 {
            self.inner.writes
        }
    }

    #[test]
    fn one_refused_op_of_a_batch_is_reported_alone_and_the_rest_applied() {
        let mut want = desired();
        let key = *want.services.keys().next().unwrap();
        for i in 2..=5 {
            want.services
                .get_mut(&key)
                .unwrap()
                .dests
                .insert(DestKey(format!("198.51.100.{i}:80").parse().unwrap()), Dest::new(Forward::Dr, i));
        }
        let refuse = Op::AddDest { svc: key, dest: DestKey("198.51.100.3:80".parse().unwrap()), conf: Dest::new(Forward::Dr, 3) };
        let mut b = Refusing { inner: MemoryBackend::new(), refuse: refuse.clone() };
        let r = sync(&mut b, &want, &|_| true);
        assert_eq!(r.failed.len(), 1);
        assert_eq!(r.failed[0].0, refuse);
        assert!(matches!(&r.failed[0].1, ApplyError::Other(m) if m.contains("os error 34")));
        assert_eq!(r.applied.len(), 5);
        assert_eq!(b.inner.table.dest_count(), 4, "every real but the refused one");
        assert!(r.dump_error.is_none());
        // The next pass sends only the refused op again.
        let r = sync(&mut b, &want, &|_| true);
        assert_eq!((r.applied.len(), r.failed.len()), (0, 1));
    }

    /// A log line sink for one test.
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(level: tracing::Level, r: &SyncReport) -> Vec<String> {
        let out = Lines::default();
        let w = out.clone();
        let sub = tracing_subscriber::fmt().with_writer(move || w.clone()).with_ansi(false).with_max_level(level).finish();
        tracing::subscriber::with_default(sub, || r.log_applied());
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn a_large_pass_logs_its_first_writes_and_a_count() {
        let key = *desired().services.keys().next().unwrap();
        let op = |i: u32| Op::AddDest {
            svc: key,
            dest: DestKey(std::net::SocketAddr::new(std::net::Ipv4Addr::from(0xc633_6400 + i).into(), 80)),
            conf: Dest::new(Forward::Dr, 1),
        };
        let mut r = SyncReport { applied: (0..OPS_LOGGED as u32 + 150).map(op).collect(), ..Default::default() };
        let info = logged(tracing::Level::INFO, &r);
        assert_eq!(info.len(), OPS_LOGGED + 1, "{info:?}");
        assert!(info[0].contains("198.51.100.0:80"), "{}", info[0]);
        assert!(info[OPS_LOGGED].contains("and 150 more writes"), "{}", info[OPS_LOGGED]);
        let debug = logged(tracing::Level::DEBUG, &r);
        assert_eq!(debug.len(), OPS_LOGGED + 151);
        assert!(debug.last().unwrap().contains(&std::net::Ipv4Addr::from(0xc633_6400 + OPS_LOGGED as u32 + 149).to_string()));
        // A pass of a few writes logs each and no count.
        r.applied.truncate(3);
        let info = logged(tracing::Level::INFO, &r);
        assert_eq!(info.len(), 3, "{info:?}");
    }
}
