//! Lua declaration tables -> model structs. Each function reads every key it knows (so that
//! unknown keys are reported with the list of valid ones) and records errors instead of
//! stopping.

use super::fields::{Fields, int_value};
use crate::ipvs::table::{Family, Protocol, TunnelType};
use crate::model::*;
use mlua::{Function, Table, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A check declared with `lvsd.check.*`: an index into the policy's check list.
#[derive(Debug, Clone, Copy)]
pub struct CheckHandle(pub usize);
impl mlua::UserData for CheckHandle {}

/// A track function declared with `lvsd.track.*`.
#[derive(Debug, Clone, Copy)]
pub struct TrackHandle(pub usize);
impl mlua::UserData for TrackHandle {}

/// What conversion needs from the policy engine: hook registration and declared checks.
pub trait Ctx {
    fn hook(&self, f: Function) -> HookRef;
    fn check(&self, i: usize) -> Option<CheckSpec>;
    fn track(&self, i: usize) -> Option<Track>;
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim().parse().ok()
}

/// "192.0.2.1:80", "[2001:db8::1]:80", or a bare address taking `default_port`.
pub fn parse_addr_port(s: &str, default_port: Option<u16>) -> Result<SocketAddr, String> {
    if let Ok(sa) = s.trim().parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Some(ip) = parse_ip(s.trim_start_matches('[').trim_end_matches(']')) {
        if let Some(p) = default_port {
            return Ok(SocketAddr::new(ip, p));
        }
        return Err(format!("'{s}' has no port (write \"addr:port\", or \"[v6]:port\")"));
    }
    Err(format!("'{s}' is not an address:port (write \"192.0.2.1:80\" or \"[2001:db8::1]:80\")"))
}

fn ip_field(f: &mut Fields, key: &'static str) -> Option<IpAddr> {
    let s = f.string(key)?;
    let ip = parse_ip(&s);
    if ip.is_none() {
        f.error(format!("{key} = '{s}' is not an IP address"));
    }
    ip
}

fn one_of(f: &mut Fields, key: &'static str, valid: &[&str], default: &str) -> String {
    match f.string(key) {
        None => default.to_string(),
        Some(s) => {
            let lower = s.to_ascii_lowercase();
            if valid.contains(&lower.as_str()) {
                lower
            } else {
                f.error(format!("unknown {key} '{s}' (valid: {})", valid.join(", ")));
                default.to_string()
            }
        }
    }
}

fn forward_of(s: &str) -> ForwardMethod {
    match s {
        "nat" => ForwardMethod::Nat,
        "tun" => ForwardMethod::Tun,
        _ => ForwardMethod::Dr,
    }
}

fn tunnel_field(f: &mut Fields, key: &'static str) -> Option<Tunnel> {
    let v = f.value(key);
    let t = match v {
        Value::Nil => return None,
        Value::Table(t) => t,
        other => {
            f.error(format!("{key} must be a table {{ type = \"ipip\"|\"gue\"|\"gre\", port, csum }}, not a {}", other.type_name()));
            return None;
        }
    };
    let what = format!("{} {key}", f.what());
    let origin = f.origin.clone();
    let mut tf = Fields::new(t, what, origin, f.errs);
    let kind = match one_of(&mut tf, "type", &["ipip", "gue", "gre"], "ipip").as_str() {
        "gue" => TunnelType::Gue,
        "gre" => TunnelType::Gre,
        _ => TunnelType::Ipip,
    };
    let port = tf.integer("port", 1, 65535).unwrap_or(0) as u16;
    if kind == TunnelType::Gue && port == 0 {
        tf.error("a gue tunnel needs a port");
    }
    let csum = match one_of(&mut tf, "csum", &["nocsum", "csum", "remcsum"], "nocsum").as_str() {
        "csum" => TunnelCsum::Csum,
        "remcsum" => TunnelCsum::RemCsum,
        _ => TunnelCsum::NoCsum,
    };
    tf.finish();
    Some(Tunnel { kind, port, csum })
}

/// `check = <check>` or `check = { <check>, ... }` or `check = false`.
fn checks_field(f: &mut Fields, ctx: &dyn Ctx) -> Option<Vec<CheckSpec>> {
    let v = f.value("check");
    let handles: Vec<Value> = match v {
        Value::Nil => return None,
        Value::Boolean(false) => return Some(Vec::new()),
        Value::UserData(_) => vec![v],
        Value::Table(t) => t.sequence_values::<Value>().filter_map(|x| x.ok()).collect(),
        other => {
            f.error(format!("check must be an lvsd.check.* value or a list of them, not a {}", other.type_name()));
            return None;
        }
    };
    let mut out = Vec::new();
    for h in handles {
        match h {
            Value::UserData(ud) if ud.is::<CheckHandle>() => {
                let i = ud.borrow::<CheckHandle>().map(|h| h.0).unwrap_or(usize::MAX);
                if let Some(c) = ctx.check(i) {
                    out.push(c);
                }
            }
            other => {
                f.error(format!("check must be made with lvsd.check.tcp/http/https/udp/dns/smtp/exec/lua, not a {}", other.type_name()))
            }
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- global

pub fn global(f: &mut Fields, g: &mut Global) {
    if let Some(v) = f.string("router_id") {
        g.router_id = Some(v);
    }
    if let Some(v) = f.strings("notification_email") {
        g.notification_email = v;
    }
    if let Some(v) = f.string("notification_email_from") {
        g.notification_email_from = Some(v);
    }
    if let Some(v) = f.string("smtp_server") {
        g.smtp_server = Some(v);
    }
    if let Some(v) = f.integer("smtp_connect_timeout", 1, 3600) {
        g.smtp_connect_timeout = v as u32;
    }
    if let Some(v) = f.boolean("enable_script_security") {
        g.enable_script_security = v;
    }
    if let Some(v) = garp_field(f) {
        g.garp = v;
    }
    match f.string("foreign").as_deref() {
        None => {}
        Some("keep") => g.foreign = Foreign::Keep,
        Some("remove") => g.foreign = Foreign::Remove,
        Some(other) => f.error(format!("unknown foreign '{other}' (valid: keep, remove)")),
    }
    if let Some(v) = f.integer("drain_timeout", 0, 86_400) {
        g.drain_timeout = v as u32;
    }
    if let Some(v) = f.boolean("release_ipvs_on_stop") {
        g.release_ipvs_on_stop = v;
    }
    if let Some(v) = f.number("reload_guard", 0.0, 1.0) {
        g.reload_guard = v;
    }
}

fn garp_field(f: &mut Fields) -> Option<Garp> {
    let t = match f.value("garp") {
        Value::Nil => return None,
        Value::Table(t) => t,
        other => {
            f.error(format!("garp must be a table, not a {}", other.type_name()));
            return None;
        }
    };
    let what = format!("{} garp", f.what());
    let origin = f.origin.clone();
    let mut g = Garp::default();
    let mut gf = Fields::new(t, what, origin, f.errs);
    let int = |gf: &mut Fields, k: &'static str, hi: i64, d: u32| gf.integer(k, 0, hi).map(|v| v as u32).unwrap_or(d);
    g.master_delay = int(&mut gf, "master_delay", 1000, g.master_delay);
    g.master_repeat = int(&mut gf, "master_repeat", 1000, g.master_repeat);
    g.master_refresh = int(&mut gf, "master_refresh", 86_400, g.master_refresh);
    g.master_refresh_repeat = int(&mut gf, "master_refresh_repeat", 1000, g.master_refresh_repeat);
    g.interval = gf.number("interval", 0.0, 1.0).unwrap_or(g.interval);
    g.lower_prio_delay = int(&mut gf, "lower_prio_delay", 1000, g.lower_prio_delay);
    g.lower_prio_repeat = int(&mut gf, "lower_prio_repeat", 1000, g.lower_prio_repeat);
    gf.finish();
    Some(g)
}

fn notify_field(f: &mut Fields) -> Notify {
    let t = match f.value("notify") {
        Value::Nil => return Notify::default(),
        Value::Table(t) => t,
        other => {
            f.error(format!(
                "notify must be a table {{ master = {{argv}}, backup = ..., fault = ..., stop = ..., any = ... }}, not a {}",
                other.type_name()
            ));
            return Notify::default();
        }
    };
    let what = format!("{} notify", f.what());
    let origin = f.origin.clone();
    let mut nf = Fields::new(t, what, origin, f.errs);
    let n = Notify {
        master: nf.argv("master"),
        backup: nf.argv("backup"),
        fault: nf.argv("fault"),
        stop: nf.argv("stop"),
        any: nf.argv("any"),
    };
    nf.finish();
    n
}

// ---------------------------------------------------------------- vrrp

/// "192.0.2.1", "192.0.2.1/24", "192.0.2.1/24 dev eth1 label eth1:1 scope global".
pub fn parse_vip(s: &str) -> Result<VipAddr, String> {
    let mut words = s.split_whitespace();
    let first = words.next().ok_or_else(|| "empty VIP".to_string())?;
    let (ip, prefix) = match first.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (first, None),
    };
    let addr: IpAddr = ip.parse().map_err(|_| format!("VIP '{first}' is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n >= 1 && n <= max => n,
            _ => return Err(format!("VIP '{first}': prefix must be 1..{max}")),
        },
    };
    let mut vip = VipAddr { addr, prefix, dev: None, label: None, scope: None };
    while let Some(k) = words.next() {
        let v = words.next().ok_or_else(|| format!("VIP '{s}': '{k}' needs a value"))?.to_string();
        match k {
            "dev" => vip.dev = Some(v),
            "label" => vip.label = Some(v),
            "scope" => vip.scope = Some(v),
            other => return Err(format!("VIP '{s}': unknown option '{other}' (valid: dev, label, scope)")),
        }
    }
    Ok(vip)
}

fn vips_field(f: &mut Fields) -> Vec<VipAddr> {
    let t = match f.value("vips") {
        Value::Nil => return Vec::new(),
        Value::Table(t) => t,
        Value::String(s) => {
            return match parse_vip(&s.to_string_lossy()) {
                Ok(v) => vec![v],
                Err(e) => {
                    f.error(e);
                    Vec::new()
                }
            };
        }
        other => {
            f.error(format!("vips must be a list of addresses, not a {}", other.type_name()));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for item in t.sequence_values::<Value>().filter_map(|x| x.ok()) {
        match item {
            Value::String(s) => match parse_vip(&s.to_string_lossy()) {
                Ok(v) => out.push(v),
                Err(e) => f.error(e),
            },
            Value::Table(t) => {
                let what = format!("{} vip", f.what());
                let origin = f.origin.clone();
                let mut vf = Fields::new(t, what, origin, f.errs);
                let addr = vf.string("address");
                let prefix = vf.integer("prefix", 1, 128);
                let dev = vf.string("dev");
                let label = vf.string("label");
                let scope = vf.string("scope");
                vf.finish();
                let Some(addr) = addr else {
                    f.error("a vip table needs address = \"...\"");
                    continue;
                };
                match parse_vip(&addr) {
                    Ok(mut v) => {
                        if let Some(p) = prefix {
                            let max = if v.addr.is_ipv4() { 32 } else { 128 };
                            if p > max {
                                f.error(format!("vip {addr}: prefix {p} is out of range (1..{max})"));
                            }
                            v.prefix = p as u8;
                        }
                        v.dev = dev.or(v.dev);
                        v.label = label.or(v.label);
                        v.scope = scope.or(v.scope);
                        out.push(v);
                    }
                    Err(e) => f.error(e),
                }
            }
            other => f.error(format!("vips entries must be strings or tables, not a {}", other.type_name())),
        }
    }
    out
}

pub fn vrrp(name: &str, f: &mut Fields, ctx: &dyn Ctx) -> Option<VrrpInstance> {
    let interface = f.string("interface");
    let vrid = f.integer("vrid", 1, 255);
    let priority = f.integer("priority", 1, 255).unwrap_or(100) as u8;
    let version = match f.integer("version", 2, 3) {
        Some(v) => v as u8,
        None => 2,
    };
    let advert_int_cs = match version {
        // RFC 3768 5.3.7: Adver Int is in seconds (8 bits).
        2 => f.number("advert_int", 1.0, 255.0).map(|n| (n * 100.0).round() as u16).unwrap_or(100),
        // RFC 5798 5.2.7: Max Adver Int is in centiseconds (12 bits): 0.01 .. 40.95 s.
        _ => f.number("advert_int", 0.01, 40.95).map(|n| (n * 100.0).round() as u16).unwrap_or(100),
    };
    let auth_pass = f.string("auth_pass");
    if let Some(p) = &auth_pass {
        // keepalived keeps at most 8 characters (RFC 3768 5.3.10: the field is 8 octets).
        if p.len() > 8 || p.is_empty() {
            f.error(format!("auth_pass must be 1 to 8 characters (got {})", p.len()));
        }
    }
    let vips = vips_field(f);
    let state = match one_of(f, "state", &["master", "backup"], "backup").as_str() {
        "master" => InitialState::Master,
        _ => InitialState::Backup,
    };
    let nopreempt = f.flag("nopreempt");
    let preempt_delay = f.integer("preempt_delay", 0, 1000).unwrap_or(0) as u32;
    let preempt_sync_wait_ms = f
        .number("preempt_sync_wait", 0.0, 3600.0)
        .map(|s| (s * 1000.0).round() as u32)
        .unwrap_or(crate::vrrp::preempt_sync::DEFAULT_BOUND.as_millis() as u32);
    let unicast_src = ip_field(f, "unicast_src");
    let mut unicast_peers = Vec::new();
    for p in f.strings("unicast_peers").unwrap_or_default() {
        match parse_ip(&p) {
            Some(ip) => unicast_peers.push(ip),
            None => f.error(format!("unicast peer '{p}' is not an IP address")),
        }
    }
    let track_interfaces = track_interfaces_field(f);
    let tracks = tracks_field(f, ctx);
    let garp = garp_field(f).unwrap_or_default();
    let notify = notify_field(f);
    let smtp_alert = f.flag("smtp_alert");
    let v3_checksum_as_v2 = f.flag("v3_checksum_as_v2");
    let check_unicast_src = f.flag("check_unicast_src");
    let relax_unicast_ttl = f.flag("relax_unicast_ttl");
    if (check_unicast_src || relax_unicast_ttl) && unicast_peers.is_empty() {
        f.error("check_unicast_src and relax_unicast_ttl apply to unicast instances: give unicast_peers");
    }
    let on_change = f.function("on_change").map(|h| ctx.hook(h));
    f.require("interface", &interface, "the link VRRP runs on, e.g. interface = \"eth0\"");
    f.require("vrid", &vrid, "1..255, the same on both directors");
    Some(VrrpInstance {
        name: name.to_string(),
        interface: interface?,
        vrid: vrid? as u8,
        priority,
        version,
        advert_int_cs,
        auth_pass,
        vips,
        state,
        nopreempt,
        preempt_delay,
        preempt_sync_wait_ms,
        unicast_src,
        unicast_peers,
        track_interfaces,
        tracks,
        garp,
        notify,
        smtp_alert,
        v3_checksum_as_v2,
        check_unicast_src,
        relax_unicast_ttl,
        on_change,
        origin: f.origin.clone(),
    })
}

fn track_interfaces_field(f: &mut Fields) -> Vec<TrackInterface> {
    let t = match f.value("track_interfaces") {
        Value::Nil => return Vec::new(),
        Value::Table(t) => t,
        other => {
            f.error(format!("track_interfaces must be a list, not a {}", other.type_name()));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for item in t.sequence_values::<Value>().filter_map(|x| x.ok()) {
        match item {
            Value::String(s) => out.push(TrackInterface { name: s.to_string_lossy(), weight: 0 }),
            Value::Table(t) => {
                let what = format!("{} track_interfaces", f.what());
                let origin = f.origin.clone();
                let mut tf = Fields::new(t, what, origin, f.errs);
                let name = tf.string("name");
                let weight = tf.integer("weight", -254, 254).unwrap_or(0) as i32;
                tf.finish();
                match name {
                    Some(name) => out.push(TrackInterface { name, weight }),
                    None => f.error("track_interfaces entry needs name = \"...\""),
                }
            }
            other => f.error(format!("track_interfaces entries must be names or tables, not a {}", other.type_name())),
        }
    }
    out
}

fn tracks_field(f: &mut Fields, ctx: &dyn Ctx) -> Vec<Track> {
    let v = f.value("track");
    let items: Vec<Value> = match v {
        Value::Nil => return Vec::new(),
        Value::UserData(_) => vec![v],
        Value::Table(t) => t.sequence_values::<Value>().filter_map(|x| x.ok()).collect(),
        other => {
            f.error(format!("track must be a list of lvsd.track.* values, not a {}", other.type_name()));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Value::UserData(ud) if ud.is::<TrackHandle>() => {
                let i = ud.borrow::<TrackHandle>().map(|h| h.0).unwrap_or(usize::MAX);
                out.extend(ctx.track(i));
            }
            other => f.error(format!("track entries must be made with lvsd.track.exec/lua, not a {}", other.type_name())),
        }
    }
    out
}

pub fn track(kind: &str, f: &mut Fields, ctx: &dyn Ctx, n: usize) -> Option<Track> {
    let name = f.string("name").unwrap_or_else(|| format!("track{n}"));
    let k = match kind {
        "exec" => f.argv("command").map(|command| TrackKind::Exec { command }),
        _ => f.function("run").map(|r| TrackKind::Lua { run: ctx.hook(r) }),
    };
    let interval = f.number("interval", 0.01, 86_400.0).unwrap_or(1.0);
    let timeout = f.number("timeout", 0.0, 86_400.0).unwrap_or(0.0);
    let weight = f.integer("weight", -254, 254).unwrap_or(0) as i32;
    let rise = f.integer("rise", 1, 1000).unwrap_or(1) as u32;
    let fall = f.integer("fall", 1, 1000).unwrap_or(1) as u32;
    if k.is_none() {
        f.error(if kind == "exec" {
            "command = { \"/path/to/program\", ... } is required"
        } else {
            "run = function() ... end is required"
        });
    }
    Some(Track { name, kind: k?, interval, timeout, weight, rise, fall, origin: f.origin.clone() })
}

pub fn sync_group(name: &str, f: &mut Fields, ctx: &dyn Ctx) -> Option<SyncGroup> {
    let instances = f.strings("instances").unwrap_or_default();
    if instances.is_empty() {
        f.error("instances = { \"VI_1\", ... } is required");
    }
    let notify = notify_field(f);
    let smtp_alert = f.flag("smtp_alert");
    let on_change = f.function("on_change").map(|h| ctx.hook(h));
    Some(SyncGroup { name: name.to_string(), instances, notify, smtp_alert, on_change, origin: f.origin.clone() })
}

pub fn sync_daemon(f: &mut Fields) -> Option<SyncDaemon> {
    let interface = f.string("interface");
    let id = f.integer("id", 0, 255).unwrap_or(0) as u8;
    let maxlen = f.integer("maxlen", 1, 65507).map(|v| v as u16);
    let port = f.integer("port", 1, 65535).map(|v| v as u16);
    let ttl = f.integer("ttl", 1, 255).map(|v| v as u8);
    let group = ip_field(f, "group");
    let instance = f.string("instance");
    f.require("interface", &interface, "the link the sync traffic uses");
    Some(SyncDaemon { interface: interface?, id, maxlen, port, ttl, group, instance, origin: f.origin.clone() })
}

// ---------------------------------------------------------------- services

/// "255.255.255.0" -> host-order mask, contiguous only.
fn parse_v4_mask(s: &str) -> Option<u32> {
    let ip: std::net::Ipv4Addr = s.parse().ok()?;
    let m = u32::from(ip);
    (m.leading_ones() + m.trailing_zeros() == 32 && m != 0).then_some(m)
}

pub fn service(name: &str, f: &mut Fields, ctx: &dyn Ctx) -> Option<VirtualServer> {
    let vip_s = f.string("vip");
    let fwmark = f.integer("fwmark", 1, u32::MAX as i64);
    let family_s = f.string("family");
    let proto_s = f.string("protocol");
    let protocol = match proto_s.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("tcp") => Protocol::Tcp,
        Some("udp") => Protocol::Udp,
        Some("sctp") => Protocol::Sctp,
        Some(other) => {
            f.error(format!("unknown protocol '{other}' (valid: tcp, udp, sctp)"));
            Protocol::Tcp
        }
    };
    let vip = match (vip_s, fwmark) {
        (Some(_), Some(_)) => {
            f.error("give either vip or fwmark, not both");
            None
        }
        (None, None) => {
            f.error("vip = \"addr:port\" (or fwmark = N) is required");
            None
        }
        (Some(s), None) => match parse_addr_port(&s, None) {
            Ok(addr) => Some(Vip::Addr { protocol, addr }),
            Err(e) => {
                f.error(format!("vip {e}"));
                None
            }
        },
        (None, Some(mark)) => {
            if proto_s.is_some() {
                f.error("protocol does not apply to a fwmark service (the mark selects the traffic)");
            }
            let family = match family_s.as_deref() {
                None | Some("inet") | Some("ipv4") => Family::Inet,
                Some("inet6") | Some("ipv6") => Family::Inet6,
                Some(other) => {
                    f.error(format!("unknown family '{other}' (valid: inet, inet6)"));
                    Family::Inet
                }
            };
            Some(Vip::Fwmark { mark: mark as u32, family })
        }
    };
    if family_s.is_some() && fwmark.is_none() {
        f.error("family only applies to fwmark services (a vip address has its own family)");
    }
    let scheduler = one_of(f, "scheduler", SCHEDULERS, "wlc");
    let mut sched_flags = Vec::new();
    for fl in f.strings("sched_flags").unwrap_or_default() {
        if SCHED_FLAGS.contains(&fl.as_str()) {
            sched_flags.push(fl);
        } else {
            f.error(format!("unknown sched flag '{fl}' (valid: {})", SCHED_FLAGS.join(", ")));
        }
    }
    let ops = f.flag("ops");
    let forward = forward_of(&one_of(f, "forward", FORWARD_METHODS, "dr"));
    let tunnel = tunnel_field(f, "tunnel");
    let persistence = match f.value("persistence") {
        Value::Nil | Value::Boolean(false) => None,
        Value::Boolean(true) => Some(DEFAULT_PERSISTENCE),
        v => match int_value(&v, "persistence", 1, u32::MAX as i64) {
            Ok(n) => n.map(|n| n as u32),
            Err(e) => {
                f.error(e.unwrap_or_default());
                None
            }
        },
    };
    let fam = vip.map(|v| v.family()).unwrap_or(Family::Inet);
    let netmask = match f.value("netmask") {
        Value::Nil => None,
        Value::String(s) if fam == Family::Inet => {
            let s = s.to_string_lossy();
            let m = parse_v4_mask(&s);
            if m.is_none() {
                f.error(format!("netmask '{s}' is not a contiguous IPv4 netmask (e.g. \"255.255.255.0\")"));
            }
            m
        }
        v if fam == Family::Inet6 => match int_value(&v, "netmask", 1, 128) {
            Ok(n) => n.map(|n| n as u32),
            Err(e) => {
                f.error(format!("{} (IPv6 services take a prefix length)", e.unwrap_or_default()));
                None
            }
        },
        v => {
            f.error(format!("netmask of an IPv4 service must be a string like \"255.255.255.0\", not a {}", v.type_name()));
            None
        }
    };
    let pe = f.string("pe");
    if let Some(p) = &pe
        && p != "sip"
    {
        f.error(format!("unknown persistence engine '{p}' (valid: sip)"));
    }
    let quorum = f.integer("quorum", 1, u32::MAX as i64).unwrap_or(1) as u32;
    let hysteresis = f.integer("hysteresis", 0, u32::MAX as i64).unwrap_or(0) as u32;
    let quorum_up = f.argv("quorum_up");
    let quorum_down = f.argv("quorum_down");
    let inhibit_on_failure = f.flag("inhibit_on_failure");
    let alpha = f.flag("alpha");
    let omega = f.flag("omega");
    let ha_suspend = f.flag("ha_suspend");
    let on_up = f.function("on_up").map(|h| ctx.hook(h));
    let on_down = f.function("on_down").map(|h| ctx.hook(h));
    let announce = announce_field(f, ctx);
    let weight_fn = f.function("weight").map(|h| ctx.hook(h));
    let checks = checks_field(f, ctx).unwrap_or_default();
    let default_port = match vip {
        Some(Vip::Addr { addr, .. }) => Some(addr.port()),
        _ => Some(0),
    };
    let defaults = RealDefaults { forward, tunnel: tunnel.unwrap_or_default(), checks, inhibit_on_failure, weight_fn, default_port };
    let reals = reals_field(f, ctx, &defaults);
    let sorry_server = sorry_field(f, forward, default_port);
    if tunnel.is_some() && forward != ForwardMethod::Tun {
        f.error("tunnel only applies with forward = \"tun\"");
    }
    Some(VirtualServer {
        name: name.to_string(),
        vip: vip?,
        scheduler,
        sched_flags,
        ops,
        forward,
        persistence,
        netmask,
        pe,
        reals,
        sorry_server,
        quorum,
        hysteresis,
        quorum_up,
        quorum_down,
        inhibit_on_failure,
        alpha,
        omega,
        ha_suspend,
        on_up,
        on_down,
        announce,
        origin: f.origin.clone(),
    })
}

// ---------------------------------------------------------------- bgp

/// "65000:100" -> (65000, 100): a standard community (RFC 1997), two 16-bit halves.
pub fn parse_community(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("community '{s}' is not \"ASN:VALUE\" with two numbers 0..65535 (e.g. \"65000:100\")");
    let (a, b) = s.trim().split_once(':').ok_or_else(bad)?;
    Ok((a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?))
}

fn communities_field(f: &mut Fields) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for c in f.strings("communities").unwrap_or_default() {
        match parse_community(&c) {
            Ok(c) => out.push(c),
            Err(e) => f.error(e),
        }
    }
    out
}

/// RFC 4271 4.2: a hold time of 0 (no keepalives) or at least 3 seconds.
const HOLD_HINT: &str = "0 or 3..65535 seconds (RFC 4271 4.2)";

fn neighbors_field(f: &mut Fields) -> Vec<Neighbor> {
    let t = match f.value("neighbors") {
        Value::Nil => return Vec::new(),
        Value::Table(t) => t,
        other => {
            f.error(format!("neighbors must be a list of tables {{ address = \"...\", as = N }}, not a {}", other.type_name()));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for item in t.sequence_values::<Value>().filter_map(|x| x.ok()) {
        let Value::Table(t) = item else {
            f.error(format!("neighbors entries must be tables {{ address = \"...\", as = N }}, not a {}", item.type_name()));
            continue;
        };
        let what = format!("{} neighbor", f.what());
        let origin = f.origin.clone();
        let mut nf = Fields::new(t, what, origin, f.errs);
        let address = ip_field(&mut nf, "address");
        let asn = nf.integer("as", 1, u32::MAX as i64).map(|v| v as u32);
        let bfd = nf.flag("bfd");
        let hold = nf.integer("hold", 0, 65535).map(|v| v as u16);
        if let Some(h @ (1 | 2)) = hold {
            nf.error(format!("hold = {h}: the hold time must be {HOLD_HINT}"));
        }
        let keepalive = nf.integer("keepalive", 1, 65535).map(|v| v as u16);
        if let (Some(k), Some(h)) = (keepalive, hold)
            && h != 0
            && k >= h
        {
            nf.error(format!("keepalive = {k} must be below hold = {h} (a third of it is usual)"));
        }
        let source = ip_field(&mut nf, "source");
        let multihop = nf.integer("multihop", 1, 255).map(|v| v as u8);
        let password = nf.string("password");
        if password.as_ref().is_some_and(|p| p.contains(['"', '\\', '\n'])) {
            nf.error("password must not contain '\"', '\\' or a newline (it is written into BIRD's configuration)");
        }
        nf.require("address", &address, "the neighbour's IP address");
        nf.require("as", &asn, "the neighbour's AS number");
        if let (Some(a), Some(s)) = (address, source)
            && a.is_ipv4() != s.is_ipv4()
        {
            nf.error(format!("source {s} is not in the family of address {a}"));
        }
        nf.finish();
        if let (Some(address), Some(asn)) = (address, asn) {
            out.push(Neighbor { address, asn, bfd, hold, keepalive, source, multihop, password });
        }
    }
    out
}

/// `lvsd.bgp { socket, include, local_as, router_id, neighbors, communities, med }`.
pub fn bgp(f: &mut Fields) -> Option<Bgp> {
    let socket = f.string("socket").unwrap_or_else(|| DEFAULT_BIRD_SOCKET.to_string());
    let include = f.string("include").unwrap_or_else(|| DEFAULT_BIRD_INCLUDE.to_string());
    for (k, p) in [("socket", &socket), ("include", &include)] {
        if !p.starts_with('/') {
            f.error(format!("{k} = '{p}' must be an absolute path"));
        }
    }
    if include.contains('"') {
        f.error("include must not contain '\"' (BIRD's include statement quotes it)");
    }
    // RFC 6793: four-octet AS numbers; 0 is reserved (RFC 7607).
    let local_as = f.integer("local_as", 1, u32::MAX as i64).map(|v| v as u32);
    let router_id = f.string("router_id").and_then(|s| match s.trim().parse::<Ipv4Addr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            f.error(format!("router_id = '{s}' is not an IPv4 address (BGP identifiers are 32 bits, RFC 4271 4.2)"));
            None
        }
    });
    let neighbors = neighbors_field(f);
    let communities = communities_field(f);
    let med = f.integer("med", 0, u32::MAX as i64).map(|v| v as u32);
    f.require("local_as", &local_as, "this director's AS number, e.g. local_as = 65001");
    if neighbors.is_empty() && !matches!(f.value("neighbors"), Value::Nil) {
        f.error("neighbors is empty: give at least one { address = \"...\", as = N }");
    }
    f.require("neighbors", &neighbors.first(), "the routers to announce to: neighbors = { { address = \"192.0.2.1\", as = 65000 } }");
    Some(Bgp {
        socket: socket.into(),
        include: include.into(),
        local_as: local_as?,
        router_id,
        neighbors,
        communities,
        med,
        origin: f.origin.clone(),
    })
}

/// `announce = true | false | function(state) ... end | { when = true|function, communities, med }`.
fn announce_field(f: &mut Fields, ctx: &dyn Ctx) -> Option<Announce> {
    let plain = |when| Some(Announce { when, communities: Vec::new(), med: None });
    match f.value("announce") {
        Value::Nil | Value::Boolean(false) => None,
        Value::Boolean(true) => plain(AnnounceWhen::Quorum),
        Value::Function(h) => plain(AnnounceWhen::Function(ctx.hook(h))),
        Value::Table(t) => {
            let what = format!("{} announce", f.what());
            let origin = f.origin.clone();
            let mut af = Fields::new(t, what, origin, f.errs);
            let when = match af.value("when") {
                Value::Nil | Value::Boolean(true) => Some(AnnounceWhen::Quorum),
                Value::Boolean(false) => None,
                Value::Function(h) => Some(AnnounceWhen::Function(ctx.hook(h))),
                other => {
                    af.error(format!("when must be true, false or a function(state), not a {}", other.type_name()));
                    None
                }
            };
            let communities = communities_field(&mut af);
            let med = af.integer("med", 0, u32::MAX as i64).map(|v| v as u32);
            af.finish();
            Some(Announce { when: when?, communities, med })
        }
        other => {
            f.error(format!(
                "announce must be true, false, a function(state) or a table {{ when = ..., communities = ..., med = ... }}, not a {}",
                other.type_name()
            ));
            None
        }
    }
}

/// What a real inherits from its service.
struct RealDefaults {
    forward: ForwardMethod,
    tunnel: Tunnel,
    checks: Vec<CheckSpec>,
    inhibit_on_failure: bool,
    weight_fn: Option<HookRef>,
    default_port: Option<u16>,
}

fn reals_field(f: &mut Fields, ctx: &dyn Ctx, d: &RealDefaults) -> Vec<RealServer> {
    let t = match f.value("reals") {
        Value::Nil => return Vec::new(),
        Value::Table(t) => t,
        other => {
            f.error(format!("reals must be a list, not a {}", other.type_name()));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for item in t.sequence_values::<Value>().filter_map(|x| x.ok()) {
        let base = |addr| RealServer {
            addr,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
            forward: d.forward,
            tunnel: d.tunnel,
            checks: d.checks.clone(),
            inhibit_on_failure: d.inhibit_on_failure,
            weight_fn: d.weight_fn,
            on_up: None,
            on_down: None,
            notify_up: None,
            notify_down: None,
            origin: f.origin.clone(),
        };
        match item {
            Value::String(s) => match parse_addr_port(&s.to_string_lossy(), d.default_port) {
                Ok(a) => out.push(base(a)),
                Err(e) => f.error(format!("real server {e}")),
            },
            Value::Table(t) => {
                let what = format!("{} real", f.what());
                let origin = f.origin.clone();
                let mut rf = Fields::new(t, what, origin, f.errs);
                let addr = rf.string("address");
                let Some(addr) = addr else {
                    rf.error("address = \"addr:port\" is required");
                    continue;
                };
                let addr = match parse_addr_port(&addr, d.default_port) {
                    Ok(a) => a,
                    Err(e) => {
                        rf.error(e);
                        continue;
                    }
                };
                let mut r = base(addr);
                match rf.value("weight") {
                    Value::Nil => {}
                    Value::Function(h) => r.weight_fn = Some(ctx.hook(h)),
                    v => match int_value(&v, "weight", 0, 65535) {
                        Ok(w) => r.weight = w.unwrap_or(1) as u32,
                        Err(e) => rf.error(e.unwrap_or_default()),
                    },
                }
                r.upper_threshold = rf.integer("upper_threshold", 0, 65535).unwrap_or(0) as u32;
                r.lower_threshold = rf.integer("lower_threshold", 0, 65535).unwrap_or(0) as u32;
                if let Some(fw) = rf.string("forward") {
                    match fw.as_str() {
                        "dr" | "nat" | "tun" => r.forward = forward_of(&fw),
                        other => rf.error(format!("unknown forward '{other}' (valid: {})", FORWARD_METHODS.join(", "))),
                    }
                }
                if let Some(t) = tunnel_field(&mut rf, "tunnel") {
                    r.tunnel = t;
                }
                if let Some(c) = checks_field(&mut rf, ctx) {
                    r.checks = c;
                }
                if let Some(b) = rf.boolean("inhibit_on_failure") {
                    r.inhibit_on_failure = b;
                }
                r.on_up = rf.function("on_up").map(|h| ctx.hook(h));
                r.on_down = rf.function("on_down").map(|h| ctx.hook(h));
                r.notify_up = rf.argv("notify_up");
                r.notify_down = rf.argv("notify_down");
                rf.finish();
                out.push(r);
            }
            other => f.error(format!("reals entries must be \"addr:port\" strings or tables, not a {}", other.type_name())),
        }
    }
    out
}

fn sorry_field(f: &mut Fields, forward: ForwardMethod, default_port: Option<u16>) -> Option<SorryServer> {
    match f.value("sorry_server") {
        Value::Nil => None,
        Value::String(s) => match parse_addr_port(&s.to_string_lossy(), default_port) {
            Ok(addr) => Some(SorryServer { addr, forward, inhibit: false }),
            Err(e) => {
                f.error(format!("sorry_server {e}"));
                None
            }
        },
        Value::Table(t) => {
            let what = format!("{} sorry_server", f.what());
            let origin = f.origin.clone();
            let mut sf = Fields::new(t, what, origin, f.errs);
            let addr = sf.string("address");
            let fw = one_of(
                &mut sf,
                "forward",
                FORWARD_METHODS,
                match forward {
                    ForwardMethod::Dr => "dr",
                    ForwardMethod::Nat => "nat",
                    ForwardMethod::Tun => "tun",
                },
            );
            let inhibit = sf.flag("inhibit");
            sf.finish();
            match parse_addr_port(&addr.unwrap_or_default(), default_port) {
                Ok(addr) => Some(SorryServer { addr, forward: forward_of(&fw), inhibit }),
                Err(e) => {
                    f.error(format!("sorry_server {e}"));
                    None
                }
            }
        }
        other => {
            f.error(format!("sorry_server must be \"addr:port\" or a table, not a {}", other.type_name()));
            None
        }
    }
}

// ---------------------------------------------------------------- checks

/// "200", "200-299", "200,301-302", 200, { 200, "300-399" } -> ranges.
fn status_set(f: &mut Fields, v: Value) -> Option<StatusSet> {
    fn one(s: &str) -> Option<(u16, u16)> {
        let s = s.trim();
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let (a, b) = (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?);
        ((100..=599).contains(&a) && (100..=599).contains(&b) && a <= b).then_some((a, b))
    }
    let mut parts: Vec<String> = Vec::new();
    match v {
        Value::Nil => return None,
        Value::Integer(i) => parts.push(i.to_string()),
        Value::String(s) => parts.extend(s.to_string_lossy().split(',').map(str::to_string)),
        Value::Table(t) => {
            for x in t.sequence_values::<Value>().filter_map(|x| x.ok()) {
                match x {
                    Value::Integer(i) => parts.push(i.to_string()),
                    Value::String(s) => parts.push(s.to_string_lossy()),
                    _ => parts.push("?".into()),
                }
            }
        }
        other => {
            f.error(format!("status must be a code, a list of codes or a \"200-299\" range, not a {}", other.type_name()));
            return None;
        }
    }
    let mut out = Vec::new();
    for p in parts {
        match one(&p) {
            Some(r) => out.push(r),
            None => f.error(format!("status '{p}' is not an HTTP status code or range (100..599)")),
        }
    }
    Some(out)
}

fn http_url(f: &mut Fields) -> HttpUrl {
    let path = f.string("path").unwrap_or_else(|| "/".into());
    let sv = f.value("status");
    let status = status_set(f, sv).unwrap_or_else(|| vec![(200, 299)]);
    let digest = f.string("digest");
    if let Some(d) = &digest
        && (d.len() != 32 || !d.chars().all(|c| c.is_ascii_hexdigit()))
    {
        f.error(format!("digest '{d}' is not an MD5 hex digest (32 hex digits, as genhash prints)"));
    }
    let regex = f.string("regex");
    HttpUrl { path, status, digest, regex }
}

pub fn check(kind: &str, f: &mut Fields, ctx: &dyn Ctx) -> Option<CheckSpec> {
    let d = CheckCommon::default();
    let common = CheckCommon {
        interval: f.number("interval", 0.01, 86_400.0).unwrap_or(d.interval),
        timeout: f.number("timeout", 0.001, 3600.0).unwrap_or(d.timeout),
        retries: f.integer("retries", 0, 1000).map(|v| v as u32).unwrap_or(d.retries),
        retry_delay: f.number("retry_delay", 0.0, 3600.0).unwrap_or(d.retry_delay),
        port: f.integer("port", 1, 65535).map(|v| v as u16),
        bind: ip_field(f, "bind"),
        warmup: f.number("warmup", 0.0, 86_400.0).unwrap_or(d.warmup),
        rise: f.integer("rise", 1, 1000).map(|v| v as u32).unwrap_or(d.rise),
        fall: f.integer("fall", 1, 1000).map(|v| v as u32).unwrap_or(d.fall),
    };
    let kind = match kind {
        "tcp" => CheckKind::Tcp { send: f.string("send"), expect: f.string("expect") },
        "http" | "https" => {
            let first = http_url(f);
            let mut urls = Vec::new();
            let urls_v = f.value("urls");
            let has_own = !matches!(urls_v, Value::Nil);
            if let Value::Table(t) = urls_v {
                for u in t.sequence_values::<Table>().filter_map(|x| x.ok()) {
                    let what = format!("{} url", f.what());
                    let origin = f.origin.clone();
                    let mut uf = Fields::new(u, what, origin, f.errs);
                    urls.push(http_url(&mut uf));
                    uf.finish();
                }
            }
            if !has_own {
                urls.push(first);
            }
            let method = f.string("method").unwrap_or_else(|| "GET".into());
            CheckKind::Http {
                tls: kind == "https",
                method,
                urls,
                virtualhost: f.string("virtualhost"),
                sni: f.string("sni"),
                verify: f.flag("verify"),
            }
        }
        "udp" => CheckKind::Udp { payload: f.string("payload"), expect: f.string("expect") },
        "dns" => CheckKind::Dns {
            name: f.string("name").unwrap_or_else(|| ".".into()),
            qtype: f.string("type").unwrap_or_else(|| "SOA".into()).to_ascii_uppercase(),
        },
        // keepalived's helo_name default is the host name: resolved here, so checks need no policy.
        "smtp" => CheckKind::Smtp { helo: f.string("helo").unwrap_or_else(super::hostname) },
        "exec" => {
            let command = f.argv("command");
            let dynamic = f.flag("dynamic");
            match command {
                Some(command) => CheckKind::Exec { command, dynamic },
                None => {
                    f.error("command = { \"/path/to/program\", \"arg\", ... } is required");
                    return None;
                }
            }
        }
        _ => match f.function("run") {
            Some(run) => CheckKind::Lua { run: ctx.hook(run) },
            None => {
                f.error("run = function(rs) ... end is required");
                return None;
            }
        },
    };
    Some(CheckSpec { common, kind, origin: f.origin.clone() })
}
