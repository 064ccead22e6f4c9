//! SMTP replies for the `smtp` check (keepalived's SMTP_CHECK), bytes in and typed replies
//! out. Pure and incremental: [`Replies`] takes what a read returned and hands out whole
//! replies; a line that never ends, or ends too late, is an error and not growth.
//!
//! RFC 5321 §4.2: a reply is lines of `code SP text CRLF`; a multiline reply has
//! `code "-" text CRLF` on every line but the last, all with the same code.

use thiserror::Error;

/// RFC 5321 §4.5.3.1.5 allows 512 bytes per reply line with its CRLF; twice that is taken,
/// to be lenient with long banners.
pub const MAX_LINE: usize = 1024;
/// Lines in one multiline reply (an EHLO reply has a dozen).
pub const MAX_LINES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SmtpError {
    #[error("reply line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("reply of more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("bad SMTP reply {0:?}")]
    Malformed(String),
    #[error("reply lines with different codes ({0} then {1})")]
    MixedCodes(u16, u16),
}

/// One whole reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code (RFC 5321 §4.2: 2xx to 5xx; 1xx is taken too).
    pub code: u16,
    /// The text of each line, without the code, separator and line end.
    pub lines: Vec<String>,
}

impl Reply {
    /// The last line as it was sent, for messages: "554 no service".
    pub fn last_line(&self) -> String {
        format!("{} {}", self.code, self.lines.last().map(String::as_str).unwrap_or(""))
    }
}

/// A line's text, cut for messages: a hostile line is not quoted at length.
fn quote(line: &[u8]) -> String {
    String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned()
}

/// Parse one line (without its line end): the code, whether the reply goes on, the text.
pub fn parse_line(line: &[u8]) -> Result<(u16, bool, String), SmtpError> {
    // RFC 5321 §4.2: "Reply-code = %x32-35 %x30-35 %x30-39"; 1xx is accepted as well (old
    // servers), the check compares the code anyway.
    let code = match line.get(..3) {
        Some([a @ b'1'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9']) => (a - b'0') as u16 * 100 + (b - b'0') as u16 * 10 + (c - b'0') as u16,
        _ => return Err(SmtpError::Malformed(quote(line))),
    };
    let (more, text) = match line.get(3) {
        None => (false, &line[3..]),
        Some(b' ') => (false, &line[4..]),
        Some(b'-') => (true, &line[4..]),
        Some(_) => return Err(SmtpError::Malformed(quote(line))),
    };
    Ok((code, more, String::from_utf8_lossy(text).into_owned()))
}

/// The replies in a byte stream.
#[derive(Debug, Clone, Default)]
pub struct Replies {
    /// Bytes not consumed yet: the unfinished line, and any lines after the last reply.
    buf: Vec<u8>,
    /// How many bytes at the start of `buf` are known to hold no line end: a line that comes
    /// a byte at a time is scanned once, not once per byte.
    scanned: usize,
    /// The lines of the reply being read.
    lines: Vec<String>,
    code: Option<u16>,
}

impl Replies {
    pub fn new() -> Replies {
        Replies::default()
    }

    /// Take the next bytes of the stream and return the next whole reply, if there is one
    /// now (call again with an empty slice for a later one in the same bytes).
    pub fn push(&mut self, data: &[u8]) -> Result<Option<Reply>, SmtpError> {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        let mut from = self.scanned;
        let result = loop {
            let Some(nl) = self.buf[from..].iter().position(|&b| b == b'\n').map(|i| from + i - start) else {
                if self.buf.len() - start > MAX_LINE {
                    break Err(SmtpError::LineTooLong);
                }
                break Ok(None);
            };
            if nl + 1 > MAX_LINE {
                break Err(SmtpError::LineTooLong);
            }
            // CRLF, or a bare LF from a lax server.
            let mut line = &self.buf[start..start + nl];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            start += nl + 1;
            from = start;
            let (code, more, text) = match parse_line(line) {
                Ok(l) => l,
                Err(e) => break Err(e),
            };
            match self.code {
                Some(c) if c != code => break Err(SmtpError::MixedCodes(c, code)),
                _ => self.code = Some(code),
            }
            if self.lines.len() == MAX_LINES {
                break Err(SmtpError::TooManyLines);
            }
            self.lines.push(text);
            if !more {
                self.code = None;
                break Ok(Some(Reply { code, lines: std::mem::take(&mut self.lines) }));
            }
        };
        self.buf.drain(..start);
        self.scanned = if matches!(result, Ok(None)) { self.buf.len() } else { 0 };
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multiline_replies() {
        let mut r = Replies::new();
        assert_eq!(r.push(b"220-mail.example.org ESMTP\r\n220"), Ok(None));
        let got = r.push(b" ready\r\n250 hello\r\n").unwrap().unwrap();
        assert_eq!(got, Reply { code: 220, lines: vec!["mail.example.org ESMTP".into(), "ready".into()] });
        assert_eq!(got.last_line(), "220 ready");
        let got = r.push(b"").unwrap().unwrap();
        assert_eq!((got.code, got.lines.as_slice()), (250, &["hello".to_string()][..]));
        assert_eq!(r.push(b""), Ok(None));
        // bare LF and a code alone
        assert_eq!(Replies::new().push(b"554\n").unwrap().unwrap().code, 554);
    }

    #[test]
    fn bad_replies() {
        for bad in [&b"SSH-2.0-OpenSSH\r\n"[..], b"25 x\r\n", b"2500 x\r\n", b"620 x\r\n", b"\r\n", b"\xff\xfe\xfd\r\n"] {
            assert!(matches!(Replies::new().push(bad), Err(SmtpError::Malformed(_))), "{bad:?}");
        }
        assert_eq!(Replies::new().push(b"220-a\r\n250 b\r\n"), Err(SmtpError::MixedCodes(220, 250)));
        let many = "220-x\r\n".repeat(MAX_LINES + 1);
        assert_eq!(Replies::new().push(many.as_bytes()), Err(SmtpError::TooManyLines));
    }

    #[test]
    fn lines_are_bounded() {
        // A 1 MB line, all at once or in pieces, is cut at the limit.
        let long = format!("220 {}\r\n", "x".repeat(1 << 20));
        assert_eq!(Replies::new().push(long.as_bytes()), Err(SmtpError::LineTooLong));
        let mut r = Replies::new();
        let mut fed = 0;
        let err = loop {
            match r.push(&[b'2'; 100]) {
                Ok(None) => fed += 100,
                other => break other,
            }
        };
        assert_eq!(err, Err(SmtpError::LineTooLong));
        assert!(fed <= MAX_LINE);
        // A line of exactly the limit is fine.
        let edge = format!("220 {}\r\n", "x".repeat(MAX_LINE - 6));
        assert_eq!(Replies::new().push(edge.as_bytes()).unwrap().unwrap().code, 220);
        // The message quotes only the start of a hostile line.
        let Err(SmtpError::Malformed(m)) = Replies::new().push(format!("{}\r\n", "y".repeat(900)).as_bytes()) else { panic!() };
        assert_eq!(m.len(), 80);
    }
}
