//! BIRD's control-socket replies, parsed: pure (no I/O), so the fuzz target
//! (fuzz/fuzz_targets/bird_reply.rs) drives it with any bytes.
//!
//! The format (BIRD's doc/reply_codes and nest/cli.c): every reply line is
//! `DDDD-text` (a line of reply code DDDD, more follows), ` text` (more of the code before),
//! or `DDDD text` (the last line of the reply). `+text` is a spontaneous printout, outside
//! any reply. Codes 0xxx: done; 1xxx: table entry; 2xxx: table heading; 8xxx: run-time
//! error; 9xxx: parse error.

/// The longest line kept (BIRD's own lines are below 1 KiB); longer is an error.
pub const MAX_LINE: usize = 16 * 1024;
/// The most lines one reply may have before it is refused (a `show route` of a full table
/// is not something lvsd asks for).
pub const MAX_LINES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("BIRD sent a line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("BIRD sent a reply of more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("BIRD sent a malformed line: {0:?}")]
    Malformed(String),
    #[error("BIRD sent a continuation line before any reply code")]
    Orphan,
}

/// One line of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    pub code: u16,
    pub text: String,
}

/// A whole reply: its lines, the last one carrying the final code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<ReplyLine>,
}

impl Reply {
    /// 8xxx and 9xxx: BIRD refused or failed the command.
    pub fn is_error(&self) -> bool {
        self.code >= 8000
    }

    /// The final line's text ("Reconfigured", "lvsd_vip_x: disabled", ...).
    pub fn message(&self) -> &str {
        self.lines.last().map(|l| l.text.as_str()).unwrap_or("")
    }

    /// Every line's text, for an error message.
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| l.text.trim()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join("; ")
    }
}

/// What one line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `DDDD-text` (last = false) or `DDDD text` (last = true).
    Coded { code: u16, last: bool, text: String },
    /// ` text`: more of the previous code.
    More(String),
    /// `+text`: spontaneous, not part of a reply.
    Async(String),
}

/// Parse one line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Line, ReplyError> {
    if line.len() > MAX_LINE {
        return Err(ReplyError::LineTooLong);
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim_end_matches('\r').to_string();
    match line.first() {
        Some(b' ') => return Ok(Line::More(text(&line[1..]))),
        Some(b'+') => return Ok(Line::Async(text(&line[1..]))),
        _ => {}
    }
    let malformed = || ReplyError::Malformed(String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned());
    if line.len() < 5 || !line[..4].iter().all(u8::is_ascii_digit) {
        // BIRD ends the last line of an empty `0000` reply right after the space; a bare
        // four-digit line is the same.
        if line.len() == 4 && line.iter().all(u8::is_ascii_digit) {
            let code = line.iter().fold(0u16, |n, d| n * 10 + (d - b'0') as u16);
            return Ok(Line::Coded { code, last: true, text: String::new() });
        }
        return Err(malformed());
    }
    let code = line[..4].iter().fold(0u16, |n, d| n * 10 + (d - b'0') as u16);
    let last = match line[4] {
        b' ' => true,
        b'-' => false,
        _ => return Err(malformed()),
    };
    Ok(Line::Coded { code, last, text: text(&line[5..]) })
}

/// Reassembles replies from the bytes read off the socket, in any chunks.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    lines: Vec<ReplyLine>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Add bytes as they arrive.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that do not yet make a line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete reply, if the bytes so far hold one. After an error the decoder
    /// holds no state of the broken reply; the caller should drop the connection.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_LINE {
                    self.reset();
                    return Err(ReplyError::LineTooLong);
                }
                return Ok(None);
            };
            let line: Vec<u8> = self.buf.drain(..=nl).take(nl).collect();
            let parsed = match parse_line(&line) {
                Ok(l) => l,
                Err(e) => {
                    self.reset();
                    return Err(e);
                }
            };
            match parsed {
                Line::Async(_) => continue,
                Line::More(text) => {
                    let Some(code) = self.lines.last().map(|l| l.code) else {
                        self.reset();
                        return Err(ReplyError::Orphan);
                    };
                    self.lines.push(ReplyLine { code, text });
                }
                Line::Coded { code, last, text } => {
                    self.lines.push(ReplyLine { code, text });
                    if last {
                        let lines = std::mem::take(&mut self.lines);
                        return Ok(Some(Reply { code, lines }));
                    }
                }
            }
            if self.lines.len() > MAX_LINES {
                self.reset();
                return Err(ReplyError::TooManyLines);
            }
        }
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.lines.clear();
    }
}

/// Parse bytes holding whole replies (a test or fuzz helper).
pub fn parse_replies(bytes: &[u8]) -> Result<Vec<Reply>, ReplyError> {
    let mut d = Decoder::new();
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(r) = d.next_reply()? {
        out.push(r);
    }
    Ok(out)
}

/// One row of `show protocols` (code 1002).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Protocol {
    pub name: String,
    pub proto: String,
    pub table: String,
    /// "up", "down", "start", "stop" (BIRD's protocol state).
    pub state: String,
    pub since: String,
    /// "Established", "Active", "Connect", ... for BGP; may be empty.
    pub info: String,
}

impl Protocol {
    pub fn is_up(&self) -> bool {
        self.state == "up"
    }
}

fn looks_like_date(s: &str) -> bool {
    s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-'
}

/// The rows of a `show protocols` reply: lines of code 1002 (the 2002 heading skipped).
/// `since` may be a time or a date and a time (BIRD's `timeformat protocol`).
pub fn protocols(reply: &Reply) -> Vec<Protocol> {
    let mut out = Vec::new();
    for l in reply.lines.iter().filter(|l| l.code == 1002) {
        let mut w = l.text.split_whitespace();
        let (Some(name), Some(proto), Some(table), Some(state)) = (w.next(), w.next(), w.next(), w.next()) else { continue };
        let mut since = w.next().unwrap_or("").to_string();
        let rest: Vec<&str> = w.collect();
        let mut info = &rest[..];
        if looks_like_date(&since) && !info.is_empty() {
            since = format!("{since} {}", info[0]);
            info = &info[1..];
        }
        out.push(Protocol {
            name: name.to_string(),
            proto: proto.to_string(),
            table: table.to_string(),
            state: state.to_string(),
            since,
            info: info.join(" "),
        });
    }
    out
}

/// One row of `show bfd sessions` (code 1020).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BfdSession {
    pub address: std::net::IpAddr,
    pub interface: String,
    /// "Up", "Down", "Init", "AdminDown".
    pub state: String,
}

/// The rows of a `show bfd sessions` reply: lines of code 1020 that start with an address
/// (the protocol name and the column heading skipped).
pub fn bfd_sessions(reply: &Reply) -> Vec<BfdSession> {
    let mut out = Vec::new();
    for l in reply.lines.iter().filter(|l| l.code == 1020) {
        let mut w = l.text.split_whitespace();
        let (Some(addr), Some(interface), Some(state)) = (w.next(), w.next(), w.next()) else { continue };
        if let Ok(address) = addr.parse() {
            out.push(BfdSession { address, interface: interface.to_string(), state: state.to_string() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As BIRD 2.0.12 answered `show protocols "lvsd_*"` here.
    const SHOW: &[u8] = b"2002-Name       Proto      Table      State  Since         Info\n\
1002-lvsd_vip_203_0_113_10 Static     lvsd_vips4 up     10:41:02.123  \n \
lvsd_bgp_192_0_2_1 BGP        ---        start  2026-12-03 10:41:02  Active        Socket: Connection refused\n \
lvsd_vip_203_0_113_11 Static     lvsd_vips4 down   10:41:02.123  \n\
0000 \n";

    #[test]
    fn show_protocols_rows() {
        let r = parse_replies(SHOW).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].code, 0);
        let p = protocols(&r[0]);
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!((p[0].name.as_str(), p[0].state.as_str(), p[0].is_up()), ("lvsd_vip_203_0_113_10", "up", true));
        assert_eq!(p[1].since, "2026-12-03 10:41:02");
        assert_eq!(p[1].info, "Active Socket: Connection refused");
        assert_eq!((p[2].table.as_str(), p[2].is_up()), ("lvsd_vips4", false));
    }

    #[test]
    fn show_bfd_sessions_rows() {
        // As BIRD 2.0.12 answered here.
        let r = parse_replies(
            b"1020-lvsd_bfd:\n IP address                Interface  State      Since         Interval  Timeout\n \
192.0.2.1                 eth0       Up         11:12:23.424    1.000    0.000\n0000 \n",
        )
        .unwrap();
        let s = bfd_sessions(&r[0]);
        assert_eq!(s, vec![BfdSession { address: "192.0.2.1".parse().unwrap(), interface: "eth0".into(), state: "Up".into() }]);
    }

    #[test]
    fn replies_come_whole_from_any_chunks() {
        let bytes = b"0001 BIRD 2.0.12 ready.\n0002-Reading configuration from /tmp/b.conf\n0003 Reconfigured\n9001 syntax error, unexpected CF_SYM_UNDEFINED\n";
        let whole = parse_replies(bytes).unwrap();
        assert_eq!(whole.iter().map(|r| r.code).collect::<Vec<_>>(), vec![1, 3, 9001]);
        assert_eq!(whole[1].message(), "Reconfigured");
        assert!(whole[2].is_error() && !whole[1].is_error());
        // Byte by byte: the same replies.
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in bytes.iter() {
            d.push(&[*b]);
            while let Some(r) = d.next_reply().unwrap() {
                got.push(r);
            }
        }
        assert_eq!(got, whole);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn spontaneous_lines_and_empty_ok() {
        let r = parse_replies(b"+Config timeout expired\n0000\n0011 lvsd_vip_x: enabled\n").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].code, r[0].message()), (0, ""));
        assert_eq!(r[1].message(), "lvsd_vip_x: enabled");
    }

    #[test]
    fn bad_lines_are_typed_errors() {
        assert_eq!(parse_replies(b" orphan\n"), Err(ReplyError::Orphan));
        assert!(matches!(parse_replies(b"12x4 nope\n"), Err(ReplyError::Malformed(_))));
        assert!(matches!(parse_replies(b"0001?x\n"), Err(ReplyError::Malformed(_))));
        assert!(matches!(parse_replies(b"\n"), Err(ReplyError::Malformed(_))));
        let long = vec![b'1'; MAX_LINE + 2];
        assert_eq!(parse_replies(&long), Err(ReplyError::LineTooLong));
        let mut many = b"1002-x\n".to_vec();
        many.extend(b" y\n".repeat(MAX_LINES + 1));
        assert_eq!(parse_replies(&many), Err(ReplyError::TooManyLines));
        // Not UTF-8: kept lossily, no error.
        assert_eq!(parse_replies(b"0000 \xff\xfe\n").unwrap()[0].message(), "\u{fffd}\u{fffd}");
    }

    /// The fuzz target's property on stable: any bytes, in any chunks, parse or fail with
    /// a typed error, and never panic.
    #[test]
    fn mutated_replies_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut m = SHOW.to_vec();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % m.len();
                match next() % 3 {
                    0 => m[at] = next() as u8,
                    1 => m.insert(at, b"\n -+0123 "[(next() % 9) as usize]),
                    _ => {
                        m.remove(at);
                    }
                }
            }
            let mut d = Decoder::new();
            for chunk in m.chunks(1 + (next() % 7) as usize) {
                d.push(chunk);
                while let Ok(Some(r)) = d.next_reply() {
                    let _ = protocols(&r);
                    let _ = bfd_sessions(&r);
                }
            }
        }
    }
}
