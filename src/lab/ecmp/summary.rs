//! The ecmp lab's report: figures per phase, the printed summary and the claims.

use super::*;

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

pub(super) fn report(lab: &Lab, long: &Tracker) -> Value {
    let requests = lab.shared.requests.lock().unwrap().clone();
    let frames = lab.watch.frames.lock().unwrap().clone();
    let routes = lab.watch.routes.lock().unwrap().clone();
    let conns = long.conns.lock().unwrap().clone();
    let names: Vec<String> = lab.directors.iter().map(|d| d.name.clone()).collect();
    let reals: Vec<String> = lab.reals.iter().map(|r| r.name.clone()).collect();
    let real_of = |mac: [u8; 6]| (0..reals.len()).find(|i| real_mac(*i) == mac).map(|i| reals[i].clone()).unwrap_or_else(|| mac_text(mac));
    let mut phases = Vec::new();
    for (i, p) in lab.phases.iter().enumerate() {
        let rs: Vec<&observe::Request> = requests.iter().filter(|r| r.phase == i).collect();
        let at = |r: &observe::Request| r.at.saturating_duration_since(lab.t0);
        let fault = p.fault.unwrap_or(p.start);
        let errors: Vec<String> = rs
            .iter()
            .filter_map(|r| {
                let off = at(r).as_secs_f64() - fault.as_secs_f64();
                r.result.as_ref().err().map(|e| format!("{off:+.2} s after the fault: {e}"))
            })
            .collect();
        let mut dist: BTreeMap<String, u64> = reals.iter().map(|r| (r.clone(), 0)).collect();
        for r in &rs {
            if let Ok(name) = &r.result {
                *dist.entry(name.clone()).or_default() += 1;
            }
        }
        let inside = |t: Duration| t >= p.start && t < p.end;
        let mut per: BTreeMap<String, Value> = BTreeMap::new();
        for (di, name) in names.iter().enumerate() {
            let mine = frames.iter().filter(|(t, d, _)| *d == di && inside(*t));
            let (mut syn, mut req) = (0u64, 0u64);
            let mut to: BTreeMap<String, u64> = BTreeMap::new();
            for (_, _, s) in mine {
                match s {
                    Seen::Syn => syn += 1,
                    Seen::Request(_) => req += 1,
                    Seen::Forwarded(mac) => *to.entry(real_of(*mac)).or_default() += 1,
                }
            }
            per.insert(name.clone(), json!({ "connections": syn, "requests": req, "reals": to }));
        }
        // The router's kernel route: its first change after the fault, and what it ended as.
        let change = routes.iter().find(|(t, _)| *t >= fault && *t < p.end).map(|(t, _)| *t);
        let after: Vec<String> =
            routes.iter().rfind(|(t, _)| *t < p.end).map(|(_, h)| h.iter().map(|a| a.to_string()).collect()).unwrap_or_default();
        // The traffic on the wire: the target's last new connection after a withdrawal, its
        // first one after a return.
        let syns_of =
            |d: usize| frames.iter().filter(move |(t, x, s)| *x == d && *s == Seen::Syn && *t >= fault && *t < p.end).map(|(t, ..)| *t);
        let moved = p.target.and_then(|d| match p.name.as_str() {
            "drain" | "kill" | "stop" => Some(syns_of(d).next_back().map(|t| ms(t - fault)).unwrap_or(0)),
            "undrain" | "return" | "add" => syns_of(d).next().map(|t| ms(t - fault)),
            _ => None,
        });
        // New connections that the target took after the router dropped it (drain: must be none).
        let late = match (p.target, change) {
            (Some(d), Some(c)) if p.name == "drain" || p.name == "stop" => {
                syns_of(d).filter(|t| *t > c + Duration::from_millis(200)).count()
            }
            _ => 0,
        };
        let withdrawn = ["drain", "kill", "stop"].contains(&p.name.as_str());
        let on_target =
            p.target.filter(|_| withdrawn).map(|d| long_lived_through(&frames, &long_sources(lab.opts.long.long_lived), d, fault));
        // The long-lived flows through the target at the fault: when each was first seen at
        // another director after it (the flow moved, on the wire); the slowest.
        let flows_moved = p.target.filter(|_| withdrawn).and_then(|d| {
            let long = long_sources(lab.opts.long.long_lived);
            let from = fault.saturating_sub(Duration::from_secs(1));
            let srcs = requesters(&frames, &long, |t, x| x == d && t >= from && t < fault);
            let moved: Vec<Option<Duration>> = srcs
                .iter()
                .map(|a| frames.iter().find(|(t, x, s)| *x != d && *t >= fault && *s == Seen::Request(*a)).map(|(t, ..)| *t - fault))
                .collect();
            (!moved.is_empty()).then(|| moved.iter().map(|m| m.map(ms)).max().flatten())
        });
        let failed_after_change = change.map(|c| rs.iter().filter(|r| r.result.is_err() && at(r) > c).count());
        // A director joining: what its table knew when the router took it in and at the end,
        // and the long-lived flows ECMP moved onto it (seen on its link after the change).
        let long = long_sources(lab.opts.long.long_lived);
        let listed = |t: &Option<Vec<wire::Conn>>| {
            t.as_ref().map(|t| {
                let (l, s) = long_lived_listed_in(t, &long);
                json!({ "listed": l, "synced": s, "entries": t.len() })
            })
        };
        let added = p.target.filter(|_| p.name == "add").map(|d| {
            let after = change.unwrap_or(p.end);
            let here = requesters(&frames, &long, |t, x| x == d && t >= after && t < p.end);
            // Synced entries only: the table is read just after the route change, when a
            // flow ECMP moved may already have an entry scheduled here.
            let known: Vec<Ipv4Addr> = p.table_at_route.iter().flatten().filter(|c| c.synced && open_entry(c)).map(|c| c.client).collect();
            let without = here.iter().filter(|a| !known.contains(a)).count();
            json!({
                "table_at_route_change": listed(&p.table_at_route), "table_at_end": listed(&p.table_at_end),
                "learned_ms": p.learned.map(|(l, _)| ms(l.saturating_sub(fault))), "alive": p.learned.map(|(_, n)| n),
                "long_lived_moved_here": here.len(), "moved_here_without_synced_entry": without,
                "new_connections_after_route_change": syns_of(d).filter(|t| *t >= after).count(),
            })
        });
        let route_changes = routes.iter().filter(|(t, _)| *t >= p.start && *t < p.end).count();
        let ll = (p.name != "baseline" && !conns.is_empty()).then(|| {
            let f = longlived::figures(&conns, fault, p.end);
            let pct = |v: &[u64], q: usize| v.get((v.len().saturating_sub(1)) * q / 100).copied();
            json!({
                "open": f.open, "survived": f.survived, "broken": f.broken, "young": f.young, "fault_at": fault.as_secs_f64(),
                "longest_gap_ms": { "median": pct(&f.first_answer_ms, 50), "max": f.first_answer_ms.last() },
                "reasons": f.reasons,
            })
        });
        phases.push(json!({
            "name": p.name, "what": p.what, "start": p.start.as_secs_f64(), "end": p.end.as_secs_f64(),
            "fault": p.fault.map(|f| f.as_secs_f64()), "target": p.target.map(|d| names[d].clone()),
            "sent": rs.len(), "failed": errors.len(), "ok_at_end": rs.iter().rev().take_while(|r| r.result.is_ok()).count(),
            "failed_after_route_change": failed_after_change,
            "real_gone_ms": p.real_gone.map(|g| ms(g.saturating_sub(fault))),
            "after_real_gone": p.real_gone.map(|g| {
                let after: Vec<_> = rs.iter().filter(|r| at(r) >= g).collect();
                json!({ "sent": after.len(), "failed": after.iter().filter(|r| r.result.is_err()).count() })
            }),
            "errors": errors.iter().take(5).collect::<Vec<_>>(),
            "distribution": dist, "directors": per,
            "route_change_ms": change.map(|c| ms(c - fault)), "route_after": after, "route_changes": route_changes, "added": added,
            "stale_entries": p.stale.as_ref().map(|v| names.iter().zip(v).map(|(n, c)| (n.clone(), json!(c))).collect::<serde_json::Map<_, _>>()),
            "traffic_moved_ms": moved, "exited_ms": p.exited.map(|e| ms(e.saturating_sub(fault))), "new_connections_after_withdrawal": late,
            "long_lived": ll, "long_lived_on_target": on_target, "long_lived_moved_ms": flows_moved,
        }));
    }
    let mut timeline = lab.notes.clone();
    for (t, hops) in &routes {
        let h: Vec<String> = hops.iter().map(|a| a.to_string()).collect();
        timeline.push((*t, format!("router: {VIP} via {}", if h.is_empty() { "nothing (withdrawn)".into() } else { h.join(", ") })));
    }
    timeline.sort_by_key(|(t, _)| *t);
    json!({
        "topology": "ecmp",
        "mode": "dr",
        "scheduler": lab.scheduler,
        "vip": format!("{VIP}:{PORT}"),
        "directors": names,
        "reals": reals,
        "detection": detection(lab.bfd),
        "sync": !lab.opts.long.no_sync,
        "sloppy_tcp": true,
        "long_lived_connections": lab.opts.long.long_lived,
        "phases": phases,
        "timeline": timeline.iter().map(|(t, m)| json!({ "at": t.as_secs_f64(), "event": m })).collect::<Vec<_>>(),
        "requests": requests.len(),
        "duration": lab.t0.elapsed().as_secs_f64(),
    })
}

/// The summary for people.
pub fn print(report: &Value) {
    println!("\nTimeline");
    for e in report["timeline"].as_array().into_iter().flatten() {
        println!("  {:8.2}s  {}", e["at"].as_f64().unwrap_or(0.0), e["event"].as_str().unwrap_or(""));
    }
    let strs = |v: &Value| -> Vec<String> { v.as_array().into_iter().flatten().filter_map(|r| r.as_str().map(str::to_string)).collect() };
    let (directors, reals) = (strs(&report["directors"]), strs(&report["reals"]));
    let opt = |v: &Value| v.as_u64().map(|m| format!("{m} ms")).unwrap_or_else(|| "-".into());
    println!(
        "\nSummary (ecmp: {} directors behind the router's ECMP route, VIP {}, {} + {}, sync daemon {}; detection: {})",
        directors.len(),
        report["vip"].as_str().unwrap_or(""),
        report["scheduler"].as_str().unwrap_or(""),
        report["mode"].as_str().unwrap_or("").to_uppercase(),
        if report["sync"] == true { "on" } else { "off" },
        report["detection"].as_str().unwrap_or("")
    );
    let mut head = format!("  {:<10} {:>6} {:>6}", "phase", "sent", "failed");
    for r in &reals {
        head.push_str(&format!(" {r:>6}"));
    }
    head.push_str(&format!("  {:>13} {:>13} {:>7}", "route change", "traffic moved", "changes"));
    println!("{head}");
    for p in report["phases"].as_array().into_iter().flatten() {
        let mut line = format!("  {:<10} {:>6} {:>6}", p["name"].as_str().unwrap_or(""), p["sent"].to_string(), p["failed"].to_string());
        for r in &reals {
            line.push_str(&format!(" {:>6}", p["distribution"][r].to_string()));
        }
        line.push_str(&format!(
            "  {:>13} {:>13} {:>7}",
            opt(&p["route_change_ms"]),
            opt(&p["traffic_moved_ms"]),
            p["route_changes"].to_string()
        ));
        println!("{line}");
        for e in p["errors"].as_array().into_iter().flatten().take(3) {
            println!("  {:<10}   failed: {}", "", e.as_str().unwrap_or(""));
        }
    }
    println!("  (route change: the router's kernel route, as `ip monitor` saw it; traffic moved: the target's last new connection");
    println!("   after a withdrawal, 0 if none came, or its first after a return or an add, in the kernel's packet time;");
    println!("   changes: how many times the router's route to the VIP changed during the phase)");
    for p in report["phases"].as_array().into_iter().flatten().filter(|p| p["stale_entries"].is_object()) {
        let per: Vec<String> = p["stale_entries"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(d, by)| {
                let n: Vec<String> = by.as_object().into_iter().flatten().map(|(k, n)| format!("{n} {k}")).collect();
                format!("{d} {}", if n.is_empty() { "none".into() } else { n.join(", ") })
            })
            .collect();
        println!("  {}: entries still naming the dead real at the phase's end: {}", p["name"].as_str().unwrap_or(""), per.join("; "));
    }
    for p in report["phases"].as_array().into_iter().flatten().filter(|p| !p["added"].is_null()) {
        let a = &p["added"];
        let t = |v: &Value| format!("{} of the long-lived connections ({} from the sync daemons)", v["listed"], v["synced"]);
        println!("\n{} joined ({}):", p["target"].as_str().unwrap_or(""), p["what"].as_str().unwrap_or(""));
        println!(
            "  its table when the router took it in ({} after its lvsd started): {}",
            opt(&p["route_change_ms"]),
            t(&a["table_at_route_change"])
        );
        println!(
            "  its table at the phase's end: {}; {}",
            t(&a["table_at_end"]),
            match a["learned_ms"].as_u64() {
                Some(m) => format!("it first listed all {} alive {m} ms after its lvsd started", a["alive"]),
                None => "it never listed all of them".into(),
            }
        );
        println!(
            "  ECMP moved {} long-lived flows onto it, {} without a synced entry ({} scheduled them anew, sloppy_tcp); it took {} new connections after the route change",
            a["long_lived_moved_here"],
            a["moved_here_without_synced_entry"],
            report["scheduler"].as_str().unwrap_or(SCHEDULER),
            a["new_connections_after_route_change"]
        );
    }
    println!("\nPer director: new connections / requests seen on its link (connections per real)");
    let mut head = format!("  {:<10}", "phase");
    for d in &directors {
        head.push_str(&format!(" {d:>24}"));
    }
    println!("{head}");
    for p in report["phases"].as_array().into_iter().flatten() {
        let mut line = format!("  {:<10}", p["name"].as_str().unwrap_or(""));
        for d in &directors {
            let x = &p["directors"][d];
            let to: Vec<String> = x["reals"].as_object().into_iter().flatten().map(|(r, n)| format!("{r} {n}")).collect();
            let cell = format!("{}/{} ({})", x["connections"], x["requests"], if to.is_empty() { "-".into() } else { to.join(", ") });
            line.push_str(&format!(" {cell:>24}"));
        }
        println!("{line}");
    }
    if report["long_lived_connections"].as_u64().unwrap_or(0) > 0 {
        println!("\nLong-lived connections ({} held, a request every 100 ms on each)", report["long_lived_connections"]);
        println!(
            "  {:<10} {:>5} {:>8} {:>6} {:>5}  longest silence around the fault (median / max)",
            "phase", "open", "survived", "broken", "young"
        );
        for p in report["phases"].as_array().into_iter().flatten() {
            let l = &p["long_lived"];
            if l.is_null() {
                continue;
            }
            println!(
                "  {:<10} {:>5} {:>8} {:>6} {:>5}  {} / {}",
                p["name"].as_str().unwrap_or(""),
                l["open"].to_string(),
                l["survived"].to_string(),
                l["broken"].to_string(),
                l["young"].to_string(),
                opt(&l["longest_gap_ms"]["median"]),
                opt(&l["longest_gap_ms"]["max"])
            );
            if !p["long_lived_on_target"].is_null() {
                println!(
                    "  {:<10}   {} through {} at the fault; the last of them seen at another director {} after it",
                    "",
                    p["long_lived_on_target"],
                    p["target"].as_str().unwrap_or(""),
                    opt(&p["long_lived_moved_ms"])
                );
            }
            for r in l["reasons"].as_array().into_iter().flatten() {
                println!("  {:<10}   broken: {}", "", r.as_str().unwrap_or(""));
            }
        }
    }
}

/// The claims, checked: each with a verdict line.
pub fn verify(report: &Value) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let phase = |n: &str| report["phases"].as_array().and_then(|ps| ps.iter().find(|p| p["name"] == n)).cloned();
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    let long = report["long_lived_connections"].as_u64().unwrap_or(0) > 0;
    let scheduler = report["scheduler"].as_str().unwrap_or(SCHEDULER);
    // Every connection open at the fault kept its real and kept being answered. A flow the
    // router moves between directors keeps its real by its synced entry or, without one, by
    // the consistent hash: with another scheduler the figure is reported, not claimed.
    let unbroken = |out: &mut Vec<(bool, String)>, p: &Value, name: &str| {
        if !long {
            return;
        }
        let l = &p["long_lived"];
        let (open, broken) = (u(&l["open"]), u(&l["broken"]));
        let line = format!("{name}: {broken} of {open} long-lived connections broken (longest silence {} ms)", l["longest_gap_ms"]["max"]);
        if consistent(scheduler) {
            out.push((open > 0 && broken == 0 && u(&l["survived"]) == open, line));
        } else {
            out.push((true, format!("{line} [reported, not claimed: {scheduler} gives the directors no common choice]")));
        }
    };
    // The fault touched long-lived connections: some went through its target.
    let touched = |out: &mut Vec<(bool, String)>, p: &Value, name: &str| {
        if long {
            let n = u(&p["long_lived_on_target"]);
            out.push((
                n > 0,
                format!("{name}: {n} long-lived connections went through {} at the fault", p["target"].as_str().unwrap_or("")),
            ));
        }
    };
    let took = |p: &Value, d: &str| u(&p["directors"][d]["connections"]);
    if let Some(b) = phase("baseline") {
        // Every director but the one that joins later.
        let joins = phase("add").and_then(|p| p["target"].as_str().map(str::to_string));
        let ds: Vec<String> = report["directors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str().map(str::to_string))
            .filter(|d| Some(d) != joins.as_ref())
            .collect();
        let every = !ds.is_empty() && ds.iter().all(|d| took(&b, d) > 0);
        let counts: Vec<String> = ds.iter().map(|d| format!("{d} {}", took(&b, d))).collect();
        out.push((every, format!("baseline: every started director took new connections ({})", counts.join(", "))));
        let reals = b["distribution"].as_object().is_some_and(|d| !d.is_empty() && d.values().all(|v| u(v) > 0));
        out.push((reals && u(&b["failed"]) == 0, format!("baseline: every real answered, no request failed ({})", b["distribution"])));
    }
    if let Some(p) = phase("add") {
        let t = p["target"].as_str().unwrap_or("");
        let a = &p["added"];
        out.push((u(&p["failed"]) == 0, format!("add: no request failed ({} sent)", p["sent"])));
        unbroken(&mut out, &p, "add");
        let took_after = u(&a["new_connections_after_route_change"]);
        out.push((
            !p["route_change_ms"].is_null() && took_after > 0,
            format!(
                "add: the router took {t} in {} ms after its lvsd started; {t} took {took_after} new connections after that",
                p["route_change_ms"]
            ),
        ));
        if report["sync"] == true && long {
            // It learned the others' connections: by the end its table lists every open
            // long-lived connection, some of them from the sync daemons (the rest are flows
            // ECMP moved onto it, scheduled here).
            let (listed, synced) = (u(&a["table_at_end"]["listed"]), u(&a["table_at_end"]["synced"]));
            out.push((
                !a["learned_ms"].is_null() && synced > 0,
                format!(
                    "add: {t} learned the others' connections: its table listed all {} long-lived connections alive {} ms after its lvsd started ({} of them, {} synced, when the router took it in; {listed}, {synced} synced, at the end)",
                    a["alive"], a["learned_ms"], a["table_at_route_change"]["listed"], a["table_at_route_change"]["synced"]
                ),
            ));
        }
        // Which flows ECMP moves is the router's hash: reported.
        out.push((
            true,
            format!(
                "add: ECMP moved {} long-lived flows onto {t}, {} of them without a synced entry there [reported]",
                a["long_lived_moved_here"], a["moved_here_without_synced_entry"]
            ),
        ));
    }
    if let Some(p) = phase("drain") {
        let t = p["target"].as_str().unwrap_or("");
        out.push((u(&p["failed"]) == 0, format!("drain: no request failed ({} sent)", p["sent"])));
        unbroken(&mut out, &p, "drain");
        touched(&mut out, &p, "drain");
        out.push((
            !p["route_change_ms"].is_null() && u(&p["new_connections_after_withdrawal"]) == 0,
            format!(
                "drain: the router dropped {t} {} ms after drain-director; {t} took {} new connections after that",
                p["route_change_ms"], p["new_connections_after_withdrawal"]
            ),
        ));
    }
    if let Some(p) = phase("undrain") {
        let t = p["target"].as_str().unwrap_or("");
        out.push((u(&p["failed"]) == 0, format!("undrain: no request failed ({} sent)", p["sent"])));
        unbroken(&mut out, &p, "undrain");
        out.push((took(&p, t) > 0, format!("undrain: {t} takes new connections again ({})", took(&p, t))));
    }
    if let Some(p) = phase("kill") {
        unbroken(&mut out, &p, "kill");
        touched(&mut out, &p, "kill");
        let after = u(&p["failed_after_route_change"]);
        out.push((
            !p["route_change_ms"].is_null() && after == 0,
            format!(
                "kill: the router dropped the dead director after {} ms; {} requests failed, none sent after the route change ({after})",
                p["route_change_ms"], p["failed"]
            ),
        ));
    }
    if let Some(p) = phase("return") {
        let t = p["target"].as_str().unwrap_or("");
        out.push((u(&p["failed"]) == 0, format!("return: no request failed ({} sent)", p["sent"])));
        unbroken(&mut out, &p, "return");
        out.push((took(&p, t) > 0, format!("return: {t} takes new connections again ({})", took(&p, t))));
    }
    if let Some(p) = phase("stop") {
        let t = p["target"].as_str().unwrap_or("");
        // What withdrawing first promises: nothing sent while the router still used this
        // director fails. A failure after the route change went through another director and
        // is no effect of the stop; it is reported beside the claim.
        let after = u(&p["failed_after_route_change"]);
        let before = u(&p["failed"]).saturating_sub(after);
        out.push((
            !p["route_change_ms"].is_null() && before == 0,
            format!("stop: no request sent before the route change failed ({} sent; {after} failed after it)", p["sent"]),
        ));
        unbroken(&mut out, &p, "stop");
        out.push((
            !p["route_change_ms"].is_null() && !p["exited_ms"].is_null() && u(&p["new_connections_after_withdrawal"]) == 0,
            format!(
                "stop: {t} withdrew (the router's route changed {} ms after SIGTERM; lvsd exited after {} ms); {t} took {} new connections after the route change",
                p["route_change_ms"], p["exited_ms"], p["new_connections_after_withdrawal"]
            ),
        ));
    }
    // The router's route changed once per phase that adds or removes a director and never
    // otherwise: a session that flaps (a BFD or hold timer that fires on a live director)
    // shows as changes no fault explains.
    if let Some(ps) = report["phases"].as_array().filter(|ps| ps.iter().all(|p| !p["route_changes"].is_null())) {
        let counts: Vec<String> = ps.iter().map(|p| format!("{} {}", p["name"].as_str().unwrap_or(""), p["route_changes"])).collect();
        let steady = |p: &Value| ["baseline", "real-down"].contains(&p["name"].as_str().unwrap_or(""));
        let ok = ps.iter().all(|p| u(&p["route_changes"]) == if steady(p) { 0 } else { 1 });
        out.push((ok, format!("routes: the router's route changed only at the faults, once each ({})", counts.join(", "))));
    }
    if let Some(p) = phase("real-down") {
        // Requests fail until every director's check has taken the real out; after that none may.
        let (sent, failed) = (u(&p["after_real_gone"]["sent"]), u(&p["after_real_gone"]["failed"]));
        out.push((
            sent >= 3 && failed == 0,
            format!(
                "real-down: once rs1 left every director's table ({} ms after its death), {failed} of {sent} requests failed ({} failed before)",
                p["real_gone_ms"],
                u(&p["failed"]).saturating_sub(failed)
            ),
        ));
    }
    out
}
