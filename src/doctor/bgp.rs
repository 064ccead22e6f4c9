//! Scale-out: BIRD reachable and running lvsd's include file, each BGP session established,
//! BFD up where asked, and the routes BIRD exports equal to the VIPs lvsd wants announced.

use super::Finding;
use crate::bgp::announce::{neighbor_protocol, vip_protocol};
use crate::bgp::bird::Bird;
use crate::bgp::birdc::{BfdSession, Protocol};
use crate::model::{Model, Vip};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

const BIRD: &str = "bird";
const SESSION: &str = "bgp-peer";
const BFD: &str = "bfd";
const ANNOUNCE: &str = "announce";

/// What BIRD and the running lvsd say.
#[derive(Debug, Clone)]
pub struct Facts {
    /// BIRD's lvsd protocols and BFD sessions, or why BIRD could not be asked.
    pub bird: Result<(Vec<Protocol>, Vec<BfdSession>), String>,
    /// What the running lvsd wants per VIP ("203.0.113.10/32" -> announce); None: no lvsd answers.
    pub wanted: Option<BTreeMap<String, bool>>,
}

/// Ask BIRD (its control socket, bounded) and lvsd (its status).
pub fn gather(m: &Model, control: &Path) -> Facts {
    let Some(b) = &m.bgp else { return Facts { bird: Err(String::new()), wanted: None } };
    let bird = Bird::connect(&b.socket, Duration::from_secs(2)).map_err(|e| e.to_string()).and_then(|mut c| {
        let protocols = c.protocols("lvsd_*").map_err(|e| e.to_string())?;
        let bfd = c.call("show bfd sessions").map(|r| crate::bgp::birdc::bfd_sessions(&r)).unwrap_or_default();
        Ok((protocols, bfd))
    });
    let wanted = lvsd_status(control)
        .and_then(|v| v["bgp"]["vips"].as_array().cloned())
        .map(|vips| vips.iter().filter_map(|v| Some((v["vip"].as_str()?.to_string(), v["wanted"].as_bool()?))).collect());
    Facts { bird, wanted }
}

/// The running lvsd's status document, asked with bounded reads and writes (None: no answer).
fn lvsd_status(control: &Path) -> Option<serde_json::Value> {
    use std::io::{BufRead, Write};
    let s = std::os::unix::net::UnixStream::connect(control).ok()?;
    crate::control::client::check_server(&s, &control.display().to_string()).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(3))).ok()?;
    (&s).write_all(&crate::control::proto::encode_request(crate::control::Command::Status { text_only: false, brief: true })).ok()?;
    let mut line = Vec::new();
    std::io::Read::take(std::io::BufReader::new(&s), 64 << 20).read_until(b'\n', &mut line).ok()?;
    let r: crate::control::Response = serde_json::from_slice(&line).ok()?;
    r.result.filter(|_| r.ok)
}

/// Pure.
pub fn check(m: &Model, f: &Facts) -> Vec<Finding> {
    let Some(b) = &m.bgp else { return Vec::new() };
    let mut out = Vec::new();
    let (protocols, bfd) = match &f.bird {
        Ok(x) => x,
        Err(e) => {
            out.push(Finding::fail(
                BIRD,
                format!("BIRD does not answer on {}: {e}", b.socket.display()),
                "start BIRD 2 (`systemctl start bird`), or set lvsd.bgp's socket to its control socket (`bird -s PATH`); until then no VIP is announced".to_string(),
            ));
            return out;
        }
    };
    if !protocols.iter().any(|p| p.name.starts_with("lvsd_bgp")) {
        out.push(Finding::fail(
            BIRD,
            format!("BIRD runs without lvsd's sessions: it has not loaded {}", b.include.display()),
            format!("add `include \"{}\";` to bird.conf, then `birdc configure` (lvsd writes the file when it runs)", b.include.display()),
        ));
        return out;
    }
    out.push(Finding::pass(BIRD, format!("BIRD answers on {} and runs lvsd's include file", b.socket.display())));
    let find = |name: &str| protocols.iter().find(|p| p.name == name);
    let mut established = 0;
    for n in &b.neighbors {
        let name = neighbor_protocol(n.address);
        match find(&name) {
            Some(p) if p.is_up() && p.info.starts_with("Established") => {
                established += 1;
                out.push(Finding::pass(SESSION, format!("{} (AS {}): established", n.address, n.asn)));
            }
            Some(p) => out.push(Finding::fail(
                SESSION,
                format!("{} (AS {}): {} {}", n.address, n.asn, p.state, p.info),
                format!(
                    "the router must peer with this director as AS {} from {} (TCP port 179 open both ways); `birdc show protocols all {name}` has the detail",
                    b.local_as, n.address
                ),
            )),
            None => out.push(Finding::fail(
                SESSION,
                format!("{}: BIRD has no protocol {name}", n.address),
                "lvsd rewrites the include file when it runs; `lvsd reload`, then `birdc configure`",
            )),
        }
        if n.bfd {
            match bfd.iter().find(|s| s.address == n.address) {
                Some(s) if s.state == "Up" => out.push(Finding::pass(BFD, format!("{}: BFD up on {}", n.address, s.interface))),
                Some(s) => out.push(Finding::fail(
                    BFD,
                    format!("{}: BFD {} on {}", n.address, s.state, s.interface),
                    "the router must run BFD for this session too (`bfd on` in its bgp protocol, and a `protocol bfd`); UDP 3784 open",
                )),
                None => out.push(Finding::warn(
                    BFD,
                    format!("{}: no BFD session", n.address),
                    "BFD starts with the BGP session; check the session first",
                )),
            }
        }
    }
    let vips: Vec<IpAddr> = m
        .services
        .iter()
        .filter(|s| s.announce.is_some())
        .filter_map(|s| match s.vip {
            Vip::Addr { addr, .. } => Some(addr.ip()),
            Vip::Fwmark { .. } => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for ip in vips {
        let net = format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 });
        let exported = find(&vip_protocol(ip)).map(|p| p.state != "down");
        let wanted = f.wanted.as_ref().and_then(|w| w.get(&net).copied());
        match (wanted, exported) {
            (_, None) => {
                out.push(Finding::fail(ANNOUNCE, format!("{net}: BIRD has no route for it"), "`lvsd reload`, then `birdc configure`"))
            }
            (None, Some(e)) => out.push(Finding::warn(
                ANNOUNCE,
                format!("{net}: {} by BIRD; no running lvsd says whether it should be", if e { "announced" } else { "withdrawn" }),
                "start lvsd (or pass --control PATH) so that the announcement follows the service's health",
            )),
            (Some(w), Some(e)) if w == e => {
                let reach = if e && established == 0 { " (but no session is established: the router does not hear it)" } else { "" };
                out.push(Finding::pass(
                    ANNOUNCE,
                    format!("{net}: {}{reach}", if e { "announced, as lvsd wants" } else { "withdrawn, as lvsd wants" }),
                ))
            }
            (Some(w), Some(_)) => out.push(Finding::fail(
                ANNOUNCE,
                format!(
                    "{net}: lvsd wants it {} but BIRD has it {}",
                    if w { "announced" } else { "withdrawn" },
                    if w { "withdrawn" } else { "announced" }
                ),
                "lvsd puts it right within a second; if it stays, see `lvsd events` (bgp) and `birdc show protocols`",
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Level;

    fn model() -> Model {
        let src = r#"
lvsd.bgp { local_as = 65001, neighbors = { { address = "192.0.2.1", as = 65000, bfd = true }, { address = "192.0.2.9", as = 65000 } } }
lvsd.service "web" { vip = "203.0.113.10:80", scheduler = "mh", announce = true, reals = { "198.51.100.1:80" } }
lvsd.service "dns" { vip = "203.0.113.11:53", protocol = "udp", scheduler = "mh", announce = true, reals = { "198.51.100.1:53" } }
"#;
        crate::policy::test_model(src, "d1")
    }

    fn proto(name: &str, state: &str, info: &str) -> Protocol {
        Protocol { name: name.into(), proto: "x".into(), table: "---".into(), state: state.into(), since: String::new(), info: info.into() }
    }

    fn levels(f: &[Finding], check: &str) -> Vec<Level> {
        f.iter().filter(|x| x.check == check).map(|x| x.level).collect()
    }

    #[test]
    fn sessions_bfd_and_routes_against_what_lvsd_wants() {
        let m = model();
        let protocols = vec![
            proto("lvsd_bgp_192_0_2_1", "up", "Established"),
            proto("lvsd_bgp_192_0_2_9", "start", "Active        Socket: Connection refused"),
            proto("lvsd_vip_203_0_113_10", "up", ""),
            proto("lvsd_vip_203_0_113_11", "up", ""),
        ];
        let bfd = vec![BfdSession { address: "192.0.2.1".parse().unwrap(), interface: "eth0".into(), state: "Up".into() }];
        let wanted = Some([("203.0.113.10/32".to_string(), true), ("203.0.113.11/32".to_string(), false)].into_iter().collect());
        let f = check(&m, &Facts { bird: Ok((protocols, bfd)), wanted });
        assert_eq!(levels(&f, BIRD), vec![Level::Pass]);
        assert_eq!(levels(&f, SESSION), vec![Level::Pass, Level::Fail], "{f:?}");
        assert!(f.iter().any(|x| x.message.contains("192.0.2.9 (AS 65000): start Active")), "{f:?}");
        assert_eq!(levels(&f, BFD), vec![Level::Pass]);
        assert_eq!(levels(&f, ANNOUNCE), vec![Level::Pass, Level::Fail], "{f:?}");
        assert!(f.iter().any(|x| x.message == "203.0.113.11/32: lvsd wants it withdrawn but BIRD has it announced"), "{f:?}");

        // No lvsd running: a warning per route; BIRD down: one failure and nothing else.
        let f2 = check(&m, &Facts { bird: Ok((vec![proto("lvsd_bgp_192_0_2_1", "up", "Established")], vec![])), wanted: None });
        assert_eq!(levels(&f2, ANNOUNCE), vec![Level::Fail, Level::Fail], "no route in BIRD: {f2:?}");
        assert_eq!(levels(&f2, BFD), vec![Level::Warn]);
        let f3 = check(&m, &Facts { bird: Err("connection refused".into()), wanted: None });
        assert_eq!(f3.len(), 1);
        assert_eq!(f3[0].level, Level::Fail);
        // BIRD without lvsd's include file.
        let f4 = check(&m, &Facts { bird: Ok((vec![], vec![])), wanted: None });
        assert!(f4[0].message.contains("has not loaded") && f4[0].fix.as_deref().unwrap().contains("include"), "{f4:?}");
        // No lvsd.bgp: nothing to say.
        let mut plain = m.clone();
        plain.bgp = None;
        assert!(check(&plain, &Facts { bird: Err(String::new()), wanted: None }).is_empty());
    }
}
