//! Lua checks (coroutines with lvsd.net), their limits, and weight functions.

mod check_support;

use check_support::*;
use lvsd::check::lua::{call_weight, run_check};
use lvsd::check::{CheckResult, Prober, RsInfo, RunCtx, Scalar};
use lvsd::model::{CheckKind, HookRef};
use lvsd::policy::Policy;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn rs(addr: SocketAddr) -> RsInfo {
    RsInfo { address: addr, port: addr.port(), service: "s".into(), weight: 10 }
}

fn run_ref(p: &Policy) -> HookRef {
    match spec_of(p).kind {
        CheckKind::Lua { run } => run,
        k => panic!("not a Lua check: {k:?}"),
    }
}

/// Run the policy's check with its timeout and `instructions`.
async fn probe(p: &Policy, instructions: u64) -> CheckResult {
    let spec = spec_of(p);
    let real = p.model.services[0].reals[0].addr;
    let ctx = RunCtx { lua: Some(p.lua.clone()), rs: rs(real), instructions, connects: None };
    Prober::new(&spec, real).run(&ctx).await
}

async fn redis_like() -> SocketAddr {
    tcp_server(false, Switch::on(), |req| if req == b"PING\r\n" { b"+PONG\r\n".to_vec() } else { b"-ERR\r\n".to_vec() }).await
}

const REDIS_CHECK: &str = r#"lvsd.check.lua { timeout = 2, retries = 0, run = function(rs)
    local c = lvsd.net.tcp(rs.ip, rs.port)
    c:write("PING\r\n")
    local line = c:read_line()
    c:close()
    return line == "+PONG", "got " .. tostring(line)
end }"#;

#[test]
fn lua_check_with_net_tcp() {
    local(async {
        let srv = redis_like().await;
        let p = one_real(REDIS_CHECK, srv);
        let r = probe(&p, 1_000_000).await;
        assert!(r.ok, "{r:?}");
        // connection refused: the Lua error is the failure message
        let p = one_real(REDIS_CHECK, closed_port());
        let r = probe(&p, 1_000_000).await;
        assert!(!r.ok);
        assert!(r.error.as_deref().unwrap().contains("refused"), "{r:?}");
    });
}

#[test]
fn lua_net_udp_http_dns() {
    local(async {
        let echo = udp_server(|d| vec![d.to_vec()]).await;
        let web = tcp_server(false, Switch::on(), |_| http_response(200, "{\"load\": 3}")).await;
        let dns = udp_server(|q| {
            let mut r = q.to_vec();
            r[2] = 0x81;
            r[3] = 0x80;
            vec![r]
        })
        .await;
        let src = format!(
            r#"lvsd.check.lua {{ timeout = 2, retries = 0, run = function(rs)
                local u = lvsd.net.udp("127.0.0.1", {})
                u:send("hi")
                assert(u:recv() == "hi", "udp echo")
                local h = lvsd.net.http {{ ip = "127.0.0.1", port = {}, path = "/load", host = "x.example.org" }}
                assert(h.status == 200 and h.body:find("load"), "http")
                local d = lvsd.net.dns {{ ip = "127.0.0.1", port = {}, name = "example.org", type = "A" }}
                assert(d.ok and d.rcode == 0, "dns")
                return {{ ok = true, load = tonumber(h.body:match("%d+")) }}
            end }}"#,
            echo.port(),
            web.port(),
            dns.port()
        );
        let p = one_real(&src, "127.0.0.1:80".parse().unwrap());
        let r = probe(&p, 1_000_000).await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.values.get("load"), Some(&Scalar::Int(3)));
    });
}

#[test]
fn endless_loop_hits_the_instruction_limit_without_blocking_others() {
    local(async {
        let p = one_real(
            "lvsd.check.lua { timeout = 30, retries = 0, run = function(rs) while true do end end }",
            "127.0.0.1:80".parse().unwrap(),
        );
        let srv = redis_like().await;
        let q = one_real(REDIS_CHECK, srv);
        let t = Instant::now();
        // Both at once on one thread: the loop yields to the runtime, so the TCP check
        // finishes while the loop is still burning its budget.
        let looping = probe(&p, 50_000_000);
        let other = async {
            let r = probe(&q, 1_000_000).await;
            (r, t.elapsed())
        };
        let (lr, (or, other_done)) = tokio::join!(looping, other);
        let loop_done = t.elapsed();
        assert!(!lr.ok);
        assert!(lr.error.as_deref().unwrap().contains("instruction limit of 50000000 exceeded"), "{lr:?}");
        assert!(or.ok, "{or:?}");
        assert!(other_done < loop_done, "the TCP check waited for the loop ({other_done:?} vs {loop_done:?})");
        // The state is still usable afterwards.
        assert!(probe(&q, 1_000_000).await.ok);
    });
}

#[test]
fn endless_loop_is_stopped_by_the_timeout() {
    local(async {
        let p = one_real(
            "lvsd.check.lua { timeout = 0.3, retries = 0, run = function(rs) while true do end end }",
            "127.0.0.1:80".parse().unwrap(),
        );
        let t = Instant::now();
        let r = probe(&p, u64::MAX).await;
        assert!(!r.ok);
        assert!(r.error.as_deref().unwrap().contains("timed out after 0.3s"), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn loops_in_nested_coroutines_count_too() {
    local(async {
        let p = one_real(
            "lvsd.check.lua { timeout = 30, retries = 0, run = function(rs) \
               local co = coroutine.wrap(function() while true do end end) co() end }",
            "127.0.0.1:80".parse().unwrap(),
        );
        let r = probe(&p, 5_000_000).await;
        assert!(!r.ok);
        assert!(r.error.as_deref().unwrap().contains("instruction limit"), "{r:?}");
    });
}

#[test]
fn errors_and_memory_fail_the_check_with_the_message() {
    local(async {
        let real: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let p = one_real(r#"lvsd.check.lua { timeout = 1, retries = 0, run = function(rs) error("disk full on " .. rs.ip) end }"#, real);
        let r = probe(&p, 1_000_000).await;
        assert!(r.error.as_deref().unwrap().contains("disk full on 127.0.0.1"), "{r:?}");
        assert!(r.error.as_deref().unwrap().contains("test.lua:1:"), "{r:?}");
        let p = policy(
            r#"lvsd.service "s" { vip = "192.0.2.1:80", reals = {
                { address = "127.0.0.1:80", check = lvsd.check.lua { timeout = 5, retries = 0, run = function(rs)
                    local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1000) .. i end end } },
                { address = "127.0.0.2:80", check = lvsd.check.lua { run = function(rs) return true end } },
            } }"#,
        );
        let r = probe(&p, u64::MAX).await;
        assert!(r.error.as_deref().unwrap().contains("memory limit"), "{r:?}");
        // the state goes on working once the garbage is collected
        p.lua.gc_collect().unwrap();
        let CheckKind::Lua { run } = p.model.services[0].reals[1].checks[0].kind else { panic!() };
        assert!(run_check(&p.lua, run, &rs(real), 1_000_000, None).await.unwrap().ok);
    });
}

#[test]
fn return_values() {
    local(async {
        let real: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let cases: &[(&str, bool, Option<u32>, Option<&str>)] = &[
            ("return true", true, None, None),
            ("return false", false, None, Some("check returned false")),
            ("return nil, 'no quorum'", false, None, Some("no quorum")),
            ("return 42.9", true, Some(42), None),
            ("return -3", true, Some(0), None),
            ("return { ok = false, error = 'lagging' }", false, None, Some("lagging")),
            ("return { ok = true, weight = 70000, lag = 1.5 }", true, Some(65535), None),
        ];
        for (body, ok, weight, err) in cases {
            let p = one_real(&format!("lvsd.check.lua {{ retries = 0, run = function(rs) {body} end }}"), real);
            let r = run_check(&p.lua, run_ref(&p), &rs(real), 1_000_000, None).await.unwrap();
            assert_eq!((r.ok, r.weight, r.error.as_deref()), (*ok, *weight, *err), "{body}");
        }
        let p = one_real("lvsd.check.lua { run = function(rs) return { lag = 1.5, role = 'replica', rs_weight = rs.weight } end }", real);
        let r = run_check(&p.lua, run_ref(&p), &rs(real), 1_000_000, None).await.unwrap();
        assert_eq!(r.values.get("lag"), Some(&Scalar::Num(1.5)));
        assert_eq!(r.values.get("role"), Some(&Scalar::Str("replica".into())));
        assert_eq!(r.values.get("rs_weight"), Some(&Scalar::Int(10)));
    });
}

#[test]
fn weight_functions() {
    let real: SocketAddr = "198.51.100.7:80".parse().unwrap();
    let p = policy(
        r#"lvsd.service "s" { vip = "192.0.2.1:80", check = lvsd.check.tcp {}, reals = {
            { address = "198.51.100.7:80", weight = function(rs, h) return h.ok and math.max(1, 100 - h.latency_ms) + (h.bonus or 0) or 0 end },
            { address = "198.51.100.8:80", weight = function(rs, h) error("no weight for " .. rs.address) end },
            { address = "198.51.100.9:80", weight = function(rs, h) while true do end end },
            { address = "198.51.100.10:80", weight = function(rs, h) return "heavy" end },
            { address = "198.51.100.11:80", weight = function(rs, h) return h.status == 200 and rs.weight * 2 or 1 end },
        } }"#,
    );
    let f = |i: usize| p.model.services[0].reals[i].weight_fn.unwrap();
    let mut r = CheckResult::up(Duration::from_millis(30));
    assert_eq!(call_weight(&p.lua, f(0), &rs(real), &r, 1_000_000), Ok(70));
    r.values.insert("bonus".into(), Scalar::Int(5));
    assert_eq!(call_weight(&p.lua, f(0), &rs(real), &r, 1_000_000), Ok(75));
    let down = CheckResult::down(Duration::from_millis(1), "refused");
    assert_eq!(call_weight(&p.lua, f(0), &rs(real), &down, 1_000_000), Ok(0));
    let e = call_weight(&p.lua, f(1), &rs(real), &r, 1_000_000).unwrap_err();
    assert!(e.contains("no weight for 198.51.100.7:80"), "{e}");
    let e = call_weight(&p.lua, f(2), &rs(real), &r, 1_000_000).unwrap_err();
    assert!(e.contains("instruction limit of 1000000 exceeded"), "{e}");
    let e = call_weight(&p.lua, f(3), &rs(real), &r, 1_000_000).unwrap_err();
    assert!(e.contains("returned a string"), "{e}");
    r.status = Some(200);
    assert_eq!(call_weight(&p.lua, f(4), &rs(real), &r, 1_000_000), Ok(20));
}

#[test]
fn call_sync_limits_nested_coroutines_too() {
    let p = policy(
        r#"lvsd.service "s" { vip = "192.0.2.1:80", reals = { "198.51.100.1:80" },
            on_up = function(ev) coroutine.wrap(function() while true do end end)() end,
            on_down = function(ev) return ev.n * 2 end }"#,
    );
    let hooks: mlua::Table = p.lua.named_registry_value("lvsd.hooks").unwrap();
    let up: mlua::Function = hooks.raw_get(p.model.services[0].on_up.unwrap().0).unwrap();
    let e = lvsd::check::lua::call_sync(&p.lua, up, (), 1_000_000).unwrap_err();
    assert!(e.contains("instruction limit of 1000000 exceeded"), "{e}");
    let down: mlua::Function = hooks.raw_get(p.model.services[0].on_down.unwrap().0).unwrap();
    let ev = p.lua.create_table().unwrap();
    ev.set("n", 21).unwrap();
    assert_eq!(lvsd::check::lua::call_sync(&p.lua, down, ev, 1_000_000), Ok(mlua::Value::Integer(42)));
}

/// `lvsd.net.*` connect from the check's `bind` address, as the built-in checks do.
#[test]
fn lua_net_calls_use_the_checks_bind_address() {
    use tokio::io::AsyncWriteExt;
    local(async {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (tp, up) = (tcp.local_addr().unwrap().port(), udp.local_addr().unwrap().port());
        let peers = || async {
            let mut out = Vec::new();
            // lvsd.net.tcp, then lvsd.net.http (answered), then the datagram.
            for _ in 0..2 {
                let (mut s, peer) = tcp.accept().await.unwrap();
                out.push(peer.ip().to_string());
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
            }
            let mut buf = [0u8; 16];
            let (_, peer) = udp.recv_from(&mut buf).await.unwrap();
            out.push(peer.ip().to_string());
            out
        };
        for (bind, want) in [("bind = \"127.0.0.2\",", "127.0.0.2"), ("", "127.0.0.1")] {
            let src = format!(
                r#"lvsd.check.lua {{ {bind} timeout = 2, retries = 0, run = function(rs)
                    lvsd.net.tcp("127.0.0.1", {tp}):close()
                    local h = lvsd.net.http {{ ip = "127.0.0.1", port = {tp} }}
                    lvsd.net.udp("127.0.0.1", {up}):send("x")
                    return h.status == 200
                end }}"#
            );
            let p = one_real(&src, "127.0.0.1:80".parse().unwrap());
            let (r, seen) = tokio::join!(probe(&p, 1_000_000), peers());
            assert!(r.ok, "{r:?}");
            assert_eq!(seen, vec![want; 3], "{bind}");
        }
    });
}
