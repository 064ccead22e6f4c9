//! Two virtual_server blocks for one service. keepalived adds each virtual server to IPVS
//! in turn and takes "File exists" for success (ipvswrapper.c `ipvs_talk`: EEXIST on
//! IP_VS_SO_SET_ADD or ADDDEST): the second block's real servers join the first block's
//! service, which keeps the first block's scheduler, persistence and flags; a real server
//! in both stays as the first block made it. lvsd declares the service once, with the second
//! block's reals carrying what they took from their own block (forwarding, tunnel, checks).

use super::*;

/// What a real of a service takes from its block unless it says otherwise.
#[derive(PartialEq)]
struct RealDefaults {
    forward: String,
    tunnel: Option<Value>,
    check: Option<Value>,
    inhibit_on_failure: Option<Value>,
}

impl RealDefaults {
    fn of(body: &[Entry]) -> RealDefaults {
        RealDefaults {
            forward: find_str(body, "forward").unwrap_or_else(|| "dr".into()),
            tunnel: get(body, "tunnel").cloned(),
            check: get(body, "check").cloned(),
            inhibit_on_failure: get(body, "inhibit_on_failure").cloned(),
        }
    }
}

/// Service fields that are the reals' defaults, or that name the service: not reported as
/// lost when the second block's differ.
const REAL_DEFAULTS: &[&str] = &["vip", "protocol", "fwmark", "family", "reals", "forward", "tunnel", "check", "inhibit_on_failure"];

impl Tx<'_> {
    /// Merge every service declared again into its first declaration, in place.
    pub(super) fn merge_duplicate_services(&mut self, items: Vec<Item>) -> Vec<Item> {
        let mut out: Vec<Item> = Vec::with_capacity(items.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for item in items {
            if item.kind != Kind::Service {
                out.push(item);
                continue;
            }
            match seen.get(&item.name) {
                Some(&i) => {
                    let first = &mut out[i];
                    let lost = merge_into(first, item.body, &item.loc);
                    let mut msg = format!(
                        "virtual_server {} is declared again (first at {}); keepalived adds this one's real servers to the first one's service",
                        item.name, first.loc
                    );
                    if !lost.skipped_reals.is_empty() {
                        msg.push_str(&format!(", except {} (already there: the first one's stays)", lost.skipped_reals.join(", ")));
                    }
                    if !lost.settings.is_empty() {
                        msg.push_str(&format!(
                            "; its service settings differ ({}): keepalived keeps the first one's",
                            lost.settings.join(", ")
                        ));
                    }
                    self.warn(&item.loc, msg);
                }
                None => {
                    seen.insert(item.name.clone(), out.len());
                    out.push(item);
                }
            }
        }
        out
    }
}

/// What a merge left out.
struct Lost {
    /// The service settings in which the second block differs from the first.
    settings: Vec<String>,
    /// Its reals already in the first block.
    skipped_reals: Vec<String>,
}

fn merge_into(first: &mut Item, second: Vec<Entry>, loc: &Loc) -> Lost {
    let mine = RealDefaults::of(&first.body);
    let theirs = RealDefaults::of(&second);
    let mut lost = Lost { settings: Vec::new(), skipped_reals: Vec::new() };
    let keys = first.body.iter().chain(&second).filter_map(|e| match e {
        Entry::Field(f) if !REAL_DEFAULTS.contains(&f.key.as_str()) => Some(f.key.as_str()),
        _ => None,
    });
    for k in keys {
        if get(&first.body, k) != get(&second, k) && !lost.settings.iter().any(|s| s == k) {
            lost.settings.push(k.to_string());
        }
    }
    let known: Vec<String> = reals(&first.body).iter().map(real_address).collect();
    let mut moved = Vec::new();
    for r in reals(&second) {
        let addr = real_address(&r);
        if known.contains(&addr) {
            lost.skipped_reals.push(addr);
            continue;
        }
        moved.push(if mine == theirs { r } else { with_defaults(r, &mine, &theirs, loc) });
    }
    // The second block's comments (keywords it could not translate) go with its reals.
    first.body.extend(second.into_iter().filter(|e| matches!(e, Entry::Comment(_))));
    if !moved.is_empty() {
        append_list(&mut first.body, field("reals", Value::List(moved), loc));
    }
    first.pre.push(format!("keepalived: virtual_server {} at {loc} adds its real servers here", first.name));
    lost
}

fn reals(body: &[Entry]) -> Vec<Value> {
    match get(body, "reals") {
        Some(Value::List(l)) => l.clone(),
        _ => Vec::new(),
    }
}

fn real_address(r: &Value) -> String {
    match r {
        Value::Str(a) => a.clone(),
        Value::Table(t) => find_str(t, "address").unwrap_or_default(),
        _ => String::new(),
    }
}

/// A real of the second block, written as a table holding what it took from its own block
/// where the first block's service would give it something else.
fn with_defaults(r: Value, mine: &RealDefaults, theirs: &RealDefaults, loc: &Loc) -> Value {
    let mut t = match r {
        Value::Table(t) => t,
        Value::Str(a) => vec![field("address", Value::Str(a), loc)],
        other => return other,
    };
    let own_forward = find_str(&t, "forward");
    if own_forward.is_none() && mine.forward != theirs.forward {
        t.push(field("forward", s(&theirs.forward), loc));
    }
    let forward = own_forward.unwrap_or_else(|| theirs.forward.clone());
    if forward == "tun" && get(&t, "tunnel").is_none() && mine.tunnel != theirs.tunnel {
        t.push(field("tunnel", theirs.tunnel.clone().unwrap_or(Value::Table(Vec::new())), loc));
    }
    if get(&t, "check").is_none() && mine.check != theirs.check {
        // No check of its own block: none (not the first block's).
        t.push(field("check", theirs.check.clone().unwrap_or(Value::List(Vec::new())), loc));
    }
    if get(&t, "inhibit_on_failure").is_none() && mine.inhibit_on_failure != theirs.inhibit_on_failure {
        t.push(field("inhibit_on_failure", theirs.inhibit_on_failure.clone().unwrap_or(Value::Bool(false)), loc));
    }
    Value::Table(t)
}
