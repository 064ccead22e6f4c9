//! On a real server (DR/TUN): the VIP bound locally (on `lo`, or `tunl0` for TUN) and ARP
//! suppressed, so the server accepts packets for the VIP but never answers ARP for it
//! (seed sections 7 and 10). The kernel applies the larger of `all` and the interface's
//! value for both arp_ignore and arp_announce, and for rp_filter.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::Finding;
use crate::net::{
    addr, link,
    sysctl::{self, SysctlKey},
};
use crate::realserver::{Mode, TUNL_V4, TUNL_V6};

const CHECK: &str = "realserver";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// VIP -> interfaces it is on.
    pub vip_devs: BTreeMap<IpAddr, Vec<String>>,
    /// Interface (and "all") -> its settings.
    pub conf: BTreeMap<String, Conf>,
}

/// One interface's settings (None: unreadable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conf {
    pub arp_ignore: Option<i64>,
    pub arp_announce: Option<i64>,
    pub rp_filter: Option<i64>,
}

impl Conf {
    pub fn new(arp_ignore: i64, arp_announce: i64, rp_filter: i64) -> Conf {
        Conf { arp_ignore: Some(arp_ignore), arp_announce: Some(arp_announce), rp_filter: Some(rp_filter) }
    }
}

pub fn gather(vips: &[IpAddr], _mode: Mode) -> Facts {
    let mut f = Facts::default();
    let links = link::list_links().unwrap_or_default();
    let name = |idx: u32| links.iter().find(|l| l.ifindex == idx).map(|l| l.name.clone()).unwrap_or_else(|| idx.to_string());
    for a in addr::list_all_addresses().unwrap_or_default() {
        if vips.contains(&a.addr) {
            f.vip_devs.entry(a.addr).or_default().push(name(a.ifindex));
        }
    }
    let read = |ifname: &str, what: &str| SysctlKey::ipv4_conf(ifname, what).ok().and_then(|k| sysctl::read_int(&k).ok());
    for ifname in std::iter::once("all".to_owned()).chain(links.iter().map(|l| l.name.clone())) {
        let v = Conf {
            arp_ignore: read(&ifname, "arp_ignore"),
            arp_announce: read(&ifname, "arp_announce"),
            rp_filter: read(&ifname, "rp_filter"),
        };
        f.conf.insert(ifname, v);
    }
    f
}

/// Pure.
pub fn check(vips: &[IpAddr], mode: Mode, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    if vips.is_empty() {
        out.push(Finding::warn(
            CHECK,
            "no VIPs known for this real server: nothing to check",
            "pass --vip ADDR (or -p POLICY on a director), or run `lvsd realserver up --vip ADDR`",
        ));
        return out;
    }
    let up = |v: &IpAddr| format!("lvsd realserver up --mode {mode} --vip {v}");
    for v in vips {
        let want = match (mode, v) {
            (Mode::Dr, _) => "lo",
            (Mode::Tun, IpAddr::V4(_)) => TUNL_V4,
            (Mode::Tun, IpAddr::V6(_)) => TUNL_V6,
        };
        let devs = f.vip_devs.get(v).cloned().unwrap_or_default();
        let elsewhere: Vec<&String> = devs.iter().filter(|d| *d != want).collect();
        if !elsewhere.is_empty() && v.is_ipv4() {
            out.push(Finding::fail(
                CHECK,
                format!(
                    "VIP {v} is on {}: this server answers ARP for it and takes the VIP away from the director",
                    elsewhere.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
                format!("ip addr del {v}/32 dev {}; then {}", elsewhere[0], up(v)),
            ));
        }
        if devs.iter().any(|d| d == want) {
            out.push(Finding::pass(CHECK, format!("VIP {v} is bound on {want}")));
        } else {
            out.push(Finding::fail(
                CHECK,
                format!("VIP {v} is not bound on {want}: packets the director forwards for it are dropped"),
                up(v),
            ));
        }
    }
    if vips.iter().any(IpAddr::is_ipv4) {
        out.extend(arp(mode, f, &up(vips.iter().find(|v| v.is_ipv4()).unwrap())));
    }
    out
}

fn arp(mode: Mode, f: &Facts, fix: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let all = f.conf.get("all").cloned().unwrap_or_default();
    let (mut ignore_bad, mut announce_bad, mut rp_bad) = (Vec::new(), Vec::new(), Vec::new());
    for (ifname, c) in &f.conf {
        if ifname == "all" || ifname == "lo" {
            continue;
        }
        // The kernel uses max(all, interface); unreadable counts as 0.
        let eff = |a: Option<i64>, b: Option<i64>| a.unwrap_or(0).max(b.unwrap_or(0));
        if eff(all.arp_ignore, c.arp_ignore) == 0 {
            ignore_bad.push(ifname.as_str());
        }
        if eff(all.arp_announce, c.arp_announce) < 2 {
            announce_bad.push(ifname.as_str());
        }
        if mode == Mode::Tun && ifname == TUNL_V4 && eff(all.rp_filter, c.rp_filter) == 1 {
            rp_bad.push(ifname.as_str());
        }
    }
    if ignore_bad.is_empty() {
        out.push(Finding::pass(CHECK, "arp_ignore: no interface answers ARP for addresses on other interfaces"));
    } else {
        out.push(Finding::fail(
            CHECK,
            format!("arp_ignore is 0 on {}: it answers ARP for the VIP and clients bypass the director", ignore_bad.join(", ")),
            format!("{fix} (sets net.ipv4.conf.all.arp_ignore=1 and lo)"),
        ));
    }
    if announce_bad.is_empty() {
        out.push(Finding::pass(CHECK, "arp_announce = 2: the VIP is never used as an ARP source"));
    } else {
        out.push(Finding::fail(
            CHECK,
            format!(
                "arp_announce is below 2 on {}: ARP requests may carry the VIP as sender and poison neighbours' caches",
                announce_bad.join(", ")
            ),
            format!("{fix} (sets net.ipv4.conf.all.arp_announce=2 and lo)"),
        ));
    }
    if !rp_bad.is_empty() {
        out.push(Finding::fail(
            CHECK,
            "rp_filter is strict (1) for tunl0: decapsulated packets from clients are dropped",
            format!("{fix} (sets rp_filter=0 on tunl0 and all)"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Level;

    fn good() -> (Vec<IpAddr>, Facts) {
        let vip: IpAddr = "192.0.2.10".parse().unwrap();
        let mut f = Facts::default();
        f.vip_devs.insert(vip, vec!["lo".into()]);
        f.conf.insert("all".into(), Conf::new(1, 2, 0));
        f.conf.insert("lo".into(), Conf::new(1, 2, 0));
        f.conf.insert("eth0".into(), Conf::new(0, 0, 0));
        (vec![vip], f)
    }

    fn levels(f: &[Finding]) -> Vec<Level> {
        f.iter().map(|x| x.level).collect()
    }

    #[test]
    fn healthy_dr_passes() {
        let (v, f) = good();
        assert_eq!(levels(&check(&v, Mode::Dr, &f)), [Level::Pass; 3]);
    }

    #[test]
    fn missing_vip_and_arp() {
        let (v, mut f) = good();
        f.vip_devs.clear();
        let r = check(&v, Mode::Dr, &f);
        assert!(r.iter().any(|x| x.level == Level::Fail && x.message.contains("not bound on lo")), "{r:?}");
        let (v, mut f) = good();
        f.conf.insert("all".into(), Conf::new(0, 0, 0));
        let r = check(&v, Mode::Dr, &f);
        assert!(r.iter().any(|x| x.level == Level::Fail && x.message.contains("arp_ignore is 0 on eth0")), "{r:?}");
        assert!(r.iter().any(|x| x.level == Level::Fail && x.message.contains("arp_announce")), "{r:?}");
        // Per-interface values count too.
        f.conf.insert("eth0".into(), Conf::new(1, 2, 0));
        assert!(check(&v, Mode::Dr, &f).iter().all(|x| x.level == Level::Pass));
    }

    #[test]
    fn vip_on_eth0_fails() {
        let (v, mut f) = good();
        f.vip_devs.insert(v[0], vec!["eth0".into()]);
        let r = check(&v, Mode::Dr, &f);
        assert!(r.iter().any(|x| x.level == Level::Fail && x.message.contains("is on eth0")), "{r:?}");
    }

    #[test]
    fn ipv6_and_no_vips() {
        let vip: IpAddr = "2001:db8::10".parse().unwrap();
        let mut f = Facts::default();
        f.vip_devs.insert(vip, vec!["lo".into()]);
        assert_eq!(levels(&check(&[vip], Mode::Dr, &f)), [Level::Pass]);
        assert_eq!(levels(&check(&[], Mode::Dr, &f)), [Level::Warn]);
    }
}
