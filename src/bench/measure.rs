//! Running the scenarios: a datapath fed from a replay buffer (every packet copied into a
//! [`PacketBuf`] of a [`Batch`], as a NIC driver fills mbufs), warm-up, timed runs, counters.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ofproto_bridge::bridge::Reclassify;
use ofproto_bridge::PortNo;
use serde::Serialize;

use super::scenario::{Kind, Object, Scenario, Target, OBJECTS};
use super::traffic::{self, Replay, IN_PORT, OUT_PORT, SOURCE_PORTS};
use super::BenchError;
use crate::dpif::{Datapath, DpConfig, DpStats, TxSink, Worker};
use crate::ext::{ExecTier, Extension, ExtensionStats, LoadOptions};
use crate::packet::PacketBuf;
use crate::port::{Batch, MAX_BATCH};

/// How long and how often each variant of a scenario is measured.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// Measuring time of one run.
    pub duration: Duration,
    /// Timed runs per variant (the median and the spread are over these).
    pub runs: usize,
    /// Warm-up before the first timed run (besides at least two passes over the traffic).
    pub warmup: Duration,
    /// Workers of the `workers` scenario.
    pub workers: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            duration: Duration::from_millis(500),
            runs: 5,
            warmup: Duration::from_millis(300),
            workers: 2,
        }
    }
}

/// One timed run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RunSample {
    /// Packets processed (extension runs for `interp-vs-jit`).
    pub packets: u64,
    /// Wall-clock nanoseconds (the mean over the workers of a multi-worker run).
    pub ns: u64,
    /// Millions of packets (runs) per second, summed over workers.
    pub mpps: f64,
}

/// Counter deltas over the timed runs of a variant.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Counts {
    /// Packets received.
    pub rx: u64,
    /// Received packets transmitted at least once.
    pub forwarded: u64,
    /// Received packets dropped.
    pub dropped: u64,
    /// Frames the sink received.
    pub tx: u64,
    /// Lookups answered by the exact-match cache.
    pub emc_hits: u64,
    /// Lookups answered by the megaflow cache.
    pub megaflow_hits: u64,
    /// Lookups translated (upcalls).
    pub upcalls: u64,
    /// Passes after the first.
    pub recirculations: u64,
    /// Recirculations the verifier's write sets avoided (at translation).
    pub recircs_avoided: u64,
    /// Filter runs.
    pub filter_runs: u64,
    /// Filter results reused from a megaflow instead of running the filter.
    pub filter_cached: u64,
    /// Extension action and port-hook runs.
    pub ext_runs: u64,
    /// Megaflows installed.
    pub megaflows_installed: u64,
}

impl Counts {
    fn of(s: &DpStats, tx: u64) -> Counts {
        Counts {
            rx: s.rx(),
            forwarded: s.forwarded(),
            dropped: s.dropped(),
            tx,
            emc_hits: s.emc_hits,
            megaflow_hits: s.megaflow_hits,
            upcalls: s.upcalls,
            recirculations: s.recirculations,
            recircs_avoided: s.recircs_avoided,
            filter_runs: s.filter_runs,
            filter_cached: s.filter_cached,
            ext_runs: s.ext_runs,
            megaflows_installed: s.megaflows_installed,
        }
    }
    fn sub(&self, o: &Counts) -> Counts {
        Counts {
            rx: self.rx - o.rx,
            forwarded: self.forwarded - o.forwarded,
            dropped: self.dropped - o.dropped,
            tx: self.tx - o.tx,
            emc_hits: self.emc_hits - o.emc_hits,
            megaflow_hits: self.megaflow_hits - o.megaflow_hits,
            upcalls: self.upcalls - o.upcalls,
            recirculations: self.recirculations - o.recirculations,
            recircs_avoided: self.recircs_avoided - o.recircs_avoided,
            filter_runs: self.filter_runs - o.filter_runs,
            filter_cached: self.filter_cached - o.filter_cached,
            ext_runs: self.ext_runs - o.ext_runs,
            megaflows_installed: self.megaflows_installed - o.megaflows_installed,
        }
    }
    fn add(&mut self, o: &Counts) {
        self.rx += o.rx;
        self.forwarded += o.forwarded;
        self.dropped += o.dropped;
        self.tx += o.tx;
        self.emc_hits += o.emc_hits;
        self.megaflow_hits += o.megaflow_hits;
        self.upcalls += o.upcalls;
        self.recirculations += o.recirculations;
        self.recircs_avoided += o.recircs_avoided;
        self.filter_runs += o.filter_runs;
        self.filter_cached += o.filter_cached;
        self.ext_runs += o.ext_runs;
        self.megaflows_installed += o.megaflows_installed;
    }
    /// Cache lookups (first passes and recirculations).
    pub fn lookups(&self) -> u64 {
        self.emc_hits + self.megaflow_hits + self.upcalls
    }
}

/// One measured configuration of a scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Variant {
    /// What distinguishes it (`reclassify=verifier`, `2 workers`, `ttl_dec/jit`...).
    pub label: String,
    /// The timed runs.
    pub runs: Vec<RunSample>,
    /// Median of the runs' Mpps.
    pub median_mpps: f64,
    /// Slowest run.
    pub min_mpps: f64,
    /// Fastest run.
    pub max_mpps: f64,
    /// Largest distance of a run from the median, in percent of the median.
    pub spread_pct: f64,
    /// Nanoseconds per packet at the median (per worker for multi-worker runs).
    pub ns_per_packet: f64,
    /// Counters over the timed runs (zero for `interp-vs-jit`).
    pub counts: Counts,
    /// Mean ns per extension run over the timed runs, from the extension's sampled timer.
    pub ext_ns_per_run: Option<f64>,
    /// Megaflows installed when the last run ended (summed over workers).
    pub megaflows: usize,
    /// Megaflow subtables when the last run ended (of the first worker).
    pub subtables: usize,
    /// Hash of every transmitted (port, frame) of the output check, if the scenario has one.
    pub output_hash: Option<String>,
}

impl Variant {
    fn new(label: String, runs: Vec<RunSample>, workers: usize) -> Variant {
        let mut v: Vec<f64> = runs.iter().map(|r| r.mpps).collect();
        v.sort_by(f64::total_cmp);
        let median = if v.is_empty() {
            0.0
        } else if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        let (min, max) = (
            v.first().copied().unwrap_or(0.0),
            v.last().copied().unwrap_or(0.0),
        );
        let spread = if median > 0.0 {
            (max - median).max(median - min) / median * 100.0
        } else {
            0.0
        };
        Variant {
            label,
            runs,
            median_mpps: median,
            min_mpps: min,
            max_mpps: max,
            spread_pct: spread,
            ns_per_packet: if median > 0.0 {
                1e3 * workers as f64 / median
            } else {
                0.0
            },
            counts: Counts::default(),
            ext_ns_per_run: None,
            megaflows: 0,
            subtables: 0,
            output_hash: None,
        }
    }
    /// Fraction of packets that recirculated (passes after the first, per packet).
    pub fn recirc_per_packet(&self) -> f64 {
        ratio(self.counts.recirculations, self.counts.rx)
    }
    /// Extension runs (filters, actions, hooks) per packet.
    pub fn ext_runs_per_packet(&self) -> f64 {
        ratio(
            self.counts.ext_runs + self.counts.filter_runs,
            self.counts.rx,
        )
    }
}

/// `a / b`, 0 when `b` is 0.
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// A sink that counts what it is given (the benchmark's null device).
#[derive(Default)]
pub struct CountSink {
    /// Frames transmitted.
    pub packets: u64,
    /// Bytes transmitted.
    pub bytes: u64,
    /// Frames transmitted on a port other than the expected one.
    pub other_port: u64,
}

impl TxSink for CountSink {
    #[inline]
    fn transmit(&mut self, port: PortNo, frame: &[u8], _ts_ns: u64) {
        self.packets += 1;
        self.bytes += frame.len() as u64;
        self.other_port += u64::from(port != OUT_PORT);
    }

    #[inline]
    fn transmit_burst(&mut self, port: PortNo, pkts: &[PacketBuf], _stamps: &[u64]) {
        let n = pkts.len() as u64;
        self.packets += n;
        self.bytes += pkts.iter().map(|p| p.len() as u64).sum::<u64>();
        self.other_port += n * u64::from(port != OUT_PORT);
    }
}

/// A sink that hashes every (port, frame) it is given, in order (FNV-1a, 64 bits).
pub struct HashSink {
    /// The running hash.
    pub hash: u64,
    /// Frames transmitted.
    pub packets: u64,
}

impl Default for HashSink {
    fn default() -> Self {
        HashSink {
            hash: 0xcbf2_9ce4_8422_2325,
            packets: 0,
        }
    }
}

impl HashSink {
    fn eat(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.hash = (self.hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl TxSink for HashSink {
    fn transmit(&mut self, port: PortNo, frame: &[u8], _ts_ns: u64) {
        self.packets += 1;
        self.eat(&port.to_le_bytes());
        self.eat(&(frame.len() as u32).to_le_bytes());
        self.eat(frame);
    }
}

/// Virtual nanoseconds per batch (timestamps only order events; no rule has a timeout).
const BATCH_NS: u64 = 1000;
/// Batches between two reads of the clock.
const CHECK_EVERY: usize = 64;

/// A worker fed from a replay buffer.
// Aligned as [`Worker`] is, for the same reason: the rigs of a multi-worker run sit side by
// side in one vector, and their replay positions and sinks change on every packet.
#[repr(align(128))]
pub struct Rig {
    /// The datapath.
    pub dp: Arc<Datapath>,
    /// The worker.
    pub w: Worker,
    replay: Arc<Replay>,
    pos: usize,
    batch: Batch,
    /// Where transmitted frames go.
    pub sink: CountSink,
    ts: u64,
    /// The extension whose run time the variant reports.
    ext: Option<Arc<Extension>>,
}

impl Rig {
    /// A rig for worker `id` of `dp`.
    pub fn new(dp: &Arc<Datapath>, id: usize, replay: Arc<Replay>) -> Rig {
        Rig {
            w: dp.worker(id),
            dp: dp.clone(),
            replay,
            pos: 0,
            batch: Batch::new(),
            sink: CountSink::default(),
            ts: 1,
            ext: None,
        }
    }

    /// Receives one batch of [`MAX_BATCH`] packets from the replay buffer and processes it.
    #[inline]
    pub fn step(&mut self, tx: &mut dyn TxSink) {
        self.batch.clear();
        let n = self.replay.len();
        for _ in 0..MAX_BATCH {
            let f = self.replay.get(self.pos);
            self.pos += 1;
            if self.pos == n {
                self.pos = 0;
            }
            self.batch.push(f, self.ts);
        }
        self.ts += BATCH_NS;
        self.w.process_batch(IN_PORT, &mut self.batch, tx);
    }

    /// Processes at least `packets` packets (whole batches) into the counting sink.
    pub fn run_packets(&mut self, packets: u64) {
        let mut sink = std::mem::take(&mut self.sink);
        let mut done = 0;
        while done < packets {
            self.step(&mut sink);
            done += MAX_BATCH as u64;
        }
        self.sink = sink;
    }

    /// Processes packets for at least `d`; returns (packets, ns).
    pub fn run_for(&mut self, d: Duration) -> (u64, u64) {
        let mut sink = std::mem::take(&mut self.sink);
        let mut packets = 0u64;
        let t0 = Instant::now();
        let ns = loop {
            for _ in 0..CHECK_EVERY {
                self.step(&mut sink);
            }
            packets += (CHECK_EVERY * MAX_BATCH) as u64;
            let e = t0.elapsed();
            if e >= d {
                break e.as_nanos() as u64;
            }
        };
        self.sink = sink;
        (packets, ns)
    }

    fn warm(&mut self, s: &Settings) {
        self.run_packets(2 * self.replay.len() as u64);
        self.run_for(s.warmup);
    }

    fn counts(&self) -> Counts {
        Counts::of(&self.w.stats(), self.sink.packets)
    }
}

/// One datapath with the benchmark ports.
fn datapath(cfg: DpConfig, flows: &str) -> Result<Arc<Datapath>, BenchError> {
    let dp = Datapath::new(cfg);
    dp.add_port(IN_PORT);
    dp.add_port(OUT_PORT);
    dp.add_flows(flows, 0)
        .map_err(|e| BenchError::Setup(format!("flow table: {e}")))?;
    Ok(dp)
}

/// Loads `obj` into `dp` and applies the benchmark's map preloads.
pub fn load(dp: &Datapath, obj: Object) -> Result<Arc<Extension>, BenchError> {
    let ext = dp
        .load_extension(obj.name, obj.bytes, &LoadOptions::default())
        .map_err(|e| BenchError::Setup(format!("loading {}: {e}", obj.name)))?;
    preload(&ext)?;
    dp.maps_changed();
    Ok(ext)
}

/// The map contents extensions/README.md prescribes for the benchmark: the stateful
/// firewall treats port 1 as the inside (so the traffic opens connections and passes), and
/// payload_mask fills 16 bytes with 0xa5 (the payload is zero, so the rewrite shows).
fn preload(ext: &Extension) -> Result<(), BenchError> {
    let set = |map: &str, key: &[u8], value: &[u8]| -> Result<(), BenchError> {
        ext.map(map)
            .map_err(|e| BenchError::Setup(e.to_string()))?
            .update(key, value, crate::ext::maps::update_flags::ANY)
            .map_err(|e| BenchError::Setup(format!("{}: map {map}: {e}", ext.name())))
    };
    match ext.name() {
        "fw_stateful_filter" => {
            let mut v = [0u8; 16];
            v[0..4].copy_from_slice(&IN_PORT.to_le_bytes());
            set("fw_config", &0u32.to_le_bytes(), &v)
        }
        "payload_mask" => {
            let mut v = [0u8; 8];
            v[0..4].copy_from_slice(&16u32.to_le_bytes());
            v[4] = 0xa5;
            set("mask_config", &0u32.to_le_bytes(), &v)
        }
        _ => Ok(()),
    }
}

fn ext_delta(ext: &Option<Arc<Extension>>, before: Option<ExtensionStats>) -> Option<f64> {
    let (e, b) = (ext.as_ref()?, before?);
    let a = e.stats();
    let runs = a.timed_runs - b.timed_runs;
    (runs > 0).then(|| (a.total_ns - b.total_ns) as f64 / runs as f64)
}

/// Measures rigs that run one after the other, interleaved run by run so that a slow
/// moment of the machine hits every variant alike.
fn measure_interleaved(
    rigs: &mut [(String, Rig)],
    s: &Settings,
    tick: &mut dyn FnMut(&str),
) -> Vec<Variant> {
    for (label, r) in rigs.iter_mut() {
        r.warm(s);
        tick(label);
    }
    let before: Vec<(Counts, Option<ExtensionStats>)> = rigs
        .iter()
        .map(|(_, r)| (r.counts(), r.ext.as_ref().map(|e| e.stats())))
        .collect();
    let mut samples: Vec<Vec<RunSample>> = vec![Vec::new(); rigs.len()];
    for _ in 0..s.runs {
        for (i, (label, r)) in rigs.iter_mut().enumerate() {
            let (packets, ns) = r.run_for(s.duration);
            samples[i].push(RunSample {
                packets,
                ns,
                mpps: packets as f64 * 1e3 / ns as f64,
            });
            tick(label);
        }
    }
    rigs.iter()
        .zip(samples)
        .zip(before)
        .map(|(((label, r), runs), (c0, e0))| {
            let mut v = Variant::new(label.clone(), runs, 1);
            v.counts = r.counts().sub(&c0);
            v.ext_ns_per_run = ext_delta(&r.ext, e0);
            v.megaflows = r.w.megaflow_count();
            v.subtables = r.w.subtable_count();
            v
        })
        .collect()
}

/// Pins the calling thread to CPU `cpu` (best effort: a container may forbid it).
fn pin(cpu: usize) {
    // SAFETY: `set` is a plain bit set on the stack, initialised by CPU_ZERO before use, and
    // sched_setaffinity only reads it; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        let _ = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Rigs for workers `0..n` of `dp`, each made and first run (installing its megaflows) on
/// the thread pinned to the CPU it will run on, as a daemon's packet thread makes its own
/// worker: what a worker allocates then comes from that thread's heap, so no two workers'
/// caches and buffers share a cache line. (Made on one thread and run on two, workers-2
/// measured 1.26-1.76x one worker against 1.73-2.01x made this way, in six interleaved pairs
/// of runs, while two separate single-worker processes scaled 2.0x.)
fn rigs_on_threads(dp: &Arc<Datapath>, n: usize, replay: &Arc<Replay>) -> Vec<Rig> {
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let replay = replay.clone();
                sc.spawn(move || {
                    pin(i % ncpu);
                    let mut r = Rig::new(dp, i, replay);
                    r.run_packets(2 * r.replay.len() as u64);
                    r
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("worker thread"))
            .collect()
    })
}

/// Runs every rig for `d` on its own thread (pinned to its own CPU), started together.
fn run_parallel(rigs: &mut [Rig], d: Duration) -> RunSample {
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let barrier = Barrier::new(rigs.len());
    let res: Vec<(u64, u64)> = std::thread::scope(|sc| {
        let hs: Vec<_> = rigs
            .iter_mut()
            .enumerate()
            .map(|(i, r)| {
                let b = &barrier;
                sc.spawn(move || {
                    pin(i % ncpu);
                    b.wait();
                    r.run_for(d)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("worker thread"))
            .collect()
    });
    let packets = res.iter().map(|r| r.0).sum();
    let ns = res.iter().map(|r| r.1).sum::<u64>() / res.len() as u64;
    let mpps = res.iter().map(|&(p, n)| p as f64 * 1e3 / n as f64).sum();
    RunSample { packets, ns, mpps }
}

fn forward_rig(nflows: u32, decoy: bool, emc: bool, workers: usize) -> Result<Rig, BenchError> {
    let mut flows = traffic::FLOWS.to_string();
    if decoy {
        flows.push_str(traffic::DECOY);
    }
    let dp = datapath(
        DpConfig {
            emc,
            workers,
            ..DpConfig::default()
        },
        &flows,
    )?;
    Ok(Rig::new(&dp, 0, Arc::new(Replay::new(nflows, false))))
}

/// What a scenario produced, before the report judges it against its target.
pub struct Measured {
    /// The variants.
    pub variants: Vec<Variant>,
    /// Notes for the report (how the figures were obtained, anything unusual).
    pub notes: Vec<String>,
    /// Consistency checks that failed (counters that do not add up, outputs that differ).
    pub failures: Vec<String>,
}

/// Number of progress ticks `sc` makes.
pub fn ticks(sc: &Scenario, s: &Settings) -> u64 {
    let per = s.runs as u64 + 1;
    match sc.kind {
        Kind::Forward { .. } | Kind::Upcall => per,
        Kind::Filter(_) | Kind::Action { .. } | Kind::Workers => 2 * per,
        Kind::Tiers => 3 * OBJECTS.len() as u64 * per,
    }
}

/// Runs scenario `sc`.
pub fn run(
    sc: &Scenario,
    s: &Settings,
    tick: &mut dyn FnMut(&str),
) -> Result<Measured, BenchError> {
    let mut m = match sc.kind {
        Kind::Forward { nflows, decoy, emc } => {
            let mut rigs = vec![(sc.name.to_string(), forward_rig(nflows, decoy, emc, 1)?)];
            Measured {
                variants: measure_interleaved(&mut rigs, s, tick),
                notes: Vec::new(),
                failures: Vec::new(),
            }
        }
        Kind::Upcall => upcall(s, tick)?,
        Kind::Filter(obj) => filter(obj, s, tick)?,
        Kind::Action { object, table1_dst } => action(object, table1_dst, s, tick)?,
        Kind::Tiers => tiers(s, tick)?,
        Kind::Workers => workers(s, tick)?,
    };
    if !matches!(sc.kind, Kind::Tiers) {
        for v in &m.variants {
            let c = &v.counts;
            if c.rx != c.forwarded + c.dropped {
                m.failures.push(format!(
                    "{}: rx {} != forwarded {} + dropped {}",
                    v.label, c.rx, c.forwarded, c.dropped
                ));
            }
            if c.rx == 0 || c.forwarded != c.rx {
                m.failures.push(format!(
                    "{}: {} of {} packets forwarded (the workload forwards every packet)",
                    v.label, c.forwarded, c.rx
                ));
            }
            if c.tx != c.forwarded {
                m.failures.push(format!(
                    "{}: sink got {} frames for {} forwarded packets",
                    v.label, c.tx, c.forwarded
                ));
            }
        }
    }
    if let Target::MustRecirculate | Target::MinSpeedup(_) = sc.target {
        let hashes: Vec<_> = m.variants.iter().map(|v| &v.output_hash).collect();
        if hashes.windows(2).any(|w| w[0] != w[1]) {
            m.failures
                .push("outputs differ between reclassification policies".into());
        }
    }
    Ok(m)
}

/// `upcall`: each round processes the 60000 flows once on empty caches (flushed outside the
/// timed region), so every packet is a cache miss, a translation and a megaflow install.
fn upcall(s: &Settings, tick: &mut dyn FnMut(&str)) -> Result<Measured, BenchError> {
    let mut flows = traffic::FLOWS.to_string();
    flows.push_str(traffic::PORT_DECOY);
    let dp = datapath(DpConfig::default(), &flows)?;
    let replay = Arc::new(Replay::new(SOURCE_PORTS, false));
    let round = replay.len() as u64;
    let mut rig = Rig::new(&dp, 0, replay);
    let timed_round = |rig: &mut Rig| -> u64 {
        rig.w.flush_caches();
        rig.pos = 0;
        let mut sink = std::mem::take(&mut rig.sink);
        let t0 = Instant::now();
        let mut done = 0;
        while done < round {
            rig.step(&mut sink);
            done += MAX_BATCH as u64;
        }
        let ns = t0.elapsed().as_nanos() as u64;
        rig.sink = sink;
        ns
    };
    let t0 = Instant::now();
    while t0.elapsed() < s.warmup.max(Duration::from_millis(1)) {
        timed_round(&mut rig);
    }
    tick("upcall");
    let c0 = rig.counts();
    let mut runs = Vec::new();
    let mut last_megaflows = 0;
    for _ in 0..s.runs {
        let (mut packets, mut ns) = (0u64, 0u64);
        while ns < s.duration.as_nanos() as u64 || packets == 0 {
            ns += timed_round(&mut rig);
            packets += round.div_ceil(MAX_BATCH as u64) * MAX_BATCH as u64;
            last_megaflows = rig.w.megaflow_count();
        }
        runs.push(RunSample {
            packets,
            ns,
            mpps: packets as f64 * 1e3 / ns as f64,
        });
        tick("upcall");
    }
    let mut v = Variant::new("upcall".into(), runs, 1);
    v.counts = rig.counts().sub(&c0);
    v.megaflows = last_megaflows;
    v.subtables = rig.w.subtable_count();
    let mut failures = Vec::new();
    if v.counts.upcalls != v.counts.rx {
        failures.push(format!(
            "upcall: {} upcalls for {} packets (every packet should be one)",
            v.counts.upcalls, v.counts.rx
        ));
    }
    Ok(Measured {
        notes: vec![format!(
            "{round} packets per round, caches flushed between rounds (untimed); {} megaflows \
             at the end of a round",
            last_megaflows
        )],
        variants: vec![v],
        failures,
    })
}

/// `filter-*`: fwd-1flow with the filter, against fwd-1flow itself.
fn filter(obj: Object, s: &Settings, tick: &mut dyn FnMut(&str)) -> Result<Measured, BenchError> {
    let base = forward_rig(1, false, true, 1)?;
    let dp = datapath(DpConfig::default(), &traffic::filter_flows(obj.name))?;
    let ext = load(&dp, obj)?;
    let mut rig = Rig::new(&dp, 0, Arc::new(Replay::new(1, false)));
    rig.ext = Some(ext);
    let mut rigs = vec![
        ("fwd-1flow".to_string(), base),
        (format!("bpf_filter={}", obj.name), rig),
    ];
    let variants = measure_interleaved(&mut rigs, s, tick);
    let f = &variants[1].counts;
    let mut notes = Vec::new();
    if f.filter_cached > 0 {
        notes.push(format!(
            "{}: the filter's verified reads are covered by the megaflow's key, so its result \
             is reused from the cache: {:.2} runs/pkt, {:.2} reused/pkt",
            obj.name,
            ratio(f.filter_runs, f.rx),
            ratio(f.filter_cached, f.rx)
        ));
    }
    Ok(Measured {
        variants,
        notes,
        failures: Vec::new(),
    })
}

/// Packets of the output check of the action scenarios.
pub const CHECK_PACKETS: u64 = 8192;
/// Flows of the output check (several, so that the check covers more than one megaflow).
const CHECK_FLOWS: u32 = 64;

fn action_dp(obj: Object, table1_dst: &str, policy: Reclassify) -> Result<Rig, BenchError> {
    let dp = datapath(
        DpConfig::default(),
        &traffic::action_flows(obj.name, table1_dst),
    )?;
    let ext = load(&dp, obj)?;
    dp.set_reclassify(policy);
    let mut rig = Rig::new(&dp, 0, Arc::new(Replay::new(1, false)));
    rig.ext = Some(ext);
    Ok(rig)
}

/// The hash of every frame transmitted for [`CHECK_PACKETS`] packets of `CHECK_FLOWS`
/// flows under `policy`, on a fresh datapath.
pub fn output_hash(obj: Object, table1_dst: &str, policy: Reclassify) -> Result<u64, BenchError> {
    let mut rig = action_dp(obj, table1_dst, policy)?;
    rig.replay = Arc::new(Replay::new(CHECK_FLOWS, false));
    let mut sink = HashSink::default();
    let mut done = 0;
    while done < CHECK_PACKETS {
        rig.step(&mut sink);
        done += MAX_BATCH as u64;
    }
    if sink.packets == 0 {
        return Err(BenchError::Setup(format!(
            "{}: nothing transmitted in the output check",
            obj.name
        )));
    }
    Ok(sink.hash)
}

/// `action-*`: the same table under reclassify=verifier and reclassify=always.
fn action(
    obj: Object,
    table1_dst: &str,
    s: &Settings,
    tick: &mut dyn FnMut(&str),
) -> Result<Measured, BenchError> {
    let policies = [
        ("reclassify=verifier", Reclassify::Verifier),
        ("reclassify=always", Reclassify::Always),
    ];
    let mut rigs = Vec::new();
    for (label, p) in policies {
        rigs.push((label.to_string(), action_dp(obj, table1_dst, p)?));
    }
    let mut variants = measure_interleaved(&mut rigs, s, tick);
    for (v, (_, p)) in variants.iter_mut().zip(policies) {
        v.output_hash = Some(format!("{:016x}", output_hash(obj, table1_dst, p)?));
    }
    Ok(Measured {
        notes: vec![format!(
            "outputs compared over {CHECK_PACKETS} packets of {CHECK_FLOWS} flows (FNV-1a of \
             every transmitted port and frame)"
        )],
        variants,
        failures: Vec::new(),
    })
}

/// `workers-N`: fwd-64k-1mf on N workers of one datapath against one worker.
fn workers(s: &Settings, tick: &mut dyn FnMut(&str)) -> Result<Measured, BenchError> {
    let n = s.workers.max(1);
    let replay = Arc::new(Replay::new(65_536, false));
    let one = rigs_on_threads(&datapath(DpConfig::default(), traffic::FLOWS)?, 1, &replay);
    let many = rigs_on_threads(
        &datapath(
            DpConfig {
                workers: n,
                ..DpConfig::default()
            },
            traffic::FLOWS,
        )?,
        n,
        &replay,
    );
    let mut groups = [
        ("1 worker".to_string(), one),
        (format!("{n} workers"), many),
    ];
    for (label, g) in groups.iter_mut() {
        run_parallel(g, s.warmup);
        tick(label);
    }
    let c0: Vec<Vec<Counts>> = groups
        .iter()
        .map(|(_, g)| g.iter().map(Rig::counts).collect())
        .collect();
    let mut samples = vec![Vec::new(), Vec::new()];
    for _ in 0..s.runs {
        for (i, (label, g)) in groups.iter_mut().enumerate() {
            samples[i].push(run_parallel(g, s.duration));
            tick(label);
        }
    }
    let variants = groups
        .iter()
        .zip(samples)
        .zip(c0)
        .map(|(((label, g), runs), c0)| {
            let mut v = Variant::new(label.clone(), runs, g.len());
            for (r, c) in g.iter().zip(&c0) {
                v.counts.add(&r.counts().sub(c));
                v.megaflows += r.w.megaflow_count();
            }
            v.subtables = g[0].w.subtable_count();
            v
        })
        .collect();
    Ok(Measured {
        variants,
        notes: vec![format!(
            "each worker on its own thread pinned to CPU i % nproc, its own caches, one shared \
             Datapath; {n} workers on {} CPUs",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        )],
        failures: Vec::new(),
    })
}

/// An extension run directly on one tier, on a fresh copy of a frame each time.
struct TierRig {
    ext: Arc<Extension>,
    tier: ExecTier,
    frame: [u8; traffic::FRAME_LEN],
    buf: PacketBuf,
    faults: u64,
}

impl TierRig {
    fn run_for(&mut self, d: Duration) -> Result<(u64, u64), BenchError> {
        let mut runs = 0u64;
        let t0 = Instant::now();
        loop {
            for _ in 0..256 {
                self.buf.load(&self.frame);
                let out = self
                    .ext
                    .run_on(self.tier, &mut self.buf, IN_PORT, Some(runs))
                    .map_err(|e| {
                        BenchError::Setup(format!(
                            "{} on {}: {e}",
                            self.ext.name(),
                            self.tier.name()
                        ))
                    })?;
                self.faults += u64::from(out.fault.is_some());
            }
            runs += 256;
            let e = t0.elapsed();
            if e >= d {
                return Ok((runs, e.as_nanos() as u64));
            }
        }
    }
}

/// `interp-vs-jit`: each extension on each tier, interleaved.
fn tiers(s: &Settings, tick: &mut dyn FnMut(&str)) -> Result<Measured, BenchError> {
    let d = s.duration / 4;
    let mut variants = Vec::new();
    let mut notes = Vec::new();
    let mut failures = Vec::new();
    for obj in OBJECTS {
        let ext = Arc::new(
            Extension::load(obj.name, obj.bytes, &LoadOptions::default())
                .map_err(|e| BenchError::Setup(format!("loading {}: {e}", obj.name)))?,
        );
        preload(&ext)?;
        let mut rigs: Vec<TierRig> = [ExecTier::Interpreter, ExecTier::Jit, ExecTier::Cranelift]
            .into_iter()
            .map(|tier| TierRig {
                ext: ext.clone(),
                tier,
                frame: traffic::frame(0, false),
                buf: PacketBuf::new(),
                faults: 0,
            })
            .collect();
        let mut ok = vec![true; rigs.len()];
        for (i, r) in rigs.iter_mut().enumerate() {
            let label = format!("{}/{}", obj.name, r.tier.name());
            if let Err(e) = r.run_for(s.warmup / 4) {
                notes.push(format!("{label}: unavailable ({e})"));
                ok[i] = false;
            }
            tick(&label);
        }
        let mut samples = vec![Vec::new(); rigs.len()];
        for _ in 0..s.runs {
            for (i, r) in rigs.iter_mut().enumerate() {
                let label = format!("{}/{}", obj.name, r.tier.name());
                if ok[i] {
                    let (runs, ns) = r.run_for(d)?;
                    samples[i].push(RunSample {
                        packets: runs,
                        ns,
                        mpps: runs as f64 * 1e3 / ns as f64,
                    });
                }
                tick(&label);
            }
        }
        for (r, runs) in rigs.iter().zip(samples) {
            if r.faults > 0 {
                failures.push(format!(
                    "{} on {}: {} runs faulted",
                    obj.name,
                    r.tier.name(),
                    r.faults
                ));
            }
            if !runs.is_empty() {
                let mut v = Variant::new(format!("{}/{}", obj.name, r.tier.name()), runs, 1);
                v.ext_ns_per_run = Some(v.ns_per_packet);
                variants.push(v);
            }
        }
    }
    notes.push(
        "ns/run includes copying the 60-byte frame into the packet buffer before each run".into(),
    );
    Ok(Measured {
        variants,
        notes,
        failures,
    })
}
