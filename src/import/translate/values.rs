//! keepalived's values: numbers, timers, booleans, addresses and ranges, script command
//! lines, and small helpers over the document being built (find, take, set a field).

use super::*;
use crate::import::lua::s;

pub(super) fn set_default(d: &mut CheckDefaults, k: &str, v: Value) {
    match k {
        "delay_loop" => d.delay_loop = Some(v),
        "connect_timeout" => d.connect_timeout = Some(v),
        "delay_before_retry" => d.delay_before_retry = Some(v),
        "warmup" => d.warmup = Some(v),
        _ => {}
    }
}

pub(super) fn find_field<'a>(body: &'a [Entry], key: &str) -> Option<&'a Field> {
    body.iter().find_map(|e| match e {
        Entry::Field(f) if f.key == key => Some(f),
        _ => None,
    })
}

pub(super) fn get<'a>(body: &'a [Entry], key: &str) -> Option<&'a Value> {
    find_field(body, key).map(|f| &f.value)
}

/// Add a list field, or extend the one already there (keepalived appends a repeated
/// virtual_ipaddress, unicast_peer, track_interface or track_script block to the first).
pub(super) fn append_list(body: &mut Vec<Entry>, entry: Entry) {
    let Entry::Field(Field { key, value: Value::List(more), .. }) = &entry else {
        body.push(entry);
        return;
    };
    for e in body.iter_mut() {
        if let Entry::Field(f) = e
            && &f.key == key
            && let Value::List(list) = &mut f.value
        {
            list.extend(more.iter().cloned());
            return;
        }
    }
    body.push(entry);
}

/// Remove a field, returning it.
pub(super) fn take(body: &mut Vec<Entry>, key: &str) -> Option<Field> {
    let i = body.iter().position(|e| matches!(e, Entry::Field(f) if f.key == key))?;
    match body.remove(i) {
        Entry::Field(f) => Some(f),
        Entry::Comment(_) => None,
    }
}

pub(super) fn set(body: &mut [Entry], key: &str, value: Value) {
    for e in body.iter_mut() {
        if let Entry::Field(f) = e
            && f.key == key
        {
            f.value = value;
            return;
        }
    }
}

pub(super) fn note_field(key: &str, value: Value, loc: &Loc, note: &str) -> Entry {
    Entry::Field(Field { key: key.into(), value, loc: Some(loc.clone()), note: Some(note.into()) })
}

pub(super) fn find_str(body: &[Entry], key: &str) -> Option<String> {
    body.iter().find_map(|e| match e {
        Entry::Field(Field { key: k, value: Value::Str(v), .. }) if k == key => Some(v.clone()),
        _ => None,
    })
}

pub(super) fn one_or_list(mut checks: Vec<Value>) -> Value {
    if checks.len() == 1 { checks.pop().unwrap() } else { Value::List(checks) }
}

/// The source lines of a statement and its block, for comments.
pub(super) fn node_lines(n: &Node, depth: usize) -> Vec<String> {
    let mut out = vec![format!("{}{}", "  ".repeat(depth), n.text)];
    if let Some(b) = &n.block {
        for c in b {
            out.extend(node_lines(c, depth + 1));
        }
        if !n.text.trim_end().ends_with('}') {
            out.push(format!("{}}}", "  ".repeat(depth)));
        }
    }
    out
}

pub(super) fn words(n: &Node) -> Vec<String> {
    let mut v = vec![n.key.clone()];
    v.extend(n.args.iter().cloned());
    v
}

pub(super) fn shown_all(words: &[String]) -> String {
    words.iter().map(|w| shown(w)).collect::<Vec<_>>().join(" ")
}

pub(super) fn arg(n: &Node, i: usize) -> R<&str> {
    n.args
        .get(i)
        .map(String::as_str)
        .ok_or_else(|| TranslateError::MissingArg(n.loc.clone(), shown(&n.key), format!("expected {} argument(s)", i + 1)))
}

pub(super) fn bad(n: &Node, v: &str, what: &str) -> TranslateError {
    TranslateError::BadValue(n.loc.clone(), shown(&n.key), shown(v), what.to_string())
}

pub(super) fn int(n: &Node, v: &str, min: i64, max: i64) -> R<i64> {
    match v.parse::<i64>() {
        Ok(x) if x >= min && x <= max => Ok(x),
        Ok(_) => Err(TranslateError::BadNumber(n.loc.clone(), shown(&n.key), shown(v), format!(" (range {min}..{max})"))),
        Err(_) => Err(TranslateError::BadNumber(n.loc.clone(), shown(&n.key), shown(v), String::new())),
    }
}

/// A keepalived <TIMER>: seconds, fractions allowed.
pub(super) fn timer(n: &Node, v: &str) -> R<Value> {
    if let Ok(i) = v.parse::<i64>()
        && i >= 0
    {
        return Ok(Value::Int(i));
    }
    match v.parse::<f64>() {
        Ok(f) if f >= 0.0 && f.is_finite() => {
            if f.fract() == 0.0 {
                Ok(Value::Int(f as i64))
            } else {
                Ok(Value::Num(format!("{f}")))
            }
        }
        _ => Err(TranslateError::BadNumber(n.loc.clone(), shown(&n.key), shown(v), " (seconds)".into())),
    }
}

pub(super) fn num_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Num(n) => n.clone(),
        _ => String::new(),
    }
}

/// keepalived <BOOL>: no argument means true.
pub(super) fn bool_arg(n: &Node) -> R<bool> {
    match n.args.first().map(|s| s.to_ascii_lowercase()) {
        None => Ok(true),
        Some(b) => match b.as_str() {
            "on" | "true" | "yes" => Ok(true),
            "off" | "false" | "no" => Ok(false),
            other => Err(bad(n, other, "on|off|true|false|yes|no")),
        },
    }
}

pub(super) fn ip(n: &Node, v: &str) -> R<IpAddr> {
    v.parse::<IpAddr>().map_err(|_| bad(n, v, "an IPv4 or IPv6 address"))
}

pub(super) fn host_port(addr: &str, port: i64) -> String {
    if addr.contains(':') { format!("[{addr}]:{port}") } else { format!("{addr}:{port}") }
}

/// `192.0.2.1-10`, `192.0.2.250-192.0.3.10`, `192.0.2.8/29` or a plain address.
pub(super) fn expand_range(n: &Node) -> R<Vec<IpAddr>> {
    let text = n.key.as_str();
    if let Some((lo, hi)) = text.split_once('-') {
        let lo_ip = ip(n, lo)?;
        let hi_ip = match hi.parse::<IpAddr>() {
            Ok(h) => h,
            Err(_) => {
                // Only the last part is given: replace the last octet / group.
                let sep = if lo.contains(':') { ':' } else { '.' };
                let base = &lo[..lo.rfind(sep).unwrap() + 1];
                ip(n, &format!("{base}{hi}"))?
            }
        };
        let (a, b) = match (lo_ip, hi_ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
            _ => return Err(bad(n, text, "a range within one address family")),
        };
        if b < a || b - a > 1024 {
            return Err(bad(n, text, "a range of at most 1024 addresses"));
        }
        Ok((a..=b)
            .map(|x| match lo_ip {
                IpAddr::V4(_) => IpAddr::V4((x as u32).into()),
                IpAddr::V6(_) => IpAddr::V6(x.into()),
            })
            .collect())
    } else if let Some((addr, mask)) = text.split_once('/') {
        // keepalived's alloc_vsg_entry (keepalived/check/check_data.c): `a.b.c.d/n` is every
        // address of the prefix, network and broadcast included; a mask of 0 or past the
        // address length, or host bits set, is refused ("Invalid netmask", "Address mask bits
        // not empty").
        let base = ip(n, addr)?;
        let (bits, value) = match base {
            IpAddr::V4(a) => (32u32, u32::from(a) as u128),
            IpAddr::V6(a) => (128u32, u128::from(a)),
        };
        let m = int(n, mask, 1, bits as i64)? as u32;
        let host_len = bits - m;
        let host = if host_len == 0 { 0 } else { u128::MAX >> (128 - host_len) };
        if value & host != 0 {
            return Err(bad(n, text, "a prefix without host bits set (keepalived skips it)"));
        }
        if host > 1023 {
            return Err(bad(n, text, "a range of at most 1024 addresses"));
        }
        Ok((value..=value | host)
            .map(|x| match base {
                IpAddr::V4(_) => IpAddr::V4((x as u32).into()),
                IpAddr::V6(_) => IpAddr::V6(x.into()),
            })
            .collect())
    } else {
        Ok(vec![ip(n, text)?])
    }
}

/// Split a keepalived script string into an argument vector the way keepalived 2.x does
/// (no shell): whitespace separates, single quotes group, backslash escapes.
pub fn argv(script: &str) -> Value {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = script.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(d) = chars.next() {
                    cur.push(d);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(s(&std::mem::take(&mut cur)));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(s(&cur));
    }
    Value::List(out)
}
