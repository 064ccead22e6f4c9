//! The running instances' upkeep, about once a second: virtual MAC interfaces and sockets
//! made again when their link changed, send faults ended, configured sources checked, and
//! the VIPs and routes a master lost put back.

use super::*;

impl Vrrp {
    /// Reopen the sockets whose link changed identity (deleted and re-created: a new ifindex)
    /// or that could not send, and put back any VIP a master lost. Called about once a second,
    /// and at once when the link watcher sees one of our links change.
    pub fn maintain(&mut self, now: Instant) -> Vec<Transition> {
        let mut out = Vec::new();
        // The link watcher never ends while the instances run: one that did (a panic: a bug)
        // is started again, reading every link's state anew, so that no link change goes
        // unseen for more than a second.
        if self.link_task.as_ref().is_some_and(|t| t.is_finished()) {
            self.notes.push(("vrrp_error", "the link watcher stopped: watching again, every link's state read anew".into()));
            self.link_task = Some(super::spawn_link_watch(self.tx.clone(), true));
        }
        if !self.failed.is_empty() {
            self.retry_failed(now, &mut out);
        }
        // Before the sockets: one on a virtual MAC made again is reopened below.
        let with_vmac: Vec<_> =
            self.running.iter().filter(|r| r.model.vmac.is_some()).map(|r| (&r.model, r.fsm.config().primary_address)).collect();
        if !with_vmac.is_empty() {
            // Their gratuitous ARP sockets were bound to the interfaces that went.
            for name in self.vmacs.restore(&with_vmac, &mut self.notes) {
                self.announcers.remove(&name);
            }
        }
        for k in 0..self.sockets.len() {
            let s = &self.sockets[k];
            let current = net::ifindex(&s.key.0).ok();
            let moved = current.is_some_and(|idx| idx != s.socket.ifindex());
            if !(moved || s.broken || (s.suspect && current.is_some())) {
                continue;
            }
            self.reopen(k, now, &mut out);
        }
        // Send faults whose hold is over, on a socket that works again.
        for i in 0..self.running.len() {
            let r = &self.running[i];
            let broken = self.sockets.iter().any(|s| s.id == r.sock && s.broken);
            if r.send_hold_until.is_some_and(|t| t <= now) && !broken {
                self.end_send_fault(i, now, &mut out);
            }
        }
        if self.running.iter().any(|r| r.model.unicast_src.is_some()) {
            let addrs = net::addr::list_all_addresses().unwrap_or_default();
            for i in 0..self.running.len() {
                self.check_source(i, &addrs, now, &mut out);
            }
        }
        for i in 0..self.running.len() {
            if self.running[i].fsm.state() != State::Master {
                continue;
            }
            let vips: Vec<(IpAddr, net::Vip)> =
                self.running[i].fsm.config().held().into_iter().map(|a| (a, net_vip(&self.running[i].model, a))).collect();
            for (a, vip) in vips {
                let name = &self.running[i].model.name;
                match net::addr::add_address(&vip) {
                    Ok(true) => {
                        self.notes.push(("vip", format!("{name}: VIP {a} was missing on {}: added again", vip.ifname)));
                        self.announce(i, &[a], 1, Duration::ZERO);
                    }
                    Ok(false) => {}
                    // The link is gone: the link watcher puts the instance in Fault.
                    Err(e) => tracing::debug!("{name}: VIP {a}: {e}"),
                }
            }
            // The kernel drops a link's routes when it goes down, and their source's when
            // that address goes: put them back as the VIPs are.
            let r = &self.running[i];
            for route in &r.model.routes {
                match net::route::add_route(&net_route(route)) {
                    Ok(true) => self.notes.push(("vip", format!("{}: route {route} was missing: added again", r.model.name))),
                    Ok(false) => {}
                    Err(e) => tracing::debug!("{}: route {route}: {e}", r.model.name),
                }
            }
        }
        out
    }

    /// Whether instance `i`'s configured source is among `addrs` (usable: an IPv6 one that is
    /// still tentative or failed DAD cannot be sent from); Fault while it is not. `addrs` empty
    /// (the dump failed) changes nothing.
    pub(super) fn check_source(&mut self, i: usize, addrs: &[net::addr::AddrInfo], now: Instant, out: &mut Vec<Transition>) {
        let Some(src) = self.running[i].model.unicast_src else { return };
        if addrs.is_empty() {
            return;
        }
        let missing = !addrs.iter().any(|a| a.addr == src && !a.is_tentative() && !a.is_dad_failed());
        let r = &mut self.running[i];
        if missing == r.source_missing {
            return;
        }
        r.source_missing = missing;
        let name = r.model.name.clone();
        let note = if missing {
            format!("{name}: unicast_src {src} is not an address of this host: fault until it is")
        } else {
            format!("{name}: unicast_src {src} is an address of this host again")
        };
        self.notes.push(("vrrp_error", note));
        self.drive(i, Input::Track { name: SOURCE_TRACK.into(), up: !missing, weight: 0 }, now, out);
    }

    /// Open socket `k` again on its link as it is now; on success its instances leave the
    /// send fault.
    pub(super) fn reopen(&mut self, k: usize, now: Instant, out: &mut Vec<Transition>) {
        let s = &self.sockets[k];
        let opened = VrrpSocket::open(&s.key.0, s.family, s.mode.clone());
        let socket = match opened {
            Ok(x) => Rc::new(x),
            Err(e) => {
                tracing::debug!("VRRP socket on {}: reopening: {e}", s.key.0);
                return;
            }
        };
        let (id, ifname) = (s.id, s.key.0.clone());
        let s = &mut self.sockets[k];
        s.socket = socket.clone();
        s.paused_until = None;
        let was_broken = std::mem::take(&mut s.broken);
        s.suspect = false;
        // Packet sockets for gratuitous ARP are bound to the old ifindex too.
        self.announcers.remove(&ifname);
        self.notes.push(("vrrp", format!("VRRP socket on {ifname} reopened (ifindex {})", socket.ifindex())));
        for i in 0..self.running.len() {
            if self.running[i].sock != id {
                continue;
            }
            self.running[i].socket = socket.clone();
            self.running[i].send_failures = 0;
            if was_broken && self.running[i].send_hold_until.is_none_or(|t| t <= now) {
                self.end_send_fault(i, now, out);
            }
        }
    }

    /// Start again the instances that could not start (their link had no address yet, their
    /// virtual MAC name was taken): until one does it holds nothing, which is safe. A new
    /// reason is reported, the same one once.
    fn retry_failed(&mut self, now: Instant, out: &mut Vec<Transition>) {
        let tracks = std::mem::take(&mut self.tracks);
        let mut started = false;
        for (v, before) in std::mem::take(&mut self.failed) {
            match self.start_instance(&v, &tracks, now, out) {
                Ok(()) => {
                    self.notes.push(("vrrp", format!("vrrp '{}' started (it could not: {before})", v.name)));
                    started = true;
                }
                Err(e) => {
                    if e != before {
                        self.notes.push(("vrrp_error", format!("vrrp '{}': {e}", v.name)));
                    }
                    self.failed.push((v, e));
                }
            }
        }
        self.tracks = tracks;
        if started {
            self.set_groups();
        }
    }

    pub(super) fn end_send_fault(&mut self, i: usize, now: Instant, out: &mut Vec<Transition>) {
        self.running[i].send_hold_until = None;
        self.drive(i, Input::Track { name: SEND_TRACK.into(), up: true, weight: 0 }, now, out);
    }
}
