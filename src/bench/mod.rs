//! The flow-cache benchmark harness behind `bpfswitch bench` (issue 5).
//!
//! Traffic is generated in memory exactly as `benches/workloads/WORKLOADS.md` defines it
//! ([`traffic`]): 60-byte UDP frames, packet `i` of flow `i % nflows`, looped from a replay
//! buffer. Every packet is copied from that buffer into a [`crate::packet::PacketBuf`] of a
//! [`crate::port::Batch`] of 32, as a NIC driver fills mbufs, and the batch goes through
//! [`crate::dpif::Worker::process_batch`] into a counting sink, the benchmark's null device.
//! Each scenario ([`scenario::SCENARIOS`]) warms up (at least two passes over its traffic),
//! then measures several timed runs of each of its variants, interleaved run by run; the
//! report gives the median and the spread, ns per packet, the cache breakdown, recirculations
//! and extension runs per packet, megaflows and peak memory, and judges the median against
//! issue 5's target (never asserted) next to Open vSwitch's figure on the same workload.

pub mod measure;
pub mod report;
pub mod scenario;
pub mod traffic;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use measure::Settings;
pub use report::{Machine, Report, ScenarioResult};

/// Errors of the harness.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An unknown scenario name.
    #[error("unknown scenario {0:?} (try --list)")]
    UnknownScenario(String),
    /// Setting a scenario up failed (a flow table or an extension did not load).
    #[error("setting up: {0}")]
    Setup(String),
    /// Writing an output file failed.
    #[error("{}: {reason}", path.display())]
    Output {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Arguments of `bpfswitch bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Scenarios to run (all when none are named; see --list).
    pub scenarios: Vec<String>,
    /// Write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw throughput per scenario and against the number of flows into FILE (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Seconds of one timed run.
    #[arg(long, value_name = "S", default_value_t = 0.5)]
    pub duration: f64,
    /// Timed runs per variant.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub runs: usize,
    /// Seconds of warm-up per variant (after two passes over the traffic).
    #[arg(long, value_name = "S", default_value_t = 0.3)]
    pub warmup: f64,
    /// Workers of the multi-worker scenario (`workers-2`).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub workers: usize,
    /// List the scenarios and exit.
    #[arg(long)]
    pub list: bool,
}

/// Resets the peak resident set size of this process (Linux's `clear_refs` 5).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident set size in KiB: `VmHWM`, or getrusage's `ru_maxrss` without /proc.
fn peak_kib() -> u64 {
    if let Ok(s) = std::fs::read_to_string("/proc/self/status") {
        if let Some(v) = s
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        {
            return v;
        }
    }
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) == 0 {
            return ru.ru_maxrss as u64;
        }
    }
    0
}

/// The scenarios `names` selects (all when empty); `workers-N` names the multi-worker one.
pub fn select(names: &[String]) -> Result<Vec<&'static scenario::Scenario>, BenchError> {
    if names.is_empty() {
        return Ok(scenario::SCENARIOS.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            let key = if n.starts_with("workers-") {
                "workers-2"
            } else {
                n
            };
            scenario::find(key).ok_or_else(|| BenchError::UnknownScenario(n.clone()))
        })
        .collect()
}

/// Runs `scenarios` with `settings`; `tick` is called after every warm-up and timed run
/// with what just ran.
pub fn run_scenarios(
    scenarios: &[&scenario::Scenario],
    settings: &Settings,
    command: String,
    tick: &mut dyn FnMut(&str, &str),
) -> Result<Report, BenchError> {
    let mut results = Vec::new();
    for sc in scenarios {
        let scope = if reset_peak() { "scenario" } else { "process" };
        let t0 = Instant::now();
        let m = measure::run(sc, settings, &mut |what| tick(sc.name, what))?;
        let peak = peak_kib();
        results.push(report::judge(
            sc,
            m,
            (peak, scope),
            t0.elapsed().as_secs_f64(),
        ));
    }
    Ok(Report {
        machine: Machine::detect(),
        settings: settings.clone(),
        command,
        scenarios: results,
    })
}

/// Runs `bpfswitch bench`.
pub fn run(args: &BenchArgs) -> Result<(), crate::cli::CliError> {
    use crate::cli::CliError;
    if args.list {
        for s in scenario::SCENARIOS {
            println!("{:<20} {:<28} {}", s.name, s.target.describe(), s.what);
        }
        return Ok(());
    }
    let secs = |x: f64, what: &str| {
        if x.is_finite() && x >= 0.0 {
            Ok(Duration::from_secs_f64(x))
        } else {
            Err(CliError::Usage(format!(
                "bench: --{what} must be a number of seconds"
            )))
        }
    };
    let settings = Settings {
        duration: secs(args.duration, "duration")?.max(Duration::from_millis(1)),
        runs: args.runs.max(1),
        warmup: secs(args.warmup, "warmup")?,
        workers: args.workers.max(1),
    };
    let scenarios = select(&args.scenarios).map_err(|e| CliError::Usage(e.to_string()))?;
    if cfg!(debug_assertions) {
        eprintln!("bpfswitch bench: WARNING: a debug build; build with --release for figures");
    }
    let total: u64 = scenarios.iter().map(|s| measure::ticks(s, &settings)).sum();
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let command = std::iter::once("bpfswitch".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let report = run_scenarios(&scenarios, &settings, command, &mut |sc, what| {
        bar.set_message(format!("{sc}: {what}"));
        bar.inc(1);
    })
    .map_err(|e| CliError::Failed(format!("bench: {e}")))?;
    bar.finish_and_clear();
    print!("{}", report::table(&report));
    if let Some(p) = &args.json {
        report::write_json(&report, p).map_err(|e| CliError::Failed(e.to_string()))?;
        eprintln!("wrote {}", p.display());
    }
    if let Some(p) = &args.plot {
        report::write_plot(&report, p).map_err(|e| CliError::Failed(e.to_string()))?;
        eprintln!("wrote {}", p.display());
    }
    let failed: Vec<&str> = report
        .scenarios
        .iter()
        .filter(|s| !s.failures.is_empty())
        .map(|s| s.name.as_str())
        .collect();
    if !failed.is_empty() {
        return Err(CliError::Failed(format!(
            "bench: consistency checks failed in {}",
            failed.join(", ")
        )));
    }
    Ok(())
}
