//! The VRRP state machine of one instance, sans-IO (RFC 3768 section 6.4, RFC 5798 section
//! 6.4), with the keepalived extensions operators rely on: Fault state, tracked interfaces and
//! track functions with weights, `nopreempt`, `preempt_delay`, gratuitous ARP settings and
//! sync groups.
//!
//! The caller owns the clock and the sockets: it passes `now` to [`Instance::handle`], performs
//! the returned [`Action`]s in order, and calls `handle(now, Input::Timeout)` when
//! [`Instance::poll_timeout`] is reached. Adverts reach the machine only after
//! [`super::packet::decode`] accepted them.
//!
//! Behaviour chosen where the RFCs and keepalived leave room (keepalived 2.2.7 is the reference
//! for anything the RFC does not say):
//! - Startup: an address owner (priority 255) configured with `InitialState::Master` becomes
//!   master at once; everything else starts as backup and waits Master_Down_Interval (3 to 4
//!   advert intervals). This is keepalived's documented `state MASTER|BACKUP` rule ("If the
//!   priority is 255, then the instance will transition immediately to MASTER if state MASTER
//!   is specified; otherwise the instance will wait between 3 and 4 advert intervals"); so
//!   `state MASTER` on a non-owner changes nothing. RFC 5798 6.4.1 makes every owner master at
//!   once: give owners `InitialState::Master` to get that.
//! - An address owner ignores every advert (RFC 5798 7.1: the VRID check requires "the local
//!   router is not the IPvX address owner"), so a forged priority-255 advert for addresses we
//!   own never makes us back off; it is reported as [`Warning::OwnerConflict`]. keepalived
//!   instead lowers its own priority to 254; we do not, since the claim may be hostile.
//! - Weights of tracked interfaces and track functions add to the priority as in keepalived:
//!   a positive weight while up, a negative weight while down; the result is kept in 1..=254.
//!   Weight 0 means "down puts the instance in Fault". An address owner keeps priority 255
//!   whatever the weights, so for it any tracked object going down is a fault: handing over
//!   through Fault is the only way an owner can step aside (our choice).
//! - A master that hears a lower-priority advert answers with its own advert at once
//!   (keepalived, unless `lower_prio_no_advert`); RFC 5798 just discards it.
//! - Leaving master for Fault sends a priority-0 advert so the backup takes over within
//!   Skew_Time, as keepalived does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use thiserror::Error;

pub use super::packet::Version;
use super::packet::{self, Advert, Auth, Expect, Family};

/// Instance state. Initialize, Backup and Master are RFC 5798 section 6.4; Fault is
/// keepalived's state for "cannot work" (interface or track down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "initialize",
            State::Backup => "backup",
            State::Master => "master",
            State::Fault => "fault",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// keepalived's `state MASTER|BACKUP`; see the module docs for what it changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InitialState {
    #[default]
    Backup,
    Master,
}

/// Gratuitous ARP / unsolicited NA settings, keepalived's names and defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Garp {
    /// `garp_master_delay`: a second burst this long after becoming master (0: none).
    pub master_delay: Duration,
    /// `garp_master_repeat`: packets per address in each burst.
    pub master_repeat: u32,
    /// `garp_master_refresh`: repeat while master at this period (None: off).
    pub master_refresh: Option<Duration>,
    /// `garp_master_refresh_repeat`: packets per address in each refresh.
    pub master_refresh_repeat: u32,
    /// `garp_interval` / `gna_interval`: gap between packets of a burst (the sender paces).
    pub interval: Duration,
    /// `garp_lower_prio_repeat`: packets per address when a master hears a lower-priority
    /// advert (that router may believe it is master and hold the addresses). 0: none.
    pub lower_prio_repeat: u32,
    /// `garp_lower_prio_delay`: a second such burst this long after (0: none).
    pub lower_prio_delay: Duration,
}

impl Default for Garp {
    fn default() -> Self {
        Garp {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
            interval: Duration::ZERO,
            lower_prio_repeat: 5,
            lower_prio_delay: Duration::from_secs(5),
        }
    }
}

/// An interface whose link state the instance follows (keepalived `track_interface`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedInterface {
    pub name: String,
    /// 0: down means Fault. Otherwise added to the priority: positive while up, negative
    /// while down (keepalived `weight`).
    pub weight: i32,
    /// keepalived's `weight N reverse`: the other way round (-weight while up for a positive
    /// weight, +|weight| while down for a negative one; with weight 0, up is Fault).
    pub reverse: bool,
}

impl TrackedInterface {
    /// (up, weight) as an unreversed track would be: the opposite weight under the opposite
    /// condition is the same change.
    fn as_plain(&self, up: bool) -> (bool, i32) {
        if self.reverse { (!up, -self.weight) } else { (up, self.weight) }
    }
}

/// What one instance needs to run; the director maps the policy model into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub vrid: u8,
    pub version: Version,
    /// Configured priority 1..=255; 255 marks the address owner.
    pub priority: u8,
    /// Advertisement interval in centiseconds (VRRPv2: a multiple of 100).
    pub advert_int: u16,
    /// false is keepalived's `nopreempt`.
    pub preempt: bool,
    /// keepalived `preempt_delay`: a lower-priority master is still accepted for this long
    /// after the first of its adverts is seen.
    pub preempt_delay: Duration,
    /// Sync-aware preemption (`vrrp::preempt_sync`): a preemption of a live master is held
    /// (its adverts still accepted) for at most this long, or until `Input::ReleasePreempt`.
    /// Zero: preempt at once.
    pub preempt_sync_wait: Duration,
    pub initial_state: InitialState,
    /// The virtual addresses: in every advert, and held while master.
    pub addresses: Vec<IpAddr>,
    /// Held while master with `addresses` (and announced with them), but in no advert:
    /// keepalived's `virtual_ipaddress_excluded`. Either family.
    pub excluded: Vec<IpAddr>,
    /// Our advert source address; breaks ties between equal priorities (RFC 5798 6.4.3).
    pub primary_address: IpAddr,
    /// The instance's own interface: down means Fault, unless `dont_track_primary`.
    pub interface: String,
    /// keepalived's `dont_track_primary`: the own interface's link state is not followed (a
    /// cross-over cable between the directors goes down with the peer).
    pub dont_track_primary: bool,
    pub track_interfaces: Vec<TrackedInterface>,
    /// Answer a lower-priority advert with ours at once (keepalived's default).
    pub lower_prio_advert: bool,
    pub garp: Garp,

    // Wire settings: the state machine does not use them; [`Config::expect`] and
    // [`Config::advert`] turn them into what `packet` needs, so one struct describes an instance.
    /// VRRPv2 authentication (`auth_pass`).
    pub auth: Auth,
    /// keepalived `unicast_peer`: adverts go to these instead of the multicast group.
    pub unicast_peers: Vec<IpAddr>,
    /// keepalived `check_unicast_src`: accept unicast adverts only from `unicast_peers`.
    pub check_unicast_src: bool,
    /// Accept unicast adverts whatever their TTL / hop limit (keepalived never checks it for
    /// unicast). Off by default: RFC 5798 7.1 wants 255.
    pub relax_unicast_ttl: bool,
    /// keepalived `v3_checksum_as_v2`.
    pub v3_checksum_as_v2: bool,
}

impl Config {
    /// A configuration with keepalived's defaults: priority 100, advert 1 s, preempt, no
    /// delay, initial state BACKUP; VRRPv2 for IPv4 and VRRPv3 for IPv6.
    pub fn new(interface: &str, vrid: u8, primary_address: IpAddr) -> Config {
        Config {
            vrid,
            version: if primary_address.is_ipv4() { Version::V2 } else { Version::V3 },
            priority: 100,
            advert_int: 100,
            preempt: true,
            preempt_delay: Duration::ZERO,
            preempt_sync_wait: Duration::ZERO,
            initial_state: InitialState::Backup,
            addresses: Vec::new(),
            excluded: Vec::new(),
            primary_address,
            interface: interface.to_string(),
            dont_track_primary: false,
            track_interfaces: Vec::new(),
            lower_prio_advert: true,
            garp: Garp::default(),
            auth: Auth::None,
            unicast_peers: Vec::new(),
            check_unicast_src: false,
            relax_unicast_ttl: false,
            v3_checksum_as_v2: false,
        }
    }

    /// The address family: that of `primary_address` (the VIPs must match; the model checks).
    pub fn family(&self) -> Family {
        Family::of(&self.primary_address)
    }

    /// Whether the state of link `name` matters to this instance (its own or a tracked one).
    pub fn watches_interface(&self, name: &str) -> bool {
        self.interface == name || self.track_interfaces.iter().any(|t| t.name == name)
    }

    /// Where adverts go: the unicast peers, or the family's multicast group. (An iterator:
    /// asked at every advert.)
    pub fn destinations(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let group = self.unicast_peers.is_empty().then(|| self.family().multicast_group());
        group.into_iter().chain(self.unicast_peers.iter().copied())
    }

    /// What [`packet::decode`] must check for this instance.
    pub fn expect(&self) -> Expect {
        Expect {
            version: self.version,
            family: self.family(),
            vrid: self.vrid,
            auth: self.auth.clone(),
            advert_int: self.advert_int,
            addresses: self.addresses.clone(),
            owner: self.is_owner(),
            unicast: !self.unicast_peers.is_empty(),
            unicast_peers: if self.check_unicast_src { self.unicast_peers.clone() } else { Vec::new() },
            relax_unicast_ttl: self.relax_unicast_ttl,
            v3_checksum_as_v2: self.v3_checksum_as_v2,
        }
    }

    /// The advert for an [`Action::SendAdvert`] (encode it once per destination: the VRRPv3
    /// checksum covers the destination address).
    pub fn advert(&self, priority: u8) -> Advert {
        Advert {
            version: self.version,
            vrid: self.vrid,
            priority,
            advert_int: self.advert_int,
            auth: self.auth.clone(),
            addresses: self.addresses.clone(),
        }
    }

    pub fn is_owner(&self) -> bool {
        self.priority == 255
    }

    /// Every address held while master: the advertised ones, then the excluded ones.
    pub fn held(&self) -> Vec<IpAddr> {
        let mut all = self.addresses.clone();
        all.extend(self.excluded.iter().filter(|a| !self.addresses.contains(a)));
        all
    }
}

/// Commands a [`SyncGroup`] sends to its members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncCommand {
    /// Another member became master: follow it (only from Backup).
    Master,
    /// Another member left master for backup: follow it (only from Master).
    Backup,
    /// A member is in Fault: the whole group goes to Fault.
    Fault,
    /// No member is in Fault any more.
    Recover,
}

/// Events the state machine reacts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// RFC 5798 6.4.1: leave Initialize.
    Startup,
    /// Graceful stop: a master sends priority 0 (RFC 5798 6.4.3).
    Shutdown,
    /// An advert that passed [`super::packet::decode`].
    Advert {
        from: IpAddr,
        priority: u8,
        /// The sender's advert interval in centiseconds (VRRPv3 Max Adver Int).
        advert_int: u16,
    },
    /// The time from [`Instance::poll_timeout`] was reached.
    Timeout,
    /// Link state of an interface (the instance's own or a tracked one; others are kept in
    /// case a reload starts tracking them).
    Interface { name: String, up: bool },
    /// Result of a track function (after its rise/fall hysteresis), with its weight.
    Track { name: String, up: bool, weight: i32 },
    /// From the instance's sync group.
    Sync(SyncCommand),
    /// The connection table has caught up: a held preemption may go ahead.
    ReleasePreempt,
}

impl Input {
    /// The input for a decoded advert received from `from`.
    pub fn advert(from: IpAddr, advert: &Advert) -> Input {
        Input::Advert { from, priority: advert.priority, advert_int: advert.advert_int }
    }
}

/// Why a state changed; `as_str` names are stable (hooks and logs show them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Startup,
    /// Master_Down_Timer expired: the master went silent.
    MasterDown,
    /// Master_Down_Timer expired after the master sent priority 0.
    MasterStopped,
    /// A master heard a better advert (RFC 5798 6.4.3).
    HigherPriority {
        from: IpAddr,
        priority: u8,
    },
    InterfaceDown(String),
    TrackDown(String),
    /// Another member of the sync group is in Fault.
    SyncFault,
    /// Every fault condition cleared.
    FaultCleared,
    /// Moved with the sync group.
    Sync,
    Shutdown,
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Startup => "startup",
            Reason::MasterDown => "master_down",
            Reason::MasterStopped => "master_stopped",
            Reason::HigherPriority { .. } => "higher_priority",
            Reason::InterfaceDown(_) => "interface_down",
            Reason::TrackDown(_) => "track_down",
            Reason::SyncFault => "sync_fault",
            Reason::FaultCleared => "fault_cleared",
            Reason::Sync => "sync",
            Reason::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::HigherPriority { from, priority } => {
                write!(f, "higher_priority ({priority} from {from})")
            }
            Reason::InterfaceDown(n) => write!(f, "interface_down ({n})"),
            Reason::TrackDown(n) => write!(f, "track_down ({n})"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// Things worth a warning log that change nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// Another router claims priority 255 for a VRID whose addresses we own.
    OwnerConflict { from: IpAddr },
    /// An advert from our own primary address: a multicast loop or a duplicate address.
    OwnAddress { from: IpAddr },
}

/// What the caller must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    SendAdvert {
        priority: u8,
    },
    AddVips(Vec<IpAddr>),
    RemoveVips(Vec<IpAddr>),
    /// Gratuitous ARP (IPv4) or unsolicited NA (IPv6): `count` per address, `interval` apart.
    SendGratuitous {
        addresses: Vec<IpAddr>,
        count: u32,
        interval: Duration,
    },
    StateChanged {
        from: State,
        to: State,
        reason: Reason,
    },
    PriorityChanged {
        from: u8,
        to: u8,
    },
    /// A preemption of `master` is held for at most `bound` (sync-aware preemption): the
    /// caller watches the connection table and sends `Input::ReleasePreempt`.
    PreemptHeld {
        master: IpAddr,
        priority: u8,
        bound: Duration,
    },
    Warn(Warning),
}

/// A configuration update that cannot be applied in place.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "VRID or VRRP version changed ({old_vrid}/v{old_version} -> {new_vrid}/v{new_version}): this is a new instance, stop the old one and start a new one"
    )]
    Identity { old_vrid: u8, old_version: u8, new_vrid: u8, new_version: u8 },
}

/// One VRRP instance.
#[derive(Clone, Debug)]
pub struct Instance {
    cfg: Config,
    state: State,
    /// Priority after weights (RFC "Priority" as sent).
    effective: u8,
    /// RFC 5798 Master_Adver_Interval in centiseconds (VRRPv2: always ours).
    master_adver_int: u16,
    adver_timer: Option<Instant>,
    down_timer: Option<Instant>,
    /// Until then a lower-priority master is still accepted (keepalived preempt_delay).
    preempt_until: Option<Instant>,
    /// A preemption held for the connection table: until then at the latest.
    hold_until: Option<Instant>,
    /// The hold was released early (the table caught up).
    hold_released: bool,
    garp_delay_at: Option<Instant>,
    garp_refresh_at: Option<Instant>,
    garp_lower_prio_at: Option<Instant>,
    /// The down timer was last set by a priority-0 advert.
    master_stopped: bool,
    /// The master as last heard in Backup: address and priority.
    master: Option<(IpAddr, u8)>,
    down_interfaces: BTreeSet<String>,
    /// Track function name -> (up, weight).
    tracks: BTreeMap<String, (bool, i32)>,
    sync_fault: bool,
}

/// Centiseconds to a Duration.
fn cs(n: u16) -> Duration {
    Duration::from_millis(u64::from(n) * 10)
}

/// A period from the configuration; zero means "off" so that no timer can fire in a loop.
fn period(d: Option<Duration>) -> Option<Duration> {
    d.filter(|d| !d.is_zero())
}

impl Instance {
    pub fn new(cfg: Config) -> Instance {
        let mut i = Instance {
            master_adver_int: cfg.advert_int,
            cfg,
            state: State::Initialize,
            effective: 0,
            adver_timer: None,
            down_timer: None,
            preempt_until: None,
            hold_until: None,
            hold_released: false,
            garp_delay_at: None,
            garp_refresh_at: None,
            garp_lower_prio_at: None,
            master_stopped: false,
            master: None,
            down_interfaces: BTreeSet::new(),
            tracks: BTreeMap::new(),
            sync_fault: false,
        };
        i.effective = i.compute_priority();
        i
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The priority sent in adverts: configured priority plus weights.
    pub fn effective_priority(&self) -> u8 {
        self.effective
    }

    /// The master as last heard while Backup (address, priority).
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    /// RFC 5798 Master_Adver_Interval: learnt from the master in VRRPv3, ours in VRRPv2.
    pub fn master_adver_interval(&self) -> Duration {
        cs(self.master_adver_int.max(1))
    }

    /// Our Advertisement_Interval (at least 1 cs, whatever the configuration says).
    fn advert_interval(&self) -> Duration {
        cs(self.cfg.advert_int.max(1))
    }

    /// RFC 3768: Skew_Time = (256 - Priority) / 256 seconds.
    /// RFC 5798: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
    /// Computed in microseconds like keepalived, with the effective priority.
    pub fn skew_time(&self) -> Duration {
        let p = 256 - u64::from(self.effective);
        match self.cfg.version {
            Version::V2 => Duration::from_micros(p * 1_000_000 / 256),
            // centiseconds * 10_000 us / 256 == centiseconds * 625 / 16 us
            Version::V3 => Duration::from_micros(p * u64::from(self.master_adver_int) * 625 / 16),
        }
    }

    /// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time (RFC 3768 / 5798 6.1).
    pub fn master_down_interval(&self) -> Duration {
        3 * self.master_adver_interval() + self.skew_time()
    }

    /// A fault of this instance itself (interface or track), not counting its sync group.
    pub fn own_fault(&self) -> bool {
        self.own_fault_reason().is_some()
    }

    /// When `handle(now, Input::Timeout)` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.adver_timer, self.down_timer, self.garp_delay_at, self.garp_refresh_at, self.garp_lower_prio_at].into_iter().flatten().min()
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Startup => self.startup(now, &mut out),
            Input::Shutdown => self.shutdown(&mut out),
            Input::Advert { from, priority, advert_int } => self.advert(now, from, priority, advert_int, &mut out),
            Input::Timeout => self.timeout(now, &mut out),
            Input::Interface { name, up } => {
                if up {
                    self.down_interfaces.remove(&name);
                } else {
                    self.down_interfaces.insert(name);
                }
                self.reevaluate(now, &mut out);
            }
            Input::Track { name, up, weight } => {
                self.tracks.insert(name, (up, weight));
                self.reevaluate(now, &mut out);
            }
            Input::Sync(cmd) => self.sync(now, cmd, &mut out),
            Input::ReleasePreempt => {
                if self.hold_until.is_some() {
                    self.hold_released = true;
                }
            }
        }
        out
    }

    /// Applies a new configuration without leaving the current state (policy reload): VIPs
    /// that were added or removed are applied at once when master; priority and fault
    /// changes take effect like any tracked change.
    pub fn update_config(&mut self, now: Instant, cfg: Config) -> Result<Vec<Action>, ConfigError> {
        if cfg.vrid != self.cfg.vrid || cfg.version != self.cfg.version {
            return Err(ConfigError::Identity {
                old_vrid: self.cfg.vrid,
                old_version: self.cfg.version.number(),
                new_vrid: cfg.vrid,
                new_version: cfg.version.number(),
            });
        }
        let mut out = Vec::new();
        if self.state == State::Master {
            let (old, new) = (self.cfg.held(), cfg.held());
            let removed: Vec<IpAddr> = old.iter().filter(|a| !new.contains(a)).copied().collect();
            let added: Vec<IpAddr> = new.iter().filter(|a| !old.contains(a)).copied().collect();
            if !removed.is_empty() {
                out.push(Action::RemoveVips(removed));
            }
            if !added.is_empty() {
                out.push(Action::AddVips(added.clone()));
                if cfg.garp.master_repeat > 0 {
                    out.push(Action::SendGratuitous { addresses: added, count: cfg.garp.master_repeat, interval: cfg.garp.interval });
                }
            }
            if cfg.garp.master_refresh != self.cfg.garp.master_refresh {
                self.garp_refresh_at = period(cfg.garp.master_refresh).map(|r| now + r);
            }
        }
        if self.cfg.version == Version::V2 || self.state != State::Backup {
            // VRRPv2 checks that every router uses the same interval; v3 keeps what it learnt.
            self.master_adver_int = cfg.advert_int;
        }
        if cfg.preempt_delay.is_zero() {
            self.preempt_until = None;
        }
        self.cfg = cfg;
        self.reevaluate(now, &mut out);
        Ok(out)
    }

    // --- transitions ---

    fn set_state(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        out.push(Action::StateChanged { from, to, reason });
    }

    fn clear_timers(&mut self) {
        self.adver_timer = None;
        self.down_timer = None;
        self.preempt_until = None;
        self.hold_until = None;
        self.hold_released = false;
        self.garp_delay_at = None;
        self.garp_refresh_at = None;
        self.garp_lower_prio_at = None;
        self.master_stopped = false;
    }

    /// RFC 5798 6.4.1 / 6.4.2 entering Master: "Send an ADVERTISEMENT; ... broadcast a
    /// gratuitous ARP request / Unsolicited Neighbor Advertisement ...; Set the Adver_Timer to
    /// Advertisement_Interval; Transition to the Master state".
    fn become_master(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        self.clear_timers();
        self.master = None;
        out.push(Action::SendAdvert { priority: self.effective });
        out.push(Action::AddVips(self.cfg.held()));
        let g = &self.cfg.garp;
        if g.master_repeat > 0 {
            out.push(Action::SendGratuitous { addresses: self.cfg.held(), count: g.master_repeat, interval: g.interval });
        }
        if !g.master_delay.is_zero() && g.master_repeat > 0 {
            self.garp_delay_at = Some(now + g.master_delay);
        }
        self.garp_refresh_at = period(g.master_refresh).map(|r| now + r);
        self.adver_timer = Some(now + self.advert_interval());
        self.set_state(State::Master, reason, out);
    }

    /// Backup with Master_Down_Timer = Master_Down_Interval (RFC 5798 6.4.1 "else" branch).
    fn become_backup(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        let was_master = self.state == State::Master;
        self.clear_timers();
        if was_master {
            out.push(Action::RemoveVips(self.cfg.held()));
        }
        self.down_timer = Some(now + self.master_down_interval());
        self.set_state(State::Backup, reason, out);
    }

    fn become_fault(&mut self, reason: Reason, out: &mut Vec<Action>) {
        if self.state == State::Master {
            // keepalived: a master going to Fault tells the backup with priority 0.
            out.push(Action::SendAdvert { priority: 0 });
            out.push(Action::RemoveVips(self.cfg.held()));
        }
        self.clear_timers();
        self.master = None;
        self.set_state(State::Fault, reason, out);
    }

    fn startup(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        self.master_adver_int = self.cfg.advert_int;
        if let Some(reason) = self.fault_reason() {
            self.become_fault(reason, out);
        } else if self.cfg.is_owner() && self.cfg.initial_state == InitialState::Master {
            // RFC 5798 6.4.1: "If the Priority = 255 ... Transition to the Master state".
            self.become_master(now, Reason::Startup, out);
        } else {
            // RFC 5798 6.4.1: "Set Master_Adver_Interval to Advertisement_Interval; Set the
            // Master_Down_Timer to Master_Down_Interval; Transition to the Backup state".
            self.become_backup(now, Reason::Startup, out);
        }
    }

    fn shutdown(&mut self, out: &mut Vec<Action>) {
        match self.state {
            State::Initialize => return,
            // RFC 5798 6.4.3: "Cancel the Adver_Timer; Send an ADVERTISEMENT with Priority =
            // 0; Transition to the Initialize state".
            State::Master => {
                out.push(Action::SendAdvert { priority: 0 });
                out.push(Action::RemoveVips(self.cfg.held()));
            }
            // RFC 5798 6.4.2: "Cancel the Master_Down_Timer; Transition to the Initialize state".
            State::Backup | State::Fault => {}
        }
        self.clear_timers();
        self.master = None;
        self.set_state(State::Initialize, Reason::Shutdown, out);
    }

    fn timeout(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::Backup => {
                // RFC 5798 6.4.2: "If the Master_Down_Timer fires, then: Send an ADVERTISEMENT;
                // broadcast gratuitous ARP ...; Set the Adver_Timer; Transition to Master".
                if self.down_timer.is_some_and(|t| t <= now) {
                    let reason = if self.master_stopped { Reason::MasterStopped } else { Reason::MasterDown };
                    self.become_master(now, reason, out);
                }
            }
            State::Master => {
                // RFC 5798 6.4.3: "If the Adver_Timer fires, then: Send an ADVERTISEMENT;
                // Reset the Adver_Timer to Advertisement_Interval".
                if let Some(t) = self.adver_timer.filter(|t| *t <= now) {
                    out.push(Action::SendAdvert { priority: self.effective });
                    // Keep the cadence; after a late wake-up start again from now.
                    let next = t + self.advert_interval();
                    self.adver_timer = Some(if next > now { next } else { now + self.advert_interval() });
                }
                if self.garp_delay_at.is_some_and(|t| t <= now) {
                    self.garp_delay_at = None;
                    out.push(self.garp(self.cfg.garp.master_repeat));
                }
                if let (Some(t), Some(every)) = (self.garp_refresh_at, period(self.cfg.garp.master_refresh))
                    && t <= now
                {
                    self.garp_refresh_at = Some(now + every);
                    out.push(self.garp(self.cfg.garp.master_refresh_repeat));
                }
                if self.garp_lower_prio_at.is_some_and(|t| t <= now) {
                    self.garp_lower_prio_at = None;
                    out.push(self.garp(self.cfg.garp.lower_prio_repeat));
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    fn garp(&self, count: u32) -> Action {
        Action::SendGratuitous { addresses: self.cfg.held(), count, interval: self.cfg.garp.interval }
    }

    fn advert(&mut self, now: Instant, from: IpAddr, priority: u8, advert_int: u16, out: &mut Vec<Action>) {
        if self.cfg.is_owner() {
            // RFC 5798 7.1: the address owner does not process adverts for its VRID.
            if priority == 255 {
                out.push(Action::Warn(Warning::OwnerConflict { from }));
            }
            return;
        }
        if from == self.cfg.primary_address && self.state != State::Initialize {
            // Our own advert looped back, or another router with our address: neither may
            // move us (keepalived only warns about the equal-priority case).
            out.push(Action::Warn(Warning::OwnAddress { from }));
            return;
        }
        match self.state {
            State::Backup => self.advert_in_backup(now, from, priority, advert_int, out),
            State::Master => self.advert_in_master(now, from, priority, advert_int, out),
            State::Initialize | State::Fault => {}
        }
    }

    /// RFC 5798 6.4.2 "If an ADVERTISEMENT is received", with keepalived's preempt_delay.
    fn advert_in_backup(&mut self, now: Instant, from: IpAddr, priority: u8, advert_int: u16, out: &mut Vec<Action>) {
        if priority == 0 {
            // "If the Priority in the ADVERTISEMENT is zero, then: Set the Master_Down_Timer
            // to Skew_Time".
            self.down_timer = Some(now + self.skew_time());
            self.master_stopped = true;
            return;
        }
        let delaying = !self.cfg.preempt_delay.is_zero() && self.preempt_until.is_none_or(|t| t > now);
        let held = self.cfg.preempt && priority < self.effective && !delaying && self.hold(now, from, priority, out);
        // "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT is greater than
        // or equal to the local Priority, then: Set Master_Adver_Interval to Adver Interval
        // contained in the ADVERTISEMENT; Recompute the Master_Down_Interval; Reset the
        // Master_Down_Timer to Master_Down_Interval. else: Discard the ADVERTISEMENT."
        if !self.cfg.preempt || priority >= self.effective || delaying || held {
            if priority >= self.effective {
                // No preemption pending: a later one is held afresh.
                self.hold_until = None;
                self.hold_released = false;
            }
            if self.cfg.version == Version::V3 && advert_int > 0 {
                self.master_adver_int = advert_int.min(packet::V3_MAX_INTERVAL);
            }
            self.down_timer = Some(now + self.master_down_interval());
            self.master_stopped = false;
            self.master = Some((from, priority));
            if !self.cfg.preempt_delay.is_zero() {
                if priority >= self.effective {
                    self.preempt_until = None;
                } else if self.preempt_until.is_none() {
                    self.preempt_until = Some(now + self.cfg.preempt_delay);
                }
            }
        }
    }

    /// Sync-aware preemption: true while a preemption of `from` is to be held. The first
    /// such advert starts the hold (at most `preempt_sync_wait`); a release or the bound ends it.
    fn hold(&mut self, now: Instant, from: IpAddr, priority: u8, out: &mut Vec<Action>) -> bool {
        let bound = self.cfg.preempt_sync_wait;
        if bound.is_zero() || self.hold_released {
            return false;
        }
        match self.hold_until {
            None => {
                self.hold_until = Some(now + bound);
                out.push(Action::PreemptHeld { master: from, priority, bound });
                true
            }
            Some(t) => t > now,
        }
    }

    /// Whether a preemption is being held now (for status).
    pub fn preempt_held(&self, now: Instant) -> bool {
        !self.hold_released && self.hold_until.is_some_and(|t| t > now)
    }

    /// RFC 5798 6.4.3 "If an ADVERTISEMENT is received".
    fn advert_in_master(&mut self, now: Instant, from: IpAddr, priority: u8, advert_int: u16, out: &mut Vec<Action>) {
        let ours = self.cfg.primary_address;
        if priority == 0 {
            // "If the Priority in the ADVERTISEMENT is zero, then: Send an ADVERTISEMENT;
            // Reset the Adver_Timer to Advertisement_Interval".
            out.push(Action::SendAdvert { priority: self.effective });
            self.adver_timer = Some(now + self.advert_interval());
        } else if priority > self.effective || (priority == self.effective && from > ours) {
            // "If the Priority in the ADVERTISEMENT is greater than the local Priority or the
            // Priority in the ADVERTISEMENT is equal to the local Priority and the primary IPvX
            // Address of the sender is greater than the local primary IPvX Address, then:
            // Cancel Adver_Timer; Set Master_Adver_Interval to Adver Interval contained in the
            // ADVERTISEMENT; Recompute the Skew_Time; Recompute the Master_Down_Interval; Set
            // Master_Down_Timer to Master_Down_Interval; Transition to the Backup state".
            if self.cfg.version == Version::V3 && advert_int > 0 {
                self.master_adver_int = advert_int.min(packet::V3_MAX_INTERVAL);
            }
            self.become_backup(now, Reason::HigherPriority { from, priority }, out);
            self.master = Some((from, priority));
        } else {
            // "else: Discard the ADVERTISEMENT". keepalived also re-advertises at once so a
            // lower-priority router that thinks it is master hears us now, and re-announces
            // the addresses in case that router took them.
            if self.cfg.lower_prio_advert {
                out.push(Action::SendAdvert { priority: self.effective });
            }
            let g = &self.cfg.garp;
            if g.lower_prio_repeat > 0 {
                out.push(self.garp(g.lower_prio_repeat));
                if !g.lower_prio_delay.is_zero() {
                    self.garp_lower_prio_at = Some(now + g.lower_prio_delay);
                }
            }
        }
    }

    fn sync(&mut self, now: Instant, cmd: SyncCommand, out: &mut Vec<Action>) {
        match cmd {
            SyncCommand::Master => {
                if self.state == State::Backup {
                    self.become_master(now, Reason::Sync, out);
                }
            }
            SyncCommand::Backup => {
                if self.state == State::Master {
                    self.master_adver_int = self.cfg.advert_int;
                    self.become_backup(now, Reason::Sync, out);
                }
            }
            SyncCommand::Fault => {
                self.sync_fault = true;
                self.reevaluate(now, out);
            }
            SyncCommand::Recover => {
                self.sync_fault = false;
                self.reevaluate(now, out);
            }
        }
    }

    // --- priority and fault from tracked objects ---

    /// keepalived: each weighted object adds its weight while up (positive weight) or while
    /// down (negative weight); the result stays in 1..=254. An owner keeps 255.
    fn compute_priority(&self) -> u8 {
        if self.cfg.is_owner() {
            return 255;
        }
        let mut p = i64::from(self.cfg.priority);
        let mut add = |up: bool, w: i32| {
            if (w > 0 && up) || (w < 0 && !up) {
                p += i64::from(w);
            }
        };
        for t in self.cfg.track_interfaces.iter().filter(|t| t.weight != 0) {
            let (up, w) = t.as_plain(!self.down_interfaces.contains(&t.name));
            add(up, w);
        }
        for (up, w) in self.tracks.values() {
            add(*up, *w);
        }
        p.clamp(1, 254) as u8
    }

    fn own_fault_reason(&self) -> Option<Reason> {
        if !self.cfg.dont_track_primary && self.down_interfaces.contains(&self.cfg.interface) {
            return Some(Reason::InterfaceDown(self.cfg.interface.clone()));
        }
        let owner = self.cfg.is_owner();
        for t in &self.cfg.track_interfaces {
            let (up, w) = t.as_plain(!self.down_interfaces.contains(&t.name));
            if (w == 0 || owner) && !up {
                return Some(Reason::InterfaceDown(t.name.clone()));
            }
        }
        for (name, (up, w)) in &self.tracks {
            if !up && (*w == 0 || owner) {
                return Some(Reason::TrackDown(name.clone()));
            }
        }
        None
    }

    fn fault_reason(&self) -> Option<Reason> {
        self.own_fault_reason().or(if self.sync_fault { Some(Reason::SyncFault) } else { None })
    }

    /// After anything that may change priority or fault: apply it.
    fn reevaluate(&mut self, now: Instant, out: &mut Vec<Action>) {
        let p = self.compute_priority();
        if p != self.effective {
            out.push(Action::PriorityChanged { from: self.effective, to: p });
            self.effective = p;
        }
        match (self.state, self.fault_reason()) {
            (State::Backup | State::Master, Some(reason)) => self.become_fault(reason, out),
            (State::Fault, None) => {
                // keepalived leave_fault: back to Backup with Master_Adver_Interval reset; an
                // owner configured MASTER waits only one interval plus skew.
                self.master_adver_int = self.cfg.advert_int;
                self.become_backup(now, Reason::FaultCleared, out);
                if self.cfg.is_owner() && self.cfg.initial_state == InitialState::Master {
                    self.down_timer = Some(now + self.master_adver_interval() + self.skew_time());
                }
            }
            _ => {}
        }
    }
}

/// Keeps the members of a sync group together (keepalived `vrrp_sync_group`): when one
/// becomes master the others follow, when one drops to backup the others follow, and while
/// any member has a fault of its own every member is in Fault.
///
/// The director calls [`SyncGroup::update`] after every `handle` of a member with that
/// member's state and [`Instance::own_fault`], and delivers the returned commands as
/// `Input::Sync` to the members named.
#[derive(Clone, Debug)]
pub struct SyncGroup {
    states: Vec<State>,
    own_fault: Vec<bool>,
    /// The state the group moves towards (Backup or Master) outside of a fault.
    group: State,
    in_fault: bool,
}

impl SyncGroup {
    pub fn new(members: usize) -> SyncGroup {
        SyncGroup { states: vec![State::Initialize; members], own_fault: vec![false; members], group: State::Backup, in_fault: false }
    }

    pub fn in_fault(&self) -> bool {
        self.in_fault
    }

    pub fn update(&mut self, member: usize, state: State, own_fault: bool) -> Vec<(usize, SyncCommand)> {
        let prev = self.states[member];
        self.states[member] = state;
        self.own_fault[member] = own_fault;
        let n = self.states.len();
        let any_fault = self.own_fault.iter().any(|f| *f);
        if any_fault != self.in_fault {
            self.in_fault = any_fault;
            // Every member, the faulty ones too: a member whose own fault clears must stay in
            // Fault while another member is still faulty.
            let cmd = if any_fault { SyncCommand::Fault } else { SyncCommand::Recover };
            if !any_fault {
                self.group = State::Backup;
            }
            return (0..n).map(|j| (j, cmd)).collect();
        }
        if self.in_fault || state == prev || state == self.group {
            return Vec::new();
        }
        let follow = match (prev, state) {
            (_, State::Master) => SyncCommand::Master,
            (State::Master, State::Backup) => SyncCommand::Backup,
            _ => return Vec::new(),
        };
        self.group = state;
        let from = if state == State::Master { State::Backup } else { State::Master };
        (0..n).filter(|j| *j != member && self.states[*j] == from).map(|j| (j, follow)).collect()
    }
}
