//! The lab's policy: the seed policies with their addresses moved into the documentation
//! ranges, the farm sized to `--reals`, and check timers shortened so that a rehearsal takes
//! minutes, not hours. Pure text work, tested below.

use super::Mode;

/// Addresses the lab uses (all documentation ranges).
pub struct Plan {
    pub vip: String,
    pub port: u16,
    pub reals: Vec<String>,
    /// NAT only: the reals' gateway, held by the directors.
    pub gateway: Option<String>,
}

pub fn plan(mode: Mode, n: usize) -> Plan {
    match mode {
        Mode::Nat => Plan {
            vip: "198.51.100.100".into(),
            port: 80,
            reals: (0..n).map(|i| format!("203.0.113.{}", 10 + i)).collect(),
            gateway: Some("203.0.113.1".into()),
        },
        Mode::Dr | Mode::Tun => Plan {
            vip: "198.51.100.123".into(),
            port: 80,
            reals: (0..n).map(|i| format!("198.51.100.{}", 156 + i)).collect(),
            gateway: None,
        },
    }
}

/// The text between `open` (which ends with '{') and its matching '}', as byte offsets of
/// the opening and closing braces.
fn braces(text: &str, open: &str) -> Option<(usize, usize)> {
    let start = text.find(open)? + open.len() - 1;
    let mut depth = 0;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((start, start + i));
                }
            }
            _ => {}
        }
    }
    None
}

fn replace_block(text: &str, open: &str, body: &str) -> String {
    match braces(text, open) {
        Some((a, b)) => format!("{}{{ {body} }}{}", &text[..a], &text[b + 1..]),
        None => text.to_string(),
    }
}

/// Turn a seed policy into the lab's.
pub fn from_seed(seed: &str, mode: Mode, p: &Plan) -> String {
    let mut t = seed.to_string();
    match mode {
        Mode::Nat => {
            t = t.replace("192.168.1.11:22", &format!("{}:{}", p.vip, p.port));
            t = t.replace("192.168.1.11", &p.vip);
            t = t.replace("10.20.40.1\"", &format!("{}\"", p.gateway.as_deref().unwrap_or("")));
            // One file for both directors: lvs01 is the master of both instances.
            t = t.replace("state = \"master\"", "state = lvsd.node == \"lvs01\" and \"master\" or \"backup\"");
            t = t.replace("priority = 150", "priority = lvsd.node == \"lvs01\" and 150 or 100");
        }
        Mode::Dr | Mode::Tun => {
            t = t.replace("192.168.65.123", &p.vip);
            if mode == Mode::Tun {
                t = t.replace("forward = \"dr\"", "forward = \"tun\"");
            }
        }
    }
    let reals: Vec<String> = p.reals.iter().map(|r| format!("{{ address = \"{r}:{}\", weight = 1 }}", p.port)).collect();
    t = replace_block(&t, "reals = {", &reals.join(", "));
    replace_block(&t, "lvsd.check.tcp {", &format!("interval = 1, timeout = 1, retries = 1, retry_delay = 0.5, port = {}", p.port))
}

/// The same policy with real `n`'s weight changed (the reload phase).
pub fn with_weight(policy: &str, real: &str, weight: u32) -> String {
    policy.replace(&format!("{{ address = \"{real}\", weight = 1 }}"), &format!("{{ address = \"{real}\", weight = {weight} }}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{LoadOptions, load_source};
    use std::path::Path;

    fn check(src: &str, node: &str) -> crate::model::Model {
        let o = LoadOptions { node: node.into(), limits: Default::default() };
        load_source(src, Path::new("lab.lua"), Path::new("."), &o).unwrap_or_else(|e| panic!("{e}\n{src}")).model
    }

    #[test]
    fn dr_seed_becomes_the_lab_policy() {
        let seed = include_str!("../../policies/seed-dr.lua");
        let p = plan(Mode::Dr, 3);
        let src = from_seed(seed, Mode::Dr, &p);
        let m = check(&src, "lvs01");
        assert_eq!(m.services[0].reals.len(), 3);
        assert_eq!(m.services[0].reals[2].addr.to_string(), "198.51.100.158:80");
        assert_eq!(m.services[0].reals[0].checks[0].common.interval, 1.0);
        assert_eq!(m.vrrp[0].vips[0].addr.to_string(), "198.51.100.123");
        assert_eq!(m.vrrp[0].priority, 100);
        assert_eq!(check(&src, "lvs02").vrrp[0].priority, 90);
        assert!(!src.contains("192.168."), "{src}");
        let w = with_weight(&src, "198.51.100.157:80", 3);
        assert_eq!(check(&w, "lvs01").services[0].reals[1].weight, 3);
    }

    #[test]
    fn nat_seed_becomes_a_pair() {
        let seed = include_str!("../../policies/seed-nat.lua");
        let p = plan(Mode::Nat, 2);
        let src = from_seed(seed, Mode::Nat, &p);
        let a = check(&src, "lvs01");
        let b = check(&src, "lvs02");
        assert_eq!((a.vrrp[0].priority, b.vrrp[0].priority), (150, 100));
        assert_eq!(a.vrrp[1].vips[0].addr.to_string(), "203.0.113.1");
        assert_eq!(a.services[0].reals[1].addr.to_string(), "203.0.113.11:80");
        assert!(!src.contains("10.20.40") && !src.contains("192.168."), "{src}");
    }

    #[test]
    fn tun_uses_tunnelling() {
        let seed = include_str!("../../policies/seed-dr.lua");
        let src = from_seed(seed, Mode::Tun, &plan(Mode::Tun, 2));
        assert_eq!(check(&src, "lvs01").services[0].forward, crate::model::ForwardMethod::Tun);
    }
}
