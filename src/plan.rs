//! `lvsd plan`: the IPVS table and VRRP instances a policy yields, as text or JSON.

use crate::ipvs::format::{self, Format};
use crate::ipvs::table::{Family, ServiceKey, Table};
use crate::model::{InitialState, Model};
use serde_json::{Value, json};
use std::fmt::Write;

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
            v.vips.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "),
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
    let services: Vec<Value> = t
        .services
        .iter()
        .map(|(k, s)| {
            let mut v = match k {
                ServiceKey::Addr { protocol, addr } => json!({
                    "protocol": protocol, "address": addr.ip().to_string(), "port": addr.port(),
                    "family": Family::of(&addr.ip()),
                }),
                ServiceKey::Fwmark { mark, family } => json!({ "fwmark": mark, "family": family }),
            };
            let c = &s.conf;
            v["scheduler"] = json!(c.scheduler);
            v["flags"] = json!(c.flags);
            v["persistence"] = if c.persistent() { json!(c.timeout) } else { Value::Null };
            v["netmask"] = match k.family() {
                Family::Inet => json!(std::net::Ipv4Addr::from(c.netmask).to_string()),
                Family::Inet6 => json!(c.netmask),
            };
            v["pe"] = json!(c.pe_name);
            v["stats"] = stats_json(&s.stats);
            v["reals"] = s
                .dests
                .iter()
                .map(|(dk, d)| {
                    json!({
                        "address": dk.0.ip().to_string(), "port": dk.0.port(),
                        "forward": d.forward, "weight": d.weight,
                        "upper_threshold": d.u_threshold, "lower_threshold": d.l_threshold,
                        "tunnel": format::tunnel_info(d),
                        "stats": stats_json(&d.stats),
                    })
                })
                .collect();
            v
        })
        .collect();
    json!({ "services": services })
}

fn stats_json(s: &crate::ipvs::table::Stats) -> Value {
    json!({
        "conns": s.conns, "inpkts": s.inpkts, "outpkts": s.outpkts, "inbytes": s.inbytes, "outbytes": s.outbytes,
        "cps": s.cps, "inpps": s.inpps, "outpps": s.outpps, "inbps": s.inbps, "outbps": s.outbps,
        "active_conns": s.active_conns, "inact_conns": s.inact_conns, "persist_conns": s.persist_conns,
    })
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
