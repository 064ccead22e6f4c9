//! HTTP/1.x responses, bytes in and a typed response or error out: the parser the http and
//! https checks and `lvsd.net.http` share. Pure (no I/O, no clock) and incremental: feed it
//! what a read returned, it says when the response is complete, so a response that trickles
//! in one byte at a time costs no more than one read in full.
//!
//! The status line and headers are parsed by `httparse` (as hyper does); the body framing
//! (RFC 9112 §6.3: Content-Length, chunked, or until close) is ours, because httparse gives
//! only the chunk-size line. Every size is bounded: the head, each of its lines and the
//! number of headers, and the body, so a hostile server costs at most [`Limits`] of memory.

use thiserror::Error;

/// How much of a response is kept at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Status line and headers together, with their line ends (and those of any interim
    /// 1xx responses before them).
    pub head: usize,
    /// One line of the head, or one chunk-size line.
    pub line: usize,
    /// Header fields.
    pub headers: usize,
    /// The body, once decoded (a health page is small).
    pub body: usize,
}

impl Limits {
    /// 8 KiB lines as most servers and proxies allow (nginx's large_client_header_buffers),
    /// 64 KiB and 100 fields of head, 1 MiB of body.
    pub const DEFAULT: Limits = Limits { head: 64 << 10, line: 8 << 10, headers: 100, body: 1 << 20 };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// Why a response was refused. Each names the limit or the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResponseError {
    #[error("not an HTTP/1.x response")]
    NotHttp,
    #[error("malformed status line or header: {0}")]
    Head(httparse::Error),
    #[error("status code {0} is not in 100..999")]
    Status(u16),
    #[error("a header line is longer than {0} bytes")]
    LineTooLong(usize),
    #[error("the header section is longer than {0} bytes")]
    HeadTooLarge(usize),
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    #[error("bad Content-Length")]
    ContentLength,
    #[error("bad chunk size line")]
    ChunkSize,
    #[error("a chunk-size line is longer than {0} bytes")]
    ChunkLineTooLong(usize),
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("connection closed before the response was complete")]
    Incomplete,
}

/// A complete response. Header names are lowercase, values trimmed (and made UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// How the body ends (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the head into `buf`; `line` bytes of it are the current, unfinished line.
    Head {
        line: usize,
    },
    /// Body bytes still to come.
    Length {
        left: u64,
    },
    /// Reading a chunk-size line into `buf`.
    ChunkSize,
    /// Chunk data still to come, then its CRLF (read into `buf`).
    ChunkData {
        left: u64,
    },
    ChunkEnd,
    Close,
    Done,
}

/// An incremental response parser: [`push`](Self::push) what arrives, [`finish`](Self::finish)
/// at the end of the stream.
#[derive(Debug, Clone)]
pub struct Parser {
    limits: Limits,
    /// The request was HEAD: no body follows whatever the headers say.
    head_request: bool,
    /// The head, or the chunk-size line or chunk end, being read. Only the bytes of that
    /// element are ever put here, so nothing is left over when it is parsed.
    buf: Vec<u8>,
    /// Bytes of the interim (1xx) responses so far: they count towards the head limit, so
    /// that an endless stream of them is cut like an endless head.
    interim: usize,
    state: State,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Parser {
    pub fn new(head_request: bool) -> Parser {
        Parser::with_limits(head_request, Limits::DEFAULT)
    }

    pub fn with_limits(head_request: bool, limits: Limits) -> Parser {
        Parser {
            limits,
            head_request,
            buf: Vec::new(),
            interim: 0,
            state: State::Head { line: 0 },
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Take the next bytes of the stream. `Ok(Some)`: the response is complete (bytes after
    /// it are ignored: one request per connection). `Ok(None)`: more is needed.
    pub fn push(&mut self, mut input: &[u8]) -> Result<Option<Response>, ResponseError> {
        while !input.is_empty() {
            match self.state {
                State::Done => return Ok(None),
                State::Head { line } => {
                    let (used, ended) = self.scan_head(input, line)?;
                    self.buf.extend_from_slice(&input[..used]);
                    input = &input[used..];
                    if ended {
                        self.head()?;
                    }
                }
                State::Length { left } | State::ChunkData { left } => {
                    let n = (input.len() as u64).min(left) as usize;
                    self.body.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    let left = left - n as u64;
                    self.state = match self.state {
                        State::Length { .. } if left == 0 => State::Done,
                        State::Length { .. } => State::Length { left },
                        _ if left == 0 => State::ChunkEnd,
                        _ => State::ChunkData { left },
                    };
                }
                State::Close => {
                    if input.len() > self.limits.body - self.body.len() {
                        return Err(ResponseError::BodyTooLarge(self.limits.body));
                    }
                    self.body.extend_from_slice(input);
                    return Ok(None);
                }
                State::ChunkSize => {
                    // Up to the next LF (a size line ends there or later, never earlier), and
                    // no further than the line limit.
                    let n = input.iter().position(|&b| b == b'\n').map_or(input.len(), |i| i + 1);
                    let n = n.min(self.limits.line - self.buf.len());
                    self.buf.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    match httparse::parse_chunk_size(&self.buf) {
                        // RFC 9112 §7.1: "chunk-size = 1*HEXDIG"; httparse reads a line
                        // without digits (empty, or only an extension) as 0, the last chunk.
                        Ok(httparse::Status::Complete(_)) if !self.buf[0].is_ascii_hexdigit() => return Err(ResponseError::ChunkSize),
                        Ok(httparse::Status::Complete((_, 0))) => {
                            // The body is known in full; the trailer section carries nothing
                            // a check uses, so it is not waited for.
                            self.state = State::Done;
                        }
                        Ok(httparse::Status::Complete((_, size))) => {
                            self.buf.clear();
                            // Checked against what is left of the body: no overflow, and no
                            // waiting for data that would be refused anyway.
                            if size > (self.limits.body - self.body.len()) as u64 {
                                return Err(ResponseError::BodyTooLarge(self.limits.body));
                            }
                            self.state = State::ChunkData { left: size };
                        }
                        Ok(httparse::Status::Partial) if self.buf.len() >= self.limits.line => {
                            return Err(ResponseError::ChunkLineTooLong(self.limits.line));
                        }
                        Ok(httparse::Status::Partial) => {}
                        Err(httparse::InvalidChunkSize) => return Err(ResponseError::ChunkSize),
                    }
                }
                State::ChunkEnd => {
                    let n = input.len().min(2 - self.buf.len());
                    self.buf.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if !b"\r\n".starts_with(&self.buf) {
                        return Err(ResponseError::ChunkEnd);
                    }
                    if self.buf.len() == 2 {
                        self.buf.clear();
                        self.state = State::ChunkSize;
                    }
                }
            }
            if self.state == State::Done {
                return Ok(Some(self.take()));
            }
        }
        Ok(None)
    }

    /// The stream ended. A body delimited by the close is complete now; anything else that
    /// is not complete is [`ResponseError::Incomplete`].
    pub fn finish(&mut self) -> Result<Response, ResponseError> {
        match self.state {
            State::Close => {
                self.state = State::Done;
                Ok(self.take())
            }
            _ => Err(ResponseError::Incomplete),
        }
    }

    fn take(&mut self) -> Response {
        self.buf = Vec::new();
        Response { status: self.status, headers: std::mem::take(&mut self.headers), body: std::mem::take(&mut self.body) }
    }

    /// How much of `input` belongs to the head, and whether the head ends there (at a blank
    /// line). Checks the line and head limits on the way.
    fn scan_head(&mut self, input: &[u8], mut line: usize) -> Result<(usize, bool), ResponseError> {
        for (i, &b) in input.iter().enumerate() {
            let at = self.buf.len() + i;
            // Fail fast on what is not HTTP at all (an SSH or SMTP banner). This also keeps
            // the first line from being empty, so a blank line below always ends a head.
            if at < 5 && b != b"HTTP/"[at] {
                return Err(ResponseError::NotHttp);
            }
            if self.interim + at >= self.limits.head {
                return Err(ResponseError::HeadTooLarge(self.limits.head));
            }
            if b == b'\n' {
                // "\n\n" or "\n\r\n" ends the head (httparse takes either line end).
                let prev = if i > 0 { input[i - 1] } else { self.buf.last().copied().unwrap_or(0) };
                if line == 0 || (line == 1 && prev == b'\r') {
                    return Ok((i + 1, true));
                }
                line = 0;
            } else {
                line += 1;
                if line > self.limits.line {
                    return Err(ResponseError::LineTooLong(self.limits.line));
                }
            }
        }
        self.state = State::Head { line };
        Ok((input.len(), false))
    }

    /// Parse the head in `buf` and pick the body framing.
    fn head(&mut self) -> Result<(), ResponseError> {
        let mut fields = vec![httparse::EMPTY_HEADER; self.limits.headers];
        let mut r = httparse::Response::new(&mut fields);
        match r.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) if n == self.buf.len() => {}
            // The blank line found ends the head for httparse too, or the head is wrong.
            Ok(_) => return Err(ResponseError::Head(httparse::Error::NewLine)),
            Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooManyHeaders(self.limits.headers)),
            Err(e) => return Err(ResponseError::Head(e)),
        }
        let status = r.code.unwrap_or(0);
        if !(100..=999).contains(&status) {
            return Err(ResponseError::Status(status));
        }
        let headers: Vec<(String, String)> =
            r.headers.iter().map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).trim().to_string())).collect();
        let len = std::mem::take(&mut self.buf).len();
        // RFC 9110 §15.2: a client must accept 1xx responses before the final one. 101 is
        // final here (a check never asks to switch protocols).
        if (100..200).contains(&status) && status != 101 {
            self.interim += len;
            self.state = State::Head { line: 0 };
            return Ok(());
        }
        let framing = framing(status, &headers, self.head_request)?;
        self.status = status;
        self.headers = headers;
        self.state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(n) if n > self.limits.body as u64 => return Err(ResponseError::BodyTooLarge(self.limits.body)),
            Framing::Length(n) => State::Length { left: n },
            Framing::Chunked => State::ChunkSize,
            Framing::Close => State::Close,
        };
        Ok(())
    }
}

/// RFC 9112 §6.3, for a response: no body for HEAD, 1xx, 204 and 304; Transfer-Encoding
/// over Content-Length (chunked when it is the final coding, else until close); a
/// Content-Length list must agree on one value; otherwise the body ends with the connection.
fn framing(status: u16, headers: &[(String, String)], head_request: bool) -> Result<Framing, ResponseError> {
    if head_request || status < 200 || status == 204 || status == 304 {
        return Ok(Framing::Length(0));
    }
    let mut te = headers.iter().filter(|(k, _)| k == "transfer-encoding").peekable();
    if te.peek().is_some() {
        let last = te.flat_map(|(_, v)| v.split(',')).map(str::trim).rfind(|c| !c.is_empty());
        return Ok(if last.is_some_and(|c| c.eq_ignore_ascii_case("chunked")) { Framing::Chunked } else { Framing::Close });
    }
    let mut length = None;
    for v in headers.iter().filter(|(k, _)| k == "content-length").flat_map(|(_, v)| v.split(',')) {
        let v = v.trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ResponseError::ContentLength);
        }
        let n: u64 = v.parse().map_err(|_| ResponseError::ContentLength)?;
        if length.is_some_and(|l| l != n) {
            return Err(ResponseError::ContentLength);
        }
        length = Some(n);
    }
    Ok(length.map_or(Framing::Close, Framing::Length))
}

/// Parse a whole buffer at once. `Ok(None)`: more is needed; `eof`: nothing more will come.
pub fn parse(raw: &[u8], eof: bool, head_request: bool) -> Result<Option<Response>, ResponseError> {
    parse_with(raw, eof, head_request, Limits::DEFAULT)
}

pub fn parse_with(raw: &[u8], eof: bool, head_request: bool, limits: Limits) -> Result<Option<Response>, ResponseError> {
    let mut p = Parser::with_limits(head_request, limits);
    match p.push(raw)? {
        Some(r) => Ok(Some(r)),
        None if eof => p.finish().map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(raw: &[u8]) -> Result<Option<Response>, ResponseError> {
        parse(raw, false, false)
    }

    fn closed(raw: &[u8]) -> Result<Option<Response>, ResponseError> {
        parse(raw, true, false)
    }

    /// The same bytes fed one at a time give the same outcome as all at once.
    fn bytewise(raw: &[u8], eof: bool, limits: Limits) -> Result<Option<Response>, ResponseError> {
        let mut p = Parser::with_limits(false, limits);
        for b in raw {
            if let Some(r) = p.push(std::slice::from_ref(b))? {
                return Ok(Some(r));
            }
        }
        if eof { p.finish().map(Some) } else { Ok(None) }
    }

    #[test]
    fn content_length_chunked_and_close() {
        let r = one(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        assert!(one(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel").unwrap().is_none());
        assert_eq!(closed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"), Err(ResponseError::Incomplete));
        let c = b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let r = one(c).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (503, &b"hello world"[..]));
        assert!(one(&c[..c.len() - 7]).unwrap().is_none());
        assert_eq!(bytewise(c, false, Limits::DEFAULT).unwrap().unwrap(), r);
        assert!(one(b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nbody").unwrap().is_none());
        let r = closed(b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nbody").unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"body"[..]));
        assert_eq!(r.headers, vec![("server".to_string(), "x".to_string())]);
        assert_eq!(r.header("server"), Some("x"));
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", false, true).unwrap().unwrap();
        assert!(r.body.is_empty());
        assert_eq!(one(b"SSH-2.0-OpenSSH\r\n\r\n"), Err(ResponseError::NotHttp));
        // bare LF line ends, as httparse takes them
        let r = one(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok").unwrap().unwrap();
        assert_eq!(r.body, b"ok");
        // 204 and 304 have no body whatever they say
        let r = one(b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n").unwrap().unwrap();
        assert_eq!(r.status, 204);
    }

    #[test]
    fn interim_responses_are_skipped() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let r = one(raw).unwrap().unwrap();
        assert_eq!((r.status, r.headers.len(), r.body.as_slice()), (200, 1, &b"ok"[..]));
        assert_eq!(bytewise(raw, false, Limits::DEFAULT).unwrap().unwrap(), r);
    }

    #[test]
    fn framing_rules() {
        // Transfer-Encoding wins over Content-Length; chunked must be the final coding.
        let r = one(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n").unwrap().unwrap();
        assert_eq!(r.body, b"ok");
        let r = closed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nok").unwrap().unwrap();
        assert_eq!(r.body, b"2\r\nok");
        // Content-Length lists must agree; digits only (str::parse would take a "+")
        assert_eq!(one(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok").unwrap().unwrap().body, b"ok");
        for bad in ["2, 3", "-1", "+2", "0x10", "", "99999999999999999999", "1 2"] {
            let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\nok");
            assert_eq!(one(raw.as_bytes()), Err(ResponseError::ContentLength), "{bad:?}");
        }
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok";
        assert_eq!(one(raw), Err(ResponseError::ContentLength));
    }

    #[test]
    fn absurd_chunk_sizes_are_errors_not_panics() {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for size in ["ffffffffffffffff", "fffffffffffffffe", "7fffffffffffffff", "100001"] {
            let raw = format!("{head}{size}\r\nabc");
            assert_eq!(one(raw.as_bytes()), Err(ResponseError::BodyTooLarge(1 << 20)), "{size}");
        }
        for size in ["10000000000000000", "fffffffffffffffff", "-1", "0x10", "g", " 5", "5\n", "", ";ext"] {
            let raw = format!("{head}{size}\r\nabc");
            assert_eq!(one(raw.as_bytes()), Err(ResponseError::ChunkSize), "{size:?}");
        }
        // chunk sizes that add up past the limit, one at a time
        let mut raw = head.as_bytes().to_vec();
        for _ in 0..17 {
            raw.extend_from_slice(b"10000\r\n");
            raw.extend_from_slice(&[b'x'; 0x10000]);
            raw.extend_from_slice(b"\r\n");
        }
        assert_eq!(one(&raw), Err(ResponseError::BodyTooLarge(1 << 20)));
        // an endless extension
        let raw = format!("{head}5;{}", "x".repeat(20_000));
        assert_eq!(one(raw.as_bytes()), Err(ResponseError::ChunkLineTooLong(8 << 10)));
        // data not followed by CRLF
        assert_eq!(one(format!("{head}2\r\nokX\r\n").as_bytes()), Err(ResponseError::ChunkEnd));
        assert_eq!(closed(format!("{head}2\r\nok\r\n").as_bytes()), Err(ResponseError::Incomplete));
    }

    #[test]
    fn heads_are_bounded() {
        let long = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(1 << 20));
        assert_eq!(one(long.as_bytes()), Err(ResponseError::LineTooLong(8 << 10)));
        assert_eq!(bytewise(&long.as_bytes()[..20_000], false, Limits::DEFAULT), Err(ResponseError::LineTooLong(8 << 10)));
        let status = format!("HTTP/1.1 200 {}", "a".repeat(10_000));
        assert_eq!(one(status.as_bytes()), Err(ResponseError::LineTooLong(8 << 10)));
        let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(one(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes()), Err(ResponseError::TooManyHeaders(100)));
        let big: String = (0..20).map(|i| format!("X-{i}: {}\r\n", "v".repeat(4000))).collect();
        assert_eq!(one(format!("HTTP/1.1 200 OK\r\n{big}\r\n").as_bytes()), Err(ResponseError::HeadTooLarge(64 << 10)));
        // interim responses share the head budget: an endless stream of them is cut too
        let interims = "HTTP/1.1 100 Continue\r\n\r\n".repeat(5000);
        assert_eq!(one(interims.as_bytes()), Err(ResponseError::HeadTooLarge(64 << 10)));
    }

    #[test]
    fn absurd_status_lines() {
        for raw in [
            &b"HTTP/1.1 99999999999 OK\r\n\r\n"[..],
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n : v\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\x00\x01: v\r\n\r\n",
        ] {
            assert!(matches!(one(raw), Err(ResponseError::Head(_))), "{:?}: {:?}", String::from_utf8_lossy(raw), one(raw));
        }
        assert_eq!(one(b"HTTP/1.1 099 Low\r\n\r\n"), Err(ResponseError::Status(99)));
        assert_eq!(one(b"\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), Err(ResponseError::NotHttp));
        assert_eq!(one(&[0xff; 100]), Err(ResponseError::NotHttp));
        assert_eq!(one(b"HTTP/"), Ok(None));
    }

    #[test]
    fn bodies_are_bounded() {
        assert_eq!(one(b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n"), Err(ResponseError::BodyTooLarge(1 << 20)));
        assert_eq!(one(b"HTTP/1.1 200 OK\r\nContent-Length: 1048577\r\n\r\n"), Err(ResponseError::BodyTooLarge(1 << 20)));
        let mut p = Parser::new(false);
        assert_eq!(p.push(b"HTTP/1.1 200 OK\r\n\r\n"), Ok(None));
        let block = vec![b'x'; 64 << 10];
        let mut fed = 0;
        let err = loop {
            match p.push(&block) {
                Ok(None) => fed += block.len(),
                Ok(Some(_)) => panic!("an endless body completed"),
                Err(e) => break e,
            }
            assert!(fed <= 1 << 20);
        };
        assert_eq!(err, ResponseError::BodyTooLarge(1 << 20));
        assert_eq!(fed, 1 << 20);
    }

    #[test]
    fn small_limits() {
        let l = Limits { head: 64, line: 16, headers: 2, body: 8 };
        assert_eq!(parse_with(b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\n12345678", true, false, l).unwrap().unwrap().body, b"12345678");
        assert_eq!(parse_with(b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\n123456789", true, false, l), Err(ResponseError::BodyTooLarge(8)));
        assert_eq!(parse_with(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", true, false, l), Err(ResponseError::TooManyHeaders(2)));
        assert_eq!(bytewise(b"HTTP/1.1 200 OK\r\nA: 1234567890123456\r\n", false, l), Err(ResponseError::LineTooLong(16)));
    }
}
