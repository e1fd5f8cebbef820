//! The datapath: flow-key extraction, the exact-match and megaflow caches, upcalls into
//! translation, action execution and counters (Open vSwitch's `dpif-netdev`).
//!
//! [`Datapath`] is the shared part (bridge, extensions, ports, configuration); each packet
//! processing thread owns a [`Worker`] with its own caches and counters (a PMD thread).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use ofproto_bridge::action::OFPP_CONTROLLER;
use ofproto_bridge::bridge::{Bridge, Reclassify};
use ofproto_bridge::flow::Flow;
use ofproto_bridge::ofctl::FlowMod;
use ofproto_bridge::rule::Rule;
use ofproto_bridge::table::{RuleMeta, RuleRef};
use ofproto_bridge::xlate::{
    revalidate, translate, Revalidation, XlateHooks, XlateParams, Xlation, MAX_RECIRC_DEPTH,
};
use ofproto_bridge::{DropReason, OdpAction, PortNo};
use serde::Serialize;
use verifier_analysis::AccessSet;

use crate::emc::Emc;
use crate::execute;
use crate::ext::{Abi, ExtError, Extension, ExtensionStats, LoadOptions};
use crate::megaflow::{Guard, Megaflow, MegaflowCache, MfRef};
use crate::packet::fieldmap::write_impact;
use crate::packet::{extract, Layout, PacketBuf};
use crate::port::{Batch, MAX_BATCH};

/// Errors of datapath configuration (never of packet processing, which counts drops).
#[derive(Debug, thiserror::Error)]
pub enum DpError {
    /// A flow in ovs-ofctl syntax did not parse.
    #[error(transparent)]
    FlowSyntax(#[from] ofproto_bridge::ofctl::OfctlError),
    /// The bridge refused a flow-table modification.
    #[error(transparent)]
    FlowMod(#[from] ofproto_bridge::bridge::FlowModError),
    /// An extension operation failed.
    #[error(transparent)]
    Ext(#[from] ExtError),
    /// No such port.
    #[error("no port {0}")]
    NoSuchPort(PortNo),
}

/// Datapath configuration.
#[derive(Clone, Debug, Serialize)]
pub struct DpConfig {
    /// Exact-match cache in front of the megaflow cache.
    pub emc: bool,
    /// Megaflow cache; `false` translates every packet (the cacheless reference).
    pub megaflow: bool,
    /// One megaflow hit in this many inserts its flow into the exact-match cache (Open
    /// vSwitch's `emc-insert-inv-prob`); 1 inserts on every hit.
    pub emc_insert_inv_prob: u32,
    /// Skip exact-match lookups while they hit less than half the time (sampling one batch
    /// in [`EMC_PROBE_EVERY`] to notice when they would hit again); insertions go on.
    pub emc_bypass: bool,
    /// Maximum number of megaflows per worker.
    pub megaflow_capacity: usize,
    /// Number of workers (per-worker maps keep this many values).
    pub workers: usize,
}

impl Default for DpConfig {
    fn default() -> Self {
        DpConfig {
            emc: true,
            megaflow: true,
            emc_insert_inv_prob: 100,
            emc_bypass: true,
            megaflow_capacity: crate::megaflow::DEFAULT_CAPACITY,
            workers: 1,
        }
    }
}

impl DpConfig {
    /// No caches at all: every packet is translated.
    pub fn cacheless() -> DpConfig {
        DpConfig {
            emc: false,
            megaflow: false,
            ..DpConfig::default()
        }
    }
}

/// Batches over which the exact-match hit rate is judged (see [`DpConfig::emc_bypass`]).
pub const EMC_WINDOW: u32 = 64;
/// While exact-match lookups are bypassed, one batch in this many still looks up.
pub const EMC_PROBE_EVERY: u32 = 8;

/// Where transmitted packets go.
pub trait TxSink {
    /// Transmits `frame` on `port` (an OpenFlow port number, or `OFPP_CONTROLLER`).
    fn transmit(&mut self, port: PortNo, frame: &[u8], ts_ns: u64);

    /// Transmits the frames of `pkts` on `port` in order, each stamped as in `stamps` (a
    /// burst, as `rte_eth_tx_burst` sends one): by default one [`TxSink::transmit`] each.
    fn transmit_burst(&mut self, port: PortNo, pkts: &[PacketBuf], stamps: &[u64]) {
        for (p, &ts) in pkts.iter().zip(stamps) {
            self.transmit(port, p.data(), ts);
        }
    }
}

impl<F: FnMut(PortNo, &[u8], u64)> TxSink for F {
    fn transmit(&mut self, port: PortNo, frame: &[u8], ts_ns: u64) {
        self(port, frame, ts_ns)
    }
}

/// What became of one received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Transmitted at least once.
    Forwarded,
    /// Dropped, with the reason.
    Dropped(DropReason),
}

/// Counters of one port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Received packets transmitted at least once (on any port).
    pub forwarded: u64,
    /// Packets transmitted on this port.
    pub tx_packets: u64,
    /// Bytes transmitted on this port.
    pub tx_bytes: u64,
    /// Received packets dropped, by reason.
    pub drops: BTreeMap<DropReason, u64>,
}

impl PortStats {
    /// Received packets dropped, all reasons.
    pub fn dropped(&self) -> u64 {
        self.drops.values().sum()
    }
}

/// Counters of a worker (or, summed, of the datapath).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DpStats {
    /// Per port.
    pub ports: BTreeMap<PortNo, PortStats>,
    /// Lookups answered by the exact-match cache.
    pub emc_hits: u64,
    /// Lookups answered by the megaflow cache.
    pub megaflow_hits: u64,
    /// Lookups that missed every cache and were translated.
    pub upcalls: u64,
    /// Cache hits whose recorded filter results no longer held (handled as upcalls).
    pub filter_mismatches: u64,
    /// Passes of packets after the first (recirculations).
    pub recirculations: u64,
    /// Recirculations that the verifier's write sets made unnecessary.
    pub recircs_avoided: u64,
    /// Filter runs.
    pub filter_runs: u64,
    /// Filter results taken from the cache instead of running a stateless filter.
    pub filter_cached: u64,
    /// Extension action and port-hook runs.
    pub ext_runs: u64,
    /// Megaflows installed.
    pub megaflows_installed: u64,
    /// Megaflows revalidated after a bridge change.
    pub revalidated: u64,
    /// Megaflows deleted or replaced by revalidation.
    pub revalidation_changes: u64,
}

impl DpStats {
    /// Adds `other` into `self` (summing workers).
    pub fn merge(&mut self, other: &DpStats) {
        for (no, p) in &other.ports {
            let q = self.ports.entry(*no).or_default();
            q.rx_packets += p.rx_packets;
            q.rx_bytes += p.rx_bytes;
            q.forwarded += p.forwarded;
            q.tx_packets += p.tx_packets;
            q.tx_bytes += p.tx_bytes;
            for (r, n) in &p.drops {
                *q.drops.entry(*r).or_default() += n;
            }
        }
        self.emc_hits += other.emc_hits;
        self.megaflow_hits += other.megaflow_hits;
        self.upcalls += other.upcalls;
        self.filter_mismatches += other.filter_mismatches;
        self.recirculations += other.recirculations;
        self.recircs_avoided += other.recircs_avoided;
        self.filter_runs += other.filter_runs;
        self.filter_cached += other.filter_cached;
        self.ext_runs += other.ext_runs;
        self.megaflows_installed += other.megaflows_installed;
        self.revalidated += other.revalidated;
        self.revalidation_changes += other.revalidation_changes;
    }
    /// Packets received on all ports.
    pub fn rx(&self) -> u64 {
        self.ports.values().map(|p| p.rx_packets).sum()
    }
    /// Received packets transmitted at least once.
    pub fn forwarded(&self) -> u64 {
        self.ports.values().map(|p| p.forwarded).sum()
    }
    /// Received packets dropped.
    pub fn dropped(&self) -> u64 {
        self.ports.values().map(|p| p.dropped()).sum()
    }
}

/// The drop reasons, in declaration order (counter index = `reason as usize`).
const DROP_REASONS: [DropReason; 11] = [
    DropReason::Action,
    DropReason::TableMiss,
    DropReason::TtlExceeded,
    DropReason::NoController,
    DropReason::LoopBack,
    DropReason::NoSuchPort,
    DropReason::ExtDrop,
    DropReason::ExtAborted,
    DropReason::PortHook,
    DropReason::TooDeep,
    DropReason::Malformed,
];
const _: () = assert!(DropReason::Malformed as usize == DROP_REASONS.len() - 1);

/// What the datapath keeps about a loaded extension, computed once at load.
struct ExtInfo {
    ext: Arc<Extension>,
    /// Result depends only on the bytes read, the packet length and map contents.
    stateless: bool,
    /// The verified read set, when bounded.
    reads: Option<Vec<(usize, usize)>>,
    /// The verified write set, when bounded and the program cannot resize the packet.
    writes: Option<Vec<(usize, usize)>>,
    /// Whether it may write packet bytes at all (filters that do run on a copy).
    may_write: bool,
}

impl ExtInfo {
    fn new(ext: Arc<Extension>) -> ExtInfo {
        let a = ext.analysis();
        let accepted = ext.verification().allows_jit();
        let ranges = |s: &AccessSet| match s {
            AccessSet::Ranges(r) => Some(
                r.iter()
                    .map(|b| (b.start as usize, b.end as usize))
                    .collect::<Vec<_>>(),
            ),
            AccessSet::Unbounded => None,
        };
        let reads = if accepted {
            ranges(&a.packet_reads)
        } else {
            None
        };
        let writes = if accepted && !a.may_resize {
            ranges(&a.packet_writes)
        } else {
            None
        };
        let may_write = !accepted || a.may_resize || !a.packet_writes.is_empty();
        ExtInfo {
            stateless: accepted && !a.stateful && !a.reads_metadata() && reads.is_some(),
            reads,
            writes,
            may_write,
            ext,
        }
    }
}

/// The extensions as workers see them: an immutable snapshot, replaced on every change.
#[derive(Default)]
struct ExtTable {
    /// By index; an index is never reused for another load, so cached translations that
    /// name an index cannot silently run a replacement.
    slots: Vec<Option<Arc<ExtInfo>>>,
    by_name: BTreeMap<String, u32>,
    /// Port hooks by ingress port.
    hooks: BTreeMap<PortNo, u32>,
}

impl ExtTable {
    fn get(&self, idx: u32) -> Option<&Arc<ExtInfo>> {
        self.slots.get(idx as usize).and_then(|s| s.as_ref())
    }
    fn index(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }
}

/// The shared datapath: bridge, extensions, ports and configuration.
///
/// **Locking:** the bridge is behind a mutex taken by upcalls, revalidation and the control
/// plane, never by a cache hit. Workers notice changes through two counters read without
/// locks at every batch: the bridge version (revalidate cached flows) and the extension
/// epoch (take a new extension snapshot and drop cached filter results).
pub struct Datapath {
    cfg: DpConfig,
    bridge: Mutex<Bridge>,
    version: AtomicU64,
    exts: RwLock<Arc<ExtTable>>,
    ext_epoch: AtomicU64,
}

impl Datapath {
    /// A datapath with no ports, no flows and no extensions.
    pub fn new(cfg: DpConfig) -> Arc<Datapath> {
        let bridge = Bridge::new();
        let version = AtomicU64::new(bridge.version());
        Arc::new(Datapath {
            cfg,
            bridge: Mutex::new(bridge),
            version,
            exts: RwLock::new(Arc::new(ExtTable::default())),
            ext_epoch: AtomicU64::new(1),
        })
    }
    /// The configuration.
    pub fn config(&self) -> &DpConfig {
        &self.cfg
    }
    /// Adds OpenFlow port `no` (included in floods).
    pub fn add_port(&self, no: PortNo) {
        self.with_bridge(|b| b.add_port(no, true));
    }
    /// Port numbers, in order.
    pub fn ports(&self) -> Vec<PortNo> {
        let mut v: Vec<PortNo> = self.lock_bridge().ports().map(|p| p.no).collect();
        v.sort_unstable();
        v
    }
    /// Applies a flow file in `ovs-ofctl add-flows` syntax; returns the number of flow mods.
    /// Nothing is applied if a line does not parse.
    pub fn add_flows(&self, text: &str, now_ns: u64) -> Result<usize, DpError> {
        let fms = ofproto_bridge::ofctl::parse_flows_file(text)?;
        for fm in &fms {
            self.flow_mod(fm, now_ns)?;
        }
        Ok(fms.len())
    }
    /// Applies one flow mod.
    pub fn flow_mod(&self, fm: &FlowMod, now_ns: u64) -> Result<(), DpError> {
        self.with_bridge(|b| b.apply_flow_mod(fm, now_ns))?;
        Ok(())
    }
    fn lock_bridge(&self) -> std::sync::MutexGuard<'_, Bridge> {
        self.bridge.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Runs `f` on the bridge (its version contract makes the workers revalidate).
    pub fn with_bridge<R>(&self, f: impl FnOnce(&mut Bridge) -> R) -> R {
        let mut b = self.lock_bridge();
        let r = f(&mut b);
        self.version.store(b.version(), Ordering::Release);
        r
    }
    /// The bridge version the workers revalidate against.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
    /// Every rule with its counters (as credited by the workers' last [`Worker::sync`]).
    pub fn dump_flows(&self) -> Vec<(RuleRef, Arc<Rule>, RuleMeta)> {
        self.lock_bridge().tables().rules()
    }
    /// Sets the bridge's reclassification policy.
    pub fn set_reclassify(&self, policy: Reclassify) {
        self.with_bridge(|b| b.set_reclassify(policy));
    }
    /// The bridge's reclassification policy.
    pub fn reclassify(&self) -> Reclassify {
        self.lock_bridge().reclassify()
    }
    /// Expires rules whose timeouts passed; returns how many.
    pub fn expire(&self, now_ns: u64) -> usize {
        self.with_bridge(|b| b.expire(now_ns).len())
    }
    fn ext_table(&self) -> Arc<ExtTable> {
        self.exts.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// Changes the extension table; bumps the epoch and the bridge version (translations
    /// name extensions by index).
    fn edit_exts<R>(
        &self,
        f: impl FnOnce(&mut ExtTable) -> Result<R, DpError>,
    ) -> Result<R, DpError> {
        let mut guard = self.exts.write().unwrap_or_else(|p| p.into_inner());
        let mut t = ExtTable {
            slots: guard.slots.clone(),
            by_name: guard.by_name.clone(),
            hooks: guard.hooks.clone(),
        };
        let r = f(&mut t)?;
        *guard = Arc::new(t);
        drop(guard);
        self.ext_epoch.fetch_add(1, Ordering::AcqRel);
        self.with_bridge(|b| b.bump_version());
        Ok(r)
    }
    /// Loads an extension under `name` (see [`LoadOptions`]; `opts.replace` swaps it in for
    /// the rules that reference the name).
    pub fn load_extension(
        &self,
        name: &str,
        bytes: &[u8],
        opts: &LoadOptions,
    ) -> Result<Arc<Extension>, DpError> {
        if !opts.replace && self.extension(name).is_some() {
            return Err(ExtError::Exists(name.into()).into());
        }
        let mut opts = opts.clone();
        opts.workers = opts.workers.max(self.cfg.workers);
        let ext = Arc::new(Extension::load(name, bytes, &opts)?);
        let info = Arc::new(ExtInfo::new(ext.clone()));
        self.edit_exts(|t| {
            if !opts.replace && t.by_name.contains_key(name) {
                return Err(ExtError::Exists(name.into()).into());
            }
            let idx = t.slots.len() as u32;
            t.slots.push(Some(info));
            if let Some(old) = t.by_name.insert(name.to_string(), idx) {
                t.slots[old as usize] = None;
                for h in t.hooks.values_mut() {
                    if *h == old {
                        *h = idx;
                    }
                }
            }
            Ok(())
        })?;
        Ok(ext)
    }
    /// Unloads an extension, refused while a rule or port hook references it.
    pub fn unload_extension(&self, name: &str) -> Result<(), DpError> {
        let mut users = self.rules_using(name);
        let table = self.ext_table();
        let Some(idx) = table.index(name) else {
            return Err(ExtError::NotFound {
                what: "extension",
                name: name.into(),
            }
            .into());
        };
        for (port, h) in &table.hooks {
            if *h == idx {
                users.push(format!("port hook on port {port}"));
            }
        }
        if !users.is_empty() {
            return Err(ExtError::InUse {
                name: name.into(),
                rules: users,
            }
            .into());
        }
        self.edit_exts(|t| {
            if let Some(i) = t.by_name.remove(name) {
                t.slots[i as usize] = None;
            }
            Ok(())
        })
    }
    /// The extension called `name`.
    pub fn extension(&self, name: &str) -> Option<Arc<Extension>> {
        let t = self.ext_table();
        t.index(name)
            .and_then(|i| t.get(i))
            .map(|info| info.ext.clone())
    }
    /// Every loaded extension, by name.
    pub fn extensions(&self) -> Vec<Arc<Extension>> {
        let t = self.ext_table();
        t.by_name
            .values()
            .filter_map(|i| t.get(*i))
            .map(|info| info.ext.clone())
            .collect()
    }
    /// Descriptions of the rules that reference extension `name` (filters or actions), in
    /// ovs-ofctl syntax.
    pub fn rules_using(&self, name: &str) -> Vec<String> {
        let b = self.lock_bridge();
        b.tables()
            .rules()
            .into_iter()
            .filter(|(_, r, _)| rule_uses(r, name))
            .map(|(_, r, _)| ofproto_bridge::ofctl::format_rule(&r))
            .collect()
    }
    /// The port hook attached to `port`, by extension name.
    pub fn port_hook(&self, port: PortNo) -> Option<String> {
        let t = self.ext_table();
        let idx = *t.hooks.get(&port)?;
        t.get(idx).map(|i| i.ext.name().to_string())
    }
    /// Updates a map entry from typed or hex text (invalidates cached filter results).
    pub fn map_update(&self, ext: &str, map: &str, key: &str, value: &str) -> Result<(), DpError> {
        self.named(ext)?.map_update_str(map, key, value)?;
        self.ext_epoch.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
    /// Deletes a map entry given as typed or hex text (invalidates cached filter results).
    pub fn map_delete(&self, ext: &str, map: &str, key: &str) -> Result<(), DpError> {
        self.named(ext)?.map_delete_str(map, key)?;
        self.ext_epoch.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
    /// Every entry of a map, as (key, value) bytes.
    pub fn map_dump(
        &self,
        ext: &str,
        map: &str,
    ) -> Result<Vec<crate::ext::registry::MapEntry>, DpError> {
        Ok(self.named(ext)?.map_dump(map)?)
    }
    /// Tells the workers that extension maps changed behind the datapath's back (a map
    /// written through [`Extension::map`] directly), so cached filter results are dropped.
    pub fn maps_changed(&self) {
        self.ext_epoch.fetch_add(1, Ordering::AcqRel);
    }
    fn named(&self, ext: &str) -> Result<Arc<Extension>, DpError> {
        self.extension(ext).ok_or_else(|| {
            ExtError::NotFound {
                what: "extension",
                name: ext.into(),
            }
            .into()
        })
    }
    /// Attaches extension `ext` to `port` as a hook run on every received packet before
    /// classification (`None` detaches).
    pub fn set_port_hook(&self, port: PortNo, ext: Option<&str>) -> Result<(), DpError> {
        if self.lock_bridge().port(port).is_none() {
            return Err(DpError::NoSuchPort(port));
        }
        self.edit_exts(|t| {
            match ext {
                Some(name) => {
                    let idx = t.index(name).ok_or_else(|| ExtError::NotFound {
                        what: "extension",
                        name: name.into(),
                    })?;
                    t.hooks.insert(port, idx);
                }
                None => {
                    t.hooks.remove(&port);
                }
            }
            Ok(())
        })
    }
    /// A packet-processing worker with its own caches (`id` selects per-worker map values).
    pub fn worker(self: &Arc<Self>, id: usize) -> Worker {
        Worker {
            dp: self.clone(),
            id,
            emc: Emc::new(),
            mf: MegaflowCache::new(self.cfg.megaflow_capacity),
            exts: self.ext_table(),
            ext_epoch: self.ext_epoch.load(Ordering::Acquire),
            version: 0,
            ports: Vec::new(),
            port_hint: 0,
            emc_lookup: self.cfg.emc,
            emc_on: true,
            emc_window: EmcWindow::default(),
            pending: [None; 2],
            ext_runs: ExtRuns::default(),
            c: Counters::default(),
            memo: Vec::new(),
            scratch: PacketBuf::new(),
            keys: Box::new([Staged::default(); MAX_BATCH]),
            last_sync_ns: 0,
            used_layout: false,
            bpf_ordinal: 0,
            stopped_at: None,
        }
    }
}

/// Whether `rule` references extension `name` as a filter or an action.
fn rule_uses(rule: &Rule, name: &str) -> bool {
    rule.r#match.bpf_filters.iter().any(|f| f == name)
        || rule
            .actions
            .iter()
            .any(|a| matches!(a, ofproto_bridge::Action::Bpf(n) if n == name))
}

/// Description of one installed megaflow (for dumps).
#[derive(Clone, Debug, Serialize)]
pub struct MegaflowInfo {
    /// The megaflow in `ovs-appctl dpctl/dump-flows` style: match, statistics and actions.
    pub text: String,
    /// Packets that hit it.
    pub packets: u64,
}

/// Per-port counters as a worker keeps them.
#[derive(Clone, Copy, Default)]
struct PortCounters {
    rx_packets: u64,
    rx_bytes: u64,
    forwarded: u64,
    tx_packets: u64,
    tx_bytes: u64,
    drops: [u64; DROP_REASONS.len()],
}

/// Worker counters that are not per port.
#[derive(Clone, Copy, Default)]
struct Counters {
    emc_hits: u64,
    megaflow_hits: u64,
    upcalls: u64,
    filter_mismatches: u64,
    recirculations: u64,
    recircs_avoided: u64,
    filter_runs: u64,
    filter_cached: u64,
    megaflows_installed: u64,
    revalidated: u64,
    revalidation_changes: u64,
}

/// A packet-processing worker: caches, counters, and the processing loop's entry points.
// Aligned to two cache lines (the pair the adjacent-line prefetcher fetches together), so
// that workers placed side by side never write the same line: their counters change on
// every packet.
#[repr(align(128))]
pub struct Worker {
    dp: Arc<Datapath>,
    id: usize,
    emc: Emc,
    mf: MegaflowCache,
    exts: Arc<ExtTable>,
    ext_epoch: u64,
    /// Bridge version the cached flows were last revalidated against (0: never synced).
    version: u64,
    ports: Vec<(PortNo, PortCounters)>,
    /// Index in `ports` of the port last looked up.
    port_hint: usize,
    /// Whether this batch looks packets up in the exact-match cache.
    emc_lookup: bool,
    /// Whether lookups are on for the current window (off: bypassed, probed).
    emc_on: bool,
    /// Exact-match lookups and hits in the current window.
    emc_window: EmcWindow,
    /// Hits of the two megaflows hit last that went through all their actions, not yet
    /// counted into them: (megaflow, packets, bytes, last timestamp), the latest first. Two,
    /// so that a recirculating flow's passes (two megaflows in turn) gather too.
    pending: [Option<(MfRef, u64, u64, u64)>; 2],
    /// What running extension actions and hooks keeps.
    ext_runs: ExtRuns,
    c: Counters,
    /// Filter results obtained during the current pass of the current packet.
    memo: Vec<(u32, bool)>,
    scratch: PacketBuf,
    /// The current batch's first-pass keys (batch stage).
    keys: Box<[Staged; MAX_BATCH]>,
    last_sync_ns: u64,
    /// Set by an upcall whose translation mapped a write set through the packet's layout.
    used_layout: bool,
    /// Ordinal of the next `Bpf` action of the pass being executed.
    bpf_ordinal: usize,
    /// The `Bpf` action that stopped the pass being executed, if one did.
    stopped_at: Option<usize>,
}

/// A packet's first-pass key as the batch stage left it.
#[derive(Clone, Copy, Default)]
struct Staged {
    flow: Flow,
    layout: Layout,
    /// The exact-match hash of `flow` (computed only for batches that look up).
    hash: u64,
}

/// The window over which exact-match lookups are judged (see [`DpConfig::emc_bypass`]).
#[derive(Clone, Copy, Default)]
struct EmcWindow {
    batches: u32,
    lookups: u64,
    hits: u64,
}

/// One packet on its way through its passes: where it came from, when, where outputs go, and
/// whether an earlier action or pass output it.
struct Packet<'a> {
    in_port: PortNo,
    pkt: &'a mut PacketBuf,
    ts_ns: u64,
    tx: &'a mut dyn TxSink,
    output_seen: bool,
}

/// Whether [`Worker::try_plan`] leaves a plan for runs ([`execute::Plan::batch`]) to a
/// [`Run`] instead of running it.
#[derive(Clone, Copy)]
enum Batching {
    /// It runs every plan.
    Never,
    /// It leaves a plan for runs ([`Tried::Batch`]) and runs the others. In both modes an
    /// extension's verdict other than pass is left to the caller ([`Tried::Stopped`]).
    Join,
    /// It leaves a plan for runs and runs only the others that output nothing (holding the
    /// rest, [`Tried::Held`]).
    JoinOrHold,
}

/// What [`Worker::try_plan`] did.
enum Tried {
    /// It ran the plan; the packet met this fate.
    Done(Fate),
    /// It ran the plan, which recirculates with this id (whether the pass output the packet
    /// is in its [`Packet`]).
    Recirc(u32),
    /// No compiled plan fits the packet: nothing ran.
    NoPlan,
    /// The plan is one for runs, for frames of at least `min_len` bytes: nothing ran but its
    /// lead extension, if it has one (`lead`, its index); the packet was `len` bytes long
    /// before.
    Batch {
        min_len: usize,
        len: usize,
        lead: Option<u32>,
    },
    /// Extension action `ordinal` of the plan returned this verdict (not a pass) for the
    /// packet, `len` bytes long before: the caller acts on it and counts the hit.
    Stopped {
        ordinal: usize,
        verdict: ExtVerdict,
        len: usize,
    },
    /// The plan is not one for runs, and [`Batching::JoinOrHold`] held it: nothing ran.
    Held,
}

/// Consecutive packets of a batch stage, `start..end`, whose last pass hit megaflow `mf`
/// with a plan for runs ([`execute::Plan::batch`]), not run yet (but for its lead extension):
/// they go through the plan together ([`Worker::run_batched`]) before any later packet of the
/// batch outputs anything, is translated or has a plan run that outputs, as Open vSwitch's
/// per-flow batches do, but without reordering any port's frames. Later packets whose passes
/// output nothing (an extension, a recirculation) may run before it: they touch only their
/// own frame and extension maps, which a plan for runs does not read.
#[derive(Clone, Copy)]
struct Run {
    mf: MfRef,
    /// The layout and shortest frame the megaflow's plan fits.
    layout: Layout,
    min_len: usize,
    start: usize,
    end: usize,
    /// The packets' bytes.
    bytes: u64,
    /// The extension the megaflow's plan starts with, if any, which every packet runs before
    /// it joins.
    lead: Option<u32>,
}

impl Run {
    const EMPTY: Run = Run {
        mf: MfRef::NONE,
        layout: Layout::EMPTY,
        min_len: 0,
        start: 0,
        end: 0,
        bytes: 0,
        lead: None,
    };

    /// The run of the `i`th packet alone, of `len` bytes, through megaflow `mf` whose plan
    /// fits frames laid out as `layout` and at least `min_len` bytes long and starts with
    /// extension `lead`, if any.
    fn new(
        mf: MfRef,
        layout: Layout,
        min_len: usize,
        lead: Option<u32>,
        i: usize,
        len: usize,
    ) -> Run {
        Run {
            mf,
            layout,
            min_len,
            start: i,
            end: i + 1,
            bytes: len as u64,
            lead,
        }
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the `i`th packet of the stage, which megaflow `mf` holds for, laid out as
    /// `layout` and `len` bytes long, may continue the run: it follows the run's last packet
    /// and fits its plan (it joins once the lead extension, if any, passes it).
    #[inline]
    fn takes(&self, i: usize, mf: MfRef, layout: &Layout, len: usize) -> bool {
        mf == self.mf && i == self.end && *layout == self.layout && len >= self.min_len
    }

    /// Adds the packet after the run's last, `len` bytes long.
    #[inline]
    fn push(&mut self, len: usize) {
        self.end += 1;
        self.bytes += len as u64;
    }
}

/// Counts `n` packets of a batch that met `fate` into the batch's forwarded count or the
/// ingress port's drops.
#[inline]
fn tally(forwarded: &mut u64, port: &mut PortCounters, fate: Fate, n: usize) {
    match fate {
        Fate::Forwarded => *forwarded += n as u64,
        Fate::Dropped(r) => port.drops[r as usize] += n as u64,
    }
}

/// How a packet's first pass starts.
#[derive(Clone, Copy)]
enum Start {
    /// With the actions of a megaflow that holds for the packet (laid out so), one by one.
    Hit(MfRef, Layout),
    /// With the translation of the key staged at this index, which no megaflow holds for.
    Miss(usize),
    /// By extracting the key.
    Extract,
    /// After a first pass that recirculates with this id (whether it output the packet is in
    /// the [`Packet`]).
    Recirc(u32),
}

/// Where a pass's key is: in the batch stage, or extracted by the pass itself.
#[derive(Clone, Copy)]
enum Key<'a> {
    Staged(usize),
    Local(&'a Flow),
}

/// How a pass of a packet through the caches ended.
enum PassEnd {
    Done(Fate),
    Recirc(u32),
}

/// An XDP (or uBPF) verdict as the pipeline acts on it.
enum ExtVerdict {
    Pass,
    Drop(DropReason),
    Tx,
    Redirect(PortNo),
}

/// The verdict of a run that ended with `retcode` under `abi` (`redirect`: the port a
/// redirect helper chose, if one ran).
fn verdict(abi: Abi, retcode: u64, redirect: Option<PortNo>) -> ExtVerdict {
    use crate::ext::vm::xdp;
    match abi {
        Abi::Ubpf => {
            if retcode == 0 {
                ExtVerdict::Drop(DropReason::ExtDrop)
            } else {
                ExtVerdict::Pass
            }
        }
        Abi::Xdp => match retcode as u32 as u64 {
            xdp::PASS => ExtVerdict::Pass,
            xdp::DROP => ExtVerdict::Drop(DropReason::ExtDrop),
            xdp::TX => ExtVerdict::Tx,
            xdp::REDIRECT => match redirect {
                Some(p) => ExtVerdict::Redirect(p),
                None => ExtVerdict::Drop(DropReason::ExtAborted),
            },
            // ABORTED, and any unknown action (the kernel warns and drops).
            _ => ExtVerdict::Drop(DropReason::ExtAborted),
        },
    }
}

/// What a worker keeps about running extensions (actions and port hooks).
#[derive(Default)]
struct ExtRuns {
    /// Run counts by extension index, not yet added to the extensions' shared counters.
    acc: Vec<ExtensionStats>,
    /// Runs so far (the worker's `ext_runs` counter; numbers runs for the timing sample).
    runs: u64,
    /// The last answer of [`ExtRuns::moves_headers`], by (extension, layout, frame length).
    relayout_memo: Option<((u32, Layout, usize), bool)>,
}

impl ExtRuns {
    /// Runs extension `idx` (an action or a port hook), counting into the per-extension
    /// accumulator ([`Worker::flush_ext_stats`] adds it to the extension); returns the verdict.
    #[inline(always)]
    fn run(
        &mut self,
        idx: u32,
        info: &ExtInfo,
        pkt: &mut PacketBuf,
        in_port: PortNo,
        ts_ns: u64,
    ) -> ExtVerdict {
        let i = idx as usize;
        if self.acc.len() <= i {
            self.acc.resize(i + 1, ExtensionStats::default());
        }
        self.runs += 1;
        let acc = &mut self.acc[i];
        // A leaf program cannot call the redirect helper, nor fault on the JIT.
        match info.ext.run_leaf_counted(pkt, in_port, self.runs, acc) {
            Some(retcode) => verdict(info.ext.abi(), retcode, None),
            None => run_general(info, pkt, in_port, ts_ns, self.runs, acc),
        }
    }

    /// [`ExtRuns::run`] for extension `idx` of `exts`, which a compiled plan names: one no
    /// longer in the table aborts the packet.
    #[inline(always)]
    fn run_in(
        &mut self,
        exts: &ExtTable,
        idx: u32,
        pkt: &mut PacketBuf,
        in_port: PortNo,
        ts_ns: u64,
    ) -> ExtVerdict {
        match exts.get(idx) {
            Some(info) => self.run(idx, info, pkt, in_port, ts_ns),
            None => ExtVerdict::Drop(DropReason::ExtAborted),
        }
    }

    /// Whether extension `idx`'s verified write set can move headers of `frame` (laid out
    /// as `layout`): then the layout must be re-parsed before the next header rewrite.
    ///
    /// The answer of [`write_impact`] about relayout
    /// depends on the write set, the layout and the frame's length, and on frame bytes only
    /// when the transport header did not parse (the IP length bounds a relayout region);
    /// outside that case the last answer is kept per (extension, layout, length). An index
    /// is never reused for another program, so it names one write set.
    fn moves_headers(&mut self, idx: u32, info: &ExtInfo, frame: &[u8], layout: &Layout) -> bool {
        let Some(writes) = &info.writes else {
            return true;
        };
        let key = (idx, *layout, frame.len());
        // (`relayout_known` settles the case of a parsed transport when a plan is compiled.)
        let memo = layout.l4_payload().is_some() || layout.l4().is_none();
        if memo {
            if let Some((k, v)) = self.relayout_memo {
                if k == key {
                    return v;
                }
            }
        }
        let v = moves_headers(writes, frame, layout);
        if memo {
            self.relayout_memo = Some((key, v));
        }
        v
    }
}

/// [`ExtRuns::run`] for every run but a leaf program's untimed one, out of line.
#[inline(never)]
fn run_general(
    info: &ExtInfo,
    pkt: &mut PacketBuf,
    in_port: PortNo,
    ts_ns: u64,
    nth: u64,
    acc: &mut ExtensionStats,
) -> ExtVerdict {
    match info.ext.run_counted(pkt, in_port, Some(ts_ns), nth, acc) {
        Ok(o) if o.fault.is_none() => verdict(info.ext.abi(), o.retcode, o.redirect),
        _ => ExtVerdict::Drop(DropReason::ExtAborted),
    }
}

/// Whether writing the ranges `writes` of `frame` (laid out as `layout`) can move headers.
fn moves_headers(writes: &[(usize, usize)], frame: &[u8], layout: &Layout) -> bool {
    writes
        .iter()
        .any(|&(a, b)| write_impact(frame, layout, a, b).relayout)
}

/// What compiling a plan for frames laid out as `layout` (`frame`: one of them) can know
/// about extension `idx` moving their headers.
fn relayout_known(exts: &ExtTable, idx: u32, frame: &[u8], layout: &Layout) -> execute::Relayout {
    use execute::Relayout;
    let Some(info) = exts.get(idx) else {
        // The plan stops at a missing extension: nothing after it runs.
        return Relayout::Never;
    };
    let Some(writes) = &info.writes else {
        // It may resize the packet, or was not verified.
        return Relayout::Can;
    };
    // With the transport header parsed, the regions that decide the parse sit at offsets of
    // the layout, inside the parsed headers, so the answer is the same for every frame laid
    // out so (`fieldmap`'s relayout_with_a_parsed_transport_depends_on_the_layout_only).
    if layout.l4_payload().is_none() {
        return Relayout::Ask;
    }
    if moves_headers(writes, frame, layout) {
        Relayout::Can
    } else {
        Relayout::Never
    }
}

/// Runs filter `info` on `pkt` (on a copy if the program may write) and says whether it
/// matched (returned non-zero, Oko's rule).
fn run_filter(
    info: &ExtInfo,
    pkt: &mut PacketBuf,
    scratch: &mut PacketBuf,
    in_port: PortNo,
    ts_ns: u64,
) -> bool {
    let r = if info.may_write {
        scratch.load(pkt.data());
        info.ext.run(scratch, in_port, Some(ts_ns))
    } else {
        info.ext.run(pkt, in_port, Some(ts_ns))
    };
    matches!(r, Ok(o) if o.fault.is_none() && o.retcode != 0)
}

/// What checking a cache hit's recorded conditions needs (borrowed from the worker).
struct CheckEnv<'a> {
    exts: &'a ExtTable,
    memo: &'a mut Vec<(u32, bool)>,
    scratch: &'a mut PacketBuf,
    c: &'a mut Counters,
    pkt: &'a mut PacketBuf,
    in_port: PortNo,
    ts_ns: u64,
}

impl CheckEnv<'_> {
    /// Whether megaflow `m`, which [`Megaflow::holds_as_recorded`] could not answer for,
    /// holds for the packet: its write-set layout is the packet's, and every filter it
    /// recorded answers the same (cached stateless results are reused when the guard holds;
    /// the others run, at most once per filter and pass).
    #[inline(never)]
    fn holds_running(&mut self, m: &Megaflow, guard: &Guard) -> bool {
        if m.write_layout.is_some_and(|wl| wl != guard.layout) {
            return false;
        }
        let reuse = m.guard.as_ref() == Some(guard);
        for (i, &(idx, want)) in m.xlation.filters.iter().enumerate() {
            if reuse && i < 64 && m.cached_filters & (1 << i) != 0 {
                self.c.filter_cached += 1;
                continue;
            }
            let got = match self.memo.iter().find(|(j, _)| *j == idx) {
                Some(&(_, g)) => g,
                None => {
                    let Some(info) = self.exts.get(idx) else {
                        return false;
                    };
                    self.c.filter_runs += 1;
                    let g = run_filter(info, self.pkt, self.scratch, self.in_port, self.ts_ns);
                    self.memo.push((idx, g));
                    g
                }
            };
            if got != want {
                self.c.filter_mismatches += 1;
                return false;
            }
        }
        true
    }
}

/// Translation's view of the packet being upcalled.
struct Hooks<'a> {
    exts: &'a ExtTable,
    pkt: &'a mut PacketBuf,
    scratch: &'a mut PacketBuf,
    layout: Layout,
    parsed: &'a Flow,
    in_port: PortNo,
    ts_ns: u64,
    memo: &'a mut Vec<(u32, bool)>,
    filter_runs: u64,
    /// Set when a write set was mapped onto fields through the layout.
    used_layout: bool,
}

impl XlateHooks for Hooks<'_> {
    fn filter(&mut self, name: &str) -> Option<(u32, bool)> {
        let idx = self.exts.index(name)?;
        if let Some(&(_, r)) = self.memo.iter().find(|(i, _)| *i == idx) {
            return Some((idx, r));
        }
        let info = self.exts.get(idx)?;
        self.filter_runs += 1;
        let r = run_filter(info, self.pkt, self.scratch, self.in_port, self.ts_ns);
        self.memo.push((idx, r));
        Some((idx, r))
    }

    fn ext_index(&self, name: &str) -> Option<u32> {
        self.exts.index(name)
    }

    fn bpf_write_set(&mut self, ext_index: u32, flow: &Flow, wc: &mut Flow) -> Option<Flow> {
        let info = self.exts.get(ext_index)?;
        if info.writes.as_ref()?.is_empty() {
            // Writes no packet byte: no field changes, whatever the layout.
            return Some(Flow::default());
        }
        // From here the answer depends on the packet's layout, whatever it is.
        self.used_layout = true;
        map_write_set(info, self.pkt.data(), &self.layout, self.parsed, flow, wc)
    }
}

/// The flow-key bits extension `info` may write when run on `frame` (parsed as `parsed`,
/// with `layout`) at a point of translation where the working key is `flow`; `None` when
/// they cannot be bounded. The layout fields this reads are un-wildcarded in `wc`, and the
/// caller must make the megaflow hold only for this layout.
fn map_write_set(
    info: &ExtInfo,
    frame: &[u8],
    layout: &Layout,
    parsed: &Flow,
    flow: &Flow,
    wc: &mut Flow,
) -> Option<Flow> {
    let writes = info.writes.as_ref()?;
    layout_mask(wc);
    // The write set is relative to the packet's start: map it through the layout of the
    // packet as parsed, which holds only while earlier actions did not move headers.
    if flow.vlans != parsed.vlans || flow.dl_type != parsed.dl_type {
        return None;
    }
    let mut fields = crate::packet::fieldmap::FieldSet::EMPTY;
    for &(start, end) in writes {
        let imp = write_impact(frame, layout, start, end);
        if imp.relayout || imp.unnamed {
            return None;
        }
        for f in imp.fields.iter() {
            fields.insert(f);
        }
    }
    Some(fields.mask())
}

/// Un-wildcards the flow-key fields that decide a frame's header layout.
/// Index of port `no`'s counters in `ports` (added on first use; indices stay valid, which
/// the output slots of compiled plans rely on).
fn port_slot(ports: &mut Vec<(PortNo, PortCounters)>, no: PortNo) -> u32 {
    let i = match ports.iter().position(|(p, _)| *p == no) {
        Some(i) => i,
        None => {
            ports.push((no, PortCounters::default()));
            ports.len() - 1
        }
    };
    i as u32
}

/// How running a compiled plan ended.
enum Planned {
    /// The pass ended so.
    End(PassEnd),
    /// Extension step `ordinal` returned this verdict (not a pass): the caller acts on it.
    Stopped(usize, ExtVerdict),
    /// An extension in the plan's relayout checks can move the packet's headers: nothing
    /// ran; execute the actions one by one.
    Unfit,
}

/// Runs a megaflow's compiled actions on a packet it [fits](execute::Plan::fits) (`actions`
/// are the ones it was compiled from), from step `skip` on; what [`Worker::execute`] does
/// with the actions, up to an extension's verdict other than pass. `EXT`: whether those
/// steps [run extensions](execute::Plan::exts) (the forwarding plans without any are
/// compiled apart).
#[inline(always)]
fn run_plan<const EXT: bool>(
    plan: &execute::Plan,
    skip: usize,
    actions: &[OdpAction],
    ports: &mut [(PortNo, PortCounters)],
    exts: &ExtTable,
    runs: &mut ExtRuns,
    packet: &mut Packet<'_>,
) -> Planned {
    let Packet {
        in_port,
        ref mut pkt,
        ts_ns,
        ref mut tx,
        ref mut output_seen,
    } = *packet;
    // Sliced once (and again after an extension, which may resize the frame): sliced from the
    // buffer at each step, the buffer's bounds would be read again after every write.
    let mut frame = pkt.data_mut();
    for &idx in plan.relayout_checks.iter().filter(|_| EXT) {
        if let Some(info) = exts.get(idx) {
            // Asked before the run: the answer is the same after it (see `execute_actions`).
            if runs.moves_headers(idx, info, frame, &plan.layout) {
                return Planned::Unfit;
            }
        }
    }
    for &step in &plan.steps[skip..] {
        match step {
            execute::Step::Output { port, slot } => {
                *output_seen = true;
                let c = &mut ports[slot as usize].1;
                c.tx_packets += 1;
                c.tx_bytes += frame.len() as u64;
                tx.transmit(port, frame, ts_ns);
            }
            execute::Step::Ext { idx, ordinal } if EXT => {
                let v = runs.run_in(exts, idx, pkt, in_port, ts_ns);
                if !matches!(v, ExtVerdict::Pass) {
                    return Planned::Stopped(ordinal as usize, v);
                }
                frame = pkt.data_mut();
            }
            _ => plan.rewrite(step, actions, frame),
        }
    }
    // `stopped` written out: through it the forwarding plan measured 7 instructions a packet
    // more (callgrind).
    Planned::End(match plan.end {
        execute::PlanEnd::Recirc(id) => PassEnd::Recirc(id),
        execute::PlanEnd::Drop(_) if *output_seen => PassEnd::Done(Fate::Forwarded),
        execute::PlanEnd::Drop(reason) => PassEnd::Done(Fate::Dropped(reason)),
    })
}

/// [`run_plan`] for a plan that runs extensions, out of line. A plan that starts with its
/// only extension (the shape `bpf(X),goto_table:N` translates to) runs it, then the rest as
/// a forwarding plan.
#[inline(never)]
fn run_ext_plan(
    plan: &execute::Plan,
    actions: &[OdpAction],
    ports: &mut [(PortNo, PortCounters)],
    exts: &ExtTable,
    runs: &mut ExtRuns,
    packet: &mut Packet<'_>,
) -> Planned {
    let Some(idx) = plan.lead_ext else {
        return run_plan::<true>(plan, 0, actions, ports, exts, runs, packet);
    };
    let v = runs.run_in(exts, idx, packet.pkt, packet.in_port, packet.ts_ns);
    if !matches!(v, ExtVerdict::Pass) {
        return Planned::Stopped(0, v);
    }
    run_plan::<false>(plan, 1, actions, ports, exts, runs, packet)
}

/// The fate of a packet whose pass stopped for `reason`: forwarded if an earlier action or
/// pass output it (`output_seen`), else dropped.
#[inline]
fn stopped(output_seen: bool, reason: DropReason) -> Fate {
    if output_seen {
        Fate::Forwarded
    } else {
        Fate::Dropped(reason)
    }
}

/// Counts one `pending` entry's hits (megaflow, packets, bytes, last timestamp) into its
/// megaflow, if it is still there.
#[inline]
fn count_pending(mf: &mut MegaflowCache, p: Option<(MfRef, u64, u64, u64)>) {
    if let Some((r, packets, bytes, ts)) = p {
        if let Some(m) = mf.get_mut(r) {
            m.count_n(packets, bytes, None, ts);
        }
    }
}

/// Offers megaflow `r`, found or installed for `flow` below the exact-match cache, to the
/// exact-match cache (`hash`: the flow's hash, when already computed).
#[inline]
fn learn_emc(
    emc: &mut Emc,
    mf: &MegaflowCache,
    cfg: &DpConfig,
    flow: &Flow,
    hash: Option<u64>,
    r: MfRef,
) {
    if cfg.emc {
        emc.probabilistic_insert(
            cfg.emc_insert_inv_prob,
            flow,
            || hash.unwrap_or_else(|| crate::emc::hash(flow)),
            r,
            |x| mf.is_live(x),
        );
    }
}

fn layout_mask(wc: &mut Flow) {
    wc.dl_type = !0;
    for v in wc.vlans.iter_mut() {
        v.tpid = !0;
        v.tci = !0;
    }
    wc.nw_proto = !0;
    wc.nw_frag = !0;
}

impl Worker {
    /// The datapath this worker belongs to.
    pub fn datapath(&self) -> &Arc<Datapath> {
        &self.dp
    }

    /// Index of port `no`'s counters in `ports` (added on first use; indices stay valid).
    #[inline]
    fn port_index(&mut self, no: PortNo) -> usize {
        // Most packets of a batch go out of one port: try the last one found first.
        let hint = self.port_hint;
        if self.ports.get(hint).is_some_and(|(p, _)| *p == no) {
            return hint;
        }
        let i = self.port_index_slow(no);
        self.port_hint = i;
        i
    }

    fn port_index_slow(&mut self, no: PortNo) -> usize {
        port_slot(&mut self.ports, no) as usize
    }

    #[inline]
    fn port(&mut self, no: PortNo) -> &mut PortCounters {
        let i = self.port_index(no);
        &mut self.ports[i].1
    }

    /// Processes every packet of `batch`, received on `in_port` (timestamps are the batch's).
    ///
    /// Without a port hook, the batch goes through the first pass stage by stage, as Open
    /// vSwitch's `dp_netdev_input` does: every packet's key is extracted, then every key is
    /// hashed (the key's stores have retired by then, so reading it word by word does not
    /// stall on store forwarding, and the exact-match slots are prefetched), then each packet
    /// is looked up and executed. A port hook may rewrite the packet before it is parsed, so
    /// with one each packet is extracted after its hook ran.
    pub fn process_batch(&mut self, in_port: PortNo, batch: &mut Batch, tx: &mut dyn TxSink) {
        let Some((_, ts0)) = batch.get(0) else {
            return;
        };
        self.sync_if_needed(ts0);
        self.emc_decide();
        // Per batch, not per packet: the ingress port's counters and its hook.
        let pi = self.port_index(in_port);
        let hook = self.exts.hooks.get(&in_port).copied();
        let (mut bytes, mut forwarded) = (0, 0);
        let staged = hook.is_none() && self.dp.cfg.megaflow;
        let n = batch.len();
        let (pkts, stamps) = batch.parts_mut();
        for (pkts, stamps) in pkts.chunks_mut(MAX_BATCH).zip(stamps.chunks(MAX_BATCH)) {
            if staged {
                for (k, pkt) in self.keys.iter_mut().zip(pkts.iter()) {
                    crate::packet::extract_to(pkt.data(), in_port, &mut k.flow, &mut k.layout);
                }
                if self.emc_lookup {
                    for k in &mut self.keys[..pkts.len()] {
                        k.hash = crate::emc::hash(&k.flow);
                        self.emc.prefetch(k.hash);
                    }
                }
            }
            let mut run = Run::EMPTY;
            'packets: for i in 0..pkts.len() {
                // The packets before this one, where the run is, and this one.
                let (done, rest) = pkts.split_at_mut(i);
                let (pkt, ts) = (&mut rest[0], stamps[i]);
                // Runs the waiting run, if any, before the packet outputs anything.
                macro_rules! flush {
                    ($tx:expr) => {
                        self.flush_run(&mut run, done, stamps, $tx, pi, &mut forwarded)
                    };
                }
                // Counts this packet, which met `fate`, alone.
                macro_rules! tally_one {
                    ($fate:expr) => {
                        tally(&mut forwarded, &mut self.ports[pi].1, $fate, 1)
                    };
                }
                let len = pkt.len();
                bytes += len as u64;
                let found = staged.then(|| self.lookup_staged(i, pkt, in_port, ts));
                let mut stopped = None;
                if let Some(Some(r)) = found {
                    if run.takes(i, r, &self.keys[i].layout, len) {
                        // The plan is the run's: only its lead extension stands between the
                        // packet and the run.
                        let v = match run.lead {
                            Some(idx) => self.ext_runs.run_in(&self.exts, idx, pkt, in_port, ts),
                            None => ExtVerdict::Pass,
                        };
                        if matches!(v, ExtVerdict::Pass) {
                            run.push(len);
                            continue;
                        }
                        stopped = Some(v);
                    }
                }
                let packet = &mut Packet {
                    in_port,
                    pkt,
                    ts_ns: ts,
                    tx: &mut *tx,
                    output_seen: false,
                };
                // The megaflow of the pass under way and the packet's layout, and how many
                // times the packet recirculated.
                let (mut r, mut layout, mut passes) = match found {
                    Some(Some(r)) => (r, self.keys[i].layout, 0),
                    Some(None) => {
                        flush!(packet.tx);
                        let fate = self.pipeline_synced(hook, Start::Miss(i), 0, packet);
                        tally_one!(fate);
                        continue;
                    }
                    None => {
                        let fate = self.pipeline_synced(hook, Start::Extract, 0, packet);
                        tally_one!(fate);
                        continue;
                    }
                };
                if let Some(verdict) = stopped {
                    flush!(packet.tx);
                    let fate = self.stopped_by(r, 0, verdict, len, packet);
                    tally_one!(fate);
                    continue;
                }
                let start = loop {
                    let batching = if run.len() == 0 {
                        Batching::Join
                    } else {
                        Batching::JoinOrHold
                    };
                    match self.try_plan(r, layout, packet, batching) {
                        Tried::Done(f) => {
                            tally_one!(f);
                            continue 'packets;
                        }
                        Tried::Batch { min_len, len, lead } => {
                            if run.mf == r && run.end == i {
                                run.push(len);
                            } else {
                                flush!(packet.tx);
                                run = Run::new(r, layout, min_len, lead, i, len);
                            }
                            continue 'packets;
                        }
                        // The run goes first; then the packet, again.
                        Tried::Held => {
                            flush!(packet.tx)
                        }
                        Tried::Stopped {
                            ordinal,
                            verdict,
                            len,
                        } => {
                            flush!(packet.tx);
                            let fate = self.stopped_by(r, ordinal, verdict, len, packet);
                            tally_one!(fate);
                            continue 'packets;
                        }
                        Tried::NoPlan => break Start::Hit(r, layout),
                        Tried::Recirc(id) if packet.output_seen || passes == MAX_RECIRC_DEPTH => {
                            break Start::Recirc(id)
                        }
                        // The next pass looked up here, so that its plan may join a run too.
                        Tried::Recirc(id) => {
                            passes += 1;
                            self.c.recirculations += 1;
                            match self.lookup_recirculated(id, packet) {
                                Ok((r2, l2)) => (r, layout) = (r2, l2),
                                Err(miss) => {
                                    flush!(packet.tx);
                                    let end = self.miss(&miss.0, miss.1, None, packet);
                                    let fate = self.passes(end, passes, packet);
                                    self.sync_if_needed(ts);
                                    tally_one!(fate);
                                    continue 'packets;
                                }
                            }
                        }
                    }
                };
                flush!(packet.tx);
                let fate = self.pipeline_synced(hook, start, passes, packet);
                tally_one!(fate);
            }
            self.flush_run(&mut run, pkts, stamps, tx, pi, &mut forwarded);
        }
        let p = &mut self.ports[pi].1;
        p.rx_packets += n as u64;
        p.rx_bytes += bytes;
        p.forwarded += forwarded;
        self.end_batch();
    }

    /// Processes one packet received on `in_port` at `ts_ns`.
    pub fn process(
        &mut self,
        in_port: PortNo,
        pkt: &mut PacketBuf,
        ts_ns: u64,
        tx: &mut dyn TxSink,
    ) -> Fate {
        self.sync_if_needed(ts_ns);
        self.emc_decide();
        let pi = self.port_index(in_port);
        let hook = self.exts.hooks.get(&in_port).copied();
        let len = pkt.len() as u64;
        let packet = &mut Packet {
            in_port,
            pkt,
            ts_ns,
            tx,
            output_seen: false,
        };
        let fate = self.pipeline(hook, Start::Extract, 0, packet);
        let p = &mut self.ports[pi].1;
        p.rx_packets += 1;
        p.rx_bytes += len;
        match fate {
            Fate::Forwarded => p.forwarded += 1,
            Fate::Dropped(r) => p.drops[r as usize] += 1,
        }
        self.end_batch();
        fate
    }

    /// Adds what the batch gathered per worker (megaflow hits, extension runs) to the shared
    /// counters, so that readers outside a batch see exact counts.
    #[inline]
    fn end_batch(&mut self) {
        self.flush_pending();
        self.flush_ext_stats();
    }

    /// Decides whether this batch looks up the exact-match cache: Open vSwitch's EMC costs
    /// a hash and a probe per packet, which pays only when most lookups hit (with 64k flows
    /// it hits one packet in eight and costs a quarter of the throughput). Off for a window
    /// when fewer than half the lookups hit; while off, one batch in [`EMC_PROBE_EVERY`]
    /// looks up, and a window whose probes hit half the time turns lookups back on.
    #[inline]
    fn emc_decide(&mut self) {
        if !self.dp.cfg.emc || !self.dp.cfg.emc_bypass {
            self.emc_lookup = self.dp.cfg.emc;
            return;
        }
        let w = &mut self.emc_window;
        w.batches += 1;
        if w.batches > EMC_WINDOW {
            if w.lookups > 0 {
                self.emc_on = w.hits * 2 >= w.lookups;
            }
            *w = EmcWindow {
                batches: 1,
                ..EmcWindow::default()
            };
        }
        self.emc_lookup = self.emc_on || w.batches.is_multiple_of(EMC_PROBE_EVERY);
    }

    #[inline]
    fn sync_if_needed(&mut self, now_ns: u64) {
        if self.version != self.dp.version.load(Ordering::Acquire)
            || self.ext_epoch != self.dp.ext_epoch.load(Ordering::Acquire)
        {
            self.sync(now_ns);
        }
    }

    fn transmit(&mut self, tx: &mut dyn TxSink, port: PortNo, frame: &[u8], ts_ns: u64) {
        let p = self.port(port);
        p.tx_packets += 1;
        p.tx_bytes += frame.len() as u64;
        tx.transmit(port, frame, ts_ns);
    }

    /// [`Worker::pipeline`] for a packet of a batch, then the sync a translation may have
    /// made due (a MAC learnt changes the tables): the next packet must not hit a megaflow
    /// they no longer agree with, as it would not one packet at a time (`process` syncs
    /// before every packet).
    #[inline(never)]
    fn pipeline_synced(
        &mut self,
        hook: Option<u32>,
        start: Start,
        passes: u32,
        packet: &mut Packet<'_>,
    ) -> Fate {
        let fate = self.pipeline(hook, start, passes, packet);
        self.sync_if_needed(packet.ts_ns);
        fate
    }

    /// Runs a packet through its port hook and its passes; `start` says what the batch stage
    /// did for the pass under way (when it did anything, there is no hook, and `packet` says
    /// whether an earlier pass output it), after `passes` recirculations.
    fn pipeline(
        &mut self,
        hook: Option<u32>,
        start: Start,
        passes: u32,
        packet: &mut Packet<'_>,
    ) -> Fate {
        if let Some(hook) = hook {
            if let Some(info) = self.exts.get(hook).cloned() {
                let (in_port, ts_ns) = (packet.in_port, packet.ts_ns);
                match self.ext_runs.run(hook, &info, packet.pkt, in_port, ts_ns) {
                    ExtVerdict::Pass => {}
                    ExtVerdict::Drop(_) => return Fate::Dropped(DropReason::PortHook),
                    ExtVerdict::Tx => {
                        let frame = packet.pkt.data().to_vec();
                        self.transmit(packet.tx, in_port, &frame, ts_ns);
                        return Fate::Forwarded;
                    }
                    ExtVerdict::Redirect(p) => {
                        return self.redirect(packet.tx, packet.pkt, p, ts_ns)
                    }
                }
            }
        }
        let end = match start {
            Start::Hit(r, layout) => self.run_actions(r, layout, packet),
            Start::Miss(i) => {
                let k = self.keys[i];
                let hash = self.emc_lookup.then_some(k.hash);
                let guard = Guard {
                    layout: k.layout,
                    len: packet.pkt.len() as u32,
                };
                self.miss(&k.flow, guard, hash, packet)
            }
            Start::Extract => self.pass(0, packet),
            Start::Recirc(id) => PassEnd::Recirc(id),
        };
        self.passes(end, passes, packet)
    }

    /// The packet's passes after one that ended so, `passes` recirculations into them.
    fn passes(&mut self, mut end: PassEnd, mut passes: u32, packet: &mut Packet<'_>) -> Fate {
        loop {
            match end {
                PassEnd::Done(f) => return f,
                PassEnd::Recirc(id) => {
                    passes += 1;
                    self.c.recirculations += 1;
                    if passes > MAX_RECIRC_DEPTH {
                        return stopped(packet.output_seen, DropReason::TooDeep);
                    }
                    end = self.pass(id, packet);
                }
            }
        }
    }

    /// A pass with recirculation id `id` looked up as [`Worker::pass`] does, without running
    /// anything: the megaflow that holds for the packet and its layout, or the key and guard
    /// to translate.
    fn lookup_recirculated(
        &mut self,
        id: u32,
        packet: &mut Packet<'_>,
    ) -> Result<(MfRef, Layout), Box<(Flow, Guard)>> {
        let Packet {
            in_port,
            ref mut pkt,
            ts_ns,
            ..
        } = *packet;
        let mut flow = Flow::default();
        let layout = extract(pkt.data(), in_port, &mut flow);
        flow.recirc_id = id;
        self.memo.clear();
        let guard = Guard {
            layout,
            len: pkt.len() as u32,
        };
        match self.cached(Key::Local(&flow), None, &guard, pkt, in_port, ts_ns) {
            Some(r) => Ok((r, layout)),
            None => Err(Box::new((flow, guard))),
        }
    }

    /// Looks up the staged key of the `i`th packet of the stage without the general pass's
    /// set-up: the megaflow [`Worker::cached`] finds.
    #[inline]
    fn lookup_staged(
        &mut self,
        i: usize,
        pkt: &mut PacketBuf,
        in_port: PortNo,
        ts_ns: u64,
    ) -> Option<MfRef> {
        let k = &self.keys[i];
        let (layout, hash) = (k.layout, self.emc_lookup.then_some(k.hash));
        let guard = Guard {
            layout,
            len: pkt.len() as u32,
        };
        self.memo.clear();
        self.cached(Key::Staged(i), hash, &guard, pkt, in_port, ts_ns)
    }

    /// Runs `run` if it holds packets ([`Worker::run_batched`]), counting their fate into
    /// `forwarded` or the drops of port `pi`, and empties it.
    #[inline(always)]
    fn flush_run(
        &mut self,
        run: &mut Run,
        pkts: &mut [PacketBuf],
        stamps: &[u64],
        tx: &mut dyn TxSink,
        pi: usize,
        forwarded: &mut u64,
    ) {
        if run.len() > 0 {
            let fate = self.run_batched(*run, pkts, stamps, tx);
            tally(forwarded, &mut self.ports[pi].1, fate, run.len());
            *run = Run::EMPTY;
        }
    }

    /// Runs the packets of `run` (of `pkts`, stamped `stamps`) through their megaflow's plan a
    /// step at a time (after its lead extension, which they ran as they joined) and counts
    /// them; the fate of each of them.
    #[inline(never)]
    fn run_batched(
        &mut self,
        run: Run,
        pkts: &mut [PacketBuf],
        stamps: &[u64],
        tx: &mut dyn TxSink,
    ) -> Fate {
        let Worker { mf, ports, .. } = self;
        let m = mf.get(run.mf).expect("live megaflow");
        let (plan, actions) = m.compiled().expect("a run's megaflow has a plan");
        let (pkts, stamps) = (&mut pkts[run.start..run.end], &stamps[run.start..run.end]);
        let mut output_seen = false;
        // The lead extension ran as each packet joined.
        let skip = usize::from(plan.lead_ext.is_some());
        for &step in &plan.steps[skip..] {
            match step {
                execute::Step::Output { port, slot } => {
                    output_seen = true;
                    let bytes = pkts.iter().map(|p| p.len() as u64).sum::<u64>();
                    tx.transmit_burst(port, pkts, stamps);
                    let c = &mut ports[slot as usize].1;
                    c.tx_packets += run.len() as u64;
                    c.tx_bytes += bytes;
                }
                _ => plan.rewrite_all(step, actions, pkts),
            }
        }
        let fate = match plan.end {
            execute::PlanEnd::Drop(_) if output_seen => Fate::Forwarded,
            execute::PlanEnd::Drop(reason) => Fate::Dropped(reason),
            execute::PlanEnd::Recirc(_) => unreachable!("a plan for runs does not recirculate"),
        };
        let last = stamps[stamps.len() - 1];
        self.count_hits(run.mf, run.len() as u64, run.bytes, last);
        fate
    }

    /// Executes megaflow `r`'s actions on the packet, through its plan when one fits, and
    /// counts it.
    #[inline]
    fn run_megaflow(&mut self, r: MfRef, layout: Layout, packet: &mut Packet<'_>) -> PassEnd {
        match self.try_plan(r, layout, packet, Batching::Never) {
            Tried::Done(fate) => PassEnd::Done(fate),
            Tried::Recirc(id) => PassEnd::Recirc(id),
            Tried::NoPlan => self.run_actions(r, layout, packet),
            Tried::Batch { .. } | Tried::Held | Tried::Stopped { .. } => {
                unreachable!("not batching")
            }
        }
    }

    /// Runs megaflow `r`'s compiled plan on the packet and counts it, if a plan fits the
    /// packet (and no extension in it can move the headers it rewrites), unless `batching`
    /// says otherwise.
    #[inline(always)]
    fn try_plan(
        &mut self,
        r: MfRef,
        layout: Layout,
        packet: &mut Packet<'_>,
        batching: Batching,
    ) -> Tried {
        let Worker {
            mf,
            ports,
            exts,
            ext_runs,
            ..
        } = self;
        let mf = mf.get_mut(r).expect("live megaflow");
        let len = packet.pkt.len();
        let (plan, actions) = match mf.plan(&layout, len) {
            Some(p) => p,
            None if mf.plan_untried() => {
                mf.compile_plan(
                    &layout,
                    |p| port_slot(ports, p),
                    |idx| relayout_known(exts, idx, packet.pkt.data(), &layout),
                );
                match mf.plan(&layout, len) {
                    Some(p) => p,
                    None => return Tried::NoPlan,
                }
            }
            None => return Tried::NoPlan,
        };
        match batching {
            Batching::Never => {}
            _ if plan.batch => {
                let min_len = plan.min_len as usize;
                if let Some(idx) = plan.lead_ext {
                    let v = ext_runs.run_in(exts, idx, packet.pkt, packet.in_port, packet.ts_ns);
                    if !matches!(v, ExtVerdict::Pass) {
                        return Tried::Stopped {
                            ordinal: 0,
                            verdict: v,
                            len,
                        };
                    }
                }
                return Tried::Batch {
                    min_len,
                    len,
                    lead: plan.lead_ext,
                };
            }
            // A plan that outputs nothing may run before the waiting run: it changes only its
            // own packet (and extension maps, which no plan for runs reads).
            Batching::JoinOrHold if !plan.quiet => return Tried::Held,
            _ => {}
        }
        let before = packet.output_seen;
        let end = if plan.exts {
            run_ext_plan(plan, actions, ports, exts, ext_runs, packet)
        } else {
            run_plan::<false>(plan, 0, actions, ports, exts, ext_runs, packet)
        };
        let (len, ts_ns) = (len as u64, packet.ts_ns);
        match end {
            Planned::End(end) => {
                self.count_hit(r, len, None, ts_ns);
                match end {
                    PassEnd::Done(fate) => Tried::Done(fate),
                    PassEnd::Recirc(id) => Tried::Recirc(id),
                }
            }
            Planned::Stopped(ordinal, verdict) if !matches!(batching, Batching::Never) => {
                Tried::Stopped {
                    ordinal,
                    verdict,
                    len: len as usize,
                }
            }
            Planned::Stopped(ordinal, v) => {
                let fate = self.act_on(v, packet);
                self.count_hit(r, len, Some(ordinal), ts_ns);
                Tried::Done(fate)
            }
            Planned::Unfit => {
                debug_assert_eq!(before, packet.output_seen, "nothing ran");
                Tried::NoPlan
            }
        }
    }

    /// Acts on `verdict`, which extension action `ordinal` of megaflow `r`'s plan returned for
    /// the packet (`len` bytes long before), and counts the hit; the packet's fate.
    fn stopped_by(
        &mut self,
        r: MfRef,
        ordinal: usize,
        verdict: ExtVerdict,
        len: usize,
        packet: &mut Packet<'_>,
    ) -> Fate {
        let fate = self.act_on(verdict, packet);
        self.count_hit(r, len as u64, Some(ordinal), packet.ts_ns);
        fate
    }

    /// Executes megaflow `r`'s actions on the packet one by one, and counts it.
    fn run_actions(&mut self, r: MfRef, layout: Layout, packet: &mut Packet<'_>) -> PassEnd {
        let (len, ts_ns) = (packet.pkt.len() as u64, packet.ts_ns);
        // The actions are borrowed from the cache while they run; running them never
        // touches the cache (a recirculation returns first).
        let actions: *const [OdpAction] = self
            .mf
            .get(r)
            .expect("live megaflow")
            .xlation
            .actions
            .as_slice();
        // SAFETY: `execute` does not add, remove or modify megaflows (it touches only
        // counters, the packet and the sink), so the slice stays valid while it runs.
        let actions = unsafe { &*actions };
        let (end, stop) = self.execute(actions, layout, packet);
        self.count_hit(r, len, stop, ts_ns);
        end
    }

    /// Counts a packet of `len` bytes that megaflow `r` handled (`stop`: the extension action
    /// that stopped it); packets that went through every action are gathered in `pending`.
    #[inline]
    fn count_hit(&mut self, r: MfRef, len: u64, stop: Option<usize>, ts_ns: u64) {
        if stop.is_some() {
            self.mf
                .get_mut(r)
                .expect("live megaflow")
                .count(len, stop, ts_ns);
            return;
        }
        self.count_hits(r, 1, len, ts_ns);
    }

    /// Counts `n` packets of `bytes` bytes in all that went through every action of megaflow
    /// `r`, the last at `ts_ns`, into `pending`.
    #[inline]
    fn count_hits(&mut self, r: MfRef, n: u64, bytes: u64, ts_ns: u64) {
        let add = |p: &mut (MfRef, u64, u64, u64)| {
            p.1 += n;
            p.2 += bytes;
            p.3 = ts_ns;
        };
        match &mut self.pending {
            [Some(p), _] if p.0 == r => add(p),
            [_, Some(p)] if p.0 == r => add(p),
            [latest, older] => {
                count_pending(&mut self.mf, older.take());
                *older = latest.replace((r, n, bytes, ts_ns));
            }
        }
    }

    /// Counts the hits gathered in `pending` into their megaflows (before the cache changes
    /// and at the end of every batch, so readers outside a batch see exact counts).
    #[inline]
    fn flush_pending(&mut self) {
        for p in &mut self.pending {
            count_pending(&mut self.mf, p.take());
        }
    }

    fn redirect(&mut self, tx: &mut dyn TxSink, pkt: &PacketBuf, port: PortNo, ts: u64) -> Fate {
        if self.dp.lock_bridge().port(port).is_none() {
            return Fate::Dropped(DropReason::NoSuchPort);
        }
        let frame = pkt.data().to_vec();
        self.transmit(tx, port, &frame, ts);
        Fate::Forwarded
    }

    /// One pass after the first (or the first of a packet the batch stage did not extract):
    /// extract, look up (or translate), execute.
    fn pass(&mut self, recirc_id: u32, packet: &mut Packet<'_>) -> PassEnd {
        let Packet {
            in_port,
            ref mut pkt,
            ts_ns,
            ..
        } = *packet;
        let mut flow = Flow::default();
        let layout = extract(pkt.data(), in_port, &mut flow);
        flow.recirc_id = recirc_id;
        self.memo.clear();
        let guard = Guard {
            layout,
            len: pkt.len() as u32,
        };
        if self.dp.cfg.megaflow {
            if let Some(r) = self.cached(Key::Local(&flow), None, &guard, pkt, in_port, ts_ns) {
                return self.run_megaflow(r, layout, packet);
            }
        }
        self.miss(&flow, guard, None, packet)
    }

    /// A pass whose key no cached megaflow holds for: translate, install, execute.
    fn miss(
        &mut self,
        flow: &Flow,
        guard: Guard,
        hash: Option<u64>,
        packet: &mut Packet<'_>,
    ) -> PassEnd {
        let layout = guard.layout;
        let x = self.upcall(flow, layout, packet.pkt, packet.ts_ns);
        if self.dp.cfg.megaflow {
            match self.install(flow, x, guard, packet.pkt.data()) {
                Ok(r) => {
                    learn_emc(&mut self.emc, &self.mf, &self.dp.cfg, flow, hash, r);
                    // Through the general executor: the plan is compiled on the megaflow's
                    // first hit, so a megaflow no second packet hits never pays for it.
                    return self.run_actions(r, layout, packet);
                }
                Err(x) => return self.run_uncached(&x, layout, packet),
            }
        }
        self.run_uncached(&x, layout, packet)
    }

    /// Executes a translation that is not cached and credits its rules.
    fn run_uncached(&mut self, x: &Xlation, layout: Layout, packet: &mut Packet<'_>) -> PassEnd {
        let (len, ts_ns) = (packet.pkt.len(), packet.ts_ns);
        let (end, stop) = self.execute(&x.actions, layout, packet);
        self.credit_uncached(x, len, stop, ts_ns);
        end
    }

    /// Looks the key up in the caches; returns the megaflow to execute if one matches and its
    /// recorded filter results still hold.
    // Always: the fast path's lookup, which a call costs ~50 instructions a packet.
    #[inline(always)]
    #[allow(
        clippy::too_many_arguments,
        reason = "the per-packet state of one pass"
    )]
    fn cached(
        &mut self,
        key: Key<'_>,
        hash: Option<u64>,
        guard: &Guard,
        pkt: &mut PacketBuf,
        in_port: PortNo,
        ts_ns: u64,
    ) -> Option<MfRef> {
        let Worker {
            dp,
            emc,
            mf,
            exts,
            memo,
            scratch,
            c,
            keys,
            emc_lookup,
            emc_window,
            ..
        } = self;
        let flow = match key {
            Key::Local(f) => f,
            Key::Staged(i) => &keys[i].flow,
        };
        let use_emc = dp.cfg.emc;
        let mut hash = hash;
        // Whether megaflow `m` holds: most have nothing to run (`holds_as_recorded`), and the
        // filter-running environment is put together only for the others (built up front,
        // its references cost a dozen stores a packet).
        macro_rules! holds {
            ($m:expr) => {
                match $m.holds_as_recorded(guard) {
                    Some(reused) => {
                        c.filter_cached += reused;
                        true
                    }
                    None => CheckEnv {
                        exts,
                        memo,
                        scratch,
                        c,
                        pkt,
                        in_port,
                        ts_ns,
                    }
                    .holds_running($m, guard),
                }
            };
        }
        if use_emc && *emc_lookup {
            let h = *hash.get_or_insert_with(|| crate::emc::hash(flow));
            emc_window.lookups += 1;
            if let Some(r) = emc.lookup(flow, h) {
                match mf.get(r) {
                    Some(m) if holds!(m) => {
                        c.emc_hits += 1;
                        emc_window.hits += 1;
                        return Some(r);
                    }
                    Some(_) => {}
                    None => emc.remove(flow, h),
                }
            }
        }
        let r = mf.lookup_with(flow, |_, m| holds!(m))?;
        c.megaflow_hits += 1;
        // Also while lookups are bypassed, so that a probe sees what the cache would hold.
        learn_emc(emc, mf, &dp.cfg, flow, hash, r);
        Some(r)
    }

    /// Credits the rules of a megaflow that an upcall replaced with what it still counted.
    fn credit_replaced(&self, old: &mut Megaflow) {
        credit_megaflow(&mut self.dp.lock_bridge(), old);
    }

    /// Credits the rules of a translation that no megaflow will count, for one packet that
    /// stopped at extension action `stop` (if it did).
    fn credit_uncached(&self, x: &Xlation, len: usize, stop: Option<usize>, ts_ns: u64) {
        let n = stop
            .and_then(|k| x.bpf_marks.get(k))
            .map_or(x.rules.len(), |&m| m as usize);
        self.dp
            .lock_bridge()
            .credit_rules(&x.rules[..n], 1, len as u64, ts_ns);
    }

    /// Translates `flow` (a cache miss).
    fn upcall(&mut self, flow: &Flow, layout: Layout, pkt: &mut PacketBuf, ts_ns: u64) -> Xlation {
        self.c.upcalls += 1;
        let exts = self.exts.clone();
        let mut hooks = Hooks {
            exts: &exts,
            pkt,
            scratch: &mut self.scratch,
            layout,
            parsed: flow,
            in_port: flow.in_port,
            ts_ns,
            memo: &mut self.memo,
            filter_runs: 0,
            used_layout: false,
        };
        let params = XlateParams {
            now_ns: ts_ns,
            may_learn: true,
        };
        let x = {
            let mut b = self.dp.lock_bridge();
            let x = translate(&mut b, flow, params, &mut hooks);
            self.dp.version.store(b.version(), Ordering::Release);
            x
        };
        self.c.filter_runs += hooks.filter_runs;
        self.c.recircs_avoided += u64::from(x.recircs_avoided);
        self.used_layout = hooks.used_layout;
        x
    }

    /// Installs the translation of `flow` as a megaflow; gives the translation back when the
    /// cache is full.
    fn install(
        &mut self,
        flow: &Flow,
        x: Xlation,
        guard: Guard,
        frame: &[u8],
    ) -> Result<MfRef, Box<Xlation>> {
        let mut mf = Megaflow::new(*flow, x);
        // Only a translation that went past an extension action thanks to a write set mapped
        // through this layout depends on it: one that recirculated anyway is right for any
        // layout (recirculating is always safe, and a packet an extension stops is credited
        // the same either way).
        if std::mem::take(&mut self.used_layout) && mf.xlation.recircs_avoided > 0 {
            mf.write_layout = Some(guard.layout);
            mf.write_frame = Some(frame.into());
        }
        // Stateless filters whose reads the flow key and the layout determine need not run
        // on a hit that meets the guard: un-wildcard what determines those bytes.
        let mut extra = Flow::default();
        let mut cached = 0u64;
        for (i, &(idx, _)) in mf.xlation.filters.iter().enumerate().take(64) {
            let Some(info) = self.exts.get(idx) else {
                continue;
            };
            if !info.stateless {
                continue;
            }
            let Some(reads) = &info.reads else { continue };
            if let Some(m) = read_cover(flow, &guard.layout, reads) {
                extra.or_assign(&m);
                cached |= 1 << i;
            }
        }
        if cached != 0 {
            mf.mask.or_assign(&extra);
            layout_mask(&mut mf.mask);
            mf.guard = Some(guard);
            mf.cached_filters = cached;
        }
        self.flush_pending();
        match self.mf.insert(mf) {
            Ok((r, replaced)) => {
                self.c.megaflows_installed += 1;
                if let Some(mut old) = replaced {
                    self.credit_replaced(&mut old);
                }
                Ok(r)
            }
            Err(mf) => Err(Box::new(mf.xlation)),
        }
    }
}

impl Worker {
    /// Runs datapath actions on the packet; says how the pass ended and, if an extension
    /// action stopped the pipeline, which one (its ordinal among the `Bpf` actions).
    fn execute(
        &mut self,
        actions: &[OdpAction],
        layout: Layout,
        packet: &mut Packet<'_>,
    ) -> (PassEnd, Option<usize>) {
        self.bpf_ordinal = 0;
        self.stopped_at = None;
        let end = self.execute_actions(actions, layout, packet);
        (end, self.stopped_at)
    }

    fn execute_actions(
        &mut self,
        actions: &[OdpAction],
        mut layout: Layout,
        packet: &mut Packet<'_>,
    ) -> PassEnd {
        let Packet {
            in_port,
            ref mut pkt,
            ts_ns,
            ref mut tx,
            ref mut output_seen,
        } = *packet;
        // Set after an extension ran: its writes may have moved headers.
        let mut stale = false;
        for a in actions {
            if stale
                && matches!(
                    a,
                    OdpAction::SetMasked { .. } | OdpAction::PushVlan { .. } | OdpAction::PopVlan
                )
            {
                layout = extract(pkt.data(), in_port, &mut self.scratch_flow());
                stale = false;
            }
            match a {
                OdpAction::Output(p) => {
                    *output_seen = true;
                    let p = *p;
                    let port = self.port(p);
                    port.tx_packets += 1;
                    port.tx_bytes += pkt.len() as u64;
                    tx.transmit(p, pkt.data(), ts_ns);
                }
                OdpAction::Userspace { max_len } => {
                    *output_seen = true;
                    let n = if *max_len == 0 {
                        pkt.len()
                    } else {
                        pkt.len().min(*max_len as usize)
                    };
                    let port = self.port(OFPP_CONTROLLER);
                    port.tx_packets += 1;
                    port.tx_bytes += n as u64;
                    tx.transmit(OFPP_CONTROLLER, &pkt.data()[..n], ts_ns);
                }
                OdpAction::SetMasked { field, value, mask } => {
                    // A header the packet lacks is skipped silently, as Open vSwitch does.
                    let _ = execute::set_masked(pkt.data_mut(), &layout, *field, *value, *mask);
                }
                OdpAction::PushVlan { tpid, tci } => {
                    if let Ok(l) = execute::push_vlan(pkt, &layout, *tpid, *tci) {
                        layout = l;
                    }
                }
                OdpAction::PopVlan => {
                    if let Ok(l) = execute::pop_vlan(pkt, &layout) {
                        layout = l;
                    }
                }
                OdpAction::Bpf(idx) => {
                    let Some(info) = self.exts.get(*idx) else {
                        self.stopped_at = Some(self.bpf_ordinal);
                        return self.stop(*output_seen, DropReason::ExtAborted);
                    };
                    let info: *const ExtInfo = Arc::as_ptr(info);
                    // SAFETY: the extension snapshot `self.exts` is only replaced by `sync`,
                    // between batches, never while actions run; the pointer stays valid for
                    // this action (it saves two atomic reference-count updates per run).
                    let info = unsafe { &*info };
                    let v = self.ext_runs.run(*idx, info, pkt, in_port, ts_ns);
                    // Re-parse before the next header rewrite only if the program's verified
                    // write set can move headers (or it has none: it may resize, or was not
                    // accepted). The relayout regions are positioned by bytes that are
                    // themselves relayout regions, so asking after the run answers as before.
                    stale = stale || self.ext_runs.moves_headers(*idx, info, pkt.data(), &layout);
                    if !matches!(v, ExtVerdict::Pass) {
                        self.stopped_at = Some(self.bpf_ordinal);
                    }
                    self.bpf_ordinal += 1;
                    if !matches!(v, ExtVerdict::Pass) {
                        let fate = self.act_on(v, packet);
                        return PassEnd::Done(fate);
                    }
                }
                OdpAction::Recirc(id) => return PassEnd::Recirc(*id),
                OdpAction::Drop(reason) => return self.stop(*output_seen, *reason),
            }
        }
        self.stop(*output_seen, DropReason::Action)
    }

    /// Adds the run counts gathered since the last flush to the extensions' counters (at the
    /// end of every batch, before the extension snapshot can change).
    fn flush_ext_stats(&mut self) {
        for (i, acc) in self.ext_runs.acc.iter_mut().enumerate() {
            if acc.runs != 0 {
                if let Some(info) = self.exts.get(i as u32) {
                    info.ext.add_stats(acc);
                }
                *acc = ExtensionStats::default();
            }
        }
    }

    /// What becomes of a packet an extension action stopped with verdict `v` (not a pass).
    fn act_on(&mut self, v: ExtVerdict, packet: &mut Packet<'_>) -> Fate {
        match v {
            ExtVerdict::Pass => unreachable!("a pass verdict does not stop the actions"),
            ExtVerdict::Drop(reason) => stopped(packet.output_seen, reason),
            ExtVerdict::Tx => {
                let frame = packet.pkt.data().to_vec();
                self.transmit(packet.tx, packet.in_port, &frame, packet.ts_ns);
                Fate::Forwarded
            }
            ExtVerdict::Redirect(p) => {
                match self.redirect(packet.tx, packet.pkt, p, packet.ts_ns) {
                    Fate::Dropped(r) => stopped(packet.output_seen, r),
                    f => f,
                }
            }
        }
    }

    fn scratch_flow(&mut self) -> Flow {
        Flow::default()
    }

    fn stop(&self, output_seen: bool, reason: DropReason) -> PassEnd {
        PassEnd::Done(stopped(output_seen, reason))
    }

    /// Brings the worker up to date: credits rules with what cached flows counted, and
    /// revalidates cached flows if the bridge changed (or drops them all if the extensions
    /// or their maps changed). Called by `process_batch`; call it at the end of a run so
    /// rule counters are complete.
    pub fn sync(&mut self, now_ns: u64) {
        // Hits gathered in the middle of a batch count before rules are credited.
        self.flush_pending();
        self.last_sync_ns = now_ns;
        crate::ext::maps::set_current_worker(self.id);
        let epoch = self.dp.ext_epoch.load(Ordering::Acquire);
        let mut b = self.dp.lock_bridge();
        // Credit rules first: revalidation may change which rules a megaflow credits.
        for r in self.mf.refs() {
            credit_megaflow(&mut b, self.mf.get_mut(r).expect("live"));
        }
        if epoch != self.ext_epoch {
            // New extensions or map contents: recorded filter results and write sets may
            // no longer hold.
            self.exts = self.dp.ext_table();
            self.ext_epoch = epoch;
            self.mf.clear();
            self.emc.clear();
            self.version = b.version();
            self.dp.version.store(b.version(), Ordering::Release);
            return;
        }
        let exts = self.exts.clone();
        loop {
            let version = b.version();
            if version == self.version {
                break;
            }
            for r in self.mf.refs() {
                // An earlier replacement in this loop may have taken this megaflow's place.
                let Some(mf) = self.mf.get_mut(r) else {
                    continue;
                };
                if mf.xlation.version == version {
                    continue;
                }
                self.c.revalidated += 1;
                let flow = mf.flow;
                let mf = self.mf.get(r).expect("live");
                let mut hooks = RevalHooks {
                    exts: &exts,
                    packet: mf
                        .write_layout
                        .as_ref()
                        .zip(mf.write_frame.as_deref())
                        .map(|(l, f)| (f, *l, mf.flow)),
                    needs_packet: false,
                };
                // Cached traffic was handled before the change: it learns nothing now (its
                // MAC ages were refreshed above).
                let params = XlateParams {
                    now_ns,
                    may_learn: false,
                };
                let reval = revalidate(&mut b, &flow, &mf.xlation, params, &mut hooks);
                let learns = match &reval {
                    Revalidation::Changed(x) => &x.learns,
                    _ => &mf.xlation.learns,
                };
                if hooks.needs_packet || !learning_reflected(&b, learns) {
                    // The next packet of this flow would learn something the MAC table does
                    // not say (a hit cannot learn): let it make an upcall.
                    self.c.revalidation_changes += 1;
                    self.mf.remove(r);
                    continue;
                }
                match reval {
                    Revalidation::Unchanged => {
                        let v = b.version();
                        if let Some(mf) = self.mf.get_mut(r) {
                            mf.xlation.version = v;
                        }
                    }
                    Revalidation::Changed(x) => {
                        self.c.revalidation_changes += 1;
                        let old = self.mf.remove(r).expect("live");
                        // Cached filter results of the old translation are not carried over.
                        // (Statistics were credited above: a replaced megaflow has none left.)
                        let mut new = Megaflow::new(flow, *x);
                        new.write_layout = old.write_layout;
                        new.write_frame = old.write_frame;
                        let _ = self.mf.insert(new);
                    }
                    Revalidation::Invalid => {
                        self.c.revalidation_changes += 1;
                        self.mf.remove(r);
                    }
                }
            }
            self.version = version;
        }
        self.dp.version.store(b.version(), Ordering::Release);
        self.version = b.version();
    }

    /// Periodic maintenance at time `now_ns`: credits rules with what cached flows counted,
    /// expires rules whose timeouts passed, and revalidates. Rule idle times are exact for the
    /// traffic this worker handled (other workers credit theirs when they sync, as Open
    /// vSwitch's revalidators push statistics before deciding on idle flows).
    pub fn maintain(&mut self, now_ns: u64) -> usize {
        self.sync(now_ns);
        let n = self.dp.expire(now_ns);
        self.sync(now_ns);
        n
    }

    /// The worker's counters.
    pub fn stats(&self) -> DpStats {
        let mut ports = BTreeMap::new();
        for (no, p) in &self.ports {
            let mut drops = BTreeMap::new();
            for (i, n) in p.drops.iter().enumerate() {
                if *n > 0 {
                    drops.insert(DROP_REASONS[i], *n);
                }
            }
            ports.insert(
                *no,
                PortStats {
                    rx_packets: p.rx_packets,
                    rx_bytes: p.rx_bytes,
                    forwarded: p.forwarded,
                    tx_packets: p.tx_packets,
                    tx_bytes: p.tx_bytes,
                    drops,
                },
            );
        }
        let c = &self.c;
        DpStats {
            ports,
            emc_hits: c.emc_hits,
            megaflow_hits: c.megaflow_hits,
            upcalls: c.upcalls,
            filter_mismatches: c.filter_mismatches,
            recirculations: c.recirculations,
            recircs_avoided: c.recircs_avoided,
            filter_runs: c.filter_runs,
            filter_cached: c.filter_cached,
            ext_runs: self.ext_runs.runs,
            megaflows_installed: c.megaflows_installed,
            revalidated: c.revalidated,
            revalidation_changes: c.revalidation_changes,
        }
    }

    /// Empties both caches (after crediting the rules with what they counted).
    pub fn flush_caches(&mut self) {
        let now = self.last_sync_ns;
        self.sync(now);
        self.mf.clear();
        self.emc.clear();
    }

    /// Number of installed megaflows.
    pub fn megaflow_count(&self) -> usize {
        self.mf.len()
    }

    /// Number of megaflow subtables (distinct masks).
    pub fn subtable_count(&self) -> usize {
        self.mf.subtables()
    }

    /// Every installed megaflow.
    pub fn dump_megaflows(&self) -> Vec<MegaflowInfo> {
        self.mf
            .iter()
            .map(|mf| {
                let m = ofproto_bridge::Match {
                    flow: mf.flow.masked(&mf.mask),
                    mask: mf.mask,
                    bpf_filters: Vec::new(),
                };
                let mut text = format!(
                    "recirc_id({}),{} packets:{}, bytes:{}, actions:{}",
                    mf.flow.recirc_id,
                    ofproto_bridge::ofctl::format_match(&m, ofproto_bridge::rule::DEFAULT_PRIORITY),
                    mf.packets,
                    mf.bytes,
                    format_odp(&mf.xlation.actions)
                );
                if !mf.xlation.filters.is_empty() {
                    let f: Vec<String> = mf
                        .xlation
                        .filters
                        .iter()
                        .map(|(i, r)| format!("{}={}", self.ext_name(*i), u8::from(*r)))
                        .collect();
                    text.push_str(&format!(", filters:{}", f.join(",")));
                }
                MegaflowInfo {
                    text,
                    packets: mf.packets,
                }
            })
            .collect()
    }

    fn ext_name(&self, idx: u32) -> String {
        self.exts
            .get(idx)
            .map(|i| i.ext.name().to_string())
            .unwrap_or_else(|| format!("#{idx}"))
    }
}

/// Credits `mf`'s rules with what it counted since the last time, and refreshes the MAC
/// entries its translation learnt, as its packets would have.
fn credit_megaflow(b: &mut Bridge, mf: &mut Megaflow) {
    if mf.uncredited.iter().all(|u| u.0 == 0) {
        return;
    }
    let x = &mf.xlation;
    for (k, u) in mf.uncredited.iter_mut().enumerate() {
        if u.0 == 0 {
            continue;
        }
        // Packets stopped by the `k`th extension action reached only the rules before it.
        let n = x.bpf_marks.get(k).map_or(x.rules.len(), |&m| m as usize);
        b.credit_rules(&x.rules[..n], u.0, u.1, mf.used_ns);
        *u = (0, 0);
    }
    // The hits would have refreshed what the translation's `normal` learnt (learning comes
    // before any extension action of a pass), as of the last one. Only refresh: an entry that
    // moved since was moved by a later packet, and revalidation deals with this megaflow.
    for &(vlan, mac, port) in &x.learns {
        if b.mac_learning().lookup(vlan, mac) == Some(port) {
            b.learn_mac(vlan, mac, port, mf.used_ns);
        }
    }
}

/// Whether the bridge's MAC table holds what `learns` (a translation's learning, in order)
/// leaves behind.
fn learning_reflected(b: &Bridge, learns: &[(u16, [u8; 6], PortNo)]) -> bool {
    learns.iter().enumerate().all(|(i, &(vlan, mac, port))| {
        // A later entry for the same address supersedes this one.
        learns[i + 1..]
            .iter()
            .any(|&(v, m, _)| (v, m) == (vlan, mac))
            || b.mac_learning().lookup(vlan, mac) == Some(port)
    })
}

/// Datapath actions in `dpctl/dump-flows` style.
pub fn format_odp(actions: &[OdpAction]) -> String {
    if actions.is_empty() {
        return "drop".into();
    }
    actions
        .iter()
        .map(|a| match a {
            OdpAction::Output(p) => p.to_string(),
            OdpAction::Userspace { max_len } => format!("userspace(max_len={max_len})"),
            OdpAction::SetMasked { field, value, mask } => {
                format!("set({}={value:#x}/{mask:#x})", field.name())
            }
            OdpAction::PushVlan { tpid, tci } => {
                format!("push_vlan(tpid={tpid:#06x},tci={tci:#06x})")
            }
            OdpAction::PopVlan => "pop_vlan".into(),
            OdpAction::Bpf(i) => format!("bpf({i})"),
            OdpAction::Recirc(id) => format!("recirc({id:#x})"),
            OdpAction::Drop(r) => format!("drop({r:?})"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Hooks for revalidation: extension indexes, and write sets mapped through the frame the
/// megaflow was installed from (its layout is the megaflow's guard), as the upcall did;
/// filters are answered from the recorded results and never run.
struct RevalHooks<'a> {
    exts: &'a ExtTable,
    /// The installing packet's frame, layout and key, when its translation used them.
    packet: Option<(&'a [u8], Layout, Flow)>,
    /// Set when the translation needed a write set mapped through a packet it lacks.
    needs_packet: bool,
}

impl XlateHooks for RevalHooks<'_> {
    fn filter(&mut self, name: &str) -> Option<(u32, bool)> {
        self.exts.index(name).map(|i| (i, false))
    }
    fn ext_index(&self, name: &str) -> Option<u32> {
        self.exts.index(name)
    }
    fn bpf_write_set(&mut self, ext_index: u32, flow: &Flow, wc: &mut Flow) -> Option<Flow> {
        let info = self.exts.get(ext_index)?;
        if info.writes.as_ref()?.is_empty() {
            return Some(Flow::default());
        }
        let Some((frame, layout, parsed)) = self.packet.as_ref() else {
            // The upcall would map the write set through the packet's bytes, which this
            // megaflow did not keep: it cannot be revalidated, only deleted.
            self.needs_packet = true;
            return None;
        };
        map_write_set(info, frame, layout, parsed, flow, wc)
    }
}

/// The flow-key bits that determine packet bytes `reads` of a frame with `layout` and key
/// `flow`, or `None` when some byte read is not determined by the key and the layout (a
/// length or checksum field, an IP identification, payload...). With these bits and the
/// layout and length equal, two packets agree on every byte in `reads`.
fn read_cover(flow: &Flow, layout: &Layout, reads: &[(usize, usize)]) -> Option<Flow> {
    let mut m = Flow::default();
    for &(start, end) in reads {
        for b in start..end {
            cover_byte(flow, layout, b, &mut m)?;
        }
    }
    Some(m)
}

fn cover_byte(flow: &Flow, l: &Layout, b: usize, m: &mut Flow) -> Option<()> {
    let l3 = l.l3()?;
    if b < 6 {
        m.dl_dst[b] = 0xff;
        return Some(());
    }
    if b < 12 {
        m.dl_src[b - 6] = 0xff;
        return Some(());
    }
    if b < l3 {
        // Tags and the Ethertype: only for plain 802.1Q/802.1ad tags (no LLC/SNAP/MPLS).
        if l.l2_5().is_some() || l3 != 14 + 4 * l.n_vlans as usize {
            return None;
        }
        let tag = (b - 12) / 4;
        if tag < l.n_vlans as usize {
            m.vlans[tag].tpid = !0;
            m.vlans[tag].tci = !0;
        } else {
            m.dl_type = !0;
        }
        return Some(());
    }
    let _ = flow;
    if l.is_ipv4() {
        let l4 = l.l4()?;
        if b < l4 {
            return match b - l3 {
                // Version and IHL: the layout says IPv4 and where L4 starts.
                0 => Some(()),
                1 => {
                    m.nw_tos = 0xff;
                    Some(())
                }
                8 => {
                    m.nw_ttl = 0xff;
                    Some(())
                }
                9 => {
                    m.nw_proto = 0xff;
                    Some(())
                }
                12..=15 => {
                    m.nw_src = !0;
                    Some(())
                }
                16..=19 => {
                    m.nw_dst = !0;
                    Some(())
                }
                _ => None,
            };
        }
        if l.nw_frag & ofproto_bridge::flow::FRAG_LATER != 0 {
            return None;
        }
        return cover_l4(l, b - l4, m);
    }
    if l.is_ipv6() {
        let l4 = l.l4()?;
        // Only the fixed header, and only when no extension header follows it.
        if l4 != l3 + 40 {
            return None;
        }
        if b < l4 {
            let o = b - l3;
            match o {
                0..=3 => {
                    // Version, traffic class, flow label.
                    m.nw_tos = 0xff;
                    m.ipv6_label = !0;
                }
                6 => m.nw_proto = 0xff,
                7 => m.nw_ttl = 0xff,
                8..=23 => m.ipv6_src[o - 8] = 0xff,
                24..=39 => m.ipv6_dst[o - 24] = 0xff,
                _ => return None,
            }
            return Some(());
        }
        return cover_l4(l, b - l4, m);
    }
    None
}

fn cover_l4(l: &Layout, o: usize, m: &mut Flow) -> Option<()> {
    use crate::packet::ip_proto;
    l.l4_payload()?;
    m.nw_proto = 0xff;
    match (l.nw_proto, o) {
        (ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP, 0..=1) => m.tp_src = !0,
        (ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP, 2..=3) => m.tp_dst = !0,
        // Data offset (the layout) and the flags.
        (ip_proto::TCP, 12..=13) => m.tcp_flags = !0,
        (ip_proto::ICMP | ip_proto::ICMPV6, 0) => m.tp_src = !0,
        (ip_proto::ICMP | ip_proto::ICMPV6, 1) => m.tp_dst = !0,
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::builder::udp4_frame;

    const FLOWS: &str = "\
table=0,priority=100,in_port=1,udp,nw_dst=10.1.0.0/16,tp_dst=53,actions=mod_dl_dst:00:00:00:00:00:aa,dec_ttl,output:2
table=0,priority=0,actions=drop
";

    fn frame(f: u32) -> Vec<u8> {
        udp_to(f, 53)
    }

    /// Flow `f`'s frame to UDP port `tp_dst`.
    fn udp_to(f: u32, tp_dst: u16) -> Vec<u8> {
        udp4_frame(
            [0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 2],
            0x0a00_0000 | f,
            0x0a01_0001,
            1024 + f as u16,
            tp_dst,
            &[0; 18],
        )
    }

    fn setup(cfg: DpConfig) -> (Arc<Datapath>, Worker) {
        let dp = Datapath::new(cfg);
        dp.add_port(1);
        dp.add_port(2);
        dp.add_flows(FLOWS, 0).unwrap();
        let w = dp.worker(0);
        (dp, w)
    }

    #[test]
    fn forwards_rewrites_and_counts_every_cache_level() {
        let (dp, mut w) = setup(DpConfig {
            emc_insert_inv_prob: 1,
            ..DpConfig::default()
        });
        let mut out = Vec::new();
        let mut sink = |p: PortNo, f: &[u8], _ts: u64| out.push((p, f.to_vec()));
        for i in 0..10u32 {
            let mut pkt = PacketBuf::from_slice(&frame(i % 2));
            assert_eq!(w.process(1, &mut pkt, i as u64, &mut sink), Fate::Forwarded);
        }
        let mut pkt = PacketBuf::from_slice(&frame(0));
        assert_eq!(
            w.process(2, &mut pkt, 11, &mut sink),
            Fate::Dropped(DropReason::Action)
        );
        assert_eq!(out.len(), 10);
        let (p, f) = &out[0];
        assert_eq!(*p, 2);
        assert_eq!(&f[..6], &[0, 0, 0, 0, 0, 0xaa]);
        assert_eq!(f[22], 63, "TTL decremented");
        let s = w.stats();
        assert_eq!(
            s.upcalls, 2,
            "one megaflow for the port-1 traffic, one for port 2"
        );
        assert_eq!(w.megaflow_count(), 2);
        // Flow 0's upcall and flow 1's first megaflow hit insert them into the EMC.
        assert_eq!(s.megaflow_hits, 1);
        assert_eq!(s.emc_hits, 8);
        assert_eq!(s.rx(), s.forwarded() + s.dropped());
        assert_eq!(s.ports[&2].tx_packets, 10);
        w.sync(20);
        let rules = dp.dump_flows();
        let hits: u64 = rules.iter().map(|(_, _, m)| m.stats.packets).sum();
        assert_eq!(hits, 11);
    }

    #[test]
    fn a_flow_table_change_revalidates_cached_flows() {
        let (dp, mut w) = setup(DpConfig::default());
        let mut n = 0;
        let mut sink = |_: PortNo, _: &[u8], _: u64| n += 1;
        let mut pkt = PacketBuf::from_slice(&frame(1));
        assert_eq!(w.process(1, &mut pkt, 0, &mut sink), Fate::Forwarded);
        dp.add_flows("table=0,priority=200,udp,actions=drop", 1)
            .unwrap();
        let mut pkt = PacketBuf::from_slice(&frame(1));
        assert_eq!(
            w.process(1, &mut pkt, 2, &mut sink),
            Fate::Dropped(DropReason::Action)
        );
        assert!(w.stats().revalidation_changes >= 1);
    }

    #[test]
    fn cacheless_gives_the_same_outputs() {
        let run = |cfg: DpConfig| {
            let (_dp, mut w) = setup(cfg);
            let mut out = Vec::new();
            let mut sink = |p: PortNo, f: &[u8], _ts: u64| out.push((p, f.to_vec()));
            for i in 0..50u32 {
                let mut pkt = PacketBuf::from_slice(&frame(i % 7));
                w.process(1 + i % 2, &mut pkt, i as u64, &mut sink);
            }
            out
        };
        assert_eq!(run(DpConfig::default()), run(DpConfig::cacheless()));
    }

    /// Runs `batches` batches of 32 packets of flows `flow(i)` through `w`.
    fn run_batches(w: &mut Worker, batches: u32, flow: impl Fn(u32) -> u32) {
        let mut sink = |_: PortNo, _: &[u8], _: u64| {};
        let mut batch = Batch::new();
        for b in 0..batches {
            batch.clear();
            for i in 0..32 {
                batch.push(&frame(flow(b * 32 + i)), u64::from(b));
            }
            w.process_batch(1, &mut batch, &mut sink);
        }
    }

    #[test]
    fn exact_match_lookups_are_bypassed_while_they_miss_and_resume_when_they_would_hit() {
        let (_dp, mut w) = setup(DpConfig::default());
        // One flow: the exact-match cache answers, lookups stay on.
        run_batches(&mut w, 4 * EMC_WINDOW, |_| 1);
        assert!(w.emc_on);
        let hits = w.stats().emc_hits;
        assert!(hits > 0);
        // 20000 flows round robin: an 8192-entry cache can hold fewer than half of them.
        run_batches(&mut w, 20 * EMC_WINDOW, |i| 2 + i % 20_000);
        assert!(!w.emc_on, "lookups should be bypassed");
        let before = w.stats();
        run_batches(&mut w, EMC_WINDOW, |i| 2 + i % 20_000);
        let after = w.stats();
        assert_eq!(after.upcalls, before.upcalls, "every flow has its megaflow");
        // Probes only: one batch in EMC_PROBE_EVERY looks up.
        assert!(after.emc_hits - before.emc_hits <= u64::from(32 * EMC_WINDOW / EMC_PROBE_EVERY));
        assert_eq!(
            after.emc_hits + after.megaflow_hits - before.emc_hits - before.megaflow_hits,
            u64::from(32 * EMC_WINDOW)
        );
        // Back to one flow: a probe sees hits, and the next window looks up every batch.
        run_batches(&mut w, 3 * EMC_WINDOW, |_| 1);
        assert!(w.emc_on, "lookups should resume");
        let before = w.stats();
        run_batches(&mut w, EMC_WINDOW, |_| 1);
        let after = w.stats();
        assert_eq!(after.emc_hits - before.emc_hits, u64::from(32 * EMC_WINDOW));
    }

    #[test]
    fn without_bypass_every_packet_looks_up() {
        let (_dp, mut w) = setup(DpConfig {
            emc_bypass: false,
            ..DpConfig::default()
        });
        run_batches(&mut w, 4 * EMC_WINDOW, |i| 2 + i % 20_000);
        assert!(w.emc_lookup);
    }

    /// What processing `warm` one packet at a time, then `batch` (in one batch when
    /// `batched`, else one packet at a time), all on port 1, shows: the frames out in order,
    /// the rule counters, the worker's counters, and the megaflows with their hits.
    #[allow(
        clippy::type_complexity,
        reason = "a test's observations, compared whole"
    )]
    fn observe(
        dp: &Arc<Datapath>,
        warm: &[Vec<u8>],
        batch: &[Vec<u8>],
        batched: bool,
    ) -> (
        Vec<(PortNo, Vec<u8>)>,
        Vec<(String, u64, u64)>,
        DpStats,
        Vec<(String, u64)>,
    ) {
        let mut w = dp.worker(0);
        let mut out = Vec::new();
        let mut sink = |p: PortNo, f: &[u8], _ts: u64| out.push((p, f.to_vec()));
        for (t, f) in warm.iter().enumerate() {
            w.process(1, &mut PacketBuf::from_slice(f), t as u64, &mut sink);
        }
        if batched {
            let mut b = Batch::new();
            for (t, f) in batch.iter().enumerate() {
                assert!(b.push(f, 100 + t as u64));
            }
            w.process_batch(1, &mut b, &mut sink);
        } else {
            for (t, f) in batch.iter().enumerate() {
                w.process(1, &mut PacketBuf::from_slice(f), 100 + t as u64, &mut sink);
            }
        }
        w.sync(1000);
        let rules = dp
            .dump_flows()
            .iter()
            .map(|(_, r, m)| (format!("{r:?}"), m.stats.packets, m.stats.bytes))
            .collect();
        let mut flows = w.dump_megaflows();
        flows.sort_by(|a, b| a.text.cmp(&b.text));
        let flows = flows.iter().map(|m| (m.text.clone(), m.packets)).collect();
        (out, rules, w.stats(), flows)
    }

    /// A batch whose packets hit, in turn, a megaflow with a plan for runs (rewrites and one
    /// output), one whose plan outputs twice (not one for runs), one that drops (a run with
    /// no output), and a flow that needs an upcall: the outputs, fates and counters are the
    /// ones packet-by-packet processing gives.
    #[test]
    fn runs_of_one_megaflow_keep_the_order_of_the_batch() {
        const FLOWS: &str = "\
table=0,priority=100,udp,tp_dst=53,actions=mod_dl_dst:00:00:00:00:00:aa,dec_ttl,output:2
table=0,priority=100,udp,tp_dst=54,actions=output:2,mod_nw_tos:4,output:3
table=0,priority=100,udp,tp_dst=55,actions=drop
table=0,priority=100,udp,tp_dst=56,actions=mod_dl_src:00:00:00:00:00:bb,output:3
";
        let pkt = udp_to;
        // Each flow's megaflow is installed and hit once (which compiles its plan), but 56's.
        let warm: Vec<_> = [53, 54, 55, 53, 54, 55]
            .iter()
            .map(|&d| pkt(0, d))
            .collect();
        let batch: Vec<_> = [
            (1, 53),
            (2, 53),
            (3, 54),
            (4, 53),
            (5, 55),
            (6, 55),
            (7, 53),
            (8, 56),
            (9, 53),
            (10, 53),
            (11, 56),
            (12, 54),
            (13, 54),
            (14, 53),
        ]
        .iter()
        .map(|&(f, d)| pkt(f, d))
        .collect();
        let observe = |batched: bool| {
            let dp = Datapath::new(DpConfig::default());
            for p in 1..=3 {
                dp.add_port(p);
            }
            dp.add_flows(FLOWS, 0).unwrap();
            observe(&dp, &warm, &batch, batched)
        };
        let (out, rules, stats, flows) = observe(true);
        let want = observe(false);
        assert_eq!(out, want.0, "outputs, in order");
        assert_eq!(rules, want.1, "rule counters");
        assert_eq!(stats, want.2, "port and cache counters");
        assert_eq!(flows, want.3, "megaflow counters");
        // The warm-up's six packets output six frames and dropped two; the batch's fourteen:
        // nine output once, three twice, two dropped.
        assert_eq!(out.len(), 6 + 9 + 3 * 2);
        assert_eq!(stats.ports[&1].drops[&DropReason::Action], 2 + 2);
    }

    /// Runs through plans that start with an extension (`bpf(X),goto_table:1` under
    /// reclassify=verifier) and through recirculated passes (reclassify=always), with an
    /// extension that drops some packets and one that sends some back (XDP_TX) while a run
    /// waits: the outputs in order, the counters and the extension runs are the ones
    /// packet-by-packet processing gives.
    #[test]
    fn runs_after_extensions_and_recirculations_keep_the_order_of_the_batch() {
        use crate::packet::{builder, icmpv4, ipv4};
        const FLOWS: &str = "\
table=0,priority=100,udp,tp_dst=53,actions=bpf(ttl),goto_table:1
table=0,priority=100,icmp,actions=bpf(echo),goto_table:1
table=0,priority=90,udp,tp_dst=54,actions=mod_dl_dst:00:00:00:00:00:bb,output:3
table=1,priority=10,ip,actions=mod_dl_dst:00:00:00:00:00:aa,output:2
";
        let udp = |f: u32, tp_dst: u16, ttl: u8| {
            let mut p = udp_to(f, tp_dst);
            p[22] = ttl;
            let mut c = [0u8; 20];
            c.copy_from_slice(&p[14..34]);
            c[10..12].fill(0);
            let cs = crate::packet::checksum::checksum(&c);
            p[24..26].copy_from_slice(&cs.to_be_bytes());
            p
        };
        let icmp = |f: u32, msg_type: u8| {
            let ip = ipv4::Repr {
                src: 0x0a00_0000 | f,
                dst: 0x0a01_0001,
                ttl: 64,
                ..Default::default()
            };
            let l4 = builder::L4::Icmpv4(icmpv4::Repr {
                msg_type,
                code: 0,
                rest: [0, 1, 0, f as u8],
            });
            let eth = crate::packet::ethernet::Repr {
                dst: [0, 0, 0, 0, 0, 2],
                src: [0, 0, 0, 0, 0, 1],
                vlans: [None; 2],
                ethertype: crate::packet::ethertype::IPV4,
            };
            builder::ethernet(&eth, &builder::ipv4(&ip, &l4, &[7; 8]))
        };
        // Every megaflow installed and hit once (which compiles its plan).
        let warm = [
            udp(0, 53, 64),
            udp(0, 53, 64),
            udp(0, 54, 64),
            udp(0, 54, 64),
        ];
        let batch = [
            udp(1, 53, 64),
            udp(2, 53, 64),
            udp(3, 53, 1), // dropped by the extension (reclassify=verifier: as it joins a run)
            udp(4, 53, 64),
            udp(5, 54, 64),
            udp(6, 54, 64),
            udp(7, 53, 64),
            udp(8, 53, 64),
            icmp(9, 8), // sent back by the extension while a run waits
            udp(10, 53, 64),
            icmp(11, 0), // passed by the extension
            icmp(12, 0),
            udp(13, 53, 2),
            udp(14, 54, 64),
            icmp(15, 8),
            icmp(16, 8),
        ];
        let object = |f: &str| {
            std::fs::read(format!("{}/extensions/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        };
        let observe = |policy: Reclassify, batched: bool| {
            let dp = Datapath::new(DpConfig::default());
            for p in 1..=3 {
                dp.add_port(p);
            }
            for (name, file) in [("ttl", "ttl_dec.o"), ("echo", "icmp_echo.o")] {
                dp.load_extension(name, &object(file), &LoadOptions::default())
                    .unwrap();
            }
            dp.set_reclassify(policy);
            dp.add_flows(FLOWS, 0).unwrap();
            let seen = observe(&dp, &warm, &batch, batched);
            let runs: Vec<_> = ["ttl", "echo"]
                .iter()
                .map(|n| {
                    let s = dp.extension(n).unwrap().stats();
                    (s.runs, s.drops)
                })
                .collect();
            (seen, runs)
        };
        for policy in [Reclassify::Verifier, Reclassify::Always] {
            let ((out, rules, stats, flows), runs) = observe(policy, true);
            let (want, want_runs) = observe(policy, false);
            assert_eq!(out, want.0, "outputs, in order ({policy:?})");
            assert_eq!(rules, want.1, "rule counters ({policy:?})");
            assert_eq!(stats, want.2, "port and cache counters ({policy:?})");
            assert_eq!(flows, want.3, "megaflow counters ({policy:?})");
            assert_eq!(runs, want_runs, "extension runs ({policy:?})");
            // Warm-up: four frames out. Batch: ten UDP and two ICMP frames forwarded, three
            // echo requests sent back, one UDP packet dropped by the extension.
            assert_eq!(out.len(), 4 + 12 + 3, "{policy:?}");
            assert_eq!(runs, [(2 + 8, 1), (5, 0)], "{policy:?}");
            assert_eq!(
                out[4 + 7].0,
                1,
                "the first echo reply leaves on port 1 ({policy:?})"
            );
        }
    }
}
