//! A new policy applied to the running instances, and their stop.

use super::*;

impl Vrrp {
    /// A new policy: instances whose identity (interface, VRID, version, family, unicast or
    /// multicast, source, virtual MAC) is unchanged
    /// keep their state and get the new settings in place; others stop or start.
    /// `tracks` is the state of every track function (as the director knows it): instances
    /// started now learn it before they elect themselves, kept ones get the new weights.
    /// A reload also clears a `yield`. A change of unicast peers is applied in place.
    pub fn update(&mut self, m: &model::Model, tracks: &[TrackChange], now: Instant) -> (Vec<Transition>, Vec<String>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let mut keep = Vec::new();
        self.sync_instances = sync_instances(m);
        for mut r in std::mem::take(&mut self.running) {
            let same = m.vrrp.iter().find(|v| {
                v.name == r.model.name
                    && v.interface == r.model.interface
                    && v.vrid == r.model.vrid
                    && v.version == r.model.version
                    && v.is_ipv6() == r.model.is_ipv6()
                    && v.unicast_peers.is_empty() == r.model.unicast_peers.is_empty()
                    && v.unicast_src == r.model.unicast_src
                    && v.vmac == r.model.vmac
            });
            match same {
                Some(v) => {
                    let was_master = r.fsm.state() == State::Master;
                    let primary = r.fsm.config().primary_address;
                    let socket =
                        if v.unicast_peers == r.model.unicast_peers { Ok((r.sock, r.socket.clone())) } else { self.socket_for(v, primary) };
                    let updated = socket
                        .and_then(|s| r.fsm.update_config(now, self.config_for(v, primary)).map(|a| (s, a)).map_err(|e| e.to_string()));
                    match updated {
                        Ok(((sock, socket), actions)) => {
                            let old_routes = std::mem::take(&mut r.model.routes);
                            r.model = v.clone();
                            r.fixed = Fixed::of(v);
                            r.expect = r.fsm.config().expect();
                            (r.sock, r.socket) = (sock, socket);
                            keep.push((r, actions, was_master.then_some(old_routes)));
                        }
                        Err(e) => {
                            errors.push(format!("vrrp '{}': {e}", v.name));
                            self.stop_one(r, now, &mut out);
                        }
                    }
                }
                None => self.stop_one(r, now, &mut out),
            }
        }
        let mut pending = Vec::new();
        for (r, actions, old_routes) in keep {
            self.running.push(r);
            pending.push((self.running.len() - 1, actions, old_routes));
        }
        for (i, actions, old_routes) in pending {
            self.perform(i, actions, &mut out);
            // A master's routes follow the policy: the ones it no longer has go (whatever its
            // state now: leaving Master removed only the new policy's), the new ones come after
            // its new VIPs, as when it became master.
            if let Some(old_routes) = old_routes {
                let r = &self.running[i];
                let gone: Vec<_> = old_routes.iter().filter(|x| !r.model.routes.contains(x)).cloned().collect();
                let new: Vec<_> = r.model.routes.iter().filter(|x| !old_routes.contains(x)).cloned().collect();
                let (name, master) = (r.model.name.clone(), r.fsm.state() == State::Master);
                set_routes(&name, &gone, false, &mut self.notes);
                if master {
                    set_routes(&name, &new, true, &mut self.notes);
                }
            }
            // The new settings may track links the instance was never told about.
            let model = self.running[i].model.clone();
            for input in link_inputs(&model) {
                self.drive(i, input, now, &mut out);
            }
            self.drive(i, Input::Track { name: YIELD_TRACK.into(), up: true, weight: 0 }, now, &mut out);
            for (_, name, up, weight) in tracks.iter().filter(|t| t.0 == model.name) {
                self.drive(i, Input::Track { name: name.clone(), up: *up, weight: *weight }, now, &mut out);
            }
        }
        self.failed.clear();
        self.tracks = tracks.to_vec();
        for v in &m.vrrp {
            if self.index(&v.name).is_none()
                && let Err(e) = self.start_instance(v, tracks, now, &mut out)
            {
                errors.push(format!("vrrp '{}': {e}", v.name));
                self.failed.push((v.clone(), e));
            }
        }
        self.group_defs = m.sync_groups.clone();
        self.set_groups();
        (out, errors)
    }

    /// Called by the director after `flush`: sockets of stopped instances can go now.
    pub fn tidy(&mut self) {
        self.close_unused_sockets();
        // An instance that could not start keeps its virtual MAC for the next try.
        self.vmacs.tidy(self.running.iter().map(|r| &r.model).chain(self.failed.iter().map(|f| &f.0)), &mut self.notes);
    }

    pub(super) fn stop_one(&mut self, mut r: Running, now: Instant, out: &mut Vec<Transition>) {
        let actions = r.fsm.handle(now, Input::Shutdown);
        self.running.push(r);
        let i = self.running.len() - 1;
        self.perform(i, actions, out);
        self.running.pop();
    }

    /// Close sockets no instance uses any more (after the shutdown adverts went out).
    pub(super) fn close_unused_sockets(&mut self) {
        let running = &self.running;
        self.sockets.retain(|s| running.iter().any(|r| r.sock == s.id));
    }

    /// Graceful stop: masters send priority 0 and drop their VIPs (RFC 5798 6.4.3).
    pub fn shutdown(&mut self, now: Instant) -> Vec<Transition> {
        let mut out = Vec::new();
        for r in std::mem::take(&mut self.running) {
            self.stop_one(r, now, &mut out);
        }
        self.flush(now);
        self.failed.clear();
        self.tidy();
        if let Some(t) = self.link_task.take() {
            t.abort();
        }
        out
    }
}
