//! The VRRP codec alone, compiled from the project's own sources (no tokio, mlua or
//! netlink), so that the fuzz build takes seconds and CI can afford it. Named `lvsd` so the
//! harness reads as it would against the whole crate.

#[path = "../src/vrrp/checksum.rs"]
pub mod checksum;
#[path = "../src/vrrp/packet.rs"]
pub mod packet;

pub mod vrrp {
    pub use crate::{checksum, packet};
}

/// The cost bound of Lua string patterns (pure, no Lua).
#[path = "../src/policy/patterns.rs"]
pub mod patterns;
