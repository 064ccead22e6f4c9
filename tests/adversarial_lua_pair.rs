//! Lua that tries to escape its limits, hot-saved into the master of a pair at advert 0.1 s:
//! at load time, in a track, in a Lua check, in a weight function and through the REPL. The
//! heartbeat runs apart from all of it: the backup never takes over, the master stays master,
//! and every bad generation is reported.

mod common;
use common::lan::Lan;
use common::*;
use lvsd::net::netns::privileged_or_skip;
use std::time::{Duration, Instant};

const SPIN: &str = "while true do pcall(function() while true do end end) end";

/// The pair's policy with `extra` (Lua at the top level) and `service` (keys of the service).
fn policy(extra: &str, service: &str, track: &str) -> String {
    format!(
        r#"
local master = lvsd.node == "lvs01"
lvsd.vrrp "VI_1" {{
  interface = "eth0", vrid = 51, version = 3, advert_int = 0.1,
  state = master and "master" or "backup",
  priority = master and 100 or 90,
  vips = {{ "192.0.2.100/24" }},
  track = {{ {track} }},
}}
lvsd.service "web" {{
  vip = "192.0.2.100:80", reals = {{ "198.51.100.1:80" }},
  check = lvsd.check.lua {{ interval = 0.2, timeout = 1, run = function() return true end }},
  {service}
}}
{extra}
"#
    )
}

fn save(d: &Daemon, src: &str) {
    let tmp = d.policy.with_extension("new");
    std::fs::write(&tmp, src).unwrap();
    std::fs::rename(&tmp, &d.policy).unwrap();
}

#[test]
fn escapes_hot_saved_into_the_master_never_split_the_pair() {
    if !privileged_or_skip("escapes_hot_saved_into_the_master_never_split_the_pair") {
        return;
    }
    let lan = Lan::new("lvl", 2).unwrap();
    for (i, h) in lan.hosts.iter().enumerate() {
        h.ip(&["addr", "add", &format!("192.0.2.{}/24", i + 1), "dev", "eth0"]).unwrap();
    }
    let good = policy("", "", "");
    let a = Daemon::start_in(Some(lan.host(0).name()), &good, "lvs01", &[]);
    let b = Daemon::start_in(Some(lan.host(1).name()), &good, "lvs02", &[]);
    a.wait_for(|d| d.vrrp_state("VI_1") == "master", "lvs01 master");
    b.wait_for(|d| d.vrrp_state("VI_1") == "backup", "lvs02 backup");
    let backup_events = b.events("vrrp").len();

    // (what, the policy, whether the load itself must fail)
    let cases: Vec<(&str, String, bool)> = vec![
        ("pcall loop at load time", policy(SPIN, "", ""), true),
        ("coroutine.wrap at load time", policy(&format!("coroutine.wrap(function() {SPIN} end)()"), "", ""), true),
        ("a looping __gc", policy("setmetatable({}, { __gc = function() while true do end end }) collectgarbage()", "", ""), true),
        ("xpcall with a looping handler", policy("xpcall(function() error('x') end, function() while true do end end)", "", ""), true),
        // Weight -1: the failing track leaves the master above the backup (100 - 1 > 90).
        (
            "a track",
            policy("", "", &format!("lvsd.track.lua {{ name = \"spin\", interval = 0.2, weight = -1, run = function() {SPIN} end }}")),
            false,
        ),
        (
            "a Lua check's nested coroutine",
            policy(
                "",
                &format!(
                    "check = lvsd.check.lua {{ interval = 0.2, timeout = 1, run = function() coroutine.wrap(function() {SPIN} end)() return true end }},"
                ),
                "",
            ),
            false,
        ),
        ("a weight function", policy("", &format!("weight = function(rs, h) {SPIN} end,"), ""), false),
    ];
    // Hold the pair's promise while `done` is not true (bounded).
    let hold = |what: &str, done: &dyn Fn() -> bool, bound: Duration| {
        let end = Instant::now() + bound;
        while !done() {
            assert!(Instant::now() < end, "{what}: not reported within {bound:?}; log:\n{}", a.log());
            // The master answers its control socket and stays master; the backup stays backup.
            assert_eq!(a.vrrp_state("VI_1"), "master", "{what}: the master lost mastership; log:\n{}", a.log());
            assert_eq!(b.events("vrrp").len(), backup_events, "{what}: the backup moved: {:?}", b.events("vrrp"));
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    for (what, src, at_load) in &cases {
        let (failed, generation) = (a.events("reload_failed").len(), a.status()["generation"].as_u64().unwrap());
        let reported = |d: &Daemon| d.log().matches("limit of").count() + d.events("track").len() + d.events("health").len();
        let before = reported(&a);
        save(&a, src);
        if *at_load {
            hold(what, &|| a.events("reload_failed").len() > failed, Duration::from_secs(20));
        } else {
            hold(what, &|| a.status()["generation"].as_u64().unwrap() > generation, Duration::from_secs(10));
            // The escape runs and is stopped (and says so: a track or a real down, or an
            // error in the log).
            hold(what, &|| reported(&a) > before, Duration::from_secs(10));
        }
        // And a while longer, the escape still in place.
        let t = Instant::now();
        hold(what, &|| t.elapsed() > Duration::from_secs(1), Duration::from_secs(5));
    }

    // The REPL: an eval that spins is stopped, and the director goes on.
    save(&a, &good);
    let spun = a.call(serde_json::json!({"v": 1, "cmd": "eval", "code": SPIN}));
    assert_eq!(spun["ok"], false, "{spun}");
    assert!(spun["error"].as_str().unwrap_or("").contains("limit of"), "{spun}");
    let two = a.call(serde_json::json!({"v": 1, "cmd": "eval", "code": "return 1 + 1"}));
    assert_eq!(two["result"], 2, "the REPL still answers after the spinning eval: {two}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(a.vrrp_state("VI_1"), "master");
    assert_eq!(b.events("vrrp").len(), backup_events, "the backup never moved: {:?}", b.events("vrrp"));
}
