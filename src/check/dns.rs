//! DNS query building and reply checking for the `dns` check (keepalived's DNS_CHECK): a
//! well-formed reply with our id, QR set, RCODE NOERROR and our question echoed. Pure: a
//! reply is parsed into a typed [`Reply`] (header and question, RFC 1035 §4.1) before it is
//! judged; the answers themselves are not needed and not read.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DnsError {
    #[error("unknown DNS type '{0}' (valid: A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, ANY)")]
    UnknownType(String),
    #[error("DNS name '{0}' is not valid (labels of 1..63 bytes, 255 in all)")]
    BadName(String),
    #[error("reply too short ({0} bytes)")]
    Short(usize),
    #[error("reply id {got} does not match query id {want}")]
    Id { got: u16, want: u16 },
    #[error("reply is not a response (QR bit clear)")]
    NotResponse,
    #[error("reply is truncated (TC)")]
    Truncated,
    #[error("reply has RCODE {0} ({name})", name = rcode_name(*.0))]
    Rcode(u8),
    #[error("reply does not echo the question")]
    Question,
    #[error("reply has a malformed question name")]
    QuestionName,
}

fn rcode_name(c: u8) -> &'static str {
    match c {
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "other",
    }
}

pub fn qtype(name: &str) -> Result<u16, DnsError> {
    Ok(match name.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "ANY" => 255,
        _ => return Err(DnsError::UnknownType(name.to_string())),
    })
}

/// The question section: name in labels, type, class IN.
fn question(name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let bad = || DnsError::BadName(name.to_string());
    let mut q = Vec::with_capacity(name.len() + 6);
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        if label.len() > 63 {
            return Err(bad());
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    if q.len() > 255 {
        return Err(bad());
    }
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    Ok(q)
}

/// A standard query with recursion desired, as keepalived sends.
pub fn query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let mut m = Vec::with_capacity(12 + name.len() + 6);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1
    m.extend_from_slice(&question(name, qtype)?);
    Ok(m)
}

/// The fixed header of a message (RFC 1035 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    /// QR: the message is a response.
    pub response: bool,
    pub opcode: u8,
    /// TC: the reply was cut to fit the datagram.
    pub truncated: bool,
    pub rcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

/// The first question of a message, its name as it was sent (length-prefixed labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Vec<u8>,
    pub qtype: u16,
    pub qclass: u16,
}

/// A reply as far as a check reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub header: Header,
    /// The first question, when QDCOUNT is not 0.
    pub question: Option<Question>,
}

const HEADER_LEN: usize = 12;
/// RFC 1035 §2.3.4: a name is at most 255 bytes, labels at most 63.
const MAX_NAME: usize = 255;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub fn header(msg: &[u8]) -> Result<Header, DnsError> {
    if msg.len() < HEADER_LEN {
        return Err(DnsError::Short(msg.len()));
    }
    let flags = be16(msg, 2);
    Ok(Header {
        id: be16(msg, 0),
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0x0f) as u8,
        truncated: flags & 0x0200 != 0,
        rcode: (flags & 0x000f) as u8,
        qdcount: be16(msg, 4),
        ancount: be16(msg, 6),
        nscount: be16(msg, 8),
        arcount: be16(msg, 10),
    })
}

/// The question at `at`: a name of plain labels (the first name of a message has nothing
/// before it to point to, so a compression pointer there is malformed), type and class.
fn question_at(msg: &[u8], at: usize) -> Result<Question, DnsError> {
    let mut i = at;
    loop {
        let len = *msg.get(i).ok_or(DnsError::QuestionName)? as usize;
        if len > 63 {
            return Err(DnsError::QuestionName);
        }
        i += 1 + len;
        if i - at > MAX_NAME {
            return Err(DnsError::QuestionName);
        }
        if len == 0 {
            break;
        }
    }
    if msg.len() < i + 4 {
        return Err(DnsError::QuestionName);
    }
    Ok(Question { name: msg[at..i].to_vec(), qtype: be16(msg, i), qclass: be16(msg, i + 2) })
}

/// Parse a reply: the header, and the first question if there is one.
pub fn parse_reply(msg: &[u8]) -> Result<Reply, DnsError> {
    let header = header(msg)?;
    let question = match header.qdcount {
        0 => None,
        _ => Some(question_at(msg, HEADER_LEN)?),
    };
    Ok(Reply { header, question })
}

/// Check a reply against the query we sent (built by [`query`]).
pub fn check_reply(query: &[u8], reply: &[u8]) -> Result<Reply, DnsError> {
    let want = header(query)?;
    let h = header(reply)?;
    // The id first: a stray datagram is told apart from a bad reply.
    if h.id != want.id {
        return Err(DnsError::Id { got: h.id, want: want.id });
    }
    if !h.response {
        return Err(DnsError::NotResponse);
    }
    if h.truncated {
        return Err(DnsError::Truncated);
    }
    if h.rcode != 0 {
        return Err(DnsError::Rcode(h.rcode));
    }
    let r = parse_reply(reply)?;
    // QDCOUNT 1 and the same question (names compare case-insensitively, RFC 1035 §2.3.3).
    let q = question_at(query, HEADER_LEN)?;
    match &r.question {
        Some(got) if h.qdcount == 1 && got.qtype == q.qtype && got.qclass == q.qclass && got.name.eq_ignore_ascii_case(&q.name) => Ok(r),
        _ => Err(DnsError::Question),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_bytes() {
        let q = query(0x1234, "example.org", qtype("a").unwrap()).unwrap();
        let want = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03org\x00\x00\x01\x00\x01";
        assert_eq!(q, want);
        // the root
        let q = query(1, ".", 6).unwrap();
        assert_eq!(&q[12..], b"\x00\x00\x06\x00\x01");
    }

    fn reply(q: &[u8], flags: u16) -> Vec<u8> {
        let mut r = q.to_vec();
        r[2..4].copy_from_slice(&flags.to_be_bytes());
        r
    }

    #[test]
    fn replies() {
        let q = query(7, "Example.org", 1).unwrap();
        let ok = check_reply(&q, &reply(&q, 0x8180)).unwrap();
        assert_eq!((ok.header.id, ok.header.rcode, ok.header.ancount), (7, 0, 0));
        assert_eq!(ok.question.unwrap(), Question { name: b"\x07Example\x03org\x00".to_vec(), qtype: 1, qclass: 1 });
        let mut lower = reply(&q, 0x8180);
        lower[13] = b'e';
        assert!(check_reply(&q, &lower).is_ok());
        assert_eq!(check_reply(&q, &reply(&q, 0x8183)), Err(DnsError::Rcode(3)));
        assert_eq!(check_reply(&q, &reply(&q, 0x0100)), Err(DnsError::NotResponse));
        assert_eq!(check_reply(&q, &reply(&q, 0x8380)), Err(DnsError::Truncated));
        let mut other = reply(&q, 0x8180);
        other[1] = 8;
        assert_eq!(check_reply(&q, &other), Err(DnsError::Id { got: 8, want: 7 }));
        assert_eq!(check_reply(&q, &q[..5]), Err(DnsError::Short(5)));
        let mut wrong = reply(&q, 0x8180);
        wrong[14] = b'z';
        assert_eq!(check_reply(&q, &wrong), Err(DnsError::Question));
        assert!(matches!(qtype("bogus"), Err(DnsError::UnknownType(_))));
        assert!(query(1, &"a".repeat(64), 1).is_err());
        // a reply whose question is cut, or whose name runs past the message or 255 bytes
        let mut cut = reply(&q, 0x8180);
        cut.truncate(20);
        assert_eq!(check_reply(&q, &cut), Err(DnsError::QuestionName));
        let mut pointer = reply(&q, 0x8180);
        pointer[12] = 0xc0;
        assert_eq!(check_reply(&q, &pointer), Err(DnsError::QuestionName));
        let mut long = reply(&q, 0x8180)[..12].to_vec();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse_reply(&long), Err(DnsError::QuestionName));
        // no question at all
        let mut none = reply(&q, 0x8180)[..12].to_vec();
        none[5] = 0;
        assert_eq!(parse_reply(&none).unwrap().question, None);
        assert_eq!(check_reply(&q, &none), Err(DnsError::Question));
    }
}
