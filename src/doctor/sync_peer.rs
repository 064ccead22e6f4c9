//! `lvsd doctor`: the peer's side of connection sync, heard on the wire. For a bounded time
//! (at most `MAX_LISTEN`, less when a message arrives) doctor listens on the policy's sync
//! interface for the messages other directors' master daemons send to the sync group, parses
//! them with the kernel's rules (`director::sync::message`) and compares their sync id with
//! the policy's: a backup daemon with a non-zero id drops every message of another id
//! (ip_vs_sync.c, `ip_vs_process_message`: "BACKUP, Ignoring syncid").
//!
//! The kernel's backup daemon binds its socket to the group and port with address reuse
//! (`sk_reuse = SK_CAN_REUSE`, "equivalent to the REUSEADDR option in user-space"), so a UDP
//! socket with SO_REUSEADDR bound to the same group and port gets a copy of each datagram,
//! beside the running daemon. The master daemon's socket does not loop its own messages back
//! (IP_MULTICAST_LOOP off), so what arrives comes from another host.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

use super::Finding;
use crate::director::sync::message::{self, SyncMessage, SyncMessageError};
use crate::director::sync::scale_out;
use crate::ipvs::wire::{DaemonState, SyncDaemon};
use crate::model::Model;
use std::collections::BTreeMap;

const CHECK: &str = "sync";
/// The kernel's defaults (IP_VS_SYNC_GROUP, IP_VS_SYNC_PORT).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
pub const DEFAULT_PORT: u16 = 8848;
/// The longest doctor listens: a master sends within 2 s of a connection change
/// (IPVS_SYNC_FLUSH_TIME), so a busy peer is heard well inside it.
pub const MAX_LISTEN: Duration = Duration::from_secs(3);
/// Upper bound on datagrams read, whatever arrives.
const MAX_DATAGRAMS: usize = 64;

/// This node's part: the state of the sync daemon's VRRP instance in the running lvsd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Master,
    /// Any other state.
    Backup,
    /// No lvsd answered, or the policy names no instance.
    Unknown,
}

/// One datagram that arrived on the sync group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub from: SocketAddr,
    /// Sent from one of this host's addresses (not the peer).
    pub ours: bool,
    pub message: Result<SyncMessage, SyncMessageError>,
}

/// What listening gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listened {
    pub group: SocketAddr,
    pub window: Duration,
    /// Err: the socket could not be opened or joined.
    pub heard: Result<Vec<Heard>, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub role: Role,
    /// Every director forwards (scale-out, or no `instance`): each one's master daemon sends
    /// to this node whatever its role.
    pub all_send: bool,
    /// None: not listened, as this node is the master of a pair.
    pub listened: Option<Listened>,
}

/// This node's role (pure): from the running lvsd's VRRP states ("VI_1" -> "master"); when
/// no lvsd answers, from the daemons: a master daemon of ours without a backup daemon is a
/// master (keepalived's layout, or `lvsd run --once` on a node that starts as master), a
/// backup daemon alone a backup. lvsd itself runs both on every node.
pub fn role(vrrp_states: &BTreeMap<String, String>, daemons: &Result<Vec<SyncDaemon>, String>, sd: &crate::model::SyncDaemon) -> Role {
    match sd.instance.as_ref().and_then(|i| vrrp_states.get(i)).map(String::as_str) {
        Some("master") => return Role::Master,
        Some(_) => return Role::Backup,
        None => {}
    }
    let ours = |s: DaemonState| {
        daemons.as_ref().is_ok_and(|ds| ds.iter().any(|d| d.state == s && d.interface == sd.interface && d.sync_id == u32::from(sd.id)))
    };
    match (ours(DaemonState::Master), ours(DaemonState::Backup)) {
        (true, false) => Role::Master,
        (false, true) => Role::Backup,
        _ => Role::Unknown,
    }
}

/// The group and port the policy's daemons use.
pub fn group(sd: &crate::model::SyncDaemon) -> SocketAddr {
    SocketAddr::new(sd.group.unwrap_or(IpAddr::V4(DEFAULT_GROUP)), sd.port.unwrap_or(DEFAULT_PORT))
}

/// Whether to listen (pure): not on the master of a pair, whose peer forwards nothing and so
/// sends nothing.
pub fn should_listen(role: Role, all_send: bool) -> bool {
    all_send || role != Role::Master
}

/// Listen for up to `window` (capped at `MAX_LISTEN`; zero: not at all) when it is worth it.
pub fn gather(
    m: &Model,
    vrrp_states: &BTreeMap<String, String>,
    daemons: &Result<Vec<SyncDaemon>, String>,
    window: Duration,
) -> Option<Facts> {
    let sd = m.sync_daemon.as_ref()?;
    if window.is_zero() {
        return None;
    }
    let role = role(vrrp_states, daemons, sd);
    let all_send = scale_out(m) || sd.instance.is_none();
    let mut f = Facts { role, all_send, listened: None };
    if should_listen(role, all_send) {
        let group = group(sd);
        let window = window.min(MAX_LISTEN);
        let own: Vec<IpAddr> = crate::net::addr::list_all_addresses().unwrap_or_default().into_iter().map(|a| a.addr).collect();
        let heard = listen(&sd.interface, group, window, &own);
        f.listened = Some(Listened { group, window, heard });
    }
    Some(f)
}

/// Open a socket beside the kernel's backup daemon: SO_REUSEADDR, bound to the group and
/// port, joined to the group on `ifname`.
pub fn open(ifname: &str, group: SocketAddr) -> Result<UdpSocket, String> {
    let ifindex = crate::net::link::ifindex(ifname).map_err(|e| e.to_string())?;
    let domain = if group.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(|e| format!("socket: {e}"))?;
    s.set_reuse_address(true).map_err(|e| format!("SO_REUSEADDR: {e}"))?;
    // Only this interface's datagrams (as the kernel's socket, bound to the device). Needs
    // CAP_NET_RAW on older kernels; the group membership below limits it too.
    let _ = s.bind_device(Some(ifname.as_bytes()));
    match group.ip() {
        IpAddr::V4(g) => {
            s.set_multicast_all_v4(false).map_err(|e| format!("IP_MULTICAST_ALL: {e}"))?;
            s.bind(&group.into()).map_err(|e| format!("bind {group}: {e}"))?;
            s.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(ifindex)).map_err(|e| format!("join {g} on {ifname}: {e}"))?;
        }
        IpAddr::V6(g) => {
            s.set_only_v6(true).map_err(|e| format!("IPV6_V6ONLY: {e}"))?;
            s.set_multicast_all_v6(false).map_err(|e| format!("IPV6_MULTICAST_ALL: {e}"))?;
            let at = std::net::SocketAddrV6::new(g, group.port(), 0, ifindex);
            s.bind(&SocketAddr::V6(at).into()).map_err(|e| format!("bind {group}: {e}"))?;
            s.join_multicast_v6(&g, ifindex).map_err(|e| format!("join {g} on {ifname}: {e}"))?;
        }
    }
    Ok(s.into())
}

/// Read datagrams until one from another host parses as a sync message, `window` passes or
/// `MAX_DATAGRAMS` were read.
pub fn listen(ifname: &str, group: SocketAddr, window: Duration, own: &[IpAddr]) -> Result<Vec<Heard>, String> {
    let sock = open(ifname, group)?;
    receive(&sock, window, own)
}

/// The read loop of `listen`, on a socket already open.
pub fn receive(sock: &UdpSocket, window: Duration, own: &[IpAddr]) -> Result<Vec<Heard>, String> {
    let deadline = Instant::now() + window;
    // A sync message fits one datagram of the link's MTU; 64 KiB holds any UDP datagram.
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::new();
    while out.len() < MAX_DATAGRAMS {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        sock.set_read_timeout(Some(left)).map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                let ours = own.contains(&from.ip());
                let h = Heard { from, ours, message: message::parse(&buf[..n]) };
                let done = !ours && h.message.is_ok();
                out.push(h);
                if done {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
    Ok(out)
}

/// The findings, from plain values.
pub fn check(m: &Model, f: &Facts) -> Vec<Finding> {
    let Some(sd) = &m.sync_daemon else { return Vec::new() };
    let at = &sd.origin;
    let Some(l) = &f.listened else {
        return vec![Finding::info(
            CHECK,
            "the peer's sync messages not listened for: this node is the pair's master, and the backup forwards no connection, so it sends nothing (run lvsd doctor on the backup)",
        )];
    };
    let heard = match &l.heard {
        Err(e) => {
            return vec![Finding::warn(
                CHECK,
                format!("cannot listen for sync messages on {} ({}): {e}", sd.interface, l.group),
                "run lvsd doctor as root on the director, on the host (namespace) where lvsd runs",
            )];
        }
        Ok(h) => h,
    };
    let mut out = Vec::new();
    let mut reported: Vec<IpAddr> = Vec::new();
    for h in heard.iter().filter(|h| !h.ours) {
        if reported.contains(&h.from.ip()) {
            continue;
        }
        reported.push(h.from.ip());
        let from = h.from.ip();
        match &h.message {
            Err(e) => out.push(Finding::warn(
                CHECK,
                format!("a datagram from {from} to {} is not a sync message the kernel accepts: {e}", l.group),
                format!("another program sends to {}; give the sync daemons a port or group of their own (lvsd.sync_daemon port/group, {at})", l.group),
            )),
            Ok(msg) if msg.sync_id == sd.id => out.push(Finding::pass(
                CHECK,
                format!("sync messages from {from} with syncid {} (ours): {} connection entries in the first", msg.sync_id, msg.conns.len()),
            )),
            Ok(msg) if sd.id == 0 => out.push(Finding::fail(
                CHECK,
                format!(
                    "sync messages from {from} with syncid {}, ours is 0 ({at}): this node's backup daemon takes them (id 0 takes any), but the peer's backup daemon drops this node's messages (id 0 is not {})",
                    msg.sync_id, msg.sync_id
                ),
                format!("set the same id in lvsd.sync_daemon on every director ({at}: id = {})", msg.sync_id),
            )),
            Ok(msg) => out.push(Finding::fail(
                CHECK,
                format!(
                    "sync messages from {from} with syncid {}, ours is {} ({at}): the kernel's backup daemon here drops them, so a failover to this node resets that director's connections",
                    msg.sync_id, sd.id
                ),
                format!("set the same id in lvsd.sync_daemon on every director ({at}: id = {})", sd.id),
            )),
        }
    }
    if reported.is_empty() {
        let who = match (f.all_send, f.role) {
            (true, _) => "every director forwards here (scale-out, or no instance named)",
            (false, Role::Backup) => "this node is backup",
            (false, _) => "this node's role is unknown (no lvsd answered on the control socket, and the daemons do not tell)",
        };
        out.push(Finding::warn(
            CHECK,
            format!(
                "no sync message from another director on {} ({}) in {:.1} s while {who}: the peer is not master or runs no master sync daemon; or it has no connections changing (a master sends only on changes); or a firewall drops UDP to port {} (here on input, there on output)",
                sd.interface,
                l.group,
                l.window.as_secs_f64(),
                l.group.port()
            ),
            format!(
                "on the peer: ipvsadm -L --daemon lists the master sync daemon with syncid {}, ipvsadm -L -n -c lists connections; allow udp to {} on {} both ways; run lvsd doctor again while traffic flows",
                sd.id, l.group, sd.interface
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::director::sync::message::SyncVersion;
    use crate::doctor::Level;

    fn model(extra: &str) -> Model {
        let src = format!(
            r#"lvsd.vrrp "VI_1" {{ interface = "eth0", vrid = 51, vips = {{ "203.0.113.10" }} }}
lvsd.service "web" {{ vip = "203.0.113.10:80", reals = {{ "198.51.100.1:80" }} }}
{extra}"#
        );
        crate::policy::test_model(&src, "n")
    }

    const PAIR: &str = r#"lvsd.sync_daemon { interface = "eth0", id = 7, instance = "VI_1" }"#;

    fn msg(sync_id: u8) -> Result<SyncMessage, SyncMessageError> {
        Ok(SyncMessage { version: SyncVersion::V1, sync_id, conns: Vec::new() })
    }

    fn heard(from: &str, ours: bool, message: Result<SyncMessage, SyncMessageError>) -> Heard {
        Heard { from: from.parse().unwrap(), ours, message }
    }

    fn facts(role: Role, all_send: bool, heard: Result<Vec<Heard>, String>) -> Facts {
        let group = SocketAddr::new(IpAddr::V4(DEFAULT_GROUP), DEFAULT_PORT);
        Facts { role, all_send, listened: Some(Listened { group, window: MAX_LISTEN, heard }) }
    }

    fn one(f: Vec<Finding>) -> Finding {
        assert_eq!(f.len(), 1, "{f:?}");
        f.into_iter().next().unwrap()
    }

    #[test]
    fn the_role_comes_from_the_instance_state() {
        let m = model(PAIR);
        let sd = m.sync_daemon.as_ref().unwrap();
        let states = |i: &str, s: &str| BTreeMap::from([(i.to_string(), s.to_string())]);
        let d = |s| SyncDaemon::new(s, "eth0", 7);
        let both = Ok(vec![d(DaemonState::Master), d(DaemonState::Backup)]);
        // The instance's state decides when lvsd answers (every lvsd node runs both daemons).
        assert_eq!(role(&states("VI_1", "master"), &both, sd), Role::Master);
        assert_eq!(role(&states("VI_1", "backup"), &both, sd), Role::Backup);
        assert_eq!(role(&states("VI_1", "fault"), &both, sd), Role::Backup);
        assert_eq!(role(&BTreeMap::new(), &both, sd), Role::Unknown);
        // Another instance's mastership does not make this node the pair's master.
        assert_eq!(role(&states("VI_2", "master"), &both, sd), Role::Unknown);
        // No lvsd: one daemon of ours tells.
        assert_eq!(role(&BTreeMap::new(), &Ok(vec![d(DaemonState::Master)]), sd), Role::Master);
        assert_eq!(role(&BTreeMap::new(), &Ok(vec![d(DaemonState::Backup)]), sd), Role::Backup);
        assert_eq!(role(&BTreeMap::new(), &Ok(vec![SyncDaemon::new(DaemonState::Master, "eth1", 9)]), sd), Role::Unknown);
        assert_eq!(role(&BTreeMap::new(), &Err("no IPVS".into()), sd), Role::Unknown);
        assert_eq!(group(sd), "224.0.0.81:8848".parse().unwrap());
        let m = model(r#"lvsd.sync_daemon { interface = "eth0", group = "239.1.2.3", port = 9000 }"#);
        assert_eq!(group(m.sync_daemon.as_ref().unwrap()), "239.1.2.3:9000".parse().unwrap());
    }

    #[test]
    fn the_master_of_a_pair_does_not_listen_others_do() {
        assert!(!should_listen(Role::Master, false));
        assert!(should_listen(Role::Backup, false));
        assert!(should_listen(Role::Unknown, false));
        assert!(should_listen(Role::Master, true));
        let f = one(check(&model(PAIR), &Facts { role: Role::Master, all_send: false, listened: None }));
        assert_eq!(f.level, Level::Info);
        assert!(f.message.contains("the backup forwards no connection"), "{}", f.message);
    }

    #[test]
    fn our_sync_id_passes() {
        let f = one(check(&model(PAIR), &facts(Role::Backup, false, Ok(vec![heard("192.0.2.2:8848", false, msg(7))]))));
        assert_eq!(f.level, Level::Pass);
        assert!(f.message.starts_with("sync messages from 192.0.2.2 with syncid 7 (ours)"), "{}", f.message);
    }

    #[test]
    fn another_sync_id_fails_with_the_policy_line() {
        let m = model(PAIR);
        let f = one(check(&m, &facts(Role::Backup, false, Ok(vec![heard("192.0.2.2:8848", false, msg(9))]))));
        assert_eq!(f.level, Level::Fail);
        let line = m.sync_daemon.as_ref().unwrap().origin.to_string();
        assert!(
            f.message.contains("syncid 9, ours is 7") && f.message.contains(&line) && f.message.contains("drops them"),
            "{}",
            f.message
        );
        // Ours 0: our backup takes them, the peer's drops ours.
        let m = model(r#"lvsd.sync_daemon { interface = "eth0", id = 0, instance = "VI_1" }"#);
        let f = one(check(&m, &facts(Role::Backup, false, Ok(vec![heard("192.0.2.2:8848", false, msg(9))]))));
        assert_eq!(f.level, Level::Fail);
        assert!(f.message.contains("peer's backup daemon drops this node's"), "{}", f.message);
    }

    #[test]
    fn silence_warns_with_each_cause() {
        let m = model(PAIR);
        let f = one(check(&m, &facts(Role::Backup, false, Ok(Vec::new()))));
        assert_eq!(f.level, Level::Warn);
        for cause in ["while this node is backup", "not master", "no connections changing", "firewall drops UDP to port 8848"] {
            assert!(f.message.contains(cause), "{cause}: {}", f.message);
        }
        // Our own datagrams are not the peer's.
        let f = one(check(&m, &facts(Role::Backup, false, Ok(vec![heard("192.0.2.3:8848", true, msg(7))]))));
        assert_eq!(f.level, Level::Warn);
        let f = one(check(&m, &facts(Role::Master, true, Ok(Vec::new()))));
        assert!(f.message.contains("scale-out"), "{}", f.message);
        let f = one(check(&m, &facts(Role::Backup, false, Err("bind: denied".into()))));
        assert!(f.level == Level::Warn && f.message.contains("cannot listen"), "{}", f.message);
    }

    #[test]
    fn a_stranger_on_the_port_warns_and_each_sender_is_reported_once() {
        let m = model(PAIR);
        let hs = vec![
            heard("192.0.2.9:5000", false, Err(SyncMessageError::Short(2))),
            heard("192.0.2.2:8848", false, msg(7)),
            heard("192.0.2.2:8848", false, msg(7)),
        ];
        let f = check(&m, &facts(Role::Backup, false, Ok(hs)));
        assert_eq!(f.iter().map(|f| f.level).collect::<Vec<_>>(), [Level::Warn, Level::Pass], "{f:?}");
        assert!(f[0].message.contains("not a sync message"), "{}", f[0].message);
    }

    #[test]
    fn nothing_without_a_sync_daemon_or_when_not_listening() {
        let m = model("");
        assert!(check(&m, &facts(Role::Backup, false, Ok(Vec::new()))).is_empty());
        assert!(gather(&m, &BTreeMap::new(), &Ok(Vec::new()), MAX_LISTEN).is_none());
        assert!(gather(&model(PAIR), &BTreeMap::new(), &Ok(Vec::new()), Duration::ZERO).is_none());
        // The master of a pair returns at once, without a socket.
        let master = BTreeMap::from([("VI_1".to_string(), "master".to_string())]);
        let f = gather(&model(PAIR), &master, &Ok(Vec::new()), MAX_LISTEN).unwrap();
        assert_eq!((f.role, f.all_send, f.listened), (Role::Master, false, None));
    }
}
