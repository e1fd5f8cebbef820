//! The flow key: every header field a packet can be matched on, in one fixed-layout struct.
//!
//! A [`Flow`] is filled by the datapath's packet parser and read by the classifier and by
//! translation. The same struct doubles as a mask (a set bit means "this bit is significant"),
//! which is how a [`crate::Match`] and a megaflow mask are represented. The layout has no
//! padding and is a whole number of 64-bit words, so masked comparison and hashing can work
//! word by word ([`Flow::words`]).
//!
//! Integers are stored in host order (`nw_src` is the address as a number, so `10.0.0.1` is
//! `0x0a000001`); MAC and IPv6 addresses are stored as their wire bytes.

use bytemuck::{Pod, Zeroable};

/// Number of 64-bit words in a [`Flow`].
pub const FLOW_WORDS: usize = 16;

/// A stored word number (below [`FLOW_WORDS`]) as an index into [`Flow::words`], masked to
/// the word count so that indexing with it needs no bounds check.
#[inline(always)]
pub fn word_index(i: u8) -> usize {
    const _: () = assert!(FLOW_WORDS.is_power_of_two());
    debug_assert!((i as usize) < FLOW_WORDS);
    i as usize & (FLOW_WORDS - 1)
}

/// The words of a flow key that are zero unless the packet is IPv6, neighbour discovery or
/// ARP: `ipv6_src`, `ipv6_dst`, `nd_target` and `arp_sha` (with two bytes of `arp_tha`).
pub const RARE_WORDS: std::ops::Range<usize> = 7..14;
const _: () = assert!(std::mem::offset_of!(Flow, ipv6_src) == RARE_WORDS.start * 8);
const _: () = assert!(std::mem::offset_of!(Flow, arp_tha) + 2 == RARE_WORDS.end * 8);

/// Calls `f` with the index of every word outside [`RARE_WORDS`], in order: two loops of
/// constant length, which the compiler unrolls.
#[inline(always)]
pub fn for_common_words(mut f: impl FnMut(usize)) {
    for i in 0..RARE_WORDS.start {
        f(i);
    }
    for i in RARE_WORDS.end..FLOW_WORDS {
        f(i);
    }
}

/// `dl_type` of a frame without an Ethertype (802.3 with LLC), as Open vSwitch records it.
pub const DL_TYPE_NONE: u16 = 0x05ff;
/// Bit set in a VLAN TCI field when the tag is present (OpenFlow's `OFPVID_PRESENT`).
pub const VLAN_CFI: u16 = 0x1000;
/// Mask of the VLAN ID within a TCI.
pub const VLAN_VID_MASK: u16 = 0x0fff;
/// Mask of the priority code point within a TCI.
pub const VLAN_PCP_MASK: u16 = 0xe000;
/// Shift of the priority code point within a TCI.
pub const VLAN_PCP_SHIFT: u16 = 13;
/// `nw_frag` bit: the packet is an IP fragment.
pub const FRAG_ANY: u8 = 1;
/// `nw_frag` bit: the packet is a non-first IP fragment (no L4 header).
pub const FRAG_LATER: u8 = 2;
/// Maximum number of VLAN tags the flow key records.
pub const MAX_VLAN_HEADERS: usize = 2;

/// One VLAN tag as recorded in the flow key; `tci` has [`VLAN_CFI`] set when the tag exists.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug, Pod, Zeroable)]
pub struct Vlan {
    /// Tag protocol identifier (0x8100 or 0x88a8).
    pub tpid: u16,
    /// Tag control information, with [`VLAN_CFI`] set when the tag is present.
    pub tci: u16,
}

/// The flow key (also used as a mask). See the module documentation.
#[repr(C, align(8))]
#[derive(Clone, Copy, Eq, Default, Debug, Pod, Zeroable)]
pub struct Flow {
    /// OpenFlow metadata register.
    pub metadata: u64,
    /// Ingress OpenFlow port.
    pub in_port: u32,
    /// Datapath recirculation id (0 for a packet's first pass).
    pub recirc_id: u32,
    /// Ethernet destination.
    pub dl_dst: [u8; 6],
    /// Ethernet source.
    pub dl_src: [u8; 6],
    /// Ethertype after the VLAN tags (or [`DL_TYPE_NONE`]).
    pub dl_type: u16,
    /// TCP flags (low 12 bits of the TCP header's offset/flags word).
    pub tcp_flags: u16,
    /// Up to two VLAN tags, outermost first.
    pub vlans: [Vlan; MAX_VLAN_HEADERS],
    /// Outermost MPLS label stack entry: label << 12 | tc << 9 | bos << 8 | ttl.
    pub mpls_lse: u32,
    /// IPv4 source, or ARP sender protocol address.
    pub nw_src: u32,
    /// IPv4 destination, or ARP target protocol address.
    pub nw_dst: u32,
    /// IPv6 flow label (20 bits).
    pub ipv6_label: u32,
    /// IPv6 source address.
    pub ipv6_src: [u8; 16],
    /// IPv6 destination address.
    pub ipv6_dst: [u8; 16],
    /// IPv6 neighbour discovery target address.
    pub nd_target: [u8; 16],
    /// ARP sender hardware address, or ND source link-layer address.
    pub arp_sha: [u8; 6],
    /// ARP target hardware address, or ND target link-layer address.
    pub arp_tha: [u8; 6],
    /// TCP/UDP/SCTP source port, or ICMP type.
    pub tp_src: u16,
    /// TCP/UDP/SCTP destination port, or ICMP code.
    pub tp_dst: u16,
    /// IP protocol, or the low 8 bits of the ARP opcode.
    pub nw_proto: u8,
    /// IP type of service byte: DSCP << 2 | ECN.
    pub nw_tos: u8,
    /// IP TTL or IPv6 hop limit.
    pub nw_ttl: u8,
    /// Fragment bits ([`FRAG_ANY`], [`FRAG_LATER`]).
    pub nw_frag: u8,
    /// Padding to a whole number of words; always zero.
    pub pad: [u8; 4],
}

const _: () = assert!(std::mem::size_of::<Flow>() == FLOW_WORDS * 8);

/// Equal when every word is: the key has no padding (`Pod`), so this is field-by-field
/// equality, without a compare and branch per field.
impl PartialEq for Flow {
    #[inline]
    fn eq(&self, other: &Flow) -> bool {
        let d = self
            .words()
            .iter()
            .zip(other.words())
            .fold(0, |d, (a, b)| d | (a ^ b));
        d == 0
    }
}

/// Hashes the words, as [`PartialEq`] compares them.
impl std::hash::Hash for Flow {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.words().hash(state);
    }
}

impl Flow {
    /// The flow key viewed as 64-bit words, for masked comparison and hashing.
    #[inline]
    pub fn words(&self) -> &[u64; FLOW_WORDS] {
        bytemuck::cast_ref(self)
    }

    /// Mutable word view of the flow key.
    #[inline]
    pub fn words_mut(&mut self) -> &mut [u64; FLOW_WORDS] {
        bytemuck::cast_mut(self)
    }

    /// The key with every bit not set in `mask` cleared.
    #[inline]
    pub fn masked(&self, mask: &Flow) -> Flow {
        let mut out = *self;
        for (o, m) in out.words_mut().iter_mut().zip(mask.words()) {
            *o &= m;
        }
        out
    }

    /// A mask with every bit set (an exact match).
    pub fn exact_mask() -> Flow {
        let mut m = Flow::default();
        m.words_mut().iter_mut().for_each(|w| *w = !0);
        m.pad = [0; 4];
        m
    }

    /// The key's non-zero words, as a bit per word of [`Flow::words`].
    #[inline]
    pub fn nonzero_words(&self) -> u16 {
        self.words()
            .iter()
            .enumerate()
            .fold(0, |b, (i, &w)| b | (u16::from(w != 0) << i))
    }

    /// Whether no bit is set (as a mask: matches everything).
    pub fn is_zero(&self) -> bool {
        self.words().iter().all(|w| *w == 0)
    }

    /// Bitwise OR of `other` into `self` (used to accumulate un-wildcarded bits).
    #[inline]
    pub fn or_assign(&mut self, other: &Flow) {
        for (a, b) in self.words_mut().iter_mut().zip(other.words()) {
            *a |= b;
        }
    }

    /// Whether every bit set in `self` is also set in `other`.
    pub fn is_subset_of(&self, other: &Flow) -> bool {
        self.words()
            .iter()
            .zip(other.words())
            .all(|(a, b)| a & !b == 0)
    }

    /// Hash of the key's bits under `mask` (equal masked keys hash equal).
    #[inline]
    pub fn hash_masked(&self, mask: &Flow, basis: u64) -> u64 {
        let mut h = basis ^ 0x9e37_79b9_7f4a_7c15;
        for (w, m) in self.words().iter().zip(mask.words()) {
            h = hash_add(h, w & m);
        }
        hash_finish(h)
    }

    /// Hash of every bit of the key.
    #[inline]
    pub fn hash_exact(&self, basis: u64) -> u64 {
        let mut h = basis ^ 0x9e37_79b9_7f4a_7c15;
        for w in self.words() {
            h = hash_add(h, *w);
        }
        hash_finish(h)
    }

    /// Whether the outermost VLAN tag is present.
    pub fn has_vlan(&self) -> bool {
        self.vlans[0].tci & VLAN_CFI != 0
    }

    /// Whether `dl_type` is IPv4 or IPv6.
    pub fn is_ip_any(&self) -> bool {
        self.dl_type == 0x0800 || self.dl_type == 0x86dd
    }
}

/// Mixes one word into a running hash (multiply-rotate, in the spirit of Open vSwitch's hash_add64).
#[inline]
pub fn hash_add(h: u64, w: u64) -> u64 {
    (h ^ w.wrapping_mul(0x87c3_7b91_1142_53d5))
        .rotate_left(31)
        .wrapping_mul(0x4cf5_ad43_2745_937f)
}

/// Final avalanche of a running hash.
#[inline]
pub fn hash_finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differing_in_any_one_bit_are_unequal() {
        let a = Flow {
            nw_src: 0x0a00_0001,
            tp_dst: 53,
            dl_type: 0x0800,
            ..Flow::default()
        };
        assert_eq!(a, a.clone());
        for byte in 0..std::mem::size_of::<Flow>() {
            for bit in 0..8 {
                let mut b = a;
                bytemuck::bytes_of_mut(&mut b)[byte] ^= 1 << bit;
                assert_ne!(a, b, "byte {byte} bit {bit}");
                assert_ne!(b, a, "byte {byte} bit {bit}");
            }
        }
    }
}
