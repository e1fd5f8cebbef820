//! An in-memory port: frames queued for reception, transmitted frames collected.

use super::{Batch, Port, PortError};
use std::collections::VecDeque;

/// A port whose received frames come from a queue and whose transmitted frames are kept.
#[derive(Debug, Default, Clone)]
pub struct MemPort {
    name: String,
    rx: VecDeque<(u64, Vec<u8>)>,
    tx: Vec<(u64, Vec<u8>)>,
}

impl MemPort {
    /// An empty port.
    pub fn new(name: impl Into<String>) -> MemPort {
        MemPort {
            name: name.into(),
            ..Default::default()
        }
    }

    /// A port that will receive `frames` (timestamp in ns, bytes) in order.
    pub fn with_rx(
        name: impl Into<String>,
        frames: impl IntoIterator<Item = (u64, Vec<u8>)>,
    ) -> MemPort {
        MemPort {
            name: name.into(),
            rx: frames.into_iter().collect(),
            tx: Vec::new(),
        }
    }

    /// Queues a frame for reception.
    pub fn push_rx(&mut self, ts_ns: u64, frame: Vec<u8>) {
        self.rx.push_back((ts_ns, frame));
    }

    /// Frames still waiting to be received.
    pub fn rx_pending(&self) -> usize {
        self.rx.len()
    }

    /// Frames transmitted so far.
    pub fn tx(&self) -> &[(u64, Vec<u8>)] {
        &self.tx
    }

    /// Takes the transmitted frames, leaving none.
    pub fn take_tx(&mut self) -> Vec<(u64, Vec<u8>)> {
        std::mem::take(&mut self.tx)
    }
}

impl Port for MemPort {
    fn name(&self) -> &str {
        &self.name
    }
    fn recv_batch(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        batch.clear();
        while !batch.is_full() {
            match self.rx.pop_front() {
                Some((ts, f)) => {
                    batch.push(&f, ts);
                }
                None => break,
            }
        }
        Ok(batch.len())
    }
    fn send(&mut self, frame: &[u8], ts_ns: u64) -> Result<(), PortError> {
        self.tx.push((ts_ns, frame.to_vec()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_and_collect() {
        let mut p = MemPort::with_rx("m", (0..40u64).map(|i| (i, vec![i as u8; 3])));
        let mut b = Batch::new();
        assert_eq!(p.recv_batch(&mut b).unwrap(), 32);
        assert_eq!(p.recv_batch(&mut b).unwrap(), 8);
        assert_eq!(b.get(7).unwrap().1, 39);
        assert_eq!(p.recv_batch(&mut b).unwrap(), 0);
        p.send(&[1, 2], 5).unwrap();
        assert_eq!(p.take_tx(), vec![(5, vec![1, 2])]);
        assert!(p.tx().is_empty());
    }
}
