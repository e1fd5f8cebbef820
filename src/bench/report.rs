//! Judging measurements against the targets, and the outputs: the table, the JSON document
//! and the SVG plot.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::measure::{ratio, Measured, Settings, Variant};
use super::scenario::{Kind, OvsFigure, Scenario, Target, FLOW_SWEEP};
use super::BenchError;

/// The machine a report was measured on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// Online CPUs (`nproc`).
    pub nproc: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// `cpu MHz` of the first CPU in /proc/cpuinfo.
    pub mhz: Option<f64>,
    /// Kernel release.
    pub kernel: String,
    /// Build profile of the harness (`release` or `debug`: debug figures mean nothing).
    pub profile: &'static str,
    /// bpfswitch version.
    pub version: &'static str,
}

impl Machine {
    /// The machine this process runs on.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu: field("model name").unwrap_or_else(|| "unknown".into()),
            mhz: field("cpu MHz").and_then(|v| v.parse().ok()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// One line describing it.
    pub fn describe(&self) -> String {
        format!(
            "{} CPUs, {}{}, Linux {}, bpfswitch {} ({} build)",
            self.nproc,
            self.cpu,
            self.mhz
                .map(|m| format!(" at {m:.0} MHz"))
                .unwrap_or_default(),
            self.kernel,
            self.version,
            self.profile
        )
    }
}

/// A scenario's result judged against its target.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// What it measures.
    pub what: String,
    /// The headline figure (in `unit`).
    pub value: f64,
    /// Unit of `value`.
    pub unit: &'static str,
    /// The target.
    pub target: Target,
    /// Whether the target is met (`None`: report only).
    pub met: Option<bool>,
    /// The Open vSwitch figure on the same workload.
    pub ovs: Option<OvsFigure>,
    /// The measured variants.
    pub variants: Vec<Variant>,
    /// Peak resident memory while the scenario ran, KiB.
    pub peak_rss_kib: u64,
    /// Whether the peak is the scenario's own (`scenario`) or the process's so far
    /// (`process`, when the kernel refused to reset it).
    pub peak_scope: &'static str,
    /// Seconds the scenario took, warm-up and checks included.
    pub seconds: f64,
    /// How the figures were obtained, anything unusual.
    pub notes: Vec<String>,
    /// Consistency checks that failed (counters, outputs): a failure makes the figures void.
    pub failures: Vec<String>,
}

/// Everything one `bpfswitch bench` produced.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// How it measured.
    pub settings: Settings,
    /// The command line that reproduces it.
    pub command: String,
    /// Per scenario, in order.
    pub scenarios: Vec<ScenarioResult>,
}

fn geomean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    (xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp()
}

/// Judges `m` against `sc`'s target.
pub fn judge(
    sc: &Scenario,
    mut m: Measured,
    peak: (u64, &'static str),
    seconds: f64,
) -> ScenarioResult {
    let v = &m.variants;
    let ok = m.failures.is_empty();
    let (value, unit) = match sc.kind {
        Kind::Forward { .. } => (v[0].median_mpps, "Mpps"),
        Kind::Upcall => (
            v[0].median_mpps * 1e6 * ratio(v[0].counts.upcalls, v[0].counts.rx),
            "setups/s",
        ),
        Kind::Filter(_) => (v[1].ns_per_packet - v[0].ns_per_packet, "ns/pkt above"),
        // reclassify=verifier (variant 0) over reclassify=always (variant 1).
        Kind::Action { .. } => (v[0].median_mpps / v[1].median_mpps, "x"),
        // N workers (variant 1) over one (variant 0).
        Kind::Workers => (v[1].median_mpps / v[0].median_mpps, "x"),
        Kind::Tiers => {
            let mut r = Vec::new();
            let mut names: Vec<&str> = v
                .iter()
                .map(|x| x.label.split('/').next().unwrap_or("?"))
                .collect();
            names.dedup();
            for name in names {
                let find = |t: &str| v.iter().find(|x| x.label == format!("{name}/{t}"));
                if let (Some(i), Some(j)) = (find("interpreter"), find("jit")) {
                    let x = i.ns_per_packet / j.ns_per_packet;
                    r.push(x);
                    let mut note = format!("{name}: interpreter/jit {x:.1}x");
                    if let Some(c) = find("cranelift") {
                        let _ = write!(
                            note,
                            ", interpreter/cranelift {:.1}x, cranelift/jit {:.2}x",
                            i.ns_per_packet / c.ns_per_packet,
                            c.ns_per_packet / j.ns_per_packet
                        );
                    }
                    m.notes.push(note);
                }
            }
            (geomean(&r), "x interp/jit")
        }
    };
    let met = match sc.target {
        Target::MinMpps(x) => Some(ok && value >= x),
        Target::MinSetupsPerSec(x) => Some(ok && value >= x),
        Target::MaxNsAbove(x) => Some(ok && value <= x),
        Target::MinSpeedup(x) => Some(ok && value >= x),
        Target::MustRecirculate => Some(ok && v[0].recirc_per_packet() >= 0.999),
        Target::MinScaling(x) => Some(ok && value >= x),
        Target::Report => None,
    };
    ScenarioResult {
        name: if matches!(sc.kind, Kind::Workers) {
            format!("workers-{}", v[1].label.split(' ').next().unwrap_or("2"))
        } else {
            sc.name.to_string()
        },
        what: sc.what.to_string(),
        value,
        unit,
        target: sc.target,
        met,
        ovs: sc.ovs,
        variants: m.variants,
        peak_rss_kib: peak.0,
        peak_scope: peak.1,
        seconds,
        notes: m.notes,
        failures: m.failures,
    }
}

fn fmt_value(value: f64, unit: &str) -> String {
    match unit {
        "setups/s" => format!("{:.2} M setups/s", value / 1e6),
        "Mpps" => format!("{value:.2} Mpps"),
        "ns/pkt above" => format!("{value:+.1} ns/pkt"),
        _ => format!("{value:.2}{unit}"),
    }
}

/// The report as text tables.
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "machine: {}", r.machine.describe());
    let _ = writeln!(
        s,
        "settings: {} runs of {:.2} s per variant after {:.2} s of warm-up; batches of 32, \
         every packet copied from the replay buffer",
        r.settings.runs,
        r.settings.duration.as_secs_f64(),
        r.settings.warmup.as_secs_f64()
    );
    let _ = writeln!(s, "command: {}\n", r.command);
    let _ = writeln!(
        s,
        "{:<20} {:<28} {:>8} {:>6} {:>8} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>9} {:>7}",
        "scenario",
        "variant",
        "Mpps",
        "±%",
        "ns/pkt",
        "emc%",
        "mf%",
        "upc%",
        "recirc",
        "ext/pkt",
        "ns/ext",
        "megaflows",
        "peakMiB"
    );
    for sr in &r.scenarios {
        for (i, v) in sr.variants.iter().enumerate() {
            let c = &v.counts;
            let l = c.lookups();
            let tiers = sr.name == "interp-vs-jit";
            let pct = |x: u64| {
                if tiers {
                    "-".into()
                } else {
                    format!("{:.1}", 100.0 * ratio(x, l))
                }
            };
            let dash = |x: f64| {
                if tiers {
                    "-".into()
                } else {
                    format!("{x:.2}")
                }
            };
            let _ = writeln!(
                s,
                "{:<20} {:<28} {:>8.2} {:>6.1} {:>8.1} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>9} {:>7}",
                if i == 0 { sr.name.as_str() } else { "" },
                v.label,
                v.median_mpps,
                v.spread_pct,
                v.ns_per_packet,
                pct(c.emc_hits),
                pct(c.megaflow_hits),
                pct(c.upcalls),
                dash(v.recirc_per_packet()),
                dash(v.ext_runs_per_packet()),
                v.ext_ns_per_run
                    .map(|x| format!("{x:.1}"))
                    .unwrap_or_else(|| "-".into()),
                if tiers {
                    "-".into()
                } else {
                    v.megaflows.to_string()
                },
                if i == 0 {
                    format!("{:.1}", sr.peak_rss_kib as f64 / 1024.0)
                } else {
                    String::new()
                },
            );
        }
    }
    let _ = writeln!(
        s,
        "\n(interp-vs-jit: Mpps is million extension runs per second, ns/pkt is ns per run)\n"
    );
    let _ = writeln!(
        s,
        "{:<20} {:<22} {:<28} {:<8} Open vSwitch 3.1 + DPDK (WORKLOADS.md)",
        "scenario", "result", "target", "met"
    );
    for sr in &r.scenarios {
        let met = match (sr.failures.is_empty(), sr.met) {
            (false, _) => "CHECK FAILED",
            (true, Some(true)) => "met",
            (true, Some(false)) => "not met",
            (true, None) => "-",
        };
        let ovs = sr
            .ovs
            .map(|o| {
                format!(
                    "{:.2} Mpps ({} cycles/pkt): {:.1}x",
                    o.mpps,
                    o.cycles,
                    sr.value / o.mpps
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{:<20} {:<22} {:<28} {:<8} {}",
            sr.name,
            fmt_value(sr.value, sr.unit),
            sr.target.describe(),
            met,
            ovs
        );
    }
    let mut notes = String::new();
    for sr in &r.scenarios {
        for n in &sr.notes {
            let _ = writeln!(notes, "  {}: {n}", sr.name);
        }
        for f in &sr.failures {
            let _ = writeln!(notes, "  {}: CHECK FAILED: {f}", sr.name);
        }
    }
    if !notes.is_empty() {
        let _ = write!(s, "\nnotes:\n{notes}");
    }
    s
}

/// Writes the report as JSON.
pub fn write_json(r: &Report, path: &Path) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(r).map_err(|e| BenchError::Output {
        path: path.into(),
        reason: e.to_string(),
    })?;
    std::fs::write(path, text + "\n").map_err(|e| BenchError::Output {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// The bars of the per-scenario chart: (label, Mpps), extension tiers left out (they are
/// runs per second, not packets).
fn bars(r: &Report) -> Vec<(String, f64)> {
    let mut b = Vec::new();
    for sr in &r.scenarios {
        if sr.name == "interp-vs-jit" {
            continue;
        }
        for v in &sr.variants {
            let label = if sr.variants.len() == 1 {
                sr.name.clone()
            } else {
                format!("{} {}", sr.name, v.label)
            };
            b.push((label, v.median_mpps));
        }
    }
    b
}

/// The throughput-against-flows series: (name, points (flows, Mpps)).
fn sweep(r: &Report) -> Vec<(String, Vec<(f64, f64)>)> {
    let mpps = |name: &str| {
        r.scenarios
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.variants[0].median_mpps)
    };
    let ours = |decoy: bool| {
        FLOW_SWEEP
            .iter()
            .filter_map(|&(n, one, many)| {
                mpps(if decoy { many } else { one }).map(|m| (f64::from(n), m))
            })
            .collect::<Vec<_>>()
    };
    vec![
        ("bpfswitch, 1 megaflow".into(), ours(false)),
        ("bpfswitch, decoy rule".into(), ours(true)),
        (
            "Open vSwitch, 1 megaflow".into(),
            vec![(1.0, 13.7), (10_000.0, 8.2), (65_536.0, 5.2)],
        ),
        (
            "Open vSwitch, decoy rule".into(),
            vec![(10_000.0, 4.7), (65_536.0, 1.85)],
        ),
    ]
}

/// Draws the SVG: throughput per scenario, and throughput against the number of flows.
pub fn write_plot(r: &Report, path: &Path) -> Result<(), BenchError> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| BenchError::Output {
        path: path.into(),
        reason: e.to_string(),
    };
    let bars = bars(r);
    let height = (120 + 22 * bars.len() as u32).max(420);
    let root = SVGBackend::new(path, (1400, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(760);
    let max = bars.iter().map(|b| b.1).fold(1.0f64, f64::max) * 1.1;
    {
        let n = bars.len().max(1) as i32;
        let mut chart = ChartBuilder::on(&left)
            .caption(
                "Throughput per scenario (Mpps, one core)",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(300)
            .build_cartesian_2d(0f64..max, (0i32..n).into_segmented())
            .map_err(|e| err(&e))?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        // Bar `i` (from the top) sits in segment `n - 1 - i`.
        let label_of = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(y) => labels
                .get((n - 1 - *y) as usize)
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(bars.len().max(1))
            .y_label_formatter(&label_of)
            .x_desc("Mpps")
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let y = n - 1 - i as i32;
                let mut r = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(y)),
                        (b.1, SegmentValue::Exact(y + 1)),
                    ],
                    BLUE.mix(0.6).filled(),
                );
                r.set_margin(3, 3, 0, 0);
                r
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let y = n - 1 - i as i32;
                Text::new(
                    format!(" {:.2}", b.1),
                    (b.1, SegmentValue::CenterOf(y)),
                    ("sans-serif", 13),
                )
            }))
            .map_err(|e| err(&e))?;
    }
    {
        let series = sweep(r);
        let ymax = series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.1))
            .fold(1.0f64, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(&right)
            .caption("Throughput against the number of flows", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((0.7f64..100_000f64).log_scale(), 0f64..ymax)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("flows")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc("Mpps")
            .draw()
            .map_err(|e| err(&e))?;
        let colors = [BLUE.mix(1.0), RED.mix(1.0), BLUE.mix(0.45), RED.mix(0.45)];
        for (i, (name, pts)) in series.iter().enumerate() {
            let c = colors[i % colors.len()];
            let style = if i < 2 {
                c.stroke_width(3)
            } else {
                c.stroke_width(1)
            };
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), style))
                .map_err(|e| err(&e))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
