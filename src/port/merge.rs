//! Merges several captures into one stream in timestamp order, each frame tagged with the
//! port it enters on (what `bpfswitch replay --in 1=a.pcap --in 2=b.pcap` needs).
//!
//! Frames move by swapping buffers with the caller, so merging copies nothing and allocates
//! nothing per frame. Frames with equal timestamps come out in input order, and each
//! capture's own order is kept even when its timestamps go backwards.

use super::pcap::PcapReader;
use super::PortError;
use crate::packet::PacketBuf;

/// One input: its port number, reader, and the frame waiting to come out.
#[derive(Debug)]
struct Input {
    port: u32,
    reader: PcapReader,
    head: Option<u64>,
    buf: PacketBuf,
}

/// A timestamp-ordered merge of captures. See the module documentation.
#[derive(Debug)]
pub struct Merger {
    inputs: Vec<Input>,
}

impl Merger {
    /// Merges `inputs` (port number, capture); reads the first frame of each.
    pub fn new(inputs: impl IntoIterator<Item = (u32, PcapReader)>) -> Result<Merger, PortError> {
        let mut m = Merger { inputs: Vec::new() };
        for (port, mut reader) in inputs {
            let mut buf = PacketBuf::new();
            let head = reader.next_into(&mut buf)?;
            m.inputs.push(Input {
                port,
                reader,
                head,
                buf,
            });
        }
        Ok(m)
    }

    /// Moves the earliest waiting frame into `buf` and returns its port and timestamp, or
    /// `None` when every capture is exhausted. `buf`'s old storage is reused for reading.
    pub fn next_into(&mut self, buf: &mut PacketBuf) -> Result<Option<(u32, u64)>, PortError> {
        let mut best: Option<(usize, u64)> = None;
        for (i, inp) in self.inputs.iter().enumerate() {
            if let Some(ts) = inp.head {
                if best.is_none_or(|(_, b)| ts < b) {
                    best = Some((i, ts));
                }
            }
        }
        let Some((i, ts)) = best else { return Ok(None) };
        let inp = &mut self.inputs[i];
        std::mem::swap(buf, &mut inp.buf);
        inp.head = inp.reader.next_into(&mut inp.buf)?;
        Ok(Some((inp.port, ts)))
    }

    /// Frames read so far from each input, by port.
    pub fn packets_read(&self) -> Vec<(u32, u64)> {
        self.inputs
            .iter()
            .map(|i| (i.port, i.reader.packets_read()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::pcap::PcapWriter;
    use std::io::Cursor;

    fn capture(frames: &[(u64, u8)]) -> PcapReader {
        let mut w = PcapWriter::new(Vec::new(), "mem").unwrap();
        for (ts, b) in frames {
            w.write(&[*b; 20], *ts * 1000).unwrap();
        }
        PcapReader::from_reader(Cursor::new(w.into_inner().unwrap()), "mem").unwrap()
    }

    #[test]
    fn merges_in_timestamp_order_stably() {
        let a = capture(&[(1, 1), (5, 2), (5, 3), (9, 4)]);
        let b = capture(&[(0, 10), (5, 11), (7, 12)]);
        let c = capture(&[]);
        let mut m = Merger::new([(1, a), (2, b), (3, c)]).unwrap();
        let mut buf = PacketBuf::new();
        let mut out = Vec::new();
        while let Some((port, ts)) = m.next_into(&mut buf).unwrap() {
            out.push((port, ts / 1000, buf.data()[0]));
        }
        assert_eq!(
            out,
            vec![
                (2, 0, 10),
                (1, 1, 1),
                (1, 5, 2),
                (1, 5, 3),
                (2, 5, 11),
                (2, 7, 12),
                (1, 9, 4)
            ]
        );
        assert_eq!(m.packets_read(), vec![(1, 4), (2, 3), (3, 0)]);
    }

    #[test]
    fn backwards_timestamps_keep_capture_order() {
        let a = capture(&[(5, 1), (3, 2), (4, 3)]);
        let mut m = Merger::new([(7, a)]).unwrap();
        let mut buf = PacketBuf::new();
        let mut out = Vec::new();
        while let Some((_, ts)) = m.next_into(&mut buf).unwrap() {
            out.push((ts / 1000, buf.data()[0]));
        }
        assert_eq!(out, vec![(5, 1), (3, 2), (4, 3)]);
    }
}
