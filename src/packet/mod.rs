//! Packet buffers and zero-copy header parsing into flow keys.
//!
//! Every protocol header has two layers, in the style of smoltcp: a borrowed view
//! (`Packet<T: AsRef<[u8]>>`, with setters when `T: AsMut<[u8]>`) whose getters cannot panic
//! once `new_checked` succeeded, and a plain value `Repr` with `parse`, `buffer_len` and
//! `emit`. Field offsets live in a private `mod field` in each protocol module.
//!
//! The datapath's entry point is [`extract()`]: it fills a [`Flow`](ofproto_bridge::Flow) key
//! from a frame with the semantics of Open vSwitch's `flow_extract`, and returns a [`Layout`]
//! giving the offsets of the headers it found. [`PacketBuf`] owns a frame with XDP-style
//! headroom so tags and extension headers can be pushed without copying the payload.
//! [`builder`] composes whole frames from `Repr` values for tests and benchmarks.

pub mod arp;
pub mod buf;
pub mod builder;
pub mod checksum;
pub mod ethernet;
mod extract;
pub mod fieldmap;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod mpls;
pub mod sctp;
pub mod tcp;
pub mod udp;

pub use buf::{BufError, PacketBuf, HEADROOM, TAILROOM};
pub use extract::{extract, extract_to, Layout, OFS_ABSENT};

/// Why a header could not be viewed or parsed. Cheap to copy; never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header (or than a length field inside it claims).
    #[error("truncated header")]
    Truncated,
    /// A field holds a value the header cannot have (bad version, length below minimum...).
    #[error("malformed header")]
    Malformed,
    /// The header is valid but of a kind this parser does not represent (e.g. non-Ethernet ARP).
    #[error("unsupported header variant")]
    Unsupported,
}

/// Result of header parsing.
pub type Result<T> = core::result::Result<T, Error>;

/// Ethertype values the switch understands.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// Reverse ARP (parsed like ARP, as Open vSwitch does).
    pub const RARP: u16 = 0x8035;
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// MPLS unicast.
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MCAST: u16 = 0x8848;
    /// Smallest value that is an Ethertype rather than an 802.3 length.
    pub const MIN: u16 = 0x0600;
}

/// IP protocol numbers (and IPv6 extension header numbers) the switch understands.
pub mod ip_proto {
    /// IPv6 hop-by-hop options.
    pub const HOPOPTS: u8 = 0;
    /// ICMPv4.
    pub const ICMP: u8 = 1;
    /// IGMP.
    pub const IGMP: u8 = 2;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const NONE: u8 = 59;
    /// IPv6 destination options.
    pub const DSTOPTS: u8 = 60;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// Reads a big-endian u16 at `at`; the caller has checked the bounds.
#[inline]
pub(crate) fn get16(b: &[u8], at: usize) -> u16 {
    // One bounds check and one load (indexing byte by byte checks each byte).
    u16::from_be_bytes(b[at..at + 2].try_into().expect("two bytes"))
}

/// Reads a big-endian u32 at `at`; the caller has checked the bounds.
#[inline]
pub(crate) fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("four bytes"))
}

/// Writes a big-endian u16 at `at`; the caller has checked the bounds.
#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian u32 at `at`; the caller has checked the bounds.
#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// A 48-bit MAC address as its six wire bytes.
pub type MacAddr = [u8; 6];

/// Formats a MAC address the way ovs-ofctl does (`00:11:22:33:44:55`).
pub fn fmt_mac(m: &MacAddr) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}
