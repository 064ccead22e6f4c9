//! Reload: the policy loaded off the event loop, checked, and swapped in; everything the
//! director owns follows the new generation; the policy's files watched again.

use super::*;

/// The longest a policy load may take before it is abandoned.
const LOAD_DEADLINE: Duration = Duration::from_secs(15);

/// Drop a value (a Lua state) on a thread of its own, never waited for.
fn drop_elsewhere<T: Send + 'static>(value: T) {
    if let Err(e) = std::thread::Builder::new().name("lvsd-drop".into()).spawn(move || drop(value)) {
        tracing::warn!("cannot start a thread to close the old policy: {e}");
    }
}

impl Director {
    /// Load the policy on a thread of its own (a big policy takes a while to evaluate, and a
    /// hostile one may never finish); `apply_reload` takes the result. A load still running
    /// at its deadline is abandoned: its thread is left behind, never waited for, so that
    /// later reloads and a stop go on.
    pub(super) fn load_in_background(&self) -> tokio::task::JoinHandle<Result<Policy, PolicyError>> {
        crate::systemd::notify_reloading();
        let (path, opts) = (self.opts.policy.clone(), self.opts.load.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let shown = path.display().to_string();
        let spawned = std::thread::Builder::new().name("lvsd-load".into()).spawn(move || {
            let _ = tx.send(policy::load(&path, &opts));
        });
        tokio::task::spawn_local(async move {
            if let Err(e) = spawned {
                return Err(PolicyError::Failed(format!("{shown}: cannot start a thread to load it: {e}")));
            }
            match tokio::time::timeout(LOAD_DEADLINE, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(PolicyError::Failed(format!("{shown}: the load ended without a result"))),
                Err(_) => Err(PolicyError::Failed(format!(
                    "{shown}: loading took longer than {} s and was abandoned (an endless loop in C code?)",
                    LOAD_DEADLINE.as_secs()
                ))),
            }
        })
    }

    /// Swap in a freshly loaded policy, or keep the running one and report why not.
    pub(super) fn apply_reload(&mut self, why: &str, result: Result<Policy, PolicyError>) -> bool {
        let started = std::time::Instant::now();
        // The guards: an empty or gutted policy (a half-written save?) is not applied unless
        // forced.
        let force = std::mem::take(&mut self.force_reload);
        let result = result.and_then(|p| match policy::guard::check(&self.policy.model, &p.model, force) {
            Ok(()) => Ok(p),
            Err(refused) => {
                drop_elsewhere(p);
                Err(PolicyError::Failed(format!("{}: {refused}", self.opts.policy.display())))
            }
        });
        let ok = match result {
            Ok(p) => {
                let gone: Vec<usize> = (0..self.policy.model.services.len())
                    .filter(|&si| !p.model.services.iter().any(|s| s.name == self.policy.model.services[si].name))
                    .collect();
                self.omega(&gone);
                let old = std::mem::replace(&mut self.policy, p);
                // Closing a big Lua state takes a while too; on a thread nobody waits for.
                drop_elsewhere(old);
                self.generation += 1;
                self.inspect = None;
                self.last_reload = ReloadStatus { at: now_secs(), ok: true, errors: Vec::new(), generation: self.generation };
                self.reloads_ok += 1;
                self.forget_unknown_reals();
                if let Some(c) = &self.checks {
                    if let Err(e) = crate::check::install_net(&self.policy.lua) {
                        self.events.push("check_error", format!("lvsd.net: {e}"));
                    }
                    c.update(self.policy.model.clone(), self.policy.lua.clone());
                }
                let checked = started.elapsed();
                self.resync();
                tracing::debug!("reload applied: checks updated in {checked:?}, IPVS synced at {:?}", started.elapsed());
                // Recorded once the table has the change, so its time is when it took effect.
                self.events.push("reload", format!("policy reloaded ({why}): generation {}", self.generation));
                let tracks = self.tracks.as_mut().map(|t| t.set(&self.policy.model, std::time::Instant::now())).unwrap_or_default();
                if let Some(h) = &self.heartbeat
                    && let Err(e) = h.send(heartbeat::Command::Update(Box::new(self.policy.model.without_services()), tracks))
                {
                    self.events.push("vrrp_error", format!("the new VRRP settings were not applied: {e}"));
                }
                self.follow_ha_suspend(true);
                self.sync_daemons_reconcile();
                true
            }
            Err(e) => {
                let errors: Vec<String> = match e {
                    PolicyError::Invalid(errs) => errs.iter().map(|e| e.to_string()).collect(),
                    other => vec![other.to_string()],
                };
                for e in &errors {
                    tracing::error!("{e}");
                }
                self.events.push(
                    "reload_failed",
                    format!("policy not reloaded ({why}): {}; generation {} keeps running", errors.join("; "), self.generation),
                );
                self.last_reload = ReloadStatus { at: now_secs(), ok: false, errors, generation: self.generation };
                self.reloads_failed += 1;
                false
            }
        };
        crate::systemd::notify("READY=1");
        ok
    }

    /// Drop overrides of reals the new policy no longer has.
    pub(super) fn forget_unknown_reals(&mut self) {
        let known: HashSet<RealId> =
            self.policy.model.services.iter().flat_map(|s| s.reals.iter().map(move |r| (s.name.clone(), r.addr))).collect();
        self.drained.retain(|id| known.contains(id));
        self.weight_overrides.retain(|id, _| known.contains(id));
    }

    /// Watch the policy's files, unless the watcher already covers exactly these.
    pub(super) fn rewatch(&mut self, tx: &mpsc::UnboundedSender<policy::watch::Change>) {
        if self.watcher.as_ref().is_some_and(|(_, files)| *files == self.policy.files) {
            return;
        }
        // The new watcher first: a save between dropping the old one and starting the new one
        // would be missed. If it cannot start, the old one (if any) goes on watching.
        match policy::watch::watch(&self.policy.files, tx.clone()) {
            Ok(w) => self.watcher = Some((w, self.policy.files.clone())),
            Err(e) => self.events.push("watch_error", format!("{e}; reload with SIGHUP or `lvsd reload`")),
        }
    }
}

/// Reload requests while a policy loads in the background.
#[derive(Default)]
pub(super) struct Reloads {
    /// The load running now: why, and its task.
    pub(super) loading: Option<(String, tokio::task::JoinHandle<Result<Policy, PolicyError>>)>,
    /// Control requests answered when it is done.
    pub(super) waiting: Vec<tokio::sync::oneshot::Sender<Response>>,
    /// Requests that came during the load: the file may have changed since it was read, so
    /// one more load follows, and these wait for that one.
    pub(super) again: Option<(String, Vec<tokio::sync::oneshot::Sender<Response>>)>,
}

impl Reloads {
    /// Note a request; returns the reason when a load must start now.
    pub(super) fn request(&mut self, why: &str, reply: Option<tokio::sync::oneshot::Sender<Response>>) -> Option<String> {
        if self.loading.is_none() {
            self.waiting.extend(reply);
            return Some(why.to_string());
        }
        self.again.get_or_insert_with(|| (why.to_string(), Vec::new())).1.extend(reply);
        None
    }
}
