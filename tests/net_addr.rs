//! VIP addresses over rtnetlink and sysctls, inside a network namespace (root only).
//! Results are cross-checked with iproute2 and procps, which no one here wrote.

use std::net::IpAddr;

use std::time::Duration;

use lvsd::net::addr::{self, AddrError, AddrEvent, AddrWatcher, Scope, Vip};
use lvsd::net::netns::{Netns, privileged_or_skip, unique_name};
use lvsd::net::sysctl::{self, SysctlError, SysctlKey};

/// A namespace with an `eth0` (one end of a veth pair whose other end stays in the
/// namespace: the host kernel has no dummy driver).
fn ns_with_eth0(prefix: &str) -> Netns {
    let ns = Netns::create(&unique_name(prefix)).unwrap();
    ns.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]).unwrap();
    ns.ip(&["link", "set", "eth0p", "up"]).unwrap();
    ns.ip(&["link", "set", "eth0", "up"]).unwrap();
    ns
}

fn ip_addr_lines(ns: &Netns, dev: &str) -> String {
    ns.ip(&["-o", "addr", "show", "dev", dev]).unwrap()
}

#[test]
fn vip_with_label_is_added_and_removed() {
    if !privileged_or_skip("vip_with_label_is_added_and_removed") {
        return;
    }
    let ns = ns_with_eth0("lvad");
    let vip = Vip::host("192.0.2.10".parse().unwrap(), "eth0").with_label("eth0:0");

    assert!(ns.run(|| addr::add_address(&vip)).unwrap().unwrap(), "first add adds");
    let out = ip_addr_lines(&ns, "eth0");
    let line = out.lines().find(|l| l.contains("192.0.2.10/32")).unwrap_or_else(|| panic!("not in ip output:\n{out}"));
    assert!(line.contains("scope global eth0:0"), "label and scope: {line}");

    // Idempotent: adding again is fine and reports no change.
    assert!(!ns.run(|| addr::add_address(&vip)).unwrap().unwrap());

    let listed = ns.run(|| addr::list_addresses("eth0")).unwrap().unwrap();
    let a = listed.iter().find(|a| a.addr == vip.addr).expect("listed");
    assert_eq!(a.prefix_len, 32);
    assert_eq!(a.label.as_deref(), Some("eth0:0"));
    assert_eq!(a.scope, Scope::Global);

    assert!(ns.run(|| addr::del_address(&vip)).unwrap().unwrap(), "delete removes");
    assert!(!ip_addr_lines(&ns, "eth0").contains("192.0.2.10"));
    // Idempotent delete.
    assert!(!ns.run(|| addr::del_address(&vip)).unwrap().unwrap());
}

#[test]
fn vip_with_prefix_on_lo_and_ipv6_nodad() {
    if !privileged_or_skip("vip_with_prefix_on_lo_and_ipv6_nodad") {
        return;
    }
    let ns = ns_with_eth0("lvad6");
    // The real-server layout: VIP /32 on lo with label lo:<n>.
    let lo_vip = Vip::host("198.51.100.7".parse().unwrap(), "lo").with_label("lo:7");
    assert!(ns.run(|| addr::add_address(&lo_vip)).unwrap().unwrap());
    assert!(ip_addr_lines(&ns, "lo").lines().any(|l| l.contains("198.51.100.7/32") && l.contains("lo:7")));

    // A VIP inside a subnet becomes a secondary address of that subnet.
    let primary = Vip::host("203.0.113.1".parse().unwrap(), "eth0").with_prefix(24);
    let secondary = Vip::host("203.0.113.50".parse().unwrap(), "eth0").with_prefix(24).with_label("eth0:50");
    for v in [&primary, &secondary] {
        assert!(ns.run(|| addr::add_address(v)).unwrap().unwrap());
    }
    let listed = ns.run(|| addr::list_addresses("eth0")).unwrap().unwrap();
    let find = |ip: &str| listed.iter().find(|a| a.addr == ip.parse::<IpAddr>().unwrap()).unwrap().clone();
    assert!(!find("203.0.113.1").is_secondary());
    assert!(find("203.0.113.50").is_secondary());
    let idx = ns.run(|| lvsd::net::ifindex("eth0")).unwrap().unwrap();
    assert_eq!(ns.run(|| addr::primary_ipv4(idx)).unwrap().unwrap(), Some("203.0.113.1".parse().unwrap()));

    // IPv6 VIP: no DAD, so never tentative.
    let v6 = Vip::host("2001:db8::7".parse().unwrap(), "eth0").with_prefix(64);
    assert!(ns.run(|| addr::add_address(&v6)).unwrap().unwrap());
    let line = ip_addr_lines(&ns, "eth0").lines().find(|l| l.contains("2001:db8::7/64")).unwrap().to_owned();
    assert!(line.contains("nodad"), "{line}");
    assert!(!line.contains("tentative"), "{line}");
    let a6 = ns.run(|| addr::list_addresses("eth0")).unwrap().unwrap().into_iter().find(|a| a.addr == v6.addr).unwrap();
    assert!(a6.is_nodad() && !a6.is_tentative());
    assert!(ns.run(|| addr::del_address(&v6)).unwrap().unwrap());
    assert!(!ip_addr_lines(&ns, "eth0").contains("2001:db8::7"));

    // Link scope is honoured.
    let scoped = Vip::host("192.0.2.99".parse().unwrap(), "eth0").with_scope(Scope::Link);
    assert!(ns.run(|| addr::add_address(&scoped)).unwrap().unwrap());
    assert!(ip_addr_lines(&ns, "eth0").lines().any(|l| l.contains("192.0.2.99/32") && l.contains("scope link")));

    // Deleting with another prefix length does not touch the address.
    let wrong = Vip::host("203.0.113.50".parse().unwrap(), "eth0").with_prefix(25);
    assert!(!ns.run(|| addr::del_address(&wrong)).unwrap().unwrap());
    assert!(ip_addr_lines(&ns, "eth0").contains("203.0.113.50/24"));
}

#[test]
fn address_errors_name_the_problem() {
    if !privileged_or_skip("address_errors_name_the_problem") {
        return;
    }
    let ns = ns_with_eth0("lvade");
    let e = ns.run(|| addr::add_address(&Vip::host("192.0.2.10".parse().unwrap(), "nope0"))).unwrap().unwrap_err();
    assert!(e.to_string().contains("nope0"), "{e}");
    let e = ns.run(|| addr::add_address(&Vip::host("192.0.2.10".parse().unwrap(), "eth0").with_label("lo:1"))).unwrap().unwrap_err();
    assert!(matches!(e, AddrError::BadLabel { .. }), "{e}");
    // The kernel refuses a multicast address as an interface address; the error says
    // which address and interface.
    let e = ns.run(|| addr::add_address(&Vip::host("ff02::99".parse().unwrap(), "eth0"))).unwrap().unwrap_err();
    assert!(e.to_string().contains("ff02::99") && e.to_string().contains("eth0"), "{e}");
}

#[test]
fn sysctl_round_trip_is_per_namespace() {
    if !privileged_or_skip("sysctl_round_trip_is_per_namespace") {
        return;
    }
    let ns = ns_with_eth0("lvsys");
    let host_before = sysctl::read(&SysctlKey::arp_ignore("lo").unwrap()).unwrap();

    let key = SysctlKey::arp_ignore("lo").unwrap();
    let announce = SysctlKey::arp_announce("all").unwrap();
    let (old_ignore, old_announce) = ns.run(|| (sysctl::replace(&key, "1").unwrap(), sysctl::replace(&announce, "2").unwrap())).unwrap();
    assert_eq!((old_ignore.as_str(), old_announce.as_str()), ("0", "0"), "fresh namespace defaults");

    // procps sees the new values inside the namespace.
    let out = ns.exec("sysctl", &["-n", "net.ipv4.conf.lo.arp_ignore", "net.ipv4.conf.all.arp_announce"]).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(ns.run(|| sysctl::read_int(&key)).unwrap().unwrap(), 1);
    // ... and the host is untouched.
    assert_eq!(sysctl::read(&key).unwrap(), host_before);

    // Restore.
    ns.run(|| {
        sysctl::write(&key, &old_ignore).unwrap();
        sysctl::write(&announce, &old_announce).unwrap();
    })
    .unwrap();
    assert_eq!(ns.run(|| sysctl::read_int(&key)).unwrap().unwrap(), 0);

    // Per-interface keys for an interface in the namespace only.
    assert!(ns.run(|| sysctl::read(&SysctlKey::rp_filter("eth0").unwrap())).unwrap().is_ok());
    let e = sysctl::read(&SysctlKey::rp_filter("lvsd-absent0").unwrap()).unwrap_err();
    assert!(matches!(e, SysctlError::NotFound { .. }));

    // The kernel rejects a bad value; the error names the key.
    let fwd = SysctlKey::ip_forward();
    let e = ns.run(|| sysctl::write(&fwd, "not-a-number")).unwrap().unwrap_err();
    assert!(e.to_string().contains("net.ipv4.ip_forward"), "{e}");
    ns.run(|| sysctl::write(&fwd, "1")).unwrap().unwrap();
    assert_eq!(ns.run(|| sysctl::read_int(&fwd)).unwrap().unwrap(), 1);
}

/// Next event for `addr`, skipping others; bounded in time and count.
async fn next_for(w: &mut AddrWatcher, addr: &str) -> AddrEvent {
    let want: IpAddr = addr.parse().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    for _ in 0..100 {
        let ev = tokio::time::timeout_at(deadline, w.next()).await.unwrap_or_else(|_| panic!("no event for {addr} within 5 s")).unwrap();
        if ev.info.addr == want {
            return ev;
        }
    }
    panic!("too many unrelated address events");
}

#[tokio::test]
async fn address_watcher_sees_changes_made_by_others() {
    if !privileged_or_skip("address_watcher_sees_changes_made_by_others") {
        return;
    }
    let ns = ns_with_eth0("lvaw");
    ns.ip(&["addr", "add", "192.0.2.5/24", "dev", "eth0"]).unwrap();
    let mut w = ns.run_in_runtime(AddrWatcher::new).unwrap().unwrap();
    assert!(w.initial().iter().any(|a| a.addr == "192.0.2.5".parse::<IpAddr>().unwrap()));

    // A VIP removed by hand is reported.
    ns.ip(&["addr", "add", "192.0.2.77/32", "dev", "eth0"]).unwrap();
    let ev = next_for(&mut w, "192.0.2.77").await;
    assert!(ev.present && ev.info.prefix_len == 32, "{ev:?}");
    ns.ip(&["addr", "del", "192.0.2.77/32", "dev", "eth0"]).unwrap();
    let ev = next_for(&mut w, "192.0.2.77").await;
    assert!(!ev.present, "{ev:?}");

    // An IPv6 address under duplicate address detection becomes usable later: the
    // watcher reports the change (this is how a VRRP socket knows it can open).
    ns.sysctl("net.ipv6.conf.eth0.accept_dad", "1").unwrap();
    ns.sysctl("net.ipv6.conf.eth0.dad_transmits", "1").unwrap();
    ns.ip(&["addr", "add", "2001:db8::5/64", "dev", "eth0"]).unwrap();
    let first = next_for(&mut w, "2001:db8::5").await;
    assert!(first.present && first.info.is_tentative(), "starts tentative: {first:?}");
    let mut usable = false;
    for _ in 0..5 {
        let ev = next_for(&mut w, "2001:db8::5").await;
        assert!(ev.present, "{ev:?}");
        if !ev.info.is_tentative() {
            usable = true;
            break;
        }
    }
    assert!(usable, "2001:db8::5 never left DAD");
    let listed = ns.run(|| addr::list_addresses("eth0")).unwrap().unwrap();
    assert!(listed.iter().any(|a| a.addr == "2001:db8::5".parse::<IpAddr>().unwrap() && !a.is_tentative()));
}

#[test]
fn vip_with_a_broadcast_address() {
    if !privileged_or_skip("vip_with_a_broadcast_address") {
        return;
    }
    let ns = ns_with_eth0("lvab");
    let vip = Vip::host("192.0.2.10".parse().unwrap(), "eth0").with_prefix(24).with_broadcast(Some("192.0.2.255".parse().unwrap()));
    assert!(ns.run(|| addr::add_address(&vip)).unwrap().unwrap());
    let out = ip_addr_lines(&ns, "eth0");
    assert!(out.contains("inet 192.0.2.10/24 brd 192.0.2.255 scope global eth0"), "{out}");
    assert!(ns.run(|| addr::del_address(&vip)).unwrap().unwrap());
    assert!(!ip_addr_lines(&ns, "eth0").contains("192.0.2.10"));
}
