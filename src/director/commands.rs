//! Control commands (drain, weights, checks, yield, eval) and the status snapshot.

use super::*;
use crate::drain::Drain;
use crate::ipvs::backend::Reader;

impl Director {
    pub(super) fn real_index(&self, id: &RealId) -> Option<(usize, usize)> {
        let si = self.policy.model.services.iter().position(|s| s.name == id.0)?;
        let ri = self.policy.model.services[si].reals.iter().position(|r| r.addr == id.1)?;
        Some((si, ri))
    }

    pub(super) fn find_real(&self, r: &RealRef) -> Result<RealId, String> {
        let Some(vs) = self.policy.model.services.iter().find(|s| s.name == r.service) else {
            let names: Vec<&str> = self.policy.model.services.iter().map(|s| s.name.as_str()).collect();
            return Err(format!("no service '{}' (services: {})", r.service, names.join(", ")));
        };
        let addr = policy::parse_addr_port(&r.real, Some(vs.vip_port())).map_err(|e| format!("real {e}"))?;
        if !vs.reals.iter().any(|x| x.addr == addr) {
            let reals: Vec<String> = vs.reals.iter().map(|x| x.addr.to_string()).collect();
            return Err(format!("service '{}' has no real {} (reals: {})", vs.name, addr, reals.join(", ")));
        }
        Ok((vs.name.clone(), addr))
    }

    /// An operator's change to one real (drain, undrain, a weight override): find the real,
    /// change the director's state, record it, and sync that real's service only.
    fn change_real(
        &mut self,
        r: &RealRef,
        kind: &'static str,
        what: &str,
        result: serde_json::Value,
        change: impl FnOnce(&mut Self, RealId),
    ) -> Response {
        let id = match self.find_real(r) {
            Ok(id) => id,
            Err(e) => return Response::err(e),
        };
        let si = self.service_index(&id);
        change(self, id);
        self.events.push(kind, format!("{} {} {what}", r.service, r.real));
        self.resync_services(si);
        Response::ok(result)
    }

    /// Handle one control request.
    pub fn handle(&mut self, cmd: Command) -> Response {
        match cmd {
            Command::Status { .. } => Response::ok(self.status()),
            // From the REPL: the load runs in the background like any other (never on the
            // event loop); its result is in the status and the events.
            Command::Reload { force } => {
                self.reload_requested = true;
                self.force_reload |= force;
                Response::ok(json!({ "reload": "started" }))
            }
            Command::Eval { code } => self.eval(&code),
            Command::CheckNow(r) | Command::History(r) if self.find_real(&r).is_err() => Response::err(self.find_real(&r).unwrap_err()),
            Command::Drain(r) => self.change_real(&r, "drain", "drained (weight 0)", json!({ "drained": true }), |d, id| {
                d.drained.insert(id);
            }),
            Command::Undrain(r) => self.change_real(&r, "drain", "undrained", json!({ "drained": false }), |d, id| {
                d.drained.remove(&id);
            }),
            Command::SetWeight { weight, .. } if weight > 65535 => Response::err("weight must be 0..65535"),
            Command::SetWeight { real, weight } => {
                let what = format!("weight forced to {weight}");
                self.change_real(&real, "weight", &what, json!({ "weight": weight }), |d, id| {
                    d.weight_overrides.insert(id, weight);
                })
            }
            Command::ClearWeight(r) => self.change_real(&r, "weight", "weight override cleared", json!({ "weight": null }), |d, id| {
                d.weight_overrides.remove(&id);
            }),
            Command::CheckNow(_) => Response::err("checks are not running in this director"),
            Command::History(r) => {
                let id = self.find_real(&r).unwrap();
                let (si, ri) = self.real_index(&id).unwrap();
                match self.checks.as_ref().and_then(|c| c.real_status(si, ri)) {
                    Some(st) => Response::ok(serde_json::to_value(st).unwrap_or_default()),
                    None => Response::ok(json!(null)),
                }
            }
            Command::Yield { instance } | Command::Unyield { instance }
                if !self.heartbeat.as_ref().is_some_and(|h| h.is_running(&instance)) =>
            {
                Response::err(format!("no running VRRP instance '{instance}'"))
            }
            Command::Yield { instance } => match self.heartbeat.as_ref().unwrap().send(heartbeat::Command::Yield(instance.clone())) {
                Ok(()) => {
                    self.events.push("yield", format!("{instance}: yielding mastership (priority 0 sent, held at priority 1)"));
                    Response::ok(json!({ "yielded": instance }))
                }
                Err(e) => Response::err(e),
            },
            Command::Unyield { instance } => match self.heartbeat.as_ref().unwrap().send(heartbeat::Command::Unyield(instance.clone())) {
                Ok(()) => {
                    self.events.push("yield", format!("{instance}: priority restored"));
                    Response::ok(json!({ "yielded": null }))
                }
                Err(e) => Response::err(e),
            },
            Command::Events { limit } => Response::ok(json!(self.events.recent(limit.unwrap_or(50)))),
            Command::DrainDirector { timeout } => self.drain_director(timeout),
            Command::UndrainDirector => self.undrain_director(),
        }
    }

    /// The REPL's eval as the loop runs it: actions go through the same paths as the control
    /// commands, checks run now included (their results are the answer when the code
    /// returns nothing else).
    pub(super) fn eval_reply(&mut self, code: &str, reply: tokio::sync::oneshot::Sender<Response>) {
        let mut checks = Vec::new();
        let resp = self.eval_with(code, &mut checks);
        if checks.is_empty() || !resp.ok {
            let _ = reply.send(resp);
            return;
        }
        let found: Result<Vec<(usize, usize)>, String> = checks
            .iter()
            .map(|r| self.find_real(r).and_then(|id| self.real_index(&id).ok_or_else(|| "no such real".to_string())))
            .collect();
        let (found, c) = match (found, self.checks.clone()) {
            (Err(e), _) => {
                let _ = reply.send(Response::err(e));
                return;
            }
            (Ok(f), Some(c)) => (f, c),
            (Ok(_), None) => {
                let _ = reply.send(Response::err("checks are not running in this director"));
                return;
            }
        };
        tokio::task::spawn_local(async move {
            let mut results = Vec::new();
            for (si, ri) in found {
                results.push(serde_json::to_value(c.run_now(si, ri).await).unwrap_or_default());
            }
            let value = match resp.result {
                Some(v) if !v.is_null() => v,
                _ => serde_json::Value::Array(results),
            };
            let _ = reply.send(Response::ok(value));
        });
    }

    pub(super) fn eval(&mut self, code: &str) -> Response {
        self.eval_with(code, &mut Vec::new())
    }

    /// Evaluate; `check_now` actions are left in `checks` for the caller (they are async).
    fn eval_with(&mut self, code: &str, checks: &mut Vec<RealRef>) -> Response {
        let insp = match self.inspect.take() {
            Some(i) => i,
            None => match inspect::Inspector::new(&self.policy.model.node, self.opts.load.limits) {
                Ok(i) => i,
                Err(e) => return Response::err(format!("cannot create the inspection state: {e}")),
            },
        };
        let events = self.events.recent(100);
        let mut made = false;
        let (result, actions) = insp.eval(
            code,
            &mut || {
                made = true;
                status::render(&self.snapshot(true).finish(), false).map_err(|e| format!("status: {e}"))
            },
            &events,
        );
        if made {
            // Tens of MB at a large site, freed by the evaluation's end.
            crate::heap::give_back();
        }
        self.inspect = Some(insp);
        let mut action_results = Vec::new();
        for a in actions {
            if let Command::CheckNow(r) = a {
                checks.push(r);
                continue;
            }
            let r = self.handle(a);
            if !r.ok {
                return Response::err(r.error.unwrap_or_default());
            }
            action_results.push(r.result);
        }
        match result {
            Ok(v) => Response::ok(v),
            Err(e) => Response::err(e),
        }
    }

    pub fn status(&mut self) -> serde_json::Value {
        status::build(&self.snapshot(true).finish())
    }

    /// What the status document needs, copied out (the document is built from it), but for
    /// the table, which [`Pending::finish`] reads if `table`.
    pub fn snapshot(&mut self, table: bool) -> Pending {
        let m = &self.policy.model;
        let snap = status::Snapshot {
            model: m.clone(),
            policy: self.opts.policy.display().to_string(),
            generation: self.generation,
            last_reload: self.last_reload.clone(),
            reloads: (self.reloads_ok, self.reloads_failed),
            backend: self.opts.backend_name,
            writes: self.backend.writes(),
            vrrp: self.heartbeat.as_ref().map(|h| h.status()),
            states: m.services.iter().enumerate().map(|(si, vs)| (0..vs.reals.len()).map(|ri| self.real_state(si, ri)).collect()).collect(),
            drained: self.drained.clone(),
            overrides: self.weight_overrides.clone(),
            leaving: HashMap::new(),
            actual: None,
            suspended: self.suspended.clone(),
            bgp: self.bgp_status(),
            sync: self.sync_status(),
        };
        Pending { snap, read: table.then(|| self.backend.reader()), drain: self.drain.clone() }
    }

    /// Answer a status request: the table is read and the document built on a worker thread.
    /// `text_only`: the document has only its text (what `lvsd status` prints); `brief`: it
    /// has neither services, table nor text, and the table is not read.
    pub(super) fn status_reply(&mut self, reply: tokio::sync::oneshot::Sender<Response>, text_only: bool, brief: bool) {
        let pending = self.snapshot(!brief || text_only);
        tokio::task::spawn_local(async move {
            let doc = tokio::task::spawn_blocking(move || {
                let snap = pending.finish();
                let doc = if text_only { status::render_text(&snap) } else { status::render(&snap, brief) };
                crate::heap::give_back();
                doc
            })
            .await;
            let _ = reply.send(match doc {
                Ok(Ok(d)) => Response::ok_written(d),
                Ok(Err(e)) => Response::err(format!("status: {e}")),
                Err(e) => Response::err(format!("status: {e}")),
            });
        });
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Run a real's checks now; checks are async, so a task answers when they are done.
    pub(super) fn check_now(&mut self, r: RealRef, reply: tokio::sync::oneshot::Sender<Response>) {
        let found = self.find_real(&r).map(|id| self.real_index(&id));
        match (found, self.checks.clone()) {
            (Err(e), _) => {
                let _ = reply.send(Response::err(e));
            }
            (Ok(Some((si, ri))), Some(c)) => {
                tokio::task::spawn_local(async move {
                    let results = c.run_now(si, ri).await;
                    let _ = reply.send(Response::ok(serde_json::to_value(results).unwrap_or_default()));
                });
            }
            _ => {
                let _ = reply.send(Response::err("checks are not running in this director"));
            }
        }
    }
}

/// A status snapshot whose table is still to be read.
pub struct Pending {
    snap: status::Snapshot,
    read: Option<Reader>,
    /// When each draining entry leaves the table.
    drain: Drain,
}

impl Pending {
    /// Read the table (a kernel dump, on the caller's thread) and complete the snapshot.
    pub fn finish(self) -> status::Snapshot {
        let Pending { mut snap, read, drain } = self;
        let actual = read.and_then(|read| read().ok());
        let now = std::time::Instant::now();
        for (k, svc) in actual.iter().flat_map(|t| t.services.iter()) {
            for dk in svc.dests.keys() {
                if let Some(until) = drain.until(k, dk) {
                    snap.leaving.insert((*k, *dk), until.saturating_duration_since(now).as_secs_f64().ceil() as u64);
                }
            }
        }
        snap.actual = actual;
        snap
    }
}
