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
                Ok(text) => match crate::policy::parse_route(&text) {
                    Ok(_) => out.push(s(&text)),
                    Err(e) => self.route_not_translated(a, &e, body),
                },
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
    }
}
