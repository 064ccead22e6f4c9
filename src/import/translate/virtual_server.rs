//! virtual_server_group (address ranges and fwmarks), virtual_server (-> `lvsd.service`, one
//! per address of a group) and real_server, with the corrections keepalived's
//! validate_check_config makes (ports, quorum, duplicates, persistence).

use super::*;
use crate::import::lua::s;

/// What decides a real (or sorry) server's port in keepalived's validate_check_config.
pub(super) struct PortRules {
    vs_port: u16,
    is_fwmark: bool,
    is_group: bool,
    vs_method: String,
}

/// The families in a virtual_server_group (init_vsg / alloc_vsg_entry: have_ipv4, have_ipv6,
/// fwmark_no_family).
#[derive(Default)]
struct GroupFamilies {
    v4: bool,
    v6: bool,
    fwmark_no_family: bool,
}

impl GroupFamilies {
    fn of(members: &[GroupMember]) -> GroupFamilies {
        let mut g = GroupFamilies::default();
        for m in members {
            match m {
                GroupMember::Addr(a, _) if a.is_ipv4() => g.v4 = true,
                GroupMember::Addr(..) => g.v6 = true,
                GroupMember::Fwmark(_, Some(f)) if f == "inet6" => g.v6 = true,
                GroupMember::Fwmark(_, Some(_)) => g.v4 = true,
                GroupMember::Fwmark(_, None) => g.fwmark_no_family = true,
            }
        }
        g
    }
}

fn family_name(v4: bool) -> &'static str {
    if v4 { "IPv4" } else { "IPv6" }
}

/// A virtual server's address family as keepalived works it out.
#[derive(Default)]
struct VsFamily {
    /// Some(true): IPv4, Some(false): IPv6, None: not set (every server tunnelled).
    af: Option<bool>,
    /// Real or sorry servers keepalived skips (by their line).
    skipped: Vec<Loc>,
    /// `ip_family` conflicting with the family already set.
    ignored_ip_family: bool,
}

pub(super) const SCHEDULERS: &[&str] = &["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"];

impl Tx<'_> {
    pub(super) fn server_group(&mut self, g: &Node) -> R<()> {
        let name = arg(g, 0)?.to_string();
        let mut members = Vec::new();
        for n in g.children() {
            // An error in one statement is recorded; the others are still translated.
            let r = (|| -> R<()> {
                if n.key == "fwmark" {
                    let mark = int(n, arg(n, 0)?, 1, u32::MAX as i64)?;
                    // alloc_vsg_entry: "fwmark '%u' family %s unknown - ignoring".
                    match n.args.get(1).map(String::as_str) {
                        None | Some("inet" | "inet6") => members.push(GroupMember::Fwmark(mark, n.args.get(1).cloned())),
                        Some(f) => self.warn(
                            &n.loc,
                            format!("fwmark {mark}: family '{}' is not inet or inet6; keepalived ignores the entry", shown(f)),
                        ),
                    }
                    return Ok(());
                }
                let port = match n.args.first() {
                    Some(p) => int(n, p, 0, 65535)? as u16,
                    None => 0,
                };
                for addr in expand_range(n)? {
                    members.push(GroupMember::Addr(addr, port));
                }
                Ok(())
            })();
            self.keep(r);
        }
        // init_vsg (check_parser.c): an empty group, or one with IPv4, IPv6 and a fwmark
        // without a family, is removed; a virtual server naming it is then ignored.
        let fam = GroupFamilies::of(&members);
        if members.is_empty() {
            self.warn(&g.loc, format!("virtual_server_group {} has no entries; keepalived removes it", shown(&name)));
        } else if fam.v4 && fam.v6 && fam.fwmark_no_family {
            self.warn(
                &g.loc,
                format!("virtual_server_group {} cannot have IPv4, IPv6 and fwmark without family; keepalived removes it", shown(&name)),
            );
        } else {
            self.groups.insert(name, members);
        }
        Ok(())
    }

    /// A virtual server keepalived ignores: a warning and the block as comments.
    fn ignored_vs(&mut self, vs: &Node, why: &str, short: &str) -> Item {
        self.warn(&vs.loc, format!("virtual_server {} {why}; keepalived ignores it: not translated", shown_all(&vs.args)));
        let lines = node_lines(vs, 0);
        let mut note = vec![Entry::Comment(format!("keepalived: {} (not translated: {short}, keepalived ignores it)", lines[0]))];
        note.extend(lines[1..].iter().map(|l| Entry::Comment(format!("keepalived: {l}"))));
        Item { kind: Kind::Note, name: vs.args.join(" "), loc: vs.loc.clone(), pre: vec![], body: note, only_on: None }
    }

    /// keepalived's address family of a virtual server, worked out as check_parser.c does in
    /// file order: an address's own (alloc_vs); `ip_family` unless it conflicts
    /// (ip_family_handler); the first real server not tunnelled, a later one of the other
    /// family being skipped (rs_end_handler); a sorry server not tunnelled (vs_end_handler).
    fn vs_family(&mut self, vs: &Node, targets: &[GroupMember]) -> VsFamily {
        let mut out = VsFamily {
            af: match targets {
                [GroupMember::Addr(a, _)] if vs.args.first().map(String::as_str) != Some("group") => Some(a.is_ipv4()),
                _ => None,
            },
            ..VsFamily::default()
        };
        let tunnelled = |m: &Node| m.args.first().is_some_and(|x| x.eq_ignore_ascii_case("TUN"));
        let mut vs_tun = false;
        for n in vs.children() {
            match n.key.as_str() {
                "lb_kind" | "lvs_method" => vs_tun = tunnelled(n),
                "ip_family" => {
                    let v4 = match n.args.first().map(String::as_str) {
                        Some("inet") => true,
                        Some("inet6") => false,
                        _ => continue,
                    };
                    match out.af {
                        Some(af) if af != v4 => {
                            self.warn(
                                &n.loc,
                                format!(
                                    "ip_family {} conflicts with the virtual server's family ({}); keepalived ignores it",
                                    n.args[0],
                                    family_name(af)
                                ),
                            );
                            out.ignored_ip_family = true;
                        }
                        _ => out.af = Some(v4),
                    }
                }
                "real_server" => {
                    let own = n.children().iter().find(|c| c.key == "lvs_method");
                    if !own.map_or(vs_tun, tunnelled) {
                        self.server_family(&mut out, n, "real server");
                    }
                }
                _ => {}
            }
        }
        if let Some(n) = vs.children().iter().find(|c| c.key == "sorry_server") {
            let own = vs.children().iter().find(|c| c.key == "sorry_server_lvs_method");
            if !own.map_or(vs_tun, tunnelled) {
                self.server_family(&mut out, n, "sorry server");
            }
        }
        // vs_end_handler: a fwmark service whose servers are all tunnelled takes their family
        // when they share one, else IPv4.
        if out.af.is_none() && vs.args.first().map(String::as_str) == Some("fwmark") {
            let mut fams = vs
                .children()
                .iter()
                .filter(|c| c.key == "real_server" || c.key == "sorry_server")
                .filter_map(|c| c.args.first()?.parse::<IpAddr>().ok())
                .map(|a| a.is_ipv4());
            let first = fams.next();
            out.af = Some(match first {
                Some(v4) if fams.all(|f| f == v4) => v4,
                _ => true,
            });
        }
        out
    }

    /// A real or sorry server not tunnelled: it sets the virtual server's family, or is
    /// skipped when of the other one (rs_end_handler: "Address family of virtual server and
    /// real server %s don't match - skipping real server."; vs_end_handler for the sorry server).
    fn server_family(&mut self, out: &mut VsFamily, n: &Node, what: &str) {
        let Some(a) = n.args.first().and_then(|a| a.parse::<IpAddr>().ok()) else { return };
        match out.af {
            None => out.af = Some(a.is_ipv4()),
            Some(af) if af != a.is_ipv4() => {
                self.warn(
                    &n.loc,
                    format!(
                        "{what} {} is not in the virtual server's address family ({}) and is not tunnelled; keepalived skips it: not translated",
                        shown_all(&n.args),
                        family_name(af)
                    ),
                );
                out.skipped.push(n.loc.clone());
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------- virtual_server

    pub(super) fn virtual_server(&mut self, vs: &Node) -> R<Vec<Item>> {
        // Which services this block makes: one address, one fwmark, or a group's members.
        let targets: Vec<GroupMember> = match vs.args.first().map(String::as_str) {
            Some("fwmark") => vec![GroupMember::Fwmark(int(vs, arg(vs, 1)?, 1, u32::MAX as i64)?, None)],
            Some("group") => {
                let g = arg(vs, 1)?;
                match self.groups.get(g) {
                    Some(m) => m.clone(),
                    // link_vsg_to_vs: "Virtual server group %s specified but not configured -
                    // ignoring virtual server" (also when the group was removed).
                    None => {
                        let why = format!("uses virtual_server_group {}, which is not defined (or was removed)", shown(g));
                        return Ok(vec![self.ignored_vs(vs, &why, "no such virtual_server_group")]);
                    }
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
            None => {
                return Err(TranslateError::MissingArg(
                    vs.loc.clone(),
                    "virtual_server".into(),
                    "an address and port, fwmark N or group NAME".into(),
                ));
            }
        };

        let fam = self.vs_family(vs, &targets);
        if vs.args.first().map(String::as_str) == Some("group") {
            // link_vsg_to_vs (ipwrapper.c): a group with both families needs a virtual server
            // whose family is not set (all its servers tunnelled); a one-family group needs
            // the same family as the virtual server.
            let g = GroupFamilies::of(&targets);
            let name = &vs.args[1];
            if g.v4 && g.v6 && fam.af.is_some() {
                let why = format!(
                    "uses virtual_server_group {}, which has IPv4 and IPv6 entries (only a virtual server whose servers are all tunnelled can)",
                    shown(name)
                );
                return Ok(vec![self.ignored_vs(vs, &why, "a group with both address families")]);
            }
            if (g.v4 && fam.af == Some(false)) || (g.v6 && fam.af == Some(true)) {
                let why = format!("uses virtual_server_group {}, whose address family is not its servers'", shown(name));
                return Ok(vec![self.ignored_vs(vs, &why, "the group's address family differs")]);
            }
        }
        // A fwmark without a family takes the virtual server's (IPv4 when it has none).
        let fwmark_family = match fam.af {
            Some(false) => Some("inet6".to_string()),
            _ => None,
        };
        let targets: Vec<GroupMember> = targets
            .into_iter()
            .map(|t| match t {
                GroupMember::Fwmark(m, None) => GroupMember::Fwmark(m, fwmark_family.clone()),
                t => t,
            })
            .collect();

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
            // An error in one statement is recorded; the others are still translated.
            let r = (|| -> R<()> {
                let k = n.key.as_str();
                match k {
                    "real_server" | "sorry_server" if fam.skipped.contains(&n.loc) => {
                        body.push(Entry::Comment(format!(
                            "keepalived: {} (not translated: not in the virtual server's address family)",
                            n.text
                        )));
                    }
                    "ip_family" if fam.ignored_ip_family => {
                        body.push(Entry::Comment(format!("keepalived: {} (not translated: conflicts with the servers' family)", n.text)));
                    }
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
                    // lvs_sched_handler (check_parser.c): the name as written (strcmp), else
                    // "Invalid lvs_scheduler '%s' - ignoring"; a repeated one replaces.
                    "lb_algo" | "lvs_sched" => {
                        let sch = arg(n, 0)?;
                        if !SCHEDULERS.contains(&sch) {
                            self.warn(
                                &n.loc,
                                format!(
                                    "{k} '{}' is not a scheduler keepalived knows (one of {}); keepalived ignores it",
                                    shown(sch),
                                    SCHEDULERS.join(" ")
                                ),
                            );
                        } else if find_field(&body, "scheduler").is_some() {
                            self.warn(&n.loc, format!("keyword '{k}' repeated; keepalived uses the last"));
                            set(&mut body, "scheduler", s(sch));
                        } else {
                            body.push(field("scheduler", s(sch), &n.loc));
                        }
                    }
                    "lb_kind" | "lvs_method" => forward = Some(self.method(n)?),
                    "nat_mask" => self.unsupported(n, "obsolete: only used by Linux 2.2 LVS; keepalived 2.x ignores it", &mut body),
                    "persistence_timeout" => {
                        let v = match n.args.first() {
                            Some(t) => Value::Int(int(n, t, 0, u32::MAX as i64)?),
                            None => Value::Bool(true),
                        };
                        // `persistence_timeout 0` is keepalived's way of saying "not persistent";
                        // a repeated one replaces the earlier (the handler assigns).
                        if take(&mut body, "persistence").is_some() {
                            self.warn(&n.loc, "keyword 'persistence_timeout' repeated; keepalived uses the last");
                        }
                        persistent = v != Value::Int(0);
                        if persistent {
                            body.push(field("persistence", v, &n.loc));
                        }
                    }
                    "persistence_granularity" => {
                        let m = arg(n, 0)?;
                        let v = if m.contains('.') { s(m) } else { Value::Int(int(n, m, 0, 128)?) };
                        body.push(field("netmask", v, &n.loc));
                    }
                    "persistence_engine" => body.push(field("pe", s(arg(n, 0)?), &n.loc)),
                    // proto_handler: TCP, UDP or SCTP in any case, else "Unknown protocol - ignoring".
                    "protocol" => {
                        let p = arg(n, 0)?.to_ascii_lowercase();
                        if !["tcp", "udp", "sctp"].contains(&p.as_str()) {
                            self.warn(&n.loc, format!("protocol '{}' is not TCP, UDP or SCTP; keepalived ignores it", shown(&n.args[0])));
                        } else {
                            protocol = Some(p);
                        }
                    }
                    "ha_suspend" if is_fwmark => {
                        self.warn(&n.loc, "keyword 'ha_suspend' does not apply to fwmark services (keepalived clears it); not translated");
                        body.push(Entry::Comment(format!(
                            "keepalived: {} (not translated: keepalived clears it on fwmark services)",
                            n.text
                        )));
                    }
                    "ha_suspend" | "omega" => body.push(field(k, Value::Bool(true), &n.loc)),
                    "alpha" => body.push(field(k, Value::Bool(bool_arg(n)?), &n.loc)),
                    "inhibit_on_failure" => body.push(field(k, Value::Bool(bool_arg(n)?), &n.loc)),
                    // quorum_handler: "Quorum %s must be in [1, %u]. Setting to 1."
                    "quorum" => {
                        let q = int(n, arg(n, 0)?, 1, u32::MAX as i64).unwrap_or_else(|_| {
                            self.warn(&n.loc, format!("quorum '{}' is not in 1..{}; keepalived sets it to 1", shown(&n.args[0]), u32::MAX));
                            1
                        });
                        quorum = Some((q, n.loc.clone()));
                    }
                    // hysteresis_handler: "Hysteresis %s must be in [0, %u] - ignoring".
                    "hysteresis" => match int(n, arg(n, 0)?, 0, u32::MAX as i64) {
                        Ok(h) => hysteresis = Some((h, n.loc.clone())),
                        Err(_) => self
                            .warn(&n.loc, format!("hysteresis '{}' is not in 0..{}; keepalived ignores it", shown(&n.args[0]), u32::MAX)),
                    },
                    "quorum_up" | "quorum_down" => {
                        let e = self.notify_field(n, k)?;
                        body.push(e);
                    }
                    // A fwmark service's family is written with the fwmark.
                    "ip_family" if is_fwmark || is_group => {}
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
                        let sch = vs
                            .children()
                            .iter()
                            .find(|c| c.key == "lb_algo" || c.key == "lvs_sched")
                            .and_then(|c| c.args.first())
                            .map(|x| x.to_ascii_lowercase());
                        let prefix = if sch.as_deref() == Some("mh") { "mh" } else { "sh" };
                        let flag = if k == "flag-1" { "fallback" } else { "port" };
                        sched_flags.push(s(&format!("{prefix}-{flag}")));
                    }
                    _ => self.other(n, "virtual_server", VS_KNOWN, &mut body)?,
                }
                Ok(())
            })();
            self.keep(r);
        }
        if reals.is_empty() {
            // keepalived: "Virtual server ... has no real servers - ignoring".
            return Ok(vec![self.ignored_vs(vs, "has no real servers", "no real servers")]);
        }
        if get(&body, "scheduler") == Some(&s("wlc")) {
            take(&mut body, "scheduler");
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
            let w = r
                .children()
                .iter()
                .filter(|c| c.key == "weight")
                .filter_map(|c| c.args.first()?.parse::<i64>().ok())
                .rfind(|w| (0..=i32::MAX as i64).contains(w));
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
        let all_same = !real_entries.is_empty() && !real_entries[0].1.is_empty() && real_entries.iter().all(|r| r.1 == real_entries[0].1);
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
    pub(super) fn method(&self, n: &Node) -> R<Vec<Entry>> {
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
    pub(super) fn real_server(
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
            // An error in one statement is recorded; the others are still translated.
            let r = (|| -> R<()> {
                let k = n.key.as_str();
                match k {
                    "delay_loop" | "connect_timeout" | "delay_before_retry" | "warmup" => {
                        set_default(&mut defaults, k, timer(n, arg(n, 0)?)?)
                    }
                    "retry" => defaults.retry = Some((int(n, arg(n, 0)?, 0, 1_000_000)?, n.loc.clone())),
                    "virtualhost" => defaults.virtualhost = Some(arg(n, 0)?.to_string()),
                    _ => {}
                }
                Ok(())
            })();
            self.keep(r);
        }
        let mut checks = Vec::new();
        let mut comments = Vec::new();
        for n in r.children() {
            // An error in one statement is recorded; the others are still translated.
            let r = (|| -> R<()> {
                let k = n.key.as_str();
                match k {
                    "delay_loop" | "connect_timeout" | "delay_before_retry" | "warmup" | "retry" | "virtualhost" => {}
                    // rs_weight_handler: "Real server weight %s is outside range 0-%d" (IPVS_WEIGHT_LIMIT,
                    // INT32_MAX) and
                    // the weight stays as it was; a repeated weight replaces.
                    "weight" => match int(n, arg(n, 0)?, 0, i32::MAX as i64) {
                        Ok(w) => {
                            take(&mut fields, "weight");
                            if w != 1 {
                                fields.push(field("weight", Value::Int(w), &n.loc));
                            }
                        }
                        Err(_) => self.warn(
                            &n.loc,
                            format!("real_server weight '{}' is not in 0..{}; keepalived ignores it", shown(&n.args[0]), i32::MAX),
                        ),
                    },
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
                        let e = self.notify_field(n, k)?;
                        fields.push(e);
                    }
                    "alpha" => self.unsupported(n, "alpha is per service in lvsd", &mut comments),
                    "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "SMTP_CHECK" | "DNS_CHECK" | "UDP_CHECK" | "PING_CHECK" | "MISC_CHECK" => {
                        checks.push(self.check(n, port, &defaults, &mut comments)?);
                    }
                    "BFD_CHECK" | "FILE_CHECK" => self.unsupported(n, "no such check in lvsd", &mut comments),
                    _ => self.other(n, "real_server", RS_KNOWN, &mut comments)?,
                }
                Ok(())
            })();
            self.keep(r);
        }
        // Comments about the real go into the service body, next to the reals.
        body.extend(comments);
        Ok((fields, checks, addr))
    }

    /// keepalived's port rules: NAT reals keep their port (none = the virtual server's);
    /// other methods use the virtual server's port (none for fwmark services).
    pub(super) fn real_port(&mut self, n: &Node, r: &PortRules, given: u16, method: &str, what: &str) -> u16 {
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
}
