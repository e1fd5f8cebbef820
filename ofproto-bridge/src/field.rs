//! Match fields ("meta-flow"): each OpenFlow-visible field, its width and where it lives in a [`Flow`].
//!
//! Values and masks of any field are carried as `u128` (MACs as 48-bit numbers, IPv6 addresses
//! as 128-bit numbers, both big-endian), so that parsing, formatting, set-field actions and
//! megaflow un-wildcarding share one representation.

use crate::flow::{Flow, VLAN_CFI, VLAN_PCP_MASK, VLAN_PCP_SHIFT, VLAN_VID_MASK};
use serde::{Deserialize, Serialize};

/// A match field (OXM basic fields plus the Open vSwitch extensions the switch uses).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Field {
    /// Ingress port.
    InPort,
    /// Metadata register.
    Metadata,
    /// Ethernet destination.
    EthDst,
    /// Ethernet source.
    EthSrc,
    /// Ethertype.
    EthType,
    /// Outer VLAN TCI (Open vSwitch's `vlan_tci`, with the CFI bit meaning "present").
    VlanTci,
    /// OpenFlow 1.3 `vlan_vid`: 12-bit VID plus `OFPVID_PRESENT` (0x1000).
    VlanVid,
    /// VLAN priority.
    VlanPcp,
    /// IP DSCP (6 bits).
    IpDscp,
    /// IP ECN (2 bits).
    IpEcn,
    /// IP protocol.
    IpProto,
    /// IP TTL / hop limit.
    NwTtl,
    /// IP fragment bits.
    IpFrag,
    /// IPv4 source.
    Ipv4Src,
    /// IPv4 destination.
    Ipv4Dst,
    /// IPv6 source.
    Ipv6Src,
    /// IPv6 destination.
    Ipv6Dst,
    /// IPv6 flow label.
    Ipv6Label,
    /// TCP source port.
    TcpSrc,
    /// TCP destination port.
    TcpDst,
    /// TCP flags.
    TcpFlags,
    /// UDP source port.
    UdpSrc,
    /// UDP destination port.
    UdpDst,
    /// SCTP source port.
    SctpSrc,
    /// SCTP destination port.
    SctpDst,
    /// ICMPv4 type.
    Icmpv4Type,
    /// ICMPv4 code.
    Icmpv4Code,
    /// ICMPv6 type.
    Icmpv6Type,
    /// ICMPv6 code.
    Icmpv6Code,
    /// ARP opcode.
    ArpOp,
    /// ARP sender protocol address.
    ArpSpa,
    /// ARP target protocol address.
    ArpTpa,
    /// ARP sender hardware address.
    ArpSha,
    /// ARP target hardware address.
    ArpTha,
    /// ND target address.
    NdTarget,
    /// ND source link-layer address.
    NdSll,
    /// ND target link-layer address.
    NdTll,
    /// MPLS label.
    MplsLabel,
    /// MPLS traffic class.
    MplsTc,
    /// MPLS bottom-of-stack bit.
    MplsBos,
    /// MPLS TTL.
    MplsTtl,
}

fn mac_get(m: &[u8; 6]) -> u128 {
    m.iter().fold(0u128, |acc, b| acc << 8 | *b as u128)
}
fn mac_set(m: &mut [u8; 6], v: u128) {
    for (i, b) in m.iter_mut().enumerate() {
        *b = (v >> (8 * (5 - i))) as u8;
    }
}

impl Field {
    /// Every field, in declaration order.
    pub const ALL: &'static [Field] = &[
        Field::InPort,
        Field::Metadata,
        Field::EthDst,
        Field::EthSrc,
        Field::EthType,
        Field::VlanTci,
        Field::VlanVid,
        Field::VlanPcp,
        Field::IpDscp,
        Field::IpEcn,
        Field::IpProto,
        Field::NwTtl,
        Field::IpFrag,
        Field::Ipv4Src,
        Field::Ipv4Dst,
        Field::Ipv6Src,
        Field::Ipv6Dst,
        Field::Ipv6Label,
        Field::TcpSrc,
        Field::TcpDst,
        Field::TcpFlags,
        Field::UdpSrc,
        Field::UdpDst,
        Field::SctpSrc,
        Field::SctpDst,
        Field::Icmpv4Type,
        Field::Icmpv4Code,
        Field::Icmpv6Type,
        Field::Icmpv6Code,
        Field::ArpOp,
        Field::ArpSpa,
        Field::ArpTpa,
        Field::ArpSha,
        Field::ArpTha,
        Field::NdTarget,
        Field::NdSll,
        Field::NdTll,
        Field::MplsLabel,
        Field::MplsTc,
        Field::MplsBos,
        Field::MplsTtl,
    ];

    /// Width of the field's value in bits.
    pub fn width(self) -> u32 {
        use Field::*;
        match self {
            InPort => 32,
            Metadata => 64,
            EthDst | EthSrc | ArpSha | ArpTha | NdSll | NdTll => 48,
            EthType | VlanTci => 16,
            VlanVid => 13,
            VlanPcp | MplsTc => 3,
            IpDscp => 6,
            IpEcn | IpFrag => 2,
            IpProto | NwTtl | Icmpv4Type | Icmpv4Code | Icmpv6Type | Icmpv6Code | MplsTtl => 8,
            Ipv4Src | Ipv4Dst | ArpSpa | ArpTpa => 32,
            Ipv6Src | Ipv6Dst | NdTarget => 128,
            Ipv6Label | MplsLabel => 20,
            TcpSrc | TcpDst | UdpSrc | UdpDst | SctpSrc | SctpDst => 16,
            TcpFlags => 12,
            ArpOp => 16,
            MplsBos => 1,
        }
    }

    /// All-ones value of the field's width.
    pub fn full_mask(self) -> u128 {
        let w = self.width();
        if w == 128 {
            u128::MAX
        } else {
            (1u128 << w) - 1
        }
    }

    /// Reads the field's value out of a flow key (or mask).
    pub fn get(self, f: &Flow) -> u128 {
        use Field::*;
        match self {
            InPort => f.in_port as u128,
            Metadata => f.metadata as u128,
            EthDst => mac_get(&f.dl_dst),
            EthSrc => mac_get(&f.dl_src),
            EthType => f.dl_type as u128,
            VlanTci => f.vlans[0].tci as u128,
            VlanVid => (f.vlans[0].tci & (VLAN_VID_MASK | VLAN_CFI)) as u128,
            VlanPcp => ((f.vlans[0].tci & VLAN_PCP_MASK) >> VLAN_PCP_SHIFT) as u128,
            IpDscp => (f.nw_tos >> 2) as u128,
            IpEcn => (f.nw_tos & 3) as u128,
            IpProto => f.nw_proto as u128,
            NwTtl => f.nw_ttl as u128,
            IpFrag => f.nw_frag as u128,
            Ipv4Src | ArpSpa => f.nw_src as u128,
            Ipv4Dst | ArpTpa => f.nw_dst as u128,
            Ipv6Src => u128::from_be_bytes(f.ipv6_src),
            Ipv6Dst => u128::from_be_bytes(f.ipv6_dst),
            NdTarget => u128::from_be_bytes(f.nd_target),
            Ipv6Label => (f.ipv6_label & 0xfffff) as u128,
            TcpSrc | UdpSrc | SctpSrc | Icmpv4Type | Icmpv6Type => {
                if matches!(self, Icmpv4Type | Icmpv6Type) {
                    (f.tp_src & 0xff) as u128
                } else {
                    f.tp_src as u128
                }
            }
            TcpDst | UdpDst | SctpDst | Icmpv4Code | Icmpv6Code => {
                if matches!(self, Icmpv4Code | Icmpv6Code) {
                    (f.tp_dst & 0xff) as u128
                } else {
                    f.tp_dst as u128
                }
            }
            TcpFlags => (f.tcp_flags & 0x0fff) as u128,
            ArpOp => f.nw_proto as u128,
            ArpSha | NdSll => mac_get(&f.arp_sha),
            ArpTha | NdTll => mac_get(&f.arp_tha),
            MplsLabel => (f.mpls_lse >> 12) as u128,
            MplsTc => ((f.mpls_lse >> 9) & 7) as u128,
            MplsBos => ((f.mpls_lse >> 8) & 1) as u128,
            MplsTtl => (f.mpls_lse & 0xff) as u128,
        }
    }

    /// Writes `v` (truncated to the field's width) into a flow key (or mask).
    pub fn set(self, f: &mut Flow, v: u128) {
        use Field::*;
        let v = v & self.full_mask();
        match self {
            InPort => f.in_port = v as u32,
            Metadata => f.metadata = v as u64,
            EthDst => mac_set(&mut f.dl_dst, v),
            EthSrc => mac_set(&mut f.dl_src, v),
            EthType => f.dl_type = v as u16,
            VlanTci => f.vlans[0].tci = v as u16,
            VlanVid => {
                f.vlans[0].tci = (f.vlans[0].tci & !(VLAN_VID_MASK | VLAN_CFI)) | v as u16;
            }
            VlanPcp => {
                f.vlans[0].tci =
                    (f.vlans[0].tci & !VLAN_PCP_MASK) | ((v as u16) << VLAN_PCP_SHIFT);
            }
            IpDscp => f.nw_tos = (f.nw_tos & 3) | ((v as u8) << 2),
            IpEcn => f.nw_tos = (f.nw_tos & !3) | v as u8,
            IpProto | ArpOp => f.nw_proto = v as u8,
            NwTtl => f.nw_ttl = v as u8,
            IpFrag => f.nw_frag = v as u8,
            Ipv4Src | ArpSpa => f.nw_src = v as u32,
            Ipv4Dst | ArpTpa => f.nw_dst = v as u32,
            Ipv6Src => f.ipv6_src = v.to_be_bytes(),
            Ipv6Dst => f.ipv6_dst = v.to_be_bytes(),
            NdTarget => f.nd_target = v.to_be_bytes(),
            Ipv6Label => f.ipv6_label = v as u32,
            TcpSrc | UdpSrc | SctpSrc | Icmpv4Type | Icmpv6Type => f.tp_src = v as u16,
            TcpDst | UdpDst | SctpDst | Icmpv4Code | Icmpv6Code => f.tp_dst = v as u16,
            TcpFlags => f.tcp_flags = v as u16,
            ArpSha | NdSll => mac_set(&mut f.arp_sha, v),
            ArpTha | NdTll => mac_set(&mut f.arp_tha, v),
            MplsLabel => f.mpls_lse = (f.mpls_lse & 0xfff) | ((v as u32) << 12),
            MplsTc => f.mpls_lse = (f.mpls_lse & !(7 << 9)) | ((v as u32) << 9),
            MplsBos => f.mpls_lse = (f.mpls_lse & !(1 << 8)) | ((v as u32) << 8),
            MplsTtl => f.mpls_lse = (f.mpls_lse & !0xff) | v as u32,
        }
    }

    /// Sets the field's bits in `mask` to `m` without disturbing the others (un-wildcarding).
    pub fn or_mask(self, mask: &mut Flow, m: u128) {
        let cur = self.get(mask);
        self.set(mask, cur | m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_set_roundtrip_each_field() {
        for &field in Field::ALL {
            let mut f = Flow::default();
            let v = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128 & field.full_mask();
            field.set(&mut f, v);
            assert_eq!(field.get(&f), v, "{field:?}");
        }
    }
}
