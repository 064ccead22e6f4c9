//! vrrp_script (-> `lvsd.track.exec`), vrrp_instance (-> `lvsd.vrrp`, with the settings
//! keepalived derives or corrects made explicit) and vrrp_sync_group (-> `lvsd.sync_group`).
//! The notify scripts and smtp_alert of instances and sync groups share one handler.

use super::*;
use crate::import::lua::{self, s};

impl Tx<'_> {
    pub(super) fn script(&mut self, n: &Node) -> R<Item> {
        let name = arg(n, 0)?.to_string();
        let mut body = vec![field("name", s(&name), &n.loc)];
        let mut weight = 0;
        let mut user: Option<(Node, Vec<String>)> = None;
        for c in n.children() {
            // An error in one statement is recorded; the others are still translated.
            let r = (|| -> R<()> {
                let k = c.key.as_str();
                match k {
                    "script" => {
                        let cmd = self.command(c, &c.args.join(" "));
                        body.push(field("command", cmd, &c.loc))
                    }
                    "interval" | "timeout" => {
                        let v = timer(c, arg(c, 0)?)?;
                        if !(k == "interval" && num_text(&v) == "1") {
                            body.push(field(k, v, &c.loc));
                        }
                    }
                    "weight" => {
                        // vrrp_vscript_weight_handler reports a bad weight and goes on, with a
                        // weight it never set: 0 here (failure = Fault), said in a warning.
                        weight = int(c, arg(c, 0)?, -253, 253).unwrap_or_else(|_| {
                            let w = shown(&c.args[0]);
                            self.warn(&c.loc, format!("vrrp_script {name}: weight '{w}' is not in -253..253; keepalived runs the script with an undefined weight: translated as weight 0 (failure = Fault)"));
                            0
                        });
                        if weight != 0 {
                            body.push(field("weight", Value::Int(weight), &c.loc));
                        }
                        if c.args.get(1).map(String::as_str) == Some("reverse") {
                            body.push(field("reverse", Value::Bool(true), &c.loc));
                        }
                    }
                    "rise" | "fall" => {
                        let v = int(c, arg(c, 0)?, 1, 1_000_000)?;
                        if v != 1 {
                            body.push(field(k, Value::Int(v), &c.loc));
                        }
                    }
                    "user" => user = Some((c.clone(), c.args.clone())),
                    "init_fail" => body.push(field("init_fail", Value::Bool(true), &c.loc)),
                    _ => self.other(c, "vrrp_script", &[], &mut body)?,
                }
                Ok(())
            })();
            self.keep(r);
        }
        if let Some((c, words)) = user
            && let Some(mut cmd) = get(&body, "command").cloned()
        {
            self.run_as(&c, &mut cmd, &words);
            set(&mut body, "command", cmd);
        }
        if !body.iter().any(|e| matches!(e, Entry::Field(f) if f.key == "command")) {
            // keepalived: "No script set for vrrp_script NAME - removing".
            let mut note = Vec::new();
            self.unsupported(n, "no script line: keepalived removes it too", &mut note);
            return Ok(Item { kind: Kind::Note, name, loc: n.loc.clone(), pre: vec![], body: note, only_on: None });
        }
        if let Some((_, _, first)) = self.scripts.get(&name) {
            // keepalived keeps both and a track_script finds the first (find_script_by_name).
            let why = format!("defined again (first at line {}); keepalived's instances use the first", first.line);
            self.warn(&n.loc, format!("vrrp_script {}: {why}: not translated", shown(&name)));
            let lines = node_lines(n, 0);
            let mut note = vec![Entry::Comment(format!("keepalived: {} (not translated: {why})", lines[0]))];
            note.extend(lines[1..].iter().map(|l| Entry::Comment(format!("keepalived: {l}"))));
            return Ok(Item { kind: Kind::Note, name, loc: n.loc.clone(), pre: vec![], body: note, only_on: None });
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
        // Each VIP already listed, with its translation (a repeat is written as the first).
        let mut seen_vips: Vec<(IpAddr, (u8, Vec<String>), Value)> = Vec::new();
        let mut ah_auth: Option<Loc> = None;
        let mut strict: Option<Loc> = self.strict.clone();
        // The instance's family (true: IPv6), set by the first address of unicast_src_ip,
        // unicast_peer or virtual_ipaddress; keepalived skips those of the other family.
        let mut family: Option<bool> = None;
        // The tracked files and processes already listed (keepalived ignores a repeat).
        let mut track_files = Vec::new();
        for n in v.children() {
            // An error in one statement is recorded; the others are still translated.
            let r = (|| -> R<()> {
                let k = n.key.as_str();
                match k {
                    // keepalived's vrrp_state_handler (vrrp_parser.c): exact spelling; MASTER once
                    // given stays ("state previously set as MASTER - ignoring BACKUP"); anything
                    // else is "unknown state, defaulting to BACKUP".
                    "state" => match arg(n, 0)? {
                        "MASTER" => self.set_last(&mut body, n, "state", s("master")),
                        "BACKUP" if get(&body, "state").is_some() => {
                            self.warn(&n.loc, format!("vrrp_instance {name}: state previously set as MASTER; keepalived ignores BACKUP"));
                        }
                        "BACKUP" => {}
                        other => {
                            self.warn(&n.loc, format!("vrrp_instance {name}: unknown state '{}'; keepalived uses BACKUP", shown(other)));
                            take(&mut body, "state");
                        }
                    },
                    "interface" => self.set_last(&mut body, n, "interface", s(arg(n, 0)?)),
                    "virtual_router_id" => {
                        let id = Value::Int(int(n, arg(n, 0)?, 1, 255)?);
                        self.set_last(&mut body, n, "vrid", id)
                    }
                    // vrrp_prio_handler: "Priority not valid! ... Using default 100".
                    "priority" => {
                        let p = match int(n, arg(n, 0)?, 1, 255) {
                            Ok(p) => p,
                            Err(_) => {
                                self.warn(
                                    &n.loc,
                                    format!(
                                        "vrrp_instance {name}: priority '{}' is not valid (1..255); keepalived uses 100",
                                        shown(&n.args[0])
                                    ),
                                );
                                100
                            }
                        };
                        self.set_last(&mut body, n, "priority", Value::Int(p));
                    }
                    // vrrp_adv_handler: "Advert interval (%s) not valid! Must be > 0 - ignoring".
                    "advert_int" => match timer(n, arg(n, 0)?) {
                        Ok(t) if num_text(&t) != "0" => self.set_last(&mut body, n, "advert_int", t),
                        _ => self.warn(
                            &n.loc,
                            format!("vrrp_instance {name}: advert_int '{}' is not valid; keepalived ignores it", shown(&n.args[0])),
                        ),
                    },
                    // vrrp_version_handler: a second, different version "conflicts ...; ignoring".
                    "version" => {
                        match int(n, arg(n, 0)?, 2, 3) {
                            Ok(ver) => match get(&body, "version") {
                                Some(Value::Int(old)) if *old != ver => {
                                    self.warn(&n.loc, format!("vrrp_instance {name}: version {ver} conflicts with version {old} set before; keepalived ignores it"));
                                }
                                _ => {
                                    version_set = true;
                                    self.set_last(&mut body, n, "version", Value::Int(ver));
                                }
                            },
                            Err(_) => self.warn(
                                &n.loc,
                                format!("vrrp_instance {name}: version must be 2 or 3; keepalived ignores '{}'", shown(&n.args[0])),
                            ),
                        }
                    }
                    "strict_mode" => {
                        strict = if bool_arg(n)? { Some(n.loc.clone()) } else { None };
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
                            // Without a password keepalived uses no authentication at all.
                            ah_auth = pass.is_some().then(|| n.loc.clone());
                            take(&mut body, "auth_pass");
                        } else if let Some((mut p, loc)) = pass {
                            if p.chars().count() > 8 {
                                p = p.chars().take(8).collect();
                                self.warn(
                                    &loc,
                                    format!(
                                        "auth_pass is longer than 8 characters; keepalived uses only the first 8: translated as \"{p}\""
                                    ),
                                );
                            }
                            ah_auth = None;
                            let a = Node { loc: loc.clone(), ..n.clone() };
                            self.set_last(&mut body, &a, "auth_pass", s(&p));
                        }
                    }
                    // A second virtual_ipaddress block adds to the first (alloc_value_block appends).
                    "virtual_ipaddress" => {
                        let mut vips = Vec::new();
                        for a in n.children() {
                            // keepalived skips an entry it cannot read ("invalid address") and
                            // keeps the others.
                            let read = self.vip(a, &mut body).and_then(|v| Ok((v, ip(a, a.key.split('/').next().unwrap_or(""))?)));
                            let (v, addr) = match read {
                                Ok(x) => x,
                                Err(e) => {
                                    // The error without its file and line, which the warning has.
                                    let e = e.to_string();
                                    let detail = e.split_once(": ").map_or(e.as_str(), |(_, m)| m);
                                    let why = format!("not an address keepalived reads ({detail}); keepalived skips it");
                                    self.warn(&a.loc, format!("virtual_ipaddress entry '{}': {why}", a.text.trim()));
                                    body.push(Entry::Comment(format!("keepalived: {} (not translated: {why})", a.text.trim())));
                                    continue;
                                }
                            };
                            if !self.same_family(&mut family, a, addr, "virtual_ipaddress", &mut body) {
                                continue;
                            }
                            // What the address is configured with: keepalived's default prefix is
                            // the full length, so 192.0.2.10 and 192.0.2.10/32 are the same.
                            let full = if addr.is_ipv4() { 32 } else { 128 };
                            let settings = (a.key.split('/').nth(1).and_then(|p| p.parse().ok()).unwrap_or(full), a.args.clone());
                            if let Some((_, first_settings, first)) = seen_vips.iter().find(|(x, ..)| *x == addr) {
                                // alloc_vrrp_vip appends without a check and the adverts carry
                                // every entry (vip_cnt), so a keepalived peer expects the repeat.
                                let same = *first_settings == settings;
                                self.warn(
                                    &a.loc,
                                    format!(
                                        "VIP {addr} is listed twice; keepalived keeps both and its adverts count it twice: kept twice (the address is configured once{})",
                                        if same { "" } else { ", with the first entry's settings" }
                                    ),
                                );
                                vips.push(first.clone());
                                continue;
                            }
                            seen_vips.push((addr, settings, v.clone()));
                            vips.push(v);
                        }
                        append_list(&mut body, field("vips", Value::List(vips), &n.loc));
                    }
                    // Held with the VIPs, in no advert: any family (vrrp_evip_handler).
                    "virtual_ipaddress_excluded" => {
                        let mut vips = Vec::new();
                        for a in n.children() {
                            vips.push(self.vip(a, &mut body)?);
                        }
                        append_list(&mut body, field("excluded_vips", Value::List(vips), &n.loc));
                    }
                    // keepalived sets the adverts' source with either (vrrp_srcip_handler):
                    // without unicast peers both are the multicast adverts' source.
                    "unicast_src_ip" | "mcast_src_ip" => {
                        let text = self.host_address(n, arg(n, 0)?, k);
                        let addr = ip(n, &text)?;
                        if self.same_family(&mut family, n, addr, k, &mut body) {
                            self.set_last(&mut body, n, "unicast_src", s(&text));
                        }
                    }
                    "unicast_peer" => {
                        let mut peers = Vec::new();
                        for a in n.children() {
                            let text = self.host_address(a, &a.key, "unicast_peer");
                            if !self.same_family(&mut family, a, ip(a, &text)?, "unicast_peer", &mut body) {
                                continue;
                            }
                            if !a.args.is_empty() {
                                self.unsupported_arg_of(a, "unicast_peer", &a.args.join(" "), &mut body);
                            }
                            peers.push(s(&text));
                        }
                        append_list(&mut body, field("unicast_peers", Value::List(peers), &n.loc));
                        // keepalived does not check the TTL of unicast adverts; lvsd does unless told.
                        if get(&body, "relax_unicast_ttl").is_none() {
                            body.push(field("relax_unicast_ttl", Value::Bool(true), &n.loc));
                        }
                    }
                    "use_vmac" => self.use_vmac(n, &mut body),
                    // keepalived's accept mode lifts the firewall rules its strict mode adds
                    // against traffic to the VIPs; lvsd adds none, so it always accepts.
                    "accept" => body.push(Entry::Comment(format!("keepalived: {} (lvsd never blocks traffic to the VIPs)", n.text))),
                    "nopreempt"
                    | "check_unicast_src"
                    | "v3_checksum_as_v2"
                    | "dont_track_primary"
                    | "skip_check_adv_addr"
                    | "vmac_xmit_base" => {
                        if get(&body, k).is_none() {
                            body.push(field(k, Value::Bool(true), &n.loc));
                        }
                    }
                    "preempt" => body.push(Entry::Comment(format!("keepalived: {} (the default)", n.text))),
                    "preempt_delay" => {
                        let t = timer(n, arg(n, 0)?)?;
                        self.set_last(&mut body, n, "preempt_delay", t);
                    }
                    "track_interface" => {
                        let mut list = Vec::new();
                        for a in n.children() {
                            match a.args.first().map(String::as_str) {
                                Some("weight") => {
                                    let w = int(a, a.args.get(1).map(String::as_str).unwrap_or(""), -253, 253)?;
                                    let mut entry = vec![field("name", s(&a.key), &a.loc), field("weight", Value::Int(w), &a.loc)];
                                    if a.args.get(2).map(String::as_str) == Some("reverse") {
                                        entry.push(field("reverse", Value::Bool(true), &a.loc));
                                    }
                                    list.push(Value::Table(entry));
                                }
                                _ => list.push(s(&a.key)),
                            }
                        }
                        append_list(&mut body, field("track_interfaces", Value::List(list), &n.loc));
                    }
                    "track_script" => {
                        let mut list = Vec::new();
                        for a in n.children() {
                            match self.scripts.get(&a.key).cloned() {
                                None => {
                                    self.warn(
                                        &a.loc,
                                        format!("track_script '{}' is not defined by a vrrp_script; not translated", shown(&a.key)),
                                    );
                                    body.push(Entry::Comment(format!(
                                        "keepalived: {} (not translated: no vrrp_script '{}')",
                                        a.text, a.key
                                    )));
                                }
                                Some((mut sbody, default_w, _)) => {
                                    let default_rev = get(&sbody, "reverse").is_some();
                                    let (w, rev) = match a.args.first().map(String::as_str) {
                                        Some("weight") => {
                                            let w = int(a, a.args.get(1).map(String::as_str).unwrap_or(""), -253, 253)?;
                                            // vrrp_alloc_track_script: reverse or noreverse after the weight.
                                            let rev = match a.args.get(2).map(String::as_str) {
                                                Some("reverse") => true,
                                                Some("noreverse") => false,
                                                _ => default_rev,
                                            };
                                            (w, rev)
                                        }
                                        _ => (default_w, default_rev),
                                    };
                                    if (w, rev) == (default_w, default_rev) {
                                        list.push(Value::Ident(lua::ident(&a.key)));
                                    } else {
                                        // Another weight here: a copy of the script's track.
                                        sbody.retain(|e| !matches!(e, Entry::Field(f) if f.key == "weight" || f.key == "reverse"));
                                        if w != 0 {
                                            sbody.push(field("weight", Value::Int(w), &a.loc));
                                        }
                                        if rev {
                                            sbody.push(field("reverse", Value::Bool(true), &a.loc));
                                        }
                                        list.push(Value::Call("lvsd.track.exec".into(), sbody));
                                    }
                                }
                            }
                        }
                        if !list.is_empty() {
                            append_list(&mut body, field("track", Value::List(list), &n.loc));
                        }
                    }
                    "virtual_routes" => {
                        let list = self.virtual_routes(n, &mut body);
                        if !list.is_empty() {
                            append_list(&mut body, field("routes", Value::List(list), &n.loc));
                        }
                    }
                    "track_file" | "track_process" => {
                        let of = if k == "track_file" { tracked::Tracked::File } else { tracked::Tracked::Process };
                        let list = self.instance_tracks(n, &name, of, &mut track_files);
                        if !list.is_empty() {
                            append_list(&mut body, field("track", Value::List(list), &n.loc));
                        }
                    }
                    "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" | "smtp_alert" => {
                        self.state_alert(n, &mut notify, &mut body)?
                    }
                    "lvs_sync_daemon_interface" | "lvs_sync_daemon_inteface" => {
                        if k.ends_with("inteface") {
                            self.warn(&n.loc, "keyword 'lvs_sync_daemon_inteface' is a misspelling of 'lvs_sync_daemon_interface' from keepalived's documentation, which keepalived does not read (it starts no sync daemon); translated as lvsd.sync_daemon, as the configuration means");
                        }
                        if let Some(first) = &self.sync_daemon {
                            // vrrp_lvs_syncd_handler: "has already been specified ... - ignoring".
                            let why = format!("already given (line {}); keepalived ignores this one too", first.loc.line);
                            self.warn(&n.loc, format!("{k}: {why}: not translated"));
                            body.push(Entry::Comment(format!("keepalived: {} (not translated: {why})", n.text)));
                        } else {
                            // keepalived 2.x reads this as `lvs_sync_daemon IF inst NAME`, sync id = the VRID.
                            let sd = vec![field("interface", s(arg(n, 0)?), &n.loc), field("instance", s(&name), &n.loc)];
                            self.sync_daemon = Some(Item {
                                kind: Kind::SyncDaemon,
                                name: "sync_daemon".into(),
                                loc: n.loc.clone(),
                                pre: vec![format!("keepalived: {} (in vrrp_instance {name})", n.text)],
                                body: sd,
                                only_on: None,
                            });
                            body.push(Entry::Comment(format!("keepalived: {} (see lvsd.sync_daemon below)", n.text)));
                        }
                    }
                    // An instance has no garp_interval (keepalived 2.2: "Unknown keyword"; only
                    // global_defs' vrrp_garp_interval and a garp_group have one).
                    _ if k.starts_with("garp_") && k != "garp_interval" && garp_key(k).is_some() => {
                        garp.push((garp_key(k).unwrap(), timer(n, arg(n, 0)?)?, n.loc.clone()));
                    }
                    _ => self.other(n, "vrrp_instance", VRRP_KNOWN, &mut body)?,
                }
                Ok(())
            })();
            self.keep(r);
        }
        if self.skip_check_adv_addr && get(&body, "skip_check_adv_addr").is_none() {
            body.push(field("skip_check_adv_addr", Value::Bool(true), &v.loc));
        }
        let strict_mode = strict.is_some();
        self.complete_vmac(v, &name, family == Some(true), &mut body);
        let unicast = matches!(get(&body, "unicast_peers"), Some(Value::List(l)) if !l.is_empty());
        if !unicast && let Some(f) = take(&mut body, "check_unicast_src") {
            // keepalived reads it and has no unicast adverts to check.
            let loc = f.loc.clone().unwrap_or(v.loc.clone());
            self.warn(&loc, format!("vrrp_instance {name}: check_unicast_src applies to unicast peers and there are none; keepalived ignores it: not translated"));
            body.push(Entry::Comment("keepalived: check_unicast_src (not translated: no unicast_peer)".into()));
        }
        self.complete_vrrp(v, &name, version_set, &mut body, strict, ah_auth);
        if !matches!(get(&body, "vips"), Some(Value::List(l)) if !l.is_empty()) {
            // vrrp_complete_instance: "No VIP specified; at least one is required" for VRRPv3
            // and strict mode (the instance is dropped), "... is sensible" otherwise (it runs,
            // its adverts listing no address: notify programs may set one).
            if strict_mode || get(&body, "version") == Some(&Value::Int(3)) {
                let mut note = Vec::new();
                self.unsupported(
                    v,
                    "no virtual_ipaddress: keepalived requires one for VRRPv3 and strict mode and ignores the instance",
                    &mut note,
                );
                return Ok(Item { kind: Kind::Note, name, loc: v.loc.clone(), pre: vec![], body: note, only_on: None });
            }
            self.warn(
                &v.loc,
                format!("vrrp_instance {name}: no virtual_ipaddress; keepalived runs it (\"at least one is sensible\"), and so does lvsd"),
            );
        }
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
    pub(super) fn complete_vrrp(
        &mut self,
        v: &Node,
        name: &str,
        version_set: bool,
        body: &mut Vec<Entry>,
        strict: Option<Loc>,
        ah: Option<Loc>,
    ) {
        // Values equal to lvsd's defaults are left out (only the last of a repeated keyword
        // counts, so this is decided here, not where each line is read).
        for (key, default) in [("priority", "100"), ("preempt_delay", "0")] {
            if get(body, key).is_some_and(|v| num_text(v) == default) {
                take(body, key);
            }
        }
        // The address alone: a label ("label eth0:1") has a colon too.
        let v6 = |s: &str| s.split(['/', ' ']).next().is_some_and(|a| a.contains(':'));
        let ipv6 = matches!(get(body, "vips"), Some(Value::List(l)) if l.iter().any(|x| matches!(x, Value::Str(s) if v6(s))));
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
        if version == 2 && strict.is_some() && ipv6 {
            // "cannot use IPv6 with VRRP version 2; setting version 3".
            self.warn(&v.loc, format!("vrrp_instance {name}: vrrp_strict: IPv6 cannot use VRRP version 2; keepalived uses version 3"));
            take(body, "version");
            body.push(note_field("version", Value::Int(3), &v.loc, "vrrp_strict: IPv6 needs VRRPv3"));
        }
        let version = if get(body, "version") == Some(&Value::Int(2)) {
            take(body, "version");
            2
        } else {
            version
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
        let mut master = get(body, "state") == Some(&s("master"));
        if let Some(sloc) = &strict
            && master != owner
        {
            // vrrp_complete_instance: "State MASTER must match being address owner".
            if master {
                take(body, "state");
                self.warn(sloc, format!("vrrp_instance {name}: vrrp_strict: only the address owner (priority 255) may start as MASTER; keepalived starts it as BACKUP: translated without state = \"master\""));
            } else {
                body.push(note_field("state", s("master"), &v.loc, "vrrp_strict: the address owner starts as MASTER"));
                self.warn(sloc, format!("vrrp_instance {name}: vrrp_strict: the address owner (priority 255) starts as MASTER: translated as state = \"master\""));
            }
            master = !master;
        }
        if let Some(aloc) = &ah
            && master
            && !owner
            && strict.is_none()
            && version == 2
        {
            // "Initial state master is incompatible with AH authentication - clearing".
            take(body, "state");
            self.warn(aloc, format!("vrrp_instance {name}: keepalived starts an instance with AH authentication as BACKUP unless it is the address owner: translated without state = \"master\""));
            master = false;
        }
        let drop = |tx: &mut Self, body: &mut Vec<Entry>, key: &str, why: &str| {
            if let Some(f) = take(body, key) {
                let loc = f.loc.clone().unwrap_or(v.loc.clone());
                tx.warn(&loc, format!("vrrp_instance {name}: {why}; keepalived ignores it: not translated"));
                body.push(Entry::Comment(format!("keepalived: {key} (not translated: {why})")));
            }
        };
        if strict.is_some() {
            drop(self, body, "auth_pass", "vrrp_strict: keepalived uses no authentication in strict mode");
            drop(self, body, "preempt_delay", "vrrp_strict: preempt_delay does not work in strict mode");
        }
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
                self.warn(
                    &loc,
                    format!("vrrp_instance {name}: advert_int {secs} is not valid for VRRPv{version}; keepalived uses {fixed}"),
                );
                let value = if fixed.fract() == 0.0 { Value::Int(fixed as i64) } else { Value::Num(format!("{fixed}")) };
                set(body, "advert_int", value);
            }
            if num_text(&get(body, "advert_int").cloned().unwrap_or(Value::Int(1))) == "1" {
                take(body, "advert_int");
            }
        }
    }

    /// Whether `addr` is of the instance's family, which the first address sets. One of the
    /// other family is skipped with a warning, as keepalived skips it ("address family must
    /// match VRRP instance - ignoring").
    fn same_family(&mut self, family: &mut Option<bool>, n: &Node, addr: IpAddr, keyword: &str, body: &mut Vec<Entry>) -> bool {
        let v6 = addr.is_ipv6();
        if *family.get_or_insert(v6) == v6 {
            return true;
        }
        let why = "not of the instance's family, set by its first address; keepalived ignores it";
        self.warn(&n.loc, format!("{keyword} {addr}: {why}"));
        body.push(Entry::Comment(format!("keepalived: {} (not translated: {why})", n.text)));
        false
    }

    /// A unicast address as keepalived reads it (inet_stosockaddr): a mask or range after it
    /// (`192.0.2.1/24`, `192.0.2.1-9`) is dropped, with a warning here.
    fn host_address(&mut self, n: &Node, text: &str, keyword: &str) -> String {
        let Some(cut) = text.find(['/', '-']) else { return text.to_string() };
        let bare = text[..cut].to_string();
        self.warn(
            &n.loc,
            format!("{keyword} {text}: keepalived reads the address alone and drops '{}': translated as {bare}", &text[cut..]),
        );
        bare
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
                "brd" | "broadcast" => {
                    let val = a.args.get(i + 1).ok_or_else(|| TranslateError::MissingArg(a.loc.clone(), opt.into(), "a value".into()))?;
                    let prefix: u8 = addr.split('/').nth(1).and_then(|p| p.parse().ok()).unwrap_or(32);
                    if bare.contains(':') {
                        // add_addr_to_vector: "trying to assign a broadcast ... to the IPv6 address ... skipping VIP".
                        return Err(TranslateError::BadValue(
                            a.loc.clone(),
                            "brd".into(),
                            val.clone(),
                            "an IPv6 address has no broadcast".into(),
                        ));
                    }
                    if matches!(val.as_str(), "+" | "-") && prefix > 30 {
                        let why = format!("brd {val} needs a prefix of 30 or less; keepalived sets none");
                        self.warn(&a.loc, format!("virtual_ipaddress {addr}: {why}"));
                        body.push(Entry::Comment(format!("keepalived: {} (brd not translated: {why})", a.text.trim())));
                    } else if matches!(val.as_str(), "+" | "-") || val.parse::<std::net::Ipv4Addr>().is_ok() {
                        out.push(format!("brd {val}"));
                    } else {
                        return Err(TranslateError::BadValue(
                            a.loc.clone(),
                            "brd".into(),
                            val.clone(),
                            "not an IPv4 address, + or -".into(),
                        ));
                    }
                    i += 2;
                }
                "peer" | "preferred_lft" | "track_group" => {
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
                if find_field(notify, key).is_some() {
                    // "notify_master script already specified - ignoring".
                    self.warn(&n.loc, format!("keyword '{k}' repeated; keepalived keeps the first script: not translated"));
                    return Ok(());
                }
                notify.push(self.notify_field(n, key)?);
            }
        }
        Ok(())
    }

    /// `notify_master "/path/script arg" [user [group]]` -> `master = { argv }`.
    pub(super) fn notify_field(&mut self, n: &Node, key: &str) -> R<Entry> {
        let script = arg(n, 0)?;
        let mut cmd = self.command(n, script);
        self.run_as(n, &mut cmd, &n.args[1..]);
        Ok(field(key, cmd, &n.loc))
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
                        &[
                            "track_interface",
                            "track_script",
                            "track_file",
                            "track_process",
                            "track_bfd",
                            "global_tracking",
                            "sync_group_tracking_weight",
                            "notify_priority_changes",
                            "notify_deleted",
                        ],
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
