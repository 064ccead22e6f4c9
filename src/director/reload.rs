//! Reload: the policy loaded off the event loop, checked, and swapped in; everything the
//! director owns follows the new generation; the policy's files watched again.

use super::*;

/// How long past its own time limit (`--load-time-limit`, which the Lua hook enforces) a load
/// may run before it is abandoned: what the hook cannot stop (a C call that does not end).
const LOAD_GRACE: Duration = Duration::from_secs(5);

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
        let deadline = opts.limits.load_time + LOAD_GRACE;
        let spawned = std::thread::Builder::new().name("lvsd-load".into()).spawn(move || {
            let _ = tx.send(policy::load(&path, &opts));
        });
        tokio::task::spawn_local(async move {
            if let Err(e) = spawned {
                return Err(PolicyError::Failed(format!("{shown}: cannot start a thread to load it: {e}")));
            }
            match tokio::time::timeout(deadline, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(PolicyError::Failed(format!("{shown}: the load ended without a result"))),
                Err(_) => Err(PolicyError::Failed(format!(
                    "{shown}: loading took longer than {} s and was abandoned (an endless loop in C code?)",
                    deadline.as_secs_f64()
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
                let as_before = declared_as_before(&self.policy.model, &p.model);
                let old = std::mem::replace(&mut self.policy, p);
                crate::programs::set_run_as(self.policy.model.global.script_user);
                // Foreign services are judged on a whole pass only.
                let whole = old.model.global.foreign != self.policy.model.global.foreign;
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
                    c.update(&self.policy.model, self.policy.lua.clone());
                }
                let checked = started.elapsed();
                if whole {
                    self.resync();
                } else {
                    self.declared_as_before = as_before;
                    self.sync_changed();
                }
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
                self.lvs_timeouts_reconcile();
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

/// For each service of `new`: declared exactly as in `old` (the same name, settings and
/// reals, and the same VRRP instances and drain time, which its wanted state also follows),
/// so that its wanted state cannot have changed with the policy. Empty when the instances or
/// the drain time changed: every service is looked at then.
fn declared_as_before(old: &crate::model::Model, new: &crate::model::Model) -> Vec<bool> {
    if old.vrrp != new.vrrp || old.global.drain_timeout != new.global.drain_timeout {
        return Vec::new();
    }
    let before: HashMap<&str, &crate::model::VirtualServer> = old.services.iter().map(|s| (s.name.as_str(), s)).collect();
    new.services.iter().map(|s| before.get(s.name.as_str()).is_some_and(|o| *o == s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::memory::MemoryBackend;
    use crate::ipvs::reconcile::Op;
    use std::sync::{Arc, Mutex};

    /// The memory backend, noting how many services each pass read (None: the whole table).
    struct Counting(MemoryBackend, Arc<Mutex<Vec<Option<usize>>>>);

    impl Backend for Counting {
        fn dump(&mut self) -> Result<Table, backend::ApplyError> {
            self.0.dump()
        }
        fn apply(&mut self, op: &Op) -> Result<(), backend::ApplyError> {
            Backend::apply(&mut self.0, op)
        }
        fn read_diff(
            &mut self,
            desired: &Table,
            owned: &dyn Fn(&ServiceKey) -> bool,
            scope: Option<&[ServiceKey]>,
        ) -> Result<(Vec<Op>, Vec<ServiceKey>), backend::ApplyError> {
            self.1.lock().unwrap().push(scope.map(|s| s.len()));
            self.0.read_diff(desired, owned, scope)
        }
        fn writes(&self) -> u64 {
            self.0.writes()
        }
    }

    fn policy(weight: u32, with_b: bool) -> String {
        let mut s =
            format!("lvsd.service 'a' {{ vip = '192.0.2.10:80', reals = {{ {{ address = '198.51.100.1:80', weight = {weight} }} }} }}\n");
        if with_b {
            s += "lvsd.service 'b' { vip = '192.0.2.11:80', reals = { '198.51.100.2:80' } }\n";
        }
        s + "lvsd.service 'c' { vip = '192.0.2.12:80', reals = { '198.51.100.3:80' } }\n"
    }

    /// A director's options for a test: the memory backend, no control socket.
    fn options(file: &std::path::Path) -> Options {
        Options {
            policy: file.to_path_buf(),
            load: LoadOptions { node: "lvs01".into(), limits: Default::default() },
            control: None,
            resync_interval: Duration::from_secs(10),
            debounce: Duration::from_millis(25),
            backend_name: "memory",
            metrics: None,
            metrics_compat: Default::default(),
        }
    }

    #[test]
    fn a_reload_reads_and_writes_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.lua");
        std::fs::write(&file, policy(1, true)).unwrap();
        let opts = options(&file);
        let reads = Arc::new(Mutex::new(Vec::new()));
        let mut d = Director::new(opts, Box::new(Counting(MemoryBackend::new(), reads.clone()))).unwrap();
        assert_eq!(d.resync().applied.len(), 6, "3 services and their reals");
        let writes = d.backend.writes();

        // What the reload's passes read: no whole table, and at most this many services.
        let reload = |d: &mut Director, src: String, services: usize| {
            std::fs::write(&file, src).unwrap();
            reads.lock().unwrap().clear();
            let p = policy::load(&file, &d.opts.load);
            assert!(d.apply_reload("test", p));
            let seen = reads.lock().unwrap().clone();
            assert!(!seen.is_empty() && seen.iter().all(|r| r.is_some()), "{seen:?}");
            assert_eq!(seen.iter().flatten().max(), Some(&services), "{seen:?}");
        };
        // Nothing changed: nothing read, nothing written.
        reload(&mut d, policy(1, true), 0);
        assert_eq!(d.backend.writes(), writes);
        // One weight changed and one service gone: those two are read, two writes.
        reload(&mut d, policy(7, false), 2);
        assert_eq!(d.backend.writes(), writes + 2);
        let table = d.backend.dump().unwrap();
        assert_eq!(table.services.len(), 2);
        let a = table.services.values().find(|s| s.dests.len() == 1 && s.dests.values().any(|x| x.weight == 7));
        assert!(a.is_some(), "the new weight is in the table: {table:?}");
        // The periodic pass still reads the whole table.
        d.resync();
        assert_eq!(reads.lock().unwrap().last(), Some(&None));
    }

    #[test]
    fn services_declared_as_before_are_known_by_name() {
        let m = |src: &str| crate::policy::test_model(src, "lvs01");
        let old = m(&policy(1, true));
        // 'a' changed its weight, 'b' left, 'c' moved a line up (its origin changed with it).
        assert_eq!(declared_as_before(&old, &m(&policy(7, false))), vec![false, false]);
        assert_eq!(declared_as_before(&old, &old), vec![true, true, true]);
        let reordered = "lvsd.service 'x' { vip = '192.0.2.13:80', reals = { '198.51.100.4:80' } }\n".to_string() + &policy(1, true);
        let shifted = declared_as_before(&old, &m(&reordered));
        assert_eq!(shifted, vec![false, false, false, false], "every origin moved a line down");
        // The VRRP instances changed: every service is looked at.
        let with_vrrp = policy(1, true) + "lvsd.vrrp 'VI_1' { interface = 'eth0', vrid = 1, vips = { '192.0.2.100' } }\n";
        assert!(declared_as_before(&old, &m(&with_vrrp)).is_empty());
        assert_eq!(declared_as_before(&m(&with_vrrp), &m(&with_vrrp)), vec![true, true, true]);
    }

    /// The memory backend, refusing every real server's add as a kernel would (ERANGE).
    struct RefusingReals(MemoryBackend);

    impl Backend for RefusingReals {
        fn dump(&mut self) -> Result<Table, backend::ApplyError> {
            self.0.dump()
        }
        fn apply(&mut self, op: &Op) -> Result<(), backend::ApplyError> {
            match op {
                Op::AddDest { .. } => Err(backend::ApplyError::Other("Numerical result out of range (os error 34)".into())),
                _ => Backend::apply(&mut self.0, op),
            }
        }
        fn writes(&self) -> u64 {
            self.0.writes()
        }
    }

    #[test]
    fn a_pass_of_many_failed_writes_notes_a_few_and_counts_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.lua");
        // 3 services of 20 reals: 60 refused writes a pass.
        std::fs::write(
            &file,
            "for s = 1, 3 do lvsd.service('s' .. s) { vip = '192.0.2.' .. s .. ':80', reals = (function() local r = {} for i = 1, 20 do r[i] = '198.51.100.' .. i .. ':80' end return r end)() } end\n",
        )
        .unwrap();
        let opts = options(&file);
        let mut d = Director::new(opts, Box::new(RefusingReals(MemoryBackend::new()))).unwrap();
        d.events.push("vrrp", "VI_1: BACKUP -> MASTER");
        for pass in 1..=3 {
            let r = d.resync();
            assert_eq!(r.failed.len(), 60, "pass {pass}");
            let errors: Vec<String> = d.events.recent(1000).into_iter().filter(|e| e.kind == "ipvs_error").map(|e| e.message).collect();
            assert_eq!(errors.len(), pass * (super::super::services::FAILURES_NOTED + 1), "pass {pass}: {errors:?}");
            assert!(errors[0].contains("198.51.100.") && errors[0].contains("os error 34"), "{}", errors[0]);
            assert_eq!(errors.last().unwrap(), "and 40 more failed writes (will retry at the next resync; listed at debug level)");
        }
        assert_eq!(d.events.count("vrrp"), 1, "the transition is still in the log");
    }
}
