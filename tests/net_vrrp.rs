//! Raw VRRP sockets between network namespaces on a bridge (root only).

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

use common::lan::Lan;
use lvsd::net::addr::{self, Vip};
use lvsd::net::netns::{Netns, privileged_or_skip};
use lvsd::net::vrrp_socket::{RECV_BATCH, RecvBuffers, VRRP_GROUP_V4, VRRP_GROUP_V6};
use lvsd::net::{Family, Mode, RecvMeta, VrrpSocket, link};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const WAIT: Duration = Duration::from_secs(5);

fn add(ns: &Netns, ip: &str, prefix: u8) {
    let vip = Vip::host(ip.parse().unwrap(), "eth0").with_prefix(prefix);
    assert!(ns.run(|| addr::add_address(&vip)).unwrap().unwrap());
}

/// Poll (bounded) until the interface has a usable IPv6 link-local address.
fn link_local(ns: &Netns) -> Ipv6Addr {
    let start = Instant::now();
    loop {
        let ll = ns.run(|| addr::link_local_ipv6(link::ifindex("eth0").unwrap())).unwrap().unwrap();
        if let Some(a) = ll {
            return a;
        }
        assert!(start.elapsed() < WAIT, "no link-local address on eth0 in {}", ns.name());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn open(ns: &Netns, family: Family, mode: Mode) -> VrrpSocket {
    ns.run_in_runtime(|| VrrpSocket::open("eth0", family, mode)).unwrap().unwrap()
}

async fn recv(sock: &VrrpSocket) -> (Vec<u8>, RecvMeta) {
    tokio::time::timeout(WAIT, sock.recv()).await.expect("no packet within 5 s").unwrap()
}

async fn assert_silent(sock: &VrrpSocket) {
    if let Ok(r) = tokio::time::timeout(Duration::from_millis(300), sock.recv()).await {
        panic!("unexpected packet on {}: {r:?}", sock.ifname());
    }
}

fn eth0_index(ns: &Netns) -> u32 {
    ns.run(|| link::ifindex("eth0")).unwrap().unwrap()
}

#[tokio::test]
async fn multicast_v4_arrives_with_ttl_255_and_addresses() {
    if !privileged_or_skip("multicast_v4_arrives_with_ttl_255_and_addresses") {
        return;
    }
    let lan = Lan::new("lvv4", 2).unwrap();
    let (a, b) = (lan.host(0), lan.host(1));
    add(a, "192.0.2.1", 24);
    add(b, "192.0.2.2", 24);

    let rx = open(b, Family::Inet, Mode::Multicast);
    let tx = open(a, Family::Inet, Mode::Multicast);
    assert_eq!(tx.source(), "192.0.2.1".parse::<IpAddr>().unwrap());
    assert_eq!(tx.destinations(), &[IpAddr::V4(VRRP_GROUP_V4)]);

    let payload = [0x21, 0x33, 0x64, 0x01, 0x00, 0x01, 0xaa, 0xbb, 192, 0, 2, 100];
    tx.send(&payload).unwrap();
    let (got, meta) = recv(&rx).await;
    assert_eq!(got, payload, "payload without the IP header");
    assert_eq!(meta, RecvMeta { src: "192.0.2.1".parse().unwrap(), dst: IpAddr::V4(VRRP_GROUP_V4), ttl: 255, ifindex: eth0_index(b) });
    // Multicast loop is off: the sender does not hear itself.
    assert_silent(&tx).await;

    // The TTL is reported as received, not assumed: a sender with TTL 1 shows 1.
    let raw = a
        .run(|| {
            let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
            s.bind_device(Some(b"eth0")).unwrap();
            s.set_multicast_ttl_v4(1).unwrap();
            s
        })
        .unwrap();
    raw.send_to(b"ttl-one", &SockAddr::from(SocketAddrV4::new(VRRP_GROUP_V4, 0))).unwrap();
    let (got, meta) = recv(&rx).await;
    assert_eq!(got, b"ttl-one");
    assert_eq!(meta.ttl, 1);
}

/// Read with `recv_queued` as the heartbeat does (wait for readiness, then read what is
/// queued) until `want` datagrams have come; bounded by [`WAIT`].
async fn read_queued(rx: &VrrpSocket, bufs: &mut RecvBuffers, want: usize) -> Vec<Vec<u8>> {
    let end = Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < want {
        let left = end.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, std::future::poll_fn(|cx| rx.poll_recv_ready(cx)))
            .await
            .unwrap_or_else(|_| panic!("{} of {want} datagrams within 5 s", got.len()));
        let n = rx.recv_queued(bufs).unwrap();
        assert!(n <= RECV_BATCH);
        for i in 0..n {
            let (bytes, meta) = rx.packet_in(bufs, i).unwrap().unwrap();
            assert_eq!((meta.src, meta.ttl), ("192.0.2.1".parse().unwrap(), 255));
            got.push(bytes.to_vec());
        }
        assert!(rx.packet_in(bufs, n).is_none());
    }
    got
}

#[tokio::test]
async fn queued_datagrams_are_read_in_batches_and_later_ones_wake_the_reader() {
    if !privileged_or_skip("queued_datagrams_are_read_in_batches_and_later_ones_wake_the_reader") {
        return;
    }
    let lan = Lan::new("lvqb", 2).unwrap();
    let (a, b) = (lan.host(0), lan.host(1));
    add(a, "192.0.2.1", 24);
    add(b, "192.0.2.2", 24);
    let rx = open(b, Family::Inet, Mode::Multicast);
    let tx = open(a, Family::Inet, Mode::Multicast);
    let payload = |i: u8| vec![0x31, 0x33, 0x64, 0x01, 0x00, 0x01, 0xaa, i, 192, 0, 2, 100];
    let mut bufs = RecvBuffers::default();

    // More than one batch: all of them, in order.
    let n = RECV_BATCH as u8 + 3;
    for i in 0..n {
        tx.send(&payload(i)).unwrap();
    }
    assert_eq!(read_queued(&rx, &mut bufs, n.into()).await, (0..n).map(payload).collect::<Vec<_>>());
    // The queue is empty; a datagram that arrives after a read that emptied it is seen.
    assert_eq!(rx.recv_queued(&mut bufs).unwrap(), 0);
    for i in [100, 101] {
        tx.send(&payload(i)).unwrap();
        assert_eq!(read_queued(&rx, &mut bufs, 1).await, vec![payload(i)]);
    }
}

#[tokio::test]
async fn multicast_v6_arrives_from_link_local_with_hop_limit_255() {
    if !privileged_or_skip("multicast_v6_arrives_from_link_local_with_hop_limit_255") {
        return;
    }
    let lan = Lan::new("lvv6", 2).unwrap();
    let (a, b) = (lan.host(0), lan.host(1));
    let a_ll = link_local(a);
    link_local(b);
    // A global address on the sender must not be used as the source.
    add(a, "2001:db8::1", 64);

    let rx = open(b, Family::Inet6, Mode::Multicast);
    let tx = open(a, Family::Inet6, Mode::Multicast);
    assert_eq!(tx.source(), IpAddr::V6(a_ll));

    let payload = [0x31, 0x33, 0x64, 0x01, 0x00, 0x64, 0x12, 0x34];
    tx.send(&payload).unwrap();
    let (got, meta) = recv(&rx).await;
    assert_eq!(got, payload);
    assert_eq!(meta, RecvMeta { src: IpAddr::V6(a_ll), dst: IpAddr::V6(VRRP_GROUP_V6), ttl: 255, ifindex: eth0_index(b) });
    assert_silent(&tx).await;

    // The hop limit is reported as received.
    let raw = a
        .run(|| {
            let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(112))).unwrap();
            s.bind_device(Some(b"eth0")).unwrap();
            s.set_multicast_hops_v6(7).unwrap();
            s.set_multicast_if_v6(link::ifindex("eth0").unwrap()).unwrap();
            s
        })
        .unwrap();
    let dst = SocketAddrV6::new(VRRP_GROUP_V6, 0, 0, eth0_index(a));
    raw.send_to(b"hops-7", &SockAddr::from(dst)).unwrap();
    let (got, meta) = recv(&rx).await;
    assert_eq!(got, b"hops-7");
    assert_eq!(meta.ttl, 7);
}

#[tokio::test]
async fn unicast_v4_reaches_each_peer_with_its_own_payload() {
    if !privileged_or_skip("unicast_v4_reaches_each_peer_with_its_own_payload") {
        return;
    }
    let lan = Lan::new("lvu4", 3).unwrap();
    let ips = ["192.0.2.1", "192.0.2.2", "192.0.2.3"];
    for (h, ip) in lan.hosts.iter().zip(ips) {
        add(h, ip, 24);
    }
    let ip = |i: usize| ips[i].parse::<IpAddr>().unwrap();
    let mut tx = open(lan.host(0), Family::Inet, Mode::Unicast { src: ip(0), peers: vec![ip(1), ip(2)] });
    let rx1 = open(lan.host(1), Family::Inet, Mode::Unicast { src: ip(1), peers: vec![ip(0)] });
    let rx2 = open(lan.host(2), Family::Inet, Mode::Unicast { src: ip(2), peers: vec![ip(0)] });

    tx.send_each(|dst| format!("for {dst}").into_bytes()).unwrap();
    for (rx, i) in [(&rx1, 1), (&rx2, 2)] {
        let (got, meta) = recv(rx).await;
        assert_eq!(got, format!("for {}", ip(i)).into_bytes());
        assert_eq!(meta.src, ip(0));
        assert_eq!(meta.dst, ip(i));
        assert_eq!(meta.ttl, 255);
    }

    // Same bytes to every peer with send().
    tx.send(b"same").unwrap();
    assert_eq!(recv(&rx1).await.0, b"same");
    assert_eq!(recv(&rx2).await.0, b"same");

    // Peers replaced on reload: only the remaining peer hears the next advert.
    tx.set_unicast_peers(vec![ip(2)]).unwrap();
    assert_eq!(tx.destinations(), &[ip(2)]);
    tx.send(b"only-two").unwrap();
    assert_eq!(recv(&rx2).await.0, b"only-two");
    assert_silent(&rx1).await;
    assert!(tx.set_unicast_peers(vec![]).is_err());
    assert!(tx.set_unicast_peers(vec!["2001:db8::9".parse().unwrap()]).is_err());
}

#[tokio::test]
async fn unicast_v6_arrives_from_configured_source() {
    if !privileged_or_skip("unicast_v6_arrives_from_configured_source") {
        return;
    }
    let lan = Lan::new("lvu6", 2).unwrap();
    let (a, b) = (lan.host(0), lan.host(1));
    link_local(a);
    link_local(b);
    add(a, "2001:db8::1", 64);
    add(b, "2001:db8::2", 64);
    let (ia, ib): (IpAddr, IpAddr) = ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
    let tx = open(a, Family::Inet6, Mode::Unicast { src: ia, peers: vec![ib] });
    let rx = open(b, Family::Inet6, Mode::Unicast { src: ib, peers: vec![ia] });
    // Neighbour discovery runs first; the packet still arrives within the bound.
    tx.send(b"v6-unicast").unwrap();
    let (got, meta) = recv(&rx).await;
    assert_eq!(got, b"v6-unicast");
    assert_eq!(meta, RecvMeta { src: ia, dst: ib, ttl: 255, ifindex: eth0_index(b) });
}

#[tokio::test]
async fn open_reports_bad_configuration() {
    if !privileged_or_skip("open_reports_bad_configuration") {
        return;
    }
    let lan = Lan::new("lvbad", 1).unwrap();
    let a = lan.host(0);
    // No IPv4 address yet: multicast has no source.
    let e = a.run_in_runtime(|| VrrpSocket::open("eth0", Family::Inet, Mode::Multicast)).unwrap().unwrap_err();
    assert!(e.to_string().contains("no primary IPv4 address"), "{e}");
    let e = a
        .run_in_runtime(|| {
            VrrpSocket::open(
                "eth0",
                Family::Inet,
                Mode::Unicast { src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), peers: vec!["2001:db8::2".parse().unwrap()] },
            )
        })
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("does not belong"), "{e}");
    let e = a.run_in_runtime(|| VrrpSocket::open("nope0", Family::Inet, Mode::Multicast)).unwrap().unwrap_err();
    assert!(e.to_string().contains("nope0"), "{e}");
}
