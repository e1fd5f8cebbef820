//! Static analysis of eBPF bytecode: a safety verdict plus the packet bytes a program may
//! read and write. **Architecture invariant:** no I/O and no dependency on the switch.
//!
//! The modules follow PREVAIL's split: [`insn`] decodes and disassembles, [`platform`] holds
//! the ABIs and helper prototypes as data, [`cfg`](mod@cfg) builds functions and a weak topological
//! order, [`domain`] defines the abstract values, [`transfer`] and [`checks`] give each
//! instruction its meaning and its safety conditions, [`fixpoint`] runs the forward analysis,
//! and [`report`] presents the result. One run of [`analyze`] yields the verdict and the
//! read/write sets together.
//!
//! ```
//! use verifier_analysis::{analyze, Program, platform::{Abi, Platform}, Verdict};
//! // r0 = 2 (XDP_PASS); exit
//! let prog = Program::from_bytes(
//!     &[0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0], Abi::Xdp, vec![]).unwrap();
//! let a = analyze(&prog, &Platform::xdp());
//! assert_eq!(a.verdict, Verdict::Accept);
//! assert!(a.packet_writes.is_empty());
//! ```
//!
//! # Using the results
//!
//! * **Loader**: build a [`Program`] from the linked instructions, the map descriptions
//!   ([`platform::MapDescr`]) and, for each relocated `ld_imm64`, [`Program::with_map_ref`].
//!   After an accept, rewrite each [`CtxAccess`] (a load of `struct xdp_md` at `offset`) into
//!   the runtime layout of [`platform::XDP_CTX_FIELDS`].
//! * **Translation**: [`Analysis::packet_writes`] says which bytes an action may change;
//!   [`AccessSet::intersects`] against a flow field's byte range decides whether the field
//!   may change. `Unbounded`, or [`Analysis::may_resize`], means anything may change.
//! * **Filter caching**: when [`Analysis::stateful`] is false the result depends only on the
//!   bytes in [`Analysis::packet_reads`], the packet length (bounds checks compare against
//!   it), the contents of the maps in [`Analysis::maps_used`] (which the control plane may
//!   update) and, if [`Analysis::reads_metadata`], the ingress port and queue.
//! * **Rejected programs** have both sets `Unbounded`, so a caller that ignores the verdict
//!   still stays conservative.
//!
//! **Runtime obligations** (not checked here): helpers bound their own memory accesses where
//! the prototype gives no size (`l3/l4_csum_replace` offsets, Oko `printf` format strings),
//! and `trace_printk`/`printf` never dereference their value arguments.
#![warn(missing_docs)]
pub mod asm;
pub mod cfg;
pub mod checks;
pub mod domain;
pub mod fixpoint;
pub mod insn;
pub mod platform;
pub mod report;
pub mod transfer;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::Value;
use crate::insn::Insn;
use crate::platform::{Abi, ArgType, MapDescr, Platform};

/// Errors building a [`Program`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The byte string is not a whole number of 8-byte instructions.
    #[error("program length {0} is not a multiple of 8 bytes")]
    Length(usize),
}

/// What an `ld_imm64` at a given instruction refers to, when the loader resolved it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub struct MapRef {
    /// Index into [`Program::maps`].
    pub map: usize,
    /// `None`: the instruction loads a map reference; `Some(off)`: a pointer `off` bytes into
    /// the map's value (globals in `.data`/`.rodata`/`.bss`).
    pub value_offset: Option<u32>,
}

/// A program to analyse: instructions, ABI and the maps its `ld_imm64`s refer to.
#[derive(Clone, Debug, Serialize)]
pub struct Program {
    /// Instruction slots.
    pub insns: Vec<Insn>,
    /// Entry ABI.
    pub abi: Abi,
    /// Maps the program may reference.
    pub maps: Vec<MapDescr>,
    /// Resolved map references by instruction index. An `ld_imm64` without an entry here is
    /// read as the kernel encodes it: `src_reg` 1 (`BPF_PSEUDO_MAP_FD`) with `imm` = map
    /// index, or `src_reg` 2 (`BPF_PSEUDO_MAP_VALUE`) with `imm` = map index and the second
    /// slot's `imm` = offset into the value.
    pub map_refs: BTreeMap<usize, MapRef>,
}

impl Program {
    /// A program from decoded instructions.
    pub fn new(insns: Vec<Insn>, abi: Abi, maps: Vec<MapDescr>) -> Program {
        Program {
            insns,
            abi,
            maps,
            map_refs: BTreeMap::new(),
        }
    }

    /// Records that the `ld_imm64` at `insn` refers to map `map` (`value_offset`: a pointer
    /// that many bytes into the map's value, for globals), overriding its encoding.
    pub fn with_map_ref(mut self, insn: usize, map: usize, value_offset: Option<u32>) -> Program {
        self.map_refs.insert(insn, MapRef { map, value_offset });
        self
    }

    /// A program from its little-endian bytes.
    pub fn from_bytes(bytes: &[u8], abi: Abi, maps: Vec<MapDescr>) -> Result<Program, Error> {
        let insns = insn::decode(bytes).ok_or(Error::Length(bytes.len()))?;
        Ok(Program::new(insns, abi, maps))
    }
}

/// A half-open range of packet bytes, counted from the start of the packet as the program
/// received it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

/// The packet bytes a program may access.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub enum AccessSet {
    /// Only bytes in these disjoint, sorted ranges.
    Ranges(Vec<ByteRange>),
    /// Offsets that cannot be bounded (or relative to a moved packet start).
    Unbounded,
}

impl Default for AccessSet {
    fn default() -> Self {
        AccessSet::Ranges(Vec::new())
    }
}

impl AccessSet {
    /// No byte.
    pub fn is_empty(&self) -> bool {
        matches!(self, AccessSet::Ranges(r) if r.is_empty())
    }

    /// Whether byte `b` may be accessed.
    pub fn contains(&self, b: u32) -> bool {
        match self {
            AccessSet::Unbounded => true,
            AccessSet::Ranges(r) => r.iter().any(|x| x.start <= b && b < x.end),
        }
    }

    /// Whether any byte of `[start, end)` may be accessed.
    pub fn intersects(&self, start: u32, end: u32) -> bool {
        match self {
            AccessSet::Unbounded => start < end,
            AccessSet::Ranges(r) => r.iter().any(|x| x.start < end && start < x.end),
        }
    }

    /// Adds `[start, end)` (clamped to the largest packet; negative or huge means unbounded).
    pub fn add(&mut self, start: i64, end: i64) {
        if start < 0 || end > platform::MAX_PACKET_LEN as i64 + 8 {
            *self = AccessSet::Unbounded;
            return;
        }
        if end <= start {
            return;
        }
        if let AccessSet::Ranges(r) = self {
            r.push(ByteRange {
                start: start as u32,
                end: end as u32,
            });
            r.sort();
            let mut merged: Vec<ByteRange> = Vec::with_capacity(r.len());
            for x in r.drain(..) {
                match merged.last_mut() {
                    Some(m) if x.start <= m.end => m.end = m.end.max(x.end),
                    _ => merged.push(x),
                }
            }
            *r = merged;
        }
    }

    /// Makes the set unbounded.
    pub fn set_unbounded(&mut self) {
        *self = AccessSet::Unbounded;
    }
}

/// Why a program is rejected.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, thiserror::Error)]
pub enum RejectReason {
    /// Not a valid instruction (or a malformed program).
    #[error("invalid instruction: {detail}")]
    Invalid {
        /// What is wrong.
        detail: String,
    },
    /// A feature the platforms do not provide.
    #[error("unsupported: {detail}")]
    Unsupported {
        /// What is unsupported.
        detail: String,
    },
    /// A register read before any write.
    #[error("r{reg} is read before it is written (uninitialised register)")]
    UninitRegister {
        /// Register.
        reg: u8,
    },
    /// Stack bytes read before any write.
    #[error(
        "stack bytes [fp{off}, fp{end}) are read before they are written (uninitialised stack)"
    )]
    UninitStack {
        /// First byte (negative offset from the frame pointer).
        off: i64,
        /// One past the last byte.
        end: i64,
    },
    /// A memory access outside its object.
    #[error(
        "{region} access to bytes [{lo}, {hi}) is out of bounds (allowed: [0, {limit})){hint}"
    )]
    OutOfBounds {
        /// Region kind: packet, stack, map value, ctx.
        region: String,
        /// Lowest byte offset the access may touch.
        lo: i64,
        /// One past the highest byte it may touch.
        hi: i64,
        /// The bound that was proven (packet: checked length; map value: value size).
        limit: i64,
        /// Advice.
        hint: String,
    },
    /// A context field accessed with the wrong size or at a modified pointer.
    #[error("invalid context access: {detail}")]
    BadCtxAccess {
        /// What is wrong.
        detail: String,
    },
    /// Dereference of a map lookup result before checking it against NULL.
    #[error("r{reg} may be NULL (map lookup result not checked against 0 before use)")]
    NullDeref {
        /// Register.
        reg: u8,
    },
    /// Dereference of something that is not a readable pointer.
    #[error("r{reg} ({what}) cannot be dereferenced")]
    BadDeref {
        /// Register.
        reg: u8,
        /// What it holds.
        what: String,
    },
    /// A helper argument of the wrong type.
    #[error("helper {helper} argument {arg} (r{arg}): expected {expected:?}, got {got}")]
    HelperArg {
        /// Helper name.
        helper: String,
        /// Argument number (1-based, equal to the register).
        arg: u8,
        /// Expected type.
        expected: ArgType,
        /// What was passed.
        got: String,
    },
    /// Call of a helper the platform does not provide.
    #[error("unknown helper {id} for this ABI")]
    UnknownHelper {
        /// Helper number.
        id: i32,
    },
    /// A loop that is not proven to terminate.
    #[error("loop at instruction {head} is not proven to terminate (unbounded loop; {iterations} iterations explored)")]
    UnboundedLoop {
        /// Loop head.
        head: usize,
        /// Iterations explored.
        iterations: u32,
    },
    /// The analysis budget ran out.
    #[error("program too complex: more than {budget} instruction visits")]
    TooComplex {
        /// Budget.
        budget: usize,
    },
    /// An instruction no path reaches.
    #[error("unreachable instruction")]
    Unreachable,
    /// Execution can run past the end of a function.
    #[error(
        "execution falls through the end of the function (last instruction is not exit or goto)"
    )]
    FallThrough,
    /// A jump or call outside the function or the program.
    #[error("jump to {target} is outside the function")]
    JumpOutOfRange {
        /// Target instruction.
        target: i64,
    },
    /// A write through a pointer to read-only memory.
    #[error("write to read-only {what}")]
    ReadOnlyWrite {
        /// What was written.
        what: String,
    },
    /// Pointer arithmetic that could produce an unsafe pointer.
    #[error("unsafe pointer arithmetic: {detail}")]
    PointerArithmetic {
        /// What is wrong.
        detail: String,
    },
    /// A pointer value escaping into memory, the return value or a 32-bit copy.
    #[error("pointer leak: {detail}")]
    PointerLeak {
        /// How it leaks.
        detail: String,
    },
    /// A comparison of a pointer with a scalar (other than a NULL check) or an unrelated pointer.
    #[error("pointer comparison prohibited: {detail}")]
    PointerComparison {
        /// What was compared.
        detail: String,
    },
    /// Use of a packet pointer after a helper that may move the packet.
    #[error("r{reg} is a packet pointer invalidated by a packet-resizing helper; reload it from the context")]
    StalePointer {
        /// Register.
        reg: u8,
    },
    /// A register holding a pointer on one path and something else on another.
    #[error("r{reg} holds a pointer on one path and a different type on another")]
    MixedTypes {
        /// Register.
        reg: u8,
    },
    /// bpf-to-bpf call chain too deep or recursive.
    #[error("bpf-to-bpf call: {detail}")]
    Call {
        /// What is wrong.
        detail: String,
    },
}

/// The analysis verdict.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub enum Verdict {
    /// Safe on every input.
    Accept,
    /// Possibly unsafe; the first problem found.
    Reject {
        /// Instruction index.
        insn: usize,
        /// Why.
        reason: RejectReason,
    },
}

impl Verdict {
    /// Whether the program was accepted.
    pub fn is_accept(&self) -> bool {
        matches!(self, Verdict::Accept)
    }
}

/// A load or store of a context field, for the loader's rewriting.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub struct CtxAccess {
    /// Instruction index.
    pub insn: usize,
    /// Offset in `struct xdp_md`.
    pub offset: i16,
    /// Access size in bytes.
    pub size: u8,
    /// A store rather than a load.
    pub is_store: bool,
}

/// A helper the program calls.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, PartialOrd, Ord)]
pub struct HelperUse {
    /// Helper number.
    pub id: i32,
    /// Helper name.
    pub name: String,
}

/// Everything the analysis found.
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    /// Accept or reject.
    pub verdict: Verdict,
    /// Packet bytes the program may read (including through helpers). `Unbounded` when
    /// rejected.
    pub packet_reads: AccessSet,
    /// Packet bytes the program may write. `Unbounded` when rejected.
    pub packet_writes: AccessSet,
    /// May call `xdp_adjust_head`/`xdp_adjust_tail`.
    pub may_resize: bool,
    /// Writes maps (helpers or stores through map value pointers), reads time or random
    /// numbers: results may differ for identical packets.
    pub stateful: bool,
    /// Helpers called, sorted by number.
    pub helpers_used: Vec<HelperUse>,
    /// Indices of maps referenced, sorted.
    pub maps_used: Vec<usize>,
    /// Every context access (sorted by instruction; each instruction once).
    pub ctx_accesses: Vec<CtxAccess>,
    /// Register values before each instruction, joined over all calling contexts (`None`:
    /// not reached by the analysis).
    pub states: Vec<Option<[Value; 11]>>,
    /// Possible return values of the program (`None` if it never returns).
    pub return_value: Option<domain::Scalar>,
    /// Instruction visits the fixpoint made.
    pub visits: usize,
}

impl Analysis {
    /// Whether the program reads context fields other than the packet pointers
    /// (`ingress_ifindex`, `rx_queue_index`, `egress_ifindex`): its result may then depend on
    /// the port and queue as well as on the packet.
    pub fn reads_metadata(&self) -> bool {
        self.ctx_accesses
            .iter()
            .any(|c| !c.is_store && c.offset >= 12)
    }

    /// The verdict as a `Result`.
    pub fn result(&self) -> Result<(), (usize, &RejectReason)> {
        match &self.verdict {
            Verdict::Accept => Ok(()),
            Verdict::Reject { insn, reason } => Err((*insn, reason)),
        }
    }
}

/// Analyses `prog` on `platform`: proves it safe or finds the first problem, and computes
/// what it reads and writes.
pub fn analyze(prog: &Program, platform: &Platform) -> Analysis {
    fixpoint::run(prog, platform, &fixpoint::Limits::default())
}

/// Like [`analyze`] with explicit limits.
pub fn analyze_with_limits(
    prog: &Program,
    platform: &Platform,
    limits: &fixpoint::Limits,
) -> Analysis {
    fixpoint::run(prog, platform, limits)
}
