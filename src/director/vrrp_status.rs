//! A VRRP instance as `lvsd status` shows it. The heartbeat makes these for its view every
//! 100 ms; they become JSON only on the director's side, when someone asks, so that the
//! heartbeat's thread spends little on them (a JSON object of two dozen keys, each key a
//! string of its own, was a fifth of that thread's work at 10 ms adverts).

use crate::model::VrrpInstance;
use crate::vrrp::packet::DropCounters;
use serde::{Serialize, Serializer, ser::SerializeMap};
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum InstanceStatus {
    Running(Box<RunningStatus>),
    /// An instance that could not start, with why.
    Failed {
        name: String,
        state: &'static str,
        error: String,
    },
}

impl InstanceStatus {
    pub fn failed(name: &str, error: &str) -> InstanceStatus {
        InstanceStatus::Failed { name: name.to_string(), state: "not running", error: error.to_string() }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// What changes only with the policy: made when the instance starts or is updated.
#[derive(Debug, Serialize)]
pub struct Fixed {
    name: String,
    interface: String,
    /// The virtual MAC interface (`use_vmac`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    vmac: Option<String>,
    vrid: u8,
    version: u8,
    configured_priority: u8,
    vips: Vec<String>,
    excluded_vips: Vec<String>,
    routes: Vec<String>,
    garp_master_delay: u32,
}

impl Fixed {
    pub fn of(m: &VrrpInstance) -> Arc<Fixed> {
        Arc::new(Fixed {
            name: m.name.clone(),
            interface: m.interface.clone(),
            vmac: m.vmac.as_ref().map(|v| v.name.clone()),
            vrid: m.vrid,
            version: m.version,
            configured_priority: m.priority,
            vips: m.vips.iter().map(|a| a.to_string()).collect(),
            excluded_vips: m.excluded_vips.iter().map(|a| a.to_string()).collect(),
            routes: m.routes.iter().map(|r| r.to_string()).collect(),
            garp_master_delay: m.garp.master_delay,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunningStatus {
    #[serde(flatten)]
    pub fixed: Arc<Fixed>,
    pub state: &'static str,
    pub priority: u8,
    pub master: Option<Master>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    /// Only the reasons with drops.
    #[serde(serialize_with = "nonzero")]
    pub dropped: DropCounters,
    pub transitions: u64,
    pub became_master: u64,
    pub released_master: u64,
    pub priority_zero_sent: u64,
    pub priority_zero_received: u64,
    pub master_down_interval_ms: u64,
    pub preempt_held: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Master {
    pub address: IpAddr,
    pub priority: u8,
}

fn nonzero<S: Serializer>(d: &DropCounters, s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(None)?;
    for (reason, n) in d.iter().filter(|(_, n)| *n > 0) {
        m.serialize_entry(reason.as_str(), &n)?;
    }
    m.end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::packet::DropReason;
    use serde_json::json;

    /// The JSON is what `lvsd status`, the metrics and the lab read: every key, as before the
    /// view was typed.
    #[test]
    fn an_instance_shows_as_the_status_json_has_it() {
        let fixed = Arc::new(Fixed {
            name: "VI_1".into(),
            interface: "eth0".into(),
            vmac: None,
            vrid: 51,
            version: 3,
            configured_priority: 150,
            vips: vec!["192.0.2.100/32".into()],
            excluded_vips: vec!["2001:db8::100/128".into()],
            routes: vec!["203.0.113.0/24 via 192.0.2.254".into()],
            garp_master_delay: 5,
        });
        let mut dropped = DropCounters::default();
        dropped.record(DropReason::Ttl);
        dropped.record(DropReason::Ttl);
        let s = RunningStatus {
            fixed,
            state: "backup",
            priority: 140,
            master: Some(Master { address: "192.0.2.2".parse().unwrap(), priority: 200 }),
            adverts_sent: 7,
            adverts_received: 9,
            dropped,
            transitions: 1,
            became_master: 2,
            released_master: 3,
            priority_zero_sent: 4,
            priority_zero_received: 5,
            master_down_interval_ms: 3609,
            preempt_held: false,
        };
        let want = json!({
            "name": "VI_1", "interface": "eth0", "vrid": 51, "version": 3, "state": "backup",
            "priority": 140, "configured_priority": 150,
            "master": { "address": "192.0.2.2", "priority": 200 },
            "vips": ["192.0.2.100/32"], "excluded_vips": ["2001:db8::100/128"], "routes": ["203.0.113.0/24 via 192.0.2.254"], "adverts_sent": 7, "adverts_received": 9,
            "dropped": { "ttl": 2 }, "transitions": 1, "became_master": 2, "released_master": 3,
            "priority_zero_sent": 4, "priority_zero_received": 5, "garp_master_delay": 5,
            "master_down_interval_ms": 3609, "preempt_held": false,
        });
        let running = InstanceStatus::Running(Box::new(s.clone()));
        assert_eq!(running.to_json(), want);
        let alone = InstanceStatus::Running(Box::new(RunningStatus { master: None, dropped: DropCounters::default(), ..s }));
        let got = alone.to_json();
        assert_eq!((&got["master"], &got["dropped"]), (&serde_json::Value::Null, &json!({})));
        let failed = InstanceStatus::failed("VI_2", "no such interface");
        assert_eq!(failed.to_json(), json!({ "name": "VI_2", "state": "not running", "error": "no such interface" }));
    }
}
