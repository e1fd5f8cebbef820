//! A fault-injecting port wrapper for tests: failing receives and transmits, and truncated,
//! corrupted or lost frames, chosen by a seeded generator so failures reproduce.

use super::{Batch, Port, PortError};

/// Which faults to inject. Probabilities are per mille (0 = never, 1000 = always).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultConfig {
    /// Seed of the generator deciding which frames are hit.
    pub seed: u64,
    /// Fail `recv_batch` once this many frames have been received.
    pub rx_error_after: Option<u64>,
    /// Fail every `n`th `send` (the frame is not transmitted).
    pub tx_error_every: Option<u64>,
    /// Chance that a received frame is cut to a random shorter length.
    pub truncate_per_mille: u16,
    /// Chance that one random byte of a received frame is replaced.
    pub corrupt_per_mille: u16,
    /// Chance that a received frame is lost before the switch sees it.
    pub drop_per_mille: u16,
}

/// Counts of the faults injected so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Frames cut short.
    pub truncated: u64,
    /// Frames with a byte replaced.
    pub corrupted: u64,
    /// Frames lost.
    pub dropped: u64,
    /// Failed receives.
    pub rx_errors: u64,
    /// Failed transmits.
    pub tx_errors: u64,
}

/// Wraps a port and injects the faults of a [`FaultConfig`].
#[derive(Debug)]
pub struct FaultyPort<P: Port> {
    inner: P,
    cfg: FaultConfig,
    rng: u64,
    received: u64,
    sends: u64,
    stats: FaultStats,
    scratch: Batch,
}

impl<P: Port> FaultyPort<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, cfg: FaultConfig) -> FaultyPort<P> {
        FaultyPort {
            inner,
            cfg,
            rng: cfg.seed ^ 0x2545_f491_4f6c_dd1d,
            received: 0,
            sends: 0,
            stats: FaultStats::default(),
            scratch: Batch::new(),
        }
    }

    /// Faults injected so far.
    pub fn stats(&self) -> FaultStats {
        self.stats
    }

    /// The wrapped port.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The wrapped port, mutably.
    pub fn inner_mut(&mut self) -> &mut P {
        &mut self.inner
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn hit(&mut self, per_mille: u16) -> bool {
        per_mille > 0 && self.next() % 1000 < per_mille as u64
    }

    fn injected(&self, what: &'static str) -> PortError {
        PortError::Injected {
            port: self.inner.name().to_string(),
            what,
        }
    }
}

impl<P: Port> Port for FaultyPort<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn recv_batch(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        batch.clear();
        if let Some(n) = self.cfg.rx_error_after {
            if self.received >= n {
                self.stats.rx_errors += 1;
                return Err(self.injected("receive error"));
            }
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self.inner.recv_batch(&mut scratch);
        let got = match result {
            Ok(n) => n,
            Err(e) => {
                self.scratch = scratch;
                return Err(e);
            }
        };
        for i in 0..got {
            if self.hit(self.cfg.drop_per_mille) {
                self.stats.dropped += 1;
                continue;
            }
            let (trunc, corrupt) = (
                self.hit(self.cfg.truncate_per_mille),
                self.hit(self.cfg.corrupt_per_mille),
            );
            let (r1, r2, r3) = (self.next(), self.next(), self.next());
            let Some((src, ts)) = scratch.get(i) else {
                break;
            };
            let Some(slot) = batch.slot() else { break };
            slot.load(src.data());
            if trunc && !slot.is_empty() {
                slot.truncate((r1 % slot.len() as u64) as usize);
                self.stats.truncated += 1;
            }
            if corrupt && !slot.is_empty() {
                let at = (r2 % slot.len() as u64) as usize;
                slot.data_mut()[at] ^= (r3 as u8) | 1;
                self.stats.corrupted += 1;
            }
            batch.commit(ts);
        }
        self.received += got as u64;
        self.scratch = scratch;
        // An all-dropped batch must not look like the end of input.
        if batch.is_empty() && got > 0 {
            return self.recv_batch(batch);
        }
        Ok(batch.len())
    }

    fn send(&mut self, frame: &[u8], ts_ns: u64) -> Result<(), PortError> {
        self.sends += 1;
        if let Some(n) = self.cfg.tx_error_every {
            if n > 0 && self.sends.is_multiple_of(n) {
                self.stats.tx_errors += 1;
                return Err(self.injected("transmit error"));
            }
        }
        self.inner.send(frame, ts_ns)
    }

    fn flush(&mut self) -> Result<(), PortError> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::mem::MemPort;

    fn source(n: u64) -> MemPort {
        MemPort::with_rx("src", (0..n).map(|i| (i, vec![0x55; 64])))
    }

    fn drain(p: &mut impl Port) -> Result<Vec<(u64, Vec<u8>)>, PortError> {
        let mut b = Batch::new();
        let mut out = Vec::new();
        while p.recv_batch(&mut b)? > 0 {
            out.extend(b.iter().map(|(p, t)| (t, p.data().to_vec())));
        }
        Ok(out)
    }

    #[test]
    fn no_faults_is_transparent() {
        let mut p = FaultyPort::new(source(100), FaultConfig::default());
        assert_eq!(drain(&mut p).unwrap(), drain(&mut source(100)).unwrap());
        assert_eq!(p.stats(), FaultStats::default());
    }

    #[test]
    fn faults_are_counted_and_reproducible() {
        let cfg = FaultConfig {
            seed: 3,
            truncate_per_mille: 200,
            corrupt_per_mille: 200,
            drop_per_mille: 100,
            ..Default::default()
        };
        let mut a = FaultyPort::new(source(1000), cfg);
        let out = drain(&mut a).unwrap();
        let s = a.stats();
        assert_eq!(out.len() as u64, 1000 - s.dropped);
        assert!(
            s.dropped > 50 && s.truncated > 100 && s.corrupted > 100,
            "{s:?}"
        );
        // A truncated frame is always shorter than the 64 bytes sent.
        assert_eq!(
            out.iter().filter(|(_, f)| f.len() < 64).count() as u64,
            s.truncated
        );
        let mut b = FaultyPort::new(source(1000), cfg);
        assert_eq!(drain(&mut b).unwrap(), out);
    }

    #[test]
    fn rx_and_tx_errors() {
        let cfg = FaultConfig {
            rx_error_after: Some(40),
            tx_error_every: Some(3),
            ..Default::default()
        };
        let mut p = FaultyPort::new(source(100), cfg);
        let mut b = Batch::new();
        assert_eq!(p.recv_batch(&mut b).unwrap(), 32);
        assert_eq!(p.recv_batch(&mut b).unwrap(), 32);
        assert!(matches!(
            p.recv_batch(&mut b),
            Err(PortError::Injected { .. })
        ));
        let results: Vec<bool> = (0..6).map(|i| p.send(&[i], 0).is_ok()).collect();
        assert_eq!(results, vec![true, true, false, true, true, false]);
        assert_eq!(p.inner().tx().len(), 4);
        assert_eq!(p.stats().tx_errors, 2);
    }
}
