//! Two lvsd directors on one LAN (network namespaces on a bridge): election, takeover after
//! SIGKILL, graceful handover, preemption and nopreempt, interface fault, sync groups.

mod common;
use common::lan::Lan;
use common::*;
use lvsd::net::netns::privileged_or_skip;

/// One policy for both nodes; VRRPv3 at 0.2 s keeps the test short (Master_Down_Interval
/// about 0.7 s).
fn policy(extra_vrrp: &str) -> String {
    format!(
        r#"
local master = lvsd.node == "lvs01"
lvsd.vrrp "VI_1" {{
  interface = "eth0", vrid = 51, version = 3, advert_int = 0.2,
  state = master and "master" or "backup",
  priority = master and 100 or 90,
  vips = {{ "192.0.2.100/24" }},
  {extra_vrrp}
}}
lvsd.service "web" {{ vip = "192.0.2.100:80", reals = {{ "198.51.100.1:80" }} }}
"#
    )
}

fn lan() -> Lan {
    let lan = Lan::new("lvp", 2).unwrap();
    for (i, h) in lan.hosts.iter().enumerate() {
        h.ip(&["addr", "add", &format!("192.0.2.{}/24", i + 1), "dev", "eth0"]).unwrap();
    }
    lan
}

/// A second link in lvs01 that a test can take down (`trk1`, whose peer `trk0` goes down
/// with it): a veth pair inside the namespace.
fn tracked_link(lan: &Lan) {
    lan.host(0).ip(&["link", "add", "trk0", "type", "veth", "peer", "name", "trk1"]).unwrap();
    lan.host(0).ip(&["link", "set", "trk0", "up"]).unwrap();
    lan.host(0).ip(&["link", "set", "trk1", "up"]).unwrap();
}

fn has_vip(lan: &Lan, host: usize) -> bool {
    lan.host(host).ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap().contains("192.0.2.100/24")
}

fn start(lan: &Lan, host: usize, src: &str) -> Daemon {
    Daemon::start_in(Some(lan.host(host).name()), src, &format!("lvs0{}", host + 1), &[])
}

#[test]
fn election_kill_restart_and_graceful_stop() {
    if !privileged_or_skip("election_kill_restart_and_graceful_stop") {
        return;
    }
    let lan = lan();
    let src = policy("");
    let mut a = start(&lan, 0, &src);
    let b = start(&lan, 1, &src);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 backup");
    assert!(has_vip(&lan, 0) && !has_vip(&lan, 1), "only the master holds the VIP");
    let st = b.status();
    assert_eq!(st["vrrp"][0]["master"]["priority"], 100, "the backup sees the master: {st}");

    // SIGKILL: the backup takes over after Master_Down_Interval; the dead master's VIP stays
    // behind (as with keepalived).
    a.kill9();
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 takes over");
    assert!(b.events("vrrp").iter().any(|e| e.contains("backup -> master (master_down")), "{:?}", b.events("vrrp"));
    assert!(has_vip(&lan, 1));

    // Restart: the stale VIP is removed before electing; priority 100 preempts 90.
    let a = a.restart(Some(lan.host(0).name()), "lvs01", &[]);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 preempts");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 steps down");
    assert!(b.events("vrrp").iter().any(|e| e.contains("master -> backup (higher_priority")), "{:?}", b.events("vrrp"));
    assert!(has_vip(&lan, 0) && !has_vip(&lan, 1));

    // Graceful stop: priority 0 is sent, the backup takes over after skew time only.
    let mut a = a;
    assert_eq!(a.stop(), 0);
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "handover");
    assert!(b.events("vrrp").iter().any(|e| e.contains("backup -> master (master_stopped")), "{:?}", b.events("vrrp"));
    assert!(!has_vip(&lan, 0), "a graceful stop removes the VIP");
}

#[test]
fn nopreempt_and_yield() {
    if !privileged_or_skip("nopreempt_and_yield") {
        return;
    }
    let lan = lan();
    // Both start as backup with nopreempt: whoever is master keeps it.
    let src = policy("nopreempt = true,").replace("state = master and \"master\" or \"backup\",", "");
    let b = start(&lan, 1, &src);
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 alone becomes master");
    let a = start(&lan, 0, &src);
    a.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs01 backup");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(a.vrrp_state("VI_1"), "backup", "nopreempt: the higher priority does not take over");
    assert_eq!(b.vrrp_state("VI_1"), "master");

    // yield from the REPL over a pipe: lvs02 sends priority 0 once; lvs01 takes over within
    // Skew_Time ((256 - 100) / 256 x 0.2 s = 122 ms, RFC 5798 6.4.2); lvs02 stays backup.
    let out = b.repl("lvsd.yield(\"VI_1\")\n");
    assert!(!out.contains("error"), "{out}");
    // The VRRP thread takes the yield and then publishes its state: what the REPL reads
    // right after may be from before.
    b.wait_for(|d| d.repl("lvsd.state.vrrp[1].priority\n").lines().last() == Some("1"), "held at priority 1 after the yield");
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 takes over after the yield");
    assert!(a.events("vrrp").iter().any(|e| e.contains("master_stopped")), "{:?}", a.events("vrrp"));
    let yielded = b.event_at("yield", "yielding");
    let took = a.event_at("vrrp", "backup -> master");
    let skew = (256.0 - 100.0) / 256.0 * 0.2;
    eprintln!("yield: lvs01 master {:.1} ms after lvs02 yielded (skew time {:.1} ms)", (took - yielded) * 1e3, skew * 1e3);
    assert!(
        took >= yielded && took - yielded <= skew + 0.1,
        "took over {:.0} ms after the yield (skew time {:.0} ms)",
        (took - yielded) * 1e3,
        skew * 1e3
    );
    assert_eq!(b.vrrp_state("VI_1"), "backup");
    assert!(has_vip(&lan, 0) && !has_vip(&lan, 1));
}

#[test]
fn interface_down_is_fault_and_the_other_takes_over() {
    if !privileged_or_skip("interface_down_is_fault_and_the_other_takes_over") {
        return;
    }
    let lan = lan();
    let src = policy("");
    let a = start(&lan, 0, &src);
    let b = start(&lan, 1, &src);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master");
    lan.host(0).ip(&["link", "set", "eth0", "down"]).unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "fault", "lvs01 fault");
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 master");
    lan.host(0).ip(&["link", "set", "eth0", "up"]).unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 recovers and preempts");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 backup again");
}

#[test]
fn sync_group_moves_together() {
    if !privileged_or_skip("sync_group_moves_together") {
        return;
    }
    let lan = lan();
    tracked_link(&lan);
    let src = r#"
local master = lvsd.node == "lvs01"
lvsd.vrrp "VI_1" { interface = "eth0", vrid = 51, version = 3, advert_int = 0.2,
  priority = master and 100 or 90, vips = { "192.0.2.100/24" },
  track_interfaces = master and { "trk0" } or nil }
lvsd.vrrp "VI_2" { interface = "eth0", vrid = 52, version = 3, advert_int = 0.2,
  priority = master and 100 or 90, vips = { "192.0.2.101/24" } }
lvsd.sync_group "G" { instances = { "VI_1", "VI_2" } }
"#;
    let a = start(&lan, 0, src);
    let b = start(&lan, 1, src);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master" && d.vrrp_state("VI_2") == "master", "lvs01 master of both");
    // The tracked link goes down: VI_1 faults, and the group sends VI_2 to fault with it.
    lan.host(0).ip(&["link", "set", "trk1", "down"]).unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "fault" && d.vrrp_state("VI_2") == "fault", "both in fault");
    b.wait_for(|d| d.vrrp_state("VI_1") == "master" && d.vrrp_state("VI_2") == "master", "lvs02 master of both");
}

#[test]
fn exec_track_lowers_priority_and_the_peer_preempts() {
    if !privileged_or_skip("exec_track_lowers_priority_and_the_peer_preempts") {
        return;
    }
    let lan = lan();
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("healthy");
    std::fs::write(&flag, "").unwrap();
    // keepalived's vrrp_script as an exec track: `test -e FLAG`, weight -20, fall 2, rise 1.
    let extra = format!(
        "track = master and {{ lvsd.track.exec {{ name = \"chk\", command = {{ \"test\", \"-e\", \"{}\" }}, interval = 0.2, weight = -20, fall = 2 }} }} or nil,",
        flag.display()
    );
    let src = policy(&extra);
    let a = start(&lan, 0, &src);
    let b = start(&lan, 1, &src);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 backup");
    std::fs::remove_file(&flag).unwrap();
    a.wait_for(|d| d.status()["vrrp"][0]["priority"] == 80, "priority 100 - 20");
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 (90) preempts lvs01 (80)");
    assert!(a.events("track").iter().any(|e| e.contains("track chk is down")), "{:?}", a.events("track"));
    std::fs::write(&flag, "").unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 back at 100 preempts");
}

/// keepalived's track_file, the operator's maintenance switch: the number in the file times
/// the weight (1) is added to the priority, -254 is Fault, a missing file is 0.
#[test]
fn a_tracked_file_moves_the_priority_and_faults_at_minus_254() {
    if !privileged_or_skip("a_tracked_file_moves_the_priority_and_faults_at_minus_254") {
        return;
    }
    let lan = lan();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("maintenance");
    let extra =
        format!("track = master and {{ lvsd.track.file {{ name = \"maint\", path = \"{}\", interval = 0.2 }} }} or nil,", file.display());
    let src = policy(&extra);
    let a = start(&lan, 0, &src);
    let b = start(&lan, 1, &src);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master (no file: 0)");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 backup");
    std::fs::write(&file, "-20\n").unwrap();
    a.wait_for(|d| d.status()["vrrp"][0]["priority"] == 80, "priority 100 - 20");
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 (90) preempts lvs01 (80)");
    assert!(a.events("track").iter().any(|e| e.contains("track maint is down (weight -20)")), "{:?}", a.events("track"));
    std::fs::write(&file, "15").unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "master" && d.status()["vrrp"][0]["priority"] == 115, "lvs01 at 115 preempts");
    std::fs::write(&file, "-254").unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "fault", "-254 is Fault");
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 takes over");
    // Not a number keepalived takes: ignored, the last value stands.
    std::fs::write(&file, "99999999999").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(a.vrrp_state("VI_1"), "fault");
    std::fs::remove_file(&file).unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "master" && d.status()["vrrp"][0]["priority"] == 100, "no file: back at 100");
}

/// An address owner whose maintenance file says -254 when it starts is never master, not even
/// for the moment before the file is first read (keepalived reads it before starting); the
/// file gone, the owner takes over.
#[test]
fn an_owner_in_maintenance_at_start_is_never_master() {
    if !privileged_or_skip("an_owner_in_maintenance_at_start_is_never_master") {
        return;
    }
    let lan = lan();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("maintenance");
    std::fs::write(&file, "-254\n").unwrap();
    let extra = format!(
        "priority = master and 255 or 90, track = master and {{ lvsd.track.file {{ name = \"maint\", path = \"{}\", interval = 0.2 }} }} or nil,",
        file.display()
    );
    let src = policy(&extra);
    let b = start(&lan, 1, &src);
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 master alone");
    let a = start(&lan, 0, &src);
    a.wait_for(|d| d.vrrp_state("VI_1") == "fault", "the owner in Fault (maintenance)");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert_eq!(a.vrrp_state("VI_1"), "fault");
    let to_master: Vec<String> = a.events("vrrp").into_iter().filter(|e| e.contains("-> master")).collect();
    assert!(to_master.is_empty(), "the owner was master: {to_master:?}");
    assert!(b.events("vrrp").iter().filter(|e| e.contains("-> backup")).count() == 1, "lvs02 never left master: {:?}", b.events("vrrp"));
    std::fs::remove_file(&file).unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "the owner takes over");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 backup");
}

#[test]
fn hundred_saves_on_the_master_flap_nothing() {
    if !privileged_or_skip("hundred_saves_on_the_master_flap_nothing") {
        return;
    }
    let lan = lan();
    let src = policy("");
    let a = start(&lan, 0, &src);
    let b = start(&lan, 1, &src);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 backup");
    let (ta, tb) = (a.events("vrrp").len(), b.events("vrrp").len());
    for i in 0..100u32 {
        // Valid saves change a real's weight (and once the VIP list); every seventh is broken.
        let body = if i % 7 == 6 {
            "lvsd.vrrp \"VI_1\" { interface = ".to_string()
        } else {
            src.replace("\"198.51.100.1:80\"", &format!("{{ address = \"198.51.100.1:80\", weight = {} }}", i + 1))
        };
        let tmp = a.policy.with_extension("tmp");
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, &a.policy).unwrap();
        // A pause longer than the watcher's settle time (200 ms) now and then lets a save apply.
        std::thread::sleep(std::time::Duration::from_millis(if i % 10 == 0 { 350 } else { 10 }));
    }
    let last = src.replace("\"198.51.100.1:80\"", "{ address = \"198.51.100.1:80\", weight = 100 }");
    std::fs::write(&a.policy, &last).unwrap();
    a.wait_for(|d| d.status()["services"][0]["reals"][0]["weight"] == 100, "the last save to apply");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(a.events("vrrp").len(), ta, "no transition on the master: {:?}", a.events("vrrp"));
    assert_eq!(b.events("vrrp").len(), tb, "no transition on the backup: {:?}", b.events("vrrp"));
    assert_eq!(a.vrrp_state("VI_1"), "master");
    let st = a.status();
    assert!(st["generation"].as_u64().unwrap() > 2, "reloads happened: {}", st["generation"]);
    assert!(st["reloads"]["failed"].as_u64().unwrap() >= 1 || st["last_reload"]["ok"] == true);
}

/// An instance with a source address of its own and no peers (keepalived's `mcast_src_ip`,
/// or `unicast_src_ip` without `unicast_peer`, which keepalived runs as multicast): its
/// multicast adverts leave from that address, so VRRPv3's checksum, which covers it, holds at
/// the peer, and the peer sees that address as the master.
#[test]
fn multicast_adverts_leave_from_the_configured_source() {
    if !privileged_or_skip("multicast_adverts_leave_from_the_configured_source") {
        return;
    }
    let lan = lan();
    // A second address on lvs01's link, not its primary one.
    lan.host(0).ip(&["addr", "add", "192.0.2.9/24", "dev", "eth0"]).unwrap();
    let src = policy(r#"unicast_src = lvsd.node == "lvs01" and "192.0.2.9" or nil,"#);
    backup_hears_master_from(&lan, &src, "VI_1", "192.0.2.9");
}

/// A configured source that is not an address of the host: every advert would fail. The
/// instance stays in Fault (it used to go back to Master after each send fault, taking and
/// announcing the VIPs every few seconds) until the address is there, and goes back to Fault
/// when it is taken away.
#[test]
fn a_source_that_is_not_local_holds_the_instance_in_fault() {
    if !privileged_or_skip("a_source_that_is_not_local_holds_the_instance_in_fault") {
        return;
    }
    let lan = lan();
    let src = policy(r#"unicast_src = lvsd.node == "lvs01" and "192.0.2.77" or nil,"#);
    let a = start(&lan, 0, &src);
    let b = start(&lan, 1, &src);
    a.wait_for(|d| d.vrrp_state("VI_1") == "fault", "lvs01 in Fault");
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 master");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(a.vrrp_state("VI_1"), "fault");
    let events = a.events("vrrp");
    assert!(!events.iter().any(|e| e.contains("-> master")), "lvs01 was master: {events:?}");
    let errors = a.events("vrrp_error");
    assert!(errors.iter().any(|e| e.contains("unicast_src 192.0.2.77 is not an address of this host")), "{errors:?}");
    // The address arrives: lvs01 (100) takes over from lvs02 (90), from that address.
    lan.host(0).ip(&["addr", "add", "192.0.2.77/24", "dev", "eth0"]).unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master once its source is there");
    b.wait_for(|d| d.status()["vrrp"][0]["master"]["address"] == "192.0.2.77", "lvs02 hears lvs01 from 192.0.2.77");
    // And goes: Fault again, lvs02 takes over.
    lan.host(0).ip(&["addr", "del", "192.0.2.77/24", "dev", "eth0"]).unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "fault", "lvs01 in Fault without its source");
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 master again");
}

/// A send fault whose cause stays (the only unicast peer is the LAN's broadcast address, which
/// a socket without SO_BROADCAST may not send to) lasts twice as long
/// each time the instance comes back and still cannot send, instead of making it Master (with
/// the VIPs) every few seconds.
#[test]
fn a_send_fault_that_keeps_coming_back_is_held_longer_each_time() {
    if !privileged_or_skip("a_send_fault_that_keeps_coming_back_is_held_longer_each_time") {
        return;
    }
    let lan = lan();
    let src = policy(r#"unicast_peers = { "192.0.2.255" },"#);
    let a = start(&lan, 0, &src);
    let holds = |d: &Daemon| -> Vec<String> {
        d.events("vrrp_error")
            .iter()
            .filter_map(|e| e.split("fault for at least ").nth(1))
            .map(|h| h.split(',').next().unwrap().to_string())
            .collect()
    };
    a.wait_for(|d| holds(d).len() >= 3, "three send faults");
    assert_eq!(holds(&a)[..3], ["1 s", "2 s", "4 s"], "{:?}", a.events("vrrp_error"));
    let errors = a.events("vrrp_error");
    assert!(errors[0].contains("Permission denied"), "{errors:?}");
}

/// keepalived's virtual_routes: the master holds the routes (one through a VIP as its source,
/// a blackhole, one in another table), the backup none; they move with mastership, follow a
/// reload on the master, and come back when the kernel drops them with their link.
#[test]
fn routes_follow_the_master() {
    if !privileged_or_skip("routes_follow_the_master") {
        return;
    }
    let lan = lan();
    let routes = r#"routes = { "203.0.113.0/24 via 192.0.2.254 src 192.0.2.100", "blackhole 198.51.100.128/25",
  "198.51.100.0/25 dev eth0 table 100 metric 7" },"#;
    let src = policy(routes);
    let shown = |h: usize| {
        let main = lan.host(h).ip(&["route", "show"]).unwrap();
        // A table with no route in it does not exist: an error, read as empty.
        let t100 = lan.host(h).ip(&["route", "show", "table", "100"]).unwrap_or_default();
        [
            main.lines().any(|l| l.starts_with("203.0.113.0/24 via 192.0.2.254 dev eth0") && l.contains("src 192.0.2.100")),
            main.lines().any(|l| l.starts_with("blackhole 198.51.100.128/25")),
            t100.lines().any(|l| l.starts_with("198.51.100.0/25 dev eth0") && l.contains("metric 7")),
        ]
    };
    let a = start(&lan, 0, &src);
    let b = start(&lan, 1, &src);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 backup");
    assert_eq!(shown(0), [true; 3], "{}", lan.host(0).ip(&["route", "show", "table", "all"]).unwrap());
    assert_eq!(shown(1), [false; 3]);
    assert_eq!(a.status()["vrrp"][0]["routes"][1], "blackhole 198.51.100.128/25");
    // A reload on the master: one route goes, one comes.
    let g = a.status()["generation"].as_u64().unwrap();
    let changed = policy(
        r#"routes = { "203.0.113.0/24 via 192.0.2.254 src 192.0.2.100", "unreachable 198.51.100.192/26",
  "198.51.100.0/25 dev eth0 table 100 metric 7" },"#,
    );
    std::fs::write(&a.policy, &changed).unwrap();
    a.wait_for(|d| d.status()["generation"].as_u64().unwrap() > g, "the reload");
    let main = lan.host(0).ip(&["route", "show"]).unwrap();
    assert!(!main.contains("blackhole 198.51.100.128/25") && main.contains("unreachable 198.51.100.192/26"), "{main}");
    assert_eq!(a.vrrp_state("VI_1"), "master");
    // The link goes down and up: the kernel drops the routes through it; they come back.
    lan.host(0).ip(&["link", "set", "eth0", "down"]).unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "fault", "lvs01 in Fault");
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 takes over");
    assert!(shown(1)[0], "lvs02 holds the routes");
    assert!(!lan.host(0).ip(&["route", "show"]).unwrap().contains("unreachable 198.51.100.192/26"), "lvs01 in Fault holds none");
    lan.host(0).ip(&["link", "set", "eth0", "up"]).unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 takes over again");
    a.wait_for(|_| shown(0) == [true, false, true], "lvs01 holds the routes again");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 backup");
    assert_eq!(shown(1), [false; 3], "lvs02 let them go");
}

/// keepalived's vrrp_track_process: the instance is up while its process runs (a copy of
/// sleep under a name of its own), Fault when it is gone, and back when it runs again.
#[test]
fn a_tracked_process_holds_the_instance() {
    if !privileged_or_skip("a_tracked_process_holds_the_instance") {
        return;
    }
    let lan = lan();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("lvsdtrk{}", std::process::id() % 100_000);
    let prog = dir.path().join(&name);
    std::fs::copy("/bin/sleep", &prog).unwrap();
    let run = || std::process::Command::new(&prog).arg("600").spawn().unwrap();
    let mut p = run();
    let extra = format!("track = {{ lvsd.track.process {{ name = \"proc\", process = \"{name}\", interval = 0.2 }} }},");
    let a = start(&lan, 0, &policy(&extra));
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master while its process runs");
    p.kill().unwrap();
    p.wait().unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "fault", "Fault once the process is gone");
    let mut p = run();
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "master again");
    p.kill().unwrap();
    p.wait().unwrap();
}

/// keepalived's skip_check_adv_addr: a master reloaded with one more VIP before its backup is
/// still heard by a backup that skips the address check for the master it knows; one that
/// checks drops the adverts and takes over (two masters until the backup is reloaded too).
#[test]
fn skip_check_adv_addr_keeps_hearing_a_master_with_new_vips() {
    if !privileged_or_skip("skip_check_adv_addr_keeps_hearing_a_master_with_new_vips") {
        return;
    }
    for skip in [true, false] {
        let lan = lan();
        let src = policy(if skip { "skip_check_adv_addr = true," } else { "" });
        let a = start(&lan, 0, &src);
        let b = start(&lan, 1, &src);
        a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master");
        b.wait_for(|d| d.vrrp_state("VI_1") == "backup" && !d.status()["vrrp"][0]["master"].is_null(), "lvs02 backup, hearing lvs01");
        let g = a.status()["generation"].as_u64().unwrap();
        std::fs::write(&a.policy, src.replace(r#"vips = { "192.0.2.100/24" }"#, r#"vips = { "192.0.2.100/24", "192.0.2.101/24" }"#))
            .unwrap();
        a.wait_for(|d| d.status()["generation"].as_u64().unwrap() > g, "lvs01 reloaded with a second VIP");
        if skip {
            std::thread::sleep(std::time::Duration::from_secs(2));
            let st = b.status();
            assert_eq!(st["vrrp"][0]["state"], "backup", "{st}");
            assert_eq!(st["vrrp"][0]["dropped"], serde_json::json!({}), "{st}");
        } else {
            b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 drops the adverts and takes over");
            assert!(b.status()["vrrp"][0]["dropped"]["address_list"].as_u64().unwrap_or(0) > 0, "{}", b.status());
        }
    }
}

/// A VRRPv2 instance without VIPs (keepalived runs one; notify programs may set an address):
/// its adverts list no address, the pair elects one master and the backup drops nothing.
#[test]
fn an_instance_without_vips_still_elects_one_master() {
    if !privileged_or_skip("an_instance_without_vips_still_elects_one_master") {
        return;
    }
    let lan = lan();
    let src = r#"
lvsd.vrrp "VI_0" { interface = "eth0", vrid = 60, priority = lvsd.node == "lvs01" and 150 or 100 }
"#;
    let a = start(&lan, 0, src);
    let b = start(&lan, 1, src);
    a.wait_for(|d| d.vrrp_state("VI_0") == "master", "lvs01 master");
    b.wait_for(|d| d.vrrp_state("VI_0") == "backup" && d.status()["vrrp"][0]["master"]["priority"] == 150, "lvs02 backup, hearing lvs01");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let st = b.status();
    assert_eq!((st["vrrp"][0]["state"].as_str(), &st["vrrp"][0]["dropped"]), (Some("backup"), &serde_json::json!({})), "{st}");
    drop(a);
    b.wait_for(|d| d.vrrp_state("VI_0") == "master", "lvs02 takes over");
}

/// lvs01 (the policy's master) and lvs02 on `lan` with policy `src`: lvs02 settles as backup
/// of `instance`, sees the master at `address`, and ten adverts later still does and has
/// dropped none of them.
fn backup_hears_master_from(lan: &Lan, src: &str, instance: &str, address: &str) {
    let a = start(lan, 0, src);
    let b = start(lan, 1, src);
    a.wait_for(|d| d.vrrp_state(instance) == "master", "lvs01 master");
    b.wait_for(|d| d.vrrp_state(instance) == "backup" && !d.status()["vrrp"][0]["master"].is_null(), "lvs02 backup, hearing lvs01");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let st = b.status();
    assert_eq!(st["vrrp"][0]["state"], "backup", "{st}");
    assert_eq!(st["vrrp"][0]["master"]["address"], address, "{st}");
    assert_eq!(st["vrrp"][0]["dropped"], serde_json::json!({}), "{st}");
    assert_eq!(a.vrrp_state(instance), "master");
}

/// The same for IPv6: lvs01 has two link-local addresses and sends from the one the policy
/// names, whichever the kernel lists first (here it lists the newer, fe80::9, first; before
/// adverts carried their source, lvs02 never settled as lvs01's backup here).
#[test]
fn ipv6_multicast_adverts_leave_from_the_configured_source() {
    if !privileged_or_skip("ipv6_multicast_adverts_leave_from_the_configured_source") {
        return;
    }
    let lan = lan();
    lan.host(0).ip(&["addr", "add", "fe80::8/64", "dev", "eth0", "nodad"]).unwrap();
    lan.host(0).ip(&["addr", "add", "fe80::9/64", "dev", "eth0", "nodad"]).unwrap();
    let src = r#"
local master = lvsd.node == "lvs01"
lvsd.vrrp "VI_6" {
  interface = "eth0", vrid = 61, version = 3, advert_int = 0.2,
  state = master and "master" or "backup", priority = master and 100 or 90,
  vips = { "2001:db8::100/64" },
  unicast_src = master and "fe80::8" or nil,
}
"#;
    backup_hears_master_from(&lan, src, "VI_6", "fe80::8");
}

/// An instance that cannot start (its interface has no address yet: the network came up after
/// lvsd) holds nothing, is tried again each second with its reason reported once, and starts
/// as soon as it can.
#[test]
fn an_instance_that_could_not_start_starts_when_it_can() {
    if !privileged_or_skip("an_instance_that_could_not_start_starts_when_it_can") {
        return;
    }
    let lan = Lan::new("lvf", 1).unwrap();
    let a = start(&lan, 0, &policy(""));
    let st = a.status();
    assert_eq!(st["vrrp"][0]["state"], "not running", "{st}");
    assert!(st["vrrp"][0]["error"].as_str().unwrap().contains("eth0 has no IPv4 address to send adverts from"), "{st}");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(a.vrrp_state("VI_1"), "not running");
    assert!(!has_vip(&lan, 0));
    let reported = a.events("vrrp_error").iter().filter(|e| e.contains("has no IPv4 address")).count();
    assert_eq!(reported, 1, "the same reason is reported once: {:?}", a.events("vrrp_error"));

    lan.host(0).ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]).unwrap();
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "the instance starts and, alone, becomes master");
    assert!(has_vip(&lan, 0));
    assert!(a.events("vrrp").iter().any(|e| e.contains("vrrp 'VI_1' started (it could not: ")), "{:?}", a.events("vrrp"));
}

/// keepalived's `init_fail`: a weighted track counts as failed until its program first
/// succeeds, so the instance starts at its lowered priority; without it, at its own.
#[test]
fn init_fail_starts_a_weighted_track_failed() {
    if !privileged_or_skip("init_fail_starts_a_weighted_track_failed") {
        return;
    }
    let lan = lan();
    let track = |init_fail: bool| {
        format!(
            r#"track = {{ lvsd.track.exec {{ name = "slow", command = {{ "/bin/sh", "-c", "sleep 1.5" }}, weight = -50, interval = 5, timeout = 4, init_fail = {init_fail} }} }},"#
        )
    };
    let priority = |d: &Daemon| d.repl("lvsd.state.vrrp[1].priority\n").lines().last().unwrap_or("").to_string();
    let a = start(&lan, 0, &policy(&track(true)));
    assert_eq!(priority(&a), "50", "failed from the start");
    a.wait_for(|d| priority(d) == "100", "the first success gives the priority back");
    drop(a);
    let b = start(&lan, 1, &policy(&track(false)));
    assert_eq!(priority(&b), "90", "up until a first failure");
}

/// The VRRP thread's loop failing (a bug; injected here, debug builds only) must not leave the
/// master's VIP up with nobody advertising it, which would make two holders once the backup
/// takes over: the VIP is taken down at once, the instance goes to Fault with an event saying
/// why, and it starts again, elects, and (the higher priority) takes the VIP back.
#[test]
fn a_failed_vrrp_thread_lets_go_of_the_vip_and_starts_again() {
    if !privileged_or_skip("a_failed_vrrp_thread_lets_go_of_the_vip_and_starts_again") {
        return;
    }
    let lan = lan();
    let a = Daemon::start_in_env(Some(lan.host(0).name()), &policy(""), "lvs01", &[("LVSD_TEST_VRRP_PANIC_AFTER", "2")]);
    let b = start(&lan, 1, &policy(""));
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 backup");
    let failed = |d: &Daemon| d.events("vrrp_error").into_iter().find(|e| e.contains("the VRRP thread failed"));
    a.wait_for(|d| failed(d).is_some(), "the injected failure");
    let why = failed(&a).unwrap();
    assert!(why.contains("injected panic") && why.contains("taken down: VI_1 VIP 192.0.2.100"), "{why}");
    assert!(a.events("vrrp").iter().any(|e| e.contains("VI_1: master -> fault (the VRRP thread failed")), "{:?}", a.events("vrrp"));
    b.wait_for(|d| d.events("vrrp").iter().any(|e| e.contains("backup -> master (master_down")), "lvs02 takes over");
    // Started again: the higher priority preempts, and one director holds the VIP.
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master again");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 backup again");
    assert!(has_vip(&lan, 0) && !has_vip(&lan, 1));
    assert!(a.log().contains("injected panic"), "the panic is in the log");
}

/// The director's loop failing (a bug; injected, debug builds only) ends the process, but not
/// as a SIGKILL would: the VRRP thread stops its instances first, as on a graceful stop, so the
/// backup takes over after Skew_Time and no VIP outlives the process.
#[test]
fn a_failed_director_loop_hands_over_before_the_process_ends() {
    if !privileged_or_skip("a_failed_director_loop_hands_over_before_the_process_ends") {
        return;
    }
    let lan = lan();
    let mut a = Daemon::start_in_env(Some(lan.host(0).name()), &policy(""), "lvs01", &[("LVSD_TEST_DIRECTOR_PANIC_AFTER", "2")]);
    let b = start(&lan, 1, &policy(""));
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 backup");
    assert_ne!(a.exit_code(), 0, "a failure is not a clean exit");
    assert!(a.log().contains("injected panic"), "{}", a.log());
    b.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs02 takes over");
    assert!(b.events("vrrp").iter().any(|e| e.contains("backup -> master (master_stopped")), "{:?}", b.events("vrrp"));
    assert!(!has_vip(&lan, 0), "the failed director's VIP is gone");
    assert!(has_vip(&lan, 1));
}

/// The VRRP thread's link watcher failing (a bug; injected at the first link change, debug
/// builds only) loses that change, but not for long: it is started again within a second and
/// reads every link's state anew, so a tracked link that went down still faults the instance.
#[test]
fn a_failed_link_watcher_is_started_again_and_misses_no_link() {
    if !privileged_or_skip("a_failed_link_watcher_is_started_again_and_misses_no_link") {
        return;
    }
    let lan = lan();
    tracked_link(&lan);
    let a = Daemon::start_in_env(
        Some(lan.host(0).name()),
        &policy("track_interfaces = { \"trk0\" },"),
        "lvs01",
        &[("LVSD_TEST_LINK_WATCH_PANIC_AFTER", "0")],
    );
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master");
    lan.host(0).ip(&["link", "set", "trk1", "down"]).unwrap();
    a.wait_for(|d| d.events("vrrp_error").iter().any(|e| e.contains("the link watcher stopped")), "the watcher started again");
    a.wait_for(|d| d.vrrp_state("VI_1") == "fault", "the tracked link's fall seen all the same");
    assert!(a.events("vrrp").iter().any(|e| e.contains("master -> fault (interface_down (trk0)")), "{:?}", a.events("vrrp"));
    assert!(a.log().contains("injected panic"), "{}", a.log());
}
