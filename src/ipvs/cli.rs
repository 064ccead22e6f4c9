//! Command logic for the IPVS side of the CLI: `status --kernel` and `run --once`.
//! main.rs only parses arguments and calls these.

use super::backend::{self, Backend, SyncReport};
use super::format::{self, Format};
use super::kernel::{self, Kernel, KernelError};
use super::memory::MemoryBackend;
use super::table::{ServiceKey, Stats, Table};
use super::wire::{DaemonState, SyncDaemon};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::BTreeSet;

/// `lvsd status --kernel [--stats|--rate] [--json]`: the kernel's table, byte-for-byte as
/// `ipvsadm -L -n` (with its version header) prints it, or as JSON with 64-bit counters.
pub fn status_kernel(fmt: Format, json: bool) -> Result<String, KernelError> {
    let mut k = Kernel::open()?;
    let info = k.info()?;
    let table = k.dump()?;
    if json {
        let v = status_json(&info, &table);
        return Ok(serde_json::to_string_pretty(&v).expect("JSON values serialize") + "\n");
    }
    let mut out = format::version_header(info.version, info.conn_tab_size);
    out.push_str(&format::table(&table, fmt));
    Ok(out)
}

fn stats_json(s: &Stats) -> Value {
    json!({
        "conns": s.conns, "inpkts": s.inpkts, "outpkts": s.outpkts, "inbytes": s.inbytes, "outbytes": s.outbytes,
        "cps": s.cps, "inpps": s.inpps, "outpps": s.outpps, "inbps": s.inbps, "outbps": s.outbps,
    })
}

/// The plan's table JSON with the live counters added to every service and real server.
pub fn status_json(info: &super::wire::Info, t: &Table) -> Value {
    let mut v = crate::plan::table_json(t);
    if let Some(services) = v["services"].as_array_mut() {
        for (sv, svc) in services.iter_mut().zip(t.services.values()) {
            sv["stats"] = stats_json(&svc.stats);
            if let Some(reals) = sv["reals"].as_array_mut() {
                for (rv, d) in reals.iter_mut().zip(svc.dests.values()) {
                    rv["stats"] = stats_json(&d.stats);
                    rv["active_conns"] = json!(d.stats.active_conns);
                    rv["inactive_conns"] = json!(d.stats.inact_conns);
                    rv["persistent_conns"] = json!(d.stats.persist_conns);
                }
            }
        }
    }
    v["version"] = json!(format!("{}.{}.{}", (info.version >> 16) & 0xff, (info.version >> 8) & 0xff, info.version & 0xff));
    v["conn_tab_size"] = json!(info.conn_tab_size);
    v
}

/// What one `run --once` pass did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub sync: SyncReport,
    /// Netlink write requests sent (successful or not): 0 when nothing changed.
    pub writes: u64,
    /// Services in the kernel that the policy does not have (kept, or removed when asked).
    pub foreign: Vec<ServiceKey>,
    /// Sync daemon changes ("start master sync daemon on eth0 id 7") and connection
    /// timeouts set.
    pub daemon_ops: Vec<String>,
    /// The connection timeouts could not be read or set.
    pub timeouts_error: Option<String>,
}

impl ApplyReport {
    pub fn ok(&self) -> bool {
        self.sync.ok() && self.timeouts_error.is_none()
    }
}

/// One pass of `backend::sync`, noting the services that are not in the policy: the diff
/// asks about exactly those, so no extra dump is needed.
fn sync_noting_foreign(b: &mut dyn Backend, desired: &Table, remove_foreign: bool) -> ApplyReport {
    let foreign = RefCell::new(BTreeSet::new());
    let before = b.writes();
    let sync = backend::sync(b, desired, &|k: &ServiceKey| {
        foreign.borrow_mut().insert(*k);
        remove_foreign
    });
    ApplyReport {
        sync,
        writes: b.writes() - before,
        foreign: foreign.into_inner().into_iter().collect(),
        daemon_ops: Vec::new(),
        timeouts_error: None,
    }
}

/// `lvsd run --once`: make the kernel's table equal `desired` once, and the sync daemon
/// what the policy asks for (if it asks).
pub fn apply_once(
    desired: &Table,
    remove_foreign: bool,
    daemon: Option<&SyncDaemon>,
    timeouts: Option<&super::wire::Timeouts>,
) -> Result<ApplyReport, KernelError> {
    let mut k = Kernel::open()?;
    let mut report = sync_noting_foreign(&mut k, desired, remove_foreign);
    let before = k.writes();
    report.daemon_ops = kernel::sync_daemon(&mut k, daemon)?;
    if let Some(t) = timeouts {
        match super::backend::reconcile_timeouts(&mut k, t) {
            Ok(Some(_)) => report.daemon_ops.push(format!("set connection timeouts (tcp tcpfin udp) {} {} {}", t.tcp, t.tcp_fin, t.udp)),
            Ok(None) => {}
            Err(e) => report.timeouts_error = Some(e.to_string()),
        }
    }
    report.writes += k.writes() - before;
    Ok(report)
}

/// The connection timeouts a policy asks for, as the kernel takes them.
pub fn timeouts_from_model(m: &crate::model::Model) -> Option<super::wire::Timeouts> {
    m.global.lvs_timeouts.map(|t| super::wire::Timeouts { tcp: t.tcp, tcp_fin: t.tcp_fin, udp: t.udp })
}

/// `lvsd run --once --dry-run`: the same pass against an empty in-memory table.
pub fn apply_dry_run(desired: &Table, remove_foreign: bool) -> ApplyReport {
    sync_noting_foreign(&mut MemoryBackend::new(), desired, remove_foreign)
}

/// The sync daemon a policy asks for, in the state its VRRP instance starts in (master
/// when it names none): the one `lvsd run --once` starts (no VRRP runs there). The running
/// director starts both states from these settings (`director::sync`).
pub fn daemon_from_model(m: &crate::model::Model) -> Option<SyncDaemon> {
    let sd = m.sync_daemon.as_ref()?;
    let backup = sd
        .instance
        .as_ref()
        .and_then(|name| m.vrrp.iter().find(|v| &v.name == name))
        .is_some_and(|v| v.state == crate::model::InitialState::Backup);
    let state = if backup { DaemonState::Backup } else { DaemonState::Master };
    let mut d = SyncDaemon::new(state, &sd.interface, sd.id as u32);
    d.sync_maxlen = sd.maxlen;
    d.mcast_group = sd.group;
    d.mcast_port = sd.port;
    d.mcast_ttl = sd.ttl;
    Some(d)
}

/// One stable line for scripts: "ipvs: 3 applied, 0 failed, 3 writes, 0 foreign".
pub fn summary(r: &ApplyReport) -> String {
    format!(
        "ipvs: {} applied, {} failed, {} writes, {} foreign",
        r.sync.applied.len(),
        r.sync.failed.len() + usize::from(r.sync.dump_error.is_some()),
        r.writes,
        r.foreign.len(),
    )
}

/// Log what a pass did: its writes and failures (the first ones one per line), the
/// foreign-service warning, a summary.
pub fn log_report(r: &ApplyReport, remove_foreign: bool) {
    if let Some(e) = &r.sync.dump_error {
        tracing::error!(error = %e, "cannot read the IPVS table");
    }
    r.sync.log_applied();
    for d in &r.daemon_ops {
        tracing::info!(op = %d, "applied");
    }
    if let Some(e) = &r.timeouts_error {
        tracing::error!(error = %e, "cannot set lvs_timeouts");
    }
    // As many failed writes one per line as written ones, then a count: a kernel refusing
    // every write (a scheduler module missing) would otherwise fill the log.
    let (shown, rest) = r.sync.failed.split_at(r.sync.failed.len().min(super::backend::OPS_LOGGED));
    for (op, err) in shown {
        tracing::error!(op = %op, error = %err, "failed");
    }
    if !rest.is_empty() {
        tracing::error!(target: "ipvs", "and {} more failed writes (listed at debug level: LVSD_LOG=info,ipvs=debug)", rest.len());
    }
    for (op, err) in rest {
        tracing::debug!(target: "ipvs", op = %op, error = %err, "failed");
    }
    if !r.foreign.is_empty() && !remove_foreign {
        let names: Vec<String> = r.foreign.iter().map(format::service_name).collect();
        tracing::warn!(
            services = %names.join(", "),
            "{} service(s) in the kernel are not in the policy; kept (set lvsd.global {{ foreign = \"remove\" }} to delete them)",
            names.len()
        );
    }
    tracing::info!(applied = r.sync.applied.len(), failed = r.sync.failed.len(), writes = r.writes, "ipvs sync done");
    tracing::info!(target: "ipvs_timing", "{}", r.sync.timing);
}
