//! `bpfswitch verify FILE.o`: runs the verifier (`verifier-analysis`) on one program of a
//! clang-built object, offline, and prints its report: the verdict (a rejection names the
//! instruction, the reason, and shows the instructions around it disassembled), the packet
//! read and write sets (named as header fields where they fall on one), whether the program
//! may resize the packet or is stateful, its helpers, maps and context accesses.
//!
//! Exit status: 0 when the program is accepted, 1 when it is rejected, 2 when it could not be
//! analysed at all (unreadable file, not a BPF object, no such section).

use std::path::PathBuf;

use serde::Serialize;

use super::{read_file, select_program, AbiArg, CliError};
use crate::ext::registry::{analyze, verifier_program};

/// Arguments of `bpfswitch verify`.
#[derive(clap::Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The object, from `clang -O2 -target bpf -c prog.c -o prog.o`.
    #[arg(value_name = "FILE.o")]
    pub file: PathBuf,
    /// Program to analyse: a section or function name (needed when the object has several).
    #[arg(long, value_name = "S")]
    pub section: Option<String>,
    /// Program ABI, when the section name does not imply it (`xdp*` sections are XDP).
    #[arg(long, value_enum)]
    pub abi: Option<AbiArg>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also print the abstract state (register types) before every instruction.
    #[arg(long, conflicts_with = "json")]
    pub states: bool,
}

/// The JSON form: which program, then the analysis report.
#[derive(Serialize)]
struct JsonReport<'a> {
    file: String,
    section: &'a str,
    program: &'a str,
    abi: &'static str,
    #[serde(flatten)]
    report: verifier_analysis::report::Report,
}

/// Lower-case ABI name, as `--abi` spells it.
pub fn abi_name(abi: crate::ext::Abi) -> &'static str {
    match abi {
        crate::ext::Abi::Xdp => "xdp",
        crate::ext::Abi::Ubpf => "ubpf",
    }
}

/// Runs `bpfswitch verify`; returns whether the program was accepted.
pub fn run(args: &VerifyArgs) -> Result<bool, CliError> {
    let bytes = read_file(&args.file).map_err(|e| CliError::Usage(e.to_string()))?;
    let sel = select_program(&args.file, &bytes, args.section.as_deref(), args.abi).map_err(
        |e| match e {
            CliError::Failed(m) => CliError::Usage(m),
            u => u,
        },
    )?;
    let prog = verifier_program(&sel.linked);
    let analysis = analyze(&sel.linked);
    let accepted = analysis.verdict.is_accept();
    if args.json {
        let j = JsonReport {
            file: args.file.display().to_string(),
            section: &sel.info.section,
            program: &sel.linked.name,
            abi: abi_name(sel.abi),
            report: verifier_analysis::report::Report::new(&prog, &analysis),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&j).expect("report serialises")
        );
    } else {
        println!(
            "{}: program {} (section {}, {} ABI)",
            args.file.display(),
            sel.linked.name,
            sel.info.section,
            abi_name(sel.abi)
        );
        print!(
            "{}",
            verifier_analysis::report::render_text(&prog, &analysis)
        );
        if !accepted {
            println!(
                "(a rejected program runs only on the bounds-checked interpreter, loaded with --unverified)"
            );
        }
        if args.states {
            println!();
            print!(
                "{}",
                verifier_analysis::report::render_states(&prog, &analysis)
            );
        }
    }
    Ok(accepted)
}
