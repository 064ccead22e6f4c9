//! A LAN of network namespaces for tests and benchmarks: a switch namespace holding bridge
//! `br0` and hosts, each with an `eth0` plugged into it.

use lvsd::net::netns::{Netns, NetnsError, attach, bridge, unique_name};
use lvsd::net::sysctl::{self, SysctlKey};

/// IPv6 duplicate address detection is off in the hosts so link-local and test addresses are
/// usable at once. Everything is deleted on drop.
#[derive(Debug)]
pub struct Lan {
    /// Dropped before the switch.
    pub hosts: Vec<Netns>,
    pub switch: Netns,
}

fn set(ns: &Netns, key: &SysctlKey, value: &str) -> Result<(), NetnsError> {
    ns.run(|| sysctl::write(key, value))?.map_err(|e| NetnsError::Failed {
        cmd: format!("sysctl {key}={value} in {}", ns.name()),
        status: "error".into(),
        stderr: e.to_string(),
    })
}

impl Lan {
    /// `prefix` keeps names short and recognisable: `<prefix>-<pid>-<n>`.
    pub fn new(prefix: &str, hosts: usize) -> Result<Self, NetnsError> {
        let switch = Netns::create(&unique_name(&format!("{prefix}s")))?;
        // The switch has no addresses of its own: keep its ports quiet (no IPv6 link-local,
        // no DAD or MLD packets of its own on the wire that tests capture).
        set(&switch, &SysctlKey::ipv6_conf("default", "disable_ipv6").expect("static key"), "1")?;
        bridge(&switch, "br0")?;
        let mut lan = Lan { hosts: Vec::new(), switch };
        for i in 0..hosts {
            let host = Netns::create(&unique_name(&format!("{prefix}h")))?;
            for conf in ["all", "default"] {
                set(&host, &SysctlKey::ipv6_conf(conf, "accept_dad").expect("static key"), "0")?;
            }
            let port = format!("p{i}");
            host.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", lan.switch.name()])?;
            attach(&lan.switch, &port, "br0")?;
            lan.switch.ip(&["link", "set", &port, "up"])?;
            host.ip(&["link", "set", "eth0", "up"])?;
            lan.hosts.push(host);
        }
        Ok(lan)
    }

    pub fn host(&self, i: usize) -> &Netns {
        &self.hosts[i]
    }
}
