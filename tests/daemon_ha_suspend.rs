//! keepalived's `ha_suspend` in the running director: a service on a VRRP VIP is in the table,
//! and its checks run, only while this node is master of the VIP. Two directors on one LAN
//! (network namespaces on a bridge), in-memory IPVS, listeners of the test's own as reals.

mod common;
use common::lan::Lan;
use common::*;
use lvsd::net::netns::privileged_or_skip;
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// The service named `name` in a status document.
fn service<'a>(st: &'a Value, name: &str) -> &'a Value {
    st["services"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no service {name} in {st}"))
}

fn in_table(d: &Daemon, name: &str) -> bool {
    service(&d.status(), name)["in_table"] == true
}

/// The times of the results of the real's check that the director holds (its last ten). A
/// bare TCP check is half-open, so the listener never has a connection to count.
fn runs(d: &Daemon, service: &str, real: SocketAddr) -> Vec<f64> {
    let h = d.call(json!({"v": 1, "cmd": "history", "service": service, "real": real.to_string()}));
    assert_eq!(h["ok"], true, "{h}");
    let at = |r: &Value| r["at"]["secs_since_epoch"].as_f64().unwrap() + r["at"]["nanos_since_epoch"].as_f64().unwrap() / 1e9;
    h["result"]["checks"][0]["history"].as_array().map(|rs| rs.iter().map(at).collect()).unwrap_or_default()
}

/// The time of the check's latest result (0 before the first).
fn last_run(d: &Daemon, service: &str, real: SocketAddr) -> f64 {
    runs(d, service, real).pop().unwrap_or(0.0)
}

#[test]
fn ha_suspend_follows_mastership_of_the_vip() {
    if !privileged_or_skip("ha_suspend_follows_mastership_of_the_vip") {
        return;
    }
    let lan = Lan::new("lhs", 2).unwrap();
    for (i, h) in lan.hosts.iter().enumerate() {
        h.ip(&["link", "set", "lo", "up"]).unwrap();
        h.ip(&["addr", "add", &format!("192.0.2.{}/24", i + 1), "dev", "eth0"]).unwrap();
    }
    // The reals of lvs01's services listen in its namespace: one for the suspended service,
    // one for the others, so that their checks are separate probes.
    let (web, other) = lan.host(0).run(|| (TcpListener::bind("127.0.0.1:0").unwrap(), TcpListener::bind("127.0.0.1:0").unwrap())).unwrap();
    let (wa, oa) = (web.local_addr().unwrap(), other.local_addr().unwrap());
    let src = format!(
        r#"
local first = lvsd.node == "lvs01"
lvsd.vrrp "VI_1" {{
  interface = "eth0", vrid = 61, version = 3, advert_int = 0.2, state = "backup",
  priority = first and 100 or 200, vips = {{ "192.0.2.100/24" }},
}}
local check = lvsd.check.tcp {{ interval = 0.2, timeout = 0.5, retries = 0, rise = 1, fall = 1 }}
lvsd.service "web" {{ vip = "192.0.2.100:80", ha_suspend = true, check = check, reals = {{ "{wa}" }} }}
lvsd.service "plain" {{ vip = "192.0.2.100:81", check = check, reals = {{ "{oa}" }} }}
lvsd.service "local" {{ vip = "198.51.100.7:80", ha_suspend = true, check = check, reals = {{ "{oa}" }} }}
"#
    );
    let a = Daemon::start_in(Some(lan.host(0).name()), &src, "lvs01", &[]);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master while alone");
    a.wait_for(|d| in_table(d, "web"), "the ha_suspend service in the master's table");
    assert!(in_table(&a, "plain") && in_table(&a, "local"));
    std::thread::sleep(Duration::from_millis(600));
    assert!(runs(&a, "web", wa).len() >= 2, "the master checks the ha_suspend service's real");

    // A peer of higher priority takes the VIP: lvs01 holds the service out and stops checking.
    let mut b = Daemon::start_in(Some(lan.host(1).name()), &src, "lvs02", &[]);
    a.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs01 backup");
    a.wait_for(|d| !in_table(d, "web"), "the ha_suspend service out of the backup's table");
    let st = a.status();
    assert_eq!(service(&st, "web")["ha_suspended"], true, "{st}");
    assert!(st["text"].as_str().unwrap().contains("suspended by ha_suspend"), "{}", st["text"]);
    // Without ha_suspend, or on an address no instance holds: in the table all along.
    assert!(in_table(&a, "plain") && in_table(&a, "local"));
    assert!(a.events("ha_suspend").iter().any(|e| e.contains("web: suspended")), "{:?}", a.events("ha_suspend"));
    std::thread::sleep(Duration::from_millis(300)); // a run in flight at the change
    let (web_then, other_then) = (last_run(&a, "web", wa), last_run(&a, "plain", oa));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(last_run(&a, "web", wa), web_then, "a suspended service's checks do not run");
    let other_now = runs(&a, "plain", oa);
    assert!(other_now.iter().filter(|&t| *t > other_then).count() >= 2, "the other services' checks run on: {other_then} {other_now:?}");

    // The peer goes away: lvs01 is master again and the service comes back, checks and all.
    b.kill9();
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master again");
    a.wait_for(|d| in_table(d, "web"), "the ha_suspend service back in the table");
    assert!(a.events("ha_suspend").iter().any(|e| e.contains("web: resumed")), "{:?}", a.events("ha_suspend"));
    std::thread::sleep(Duration::from_millis(600));
    assert!(runs(&a, "web", wa).iter().filter(|&t| *t > web_then).count() >= 2, "checks resumed");
    drop((web, other));
}
