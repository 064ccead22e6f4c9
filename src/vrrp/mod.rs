//! VRRP (RFC 3768 v2, RFC 5798 / RFC 9568 v3), pure parts only: wire format and state
//! machine. Sockets, addresses and gratuitous ARP live in `net`; the director wires them.
//!
//! - [`packet`]: encode/decode adverts; every RFC receive check is a typed error, counted per
//!   [`packet::DropReason`].
//! - [`fsm`]: the per-instance state machine, sans-IO (`handle(now, input) -> actions`,
//!   `poll_timeout()`), plus the [`fsm::SyncGroup`] helper.
//! - [`checksum`]: the Internet checksum with the VRRPv3 pseudo-headers.
//! - [`track_file`]: keepalived's tracked files, a number read as a priority change or Fault.
//! - [`track_process`]: keepalived's tracked processes, counted from /proc.
//!
//! How the director drives one instance:
//!
//! ```
//! use std::time::Instant;
//! use lvsd::vrrp::fsm::{Action, Config, Input, Instance};
//! use lvsd::vrrp::packet::{self, DropCounters, Endpoints, RxMeta};
//!
//! let mut cfg = Config::new("eth0", 51, "192.0.2.1".parse().unwrap());
//! cfg.addresses = vec!["192.0.2.100".parse().unwrap()];
//! let expect = cfg.expect(); // rebuild after update_config
//! let mut vrrp = Instance::new(cfg);
//! let mut drops = DropCounters::default();
//!
//! let mut perform = |vrrp: &Instance, actions: Vec<Action>| {
//!     for a in actions {
//!         if let Action::SendAdvert { priority } = a {
//!             let c = vrrp.config();
//!             for dst in c.destinations() {
//!                 let ep = Endpoints { src: c.primary_address, dst };
//!                 let bytes = c.advert(priority).encode(&ep, c.v3_checksum_as_v2).unwrap();
//!                 // net: send `bytes` with TTL 255 from ep.src to ep.dst
//!                 # let _ = bytes;
//!             }
//!         }
//!         // AddVips / RemoveVips / SendGratuitous -> net; StateChanged -> hooks, status
//!     }
//! };
//!
//! let now = Instant::now();
//! let actions = vrrp.handle(now, Input::Startup);
//! perform(&vrrp, actions);
//!
//! // A packet arrived (payload after the IP header, plus what the IP header said):
//! let (buf, meta) = (vec![0u8; 3], RxMeta {
//!     src: "192.0.2.2".parse().unwrap(),
//!     dst: packet::MCAST_V4.into(),
//!     ttl: 255,
//! });
//! match packet::decode(&buf, &meta, &expect) {
//!     Ok(rx) => {
//!         let actions = vrrp.handle(now, Input::advert(meta.src, &rx.advert));
//!         perform(&vrrp, actions);
//!     }
//!     Err(e) => drops.record(e.reason()), // and log e, at warning level if
//!                                         // e.reason().is_misconfiguration()
//! }
//! assert_eq!(drops.get(packet::DropReason::Truncated), 1);
//!
//! // The event loop sleeps until the next deadline, then:
//! if let Some(t) = vrrp.poll_timeout() {
//!     let actions = vrrp.handle(t, Input::Timeout);
//!     perform(&vrrp, actions);
//! }
//! ```

pub mod checksum;
pub mod fsm;
pub mod packet;
pub mod preempt_sync;
pub mod track_file;
pub mod track_process;
