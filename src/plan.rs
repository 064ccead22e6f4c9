//! `lvsd plan`: the IPVS table and VRRP instances a policy yields, as text or JSON.

use crate::ipvs::format::{self, Format};
use crate::ipvs::table::{Dest, DestKey, Family, Forward, Protocol, Service, ServiceKey, Stats, Table};
use crate::model::{InitialState, Model};
use serde::{Serialize, Serializer};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

fn state_name(v: &crate::model::VrrpInstance) -> &'static str {
    // Priority 255 is the address owner: it is master whatever `state` says (RFC 3768 6.4.1).
    if v.priority == 255 || v.state == InitialState::Master { "MASTER" } else { "BACKUP" }
}

fn secs(cs: u16) -> String {
    if cs.is_multiple_of(100) { format!("{}s", cs / 100) } else { format!("{:.2}s", cs as f64 / 100.0) }
}

/// VRRP instances as an aligned table.
pub fn vrrp_text(m: &Model) -> String {
    let head = ["Name", "Interface", "VRID", "Version", "Priority", "State", "Advert", "VIPs"];
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for v in &m.vrrp {
        rows.push(vec![
            v.name.clone(),
            v.interface.clone(),
            v.vrid.to_string(),
            v.version.to_string(),
            v.priority.to_string(),
            state_name(v).to_string(),
            secs(v.advert_int_cs),
            v.vips
                .iter()
                .map(|a| a.to_string())
                .chain(v.excluded_vips.iter().map(|a| format!("{a} (excluded)")))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    let widths: Vec<usize> = (0..head.len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().enumerate().map(|(i, c)| format!("{:<w$}", c, w = widths[i])).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for g in &m.sync_groups {
        let _ = writeln!(out, "sync group {}: {}", g.name, g.instances.join(", "));
    }
    out
}

pub fn text(m: &Model, t: &Table) -> String {
    let mut out = format::table(t, Format::List);
    out.push('\n');
    if m.vrrp.is_empty() {
        out.push_str("No VRRP instances.\n");
    } else {
        out.push_str(&vrrp_text(m));
    }
    out
}

/// The table as stable JSON (also used by `status --json`).
pub fn table_json(t: &Table) -> Value {
    serde_json::to_value(TableDoc::new(t)).unwrap_or_default()
}

/// The table as [`table_json`] has it, written straight from the table: a status document of
/// 10,000 services is serialized without first becoming a tree of `Value`s.
#[derive(Serialize)]
pub struct TableDoc<'a> {
    #[serde(serialize_with = "services")]
    services: &'a BTreeMap<ServiceKey, Service>,
}

impl<'a> TableDoc<'a> {
    pub fn new(t: &'a Table) -> TableDoc<'a> {
        TableDoc { services: &t.services }
    }
}

fn services<S: Serializer>(services: &&BTreeMap<ServiceKey, Service>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(services.iter().map(|(k, svc)| ServiceDoc::new(k, svc)))
}

#[derive(Serialize)]
struct ServiceDoc<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<Protocol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fwmark: Option<u32>,
    family: Family,
    scheduler: &'a str,
    flags: u32,
    /// Null when the service is not persistent.
    persistence: Option<u32>,
    netmask: Netmask,
    pe: &'a Option<String>,
    stats: &'a Stats,
    #[serde(rename = "reals", serialize_with = "reals")]
    dests: &'a BTreeMap<DestKey, Dest>,
}

impl<'a> ServiceDoc<'a> {
    fn new(k: &ServiceKey, svc: &'a Service) -> ServiceDoc<'a> {
        let c = &svc.conf;
        let (protocol, address, port, fwmark) = match *k {
            ServiceKey::Addr { protocol, addr } => (Some(protocol), Some(addr.ip()), Some(addr.port()), None),
            ServiceKey::Fwmark { mark, .. } => (None, None, None, Some(mark)),
        };
        ServiceDoc {
            protocol,
            address,
            port,
            fwmark,
            family: k.family(),
            scheduler: &c.scheduler,
            flags: c.flags,
            persistence: c.persistent().then_some(c.timeout),
            netmask: match k.family() {
                Family::Inet => Netmask::V4(Ipv4Addr::from(c.netmask)),
                Family::Inet6 => Netmask::V6(c.netmask),
            },
            pe: &c.pe_name,
            stats: &svc.stats,
            dests: &svc.dests,
        }
    }
}

/// A dotted mask for IPv4, a prefix length for IPv6, as ipvsadm shows them.
#[derive(Serialize)]
#[serde(untagged)]
enum Netmask {
    V4(Ipv4Addr),
    V6(u32),
}

#[derive(Serialize)]
struct RealDoc<'a> {
    address: IpAddr,
    port: u16,
    forward: Forward,
    weight: u32,
    upper_threshold: u32,
    lower_threshold: u32,
    tunnel: String,
    stats: &'a Stats,
}

fn reals<S: Serializer>(dests: &&BTreeMap<DestKey, Dest>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(dests.iter().map(|(dk, d)| RealDoc {
        address: dk.0.ip(),
        port: dk.0.port(),
        forward: d.forward,
        weight: d.weight,
        upper_threshold: d.u_threshold,
        lower_threshold: d.l_threshold,
        tunnel: format::tunnel_info(d),
        stats: &d.stats,
    }))
}

pub fn json(m: &Model, t: &Table) -> Value {
    let vrrp: Vec<Value> = m
        .vrrp
        .iter()
        .map(|v| {
            json!({
                "name": v.name, "interface": v.interface, "vrid": v.vrid, "version": v.version,
                "priority": v.priority, "state": state_name(v).to_ascii_lowercase(),
                "advert_int": v.advert_int_secs(),
                "vips": v.vips.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "excluded_vips": v.excluded_vips.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "routes": v.routes.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                "auth": v.auth_pass.is_some(), "nopreempt": v.nopreempt, "preempt_delay": v.preempt_delay,
                "unicast_src": v.unicast_src, "unicast_peers": v.unicast_peers,
            })
        })
        .collect();
    let groups: Vec<Value> = m.sync_groups.iter().map(|g| json!({ "name": g.name, "instances": g.instances })).collect();
    json!({
        "version": 1,
        "node": m.node,
        "ipvs": table_json(t),
        "vrrp": vrrp,
        "sync_groups": groups,
    })
}
