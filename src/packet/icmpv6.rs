//! ICMPv6 messages, including neighbour discovery (solicitation and advertisement with
//! source/target link-layer address options).

use super::{checksum, get16, get32, put16, put32, Error, MacAddr, Result};

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const DATA: Range<usize> = 4..8;
    /// Neighbour discovery: target address and options.
    pub const ND_TARGET: Range<usize> = 8..24;
    pub const ND_OPTIONS: usize = 24;
    /// Within an ND option.
    pub const OPT_TYPE: usize = 0;
    pub const OPT_LEN: usize = 1;
    pub const OPT_LLADDR: Range<usize> = 2..8;
}

/// Length of the ICMPv6 header as Open vSwitch requires it (type, code, checksum, 4 bytes).
pub const HEADER_LEN: usize = field::DATA.end;
/// Byte offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;
/// Byte offset of the ND target address.
pub const ND_TARGET_OFFSET: usize = field::ND_TARGET.start;
/// Byte offset of the first ND option.
pub const ND_OPTIONS_OFFSET: usize = field::ND_OPTIONS;
/// Byte offset of the link-layer address within an ND option.
pub const ND_OPT_LLADDR_OFFSET: usize = field::OPT_LLADDR.start;

/// Echo request.
pub const ECHO_REQUEST: u8 = 128;
/// Echo reply.
pub const ECHO_REPLY: u8 = 129;
/// Neighbour solicitation.
pub const NEIGHBOR_SOLICIT: u8 = 135;
/// Neighbour advertisement.
pub const NEIGHBOR_ADVERT: u8 = 136;
/// ND option: source link-layer address.
pub const OPT_SOURCE_LLADDR: u8 = 1;
/// ND option: target link-layer address.
pub const OPT_TARGET_LLADDR: u8 = 2;

/// A read/write view of an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer, checking that it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the header.
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

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    /// The 32-bit word after the checksum (ND flags and reserved bits).
    pub fn data_word(&self) -> u32 {
        get32(self.buffer.as_ref(), field::DATA.start)
    }
    /// Whether this is a neighbour solicitation or advertisement (with code 0).
    pub fn is_nd(&self) -> bool {
        self.msg_code() == 0 && matches!(self.msg_type(), NEIGHBOR_SOLICIT | NEIGHBOR_ADVERT)
    }
    /// The ND target address, when the buffer holds it.
    pub fn nd_target(&self) -> Option<[u8; 16]> {
        self.buffer
            .as_ref()
            .get(field::ND_TARGET)
            .and_then(|s| s.try_into().ok())
    }
    /// The ND options area (empty when the buffer ends before it).
    pub fn nd_options(&self) -> NdOptions<'_> {
        NdOptions::new(self.buffer.as_ref().get(field::ND_OPTIONS..).unwrap_or(&[]))
    }
    /// Data after the 8-byte header.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    /// Whether the checksum over the whole buffer and the pseudo-header sum is correct.
    pub fn verify_checksum(&self, pseudo: u32) -> bool {
        checksum::fold(checksum::sum_into(pseudo, self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v
    }
    /// Sets the message code.
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, v)
    }
    /// Sets the word after the checksum.
    pub fn set_data_word(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::DATA.start, v)
    }
    /// Recomputes the checksum over the whole buffer plus the pseudo-header sum.
    pub fn fill_checksum(&mut self, pseudo: u32) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::sum_into(pseudo, self.buffer.as_ref()));
        self.set_checksum(c)
    }
}

/// One ND option as found on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdOption<'a> {
    /// Offset of the option within the options area.
    pub offset: usize,
    /// Option type.
    pub kind: u8,
    /// Whole option bytes (type, length, body).
    pub bytes: &'a [u8],
}

impl NdOption<'_> {
    /// The link-layer address of an 8-byte source/target link-layer address option.
    pub fn lladdr(&self) -> Option<MacAddr> {
        if self.bytes.len() == 8 && matches!(self.kind, OPT_SOURCE_LLADDR | OPT_TARGET_LLADDR) {
            self.bytes[field::OPT_LLADDR].try_into().ok()
        } else {
            None
        }
    }
}

/// Iterator over ND options; stops at the first option whose length is zero or overruns
/// the buffer, or when fewer than 8 bytes remain (as Open vSwitch does).
#[derive(Debug, Clone)]
pub struct NdOptions<'a> {
    rest: &'a [u8],
    pos: usize,
}

impl<'a> NdOptions<'a> {
    /// Iterates over the options in `area` (the bytes after the ND target).
    pub fn new(area: &'a [u8]) -> NdOptions<'a> {
        NdOptions { rest: area, pos: 0 }
    }
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = NdOption<'a>;
    fn next(&mut self) -> Option<NdOption<'a>> {
        if self.rest.len() < 8 {
            return None;
        }
        let len = self.rest[field::OPT_LEN] as usize * 8;
        if len == 0 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let (opt, rest) = self.rest.split_at(len);
        self.rest = rest;
        let offset = self.pos;
        self.pos += len;
        Some(NdOption {
            offset,
            kind: opt[field::OPT_TYPE],
            bytes: opt,
        })
    }
}

/// A parsed ICMPv6 header (for any message type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Repr {
    /// Message type.
    pub msg_type: u8,
    /// Message code.
    pub code: u8,
    /// The word after the checksum.
    pub data: u32,
}

impl Repr {
    /// Parses the header (the checksum is not verified).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            msg_type: p.msg_type(),
            code: p.msg_code(),
            data: p.data_word(),
        })
    }

    /// Header length.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into a view covering the whole message (body in place) and fills
    /// the checksum with the pseudo-header sum `pseudo`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>, pseudo: u32) {
        p.set_msg_type(self.msg_type);
        p.set_msg_code(self.code);
        p.set_data_word(self.data);
        p.fill_checksum(pseudo);
    }
}

/// A parsed neighbour solicitation or advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NdRepr {
    /// [`NEIGHBOR_SOLICIT`] or [`NEIGHBOR_ADVERT`].
    pub msg_type: u8,
    /// Flags and reserved bits (R, S, O for an advertisement).
    pub flags: u32,
    /// Target address.
    pub target: [u8; 16],
    /// Source link-layer address option.
    pub sll: Option<MacAddr>,
    /// Target link-layer address option.
    pub tll: Option<MacAddr>,
}

impl NdRepr {
    /// Parses an ND message strictly: code 0, target present, well-formed options.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<NdRepr> {
        p.check_len()?;
        if !p.is_nd() {
            return Err(Error::Unsupported);
        }
        let target = p.nd_target().ok_or(Error::Truncated)?;
        let mut r = NdRepr {
            msg_type: p.msg_type(),
            flags: p.data_word(),
            target,
            sll: None,
            tll: None,
        };
        let area = &p.buffer.as_ref()[field::ND_OPTIONS..];
        let mut consumed = 0;
        for o in p.nd_options() {
            consumed += o.bytes.len();
            match (o.kind, o.lladdr()) {
                (OPT_SOURCE_LLADDR, Some(m)) if r.sll.is_none() => r.sll = Some(m),
                (OPT_TARGET_LLADDR, Some(m)) if r.tll.is_none() => r.tll = Some(m),
                (OPT_SOURCE_LLADDR | OPT_TARGET_LLADDR, Some(_)) => return Err(Error::Malformed),
                _ => {}
            }
        }
        if consumed != area.len() {
            return Err(Error::Malformed);
        }
        Ok(r)
    }

    /// Message length (header, target and options).
    pub fn buffer_len(&self) -> usize {
        field::ND_OPTIONS + 8 * (self.sll.is_some() as usize + self.tll.is_some() as usize)
    }

    /// Writes the message into a view of exactly `buffer_len()` bytes, with the checksum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>, pseudo: u32) {
        {
            let b = p.buffer.as_mut();
            b[field::ND_TARGET].copy_from_slice(&self.target);
            let mut at = field::ND_OPTIONS;
            for (kind, mac) in [(OPT_SOURCE_LLADDR, self.sll), (OPT_TARGET_LLADDR, self.tll)] {
                if let Some(m) = mac {
                    b[at] = kind;
                    b[at + 1] = 1;
                    b[at + 2..at + 8].copy_from_slice(&m);
                    at += 8;
                }
            }
        }
        Repr {
            msg_type: self.msg_type,
            code: 0,
            data: self.flags,
        }
        .emit(p, pseudo);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn options_stop_on_zero_length() {
        let area = [1u8, 1, 1, 2, 3, 4, 5, 6, 2, 0, 0, 0, 0, 0, 0, 0];
        let v: Vec<_> = NdOptions::new(&area).collect();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].lladdr(), Some([1, 2, 3, 4, 5, 6]));
    }

    proptest! {
        #[test]
        fn roundtrip(msg_type in any::<u8>(), code in any::<u8>(), data in any::<u32>(), pseudo in any::<u16>(),
                     body in proptest::collection::vec(any::<u8>(), 0..40)) {
            let r = Repr { msg_type, code, data };
            let mut b = vec![0u8; HEADER_LEN];
            b.extend_from_slice(&body);
            r.emit(&mut Packet::new_unchecked(&mut b[..]), pseudo as u32);
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert!(p.verify_checksum(pseudo as u32));
            prop_assert_eq!(Repr::parse(&p).unwrap(), r);
        }

        #[test]
        fn nd_roundtrip(advert in any::<bool>(), flags in any::<u32>(), target in any::<[u8; 16]>(),
                        sll in proptest::option::of(any::<[u8; 6]>()),
                        tll in proptest::option::of(any::<[u8; 6]>()), pseudo in any::<u16>()) {
            let r = NdRepr { msg_type: if advert { NEIGHBOR_ADVERT } else { NEIGHBOR_SOLICIT },
                             flags, target, sll, tll };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut b[..]), pseudo as u32);
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert!(p.verify_checksum(pseudo as u32));
            prop_assert_eq!(NdRepr::parse(&p).unwrap(), r);
        }
    }
}
