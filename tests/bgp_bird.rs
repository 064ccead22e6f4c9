//! Scale-out over BGP with real BIRD 2 (Debian `bird2`): a router namespace running BIRD
//! peers with three director namespaces, each running its own BIRD and lvsd (`--dry-run`,
//! in-memory IPVS). The router's kernel table is the judge: a VIP has one next hop per
//! director announcing it (`merge paths on`).

mod common;
use common::lan::Lan;
use common::*;
use lvsd::net::netns::{Netns, cannot_run, privileged_or_skip};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "203.0.113.10";
const ROUTER: &str = "192.0.2.1";
const DIRECTORS: [(&str, &str); 3] = [("d1", "192.0.2.2"), ("d2", "192.0.2.3"), ("d3", "192.0.2.4")];

/// A BIRD in a namespace, with its own socket, pid file and log; stopped when dropped.
struct Bird {
    child: Option<Child>,
    ns: String,
    conf: PathBuf,
    socket: PathBuf,
    log: PathBuf,
}

impl Bird {
    fn start(ns: &Netns, dir: &Path, name: &str, conf: &str) -> Bird {
        let conf_path = dir.join(format!("{name}.conf"));
        std::fs::write(&conf_path, conf).unwrap();
        let mut b = Bird {
            child: None,
            ns: ns.name().to_string(),
            conf: conf_path,
            socket: dir.join(format!("{name}.ctl")),
            log: dir.join(format!("{name}.log")),
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let pid = self.socket.with_extension("pid");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "bird", "-f", "-c"])
            .arg(&self.conf)
            .arg("-s")
            .arg(&self.socket)
            .arg("-P")
            .arg(&pid)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("bird");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("bird exited ({st}); log:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default());
            }
            assert!(Instant::now() < end, "bird never answered on {}", self.socket.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let end = Instant::now() + Duration::from_secs(5);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// `birdc -s SOCKET ARGS` (the test's own look; lvsd never forks birdc).
    fn birdc(&self, args: &[&str]) -> String {
        let out = Command::new("birdc").arg("-s").arg(&self.socket).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The next hops of the VIP's route in the router's kernel table.
fn next_hops(router: &str) -> BTreeSet<String> {
    let out = Command::new("ip").args(["-n", router, "-4", "route", "show", &format!("{VIP}/32")]).output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = out.split_whitespace().collect();
    words.windows(2).filter(|w| w[0] == "via").map(|w| w[1].to_string()).collect()
}

fn hops(addrs: &[&str]) -> BTreeSet<String> {
    addrs.iter().map(|s| s.to_string()).collect()
}

/// Poll the router's table until the VIP's next hops are `want`; how long that took.
fn wait_hops(router: &str, want: &BTreeSet<String>, limit: Duration, what: &str, logs: &dyn Fn() -> String) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if next_hops(router) == *want {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("{what}: the router's next hops stayed {:?}, want {want:?}\n{}", next_hops(router), logs());
}

fn router_conf() -> String {
    let mut c = format!(
        "log stderr all;\nrouter id {ROUTER};\nprotocol device {{ scan time 1; }}\n\
protocol kernel {{ merge paths on; ipv4 {{ import none; export all; }}; }}\nprotocol bfd {{ }}\n"
    );
    for (name, addr) in DIRECTORS {
        c.push_str(&format!(
            "protocol bgp {name} {{\n  local as 65000;\n  neighbor {addr} as 65001;\n  bfd on;\n  hold time 3;\n  keepalive time 1;\n  \
connect delay time 1;\n  connect retry time 1;\n  error wait time 1, 2;\n  ipv4 {{ import all; export none; }};\n}}\n"
        ));
    }
    c
}

/// One policy for every director: its files and router id follow `lvsd.node`.
fn policy(dir: &Path) -> String {
    let d = dir.display();
    let ids: Vec<String> = DIRECTORS.iter().map(|(n, a)| format!("{n} = \"{a}\"")).collect();
    format!(
        r#"
local ids = {{ {ids} }}
local here = "{d}/" .. lvsd.node
lvsd.bgp {{
  socket = here .. "/bird.ctl", include = here .. "/lvsd.conf",
  local_as = 65001, router_id = ids[lvsd.node],
  neighbors = {{ {{ address = "{ROUTER}", as = 65000, bfd = {{ interval = 0.1, multiplier = 3 }}, hold = 3, keepalive = 1,
    connect_delay = 1, connect_retry = 1, error_wait = {{ min = 1, max = 2 }} }} }},
  communities = {{ "65001:10" }},
}}
lvsd.service "web" {{
  vip = "{VIP}:80", scheduler = "mh", announce = true,
  check = lvsd.check.exec {{ command = {{ "/bin/test", "-e", here .. "/web-up" }}, interval = 0.1, timeout = 1, retries = 0, fall = 1, rise = 1 }},
  reals = {{ "198.51.100.1:80", "198.51.100.2:80" }},
}}
"#,
        ids = ids.join(", ")
    )
}

fn director_bird_conf(dir: &Path) -> String {
    format!("log stderr all;\nprotocol device {{ scan time 1; }}\ninclude \"{}/lvsd.conf\";\n", dir.display())
}

fn vip_status(d: &Daemon) -> serde_json::Value {
    d.status()["bgp"]["vips"][0].clone()
}

#[test]
fn vips_follow_quorum_drain_stop_and_bird_restarts() {
    if !privileged_or_skip("bgp_bird") {
        return;
    }
    if Command::new("bird").arg("--version").output().is_err() || Command::new("birdc").arg("--version").output().is_err() {
        cannot_run("bgp_bird", "BIRD 2 is not installed (apt-get install bird2)");
        return;
    }
    let test_start = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let lan = Lan::new("bgp", 1 + DIRECTORS.len()).unwrap();
    let router_ns = lan.host(0);
    let router = router_ns.name();
    router_ns.ip(&["addr", "add", &format!("{ROUTER}/24"), "dev", "eth0"]).unwrap();
    router_ns.sysctl("net.ipv4.fib_multipath_hash_policy", "1").unwrap();
    let rbird = Bird::start(router_ns, dir, "router", &router_conf());

    let src = policy(dir);
    let mut daemons = Vec::new();
    let mut birds = Vec::new();
    for (i, (name, addr)) in DIRECTORS.iter().enumerate() {
        let ns = lan.host(i + 1);
        ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"]).unwrap();
        let here = dir.join(name);
        std::fs::create_dir_all(&here).unwrap();
        std::fs::write(here.join("web-up"), "").unwrap();
        // lvsd first: BIRD is not there yet, which lvsd reports and gets over.
        let d = Daemon::start_in(Some(ns.name()), &src, name, &[]);
        d.wait_for(|_| here.join("lvsd.conf").exists(), "lvsd to write BIRD's include file");
        d.wait_for(|d| d.status()["bgp"]["bird_up"] == false && !d.status()["bgp"]["error"].is_null(), "BIRD down reported");
        birds.push(Bird::start(ns, &here, "bird", &director_bird_conf(&here)));
        daemons.push(d);
    }
    let logs = |daemons: &Vec<Daemon>, birds: &Vec<Bird>| {
        let mut s = format!("router:\n{}\n", rbird.birdc(&["show", "protocols"]));
        for (d, b) in daemons.iter().zip(birds) {
            s.push_str(&format!("--- {}\n{}\n{}\n", b.ns, b.birdc(&["show", "protocols"]), d.log()));
        }
        s
    };
    let all = hops(&[DIRECTORS[0].1, DIRECTORS[1].1, DIRECTORS[2].1]);
    let up = wait_hops(router, &all, Duration::from_secs(30), "every director announcing", &|| logs(&daemons, &birds));
    println!("ECMP route with 3 next hops {:.1} s after the last BIRD started", up.as_secs_f64());
    let route = router_ns.ip(&["route", "show", &format!("{VIP}/32")]).unwrap();
    assert!(route.contains("proto bird") && route.matches("nexthop").count() == 3, "{route}");
    let d1 = &daemons[0];
    // lvsd asks BIRD every 500 ms: its view may lag the router's table by that much.
    d1.wait_for(|d| d.status()["bgp"]["sessions"][0]["info"] == "Established", "d1's status to show the session established");
    let st = d1.status()["bgp"].clone();
    assert_eq!((st["bird_up"].clone(), st["sessions"][0]["state"].clone()), (true.into(), "up".into()), "{st}");
    assert_eq!((vip_status(d1)["wanted"].clone(), vip_status(d1)["announced"].clone()), (true.into(), true.into()), "{st}");
    assert!(d1.status()["text"].as_str().unwrap().contains("203.0.113.10/32"), "status text shows the VIP");
    assert!(rbird.birdc(&["show", "route", "all", &format!("{VIP}/32")]).contains("(65001,10)"), "the community reaches the router");

    // Quorum lost on d2 (its only check fails): withdrawn; back: announced again.
    let d2_up = dir.join("d2/web-up");
    std::fs::remove_file(&d2_up).unwrap();
    let t =
        wait_hops(router, &hops(&[DIRECTORS[0].1, DIRECTORS[2].1]), Duration::from_secs(10), "d2 withdrawn", &|| logs(&daemons, &birds));
    println!("quorum lost -> route change at the router: {} ms (check interval 100 ms)", t.as_millis());
    daemons[1].wait_for(|d| vip_status(d)["announced"] == false, "d2 reports the VIP withdrawn");
    assert!(vip_status(&daemons[1])["why"].as_str().unwrap().contains("no quorum"), "{}", vip_status(&daemons[1]));
    assert!(daemons[1].events("bgp").iter().any(|e| e.contains("203.0.113.10/32 withdraw")), "{:?}", daemons[1].events("bgp"));
    std::fs::write(&d2_up, "").unwrap();
    wait_hops(router, &all, Duration::from_secs(10), "d2 back", &|| logs(&daemons, &birds));

    // drain-director on d1: withdrawn at once, reported done; undrain: back.
    let started = Instant::now();
    let waiter = {
        let r = router.to_string();
        let want = hops(&[DIRECTORS[1].1, DIRECTORS[2].1]);
        std::thread::spawn(move || {
            let s = Instant::now();
            while s.elapsed() < Duration::from_secs(10) {
                if next_hops(&r) == want {
                    return Some(s.elapsed());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            None
        })
    };
    let (code, out, err) = daemons[0].cli(&["drain-director", "--timeout", "20"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("drained: no new connection"), "{out}");
    let moved = waiter.join().unwrap().unwrap_or_else(|| panic!("d1 not withdrawn on drain\n{}", logs(&daemons, &birds)));
    println!(
        "drain-director -> route change at the router: {} ms; reported done after {:.1} s",
        moved.as_millis(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(daemons[0].status()["bgp"]["drain"]["state"], "done");
    let (code, out, err) = daemons[0].cli(&["undrain-director"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_hops(router, &all, Duration::from_secs(10), "d1 undrained", &|| logs(&daemons, &birds));

    // BIRD restarted under lvsd on d3: lvsd says so, and the announcement comes back.
    birds[2].stop();
    daemons[2].wait_for(|d| d.status()["bgp"]["bird_up"] == false, "d3's lvsd to notice BIRD gone");
    wait_hops(router, &hops(&[DIRECTORS[0].1, DIRECTORS[1].1]), Duration::from_secs(10), "d3 gone with its BIRD", &|| {
        logs(&daemons, &birds)
    });
    birds[2].spawn();
    let t = wait_hops(router, &all, Duration::from_secs(30), "d3 back with its BIRD", &|| logs(&daemons, &birds));
    println!("BIRD restarted on d3 -> route back at the router: {:.1} s", t.as_secs_f64());
    daemons[2].wait_for(|d| d.status()["bgp"]["bird_up"] == true, "d3's lvsd to reconnect");
    assert!(daemons[2].events("bgp").iter().any(|e| e.contains("re-syncing")), "{:?}", daemons[2].events("bgp"));
    // A VIP disabled behind lvsd's back is enabled again (lvsd reconciles against BIRD).
    let enabled = |d: &Daemon| d.events("bgp").iter().filter(|e| e.as_str() == "BIRD: enabled lvsd_vip_203_0_113_10").count();
    let n = enabled(&daemons[2]);
    let out = birds[2].birdc(&["disable", "lvsd_vip_203_0_113_10"]);
    assert!(out.contains("disabled"), "{out}");
    daemons[2].wait_for(|d| enabled(d) > n, "d3's lvsd to enable the VIP again");
    wait_hops(router, &all, Duration::from_secs(10), "d3 repaired", &|| logs(&daemons, &birds));

    // lvsd doctor on d2: BIRD, the session, BFD and the route all as they should be.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            lan.host(2).name(),
            lvsd_bin(),
            "doctor",
            "--node",
            "d2",
            "--listen",
            "0",
            "--connect-timeout",
            "0.2",
            "--json",
        ])
        .arg("-p")
        .arg(&daemons[1].policy)
        .arg("--control")
        .arg(&daemons[1].socket)
        .output()
        .unwrap();
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let bgp: Vec<&serde_json::Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| ["bird", "bgp-peer", "bfd", "announce"].contains(&f["check"].as_str().unwrap()))
        .collect();
    assert_eq!(bgp.len(), 4, "{doc:#}");
    assert!(bgp.iter().all(|f| f["level"] == "PASS"), "{doc:#}");

    // A reload adds a VIP on d2: the include file changes shape, BIRD reconfigures, and
    // neither the session nor the VIP already announced is disturbed.
    let since = |out: String| {
        out.lines().find(|l| l.trim_start().starts_with("d2 ")).map(|l| l.split_whitespace().nth(4).unwrap_or("").to_string())
    };
    let before = since(rbird.birdc(&["show", "protocols", "d2"]));
    assert!(before.as_ref().is_some_and(|s| s.contains(':')), "{before:?}");
    let src2 = format!(
        "{src}\nlvsd.service \"api\" {{ vip = \"203.0.113.20:80\", scheduler = \"mh\", announce = true, reals = {{ \"198.51.100.1:80\" }} }}\n"
    );
    std::fs::write(&daemons[1].policy, src2).unwrap();
    let r = daemons[1].call(serde_json::json!({"v": 1, "cmd": "reload"}));
    assert_eq!(r["ok"], true, "{r}");
    let end = Instant::now() + Duration::from_secs(10);
    while !router_ns.ip(&["route", "show", "203.0.113.20/32"]).unwrap().contains("192.0.2.3") {
        assert!(Instant::now() < end, "the new VIP never reached the router\n{}", logs(&daemons, &birds));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(next_hops(router), all, "the other VIP kept its three next hops");
    assert_eq!(since(rbird.birdc(&["show", "protocols", "d2"])), before, "d2's session was not restarted by the reconfiguration");

    // SIGTERM on d1: withdrawn before lvsd is gone; its BIRD stays up and keeps it withdrawn.
    unsafe { libc::kill(daemons[0].child.id() as i32, libc::SIGTERM) };
    let t = wait_hops(router, &hops(&[DIRECTORS[1].1, DIRECTORS[2].1]), Duration::from_secs(10), "d1 withdrawn on SIGTERM", &|| {
        logs(&daemons, &birds)
    });
    println!("SIGTERM -> route change at the router: {} ms", t.as_millis());
    let code = daemons[0].child.wait().unwrap().code();
    assert_eq!(code, Some(0), "{}", daemons[0].log());
    let log = daemons[0].log();
    let line = log.lines().find(|l| l.contains("every VIP withdrawn before stopping")).unwrap_or_else(|| panic!("{log}"));
    println!("lvsd on d1: {}", &line[line.find("every").unwrap()..]);
    assert!(birds[0].birdc(&["show", "protocols", "lvsd_vip_203_0_113_10"]).contains("down"), "d1's BIRD keeps the VIP withdrawn");
    let conf = std::fs::read_to_string(dir.join("d1/lvsd.conf")).unwrap();
    assert!(conf.contains("disabled yes"), "the include file says withdrawn, for a BIRD that restarts alone:\n{conf}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(next_hops(router), hops(&[DIRECTORS[1].1, DIRECTORS[2].1]));

    // A director that dies without a word (its link goes down): BFD tells the router
    // before the 3 s hold time would.
    let t0 = Instant::now();
    lan.host(3).ip(&["link", "set", "eth0", "down"]).unwrap();
    let t = wait_hops(router, &hops(&[DIRECTORS[1].1]), Duration::from_secs(10), "d3 gone (BFD)", &|| logs(&daemons, &birds));
    println!("d3's link down -> route change at the router: {} ms (BFD at 100 ms x 3 from the directors; hold time 3 s)", t.as_millis());
    assert!(t0.elapsed() < Duration::from_millis(2500), "BFD, not the hold time, took d3 out: {:?}", t0.elapsed());
    assert!(rbird.birdc(&["show", "protocols", "d3"]).contains("BFD session down"), "{}", rbird.birdc(&["show", "protocols", "d3"]));
    drop(daemons);
    drop(birds);
    drop(rbird);
    println!("whole test: {:.1} s", test_start.elapsed().as_secs_f64());
}

/// No privileges, no BIRD: announce functions decide, a BIRD that is not there is reported,
/// the include file says what is wanted, and drain-director still completes.
#[test]
fn announce_functions_and_a_missing_bird() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display();
    let src = format!(
        r#"
lvsd.bgp {{ socket = "{d}/none.ctl", include = "{d}/lvsd.conf", local_as = 65001, neighbors = {{ {{ address = "192.0.2.1", as = 65000 }} }} }}
lvsd.service "a" {{ vip = "203.0.113.10:80", scheduler = "mh", reals = {{ "198.51.100.1:80", "198.51.100.2:80" }},
  announce = function(s) return s.reals_up == 2 and s.quorum and s.service == "a" and s.vip == "203.0.113.10" end }}
lvsd.service "b" {{ vip = "203.0.113.11:80", scheduler = "mh", reals = {{ "198.51.100.1:80" }},
  announce = function(s) return s.node == "elsewhere" end }}
lvsd.service "c" {{ vip = "203.0.113.12:80", scheduler = "wlc", reals = {{ "198.51.100.1:80" }},
  announce = function(s) error("boom") end }}
"#
    );
    let policy = tmp.path().join("p.lua");
    std::fs::write(&policy, &src).unwrap();
    let out = Command::new(lvsd_bin()).args(["check", "--node", "d1"]).arg(&policy).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("p.lua:7: warning: service 'c' is announced over BGP (scale-out) with scheduler wlc"), "{err}");

    let dm = Daemon::start(&src, "d1", &[]);
    dm.wait_for(|d| d.status()["bgp"]["vips"].as_array().is_some_and(|v| v.len() == 3), "three VIPs in the status");
    dm.wait_for(|d| d.status()["bgp"]["error"].as_str().is_some_and(|e| e.contains("cannot connect")), "BIRD reported missing");
    let st = dm.status()["bgp"].clone();
    assert_eq!(st["bird_up"], false, "{st}");
    let vip = |i: usize| (st["vips"][i]["wanted"].as_bool().unwrap(), st["vips"][i]["why"].as_str().unwrap().to_string());
    assert_eq!(vip(0), (true, "a announce function says yes".to_string()));
    assert_eq!(vip(1), (false, "b announce function says no".to_string()));
    assert_eq!(vip(2), (false, "c announce function failed".to_string()));
    assert_eq!(st["vips"][0]["announced"], serde_json::Value::Null, "unknown while BIRD is down");
    assert!(dm.status()["text"].as_str().unwrap().contains("BGP via BIRD"), "{}", dm.status()["text"]);
    let conf = std::fs::read_to_string(tmp.path().join("lvsd.conf")).unwrap();
    assert!(conf.contains("protocol static lvsd_vip_203_0_113_10 {\n  disabled no;"), "{conf}");
    assert!(conf.contains("protocol static lvsd_vip_203_0_113_11 {\n  disabled yes;"), "{conf}");

    // The director's drain completes without BIRD (nothing can be announced without it).
    let (code, out, err) = dm.cli(&["drain-director", "--timeout", "10"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("drained:"), "{out}");
    dm.wait_for(
        |_| !std::fs::read_to_string(tmp.path().join("lvsd.conf")).unwrap().contains("disabled no"),
        "every VIP withdrawn in the file",
    );
    let r = dm.call(serde_json::json!({"v": 1, "cmd": "undrain_director"}));
    assert_eq!(r["ok"], true, "{r}");
    dm.wait_for(|_| std::fs::read_to_string(tmp.path().join("lvsd.conf")).unwrap().contains("disabled no"), "a announced again");
    // The file and the state the REPL reads are updated separately: wait for the state too.
    dm.wait_for(|d| d.repl("return lvsd.state.bgp.vips[1].why\n").contains("a announce function says yes"), "a's reason in the state");
    // The REPL has the same two actions.
    dm.repl("lvsd.drain_director(5)\n");
    dm.wait_for(|d| !d.status()["bgp"]["drain"].is_null(), "drained from the REPL");
    dm.repl("lvsd.undrain_director()\n");
    dm.wait_for(|d| d.status()["bgp"]["drain"].is_null(), "undrained from the REPL");
    // Every drain and undrain above asked c's function again; its failure was logged once.
    assert_eq!(dm.log().matches("c: announce function failed").count(), 1, "{}", dm.log());

    // lvsd.bgp taken out of the policy: what was announced is withdrawn.
    let plain = src.lines().filter(|l| !l.starts_with("lvsd.bgp")).collect::<Vec<_>>().join("\n");
    let plain = plain.replace("announce = function", "on_up = function");
    std::fs::write(&dm.policy, plain).unwrap();
    let r = dm.call(serde_json::json!({"v": 1, "cmd": "reload"}));
    assert_eq!(r["ok"], true, "{r}");
    dm.wait_for(
        |_| !std::fs::read_to_string(tmp.path().join("lvsd.conf")).unwrap().contains("disabled no"),
        "withdrawn when lvsd.bgp goes",
    );
    // The file is written before the status is updated: wait for the status too.
    dm.wait_for(
        |d| d.status()["bgp"]["vips"].as_array().unwrap().iter().all(|v| v["why"] == "lvsd.bgp left the policy"),
        "the status says why everything is withdrawn",
    );
}
