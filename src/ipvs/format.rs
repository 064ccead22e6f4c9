//! Text output in the exact formats of `ipvsadm -L -n`, `--stats` and `--rate`.
//!
//! Column widths and number formatting follow ipvsadm's `print_title`,
//! `print_service_entry` and `print_largenum`.

use super::table::{svc_flags, Dest, DestKey, Family, Forward, Service, ServiceKey, Table, TunnelType};
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
    format!(
        "IP Virtual Server version {}.{}.{} (size={})\n",
        (version >> 16) & 0xff,
        (version >> 8) & 0xff,
        version & 0xff,
        size
    )
}

pub fn title(fmt: Format) -> &'static str {
    match fmt {
        Format::List => {
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        }
        Format::Stats => {
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n"
        }
        Format::Rate => {
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n"
        }
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

fn service_line(out: &mut String, key: &ServiceKey, svc: &Service, fmt: Format) {
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

fn dest_line(out: &mut String, key: &DestKey, d: &Dest, fmt: Format) {
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
