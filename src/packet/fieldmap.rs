//! Maps bytes of a frame to the flow-key fields they determine, given its [`Layout`].
//!
//! This is what translation needs after an extension writes to a packet: the verifier
//! reports the written byte ranges, and [`write_impact`] says which match fields those bytes
//! feed, whether they feed flow-key bits no [`Field`] names (the inner VLAN tag, IGMP type
//! and code), and whether they decide the parse itself (an Ethertype, an IP header length, a
//! protocol number, an extension header...), in which case header positions may move and
//! every field after them may change.
//!
//! **Soundness:** for any frame and any rewrite of the bytes in the range, re-extracting the
//! frame changes only flow-key bits covered by the returned impact (property-tested below).
//! The answer may be larger than necessary, never smaller.

use super::{arp, ethertype, icmpv6, ip_proto, Layout};
use ofproto_bridge::field::Field;
use ofproto_bridge::flow::{Flow, FRAG_LATER};

/// A set of [`Field`]s, as a bitmap over their declaration order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldSet(u64);

impl FieldSet {
    /// The empty set.
    pub const EMPTY: FieldSet = FieldSet(0);

    /// Adds a field.
    pub fn insert(&mut self, f: Field) {
        self.0 |= 1 << (f as u32);
    }
    /// Whether the set holds `f`.
    pub fn contains(&self, f: Field) -> bool {
        self.0 & (1 << (f as u32)) != 0
    }
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
    /// The fields, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = Field> + '_ {
        Field::ALL.iter().copied().filter(|f| self.contains(*f))
    }
    /// A flow-key mask with every bit of every field in the set.
    pub fn mask(&self) -> Flow {
        let mut m = Flow::default();
        for f in self.iter() {
            f.or_mask(&mut m, f.full_mask());
        }
        m
    }
}

const _: () = assert!(Field::ALL.len() <= 64);

/// What rewriting some bytes of a frame can change in its flow key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteImpact {
    /// Named fields whose value may change.
    pub fields: FieldSet,
    /// Flow-key bits that no [`Field`] names may change (inner VLAN TCI, IGMP type/code).
    pub unnamed: bool,
    /// The parse may change: header positions, protocols and every later field.
    pub relayout: bool,
}

impl WriteImpact {
    /// Whether re-extracting the frame cannot change its flow key.
    pub fn is_none(&self) -> bool {
        self.fields.is_empty() && !self.unnamed && !self.relayout
    }
}

/// What a region of header bytes determines.
#[derive(Clone, Copy)]
enum Eff {
    Fields(&'static [Field]),
    Unnamed,
    Relayout,
}

struct Acc {
    start: usize,
    end: usize,
    out: WriteImpact,
}

impl Acc {
    /// Records `eff` if `[lo, hi)` overlaps the written range.
    fn region(&mut self, lo: usize, hi: usize, eff: Eff) {
        if lo < hi && lo < self.end && self.start < hi {
            match eff {
                Eff::Fields(fs) => fs.iter().for_each(|f| self.out.fields.insert(*f)),
                Eff::Unnamed => self.out.unnamed = true,
                Eff::Relayout => self.out.relayout = true,
            }
        }
    }
}

use Eff::{Fields as F, Relayout as R};
use Field::*;

/// What rewriting bytes `start..end` of `frame` (whose layout [`extract`](super::extract())
/// returned as `layout`) can change in its flow key. Bytes past the frame are ignored.
pub fn write_impact(frame: &[u8], layout: &Layout, start: usize, end: usize) -> WriteImpact {
    let end = end.min(frame.len());
    let mut a = Acc {
        start,
        end,
        out: WriteImpact::default(),
    };
    if start >= end {
        return a.out;
    }
    let Some(l3) = layout.l3() else {
        // Shorter than an Ethernet header: rewriting cannot make it longer.
        return a.out;
    };
    a.region(0, 6, F(&[EthDst]));
    a.region(6, 12, F(&[EthSrc]));
    let n = layout.n_vlans as usize;
    for i in 0..n {
        let t = 12 + 4 * i;
        a.region(t, t + 2, R);
        a.region(
            t + 2,
            t + 4,
            if i == 0 {
                F(&[VlanTci, VlanVid, VlanPcp])
            } else {
                Eff::Unnamed
            },
        );
    }
    // Ethertype, LLC/SNAP: decide the parse.
    a.region(12 + 4 * n, layout.l2_5().unwrap_or(l3), R);
    if let Some(l25) = layout.l2_5() {
        a.region(l25, l25 + 2, F(&[MplsLabel]));
        a.region(l25 + 2, l25 + 3, F(&[MplsLabel, MplsTc, MplsBos]));
        a.region(l25 + 3, l25 + 4, F(&[MplsTtl]));
        // Every entry's bottom-of-stack bit decides where the stack ends.
        let mut e = l25;
        while e + 4 <= l3 {
            a.region(e + 2, e + 3, R);
            e += 4;
        }
        // Nothing after the label stack is parsed.
        return a.out;
    }
    match layout.dl_type {
        ofproto_bridge::flow::DL_TYPE_NONE => {
            // An LLC header written into a SNAP header would give the frame an Ethertype.
            a.region(l3, l3 + 8, R);
        }
        ethertype::IPV4 | ethertype::IPV6 => ip_impact(&mut a, frame, layout, l3),
        ethertype::ARP | ethertype::RARP if frame.len() >= l3 + arp::PACKET_LEN => {
            a.region(l3, l3 + 6, R);
            let valid = arp::Packet::new_unchecked(&frame[l3..]).is_ethernet_ipv4();
            if valid {
                a.region(l3 + 6, l3 + 8, F(&[ArpOp]));
                a.region(l3 + 8, l3 + 14, F(&[ArpSha]));
                a.region(l3 + 14, l3 + 18, F(&[ArpSpa]));
                a.region(l3 + 18, l3 + 24, F(&[ArpTha]));
                a.region(l3 + 24, l3 + 28, F(&[ArpTpa]));
            }
        }
        _ => {}
    }
    a.out
}

fn ip_impact(a: &mut Acc, frame: &[u8], layout: &Layout, l3: usize) {
    let Some(l4) = layout.l4() else {
        // The IP header did not parse: any byte of it may make it parse.
        a.region(l3, frame.len(), R);
        return;
    };
    let l3_end = if layout.dl_type == ethertype::IPV4 {
        a.region(l3, l3 + 1, R);
        a.region(l3 + 1, l3 + 2, F(&[IpDscp, IpEcn]));
        a.region(l3 + 2, l3 + 4, R);
        a.region(l3 + 6, l3 + 8, R);
        a.region(l3 + 8, l3 + 9, F(&[NwTtl]));
        a.region(l3 + 9, l3 + 10, R);
        a.region(l3 + 12, l3 + 16, F(&[Ipv4Src]));
        a.region(l3 + 16, l3 + 20, F(&[Ipv4Dst]));
        l3 + super::get16(frame, l3 + 2) as usize
    } else {
        a.region(l3, l3 + 1, F(&[IpDscp]));
        a.region(l3 + 1, l3 + 2, F(&[IpDscp, IpEcn, Ipv6Label]));
        a.region(l3 + 2, l3 + 4, F(&[Ipv6Label]));
        a.region(l3 + 4, l3 + 7, R);
        a.region(l3 + 7, l3 + 8, F(&[NwTtl]));
        a.region(l3 + 8, l3 + 24, F(&[Ipv6Src]));
        a.region(l3 + 24, l3 + 40, F(&[Ipv6Dst]));
        // Extension headers.
        a.region(l3 + 40, l4, R);
        l3 + 40 + super::get16(frame, l3 + 4) as usize
    };
    if layout.nw_frag & FRAG_LATER != 0 {
        return;
    }
    let known = matches!(
        layout.nw_proto,
        ip_proto::TCP
            | ip_proto::UDP
            | ip_proto::SCTP
            | ip_proto::ICMP
            | ip_proto::IGMP
            | ip_proto::ICMPV6
    );
    if !known {
        return;
    }
    if layout.l4_payload().is_none() {
        // A transport header that did not parse (too short, or a bad TCP data offset).
        a.region(l4, l3_end, R);
        return;
    }
    match layout.nw_proto {
        ip_proto::TCP => {
            a.region(l4, l4 + 2, F(&[TcpSrc]));
            a.region(l4 + 2, l4 + 4, F(&[TcpDst]));
            a.region(l4 + 12, l4 + 13, R);
            a.region(l4 + 12, l4 + 14, F(&[TcpFlags]));
        }
        ip_proto::UDP => {
            a.region(l4, l4 + 2, F(&[UdpSrc]));
            a.region(l4 + 2, l4 + 4, F(&[UdpDst]));
        }
        ip_proto::SCTP => {
            a.region(l4, l4 + 2, F(&[SctpSrc]));
            a.region(l4 + 2, l4 + 4, F(&[SctpDst]));
        }
        ip_proto::ICMP => {
            a.region(l4, l4 + 1, F(&[Icmpv4Type]));
            a.region(l4 + 1, l4 + 2, F(&[Icmpv4Code]));
        }
        ip_proto::IGMP => a.region(l4, l4 + 2, Eff::Unnamed),
        _ => {
            // ICMPv6: type and code also decide whether the ND fields exist.
            const ND: &[Field] = &[NdTarget, NdSll, NdTll];
            a.region(l4, l4 + 1, F(&[Icmpv6Type, NdTarget, NdSll, NdTll]));
            a.region(l4 + 1, l4 + 2, F(&[Icmpv6Code, NdTarget, NdSll, NdTll]));
            let is_nd = frame
                .get(l4..l3_end.min(frame.len()))
                .and_then(|b| icmpv6::Packet::new_checked(b).ok())
                .is_some_and(|m| m.is_nd());
            if is_nd {
                // The target, and options that carry (or repeat) the link-layer addresses.
                a.region(l4 + icmpv6::ND_TARGET_OFFSET, l3_end, F(ND));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::builder::{self, L4};
    use crate::packet::{ethernet, extract, icmpv4, icmpv6, ipv4, ipv6, mpls, sctp, tcp, udp};
    use proptest::prelude::*;

    fn frames() -> Vec<Vec<u8>> {
        let tag = |tpid, tci| Some(ethernet::VlanTag { tpid, tci });
        let eth = |vlans, et| ethernet::Repr {
            dst: [2; 6],
            src: [4; 6],
            vlans,
            ethertype: et,
        };
        let ip4 = ipv4::Repr {
            src: 1,
            dst: 2,
            ttl: 3,
            tos: 4,
            options: ipv4::Options::new(&[1, 1, 1, 0]).unwrap(),
            ..Default::default()
        };
        let ip6 = ipv6::Repr {
            src: [1; 16],
            dst: [2; 16],
            hop_limit: 5,
            traffic_class: 6,
            flow_label: 7,
            ..Default::default()
        };
        let l4s4 = [
            L4::Tcp(tcp::Repr {
                src_port: 1,
                dst_port: 2,
                flags: 0x12,
                ..Default::default()
            }),
            L4::Udp(udp::Repr {
                src_port: 3,
                dst_port: 4,
            }),
            L4::Sctp(sctp::Repr {
                src_port: 5,
                dst_port: 6,
                verification_tag: 7,
            }),
            L4::Icmpv4(icmpv4::Repr {
                msg_type: 8,
                code: 0,
                rest: [0; 4],
            }),
            L4::Raw(ip_proto::IGMP),
            L4::Raw(47),
        ];
        let nd = L4::Nd(icmpv6::NdRepr {
            msg_type: 135,
            flags: 0,
            target: [9; 16],
            sll: Some([1; 6]),
            tll: Some([2; 6]),
        });
        let mut v = Vec::new();
        for l4 in l4s4 {
            v.push(builder::ethernet(
                &eth([tag(0x8100, 5), tag(0x8100, 6)], 0x0800),
                &builder::ipv4(&ip4, &l4, &[0xab; 8]),
            ));
        }
        let exts = [ipv6::ExtRepr::Generic {
            kind: 0,
            next_header: 0,
            len: 8,
        }];
        for l4 in [
            l4s4[0],
            l4s4[1],
            nd,
            L4::Icmpv6(icmpv6::Repr {
                msg_type: 128,
                code: 0,
                data: 0,
            }),
        ] {
            v.push(builder::ethernet(
                &eth([None, None], 0x86dd),
                &builder::ipv6(&ip6, &exts, &l4, &[0xcd; 8]),
            ));
        }
        let arp = builder::arp(&crate::packet::arp::Repr {
            op: 1,
            sha: [1; 6],
            spa: 2,
            tha: [3; 6],
            tpa: 4,
        });
        v.push(builder::ethernet(
            &eth([tag(0x88a8, 9), None], 0x0806),
            &arp,
        ));
        let labels = [mpls::Repr {
            label: 5,
            tc: 1,
            bos: false,
            ttl: 2,
        }; 2];
        v.push(builder::ethernet(
            &eth([None, None], 0x8847),
            &builder::mpls(&labels, &builder::ipv4(&ip4, &l4s4[1], b"")),
        ));
        v
    }

    #[test]
    fn named_regions() {
        let f = &frames()[0];
        let mut flow = Flow::default();
        let l = extract(f, 0, &mut flow);
        let l3 = l.l3().unwrap();
        let l4 = l.l4().unwrap();
        let ttl = write_impact(f, &l, l3 + 8, l3 + 9);
        assert_eq!(ttl.fields.iter().collect::<Vec<_>>(), vec![NwTtl]);
        assert!(!ttl.relayout && !ttl.unnamed);
        assert!(
            write_impact(f, &l, l3 + 10, l3 + 12).is_none(),
            "the IPv4 checksum is no flow field"
        );
        assert!(
            write_impact(f, &l, l4 + 16, l4 + 18).is_none(),
            "the TCP checksum is no flow field"
        );
        assert!(
            write_impact(f, &l, l.l4_payload().unwrap(), f.len()).is_none(),
            "payload"
        );
        assert!(write_impact(f, &l, 12, 13).relayout, "a TPID");
        assert!(write_impact(f, &l, 18, 20).unnamed, "the inner TCI");
        let ports = write_impact(f, &l, l4, l4 + 4);
        assert_eq!(
            ports.fields.iter().collect::<Vec<_>>(),
            vec![TcpSrc, TcpDst]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// Soundness: whatever is written in the range, re-extraction changes only flow-key
        /// bits the impact covers (and moves no header unless it says relayout).
        #[test]
        fn impact_covers_every_change(i in 0usize..12, start in 0usize..120, len in 1usize..6,
                                      bytes in proptest::collection::vec(any::<u8>(), 6),
                                      cut in proptest::option::of(0usize..120),
                                      flip in proptest::option::of((0usize..120, any::<u8>()))) {
            let all = frames();
            let mut f = all[i % all.len()].clone();
            // Also start from truncated and damaged frames, whose parse stopped early.
            if let Some(c) = cut {
                f.truncate(c.max(1));
            }
            if let Some((at, x)) = flip {
                let at = at % f.len();
                f[at] ^= x;
            }
            let start = start % f.len();
            let end = (start + len).min(f.len());
            let mut before = Flow::default();
            let l = extract(&f, 0, &mut before);
            let imp = write_impact(&f, &l, start, end);
            f[start..end].copy_from_slice(&bytes[..end - start]);
            let mut after = Flow::default();
            let l2 = extract(&f, 0, &mut after);
            if imp.relayout {
                return Ok(());
            }
            prop_assert_eq!(l2, l, "layout moved without relayout");
            let mut mask = imp.fields.mask();
            if imp.unnamed {
                mask.vlans[1].tci = !0;
                mask.tp_src = !0;
                mask.tp_dst = !0;
            }
            let mut d = Flow::default();
            for ((w, a), b) in d.words_mut().iter_mut().zip(before.words()).zip(after.words()) {
                *w = a ^ b;
            }
            prop_assert!(d.is_subset_of(&mask), "bytes {}..{} changed unnamed bits: {:?}\n{:?}", start, end, imp, d);
        }

        /// With the transport header parsed, whether a write moves headers is the same for
        /// every frame with that layout: longer or shorter ones, other payload bytes (what
        /// lets a compiled plan decide it once for its layout).
        #[test]
        fn relayout_with_a_parsed_transport_depends_on_the_layout_only(
            i in 0usize..12, start in 0usize..120, len in 1usize..40,
            tail in proptest::collection::vec(any::<u8>(), 0..40),
            noise in proptest::collection::vec((0usize..200, any::<u8>()), 0..8)) {
            let all = frames();
            let f = all[i % all.len()].clone();
            let l = extract(&f, 0, &mut Flow::default());
            let Some(payload) = l.l4_payload() else { return Ok(()); };
            let mut g = f.clone();
            g.extend_from_slice(&tail);
            for &(at, x) in &noise {
                let at = payload + at % (g.len() - payload).max(1);
                if at < g.len() {
                    g[at] ^= x;
                }
            }
            if extract(&g, 0, &mut Flow::default()) != l {
                return Ok(());
            }
            let end = start + len;
            prop_assert_eq!(write_impact(&f, &l, start, end).relayout,
                            write_impact(&g, &l, start, end).relayout,
                            "bytes {}..{}", start, end);
        }
    }
}
