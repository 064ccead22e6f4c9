//! keepalived statement tree -> lvsd policy document.
//!
//! keepalived defaults this translation relies on (keepalived 2.2.7; "man" is
//! keepalived.conf(5) as shipped in Debian's keepalived 2.2.7, "run" is what
//! `keepalived -d` / `keepalived -t` 2.2.7 printed for a config without the keyword):
//!
//! | keyword                         | keepalived default                 | source | lvsd contract default | output            |
//! |---------------------------------|------------------------------------|--------|-----------------------|-------------------|
//! | vrrp_instance state             | BACKUP                             | man    | "backup"              | omitted           |
//! | priority                        | 100                                | man    | 100                   | omitted           |
//! | advert_int                      | 1 s                                | man    | 1                     | omitted           |
//! | version                         | global vrrp_version, else 2        | man    | 2                     | set when 3        |
//! | preempt_delay                   | 0                                  | man    | 0                     | omitted           |
//! | vrrp_garp_master_delay          | 5 s                                | man    | 5                     | omitted           |
//! | vrrp_garp_master_repeat         | 5                                  | man    | 5                     | omitted           |
//! | vrrp_garp_lower_prio_delay      | = master_delay in effect           | man    | 5                     | written out       |
//! | vrrp_garp_lower_prio_repeat     | = master_repeat in effect          | man    | 5                     | written out       |
//! | instance garp_*                 | the global vrrp_garp_* values      | man    | (unspecified)         | whole table       |
//! | vrrp_garp_master_refresh        | 0 (off)                            | man    | 0                     | omitted           |
//! | vrrp_garp_master_refresh_repeat | 1                                  | man    | 1                     | omitted           |
//! | vrrp_garp_interval              | 0                                  | man    | 0                     | omitted           |
//! | vrrp_script interval            | 1 s                                | man    | 1                     | omitted           |
//! | vrrp_script timeout             | = interval                         | man    | (unset)               | as written        |
//! | vrrp_script weight / rise / fall| 0 / 1 / 1                          | man    | 0 / 1 / 1             | omitted           |
//! | virtual_server protocol         | UDP (!) when absent                | run    | "tcp"                 | `protocol = "udp"`|
//! | lb_algo / lvs_sched             | wlc                                | run    | "wlc"                 | omitted           |
//! | lb_kind / lvs_method            | NAT (!)                            | man+run| "dr"                  | `forward = "nat"` |
//! | persistence_timeout (no value)  | 360 s ("6 minutes")                | man    | true = 360            | `true`            |
//! | quorum / hysteresis             | 1 / 0                              | man    | 1 / 0                 | omitted           |
//! | real_server weight              | 1                                  | man    | 1                     | omitted           |
//! | real_server port (absent)       | the virtual server's port          | run    | -                     | written out       |
//! | delay_loop                      | 60 s                               | man    | interval = 60         | omitted           |
//! | connect_timeout                 | 5 s                                | man    | timeout = 5           | omitted           |
//! | retry                           | 1; DNS_CHECK 3; MISC_CHECK 0       | man    | retries = 1           | set for DNS/MISC  |
//! | delay_before_retry              | 1 s; HTTP_GET/SSL_GET 3 s;         | man    | retry_delay = 1       | set for HTTP/SSL/ |
//! |                                 | DNS_CHECK = delay_loop             |        |                       | DNS               |
//! | warmup                          | random up to delay_loop            | man    | 0                     | not expressible   |
//! | connect_port                    | the real server's port             | man    | real's port           | omitted if equal  |
//! | HTTP url status_code            | 200-299                            | man    | "200-299"             | omitted           |
//! | DNS_CHECK type / name           | SOA / "."                          | man    | "SOA" / "."           | omitted           |
//! | misc_timeout                    | the virtual_server's delay_loop    | check_misc.c (misc_check_thread) | 5 | written out |
//! | auth_pass                       | only the first 8 characters used   | man    | max 8                 | truncated + warn  |
//! | nat_mask                        | ignored (Linux 2.2 LVS only; 2.2.7 "Unknown keyword") | run | - | comment + warn |
//! | nb_get_retry                    | = retry in HTTP_GET/SSL_GET; unknown elsewhere (2.2.7) | run | - | HTTP/SSL: retries + warn; else ignored + warn |
//! | lvs_sync_daemon_inteface        | unknown keyword (a misspelling in keepalived's docs; no parser read it) | run | - | translated + warn |
//!
//! keepalived also corrects some settings when it validates the configuration
//! (validate_check_config in keepalived/check/check_data.c; each prints a message with
//! `keepalived -t`). The import makes the same corrections, each with a warning, so that
//! the IPVS table is the one keepalived builds: a virtual_server without real servers is
//! dropped; `ops` is cleared unless UDP or fwmark; a port-less address service becomes
//! persistent (360 s); a duplicated real server is dropped; DR/TUN reals (and the sorry
//! server) take the virtual server's port (none for fwmark); NAT reals without a port take
//! the virtual server's; quorum is capped at the sum of weights and hysteresis below the
//! quorum; ha_suspend is cleared on fwmark services.

//!
//! The translation is split by keepalived block: this file is the driver (the order blocks
//! are read in, the shared state, the keyword tables and the warnings for keywords without a
//! home); `global` is global_defs; `vrrp` is vrrp_script, vrrp_instance and
//! vrrp_sync_group; `virtual_server` is virtual_server_group, virtual_server and
//! real_server; `checkers` is the health checkers; `values` parses keepalived's values.

mod checkers;
mod global;
mod merge;
mod routes;
mod tracked;
mod values;
mod virtual_server;
mod vmac;
mod vrrp;

use std::collections::HashMap;
use std::net::IpAddr;

use thiserror::Error;

use super::lua::{Doc, Entry, Field, Item, Kind, Value, field, s};
use super::parser::{Node, keyword_like, shown};
use super::{Loc, Warning};

use global::{garp_key, resolve_garp};
pub use values::argv;
use values::*;

#[derive(Debug, Error)]
pub enum TranslateError {
    #[error("{0}: {1}: '{2}' is not a valid number{3}")]
    BadNumber(Loc, String, String, String),
    #[error("{0}: {1}: '{2}' is not valid ({3})")]
    BadValue(Loc, String, String, String),
    #[error("{0}: {1}: missing argument ({2})")]
    MissingArg(Loc, String, String),
    #[error("{0}: unknown block '{1}' (not a keepalived {2} block)")]
    UnknownBlock(Loc, String, String),
    #[error("{0}: {1} '{2}' is defined twice (first at {3})")]
    Duplicate(Loc, String, String, Loc),
    #[error("{0}: not a keepalived statement (its text is not shown); is this file a keepalived configuration?")]
    NotKeepalived(Loc),
    /// Every error found, in file order (as `keepalived -t` lists them all).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Several(Vec<TranslateError>),
}

impl TranslateError {
    /// Where the error is (the first one's place for `Several`).
    pub fn loc(&self) -> Option<&Loc> {
        match self {
            TranslateError::BadNumber(l, ..)
            | TranslateError::BadValue(l, ..)
            | TranslateError::MissingArg(l, ..)
            | TranslateError::UnknownBlock(l, ..)
            | TranslateError::Duplicate(l, ..)
            | TranslateError::NotKeepalived(l) => Some(l),
            TranslateError::Several(v) => v.first().and_then(|e| e.loc()),
        }
    }

    /// The single errors, in order.
    pub fn all(&self) -> Vec<&TranslateError> {
        match self {
            TranslateError::Several(v) => v.iter().flat_map(|e| e.all()).collect(),
            e => vec![e],
        }
    }
}

/// Errors reported in one run; past this many the rest are counted, not listed.
const MAX_ERRORS: usize = 100;

type R<T> = Result<T, TranslateError>;

const NO_HOME: &str = "no equivalent in the lvsd policy API";

/// Checker settings inherited virtual_server -> real_server -> checker.
#[derive(Debug, Clone, Default)]
struct CheckDefaults {
    delay_loop: Option<Value>,
    /// The virtual_server's own delay_loop: keepalived's misc_timeout default (not overridable
    /// by real_server or checker delay_loop).
    vs_delay_loop: Option<Value>,
    connect_timeout: Option<Value>,
    retry: Option<(i64, Loc)>,
    delay_before_retry: Option<Value>,
    warmup: Option<Value>,
    virtualhost: Option<String>,
}

struct Tx<'w> {
    w: &'w mut Vec<Warning>,
    /// global vrrp_version
    version: Option<i64>,
    /// vrrp_script name -> (its body, default weight, where it is defined)
    scripts: HashMap<String, (Vec<Entry>, i64, Loc)>,
    /// track_file name -> how it is written
    track_files: HashMap<String, tracked::TrackDef>,
    /// vrrp_track_process name -> how it is written
    track_processes: HashMap<String, tracked::TrackDef>,
    /// virtual_server_group name -> members
    groups: HashMap<String, Vec<GroupMember>>,
    /// `lvsd.sync_daemon`, from global lvs_sync_daemon or an instance's lvs_sync_daemon_interface.
    sync_daemon: Option<Item>,
    /// global_defs vrrp_garp_* settings, the defaults of each instance's garp_*.
    global_garp: Vec<(&'static str, Value, Loc)>,
    /// Errors so far: a wrong statement is reported and the translation goes on, so that one
    /// run lists every error.
    errors: Vec<TranslateError>,
    /// global_defs vrrp_strict (each instance's strict_mode defaults to it).
    strict: Option<Loc>,
    /// global_defs vrrp_skip_check_adv_addr (each instance's skip_check_adv_addr defaults to it).
    skip_check_adv_addr: bool,
    /// The virtual MAC interface names given so far, in instance order.
    vmac_names: Vec<String>,
}

#[derive(Debug, Clone)]
enum GroupMember {
    Addr(IpAddr, u16),
    Fwmark(i64, Option<String>),
}

/// Translate a parsed configuration.
pub fn translate(nodes: &[Node], warnings: &mut Vec<Warning>) -> R<Doc> {
    let mut tx = Tx {
        w: warnings,
        version: None,
        scripts: HashMap::new(),
        track_files: HashMap::new(),
        track_processes: HashMap::new(),
        groups: HashMap::new(),
        sync_daemon: None,
        global_garp: Vec::new(),
        errors: Vec::new(),
        strict: None,
        skip_check_adv_addr: false,
        vmac_names: Vec::new(),
    };
    let mut globals = Vec::new();
    let mut tracks = Vec::new();
    let mut vrrps = Vec::new();
    let mut syncs = Vec::new();
    let mut services = Vec::new();
    let mut notes = Vec::new();

    // Definitions used by later blocks first: global vrrp_version, scripts, server groups.
    for n in nodes {
        match n.key.as_str() {
            "global_defs" => globals.extend({
                let r = tx.global(n);
                tx.ok(r)
            }),
            "vrrp_script" => tracks.extend({
                let r = tx.script(n);
                tx.ok(r)
            }),
            "virtual_server_group" => {
                let r = tx.server_group(n);
                tx.keep(r);
            }
            _ => {}
        }
    }
    // Tracked files and processes after every vrrp_script: their Lua names avoid the scripts'.
    for n in nodes.iter().filter(|n| matches!(n.key.as_str(), "track_file" | "vrrp_track_file")) {
        let r = tx.track_file(n);
        tracks.extend(tx.ok(r));
    }
    for n in nodes.iter().filter(|n| n.key == "vrrp_track_process") {
        let r = tx.track_process(n);
        tracks.extend(tx.ok(r));
    }
    for n in nodes {
        match n.key.as_str() {
            "global_defs" | "vrrp_script" | "virtual_server_group" | "track_file" | "vrrp_track_file" | "vrrp_track_process" => {}
            "vrrp_instance" => {
                let r = tx.vrrp(n);
                vrrps.extend(tx.ok(r));
            }
            "vrrp_sync_group" => {
                let r = tx.sync_group(n);
                syncs.extend(tx.ok(r));
            }
            "virtual_server" => {
                let r = tx.virtual_server(n);
                services.extend(tx.ok(r).into_iter().flatten());
            }
            k if TOP_UNSUPPORTED.contains(&k) => {
                let mut body = Vec::new();
                tx.unsupported(n, NO_HOME, &mut body);
                notes.push(Item { kind: Kind::Note, name: k.into(), loc: n.loc.clone(), pre: vec![], body, only_on: None });
            }
            k if !keyword_like(k) => tx.keep(Err(TranslateError::NotKeepalived(n.loc.clone()))),
            k if n.block.is_some() => {
                tx.keep(Err(TranslateError::UnknownBlock(n.loc.clone(), k.into(), "top-level".into())));
            }
            _ => {
                let mut body = Vec::new();
                tx.unknown(n, &mut body);
                notes.push(Item { kind: Kind::Note, name: n.key.clone(), loc: n.loc.clone(), pre: vec![], body, only_on: None });
            }
        }
    }
    let syncs = tx.sync_members(syncs, &vrrps);
    let services = tx.merge_duplicate_services(services);
    if !tx.errors.is_empty() {
        let order = file_order(nodes);
        let mut errors = std::mem::take(&mut tx.errors);
        errors.sort_by_key(|e| e.loc().map(|l| (order.get(&l.file).copied().unwrap_or(usize::MAX), l.line)));
        if errors.len() > MAX_ERRORS {
            let more = errors.len() - MAX_ERRORS;
            errors.truncate(MAX_ERRORS);
            let loc = errors[MAX_ERRORS - 1].loc().cloned().unwrap_or(Loc { file: String::new(), line: 0 });
            errors.push(TranslateError::MissingArg(loc, format!("{more} more errors"), "not listed".into()));
        }
        sort_warnings(nodes, tx.w);
        return Err(if errors.len() == 1 { errors.remove(0) } else { TranslateError::Several(errors) });
    }
    sort_warnings(nodes, tx.w);
    let mut doc = Doc::default();
    doc.items.extend(globals);
    doc.items.extend(tracks);
    doc.items.extend(vrrps.iter().cloned());
    doc.items.extend(syncs);
    if let Some(mut sd) = tx.sync_daemon.take() {
        // keepalived's sync id defaults to the VRID of the instance the daemon follows.
        let inst = find_str(&sd.body, "instance");
        let has_id = sd.body.iter().any(|e| matches!(e, Entry::Field(f) if f.key == "id"));
        if let (Some(inst), false) = (inst, has_id) {
            let vrid = vrrps.iter().find(|v| v.name == inst).and_then(|v| {
                v.body.iter().find_map(|e| match e {
                    Entry::Field(Field { key, value: Value::Int(i), .. }) if key == "vrid" => Some(*i),
                    _ => None,
                })
            });
            if let Some(id) = vrid {
                sd.body.push(field("id", Value::Int(id), &sd.loc.clone()));
            }
        }
        doc.items.push(sd);
    }
    doc.items.extend(services);
    doc.items.extend(notes);
    Ok(doc)
}

/// Each file's rank in reading order (includes are read where they stand, so the first
/// statement of each file, in tree order, gives that order).
fn file_order(nodes: &[Node]) -> HashMap<String, usize> {
    let mut order = HashMap::new();
    let mut stack: Vec<&Node> = nodes.iter().rev().collect();
    while let Some(n) = stack.pop() {
        let next = order.len();
        order.entry(n.loc.file.clone()).or_insert(next);
        stack.extend(n.children().iter().rev());
    }
    order
}

/// Warnings in file order (a stable sort: those of one line keep their order).
pub fn sort_warnings(nodes: &[Node], warnings: &mut [Warning]) {
    let order = file_order(nodes);
    warnings.sort_by_key(|w| (order.get(&w.loc.file).copied().unwrap_or(usize::MAX), w.loc.line));
}

const TOP_UNSUPPORTED: &[&str] = &[
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "linkbeat_interfaces",
    "track_group",
    "bfd_instance",
    "garp_group",
    "interface_up_down_delays",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "linkbeat_use_polling",
    "child_wait_time",
    "SSL",
];

const GLOBAL_KNOWN: &[&str] = &[
    "tmp_config_directory",
    "config_save_dir",
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "bfd_process_name",
    "use_symlink_paths",
    "set_supplementary_groups",
    "startup_script",
    "startup_script_timeout",
    "shutdown_script",
    "shutdown_script_timeout",
    "smtp_helo_name",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "checker_log_all_failures",
    "no_email_faults",
    "vrrp_mcast_group4",
    "vrrp_mcast_group6",
    "default_interface",
    "lvs_sync_daemon",
    "lvs_flush",
    "lvs_flush_on_stop",
    "vrrp_gna_interval",
    "vrrp_garp_extra_if",
    "vrrp_down_timer_adverts",
    "vrrp_lower_prio_no_advert",
    "vrrp_higher_prio_send_advert",
    "v3_checksum_as_v2",
    "nftables",
    "nftables_priority",
    "nftables_counters",
    "nftables_ifindex",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "vrrp_iptables",
    "vrrp_ipsets",
    "disable_local_igmp",
    "vrrp_check_unicast_src",
    "vrrp_strict",
    "vrrp_notify_priority_changes",
    "vrrp_priority",
    "checker_priority",
    "bfd_priority",
    "vrrp_no_swap",
    "checker_no_swap",
    "bfd_no_swap",
    "vrrp_cpu_affinity",
    "checker_cpu_affinity",
    "bfd_cpu_affinity",
    "checker_rt_priority",
    "bfd_rt_priority",
    "vrrp_rlimit_rttime",
    "checker_rlimit_rttime",
    "bfd_rlimit_rttime",
    "snmp_socket",
    "enable_snmp_vrrp",
    "enable_snmp_checker",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_traps",
    "enable_snmp_keepalived",
    "snmp_vs_stats_update_interval",
    "snmp_rs_stats_update_interval",
    "enable_dbus",
    "dbus_service_name",
    "dbus_no_interface_name",
    "notify_fifo",
    "notify_fifo_script",
    "vrrp_notify_fifo",
    "vrrp_notify_fifo_script",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "fifo_write_vrrp_states_on_reload",
    "dynamic_interfaces",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "rs_init_notifies",
    "no_checker_emails",
    "umask",
    "vrrp_startup_delay",
    "vrrp_delay_after_boot",
    "log_unknown_vrids",
    "vmac_prefix",
    "vmac_addr_prefix",
    "random_seed",
    "reload_check_config",
    "include_check",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "data_use_instance",
    "state_file_location",
    "stats_file_location",
    "json_file_location",
    "json_version",
    "iproute_usr_dir",
    "iproute_etc_dir",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "linkbeat_use_polling",
    "child_wait_time",
];

const VRRP_KNOWN: &[&str] = &[
    "vrf",
    "use_vmac_addr",
    "use_ipvlan",
    "native_ipv6",
    "track_bfd",
    "mcast_dst_ip",
    "track_src_ip",
    "unicast_fault_no_peer",
    "unicast_ttl",
    "old_unicast_checksum",
    "garp_extra_if",
    "down_timer_adverts",
    "timer_expired_backup",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "auth_hmac",
    "no_virtual_ipaddress",
    "promote_secondaries",
    "virtual_rules",
    "no_accept",
    "strict_mode",
    "debug",
    "notify_master_rx_lower_pri",
    "notify_priority_changes",
    "notify_deleted",
    "kernel_rx_buf_size",
    "linkbeat_use_polling",
    "gna_master_delay",
];

const VS_KNOWN: &[&str] = &["flag-3", "smtp_alert", "snmp_name", "abs_priority"];
const RS_KNOWN: &[&str] = &["smtp_alert", "snmp_name", "track_file", "track_bfd"];
const CHECK_KNOWN: &[&str] = &[
    "connect_ip",
    "bind_if",
    "bind_port",
    "fwmark",
    "alpha",
    "log_all_failures",
    "http_protocol",
    "fast_recovery",
    "tls_compliant",
    "enable_sni",
    "min_reply_length",
    "max_reply_length",
    "host",
];

impl Tx<'_> {
    fn warn(&mut self, loc: &Loc, msg: impl Into<String>) {
        self.w.push(Warning::new(loc, msg));
    }

    /// keepalived's vrrp_sync_set_group (keepalived/vrrp/vrrp_sync.c): "Virtual router %s
    /// specified in sync group %s doesn't exist - ignoring", "cannot exist in more than one
    /// sync group; ignoring", and a group left without members is removed.
    fn sync_members(&mut self, syncs: Vec<Item>, vrrps: &[Item]) -> Vec<Item> {
        let mut taken: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for mut g in syncs {
            if g.kind != Kind::SyncGroup {
                out.push(g);
                continue;
            }
            let Some(Entry::Field(f)) = g.body.iter_mut().find(|e| matches!(e, Entry::Field(f) if f.key == "instances")) else {
                out.push(g);
                continue;
            };
            let loc = f.loc.clone().unwrap_or(g.loc.clone());
            let Value::List(list) = &mut f.value else { continue };
            let mut kept = Vec::new();
            for v in list.drain(..) {
                let Value::Str(name) = &v else { continue };
                if !vrrps.iter().any(|i| &i.name == name) {
                    self.warn(
                        &loc,
                        format!(
                            "vrrp_sync_group {}: instance {} is not defined; keepalived ignores it: left out",
                            shown(&g.name),
                            shown(name)
                        ),
                    );
                } else if taken.contains(name) {
                    self.warn(
                        &loc,
                        format!(
                            "vrrp_sync_group {}: instance {} is already in another sync group; keepalived ignores it here: left out",
                            shown(&g.name),
                            shown(name)
                        ),
                    );
                } else {
                    taken.push(name.clone());
                    kept.push(v);
                }
            }
            if kept.is_empty() {
                self.warn(
                    &g.loc,
                    format!("vrrp_sync_group {} has no defined instance; keepalived removes it: not translated", shown(&g.name)),
                );
                let body =
                    vec![Entry::Comment(format!("keepalived: vrrp_sync_group {} (not translated: no defined instance)", shown(&g.name)))];
                out.push(Item { kind: Kind::Note, body, ..g });
                continue;
            }
            *list = kept;
            out.push(g);
        }
        out
    }

    /// A keyword that sets one value: a repeated one replaces the earlier (keepalived's
    /// handlers assign), said in a warning.
    fn set_last(&mut self, body: &mut Vec<Entry>, n: &Node, key: &str, value: Value) {
        if let Some(old) = take(body, key) {
            let at = old.loc.map(|l| format!(" (also at line {})", l.line)).unwrap_or_default();
            self.warn(&n.loc, format!("keyword '{}' repeated{at}; keepalived uses the last", shown(&n.key)));
        }
        body.push(field(key, value, &n.loc));
    }

    /// A script line as an argument vector. keepalived execs it without a shell, except a
    /// script whose first word is a redirection to a path (`</dev/tcp/192.0.2.1/80`), which
    /// it runs with system(3), the other words single-quoted (check_script_secure and
    /// cmd_str_r in keepalived's lib/notify.c): that one becomes `/bin/sh -c`.
    fn command(&mut self, n: &Node, script: &str) -> Value {
        let Value::List(words) = argv(script) else { return argv(script) };
        let first = match words.first() {
            Some(Value::Str(w)) => w.clone(),
            _ => return Value::List(words),
        };
        let after = first.get(1..).unwrap_or("").trim_start_matches([' ', '\t']);
        if !(first.starts_with('<') && after.starts_with('/')) {
            return Value::List(words);
        }
        let mut line = first;
        for w in &words[1..] {
            if let Value::Str(w) = w {
                line.push_str(&format!(" '{w}'"));
            }
        }
        self.warn(&n.loc, format!("keyword '{}': a script starting with '<' is run by keepalived through /bin/sh; translated as {{ \"/bin/sh\", \"-c\", ... }}", shown(&n.key)));
        Value::List(vec![s("/bin/sh"), s("-c"), s(&line)])
    }

    /// keepalived's `user USER [GROUP]` of a script (or the words after a notify script):
    /// the program's own user and group, named in its argument table.
    fn run_as(&mut self, n: &Node, cmd: &mut Value, words: &[String]) {
        let Value::List(items) = cmd else { return };
        let mut words = words.iter();
        if let Some(u) = words.next() {
            items.push(Value::Named("user".into(), Box::new(s(u))));
        }
        if let Some(g) = words.next() {
            items.push(Value::Named("group".into(), Box::new(s(g))));
        }
        if words.next().is_some() {
            self.warn(&n.loc, format!("keyword '{}': words after the user and group; keepalived ignores them", shown(&n.key)));
        }
    }

    /// Record an error and go on.
    fn keep(&mut self, r: R<()>) {
        if let Err(e) = r {
            self.errors.push(e);
        }
    }

    /// The value, or `None` with the error recorded.
    fn ok<T>(&mut self, r: R<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// A known keepalived keyword lvsd has no home for: warning + comment in place.
    fn unsupported(&mut self, n: &Node, reason: &str, body: &mut Vec<Entry>) {
        self.warn(&n.loc, format!("keyword '{}' is not supported by lvsd ({reason})", shown(&n.key)));
        let lines = node_lines(n, 0);
        body.push(Entry::Comment(format!("keepalived: {} (not translated: {reason})", lines[0])));
        for l in &lines[1..] {
            body.push(Entry::Comment(format!("keepalived: {l}")));
        }
    }

    /// A keyword keepalived does not know either (it ignores those with a warning). Only the
    /// keyword is quoted, as keepalived's "Unknown keyword" does: the line may be anything.
    fn unknown(&mut self, n: &Node, body: &mut Vec<Entry>) {
        let why = "not a keepalived 2.2 keyword here; keepalived ignores it too";
        let key = shown(&n.key);
        self.warn(&n.loc, format!("keyword '{key}' is not supported by lvsd ({why})"));
        body.push(Entry::Comment(format!("keepalived: line {}: {key} ... (not translated: {why})", n.loc.line)));
    }

    /// An unknown keyword: a block is an error, a single line a warning.
    fn other(&mut self, n: &Node, within: &str, known: &[&str], body: &mut Vec<Entry>) -> R<()> {
        if known.contains(&n.key.as_str()) {
            self.unsupported(n, NO_HOME, body);
            Ok(())
        } else if n.block.is_some() {
            Err(TranslateError::UnknownBlock(n.loc.clone(), shown(&n.key), within.into()))
        } else {
            self.unknown(n, body);
            Ok(())
        }
    }

    /// A keyword's option lvsd has no home for, naming the enclosing keyword (list entries
    /// have no keyword of their own).
    fn unsupported_arg_of(&mut self, n: &Node, keyword: &str, what: &str, body: &mut Vec<Entry>) {
        let what = what.split(' ').map(shown).collect::<Vec<_>>().join(" ");
        self.warn(&n.loc, format!("keyword '{keyword}' option '{what}' is not supported by lvsd ({NO_HOME})"));
        body.push(Entry::Comment(format!("keepalived: {} (not translated: option '{what}')", n.text)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::lua::s;
    use crate::import::parser::{ParseOptions, parse_str};
    use std::path::Path;

    fn strs(v: Value) -> Vec<String> {
        match v {
            Value::List(l) => l.into_iter().map(|x| if let Value::Str(s) = x { s } else { panic!() }).collect(),
            _ => panic!(),
        }
    }

    #[test]
    fn scripts_split_like_keepalived_without_a_shell() {
        assert_eq!(strs(argv("/bin/check  a 'b c' d\\ e")), vec!["/bin/check", "a", "b c", "d e"]);
        assert_eq!(strs(argv("x ''")), vec!["x", ""]);
    }

    pub(super) fn translate_text(text: &str) -> (Doc, Vec<Warning>) {
        // lvsd needs a VIP per instance: give one (on the opening line, so line numbers stay)
        // to each instance written without.
        let parts: Vec<&str> = text.split("vrrp_instance ").collect();
        let mut text = parts[0].to_string();
        for p in &parts[1..] {
            let own = p.split("\n}\n").next().unwrap_or("");
            text.push_str("vrrp_instance ");
            if own.contains("virtual_ipaddress") {
                text.push_str(p);
            } else {
                text.push_str(&p.replacen(" {\n", " { virtual_ipaddress { 192.0.2.99 }\n", 1));
            }
        }
        let (nodes, mut w) = parse_str(Path::new("t.conf"), &text, &ParseOptions::default()).unwrap();
        let doc = translate(&nodes, &mut w).unwrap();
        (doc, w)
    }

    #[test]
    fn a_real_time_priority_outside_1_to_99_is_brought_in_as_keepalived_does() {
        for (given, want) in [("0", 1), ("-5", 1), ("150", 99), ("40", 40)] {
            let (doc, w) = translate_text(&format!("global_defs {{\n vrrp_rt_priority {given}\n}}\n"));
            let text = crate::import::lua::render(&doc, "", None);
            assert!(text.contains(&format!("vrrp_rt_priority = {want},")), "{given}: {text}");
            let warned =
                w.iter().any(|w| w.to_string().contains(&format!("vrrp_rt_priority {given} is outside 1..99: keepalived takes {want}")));
            assert_eq!(warned, given != "40", "{given}: {w:?}");
        }
    }

    #[test]
    fn a_vip_broadcast_is_kept_as_keepalived_reads_it() {
        let (doc, w) = translate_text(
            "vrrp_instance V {\n virtual_ipaddress {\n 192.0.2.10/24 brd + dev eth0\n 192.0.2.11/24 brd 192.0.2.255\n 192.0.2.12/31 brd +\n 192.0.2.13/24 brd nowhere\n }\n}\n",
        );
        let text = crate::import::lua::render(&doc, "", None);
        assert!(text.contains("\"192.0.2.10/24 brd + dev eth0\""), "{text}");
        assert!(text.contains("\"192.0.2.11/24 brd 192.0.2.255\""), "{text}");
        // A prefix too long for + or -: kept without broadcast; an unreadable one skips the VIP.
        assert!(text.contains("\"192.0.2.12/31\""), "{text}");
        assert!(!text.contains("\"192.0.2.13"), "{text}");
        assert!(w.iter().any(|w| w.message.contains("brd + needs a prefix of 30 or less")), "{w:?}");
        assert!(w.iter().any(|w| w.message.contains("192.0.2.13/24 brd nowhere") && w.message.contains("keepalived skips it")), "{w:?}");
    }

    #[test]
    fn max_auto_priority_is_noted_not_warned() {
        let (doc, w) = translate_text("global_defs {\n max_auto_priority 50\n}\n");
        let text = crate::import::lua::render(&doc, "", None);
        assert!(
            text.contains("-- keepalived: max_auto_priority 50 (lvsd's VRRP thread runs at real-time priority from the start"),
            "{text}"
        );
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn unicast_addresses_lose_a_mask_as_keepalived_reads_them() {
        let (doc, w) =
            translate_text("vrrp_instance V {\n unicast_src_ip 192.0.2.1/24\n unicast_peer {\n 192.0.2.2/24\n 192.0.2.3-9\n }\n}\n");
        let text = crate::import::lua::render(&doc, "", None);
        assert!(text.contains("unicast_src = \"192.0.2.1\","), "{text}");
        assert!(text.contains("unicast_peers = { \"192.0.2.2\", \"192.0.2.3\" },"), "{text}");
        assert!(
            w.iter().any(|w| w.message.contains("unicast_peer 192.0.2.2/24: keepalived reads the address alone and drops '/24'")),
            "{w:?}"
        );
    }

    #[test]
    fn check_unicast_src_without_peers_and_accept() {
        let (doc, w) = translate_text("vrrp_instance V {\n check_unicast_src\n accept\n}\n");
        let text = crate::import::lua::render(&doc, "", None);
        assert!(!text.contains("check_unicast_src = true"), "{text}");
        assert!(text.contains("-- keepalived: accept (lvsd never blocks traffic to the VIPs)"), "{text}");
        assert!(w.iter().any(|w| w.message.contains("check_unicast_src applies to unicast peers and there are none")), "{w:?}");
        assert_eq!(w.len(), 1, "{w:?}");
        let (doc, _) = translate_text("vrrp_instance V {\n check_unicast_src\n unicast_peer {\n 192.0.2.2\n }\n}\n");
        assert!(crate::import::lua::render(&doc, "", None).contains("check_unicast_src = true"));
    }

    #[test]
    fn a_scripts_own_user_is_kept() {
        let (doc, w) = translate_text(
            "vrrp_script chk {\n user nobody nogroup\n init_fail\n script \"/usr/local/bin/chk --fast\"\n}\n\
             vrrp_instance V {\n notify_master \"/usr/local/bin/up\" keepalived_script\n track_script {\n chk\n }\n}\n",
        );
        let text = crate::import::lua::render(&doc, "", None);
        assert!(text.contains("command = { \"/usr/local/bin/chk\", \"--fast\", user = \"nobody\", group = \"nogroup\" },"), "{text}");
        assert!(text.contains("master = { \"/usr/local/bin/up\", user = \"keepalived_script\" }"), "{text}");
        assert!(text.contains("  init_fail = true,\n"), "{text}");
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn lvs_timeouts_are_read_as_keepalived_reads_them() {
        let (doc, w) = translate_text("global_defs {\n lvs_timeouts tcp 7200 udp x tcpfin 60 foo\n}\n");
        let text = crate::import::lua::render(&doc, "", None);
        assert!(text.contains("lvs_timeouts = { tcp = 7200, tcpfin = 60 },"), "{text}");
        assert!(w.iter().any(|w| w.message.contains("lvs_timeouts: udp 'x' is not 0..2678400 seconds")), "{w:?}");
        assert!(w.iter().any(|w| w.message.contains("lvs_timeouts: unknown option 'foo'")), "{w:?}");
    }

    #[test]
    fn a_vrrp_script_defined_twice_is_the_first() {
        let (doc, w) = translate_text(
            "vrrp_script chk {\n script \"/bin/true\"\n}\nvrrp_script chk {\n script \"/bin/false\"\n}\nvrrp_instance V {\n track_script {\n chk\n }\n}\n",
        );
        let text = crate::import::lua::render(&doc, "", None);
        assert!(text.contains("command = { \"/bin/true\" },"), "{text}");
        assert!(!text.contains("command = { \"/bin/false\" }"), "{text}");
        assert!(w.iter().any(|w| w.message.contains("vrrp_script chk: defined again (first at line 1)")), "{w:?}");
    }

    #[test]
    fn the_first_address_sets_the_instances_family() {
        // keepalived skips what does not match: unicast_src_ip and unicast_peer entries
        // ("MUST be of the same family !!! Skipping...") and VIPs ("address family must
        // match VRRP instance ... - ignoring"), whichever came first.
        let (doc, w) = translate_text(
            "vrrp_instance V {\n unicast_src_ip 2001:db8::1\n unicast_peer {\n  192.0.2.2\n  2001:db8::2\n }\n virtual_ipaddress {\n  192.0.2.10\n  2001:db8::10\n }\n}\n",
        );
        let text = crate::import::lua::render(&doc, "", None);
        assert!(text.contains("unicast_src = \"2001:db8::1\""), "{text}");
        assert!(text.contains("unicast_peers = { \"2001:db8::2\" }"), "{text}");
        assert!(text.contains("vips = { \"2001:db8::10\" }"), "{text}");
        let w: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("t.conf:4: unicast_peer 192.0.2.2: not of the instance's family"), "{w:?}");
        assert!(w[1].starts_with("t.conf:8: virtual_ipaddress 192.0.2.10: not of the instance's family"), "{w:?}");
    }

    #[test]
    fn a_vip_keepalived_cannot_read_is_skipped_and_the_others_kept() {
        // vrrp_data.c: "VRRP parsed invalid IP fwmark. skipping IP..." (keepalived -t).
        let (doc, w) = translate_text("vrrp_instance V {\n virtual_ipaddress {\n  fwmark 21\n  192.0.2.10\n }\n}\n");
        let text = crate::import::lua::render(&doc, "", None);
        assert!(text.contains("vips = { \"192.0.2.10\" }"), "{text}");
        assert!(text.contains("-- keepalived: fwmark 21 (not translated: not an address keepalived reads"), "{text}");
        let w: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("t.conf:3: virtual_ipaddress entry 'fwmark 21': not an address keepalived reads"), "{w:?}");
    }

    #[test]
    fn a_bad_script_weight_is_reported_not_fatal() {
        let (doc, w) = translate_text("vrrp_script chk {\n script \"/bin/true\"\n weight - 2\n}\n");
        let text = crate::import::lua::render(&doc, "", None);
        assert!(text.contains("local chk = lvsd.track.exec") && !text.contains("weight ="), "{text}");
        let w: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        assert!(w.iter().any(|w| w.starts_with("t.conf:3: vrrp_script chk: weight '-' is not in -253..253")), "{w:?}");
    }

    #[test]
    fn script_user_and_its_group_are_kept() {
        let (doc, w) = translate_text("global_defs {\n script_user nobody nogroup\n}\n");
        let text = crate::import::lua::render(&doc, "", None);
        assert!(text.contains("script_user = \"nobody\",\n  script_group = \"nogroup\","), "{text}");
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn gna_interval_0_is_the_default_and_instance_garp_intervals_are_not_keywords() {
        let (doc, w) = translate_text("global_defs {\n vrrp_gna_interval 0\n}\nvrrp_instance V {\n garp_interval 1\n}\n");
        let text = crate::import::lua::render(&doc, "", None);
        assert!(text.contains("-- keepalived: vrrp_gna_interval 0 (the default)"), "{text}");
        let w: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        // keepalived 2.2.7: "Unknown keyword 'garp_interval'" (only a garp_group has one).
        assert_eq!(
            w,
            ["t.conf:5: keyword 'garp_interval' is not supported by lvsd (not a keepalived 2.2 keyword here; keepalived ignores it too)"]
        );
    }

    #[test]
    fn dont_track_primary_is_kept() {
        let (doc, w) = translate_text("vrrp_instance V {\n dont_track_primary\n}\n");
        let text = crate::import::lua::render(&doc, "", None);
        assert!(text.contains("dont_track_primary = true,"), "{text}");
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn skip_check_adv_addr_global_and_per_instance() {
        let (doc, w) = translate_text("global_defs {\n vrrp_skip_check_adv_addr\n}\nvrrp_instance V {\n}\n");
        let text = crate::import::lua::render(&doc, "", None);
        assert!(text.contains("skip_check_adv_addr = true,"), "{text}");
        assert!(w.is_empty(), "{w:?}");
        let (doc, _) = translate_text("vrrp_instance V {\n skip_check_adv_addr\n}\nvrrp_instance W {\n virtual_router_id 2\n}\n");
        let text = crate::import::lua::render(&doc, "", None);
        assert_eq!(text.matches("skip_check_adv_addr = true,").count(), 1, "{text}");
    }

    #[test]
    fn group_ranges_expand() {
        let (doc, _) = translate_text(
            "virtual_server_group G {\n 192.0.2.1-3 80\n 192.0.2.254-192.0.3.1 81\n fwmark 7\n}\nvirtual_server group G {\n protocol TCP\n real_server 192.0.2.9 80 {\n }\n}\n",
        );
        let names: Vec<&str> = doc.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "192.0.2.1:80",
                "192.0.2.2:80",
                "192.0.2.3:80",
                "192.0.2.254:81",
                "192.0.2.255:81",
                "192.0.3.0:81",
                "192.0.3.1:81",
                "fwmark 7"
            ]
        );
    }

    #[test]
    fn an_empty_server_group_is_removed_and_its_virtual_server_ignored() {
        // init_vsg: "virtual server group G has no entries - removing"; link_vsg_to_vs:
        // "Virtual server group G specified but not configured - ignoring virtual server".
        let (doc, w) = translate_text("virtual_server_group G {\n}\nvirtual_server group G {\n real_server 192.0.2.9 80 {\n }\n}\n");
        let w: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            w,
            [
                "t.conf:1: virtual_server_group G has no entries; keepalived removes it",
                "t.conf:3: virtual_server group G uses virtual_server_group G, which is not defined (or was removed); keepalived ignores it: not translated",
            ]
        );
        assert!(doc.items.iter().all(|i| !matches!(i.kind, Kind::Service)), "{:?}", doc.items.iter().map(|i| &i.name).collect::<Vec<_>>());
    }

    #[test]
    fn a_repeated_service_setting_counts_last_even_when_it_is_the_default() {
        let (doc, w) = translate_text(
            "virtual_server 192.0.2.1 80 {\n protocol TCP\n lb_algo rr\n persistence_timeout 50\n lb_algo wlc\n persistence_timeout 0\n real_server 192.0.2.2 80 {\n  weight 3\n  weight 1\n }\n}\n",
        );
        let lua = crate::import::lua::render(&doc, "--", None);
        assert!(!lua.contains("scheduler") && !lua.contains("persistence") && !lua.contains("weight"), "{lua}");
        let w: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            w,
            vec![
                "t.conf:5: keyword 'lb_algo' repeated; keepalived uses the last",
                "t.conf:6: keyword 'persistence_timeout' repeated; keepalived uses the last"
            ]
        );
    }

    #[test]
    fn timers_keep_fractions() {
        let (doc, _) = translate_text("vrrp_instance V {\n version 3\n advert_int 0.25\n preempt_delay 1.0\n}\n");
        let body = &doc.items[0].body;
        assert!(body.contains(&field("advert_int", Value::Num("0.25".into()), &Loc { file: String::new(), line: 0 })));
        assert!(body.contains(&field("preempt_delay", Value::Int(1), &Loc { file: String::new(), line: 0 })));
    }

    #[test]
    fn auth_pass_is_cut_to_eight_characters_like_keepalived() {
        let (doc, w) = translate_text("vrrp_instance V {\n authentication {\n  auth_type PASS\n  auth_pass 0123456789\n }\n}\n");
        assert!(doc.items[0].body.contains(&field("auth_pass", s("01234567"), &Loc { file: String::new(), line: 0 })));
        assert_eq!(w[0].loc.line, 4);
    }

    #[test]
    fn global_vrrp_version_applies_to_instances_without_their_own() {
        let (doc, _) = translate_text("global_defs {\n vrrp_version 3\n}\nvrrp_instance A {\n}\nvrrp_instance B {\n version 2\n}\n");
        let has_v3 = |i: &Item| i.body.iter().any(|e| matches!(e, Entry::Field(f) if f.key == "version" && f.value == Value::Int(3)));
        assert!(has_v3(&doc.items[1]));
        assert!(!has_v3(&doc.items[2]));
    }

    #[test]
    fn checks_differing_between_reals_stay_on_each_real() {
        let (doc, _) = translate_text(
            "virtual_server 192.0.2.1 80 {\n protocol TCP\n lb_kind DR\n real_server 192.0.2.2 80 {\n  TCP_CHECK {\n  }\n }\n real_server 192.0.2.3 80 {\n }\n}\n",
        );
        let svc = &doc.items[0];
        assert!(!svc.body.iter().any(|e| matches!(e, Entry::Field(f) if f.key == "check")), "{svc:?}");
        let lua = crate::import::lua::render(&doc, "--", None);
        assert!(lua.contains("{ address = \"192.0.2.2:80\", check = lvsd.check.tcp {} }"), "{lua}");
        assert!(lua.contains("\"192.0.2.3:80\""), "{lua}");
    }

    #[test]
    fn misc_timeout_defaults_to_the_virtual_servers_delay_loop() {
        let (doc, _) = translate_text(
            "virtual_server 192.0.2.1 80 {\n protocol TCP\n delay_loop 10\n real_server 192.0.2.2 80 {\n  delay_loop 3\n  MISC_CHECK {\n   misc_path /bin/true\n  }\n }\n}\n",
        );
        let lua = crate::import::lua::render(&doc, "--", None);
        assert!(lua.contains("lvsd.check.exec { interval = 3, timeout = 10, retries = 0, command = { \"/bin/true\" } }"), "{lua}");
    }

    #[test]
    fn garp_follows_keepalived_inheritance() {
        let (doc, _) = translate_text(
            "global_defs {\n vrrp_garp_master_delay 10\n}\nvrrp_instance V {\n garp_master_repeat 2\n}\nvrrp_instance W {\n}\n",
        );
        let lua = crate::import::lua::render(&doc, "--", None);
        assert!(lua.contains("garp = { master_delay = 10, lower_prio_delay = 10 },"), "{lua}");
        assert!(lua.contains("garp = { master_delay = 10, master_repeat = 2, lower_prio_delay = 10, lower_prio_repeat = 2 },"), "{lua}");
        assert_eq!(lua.matches("garp =").count(), 2, "W has no garp of its own:\n{lua}");
    }

    #[test]
    fn vrrp_settings_keepalived_derives_or_corrects() {
        // Each warning matches what `keepalived -t` 2.2.7 prints for the same instance.
        let (doc, w) = translate_text(concat!(
            "vrrp_instance A {\n state MASTER\n nopreempt\n}\n",
            "vrrp_instance B {\n version 3\n authentication {\n  auth_type PASS\n  auth_pass 1234\n }\n}\n",
            "vrrp_instance C {\n advert_int 2.5\n}\n",
            "vrrp_instance D {\n priority 255\n preempt_delay 10\n virtual_ipaddress {\n  2001:db8::4\n }\n}\n",
        ));
        let lua = crate::import::lua::render(&doc, "--", None);
        assert!(lua.contains("priority = 255, -- keepalived's default for state MASTER"), "{lua}");
        assert!(lua.contains("state = \"master\", -- keepalived's default for priority 255"), "{lua}");
        assert!(lua.contains("version = 3, -- keepalived uses VRRPv3 for IPv6"), "{lua}");
        assert!(lua.contains("advert_int = 3,"), "v2 rounds half up:\n{lua}");
        assert!(!lua.contains("auth_pass ="), "{lua}");
        assert!(!lua.contains("nopreempt ="), "{lua}");
        assert!(!lua.contains("preempt_delay ="), "{lua}");
        let w: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            w,
            vec![
                "t.conf:3: vrrp_instance A: nopreempt does not apply to priority 255; keepalived ignores it: not translated",
                "t.conf:9: vrrp_instance B: VRRP version 3 has no authentication; keepalived ignores it: not translated",
                "t.conf:13: vrrp_instance C: advert_int 2.5 is not valid for VRRPv2; keepalived uses 3",
                "t.conf:17: vrrp_instance D: preempt_delay does not work with initial state MASTER; keepalived ignores it: not translated",
            ]
        );
    }
}
