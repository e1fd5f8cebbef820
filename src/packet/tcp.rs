//! TCP headers.

use super::{checksum, get16, get32, ipv4::Options, put16, put32, Error, Result};

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const OFF_FLAGS: Range<usize> = 12..14;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = field::URGENT.end;
/// Byte offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;
/// Byte offset of the data-offset/flags word.
pub const OFF_FLAGS_OFFSET: usize = field::OFF_FLAGS.start;
/// Mask of the flags within the data-offset/flags word (the flow key's `tcp_flags`).
pub const FLAGS_MASK: u16 = 0x0fff;

/// FIN flag.
pub const FIN: u16 = 0x001;
/// SYN flag.
pub const SYN: u16 = 0x002;
/// RST flag.
pub const RST: u16 = 0x004;
/// PSH flag.
pub const PSH: u16 = 0x008;
/// ACK flag.
pub const ACK: u16 = 0x010;
/// URG flag.
pub const URG: u16 = 0x020;

/// A read/write view of a TCP segment.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer, checking that it holds the header including options.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the fixed header, a data offset of at least 5 words, and the options' presence.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < hl {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::SRC_PORT.start)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::DST_PORT.start)
    }
    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        get32(self.buffer.as_ref(), field::SEQ.start)
    }
    /// Acknowledgement number.
    pub fn ack_number(&self) -> u32 {
        get32(self.buffer.as_ref(), field::ACK.start)
    }
    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        (self.buffer.as_ref()[field::OFF_FLAGS.start] >> 4) as usize * 4
    }
    /// The 12 flag bits (NS, CWR, ECE, URG, ACK, PSH, RST, SYN, FIN and 3 reserved).
    pub fn flags(&self) -> u16 {
        get16(self.buffer.as_ref(), field::OFF_FLAGS.start) & FLAGS_MASK
    }
    /// Window size.
    pub fn window_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::WINDOW.start)
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        get16(self.buffer.as_ref(), field::URGENT.start)
    }
    /// Option bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// Segment payload (everything after the header).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// Whether the checksum (over the whole buffer, with the pseudo-header sum) is correct.
    pub fn verify_checksum(&self, pseudo: u32) -> bool {
        checksum::fold(checksum::sum_into(pseudo, self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT.start, v)
    }
    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT.start, v)
    }
    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::SEQ.start, v)
    }
    /// Sets the acknowledgement number.
    pub fn set_ack_number(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::ACK.start, v)
    }
    /// Sets the header length (bytes, multiple of 4) and flags.
    pub fn set_header_len_flags(&mut self, hl: usize, flags: u16) {
        let w = ((hl / 4) as u16) << 12 | (flags & FLAGS_MASK);
        put16(self.buffer.as_mut(), field::OFF_FLAGS.start, w)
    }
    /// Sets the window size.
    pub fn set_window_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::WINDOW.start, v)
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, v)
    }
    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::URGENT.start, v)
    }
    /// Mutable option bytes.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }
    /// Recomputes the checksum over the whole buffer plus the pseudo-header sum.
    pub fn fill_checksum(&mut self, pseudo: u32) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::sum_into(pseudo, self.buffer.as_ref()));
        self.set_checksum(c);
    }
}

/// A parsed TCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags (12 bits).
    pub flags: u16,
    /// Window size.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options (multiple of 4 bytes, at most 40).
    pub options: Options,
}

impl Repr {
    /// Parses the header (the checksum is not verified).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq_number(),
            ack: p.ack_number(),
            flags: p.flags(),
            window: p.window_len(),
            urgent: p.urgent_at(),
            options: Options::new(p.options())?,
        })
    }

    /// Header length including options.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.options.as_bytes().len()
    }

    /// Writes the header into a view covering the whole segment (payload already in place)
    /// and fills the checksum using the pseudo-header sum `pseudo`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>, pseudo: u32) {
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq);
        p.set_ack_number(self.ack);
        p.set_header_len_flags(self.buffer_len(), self.flags);
        p.set_window_len(self.window);
        p.set_urgent_at(self.urgent);
        p.options_mut().copy_from_slice(self.options.as_bytes());
        p.fill_checksum(pseudo);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bad_offset() {
        let mut b = [0u8; 24];
        b[12] = 0x40;
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(Error::Malformed));
        b[12] = 0x70;
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(Error::Truncated));
    }

    proptest! {
        #[test]
        fn roundtrip(src_port in any::<u16>(), dst_port in any::<u16>(), seq in any::<u32>(),
                     ack in any::<u32>(), flags in 0u16..0x1000, window in any::<u16>(),
                     urgent in any::<u16>(), words in 0usize..=10, pseudo in any::<u32>(),
                     payload in proptest::collection::vec(any::<u8>(), 0..40)) {
            let options = Options::new(&vec![1u8; words * 4]).unwrap();
            let r = Repr { src_port, dst_port, seq, ack, flags, window, urgent, options };
            let mut b = vec![0u8; r.buffer_len()];
            b.extend_from_slice(&payload);
            r.emit(&mut Packet::new_unchecked(&mut b[..]), pseudo & 0xffff);
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert!(p.verify_checksum(pseudo & 0xffff));
            prop_assert_eq!(p.payload(), &payload[..]);
            prop_assert_eq!(Repr::parse(&p).unwrap(), r);
        }
    }
}
