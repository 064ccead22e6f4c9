//! `ip_forward` must be on for LVS-NAT: replies from the real servers are routed through the
//! director, which rewrites them (seed section 5). DR and TUN do not need it.

use super::Finding;
use crate::model::{ForwardMethod, Model};
use crate::net::sysctl::{self, SysctlKey};

const CHECK: &str = "forward";

/// Current values (None: unreadable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
}

pub fn gather() -> Facts {
    let read = |k: &SysctlKey| sysctl::read(k).ok().map(|v| v.trim().to_owned());
    Facts { ipv4: read(&SysctlKey::ip_forward()), ipv6: read(&SysctlKey::ipv6_forwarding()) }
}

/// NAT services by family (IPv4 names, IPv6 names).
fn nat_services(m: &Model) -> (Vec<&str>, Vec<&str>) {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for s in &m.services {
        let nat = s.forward == ForwardMethod::Nat || s.reals.iter().any(|r| r.forward == ForwardMethod::Nat);
        if nat {
            if s.vip.family() == crate::ipvs::table::Family::Inet6 { v6.push(s.name.as_str()) } else { v4.push(s.name.as_str()) }
        }
    }
    (v4, v6)
}

pub fn check(m: &Model, f: &Facts) -> Vec<Finding> {
    let (v4, v6) = nat_services(m);
    decide(&v4, &v6, f)
}

/// Pure: the NAT services of each family and the settings.
pub fn decide(v4: &[&str], v6: &[&str], f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for (names, value, key) in [(v4, &f.ipv4, "net.ipv4.ip_forward"), (v6, &f.ipv6, "net.ipv6.conf.all.forwarding")] {
        if names.is_empty() {
            continue;
        }
        match value.as_deref() {
            Some("1") => out.push(Finding::pass(CHECK, format!("{key} = 1 for NAT service(s) {}", names.join(", ")))),
            Some(v) => out.push(Finding::fail(
                CHECK,
                format!(
                    "{key} = {v}, but NAT service(s) {} need forwarding: replies from the real servers are not routed back",
                    names.join(", ")
                ),
                format!("sysctl -w {key}=1, and set it in /etc/sysctl.d/ to survive a reboot"),
            )),
            None => out.push(Finding::warn(CHECK, format!("cannot read {key}"), "run lvsd doctor as root")),
        }
    }
    if out.is_empty() {
        out.push(Finding::pass(CHECK, "no NAT services: ip_forward not needed (DR/TUN)"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Level;

    #[test]
    fn nat_needs_forwarding() {
        let off = Facts { ipv4: Some("0".into()), ipv6: Some("0".into()) };
        let on = Facts { ipv4: Some("1".into()), ipv6: Some("0".into()) };
        let f = decide(&["ssh"], &[], &off);
        assert_eq!(f[0].level, Level::Fail);
        assert!(f[0].message.contains("ssh") && f[0].fix.as_ref().unwrap().contains("ip_forward=1"));
        assert_eq!(decide(&["ssh"], &[], &on)[0].level, Level::Pass);
        assert_eq!(decide(&[], &[], &off)[0].level, Level::Pass, "DR only: not needed");
        assert_eq!(decide(&[], &["web6"], &on)[0].level, Level::Fail);
        assert_eq!(decide(&["ssh"], &[], &Facts::default())[0].level, Level::Warn);
    }
}
