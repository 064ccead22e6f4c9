//! VRRP routers seen on the wire: listen on each instance's interface for a few seconds,
//! decode every advert, and compare the senders with the policy's instances (the seed's
//! "compare the master and backup configs" item, done on the wire): VRID, version,
//! authentication, advert interval, VIP list, and two masters at once (split brain).
//! Only masters send adverts, so two senders for one VRID that keep sending are two masters.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::Finding;
use crate::model::{Model, VrrpInstance};
use crate::net::vrrp_socket::{Mode, VrrpSocket};
use crate::vrrp::packet::{self, Advert, Auth, Family, Version};

const CHECK: &str = "vrrp";
/// Upper bound on packets read per interface, whatever the listen time.
const MAX_PACKETS: usize = 10_000;

/// One sender of one VRID on one interface, with its last advert.
#[derive(Debug, Clone, PartialEq)]
pub struct Heard {
    pub ifname: String,
    pub src: IpAddr,
    /// Sent from one of this host's addresses.
    pub ours: bool,
    pub advert: Advert,
    pub count: u32,
    /// Seconds since the listening started.
    pub last: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listened {
    pub window: f64,
    pub heard: Vec<Heard>,
    /// (interface, why it could not be listened on)
    pub errors: Vec<(String, String)>,
}

fn wire_family(i: &VrrpInstance) -> Family {
    if i.is_ipv6() { Family::Inet6 } else { Family::Inet }
}

/// Where the instance's adverts arrive: its virtual MAC interface while there is one (the
/// kernel hands frames from the virtual MAC to it alone), else its own interface.
fn listen_on(i: &VrrpInstance) -> String {
    let a = i.advert_interface();
    if a != i.interface && crate::net::ifindex(a).is_err() { i.interface.clone() } else { a.to_owned() }
}

/// Listen for `window` on every (interface, family) the multicast instances use.
pub fn gather(m: &Model, window: Duration) -> Listened {
    let mut out = Listened { window: window.as_secs_f64(), ..Listened::default() };
    let mut wanted: BTreeSet<(String, bool)> = BTreeSet::new();
    for i in m.vrrp.iter().filter(|i| i.unicast_peers.is_empty()) {
        wanted.insert((listen_on(i), i.is_ipv6()));
    }
    if wanted.is_empty() {
        return out;
    }
    let ours: Vec<IpAddr> = crate::net::addr::list_all_addresses().unwrap_or_default().into_iter().map(|a| a.addr).collect();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            out.errors.push(("*".into(), e.to_string()));
            return out;
        }
    };
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + window;
    let results = rt.block_on(async {
        let mut tasks = Vec::new();
        for (ifname, v6) in wanted {
            let fam = if v6 { Family::Inet6 } else { Family::Inet };
            tasks.push(tokio::spawn(async move {
                let sock = match VrrpSocket::open(&ifname, fam, Mode::Multicast) {
                    Ok(s) => s,
                    Err(e) => return (ifname, Err(e.to_string())),
                };
                let mut got = Vec::new();
                while got.len() < MAX_PACKETS {
                    match tokio::time::timeout_at(deadline, sock.recv()).await {
                        Ok(Ok((bytes, meta))) => {
                            if let Ok(a) = packet::parse(&bytes, fam) {
                                got.push((meta.src, a, start.elapsed().as_secs_f64()));
                            }
                        }
                        // A malformed datagram: keep listening.
                        Ok(Err(_)) => {}
                        Err(_) => break,
                    }
                }
                (ifname, Ok(got))
            }));
        }
        let mut res = Vec::new();
        for t in tasks {
            if let Ok(r) = t.await {
                res.push(r);
            }
        }
        res
    });
    let mut by_sender: BTreeMap<(String, IpAddr, u8), Heard> = BTreeMap::new();
    for (ifname, r) in results {
        match r {
            Err(e) => out.errors.push((ifname, e)),
            Ok(got) => {
                for (src, advert, at) in got {
                    let h = by_sender.entry((ifname.clone(), src, advert.vrid)).or_insert_with(|| Heard {
                        ifname: ifname.clone(),
                        src,
                        ours: ours.contains(&src),
                        advert: advert.clone(),
                        count: 0,
                        last: at,
                    });
                    h.count += 1;
                    h.last = at;
                    h.advert = advert;
                }
            }
        }
    }
    out.heard = by_sender.into_values().collect();
    out
}

fn addr_set(a: &[IpAddr]) -> BTreeSet<IpAddr> {
    a.iter().copied().collect()
}

fn list(a: &BTreeSet<IpAddr>) -> String {
    a.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Pure: the policy's instances against what was heard. `local` holds the states the
/// running lvsd reports (instance -> "master", ...): a director does not hear its own
/// adverts, so that is how it counts itself as a master.
pub fn check(m: &Model, l: &Listened, local: &BTreeMap<String, String>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (ifname, e) in &l.errors {
        out.push(Finding::warn(
            CHECK,
            format!("cannot listen for VRRP on {ifname}: {e}"),
            "run lvsd doctor as root on the director, with the instance's interface up",
        ));
    }
    for i in &m.vrrp {
        if !i.unicast_peers.is_empty() {
            out.push(Finding::pass(CHECK, format!("{}: unicast peers, adverts not listened for", i.name)));
            continue;
        }
        if l.errors.iter().any(|(ifn, _)| *ifn == listen_on(i)) {
            continue;
        }
        out.extend(instance(i, l, local.get(&i.name).map(String::as_str)));
    }
    out
}

fn instance(i: &VrrpInstance, l: &Listened, local: Option<&str>) -> Vec<Finding> {
    let mut out = Vec::new();
    let fam = wire_family(i);
    let version = if i.version == 3 { Version::V3 } else { Version::V2 };
    let auth = match (version, &i.auth_pass) {
        (Version::V2, Some(p)) => Auth::pass(p),
        _ => Auth::None,
    };
    // What an advert carries: the VIPs that fit one on an Ethernet link (the rest are held but
    // not advertised, by lvsd and keepalived alike).
    let vips: BTreeSet<IpAddr> = i.vips.iter().take(packet::max_addresses(version, fam, 1500)).map(|v| v.addr).collect();
    let link = listen_on(i);
    let on_link: Vec<&Heard> = l.heard.iter().filter(|h| h.ifname == link && Family::of(&h.src) == fam).collect();
    let same: Vec<&Heard> = on_link.iter().copied().filter(|h| h.advert.vrid == i.vrid).collect();
    let name = format!("{} (VRID {} on {link})", i.name, i.vrid);
    let mut bad = false;

    for h in same.iter().filter(|h| !h.ours) {
        let a = &h.advert;
        if a.version != version {
            bad = true;
            out.push(Finding::fail(
                CHECK,
                format!("{name}: {} sends VRRPv{}, this policy uses v{}", h.src, a.version.number(), version.number()),
                "set the same `version` on every router of the instance (keepalived: vrrp_version)",
            ));
            continue;
        }
        if a.auth != auth {
            bad = true;
            let what = if a.auth.type_code() != auth.type_code() {
                format!("auth type {} (we use {})", a.auth.type_code(), auth.type_code())
            } else {
                "a different password".to_owned()
            };
            out.push(Finding::fail(
                CHECK,
                format!("{name}: {} uses {what}: each router drops the other's adverts", h.src),
                "set the same auth_pass on every router (keepalived: authentication { auth_type PASS; auth_pass ... })",
            ));
        }
        if a.advert_int != i.advert_int_cs {
            let msg = format!("{name}: {} advertises every {} cs, this policy says {} cs", h.src, a.advert_int, i.advert_int_cs);
            let fix = "set the same advert_int on every router";
            if version == Version::V2 {
                bad = true;
                out.push(Finding::fail(CHECK, msg + " (VRRPv2 drops adverts with another interval)", fix));
            } else {
                out.push(Finding::warn(CHECK, msg, fix));
            }
        }
        let theirs = addr_set(&a.addresses);
        if theirs != vips {
            bad = true;
            out.push(Finding::fail(
                CHECK,
                format!("{name}: {} advertises VIPs [{}], this policy has [{}]", h.src, list(&theirs), list(&vips)),
                "make the VIP lists (virtual_ipaddress) identical on every router",
            ));
        }
    }

    // Our VIPs under another VRID: a VRID mismatch between the routers.
    for h in on_link.iter().filter(|h| h.advert.vrid != i.vrid && !h.ours) {
        let shared: BTreeSet<IpAddr> = addr_set(&h.advert.addresses).intersection(&vips).copied().collect();
        if !shared.is_empty() {
            bad = true;
            out.push(Finding::fail(
                CHECK,
                format!(
                    "{name}: {} advertises our VIP(s) {} with VRID {}: the routers do not see each other as one group",
                    h.src,
                    list(&shared),
                    h.advert.vrid
                ),
                format!(
                    "use the same vrid ({} or {}) on every router of the instance (keepalived: virtual_router_id)",
                    i.vrid, h.advert.vrid
                ),
            ));
        }
    }

    // Still advertising near the end of the window (a failover in progress ends quickly).
    let recent = l.window - (1.5 * f64::from(i.advert_int_cs) / 100.0 + 0.3);
    let masters: Vec<&&Heard> = same.iter().filter(|h| h.advert.priority > 0 && h.count >= 2 && h.last >= recent).collect();
    let mut who: Vec<String> =
        masters.iter().map(|h| format!("{}{} (priority {})", h.src, if h.ours { " [this host]" } else { "" }, h.advert.priority)).collect();
    if local == Some("master") && !masters.iter().any(|h| h.ours) {
        who.push(format!("this host (lvsd reports master, priority {})", i.priority));
    }
    if who.len() >= 2 {
        bad = true;
        out.push(Finding::fail(
            CHECK,
            format!("{name}: split brain, {} masters at once: {}", who.len(), who.join(", ")),
            "the masters do not accept each other's adverts: fix auth/version/interval mismatches above, let VRRP (protocol 112) through every firewall, check the link between them",
        ));
    }
    if same.is_empty() && local == Some("master") {
        out.push(Finding::pass(CHECK, format!("{name}: this host is master (lvsd), no other master heard")));
    } else if same.is_empty() {
        out.push(Finding::warn(
            CHECK,
            format!("{name}: no adverts heard in {:.1} s: no master on this link", l.window),
            "start lvsd on the directors; check that nothing filters VRRP (protocol 112); listen longer with --listen",
        ));
    } else if !bad {
        let m = same.iter().max_by_key(|h| h.last as u64).expect("not empty");
        out.push(Finding::pass(
            CHECK,
            format!(
                "{name}: master {}{} (priority {}), settings match",
                m.src,
                if m.ours { " [this host]" } else { "" },
                m.advert.priority
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Level;
    use crate::model::{InitialState, VipAddr};

    fn inst() -> VrrpInstance {
        let src = r#"lvsd.vrrp "VI_1" { interface = "eth0", vrid = 51, priority = 100, advert_int = 1, auth_pass = "1111", vips = { "192.0.2.100" } }"#;
        let mut i = crate::policy::test_model(src, "n").vrrp.remove(0);
        assert_eq!(i.state, InitialState::Backup);
        i.vips = vec![VipAddr { addr: "192.0.2.100".parse().unwrap(), prefix: 32, dev: None, label: None, scope: None, broadcast: None }];
        i
    }

    fn heard(src: &str, vrid: u8, prio: u8, auth: &str, vips: &[&str]) -> Heard {
        Heard {
            ifname: "eth0".into(),
            src: src.parse().unwrap(),
            ours: false,
            advert: Advert {
                version: Version::V2,
                vrid,
                priority: prio,
                advert_int: 100,
                auth: Auth::pass(auth),
                addresses: vips.iter().map(|a| a.parse().unwrap()).collect(),
            },
            count: 3,
            last: 2.9,
        }
    }

    fn run(h: Vec<Heard>) -> Vec<Finding> {
        instance(&inst(), &Listened { window: 3.0, heard: h, errors: vec![] }, None)
    }

    #[test]
    fn matching_peer_passes() {
        let f = run(vec![heard("198.51.100.2", 51, 100, "1111", &["192.0.2.100"])]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].level, Level::Pass, "{f:?}");
        assert!(f[0].message.contains("master 198.51.100.2"));
    }

    #[test]
    fn auth_and_vip_mismatch() {
        let f = run(vec![heard("198.51.100.2", 51, 100, "2222", &["192.0.2.100", "192.0.2.101"])]);
        assert!(f.iter().any(|x| x.level == Level::Fail && x.message.contains("different password")), "{f:?}");
        assert!(f.iter().any(|x| x.level == Level::Fail && x.message.contains("advertises VIPs")), "{f:?}");
        assert!(!f.iter().any(|x| x.message.contains("1111") || x.message.contains("2222")), "never print passwords");
    }

    #[test]
    fn vips_past_an_adverts_room_are_not_expected_in_it() {
        // 300 IPv4 VIPs: an advert carries the first 255 (the count's limit), at lvsd and at
        // keepalived.
        let mut i = inst();
        i.vips = (0..300u32)
            .map(|n| VipAddr {
                addr: std::net::Ipv4Addr::from(0xc000_0200 + n).into(),
                prefix: 32,
                dev: None,
                label: None,
                scope: None,
                broadcast: None,
            })
            .collect();
        let first: Vec<String> = i.vips[..255].iter().map(|v| v.addr.to_string()).collect();
        let first: Vec<&str> = first.iter().map(String::as_str).collect();
        let l = Listened { window: 3.0, heard: vec![heard("198.51.100.2", 51, 100, "1111", &first)], errors: vec![] };
        let f = instance(&i, &l, None);
        assert!(f.iter().all(|x| x.level == Level::Pass), "{f:?}");
    }

    #[test]
    fn vrid_mismatch_and_nothing_heard() {
        let f = run(vec![heard("198.51.100.2", 52, 100, "1111", &["192.0.2.100"])]);
        assert!(f.iter().any(|x| x.level == Level::Fail && x.message.contains("with VRID 52")), "{f:?}");
        assert!(f.iter().any(|x| x.level == Level::Warn && x.message.contains("no adverts")), "{f:?}");
        // Another group with other VIPs is none of our business.
        let f = run(vec![heard("198.51.100.2", 52, 100, "1111", &["192.0.2.200"])]);
        assert!(!f.iter().any(|x| x.level == Level::Fail), "{f:?}");
    }

    #[test]
    fn two_masters() {
        let f =
            run(vec![heard("198.51.100.2", 51, 100, "1111", &["192.0.2.100"]), heard("198.51.100.3", 51, 90, "1111", &["192.0.2.100"])]);
        assert!(f.iter().any(|x| x.level == Level::Fail && x.message.contains("split brain, 2 masters")), "{f:?}");
        // A master that stopped early in the window (a takeover) is not a split brain.
        let mut old = heard("198.51.100.3", 51, 110, "1111", &["192.0.2.100"]);
        old.last = 0.5;
        let f = run(vec![heard("198.51.100.2", 51, 100, "1111", &["192.0.2.100"]), old]);
        assert!(f.iter().all(|x| x.level == Level::Pass), "{f:?}");
    }

    #[test]
    fn local_master_counts() {
        let l = Listened { window: 3.0, heard: vec![heard("198.51.100.3", 51, 90, "1111", &["192.0.2.100"])], errors: vec![] };
        let f = instance(&inst(), &l, Some("master"));
        assert!(
            f.iter().any(|x| x.level == Level::Fail
                && x.message.contains("2 masters at once: 198.51.100.3 (priority 90), this host (lvsd reports master")),
            "{f:?}"
        );
        let f = instance(&inst(), &l, Some("backup"));
        assert!(f.iter().all(|x| x.level == Level::Pass), "{f:?}");
        let quiet = Listened { window: 3.0, heard: vec![], errors: vec![] };
        assert_eq!(instance(&inst(), &quiet, Some("master"))[0].level, Level::Pass);
    }
}
