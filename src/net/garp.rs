//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) for a VIP, sent as
//! whole Ethernet frames on an AF_PACKET socket. One-shot: repeat count and delay
//! (keepalived's garp_master_repeat / garp_master_delay / refresh) are the caller's job.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Socket, Type};
use thiserror::Error;

use super::link::{self, LinkError};

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const BROADCAST: [u8; 6] = [0xff; 6];
/// Ethernet multicast address of ff02::1 (all nodes).
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_OVERRIDE: u8 = 0x20;

#[derive(Debug, Error)]
pub enum GarpError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("{ifname} has no Ethernet address (hardware address {mac:02x?}); GARP/NA need an Ethernet link")]
    NotEthernet { ifname: String, mac: Vec<u8> },
    #[error("{what} on {ifname}: {source}")]
    Io {
        ifname: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// A packet socket on one interface for announcing VIPs. Open once, send many.
#[derive(Debug)]
pub struct Announcer {
    sock: Socket,
    ifname: String,
    ifindex: u32,
    mac: [u8; 6],
}

impl Announcer {
    /// The socket lives in the calling thread's network namespace.
    pub fn open(ifname: &str) -> Result<Self, GarpError> {
        let info = link::link_by_name(ifname)?;
        let mac: [u8; 6] =
            info.mac.as_slice().try_into().map_err(|_| GarpError::NotEthernet { ifname: ifname.to_owned(), mac: info.mac.clone() })?;
        let io_err = |what| {
            let ifname = ifname.to_owned();
            move |source| GarpError::Io { ifname: ifname.clone(), what, source }
        };
        // Protocol 0: send only, the kernel delivers nothing to this socket.
        let sock = Socket::new(Domain::PACKET, Type::RAW, None).map_err(io_err("socket(AF_PACKET)"))?;
        // Never block the caller (it may be an async task); a full queue is an error.
        sock.set_nonblocking(true).map_err(io_err("O_NONBLOCK"))?;
        Ok(Announcer { sock, ifname: ifname.to_owned(), ifindex: info.ifindex, mac })
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// One gratuitous ARP request for `ip` (sender = target = ip), broadcast.
    pub fn garp(&self, ip: Ipv4Addr) -> Result<(), GarpError> {
        self.send(&garp_frame(self.mac, ip), ETH_P_ARP, BROADCAST, "sending gratuitous ARP")
    }

    /// One unsolicited neighbour advertisement for `ip` to ff02::1 (override flag, target
    /// link-layer address option, hop limit 255). `router` sets the R flag, which a host
    /// that forwards (a NAT director acting as gateway) must set (RFC 4861 7.2.6/7.2.5).
    pub fn unsolicited_na(&self, ip: Ipv6Addr, router: bool) -> Result<(), GarpError> {
        self.send(&na_frame(self.mac, ip, router), ETH_P_IPV6, ALL_NODES_MAC, "sending unsolicited NA")
    }

    fn send(&self, frame: &[u8], proto: u16, dst: [u8; 6], what: &'static str) -> Result<(), GarpError> {
        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto.to_be();
        sll.sll_ifindex = self.ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&dst);
        // SAFETY: frame and sll are valid for the stated lengths.
        let n = unsafe {
            libc::sendto(
                self.sock.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(GarpError::Io { ifname: self.ifname.clone(), what, source: io::Error::last_os_error() });
        }
        Ok(())
    }
}

/// One gratuitous ARP for `ip` on `ifname`.
pub fn send_garp(ifname: &str, ip: Ipv4Addr) -> Result<(), GarpError> {
    Announcer::open(ifname)?.garp(ip)
}

/// One unsolicited NA for `ip` on `ifname`, router flag clear.
pub fn send_unsolicited_na(ifname: &str, ip: Ipv6Addr) -> Result<(), GarpError> {
    Announcer::open(ifname)?.unsolicited_na(ip, false)
}

/// GARP for IPv4, unsolicited NA (router flag clear) for IPv6.
pub fn announce(ifname: &str, ip: IpAddr) -> Result<(), GarpError> {
    match ip {
        IpAddr::V4(a) => send_garp(ifname, a),
        IpAddr::V6(a) => send_unsolicited_na(ifname, a),
    }
}

/// Ethernet + ARP request, sender and target protocol address both `ip` (RFC 5227 ARP
/// announcement; target hardware address zero).
pub fn garp_frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // request
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    // 32..38: target hardware address, zero.
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// Ethernet + IPv6 + ICMPv6 neighbour advertisement from `ip` to ff02::1 with the target
/// link-layer address option.
pub fn na_frame(mac: [u8; 6], ip: Ipv6Addr, router: bool) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(32);
    icmp.push(ICMPV6_NEIGHBOR_ADVERT);
    icmp.push(0); // code
    icmp.extend_from_slice(&[0, 0]); // checksum, filled below
    icmp.push(NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 });
    icmp.extend_from_slice(&[0, 0, 0]);
    icmp.extend_from_slice(&ip.octets());
    icmp.push(2); // option: target link-layer address
    icmp.push(1); // length in units of 8 bytes
    icmp.extend_from_slice(&mac);
    let ck = icmpv6_checksum(&ip, &ALL_NODES, &icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());

    let mut f = Vec::with_capacity(14 + 40 + icmp.len());
    f.extend_from_slice(&ALL_NODES_MAC);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, traffic class 0, flow label 0
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.push(58); // next header: ICMPv6
    f.push(255); // hop limit: required by RFC 4861 7.1.2
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&ALL_NODES.octets());
    f.extend_from_slice(&icmp);
    f
}

/// Internet checksum of the IPv6 pseudo-header (RFC 8200 8.1) plus an ICMPv6 message.
pub fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x33];

    #[test]
    fn garp_bytes() {
        let f = garp_frame(MAC, "192.0.2.10".parse().unwrap());
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x5e, 0x00, 0x01, 0x33, 0x08, 0x06, // eth
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // arp request
            0x02, 0x00, 0x5e, 0x00, 0x01, 0x33, 192, 0, 2, 10, // sender
            0, 0, 0, 0, 0, 0, 192, 0, 2, 10, // target
        ];
        assert_eq!(f, expected);
    }

    #[test]
    fn na_bytes_and_checksum() {
        let ip: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let f = na_frame(MAC, ip, false);
        assert_eq!(f.len(), 14 + 40 + 32);
        assert_eq!(&f[0..6], &ALL_NODES_MAC);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(&f[18..20], &[0, 32]); // payload length
        assert_eq!(f[20], 58);
        assert_eq!(f[21], 255);
        assert_eq!(&f[22..38], &ip.octets());
        assert_eq!(&f[38..54], &ALL_NODES.octets());
        let icmp = &f[54..];
        assert_eq!(icmp[0], 136);
        assert_eq!(icmp[4], 0x20, "override only, not solicited, not router");
        assert_eq!(&icmp[8..24], &ip.octets());
        assert_eq!(&icmp[24..32], &[2, 1, 0x02, 0x00, 0x5e, 0x00, 0x01, 0x33]);
        // A correct checksum makes the sum over pseudo-header + message verify to zero.
        assert_eq!(icmpv6_checksum(&ip, &ALL_NODES, icmp), 0);
        assert_eq!(na_frame(MAC, ip, true)[54 + 4], 0xa0);
    }

    #[test]
    fn checksum_known_value() {
        // RFC 1071 example words 0001 f203 f4f5 f6f7 sum to 0xddf2 (before complement);
        // with a zero pseudo-header contribution we check the folding on odd lengths too.
        let zero = Ipv6Addr::UNSPECIFIED;
        let msg = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        // Pseudo-header adds length 8 and next header 58.
        let expect = !((0xddf2u32 + 8 + 58) as u16);
        assert_eq!(icmpv6_checksum(&zero, &zero, &msg), expect);
        let odd = [0xab];
        assert_eq!(icmpv6_checksum(&zero, &zero, &odd), !(0xab00u16 + 1 + 58));
    }
}
