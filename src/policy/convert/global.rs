//! `lvsd.global { ... }`: the director's global settings (keepalived's global_defs).

use super::*;

pub fn global(f: &mut Fields, g: &mut Global) {
    if let Some(v) = f.string("router_id") {
        g.router_id = Some(v);
    }
    if let Some(v) = f.strings("notification_email") {
        g.notification_email = v;
    }
    if let Some(v) = f.string("notification_email_from") {
        g.notification_email_from = Some(v);
    }
    if let Some(v) = f.string("smtp_server") {
        g.smtp_server = Some(v);
    }
    if let Some(v) = f.integer("smtp_connect_timeout", 1, 3600) {
        g.smtp_connect_timeout = v as u32;
    }
    if let Some(v) = f.boolean("enable_script_security") {
        g.enable_script_security = v;
    }
    let (user, group) = (f.string("script_user"), f.string("script_group"));
    if let Some(user) = user {
        match crate::policy::fields::run_as(&user, group.as_deref()) {
            Ok(r) => g.script_user = Some(r),
            // The message names `user` or `group`: said here as the keywords are written.
            Err(e) => f.error(format!("script_{e}")),
        }
    } else if group.is_some() {
        f.error("script_group needs script_user");
    }
    if let Some(v) = garp_field(f) {
        g.garp = v;
    }
    match f.string("foreign").as_deref() {
        None => {}
        Some("keep") => g.foreign = Foreign::Keep,
        Some("remove") => g.foreign = Foreign::Remove,
        Some(other) => f.error(format!("unknown foreign '{other}' (valid: keep, remove)")),
    }
    if let Some(v) = f.integer("drain_timeout", 0, 86_400) {
        g.drain_timeout = v as u32;
    }
    if let Some(v) = f.boolean("release_ipvs_on_stop") {
        g.release_ipvs_on_stop = v;
    }
    if let Some(v) = f.number("reload_guard", 0.0, 1.0) {
        g.reload_guard = v;
    }
    // keepalived's bound (LVS_MAX_TIMEOUT): 31 days.
    if let Some(mut t) = f.table("lvs_timeouts", "{ tcp = 7200, tcpfin = 120, udp = 300 }") {
        let mut get = |k: &'static str| t.integer(k, 0, 86_400 * 31).unwrap_or(0) as u32;
        let lt = LvsTimeouts { tcp: get("tcp"), tcp_fin: get("tcpfin"), udp: get("udp") };
        t.finish();
        g.lvs_timeouts = Some(lt);
    }
    if let Some(v) = f.integer("vrrp_rt_priority", 0, 99) {
        g.vrrp_rt_priority = Some(v as u8);
    }
}

pub(super) fn garp_field(f: &mut Fields) -> Option<Garp> {
    let mut gf = f.table("garp", "a table")?;
    let mut g = Garp::default();
    let int = |gf: &mut Fields, k: &'static str, hi: i64, d: u32| gf.integer(k, 0, hi).map(|v| v as u32).unwrap_or(d);
    g.master_delay = int(&mut gf, "master_delay", 1000, g.master_delay);
    g.master_repeat = int(&mut gf, "master_repeat", 1000, g.master_repeat);
    g.master_refresh = int(&mut gf, "master_refresh", 86_400, g.master_refresh);
    g.master_refresh_repeat = int(&mut gf, "master_refresh_repeat", 1000, g.master_refresh_repeat);
    g.interval = gf.number("interval", 0.0, 1.0).unwrap_or(g.interval);
    g.lower_prio_delay = int(&mut gf, "lower_prio_delay", 1000, g.lower_prio_delay);
    g.lower_prio_repeat = int(&mut gf, "lower_prio_repeat", 1000, g.lower_prio_repeat);
    gf.finish();
    Some(g)
}

pub(super) fn notify_field(f: &mut Fields) -> Notify {
    let Some(mut nf) = f.table("notify", "a table { master = {argv}, backup = ..., fault = ..., stop = ..., any = ... }") else {
        return Notify::default();
    };
    let n = Notify {
        master: nf.argv("master"),
        backup: nf.argv("backup"),
        fault: nf.argv("fault"),
        stop: nf.argv("stop"),
        any: nf.argv("any"),
    };
    nf.finish();
    n
}
