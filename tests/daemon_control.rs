//! The running director over its control socket: status, REPL, live actions, hot reload.

mod common;
use common::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

const POLICY: &str = r#"
lvsd.service "web" {
  vip = "192.0.2.10:80", scheduler = "wrr",
  reals = { "198.51.100.1:80", "198.51.100.2:80" },
}
"#;

fn real_weight(st: &serde_json::Value, real: &str) -> Option<u64> {
    st["services"][0]["reals"].as_array().unwrap().iter().find(|r| r["address"] == real).and_then(|r| r["weight"].as_u64())
}

#[test]
fn status_shows_the_table_and_the_policy() {
    let d = Daemon::start(POLICY, "lvs01", &[]);
    let st = d.status();
    assert_eq!(st["version"], 1);
    assert_eq!(st["node"], "lvs01");
    assert_eq!(st["generation"], 1);
    assert_eq!(st["backend"], "memory");
    assert_eq!(real_weight(&st, "198.51.100.1:80"), Some(1));
    let (code, text, _) = d.cli(&["status"]);
    assert_eq!(code, 0);
    assert!(text.contains("TCP  192.0.2.10:80 wrr"), "{text}");
    assert!(text.contains(&format!("  -> {:<28} Route   1", "198.51.100.1:80")), "{text}");
}

#[test]
fn repl_over_a_pipe_inspects_drains_and_undrains() {
    let d = Daemon::start(POLICY, "lvs01", &[]);
    let script = "lvsd.state.node\n\
                  #lvsd.state.services[1].reals\n\
                  lvsd.drain(\"web\", \"198.51.100.2:80\")\n\
                  n = 0\nfor _, r in ipairs(lvsd.state.services[1].reals) do\n  n = n + r.weight\nend\nn\n\
                  :help\n";
    let text = d.repl(script);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "lvs01");
    assert_eq!(lines[1], "2");
    assert_eq!(lines[2], "1", "the loop saw the drained real at weight 0: {text}");
    assert!(text.contains("lvsd.drain(service, real)"), ":help printed: {text}");
    assert_eq!(real_weight(&d.status(), "198.51.100.2:80"), Some(0), "drained = weight 0");
    assert_eq!(d.status()["services"][0]["reals"][1]["drained"], true);

    let r = d.call(json!({"v": 1, "cmd": "undrain", "service": "web", "real": "198.51.100.2:80"}));
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(real_weight(&d.status(), "198.51.100.2:80"), Some(1));
}

#[test]
fn weight_override_and_unknown_names() {
    let d = Daemon::start(POLICY, "lvs01", &[]);
    let r = d.call(json!({"v": 1, "cmd": "set_weight", "service": "web", "real": "198.51.100.1:80", "weight": 7}));
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(real_weight(&d.status(), "198.51.100.1:80"), Some(7));
    let r = d.call(json!({"v": 1, "cmd": "clear_weight", "service": "web", "real": "198.51.100.1:80"}));
    assert_eq!(r["ok"], true);
    assert_eq!(real_weight(&d.status(), "198.51.100.1:80"), Some(1));
    let r = d.call(json!({"v": 1, "cmd": "drain", "service": "nope", "real": "198.51.100.1:80"}));
    assert_eq!(r["ok"], false);
    assert!(r["error"].as_str().unwrap().contains("no service 'nope' (services: web)"), "{r}");
    let r = d.call(json!({"v": 1, "cmd": "drain", "service": "web", "real": "198.51.100.9:80"}));
    assert!(r["error"].as_str().unwrap().contains("has no real 198.51.100.9:80"), "{r}");
}

#[test]
fn malformed_and_huge_requests_get_errors_and_the_daemon_lives_on() {
    let d = Daemon::start(POLICY, "lvs01", &[]);
    let r: serde_json::Value = serde_json::from_str(&d.raw(b"{not json\n")).unwrap();
    assert_eq!(r["ok"], false);
    assert!(r["error"].as_str().unwrap().starts_with("malformed request"), "{r}");
    let r: serde_json::Value = serde_json::from_str(&d.raw(b"{\"v\":2,\"cmd\":\"status\"}\n")).unwrap();
    assert!(r["error"].as_str().unwrap().contains("protocol version 2"), "{r}");
    let r: serde_json::Value = serde_json::from_str(&d.raw(b"{\"v\":1,\"cmd\":\"format_disk\"}\n")).unwrap();
    assert_eq!(r["ok"], false);
    let mut huge = vec![b'x'; 2 << 20];
    huge.push(b'\n');
    let r: serde_json::Value = serde_json::from_str(&d.raw(&huge)).unwrap();
    assert!(r["error"].as_str().unwrap().contains("longer than"), "{r}");
    assert_eq!(d.status()["generation"], 1, "still answering");
}

#[test]
fn hot_reload_many_saves_some_invalid() {
    let d = Daemon::start(POLICY, "lvs01", &["--resync", "1"]);
    let good = |w: u32| POLICY.replace("\"198.51.100.2:80\"", &format!("{{ address = \"198.51.100.2:80\", weight = {w} }}"));
    let mut last_good = 1;
    for i in 0..=100u32 {
        // Every fifth save is broken; atomic save (write + rename) like most editors.
        let src = if i % 5 == 4 {
            "lvsd.service \"web\" { vip = ".to_string()
        } else {
            last_good = i + 2;
            good(last_good)
        };
        let tmp = d.policy.with_extension("tmp");
        std::fs::write(&tmp, src).unwrap();
        std::fs::rename(&tmp, &d.policy).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(if i % 10 == 0 { 250 } else { 5 }));
    }
    d.wait_for(|d| real_weight(&d.status(), "198.51.100.2:80") == Some(last_good as u64), "the last good save to apply");
    let st = d.status();
    assert_eq!(st["last_reload"]["ok"], true);
    let generation = st["generation"].as_u64().unwrap();
    assert!(generation >= 2, "at least one reload: {st}");

    // A broken save leaves the running generation and reports the error with file and line.
    std::fs::write(&d.policy, "lvsd.service \"web\" {\n vip = 5 }\n").unwrap();
    d.wait_for(|d| d.status()["last_reload"]["ok"] == false, "the failed reload to be reported");
    let st = d.status();
    assert_eq!(st["generation"].as_u64().unwrap(), generation);
    let err = st["last_reload"]["errors"][0].as_str().unwrap();
    assert!(err.contains("policy.lua:1: service 'web': vip must be a string"), "{err}");
    assert_eq!(real_weight(&st, "198.51.100.2:80"), Some(last_good as u64), "the old table stays");
    let (code, _, err) = d.cli(&["reload"]);
    assert_eq!(code, 1);
    assert!(err.contains("vip must be a string"), "{err}");

    // The next good save recovers.
    std::fs::write(&d.policy, good(42)).unwrap();
    d.wait_for(|d| real_weight(&d.status(), "198.51.100.2:80") == Some(42), "recovery");
}

#[test]
fn sighup_and_sigterm() {
    let mut d = Daemon::start(POLICY, "lvs01", &[]);
    std::fs::write(&d.policy, POLICY.replace("wrr", "rr")).unwrap();
    unsafe { libc::kill(d.child.id() as i32, libc::SIGHUP) };
    d.wait_for(|d| d.status()["services"][0]["scheduler"] == "rr", "SIGHUP reload");
    assert_eq!(d.stop(), 0);
    assert!(!d.socket.exists(), "the socket is removed on exit");
}

#[test]
fn socket_is_root_only() {
    if !need_root("socket_is_root_only") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let d = Daemon::start(POLICY, "lvs01", &[]);
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(d.socket.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    // Let nobody reach the socket's directory, so that only the socket's own checks stand.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(d.socket.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // `lvsd status` run as nobody: it must fail; its stderr says why.
    let as_nobody = || {
        let out =
            Command::new(lvsd_bin()).args(["status", "--control", d.socket.to_str().unwrap()]).uid(65534).gid(65534).output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = as_nobody();
    assert!(err.contains("Permission denied"), "{err}");
    // Even a socket opened up by mistake answers nobody.
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = as_nobody();
    assert!(err.contains("root-only"), "{err}");
}

#[test]
fn metrics_scrape_parses_as_prometheus_text() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start(POLICY, "lvs01", &["--metrics", &addr]);
    let scrape = || -> Option<String> {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
        let mut r = String::new();
        s.read_to_string(&mut r).ok()?;
        Some(r)
    };
    d.wait_for(|_| scrape().is_some(), "the metrics listener");
    let resp = scrape().unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(body.contains("lvsd_policy_generation 1"), "{body}");
    assert!(body.contains("lvsd_real_weight{service=\"web\",real=\"198.51.100.1:80\"} 1"), "{body}");
    let samples = parse_exposition(body);
    let families: BTreeSet<&str> = samples.iter().map(|s| s.family.as_str()).collect();
    assert!(families.len() >= 10, "{families:?}");
    // node_exporter's names and labels, by default, for the table the memory backend holds.
    let weight = samples
        .iter()
        .find(|s| s.name == "node_ipvs_backend_weight" && s.labels["remote_address"] == "198.51.100.1")
        .unwrap_or_else(|| panic!("no node_ipvs_backend_weight for 198.51.100.1 in\n{body}"));
    assert_eq!(weight.value, 1.0);
    assert_eq!(
        (weight.labels["local_address"].as_str(), weight.labels["local_port"].as_str(), weight.labels["proto"].as_str()),
        ("192.0.2.10", "80", "TCP")
    );
    check_compat_labels(&samples, &["node_ipvs_connections_total", "node_ipvs_backend_connections_active", "keepalived_up"]);
    // Every metric the shipped Grafana dashboard queries is on the page.
    let dashboard: serde_json::Value = serde_json::from_str(include_str!("../examples/grafana-lvsd.json")).unwrap();
    let names = lvsd_names_in(&dashboard.to_string());
    assert!(names.len() >= 8, "{names:?}");
    for n in &names {
        assert!(body.contains(&format!("# TYPE {n} ")), "the dashboard queries {n}, which lvsd does not export:\n{body}");
    }
}

#[test]
fn metrics_compat_sets_can_be_turned_off() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start(POLICY, "lvs01", &["--metrics", &addr, "--metrics-compat", "none"]);
    let body = || -> Option<String> {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
        let mut r = String::new();
        s.read_to_string(&mut r).ok()?;
        r.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
    };
    d.wait_for(|_| body().is_some_and(|b| b.contains("lvsd_real_weight{")), "the metrics page");
    let page = body().unwrap();
    assert!(!page.contains("node_ipvs_") && !page.contains("keepalived_"), "{page}");
    // A set that does not exist is a usage error at start.
    let out = Command::new(lvsd_bin()).args(["run", "-p", "/nonexistent", "--metrics-compat", "bgp"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("node_ipvs, keepalived"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// One sample as the reference parser (the Python client library's) reads it.
struct Sample {
    family: String,
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parse a page with prometheus_client's parser: every family and sample must be valid.
fn parse_exposition(body: &str) -> Vec<Sample> {
    const PY: &str = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in f.samples:\n\
        \x20       print(json.dumps([f.name, s.name, s.labels, s.value]))\n";
    let mut py =
        Command::new("python3").args(["-c", PY]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    py.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "prometheus_client rejected the exposition: {}\n{body}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (family, name, labels, value): (String, String, BTreeMap<String, String>, f64) = serde_json::from_str(l).unwrap();
            Sample { family, name, labels, value }
        })
        .collect()
}

/// The label names node_exporter's ipvs collector (collector/ipvs_linux.go) and the keepalived
/// exporter (github.com/mehdy/keepalived-exporter, internal/collector/collector.go) document
/// for each of their series.
fn documented_labels(name: &str) -> Option<&'static [&'static str]> {
    const BACKEND: &[&str] = &["local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"];
    const VRRP: &[&str] = &["iname", "intf", "vrid"];
    Some(match name {
        "node_ipvs_connections_total"
        | "node_ipvs_incoming_packets_total"
        | "node_ipvs_outgoing_packets_total"
        | "node_ipvs_incoming_bytes_total"
        | "node_ipvs_outgoing_bytes_total"
        | "keepalived_up" => &[],
        "node_ipvs_backend_connections_active" | "node_ipvs_backend_connections_inactive" | "node_ipvs_backend_weight" => BACKEND,
        "keepalived_vrrp_state" => &["iname", "intf", "vrid", "ip_address"],
        "keepalived_gratuitous_arp_delay_total"
        | "keepalived_advertisements_received_total"
        | "keepalived_advertisements_sent_total"
        | "keepalived_become_master_total"
        | "keepalived_release_master_total"
        | "keepalived_packet_length_errors_total"
        | "keepalived_advertisements_interval_errors_total"
        | "keepalived_ip_ttl_errors_total"
        | "keepalived_invalid_type_received_total"
        | "keepalived_address_list_errors_total"
        | "keepalived_authentication_invalid_total"
        | "keepalived_authentication_mismatch_total"
        | "keepalived_authentication_failure_total"
        | "keepalived_priority_zero_received_total"
        | "keepalived_priority_zero_sent_total" => VRRP,
        _ => return None,
    })
}

/// Every compatible sample has exactly its documented labels, no other compatible name
/// appears, and each of `expect` has at least one sample.
fn check_compat_labels(samples: &[Sample], expect: &[&str]) {
    for s in samples.iter().filter(|s| s.name.starts_with("node_ipvs_") || s.name.starts_with("keepalived_")) {
        let documented = documented_labels(&s.name).unwrap_or_else(|| panic!("{} is no documented series", s.name));
        let got: BTreeSet<&str> = s.labels.keys().map(String::as_str).collect();
        assert_eq!(got, documented.iter().copied().collect(), "labels of {}", s.name);
    }
    for e in expect {
        assert!(samples.iter().any(|s| s.name == *e), "no {e} sample");
    }
}

/// The lvsd_* metric names in a text (a dashboard's queries).
fn lvsd_names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("lvsd_") {
        let start = i + at;
        let before_ok = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let end = text[start..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(text.len(), |e| start + e);
        if before_ok {
            out.insert(text[start..end].to_string());
        }
        i = end;
    }
    out
}

#[test]
fn one_real_changed_among_a_thousand_services_is_one_op() {
    let src = |w: u32| {
        format!(
            r#"
for i = 1, 1000 do
  lvsd.service ("svc" .. i) {{
    vip = string.format("192.0.2.%d:%d", 1 + i % 200, 1000 + i),
    reals = {{ {{ address = "198.51.100.1", weight = i == 500 and {w} or 1 }}, "198.51.100.2" }},
  }}
end
"#
        )
    };
    let d = Daemon::start(&src(1), "lvs01", &["--resync", "3600"]);
    let writes = |d: &Daemon| d.status()["ipvs_writes"].as_u64().unwrap();
    d.wait_for(|d| writes(d) == 3000, "1,000 services and 2,000 reals");
    std::fs::write(&d.policy, src(7)).unwrap();
    d.wait_for(|d| d.status()["generation"] == 2, "the reload");
    assert_eq!(writes(&d), 3001, "exactly one op for one weight");
}

#[test]
fn status_text_lists_reals_that_are_down_and_out_of_the_table() {
    // One real that accepts connections (the kernel completes the handshake from the
    // listen queue), one on a port nothing listens on.
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_port = up.local_addr().unwrap().port();
    let down_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let policy = format!(
        r#"
lvsd.service "web" {{
  vip = "192.0.2.10:80", scheduler = "wrr",
  check = lvsd.check.tcp {{ interval = 1, timeout = 1, retries = 1 }},
  reals = {{ "127.0.0.1:{up_port}", {{ address = "127.0.0.1:{down_port}", weight = 5 }} }},
}}
lvsd.service "idle" {{
  vip = "192.0.2.11:80",
  check = lvsd.check.tcp {{ interval = 1, timeout = 1, retries = 1 }},
  reals = {{ "127.0.0.1:{down_port}" }},
  quorum = 1,
}}
"#
    );
    let d = Daemon::start(&policy, "lvs01", &[]);
    let down = format!("127.0.0.1:{down_port}");
    d.wait_for(
        |d| {
            let st = d.status();
            st["services"][0]["reals"][1]["health"] == "down" && st["services"][0]["reals"][1]["in_table"] == false
        },
        "the real without a listener to go down",
    );
    let (code, text, _) = d.cli(&["status"]);
    assert_eq!(code, 0);
    // The real in the table keeps its ipvsadm line; the one out of it is listed, marked.
    assert!(text.contains(&format!("  -> {:<28} Route   1", format!("127.0.0.1:{up_port}"))), "{text}");
    let line = text.lines().find(|l| l.contains(&down) && !l.contains("->")).unwrap_or_else(|| panic!("{down} missing:\n{text}"));
    assert!(line.contains("(not in the table)") && line.contains("down") && line.contains(" 5"), "{line}");
    // Under a service the table has, and under one it does not have at all.
    assert_eq!(text.lines().filter(|l| l.contains(&down)).count(), 2, "{text}");
}

#[test]
fn metrics_of_a_running_vrrp_instance() {
    // The VRRP part of the page is read from the instance's status by name: a field renamed
    // there makes the page a 503, which this test would catch.
    if !lvsd::net::netns::privileged_or_skip("metrics_of_a_running_vrrp_instance") {
        return;
    }
    let lan = common::lan::Lan::new("lcm", 1).unwrap();
    let ns = lan.host(0);
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]).unwrap();
    ns.ip(&["link", "set", "lo", "up"]).unwrap();
    let policy = r#"
lvsd.vrrp "VI_1" { interface = "eth0", vrid = 51, version = 3, advert_int = 0.2, priority = 100, vips = { "192.0.2.100/24" } }
lvsd.service "web" { vip = "192.0.2.100:80", reals = { "198.51.100.1:80" } }
"#;
    let d = Daemon::start_in(Some(ns.name()), policy, "lvs01", &["--metrics", "127.0.0.1:9815"]);
    d.wait_for(|d| d.vrrp_state("VI_1") == "master", "mastership");
    let scrape = || {
        ns.run(|| {
            use std::io::Read;
            let mut s = std::net::TcpStream::connect("127.0.0.1:9815").ok()?;
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
            let mut r = String::new();
            s.read_to_string(&mut r).ok()?;
            Some(r)
        })
        .unwrap()
    };
    let sent = |page: &str| -> Option<u64> {
        page.lines()
            .find_map(|l| l.strip_prefix("lvsd_vrrp_adverts_total{instance=\"VI_1\",result=\"sent\"} "))
            .and_then(|v| v.parse().ok())
    };
    d.wait_for(
        |_| scrape().is_some_and(|p| p.contains("lvsd_vrrp_state{instance=\"VI_1\",state=\"master\"} 1") && sent(&p) > Some(0)),
        "the instance's metrics",
    );
    let page = scrape().unwrap();
    assert!(page.starts_with("HTTP/1.0 200 OK"), "{page}");
    assert!(page.contains("lvsd_vrrp_priority{instance=\"VI_1\"} 100"), "{page}");
    assert!(page.contains("lvsd_vrrp_transitions_total{instance=\"VI_1\"} "), "{page}");
    // The keepalived exporter's series for the same instance, as it labels them.
    let samples = parse_exposition(page.split_once("\r\n\r\n").unwrap().1);
    check_compat_labels(
        &samples,
        &[
            "keepalived_vrrp_state",
            "keepalived_advertisements_sent_total",
            "keepalived_become_master_total",
            "keepalived_release_master_total",
        ],
    );
    let one = |name: &str| {
        samples.iter().find(|s| s.name == name && s.labels["iname"] == "VI_1").unwrap_or_else(|| panic!("no {name} for VI_1:\n{page}"))
    };
    let state = one("keepalived_vrrp_state");
    assert_eq!(state.value, 2.0, "keepalived's MASTER");
    let labels: Vec<&str> = ["intf", "vrid", "ip_address"].iter().map(|k| state.labels[*k].as_str()).collect();
    assert_eq!(labels, ["eth0", "51", "192.0.2.100/24"]);
    assert_eq!(one("keepalived_become_master_total").value, 1.0);
    assert!(one("keepalived_advertisements_sent_total").value > 0.0);
}
