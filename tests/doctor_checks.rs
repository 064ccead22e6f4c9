//! `lvsd doctor` against faults planted in network namespaces (root only): each fault is
//! found with the right check and level, and the healthy setup passes. Peers are real:
//! keepalived 2.2.7 and lvsd directors on a namespace LAN.

mod common;
use common::Daemon;
use common::keepalived::{Keepalived, keepalived_available};
use common::lan::Lan;
use lvsd::net::netns::{Netns, privileged_or_skip, unique_name};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// `lvsd doctor --json ARGS` inside `ns`: (exit code, findings).
fn doctor(ns: &Netns, args: &[&str]) -> (i32, Vec<Value>) {
    let out =
        Command::new("ip").args(["netns", "exec", ns.name(), env!("CARGO_BIN_EXE_lvsd"), "doctor", "--json"]).args(args).output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("doctor output is not JSON ({e}): {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    assert_eq!(doc["exit"], code, "the exit code is the one in the report");
    (code, doc["findings"].as_array().unwrap().clone())
}

fn has(f: &[Value], check: &str, level: &str, text: &str) -> bool {
    f.iter().any(|x| x["check"] == check && x["level"] == level && x["message"].as_str().unwrap().contains(text))
}

fn levels(f: &[Value], check: &str) -> Vec<String> {
    f.iter().filter(|x| x["check"] == check).map(|x| x["level"].as_str().unwrap().to_owned()).collect()
}

/// nft must be there to read the rules (scripts/test installs nftables).
fn nft_available(test: &str) -> bool {
    if !privileged_or_skip(test) {
        return false;
    }
    Command::new("nft").arg("--version").output().is_ok()
        || lvsd::net::netns::cannot_run(test, "nft is not installed (scripts/test installs nftables)")
}

fn state_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

/// A host with eth0 (a veth whose peer stays inside) at 198.51.100.21/24.
fn host(prefix: &str) -> Netns {
    let ns = Netns::create(&unique_name(prefix)).unwrap();
    ns.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]).unwrap();
    ns.ip(&["addr", "add", "198.51.100.21/24", "dev", "eth0"]).unwrap();
    ns.ip(&["link", "set", "eth0p", "up"]).unwrap();
    ns.ip(&["link", "set", "eth0", "up"]).unwrap();
    ns
}

fn lvsd(ns: &Netns, args: &[&str]) -> i32 {
    Command::new("ip")
        .args(["netns", "exec", ns.name(), env!("CARGO_BIN_EXE_lvsd")])
        .args(args)
        .output()
        .unwrap()
        .status
        .code()
        .unwrap_or(-1)
}

fn policy_file(dir: &tempfile::TempDir, src: &str) -> String {
    let p = dir.path().join("policy.lua");
    std::fs::write(&p, src).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn realserver_healthy_then_each_fault() {
    if !nft_available("realserver_healthy_then_each_fault") {
        return;
    }
    let ns = host("lvdr");
    let dir = state_dir();
    let sd = dir.path().to_str().unwrap();
    assert_eq!(lvsd(&ns, &["realserver", "up", "--vip", "192.0.2.10", "--state-dir", sd]), 0);

    // Healthy: everything passes, VIPs found from the state file.
    let (code, f) = doctor(&ns, &["--state-dir", sd]);
    assert_eq!(code, 0, "{f:#?}");
    assert!(has(&f, "realserver", "PASS", "VIP 192.0.2.10 is bound on lo"), "{f:#?}");

    // Missing VIP on lo.
    ns.ip(&["addr", "del", "192.0.2.10/32", "dev", "lo"]).unwrap();
    let (code, f) = doctor(&ns, &["--vip", "192.0.2.10", "--state-dir", sd]);
    assert_eq!(code, 1);
    assert!(has(&f, "realserver", "FAIL", "VIP 192.0.2.10 is not bound on lo"), "{f:#?}");
    assert_eq!(levels(&f, "firewall"), ["PASS"]);

    // Missing ARP suppression: the VIP is back but the settings are as before `up`.
    assert_eq!(lvsd(&ns, &["realserver", "down", "--state-dir", sd]), 0);
    ns.ip(&["addr", "add", "192.0.2.10/32", "dev", "lo"]).unwrap();
    let (code, f) = doctor(&ns, &["--vip", "192.0.2.10", "--state-dir", sd]);
    assert_eq!(code, 1);
    assert!(has(&f, "realserver", "FAIL", "arp_ignore is 0 on eth0"), "{f:#?}");
    assert!(has(&f, "realserver", "FAIL", "arp_announce is below 2 on eth0"), "{f:#?}");
    assert!(has(&f, "realserver", "PASS", "bound on lo"), "{f:#?}");
    let fix = f.iter().find(|x| x["message"].as_str().unwrap().contains("arp_ignore")).unwrap()["fix"].as_str().unwrap().to_owned();
    assert!(fix.contains("lvsd realserver up --mode dr --vip 192.0.2.10"), "{fix}");

    // The VIP on eth0 instead: the server would answer ARP for it.
    ns.ip(&["addr", "del", "192.0.2.10/32", "dev", "lo"]).unwrap();
    ns.ip(&["addr", "add", "192.0.2.10/32", "dev", "eth0"]).unwrap();
    let (_, f) = doctor(&ns, &["--vip", "192.0.2.10", "--state-dir", sd]);
    assert!(has(&f, "realserver", "FAIL", "VIP 192.0.2.10 is on eth0"), "{f:#?}");
}

const VRRP_POLICY: &str = r#"
lvsd.vrrp "VI_1" { interface = "eth0", vrid = 51, priority = 100, advert_int = 1, auth_pass = "1111", vips = { "192.0.2.100" } }
"#;

#[test]
fn firewall_drop_of_vrrp_nft_and_iptables() {
    if !nft_available("firewall_drop_of_vrrp_nft_and_iptables") {
        return;
    }
    let ns = host("lvdf");
    let dir = state_dir();
    let p = policy_file(&dir, VRRP_POLICY);
    let (_, f) = doctor(&ns, &["-p", &p, "--listen", "0", "--control", "/nonexistent/lvsd.sock"]);
    assert_eq!(levels(&f, "firewall"), ["PASS"], "{f:#?}");

    let nft = |args: &[&str]| assert!(ns.exec("nft", args).unwrap().status.success());
    nft(&["add", "table", "inet", "f"]);
    nft(&["add", "chain", "inet", "f", "input", "{ type filter hook input priority 0; policy accept; }"]);
    nft(&["add", "rule", "inet", "f", "input", "ip", "protocol", "vrrp", "counter", "drop"]);
    let (code, f) = doctor(&ns, &["-p", &p, "--listen", "0", "--control", "/nonexistent/lvsd.sock"]);
    assert_eq!(code, 1);
    assert!(has(&f, "firewall", "FAIL", "drops VRRP (protocol 112) of VI_1 to 224.0.0.18 on eth0"), "{f:#?}");
    assert!(f.iter().any(|x| x["check"] == "firewall" && x["fix"].as_str().unwrap_or("").contains("accept")));
    nft(&["delete", "table", "inet", "f"]);

    // The same with iptables (Debian's iptables writes nftables rules; --dport on another
    // protocol must not confuse it).
    if ns.exec("iptables", &["-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"]).is_err() {
        eprintln!("iptables not installed: iptables part skipped");
        return;
    }
    ns.exec("iptables", &["-A", "INPUT", "-p", "112", "-j", "DROP"]).unwrap();
    let (code, f) = doctor(&ns, &["-p", &p, "--listen", "0", "--control", "/nonexistent/lvsd.sock"]);
    assert_eq!(code, 1);
    assert!(has(&f, "firewall", "FAIL", "drops VRRP"), "{f:#?}");
}

#[test]
fn ip_forward_off_with_a_nat_service_and_reals_reachability() {
    if !nft_available("ip_forward_off_with_a_nat_service_and_reals_reachability") {
        return;
    }
    let ns = host("lvdn");
    ns.ip(&["addr", "add", "198.51.100.22/24", "dev", "eth0"]).unwrap();
    // One real listens, the other refuses. The listener lives in the namespace; the kernel
    // completes handshakes into its backlog without accept().
    let _listener = ns.run(|| std::net::TcpListener::bind("198.51.100.21:8080").unwrap()).unwrap();
    let dir = state_dir();
    let p = policy_file(
        &dir,
        r#"lvsd.service "ssh" { vip = "192.0.2.100:22", protocol = "tcp", scheduler = "rr", forward = "nat", reals = { "198.51.100.21:8080", "198.51.100.22:8080" } }"#,
    );
    ns.sysctl("net.ipv4.ip_forward", "0").unwrap();
    let (code, f) = doctor(&ns, &["-p", &p, "--listen", "0", "--control", "/nonexistent/lvsd.sock"]);
    assert_eq!(code, 1);
    assert!(has(&f, "forward", "FAIL", "net.ipv4.ip_forward = 0, but NAT service(s) ssh need forwarding"), "{f:#?}");
    assert!(has(&f, "reach", "PASS", "1 real server(s) accept TCP connections"), "{f:#?}");
    assert!(has(&f, "reach", "FAIL", "real server 198.51.100.22:8080 of ssh is not reachable"), "{f:#?}");
    // No IPVS in this kernel: said plainly (or, in a kernel with IPVS, the service is missing).
    assert!(has(&f, "ipvs", "FAIL", "IPVS not available in this kernel") || has(&f, "ipvs", "FAIL", "not in the kernel"), "{f:#?}");
    assert!(has(&f, "events", "WARN", "no running lvsd"), "{f:#?}");

    ns.sysctl("net.ipv4.ip_forward", "1").unwrap();
    let (_, f) = doctor(&ns, &["-p", &p, "--listen", "0", "--control", "/nonexistent/lvsd.sock"]);
    assert_eq!(levels(&f, "forward"), ["PASS"], "{f:#?}");
}

fn keepalived_conf(vrid: u8, pass: &str) -> String {
    format!(
        "global_defs {{\n router_id K\n vrrp_version 2\n}}\nvrrp_instance VI_1 {{\n state MASTER\n interface eth0\n virtual_router_id {vrid}\n priority 100\n advert_int 1\n authentication {{\n auth_type PASS\n auth_pass {pass}\n }}\n virtual_ipaddress {{\n 192.0.2.100\n }}\n}}\n"
    )
}

#[test]
fn keepalived_peer_matching_then_vrid_and_auth_mismatch() {
    if !keepalived_available("keepalived_peer_matching_then_vrid_and_auth_mismatch") {
        return;
    }
    let lan = Lan::new("lvdk", 2).unwrap();
    lan.host(0).ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]).unwrap();
    lan.host(1).ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]).unwrap();
    let dir = state_dir();
    let p = policy_file(&dir, VRRP_POLICY);
    let args = ["-p", p.as_str(), "--listen", "3", "--control", "/nonexistent/lvsd.sock"];

    for (vrid, pass, expect) in [
        (51, "1111", None),
        (52, "1111", Some("192.0.2.2 advertises our VIP(s) 192.0.2.100 with VRID 52")),
        (51, "2222", Some("192.0.2.2 uses a different password")),
    ] {
        let k = Keepalived::start(lan.host(1), &keepalived_conf(vrid, pass));
        common::wait_until("keepalived master", || k.state("VI_1").as_deref() == Some("master"), || k.log());
        let (_, f) = doctor(lan.host(0), &args);
        match expect {
            None => {
                assert!(has(&f, "vrrp", "PASS", "VI_1 (VRID 51 on eth0): master 192.0.2.2 (priority 100), settings match"), "{f:#?}");
                assert_eq!(levels(&f, "vrrp"), ["PASS"], "{f:#?}");
            }
            Some(text) => {
                assert!(has(&f, "vrrp", "FAIL", text), "{text}: {f:#?}");
                assert!(!format!("{f:?}").contains("2222"), "never print a password");
            }
        }
    }
}

#[test]
fn two_lvsd_masters_seen_from_a_third_namespace() {
    if !nft_available("two_lvsd_masters_seen_from_a_third_namespace") {
        return;
    }
    let lan = Lan::new("lvd2", 3).unwrap();
    for h in 0..3 {
        lan.host(h).ip(&["addr", "add", &format!("192.0.2.{}/24", h + 1), "dev", "eth0"]).unwrap();
    }
    // Different passwords: each drops the other's adverts and both become master.
    let a = Daemon::start_in(Some(lan.host(0).name()), VRRP_POLICY, "a", &[]);
    let b = Daemon::start_in(Some(lan.host(1).name()), &VRRP_POLICY.replace("1111", "2222"), "b", &[]);
    common::wait_until(
        "both masters",
        || a.vrrp_state("VI_1") == "master" && b.vrrp_state("VI_1") == "master",
        || format!("{}\n{}", a.log(), b.log()),
    );
    let dir = state_dir();
    let p = policy_file(&dir, VRRP_POLICY);
    let (code, f) = doctor(lan.host(2), &["-p", &p, "--listen", "3", "--control", "/nonexistent/lvsd.sock"]);
    assert_eq!(code, 1);
    assert!(has(&f, "vrrp", "FAIL", "split brain, 2 masters at once: 192.0.2.1 (priority 100), 192.0.2.2 (priority 100)"), "{f:#?}");
    assert!(has(&f, "vrrp", "FAIL", "192.0.2.2 uses a different password"), "{f:#?}");

    // On a director itself: its own adverts count as one master, and its lvsd answers.
    let (_, f) =
        doctor(lan.host(0), &["-p", a.policy.to_str().unwrap(), "--node", "a", "--listen", "3", "--control", a.socket.to_str().unwrap()]);
    assert!(has(&f, "vrrp", "FAIL", "split brain, 2 masters at once: 192.0.2.2 (priority 100), this host (lvsd reports master"), "{f:#?}");
    assert!(f.iter().any(|x| x["check"] == "events"), "{f:#?}");
    assert!(!has(&f, "events", "WARN", "no running lvsd"), "{f:#?}");
}
