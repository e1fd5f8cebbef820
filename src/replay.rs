//! The replay job: captures through a flow table into per-port captures.
//!
//! `bpfswitch replay --flows FLOWS.txt --in 1=a.pcap --in 2=b.pcap --out-dir DIR` merges the
//! captures in timestamp order ([`Merger`]), each frame entering the datapath on the port
//! named, and runs them through one [`Worker`] in batches of up to [`MAX_BATCH`] frames (a
//! batch holds frames of one ingress port, so it is cut where the port changes). A frame's
//! capture timestamp is the datapath's clock: flows are installed at the first frame's time,
//! idle and hard timeouts expire by capture time (checked every [`EXPIRE_INTERVAL_NS`]), and
//! every transmitted frame keeps the timestamp of the frame it came from.
//!
//! **Ports.** The datapath gets every port named by `--in`, `--port` and `--port-hook`, and
//! every port a flow outputs to (`output:N`), before the first frame; `normal`, `flood` and
//! `all` reach exactly these. Each port that transmitted gets `DIR/port-N.pcap`.
//!
//! **Controller.** By default no controller is connected, as with a bridge that has none:
//! packets sent to it (`controller`, `dec_ttl` at TTL 1) are dropped and counted under
//! `no_controller`. `--controller` connects a recording controller instead: packet-ins are
//! written to `DIR/port-controller.pcap` and the packets count as forwarded.
//!
//! The summary gives per-port counters (and checks rx = forwarded + dropped), per-rule hits
//! in `ovs-ofctl dump-flows` style, the cache levels, extension counters, and the rate.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ofproto_bridge::action::{Action, OFPP_CONTROLLER, OFPP_LOCAL};
use ofproto_bridge::bridge::Reclassify;
use ofproto_bridge::{DropReason, PortNo};
use serde::Serialize;

use crate::cli::{parse_ext_spec, parse_port, AbiArg, CliError, ExtSpec, TierArg};
use crate::dpif::{Datapath, DpConfig, DpStats, TxSink, Worker};
use crate::ext::{Abi, LoadOptions};
use crate::packet::PacketBuf;
use crate::port::merge::Merger;
use crate::port::pcap::{PcapReader, PcapWriter};
use crate::port::{Batch, PortError, MAX_BATCH};

/// How often (in capture time) rule counters are synced and flow timeouts expired.
pub const EXPIRE_INTERVAL_NS: u64 = 100_000_000;

/// Input size (bytes of captures) above which a progress bar is shown on a terminal.
pub const PROGRESS_MIN_BYTES: u64 = 16 << 20;

/// Default output directory of `bpfswitch replay`.
pub const DEFAULT_OUT_DIR: &str = "replay-out";

/// `--reclassify`: when a packet is looked up again after a `bpf(NAME)` action.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReclassifyArg {
    /// Recirculate only when the verifier's write set touches a field later stages use.
    #[default]
    Verifier,
    /// Recirculate after every extension action (SoftFlow's default).
    Always,
    /// UNSAFE, for benchmarks only: never recirculate (a rewritten packet may be forwarded
    /// by the wrong rule).
    Never,
}

impl From<ReclassifyArg> for Reclassify {
    fn from(r: ReclassifyArg) -> Reclassify {
        match r {
            ReclassifyArg::Verifier => Reclassify::Verifier,
            ReclassifyArg::Always => Reclassify::Always,
            ReclassifyArg::Never => Reclassify::NeverUnsafe,
        }
    }
}

impl ReclassifyArg {
    fn name(self) -> &'static str {
        match self {
            ReclassifyArg::Verifier => "verifier",
            ReclassifyArg::Always => "always",
            ReclassifyArg::Never => "never (UNSAFE)",
        }
    }
}

/// Arguments of `bpfswitch replay`. With neither `--flows` nor `--in`, the bundled example
/// runs (the other options apply to it).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ReplayArgs {
    /// Flow table in `ovs-ofctl add-flows` syntax.
    #[arg(long, value_name = "FLOWS.txt")]
    pub flows: Option<PathBuf>,
    /// A capture (pcap or pcapng) whose frames enter on OpenFlow port PORT; repeat per port.
    #[arg(long = "in", value_name = "PORT=FILE", value_parser = parse_input)]
    pub inputs: Vec<(PortNo, PathBuf)>,
    /// Directory for the output captures `port-N.pcap` [default: replay-out].
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// More ports to create (for `normal`/`flood` or extension redirects), e.g. `--port 3,4`.
    #[arg(long = "port", value_name = "N", value_delimiter = ',', value_parser = parse_port)]
    pub ports: Vec<PortNo>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Disable the exact-match cache.
    #[arg(long)]
    pub no_emc: bool,
    /// Disable every cache: each packet is translated (the cacheless reference).
    #[arg(long)]
    pub no_cache: bool,
    /// Reclassification after `bpf(NAME)` actions.
    #[arg(long, value_enum, default_value_t)]
    pub reclassify: ReclassifyArg,
    /// Connect a recording controller: packet-ins go to DIR/port-controller.pcap instead of
    /// being dropped as `no_controller`.
    #[arg(long)]
    pub controller: bool,
    /// Load an extension: NAME=FILE.o or NAME=FILE.o:SECTION; repeatable.
    #[arg(long = "ext", value_name = "NAME=FILE.o[:SECTION]", value_parser = parse_ext_spec)]
    pub exts: Vec<ExtSpec>,
    /// ABI of the extensions whose section name does not imply one.
    #[arg(long, value_enum)]
    pub abi: Option<AbiArg>,
    /// Load extensions the verifier rejects (bounds-checked interpreter only).
    #[arg(long)]
    pub unverified: bool,
    /// VM tier for the extensions (default: the JIT for verified programs).
    #[arg(long, value_enum)]
    pub tier: Option<TierArg>,
    /// Fill an extension's map before the replay: NAME MAP KEY VALUE, typed (`ip:10.0.0.1`,
    /// `be16:80`, `u32:1`, `u64:0`, `mac:..`, `lpm:10.0.0.0/8`) or hex; repeatable.
    #[arg(long = "map-update", num_args = 4, value_names = ["NAME", "MAP", "KEY", "VALUE"], action = clap::ArgAction::Append)]
    pub map_updates: Vec<String>,
    /// Attach extension NAME to PORT as a hook run on every received packet before
    /// classification; repeatable.
    #[arg(long = "port-hook", value_name = "PORT=NAME", value_parser = parse_hook)]
    pub port_hooks: Vec<(PortNo, String)>,
    /// Never show a progress bar (it shows on a terminal for captures over 16 MiB).
    #[arg(long)]
    pub no_progress: bool,
    /// Also list the megaflows left in the cache at the end (`ovs-appctl dpctl/dump-flows`
    /// style).
    #[arg(long)]
    pub dump_megaflows: bool,
    /// One megaflow hit in N also inserts its flow into the exact-match cache (Open vSwitch's
    /// `emc-insert-inv-prob`; 1 inserts on every hit).
    #[arg(long, value_name = "N", default_value_t = DpConfig::default().emc_insert_inv_prob, value_parser = clap::value_parser!(u32).range(1..))]
    pub emc_insert_inv_prob: u32,
}

fn parse_input(s: &str) -> Result<(PortNo, PathBuf), String> {
    let (p, f) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected PORT=FILE, e.g. 1=a.pcap"))?;
    if f.is_empty() {
        return Err(format!("`{s}`: expected PORT=FILE, e.g. 1=a.pcap"));
    }
    Ok((parse_port(p)?, PathBuf::from(f)))
}

fn parse_hook(s: &str) -> Result<(PortNo, String), String> {
    let (p, n) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected PORT=NAME, e.g. 2=flood"))?;
    if n.is_empty() {
        return Err(format!("`{s}`: expected PORT=NAME"));
    }
    Ok((parse_port(p)?, n.to_string()))
}

/// A fully resolved replay: what to read, what to load, where to write.
#[derive(Clone, Debug)]
pub struct ReplayJob {
    /// The flow file.
    pub flows: PathBuf,
    /// Captures and their ingress ports.
    pub inputs: Vec<(PortNo, PathBuf)>,
    /// Output directory.
    pub out_dir: PathBuf,
    /// Ports besides those implied by inputs, flows and hooks.
    pub extra_ports: Vec<PortNo>,
    /// Datapath configuration (caches).
    pub dp: DpConfig,
    /// Reclassification policy.
    pub reclassify: ReclassifyArg,
    /// Record packet-ins instead of dropping them.
    pub controller: bool,
    /// Extensions to load.
    pub exts: Vec<ExtSpec>,
    /// Load options shared by every extension (section comes from each spec).
    pub ext_abi: Option<Abi>,
    /// Allow rejected extensions on the interpreter.
    pub unverified: bool,
    /// Tier for every extension.
    pub tier: Option<TierArg>,
    /// (extension, map, key, value).
    pub map_updates: Vec<[String; 4]>,
    /// Port hooks.
    pub port_hooks: Vec<(PortNo, String)>,
    /// Show a progress bar when the input is large and stderr is a terminal.
    pub progress: bool,
    /// List the megaflows at the end.
    pub dump_megaflows: bool,
}

/// Where the bundled example lives: `examples/` under the working directory when it has
/// the example, else the source tree this binary was built from.
pub fn bundled_example_dir() -> Option<PathBuf> {
    let here = PathBuf::from("examples");
    if here.join("flows.txt").is_file() {
        return Some(here);
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    built.join("flows.txt").is_file().then_some(built)
}

impl ReplayJob {
    /// Resolves command-line arguments (the bundled example when neither `--flows` nor
    /// `--in` is given).
    pub fn from_args(a: &ReplayArgs) -> Result<ReplayJob, CliError> {
        let (flows, inputs) = match (&a.flows, a.inputs.is_empty()) {
            (None, true) => {
                let dir = bundled_example_dir().ok_or_else(|| {
                    CliError::Usage(
                        "the bundled example (examples/flows.txt) is not here: run from the \
                         repository root, or pass --flows FLOWS.txt --in PORT=FILE"
                            .into(),
                    )
                })?;
                (
                    dir.join("flows.txt"),
                    vec![(1, dir.join("port1.pcap")), (2, dir.join("port2.pcap"))],
                )
            }
            (Some(f), false) => (f.clone(), a.inputs.clone()),
            (None, false) => return Err(CliError::Usage("--in needs --flows FLOWS.txt".into())),
            (Some(_), true) => {
                return Err(CliError::Usage(
                    "--flows needs at least one --in PORT=FILE".into(),
                ))
            }
        };
        let mut seen = std::collections::BTreeSet::new();
        for (p, _) in &inputs {
            if !seen.insert(*p) {
                return Err(CliError::Usage(format!(
                    "port {p} is given two captures (merge them, or use two ports)"
                )));
            }
        }
        let map_updates = a
            .map_updates
            .chunks(4)
            .map(|c| {
                <[String; 4]>::try_from(c.to_vec())
                    .map_err(|_| CliError::Usage("--map-update takes NAME MAP KEY VALUE".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let dp = if a.no_cache {
            DpConfig::cacheless()
        } else {
            DpConfig {
                emc: !a.no_emc,
                emc_insert_inv_prob: a.emc_insert_inv_prob,
                ..DpConfig::default()
            }
        };
        Ok(ReplayJob {
            flows,
            inputs,
            out_dir: a
                .out_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_OUT_DIR)),
            extra_ports: a.ports.clone(),
            dp,
            reclassify: a.reclassify,
            controller: a.controller,
            exts: a.exts.clone(),
            ext_abi: a.abi.map(Abi::from),
            unverified: a.unverified,
            tier: a.tier,
            map_updates,
            port_hooks: a.port_hooks.clone(),
            progress: !a.no_progress,
            dump_megaflows: a.dump_megaflows,
        })
    }
}

/// Counters of one port in the summary.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PortSummary {
    /// `1`, `LOCAL`, `controller`.
    pub port: String,
    /// Packets received.
    pub rx: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Received packets transmitted at least once.
    pub forwarded: u64,
    /// Received packets dropped.
    pub dropped: u64,
    /// Drops by reason (snake_case reason names).
    pub drops: BTreeMap<String, u64>,
    /// Packets transmitted on this port.
    pub tx: u64,
    /// Bytes transmitted on this port.
    pub tx_bytes: u64,
    /// The output capture, when the port transmitted.
    pub output: Option<String>,
}

/// One rule with its counters.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RuleSummary {
    /// Table.
    pub table: u8,
    /// Priority.
    pub priority: u16,
    /// Cookie.
    pub cookie: u64,
    /// Packets that hit it.
    pub n_packets: u64,
    /// Bytes of those packets.
    pub n_bytes: u64,
    /// Seconds of capture time since it was installed.
    pub duration_s: f64,
    /// The line `ovs-ofctl dump-flows` would print.
    pub text: String,
}

/// The cache levels.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CacheSummary {
    /// Exact-match cache enabled.
    pub emc_enabled: bool,
    /// Megaflow cache enabled.
    pub megaflow_enabled: bool,
    /// Lookups answered by the exact-match cache.
    pub emc_hits: u64,
    /// Lookups answered by the megaflow cache.
    pub megaflow_hits: u64,
    /// Lookups translated (cache misses; the cacheless reference translates every lookup).
    pub upcalls: u64,
    /// Cache hits whose recorded filter results no longer held (counted as upcalls).
    pub filter_mismatches: u64,
    /// Megaflows installed.
    pub megaflows_installed: u64,
    /// Passes after the first (after extension rewrites).
    pub recirculations: u64,
    /// Recirculations the verifier's write sets made unnecessary.
    pub recirculations_avoided: u64,
    /// Filter program runs.
    pub filter_runs: u64,
    /// Filter results taken from the cache (stateless filters not run).
    pub filter_cached: u64,
    /// Extension action and port-hook runs.
    pub ext_runs: u64,
    /// Megaflows revalidated after flow-table changes (timeouts, MAC learning).
    pub revalidated: u64,
}

/// One extension's counters.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ExtSummary {
    /// Name rules use.
    pub name: String,
    /// Object file.
    pub file: String,
    /// Section.
    pub section: String,
    /// ABI.
    pub abi: &'static str,
    /// Tier it ran on.
    pub tier: &'static str,
    /// Whether the verifier accepted it.
    pub verified: bool,
    /// How the flows and hooks use it: `filter`, `action`, `hook`.
    pub used_as: Vec<&'static str>,
    /// Runs (filters, actions, hooks).
    pub runs: u64,
    /// Runs that returned XDP_DROP or XDP_ABORTED (uBPF: 0). Meaningless for a program used
    /// only as a filter (a filter's 1, "match", is XDP_DROP's number); the text omits it.
    pub drops: u64,
    /// Runs aborted by a fault.
    pub faults: u64,
    /// Mean nanoseconds per run (sampled).
    pub ns_per_run: u64,
}

/// Everything `bpfswitch replay` reports (`--json` prints this).
#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    /// The flow file.
    pub flows: String,
    /// Flow mods applied.
    pub flow_count: usize,
    /// Captures and their ports.
    pub inputs: Vec<(String, String)>,
    /// Output directory.
    pub out_dir: String,
    /// Reclassification policy (`never` is unsafe).
    pub reclassify: &'static str,
    /// Whether a recording controller was connected.
    pub controller: bool,
    /// Per port (every datapath port, then the controller if it received packets).
    pub ports: Vec<PortSummary>,
    /// Totals over the ports' received packets.
    pub total_rx: u64,
    /// Total forwarded.
    pub total_forwarded: u64,
    /// Total dropped.
    pub total_dropped: u64,
    /// Per rule, in dump-flows order.
    pub rules: Vec<RuleSummary>,
    /// Cache levels.
    pub cache: CacheSummary,
    /// Extensions.
    pub extensions: Vec<ExtSummary>,
    /// Rules that expired during the replay.
    pub expired_rules: usize,
    /// The megaflows left in the cache (with `--dump-megaflows`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub megaflows: Option<Vec<String>>,
    /// Wall time of the replay loop (reading, switching, writing), seconds.
    pub wall_s: f64,
    /// Received packets per second over the wall time, millions.
    pub mpps: f64,
}

/// The name a port has in file names and the summary.
pub fn port_name(p: PortNo) -> String {
    match p {
        OFPP_CONTROLLER => "controller".into(),
        OFPP_LOCAL => "LOCAL".into(),
        n => n.to_string(),
    }
}

/// The output capture of a port: `port-N.pcap`, `port-LOCAL.pcap`, `port-controller.pcap`.
pub fn port_file(p: PortNo) -> String {
    format!("port-{}.pcap", port_name(p))
}

/// The snake_case name of a drop reason (summary and JSON).
pub fn drop_reason_name(r: DropReason) -> &'static str {
    match r {
        DropReason::Action => "action",
        DropReason::TableMiss => "table_miss",
        DropReason::TtlExceeded => "ttl_exceeded",
        DropReason::NoController => "no_controller",
        DropReason::LoopBack => "loop_back",
        DropReason::NoSuchPort => "no_such_port",
        DropReason::ExtDrop => "ext_drop",
        DropReason::ExtAborted => "ext_aborted",
        DropReason::PortHook => "port_hook",
        DropReason::TooDeep => "too_deep",
        DropReason::Malformed => "malformed",
    }
}

/// The transmit side: one capture per port, created on the port's first frame.
struct Outputs {
    dir: PathBuf,
    writers: BTreeMap<PortNo, PcapWriter<BufWriter<File>>>,
    error: Option<PortError>,
}

impl TxSink for Outputs {
    fn transmit(&mut self, port: PortNo, frame: &[u8], ts_ns: u64) {
        if self.error.is_some() {
            return;
        }
        let w = match self.writers.entry(port) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                match PcapWriter::create(self.dir.join(port_file(port))) {
                    Ok(w) => v.insert(w),
                    Err(e) => {
                        self.error = Some(e);
                        return;
                    }
                }
            }
        };
        if let Err(e) = w.write(frame, ts_ns) {
            self.error = Some(e);
        }
    }
}

/// Ports the flows output to.
fn output_ports(fms: &[ofproto_bridge::ofctl::FlowMod]) -> Vec<PortNo> {
    let mut v = Vec::new();
    for fm in fms {
        for a in &fm.rule.actions {
            if let Action::Output { port, .. } = a {
                if *port < 0xffff_ff00 || *port == OFPP_LOCAL {
                    v.push(*port);
                }
            }
        }
    }
    v
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Runs a replay and returns its report (the captures are written to `job.out_dir`).
pub fn replay(job: &ReplayJob) -> Result<ReplayReport, CliError> {
    let flow_text = std::fs::read_to_string(&job.flows)
        .map_err(|e| CliError::failed(job.flows.display(), e))?;
    let fms = ofproto_bridge::ofctl::parse_flows_file(&flow_text)
        .map_err(|e| CliError::Usage(format!("{}: {e}", job.flows.display())))?;

    // Ports.
    let mut ports: Vec<PortNo> = job.inputs.iter().map(|(p, _)| *p).collect();
    ports.extend(&job.extra_ports);
    ports.extend(job.port_hooks.iter().map(|(p, _)| *p));
    ports.extend(output_ports(&fms));
    ports.sort_unstable();
    ports.dedup();

    // Output directory: never overwrite an input; remove captures of an earlier run so the
    // directory shows exactly this one.
    std::fs::create_dir_all(&job.out_dir)
        .map_err(|e| CliError::failed(job.out_dir.display(), e))?;
    let mut inputs = Vec::new();
    let mut total_bytes = 0u64;
    for (p, path) in &job.inputs {
        let r = PcapReader::open(path).map_err(|e| CliError::Failed(e.to_string()))?;
        total_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        inputs.push((*p, r));
    }
    if let Ok(rd) = std::fs::read_dir(&job.out_dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("port-") && name.ends_with(".pcap") {
                let path = e.path();
                if let Some((_, inp)) = job.inputs.iter().find(|(_, i)| same_file(i, &path)) {
                    return Err(CliError::Usage(format!(
                        "output directory {} holds input {}: outputs would overwrite it; \
                         choose another --out-dir",
                        job.out_dir.display(),
                        inp.display()
                    )));
                }
                std::fs::remove_file(&path).map_err(|e| CliError::failed(path.display(), e))?;
            }
        }
    }

    // The datapath.
    let dp = Datapath::new(job.dp.clone());
    for p in &ports {
        dp.add_port(*p);
    }
    dp.set_reclassify(job.reclassify.into());
    if job.controller {
        dp.with_bridge(|b| b.set_controller_connected(true));
    }
    let mut ext_files = BTreeMap::new();
    for e in &job.exts {
        let bytes = crate::cli::read_file(&e.path)?;
        let opts = LoadOptions {
            section: e.section.clone(),
            abi: job.ext_abi,
            replace: false,
            allow_unverified: job.unverified,
            tier: job.tier.map(Into::into),
            workers: 1,
        };
        dp.load_extension(&e.name, &bytes, &opts).map_err(|err| {
            CliError::failed(format!("--ext {}={}", e.name, e.path.display()), err)
        })?;
        ext_files.insert(e.name.clone(), e.path.display().to_string());
    }
    for [n, m, k, v] in &job.map_updates {
        dp.map_update(n, m, k, v)
            .map_err(|e| CliError::failed(format!("--map-update {n} {m} {k} {v}"), e))?;
    }

    // A flow naming an extension that is not loaded would never match (filter) or drop
    // (action): refuse it here, where the fix is obvious.
    for fm in &fms {
        let r = &fm.rule;
        let used = r
            .r#match
            .bpf_filters
            .iter()
            .chain(r.actions.iter().filter_map(|a| match a {
                Action::Bpf(n) => Some(n),
                _ => None,
            }));
        for name in used {
            if dp.extension(name).is_none() {
                return Err(CliError::Usage(format!(
                    "{}: flow `{}` uses extension `{name}`, which is not loaded (add --ext {name}=FILE.o)",
                    job.flows.display(),
                    ofproto_bridge::ofctl::format_rule(r)
                )));
            }
        }
    }
    let mut merger = Merger::new(inputs).map_err(|e| CliError::Failed(e.to_string()))?;
    let mut pending = PacketBuf::new();
    let mut cur = merger
        .next_into(&mut pending)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let t0 = cur.map(|(_, ts)| ts).unwrap_or(0);
    dp.add_flows(&flow_text, t0)
        .map_err(|e| CliError::Usage(format!("{}: {e}", job.flows.display())))?;
    for (p, name) in &job.port_hooks {
        dp.set_port_hook(*p, Some(name))
            .map_err(|e| CliError::failed(format!("--port-hook {p}={name}"), e))?;
    }

    let mut w = dp.worker(0);
    let mut out = Outputs {
        dir: job.out_dir.clone(),
        writers: BTreeMap::new(),
        error: None,
    };
    let bar =
        (job.progress && total_bytes >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal())
            .then(|| {
                let b = indicatif::ProgressBar::new(total_bytes);
                b.set_style(
            indicatif::ProgressStyle::with_template(
                "replay {bar:40} {percent:>3}% {binary_bytes}/{binary_total_bytes} {msg} eta {eta}",
            )
            .expect("valid template"),
        );
                b
            });

    let started = Instant::now();
    let mut batch = Batch::with_capacity(MAX_BATCH);
    let mut batch_port: PortNo = 0;
    let mut last_ts = t0;
    let mut next_expire = t0.saturating_add(EXPIRE_INTERVAL_NS);
    let mut expired = 0usize;
    let mut done_bytes = 0u64;
    let mut packets = 0u64;
    let flush = |w: &mut Worker, port: PortNo, batch: &mut Batch, out: &mut Outputs| {
        if !batch.is_empty() {
            w.process_batch(port, batch, out);
            batch.clear();
        }
        out.error
            .take()
            .map_or(Ok(()), |e| Err(CliError::Failed(e.to_string())))
    };
    while let Some((port, ts)) = cur {
        if batch.is_full() || (!batch.is_empty() && batch_port != port) {
            flush(&mut w, batch_port, &mut batch, &mut out)?;
        }
        if ts >= next_expire {
            // Everything before `ts` is switched first; then rules are credited with what
            // the caches counted (idle timeouts need it) and timeouts expire.
            flush(&mut w, batch_port, &mut batch, &mut out)?;
            expired += w.maintain(ts);
            next_expire = ts.saturating_add(EXPIRE_INTERVAL_NS);
        }
        batch_port = port;
        done_bytes += pending.len() as u64 + 16;
        packets += 1;
        std::mem::swap(batch.slot().expect("batch has room"), &mut pending);
        batch.commit(ts);
        last_ts = last_ts.max(ts);
        if let Some(b) = &bar {
            if packets.is_multiple_of(4096) {
                b.set_position(done_bytes.min(total_bytes));
                b.set_message(format!("{packets} packets"));
            }
        }
        cur = merger
            .next_into(&mut pending)
            .map_err(|e| CliError::Failed(e.to_string()))?;
    }
    flush(&mut w, batch_port, &mut batch, &mut out)?;
    w.sync(last_ts);
    let mut outputs = BTreeMap::new();
    for (p, mut wr) in std::mem::take(&mut out.writers) {
        wr.flush().map_err(|e| CliError::Failed(e.to_string()))?;
        outputs.insert(p, job.out_dir.join(port_file(p)).display().to_string());
    }
    let wall = started.elapsed().as_secs_f64();
    if let Some(b) = bar {
        b.finish_and_clear();
    }

    let stats = w.stats();
    let megaflows = job
        .dump_megaflows
        .then(|| w.dump_megaflows().into_iter().map(|m| m.text).collect());
    let mut report = summarize(SummaryInput {
        job,
        flow_count: fms.len(),
        dp: &dp,
        stats: &stats,
        ports: &ports,
        outputs: &outputs,
        ext_files: &ext_files,
        now_ns: last_ts,
        expired,
        wall,
    });
    report.megaflows = megaflows;
    check_invariant(&report)?;
    Ok(report)
}

struct SummaryInput<'a> {
    job: &'a ReplayJob,
    flow_count: usize,
    dp: &'a Arc<Datapath>,
    stats: &'a DpStats,
    ports: &'a [PortNo],
    outputs: &'a BTreeMap<PortNo, String>,
    ext_files: &'a BTreeMap<String, String>,
    now_ns: u64,
    expired: usize,
    wall: f64,
}

fn summarize(s: SummaryInput<'_>) -> ReplayReport {
    let mut port_list: Vec<PortNo> = s.ports.to_vec();
    for p in s.stats.ports.keys() {
        if !port_list.contains(p) {
            port_list.push(*p);
        }
    }
    let ports = port_list
        .iter()
        .map(|p| {
            let st = s.stats.ports.get(p).cloned().unwrap_or_default();
            PortSummary {
                port: port_name(*p),
                rx: st.rx_packets,
                rx_bytes: st.rx_bytes,
                forwarded: st.forwarded,
                dropped: st.dropped(),
                drops: st
                    .drops
                    .iter()
                    .map(|(r, n)| (drop_reason_name(*r).to_string(), *n))
                    .collect(),
                tx: st.tx_packets,
                tx_bytes: st.tx_bytes,
                output: s.outputs.get(p).cloned(),
            }
        })
        .collect();
    let rules =
        s.dp.dump_flows()
            .into_iter()
            .map(|(_, r, m)| {
                let duration_s = s.now_ns.saturating_sub(m.created_ns) as f64 / 1e9;
                RuleSummary {
                    table: m.table,
                    priority: r.priority,
                    cookie: r.cookie,
                    n_packets: m.stats.packets,
                    n_bytes: m.stats.bytes,
                    duration_s,
                    text: dump_flows_line(&r, &m, duration_s),
                }
            })
            .collect();
    let st = s.stats;
    let cache = CacheSummary {
        emc_enabled: s.job.dp.emc,
        megaflow_enabled: s.job.dp.megaflow,
        emc_hits: st.emc_hits,
        megaflow_hits: st.megaflow_hits,
        upcalls: st.upcalls,
        filter_mismatches: st.filter_mismatches,
        megaflows_installed: st.megaflows_installed,
        recirculations: st.recirculations,
        recirculations_avoided: st.recircs_avoided,
        filter_runs: st.filter_runs,
        filter_cached: st.filter_cached,
        ext_runs: st.ext_runs,
        revalidated: st.revalidated,
    };
    let flows = s.dp.dump_flows();
    let extensions =
        s.dp.extensions()
            .iter()
            .map(|e| {
                let x = e.stats();
                let n = e.name();
                let mut used_as = Vec::new();
                if flows
                    .iter()
                    .any(|(_, r, _)| r.r#match.bpf_filters.iter().any(|f| f == n))
                {
                    used_as.push("filter");
                }
                if flows.iter().any(|(_, r, _)| {
                    r.actions
                        .iter()
                        .any(|a| matches!(a, Action::Bpf(b) if b == n))
                }) {
                    used_as.push("action");
                }
                if s.job.port_hooks.iter().any(|(_, h)| h == n) {
                    used_as.push("hook");
                }
                ExtSummary {
                    name: e.name().to_string(),
                    file: s.ext_files.get(e.name()).cloned().unwrap_or_default(),
                    section: e.section().to_string(),
                    abi: crate::cli::verify::abi_name(e.abi()),
                    tier: e.tier().name(),
                    verified: e.verification().allows_jit(),
                    used_as,
                    runs: x.runs,
                    drops: x.drops,
                    faults: x.faults,
                    ns_per_run: x.ns_per_run(),
                }
            })
            .collect();
    let rx = st.rx();
    ReplayReport {
        flows: s.job.flows.display().to_string(),
        flow_count: s.flow_count,
        inputs: s
            .job
            .inputs
            .iter()
            .map(|(p, f)| (port_name(*p), f.display().to_string()))
            .collect(),
        out_dir: s.job.out_dir.display().to_string(),
        reclassify: s.job.reclassify.name(),
        controller: s.job.controller,
        ports,
        total_rx: rx,
        total_forwarded: st.forwarded(),
        total_dropped: st.dropped(),
        rules,
        cache,
        extensions,
        expired_rules: s.expired,
        megaflows: None,
        wall_s: s.wall,
        mpps: if s.wall > 0.0 {
            rx as f64 / s.wall / 1e6
        } else {
            0.0
        },
    }
}

/// A rule as `ovs-ofctl dump-flows` prints it.
fn dump_flows_line(
    r: &ofproto_bridge::rule::Rule,
    m: &ofproto_bridge::table::RuleMeta,
    duration_s: f64,
) -> String {
    let mut s = format!(
        " cookie={:#x}, duration={duration_s:.3}s, table={}, n_packets={}, n_bytes={}, ",
        r.cookie, m.table, m.stats.packets, m.stats.bytes
    );
    if r.idle_timeout != 0 {
        s.push_str(&format!("idle_timeout={}, ", r.idle_timeout));
    }
    if r.hard_timeout != 0 {
        s.push_str(&format!("hard_timeout={}, ", r.hard_timeout));
    }
    let mt = ofproto_bridge::ofctl::format_match(&r.r#match, r.priority);
    if !mt.is_empty() {
        s.push_str(&mt);
        s.push(' ');
    }
    s.push_str("actions=");
    s.push_str(&ofproto_bridge::ofctl::format_actions(
        &r.actions,
        Some(&r.r#match),
    ));
    s
}

/// rx = forwarded + dropped, per port and in total (the datapath's counting contract).
fn check_invariant(r: &ReplayReport) -> Result<(), CliError> {
    for p in &r.ports {
        if p.rx != p.forwarded + p.dropped {
            return Err(CliError::Failed(format!(
                "internal error: port {}: rx {} != forwarded {} + dropped {}",
                p.port, p.rx, p.forwarded, p.dropped
            )));
        }
    }
    if r.total_rx != r.total_forwarded + r.total_dropped {
        return Err(CliError::Failed(format!(
            "internal error: rx {} != forwarded {} + dropped {}",
            r.total_rx, r.total_forwarded, r.total_dropped
        )));
    }
    Ok(())
}

fn pct(n: u64, d: u64) -> String {
    if d == 0 {
        "-".into()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / d as f64)
    }
}

/// The summary for people.
pub fn render_text(r: &ReplayReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let inputs: Vec<String> = r
        .inputs
        .iter()
        .map(|(p, f)| format!("{f} -> port {p}"))
        .collect();
    let _ = writeln!(
        o,
        "replay: {} ({} flows); {}",
        r.flows,
        r.flow_count,
        inputs.join(", ")
    );
    let _ = writeln!(o, "reclassify={}", r.reclassify);
    if r.reclassify.starts_with("never") {
        let _ = writeln!(
            o,
            "WARNING: --reclassify never is UNSAFE (packets an extension rewrote are forwarded \
             as if unchanged); these outputs are for benchmarks only"
        );
    }
    let outs: Vec<String> = r
        .ports
        .iter()
        .filter_map(|p| {
            p.output.as_ref().map(|f| {
                let name = Path::new(f)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("{name} ({})", p.tx)
            })
        })
        .collect();
    let _ = writeln!(
        o,
        "outputs in {}/: {}",
        r.out_dir.trim_end_matches('/'),
        if outs.is_empty() {
            "none (no port transmitted)".into()
        } else {
            outs.join(", ")
        }
    );

    let _ = writeln!(o, "\nports:");
    let _ = writeln!(
        o,
        "  {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}  drops by reason",
        "port", "rx", "forwarded", "dropped", "tx", "tx bytes"
    );
    for p in &r.ports {
        let drops: Vec<String> = p.drops.iter().map(|(k, n)| format!("{k}:{n}")).collect();
        let _ = writeln!(
            o,
            "  {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}  {}",
            p.port,
            p.rx,
            p.forwarded,
            p.dropped,
            p.tx,
            p.tx_bytes,
            drops.join(" ")
        );
    }
    let _ = writeln!(
        o,
        "  {:>10} {:>10} {:>10} {:>10}   (rx = forwarded + dropped: checked)",
        "total", r.total_rx, r.total_forwarded, r.total_dropped
    );
    if !r.controller
        && r.ports
            .iter()
            .any(|p| p.drops.contains_key("no_controller"))
    {
        let _ = writeln!(
            o,
            "  (no controller is connected: packet-ins are dropped; --controller records them)"
        );
    }

    let _ = writeln!(o, "\nflows (ovs-ofctl dump-flows):");
    for rule in &r.rules {
        let _ = writeln!(o, "{}", rule.text);
    }
    if r.expired_rules > 0 {
        let _ = writeln!(o, "  ({} rules expired during the replay)", r.expired_rules);
    }

    let c = &r.cache;
    let lookups = c.emc_hits + c.megaflow_hits + c.upcalls;
    let _ = writeln!(o, "\ncaches:");
    let onoff = |b: bool| if b { "" } else { " (disabled)" };
    let _ = writeln!(
        o,
        "  exact-match hits    {:>10} {:>7}{}",
        c.emc_hits,
        pct(c.emc_hits, lookups),
        onoff(c.emc_enabled)
    );
    let _ = writeln!(
        o,
        "  megaflow hits       {:>10} {:>7}{}",
        c.megaflow_hits,
        pct(c.megaflow_hits, lookups),
        onoff(c.megaflow_enabled)
    );
    let _ = writeln!(
        o,
        "  upcalls             {:>10} {:>7}  (megaflows installed: {}, filter mismatches: {})",
        c.upcalls,
        pct(c.upcalls, lookups),
        c.megaflows_installed,
        c.filter_mismatches
    );
    let _ = writeln!(
        o,
        "  recirculations      {:>10}          (avoided by the verifier: {})",
        c.recirculations, c.recirculations_avoided
    );
    let _ = writeln!(
        o,
        "  filter runs         {:>10}          (results taken from the cache: {})",
        c.filter_runs, c.filter_cached
    );
    let _ = writeln!(o, "  extension runs      {:>10}", c.ext_runs);
    if c.revalidated > 0 {
        let _ = writeln!(o, "  revalidated         {:>10}", c.revalidated);
    }

    if !r.extensions.is_empty() {
        let _ = writeln!(o, "\nextensions:");
        let _ = writeln!(
            o,
            "  {:<16} {:<13} {:<5} {:<12} {:>10} {:>10} {:>7} {:>8}  file",
            "name", "used as", "abi", "tier", "runs", "drops", "faults", "ns/run"
        );
        for e in &r.extensions {
            let tier = if e.verified {
                e.tier.to_string()
            } else {
                format!("{} UNVERIFIED", e.tier)
            };
            let drops = if e.used_as == ["filter"] {
                "-".to_string()
            } else {
                e.drops.to_string()
            };
            let used = if e.used_as.is_empty() {
                "(unused)".to_string()
            } else {
                e.used_as.join(",")
            };
            let _ = writeln!(
                o,
                "  {:<16} {:<13} {:<5} {:<12} {:>10} {:>10} {:>7} {:>8}  {}",
                e.name, used, e.abi, tier, e.runs, drops, e.faults, e.ns_per_run, e.file
            );
        }
    }
    if let Some(mfs) = &r.megaflows {
        let _ = writeln!(o, "\nmegaflows ({}):", mfs.len());
        for m in mfs {
            let _ = writeln!(o, "  {m}");
        }
    }
    let _ = writeln!(
        o,
        "\n{} packets in {:.3} ms: {:.3} Mpps (wall time of the whole replay: reading, \
         switching, writing; use `bpfswitch bench` for datapath throughput)",
        r.total_rx,
        r.wall_s * 1e3,
        r.mpps
    );
    o
}

/// Runs `bpfswitch replay`.
pub fn run(args: &ReplayArgs) -> Result<(), CliError> {
    let job = ReplayJob::from_args(args)?;
    let report = replay(&job)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        print!("{}", render_text(&report));
    }
    Ok(())
}
