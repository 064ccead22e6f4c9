//! keepalived's `track_file`: a number an operator (or a program) writes into a file, read as
//! keepalived reads it and turned into what the state machine takes from a track, an up/down
//! and a weight. Pure: the director reads the file and hands the bytes over.

/// The value of a tracked file's contents, as keepalived's `process_track_file` takes it:
/// `strtol(buf, NULL, 0)` over the first 127 bytes, so leading white space, a sign, a `0x`
/// (hexadecimal) or `0` (octal) prefix, digits up to the first that is not one; no digits at
/// all is 0 (an empty file too). None for what keepalived ignores ("Invalid number ... -
/// ignoring", the last value stands): a number out of `long` or of -2^31..=2^31.
pub fn value(contents: &[u8]) -> Option<i64> {
    let s = &contents[..contents.len().min(127)];
    // strtol stops at the NUL keepalived's read leaves in the buffer.
    let s = &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())];
    let mut i = s.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')).unwrap_or(s.len());
    let negative = s.get(i) == Some(&b'-');
    if matches!(s.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let digit = |b: u8, radix: u32| (b as char).to_digit(radix);
    let radix = match (s.get(i), s.get(i + 1), s.get(i + 2)) {
        // "0x" counts as a prefix only before a hex digit; otherwise the "0" is the number.
        (Some(b'0'), Some(b'x' | b'X'), Some(&d)) if digit(d, 16).is_some() => {
            i += 2;
            16
        }
        (Some(b'0'), ..) => 8,
        _ => 10,
    };
    let mut n: i64 = 0;
    for &b in &s[i..] {
        let Some(d) = digit(b, radix) else { break };
        // strtol saturates and sets ERANGE: keepalived ignores the read.
        n = n.checked_mul(i64::from(radix))?.checked_add(i64::from(d))?;
    }
    let n = if negative { -n } else { n };
    (i64::from(i32::MIN)..=i64::from(i32::MAX) + 1).contains(&n).then_some(n)
}

/// What a tracked file's value does to an instance, as keepalived's
/// `update_track_file_status`: `(up, weight)` for the state machine's track input, where a
/// track that is down with weight 0 is Fault.
///
/// - weight 0: a value other than 0 is Fault (with `reverse`, a value of 0 is);
/// - otherwise the priority changes by value x weight (negated with `reverse`), within
///   -254..=253; -254 or below is Fault.
pub fn status(value: i64, weight: i32, reverse: bool) -> (bool, i32) {
    if weight == 0 {
        return ((value == 0) != reverse, 0);
    }
    let sign = if reverse { -1 } else { 1 };
    let change = value.saturating_mul(i64::from(weight)).saturating_mul(sign).clamp(-254, 253) as i32;
    match change {
        -254 => (false, 0),
        c if c < 0 => (false, c),
        c => (true, c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_as_strtol_reads_them() {
        for (text, want) in [
            ("", Some(0)),
            ("\n", Some(0)),
            ("10\n", Some(10)),
            ("  -254", Some(-254)),
            ("+7 apples", Some(7)),
            ("0x1f", Some(31)),
            ("0X1F\n", Some(31)),
            ("0x", Some(0)),
            ("0xg", Some(0)),
            ("010", Some(8)),
            ("08", Some(0)),
            ("maintenance", Some(0)),
            ("-", Some(0)),
            ("2147483648", Some(2_147_483_648)),
            ("2147483649", None),
            ("-2147483648", Some(-2_147_483_648)),
            ("-2147483649", None),
            ("99999999999999999999999", None),
            ("5\0 9", Some(5)),
        ] {
            assert_eq!(value(text.as_bytes()), want, "{text:?}");
        }
        // Only the first 127 bytes are read.
        let long = format!("{}1", " ".repeat(127));
        assert_eq!(value(long.as_bytes()), Some(0));
        assert_eq!(value(&[0xff, 0xfe, b'3']), Some(0));
    }

    #[test]
    fn the_status_follows_keepalived() {
        // Weight 0: any value but 0 is Fault; reversed, 0 is.
        assert_eq!(status(0, 0, false), (true, 0));
        assert_eq!(status(3, 0, false), (false, 0));
        assert_eq!(status(-1, 0, false), (false, 0));
        assert_eq!(status(0, 0, true), (false, 0));
        assert_eq!(status(5, 0, true), (true, 0));
        // Weighted: value x weight, clamped; -254 is Fault.
        assert_eq!(status(10, 1, false), (true, 10));
        assert_eq!(status(10, -2, false), (false, -20));
        assert_eq!(status(10, 2, true), (false, -20));
        assert_eq!(status(0, 5, false), (true, 0));
        assert_eq!(status(1000, 1, false), (true, 253));
        assert_eq!(status(-254, 1, false), (false, 0));
        assert_eq!(status(-100, 3, false), (false, 0));
        assert_eq!(status(-253, 1, false), (false, -253));
        assert_eq!(status(i64::from(i32::MAX) + 1, 254, false), (true, 253));
        assert_eq!(status(i64::from(i32::MIN), 254, false), (false, 0));
    }
}
