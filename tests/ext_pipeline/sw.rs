//! A switch under test (a `Datapath` with one `Worker`) that records what it transmits, and
//! a runner that plays one scenario under every cache configuration and reclassification
//! policy and checks that they all behave the same.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use bpfswitch::dpif::{Datapath, DpConfig, DpStats, Fate, PortStats, Worker};
use bpfswitch::ext::LoadOptions;
use bpfswitch::packet::PacketBuf;
use ofproto_bridge::bridge::Reclassify;
use ofproto_bridge::PortNo;

/// Ports every switch has.
pub const PORTS: [PortNo; 4] = [1, 2, 3, 4];

/// Path of an object of the checked-in corpus.
pub fn object(file: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("extensions")
        .join(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// What one received packet became: its fate and every (port, bytes) transmitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The datapath's verdict.
    pub fate: Fate,
    /// Transmissions, in order.
    pub out: Vec<(PortNo, Vec<u8>)>,
}

/// One datapath configuration of a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// Exact-match and megaflow caches on (EMC insertion on every hit), or none.
    pub cached: bool,
    /// Reclassification policy after extension actions.
    pub policy: Reclassify,
}

/// The four configurations every scenario runs under.
pub const MODES: [Mode; 4] = [
    Mode {
        cached: true,
        policy: Reclassify::Verifier,
    },
    Mode {
        cached: true,
        policy: Reclassify::Always,
    },
    Mode {
        cached: false,
        policy: Reclassify::Verifier,
    },
    Mode {
        cached: false,
        policy: Reclassify::Always,
    },
];

/// A switch under test.
pub struct Sw {
    /// The datapath.
    pub dp: Arc<Datapath>,
    /// Its only worker.
    pub w: Worker,
}

impl Sw {
    /// A switch with ports 1-4, no flows and no extensions.
    pub fn new(mode: Mode) -> Sw {
        let cfg = if mode.cached {
            DpConfig {
                emc_insert_inv_prob: 1,
                ..DpConfig::default()
            }
        } else {
            DpConfig::cacheless()
        };
        let dp = Datapath::new(cfg);
        for p in PORTS {
            dp.add_port(p);
        }
        dp.set_reclassify(mode.policy);
        let w = dp.worker(0);
        Sw { dp, w }
    }

    /// Loads `file` from extensions/ under `name`.
    pub fn load(&self, name: &str, file: &str) -> &Self {
        self.dp
            .load_extension(name, &object(file), &LoadOptions::default())
            .unwrap_or_else(|e| panic!("load {name} from {file}: {e}"));
        self
    }

    /// Replaces extension `name` with `file`.
    pub fn replace(&self, name: &str, file: &str) {
        let opts = LoadOptions {
            replace: true,
            ..Default::default()
        };
        self.dp
            .load_extension(name, &object(file), &opts)
            .unwrap_or_else(|e| panic!("replace {name} with {file}: {e}"));
    }

    /// Adds flows (ovs-ofctl add-flows syntax).
    pub fn flows(&self, text: &str) -> &Self {
        self.dp
            .add_flows(text, 0)
            .unwrap_or_else(|e| panic!("flows {text:?}: {e}"));
        self
    }

    /// Updates a map entry from typed text.
    pub fn map(&self, ext: &str, map: &str, key: &str, value: &str) -> &Self {
        self.dp
            .map_update(ext, map, key, value)
            .unwrap_or_else(|e| panic!("map update {ext} {map} {key} {value}: {e}"));
        self
    }

    /// The value stored under `key` (typed text) in `map` of `ext`, if any.
    pub fn lookup(&self, ext: &str, map: &str, key: &str) -> Option<Vec<u8>> {
        let key = bpfswitch::ext::parse_typed_bytes(key).expect("key parses");
        self.dump(ext, map)
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// Every entry of a map, sorted by key.
    pub fn dump(&self, ext: &str, map: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut v = self
            .dp
            .map_dump(ext, map)
            .unwrap_or_else(|e| panic!("dump {ext} {map}: {e}"));
        v.sort();
        v
    }

    /// Receives `frame` on `in_port` at `ts_ns`.
    pub fn send(&mut self, in_port: PortNo, frame: &[u8], ts_ns: u64) -> Sent {
        let mut out = Vec::new();
        let mut sink = |p: PortNo, f: &[u8], _ts: u64| out.push((p, f.to_vec()));
        let mut pkt = PacketBuf::from_slice(frame);
        let fate = self.w.process(in_port, &mut pkt, ts_ns, &mut sink);
        Sent { fate, out }
    }

    /// Packets credited to each rule (after crediting what the caches counted), by rule.
    pub fn rule_packets(&mut self) -> Vec<(String, u64)> {
        self.w.sync(0);
        let mut v: Vec<(String, u64)> = self
            .dp
            .dump_flows()
            .iter()
            .map(|(_, r, m)| (ofproto_bridge::ofctl::format_rule(r), m.stats.packets))
            .collect();
        v.sort();
        v
    }

    /// The worker's counters.
    pub fn stats(&self) -> DpStats {
        self.w.stats()
    }
}

/// Per-port counters of a run (which every mode must agree on).
fn port_stats(s: &DpStats) -> BTreeMap<PortNo, PortStats> {
    s.ports.clone()
}

/// One mode's run of a scenario.
pub struct Run<T> {
    /// The mode.
    pub mode: Mode,
    /// What the scenario returned.
    pub result: T,
    /// The worker's counters at the end.
    pub stats: DpStats,
    /// Packets credited to each rule at the end.
    pub rules: Vec<(String, u64)>,
}

/// Runs `scenario` on a fresh switch in every mode and asserts that the results (what it
/// returns: transmitted bytes, fates, map contents...) and the per-port counters (rx, tx,
/// drops by reason) are identical across modes. Returns the runs in [`MODES`] order.
pub fn each_mode<T: PartialEq + Debug>(scenario: impl Fn(&mut Sw) -> T) -> Vec<Run<T>> {
    let runs: Vec<Run<T>> = MODES
        .iter()
        .map(|&mode| {
            let mut sw = Sw::new(mode);
            let result = scenario(&mut sw);
            let stats = sw.stats();
            let rules = sw.rule_packets();
            assert_eq!(
                stats.rx(),
                stats.forwarded() + stats.dropped(),
                "{mode:?}: every received packet is forwarded or dropped"
            );
            Run {
                mode,
                result,
                stats,
                rules,
            }
        })
        .collect();
    if std::env::var_os("EXT_PIPELINE_STATS").is_some() {
        for r in &runs {
            eprintln!("{:?}: {:?}", r.mode, StatsLine(&r.stats));
        }
    }
    // Rule counters (`dump-flows` n_packets) do not depend on the caches. They may depend
    // on the policy: a translation that goes on past an extension credits the later rules
    // even for packets the extension then drops, as Open vSwitch credits every rule of a
    // translation for every packet its datapath flow handled.
    for r in &runs {
        let reference = run_in(&runs, false, r.mode.policy);
        assert_eq!(
            r.rules, reference.rules,
            "{:?} credits rules differently from {:?}",
            r.mode, reference.mode
        );
    }
    let first = &runs[0];
    for r in &runs[1..] {
        assert_eq!(
            r.result, first.result,
            "{:?} behaves differently from {:?}",
            r.mode, first.mode
        );
        assert_eq!(
            port_stats(&r.stats),
            port_stats(&first.stats),
            "{:?} counts differently from {:?}",
            r.mode,
            first.mode
        );
    }
    runs
}

/// The run in `mode`.
pub fn run_in<T>(runs: &[Run<T>], cached: bool, policy: Reclassify) -> &Run<T> {
    runs.iter()
        .find(|r| r.mode.cached == cached && r.mode.policy == policy)
        .expect("every mode ran")
}

/// The non-port counters of a run, on one line.
struct StatsLine<'a>(&'a DpStats);

impl Debug for StatsLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0;
        write!(
            f,
            "emc {} mf {} upcalls {} recirc {} avoided {} filter runs {} cached {} mismatches {} ext runs {} installed {} revalidated {} changed {}",
            s.emc_hits,
            s.megaflow_hits,
            s.upcalls,
            s.recirculations,
            s.recircs_avoided,
            s.filter_runs,
            s.filter_cached,
            s.filter_mismatches,
            s.ext_runs,
            s.megaflows_installed,
            s.revalidated,
            s.revalidation_changes
        )
    }
}
