//! What follows an event: the policy's hooks, notify programs and e-mail alerts for VRRP
//! transitions, health changes and tracks.

use super::*;

impl Director {
    pub(super) fn on_track_changes(&mut self, changes: Vec<track::TrackChange>) {
        for (instance, name, up, weight) in changes {
            let weight_shown = if weight == 0 { String::new() } else { format!(" (weight {weight})") };
            self.events.push("track", format!("{instance}: track {name} is {}{weight_shown}", if up { "up" } else { "down" }));
            if let Some(h) = &self.heartbeat
                && let Err(e) = h.send(heartbeat::Command::Track { instance: instance.clone(), name, up, weight })
            {
                self.events.push("vrrp_error", format!("{instance}: {e}"));
            }
        }
    }

    /// Health changes: log them, run the reals' and services' hooks and notify programs, and
    /// send the table the difference (one sync of the services concerned for the whole batch).
    pub(super) fn on_check_events(&mut self, batch: Vec<crate::check::CheckEvent>) {
        let mut changed = std::collections::BTreeSet::new();
        for ev in batch {
            if ev.service < self.policy.model.services.len() {
                changed.insert(ev.service);
            }
            let Some(change) = ev.change else { continue };
            let Some(vs) = self.policy.model.services.get(ev.service).cloned() else { continue };
            let Some(r) = vs.reals.get(ev.real).cloned() else { continue };
            let (up, reason) = match &change {
                crate::check::RealChange::Up => (true, "checks pass".to_string()),
                crate::check::RealChange::Down { reason } => (false, reason.clone()),
            };
            let state = if up { "up" } else { "down" };
            self.events.push("health", format!("{} {}: {state} ({reason})", vs.name, r.addr));
            for hook in [if up { r.on_up } else { r.on_down }, if up { vs.on_up } else { vs.on_down }].into_iter().flatten() {
                let p = &self.policy;
                if let Ok(t) = p.table([
                    ("service", p.string(&vs.name)),
                    ("real", p.string(&r.addr.to_string())),
                    ("state", p.string(state)),
                    ("reason", p.string(&reason)),
                ]) && let Err(e) = p.call_hook::<_, ()>(hook, t)
                {
                    self.events.push("hook_error", format!("{} {} on_{state}: {e}", vs.name, r.addr));
                }
            }
            if let Some(argv) = if up { &r.notify_up } else { &r.notify_down } {
                spawn_program(argv.clone());
            }
        }
        if !changed.is_empty() {
            self.resync_services(changed);
        }
    }

    /// Record VRRP transitions and run the policy's hooks and notify programs, in order.
    pub(super) fn on_transitions(&mut self, ts: Vec<vrrp::Transition>) {
        if ts.is_empty() {
            return;
        }
        self.preempt_wait_on_transitions(&ts);
        let mut groups_done: Vec<(String, fsm_state::State)> = Vec::new();
        for t in ts {
            self.events.push("vrrp", format!("{}: {} -> {} ({}, priority {})", t.instance, t.from, t.to, t.reason, t.priority));
            let Some(model) = self.policy.model.vrrp.iter().find(|v| v.name == t.instance).cloned() else { continue };
            let ev = |p: &Policy, name: &str| {
                p.table([
                    ("instance", p.string(name)),
                    ("from", p.string(t.from.as_str())),
                    ("to", p.string(t.to.as_str())),
                    ("priority", mlua::Value::Integer(t.priority as i64)),
                    ("reason", p.string(&t.reason)),
                ])
            };
            if let Some(h) = model.on_change
                && let Ok(tbl) = ev(&self.policy, &t.instance)
                && let Err(e) = self.policy.call_hook::<_, ()>(h, tbl)
            {
                self.events.push("hook_error", format!("{} on_change: {e}", t.instance));
            }
            run_notify(&model.notify, "INSTANCE", &t.instance, t.to, t.priority);
            if model.smtp_alert {
                self.mail_alert("Instance", &t.instance, &t);
            }
            if let Some(g) = &t.group {
                if groups_done.iter().any(|(n, s)| n == g && *s == t.to) {
                    continue;
                }
                groups_done.push((g.clone(), t.to));
                if let Some(gm) = self.policy.model.sync_groups.iter().find(|x| &x.name == g).cloned() {
                    if let Some(h) = gm.on_change
                        && let Ok(tbl) = ev(&self.policy, g)
                        && let Err(e) = self.policy.call_hook::<_, ()>(h, tbl)
                    {
                        self.events.push("hook_error", format!("sync group {g} on_change: {e}"));
                    }
                    run_notify(&gm.notify, "GROUP", g, t.to, t.priority);
                    if gm.smtp_alert {
                        self.mail_alert("Group", g, &t);
                    }
                }
            }
        }
        self.follow_ha_suspend(false);
    }

    /// keepalived's alert: "[router_id] VRRP Instance VI_1 - Entering MASTER state".
    pub(super) fn mail_alert(&mut self, kind: &str, name: &str, t: &vrrp::Transition) {
        let g = &self.policy.model.global;
        let (Some(server), false) = (g.smtp_server.clone(), g.notification_email.is_empty()) else {
            self.events.push("alert_error", format!("smtp_alert on {name}, but lvsd.global has no smtp_server or notification_email"));
            return;
        };
        let router = g.router_id.clone().unwrap_or_else(|| self.policy.model.node.clone());
        let state = t.to.as_str().to_ascii_uppercase();
        let mail = alert::Mail {
            server,
            timeout: std::time::Duration::from_secs(g.smtp_connect_timeout as u64),
            helo: self.policy.model.node.clone(),
            from: g.notification_email_from.clone().unwrap_or_else(|| format!("lvsd@{}", self.policy.model.node)),
            to: g.notification_email.clone(),
            subject: format!("[{router}] VRRP {kind} {name} - Entering {state} state"),
            body: format!("=> VRRP {kind} {name} is now {state} ({}, priority {}) <=", t.reason, t.priority),
        };
        tokio::task::spawn_local(async move {
            if let Err(e) = alert::send(&mail).await {
                tracing::warn!("e-mail alert \"{}\": {e}", mail.subject);
            }
        });
    }

    pub(super) fn on_report(&mut self, r: heartbeat::Report) {
        match r {
            heartbeat::Report::Transitions(ts) => self.on_transitions(ts),
            heartbeat::Report::Note(kind, msg) => self.events.push(kind, msg),
            heartbeat::Report::Restarting(why) => {
                self.events.push("vrrp_error", why);
                // Read by the instances once they have started again.
                let tracks = self.tracks.as_ref().map(|t| t.known()).unwrap_or_default();
                if let Some(h) = &self.heartbeat
                    && let Err(e) = h.send(heartbeat::Command::Update(Box::new(self.policy.model.without_services()), tracks))
                {
                    self.events.push("vrrp_error", format!("the tracks' states were not sent to the restarted instances: {e}"));
                }
            }
            heartbeat::Report::PreemptHeld { instance, master, priority, bound } => self.on_preempt_held(instance, master, priority, bound),
        }
    }
}

/// keepalived's notify scripts: `notify_master` etc. as given, and `notify` with
/// TYPE NAME STATE PRIORITY appended. Argument vectors, never a shell.
pub(super) fn run_notify(n: &crate::model::Notify, kind: &str, name: &str, to: fsm_state::State, priority: u8) {
    use fsm_state::State;
    let specific = match to {
        State::Master => n.master.clone(),
        State::Backup => n.backup.clone(),
        State::Fault => n.fault.clone(),
        State::Initialize => n.stop.clone(),
    };
    let mut runs: Vec<crate::model::Argv> = specific.into_iter().collect();
    if let Some(mut any) = n.any.clone() {
        let state = if to == State::Initialize { "STOP".to_string() } else { to.as_str().to_ascii_uppercase() };
        any.args.extend([kind.to_string(), name.to_string(), state, priority.to_string()]);
        runs.push(any);
    }
    for argv in runs {
        spawn_program(argv);
    }
}

/// Run a program the policy named (an argument vector, no shell) and log how it ended.
pub(super) fn spawn_program(argv: crate::model::Argv) {
    {
        let shown = argv.join(" ");
        match crate::programs::command(&argv).kill_on_drop(false).spawn() {
            Ok(mut child) => {
                tokio::task::spawn_local(async move {
                    match child.wait().await {
                        Ok(s) if s.success() => {}
                        Ok(s) => tracing::warn!("notify {shown}: {s}"),
                        Err(e) => tracing::warn!("notify {shown}: {e}"),
                    }
                });
            }
            Err(e) => tracing::warn!("notify {shown}: cannot run: {e}"),
        }
    }
}
