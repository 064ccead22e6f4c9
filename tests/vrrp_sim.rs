//! Routers on a simulated LAN: every advert goes through `packet::encode` and
//! `packet::decode` before it reaches the other state machines, on a simulated clock.
//! Covers election, takeover after a silent master, graceful handover, and hostile packets
//! that must be dropped, counted, and change nothing.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use lvsd::vrrp::fsm::{Action, Config, InitialState, Input, Instance, State};
use lvsd::vrrp::packet::{self, Advert, Auth, DropCounters, DropReason, Endpoints, RxMeta, Version};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct Router {
    fsm: Instance,
    alive: bool,
    holds_vips: bool,
    drops: DropCounters,
}

struct Lan {
    routers: Vec<Router>,
    now: Instant,
    /// (time, router index, new state)
    log: Vec<(Instant, usize, State)>,
}

impl Lan {
    fn new(configs: Vec<Config>) -> Lan {
        let routers = configs
            .into_iter()
            .map(|c| Router { fsm: Instance::new(c), alive: true, holds_vips: false, drops: DropCounters::default() })
            .collect();
        Lan { routers, now: Instant::now(), log: Vec::new() }
    }

    fn advert_bytes(&self, from: usize, priority: u8) -> (Vec<u8>, Endpoints) {
        let c = self.routers[from].fsm.config();
        let ep = Endpoints { src: c.primary_address, dst: c.destinations().next().unwrap() };
        (c.advert(priority).encode(&ep, c.v3_checksum_as_v2).unwrap(), ep)
    }

    /// Delivers raw bytes to router `to`, through the decoder.
    fn receive(&mut self, to: usize, buf: &[u8], meta: RxMeta) {
        let now = self.now;
        let r = &mut self.routers[to];
        if !r.alive {
            return;
        }
        match packet::decode(buf, &meta, &r.fsm.config().expect()) {
            Ok(rx) => {
                let actions = r.fsm.handle(now, Input::advert(meta.src, &rx.advert));
                self.apply(to, actions);
            }
            Err(e) => r.drops.record(e.reason()),
        }
    }

    fn apply(&mut self, who: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::SendAdvert { priority } => {
                    let (buf, ep) = self.advert_bytes(who, priority);
                    let meta = RxMeta { src: ep.src, dst: ep.dst, ttl: 255 };
                    for other in 0..self.routers.len() {
                        if other != who {
                            self.receive(other, &buf, meta);
                        }
                    }
                }
                Action::AddVips(_) => self.routers[who].holds_vips = true,
                Action::RemoveVips(_) => self.routers[who].holds_vips = false,
                Action::StateChanged { to, .. } => self.log.push((self.now, who, to)),
                _ => {}
            }
        }
    }

    fn input(&mut self, who: usize, input: Input) {
        let a = self.routers[who].fsm.handle(self.now, input);
        self.apply(who, a);
    }

    fn start_all(&mut self) {
        for i in 0..self.routers.len() {
            self.input(i, Input::Startup);
        }
    }

    /// Runs timers of live routers until `until`, asserting `check` after every event.
    fn run(&mut self, until: Instant, check: &mut dyn FnMut(&Lan)) {
        loop {
            let next =
                self.routers.iter().enumerate().filter(|(_, r)| r.alive).filter_map(|(i, r)| r.fsm.poll_timeout().map(|t| (t, i))).min();
            match next {
                Some((t, i)) if t <= until => {
                    self.now = t;
                    self.input(i, Input::Timeout);
                    let next = self.routers[i].fsm.poll_timeout();
                    assert!(next.is_none_or(|n| n > t), "router {i}: timer did not advance");
                    check(self);
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn holders(&self) -> Vec<usize> {
        (0..self.routers.len()).filter(|i| self.routers[*i].alive && self.routers[*i].holds_vips).collect()
    }
}

fn v2_config(addr: &str, priority: u8) -> Config {
    let mut c = Config::new("eth0", 51, ip(addr));
    c.priority = priority;
    c.addresses = vec![ip("192.0.2.100"), ip("192.0.2.101")];
    c.auth = Auth::pass("1111");
    c
}

fn v3_v6_config(addr: &str, priority: u8) -> Config {
    let mut c = Config::new("eth0", 53, ip(addr));
    c.version = Version::V3;
    c.priority = priority;
    c.advert_int = 10; // 0.1 s
    c.addresses = vec![ip("2001:db8::100")];
    c
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// After convergence exactly one router holds the VIPs, and it is the higher priority.
fn converge_and_check(mut lan: Lan, expected_master: usize) -> Lan {
    let t0 = lan.now;
    lan.start_all();
    lan.run(t0 + secs(10), &mut |_| {});
    assert_eq!(lan.holders(), vec![expected_master]);
    let t1 = lan.now;
    lan.run(t1 + secs(60), &mut |l| assert_eq!(l.holders(), vec![expected_master]));
    lan
}

#[test]
fn v2_pass_election_by_priority() {
    let lan = Lan::new(vec![v2_config("192.0.2.1", 90), v2_config("192.0.2.2", 100)]);
    let lan = converge_and_check(lan, 1);
    assert_eq!(lan.routers[0].fsm.state(), State::Backup);
    assert_eq!(lan.routers[0].drops.total(), 0, "no good advert was dropped");
}

#[test]
fn v3_ipv6_equal_priority_higher_address_wins() {
    let lan = Lan::new(vec![v3_v6_config("fe80::2", 100), v3_v6_config("fe80::1", 100)]);
    converge_and_check(lan, 0);
}

// RFC 5798 6.4.2: the backup takes over when Master_Down_Timer fires, measured from the dead
// master's last advert.
#[test]
fn takeover_after_kill_within_master_down_interval() {
    for (a, b) in [(v2_config("192.0.2.1", 100), v2_config("192.0.2.2", 90)), (v3_v6_config("fe80::1", 100), v3_v6_config("fe80::2", 90))] {
        let mut lan = converge_and_check(Lan::new(vec![a, b]), 0);
        // kill -9: the master stops without a word. Its last advert went out at `last`.
        let last = lan.routers[0].fsm.poll_timeout().unwrap() - lan.routers[0].fsm.master_adver_interval();
        lan.routers[0].alive = false;
        let mdi = lan.routers[1].fsm.master_down_interval();
        lan.run(last + mdi, &mut |_| {});
        assert_eq!(lan.holders(), vec![1]);
        let (t, who, to) = *lan.log.last().unwrap();
        assert_eq!((who, to), (1, State::Master));
        assert_eq!(t, last + mdi, "takeover exactly at Master_Down_Interval");
    }
}

// RFC 5798 6.4.2: after a priority-0 advert the backup waits only Skew_Time.
#[test]
fn graceful_stop_hands_over_within_skew_time() {
    let mut lan = converge_and_check(Lan::new(vec![v2_config("192.0.2.1", 100), v2_config("192.0.2.2", 90)]), 0);
    let stop = lan.now;
    lan.input(0, Input::Shutdown);
    lan.routers[0].alive = false;
    assert!(lan.holders().is_empty());
    let skew = lan.routers[1].fsm.skew_time();
    assert_eq!(skew, Duration::from_micros(648_437)); // (256 - 90) / 256 s = 0.6484375 s
    lan.run(stop + skew, &mut |_| {});
    assert_eq!(lan.holders(), vec![1]);
}

#[test]
fn higher_priority_router_joining_preempts_and_nopreempt_does_not() {
    for preempt in [true, false] {
        let mut a = v2_config("192.0.2.1", 90);
        a.preempt = preempt;
        let b = v2_config("192.0.2.2", 80);
        let mut lan = Lan::new(vec![a, b]);
        lan.routers[0].alive = false;
        let t0 = lan.now;
        lan.input(1, Input::Startup);
        lan.run(t0 + secs(10), &mut |_| {});
        assert_eq!(lan.holders(), vec![1]);
        // The higher-priority router starts later.
        lan.routers[0].alive = true;
        lan.input(0, Input::Startup);
        let t1 = lan.now;
        lan.run(t1 + secs(10), &mut |_| {});
        assert_eq!(lan.holders(), if preempt { vec![0] } else { vec![1] }, "preempt={preempt}");
    }
}

/// Packets that are wrong in one way each: dropped with the right reason, and neither state
/// nor timers change.
#[test]
fn hostile_packets_are_dropped_counted_and_change_nothing() {
    let mut lan = converge_and_check(Lan::new(vec![v2_config("192.0.2.1", 100), v2_config("192.0.2.2", 90)]), 0);
    let backup = 1;
    let state = lan.routers[backup].fsm.state();
    let timer = lan.routers[backup].fsm.poll_timeout();
    let mcast = IpAddr::V4(packet::MCAST_V4);
    let attacker = ip("192.0.2.66");
    let good = RxMeta { src: attacker, dst: mcast, ttl: 255 };

    let forge = |priority: u8, vrid: u8, auth: Auth, addrs: &[&str]| {
        Advert { version: Version::V2, vrid, priority, advert_int: 100, auth, addresses: addrs.iter().map(|a| ip(a)).collect() }
            .encode(&Endpoints { src: attacker, dst: mcast }, false)
            .unwrap()
    };
    let vips = ["192.0.2.100", "192.0.2.101"];
    let pass = Auth::pass("1111");
    let mut cases: Vec<(Vec<u8>, RxMeta, DropReason)> = vec![
        // Sent from beyond the link.
        (forge(0, 51, pass.clone(), &vips), RxMeta { ttl: 64, ..good }, DropReason::Ttl),
        // Wrong password, wrong auth type: the classic priority-0 / priority-255 forgery.
        (forge(0, 51, Auth::pass("guess"), &vips), good, DropReason::AuthFailure),
        (forge(255, 51, Auth::pass("guess"), &vips), good, DropReason::AuthFailure),
        (forge(255, 51, Auth::None, &vips), good, DropReason::AuthType),
        // Another VRID.
        (forge(255, 52, pass.clone(), &vips), good, DropReason::Vrid),
        // Right password, but claims other addresses.
        (forge(250, 51, pass.clone(), &["192.0.2.100", "192.0.2.200"]), good, DropReason::AddressList),
        // Unicast to us while we run multicast.
        (forge(0, 51, pass.clone(), &vips), RxMeta { dst: ip("192.0.2.2"), ..good }, DropReason::Delivery),
        // IPv6 source for an IPv4 instance.
        (forge(0, 51, pass.clone(), &vips), RxMeta { src: ip("fe80::66"), dst: ip("ff02::12"), ..good }, DropReason::Family),
    ];
    let mut bad_sum = forge(0, 51, pass.clone(), &vips);
    bad_sum[6] ^= 0xff;
    cases.push((bad_sum, good, DropReason::Checksum));
    let short = forge(0, 51, pass.clone(), &vips);
    cases.push((short[..5].to_vec(), good, DropReason::Truncated));
    cases.push((short[..12].to_vec(), good, DropReason::Length));
    let mut v3 = short.clone();
    v3[0] = 0x31;
    cases.push((v3, good, DropReason::Version));

    for (n, (buf, meta, reason)) in cases.iter().enumerate() {
        let before = lan.routers[backup].drops.get(*reason);
        lan.receive(backup, buf, *meta);
        assert_eq!(lan.routers[backup].drops.get(*reason), before + 1, "case {n}: {reason}");
        assert_eq!(lan.routers[backup].fsm.state(), state, "case {n}");
        assert_eq!(lan.routers[backup].fsm.poll_timeout(), timer, "case {n}: timer untouched");
    }
    assert_eq!(lan.routers[backup].drops.total(), cases.len() as u64);
    // The real master keeps its role through all of it.
    let t = lan.now;
    lan.run(t + secs(30), &mut |l| assert_eq!(l.holders(), vec![0]));
}

// RFC 5798 7.1: an owner drops every advert for its VRID, so even a correctly authenticated
// priority-255 claim for our addresses cannot make it back off.
#[test]
fn owner_keeps_the_addresses_against_a_255_claim() {
    let mut owner = v2_config("192.0.2.100", 255);
    owner.initial_state = InitialState::Master;
    let mut lan = Lan::new(vec![owner, v2_config("192.0.2.2", 100)]);
    lan.start_all();
    assert_eq!(lan.holders(), vec![0]);
    let claim = Advert {
        version: Version::V2,
        vrid: 51,
        priority: 255,
        advert_int: 100,
        auth: Auth::pass("1111"),
        addresses: vec![ip("192.0.2.100"), ip("192.0.2.101")],
    };
    let ep = Endpoints { src: ip("192.0.2.250"), dst: IpAddr::V4(packet::MCAST_V4) };
    let buf = claim.encode(&ep, false).unwrap();
    for _ in 0..5 {
        lan.receive(0, &buf, RxMeta { src: ep.src, dst: ep.dst, ttl: 255 });
    }
    assert_eq!(lan.routers[0].drops.get(DropReason::LocalOwner), 5);
    assert_eq!(lan.routers[0].fsm.state(), State::Master);
    let t = lan.now;
    lan.run(t + secs(30), &mut |l| assert_eq!(l.holders(), vec![0]));
}

// keepalived unicast_peer: adverts go to the peer, and with check_unicast_src only the peer's
// are accepted; the v3 IPv4 checksum then covers the unicast destination.
#[test]
fn v3_unicast_pair_elects_and_fails_over() {
    let peer = |me: &str, other: &str, priority: u8| {
        let mut c = Config::new("eth0", 60, ip(me));
        c.version = Version::V3;
        c.priority = priority;
        c.addresses = vec![ip("192.0.2.130")];
        c.unicast_peers = vec![ip(other)];
        c.check_unicast_src = true;
        c
    };
    let a = peer("192.0.2.1", "192.0.2.2", 120);
    assert_eq!(a.destinations().collect::<Vec<_>>(), [ip("192.0.2.2")]);
    assert!(a.expect().unicast);
    let mut lan = converge_and_check(Lan::new(vec![a, peer("192.0.2.2", "192.0.2.1", 110)]), 0);
    assert_eq!(lan.routers[1].drops.total(), 0);
    // A stranger's unicast advert is refused.
    let stranger = peer("192.0.2.9", "192.0.2.2", 250);
    let ep = Endpoints { src: ip("192.0.2.9"), dst: ip("192.0.2.2") };
    let buf = stranger.advert(250).encode(&ep, false).unwrap();
    lan.receive(1, &buf, RxMeta { src: ep.src, dst: ep.dst, ttl: 255 });
    assert_eq!(lan.routers[1].drops.get(DropReason::UnknownPeer), 1);
    // Kill the master: the peer takes over.
    lan.routers[0].alive = false;
    let t = lan.now;
    lan.run(t + secs(5), &mut |_| {});
    assert_eq!(lan.holders(), vec![1]);
}
