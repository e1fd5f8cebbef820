//! The command line's subcommands, each in its own module; `main.rs` only dispatches.
//!
//! Offline commands (no running switch needed): [`parse_flow`] (`bpfswitch parse-flow`),
//! [`verify`] (`bpfswitch verify`) and [`ext_run`] (`bpfswitch ext run`); the replay job is
//! [`crate::replay`]. The argument types they share (ABI, tier, `NAME=FILE.o[:SECTION]`) live
//! here.

pub mod ext_run;
pub mod parse_flow;
pub mod verify;

use std::path::{Path, PathBuf};

use crate::ext::{Abi, BpfObject, ExecTier, LinkedProgram, ProgramInfo};

/// Errors a subcommand reports to the user (printed as `bpfswitch: <message>`, exit code 1;
/// usage errors exit with 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong or inconsistent arguments.
    #[error("{0}")]
    Usage(String),
    /// Anything else, with its context.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// A failure with `context` (a file name, what was being done) in front of `e`.
    pub fn failed(context: impl std::fmt::Display, e: impl std::fmt::Display) -> CliError {
        CliError::Failed(format!("{context}: {e}"))
    }
}

/// `--abi`: the program ABI when the section name does not imply it.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiArg {
    /// Kernel XDP: r1 = `struct xdp_md *`, XDP return codes.
    Xdp,
    /// uBPF/Oko: r1 = packet, r2 = length, non-zero = match/pass.
    Ubpf,
}

impl From<AbiArg> for Abi {
    fn from(a: AbiArg) -> Abi {
        match a {
            AbiArg::Xdp => Abi::Xdp,
            AbiArg::Ubpf => Abi::Ubpf,
        }
    }
}

/// `--tier`: the VM tier that runs a program.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TierArg {
    /// rbpf's bounds-checked interpreter (runs any program).
    Interpreter,
    /// rbpf's x86_64 JIT (verified programs only).
    Jit,
    /// rbpf's cranelift back end (verified programs only).
    Cranelift,
}

impl From<TierArg> for ExecTier {
    fn from(t: TierArg) -> ExecTier {
        match t {
            TierArg::Interpreter => ExecTier::Interpreter,
            TierArg::Jit => ExecTier::Jit,
            TierArg::Cranelift => ExecTier::Cranelift,
        }
    }
}

/// Reads a file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::failed(path.display(), e))
}

/// An object file's program selected and linked for the analysis and the runtime, with the
/// ABI resolved (from `--abi`, else from the section name).
pub struct SelectedProgram {
    /// The program as the object lists it.
    pub info: ProgramInfo,
    /// The ABI used.
    pub abi: Abi,
    /// The linked program (bpf-to-bpf calls resolved, map references recorded).
    pub linked: LinkedProgram,
}

/// Parses object `bytes` (named `path` in errors), selects `section` and links it.
pub fn select_program(
    path: &Path,
    bytes: &[u8],
    section: Option<&str>,
    abi: Option<AbiArg>,
) -> Result<SelectedProgram, CliError> {
    let ctx = || path.display().to_string();
    let obj = BpfObject::parse(bytes).map_err(|e| CliError::failed(ctx(), e))?;
    let info = obj
        .select(section)
        .map_err(|e| CliError::failed(ctx(), e))?;
    let abi = abi.map(Abi::from).or(info.abi_hint).ok_or_else(|| {
        CliError::Usage(format!(
            "{}: section {}: cannot tell the ABI from the section name; pass --abi xdp|ubpf",
            ctx(),
            info.section
        ))
    })?;
    let linked = obj
        .link(&info, abi)
        .map_err(|e| CliError::failed(ctx(), e))?;
    Ok(SelectedProgram { info, abi, linked })
}

/// An extension named on the command line: `NAME=FILE.o` or `NAME=FILE.o:SECTION`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtSpec {
    /// Name rules use (`bpf_filter=NAME`, `bpf(NAME)`).
    pub name: String,
    /// The object file.
    pub path: PathBuf,
    /// Program to take from it (section or function name), when it has several.
    pub section: Option<String>,
}

/// Parses `NAME=FILE.o[:SECTION]` (a `:` is taken as the section separator only when the
/// whole text after `=` is not an existing file).
pub fn parse_ext_spec(s: &str) -> Result<ExtSpec, String> {
    let (name, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected NAME=FILE.o[:SECTION]"))?;
    if name.is_empty() || rest.is_empty() {
        return Err(format!("`{s}`: expected NAME=FILE.o[:SECTION]"));
    }
    let (path, section) = match rest.rsplit_once(':') {
        Some((p, sec)) if !Path::new(rest).exists() && !p.is_empty() && !sec.is_empty() => {
            (p, Some(sec.to_string()))
        }
        _ => (rest, None),
    };
    Ok(ExtSpec {
        name: name.to_string(),
        path: PathBuf::from(path),
        section,
    })
}

/// Parses an OpenFlow port number given on the command line (`1`, `LOCAL`).
pub fn parse_port(s: &str) -> Result<u32, String> {
    use ofproto_bridge::action::OFPP_LOCAL;
    if s.eq_ignore_ascii_case("local") {
        return Ok(OFPP_LOCAL);
    }
    match s.parse::<u32>() {
        Ok(n) if n > 0 && n < 0xffff_ff00 => Ok(n),
        _ => Err(format!(
            "`{s}`: expected an OpenFlow port number (1 to 4294967039) or LOCAL"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_specs() {
        let e = parse_ext_spec("fw=extensions/fw_stateful_filter.o").unwrap();
        assert_eq!(e.name, "fw");
        assert_eq!(e.path, PathBuf::from("extensions/fw_stateful_filter.o"));
        assert_eq!(e.section, None);
        let e = parse_ext_spec("x=/no/such/prog.o:xdp/main").unwrap();
        assert_eq!(e.path, PathBuf::from("/no/such/prog.o"));
        assert_eq!(e.section.as_deref(), Some("xdp/main"));
        assert!(parse_ext_spec("noequals.o").is_err());
        assert!(parse_ext_spec("=a.o").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("3"), Ok(3));
        assert_eq!(parse_port("local"), Ok(ofproto_bridge::action::OFPP_LOCAL));
        assert!(parse_port("0").is_err());
        assert!(parse_port("x").is_err());
    }
}
