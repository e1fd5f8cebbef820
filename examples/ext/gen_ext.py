#!/usr/bin/env python3
"""Write the extension scenario's input captures and, independently of the switch, the output
captures that `examples/ext/flows.txt` with its extensions must produce from them.

usage: examples/ext/gen_ext.py        (from anywhere; paths are relative to this file)

Writes examples/ext/{inside,uplink,dmz}.pcap (the traffic entering ports 1, 2 and 3) and
tests/expected/ext/port-{1,2,3}.pcap (what the switch must transmit on each port). The expected
outputs come from applying the flow table and the extensions' documented behaviour
(extensions/README.md) by hand, packet by packet, with every checksum recomputed from scratch
(the extensions patch them incrementally), so the replay test compares the switch, its
extension runtime and the verifier-driven reclassification against a second implementation.
The map contents are those `examples/ext/run.sh` preloads. Only the standard library is used.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from gen_example import csum, eth, ip4, ipv4, tcp, udp, arp, write_pcap  # noqa: E402

INSIDE, UPLINK, DMZ = 1, 2, 3
ROUTER = bytes.fromhex("020000000001")
GATEWAY = bytes.fromhex("0200000000fe")
HOST_A = bytes.fromhex("02000000010a")
HOST_B = bytes.fromhex("020000000114")
WEB = bytes.fromhex("020000000305")
BROADCAST = b"\xff" * 6

# Map preloads of run.sh.
BLOCKED_SRC = {ip4("198.51.100.66")}
NAT = {(ip4("203.0.113.10"), 8080, 6): (ip4("10.3.0.5"), 80)}
BLOCKED_UDP_PORTS = {1900}
PUBLIC, PUBLIC_PORT = ip4("203.0.113.10"), 8080


# --- packets --------------------------------------------------------------------------------

def frame(dst_mac, src_mac, src, dst, proto, l4, ttl=64):
    return eth(dst_mac, src_mac, 0x0800, ipv4(src, dst, proto, l4, ttl=ttl))


def tcp_frame(dst_mac, src_mac, src, dst, sport, dport, flags=0x02, seq=1000, ttl=64):
    return frame(dst_mac, src_mac, src, dst, 6, tcp(src, dst, sport, dport, flags, seq), ttl)


def udp_frame(dst_mac, src_mac, src, dst, sport, dport, data, ttl=64):
    return frame(dst_mac, src_mac, src, dst, 17, udp(src, dst, sport, dport, data), ttl)


class Ip:
    """The fields of an untagged IPv4 frame (no options) the pipeline looks at."""

    def __init__(self, f):
        self.ok = len(f) >= 34 and f[12:14] == b"\x08\x00"
        if not self.ok:
            return
        self.ihl = f[14] & 0x0F
        self.ttl, self.proto = f[22], f[23]
        self.src, self.dst = f[26:30], f[30:34]
        self.frag = struct.unpack("!H", f[20:22])[0] & 0x1FFF
        l4 = 14 + self.ihl * 4
        self.has_ports = self.proto in (6, 17) and len(f) >= l4 + 4 and self.frag == 0
        self.sport, self.dport = struct.unpack("!HH", f[l4:l4 + 4]) if self.has_ports else (0, 0)


def refresh_checksums(f):
    """Recomputes the IPv4 header checksum and the TCP/UDP checksum from scratch (a zero UDP
    checksum, "none", stays zero)."""
    f = bytearray(f)
    ihl = (f[14] & 0x0F) * 4
    f[24:26] = b"\0\0"
    f[24:26] = struct.pack("!H", csum(bytes(f[14:14 + ihl])))
    proto, src, dst = f[23], bytes(f[26:30]), bytes(f[30:34])
    l4 = 14 + ihl
    seg = bytearray(f[l4:])
    off = {6: 16, 17: 6}.get(proto)
    if off is not None and not (proto == 17 and seg[6:8] == b"\0\0"):
        seg[off:off + 2] = b"\0\0"
        pseudo = src + dst + struct.pack("!BBH", 0, proto, len(seg))
        c = csum(pseudo + bytes(seg))
        if proto == 17 and c == 0:
            c = 0xFFFF
        seg[off:off + 2] = struct.pack("!H", c)
    return bytes(f[:l4]) + bytes(seg)


def set_ip(f, src=None, dst=None, sport=None, dport=None, ttl=None):
    f = bytearray(f)
    l4 = 14 + (f[14] & 0x0F) * 4
    if src is not None:
        f[26:30] = src
    if dst is not None:
        f[30:34] = dst
    if sport is not None:
        f[l4:l4 + 2] = struct.pack("!H", sport)
    if dport is not None:
        f[l4 + 2:l4 + 4] = struct.pack("!H", dport)
    if ttl is not None:
        f[22] = ttl
    return refresh_checksums(bytes(f))


# --- the extensions, from their documentation ------------------------------------------------

class Extensions:
    def __init__(self):
        self.conntrack = set()

    def udp_flood_drop(self, f):
        """Port hook: True to drop (UDP to a blocklisted port; the rate check is off)."""
        p = Ip(f)
        return p.ok and p.proto == 17 and p.ihl == 5 and p.frag == 0 and len(f) >= 42 \
            and p.dport in BLOCKED_UDP_PORTS

    def blocklist(self, f):
        """fw_stateless_filter: matches a listed IPv4 source."""
        p = Ip(f)
        return p.ok and p.src in BLOCKED_SRC

    def fw(self, f, in_port):
        """fw_stateful_filter with inside_ifindex = 1: outbound records, inbound needs a record."""
        p = Ip(f)
        if not p.ok:
            return True
        sport, dport = (p.sport, p.dport) if p.ihl == 5 else (0, 0)
        if in_port == INSIDE:
            self.conntrack.add((p.src, p.dst, sport, dport, p.proto))
            return True
        return (p.dst, p.src, dport, sport, p.proto) in self.conntrack

    def dns_ok(self, f):
        """bench_filter: untagged IPv4 without options, TTL > 1, UDP to 10.1.0.0/16 port 53."""
        p = Ip(f)
        return p.ok and p.ihl == 5 and p.proto == 17 and p.ttl > 1 and p.dst[:2] == bytes([10, 1]) \
            and len(f) >= 42 and p.dport == 53

    def nat(self, f):
        """nat: destination NAT from the map."""
        p = Ip(f)
        if not p.ok or not p.has_ports:
            return f
        to = NAT.get((p.dst, p.dport, p.proto))
        if to is None:
            return f
        return set_ip(f, dst=to[0], dport=to[1])

    def ttl(self, f):
        """ttl_dec: None (XDP_DROP) at TTL 0 or 1, else the frame with the TTL decremented."""
        p = Ip(f)
        if not p.ok:
            return f
        if p.ttl <= 1:
            return None
        return set_ip(f, ttl=p.ttl - 1)


# --- the flow table of examples/ext/flows.txt, by hand ---------------------------------------

class Switch:
    PORTS = (INSIDE, UPLINK, DMZ)

    def __init__(self):
        self.x = Extensions()
        self.macs = {}

    def receive(self, in_port, f):
        if in_port == UPLINK and self.x.udp_flood_drop(f):
            return []
        ethertype = struct.unpack("!H", f[12:14])[0]
        if ethertype == 0x0806:
            return self.normal(in_port, f)
        p = Ip(f)
        if not p.ok:
            return []
        if in_port == UPLINK:
            if self.x.blocklist(f):
                return []
            if p.proto == 6 and p.dst == PUBLIC and p.dport == PUBLIC_PORT:
                return self.route(self.x.nat(f))
            if p.proto == 17 and p.dport == 53 and self.x.dns_ok(f):
                return self.route(f)
            if self.x.fw(f, in_port):
                return self.route(f)
            return []
        if in_port == INSIDE:
            self.x.fw(f, in_port)  # always allows outbound
            g = self.x.ttl(f)
            return [] if g is None else [(UPLINK, g)]
        if in_port == DMZ:
            if p.proto == 6 and p.src == ip4("10.3.0.5") and p.sport == 80:
                g = self.x.ttl(set_ip(f, src=PUBLIC, sport=PUBLIC_PORT))
                return [] if g is None else [(UPLINK, g)]
        return []

    def route(self, f):
        """Table 1."""
        p = Ip(f)
        if p.dst[:3] == bytes([10, 3, 0]):
            out = DMZ
        elif p.dst[:2] == bytes([10, 1]):
            out = INSIDE
        else:
            return []
        g = self.x.ttl(f)
        return [] if g is None else [(out, g)]

    def normal(self, in_port, f):
        dst, src = f[0:6], f[6:12]
        if not src[0] & 1:
            self.macs[src] = in_port
        if not dst[0] & 1 and dst in self.macs:
            out = self.macs[dst]
            return [] if out == in_port else [(out, f)]
        return [(p, f) for p in self.PORTS if p != in_port]


# --- the traffic -----------------------------------------------------------------------------

def traffic():
    """Yields (time in microseconds, port, frame); timestamps are all distinct."""
    t = 1_700_000_100_000_000
    a, b = "10.1.0.10", "10.1.0.20"
    web, client, evil = "93.184.216.34", "198.51.100.7", "198.51.100.66"
    yield t + 100, INSIDE, eth(BROADCAST, HOST_A, 0x0806, arp(1, HOST_A, a, b"\0" * 6, "10.1.0.1"))
    yield t + 200, UPLINK, eth(HOST_A, GATEWAY, 0x0806, arp(2, GATEWAY, "10.1.0.1", HOST_A, a))
    # A connection from the inside and its reply; an unsolicited packet to the same host.
    yield t + 300, INSIDE, tcp_frame(GATEWAY, HOST_A, a, web, 40000, 443)
    yield t + 400, UPLINK, tcp_frame(HOST_A, GATEWAY, web, a, 443, 40000, 0x12, ttl=50)
    yield t + 500, UPLINK, tcp_frame(HOST_A, GATEWAY, web, a, 443, 40001, 0x12, ttl=50)
    # A connection to a blocklisted address: its reply is dropped by the blocklist filter.
    yield t + 600, INSIDE, tcp_frame(GATEWAY, HOST_A, a, evil, 40002, 80)
    yield t + 700, UPLINK, tcp_frame(HOST_A, GATEWAY, evil, a, 80, 40002, 0x12, ttl=50)
    # The published web server: NAT in, source rewrite out.
    yield t + 800, UPLINK, tcp_frame(ROUTER, GATEWAY, client, "203.0.113.10", 50000, 8080, ttl=55)
    yield t + 900, DMZ, tcp_frame(GATEWAY, WEB, "10.3.0.5", client, 80, 50000, 0x12)
    # The published address on another port is not translated and not allowed.
    yield t + 1000, UPLINK, tcp_frame(ROUTER, GATEWAY, client, "203.0.113.10", 50001, 8081, ttl=55)
    # DNS to the inside resolver; one with TTL 1 fails the filter (and no connection allows it).
    yield t + 1100, UPLINK, udp_frame(ROUTER, GATEWAY, "8.8.8.8", "10.1.0.53", 5353, 53, b"\x12\x34query", ttl=57)
    yield t + 1200, UPLINK, udp_frame(ROUTER, GATEWAY, "8.8.8.8", "10.1.0.53", 5354, 53, b"\x12\x35query", ttl=1)
    # An SSDP flood on the uplink: dropped by the port hook before classification.
    yield t + 1300, UPLINK, udp_frame(BROADCAST, GATEWAY, "203.0.113.99", "239.255.255.250", 1900, 1900, b"M-SEARCH")
    # TTL 1 from the inside: the TTL extension drops it.
    yield t + 1400, INSIDE, tcp_frame(GATEWAY, HOST_B, b, web, 41000, 443, ttl=1)
    # Not IPv4: dropped by the last rule.
    v6 = struct.pack("!IHBB16s16s", 6 << 28, 8, 17, 64, bytes(15) + b"\1", bytes(15) + b"\2") + struct.pack("!HHHH", 1, 2, 8, 0)
    yield t + 1500, INSIDE, eth(GATEWAY, HOST_A, 0x86DD, v6)
    # A burst of repeated flows, so that the caches have something to hit.
    for i in range(60):
        ts = t + 5000 + 37 * i
        host_mac, host = (HOST_A, a) if i % 2 == 0 else (HOST_B, b)
        kind = i % 6
        if kind == 0:
            yield ts, INSIDE, tcp_frame(GATEWAY, host_mac, host, web, 42000 + i % 4, 443, 0x10, seq=i)
        elif kind == 1:
            yield ts, UPLINK, tcp_frame(host_mac, GATEWAY, web, host, 443, 42000 + (i - 1) % 4, 0x10, seq=i, ttl=50)
        elif kind == 2:
            yield ts, UPLINK, tcp_frame(ROUTER, GATEWAY, client, "203.0.113.10", 50000, 8080, 0x10, seq=i, ttl=55)
        elif kind == 3:
            yield ts, DMZ, tcp_frame(GATEWAY, WEB, "10.3.0.5", client, 80, 50000, 0x10, seq=i)
        elif kind == 4:
            yield ts, UPLINK, udp_frame(ROUTER, GATEWAY, "8.8.8.8", "10.1.0.53", 6000 + i, 53, bytes([i]) * 10, ttl=57)
        else:
            yield ts, UPLINK, udp_frame(BROADCAST, GATEWAY, "203.0.113.99", "239.255.255.250", 1900, 1900, b"M-SEARCH")


def main():
    inputs = {INSIDE: [], UPLINK: [], DMZ: []}
    outputs = {INSIDE: [], UPLINK: [], DMZ: []}
    sw = Switch()
    for ts, port, f in traffic():
        inputs[port].append((ts, f))
        for out_port, out in sw.receive(port, f):
            outputs[out_port].append((ts, out))
    names = {INSIDE: "inside", UPLINK: "uplink", DMZ: "dmz"}
    for port, recs in inputs.items():
        write_pcap(os.path.join(HERE, names[port] + ".pcap"), recs)
    exp = os.path.join(ROOT, "tests", "expected", "ext")
    os.makedirs(exp, exist_ok=True)
    for port, recs in outputs.items():
        write_pcap(os.path.join(exp, "port-%d.pcap" % port), recs)
        print("port %d: %d packets expected" % (port, len(recs)))


if __name__ == "__main__":
    main()
