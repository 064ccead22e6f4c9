//! The kernel's IPVS table against the one the policy yields (every real up): the seed's
//! "look at `ipvsadm -L -n`" item. The table is dumped over generic netlink (the kernel
//! backend), with `/proc/net/ip_vs` (text) as a fallback; weights are not compared, since
//! health checks and drains change them on purpose.

use super::Finding;
pub use super::proc_ipvs::{Listing, parse_proc};
use crate::ipvs::table::{ServiceKey, Table};
use crate::model::Model;

const CHECK: &str = "ipvs";
const PROC: &str = "/proc/net/ip_vs";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gathered {
    /// No /proc/net/ip_vs: the kernel has no IPVS (or the module is not loaded).
    Unavailable,
    Error(String),
    /// The table, and where it was read from.
    Table(Listing, &'static str),
}

pub fn gather() -> Gathered {
    use crate::ipvs::kernel::{Kernel, KernelError};
    let netlink_err = match Kernel::open().and_then(|mut k| k.dump()) {
        Ok(t) => return Gathered::Table(listing(&t), "netlink"),
        Err(KernelError::NoIpvs) => None,
        Err(e) => Some(e.to_string()),
    };
    match std::fs::read_to_string(PROC) {
        Ok(text) => parse_proc(&text).map_or_else(Gathered::Error, |l| Gathered::Table(l, PROC)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match netlink_err {
            Some(e) => Gathered::Error(e),
            None => Gathered::Unavailable,
        },
        Err(e) => Gathered::Error(format!("{PROC}: {e}")),
    }
}

/// The policy's table in the same shape.
pub fn listing(t: &Table) -> Listing {
    t.services
        .iter()
        .map(|(k, s)| {
            let name = match k {
                ServiceKey::Addr { protocol, addr } => format!("{} {addr}", protocol.ipvsadm_name()),
                ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
            };
            (name, s.dests.iter().map(|(d, dest)| (d.0, dest.forward.ipvsadm_name().to_owned())).collect())
        })
        .collect()
}

pub fn check(m: &Model, g: &Gathered) -> Vec<Finding> {
    decide(&listing(&crate::desired::all_up(m)), g)
}

/// Pure.
pub fn decide(want: &Listing, g: &Gathered) -> Vec<Finding> {
    let (have, source) = match g {
        Gathered::Unavailable if want.is_empty() => {
            return vec![Finding::pass(CHECK, "IPVS not available in this kernel, and the policy has no services")];
        }
        Gathered::Unavailable => {
            return vec![Finding::fail(
                CHECK,
                format!(
                    "IPVS not available in this kernel (no IPVS netlink family, no {PROC}): the policy's {} service(s) cannot be installed",
                    want.len()
                ),
                "modprobe ip_vs (kernel with CONFIG_IP_VS); to rehearse without IPVS use `lvsd run --dry-run`",
            )];
        }
        Gathered::Error(e) => return vec![Finding::warn(CHECK, format!("cannot read the IPVS table: {e}"), "run lvsd doctor as root")],
        Gathered::Table(t, source) => (t, *source),
    };
    let mut out = Vec::new();
    for (svc, reals) in want {
        let Some(kreals) = have.get(svc) else {
            out.push(if source == PROC {
                // The file can leave services out: the kernel's walk of it counts this
                // namespace's services while the file position counts every namespace's.
                Finding::warn(
                    CHECK,
                    format!(
                        "service {svc} is in the policy but not in {PROC} (which can leave services out when another network namespace has an IPVS table)"
                    ),
                    "run `lvsd doctor` as root to read the table over netlink",
                )
            } else {
                Finding::fail(
                    CHECK,
                    format!("service {svc} is in the policy but not in the kernel"),
                    "start `lvsd run -p POLICY` (it installs and repairs the table), then check `lvsd status`",
                )
            });
            continue;
        };
        for (r, fwd) in reals {
            match kreals.get(r) {
                None => out.push(Finding::warn(
                    CHECK,
                    format!("real server {r} of {svc} is not in the kernel (failing its health check, or not installed)"),
                    "see `lvsd status` for its health; check the real server is up",
                )),
                Some(k) if k != fwd => out.push(Finding::fail(
                    CHECK,
                    format!("real server {r} of {svc} is forwarded by {k} in the kernel, the policy says {fwd}"),
                    "let lvsd repair it (`lvsd reload`), or remove the stale entry with ipvsadm -d",
                )),
                Some(_) => {}
            }
        }
        for r in kreals.keys().filter(|r| !reals.contains_key(r)) {
            out.push(Finding::warn(
                CHECK,
                format!("real server {r} of {svc} is in the kernel but not in the policy"),
                format!("ipvsadm -d {} -r {r} (or add it to the policy)", service_flag(svc)),
            ));
        }
    }
    for svc in have.keys().filter(|s| !want.contains_key(*s)) {
        out.push(Finding::warn(
            CHECK,
            format!("service {svc} is in the kernel but not in the policy"),
            format!("ipvsadm -D {} if nothing else manages it", service_flag(svc)),
        ));
    }
    if out.is_empty() {
        out.push(Finding::pass(CHECK, format!("kernel IPVS table matches the policy ({} service(s), read from {source})", want.len())));
    }
    out
}

/// `TCP 192.0.2.1:80` -> `-t 192.0.2.1:80` for the fix text.
fn service_flag(svc: &str) -> String {
    match svc.split_once(' ') {
        Some(("TCP", a)) => format!("-t {a}"),
        Some(("UDP", a)) => format!("-u {a}"),
        Some(("SCTP", a)) => format!("--sctp-service {a}"),
        Some(("FWM", m)) => format!("-f {m}"),
        _ => svc.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Level;
    use std::collections::BTreeMap;

    const PROC_TEXT: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  C000020A:0050 wlc persistent 50
  -> C6336402:0050      Route   1      0          0
  -> C6336401:0050      Route   1      0          0
TCP  [2001:0db8:0000:0000:0000:0000:0000:0010]:01BB rr
  -> [2001:0db8:0000:0000:0000:0000:0000:0101]:01BB      Masq    1      0          0
FWM  00000007 wlc
";

    #[test]
    fn parses_proc_text() {
        let l = parse_proc(PROC_TEXT).unwrap();
        let web = &l["TCP 192.0.2.10:80"];
        assert_eq!(web[&"198.51.100.1:80".parse().unwrap()], "Route");
        assert_eq!(web.len(), 2);
        assert_eq!(l["TCP [2001:db8::10]:443"][&"[2001:db8::101]:443".parse().unwrap()], "Masq");
        assert!(l["FWM 7"].is_empty());
    }

    #[test]
    fn differences() {
        let have = parse_proc(PROC_TEXT).unwrap();
        let mut want = Listing::new();
        want.insert("TCP 192.0.2.10:80".into(), have["TCP 192.0.2.10:80"].clone());
        let f = decide(&want, &Gathered::Table(have.clone(), PROC));
        assert!(f.iter().all(|x| x.level == Level::Warn), "{f:?}");
        assert!(f.iter().any(|x| x.message.contains("FWM 7") && x.fix.as_ref().unwrap().contains("-f 7")));
        want.insert("UDP 192.0.2.10:53".into(), BTreeMap::new());
        want.get_mut("TCP 192.0.2.10:80").unwrap().insert("198.51.100.1:80".parse().unwrap(), "Tunnel".into());
        let f = decide(&want, &Gathered::Table(have.clone(), "netlink"));
        assert!(f.iter().any(|x| x.level == Level::Fail && x.message.contains("UDP 192.0.2.10:53")));
        assert!(f.iter().any(|x| x.level == Level::Fail && x.message.contains("forwarded by Route")));
        // Read from the file, a missing service may only be missing from the file.
        let f = decide(&want, &Gathered::Table(have, PROC));
        let missing = f.iter().find(|x| x.message.contains("UDP 192.0.2.10:53")).unwrap();
        assert_eq!(missing.level, Level::Warn);
        assert!(missing.message.contains("not in /proc/net/ip_vs") && missing.fix.as_ref().unwrap().contains("as root"), "{missing:?}");
        assert!(f.iter().any(|x| x.level == Level::Fail && x.message.contains("forwarded by Route")));
    }

    #[test]
    fn unavailable_is_said_clearly() {
        let mut want = Listing::new();
        want.insert("TCP 192.0.2.10:80".into(), BTreeMap::new());
        let f = decide(&want, &Gathered::Unavailable);
        assert_eq!(f[0].level, Level::Fail);
        assert!(f[0].message.starts_with("IPVS not available in this kernel"));
        assert_eq!(decide(&Listing::new(), &Gathered::Unavailable)[0].level, Level::Pass);
    }
}
