//! Byte fixtures from keepalived 2.2.7: every advert in each capture decodes against the
//! settings in the `.conf` that produced it, and encoding those settings gives the same bytes.
//! The captures end with the priority-0 advert keepalived sends when it stops.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use lvsd::vrrp::packet::{self, Advert, Auth, DropReason, Endpoints, Expect, Family, RxMeta, Version};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vrrp").join(name)
}

/// A VRRP message as captured, with what the IP header said.
#[derive(Debug, Clone)]
struct Captured {
    meta: RxMeta,
    payload: Vec<u8>,
}

/// Minimal pcap (not pcapng) reader: classic header in either byte order, Ethernet (1) or
/// Linux cooked (113) link types, IPv4 and IPv6 without extension headers.
fn read_pcap(name: &str) -> Vec<Captured> {
    let data = std::fs::read(fixture(name)).expect("fixture exists");
    assert!(data.len() >= 24, "{name}: too short for a pcap header");
    let magic = [data[0], data[1], data[2], data[3]];
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("{name}: not a classic pcap file"),
    };
    let u32_at = |b: &[u8], i: usize| {
        let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le { u32::from_le_bytes(w) } else { u32::from_be_bytes(w) }
    };
    let linktype = u32_at(&data, 20);
    let link_len = match linktype {
        1 => 14,   // Ethernet: dst, src, ethertype
        113 => 16, // Linux cooked v1: ethertype in the last 2 bytes
        other => panic!("{name}: unsupported link type {other}"),
    };
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let incl = u32_at(&data, off + 8) as usize;
        let frame = &data[off + 16..off + 16 + incl];
        off += 16 + incl;
        let ethertype = u16::from_be_bytes([frame[link_len - 2], frame[link_len - 1]]);
        let ip = &frame[link_len..];
        match ethertype {
            0x0800 => {
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
                if ip[9] != packet::IPPROTO_VRRP {
                    continue;
                }
                let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
                let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
                out.push(Captured { meta: RxMeta { src, dst, ttl: ip[8] }, payload: ip[ihl..total].to_vec() });
            }
            0x86dd => {
                if ip[6] != packet::IPPROTO_VRRP {
                    continue;
                }
                let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
                let addr = |i: usize| {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(&ip[i..i + 16]);
                    IpAddr::V6(Ipv6Addr::from(o))
                };
                out.push(Captured { meta: RxMeta { src: addr(8), dst: addr(24), ttl: ip[7] }, payload: ip[40..40 + plen].to_vec() });
            }
            _ => {}
        }
    }
    out
}

/// The settings of one `vrrp_instance` that matter on the wire.
#[derive(Debug, Clone)]
struct Instance {
    version: Version,
    vrid: u8,
    priority: u8,
    advert_int: u16,
    auth: Auth,
    vips: Vec<IpAddr>,
    unicast_src: Option<IpAddr>,
    unicast_peers: Vec<IpAddr>,
}

/// Just enough of keepalived.conf: blocks, `vrrp_version`, and the instance keywords above.
fn read_conf(name: &str) -> BTreeMap<u8, Instance> {
    let text = std::fs::read_to_string(fixture(name)).expect("fixture exists");
    let spaced = text.replace('{', " { ").replace('}', " } ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let version = match tokens.iter().position(|t| *t == "vrrp_version") {
        Some(i) if tokens[i + 1] == "3" => Version::V3,
        _ => Version::V2,
    };
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] != "vrrp_instance" {
            i += 1;
            continue;
        }
        assert_eq!(tokens[i + 2], "{");
        let mut inst = Instance {
            version,
            vrid: 0,
            priority: 100,
            advert_int: 100,
            auth: Auth::None,
            vips: vec![],
            unicast_src: None,
            unicast_peers: vec![],
        };
        let mut depth = 1;
        let mut block = "";
        i += 3;
        while depth > 0 {
            let t = tokens[i];
            let next = tokens.get(i + 1).copied().unwrap_or("");
            match t {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    block = "";
                }
                "virtual_ipaddress" | "unicast_peer" | "authentication" => {
                    block = t;
                }
                "virtual_router_id" => inst.vrid = next.parse().unwrap(),
                "priority" => inst.priority = next.parse().unwrap(),
                "advert_int" => inst.advert_int = (next.parse::<f64>().unwrap() * 100.0).round() as u16,
                "auth_pass" => inst.auth = Auth::pass(next),
                "unicast_src_ip" => inst.unicast_src = Some(next.parse().unwrap()),
                _ if block == "virtual_ipaddress" => inst.vips.push(t.parse().unwrap()),
                _ if block == "unicast_peer" => inst.unicast_peers.push(t.parse().unwrap()),
                _ => {}
            }
            i += 1;
        }
        out.insert(inst.vrid, inst);
    }
    out
}

fn expect_for(inst: &Instance) -> Expect {
    let family = Family::of(&inst.vips[0]);
    Expect {
        version: inst.version,
        family,
        vrid: inst.vrid,
        auth: inst.auth.clone(),
        advert_int: inst.advert_int,
        addresses: inst.vips.clone(),
        owner: false,
        unicast: !inst.unicast_peers.is_empty(),
        // The receiver is the peer: it accepts adverts from the sender's unicast_src_ip.
        unicast_peers: inst.unicast_src.into_iter().collect(),
        relax_unicast_ttl: false,
        v3_checksum_as_v2: false,
    }
}

/// Decodes and re-encodes every advert of a capture; returns the priorities seen per VRID.
fn check_capture(pcap: &str, conf: &str) -> BTreeMap<u8, Vec<u8>> {
    let instances = read_conf(conf);
    let captured = read_pcap(pcap);
    assert!(!captured.is_empty(), "{pcap}: no VRRP packets found");
    let mut priorities: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    for (n, c) in captured.iter().enumerate() {
        let vrid = packet::peek_vrid(&c.payload).unwrap();
        let inst = instances.get(&vrid).unwrap_or_else(|| panic!("{pcap}#{n}: VRID {vrid} not in {conf}"));
        let rx = packet::decode(&c.payload, &c.meta, &expect_for(inst)).unwrap_or_else(|e| panic!("{pcap}#{n}: {e}"));
        let a = &rx.advert;
        assert!(!rx.address_mismatch);
        assert_eq!(a.version, inst.version, "{pcap}#{n}");
        assert_eq!(a.advert_int, inst.advert_int, "{pcap}#{n}");
        assert_eq!(a.addresses, inst.vips, "{pcap}#{n}: keepalived sends VIPs in config order");
        assert_eq!(a.auth, inst.auth, "{pcap}#{n}");
        if let Some(src) = inst.unicast_src {
            assert_eq!(c.meta.src, src);
            assert_eq!(vec![c.meta.dst], inst.unicast_peers);
        } else {
            assert_eq!(c.meta.dst, Family::of(&inst.vips[0]).multicast_group());
        }
        // Encode the same advert from the configuration alone: byte for byte the same.
        let ours = Advert {
            version: inst.version,
            vrid: inst.vrid,
            priority: a.priority,
            advert_int: inst.advert_int,
            auth: inst.auth.clone(),
            addresses: inst.vips.clone(),
        };
        let ep = Endpoints { src: c.meta.src, dst: c.meta.dst };
        assert_eq!(ours.encode(&ep, false).unwrap(), c.payload, "{pcap}#{n}: encode differs");
        priorities.entry(vrid).or_default().push(a.priority);
    }
    priorities
}

/// Every advert carries the configured priority, except the last: 0 when keepalived stops.
fn assert_ends_with_priority_zero(prios: &[u8], configured: u8) {
    let (last, rest) = prios.split_last().unwrap();
    assert_eq!(*last, 0, "last advert is the priority-0 handover");
    assert!(!rest.is_empty());
    assert!(rest.iter().all(|p| *p == configured), "{prios:?}");
}

#[test]
fn pcap_link_type_is_ethernet() {
    for f in ["keepalived-2.2.7-v2pass.pcap", "keepalived-2.2.7-v3.pcap", "keepalived-2.2.7-v3uni.pcap"] {
        let d = std::fs::read(fixture(f)).unwrap();
        assert_eq!(u32::from_le_bytes([d[20], d[21], d[22], d[23]]), 1, "{f}");
    }
}

#[test]
fn v2_pass_auth_two_vips() {
    let p = check_capture("keepalived-2.2.7-v2pass.pcap", "keepalived-2.2.7-v2pass.conf");
    assert_eq!(p.keys().copied().collect::<Vec<_>>(), vec![51]);
    assert_ends_with_priority_zero(&p[&51], 100);
}

#[test]
fn v3_ipv4_half_second_and_ipv6() {
    let p = check_capture("keepalived-2.2.7-v3.pcap", "keepalived-2.2.7-v3.conf");
    assert_eq!(p.keys().copied().collect::<Vec<_>>(), vec![52, 53]);
    assert_ends_with_priority_zero(&p[&52], 150);
    assert_ends_with_priority_zero(&p[&53], 200);
}

#[test]
fn v3_unicast() {
    let p = check_capture("keepalived-2.2.7-v3uni.pcap", "keepalived-2.2.7-v3uni.conf");
    assert_eq!(p.keys().copied().collect::<Vec<_>>(), vec![60]);
    assert_ends_with_priority_zero(&p[&60], 120);
}

/// The v3 IPv4 captures prove keepalived 2.2.7 puts the pseudo-header (with the real
/// destination, multicast or unicast) into the checksum: with `v3_checksum_as_v2` the same
/// bytes fail.
#[test]
fn keepalived_v3_ipv4_checksum_uses_the_pseudo_header() {
    let instances = read_conf("keepalived-2.2.7-v3uni.conf");
    for c in read_pcap("keepalived-2.2.7-v3uni.pcap") {
        let e = Expect { v3_checksum_as_v2: true, ..expect_for(&instances[&60]) };
        let err = packet::decode(&c.payload, &c.meta, &e).unwrap_err();
        assert_eq!(err.reason(), DropReason::Checksum);
    }
}

/// Real bytes with one thing wrong are dropped with the right reason.
#[test]
fn tampered_captures_are_dropped() {
    let instances = read_conf("keepalived-2.2.7-v2pass.conf");
    let e = expect_for(&instances[&51]);
    let c = &read_pcap("keepalived-2.2.7-v2pass.pcap")[0];
    let reason = |payload: &[u8], meta: &RxMeta| packet::decode(payload, meta, &e).unwrap_err().reason();

    assert_eq!(reason(&c.payload, &RxMeta { ttl: 64, ..c.meta }), DropReason::Ttl);
    let mut p = c.payload.clone();
    p[2] = 255; // priority 255 claim without fixing the checksum
    assert_eq!(reason(&p, &c.meta), DropReason::Checksum);
    let mut p = c.payload.clone();
    p[1] = 99;
    assert_eq!(reason(&p, &c.meta), DropReason::Checksum, "the checksum covers the VRID");
    assert_eq!(reason(&c.payload[..c.payload.len() - 1], &c.meta), DropReason::Length);

    let wrong_pass = Expect { auth: Auth::pass("2222"), ..e.clone() };
    assert_eq!(packet::decode(&c.payload, &c.meta, &wrong_pass).unwrap_err().reason(), DropReason::AuthFailure);
}
