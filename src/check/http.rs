//! HTTP/1.1 for the http/https checks and `lvsd.net.http`: build a request, read and parse
//! the response (Content-Length, chunked or until close), TLS with rustls.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls::{self, pki_types::ServerName};

/// Responses larger than this are cut and fail (a health page is small).
pub const MAX_RESPONSE: usize = 1 << 20;

#[derive(Debug, Error)]
pub enum HttpError {
    #[error("connect to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("TLS handshake with {0}: {1}")]
    Tls(SocketAddr, std::io::Error),
    #[error("bad TLS server name '{0}'")]
    ServerName(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    #[error("response larger than {MAX_RESPONSE} bytes")]
    TooLarge,
    #[error("connection closed before the response was complete")]
    Incomplete,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The request text. `Connection: close`: one request per connection, as keepalived.
pub fn request(method: &str, path: &str, host: &str, extra: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lvsd/{}\r\nAccept: */*\r\nConnection: close\r\n", env!("CARGO_PKG_VERSION"));
    for (k, v) in extra {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

/// The Host header value for a target: the virtual host if given, else the address; the
/// port only when it is not the scheme's default.
pub fn host_header(virtualhost: Option<&str>, target: SocketAddr, tls: bool) -> String {
    let default = if tls { 443 } else { 80 };
    let host = match virtualhost {
        Some(v) => v.to_string(),
        None => match target {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        },
    };
    if target.port() == default || virtualhost.is_some_and(|v| v.contains(':') && !v.starts_with('[')) {
        host
    } else {
        format!("{host}:{}", target.port())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parse what has been read so far. `Ok(None)`: more is needed. `eof`: nothing more will
/// come. `head`: the request was HEAD (no body follows).
pub fn parse(raw: &[u8], eof: bool, head: bool) -> Result<Option<Response>, HttpError> {
    let Some(end) = find(raw, b"\r\n\r\n") else {
        return if eof { Err(HttpError::Incomplete) } else { Ok(None) };
    };
    let text = std::str::from_utf8(&raw[..end]).map_err(|_| HttpError::Malformed("header is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("no HTTP/1.x status line"));
    }
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).filter(|s| (100..=999).contains(s)).ok_or(HttpError::Malformed("bad status code"))?;
    let mut headers = Vec::new();
    for l in lines {
        let (k, v) = l.split_once(':').ok_or(HttpError::Malformed("header line without ':'"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let rest = &raw[end + 4..];
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let no_body = head || status < 200 || status == 204 || status == 304;
    let body = if no_body {
        Vec::new()
    } else if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        match dechunk(rest)? {
            Some(b) => b,
            None if eof => return Err(HttpError::Incomplete),
            None => return Ok(None),
        }
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|_| HttpError::Malformed("bad Content-Length"))?;
        if rest.len() < len {
            return if eof { Err(HttpError::Incomplete) } else { Ok(None) };
        }
        rest[..len].to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(Response { status, headers, body }))
}

/// Decode a chunked body; `Ok(None)` while incomplete.
fn dechunk(mut raw: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(raw, b"\r\n") else { return Ok(None) };
        let size_text = std::str::from_utf8(&raw[..eol]).map_err(|_| HttpError::Malformed("bad chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| HttpError::Malformed("bad chunk size"))?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(Some(out)); // trailers, if any, are ignored
        }
        if raw.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// Send `req` and read the response.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, req: &[u8], head: bool) -> Result<Response, HttpError> {
    s.write_all(req).await?;
    s.flush().await?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            // Servers often close TLS without close_notify: treat as the end.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(HttpError::TooLarge);
        }
        if let Some(r) = parse(&buf, n == 0, head)? {
            return Ok(r);
        }
    }
}

/// What to do with TLS for one request.
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<rustls::ClientConfig>,
    pub name: ServerName<'static>,
}

impl Tls {
    /// `name`: SNI (or the virtual host, or the address); `verify`: check the certificate
    /// against the bundled web PKI roots (off by default, as keepalived).
    pub fn new(name: &str, verify: bool) -> Result<Tls, HttpError> {
        let name = ServerName::try_from(name.trim_start_matches('[').trim_end_matches(']').to_string())
            .map_err(|_| HttpError::ServerName(name.to_string()))?;
        Ok(Tls { config: client_config(verify), name })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(verify: bool) -> Arc<rustls::ClientConfig> {
    static VERIFY: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    static NO_VERIFY: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let make = |verify: bool| {
        let b = rustls::ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().expect("ring supports the default versions");
        let c = if verify {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            b.with_root_certificates(roots).with_no_client_auth()
        } else {
            b.dangerous().with_custom_certificate_verifier(Arc::new(AnyCert(provider()))).with_no_client_auth()
        };
        Arc::new(c)
    };
    if verify { VERIFY.get_or_init(|| make(true)).clone() } else { NO_VERIFY.get_or_init(|| make(false)).clone() }
}

/// Accepts any certificate (still checks the handshake signatures): `verify = false`.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One request over a fresh connection (TLS when `tls` is given).
pub async fn fetch(
    target: SocketAddr,
    bind: Option<std::net::IpAddr>,
    tls: Option<&Tls>,
    req: &[u8],
    head: bool,
) -> Result<Response, HttpError> {
    let tcp = super::runner::connect(target, bind).await.map_err(|e| HttpError::Connect(target, e))?;
    match tls {
        None => {
            let mut tcp = tcp;
            exchange(&mut tcp, req, head).await
        }
        Some(t) => {
            let connector = tokio_rustls::TlsConnector::from(t.config.clone());
            let mut s = connector.connect(t.name.clone(), tcp).await.map_err(|e| HttpError::Tls(target, e))?;
            exchange(&mut s, req, head).await
        }
    }
}

/// keepalived's genhash digest: MD5 of the body, lowercase hex.
pub fn md5_hex(body: &[u8]) -> String {
    use md5::{Digest, Md5};
    let d = Md5::digest(body);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_chunked_and_close() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, false).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", false, false).unwrap().is_none());
        assert!(matches!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", true, false), Err(HttpError::Incomplete)));
        let c = b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let r = parse(c, false, false).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (503, &b"hello world"[..]));
        assert!(parse(&c[..c.len() - 7], false, false).unwrap().is_none());
        assert!(parse(b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nbody", false, false).unwrap().is_none());
        let r = parse(b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nbody", true, false).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"body"[..]));
        assert_eq!(r.headers, vec![("server".to_string(), "x".to_string())]);
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", false, true).unwrap().unwrap();
        assert!(r.body.is_empty());
        assert!(matches!(parse(b"SSH-2.0-OpenSSH\r\n\r\n", false, false), Err(HttpError::Malformed(_))));
    }

    #[test]
    fn request_and_host() {
        let t: SocketAddr = "198.51.100.1:8080".parse().unwrap();
        assert_eq!(host_header(None, t, false), "198.51.100.1:8080");
        assert_eq!(host_header(Some("www.example.org"), t, false), "www.example.org:8080");
        assert_eq!(host_header(Some("www.example.org"), "198.51.100.1:80".parse().unwrap(), false), "www.example.org");
        assert_eq!(host_header(None, "[2001:db8::1]:443".parse().unwrap(), true), "[2001:db8::1]");
        let r = request("GET", "/health", "h", &[], b"");
        assert_eq!(r, format!("GET /health HTTP/1.1\r\nHost: h\r\nUser-Agent: lvsd/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n", env!("CARGO_PKG_VERSION")).into_bytes());
    }

    #[test]
    fn genhash_digest() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"hello\n"), "b1946ac92492d2347c6235b4d2611184");
    }
}
