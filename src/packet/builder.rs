//! Composes whole frames from `Repr` values, with lengths and checksums filled in.
//!
//! Used by tests, benchmarks and traffic generators; the fast path never builds frames.
//!
//! ```
//! use bpfswitch::packet::builder;
//! let f = builder::udp4_frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 0x0a00_0001, 0x0a00_0002, 1234, 53, b"hi");
//! assert_eq!(f.len(), 14 + 20 + 8 + 2);
//! ```

use super::{arp, ethernet, icmpv4, icmpv6, ip_proto, ipv4, ipv6, mpls, sctp, tcp, udp, MacAddr};

/// A transport header to put under an IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP.
    Tcp(tcp::Repr),
    /// UDP (checksum filled).
    Udp(udp::Repr),
    /// UDP with a zero ("not computed") checksum.
    UdpNoChecksum(udp::Repr),
    /// SCTP.
    Sctp(sctp::Repr),
    /// ICMPv4.
    Icmpv4(icmpv4::Repr),
    /// ICMPv6.
    Icmpv6(icmpv6::Repr),
    /// ICMPv6 neighbour discovery (the payload argument is ignored).
    Nd(icmpv6::NdRepr),
    /// Raw bytes (the payload) under the given protocol number.
    Raw(u8),
}

impl L4 {
    /// IP protocol number of this transport.
    pub fn protocol(&self) -> u8 {
        match self {
            L4::Tcp(_) => ip_proto::TCP,
            L4::Udp(_) | L4::UdpNoChecksum(_) => ip_proto::UDP,
            L4::Sctp(_) => ip_proto::SCTP,
            L4::Icmpv4(_) => ip_proto::ICMP,
            L4::Icmpv6(_) | L4::Nd(_) => ip_proto::ICMPV6,
            L4::Raw(p) => *p,
        }
    }

    /// Builds the transport segment; `pseudo(len)` gives the pseudo-header sum for a segment
    /// of `len` bytes.
    pub fn build(&self, payload: &[u8], pseudo: impl Fn(u32) -> u32) -> Vec<u8> {
        let hdr = match self {
            L4::Tcp(r) => r.buffer_len(),
            L4::Udp(_) | L4::UdpNoChecksum(_) => udp::HEADER_LEN,
            L4::Sctp(_) => sctp::HEADER_LEN,
            L4::Icmpv4(_) => icmpv4::HEADER_LEN,
            L4::Icmpv6(_) => icmpv6::HEADER_LEN,
            L4::Nd(r) => {
                let mut b = vec![0; r.buffer_len()];
                let len = b.len() as u32;
                r.emit(&mut icmpv6::Packet::new_unchecked(&mut b[..]), pseudo(len));
                return b;
            }
            L4::Raw(_) => 0,
        };
        let mut b = vec![0; hdr];
        b.extend_from_slice(payload);
        let ps = pseudo(b.len() as u32);
        match self {
            L4::Tcp(r) => r.emit(&mut tcp::Packet::new_unchecked(&mut b[..]), ps),
            L4::Udp(r) => r.emit(&mut udp::Packet::new_unchecked(&mut b[..]), Some(ps)),
            L4::UdpNoChecksum(r) => r.emit(&mut udp::Packet::new_unchecked(&mut b[..]), None),
            L4::Sctp(r) => r.emit(&mut sctp::Packet::new_unchecked(&mut b[..])),
            L4::Icmpv4(r) => r.emit(&mut icmpv4::Packet::new_unchecked(&mut b[..])),
            L4::Icmpv6(r) => r.emit(&mut icmpv6::Packet::new_unchecked(&mut b[..]), ps),
            L4::Nd(_) | L4::Raw(_) => {}
        }
        b
    }
}

/// An Ethernet frame: header (with its tags) followed by `payload`.
pub fn ethernet(eth: &ethernet::Repr, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0; eth.buffer_len()];
    eth.emit(&mut b);
    b.extend_from_slice(payload);
    b
}

/// An IPv4 packet carrying `l4` and `payload`; the protocol, lengths and checksums are set.
pub fn ipv4(ip: &ipv4::Repr, l4: &L4, payload: &[u8]) -> Vec<u8> {
    let mut ip = *ip;
    ip.protocol = l4.protocol();
    let seg = l4.build(payload, |len| ip.pseudo_sum(len));
    ipv4_raw(&ip, &seg)
}

/// An IPv4 packet whose payload is `data` as is (for fragments and odd protocols); the
/// total length and header checksum are set, the protocol is taken from `ip`.
pub fn ipv4_raw(ip: &ipv4::Repr, data: &[u8]) -> Vec<u8> {
    let mut ip = *ip;
    ip.payload_len = data.len() as u16;
    let mut b = vec![0; ip.buffer_len()];
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
    b.extend_from_slice(data);
    b
}

/// An IPv6 packet with extension headers `ext` carrying `l4` and `payload`; next-header
/// chaining, the payload length and the transport checksum are set.
pub fn ipv6(ip: &ipv6::Repr, ext: &[ipv6::ExtRepr], l4: &L4, payload: &[u8]) -> Vec<u8> {
    let seg = l4.build(payload, |len| ip.pseudo_sum(l4.protocol(), len));
    ipv6_raw(ip, ext, l4.protocol(), &seg)
}

/// An IPv6 packet with extension headers `ext`, then `data` announced as protocol `proto`.
pub fn ipv6_raw(ip: &ipv6::Repr, ext: &[ipv6::ExtRepr], proto: u8, data: &[u8]) -> Vec<u8> {
    let mut ip = *ip;
    let mut exts = Vec::new();
    for (i, e) in ext.iter().enumerate() {
        let next = ext.get(i + 1).map(|n| n.kind()).unwrap_or(proto);
        let e = match *e {
            ipv6::ExtRepr::Generic { kind, len, .. } => ipv6::ExtRepr::Generic {
                kind,
                next_header: next,
                len,
            },
            ipv6::ExtRepr::Fragment {
                offset,
                more,
                ident,
                ..
            } => ipv6::ExtRepr::Fragment {
                next_header: next,
                offset,
                more,
                ident,
            },
        };
        let at = exts.len();
        exts.resize(at + e.buffer_len(), 0);
        e.emit(&mut exts[at..]);
    }
    ip.next_header = ext.first().map(|e| e.kind()).unwrap_or(proto);
    ip.payload_len = (exts.len() + data.len()) as u16;
    let mut b = vec![0; ipv6::HEADER_LEN];
    ip.emit(&mut ipv6::Packet::new_unchecked(&mut b[..]));
    b.extend_from_slice(&exts);
    b.extend_from_slice(data);
    b
}

/// An MPLS label stack (bottom-of-stack set on the last entry) followed by `payload`.
pub fn mpls(labels: &[mpls::Repr], payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0; labels.len() * mpls::LSE_LEN];
    for (i, l) in labels.iter().enumerate() {
        let l = mpls::Repr {
            bos: i + 1 == labels.len(),
            ..*l
        };
        l.emit(&mut mpls::Packet::new_unchecked(&mut b[i * 4..i * 4 + 4]));
    }
    b.extend_from_slice(payload);
    b
}

/// An Ethernet/IPv4 ARP packet.
pub fn arp(a: &arp::Repr) -> Vec<u8> {
    let mut b = vec![0; arp::PACKET_LEN];
    a.emit(&mut arp::Packet::new_unchecked(&mut b[..]));
    b
}

/// An untagged Ethernet/IPv4/UDP frame with TTL 64 and a correct UDP checksum.
pub fn udp4_frame(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src_ip: u32,
    dst_ip: u32,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let ip = ipv4::Repr {
        src: src_ip,
        dst: dst_ip,
        ttl: 64,
        ..Default::default()
    };
    let l4 = L4::Udp(udp::Repr { src_port, dst_port });
    let eth = ethernet::Repr {
        dst: dst_mac,
        src: src_mac,
        vlans: [None; 2],
        ethertype: super::ethertype::IPV4,
    };
    ethernet(&eth, &ipv4(&ip, &l4, payload))
}

/// An untagged Ethernet/IPv4/TCP frame with TTL 64, the given flags and a correct checksum.
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the header fields a test wants to vary"
)]
pub fn tcp4_frame(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src_ip: u32,
    dst_ip: u32,
    src_port: u16,
    dst_port: u16,
    flags: u16,
    payload: &[u8],
) -> Vec<u8> {
    let ip = ipv4::Repr {
        src: src_ip,
        dst: dst_ip,
        ttl: 64,
        ..Default::default()
    };
    let l4 = L4::Tcp(tcp::Repr {
        src_port,
        dst_port,
        flags,
        window: 65535,
        ..Default::default()
    });
    let eth = ethernet::Repr {
        dst: dst_mac,
        src: src_mac,
        vlans: [None; 2],
        ethertype: super::ethertype::IPV4,
    };
    ethernet(&eth, &ipv4(&ip, &l4, payload))
}
