//! The pure parsers alone, compiled from the project's own sources (no tokio, mlua or
//! netlink), so that the fuzz build takes seconds and CI can afford it. Named `lvsd` so the
//! harnesses read as they would against the whole crate.

#[path = "../src/vrrp/checksum.rs"]
pub mod checksum;
#[path = "../src/vrrp/packet.rs"]
pub mod packet;
// What a tracked file holds (track_file), and what /proc says of a process (proc_entry).
#[path = "../src/vrrp/track_file.rs"]
pub mod track_file;
#[path = "../src/vrrp/track_process.rs"]
pub mod track_process;

pub mod vrrp {
    pub use crate::{checksum, packet, track_file, track_process};
}

// What check targets answer: HTTP responses, DNS replies, SMTP replies, ICMP echo replies.
#[path = "../src/check/dns.rs"]
pub mod dns;
#[path = "../src/check/http_response.rs"]
pub mod http_response;
#[path = "../src/check/smtp.rs"]
pub mod smtp;
#[path = "../src/check/icmp.rs"]
pub mod icmp;

pub mod check {
    pub use crate::{dns, http_response, icmp, smtp};
}

/// The cost bound of Lua string patterns (pure, no Lua).
#[path = "../src/policy/patterns.rs"]
pub mod patterns;

// What the kernel answers over generic netlink for IPVS: the reply decoders (pure).
#[path = "../src/ipvs/attrs.rs"]
pub mod attrs;
#[path = "../src/ipvs/table.rs"]
pub mod table;
#[path = "../src/ipvs/wire.rs"]
pub mod wire;
// The buffers the kernel fills for IP_VS_SO_GET_DESTS / GET_SERVICES (ipvs_sockopt).
#[path = "../src/ipvs/sockopt.rs"]
pub mod sockopt;

pub mod ipvs {
    pub use crate::{attrs, sockopt, table, wire};
}

// The IPVS connection table as /proc/net/ip_vs_conn_sync lists it, and the lab's keep-alive
// answers (conn_sync).
#[path = "../src/director/sync/conns.rs"]
pub mod conns;
// The kernel's sync messages on the wire, as `lvsd doctor` hears them (conn_sync).
#[path = "../src/director/sync/message.rs"]
pub mod message;
#[path = "../src/lab/longlived/answer.rs"]
pub mod answer;

pub mod director {
    pub mod sync {
        pub use crate::conns::*;
        pub use crate::message;
    }
}

pub mod lab {
    pub mod longlived {
        pub use crate::answer::*;
    }
}

// What the kernel says over rtnetlink: answers, address and link notifications (rtnl_reply).
#[path = "../src/net/rtnl_msg.rs"]
pub mod rtnl_msg;

pub mod net {
    pub use crate::rtnl_msg;
}

// What `lvsd doctor` reads from other programs and /proc: firewall rules (`nft -j list
// ruleset`, `iptables-save`) and the kernel's IPVS listing (doctor_input).
#[path = "../src/doctor/ruleset.rs"]
pub mod ruleset;
#[path = "../src/doctor/proc_ipvs.rs"]
pub mod proc_ipvs;

pub mod doctor {
    pub use crate::{proc_ipvs, ruleset};
}
