//! `/proc/net/ip_vs` as the kernel's ip_vs_info_seq_show writes it, read into the shape the
//! doctor compares (src/doctor/ipvs.rs). Pure, and fuzzed with the firewall's rules
//! (fuzz target `doctor_input`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const PROC: &str = "/proc/net/ip_vs";

/// Service name ("TCP 192.0.2.1:80", "FWM 1") -> real server -> forward column.
pub type Listing = BTreeMap<String, BTreeMap<SocketAddr, String>>;

/// `C0000201:0050` or `[2001:0db8:...:0001]:0050`.
fn proc_addr(s: &str) -> Option<SocketAddr> {
    let (host, port) = s.rsplit_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        IpAddr::V6(v6.parse().ok()?)
    } else {
        IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(host, 16).ok()?))
    };
    Some(SocketAddr::new(ip, port))
}

/// Parse the text the kernel's ip_vs_info_seq_show writes.
pub fn parse_proc(text: &str) -> Result<Listing, String> {
    let mut out = Listing::new();
    let mut current: Option<String> = None;
    for line in text.lines().skip(3) {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["->", addr, fwd, ..] => {
                let svc = current.as_ref().ok_or_else(|| format!("{PROC}: real server before any service: {line}"))?;
                let a = proc_addr(addr).ok_or_else(|| format!("{PROC}: bad address in {line:?}"))?;
                out.get_mut(svc).expect("current service").insert(a, fwd.to_string());
            }
            ["FWM", mark, ..] => {
                let m = u32::from_str_radix(mark, 16).map_err(|_| format!("{PROC}: bad mark in {line:?}"))?;
                let name = format!("FWM {m}");
                out.entry(name.clone()).or_default();
                current = Some(name);
            }
            [proto, addr, ..] => {
                let a = proc_addr(addr).ok_or_else(|| format!("{PROC}: bad address in {line:?}"))?;
                let name = format!("{proto} {a}");
                out.entry(name.clone()).or_default();
                current = Some(name);
            }
            _ => {}
        }
    }
    Ok(out)
}
