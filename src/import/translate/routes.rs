//! An instance's `virtual_routes` block (-> `routes`), each entry as keepalived 2.2.7 reads it
//! (vrrp/vrrp_iproute.c, alloc_route) and written in lvsd's `ip route` form.

use super::*;
use crate::import::lua::s;

impl Tx<'_> {
    /// The routes of a `virtual_routes` block; an entry with an option lvsd does not carry
    /// (multipath, metrics beyond `metric`, encapsulation...) is left as a comment with a
    /// warning rather than installed without it.
    pub(super) fn virtual_routes(&mut self, n: &Node, body: &mut Vec<Entry>) -> Vec<Value> {
        let mut out = Vec::new();
        for a in n.children() {
            let words: Vec<&str> = std::iter::once(a.key.as_str()).chain(a.args.iter().map(String::as_str)).collect();
            match route_words(&words) {
                Ok(text) => out.push(s(&text)),
                Err(why) => self.route_not_translated(a, &why, body),
            }
        }
        out
    }

    fn route_not_translated(&mut self, a: &Node, why: &str, body: &mut Vec<Entry>) {
        self.warn(&a.loc, format!("virtual_routes entry '{}' is not translated: {why}", a.text.trim()));
        body.push(Entry::Comment(format!("keepalived: {} (not translated: {why})", a.text.trim())));
    }
}

/// keepalived's route words as lvsd's route string, or why they cannot be.
fn route_words(words: &[&str]) -> Result<String, String> {
    let (mut kind, mut dst, mut via, mut dev, mut src) = (None, None, None, None, None);
    let (mut scope, mut table, mut metric) = (None, None, None);
    let mut i = 0;
    let value = |i: &mut usize, what: &str| -> Result<String, String> {
        *i += 1;
        words.get(*i).map(|w| w.to_string()).ok_or_else(|| format!("'{what}' needs a value"))
    };
    while i < words.len() {
        match words[i] {
            // The family follows from the addresses.
            "inet" | "inet6" => {}
            // keepalived's own tracking of the route's interface; lvsd puts a missing route back.
            "no_track" => {}
            "src" => src = Some(value(&mut i, "src")?),
            "via" | "gw" => {
                let mut v = value(&mut i, "via")?;
                if v == "inet" || v == "inet6" {
                    v = value(&mut i, "via")?;
                }
                via = Some(v);
            }
            "dev" | "oif" => dev = Some(value(&mut i, "dev")?),
            "scope" => scope = Some(value(&mut i, "scope")?),
            "table" => table = Some(value(&mut i, "table")?),
            "metric" | "priority" | "preference" => metric = Some(value(&mut i, "metric")?),
            "to" => {}
            "unicast" if dst.is_none() => kind = Some("unicast"),
            w @ ("blackhole" | "unreachable" | "prohibit") if dst.is_none() => kind = Some(w),
            w if dst.is_none() && (w == "default" || w.parse::<std::net::IpAddr>().is_ok() || w.contains('/')) => dst = Some(w.to_string()),
            w => return Err(format!("option '{w}' has no equivalent in lvsd's routes")),
        }
        i += 1;
    }
    let dst = dst.ok_or("no destination")?;
    check(&dst, kind, [&via, &src], dev.is_some(), [&scope, &table, &metric])?;
    let mut out = match kind {
        Some(k) if k != "unicast" => format!("{k} {dst}"),
        _ => dst,
    };
    for (k, v) in [("via", via), ("dev", dev), ("src", src), ("scope", scope), ("table", table), ("metric", metric)] {
        if let Some(v) = v {
            out.push_str(&format!(" {k} {v}"));
        }
    }
    Ok(out)
}

/// What lvsd's policy refuses in a route, refused here so that an import that succeeds passes
/// `lvsd check` (the importer is built without the policy engine; a test holds the two
/// together).
fn check(dst: &str, kind: Option<&str>, addrs: [&Option<String>; 2], dev: bool, rest: [&Option<String>; 3]) -> Result<(), String> {
    let ip = |w: &str| w.parse::<std::net::IpAddr>().map_err(|_| format!("'{w}' is not an IP address"));
    let (addr, len) = dst.split_once('/').unwrap_or((dst, ""));
    let v4 = match addr {
        "default" => addrs.iter().filter_map(|a| a.as_deref()).all(|a| !a.contains(':')),
        _ => ip(addr)?.is_ipv4(),
    };
    if !len.is_empty() && len.parse::<u8>().map_or(true, |l| l > if v4 { 32 } else { 128 }) {
        return Err(format!("bad prefix length '{len}'"));
    }
    for a in addrs.into_iter().flatten() {
        if ip(a)?.is_ipv4() != v4 {
            return Err(format!("{a} is not of the destination's family"));
        }
    }
    let [scope, table, metric] = rest;
    if scope.as_deref().is_some_and(|s| !["host", "link", "site", "global"].contains(&s)) {
        return Err(format!("unknown scope '{}'", scope.as_deref().unwrap_or_default()));
    }
    let table = table.as_deref().filter(|t| *t != "main");
    for n in [table, metric.as_deref()].into_iter().flatten() {
        if n.parse::<u32>().is_err() {
            return Err(format!("'{n}' is not a number"));
        }
    }
    let has_via = addrs[0].is_some();
    match kind {
        Some(k) if k != "unicast" && (has_via || dev) => Err(format!("a {k} route takes no via or dev")),
        None | Some("unicast") if !has_via && !dev => Err("no via or dev".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::route_words;

    #[test]
    fn keepalived_routes_become_lvsd_routes() {
        let w = |s: &str| route_words(&s.split_whitespace().collect::<Vec<_>>());
        assert_eq!(
            w("src 192.0.2.1 192.0.2.128/25 via 192.0.2.254 dev eth1").as_deref(),
            Ok("192.0.2.128/25 via 192.0.2.254 dev eth1 src 192.0.2.1")
        );
        assert_eq!(w("blackhole 198.51.100.1/32").as_deref(), Ok("blackhole 198.51.100.1/32"));
        assert_eq!(w("0.0.0.0/0 gw 192.0.2.1 table 100").as_deref(), Ok("0.0.0.0/0 via 192.0.2.1 table 100"));
        assert_eq!(w("to 2001:db8:1::/48 via inet6 2001:db8::1 no_track").as_deref(), Ok("2001:db8:1::/48 via 2001:db8::1"));
        assert_eq!(w("203.0.113.0/24 via 192.0.2.252 or 192.0.2.253"), Err("option 'or' has no equivalent in lvsd's routes".into()));
        assert_eq!(w("203.0.113.0/24 dev"), Err("'dev' needs a value".into()));
        assert_eq!(w("via 192.0.2.1"), Err("no destination".into()));
        assert_eq!(w("203.0.113.0/24 via 2001:db8::1"), Err("2001:db8::1 is not of the destination's family".into()));
        assert_eq!(w("203.0.113.0/33 dev eth0"), Err("bad prefix length '33'".into()));
        assert_eq!(w("blackhole 203.0.113.0/24 dev eth0"), Err("a blackhole route takes no via or dev".into()));
        assert_eq!(w("203.0.113.0/24 table x dev eth0"), Err("'x' is not a number".into()));
        assert_eq!(w("203.0.113.0/24"), Err("no via or dev".into()));
    }

    /// What the importer writes, lvsd's policy reads: every translation above passes its
    /// route parser.
    #[test]
    fn what_is_written_is_what_the_policy_reads() {
        for words in [
            "src 192.0.2.1 192.0.2.128/25 via 192.0.2.254 dev eth1",
            "blackhole 198.51.100.1/32",
            "0.0.0.0/0 gw 192.0.2.1 table 100",
            "to 2001:db8:1::/48 via inet6 2001:db8::1 no_track",
            "default via 2001:db8::1 metric 7",
            "198.51.100.0/24 dev eth0 scope link table main",
        ] {
            let text = route_words(&words.split_whitespace().collect::<Vec<_>>()).unwrap();
            assert!(crate::policy::parse_route(&text).is_ok(), "{words} -> {text}");
        }
    }
}
