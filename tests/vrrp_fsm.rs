//! The VRRP state machine driven on a simulated clock: every transition, each test quoting
//! the rule it checks. No sleeps: time is `t0 + offset`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use lvsd::vrrp::fsm::{
    Action, Config, InitialState, Input, Instance, Reason, State, SyncCommand, SyncGroup, TrackedInterface, Version, Warning,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

const OTHER: &str = "192.0.2.2";

/// keepalived defaults, VRRPv2, advert 1 s, one VIP, our address 192.0.2.1.
fn cfg(priority: u8) -> Config {
    let mut c = Config::new("eth0", 51, ip("192.0.2.1"));
    c.priority = priority;
    c.addresses = vec![ip("192.0.2.100")];
    c
}

fn advert(from: &str, priority: u8) -> Input {
    Input::Advert { from: ip(from), priority, advert_int: 100 }
}

fn transitions(actions: &[Action]) -> Vec<(State, State)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

fn reason(actions: &[Action]) -> Option<Reason> {
    actions.iter().find_map(|a| match a {
        Action::StateChanged { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

fn sent(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert { priority } => Some(*priority),
            _ => None,
        })
        .collect()
}

/// Fires every timer due up to and including `until`, in time order, like the event loop.
fn run_until(i: &mut Instance, until: Instant) -> Vec<(Instant, Action)> {
    let mut out = Vec::new();
    while let Some(t) = i.poll_timeout().filter(|t| *t <= until) {
        for a in i.handle(t, Input::Timeout) {
            out.push((t, a));
        }
        // A timer that does not move past `t` would spin the event loop.
        assert!(i.poll_timeout().is_none_or(|next| next > t), "timer did not advance");
    }
    out
}

fn actions(v: &[(Instant, Action)]) -> Vec<Action> {
    v.iter().map(|(_, a)| a.clone()).collect()
}

/// Starts an instance at `t0` and returns it as Backup.
fn started(c: Config, t0: Instant) -> Instance {
    let mut i = Instance::new(c);
    let a = i.handle(t0, Input::Startup);
    assert_eq!(transitions(&a), vec![(State::Initialize, State::Backup)]);
    i
}

/// Starts a backup and lets Master_Down_Interval pass so it becomes master.
fn master(c: Config, t0: Instant) -> (Instance, Instant) {
    let mut i = started(c, t0);
    let t = t0 + i.master_down_interval();
    run_until(&mut i, t);
    assert_eq!(i.state(), State::Master);
    (i, t)
}

// RFC 3768 6.1: Skew_Time = ((256 - Priority) / 256); Master_Down_Interval =
// (3 * Advertisement_Interval) + Skew_time.
#[test]
fn v2_timers_follow_rfc3768() {
    let i = Instance::new(cfg(100));
    assert_eq!(i.skew_time(), us(609_375)); // 156/256 s
    assert_eq!(i.master_down_interval(), ms(3000) + us(609_375));
    let i = Instance::new(cfg(254));
    assert_eq!(i.skew_time(), us(7_812)); // 2/256 s, in whole microseconds like keepalived
}

// RFC 5798 6.1: Skew_Time = (((256 - priority) * Master_Adver_Interval) / 256);
// Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_time.
#[test]
fn v3_timers_follow_rfc5798() {
    let mut c = cfg(100);
    c.version = Version::V3;
    c.advert_int = 50;
    let i = Instance::new(c);
    assert_eq!(i.skew_time(), us(304_687)); // 156 * 0.5 s / 256
    assert_eq!(i.master_down_interval(), ms(1500) + us(304_687));
}

// RFC 5798 6.4.1: not the owner -> "Set the Master_Down_Timer to Master_Down_Interval;
// Transition to the Backup state". 6.4.2: "If the Master_Down_Timer fires ... Send an
// ADVERTISEMENT; broadcast gratuitous ARP; Transition to the Master state".
#[test]
fn startup_waits_master_down_interval_then_takes_over_exactly() {
    let t0 = Instant::now();
    let mut i = started(cfg(100), t0);
    let mdi = i.master_down_interval();
    assert_eq!(i.poll_timeout(), Some(t0 + mdi));
    assert!(run_until(&mut i, t0 + mdi - us(1)).is_empty());
    assert_eq!(i.state(), State::Backup);
    let got = actions(&run_until(&mut i, t0 + mdi));
    assert_eq!(
        got,
        vec![
            Action::SendAdvert { priority: 100 },
            Action::AddVips(vec![ip("192.0.2.100")]),
            Action::SendGratuitous { addresses: vec![ip("192.0.2.100")], count: 5, interval: Duration::ZERO },
            Action::StateChanged { from: State::Backup, to: State::Master, reason: Reason::MasterDown },
        ]
    );
}

// keepalived.conf(5): "If the priority is 255, then the instance will transition immediately
// to MASTER if state MASTER is specified; otherwise the instance will wait between 3 and 4
// advert intervals before it can transition".
#[test]
fn state_master_without_priority_255_still_waits() {
    let t0 = Instant::now();
    let mut c = cfg(200);
    c.initial_state = InitialState::Master;
    let i = started(c, t0);
    assert_eq!(i.poll_timeout(), Some(t0 + i.master_down_interval()));
}

// RFC 5798 6.4.1: "If the Priority = 255 ... Send an ADVERTISEMENT; broadcast gratuitous ARP;
// Set the Adver_Timer to Advertisement_Interval; Transition to the Master state".
#[test]
fn owner_with_state_master_is_master_at_once() {
    let t0 = Instant::now();
    let mut c = cfg(255);
    c.initial_state = InitialState::Master;
    let mut i = Instance::new(c);
    let a = i.handle(t0, Input::Startup);
    assert_eq!(transitions(&a), vec![(State::Initialize, State::Master)]);
    assert_eq!(sent(&a), vec![255]);
    assert_eq!(i.poll_timeout(), Some(t0 + ms(1000)), "Adver_Timer = Advertisement_Interval");
}

#[test]
fn owner_with_state_backup_waits_like_keepalived() {
    let t0 = Instant::now();
    let i = started(cfg(255), t0);
    assert_eq!(i.master_down_interval(), ms(3000) + us(3_906)); // skew 1/256 s
}

// RFC 5798 6.4.3: "If the Adver_Timer fires, then: Send an ADVERTISEMENT; Reset the Adver_Timer
// to Advertisement_Interval".
#[test]
fn master_advertises_every_interval() {
    let t0 = Instant::now();
    let (mut i, t) = master(cfg(100), t0);
    let got = run_until(&mut i, t + ms(3000));
    let adverts: Vec<Instant> = got.iter().filter(|(_, a)| matches!(a, Action::SendAdvert { priority: 100 })).map(|(t, _)| *t).collect();
    assert_eq!(adverts, vec![t + ms(1000), t + ms(2000), t + ms(3000)]);
}

// RFC 5798 6.4.2: "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT is greater
// than or equal to the local Priority, then: ... Reset the Master_Down_Timer to
// Master_Down_Interval". A lower-priority router stays backup while the master speaks.
#[test]
fn election_by_priority_lower_stays_backup() {
    let t0 = Instant::now();
    let mut i = started(cfg(100), t0);
    for s in 1..=20 {
        let now = t0 + ms(1000 * s);
        assert!(run_until(&mut i, now).is_empty());
        assert!(i.handle(now, advert(OTHER, 150)).is_empty());
    }
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.master(), Some((ip(OTHER), 150)));
}

// RFC 5798 6.4.2 "else: Discard the ADVERTISEMENT": with preemption a higher-priority backup
// ignores a lower master and takes over when its Master_Down_Timer fires.
#[test]
fn higher_priority_backup_preempts() {
    let t0 = Instant::now();
    let mut i = started(cfg(200), t0);
    for s in 1..=3 {
        i.handle(t0 + ms(1000 * s), advert(OTHER, 100));
    }
    let mdi = i.master_down_interval();
    let got = run_until(&mut i, t0 + mdi);
    assert_eq!(transitions(&actions(&got)), vec![(State::Backup, State::Master)]);
    assert_eq!(got[0].0, t0 + mdi, "the discarded adverts never reset the timer");
}

// RFC 5798 6.4.2: takeover happens Master_Down_Interval after the last advert, not earlier.
#[test]
fn takeover_after_master_silence_exactly_at_master_down_interval() {
    let t0 = Instant::now();
    let mut i = started(cfg(100), t0);
    let last = t0 + ms(5000);
    for s in 1..=5 {
        run_until(&mut i, t0 + ms(1000 * s));
        i.handle(t0 + ms(1000 * s), advert(OTHER, 150));
    }
    let mdi = i.master_down_interval();
    assert!(run_until(&mut i, last + mdi - us(1)).is_empty());
    let got = run_until(&mut i, last + mdi);
    assert_eq!(got.last().unwrap().0, last + mdi);
    assert_eq!(reason(&actions(&got)), Some(Reason::MasterDown));
}

// RFC 5798 5.2.7: the smallest interval is 1 centisecond. Master_Down_Interval =
// 3 * 10 ms + 156 * 10 ms / 256; a master advertises every 10 ms without drift and a backup
// takes over exactly Master_Down_Interval after the last advert it heard.
#[test]
fn v3_at_ten_milliseconds() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.version = Version::V3;
    c.advert_int = 1;
    assert_eq!(Instance::new(c.clone()).master_down_interval(), ms(30) + us(6_093));
    let (mut m, t) = master(c.clone(), t0);
    let got = run_until(&mut m, t + ms(1000));
    let adverts: Vec<Instant> = got.iter().filter(|(_, a)| matches!(a, Action::SendAdvert { .. })).map(|(t, _)| *t).collect();
    assert_eq!(adverts.len(), 100);
    assert!(adverts.iter().enumerate().all(|(k, a)| *a == t + ms(10 * (k as u64 + 1))), "{adverts:?}");

    let mut b = started(c, t0);
    let mut last = t0;
    for k in 1..=20 {
        last = t0 + ms(10 * k);
        run_until(&mut b, last);
        b.handle(last, Input::Advert { from: ip(OTHER), priority: 150, advert_int: 1 });
    }
    assert_eq!(b.state(), State::Backup);
    let mdi = b.master_down_interval();
    assert!(run_until(&mut b, last + mdi - us(1)).is_empty());
    let got = run_until(&mut b, last + mdi);
    assert_eq!(reason(&actions(&got)), Some(Reason::MasterDown));
    assert_eq!(b.state(), State::Master);
}

// RFC 5798 6.4.2: "Set Master_Adver_Interval to Adver Interval contained in the ADVERTISEMENT;
// Recompute the Master_Down_Interval".
#[test]
fn v3_backup_learns_the_masters_interval() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.version = Version::V3;
    c.advert_int = 100;
    let mut i = started(c, t0);
    i.handle(t0 + ms(100), Input::Advert { from: ip(OTHER), priority: 150, advert_int: 10 });
    assert_eq!(i.master_adver_interval(), ms(100));
    // 3 * 0.1 s + 156 * 0.1 s / 256
    assert_eq!(i.master_down_interval(), ms(300) + us(60_937));
    assert_eq!(i.poll_timeout(), Some(t0 + ms(100) + ms(300) + us(60_937)));
}

// RFC 3768 7.1 makes v2 intervals equal, so v2 never learns.
#[test]
fn v2_backup_keeps_its_own_interval() {
    let t0 = Instant::now();
    let mut i = started(cfg(100), t0);
    i.handle(t0, Input::Advert { from: ip(OTHER), priority: 150, advert_int: 300 });
    assert_eq!(i.master_adver_interval(), ms(1000));
}

// RFC 5798 6.4.2: "If the Priority in the ADVERTISEMENT is zero, then: Set the
// Master_Down_Timer to Skew_Time".
#[test]
fn priority_zero_handover_within_skew_time() {
    let t0 = Instant::now();
    let mut i = started(cfg(100), t0);
    i.handle(t0 + ms(1000), advert(OTHER, 150));
    let stop = t0 + ms(1500);
    i.handle(stop, advert(OTHER, 0));
    assert_eq!(i.poll_timeout(), Some(stop + i.skew_time()));
    let got = run_until(&mut i, stop + us(609_375));
    assert_eq!(transitions(&actions(&got)), vec![(State::Backup, State::Master)]);
    assert_eq!(reason(&actions(&got)), Some(Reason::MasterStopped));
}

// RFC 5798 6.4.3: "If the Priority in the ADVERTISEMENT is zero, then: Send an ADVERTISEMENT;
// Reset the Adver_Timer to Advertisement_Interval".
#[test]
fn master_answers_priority_zero_at_once() {
    let t0 = Instant::now();
    let (mut i, t) = master(cfg(100), t0);
    let now = t + ms(300);
    assert_eq!(sent(&i.handle(now, advert(OTHER, 0))), vec![100]);
    assert_eq!(i.poll_timeout(), Some(now + ms(1000)));
    assert_eq!(i.state(), State::Master);
}

// RFC 5798 6.4.3: "If the Priority in the ADVERTISEMENT is greater than the local Priority ...
// Set Master_Down_Timer to Master_Down_Interval; Transition to the Backup state".
#[test]
fn master_yields_to_higher_priority() {
    let t0 = Instant::now();
    let (mut i, t) = master(cfg(100), t0);
    let a = i.handle(t + ms(10), advert(OTHER, 150));
    assert_eq!(
        a,
        vec![
            Action::RemoveVips(vec![ip("192.0.2.100")]),
            Action::StateChanged {
                from: State::Master,
                to: State::Backup,
                reason: Reason::HigherPriority { from: ip(OTHER), priority: 150 }
            },
        ]
    );
    assert_eq!(i.poll_timeout(), Some(t + ms(10) + i.master_down_interval()));
}

// RFC 5798 6.4.3: "... or the Priority in the ADVERTISEMENT is equal to the local Priority and
// the primary IPvX Address of the sender is greater than the local primary IPvX Address".
#[test]
fn equal_priority_higher_address_wins() {
    let t0 = Instant::now();
    let (mut i, t) = master(cfg(100), t0);
    // 192.0.2.0 < 192.0.2.1: we stay master and re-advertise (keepalived).
    assert_eq!(sent(&i.handle(t, advert("192.0.2.0", 100))), vec![100]);
    assert_eq!(i.state(), State::Master);
    // Our own address (a looped-back advert), whatever the priority: a warning, nothing else.
    for p in [100, 200] {
        let a = i.handle(t, advert("192.0.2.1", p));
        assert_eq!(a, vec![Action::Warn(Warning::OwnAddress { from: ip("192.0.2.1") })]);
    }
    assert_eq!(i.state(), State::Master);
    // 192.0.2.2 > 192.0.2.1: we yield.
    let a = i.handle(t, advert(OTHER, 100));
    assert_eq!(transitions(&a), vec![(State::Master, State::Backup)]);
}

#[test]
fn lower_priority_advert_without_reply_when_disabled() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.lower_prio_advert = false;
    c.garp.lower_prio_repeat = 0;
    let (mut i, t) = master(c, t0);
    assert!(i.handle(t, advert(OTHER, 50)).is_empty(), "RFC 5798 6.4.3: discard");
}

// keepalived garp_lower_prio_repeat / garp_lower_prio_delay: a master hearing a lower priority
// re-announces its addresses at once and again after the delay.
#[test]
fn lower_priority_advert_triggers_gratuitous_arp() {
    let t0 = Instant::now();
    let (mut i, t) = master(cfg(100), t0);
    run_until(&mut i, t + ms(5000)); // past the garp_master_delay burst
    let now = t + ms(5500);
    let vip = vec![ip("192.0.2.100")];
    let garp = Action::SendGratuitous { addresses: vip, count: 5, interval: Duration::ZERO };
    assert_eq!(i.handle(now, advert(OTHER, 50)), vec![Action::SendAdvert { priority: 100 }, garp.clone()]);
    let later = run_until(&mut i, now + ms(5000));
    assert!(later.contains(&(now + ms(5000), garp)));
}

// RFC 5798 6.4.2: "If Preempt_Mode is False ... Reset the Master_Down_Timer" (nopreempt).
#[test]
fn nopreempt_keeps_a_lower_master() {
    let t0 = Instant::now();
    let mut c = cfg(200);
    c.preempt = false;
    let mut i = started(c, t0);
    for s in 1..=30 {
        let now = t0 + ms(1000 * s);
        assert!(run_until(&mut i, now).is_empty());
        i.handle(now, advert(OTHER, 100));
    }
    assert_eq!(i.state(), State::Backup);
}

// keepalived preempt_delay: a lower master is accepted until the delay (counted from its first
// advert) has passed; then its adverts are discarded and the Master_Down_Timer runs out.
#[test]
fn preempt_delay_postpones_preemption() {
    let t0 = Instant::now();
    let mut c = cfg(200);
    c.preempt_delay = Duration::from_secs(10);
    let mut i = started(c, t0);
    let mut became = None;
    for s in 1..=20 {
        let now = t0 + ms(1000 * s);
        for (t, a) in run_until(&mut i, now) {
            if matches!(a, Action::StateChanged { to: State::Master, .. }) {
                became = Some(t);
            }
        }
        if i.state() == State::Master {
            break;
        }
        i.handle(now, advert(OTHER, 100));
    }
    // First advert at 1 s -> preempt at 11 s; the advert at 10 s is the last accepted one.
    assert_eq!(became, Some(t0 + ms(10_000) + ms(3000) + us(218_750)));
}

// RFC 5798 6.4.3: Shutdown -> "Send an ADVERTISEMENT with Priority = 0; Transition to the
// Initialize state"; 6.4.2: a backup just goes to Initialize.
#[test]
fn shutdown_sends_priority_zero_from_master_only() {
    let t0 = Instant::now();
    let (mut m, t) = master(cfg(100), t0);
    let a = m.handle(t, Input::Shutdown);
    assert_eq!(sent(&a), vec![0]);
    assert!(a.contains(&Action::RemoveVips(vec![ip("192.0.2.100")])));
    assert_eq!(transitions(&a), vec![(State::Master, State::Initialize)]);
    assert_eq!(m.poll_timeout(), None);

    let mut b = started(cfg(100), t0);
    let a = b.handle(t0, Input::Shutdown);
    assert!(sent(&a).is_empty());
    assert_eq!(transitions(&a), vec![(State::Backup, State::Initialize)]);
    // Startup again works.
    assert_eq!(transitions(&b.handle(t0, Input::Startup)), vec![(State::Initialize, State::Backup)]);
}

// keepalived: the instance's interface going down puts it in Fault; a master tells the backup
// with priority 0 and drops its VIPs. Coming back up -> Backup, master again after MDI.
#[test]
fn interface_down_fault_and_recovery() {
    let t0 = Instant::now();
    let (mut i, t) = master(cfg(100), t0);
    let a = i.handle(t, Input::Interface { name: "eth0".into(), up: false });
    assert_eq!(sent(&a), vec![0]);
    assert!(a.contains(&Action::RemoveVips(vec![ip("192.0.2.100")])));
    assert_eq!(reason(&a), Some(Reason::InterfaceDown("eth0".into())));
    assert_eq!(i.state(), State::Fault);
    assert_eq!(i.poll_timeout(), None);
    // Adverts are ignored in Fault.
    assert!(i.handle(t, advert(OTHER, 0)).is_empty());
    // An unrelated interface changes nothing.
    assert!(i.handle(t, Input::Interface { name: "eth9".into(), up: true }).is_empty());

    let up = t + ms(5000);
    let a = i.handle(up, Input::Interface { name: "eth0".into(), up: true });
    assert_eq!(a, vec![Action::StateChanged { from: State::Fault, to: State::Backup, reason: Reason::FaultCleared }]);
    let mdi = i.master_down_interval();
    let got = run_until(&mut i, up + mdi);
    assert_eq!(transitions(&actions(&got)), vec![(State::Backup, State::Master)]);
}

#[test]
fn startup_with_interface_down_goes_to_fault() {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(100));
    i.handle(t0, Input::Interface { name: "eth0".into(), up: false });
    let a = i.handle(t0, Input::Startup);
    assert_eq!(transitions(&a), vec![(State::Initialize, State::Fault)]);
}

// keepalived track_interface with weight: priority changes instead of Fault.
#[test]
fn tracked_interface_weight_changes_priority() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.track_interfaces = vec![
        TrackedInterface { name: "eth1".into(), weight: -60, reverse: false },
        TrackedInterface { name: "eth2".into(), weight: 0, reverse: false },
    ];
    let (mut i, t) = master(c, t0);
    let a = i.handle(t, Input::Interface { name: "eth1".into(), up: false });
    assert_eq!(a, vec![Action::PriorityChanged { from: 100, to: 40 }]);
    assert_eq!(i.state(), State::Master);
    let got = run_until(&mut i, t + ms(1000));
    assert_eq!(sent(&actions(&got)), vec![40], "adverts carry the new priority");
    // A peer at 90 now wins.
    assert_eq!(transitions(&i.handle(t + ms(1100), advert(OTHER, 90))), vec![(State::Master, State::Backup)]);
    // Weight 0: Fault.
    let a = i.handle(t + ms(1200), Input::Interface { name: "eth2".into(), up: false });
    assert_eq!(transitions(&a), vec![(State::Backup, State::Fault)]);
}

// keepalived `dont_track_primary`: the own interface's link state is not a Fault.
#[test]
fn dont_track_primary_ignores_the_own_interface() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.dont_track_primary = true;
    let (mut i, t) = master(c, t0);
    let a = i.handle(t, Input::Interface { name: "eth0".into(), up: false });
    assert!(transitions(&a).is_empty(), "{a:?}");
    assert_eq!(i.state(), State::Master);
    // Without it, the same link going down is a Fault.
    let (mut i, t) = master(cfg(100), t0);
    let a = i.handle(t, Input::Interface { name: "eth0".into(), up: false });
    assert_eq!(transitions(&a), vec![(State::Master, State::Fault)]);
}

// keepalived track_interface `weight N reverse` (vrrp_track.c, initialise_interface_tracking_
// priorities and the multiplier at -1): a positive weight is taken off while the link is up, a
// negative one added while it is down, and weight 0 is Fault while the link is up.
#[test]
fn a_reversed_interface_weight_works_the_other_way() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.track_interfaces = vec![
        TrackedInterface { name: "eth1".into(), weight: 30, reverse: true },
        TrackedInterface { name: "eth2".into(), weight: -20, reverse: true },
    ];
    let mut i = started(c, t0);
    assert_eq!(i.effective_priority(), 70, "eth1 up: -30");
    let a = i.handle(t0, Input::Interface { name: "eth1".into(), up: false });
    assert_eq!(a, vec![Action::PriorityChanged { from: 70, to: 100 }]);
    let a = i.handle(t0, Input::Interface { name: "eth2".into(), up: false });
    assert_eq!(a, vec![Action::PriorityChanged { from: 100, to: 120 }], "eth2 down: +20");
    let mut c = cfg(100);
    c.track_interfaces = vec![TrackedInterface { name: "eth3".into(), weight: 0, reverse: true }];
    let mut i = Instance::new(c);
    let a = i.handle(t0, Input::Startup);
    assert_eq!(transitions(&a), vec![(State::Initialize, State::Fault)], "eth3 up with weight 0 reversed: Fault");
    let a = i.handle(t0, Input::Interface { name: "eth3".into(), up: false });
    assert_eq!(transitions(&a), vec![(State::Fault, State::Backup)]);
}

// keepalived vrrp_script semantics for Lua track functions: positive weight added while up,
// negative while down, weight 0 -> Fault; priority stays within 1..=254.
#[test]
fn track_functions_weights_and_fault() {
    let t0 = Instant::now();
    let mut i = started(cfg(100), t0);
    let up = |n: &str, w| Input::Track { name: n.into(), up: true, weight: w };
    let down = |n: &str, w| Input::Track { name: n.into(), up: false, weight: w };
    assert_eq!(i.handle(t0, up("web", 20)), vec![Action::PriorityChanged { from: 100, to: 120 }]);
    assert_eq!(i.handle(t0, down("web", 20)), vec![Action::PriorityChanged { from: 120, to: 100 }]);
    assert!(i.handle(t0, up("db", -30)).is_empty());
    assert_eq!(i.handle(t0, down("db", -30)), vec![Action::PriorityChanged { from: 100, to: 70 }]);
    assert_eq!(i.handle(t0, up("big", 200)), vec![Action::PriorityChanged { from: 70, to: 254 }]);
    assert_eq!(i.handle(t0, down("huge", -250)), vec![Action::PriorityChanged { from: 254, to: 20 }]);
    assert_eq!(i.handle(t0, down("more", -250)), vec![Action::PriorityChanged { from: 20, to: 1 }]);
    let a = i.handle(t0, down("must", 0));
    assert_eq!(reason(&a), Some(Reason::TrackDown("must".into())));
    assert_eq!(i.state(), State::Fault);
    let a = i.handle(t0 + ms(1), up("must", 0));
    assert_eq!(transitions(&a), vec![(State::Fault, State::Backup)]);
}

// The owner keeps 255 whatever the weights; a weighted track going down is a fault for it.
#[test]
fn owner_ignores_weights_and_faults_instead() {
    let t0 = Instant::now();
    let mut c = cfg(255);
    c.initial_state = InitialState::Master;
    let mut i = Instance::new(c);
    i.handle(t0, Input::Startup);
    assert!(i.handle(t0, Input::Track { name: "x".into(), up: true, weight: 10 }).is_empty());
    assert_eq!(i.effective_priority(), 255);
    let a = i.handle(t0, Input::Track { name: "x".into(), up: false, weight: 10 });
    assert_eq!(transitions(&a), vec![(State::Master, State::Fault)]);
    // Recovery: owner configured MASTER waits one interval plus skew (keepalived).
    let back = t0 + ms(10);
    i.handle(back, Input::Track { name: "x".into(), up: true, weight: 10 });
    assert_eq!(i.poll_timeout(), Some(back + ms(1000) + us(3_906)));
}

// RFC 5798 7.1: the owner does not process adverts for its VRID; a priority-255 claim for the
// addresses we own is a conflict to report, never a reason to back off.
#[test]
fn owner_never_backs_off_from_a_255_claim() {
    let t0 = Instant::now();
    let mut c = cfg(255);
    c.initial_state = InitialState::Master;
    let mut i = Instance::new(c);
    i.handle(t0, Input::Startup);
    let a = i.handle(t0, advert("192.0.2.200", 255));
    assert_eq!(a, vec![Action::Warn(Warning::OwnerConflict { from: ip("192.0.2.200") })]);
    assert_eq!(i.state(), State::Master);
    assert!(i.handle(t0, advert(OTHER, 0)).is_empty());
    assert!(i.handle(t0, advert(OTHER, 254)).is_empty());
    assert_eq!(i.state(), State::Master);
}

// Reload: update_config keeps the state, applies only the VIP difference, and the new priority
// goes out with the next advert.
#[test]
fn update_config_keeps_state() {
    let t0 = Instant::now();
    let (mut i, t) = master(cfg(100), t0);
    let mut c = cfg(90);
    c.addresses = vec![ip("192.0.2.100"), ip("192.0.2.101")];
    let a = i.update_config(t, c).unwrap();
    assert_eq!(
        a,
        vec![
            Action::AddVips(vec![ip("192.0.2.101")]),
            Action::SendGratuitous { addresses: vec![ip("192.0.2.101")], count: 5, interval: Duration::ZERO },
            Action::PriorityChanged { from: 100, to: 90 },
        ]
    );
    assert_eq!(i.state(), State::Master);
    let next = i.poll_timeout().unwrap();
    assert_eq!(sent(&i.handle(next, Input::Timeout)), vec![90]);

    let mut c = cfg(90);
    c.addresses = vec![ip("192.0.2.101")];
    assert_eq!(i.update_config(next, c).unwrap(), vec![Action::RemoveVips(vec![ip("192.0.2.100")])]);

    let mut c = cfg(90);
    c.vrid = 52;
    assert!(i.update_config(next, c).is_err());
    assert_eq!(i.state(), State::Master);
}

// keepalived's virtual_ipaddress_excluded: held and announced with the VIPs while master
// (vrrp_state_become_master adds the evip list, vrrp_send_link_update sends for it), in no
// advert and not compared with a peer's address list.
#[test]
fn excluded_addresses_are_held_but_not_advertised() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.excluded = vec![ip("2001:db8::100"), ip("192.0.2.150")];
    let held = vec![ip("192.0.2.100"), ip("2001:db8::100"), ip("192.0.2.150")];
    assert_eq!(c.advert(100).addresses, vec![ip("192.0.2.100")]);
    assert_eq!(c.expect().addresses, vec![ip("192.0.2.100")]);
    let mut i = started(c, t0);
    let up = t0 + i.master_down_interval();
    let a = actions(&run_until(&mut i, up));
    assert!(a.contains(&Action::AddVips(held.clone())), "{a:?}");
    assert!(a.contains(&Action::SendGratuitous { addresses: held.clone(), count: 5, interval: Duration::ZERO }), "{a:?}");
    // The delayed repeat of the gratuitous ARP/NA (garp_master_delay) covers them too.
    let later = actions(&run_until(&mut i, up + ms(5_000)));
    assert!(later.contains(&Action::SendGratuitous { addresses: held.clone(), count: 5, interval: Duration::ZERO }), "{later:?}");
    // A reload that drops one excluded address and adds another applies the difference only.
    let mut c = cfg(100);
    c.excluded = vec![ip("2001:db8::100"), ip("2001:db8::101")];
    let now = up + ms(5_100);
    let a = i.update_config(now, c).unwrap();
    assert_eq!(
        a,
        vec![
            Action::RemoveVips(vec![ip("192.0.2.150")]),
            Action::AddVips(vec![ip("2001:db8::101")]),
            Action::SendGratuitous { addresses: vec![ip("2001:db8::101")], count: 5, interval: Duration::ZERO },
        ]
    );
    // Preempted: every held address goes.
    let a = i.handle(now, advert(OTHER, 200));
    assert!(a.contains(&Action::RemoveVips(vec![ip("192.0.2.100"), ip("2001:db8::100"), ip("2001:db8::101")])), "{a:?}");
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn update_config_in_backup_does_not_flap() {
    let t0 = Instant::now();
    let mut i = started(cfg(100), t0);
    i.handle(t0 + ms(500), advert(OTHER, 150));
    let due = i.poll_timeout();
    assert!(i.update_config(t0 + ms(600), cfg(100)).unwrap().is_empty());
    assert_eq!(i.poll_timeout(), due, "the Master_Down_Timer keeps running");
    // Tracking a new interface that is already known down moves to Fault.
    i.handle(t0 + ms(700), Input::Interface { name: "eth1".into(), up: false });
    let mut c = cfg(100);
    c.track_interfaces = vec![TrackedInterface { name: "eth1".into(), weight: 0, reverse: false }];
    let a = i.update_config(t0 + ms(800), c).unwrap();
    assert_eq!(transitions(&a), vec![(State::Backup, State::Fault)]);
}

// keepalived garp_master_delay / garp_master_repeat / garp_master_refresh(_repeat).
#[test]
fn gratuitous_arp_delay_and_refresh() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.garp.master_refresh = Some(Duration::from_secs(60));
    c.garp.master_refresh_repeat = 2;
    c.garp.interval = ms(10);
    let (mut i, t) = master(c, t0);
    let garps = |v: &[(Instant, Action)]| -> Vec<(Instant, u32)> {
        v.iter()
            .filter_map(|(t, a)| match a {
                Action::SendGratuitous { count, interval, .. } => {
                    assert_eq!(*interval, ms(10));
                    Some((*t, *count))
                }
                _ => None,
            })
            .collect()
    };
    let got = run_until(&mut i, t + Duration::from_secs(125));
    assert_eq!(garps(&got), vec![(t + ms(5000), 5), (t + ms(60_000), 2), (t + ms(120_000), 2)]);
}

#[test]
fn no_delayed_garp_when_delay_is_zero() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.garp.master_delay = Duration::ZERO;
    let (mut i, t) = master(c, t0);
    let got = run_until(&mut i, t + ms(10_000));
    assert!(got.iter().all(|(_, a)| !matches!(a, Action::SendGratuitous { .. })));
}

/// Runs a sync group: handles `input` on `member`, then delivers the group's commands until
/// nothing more happens. Returns every member's state.
fn drive(group: &mut SyncGroup, members: &mut [Instance], now: Instant, member: usize, input: Input) -> Vec<State> {
    let mut queue = vec![(member, input)];
    while let Some((m, inp)) = queue.pop() {
        members[m].handle(now, inp);
        for (j, cmd) in group.update(m, members[m].state(), members[m].own_fault()) {
            queue.push((j, Input::Sync(cmd)));
        }
    }
    members.iter().map(|m| m.state()).collect()
}

// keepalived vrrp_sync_group: members move together; a Fault in one sends all to Fault.
#[test]
fn sync_group_moves_together() {
    let t0 = Instant::now();
    let mut a = cfg(100);
    a.interface = "eth0".into();
    let mut b = cfg(100);
    b.vrid = 52;
    b.interface = "eth1".into();
    b.addresses = vec![ip("198.51.100.100")];
    let mut members = vec![Instance::new(a), Instance::new(b)];
    let mut g = SyncGroup::new(2);
    use State::*;
    assert_eq!(drive(&mut g, &mut members, t0, 0, Input::Startup), vec![Backup, Initialize]);
    assert_eq!(drive(&mut g, &mut members, t0, 1, Input::Startup), vec![Backup, Backup]);
    // Member 1 keeps hearing its master, member 0 times out: both become master.
    members[1].handle(t0 + ms(3000), advert(OTHER, 150));
    let t = members[0].poll_timeout().unwrap();
    assert_eq!(drive(&mut g, &mut members, t, 0, Input::Timeout), vec![Master, Master]);
    // Member 1 hears a higher priority: both go back to backup.
    assert_eq!(drive(&mut g, &mut members, t, 1, advert(OTHER, 200)), vec![Backup, Backup]);
    // Master again, then member 0's interface fails: everybody in Fault.
    assert_eq!(drive(&mut g, &mut members, t, 0, Input::Sync(SyncCommand::Master)), vec![Master, Master]);
    let down = Input::Interface { name: "eth0".into(), up: false };
    assert_eq!(drive(&mut g, &mut members, t, 0, down), vec![Fault, Fault]);
    assert!(g.in_fault());
    // Member 1's own track also fails, then member 0 recovers: still all Fault.
    let tr = |up| Input::Track { name: "chk".into(), up, weight: 0 };
    assert_eq!(drive(&mut g, &mut members, t, 1, tr(false)), vec![Fault, Fault]);
    let up = Input::Interface { name: "eth0".into(), up: true };
    assert_eq!(drive(&mut g, &mut members, t, 0, up), vec![Fault, Fault]);
    // Last fault clears: everybody back to Backup.
    assert_eq!(drive(&mut g, &mut members, t, 1, tr(true)), vec![Backup, Backup]);
    assert!(!g.in_fault());
}

// A zero period in the configuration means "off", never a timer firing in a loop.
#[test]
fn zero_periods_never_spin() {
    let t0 = Instant::now();
    let mut c = cfg(100);
    c.garp.master_refresh = Some(Duration::ZERO);
    c.garp.lower_prio_delay = Duration::ZERO;
    let (mut i, t) = master(c, t0);
    i.handle(t, advert(OTHER, 50));
    let mut c = cfg(100);
    c.advert_int = 0;
    i.update_config(t, c).unwrap();
    // The advert already scheduled goes out, then every centisecond (the floor).
    assert!(run_until(&mut i, t + ms(2000)).len() >= 90);
}

// keepalived vrrp_sync_group with three members: the others follow a member's move, and a
// member stopping (Initialize) moves nobody.
#[test]
fn sync_group_of_three_follows_and_ignores_a_stop() {
    let t0 = Instant::now();
    let mut members: Vec<Instance> = (0..3u8)
        .map(|n| {
            let mut c = cfg(100);
            c.vrid = 51 + n;
            c.interface = format!("eth{n}");
            Instance::new(c)
        })
        .collect();
    let mut g = SyncGroup::new(3);
    use State::*;
    for m in 0..3 {
        drive(&mut g, &mut members, t0, m, Input::Startup);
    }
    let t = members[2].poll_timeout().unwrap();
    assert_eq!(drive(&mut g, &mut members, t, 2, Input::Timeout), vec![Master, Master, Master]);
    assert_eq!(drive(&mut g, &mut members, t, 1, Input::Shutdown), vec![Master, Initialize, Master]);
    assert_eq!(drive(&mut g, &mut members, t, 0, advert(OTHER, 200)), vec![Backup, Initialize, Backup]);
}
