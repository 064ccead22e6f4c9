//! Link state and the RTNLGRP_LINK watcher, on a veth pair between namespaces (root only).

use std::time::Duration;

use lvsd::net::link::{self, LinkEvent, LinkWatcher, OperState};
use lvsd::net::netns::{Netns, privileged_or_skip, unique_name, veth};

const WAIT: Duration = Duration::from_secs(5);

/// Next event for `name`, skipping events of other links; bounded in time and count.
async fn next_for(w: &mut LinkWatcher, name: &str) -> LinkEvent {
    let deadline = tokio::time::Instant::now() + WAIT;
    for _ in 0..100 {
        let ev =
            tokio::time::timeout_at(deadline, w.next()).await.unwrap_or_else(|_| panic!("no event for {name} within {WAIT:?}")).unwrap();
        if ev.name == name {
            return ev;
        }
    }
    panic!("too many unrelated link events");
}

#[tokio::test]
async fn link_down_and_carrier_loss_are_reported() {
    if !privileged_or_skip("link_down_and_carrier_loss_are_reported") {
        return;
    }
    let a = Netns::create(&unique_name("lvla")).unwrap();
    let b = Netns::create(&unique_name("lvlb")).unwrap();
    veth(&a, "eth0", &b, "eth0").unwrap();

    let info = a.run(|| link::link_by_name("eth0")).unwrap().unwrap();
    assert!(info.admin_up && info.carrier && info.is_up(), "{info:?}");
    assert_eq!(info.oper_state, OperState::Up);
    assert_eq!(info.mac.len(), 6);

    let mut w = a.run_in_runtime(LinkWatcher::new).unwrap().unwrap();
    assert!(w.initial().iter().any(|l| l.name == "eth0" && l.is_up()));

    // Administrative down, through our own rtnetlink call.
    a.run(|| link::set_link_up("eth0", false)).unwrap().unwrap();
    assert!(a.ip(&["-o", "link", "show", "eth0"]).unwrap().contains("state DOWN"));
    let ev = next_for(&mut w, "eth0").await;
    assert!(!ev.up, "{ev:?}");
    assert_eq!(ev.ifindex, info.ifindex);
    assert!(!ev.info.unwrap().admin_up);

    a.run(|| link::set_link_up("eth0", true)).unwrap().unwrap();
    let ev = next_for(&mut w, "eth0").await;
    assert!(ev.up, "{ev:?}");

    // Carrier loss: the peer end goes down, ours stays administratively up.
    b.ip(&["link", "set", "eth0", "down"]).unwrap();
    let ev = next_for(&mut w, "eth0").await;
    assert!(!ev.up, "{ev:?}");
    let i = ev.info.unwrap();
    assert!(i.admin_up && !i.carrier, "{i:?}");
    // The kernel reports DOWN or LOWERLAYERDOWN depending on timing; never UP.
    assert_ne!(i.oper_state, OperState::Up, "{i:?}");
    let now = a.run(|| link::link_by_name("eth0")).unwrap().unwrap();
    assert!(!now.is_up());

    b.ip(&["link", "set", "eth0", "up"]).unwrap();
    assert!(next_for(&mut w, "eth0").await.up);

    // A new link appears, then is deleted (with its peer).
    a.ip(&["link", "add", "dum0", "type", "veth", "peer", "name", "dum1"]).unwrap();
    let ev = next_for(&mut w, "dum0").await;
    assert!(!ev.up, "a new link is down until set up: {ev:?}");
    a.ip(&["link", "del", "dum0"]).unwrap();
    let ev = next_for(&mut w, "dum0").await;
    assert!(!ev.up && ev.info.is_none(), "deletion: {ev:?}");
}
