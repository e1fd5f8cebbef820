//! MPLS label stack entries.

use super::{get32, put32, Error, Result};

mod field {
    use core::ops::Range;
    pub const LSE: Range<usize> = 0..4;
}

/// Length of one label stack entry.
pub const LSE_LEN: usize = field::LSE.end;
/// Bottom-of-stack bit within a label stack entry.
pub const BOS_BIT: u32 = 1 << 8;

/// A read/write view of one MPLS label stack entry.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer, checking that it holds one label stack entry.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds four bytes.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < LSE_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The whole entry: label << 12 | tc << 9 | bos << 8 | ttl.
    pub fn lse(&self) -> u32 {
        get32(self.buffer.as_ref(), field::LSE.start)
    }
    /// Label (20 bits).
    pub fn label(&self) -> u32 {
        self.lse() >> 12
    }
    /// Traffic class (3 bits).
    pub fn tc(&self) -> u8 {
        ((self.lse() >> 9) & 7) as u8
    }
    /// Bottom-of-stack bit.
    pub fn bos(&self) -> bool {
        self.lse() & BOS_BIT != 0
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.lse() as u8
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the whole entry.
    pub fn set_lse(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::LSE.start, v)
    }
}

/// A parsed label stack entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Repr {
    /// Label (20 bits).
    pub label: u32,
    /// Traffic class (3 bits).
    pub tc: u8,
    /// Bottom of stack.
    pub bos: bool,
    /// Time to live.
    pub ttl: u8,
}

impl Repr {
    /// Parses one entry.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            label: p.label(),
            tc: p.tc(),
            bos: p.bos(),
            ttl: p.ttl(),
        })
    }

    /// The entry as a 32-bit word.
    pub fn lse(&self) -> u32 {
        (self.label & 0xfffff) << 12
            | ((self.tc & 7) as u32) << 9
            | (self.bos as u32) << 8
            | self.ttl as u32
    }

    /// Length of one entry.
    pub fn buffer_len(&self) -> usize {
        LSE_LEN
    }

    /// Writes the entry.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_lse(self.lse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fields() {
        let p = Packet::new_checked(&[0x00, 0x01, 0x4b, 0x40][..]).unwrap();
        assert_eq!((p.label(), p.tc(), p.bos(), p.ttl()), (20, 5, true, 64));
        assert_eq!(
            Packet::new_checked(&[0u8; 3][..]).err(),
            Some(Error::Truncated)
        );
    }

    proptest! {
        #[test]
        fn roundtrip(label in 0u32..0x10_0000, tc in 0u8..8, bos in any::<bool>(), ttl in any::<u8>()) {
            let r = Repr { label, tc, bos, ttl };
            let mut b = [0u8; 4];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }
    }
}
