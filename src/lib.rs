//! lvsd: a Linux load-balancer director (VRRP + IPVS + health checks) driven by Lua policy files.
//!
//! Data flows one way: policy (Lua) -> model -> director -> reconcile -> backends.

pub mod check;
pub mod import;
pub mod ipvs;
pub mod lab;
pub mod limits;
pub mod lua_limits;
pub mod model;
pub mod net;
pub mod policy;
pub mod vrrp;
pub mod control;
pub mod desired;
pub mod drain;
pub mod plan;
pub mod systemd;
pub mod director;
pub mod repl;
pub mod realserver;
pub mod doctor;
pub mod ratelimit;
pub mod build_info;
pub mod manual;
