//! Flow-key extraction: the semantics of Open vSwitch's `flow_extract`, over checked views.
//!
//! The rules, each matching what Open vSwitch does (and checked against `ovs-ofctl
//! parse-pcap` by `tests/packet_ovs_extract.rs`):
//! - A frame shorter than an Ethernet header yields a key with only `in_port` set.
//! - Up to two VLAN tags (TPID 0x8100 or 0x88a8) are recorded with [`VLAN_CFI`] set in the
//!   TCI; a tag is only taken when the tag and the following Ethertype are both present.
//! - An 802.3 length field yields `dl_type` 0x05ff, unless an LLC/SNAP header with the
//!   Ethernet OUI follows, in which case its type is used and the network layer follows it.
//! - MPLS: the first label stack entry is recorded; the network layer follows the stack.
//! - IPv4 is only parsed when the header length is valid and the total length fits the frame
//!   (otherwise every network-layer field stays zero); padding after the total length is
//!   ignored. IPv6 likewise with the payload length; an extension-header chain that does not
//!   fit leaves the addresses set and the rest of the network layer zero.
//! - Fragments set `nw_frag`; a non-first fragment has no transport fields.
//! - TCP/UDP/SCTP ports, TCP flags, ICMP/ICMPv6/IGMP type and code go in `tp_src`/`tp_dst`
//!   when the whole transport header is present.
//! - ARP/RARP fields are taken only for Ethernet/IPv4 ARP; only opcodes up to 255 are
//!   recorded (in `nw_proto`).
//! - Neighbour discovery records the target and the source/target link-layer address
//!   options; a duplicated option clears all three.
//!
//! Fields Open vSwitch extracts that this flow key does not carry are not extracted: the
//! IGMP group, the ND reserved word and option type, NSH, MPLS entries after the first,
//! tunnel and conntrack metadata.

use super::ethernet::{self, is_vlan_tpid, VlanTag};
use super::{arp, ethertype, get16, icmpv6, ip_proto, ipv4, ipv6, mpls, tcp};
use ofproto_bridge::flow::{Flow, Vlan, DL_TYPE_NONE, FRAG_LATER, MAX_VLAN_HEADERS, VLAN_CFI};

/// Offset value meaning "this layer is absent".
pub const OFS_ABSENT: u16 = u16::MAX;

/// Where the headers of a frame are, as found by [`extract`].
///
/// Offsets are from the start of the frame; [`OFS_ABSENT`] means the layer was not found.
/// **Invariant:** a present offset is at most the frame's length, and the offsets that are
/// present increase in the order `l2_5 < l3 <= l4 <= l4_payload`.
#[derive(Clone, Copy, Debug, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(8))]
pub struct Layout {
    /// Start of the MPLS label stack.
    pub l2_5: u16,
    /// Start of the network layer (just past the Ethernet header, tags, SNAP or MPLS stack);
    /// present whenever the frame holds a whole Ethernet header.
    pub l3: u16,
    /// Start of the transport layer; present when an IPv4/IPv6 header was parsed (for a
    /// non-first fragment it is where the fragment's data starts).
    pub l4: u16,
    /// Start of the transport payload; present when a whole TCP, UDP, SCTP, ICMP, IGMP or
    /// ICMPv6 header was parsed.
    pub l4_payload: u16,
    /// The flow key's `dl_type` (0 when there was no Ethernet header).
    pub dl_type: u16,
    /// The IP protocol when an IP header was parsed (0 otherwise).
    pub nw_proto: u8,
    /// The fragment bits when an IP header was parsed.
    pub nw_frag: u8,
    /// Number of VLAN tags recorded in the flow key.
    pub n_vlans: u8,
    /// Always zero: makes the layout 16 bytes without padding, so that it compares as one
    /// 128-bit word (the caches compare layouts on every hit that recorded one).
    pad: [u8; 3],
}

impl PartialEq for Layout {
    #[inline]
    fn eq(&self, other: &Layout) -> bool {
        bytemuck::cast::<Layout, u128>(*self) == bytemuck::cast::<Layout, u128>(*other)
    }
}

impl std::hash::Hash for Layout {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        bytemuck::cast::<Layout, u128>(*self).hash(h);
    }
}

impl Default for Layout {
    fn default() -> Self {
        Layout::EMPTY
    }
}

impl Layout {
    /// A layout with every layer absent.
    pub const EMPTY: Layout = Layout {
        l2_5: OFS_ABSENT,
        l3: OFS_ABSENT,
        l4: OFS_ABSENT,
        l4_payload: OFS_ABSENT,
        dl_type: 0,
        nw_proto: 0,
        nw_frag: 0,
        n_vlans: 0,
        pad: [0; 3],
    };

    fn get(o: u16) -> Option<usize> {
        (o != OFS_ABSENT).then_some(o as usize)
    }
    /// Start of the MPLS label stack, if any.
    pub fn l2_5(&self) -> Option<usize> {
        Self::get(self.l2_5)
    }
    /// Start of the network layer, if any.
    pub fn l3(&self) -> Option<usize> {
        Self::get(self.l3)
    }
    /// Start of the transport layer, if any.
    pub fn l4(&self) -> Option<usize> {
        Self::get(self.l4)
    }
    /// Start of the transport payload, if any.
    pub fn l4_payload(&self) -> Option<usize> {
        Self::get(self.l4_payload)
    }
    /// Whether an IPv4 header was parsed.
    pub fn is_ipv4(&self) -> bool {
        self.dl_type == ethertype::IPV4 && self.l4 != OFS_ABSENT
    }
    /// Whether an IPv6 header (and its extension headers) was parsed.
    pub fn is_ipv6(&self) -> bool {
        self.dl_type == ethertype::IPV6 && self.l4 != OFS_ABSENT
    }

    /// Moves every present offset by `delta` bytes (used when headers are pushed or popped
    /// in front of them). Returns `None` if an offset would leave the 16-bit range.
    pub fn shifted(&self, delta: isize) -> Option<Layout> {
        let mv = |o: u16| -> Option<u16> {
            if o == OFS_ABSENT {
                return Some(o);
            }
            let n = o as isize + delta;
            (0..OFS_ABSENT as isize).contains(&n).then_some(n as u16)
        };
        Some(Layout {
            l2_5: mv(self.l2_5)?,
            l3: mv(self.l3)?,
            l4: mv(self.l4)?,
            l4_payload: mv(self.l4_payload)?,
            ..*self
        })
    }
}

/// Converts an offset to the layout's 16-bit form (`None` if it does not fit).
#[inline]
fn ofs(n: usize) -> Option<u16> {
    (n < OFS_ABSENT as usize).then_some(n as u16)
}

/// Fills `flow` from `frame` (received on `in_port`) and returns where the headers are.
///
/// Every field of `flow` is overwritten; `metadata` and `recirc_id` become zero (the caller
/// sets them). Never panics and never allocates, whatever the bytes: a truncated or malformed
/// frame is parsed as far as it is valid, with the semantics of Open vSwitch's
/// `flow_extract` (see the module documentation).
pub fn extract(frame: &[u8], in_port: u32, flow: &mut Flow) -> Layout {
    let mut lay = Layout::EMPTY;
    extract_to(frame, in_port, flow, &mut lay);
    lay
}

/// [`extract`] with the layout written to `lay` in place: the batch stage parses a whole
/// batch into its key array before reading any key back, and a layout returned by value
/// would be read back right after its field-by-field stores (a store-forwarding stall).
#[inline]
pub fn extract_to(frame: &[u8], in_port: u32, flow: &mut Flow, lay: &mut Layout) {
    *flow = Flow::default();
    flow.in_port = in_port;
    *lay = Layout::EMPTY;
    if !extract_common(frame, flow, lay) {
        let _ = extract_into(frame, flow, lay);
    }
}

/// The frame nearly all traffic is (untagged Ethernet, IPv4 without options and not a
/// fragment, a whole UDP or TCP header), parsed in straight-line code into `flow` and `lay`
/// as [`extract_into`] would parse it; `false` with nothing written for any other frame.
#[inline]
fn extract_common(frame: &[u8], flow: &mut Flow, lay: &mut Layout) -> bool {
    const L3: usize = ethernet::HEADER_LEN;
    const L4: usize = L3 + ipv4::HEADER_LEN;
    let Some(&h) = frame.first_chunk::<{ L4 + 8 }>() else {
        return false;
    };
    if get16(&h, 12) != ethertype::IPV4 || h[L3] != 0x45 {
        return false;
    }
    // The total length covers the header and a UDP header and fits the frame, and any
    // padding after it fits the layout (what `extract_into` requires).
    let tl = get16(&h, L3 + 2) as usize;
    let rest = frame.len() - L3;
    if tl < ipv4::HEADER_LEN + 8 || tl > rest || rest - tl > u16::MAX as usize {
        return false;
    }
    if get16(&h, L3 + 6) & (ipv4::FLAG_MF | ipv4::FRAG_OFFSET_MASK) != 0 {
        return false;
    }
    let proto = h[L3 + 9];
    let (hdr_len, tcp_flags) = match proto {
        ip_proto::UDP => (8, 0),
        ip_proto::TCP => {
            let Some(t) = frame.get(L4..L4 + tcp::HEADER_LEN) else {
                return false;
            };
            let thl = (t[12] >> 4) as usize * 4;
            if thl < tcp::HEADER_LEN || tl - ipv4::HEADER_LEN < thl {
                return false;
            }
            (thl, get16(t, 12) & tcp::FLAGS_MASK)
        }
        _ => return false,
    };
    flow.dl_dst = [h[0], h[1], h[2], h[3], h[4], h[5]];
    flow.dl_src = [h[6], h[7], h[8], h[9], h[10], h[11]];
    flow.dl_type = ethertype::IPV4;
    flow.nw_tos = h[L3 + 1];
    flow.nw_ttl = h[L3 + 8];
    flow.nw_proto = proto;
    flow.nw_src = super::get32(&h, L3 + 12);
    flow.nw_dst = super::get32(&h, L3 + 16);
    flow.tp_src = get16(&h, L4);
    flow.tp_dst = get16(&h, L4 + 2);
    flow.tcp_flags = tcp_flags;
    lay.dl_type = ethertype::IPV4;
    lay.l3 = L3 as u16;
    lay.l4 = L4 as u16;
    lay.l4_payload = (L4 + hdr_len) as u16;
    lay.nw_proto = proto;
    true
}

/// The body of [`extract`]; `None` means "stop here" (the key and layout are as far as valid).
fn extract_into(frame: &[u8], flow: &mut Flow, lay: &mut Layout) -> Option<()> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    flow.dl_dst = eth.dst_addr();
    flow.dl_src = eth.src_addr();

    // VLAN tags: each needs its 4 bytes plus the 2 of the following Ethertype.
    let mut at = 12;
    let mut n = 0;
    while n < MAX_VLAN_HEADERS && is_vlan_tpid(get16(frame, at)) {
        if frame.len() - at < ethernet::VLAN_TAG_LEN + 2 {
            break;
        }
        let tag = VlanTag::parse(&frame[at..]).ok()?;
        flow.vlans[n] = Vlan {
            tpid: tag.tpid,
            tci: tag.tci | VLAN_CFI,
        };
        at += ethernet::VLAN_TAG_LEN;
        n += 1;
    }
    lay.n_vlans = n as u8;

    let mut dl_type = get16(frame, at);
    at += 2;
    if dl_type < ethertype::MIN {
        dl_type = DL_TYPE_NONE;
        if let Some(llc) = frame.get(at..at + 8) {
            if llc[..6] == [0xaa, 0xaa, 0x03, 0, 0, 0] {
                at += 8;
                let t = get16(llc, 6);
                if t >= ethertype::MIN {
                    dl_type = t;
                }
            }
        }
    }
    flow.dl_type = dl_type;
    lay.dl_type = dl_type;

    if dl_type == ethertype::MPLS || dl_type == ethertype::MPLS_MCAST {
        lay.l2_5 = ofs(at)?;
        let mut first = true;
        while let Ok(lse) = mpls::Packet::new_checked(&frame[at..]) {
            if first {
                flow.mpls_lse = lse.lse();
                first = false;
            }
            at += mpls::LSE_LEN;
            if lse.bos() {
                break;
            }
        }
    }

    lay.l3 = ofs(at)?;
    let rest = &frame[at..];
    let (l4_start, l4): (usize, &[u8]);
    match dl_type {
        ethertype::IPV4 => {
            let ip = ipv4::Packet::new_checked(rest).ok()?;
            let hl = ip.header_len() as usize;
            let tl = ip.total_len() as usize;
            if tl > rest.len() || hl > tl || rest.len() - tl > u16::MAX as usize {
                return None;
            }
            flow.nw_src = ip.src_addr();
            flow.nw_dst = ip.dst_addr();
            flow.nw_tos = ip.tos();
            flow.nw_ttl = ip.ttl();
            flow.nw_proto = ip.protocol();
            if ip.is_fragment() {
                flow.nw_frag = ofproto_bridge::flow::FRAG_ANY;
                if ip.frag_offset() != 0 {
                    flow.nw_frag |= FRAG_LATER;
                }
            }
            l4_start = at + hl;
            l4 = &rest[hl..tl];
        }
        ethertype::IPV6 => {
            let ip = ipv6::Packet::new_checked(rest).ok()?;
            let plen = ip.payload_len() as usize;
            if ipv6::HEADER_LEN + plen > rest.len()
                || rest.len() - (plen + ipv6::HEADER_LEN) > u16::MAX as usize
            {
                return None;
            }
            flow.ipv6_src = ip.src_addr();
            flow.ipv6_dst = ip.dst_addr();
            let payload = &rest[ipv6::HEADER_LEN..ipv6::HEADER_LEN + plen];
            let walk = ipv6::walk_ext_headers(payload, ip.next_header()).ok()?;
            flow.ipv6_label = ip.flow_label();
            flow.nw_tos = ip.traffic_class();
            flow.nw_ttl = ip.hop_limit();
            flow.nw_proto = walk.proto;
            flow.nw_frag = walk.frag;
            l4_start = at + ipv6::HEADER_LEN + walk.offset;
            l4 = &payload[walk.offset..];
        }
        ethertype::ARP | ethertype::RARP => {
            let a = arp::Packet::new_checked(rest).ok()?;
            if a.is_ethernet_ipv4() {
                flow.nw_src = a.sender_proto_addr();
                flow.nw_dst = a.target_proto_addr();
                let op = a.operation();
                if op <= 0xff {
                    flow.nw_proto = op as u8;
                }
                flow.arp_sha = a.sender_hw_addr();
                flow.arp_tha = a.target_hw_addr();
            }
            return None;
        }
        _ => return None,
    }

    lay.l4 = ofs(l4_start)?;
    lay.nw_proto = flow.nw_proto;
    lay.nw_frag = flow.nw_frag;
    if flow.nw_frag & FRAG_LATER != 0 {
        return None;
    }
    let hdr_len = match flow.nw_proto {
        ip_proto::TCP => {
            let t = tcp::Packet::new_checked(l4).ok()?;
            flow.tcp_flags = t.flags();
            flow.tp_src = t.src_port();
            flow.tp_dst = t.dst_port();
            t.header_len()
        }
        ip_proto::UDP | ip_proto::SCTP => {
            let need = if flow.nw_proto == ip_proto::UDP {
                8
            } else {
                12
            };
            if l4.len() < need {
                return None;
            }
            flow.tp_src = get16(l4, 0);
            flow.tp_dst = get16(l4, 2);
            need
        }
        ip_proto::ICMP | ip_proto::IGMP => {
            if l4.len() < 8 {
                return None;
            }
            flow.tp_src = l4[0] as u16;
            flow.tp_dst = l4[1] as u16;
            8
        }
        ip_proto::ICMPV6 => {
            let m = icmpv6::Packet::new_checked(l4).ok()?;
            flow.tp_src = m.msg_type() as u16;
            flow.tp_dst = m.msg_code() as u16;
            if m.is_nd() {
                extract_nd(&m, flow);
            }
            icmpv6::HEADER_LEN
        }
        _ => return None,
    };
    lay.l4_payload = ofs(l4_start + hdr_len)?;
    Some(())
}

/// Neighbour discovery target and link-layer address options, as Open vSwitch reads them.
fn extract_nd(m: &icmpv6::Packet<&[u8]>, flow: &mut Flow) {
    let Some(target) = m.nd_target() else { return };
    let mut sll = [0u8; 6];
    let mut tll = [0u8; 6];
    for opt in m.nd_options() {
        let Some(mac) = opt.lladdr() else { continue };
        let slot = if opt.kind == icmpv6::OPT_SOURCE_LLADDR {
            &mut sll
        } else {
            &mut tll
        };
        if *slot != [0; 6] {
            // The same option twice: Open vSwitch drops the target and both addresses.
            return;
        }
        *slot = mac;
    }
    flow.nd_target = target;
    flow.arp_sha = sll;
    flow.arp_tha = tll;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::builder::{self, L4};
    use crate::packet::{ethernet::Repr as Eth, ipv4, ipv6, tcp, udp};
    use proptest::prelude::*;

    fn check_layout(frame: &[u8], l: &Layout) {
        let present: Vec<usize> = [l.l2_5(), l.l3(), l.l4(), l.l4_payload()]
            .into_iter()
            .flatten()
            .collect();
        for w in present.windows(2) {
            assert!(w[0] <= w[1], "{l:?}");
        }
        for o in present {
            assert!(o <= frame.len(), "{l:?} beyond {}", frame.len());
        }
    }

    fn sample_frames() -> Vec<Vec<u8>> {
        let tag = |tpid, tci| Some(ethernet::VlanTag { tpid, tci });
        let ip4 = ipv4::Repr {
            src: 0x0a00_0001,
            dst: 0x0a00_0002,
            ttl: 9,
            tos: 0x2e,
            options: ipv4::Options::new(&[1, 1, 1, 0]).unwrap(),
            ..Default::default()
        };
        let ip6 = ipv6::Repr {
            hop_limit: 3,
            flow_label: 0xabcde,
            ..Default::default()
        };
        let tcp = L4::Tcp(tcp::Repr {
            src_port: 80,
            dst_port: 81,
            flags: tcp::SYN,
            ..Default::default()
        });
        let udp = L4::Udp(udp::Repr {
            src_port: 53,
            dst_port: 54,
        });
        vec![
            builder::ethernet(
                &Eth {
                    dst: [1; 6],
                    src: [2; 6],
                    vlans: [tag(0x88a8, 0x2005), tag(0x8100, 7)],
                    ethertype: 0x0800,
                },
                &builder::ipv4(&ip4, &tcp, b"payload"),
            ),
            builder::ethernet(
                &Eth {
                    dst: [1; 6],
                    src: [2; 6],
                    vlans: [None, None],
                    ethertype: 0x86dd,
                },
                &builder::ipv6(
                    &ip6,
                    &[ipv6::ExtRepr::Generic {
                        kind: 0,
                        next_header: 0,
                        len: 8,
                    }],
                    &udp,
                    b"x",
                ),
            ),
            builder::ethernet(
                &Eth {
                    dst: [1; 6],
                    src: [2; 6],
                    vlans: [None, None],
                    ethertype: 0x8847,
                },
                &builder::mpls(
                    &[
                        mpls::Repr {
                            label: 16,
                            tc: 1,
                            bos: false,
                            ttl: 5,
                        },
                        mpls::Repr {
                            label: 17,
                            ..Default::default()
                        },
                    ],
                    &builder::ipv4(&ip4, &udp, b""),
                ),
            ),
        ]
    }

    #[test]
    fn layout_and_fields_of_qinq_tcp() {
        let f = &sample_frames()[0];
        let mut flow = Flow::default();
        let l = extract(f, 3, &mut flow);
        assert_eq!(flow.in_port, 3);
        assert_eq!(
            flow.vlans[0],
            Vlan {
                tpid: 0x88a8,
                tci: 0x3005
            }
        );
        assert_eq!(
            flow.vlans[1],
            Vlan {
                tpid: 0x8100,
                tci: 0x1007
            }
        );
        assert_eq!(
            (flow.dl_type, flow.nw_proto, flow.nw_tos, flow.nw_ttl),
            (0x0800, 6, 0x2e, 9)
        );
        assert_eq!(
            (flow.tp_src, flow.tp_dst, flow.tcp_flags),
            (80, 81, tcp::SYN)
        );
        assert_eq!(l.n_vlans, 2);
        assert_eq!(
            (l.l2_5(), l.l3(), l.l4(), l.l4_payload()),
            (None, Some(22), Some(46), Some(66))
        );
        assert!(l.is_ipv4());
        assert_eq!(&f[66..], b"payload");
    }

    #[test]
    fn layout_of_ipv6_with_hop_by_hop_and_mpls() {
        let frames = sample_frames();
        let mut flow = Flow::default();
        let l = extract(&frames[1], 0, &mut flow);
        assert_eq!(
            (l.l3(), l.l4(), l.l4_payload()),
            (Some(14), Some(62), Some(70))
        );
        assert_eq!(
            (flow.nw_proto, flow.ipv6_label, flow.tp_src),
            (17, 0xabcde, 53)
        );
        let l = extract(&frames[2], 0, &mut flow);
        assert_eq!((l.l2_5(), l.l3(), l.l4()), (Some(14), Some(22), None));
        assert_eq!(flow.mpls_lse, 16 << 12 | 1 << 9 | 5);
        assert_eq!(flow.nw_src, 0);
    }

    #[test]
    fn short_frames() {
        let mut flow = Flow {
            nw_src: 9,
            ..Default::default()
        };
        assert_eq!(extract(&[], 1, &mut flow), Layout::EMPTY);
        assert_eq!(
            flow,
            Flow {
                in_port: 1,
                ..Default::default()
            }
        );
        let l = extract(&[0u8; 14], 1, &mut flow);
        assert_eq!((l.l3(), l.dl_type), (Some(14), 0x05ff));
    }

    #[test]
    fn shifted_layout() {
        let l = Layout {
            l3: 14,
            l4: 34,
            ..Layout::EMPTY
        };
        let s = l.shifted(4).unwrap();
        assert_eq!((s.l3, s.l4, s.l2_5), (18, 38, OFS_ABSENT));
        assert_eq!(s.shifted(-4).unwrap(), l);
        assert_eq!(l.shifted(-15), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn never_panics_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut flow = Flow::default();
            let l = extract(&b, 0, &mut flow);
            check_layout(&b, &l);
        }

        #[test]
        fn never_panics_on_plausible_headers(ethertype in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x8100),
                                                                      Just(0x88a8), Just(0x8847), Just(0x0806), Just(0x0030)],
                                             rest in proptest::collection::vec(any::<u8>(), 0..120)) {
            let mut b = vec![0u8; 12];
            b.extend_from_slice(&ethertype.to_be_bytes());
            b.extend_from_slice(&rest);
            let mut flow = Flow::default();
            let l = extract(&b, 0, &mut flow);
            check_layout(&b, &l);
            prop_assert_eq!(flow.dl_type == 0, false);
            // What `emc::hash` relies on to leave these words out of an IPv4 key's hash.
            if flow.dl_type == ethertype::IPV4 {
                prop_assert_eq!(
                    (flow.ipv6_src, flow.ipv6_dst, flow.nd_target, flow.arp_sha, flow.arp_tha),
                    ([0; 16], [0; 16], [0; 16], [0; 6], [0; 6])
                );
            }
        }

        /// The straight-line parser gives the general parser's key and layout whenever it
        /// takes a frame: common UDP and TCP frames with any header byte changed (or
        /// several), truncated or padded.
        #[test]
        fn common_frames_parse_as_the_general_parser(
            tcp in any::<bool>(), payload in 0usize..40,
            flips in proptest::collection::vec((0usize..60, any::<u8>()), 0..4),
            pad in 0usize..8, cut in any::<prop::sample::Index>(), truncate in any::<bool>(),
        ) {
            let l4 = if tcp {
                L4::Tcp(tcp::Repr { src_port: 1, dst_port: 2, flags: tcp::ACK, ..Default::default() })
            } else {
                L4::Udp(udp::Repr { src_port: 1024, dst_port: 53 })
            };
            let ip4 = ipv4::Repr { src: 0x0a00_0001, dst: 0x0a01_0001, ttl: 64, ..Default::default() };
            let eth = Eth { dst: [2; 6], src: [1; 6], vlans: [None, None], ethertype: 0x0800 };
            let mut f = builder::ethernet(&eth, &builder::ipv4(&ip4, &l4, &vec![0; payload]));
            f.extend(std::iter::repeat_n(0, pad));
            for (at, x) in flips {
                if let Some(b) = f.get_mut(at) {
                    // Mostly small changes, so that many flipped frames stay common ones.
                    *b ^= if x < 128 { x & 0x0f } else { x };
                }
            }
            if truncate {
                f.truncate(cut.index(f.len() + 1));
            }
            let (mut fast, mut lf) = (Flow { in_port: 3, ..Default::default() }, Layout::EMPTY);
            let (mut slow, mut ls) = (fast, Layout::EMPTY);
            if extract_common(&f, &mut fast, &mut lf) {
                let _ = extract_into(&f, &mut slow, &mut ls);
                prop_assert_eq!(fast, slow);
                prop_assert_eq!(lf, ls);
            } else {
                prop_assert_eq!(fast, Flow { in_port: 3, ..Default::default() });
                prop_assert_eq!(lf, Layout::EMPTY);
            }
        }

        #[test]
        fn truncations_of_valid_frames(i in 0usize..3, cut in any::<prop::sample::Index>(),
                                       flip in any::<prop::sample::Index>(), x in any::<u8>()) {
            let mut f = sample_frames()[i].clone();
            let at = flip.index(f.len());
            f[at] ^= x;
            let n = cut.index(f.len() + 1);
            let mut flow = Flow::default();
            let l = extract(&f[..n], 0, &mut flow);
            check_layout(&f[..n], &l);
        }
    }
}
