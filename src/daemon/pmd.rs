//! Packet-processing threads of the running switch (Open vSwitch's PMD threads).
//!
//! Each thread owns a [`Worker`] (its caches and counters) and one AF_PACKET socket per
//! port. It receives a batch from each port in turn and runs it through
//! [`Worker::process_batch`], transmitting on its own sockets; while traffic flows it does
//! not sleep, and when every port is idle it sleeps in `poll(2)` on the sockets and on an
//! eventfd the control thread writes to. Between batches it answers the control thread's
//! [`WorkerMsg`]s (counters, megaflows, crediting rule counters), since only the owning
//! thread may touch a worker's caches, and every [`MAINTAIN_INTERVAL_NS`] it runs
//! [`Worker::maintain`] (credit rules, expire timed-out rules, revalidate).

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use ofproto_bridge::PortNo;

use crate::dpif::{Datapath, DpStats, TxSink, Worker};
use crate::packet::PacketBuf;
use crate::port::afpacket::{monotonic_ns, AfPacketPort, AfPacketStats};
use crate::port::{Batch, Port};

/// How often a worker runs [`Worker::maintain`] (and the longest it sleeps in `poll`).
pub const MAINTAIN_INTERVAL_NS: u64 = 100_000_000;

/// Shortest interval between two log lines about one port's socket errors.
const LOG_INTERVAL_NS: u64 = 10_000_000_000;

/// A request from the control thread to a worker.
pub enum WorkerMsg {
    /// Credit rules with what the caches counted (so `dump-flows` is current), then reply.
    Sync(Sender<()>),
    /// The worker's counters.
    Stats(Sender<WorkerStats>),
    /// The worker's megaflows, one `dpctl/dump-flows` line each.
    Megaflows(Sender<Vec<String>>),
}

/// A worker's counters.
pub struct WorkerStats {
    /// The datapath's counters.
    pub dp: DpStats,
    /// The sockets' counters, by port.
    pub sockets: BTreeMap<PortNo, AfPacketStats>,
    /// Megaflows installed.
    pub megaflows: usize,
}

/// An eventfd: the control thread wakes a sleeping worker with it.
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new non-blocking eventfd.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: plain eventfd(2) call; the result is checked and owned below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Wakes the thread polling on it.
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. A full counter (EAGAIN) still wakes.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; EAGAIN when nothing was written.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

/// The ports of one worker, as the datapath's transmit sink.
struct Ports {
    ports: Vec<(PortNo, AfPacketPort)>,
    last_log_ns: Vec<u64>,
}

impl Ports {
    /// The index of port `port`; frames for the controller (none is ever connected) and
    /// unknown ports go nowhere (translation already counted them as drops).
    fn index(&self, port: PortNo) -> Option<usize> {
        self.ports.iter().position(|(no, _)| *no == port)
    }

    /// Sends `frame` on the `i`th port, logging a failure at most once an interval.
    fn send(&mut self, i: usize, frame: &[u8], ts_ns: u64) {
        let port = self.ports[i].0;
        if let Err(e) = self.ports[i].1.send(frame, ts_ns) {
            let now = monotonic_ns();
            if self.last_log_ns[i] == 0 || now - self.last_log_ns[i] >= LOG_INTERVAL_NS {
                self.last_log_ns[i] = now;
                eprintln!("bpfswitch: port {port}: {e} (further errors are counted in dump-ports)");
            }
        }
    }
}

impl TxSink for Ports {
    fn transmit(&mut self, port: PortNo, frame: &[u8], ts_ns: u64) {
        if let Some(i) = self.index(port) {
            self.send(i, frame, ts_ns);
        }
    }

    fn transmit_burst(&mut self, port: PortNo, pkts: &[PacketBuf], stamps: &[u64]) {
        if let Some(i) = self.index(port) {
            for (p, &ts) in pkts.iter().zip(stamps) {
                self.send(i, p.data(), ts);
            }
        }
    }
}

/// Runs worker `id` until `stop` is set: the body of a packet-processing thread. Returns
/// the worker's final counters.
pub fn run(
    dp: Arc<Datapath>,
    id: usize,
    ports: Vec<(PortNo, AfPacketPort)>,
    msgs: Receiver<WorkerMsg>,
    wake: Arc<EventFd>,
    stop: Arc<AtomicBool>,
) -> DpStats {
    let mut worker = dp.worker(id);
    let n = ports.len();
    let mut pollfds: Vec<libc::pollfd> = ports
        .iter()
        .map(|(_, p)| p.fd())
        .chain(std::iter::once(wake.0.as_raw_fd()))
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut ports = Ports {
        ports,
        last_log_ns: vec![0; n],
    };
    let mut rx_log_ns = vec![0u64; n];
    let mut batch = Batch::new();
    let mut last_maintain = monotonic_ns();
    worker.sync(last_maintain);
    while !stop.load(Ordering::Acquire) {
        let mut received = 0;
        for (i, last_log) in rx_log_ns.iter_mut().enumerate() {
            let no = ports.ports[i].0;
            match ports.ports[i].1.recv_batch(&mut batch) {
                Ok(0) => {}
                Ok(k) => {
                    received += k;
                    worker.process_batch(no, &mut batch, &mut ports);
                }
                Err(e) => {
                    let now = monotonic_ns();
                    if *last_log == 0 || now - *last_log >= LOG_INTERVAL_NS {
                        *last_log = now;
                        eprintln!("bpfswitch: port {no}: {e}");
                    }
                }
            }
        }
        while let Ok(m) = msgs.try_recv() {
            answer(&mut worker, &mut ports, m);
        }
        let now = monotonic_ns();
        if now.saturating_sub(last_maintain) >= MAINTAIN_INTERVAL_NS {
            worker.maintain(now);
            last_maintain = now;
        }
        if received == 0 {
            let left = MAINTAIN_INTERVAL_NS.saturating_sub(now.saturating_sub(last_maintain));
            let timeout = (left / 1_000_000).max(1) as libc::c_int;
            for p in pollfds.iter_mut() {
                p.revents = 0;
            }
            // SAFETY: `pollfds` is a live array of `pollfds.len()` pollfd structs.
            unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, timeout) };
            if pollfds[n].revents & libc::POLLIN != 0 {
                wake.drain();
            }
        }
    }
    // Credit the rules with the last packets so a final dump is complete.
    worker.sync(monotonic_ns());
    while let Ok(m) = msgs.try_recv() {
        answer(&mut worker, &mut ports, m);
    }
    worker.stats()
}

fn answer(worker: &mut Worker, ports: &mut Ports, m: WorkerMsg) {
    // A control connection that gave up waiting has dropped its receiver; nothing to do.
    match m {
        WorkerMsg::Sync(reply) => {
            worker.sync(monotonic_ns());
            let _ = reply.send(());
        }
        WorkerMsg::Stats(reply) => {
            let sockets = ports
                .ports
                .iter_mut()
                .map(|(no, p)| (*no, p.stats()))
                .collect();
            let _ = reply.send(WorkerStats {
                dp: worker.stats(),
                sockets,
                megaflows: worker.megaflow_count(),
            });
        }
        WorkerMsg::Megaflows(reply) => {
            let _ = reply.send(
                worker
                    .dump_megaflows()
                    .into_iter()
                    .map(|m| m.text)
                    .collect(),
            );
        }
    }
}
