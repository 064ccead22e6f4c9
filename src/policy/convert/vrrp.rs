//! `lvsd.vrrp`, tracks, sync groups and the sync daemon.

use super::global::{garp_field, notify_field};
use super::*;

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
    let mut vip = VipAddr { addr, prefix, dev: None, label: None, scope: None, broadcast: None };
    let mut brd = None;
    while let Some(k) = words.next() {
        let v = words.next().ok_or_else(|| format!("VIP '{s}': '{k}' needs a value"))?.to_string();
        match k {
            "dev" => vip.dev = Some(v),
            "label" => vip.label = Some(v),
            "scope" => vip.scope = Some(v),
            "brd" | "broadcast" => brd = Some(v),
            other => return Err(format!("VIP '{s}': unknown option '{other}' (valid: dev, label, scope, brd)")),
        }
    }
    if let Some(b) = brd {
        set_broadcast(&mut vip, &b)?;
    }
    Ok(vip)
}

/// `brd ADDRESS`, or as ip(8) and keepalived read them `brd +` (the host bits set) and `brd -`
/// (the host bits clear), which need a prefix of 30 or less.
pub fn set_broadcast(vip: &mut VipAddr, spec: &str) -> Result<(), String> {
    let IpAddr::V4(a) = vip.addr else {
        return Err(format!("VIP {}: IPv6 addresses have no broadcast address", vip.addr));
    };
    let host_bits = u32::MAX.checked_shr(u32::from(vip.prefix)).unwrap_or(0);
    vip.broadcast = Some(match spec {
        "+" | "-" if vip.prefix > 30 => {
            return Err(format!("VIP {}/{}: brd {spec} needs a prefix of 30 or less", vip.addr, vip.prefix));
        }
        "+" => (u32::from(a) | host_bits).into(),
        "-" => (u32::from(a) & !host_bits).into(),
        b => b.parse().map_err(|_| format!("VIP {}: brd '{b}' is not an IPv4 address, + or -", vip.addr))?,
    });
    Ok(())
}

/// "203.0.113.0/24 via 192.0.2.254 dev eth0 src 192.0.2.100 scope link table 100 metric 5",
/// "blackhole 198.51.100.0/24", "default via 192.0.2.254": a route as `ip route add` takes it
/// (`gw` for via, `preference` or `priority` for metric, as keepalived also reads them).
pub fn parse_route(s: &str) -> Result<VirtualRoute, String> {
    let mut words = s.split_whitespace().peekable();
    let kind = match words.peek().copied() {
        Some("blackhole") => RouteType::Blackhole,
        Some("unreachable") => RouteType::Unreachable,
        Some("prohibit") => RouteType::Prohibit,
        _ => RouteType::Unicast,
    };
    if kind != RouteType::Unicast {
        words.next();
    }
    if words.peek() == Some(&"to") {
        words.next();
    }
    let dst_word = words.next().ok_or_else(|| format!("route '{s}': no destination"))?;
    let mut r = VirtualRoute {
        kind,
        dst: IpAddr::from([0, 0, 0, 0]),
        prefix: 0,
        via: None,
        dev: None,
        src: None,
        scope: None,
        table: None,
        metric: None,
    };
    let ip = |w: &str| w.parse::<IpAddr>().map_err(|_| format!("route '{s}': '{w}' is not an IP address"));
    let num = |w: &str| w.parse::<u32>().map_err(|_| format!("route '{s}': '{w}' is not a number"));
    while let Some(k) = words.next() {
        let v = words.next().ok_or_else(|| format!("route '{s}': '{k}' needs a value"))?;
        match k {
            "via" | "gw" => r.via = Some(ip(v)?),
            "dev" => r.dev = Some(v.to_string()),
            "src" => r.src = Some(ip(v)?),
            "scope" if ["host", "link", "site", "global"].contains(&v) => r.scope = Some(v.to_string()),
            "scope" => return Err(format!("route '{s}': unknown scope '{v}' (valid: host, link, site, global)")),
            "table" => r.table = Some(if v == "main" { 254 } else { num(v)? }),
            "metric" | "preference" | "priority" => r.metric = Some(num(v)?),
            other => {
                return Err(format!("route '{s}': unknown option '{other}' (valid: via, dev, src, scope, table, metric)"));
            }
        }
    }
    // "default" is the family of the gateway or source given with it (IPv4 without either).
    let v6 = r.via.or(r.src).is_some_and(|a| a.is_ipv6());
    let (dst, prefix) = match dst_word.split_once('/') {
        _ if dst_word == "default" => (if v6 { IpAddr::from([0u16; 8]) } else { IpAddr::from([0u8; 4]) }, Some(0)),
        Some((a, p)) => (ip(a)?, Some(p.parse::<u8>().map_err(|_| format!("route '{s}': bad prefix length '{p}'"))?)),
        None => (ip(dst_word)?, None),
    };
    let max = if dst.is_ipv4() { 32 } else { 128 };
    r.dst = dst;
    r.prefix = prefix.unwrap_or(max);
    if r.prefix > max {
        return Err(format!("route '{s}': prefix length {} is more than {max}", r.prefix));
    }
    for a in [r.via, r.src].into_iter().flatten() {
        if a.is_ipv4() != dst.is_ipv4() {
            return Err(format!("route '{s}': {a} is not of the destination's family"));
        }
    }
    if kind != RouteType::Unicast && (r.via.is_some() || r.dev.is_some()) {
        let word = s.split_whitespace().next().unwrap_or_default();
        return Err(format!("route '{s}': a {word} route takes no via or dev"));
    }
    if kind == RouteType::Unicast && r.via.is_none() && r.dev.is_none() {
        return Err(format!("route '{s}': give via ADDRESS or dev INTERFACE"));
    }
    Ok(r)
}

fn routes_field(f: &mut Fields) -> Vec<VirtualRoute> {
    let mut out = Vec::new();
    for s in f.strings("routes").unwrap_or_default() {
        match parse_route(&s) {
            Ok(r) => out.push(r),
            Err(e) => f.error(e),
        }
    }
    out
}

/// `vips` or `excluded_vips`: a list of VIP strings or tables (or one string).
fn vips_field(f: &mut Fields, key: &'static str) -> Vec<VipAddr> {
    let t = match f.value(key) {
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
            f.error(format!("{key} must be a list of addresses, not a {}", other.type_name()));
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
                let mut vf = f.nested(t, "vip");
                let addr = vf.string("address");
                let prefix = vf.integer("prefix", 1, 128);
                let dev = vf.string("dev");
                let label = vf.string("label");
                let scope = vf.string("scope");
                let brd = vf.string("broadcast");
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
                        if let Some(b) = brd
                            && let Err(e) = set_broadcast(&mut v, &b)
                        {
                            f.error(e);
                        }
                        out.push(v);
                    }
                    Err(e) => f.error(e),
                }
            }
            other => f.error(format!("{key} entries must be strings or tables, not a {}", other.type_name())),
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
    let vips = vips_field(f, "vips");
    let excluded_vips = vips_field(f, "excluded_vips");
    let routes = routes_field(f);
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
    let dont_track_primary = f.flag("dont_track_primary");
    let skip_check_adv_addr = f.flag("skip_check_adv_addr");
    let vmac = vmac_field(f, vrid, unicast_peers.is_empty());
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
        excluded_vips,
        routes,
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
        dont_track_primary,
        skip_check_adv_addr,
        vmac,
        on_change,
        origin: f.origin.clone(),
    })
}

/// `use_vmac = true` (named `vrrp.VRID`, keepalived's default) or `use_vmac = "NAME"`, and
/// `vmac_xmit_base = true`.
fn vmac_field(f: &mut Fields, vrid: Option<i64>, multicast: bool) -> Option<Vmac> {
    let name = match f.value("use_vmac") {
        Value::Nil | Value::Boolean(false) => None,
        Value::Boolean(true) => vrid.map(|id| format!("vrrp.{id}")),
        Value::String(s) => {
            let s = s.to_string_lossy();
            // The kernel's rule for link names (dev_valid_name): 1..15 bytes, no '/', ':'
            // or white space, not "." or "..".
            let valid =
                !s.is_empty() && s.len() < 16 && s != "." && s != ".." && !s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace());
            if !valid {
                f.error(format!("use_vmac: {s:?} is not a usable interface name (1 to 15 characters, no '/', ':' or spaces)"));
            }
            valid.then_some(s)
        }
        other => {
            f.error(format!("use_vmac must be true or an interface name, not a {}", other.type_name()));
            None
        }
    };
    let xmit_base = f.flag("vmac_xmit_base");
    let Some(name) = name else {
        if xmit_base {
            f.error("vmac_xmit_base applies to an instance with use_vmac");
        }
        return None;
    };
    if !multicast && !xmit_base {
        // keepalived forces it ("unicast with use_vmac requires vmac_xmit_base").
        f.error("use_vmac with unicast_peers needs vmac_xmit_base = true (adverts to peers leave from the instance's own interface)");
    }
    Some(Vmac { name, xmit_base })
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
            Value::String(s) => out.push(TrackInterface { name: s.to_string_lossy(), weight: 0, reverse: false }),
            Value::Table(t) => {
                let mut tf = f.nested(t, "track_interfaces");
                let name = tf.string("name");
                let weight = tf.integer("weight", -254, 254).unwrap_or(0) as i32;
                let reverse = tf.flag("reverse");
                tf.finish();
                match name {
                    Some(name) => out.push(TrackInterface { name, weight, reverse }),
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
        "file" => file_track(f),
        "process" => process_track(f),
        _ => f.function("run").map(|r| TrackKind::Lua { run: ctx.hook(r) }),
    };
    let interval = f.number("interval", 0.01, 86_400.0).unwrap_or(1.0);
    let timeout = f.number("timeout", 0.0, 86_400.0).unwrap_or(0.0);
    // keepalived's default weight is 0 for a script and 1 for a file.
    let weight = f.integer("weight", -254, 254).unwrap_or(if kind == "file" { 1 } else { 0 }) as i32;
    let reverse = f.flag("reverse");
    // A file's number counts as soon as it is read: no rise or fall.
    let (rise, fall) = match kind {
        "file" => (1, 1),
        _ => (f.integer("rise", 1, 1000).unwrap_or(1) as u32, f.integer("fall", 1, 1000).unwrap_or(1) as u32),
    };
    let init_fail = matches!(kind, "exec" | "lua") && f.flag("init_fail");
    match kind {
        _ if k.is_some() => {}
        "exec" => f.error("command = { \"/path/to/program\", ... } is required"),
        // Said by file_track and process_track.
        "file" | "process" => {}
        _ => f.error("run = function() ... end is required"),
    }
    Some(Track { name, kind: k?, interval, timeout, weight, reverse, rise, fall, init_fail, origin: f.origin.clone() })
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

/// `lvsd.track.process { process = "haproxy", params = { ... }, param_match = "exact",
/// full_command = false, quorum = 1, quorum_max = ... }`, with keepalived's defaults: no
/// arguments compared unless given (then exactly, and against the program as started).
fn process_track(f: &mut Fields) -> Option<TrackKind> {
    use crate::vrrp::track_process::ParamMatch;
    let process = f.string("process");
    f.require("process", &process, "the process's name, or with full_command its program");
    let params = f.strings("params");
    let param_match = match f.string("param_match").as_deref() {
        None if params.is_some() => ParamMatch::Exact,
        None => ParamMatch::None,
        Some("exact") => ParamMatch::Exact,
        Some("initial") => ParamMatch::Initial,
        Some("partial") => ParamMatch::Partial,
        Some(other) => {
            f.error(format!("unknown param_match '{other}' (valid: exact, initial, partial)"));
            ParamMatch::Exact
        }
    };
    // Arguments are read from the command line, so comparing them compares the program too.
    let full_command = f.flag("full_command") || param_match != ParamMatch::None;
    let quorum = f.integer("quorum", 0, 65535).unwrap_or(1) as u32;
    let quorum_max = f.integer("quorum_max", 0, 65535).map(|n| n as u32).unwrap_or(u32::MAX);
    if quorum > quorum_max {
        f.error(format!("quorum {quorum} is more than quorum_max {quorum_max}"));
    }
    Some(TrackKind::Process { process: process?, params, param_match, full_command, quorum, quorum_max })
}

/// `lvsd.track.file { path = "/..." }`: an absolute path (the daemon's working directory is
/// not the policy's).
fn file_track(f: &mut Fields) -> Option<TrackKind> {
    let path = f.string("path");
    f.require("path", &path, "the file's absolute path");
    let path = path?;
    if !path.starts_with('/') {
        f.error(format!("path '{path}' must be absolute"));
        return None;
    }
    Some(TrackKind::File { path: path.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_read_as_ip_route_takes_them() {
        for (given, shown) in [
            ("203.0.113.0/24 via 192.0.2.254 dev eth0", "203.0.113.0/24 via 192.0.2.254 dev eth0"),
            ("to 203.0.113.0/24 gw 192.0.2.254 preference 5", "203.0.113.0/24 via 192.0.2.254 metric 5"),
            ("198.51.100.7 dev eth1 scope link src 198.51.100.1", "198.51.100.7/32 dev eth1 src 198.51.100.1 scope link"),
            ("blackhole 198.51.100.0/24 table 100", "blackhole 198.51.100.0/24 table 100"),
            ("default via 192.0.2.254 table main", "0.0.0.0/0 via 192.0.2.254 table 254"),
            ("default via 2001:db8::1", "::/0 via 2001:db8::1"),
            ("unreachable 2001:db8:5::/48", "unreachable 2001:db8:5::/48"),
        ] {
            assert_eq!(parse_route(given).map(|r| r.to_string()).as_deref(), Ok(shown), "{given}");
        }
        for (given, error) in [
            ("203.0.113.0/24", "give via ADDRESS or dev INTERFACE"),
            ("203.0.113.0/33 dev eth0", "prefix length 33 is more than 32"),
            ("203.0.113.0/24 via 2001:db8::1", "2001:db8::1 is not of the destination's family"),
            ("blackhole 203.0.113.0/24 dev eth0", "a blackhole route takes no via or dev"),
            ("203.0.113.0/24 dev", "'dev' needs a value"),
            ("203.0.113.0/24 dev eth0 onlink x", "unknown option 'onlink'"),
            ("203.0.113.0/24 dev eth0 scope nowhere", "unknown scope 'nowhere'"),
            ("", "no destination"),
        ] {
            let e = parse_route(given).unwrap_err();
            assert!(e.contains(error), "{given}: {e}");
        }
    }
}
