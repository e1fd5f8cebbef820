//! Pcap file ports: a streaming reader of legacy pcap (both byte orders, microsecond and
//! nanosecond timestamps) and pcapng, and a writer of legacy pcap that tcpdump and Wireshark
//! open. Only the Ethernet link type is accepted.
//!
//! Timestamps are nanoseconds since the epoch everywhere. The reader keeps a fixed-size
//! window of the file (growing only for a record larger than the window), so captures of
//! any size stream in constant memory.

use super::{Batch, Port, PortError};
use crate::packet::PacketBuf;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{LegacyPcapReader, Linktype, PcapBlockOwned, PcapError, PcapNGReader};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Initial size of the reader's window into the file.
const READ_WINDOW: usize = 1 << 16;
/// Largest window the reader grows to for one record.
const MAX_WINDOW: usize = 1 << 24;
/// Snapshot length written in pcap headers (tcpdump's default).
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// Link type of Ethernet captures.
pub const LINKTYPE_ETHERNET: i32 = 1;

/// Timestamp precision of a written capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Microseconds (magic 0xa1b2c3d4), what most tools write.
    #[default]
    Micro,
    /// Nanoseconds (magic 0xa1b23c4d).
    Nano,
}

/// One pcapng interface: its link type and timestamp units.
#[derive(Debug, Clone, Copy)]
struct Iface {
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp.
    offset: i64,
}

/// Parsing state that outlives a block borrowed from the reader's window.
#[derive(Debug)]
struct State {
    path: PathBuf,
    /// Legacy pcap: nanosecond timestamps.
    nanos: bool,
    /// pcapng: interfaces of the current section.
    ifaces: Vec<Iface>,
    /// Packets delivered so far.
    packets: u64,
    /// Timestamp of the last packet (simple packet blocks have none and reuse it).
    last_ts: u64,
}

/// The byte stream a reader parses.
type Source = Box<dyn Read + Send>;

/// First four bytes of a pcapng file (the section header block type).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// The format-specific streaming parser (kept concrete so the reader is `Send`).
enum Inner {
    Legacy(LegacyPcapReader<Source>),
    Ng(PcapNGReader<Source>),
}

impl Inner {
    fn it(&mut self) -> &mut dyn PcapReaderIterator {
        match self {
            Inner::Legacy(r) => r,
            Inner::Ng(r) => r,
        }
    }
}

/// Reads a legacy pcap or pcapng capture of Ethernet frames.
pub struct PcapReader {
    inner: Inner,
    st: State,
    window: usize,
}

impl core::fmt::Debug for PcapReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PcapReader")
            .field("state", &self.st)
            .finish()
    }
}

fn to_ns(sec: u64, frac: u64, units_per_sec: u64) -> u64 {
    let frac_ns = (frac as u128 * 1_000_000_000 / units_per_sec.max(1) as u128) as u64;
    sec.saturating_mul(1_000_000_000).saturating_add(frac_ns)
}

/// Handles one block; returns the timestamp when it delivered a packet into `buf`.
fn handle(
    st: &mut State,
    block: PcapBlockOwned<'_>,
    buf: &mut PacketBuf,
) -> Result<Option<u64>, PortError> {
    let linktype_err = |st: &State, lt: Linktype| PortError::LinkType {
        path: st.path.clone(),
        linktype: lt.0,
    };
    match block {
        PcapBlockOwned::LegacyHeader(h) => {
            if h.network != Linktype::ETHERNET {
                return Err(linktype_err(st, h.network));
            }
            st.nanos = h.is_nanosecond_precision();
            Ok(None)
        }
        PcapBlockOwned::Legacy(b) => {
            let units = if st.nanos { 1_000_000_000 } else { 1_000_000 };
            let ts = to_ns(b.ts_sec as u64, b.ts_usec as u64, units);
            let caplen = (b.caplen as usize).min(b.data.len());
            buf.load(&b.data[..caplen]);
            Ok(Some(ts))
        }
        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
            st.ifaces.clear();
            Ok(None)
        }
        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
            if idb.linktype != Linktype::ETHERNET {
                return Err(linktype_err(st, idb.linktype));
            }
            let resolution = idb.ts_resolution().ok_or_else(|| PortError::Malformed {
                path: st.path.clone(),
                packet: st.packets,
                reason: format!("invalid if_tsresol {:#x}", idb.if_tsresol),
            })?;
            st.ifaces.push(Iface {
                resolution,
                offset: idb.ts_offset(),
            });
            Ok(None)
        }
        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
            let iface = *st
                .ifaces
                .get(epb.if_id as usize)
                .ok_or_else(|| PortError::Malformed {
                    path: st.path.clone(),
                    packet: st.packets,
                    reason: format!("packet on undeclared interface {}", epb.if_id),
                })?;
            let raw = (epb.ts_high as u64) << 32 | epb.ts_low as u64;
            let sec = raw / iface.resolution;
            let sec = (sec as i64).saturating_add(iface.offset).max(0) as u64;
            let ts = to_ns(sec, raw % iface.resolution, iface.resolution);
            buf.load(epb.packet_data());
            Ok(Some(ts))
        }
        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
            if st.ifaces.is_empty() {
                return Err(PortError::Malformed {
                    path: st.path.clone(),
                    packet: st.packets,
                    reason: "simple packet block before any interface".into(),
                });
            }
            buf.load(spb.packet_data());
            Ok(Some(st.last_ts))
        }
        // Name resolution, statistics, custom and unknown blocks carry no packets.
        PcapBlockOwned::NG(_) => Ok(None),
    }
}

impl PcapReader {
    /// Opens a capture file.
    pub fn open(path: impl AsRef<Path>) -> Result<PcapReader, PortError> {
        let path = path.as_ref().to_path_buf();
        let f = File::open(&path).map_err(|source| PortError::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_reader(f, path)
    }

    /// Reads a capture from any byte stream; `name` is used in error messages.
    pub fn from_reader(
        mut r: impl Read + Send + 'static,
        name: impl Into<PathBuf>,
    ) -> Result<PcapReader, PortError> {
        let path = name.into();
        // Read the beginning (the parser's first read must hold the whole file header), look
        // at the magic number, then hand the stream, prefix included, to the parser.
        let mut prefix = vec![0u8; READ_WINDOW / 2];
        let mut got = 0;
        while got < prefix.len() {
            match r.read(&mut prefix[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => return Err(PortError::Io { path, source }),
            }
        }
        prefix.truncate(got);
        let is_ng = prefix.starts_with(&PCAPNG_MAGIC);
        let src: Source = Box::new(std::io::Cursor::new(prefix).chain(r));
        let inner = if is_ng {
            PcapNGReader::new(READ_WINDOW, src).map(Inner::Ng)
        } else {
            LegacyPcapReader::new(READ_WINDOW, src).map(Inner::Legacy)
        };
        let inner = match inner {
            Ok(i) => i,
            Err(PcapError::ReadError) => {
                return Err(PortError::Io {
                    path,
                    source: std::io::Error::other("read failed"),
                })
            }
            Err(_) => return Err(PortError::NotPcap { path }),
        };
        let mut rd = PcapReader {
            inner,
            st: State {
                path,
                nanos: false,
                ifaces: Vec::new(),
                packets: 0,
                last_ts: 0,
            },
            window: READ_WINDOW,
        };
        // Validate the header (link type) before the first packet is asked for.
        rd.prime()?;
        Ok(rd)
    }

    /// Processes leading non-packet blocks so header errors surface at open time.
    fn prime(&mut self) -> Result<(), PortError> {
        loop {
            let (off, is_data) = match self.inner.it().next() {
                Ok((off, block)) => {
                    let is_data = matches!(
                        block,
                        PcapBlockOwned::Legacy(_)
                            | PcapBlockOwned::NG(Block::EnhancedPacket(_))
                            | PcapBlockOwned::NG(Block::SimplePacket(_))
                    );
                    if !is_data {
                        let mut scratch = PacketBuf::with_capacity(0);
                        handle(&mut self.st, block, &mut scratch)?;
                    }
                    (off, is_data)
                }
                Err(_) => return Ok(()),
            };
            if is_data {
                return Ok(());
            }
            self.inner.it().consume(off);
        }
    }

    /// Packets delivered so far.
    pub fn packets_read(&self) -> u64 {
        self.st.packets
    }

    /// Reads the next frame into `buf`; returns its timestamp (ns), or `None` at the end.
    pub fn next_into(&mut self, buf: &mut PacketBuf) -> Result<Option<u64>, PortError> {
        loop {
            let (off, out) = match self.inner.it().next() {
                Ok((off, block)) => (off, handle(&mut self.st, block, buf)),
                Err(PcapError::Eof) => return Ok(None),
                Err(PcapError::Incomplete(_)) => {
                    self.refill()?;
                    continue;
                }
                Err(PcapError::BufferTooSmall) => {
                    if self.window >= MAX_WINDOW {
                        return Err(self.malformed("record larger than 16 MiB".into()));
                    }
                    self.window *= 2;
                    self.inner.it().grow(self.window);
                    self.refill()?;
                    continue;
                }
                Err(PcapError::UnexpectedEof) => {
                    return Err(PortError::Truncated {
                        path: self.st.path.clone(),
                        packet: self.st.packets,
                    })
                }
                Err(e) => {
                    let reason = format!("{e}");
                    return Err(self.malformed(reason));
                }
            };
            self.inner.it().consume(off);
            if let Some(ts) = out? {
                self.st.packets += 1;
                self.st.last_ts = ts;
                return Ok(Some(ts));
            }
        }
    }

    fn refill(&mut self) -> Result<(), PortError> {
        let path = self.st.path.clone();
        self.inner.it().refill().map_err(|_| PortError::Io {
            path,
            source: std::io::Error::other("read failed"),
        })
    }

    fn malformed(&self, reason: String) -> PortError {
        PortError::Malformed {
            path: self.st.path.clone(),
            packet: self.st.packets,
            reason,
        }
    }

    /// Reads every remaining frame (convenience for tests and tools).
    pub fn read_all(&mut self) -> Result<Vec<(u64, Vec<u8>)>, PortError> {
        let mut out = Vec::new();
        let mut buf = PacketBuf::new();
        while let Some(ts) = self.next_into(&mut buf)? {
            out.push((ts, buf.data().to_vec()));
        }
        Ok(out)
    }
}

impl Port for PcapReader {
    fn name(&self) -> &str {
        self.st.path.to_str().unwrap_or("pcap")
    }
    fn recv_batch(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        batch.clear();
        while let Some(slot) = batch.slot() {
            match self.next_into(slot)? {
                Some(ts) => batch.commit(ts),
                None => break,
            }
        }
        Ok(batch.len())
    }
    fn send(&mut self, _frame: &[u8], _ts_ns: u64) -> Result<(), PortError> {
        Err(PortError::NotTransmitting(self.name().to_string()))
    }
}

/// Writes a legacy pcap capture of Ethernet frames (little-endian, tcpdump's layout).
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    path: PathBuf,
    precision: Precision,
    snaplen: u32,
    packets: u64,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (or truncates) a capture file with microsecond timestamps.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, PortError> {
        let path = path.as_ref().to_path_buf();
        let f = File::create(&path).map_err(|source| PortError::Io {
            path: path.clone(),
            source,
        })?;
        Self::with_options(BufWriter::new(f), path, Precision::Micro, DEFAULT_SNAPLEN)
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes a capture with microsecond timestamps to `out` (`name` is used in errors).
    pub fn new(out: W, name: impl Into<PathBuf>) -> Result<Self, PortError> {
        Self::with_options(out, name, Precision::Micro, DEFAULT_SNAPLEN)
    }

    /// Writes a capture with the given timestamp precision and snapshot length.
    pub fn with_options(
        out: W,
        name: impl Into<PathBuf>,
        precision: Precision,
        snaplen: u32,
    ) -> Result<Self, PortError> {
        let mut w = PcapWriter {
            out,
            path: name.into(),
            precision,
            snaplen,
            packets: 0,
        };
        let magic: u32 = match precision {
            Precision::Micro => 0xa1b2_c3d4,
            Precision::Nano => 0xa1b2_3c4d,
        };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&magic.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs are zero.
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&(LINKTYPE_ETHERNET as u32).to_le_bytes());
        w.put(&h)?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<(), PortError> {
        self.out.write_all(b).map_err(|source| PortError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Appends one frame (cut to the snapshot length) received at `ts_ns`.
    pub fn write(&mut self, frame: &[u8], ts_ns: u64) -> Result<(), PortError> {
        let sec = (ts_ns / 1_000_000_000) as u32;
        let frac = match self.precision {
            Precision::Micro => (ts_ns % 1_000_000_000) / 1000,
            Precision::Nano => ts_ns % 1_000_000_000,
        } as u32;
        let caplen = frame.len().min(self.snaplen as usize);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&sec.to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&(caplen as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.put(&h)?;
        self.put(&frame[..caplen])?;
        self.packets += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn packets_written(&self) -> u64 {
        self.packets
    }

    /// Flushes buffered output.
    pub fn flush(&mut self) -> Result<(), PortError> {
        self.out.flush().map_err(|source| PortError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> Result<W, PortError> {
        self.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Port for PcapWriter<W> {
    fn name(&self) -> &str {
        self.path.to_str().unwrap_or("pcap")
    }
    fn recv_batch(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        batch.clear();
        Ok(0)
    }
    fn send(&mut self, frame: &[u8], ts_ns: u64) -> Result<(), PortError> {
        self.write(frame, ts_ns)
    }
    fn flush(&mut self) -> Result<(), PortError> {
        PcapWriter::flush(self)
    }
}

/// A switch port backed by capture files: frames are received from an input capture (if
/// any) and transmitted into an output capture (if any, created on the first frame so that
/// ports that never transmit leave no file).
#[derive(Debug)]
pub struct PcapPort {
    name: String,
    rx: Option<PcapReader>,
    tx_path: Option<PathBuf>,
    tx: Option<PcapWriter<BufWriter<File>>>,
}

impl PcapPort {
    /// A port named `name` reading `input` and writing `output`.
    pub fn new(
        name: impl Into<String>,
        input: Option<&Path>,
        output: Option<&Path>,
    ) -> Result<PcapPort, PortError> {
        let rx = input.map(PcapReader::open).transpose()?;
        Ok(PcapPort {
            name: name.into(),
            rx,
            tx_path: output.map(Path::to_path_buf),
            tx: None,
        })
    }

    /// Frames transmitted so far.
    pub fn packets_written(&self) -> u64 {
        self.tx.as_ref().map_or(0, |w| w.packets_written())
    }
}

impl Port for PcapPort {
    fn name(&self) -> &str {
        &self.name
    }
    fn recv_batch(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        match &mut self.rx {
            Some(r) => r.recv_batch(batch),
            None => {
                batch.clear();
                Ok(0)
            }
        }
    }
    fn send(&mut self, frame: &[u8], ts_ns: u64) -> Result<(), PortError> {
        if self.tx.is_none() {
            let p = self
                .tx_path
                .as_ref()
                .ok_or_else(|| PortError::NotTransmitting(self.name.clone()))?;
            self.tx = Some(PcapWriter::create(p)?);
        }
        match &mut self.tx {
            Some(w) => w.write(frame, ts_ns),
            None => Err(PortError::NotTransmitting(self.name.clone())),
        }
    }
    fn flush(&mut self) -> Result<(), PortError> {
        match &mut self.tx {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn frames() -> Vec<(u64, Vec<u8>)> {
        vec![
            (1_700_000_000_123_456_000, vec![0xaa; 60]),
            (1_700_000_001_000_001_000, (0..=255).collect()),
            (1_700_000_002_999_999_000, vec![1; 14]),
        ]
    }

    fn written(p: Precision) -> Vec<u8> {
        let mut w = PcapWriter::with_options(Vec::new(), "mem", p, DEFAULT_SNAPLEN).unwrap();
        for (ts, f) in frames() {
            w.write(&f, ts).unwrap();
        }
        w.into_inner().unwrap()
    }

    #[test]
    fn pcap_port_reads_input_and_creates_output_lazily() {
        let dir = std::env::temp_dir().join(format!("bpfswitch-pcapport-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.pcap");
        let output = dir.join("out.pcap");
        let idle = dir.join("idle.pcap");
        std::fs::write(&input, written(Precision::Micro)).unwrap();
        let mut p = PcapPort::new("p1", Some(&input), Some(&output)).unwrap();
        let mut q = PcapPort::new("p2", None, Some(&idle)).unwrap();
        let mut b = Batch::new();
        assert_eq!(p.recv_batch(&mut b).unwrap(), 3);
        assert_eq!(q.recv_batch(&mut b).unwrap(), 0);
        assert!(!output.exists(), "no file before the first frame");
        for (ts, f) in frames() {
            p.send(&f, ts).unwrap();
        }
        p.flush().unwrap();
        q.flush().unwrap();
        assert_eq!(p.packets_written(), 3);
        assert!(
            !idle.exists(),
            "a port that never transmitted leaves no file"
        );
        let back = PcapReader::open(&output).unwrap().read_all().unwrap();
        assert_eq!(back, frames());
        let none = PcapPort::new("p3", None, None)
            .unwrap()
            .send(&[0; 14], 0)
            .unwrap_err();
        assert!(matches!(none, PortError::NotTransmitting(_)));
        let missing = PcapPort::new("p4", Some(&dir.join("nope.pcap")), None).unwrap_err();
        assert!(
            matches!(missing, PortError::Io { .. }) && missing.to_string().contains("nope.pcap")
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reader_is_send() {
        fn send<T: Send>() {}
        send::<PcapReader>();
        send::<PcapPort>();
    }

    #[test]
    fn writer_layout_matches_tcpdump() {
        let b = written(Precision::Micro);
        assert_eq!(
            &b[..24],
            &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0]
        );
        assert_eq!(&b[24..28], &1_700_000_000u32.to_le_bytes());
        assert_eq!(&b[28..32], &123_456u32.to_le_bytes());
        assert_eq!(b.len(), 24 + 3 * 16 + 60 + 256 + 14);
    }

    #[test]
    fn roundtrip_micro_and_nano() {
        for p in [Precision::Micro, Precision::Nano] {
            let b = written(p);
            let got = PcapReader::from_reader(Cursor::new(b), "mem")
                .unwrap()
                .read_all()
                .unwrap();
            assert_eq!(got, frames(), "{p:?}");
        }
    }

    #[test]
    fn nanosecond_precision_is_kept() {
        let mut w =
            PcapWriter::with_options(Vec::new(), "mem", Precision::Nano, DEFAULT_SNAPLEN).unwrap();
        w.write(&[0; 20], 5_000_000_007).unwrap();
        let b = w.into_inner().unwrap();
        let got = PcapReader::from_reader(Cursor::new(b), "mem")
            .unwrap()
            .read_all()
            .unwrap();
        assert_eq!(got[0].0, 5_000_000_007);
    }

    /// Converts a little-endian legacy capture to big-endian byte order.
    fn to_big_endian(le: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let sw32 = |b: &[u8]| [b[3], b[2], b[1], b[0]];
        out.extend_from_slice(&sw32(&le[0..4]));
        out.extend_from_slice(&[le[5], le[4], le[7], le[6]]);
        for i in 0..4 {
            out.extend_from_slice(&sw32(&le[8 + 4 * i..12 + 4 * i]));
        }
        let mut at = 24;
        while at < le.len() {
            for i in 0..4 {
                out.extend_from_slice(&sw32(&le[at + 4 * i..at + 4 + 4 * i]));
            }
            let caplen = u32::from_le_bytes(le[at + 8..at + 12].try_into().unwrap()) as usize;
            out.extend_from_slice(&le[at + 16..at + 16 + caplen]);
            at += 16 + caplen;
        }
        out
    }

    #[test]
    fn big_endian_legacy() {
        for p in [Precision::Micro, Precision::Nano] {
            let be = to_big_endian(&written(p));
            assert_eq!(&be[..2], &[0xa1, 0xb2]);
            let got = PcapReader::from_reader(Cursor::new(be), "mem")
                .unwrap()
                .read_all()
                .unwrap();
            assert_eq!(got, frames(), "{p:?}");
        }
    }

    fn ng_block(kind: u32, body: &[u8]) -> Vec<u8> {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(body);
        b.extend(std::iter::repeat_n(0, pad));
        b.extend_from_slice(&len.to_le_bytes());
        b
    }

    /// A pcapng file: one section, an interface with `tsresol`, the frames as EPBs, then one
    /// simple packet block.
    fn pcapng(linktype: u16, tsresol: Option<u8>, frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let mut out = ng_block(0x0a0d_0d0a, &shb);
        let mut idb = Vec::new();
        idb.extend_from_slice(&linktype.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        if let Some(r) = tsresol {
            idb.extend_from_slice(&9u16.to_le_bytes());
            idb.extend_from_slice(&1u16.to_le_bytes());
            idb.extend_from_slice(&[r, 0, 0, 0]);
            idb.extend_from_slice(&[0, 0, 0, 0]);
        }
        out.extend(ng_block(1, &idb));
        let units = match tsresol {
            None => 1_000_000u64,
            Some(r) => 10u64.pow(r as u32),
        };
        for (ts, f) in frames {
            let t = (*ts as u128 * units as u128 / 1_000_000_000) as u64;
            let mut epb = Vec::new();
            epb.extend_from_slice(&0u32.to_le_bytes());
            epb.extend_from_slice(&((t >> 32) as u32).to_le_bytes());
            epb.extend_from_slice(&(t as u32).to_le_bytes());
            epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
            epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
            epb.extend_from_slice(f);
            epb.extend(std::iter::repeat_n(0, (4 - f.len() % 4) % 4));
            out.extend(ng_block(6, &epb));
        }
        let mut spb = Vec::new();
        spb.extend_from_slice(&3u32.to_le_bytes());
        spb.extend_from_slice(&[7, 7, 7, 0]);
        out.extend(ng_block(3, &spb));
        out
    }

    #[test]
    fn pcapng_micro_and_nano() {
        for res in [None, Some(9)] {
            let b = pcapng(1, res, &frames());
            let got = PcapReader::from_reader(Cursor::new(b), "ng")
                .unwrap()
                .read_all()
                .unwrap();
            assert_eq!(&got[..3], &frames()[..], "{res:?}");
            // The simple packet block has no timestamp: it reuses the previous one.
            assert_eq!(got[3], (frames()[2].0, vec![7, 7, 7]));
        }
    }

    #[test]
    fn non_ethernet_is_refused() {
        let b = pcapng(113, None, &frames());
        let e = PcapReader::from_reader(Cursor::new(b), "sll.pcapng").unwrap_err();
        assert!(
            matches!(e, PortError::LinkType { linktype: 113, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("only Ethernet"), "{e}");
        let mut legacy = written(Precision::Micro);
        legacy[20] = 101;
        let e = PcapReader::from_reader(Cursor::new(legacy), "raw.pcap").unwrap_err();
        assert!(
            matches!(e, PortError::LinkType { linktype: 101, .. }),
            "{e}"
        );
    }

    #[test]
    fn garbage_and_truncation() {
        let e = PcapReader::from_reader(Cursor::new(b"hello world, not a capture".to_vec()), "x")
            .unwrap_err();
        assert!(matches!(e, PortError::NotPcap { .. }), "{e}");
        let b = written(Precision::Micro);
        let mut r = PcapReader::from_reader(Cursor::new(b[..b.len() - 5].to_vec()), "t").unwrap();
        let e = r.read_all().unwrap_err();
        assert!(matches!(e, PortError::Truncated { packet: 2, .. }), "{e}");
    }

    #[test]
    fn large_records_grow_the_window() {
        let big = vec![0x5a; 200_000];
        let mut w = PcapWriter::new(Vec::new(), "mem").unwrap();
        for i in 0..5 {
            w.write(&big, i).unwrap();
        }
        let b = w.into_inner().unwrap();
        let got = PcapReader::from_reader(Cursor::new(b), "mem")
            .unwrap()
            .read_all()
            .unwrap();
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|(_, f)| f == &big));
    }

    #[test]
    fn many_packets_stream_through_batches() {
        let mut w = PcapWriter::new(Vec::new(), "mem").unwrap();
        for i in 0..1000u64 {
            w.write(&i.to_be_bytes().repeat(8), i * 1000).unwrap();
        }
        let b = w.into_inner().unwrap();
        let mut r = PcapReader::from_reader(Cursor::new(b), "mem").unwrap();
        let mut batch = Batch::new();
        let mut n = 0u64;
        loop {
            let got = r.recv_batch(&mut batch).unwrap();
            if got == 0 {
                break;
            }
            for (p, ts) in batch.iter() {
                assert_eq!(ts, n * 1000);
                assert_eq!(&p.data()[..8], &n.to_be_bytes());
                n += 1;
            }
        }
        assert_eq!(n, 1000);
        assert_eq!(r.packets_read(), 1000);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
        /// Damaged captures (legacy and pcapng) yield packets or an error, never a panic or a hang.
        #[test]
        fn damaged_captures_never_panic(ng in proptest::prelude::any::<bool>(),
                                        flips in proptest::collection::vec((0usize..2000, proptest::prelude::any::<u8>()), 0..6),
                                        cut in proptest::option::of(0usize..2000)) {
            let mut b = if ng { pcapng(1, Some(9), &frames()) } else { written(Precision::Nano) };
            for (at, x) in flips {
                let at = at % b.len();
                b[at] ^= x;
            }
            if let Some(c) = cut {
                b.truncate(c % (b.len() + 1));
            }
            if let Ok(mut r) = PcapReader::from_reader(Cursor::new(b), "fuzz") {
                let mut buf = PacketBuf::new();
                for _ in 0..1000 {
                    match r.next_into(&mut buf) {
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
    }
}
