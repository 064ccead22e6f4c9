//! Our VRRP sockets receive the adverts of a real keepalived (Debian 2.2.7) running in a
//! neighbouring namespace: multicast v2 over IPv4, v3 over IPv6, and unicast (root only;
//! keepalived is installed by scripts/test).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

mod common;
use common::keepalived::{Keepalived, keepalived_available};

use common::lan::Lan;
use lvsd::net::addr::{self, Vip};
use lvsd::net::netns::Netns;
use lvsd::net::vrrp_socket::{VRRP_GROUP_V4, VRRP_GROUP_V6};
use lvsd::net::{Family, Mode, RecvMeta, VrrpSocket, link};

/// keepalived starts in BACKUP and becomes MASTER after Master_Down_Interval (~3.6 s for
/// a 1 s advert interval); allow for a slow machine.
const WAIT: Duration = Duration::from_secs(15);

fn add(ns: &Netns, ip: &str, prefix: u8) {
    let v = Vip::host(ip.parse().unwrap(), "eth0").with_prefix(prefix);
    ns.run(|| addr::add_address(&v)).unwrap().unwrap();
}

async fn recv(sock: &VrrpSocket, k: &Keepalived) -> (Vec<u8>, RecvMeta) {
    match tokio::time::timeout(WAIT, sock.recv()).await {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("no advert from keepalived within {WAIT:?}; its log:\n{}", k.log()),
    }
}

#[tokio::test]
async fn receives_keepalived_v2_multicast_with_pass_auth() {
    if !keepalived_available("receives_keepalived_v2_multicast_with_pass_auth") {
        return;
    }
    let lan = Lan::new("lvk2", 2).unwrap();
    let (a, b) = (lan.host(0), lan.host(1));
    add(a, "192.0.2.1", 24);
    add(b, "192.0.2.2", 24);
    let rx = b.run_in_runtime(|| VrrpSocket::open("eth0", Family::Inet, Mode::Multicast)).unwrap().unwrap();
    let k = Keepalived::start(
        a,
        "global_defs { router_id lvsd_test_v2 }
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  authentication { auth_type PASS
    auth_pass 1111 }
  virtual_ipaddress { 192.0.2.100 }
}
",
    );
    let (p, meta) = recv(&rx, &k).await;
    let b_eth0 = b.run(|| link::ifindex("eth0")).unwrap().unwrap();
    assert_eq!(meta, RecvMeta { src: "192.0.2.1".parse().unwrap(), dst: IpAddr::V4(VRRP_GROUP_V4), ttl: 255, ifindex: b_eth0 });
    // RFC 3768 5.1 layout, IP header already removed.
    assert_eq!(p.len(), 8 + 4 + 8, "{p:02x?}");
    assert_eq!(&p[..6], &[0x21, 51, 150, 1, 1, 1], "v2 advert, vrid, priority, 1 address, PASS, 1 s");
    assert_eq!(&p[8..12], &Ipv4Addr::new(192, 0, 2, 100).octets());
    assert_eq!(&p[12..20], b"1111\0\0\0\0");
}

#[tokio::test]
async fn receives_keepalived_v3_ipv6_from_link_local() {
    if !keepalived_available("receives_keepalived_v3_ipv6_from_link_local") {
        return;
    }
    let lan = Lan::new("lvk6", 2).unwrap();
    let (a, b) = (lan.host(0), lan.host(1));
    let a_eth0 = a.run(|| link::ifindex("eth0")).unwrap().unwrap();
    let b_eth0 = b.run(|| link::ifindex("eth0")).unwrap().unwrap();
    // Link-locals appear with the link (DAD is off in Lan hosts); poll, bounded.
    let ll = |ns: &Netns, idx: u32| {
        let start = Instant::now();
        loop {
            if let Some(a) = ns.run(|| addr::link_local_ipv6(idx)).unwrap().unwrap() {
                return a;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "no link-local in {}", ns.name());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let a_ll = ll(a, a_eth0);
    ll(b, b_eth0);
    let rx = b.run_in_runtime(|| VrrpSocket::open("eth0", Family::Inet6, Mode::Multicast)).unwrap().unwrap();
    let k = Keepalived::start(
        a,
        "global_defs { router_id lvsd_test_v3
  vrrp_version 3 }
vrrp_instance VI_6 {
  state MASTER
  interface eth0
  virtual_router_id 53
  priority 200
  advert_int 0.5
  virtual_ipaddress { 2001:db8::100 }
}
",
    );
    let (p, meta) = recv(&rx, &k).await;
    assert_eq!(meta, RecvMeta { src: IpAddr::V6(a_ll), dst: IpAddr::V6(VRRP_GROUP_V6), ttl: 255, ifindex: b_eth0 });
    // RFC 5798 5.1 layout: version 3 advert, vrid, priority, count, 12-bit interval (cs).
    assert_eq!(p.len(), 8 + 16, "{p:02x?}");
    assert_eq!(&p[..4], &[0x31, 53, 200, 1]);
    assert_eq!(u16::from_be_bytes([p[4], p[5]]) & 0x0fff, 50);
    assert_eq!(&p[8..24], &"2001:db8::100".parse::<std::net::Ipv6Addr>().unwrap().octets());
}

#[tokio::test]
async fn receives_keepalived_unicast() {
    if !keepalived_available("receives_keepalived_unicast") {
        return;
    }
    let lan = Lan::new("lvku", 2).unwrap();
    let (a, b) = (lan.host(0), lan.host(1));
    add(a, "192.0.2.1", 24);
    add(b, "192.0.2.2", 24);
    let (ia, ib): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
    let rx = b.run_in_runtime(|| VrrpSocket::open("eth0", Family::Inet, Mode::Unicast { src: ib, peers: vec![ia] })).unwrap().unwrap();
    let k = Keepalived::start(
        a,
        "global_defs { router_id lvsd_test_uni
  vrrp_version 3 }
vrrp_instance VI_U {
  state MASTER
  interface eth0
  virtual_router_id 60
  priority 120
  advert_int 1
  unicast_src_ip 192.0.2.1
  unicast_peer { 192.0.2.2 }
  virtual_ipaddress { 192.0.2.130 }
}
",
    );
    let (p, meta) = recv(&rx, &k).await;
    assert_eq!((meta.src, meta.dst, meta.ttl), (ia, ib, 255));
    assert_eq!(&p[..4], &[0x31, 60, 120, 1]);
    assert_eq!(&p[8..12], &Ipv4Addr::new(192, 0, 2, 130).octets());
}
