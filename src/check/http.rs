//! HTTP/1.1 for the http/https checks and `lvsd.net.http`, the client side: build a
//! request, send it (TLS with rustls) and feed what comes back to the pure response parser
//! ([`super::http_response`]), which bounds and frames it.

use super::http_response::Parser;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls::{self, pki_types::ServerName};

pub use super::http_response::{Response, ResponseError};

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
    #[error("{0}")]
    Response(#[from] ResponseError),
}

/// The request text. `Connection: close`: one request per connection, as keepalived.
pub fn request(method: &str, path: &str, host: &str, extra: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lvsd/{}\r\nAccept: */*\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION")
    );
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

/// Send `req` and read the response.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, req: &[u8], head: bool) -> Result<Response, HttpError> {
    s.write_all(req).await?;
    s.flush().await?;
    let mut parser = Parser::new(head);
    let mut chunk = vec![0u8; 8192];
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            // Servers often close TLS without close_notify: treat as the end.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Ok(parser.finish()?);
        }
        if let Some(r) = parser.push(&chunk[..n])? {
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
        let b = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions");
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
    fn request_and_host() {
        let t: SocketAddr = "198.51.100.1:8080".parse().unwrap();
        assert_eq!(host_header(None, t, false), "198.51.100.1:8080");
        assert_eq!(host_header(Some("www.example.org"), t, false), "www.example.org:8080");
        assert_eq!(host_header(Some("www.example.org"), "198.51.100.1:80".parse().unwrap(), false), "www.example.org");
        assert_eq!(host_header(None, "[2001:db8::1]:443".parse().unwrap(), true), "[2001:db8::1]");
        let r = request("GET", "/health", "h", &[], b"");
        assert_eq!(
            r,
            format!(
                "GET /health HTTP/1.1\r\nHost: h\r\nUser-Agent: lvsd/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
                env!("CARGO_PKG_VERSION")
            )
            .into_bytes()
        );
    }

    #[test]
    fn genhash_digest() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"hello\n"), "b1946ac92492d2347c6235b4d2611184");
    }
}
