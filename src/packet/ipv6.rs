//! IPv6 headers and the extension headers the switch skips (hop-by-hop, routing, fragment,
//! destination options, AH).

use super::{checksum, get16, get32, ip_proto, put16, put32, Error, Result};

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;

    /// Within an extension header.
    pub const EXT_NXT_HDR: usize = 0;
    pub const EXT_LEN: usize = 1;
    /// Within a fragment header.
    pub const FRAG_OFFLG: Range<usize> = 2..4;
    pub const FRAG_IDENT: Range<usize> = 4..8;
    pub const EXT_MIN_LEN: usize = 8;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = field::DST.end;
/// Byte offset of the source address.
pub const SRC_OFFSET: usize = field::SRC.start;
/// Byte offset of the destination address.
pub const DST_OFFSET: usize = field::DST.start;
/// Byte offset of the hop limit.
pub const HOP_LIMIT_OFFSET: usize = field::HOP_LIMIT;
/// Length of a fragment extension header.
pub const FRAG_HEADER_LEN: usize = 8;
/// Mask of the flow label within the first word.
pub const FLOW_LABEL_MASK: u32 = 0x000f_ffff;

/// Whether `proto` is an extension header that the switch skips to find the upper layer.
#[inline]
pub fn is_skipped_ext_header(proto: u8) -> bool {
    matches!(
        proto,
        ip_proto::HOPOPTS
            | ip_proto::ROUTING
            | ip_proto::DSTOPTS
            | ip_proto::AH
            | ip_proto::FRAGMENT
    )
}

/// A read/write view of an IPv6 header (and what follows it).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer, checking that it holds the fixed header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the 40-byte fixed header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The first 32-bit word: version, traffic class, flow label.
    pub fn ver_tc_flow(&self) -> u32 {
        get32(self.buffer.as_ref(), field::VER_TC_FLOW.start)
    }
    /// IP version (6 for a valid header).
    pub fn version(&self) -> u8 {
        (self.ver_tc_flow() >> 28) as u8
    }
    /// Traffic class (DSCP << 2 | ECN).
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }
    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & FLOW_LABEL_MASK
    }
    /// Payload length (everything after the fixed header).
    pub fn payload_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH.start)
    }
    /// Next header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }
    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }
    /// Source address.
    pub fn src_addr(&self) -> [u8; 16] {
        self.buffer.as_ref()[field::SRC]
            .try_into()
            .unwrap_or([0; 16])
    }
    /// Destination address.
    pub fn dst_addr(&self) -> [u8; 16] {
        self.buffer.as_ref()[field::DST]
            .try_into()
            .unwrap_or([0; 16])
    }
    /// The payload, bounded by the payload length (padding excluded).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = (HEADER_LEN + self.payload_len() as usize).min(b.len());
        &b[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the first word (version, traffic class, flow label).
    pub fn set_ver_tc_flow(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::VER_TC_FLOW.start, v)
    }
    /// Sets the traffic class, keeping version and flow label.
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = self.ver_tc_flow() & !0x0ff0_0000 | (tc as u32) << 20;
        self.set_ver_tc_flow(w)
    }
    /// Sets the flow label, keeping version and traffic class.
    pub fn set_flow_label(&mut self, l: u32) {
        let w = self.ver_tc_flow() & !FLOW_LABEL_MASK | (l & FLOW_LABEL_MASK);
        self.set_ver_tc_flow(w)
    }
    /// Sets the payload length.
    pub fn set_payload_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH.start, v)
    }
    /// Sets the next header.
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = v
    }
    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v
    }
    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a)
    }
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a)
    }
}

/// A parsed IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Repr {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Next header.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Payload length (extension headers included).
    pub payload_len: u16,
}

impl Repr {
    /// Parses the fixed header: version 6 and a payload length that fits the buffer.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        if p.version() != 6 {
            return Err(Error::Malformed);
        }
        if HEADER_LEN + p.payload_len() as usize > p.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            next_header: p.next_header(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
            payload_len: p.payload_len(),
        })
    }

    /// Length of the fixed header.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_ver_tc_flow(
            6 << 28 | (self.traffic_class as u32) << 20 | self.flow_label & FLOW_LABEL_MASK,
        );
        p.set_payload_len(self.payload_len);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
    }

    /// Unfolded pseudo-header sum for an upper-layer packet of `len` bytes with protocol `proto`.
    pub fn pseudo_sum(&self, proto: u8, len: u32) -> u32 {
        checksum::pseudo_v6(&self.src, &self.dst, proto, len)
    }
}

/// A read/write view of one extension header (hop-by-hop, routing, destination options, AH
/// or fragment); `kind` is the protocol number that announced it.
#[derive(Debug, Clone)]
pub struct ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
    kind: u8,
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T, kind: u8) -> ExtHeader<T> {
        ExtHeader { buffer, kind }
    }

    /// Wraps a buffer, checking that it holds the whole extension header.
    pub fn new_checked(buffer: T, kind: u8) -> Result<ExtHeader<T>> {
        let h = Self::new_unchecked(buffer, kind);
        h.check_len()?;
        Ok(h)
    }

    /// Checks the minimum of 8 bytes and the announced length.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if !is_skipped_ext_header(self.kind) {
            return Err(Error::Unsupported);
        }
        if len < field::EXT_MIN_LEN || len < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The protocol number of this header.
    pub fn kind(&self) -> u8 {
        self.kind
    }
    /// The header that follows.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::EXT_NXT_HDR]
    }
    /// Length of this header in bytes (per its kind's length rule).
    pub fn header_len(&self) -> usize {
        let l = self.buffer.as_ref()[field::EXT_LEN] as usize;
        match self.kind {
            ip_proto::FRAGMENT => FRAG_HEADER_LEN,
            ip_proto::AH => (l + 2) * 4,
            _ => (l + 1) * 8,
        }
    }
    /// For a fragment header: the offset/flags word (offset << 3 | M).
    pub fn frag_offlg(&self) -> u16 {
        get16(self.buffer.as_ref(), field::FRAG_OFFLG.start)
    }
    /// For a fragment header: the identification.
    pub fn frag_ident(&self) -> u32 {
        get32(self.buffer.as_ref(), field::FRAG_IDENT.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ExtHeader<T> {
    /// Sets the next header.
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::EXT_NXT_HDR] = v
    }
    /// Sets the raw length byte.
    pub fn set_len_byte(&mut self, v: u8) {
        self.buffer.as_mut()[field::EXT_LEN] = v
    }
    /// For a fragment header: sets the offset/flags word.
    pub fn set_frag_offlg(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::FRAG_OFFLG.start, v)
    }
    /// For a fragment header: sets the identification.
    pub fn set_frag_ident(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::FRAG_IDENT.start, v)
    }
}

/// A parsed extension header. Option contents are not represented: options headers are
/// emitted as Pad1 options, which is valid and what the switch needs to skip them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtRepr {
    /// Hop-by-hop, routing or destination options (or AH) of a given total length.
    Generic {
        /// Protocol number of this header.
        kind: u8,
        /// The header that follows.
        next_header: u8,
        /// Total length in bytes (a multiple of 8; of 4 for AH, at least 8 or 12).
        len: usize,
    },
    /// A fragment header.
    Fragment {
        /// The header that follows.
        next_header: u8,
        /// Fragment offset in units of 8 bytes.
        offset: u16,
        /// "More fragments" flag.
        more: bool,
        /// Identification.
        ident: u32,
    },
}

impl ExtRepr {
    /// Parses an extension header view.
    pub fn parse<T: AsRef<[u8]>>(h: &ExtHeader<T>) -> Result<ExtRepr> {
        h.check_len()?;
        Ok(match h.kind() {
            ip_proto::FRAGMENT => ExtRepr::Fragment {
                next_header: h.next_header(),
                offset: h.frag_offlg() >> 3,
                more: h.frag_offlg() & 1 != 0,
                ident: h.frag_ident(),
            },
            kind => ExtRepr::Generic {
                kind,
                next_header: h.next_header(),
                len: h.header_len(),
            },
        })
    }

    /// Protocol number of this header.
    pub fn kind(&self) -> u8 {
        match self {
            ExtRepr::Generic { kind, .. } => *kind,
            ExtRepr::Fragment { .. } => ip_proto::FRAGMENT,
        }
    }

    /// Length in bytes.
    pub fn buffer_len(&self) -> usize {
        match self {
            ExtRepr::Generic { len, .. } => *len,
            ExtRepr::Fragment { .. } => FRAG_HEADER_LEN,
        }
    }

    /// Writes the header into `b` (at least `buffer_len()` bytes); the body is zero (Pad1).
    pub fn emit(&self, b: &mut [u8]) {
        let n = self.buffer_len();
        b[..n].fill(0);
        let mut h = ExtHeader::new_unchecked(&mut b[..n], self.kind());
        match *self {
            ExtRepr::Generic {
                kind,
                next_header,
                len,
            } => {
                h.set_next_header(next_header);
                let l = if kind == ip_proto::AH {
                    len / 4 - 2
                } else {
                    len / 8 - 1
                };
                h.set_len_byte(l as u8);
            }
            ExtRepr::Fragment {
                next_header,
                offset,
                more,
                ident,
            } => {
                h.set_next_header(next_header);
                h.set_frag_offlg(offset << 3 | more as u16);
                h.set_frag_ident(ident);
            }
        }
    }
}

/// Where the upper layer starts after skipping extension headers, as Open vSwitch decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtWalk {
    /// Upper-layer protocol ([`ip_proto::FRAGMENT`] for a non-first fragment).
    pub proto: u8,
    /// Offset of the upper layer within the walked bytes.
    pub offset: usize,
    /// Fragment bits (`FRAG_ANY`, `FRAG_LATER` of the flow key).
    pub frag: u8,
}

/// Skips extension headers in `b` (the IPv6 payload), starting with protocol `first`.
///
/// Stops at the first protocol that is not a skipped extension header, or at a fragment
/// header of a non-first fragment (reported with protocol 44 and the "later" bit). Returns
/// `Err(Truncated)` when an extension header does not fit, which Open vSwitch treats as "no
/// network-layer fields".
pub fn walk_ext_headers(b: &[u8], first: u8) -> Result<ExtWalk> {
    use ofproto_bridge::flow::{FRAG_ANY, FRAG_LATER};
    let mut w = ExtWalk {
        proto: first,
        offset: 0,
        frag: 0,
    };
    while is_skipped_ext_header(w.proto) {
        let rest = &b[w.offset..];
        let h = ExtHeader::new_checked(rest, w.proto)?;
        w.proto = h.next_header();
        if h.kind() == ip_proto::FRAGMENT {
            let offlg = h.frag_offlg();
            w.offset += FRAG_HEADER_LEN;
            if offlg != 0 {
                w.frag = FRAG_ANY;
                if offlg & 0xfff8 != 0 {
                    w.frag |= FRAG_LATER;
                    w.proto = ip_proto::FRAGMENT;
                    return Ok(w);
                }
            }
        } else {
            w.offset += h.header_len();
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn walk_chain() {
        // hop-by-hop (8) -> dest opts (16) -> fragment (first) -> TCP
        let mut b = vec![0u8; 8 + 16 + 8 + 20];
        ExtRepr::Generic {
            kind: 0,
            next_header: 60,
            len: 8,
        }
        .emit(&mut b[0..]);
        ExtRepr::Generic {
            kind: 60,
            next_header: 44,
            len: 16,
        }
        .emit(&mut b[8..]);
        ExtRepr::Fragment {
            next_header: 6,
            offset: 0,
            more: true,
            ident: 7,
        }
        .emit(&mut b[24..]);
        let w = walk_ext_headers(&b, 0).unwrap();
        assert_eq!(
            w,
            ExtWalk {
                proto: 6,
                offset: 32,
                frag: 1
            }
        );
        // A later fragment stops the walk.
        ExtRepr::Fragment {
            next_header: 6,
            offset: 3,
            more: false,
            ident: 7,
        }
        .emit(&mut b[24..]);
        assert_eq!(
            walk_ext_headers(&b, 0).unwrap(),
            ExtWalk {
                proto: 44,
                offset: 32,
                frag: 3
            }
        );
        // A truncated chain is an error.
        assert_eq!(walk_ext_headers(&b[..20], 0), Err(Error::Truncated));
    }

    #[test]
    fn ah_length_rule() {
        let mut b = [0u8; 12];
        ExtRepr::Generic {
            kind: 51,
            next_header: 17,
            len: 12,
        }
        .emit(&mut b);
        assert_eq!(b[1], 1);
        assert_eq!(walk_ext_headers(&b, 51).unwrap().offset, 12);
    }

    proptest! {
        #[test]
        fn roundtrip(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), next_header in any::<u8>(),
                     hop_limit in any::<u8>(), traffic_class in any::<u8>(),
                     flow_label in 0u32..0x10_0000, payload_len in 0u16..64) {
            let r = Repr { src, dst, next_header, hop_limit, traffic_class, flow_label, payload_len };
            let mut b = vec![0u8; HEADER_LEN + payload_len as usize];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn ext_roundtrip(next_header in any::<u8>(), units in 1usize..8, kind_i in 0usize..5,
                         offset in 0u16..0x2000, more in any::<bool>(), ident in any::<u32>()) {
            let kinds = [0u8, 43, 60, 51, 44];
            let kind = kinds[kind_i];
            let r = match kind {
                44 => ExtRepr::Fragment { next_header, offset, more, ident },
                51 => ExtRepr::Generic { kind, next_header, len: (units + 2) * 4 },
                _ => ExtRepr::Generic { kind, next_header, len: units * 8 },
            };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut b);
            prop_assert_eq!(ExtRepr::parse(&ExtHeader::new_checked(&b[..], kind).unwrap()).unwrap(), r);
        }
    }
}
