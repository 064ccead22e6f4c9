//! The director's view as a stable JSON document, with a text rendering in it.
//!
//! The director takes a [`Snapshot`] (plain data, cheap to copy) on its event loop; the
//! document is built from it elsewhere, so a big policy's status never holds up VRRP.

use super::{RealId, ReloadStatus};
use crate::desired::{RealState, service_key};
use crate::ipvs::format::{self, Format};
use crate::ipvs::table::{DestKey, ServiceKey, Table};
use crate::model::Model;
use crate::plan::TableDoc;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

pub const STATUS_VERSION: u32 = 1;

/// Everything the status document shows, copied out of the director.
pub struct Snapshot {
    pub model: Model,
    pub policy: String,
    pub generation: u64,
    pub last_reload: ReloadStatus,
    pub reloads: (u64, u64),
    pub backend: &'static str,
    pub writes: u64,
    /// VRRP instances as `Vrrp::status` reports them (None: VRRP not running).
    pub vrrp: Option<Vec<Value>>,
    /// Each real's state, by service and real index.
    pub states: Vec<Vec<RealState>>,
    pub drained: HashSet<RealId>,
    pub overrides: HashMap<RealId, u32>,
    /// Seconds until a draining entry of the table is removed (drain_timeout).
    pub leaving: HashMap<(ServiceKey, DestKey), u64>,
    /// The backend's table (None: it could not be read).
    pub actual: Option<Table>,
    /// Services held out of the table by `ha_suspend`, by name.
    pub suspended: HashSet<String>,
    /// BGP announcements and sessions (`crate::bgp::Status` plus `drain`); None: no BGP.
    pub bgp: Option<Value>,
    /// The connection sync daemons (null: the policy asks for none).
    pub sync: Value,
}

impl Snapshot {
    fn state(&self, si: usize, ri: usize) -> RealState {
        self.states.get(si).and_then(|s| s.get(ri)).copied().unwrap_or(RealState::Down)
    }
}

/// One service in the status document (`services[]`). Typed, so that the metrics page reads
/// the same fields the document is written from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub vip: String,
    pub scheduler: String,
    pub in_table: bool,
    pub ha_suspended: bool,
    pub reals: Vec<RealStatus>,
}

/// One configured real server of a service (`services[].reals[]`), in the table or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealStatus {
    pub address: String,
    pub configured_weight: u32,
    /// Its weight in the IPVS table; None: not in the table.
    pub weight: Option<u32>,
    pub in_table: bool,
    /// "up", "down" or "drained".
    pub health: String,
    pub drained: bool,
    pub weight_override: Option<u32>,
    /// The director's state of it: "up", "down" or "draining".
    pub state: String,
    pub active_conns: Option<u32>,
    pub inact_conns: Option<u32>,
    /// Seconds until a draining entry is removed from the table.
    pub removal_in: Option<u64>,
}

fn services(d: &Snapshot) -> Vec<ServiceStatus> {
    let m = &d.model;
    let actual = d.actual.as_ref();
    let mut services = Vec::new();
    for (si, vs) in m.services.iter().enumerate() {
        let key = service_key(&vs.vip);
        let live = actual.and_then(|t| t.services.get(&key));
        let reals = vs
            .reals
            .iter()
            .enumerate()
            .map(|(ri, r)| {
                let id = (vs.name.clone(), r.addr);
                let in_table = live.and_then(|s| s.dests.get(&DestKey(r.addr)));
                let state = d.state(si, ri);
                RealStatus {
                    address: r.addr.to_string(),
                    configured_weight: r.weight,
                    weight: in_table.map(|x| x.weight),
                    in_table: in_table.is_some(),
                    health: match state {
                        RealState::Down => "down",
                        _ if d.drained.contains(&id) => "drained",
                        _ => "up",
                    }
                    .to_string(),
                    drained: d.drained.contains(&id),
                    weight_override: d.overrides.get(&id).copied(),
                    state: format!("{state:?}").to_ascii_lowercase(),
                    active_conns: in_table.map(|x| x.stats.active_conns),
                    inact_conns: in_table.map(|x| x.stats.inact_conns),
                    removal_in: d.leaving.get(&(key, DestKey(r.addr))).copied(),
                }
            })
            .collect();
        services.push(ServiceStatus {
            name: vs.name.clone(),
            vip: format::service_name(&key),
            scheduler: vs.scheduler.clone(),
            in_table: live.is_some(),
            ha_suspended: d.suspended.contains(&vs.name),
            reals,
        });
    }
    services
}

/// The document as a `Value`, for callers in the process that read fields of it.
pub fn build(d: &Snapshot) -> Value {
    serde_json::to_value(Doc::new(d, false)).unwrap_or_default()
}

/// The document as JSON text, written straight from the snapshot: at 10,000 services a tree
/// of `Value`s first cost ten times the time and memory of the text itself.
pub fn render(d: &Snapshot, brief: bool) -> Result<Box<RawValue>, serde_json::Error> {
    serde_json::value::to_raw_value(&Doc::new(d, brief))
}

/// Only the document's version and text: what `lvsd status` prints, without the 15 times
/// larger rest of the document (at 10,000 services, 3 of 51 MB).
pub fn render_text(d: &Snapshot) -> Result<Box<RawValue>, serde_json::Error> {
    serde_json::value::to_raw_value(&json!({ "version": STATUS_VERSION, "text": text(d) }))
}

/// The status document (`lvsd status --json`, version [`STATUS_VERSION`]).
#[derive(Serialize)]
struct Doc<'a> {
    version: u32,
    build: Value,
    node: &'a str,
    policy: &'a str,
    generation: u64,
    last_reload: &'a ReloadStatus,
    reloads: Reloads,
    backend: &'a str,
    ipvs_writes: u64,
    vrrp: Vec<Value>,
    /// Left out of a brief document (as are `ipvs` and `text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    services: Option<Vec<ServiceStatus>>,
    /// None inside: the table could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    ipvs: Option<Option<TableDoc<'a>>>,
    bgp: &'a Option<Value>,
    sync_daemon: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

#[derive(Serialize)]
struct Reloads {
    ok: u64,
    failed: u64,
}

impl<'a> Doc<'a> {
    fn new(d: &'a Snapshot, brief: bool) -> Doc<'a> {
        let m = &d.model;
        let vrrp = match &d.vrrp {
            Some(v) => v.clone(),
            None => m
                .vrrp
                .iter()
                .map(|v| {
                    json!({
                        "name": v.name, "interface": v.interface, "vrid": v.vrid, "version": v.version,
                        "priority": v.priority, "state": "not running",
                        "vips": v.vips.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                        "excluded_vips": v.excluded_vips.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                        "routes": v.routes.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        };
        Doc {
            version: STATUS_VERSION,
            build: crate::build_info::json(),
            node: &m.node,
            policy: &d.policy,
            generation: d.generation,
            last_reload: &d.last_reload,
            reloads: Reloads { ok: d.reloads.0, failed: d.reloads.1 },
            backend: d.backend,
            ipvs_writes: d.writes,
            vrrp,
            services: (!brief).then(|| services(d)),
            ipvs: (!brief).then(|| d.actual.as_ref().map(TableDoc::new)),
            bgp: &d.bgp,
            sync_daemon: &d.sync,
            text: (!brief).then(|| text(d)),
        }
    }
}

/// ipvsadm-style lines with health, drain state and the configured weight beside them.
fn text(d: &Snapshot) -> String {
    let m = &d.model;
    let mut out = String::new();
    let r = &d.last_reload;
    let _ = writeln!(
        out,
        "lvsd on {}: policy {} generation {} ({}), IPVS backend {}",
        m.node,
        d.policy,
        d.generation,
        if r.ok { "last reload ok".to_string() } else { format!("LAST RELOAD FAILED: {}", r.errors.join("; ")) },
        d.backend
    );
    if let Some(v) = d.vrrp.as_ref().filter(|v| !v.is_empty()) {
        out.push('\n');
        let _ = writeln!(
            out,
            "{:<12} {:<10} {:>4} {:<7} {:>8}  {:<22} {:>6} {:>6} {:>7}",
            "VRRP", "Interface", "VRID", "State", "Priority", "Master", "Sent", "Recv", "Dropped"
        );
        for i in v {
            let dropped: u64 = i["dropped"].as_object().map(|m| m.values().filter_map(|x| x.as_u64()).sum()).unwrap_or(0);
            let master = match &i["master"] {
                Value::Null => {
                    if i["state"] == "master" {
                        "(us)".to_string()
                    } else {
                        "-".to_string()
                    }
                }
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
    if let Some(b) = &d.bgp {
        bgp_text(&mut out, b);
    }
    out.push('\n');
    let Some(actual) = d.actual.as_ref() else {
        out.push_str("IPVS table: cannot be read\n");
        // Still every configured real, with what the director knows of it.
        for (si, vs) in m.services.iter().enumerate() {
            let _ = writeln!(out, "{}", format::service_name(&service_key(&vs.vip)));
            missing_reals(&mut out, d, si, None, "(table unknown)");
        }
        return out;
    };
    let mut title = format::title(Format::List).lines();
    let _ = writeln!(out, "{}", title.next().unwrap_or(""));
    // ipvsadm's InActConn column is 10 wide, its title 9.
    let _ = writeln!(out, "{}   Health  Config  Note", title.next().unwrap_or(""));
    let by_key: HashMap<ServiceKey, usize> = m.services.iter().enumerate().map(|(si, vs)| (service_key(&vs.vip), si)).collect();
    let mut line = String::new();
    for (key, svc) in &actual.services {
        let si = by_key.get(key).copied();
        line.clear();
        format::service_line(&mut line, key, svc, Format::List);
        let _ = writeln!(out, "{}{}", line.trim_end(), if si.is_none() { "  (not in the policy)" } else { "" });
        for (dk, dest) in &svc.dests {
            line.clear();
            format::dest_line(&mut line, dk, dest, Format::List);
            let real = si.and_then(|si| m.services[si].reals.iter().position(|r| r.addr == dk.0).map(|ri| (si, ri)));
            let mut note = Vec::new();
            let (health, config) = match real {
                None => {
                    note.push("sorry server or not in the policy".to_string());
                    ("-", "-".to_string())
                }
                Some((si, ri)) => {
                    let vs = &m.services[si];
                    let id = (vs.name.clone(), dk.0);
                    if d.drained.contains(&id) {
                        note.push("drained".to_string());
                    }
                    if let Some(w) = d.overrides.get(&id) {
                        note.push(format!("weight forced to {w}"));
                    }
                    let health = if d.state(si, ri) == RealState::Down { "down" } else { "up" };
                    (health, vs.reals[ri].weight.to_string())
                }
            };
            if let Some(secs) = d.leaving.get(&(*key, *dk)) {
                note.push(format!("draining, removed in {secs} s"));
            }
            let _ = writeln!(out, "{}  {health:<6}  {config:<6}  {}", line.trim_end(), note.join(", "));
        }
        if let Some(si) = si {
            missing_reals(&mut out, d, si, Some(svc), "(not in the table)");
        }
    }
    for (si, vs) in m.services.iter().enumerate() {
        if !actual.services.contains_key(&service_key(&vs.vip)) {
            let why = if d.suspended.contains(&vs.name) {
                "suspended by ha_suspend: not master of its VIP"
            } else {
                "in the policy, not in the table"
            };
            let _ = writeln!(out, "{}  ({why})", format::service_name(&service_key(&vs.vip)));
            missing_reals(&mut out, d, si, None, "(not in the table)");
        }
    }
    out.lines().map(str::trim_end).collect::<Vec<_>>().join("\n") + "\n"
}

/// The BGP part: BIRD, each session, each VIP's route, and a director drain.
fn bgp_text(out: &mut String, b: &Value) {
    out.push('\n');
    let bird = if b["bird_up"] == true { "up".to_string() } else { "DOWN".to_string() };
    let _ = writeln!(
        out,
        "BGP via BIRD {} ({}){}",
        b["socket"].as_str().unwrap_or(""),
        bird,
        b["error"].as_str().map(|e| format!(": {e}")).unwrap_or_default()
    );
    let _ = writeln!(out, "{:<16} {:<28} {:<6} {:<5} Info", "Neighbor", "Protocol", "State", "BFD");
    for s in b["sessions"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<16} {:<28} {:<6} {:<5} {}",
            s["neighbor"].as_str().unwrap_or(""),
            s["protocol"].as_str().unwrap_or(""),
            s["state"].as_str().unwrap_or(""),
            if s["bfd"] == true { "on" } else { "off" },
            s["info"].as_str().unwrap_or("")
        );
    }
    let _ = writeln!(out, "{:<22} {:<9} {:<10} Why", "VIP", "Wanted", "Announced");
    for v in b["vips"].as_array().into_iter().flatten() {
        let announced = match v["announced"].as_bool() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        };
        let _ = writeln!(
            out,
            "{:<22} {:<9} {:<10} {}",
            v["vip"].as_str().unwrap_or(""),
            if v["wanted"] == true { "announce" } else { "withdraw" },
            announced,
            v["why"].as_str().unwrap_or("")
        );
    }
    if let Some(d) = b["drain"].as_object() {
        let _ = writeln!(
            out,
            "Director drained: {} after {:.1} s{}",
            d.get("state").and_then(|s| s.as_str()).unwrap_or(""),
            d.get("for_secs").and_then(|s| s.as_f64()).unwrap_or(0.0),
            d.get("note").and_then(|s| s.as_str()).filter(|s| !s.is_empty()).map(|s| format!(" ({s})")).unwrap_or_default()
        );
    }
}

/// The configured reals of service `si` that are not in its table entry `live`: no arrow (so
/// a script reading ipvsadm's `  -> ` lines skips them), the address, then where the
/// Forward..InActConn columns would be `why` ("(not in the table)"), and the health and weight.
fn missing_reals(out: &mut String, d: &Snapshot, si: usize, live: Option<&crate::ipvs::table::Service>, why: &str) {
    let vs = &d.model.services[si];
    for (ri, r) in vs.reals.iter().enumerate() {
        if live.is_some_and(|s| s.dests.contains_key(&DestKey(r.addr))) {
            continue;
        }
        let id = (vs.name.clone(), r.addr);
        let health = if d.state(si, ri) == RealState::Down { "down" } else { "up" };
        let mut note = Vec::new();
        if d.drained.contains(&id) {
            note.push("drained".to_string());
        }
        if let Some(w) = d.overrides.get(&id) {
            note.push(format!("weight forced to {w}"));
        }
        let _ = writeln!(
            out,
            "     {:<28} {:<27}  {health:<6}  {:<6}  {}",
            format::dest_name(&DestKey(r.addr)),
            why,
            r.weight,
            note.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{LoadOptions, load_source};
    use std::path::Path;

    fn snapshot(actual: impl FnOnce(&Model) -> Option<Table>) -> Snapshot {
        let src =
            r#"lvsd.service "web" { vip = "192.0.2.10:80", reals = { "198.51.100.1:80", { address = "198.51.100.2:80", weight = 5 } } }"#;
        let o = LoadOptions { node: "lvs01".into(), limits: Default::default() };
        let model = load_source(src, Path::new("p.lua"), Path::new("."), &o).unwrap().model;
        Snapshot {
            actual: actual(&model),
            policy: "p.lua".into(),
            generation: 1,
            last_reload: ReloadStatus { at: 0.0, ok: true, errors: vec![], generation: 1 },
            reloads: (0, 0),
            backend: "memory",
            writes: 0,
            vrrp: None,
            states: vec![vec![RealState::Up(1), RealState::Down]],
            drained: HashSet::new(),
            overrides: HashMap::new(),
            leaving: HashMap::new(),
            suspended: HashSet::new(),
            bgp: None,
            sync: Value::Null,
            model,
        }
    }

    /// The table with the second real removed, as after its check failed.
    fn without_second(m: &Model) -> Option<Table> {
        let mut t = crate::desired::all_up(m);
        for s in t.services.values_mut() {
            s.dests.retain(|k, _| k.0.ip().to_string() != "198.51.100.2");
        }
        Some(t)
    }

    #[test]
    fn text_lists_every_configured_real() {
        let doc = build(&snapshot(without_second));
        let text = doc["text"].as_str().unwrap();
        assert!(text.contains(&format!("  -> {:<28} Route   1", "198.51.100.1:80")), "{text}");
        let line = text.lines().find(|l| l.contains("198.51.100.2:80")).unwrap_or_else(|| panic!("{text}"));
        assert_eq!(line, format!("     {:<28} {:<27}  down    5", "198.51.100.2:80", "(not in the table)"));

        let text = build(&snapshot(|_| None))["text"].as_str().unwrap().to_string();
        assert!(text.contains("IPVS table: cannot be read"), "{text}");
        assert_eq!(text.lines().filter(|l| l.contains("(table unknown)")).count(), 2, "{text}");
    }

    #[test]
    fn the_written_document_is_the_document() {
        for snap in [snapshot(without_second), snapshot(|_| None)] {
            let written: Value = serde_json::from_str(render(&snap, false).unwrap().get()).unwrap();
            assert_eq!(written, build(&snap));
            assert_eq!(written["services"][0]["reals"][1]["in_table"], json!(false));
        }
        // A table that cannot be read is null, not absent.
        assert_eq!(build(&snapshot(|_| None)).get("ipvs"), Some(&Value::Null));
        let doc = build(&snapshot(without_second));
        assert_eq!(doc["ipvs"]["services"][0]["reals"].as_array().map(Vec::len), Some(1));
        assert_eq!(doc["ipvs"]["services"][0]["netmask"], json!("255.255.255.255"));
    }

    /// A brief document is the whole one less its services, table and text.
    #[test]
    fn a_brief_document_is_the_document_without_its_services() {
        let snap = snapshot(without_second);
        let brief: Value = serde_json::from_str(render(&snap, true).unwrap().get()).unwrap();
        let mut whole = build(&snap);
        for part in ["services", "ipvs", "text"] {
            assert!(whole.as_object_mut().unwrap().remove(part).is_some(), "{part}");
        }
        assert_eq!(brief, whole);
        assert!(brief.get("vrrp").is_some() && brief.get("bgp").is_some() && brief.get("generation").is_some(), "{brief}");
    }

    #[test]
    fn the_text_alone_is_the_documents_text() {
        let snap = snapshot(without_second);
        let only: Value = serde_json::from_str(render_text(&snap).unwrap().get()).unwrap();
        assert_eq!(only.as_object().map(|o| o.len()), Some(2), "{only}");
        assert_eq!(only["version"], json!(STATUS_VERSION));
        assert_eq!(only["text"], build(&snap)["text"]);
    }

    #[test]
    fn services_in_the_document_read_back_typed() {
        let doc = build(&snapshot(without_second));
        let back: Vec<ServiceStatus> = serde_json::from_value(doc["services"].clone()).unwrap();
        assert_eq!(back, services(&snapshot(without_second)));
        let r = &back[0].reals[1];
        assert_eq!((r.in_table, r.weight, r.health.as_str(), r.configured_weight), (false, None, "down", 5));
        assert_eq!(doc["services"][0]["reals"][1]["weight"], Value::Null, "absent weight stays null");
    }
}
