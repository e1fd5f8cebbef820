//! Ports: where packets enter and leave the switch (pcap files, network interfaces,
//! in-memory ports for tests).
//!
//! A [`Port`] receives frames in batches into reusable [`PacketBuf`]s and transmits frames
//! one at a time. Implementations: pcap captures ([`pcap::PcapReader`] reads legacy pcap and
//! pcapng, [`pcap::PcapWriter`] writes legacy pcap, [`pcap::PcapPort`] pairs them), Linux
//! network interfaces through AF_PACKET sockets ([`afpacket::AfPacketPort`], the running
//! switch's ports), an in-memory port ([`mem::MemPort`]) and a fault-injecting wrapper
//! ([`fault::FaultyPort`]). [`merge::Merger`] interleaves several captures in timestamp order
//! for replay.
//!
//! **Architecture invariant:** this module is the only part of the switch that does packet
//! I/O (files of packets and packet sockets); the datapath sees only [`Port`].

pub mod afpacket;
pub mod fault;
pub mod mem;
pub mod merge;
pub mod pcap;

use crate::packet::PacketBuf;
use std::path::PathBuf;

/// Largest number of packets received in one batch (Open vSwitch's `NETDEV_MAX_BURST`).
pub const MAX_BATCH: usize = 32;

/// Errors of every port kind.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Opening, reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is neither legacy pcap nor pcapng.
    #[error("{}: not a pcap or pcapng capture", path.display())]
    NotPcap {
        /// The file.
        path: PathBuf,
    },
    /// The capture's link type is not Ethernet.
    #[error("{}: link type {linktype} is not supported (only Ethernet, link type 1)", path.display())]
    LinkType {
        /// The file.
        path: PathBuf,
        /// The link type found.
        linktype: i32,
    },
    /// The capture is malformed.
    #[error("{}: malformed capture after packet {packet}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Packets read successfully before the problem.
        packet: u64,
        /// What is wrong.
        reason: String,
    },
    /// The capture ends in the middle of a record.
    #[error("{}: capture truncated after packet {packet}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Packets read successfully.
        packet: u64,
    },
    /// The port cannot receive.
    #[error("port {0} does not receive")]
    NotReceiving(String),
    /// The port cannot transmit.
    #[error("port {0} does not transmit")]
    NotTransmitting(String),
    /// A system call on a network interface's socket failed.
    #[error("{port}: {op}: {source}")]
    Os {
        /// The interface.
        port: String,
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A fault injected by [`fault::FaultyPort`].
    #[error("injected fault on port {port}: {what}")]
    Injected {
        /// The port.
        port: String,
        /// Which fault.
        what: &'static str,
    },
}

/// A batch of received packets with their timestamps, reusing its buffers across batches.
#[derive(Debug)]
pub struct Batch {
    pkts: Vec<PacketBuf>,
    /// One per buffer (`pkts` and `ts` have the batch's capacity as length).
    ts: Vec<u64>,
    len: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// An empty batch of [`MAX_BATCH`] packets.
    pub fn new() -> Batch {
        Self::with_capacity(MAX_BATCH)
    }

    /// An empty batch holding at most `cap` packets (at least one), with a buffer for each
    /// allocated up front (as a driver fills its receive ring from a pool).
    pub fn with_capacity(cap: usize) -> Batch {
        let cap = cap.max(1);
        Batch {
            pkts: vec![PacketBuf::new(); cap],
            ts: vec![0; cap],
            len: 0,
        }
    }

    /// Most packets the batch holds.
    pub fn capacity(&self) -> usize {
        self.pkts.len()
    }

    /// Packets in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the batch is full.
    pub fn is_full(&self) -> bool {
        self.len == self.pkts.len()
    }

    /// Empties the batch (buffers are kept for reuse).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The buffer the next packet goes into, or `None` when full. The packet only counts
    /// once [`Batch::commit`] is called.
    #[inline]
    pub fn slot(&mut self) -> Option<&mut PacketBuf> {
        // Every buffer exists from the start: past the last one, the batch is full.
        self.pkts.get_mut(self.len)
    }

    /// Counts the packet written into [`Batch::slot`], received at `ts_ns`.
    #[inline]
    pub fn commit(&mut self, ts_ns: u64) {
        debug_assert!(self.len < self.pkts.len());
        self.ts[self.len] = ts_ns;
        self.len += 1;
    }

    /// Appends a copy of `frame`; returns false (and does nothing) when the batch is full.
    // Always: a driver's receive loop copies frame after frame; a call per packet is ~25
    // instructions of the ~600 a forwarded packet costs.
    #[inline(always)]
    pub fn push(&mut self, frame: &[u8], ts_ns: u64) -> bool {
        match self.slot() {
            Some(b) => {
                b.load(frame);
                self.commit(ts_ns);
                true
            }
            None => false,
        }
    }

    /// The `i`th packet and its timestamp.
    #[inline]
    pub fn get(&self, i: usize) -> Option<(&PacketBuf, u64)> {
        (i < self.len).then(|| (&self.pkts[i], self.ts[i]))
    }

    /// The packets and their timestamps.
    pub fn iter(&self) -> impl Iterator<Item = (&PacketBuf, u64)> {
        self.pkts[..self.len]
            .iter()
            .zip(self.ts[..self.len].iter().copied())
    }

    /// The packets, mutably, and their timestamps, as two slices of [`Batch::len`] items.
    #[inline]
    pub fn parts_mut(&mut self) -> (&mut [PacketBuf], &[u64]) {
        (&mut self.pkts[..self.len], &self.ts[..self.len])
    }
}

/// A switch port: receives batches of frames and transmits frames.
pub trait Port {
    /// The port's name (for counters and error messages).
    fn name(&self) -> &str;

    /// Clears `batch` and fills it with up to `batch.capacity()` received frames; returns how
    /// many. For a capture, zero means nothing more will arrive (its end); a live port
    /// ([`afpacket::AfPacketPort`]) never blocks and returns zero when nothing is waiting.
    fn recv_batch(&mut self, batch: &mut Batch) -> Result<usize, PortError>;

    /// Transmits one frame with its timestamp in nanoseconds since the epoch.
    fn send(&mut self, frame: &[u8], ts_ns: u64) -> Result<(), PortError>;

    /// Pushes buffered output to its destination.
    fn flush(&mut self) -> Result<(), PortError> {
        Ok(())
    }
}

impl<P: Port + ?Sized> Port for Box<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn recv_batch(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        (**self).recv_batch(batch)
    }
    fn send(&mut self, frame: &[u8], ts_ns: u64) -> Result<(), PortError> {
        (**self).send(frame, ts_ns)
    }
    fn flush(&mut self) -> Result<(), PortError> {
        (**self).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_reuses_buffers() {
        let mut b = Batch::with_capacity(2);
        assert!(b.push(&[1, 2, 3], 10));
        assert!(b.push(&[4], 20));
        assert!(!b.push(&[5], 30));
        assert_eq!(b.len(), 2);
        let p = b.get(0).unwrap().0.data().as_ptr();
        assert_eq!(
            b.iter()
                .map(|(p, t)| (p.data().to_vec(), t))
                .collect::<Vec<_>>(),
            vec![(vec![1, 2, 3], 10), (vec![4], 20)]
        );
        b.clear();
        assert!(b.is_empty());
        assert!(b.push(&[9, 9], 40));
        assert_eq!(b.get(0).unwrap().0.data().as_ptr(), p);
        assert!(b.get(1).is_none());
    }
}
