//! Check targets on 127.0.0.1 that misbehave: endless bodies and header lines, absurd status
//! lines and chunk sizes, silence, a close or a reset in the middle of a response, hostile
//! SMTP banners and DNS replies. For each: the real goes down on the first run that meets it
//! (within the check's timeout), the probe keeps probing (the target sees new connections),
//! the real stays down, and what was read stays bounded (the error names the limit that cut
//! the response, and the target could not push more than socket buffers' worth past it).
//! The last test runs a director against such targets and reads its peak memory.

mod check_support;
mod common;

use check_support::{local, policy};
use lvsd::check::{CheckEvent, CheckManager, CheckOptions, RealChange};
use lvsd::desired::RealState;
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// The check timeout every case uses (seconds).
const TIMEOUT: f64 = 1.0;
/// What a target may write before the prober's close stops it: the 1 MiB body limit plus
/// loopback socket buffers (a few MB). A reader without a bound takes gigabytes in a second.
const WRITE_BOUND: usize = 32 << 20;
/// A target that writes forever stops here, so that no test can run away.
const WRITE_CAP: usize = 256 << 20;

/// What a hostile target does on each connection, after reading the request (HTTP) or at
/// once (`greet`, SMTP).
#[derive(Clone)]
enum Act {
    /// Write this, then close.
    Write(Vec<u8>),
    /// Write the first, then the second over and over until the prober closes.
    Endless(Vec<u8>, Vec<u8>),
    /// Never answer; keep the connection open.
    Silent,
    /// Write this, then close with a reset (SO_LINGER 0).
    Reset(Vec<u8>),
}

#[derive(Default)]
struct Seen {
    connections: Cell<usize>,
    /// The most bytes written on one connection.
    most_written: Cell<usize>,
}

async fn serve_one(mut s: TcpStream, act: Act, greet: bool, seen: Rc<Seen>) {
    if !greet {
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    }
    let mut written = 0;
    match act {
        Act::Write(b) => {
            if s.write_all(&b).await.is_ok() {
                written = b.len();
            }
            let _ = s.shutdown().await;
        }
        Act::Endless(first, more) => {
            if s.write_all(&first).await.is_ok() {
                written = first.len();
                while written < WRITE_CAP && s.write_all(&more).await.is_ok() {
                    written += more.len();
                }
            }
        }
        Act::Silent => {
            // Held until the prober gives up and closes.
            let _ = s.read(&mut [0u8; 1]).await;
        }
        Act::Reset(b) => {
            let _ = s.write_all(&b).await;
            written = b.len();
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        }
    }
    seen.most_written.set(seen.most_written.get().max(written));
}

async fn hostile(act: Act, greet: bool) -> (SocketAddr, Rc<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Rc::new(Seen::default());
    let s2 = seen.clone();
    tokio::task::spawn_local(async move {
        while let Ok((s, _)) = l.accept().await {
            s2.connections.set(s2.connections.get() + 1);
            tokio::task::spawn_local(serve_one(s, act.clone(), greet, s2.clone()));
        }
    });
    (addr, seen)
}

/// A UDP target answering each datagram with `reply(query)` (nothing when empty).
async fn hostile_udp(reply: impl Fn(&[u8]) -> Vec<u8> + 'static) -> (SocketAddr, Rc<Seen>) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    let seen = Rc::new(Seen::default());
    let s2 = seen.clone();
    tokio::task::spawn_local(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            s2.connections.set(s2.connections.get() + 1);
            let r = reply(&buf[..n]);
            if !r.is_empty() {
                let _ = s.send_to(&r, from).await;
            }
        }
    });
    (addr, seen)
}

/// One case: a check (Lua text) against a target, and what the reason for its real going
/// down must say.
struct Case {
    name: &'static str,
    check: String,
    target: SocketAddr,
    seen: Rc<Seen>,
    reason: &'static str,
}

fn http_check() -> String {
    format!("lvsd.check.http {{ interval = 0.2, timeout = {TIMEOUT}, retries = 0, fall = 1, rise = 1 }}")
}

async fn http_case(name: &'static str, act: Act, reason: &'static str) -> Case {
    let (target, seen) = hostile(act, false).await;
    Case { name, check: http_check(), target, seen, reason }
}

/// Every case's real goes down with its reason, within its timeout; each target is probed
/// again afterwards; no real comes back; no target could write much past the limits.
async fn all_go_down_and_are_probed_again(cases: Vec<Case>) {
    let services: String = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "lvsd.service \"{}\" {{ vip = \"192.0.2.{}:80\", check = {}, reals = {{ \"{}\" }} }}\n",
                c.name,
                i + 1,
                c.check,
                c.target
            )
        })
        .collect();
    let p = policy(&services);
    let (tx, mut rx) = mpsc::unbounded_channel::<CheckEvent>();
    let m = CheckManager::with_options(&p.model, p.lua.clone(), tx, CheckOptions::default());
    for (i, c) in cases.iter().enumerate() {
        assert_eq!(m.real_state(i, 0), RealState::Up(1), "{} starts up", c.name);
    }
    m.start();

    let mut down: Vec<Option<CheckEvent>> = vec![None; cases.len()];
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    while down.iter().any(Option::is_none) {
        let got = tokio::time::timeout_at(end, rx.recv()).await.ok().flatten();
        let Some(ev) = got else {
            let missing: Vec<_> = cases.iter().zip(&down).filter(|(_, d)| d.is_none()).map(|(c, _)| c.name).collect();
            panic!("no down event for {missing:?}");
        };
        let si = ev.service;
        if matches!(ev.change, Some(RealChange::Down { .. })) && down[si].is_none() {
            down[si] = Some(ev);
        }
    }
    for (c, ev) in cases.iter().zip(&down) {
        let ev = ev.as_ref().unwrap();
        let Some(RealChange::Down { reason }) = &ev.change else { unreachable!() };
        assert!(reason.contains(c.reason), "{}: reason {reason:?} does not say {:?}", c.name, c.reason);
        // fall = 1: the first run that met the misbehaviour; it ended within the timeout.
        assert!(
            ev.result.latency <= Duration::from_secs_f64(TIMEOUT) + Duration::from_millis(500),
            "{}: took {:?}",
            c.name,
            ev.result.latency
        );
    }

    // The probes go on: every target sees at least two more connections (or datagrams).
    let before: Vec<usize> = cases.iter().map(|c| c.seen.connections.get()).collect();
    let probed_again =
        check_support::wait_until(Duration::from_secs(20), || cases.iter().zip(&before).all(|(c, &b)| c.seen.connections.get() >= b + 2))
            .await;
    let counts: Vec<_> = cases.iter().zip(&before).map(|(c, b)| (c.name, *b, c.seen.connections.get())).collect();
    assert!(probed_again, "not probed again (name, before, now): {counts:?}");
    for (i, c) in cases.iter().enumerate() {
        assert_eq!(m.real_state(i, 0), RealState::Down, "{} came back up", c.name);
        let most = c.seen.most_written.get();
        eprintln!("{}: {} probes, at most {most} bytes written on one", c.name, c.seen.connections.get());
        assert!(most < WRITE_BOUND, "{}: the target wrote {most} bytes on one connection", c.name);
    }
    // No event ever said up again.
    while let Ok(ev) = rx.try_recv() {
        assert_ne!(ev.change, Some(RealChange::Up), "{} came back up", cases[ev.service].name);
    }
    m.stop();
}

fn ok_head(extra: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\n{extra}\r\n").into_bytes()
}

#[test]
fn endless_and_oversized_bodies() {
    local(async {
        let x = vec![b'x'; 64 << 10];
        let chunk = [b"10000\r\n".as_slice(), &x, b"\r\n"].concat();
        all_go_down_and_are_probed_again(vec![
            http_case("until-close", Act::Endless(ok_head(""), x.clone()), "body larger than 1048576").await,
            http_case("huge-length", Act::Endless(ok_head("Content-Length: 99999999999\r\n"), x.clone()), "body larger than 1048576").await,
            http_case("max-length", Act::Write(ok_head("Content-Length: 18446744073709551615\r\n")), "body larger than 1048576").await,
            http_case("endless-chunks", Act::Endless(ok_head("Transfer-Encoding: chunked\r\n"), chunk), "body larger than 1048576").await,
            http_case("no-length-2mb", Act::Write([ok_head(""), vec![b'y'; 2 << 20]].concat()), "body larger than 1048576").await,
        ])
        .await;
    });
}

#[test]
fn absurd_heads() {
    local(async {
        let mb = vec![b'a'; 1 << 20];
        let many: Vec<u8> = b"X-Many: header\r\n".to_vec();
        all_go_down_and_are_probed_again(vec![
            http_case(
                "1mb-header-line",
                Act::Write([b"HTTP/1.1 200 OK\r\nX-Long: ".as_slice(), &mb, b"\r\n\r\n"].concat()),
                "header line is longer than 8192",
            )
            .await,
            http_case(
                "endless-header-line",
                Act::Endless(b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec(), vec![b'a'; 4096]),
                "header line is longer than 8192",
            )
            .await,
            http_case(
                "endless-headers",
                Act::Endless(b"HTTP/1.1 200 OK\r\n".to_vec(), many.repeat(256)),
                "header section is longer than 65536",
            )
            .await,
            http_case(
                "200-headers",
                Act::Write([b"HTTP/1.1 200 OK\r\n".as_slice(), &many.repeat(200), b"\r\n"].concat()),
                "more than 100 header fields",
            )
            .await,
            http_case(
                "1mb-status-line",
                Act::Write([b"HTTP/1.1 200 ".as_slice(), &mb, b"\r\n\r\n"].concat()),
                "header line is longer than 8192",
            )
            .await,
            http_case("huge-status", Act::Write(b"HTTP/1.1 99999999999 OK\r\nContent-Length: 0\r\n\r\n".to_vec()), "malformed status line")
                .await,
            http_case("status-000", Act::Write(b"HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n".to_vec()), "status code 0").await,
            http_case("http-9", Act::Write(b"HTTP/9.9 200 OK\r\n\r\n".to_vec()), "malformed status line").await,
            http_case("binary", Act::Endless(vec![0xff, 0x00, 0x13], vec![0x00; 4096]), "not an HTTP/1.x response").await,
            http_case("ssh-banner", Act::Write(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()), "not an HTTP/1.x response").await,
            http_case(
                "endless-interim",
                Act::Endless(Vec::new(), b"HTTP/1.1 100 Continue\r\n\r\n".repeat(100)),
                "header section is longer than 65536",
            )
            .await,
            http_case("bad-length", Act::Write(ok_head("Content-Length: -1\r\n")), "bad Content-Length").await,
        ])
        .await;
    });
}

#[test]
fn absurd_chunk_sizes() {
    local(async {
        let te = |size: &str| {
            Act::Write([ok_head("Transfer-Encoding: chunked\r\n"), format!("{size}\r\nabc\r\n0\r\n\r\n").into_bytes()].concat())
        };
        all_go_down_and_are_probed_again(vec![
            http_case("ffffffffffffffff", te("ffffffffffffffff"), "body larger than 1048576").await,
            http_case("fffffffffffffffe", te("fffffffffffffffe"), "body larger than 1048576").await,
            http_case("7fffffffffffffff", te("7fffffffffffffff"), "body larger than 1048576").await,
            http_case("17-digits", te("10000000000000000"), "bad chunk size").await,
            http_case("minus-one", te("-1"), "bad chunk size").await,
            http_case("0x-prefix", te("0x10"), "bad chunk size").await,
            http_case("empty-size", te(""), "bad chunk size").await,
            http_case(
                "endless-extension",
                Act::Endless(
                    ok_head("Transfer-Encoding: chunked\r\n"),
                    b"5;".iter().copied().chain(std::iter::repeat_n(b'e', 4094)).collect(),
                ),
                "chunk-size line is longer than 8192",
            )
            .await,
            http_case("no-crlf-after-data", te("2"), "chunk data not followed by CRLF").await,
        ])
        .await;
    });
}

#[test]
fn silence_close_and_reset() {
    local(async {
        all_go_down_and_are_probed_again(vec![
            http_case("silent", Act::Silent, "timed out after 1s").await,
            http_case(
                "close-mid-body",
                Act::Write(ok_head("Content-Length: 100\r\n").into_iter().chain(*b"half").collect()),
                "connection closed before the response was complete",
            )
            .await,
            http_case(
                "close-mid-head",
                Act::Write(b"HTTP/1.1 200 OK\r\nServer: x".to_vec()),
                "connection closed before the response was complete",
            )
            .await,
            http_case(
                "close-mid-chunk",
                Act::Write([ok_head("Transfer-Encoding: chunked\r\n"), b"10\r\nabc".to_vec()].concat()),
                "connection closed before the response was complete",
            )
            .await,
            http_case("close-at-once", Act::Write(Vec::new()), "connection closed before the response was complete").await,
            http_case("reset-at-once", Act::Reset(Vec::new()), "reset by peer").await,
            http_case(
                "reset-mid-body",
                Act::Reset(ok_head("Content-Length: 100\r\n").into_iter().chain(*b"half").collect()),
                "reset by peer",
            )
            .await,
        ])
        .await;
    });
}

/// `lvsd.net.http` in a Lua check shares the parser and its limits.
#[test]
fn lua_http_shares_the_limits() {
    local(async {
        let lua = format!(
            "lvsd.check.lua {{ interval = 0.2, timeout = {TIMEOUT}, retries = 0, fall = 1, rise = 1, run = function(rs) local r = lvsd.net.http {{ ip = rs.ip, port = rs.port }} return r.status == 200 end }}"
        );
        let x = vec![b'x'; 64 << 10];
        let (a, sa) = hostile(Act::Endless(ok_head(""), x), false).await;
        let (b, sb) =
            hostile(Act::Write([ok_head("Transfer-Encoding: chunked\r\n"), b"ffffffffffffffff\r\nabc".to_vec()].concat()), false).await;
        let (c, sc) = hostile(Act::Write([b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &vec![b'a'; 1 << 20], b"\r\n\r\n"].concat()), false).await;
        all_go_down_and_are_probed_again(vec![
            Case { name: "lua-endless-body", check: lua.clone(), target: a, seen: sa, reason: "body larger than 1048576" },
            Case { name: "lua-chunk-size", check: lua.clone(), target: b, seen: sb, reason: "body larger than 1048576" },
            Case { name: "lua-1mb-header", check: lua, target: c, seen: sc, reason: "header line is longer than 8192" },
        ])
        .await;
    });
}

#[test]
fn hostile_smtp_servers() {
    local(async {
        let smtp = format!(
            "lvsd.check.smtp {{ interval = 0.2, timeout = {TIMEOUT}, retries = 0, fall = 1, rise = 1, helo = \"lvs.example.org\" }}"
        );
        let case = |name, act, reason| {
            let check = smtp.clone();
            async move {
                let (target, seen) = hostile(act, true).await;
                Case { name, check, target, seen, reason }
            }
        };
        let mb = vec![b'x'; 1 << 20];
        all_go_down_and_are_probed_again(vec![
            case("1mb-banner", Act::Write([b"220 ".as_slice(), &mb, b"\r\n"].concat()), "reply line longer than 1024").await,
            case("endless-banner", Act::Endless(b"220 ".to_vec(), vec![b'x'; 4096]), "reply line longer than 1024").await,
            case("endless-multiline", Act::Endless(Vec::new(), b"220-more\r\n".repeat(100)), "reply of more than 64 lines").await,
            case("garbage", Act::Write(b"HTTP/1.1 200 OK\r\n".to_vec()), "bad SMTP reply").await,
            case("mixed-codes", Act::Write(b"220-a\r\n250 b\r\n".to_vec()), "different codes").await,
            case("silent", Act::Silent, "timed out after 1s").await,
            case("reset", Act::Reset(b"220-".to_vec()), "reset by peer").await,
        ])
        .await;
    });
}

#[test]
fn hostile_dns_servers() {
    local(async {
        let dns = format!(
            "lvsd.check.dns {{ interval = 0.2, timeout = {TIMEOUT}, retries = 0, fall = 1, rise = 1, name = \"www.example.org\", type = \"A\" }}"
        );
        // A reply to `q`: our id and question, flags `flags`, then `tail`.
        fn reply(q: &[u8], flags: u16, tail: &[u8]) -> Vec<u8> {
            let mut r = q.to_vec();
            r[2..4].copy_from_slice(&flags.to_be_bytes());
            r.extend_from_slice(tail);
            r
        }
        let mut cases = Vec::new();
        type Answer = Box<dyn Fn(&[u8]) -> Vec<u8>>;
        let servers: Vec<(&'static str, Answer, &'static str)> = vec![
            ("short", Box::new(|q: &[u8]| q[..5].to_vec()), "reply too short"),
            (
                "pointer-question",
                Box::new(|q: &[u8]| {
                    let mut r = reply(q, 0x8180, b"");
                    r[12] = 0xc0;
                    r[13] = 12;
                    r
                }),
                "malformed question name",
            ),
            ("cut-question", Box::new(|q: &[u8]| reply(q, 0x8180, b"")[..16].to_vec()), "malformed question name"),
            (
                "other-question",
                Box::new(|q: &[u8]| {
                    let mut r = reply(q, 0x8180, b"");
                    r[14] ^= 0x20 ^ 0x01;
                    r
                }),
                "does not echo the question",
            ),
            ("not-a-response", Box::new(|q: &[u8]| reply(q, 0x0100, b"")), "QR bit clear"),
            ("servfail", Box::new(|q: &[u8]| reply(q, 0x8182, b"")), "SERVFAIL"),
            (
                "stray-ids-only",
                Box::new(|q: &[u8]| {
                    let mut r = reply(q, 0x8180, b"");
                    r[0] ^= 0xff;
                    r
                }),
                "timed out after 1s",
            ),
            ("silent", Box::new(|_: &[u8]| Vec::new()), "timed out after 1s"),
            ("64k-garbage", Box::new(|q: &[u8]| reply(q, 0x8180, &vec![0xc0; 60_000])), "up"),
        ];
        for (name, f, reason) in servers {
            let (target, seen) = hostile_udp(f).await;
            cases.push(Case { name, check: dns.clone(), target, seen, reason });
        }
        // A well-formed reply with 60 kB of garbage after the question is a good reply: the
        // check reads no further. Check it apart: it must stay up.
        let good = cases.pop().unwrap();
        all_go_down_and_are_probed_again(cases).await;
        let p =
            policy(&format!("lvsd.service \"s\" {{ vip = \"192.0.2.1:53\", check = {}, reals = {{ \"{}\" }} }}", good.check, good.target));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let m = CheckManager::new(&p.model, p.lua.clone(), tx);
        m.start();
        assert!(check_support::wait_until(Duration::from_secs(10), || good.seen.connections.get() >= 3).await);
        assert!(rx.try_recv().is_err(), "the real with a long but valid reply changed state");
        assert_eq!(m.real_state(0, 0), RealState::Up(1));
    });
}

/// A hostile target served from a thread of its own (the director is another process).
fn thread_target(act: Act) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            s2.fetch_add(1, Ordering::Relaxed);
            let act = act.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                match act {
                    Act::Write(b) => {
                        let _ = s.write_all(&b);
                    }
                    Act::Endless(first, more) => {
                        let mut n = 0;
                        let _ = s.write_all(&first);
                        while n < WRITE_CAP && s.write_all(&more).is_ok() {
                            n += more.len();
                        }
                    }
                    Act::Silent => {
                        let _ = s.read(&mut buf);
                    }
                    Act::Reset(b) => {
                        let _ = s.write_all(&b);
                        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                    }
                }
            });
        }
    });
    (port, seen)
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The director against hostile targets: each real leaves the table with its reason, the
/// probes keep running, the director keeps answering, nothing panics, and its peak memory
/// stays small although the targets offer gigabytes.
#[test]
fn a_director_against_hostile_targets() {
    use std::sync::atomic::Ordering;
    let x = vec![b'x'; 64 << 10];
    let targets = [
        ("endless-body", thread_target(Act::Endless(ok_head(""), x.clone())), "body larger than"),
        (
            "huge-chunk",
            thread_target(Act::Write([ok_head("Transfer-Encoding: chunked\r\n"), b"ffffffffffffffff\r\nabc".to_vec()].concat())),
            "body larger than",
        ),
        ("endless-header", thread_target(Act::Endless(b"HTTP/1.1 200 OK\r\nX: ".to_vec(), vec![b'a'; 64 << 10])), "header line is longer"),
        ("silent", thread_target(Act::Silent), "timed out"),
        ("reset", thread_target(Act::Reset(b"HTTP/1.1 200 OK\r\n".to_vec())), "reset by peer"),
    ];
    let reals: Vec<String> = targets.iter().map(|(_, (port, _), _)| format!("\"127.0.0.1:{port}\"")).collect();
    let src = format!(
        "lvsd.service \"web\" {{ vip = \"192.0.2.10:80\", check = lvsd.check.http {{ interval = 0.2, timeout = 1, retries = 0, fall = 1, rise = 1 }}, reals = {{ {} }} }}\n",
        reals.join(", ")
    );
    let d = common::Daemon::start(&src, "lvs01", &[]);
    let in_table = |d: &common::Daemon, port: u16| {
        d.status()["services"][0]["reals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["address"] == format!("127.0.0.1:{port}") && r["in_table"] == true)
    };
    for (name, (port, _), reason) in &targets {
        d.wait_for(|d| !in_table(d, *port), &format!("{name} to leave the table"));
        let events = d.events("health");
        assert!(events.iter().any(|e| e.contains(&format!("127.0.0.1:{port}: down")) && e.contains(reason)), "{name}: {events:?}");
    }
    // Each target probed again several times after it went down; still out of the table.
    let before: Vec<usize> = targets.iter().map(|(_, (_, seen), _)| seen.load(Ordering::Relaxed)).collect();
    d.wait_for(
        |_| targets.iter().zip(&before).all(|((_, (_, seen), _), b)| seen.load(Ordering::Relaxed) >= b + 5),
        "five more probes of every target",
    );
    for (name, (port, _), _) in &targets {
        assert!(!in_table(&d, *port), "{name} came back");
    }
    let pid = d.child.id();
    let (hwm, rss) = (vm_kib(pid, "VmHWM:"), vm_kib(pid, "VmRSS:"));
    eprintln!("director against {} hostile targets: peak RSS {} KiB, RSS now {} KiB", targets.len(), hwm, rss);
    assert!(hwm < 64 << 10, "peak RSS {hwm} KiB");
    let log = d.log();
    assert!(!log.contains("panicked"), "{log}");
}
