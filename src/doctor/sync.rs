//! `lvsd doctor`: the connection sync setup, for policies with `lvsd.sync_daemon`. Whether the
//! daemons run here with the policy's id on its interface (lvsd runs the backup daemon on
//! every node, the master daemon on the master too), whether the interface's MTU leaves room
//! for `maxlen`, and the `net.ipv4.vs.*` sysctls that decide what happens to connections at
//! a failover or a drain.

use std::collections::BTreeMap;

use super::Finding;
use crate::ipvs::wire::{DaemonState, SyncDaemon};
use crate::model::{ForwardMethod, Model};

const CHECK: &str = "sync";

/// The sysctls read (under /proc/sys/net/ipv4/vs/).
pub const SYSCTLS: [&str; 3] = ["expire_nodest_conn", "expire_quiescent_template", "conntrack"];

/// What was found on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The daemons running; Err: they could not be listed (no IPVS, not root).
    pub daemons: Result<Vec<SyncDaemon>, String>,
    /// The sync interface's MTU; None: no such interface.
    pub mtu: Option<u32>,
    /// net.ipv4.vs.NAME -> value (missing: could not be read).
    pub sysctls: BTreeMap<String, i64>,
}

impl Default for Facts {
    fn default() -> Facts {
        Facts { daemons: Ok(Vec::new()), mtu: None, sysctls: BTreeMap::new() }
    }
}

pub fn gather(m: &Model) -> Option<Facts> {
    let sd = m.sync_daemon.as_ref()?;
    let daemons = crate::ipvs::kernel::Kernel::open().and_then(|mut k| k.daemons()).map_err(|e| e.to_string());
    let mtu = std::fs::read_to_string(format!("/sys/class/net/{}/mtu", sd.interface)).ok().and_then(|s| s.trim().parse().ok());
    let mut sysctls = BTreeMap::new();
    for name in SYSCTLS {
        if let Some(v) = std::fs::read_to_string(format!("/proc/sys/net/ipv4/vs/{name}")).ok().and_then(|s| s.trim().parse().ok()) {
            sysctls.insert(name.to_string(), v);
        }
    }
    Some(Facts { daemons, mtu, sysctls })
}

fn state(s: DaemonState) -> &'static str {
    match s {
        DaemonState::Master => "master",
        DaemonState::Backup => "backup",
    }
}

/// The findings, from plain values.
pub fn check(m: &Model, f: &Facts) -> Vec<Finding> {
    let Some(sd) = &m.sync_daemon else { return Vec::new() };
    let mut out = Vec::new();
    let at = &sd.origin;
    match &f.daemons {
        Err(e) => out.push(Finding::warn(CHECK, format!("cannot list the sync daemons: {e}"), "run lvsd doctor as root on the director")),
        Ok(running) => {
            let ours = |d: &SyncDaemon| d.interface == sd.interface && d.sync_id == u32::from(sd.id);
            for d in running.iter().filter(|d| !ours(d)) {
                out.push(Finding::fail(
                    CHECK,
                    format!(
                        "the {} sync daemon runs on {} with id {}, the policy ({at}) says {} id {}: the pair does not share connections",
                        state(d.state),
                        d.interface,
                        d.sync_id,
                        sd.interface,
                        sd.id
                    ),
                    format!("ipvsadm --stop-daemon {}, then let lvsd start its own (both directors: the same id)", state(d.state)),
                ));
            }
            match running.iter().find(|d| d.state == DaemonState::Backup && ours(d)) {
                Some(_) => {
                    let master = running.iter().any(|d| d.state == DaemonState::Master && ours(d));
                    let role = if master { "master and backup daemons" } else { "backup daemon" };
                    out.push(Finding::pass(CHECK, format!("{role} on {} with sync id {}", sd.interface, sd.id)));
                }
                None => out.push(Finding::warn(
                    CHECK,
                    format!(
                        "no backup sync daemon on {} with id {}: this node would take over with an empty connection table",
                        sd.interface, sd.id
                    ),
                    "lvsd starts it (is lvsd running?); by hand: ipvsadm --start-daemon backup --mcast-interface IF --syncid ID",
                )),
            }
        }
    }
    match f.mtu {
        None => out.push(Finding::fail(
            CHECK,
            format!("the sync interface {} does not exist ({at})", sd.interface),
            "set lvsd.sync_daemon's interface to the link both directors share",
        )),
        // The kernel refuses a maxlen above MTU - 20 (IP) - 8 (UDP) (ip_vs_sync.c).
        Some(mtu) if sd.maxlen.is_some_and(|l| u32::from(l) + 28 > mtu) => out.push(Finding::fail(
            CHECK,
            format!(
                "maxlen {} does not fit the MTU {mtu} of {} (at most {})",
                sd.maxlen.unwrap_or(0),
                sd.interface,
                mtu.saturating_sub(28)
            ),
            "lower maxlen, or leave it unset (the kernel fits it to the MTU)",
        )),
        Some(mtu) => out.push(Finding::pass(CHECK, format!("{} is up to the sync messages (MTU {mtu})", sd.interface))),
    }
    let get = |n: &str| f.sysctls.get(n).copied();
    if get("expire_nodest_conn") == Some(0) {
        out.push(Finding::warn(
            CHECK,
            "net.ipv4.vs.expire_nodest_conn = 0: connections to a real server taken out of the table hang until they time out, \
and a new connection that reuses a client port of one (every director holds synced copies) is dropped without an answer",
            "sysctl -w net.ipv4.vs.expire_nodest_conn=1 (the client's next packet is dropped and it reconnects)",
        ));
    }
    let persistent = m.services.iter().any(|s| s.persistence.is_some());
    if persistent && get("expire_quiescent_template") == Some(0) {
        out.push(Finding::warn(
            CHECK,
            "net.ipv4.vs.expire_quiescent_template = 0 with persistent services: a drained real (weight 0) keeps receiving its persistent clients",
            "sysctl -w net.ipv4.vs.expire_quiescent_template=1",
        ));
    }
    let nat = m.services.iter().any(|s| s.forward == ForwardMethod::Nat || s.reals.iter().any(|r| r.forward == ForwardMethod::Nat));
    if nat && get("conntrack") == Some(0) {
        out.push(Finding::warn(
            CHECK,
            "net.ipv4.vs.conntrack = 0 with NAT services: with netfilter connection tracking (a stateful firewall, iptables NAT) the new master may drop a synced connection's packets after a failover",
            "sysctl -w net.ipv4.vs.conntrack=1 on both directors",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Level;

    fn model(extra: &str) -> Model {
        let src = format!(
            r#"lvsd.vrrp "VI_1" {{ interface = "eth0", vrid = 51, vips = {{ "192.0.2.100" }} }}
lvsd.service "web" {{ vip = "192.0.2.100:80", forward = "nat", persistence = 50, reals = {{ "198.51.100.1:80" }} }}
{extra}"#
        );
        crate::policy::test_model(&src, "n")
    }

    fn facts(daemons: Vec<SyncDaemon>, mtu: Option<u32>, sysctls: &[(&str, i64)]) -> Facts {
        Facts { daemons: Ok(daemons), mtu, sysctls: sysctls.iter().map(|(k, v)| (k.to_string(), *v)).collect() }
    }

    fn levels(f: &[Finding]) -> Vec<Level> {
        f.iter().map(|f| f.level).collect()
    }

    const GOOD: [(&str, i64); 3] = [("expire_nodest_conn", 1), ("expire_quiescent_template", 1), ("conntrack", 1)];

    #[test]
    fn no_sync_daemon_in_the_policy_no_findings() {
        assert!(check(&model(""), &Facts::default()).is_empty());
    }

    #[test]
    fn a_backup_daemon_with_our_id_passes() {
        let m = model(r#"lvsd.sync_daemon { interface = "eth0", id = 7, instance = "VI_1" }"#);
        let f = check(&m, &facts(vec![SyncDaemon::new(DaemonState::Backup, "eth0", 7)], Some(1500), &GOOD));
        assert_eq!(levels(&f), [Level::Pass, Level::Pass], "{f:?}");
        assert!(f[0].message.starts_with("backup daemon on eth0 with sync id 7"), "{f:?}");
    }

    #[test]
    fn a_daemon_with_another_id_fails_and_a_missing_one_warns() {
        let m = model(r#"lvsd.sync_daemon { interface = "eth0", id = 7 }"#);
        let f = check(&m, &facts(vec![SyncDaemon::new(DaemonState::Master, "eth0", 9)], Some(1500), &GOOD));
        assert_eq!(levels(&f), [Level::Fail, Level::Warn, Level::Pass], "{f:?}");
        assert!(f[0].message.contains("with id 9, the policy (") && f[0].message.contains("says eth0 id 7"), "{}", f[0].message);
    }

    #[test]
    fn mtu_interface_and_sysctls() {
        let m = model(r#"lvsd.sync_daemon { interface = "eth0", id = 7, maxlen = 1480 }"#);
        let ok = vec![SyncDaemon::new(DaemonState::Backup, "eth0", 7)];
        let f = check(&m, &facts(ok.clone(), Some(1500), &GOOD));
        assert!(f[1].level == Level::Fail && f[1].message.contains("at most 1472"), "{f:?}");
        let f = check(&m, &facts(ok.clone(), None, &GOOD));
        assert!(f[1].level == Level::Fail && f[1].message.contains("does not exist"), "{f:?}");
        let f = check(&m, &facts(ok, Some(9000), &[("expire_nodest_conn", 0), ("expire_quiescent_template", 0), ("conntrack", 0)]));
        assert_eq!(levels(&f), [Level::Pass, Level::Pass, Level::Warn, Level::Warn, Level::Warn], "{f:?}");
    }
}
