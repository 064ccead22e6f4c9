//! Routes over rtnetlink inside a network namespace (root only), cross-checked with
//! `ip route`: iproute2 reads back what lvsd wrote.

use lvsd::net::netns::{Netns, privileged_or_skip, unique_name};
use lvsd::net::route::{self, Route, RouteError, RouteKind};

/// A namespace with an `eth0` holding 192.0.2.1/24 and 2001:db8::1/64 (one end of a veth
/// pair whose other end stays in the namespace: the host kernel has no dummy driver).
fn ns_with_eth0(prefix: &str) -> Netns {
    let ns = Netns::create(&unique_name(prefix)).unwrap();
    ns.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]).unwrap();
    ns.ip(&["link", "set", "eth0p", "up"]).unwrap();
    ns.ip(&["link", "set", "eth0", "up"]).unwrap();
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]).unwrap();
    ns.ip(&["addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad"]).unwrap();
    ns
}

fn route(dst: &str, prefix_len: u8) -> Route {
    Route::to(dst.parse().unwrap(), prefix_len)
}

/// The line of `ip ARGS` (a `route show`) that starts with `start`, if any.
fn shown(ns: &Netns, show: &[&str], start: &str) -> Option<String> {
    let out = match ns.ip(show) {
        // A table no route was ever added to does not exist yet.
        Err(e) if e.to_string().contains("table does not exist") => return None,
        r => r.unwrap(),
    };
    out.lines().find(|l| l.starts_with(&format!("{start} "))).map(str::to_owned)
}

const MAIN: &[&str] = &["route", "show"];
const MAIN6: &[&str] = &["-6", "route", "show"];
const TABLE100: &[&str] = &["route", "show", "table", "100"];

/// Add `r`, check that `ip ARGS` shows it with each of `expect`, check that adding again
/// changes nothing, delete it, check it is gone and that deleting again changes nothing.
fn round_trip(ns: &Netns, r: &Route, show: &[&str], start: &str, expect: &[&str]) {
    let what = r.describe();
    assert!(shown(ns, show, start).is_none(), "{what}: already there before adding");
    assert!(ns.run(|| route::add_route(r)).unwrap().unwrap(), "{what}: first add adds");
    let line = shown(ns, show, start).unwrap_or_else(|| panic!("{what}: not in `ip {}`:\n{}", show.join(" "), ns.ip(show).unwrap()));
    for word in expect.iter().chain(&["proto keepalived"]) {
        assert!(line.contains(word), "{what}: {word:?} missing from {line:?}");
    }
    assert!(!ns.run(|| route::add_route(r)).unwrap().unwrap(), "{what}: second add reports no change");
    assert!(ns.run(|| route::del_route(r)).unwrap().unwrap(), "{what}: delete removes");
    assert!(shown(ns, show, start).is_none(), "{what}: still there after delete");
    assert!(!ns.run(|| route::del_route(r)).unwrap().unwrap(), "{what}: second delete reports no change");
}

#[test]
fn routes_are_added_and_removed() {
    if !privileged_or_skip("routes_are_added_and_removed") {
        return;
    }
    let ns = ns_with_eth0("lvrt");
    let gw = Some("192.0.2.254".parse().unwrap());

    let via = Route { via: gw, dev: Some("eth0".into()), ..route("203.0.113.0", 24) };
    round_trip(&ns, &via, MAIN, "203.0.113.0/24", &["via 192.0.2.254 dev eth0"]);

    // No gateway: the destination is on the link.
    let on_link = Route { dev: Some("eth0".into()), ..route("198.51.100.0", 25) };
    round_trip(&ns, &on_link, MAIN, "198.51.100.0/25", &["dev eth0", "scope link"]);

    let blackhole = Route { kind: RouteKind::Blackhole, ..route("198.51.100.128", 25) };
    round_trip(&ns, &blackhole, MAIN, "blackhole 198.51.100.128/25", &[]);
    let prohibit = Route { kind: RouteKind::Prohibit, ..route("198.51.100.128", 25) };
    round_trip(&ns, &prohibit, MAIN, "prohibit 198.51.100.128/25", &[]);

    let src = Route { src: Some("192.0.2.1".parse().unwrap()), dev: Some("eth0".into()), ..route("203.0.113.128", 25) };
    round_trip(&ns, &src, MAIN, "203.0.113.128/25", &["dev eth0", "src 192.0.2.1"]);

    // Another table, with a metric: shown there, not in main.
    let table = Route { via: gw, table: Some(100), metric: Some(7), ..route("203.0.113.0", 24) };
    assert!(ns.run(|| route::add_route(&table)).unwrap().unwrap());
    assert!(shown(&ns, MAIN, "203.0.113.0/24").is_none(), "table 100 route shown in main");
    assert!(ns.run(|| route::del_route(&table)).unwrap().unwrap());
    round_trip(&ns, &table, TABLE100, "203.0.113.0/24", &["via 192.0.2.254 dev eth0", "metric 7"]);

    // A table id beyond the header's byte travels in RTA_TABLE alone.
    let big = Route { table: Some(1000), ..table.clone() };
    round_trip(&ns, &big, &["route", "show", "table", "1000"], "203.0.113.0/24", &["via 192.0.2.254", "metric 7"]);

    // IPv6, the device found from the gateway.
    let v6 = Route { via: Some("2001:db8::fe".parse().unwrap()), ..route("2001:db8:1::", 48) };
    round_trip(&ns, &v6, MAIN6, "2001:db8:1::/48", &["via 2001:db8::fe dev eth0"]);
}

#[test]
fn delete_removes_only_the_route_named() {
    if !privileged_or_skip("delete_removes_only_the_route_named") {
        return;
    }
    let ns = ns_with_eth0("lvrtd");
    let r = Route { via: Some("192.0.2.254".parse().unwrap()), metric: Some(5), ..route("203.0.113.0", 24) };
    assert!(ns.run(|| route::add_route(&r)).unwrap().unwrap());

    // Another gateway, metric or table names another route: nothing is deleted.
    let others = [
        Route { via: Some("192.0.2.253".parse().unwrap()), ..r.clone() },
        Route { metric: Some(6), ..r.clone() },
        Route { table: Some(100), ..r.clone() },
        Route { kind: RouteKind::Blackhole, via: None, ..r.clone() },
    ];
    for other in &others {
        assert!(!ns.run(|| route::del_route(other)).unwrap().unwrap(), "{} deleted {}", other.describe(), r.describe());
        assert!(shown(&ns, MAIN, "203.0.113.0/24").is_some(), "{} deleted {}", other.describe(), r.describe());
    }

    // A route to the same prefix with the same metric is "already there" for the kernel.
    let same_slot = Route { via: Some("192.0.2.253".parse().unwrap()), ..r.clone() };
    assert!(!ns.run(|| route::add_route(&same_slot)).unwrap().unwrap());
    assert!(shown(&ns, MAIN, "203.0.113.0/24").unwrap().contains("via 192.0.2.254"));

    assert!(ns.run(|| route::del_route(&r)).unwrap().unwrap());
    assert!(shown(&ns, MAIN, "203.0.113.0/24").is_none());

    // The operator's own route, the same but for its protocol, is not ours to delete.
    ns.ip(&["route", "add", "203.0.113.0/24", "via", "192.0.2.254", "metric", "5", "proto", "static"]).unwrap();
    assert!(!ns.run(|| route::del_route(&r)).unwrap().unwrap());
    assert!(shown(&ns, MAIN, "203.0.113.0/24").unwrap().contains("proto static"));
}

#[test]
fn route_errors_name_the_route() {
    if !privileged_or_skip("route_errors_name_the_route") {
        return;
    }
    let ns = ns_with_eth0("lvrte");
    let nodev = Route { dev: Some("nope0".into()), ..route("203.0.113.0", 24) };
    let e = ns.run(|| route::add_route(&nodev)).unwrap().unwrap_err();
    assert!(matches!(e, RouteError::Link { .. }), "{e}");
    assert!(e.to_string().contains("203.0.113.0/24 dev nope0") && e.to_string().contains("no such interface"), "{e}");

    // The kernel refuses an unreachable gateway; the error says which route.
    let far = Route { via: Some("198.51.100.1".parse().unwrap()), ..route("203.0.113.0", 24) };
    let e = ns.run(|| route::add_route(&far)).unwrap().unwrap_err();
    assert!(matches!(e, RouteError::Rtnl { .. }), "{e}");
    assert!(e.to_string().starts_with("add route 203.0.113.0/24 via 198.51.100.1: "), "{e}");

    // Host bits set: the kernel refuses an IPv4 prefix that is not a network address.
    let host_bits = Route { dev: Some("eth0".into()), ..route("203.0.113.7", 24) };
    let e = ns.run(|| route::add_route(&host_bits)).unwrap().unwrap_err();
    assert!(e.to_string().contains("203.0.113.7/24"), "{e}");

    let e = ns.run(|| route::add_route(&Route { prefix_len: 33, ..far })).unwrap().unwrap_err();
    assert!(matches!(e, RouteError::BadPrefix { .. }), "{e}");
    assert!(ns.ip(MAIN).unwrap().lines().all(|l| !l.starts_with("203.0.113.")), "nothing was added");
}
