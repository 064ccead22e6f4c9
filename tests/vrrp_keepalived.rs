//! lvsd and keepalived 2.2.7 as VRRP peers on one LAN, in both roles: v2 with PASS auth,
//! v3 over IPv4, v3 over IPv6, v3 unicast. After convergence exactly one holds the VIP; each
//! takes over when the other goes; the higher priority preempts. tcpdump decodes our adverts.

mod common;
use common::Daemon;
use common::keepalived::{Keepalived, keepalived_available};
use common::lan::Lan;
use std::process::Command;

struct Case {
    name: &'static str,
    version: u8,
    advert: &'static str,
    v6: bool,
    unicast: bool,
    auth: bool,
}

fn addr(c: &Case, host: u8) -> String {
    if c.v6 { format!("2001:db8::{host}") } else { format!("192.0.2.{host}") }
}
fn vip(c: &Case) -> String {
    if c.v6 { "2001:db8::100".into() } else { "192.0.2.100".into() }
}

fn lvsd_policy(c: &Case, prio: u8) -> String {
    let mut extra = String::new();
    if c.auth {
        extra.push_str("auth_pass = \"1111\",");
    }
    if c.unicast {
        extra.push_str(&format!("unicast_src = \"{}\", unicast_peers = {{ \"{}\" }},", addr(c, 1), addr(c, 2)));
    }
    format!(
        "lvsd.vrrp \"VI_1\" {{ interface = \"eth0\", vrid = 51, version = {}, advert_int = {}, priority = {prio}, vips = {{ \"{}\" }}, {extra} }}\n",
        c.version,
        c.advert,
        vip(c)
    )
}

fn keepalived_conf(c: &Case, prio: u8) -> String {
    let mut extra = String::new();
    if c.auth {
        extra.push_str("authentication {\n auth_type PASS\n auth_pass 1111\n }\n");
    }
    if c.unicast {
        extra.push_str(&format!("unicast_src_ip {}\nunicast_peer {{\n {}\n }}\n", addr(c, 2), addr(c, 1)));
    }
    format!(
        "global_defs {{\n router_id K\n vrrp_version {}\n}}\nvrrp_instance VI_1 {{\n state BACKUP\n interface eth0\n virtual_router_id 51\n priority {prio}\n advert_int {}\n {extra}\n virtual_ipaddress {{\n {}\n }}\n}}\n",
        c.version,
        c.advert,
        vip(c)
    )
}

fn has_vip(lan: &Lan, host: usize, c: &Case) -> bool {
    lan.host(host).ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap().contains(&format!("{} ", vip(c)).replace(' ', "/"))
}

fn run_case(c: &Case) {
    let lan = Lan::new("lvka", 2).unwrap();
    for h in 0..2 {
        let a = addr(c, h as u8 + 1);
        let plen = if c.v6 { "64" } else { "24" };
        lan.host(h).ip(&["addr", "add", &format!("{a}/{plen}"), "dev", "eth0"]).unwrap();
    }
    let ns = |h: usize| lan.host(h).name().to_string();

    // 1. keepalived (100) alone becomes master; lvsd (150) joins and preempts.
    let k = Keepalived::start(lan.host(1), &keepalived_conf(c, 100));
    common::wait_until(&format!("{}: keepalived master", c.name), || has_vip(&lan, 1, c), || k.log());
    let mut l = Daemon::start_in(Some(&ns(0)), &lvsd_policy(c, 150), "lvs01", &[]);
    common::wait_until(
        &format!("{}: lvsd preempts", c.name),
        || has_vip(&lan, 0, c) && !has_vip(&lan, 1, c),
        || format!("{}\n{}", l.log(), k.log()),
    );
    common::wait_until(&format!("{}: keepalived backup", c.name), || k.state("VI_1").as_deref() == Some("backup"), || k.log());
    assert_eq!(l.vrrp_state("VI_1"), "master");

    // tcpdump on the keepalived side decodes our adverts as expected.
    let dump = Command::new("ip")
        .args(["netns", "exec", &ns(1), "timeout", "10", "tcpdump", "-i", "eth0", "-c", "2", "-vv", "-n", "-l"])
        .arg(if c.v6 { "ip6 proto 112" } else { "ip proto 112" })
        .arg("and")
        .arg(
            format!("src host {}", if c.v6 && !c.unicast { "fe80::/10".to_string() } else { addr(c, 1) })
                .replace("host fe80::/10", "net fe80::/10"),
        )
        .output()
        .expect("tcpdump (scripts/test installs it)");
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(
        text.contains(&format!("VRRPv{}, Advertisement, vrid 51, prio 150", c.version)),
        "{}: tcpdump says:\n{text}\n{}",
        c.name,
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(text.contains(&vip(c)), "{text}");
    if c.auth {
        assert!(text.contains("authtype simple"), "{text}");
    }

    // 2. lvsd killed: keepalived takes over.
    l.kill9();
    common::wait_until(&format!("{}: keepalived takes over", c.name), || has_vip(&lan, 1, c), || k.log());
    // 3. lvsd back: it removes its stale VIP and preempts again.
    let mut l = l.restart(Some(&ns(0)), "lvs01", &[]);
    common::wait_until(
        &format!("{}: lvsd preempts again", c.name),
        || has_vip(&lan, 0, c) && !has_vip(&lan, 1, c),
        || format!("{}\n{}", l.log(), k.log()),
    );
    // 4. lvsd stops gracefully: keepalived takes over at once (priority 0).
    assert_eq!(l.stop(), 0);
    common::wait_until(&format!("{}: keepalived after graceful stop", c.name), || has_vip(&lan, 1, c) && !has_vip(&lan, 0, c), || k.log());
    drop(k);

    // 5. Roles swapped: keepalived 200 master, lvsd 150 backup; keepalived stops -> lvsd.
    let k = Keepalived::start(lan.host(1), &keepalived_conf(c, 200));
    let l = Daemon::start_in(Some(&ns(0)), &lvsd_policy(c, 150), "lvs01", &[]);
    common::wait_until(
        &format!("{}: keepalived 200 master", c.name),
        || has_vip(&lan, 1, c) && !has_vip(&lan, 0, c),
        || format!("{}\n{}", l.log(), k.log()),
    );
    l.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvsd backup");
    let st = l.status();
    assert_eq!(st["vrrp"][0]["master"]["priority"], 200, "{st}");
    k.signal(libc::SIGTERM);
    common::wait_until(&format!("{}: lvsd takes over from keepalived", c.name), || has_vip(&lan, 0, c), || l.log());
    assert_eq!(l.vrrp_state("VI_1"), "master");
    let dropped = &l.status()["vrrp"][0]["dropped"];
    assert!(dropped.as_object().unwrap().is_empty(), "keepalived's adverts all pass our checks: {dropped}");
}

macro_rules! case {
    ($test:ident, $c:expr) => {
        #[test]
        fn $test() {
            if !keepalived_available(stringify!($test)) {
                return;
            }
            run_case(&$c);
        }
    };
}

case!(v2_pass_auth, Case { name: "v2 PASS", version: 2, advert: "1", v6: false, unicast: false, auth: true });
case!(v3_ipv4, Case { name: "v3 IPv4", version: 3, advert: "0.5", v6: false, unicast: false, auth: false });
case!(v3_ipv6, Case { name: "v3 IPv6", version: 3, advert: "0.5", v6: true, unicast: false, auth: false });
case!(v3_unicast, Case { name: "v3 unicast", version: 3, advert: "0.5", v6: false, unicast: true, auth: false });
