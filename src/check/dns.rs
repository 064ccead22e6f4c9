//! DNS query building and reply checking for the `dns` check (keepalived's DNS_CHECK): a
//! well-formed reply with our id, QR set, RCODE NOERROR and our question echoed. Pure.

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

/// Check a reply against the query we sent.
pub fn check_reply(query: &[u8], reply: &[u8]) -> Result<(), DnsError> {
    if reply.len() < 12 {
        return Err(DnsError::Short(reply.len()));
    }
    let (want, got) = (u16::from_be_bytes([query[0], query[1]]), u16::from_be_bytes([reply[0], reply[1]]));
    if want != got {
        return Err(DnsError::Id { got, want });
    }
    let flags = u16::from_be_bytes([reply[2], reply[3]]);
    if flags & 0x8000 == 0 {
        return Err(DnsError::NotResponse);
    }
    if flags & 0x0200 != 0 {
        return Err(DnsError::Truncated);
    }
    let rcode = (flags & 0x000f) as u8;
    if rcode != 0 {
        return Err(DnsError::Rcode(rcode));
    }
    // QDCOUNT 1 and the same question (names compare case-insensitively).
    let q = &query[12..];
    if reply[4..6] != [0, 1] || reply.len() < 12 + q.len() || !reply[12..12 + q.len()].eq_ignore_ascii_case(q) {
        return Err(DnsError::Question);
    }
    Ok(())
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
        assert_eq!(check_reply(&q, &reply(&q, 0x8180)), Ok(()));
        let mut lower = reply(&q, 0x8180);
        lower[13] = b'e';
        assert_eq!(check_reply(&q, &lower), Ok(()));
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
    }
}
