//! `lvsd.bgp` and a service's `announce`.

use super::*;
use std::net::Ipv4Addr;

/// "65000:100" -> (65000, 100): a standard community (RFC 1997), two 16-bit halves.
fn parse_community(s: &str) -> Result<(u16, u16), String> {
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

/// `bfd = true | false | { interval = SECONDS, multiplier = N }` (a table turns BFD on).
fn bfd_field(nf: &mut Fields) -> (bool, Option<u32>, Option<u8>) {
    match nf.value("bfd") {
        Value::Nil | Value::Boolean(false) => (false, None, None),
        Value::Boolean(true) => (true, None, None),
        Value::Table(t) => {
            let mut bf = nf.nested(t, "bfd");
            // RFC 5880 6.8.2: intervals in microseconds; BIRD takes whole milliseconds here.
            let interval = bf.number("interval", 0.001, 60.0).map(|s| (s * 1000.0).round() as u32);
            // RFC 5880 4.1: Detect Mult is 8 bits and must not be zero.
            let multiplier = bf.integer("multiplier", 1, 255).map(|v| v as u8);
            bf.finish();
            (true, interval, multiplier)
        }
        other => {
            nf.error(format!("bfd must be true, false or {{ interval = SECONDS, multiplier = N }}, not a {}", other.type_name()));
            (false, None, None)
        }
    }
}

/// `error_wait = { min = SECONDS, max = SECONDS }`.
fn error_wait_field(nf: &mut Fields) -> Option<(u16, u16)> {
    let mut ef = nf.table("error_wait", "a table { min = SECONDS, max = SECONDS }")?;
    let min = ef.integer("min", 1, 65535).map(|v| v as u16);
    let max = ef.integer("max", 1, 65535).map(|v| v as u16);
    ef.require("min", &min, "the first wait after a failure, in seconds (BIRD's default 60)");
    ef.require("max", &max, "the longest wait after failures in a row, in seconds (BIRD's default 300)");
    if let (Some(a), Some(b)) = (min, max)
        && a > b
    {
        ef.error(format!("min = {a} is above max = {b}"));
    }
    ef.finish();
    Some((min?, max?))
}

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
        let mut nf = f.nested(t, "neighbor");
        let address = ip_field(&mut nf, "address");
        let asn = nf.integer("as", 1, u32::MAX as i64).map(|v| v as u32);
        let (bfd, bfd_interval_ms, bfd_multiplier) = bfd_field(&mut nf);
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
        let connect_retry = nf.integer("connect_retry", 1, 65535).map(|v| v as u16);
        let connect_delay = nf.integer("connect_delay", 0, 65535).map(|v| v as u16);
        let error_wait = error_wait_field(&mut nf);
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
            out.push(Neighbor {
                address,
                asn,
                bfd,
                bfd_interval_ms,
                bfd_multiplier,
                hold,
                keepalive,
                connect_retry,
                connect_delay,
                error_wait,
                source,
                multihop,
                password,
            });
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
pub(super) fn announce_field(f: &mut Fields, ctx: &dyn Ctx) -> Option<Announce> {
    let plain = |when| Some(Announce { when, communities: Vec::new(), med: None });
    match f.value("announce") {
        Value::Nil | Value::Boolean(false) => None,
        Value::Boolean(true) => plain(AnnounceWhen::Quorum),
        Value::Function(h) => plain(AnnounceWhen::Function(ctx.hook(h))),
        Value::Table(t) => {
            let mut af = f.nested(t, "announce");
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
