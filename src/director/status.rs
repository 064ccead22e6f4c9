//! The director's view as a stable JSON document, with a text rendering in it.

use super::Director;
use crate::ipvs::format::{self, Format};
use crate::ipvs::table::{DestKey, Table};
use crate::desired::service_key;
use serde_json::{json, Value};
use std::fmt::Write;

pub const STATUS_VERSION: u32 = 1;

pub fn build(d: &Director, actual: Option<&Table>) -> Value {
    let m = &d.policy.model;
    let mut services = Vec::new();
    for (si, vs) in m.services.iter().enumerate() {
        let key = service_key(&vs.vip);
        let live = actual.and_then(|t| t.services.get(&key));
        let reals: Vec<Value> = vs
            .reals
            .iter()
            .enumerate()
            .map(|(ri, r)| {
                let id = (vs.name.clone(), r.addr);
                let in_table = live.and_then(|s| s.dests.get(&DestKey(r.addr)));
                json!({
                    "address": r.addr.to_string(),
                    "configured_weight": r.weight,
                    "weight": in_table.map(|x| x.weight),
                    "in_table": in_table.is_some(),
                    "health": match d.real_state(si, ri) { crate::desired::RealState::Down => "down", _ if d.drained.contains(&id) => "drained", _ => "up" },
                    "drained": d.drained.contains(&id),
                    "weight_override": d.weight_overrides.get(&id),
                    "state": format!("{:?}", d.real_state(si, ri)).to_ascii_lowercase(),
                    "active_conns": in_table.map(|x| x.stats.active_conns),
                    "inact_conns": in_table.map(|x| x.stats.inact_conns),
                })
            })
            .collect();
        services.push(json!({
            "name": vs.name,
            "vip": format::service_name(&key),
            "scheduler": vs.scheduler,
            "in_table": live.is_some(),
            "reals": reals,
        }));
    }
    let vrrp: Vec<Value> = match &d.vrrp {
        Some(v) => v.status(),
        None => m
            .vrrp
            .iter()
            .map(|v| {
                json!({
                    "name": v.name, "interface": v.interface, "vrid": v.vrid, "version": v.version,
                    "priority": v.priority, "state": "not running",
                    "vips": v.vips.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                })
            })
            .collect(),
    };
    let mut doc = json!({
        "version": STATUS_VERSION,
        "node": m.node,
        "policy": d.opts.policy.display().to_string(),
        "generation": d.generation,
        "last_reload": d.last_reload,
        "reloads": { "ok": d.reloads_ok, "failed": d.reloads_failed },
        "backend": d.opts.backend_name,
        "ipvs_writes": d.backend.writes(),
        "vrrp": vrrp,
        "services": services,
        "ipvs": actual.map(crate::plan::table_json),
    });
    doc["text"] = json!(text(d, actual));
    doc
}

/// ipvsadm-style lines with health, drain state and the configured weight beside them.
fn text(d: &Director, actual: Option<&Table>) -> String {
    let m = &d.policy.model;
    let mut out = String::new();
    let r = &d.last_reload;
    let _ = writeln!(
        out,
        "lvsd on {}: policy {} generation {} ({}), IPVS backend {}",
        m.node,
        d.opts.policy.display(),
        d.generation,
        if r.ok { "last reload ok".to_string() } else { format!("LAST RELOAD FAILED: {}", r.errors.join("; ")) },
        d.opts.backend_name
    );
    if let Some(v) = d.vrrp.as_ref().filter(|v| !v.is_empty()) {
        out.push('\n');
        let _ = writeln!(out, "{:<12} {:<10} {:>4} {:<7} {:>8}  {:<22} {:>6} {:>6} {:>7}", "VRRP", "Interface", "VRID", "State", "Priority", "Master", "Sent", "Recv", "Dropped");
        for i in v.status() {
            let dropped: u64 = i["dropped"].as_object().map(|m| m.values().filter_map(|x| x.as_u64()).sum()).unwrap_or(0);
            let master = match &i["master"] {
                Value::Null => if i["state"] == "master" { "(us)".to_string() } else { "-".to_string() },
                m => format!("{} ({})", m["address"].as_str().unwrap_or("?"), m["priority"]),
            };
            let _ = writeln!(
                out,
                "{:<12} {:<10} {:>4} {:<7} {:>8}  {:<22} {:>6} {:>6} {:>7}{}",
                i["name"].as_str().unwrap_or(""),
                i["interface"].as_str().unwrap_or("-"),
                i["vrid"],
                i["state"].as_str().unwrap_or(""),
                i["priority"],
                master,
                i["adverts_sent"],
                i["adverts_received"],
                dropped,
                i["error"].as_str().map(|e| format!("  {e}")).unwrap_or_default(),
            );
        }
    }
    out.push('\n');
    let Some(actual) = actual else {
        out.push_str("IPVS table: cannot be read\n");
        return out;
    };
    let list = format::table(actual, Format::List);
    let mut lines = list.lines();
    let _ = writeln!(out, "{}", lines.next().unwrap_or(""));
    // ipvsadm's InActConn column is 10 wide, its title 9.
    let _ = writeln!(out, "{}   Health  Config  Note", lines.next().unwrap_or(""));
    for (key, svc) in &actual.services {
        let vs = m.services.iter().find(|s| service_key(&s.vip) == *key);
        let one = {
            let mut t = Table::default();
            t.services.insert(*key, svc.clone());
            format::table(&t, Format::List)
        };
        let mut body = one.lines().skip(2);
        let head = body.next().unwrap_or("");
        let _ = writeln!(out, "{}{}", head, if vs.is_none() { "  (not in the policy)" } else { "" });
        for (dk, line) in svc.dests.keys().zip(body) {
            let real = vs.and_then(|vs| vs.reals.iter().find(|r| r.addr == dk.0).map(|r| (vs, r)));
            let (health, config, note) = match real {
                None => ("-", "-".to_string(), "sorry server or not in the policy".to_string()),
                Some((vs, r)) => {
                    let id = (vs.name.clone(), r.addr);
                    let mut note = Vec::new();
                    if d.drained.contains(&id) {
                        note.push("drained".to_string());
                    }
                    if let Some(w) = d.weight_overrides.get(&id) {
                        note.push(format!("weight forced to {w}"));
                    }
                    let health = match d.real_index(&id).map(|(si, ri)| d.real_state(si, ri)) {
                        Some(crate::desired::RealState::Down) => "down",
                        _ => "up",
                    };
                    (health, r.weight.to_string(), note.join(", "))
                }
            };
            let _ = writeln!(out, "{line}  {health:<6}  {config:<6}  {note}").map(|_| ());
        }
    }
    for vs in &m.services {
        if !actual.services.contains_key(&service_key(&vs.vip)) {
            let _ = writeln!(out, "{}  (in the policy, not in the table)", format::service_name(&service_key(&vs.vip)));
        }
    }
    out.lines().map(str::trim_end).collect::<Vec<_>>().join("\n") + "\n"
}
