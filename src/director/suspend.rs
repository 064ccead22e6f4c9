//! keepalived's `ha_suspend`: a service whose VIP is a VRRP address is in the IPVS table, and
//! its checks run, only while an instance holding that address is master here. The backup
//! keeps its hands off the real servers (keepalived suspends its checkers there too).

use crate::model::{Vip, VirtualServer, VrrpInstance};

/// Whether `vs` is suspended now, given the policy's VRRP instances and which are master.
/// A VIP that no instance holds never suspends its service (keepalived looks for the address
/// on the host's interfaces; one no instance adds is taken as present). Firewall-mark services
/// have no address: keepalived clears `ha_suspend` on them.
pub fn suspended(vs: &VirtualServer, instances: &[VrrpInstance], is_master: impl Fn(&str) -> bool) -> bool {
    if !vs.ha_suspend {
        return false;
    }
    let Vip::Addr { addr, .. } = vs.vip else { return false };
    let mut owners = instances.iter().filter(|v| v.held_vips().any(|a| a.addr == addr.ip())).peekable();
    owners.peek().is_some() && !owners.any(|v| is_master(&v.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{LoadOptions, load_source};
    use std::path::Path;

    #[test]
    fn suspended_unless_an_instance_holding_the_vip_is_master() {
        let src = r#"
lvsd.vrrp "VI_1" { interface = "eth0", vrid = 1, vips = { "192.0.2.100" } }
lvsd.vrrp "VI_2" { interface = "eth0", vrid = 2, vips = { "192.0.2.100", "192.0.2.101/24" } }
lvsd.vrrp "VI_3" { interface = "eth0", vrid = 3, vips = { "192.0.2.103" }, excluded_vips = { "2001:db8::103" } }
lvsd.service "web" { vip = "192.0.2.100:80", ha_suspend = true, reals = { "198.51.100.1:80" } }
lvsd.service "other" { vip = "192.0.2.101:80", ha_suspend = true, reals = { "198.51.100.1:80" } }
lvsd.service "plain" { vip = "192.0.2.100:81", reals = { "198.51.100.1:80" } }
lvsd.service "v6" { vip = "[2001:db8::103]:80", ha_suspend = true, reals = { "[2001:db8::1]:80" } }
lvsd.service "local" { vip = "198.51.100.7:80", ha_suspend = true, reals = { "198.51.100.1:80" } }
"#;
        let opts = LoadOptions { node: "lvs01".into(), limits: Default::default() };
        let m = load_source(src, Path::new("t.lua"), Path::new("."), &opts).unwrap().model;
        let at = |name: &str, master: &[&str]| {
            let vs = m.services.iter().find(|s| s.name == name).unwrap();
            suspended(vs, &m.vrrp, |n| master.contains(&n))
        };
        assert!(at("web", &[]));
        assert!(!at("web", &["VI_2"]));
        assert!(!at("web", &["VI_1"]));
        assert!(at("other", &["VI_1"]), "VI_1 does not hold 192.0.2.101");
        assert!(!at("other", &["VI_2"]));
        // An excluded address is held like a VIP.
        assert!(at("v6", &["VI_1"]));
        assert!(!at("v6", &["VI_3"]));
        // Not set, or a VIP of no instance: never suspended.
        assert!(!at("plain", &[]));
        assert!(!at("local", &[]));
    }
}
