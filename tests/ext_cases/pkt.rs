//! A small, independent builder of Ethernet/IPv4/UDP/TCP/ICMP frames for the extension
//! cases. Checksums are always computed from scratch over the whole header (and the
//! pseudo-header for UDP and TCP), so that a program's incremental updates are checked
//! against a different computation.

/// Ethernet destination of every built frame.
pub const DST_MAC: [u8; 6] = [0, 0, 0, 0, 0, 2];
/// Ethernet source of every built frame.
pub const SRC_MAC: [u8; 6] = [0, 0, 0, 0, 0, 1];

/// The Internet checksum (RFC 1071) of `data`, as the 16-bit big-endian value to store.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from(chunk[0]) << 8
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet header (DST_MAC, SRC_MAC, `ethertype`).
pub fn eth_header(ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// The transport part of an IPv4 packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L4 {
    /// UDP; `csum: false` sends checksum 0 ("none").
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Payload.
        payload: Vec<u8>,
        /// Compute a checksum (otherwise 0).
        csum: bool,
    },
    /// TCP with a 20-byte header (flags ACK, window 65535).
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Payload.
        payload: Vec<u8>,
    },
    /// ICMP: the raw message (its checksum bytes are filled in).
    Icmp {
        /// Type, code, checksum placeholder, rest.
        payload: Vec<u8>,
    },
}

impl L4 {
    /// The IP protocol number.
    pub fn proto(&self) -> u8 {
        match self {
            L4::Udp { .. } => 17,
            L4::Tcp { .. } => 6,
            L4::Icmp { .. } => 1,
        }
    }

    /// Sets the destination port (UDP and TCP).
    pub fn set_dport(&mut self, port: u16) {
        match self {
            L4::Udp { dport, .. } | L4::Tcp { dport, .. } => *dport = port,
            L4::Icmp { .. } => panic!("ICMP has no ports"),
        }
    }

    fn bytes(&self, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let pseudo = |proto: u8, len: usize| {
            let mut p = Vec::with_capacity(12);
            p.extend_from_slice(&src);
            p.extend_from_slice(&dst);
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
            p
        };
        match self {
            L4::Udp {
                sport,
                dport,
                payload,
                csum,
            } => {
                let len = 8 + payload.len();
                let mut b = Vec::with_capacity(len);
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&(len as u16).to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(payload);
                if *csum {
                    let mut c = checksum(&[pseudo(17, len), b.clone()].concat());
                    if c == 0 {
                        c = 0xffff;
                    }
                    b[6..8].copy_from_slice(&c.to_be_bytes());
                }
                b
            }
            L4::Tcp {
                sport,
                dport,
                payload,
            } => {
                let len = 20 + payload.len();
                let mut b = Vec::with_capacity(len);
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&0x1000_0001u32.to_be_bytes()); // sequence
                b.extend_from_slice(&0x2000_0002u32.to_be_bytes()); // acknowledgement
                b.extend_from_slice(&[0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
                b.extend_from_slice(payload);
                let c = checksum(&[pseudo(6, len), b.clone()].concat());
                b[16..18].copy_from_slice(&c.to_be_bytes());
                b
            }
            L4::Icmp { payload } => {
                let mut b = payload.clone();
                if b.len() >= 4 {
                    b[2] = 0;
                    b[3] = 0;
                    let c = checksum(&b);
                    b[2..4].copy_from_slice(&c.to_be_bytes());
                }
                b
            }
        }
    }
}

/// An IPv4 packet in an Ethernet frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ip4 {
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub id: u16,
    /// Type of service.
    pub tos: u8,
    /// Flags and fragment offset (in 8-byte units), as the 16-bit field.
    pub frag: u16,
    /// Options (a multiple of 4 bytes, at most 40).
    pub options: Vec<u8>,
    /// Transport.
    pub l4: L4,
}

impl Ip4 {
    /// TTL 64, id 0, TOS 0, no fragmentation, no options.
    pub fn new(src: [u8; 4], dst: [u8; 4], l4: L4) -> Ip4 {
        Ip4 {
            src,
            dst,
            ttl: 64,
            id: 0,
            tos: 0,
            frag: 0,
            options: Vec::new(),
            l4,
        }
    }

    fn header(&self, total_len: usize) -> Vec<u8> {
        assert!(
            self.options.len().is_multiple_of(4) && self.options.len() <= 40,
            "bad IPv4 options length"
        );
        let ihl = 5 + self.options.len() / 4;
        let mut h = Vec::with_capacity(ihl * 4);
        h.push(0x40 | ihl as u8);
        h.push(self.tos);
        h.extend_from_slice(&(total_len as u16).to_be_bytes());
        h.extend_from_slice(&self.id.to_be_bytes());
        h.extend_from_slice(&self.frag.to_be_bytes());
        h.push(self.ttl);
        h.push(self.l4.proto());
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&self.src);
        h.extend_from_slice(&self.dst);
        h.extend_from_slice(&self.options);
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    /// The IPv4 header checksum this packet gets.
    pub fn header_checksum(&self) -> u16 {
        let h = self.header(20 + self.options.len() + self.l4.bytes(self.src, self.dst).len());
        u16::from_be_bytes([h[10], h[11]])
    }

    /// The whole Ethernet frame, with every checksum computed. Frames are not padded to 60
    /// bytes (a test that wants padding adds it).
    pub fn frame(&self) -> Vec<u8> {
        let l4 = self.l4.bytes(self.src, self.dst);
        let mut f = eth_header(0x0800);
        f.extend_from_slice(&self.header(20 + self.options.len() + l4.len()));
        f.extend_from_slice(&l4);
        f
    }
}

/// Checks the IPv4 header checksum and the UDP/TCP checksum of an untagged frame: `Ok` or
/// what is wrong.
pub fn verify_checksums(frame: &[u8]) -> Result<(), String> {
    if frame.len() < 34 || frame[12..14] != [8, 0] {
        return Err("not an untagged IPv4 frame".into());
    }
    let ihl = usize::from(frame[14] & 0xf) * 4;
    let ip = &frame[14..];
    if checksum(&ip[..ihl]) != 0 {
        return Err("bad IPv4 header checksum".into());
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let l4 = &ip[ihl..total];
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&ip[12..20]);
    pseudo.extend_from_slice(&[0, ip[9]]);
    pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    match ip[9] {
        17 if l4[6..8] == [0, 0] => Ok(()),
        17 | 6 if checksum(&[pseudo.as_slice(), l4].concat()) != 0 => {
            Err(format!("bad L4 checksum (protocol {})", ip[9]))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_frames_verify() {
        let udp = Ip4::new(
            [10, 0, 0, 1],
            [10, 1, 0, 1],
            L4::Udp {
                sport: 1,
                dport: 53,
                payload: vec![1, 2, 3],
                csum: true,
            },
        );
        assert_eq!(verify_checksums(&udp.frame()), Ok(()));
        let tcp = Ip4::new(
            [10, 0, 0, 1],
            [10, 1, 0, 1],
            L4::Tcp {
                sport: 1,
                dport: 53,
                payload: vec![4; 7],
            },
        );
        assert_eq!(verify_checksums(&tcp.frame()), Ok(()));
        let mut bad = tcp.frame();
        bad[40] ^= 1;
        assert!(verify_checksums(&bad).is_err());
    }
}
