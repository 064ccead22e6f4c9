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
