//! lvsd's VRRP on the wire: hostile and malformed adverts are dropped and counted and never
//! change state; gratuitous ARP / unsolicited NA follow each takeover with the configured
//! repeat count.

mod common;
use common::Daemon;
use common::lan::Lan;
use lvsd::net::netns::privileged_or_skip;
use lvsd::vrrp::packet::{Advert, Auth, Endpoints, Version};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

const POLICY: &str = r#"
lvsd.vrrp "VI_1" { interface = "eth0", vrid = 51, priority = 100, state = "master",
  auth_pass = "1111", vips = { "192.0.2.100/24" } }
lvsd.vrrp "VI_OWN" { interface = "eth0", vrid = 60, priority = 255,
  auth_pass = "1111", vips = { "192.0.2.60/24" } }
"#;

fn advert(vrid: u8, priority: u8, auth: Auth, vip: &str) -> Vec<u8> {
    let a = Advert { version: Version::V2, vrid, priority, advert_int: 100, auth, addresses: vec![vip.parse().unwrap()] };
    let ep = Endpoints { src: "192.0.2.2".parse().unwrap(), dst: "224.0.0.18".parse().unwrap() };
    a.encode(&ep, false).unwrap()
}

/// Send raw VRRP payloads from the attacker's namespace with a chosen TTL.
fn send(lan: &Lan, packets: Vec<(Vec<u8>, u32)>) {
    lan.host(1)
        .run(move || {
            let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
            s.bind_device(Some(b"eth0")).unwrap();
            for (bytes, ttl) in packets {
                s.set_multicast_ttl_v4(ttl).unwrap();
                let dst: SocketAddr = "224.0.0.18:0".parse().unwrap();
                s.send_to(&bytes, &dst.into()).unwrap();
            }
        })
        .unwrap();
}

#[test]
fn hostile_adverts_are_dropped_counted_and_change_nothing() {
    if !privileged_or_skip("hostile_adverts_are_dropped_counted_and_change_nothing") {
        return;
    }
    let lan = Lan::new("lvh", 2).unwrap();
    lan.host(0).ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]).unwrap();
    lan.host(1).ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]).unwrap();
    let d = Daemon::start_in(Some(lan.host(0).name()), POLICY, "lvs01", &[]);
    d.wait_for(|d| d.vrrp_state("VI_1") == "master" && d.vrrp_state("VI_OWN") == "master", "both master");
    let transitions = |d: &Daemon| d.events("vrrp").len();
    let before = transitions(&d);

    // Each would make VI_1 step down (priority 254 > 100) if it were accepted.
    let good = advert(51, 254, Auth::pass("1111"), "192.0.2.100");
    let mut bad_sum = good.clone();
    bad_sum[6] ^= 0xff;
    let mut bad_version = good.clone();
    bad_version[0] = 0x11;
    let mut bad_type = good.clone();
    bad_type[0] = 0x22;
    let mut bad_count = good.clone();
    bad_count[3] = 4;
    let mut bad_interval = advert(51, 254, Auth::pass("1111"), "192.0.2.100");
    bad_interval[5] = 3;
    send(
        &lan,
        vec![
            (good.clone(), 64),                                        // TTL must be 255
            (bad_sum, 255),                                            // checksum
            (bad_version, 255),                                        // version 1
            (bad_type, 255),                                           // type 2
            (bad_count, 255),                                          // address count vs length
            (good[..6].to_vec(), 255),                                 // truncated
            (advert(51, 254, Auth::pass("2222"), "192.0.2.100"), 255), // wrong password
            (advert(51, 254, Auth::None, "192.0.2.100"), 255),         // wrong auth type
            (bad_interval, 255),                                       // advert interval mismatch (checksum also off)
            (advert(52, 254, Auth::pass("1111"), "192.0.2.100"), 255), // a VRID we do not run
            (advert(60, 255, Auth::pass("1111"), "192.0.2.60"), 255),  // priority 255 for addresses we own
        ],
    );
    d.wait_for(
        |d| {
            let st = d.status();
            let v1 = st["vrrp"].as_array().unwrap().iter().find(|v| v["name"] == "VI_1").unwrap()["dropped"].clone();
            v1.as_object().map(|m| m.values().filter_map(|x| x.as_u64()).sum::<u64>()).unwrap_or(0) >= 9
        },
        "the drops to be counted",
    );
    std::thread::sleep(Duration::from_millis(300));
    let st = d.status();
    let find = |n: &str| st["vrrp"].as_array().unwrap().iter().find(|v| v["name"] == n).unwrap().clone();
    let v1 = find("VI_1");
    let dropped = v1["dropped"].as_object().unwrap();
    for reason in ["ttl", "checksum", "version", "type", "truncated", "auth_failure", "auth_type", "vrid"] {
        assert!(dropped.get(reason).and_then(|x| x.as_u64()).unwrap_or(0) >= 1, "no '{reason}' drop counted: {v1}");
    }
    assert_eq!(v1["state"], "master", "{v1}");
    let own = find("VI_OWN");
    assert!(own["dropped"]["local_owner"].as_u64().unwrap_or(0) >= 1, "{own}");
    assert_eq!(own["state"], "master");
    assert_eq!(transitions(&d), before, "no state change from any of them");
    // And a well-formed, higher-priority advert does move VI_1: the test could fail.
    send(&lan, vec![(good, 255)]);
    d.wait_for(|d| d.vrrp_state("VI_1") == "backup", "a valid advert is obeyed");
}

fn count_lines(out: &[u8], needle: &str) -> usize {
    String::from_utf8_lossy(out).lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn gratuitous_arp_and_na_after_takeover() {
    if !privileged_or_skip("gratuitous_arp_and_na_after_takeover") {
        return;
    }
    let lan = Lan::new("lvg", 2).unwrap();
    lan.host(0).ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]).unwrap();
    lan.host(1).ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]).unwrap();
    let src = r#"
lvsd.vrrp "V4" { interface = "eth0", vrid = 51, version = 3, advert_int = 0.1, vips = { "192.0.2.100/24" },
  garp = { master_delay = 1, master_repeat = 3 } }
lvsd.vrrp "V6" { interface = "eth0", vrid = 51, version = 3, advert_int = 0.1, vips = { "2001:db8::100" },
  garp = { master_delay = 1, master_repeat = 3 } }
"#;
    // Capture on the other host while lvsd becomes master: one burst of 3 at takeover, a
    // second burst of 3 master_delay (1 s) later.
    let cap = Command::new("ip")
        .args(["netns", "exec", lan.host(1).name(), "timeout", "3", "tcpdump", "-i", "eth0", "-n", "-l", "arp or icmp6"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(300));
    let d = Daemon::start_in(Some(lan.host(0).name()), src, "lvs01", &[]);
    d.wait_for(|d| d.vrrp_state("V4") == "master" && d.vrrp_state("V6") == "master", "master");
    let out = cap.wait_with_output().unwrap().stdout;
    let text = String::from_utf8_lossy(&out);
    assert_eq!(count_lines(&out, "Request who-has 192.0.2.100 tell 192.0.2.100"), 6, "two bursts of 3 GARPs:\n{text}");
    assert_eq!(count_lines(&out, "neighbor advertisement, tgt is 2001:db8::100"), 6, "two bursts of 3 NAs:\n{text}");
}
