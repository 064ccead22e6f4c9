//! lvsd: a Linux load-balancer director (VRRP + IPVS + health checks) driven by Lua policy files.
//!
//! Data flows one way: policy (Lua) -> model -> director -> reconcile -> backends.

pub mod bgp;
pub mod build_info;
pub mod check;
pub mod control;
pub mod desired;
pub mod director;
pub mod doctor;
pub mod drain;
pub mod heap;
pub mod import;
#[cfg(debug_assertions)]
pub mod injected;
pub mod ipvs;
pub mod lab;
pub mod limits;
pub mod lua_limits;
pub mod manual;
pub mod model;
pub mod net;
pub mod plan;
pub mod policy;
pub mod programs;
pub mod ratelimit;
pub mod realserver;
pub mod repl;
pub mod systemd;
pub mod vrrp;
