//! The BIRD include file lvsd writes: pure text from the policy's `lvsd.bgp` and the wanted
//! announcements. `bird.conf` includes it (`include "/etc/bird/lvsd.conf";`).
//!
//! - The VIP routes live in tables of their own (`lvsd_vips4`, `lvsd_vips6`): they never
//!   reach the director's kernel table, and the sessions export exactly them.
//! - One `static` protocol per VIP address, so that one VIP is announced or withdrawn with
//!   `enable`/`disable` on the control socket, without touching the others or the sessions.
//!   Each is written `disabled` as it is wanted now: a `configure` keeps what runs (BIRD
//!   restarts a protocol whose `disabled` differs from its running state), and a BIRD that
//!   starts alone announces only what lvsd last wanted.
//! - One `bgp` protocol per neighbour, exporting the VIP table, importing nothing.

use super::announce::{Wanted, neighbor_protocol};
use crate::model::Bgp;
use std::fmt::Write;

pub const TABLE4: &str = "lvsd_vips4";
pub const TABLE6: &str = "lvsd_vips6";
/// The BFD protocol lvsd declares when a neighbour asks for BFD.
pub const BFD_PROTOCOL: &str = "lvsd_bfd";

fn table(v4: bool) -> &'static str {
    if v4 { TABLE4 } else { TABLE6 }
}

/// A string as a BIRD string literal (the policy allows no quote or backslash in it; these
/// are escaped anyway).
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Text for a `#` comment: a service name with a newline must not end the comment.
fn comment(s: &str) -> String {
    s.replace(|c: char| c.is_control(), " ")
}

/// The include file for `bgp` and the routes in `wanted`.
pub fn render(bgp: &Bgp, wanted: &[Wanted]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Written by lvsd; do not edit (it is rewritten on every change).");
    let _ = writeln!(o, "# Include it from bird.conf: include {};", quoted(&bgp.include.display().to_string()));
    if let Some(id) = bgp.router_id {
        let _ = writeln!(o, "router id {id};");
    }
    let v4 = wanted.iter().any(|w| w.addr.is_ipv4()) || bgp.neighbors.iter().any(|n| n.address.is_ipv4());
    let v6 = wanted.iter().any(|w| w.addr.is_ipv6()) || bgp.neighbors.iter().any(|n| n.address.is_ipv6());
    if v4 {
        let _ = writeln!(o, "ipv4 table {TABLE4};");
    }
    if v6 {
        let _ = writeln!(o, "ipv6 table {TABLE6};");
    }
    if bgp.neighbors.iter().any(|n| n.bfd) {
        let _ = writeln!(o, "protocol bfd {BFD_PROTOCOL} {{\n}}");
    }
    for w in wanted {
        let fam = if w.addr.is_ipv4() { "ipv4" } else { "ipv6" };
        let mut attrs = String::new();
        for (a, b) in &w.communities {
            let _ = write!(attrs, " bgp_community.add(({a},{b}));");
        }
        if let Some(m) = w.med {
            let _ = write!(attrs, " bgp_med = {m};");
        }
        let attrs = if attrs.is_empty() { String::new() } else { format!(" {{{attrs} }}") };
        let _ = writeln!(
            o,
            "# {}: {}\nprotocol static {} {{\n  disabled {};\n  {fam} {{ table {}; }};\n  route {} blackhole{attrs};\n}}",
            comment(&w.services.join(", ")),
            comment(&w.why),
            w.protocol(),
            if w.announce { "no" } else { "yes" },
            table(w.addr.is_ipv4()),
            w.net(),
        );
    }
    for n in &bgp.neighbors {
        let fam = if n.address.is_ipv4() { "ipv4" } else { "ipv6" };
        let _ = writeln!(o, "protocol bgp {} {{", neighbor_protocol(n.address));
        let _ = writeln!(o, "  local as {};", bgp.local_as);
        let _ = writeln!(o, "  neighbor {} as {};", n.address, n.asn);
        if let Some(s) = n.source {
            let _ = writeln!(o, "  source address {s};");
        }
        if let Some(ttl) = n.multihop {
            let _ = writeln!(o, "  multihop {ttl};");
        }
        match (n.bfd, n.bfd_interval_ms, n.bfd_multiplier) {
            (false, ..) => {}
            (true, None, None) => {
                let _ = writeln!(o, "  bfd on;");
            }
            (true, interval, mult) => {
                let mut opts = String::new();
                if let Some(ms) = interval {
                    let _ = write!(opts, " min rx interval {ms} ms; min tx interval {ms} ms;");
                }
                if let Some(m) = mult {
                    let _ = write!(opts, " multiplier {m};");
                }
                let _ = writeln!(o, "  bfd {{{opts} }};");
            }
        }
        if let Some(h) = n.hold {
            let _ = writeln!(o, "  hold time {h};");
        }
        if let Some(k) = n.keepalive {
            let _ = writeln!(o, "  keepalive time {k};");
        }
        if let Some(t) = n.connect_delay {
            let _ = writeln!(o, "  connect delay time {t};");
        }
        if let Some(t) = n.connect_retry {
            let _ = writeln!(o, "  connect retry time {t};");
        }
        if let Some((a, b)) = n.error_wait {
            let _ = writeln!(o, "  error wait time {a}, {b};");
        }
        if let Some(p) = &n.password {
            let _ = writeln!(o, "  password {};", quoted(p));
        }
        let _ = writeln!(o, "  {fam} {{ table {}; import none; export all; }};\n}}", table(n.address.is_ipv4()));
    }
    o
}

/// The file as it would be with every route in the same state: two renders with the same
/// shape need no `configure`, only `enable`/`disable`.
pub fn shape(bgp: &Bgp, wanted: &[Wanted]) -> String {
    let same: Vec<Wanted> = wanted.iter().map(|w| Wanted { announce: false, why: String::new(), ..w.clone() }).collect();
    render(bgp, &same)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Neighbor;

    pub(crate) fn bgp() -> Bgp {
        Bgp {
            socket: "/run/bird/bird.ctl".into(),
            include: "/etc/bird/lvsd.conf".into(),
            local_as: 65001,
            router_id: Some("192.0.2.2".parse().unwrap()),
            neighbors: vec![Neighbor {
                address: "192.0.2.1".parse().unwrap(),
                asn: 65000,
                bfd: true,
                bfd_interval_ms: None,
                bfd_multiplier: None,
                hold: Some(9),
                keepalive: Some(3),
                connect_retry: None,
                connect_delay: None,
                error_wait: None,
                source: None,
                multihop: None,
                password: None,
            }],
            communities: vec![],
            med: None,
            origin: Default::default(),
        }
    }

    pub(crate) fn route(ip: &str, announce: bool) -> Wanted {
        let addr: std::net::IpAddr = ip.parse().unwrap();
        Wanted {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
            announce,
            why: "web has quorum".into(),
            communities: vec![(65001, 1)],
            med: Some(10),
            services: vec!["web".into()],
        }
    }

    #[test]
    fn the_include_file() {
        let text = render(&bgp(), &[route("203.0.113.10", true), route("203.0.113.11", false)]);
        let want = "router id 192.0.2.2;\nipv4 table lvsd_vips4;\nprotocol bfd lvsd_bfd {\n}\n# web: web has quorum\n\
protocol static lvsd_vip_203_0_113_10 {\n  disabled no;\n  ipv4 { table lvsd_vips4; };\n  \
route 203.0.113.10/32 blackhole { bgp_community.add((65001,1)); bgp_med = 10; };\n}\n";
        assert!(text.contains(want), "{text}");
        assert!(text.contains("protocol static lvsd_vip_203_0_113_11 {\n  disabled yes;"), "{text}");
        assert!(
            text.contains(
                "protocol bgp lvsd_bgp_192_0_2_1 {\n  local as 65001;\n  neighbor 192.0.2.1 as 65000;\n  bfd on;\n  hold time 9;\n  keepalive time 3;\n  ipv4 { table lvsd_vips4; import none; export all; };\n}\n"
            ),
            "{text}"
        );
        assert!(!text.contains("ipv6"), "{text}");
        let mut evil = route("203.0.113.12", true);
        evil.services = vec!["x\nprotocol static y {}".into()];
        assert!(render(&bgp(), &[evil]).contains("# x protocol static y {}: "), "a name stays in its comment");
        // A toggle keeps the shape; a new VIP changes it.
        let a = shape(&bgp(), &[route("203.0.113.10", true)]);
        assert_eq!(a, shape(&bgp(), &[route("203.0.113.10", false)]));
        assert_ne!(a, shape(&bgp(), &[route("203.0.113.10", true), route("2001:db8::10", true)]));
        assert!(shape(&bgp(), &[route("2001:db8::10", true)]).contains("ipv6 table lvsd_vips6;"));
    }

    #[test]
    fn session_timers() {
        let mut b = bgp();
        let n = &mut b.neighbors[0];
        (n.bfd_interval_ms, n.bfd_multiplier) = (Some(300), Some(5));
        (n.connect_retry, n.connect_delay, n.error_wait) = (Some(5), Some(1), Some((2, 30)));
        let text = render(&b, &[]);
        let want = "  bfd { min rx interval 300 ms; min tx interval 300 ms; multiplier 5; };\n  hold time 9;\n  \
keepalive time 3;\n  connect delay time 1;\n  connect retry time 5;\n  error wait time 2, 30;\n";
        assert!(text.contains(want), "{text}");
        b.neighbors[0].bfd_interval_ms = None;
        assert!(render(&b, &[]).contains("  bfd { multiplier 5; };\n"));
        b.neighbors[0].bfd = false;
        assert!(!render(&b, &[]).contains("bfd"), "no BFD session and no protocol bfd");
    }
}
