//! IPv4 headers, with options.

use super::{checksum, get16, get32, put16, put32, Error, Result};

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::DST.end;
/// Longest IPv4 options area.
pub const MAX_OPTIONS_LEN: usize = 40;
/// Byte offset of the TTL field (exported for incremental checksum users).
pub const TTL_OFFSET: usize = field::TTL;
/// Byte offset of the header checksum field.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;
/// Byte offset of the source address.
pub const SRC_OFFSET: usize = field::SRC.start;
/// Byte offset of the destination address.
pub const DST_OFFSET: usize = field::DST.start;
/// Byte offset of the type-of-service byte.
pub const TOS_OFFSET: usize = field::TOS;

/// "More fragments" flag within the flags/offset word.
pub const FLAG_MF: u16 = 0x2000;
/// "Don't fragment" flag within the flags/offset word.
pub const FLAG_DF: u16 = 0x4000;
/// Fragment offset mask within the flags/offset word.
pub const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 header (and what follows it).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer, checking that it holds the whole header including options.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the fixed header, that the IHL is at least 5, and that
    /// the buffer holds the options the IHL announces. The total length is not checked here
    /// (see [`Packet::check_total_len`]).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len() as usize;
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < hl {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Checks that the total length covers the header and fits in the buffer.
    pub fn check_total_len(&self) -> Result<()> {
        let tl = self.total_len() as usize;
        if tl < self.header_len() as usize {
            return Err(Error::Malformed);
        }
        if tl > self.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// IP version (4 for a valid header).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    /// Type-of-service byte (DSCP << 2 | ECN).
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }
    /// Total length (header and payload).
    pub fn total_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH.start)
    }
    /// Identification.
    pub fn ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::IDENT.start)
    }
    /// The raw flags and fragment-offset word.
    pub fn flags_frag(&self) -> u16 {
        get16(self.buffer.as_ref(), field::FLG_OFF.start)
    }
    /// "Don't fragment" flag.
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }
    /// "More fragments" flag.
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }
    /// Fragment offset in units of 8 bytes.
    pub fn frag_offset(&self) -> u16 {
        self.flags_frag() & FRAG_OFFSET_MASK
    }
    /// Whether the packet is a fragment (MF set or non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    /// Protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }
    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    /// Source address as a host-order number.
    pub fn src_addr(&self) -> u32 {
        get32(self.buffer.as_ref(), field::SRC.start)
    }
    /// Destination address as a host-order number.
    pub fn dst_addr(&self) -> u32 {
        get32(self.buffer.as_ref(), field::DST.start)
    }
    /// The options bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len() as usize]
    }
    /// Whether the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(
            &self.buffer.as_ref()[..self.header_len() as usize],
        )) == 0xffff
    }
    /// The payload, bounded by the total length (padding excluded).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = (self.total_len() as usize).min(b.len());
        let start = (self.header_len() as usize).min(end);
        &b[start..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4).
    pub fn set_version_and_header_len(&mut self, hl: u8) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | (hl / 4);
    }
    /// Sets the type-of-service byte.
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::TOS] = v
    }
    /// Sets the total length.
    pub fn set_total_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH.start, v)
    }
    /// Sets the identification.
    pub fn set_ident(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::IDENT.start, v)
    }
    /// Sets the raw flags/fragment-offset word.
    pub fn set_flags_frag(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::FLG_OFF.start, v)
    }
    /// Sets the TTL.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v
    }
    /// Sets the protocol.
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, v)
    }
    /// Sets the source address.
    pub fn set_src_addr(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::SRC.start, v)
    }
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::DST.start, v)
    }
    /// Mutable options bytes.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len() as usize;
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }
    /// Recomputes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len() as usize;
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }
}

/// IPv4 options, stored inline so a [`Repr`] stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Options {
    bytes: [u8; MAX_OPTIONS_LEN],
    len: u8,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bytes: [0; MAX_OPTIONS_LEN],
            len: 0,
        }
    }
}

impl Options {
    /// Options from raw bytes (length a multiple of 4, at most 40).
    pub fn new(b: &[u8]) -> Result<Options> {
        if b.len() > MAX_OPTIONS_LEN || !b.len().is_multiple_of(4) {
            return Err(Error::Malformed);
        }
        let mut o = Options::default();
        o.bytes[..b.len()].copy_from_slice(b);
        o.len = b.len() as u8;
        Ok(o)
    }
    /// The raw option bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// A parsed IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Repr {
    /// Source address (host-order number).
    pub src: u32,
    /// Destination address (host-order number).
    pub dst: u32,
    /// Payload protocol.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Type-of-service byte.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// "Don't fragment" flag.
    pub dont_frag: bool,
    /// "More fragments" flag.
    pub more_frags: bool,
    /// Fragment offset in units of 8 bytes.
    pub frag_offset: u16,
    /// Options.
    pub options: Options,
    /// Payload length in bytes.
    pub payload_len: u16,
}

impl Repr {
    /// Parses a header: version 4, consistent lengths. The checksum is not verified.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        if p.version() != 4 {
            return Err(Error::Malformed);
        }
        p.check_total_len()?;
        Ok(Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            ttl: p.ttl(),
            tos: p.tos(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
            options: Options::new(p.options())?,
            payload_len: p.total_len() - p.header_len() as u16,
        })
    }

    /// Header length including options.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.options.len as usize
    }

    /// Writes the header (with a correct checksum) into a view of at least `buffer_len()` bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        let hl = self.buffer_len();
        p.set_version_and_header_len(hl as u8);
        p.set_tos(self.tos);
        p.set_total_len((hl + self.payload_len as usize) as u16);
        p.set_ident(self.ident);
        let mut ff = self.frag_offset & FRAG_OFFSET_MASK;
        if self.dont_frag {
            ff |= FLAG_DF;
        }
        if self.more_frags {
            ff |= FLAG_MF;
        }
        p.set_flags_frag(ff);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        p.options_mut().copy_from_slice(self.options.as_bytes());
        p.fill_checksum();
    }

    /// Unfolded pseudo-header sum for an upper-layer packet of `len` bytes.
    pub fn pseudo_sum(&self, len: u32) -> u32 {
        checksum::pseudo_v4(
            self.src.to_be_bytes(),
            self.dst.to_be_bytes(),
            self.protocol,
            len,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A real header (from a capture) with a valid checksum.
    static HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn view_fields() {
        let mut b = HDR.to_vec();
        b.resize(0x73, 0);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), 0xc0a8_0001);
        assert_eq!(p.protocol(), 17);
        assert!(p.dont_frag());
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.payload_len, 0x73 - 20);
        let mut out = [0u8; 20];
        r.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, HDR);
    }

    #[test]
    fn bad_lengths() {
        let mut b = HDR.to_vec();
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::Truncated)
        );
        b[0] = 0x44;
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(Error::Malformed));
        b[0] = 0x46;
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(Error::Truncated));
    }

    proptest! {
        #[test]
        fn roundtrip(src in any::<u32>(), dst in any::<u32>(), protocol in any::<u8>(),
                     ttl in any::<u8>(), tos in any::<u8>(), ident in any::<u16>(),
                     dont_frag in any::<bool>(), more_frags in any::<bool>(),
                     frag_offset in 0u16..0x2000, opt_words in 0usize..=10,
                     opt_byte in any::<u8>(), payload_len in 0u16..100) {
            let options = Options::new(&vec![opt_byte; opt_words * 4]).unwrap();
            let r = Repr { src, dst, protocol, ttl, tos, ident, dont_frag, more_frags,
                           frag_offset, options, payload_len };
            let mut b = vec![0u8; r.buffer_len() + payload_len as usize];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(Repr::parse(&p).unwrap(), r);
        }
    }
}
