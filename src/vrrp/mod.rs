//! VRRP (RFC 3768 v2, RFC 5798 / RFC 9568 v3), pure parts only: wire format and state
//! machine. Sockets, addresses and gratuitous ARP live in `net`; the director wires them.
//!
//! - [`packet`]: encode/decode adverts; every RFC receive check is a typed error.
//! - [`fsm`]: the per-instance state machine, sans-IO (`handle(now, input) -> actions`).

pub mod checksum;
pub mod fsm;
pub mod packet;
