//! The metrics page itself, without I/O: the status document read into the typed [`View`]
//! (a renamed or missing field is an error, never a silent 0) and rendered as Prometheus
//! text, with lvsd's own series and, unless [`Compat`] turns them off, the same numbers under
//! the names other exporters use, so that dashboards and alert rules written for them work
//! unchanged: node_exporter's `ipvs` collector (`node_ipvs_*`) and the keepalived exporter
//! most sites run (github.com/mehdy/keepalived-exporter, `keepalived_*`). Served by
//! src/control/metrics.rs.

use crate::director::status::ServiceStatus;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

// ---- the typed view of the status document ----

/// What the metrics page needs from the status document (other fields are ignored).
#[derive(Debug, Deserialize)]
pub struct View {
    pub generation: u64,
    pub reloads: Reloads,
    pub last_reload: LastReload,
    pub ipvs_writes: u64,
    pub vrrp: Vec<VrrpView>,
    pub services: Vec<ServiceStatus>,
    /// The backend's table; None when it could not be read.
    pub ipvs: Option<IpvsView>,
    /// The connection sync daemons (None: the policy asks for none).
    #[serde(default)]
    pub sync_daemon: Option<SyncView>,
    /// Announcements and sessions (None: no BGP), rendered by `bgp::metrics`.
    #[serde(default)]
    pub bgp: Option<Value>,
}

/// `sync_daemon` in the status document.
#[derive(Debug, Deserialize)]
pub struct SyncView {
    pub master: SyncDaemonView,
    pub backup: SyncDaemonView,
    pub connections: Option<crate::director::sync::ConnCounts>,
}

#[derive(Debug, Deserialize)]
pub struct SyncDaemonView {
    pub running: bool,
}

#[derive(Debug, Deserialize)]
pub struct Reloads {
    pub ok: u64,
    pub failed: u64,
}

#[derive(Debug, Deserialize)]
pub struct LastReload {
    pub ok: bool,
}

/// One VRRP instance. Only a running instance (initialize, backup, master, fault) has every
/// counter; one that is not running has a name, a state and perhaps a priority.
#[derive(Debug, Deserialize)]
pub struct VrrpView {
    pub name: String,
    pub state: String,
    pub interface: Option<String>,
    pub vrid: Option<u8>,
    /// As the policy has them: `ADDRESS/PREFIX [dev DEV] ...`.
    pub vips: Option<Vec<String>>,
    pub priority: Option<u64>,
    pub transitions: Option<u64>,
    pub adverts_sent: Option<u64>,
    pub adverts_received: Option<u64>,
    pub dropped: Option<BTreeMap<String, u64>>,
    pub became_master: Option<u64>,
    pub released_master: Option<u64>,
    pub priority_zero_sent: Option<u64>,
    pub priority_zero_received: Option<u64>,
    pub garp_master_delay: Option<u64>,
}

const VRRP_STATES: [&str; 4] = ["initialize", "backup", "master", "fault"];

impl VrrpView {
    fn check(&self) -> Result<(), String> {
        if !VRRP_STATES.contains(&self.state.as_str()) {
            return Ok(());
        }
        let missing = [
            ("interface", self.interface.is_none()),
            ("vrid", self.vrid.is_none()),
            ("vips", self.vips.is_none()),
            ("priority", self.priority.is_none()),
            ("transitions", self.transitions.is_none()),
            ("adverts_sent", self.adverts_sent.is_none()),
            ("adverts_received", self.adverts_received.is_none()),
            ("dropped", self.dropped.is_none()),
            ("became_master", self.became_master.is_none()),
            ("released_master", self.released_master.is_none()),
            ("priority_zero_sent", self.priority_zero_sent.is_none()),
            ("priority_zero_received", self.priority_zero_received.is_none()),
            ("garp_master_delay", self.garp_master_delay.is_none()),
        ];
        match missing.iter().find(|(_, m)| *m) {
            Some((field, _)) => Err(format!("vrrp instance {}: the status has no {field}", self.name)),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct IpvsView {
    pub services: Vec<IpvsService>,
}

/// A service of the table: by fwmark, or by protocol, address and port.
#[derive(Debug, Deserialize)]
pub struct IpvsService {
    pub fwmark: Option<u32>,
    pub protocol: Option<String>,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub stats: IpvsStats,
    pub reals: Vec<IpvsReal>,
}

#[derive(Debug, Deserialize)]
pub struct IpvsReal {
    pub address: String,
    pub port: u16,
    pub weight: u32,
    pub stats: IpvsStats,
}

#[derive(Debug, Deserialize)]
pub struct IpvsStats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub active_conns: u64,
    pub inact_conns: u64,
}

impl IpvsService {
    fn label(&self) -> Result<String, String> {
        match (self.fwmark, &self.protocol, &self.address, self.port) {
            (Some(m), ..) => Ok(format!("FWM {m}")),
            (None, Some(p), Some(a), Some(port)) => Ok(format!("{p} {a}:{port}")),
            _ => Err("an IPVS service in the status has neither a fwmark nor protocol, address and port".into()),
        }
    }
}

/// Read a status document into the typed view; any missing or mistyped field is an error.
pub fn view(doc: Value) -> Result<View, String> {
    checked(serde_json::from_value(doc))
}

/// [`view`] of the document as JSON text, read straight into the view (no `Value`s).
pub fn view_of_text(doc: &str) -> Result<View, String> {
    checked(serde_json::from_str(doc))
}

fn checked(v: Result<View, serde_json::Error>) -> Result<View, String> {
    let v = v.map_err(|e| format!("the status document does not read as expected: {e}"))?;
    for i in &v.vrrp {
        i.check()?;
    }
    for s in v.ipvs.iter().flat_map(|t| &t.services) {
        s.label()?;
    }
    Ok(v)
}

// ---- rendering ----

/// A label value escaped for the text format (see [`push_escaped`]).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s);
    out
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn push_escaped(out: &mut String, s: &str) {
    if !s.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    /// One line, written in place: a page of 10,000 services has half a million of them.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        let out = &mut self.0;
        out.push_str(name);
        for (i, (k, value)) in labels.iter().enumerate() {
            out.push(if i == 0 { '{' } else { ',' });
            out.push_str(k);
            out.push_str("=\"");
            push_escaped(out, value);
            out.push('"');
        }
        if !labels.is_empty() {
            out.push('}');
        }
        let _ = writeln!(out, " {v}");
    }
}

/// The compatible name sets the page carries besides lvsd's own (both unless turned off:
/// `lvsd run --metrics-compat node_ipvs|keepalived|none`, a comma-separated list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compat {
    /// node_exporter's `ipvs` collector: `node_ipvs_*`.
    pub node_ipvs: bool,
    /// The keepalived exporter's `keepalived_*`.
    pub keepalived: bool,
}

impl Default for Compat {
    fn default() -> Compat {
        Compat { node_ipvs: true, keepalived: true }
    }
}

impl Compat {
    pub const NONE: Compat = Compat { node_ipvs: false, keepalived: false };
}

impl std::str::FromStr for Compat {
    type Err = String;
    fn from_str(s: &str) -> Result<Compat, String> {
        let mut c = Compat::NONE;
        for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match w {
                "none" => {}
                "node_ipvs" | "node-ipvs" => c.node_ipvs = true,
                "keepalived" => c.keepalived = true,
                other => return Err(format!("unknown set {other:?}: name node_ipvs, keepalived, both (comma-separated) or none")),
            }
        }
        Ok(c)
    }
}

impl std::fmt::Display for Compat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sets: Vec<&str> =
            [(self.node_ipvs, "node_ipvs"), (self.keepalived, "keepalived")].iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
        f.write_str(if sets.is_empty() { "none".to_string() } else { sets.join(",") }.as_str())
    }
}

/// Render the view as Prometheus text, with both compatible sets.
pub fn render(st: &View) -> String {
    render_with(st, Compat::default())
}

/// Render the view as Prometheus text, with the compatible sets `compat` names.
pub fn render_with(st: &View, compat: Compat) -> String {
    let mut o = Out(String::new());
    own(&mut o, st);
    if compat.node_ipvs {
        node_ipvs(&mut o, st);
    }
    if compat.keepalived {
        keepalived(&mut o, st);
    }
    o.0
}

/// lvsd's own series.
fn own(o: &mut Out, st: &View) {
    o.family("lvsd_build_info", "gauge", "Always 1; the labels say which lvsd runs.");
    // This process's own build (the same as the status document's `build`).
    use crate::build_info::{COMMIT, DATE, VERSION};
    o.sample("lvsd_build_info", &[("version", VERSION), ("commit", COMMIT), ("date", DATE)], 1);
    o.family("lvsd_policy_generation", "gauge", "Generation of the policy that runs (1 = as started).");
    o.sample("lvsd_policy_generation", &[], st.generation);
    o.family("lvsd_reloads_total", "counter", "Policy reloads by result.");
    o.sample("lvsd_reloads_total", &[("result", "ok")], st.reloads.ok);
    o.sample("lvsd_reloads_total", &[("result", "failed")], st.reloads.failed);
    o.family("lvsd_last_reload_ok", "gauge", "1 when the last reload succeeded.");
    o.sample("lvsd_last_reload_ok", &[], st.last_reload.ok as u8);
    o.family("lvsd_ipvs_writes_total", "counter", "IPVS write operations sent to the backend.");
    o.sample("lvsd_ipvs_writes_total", &[], st.ipvs_writes);

    o.family("lvsd_vrrp_state", "gauge", "1 for the state each VRRP instance is in.");
    for v in &st.vrrp {
        for s in VRRP_STATES {
            o.sample("lvsd_vrrp_state", &[("instance", &v.name), ("state", s)], (v.state == s) as u8);
        }
    }
    o.family("lvsd_vrrp_priority", "gauge", "Priority each instance advertises (after weights).");
    for v in &st.vrrp {
        o.sample("lvsd_vrrp_priority", &[("instance", &v.name)], v.priority.unwrap_or(0));
    }
    o.family("lvsd_vrrp_transitions_total", "counter", "State transitions per instance.");
    for v in &st.vrrp {
        o.sample("lvsd_vrrp_transitions_total", &[("instance", &v.name)], v.transitions.unwrap_or(0));
    }
    o.family("lvsd_vrrp_adverts_total", "counter", "Adverts sent, received (accepted) and dropped by reason.");
    for v in &st.vrrp {
        let n = v.name.as_str();
        o.sample("lvsd_vrrp_adverts_total", &[("instance", n), ("result", "sent")], v.adverts_sent.unwrap_or(0));
        o.sample("lvsd_vrrp_adverts_total", &[("instance", n), ("result", "received")], v.adverts_received.unwrap_or(0));
        for (reason, c) in v.dropped.iter().flatten() {
            o.sample("lvsd_vrrp_adverts_total", &[("instance", n), ("result", "dropped"), ("reason", reason)], c);
        }
    }

    o.family("lvsd_real_up", "gauge", "1 when the real server is healthy.");
    for s in &st.services {
        for r in &s.reals {
            o.sample("lvsd_real_up", &[("service", &s.name), ("real", &r.address)], (r.health == "up") as u8);
        }
    }
    o.family("lvsd_real_weight", "gauge", "Weight of the real server in the IPVS table (absent: not in the table).");
    for s in &st.services {
        for r in &s.reals {
            if let Some(w) = r.weight {
                o.sample("lvsd_real_weight", &[("service", &s.name), ("real", &r.address)], w);
            }
        }
    }

    // IPVS counters straight from the table (the kernel's, with the kernel backend).
    type Counter = (&'static str, fn(&IpvsStats) -> u64, &'static str);
    let counters: [Counter; 5] = [
        ("connections", |s| s.conns, "Connections scheduled"),
        ("packets_in", |s| s.inpkts, "Incoming packets"),
        ("packets_out", |s| s.outpkts, "Outgoing packets"),
        ("bytes_in", |s| s.inbytes, "Incoming bytes"),
        ("bytes_out", |s| s.outbytes, "Outgoing bytes"),
    ];
    let table: Vec<(String, &IpvsService)> = st.ipvs.iter().flat_map(|t| &t.services).map(|s| (s.label().unwrap_or_default(), s)).collect();
    let real = |r: &IpvsReal| format!("{}:{}", r.address, r.port);
    for (metric, get, help) in counters {
        let name = format!("lvsd_ipvs_service_{metric}_total");
        o.family(&name, "counter", &format!("{help} per virtual service."));
        for (vip, s) in &table {
            o.sample(&name, &[("vip", vip)], get(&s.stats));
        }
        let name = format!("lvsd_ipvs_real_{metric}_total");
        o.family(&name, "counter", &format!("{help} per real server."));
        for (vip, s) in &table {
            for r in &s.reals {
                o.sample(&name, &[("vip", vip), ("real", &real(r))], get(&r.stats));
            }
        }
    }
    o.family("lvsd_ipvs_real_connections", "gauge", "Connections to each real server now, by state.");
    for (vip, s) in &table {
        for r in &s.reals {
            o.sample("lvsd_ipvs_real_connections", &[("vip", vip), ("real", &real(r)), ("state", "active")], r.stats.active_conns);
            o.sample("lvsd_ipvs_real_connections", &[("vip", vip), ("real", &real(r)), ("state", "inactive")], r.stats.inact_conns);
        }
    }
    if let Some(sd) = &st.sync_daemon {
        o.family("lvsd_sync_daemon_running", "gauge", "1 for each IPVS connection sync daemon running, by state.");
        o.sample("lvsd_sync_daemon_running", &[("state", "master")], sd.master.running as u8);
        o.sample("lvsd_sync_daemon_running", &[("state", "backup")], sd.backup.running as u8);
        if let Some(c) = &sd.connections {
            o.family("lvsd_ipvs_connections", "gauge", "Entries in the local IPVS connection table, by origin.");
            o.sample("lvsd_ipvs_connections", &[("origin", "local")], c.total - c.synced.min(c.total));
            o.sample("lvsd_ipvs_connections", &[("origin", "sync")], c.synced);
        }
    }
}

/// node_exporter's `ipvs` collector (collector/ipvs_linux.go): five unlabelled totals and
/// three gauges per real server, labelled as it labels them (it reads /proc/net/ip_vs).
fn node_ipvs(o: &mut Out, st: &View) {
    let services: Vec<&IpvsService> = st.ipvs.iter().flat_map(|t| &t.services).collect();
    // node_exporter reads the kernel's totals (/proc/net/ip_vs_stats); the sum over the
    // table's services counts the same packets, less those of services since deleted (a
    // drop that rate() takes for a counter reset).
    type Total = (&'static str, fn(&IpvsStats) -> u64, &'static str);
    let totals: [Total; 5] = [
        ("node_ipvs_connections_total", |s| s.conns, "The total number of connections made."),
        ("node_ipvs_incoming_packets_total", |s| s.inpkts, "The total number of incoming packets."),
        ("node_ipvs_outgoing_packets_total", |s| s.outpkts, "The total number of outgoing packets."),
        ("node_ipvs_incoming_bytes_total", |s| s.inbytes, "The total amount of incoming data."),
        ("node_ipvs_outgoing_bytes_total", |s| s.outbytes, "The total amount of outgoing data."),
    ];
    for (name, get, help) in totals {
        o.family(name, "counter", help);
        o.sample(name, &[], services.iter().map(|s| get(&s.stats)).fold(0u64, u64::wrapping_add));
    }
    // The labels as procfs reads /proc/net/ip_vs: a fwmark service has no address, port 0,
    // proto "FWM" and its mark as the kernel prints it (%08X); the others an empty mark.
    type Backend = (&'static str, fn(&IpvsReal) -> u64, &'static str);
    let gauges: [Backend; 3] = [
        ("node_ipvs_backend_connections_active", |r| r.stats.active_conns, "The current active connections by local and remote address."),
        (
            "node_ipvs_backend_connections_inactive",
            |r| r.stats.inact_conns,
            "The current inactive connections by local and remote address.",
        ),
        ("node_ipvs_backend_weight", |r| r.weight.into(), "The current backend weight by local and remote address."),
    ];
    for (name, get, help) in gauges {
        o.family(name, "gauge", help);
        for s in &services {
            let (local_address, local_port, proto, local_mark) = match (s.fwmark, &s.protocol, &s.address, s.port) {
                (Some(m), ..) => (String::new(), "0".to_string(), "FWM".to_string(), format!("{m:08X}")),
                (None, p, a, port) => (
                    a.clone().unwrap_or_default(),
                    port.unwrap_or(0).to_string(),
                    p.as_deref().unwrap_or("").to_ascii_uppercase(),
                    String::new(),
                ),
            };
            for r in &s.reals {
                let port = r.port.to_string();
                // In the order client_golang prints them (sorted by name).
                let labels = [
                    ("local_address", local_address.as_str()),
                    ("local_mark", local_mark.as_str()),
                    ("local_port", local_port.as_str()),
                    ("proto", proto.as_str()),
                    ("remote_address", r.address.as_str()),
                    ("remote_port", port.as_str()),
                ];
                o.sample(name, &labels, get(r));
            }
        }
    }
}

/// keepalived's numbers for a state (VRRP_STATE_INIT .. VRRP_STATE_FAULT), as the exporter
/// reports them. An instance that is not running is in no state of RFC 5798; keepalived
/// puts one it cannot run in FAULT.
fn keepalived_state(state: &str) -> u8 {
    match state {
        "initialize" => 0,
        "backup" => 1,
        "master" => 2,
        _ => 3,
    }
}

/// A VIP as keepalived prints it in keepalived.data, where the exporter takes its
/// `ip_address` and `intf` labels from: the address, `/PREFIX` only when not a host
/// prefix (vrrp_ipaddress.c `ipaddresstos`), and the device.
fn keepalived_vip(vip: &str, interface: &str) -> (String, String) {
    let mut words = vip.split_whitespace();
    let first = words.next().unwrap_or("");
    let address = match first.split_once('/') {
        Some((a, p)) if (a.contains(':') && p == "128") || (!a.contains(':') && p == "32") => a.to_string(),
        _ => first.to_string(),
    };
    let mut dev = interface.to_string();
    while let Some(w) = words.next() {
        if w == "dev" {
            dev = words.next().unwrap_or(interface).to_string();
        }
    }
    (address, dev)
}

/// The keepalived exporter's series (github.com/mehdy/keepalived-exporter,
/// internal/collector/collector.go), from keepalived's own per-instance counters
/// (vrrp.c `vrrp->stats`), which lvsd's drop reasons map onto.
fn keepalived(o: &mut Out, st: &View) {
    o.family("keepalived_up", "gauge", "Status");
    o.sample("keepalived_up", &[], 1);
    o.family("keepalived_vrrp_state", "gauge", "State of vrrp");
    for v in &st.vrrp {
        let intf = v.interface.as_deref().unwrap_or("");
        let vrid = v.vrid.map(|x| x.to_string()).unwrap_or_default();
        let state = keepalived_state(&v.state);
        let vips = v.vips.as_deref().unwrap_or(&[]);
        // With no VIP the exporter still reports the state, with an empty ip_address.
        let addrs: Vec<(String, String)> =
            if vips.is_empty() { vec![(String::new(), intf.to_string())] } else { vips.iter().map(|a| keepalived_vip(a, intf)).collect() };
        for (ip, dev) in addrs {
            o.sample("keepalived_vrrp_state", &[("iname", &v.name), ("intf", &dev), ("ip_address", &ip), ("vrid", &vrid)], state);
        }
    }
    let dropped = |v: &VrrpView, reasons: &[&str]| -> u64 {
        v.dropped.iter().flatten().filter(|(r, _)| reasons.contains(&r.as_str())).map(|(_, n)| *n).fold(0u64, u64::wrapping_add)
    };
    type Counter = (&'static str, &'static str, fn(&VrrpView, &dyn Fn(&VrrpView, &[&str]) -> u64) -> u64);
    let counters: [Counter; 15] = [
        ("keepalived_gratuitous_arp_delay_total", "Gratuitous ARP delay", |v, _| v.garp_master_delay.unwrap_or(0)),
        ("keepalived_advertisements_received_total", "Advertisements received", |v, _| v.adverts_received.unwrap_or(0)),
        ("keepalived_advertisements_sent_total", "Advertisements sent", |v, _| v.adverts_sent.unwrap_or(0)),
        ("keepalived_become_master_total", "Became master", |v, _| v.became_master.unwrap_or(0)),
        ("keepalived_release_master_total", "Released master", |v, _| v.released_master.unwrap_or(0)),
        ("keepalived_packet_length_errors_total", "Packet length errors", |v, d| d(v, &["truncated", "length"])),
        ("keepalived_advertisements_interval_errors_total", "Advertisement interval errors", |v, d| {
            d(v, &["advert_interval", "zero_interval"])
        }),
        ("keepalived_ip_ttl_errors_total", "TTL errors", |v, d| d(v, &["ttl"])),
        ("keepalived_invalid_type_received_total", "Invalid type errors", |v, d| d(v, &["type"])),
        ("keepalived_address_list_errors_total", "Address list errors", |v, d| d(v, &["address_list"])),
        // keepalived counts an auth type it does not know apart from one that differs from
        // its own; lvsd drops both as `auth_type`, counted here as a mismatch.
        ("keepalived_authentication_invalid_total", "Authentication invalid", |_, _| 0),
        ("keepalived_authentication_mismatch_total", "Authentication mismatch", |v, d| d(v, &["auth_type"])),
        ("keepalived_authentication_failure_total", "Authentication failure", |v, d| d(v, &["auth_failure"])),
        ("keepalived_priority_zero_received_total", "Priority zero received", |v, _| v.priority_zero_received.unwrap_or(0)),
        ("keepalived_priority_zero_sent_total", "Priority zero sent", |v, _| v.priority_zero_sent.unwrap_or(0)),
    ];
    // Counters only for running instances: keepalived has none for an instance it does not run.
    let running: Vec<&VrrpView> = st.vrrp.iter().filter(|v| VRRP_STATES.contains(&v.state.as_str())).collect();
    for (name, help, get) in counters {
        o.family(name, "counter", help);
        for v in &running {
            let vrid = v.vrid.map(|x| x.to_string()).unwrap_or_default();
            let labels = [("iname", v.name.as_str()), ("intf", v.interface.as_deref().unwrap_or("")), ("vrid", vrid.as_str())];
            o.sample(name, &labels, get(v, &dropped));
        }
    }
}

/// Read a status document and render it (both compatible sets).
pub fn render_doc(doc: Value) -> Result<String, String> {
    render_doc_with(doc, Compat::default())
}

pub fn render_doc_with(doc: Value, compat: Compat) -> Result<String, String> {
    render_view(view(doc)?, compat)
}

pub(crate) fn render_view(v: View, compat: Compat) -> Result<String, String> {
    let bgp = v.bgp.as_ref().map(crate::bgp::metrics).transpose()?;
    let page = render_with(&v, compat) + bgp.as_deref().unwrap_or("");
    drop(v);
    crate::heap::give_back();
    Ok(page)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A status document with every part the page shows (also the serving tests' answer).
    pub(crate) fn doc() -> Value {
        json!({
            "version": 1, "generation": 3, "reloads": {"ok": 2, "failed": 1},
            "last_reload": {"at": 1.5, "ok": true, "errors": [], "generation": 3},
            "ipvs_writes": 7,
            "vrrp": [
                {"name": "VI_1", "interface": "eth0", "vrid": 51, "vips": ["192.0.2.10/32", "192.0.2.11/24 dev eth1 label eth1:v"],
                 "state": "master", "priority": 100, "transitions": 2, "adverts_sent": 10,
                 "adverts_received": 0, "dropped": {"auth_type": 3, "ttl": 1, "truncated": 2, "length": 1},
                 "became_master": 1, "released_master": 0, "priority_zero_sent": 0, "priority_zero_received": 4,
                 "garp_master_delay": 5},
                {"name": "VI_2", "state": "not running", "error": "no such interface"},
            ],
            "services": [{"name": "web", "vip": "TCP  192.0.2.10:80", "scheduler": "wrr", "in_table": true,
                "ha_suspended": false, "reals": [
                {"address": "198.51.100.1:80", "configured_weight": 1, "weight": 1, "in_table": true, "health": "up",
                 "drained": false, "weight_override": null, "state": "up(1)", "active_conns": 0, "inact_conns": 0, "removal_in": null},
                {"address": "198.51.100.2:80", "configured_weight": 1, "weight": null, "in_table": false, "health": "down",
                 "drained": false, "weight_override": null, "state": "down", "active_conns": null, "inact_conns": null, "removal_in": null}]}],
            "ipvs": {"services": [{"protocol": "tcp", "address": "192.0.2.10", "port": 80,
                "stats": {"conns": 5, "inpkts": 6, "outpkts": 0, "inbytes": 300, "outbytes": 0, "active_conns": 0, "inact_conns": 0},
                "reals": [{"address": "198.51.100.1", "port": 80, "weight": 1,
                    "stats": {"conns": 5, "inpkts": 6, "outpkts": 0, "inbytes": 300, "outbytes": 0, "active_conns": 1, "inact_conns": 2}}]},
                {"fwmark": 16, "stats": {"conns": 2, "inpkts": 4, "outpkts": 0, "inbytes": 200, "outbytes": 0, "active_conns": 0, "inact_conns": 0},
                "reals": [{"address": "2001:db8::7", "port": 0, "weight": 3,
                    "stats": {"conns": 2, "inpkts": 4, "outpkts": 0, "inbytes": 200, "outbytes": 0, "active_conns": 0, "inact_conns": 1}}]}]},
        })
    }

    #[test]
    fn the_page_shows_the_document() {
        let page = render_doc(doc()).unwrap();
        for line in [
            "lvsd_policy_generation 3",
            "lvsd_reloads_total{result=\"failed\"} 1",
            "lvsd_last_reload_ok 1",
            "lvsd_vrrp_state{instance=\"VI_1\",state=\"master\"} 1",
            "lvsd_vrrp_state{instance=\"VI_2\",state=\"master\"} 0",
            "lvsd_vrrp_priority{instance=\"VI_2\"} 0",
            "lvsd_vrrp_adverts_total{instance=\"VI_1\",result=\"dropped\",reason=\"auth_type\"} 3",
            "lvsd_real_up{service=\"web\",real=\"198.51.100.2:80\"} 0",
            "lvsd_real_weight{service=\"web\",real=\"198.51.100.1:80\"} 1",
            "lvsd_ipvs_service_bytes_in_total{vip=\"tcp 192.0.2.10:80\"} 300",
            "lvsd_ipvs_real_connections{vip=\"tcp 192.0.2.10:80\",real=\"198.51.100.1:80\",state=\"inactive\"} 2",
        ] {
            assert!(page.lines().any(|l| l == line), "{line} missing from\n{page}");
        }
        assert!(!page.contains("lvsd_real_weight{service=\"web\",real=\"198.51.100.2:80\"}"), "not in the table: no weight");
    }

    #[test]
    fn the_compatible_sets_carry_the_same_numbers() {
        let page = render_doc(doc()).unwrap();
        for line in [
            "node_ipvs_connections_total 7",
            "node_ipvs_incoming_bytes_total 500",
            "node_ipvs_backend_connections_inactive{local_address=\"192.0.2.10\",local_mark=\"\",local_port=\"80\",proto=\"TCP\",remote_address=\"198.51.100.1\",remote_port=\"80\"} 2",
            "node_ipvs_backend_weight{local_address=\"\",local_mark=\"00000010\",local_port=\"0\",proto=\"FWM\",remote_address=\"2001:db8::7\",remote_port=\"0\"} 3",
            "keepalived_up 1",
            "keepalived_vrrp_state{iname=\"VI_1\",intf=\"eth0\",ip_address=\"192.0.2.10\",vrid=\"51\"} 2",
            "keepalived_vrrp_state{iname=\"VI_1\",intf=\"eth1\",ip_address=\"192.0.2.11/24\",vrid=\"51\"} 2",
            "keepalived_vrrp_state{iname=\"VI_2\",intf=\"\",ip_address=\"\",vrid=\"\"} 3",
            "keepalived_advertisements_sent_total{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\"} 10",
            "keepalived_become_master_total{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\"} 1",
            "keepalived_packet_length_errors_total{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\"} 3",
            "keepalived_authentication_mismatch_total{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\"} 3",
            "keepalived_ip_ttl_errors_total{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\"} 1",
            "keepalived_priority_zero_received_total{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\"} 4",
            "keepalived_gratuitous_arp_delay_total{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\"} 5",
        ] {
            assert!(page.lines().any(|l| l == line), "{line} missing from\n{page}");
        }
        assert!(!page.contains("keepalived_advertisements_sent_total{iname=\"VI_2\""), "no counters for an instance not running");
        let v = view(doc()).unwrap();
        let off = render_with(&v, "none".parse().unwrap());
        assert!(!off.contains("node_ipvs_") && !off.contains("keepalived_") && off.contains("lvsd_vrrp_state"), "{off}");
        let node = render_with(&v, "node_ipvs".parse().unwrap());
        assert!(node.contains("node_ipvs_backend_weight") && !node.contains("keepalived_"));
        let ka = render_with(&v, "keepalived".parse().unwrap());
        assert!(!ka.contains("node_ipvs_") && ka.contains("keepalived_vrrp_state"));
        assert_eq!(render_with(&v, "node_ipvs,keepalived".parse().unwrap()), page);
        assert!("node_ipvs,bgp".parse::<Compat>().is_err());
        assert_eq!(Compat::default().to_string(), "node_ipvs,keepalived");
        assert_eq!(Compat::NONE.to_string(), "none");
    }

    #[test]
    fn the_dashboard_queries_only_metrics_lvsd_exports() {
        let dash: Value = serde_json::from_str(include_str!("../../examples/grafana-lvsd.json")).expect("the dashboard is JSON");
        let page = render_doc(doc()).unwrap();
        let exprs: Vec<String> = dash["panels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
            .filter_map(|t| t["expr"].as_str().map(str::to_string))
            .collect();
        assert!(exprs.len() >= 15, "{exprs:?}");
        let re = regex::Regex::new(r"\b[a-z_]+_[a-z_]+\b").unwrap();
        let mut seen = 0;
        for e in &exprs {
            for m in re.find_iter(e).map(|m| m.as_str()).filter(|m| m.starts_with("lvsd_")) {
                assert!(page.contains(&format!("# TYPE {m} ")), "the dashboard queries {m}, which lvsd does not export");
                seen += 1;
            }
        }
        assert!(seen >= exprs.len(), "every query names an lvsd metric");
    }

    #[test]
    fn vips_are_labelled_as_keepalived_prints_them() {
        assert_eq!(keepalived_vip("192.0.2.1/32", "eth0"), ("192.0.2.1".into(), "eth0".into()));
        assert_eq!(keepalived_vip("192.0.2.1/24 dev eth2 scope global", "eth0"), ("192.0.2.1/24".into(), "eth2".into()));
        assert_eq!(keepalived_vip("2001:db8::1/128", "eth0"), ("2001:db8::1".into(), "eth0".into()));
        assert_eq!(keepalived_vip("2001:db8::1/64", "eth0"), ("2001:db8::1/64".into(), "eth0".into()));
        assert_eq!(keepalived_vip("2001:db8::1/32", "eth0"), ("2001:db8::1/32".into(), "eth0".into()));
    }

    #[test]
    fn a_renamed_or_missing_field_is_an_error_not_a_zero() {
        let mut d = doc();
        let i = d["vrrp"][0].as_object_mut().unwrap();
        let sent = i.remove("adverts_sent").unwrap();
        i.insert("adverts_tx".into(), sent);
        assert!(render_doc(d).unwrap_err().contains("adverts_sent"));
        let mut d = doc();
        d["vrrp"][0].as_object_mut().unwrap().remove("became_master");
        assert!(render_doc(d).unwrap_err().contains("became_master"));
        let mut d = doc();
        d["ipvs"]["services"][0]["reals"][0].as_object_mut().unwrap().remove("weight");
        assert!(render_doc(d).unwrap_err().contains("weight"));
        let mut d = doc();
        d.as_object_mut().unwrap().remove("ipvs_writes");
        assert!(render_doc(d).unwrap_err().contains("ipvs_writes"));
        let mut d = doc();
        d["services"][0]["reals"][0]["weight"] = json!("heavy");
        assert!(render_doc(d).is_err());
        let mut d = doc();
        d["ipvs"]["services"][0].as_object_mut().unwrap().remove("protocol");
        assert!(render_doc(d).is_err());
    }

    #[test]
    fn label_values_are_escaped_as_the_text_format_says() {
        let mut o = Out(String::new());
        o.sample("x", &[("a", "q\"b\\c\nd"), ("e", "")], 1);
        o.sample("y", &[], 2.5);
        assert_eq!(o.0, "x{a=\"q\\\"b\\\\c\\nd\",e=\"\"} 1\ny 2.5\n");
        assert_eq!(esc("q\"b\\c\nd"), "q\\\"b\\\\c\\nd");
    }
}
