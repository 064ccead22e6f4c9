//! The kernel IPVS backend: generic netlink (family "IPVS", its id asked of nlctrl),
//! messages built and parsed by `wire`, sent by `nlsock`; requests go many to a
//! datagram and their answers are matched by sequence number. A whole-table resync reads
//! IPv4 services' destinations through the older sockopt interface where it shows them all
//! (`sockopt`: one getsockopt per service costs far less than one dump).

use super::answers::{self, Answer, Answers, OnData};
use super::backend::{ApplyError, Backend};
use super::nlsock::{NlSock, SockoptSock};
use super::reconcile::{Differ, Op};
use super::sockopt::{self, SockoptError};
use super::table::{DestKey, Family, Forward, Service, ServiceConf, ServiceKey, Table};
use super::wire::{self, DaemonState, Info, Request, SyncDaemon, Timeouts};
use std::io;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KernelError {
    #[error("cannot open a generic netlink socket: {0}")]
    Socket(String),
    #[error("the kernel has no IPVS (generic netlink family \"IPVS\" not found): load the ip_vs module, or use --dry-run")]
    NoIpvs,
    #[error("{what}: {err}")]
    Errno { what: String, errno: i32, err: io::Error },
    #[error("{what}: netlink: {msg}")]
    Netlink { what: String, msg: String },
    #[error("{what}: cannot decode the kernel's reply: {err}")]
    Decode { what: String, err: super::attrs::DecodeError },
    #[error("{what}: cannot decode the kernel's sockopt answer: {err}")]
    Sockopt { what: String, err: SockoptError },
}

impl KernelError {
    /// The errno the kernel answered with, if that is what failed.
    pub fn errno(&self) -> Option<i32> {
        match self {
            KernelError::Errno { errno, .. } => Some(*errno),
            _ => None,
        }
    }
    /// The table changed under us (someone else added or removed the same thing).
    pub fn is_stale(&self) -> bool {
        matches!(self.errno(), Some(libc::EEXIST) | Some(libc::ESRCH) | Some(libc::ENOENT))
    }
}

/// An open IPVS netlink channel. Counts the write requests it sends.
pub struct Kernel {
    sock: NlSock,
    family: u16,
    seq: u32,
    writes: u64,
    /// Reused buffers: the datagram being sent, the one being received.
    tx: Vec<u8>,
    rx: Vec<u8>,
    /// Where each datagram of the last receive is in `rx`.
    got: Vec<(usize, usize)>,
    /// The sockopt interface, for reading destinations cheaply where it shows them all
    /// (`read_diff`); None when the socket cannot be opened (no CAP_NET_RAW): netlink only.
    so: Option<SockoptSock>,
    /// Reused sockopt buffers: the argument of a call, the services' destination counts.
    so_buf: Vec<u8>,
    so_counts: Vec<(ServiceKey, u32)>,
}

/// The receive buffer, cut into slots of one datagram each: 32 KiB for dumps (the kernel
/// never makes a dump datagram larger), 4 KiB otherwise (an ack is 36 bytes, a get's
/// reply a few hundred).
const RX_BYTES: usize = 256 * 1024;
const DUMP_SLOT: usize = 32 * 1024;
const SLOT: usize = 4 * 1024;

fn cmd_name(cmd: u8) -> &'static str {
    use wire::cmd::*;
    match cmd {
        NEW_SERVICE => "add service",
        SET_SERVICE => "edit service",
        DEL_SERVICE => "delete service",
        GET_SERVICE => "list services",
        NEW_DEST => "add real server",
        SET_DEST => "edit real server",
        DEL_DEST => "delete real server",
        GET_DEST => "list real servers",
        NEW_DAEMON => "start sync daemon",
        DEL_DAEMON => "stop sync daemon",
        GET_DAEMON => "list sync daemons",
        SET_CONFIG => "set timeouts",
        GET_CONFIG => "get timeouts",
        GET_INFO => "get IPVS info",
        ZERO => "zero counters",
        FLUSH => "flush",
        _ => "IPVS request",
    }
}

/// A reply that has not come after this long never will: the call fails (and is retried at
/// the next resync) instead of holding the director. A dump of 10,000 services takes well
/// under a second.
const RECV_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Kernel {
    /// Resolve the "IPVS" family and open the socket used for requests.
    pub fn open() -> Result<Kernel, KernelError> {
        // nlctrl until it has told the IPVS family's id.
        let mut kernel = Kernel::netlink_only(wire::GENL_ID_CTRL)?;
        kernel.tx.reserve(answers::WINDOW_BYTES + 512);
        kernel.so = SockoptSock::open()
            .inspect_err(|e| tracing::info!("no IPVS sockopt socket ({e}): whole-table reads go by netlink alone, which is slower"))
            .ok();
        kernel.family = kernel.family_id()?;
        // nlctrl's command number is an IPVS write's: the question is not counted as one.
        kernel.writes = 0;
        Ok(kernel)
    }

    /// A netlink socket to the family `family`, without the sockopt one: enough for a dump.
    fn netlink_only(family: u16) -> Result<Kernel, KernelError> {
        let sock = NlSock::open(RECV_TIMEOUT).map_err(|e| KernelError::Socket(e.to_string()))?;
        Ok(Kernel {
            sock,
            family,
            seq: 0,
            writes: 0,
            tx: Vec::new(),
            rx: vec![0; RX_BYTES],
            got: Vec::new(),
            so: None,
            so_buf: Vec::new(),
            so_counts: Vec::new(),
        })
    }

    /// The IPVS family's id, asked of nlctrl (the kernel numbers families as they register).
    fn family_id(&mut self) -> Result<u16, KernelError> {
        let what = || format!("resolve generic netlink family {:?}", wire::FAMILY_NAME);
        let replies = match self.call(&wire::get_family(wire::FAMILY_NAME), what) {
            Err(e) if e.errno() == Some(libc::ENOENT) => return Err(KernelError::NoIpvs),
            r => r?,
        };
        let p = replies.first().ok_or(KernelError::Netlink { what: what(), msg: "no reply".into() })?;
        Self::decode("resolve the IPVS family", wire::decode_family_id(p))
    }

    /// Write requests sent so far (successful or not).
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Send one request and collect the generic-netlink payloads of its replies. `what`
    /// names the request in errors; it is only called when something failed.
    fn call(&mut self, req: &Request, what: impl Fn() -> String) -> Result<Vec<Vec<u8>>, KernelError> {
        let mut out = Vec::new();
        let mut answers = self.batch(std::slice::from_ref(req), &|_| what(), &mut |_, p| {
            out.push(p.to_vec());
            Ok(())
        });
        answers.pop().expect("one answer per request").map(|()| out)
    }

    /// Send `reqs` and return one answer per request, in order: many to a datagram, the
    /// datagram's answers read and matched to its requests (`answers`: which requests ask
    /// for an answer, and what silence means) before the next datagram goes.
    /// `on_data(i, payload)` gets the data messages of request `i` (a get's reply, a dump's
    /// parts); an error it returns becomes that request's answer. When answers stop coming
    /// (timeout, a receive error, an undecodable datagram), each request still unanswered
    /// gets an error saying its outcome is unknown.
    fn batch(&mut self, reqs: &[Request], what: &dyn Fn(usize) -> String, on_data: OnData<'_>) -> Vec<Answer> {
        let n = reqs.len();
        let base = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(n as u32);
        let Kernel { sock, family, writes, tx, rx, got, .. } = self;
        let mut answers = Answers::new(base, n);
        let mut start = 0;
        while start < n {
            let range = start..answers::datagram_end(reqs, start);
            start = range.end;
            tx.clear();
            for i in range.clone() {
                reqs[i].encode(*family, base.wrapping_add(i as u32), answers::asks_ack(reqs, &range, i), tx);
                *writes += u64::from(reqs[i].is_write());
            }
            if let Err(e) = sock.send(tx) {
                answers.give_up(&range, &format!("sending the request failed: {e}"), what);
                continue;
            }
            let slot = if reqs[range.start].dump { DUMP_SLOT } else { SLOT };
            while !answers.settled(&range) {
                let failed = match sock.recv_many(rx, slot, got) {
                    Ok(()) => got.iter().find_map(|&(off, len)| match wire::parse_replies(&rx[off..off + len]) {
                        Ok(msgs) => {
                            for m in msgs {
                                answers.take(m, reqs, &range, what, on_data);
                            }
                            None
                        }
                        Err(e) => Some(format!("cannot decode the kernel's answer ({e}); outcome unknown")),
                    }),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        Some(format!("no answer within {} s; outcome unknown", RECV_TIMEOUT.as_secs()))
                    }
                    Err(e) => Some(format!("receiving the answer failed ({e}); outcome unknown")),
                };
                if let Some(msg) = failed {
                    answers.give_up(&range, &msg, what);
                }
            }
        }
        answers.into_answers()
    }

    fn decode<T>(what: &str, r: Result<T, super::attrs::DecodeError>) -> Result<T, KernelError> {
        r.map_err(|err| KernelError::Decode { what: what.to_string(), err })
    }

    pub fn info(&mut self) -> Result<Info, KernelError> {
        let r = self.call(&wire::get_info(), || "get IPVS info".into())?;
        let p = r.first().ok_or(KernelError::Netlink { what: "get IPVS info".into(), msg: "no reply".into() })?;
        Self::decode("get IPVS info", wire::decode_info(p))
    }

    /// The whole table: every service, then each service's destinations (as ipvsadm does).
    pub fn dump(&mut self) -> Result<Table, KernelError> {
        let mut t = Table::default();
        let mut answers = self.batch(&[wire::get_services()], &|_| "list services".into(), &mut |_, p| {
            let (k, s) = Self::decode("list services", wire::decode_service(p))?;
            t.services.insert(k, s);
            Ok(())
        });
        answers.pop().expect("one answer")?;
        let keys: Vec<ServiceKey> = t.services.keys().copied().collect();
        self.fill_dests(&mut t, &keys)?;
        Ok(t)
    }

    /// Only these services (asked for together, many to a datagram), with their
    /// destinations; those that do not exist are left out.
    pub fn dump_services(&mut self, keys: &[ServiceKey]) -> Result<Table, KernelError> {
        let mut t = Table::default();
        let reqs: Vec<Request> = keys.iter().map(wire::get_service).collect();
        let what = |i: usize| format!("get service {}", super::format::service_name(&keys[i]));
        let answers = self.batch(&reqs, &what, &mut |_, p| {
            let (k, s) = Self::decode("get service", wire::decode_service(p))?;
            t.services.insert(k, s);
            Ok(())
        });
        for a in answers {
            match a {
                Ok(()) => {}
                Err(e) if e.is_stale() => {}
                Err(e) => return Err(e),
            }
        }
        let found: Vec<ServiceKey> = t.services.keys().copied().collect();
        self.fill_dests(&mut t, &found)?;
        Ok(t)
    }

    /// Read the destinations of `keys` into `t`; a service deleted meanwhile is dropped.
    fn fill_dests(&mut self, t: &mut Table, keys: &[ServiceKey]) -> Result<(), KernelError> {
        for k in keys {
            let what = |_: usize| format!("list real servers of {}", super::format::service_name(k));
            let svc = t.services.get_mut(k).expect("key from this table");
            let family = k.family();
            let mut answers = self.batch(&[wire::get_dests(k)], &what, &mut |_, p| {
                let (dk, d) = Self::decode("list real servers", wire::decode_dest(p, family))?;
                svc.dests.insert(dk, d);
                Ok(())
            });
            match answers.pop().expect("one answer") {
                Ok(()) => {}
                Err(e) if e.is_stale() => {
                    t.services.remove(k);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The ops that turn the kernel's table (all of it, or only `scope`) into `desired`, and
    /// the services found that are neither wanted nor `owned`. Computed while the answers
    /// are read, without building the kernel's table: the services come in one dump (for a
    /// scope: one get each, many to a datagram), then the destinations of each wanted
    /// service in one dump each (in a whole-table pass, one getsockopt each where that
    /// shows them all: `sockopt_dests`), compared with `desired` as they are decoded; a
    /// no-change pass keeps nothing per real server. Same ops, in the same order, as
    /// `reconcile::diff` of a dump.
    pub fn read_diff(
        &mut self,
        desired: &Table,
        owned: &dyn Fn(&ServiceKey) -> bool,
        scope: Option<&[ServiceKey]>,
    ) -> Result<(Vec<Op>, Vec<ServiceKey>), KernelError> {
        let mut have: Vec<(ServiceKey, ServiceConf)> = Vec::new();
        let mut keep = |p: &[u8], what: &str| -> Result<(), KernelError> {
            let (k, s) = Self::decode(what, wire::decode_service(p))?;
            have.push((k, s.conf));
            Ok(())
        };
        match scope {
            None => {
                let mut answers = self.batch(&[wire::get_services()], &|_| "list services".into(), &mut |_, p| keep(p, "list services"));
                answers.pop().expect("one answer")?;
            }
            Some(keys) => {
                let reqs: Vec<Request> = keys.iter().map(wire::get_service).collect();
                let what = |i: usize| format!("get service {}", super::format::service_name(&keys[i]));
                for a in self.batch(&reqs, &what, &mut |_, p| keep(p, "get service")) {
                    match a {
                        Ok(()) => {}
                        Err(e) if e.is_stale() => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        have.sort_unstable_by_key(|a| a.0);
        // A whole-table pass first asks the sockopt interface how many destinations each
        // IPv4 service has (one call for all); a scope is a few services: netlink alone.
        let counted = scope.is_none() && self.so.is_some() && self.sockopt_counts(&have)?;
        let mut d = Differ::default();
        // The destinations listed for the service at hand; reused, so no allocation per pass.
        let mut seen: Vec<DestKey> = Vec::new();
        for (key, want) in &desired.services {
            let Ok(i) = have.binary_search_by(|h| h.0.cmp(key)) else {
                d.missing_service(key, want);
                continue;
            };
            d.service_conf(key, want, &have[i].1);
            seen.clear();
            if counted && sockopt_shows_all(key, want) {
                match self.sockopt_dests(key)? {
                    Some(SockoptRead::Dests(dests)) => {
                        for (dk, hd) in dests.dests() {
                            d.dest(key, want, &dk, &hd);
                            seen.push(dk);
                        }
                        d.end_dests(key, want, |dk| seen.contains(dk));
                        continue;
                    }
                    Some(SockoptRead::Gone) => {
                        d.missing_service(key, want);
                        continue;
                    }
                    // It may hide some: read it by netlink.
                    None => {}
                }
            }
            let family = key.family();
            let what = |_: usize| format!("list real servers of {}", super::format::service_name(key));
            let mut answers = self.batch(&[wire::get_dests(key)], &what, &mut |_, p| {
                let (dk, hd) = Self::decode("list real servers", wire::decode_dest(p, family))?;
                d.dest(key, want, &dk, &hd);
                seen.push(dk);
                Ok(())
            });
            match answers.pop().expect("one answer") {
                Ok(()) => d.end_dests(key, want, |dk| seen.contains(dk)),
                // Deleted meanwhile (by someone else): add it back.
                Err(e) if e.is_stale() => d.missing_service(key, want),
                Err(e) => return Err(e),
            }
        }
        let mut foreign = Vec::new();
        for (key, _) in &have {
            if !desired.services.contains_key(key) {
                if owned(key) {
                    d.extra_service(key);
                } else {
                    foreign.push(*key);
                }
            }
        }
        Ok((d.finish(), foreign))
    }

    /// Ask the sockopt interface for every IPv4 service and its number of destinations (of
    /// both families) into `so_counts`, sorted by key. Room is made for the IPv4 services
    /// `have` lists; one the kernel has beyond those is not listed, so it goes by netlink.
    /// False when there is nothing to ask about. An error fails the read, as a failed dump.
    fn sockopt_counts(&mut self, have: &[(ServiceKey, ServiceConf)]) -> Result<bool, KernelError> {
        const WHAT: &str = "list services (sockopt)";
        self.so_counts.clear();
        let Some(so) = &self.so else { return Ok(false) };
        let n = have.iter().filter(|(k, _)| k.family() == Family::Inet).count();
        if n == 0 {
            return Ok(false);
        }
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let sockopt_err = |err| KernelError::Sockopt { what: WHAT.into(), err };
        sockopt::get_services_request(n, &mut self.so_buf).map_err(sockopt_err)?;
        so.get(sockopt::IP_VS_SO_GET_SERVICES, &mut self.so_buf).map_err(|err| errno_error(WHAT.into(), err))?;
        sockopt::parse_get_services(&self.so_buf, &mut self.so_counts).map_err(sockopt_err)?;
        self.so_counts.sort_unstable_by_key(|c| c.0);
        Ok(true)
    }

    /// The destinations of `key` through IP_VS_SO_GET_DESTS, when that answer shows all of
    /// them: the service is listed in `so_counts` with N destinations, the kernel fills
    /// exactly N of the N + 1 entries asked for (fewer: some are of the other family, or
    /// went meanwhile; N + 1: some came meanwhile), and none forwards by tunnel (whose
    /// settings this interface leaves out). None otherwise: the caller reads it by netlink.
    /// A failed call is an error as a failed dump is (ESRCH: the service went meanwhile).
    fn sockopt_dests(&mut self, key: &ServiceKey) -> Result<Option<SockoptRead<'_>>, KernelError> {
        let Some(so) = &self.so else { return Ok(None) };
        let Ok(i) = self.so_counts.binary_search_by(|c| c.0.cmp(key)) else { return Ok(None) };
        let n = self.so_counts[i].1;
        let what = || format!("list real servers of {} (sockopt)", super::format::service_name(key));
        if sockopt::get_dests_request(key, n.saturating_add(1), &mut self.so_buf).is_err() {
            return Ok(None); // more than one call may ask for
        }
        match so.get(sockopt::IP_VS_SO_GET_DESTS, &mut self.so_buf) {
            Ok(()) => {}
            Err(err) => {
                let e = errno_error(what(), err);
                return if e.errno() == Some(libc::ESRCH) { Ok(Some(SockoptRead::Gone)) } else { Err(e) };
            }
        }
        let got = sockopt::parse_get_dests(&self.so_buf).map_err(|err| KernelError::Sockopt { what: what(), err })?;
        Ok(answer_shows_all(&got, key, n).then_some(SockoptRead::Dests(got)))
    }

    /// Apply one reconcile op.
    pub fn apply(&mut self, op: &Op) -> Result<(), KernelError> {
        self.apply_batch(std::slice::from_ref(op)).pop().expect("one answer")
    }

    /// Apply ops in order, many to a datagram; one answer per op, in order. The kernel goes
    /// on after a failed op, as it would if each op were sent alone, so each answer is what
    /// that op alone would have met.
    pub fn apply_batch(&mut self, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        let mut answers = Vec::with_capacity(ops.len());
        for chunk in ops.chunks(answers::WINDOW) {
            let reqs: Vec<Request> = chunk.iter().map(request).collect();
            answers.extend(self.batch(&reqs, &|i| chunk[i].to_string(), &mut |_, _| Ok(())));
        }
        answers
    }

    pub fn timeouts(&mut self) -> Result<Timeouts, KernelError> {
        let r = self.call(&wire::get_config(), || "get timeouts".into())?;
        let p = r.first().ok_or(KernelError::Netlink { what: "get timeouts".into(), msg: "no reply".into() })?;
        Self::decode("get timeouts", wire::decode_config(p))
    }
    pub fn set_timeouts(&mut self, t: &Timeouts) -> Result<(), KernelError> {
        self.call(&wire::set_config(t), || "set timeouts".into()).map(|_| ())
    }
    pub fn daemons(&mut self) -> Result<Vec<SyncDaemon>, KernelError> {
        let r = self.call(&wire::get_daemons(), || "list sync daemons".into())?;
        r.iter().map(|p| Self::decode("list sync daemons", wire::decode_daemon(p))).collect()
    }
    pub fn start_daemon(&mut self, d: &SyncDaemon) -> Result<(), KernelError> {
        self.call(&wire::new_daemon(d), || format!("start sync daemon {:?} on {}", d.state, d.interface)).map(|_| ())
    }
    pub fn stop_daemon(&mut self, state: DaemonState) -> Result<(), KernelError> {
        self.call(&wire::del_daemon(state), || format!("stop sync daemon {state:?}")).map(|_| ())
    }
    /// Zero the counters of one service or of all. Never called by reconcile.
    pub fn zero(&mut self, svc: Option<&ServiceKey>) -> Result<(), KernelError> {
        self.call(&wire::zero(svc), || cmd_name(wire::cmd::ZERO).into()).map(|_| ())
    }
    /// Delete every service. Only on the operator's explicit request.
    pub fn flush(&mut self) -> Result<(), KernelError> {
        self.call(&wire::flush(), || cmd_name(wire::cmd::FLUSH).into()).map(|_| ())
    }
}

impl Backend for Kernel {
    fn dump(&mut self) -> Result<Table, ApplyError> {
        Kernel::dump(self).map_err(apply_error)
    }
    /// A socket of its own, so the dump goes on while this one keeps writing (a netlink one
    /// only: the family's id is known, and a dump reads nothing by sockopt).
    fn reader(&mut self) -> super::backend::Reader {
        match Kernel::netlink_only(self.family) {
            Ok(mut other) => Box::new(move || Kernel::dump(&mut other).map_err(apply_error)),
            Err(e) => {
                let e = apply_error(e);
                Box::new(move || Err(e))
            }
        }
    }
    fn dump_services(&mut self, keys: &[ServiceKey]) -> Result<Table, ApplyError> {
        Kernel::dump_services(self, keys).map_err(apply_error)
    }
    fn apply(&mut self, op: &Op) -> Result<(), ApplyError> {
        Kernel::apply(self, op).map_err(apply_error)
    }
    fn apply_batch(&mut self, ops: &[Op]) -> Vec<Result<(), ApplyError>> {
        Kernel::apply_batch(self, ops).into_iter().map(|r| r.map_err(apply_error)).collect()
    }
    fn read_diff(
        &mut self,
        desired: &Table,
        owned: &dyn Fn(&ServiceKey) -> bool,
        scope: Option<&[ServiceKey]>,
    ) -> Result<(Vec<Op>, Vec<ServiceKey>), ApplyError> {
        Kernel::read_diff(self, desired, owned, scope).map_err(apply_error)
    }
    fn writes(&self) -> u64 {
        self.writes
    }
    fn sync_daemon(&mut self, want: Option<&SyncDaemon>) -> Result<Vec<String>, ApplyError> {
        sync_daemon(self, want).map_err(apply_error)
    }
    fn daemons(&mut self) -> Result<Vec<SyncDaemon>, ApplyError> {
        Kernel::daemons(self).map_err(daemon_error)
    }
    fn start_daemon(&mut self, d: &SyncDaemon) -> Result<(), ApplyError> {
        Kernel::start_daemon(self, d).map_err(daemon_error)
    }
    fn stop_daemon(&mut self, state: DaemonState) -> Result<(), ApplyError> {
        Kernel::stop_daemon(self, state).map_err(daemon_error)
    }
    fn timeouts(&mut self) -> Result<Timeouts, ApplyError> {
        Kernel::timeouts(self).map_err(apply_error)
    }
    fn set_timeouts(&mut self, t: &Timeouts) -> Result<(), ApplyError> {
        Kernel::set_timeouts(self, t).map_err(apply_error)
    }
}

/// Sync daemon errors keep their message (EEXIST there is not a table race), with what the
/// kernel's answer usually means (ip_vs_sync.c start_sync_thread).
fn daemon_error(e: KernelError) -> ApplyError {
    let hint = match e.errno() {
        Some(libc::ENODEV) => " (no such interface: check `interface`)",
        Some(libc::EEXIST) => " (a daemon of this state already runs, maybe with another sync id)",
        Some(libc::EINVAL) => " (settings refused: maxlen above what the interface MTU allows, or a group of the wrong family)",
        _ => "",
    };
    ApplyError::Other(format!("{e}{hint}"))
}

/// What a sockopt read of one service's destinations found.
enum SockoptRead<'a> {
    Dests(sockopt::GetDests<'a>),
    /// The service is no longer there (ESRCH).
    Gone,
}

/// Whether the sockopt interface can show every destination `want` asks for: an IPv4
/// service, no wanted real of the other family (the interface skips those), none by
/// tunnel (it has no tunnel settings).
fn sockopt_shows_all(key: &ServiceKey, want: &Service) -> bool {
    key.family() == Family::Inet && want.dests.iter().all(|(dk, d)| dk.0.is_ipv4() && d.forward != Forward::Tun)
}

/// Whether a sockopt answer for `key` is all of the service, `n` being its number of
/// destinations of every family (it was asked for n + 1): exactly n came back, and no
/// tunnel, whose settings the answer leaves out.
fn answer_shows_all(got: &sockopt::GetDests<'_>, key: &ServiceKey, n: u32) -> bool {
    got.key == *key && got.len() == n as usize && got.dests().all(|(_, d)| d.forward != Forward::Tun)
}

/// A failed system call, as a failed netlink request is reported.
fn errno_error(what: String, err: io::Error) -> KernelError {
    match err.raw_os_error() {
        Some(errno) => KernelError::Errno { what, errno, err },
        None => KernelError::Netlink { what, msg: err.to_string() },
    }
}

/// The request that carries out `op`.
fn request(op: &Op) -> Request {
    match op {
        Op::AddService { key, conf } => wire::new_service(key, conf),
        Op::EditService { key, conf } => wire::set_service(key, conf),
        Op::DelService { key } => wire::del_service(key),
        Op::AddDest { svc, dest, conf } => wire::new_dest(svc, dest, conf),
        Op::EditDest { svc, dest, conf } => wire::set_dest(svc, dest, conf),
        Op::DelDest { svc, dest } => wire::del_dest(svc, dest),
    }
}

/// EEXIST means someone added it first; ESRCH (no service) and ENOENT (no real server)
/// that someone removed it: both make `backend::sync` dump again and retry once.
fn apply_error(e: KernelError) -> ApplyError {
    match e.errno() {
        Some(libc::EEXIST) => ApplyError::Exists,
        Some(libc::ESRCH) | Some(libc::ENOENT) => ApplyError::NotFound,
        _ => ApplyError::Other(e.to_string()),
    }
}

/// Make the connection sync daemons match `want`: exactly that daemon runs (a daemon of the
/// other state is stopped, one of the same state with other settings restarted); with
/// `None`, whatever runs is left alone (it may not be ours). Returns what was done.
pub fn sync_daemon(k: &mut Kernel, want: Option<&SyncDaemon>) -> Result<Vec<String>, KernelError> {
    let Some(want) = want else { return Ok(Vec::new()) };
    let mut done = Vec::new();
    let running = k.daemons()?;
    if running.iter().any(|d| d.satisfies(want)) && running.len() == 1 {
        return Ok(done);
    }
    for d in &running {
        if !d.satisfies(want) {
            k.stop_daemon(d.state)?;
            done.push(format!("stop {} sync daemon on {} id {}", state_name(d.state), d.interface, d.sync_id));
        }
    }
    if !running.iter().any(|d| d.satisfies(want)) {
        k.start_daemon(want)?;
        done.push(format!("start {} sync daemon on {} id {}", state_name(want.state), want.interface, want.sync_id));
    }
    Ok(done)
}

fn state_name(s: DaemonState) -> &'static str {
    match s {
        DaemonState::Master => "master",
        DaemonState::Backup => "backup",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errno(n: i32) -> KernelError {
        KernelError::Errno { what: "add service TCP  192.0.2.1:80 rr".into(), errno: n, err: io::Error::from_raw_os_error(n) }
    }

    #[test]
    fn races_map_to_retryable_errors_and_others_keep_the_op() {
        assert_eq!(apply_error(errno(libc::EEXIST)), ApplyError::Exists);
        assert_eq!(apply_error(errno(libc::ESRCH)), ApplyError::NotFound);
        assert_eq!(apply_error(errno(libc::ENOENT)), ApplyError::NotFound);
        match apply_error(errno(libc::EINVAL)) {
            ApplyError::Other(m) => assert!(m.starts_with("add service TCP  192.0.2.1:80 rr: "), "{m}"),
            e => panic!("{e:?}"),
        }
    }

    /// A get-dests answer for `key` asking `asked` entries, the first ones filled with
    /// `dests` (the kernel's layout, as sockopt.rs documents it).
    fn answer(key: &ServiceKey, asked: u32, dests: &[(&str, Forward)]) -> Vec<u8> {
        let mut buf = Vec::new();
        sockopt::get_dests_request(key, asked, &mut buf).unwrap();
        for (i, (addr, fwd)) in dests.iter().enumerate() {
            let e = &mut buf[sockopt::GET_DESTS_LEN + i * sockopt::DEST_ENTRY_LEN..][..sockopt::DEST_ENTRY_LEN];
            let a: std::net::SocketAddrV4 = addr.parse().unwrap();
            e.fill(0);
            e[0..4].copy_from_slice(&a.ip().octets());
            e[4..6].copy_from_slice(&a.port().to_be_bytes());
            e[8..12].copy_from_slice(&fwd.conn_flags().to_ne_bytes());
            e[12..16].copy_from_slice(&1u32.to_ne_bytes());
        }
        buf
    }

    #[test]
    fn a_sockopt_answer_is_used_only_when_it_shows_every_destination() {
        let key = ServiceKey::Addr { protocol: super::super::table::Protocol::Tcp, addr: "192.0.2.1:80".parse().unwrap() };
        let two = [("198.51.100.1:80", Forward::Dr), ("198.51.100.2:80", Forward::Nat)];
        let shows = |buf: &[u8], n: u32| answer_shows_all(&sockopt::parse_get_dests(buf).unwrap(), &key, n);
        assert!(shows(&answer(&key, 3, &two), 2));
        // The kernel counts 3 (one of the other family, which it leaves out): netlink.
        assert!(!shows(&answer(&key, 4, &two), 3));
        // One more than counted: added meanwhile.
        assert!(!shows(&answer(&key, 2, &two), 1));
        // A tunnel: its settings are not in the answer.
        assert!(!shows(&answer(&key, 3, &[two[0], ("198.51.100.3:80", Forward::Tun)]), 2));
        // An answer for another service.
        let other = ServiceKey::Fwmark { mark: 1, family: Family::Inet };
        assert!(!shows(&answer(&other, 3, &two), 2));
        // No destinations, as counted.
        assert!(shows(&answer(&key, 1, &[]), 0));
    }

    #[test]
    fn services_with_ipv6_or_tunnel_reals_are_read_by_netlink() {
        use super::super::table::{Dest, DestKey, Protocol};
        let v4 = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "192.0.2.1:80".parse().unwrap() };
        let v6 = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "[2001:db8::1]:80".parse().unwrap() };
        let svc = |reals: &[(&str, Forward)]| {
            let mut s = Service::new(ServiceConf::new("rr", Family::Inet));
            for (a, f) in reals {
                s.dests.insert(DestKey(a.parse().unwrap()), Dest::new(*f, 1));
            }
            s
        };
        assert!(sockopt_shows_all(&v4, &svc(&[("198.51.100.1:80", Forward::Dr), ("198.51.100.2:80", Forward::Nat)])));
        assert!(sockopt_shows_all(&ServiceKey::Fwmark { mark: 3, family: Family::Inet }, &svc(&[])));
        assert!(!sockopt_shows_all(&ServiceKey::Fwmark { mark: 3, family: Family::Inet6 }, &svc(&[])));
        assert!(!sockopt_shows_all(&v6, &svc(&[("[2001:db8::10]:80", Forward::Dr)])));
        assert!(!sockopt_shows_all(&v4, &svc(&[("198.51.100.1:80", Forward::Tun)])));
        assert!(!sockopt_shows_all(&v4, &svc(&[("198.51.100.1:80", Forward::Dr), ("[2001:db8::10]:80", Forward::Tun)])));
    }

    #[test]
    fn daemon_settings_left_unset_take_the_kernels_defaults() {
        let mut have = SyncDaemon::new(DaemonState::Master, "eth0", 7);
        have.sync_maxlen = Some(1472);
        have.mcast_port = Some(8848);
        let want = SyncDaemon::new(DaemonState::Master, "eth0", 7);
        assert!(have.satisfies(&want));
        let mut other_port = want.clone();
        other_port.mcast_port = Some(9000);
        assert!(!have.satisfies(&other_port));
        assert!(!have.satisfies(&SyncDaemon::new(DaemonState::Backup, "eth0", 7)));
    }
}
