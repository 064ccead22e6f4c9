//! What the ecmp lab reads: frames on each director's link, the router's `ip -o monitor
//! route` lines and a director's `/proc/net/ip_vs_conn_sync`. Pure (std only, its own file so
//! that the fuzz crate compiles it alone).

use std::net::Ipv4Addr;

/// A frame that matters to the lab, seen on a director's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A client's SYN for the VIP arriving: a new connection through this director.
    Syn,
    /// A request (a segment whose data starts with "GET ") for the VIP arriving, from this
    /// source address.
    Request(Ipv4Addr),
    /// A SYN for the VIP leaving again (DR) towards the real with this MAC address.
    Forwarded([u8; 6]),
}

const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const TCP: u8 = 6;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// Classify one Ethernet frame: `outgoing` as the packet socket says (PACKET_OUTGOING).
/// Anything else, malformed or cut short included, is `None`.
pub fn classify(frame: &[u8], outgoing: bool, vip: Ipv4Addr, port: u16) -> Option<Seen> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(ETH_HEADER..)?;
    let first = *ip.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || ip.len() < ihl {
        return None;
    }
    // A fragment other than the first has no TCP header.
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if ip[9] != TCP || frag & 0x1fff != 0 || Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]) != vip {
        return None;
    }
    // The IP total length bounds the segment (a short frame may carry padding).
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    let tcp = ip.get(ihl..total)?;
    if tcp.len() < 20 || u16::from_be_bytes([tcp[2], tcp[3]]) != port {
        return None;
    }
    let flags = tcp[13];
    let is_syn = flags & (SYN | ACK) == SYN;
    if outgoing {
        return is_syn.then(|| {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&frame[..6]);
            Seen::Forwarded(mac)
        });
    }
    if is_syn {
        return Some(Seen::Syn);
    }
    let data_off = usize::from(tcp[12] >> 4) * 4;
    let data = tcp.get(data_off..)?;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    (data_off >= 20 && data.starts_with(b"GET ")).then_some(Seen::Request(src))
}

/// One line of `ip -o monitor route` (or `ip -o route show`) about `vip`'s host route: its
/// next hops (none when the line says the route was deleted). `None`: a line about
/// another route.
pub fn route_line(line: &str, vip: Ipv4Addr) -> Option<Vec<Ipv4Addr>> {
    let mut words = line.split_whitespace().peekable();
    let deleted = words.peek() == Some(&"Deleted");
    if deleted {
        words.next();
    }
    let dst = words.next()?;
    let dst = dst.strip_suffix("/32").unwrap_or(dst);
    if dst.parse::<Ipv4Addr>().ok()? != vip {
        return None;
    }
    let rest: Vec<&str> = words.collect();
    // Routes in other tables (local, broadcast) name their table.
    if rest.windows(2).any(|w| w[0] == "table" && w[1] != "main") {
        return None;
    }
    if deleted {
        return Some(Vec::new());
    }
    let mut hops: Vec<Ipv4Addr> = rest.windows(2).filter(|w| w[0] == "via").filter_map(|w| w[1].parse().ok()).collect();
    hops.sort_unstable();
    hops.dedup();
    Some(hops)
}

/// One IPv4 entry of a director's IPVS connection table (`/proc/net/ip_vs_conn_sync`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    pub protocol: String,
    pub client: Ipv4Addr,
    pub client_port: u16,
    pub vip: Ipv4Addr,
    pub vport: u16,
    pub real: Ipv4Addr,
    pub state: String,
    /// Created by this director's backup daemon from another director's message (origin
    /// "Sync"), not scheduled here ("Local").
    pub synced: bool,
}

/// One line of `/proc/net/ip_vs_conn_sync`. The kernel writes (ip_vs_conn.c,
/// ip_vs_conn_sync_seq_show) "%-3s %08X %04X %08X %04X %08X %04X %-11s %-6s %7u" for IPv4:
/// Pro FromIP FPrt ToIP TPrt DestIP DPrt State Origin Expires. `None`: the header, an IPv6
/// entry or anything else.
pub fn conn_line(line: &str) -> Option<Conn> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    if f.len() != 10 {
        return None;
    }
    let addr = |s: &str| (s.len() == 8).then(|| u32::from_str_radix(s, 16).ok()).flatten().map(Ipv4Addr::from);
    let port = |s: &str| (s.len() == 4).then(|| u16::from_str_radix(s, 16).ok()).flatten();
    let synced = match f[8] {
        o if o.eq_ignore_ascii_case("sync") => true,
        o if o.eq_ignore_ascii_case("local") => false,
        _ => return None,
    };
    f[9].parse::<u32>().ok()?;
    Some(Conn {
        protocol: f[0].chars().take(8).collect(),
        client: addr(f[1])?,
        client_port: port(f[2])?,
        vip: addr(f[3])?,
        vport: port(f[4])?,
        real: addr(f[5])?,
        state: f[7].chars().take(16).collect(),
        synced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);

    /// An Ethernet + IPv4 + TCP frame to VIP:80 with `flags` and `data`.
    fn frame(dst_mac: [u8; 6], flags: u8, data: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst_mac);
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let total = (20 + 20 + data.len()) as u16;
        f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&[198, 51, 100, 20]);
        f.extend_from_slice(&VIP.octets());
        f.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn syns_requests_and_forwards_are_told_apart() {
        let real = [2, 0, 0, 0, 2, 1];
        assert_eq!(classify(&frame([2; 6], SYN, b""), false, VIP, 80), Some(Seen::Syn));
        assert_eq!(classify(&frame(real, SYN, b""), true, VIP, 80), Some(Seen::Forwarded(real)));
        assert_eq!(classify(&frame([2; 6], 0x18, b"GET / HTTP/1.1\r\n"), false, VIP, 80), Some(Seen::Request(CLIENT)));
        // A SYN-ACK, a bare ACK, another port, another address: none.
        assert_eq!(classify(&frame([2; 6], SYN | ACK, b""), false, VIP, 80), None);
        assert_eq!(classify(&frame([2; 6], ACK, b""), false, VIP, 80), None);
        assert_eq!(classify(&frame([2; 6], SYN, b""), false, VIP, 443), None);
        assert_eq!(classify(&frame([2; 6], SYN, b""), false, Ipv4Addr::new(203, 0, 113, 11), 80), None);
        // Forwarded requests are not counted twice.
        assert_eq!(classify(&frame(real, 0x18, b"GET / HTTP/1.1\r\n"), true, VIP, 80), None);
    }

    #[test]
    fn every_cut_of_a_frame_is_none_or_the_same() {
        // The capture reads a frame's first bytes only: the headers and "GET " are enough.
        let f = frame([2; 6], 0x18, b"GET / HTTP/1.1\r\n");
        let enough = 14 + 20 + 20 + 4;
        for n in 0..f.len() {
            let want = if n >= enough { Some(Seen::Request(CLIENT)) } else { None };
            assert_eq!(classify(&f[..n], false, VIP, 80), want, "cut at {n}");
        }
        // Padding after the IP packet is not data.
        let mut padded = frame([2; 6], ACK, b"");
        padded.extend_from_slice(b"GET ");
        assert_eq!(classify(&padded, false, VIP, 80), None);
    }

    #[test]
    fn monitor_lines_give_the_next_hops() {
        let a = Ipv4Addr::new(192, 0, 2, 2);
        let b = Ipv4Addr::new(192, 0, 2, 3);
        let multi =
            "203.0.113.10 proto bird metric 32 \\\tnexthop via 192.0.2.3 dev eth0 weight 1 \\\tnexthop via 192.0.2.2 dev eth0 weight 1 ";
        assert_eq!(route_line(multi, VIP), Some(vec![a, b]));
        assert_eq!(route_line("203.0.113.10 via 192.0.2.3 dev eth0 proto bird metric 32 ", VIP), Some(vec![b]));
        assert_eq!(route_line("Deleted 203.0.113.10 via 192.0.2.3 dev eth0 proto bird metric 32 ", VIP), Some(vec![]));
        assert_eq!(route_line("203.0.113.10/32 via 192.0.2.2 dev eth0", VIP), Some(vec![a]));
        assert_eq!(route_line("203.0.113.11 via 192.0.2.2 dev eth0", VIP), None);
        assert_eq!(route_line("local 203.0.113.10 dev lo table local proto kernel", VIP), None);
        assert_eq!(route_line("203.0.113.10 dev lo table local", VIP), None);
        assert_eq!(route_line("", VIP), None);
        assert_eq!(route_line("Deleted", VIP), None);
    }

    #[test]
    fn conn_table_lines_give_client_real_and_origin() {
        let head = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires";
        assert_eq!(conn_line(head), None);
        let synced = conn_line("TCP C63364FE 9C40 CB00710A 0050 C000020B 0050 ESTABLISHED SYNC       897").unwrap();
        assert_eq!(synced.client, Ipv4Addr::new(198, 51, 100, 254));
        assert_eq!((synced.client_port, synced.vport), (40000, 80));
        assert_eq!((synced.vip, synced.real), (VIP, Ipv4Addr::new(192, 0, 2, 11)));
        assert_eq!((synced.protocol.as_str(), synced.state.as_str(), synced.synced), ("TCP", "ESTABLISHED", true));
        let local = conn_line("TCP C6336414 9C41 CB00710A 0050 C000020C 0050 FIN_WAIT    Local        2").unwrap();
        assert!(!local.synced);
        assert_eq!(local.state, "FIN_WAIT");
        // Short or odd fields, an unknown origin, an IPv6 entry: none.
        assert_eq!(conn_line("TCP C63364 9C40 CB00710A 0050 C000020B 0050 ESTABLISHED Sync 897"), None);
        assert_eq!(conn_line("TCP C63364FE 9C40 CB00710A 0050 C000020B 0050 ESTABLISHED Elsewhere 897"), None);
        assert_eq!(conn_line("TCP 2001:0db8::1 9C40 2001:0db8::10 0050 2001:0db8::11 0050 ESTABLISHED Sync 897").map(|c| c.client), None);
        assert_eq!(conn_line("TCP C63364FE 9C40 CB00710A 0050 C000020B 0050 ESTABLISHED Sync"), None);
        assert_eq!(conn_line(""), None);
    }
}
