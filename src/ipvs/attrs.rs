//! Netlink attributes (TLVs): a writer that lays them out as libnl does, and a reader that
//! never trusts lengths and ignores the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits (the IPVS
//! kernel code does not set NLA_F_NESTED in its replies).

use thiserror::Error;

pub const NLA_F_NESTED: u16 = 0x8000;
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);
const NLA_HDRLEN: usize = 4;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("attribute {what} has length {len}, expected {expected}")]
    BadLength { what: &'static str, len: usize, expected: usize },
    #[error("missing attribute {0}")]
    Missing(&'static str),
    #[error("bad value for {what}: {value}")]
    BadValue { what: &'static str, value: u64 },
    #[error("attribute {0} is not a NUL-terminated UTF-8 string")]
    BadString(&'static str),
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends attributes to a buffer, 4-byte aligned, zero padded.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }
    pub fn bytes(&mut self, ty: u16, data: &[u8]) {
        let len = NLA_HDRLEN + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
    }
    pub fn u8(&mut self, ty: u16, v: u8) {
        self.bytes(ty, &[v]);
    }
    pub fn u16(&mut self, ty: u16, v: u16) {
        self.bytes(ty, &v.to_ne_bytes());
    }
    /// A u16 in network byte order (ports), as libipvs puts it: no NLA_F_NET_BYTEORDER bit.
    pub fn be16(&mut self, ty: u16, v: u16) {
        self.bytes(ty, &v.to_be_bytes());
    }
    pub fn u32(&mut self, ty: u16, v: u32) {
        self.bytes(ty, &v.to_ne_bytes());
    }
    pub fn u64(&mut self, ty: u16, v: u64) {
        self.bytes(ty, &v.to_ne_bytes());
    }
    /// A NUL-terminated string (NLA_PUT_STRING).
    pub fn string(&mut self, ty: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.bytes(ty, &v);
    }
    /// A nested attribute. libnl 3.7 (what ipvsadm links) sets NLA_F_NESTED; so do we.
    pub fn nested(&mut self, ty: u16, f: impl FnOnce(&mut Writer)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        f(self);
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }
}

/// One attribute: its type (flag bits masked off) and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    pub ty: u16,
    pub data: &'a [u8],
}

/// Attributes in a buffer, every length checked once by [`parse`], then read in place: no
/// allocation however many a reply carries (a dump's thousands of real servers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs<'a>(&'a [u8]);

impl<'a> Attrs<'a> {
    pub fn iter(&self) -> impl Iterator<Item = Attr<'a>> + use<'a> {
        let mut buf = self.0;
        std::iter::from_fn(move || {
            // Lengths were checked by `parse`; `get` keeps a bad slice from panicking anyway.
            let len = u16::from_ne_bytes([*buf.first()?, *buf.get(1)?]) as usize;
            let ty = u16::from_ne_bytes([*buf.get(2)?, *buf.get(3)?]) & NLA_TYPE_MASK;
            let data = buf.get(NLA_HDRLEN..len)?;
            buf = &buf[align4(len).min(buf.len())..];
            Some(Attr { ty, data })
        })
    }
    pub fn len(&self) -> usize {
        self.iter().count()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, i: usize) -> Option<Attr<'a>> {
        self.iter().nth(i)
    }
}

/// Check a buffer of attributes. Trailing bytes shorter than a header are an error.
pub fn parse(buf: &[u8]) -> Result<Attrs<'_>, DecodeError> {
    let mut rest = buf;
    while !rest.is_empty() {
        if rest.len() < NLA_HDRLEN {
            return Err(DecodeError::Truncated("attribute header"));
        }
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        if len < NLA_HDRLEN || len > rest.len() {
            return Err(DecodeError::Truncated("attribute"));
        }
        rest = &rest[align4(len).min(rest.len())..];
    }
    Ok(Attrs(buf))
}

/// Look up the last attribute of a type (the kernel's nla_parse keeps the last one too).
pub fn find<'a>(attrs: &Attrs<'a>, ty: u16) -> Option<Attr<'a>> {
    attrs.iter().filter(|a| a.ty == ty).last()
}

impl<'a> Attr<'a> {
    fn exact<const N: usize>(&self, what: &'static str) -> Result<[u8; N], DecodeError> {
        // Accept longer payloads (padding), reject shorter ones.
        if self.data.len() < N {
            return Err(DecodeError::BadLength { what, len: self.data.len(), expected: N });
        }
        let mut a = [0u8; N];
        a.copy_from_slice(&self.data[..N]);
        Ok(a)
    }
    pub fn u8(&self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.exact::<1>(what)?[0])
    }
    pub fn u16(&self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_ne_bytes(self.exact(what)?))
    }
    pub fn be16(&self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.exact(what)?))
    }
    pub fn u32(&self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_ne_bytes(self.exact(what)?))
    }
    pub fn u64(&self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_ne_bytes(self.exact(what)?))
    }
    pub fn string(&self, what: &'static str) -> Result<String, DecodeError> {
        let d = match self.data.iter().position(|&b| b == 0) {
            Some(i) => &self.data[..i],
            None => self.data,
        };
        std::str::from_utf8(d).map(str::to_string).map_err(|_| DecodeError::BadString(what))
    }
    pub fn nested(&self) -> Result<Attrs<'a>, DecodeError> {
        parse(self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_pads_and_nests() {
        let mut w = Writer::new();
        w.nested(1, |w| {
            w.u16(1, 2);
            w.string(6, "wrr");
        });
        assert_eq!(w.buf, [0x14, 0, 0x01, 0x80, 6, 0, 1, 0, 2, 0, 0, 0, 8, 0, 6, 0, b'w', b'r', b'r', 0]);
        let top = parse(&w.buf).unwrap();
        assert_eq!(top.len(), 1);
        assert_eq!(top.get(0).unwrap().ty, 1);
        let inner = top.get(0).unwrap().nested().unwrap();
        assert_eq!(find(&inner, 1).unwrap().u16("af").unwrap(), 2);
        assert_eq!(find(&inner, 6).unwrap().string("sched").unwrap(), "wrr");
    }

    #[test]
    fn nested_without_flag_and_bad_lengths() {
        // The kernel's replies carry nests without NLA_F_NESTED.
        let buf = [8, 0, 1, 0, 4, 0, 2, 0];
        let top = parse(&buf).unwrap();
        assert_eq!(top.get(0).unwrap().nested().unwrap().get(0).unwrap().ty, 2);
        assert_eq!(parse(&[8, 0, 1]), Err(DecodeError::Truncated("attribute header")));
        assert_eq!(parse(&[9, 0, 1, 0, 0, 0, 0, 0]), Err(DecodeError::Truncated("attribute")));
        let a = Attr { ty: 1, data: &[1, 2] };
        assert!(matches!(a.u32("x"), Err(DecodeError::BadLength { .. })));
    }
}
