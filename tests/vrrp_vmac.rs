//! `use_vmac` (keepalived's virtual MAC interface): two lvsd directors and a client on one
//! LAN. The VIP answers with the virtual router MAC of RFC 5798 7.3 whichever director holds
//! it, so the client's ARP entry never changes across a failover; the switch learns that MAC
//! on the master's port.

mod common;
use common::capture::{capture, is_vrrp, wait_frame};
use common::lan::Lan;
use common::*;
use lvsd::net::netns::privileged_or_skip;

const VMAC: &str = "00:00:5e:00:01:33";
const VMAC_BYTES: [u8; 6] = [0, 0, 0x5e, 0, 1, 0x33];

fn policy(extra: &str) -> String {
    format!(
        r#"
local master = lvsd.node == "lvs01"
lvsd.vrrp "VI_1" {{
  interface = "eth0", vrid = 51, version = 3, advert_int = 0.2,
  state = master and "master" or "backup",
  priority = master and 100 or 90,
  vips = {{ "192.0.2.100/24" }},
  use_vmac = true,
  {extra}
}}
"#
    )
}

fn lan() -> Lan {
    let lan = Lan::new("lvm", 3).unwrap();
    for (i, h) in lan.hosts.iter().enumerate() {
        h.ip(&["addr", "add", &format!("192.0.2.{}/24", i + 1), "dev", "eth0"]).unwrap();
    }
    // The directors know the client: their answers (from the VIP, out of eth0) never ask for
    // it, which would teach the client eth0's MAC for the VIP (ARP requests carry the sender).
    let client_mac = lan.host(2).ip(&["-br", "link", "show", "dev", "eth0"]).unwrap();
    let client_mac = client_mac.split_whitespace().nth(2).unwrap().to_string();
    for h in 0..2 {
        lan.host(h).ip(&["neigh", "replace", "192.0.2.3", "lladdr", &client_mac, "dev", "eth0", "nud", "permanent"]).unwrap();
    }
    lan
}

fn start(lan: &Lan, host: usize, src: &str) -> Daemon {
    Daemon::start_in(Some(lan.host(host).name()), src, &format!("lvs0{}", host + 1), &[])
}

/// lvs01 master and lvs02 backup, both running `src`.
fn pair(lan: &Lan, src: &str) -> (Daemon, Daemon) {
    let a = start(lan, 0, src);
    let b = start(lan, 1, src);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 backup");
    (a, b)
}

/// `ip -o addr show dev DEV` on a host ("" when the link is not there).
fn addrs(lan: &Lan, host: usize, dev: &str) -> String {
    lan.host(host).ip(&["-o", "addr", "show", "dev", dev]).unwrap_or_default()
}

fn link(lan: &Lan, host: usize, dev: &str) -> String {
    lan.host(host).ip(&["-d", "link", "show", "dev", dev]).unwrap_or_default()
}

/// The client forgets the VIP, sends it a datagram (so asks for its MAC) and reports the
/// MAC it learned.
fn client_sees(lan: &Lan) -> String {
    let client = lan.host(2);
    client.ip(&["neigh", "flush", "dev", "eth0"]).unwrap();
    let sent = client.run(|| std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.send_to(b"x", "192.0.2.100:9"))).unwrap();
    assert!(sent.is_ok(), "{sent:?}");
    let mut seen = String::new();
    for _ in 0..50 {
        seen = client.ip(&["neigh", "show", "192.0.2.100"]).unwrap_or_default();
        if seen.contains("lladdr") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    seen
}

/// The bridge port the switch learned the virtual MAC on.
fn learned_on(lan: &Lan) -> String {
    let fdb = lan
        .switch
        .exec("bridge", &["fdb", "show", "br", "br0"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    fdb.lines().find(|l| l.starts_with(VMAC)).and_then(|l| l.split_whitespace().nth(2)).unwrap_or("none").to_string()
}

#[test]
fn the_vip_keeps_its_mac_across_a_failover() {
    if !privileged_or_skip("the_vip_keeps_its_mac_across_a_failover") {
        return;
    }
    let lan = lan();
    let src = policy("");
    let (mut a, mut b) = pair(&lan, &src);

    // Both directors have the macvlan (private mode, the virtual MAC); only the master has
    // the VIP, on it and not on eth0.
    for h in 0..2 {
        let l = link(&lan, h, "vrrp.51");
        assert!(l.contains(VMAC) && l.contains("macvlan mode private"), "host {h}: {l}");
    }
    assert!(addrs(&lan, 0, "vrrp.51").contains("192.0.2.100/24"), "{}", addrs(&lan, 0, "vrrp.51"));
    assert!(!addrs(&lan, 0, "eth0").contains("192.0.2.100"));
    assert!(!addrs(&lan, 1, "vrrp.51").contains("192.0.2.100"));
    assert!(client_sees(&lan).contains(VMAC), "{}", client_sees(&lan));
    assert_eq!(learned_on(&lan), "p0", "the switch learned the virtual MAC on the master's port");
    // RFC 5798 7.3: the adverts' source MAC is the virtual router MAC.
    let advert = wait_frame(&capture(lan.host(2)), "an advert", is_vrrp);
    assert_eq!(advert[6..12], VMAC_BYTES, "source MAC of {advert:02x?}");
    // Adverts from the virtual MAC are heard: the backup knows its master and drops nothing.
    b.wait_for(|d| d.status()["vrrp"][0]["master"]["priority"] == 100, "the backup hears its master");
    let st = b.status();
    assert_eq!(st["vrrp"][0]["dropped"], serde_json::json!({}), "{st}");
    assert_eq!(st["vrrp"][0]["vmac"], "vrrp.51", "{st}");

    // The master dies: the backup takes over, announces the same MAC from its port; the
    // client's entry is the same MAC and the VIP answers.
    a.kill9();
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 takes over");
    assert!(addrs(&lan, 1, "vrrp.51").contains("192.0.2.100/24"));
    wait_until("the switch learns the MAC on lvs02's port", || learned_on(&lan) == "p1", || b.log());
    assert!(client_sees(&lan).contains(VMAC), "{}", client_sees(&lan));

    // The dead master's run left its macvlan: a new run takes it as it is, and preempts.
    let a = a.restart(Some(lan.host(0).name()), "lvs01", &[]);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 preempts");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 steps down");
    wait_until("the switch learns the MAC on lvs01's port again", || learned_on(&lan) == "p0", || a.log());
    assert!(client_sees(&lan).contains(VMAC));

    // The macvlan deleted by hand: the master is in Fault and lvs02 takes over; lvs01 makes it
    // again within a second (with a new socket on it) and preempts.
    lan.host(0).ip(&["link", "del", "vrrp.51"]).unwrap();
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 takes over from the faulted master");
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 preempts again");
    assert!(a.events("vrrp").iter().any(|e| e.contains("vrrp.51 was missing: made again")), "{:?}", a.events("vrrp"));
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 steps down again");
    assert!(addrs(&lan, 0, "vrrp.51").contains("192.0.2.100/24"));

    // A stopped director removes its macvlan.
    assert_eq!(b.stop(), 0);
    assert_eq!(link(&lan, 1, "vrrp.51"), "", "the macvlan is gone after a stop");
    let mut a = a;
    assert_eq!(a.stop(), 0);
    assert_eq!(link(&lan, 0, "vrrp.51"), "");
}

fn mac_of(lan: &Lan, host: usize) -> Vec<u8> {
    let l = lan.host(host).ip(&["-br", "link", "show", "dev", "eth0"]).unwrap();
    let mac = l.split_whitespace().nth(2).unwrap();
    mac.split(':').map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
}

/// vmac_xmit_base: the VIP is on the macvlan and answers with the virtual MAC, but adverts
/// leave from eth0 with eth0's MAC; the backup hears them there.
#[test]
fn xmit_base_sends_adverts_from_the_interface() {
    if !privileged_or_skip("xmit_base_sends_adverts_from_the_interface") {
        return;
    }
    let lan = lan();
    let src = policy("vmac_xmit_base = true,");
    let (a, b) = pair(&lan, &src);
    assert!(addrs(&lan, 0, "vrrp.51").contains("192.0.2.100/24"));
    let advert = wait_frame(&capture(lan.host(2)), "an advert", is_vrrp);
    assert_eq!(advert[6..12], mac_of(&lan, 0)[..], "source MAC of {advert:02x?}");
    assert!(client_sees(&lan).contains(VMAC), "{}", client_sees(&lan));
    b.wait_for(|d| d.status()["vrrp"][0]["master"]["priority"] == 100, "the backup hears its master");
    let st = b.status();
    assert_eq!(st["vrrp"][0]["dropped"], serde_json::json!({}), "{st}");

    // The macvlan deleted by hand (adverts on eth0 go on): lvs01 faults, lvs02 takes over
    // and announces the MAC from its port; lvs01 makes the macvlan again and, master again,
    // announces it from the new one (the switch learns it back on p0 before anyone asks).
    lan.host(0).ip(&["link", "del", "vrrp.51"]).unwrap();
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 takes over from the faulted master");
    wait_until("the switch learns the MAC on lvs02's port", || learned_on(&lan) == "p1", || b.log());
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 preempts again");
    wait_until("lvs01 announces from the new macvlan", || learned_on(&lan) == "p0", || a.log());

    // A reload without use_vmac restarts the instance on eth0 and removes the macvlan.
    let g = a.status()["generation"].as_u64().unwrap();
    std::fs::write(&a.policy, src.replace("use_vmac = true,", "").replace("vmac_xmit_base = true,", "")).unwrap();
    a.wait_for(|d| d.status()["generation"].as_u64().unwrap() > g, "the reload");
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master again");
    wait_until("the macvlan removed", || link(&lan, 0, "vrrp.51").is_empty(), || a.log());
    assert!(addrs(&lan, 0, "eth0").contains("192.0.2.100/24"), "{}", addrs(&lan, 0, "eth0"));
    let mac: Vec<String> = mac_of(&lan, 0).iter().map(|b| format!("{b:02x}")).collect();
    assert!(client_sees(&lan).contains(&mac.join(":")), "{}", client_sees(&lan));
}

/// IPv6: the macvlan has the IPv6 virtual MAC and no address of its own but the link-local
/// one adverts leave from; the VIP is found at the virtual MAC by neighbour discovery.
#[test]
fn ipv6_vips_answer_from_the_ipv6_virtual_mac() {
    if !privileged_or_skip("ipv6_vips_answer_from_the_ipv6_virtual_mac") {
        return;
    }
    let lan = lan();
    for h in 0..3 {
        lan.host(h).ip(&["addr", "add", &format!("2001:db8::{}/64", h + 1), "dev", "eth0", "nodad"]).unwrap();
    }
    let client_mac = lan.host(2).ip(&["-br", "link", "show", "dev", "eth0"]).unwrap().split_whitespace().nth(2).unwrap().to_string();
    for h in 0..2 {
        lan.host(h).ip(&["-6", "neigh", "replace", "2001:db8::3", "lladdr", &client_mac, "dev", "eth0", "nud", "permanent"]).unwrap();
    }
    let src = policy("").replace("\"192.0.2.100/24\"", "\"2001:db8::100/64\"");
    let (_a, b) = pair(&lan, &src);
    let l = link(&lan, 0, "vrrp.51");
    assert!(l.contains("00:00:5e:00:02:33") && l.contains("addrgenmode none"), "{l}");
    let on_vmac = addrs(&lan, 0, "vrrp.51");
    assert!(on_vmac.contains("2001:db8::100/64"), "{on_vmac}");
    let ll = addrs(&lan, 0, "eth0").lines().find(|l| l.contains("fe80::")).unwrap().split_whitespace().nth(3).unwrap().to_string();
    assert!(on_vmac.contains(&ll), "the base's link-local {ll} is the macvlan's only other address: {on_vmac}");
    assert_eq!(on_vmac.lines().count(), 2, "{on_vmac}");
    b.wait_for(|d| d.status()["vrrp"][0]["master"]["priority"] == 100, "the backup hears its master");
    let st = b.status();
    assert_eq!(st["vrrp"][0]["dropped"], serde_json::json!({}), "{st}");
    let client = lan.host(2);
    client.run(|| std::net::UdpSocket::bind("[::]:0").and_then(|s| s.send_to(b"x", "[2001:db8::100]:9"))).unwrap().unwrap();
    wait_until(
        "the client finds the VIP at the IPv6 virtual MAC",
        || client.ip(&["-6", "neigh", "show", "2001:db8::100"]).unwrap_or_default().contains("00:00:5e:00:02:33"),
        || client.ip(&["-6", "neigh"]).unwrap_or_default(),
    );
}

/// `lvsd doctor` on the backup hears the master's adverts where they arrive: on the virtual
/// MAC interface, which takes the frames from that MAC from eth0.
#[test]
fn doctor_hears_the_master_on_the_virtual_mac() {
    if !privileged_or_skip("doctor_hears_the_master_on_the_virtual_mac") {
        return;
    }
    let lan = lan();
    let src = policy("");
    let (_a, b) = pair(&lan, &src);
    let out = lan
        .host(1)
        .exec(
            lvsd_bin(),
            &[
                "doctor",
                "--json",
                "-p",
                b.policy.to_str().unwrap(),
                "--node",
                "lvs02",
                "--listen",
                "2",
                "--control",
                b.socket.to_str().unwrap(),
            ],
        )
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let vrrp: Vec<&serde_json::Value> = doc["findings"].as_array().unwrap().iter().filter(|f| f["check"] == "vrrp").collect();
    assert!(
        vrrp.iter().any(|f| f["level"] == "PASS"
            && f["message"].as_str().unwrap().contains("VI_1 (VRID 51 on vrrp.51): master 192.0.2.1 (priority 100)")),
        "{vrrp:#?}"
    );
    assert!(vrrp.iter().all(|f| f["level"] == "PASS"), "{vrrp:#?}");
}

/// A host whose `all.rp_filter` is not 0 (Ubuntu sets 2): the macvlan, with no IPv4 address,
/// would drop every advert. As keepalived does, the value moves onto each link and `all` goes
/// to 0 while a virtual MAC runs; the backup hears its master, and the stop puts `all` back.
#[test]
fn a_strict_rp_filter_does_not_deafen_the_virtual_mac() {
    if !privileged_or_skip("a_strict_rp_filter_does_not_deafen_the_virtual_mac") {
        return;
    }
    let lan = lan();
    for h in 0..2 {
        lan.host(h).sysctl("net.ipv4.conf.all.rp_filter", "2").unwrap();
    }
    let read = |h: usize, key: &str| {
        lan.host(h).exec("sysctl", &["-n", key]).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap()
    };
    let (_a, mut b) = pair(&lan, &policy(""));
    b.wait_for(|d| d.status()["vrrp"][0]["master"]["priority"] == 100, "the backup hears its master");
    assert_eq!(read(1, "net.ipv4.conf.all.rp_filter"), "0");
    assert_eq!(read(1, "net.ipv4.conf.eth0.rp_filter"), "2", "eth0 filters as before");
    assert!(b.events("vrrp").iter().any(|e| e.contains("net.ipv4.conf.all.rp_filter was 2")), "{:?}", b.events("vrrp"));
    assert_eq!(b.stop(), 0);
    assert_eq!(read(1, "net.ipv4.conf.all.rp_filter"), "2", "put back at stop");
}
