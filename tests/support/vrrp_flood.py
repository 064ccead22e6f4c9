#!/usr/bin/env python3
"""Hostile VRRP traffic and an advert capture, for tests/adversarial_vrrp.rs.

Runs inside a test network namespace (`ip netns exec NS python3 vrrp_flood.py ...`) and only
ever sends to the VRRP group 224.0.0.18 on that namespace's link. Every loop is bounded in
count and in time.

  flood    send a known number of datagrams of each kind (shuffled, paced at --rate per
           second) and print one JSON object: what was sent per kind, and the drop reason
           each VRRP datagram must be counted under by a receiver configured as given
           (the reason names of src/vrrp/packet.rs DropReason::as_str, plus "malformed").
  capture  record every VRRP datagram from the given sources, one line each:
           "<kernel receive time, ns since the epoch> <src> <version> <vrid> <priority> <socket drops>"
           until SIGTERM or --max-seconds.
"""

import argparse
import json
import random
import signal
import socket
import struct
import sys
import time

IPPROTO_VRRP = 112
# RFC 3692: a protocol number for experiments, to carry junk that is not VRRP.
IPPROTO_EXPERIMENT = 253
GROUP = "224.0.0.18"
# Linux socket option numbers that the socket module may lack.
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DONT = 0
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35
SO_RXQ_OVFL = 40

# A VRRP datagram larger than the director's receive buffer: it can only be "malformed".
OVERSIZED_LEN = 5000


def csum(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def v2_advert(vrid, prio, password, advert_int, vips):
    """RFC 3768 section 5.1: a VRRPv2 advert, simple password auth when `password` is set."""
    auth_type = 1 if password is not None else 0
    body = struct.pack("!BBBBBBH", 0x21, vrid, prio, len(vips), auth_type, advert_int, 0)
    body += b"".join(socket.inet_aton(a) for a in vips)
    body += (password or "").encode()[:8].ljust(8, b"\0")
    c = csum(body)
    return body[:6] + struct.pack("!H", c) + body[8:]


def v3_advert(vrid, prio, advert_cs, vips, src):
    """RFC 5798 section 5.1: a VRRPv3 IPv4 advert, checksum over the pseudo-header."""
    body = struct.pack("!BBBBHH", 0x31, vrid, prio, len(vips), advert_cs & 0x0FFF, 0)
    body += b"".join(socket.inet_aton(a) for a in vips)
    pseudo = socket.inet_aton(src) + socket.inet_aton(GROUP) + struct.pack("!BBH", 0, IPPROTO_VRRP, len(body))
    c = csum(pseudo + body)
    return body[:6] + struct.pack("!H", c) + body[8:]


def classify(data, cfg):
    """The drop reason a VRRPv2 receiver configured as `cfg` gives `data`, following the
    order of the receive checks of RFC 3768 section 7.1 (as src/vrrp/packet.rs decode runs
    them). Only used for datagrams that carry the receiver's VRID, so that the order of the
    VRID check against the others does not matter. None: accepted."""
    if len(data) < 8:
        return "truncated"
    if data[0] >> 4 != 2:
        return "version"
    if data[0] & 0x0F != 1:
        return "type"
    if len(data) != 8 + 4 * data[3] + 8:
        return "length"
    if csum(data) != 0:
        return "checksum"
    if data[1] != cfg.vrid:
        return "vrid"
    if data[4] != 1:
        return "auth_type"
    if data[-8:] != cfg.password.encode()[:8].ljust(8, b"\0"):
        return "auth_failure"
    if data[5] != cfg.advert_int:
        return "advert_interval"
    got = {socket.inet_ntoa(data[8 + 4 * i: 12 + 4 * i]) for i in range(data[3])}
    if got != set(cfg.vip) and data[2] != 255:
        return "address_list"
    return None


def build(kind, n, cfg, rng):
    """`n` datagrams of one kind: a list of (socket name, payload, expected reason)."""
    # Every hostile advert claims priority 254: accepting one by mistake would move the VIP.
    good = v2_advert(cfg.vrid, 254, cfg.password, cfg.advert_int, cfg.vip)
    out = []
    for i in range(n):
        if kind == "oversized":
            d = good[:8] + bytes(OVERSIZED_LEN - 8)
            out.append(("vrrp", d, "malformed"))
        elif kind == "undersized":
            # 1 to 7 bytes; the second byte (when there is one) is the receiver's VRID.
            d = good[: 1 + i % 7]
            out.append(("vrrp", d, "truncated"))
        elif kind == "random":
            d = bytearray(rng.randbytes(rng.randint(8, 1400)))
            d[1] = cfg.vrid
            out.append(("vrrp", bytes(d), classify(bytes(d), cfg)))
        elif kind == "truncated":
            # A real advert cut anywhere after its 8-byte header.
            d = good[: 8 + i % (len(good) - 8)]
            out.append(("vrrp", d, "length"))
        elif kind == "version":
            d = v3_advert(cfg.vrid, 254, cfg.advert_int * 100, cfg.vip, cfg.src)
            out.append(("vrrp", d, "version"))
        elif kind == "checksum":
            d = good[:6] + bytes([good[6] ^ 0x01, good[7] ^ 0x01]) + good[8:]
            out.append(("vrrp", d, "checksum"))
        elif kind == "auth":
            d = v2_advert(cfg.vrid, 254, cfg.wrong_password, cfg.advert_int, cfg.vip)
            out.append(("vrrp", d, "auth_failure"))
        elif kind == "interval":
            d = v2_advert(cfg.vrid, 254, cfg.password, cfg.advert_int + 1, cfg.vip)
            out.append(("vrrp", d, "advert_interval"))
        elif kind == "vrid":
            d = v2_advert((cfg.vrid % 255) + 1, 254, cfg.password, cfg.advert_int, cfg.vip)
            out.append(("vrrp", d, "vrid"))
        elif kind == "ttl":
            out.append(("vrrp_ttl1", good, "ttl"))
        elif kind == "lower":
            # Valid in every respect, for the pair's VRID, at priority 50: accepted, and
            # never a reason for the pair's master to step down.
            d = v2_advert(cfg.vrid, 50, cfg.password, cfg.advert_int, cfg.vip)
            out.append(("vrrp", d, None))
        elif kind == "junk":
            # Not VRRP at all, to the VRRP group: UDP and an experimental IP protocol. A
            # VRRP socket never sees these, so nothing may count them.
            d = rng.randbytes(rng.randint(1, 1200))
            out.append(("udp" if i % 2 else "proto253", d, "not_vrrp"))
        else:
            raise SystemExit(f"unknown kind {kind}")
    return out


def multicast_sender(family_type, proto, src, ttl):
    s = socket.socket(socket.AF_INET, family_type, proto)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
    # Oversized datagrams go out as IP fragments (the receiver reassembles them).
    s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    s.setblocking(True)
    return s


def cmd_flood(cfg):
    rng = random.Random(cfg.seed)
    plan = []
    for item in cfg.plan.split(","):
        kind, n = item.split("=")
        plan.append((kind, int(n)))
    datagrams = []
    sent = {}
    for kind, n in plan:
        datagrams.extend((kind,) + d for d in build(kind, n, cfg, rng))
        sent[kind] = n
    rng.shuffle(datagrams)
    socks = {
        "vrrp": multicast_sender(socket.SOCK_RAW, IPPROTO_VRRP, cfg.src, 255),
        "vrrp_ttl1": multicast_sender(socket.SOCK_RAW, IPPROTO_VRRP, cfg.src, 1),
        "proto253": multicast_sender(socket.SOCK_RAW, IPPROTO_EXPERIMENT, cfg.src, 255),
        "udp": multicast_sender(socket.SOCK_DGRAM, 0, cfg.src, 255),
    }
    expected = {}
    accepted = 0
    errors = 0
    done = 0
    start = time.monotonic()
    deadline = start + cfg.max_seconds
    for i, (kind, sock, data, reason) in enumerate(datagrams):
        done = i
        # Paced: datagram i leaves at start + i / rate, so the receiver is never handed a
        # burst larger than the kernel queues hold.
        due = start + i / cfg.rate
        now = time.monotonic()
        if now > deadline:
            break
        if due > now:
            time.sleep(due - now)
        dst = (GROUP, 1985) if sock == "udp" else (GROUP, 0)
        try:
            socks[sock].sendto(data, dst)
        except OSError as e:
            errors += 1
            if errors <= 5:
                print(f"send {kind}: {e}", file=sys.stderr)
            continue
        done = i + 1
        if reason is None:
            accepted += 1
        elif reason != "not_vrrp":
            expected[reason] = expected.get(reason, 0) + 1
    elapsed = time.monotonic() - start
    print(json.dumps({
        "sent": sent,
        "datagrams": done,
        "complete": done == len(datagrams) and errors == 0,
        "expected": expected,
        "accepted": accepted,
        "errors": errors,
        "elapsed": elapsed,
    }))


def cmd_capture(cfg):
    sources = set(cfg.source)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_VRRP)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
    mreq = socket.inet_aton(GROUP) + socket.inet_aton(cfg.local)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    s.settimeout(0.5)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    end = time.monotonic() + cfg.max_seconds
    drops = 0
    with open(cfg.out, "w", buffering=1) as out:
        out.write("# ready\n")
        while not stop and time.monotonic() < end:
            try:
                data, anc, _, _ = s.recvmsg(65535, 256)
            except socket.timeout:
                continue
            except InterruptedError:
                continue
            ts = None
            for level, typ, val in anc:
                if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(val) >= 16:
                    sec, nsec = struct.unpack("qq", val[:16])
                    ts = sec * 1_000_000_000 + nsec
                elif level == socket.SOL_SOCKET and typ == SO_RXQ_OVFL and len(val) >= 4:
                    drops = struct.unpack("I", val[:4])[0]
            if len(data) < 22 or ts is None:
                continue
            ihl = (data[0] & 0x0F) * 4
            src = socket.inet_ntoa(data[12:16])
            vrrp = data[ihl:]
            if src not in sources or len(vrrp) < 8:
                continue
            out.write(f"{ts} {src} {vrrp[0] >> 4} {vrrp[1]} {vrrp[2]} {drops}\n")
        out.write(f"# end drops {drops}\n")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("flood")
    f.add_argument("--src", required=True, help="this host's address on the link")
    f.add_argument("--vrid", type=int, required=True)
    f.add_argument("--password", required=True)
    f.add_argument("--wrong-password", default="guessed")
    f.add_argument("--advert-int", type=int, default=1, help="seconds (VRRPv2)")
    f.add_argument("--vip", action="append", required=True)
    f.add_argument("--plan", required=True, help="kind=count,...")
    f.add_argument("--rate", type=float, required=True, help="datagrams per second")
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--max-seconds", type=float, default=60)
    c = sub.add_parser("capture")
    c.add_argument("--local", required=True, help="this host's address on the link")
    c.add_argument("--source", action="append", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--max-seconds", type=float, default=120)
    cfg = p.parse_args()
    if cfg.cmd == "flood":
        cmd_flood(cfg)
    else:
        cmd_capture(cfg)


if __name__ == "__main__":
    main()
