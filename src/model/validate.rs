//! Rules that span fields or objects. Per-field types and ranges are checked when the
//! policy is read; what is here needs the whole model.

use super::{ForwardMethod, Model, ModelError, SCHED_FLAGS, Vip, VrrpInstance};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// Every rule violated, in policy order. Empty means valid.
pub fn validate(m: &Model) -> Vec<ModelError> {
    let mut errs = Vec::new();
    validate_vrrp(m, &mut errs);
    validate_services(m, &mut errs);
    validate_bgp(m, &mut errs);
    errs.sort_by(|a, b| (&a.origin.file, a.origin.line).cmp(&(&b.origin.file, b.origin.line)));
    errs
}

fn validate_instance(v: &VrrpInstance, errs: &mut Vec<ModelError>) {
    let err = |errs: &mut Vec<ModelError>, msg: String| errs.push(ModelError::new(&v.origin, msg));
    // keepalived runs a VRRPv2 instance without VIPs (its adverts list none; notify programs
    // may set an address), but not a VRRPv3 one (vrrp_complete_instance).
    if v.vips.is_empty() && v.version == 3 {
        err(errs, format!("vrrp '{}': vips is empty; a VRRPv3 instance needs at least one virtual address", v.name));
    }
    if let Some(first) = v.vips.first() {
        for vip in &v.vips[1..] {
            if vip.addr.is_ipv4() != first.addr.is_ipv4() {
                err(
                    errs,
                    format!(
                        "vrrp '{}': VIP {} is not in the same address family as {} (one instance carries one family; use a second instance)",
                        v.name, vip.addr, first.addr
                    ),
                );
            }
        }
    }
    // RFC 3768 is IPv4 only; IPv6 needs VRRPv3 (RFC 5798).
    if v.version == 2 && v.is_ipv6() {
        err(errs, format!("vrrp '{}': IPv6 VIPs need version = 3 (VRRPv2 is IPv4 only)", v.name));
    }
    if v.version == 3 && v.auth_pass.is_some() {
        err(errs, format!("vrrp '{}': auth_pass is VRRPv2 only (RFC 5798 removed authentication)", v.name));
    }
    if v.version == 2 && !v.advert_int_cs.is_multiple_of(100) {
        err(
            errs,
            format!(
                "vrrp '{}': advert_int {} is not a whole number of seconds (VRRPv2 carries seconds; use version = 3 for fractions)",
                v.name,
                v.advert_int_secs()
            ),
        );
    }
    let fam6 = v.is_ipv6();
    if let Some(src) = v.unicast_src
        && src.is_ipv6() != fam6
    {
        err(errs, format!("vrrp '{}': unicast_src {} is not in the family of the VIPs", v.name, src));
    }
    for p in &v.unicast_peers {
        if p.is_ipv6() != fam6 {
            err(errs, format!("vrrp '{}': unicast peer {} is not in the family of the VIPs", v.name, p));
        }
    }
    // A VIP listed twice is kept as keepalived keeps it (alloc_vrrp_vip appends without a
    // check, and vrrp_build_vrrp_v2/v3 write every entry and count them all): the adverts carry
    // it twice, so a keepalived peer with the same list accepts them; the interface has it once.
    // Listed twice with different settings, one of them could not be what is configured.
    // The excluded VIPs are held the same way (an address in both lists is held once).
    let mut seen: HashMap<IpAddr, &super::VipAddr> = HashMap::new();
    for vip in v.held_vips() {
        match seen.get(&vip.addr) {
            Some(first) if *first != vip => {
                err(errs, format!("vrrp '{}': VIP {} is listed twice with different settings ({} and {})", v.name, vip.addr, first, vip))
            }
            Some(_) => {}
            None => {
                seen.insert(vip.addr, vip);
            }
        }
    }
}

fn validate_vrrp(m: &Model, errs: &mut Vec<ModelError>) {
    let mut names: HashMap<&str, &VrrpInstance> = HashMap::new();
    // (interface, family, vrid): VRRP routers are identified by VRID per LAN and family.
    let mut vrids: HashMap<(&str, bool, u8), &VrrpInstance> = HashMap::new();
    let mut vmacs: HashMap<&str, &VrrpInstance> = HashMap::new();
    for v in &m.vrrp {
        validate_instance(v, errs);
        if let Some(vm) = &v.vmac {
            // keepalived gives a second instance with the same default name another one
            // (vrrp1.VRID, vrrp6.VRID); here the policy names it.
            if let Some(prev) = vmacs.insert(&vm.name, v) {
                errs.push(ModelError::new(
                    &v.origin,
                    format!(
                        "vrrp '{}': use_vmac {} is already the virtual MAC interface of '{}': give it another name",
                        v.name, vm.name, prev.name
                    ),
                ));
            }
            if m.vrrp.iter().any(|o| o.interface == vm.name) {
                errs.push(ModelError::new(&v.origin, format!("vrrp '{}': use_vmac {} is an instance's own interface", v.name, vm.name)));
            }
        }
        if let Some(prev) = names.insert(&v.name, v) {
            errs.push(ModelError::new(&v.origin, format!("vrrp '{}' is declared twice (first at {})", v.name, prev.origin)));
        }
        if let Some(prev) = vrids.insert((&v.interface, v.is_ipv6(), v.vrid), v) {
            errs.push(ModelError::new(
                &v.origin,
                format!("vrrp '{}': vrid {} is already used on {} by '{}' ({})", v.name, v.vrid, v.interface, prev.name, prev.origin),
            ));
        }
    }
    let mut member_of: HashMap<&str, &str> = HashMap::new();
    let mut group_names = HashSet::new();
    for g in &m.sync_groups {
        if !group_names.insert(&g.name) {
            errs.push(ModelError::new(&g.origin, format!("sync_group '{}' is declared twice", g.name)));
        }
        for i in &g.instances {
            if !names.contains_key(i.as_str()) {
                let mut valid: Vec<&str> = names.keys().copied().collect();
                valid.sort();
                errs.push(ModelError::new(
                    &g.origin,
                    format!(
                        "sync_group '{}': unknown vrrp instance '{}' (declared instances: {})",
                        g.name,
                        i,
                        if valid.is_empty() { "none".to_string() } else { valid.join(", ") }
                    ),
                ));
            }
            if let Some(other) = member_of.insert(i, &g.name) {
                errs.push(ModelError::new(
                    &g.origin,
                    format!("sync_group '{}': instance '{}' is already in sync_group '{}'", g.name, i, other),
                ));
            }
        }
    }
    if let Some(sd) = &m.sync_daemon
        && let Some(i) = &sd.instance
        && !names.contains_key(i.as_str())
    {
        errs.push(ModelError::new(&sd.origin, format!("sync_daemon: unknown vrrp instance '{i}'")));
    }
}

fn validate_services(m: &Model, errs: &mut Vec<ModelError>) {
    let mut keys = HashMap::new();
    let mut names = HashMap::new();
    for s in &m.services {
        let err = |errs: &mut Vec<ModelError>, msg: String| errs.push(ModelError::new(&s.origin, msg));
        if let Some(prev) = names.insert(s.name.as_str(), &s.origin) {
            err(errs, format!("service '{}' is declared twice (first at {})", s.name, prev));
        }
        let key = match s.vip {
            Vip::Addr { protocol, addr } => format!("{} {}", protocol.ipvsadm_name(), addr),
            Vip::Fwmark { mark, family } => format!("fwmark {mark} {family:?}"),
        };
        if let Some(prev) = keys.insert(key.clone(), (&s.name, &s.origin)) {
            err(errs, format!("service '{}': {} is already service '{}' ({})", s.name, key, prev.0, prev.1));
        }
        if let Vip::Addr { addr, .. } = s.vip
            && addr.port() == 0
            && s.persistence.is_none()
        {
            err(errs, format!("service '{}': port 0 (all ports) needs persistence", s.name));
        }
        if !s.sched_flags.is_empty() && s.scheduler != "sh" && s.scheduler != "mh" {
            err(errs, format!("service '{}': sched_flags only apply to the sh and mh schedulers, not {}", s.name, s.scheduler));
        }
        for f in &s.sched_flags {
            if !f.starts_with(&s.scheduler) {
                err(
                    errs,
                    format!(
                        "service '{}': sched flag '{}' does not belong to scheduler {} (valid: {})",
                        s.name,
                        f,
                        s.scheduler,
                        SCHED_FLAGS.join(", ")
                    ),
                );
            }
        }
        if s.netmask.is_some() && s.persistence.is_none() {
            err(errs, format!("service '{}': netmask (persistence granularity) needs persistence", s.name));
        }
        if s.hysteresis >= s.quorum && s.hysteresis > 0 {
            err(errs, format!("service '{}': hysteresis {} must be below quorum {}", s.name, s.hysteresis, s.quorum));
        }
        let fam = s.vip.family();
        let mut seen = HashSet::new();
        for r in &s.reals {
            let rerr = |errs: &mut Vec<ModelError>, msg: String| errs.push(ModelError::new(&r.origin, msg));
            if !seen.insert(r.addr) {
                rerr(errs, format!("service '{}': real server {} is listed twice", s.name, r.addr));
            }
            // Only tunnelling can carry one family inside the other (kernel 5.3+).
            if crate::ipvs::table::Family::of(&r.addr.ip()) != fam && r.forward != ForwardMethod::Tun {
                rerr(
                    errs,
                    format!(
                        "service '{}': real server {} is not in the family of the VIP (only forward = \"tun\" can mix families)",
                        s.name, r.addr
                    ),
                );
            }
            if r.lower_threshold > r.upper_threshold && r.upper_threshold != 0 {
                rerr(
                    errs,
                    format!(
                        "service '{}': real server {}: lower_threshold {} is above upper_threshold {}",
                        s.name, r.addr, r.lower_threshold, r.upper_threshold
                    ),
                );
            }
            // A NAT real without a port is fine behind a fwmark service (the packet's port is
            // kept, as keepalived's fwmark sample does); behind an address service it is not.
            if r.forward == ForwardMethod::Nat && r.addr.port() == 0 && matches!(s.vip, Vip::Addr { .. }) {
                rerr(errs, format!("service '{}': real server {}: NAT needs a port", s.name, r.addr));
            }
        }
        if let Some(sorry) = &s.sorry_server {
            if crate::ipvs::table::Family::of(&sorry.addr.ip()) != fam && sorry.forward != ForwardMethod::Tun {
                err(errs, format!("service '{}': sorry_server {} is not in the family of the VIP", s.name, sorry.addr));
            }
            if s.reals.iter().any(|r| r.addr == sorry.addr) {
                err(errs, format!("service '{}': sorry_server {} is also a real server", s.name, sorry.addr));
            }
        }
    }
}

fn validate_bgp(m: &Model, errs: &mut Vec<ModelError>) {
    if let Some(b) = &m.bgp {
        let mut seen = HashSet::new();
        for n in &b.neighbors {
            if !seen.insert(n.address) {
                errs.push(ModelError::new(&b.origin, format!("bgp: neighbor {} is listed twice", n.address)));
            }
        }
    }
    // One route per VIP address: the services sharing it must agree on its attributes.
    let mut attrs: HashMap<IpAddr, (&str, &super::Announce)> = HashMap::new();
    for s in m.services.iter() {
        let Some(a) = &s.announce else { continue };
        let err = |errs: &mut Vec<ModelError>, msg: String| errs.push(ModelError::new(&s.origin, msg));
        if m.bgp.is_none() {
            err(errs, format!("service '{}': announce needs lvsd.bgp {{ ... }} (the local BIRD and its neighbours)", s.name));
        }
        let Vip::Addr { addr, .. } = s.vip else {
            err(errs, format!("service '{}': announce needs a vip address (a fwmark service has none to announce)", s.name));
            continue;
        };
        if let Some((other, prev)) = attrs.get(&addr.ip()) {
            if (prev.med, &prev.communities) != (a.med, &a.communities) {
                err(
                    errs,
                    format!(
                        "service '{}': announce med/communities differ from service '{}' on the same VIP {} (one route per address: give them once)",
                        s.name,
                        other,
                        addr.ip()
                    ),
                );
            }
        } else {
            attrs.insert(addr.ip(), (&s.name, a));
        }
    }
}

/// Things worth telling the operator that do not make the policy invalid, in policy order.
pub fn warnings(m: &Model) -> Vec<ModelError> {
    let mut out = Vec::new();
    for s in &m.services {
        // Several directors behind ECMP each pick a real for a flow the router may move
        // between them: only a hash of the flow gives every director the same choice.
        if s.announce.is_some() && s.scheduler != "mh" && s.scheduler != "sh" {
            out.push(ModelError::new(
                &s.origin,
                format!(
                    "warning: service '{}' is announced over BGP (scale-out) with scheduler {}: directors may send one flow to different reals when the router moves it; use scheduler = \"mh\" (or \"sh\" with the same reals, weights and order on every director)",
                    s.name, s.scheduler
                ),
            ));
        }
        // The kernel refuses l_threshold > u_threshold with ERANGE even when u_threshold is 0
        // (none). keepalived accepts such a real and fails to add it; so do we, but we say so.
        for r in s.reals.iter().filter(|r| r.lower_threshold != 0 && r.upper_threshold == 0) {
            out.push(ModelError::new(
                &s.origin,
                format!(
                    "warning: service '{}': real server {}: lower_threshold {} without upper_threshold: the kernel refuses to add this real (ERANGE)",
                    s.name, r.addr, r.lower_threshold
                ),
            ));
        }
    }
    if let Some(b) = &m.bgp
        && !m.services.iter().any(|s| s.announce.is_some())
    {
        out.push(ModelError::new(&b.origin, "warning: lvsd.bgp is declared but no service has announce = true: nothing will be announced"));
    }
    out.sort_by(|a, b| (&a.origin.file, a.origin.line).cmp(&(&b.origin.file, b.origin.line)));
    out
}
