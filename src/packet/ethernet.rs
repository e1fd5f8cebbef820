//! Ethernet II frames, with up to two 802.1Q / 802.1ad VLAN tags.

use super::{ethertype, get16, put16, Error, MacAddr, Result};

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: usize = 14;
    /// Within a VLAN tag (which starts where an Ethertype would be).
    pub const TAG_TPID: Range<usize> = 0..2;
    pub const TAG_TCI: Range<usize> = 2..4;
    pub const TAG_LEN: usize = 4;
}

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = field::PAYLOAD;
/// Length of one VLAN tag.
pub const VLAN_TAG_LEN: usize = field::TAG_LEN;

/// Whether `tpid` is a VLAN tag protocol identifier the switch parses (0x8100 or 0x88a8).
#[inline]
pub fn is_vlan_tpid(tpid: u16) -> bool {
    tpid == ethertype::VLAN || tpid == ethertype::QINQ
}

/// A read/write view of the first 14 bytes of an Ethernet frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking its length.
    pub fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer, checking that it holds a whole Ethernet header.
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks that the buffer holds a whole Ethernet header.
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

    /// Destination MAC address.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        self.buffer.as_ref()[field::DST]
            .try_into()
            .unwrap_or([0; 6])
    }

    /// Source MAC address.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        self.buffer.as_ref()[field::SRC]
            .try_into()
            .unwrap_or([0; 6])
    }

    /// The Ethertype (or TPID of the first VLAN tag, or an 802.3 length).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        get16(self.buffer.as_ref(), field::ETHERTYPE.start)
    }

    /// Everything after the 14-byte header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a);
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_src_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a);
    }

    /// Sets the Ethertype field.
    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        put16(self.buffer.as_mut(), field::ETHERTYPE.start, t);
    }

    /// Mutable access to everything after the 14-byte header.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// One VLAN tag (TPID and TCI as on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanTag {
    /// Tag protocol identifier (0x8100 or 0x88a8).
    pub tpid: u16,
    /// Tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
    pub tci: u16,
}

impl VlanTag {
    /// Reads a tag from the first four bytes of `b`.
    pub fn parse(b: &[u8]) -> Result<VlanTag> {
        if b.len() < field::TAG_LEN {
            return Err(Error::Truncated);
        }
        Ok(VlanTag {
            tpid: get16(b, field::TAG_TPID.start),
            tci: get16(b, field::TAG_TCI.start),
        })
    }

    /// Writes the tag into the first four bytes of `b` (which must be long enough).
    pub fn emit(&self, b: &mut [u8]) {
        put16(b, field::TAG_TPID.start, self.tpid);
        put16(b, field::TAG_TCI.start, self.tci);
    }
}

/// A parsed Ethernet header, including up to two VLAN tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Repr {
    /// Destination MAC address.
    pub dst: MacAddr,
    /// Source MAC address.
    pub src: MacAddr,
    /// VLAN tags, outermost first; a `None` must not precede a `Some`.
    pub vlans: [Option<VlanTag>; 2],
    /// The Ethertype after the tags.
    pub ethertype: u16,
}

impl Repr {
    /// Parses the header and up to two VLAN tags (0x8100 / 0x88a8) from the start of `b`.
    pub fn parse(b: &[u8]) -> Result<Repr> {
        let f = Frame::new_checked(b)?;
        let mut r = Repr {
            dst: f.dst_addr(),
            src: f.src_addr(),
            vlans: [None; 2],
            ethertype: f.ethertype(),
        };
        let mut at = field::ETHERTYPE.start;
        for slot in r.vlans.iter_mut() {
            if !is_vlan_tpid(r.ethertype) {
                break;
            }
            let tag = VlanTag::parse(&b[at..])?;
            if b.len() < at + field::TAG_LEN + 2 {
                return Err(Error::Truncated);
            }
            *slot = Some(tag);
            at += field::TAG_LEN;
            r.ethertype = get16(b, at);
        }
        Ok(r)
    }

    /// Number of VLAN tags.
    pub fn vlan_count(&self) -> usize {
        self.vlans.iter().filter(|v| v.is_some()).count()
    }

    /// Length of the header with its tags.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.vlan_count() * field::TAG_LEN
    }

    /// Writes the header and tags to the start of `b`, which must be `buffer_len()` long.
    pub fn emit(&self, b: &mut [u8]) {
        b[field::DST].copy_from_slice(&self.dst);
        b[field::SRC].copy_from_slice(&self.src);
        let mut at = field::ETHERTYPE.start;
        for tag in self.vlans.iter().flatten() {
            tag.emit(&mut b[at..]);
            at += field::TAG_LEN;
        }
        put16(b, at, self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    static QINQ: [u8; 24] = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x88, 0xa8, 0x20, 0x05, 0x81, 0x00, 0x00, 0x07,
        0x08, 0x00, 0xaa, 0xbb,
    ];

    #[test]
    fn parse_qinq() {
        let r = Repr::parse(&QINQ).unwrap();
        assert_eq!(r.dst, [1, 2, 3, 4, 5, 6]);
        assert_eq!(
            r.vlans[0],
            Some(VlanTag {
                tpid: 0x88a8,
                tci: 0x2005
            })
        );
        assert_eq!(
            r.vlans[1],
            Some(VlanTag {
                tpid: 0x8100,
                tci: 7
            })
        );
        assert_eq!(r.ethertype, 0x0800);
        assert_eq!(r.buffer_len(), 22);
        let mut out = [0u8; 22];
        r.emit(&mut out);
        assert_eq!(&out[..], &QINQ[..22]);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Frame::new_checked(&QINQ[..13]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(Repr::parse(&QINQ[..17]).err(), Some(Error::Truncated));
    }

    fn arb_tag() -> impl Strategy<Value = VlanTag> {
        (prop_oneof![Just(0x8100u16), Just(0x88a8u16)], any::<u16>())
            .prop_map(|(tpid, tci)| VlanTag { tpid, tci })
    }

    proptest! {
        #[test]
        fn roundtrip(dst in any::<[u8; 6]>(), src in any::<[u8; 6]>(),
                     t0 in proptest::option::of(arb_tag()), t1 in arb_tag(),
                     et in 0x0600u16..0xffff) {
            prop_assume!(!is_vlan_tpid(et));
            let vlans = match t0 { Some(t) => [Some(t), Some(t1)], None => [None, None] };
            let r = Repr { dst, src, vlans, ethertype: et };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut b);
            prop_assert_eq!(Repr::parse(&b).unwrap(), r);
        }
    }
}
