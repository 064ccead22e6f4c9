//! Prometheus text exposition on an opt-in address. A scrape asks the director for its status
//! (the document `lvsd status --json` prints) and renders it (src/control/metrics_page.rs), so
//! the numbers are the director's own. The page is cached for [`CACHE_FOR`] and built by one
//! scrape at a time; at most [`MAX_IN_FLIGHT`] connections are served at once, the next ones
//! get a 503 at once.

use super::accept::Backoff;
use super::server::Call;
use super::{Command, ControlError};
use crate::ratelimit::LogLimiter;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::metrics_page::{Compat, render_doc_with, render_view, view_of_text};

/// How long a built page is served again (scrapers every second or so share one build).
pub const CACHE_FOR: Duration = Duration::from_secs(1);
/// Scrape connections served at once.
pub const MAX_IN_FLIGHT: usize = 8;
/// Connections beyond that which are still answered (a 503); later ones are closed at once.
const MAX_TURNED_AWAY: usize = 64;
/// Time a client has to send its request head.
const HEAD_WITHIN: Duration = Duration::from_secs(5);
/// Time the director has to answer the status request.
const STATUS_WITHIN: Duration = Duration::from_secs(10);

// ---- serving ----

/// Bind the metrics address; failing here fails the daemon's start.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ControlError> {
    TcpListener::bind(addr).await.map_err(|source| ControlError::Io { path: format!("metrics address {addr} (--metrics)"), source })
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub cache_for: Duration,
    pub max_in_flight: usize,
    pub compat: Compat,
}

impl Default for Options {
    fn default() -> Options {
        Options { cache_for: CACHE_FOR, max_in_flight: MAX_IN_FLIGHT, compat: Compat::default() }
    }
}

struct Shared {
    tx: mpsc::Sender<Call>,
    cache_for: Duration,
    compat: Compat,
    /// The last page built; the lock also makes builds one at a time.
    page: tokio::sync::Mutex<Option<(Instant, Arc<str>)>>,
    /// A director that cannot answer would log once per scrape otherwise.
    log: std::cell::RefCell<LogLimiter>,
}

impl Shared {
    async fn page(&self) -> Result<Arc<str>, String> {
        let mut page = self.page.lock().await;
        if let Some((_, body)) = page.as_ref().filter(|(at, _)| at.elapsed() < self.cache_for) {
            return Ok(body.clone());
        }
        let body: Arc<str> = self.build().await?.into();
        *page = Some((Instant::now(), body.clone()));
        Ok(body)
    }

    /// Drop a page past its time: at 10,000 services it is tens of MB, and the next scrape
    /// (seconds later) builds its own anyway.
    async fn forget_stale(&self) {
        let mut page = self.page.lock().await;
        if page.as_ref().is_some_and(|(at, _)| at.elapsed() >= self.cache_for) {
            *page = None;
        }
    }

    async fn build(&self) -> Result<String, String> {
        let (otx, orx) = oneshot::channel();
        self.tx
            .send((Command::Status { text_only: false, brief: false }, otx))
            .await
            .map_err(|_| "the director is not running".to_string())?;
        let r = match tokio::time::timeout(STATUS_WITHIN, orx).await {
            Err(_) => return Err(format!("the director did not answer within {STATUS_WITHIN:?}")),
            Ok(Err(_)) => return Err("the director dropped the request".into()),
            Ok(Ok(r)) => r,
        };
        let compat = self.compat;
        let render = match (r.ok, r.written, r.result) {
            (true, Some(text), _) => tokio::task::spawn_blocking(move || render_view(view_of_text(text.get())?, compat)),
            (true, None, Some(doc)) => tokio::task::spawn_blocking(move || render_doc_with(doc, compat)),
            _ => return Err(format!("status: {}", r.error.unwrap_or_default())),
        };
        render.await.map_err(|e| format!("rendering: {e}"))?
    }
}

/// Serve `GET /metrics` (any path answers the same) until the listener is dropped.
pub async fn serve(listener: TcpListener, tx: mpsc::Sender<Call>) {
    serve_with(listener, tx, Options::default()).await
}

pub async fn serve_with(listener: TcpListener, tx: mpsc::Sender<Call>, opts: Options) {
    let shared = Rc::new(Shared {
        tx,
        cache_for: opts.cache_for,
        compat: opts.compat,
        page: tokio::sync::Mutex::new(None),
        log: Default::default(),
    });
    let in_flight = Arc::new(Semaphore::new(opts.max_in_flight));
    let turned_away = Arc::new(Semaphore::new(MAX_TURNED_AWAY));
    let mut backoff = Backoff::default();
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                backoff.pause("metrics", &e).await;
                continue;
            }
        };
        backoff.succeeded();
        if let Ok(slot) = in_flight.clone().try_acquire_owned() {
            let shared = shared.clone();
            tokio::task::spawn_local(async move {
                scrape(stream, &shared).await;
                drop(slot);
                tokio::time::sleep(shared.cache_for).await;
                shared.forget_stale().await;
            });
        } else if let Ok(slot) = turned_away.clone().try_acquire_owned() {
            tokio::task::spawn_local(async move {
                let _slot = slot;
                let mut stream = stream;
                let _ = read_head(&mut stream).await;
                respond(&mut stream, "503 Service Unavailable", "too many concurrent scrapes\n").await;
            });
        }
        // Beyond both limits the connection is closed unanswered (dropped here).
    }
}

/// Read the request head (bounded in size and time); its content does not matter.
async fn read_head(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let mut got = 0;
    let read = async {
        while got < buf.len() {
            match stream.read(&mut buf[got..]).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    got += n;
                    if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                        return true;
                    }
                }
            }
        }
        true
    };
    tokio::time::timeout(HEAD_WITHIN, read).await.unwrap_or(false)
}

async fn scrape(mut stream: TcpStream, shared: &Shared) {
    if !read_head(&mut stream).await {
        return;
    }
    match shared.page().await {
        Ok(body) => respond(&mut stream, "200 OK", &body).await,
        Err(e) => {
            if let Some(held) = shared.log.borrow_mut().allow(Instant::now()) {
                tracing::warn!("metrics: cannot build the page: {e} ({held} more such failure(s) not logged)");
            }
            respond(&mut stream, "503 Service Unavailable", &format!("cannot build the metrics page: {e}\n")).await;
        }
    }
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let retry = if status.starts_with("503") { "Retry-After: 1\r\n" } else { "" };
    let head = format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n{retry}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Response;
    use crate::control::metrics_page::tests::doc;
    use serde_json::json;
    use std::cell::Cell;

    /// A director that answers status requests with `answer` and counts them.
    fn fake_director(answer: fn() -> Option<Response>) -> (mpsc::Sender<Call>, Rc<Cell<u32>>) {
        let (tx, mut rx) = mpsc::channel::<Call>(8);
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        tokio::task::spawn_local(async move {
            while let Some((_, reply)) = rx.recv().await {
                c.set(c.get() + 1);
                if let Some(r) = answer() {
                    let _ = reply.send(r);
                }
            }
        });
        (tx, calls)
    }

    async fn get(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await.unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).await.unwrap();
        r
    }

    fn local<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    async fn start(answer: fn() -> Option<Response>, opts: Options) -> (SocketAddr, Rc<Cell<u32>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, calls) = fake_director(answer);
        tokio::task::spawn_local(serve_with(l, tx, opts));
        (addr, calls)
    }

    #[test]
    fn a_page_that_cannot_be_built_is_a_503() {
        local(async {
            let opts = Options { cache_for: Duration::ZERO, max_in_flight: 4, ..Options::default() };
            let (addr, _) = start(|| Some(Response::err("busy")), opts).await;
            let r = get(addr).await;
            assert!(r.starts_with("HTTP/1.0 503 Service Unavailable\r\n"), "{r}");
            assert!(r.contains("Retry-After: 1\r\n") && r.ends_with("cannot build the metrics page: status: busy\n"), "{r}");
            let (addr, _) = start(|| Some(Response::ok(json!({"generation": 1}))), opts).await;
            assert!(get(addr).await.starts_with("HTTP/1.0 503"), "a document that does not read");
            let (addr, _) = start(|| None, opts).await;
            assert!(get(addr).await.starts_with("HTTP/1.0 503"), "no answer");
            let (addr, _) = start(|| Some(Response::ok(doc())), opts).await;
            let r = get(addr).await;
            assert!(r.starts_with("HTTP/1.0 200 OK\r\n") && r.contains("lvsd_policy_generation 3\n"), "{r}");
        });
    }

    #[test]
    fn pages_are_cached_and_built_once_for_concurrent_scrapes() {
        local(async {
            let cached = Options { cache_for: Duration::from_secs(3600), max_in_flight: 8, ..Options::default() };
            let (addr, calls) = start(|| Some(Response::ok(doc())), cached).await;
            let scrapes: Vec<_> = (0..8).map(|_| tokio::task::spawn_local(get(addr))).collect();
            for s in scrapes {
                assert!(s.await.unwrap().starts_with("HTTP/1.0 200"));
            }
            assert!(get(addr).await.starts_with("HTTP/1.0 200"));
            assert_eq!(calls.get(), 1, "nine scrapes, one status request");
            let uncached = Options { cache_for: Duration::ZERO, max_in_flight: 8, ..Options::default() };
            let (addr, calls) = start(|| Some(Response::ok(doc())), uncached).await;
            for _ in 0..3 {
                get(addr).await;
            }
            assert_eq!(calls.get(), 3);
        });
    }

    #[test]
    fn a_page_past_its_time_is_let_go() {
        local(async {
            let shared = |cache_for| Shared {
                tx: mpsc::channel(1).0,
                cache_for,
                compat: Compat::default(),
                page: tokio::sync::Mutex::new(Some((Instant::now(), Arc::from("page")))),
                log: Default::default(),
            };
            let fresh = shared(Duration::from_secs(3600));
            fresh.forget_stale().await;
            assert!(fresh.page.lock().await.is_some(), "still within its time");
            let stale = shared(Duration::from_millis(1));
            tokio::time::sleep(Duration::from_millis(5)).await;
            stale.forget_stale().await;
            assert!(stale.page.lock().await.is_none());
        });
    }

    #[test]
    fn scrapes_beyond_the_limit_get_a_503_at_once() {
        local(async {
            let opts = Options { cache_for: Duration::ZERO, max_in_flight: 2, ..Options::default() };
            let (addr, _) = start(|| Some(Response::ok(doc())), opts).await;
            // Two connections that never send their request hold both slots.
            let _a = TcpStream::connect(addr).await.unwrap();
            let _b = TcpStream::connect(addr).await.unwrap();
            let r = get(addr).await;
            assert!(r.starts_with("HTTP/1.0 503") && r.ends_with("too many concurrent scrapes\n"), "{r}");
            drop((_a, _b));
            // Their slots come back once the server notices the close.
            let mut ok = false;
            for _ in 0..200 {
                if get(addr).await.starts_with("HTTP/1.0 200") {
                    ok = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(ok, "the slots were given back");
        });
    }
}
