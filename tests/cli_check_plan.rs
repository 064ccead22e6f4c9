//! `lvsd check` and `lvsd plan` as an operator runs them.

use std::process::Command;

fn lvsd(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lvsd")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("run lvsd");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn plan_seed_dr_master() {
    let (code, out, err) = lvsd(&["plan", "policies/seed-dr.lua", "--node", "lvs01"]);
    assert_eq!(code, 0, "{err}");
    let expected_table = "\
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.65.123:80 wrr persistent 50
  -> 192.168.65.156:80            Route   1      0          0         
  -> 192.168.65.157:80            Route   1      0          0         
";
    assert!(out.starts_with(expected_table), "{out}");
    assert!(out.contains("VI_1  eth0       51    2        100       MASTER  1s      192.168.65.123/32"), "{out}");
}

#[test]
fn plan_seed_dr_backup_differs_only_in_priority_and_state() {
    let (_, a, _) = lvsd(&["plan", "policies/seed-dr.lua", "--node", "lvs01"]);
    let (_, b, _) = lvsd(&["plan", "policies/seed-dr.lua", "--node", "lvs02"]);
    let diff: Vec<(&str, &str)> = a.lines().zip(b.lines()).filter(|(x, y)| x != y).collect();
    assert_eq!(a.lines().count(), b.lines().count());
    assert_eq!(diff.len(), 1, "{diff:?}");
    let (x, y) = diff[0];
    assert_eq!(x.replace("100 ", "90  ").replace("MASTER", "BACKUP"), y);
}

#[test]
fn plan_json_is_stable_and_complete() {
    let (code, out, err) = lvsd(&["plan", "policies/seed-nat.lua", "--node", "lvs01", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["node"], "lvs01");
    let svc = &v["ipvs"]["services"][0];
    assert_eq!(svc["protocol"], "tcp");
    assert_eq!(svc["address"], "192.168.1.11");
    assert_eq!(svc["port"], 22);
    assert_eq!(svc["scheduler"], "rr");
    assert_eq!(svc["reals"][0]["forward"], "nat");
    assert_eq!(svc["reals"][0]["weight"], 1);
    assert_eq!(v["vrrp"][1]["name"], "VI_GATEWAY");
    assert_eq!(v["vrrp"][1]["vrid"], 52);
    assert_eq!(v["vrrp"][1]["priority"], 150);
    assert_eq!(v["sync_groups"][0]["instances"], serde_json::json!(["VI_1", "VI_GATEWAY"]));
}

#[test]
fn check_exit_codes() {
    let (code, out, _) = lvsd(&["check", "policies/seed-nat.lua", "--node", "lvs01"]);
    assert_eq!(code, 0);
    assert!(out.contains("1 service, 1 real server, 2 VRRP instances"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.lua");
    std::fs::write(&bad, "lvsd.vrrp \"A\" { interface = \"eth0\", vrid = 999, vips = { \"192.0.2.1\" } }\nlvsd.service \"s\" { vip = \"192.0.2.1:80\", scheduler = \"x\" }\n").unwrap();
    let (code, _, err) = lvsd(&["check", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("bad.lua:")).collect();
    assert!(lines[0].ends_with("bad.lua:1: vrrp 'A': vrid = 999 is out of range (1..255)"), "{err}");
    assert!(lines[1].contains("bad.lua:2: service 's': unknown scheduler 'x'"), "{err}");

    let (code, _, _) = lvsd(&["check"]);
    assert_eq!(code, 2, "usage error");
    let (code, _, _) = lvsd(&["check", "x.lua", "--bogus"]);
    assert_eq!(code, 2, "usage error");
    let (code, _, err) = lvsd(&["check", "/nonexistent/policy.lua"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/policy.lua: cannot read policy"), "{err}");
}

#[test]
fn examples_are_valid() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "lua") {
            let (code, out, err) = lvsd(&["check", p.to_str().unwrap(), "--node", "lvs01"]);
            assert_eq!(code, 0, "{}: {out}{err}", p.display());
        }
    }
}
