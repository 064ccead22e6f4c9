//! The ecmp lab's phases, its client and the capture on each director's link.

use super::*;
use std::cell::Cell;

impl Lab {
    pub(super) fn phase<F>(&mut self, name: &str, what: &str, target: Option<usize>, action: F) -> Result<(), LabError>
    where
        F: FnOnce(&mut Lab) -> Result<(), LabError>,
    {
        super::super::interrupted()?;
        let idx = self.phases.len();
        self.shared.phase.store(idx, Ordering::SeqCst);
        let start = self.t0.elapsed();
        self.phases.push(Phase {
            name: name.into(),
            what: what.into(),
            start,
            end: start,
            fault: None,
            target,
            exited: None,
            real_gone: None,
            table_at_route: None,
            table_at_end: None,
            learned: None,
            stale: None,
        });
        self.note(format!("phase {name}: {what}"));
        action(self)?;
        self.phases[idx].end = self.t0.elapsed();
        Ok(())
    }

    /// Mark the fault of the current phase (now).
    pub(super) fn fault(&mut self) {
        let at = self.t0.elapsed();
        if let Some(p) = self.phases.last_mut() {
            p.fault = Some(at);
        }
    }

    /// The long-lived connections (by their source addresses) through director `d` in the
    /// second before `at`.
    pub(super) fn long_lived_on(&self, d: usize, at: Duration) -> usize {
        long_lived_through(&self.watch.frames.lock().unwrap(), &long_sources(self.opts.long.long_lived), d, at)
    }

    /// The director that carries the most long-lived connections now: the one whose
    /// withdrawal or death tests the most of them (with N directors it carries at least 1/N).
    pub(super) fn busiest(&self) -> usize {
        let at = self.t0.elapsed();
        (0..self.directors.len()).rev().max_by_key(|d| self.long_lived_on(*d, at)).unwrap_or(0)
    }

    /// The long-lived connections alive now: their sources sent a request through some
    /// director in the last second.
    pub(super) fn long_lived_open(&self) -> usize {
        let (frames, at) = (self.watch.frames.lock().unwrap(), self.t0.elapsed());
        let from = at.saturating_sub(Duration::from_secs(1));
        requesters(&frames, &long_sources(self.opts.long.long_lived), |t, _| t >= from && t < at).len()
    }

    /// Of the long-lived connections' sources, how many a table lists with an open entry
    /// towards the VIP, and how many of those came from the sync daemons.
    pub(super) fn long_lived_listed(&self, table: &[wire::Conn]) -> (usize, usize) {
        long_lived_listed_in(table, &long_sources(self.opts.long.long_lived))
    }

    /// Director `d` has taken a new connection since `since` (seen on its link).
    pub(super) fn took(&self, d: usize, since: Duration) -> bool {
        self.watch.frames.lock().unwrap().iter().any(|(t, x, s)| *x == d && *s == Seen::Syn && *t >= since)
    }

    /// Wait (bounded) until director `d` takes a new connection after `since`: ECMP sends it
    /// flows again (a short phase might otherwise see none by chance).
    pub(super) fn wait_took(&self, d: usize, since: Duration) -> Result<(), LabError> {
        let name = self.directors[d].name.clone();
        self.wait(&format!("{name} to take a new connection"), Duration::from_secs(30), |l| l.took(d, since))
    }

    pub(super) fn wait_hops(&self, up: &[usize], what: &str) -> Result<(), LabError> {
        let want = self.hops_of(up);
        self.wait(what, Duration::from_secs(45), |l| l.hops() == want)
    }

    pub(super) fn play(&mut self) -> Result<(), LabError> {
        let n = self.directors.len();
        let all: Vec<usize> = (0..n).collect();
        let but = |x: usize| -> Vec<usize> { (0..n).filter(|i| *i != x).collect() };
        let added = n - 1;
        let an = self.directors[added].name.clone();
        self.phase("baseline", &format!("every director but {an} announces the VIP; ECMP spreads the flows"), None, |l| {
            let start = l.phases[0].start;
            for d in 0..added {
                l.wait_took(d, start)?;
            }
            l.settle(STEADY)
        })?;
        self.phase("add", &format!("{an} joins: lvsd (its sync daemons learn the others' connections), then BIRD"), Some(added), |l| {
            l.fault();
            // When its table first listed every long-lived connection alive (looked at while
            // waiting for the rest).
            let learned: Cell<Option<(Duration, usize)>> = Cell::new(None);
            let look = |l: &Lab| {
                if learned.get().is_none() {
                    let alive = l.long_lived_open();
                    if alive > 0 && l.table(added).is_some_and(|t| l.long_lived_listed(&t).0 >= alive) {
                        learned.set(Some((l.t0.elapsed(), alive)));
                    }
                }
            };
            l.start_lvsd(added)?;
            l.wait(&format!("{an}'s lvsd to want the VIP announced"), Duration::from_secs(45), |l| {
                look(l);
                l.wants_vip(added)
            })?;
            l.note(format!("{an}: lvsd wants the VIP announced (its service has quorum); its BIRD starts"));
            l.start_bird(added)?;
            let want = l.hops_of(&all);
            l.wait(&format!("the router to take {an} in"), Duration::from_secs(45), |l| {
                look(l);
                l.hops() == want
            })?;
            let table = l.table(added);
            let listed = table.as_deref().map(|t| l.long_lived_listed(t)).unwrap_or_default();
            l.note(format!(
                "the router's route has {an}; its table lists {} of the long-lived connections ({} from the sync daemons)",
                listed.0, listed.1
            ));
            if let Some(ph) = l.phases.last_mut() {
                ph.table_at_route = table;
            }
            l.wait_took(added, l.t0.elapsed())?;
            l.settle(STEADY)?;
            // Every long-lived connection should be in its table by now: learned from the
            // others' sync daemons, or scheduled here (mh + sloppy_tcp) when ECMP moved it
            // before its entry came. Bounded: what it lists then is the figure.
            super::super::poll_until(Duration::from_secs(15), || {
                look(l);
                learned.get().is_some()
            })?;
            let table = l.table(added);
            let listed = table.as_deref().map(|t| l.long_lived_listed(t)).unwrap_or_default();
            let alive = l.long_lived_open();
            l.note(format!("{an}'s table lists {} of {alive} long-lived connections ({} from the sync daemons)", listed.0, listed.1));
            if let Some(ph) = l.phases.last_mut() {
                ph.table_at_end = table;
                ph.learned = learned.get();
            }
            Ok(())
        })?;
        // The director carrying the most long-lived connections is drained, and later killed.
        let drained = self.busiest();
        let dn = self.directors[drained].name.clone();
        self.phase("drain", &format!("lvsd drain-director on {dn}"), Some(drained), |l| {
            l.fault();
            l.control(drained, crate::control::Command::DrainDirector { timeout: Some(30) })?;
            l.wait_hops(&but(drained), &format!("the router to drop {dn}"))?;
            l.note(format!("the router's route no longer has {dn}"));
            l.settle(STEADY)
        })?;
        self.phase("undrain", &format!("lvsd undrain-director on {dn}"), Some(drained), |l| {
            l.fault();
            l.control(drained, crate::control::Command::UndrainDirector)?;
            l.wait_hops(&all, &format!("the router to take {dn} back"))?;
            l.note(format!("the router's route has {dn} again"));
            l.wait_took(drained, l.t0.elapsed())?;
            l.settle(STEADY)
        })?;
        let killed = self.busiest();
        let kn = self.directors[killed].name.clone();
        self.phase(
            "kill",
            &format!("{kn} dies: its link goes down, lvsd and BIRD get SIGKILL (the router detects: {})", detection(self.bfd)),
            Some(killed),
            |l| {
                // The link first: the kernel closing BIRD's socket must not tell the router. The
                // fault counts from when `ip` has set it down.
                l.directors[killed].ns.ip(&["link", "set", "eth0", "down"]).map_err(setup("link down"))?;
                l.fault();
                for p in [l.directors[killed].lvsd.take(), l.directors[killed].bird.take()].into_iter().flatten() {
                    let mut p = p;
                    unsafe { libc::kill(p.child.id() as i32, libc::SIGKILL) };
                    let _ = p.child.wait();
                }
                l.wait_hops(&but(killed), &format!("the router to drop {kn}"))?;
                l.note(format!("the router's route no longer has {kn}"));
                l.settle(STEADY)
            },
        )?;
        self.phase("return", &format!("{kn} comes back: link up, lvsd, then BIRD"), Some(killed), |l| {
            l.fault();
            l.directors[killed].ns.ip(&["link", "set", "eth0", "up"]).map_err(setup("link up"))?;
            l.start_lvsd(killed)?;
            l.wait(&format!("{kn}'s lvsd to want the VIP announced"), Duration::from_secs(45), |l| l.wants_vip(killed))?;
            l.note(format!("{kn}: lvsd wants the VIP announced (its service has quorum); its BIRD starts"));
            l.start_bird(killed)?;
            l.wait_hops(&all, &format!("the router to take {kn} back"))?;
            l.note(format!("the router's route has {kn} again"));
            l.wait_took(killed, l.t0.elapsed())?;
            l.settle(STEADY)
        })?;
        let rn = self.reals[0].name.clone();
        let mut want = vec![true; self.reals.len()];
        want[0] = false;
        if self.reals.len() >= 2 {
            self.phase("real-down", &format!("{rn}'s web server dies"), None, move |l| {
                l.fault();
                l.reals[0].http = None;
                l.wait(&format!("{rn} to leave every director's table"), Duration::from_secs(45), |l| {
                    (0..l.directors.len()).all(|i| l.reals_in(i, &want))
                })?;
                let at = l.t0.elapsed();
                if let Some(ph) = l.phases.last_mut() {
                    ph.real_gone = Some(at);
                }
                l.note(format!("{rn} is out of every director's table"));
                l.settle(STEADY)?;
                // Entries still naming the dead real. One bound to the deleted real drops a SYN
                // that reuses its client port, silently, unless the kernel expired it
                // (expire_nodest_conn); a synced one made after the real was deleted here is
                // bound to no real, so nothing expires it before its timeout.
                let dead = real_addr(0);
                let stale: Vec<Option<BTreeMap<String, usize>>> = (0..l.directors.len())
                    .map(|i| {
                        l.table(i).map(|t| {
                            let mut by: BTreeMap<String, usize> = BTreeMap::new();
                            for c in t.iter().filter(|c| c.real == dead) {
                                *by.entry(format!("{} {}", c.state, if c.synced { "synced" } else { "local" })).or_default() += 1;
                            }
                            by
                        })
                    })
                    .collect();
                if let Some(ph) = l.phases.last_mut() {
                    ph.stale = Some(stale);
                }
                Ok(())
            })?;
        }
        let stopped = self.busiest();
        let sn = self.directors[stopped].name.clone();
        self.phase("stop", &format!("SIGTERM to {sn}'s lvsd: it withdraws the VIP before it stops"), Some(stopped), |l| {
            l.fault();
            if let Some(mut p) = l.directors[stopped].lvsd.take() {
                unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
                let end = Instant::now() + Duration::from_secs(30);
                while Instant::now() < end && !matches!(p.child.try_wait(), Ok(Some(_))) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let at = l.t0.elapsed();
                if let Some(ph) = l.phases.last_mut() {
                    ph.exited = Some(at);
                }
                l.note(format!("{sn}: lvsd exited"));
            }
            l.wait_hops(&but(stopped), &format!("the router to drop {sn}"))?;
            l.note(format!("the router's route no longer has {sn}"));
            l.settle(STEADY)
        })?;
        Ok(())
    }
}

/// An entry of a connection not closing: a flow scheduled mid-stream (sloppy_tcp) need not
/// show ESTABLISHED.
pub(super) fn open_entry(c: &wire::Conn) -> bool {
    c.protocol == "TCP"
        && c.vip == VIP
        && c.vport == PORT
        && !["FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK"].contains(&c.state.as_str())
}

/// Of `sources`, how many `table` lists with an open TCP entry towards the VIP, and how many
/// of those entries the backup daemon made (origin Sync).
pub(super) fn long_lived_listed_in(table: &[wire::Conn], sources: &[IpAddr]) -> (usize, usize) {
    let mut seen: Vec<(Ipv4Addr, bool)> =
        table.iter().filter(|c| open_entry(c)).filter(|c| sources.contains(&IpAddr::V4(c.client))).map(|c| (c.client, c.synced)).collect();
    // A synced entry first, where a source has two.
    seen.sort_unstable_by_key(|(a, s)| (*a, !*s));
    seen.dedup_by_key(|(a, _)| *a);
    (seen.len(), seen.iter().filter(|(_, s)| *s).count())
}

/// How many of the long-lived connections' `sources` sent a request through director `d` in
/// the second before `at`.
pub(super) fn long_lived_through(frames: &[(Duration, usize, Seen)], sources: &[IpAddr], d: usize, at: Duration) -> usize {
    let from = at.saturating_sub(Duration::from_secs(1));
    requesters(frames, sources, |t, x| x == d && t >= from && t < at).len()
}

/// The `sources` that sent a request in the frames `keep` takes (by time and director),
/// each once, in order.
pub(super) fn requesters(frames: &[(Duration, usize, Seen)], sources: &[IpAddr], keep: impl Fn(Duration, usize) -> bool) -> Vec<Ipv4Addr> {
    let mut seen: Vec<Ipv4Addr> = frames
        .iter()
        .filter(|(t, x, _)| keep(*t, *x))
        .filter_map(|(_, _, s)| match s {
            Seen::Request(a) if sources.contains(&IpAddr::V4(*a)) => Some(*a),
            _ => None,
        })
        .collect();
    seen.sort_unstable();
    seen.dedup();
    seen
}

/// How long a short request may take to connect, and then to be answered. A client sends its
/// SYN at 0, 1, 3 and 7 s (an initial RTO of 1 s, doubled at each try); the router drops a
/// dead director 3-4 s after its death (the hold timer, `HOLD`), so a request sent to it at
/// its death gets through only with its fourth SYN, at 7 s. At 7 s the request gave up just
/// then, and ended in the next phase as that phase's failure.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

/// Short requests, one at a time from `sources` in turn, every `gap`, at most `max`. Each
/// counts in the phase in which it ended: a request cut by the next phase's fault is that
/// phase's failure.
pub(super) fn client(shared: Arc<Shared>, sources: Vec<IpAddr>, vip: SocketAddr, gap: Duration, max: usize) {
    for i in 0..max {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let at = Instant::now();
        // Room for four SYNs (see CONNECT_TIMEOUT), as any client retries: one lost SYN on a
        // loaded emulated LAN is not an outage (it failed a request 3 s after a stop once).
        let result = observe::get(sources[i % sources.len()], vip, CONNECT_TIMEOUT);
        let phase = shared.phase.load(Ordering::Relaxed);
        shared.requests.lock().unwrap().push(observe::Request { phase, at, result });
        std::thread::sleep(gap);
    }
}

/// `SIOCGSTAMP` (linux/sockios.h; the 64-bit `timeval` one on 64-bit hosts).
pub(super) const SIOCGSTAMP: libc::c_ulong = 0x8906;

/// Count the frames that matter on this thread's namespace's eth0 until told to stop.
pub(super) fn capture(watch: Arc<Watch>, director: usize, t0: Instant, epoch0: f64) {
    // SAFETY: plain socket calls on a descriptor this function owns and closes.
    unsafe {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto as i32);
        if fd < 0 {
            return;
        }
        let Ok(idx) = crate::net::ifindex("eth0") else {
            libc::close(fd);
            return;
        };
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = idx as i32;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        if libc::bind(fd, &sll as *const _ as *const libc::sockaddr, len) != 0 {
            libc::close(fd);
            return;
        }
        let tv = libc::timeval { tv_sec: 0, tv_usec: 200_000 };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let mut buf = [0u8; 256];
        while !watch.stop.load(Ordering::Relaxed) {
            let mut from: libc::sockaddr_ll = std::mem::zeroed();
            let mut flen = len;
            // Only the headers and the first bytes of data matter: a longer frame is cut.
            let n = libc::recvfrom(
                fd,
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
                &mut from as *mut _ as *mut libc::sockaddr,
                &mut flen,
            );
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted) {
                    // The link is down (the director died): wait for it.
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            let outgoing = from.sll_pkttype == libc::PACKET_OUTGOING;
            // Frames for another host (flooded by the bridge while a director is gone) are not this director's.
            if !outgoing && from.sll_pkttype != libc::PACKET_HOST {
                continue;
            }
            if let Some(seen) = wire::classify(&buf[..n as usize], outgoing, VIP, PORT) {
                // The kernel's time of the frame (SIOCGSTAMP): this thread may run late under load.
                let mut tv: libc::timeval = std::mem::zeroed();
                let at = if libc::ioctl(fd, SIOCGSTAMP, &mut tv as *mut libc::timeval) == 0 {
                    let epoch = tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
                    Duration::from_secs_f64((epoch - epoch0).max(0.0))
                } else {
                    t0.elapsed()
                };
                watch.frames.lock().unwrap().push((at, director, seen));
            }
        }
        libc::close(fd);
    }
}
