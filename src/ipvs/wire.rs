//! IPVS generic-netlink messages: encode requests exactly as libipvs (ipvsadm) lays them
//! out, decode the kernel's replies. No I/O and no decisions here.
//!
//! Numbers follow `include/uapi/linux/ip_vs.h`. The payloads built here are the generic
//! netlink part (genlmsghdr + attributes); `kernel.rs` wraps them in a netlink header.

use super::attrs::{self, Attr, Attrs, DecodeError, Writer, find};
use super::table::{
    Dest, DestKey, Family, Forward, Protocol, Service, ServiceConf, ServiceKey, Stats, TunnelType, default_netmask, svc_flags,
};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The generic netlink family name, resolved to an id through nlctrl.
pub const FAMILY_NAME: &str = "IPVS";
/// nlctrl, the generic netlink family that names the others (linux/genetlink.h), its
/// command asking for a family by name, and the attributes of that question and answer.
pub const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// IPVS_GENL_VERSION.
pub const GENL_VERSION: u8 = 0x1;

/// IPVS_CMD_*.
pub mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const NEW_DAEMON: u8 = 9;
    pub const DEL_DAEMON: u8 = 10;
    pub const GET_DAEMON: u8 = 11;
    pub const SET_CONFIG: u8 = 12;
    pub const GET_CONFIG: u8 = 13;
    pub const SET_INFO: u8 = 14;
    pub const GET_INFO: u8 = 15;
    pub const ZERO: u8 = 16;
    pub const FLUSH: u8 = 17;
}

/// IPVS_CMD_ATTR_*.
pub mod cmd_attr {
    pub const SERVICE: u16 = 1;
    pub const DEST: u16 = 2;
    pub const DAEMON: u16 = 3;
    pub const TIMEOUT_TCP: u16 = 4;
    pub const TIMEOUT_TCP_FIN: u16 = 5;
    pub const TIMEOUT_UDP: u16 = 6;
}

/// IPVS_SVC_ATTR_*.
pub mod svc_attr {
    pub const AF: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const ADDR: u16 = 3;
    pub const PORT: u16 = 4;
    pub const FWMARK: u16 = 5;
    pub const SCHED_NAME: u16 = 6;
    pub const FLAGS: u16 = 7;
    pub const TIMEOUT: u16 = 8;
    pub const NETMASK: u16 = 9;
    pub const STATS: u16 = 10;
    pub const PE_NAME: u16 = 11;
    pub const STATS64: u16 = 12;
}

/// IPVS_DEST_ATTR_*.
pub mod dest_attr {
    pub const ADDR: u16 = 1;
    pub const PORT: u16 = 2;
    pub const FWD_METHOD: u16 = 3;
    pub const WEIGHT: u16 = 4;
    pub const U_THRESH: u16 = 5;
    pub const L_THRESH: u16 = 6;
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    pub const STATS: u16 = 10;
    pub const ADDR_FAMILY: u16 = 11;
    pub const STATS64: u16 = 12;
    pub const TUN_TYPE: u16 = 13;
    pub const TUN_PORT: u16 = 14;
    pub const TUN_FLAGS: u16 = 15;
}

/// IPVS_DAEMON_ATTR_*.
pub mod daemon_attr {
    pub const STATE: u16 = 1;
    pub const MCAST_IFN: u16 = 2;
    pub const SYNC_ID: u16 = 3;
    pub const SYNC_MAXLEN: u16 = 4;
    pub const MCAST_GROUP: u16 = 5;
    pub const MCAST_GROUP6: u16 = 6;
    pub const MCAST_PORT: u16 = 7;
    pub const MCAST_TTL: u16 = 8;
}

/// IPVS_STATS_ATTR_*.
pub mod stats_attr {
    pub const CONNS: u16 = 1;
    pub const INPKTS: u16 = 2;
    pub const OUTPKTS: u16 = 3;
    pub const INBYTES: u16 = 4;
    pub const OUTBYTES: u16 = 5;
    pub const CPS: u16 = 6;
    pub const INPPS: u16 = 7;
    pub const OUTPPS: u16 = 8;
    pub const INBPS: u16 = 9;
    pub const OUTBPS: u16 = 10;
}

/// IPVS_INFO_ATTR_*.
pub mod info_attr {
    pub const VERSION: u16 = 1;
    pub const CONN_TAB_SIZE: u16 = 2;
}

/// One request: the command, whether it is a dump, and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub cmd: u8,
    pub dump: bool,
    pub attrs: Vec<u8>,
}

impl Request {
    fn new(cmd: u8, dump: bool, f: impl FnOnce(&mut Writer)) -> Request {
        let mut w = Writer::new();
        f(&mut w);
        Request { cmd, dump, attrs: w.buf }
    }
    /// genlmsghdr (cmd, version, reserved) followed by the attributes.
    pub fn genl_payload(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + self.attrs.len());
        v.extend_from_slice(&[self.cmd, GENL_VERSION, 0, 0]);
        v.extend_from_slice(&self.attrs);
        v
    }
    /// True for commands that change the kernel's state.
    pub fn is_write(&self) -> bool {
        !matches!(self.cmd, cmd::GET_SERVICE | cmd::GET_DEST | cmd::GET_DAEMON | cmd::GET_CONFIG | cmd::GET_INFO)
    }
}

fn addr16(ip: &IpAddr) -> [u8; 16] {
    let mut a = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => a[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => a.copy_from_slice(&v6.octets()),
    }
    a
}

fn ip_from16(family: Family, data: &[u8], what: &'static str) -> Result<IpAddr, DecodeError> {
    match family {
        Family::Inet if data.len() >= 4 => Ok(IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3]))),
        Family::Inet6 if data.len() >= 16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&data[..16]);
            Ok(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => Err(DecodeError::BadLength { what, len: data.len(), expected: 16 }),
    }
}

fn family_from_af(af: u16, what: &'static str) -> Result<Family, DecodeError> {
    match af {
        2 => Ok(Family::Inet),
        10 => Ok(Family::Inet6),
        _ => Err(DecodeError::BadValue { what, value: af as u64 }),
    }
}

/// The service nest as libipvs `ipvs_nl_fill_service_attr` writes it. Commands that only
/// name a service (delete, destination commands, zero) get libipvs's empty settings.
fn put_service(w: &mut Writer, key: &ServiceKey, conf: Option<&ServiceConf>) {
    let family = key.family();
    let empty = ServiceConf { scheduler: String::new(), flags: 0, timeout: 0, netmask: default_netmask(family), pe_name: None };
    let conf = conf.unwrap_or(&empty);
    w.nested(cmd_attr::SERVICE, |w| {
        w.u16(svc_attr::AF, family.af());
        match key {
            ServiceKey::Fwmark { mark, .. } => w.u32(svc_attr::FWMARK, *mark),
            ServiceKey::Addr { protocol, addr } => {
                w.u16(svc_attr::PROTOCOL, protocol.number());
                w.bytes(svc_attr::ADDR, &addr16(&addr.ip()));
                w.be16(svc_attr::PORT, addr.port());
            }
        }
        w.string(svc_attr::SCHED_NAME, &conf.scheduler);
        if let Some(pe) = &conf.pe_name {
            w.string(svc_attr::PE_NAME, pe);
        }
        // struct ip_vs_flags { flags, mask }: the mask says every flag is being set.
        let mut fl = [0u8; 8];
        fl[..4].copy_from_slice(&conf.flags.to_ne_bytes());
        fl[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
        w.bytes(svc_attr::FLAGS, &fl);
        w.u32(svc_attr::TIMEOUT, conf.timeout);
        w.bytes(svc_attr::NETMASK, &netmask_bytes(family, conf.netmask));
    });
}

/// IPv4: the mask's raw octets (a __be32); IPv6: the prefix length as a host u32.
fn netmask_bytes(family: Family, netmask: u32) -> [u8; 4] {
    match family {
        Family::Inet => netmask.to_be_bytes(),
        Family::Inet6 => netmask.to_ne_bytes(),
    }
}

/// The destination nest as libipvs `ipvs_nl_fill_dest_attr` writes it.
fn put_dest(w: &mut Writer, dest: &DestKey, d: &Dest) {
    w.nested(cmd_attr::DEST, |w| {
        w.u16(dest_attr::ADDR_FAMILY, Family::of(&dest.0.ip()).af());
        w.bytes(dest_attr::ADDR, &addr16(&dest.0.ip()));
        w.be16(dest_attr::PORT, dest.0.port());
        w.u32(dest_attr::FWD_METHOD, d.forward.conn_flags());
        w.u32(dest_attr::WEIGHT, d.weight);
        w.u8(dest_attr::TUN_TYPE, d.tun_type.number());
        w.be16(dest_attr::TUN_PORT, d.tun_port);
        w.u16(dest_attr::TUN_FLAGS, d.tun_flags);
        w.u32(dest_attr::U_THRESH, d.u_threshold);
        w.u32(dest_attr::L_THRESH, d.l_threshold);
    });
}

/// Only the key of a service, as libipvs sends it in dump requests.
fn put_service_key(w: &mut Writer, key: &ServiceKey) {
    w.nested(cmd_attr::SERVICE, |w| {
        w.u16(svc_attr::AF, key.family().af());
        match key {
            ServiceKey::Fwmark { mark, .. } => w.u32(svc_attr::FWMARK, *mark),
            ServiceKey::Addr { protocol, addr } => {
                w.u16(svc_attr::PROTOCOL, protocol.number());
                w.bytes(svc_attr::ADDR, &addr16(&addr.ip()));
                w.be16(svc_attr::PORT, addr.port());
            }
        }
    });
}

pub fn new_service(key: &ServiceKey, conf: &ServiceConf) -> Request {
    Request::new(cmd::NEW_SERVICE, false, |w| put_service(w, key, Some(conf)))
}
pub fn set_service(key: &ServiceKey, conf: &ServiceConf) -> Request {
    Request::new(cmd::SET_SERVICE, false, |w| put_service(w, key, Some(conf)))
}
pub fn del_service(key: &ServiceKey) -> Request {
    Request::new(cmd::DEL_SERVICE, false, |w| put_service(w, key, None))
}
pub fn get_services() -> Request {
    Request::new(cmd::GET_SERVICE, true, |_| {})
}
/// One service by its key (not a dump): the reply is that service, or ESRCH.
pub fn get_service(key: &ServiceKey) -> Request {
    Request::new(cmd::GET_SERVICE, false, |w| put_service_key(w, key))
}
pub fn new_dest(svc: &ServiceKey, dest: &DestKey, d: &Dest) -> Request {
    Request::new(cmd::NEW_DEST, false, |w| {
        put_service(w, svc, None);
        put_dest(w, dest, d)
    })
}
pub fn set_dest(svc: &ServiceKey, dest: &DestKey, d: &Dest) -> Request {
    Request::new(cmd::SET_DEST, false, |w| {
        put_service(w, svc, None);
        put_dest(w, dest, d)
    })
}
/// libipvs sends a whole destination (its defaults: route, weight 1) on delete; the kernel
/// only reads the address.
pub fn del_dest(svc: &ServiceKey, dest: &DestKey) -> Request {
    Request::new(cmd::DEL_DEST, false, |w| {
        put_service(w, svc, None);
        put_dest(w, dest, &Dest::new(Forward::Dr, 1))
    })
}
pub fn get_dests(svc: &ServiceKey) -> Request {
    Request::new(cmd::GET_DEST, true, |w| put_service_key(w, svc))
}
/// nlctrl's CTRL_CMD_GETFAMILY for the family called `name`: sent to [`GENL_ID_CTRL`], it
/// is answered with the family's id ([`decode_family_id`]), or ENOENT when there is none.
pub fn get_family(name: &str) -> Request {
    Request::new(CTRL_CMD_GETFAMILY, false, |w| w.string(CTRL_ATTR_FAMILY_NAME, name))
}
pub fn get_info() -> Request {
    Request::new(cmd::GET_INFO, false, |_| {})
}
pub fn get_config() -> Request {
    Request::new(cmd::GET_CONFIG, false, |_| {})
}
/// Set timeouts; a zero leaves that timeout unchanged (kernel semantics).
pub fn set_config(t: &Timeouts) -> Request {
    Request::new(cmd::SET_CONFIG, false, |w| {
        w.u32(cmd_attr::TIMEOUT_TCP, t.tcp);
        w.u32(cmd_attr::TIMEOUT_TCP_FIN, t.tcp_fin);
        w.u32(cmd_attr::TIMEOUT_UDP, t.udp);
    })
}
/// Zero the counters of one service, or of everything.
pub fn zero(svc: Option<&ServiceKey>) -> Request {
    Request::new(cmd::ZERO, false, |w| {
        if let Some(k) = svc {
            put_service(w, k, None)
        }
    })
}
pub fn flush() -> Request {
    Request::new(cmd::FLUSH, false, |_| {})
}
pub fn new_daemon(d: &SyncDaemon) -> Request {
    Request::new(cmd::NEW_DAEMON, false, |w| {
        w.nested(cmd_attr::DAEMON, |w| {
            w.u32(daemon_attr::STATE, d.state.number());
            w.string(daemon_attr::MCAST_IFN, &d.interface);
            w.u32(daemon_attr::SYNC_ID, d.sync_id);
            if let Some(v) = d.sync_maxlen {
                w.u16(daemon_attr::SYNC_MAXLEN, v);
            }
            match d.mcast_group {
                Some(IpAddr::V4(g)) => w.bytes(daemon_attr::MCAST_GROUP, &g.octets()),
                Some(IpAddr::V6(g)) => w.bytes(daemon_attr::MCAST_GROUP6, &g.octets()),
                None => {}
            }
            if let Some(p) = d.mcast_port {
                w.u16(daemon_attr::MCAST_PORT, p);
            }
            if let Some(t) = d.mcast_ttl {
                w.u8(daemon_attr::MCAST_TTL, t);
            }
        })
    })
}
/// libipvs sends an empty interface and sync id 0 along with the state; the kernel only
/// reads the state.
pub fn del_daemon(state: DaemonState) -> Request {
    Request::new(cmd::DEL_DAEMON, false, |w| {
        w.nested(cmd_attr::DAEMON, |w| {
            w.u32(daemon_attr::STATE, state.number());
            w.string(daemon_attr::MCAST_IFN, "");
            w.u32(daemon_attr::SYNC_ID, 0);
        })
    })
}
pub fn get_daemons() -> Request {
    Request::new(cmd::GET_DAEMON, true, |_| {})
}

/// IPVS_CMD_GET_INFO: version code (0x010201 = 1.2.1) and connection table size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Info {
    pub version: u32,
    pub conn_tab_size: u32,
}

/// Connection timeouts in seconds (IPVS_CMD_GET_CONFIG / SET_CONFIG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonState {
    Master,
    Backup,
}

impl DaemonState {
    /// IP_VS_STATE_MASTER / IP_VS_STATE_BACKUP.
    pub fn number(self) -> u32 {
        match self {
            DaemonState::Master => 1,
            DaemonState::Backup => 2,
        }
    }
}

/// A connection synchronisation daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncDaemon {
    pub state: DaemonState,
    pub interface: String,
    pub sync_id: u32,
    pub sync_maxlen: Option<u16>,
    pub mcast_group: Option<IpAddr>,
    pub mcast_port: Option<u16>,
    pub mcast_ttl: Option<u8>,
}

impl SyncDaemon {
    /// True when this running daemon is what `want` asks for. Settings `want` leaves unset
    /// take the kernel's defaults, so only the ones it sets are compared.
    pub fn satisfies(&self, want: &SyncDaemon) -> bool {
        self.state == want.state
            && self.interface == want.interface
            && self.sync_id == want.sync_id
            && want.sync_maxlen.is_none_or(|v| self.sync_maxlen == Some(v))
            && want.mcast_group.is_none_or(|v| self.mcast_group == Some(v))
            && want.mcast_port.is_none_or(|v| self.mcast_port == Some(v))
            && want.mcast_ttl.is_none_or(|v| self.mcast_ttl == Some(v))
    }

    pub fn new(state: DaemonState, interface: &str, sync_id: u32) -> SyncDaemon {
        SyncDaemon {
            state,
            interface: interface.to_string(),
            sync_id,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
        }
    }
}

/// A reply split into its command and top-level attributes.
pub struct Reply<'a> {
    pub cmd: u8,
    pub attrs: Attrs<'a>,
}

/// Parse a generic netlink payload (genlmsghdr + attributes).
pub fn parse_genl(payload: &[u8]) -> Result<Reply<'_>, DecodeError> {
    if payload.len() < 4 {
        return Err(DecodeError::Truncated("genlmsghdr"));
    }
    Ok(Reply { cmd: payload[0], attrs: attrs::parse(&payload[4..])? })
}

fn need<'a>(attrs: &Attrs<'a>, ty: u16, what: &'static str) -> Result<Attr<'a>, DecodeError> {
    find(attrs, ty).ok_or(DecodeError::Missing(what))
}

fn decode_stats(a: &Attrs<'_>, wide: bool) -> Result<Stats, DecodeError> {
    let get = |ty: u16, what: &'static str, is64: bool| -> Result<u64, DecodeError> {
        match find(a, ty) {
            None => Ok(0),
            Some(x) if is64 || wide => x.u64(what),
            Some(x) => x.u32(what).map(u64::from),
        }
    };
    use stats_attr::*;
    Ok(Stats {
        conns: get(CONNS, "stats conns", false)?,
        inpkts: get(INPKTS, "stats inpkts", false)?,
        outpkts: get(OUTPKTS, "stats outpkts", false)?,
        inbytes: get(INBYTES, "stats inbytes", true)?,
        outbytes: get(OUTBYTES, "stats outbytes", true)?,
        cps: get(CPS, "stats cps", false)?,
        inpps: get(INPPS, "stats inpps", false)?,
        outpps: get(OUTPPS, "stats outpps", false)?,
        inbps: get(INBPS, "stats inbps", false)?,
        outbps: get(OUTBPS, "stats outbps", false)?,
        ..Stats::default()
    })
}

/// Prefer the 64-bit counters; fall back to the 32-bit nest on old kernels.
fn stats_of(a: &Attrs<'_>, s64: u16, s32: u16) -> Result<Stats, DecodeError> {
    if let Some(x) = find(a, s64) {
        decode_stats(&x.nested()?, true)
    } else if let Some(x) = find(a, s32) {
        decode_stats(&x.nested()?, false)
    } else {
        Ok(Stats::default())
    }
}

/// The key of a service nest: family and fwmark, or family, protocol, address and port.
pub fn decode_service_key(a: &Attrs<'_>) -> Result<ServiceKey, DecodeError> {
    let family = family_from_af(need(a, svc_attr::AF, "service af")?.u16("service af")?, "service af")?;
    Ok(if let Some(m) = find(a, svc_attr::FWMARK).map(|x| x.u32("fwmark")).transpose()?.filter(|m| *m != 0) {
        ServiceKey::Fwmark { mark: m, family }
    } else {
        let p = need(a, svc_attr::PROTOCOL, "service protocol")?.u16("service protocol")?;
        let protocol = Protocol::from_number(p).ok_or(DecodeError::BadValue { what: "service protocol", value: p as u64 })?;
        let ip = ip_from16(family, need(a, svc_attr::ADDR, "service address")?.data, "service address")?;
        let port = need(a, svc_attr::PORT, "service port")?.be16("service port")?;
        ServiceKey::Addr { protocol, addr: SocketAddr::new(ip, port) }
    })
}

/// Decode a service nest (the attributes inside IPVS_CMD_ATTR_SERVICE).
pub fn decode_service_attrs(a: &Attrs<'_>) -> Result<(ServiceKey, Service), DecodeError> {
    let key = decode_service_key(a)?;
    let family = key.family();
    let scheduler = need(a, svc_attr::SCHED_NAME, "scheduler")?.string("scheduler")?;
    let flags = match find(a, svc_attr::FLAGS) {
        Some(x) => x.u32("service flags")? & !svc_flags::HASHED,
        None => 0,
    };
    let timeout = find(a, svc_attr::TIMEOUT).map(|x| x.u32("timeout")).transpose()?.unwrap_or(0);
    let netmask = match find(a, svc_attr::NETMASK) {
        Some(x) if family == Family::Inet => u32::from_be_bytes(
            x.data.get(..4).ok_or(DecodeError::BadLength { what: "netmask", len: x.data.len(), expected: 4 })?.try_into().expect("4 bytes"),
        ),
        Some(x) => x.u32("netmask")?,
        None => default_netmask(family),
    };
    let pe_name = find(a, svc_attr::PE_NAME).map(|x| x.string("pe name")).transpose()?.filter(|s| !s.is_empty());
    let mut svc = Service::new(ServiceConf { scheduler, flags, timeout, netmask, pe_name });
    svc.stats = stats_of(a, svc_attr::STATS64, svc_attr::STATS)?;
    Ok((key, svc))
}

/// Decode a destination nest; `svc_family` is used when the kernel omits the address family.
pub fn decode_dest_attrs(a: &Attrs<'_>, svc_family: Family) -> Result<(DestKey, Dest), DecodeError> {
    let family = match find(a, dest_attr::ADDR_FAMILY) {
        Some(x) => family_from_af(x.u16("dest af")?, "dest af")?,
        None => svc_family,
    };
    let ip = ip_from16(family, need(a, dest_attr::ADDR, "dest address")?.data, "dest address")?;
    let port = need(a, dest_attr::PORT, "dest port")?.be16("dest port")?;
    let fwd = need(a, dest_attr::FWD_METHOD, "forward method")?.u32("forward method")?;
    let mut d = Dest::new(Forward::from_conn_flags(fwd), need(a, dest_attr::WEIGHT, "weight")?.u32("weight")?);
    let u32_or0 =
        |ty: u16, what: &'static str| -> Result<u32, DecodeError> { find(a, ty).map(|x| x.u32(what)).transpose().map(|v| v.unwrap_or(0)) };
    d.u_threshold = u32_or0(dest_attr::U_THRESH, "upper threshold")?;
    d.l_threshold = u32_or0(dest_attr::L_THRESH, "lower threshold")?;
    if let Some(x) = find(a, dest_attr::TUN_TYPE) {
        let n = x.u8("tunnel type")?;
        d.tun_type = TunnelType::from_number(n).ok_or(DecodeError::BadValue { what: "tunnel type", value: n as u64 })?;
    }
    d.tun_port = find(a, dest_attr::TUN_PORT).map(|x| x.be16("tunnel port")).transpose()?.unwrap_or(0);
    d.tun_flags = find(a, dest_attr::TUN_FLAGS).map(|x| x.u16("tunnel flags")).transpose()?.unwrap_or(0);
    let mut stats = stats_of(a, dest_attr::STATS64, dest_attr::STATS)?;
    stats.active_conns = u32_or0(dest_attr::ACTIVE_CONNS, "active conns")?;
    stats.inact_conns = u32_or0(dest_attr::INACT_CONNS, "inactive conns")?;
    stats.persist_conns = u32_or0(dest_attr::PERSIST_CONNS, "persistent conns")?;
    d.stats = stats.into();
    Ok((DestKey(SocketAddr::new(ip, port)), d))
}

/// A GET_SERVICE reply (or a NEW/SET_SERVICE request) -> the service it carries.
pub fn decode_service(payload: &[u8]) -> Result<(ServiceKey, Service), DecodeError> {
    let r = parse_genl(payload)?;
    decode_service_attrs(&need(&r.attrs, cmd_attr::SERVICE, "service")?.nested()?)
}

/// A GET_DEST reply (or a NEW/SET_DEST request) -> the destination it carries.
pub fn decode_dest(payload: &[u8], svc_family: Family) -> Result<(DestKey, Dest), DecodeError> {
    let r = parse_genl(payload)?;
    decode_dest_attrs(&need(&r.attrs, cmd_attr::DEST, "dest")?.nested()?, svc_family)
}

/// The family id in nlctrl's answer to [`get_family`].
pub fn decode_family_id(payload: &[u8]) -> Result<u16, DecodeError> {
    need(&parse_genl(payload)?.attrs, CTRL_ATTR_FAMILY_ID, "family id")?.u16("family id")
}

pub fn decode_info(payload: &[u8]) -> Result<Info, DecodeError> {
    let r = parse_genl(payload)?;
    Ok(Info {
        version: need(&r.attrs, info_attr::VERSION, "version")?.u32("version")?,
        conn_tab_size: need(&r.attrs, info_attr::CONN_TAB_SIZE, "conn table size")?.u32("conn table size")?,
    })
}

pub fn decode_config(payload: &[u8]) -> Result<Timeouts, DecodeError> {
    let r = parse_genl(payload)?;
    let get = |ty, what| find(&r.attrs, ty).map(|x: Attr<'_>| x.u32(what)).transpose().map(|v| v.unwrap_or(0));
    Ok(Timeouts {
        tcp: get(cmd_attr::TIMEOUT_TCP, "tcp timeout")?,
        tcp_fin: get(cmd_attr::TIMEOUT_TCP_FIN, "tcp fin timeout")?,
        udp: get(cmd_attr::TIMEOUT_UDP, "udp timeout")?,
    })
}

pub fn decode_daemon(payload: &[u8]) -> Result<SyncDaemon, DecodeError> {
    let r = parse_genl(payload)?;
    let a = need(&r.attrs, cmd_attr::DAEMON, "daemon")?.nested()?;
    let st = need(&a, daemon_attr::STATE, "daemon state")?.u32("daemon state")?;
    let state = match st {
        1 => DaemonState::Master,
        2 => DaemonState::Backup,
        v => return Err(DecodeError::BadValue { what: "daemon state", value: v as u64 }),
    };
    let mut d = SyncDaemon::new(
        state,
        &need(&a, daemon_attr::MCAST_IFN, "daemon interface")?.string("daemon interface")?,
        need(&a, daemon_attr::SYNC_ID, "sync id")?.u32("sync id")?,
    );
    d.sync_maxlen = find(&a, daemon_attr::SYNC_MAXLEN).map(|x| x.u16("sync maxlen")).transpose()?;
    if let Some(x) = find(&a, daemon_attr::MCAST_GROUP) {
        d.mcast_group = Some(ip_from16(Family::Inet, x.data, "mcast group")?);
    }
    if let Some(x) = find(&a, daemon_attr::MCAST_GROUP6) {
        d.mcast_group = Some(ip_from16(Family::Inet6, x.data, "mcast group6")?);
    }
    d.mcast_port = find(&a, daemon_attr::MCAST_PORT).map(|x| x.u16("mcast port")).transpose()?;
    d.mcast_ttl = find(&a, daemon_attr::MCAST_TTL).map(|x| x.u8("mcast ttl")).transpose()?;
    Ok(d)
}

// --- Netlink framing: several requests in one datagram, replies matched by sequence number ---

/// sizeof(struct nlmsghdr); every message starts 4-byte aligned (NLMSG_ALIGNTO).
pub const NLMSG_HDRLEN: usize = 16;

/// NLMSG_* control message types (include/uapi/linux/netlink.h).
pub mod nlmsg {
    pub const NOOP: u16 = 1;
    pub const ERROR: u16 = 2;
    pub const DONE: u16 = 3;
    pub const OVERRUN: u16 = 4;
    /// Types below this are control messages; a generic-netlink family's id is at least this.
    pub const MIN_TYPE: u16 = 0x10;
}

/// NLM_F_* header flags.
pub mod nlm_f {
    pub const REQUEST: u16 = 0x1;
    pub const MULTI: u16 = 0x2;
    pub const ACK: u16 = 0x4;
    /// NLM_F_ROOT | NLM_F_MATCH.
    pub const DUMP: u16 = 0x300;
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl Request {
    /// Header flags: REQUEST, DUMP for a dump, and ACK when a success must be answered too
    /// (libnl sets it on every request of ipvsadm's). Without it the kernel answers only a
    /// failure: netlink_rcv_skb acks a message "if (nlh->nlmsg_flags & NLM_F_ACK || err)".
    pub fn nl_flags(&self, ack: bool) -> u16 {
        nlm_f::REQUEST | if ack { nlm_f::ACK } else { 0 } | if self.dump { nlm_f::DUMP } else { 0 }
    }
    /// Length of this request in a datagram, padding included.
    pub fn nl_space(&self) -> usize {
        align4(self.nl_len())
    }
    /// Length of this request as one netlink message (header, genlmsghdr, attributes).
    pub fn nl_len(&self) -> usize {
        NLMSG_HDRLEN + 4 + self.attrs.len()
    }
    /// Append this request to `buf` as one netlink message of family `family` with sequence
    /// number `seq` (port id 0: the kernel knows the sender). Several may follow each other in
    /// one datagram; the kernel handles them in order. `ack`: see [`Request::nl_flags`].
    pub fn encode(&self, family: u16, seq: u32, ack: bool, buf: &mut Vec<u8>) {
        let len = self.nl_len();
        buf.extend_from_slice(&(len as u32).to_ne_bytes());
        buf.extend_from_slice(&family.to_ne_bytes());
        buf.extend_from_slice(&self.nl_flags(ack).to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&[self.cmd, GENL_VERSION, 0, 0]);
        buf.extend_from_slice(&self.attrs);
        buf.resize(buf.len() - len + align4(len), 0);
    }
}

/// One message of a datagram the kernel sent on an IPVS socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NlReply<'a> {
    /// A message of a family (one service, one real server...): its type (the family's id)
    /// and generic netlink payload.
    Data { seq: u32, ty: u16, payload: &'a [u8] },
    /// NLMSG_ERROR: the answer to the request `seq`; errno 0 is the ack of a success.
    Ack { seq: u32, errno: i32 },
    /// NLMSG_DONE: the end of the dump `seq`, with the errno it ended with (0 normally).
    Done { seq: u32, errno: i32 },
}

impl NlReply<'_> {
    pub fn seq(&self) -> u32 {
        match *self {
            NlReply::Data { seq, .. } | NlReply::Ack { seq, .. } | NlReply::Done { seq, .. } => seq,
        }
    }
}

/// Split a received datagram into its messages. NLMSG_NOOP and NLMSG_OVERRUN and other
/// control types carry nothing for us and are skipped. The errno of NLMSG_ERROR and
/// NLMSG_DONE is returned positive (the kernel sends -errno).
pub fn parse_replies(mut buf: &[u8]) -> Result<Vec<NlReply<'_>>, DecodeError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        if buf.len() < NLMSG_HDRLEN {
            return Err(DecodeError::Truncated("netlink header"));
        }
        let len = u32::from_ne_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        let seq = u32::from_ne_bytes(buf[8..12].try_into().expect("4 bytes"));
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(DecodeError::Truncated("netlink message"));
        }
        let body = &buf[NLMSG_HDRLEN..len];
        // struct nlmsgerr / NLMSG_DONE start with an int: 0 or -errno. An old kernel's DONE
        // may have no body at all.
        let errno = |what: &'static str| -> Result<i32, DecodeError> {
            match body.get(..4) {
                Some(b) => Ok(i32::from_ne_bytes(b.try_into().expect("4 bytes")).wrapping_neg()),
                None if what == "netlink done" => Ok(0),
                None => Err(DecodeError::Truncated(what)),
            }
        };
        match ty {
            nlmsg::ERROR => out.push(NlReply::Ack { seq, errno: errno("netlink error")? }),
            nlmsg::DONE => out.push(NlReply::Done { seq, errno: errno("netlink done")? }),
            t if t >= nlmsg::MIN_TYPE => out.push(NlReply::Data { seq, ty: t, payload: body }),
            _ => {}
        }
        buf = &buf[align4(len).min(buf.len())..];
    }
    Ok(out)
}
