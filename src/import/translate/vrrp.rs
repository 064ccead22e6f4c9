//! vrrp_script (-> `lvsd.track.exec`), vrrp_instance (-> `lvsd.vrrp`, with the settings
//! keepalived derives or corrects made explicit) and vrrp_sync_group (-> `lvsd.sync_group`).
//! The notify scripts and smtp_alert of instances and sync groups share one handler.

use crate::import::lua::{self, s};
use super::*;

impl Tx<'_> {
    pub(super) fn script(&mut self, n: &Node) -> R<Item> {
        let name = arg(n, 0)?.to_string();
        let mut body = vec![field("name", s(&name), &n.loc)];
        let mut weight = 0;
        for c in n.children() {
            // An error in one statement is recorded; the others are still translated.
            let r = (|| -> R<()> {
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
                Ok(())
            })();
            self.keep(r);
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


    pub(super) fn vrrp(&mut self, v: &Node) -> R<Item> {
        let name = arg(v, 0)?.to_string();
        let mut body = Vec::new();
        let mut garp = Vec::new();
        let mut notify = Vec::new();
        let mut version_set = false;
        for n in v.children() {
            // An error in one statement is recorded; the others are still translated.
            let r = (|| -> R<()> {
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
                    "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" | "smtp_alert" => {
                        self.state_alert(n, &mut notify, &mut body)?
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
                Ok(())
            })();
            self.keep(r);
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
    pub(super) fn complete_vrrp(&mut self, v: &Node, name: &str, version_set: bool, body: &mut Vec<Entry>) {
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
    pub(super) fn vip(&mut self, a: &Node, body: &mut Vec<Entry>) -> R<Value> {
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

    /// The keywords vrrp_instance and vrrp_sync_group share for state changes: the notify
    /// scripts (-> the `notify` table) and smtp_alert.
    fn state_alert(&mut self, n: &Node, notify: &mut Vec<Entry>, body: &mut Vec<Entry>) -> R<()> {
        match n.key.as_str() {
            "smtp_alert" => {
                if bool_arg(n)? {
                    body.push(field("smtp_alert", Value::Bool(true), &n.loc));
                }
            }
            k => {
                let key = if k == "notify" { "any" } else { k.strip_prefix("notify_").unwrap_or(k) };
                notify.push(self.notify_field(n, key, body)?);
            }
        }
        Ok(())
    }

    /// `notify_master "/path/script arg" [user [group]]` -> `master = { argv }`.
    pub(super) fn notify_field(&mut self, n: &Node, key: &str, body: &mut Vec<Entry>) -> R<Entry> {
        let script = arg(n, 0)?;
        if n.args.len() > 1 {
            self.unsupported_arg(n, &format!("run as user {}", n.args[1..].join(" ")), body);
        }
        Ok(field(key, argv(script), &n.loc))
    }

    pub(super) fn sync_group(&mut self, g: &Node) -> R<Item> {
        let name = arg(g, 0)?.to_string();
        let mut body = Vec::new();
        let mut notify = Vec::new();
        for n in g.children() {
            // An error in one statement is recorded; the others are still translated.
            let r = (|| -> R<()> {
                let k = n.key.as_str();
                match k {
                    "group" => {
                        let list = n.children().iter().map(|c| s(&c.key)).collect();
                        body.push(field("instances", Value::List(list), &n.loc));
                    }
                    "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" | "smtp_alert" => {
                        self.state_alert(n, &mut notify, &mut body)?
                    }
                    _ => self.other(
                        n,
                        "vrrp_sync_group",
                        &["track_interface", "track_script", "track_file", "track_process", "track_bfd", "global_tracking",
                          "sync_group_tracking_weight", "notify_priority_changes", "notify_deleted"],
                        &mut body,
                    )?,
                }
                Ok(())
            })();
            self.keep(r);
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

}
