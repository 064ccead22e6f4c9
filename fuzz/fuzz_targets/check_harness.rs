//! Fuzz cases for the parsers of what check targets answer (and of what a tracked file holds),
//! shared by the cargo-fuzz targets (http_response, dns_reply, smtp_reply, icmp_reply,
//! track_file, proc_entry) and the fixed-seed test (tests/check_fuzz.rs).
//!
//! Besides "never panics": a response fed in pieces parses exactly as when fed at once (the
//! parsers are incremental), and whatever is accepted stays within the limits.

use lvsd::check::http_response::{self, Limits, Parser};
use lvsd::check::{dns, icmp, smtp};
use lvsd::vrrp::{track_file, track_process};

/// Cut `data` into pieces whose sizes come from `sizes` (cycled; 0 means 1).
fn pieces<'a>(mut data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while !data.is_empty() {
        let n = sizes.get(i % sizes.len().max(1)).map_or(data.len(), |&s| (s as usize).max(1)).min(data.len());
        out.push(&data[..n]);
        data = &data[n..];
        i += 1;
    }
    out
}

/// Byte 0: bit 0 the request was HEAD, bit 1 small limits (so they are reached with short
/// inputs), bit 2 the stream ends after the data; bytes 1..4 the piece sizes; the rest is
/// what the server sent.
pub fn http(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let (sizes, raw) = rest.split_at(rest.len().min(3));
    let head = sel & 1 != 0;
    let limits = if sel & 2 != 0 { Limits { head: 200, line: 40, headers: 4, body: 64 } } else { Limits::DEFAULT };
    let eof = sel & 4 != 0;

    let whole = http_response::parse_with(raw, eof, head, limits);
    let mut p = Parser::with_limits(head, limits);
    let mut piecewise = Ok(None);
    for piece in pieces(raw, sizes) {
        piecewise = p.push(piece);
        if !matches!(piecewise, Ok(None)) {
            break;
        }
    }
    if eof && matches!(piecewise, Ok(None)) {
        piecewise = p.finish().map(Some);
    }
    assert_eq!(whole, piecewise, "one push and {} pieces disagree", pieces(raw, sizes).len());
    if let Ok(Some(r)) = whole {
        assert!(r.body.len() <= limits.body);
        assert!(r.headers.len() <= limits.headers);
        assert!((100..=999).contains(&r.status));
        // Invalid UTF-8 in a value may triple in size when replaced.
        assert!(r.headers.iter().all(|(k, v)| k.len() + v.len() <= 3 * limits.line));
        if head {
            assert!(r.body.is_empty());
        }
    }
}

/// Byte 0: bit 0 gives the reply our query's id, bit 1 our question too (so the later checks
/// are reached); the rest is the reply.
pub fn dns(data: &[u8]) {
    let Some((&sel, reply)) = data.split_first() else { return };
    let query = dns::query(0x1234, "www.example.org", 1).expect("a valid query");
    let mut reply = reply.to_vec();
    if sel & 1 != 0 && reply.len() >= 2 {
        reply[..2].copy_from_slice(&query[..2]);
    }
    if sel & 2 != 0 && reply.len() >= query.len() {
        reply[12..query.len()].copy_from_slice(&query[12..]);
    }
    let parsed = dns::parse_reply(&reply);
    if reply.len() >= 12 {
        let h = dns::header(&reply).expect("12 bytes are a header");
        assert_eq!(parsed.as_ref().map(|r| r.header).unwrap_or(h), h);
    }
    if let Ok(r) = dns::check_reply(&query, &reply) {
        assert_eq!(Ok(&r), parsed.as_ref());
        assert_eq!(r.header.id, 0x1234);
        assert!(r.header.response && !r.header.truncated && r.header.rcode == 0);
        assert!(r.question.expect("checked replies have our question").name.eq_ignore_ascii_case(&query[12..query.len() - 4]));
    }
}

/// Byte 0: bit 0 reads the rest as ICMPv6 (bare) rather than IPv4 (with its header), bit 1
/// makes the ICMP message the echo reply to the request with id 0x1234 and sequence 7 (so
/// that `Ours` is reached); the rest is the datagram. A datagram is ours only if it
/// is that reply.
pub fn icmp(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let v6 = sel & 1 != 0;
    let mut d = rest.to_vec();
    let start = if v6 { 0 } else { d.first().map_or(0, |b| usize::from(b & 0x0f) * 4) };
    if sel & 2 != 0 && d.len() >= start + icmp::REQUEST_LEN {
        let mut reply = icmp::echo_request(v6, 0x1234, 7);
        reply[0] = if v6 { icmp::ECHO_REPLY_V6 } else { icmp::ECHO_REPLY_V4 };
        if !v6 {
            // The internet checksum (RFC 1071) made again for the new type.
            reply[2..4].fill(0);
            let mut sum: u32 = reply.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            reply[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        }
        d[start..start + icmp::REQUEST_LEN].copy_from_slice(&reply);
        // The message is the rest of the datagram: nothing after the reply.
        d.truncate(start + icmp::REQUEST_LEN);
    }
    let r = icmp::read(v6, &d, 0x1234, 7);
    if sel & 2 != 0 && d.len() >= start + icmp::REQUEST_LEN && (v6 || (start >= 20 && d[9] == 1 && d[0] >> 4 == 4)) {
        assert_eq!(r, Ok(icmp::Received::Ours), "our reply behind a valid header: {d:?}");
    }
    if r == Ok(icmp::Received::Ours) {
        let m = &d[start..];
        let reply_type = if v6 { icmp::ECHO_REPLY_V6 } else { icmp::ECHO_REPLY_V4 };
        assert!(m.len() >= 8 && m[0] == reply_type && m[1] == 0 && m[4..8] == [0x12, 0x34, 0, 7], "{d:?}");
    }
}

/// Every reply in `raw`, and the error that ended them, if any.
fn replies(chunks: &[&[u8]]) -> Vec<Result<smtp::Reply, smtp::SmtpError>> {
    let mut r = smtp::Replies::new();
    let mut out = Vec::new();
    for c in chunks {
        let mut got = r.push(c);
        loop {
            match got {
                Ok(None) => break,
                Ok(Some(reply)) => out.push(Ok(reply)),
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
            got = r.push(&[]);
        }
    }
    out
}

/// Bytes 0..3: the piece sizes; the rest is what the server sent.
pub fn smtp(data: &[u8]) {
    let (sizes, raw) = data.split_at(data.len().min(3));
    let whole = replies(&[raw]);
    let piecewise = replies(&pieces(raw, sizes));
    assert_eq!(whole, piecewise);
    for r in whole.iter().flatten() {
        assert!(!r.lines.is_empty() && r.lines.len() <= smtp::MAX_LINES);
        assert!(r.lines.iter().all(|l| l.len() <= 3 * smtp::MAX_LINE));
        assert!((100..600).contains(&r.code));
    }
}

/// A tracked file's contents: the number is within what keepalived takes, a plain decimal
/// number reads as itself, and every status is a priority change in range or Fault.
pub fn track_file(data: &[u8]) {
    let v = track_file::value(data);
    if let Some(n) = v {
        assert!((i64::from(i32::MIN)..=i64::from(i32::MAX) + 1).contains(&n), "{n}");
    }
    let head = &data[..data.len().min(127)];
    if let Ok(text) = std::str::from_utf8(head)
        && let Ok(n) = text.trim_start_matches([' ', '\t', '\n', '\r']).parse::<i32>()
        && !text.trim_start().starts_with('0')
        && !text.trim_start().starts_with("+0")
        && !text.trim_start().starts_with("-0")
    {
        assert_eq!(v, Some(i64::from(n)), "{text:?}");
    }
    let weight = data.first().map_or(0, |&b| i32::from(b as i8));
    for reverse in [false, true] {
        let (up, w) = track_file::status(v.unwrap_or(0), weight, reverse);
        assert!((-253..=253).contains(&w), "{w}");
        assert!(up || w <= 0, "down with a positive change");
        assert!(!up || w >= 0, "up with a negative change");
    }
}

/// What /proc holds for a process: the first byte picks how it is matched, the rest is split
/// at the first 0xff into /proc/PID/stat and /proc/PID/cmdline. A name read from stat is what
/// lies between its parentheses; a match is only ever of the configured name.
pub fn proc_entry(data: &[u8]) {
    use track_process::{ParamMatch, ProcessSpec};
    let Some((&sel, rest)) = data.split_first() else { return };
    let (stat, cmdline) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Some((comm, _zombie)) = track_process::stat_comm(stat) else { return };
    assert!(comm.len() < stat.len() && !comm.contains(&b')'), "{stat:?}");
    let param_match = [ParamMatch::None, ParamMatch::Exact, ParamMatch::Initial, ParamMatch::Partial][usize::from(sel & 3)];
    let full_command = sel & 4 != 0 || param_match != ParamMatch::None;
    let spec = ProcessSpec { process: "haproxy".into(), params: (sel & 8 != 0).then(|| vec!["-f".into()]), param_match, full_command };
    if track_process::matches(&spec, comm, cmdline) {
        let name: &[u8] = if full_command { cmdline.split(|&b| b == 0).next().unwrap_or_default() } else { comm };
        assert!(name == b"haproxy" || name.starts_with(b"haproxy\0"), "{comm:?} {cmdline:?}");
    }
}
