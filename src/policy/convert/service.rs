//! `lvsd.service`: the virtual service, its reals and its sorry server.

use super::bgp::announce_field;
use super::*;

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
    let checks = checks_field(f, ctx).unwrap_or_default().into();
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

/// What a real inherits from its service.
struct RealDefaults {
    forward: ForwardMethod,
    tunnel: Tunnel,
    checks: std::sync::Arc<[std::sync::Arc<CheckSpec>]>,
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
    // Sized once (grown by pushes, 40 reals left room for 64: 1.2 MiB unused at 10,000
    // reals), at most 4,096 ahead of what is read: the length is the policy's to say.
    let mut out = Vec::with_capacity(t.raw_len().min(4096));
    let origin = std::sync::Arc::new(f.origin.clone());
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
            origin: origin.clone(),
        };
        match item {
            Value::String(s) => match parse_addr_port(&s.to_string_lossy(), d.default_port) {
                Ok(a) => out.push(base(a)),
                Err(e) => f.error(format!("real server {e}")),
            },
            Value::Table(t) => {
                let mut rf = f.nested(t, "real");
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
                    r.checks = c.into();
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
    // Entries in error were not pushed.
    out.shrink_to_fit();
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
            let mut sf = f.nested(t, "sorry_server");
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
