//! Text output in the exact formats of `ipvsadm -L -n`, `--stats` and `--rate`.
//!
//! Column widths and number formatting follow ipvsadm's `print_title`,
//! `print_service_entry` and `print_largenum`.

use super::table::{Dest, DestKey, Family, Forward, Service, ServiceKey, Table, TunnelType, svc_flags};
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `ipvsadm -L -n`
    List,
    /// `ipvsadm -L -n --stats`
    Stats,
    /// `ipvsadm -L -n --rate`
    Rate,
}

/// "IP Virtual Server version 1.2.1 (size=4096)"
pub fn version_header(version: u32, size: u32) -> String {
    format!("IP Virtual Server version {}.{}.{} (size={})\n", (version >> 16) & 0xff, (version >> 8) & 0xff, version & 0xff, size)
}

pub fn title(fmt: Format) -> &'static str {
    match fmt {
        Format::List => "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        Format::Stats => "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n",
        Format::Rate => "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n",
    }
}

/// `addr:port` numerically; IPv6 in brackets.
pub fn addr_port(a: &SocketAddr) -> String {
    match a.ip() {
        IpAddr::V4(v4) => format!("{}:{}", v4, a.port()),
        IpAddr::V6(v6) => format!("[{}]:{}", v6, a.port()),
    }
}

/// The service column: "TCP  192.0.2.1:80", "FWM  1", "FWM  1 IPv6".
pub fn service_name(key: &ServiceKey) -> String {
    match key {
        // ipvsadm pads the protocol name to four columns ("TCP  ", "SCTP ").
        ServiceKey::Addr { protocol, addr } => format!("{:<4} {}", protocol.ipvsadm_name(), addr_port(addr)),
        ServiceKey::Fwmark { mark, family: Family::Inet } => format!("FWM  {mark}"),
        ServiceKey::Fwmark { mark, family: Family::Inet6 } => format!("FWM  {mark} IPv6"),
    }
}

pub fn dest_name(d: &DestKey) -> String {
    addr_port(&d.0)
}

/// ipvsadm's `print_largenum` without FMT_EXACT.
fn largenum(out: &mut String, i: u64) {
    let _ = if i < 100_000_000 {
        write!(out, "{i:>9}")
    } else if i < 1_000_000_000 {
        write!(out, "{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        write!(out, "{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        write!(out, "{:>8}G", i / 1_000_000_000)
    } else {
        write!(out, "{:>8}T", i / 1_000_000_000_000)
    };
}

/// Scheduler flag names as ipvsadm prints them inside parentheses.
fn sched_flag_names(sched: &str, flags: u32) -> String {
    let mut names: Vec<&str> = Vec::new();
    match sched {
        "sh" => {
            if flags & svc_flags::SCHED1 != 0 {
                names.push("sh-fallback");
            }
            if flags & svc_flags::SCHED2 != 0 {
                names.push("sh-port");
            }
        }
        "mh" => {
            if flags & svc_flags::SCHED1 != 0 {
                names.push("mh-fallback");
            }
            if flags & svc_flags::SCHED2 != 0 {
                names.push("mh-port");
            }
        }
        _ => {
            if flags & svc_flags::SCHED1 != 0 {
                names.push("flag-1");
            }
            if flags & svc_flags::SCHED2 != 0 {
                names.push("flag-2");
            }
        }
    }
    if flags & svc_flags::SCHED3 != 0 {
        names.push("flag-3");
    }
    names.join(",")
}

pub fn service_line(out: &mut String, key: &ServiceKey, svc: &Service, fmt: Format) {
    let name = service_name(key);
    let s = &svc.stats;
    match fmt {
        Format::Stats => {
            let _ = write!(out, "{name:<33}");
            for v in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                largenum(out, v);
            }
        }
        Format::Rate => {
            let _ = write!(out, "{name:<33}");
            for v in [s.cps, s.inpps, s.outpps, s.inbps, s.outbps] {
                largenum(out, v);
            }
        }
        Format::List => {
            let c = &svc.conf;
            let _ = write!(out, "{} {}", name, c.scheduler);
            if c.flags & (svc_flags::SCHED1 | svc_flags::SCHED2 | svc_flags::SCHED3) != 0 {
                let _ = write!(out, " ({})", sched_flag_names(&c.scheduler, c.flags));
            }
            if c.flags & svc_flags::ONEPACKET != 0 {
                out.push_str(" ops");
            }
            if c.persistent() {
                let _ = write!(out, " persistent {}", c.timeout);
                match key.family() {
                    Family::Inet if c.netmask != 0xffff_ffff => {
                        let _ = write!(out, " mask {}", Ipv4Addr::from(c.netmask));
                    }
                    Family::Inet6 if c.netmask != 128 => {
                        let _ = write!(out, " mask {}", c.netmask);
                    }
                    _ => {}
                }
                if let Some(pe) = &c.pe_name {
                    let _ = write!(out, " pe {pe}");
                }
            }
        }
    }
    out.push('\n');
}

pub fn dest_line(out: &mut String, key: &DestKey, d: &Dest, fmt: Format) {
    let name = dest_name(key);
    let s = &d.stats;
    match fmt {
        Format::Stats => {
            let _ = write!(out, "  -> {name:<28}");
            for v in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                largenum(out, v);
            }
        }
        Format::Rate => {
            let _ = write!(out, "  -> {:<28} {:>8} {:>8} {:>8}", name, s.cps, s.inpps, s.outpps);
            for v in [s.inbps, s.outbps] {
                largenum(out, v);
            }
        }
        Format::List => {
            let _ = write!(
                out,
                "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                name,
                d.forward.ipvsadm_name(),
                d.weight as i32,
                s.active_conns,
                s.inact_conns
            );
        }
    }
    out.push('\n');
}

/// The table in ipvsadm's format, title lines included, version header excluded.
pub fn table(t: &Table, fmt: Format) -> String {
    let mut out = String::from(title(fmt));
    for (key, svc) in &t.services {
        service_line(&mut out, key, svc, fmt);
        for (dk, d) in &svc.dests {
            dest_line(&mut out, dk, d, fmt);
        }
    }
    out
}

/// Tunnel details exactly as `ipvsadm -L -n --tun-info` prints them: "n/a" for other
/// forwarding methods, "ipip", "gue:6080:+c", "gre:-c".
pub fn tunnel_info(d: &Dest) -> String {
    if d.forward != Forward::Tun {
        return "n/a".into();
    }
    match d.tun_type {
        TunnelType::Ipip => "ipip".into(),
        TunnelType::Gue => format!("gue:{}:{}", d.tun_port, tun_flag_name(d.tun_flags)),
        TunnelType::Gre => format!("gre:{}", tun_flag_name(d.tun_flags)),
    }
}

/// IP_VS_TUNNEL_ENCAP_FLAG_{NOCSUM,CSUM,REMCSUM} in ipvsadm's notation.
fn tun_flag_name(f: u16) -> &'static str {
    if f & 0x2 != 0 {
        "r+c"
    } else if f & 0x1 != 0 {
        "+c"
    } else {
        "-c"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::table::{Protocol, Service, ServiceConf};

    fn svc(t: &mut Table, key: ServiceKey, conf: ServiceConf, dests: &[(&str, Forward, u32)]) {
        let mut s = Service::new(conf);
        for (a, f, w) in dests {
            s.dests.insert(DestKey(a.parse().unwrap()), Dest::new(*f, *w));
        }
        t.services.insert(key, s);
    }

    #[test]
    fn list_format_matches_ipvsadm() {
        let mut t = Table::default();
        let mut c = ServiceConf::new("wrr", Family::Inet);
        c.flags |= svc_flags::PERSISTENT;
        c.timeout = 50;
        svc(
            &mut t,
            ServiceKey::Addr { protocol: Protocol::Tcp, addr: "192.0.2.123:80".parse().unwrap() },
            c,
            &[("198.51.100.157:80", Forward::Dr, 1), ("198.51.100.156:80", Forward::Dr, 1)],
        );
        let mut c6 = ServiceConf::new("sh", Family::Inet6);
        c6.flags |= svc_flags::SCHED1 | svc_flags::SCHED2 | svc_flags::PERSISTENT;
        c6.timeout = 300;
        c6.netmask = 64;
        svc(
            &mut t,
            ServiceKey::Addr { protocol: Protocol::Udp, addr: "[2001:db8::1]:53".parse().unwrap() },
            c6,
            &[("[2001:db8::10]:53", Forward::Nat, 65535)],
        );
        let mut cf = ServiceConf::new("rr", Family::Inet);
        cf.flags |= svc_flags::ONEPACKET | svc_flags::PERSISTENT;
        cf.timeout = 360;
        cf.netmask = 0xffff_ff00;
        svc(&mut t, ServiceKey::Fwmark { mark: 7, family: Family::Inet }, cf, &[("203.0.113.5:0", Forward::Tun, 0)]);
        let expected = "\
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.0.2.123:80 wrr persistent 50
  -> 198.51.100.156:80            Route   1      0          0         
  -> 198.51.100.157:80            Route   1      0          0         
UDP  [2001:db8::1]:53 sh (sh-fallback,sh-port) persistent 300 mask 64
  -> [2001:db8::10]:53            Masq    65535  0          0         
FWM  7 rr ops persistent 360 mask 255.255.255.0
  -> 203.0.113.5:0                Tunnel  0      0          0         
";
        assert_eq!(table(&t, Format::List), expected);
    }

    #[test]
    fn sort_order_is_ipvsadms() {
        // libipvs: fwmark first (0 = address services first), then family, protocol, address, port.
        let mut t = Table::default();
        for (p, a) in [
            (Protocol::Udp, "192.0.2.1:53"),
            (Protocol::Tcp, "192.0.2.2:80"),
            (Protocol::Tcp, "192.0.2.1:443"),
            (Protocol::Tcp, "192.0.2.1:80"),
        ] {
            svc(&mut t, ServiceKey::Addr { protocol: p, addr: a.parse().unwrap() }, ServiceConf::new("rr", Family::Inet), &[]);
        }
        svc(&mut t, ServiceKey::Fwmark { mark: 1, family: Family::Inet }, ServiceConf::new("rr", Family::Inet), &[]);
        svc(
            &mut t,
            ServiceKey::Addr { protocol: Protocol::Tcp, addr: "[2001:db8::1]:80".parse().unwrap() },
            ServiceConf::new("rr", Family::Inet6),
            &[],
        );
        let lines: Vec<String> =
            table(&t, Format::List).lines().skip(2).map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" ")).collect();
        assert_eq!(
            lines,
            vec!["TCP  192.0.2.1:80", "TCP  192.0.2.1:443", "TCP  192.0.2.2:80", "UDP  192.0.2.1:53", "TCP  [2001:db8::1]:80", "FWM  1",]
        );
    }

    #[test]
    fn stats_numbers_scale_like_ipvsadm() {
        let mut s = String::new();
        for v in [0u64, 99_999_999, 100_000_000, 1_000_000_000, 100_000_000_000, 100_000_000_000_000] {
            largenum(&mut s, v);
            s.push('|');
        }
        assert_eq!(s, "        0| 99999999|  100000K|    1000M|     100G|     100T|");
    }

    #[test]
    fn stats_and_rate_lines() {
        let mut t = Table::default();
        svc(
            &mut t,
            ServiceKey::Addr { protocol: Protocol::Tcp, addr: "192.0.2.1:80".parse().unwrap() },
            ServiceConf::new("rr", Family::Inet),
            &[("198.51.100.1:80", Forward::Dr, 1)],
        );
        let s = t.services.values_mut().next().unwrap();
        s.stats.conns = 12;
        s.stats.inbytes = 3456;
        let out = table(&t, Format::Stats);
        assert_eq!(out.lines().nth(2).unwrap(), "TCP  192.0.2.1:80                       12        0        0     3456        0");
        assert_eq!(out.lines().nth(3).unwrap(), "  -> 198.51.100.1:80                     0        0        0        0        0");
        let rate = table(&t, Format::Rate);
        assert_eq!(rate.lines().nth(3).unwrap(), "  -> 198.51.100.1:80                     0        0        0        0        0");
    }

    #[test]
    fn version_header_line() {
        assert_eq!(version_header(0x010201, 4096), "IP Virtual Server version 1.2.1 (size=4096)\n");
    }

    /// Checked against ipvsadm 1.31 in the VM (tests/vm/format.sh, tests/vm/roundtrip.sh).
    #[test]
    fn sctp_width_and_tunnel_notation_match_ipvsadm() {
        let k = ServiceKey::Addr { protocol: Protocol::Sctp, addr: "192.0.2.200:9".parse().unwrap() };
        assert_eq!(service_name(&k), "SCTP 192.0.2.200:9");
        let mut d = Dest::new(Forward::Tun, 1);
        assert_eq!(tunnel_info(&d), "ipip");
        d.tun_type = TunnelType::Gue;
        d.tun_port = 6080;
        d.tun_flags = 1;
        assert_eq!(tunnel_info(&d), "gue:6080:+c");
        d.tun_type = TunnelType::Gre;
        d.tun_flags = 2;
        assert_eq!(tunnel_info(&d), "gre:r+c");
        d.tun_flags = 0;
        assert_eq!(tunnel_info(&d), "gre:-c");
        assert_eq!(tunnel_info(&Dest::new(Forward::Dr, 1)), "n/a");
    }
}
