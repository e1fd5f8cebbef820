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
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]]).into()
}
fn mac_set(m: &mut [u8; 6], v: u128) {
    m.copy_from_slice(&(v as u64).to_be_bytes()[2..]);
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
            // OpenFlow's arp_op is 16 bits, but the flow key keeps only opcodes up to 255
            // (in nw_proto), as Open vSwitch does.
            ArpOp => 8,
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
                f.vlans[0].tci = (f.vlans[0].tci & !VLAN_PCP_MASK) | ((v as u16) << VLAN_PCP_SHIFT);
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

    /// The words of a [`Flow`] the field's bits lie in, as a bit per word of
    /// [`Flow::words`] (as [`Flow::nonzero_words`] counts them).
    pub const fn flow_words(self) -> u16 {
        use std::mem::offset_of;
        use Field::*;
        /// The words holding bytes `at..at + len` of a key.
        const fn span(at: usize, len: usize) -> u16 {
            let (first, last) = (at / 8, (at + len - 1) / 8);
            ((1u32 << (last + 1)) - (1u32 << first)) as u16
        }
        const TCI: usize = offset_of!(Flow, vlans) + offset_of!(crate::flow::Vlan, tci);
        match self {
            InPort => span(offset_of!(Flow, in_port), 4),
            Metadata => span(offset_of!(Flow, metadata), 8),
            EthDst => span(offset_of!(Flow, dl_dst), 6),
            EthSrc => span(offset_of!(Flow, dl_src), 6),
            EthType => span(offset_of!(Flow, dl_type), 2),
            VlanTci | VlanVid | VlanPcp => span(TCI, 2),
            IpDscp | IpEcn => span(offset_of!(Flow, nw_tos), 1),
            IpProto | ArpOp => span(offset_of!(Flow, nw_proto), 1),
            NwTtl => span(offset_of!(Flow, nw_ttl), 1),
            IpFrag => span(offset_of!(Flow, nw_frag), 1),
            Ipv4Src | ArpSpa => span(offset_of!(Flow, nw_src), 4),
            Ipv4Dst | ArpTpa => span(offset_of!(Flow, nw_dst), 4),
            Ipv6Src => span(offset_of!(Flow, ipv6_src), 16),
            Ipv6Dst => span(offset_of!(Flow, ipv6_dst), 16),
            NdTarget => span(offset_of!(Flow, nd_target), 16),
            Ipv6Label => span(offset_of!(Flow, ipv6_label), 4),
            TcpSrc | UdpSrc | SctpSrc | Icmpv4Type | Icmpv6Type => {
                span(offset_of!(Flow, tp_src), 2)
            }
            TcpDst | UdpDst | SctpDst | Icmpv4Code | Icmpv6Code => {
                span(offset_of!(Flow, tp_dst), 2)
            }
            TcpFlags => span(offset_of!(Flow, tcp_flags), 2),
            ArpSha | NdSll => span(offset_of!(Flow, arp_sha), 6),
            ArpTha | NdTll => span(offset_of!(Flow, arp_tha), 6),
            MplsLabel | MplsTc | MplsBos | MplsTtl => span(offset_of!(Flow, mpls_lse), 4),
        }
    }

    /// Sets the field's bits in `mask` to `m` without disturbing the others (un-wildcarding).
    pub fn or_mask(self, mask: &mut Flow, m: u128) {
        let cur = self.get(mask);
        self.set(mask, cur | m);
    }
}

/// How a field's value is written in ovs-ofctl syntax (Open vSwitch's `mf_string`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FieldFormat {
    /// A decimal number (hexadecimal accepted on input).
    Decimal,
    /// A hexadecimal number with `0x` (decimal accepted on input).
    Hex,
    /// An Ethernet address, `xx:xx:xx:xx:xx:xx`.
    Ethernet,
    /// A dotted-quad IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// An OpenFlow port number or reserved port name.
    Port,
    /// TCP flags by name (`syn|ack`, `+syn-ack`).
    TcpFlags,
    /// Fragment classes (`no`, `yes`, `first`, `later`, `not_later`).
    Frag,
}

/// What a packet must be for a field to be meaningful (Open vSwitch's `mf_prereqs`).
///
/// A match on a field is only accepted when the rest of the match guarantees the
/// prerequisite; a set-field action only when the match (as modified by earlier
/// actions) does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Prerequisite {
    /// Meaningful for every packet.
    None,
    /// An 802.1Q tag is present (`vlan_tci` has the CFI bit set).
    Vlan,
    /// MPLS (`dl_type` 0x8847 or 0x8848).
    Mpls,
    /// IPv4 (`dl_type=0x0800`).
    Ipv4,
    /// IPv6 (`dl_type=0x86dd`).
    Ipv6,
    /// IPv4 or IPv6.
    IpAny,
    /// ARP or RARP (`dl_type` 0x0806 or 0x8035).
    Arp,
    /// TCP over IPv4 or IPv6 (`nw_proto=6`).
    Tcp,
    /// UDP over IPv4 or IPv6 (`nw_proto=17`).
    Udp,
    /// SCTP over IPv4 or IPv6 (`nw_proto=132`).
    Sctp,
    /// ICMPv4 (`dl_type=0x0800,nw_proto=1`).
    Icmpv4,
    /// ICMPv6 (`dl_type=0x86dd,nw_proto=58`).
    Icmpv6,
    /// ICMPv6 neighbour solicitation or advertisement (`icmp_type` 135 or 136).
    Nd,
    /// ICMPv6 neighbour solicitation (`icmp_type=135`).
    NdSolicit,
    /// ICMPv6 neighbour advertisement (`icmp_type=136`).
    NdAdvert,
}

impl Prerequisite {
    /// Whether a match whose significant bits are `flow` under `mask` guarantees the prerequisite.
    ///
    /// `flow` must already be masked (bits outside `mask` zero), as in a [`crate::Match`].
    pub fn is_met(self, flow: &Flow, mask: &Flow) -> bool {
        let dl_type = if mask.dl_type == 0xffff {
            flow.dl_type
        } else {
            0
        };
        let ip_any = dl_type == 0x0800 || dl_type == 0x86dd;
        let proto = if mask.nw_proto == 0xff {
            Some(flow.nw_proto)
        } else {
            None
        };
        let icmp6_type = if mask.tp_src & 0xff == 0xff {
            Some(flow.tp_src & 0xff)
        } else {
            None
        };
        // Neighbour discovery messages have ICMP code 0 (Open vSwitch's `is_nd`); an
        // unmatched code is 0 in a masked flow and so does not rule ND out.
        let nd_code = flow.tp_dst == 0;
        match self {
            Prerequisite::None => true,
            Prerequisite::Vlan => {
                mask.vlans[0].tci & VLAN_CFI != 0 && flow.vlans[0].tci & VLAN_CFI != 0
            }
            Prerequisite::Mpls => dl_type == 0x8847 || dl_type == 0x8848,
            Prerequisite::Ipv4 => dl_type == 0x0800,
            Prerequisite::Ipv6 => dl_type == 0x86dd,
            Prerequisite::IpAny => ip_any,
            Prerequisite::Arp => dl_type == 0x0806 || dl_type == 0x8035,
            Prerequisite::Tcp => ip_any && proto == Some(6),
            Prerequisite::Udp => ip_any && proto == Some(17),
            Prerequisite::Sctp => ip_any && proto == Some(132),
            Prerequisite::Icmpv4 => dl_type == 0x0800 && proto == Some(1),
            Prerequisite::Icmpv6 => dl_type == 0x86dd && proto == Some(58),
            Prerequisite::Nd => {
                Prerequisite::Icmpv6.is_met(flow, mask)
                    && nd_code
                    && matches!(icmp6_type, Some(135 | 136))
            }
            Prerequisite::NdSolicit => {
                Prerequisite::Icmpv6.is_met(flow, mask) && nd_code && icmp6_type == Some(135)
            }
            Prerequisite::NdAdvert => {
                Prerequisite::Icmpv6.is_met(flow, mask) && nd_code && icmp6_type == Some(136)
            }
        }
    }

    /// The prerequisite in ovs-ofctl words, for error messages (e.g. "tcp (nw_proto=6)").
    pub fn describe(self) -> &'static str {
        match self {
            Prerequisite::None => "nothing",
            Prerequisite::Vlan => {
                "a VLAN tag (dl_vlan, vlan_vid with 0x1000, or vlan_tci with 0x1000)"
            }
            Prerequisite::Mpls => "mpls or mplsm (dl_type=0x8847 or 0x8848)",
            Prerequisite::Ipv4 => "ip (dl_type=0x0800)",
            Prerequisite::Ipv6 => "ipv6 (dl_type=0x86dd)",
            Prerequisite::IpAny => "ip or ipv6 (dl_type=0x0800 or 0x86dd)",
            Prerequisite::Arp => "arp or rarp (dl_type=0x0806 or 0x8035)",
            Prerequisite::Tcp => "tcp or tcp6 (nw_proto=6)",
            Prerequisite::Udp => "udp or udp6 (nw_proto=17)",
            Prerequisite::Sctp => "sctp or sctp6 (nw_proto=132)",
            Prerequisite::Icmpv4 => "icmp (dl_type=0x0800,nw_proto=1)",
            Prerequisite::Icmpv6 => "icmp6 (dl_type=0x86dd,nw_proto=58)",
            Prerequisite::Nd => {
                "icmp6 with icmp_type=135 or icmp_type=136 and icmp_code=0 (neighbour discovery)"
            }
            Prerequisite::NdSolicit => {
                "icmp6 with icmp_type=135 and icmp_code=0 (neighbour solicitation)"
            }
            Prerequisite::NdAdvert => {
                "icmp6 with icmp_type=136 and icmp_code=0 (neighbour advertisement)"
            }
        }
    }
}

impl Field {
    /// The name Open vSwitch prints for the field (in `set_field:V->NAME`, for example).
    pub fn name(self) -> &'static str {
        use Field::*;
        match self {
            InPort => "in_port",
            Metadata => "metadata",
            EthDst => "eth_dst",
            EthSrc => "eth_src",
            EthType => "eth_type",
            VlanTci => "vlan_tci",
            VlanVid => "vlan_vid",
            VlanPcp => "vlan_pcp",
            IpDscp => "ip_dscp",
            IpEcn => "nw_ecn",
            IpProto => "nw_proto",
            NwTtl => "nw_ttl",
            IpFrag => "ip_frag",
            Ipv4Src => "ip_src",
            Ipv4Dst => "ip_dst",
            Ipv6Src => "ipv6_src",
            Ipv6Dst => "ipv6_dst",
            Ipv6Label => "ipv6_label",
            TcpSrc => "tcp_src",
            TcpDst => "tcp_dst",
            TcpFlags => "tcp_flags",
            UdpSrc => "udp_src",
            UdpDst => "udp_dst",
            SctpSrc => "sctp_src",
            SctpDst => "sctp_dst",
            Icmpv4Type => "icmp_type",
            Icmpv4Code => "icmp_code",
            Icmpv6Type => "icmpv6_type",
            Icmpv6Code => "icmpv6_code",
            ArpOp => "arp_op",
            ArpSpa => "arp_spa",
            ArpTpa => "arp_tpa",
            ArpSha => "arp_sha",
            ArpTha => "arp_tha",
            NdTarget => "nd_target",
            NdSll => "nd_sll",
            NdTll => "nd_tll",
            MplsLabel => "mpls_label",
            MplsTc => "mpls_tc",
            MplsBos => "mpls_bos",
            MplsTtl => "mpls_ttl",
        }
    }

    /// Other names accepted for the field when parsing (Open vSwitch's "aka" names, plus
    /// `ipv4_src`/`ipv4_dst`/`icmpv4_type`/`icmpv4_code` spelled the OXM way).
    ///
    /// The protocol-generic names `tp_src`, `tp_dst`, `icmp_type` (for ICMPv6) and the
    /// OpenFlow 1.0 VLAN names are not aliases of one field; the flow parser resolves them.
    pub fn aliases(self) -> &'static [&'static str] {
        use Field::*;
        match self {
            EthDst => &["dl_dst"],
            EthSrc => &["dl_src"],
            EthType => &["dl_type"],
            IpEcn => &["ip_ecn"],
            IpProto => &["ip_proto"],
            IpFrag => &["nw_frag"],
            Ipv4Src => &["nw_src", "ipv4_src"],
            Ipv4Dst => &["nw_dst", "ipv4_dst"],
            Icmpv4Type => &["icmpv4_type"],
            Icmpv4Code => &["icmpv4_code"],
            _ => &[],
        }
    }

    /// Looks a field up by its name or one of its [`aliases`](Field::aliases).
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL
            .iter()
            .copied()
            .find(|f| f.name() == name || f.aliases().contains(&name))
    }

    /// How the field's values are written.
    pub fn format(self) -> FieldFormat {
        use Field::*;
        match self {
            InPort => FieldFormat::Port,
            Metadata | EthType | VlanTci | Ipv6Label => FieldFormat::Hex,
            EthDst | EthSrc | ArpSha | ArpTha | NdSll | NdTll => FieldFormat::Ethernet,
            Ipv4Src | Ipv4Dst | ArpSpa | ArpTpa => FieldFormat::Ipv4,
            Ipv6Src | Ipv6Dst | NdTarget => FieldFormat::Ipv6,
            TcpFlags => FieldFormat::TcpFlags,
            IpFrag => FieldFormat::Frag,
            _ => FieldFormat::Decimal,
        }
    }

    /// Whether a match may give the field an arbitrary bitwise mask (otherwise only exact).
    pub fn maskable(self) -> bool {
        use Field::*;
        matches!(
            self,
            Metadata
                | EthDst
                | EthSrc
                | VlanTci
                | VlanVid
                | IpFrag
                | Ipv4Src
                | Ipv4Dst
                | Ipv6Src
                | Ipv6Dst
                | Ipv6Label
                | TcpSrc
                | TcpDst
                | TcpFlags
                | UdpSrc
                | UdpDst
                | SctpSrc
                | SctpDst
                | ArpSpa
                | ArpTpa
                | ArpSha
                | ArpTha
                | NdTarget
                | NdSll
                | NdTll
        )
    }

    /// Whether actions may write the field (`set_field`, `load`); some fields are read-only.
    pub fn writable(self) -> bool {
        use Field::*;
        !matches!(self, EthType | IpProto | IpFrag | TcpFlags | MplsBos)
    }

    /// What the packet must be for the field to exist.
    pub fn prerequisite(self) -> Prerequisite {
        use Field::*;
        match self {
            InPort | Metadata | EthDst | EthSrc | EthType | VlanTci | VlanVid => Prerequisite::None,
            VlanPcp => Prerequisite::Vlan,
            IpDscp | IpEcn | IpProto | NwTtl | IpFrag => Prerequisite::IpAny,
            Ipv4Src | Ipv4Dst => Prerequisite::Ipv4,
            Ipv6Src | Ipv6Dst | Ipv6Label => Prerequisite::Ipv6,
            TcpSrc | TcpDst | TcpFlags => Prerequisite::Tcp,
            UdpSrc | UdpDst => Prerequisite::Udp,
            SctpSrc | SctpDst => Prerequisite::Sctp,
            Icmpv4Type | Icmpv4Code => Prerequisite::Icmpv4,
            Icmpv6Type | Icmpv6Code => Prerequisite::Icmpv6,
            ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => Prerequisite::Arp,
            NdTarget => Prerequisite::Nd,
            NdSll => Prerequisite::NdSolicit,
            NdTll => Prerequisite::NdAdvert,
            MplsLabel | MplsTc | MplsBos | MplsTtl => Prerequisite::Mpls,
        }
    }

    /// The NXM or OXM header name Open vSwitch uses for the field in `load:V->NAME[..]`
    /// (the NXM name when the field has one, as Open vSwitch prefers it).
    pub fn nxm_name(self) -> &'static str {
        use Field::*;
        match self {
            InPort => "OXM_OF_IN_PORT",
            Metadata => "OXM_OF_METADATA",
            EthDst => "NXM_OF_ETH_DST",
            EthSrc => "NXM_OF_ETH_SRC",
            EthType => "NXM_OF_ETH_TYPE",
            VlanTci => "NXM_OF_VLAN_TCI",
            VlanVid => "OXM_OF_VLAN_VID",
            VlanPcp => "OXM_OF_VLAN_PCP",
            IpDscp => "OXM_OF_IP_DSCP",
            IpEcn => "NXM_NX_IP_ECN",
            IpProto => "NXM_OF_IP_PROTO",
            NwTtl => "NXM_NX_IP_TTL",
            IpFrag => "NXM_NX_IP_FRAG",
            Ipv4Src => "NXM_OF_IP_SRC",
            Ipv4Dst => "NXM_OF_IP_DST",
            Ipv6Src => "NXM_NX_IPV6_SRC",
            Ipv6Dst => "NXM_NX_IPV6_DST",
            Ipv6Label => "NXM_NX_IPV6_LABEL",
            TcpSrc => "NXM_OF_TCP_SRC",
            TcpDst => "NXM_OF_TCP_DST",
            TcpFlags => "NXM_NX_TCP_FLAGS",
            UdpSrc => "NXM_OF_UDP_SRC",
            UdpDst => "NXM_OF_UDP_DST",
            SctpSrc => "OXM_OF_SCTP_SRC",
            SctpDst => "OXM_OF_SCTP_DST",
            Icmpv4Type => "NXM_OF_ICMP_TYPE",
            Icmpv4Code => "NXM_OF_ICMP_CODE",
            Icmpv6Type => "NXM_NX_ICMPV6_TYPE",
            Icmpv6Code => "NXM_NX_ICMPV6_CODE",
            ArpOp => "NXM_OF_ARP_OP",
            ArpSpa => "NXM_OF_ARP_SPA",
            ArpTpa => "NXM_OF_ARP_TPA",
            ArpSha => "NXM_NX_ARP_SHA",
            ArpTha => "NXM_NX_ARP_THA",
            NdTarget => "NXM_NX_ND_TARGET",
            NdSll => "NXM_NX_ND_SLL",
            NdTll => "NXM_NX_ND_TLL",
            MplsLabel => "OXM_OF_MPLS_LABEL",
            MplsTc => "OXM_OF_MPLS_TC",
            MplsBos => "OXM_OF_MPLS_BOS",
            MplsTtl => "NXM_NX_MPLS_TTL",
        }
    }

    /// Looks a field up by its NXM or OXM header name (as written in `load:V->NAME[..]`).
    pub fn from_nxm_name(name: &str) -> Option<Field> {
        let alt = |f: Field| -> Option<&'static str> {
            use Field::*;
            Some(match f {
                EthDst => "OXM_OF_ETH_DST",
                EthSrc => "OXM_OF_ETH_SRC",
                EthType => "OXM_OF_ETH_TYPE",
                IpEcn => "OXM_OF_IP_ECN",
                IpProto => "OXM_OF_IP_PROTO",
                Ipv4Src => "OXM_OF_IPV4_SRC",
                Ipv4Dst => "OXM_OF_IPV4_DST",
                Ipv6Src => "OXM_OF_IPV6_SRC",
                Ipv6Dst => "OXM_OF_IPV6_DST",
                Ipv6Label => "OXM_OF_IPV6_FLABEL",
                TcpSrc => "OXM_OF_TCP_SRC",
                TcpDst => "OXM_OF_TCP_DST",
                UdpSrc => "OXM_OF_UDP_SRC",
                UdpDst => "OXM_OF_UDP_DST",
                Icmpv4Type => "OXM_OF_ICMPV4_TYPE",
                Icmpv4Code => "OXM_OF_ICMPV4_CODE",
                Icmpv6Type => "OXM_OF_ICMPV6_TYPE",
                Icmpv6Code => "OXM_OF_ICMPV6_CODE",
                ArpOp => "OXM_OF_ARP_OP",
                ArpSpa => "OXM_OF_ARP_SPA",
                ArpTpa => "OXM_OF_ARP_TPA",
                ArpSha => "OXM_OF_ARP_SHA",
                ArpTha => "OXM_OF_ARP_THA",
                NdTarget => "OXM_OF_IPV6_ND_TARGET",
                NdSll => "OXM_OF_IPV6_ND_SLL",
                NdTll => "OXM_OF_IPV6_ND_TLL",
                _ => return None,
            })
        };
        Field::ALL
            .iter()
            .copied()
            .find(|f| f.nxm_name() == name || alt(*f) == Some(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_words_name_the_words_a_field_lies_in() {
        // dl_src straddles words 2 and 3; the TTL is in the last word; IPv6 sources in 7-8.
        assert_eq!(Field::EthSrc.flow_words(), 0b1100);
        assert_eq!(Field::NwTtl.flow_words(), 1 << 15);
        assert_eq!(Field::Ipv6Src.flow_words(), 0b1_1000_0000);
        // Every bit a field sets is in one of its words, and no other word is touched.
        for f in Field::ALL {
            let mut k = Flow::default();
            f.set(&mut k, f.full_mask());
            assert_eq!(k.nonzero_words(), f.flow_words(), "{f:?}");
            assert_eq!(f.get(&k), f.full_mask(), "{f:?} reads back what it wrote");
        }
    }

    #[test]
    fn get_set_roundtrip_each_field() {
        for &field in Field::ALL {
            let mut f = Flow::default();
            let v = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128 & field.full_mask();
            field.set(&mut f, v);
            assert_eq!(field.get(&f), v, "{field:?}");
        }
    }

    #[test]
    fn names_and_aliases_resolve_back() {
        for &field in Field::ALL {
            assert_eq!(Field::from_name(field.name()), Some(field), "{field:?}");
            for alias in field.aliases() {
                assert_eq!(Field::from_name(alias), Some(field), "{alias}");
            }
            assert_eq!(
                Field::from_nxm_name(field.nxm_name()),
                Some(field),
                "{field:?}"
            );
        }
        assert_eq!(Field::from_name("dl_src"), Some(Field::EthSrc));
        assert_eq!(Field::from_name("nw_dst"), Some(Field::Ipv4Dst));
        assert_eq!(Field::from_name("no_such_field"), None);
    }

    #[test]
    fn prerequisites_follow_the_match() {
        let mut flow = Flow::default();
        let mut mask = Flow::default();
        assert!(!Prerequisite::Tcp.is_met(&flow, &mask));
        Field::EthType.set(&mut flow, 0x0800);
        Field::EthType.set(&mut mask, 0xffff);
        assert!(Prerequisite::Ipv4.is_met(&flow, &mask));
        assert!(!Prerequisite::Tcp.is_met(&flow, &mask));
        Field::IpProto.set(&mut flow, 6);
        Field::IpProto.set(&mut mask, 0xff);
        assert!(Prerequisite::Tcp.is_met(&flow, &mask));
        assert!(!Prerequisite::Udp.is_met(&flow, &mask));
        assert!(!Prerequisite::Icmpv6.is_met(&flow, &mask));
        // A value without its mask does not count.
        mask.nw_proto = 0;
        assert!(!Prerequisite::Tcp.is_met(&flow, &mask));
    }
}
