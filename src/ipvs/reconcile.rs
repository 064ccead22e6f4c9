//! The pure diff between the table we want and the table we have.
//!
//! Order of the ops: additions first (services, then their destinations), then in-place
//! edits, then deletions (destinations before services). Adding before deleting keeps a
//! service's capacity up while reals are replaced; a flush is never produced.

use super::table::{Dest, DestKey, Service, ServiceConf, ServiceKey, Table};
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
    let mut d = Differ::default();
    for (key, want) in &desired.services {
        match actual.services.get(key) {
            None => d.missing_service(key, want),
            Some(have) => {
                d.service_conf(key, want, &have.conf);
                for (dk, hd) in &have.dests {
                    d.dest(key, want, dk, hd);
                }
                d.end_dests(key, want, |dk| have.dests.contains_key(dk));
            }
        }
    }
    for key in actual.services.keys() {
        if !desired.services.contains_key(key) && remove_extra(key) {
            d.extra_service(key);
        }
    }
    d.finish()
}

/// The diff built piece by piece, as the actual table is read, without keeping it: feed each
/// desired service in `desired`'s order, either as missing or as present (its settings, then
/// each destination the kernel has, then [`Differ::end_dests`]), then the extra services.
/// [`diff`] is this fed from a table; the kernel backend feeds it from its dump replies, so a
/// no-change resync keeps nothing per real server.
#[derive(Debug, Default)]
pub struct Differ {
    adds: Vec<Op>,
    edits: Vec<Op>,
    dest_dels: Vec<Op>,
    svc_dels: Vec<Op>,
    /// Destinations of the current service found both wanted and present.
    matched: usize,
    /// Where the current service's destination edits and deletions start.
    edits_from: usize,
    dels_from: usize,
}

fn dest_of(op: &Op) -> Option<DestKey> {
    match op {
        Op::AddDest { dest, .. } | Op::EditDest { dest, .. } | Op::DelDest { dest, .. } => Some(*dest),
        _ => None,
    }
}

impl Differ {
    /// `key` is wanted and absent: add it and its destinations.
    pub fn missing_service(&mut self, key: &ServiceKey, want: &Service) {
        self.adds.push(Op::AddService { key: *key, conf: want.conf.clone() });
        for (dk, d) in &want.dests {
            self.adds.push(Op::AddDest { svc: *key, dest: *dk, conf: d.clone() });
        }
    }

    /// `key` is wanted and present with settings `have`; its destinations follow.
    pub fn service_conf(&mut self, key: &ServiceKey, want: &Service, have: &ServiceConf) {
        if have != &want.conf {
            self.edits.push(Op::EditService { key: *key, conf: want.conf.clone() });
        }
        self.matched = 0;
        self.edits_from = self.edits.len();
        self.dels_from = self.dest_dels.len();
    }

    /// A destination the kernel has in the wanted service `key`: edited if its settings
    /// differ, deleted if it is not wanted. Each destination is given once.
    pub fn dest(&mut self, key: &ServiceKey, want: &Service, dk: &DestKey, have: &Dest) {
        match want.dests.get(dk) {
            None => self.dest_dels.push(Op::DelDest { svc: *key, dest: *dk }),
            Some(d) => {
                self.matched += 1;
                if !have.same_settings(d) {
                    self.edits.push(Op::EditDest { svc: *key, dest: *dk, conf: d.clone() });
                }
            }
        }
    }

    /// The destinations of `key` are all given: add the wanted ones that were not, asking
    /// `present` about each only when some are missing. The service's edits and deletions
    /// are put in destination order, whatever order the kernel listed them in.
    pub fn end_dests(&mut self, key: &ServiceKey, want: &Service, present: impl Fn(&DestKey) -> bool) {
        self.edits[self.edits_from..].sort_by_key(dest_of);
        self.dest_dels[self.dels_from..].sort_by_key(dest_of);
        if self.matched < want.dests.len() {
            for (dk, d) in &want.dests {
                if !present(dk) {
                    self.adds.push(Op::AddDest { svc: *key, dest: *dk, conf: d.clone() });
                }
            }
        }
    }

    /// `key` is present and not wanted, and ours to delete.
    pub fn extra_service(&mut self, key: &ServiceKey) {
        self.svc_dels.push(Op::DelService { key: *key });
    }

    /// The ops: additions, then edits, then destination deletions, then service deletions.
    pub fn finish(mut self) -> Vec<Op> {
        self.svc_dels.sort_by(|a, b| match (a, b) {
            (Op::DelService { key: x }, Op::DelService { key: y }) => x.cmp(y),
            _ => std::cmp::Ordering::Equal,
        });
        let mut ops = self.adds;
        ops.extend(self.edits);
        ops.extend(self.dest_dels);
        ops.extend(self.svc_dels);
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::table::{Dest, Family, Forward, Protocol};

    fn key(addr: &str) -> ServiceKey {
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: addr.parse().unwrap() }
    }
    /// (address, scheduler, [(real, weight)]) per service.
    type Spec<'a> = (&'a str, &'a str, &'a [(&'a str, u32)]);
    fn table(svcs: &[Spec]) -> Table {
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
        let mut mem = MemoryBackend { table: have.clone(), ..MemoryBackend::default() };
        for op in diff(&want, &have, |_| true) {
            mem.apply(&op).unwrap();
        }
        assert_eq!(mem.table, want);
        assert!(diff(&want, &mem.table, |_| true).is_empty());
    }

    #[test]
    fn a_differ_fed_in_the_kernels_order_gives_the_same_ops_as_diff() {
        let have = table(&[
            (A, "wrr", &[("198.51.100.9:80", 1), (R2, 1), (R1, 4), ("198.51.100.7:80", 2)]),
            ("192.0.2.9:80", "rr", &[(R1, 1)]),
            ("192.0.2.8:80", "rr", &[(R1, 1)]),
        ]);
        let want = table(&[(A, "rr", &[(R1, 1), (R2, 1), ("198.51.100.3:80", 1)]), ("192.0.2.3:53", "sh", &[(R1, 1)])]);
        let expected = diff(&want, &have, |_| true);
        // Destinations and extra services in reverse order, as a hash-ordered dump may list them.
        let mut d = Differ::default();
        for (key, w) in &want.services {
            match have.services.get(key) {
                None => d.missing_service(key, w),
                Some(h) => {
                    d.service_conf(key, w, &h.conf);
                    for (dk, hd) in h.dests.iter().rev() {
                        d.dest(key, w, dk, hd);
                    }
                    d.end_dests(key, w, |dk| h.dests.contains_key(dk));
                }
            }
        }
        for key in have.services.keys().rev() {
            if !want.services.contains_key(key) {
                d.extra_service(key);
            }
        }
        assert_eq!(d.finish(), expected);
        assert_eq!(expected.len(), 9, "{expected:?}");
    }
}
