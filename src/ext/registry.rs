//! Extensions by name: load, replace, unload, counters, map access and the offline runner.
//!
//! An [`Extension`] owns its program (prepared for the tiers it may use) and its maps. The
//! [`Registry`] hands out `Arc<Extension>`s: a rule that references an extension holds one,
//! so replacing an extension under a name never pulls it from under a running packet; the
//! old one lives until its last user drops it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use verifier_analysis::platform::Abi;

use super::maps::{update_flags, Map, MapKind, MapSet, MapSpec};
use super::object::{BpfObject, LinkedProgram, MapRelocKind};
use super::timer;
use super::vm::{xdp, ExecTier, PacketMem, Program, RunOutcome, XdpBuf};
use super::ExtError;

/// What the verifier said about a program, which decides its tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The verifier accepted it: the JIT tiers are allowed.
    Accepted,
    /// The verifier rejected it and it was loaded with `--unverified`: the bounds-checked
    /// interpreter only. The reason says why.
    Unverified {
        /// Why the program is unverified.
        reason: String,
    },
}

impl Verification {
    /// Whether the JIT tiers may run the program.
    pub fn allows_jit(&self) -> bool {
        matches!(self, Verification::Accepted)
    }
}

/// Options of [`Extension::load`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Program to load: a section name or function name (needed when the object has several).
    pub section: Option<String>,
    /// ABI, when the section name does not imply it.
    pub abi: Option<Abi>,
    /// Replace an extension of the same name (registry only).
    pub replace: bool,
    /// Load even if the verifier rejects it (interpreter only).
    pub allow_unverified: bool,
    /// Preferred tier among those allowed (default: the JIT when allowed).
    pub tier: Option<ExecTier>,
    /// Number of workers per-worker maps hold values for (default 1).
    pub workers: usize,
}

/// Counters of an extension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtensionStats {
    /// Runs.
    pub runs: u64,
    /// Runs that returned DROP or ABORTED (XDP) or 0 (uBPF filters).
    pub drops: u64,
    /// Runs aborted by a fault.
    pub faults: u64,
    /// Nanoseconds spent in the timed runs.
    pub total_ns: u64,
    /// Runs that were timed (one in [`TIMING_SAMPLE`]).
    pub timed_runs: u64,
}

/// A map entry as bytes: (key, value).
pub type MapEntry = (Vec<u8>, Vec<u8>);

/// One run in this many is timed for the ns/run counter.
pub const TIMING_SAMPLE: u64 = 64;

impl ExtensionStats {
    /// Mean nanoseconds per run.
    pub fn ns_per_run(&self) -> u64 {
        self.total_ns.checked_div(self.timed_runs).unwrap_or(0)
    }
}

/// One loaded extension.
pub struct Extension {
    name: String,
    program_name: String,
    section: String,
    abi: Abi,
    verification: Verification,
    analysis: verifier_analysis::Analysis,
    tier: ExecTier,
    // Field order: the program refers to the maps' addresses and drops first.
    program: Program,
    maps: MapSet,
    runs: AtomicU64,
    drops: AtomicU64,
    faults: AtomicU64,
    total_ns: AtomicU64,
    timed_runs: AtomicU64,
}

impl std::fmt::Debug for Extension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extension")
            .field("name", &self.name)
            .field("abi", &self.abi)
            .field("tier", &self.tier)
            .field("verification", &self.verification)
            .finish()
    }
}

/// Runs the verifier (`verifier_analysis::analyze`) on a linked program, with its maps and
/// its resolved map references.
pub fn analyze(linked: &LinkedProgram) -> verifier_analysis::Analysis {
    use verifier_analysis::platform::Platform;
    verifier_analysis::analyze(&verifier_program(linked), &Platform::for_abi(linked.abi))
}

/// A linked program as the verifier sees it: instructions, map descriptions and resolved map
/// references (what [`analyze`] analyses and `verifier_analysis::report` renders).
pub fn verifier_program(linked: &LinkedProgram) -> verifier_analysis::Program {
    use verifier_analysis::platform::{MapDescr, MapType};
    let maps = linked
        .maps
        .iter()
        .map(|m| MapDescr {
            name: m.name.clone(),
            map_type: MapType::from_kernel(m.map_type),
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            read_only: m.readonly,
        })
        .collect();
    let bytes = super::insn::encode_all(&linked.insns);
    let mut prog = verifier_analysis::Program::from_bytes(&bytes, linked.abi, maps)
        .expect("a linked program is a whole number of instructions");
    for r in &linked.relocs {
        let value_offset = match r.kind {
            MapRelocKind::Map => None,
            MapRelocKind::Value { offset } => Some(offset),
        };
        prog.map_refs.insert(
            r.insn,
            verifier_analysis::MapRef {
                map: r.map,
                value_offset,
            },
        );
    }
    prog
}

/// Result of [`run_once`] and [`run_repeat`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    /// Return code of the (last) run.
    pub retcode: u64,
    /// Packet bytes after the (last) run.
    pub output: Vec<u8>,
    /// Redirect port, if `bpf_redirect` was called.
    pub redirect: Option<u32>,
    /// Mean nanoseconds per run.
    pub ns: u64,
    /// Fault that aborted the run, if any.
    pub fault: Option<String>,
}

impl Extension {
    /// Loads program `opts.section` of the object `bytes` under `name`.
    pub fn load(name: &str, bytes: &[u8], opts: &LoadOptions) -> Result<Extension, ExtError> {
        // Once per process, here rather than on the first timed run.
        timer::calibrate();
        let obj = BpfObject::parse(bytes)?;
        let info = obj.select(opts.section.as_deref())?;
        let abi = opts
            .abi
            .or(info.abi_hint)
            .ok_or_else(|| ExtError::AbiUnknown {
                section: info.section.clone(),
            })?;
        let linked = obj.link(&info, abi)?;
        let analysis = analyze(&linked);
        let verification = match &analysis.verdict {
            verifier_analysis::Verdict::Accept => Verification::Accepted,
            verifier_analysis::Verdict::Reject { insn, reason } => {
                if !opts.allow_unverified {
                    return Err(ExtError::Rejected {
                        program: linked.name.clone(),
                        insn: *insn,
                        insn_text: linked
                            .insns
                            .get(*insn)
                            .map(|i| i.to_string())
                            .unwrap_or_default(),
                        reason: reason.to_string(),
                    });
                }
                Verification::Unverified {
                    reason: format!("verifier rejected insn {insn}: {reason}"),
                }
            }
        };
        let specs = linked
            .maps
            .iter()
            .map(|d| {
                let kind = MapKind::from_type(d.map_type).ok_or_else(|| {
                    ExtError::Unsupported(format!(
                        "map {}: map type {} is not supported",
                        d.name, d.map_type
                    ))
                })?;
                Ok((
                    MapSpec {
                        name: d.name.clone(),
                        kind,
                        key_size: d.key_size,
                        value_size: d.value_size,
                        max_entries: d.max_entries,
                        flags: d.flags,
                        readonly: d.readonly,
                    },
                    d.initial.clone(),
                ))
            })
            .collect::<Result<Vec<_>, ExtError>>()?;
        let maps = MapSet::create(&specs, opts.workers.max(1)).map_err(|e| ExtError::Map {
            map: "(creating maps)".into(),
            source: e,
        })?;
        let program = Program::new(&linked, &maps, verification.allows_jit())?;
        if verification == Verification::Accepted {
            // The loader's own context analysis and the verifier's must find the same loads.
            let ours = program.ctx_rewrite_sites();
            let theirs: Vec<usize> = analysis.ctx_accesses.iter().map(|a| a.insn).collect();
            if ours != theirs {
                return Err(ExtError::Load {
                    program: linked.name.clone(),
                    insn: ours.iter().zip(&theirs).find(|(a, b)| a != b).map(|(a, _)| *a).unwrap_or(0),
                    reason: format!(
                        "the loader rewrites context accesses at {ours:?} but the verifier found them at {theirs:?}"
                    ),
                });
            }
        }
        let tier = match opts.tier {
            Some(t) => {
                if let Err(reason) = program.tier_available(t) {
                    return Err(ExtError::TierRefused {
                        name: name.into(),
                        tier: t.name(),
                        reason,
                    });
                }
                t
            }
            None if program.tier_available(ExecTier::Jit).is_ok() => ExecTier::Jit,
            None => ExecTier::Interpreter,
        };
        Ok(Extension {
            name: name.to_string(),
            program_name: linked.name.clone(),
            section: linked.section.clone(),
            abi,
            verification,
            analysis,
            tier,
            program,
            maps,
            runs: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            total_ns: AtomicU64::new(0),
            timed_runs: AtomicU64::new(0),
        })
    }

    /// Extension name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Program (function) name in the object.
    pub fn program_name(&self) -> &str {
        &self.program_name
    }

    /// Section the program came from.
    pub fn section(&self) -> &str {
        &self.section
    }

    /// The ABI.
    pub fn abi(&self) -> Abi {
        self.abi
    }

    /// The verifier's verdict as it applies here.
    pub fn verification(&self) -> &Verification {
        &self.verification
    }

    /// What the verifier found: verdict, packet read and write sets, whether the program may
    /// resize the packet, whether it is stateful.
    pub fn analysis(&self) -> &verifier_analysis::Analysis {
        &self.analysis
    }

    /// The tier [`Extension::run`] uses.
    pub fn tier(&self) -> ExecTier {
        self.tier
    }

    /// The prepared program.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Number of instructions.
    pub fn insn_count(&self) -> usize {
        self.program.instructions().len()
    }

    /// The extension's maps.
    pub fn maps(&self) -> &MapSet {
        &self.maps
    }

    /// The map called `name`.
    pub fn map(&self, name: &str) -> Result<&Arc<Map>, ExtError> {
        self.maps.get(name).ok_or_else(|| ExtError::NotFound {
            what: "map",
            name: name.into(),
        })
    }

    /// Counters.
    pub fn stats(&self) -> ExtensionStats {
        ExtensionStats {
            runs: self.runs.load(Ordering::Relaxed),
            drops: self.drops.load(Ordering::Relaxed),
            faults: self.faults.load(Ordering::Relaxed),
            total_ns: self.total_ns.load(Ordering::Relaxed),
            timed_runs: self.timed_runs.load(Ordering::Relaxed),
        }
    }

    /// Runs the extension on `pkt` on its tier, counting the run.
    pub fn run(
        &self,
        pkt: &mut dyn PacketMem,
        in_port: u32,
        time_ns: Option<u64>,
    ) -> Result<RunOutcome, ExtError> {
        self.run_on(self.tier, pkt, in_port, time_ns)
    }

    /// Runs the extension on a given tier (agreement tests, benchmarks), counting the run.
    pub fn run_on(
        &self,
        tier: ExecTier,
        pkt: &mut dyn PacketMem,
        in_port: u32,
        time_ns: Option<u64>,
    ) -> Result<RunOutcome, ExtError> {
        let nth = self.runs.fetch_add(1, Ordering::Relaxed);
        let mut acc = ExtensionStats::default();
        let r = self.run_sampled(tier, pkt, in_port, time_ns, nth, &mut acc);
        acc.runs = 0; // counted above
        self.add_stats(&acc);
        r
    }

    /// Runs the extension on its tier, counting into `acc` instead of the extension's shared
    /// counters (a worker adds `acc` with [`Extension::add_stats`] once per batch: an atomic
    /// read-modify-write per run costs as much as a small program). `nth` numbers the run for
    /// the timing sample.
    #[inline]
    pub fn run_counted<P: PacketMem + ?Sized>(
        &self,
        pkt: &mut P,
        in_port: u32,
        time_ns: Option<u64>,
        nth: u64,
        acc: &mut ExtensionStats,
    ) -> Result<RunOutcome, ExtError> {
        acc.runs += 1;
        self.run_sampled(self.tier, pkt, in_port, time_ns, nth, acc)
    }

    /// [`Extension::run_counted`] for the common run: a leaf program (JIT-compiled, calling
    /// no helper) on the JIT, not on the timing sample. Returns `r0`; `None` when the run is
    /// not of that kind and nothing ran (then use `run_counted`).
    #[inline(always)]
    pub fn run_leaf_counted<P: PacketMem + ?Sized>(
        &self,
        pkt: &mut P,
        in_port: u32,
        nth: u64,
        acc: &mut ExtensionStats,
    ) -> Option<u64> {
        if self.tier != ExecTier::Jit || nth.is_multiple_of(TIMING_SAMPLE) {
            return None;
        }
        // SAFETY: the program was prepared with `self.maps` (`Extension::load`), alive as
        // long as `self`.
        let retcode = unsafe { self.program.run_leaf_prepared(pkt, in_port) }?;
        acc.runs += 1;
        acc.drops += u64::from(self.drops_on(retcode));
        Some(retcode)
    }

    /// Whether return code `retcode` drops the packet under the extension's ABI.
    #[inline(always)]
    fn drops_on(&self, retcode: u64) -> bool {
        match self.abi {
            Abi::Xdp => matches!(retcode as u32 as u64, xdp::DROP | xdp::ABORTED),
            Abi::Ubpf => retcode == 0,
        }
    }

    /// Adds counts gathered by [`Extension::run_counted`] to the extension's counters.
    pub fn add_stats(&self, acc: &ExtensionStats) {
        let add = |c: &AtomicU64, v: u64| {
            if v != 0 {
                c.fetch_add(v, Ordering::Relaxed);
            }
        };
        add(&self.runs, acc.runs);
        add(&self.drops, acc.drops);
        add(&self.faults, acc.faults);
        add(&self.total_ns, acc.total_ns);
        add(&self.timed_runs, acc.timed_runs);
    }

    /// One run, counted into `acc` except for `acc.runs`; timed if `nth` falls on the sample.
    #[inline]
    fn run_sampled<P: PacketMem + ?Sized>(
        &self,
        tier: ExecTier,
        pkt: &mut P,
        in_port: u32,
        time_ns: Option<u64>,
        nth: u64,
        acc: &mut ExtensionStats,
    ) -> Result<RunOutcome, ExtError> {
        // Reading the clock costs about as much as a JIT-compiled run, so one run in
        // TIMING_SAMPLE is timed and ns/run is the mean over the timed runs.
        let t0 = nth.is_multiple_of(TIMING_SAMPLE).then(timer::ticks);
        let out = self.program.run(tier, &self.maps, pkt, in_port, time_ns)?;
        if let Some(t0) = t0 {
            acc.total_ns += timer::elapsed_ns(t0);
            acc.timed_runs += 1;
        }
        acc.drops += u64::from(self.drops_on(out.retcode));
        acc.faults += u64::from(out.fault.is_some());
        Ok(out)
    }

    /// Every entry of map `map`.
    pub fn map_dump(&self, map: &str) -> Result<Vec<MapEntry>, ExtError> {
        Ok(self.map(map)?.entries())
    }

    /// Updates map `map` from typed or hex text (see [`parse_typed_bytes`]).
    pub fn map_update_str(&self, map: &str, key: &str, value: &str) -> Result<(), ExtError> {
        let m = self.map(map)?;
        let k = parse_typed_bytes(key)?;
        let v = parse_typed_bytes(value)?;
        m.update(&k, &v, update_flags::ANY)
            .map_err(|e| ExtError::Map {
                map: map.into(),
                source: e,
            })
    }

    /// Deletes a key (typed or hex text) from map `map`.
    pub fn map_delete_str(&self, map: &str, key: &str) -> Result<(), ExtError> {
        let m = self.map(map)?;
        let k = parse_typed_bytes(key)?;
        m.delete(&k).map_err(|e| ExtError::Map {
            map: map.into(),
            source: e,
        })
    }
}

/// Runs `ext` once on a copy of `packet` (the offline runner of `bpfswitch ext run`).
pub fn run_once(ext: &Extension, packet: &[u8], in_port: u32) -> Result<RunResult, ExtError> {
    run_repeat(ext, packet, in_port, 1)
}

/// Runs `ext` `repeat` times, each on a fresh copy of `packet`; reports the last run and the
/// mean time per run (like `bpftool prog run ... repeat N`).
pub fn run_repeat(
    ext: &Extension,
    packet: &[u8],
    in_port: u32,
    repeat: u32,
) -> Result<RunResult, ExtError> {
    let mut total = 0u64;
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let mut buf = XdpBuf::new(packet);
        let t0 = timer::ticks();
        let out = ext.run(&mut buf, in_port, None)?;
        total += timer::elapsed_ns(t0);
        last = Some((out, buf));
    }
    let (out, buf) = last.expect("ran at least once");
    Ok(RunResult {
        retcode: out.retcode,
        output: buf.data().to_vec(),
        redirect: out.redirect,
        ns: total / u64::from(repeat.max(1)),
        fault: out.fault,
    })
}

/// Extensions by name.
#[derive(Default)]
pub struct Registry {
    exts: RwLock<BTreeMap<String, Arc<Extension>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Loads `bytes` under `name` (replacing an existing one only with `opts.replace`).
    pub fn load(
        &self,
        name: &str,
        bytes: &[u8],
        opts: &LoadOptions,
    ) -> Result<Arc<Extension>, ExtError> {
        if !opts.replace && self.get(name).is_some() {
            return Err(ExtError::Exists(name.into()));
        }
        let ext = Arc::new(Extension::load(name, bytes, opts)?);
        let mut map = self.exts.write().unwrap_or_else(|p| p.into_inner());
        if !opts.replace && map.contains_key(name) {
            return Err(ExtError::Exists(name.into()));
        }
        map.insert(name.to_string(), ext.clone());
        Ok(ext)
    }

    /// Adds an already loaded extension.
    pub fn insert(&self, ext: Extension, replace: bool) -> Result<Arc<Extension>, ExtError> {
        let mut map = self.exts.write().unwrap_or_else(|p| p.into_inner());
        if !replace && map.contains_key(ext.name()) {
            return Err(ExtError::Exists(ext.name().into()));
        }
        let ext = Arc::new(ext);
        map.insert(ext.name().to_string(), ext.clone());
        Ok(ext)
    }

    /// The extension called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Extension>> {
        self.exts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// All extensions, by name.
    pub fn list(&self) -> Vec<Arc<Extension>> {
        self.exts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Unloads `name`, refused while `referencing_rules` (the caller's description of the
    /// rules that use it) is not empty.
    pub fn unload(
        &self,
        name: &str,
        referencing_rules: &[String],
    ) -> Result<Arc<Extension>, ExtError> {
        if !referencing_rules.is_empty() {
            return Err(ExtError::InUse {
                name: name.into(),
                rules: referencing_rules.to_vec(),
            });
        }
        self.exts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .ok_or_else(|| ExtError::NotFound {
                what: "extension",
                name: name.into(),
            })
    }
}

fn perr(text: &str, reason: impl Into<String>) -> ExtError {
    ExtError::Parse {
        text: text.into(),
        reason: reason.into(),
    }
}

fn parse_ipv4(s: &str) -> Result<[u8; 4], ExtError> {
    s.parse::<std::net::Ipv4Addr>()
        .map(|a| a.octets())
        .map_err(|e| perr(s, e.to_string()))
}

fn parse_uint(s: &str) -> Result<u64, ExtError> {
    let r = if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16)
    } else {
        s.parse::<u64>()
    };
    r.map_err(|e| perr(s, e.to_string()))
}

/// Parses a key or value given as typed items or hex, concatenated in order. Items are
/// separated by commas or spaces:
/// `ip:10.0.0.1` (4 bytes, network order), `ip6:2001:db8::1` (16), `mac:00:11:22:33:44:55`
/// (6), `u8:`/`u16:`/`u32:`/`u64:` (little-endian, as programs store numbers),
/// `be16:`/`be32:`/`be64:` (network order), `lpm:10.0.0.0/8` (an LPM trie key: `u32`
/// prefix length then the address), `hex:0a000001`, or bare hex bytes (`0a 00 00 01`,
/// `0x0a000001`).
pub fn parse_typed_bytes(text: &str) -> Result<Vec<u8>, ExtError> {
    let mut out = Vec::new();
    for item in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        let (ty, v) = match item.split_once(':') {
            Some((t, v)) if !t.chars().all(|c| c.is_ascii_hexdigit()) || t.len() > 2 => (t, v),
            _ => ("hex", item),
        };
        match ty {
            "ip" | "ip4" => out.extend_from_slice(&parse_ipv4(v)?),
            "ip6" => out.extend_from_slice(
                &v.parse::<std::net::Ipv6Addr>()
                    .map_err(|e| perr(item, e.to_string()))?
                    .octets(),
            ),
            "mac" => {
                let parts: Vec<_> = v.split(':').collect();
                if parts.len() != 6 {
                    return Err(perr(item, "a MAC address has 6 bytes"));
                }
                for p in parts {
                    out.push(u8::from_str_radix(p, 16).map_err(|e| perr(item, e.to_string()))?);
                }
            }
            "u8" | "u16" | "u32" | "u64" | "be16" | "be32" | "be64" => {
                let n = parse_uint(v)?;
                let bits: u32 = ty
                    .trim_start_matches(['u', 'b', 'e'])
                    .parse()
                    .expect("width");
                if bits < 64 && n >> bits != 0 {
                    return Err(perr(item, format!("does not fit in {bits} bits")));
                }
                let bytes = (bits / 8) as usize;
                if ty.starts_with("be") {
                    out.extend_from_slice(&n.to_be_bytes()[8 - bytes..]);
                } else {
                    out.extend_from_slice(&n.to_le_bytes()[..bytes]);
                }
            }
            "lpm" => {
                let (addr, len) = v
                    .split_once('/')
                    .ok_or_else(|| perr(item, "expected ADDRESS/PREFIXLEN"))?;
                let plen: u32 = len.parse().map_err(|_| perr(item, "bad prefix length"))?;
                out.extend_from_slice(&plen.to_le_bytes());
                if addr.contains(':') {
                    out.extend_from_slice(
                        &addr
                            .parse::<std::net::Ipv6Addr>()
                            .map_err(|e| perr(item, e.to_string()))?
                            .octets(),
                    );
                } else {
                    out.extend_from_slice(&parse_ipv4(addr)?);
                }
            }
            "hex" => {
                let h = v.strip_prefix("0x").unwrap_or(v);
                if h.len() % 2 != 0 || h.is_empty() {
                    return Err(perr(item, "hex needs an even number of digits"));
                }
                for i in (0..h.len()).step_by(2) {
                    out.push(
                        u8::from_str_radix(&h[i..i + 2], 16)
                            .map_err(|e| perr(item, e.to_string()))?,
                    );
                }
            }
            other => return Err(perr(item, format!("unknown type `{other}`"))),
        }
    }
    if out.is_empty() {
        return Err(perr(text, "empty"));
    }
    Ok(out)
}

/// Formats bytes as space-separated hex, as `bpftool map dump` does.
pub fn format_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_bytes() {
        assert_eq!(parse_typed_bytes("ip:10.0.0.1").unwrap(), [10, 0, 0, 1]);
        assert_eq!(parse_typed_bytes("u32:5").unwrap(), [5, 0, 0, 0]);
        assert_eq!(parse_typed_bytes("be16:80").unwrap(), [0, 80]);
        assert_eq!(parse_typed_bytes("0a 00 00 01").unwrap(), [10, 0, 0, 1]);
        assert_eq!(parse_typed_bytes("0x0a000001").unwrap(), [10, 0, 0, 1]);
        assert_eq!(
            parse_typed_bytes("mac:00:11:22:33:44:ff").unwrap(),
            [0, 0x11, 0x22, 0x33, 0x44, 0xff]
        );
        assert_eq!(
            parse_typed_bytes("lpm:10.0.0.0/8").unwrap(),
            [8, 0, 0, 0, 10, 0, 0, 0]
        );
        assert_eq!(
            parse_typed_bytes("ip:10.0.0.1,be16:53").unwrap(),
            [10, 0, 0, 1, 0, 53]
        );
        assert!(parse_typed_bytes("u8:256").is_err());
        assert!(parse_typed_bytes("nope:1").is_err());
        assert!(parse_typed_bytes("abc").is_err());
        assert_eq!(format_hex(&[10, 0, 0, 1]), "0a 00 00 01");
    }

    #[test]
    fn unload_refused_while_referenced() {
        let r = Registry::new();
        let e = r
            .unload("x", &["table=0 priority=1 bpf_filter=x".into()])
            .unwrap_err();
        assert!(e.to_string().contains("referenced by"));
        assert!(matches!(r.unload("x", &[]), Err(ExtError::NotFound { .. })));
    }
}
