//! The kernel IPVS backend: generic netlink through neli (family "IPVS", resolved through
//! nlctrl), messages from `wire`, and the dump -> diff -> apply loop.

use super::backend::{ApplyError, Backend};
use super::reconcile::Op;
use super::table::{ServiceKey, Table};
use super::wire::{self, DaemonState, Info, Request, SyncDaemon, Timeouts};
use neli::consts::nl::{NlmF, Nlmsg};
use neli::consts::socket::NlFamily;
use neli::nl::{NlPayload, Nlmsghdr, NlmsghdrBuilder};
use neli::router::synchronous::NlRouter;
use neli::socket::synchronous::NlSocketHandle;
use neli::types::Buffer;
use neli::utils::Groups;
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
    sock: NlSocketHandle,
    family: u16,
    seq: u32,
    writes: u64,
}

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

fn set_recv_timeout(sock: &NlSocketHandle, t: std::time::Duration) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let tv = libc::timeval { tv_sec: t.as_secs() as libc::time_t, tv_usec: t.subsec_micros() as libc::suseconds_t };
    // SAFETY: a valid socket and a correctly sized timeval.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

impl Kernel {
    /// Resolve the "IPVS" family and open the socket used for requests.
    pub fn open() -> Result<Kernel, KernelError> {
        let family = {
            let (router, _) =
                NlRouter::connect(NlFamily::Generic, None, Groups::empty()).map_err(|e| KernelError::Socket(e.to_string()))?;
            router.resolve_genl_family(wire::FAMILY_NAME).map_err(|_| KernelError::NoIpvs)?
        };
        let sock = NlSocketHandle::connect(NlFamily::Generic, None, Groups::empty()).map_err(|e| KernelError::Socket(e.to_string()))?;
        set_recv_timeout(&sock, RECV_TIMEOUT).map_err(|e| KernelError::Socket(format!("receive timeout: {e}")))?;
        Ok(Kernel { sock, family, seq: 0, writes: 0 })
    }

    /// Write requests sent so far (successful or not).
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Send one request and collect the generic-netlink payloads of its replies. `what`
    /// names the request in errors; it is only called when something failed.
    fn call(&mut self, req: &Request, what: impl Fn() -> String) -> Result<Vec<Vec<u8>>, KernelError> {
        let netlink = |msg: String| KernelError::Netlink { what: what(), msg };
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut flags = NlmF::REQUEST | NlmF::ACK;
        if req.dump {
            flags |= NlmF::DUMP;
        }
        let msg: Nlmsghdr<u16, Buffer> = NlmsghdrBuilder::default()
            .nl_type(self.family)
            .nl_flags(flags)
            .nl_seq(seq)
            .nl_payload(NlPayload::Payload(Buffer::from(req.genl_payload())))
            .build()
            .map_err(|e| netlink(e.to_string()))?;
        if req.is_write() {
            self.writes += 1;
        }
        self.sock.send(&msg).map_err(|e| netlink(e.to_string()))?;
        let mut out = Vec::new();
        loop {
            let (iter, _) = self.sock.recv::<u16, Buffer>().map_err(|e| netlink(e.to_string()))?;
            for m in iter {
                let m = m.map_err(|e| netlink(e.to_string()))?;
                if *m.nl_seq() != seq {
                    continue; // a late reply to an earlier request
                }
                let errno = match m.nl_payload() {
                    NlPayload::Err(e) => -*e.error(),
                    // A dump ends with NLMSG_DONE, whose payload is 0 or a negative errno.
                    NlPayload::DumpExtAck(e) => -*e.error(),
                    _ => 0,
                };
                if errno != 0 {
                    return Err(KernelError::Errno { what: what(), errno, err: io::Error::from_raw_os_error(errno) });
                }
                if *m.nl_type() == u16::from(Nlmsg::Done) {
                    return Ok(out);
                }
                match m.nl_payload() {
                    NlPayload::Ack(_) | NlPayload::DumpExtAck(_) | NlPayload::Err(_) => return Ok(out),
                    NlPayload::Payload(p) => out.push(p.as_ref().to_vec()),
                    NlPayload::Empty => {}
                }
            }
        }
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
        for p in self.call(&wire::get_services(), || "list services".into())? {
            let (k, s) = Self::decode("list services", wire::decode_service(&p))?;
            t.services.insert(k, s);
        }
        let keys: Vec<ServiceKey> = t.services.keys().copied().collect();
        self.fill_dests(&mut t, &keys)?;
        Ok(t)
    }

    /// Only these services (asked for one by one), with their destinations; those that do
    /// not exist are left out.
    pub fn dump_services(&mut self, keys: &[ServiceKey]) -> Result<Table, KernelError> {
        let mut t = Table::default();
        for k in keys {
            let what = || format!("get service {}", super::format::service_name(k));
            match self.call(&wire::get_service(k), what) {
                Ok(replies) => {
                    if let Some(p) = replies.first() {
                        let (k, s) = Self::decode("get service", wire::decode_service(p))?;
                        t.services.insert(k, s);
                    }
                }
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
            let what = || format!("list real servers of {}", super::format::service_name(k));
            let replies = match self.call(&wire::get_dests(k), what) {
                Ok(r) => r,
                Err(e) if e.is_stale() => {
                    t.services.remove(k);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let svc = t.services.get_mut(k).expect("key from this table");
            for p in replies {
                let (dk, d) = Self::decode("list real servers", wire::decode_dest(&p, k.family()))?;
                svc.dests.insert(dk, d);
            }
        }
        Ok(())
    }

    /// Apply one reconcile op.
    pub fn apply(&mut self, op: &Op) -> Result<(), KernelError> {
        let req = match op {
            Op::AddService { key, conf } => wire::new_service(key, conf),
            Op::EditService { key, conf } => wire::set_service(key, conf),
            Op::DelService { key } => wire::del_service(key),
            Op::AddDest { svc, dest, conf } => wire::new_dest(svc, dest, conf),
            Op::EditDest { svc, dest, conf } => wire::set_dest(svc, dest, conf),
            Op::DelDest { svc, dest } => wire::del_dest(svc, dest),
        };
        self.call(&req, || op.to_string()).map(|_| ())
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
    fn dump_services(&mut self, keys: &[ServiceKey]) -> Result<Table, ApplyError> {
        Kernel::dump_services(self, keys).map_err(apply_error)
    }
    fn apply(&mut self, op: &Op) -> Result<(), ApplyError> {
        Kernel::apply(self, op).map_err(apply_error)
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

/// EEXIST means someone added it first; ESRCH (no service) and ENOENT (no real server)
/// that someone removed it: both make `backend::sync` dump again and retry once.
fn apply_error(e: KernelError) -> ApplyError {
    match e.errno() {
        Some(libc::EEXIST) => ApplyError::Exists,
        Some(libc::ESRCH) | Some(libc::ENOENT) => ApplyError::NotFound,
        _ => ApplyError::Other(e.to_string()),
    }
}

/// True when the running daemon `have` is what `want` asks for. Settings `want` leaves
/// unset take the kernel's defaults, so only the ones it sets are compared.
fn daemon_matches(have: &SyncDaemon, want: &SyncDaemon) -> bool {
    have.state == want.state
        && have.interface == want.interface
        && have.sync_id == want.sync_id
        && want.sync_maxlen.is_none_or(|v| have.sync_maxlen == Some(v))
        && want.mcast_group.is_none_or(|v| have.mcast_group == Some(v))
        && want.mcast_port.is_none_or(|v| have.mcast_port == Some(v))
        && want.mcast_ttl.is_none_or(|v| have.mcast_ttl == Some(v))
}

/// Make the connection sync daemons match `want`: exactly that daemon runs (a daemon of the
/// other state is stopped, one of the same state with other settings restarted); with
/// `None`, whatever runs is left alone (it may not be ours). Returns what was done.
pub fn sync_daemon(k: &mut Kernel, want: Option<&SyncDaemon>) -> Result<Vec<String>, KernelError> {
    let Some(want) = want else { return Ok(Vec::new()) };
    let mut done = Vec::new();
    let running = k.daemons()?;
    if running.iter().any(|d| daemon_matches(d, want)) && running.len() == 1 {
        return Ok(done);
    }
    for d in &running {
        if !daemon_matches(d, want) {
            k.stop_daemon(d.state)?;
            done.push(format!("stop {} sync daemon on {} id {}", state_name(d.state), d.interface, d.sync_id));
        }
    }
    if !running.iter().any(|d| daemon_matches(d, want)) {
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

    #[test]
    fn daemon_settings_left_unset_take_the_kernels_defaults() {
        let mut have = SyncDaemon::new(DaemonState::Master, "eth0", 7);
        have.sync_maxlen = Some(1472);
        have.mcast_port = Some(8848);
        let want = SyncDaemon::new(DaemonState::Master, "eth0", 7);
        assert!(daemon_matches(&have, &want));
        let mut other_port = want.clone();
        other_port.mcast_port = Some(9000);
        assert!(!daemon_matches(&have, &other_port));
        assert!(!daemon_matches(&have, &SyncDaemon::new(DaemonState::Backup, "eth0", 7)));
    }
}
