//! `bpfswitch ext run FILE.o --data-in PKT.bin`: runs one program on one packet, offline, as
//! `bpftool prog run` does for the kernel (`BPF_PROG_TEST_RUN`), so extension authors can
//! test a program without a switch: prints the return code (with its XDP name), the output
//! length (and how many bytes changed), the redirect port, and the mean time per run.
//!
//! The program is loaded exactly as the switch loads it (the verifier decides whether the JIT
//! tiers may run it; `--unverified` runs a rejected program on the bounds-checked
//! interpreter). Maps start as the object defines them; `--map-update` fills them first.

use std::path::PathBuf;

use serde::Serialize;

use super::verify::abi_name;
use super::{read_file, AbiArg, CliError, TierArg};
use crate::ext::{format_hex, run_repeat, Abi, Extension, LoadOptions};

/// Arguments of `bpfswitch ext run`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExtRunArgs {
    /// The object, from `clang -O2 -target bpf -c prog.c -o prog.o`.
    #[arg(value_name = "FILE.o")]
    pub file: PathBuf,
    /// Program to run: a section or function name (needed when the object has several).
    #[arg(long, value_name = "S")]
    pub section: Option<String>,
    /// Program ABI, when the section name does not imply it.
    #[arg(long, value_enum)]
    pub abi: Option<AbiArg>,
    /// The packet: a file of raw frame bytes (Ethernet header first), as for bpftool.
    #[arg(long, value_name = "PKT.bin")]
    pub data_in: PathBuf,
    /// Where to write the packet as the program left it.
    #[arg(long, value_name = "OUT.bin")]
    pub data_out: Option<PathBuf>,
    /// Fills a map before the run: MAP KEY VALUE, typed (`ip:10.0.0.1`, `be16:80`, `u32:5`,
    /// `mac:..`, `lpm:10.0.0.0/8`) or hex (`0a 00 00 01`); repeatable.
    #[arg(long = "map-update", num_args = 3, value_names = ["MAP", "KEY", "VALUE"], action = clap::ArgAction::Append)]
    pub map_updates: Vec<String>,
    /// Prints a map's entries after the run (repeatable).
    #[arg(long = "dump-map", value_name = "MAP")]
    pub dump_maps: Vec<String>,
    /// Runs this many times, each on a fresh copy of the packet (maps persist); the last
    /// run is reported and the time is the mean.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// VM tier (default: the JIT for verified programs, the interpreter otherwise).
    #[arg(long, value_enum)]
    pub tier: Option<TierArg>,
    /// Runs a program the verifier rejects (bounds-checked interpreter only).
    #[arg(long)]
    pub unverified: bool,
    /// Ingress port (`xdp_md.ingress_ifindex`, the OpenFlow in_port in the switch).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub in_port: u32,
    /// Prints the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The result, as `--json` prints it.
#[derive(Serialize, Debug)]
pub struct ExtRunReport {
    /// Program (function) name.
    pub program: String,
    /// Section.
    pub section: String,
    /// ABI.
    pub abi: &'static str,
    /// Tier that ran it.
    pub tier: &'static str,
    /// Whether the verifier accepted it.
    pub verified: bool,
    /// Return code of the last run.
    pub retval: u64,
    /// The return code's name (`XDP_PASS`; for uBPF `match`/`no match`).
    pub retval_name: String,
    /// Input length in bytes.
    pub data_size_in: usize,
    /// Output length in bytes.
    pub data_size_out: usize,
    /// Bytes that differ between input and output (when the length did not change).
    pub bytes_changed: Option<usize>,
    /// Output bytes, hex.
    pub data_out: String,
    /// Port chosen by `bpf_redirect`.
    pub redirect: Option<u32>,
    /// Runs.
    pub repeat: u32,
    /// Mean nanoseconds per run.
    pub duration_ns: u64,
    /// Fault that aborted the last run.
    pub fault: Option<String>,
    /// Maps dumped after the run: name, then (key, value) in hex.
    pub maps: Vec<(String, Vec<(String, String)>)>,
}

/// The name of a return code under `abi`.
pub fn retval_name(abi: Abi, r: u64) -> String {
    use crate::ext::vm::xdp;
    match abi {
        Abi::Xdp => match r as u32 as u64 {
            xdp::ABORTED => "XDP_ABORTED".into(),
            xdp::DROP => "XDP_DROP".into(),
            xdp::PASS => "XDP_PASS".into(),
            xdp::TX => "XDP_TX".into(),
            xdp::REDIRECT => "XDP_REDIRECT".into(),
            _ => "unknown XDP action (dropped)".into(),
        },
        Abi::Ubpf if r == 0 => "0: no match / drop".into(),
        Abi::Ubpf => "non-zero: match / pass".into(),
    }
}

/// Runs `bpfswitch ext run`; returns the report (already printed).
pub fn run(args: &ExtRunArgs) -> Result<ExtRunReport, CliError> {
    let bytes = read_file(&args.file)?;
    let data = read_file(&args.data_in)?;
    let opts = LoadOptions {
        section: args.section.clone(),
        abi: args.abi.map(Abi::from),
        replace: false,
        allow_unverified: args.unverified,
        tier: args.tier.map(Into::into),
        workers: 1,
    };
    let name = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "prog".into());
    let ext = Extension::load(&name, &bytes, &opts)
        .map_err(|e| CliError::failed(args.file.display(), e))?;
    for u in args.map_updates.chunks(3) {
        let [map, key, value] = u else {
            return Err(CliError::Usage("--map-update takes MAP KEY VALUE".into()));
        };
        ext.map_update_str(map, key, value)
            .map_err(|e| CliError::failed(format!("--map-update {map} {key} {value}"), e))?;
    }
    let r = run_repeat(&ext, &data, args.in_port, args.repeat)
        .map_err(|e| CliError::failed(args.file.display(), e))?;
    let mut maps = Vec::new();
    for m in &args.dump_maps {
        let entries = ext
            .map_dump(m)
            .map_err(|e| CliError::failed(format!("--dump-map {m}"), e))?;
        maps.push((
            m.clone(),
            entries
                .iter()
                .map(|(k, v)| (format_hex(k), format_hex(v)))
                .collect(),
        ));
    }
    let report = ExtRunReport {
        program: ext.program_name().to_string(),
        section: ext.section().to_string(),
        abi: abi_name(ext.abi()),
        tier: ext.tier().name(),
        verified: ext.verification().allows_jit(),
        retval: r.retcode,
        retval_name: retval_name(ext.abi(), r.retcode),
        data_size_in: data.len(),
        data_size_out: r.output.len(),
        bytes_changed: (r.output.len() == data.len())
            .then(|| r.output.iter().zip(&data).filter(|(a, b)| a != b).count()),
        data_out: format_hex(&r.output),
        redirect: r.redirect,
        repeat: args.repeat,
        duration_ns: r.ns,
        fault: r.fault.clone(),
        maps,
    };
    if let Some(out) = &args.data_out {
        std::fs::write(out, &r.output).map_err(|e| CliError::failed(out.display(), e))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        print_text(&report, args);
    }
    if let Some(f) = &report.fault {
        return Err(CliError::Failed(format!(
            "the run faulted (the interpreter aborted it): {f}"
        )));
    }
    Ok(report)
}

fn print_text(r: &ExtRunReport, args: &ExtRunArgs) {
    println!(
        "program {} (section {}, {} ABI, {}{})",
        r.program,
        r.section,
        r.abi,
        r.tier,
        if r.verified { "" } else { ", UNVERIFIED" }
    );
    println!("Return value: {} ({})", r.retval, r.retval_name);
    let changed = match r.bytes_changed {
        Some(0) => "unchanged".to_string(),
        Some(n) => format!("{n} bytes changed"),
        None => format!("resized from {} bytes", r.data_size_in),
    };
    println!("data_size_out: {} bytes ({changed})", r.data_size_out);
    if let Some(out) = &args.data_out {
        println!("data_out written to {}", out.display());
    }
    if let Some(p) = r.redirect {
        println!("redirect: port {p}");
    }
    println!(
        "duration (average): {} ns over {} run{}",
        r.duration_ns,
        r.repeat,
        if r.repeat == 1 { "" } else { "s" }
    );
    if let Some(f) = &r.fault {
        println!("fault: {f}");
    }
    for (name, entries) in &r.maps {
        println!("map {name}: {} entries", entries.len());
        for (k, v) in entries {
            println!("  key: {k}  value: {v}");
        }
    }
}
