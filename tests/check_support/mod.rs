//! Helpers for the check tests: a LocalSet runtime, policies, and loopback servers of the
//! tests' own making. Every server task ends with the test's runtime.
#![allow(dead_code)]

use lvsd::model::CheckSpec;
use lvsd::policy::{LoadOptions, Policy, load_source};
use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// Run `f` on a current-thread runtime inside a LocalSet, as the director does.
pub fn local<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let set = tokio::task::LocalSet::new();
    set.block_on(&rt, f)
}

pub fn policy(src: &str) -> Policy {
    let opts = LoadOptions { node: "test".into(), limits: Default::default() };
    let p = load_source(src, Path::new("test.lua"), Path::new("."), &opts).unwrap_or_else(|e| panic!("{e}"));
    lvsd::check::install_net(&p.lua).unwrap();
    p
}

/// A policy with one service whose only real is `real`, checked by `check` (Lua text).
pub fn one_real(check: &str, real: SocketAddr) -> Policy {
    policy(&format!(r#"lvsd.service "s" {{ vip = "192.0.2.1:80", check = {check}, reals = {{ "{real}" }} }}"#))
}

pub fn spec_of(p: &Policy) -> CheckSpec {
    CheckSpec::clone(&p.model.services[0].reals[0].checks[0])
}

/// A port on 127.0.0.1 with nothing listening (bound, then closed).
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A switch shared between a test and its server.
#[derive(Clone, Default)]
pub struct Switch(Rc<Cell<bool>>);
impl Switch {
    pub fn on() -> Switch {
        Switch(Rc::new(Cell::new(true)))
    }
    pub fn set(&self, v: bool) {
        self.0.set(v)
    }
    pub fn get(&self) -> bool {
        self.0.get()
    }
}

/// A TCP server: each connection gets `reply(request bytes)`, written after the first read
/// (or at once when `greet`), then closed. When the switch is off it closes at once.
pub async fn tcp_server(greet: bool, up: Switch, reply: impl Fn(&[u8]) -> Vec<u8> + 'static) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let reply = Rc::new(reply);
    tokio::task::spawn_local(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            if !up.get() {
                continue; // dropped: closed at once
            }
            let reply = reply.clone();
            tokio::task::spawn_local(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                if !greet {
                    // Read the request: until a blank line (HTTP) or the first chunk.
                    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..n]);
                        if !got.starts_with(b"GET") && !got.starts_with(b"HEAD") || got.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
                let _ = s.write_all(&reply(&got)).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// A listener that accepts and never answers.
pub async fn silent_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::task::spawn_local(async move {
        let mut keep = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            keep.push(s);
        }
    });
    addr
}

/// A UDP server answering each datagram with the datagrams `reply(datagram)` gives.
pub async fn udp_server(reply: impl Fn(&[u8]) -> Vec<Vec<u8>> + 'static) -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    tokio::task::spawn_local(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            for r in reply(&buf[..n]) {
                let _ = s.send_to(&r, from).await;
            }
        }
    });
    addr
}

pub fn http_response(status: u16, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes()
}

/// Wait (bounded) until `f` is true, polling every 20 ms.
pub async fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// An SMTP server: a multi-line 220 banner and 250 to HELO while the switch is on, a 554
/// banner while it is off.
pub async fn smtp_server(up: Switch) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::task::spawn_local(async move {
        use tokio::io::{AsyncBufReadExt, BufReader};
        while let Ok((s, _)) = l.accept().await {
            let banner: &[u8] = if up.get() { b"220-mail.example.org ESMTP\r\n220 ready\r\n" } else { b"554 no service\r\n" };
            tokio::task::spawn_local(async move {
                let mut s = BufReader::new(s);
                let _ = s.get_mut().write_all(banner).await;
                let mut line = String::new();
                while let Ok(n) = s.read_line(&mut line).await {
                    if n == 0 {
                        break;
                    }
                    let reply: &[u8] = if line.starts_with("HELO ") {
                        b"250 hello\r\n"
                    } else if line.starts_with("QUIT") {
                        b"221 bye\r\n"
                    } else {
                        b"500 what\r\n"
                    };
                    let _ = s.get_mut().write_all(reply).await;
                    line.clear();
                }
            });
        }
    });
    addr
}
