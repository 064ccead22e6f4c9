//! The check manager end to end on loopback: state follows servers going down and up,
//! flapping is absorbed, slow checks do not hold up others, weights follow, reload keeps
//! history.

mod check_support;

use check_support::*;
use lvsd::check::{CheckEvent, CheckManager, CheckOptions, RealChange};
use lvsd::desired::RealState;
use lvsd::policy::Policy;
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A TCP listener that can be closed (connections refused) and opened again on its port.
struct Toggle {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Toggle {
    async fn new() -> Toggle {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let mut t = Toggle { addr, task: None };
        t.serve(l);
        t
    }
    fn serve(&mut self, l: TcpListener) {
        self.task = Some(tokio::task::spawn_local(async move {
            while let Ok((s, _)) = l.accept().await {
                drop(s);
            }
        }));
    }
    async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
    async fn up(&mut self) {
        let l = TcpListener::bind(self.addr).await.unwrap();
        self.serve(l);
    }
}

fn manager(p: &Policy, opts: CheckOptions) -> (CheckManager, mpsc::UnboundedReceiver<CheckEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let m = CheckManager::with_options(&p.model, p.lua.clone(), tx, opts);
    m.start();
    (m, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<CheckEvent>, limit: Duration) -> Option<CheckEvent> {
    tokio::time::timeout(limit, rx.recv()).await.ok().flatten()
}

const LONG: Duration = Duration::from_secs(10);

#[test]
fn tcp_real_goes_down_after_fall_failures_and_up_after_rise_successes() {
    local(async {
        let mut srv = Toggle::new().await;
        let p = one_real("lvsd.check.tcp { interval = 0.1, timeout = 1, retries = 0, rise = 2, fall = 3 }", srv.addr);
        let (m, mut rx) = manager(&p, CheckOptions::default());
        assert_eq!(m.real_state(0, 0), RealState::Up(1));
        // a few good results first; nothing is sent while nothing changes
        assert!(wait_until(LONG, || m.real_status(0, 0).unwrap().checks[0].history.len() >= 3).await);
        assert!(rx.try_recv().is_err());

        srv.down().await;
        let ev = next(&mut rx, LONG).await.expect("a down event");
        assert_eq!((ev.service, ev.real, ev.new_state), (0, 0, RealState::Down));
        let Some(RealChange::Down { reason }) = &ev.change else { panic!("{ev:?}") };
        assert!(reason.contains("refused"), "{reason}");
        assert_eq!(m.real_state(0, 0), RealState::Down);
        // exactly `fall` consecutive failures brought it down
        let st = m.real_status(0, 0).unwrap();
        let oks: Vec<bool> = st.checks[0].history.iter().map(|r| r.ok).collect();
        assert_eq!(&oks[oks.len() - 4..], &[true, false, false, false], "{oks:?}");

        srv.up().await;
        let ev = next(&mut rx, LONG).await.expect("an up event");
        assert_eq!((ev.new_state, ev.change), (RealState::Up(1), Some(RealChange::Up)));
        let oks: Vec<bool> = m.real_status(0, 0).unwrap().checks[0].history.iter().map(|r| r.ok).collect();
        assert_eq!(&oks[oks.len() - 3..], &[false, true, true], "{oks:?}");
    });
}

#[test]
fn flapping_within_rise_and_fall_changes_nothing() {
    local(async {
        let n = Rc::new(Cell::new(0u32));
        let n2 = n.clone();
        // every other response fails
        let srv = tcp_server(false, Switch::on(), move |_| {
            n2.set(n2.get() + 1);
            http_response(if n2.get().is_multiple_of(2) { 503 } else { 200 }, "")
        })
        .await;
        let p = one_real("lvsd.check.http { interval = 0.05, timeout = 1, retries = 0, rise = 2, fall = 2 }", srv);
        let (m, mut rx) = manager(&p, CheckOptions::default());
        assert!(wait_until(LONG, || n.get() >= 12).await);
        assert!(rx.try_recv().is_err(), "a flapping real changed state");
        assert_eq!(m.real_state(0, 0), RealState::Up(1));
        let st = m.real_status(0, 0).unwrap();
        assert!(st.checks[0].history.iter().any(|r| !r.ok) && st.checks[0].history.iter().any(|r| r.ok));
    });
}

#[test]
fn http_udp_dns_smtp_reals_follow_their_servers() {
    local(async {
        let web_up = Switch::on();
        let web = tcp_server(false, web_up.clone(), |_| http_response(200, "ok")).await;
        let udp_up = Switch::on();
        let u2 = udp_up.clone();
        let udp = udp_server(move |d| if u2.get() { vec![d.to_vec()] } else { vec![] }).await;
        let dns_up = Switch::on();
        let d2 = dns_up.clone();
        let dns = udp_server(move |q| {
            let mut r = q.to_vec();
            r[2] = 0x81;
            r[3] = if d2.get() { 0x80 } else { 0x82 }; // SERVFAIL when down
            vec![r]
        })
        .await;
        let smtp_up = Switch::on();
        let smtp = smtp_server(smtp_up.clone()).await;
        let c = "interval = 0.1, timeout = 0.5, retries = 0";
        let p = policy(&format!(
            r#"lvsd.service "s" {{ vip = "192.0.2.1:80", reals = {{
                {{ address = "{web}", check = lvsd.check.http {{ {c} }} }},
                {{ address = "{udp}", check = lvsd.check.udp {{ {c}, payload = "hi", expect = "hi" }} }},
                {{ address = "{dns}", check = lvsd.check.dns {{ {c}, name = "example.org" }} }},
                {{ address = "{smtp}", check = lvsd.check.smtp {{ {c} }} }},
            }} }}"#
        ));
        let (m, _rx) = manager(&p, CheckOptions::default());
        let switches = [web_up, udp_up, dns_up.clone(), smtp_up];
        for (i, sw) in switches.iter().enumerate() {
            sw.set(false);
            assert!(wait_until(LONG, || m.real_state(0, i) == RealState::Down).await, "real {i} did not go down");
            sw.set(true);
            assert!(wait_until(LONG, || m.real_state(0, i) == RealState::Up(1)).await, "real {i} did not come back");
        }
        dns_up.set(false);
        let r = m.run_now(0, 2).await;
        assert!(r[0].error.as_deref().unwrap().contains("SERVFAIL"), "{r:?}");
    });
}

#[test]
fn a_slow_check_never_holds_up_the_others() {
    local(async {
        let silent = silent_server().await;
        let good = tcp_server(true, Switch::on(), |_| Vec::new()).await;
        let p = policy(&format!(
            r#"lvsd.service "s" {{ vip = "192.0.2.1:80", reals = {{
                {{ address = "{silent}", check = lvsd.check.http {{ interval = 0.1, timeout = 2, retries = 0 }} }},
                {{ address = "{good}", check = lvsd.check.tcp {{ interval = 0.05, timeout = 1, retries = 0 }} }},
            }} }}"#
        ));
        let (m, mut rx) = manager(&p, CheckOptions::default());
        // While the first check hangs on its 2 s timeout, the second one runs many times.
        assert!(wait_until(LONG, || m.real_status(0, 1).unwrap().checks[0].history.len() >= 8).await);
        assert!(m.real_status(0, 0).unwrap().checks[0].history.is_empty(), "the slow check should still be waiting");
        let ev = next(&mut rx, LONG).await.expect("the silent server times out");
        assert_eq!((ev.real, ev.new_state), (0, RealState::Down));
        assert!(ev.result.error.as_deref().unwrap().contains("timed out"), "{ev:?}");
        assert_eq!(m.real_state(0, 1), RealState::Up(1));
    });
}

#[test]
fn alpha_starts_down_and_all_checks_must_pass() {
    local(async {
        let srv = tcp_server(false, Switch::on(), |_| http_response(503, "")).await;
        let p = policy(&format!(
            r#"lvsd.service "a" {{ vip = "192.0.2.1:80", alpha = true, reals = {{
                {{ address = "{srv}", check = lvsd.check.tcp {{ interval = 0.05, timeout = 1, retries = 0 }} }} }} }}
            lvsd.service "b" {{ vip = "192.0.2.2:80", alpha = true, reals = {{
                {{ address = "{srv}", check = {{ lvsd.check.tcp {{ interval = 0.05, timeout = 1, retries = 0 }},
                                                lvsd.check.http {{ interval = 0.05, timeout = 1, retries = 0 }} }} }} }} }}"#
        ));
        let (m, mut rx) = manager(&p, CheckOptions::default());
        assert_eq!(m.real_state(0, 0), RealState::Down);
        assert_eq!(m.real_state(1, 0), RealState::Down);
        let ev = next(&mut rx, LONG).await.expect("up after the first success");
        assert_eq!((ev.service, ev.new_state, ev.change), (0, RealState::Up(1), Some(RealChange::Up)));
        // b's real shares the TCP probe, but its HTTP check fails: it stays down
        assert_eq!(m.probe_count(), 2);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(m.real_state(1, 0), RealState::Down);
        assert!(rx.try_recv().is_err());
    });
}

#[test]
fn one_probe_serves_every_service_using_it() {
    local(async {
        let mut srv = Toggle::new().await;
        let p = policy(&format!(
            r#"local c = lvsd.check.tcp {{ interval = 0.05, timeout = 1, retries = 0 }}
            lvsd.service "a" {{ vip = "192.0.2.1:80", check = c, reals = {{ "{a}" }} }}
            lvsd.service "b" {{ vip = "192.0.2.2:80", check = lvsd.check.tcp {{ interval = 0.05, timeout = 1, retries = 0 }}, reals = {{ "{a}" }} }}"#,
            a = srv.addr
        ));
        let (m, mut rx) = manager(&p, CheckOptions::default());
        assert_eq!(m.probe_count(), 1);
        srv.down().await;
        let e1 = next(&mut rx, LONG).await.unwrap();
        let e2 = next(&mut rx, LONG).await.unwrap();
        let mut got = vec![(e1.service, e1.new_state), (e2.service, e2.new_state)];
        got.sort_by_key(|g| g.0);
        assert_eq!(got, vec![(0, RealState::Down), (1, RealState::Down)]);
    });
}

#[test]
fn lua_check_loop_or_error_fails_that_check_only() {
    local(async {
        let good = tcp_server(true, Switch::on(), |_| Vec::new()).await;
        let p = policy(&format!(
            r#"lvsd.service "s" {{ vip = "192.0.2.1:80", reals = {{
                {{ address = "127.0.0.1:1", check = lvsd.check.lua {{ interval = 0.05, timeout = 5, retries = 0, run = function() while true do end end }} }},
                {{ address = "127.0.0.1:2", check = lvsd.check.lua {{ interval = 0.05, timeout = 5, retries = 0, run = function() error("broken") end }} }},
                {{ address = "{good}", check = lvsd.check.tcp {{ interval = 0.05, timeout = 1, retries = 0 }} }},
            }} }}"#
        ));
        let opts = CheckOptions { instructions: 2_000_000, ..Default::default() };
        let (m, _rx) = manager(&p, opts);
        assert!(wait_until(LONG, || m.real_state(0, 0) == RealState::Down && m.real_state(0, 1) == RealState::Down).await);
        let st = m.real_status(0, 0).unwrap();
        assert!(st.checks[0].history.last().unwrap().error.as_deref().unwrap().contains("instruction limit"));
        let st = m.real_status(0, 1).unwrap();
        assert!(st.checks[0].history.last().unwrap().error.as_deref().unwrap().contains("broken"));
        let n = m.real_status(0, 2).unwrap().checks[0].history.len();
        assert!(wait_until(LONG, || m.real_status(0, 2).unwrap().checks[0].history.len() >= (n + 5).min(10)).await);
        assert_eq!(m.real_state(0, 2), RealState::Up(1));
    });
}

#[test]
fn dynamic_weights_from_a_lua_check_and_from_misc_dynamic() {
    local(async {
        let load = Rc::new(Cell::new(10u32));
        let l2 = load.clone();
        let agent = tcp_server(true, Switch::on(), move |_| format!("{}\n", l2.get()).into_bytes()).await;
        let p = policy(&format!(
            r#"lvsd.service "s" {{ vip = "192.0.2.1:80", reals = {{
                {{ address = "{agent}",
                   check = lvsd.check.lua {{ interval = 0.05, timeout = 1, retries = 0, run = function(rs)
                       local c = lvsd.net.tcp(rs.ip, rs.port)
                       return {{ ok = true, load = tonumber(c:read_line()) }}
                   end }},
                   weight = function(rs, h) return h.ok and 100 - h.load or 0 end }},
                {{ address = "127.0.0.1:9", check = lvsd.check.exec {{ interval = 0.05, timeout = 2, retries = 0, dynamic = true,
                                                                   command = {{ "/bin/sh", "-c", "exit 12" }} }} }},
            }} }}"#
        ));
        let (m, _rx) = manager(&p, CheckOptions::default());
        assert!(wait_until(LONG, || m.real_state(0, 0) == RealState::Up(90)).await, "{:?}", m.real_state(0, 0));
        load.set(60);
        assert!(wait_until(LONG, || m.real_state(0, 0) == RealState::Up(40)).await, "{:?}", m.real_state(0, 0));
        assert!(wait_until(LONG, || m.real_state(0, 1) == RealState::Up(10)).await, "{:?}", m.real_state(0, 1));
    });
}

#[test]
fn reload_keeps_history_of_unchanged_checks() {
    local(async {
        let a = tcp_server(true, Switch::on(), |_| Vec::new()).await;
        let b = tcp_server(true, Switch::on(), |_| Vec::new()).await;
        let check = "lvsd.check.tcp { interval = 0.05, timeout = 1, retries = 0 }";
        let p1 = policy(&format!(r#"lvsd.service "s" {{ vip = "192.0.2.1:80", check = {check}, reals = {{ "{a}", "{b}" }} }}"#));
        let (m, _rx) = manager(&p1, CheckOptions::default());
        assert!(wait_until(LONG, || m.real_status(0, 0).unwrap().checks[0].history.len() >= 3).await);
        // a new generation: same check on a, b dropped, a new real c (b's address with another check)
        let p2 = policy(&format!(
            r#"lvsd.service "t" {{ vip = "192.0.2.9:80", reals = {{ {{ address = "{b}", check = lvsd.check.tcp {{ interval = 0.05, timeout = 1, retries = 0, rise = 2 }} }} }} }}
            lvsd.service "s" {{ vip = "192.0.2.1:80", check = {check}, reals = {{ "{a}" }} }}"#
        ));
        m.update(&p2.model, p2.lua.clone());
        assert_eq!(m.probe_count(), 2);
        let kept = m.real_status(1, 0).unwrap().checks[0].history.len();
        assert!(kept >= 3, "history lost: {kept}");
        assert!(m.real_status(0, 0).unwrap().checks[0].history.len() <= 1);
        assert!(wait_until(LONG, || m.real_status(0, 0).unwrap().checks[0].history.len() >= 3).await);
        // run_now for the REPL: runs and records at once
        let before = m.real_status(1, 0).unwrap().checks[0].history.iter().last().unwrap().at;
        let r = m.run_now(1, 0).await;
        assert_eq!(r.len(), 1);
        assert!(r[0].ok);
        assert!(m.real_status(1, 0).unwrap().checks[0].history.iter().last().unwrap().at >= before);
        m.stop();
    });
}
