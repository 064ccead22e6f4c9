//! Quorum with hysteresis and the sorry server, and drain_timeout, in the running director
//! (in-memory IPVS, loopback listeners as real servers).

mod common;
use common::*;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// The weight of `addr` in the director's IPVS table (None: not in the table).
fn weight_in_table(st: &Value, addr: &str) -> Option<u64> {
    let (ip, port) = addr.rsplit_once(':').unwrap();
    st["ipvs"]["services"]
        .as_array()?
        .iter()
        .flat_map(|s| s["reals"].as_array().cloned().unwrap_or_default())
        .find_map(|r| (r["address"] == ip && r["port"].as_u64() == port.parse().ok()).then(|| r["weight"].as_u64().unwrap()))
}

fn listeners(n: usize) -> (Vec<Option<TcpListener>>, Vec<String>) {
    let ls: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let addrs = ls.iter().map(|l| l.local_addr().unwrap().to_string()).collect();
    (ls.into_iter().map(Some).collect(), addrs)
}

const CHECK: &str = "check = lvsd.check.tcp { interval = 0.2, timeout = 0.5, retries = 0, fall = 1, rise = 1 }";

#[test]
fn quorum_hysteresis_decides_when_the_sorry_server_comes_and_goes() {
    let (mut ls, a) = listeners(3);
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().display().to_string();
    // quorum 2, hysteresis 1: lost below 1 live weight, gained again at 3 (keepalived).
    let src = format!(
        r#"
lvsd.service "web" {{
  vip = "192.0.2.10:80", scheduler = "rr", quorum = 2, hysteresis = 1,
  sorry_server = "127.0.0.1:9",
  quorum_up = {{ "/bin/touch", "{marks}/up" }},
  quorum_down = {{ "/bin/touch", "{marks}/down" }},
  {CHECK},
  reals = {{ "{}", "{}", "{}" }},
}}
"#,
        a[0], a[1], a[2]
    );
    let d = Daemon::start(&src, "lvs01", &[]);
    let sorry = "127.0.0.1:9";
    let live = |d: &Daemon| a.iter().filter(|r| weight_in_table(&d.status(), r).is_some()).count();
    let healthy = |d: &Daemon| d.status()["services"][0]["reals"].as_array().unwrap().iter().filter(|r| r["health"] == "up").count();
    d.wait_for(|d| live(d) == 3, "all three reals in the table");
    assert_eq!(weight_in_table(&d.status(), sorry), None, "sorry server out while quorum holds");

    // Live weight 1: below quorum 2 but within the hysteresis: quorum holds.
    ls[0] = None;
    ls[1] = None;
    d.wait_for(|d| live(d) == 1, "two reals to leave");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(weight_in_table(&d.status(), sorry), None, "hysteresis keeps the quorum at live weight 1");
    assert!(d.events("quorum").is_empty(), "{:?}", d.events("quorum"));

    ls[2] = None;
    d.wait_for(|d| weight_in_table(&d.status(), sorry) == Some(1), "the sorry server once the quorum is lost");
    assert!(d.events("quorum").iter().any(|e| e.contains("web: quorum lost")), "{:?}", d.events("quorum"));
    d.wait_for(|_| dir.path().join("down").exists(), "quorum_down to run");

    // Two reals back: live weight 2 < quorum + hysteresis 3: still lost.
    ls[0] = Some(TcpListener::bind(&a[0]).unwrap());
    ls[1] = Some(TcpListener::bind(&a[1]).unwrap());
    d.wait_for(|d| healthy(d) == 2, "two reals healthy again");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(weight_in_table(&d.status(), sorry), Some(1), "quorum not regained below quorum + hysteresis");
    // keepalived: while the sorry server is in, it alone takes the traffic.
    assert_eq!(live(&d), 0, "healthy reals stay out while the quorum is lost: {}", d.status()["text"]);
    assert!(!dir.path().join("up").exists());

    ls[2] = Some(TcpListener::bind(&a[2]).unwrap());
    d.wait_for(|d| weight_in_table(&d.status(), sorry).is_none(), "the sorry server to leave at live weight 3");
    assert_eq!(live(&d), 3, "all reals back in with the quorum");
    assert!(d.events("quorum").iter().any(|e| e.contains("web: quorum gained")), "{:?}", d.events("quorum"));
    d.wait_for(|_| dir.path().join("up").exists(), "quorum_up to run");
}

#[test]
fn drain_timeout_keeps_a_leaving_real_at_weight_0_then_removes_it() {
    let (mut ls, a) = listeners(3);
    let policy = |reals: &[&String]| {
        let list: Vec<String> = reals.iter().map(|r| format!("\"{r}\"")).collect();
        format!(
            r#"
lvsd.global {{ drain_timeout = 2 }}
lvsd.service "web" {{
  vip = "192.0.2.10:80", scheduler = "rr", {CHECK},
  reals = {{ {} }},
}}
"#,
            list.join(", ")
        )
    };
    let d = Daemon::start(&policy(&[&a[0], &a[1], &a[2]]), "lvs01", &[]);
    d.wait_for(|d| a.iter().all(|r| weight_in_table(&d.status(), r) == Some(1)), "all reals at weight 1");

    // A failing real (no inhibit_on_failure): weight 0 first, removed after drain_timeout.
    ls[0] = None;
    d.wait_for(|d| weight_in_table(&d.status(), &a[0]) == Some(0), "the failed real at weight 0");
    let zero_at = Instant::now();
    let st = d.status();
    let shown = &st["services"][0]["reals"][0];
    assert!(shown["removal_in"].as_u64().is_some_and(|s| (1..=2).contains(&s)), "{shown}");
    assert!(st["text"].as_str().unwrap().contains("draining, removed in"), "{}", st["text"]);
    d.wait_for(|d| weight_in_table(&d.status(), &a[0]).is_none(), "the failed real removed after the grace period");
    let held = zero_at.elapsed();
    assert!(held >= Duration::from_millis(1500), "removed after {held:?}, before drain_timeout");

    // A real removed from the policy: the same.
    std::fs::write(&d.policy, policy(&[&a[0], &a[1]])).unwrap();
    let r = d.call(json!({"v": 1, "cmd": "reload"}));
    assert_eq!(r["ok"], true, "{r}");
    let st = d.status();
    assert_eq!(weight_in_table(&st, &a[2]), Some(0), "the removed real drains at weight 0: {}", st["text"]);
    assert_eq!(weight_in_table(&st, &a[1]), Some(1));
    let zero_at = Instant::now();
    d.wait_for(|d| weight_in_table(&d.status(), &a[2]).is_none(), "the removed real to go after the grace period");
    assert!(zero_at.elapsed() >= Duration::from_millis(1500), "removed after {:?}", zero_at.elapsed());

    // A failed real that recovers within the grace period gets its weight back.
    ls[1] = None;
    d.wait_for(|d| weight_in_table(&d.status(), &a[1]) == Some(0), "the second failed real at weight 0");
    ls[1] = Some(TcpListener::bind(&a[1]).unwrap());
    d.wait_for(|d| weight_in_table(&d.status(), &a[1]) == Some(1), "the recovered real back at weight 1");
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(weight_in_table(&d.status(), &a[1]), Some(1), "no removal once it came back");
}

#[test]
fn drain_weight_and_events_from_the_command_line() {
    let (_ls, a) = listeners(2);
    let src = format!(
        r#"
lvsd.service "web" {{ vip = "192.0.2.10:80", scheduler = "rr", {CHECK}, reals = {{ "{}", "{}" }} }}
"#,
        a[0], a[1]
    );
    let d = Daemon::start(&src, "lvs01", &[]);
    d.wait_for(|d| a.iter().all(|r| weight_in_table(&d.status(), r) == Some(1)), "both reals at weight 1");
    let (code, out, err) = d.cli(&["drain", "web", &a[0]]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(weight_in_table(&d.status(), &a[0]), Some(0));
    assert_eq!(d.cli(&["undrain", "web", &a[0]]).0, 0);
    assert_eq!(weight_in_table(&d.status(), &a[0]), Some(1));
    assert_eq!(d.cli(&["weight", "web", &a[1], "7"]).0, 0);
    assert_eq!(weight_in_table(&d.status(), &a[1]), Some(7));
    assert_eq!(d.cli(&["weight", "web", &a[1], "clear"]).0, 0);
    assert_eq!(weight_in_table(&d.status(), &a[1]), Some(1));
    // Mistakes name what exists, and change nothing.
    let (code, _, err) = d.cli(&["drain", "web", "198.51.100.99"]);
    assert_eq!(code, 1);
    assert!(err.contains("has no real") && err.contains(&a[0]), "{err}");
    let (code, _, err) = d.cli(&["weight", "web", &a[1], "heavy"]);
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = d.cli(&["events", "-n", "20"]);
    assert_eq!(code, 0);
    assert!(out.contains("drained (weight 0)") && out.contains("weight forced to 7"), "{out}");
}

#[test]
fn omega_runs_notify_down_when_a_service_goes_away() {
    let (_ls, a) = listeners(2);
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().display().to_string();
    let service = |name: &str, real: &str, omega: bool| {
        format!(
            r#"lvsd.service "{name}" {{ vip = "192.0.2.{}:80", omega = {omega}, {CHECK},
                 reals = {{ {{ address = "{real}", notify_down = {{ "/bin/touch", "{marks}/{name}-down" }} }} }} }}
"#,
            if name == "a" { 10 } else { 11 }
        )
    };
    let mut d = Daemon::start(&(service("a", &a[0], true) + &service("b", &a[1], false)), "lvs01", &[]);
    d.wait_for(|d| a.iter().all(|r| weight_in_table(&d.status(), r) == Some(1)), "both reals in");
    // A reload that drops service a runs its reals' notify_down.
    std::fs::write(&d.policy, service("b", &a[1], false)).unwrap();
    assert_eq!(d.call(json!({"v": 1, "cmd": "reload"}))["ok"], true);
    d.wait_for(|_| dir.path().join("a-down").exists(), "notify_down of the dropped service's real");
    // Stopping runs it for services with omega only.
    std::fs::write(&d.policy, service("a", &a[0], true) + &service("b", &a[1], false)).unwrap();
    assert_eq!(d.call(json!({"v": 1, "cmd": "reload"}))["ok"], true);
    std::fs::remove_file(dir.path().join("a-down")).unwrap();
    d.wait_for(|d| weight_in_table(&d.status(), &a[0]) == Some(1), "service a back");
    assert_eq!(d.stop(), 0);
    let end = Instant::now() + Duration::from_secs(5);
    while !dir.path().join("a-down").exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(dir.path().join("a-down").exists(), "omega: notify_down on stop");
    assert!(!dir.path().join("b-down").exists(), "no omega, no notify_down");
}
