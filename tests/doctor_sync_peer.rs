//! `lvsd doctor` hears the peer's connection sync messages (root only): two namespaces joined
//! by a veth, a hand-crafted IPVS sync message sent to 224.0.0.81:8848 from one, doctor's
//! listener in the other, beside a socket bound as the kernel's backup daemon binds its own
//! (address reuse, the group and port): both get every datagram. Every wait is bounded.

mod common;
use lvsd::director::sync::message::SyncVersion;
use lvsd::doctor::sync_peer;
use lvsd::net::netns::{Netns, privileged_or_skip, unique_name, veth};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const GROUP: &str = "224.0.0.81:8848";

/// A version 1 sync message (ip_vs_sync.c) with one IPv4 TCP connection
/// 198.51.100.7:40000 -> 203.0.113.10:80 via 198.51.100.21:80, ESTABLISHED, DR.
fn message(sync_id: u8) -> Vec<u8> {
    let mut m = vec![0, sync_id, 0, 44, 1, 1, 0, 0];
    m.extend_from_slice(&[0, 6, 0, 36, 0, 0, 0, 3, 0, 1]);
    m.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 80, 0, 0, 0, 0, 0, 0, 0x03, 0x84]);
    m.extend_from_slice(&[198, 51, 100, 7, 203, 0, 113, 10, 198, 51, 100, 21]);
    assert_eq!(m.len(), 44);
    m
}

/// The director (listener, 192.0.2.1 on eth0) and its peer (sender, 192.0.2.2 on eth0).
fn pair(prefix: &str) -> (Netns, Netns) {
    let director = Netns::create(&unique_name(&format!("{prefix}d"))).unwrap();
    let peer = Netns::create(&unique_name(&format!("{prefix}p"))).unwrap();
    veth(&director, "eth0", &peer, "eth0").unwrap();
    director.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]).unwrap();
    peer.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]).unwrap();
    (director, peer)
}

/// A UDP socket in the peer's namespace that sends to the group out of eth0.
fn sender(peer: &Netns) -> UdpSocket {
    peer.run(|| {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        s.set_multicast_if_v4(&Ipv4Addr::new(192, 0, 2, 2)).unwrap();
        s.set_multicast_ttl_v4(1).unwrap();
        s.bind(&"192.0.2.2:8848".parse::<SocketAddr>().unwrap().into()).unwrap();
        UdpSocket::from(s)
    })
    .unwrap()
}

/// Send `msg` every 100 ms until `stop` is set, at most 100 times (10 s).
fn keep_sending(sock: UdpSocket, msg: Vec<u8>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut sent = 0;
        for _ in 0..100 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if sock.send_to(&msg, GROUP).is_ok() {
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        sent
    })
}

#[test]
fn the_listener_gets_a_copy_beside_the_backup_daemons_socket() {
    if !privileged_or_skip("doctor_sync_peer") {
        return;
    }
    let (director, peer) = pair("dsp");
    let group: SocketAddr = GROUP.parse().unwrap();
    // First the socket the kernel's backup daemon would hold, then doctor's: both with
    // address reuse on the same group and port.
    let (daemon, doctor) = director.run(|| (sync_peer::open("eth0", group).unwrap(), sync_peer::open("eth0", group).unwrap())).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let t = keep_sending(sender(&peer), message(7), stop.clone());
    let heard = sync_peer::receive(&doctor, Duration::from_secs(5), &["192.0.2.1".parse().unwrap()]).unwrap();
    daemon.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 256];
    let daemon_got = daemon.recv_from(&mut buf);
    stop.store(true, Ordering::Relaxed);
    assert!(t.join().unwrap() > 0);
    let last = heard.last().expect("doctor's socket heard nothing");
    assert_eq!(last.from, "192.0.2.2:8848".parse().unwrap());
    assert!(!last.ours);
    let m = last.message.as_ref().unwrap();
    assert_eq!((m.version, m.sync_id, m.conns.len()), (SyncVersion::V1, 7, 1));
    assert_eq!(m.conns[0].vip, "203.0.113.10:80".parse().unwrap());
    let (n, from) = daemon_got.expect("the daemon's socket got nothing beside doctor's");
    assert_eq!((&buf[..n], from), (&message(7)[..], "192.0.2.2:8848".parse().unwrap()));
}

/// `lvsd doctor --json` in the director's namespace: the findings about the peer's sync
/// messages.
fn doctor(director: &Netns, policy: &std::path::Path) -> (Vec<Value>, Duration) {
    let started = std::time::Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", director.name(), common::lvsd_bin(), "doctor", "--json", "--node", "n", "--listen", "3"])
        .args(["--control", "/nonexistent/lvsd.sock", "-p", policy.to_str().unwrap()])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    let peer = |m: &str| m.starts_with("sync messages from") || m.starts_with("no sync message") || m.contains("not a sync message");
    let f = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "sync" && peer(f["message"].as_str().unwrap()))
        .cloned()
        .collect();
    (f, started.elapsed())
}

#[test]
fn doctor_reports_the_peers_sync_id() {
    if !privileged_or_skip("doctor_sync_peer") {
        return;
    }
    let (director, peer) = pair("dsq");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.lua");
    // No instance named: every director forwards, so the peer sends to this node whatever its
    // role (no lvsd runs here: the role is unknown anyway).
    std::fs::write(&policy, "lvsd.sync_daemon { interface = \"eth0\", id = 7 }\n").unwrap();

    for (id, level, text) in [(7, "PASS", "sync messages from 192.0.2.2 with syncid 7 (ours)"), (9, "FAIL", "with syncid 9, ours is 7")] {
        let stop = Arc::new(AtomicBool::new(false));
        let t = keep_sending(sender(&peer), message(id), stop.clone());
        let (f, took) = doctor(&director, &policy);
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0]["level"], level, "{f:#?}");
        assert!(f[0]["message"].as_str().unwrap().contains(text), "{f:#?}");
        eprintln!("syncid {id}: {level} after {took:?}");
    }

    // Silence: a bounded wait, then the causes.
    let (f, took) = doctor(&director, &policy);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["level"], "WARN", "{f:#?}");
    assert!(f[0]["message"].as_str().unwrap().contains("firewall drops UDP to port 8848"), "{f:#?}");
    eprintln!("silence: WARN after {took:?}");
}
