//! eBPF extensions: loading objects, maps, helpers and the VM tiers that run them.
//!
//! An *extension* is one eBPF program from a clang-built object, with the maps it defines,
//! loaded into the switch under a name. The pieces, in the order a load goes through them:
//!
//! - [`object`] parses the ELF object (no I/O, no maps created) and links one program;
//! - [`maps`] creates its maps (hash, array, per-worker, LRU, LPM trie) in one region;
//! - [`vm`] relocates map references to map addresses, rewrites XDP context accesses to
//!   the runtime context layout, and prepares the execution tiers (the rbpf interpreter,
//!   its x86_64 JIT and its cranelift back end);
//! - [`helpers`] implements the helper functions programs call, by kernel number for XDP
//!   programs and by Oko's numbering for uBPF programs;
//! - [`registry`] keeps extensions by name, with counters, map dump/update and the offline
//!   runner behind `bpfswitch ext run`;
//! - [`timer`] is the calibrated tick clock behind the sampled ns/run counter.
//!
//! **Architecture invariant:** only a program the verifier accepted reaches the JIT or
//! cranelift tiers, which do no memory checks; anything else runs on the bounds-checked
//! interpreter, whose memory accesses and helper pointer arguments are confined to the
//! packet buffer, the stack, the context and the extension's map values.

pub mod btf;
pub mod helpers;
pub mod insn;
pub mod kernel;
pub mod maps;
pub mod object;
pub mod registry;
pub mod timer;
pub mod vm;

#[cfg(test)]
mod tests;

pub use maps::{Map, MapError, MapKind, MapSet, MapSpec};
pub use object::{BpfObject, LinkedProgram, MapDef, ProgramInfo};
pub use registry::{
    format_hex, parse_typed_bytes, run_once, run_repeat, Extension, ExtensionStats, LoadOptions,
    Registry, RunResult, Verification,
};
pub use verifier_analysis::platform::Abi;
pub use vm::{ExecTier, PacketMem, Program, RunOutcome, XdpBuf};

/// Errors of the extension runtime.
#[derive(Debug, thiserror::Error)]
pub enum ExtError {
    /// The bytes are not a usable ELF object.
    #[error("ELF: {0}")]
    Elf(String),
    /// The `.BTF` section could not be decoded.
    #[error("BTF: {0}")]
    Btf(String),
    /// The object uses something bpfswitch does not support (names what and where).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// No program matches the requested section or name.
    #[error("no program `{wanted}` in the object; it has: {}", available.join(", "))]
    NoProgram {
        /// What was asked for.
        wanted: String,
        /// What the object has.
        available: Vec<String>,
    },
    /// More than one program matches; the caller must choose with a section or name.
    #[error("several programs match, choose one with --section: {}", candidates.join(", "))]
    AmbiguousProgram {
        /// The matching programs.
        candidates: Vec<String>,
    },
    /// The ABI could not be inferred from the section name.
    #[error("section {section}: cannot tell the ABI from the section name; pass --abi xdp|ubpf")]
    AbiUnknown {
        /// The program's section.
        section: String,
    },
    /// A map operation failed.
    #[error("map {map}: {source}")]
    Map {
        /// Map name.
        map: String,
        /// What went wrong.
        #[source]
        source: MapError,
    },
    /// The program was refused at load (instruction index and reason).
    #[error("program {program}: insn {insn}: {reason}")]
    Load {
        /// Program name.
        program: String,
        /// Offending instruction index (in the linked image).
        insn: usize,
        /// Why.
        reason: String,
    },
    /// The verifier rejected the program (load it with `--unverified` to run it on the
    /// interpreter anyway).
    #[error("program {program} rejected by the verifier at insn {insn} (`{insn_text}`): {reason}")]
    Rejected {
        /// Program name.
        program: String,
        /// Offending instruction index.
        insn: usize,
        /// The instruction, disassembled.
        insn_text: String,
        /// Why.
        reason: String,
    },
    /// A VM tier failed to compile or run the program.
    #[error("{tier} tier: {message}")]
    Vm {
        /// Which tier.
        tier: &'static str,
        /// rbpf's message.
        message: String,
    },
    /// A tier was requested that the program may not use.
    #[error("extension {name}: {tier} tier refused: {reason}")]
    TierRefused {
        /// Extension name.
        name: String,
        /// Requested tier.
        tier: &'static str,
        /// Why.
        reason: String,
    },
    /// No extension or map of that name.
    #[error("no {what} named `{name}`")]
    NotFound {
        /// "extension" or "map".
        what: &'static str,
        /// The name looked up.
        name: String,
    },
    /// Loading under a name that exists without `--replace`.
    #[error("an extension named `{0}` is already loaded (use --replace)")]
    Exists(String),
    /// Unloading an extension that rules still reference.
    #[error("extension `{name}` is referenced by: {}", rules.join("; "))]
    InUse {
        /// Extension name.
        name: String,
        /// The referencing rules, as the caller described them.
        rules: Vec<String>,
    },
    /// A typed or hex key/value could not be parsed.
    #[error("cannot parse `{text}`: {reason}")]
    Parse {
        /// The input.
        text: String,
        /// Why.
        reason: String,
    },
}
