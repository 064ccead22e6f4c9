//! Byte-exact tests against what ipvsadm 1.31 (libnl 3.7) sent to, and received from, a
//! Debian 6.1 kernel. The fixtures are strace hex dumps made by `scripts/vm capture`.

use super::table::*;
use super::wire::{self, Request, cmd};
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Send,
    Recv,
}

/// One netlink message: header fields and payload.
#[derive(Debug, Clone)]
struct NlMsg {
    dir: Dir,
    ty: u16,
    flags: u16,
    payload: Vec<u8>,
}

fn fixture(name: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ipvs/ipvsadm");
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let f = p.file_name().unwrap().to_str().unwrap().to_string();
        if f.len() > 3 && f[3..] == format!("{name}.strace") {
            return std::fs::read_to_string(&p).unwrap();
        }
    }
    panic!("no fixture {name}");
}

/// Datagrams from an strace `-xx -e write=all -e read=all` log; MSG_PEEK reads are skipped.
fn datagrams(text: &str) -> Vec<(Dir, Vec<u8>)> {
    let mut out: Vec<(Dir, Vec<u8>)> = Vec::new();
    let mut cur: Option<Dir> = None;
    for line in text.lines() {
        if line.starts_with("sendmsg(") || line.starts_with("sendto(") {
            cur = Some(Dir::Send);
        } else if line.starts_with("recvmsg(") || line.starts_with("recvfrom(") {
            cur = if line.contains("MSG_PEEK") { None } else { Some(Dir::Recv) };
        } else if line.starts_with(" * ") {
            if let Some(d) = cur {
                out.push((d, Vec::new()));
            }
        } else if line.starts_with(" | ") && cur.is_some() {
            let hex = &line[10..line.len().min(59)];
            let v = &mut out.last_mut().unwrap().1;
            for tok in hex.split_whitespace() {
                v.push(u8::from_str_radix(tok, 16).unwrap());
            }
        }
    }
    out
}

fn messages(text: &str) -> Vec<NlMsg> {
    let mut out = Vec::new();
    for (dir, d) in datagrams(text) {
        let mut b = &d[..];
        while b.len() >= 16 {
            let len = u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize;
            let ty = u16::from_ne_bytes(b[4..6].try_into().unwrap());
            let flags = u16::from_ne_bytes(b[6..8].try_into().unwrap());
            out.push(NlMsg { dir, ty, flags, payload: b[16..len].to_vec() });
            b = &b[((len + 3) & !3).min(b.len())..];
        }
    }
    out
}

/// The IPVS request ipvsadm sent (the one that is not nlctrl's and not the GET_INFO probe).
fn sent(name: &str) -> NlMsg {
    let all: Vec<NlMsg> =
        messages(&fixture(name)).into_iter().filter(|m| m.dir == Dir::Send && m.ty >= 0x11 && m.payload[0] != cmd::GET_INFO).collect();
    assert_eq!(all.len(), 1, "{name}: expected one IPVS request, got {all:?}");
    all.into_iter().next().unwrap()
}

fn check(name: &str, req: Request) {
    let m = sent(name);
    assert_eq!(hex(&m.payload), hex(&req.genl_payload()), "{name}: payload differs");
    let want_flags = if req.dump { 0x305 } else { 0x5 };
    assert_eq!(m.flags, want_flags, "{name}: nlmsg flags");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

fn tcp(a: &str) -> ServiceKey {
    ServiceKey::Addr { protocol: Protocol::Tcp, addr: a.parse::<SocketAddr>().unwrap() }
}
fn udp(a: &str) -> ServiceKey {
    ServiceKey::Addr { protocol: Protocol::Udp, addr: a.parse::<SocketAddr>().unwrap() }
}
fn dk(a: &str) -> DestKey {
    DestKey(a.parse().unwrap())
}

fn conf(sched: &str, flags: u32, timeout: u32, netmask: u32, pe: Option<&str>) -> ServiceConf {
    ServiceConf { scheduler: sched.into(), flags, timeout, netmask, pe_name: pe.map(str::to_string) }
}
fn dest(forward: Forward, weight: u32) -> Dest {
    Dest::new(forward, weight)
}
const P: u32 = svc_flags::PERSISTENT;

#[test]
fn encode_services_like_ipvsadm() {
    let web = tcp("192.0.2.1:80");
    check("svc-new-v4-persistent", wire::new_service(&web, &conf("wrr", P, 50, 0xffff_ffff, None)));
    check("svc-set-v4", wire::set_service(&web, &conf("rr", P, 120, 0xffff_ff00, None)));
    check(
        "svc-new-v6-udp-schedflags",
        wire::new_service(&udp("[2001:db8::1]:53"), &conf("sh", svc_flags::SCHED1 | svc_flags::SCHED2, 0, 128, None)),
    );
    check(
        "svc-new-fwmark-v4",
        wire::new_service(&ServiceKey::Fwmark { mark: 7, family: Family::Inet }, &conf("wlc", P, 300, 0xffff_ff00, None)),
    );
    check(
        "svc-new-fwmark-v6",
        wire::new_service(&ServiceKey::Fwmark { mark: 8, family: Family::Inet6 }, &conf("mh", P | svc_flags::SCHED_MH_PORT, 60, 64, None)),
    );
    check("svc-new-v4-pe-sip", wire::new_service(&udp("192.0.2.2:5060"), &conf("rr", P, 60, 0xffff_ffff, Some("sip"))));
    check("svc-new-v4-ops", wire::new_service(&udp("192.0.2.3:53"), &conf("rr", svc_flags::ONEPACKET, 0, 0xffff_ffff, None)));
    let sctp = ServiceKey::Addr { protocol: Protocol::Sctp, addr: "192.0.2.4:9".parse().unwrap() };
    check("svc-new-sctp", wire::new_service(&sctp, &conf("lc", 0, 0, 0xffff_ffff, None)));
    check("svc-del", wire::del_service(&web));
    check("zero-all", wire::zero(None));
    check("zero-svc", wire::zero(Some(&web)));
    check("flush", wire::flush());
}

#[test]
fn encode_dests_like_ipvsadm() {
    let web = tcp("192.0.2.1:80");
    let mut d = dest(Forward::Dr, 5);
    d.u_threshold = 100;
    d.l_threshold = 10;
    check("dest-new-dr-thresholds", wire::new_dest(&web, &dk("198.51.100.1:80"), &d));
    check("dest-new-nat", wire::new_dest(&web, &dk("198.51.100.2:8080"), &dest(Forward::Nat, 1)));
    let mut gue = dest(Forward::Tun, 1);
    gue.tun_type = TunnelType::Gue;
    gue.tun_port = 6080;
    gue.tun_flags = 2; // remcsum
    check("dest-new-tun-gue", wire::new_dest(&web, &dk("198.51.100.3:80"), &gue));
    let mut gre = dest(Forward::Tun, 1);
    gre.tun_type = TunnelType::Gre;
    gre.tun_flags = 1; // csum
    check("dest-new-tun-gre", wire::new_dest(&web, &dk("198.51.100.4:80"), &gre));
    check("dest-new-v6", wire::new_dest(&udp("[2001:db8::1]:53"), &dk("[2001:db8::10]:53"), &dest(Forward::Dr, 2)));
    check(
        "dest-new-fwmark",
        wire::new_dest(&ServiceKey::Fwmark { mark: 7, family: Family::Inet }, &dk("198.51.100.5:0"), &dest(Forward::Dr, 3)),
    );
    check("dest-set", wire::set_dest(&web, &dk("198.51.100.1:80"), &dest(Forward::Dr, 7)));
    check("dest-del", wire::del_dest(&web, &dk("198.51.100.2:8080")));
}

#[test]
fn encode_config_and_daemons_like_ipvsadm() {
    check("timeout-get", wire::get_config());
    check("timeout-set", wire::set_config(&wire::Timeouts { tcp: 900, tcp_fin: 120, udp: 300 }));
    check("daemon-start-master", wire::new_daemon(&wire::SyncDaemon::new(wire::DaemonState::Master, "dummy0", 5)));
    check("daemon-start-backup", wire::new_daemon(&wire::SyncDaemon::new(wire::DaemonState::Backup, "dummy0", 5)));
    check("daemon-stop-master", wire::del_daemon(wire::DaemonState::Master));
    check("daemon-stop-backup", wire::del_daemon(wire::DaemonState::Backup));
    check("daemon-list", wire::get_daemons());
}

#[test]
fn encode_dumps_like_ipvsadm() {
    let m = messages(&fixture("list"));
    let sent: Vec<&NlMsg> = m.iter().filter(|m| m.dir == Dir::Send && m.ty >= 0x11).collect();
    assert_eq!(hex(&sent[0].payload), hex(&wire::get_info().genl_payload()));
    assert_eq!(hex(&sent[1].payload), hex(&wire::get_services().genl_payload()));
    assert_eq!(hex(&sent[2].payload), hex(&wire::get_dests(&tcp("192.0.2.1:80")).genl_payload()));
    assert_eq!(sent[2].flags, 0x305);
    let fw6 = ServiceKey::Fwmark { mark: 8, family: Family::Inet6 };
    assert_eq!(hex(&sent.last().unwrap().payload), hex(&wire::get_dests(&fw6).genl_payload()));
}

/// Decode every reply of `ipvsadm -L -n` into a table.
fn table_from(name: &str) -> (wire::Info, Table) {
    let mut info = None;
    let mut t = Table::default();
    let mut cur: Option<ServiceKey> = None;
    let mut keys = Vec::new();
    for m in messages(&fixture(name)) {
        if m.ty < 0x11 {
            continue;
        }
        match (m.dir, m.payload[0]) {
            (Dir::Recv, c) if c == cmd::SET_INFO => info = Some(wire::decode_info(&m.payload).unwrap()),
            (Dir::Recv, c) if c == cmd::NEW_SERVICE => {
                let (k, s) = wire::decode_service(&m.payload).unwrap();
                keys.push(k);
                t.services.insert(k, s);
            }
            (Dir::Send, c) if c == cmd::GET_DEST => {
                // ipvsadm asks for the services' dests in its own order; follow the request.
                let r = wire::parse_genl(&m.payload).unwrap();
                cur = Some(wire::decode_service_key(&r.attrs.get(0).unwrap().nested().unwrap()).unwrap());
            }
            (Dir::Recv, c) if c == cmd::NEW_DEST => {
                let k = cur.unwrap();
                let (dk, d) = wire::decode_dest(&m.payload, k.family()).unwrap();
                t.services.get_mut(&k).unwrap().dests.insert(dk, d);
            }
            _ => {}
        }
    }
    assert_eq!(keys.len(), t.services.len());
    (info.unwrap(), t)
}

#[test]
fn decode_list_replies() {
    let (info, t) = table_from("list");
    assert_eq!(info, wire::Info { version: 0x010201, conn_tab_size: 4096 });
    assert_eq!(t.services.len(), 7);
    let web = &t.services[&tcp("192.0.2.1:80")];
    assert_eq!(web.conf, conf("rr", P, 120, 0xffff_ff00, None));
    assert_eq!(web.dests.len(), 4);
    let d = &web.dests[&dk("198.51.100.1:80")];
    assert_eq!((d.forward, d.weight, d.u_threshold, d.l_threshold), (Forward::Dr, 7, 0, 0));
    let g = &web.dests[&dk("198.51.100.3:80")];
    assert_eq!((g.forward, g.tun_type, g.tun_port, g.tun_flags), (Forward::Tun, TunnelType::Gue, 6080, 2));
    let sip = &t.services[&udp("192.0.2.2:5060")];
    assert_eq!(sip.conf.pe_name.as_deref(), Some("sip"));
    let fw6 = &t.services[&ServiceKey::Fwmark { mark: 8, family: Family::Inet6 }];
    assert_eq!(fw6.conf, conf("mh", P | svc_flags::SCHED2, 60, 64, None));
    let v6 = &t.services[&udp("[2001:db8::1]:53")];
    assert_eq!(v6.dests[&dk("[2001:db8::10]:53")].weight, 2);
}

#[test]
fn decode_config_and_daemons() {
    let m = messages(&fixture("timeout-get"));
    let r = m.iter().rev().find(|m| m.dir == Dir::Recv && m.ty >= 0x11 && m.flags & 0x100 == 0).unwrap();
    assert_eq!(wire::decode_config(&r.payload).unwrap(), wire::Timeouts { tcp: 900, tcp_fin: 120, udp: 300 });
    let ds: Vec<wire::SyncDaemon> = messages(&fixture("daemon-list"))
        .iter()
        .filter(|m| m.dir == Dir::Recv && m.ty >= 0x11 && m.payload[0] == cmd::NEW_DAEMON)
        .map(|m| wire::decode_daemon(&m.payload).unwrap())
        .collect();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds[0].state, wire::DaemonState::Master);
    assert_eq!(ds[1].state, wire::DaemonState::Backup);
    assert_eq!((ds[0].interface.as_str(), ds[0].sync_id), ("dummy0", 5));
    assert_eq!(ds[0].mcast_group, Some("224.0.0.81".parse().unwrap()));
    assert_eq!((ds[0].mcast_port, ds[0].sync_maxlen, ds[0].mcast_ttl), (Some(8848), Some(1472), Some(1)));
}

fn printed(name: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ipvs/ipvsadm");
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let f = p.file_name().unwrap().to_str().unwrap().to_string();
        if f.len() > 3 && f[3..] == format!("{name}.out") {
            return std::fs::read_to_string(&p).unwrap();
        }
    }
    panic!("no output fixture {name}");
}

/// Decode the kernel's replies as captured and print them: the same bytes ipvsadm printed.
#[test]
fn decoded_replies_format_as_ipvsadm_printed_them() {
    use super::format::{self, Format};
    for (name, fmt) in [("list", Format::List), ("list-stats", Format::Stats), ("list-rate", Format::Rate)] {
        let (info, t) = table_from(name);
        let mut out = format::version_header(info.version, info.conn_tab_size);
        out.push_str(&format::table(&t, fmt));
        assert_eq!(out, printed(name), "{name}");
    }
}

/// The datagram ipvsadm sent with its IPVS request (not nlctrl's, not the GET_INFO probe).
fn sent_datagram(name: &str) -> Vec<u8> {
    let all: Vec<Vec<u8>> = datagrams(&fixture(name))
        .into_iter()
        .filter(|(d, b)| *d == Dir::Send && b.len() > 16 && u16::from_ne_bytes([b[4], b[5]]) >= 0x11 && b[16] != cmd::GET_INFO)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(all.len(), 1, "{name}: expected one IPVS datagram");
    all.into_iter().next().unwrap()
}

#[test]
fn encode_whole_messages_like_ipvsadm() {
    let web = tcp("192.0.2.1:80");
    for (name, req) in [
        ("dest-new-nat", wire::new_dest(&web, &dk("198.51.100.2:8080"), &dest(Forward::Nat, 1))),
        ("svc-new-v4-persistent", wire::new_service(&web, &conf("wrr", P, 50, 0xffff_ffff, None))),
        ("dest-del", wire::del_dest(&web, &dk("198.51.100.2:8080"))),
    ] {
        let theirs = sent_datagram(name);
        let family = u16::from_ne_bytes([theirs[4], theirs[5]]);
        let seq = u32::from_ne_bytes(theirs[8..12].try_into().unwrap());
        let mut ours = Vec::new();
        req.encode(family, seq, true, &mut ours);
        assert_eq!(ours.len(), req.nl_len().next_multiple_of(4), "{name}");
        // Everything but the port id, which libnl fills in and the kernel ignores.
        assert_eq!(hex(&ours[..12]), hex(&theirs[..12]), "{name}: header");
        assert_eq!(hex(&ours[16..]), hex(&theirs[16..]), "{name}: payload");
    }
}

#[test]
fn a_batch_is_messages_back_to_back_each_with_its_sequence_number() {
    let web = tcp("192.0.2.1:80");
    let reqs = [
        wire::new_service(&web, &conf("rr", 0, 0, 0xffff_ffff, None)),
        wire::new_dest(&web, &dk("198.51.100.1:80"), &dest(Forward::Dr, 1)),
    ];
    let mut buf = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        r.encode(0x20, 100 + i as u32, i + 1 == reqs.len(), &mut buf);
    }
    let mut off = 0;
    for (i, r) in reqs.iter().enumerate() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
        assert_eq!(len, r.nl_len());
        let flags = u16::from_ne_bytes([buf[off + 6], buf[off + 7]]);
        // Only the last asks for an answer to a success.
        assert_eq!(flags, if i + 1 == reqs.len() { 0x5 } else { 0x1 }, "REQUEST (| ACK)");
        assert_eq!(u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap()), 100 + i as u32);
        assert_eq!(hex(&buf[off + 16..off + len]), hex(&r.genl_payload()));
        off += len.next_multiple_of(4);
    }
    assert_eq!(off, buf.len());
}

/// Every datagram the kernel sent ipvsadm, split by `parse_replies`.
fn replies(name: &str) -> Vec<Vec<u8>> {
    datagrams(&fixture(name)).into_iter().filter(|(d, _)| *d == Dir::Recv).map(|(_, b)| b).collect()
}

#[test]
fn parse_the_kernels_answers_as_captured() {
    // `ipvsadm -L -n`: a services dump (7 services, then NLMSG_DONE with errno 0) and one
    // destinations dump per service.
    let mut services = 0;
    let mut dests = 0;
    let mut done = 0;
    for d in replies("list") {
        for m in wire::parse_replies(&d).unwrap() {
            match m {
                // Type 0x10 is nlctrl (resolving "IPVS"); IPVS's id comes after it.
                wire::NlReply::Data { ty, payload, .. } if ty > 0x10 && payload[0] == cmd::NEW_SERVICE => services += 1,
                wire::NlReply::Data { ty, payload, .. } if ty > 0x10 && payload[0] == cmd::NEW_DEST => dests += 1,
                wire::NlReply::Done { errno, .. } => {
                    assert_eq!(errno, 0);
                    done += 1
                }
                _ => {}
            }
        }
    }
    assert_eq!(services, 7);
    assert_eq!(dests, table_from("list").1.dest_count());
    assert_eq!(done, 1 + 7, "one DONE per dump");
    // A write's ack: NLMSG_ERROR with error 0 and the request's sequence number.
    let theirs = sent_datagram("dest-del");
    let seq = u32::from_ne_bytes(theirs[8..12].try_into().unwrap());
    let answers = replies("dest-del");
    let acks: Vec<wire::NlReply> = answers.iter().flat_map(|d| wire::parse_replies(d).unwrap()).filter(|m| m.seq() == seq).collect();
    assert!(acks.contains(&wire::NlReply::Ack { seq, errno: 0 }), "{acks:?}");
}

#[test]
fn parse_errors_and_batches_of_answers() {
    // Two answers in one datagram: an ack, then EEXIST (-17) for the next request, as the
    // kernel sends them with NETLINK_CAP_ACK (the request's header only).
    let mut d = Vec::new();
    for (seq, err) in [(7u32, 0i32), (8, -17)] {
        d.extend_from_slice(&36u32.to_ne_bytes());
        d.extend_from_slice(&wire::nlmsg::ERROR.to_ne_bytes());
        d.extend_from_slice(&0x100u16.to_ne_bytes());
        d.extend_from_slice(&seq.to_ne_bytes());
        d.extend_from_slice(&0u32.to_ne_bytes());
        d.extend_from_slice(&err.to_ne_bytes());
        d.extend_from_slice(&[0u8; 16]);
    }
    assert_eq!(wire::parse_replies(&d).unwrap(), vec![wire::NlReply::Ack { seq: 7, errno: 0 }, wire::NlReply::Ack { seq: 8, errno: 17 }]);
    use super::attrs::DecodeError;
    assert_eq!(wire::parse_replies(&d[..10]), Err(DecodeError::Truncated("netlink header")));
    assert_eq!(wire::parse_replies(&d[..30]), Err(DecodeError::Truncated("netlink message")));
    let mut short = d[..16].to_vec();
    short[0] = 16;
    assert_eq!(wire::parse_replies(&short), Err(DecodeError::Truncated("netlink error")));
    // An old kernel's NLMSG_DONE without a body; a NOOP is skipped.
    let mut old = d[..16].to_vec();
    old[0] = 16;
    old[4..6].copy_from_slice(&wire::nlmsg::DONE.to_ne_bytes());
    let mut noop = old.clone();
    noop[4..6].copy_from_slice(&wire::nlmsg::NOOP.to_ne_bytes());
    noop.extend_from_slice(&old);
    assert_eq!(wire::parse_replies(&noop).unwrap(), vec![wire::NlReply::Done { seq: 7, errno: 0 }]);
    let mut zero = d.clone();
    zero[0..4].copy_from_slice(&0u32.to_ne_bytes());
    assert_eq!(wire::parse_replies(&zero), Err(DecodeError::Truncated("netlink message")));
}

/// The question ipvsadm (libnl's genl_ctrl_resolve) asks nlctrl is ours byte for byte, and
/// the id read from nlctrl's answer is the one ipvsadm then sent its IPVS request to.
#[test]
fn the_family_is_resolved_as_libnl_resolves_it() {
    let all = messages(&fixture("svc-new-v4-persistent"));
    let asked = all.iter().find(|m| m.dir == Dir::Send && m.ty == wire::GENL_ID_CTRL).expect("a question to nlctrl");
    // libnl numbers the question's version 1, as we do; the attributes must be the same.
    assert_eq!(hex(&asked.payload), hex(&wire::get_family(wire::FAMILY_NAME).genl_payload()));
    let answer = all.iter().find(|m| m.dir == Dir::Recv && m.ty == wire::GENL_ID_CTRL).expect("nlctrl's answer");
    let id = wire::decode_family_id(&answer.payload).unwrap();
    assert!(all.iter().any(|m| m.dir == Dir::Send && m.ty == id), "no request went to family {id}");
    assert!(wire::decode_family_id(&answer.payload[..8]).is_err());
}
