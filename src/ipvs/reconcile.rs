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
                        Some(hd) if !hd.same_settings(d) => {
                            edits.push(Op::EditDest { svc: *key, dest: *dk, conf: d.clone() })
                        }
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
