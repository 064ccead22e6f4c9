//! `lvsd realserver up|down|status` in network namespaces (root only): addresses and sysctls
//! go in place and come back exactly, repeated commands change nothing, status tells.
//! Checked with iproute2 and /proc, not with lvsd's own readers.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use lvsd::net::netns::{Netns, privileged_or_skip, unique_name};

fn lvsd_in(ns: &Netns, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("ip").args(["netns", "exec", ns.name(), env!("CARGO_BIN_EXE_lvsd")]).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A root-only state directory under target/ (state files never go to /tmp).
fn state_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

fn sysctl(ns: &Netns, name: &str) -> String {
    let out = ns.exec("cat", &[&format!("/proc/sys/net/ipv4/conf/{name}")]).unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn set(ns: &Netns, name: &str, v: &str) {
    ns.sysctl(&format!("net/ipv4/conf/{name}"), v).unwrap();
}

const ARP: [&str; 4] = ["lo/arp_ignore", "lo/arp_announce", "all/arp_ignore", "all/arp_announce"];

fn arp_values(ns: &Netns) -> Vec<String> {
    ARP.iter().map(|k| sysctl(ns, k)).collect()
}

fn lo_addrs(ns: &Netns) -> String {
    ns.ip(&["-o", "addr", "show", "dev", "lo"]).unwrap()
}

fn state_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect()
}

/// A namespace with an eth0 (veth with its peer in the same namespace) and odd ARP values.
fn server(prefix: &str) -> Netns {
    let ns = Netns::create(&unique_name(prefix)).unwrap();
    ns.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]).unwrap();
    ns.ip(&["addr", "add", "198.51.100.21/24", "dev", "eth0"]).unwrap();
    ns.ip(&["link", "set", "eth0", "up"]).unwrap();
    // Values no default has, so a restore to "the default" would be caught.
    set(&ns, "lo/arp_ignore", "2");
    set(&ns, "lo/arp_announce", "1");
    set(&ns, "all/arp_ignore", "3");
    set(&ns, "all/arp_announce", "1");
    ns
}

#[test]
fn dr_up_down_round_trips_exactly() {
    if !privileged_or_skip("dr_up_down_round_trips_exactly") {
        return;
    }
    let ns = server("lvrs");
    let dir = state_dir();
    let sd = dir.path().to_str().unwrap();
    let before_addrs = lo_addrs(&ns);
    let before_arp = arp_values(&ns);
    assert_eq!(before_arp, ["2", "1", "3", "1"]);

    let (code, _, _) = lvsd_in(&ns, &["realserver", "status", "--vip", "192.0.2.10", "--state-dir", sd]);
    assert_eq!(code, 1, "status before up");

    let up = ["realserver", "up", "--vip", "192.0.2.10", "--vip", "203.0.113.7", "--state-dir", sd];
    let (code, out, err) = lvsd_in(&ns, &up);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(arp_values(&ns), ["1", "2", "1", "2"]);
    let addrs = lo_addrs(&ns);
    assert!(addrs.contains("inet 192.0.2.10/32 scope global lo:10"), "{addrs}");
    assert!(addrs.contains("inet 203.0.113.7/32 scope global lo:7"), "{addrs}");
    let files = state_files(dir.path());
    assert_eq!(files.len(), 1);
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "state file is root-only");
    let state1 = std::fs::read_to_string(&files[0]).unwrap();

    // Idempotent: same addresses, values and saved originals.
    let (code, out, _) = lvsd_in(&ns, &up);
    assert_eq!(code, 0);
    assert!(out.contains("present 192.0.2.10/32") && out.contains("(already)"), "{out}");
    assert_eq!(lo_addrs(&ns), addrs);
    assert_eq!(arp_values(&ns), ["1", "2", "1", "2"]);
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), state1, "a second up must not overwrite the saved originals");

    let (code, out, _) = lvsd_in(&ns, &["realserver", "status", "--vip", "192.0.2.10", "--vip", "203.0.113.7", "--state-dir", sd]);
    assert_eq!(code, 0, "{out}");
    // status without --vip uses the recorded VIPs.
    let (code, out, _) = lvsd_in(&ns, &["realserver", "status", "--state-dir", sd]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("203.0.113.7/32 on lo"), "{out}");

    // Someone changes a value behind our back: status says so.
    set(&ns, "all/arp_announce", "0");
    let (code, out, _) = lvsd_in(&ns, &["realserver", "status", "--state-dir", sd]);
    assert_eq!(code, 1);
    assert!(out.contains("MISSING net.ipv4.conf.all.arp_announce = 2 (is 0)"), "{out}");
    set(&ns, "all/arp_announce", "2");

    let (code, out, err) = lvsd_in(&ns, &["realserver", "down", "--state-dir", sd]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(lo_addrs(&ns), before_addrs);
    assert_eq!(arp_values(&ns), before_arp, "the values from before the first up");
    assert!(state_files(dir.path()).is_empty(), "state file removed");

    // Down again: nothing to do, still fine; nothing changes.
    let (code, _, err) = lvsd_in(&ns, &["realserver", "down", "--vip", "192.0.2.10", "--state-dir", sd]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lo_addrs(&ns), before_addrs);
    assert_eq!(arp_values(&ns), before_arp);
    let (code, _, _) = lvsd_in(&ns, &["realserver", "status", "--vip", "192.0.2.10", "--state-dir", sd]);
    assert_eq!(code, 1);
}

#[test]
fn settings_stay_until_the_last_vip_goes() {
    if !privileged_or_skip("settings_stay_until_the_last_vip_goes") {
        return;
    }
    let ns = server("lvrp");
    let dir = state_dir();
    let sd = dir.path().to_str().unwrap();
    let before = arp_values(&ns);
    assert_eq!(lvsd_in(&ns, &["realserver", "up", "--vip", "192.0.2.10", "--state-dir", sd]).0, 0);
    assert_eq!(lvsd_in(&ns, &["realserver", "up", "--vip", "192.0.2.11", "--state-dir", sd]).0, 0);
    let (code, out, _) = lvsd_in(&ns, &["realserver", "down", "--vip", "192.0.2.10", "--state-dir", sd]);
    assert_eq!(code, 0);
    assert!(out.contains("still up for 192.0.2.11"), "{out}");
    assert_eq!(arp_values(&ns), ["1", "2", "1", "2"], "192.0.2.11 still needs ARP suppression");
    assert!(!lo_addrs(&ns).contains("192.0.2.10/32"));
    assert_eq!(lvsd_in(&ns, &["realserver", "down", "--vip", "192.0.2.11", "--state-dir", sd]).0, 0);
    assert_eq!(arp_values(&ns), before);
}

#[test]
fn ipv6_vip_on_lo_without_arp_settings() {
    if !privileged_or_skip("ipv6_vip_on_lo_without_arp_settings") {
        return;
    }
    let ns = server("lvr6");
    let dir = state_dir();
    let sd = dir.path().to_str().unwrap();
    let before = lo_addrs(&ns);
    let (code, out, err) = lvsd_in(&ns, &["realserver", "up", "--vip", "2001:db8::10", "--state-dir", sd]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(lo_addrs(&ns).contains("inet6 2001:db8::10/128 scope global"), "{}", lo_addrs(&ns));
    assert_eq!(arp_values(&ns), ["2", "1", "3", "1"], "IPv6 has no ARP: nothing changed");
    assert_eq!(lvsd_in(&ns, &["realserver", "status", "--vip", "2001:db8::10", "--state-dir", sd]).0, 0);
    assert_eq!(lvsd_in(&ns, &["realserver", "down", "--state-dir", sd]).0, 0);
    assert_eq!(lo_addrs(&ns), before);
}

#[test]
fn state_is_per_namespace() {
    if !privileged_or_skip("state_is_per_namespace") {
        return;
    }
    // Real servers of `lvsd lab` share one host and one state directory.
    let a = server("lvra");
    let b = server("lvrb");
    let dir = state_dir();
    let sd = dir.path().to_str().unwrap();
    set(&b, "lo/arp_ignore", "0");
    assert_eq!(lvsd_in(&a, &["realserver", "up", "--vip", "192.0.2.10", "--state-dir", sd]).0, 0);
    assert_eq!(lvsd_in(&b, &["realserver", "up", "--vip", "192.0.2.10", "--state-dir", sd]).0, 0);
    assert_eq!(state_files(dir.path()).len(), 2);
    assert_eq!(lvsd_in(&a, &["realserver", "down", "--state-dir", sd]).0, 0);
    assert_eq!(sysctl(&a, "lo/arp_ignore"), "2");
    assert_eq!(sysctl(&b, "lo/arp_ignore"), "1", "b still up");
    assert_eq!(lvsd_in(&b, &["realserver", "down", "--state-dir", sd]).0, 0);
    assert_eq!(sysctl(&b, "lo/arp_ignore"), "0");
}

#[test]
fn tun_mode_brings_up_tunl0_or_says_why_not() {
    if !privileged_or_skip("tun_mode_brings_up_tunl0_or_says_why_not") {
        return;
    }
    let ns = server("lvrt");
    let dir = state_dir();
    let sd = dir.path().to_str().unwrap();
    set(&ns, "all/rp_filter", "1");
    let (code, out, err) = lvsd_in(&ns, &["realserver", "up", "--mode", "tun", "--vip", "192.0.2.10", "--state-dir", sd]);
    if code != 0 {
        // Kernels without ipip (as on the CI hosts): a clear message and nothing changed.
        assert!(err.contains("tunl0 is missing") && err.contains("ipip"), "{out}{err}");
        assert!(state_files(dir.path()).is_empty());
        assert_eq!(arp_values(&ns), ["2", "1", "3", "1"]);
        eprintln!("ipip unavailable here; checked the error path: {err}");
        return;
    }
    assert!(ns.ip(&["-o", "addr", "show", "dev", "tunl0"]).unwrap().contains("192.0.2.10/32"));
    assert_eq!(sysctl(&ns, "tunl0/rp_filter"), "0");
    assert_eq!(sysctl(&ns, "all/rp_filter"), "0");
    assert_eq!(sysctl(&ns, "tunl0/arp_ignore"), "1");
    assert_eq!(lvsd_in(&ns, &["realserver", "status", "--state-dir", sd]).0, 0);
    // Switching mode while up is refused.
    assert_ne!(lvsd_in(&ns, &["realserver", "up", "--mode", "dr", "--vip", "192.0.2.11", "--state-dir", sd]).0, 0);
    assert_eq!(lvsd_in(&ns, &["realserver", "down", "--state-dir", sd]).0, 0);
    assert_eq!(sysctl(&ns, "all/rp_filter"), "1");
    assert_eq!(arp_values(&ns), ["2", "1", "3", "1"]);
}

#[test]
fn unsafe_state_dir_is_refused() {
    if !privileged_or_skip("unsafe_state_dir_is_refused") {
        return;
    }
    let ns = server("lvru");
    let dir = state_dir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, err) = lvsd_in(&ns, &["realserver", "up", "--vip", "192.0.2.10", "--state-dir", dir.path().to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("unsafe") && err.contains("lets others write"), "{err}");
    assert!(!lo_addrs(&ns).contains("192.0.2.10"), "nothing done");
    // A missing directory is created root-only.
    let sub = dir.path().join("new");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(lvsd_in(&ns, &["realserver", "up", "--vip", "192.0.2.10", "--state-dir", sub.to_str().unwrap()]).0, 0);
    assert_eq!(std::fs::metadata(&sub).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(lvsd_in(&ns, &["realserver", "down", "--state-dir", sub.to_str().unwrap()]).0, 0);
}
