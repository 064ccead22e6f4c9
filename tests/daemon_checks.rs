//! Health checks in the running director: a real that stops answering leaves the table and
//! comes back; history and run-now over the control socket; on_down hooks run.

mod common;
use common::*;
use serde_json::json;
use std::net::TcpListener;

fn in_table(d: &Daemon, real: &str) -> bool {
    d.status()["services"][0]["reals"].as_array().unwrap().iter().any(|r| r["address"] == real && r["in_table"] == true)
}

#[test]
fn a_dead_real_leaves_the_table_and_returns() {
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let (p1, p2) = (l1.local_addr().unwrap().port(), l2.local_addr().unwrap().port());
    let src = format!(
        r#"
lvsd.service "web" {{
  vip = "192.0.2.10:80", scheduler = "rr",
  check = lvsd.check.tcp {{ interval = 0.2, timeout = 0.5, retries = 0, fall = 2, rise = 2 }},
  reals = {{ "127.0.0.1:{p1}", "127.0.0.1:{p2}" }},
  on_down = function(ev) lvsd.log.warn("HOOK " .. ev.real .. " " .. ev.state) end,
}}
"#
    );
    let d = Daemon::start(&src, "lvs01", &[]);
    let r1 = format!("127.0.0.1:{p1}");
    let r2 = format!("127.0.0.1:{p2}");
    d.wait_for(|d| in_table(d, &r1) && in_table(d, &r2), "both reals in the table");
    drop(l1);
    d.wait_for(|d| !in_table(d, &r1), "the dead real to leave the table");
    assert!(in_table(&d, &r2), "the live one stays");
    assert!(d.events("health").iter().any(|e| e.contains(&format!("web {r1}: down"))), "{:?}", d.events("health"));
    d.wait_for(|d| d.log().contains(&format!("HOOK {r1} down")), "the on_down hook");

    let h = d.call(json!({"v": 1, "cmd": "history", "service": "web", "real": r1}));
    assert_eq!(h["ok"], true, "{h}");
    assert_eq!(h["result"]["state"], "down", "{h}");
    let n = d.call(json!({"v": 1, "cmd": "check_now", "service": "web", "real": r2}));
    assert_eq!(n["ok"], true, "{n}");
    assert_eq!(n["result"][0]["ok"], true, "{n}");

    let _back = TcpListener::bind(("127.0.0.1", p1)).unwrap();
    d.wait_for(|d| in_table(d, &r1), "the real to return after rise successes");
}

#[test]
fn a_runaway_hook_is_stopped_and_the_director_goes_on() {
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let p1 = l1.local_addr().unwrap().port();
    // The loop runs in a coroutine of its own: the limit must reach it there too.
    let src = format!(
        r#"
lvsd.service "web" {{
  vip = "192.0.2.10:80",
  check = lvsd.check.tcp {{ interval = 0.2, timeout = 0.5, retries = 0 }},
  reals = {{ "127.0.0.1:{p1}" }},
  on_down = function(ev) coroutine.wrap(function() while true do end end)() end,
}}
"#
    );
    let d = Daemon::start(&src, "lvs01", &["--instruction-limit", "2000000"]);
    let real = format!("127.0.0.1:{p1}");
    d.wait_for(|d| in_table(d, &real), "the real in the table");
    drop(l1);
    d.wait_for(|d| d.events("hook_error").iter().any(|e| e.contains("instruction limit")), "the hook to be stopped");
    assert!(!in_table(&d, &real), "the health change still took effect");
    assert_eq!(d.status()["generation"], 1, "the director still answers");
}

/// keepalived's script_user: the programs the policy names run as that user and group, with
/// none of root's supplementary groups.
#[test]
fn programs_run_as_the_script_user() {
    if !need_root("programs_run_as_the_script_user") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The program, as nobody, writes here.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = dir.path().join("ids");
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let p1 = l1.local_addr().unwrap().port();
    let src = format!(
        r#"
lvsd.global {{ script_user = "nobody", script_group = "nogroup" }}
lvsd.service "web" {{
  vip = "192.0.2.10:80",
  check = lvsd.check.exec {{ command = {{ "/bin/sh", "-c", "echo $(id -u) $(id -g) $(id -G) > {}" }}, interval = 0.2 }},
  reals = {{ "127.0.0.1:{p1}" }},
}}
"#,
        out.display()
    );
    let d = Daemon::start(&src, "lvs01", &[]);
    d.wait_for(|_| std::fs::read_to_string(&out).is_ok_and(|s| s.ends_with('\n')), "the check's program to write its ids");
    assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), "65534 65534 65534");
    // A user the host does not have: the policy is refused, naming the line.
    let bad = "lvsd.global { script_user = \"no-such-user-here\" }\n";
    let p = dir.path().join("bad.lua");
    std::fs::write(&p, bad).unwrap();
    let out = std::process::Command::new(lvsd_bin()).arg("check").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.lua:1: ") && err.contains("script_user 'no-such-user-here' is not a user of this host"), "{err}");
}

/// A program's own user (keepalived's `user USER [GROUP]` of a script): it runs as that user
/// whatever the `script_user`; the others keep running as the `script_user`, or root.
#[test]
fn a_program_runs_as_its_own_user() {
    if !need_root("a_program_runs_as_its_own_user") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let (own, plain) = (dir.path().join("own"), dir.path().join("plain"));
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let p1 = l1.local_addr().unwrap().port();
    let write_ids = |f: &std::path::Path| format!(r#""/bin/sh", "-c", "echo $(id -u) $(id -g) > {}""#, f.display());
    let src = format!(
        r#"
lvsd.service "web" {{
  vip = "192.0.2.10:80",
  check = lvsd.check.exec {{ command = {{ {}, user = "nobody", group = "nogroup" }}, interval = 0.2 }},
  reals = {{ "127.0.0.1:{p1}" }},
}}
lvsd.service "web2" {{
  vip = "192.0.2.11:80",
  check = lvsd.check.exec {{ command = {{ {} }}, interval = 0.2 }},
  reals = {{ "127.0.0.1:{p1}" }},
}}
"#,
        write_ids(&own),
        write_ids(&plain)
    );
    let d = Daemon::start(&src, "lvs01", &[]);
    for f in [&own, &plain] {
        d.wait_for(|_| std::fs::read_to_string(f).is_ok_and(|s| s.ends_with('\n')), "the checks' programs to write their ids");
    }
    assert_eq!(std::fs::read_to_string(&own).unwrap().trim(), "65534 65534");
    assert_eq!(std::fs::read_to_string(&plain).unwrap().trim(), "0 0");
    // A misspelt key would run the program as root: refused.
    let p = dir.path().join("bad.lua");
    std::fs::write(&p, "lvsd.vrrp \"A\" { interface = \"eth0\", vrid = 1, vips = { \"192.0.2.1\" },\n  notify = { master = { \"/bin/true\", usr = \"nobody\" } } }\n").unwrap();
    let out = std::process::Command::new(lvsd_bin()).arg("check").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.lua:1: ") && err.contains("master: unknown key 'usr' (valid: the program's arguments, user, group)"),
        "{err}"
    );
}
