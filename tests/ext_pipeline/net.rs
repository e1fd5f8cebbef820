//! Frames for the pipeline tests, and checksums computed from scratch (RFC 1071 over the
//! whole header and pseudo-header), independently of both the switch's incremental updates
//! and the crate's frame builder.

use bpfswitch::packet::builder;

/// Source MAC address of the built frames.
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Destination MAC address of the built frames.
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// An IPv4 address as the host-order number the builder takes.
pub fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

/// The Internet checksum of `data` (as the big-endian value to store).
pub fn csum(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        sum += u64::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Offset of the IPv4 header: after the Ethernet header and any 802.1Q/802.1ad tags.
pub fn l3_offset(frame: &[u8]) -> usize {
    let mut o = 12;
    while matches!(
        u16::from_be_bytes([frame[o], frame[o + 1]]),
        0x8100 | 0x88a8
    ) {
        o += 4;
    }
    o + 2
}

fn be16(f: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([f[o], f[o + 1]])
}

/// The L4 checksum the segment at `l4` of `frame` should carry, computed from scratch with
/// the checksum field taken as zero (`None` for protocols without one here).
fn l4_csum(frame: &[u8], l3: usize) -> Option<(usize, u16)> {
    let ihl = usize::from(frame[l3] & 0x0f) * 4;
    let total = usize::from(be16(frame, l3 + 2));
    let proto = frame[l3 + 9];
    let l4 = l3 + ihl;
    let seg = &frame[l4..l3 + total];
    let at = match proto {
        6 => 16,
        17 => 6,
        1 => 2,
        _ => return None,
    };
    let mut data = Vec::new();
    if proto != 1 {
        data.extend_from_slice(&frame[l3 + 12..l3 + 20]);
        data.push(0);
        data.push(proto);
        data.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    }
    let mut s = seg.to_vec();
    s[at] = 0;
    s[at + 1] = 0;
    data.extend_from_slice(&s);
    let mut c = csum(&data);
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    Some((l4 + at, c))
}

/// Recomputes the IPv4 header checksum and the TCP/UDP/ICMP checksum of `frame` from
/// scratch (a zero UDP checksum, "none", stays zero).
pub fn fix_checksums(frame: &mut [u8]) {
    let l3 = l3_offset(frame);
    let ihl = usize::from(frame[l3] & 0x0f) * 4;
    frame[l3 + 10] = 0;
    frame[l3 + 11] = 0;
    let c = csum(&frame[l3..l3 + ihl]);
    frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    let frag = be16(frame, l3 + 6) & 0x1fff;
    if frag != 0 {
        return;
    }
    if let Some((at, c)) = l4_csum(frame, l3) {
        if frame[l3 + 9] == 17 && be16(frame, at) == 0 {
            return;
        }
        frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
}

/// Asserts that the IPv4 header checksum and the L4 checksum of `frame` verify.
pub fn assert_checksums_ok(frame: &[u8], what: &str) {
    let l3 = l3_offset(frame);
    let ihl = usize::from(frame[l3] & 0x0f) * 4;
    assert_eq!(
        csum(&frame[l3..l3 + ihl]),
        0,
        "{what}: IPv4 header checksum does not verify"
    );
    if let Some((at, want)) = l4_csum(frame, l3) {
        let got = be16(frame, at);
        if frame[l3 + 9] == 17 && got == 0 {
            return;
        }
        assert_eq!(
            got, want,
            "{what}: L4 checksum {got:#06x}, computed {want:#06x}"
        );
    }
}

/// A UDP datagram (checksum computed) from `src:sport` to `dst:dport`.
pub fn udp(src: u32, dst: u32, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    builder::udp4_frame(SRC_MAC, DST_MAC, src, dst, sport, dport, payload)
}

/// A UDP datagram with checksum 0 ("none").
pub fn udp_nocsum(src: u32, dst: u32, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = udp(src, dst, sport, dport, payload);
    f[40] = 0;
    f[41] = 0;
    f
}

/// A TCP segment (ACK) from `src:sport` to `dst:dport`.
pub fn tcp(src: u32, dst: u32, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    builder::tcp4_frame(SRC_MAC, DST_MAC, src, dst, sport, dport, 0x10, payload)
}

/// An IPv4 packet with `proto` and `l4` bytes as given, TTL `ttl`, in an untagged frame
/// (header checksum and ICMP checksum filled in).
pub fn ipv4_frame(src: u32, dst: u32, proto: u8, ttl: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let total = (20 + l4.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0x12, 0x34, 0x40, 0, ttl, proto, 0, 0]);
    f.extend_from_slice(&src.to_be_bytes());
    f.extend_from_slice(&dst.to_be_bytes());
    f.extend_from_slice(l4);
    fix_checksums(&mut f);
    f
}

/// An ICMP echo request (`msg_type` 8) or reply (0).
pub fn icmp(src: u32, dst: u32, msg_type: u8, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![msg_type, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    ipv4_frame(src, dst, 1, 64, &m)
}

/// An ARP request (not IPv4).
pub fn arp() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&[10, 0, 0, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 0, 0, 2]);
    f
}

/// A VXLAN datagram (outer `osrc -> odst`, UDP to 4789, I flag set, `vni`) carrying
/// `inner` (an Ethernet frame).
pub fn vxlan(osrc: u32, odst: u32, vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut p = vec![0x08, 0, 0, 0];
    p.extend_from_slice(&vni.to_be_bytes()[1..]);
    p.push(0);
    p.extend_from_slice(inner);
    udp(osrc, odst, 49152, 4789, &p)
}

/// `frame` with the IPv4 TTL set to `ttl` (checksums fixed).
pub fn with_ttl(frame: &[u8], ttl: u8) -> Vec<u8> {
    let mut f = frame.to_vec();
    let l3 = l3_offset(&f);
    f[l3 + 8] = ttl;
    fix_checksums(&mut f);
    f
}

/// `frame` with an 802.1Q tag (TCI `tci`) inserted after the MAC addresses.
pub fn tagged(frame: &[u8], tci: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&0x8100u16.to_be_bytes());
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// `frame` (untagged IPv4) with `opts` (a multiple of 4 bytes) inserted as IPv4 options
/// (IHL, total length and checksums fixed).
pub fn with_ip_options(frame: &[u8], opts: &[u8]) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let mut f = frame[..34].to_vec();
    f.extend_from_slice(opts);
    f.extend_from_slice(&frame[34..]);
    f[14] = 0x45 + (opts.len() / 4) as u8;
    let total = be16(&f, 16) + opts.len() as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    fix_checksums(&mut f);
    f
}
