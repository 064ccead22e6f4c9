//! Thin I/O adapters: raw VRRP sockets, VIP addresses and link state over rtnetlink,
//! gratuitous ARP / unsolicited NA, sysctls, and a network-namespace helper for tests and
//! the lab. Everything here sends and receives bytes or applies a change it is told to make;
//! no module decides anything.
//!
//! What the director uses:
//! - [`VrrpSocket`]: `open(ifname, Family, Mode)`, `send` / `send_each` / `send_to`, `recv`
//!   -> `(bytes, RecvMeta { src, dst, ttl, ifindex })`, `source()` for the v3 pseudo-header.
//! - [`addr`]: `add_address(&Vip)` / `del_address(&Vip)` (idempotent, report whether they
//!   changed anything), `list_addresses(ifname)`, [`AddrWatcher`].
//! - [`garp`]: `send_garp`, `send_unsolicited_na`, or an [`garp::Announcer`] kept open for
//!   repeated announcements.
//! - [`link`]: `ifindex`, `link_by_name`, `set_link_up`, [`LinkWatcher`].
//! - [`route`]: `add_route(&Route)` / `del_route(&Route)` (idempotent, like [`addr`]).
//! - [`vmac`]: `ensure(&Vmac)` / `remove(name)` for a VRRP virtual MAC interface.
//! - [`sysctl`]: `read`, `read_int`, `write`, `replace` on a [`SysctlKey`].
//!
//! Raw socket semantics the caller must know: every IP-protocol-112 socket on an interface
//! receives every VRRP packet delivered there (the kernel filters by interface, group
//! membership and, for bound unicast sockets, destination address — never by VRID). Open one
//! socket per (interface, family, mode) and demultiplex by VRID; `RecvMeta::dst` tells a
//! multicast advert from a unicast one.
//!
//! Network namespaces: every socket (raw, packet, netlink) belongs to the namespace of the
//! thread that created it, and `/proc/sys/net` shows the namespace of the thread that opens
//! it. So code that must act inside a namespace runs the *creating* call on a thread that
//! entered it ([`netns::Netns::run`]); the resulting socket can then be used from anywhere.

pub mod addr;
pub mod garp;
pub mod link;
pub mod netns;
pub mod route;
mod rtnl;
pub mod rtnl_msg;
pub mod sysctl;
pub mod vmac;
pub mod vrrp_socket;

pub use addr::{AddrError, AddrEvent, AddrInfo, AddrWatcher, Scope, Vip};
pub use garp::{Announcer, GarpError, announce, send_garp, send_unsolicited_na};
pub use link::{LinkError, LinkEvent, LinkInfo, LinkWatcher, OperState, ifindex, link_by_name, set_link_up};
pub use route::{Route, RouteError, RouteKind};
pub use rtnl::RtnlError;
pub use sysctl::{SysctlError, SysctlKey};
pub use vrrp_socket::{Family, Mode, RecvMeta, VrrpSocket, VrrpSocketError};
