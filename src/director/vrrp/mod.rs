//! Running VRRP instances: the state machines of `vrrp::fsm` with their sockets, VIPs and
//! gratuitous ARP from `net`. The fsm decides; this module carries out its actions and reports
//! transitions (upkeep in `maintain.rs`, a new policy and the stop in `reload.rs`). It runs on
//! the heartbeat's thread (`heartbeat.rs`), never on the director's.

mod maintain;
mod reload;

use super::track::TrackChange;
use super::vmac::Vmacs;
pub use super::vrrp_config::fsm_config;
use super::vrrp_config::{link_inputs, net_route, net_vip, primary_address, release_held, sync_instances};
use super::vrrp_status::{Fixed, InstanceStatus, Master, RunningStatus};
use crate::model::{self, VrrpInstance};
use crate::net::{self, Mode, VrrpSocket};
use crate::ratelimit::LogLimiter;
use crate::vrrp::fsm::{Action, Config, Input, Instance, State, SyncGroup};
use crate::vrrp::packet::{self, DropCounters, Endpoints, Expect, RxMeta};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What arrives from the link watcher. (The sockets are read by the heartbeat's loop itself,
/// [`Vrrp::readable`] and [`Vrrp::receive`]: one wake-up per packet, no task in between.)
pub enum VrrpInput {
    Link { name: String, ifindex: u32, up: bool },
}

/// How many link events may wait for the state machines.
pub const INPUT_QUEUE: usize = 1024;

/// Batches read from one socket per turn of the heartbeat loop (each up to
/// [`net::vrrp_socket::RECV_BATCH`] datagrams): timers are looked at again after that many.
const RECV_ROUNDS: usize = 8;

/// How long a socket whose receive failed (not a bad datagram: the socket itself) is left
/// alone before it is read again, so that a persistent error cannot spin the loop.
const RECV_PAUSE: Duration = Duration::from_millis(20);

/// Adverts that failed in a row before the instance goes to Fault (its socket is reopened).
const SEND_FAULT_AFTER: u32 = 3;

/// How long the first send fault lasts at least; each one after it with no advert sent in
/// between lasts twice as long as the one before, up to [`SEND_HOLD_MAX`]. A cause that stays
/// (a unicast peer with no route) would otherwise make the instance Master again every few
/// seconds, take the VIPs and announce them while its peer holds them.
const SEND_HOLD_FIRST: Duration = Duration::from_secs(1);
const SEND_HOLD_MAX: Duration = Duration::from_secs(64);

/// The track name that puts an instance in Fault while its socket cannot send.
const SEND_TRACK: &str = "lvsd.send";
/// Down while the instance's configured `unicast_src` is not a usable address of the host:
/// every advert would fail, and an instance that went back to Master after each send fault
/// would take the VIPs (and announce them) again and again.
const SOURCE_TRACK: &str = "lvsd.source";

/// A state change, for hooks, notify programs and the event log.
#[derive(Debug, Clone)]
pub struct Transition {
    pub instance: String,
    pub from: State,
    pub to: State,
    pub reason: String,
    pub priority: u8,
    /// Set when the instance belongs to a sync group.
    pub group: Option<String>,
}

/// The track name that holds an instance's priority down after `yield`.
const YIELD_TRACK: &str = "lvsd.yield";

struct Running {
    /// The socket this instance sends on and receives from (shared per link and family in
    /// multicast mode).
    sock: u64,
    model: VrrpInstance,
    /// The model's part of the instance's status, made again when the model changes.
    fixed: Arc<Fixed>,
    fsm: Instance,
    expect: Expect,
    socket: Rc<VrrpSocket>,
    sent: u64,
    received: u64,
    drops: DropCounters,
    group: Option<(usize, usize)>,
    transitions: u64,
    /// keepalived's per-instance counters (its `become_master`, `release_master`,
    /// `pri_zero_sent`, `pri_zero_rcvd`), for the compatible metrics.
    became_master: u64,
    released_master: u64,
    priority_zero_sent: u64,
    priority_zero_received: u64,
    /// Adverts that failed to send in a row.
    send_failures: u32,
    /// Its `unicast_src` is not a usable address of the host (the instance is in Fault).
    source_missing: bool,
    /// Send faults with no advert sent since the first of them.
    send_faults: u32,
    /// In a send fault: the earliest it may end.
    send_hold_until: Option<Instant>,
    /// Dropped adverts are logged at most once per period and reason, with the count held
    /// back (one limiter per reason: noise must not hide a misconfiguration).
    drop_log: std::collections::HashMap<packet::DropReason, LogLimiter>,
}

struct Group {
    name: String,
    fsm: SyncGroup,
    members: Vec<String>,
}

/// An open VRRP socket and the task that receives from it.
struct Sock {
    id: u64,
    /// (interface, IPv6, unicast source and peers): multicast sockets are shared.
    key: (String, bool, Option<(IpAddr, Vec<IpAddr>)>),
    family: net::Family,
    mode: Mode,
    socket: Rc<VrrpSocket>,
    /// Receiving failed: not read again before this.
    paused_until: Option<Instant>,
    /// Sending failed persistently: the instances on it are in Fault until it is reopened.
    broken: bool,
    /// Receiving failed: look at the link at the next maintenance.
    suspect: bool,
}

pub struct Vrrp {
    running: Vec<Running>,
    /// Every VRRP socket receives every advert on its link, so instances of one link and
    /// family share one socket and packets are dispatched by VRID.
    sockets: Vec<Sock>,
    /// One packet socket per interface for gratuitous ARP / NA (opening one per packet
    /// costs an RCU grace period on close).
    announcers: std::collections::HashMap<String, Rc<net::Announcer>>,
    groups: Vec<Group>,
    /// Instances that could not start, with the reason (shown in status); tried again at
    /// each upkeep (`maintain`).
    failed: Vec<(VrrpInstance, String)>,
    /// The policy's sync groups, for instances that start late.
    group_defs: Vec<model::SyncGroup>,
    /// The last state each track reported, for instances that start late.
    tracks: Vec<TrackChange>,
    tx: mpsc::Sender<VrrpInput>,
    next_id: u64,
    /// Adverts waiting to be sent by `flush`, in order, with the instance that sends them.
    /// (The instance is named: stopping ones are no longer in `running`.)
    outbox: Vec<Outgoing>,
    link_task: Option<JoinHandle<()>>,
    /// Notes for the director's event log (a VIP put back, a socket reopened).
    notes: Vec<(&'static str, String)>,
    /// Receive errors are logged at most once per period.
    recv_log: LogLimiter,
    /// Receive buffers, shared by the sockets (read one after the other); taken while a
    /// batch is handled.
    rx: Option<Box<net::vrrp_socket::RecvBuffers>>,
    /// The instance the connection sync daemon follows and the members of its sync group:
    /// the only ones whose preemption waits for the connection table (a group member that
    /// preempted at once would take the others along).
    sync_instances: Vec<String>,
    /// Preemptions held since the last `take_held`: (instance, master, its priority, bound).
    held: Vec<(String, IpAddr, u8, Duration)>,
    /// The instances' virtual MAC interfaces.
    vmacs: Vmacs,
}

/// Install (or remove) routes of instance `name`. A route the kernel refuses is reported and
/// the others still go in: the VIPs, already there, matter more than any one route.
fn set_routes(name: &str, routes: &[model::VirtualRoute], add: bool, notes: &mut Vec<(&'static str, String)>) {
    for r in routes {
        let done = if add { net::route::add_route(&net_route(r)) } else { net::route::del_route(&net_route(r)) };
        if let Err(e) = done {
            notes.push(("vrrp_error", format!("{name}: {} route {r}: {e}", if add { "adding" } else { "removing" })));
        }
    }
}

/// One advert on its way out.
struct Outgoing {
    instance: String,
    socket: Rc<VrrpSocket>,
    bytes: Vec<u8>,
    dst: IpAddr,
    /// The source when it is not the socket's own (a configured `unicast_src`).
    src: Option<IpAddr>,
}

impl Vrrp {
    pub fn new(tx: mpsc::Sender<VrrpInput>) -> Vrrp {
        Vrrp {
            running: Vec::new(),
            sockets: Vec::new(),
            announcers: Default::default(),
            groups: Vec::new(),
            failed: Vec::new(),
            group_defs: Vec::new(),
            tracks: Vec::new(),
            tx,
            next_id: 1,
            outbox: Vec::new(),
            link_task: None,
            notes: Vec::new(),
            recv_log: LogLimiter::default(),
            rx: None,
            sync_instances: Vec::new(),
            held: Vec::new(),
            vmacs: Vmacs::default(),
        }
    }

    /// Notes gathered since the last call, for the event log.
    pub fn take_notes(&mut self) -> Vec<(&'static str, String)> {
        std::mem::take(&mut self.notes)
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.running.iter().position(|r| r.model.name == name)
    }

    /// Open the socket and start the state machine of one instance.
    fn start_instance(&mut self, v: &VrrpInstance, tracks: &[TrackChange], now: Instant, out: &mut Vec<Transition>) -> Result<(), String> {
        let primary = primary_address(v)?;
        self.vmacs.ensure(v, primary, &mut self.notes)?;
        let (sock_id, socket) = self.socket_for(v, primary)?;
        let cfg = self.config_for(v, primary);
        // A previous run killed with SIGKILL leaves its VIPs behind (as keepalived does):
        // remove them before electing, so that a backup never holds them.
        for what in release_held(v) {
            tracing::warn!("{}: removed stale {what} left by an earlier run", v.name);
        }
        let mut fsm = Instance::new(cfg);
        let expect = fsm.config().expect();
        for input in link_inputs(v).into_iter().filter(|i| matches!(i, Input::Interface { up: false, .. })) {
            fsm.handle(now, input);
        }
        // Tracks that have not told their state yet and would put the instance in Fault hold
        // it there until they do, as keepalived keeps an instance out of Backup and Master
        // until its weight-0 scripts have run once ("Entering FAULT STATE (init)"); a file is
        // read once before keepalived starts, so a file track waits whatever its weight. An
        // owner would otherwise be master for the moment before a failing track reports.
        for t in v.tracks.iter().filter(|t| t.weight == 0 || matches!(t.kind, model::TrackKind::File { .. })) {
            if !tracks.iter().any(|c| c.0 == v.name && c.1 == t.name) {
                fsm.handle(now, Input::Track { name: t.name.clone(), up: false, weight: 0 });
            }
        }
        // init_fail: a track not heard from yet counts as failed from the start.
        for t in v.tracks.iter().filter(|t| t.init_fail && t.weight != 0) {
            if !tracks.iter().any(|c| c.0 == v.name && c.1 == t.name) {
                let (up, weight) = t.as_reported(false);
                fsm.handle(now, Input::Track { name: t.name.clone(), up, weight });
            }
        }
        // Tracks already known (a reload restarting the instance): before it elects itself.
        for (_, name, up, weight) in tracks.iter().filter(|t| t.0 == v.name) {
            fsm.handle(now, Input::Track { name: name.clone(), up: *up, weight: *weight });
        }
        self.running.push(Running {
            sock: sock_id,
            model: v.clone(),
            fixed: Fixed::of(v),
            fsm,
            expect,
            socket,
            sent: 0,
            received: 0,
            drops: DropCounters::default(),
            group: None,
            transitions: 0,
            became_master: 0,
            released_master: 0,
            priority_zero_sent: 0,
            priority_zero_received: 0,
            send_failures: 0,
            source_missing: false,
            send_faults: 0,
            send_hold_until: None,
            drop_log: Default::default(),
        });
        let idx = self.running.len() - 1;
        // Before it elects itself: a source it cannot send from holds it in Fault.
        if v.unicast_src.is_some() {
            let addrs = net::addr::list_all_addresses().unwrap_or_default();
            self.check_source(idx, &addrs, now, out);
        }
        self.drive(idx, Input::Startup, now, out);
        Ok(())
    }

    /// The socket an instance sends and receives on: shared by the instances of one link and
    /// family (multicast) or of one source and peer list (unicast); opened when new.
    fn socket_for(&mut self, v: &VrrpInstance, primary: IpAddr) -> Result<(u64, Rc<VrrpSocket>), String> {
        let family = if v.is_ipv6() { net::Family::Inet6 } else { net::Family::Inet };
        let mode =
            if v.unicast_peers.is_empty() { Mode::Multicast } else { Mode::Unicast { src: primary, peers: v.unicast_peers.clone() } };
        let key = (
            v.advert_interface().to_owned(),
            v.is_ipv6(),
            match &mode {
                Mode::Multicast => None,
                Mode::Unicast { src, peers } => Some((*src, peers.clone())),
            },
        );
        let (sock_id, socket) = match self.sockets.iter().find(|s| s.key == key) {
            Some(s) => (s.id, s.socket.clone()),
            None => {
                let socket = Rc::new(VrrpSocket::open(v.advert_interface(), family, mode.clone()).map_err(|e| e.to_string())?);
                let id = self.next_id;
                self.next_id += 1;
                self.sockets.push(Sock {
                    id,
                    key,
                    family,
                    mode,
                    socket: socket.clone(),
                    paused_until: None,
                    broken: false,
                    suspect: false,
                });
                (id, socket)
            }
        };
        Ok((sock_id, socket))
    }

    /// Start every instance of the model; failures are kept for status and returned.
    pub fn start(&mut self, m: &model::Model, now: Instant) -> (Vec<Transition>, Vec<String>) {
        if self.link_task.is_none() {
            self.link_task = Some(spawn_link_watch(self.tx.clone(), false));
        }
        let mut out = Vec::new();
        let mut errors = Vec::new();
        self.sync_instances = sync_instances(m);
        for v in &m.vrrp {
            if let Err(e) = self.start_instance(v, &[], now, &mut out) {
                errors.push(format!("vrrp '{}': {e}", v.name));
                self.failed.push((v.clone(), e));
            }
        }
        self.group_defs = m.sync_groups.clone();
        self.set_groups();
        (out, errors)
    }

    fn set_groups(&mut self) {
        self.groups.clear();
        for r in &mut self.running {
            r.group = None;
        }
        for (gi, g) in self.group_defs.iter().enumerate() {
            let mut fsm = SyncGroup::new(g.instances.len());
            for (mi, name) in g.instances.iter().enumerate() {
                if let Some(idx) = self.index(name) {
                    self.running[idx].group = Some((gi, mi));
                    let r = &self.running[idx];
                    fsm.update(mi, r.fsm.state(), r.fsm.own_fault());
                }
            }
            self.groups.push(Group { name: g.name.clone(), fsm, members: g.instances.clone() });
        }
    }

    /// Feed one input to one instance, then whatever its sync group asks of the others.
    fn drive(&mut self, idx: usize, input: Input, now: Instant, out: &mut Vec<Transition>) {
        // Members of a sync group queue their commands here (none otherwise: no allocation).
        let mut queue = VecDeque::new();
        let mut first = Some((idx, input));
        while let Some((i, input)) = first.take().or_else(|| queue.pop_front()) {
            let actions = self.running[i].fsm.handle(now, input);
            self.perform(i, actions, out);
            if let Some((gi, mi)) = self.running[i].group {
                let (state, fault) = (self.running[i].fsm.state(), self.running[i].fsm.own_fault());
                for (member, cmd) in self.groups[gi].fsm.update(mi, state, fault) {
                    let name = &self.groups[gi].members[member];
                    if let Some(j) = self.index(name) {
                        queue.push_back((j, Input::Sync(cmd)));
                    }
                }
            }
        }
    }

    fn perform(&mut self, i: usize, actions: Vec<Action>, out: &mut Vec<Transition>) {
        for a in actions {
            // Routes go in once master (after the VIPs a route may take as its source) and
            // out when it stops being master.
            if let Action::StateChanged { from, to, .. } = &a
                && (*from == State::Master) != (*to == State::Master)
            {
                let r = &self.running[i];
                set_routes(&r.model.name, &r.model.routes, *to == State::Master, &mut self.notes);
            }
            let r = &mut self.running[i];
            match a {
                Action::SendAdvert { priority } => {
                    let c = r.fsm.config();
                    let advert = c.advert(priority);
                    // The address the advert says it is from (VRRPv3's checksum covers it) is
                    // the one it leaves from.
                    let src = (c.primary_address != r.socket.src()).then_some(c.primary_address);
                    for dst in c.destinations() {
                        let ep = Endpoints { src: c.primary_address, dst };
                        match advert.encode(&ep, c.v3_checksum_as_v2) {
                            Ok(bytes) => {
                                self.outbox.push(Outgoing { instance: r.model.name.clone(), socket: r.socket.clone(), bytes, dst, src })
                            }
                            Err(e) => tracing::error!("{}: cannot encode advert: {e}", r.model.name),
                        }
                    }
                    r.sent += 1;
                    r.priority_zero_sent += (priority == 0) as u64;
                }
                Action::AddVips(addrs) => {
                    for a in addrs {
                        if let Err(e) = net::addr::add_address(&net_vip(&r.model, a)) {
                            tracing::error!("{}: adding VIP {a}: {e}", r.model.name);
                        }
                    }
                }
                Action::RemoveVips(addrs) => {
                    for a in addrs {
                        if let Err(e) = net::addr::del_address(&net_vip(&r.model, a)) {
                            tracing::error!("{}: removing VIP {a}: {e}", r.model.name);
                        }
                    }
                }
                Action::SendGratuitous { addresses, count, interval } => self.announce(i, &addresses, count, interval),
                Action::StateChanged { from, to, reason } => {
                    r.transitions += 1;
                    r.became_master += (to == State::Master) as u64;
                    r.released_master += (from == State::Master) as u64;
                    out.push(Transition {
                        instance: r.model.name.clone(),
                        from,
                        to,
                        reason: reason.to_string(),
                        priority: r.fsm.effective_priority(),
                        group: r.group.map(|(g, _)| self.groups.get(g).map(|g| g.name.clone()).unwrap_or_default()),
                    });
                }
                Action::PriorityChanged { from, to } => {
                    tracing::info!("{}: priority {from} -> {to}", r.model.name);
                }
                Action::PreemptHeld { master, priority, bound } => {
                    self.held.push((r.model.name.clone(), master, priority, bound));
                }
                Action::Warn(w) => tracing::warn!("{}: {w:?}", r.model.name),
            }
        }
    }

    /// Gratuitous ARP / unsolicited NA for some of instance `i`'s VIPs, `count` times.
    fn announce(&mut self, i: usize, addresses: &[IpAddr], count: u32, interval: Duration) {
        let r = &self.running[i];
        let name = r.model.name.clone();
        let mut targets: Vec<(Rc<net::Announcer>, IpAddr)> = Vec::new();
        for a in addresses {
            let ifname = net_vip(&r.model, *a).ifname;
            let ann = match self.announcers.get(&ifname) {
                Some(x) => x.clone(),
                None => match net::Announcer::open(&ifname) {
                    Ok(x) => {
                        let x = Rc::new(x);
                        self.announcers.insert(ifname.clone(), x.clone());
                        x
                    }
                    Err(e) => {
                        tracing::warn!("{name}: gratuitous ARP/NA on {ifname}: {e}");
                        continue;
                    }
                },
            };
            targets.push((ann, *a));
        }
        tokio::task::spawn_local(async move {
            for n in 0..count {
                if n > 0 && !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
                for (ann, a) in &targets {
                    let sent = match a {
                        IpAddr::V4(v4) => ann.garp(*v4),
                        IpAddr::V6(v6) => ann.unsolicited_na(*v6, false),
                    };
                    if let Err(e) = sent {
                        tracing::warn!("{name}: gratuitous ARP/NA for {a}: {e}");
                    }
                }
            }
        });
    }

    /// Send the adverts the last inputs produced. An instance whose adverts keep failing
    /// (its link was deleted and re-created, say) goes to Fault, visibly, and its socket is
    /// reopened at the next maintenance: a master that cannot advertise must not keep its VIPs.
    pub fn flush(&mut self, now: Instant) -> Vec<Transition> {
        let mut failing = Vec::new();
        // Taken and put back: the queue keeps its room from one advert to the next.
        let mut outbox = std::mem::take(&mut self.outbox);
        for Outgoing { instance, socket, bytes, dst, src } in outbox.drain(..) {
            let sent = socket.send_from(&bytes, dst, src);
            let Some(i) = self.index(&instance) else { continue };
            let r = &mut self.running[i];
            match sent {
                Ok(()) => {
                    r.send_failures = 0;
                    r.send_faults = 0;
                }
                Err(e) => {
                    r.send_failures = r.send_failures.saturating_add(1);
                    if r.send_failures <= SEND_FAULT_AFTER {
                        tracing::warn!("{}: VRRP send to {dst}: {e}", r.model.name);
                    }
                    if r.send_failures == SEND_FAULT_AFTER {
                        failing.push((i, e.to_string()));
                    }
                }
            }
        }
        self.outbox = outbox;
        let mut out = Vec::new();
        for (i, e) in failing {
            let id = self.running[i].sock;
            if let Some(s) = self.sockets.iter_mut().find(|s| s.id == id) {
                s.broken = true;
            }
            let r = &mut self.running[i];
            r.send_faults = r.send_faults.saturating_add(1);
            let hold = SEND_HOLD_FIRST.saturating_mul(1 << (r.send_faults - 1).min(6)).min(SEND_HOLD_MAX);
            r.send_hold_until = Some(now + hold);
            let name = r.model.name.clone();
            self.notes.push((
                "vrrp_error",
                format!(
                    "{name}: {SEND_FAULT_AFTER} adverts in a row could not be sent ({e}): fault for at least {} s, until the socket is reopened",
                    hold.as_secs()
                ),
            ));
            self.drive(i, Input::Track { name: SEND_TRACK.into(), up: false, weight: 0 }, now, &mut out);
        }
        out
    }

    /// The state machines' next timer, or the end of a socket's receive pause.
    pub fn next_deadline(&self) -> Option<Instant> {
        let pauses = self.sockets.iter().filter_map(|s| s.paused_until);
        self.running.iter().filter_map(|r| r.fsm.poll_timeout()).chain(pauses).min()
    }

    /// Completes when a socket (not paused) may have datagrams waiting: then [`receive`](Self::receive).
    pub fn readable(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            let mut ready = false;
            for s in self.sockets.iter().filter(|s| s.paused_until.is_none()) {
                ready |= s.socket.poll_recv_ready(cx).is_ready();
            }
            if ready { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
        })
    }

    /// Handle the datagrams waiting on every socket the runtime has seen readable (at most
    /// [`RECV_ROUNDS`] batches each), without waiting; a socket whose pause is over is read
    /// again.
    pub fn receive(&mut self, now: Instant) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut bufs = self.rx.take().unwrap_or_default();
        for k in 0..self.sockets.len() {
            match self.sockets[k].paused_until {
                Some(t) if t > now => continue,
                Some(_) => self.sockets[k].paused_until = None,
                None => {}
            }
            let (id, socket) = (self.sockets[k].id, self.sockets[k].socket.clone());
            for _ in 0..RECV_ROUNDS {
                let n = match socket.recv_queued(&mut bufs) {
                    Ok(n) => n,
                    Err(e) => {
                        if let Some(held) = self.recv_log.allow(now) {
                            tracing::warn!("VRRP receive: {e} ({held} more such errors not logged)");
                        }
                        // A real socket error (not a bad packet) repeats until the link is
                        // fixed: look at the link at the next maintenance, read again later.
                        let s = &mut self.sockets[k];
                        s.suspect = true;
                        s.paused_until = Some(now + RECV_PAUSE);
                        break;
                    }
                };
                for i in 0..n {
                    match socket.packet_in(&bufs, i) {
                        Some(Ok((bytes, meta))) => self.on_packet(id, bytes, meta, now, &mut out),
                        // Not VRRP at all (unreadable IP header, or larger than any advert):
                        // one counted drop, and the next is read at once.
                        Some(Err(_)) => self.on_malformed(id, now),
                        None => {}
                    }
                }
                if n < net::vrrp_socket::RECV_BATCH {
                    break;
                }
            }
        }
        self.rx = Some(bufs);
        out
    }

    /// A datagram on socket `id` that is not VRRP at all: one counted drop, nothing else.
    fn on_malformed(&mut self, id: u64, now: Instant) {
        if let Some(first) = self.running.iter().position(|r| r.sock == id) {
            let r = &mut self.running[first];
            r.drops.record(packet::DropReason::Malformed);
            if let Some(held) = r.drop_log.entry(packet::DropReason::Malformed).or_default().allow(now) {
                tracing::debug!("{}: datagram that is not VRRP dropped ({held} more drops not logged)", r.model.name);
            }
        }
    }

    /// One datagram from socket `id`, for the instance of its VRID there.
    fn on_packet(&mut self, id: u64, bytes: &[u8], meta: net::RecvMeta, now: Instant, out: &mut Vec<Transition>) {
        let vrid = packet::peek_vrid(bytes);
        let on_sock = |r: &Running| r.sock == id;
        let Some(i) = self.running.iter().position(|r| on_sock(r) && Some(r.model.vrid) == vrid) else {
            // No instance of ours has this VRID here (or the packet is too short to
            // say): count it once, on the first instance of the link.
            if let Some(first) = self.running.iter().position(on_sock) {
                let reason = if vrid.is_none() { packet::DropReason::Truncated } else { packet::DropReason::Vrid };
                tracing::debug!("advert from {} for VRID {vrid:?}: no such instance here", meta.src);
                self.running[first].drops.record(reason);
            }
            return;
        };
        let rx = RxMeta { src: meta.src, dst: meta.dst, ttl: meta.ttl };
        let r = &mut self.running[i];
        let mut decoded = packet::decode(bytes, &rx, &r.expect);
        // keepalived's skip_check_adv_addr (vrrp_state_backup): the addresses of an advert from
        // the master already known are not checked again; every other check still is.
        if matches!(decoded, Err(packet::DecodeError::AddressList { .. }))
            && r.model.skip_check_adv_addr
            && r.fsm.master().is_some_and(|(m, _)| m == meta.src)
            && let Ok(advert) = packet::parse(bytes, r.expect.family)
        {
            let expect = Expect { addresses: advert.addresses, ..r.expect.clone() };
            decoded = packet::decode(bytes, &rx, &expect);
        }
        match decoded {
            Ok(got) => {
                r.received += 1;
                r.priority_zero_received += (got.advert.priority == 0) as u64;
                self.drive(i, Input::advert(meta.src, &got.advert), now, out);
            }
            Err(e) => {
                r.drops.record(e.reason());
                // One line per period at most: a flood must not become a log flood.
                if let Some(held) = r.drop_log.entry(e.reason()).or_default().allow(now) {
                    let more = if held > 0 { format!(" ({held} more drops not logged)") } else { String::new() };
                    if e.reason().is_misconfiguration() {
                        tracing::warn!("{}: advert from {} dropped: {e}{more}", r.model.name, meta.src);
                    } else {
                        tracing::debug!("{}: advert from {} dropped: {e}{more}", r.model.name, meta.src);
                    }
                }
            }
        }
    }

    pub fn on_timeout(&mut self, now: Instant) -> Vec<Transition> {
        let mut out = Vec::new();
        for i in 0..self.running.len() {
            if self.running[i].fsm.poll_timeout().is_some_and(|t| t <= now) {
                self.drive(i, Input::Timeout, now, &mut out);
            }
        }
        out
    }

    pub fn on_input(&mut self, input: VrrpInput, now: Instant) -> Vec<Transition> {
        let mut out = Vec::new();
        match input {
            VrrpInput::Link { name, ifindex, up } => {
                // A link of ours that came back under a new ifindex (deleted and re-created)
                // needs new sockets before it can carry adverts again.
                if up && self.sockets.iter().any(|s| s.key.0 == name && s.socket.ifindex() != ifindex) {
                    out.extend(self.maintain(now));
                }
                // Only the instances that care hear of a link: the state machines keep the
                // links they were told about, and a host's links come and go (containers).
                for i in 0..self.running.len() {
                    if self.running[i].fsm.config().watches_interface(&name) {
                        self.drive(i, Input::Interface { name: name.clone(), up }, now, &mut out);
                    }
                }
            }
        }
        out
    }

    /// A track function changed (or reported for the first time).
    pub fn track(&mut self, instance: &str, name: &str, up: bool, weight: i32, now: Instant) -> Vec<Transition> {
        let mut out = Vec::new();
        match self.tracks.iter_mut().find(|t| t.0 == instance && t.1 == name) {
            Some(t) => (t.2, t.3) = (up, weight),
            None => self.tracks.push((instance.to_owned(), name.to_owned(), up, weight)),
        }
        if let Some(i) = self.index(instance) {
            self.drive(i, Input::Track { name: name.to_string(), up, weight }, now, &mut out);
        }
        out
    }

    /// Give up mastership: one priority-0 advert, then stay backup at priority 1 until
    /// `unyield` (or a reload).
    pub fn yield_instance(&mut self, name: &str, now: Instant) -> Result<Vec<Transition>, String> {
        let i = self.index(name).ok_or_else(|| format!("no running VRRP instance '{name}'"))?;
        let mut out = Vec::new();
        self.drive(i, Input::Track { name: YIELD_TRACK.into(), up: false, weight: -254 }, now, &mut out);
        if self.running[i].fsm.state() == State::Master {
            self.drive(i, Input::Shutdown, now, &mut out);
            self.drive(i, Input::Startup, now, &mut out);
        }
        Ok(out)
    }

    /// Sync-aware preemption: the connection table caught up, a held preemption may go ahead.
    pub fn release_preempt(&mut self, name: &str, now: Instant) -> Vec<Transition> {
        let mut out = Vec::new();
        if let Some(i) = self.index(name) {
            self.drive(i, Input::ReleasePreempt, now, &mut out);
        }
        out
    }

    /// Preemptions held since the last call.
    pub fn take_held(&mut self) -> Vec<(String, IpAddr, u8, Duration)> {
        std::mem::take(&mut self.held)
    }

    /// The state machine's settings for `v`; only the sync daemon's instance waits for the
    /// connection table before preempting.
    fn config_for(&self, v: &VrrpInstance, primary: IpAddr) -> Config {
        // keepalived's default when the link's MTU is unknown.
        let mtu = net::link_by_name(&v.interface).ok().and_then(|l| l.mtu).unwrap_or(1500);
        let mut c = fsm_config(v, primary, mtu);
        if c.addresses.len() < v.vips.len() {
            tracing::warn!(
                "{}: {} VIPs, but an advert on {} (MTU {mtu}) carries {}: the rest are held but not advertised, as keepalived does",
                v.name,
                v.vips.len(),
                v.interface,
                c.addresses.len()
            );
        }
        if !self.sync_instances.contains(&v.name) {
            c.preempt_sync_wait = Duration::ZERO;
        }
        c
    }

    pub fn unyield(&mut self, name: &str, now: Instant) -> Result<Vec<Transition>, String> {
        let i = self.index(name).ok_or_else(|| format!("no running VRRP instance '{name}'"))?;
        let mut out = Vec::new();
        self.drive(i, Input::Track { name: YIELD_TRACK.into(), up: true, weight: 0 }, now, &mut out);
        Ok(out)
    }

    pub fn status(&self) -> Vec<InstanceStatus> {
        let now = Instant::now();
        let running = self.running.iter().map(|r| {
            InstanceStatus::Running(Box::new(RunningStatus {
                fixed: r.fixed.clone(),
                state: r.fsm.state().as_str(),
                priority: r.fsm.effective_priority(),
                master: r.fsm.master().map(|(address, priority)| Master { address, priority }),
                adverts_sent: r.sent,
                adverts_received: r.received,
                dropped: r.drops.clone(),
                transitions: r.transitions,
                became_master: r.became_master,
                released_master: r.released_master,
                priority_zero_sent: r.priority_zero_sent,
                priority_zero_received: r.priority_zero_received,
                master_down_interval_ms: r.fsm.master_down_interval().as_millis() as u64,
                preempt_held: r.fsm.preempt_held(now),
            }))
        });
        running.chain(self.failed.iter().map(|(v, e)| InstanceStatus::failed(&v.name, e))).collect()
    }

    pub fn state_of(&self, name: &str) -> Option<State> {
        self.index(name).map(|i| self.running[i].fsm.state())
    }

    pub fn names(&self) -> Vec<String> {
        self.running.iter().map(|r| r.model.name.clone()).collect()
    }

    pub fn model_of(&self, name: &str) -> Option<&VrrpInstance> {
        self.index(name).map(|i| &self.running[i].model)
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty() && self.failed.is_empty()
    }
}

/// Follow link changes. A watcher error is fatal for that watcher: a new one is made (its
/// first dump is replayed, so a change missed in between is not lost); `replay` replays the
/// first one's too (a watcher started again after the task ended).
pub(super) fn spawn_link_watch(tx: mpsc::Sender<VrrpInput>, replay: bool) -> JoinHandle<()> {
    tokio::task::spawn_local(async move {
        let mut first = !replay;
        loop {
            let mut w = match net::LinkWatcher::new() {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!("cannot watch link state: {e}; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if !first {
                for l in w.initial().to_vec() {
                    if tx.send(VrrpInput::Link { name: l.name.clone(), ifindex: l.ifindex, up: l.is_up() }).await.is_err() {
                        return;
                    }
                }
            }
            first = false;
            loop {
                match w.next().await {
                    Ok(ev) => {
                        #[cfg(debug_assertions)]
                        crate::injected::LINK_WATCH.panic_if_due();
                        if tx.send(VrrpInput::Link { name: ev.name, ifindex: ev.ifindex, up: ev.up }).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("link watch: {e}; watching again");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                }
            }
        }
    })
}
