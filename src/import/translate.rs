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
//! | nb_get_retry                    | = retry in HTTP_GET/SSL_GET; unknown elsewhere (2.2.7) | run | - | retries + warn |
//! | lvs_sync_daemon_inteface        | unknown keyword in 2.2.7 (1.x misspelling) | run | -         | translated + warn |
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

use std::collections::HashMap;
use std::net::IpAddr;

use thiserror::Error;

use super::lua::{self, Doc, Entry, Field, Item, Kind, Value, field, s};
use super::parser::{Node, keyword_like, shown};
use super::{Loc, Warning};

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
}

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
    /// virtual_server_group name -> members
    groups: HashMap<String, Vec<GroupMember>>,
    /// `lvsd.sync_daemon`, from global lvs_sync_daemon or an instance's lvs_sync_daemon_interface.
    sync_daemon: Option<Item>,
    /// global_defs vrrp_garp_* settings, the defaults of each instance's garp_*.
    global_garp: Vec<(&'static str, Value, Loc)>,
}

#[derive(Debug, Clone)]
enum GroupMember {
    Addr(IpAddr, u16),
    Fwmark(i64, Option<String>),
}

/// Translate a parsed configuration.
pub fn translate(nodes: &[Node], warnings: &mut Vec<Warning>) -> R<Doc> {
    let mut tx = Tx { w: warnings, version: None, scripts: HashMap::new(), groups: HashMap::new(), sync_daemon: None, global_garp: Vec::new() };
    let mut globals = Vec::new();
    let mut tracks = Vec::new();
    let mut vrrps = Vec::new();
    let mut syncs = Vec::new();
    let mut services = Vec::new();
    let mut notes = Vec::new();

    // Definitions used by later blocks first: global vrrp_version, scripts, server groups.
    for n in nodes {
        match n.key.as_str() {
            "global_defs" => globals.push(tx.global(n)?),
            "vrrp_script" => tracks.push(tx.script(n)?),
            "virtual_server_group" => tx.server_group(n)?,
            _ => {}
        }
    }
    for n in nodes {
        match n.key.as_str() {
            "global_defs" | "vrrp_script" | "virtual_server_group" => {}
            "vrrp_instance" => vrrps.push(tx.vrrp(n)?),
            "vrrp_sync_group" => syncs.push(tx.sync_group(n)?),
            "virtual_server" => services.extend(tx.virtual_server(n)?),
            k if TOP_UNSUPPORTED.contains(&k) => {
                let mut body = Vec::new();
                tx.unsupported(n, NO_HOME, &mut body);
                notes.push(Item { kind: Kind::Note, name: k.into(), loc: n.loc.clone(), pre: vec![], body, only_on: None });
            }
            k if !keyword_like(k) => return Err(TranslateError::NotKeepalived(n.loc.clone())),
            k if n.block.is_some() => {
                return Err(TranslateError::UnknownBlock(n.loc.clone(), k.into(), "top-level".into()));
            }
            _ => {
                let mut body = Vec::new();
                tx.unknown(n, &mut body);
                notes.push(Item { kind: Kind::Note, name: n.key.clone(), loc: n.loc.clone(), pre: vec![], body, only_on: None });
            }
        }
    }
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

const TOP_UNSUPPORTED: &[&str] = &[
    "static_ipaddress", "static_routes", "static_rules", "linkbeat_interfaces", "track_group", "track_file",
    "vrrp_track_file", "vrrp_track_process", "bfd_instance", "garp_group", "interface_up_down_delays",
    "net_namespace", "net_namespace_ipvs", "namespace_with_ipsets", "instance", "use_pid_dir",
    "linkbeat_use_polling", "child_wait_time", "SSL",
];

const GLOBAL_KNOWN: &[&str] = &[
    "tmp_config_directory", "config_save_dir", "process_names", "process_name", "vrrp_process_name",
    "checker_process_name", "bfd_process_name", "use_symlink_paths", "set_supplementary_groups", "startup_script",
    "startup_script_timeout", "shutdown_script", "shutdown_script_timeout", "smtp_helo_name", "smtp_alert",
    "smtp_alert_vrrp", "smtp_alert_checker", "checker_log_all_failures", "no_email_faults", "vrrp_mcast_group4",
    "vrrp_mcast_group6", "default_interface", "lvs_sync_daemon", "lvs_timeouts", "lvs_flush", "lvs_flush_on_stop",
    "vrrp_gna_interval", "vrrp_garp_extra_if", "vrrp_down_timer_adverts", "vrrp_lower_prio_no_advert",
    "vrrp_higher_prio_send_advert", "v3_checksum_as_v2", "nftables", "nftables_priority", "nftables_counters",
    "nftables_ifindex", "nftables_ipvs", "nftables_ipvs_priority", "nftables_ipvs_start_fwmark", "vrrp_iptables",
    "vrrp_ipsets", "disable_local_igmp", "vrrp_check_unicast_src", "vrrp_skip_check_adv_addr", "vrrp_strict",
    "vrrp_notify_priority_changes", "max_auto_priority", "min_auto_priority_delay", "vrrp_priority",
    "checker_priority", "bfd_priority", "vrrp_no_swap", "checker_no_swap", "bfd_no_swap", "vrrp_cpu_affinity",
    "checker_cpu_affinity", "bfd_cpu_affinity", "vrrp_rt_priority", "checker_rt_priority", "bfd_rt_priority",
    "vrrp_rlimit_rttime", "checker_rlimit_rttime", "bfd_rlimit_rttime", "snmp_socket", "enable_snmp_vrrp",
    "enable_snmp_checker", "enable_snmp_rfc", "enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_traps",
    "enable_snmp_keepalived", "snmp_vs_stats_update_interval", "snmp_rs_stats_update_interval", "enable_dbus",
    "dbus_service_name", "dbus_no_interface_name", "script_user", "notify_fifo", "notify_fifo_script",
    "vrrp_notify_fifo", "vrrp_notify_fifo_script", "lvs_notify_fifo", "lvs_notify_fifo_script",
    "fifo_write_vrrp_states_on_reload", "dynamic_interfaces", "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force", "vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs_force",
    "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force", "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force", "process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force",
    "vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier", "rs_init_notifies", "no_checker_emails", "umask",
    "vrrp_startup_delay", "vrrp_delay_after_boot", "log_unknown_vrids", "vmac_prefix", "vmac_addr_prefix",
    "random_seed", "reload_check_config", "include_check", "reload_time_file", "reload_repeat", "reload_file",
    "data_use_instance", "state_file_location", "stats_file_location", "json_file_location", "json_version",
    "iproute_usr_dir", "iproute_etc_dir", "net_namespace", "net_namespace_ipvs", "namespace_with_ipsets",
    "instance", "use_pid_dir", "linkbeat_use_polling", "child_wait_time",
];

const VRRP_KNOWN: &[&str] = &[
    "vrf", "use_vmac", "use_vmac_addr", "vmac_xmit_base", "use_ipvlan", "native_ipv6", "dont_track_primary",
    "track_file", "track_process", "track_bfd", "mcast_src_ip", "mcast_dst_ip", "track_src_ip",
    "unicast_fault_no_peer", "unicast_ttl", "old_unicast_checksum",
    "garp_extra_if", "down_timer_adverts", "timer_expired_backup", "lower_prio_no_advert",
    "higher_prio_send_advert", "auth_hmac", "virtual_ipaddress_excluded", "no_virtual_ipaddress",
    "promote_secondaries", "virtual_routes", "virtual_rules", "accept", "no_accept", "skip_check_adv_addr",
    "strict_mode", "debug", "notify_master_rx_lower_pri", "notify_priority_changes", "notify_deleted",
    "kernel_rx_buf_size", "linkbeat_use_polling", "garp_interval", "gna_interval", "gna_master_delay",
];

const VS_KNOWN: &[&str] = &["flag-3", "smtp_alert", "snmp_name", "abs_priority"];
const RS_KNOWN: &[&str] = &["smtp_alert", "snmp_name", "track_file", "track_bfd"];
const CHECK_KNOWN: &[&str] = &[
    "connect_ip", "bind_if", "bind_port", "fwmark", "alpha", "log_all_failures", "http_protocol", "fast_recovery",
    "tls_compliant", "enable_sni", "user", "min_reply_length", "max_reply_length", "host",
];

impl Tx<'_> {
    fn warn(&mut self, loc: &Loc, msg: impl Into<String>) {
        self.w.push(Warning::new(loc, msg));
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

    // ---------------------------------------------------------------- global_defs

    fn global(&mut self, g: &Node) -> R<Item> {
        let mut body = Vec::new();
        let mut garp = Vec::new();
        for n in g.children() {
            let k = n.key.as_str();
            match k {
                "router_id" => body.push(field("router_id", s(arg(n, 0)?), &n.loc)),
                "lvs_id" => {
                    self.warn(&n.loc, "keyword 'lvs_id' is keepalived 1.x's name for 'router_id' (keepalived 2.2 ignores it); translated as router_id");
                    body.push(field("router_id", s(arg(n, 0)?), &n.loc));
                }
                "notification_email" => {
                    let list = n.children().iter().map(|c| s(&words(c).join(" "))).collect();
                    body.push(field("notification_email", Value::List(list), &n.loc));
                }
                "notification_email_from" => body.push(field(k, s(&n.args.join(" ")), &n.loc)),
                "smtp_server" => {
                    let addr = arg(n, 0)?;
                    let v = match n.args.get(1) {
                        Some(p) => host_port(addr, int(n, p, 1, 65535)?),
                        None => addr.to_string(),
                    };
                    body.push(field(k, s(&v), &n.loc));
                }
                "smtp_connect_timeout" => body.push(field(k, Value::Int(int(n, arg(n, 0)?, 1, 3600)?), &n.loc)),
                "enable_script_security" => body.push(field(k, Value::Bool(true), &n.loc)),
                "vrrp_version" => {
                    let v = int(n, arg(n, 0)?, 2, 3)?;
                    self.version = Some(v);
                    body.push(Entry::Comment(format!(
                        "keepalived: {} (applied to each VRRP instance as version = {v})",
                        n.text
                    )));
                }
                "lvs_sync_daemon" => self.global_sync_daemon(n)?,
                "vrrp_min_garp" => {
                    if bool_arg(n)? {
                        garp.push(("master_repeat", Value::Int(1), n.loc.clone()));
                        garp.push(("master_delay", Value::Int(0), n.loc.clone()));
                    }
                }
                _ if k.starts_with("vrrp_garp_") && garp_key(&k[5..]).is_some() => {
                    garp.push((garp_key(&k[5..]).unwrap(), timer(n, arg(n, 0)?)?, n.loc.clone()));
                }
                _ => self.other(n, "global_defs", GLOBAL_KNOWN, &mut body)?,
            }
        }
        self.global_garp = garp;
        let table = resolve_garp(&self.global_garp, &[]);
        if !table.is_empty() {
            body.push(field("garp", Value::Table(table), &g.loc));
        }
        Ok(Item { kind: Kind::Global, name: "global".into(), loc: g.loc.clone(), pre: vec![], body, only_on: None })
    }

    // ---------------------------------------------------------------- vrrp_script

    fn script(&mut self, n: &Node) -> R<Item> {
        let name = arg(n, 0)?.to_string();
        let mut body = vec![field("name", s(&name), &n.loc)];
        let mut weight = 0;
        for c in n.children() {
            let k = c.key.as_str();
            match k {
                "script" => body.push(field("command", argv(&c.args.join(" ")), &c.loc)),
                "interval" | "timeout" => {
                    let v = timer(c, arg(c, 0)?)?;
                    if !(k == "interval" && num_text(&v) == "1") {
                        body.push(field(k, v, &c.loc));
                    }
                }
                "weight" => {
                    weight = int(c, arg(c, 0)?, -253, 253)?;
                    if weight != 0 {
                        body.push(field("weight", Value::Int(weight), &c.loc));
                    }
                    if c.args.get(1).map(String::as_str) == Some("reverse") {
                        self.unsupported_arg(c, "reverse", &mut body);
                    }
                }
                "rise" | "fall" => {
                    let v = int(c, arg(c, 0)?, 1, 1_000_000)?;
                    if v != 1 {
                        body.push(field(k, Value::Int(v), &c.loc));
                    }
                }
                "user" | "init_fail" => self.unsupported(c, NO_HOME, &mut body),
                _ => self.other(c, "vrrp_script", &[], &mut body)?,
            }
        }
        if !body.iter().any(|e| matches!(e, Entry::Field(f) if f.key == "command")) {
            // keepalived: "No script set for vrrp_script NAME - removing".
            let mut note = Vec::new();
            self.unsupported(n, "no script line: keepalived removes it too", &mut note);
            return Ok(Item { kind: Kind::Note, name, loc: n.loc.clone(), pre: vec![], body: note, only_on: None });
        }
        if let Some((_, _, first)) = self.scripts.get(&name) {
            return Err(TranslateError::Duplicate(n.loc.clone(), "vrrp_script".into(), shown(&name), first.clone()));
        }
        self.scripts.insert(name.clone(), (body.clone(), weight, n.loc.clone()));
        Ok(Item { kind: Kind::Track, name, loc: n.loc.clone(), pre: vec![], body, only_on: None })
    }

    /// Part of a keyword's arguments has no home: warn and keep the line as a comment.
    fn unsupported_arg(&mut self, n: &Node, what: &str, body: &mut Vec<Entry>) {
        self.unsupported_arg_of(n, &n.key.clone(), what, body)
    }

    /// As `unsupported_arg`, naming the enclosing keyword (list entries have no keyword).
    fn unsupported_arg_of(&mut self, n: &Node, keyword: &str, what: &str, body: &mut Vec<Entry>) {
        let what = what.split(' ').map(shown).collect::<Vec<_>>().join(" ");
        self.warn(&n.loc, format!("keyword '{keyword}' option '{what}' is not supported by lvsd ({NO_HOME})"));
        body.push(Entry::Comment(format!("keepalived: {} (not translated: option '{what}')", n.text)));
    }

    // ---------------------------------------------------------------- vrrp_instance

    fn vrrp(&mut self, v: &Node) -> R<Item> {
        let name = arg(v, 0)?.to_string();
        let mut body = Vec::new();
        let mut garp = Vec::new();
        let mut notify = Vec::new();
        let mut version_set = false;
        for n in v.children() {
            let k = n.key.as_str();
            match k {
                "state" => match arg(n, 0)?.to_ascii_uppercase().as_str() {
                    "MASTER" => body.push(field("state", s("master"), &n.loc)),
                    "BACKUP" => {}
                    other => return Err(bad(n, other, "MASTER or BACKUP")),
                },
                "interface" => body.push(field("interface", s(arg(n, 0)?), &n.loc)),
                "virtual_router_id" => body.push(field("vrid", Value::Int(int(n, arg(n, 0)?, 1, 255)?), &n.loc)),
                "priority" => {
                    let p = int(n, arg(n, 0)?, 1, 255)?;
                    if p != 100 {
                        body.push(field("priority", Value::Int(p), &n.loc));
                    }
                }
                "advert_int" => {
                    let t = timer(n, arg(n, 0)?)?;
                    if num_text(&t) != "1" {
                        body.push(field("advert_int", t, &n.loc));
                    }
                }
                "version" => {
                    version_set = true;
                    let ver = int(n, arg(n, 0)?, 2, 3)?;
                    if ver != 2 {
                        body.push(field("version", Value::Int(ver), &n.loc));
                    }
                }
                "authentication" => {
                    let mut pass = None;
                    let mut ah = false;
                    for a in n.children() {
                        match a.key.as_str() {
                            "auth_type" => ah = arg(a, 0)?.eq_ignore_ascii_case("AH"),
                            "auth_pass" => pass = Some((a.args.join(" "), a.loc.clone())),
                            _ => self.other(a, "authentication", &[], &mut body)?,
                        }
                    }
                    if ah {
                        self.unsupported(n, "AH authentication; only PASS is supported", &mut body);
                    } else if let Some((mut p, loc)) = pass {
                        if p.chars().count() > 8 {
                            p = p.chars().take(8).collect();
                            self.warn(&loc, format!("auth_pass is longer than 8 characters; keepalived uses only the first 8: translated as \"{p}\""));
                        }
                        body.push(field("auth_pass", s(&p), &loc));
                    }
                }
                "virtual_ipaddress" => {
                    let mut vips = Vec::new();
                    let mut seen: Vec<&str> = Vec::new();
                    for a in n.children() {
                        let addr = a.key.split('/').next().unwrap_or("");
                        if seen.contains(&addr) {
                            self.warn(&a.loc, format!("VIP {} is listed twice in virtual_ipaddress; the first is kept", shown(addr)));
                            body.push(Entry::Comment(format!("keepalived: {} (not translated: {addr} is already a VIP)", a.text)));
                            continue;
                        }
                        seen.push(addr);
                        vips.push(self.vip(a, &mut body)?);
                    }
                    body.push(field("vips", Value::List(vips), &n.loc));
                }
                "unicast_src_ip" => body.push(field("unicast_src", s(arg(n, 0)?), &n.loc)),
                "unicast_peer" => {
                    let mut peers = Vec::new();
                    for a in n.children() {
                        ip(a, &a.key)?;
                        if !a.args.is_empty() {
                            self.unsupported_arg_of(a, "unicast_peer", &a.args.join(" "), &mut body);
                        }
                        peers.push(s(&a.key));
                    }
                    body.push(field("unicast_peers", Value::List(peers), &n.loc));
                    // keepalived does not check the TTL of unicast adverts; lvsd does unless told.
                    body.push(field("relax_unicast_ttl", Value::Bool(true), &n.loc));
                }
                "nopreempt" => body.push(field("nopreempt", Value::Bool(true), &n.loc)),
                "check_unicast_src" => body.push(field("check_unicast_src", Value::Bool(true), &n.loc)),
                "v3_checksum_as_v2" => body.push(field("v3_checksum_as_v2", Value::Bool(true), &n.loc)),
                "preempt" => body.push(Entry::Comment(format!("keepalived: {} (the default)", n.text))),
                "preempt_delay" => {
                    let t = timer(n, arg(n, 0)?)?;
                    if num_text(&t) != "0" {
                        body.push(field("preempt_delay", t, &n.loc));
                    }
                }
                "track_interface" => {
                    let mut list = Vec::new();
                    for a in n.children() {
                        match a.args.first().map(String::as_str) {
                            Some("weight") => {
                                let w = int(a, a.args.get(1).map(String::as_str).unwrap_or(""), -253, 253)?;
                                if a.args.get(2).map(String::as_str) == Some("reverse") {
                                    self.unsupported_arg_of(a, "track_interface", "reverse", &mut body);
                                }
                                list.push(Value::Table(vec![field("name", s(&a.key), &a.loc), field("weight", Value::Int(w), &a.loc)]));
                            }
                            _ => list.push(s(&a.key)),
                        }
                    }
                    body.push(field("track_interfaces", Value::List(list), &n.loc));
                }
                "track_script" => {
                    let mut list = Vec::new();
                    for a in n.children() {
                        match self.scripts.get(&a.key).cloned() {
                            None => {
                                self.warn(&a.loc, format!("track_script '{}' is not defined by a vrrp_script; not translated", shown(&a.key)));
                                body.push(Entry::Comment(format!("keepalived: {} (not translated: no vrrp_script '{}')", a.text, a.key)));
                            }
                            Some((mut sbody, default_w, _)) => {
                                let w = match a.args.first().map(String::as_str) {
                                    Some("weight") => Some(int(a, a.args.get(1).map(String::as_str).unwrap_or(""), -253, 253)?),
                                    _ => None,
                                };
                                if a.args.iter().any(|x| x == "reverse") {
                                    self.unsupported_arg_of(a, "track_script", "reverse", &mut body);
                                }
                                match w {
                                    Some(w) if w != default_w => {
                                        // A different weight here: a copy of the script's check.
                                        sbody.retain(|e| !matches!(e, Entry::Field(f) if f.key == "weight"));
                                        if w != 0 {
                                            sbody.push(field("weight", Value::Int(w), &a.loc));
                                        }
                                        list.push(Value::Call("lvsd.track.exec".into(), sbody));
                                    }
                                    _ => list.push(Value::Ident(lua::ident(&a.key))),
                                }
                            }
                        }
                    }
                    if !list.is_empty() {
                        body.push(field("track", Value::List(list), &n.loc));
                    }
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                    let key = if k == "notify" { "any" } else { &k[7..] };
                    notify.push(self.notify_field(n, key, &mut body)?);
                }
                "smtp_alert" => {
                    if bool_arg(n)? {
                        body.push(field("smtp_alert", Value::Bool(true), &n.loc));
                    }
                }
                "lvs_sync_daemon_interface" | "lvs_sync_daemon_inteface" => {
                    if k.ends_with("inteface") {
                        self.warn(&n.loc, "keyword 'lvs_sync_daemon_inteface' is keepalived 1.x's misspelt 'lvs_sync_daemon_interface' (keepalived 2.2 ignores it); translated as lvsd.sync_daemon");
                    }
                    if self.sync_daemon.is_some() {
                        self.unsupported(n, "only one IPVS sync daemon; the first one declared is used", &mut body);
                    } else {
                        // keepalived 2.x reads this as `lvs_sync_daemon IF inst NAME`, sync id = the VRID.
                        let sd = vec![field("interface", s(arg(n, 0)?), &n.loc), field("instance", s(&name), &n.loc)];
                        self.sync_daemon = Some(Item { kind: Kind::SyncDaemon, name: "sync_daemon".into(), loc: n.loc.clone(), pre: vec![format!("keepalived: {} (in vrrp_instance {name})", n.text)], body: sd, only_on: None });
                        body.push(Entry::Comment(format!("keepalived: {} (see lvsd.sync_daemon below)", n.text)));
                    }
                }
                _ if k.starts_with("garp_") && garp_key(k).is_some() => {
                    garp.push((garp_key(k).unwrap(), timer(n, arg(n, 0)?)?, n.loc.clone()));
                }
                _ => self.other(n, "vrrp_instance", VRRP_KNOWN, &mut body)?,
            }
        }
        self.complete_vrrp(v, &name, version_set, &mut body);
        if !garp.is_empty() {
            // keepalived takes what the instance leaves out from global_defs: write the whole
            // table so it means the same whether or not lvsd merges it with lvsd.global's.
            let table = resolve_garp(&garp, &self.global_garp);
            if !table.is_empty() {
                body.push(field("garp", Value::Table(table), &v.loc));
            }
        }
        if !notify.is_empty() {
            body.push(field("notify", Value::Table(notify), &v.loc));
        }
        Ok(Item { kind: Kind::Vrrp, name, loc: v.loc.clone(), pre: vec![], body, only_on: None })
    }

    /// What keepalived's vrrp_complete_instance (keepalived/vrrp/vrrp.c) derives or corrects,
    /// made explicit so the instance behaves the same under lvsd's plain defaults.
    fn complete_vrrp(&mut self, v: &Node, name: &str, version_set: bool, body: &mut Vec<Entry>) {
        let ipv6 = matches!(get(body, "vips"), Some(Value::List(l)) if l.iter().any(|x| matches!(x, Value::Str(s) if s.contains(':'))));
        // The version: IPv6 instances always use VRRPv3, others the global vrrp_version.
        let version = match get(body, "version") {
            Some(Value::Int(n)) => *n,
            _ if !version_set && ipv6 => {
                body.push(note_field("version", Value::Int(3), &v.loc, "keepalived uses VRRPv3 for IPv6"));
                3
            }
            _ if !version_set && self.version == Some(3) => {
                body.push(field("version", Value::Int(3), &v.loc));
                3
            }
            _ => 2,
        };
        // Priority and state derive from each other when only one is given.
        let master = get(body, "state") == Some(&s("master"));
        // (A priority of 100 written out is omitted from `body`: look at the source.)
        if master && !v.children().iter().any(|c| c.key == "priority") {
            body.push(note_field("priority", Value::Int(255), &v.loc, "keepalived's default for state MASTER"));
        }
        let owner = get(body, "priority") == Some(&Value::Int(255));
        if owner && !master {
            if v.children().iter().any(|c| c.key == "state") {
                // state BACKUP with priority 255: keepalived keeps BACKUP as the initial state.
            } else {
                body.push(note_field("state", s("master"), &v.loc, "keepalived's default for priority 255"));
            }
        }
        let master = get(body, "state") == Some(&s("master"));
        let drop = |tx: &mut Self, body: &mut Vec<Entry>, key: &str, why: &str| {
            if let Some(f) = take(body, key) {
                let loc = f.loc.clone().unwrap_or(v.loc.clone());
                tx.warn(&loc, format!("vrrp_instance {name}: {why}; keepalived ignores it: not translated"));
                body.push(Entry::Comment(format!("keepalived: {key} (not translated: {why})")));
            }
        };
        if version == 3 {
            drop(self, body, "auth_pass", "VRRP version 3 has no authentication");
        }
        if owner {
            drop(self, body, "nopreempt", "nopreempt does not apply to priority 255");
        }
        if master {
            drop(self, body, "nopreempt", "nopreempt does not work with initial state MASTER");
            drop(self, body, "preempt_delay", "preempt_delay does not work with initial state MASTER");
        }
        if get(body, "nopreempt").is_some() {
            drop(self, body, "preempt_delay", "preempt_delay does not apply with nopreempt");
        }
        // The advert interval: whole seconds below 256 for v2, 10 ms steps below 40.96 s for v3.
        if let Some(f) = find_field(body, "advert_int") {
            let secs: f64 = num_text(&f.value).parse().unwrap_or(1.0);
            let loc = f.loc.clone().unwrap_or(v.loc.clone());
            let fixed = if version == 2 {
                ((secs + 0.5).floor()).clamp(1.0, 255.0)
            } else {
                ((secs * 100.0 + 0.5).floor() / 100.0).clamp(0.01, 40.95)
            };
            if (fixed - secs).abs() > 1e-9 {
                self.warn(&loc, format!("vrrp_instance {name}: advert_int {secs} is not valid for VRRPv{version}; keepalived uses {fixed}"));
                let value = if fixed.fract() == 0.0 { Value::Int(fixed as i64) } else { Value::Num(format!("{fixed}")) };
                set(body, "advert_int", value);
            }
            if num_text(&get(body, "advert_int").cloned().unwrap_or(Value::Int(1))) == "1" {
                take(body, "advert_int");
            }
        }
    }

    /// `192.0.2.1/24 dev eth0 label eth0:1 scope global brd ...` -> the lvsd VIP string.
    fn vip(&mut self, a: &Node, body: &mut Vec<Entry>) -> R<Value> {
        let addr = a.key.as_str();
        let bare = addr.split('/').next().unwrap();
        ip(a, bare)?;
        if let Some(p) = addr.split('/').nth(1) {
            int(a, p, 0, 128)?;
        }
        let mut out = vec![addr.to_string()];
        let mut i = 0;
        while i < a.args.len() {
            let opt = a.args[i].as_str();
            match opt {
                "dev" | "label" | "scope" => {
                    let val = a.args.get(i + 1).ok_or_else(|| TranslateError::MissingArg(a.loc.clone(), opt.into(), "a value".into()))?;
                    out.push(format!("{opt} {val}"));
                    i += 2;
                }
                "brd" | "peer" | "preferred_lft" | "track_group" => {
                    let what = format!("{opt} {}", a.args.get(i + 1).map(String::as_str).unwrap_or(""));
                    self.unsupported_arg_of(a, "virtual_ipaddress", &what, body);
                    i += 2;
                }
                _ => {
                    self.unsupported_arg_of(a, "virtual_ipaddress", opt, body);
                    i += 1;
                }
            }
        }
        Ok(s(&out.join(" ")))
    }

    /// `notify_master "/path/script arg" [user [group]]` -> `master = { argv }`.
    fn notify_field(&mut self, n: &Node, key: &str, body: &mut Vec<Entry>) -> R<Entry> {
        let script = arg(n, 0)?;
        if n.args.len() > 1 {
            self.unsupported_arg(n, &format!("run as user {}", n.args[1..].join(" ")), body);
        }
        Ok(field(key, argv(script), &n.loc))
    }

    // ---------------------------------------------------------------- vrrp_sync_group

    fn sync_group(&mut self, g: &Node) -> R<Item> {
        let name = arg(g, 0)?.to_string();
        let mut body = Vec::new();
        let mut notify = Vec::new();
        for n in g.children() {
            let k = n.key.as_str();
            match k {
                "group" => {
                    let list = n.children().iter().map(|c| s(&c.key)).collect();
                    body.push(field("instances", Value::List(list), &n.loc));
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                    let key = if k == "notify" { "any" } else { &k[7..] };
                    notify.push(self.notify_field(n, key, &mut body)?);
                }
                "smtp_alert" => {
                    if bool_arg(n)? {
                        body.push(field("smtp_alert", Value::Bool(true), &n.loc));
                    }
                }
                _ => self.other(
                    n,
                    "vrrp_sync_group",
                    &["track_interface", "track_script", "track_file", "track_process", "track_bfd", "global_tracking",
                      "sync_group_tracking_weight", "notify_priority_changes", "notify_deleted"],
                    &mut body,
                )?,
            }
        }
        if !body.iter().any(|e| matches!(e, Entry::Field(f) if f.key == "instances")) {
            // keepalived drops a sync group without members; lvsd requires them.
            self.warn(&g.loc, format!("vrrp_sync_group {name} has no 'group {{ ... }}' of instances; not translated"));
            let mut note = vec![Entry::Comment(format!("keepalived: {} (not translated: no 'group' block)", g.text))];
            note.extend(body.into_iter().filter(|e| matches!(e, Entry::Comment(_))));
            return Ok(Item { kind: Kind::Note, name, loc: g.loc.clone(), pre: vec![], body: note, only_on: None });
        }
        if !notify.is_empty() {
            body.push(field("notify", Value::Table(notify), &g.loc));
        }
        Ok(Item { kind: Kind::SyncGroup, name, loc: g.loc.clone(), pre: vec![], body, only_on: None })
    }

    // ---------------------------------------------------------------- virtual_server_group

    fn server_group(&mut self, g: &Node) -> R<()> {
        let name = arg(g, 0)?.to_string();
        let mut members = Vec::new();
        for n in g.children() {
            if n.key == "fwmark" {
                members.push(GroupMember::Fwmark(int(n, arg(n, 0)?, 1, u32::MAX as i64)?, n.args.get(1).cloned()));
                continue;
            }
            let port = match n.args.first() {
                Some(p) => int(n, p, 0, 65535)? as u16,
                None => 0,
            };
            for addr in expand_range(n)? {
                members.push(GroupMember::Addr(addr, port));
            }
        }
        self.groups.insert(name, members);
        Ok(())
    }

    // ---------------------------------------------------------------- virtual_server

    fn virtual_server(&mut self, vs: &Node) -> R<Vec<Item>> {
        // Which services this block makes: one address, one fwmark, or a group's members.
        let targets: Vec<GroupMember> = match vs.args.first().map(String::as_str) {
            Some("fwmark") => vec![GroupMember::Fwmark(int(vs, arg(vs, 1)?, 1, u32::MAX as i64)?, None)],
            Some("group") => {
                let g = arg(vs, 1)?;
                match self.groups.get(g) {
                    Some(m) => m.clone(),
                    None => return Err(bad(vs, g, "no virtual_server_group of that name")),
                }
            }
            Some(a) => {
                let addr = ip(vs, a)?;
                let port = match vs.args.get(1) {
                    Some(p) => int(vs, p, 0, 65535)? as u16,
                    None => 0,
                };
                vec![GroupMember::Addr(addr, port)]
            }
            None => return Err(TranslateError::MissingArg(vs.loc.clone(), "virtual_server".into(), "an address and port, fwmark N or group NAME".into())),
        };

        let mut body = Vec::new();
        let mut defaults = CheckDefaults::default();
        let mut protocol: Option<String> = None;
        let mut forward: Option<Vec<Entry>> = None;
        let mut sched_flags = Vec::new();
        let mut sorry: Option<(IpAddr, u16, Node)> = None;
        let mut sorry_extra = Vec::new();
        let mut reals: Vec<&Node> = Vec::new();
        let mut ops: Option<Loc> = None;
        let mut quorum: Option<(i64, Loc)> = None;
        let mut hysteresis: Option<(i64, Loc)> = None;
        let mut persistent = false;
        let is_fwmark = vs.args.first().map(String::as_str) == Some("fwmark");
        let is_group = vs.args.first().map(String::as_str) == Some("group");
        for n in vs.children() {
            let k = n.key.as_str();
            match k {
                "real_server" => {
                    // keepalived: "real server ... is duplicated - removing second rs".
                    let same = |o: &&Node| o.args.first() == n.args.first() && o.args.get(1) == n.args.get(1);
                    if reals.iter().any(same) {
                        self.warn(&n.loc, format!("real server {} is listed twice; keepalived removes the second", shown_all(&n.args)));
                        body.push(Entry::Comment(format!("keepalived: {} (not translated: a duplicate real server)", n.text)));
                    } else {
                        reals.push(n);
                    }
                }
                "delay_loop" | "connect_timeout" | "delay_before_retry" | "warmup" => {
                    let t = timer(n, arg(n, 0)?)?;
                    if k == "delay_loop" {
                        defaults.vs_delay_loop = Some(t.clone());
                    }
                    set_default(&mut defaults, k, t);
                }
                "retry" => defaults.retry = Some((int(n, arg(n, 0)?, 0, 1_000_000)?, n.loc.clone())),
                "virtualhost" => defaults.virtualhost = Some(arg(n, 0)?.to_string()),
                "lb_algo" | "lvs_sched" => {
                    let sch = arg(n, 0)?.to_ascii_lowercase();
                    if !SCHEDULERS.contains(&sch.as_str()) {
                        return Err(bad(n, &sch, &format!("one of {}", SCHEDULERS.join(" "))));
                    }
                    if sch != "wlc" {
                        body.push(field("scheduler", s(&sch), &n.loc));
                    }
                }
                "lb_kind" | "lvs_method" => forward = Some(self.method(n)?),
                "nat_mask" => self.unsupported(n, "obsolete: only used by Linux 2.2 LVS; keepalived 2.x ignores it", &mut body),
                "persistence_timeout" => {
                    let v = match n.args.first() {
                        Some(t) => Value::Int(int(n, t, 0, u32::MAX as i64)?),
                        None => Value::Bool(true),
                    };
                    // `persistence_timeout 0` is keepalived's way of saying "not persistent".
                    if v != Value::Int(0) {
                        persistent = true;
                        body.push(field("persistence", v, &n.loc));
                    }
                }
                "persistence_granularity" => {
                    let m = arg(n, 0)?;
                    let v = if m.contains('.') { s(m) } else { Value::Int(int(n, m, 0, 128)?) };
                    body.push(field("netmask", v, &n.loc));
                }
                "persistence_engine" => body.push(field("pe", s(arg(n, 0)?), &n.loc)),
                "protocol" => {
                    let p = arg(n, 0)?.to_ascii_lowercase();
                    if !["tcp", "udp", "sctp"].contains(&p.as_str()) {
                        return Err(bad(n, &p, "TCP, UDP or SCTP"));
                    }
                    protocol = Some(p);
                }
                "ha_suspend" if is_fwmark => {
                    self.warn(&n.loc, "keyword 'ha_suspend' does not apply to fwmark services (keepalived clears it); not translated");
                    body.push(Entry::Comment(format!("keepalived: {} (not translated: keepalived clears it on fwmark services)", n.text)));
                }
                "ha_suspend" | "omega" => body.push(field(k, Value::Bool(true), &n.loc)),
                "alpha" => body.push(field(k, Value::Bool(bool_arg(n)?), &n.loc)),
                "inhibit_on_failure" => body.push(field(k, Value::Bool(bool_arg(n)?), &n.loc)),
                "quorum" => quorum = Some((int(n, arg(n, 0)?, 0, u32::MAX as i64)?, n.loc.clone())),
                "hysteresis" => hysteresis = Some((int(n, arg(n, 0)?, 0, u32::MAX as i64)?, n.loc.clone())),
                "quorum_up" | "quorum_down" => {
                    let e = self.notify_field(n, k, &mut body)?;
                    body.push(e);
                }
                "ip_family" => body.push(field("family", s(arg(n, 0)?), &n.loc)),
                "sorry_server" => {
                    let a = ip(n, arg(n, 0)?)?;
                    let p = match n.args.get(1) {
                        Some(p) => int(n, p, 0, 65535)? as u16,
                        None => 0,
                    };
                    sorry = Some((a, p, n.clone()));
                }
                "sorry_server_inhibit" => sorry_extra.push(field("inhibit", Value::Bool(true), &n.loc)),
                "sorry_server_lvs_method" => {
                    let m = self.method(n)?;
                    if m.is_empty() {
                        // DR: written out, since the service's own method may differ.
                        sorry_extra.push(field("forward", s("dr"), &n.loc));
                    }
                    sorry_extra.extend(m);
                }
                "ops" | "sh-port" | "sh-fallback" | "mh-port" | "mh-fallback" => {
                    if k == "ops" {
                        ops = Some(n.loc.clone());
                    } else {
                        sched_flags.push(s(k));
                    }
                }
                "flag-1" | "flag-2" => {
                    // flag-1/flag-2 are the sh/mh fallback/port bits under their generic names.
                    let sch = vs.children().iter().find(|c| c.key == "lb_algo" || c.key == "lvs_sched").and_then(|c| c.args.first()).map(|x| x.to_ascii_lowercase());
                    let prefix = if sch.as_deref() == Some("mh") { "mh" } else { "sh" };
                    let flag = if k == "flag-1" { "fallback" } else { "port" };
                    sched_flags.push(s(&format!("{prefix}-{flag}")));
                }
                _ => self.other(n, "virtual_server", VS_KNOWN, &mut body)?,
            }
        }
        if reals.is_empty() {
            // keepalived: "Virtual server ... has no real servers - ignoring".
            self.warn(&vs.loc, format!("virtual_server {} has no real servers; keepalived ignores it: not translated", shown_all(&vs.args)));
            let lines = node_lines(vs, 0);
            let mut note = vec![Entry::Comment(format!("keepalived: {} (not translated: no real servers, keepalived ignores it)", lines[0]))];
            note.extend(lines[1..].iter().map(|l| Entry::Comment(format!("keepalived: {l}"))));
            return Ok(vec![Item { kind: Kind::Note, name: vs.args.join(" "), loc: vs.loc.clone(), pre: vec![], body: note, only_on: None }]);
        }
        if !sched_flags.is_empty() {
            body.push(field("sched_flags", Value::List(sched_flags), &vs.loc));
        }
        if let Some(loc) = ops {
            // One-packet scheduling is for UDP (or fwmark) services; keepalived resets it otherwise.
            let udp = protocol.as_deref().unwrap_or("udp") == "udp";
            if is_fwmark || udp {
                body.push(field("ops", Value::Bool(true), &loc));
            } else {
                self.warn(&loc, "keyword 'ops' needs UDP; keepalived resets it for this service; not translated");
                body.push(Entry::Comment("keepalived: ops (not translated: one-packet scheduling needs UDP)".into()));
            }
        }
        let zero_port = targets.iter().any(|t| matches!(t, GroupMember::Addr(_, 0)));
        if zero_port && !persistent {
            // keepalived: "zero port only valid for persistent services - setting".
            self.warn(&vs.loc, "a virtual server without a port must be persistent; keepalived makes it persistent (360 s); translated as persistence = true");
            body.push(field("persistence", Value::Bool(true), &vs.loc));
        }
        let vs_method = match &forward {
            None => "nat".to_string(),
            Some(f) => find_str(f, "forward").unwrap_or_else(|| "dr".into()),
        };
        match forward {
            Some(f) => body.extend(f),
            None => {
                body.push(Entry::Field(Field {
                    key: "forward".into(),
                    value: s("nat"),
                    loc: Some(vs.loc.clone()),
                    note: Some("keepalived's default when lb_kind is absent".into()),
                }));
            }
        }
        // A real without a port takes the virtual server's (a group's first member's).
        let vs_port = match &targets[0] {
            GroupMember::Addr(_, p) => *p,
            GroupMember::Fwmark(..) => 0,
        };
        let ports = PortRules { vs_port, is_fwmark, is_group, vs_method: vs_method.clone() };
        if let Some((a, p, n)) = sorry {
            let method = find_str(&sorry_extra, "forward").unwrap_or(vs_method.clone());
            let p = self.real_port(&n, &ports, p, &method, "sorry server");
            let addr = host_port(&a.to_string(), p as i64);
            let loc = n.loc.clone();
            let v = if sorry_extra.is_empty() {
                s(&addr)
            } else {
                let mut t = vec![field("address", s(&addr), &loc)];
                t.extend(sorry_extra);
                Value::Table(t)
            };
            body.push(field("sorry_server", v, &loc));
        }

        // Real servers and their checks; identical checks on every real move up to the service.
        let mut real_entries: Vec<(Vec<Entry>, Vec<Value>, String)> = Vec::new();
        let mut weight_sum = 0;
        for r in &reals {
            let w = r.children().iter().find(|c| c.key == "weight").and_then(|c| c.args.first()).and_then(|w| w.parse::<i64>().ok());
            weight_sum += w.unwrap_or(1);
            real_entries.push(self.real_server(r, &ports, &defaults, &mut body)?);
        }
        // keepalived lowers a quorum above the total weight, and a hysteresis not below the quorum.
        let mut q = quorum.clone().map(|(v, _)| v).unwrap_or(1);
        if q > weight_sum {
            let loc = quorum.as_ref().map(|(_, l)| l.clone()).unwrap_or(vs.loc.clone());
            self.warn(&loc, format!("quorum {q} exceeds the total weight of the real servers {weight_sum}; keepalived reduces it: translated as quorum = {weight_sum}"));
            q = weight_sum;
        }
        if q != 1 {
            body.push(field("quorum", Value::Int(q), &quorum.as_ref().map(|(_, l)| l.clone()).unwrap_or(vs.loc.clone())));
        }
        if let Some((h, loc)) = hysteresis {
            let h2 = if h >= q { (q - 1).max(0) } else { h };
            if h2 != h {
                self.warn(&loc, format!("hysteresis {h} is not below the quorum {q}; keepalived sets it to {h2}"));
            }
            if h2 != 0 {
                body.push(field("hysteresis", Value::Int(h2), &loc));
            }
        }
        let all_same = !real_entries.is_empty()
            && !real_entries[0].1.is_empty()
            && real_entries.iter().all(|r| r.1 == real_entries[0].1);
        if all_same {
            let checks = real_entries[0].1.clone();
            body.push(field("check", one_or_list(checks), &vs.loc));
        }
        let mut reals_v = Vec::new();
        for (mut fields, checks, addr) in real_entries {
            if !all_same && !checks.is_empty() {
                fields.push(field("check", one_or_list(checks), &vs.loc));
            }
            let only_addr = fields.iter().all(|e| matches!(e, Entry::Field(f) if f.key == "address"));
            reals_v.push(if only_addr { s(&addr) } else { Value::Table(fields) });
        }
        if !reals_v.is_empty() {
            body.push(field("reals", Value::List(reals_v), &vs.loc));
        }

        // One item per target; a group yields several services with the same body.
        let mut items = Vec::new();
        for t in &targets {
            let mut head = Vec::new();
            let mut pre = Vec::new();
            let name = match t {
                GroupMember::Addr(a, p) => {
                    let vip = host_port(&a.to_string(), *p as i64);
                    head.push(field("vip", s(&vip), &vs.loc));
                    match protocol.as_deref() {
                        Some("tcp") => vip,
                        Some(p) => {
                            head.push(field("protocol", s(p), &vs.loc));
                            format!("{vip}/{p}")
                        }
                        None => {
                            head.push(Entry::Field(Field {
                                key: "protocol".into(),
                                value: s("udp"),
                                loc: Some(vs.loc.clone()),
                                note: Some("keepalived 2.2 defaults to UDP when 'protocol' is absent".into()),
                            }));
                            format!("{vip}/udp")
                        }
                    }
                }
                GroupMember::Fwmark(m, fam) => {
                    head.push(field("fwmark", Value::Int(*m), &vs.loc));
                    if let Some(f) = fam {
                        head.push(field("family", s(f), &vs.loc));
                    }
                    format!("fwmark {m}")
                }
            };
            if vs.args.first().map(String::as_str) == Some("group") {
                pre.push(format!("keepalived: virtual_server group {} (member {})", vs.args[1], name));
            }
            head.extend(body.iter().cloned());
            items.push(Item { kind: Kind::Service, name, loc: vs.loc.clone(), pre, body: head, only_on: None });
        }
        Ok(items)
    }

    /// `lb_kind NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`
    fn method(&self, n: &Node) -> R<Vec<Entry>> {
        let m = arg(n, 0)?.to_ascii_uppercase();
        let mut out = Vec::new();
        match m.as_str() {
            "DR" => {}
            "NAT" => out.push(field("forward", s("nat"), &n.loc)),
            "TUN" => {
                out.push(field("forward", s("tun"), &n.loc));
                let mut tunnel = Vec::new();
                let mut i = 1;
                while i < n.args.len() {
                    match n.args[i].as_str() {
                        "type" => {
                            let t = n.args.get(i + 1).map(|x| x.to_ascii_lowercase()).unwrap_or_default();
                            if t != "ipip" {
                                tunnel.push(field("type", s(&t), &n.loc));
                            }
                            i += 2;
                        }
                        "port" => {
                            let p = int(n, n.args.get(i + 1).map(String::as_str).unwrap_or(""), 1, 65535)?;
                            tunnel.push(field("port", Value::Int(p), &n.loc));
                            i += 2;
                        }
                        c @ ("nocsum" | "csum" | "remcsum") => {
                            tunnel.push(field("csum", s(c), &n.loc));
                            i += 1;
                        }
                        other => return Err(bad(n, other, "type ipip|gue|gre, port N, nocsum|csum|remcsum")),
                    }
                }
                if !tunnel.is_empty() {
                    out.push(field("tunnel", Value::Table(tunnel), &n.loc));
                }
            }
            other => return Err(bad(n, other, "NAT, DR or TUN")),
        }
        Ok(out)
    }

    /// A real_server block -> (its fields, its checks, "addr:port").
    fn real_server(
        &mut self,
        r: &Node,
        ports: &PortRules,
        vs_defaults: &CheckDefaults,
        body: &mut Vec<Entry>,
    ) -> R<(Vec<Entry>, Vec<Value>, String)> {
        let a = ip(r, arg(r, 0)?)?;
        let given = match r.args.get(1) {
            Some(p) => int(r, p, 0, 65535)? as u16,
            None => 0,
        };
        let own_method = r.children().iter().find(|c| c.key == "lvs_method");
        let method = match own_method {
            Some(m) => find_str(&self.method(m)?, "forward").unwrap_or_else(|| "dr".into()),
            None => ports.vs_method.clone(),
        };
        let port = self.real_port(r, ports, given, &method, "real server");
        let addr = host_port(&a.to_string(), port as i64);
        let mut fields = vec![field("address", s(&addr), &r.loc)];
        let mut defaults = vs_defaults.clone();
        // Settings inherited by checks come first, whatever their place in the block.
        for n in r.children() {
            let k = n.key.as_str();
            match k {
                "delay_loop" | "connect_timeout" | "delay_before_retry" | "warmup" => set_default(&mut defaults, k, timer(n, arg(n, 0)?)?),
                "retry" => defaults.retry = Some((int(n, arg(n, 0)?, 0, 1_000_000)?, n.loc.clone())),
                "virtualhost" => defaults.virtualhost = Some(arg(n, 0)?.to_string()),
                _ => {}
            }
        }
        let mut checks = Vec::new();
        let mut comments = Vec::new();
        for n in r.children() {
            let k = n.key.as_str();
            match k {
                "delay_loop" | "connect_timeout" | "delay_before_retry" | "warmup" | "retry" | "virtualhost" => {}
                "weight" => {
                    let w = int(n, arg(n, 0)?, 0, 65535)?;
                    if w != 1 {
                        fields.push(field("weight", Value::Int(w), &n.loc));
                    }
                }
                "uthreshold" => fields.push(field("upper_threshold", Value::Int(int(n, arg(n, 0)?, 0, u32::MAX as i64)?), &n.loc)),
                "lthreshold" => fields.push(field("lower_threshold", Value::Int(int(n, arg(n, 0)?, 0, u32::MAX as i64)?), &n.loc)),
                "lvs_method" => {
                    let m = self.method(n)?;
                    if m.is_empty() {
                        fields.push(field("forward", s("dr"), &n.loc));
                    } else {
                        fields.extend(m);
                    }
                }
                "inhibit_on_failure" => fields.push(field("inhibit_on_failure", Value::Bool(bool_arg(n)?), &n.loc)),
                "notify_up" | "notify_down" => {
                    let e = self.notify_field(n, k, &mut comments)?;
                    fields.push(e);
                }
                "alpha" => self.unsupported(n, "alpha is per service in lvsd", &mut comments),
                "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "SMTP_CHECK" | "DNS_CHECK" | "UDP_CHECK" | "MISC_CHECK" => {
                    checks.push(self.check(n, port, &defaults, &mut comments)?);
                }
                "PING_CHECK" | "BFD_CHECK" | "FILE_CHECK" => self.unsupported(n, "no such check in lvsd", &mut comments),
                _ => self.other(n, "real_server", RS_KNOWN, &mut comments)?,
            }
        }
        // Comments about the real go into the service body, next to the reals.
        body.extend(comments);
        Ok((fields, checks, addr))
    }

    fn check(&mut self, c: &Node, rs_port: u16, inherited: &CheckDefaults, body: &mut Vec<Entry>) -> R<Value> {
        let kind = c.key.as_str();
        let func = match kind {
            "TCP_CHECK" => "tcp",
            "HTTP_GET" => "http",
            "SSL_GET" => "https",
            "SMTP_CHECK" => "smtp",
            "DNS_CHECK" => "dns",
            "UDP_CHECK" => "udp",
            _ => "exec",
        };
        let mut d = inherited.clone();
        let mut out = Vec::new();
        let mut specific = Vec::new();
        let mut urls: Vec<Vec<Entry>> = Vec::new();
        let mut sni_enabled = false;
        for n in c.children() {
            let k = n.key.as_str();
            match k {
                "delay_loop" | "connect_timeout" | "delay_before_retry" | "warmup" => set_default(&mut d, k, timer(n, arg(n, 0)?)?),
                "retry" => d.retry = Some((int(n, arg(n, 0)?, 0, 1_000_000)?, n.loc.clone())),
                "nb_get_retry" => {
                    let v = int(n, arg(n, 0)?, 0, 1_000_000)?;
                    if func == "http" || func == "https" {
                        self.warn(&n.loc, "keyword 'nb_get_retry' is deprecated (keepalived 2.x: 'retry'); translated as retries");
                    } else {
                        self.warn(&n.loc, format!("keyword 'nb_get_retry' is keepalived 1.x's name for 'retry' (keepalived 2.2 ignores it in {kind}); translated as retries = {v}"));
                    }
                    d.retry = Some((v, n.loc.clone()));
                }
                "connect_port" => {
                    let p = int(n, arg(n, 0)?, 1, 65535)?;
                    if p != rs_port as i64 {
                        specific.push(field("port", Value::Int(p), &n.loc));
                    }
                }
                "bindto" => specific.push(field("bind", s(arg(n, 0)?), &n.loc)),
                "virtualhost" => d.virtualhost = Some(arg(n, 0)?.to_string()),
                "url" if func == "http" || func == "https" => urls.push(self.url(n, body)?),
                "sni_name" if func == "https" => specific.push(field("sni", s(arg(n, 0)?), &n.loc)),
                "enable_sni" if func == "https" => sni_enabled = true,
                "helo_name" if func == "smtp" => specific.push(field("helo", s(&n.args.join(" ")), &n.loc)),
                "type" if func == "dns" => {
                    let t = arg(n, 0)?.to_ascii_uppercase();
                    if t != "SOA" {
                        specific.push(field("type", s(&t), &n.loc));
                    }
                }
                "name" if func == "dns" => {
                    let v = arg(n, 0)?;
                    if v != "." {
                        specific.push(field("name", s(v), &n.loc));
                    }
                }
                "payload" if func == "udp" => specific.push(field("payload", s(&n.args.join(" ")), &n.loc)),
                "require_reply" if func == "udp" => {
                    if n.args.is_empty() {
                        self.unsupported(n, "a reply without content check; lvsd's udp check takes 'expect'", body);
                    } else {
                        specific.push(field("expect", s(&n.args.join(" ")), &n.loc));
                    }
                }
                "misc_path" if func == "exec" => specific.push(field("command", argv(&n.args.join(" ")), &n.loc)),
                "misc_timeout" if func == "exec" => specific.push(field("timeout", timer(n, arg(n, 0)?)?, &n.loc)),
                "misc_dynamic" if func == "exec" => specific.push(field("dynamic", Value::Bool(true), &n.loc)),
                "host" if func == "smtp" => self.unsupported(n, "extra hosts in one SMTP_CHECK; an lvsd check probes its real server", body),
                _ => self.other(n, kind, CHECK_KNOWN, body)?,
            }
        }
        if sni_enabled && !specific.iter().any(|e| matches!(e, Entry::Field(f) if f.key == "sni")) {
            // keepalived sends the virtualhost as SNI when no sni_name is given.
            if let Some(vh) = &d.virtualhost {
                specific.push(field("sni", s(vh), &c.loc));
            }
        }

        // Common settings, omitted where they equal the lvsd defaults.
        if let Some(v) = &d.delay_loop
            && num_text(v) != "60" {
                out.push(field("interval", v.clone(), &c.loc));
            }
        if func != "exec" {
            if let Some(v) = &d.connect_timeout
                && num_text(v) != "5" {
                    out.push(field("timeout", v.clone(), &c.loc));
                }
        } else if !specific.iter().any(|e| matches!(e, Entry::Field(f) if f.key == "timeout")) {
            // keepalived's misc_timeout defaults to the virtual_server's delay_loop, lvsd's exec timeout to 5 s.
            let t = d.vs_delay_loop.clone().unwrap_or(Value::Int(60));
            if num_text(&t) != "5" {
                out.push(field("timeout", t, &c.loc));
            }
        }
        let retries = match (&d.retry, func) {
            (Some((r, _)), _) => *r,
            (None, "dns") => 3,
            (None, "exec") => 0,
            (None, _) => 1,
        };
        if retries != 1 {
            out.push(field("retries", Value::Int(retries), &c.loc));
        }
        let retry_delay = match (&d.delay_before_retry, func) {
            (Some(v), _) => v.clone(),
            (None, "http" | "https") => Value::Int(3),
            (None, "dns") => d.delay_loop.clone().unwrap_or(Value::Int(60)),
            (None, _) => Value::Int(1),
        };
        if num_text(&retry_delay) != "1" {
            out.push(field("retry_delay", retry_delay, &c.loc));
        }
        if let Some(v) = &d.warmup {
            out.push(field("warmup", v.clone(), &c.loc));
        }
        out.extend(specific);
        if func == "http" || func == "https" {
            if let Some(vh) = &d.virtualhost {
                out.push(field("virtualhost", s(vh), &c.loc));
            }
            match urls.len() {
                0 => {}
                1 => out.extend(urls.pop().unwrap()),
                _ => out.push(field("urls", Value::List(urls.into_iter().map(Value::Table).collect()), &c.loc)),
            }
        }
        Ok(Value::Call(format!("lvsd.check.{func}"), out))
    }

    fn url(&mut self, u: &Node, body: &mut Vec<Entry>) -> R<Vec<Entry>> {
        let mut out = Vec::new();
        for n in u.children() {
            match n.key.as_str() {
                "path" => out.push(field("path", s(arg(n, 0)?), &n.loc)),
                "digest" => out.push(field("digest", s(arg(n, 0)?), &n.loc)),
                "regex" => out.push(field("regex", s(arg(n, 0)?), &n.loc)),
                "virtualhost" => self.unsupported(n, "a virtualhost per url; lvsd has one per check", body),
                "status_code" => {
                    let mut codes = Vec::new();
                    for a in &n.args {
                        if let Some((lo, hi)) = a.split_once('-') {
                            int(n, lo, 100, 999)?;
                            int(n, hi, 100, 999)?;
                            codes.push(s(a));
                        } else {
                            codes.push(Value::Int(int(n, a, 100, 999)?));
                        }
                    }
                    match codes.len() {
                        0 => return Err(TranslateError::MissingArg(n.loc.clone(), "status_code".into(), "a code or range".into())),
                        1 if codes[0] == s("200-299") => {}
                        1 => out.push(field("status", codes.pop().unwrap(), &n.loc)),
                        _ => out.push(field("status", Value::List(codes), &n.loc)),
                    }
                }
                _ => self.other(
                    n,
                    "url",
                    &["regex_no_match", "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset", "tls_compliant"],
                    body,
                )?,
            }
        }
        Ok(out)
    }
}

/// What decides a real (or sorry) server's port in keepalived's validate_check_config.
struct PortRules {
    vs_port: u16,
    is_fwmark: bool,
    is_group: bool,
    vs_method: String,
}

impl Tx<'_> {
    /// keepalived's port rules: NAT reals keep their port (none = the virtual server's);
    /// other methods use the virtual server's port (none for fwmark services).
    fn real_port(&mut self, n: &Node, r: &PortRules, given: u16, method: &str, what: &str) -> u16 {
        if r.is_group {
            return if given == 0 { r.vs_port } else { given };
        }
        if method == "nat" {
            return if given == 0 && !r.is_fwmark { r.vs_port } else { given };
        }
        let want = if r.is_fwmark { 0 } else { r.vs_port };
        if given != 0 && given != want {
            let msg = if r.is_fwmark {
                format!("{what} port {given}: a fwmark service's {method} servers have no port; keepalived clears it")
            } else {
                format!("{what} port {given} differs from the virtual server's ({method} forwarding); keepalived uses {want}")
            };
            self.warn(&n.loc, msg);
        }
        want
    }

    /// `lvs_sync_daemon IF [[inst] NAME] [id N] [maxlen N] [port N] [ttl N] [group IP]`
    fn global_sync_daemon(&mut self, n: &Node) -> R<()> {
        let mut sd = vec![field("interface", s(arg(n, 0)?), &n.loc)];
        let mut i = 1;
        while i < n.args.len() {
            let k = n.args[i].as_str();
            let val = n.args.get(i + 1).map(String::as_str);
            match (k, val) {
                ("inst", Some(v)) => sd.push(field("instance", s(v), &n.loc)),
                ("id", Some(v)) => sd.push(field("id", Value::Int(int(n, v, 0, 255)?), &n.loc)),
                ("maxlen", Some(v)) => sd.push(field("maxlen", Value::Int(int(n, v, 1, 65507)?), &n.loc)),
                ("port", Some(v)) => sd.push(field("port", Value::Int(int(n, v, 1, 65535)?), &n.loc)),
                ("ttl", Some(v)) => sd.push(field("ttl", Value::Int(int(n, v, 1, 255)?), &n.loc)),
                ("group", Some(v)) => sd.push(field("group", s(v), &n.loc)),
                (inst, _) if i == 1 => {
                    // `inst` may be omitted before the instance name.
                    sd.push(field("instance", s(inst), &n.loc));
                    i += 1;
                    continue;
                }
                (other, _) => return Err(bad(n, other, "inst NAME, id N, maxlen N, port N, ttl N, group IP")),
            }
            i += 2;
        }
        // keepalived: the sync id defaults to the instance's VRID; resolved in `translate`.
        self.sync_daemon = Some(Item { kind: Kind::SyncDaemon, name: "sync_daemon".into(), loc: n.loc.clone(), pre: vec![], body: sd, only_on: None });
        Ok(())
    }
}

const SCHEDULERS: &[&str] = &["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"];

fn garp_key(k: &str) -> Option<&'static str> {
    Some(match k {
        "garp_master_delay" => "master_delay",
        "garp_master_repeat" => "master_repeat",
        "garp_master_refresh" => "master_refresh",
        "garp_master_refresh_repeat" => "master_refresh_repeat",
        "garp_lower_prio_delay" => "lower_prio_delay",
        "garp_lower_prio_repeat" => "lower_prio_repeat",
        "garp_interval" => "interval",
        _ => return None,
    })
}

/// The garp table for settings `own` over `inherited`, keepalived's way: lower_prio_delay
/// and lower_prio_repeat default to the master_delay and master_repeat in effect. Entries
/// equal to lvsd's defaults (keepalived's with nothing set) are left out.
fn resolve_garp(own: &[(&'static str, Value, Loc)], inherited: &[(&'static str, Value, Loc)]) -> Vec<Entry> {
    let get = |k: &str| {
        own.iter().rev().chain(inherited.iter().rev()).find(|(key, ..)| *key == k).map(|(_, v, l)| (v.clone(), l.clone()))
    };
    let mut out = Vec::new();
    for (key, default) in [
        ("master_delay", "5"),
        ("master_repeat", "5"),
        ("master_refresh", "0"),
        ("master_refresh_repeat", "1"),
        ("lower_prio_delay", "5"),
        ("lower_prio_repeat", "5"),
        ("interval", "0"),
    ] {
        let v = get(key).or_else(|| match key {
            "lower_prio_delay" => get("master_delay"),
            "lower_prio_repeat" => get("master_repeat"),
            _ => None,
        });
        if let Some((v, loc)) = v
            && num_text(&v) != default
        {
            out.push(field(key, v, &loc));
        }
    }
    out
}

fn set_default(d: &mut CheckDefaults, k: &str, v: Value) {
    match k {
        "delay_loop" => d.delay_loop = Some(v),
        "connect_timeout" => d.connect_timeout = Some(v),
        "delay_before_retry" => d.delay_before_retry = Some(v),
        "warmup" => d.warmup = Some(v),
        _ => {}
    }
}

fn find_field<'a>(body: &'a [Entry], key: &str) -> Option<&'a Field> {
    body.iter().find_map(|e| match e {
        Entry::Field(f) if f.key == key => Some(f),
        _ => None,
    })
}

fn get<'a>(body: &'a [Entry], key: &str) -> Option<&'a Value> {
    find_field(body, key).map(|f| &f.value)
}

/// Remove a field, returning it.
fn take(body: &mut Vec<Entry>, key: &str) -> Option<Field> {
    let i = body.iter().position(|e| matches!(e, Entry::Field(f) if f.key == key))?;
    match body.remove(i) {
        Entry::Field(f) => Some(f),
        Entry::Comment(_) => None,
    }
}

fn set(body: &mut [Entry], key: &str, value: Value) {
    for e in body.iter_mut() {
        if let Entry::Field(f) = e
            && f.key == key
        {
            f.value = value;
            return;
        }
    }
}

fn note_field(key: &str, value: Value, loc: &Loc, note: &str) -> Entry {
    Entry::Field(Field { key: key.into(), value, loc: Some(loc.clone()), note: Some(note.into()) })
}

fn find_str(body: &[Entry], key: &str) -> Option<String> {
    body.iter().find_map(|e| match e {
        Entry::Field(Field { key: k, value: Value::Str(v), .. }) if k == key => Some(v.clone()),
        _ => None,
    })
}

fn one_or_list(mut checks: Vec<Value>) -> Value {
    if checks.len() == 1 { checks.pop().unwrap() } else { Value::List(checks) }
}

/// The source lines of a statement and its block, for comments.
fn node_lines(n: &Node, depth: usize) -> Vec<String> {
    let mut out = vec![format!("{}{}", "  ".repeat(depth), n.text)];
    if let Some(b) = &n.block {
        for c in b {
            out.extend(node_lines(c, depth + 1));
        }
        if !n.text.trim_end().ends_with('}') {
            out.push(format!("{}}}", "  ".repeat(depth)));
        }
    }
    out
}

fn words(n: &Node) -> Vec<String> {
    let mut v = vec![n.key.clone()];
    v.extend(n.args.iter().cloned());
    v
}

fn shown_all(words: &[String]) -> String {
    words.iter().map(|w| shown(w)).collect::<Vec<_>>().join(" ")
}

fn arg(n: &Node, i: usize) -> R<&str> {
    n.args.get(i).map(String::as_str).ok_or_else(|| TranslateError::MissingArg(n.loc.clone(), shown(&n.key), format!("expected {} argument(s)", i + 1)))
}

fn bad(n: &Node, v: &str, what: &str) -> TranslateError {
    TranslateError::BadValue(n.loc.clone(), shown(&n.key), shown(v), what.to_string())
}

fn int(n: &Node, v: &str, min: i64, max: i64) -> R<i64> {
    match v.parse::<i64>() {
        Ok(x) if x >= min && x <= max => Ok(x),
        Ok(_) => Err(TranslateError::BadNumber(n.loc.clone(), shown(&n.key), shown(v), format!(" (range {min}..{max})"))),
        Err(_) => Err(TranslateError::BadNumber(n.loc.clone(), shown(&n.key), shown(v), String::new())),
    }
}

/// A keepalived <TIMER>: seconds, fractions allowed.
fn timer(n: &Node, v: &str) -> R<Value> {
    if let Ok(i) = v.parse::<i64>()
        && i >= 0 {
            return Ok(Value::Int(i));
        }
    match v.parse::<f64>() {
        Ok(f) if f >= 0.0 && f.is_finite() => {
            if f.fract() == 0.0 {
                Ok(Value::Int(f as i64))
            } else {
                Ok(Value::Num(format!("{f}")))
            }
        }
        _ => Err(TranslateError::BadNumber(n.loc.clone(), shown(&n.key), shown(v), " (seconds)".into())),
    }
}

fn num_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Num(n) => n.clone(),
        _ => String::new(),
    }
}

/// keepalived <BOOL>: no argument means true.
fn bool_arg(n: &Node) -> R<bool> {
    match n.args.first().map(|s| s.to_ascii_lowercase()) {
        None => Ok(true),
        Some(b) => match b.as_str() {
            "on" | "true" | "yes" => Ok(true),
            "off" | "false" | "no" => Ok(false),
            other => Err(bad(n, other, "on|off|true|false|yes|no")),
        },
    }
}

fn ip(n: &Node, v: &str) -> R<IpAddr> {
    v.parse::<IpAddr>().map_err(|_| bad(n, v, "an IPv4 or IPv6 address"))
}

fn host_port(addr: &str, port: i64) -> String {
    if addr.contains(':') { format!("[{addr}]:{port}") } else { format!("{addr}:{port}") }
}

/// `192.0.2.1-10`, `192.0.2.250-192.0.3.10` or a plain address.
fn expand_range(n: &Node) -> R<Vec<IpAddr>> {
    let text = n.key.as_str();
    if let Some((lo, hi)) = text.split_once('-') {
        let lo_ip = ip(n, lo)?;
        let hi_ip = match hi.parse::<IpAddr>() {
            Ok(h) => h,
            Err(_) => {
                // Only the last part is given: replace the last octet / group.
                let sep = if lo.contains(':') { ':' } else { '.' };
                let base = &lo[..lo.rfind(sep).unwrap() + 1];
                ip(n, &format!("{base}{hi}"))?
            }
        };
        let (a, b) = match (lo_ip, hi_ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
            _ => return Err(bad(n, text, "a range within one address family")),
        };
        if b < a || b - a > 1024 {
            return Err(bad(n, text, "a range of at most 1024 addresses"));
        }
        Ok((a..=b)
            .map(|x| match lo_ip {
                IpAddr::V4(_) => IpAddr::V4((x as u32).into()),
                IpAddr::V6(_) => IpAddr::V6(x.into()),
            })
            .collect())
    } else if text.contains('/') {
        Err(bad(n, text, "CIDR ranges in virtual_server_group are not supported; list the addresses"))
    } else {
        Ok(vec![ip(n, text)?])
    }
}

/// Split a keepalived script string into an argument vector the way keepalived 2.x does
/// (no shell): whitespace separates, single quotes group, backslash escapes.
pub fn argv(script: &str) -> Value {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = script.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(d) = chars.next() {
                    cur.push(d);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(s(&std::mem::take(&mut cur)));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(s(&cur));
    }
    Value::List(out)
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn translate_text(text: &str) -> (Doc, Vec<Warning>) {
        let (nodes, mut w) = parse_str(Path::new("t.conf"), text, &ParseOptions::default()).unwrap();
        let doc = translate(&nodes, &mut w).unwrap();
        (doc, w)
    }

    #[test]
    fn group_ranges_expand() {
        let (doc, _) = translate_text(
            "virtual_server_group G {\n 192.0.2.1-3 80\n 192.0.2.254-192.0.3.1 81\n fwmark 7\n}\nvirtual_server group G {\n protocol TCP\n real_server 192.0.2.9 80 {\n }\n}\n",
        );
        let names: Vec<&str> = doc.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80", "192.0.2.254:81", "192.0.2.255:81", "192.0.3.0:81", "192.0.3.1:81", "fwmark 7"]
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
