//! Running one check against one target: a spec prepared once (regexes compiled, TLS
//! configured), then `run` per interval with timeout, retries and retry delay.

use super::connects::Connects;
use super::health::CheckResult;
use super::lua::{LuaCheckError, RsInfo};
use super::{dns, http, smtp, weight};
use crate::model::{CheckKind, CheckSpec, HookRef};
use regex::bytes::Regex;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// Bytes a `tcp` check reads while looking for `expect`.
const MAX_EXPECT_READ: usize = 64 << 10;
/// Body bytes handed to weight functions as `h.body`.
const BODY_FOR_WEIGHT: usize = 4096;

/// Connect from `bind` (if any) to `target`, with Nagle off for request/reply exchanges.
pub async fn connect(target: SocketAddr, bind: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let s = connect_plain(target, bind).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Connect from `bind` (if any) to `target`.
async fn connect_plain(target: SocketAddr, bind: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let sock = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(b) = bind {
        sock.bind(SocketAddr::new(b, 0))?;
    }
    sock.connect(target).await
}

/// A UDP socket from `bind` (or any address of the target's family) connected to `target`.
pub async fn udp_socket(target: SocketAddr, bind: Option<IpAddr>) -> std::io::Result<UdpSocket> {
    let local = match (bind, target) {
        (Some(b), _) => SocketAddr::new(b, 0),
        (None, SocketAddr::V4(_)) => "0.0.0.0:0".parse().unwrap(),
        (None, SocketAddr::V6(_)) => "[::]:0".parse().unwrap(),
    };
    let s = UdpSocket::bind(local).await?;
    s.connect(target).await?;
    Ok(s)
}

struct Url {
    path: String,
    status: Vec<(u16, u16)>,
    digest: Option<String>,
    regex: Option<Regex>,
}

/// Byte strings boxed (not `Vec`s): every probe holds one `Prepared`, sized by its largest
/// variant.
enum Prepared {
    Tcp {
        send: Option<Box<[u8]>>,
        expect: Option<Box<[u8]>>,
    },
    /// Boxed: as large as two of the others, and every probe holds one `Prepared`.
    Http(Box<HttpPrepared>),
    Udp {
        payload: Box<[u8]>,
        expect: Option<Box<[u8]>>,
    },
    Dns {
        name: String,
        qtype: u16,
    },
    Smtp {
        helo: String,
    },
    Ping,
    Exec {
        argv: crate::model::Argv,
        dynamic: bool,
    },
    Lua {
        run: HookRef,
    },
    /// The spec cannot run (bad regex, unknown DNS type): every run fails with this.
    Invalid(String),
}

/// Context a run may need beyond the network: the Lua state and the real it is for.
#[derive(Clone)]
pub struct RunCtx {
    pub lua: Option<mlua::Lua>,
    pub rs: RsInfo,
    /// Instructions a Lua check may use per run.
    pub instructions: u64,
    /// The check manager's connect poller, for bare TCP checks (tokio's reactor otherwise).
    pub connects: Option<Rc<Connects>>,
}

/// A check spec ready to run against one target.
pub struct Prober {
    /// Shared with the model and every probe of the same spec.
    pub spec: Arc<CheckSpec>,
    pub target: SocketAddr,
    prepared: Prepared,
    /// The check manager's index of this probe (`usize::MAX` when it has none): a run finds
    /// its probe by it.
    pub(crate) slot: std::cell::Cell<usize>,
}

impl Prober {
    /// Lua checks need the Lua state and the real's details in their context; others do not.
    pub fn is_lua(&self) -> bool {
        matches!(self.prepared, Prepared::Lua { .. })
    }

    /// A bare TCP check (nothing to send or expect): a connect that the check manager's
    /// connect poller can finish, run without a task of its own.
    pub fn is_bare_tcp(&self) -> bool {
        matches!(self.prepared, Prepared::Tcp { send: None, expect: None })
    }
}

struct HttpPrepared {
    method: String,
    urls: Vec<Url>,
    host: Option<String>,
    tls: Option<http::Tls>,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn timed_out(timeout: f64) -> String {
    format!("timed out after {timeout}s")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

impl Prober {
    pub fn new(spec: &CheckSpec, target: SocketAddr) -> Prober {
        Prober::shared(Arc::new(spec.clone()), target)
    }

    /// A prober holding the model's spec itself, not a copy.
    pub fn shared(spec: Arc<CheckSpec>, target: SocketAddr) -> Prober {
        let prepared = match prepare(&spec, target) {
            Ok(p) => p,
            Err(m) => Prepared::Invalid(m),
        };
        Prober { spec, target, prepared, slot: std::cell::Cell::new(usize::MAX) }
    }

    /// The connect poller, for a bare TCP check (nothing to send or expect) when there is one.
    fn polled<'a>(&self, ctx: &'a RunCtx) -> Option<&'a Connects> {
        match self.prepared {
            Prepared::Tcp { send: None, expect: None } => ctx.connects.as_deref(),
            _ => None,
        }
    }

    /// One check run: up to 1 + `retries` attempts, each bounded by `timeout`.
    pub async fn run(&self, ctx: &RunCtx) -> CheckResult {
        let c = &self.spec.common;
        let timeout = secs(c.timeout);
        let mut attempt = 0;
        loop {
            let start = Instant::now();
            // exec and udp end their own attempts at `timeout` (to kill, or to count
            // silence as success); the outer bound is only a safety net for them. The connect
            // poller ends a bare connect at `timeout` itself: no timer of its own.
            let bound = match self.prepared {
                _ if self.polled(ctx).is_some() => None,
                Prepared::Exec { .. } | Prepared::Udp { .. } => Some(timeout + Duration::from_secs(2)),
                _ => Some(timeout),
            };
            // `attempt` boxes each kind's future: its buffers live only while it runs, not in
            // every idle task.
            // The timeout (a timer and a second attempt future) boxed: a bare connect, run
            // without one, keeps a run future of a few hundred bytes while in flight.
            let mut r = match bound {
                None => self.attempt(ctx, timeout).await,
                Some(bound) => match Box::pin(tokio::time::timeout(bound, self.attempt(ctx, timeout))).await {
                    Ok(r) => r,
                    Err(_) => CheckResult::down(Duration::ZERO, timed_out(c.timeout)),
                },
            };
            r.latency = start.elapsed();
            if r.ok || attempt >= c.retries {
                if !r.ok && attempt > 0 {
                    r.error = r.error.map(|e| format!("{e} ({} attempts)", attempt + 1));
                }
                return r;
            }
            attempt += 1;
            // Boxed: only failing runs wait.
            Box::pin(tokio::time::sleep(secs(c.retry_delay))).await;
        }
    }

    async fn attempt(&self, ctx: &RunCtx, timeout: Duration) -> CheckResult {
        let bind = self.spec.common.bind;
        let t = self.target;
        let z = Duration::ZERO;
        if let Some(connects) = self.polled(ctx) {
            return match connects.check(t, bind, timeout).await {
                Ok(()) => CheckResult::up(z),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => CheckResult::down(z, timed_out(self.spec.common.timeout)),
                Err(e) => CheckResult::down(z, format!("connect to {t}: {e}")),
            };
        }
        match &self.prepared {
            Prepared::Invalid(m) => CheckResult::down(z, m.clone()),
            // Each kind boxed: an attempt allocates only what its own kind needs.
            Prepared::Tcp { send, expect } => match Box::pin(tcp(t, bind, send.as_deref(), expect.as_deref())).await {
                Ok(()) => CheckResult::up(z),
                Err(e) => CheckResult::down(z, e),
            },
            Prepared::Http(h) => Box::pin(http_check(t, bind, &h.method, &h.urls, h.host.as_deref(), h.tls.as_ref())).await,
            Prepared::Udp { payload, expect } => match Box::pin(udp(t, bind, payload, expect.as_deref(), timeout)).await {
                Ok(()) => CheckResult::up(z),
                Err(e) => CheckResult::down(z, e),
            },
            Prepared::Dns { name, qtype } => match Box::pin(dns_check(t, bind, name, *qtype)).await {
                Ok(()) => CheckResult::up(z),
                Err(e) => CheckResult::down(z, e),
            },
            Prepared::Smtp { helo } => match Box::pin(smtp(t, bind, helo)).await {
                Ok(()) => CheckResult::up(z),
                Err(e) => CheckResult::down(z, e),
            },
            Prepared::Ping => match Box::pin(super::ping::ping(t.ip(), bind)).await {
                Ok(()) => CheckResult::up(z),
                Err(e) => CheckResult::down(z, e),
            },
            Prepared::Exec { argv, dynamic } => Box::pin(exec(argv, *dynamic, timeout)).await,
            Prepared::Lua { run } => match &ctx.lua {
                None => CheckResult::down(z, "no Lua state for a Lua check"),
                Some(lua) => match Box::pin(super::lua::run_check(lua, *run, &ctx.rs, ctx.instructions, self.spec.common.bind)).await {
                    Ok(r) => r,
                    Err(LuaCheckError(m)) => CheckResult::down(z, m),
                },
            },
        }
    }
}

fn prepare(spec: &CheckSpec, target: SocketAddr) -> Result<Prepared, String> {
    Ok(match &spec.kind {
        CheckKind::Tcp { send, expect } => {
            Prepared::Tcp { send: send.as_ref().map(|s| s.as_bytes().into()), expect: expect.as_ref().map(|s| s.as_bytes().into()) }
        }
        CheckKind::Http { tls, method, urls, virtualhost, sni, verify } => {
            let mut out = Vec::new();
            for u in urls {
                let regex = match &u.regex {
                    Some(r) => Some(Regex::new(r).map_err(|e| format!("bad regex '{r}': {e}"))?),
                    None => None,
                };
                out.push(Url {
                    path: u.path.clone(),
                    status: u.status.clone(),
                    digest: u.digest.as_ref().map(|d| d.to_ascii_lowercase()),
                    regex,
                });
            }
            let tls = if *tls {
                let name = sni.clone().or_else(|| virtualhost.clone()).unwrap_or_else(|| target.ip().to_string());
                Some(http::Tls::new(&name, *verify).map_err(|e| e.to_string())?)
            } else {
                None
            };
            Prepared::Http(Box::new(HttpPrepared { method: method.to_ascii_uppercase(), urls: out, host: virtualhost.clone(), tls }))
        }
        CheckKind::Udp { payload, expect } => Prepared::Udp {
            payload: payload.as_ref().map(|s| s.as_bytes().into()).unwrap_or_default(),
            expect: expect.as_ref().map(|s| s.as_bytes().into()),
        },
        CheckKind::Dns { name, qtype } => {
            let q = dns::qtype(qtype).map_err(|e| e.to_string())?;
            dns::query(0, name, q).map_err(|e| e.to_string())?;
            Prepared::Dns { name: name.clone(), qtype: q }
        }
        CheckKind::Smtp { helo } => Prepared::Smtp { helo: helo.clone() },
        CheckKind::Ping => Prepared::Ping,
        CheckKind::Exec { command, dynamic } => {
            if command.is_empty() {
                return Err("exec check without a command".into());
            }
            Prepared::Exec { argv: command.clone(), dynamic: *dynamic }
        }
        CheckKind::Lua { run } => Prepared::Lua { run: *run },
    })
}

async fn tcp(t: SocketAddr, bind: Option<IpAddr>, send: Option<&[u8]>, expect: Option<&[u8]>) -> Result<(), String> {
    // A bare connect check sends nothing: no need to turn Nagle off (one system call less).
    let connected = if send.is_some() { connect(t, bind).await } else { connect_plain(t, bind).await };
    let mut s = connected.map_err(|e| format!("connect to {t}: {e}"))?;
    if let Some(data) = send {
        s.write_all(data).await.map_err(|e| format!("send: {e}"))?;
    }
    if let Some(want) = expect {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        while !contains(&got, want) {
            let n = s.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 || got.len() > MAX_EXPECT_READ {
                return Err(format!("reply does not contain {:?}", String::from_utf8_lossy(want)));
            }
            got.extend_from_slice(&buf[..n]);
        }
    }
    close_with_reset(&s);
    Ok(())
}

/// Make the coming close send a reset, as keepalived does: no FIN exchange and no TIME_WAIT
/// socket per check (10,000 checks a second would otherwise keep 600,000 of them).
fn close_with_reset<S: std::os::fd::AsFd>(s: &S) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}

async fn http_check(
    t: SocketAddr,
    bind: Option<IpAddr>,
    method: &str,
    urls: &[Url],
    host: Option<&str>,
    tls: Option<&http::Tls>,
) -> CheckResult {
    let z = Duration::ZERO;
    let host = http::host_header(host, t, tls.is_some());
    let head = method == "HEAD";
    let mut last = CheckResult::up(z);
    // Every URL must pass (keepalived).
    for u in urls {
        let req = http::request(method, &u.path, &host, &[], b"");
        let resp = match http::fetch(t, bind, tls, &req, head).await {
            Ok(r) => r,
            Err(e) => return CheckResult::down(z, format!("{} {}: {e}", method, u.path)),
        };
        let mut r = CheckResult::up(z);
        r.status = Some(resp.status);
        let n = resp.body.len().min(BODY_FOR_WEIGHT);
        r.body = Some(String::from_utf8_lossy(&resp.body[..n]).into_owned());
        let fail = |mut r: CheckResult, m: String| {
            r.ok = false;
            r.error = Some(m);
            r
        };
        if !u.status.iter().any(|&(a, b)| (a..=b).contains(&resp.status)) {
            return fail(r, format!("{} {}: status {}", method, u.path, resp.status));
        }
        if let Some(d) = &u.digest {
            let got = http::md5_hex(&resp.body);
            if &got != d {
                return fail(r, format!("{} {}: digest {got}, expected {d}", method, u.path));
            }
        }
        if let Some(re) = u.regex.as_ref().filter(|re| !re.is_match(&resp.body)) {
            return fail(r, format!("{} {}: body does not match /{}/", method, u.path, re.as_str()));
        }
        last = r;
    }
    last
}

async fn udp(t: SocketAddr, bind: Option<IpAddr>, payload: &[u8], expect: Option<&[u8]>, timeout: Duration) -> Result<(), String> {
    let s = udp_socket(t, bind).await.map_err(|e| format!("socket: {e}"))?;
    s.send(payload).await.map_err(|e| format!("send to {t}: {e}"))?;
    let mut buf = vec![0u8; 65536];
    match tokio::time::timeout(timeout, s.recv(&mut buf)).await {
        Ok(Ok(n)) => match expect {
            Some(want) if !contains(&buf[..n], want) => Err(format!("reply does not contain {:?}", String::from_utf8_lossy(want))),
            _ => Ok(()),
        },
        // ICMP port unreachable shows up as ECONNREFUSED on a connected socket.
        Ok(Err(e)) => Err(format!("{t}: {e}")),
        Err(_) if expect.is_some() => Err(format!("no reply within {}s", timeout.as_secs_f64())),
        // keepalived UDP_CHECK without a required reply: silence (no ICMP error) is success.
        Err(_) => Ok(()),
    }
}

async fn dns_check(t: SocketAddr, bind: Option<IpAddr>, name: &str, qtype: u16) -> Result<(), String> {
    let id = fastrand::u16(..);
    let q = dns::query(id, name, qtype).map_err(|e| e.to_string())?;
    let s = udp_socket(t, bind).await.map_err(|e| format!("socket: {e}"))?;
    s.send(&q).await.map_err(|e| format!("send to {t}: {e}"))?;
    let mut buf = vec![0u8; 65536];
    loop {
        let n = s.recv(&mut buf).await.map_err(|e| format!("{t}: {e}"))?;
        match dns::check_reply(&q, &buf[..n]) {
            // A stray or late datagram: keep waiting for ours (the timeout bounds this).
            Err(dns::DnsError::Id { .. }) => continue,
            r => return r.map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

/// The next whole reply: read until the pure parser has one (it bounds what it keeps).
async fn smtp_reply(s: &mut TcpStream, replies: &mut smtp::Replies) -> Result<smtp::Reply, String> {
    let mut buf = [0u8; 1024];
    let mut got: &[u8] = &[];
    loop {
        if let Some(r) = replies.push(got).map_err(|e| e.to_string())? {
            return Ok(r);
        }
        let n = s.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        got = &buf[..n];
    }
}

async fn smtp(t: SocketAddr, bind: Option<IpAddr>, helo: &str) -> Result<(), String> {
    let mut s = connect(t, bind).await.map_err(|e| format!("connect to {t}: {e}"))?;
    let mut replies = smtp::Replies::new();
    let r = smtp_reply(&mut s, &mut replies).await?;
    if r.code != 220 {
        return Err(format!("banner: {}", r.last_line()));
    }
    s.write_all(format!("HELO {helo}\r\n").as_bytes()).await.map_err(|e| format!("send: {e}"))?;
    let r = smtp_reply(&mut s, &mut replies).await?;
    if r.code != 250 {
        return Err(format!("HELO: {}", r.last_line()));
    }
    // Polite end; the answer does not matter.
    let _ = s.write_all(b"QUIT\r\n").await;
    Ok(())
}

/// Run a program (no shell); kill its process group at the timeout.
pub async fn exec(argv: &crate::model::Argv, dynamic: bool, timeout: Duration) -> CheckResult {
    let z = Duration::ZERO;
    let mut cmd = crate::programs::command(argv);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return CheckResult::down(z, format!("cannot run {}: {e}", argv[0])),
    };
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            let v = weight::exit_verdict(status.code(), dynamic);
            let mut r = if v.ok { CheckResult::up(z) } else { CheckResult::down(z, format!("{} {status}", argv[0])) };
            r.weight = v.weight;
            r
        }
        Ok(Err(e)) => CheckResult::down(z, format!("waiting for {}: {e}", argv[0])),
        Err(_) => {
            if let Some(pid) = pid {
                // The child leads its own group: kill whatever it started too.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            let _ = child.wait().await;
            CheckResult::down(z, format!("{} timed out after {}s and was killed", argv[0], timeout.as_secs_f64()))
        }
    }
}
