//! Gratuitous ARP and unsolicited NA, seen on the wire by a packet socket in another
//! namespace and accepted by that namespace's kernel (root only).

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use common::capture::{capture, wait_frame};
use common::lan::Lan;
use lvsd::net::addr::{self, Vip};
use lvsd::net::garp::{self, Announcer};
use lvsd::net::netns::{Netns, privileged_or_skip};
use lvsd::net::sysctl;

const WAIT: Duration = Duration::from_secs(5);

/// Poll `ip neigh` (bounded) until the entry for `ip` shows `mac`.
fn wait_neigh(ns: &Netns, ip: &str, mac: &str) {
    let start = Instant::now();
    loop {
        let out = ns.ip(&["neigh", "show", ip, "dev", "eth0"]).unwrap();
        if out.contains(mac) {
            return;
        }
        assert!(start.elapsed() < WAIT, "neighbour {ip} never got {mac}: {out:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[test]
fn garp_is_seen_and_accepted_by_the_peer() {
    if !privileged_or_skip("garp_is_seen_and_accepted_by_the_peer") {
        return;
    }
    let lan = Lan::new("lvga", 2).unwrap();
    let (a, b) = (lan.host(0), lan.host(1));
    let vip: Ipv4Addr = "192.0.2.50".parse().unwrap();
    let add = |ns: &Netns, ip: &str| {
        let v = Vip::host(ip.parse().unwrap(), "eth0").with_prefix(24);
        ns.run(|| addr::add_address(&v)).unwrap().unwrap();
    };
    add(a, "192.0.2.1");
    add(a, "192.0.2.50");
    add(b, "192.0.2.2");
    // Let the peer's kernel learn from gratuitous ARP.
    b.sysctl("net.ipv4.conf.eth0.arp_accept", "1").unwrap();

    let cap = capture(b);
    let mac = a.run(|| Announcer::open("eth0").unwrap().mac()).unwrap();
    a.run(|| garp::send_garp("eth0", vip)).unwrap().unwrap();

    let f = wait_frame(&cap, "gratuitous ARP", |f| f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[28..32] == vip.octets());
    assert_eq!(&f[0..6], &[0xff; 6], "broadcast");
    assert_eq!(&f[6..12], &mac, "from the interface's MAC");
    assert_eq!(&f[20..22], &[0, 1], "ARP request");
    assert_eq!(&f[22..28], &mac, "sender hardware address");
    assert_eq!(&f[38..42], &vip.octets(), "target protocol address = sender");
    wait_neigh(b, "192.0.2.50", &mac_str(mac));
}

#[test]
fn unsolicited_na_is_seen_and_accepted_by_the_peer() {
    if !privileged_or_skip("unsolicited_na_is_seen_and_accepted_by_the_peer") {
        return;
    }
    let lan = Lan::new("lvna", 2).unwrap();
    let (a, b) = (lan.host(0), lan.host(1));
    let vip: Ipv6Addr = "2001:db8::50".parse().unwrap();
    let v = Vip::host(vip.into(), "eth0").with_prefix(64);
    a.run(|| addr::add_address(&v)).unwrap().unwrap();
    // The peer has a stale entry with another MAC: an NA with the override flag replaces it.
    b.ip(&["neigh", "add", "2001:db8::50", "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale"]).unwrap();
    // Make sure the peer's forwarding setting does not matter for the check.
    assert_eq!(b.run(|| sysctl::read_int(&sysctl::SysctlKey::ipv6_forwarding())).unwrap().unwrap(), 0);

    let cap = capture(b);
    let mac = a.run(|| Announcer::open("eth0").unwrap().mac()).unwrap();
    a.run(|| garp::send_unsolicited_na("eth0", vip)).unwrap().unwrap();

    let f = wait_frame(&cap, "unsolicited NA", |f| {
        f.len() >= 86 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == 136 && f[62..78] == vip.octets()
    });
    assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1], "to all-nodes");
    assert_eq!(&f[6..12], &mac);
    assert_eq!(f[21], 255, "hop limit");
    assert_eq!(&f[22..38], &vip.octets(), "source is the VIP");
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    assert_eq!(&f[38..54], &all_nodes.octets());
    let icmp = &f[54..86];
    assert_eq!(icmp[4] & 0xe0, 0x20, "override set, solicited and router clear");
    assert_eq!(&icmp[24..32], &[&[2u8, 1][..], &mac[..]].concat()[..], "target link-layer address option");
    assert_eq!(garp::icmpv6_checksum(&vip, &all_nodes, icmp), 0, "checksum verifies");
    wait_neigh(b, "2001:db8::50", &mac_str(mac));
}
