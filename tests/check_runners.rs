//! Each check kind against loopback servers of the test's own making.

mod check_support;

use check_support::*;
use lvsd::check::{CheckResult, Prober, RsInfo, RunCtx};
use lvsd::policy::Policy;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

async fn probe(p: &Policy) -> CheckResult {
    let spec = spec_of(p);
    let real = p.model.services[0].reals[0].addr;
    let target = SocketAddr::new(real.ip(), spec.common.port.unwrap_or(real.port()));
    let ctx = RunCtx {
        lua: Some(p.lua.clone()),
        rs: RsInfo { address: real, port: target.port(), service: "s".into(), weight: 1 },
        instructions: 1_000_000,
        connects: None,
    };
    Prober::new(&spec, target).run(&ctx).await
}

async fn check(check: &str, real: SocketAddr) -> CheckResult {
    probe(&one_real(check, real)).await
}

#[test]
fn tcp_connect_and_refused() {
    local(async {
        let up = tcp_server(true, Switch::on(), |_| Vec::new()).await;
        let r = check("lvsd.check.tcp { timeout = 2, retries = 0 }", up).await;
        assert!(r.ok, "{r:?}");
        let r = check("lvsd.check.tcp { timeout = 2, retries = 0 }", closed_port()).await;
        assert!(!r.ok);
        assert!(r.error.as_deref().unwrap().contains("refused"), "{r:?}");
    });
}

#[test]
fn tcp_send_expect() {
    local(async {
        let srv =
            tcp_server(false, Switch::on(), |req| if req == b"PING\r\n" { b"+PONG\r\n".to_vec() } else { b"-ERR\r\n".to_vec() }).await;
        let r = check(r#"lvsd.check.tcp { timeout = 2, retries = 0, send = "PING\r\n", expect = "+PONG" }"#, srv).await;
        assert!(r.ok, "{r:?}");
        let r = check(r#"lvsd.check.tcp { timeout = 2, retries = 0, send = "PONG\r\n", expect = "+PONG" }"#, srv).await;
        assert!(!r.ok);
        assert!(r.error.as_deref().unwrap().contains("does not contain"), "{r:?}");
    });
}

#[test]
fn retries_count_attempts() {
    local(async {
        let t = Instant::now();
        let r = check("lvsd.check.tcp { timeout = 1, retries = 2, retry_delay = 0.05 }", closed_port()).await;
        assert!(!r.ok);
        assert!(r.error.as_deref().unwrap().ends_with("(3 attempts)"), "{r:?}");
        assert!(t.elapsed() >= Duration::from_millis(100));
    });
}

#[test]
fn port_override() {
    local(async {
        let up = tcp_server(true, Switch::on(), |_| Vec::new()).await;
        let real: SocketAddr = format!("127.0.0.1:{}", closed_port().port()).parse().unwrap();
        let r = check(&format!("lvsd.check.tcp {{ timeout = 2, retries = 0, port = {} }}", up.port()), real).await;
        assert!(r.ok, "{r:?}");
    });
}

#[test]
fn http_status_digest_regex_and_host() {
    local(async {
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
        let s2 = seen.clone();
        let srv = tcp_server(false, Switch::on(), move |req| {
            let req = String::from_utf8_lossy(req).to_string();
            s2.borrow_mut().push(req.clone());
            let path = req.split(' ').nth(1).unwrap_or("").to_string();
            match path.as_str() {
                "/ok" => http_response(200, "hello\n"),
                "/busy" => http_response(503, "busy"),
                "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n3\r\nlo\n\r\n0\r\n\r\n".to_vec(),
                "/redirect" => http_response(302, ""),
                _ => http_response(404, "no"),
            }
        })
        .await;
        let c = |s: &str| format!("lvsd.check.http {{ timeout = 2, retries = 0, {s} }}");
        assert!(check(&c(r#"path = "/ok""#), srv).await.ok);
        let r = check(&c(r#"path = "/busy""#), srv).await;
        assert!(!r.ok);
        assert_eq!(r.status, Some(503));
        assert!(r.error.as_deref().unwrap().contains("status 503"), "{r:?}");
        assert!(check(&c(r#"path = "/busy", status = "500-599""#), srv).await.ok);
        assert!(check(&c(r#"path = "/redirect", status = { 200, "300-399" }"#), srv).await.ok);
        // genhash digest of "hello\n", also through a chunked body
        let d = "b1946ac92492d2347c6235b4d2611184";
        assert!(check(&c(&format!(r#"path = "/ok", digest = "{d}""#)), srv).await.ok);
        assert!(check(&c(&format!(r#"path = "/chunked", digest = "{d}""#)), srv).await.ok);
        let r = check(&c(r#"path = "/ok", digest = "00000000000000000000000000000000""#), srv).await;
        assert!(r.error.as_deref().unwrap().contains("digest b1946"), "{r:?}");
        assert!(check(&c(r#"path = "/ok", regex = "^hel+o""#), srv).await.ok);
        assert!(!check(&c(r#"path = "/ok", regex = "bye""#), srv).await.ok);
        // every URL must pass
        assert!(check(&c(r#"urls = { { path = "/ok" }, { path = "/busy", status = 503 } }"#), srv).await.ok);
        assert!(!check(&c(r#"urls = { { path = "/ok" }, { path = "/missing" } }"#), srv).await.ok);
        // virtual host and Connection: close
        seen.borrow_mut().clear();
        assert!(check(&c(r#"path = "/ok", virtualhost = "www.example.org""#), srv).await.ok);
        let req = seen.borrow()[0].clone();
        assert!(req.starts_with("GET /ok HTTP/1.1\r\n"), "{req}");
        assert!(req.contains(&format!("\r\nHost: www.example.org:{}\r\n", srv.port())), "{req}");
        assert!(req.contains("\r\nConnection: close\r\n"), "{req}");
        // the body reaches weight functions (not the history)
        let r = check(&c(r#"path = "/ok""#), srv).await;
        assert_eq!(r.body.as_deref(), Some("hello\n"));
        // a bad regex fails every run with a clear message
        let r = check(&c(r#"path = "/ok", regex = "(""#), srv).await;
        assert!(r.error.as_deref().unwrap().starts_with("bad regex"), "{r:?}");
    });
}

#[test]
fn http_timeout_on_a_silent_server() {
    local(async {
        let srv = silent_server().await;
        let t = Instant::now();
        let r = check("lvsd.check.http { timeout = 0.3, retries = 0 }", srv).await;
        assert!(!r.ok);
        assert!(r.error.as_deref().unwrap().contains("timed out"), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(3));
    });
}

mod tls {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    /// An HTTPS server with the self-signed fixture certificate; records the SNI it saw.
    pub async fn https_server(sni: Arc<Mutex<Vec<Option<String>>>>) -> SocketAddr {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/check/");
        let cert = CertificateDer::from_pem_file(format!("{dir}localhost.crt")).unwrap();
        let key = PrivateKeyDer::from_pem_file(format!("{dir}localhost.key")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::task::spawn_local(async move {
            while let Ok((s, _)) = l.accept().await {
                let (acceptor, sni) = (acceptor.clone(), sni.clone());
                tokio::task::spawn_local(async move {
                    let Ok(mut s) = acceptor.accept(s).await else { return };
                    sni.lock().unwrap().push(s.get_ref().1.server_name().map(str::to_string));
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(&http_response(200, "secure")).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        addr
    }

    #[test]
    fn https_with_sni_and_optional_verification() {
        local(async {
            let sni = Arc::new(Mutex::new(Vec::new()));
            let srv = https_server(sni.clone()).await;
            let r = check(r#"lvsd.check.https { timeout = 3, retries = 0, sni = "api.example.org", regex = "secure" }"#, srv).await;
            assert!(r.ok, "{r:?}");
            assert_eq!(sni.lock().unwrap().last().cloned(), Some(Some("api.example.org".to_string())));
            // the virtual host is the SNI when no sni is given
            let r = check(r#"lvsd.check.https { timeout = 3, retries = 0, virtualhost = "www.example.org" }"#, srv).await;
            assert!(r.ok, "{r:?}");
            assert_eq!(sni.lock().unwrap().last().cloned(), Some(Some("www.example.org".to_string())));
            // verification against the public roots rejects a self-signed certificate
            let r = check(r#"lvsd.check.https { timeout = 3, retries = 0, sni = "localhost", verify = true }"#, srv).await;
            assert!(!r.ok);
            assert!(r.error.as_deref().unwrap().contains("TLS handshake"), "{r:?}");
            // plain HTTP against a TLS port fails
            assert!(!check("lvsd.check.http { timeout = 1, retries = 0 }", srv).await.ok);
        });
    }
}

#[test]
fn udp_reply_expect_refused_and_silence() {
    local(async {
        let echo = udp_server(|d| vec![[b"re:", d].concat()]).await;
        assert!(check(r#"lvsd.check.udp { timeout = 1, retries = 0, payload = "ping", expect = "re:ping" }"#, echo).await.ok);
        let r = check(r#"lvsd.check.udp { timeout = 1, retries = 0, payload = "ping", expect = "pong" }"#, echo).await;
        assert!(r.error.as_deref().unwrap().contains("does not contain"), "{r:?}");
        // nothing listening: ICMP port unreachable
        let closed = udp_closed_port().await;
        let r = check(r#"lvsd.check.udp { timeout = 1, retries = 0, payload = "ping" }"#, closed).await;
        assert!(!r.ok, "{r:?}");
        // a silent server: without expect, silence is success (keepalived); with it, failure
        let quiet = udp_server(|_| vec![]).await;
        assert!(check(r#"lvsd.check.udp { timeout = 0.2, retries = 0, payload = "x" }"#, quiet).await.ok);
        let r = check(r#"lvsd.check.udp { timeout = 0.2, retries = 0, payload = "x", expect = "y" }"#, quiet).await;
        assert!(r.error.as_deref().unwrap().contains("no reply"), "{r:?}");
    });
}

async fn udp_closed_port() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

/// A DNS server answering with `rcode`; with `stray`, a reply with another id comes first.
async fn dns_server(rcode: u8, stray: bool) -> SocketAddr {
    udp_server(move |q| {
        let mut r = q.to_vec();
        r[2] = 0x81;
        r[3] = 0x80 | rcode;
        let mut other = r.clone();
        other[0] ^= 0xff;
        if stray { vec![other, r] } else { vec![r] }
    })
    .await
}

#[test]
fn dns_rcode_and_id() {
    local(async {
        let ok = dns_server(0, false).await;
        assert!(check(r#"lvsd.check.dns { timeout = 1, retries = 0, name = "example.org", type = "A" }"#, ok).await.ok);
        assert!(check(r#"lvsd.check.dns { timeout = 1, retries = 0 }"#, ok).await.ok);
        let nx = dns_server(3, false).await;
        let r = check(r#"lvsd.check.dns { timeout = 1, retries = 0, name = "nope.example.org" }"#, nx).await;
        assert!(r.error.as_deref().unwrap().contains("NXDOMAIN"), "{r:?}");
        // a reply with another id is ignored, ours is taken
        let stray = dns_server(0, true).await;
        assert!(check(r#"lvsd.check.dns { timeout = 1, retries = 0 }"#, stray).await.ok);
        let r = check(r#"lvsd.check.dns { timeout = 1, retries = 0, type = "BOGUS" }"#, ok).await;
        assert!(r.error.as_deref().unwrap().contains("unknown DNS type"), "{r:?}");
        let quiet = udp_server(|_| vec![]).await;
        assert!(!check(r#"lvsd.check.dns { timeout = 0.2, retries = 0 }"#, quiet).await.ok);
    });
}

#[test]
fn smtp_banner_and_helo() {
    local(async {
        let good = smtp_server(Switch::on()).await;
        assert!(check(r#"lvsd.check.smtp { timeout = 2, retries = 0, helo = "lvs.example.org" }"#, good).await.ok);
        let busy = smtp_server(Switch::default()).await;
        let r = check(r#"lvsd.check.smtp { timeout = 2, retries = 0 }"#, busy).await;
        assert!(r.error.as_deref().unwrap().contains("banner: 554"), "{r:?}");
    });
}

#[test]
fn exec_exit_codes_and_misc_dynamic() {
    local(async {
        let real: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let e =
            |argv: &str, dynamic: bool| format!("lvsd.check.exec {{ timeout = 5, retries = 0, command = {argv}, dynamic = {dynamic} }}");
        assert!(check(&e(r#"{ "/bin/true" }"#, false), real).await.ok);
        let r = check(&e(r#"{ "/bin/false" }"#, false), real).await;
        assert!(!r.ok && r.error.as_deref().unwrap().contains("exit status: 1"), "{r:?}");
        assert!(!check(&e(r#"{ "/bin/sh", "-c", "exit 7" }"#, false), real).await.ok);
        let r = check(&e(r#"{ "/bin/sh", "-c", "exit 7" }"#, true), real).await;
        assert!(r.ok && r.weight == Some(5), "{r:?}");
        let r = check(&e(r#"{ "/bin/sh", "-c", "exit 1" }"#, true), real).await;
        assert!(!r.ok && r.weight.is_none(), "{r:?}");
        let r = check(&e(r#"{ "/bin/true" }"#, true), real).await;
        assert!(r.ok && r.weight.is_none(), "{r:?}");
        // arguments are passed as they are, never through a shell
        assert!(check(&e(r#"{ "/bin/sh", "-c", "test \"$0\" = 'a b;c'", "a b;c" }"#, false), real).await.ok);
        let r = check(&e(r#"{ "/nonexistent/program" }"#, false), real).await;
        assert!(r.error.as_deref().unwrap().starts_with("cannot run"), "{r:?}");
    });
}

#[test]
fn exec_timeout_kills_the_process_group() {
    local(async {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // The shell starts a grandchild; both must die at the timeout.
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let p = one_real(
            &format!(r#"lvsd.check.exec {{ timeout = 0.5, retries = 0, command = {{ "/bin/sh", "-c", "{script}" }} }}"#),
            "127.0.0.1:80".parse().unwrap(),
        );
        let t = Instant::now();
        let r = probe(&p).await;
        assert!(!r.ok);
        assert!(r.error.as_deref().unwrap().contains("timed out"), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(5));
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        let gone = wait_until(Duration::from_secs(3), || {
            // a killed, unreaped grandchild is a zombie until init reaps it
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.contains(") Z")).unwrap_or(true)
        })
        .await;
        assert!(gone, "grandchild {pid} still running");
    });
}

#[test]
fn bind_sets_the_source_address_and_ipv6_works() {
    local(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let peers = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let p2 = peers.clone();
        tokio::task::spawn_local(async move {
            while let Ok((_, peer)) = l.accept().await {
                p2.borrow_mut().push(peer.ip());
            }
        });
        assert!(check(r#"lvsd.check.tcp { timeout = 2, retries = 0, bind = "127.0.0.2" }"#, addr).await.ok);
        // the check is done once connected; the server may accept a moment later
        assert!(wait_until(Duration::from_secs(5), || !peers.borrow().is_empty()).await);
        assert_eq!(peers.borrow().last().copied(), Some("127.0.0.2".parse().unwrap()));

        let Ok(l6) = tokio::net::TcpListener::bind("[::1]:0").await else {
            eprintln!("no IPv6 loopback here: IPv6 part skipped");
            return;
        };
        let a6 = l6.local_addr().unwrap();
        tokio::task::spawn_local(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = l6.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let ok = req.contains(&format!("\r\nHost: [::1]:{}\r\n", a6.port()));
                let _ = s.write_all(&http_response(if ok { 200 } else { 400 }, "")).await;
            }
        });
        let p = policy(&format!(
            r#"lvsd.service "s" {{ vip = "[2001:db8::1]:80", check = lvsd.check.http {{ timeout = 2, retries = 0 }}, reals = {{ "{a6}" }} }}"#
        ));
        let r = probe(&p).await;
        assert!(r.ok, "{r:?}");
    });
}
