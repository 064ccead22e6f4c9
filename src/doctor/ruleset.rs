//! The rules of a firewall as the doctor reads them (src/doctor/firewall.rs evaluates them):
//! `nft -j list ruleset` and `iptables-save` parsed into one small model. Pure: what the
//! programs printed in, the model out. Rule comments and set names are the operator's text,
//! so nothing here trusts its input (fuzz target `firewall_rules`).

use std::collections::HashMap;
use std::net::IpAddr;

/// A value a rule compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Num(u64),
    Str(String),
    Prefix(IpAddr, u8),
    Range(Box<Val>, Box<Val>),
    Set(Vec<Val>),
    /// A named set or anything we cannot evaluate.
    Unknown,
}

/// What a condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Which IP version the packet is (`meta nfproto`, or an `ip`/`ip6` header match).
    Nfproto,
    Proto,
    Daddr,
    Dport,
    Iif,
    CtState,
    /// Something we cannot know for a hypothetical packet (source address, limits, ...).
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub field: Field,
    pub negate: bool,
    pub value: Val,
    /// The header this condition needs: 4 (ip), 6 (ip6), or a transport protocol number.
    pub needs_family: Option<u8>,
    pub needs_proto: Option<u8>,
}

impl Cond {
    pub fn new(field: Field, value: Val) -> Cond {
        Cond { field, negate: false, value, needs_family: None, needs_proto: None }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Accept,
    Drop,
    Return,
    Jump(String),
    /// No verdict (counter, log): the rule does not decide.
    Continue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub conds: Vec<Cond>,
    pub verdict: Verdict,
    /// The rule as the operator wrote it (or close to it), for the report.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chain {
    pub rules: Vec<Rule>,
    /// Base chains only: the hook's policy (true = drop).
    pub policy_drop: bool,
}

/// A base chain on the input path and the table it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseChain {
    /// "nft inet filter input", "iptables filter INPUT".
    pub name: String,
    /// 4, 6 or None for both (nft inet).
    pub family: Option<u8>,
    /// Evaluation order: prerouting before input, then by priority.
    pub order: (u8, i64),
    pub chain: Chain,
    /// Chains reachable by jump, in the same table.
    pub table: String,
}

/// A ruleset from one source.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ruleset {
    pub source: String,
    pub bases: Vec<BaseChain>,
    /// table -> chain -> chain
    pub chains: HashMap<String, HashMap<String, Chain>>,
}

/// A protocol by name (as nft and iptables print them) or number.
pub fn proto_number(s: &str) -> Option<u8> {
    Some(match s {
        "vrrp" => 112,
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        "icmp" => 1,
        "icmpv6" | "ipv6-icmp" => 58,
        "esp" => 50,
        "ah" => 51,
        "gre" => 47,
        "ipip" | "ipencap" => 4,
        _ => return s.parse().ok(),
    })
}

// ---------------------------------------------------------------- nftables JSON

/// Parse `nft -j list ruleset`.
pub fn parse_nft(json: &str) -> Result<Ruleset, String> {
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("nft JSON: {e}"))?;
    let items = doc["nftables"].as_array().ok_or("nft JSON: no \"nftables\" array")?;
    let mut rs = Ruleset { source: "nftables".into(), ..Ruleset::default() };
    // (table, chain, display name, family, order, policy drop): filled in once all rules are read.
    type Pending = (String, String, String, Option<u8>, (u8, i64), bool);
    let mut base_info: Vec<Pending> = Vec::new();
    for it in items {
        if let Some(c) = it.get("chain") {
            let family = c["family"].as_str().unwrap_or("");
            let table = format!("{family} {}", c["table"].as_str().unwrap_or(""));
            let name = c["name"].as_str().unwrap_or("").to_owned();
            rs.chains.entry(table.clone()).or_default().entry(name.clone()).or_default();
            let hook = c["hook"].as_str().unwrap_or("");
            let fam = match family {
                "ip" => Some(Some(4)),
                "ip6" => Some(Some(6)),
                "inet" => Some(None),
                _ => None,
            };
            let stage = match hook {
                "prerouting" => Some(0),
                "input" => Some(1),
                _ => None,
            };
            // NAT chains rewrite, they do not filter.
            if let (Some(fam), Some(stage)) = (fam, stage)
                && c["type"].as_str() != Some("nat")
            {
                let prio = c["prio"].as_i64().unwrap_or(0);
                let drop = c["policy"].as_str() == Some("drop");
                base_info.push((table, name, format!("{family} {} {hook}", c["table"].as_str().unwrap_or("")), fam, (stage, prio), drop));
            }
        } else if let Some(r) = it.get("rule") {
            let family = r["family"].as_str().unwrap_or("");
            let table = format!("{family} {}", r["table"].as_str().unwrap_or(""));
            let chain = r["chain"].as_str().unwrap_or("").to_owned();
            let rule = nft_rule(r["expr"].as_array().map(Vec::as_slice).unwrap_or(&[]));
            rs.chains.entry(table).or_default().entry(chain).or_default().rules.push(rule);
        }
    }
    for (table, chain, name, family, order, drop) in base_info {
        let mut c = rs.chains[&table][&chain].clone();
        c.policy_drop = drop;
        rs.bases.push(BaseChain { name: format!("nft {name}"), family, order, chain: c, table });
    }
    Ok(rs)
}

fn nft_val(v: &serde_json::Value) -> Val {
    use serde_json::Value as J;
    match v {
        J::Number(n) => n.as_u64().map_or(Val::Unknown, Val::Num),
        J::String(s) if s.starts_with('@') => Val::Unknown,
        J::String(s) => Val::Str(s.clone()),
        J::Array(a) => Val::Set(a.iter().map(nft_val).collect()),
        J::Object(o) => {
            if let Some(s) = o.get("set") {
                match s {
                    J::Array(a) => Val::Set(a.iter().map(nft_val).collect()),
                    other => nft_val(other),
                }
            } else if let Some(p) = o.get("prefix") {
                match (p["addr"].as_str().and_then(|a| a.parse().ok()), p["len"].as_u64()) {
                    (Some(a), Some(l)) => Val::Prefix(a, l as u8),
                    _ => Val::Unknown,
                }
            } else if let Some(J::Array(r)) = o.get("range") {
                if r.len() == 2 { Val::Range(Box::new(nft_val(&r[0])), Box::new(nft_val(&r[1]))) } else { Val::Unknown }
            } else {
                Val::Unknown
            }
        }
        _ => Val::Unknown,
    }
}

/// The field, and the header it needs, of a match's left side.
fn nft_field(left: &serde_json::Value) -> (Field, Option<u8>, Option<u8>) {
    if let Some(p) = left.get("payload") {
        let proto = p["protocol"].as_str().unwrap_or("");
        let field = p["field"].as_str().unwrap_or("");
        return match (proto, field) {
            ("ip", "protocol") => (Field::Proto, Some(4), None),
            ("ip6", "nexthdr") => (Field::Proto, Some(6), None),
            ("ip", "daddr") => (Field::Daddr, Some(4), None),
            ("ip6", "daddr") => (Field::Daddr, Some(6), None),
            ("ip", _) => (Field::Other, Some(4), None),
            ("ip6", _) => (Field::Other, Some(6), None),
            ("th", "dport") => (Field::Dport, None, None),
            (l4, "dport") => (Field::Dport, None, proto_number(l4)),
            (l4, _) => (Field::Other, None, proto_number(l4)),
        };
    }
    if let Some(m) = left.get("meta") {
        return match m["key"].as_str().unwrap_or("") {
            "l4proto" => (Field::Proto, None, None),
            "nfproto" => (Field::Nfproto, None, None),
            "iifname" | "iif" => (Field::Iif, None, None),
            _ => (Field::Other, None, None),
        };
    }
    if left.get("ct").is_some_and(|c| c["key"] == "state") {
        return (Field::CtState, None, None);
    }
    (Field::Other, None, None)
}

fn nft_rule(exprs: &[serde_json::Value]) -> Rule {
    let mut r = Rule { conds: Vec::new(), verdict: Verdict::Continue, text: String::new() };
    let mut words = Vec::new();
    for e in exprs {
        let Some((k, v)) = e.as_object().and_then(|o| o.iter().next()) else { continue };
        match k.as_str() {
            "match" => {
                let (field, needs_family, needs_proto) = nft_field(&v["left"]);
                let op = v["op"].as_str().unwrap_or("==");
                let value = nft_val(&v["right"]);
                words.push(format!("{} {op} {}", short(&v["left"]), short(&v["right"])));
                r.conds.push(Cond { field, negate: op == "!=", value, needs_family, needs_proto });
            }
            "accept" => {
                r.verdict = Verdict::Accept;
                words.push("accept".into());
            }
            "drop" | "reject" => {
                r.verdict = Verdict::Drop;
                words.push(k.clone());
            }
            "return" => r.verdict = Verdict::Return,
            "jump" | "goto" => {
                let t = v["target"].as_str().unwrap_or("").to_owned();
                words.push(format!("{k} {t}"));
                r.verdict = Verdict::Jump(t);
            }
            // A rate limit or quota decides per packet: we cannot know.
            "limit" | "quota" => {
                words.push(k.clone());
                r.conds.push(Cond::new(Field::Other, Val::Unknown));
            }
            "counter" | "log" | "comment" => {}
            // xt (iptables-nft compat) matches and anything else we do not model.
            _ => {
                words.push(k.clone());
                r.conds.push(Cond::new(Field::Other, Val::Unknown));
            }
        }
    }
    r.text = words.join(" ");
    r
}

/// A short rendering of a JSON expression for rule text.
fn short(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::String(s) => s.clone(),
        J::Number(n) => n.to_string(),
        J::Object(o) => {
            if let Some(p) = o.get("payload") {
                format!("{} {}", p["protocol"].as_str().unwrap_or(""), p["field"].as_str().unwrap_or(""))
            } else if let Some(m) = o.get("meta") {
                format!("meta {}", m["key"].as_str().unwrap_or(""))
            } else if let Some(c) = o.get("ct") {
                format!("ct {}", c["key"].as_str().unwrap_or(""))
            } else if let Some(p) = o.get("prefix") {
                format!("{}/{}", p["addr"].as_str().unwrap_or(""), p["len"])
            } else {
                v.to_string()
            }
        }
        _ => v.to_string(),
    }
}

// ---------------------------------------------------------------- iptables-save

/// Split a line into words, keeping "quoted strings" together.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for ch in line.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn ipt_addr(s: &str) -> Val {
    let items: Vec<Val> = s
        .split(',')
        .map(|a| match a.split_once('/') {
            Some((ip, len)) => match (ip.parse::<IpAddr>(), len.parse::<u8>()) {
                (Ok(ip), Ok(len)) => Val::Prefix(ip, len),
                _ => Val::Unknown,
            },
            None => Val::Str(a.to_owned()),
        })
        .collect();
    if items.len() == 1 { items.into_iter().next().unwrap() } else { Val::Set(items) }
}

fn ipt_ports(s: &str) -> Val {
    Val::Set(
        s.split(',')
            .map(|p| match p.split_once(':') {
                Some((a, b)) => match (a.parse::<u64>(), b.parse::<u64>()) {
                    (Ok(a), Ok(b)) => Val::Range(Box::new(Val::Num(a)), Box::new(Val::Num(b))),
                    _ => Val::Unknown,
                },
                None => p.parse().map_or(Val::Unknown, Val::Num),
            })
            .collect(),
    )
}

/// Parse `iptables-save` (family 4) or `ip6tables-save` (family 6) output.
pub fn parse_iptables(text: &str, family: u8) -> Ruleset {
    let tool = if family == 4 { "iptables" } else { "ip6tables" };
    let mut rs = Ruleset { source: tool.into(), ..Ruleset::default() };
    let mut table = String::new();
    let mut policies: Vec<(String, String, bool)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_owned();
        } else if let Some(decl) = line.strip_prefix(':') {
            let w = words(decl);
            if let [name, policy, ..] = w.as_slice() {
                rs.chains.entry(table.clone()).or_default().entry(name.clone()).or_default();
                if policy != "-" {
                    policies.push((table.clone(), name.clone(), policy == "DROP"));
                }
            }
        } else if line.starts_with("-A ") {
            let w = words(line);
            let chain = w[1].clone();
            let rule = ipt_rule(&w[2..], line);
            rs.chains.entry(table.clone()).or_default().entry(chain).or_default().rules.push(rule);
        }
    }
    for (table, chain, drop) in policies {
        let order = match (table.as_str(), chain.as_str()) {
            ("raw", "PREROUTING") => (0, -300),
            ("mangle", "PREROUTING") => (0, -150),
            ("mangle", "INPUT") => (1, -150),
            ("filter", "INPUT") => (1, 0),
            _ => continue,
        };
        let mut c = rs.chains[&table][&chain].clone();
        c.policy_drop = drop;
        rs.bases.push(BaseChain { name: format!("{tool} -t {table} {chain}"), family: Some(family), order, chain: c, table });
    }
    rs
}

fn ipt_rule(w: &[String], line: &str) -> Rule {
    let mut r = Rule { conds: Vec::new(), verdict: Verdict::Continue, text: line.to_owned() };
    let mut proto: Option<u8> = None;
    let mut negate = false;
    let mut i = 0;
    let arg = |i: usize| w.get(i + 1).cloned().unwrap_or_default();
    while i < w.len() {
        let opt = w[i].as_str();
        let mut push = |field, value, needs_proto| {
            r.conds.push(Cond { field, negate, value, needs_family: None, needs_proto });
        };
        match opt {
            "!" => {
                negate = true;
                i += 1;
                continue;
            }
            "-p" | "--protocol" => {
                let a = arg(i);
                if a != "all" {
                    proto = proto_number(&a);
                    push(Field::Proto, Val::Str(a), None);
                }
                i += 2;
            }
            "-d" | "--destination" => {
                push(Field::Daddr, ipt_addr(&arg(i)), None);
                i += 2;
            }
            "-i" | "--in-interface" => {
                push(Field::Iif, Val::Str(arg(i)), None);
                i += 2;
            }
            "--dport" | "--dports" | "--destination-port" | "--destination-ports" => {
                push(Field::Dport, ipt_ports(&arg(i)), proto);
                i += 2;
            }
            "--state" | "--ctstate" => {
                push(Field::CtState, Val::Str(arg(i)), None);
                i += 2;
            }
            "-m" | "--match" => i += 2,
            // Matches a comment or a loaded module: no effect.
            "--comment" => i += 2,
            "-j" | "--jump" | "-g" | "--goto" => {
                r.verdict = match arg(i).as_str() {
                    "ACCEPT" => Verdict::Accept,
                    "DROP" | "REJECT" => Verdict::Drop,
                    "RETURN" => Verdict::Return,
                    // A user chain, or a target that does not decide (LOG, MARK, ...): a
                    // jump to a chain the table does not declare is skipped when walking.
                    t => Verdict::Jump(t.to_owned()),
                };
                // Target options follow; stop here.
                i = w.len();
            }
            o if o.starts_with('-') => {
                // Anything else (-s, -o, --src-type, --limit, ...): we cannot know.
                push(Field::Other, Val::Unknown, None);
                // Skip the option's arguments.
                i += 1;
                while i < w.len() && !w[i].starts_with('-') && w[i] != "!" {
                    i += 1;
                }
            }
            _ => i += 1,
        }
        negate = false;
    }
    r
}
