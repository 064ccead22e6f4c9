//! Lua declaration tables -> model structs. Each function reads every key it knows (so that
//! unknown keys are reported with the list of valid ones) and records errors instead of
//! stopping.

use super::fields::{Fields, int_value};
use crate::ipvs::table::{Family, Protocol, TunnelType};
use crate::model::*;
use mlua::{Function, Table, Value};
use std::net::{IpAddr, SocketAddr};

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
    fn check(&self, i: usize) -> Option<std::sync::Arc<CheckSpec>>;
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
    let mut tf = f.table(key, "a table { type = \"ipip\"|\"gue\"|\"gre\", port, csum }")?;
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
fn checks_field(f: &mut Fields, ctx: &dyn Ctx) -> Option<Vec<std::sync::Arc<CheckSpec>>> {
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

mod bgp;
mod check;
mod global;
mod service;
mod vrrp;
pub use bgp::bgp;
pub use check::check;
pub use global::global;
pub use service::service;
pub use vrrp::{parse_route, parse_vip, sync_daemon, sync_group, track, vrrp};
