#!/usr/bin/env python3
"""Write the bundled example's input captures and, independently of the switch, the output
captures that `examples/flows.txt` must produce from them.

usage: examples/gen_example.py        (run from the repository root)

Writes examples/port1.pcap and examples/port2.pcap (the traffic entering ports 1 and 2) and
tests/expected/example/port-{1,2,3}.pcap (what the switch must transmit on each port). The
expected outputs are computed here by applying the example's flow table by hand, packet by
packet, so the replay test compares the switch against a second implementation rather than
against its own earlier output. Only the standard library is used.
"""
import os
import struct

LINKTYPE_ETHERNET = 1
SNAPLEN = 262144

INSIDE_HOST = bytes.fromhex("02000000010a")
INSIDE_HOST2 = bytes.fromhex("020000000114")
ROUTER_IN = bytes.fromhex("020000000001")
GATEWAY = bytes.fromhex("0200000000fe")
RESOLVER = bytes.fromhex("020000000053")
BROADCAST = b"\xff" * 6


def ip4(s):
    return bytes(int(x) for x in s.split("."))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def eth(dst, src, ethertype, payload):
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload, ttl=64, ident=1):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, ttl, proto, 0, ip4(src), ip4(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def l4_csum(src, dst, proto, seg):
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, proto, len(seg))
    return csum(pseudo + seg)


def udp(src, dst, sport, dport, data):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    c = l4_csum(src, dst, 17, seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def tcp(src, dst, sport, dport, flags=0x02, seq=1000):
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 64240, 0, 0)
    c = l4_csum(src, dst, 6, seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def icmp_echo(ident, seq):
    msg = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"ping" * 4
    return msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]


def arp(op, sha, spa, tha, tpa):
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, ip4(spa), tha, ip4(tpa))


def ipv4_frame(dst_mac, src_mac, src, dst, proto, l4, ttl=64):
    return eth(dst_mac, src_mac, 0x0800, ipv4(src, dst, proto, l4, ttl=ttl))


# --- the flow table of examples/flows.txt, applied by hand -------------------------------

def dec_ttl(frame, l3=14):
    """Returns the frame with the IPv4 TTL decremented and the header checksum recomputed,
    or None when the TTL is 0 or 1 (the packet goes to the controller; none is connected)."""
    if len(frame) < l3 + 20 or frame[l3 + 8] <= 1:
        return None
    hdr = bytearray(frame[l3:l3 + 20])
    hdr[8] -= 1
    hdr[10:12] = b"\0\0"
    hdr[10:12] = struct.pack("!H", csum(bytes(hdr)))
    return frame[:l3] + bytes(hdr) + frame[l3 + 20:]


def set_dl(frame, dst=None, src=None):
    return (dst or frame[0:6]) + (src or frame[6:12]) + frame[12:]


def push_vlan(frame, vid):
    return frame[:12] + struct.pack("!HH", 0x8100, vid) + frame[12:]


class Switch:
    """The example's flow table, by hand. Returns [(port, frame)] for one received frame."""

    PORTS = (1, 2, 3)

    def __init__(self):
        self.macs = {}

    def receive(self, in_port, f):
        ethertype = struct.unpack("!H", f[12:14])[0]
        if ethertype == 0x0806:
            return self.normal(in_port, f)
        if ethertype != 0x0800:
            return []
        ip_ok = len(f) >= 34
        proto = f[23] if ip_ok else 0
        dport = struct.unpack("!H", f[36:38])[0] if ip_ok and proto in (6, 17) and len(f) >= 38 else 0
        dst = f[30:34] if ip_ok else b"\0\0\0\0"
        if in_port == 1:
            if proto == 6 and dport == 23:
                return []
            if proto == 17 and dport == 53:
                g = dec_ttl(set_dl(f, dst=RESOLVER))
                return [] if g is None else [(2, g), (3, g)]
            g = dec_ttl(set_dl(f, src=ROUTER_IN, dst=GATEWAY))
            return [] if g is None else [(2, g)]
        if in_port == 2:
            if dst[0:2] == bytes([10, 1]):
                g = dec_ttl(set_dl(f, src=ROUTER_IN))
                if g is None:
                    return []
                if dst[0:3] == bytes([10, 1, 1]):
                    g = push_vlan(g, 101)
                return [(1, g)]
            return []  # controller, none connected
        return []

    def normal(self, in_port, f):
        dst, src = f[0:6], f[6:12]
        if not src[0] & 1:
            self.macs[src] = in_port
        if not dst[0] & 1 and dst in self.macs:
            out = self.macs[dst]
            return [] if out == in_port else [(out, f)]
        return [(p, f) for p in self.PORTS if p != in_port]


# --- the traffic --------------------------------------------------------------------------

def traffic():
    """Yields (time in microseconds, port, frame)."""
    t = 1_700_000_000_000_000
    h1, h2 = "10.1.0.10", "10.1.1.20"
    yield t + 100, 1, eth(BROADCAST, INSIDE_HOST, 0x0806, arp(1, INSIDE_HOST, h1, b"\0" * 6, "10.1.0.1"))
    yield t + 200, 2, eth(INSIDE_HOST, GATEWAY, 0x0806, arp(2, GATEWAY, "10.1.0.1", INSIDE_HOST, h1))
    yield t + 300, 1, ipv4_frame(ROUTER_IN, INSIDE_HOST, h1, "8.8.8.8", 17, udp(h1, "8.8.8.8", 5353, 53, b"\x12\x34example"))
    yield t + 400, 1, ipv4_frame(ROUTER_IN, INSIDE_HOST, h1, "93.184.216.34", 6, tcp(h1, "93.184.216.34", 40000, 23))
    yield t + 500, 1, ipv4_frame(ROUTER_IN, INSIDE_HOST, h1, "93.184.216.34", 6, tcp(h1, "93.184.216.34", 40001, 443))
    yield t + 600, 1, ipv4_frame(ROUTER_IN, INSIDE_HOST, h1, "93.184.216.34", 1, icmp_echo(7, 1), ttl=1)
    yield t + 700, 2, ipv4_frame(ROUTER_IN, GATEWAY, "8.8.8.8", h2, 17, udp("8.8.8.8", h2, 53, 5353, b"\x12\x34answer"), ttl=57)
    yield t + 800, 2, ipv4_frame(ROUTER_IN, GATEWAY, "93.184.216.34", h1, 6, tcp("93.184.216.34", h1, 443, 40001, 0x12), ttl=50)
    yield t + 900, 2, ipv4_frame(ROUTER_IN, GATEWAY, "93.184.216.34", "192.168.5.5", 17, udp("93.184.216.34", "192.168.5.5", 1, 2, b"x"))
    v6 = struct.pack("!IHBB16s16s", 6 << 28, 8, 17, 64, bytes(15) + b"\1", bytes(15) + b"\2") + struct.pack("!HHHH", 1, 2, 8, 0)
    yield t + 1000, 1, eth(ROUTER_IN, INSIDE_HOST, 0x86DD, v6)
    yield t + 1100, 1, eth(ROUTER_IN, INSIDE_HOST, 0x0800, bytes([0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6]))
    # A second host, then a burst of repeated flows so that the caches have something to hit.
    yield t + 1200, 1, eth(BROADCAST, INSIDE_HOST2, 0x0806, arp(1, INSIDE_HOST2, "10.1.0.20", b"\0" * 6, "10.1.0.1"))
    for i in range(40):
        ts = t + 2000 + 50 * i
        src_mac, src = (INSIDE_HOST, h1) if i % 2 == 0 else (INSIDE_HOST2, "10.1.0.20")
        kind = i % 5
        if kind == 0:
            yield ts, 1, ipv4_frame(ROUTER_IN, src_mac, src, "8.8.4.4", 17, udp(src, "8.8.4.4", 6000 + i, 53, bytes([i]) * 12))
        elif kind == 1:
            yield ts, 1, ipv4_frame(ROUTER_IN, src_mac, src, "1.1.1.1", 6, tcp(src, "1.1.1.1", 41000, 443, 0x10, seq=i))
        elif kind == 2:
            yield ts, 2, ipv4_frame(ROUTER_IN, GATEWAY, "1.1.1.1", "10.1.1.%d" % (20 + i % 3), 6, tcp("1.1.1.1", "10.1.1.%d" % (20 + i % 3), 443, 41000, 0x10, seq=i), ttl=52)
        elif kind == 3:
            yield ts, 2, ipv4_frame(ROUTER_IN, GATEWAY, "1.1.1.1", "10.1.0.%d" % (10 + i % 2 * 10), 6, tcp("1.1.1.1", "10.1.0.%d" % (10 + i % 2 * 10), 443, 41000, 0x18, seq=i), ttl=52)
        else:
            yield ts, 1, ipv4_frame(ROUTER_IN, src_mac, src, "93.184.216.34", 6, tcp(src, "93.184.216.34", 42000 + i, 23))


def write_pcap(path, records):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        for ts, frame in records:
            f.write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), len(frame)))
            f.write(frame)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    inputs = {1: [], 2: []}
    outputs = {1: [], 2: [], 3: []}
    sw = Switch()
    for ts, port, frame in traffic():
        inputs[port].append((ts, frame))
        for out_port, out in sw.receive(port, frame):
            outputs[out_port].append((ts, out))
    for port, recs in inputs.items():
        write_pcap(os.path.join(root, "examples", "port%d.pcap" % port), recs)
    os.makedirs(os.path.join(root, "tests", "expected", "example"), exist_ok=True)
    for port, recs in outputs.items():
        write_pcap(os.path.join(root, "tests", "expected", "example", "port-%d.pcap" % port), recs)
        print("port %d: %d packets expected" % (port, len(recs)))


if __name__ == "__main__":
    main()
