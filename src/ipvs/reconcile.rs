//! The pure diff between the table we want and the table we have.
//!
//! Order of the ops: additions first (services, then their destinations), then in-place
//! edits, then deletions (destinations before services). Adding before deleting keeps a
//! service's capacity up while reals are replaced; a flush is never produced.

use super::table::{Dest, DestKey, ServiceConf, ServiceKey, Table};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    AddService { key: ServiceKey, conf: ServiceConf },
    EditService { key: ServiceKey, conf: ServiceConf },
    DelService { key: ServiceKey },
    AddDest { svc: ServiceKey, dest: DestKey, conf: Dest },
    EditDest { svc: ServiceKey, dest: DestKey, conf: Dest },
    DelDest { svc: ServiceKey, dest: DestKey },
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use super::format::{dest_name, service_name};
        match self {
            Op::AddService { key, conf } => write!(f, "add service {} {}", service_name(key), conf.scheduler),
            Op::EditService { key, conf } => write!(f, "edit service {} {}", service_name(key), conf.scheduler),
            Op::DelService { key } => write!(f, "delete service {}", service_name(key)),
            Op::AddDest { svc, dest, conf } => {
                write!(f, "add real {} to {} weight {}", dest_name(dest), service_name(svc), conf.weight)
            }
            Op::EditDest { svc, dest, conf } => {
                write!(f, "edit real {} of {} weight {}", dest_name(dest), service_name(svc), conf.weight)
            }
            Op::DelDest { svc, dest } => write!(f, "delete real {} from {}", dest_name(dest), service_name(svc)),
        }
    }
}

/// Compute the ops that turn `actual` into `desired`.
///
/// `remove_extra` decides, for a service present in `actual` but not in `desired`, whether
/// it is ours to delete (the caller knows which services it owns). Destinations inside a
/// desired service are always ours: extras there are deleted.
pub fn diff(desired: &Table, actual: &Table, remove_extra: impl Fn(&ServiceKey) -> bool) -> Vec<Op> {
    let mut adds = Vec::new();
    let mut edits = Vec::new();
    let mut dest_dels = Vec::new();
    let mut svc_dels = Vec::new();

    for (key, want) in &desired.services {
        match actual.services.get(key) {
            None => {
                adds.push(Op::AddService { key: *key, conf: want.conf.clone() });
                for (dk, d) in &want.dests {
                    adds.push(Op::AddDest { svc: *key, dest: *dk, conf: d.clone() });
                }
            }
            Some(have) => {
                if have.conf != want.conf {
                    edits.push(Op::EditService { key: *key, conf: want.conf.clone() });
                }
                for (dk, d) in &want.dests {
                    match have.dests.get(dk) {
                        None => adds.push(Op::AddDest { svc: *key, dest: *dk, conf: d.clone() }),
                        Some(hd) if !hd.same_settings(d) => edits.push(Op::EditDest { svc: *key, dest: *dk, conf: d.clone() }),
                        Some(_) => {}
                    }
                }
                for dk in have.dests.keys() {
                    if !want.dests.contains_key(dk) {
                        dest_dels.push(Op::DelDest { svc: *key, dest: *dk });
                    }
                }
            }
        }
    }
    for key in actual.services.keys() {
        if !desired.services.contains_key(key) && remove_extra(key) {
            svc_dels.push(Op::DelService { key: *key });
        }
    }
    adds.into_iter().chain(edits).chain(dest_dels).chain(svc_dels).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::table::{Dest, Family, Forward, Protocol, Service};

    fn key(addr: &str) -> ServiceKey {
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: addr.parse().unwrap() }
    }
    fn table(svcs: &[(&str, &str, &[(&str, u32)])]) -> Table {
        let mut t = Table::default();
        for (addr, sched, reals) in svcs {
            let mut s = Service::new(ServiceConf::new(sched, Family::Inet));
            for (r, w) in reals.iter() {
                s.dests.insert(DestKey(r.parse().unwrap()), Dest::new(Forward::Dr, *w));
            }
            t.services.insert(key(addr), s);
        }
        t
    }
    const A: &str = "192.0.2.1:80";
    const R1: &str = "198.51.100.1:80";
    const R2: &str = "198.51.100.2:80";

    #[test]
    fn no_change_no_ops() {
        let t = table(&[(A, "wrr", &[(R1, 1), (R2, 1)])]);
        assert!(diff(&t, &t.clone(), |_| true).is_empty());
    }

    #[test]
    fn counters_do_not_count_as_changes() {
        let want = table(&[(A, "wrr", &[(R1, 1)])]);
        let mut have = want.clone();
        let d = have.services.get_mut(&key(A)).unwrap().dests.values_mut().next().unwrap();
        d.stats.active_conns = 7;
        d.stats.conns = 1000;
        assert!(diff(&want, &have, |_| true).is_empty());
    }

    #[test]
    fn one_weight_one_edit() {
        let have = table(&[(A, "wrr", &[(R1, 1), (R2, 1)])]);
        let want = table(&[(A, "wrr", &[(R1, 1), (R2, 5)])]);
        let ops = diff(&want, &have, |_| true);
        assert_eq!(ops.len(), 1);
        assert!(matches!(&ops[0], Op::EditDest { conf, .. } if conf.weight == 5));
    }

    #[test]
    fn scheduler_change_is_an_edit_not_delete_add() {
        let have = table(&[(A, "wrr", &[(R1, 1)])]);
        let want = table(&[(A, "rr", &[(R1, 1)])]);
        let ops = diff(&want, &have, |_| true);
        assert_eq!(ops, vec![Op::EditService { key: key(A), conf: ServiceConf::new("rr", Family::Inet) }]);
    }

    #[test]
    fn changed_address_is_delete_and_add() {
        let have = table(&[(A, "wrr", &[(R1, 1)])]);
        let want = table(&[("192.0.2.2:80", "wrr", &[(R1, 1)])]);
        let ops = diff(&want, &have, |_| true);
        assert!(matches!(ops[0], Op::AddService { .. }));
        assert!(matches!(ops[1], Op::AddDest { .. }));
        assert_eq!(ops[2], Op::DelService { key: key(A) });
        assert_eq!(ops.len(), 3);
    }

    #[test]
    fn changed_protocol_is_delete_and_add() {
        let have = table(&[(A, "wrr", &[])]);
        let mut want = Table::default();
        let udp = ServiceKey::Addr { protocol: Protocol::Udp, addr: A.parse().unwrap() };
        want.services.insert(udp, Service::new(ServiceConf::new("wrr", Family::Inet)));
        let ops = diff(&want, &have, |_| true);
        assert_eq!(ops, vec![Op::AddService { key: udp, conf: ServiceConf::new("wrr", Family::Inet) }, Op::DelService { key: key(A) },]);
    }

    #[test]
    fn real_deletions_come_before_service_deletions() {
        let have = table(&[(A, "wrr", &[(R1, 1), (R2, 1)]), ("192.0.2.9:80", "rr", &[(R1, 1)])]);
        let want = table(&[(A, "wrr", &[(R1, 1)])]);
        let ops = diff(&want, &have, |_| true);
        let pos_dest = ops.iter().position(|o| matches!(o, Op::DelDest { .. })).unwrap();
        let pos_svc = ops.iter().position(|o| matches!(o, Op::DelService { .. })).unwrap();
        assert!(pos_dest < pos_svc, "{ops:?}");
        assert_eq!(ops.len(), 2);
    }

    #[test]
    fn foreign_services_are_kept_unless_owned() {
        let have = table(&[(A, "wrr", &[(R1, 1)])]);
        let want = Table::default();
        assert!(diff(&want, &have, |_| false).is_empty());
        assert_eq!(diff(&want, &have, |_| true), vec![Op::DelService { key: key(A) }]);
    }

    #[test]
    fn applying_the_diff_reaches_the_desired_table() {
        use crate::ipvs::memory::MemoryBackend;
        let have = table(&[(A, "wrr", &[(R1, 1), (R2, 1)]), ("192.0.2.9:80", "rr", &[(R1, 1)])]);
        let want = table(&[(A, "rr", &[(R2, 3)]), ("192.0.2.3:53", "sh", &[(R1, 1)])]);
        let mut mem = MemoryBackend { table: have.clone(), writes: 0, daemons: Vec::new() };
        for op in diff(&want, &have, |_| true) {
            mem.apply(&op).unwrap();
        }
        assert_eq!(mem.table, want);
        assert!(diff(&want, &mem.table, |_| true).is_empty());
    }
}
