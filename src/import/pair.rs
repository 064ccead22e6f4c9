//! Merge the translated configurations of two directors into one policy.
//!
//! Items (global settings, VRRP instances, services, ...) are matched by kind and name.
//! A field that differs becomes `node == "a" and X or Y`; an item on one director only is
//! wrapped in `if node == "a" then ... end`. Differences that cannot be right for a VRRP
//! pair (the two routers would not recognise each other) refuse the merge.

use thiserror::Error;

use super::lua::{Doc, Entry, Field, Item, Kind, Value};

#[derive(Debug, Error)]
pub enum PairError {
    #[error("refusing to merge {a} and {b} into one policy; they differ where a VRRP pair must agree:\n{diff}")]
    Mismatch { a: String, b: String, diff: String },
    #[error("node names must differ (both are '{0}')")]
    SameNode(String),
}

/// Fields of a VRRP instance both routers must agree on.
const MUST_AGREE: &[(&str, &str)] = &[
    ("vrid", "virtual_router_id"),
    ("auth_pass", "authentication"),
    ("vips", "virtual_ipaddress"),
    ("advert_int", "advert_int"),
    ("version", "version"),
];

pub fn merge(a: (&str, &Doc), b: (&str, &Doc)) -> Result<Doc, PairError> {
    let (na, da) = a;
    let (nb, db) = b;
    if na == nb {
        return Err(PairError::SameNode(na.to_string()));
    }
    let mut diff = Vec::new();
    let mut out = Doc::default();
    for ia in &da.items {
        match db.items.iter().find(|ib| ib.kind == ia.kind && ib.name == ia.name) {
            Some(ib) => {
                if ia.kind == Kind::Vrrp {
                    check_vrrp(na, ia, nb, ib, &mut diff);
                }
                out.items.push(merge_item(na, ia, nb, ib));
            }
            None => {
                if ia.kind == Kind::Vrrp {
                    diff.push(format!("  vrrp_instance {}: only on {na} ({})", ia.name, ia.loc));
                }
                let mut it = ia.clone();
                it.only_on = Some(na.to_string());
                out.items.push(it);
            }
        }
    }
    for ib in &db.items {
        if !da.items.iter().any(|ia| ia.kind == ib.kind && ia.name == ib.name) {
            if ib.kind == Kind::Vrrp {
                diff.push(format!("  vrrp_instance {}: only on {nb} ({})", ib.name, ib.loc));
            }
            let mut it = ib.clone();
            it.only_on = Some(nb.to_string());
            // Keep items grouped by kind: after the last item of the same kind.
            let pos = out.items.iter().rposition(|x| x.kind == ib.kind).map(|p| p + 1).unwrap_or(out.items.len());
            out.items.insert(pos, it);
        }
    }
    if !diff.is_empty() {
        return Err(PairError::Mismatch { a: na.to_string(), b: nb.to_string(), diff: diff.join("\n") });
    }
    Ok(out)
}

fn find<'a>(body: &'a [Entry], key: &str) -> Option<&'a Field> {
    body.iter().find_map(|e| match e {
        Entry::Field(f) if f.key == key => Some(f),
        _ => None,
    })
}

fn check_vrrp(na: &str, ia: &Item, nb: &str, ib: &Item, diff: &mut Vec<String>) {
    for (key, kw) in MUST_AGREE {
        let fa = find(&ia.body, key);
        let fb = find(&ib.body, key);
        let default = default_of(&Kind::Vrrp, key);
        let va = fa.map(|f| f.value.clone()).or(default.clone());
        let vb = fb.map(|f| f.value.clone()).or(default.clone());
        if comparable(key, &va) != comparable(key, &vb) {
            let show = |node: &str, f: Option<&Field>, item: &Item| match (f, &default) {
                (Some(f), _) => format!("{node} ({}) = {}", f.loc.as_ref().unwrap_or(&item.loc), show_value(&f.value)),
                (None, Some(d)) => format!("{node} ({}) = {} (keepalived's default)", item.loc, show_value(d)),
                (None, None) => format!("{node} ({}) = not set", item.loc),
            };
            diff.push(format!("  vrrp_instance {}: {kw}: {}, {}", ia.name, show(na, fa, ia), show(nb, fb, ib)));
        }
    }
}

/// What must agree: for VIPs the set of addresses (order, device and label may differ).
fn comparable(key: &str, v: &Option<Value>) -> Option<Value> {
    match (key, v) {
        ("vips", Some(Value::List(l))) => {
            let mut addrs: Vec<String> = l
                .iter()
                .map(|x| match x {
                    Value::Str(s) => s.split_whitespace().next().unwrap_or("").to_string(),
                    other => format!("{other:?}"),
                })
                .collect();
            addrs.sort();
            Some(Value::List(addrs.into_iter().map(Value::Str).collect()))
        }
        _ => v.clone(),
    }
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("{s:?}"),
        Value::Int(i) => i.to_string(),
        Value::Num(n) => n.clone(),
        Value::Bool(b) => b.to_string(),
        Value::List(l) => format!("{{ {} }}", l.iter().map(show_value).collect::<Vec<_>>().join(", ")),
        other => format!("{other:?}"),
    }
}

/// Defaults that are clearer written out when only one director sets the field
/// (`priority = node == "lvs01" and 100 or 90` rather than `... and nil or 90`).
fn default_of(kind: &Kind, key: &str) -> Option<Value> {
    match (kind, key) {
        (Kind::Vrrp, "priority") => Some(Value::Int(100)),
        (Kind::Vrrp, "state") => Some(Value::Str("backup".into())),
        (Kind::Vrrp, "nopreempt") => Some(Value::Bool(false)),
        (Kind::Vrrp, "preempt_delay") => Some(Value::Int(0)),
        (Kind::Vrrp, "advert_int") => Some(Value::Int(1)),
        (Kind::Vrrp, "version") => Some(Value::Int(2)),
        _ => None,
    }
}

fn merge_item(na: &str, ia: &Item, nb: &str, ib: &Item) -> Item {
    let mut it = ia.clone();
    let (mut ba, mut bb) = (ia.body.clone(), ib.body.clone());
    fill_defaults(&ia.kind, &mut ba, &ib.body);
    fill_defaults(&ia.kind, &mut bb, &ia.body);
    it.body = merge_body(na, &ba, nb, &bb);
    for p in &ib.pre {
        if !it.pre.contains(p) {
            it.pre.push(p.clone());
        }
    }
    it
}

/// Add to `body` the default of each field `other` sets and `body` leaves out.
fn fill_defaults(kind: &Kind, body: &mut Vec<Entry>, other: &[Entry]) {
    for (i, e) in other.iter().enumerate() {
        if let Entry::Field(f) = e
            && find(body, &f.key).is_none()
            && let Some(v) = default_of(kind, &f.key)
        {
            // Same place as in the other director's body, so the merged order reads naturally.
            let at = i.min(body.len());
            body.insert(at, Entry::Field(Field { key: f.key.clone(), value: v, loc: None, note: None }));
        }
    }
}

fn merge_body(na: &str, a: &[Entry], nb: &str, b: &[Entry]) -> Vec<Entry> {
    let nil = || Value::Ident("nil".into());
    let mut out = Vec::new();
    for e in a {
        match e {
            Entry::Comment(_) => out.push(e.clone()),
            Entry::Field(fa) => match find(b, &fa.key) {
                Some(fb) if fb.value == fa.value => out.push(e.clone()),
                Some(fb) => {
                    let mut f = fa.clone();
                    f.value = Value::PerNode(vec![(na.into(), fa.value.clone()), (nb.into(), fb.value.clone())]);
                    out.push(Entry::Field(f));
                }
                None => {
                    let mut f = fa.clone();
                    f.value = Value::PerNode(vec![(na.into(), fa.value.clone()), (nb.into(), nil())]);
                    out.push(Entry::Field(f));
                }
            },
        }
    }
    for e in b {
        match e {
            Entry::Comment(_) => {
                if !out.contains(e) {
                    out.push(e.clone());
                }
            }
            Entry::Field(fb) => {
                if find(a, &fb.key).is_none() {
                    let mut f = fb.clone();
                    f.value = Value::PerNode(vec![(nb.into(), fb.value.clone()), (na.into(), nil())]);
                    out.push(Entry::Field(f));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::import::lua::render;
    use crate::import::parser::{ParseOptions, parse_str};
    use crate::import::translate::translate;
    use std::path::Path;

    fn doc(text: &str) -> crate::import::lua::Doc {
        let (n, mut w) = parse_str(Path::new("t.conf"), text, &ParseOptions::default()).unwrap();
        translate(&n, &mut w).unwrap()
    }

    const VS: &str = "virtual_server 192.0.2.1 80 {\n protocol TCP\n lb_kind DR\n real_server 192.0.2.2 80 {\n  weight W\n }\n}\n";

    #[test]
    fn a_service_on_one_node_is_wrapped_and_differences_become_conditions() {
        let a = doc(&VS.replace('W', "1"));
        let b = doc(&format!(
            "{}virtual_server 192.0.2.9 80 {{\n protocol TCP\n lb_kind DR\n real_server 192.0.2.2 80 {{\n }}\n}}\n",
            VS.replace('W', "3")
        ));
        let lua = render(&super::merge(("n1", &a), ("n2", &b)).unwrap(), "--", Some(()));
        assert!(lua.contains("if node == \"n2\" then\n  lvsd.service \"192.0.2.9:80\" {\n    vip = \"192.0.2.9:80\",\n    reals = { \"192.0.2.2:80\" },\n  }\nend\n"), "{lua}");
        assert!(
            lua.contains("reals = node == \"n1\" and { \"192.0.2.2:80\" } or { { address = \"192.0.2.2:80\", weight = 3 } },"),
            "{lua}"
        );
    }

    #[test]
    fn vips_may_differ_in_order_and_device_but_not_in_addresses() {
        let a = doc("vrrp_instance V {\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1\n  192.0.2.2 dev eth0\n }\n}\n");
        let b = doc("vrrp_instance V {\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.2 dev ens3\n  192.0.2.1\n }\n}\n");
        let lua = render(&super::merge(("n1", &a), ("n2", &b)).unwrap(), "--", Some(()));
        assert!(lua.contains("vips = node == \"n1\" and"), "{lua}");
        let c = doc("vrrp_instance V {\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n");
        assert!(super::merge(("n1", &a), ("n2", &c)).is_err());
    }

    #[test]
    fn a_script_on_one_node_stays_in_scope() {
        let inst = "vrrp_instance V {\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1\n }\n";
        let a = doc(&format!("vrrp_script chk {{\n script /bin/true\n}}\n{inst} track_script {{\n  chk\n }}\n}}\n"));
        let b = doc(&format!("{inst}}}\n"));
        let lua = render(&super::merge(("n1", &a), ("n2", &b)).unwrap(), "--", Some(()));
        assert!(lua.contains("local chk\nif node == \"n1\" then\n  chk = lvsd.track.exec {"), "{lua}");
        assert!(lua.contains("track = node == \"n1\" and { chk } or nil,"), "{lua}");
    }
}
