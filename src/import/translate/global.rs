//! global_defs: router_id and e-mail settings, vrrp_version, the VRRP process's real-time
//! priority, the global gratuitous ARP settings (the defaults of every instance's garp_*), and
//! the IPVS sync daemon.

use super::*;
use crate::import::lua::s;

impl Tx<'_> {
    pub(super) fn global(&mut self, g: &Node) -> R<Item> {
        let mut body = Vec::new();
        let mut garp = Vec::new();
        for n in g.children() {
            // An error in one statement is recorded; the others are still translated.
            let r = (|| -> R<()> {
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
                    // script_user USER [GROUP] (global_parser.c, script_user_handler).
                    "script_user" => {
                        body.push(field("script_user", s(arg(n, 0)?), &n.loc));
                        if let Some(g) = n.args.get(1) {
                            body.push(field("script_group", s(g), &n.loc));
                        }
                    }
                    "vrrp_rt_priority" => {
                        // keepalived takes SCHED_RR's 1..99 and brings a value outside to the
                        // nearest end with a warning (global_parser.c, get_realtime_priority).
                        let v = int(n, arg(n, 0)?, i32::MIN.into(), i32::MAX.into())?;
                        let p = v.clamp(1, 99);
                        if p != v {
                            self.warn(
                                &n.loc,
                                format!("vrrp_rt_priority {v} is outside 1..99: keepalived takes {p}, and so does the policy"),
                            );
                        }
                        body.push(field(k, Value::Int(p), &n.loc));
                    }
                    // keepalived raises its VRRP process to SCHED_RR (up to this priority) once it
                    // sees itself scheduled late; lvsd's VRRP thread is SCHED_RR from the start.
                    "max_auto_priority" | "min_auto_priority_delay" => body.push(Entry::Comment(format!(
                        "keepalived: {} (lvsd's VRRP thread runs at real-time priority from the start: vrrp_rt_priority, 1 unless set)",
                        n.text
                    ))),
                    "vrrp_version" => {
                        let v = int(n, arg(n, 0)?, 2, 3)?;
                        self.version = Some(v);
                        body.push(Entry::Comment(format!("keepalived: {} (applied to each VRRP instance as version = {v})", n.text)));
                    }
                    "lvs_sync_daemon" => self.global_sync_daemon(n)?,
                    "lvs_timeouts" => {
                        if let Some(t) = self.lvs_timeouts(n) {
                            body.push(field("lvs_timeouts", Value::Table(t), &n.loc));
                        }
                    }
                    "vrrp_skip_check_adv_addr" => {
                        self.skip_check_adv_addr = true;
                        body.push(Entry::Comment(format!("keepalived: {} (applied to each VRRP instance as keepalived does)", n.text)));
                    }
                    "vrrp_strict" => {
                        self.strict = Some(n.loc.clone());
                        body.push(Entry::Comment(format!("keepalived: {} (applied to each VRRP instance as keepalived does)", n.text)));
                    }
                    "vrrp_min_garp" => {
                        if bool_arg(n)? {
                            garp.push(("master_repeat", Value::Int(1), n.loc.clone()));
                            garp.push(("master_delay", Value::Int(0), n.loc.clone()));
                        }
                    }
                    // The spacing of unsolicited neighbour advertisements: lvsd spaces them as its
                    // gratuitous ARPs; keepalived's default, 0, is lvsd's too.
                    "vrrp_gna_interval" if timer(n, arg(n, 0)?).is_ok_and(|t| num_text(&t) == "0") => {
                        body.push(Entry::Comment(format!("keepalived: {} (the default)", n.text)));
                    }
                    _ if k.starts_with("vrrp_garp_") && garp_key(&k[5..]).is_some() => {
                        garp.push((garp_key(&k[5..]).unwrap(), timer(n, arg(n, 0)?)?, n.loc.clone()));
                    }
                    _ => self.other(n, "global_defs", GLOBAL_KNOWN, &mut body)?,
                }
                Ok(())
            })();
            self.keep(r);
        }
        self.global_garp = garp;
        let table = resolve_garp(&self.global_garp, &[]);
        if !table.is_empty() {
            body.push(field("garp", Value::Table(table), &g.loc));
        }
        Ok(Item { kind: Kind::Global, name: "global".into(), loc: g.loc.clone(), pre: vec![], body, only_on: None })
    }

    /// `lvs_sync_daemon IF [[inst] NAME] [id N] [maxlen N] [port N] [ttl N] [group IP]`
    pub(super) fn global_sync_daemon(&mut self, n: &Node) -> R<()> {
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
        self.sync_daemon =
            Some(Item { kind: Kind::SyncDaemon, name: "sync_daemon".into(), loc: n.loc.clone(), pre: vec![], body: sd, only_on: None });
        Ok(())
    }
}

pub(super) fn garp_key(k: &str) -> Option<&'static str> {
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
pub(super) fn resolve_garp(own: &[(&'static str, Value, Loc)], inherited: &[(&'static str, Value, Loc)]) -> Vec<Entry> {
    let get = |k: &str| own.iter().rev().chain(inherited.iter().rev()).find(|(key, ..)| *key == k).map(|(_, v, l)| (v.clone(), l.clone()));
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

impl Tx<'_> {
    /// `lvs_timeouts tcp N tcpfin N udp N`, read as keepalived's global_parser.c reads it:
    /// a bad value or a missing one is skipped with a warning, the others kept.
    fn lvs_timeouts(&mut self, n: &Node) -> Option<Vec<Entry>> {
        let mut out = Vec::new();
        let mut args = n.args.iter();
        while let Some(k) = args.next() {
            if !matches!(k.as_str(), "tcp" | "tcpfin" | "udp") {
                self.warn(&n.loc, format!("lvs_timeouts: unknown option '{}'; keepalived ignores it", shown(k)));
                continue;
            }
            match args.next().map(|v| (v, v.parse::<u32>())) {
                Some((_, Ok(v))) if v <= 86_400 * 31 => out.push(field(k, Value::Int(v.into()), &n.loc)),
                Some((v, _)) => {
                    self.warn(&n.loc, format!("lvs_timeouts: {k} '{}' is not 0..2678400 seconds; keepalived ignores it", shown(v)))
                }
                None => self.warn(&n.loc, format!("lvs_timeouts: no value for {k}; keepalived ignores it")),
            }
        }
        if out.is_empty() {
            self.warn(&n.loc, "lvs_timeouts without a timeout; keepalived ignores it");
            return None;
        }
        Some(out)
    }
}
