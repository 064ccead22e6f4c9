//! Firewall rules that would drop VRRP (protocol 112 to 224.0.0.18 / ff02::12) or traffic to
//! a VIP. Both nftables (`nft -j list ruleset`) and iptables (`iptables-save`) rules are
//! parsed into one small rule model and evaluated against probe packets: "would a new
//! packet like this reach the local stack?". A rule matching on something we cannot know
//! (source address, rate limits, unknown extensions) makes the answer "maybe".

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::Command;

use super::Finding;
pub use super::ruleset::*;
use crate::model::{Model, Vip as ServiceVip};
use crate::vrrp::packet::{MCAST_V4, MCAST_V6};

const CHECK: &str = "firewall";

/// A packet that must get through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub proto: u8,
    pub daddr: IpAddr,
    pub dport: Option<u16>,
    /// The input interface when known (VRRP: the instance's interface).
    pub iif: Option<String>,
    /// What it is, for the report ("VRRP of VI_1 on eth0").
    pub what: String,
}

/// The probes for a director's policy and for a real server's VIPs.
pub fn probes(model: Option<&Model>, rs_vips: &[IpAddr]) -> Vec<Probe> {
    let mut out = Vec::new();
    if let Some(m) = model {
        for i in &m.vrrp {
            let daddr = if i.unicast_peers.is_empty() {
                if i.is_ipv6() { IpAddr::V6(MCAST_V6) } else { IpAddr::V4(MCAST_V4) }
            } else if let Some(src) = i.unicast_src {
                src
            } else {
                continue;
            };
            out.push(Probe {
                proto: 112,
                daddr,
                dport: None,
                iif: Some(i.advert_interface().to_owned()),
                what: format!("VRRP (protocol 112) of {} to {daddr} on {}", i.name, i.advert_interface()),
            });
        }
        for s in &m.services {
            if let ServiceVip::Addr { protocol, addr } = s.vip {
                out.push(Probe {
                    proto: protocol.number() as u8,
                    daddr: addr.ip(),
                    dport: Some(addr.port()).filter(|p| *p != 0),
                    iif: None,
                    what: format!("{} {} of service {}", protocol.ipvsadm_name(), addr, s.name),
                });
            }
        }
    }
    for vip in rs_vips {
        out.push(Probe { proto: 6, daddr: *vip, dport: None, iif: None, what: format!("TCP to VIP {vip}") });
    }
    out
}

/// Three-valued match result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    Yes,
    No,
    Maybe,
}

impl Tri {
    fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            Tri::Maybe => Tri::Maybe,
        }
    }
    fn from(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }
}

/// The outcome for one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accept,
    Drop(String),
    MaybeDrop(String),
}

fn ip_in(addr: IpAddr, net: IpAddr, len: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn ip_key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// Does `v` contain the probe's value of `field`?
fn val_match(field: Field, v: &Val, p: &Probe) -> Tri {
    match v {
        Val::Unknown => Tri::Maybe,
        Val::Set(items) => {
            let mut r = Tri::No;
            for i in items {
                match val_match(field, i, p) {
                    Tri::Yes => return Tri::Yes,
                    Tri::Maybe => r = Tri::Maybe,
                    Tri::No => {}
                }
            }
            r
        }
        _ => match field {
            Field::Proto => match v {
                Val::Num(n) => Tri::from(*n == u64::from(p.proto)),
                Val::Str(s) => proto_number(s).map_or(Tri::Maybe, |n| Tri::from(n == p.proto)),
                Val::Range(a, b) => match (&**a, &**b) {
                    (Val::Num(a), Val::Num(b)) => Tri::from((*a..=*b).contains(&u64::from(p.proto))),
                    _ => Tri::Maybe,
                },
                _ => Tri::Maybe,
            },
            Field::Daddr => match v {
                Val::Str(s) => match s.parse::<IpAddr>() {
                    Ok(a) => Tri::from(a == p.daddr),
                    Err(_) => Tri::Maybe,
                },
                Val::Prefix(n, len) => Tri::from(ip_in(p.daddr, *n, *len)),
                Val::Range(a, b) => match (&**a, &**b) {
                    (Val::Str(a), Val::Str(b)) => match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
                        (Ok(a), Ok(b)) if a.is_ipv4() == p.daddr.is_ipv4() => Tri::from((ip_key(a)..=ip_key(b)).contains(&ip_key(p.daddr))),
                        (Ok(_), Ok(_)) => Tri::No,
                        _ => Tri::Maybe,
                    },
                    _ => Tri::Maybe,
                },
                _ => Tri::Maybe,
            },
            Field::Dport => {
                let Some(port) = p.dport else { return Tri::Maybe };
                let port = u64::from(port);
                match v {
                    Val::Num(n) => Tri::from(*n == port),
                    Val::Str(s) => s.parse::<u64>().map_or(Tri::Maybe, |n| Tri::from(n == port)),
                    Val::Range(a, b) => match (&**a, &**b) {
                        (Val::Num(a), Val::Num(b)) => Tri::from((*a..=*b).contains(&port)),
                        _ => Tri::Maybe,
                    },
                    _ => Tri::Maybe,
                }
            }
            Field::Iif => {
                let Some(iif) = &p.iif else { return Tri::Maybe };
                match v {
                    // iptables "eth+" and nft "eth*" are prefix wildcards.
                    Val::Str(s) if s.ends_with('+') || s.ends_with('*') => Tri::from(iif.starts_with(&s[..s.len() - 1])),
                    Val::Str(s) => Tri::from(s == iif),
                    _ => Tri::Maybe,
                }
            }
            // A probe is the first packet of a flow: conntrack state "new".
            Field::CtState => match v {
                Val::Str(s) => Tri::from(s.split(',').any(|x| x.trim().eq_ignore_ascii_case("new"))),
                _ => Tri::Maybe,
            },
            Field::Nfproto => match v {
                Val::Str(s) => Tri::from(matches!((s.as_str(), p.daddr), ("ipv4", IpAddr::V4(_)) | ("ipv6", IpAddr::V6(_)))),
                Val::Num(n) => Tri::from(matches!((n, p.daddr), (2, IpAddr::V4(_)) | (10, IpAddr::V6(_)))),
                _ => Tri::Maybe,
            },
            Field::Other => Tri::Maybe,
        },
    }
}

fn cond_match(c: &Cond, p: &Probe) -> Tri {
    // A header the packet does not have never matches, negated or not (nft adds an implicit
    // dependency on the protocol; `ip6 nexthdr` never matches an IPv4 packet).
    match c.needs_family {
        Some(4) if !p.daddr.is_ipv4() => return Tri::No,
        Some(6) if !p.daddr.is_ipv6() => return Tri::No,
        _ => {}
    }
    if c.needs_proto.is_some_and(|n| n != p.proto) {
        return Tri::No;
    }
    let r = val_match(c.field, &c.value, p);
    if c.negate { r.not() } else { r }
}

fn rule_match(r: &Rule, p: &Probe) -> Tri {
    let mut out = Tri::Yes;
    for c in &r.conds {
        match cond_match(c, p) {
            Tri::No => return Tri::No,
            Tri::Maybe => out = Tri::Maybe,
            Tri::Yes => {}
        }
    }
    out
}

/// What a chain did with the probe.
enum Flow {
    Accept,
    Drop(String),
    /// Fell off the end or returned.
    Continue,
}

struct Walk<'a> {
    chains: &'a HashMap<String, Chain>,
    /// A rule that might drop it, or an accept we could not be sure of before a drop.
    doubt: Option<String>,
    maybe_accept: Option<String>,
}

impl Walk<'_> {
    fn chain(&mut self, c: &Chain, p: &Probe, depth: u32) -> Flow {
        for r in &c.rules {
            let m = rule_match(r, p);
            if m == Tri::No {
                continue;
            }
            match (&r.verdict, m) {
                (Verdict::Accept, Tri::Yes) => return Flow::Accept,
                (Verdict::Accept, _) => {
                    self.maybe_accept.get_or_insert_with(|| r.text.clone());
                }
                (Verdict::Drop, Tri::Yes) => return Flow::Drop(r.text.clone()),
                (Verdict::Drop, _) => {
                    self.doubt.get_or_insert_with(|| r.text.clone());
                }
                (Verdict::Return, Tri::Yes) => return Flow::Continue,
                (Verdict::Return, _) => {}
                (Verdict::Jump(target), m) => {
                    // Bounded: rulesets with jump loops are rejected by the kernel anyway.
                    let Some(sub) = self.chains.get(target).filter(|_| depth < 16) else { continue };
                    match (self.chain(sub, p, depth + 1), m) {
                        (Flow::Continue, _) => {}
                        (Flow::Accept, Tri::Yes) => return Flow::Accept,
                        (Flow::Drop(t), Tri::Yes) => return Flow::Drop(t),
                        (Flow::Drop(t), _) => {
                            self.doubt.get_or_insert(t);
                        }
                        (Flow::Accept, _) => {
                            self.maybe_accept.get_or_insert_with(|| r.text.clone());
                        }
                    }
                }
                (Verdict::Continue, _) => {}
            }
        }
        Flow::Continue
    }
}

/// Run the probe through every base chain on the input path, in order. Pure.
pub fn evaluate(rs: &Ruleset, p: &Probe) -> Outcome {
    let mut bases: Vec<&BaseChain> = rs
        .bases
        .iter()
        .filter(|b| match b.family {
            Some(4) => p.daddr.is_ipv4(),
            Some(6) => p.daddr.is_ipv6(),
            _ => true,
        })
        .collect();
    bases.sort_by_key(|b| b.order);
    let empty = HashMap::new();
    let mut doubt = None;
    for b in bases {
        let mut w = Walk { chains: rs.chains.get(&b.table).unwrap_or(&empty), doubt: None, maybe_accept: None };
        let flow = w.chain(&b.chain, p, 0);
        let verdict = match flow {
            Flow::Accept => None,
            Flow::Drop(t) => Some(format!("{}: {t}", b.name)),
            Flow::Continue if b.chain.policy_drop => Some(format!("{}: policy drop", b.name)),
            Flow::Continue => None,
        };
        if let Some(d) = w.doubt.take() {
            doubt.get_or_insert(format!("{}: {d}", b.name));
        }
        if let Some(v) = verdict {
            // A drop after an accept we could not evaluate (e.g. on an unknown interface)
            // may never be reached.
            if let Some(a) = w.maybe_accept {
                return Outcome::MaybeDrop(format!("{v} (unless \"{a}\" accepts it first)"));
            }
            return Outcome::Drop(v);
        }
    }
    doubt.map_or(Outcome::Accept, Outcome::MaybeDrop)
}

/// The rulesets found on this host (or why none could be read).
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    pub rulesets: Vec<Ruleset>,
    /// Sources that could not be read, with the reason.
    pub errors: Vec<String>,
    /// Neither nft nor iptables-save is installed.
    pub no_tools: bool,
}

/// Decide from the rulesets. Pure.
pub fn check(probes: &[Probe], g: &Gathered) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in &g.errors {
        out.push(Finding::warn(CHECK, format!("could not read the firewall rules: {e}"), "run as root; install nftables or iptables"));
    }
    if g.no_tools {
        out.push(Finding::warn(
            CHECK,
            "neither nft nor iptables-save is installed: firewall rules not checked",
            "apt-get install nftables (or iptables), then run lvsd doctor again",
        ));
        return out;
    }
    let mut bad = false;
    for rs in &g.rulesets {
        for p in probes {
            match evaluate(rs, p) {
                Outcome::Accept => {}
                Outcome::Drop(why) => {
                    bad = true;
                    out.push(Finding::fail(CHECK, format!("{} drops {} ({why})", rs.source, p.what), fix_for(p)));
                }
                Outcome::MaybeDrop(why) => {
                    bad = true;
                    out.push(Finding::warn(CHECK, format!("{} may drop {} ({why})", rs.source, p.what), fix_for(p)));
                }
            }
        }
    }
    if !bad && g.errors.is_empty() {
        let sources: Vec<&str> = g.rulesets.iter().map(|r| r.source.as_str()).collect();
        let what = if sources.is_empty() { "no rules".to_owned() } else { sources.join(", ") };
        out.push(Finding::pass(CHECK, format!("{} checked ({what}): nothing drops VRRP or VIP traffic", probes.len())));
    }
    out
}

fn fix_for(p: &Probe) -> String {
    match (p.proto, p.daddr) {
        (112, IpAddr::V4(_)) => format!(
            "accept VRRP before the drop: nft insert rule inet filter input ip protocol vrrp ip daddr {} accept (iptables: iptables -I INPUT -p vrrp -d {} -j ACCEPT)",
            p.daddr, p.daddr
        ),
        (112, IpAddr::V6(_)) => format!(
            "accept VRRP before the drop: nft insert rule inet filter input ip6 nexthdr vrrp ip6 daddr {} accept (ip6tables -I INPUT -p vrrp -d {} -j ACCEPT)",
            p.daddr, p.daddr
        ),
        _ => {
            let port = p.dport.map(|d| format!(" dport {d}")).unwrap_or_default();
            let proto = proto_name(p.proto);
            format!(
                "accept the service before the drop: nft insert rule inet filter input ip{} daddr {} {proto}{port} accept",
                if p.daddr.is_ipv6() { "6" } else { "" },
                p.daddr
            )
        }
    }
}

fn proto_name(n: u8) -> &'static str {
    match n {
        6 => "tcp",
        17 => "udp",
        132 => "sctp",
        _ => "meta l4proto",
    }
}

// ---------------------------------------------------------------- gathering

fn run_tool(program: &str, args: &[&str]) -> Option<Result<String, String>> {
    match Command::new(program).args(args).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(Err(format!("{program}: {e}"))),
        Ok(o) if !o.status.success() => Some(Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim()))),
        Ok(o) => Some(Ok(String::from_utf8_lossy(&o.stdout).into_owned())),
    }
}

/// Read the rules: nftables when `nft` exists (it also shows iptables-nft rules), and
/// iptables-legacy tables, which nft cannot see; `iptables-save` when there is no nft.
pub fn gather() -> Gathered {
    let mut g = Gathered::default();
    let mut found = false;
    match run_tool("nft", &["-j", "list", "ruleset"]) {
        Some(Ok(out)) => {
            found = true;
            match parse_nft(&out) {
                Ok(rs) => g.rulesets.push(rs),
                Err(e) => g.errors.push(e),
            }
        }
        Some(Err(e)) => {
            found = true;
            g.errors.push(e);
        }
        None => {}
    }
    let tools: &[(&str, u8)] =
        if found { &[("iptables-legacy-save", 4), ("ip6tables-legacy-save", 6)] } else { &[("iptables-save", 4), ("ip6tables-save", 6)] };
    for (tool, fam) in tools {
        match run_tool(tool, &[]) {
            Some(Ok(out)) => {
                found = true;
                let rs = parse_iptables(&out, *fam);
                if !rs.bases.is_empty() {
                    g.rulesets.push(rs);
                }
            }
            Some(Err(e)) => {
                found = true;
                g.errors.push(e);
            }
            None => {}
        }
    }
    g.no_tools = !found;
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vrrp_probe() -> Probe {
        Probe { proto: 112, daddr: IpAddr::V4(MCAST_V4), dport: None, iif: Some("eth0".into()), what: "VRRP".into() }
    }
    fn web_probe() -> Probe {
        Probe { proto: 6, daddr: "192.0.2.10".parse().unwrap(), dport: Some(80), iif: None, what: "web".into() }
    }
    fn v6_vrrp() -> Probe {
        Probe { proto: 112, daddr: IpAddr::V6(MCAST_V6), dport: None, iif: Some("eth0".into()), what: "VRRP6".into() }
    }

    fn nft(rules: &str, policy: &str) -> Ruleset {
        let j = format!(
            r#"{{"nftables": [{{"metainfo": {{"version": "1.0.6"}}}},
            {{"table": {{"family": "inet", "name": "filter", "handle": 1}}}},
            {{"chain": {{"family": "inet", "table": "filter", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "{policy}"}}}},
            {{"chain": {{"family": "inet", "table": "filter", "name": "sub", "handle": 2}}}}
            {rules}]}}"#
        );
        parse_nft(&j).unwrap()
    }

    fn rule(chain: &str, expr: &str) -> String {
        format!(r#",{{"rule": {{"family": "inet", "table": "filter", "chain": "{chain}", "handle": 3, "expr": {expr}}}}}"#)
    }

    #[test]
    fn nft_empty_accepts() {
        let rs = parse_nft(r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}]}"#).unwrap();
        assert_eq!(evaluate(&rs, &vrrp_probe()), Outcome::Accept);
    }

    #[test]
    fn nft_drop_of_vrrp_by_protocol_name_and_number() {
        let by_name = rule(
            "input",
            r#"[{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}}, "right": "vrrp"}}, {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]"#,
        );
        let rs = nft(&by_name, "accept");
        assert!(matches!(evaluate(&rs, &vrrp_probe()), Outcome::Drop(t) if t.contains("ip protocol == vrrp drop")));
        assert_eq!(evaluate(&rs, &web_probe()), Outcome::Accept);
        // `ip protocol` never matches IPv6.
        assert_eq!(evaluate(&rs, &v6_vrrp()), Outcome::Accept);
        let by_num = rule("input", r#"[{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": 112}}, {"drop": null}]"#);
        let rs = nft(&by_num, "accept");
        assert!(matches!(evaluate(&rs, &vrrp_probe()), Outcome::Drop(_)));
        assert!(matches!(evaluate(&rs, &v6_vrrp()), Outcome::Drop(_)));
    }

    #[test]
    fn nft_policy_drop_with_accepts() {
        let accept_vrrp = rule(
            "input",
            r#"[{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}}, "right": "vrrp"}}, {"accept": null}]"#,
        );
        let accept_web = rule(
            "input",
            r#"[{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [22, 80]}}}, {"accept": null}]"#,
        );
        let lo = rule("input", r#"[{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": null}]"#);
        let rs = nft(&format!("{lo}{accept_vrrp}{accept_web}"), "drop");
        assert_eq!(evaluate(&rs, &vrrp_probe()), Outcome::Accept);
        assert_eq!(evaluate(&rs, &web_probe()), Outcome::Accept);
        let rs = nft(&format!("{lo}{accept_web}"), "drop");
        assert!(matches!(evaluate(&rs, &vrrp_probe()), Outcome::Drop(t) if t.contains("policy drop")));
        // VIP traffic may arrive on lo as far as we know: not certain.
        let rs = nft(&lo, "drop");
        assert!(matches!(evaluate(&rs, &web_probe()), Outcome::MaybeDrop(_)));
    }

    #[test]
    fn nft_ct_state_and_daddr_and_jump() {
        let est = rule(
            "input",
            r#"[{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]"#,
        );
        let jump = rule("input", r#"[{"jump": {"target": "sub"}}]"#);
        let drop_mcast = rule(
            "sub",
            r#"[{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"prefix": {"addr": "224.0.0.0", "len": 4}}}}, {"drop": null}]"#,
        );
        let rs = nft(&format!("{est}{jump}{drop_mcast}"), "accept");
        assert!(matches!(evaluate(&rs, &vrrp_probe()), Outcome::Drop(_)));
        assert_eq!(evaluate(&rs, &web_probe()), Outcome::Accept);
        let drop_other = rule(
            "input",
            r#"[{"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "192.0.2.10"}}, {"drop": null}]"#,
        );
        let rs = nft(&drop_other, "accept");
        assert_eq!(evaluate(&rs, &web_probe()), Outcome::Accept);
        assert!(matches!(evaluate(&rs, &vrrp_probe()), Outcome::Drop(_)));
    }

    #[test]
    fn nft_unknown_match_is_a_maybe() {
        let r = rule(
            "input",
            r#"[{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "198.51.100.9"}}, {"drop": null}]"#,
        );
        let rs = nft(&r, "accept");
        assert!(matches!(evaluate(&rs, &vrrp_probe()), Outcome::MaybeDrop(_)));
    }

    #[test]
    fn iptables_rules() {
        let save = "# Generated by iptables-save\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:LVS_IN - [0:0]\n-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -j LOG --log-prefix \"in: \"\n-A INPUT -m comment --comment \"no vrrp here\" -j LVS_IN\n-A LVS_IN -p vrrp -j DROP\nCOMMIT\n";
        let rs = parse_iptables(save, 4);
        assert!(matches!(evaluate(&rs, &vrrp_probe()), Outcome::Drop(t) if t.contains("-p vrrp -j DROP")));
        assert_eq!(evaluate(&rs, &web_probe()), Outcome::Accept);

        let save = "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp -m multiport --dports 22,80:81 -j ACCEPT\n-A INPUT -d 224.0.0.18/32 -p 112 -j ACCEPT\n-A INPUT -j LOG\nCOMMIT\n";
        let rs = parse_iptables(save, 4);
        assert_eq!(evaluate(&rs, &vrrp_probe()), Outcome::Accept);
        assert_eq!(evaluate(&rs, &web_probe()), Outcome::Accept);
        let ssh_only = "*filter\n:INPUT DROP [0:0]\n-A INPUT -i eth0 -p tcp --dport 22 -j ACCEPT\nCOMMIT\n";
        let rs = parse_iptables(ssh_only, 4);
        assert!(matches!(evaluate(&rs, &vrrp_probe()), Outcome::Drop(_)));
        assert!(matches!(evaluate(&rs, &web_probe()), Outcome::Drop(_)));
        // A negated source match is still unknowable.
        let src = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT ! -s 198.51.100.0/24 -p vrrp -j DROP\nCOMMIT\n";
        assert!(matches!(evaluate(&parse_iptables(src, 4), &vrrp_probe()), Outcome::MaybeDrop(_)));
    }

    #[test]
    fn check_findings() {
        let rs = parse_iptables("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p vrrp -j DROP\nCOMMIT\n", 4);
        let g = Gathered { rulesets: vec![rs], ..Gathered::default() };
        let f = check(&[vrrp_probe(), web_probe()], &g);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].level, super::super::Level::Fail);
        assert!(f[0].fix.as_ref().unwrap().contains("ip protocol vrrp"), "{f:?}");
        let g = Gathered { no_tools: true, ..Gathered::default() };
        assert_eq!(check(&[vrrp_probe()], &g)[0].level, super::super::Level::Warn);
        let g = Gathered::default();
        assert_eq!(check(&[vrrp_probe()], &g)[0].level, super::super::Level::Pass);
    }
}
