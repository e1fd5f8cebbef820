//! ARP (and RARP) packets for Ethernet hardware addresses and IPv4 protocol addresses.

use super::{ethertype, get16, get32, put16, put32, Error, MacAddr, Result};

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TPA.end;

/// ARP request opcode.
pub const OP_REQUEST: u16 = 1;
/// ARP reply opcode.
pub const OP_REPLY: u16 = 2;

/// A read/write view of an Ethernet/IPv4 ARP packet (28 bytes).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer, checking that it holds 28 bytes.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds a whole Ethernet/IPv4 ARP packet.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < PACKET_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        get16(self.buffer.as_ref(), field::HTYPE.start)
    }
    /// Protocol type (0x0800 for IPv4).
    pub fn protocol_type(&self) -> u16 {
        get16(self.buffer.as_ref(), field::PTYPE.start)
    }
    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    /// Operation code.
    pub fn operation(&self) -> u16 {
        get16(self.buffer.as_ref(), field::OPER.start)
    }
    /// Sender hardware address.
    pub fn sender_hw_addr(&self) -> MacAddr {
        self.buffer.as_ref()[field::SHA]
            .try_into()
            .unwrap_or([0; 6])
    }
    /// Sender protocol address (as a host-order number).
    pub fn sender_proto_addr(&self) -> u32 {
        get32(self.buffer.as_ref(), field::SPA.start)
    }
    /// Target hardware address.
    pub fn target_hw_addr(&self) -> MacAddr {
        self.buffer.as_ref()[field::THA]
            .try_into()
            .unwrap_or([0; 6])
    }
    /// Target protocol address (as a host-order number).
    pub fn target_proto_addr(&self) -> u32 {
        get32(self.buffer.as_ref(), field::TPA.start)
    }

    /// Whether this is the Ethernet/IPv4 variant (the only one with flow-key fields).
    pub fn is_ethernet_ipv4(&self) -> bool {
        self.hardware_type() == 1
            && self.protocol_type() == ethertype::IPV4
            && self.hardware_len() == 6
            && self.protocol_len() == 4
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the operation code.
    pub fn set_operation(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::OPER.start, v)
    }
    /// Sets the sender hardware address.
    pub fn set_sender_hw_addr(&mut self, v: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&v)
    }
    /// Sets the sender protocol address.
    pub fn set_sender_proto_addr(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::SPA.start, v)
    }
    /// Sets the target hardware address.
    pub fn set_target_hw_addr(&mut self, v: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&v)
    }
    /// Sets the target protocol address.
    pub fn set_target_proto_addr(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::TPA.start, v)
    }
    /// Writes the fixed Ethernet/IPv4 hardware/protocol type and length fields.
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        put16(b, field::HTYPE.start, 1);
        put16(b, field::PTYPE.start, ethertype::IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }
}

/// A parsed Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Repr {
    /// Operation code.
    pub op: u16,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: u32,
    /// Target hardware address.
    pub tha: MacAddr,
    /// Target protocol address.
    pub tpa: u32,
}

impl Repr {
    /// Parses an Ethernet/IPv4 ARP packet; other hardware/protocol types are `Unsupported`.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        if !p.is_ethernet_ipv4() {
            return Err(Error::Unsupported);
        }
        Ok(Repr {
            op: p.operation(),
            sha: p.sender_hw_addr(),
            spa: p.sender_proto_addr(),
            tha: p.target_hw_addr(),
            tpa: p.target_proto_addr(),
        })
    }

    /// Length of the emitted packet.
    pub fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet into a view of at least 28 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_ethernet_ipv4();
        p.set_operation(self.op);
        p.set_sender_hw_addr(self.sha);
        p.set_sender_proto_addr(self.spa);
        p.set_target_hw_addr(self.tha);
        p.set_target_proto_addr(self.tpa);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn non_ethernet_is_unsupported() {
        let mut b = [0u8; 28];
        Repr::default().emit(&mut Packet::new_unchecked(&mut b[..]));
        b[0] = 6;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::Unsupported)
        );
        assert_eq!(Packet::new_checked(&b[..27]).err(), Some(Error::Truncated));
    }

    proptest! {
        #[test]
        fn roundtrip(op in any::<u16>(), sha in any::<[u8; 6]>(), spa in any::<u32>(),
                     tha in any::<[u8; 6]>(), tpa in any::<u32>()) {
            let r = Repr { op, sha, spa, tha, tpa };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }
    }
}
