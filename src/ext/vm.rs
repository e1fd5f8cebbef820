//! Preparing a linked program for execution and running it on the rbpf tiers.
//!
//! # From linked program to runnable image
//!
//! 1. Instructions rbpf cannot run, or that need kernel facilities, are refused with their
//!    index: legacy packet loads (`ld_abs`/`ld_ind`), atomics, cpu v4 instructions, kfunc
//!    calls, and helpers the ABI does not implement.
//! 2. Each `ld_imm64` of a map becomes the address of the live [`Map`](super::maps::Map) (a handle that map
//!    helpers check), each `ld_imm64` of a global the address inside its data-section map.
//! 3. XDP programs read `struct xdp_md` with 32-bit loads; the loader finds, by a small
//!    forward analysis, the loads whose base register holds the context and rewrites them
//!    into loads of the runtime context ([`XDP_CTX_FIELDS`]), as the kernel does after
//!    verification. A load whose base is the context on one path and not on another is
//!    refused, as the kernel refuses it.
//! 4. A prologue is prepended: for uBPF programs it turns the context into `r1 = packet`,
//!    `r2 = length`; for the interpreter's *checked* image it also hands `r10` to a private
//!    helper so that helpers can check stack pointers. Relative jumps and calls are
//!    unaffected by a prefix.
//!
//! # Memory layout of a run
//!
//! The packet buffer ([`PacketMem`]) carries the runtime context in its first
//! [`CTX_RESERVE`] bytes, then headroom, the packet and tailroom. rbpf's `mbuff` is the
//! whole buffer (so `r1` is the context), and its `mem` is the extension's map region. The
//! interpreter therefore admits exactly: the buffer, the stack and the map values (it
//! checks each access's full range against these three), and cranelift's inserted bounds
//! checks accept the same three regions; the x86_64 JIT checks nothing and so runs only
//! verified programs.
//!
//! # Tiers
//!
//! rbpf's `EbpfVmMbuff` is used for all three tiers, never `EbpfVmFixedMbuff` (whose JIT
//! prologue loads packet bytes where it means the packet pointer). rbpf 0.4.1 departs from
//! the kernel's semantics in ways a three-tier property test found; the loader works around
//! each: the JIT's `w = w` and `le16`/`le32` keep upper bits (rewritten), `mod32` by zero
//! keeps upper bits (truncated first), `neg64` panics on `i64::MIN` under overflow checks
//! (rewritten), the JIT calls helpers with a misaligned stack (helpers go through
//! realigning trampolines), and cranelift compiles 64-bit conditional jumps as 32-bit ones
//! (programs with such jumps are refused on cranelift, see [`cranelift_blocker`]). rbpf's JIT does not move
//! `r10` on bpf-to-bpf calls and its cranelift back end does not implement them, so
//! programs with bpf-to-bpf calls run on the interpreter only (which gives each frame its
//! own stack area, sized by a scan of the function's stack accesses).

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

use rbpf::EbpfVmMbuff;
use verifier_analysis::platform::{Abi, RUNTIME_CTX_PRIVATE_OFFSET, XDP_CTX_FIELDS};

use super::helpers::{self, RunGuard, RunState, CTX_RESERVE, RECORD_STACK_HELPER};
use super::insn::{encode_all, op, Insn};
use super::maps::MapSet;
use super::object::{LinkedProgram, MapRelocKind};
use super::ExtError;

/// XDP return codes.
pub mod xdp {
    pub use verifier_analysis::platform::xdp_action::*;
}

/// An execution tier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum ExecTier {
    /// rbpf's interpreter, bounds-checked: runs any program.
    Interpreter,
    /// rbpf's x86_64 JIT: no memory checks; verified programs only.
    Jit,
    /// rbpf's cranelift back end; verified programs only.
    Cranelift,
}

impl ExecTier {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            ExecTier::Interpreter => "interpreter",
            ExecTier::Jit => "jit",
            ExecTier::Cranelift => "cranelift",
        }
    }
}

/// A packet buffer a program can run on: the whole buffer with the packet's bounds in it.
/// The packet must start at least [`CTX_RESERVE`] bytes into the buffer (the runtime context
/// is written there), and room after the packet lets `bpf_xdp_adjust_tail` grow it.
pub trait PacketMem {
    /// The whole buffer and the packet's start and end offsets in it.
    fn frame(&mut self) -> (&mut [u8], usize, usize);
    /// Moves the packet's bounds (after `adjust_head`/`adjust_tail`).
    fn set_data(&mut self, start: usize, end: usize);
    /// Replaces the contents with `frame`, with the buffer's full headroom (used when the
    /// packet has less than [`CTX_RESERVE`] bytes of headroom left).
    fn reset(&mut self, frame: &[u8]);
}

impl PacketMem for crate::packet::buf::PacketBuf {
    fn frame(&mut self) -> (&mut [u8], usize, usize) {
        self.raw_parts_mut()
    }
    fn set_data(&mut self, start: usize, end: usize) {
        self.set_bounds(start, end)
            .expect("bounds inside the buffer, checked by the helpers");
    }
    fn reset(&mut self, frame: &[u8]) {
        self.load(frame);
    }
}

/// A simple packet buffer with XDP-style headroom and tailroom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl XdpBuf {
    /// Bytes before the packet (the first [`CTX_RESERVE`] hold the runtime context).
    pub const HEADROOM: usize = 256;
    /// Bytes after the packet.
    pub const TAILROOM: usize = 256;

    /// A buffer holding a copy of `packet`.
    pub fn new(packet: &[u8]) -> XdpBuf {
        let mut buf = vec![0u8; Self::HEADROOM + packet.len() + Self::TAILROOM];
        buf[Self::HEADROOM..Self::HEADROOM + packet.len()].copy_from_slice(packet);
        XdpBuf {
            buf,
            start: Self::HEADROOM,
            end: Self::HEADROOM + packet.len(),
        }
    }

    /// The packet bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The packet bytes, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }
}

impl PacketMem for XdpBuf {
    fn frame(&mut self) -> (&mut [u8], usize, usize) {
        (&mut self.buf, self.start, self.end)
    }
    fn set_data(&mut self, start: usize, end: usize) {
        self.start = start;
        self.end = end;
    }
    fn reset(&mut self, frame: &[u8]) {
        *self = XdpBuf::new(frame);
    }
}

/// What one run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// `r0` at exit (XDP action or uBPF verdict); `ABORTED` (0) when the run faulted.
    pub retcode: u64,
    /// Port chosen by `bpf_redirect`, if called.
    pub redirect: Option<u32>,
    /// Why the run was aborted (an out-of-bounds access on the interpreter, an unsafe helper
    /// argument), if it was.
    pub fault: Option<String>,
}

/// Context-pointer facts of the small forward analysis behind the context rewrite.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CtxVal {
    /// The context pointer.
    Ctx,
    /// Anything else.
    Other,
    /// The context on some paths, something else (or context arithmetic) on others.
    Mixed,
}

fn join(a: CtxVal, b: CtxVal) -> CtxVal {
    if a == b {
        a
    } else {
        CtxVal::Mixed
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
struct CtxState {
    regs: [CtxVal; 11],
    /// 8-byte stack slots by offset from r10.
    stack: BTreeMap<i16, CtxVal>,
}

impl CtxState {
    fn join(&self, o: &CtxState) -> CtxState {
        let mut regs = self.regs;
        for (r, x) in regs.iter_mut().zip(o.regs) {
            *r = join(*r, x);
        }
        let mut stack = BTreeMap::new();
        for (k, v) in &self.stack {
            let w = o.stack.get(k).copied().unwrap_or(CtxVal::Other);
            stack.insert(*k, join(*v, w));
        }
        for (k, v) in &o.stack {
            stack.entry(*k).or_insert_with(|| join(*v, CtxVal::Other));
        }
        CtxState { regs, stack }
    }
}

/// Finds the context loads of an XDP program and rewrites them to the runtime layout.
/// `functions` are the start indices of the functions in the image.
fn rewrite_ctx_accesses(
    name: &str,
    insns: &mut [Insn],
    functions: &[usize],
) -> Result<Vec<usize>, ExtError> {
    let refuse = |insn: usize, reason: String| ExtError::Load {
        program: name.to_string(),
        insn,
        reason,
    };
    let n = insns.len();
    let mut states: Vec<Option<CtxState>> = vec![None; n];
    let mut entry = CtxState {
        regs: [CtxVal::Other; 11],
        stack: BTreeMap::new(),
    };
    entry.regs[1] = CtxVal::Ctx;
    let mut work = VecDeque::new();
    let push =
        |states: &mut Vec<Option<CtxState>>, work: &mut VecDeque<usize>, at: usize, s: CtxState| {
            if at >= states.len() {
                return;
            }
            let new = match &states[at] {
                None => s,
                Some(old) => old.join(&s),
            };
            if states[at].as_ref() != Some(&new) {
                states[at] = Some(new);
                work.push_back(at);
            }
        };
    push(&mut states, &mut work, 0, entry);
    // Function entries are reached from their call sites; r1..r5 carry the arguments.
    let _ = functions;
    let mut access: BTreeMap<usize, CtxVal> = BTreeMap::new();
    let mut steps = 0usize;
    while let Some(pc) = work.pop_front() {
        steps += 1;
        if steps > 2_000_000 {
            return Err(refuse(pc, "context analysis did not converge".into()));
        }
        let mut s = states[pc].clone().expect("queued with a state");
        let ins = insns[pc];
        let class = ins.class();
        let mut next = vec![pc + 1];
        match class {
            op::LDX => {
                let base = s.regs[ins.src as usize];
                let slot = (ins.src == 10 && ins.mem_size() == 8)
                    .then(|| s.stack.get(&ins.off).copied())
                    .flatten();
                access
                    .entry(pc)
                    .and_modify(|v| *v = join(*v, base))
                    .or_insert(base);
                s.regs[ins.dst as usize] = slot.unwrap_or(CtxVal::Other);
            }
            op::ST | op::STX => {
                let base = s.regs[ins.dst as usize];
                access
                    .entry(pc)
                    .and_modify(|v| *v = join(*v, base))
                    .or_insert(base);
                if ins.dst == 10 {
                    let val = if class == op::STX && ins.mem_size() == 8 {
                        s.regs[ins.src as usize]
                    } else {
                        CtxVal::Other
                    };
                    let lo = ins.off - (ins.off.rem_euclid(8));
                    s.stack
                        .insert(lo, if ins.off % 8 == 0 { val } else { CtxVal::Other });
                }
            }
            op::ALU | op::ALU64 => {
                let d = ins.dst as usize;
                let is_mov = ins.code & 0xf0 == op::MOV;
                s.regs[d] = if is_mov && ins.code & op::X != 0 && class == op::ALU64 {
                    s.regs[ins.src as usize]
                } else if s.regs[d] == CtxVal::Ctx && !is_mov {
                    CtxVal::Mixed
                } else {
                    CtxVal::Other
                };
            }
            op::LD => {
                s.regs[ins.dst as usize] = CtxVal::Other;
                next = vec![pc + 2];
            }
            op::JMP | op::JMP32 => {
                if ins.code == op::EXIT_INSN {
                    next = vec![];
                } else if ins.is_local_call() {
                    let target = (pc as i64 + 1 + i64::from(ins.imm)) as usize;
                    let mut callee = CtxState {
                        regs: [CtxVal::Other; 11],
                        stack: BTreeMap::new(),
                    };
                    callee.regs[1..=5].copy_from_slice(&s.regs[1..=5]);
                    push(&mut states, &mut work, target, callee);
                    for r in 0..=5 {
                        s.regs[r] = CtxVal::Other;
                    }
                } else if ins.is_call() {
                    for r in 0..=5 {
                        s.regs[r] = CtxVal::Other;
                    }
                } else {
                    let target = (pc as i64 + 1 + i64::from(ins.off)) as usize;
                    if ins.code & 0xf0 == op::JA {
                        next = vec![target];
                    } else {
                        next.push(target);
                    }
                }
            }
            _ => {}
        }
        for t in next {
            push(&mut states, &mut work, t, s.clone());
        }
    }
    let mut rewritten = Vec::new();
    for (pc, base) in access {
        let ins = insns[pc];
        match base {
            CtxVal::Other => {}
            CtxVal::Mixed => {
                return Err(refuse(
                    pc,
                    format!(
                    "`{ins}`: the base register is the context on some paths but not on others, or context arithmetic"
                ),
                ))
            }
            CtxVal::Ctx => {
                if ins.class() != op::LDX {
                    return Err(refuse(pc, format!("`{ins}`: write to the read-only xdp_md context")));
                }
                let field = XDP_CTX_FIELDS
                    .iter()
                    .find(|f| f.xdp_offset == ins.off)
                    .ok_or_else(|| refuse(pc, format!("`{ins}`: no xdp_md field at offset {}", ins.off)))?;
                if ins.mem_size() != 4 {
                    return Err(refuse(
                        pc,
                        format!(
                            "`{ins}`: xdp_md.{} is read with {} bytes; its fields are 4 bytes",
                            field.name,
                            ins.mem_size()
                        ),
                    ));
                }
                let size = if field.runtime_size == 8 { op::DW } else { op::W };
                insns[pc] = Insn::new(op::LDX | op::MEM | size, ins.dst, ins.src, field.runtime_offset, 0);
                rewritten.push(pc);
            }
        }
    }
    Ok(rewritten)
}

/// Largest program: rbpf's interpreter computes jump targets in `i16` instruction indices, and
/// expansions and the prologue add a few instructions.
const MAX_INSNS: usize = 16_000;

/// Refuses instructions rbpf cannot run or that need kernel facilities.
fn check_instructions(name: &str, insns: &[Insn], abi: Abi) -> Result<(), ExtError> {
    let refuse = |insn: usize, reason: String| ExtError::Load {
        program: name.to_string(),
        insn,
        reason,
    };
    if insns.len() > MAX_INSNS {
        return Err(refuse(
            0,
            format!(
                "{} instructions; at most {MAX_INSNS} are supported",
                insns.len()
            ),
        ));
    }
    let mut i = 0;
    while i < insns.len() {
        let ins = insns[i];
        let mode = ins.code & 0xe0;
        if ins.dst > 10 || (ins.src > 10 && !ins.is_call()) {
            return Err(refuse(i, format!("`{ins}`: no such register")));
        }
        match ins.class() {
            op::LD if ins.is_ld_imm64() => {
                if i + 1 >= insns.len() {
                    return Err(refuse(i, "ld_imm64 without its second slot".into()));
                }
                if ins.src != 0 {
                    return Err(refuse(
                        i,
                        format!("`{ins}`: ld_imm64 pseudo source {} left unrelocated", ins.src),
                    ));
                }
                i += 2;
                continue;
            }
            op::LD => {
                return Err(refuse(
                    i,
                    format!("`{ins}`: legacy packet access (ld_abs/ld_ind) is not supported; use direct packet access"),
                ))
            }
            op::LDX if mode != op::MEM => {
                return Err(refuse(
                    i,
                    format!("`{ins}`: sign-extending loads (cpu v4) are not supported"),
                ))
            }
            op::ST | op::STX if mode == op::ATOMIC => {
                return Err(refuse(
                    i,
                    format!(
                    "`{ins}`: atomic operations are not supported by the rbpf tiers (use per-worker maps for counters)"
                ),
                ))
            }
            op::ST | op::STX if mode != op::MEM => return Err(refuse(i, format!("`{ins}`: unknown store mode"))),
            op::ALU64 if ins.code & 0xf0 == op::END => {
                return Err(refuse(
                    i,
                    format!("`{ins}`: unconditional byte swap (cpu v4) is not supported"),
                ))
            }
            op::ALU | op::ALU64 if ins.off != 0 => {
                return Err(refuse(
                    i,
                    format!("`{ins}`: signed division or sign-extending move (cpu v4) is not supported"),
                ))
            }
            op::JMP32 if ins.code & 0xf0 == op::JA => {
                return Err(refuse(i, format!("`{ins}`: long jump (cpu v4) is not supported")))
            }
            op::JMP if ins.is_call() => {
                if ins.src > 1 {
                    return Err(refuse(i, format!("`{ins}`: kfunc calls are not supported")));
                }
                if ins.src == 1 && ins.imm < 0 {
                    return Err(refuse(
                        i,
                        format!("`{ins}`: backward bpf-to-bpf call (rbpf's interpreter only calls forward)"),
                    ));
                }
                if ins.src == 0 {
                    if let Some(why) = helpers::refuse_reason(abi, ins.imm as u32) {
                        return Err(refuse(i, why));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Works around rbpf 0.4.1's departures from the kernel's semantics by expanding
/// instructions, fixing jump and call offsets and function starts:
/// - `w = w` (`mov32` from a register) becomes `r = r; w &= 0xffffffff`: the x86_64 JIT
///   compiles it as a 64-bit move, keeping the upper 32 bits the kernel clears (clang emits
///   `w = w` for every cast to `u32`);
/// - `w %= x` becomes `w &= 0xffffffff; w %= x`: on a modulo by zero the kernel leaves
///   `(u32)dst`, the interpreter and JIT the full 64-bit register;
/// - `r = -r` becomes `r ^= -1; r += 1`: the interpreter's negation overflows (a panic
///   with overflow checks) on `i64::MIN`.
///
/// and replaces each instruction `replace` has a sequence for (whose own jumps stay inside
/// it). Returns the new instructions and function starts.
fn expand(
    body: &[Insn],
    functions: &[usize],
    replace: &BTreeMap<usize, Vec<Insn>>,
) -> Result<(Vec<Insn>, Vec<usize>), String> {
    let mov32 = op::ALU | op::MOV | op::X;
    let n = body.len();
    let mut pos = vec![0usize; n + 1];
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        pos[i] = out.len();
        let ins = body[i];
        if ins.is_ld_imm64() && i + 1 < n {
            out.push(ins);
            pos[i + 1] = out.len();
            out.push(body[i + 1]);
            i += 2;
            continue;
        }
        if let Some(seq) = replace.get(&i) {
            out.extend_from_slice(seq);
        } else if ins.code == mov32 {
            out.push(Insn::new(
                op::ALU64 | op::MOV | op::X,
                ins.dst,
                ins.src,
                0,
                0,
            ));
            out.push(Insn::new(op::ALU | 0x50 | op::K, ins.dst, 0, 0, -1));
        } else if ins.code == op::ALU64 | 0x80 {
            // neg64 as `r ^= -1; r += 1`: rbpf's interpreter negates with an overflow check
            // and would panic on i64::MIN in builds with overflow checks.
            out.push(Insn::new(op::ALU64 | 0xa0 | op::K, ins.dst, 0, 0, -1));
            out.push(Insn::new(op::ALU64 | op::ADD | op::K, ins.dst, 0, 0, 1));
        } else if ins.code & !op::X == op::ALU | 0x90 {
            // mod32: truncate first, so that a modulo by zero leaves `(u32)dst` as the
            // kernel does (rbpf's interpreter and JIT would keep the upper bits).
            out.push(Insn::new(op::ALU | 0x50 | op::K, ins.dst, 0, 0, -1));
            out.push(ins);
        } else {
            out.push(ins);
        }
        i += 1;
    }
    pos[n] = out.len();
    if out.len() == n {
        return Ok((out, functions.to_vec()));
    }
    for (old, ins) in body.iter().enumerate() {
        if !(ins.is_jump() || ins.is_local_call()) || (old > 0 && body[old - 1].is_ld_imm64()) {
            continue;
        }
        let rel = if ins.is_jump() {
            i64::from(ins.off)
        } else {
            i64::from(ins.imm)
        };
        let target = old as i64 + 1 + rel;
        if target < 0 || target > n as i64 {
            return Err(format!(
                "insn {old}: jump target {target} outside the program"
            ));
        }
        let new_rel = pos[target as usize] as i64 - pos[old] as i64 - 1;
        let new = &mut out[pos[old]];
        if ins.is_jump() {
            new.off = i16::try_from(new_rel)
                .map_err(|_| format!("insn {old}: jump too long after expansion"))?;
        } else {
            new.imm = i32::try_from(new_rel)
                .map_err(|_| format!("insn {old}: call too long after expansion"))?;
        }
    }
    Ok((out, functions.iter().map(|&f| pos[f.min(n)]).collect()))
}

/// The lookups to inline: for each `call map_lookup_elem` whose `r1` is, on every path to
/// it, the `ld_imm64` of a plain array (`arrays`: value address, stride and entries by the
/// `ld_imm64`'s index), the instructions that compute the value's address in place of the
/// call, as the kernel's `array_map_gen_lookup` does after verification:
///
/// ```text
/// r0 = *(u32 *)(r2 + 0); if w0 >= entries goto null; r0 *= stride;
/// r1 = values ll; r0 += r1; goto out; null: r0 = 0; out:
/// ```
///
/// The helper's other effects are none (an array lookup fails only on an index out of
/// range), and `r1` is scratch after a call. `r1` is known only within the straight-line
/// run from its `ld_imm64` to the call: no jump may land between them, and nothing between
/// may write `r1` (any call does).
fn inline_array_lookups(
    body: &[Insn],
    functions: &[usize],
    arrays: &BTreeMap<usize, (u64, u32, u32)>,
    abi: Abi,
) -> BTreeMap<usize, Vec<Insn>> {
    let lookup_helper = match abi {
        Abi::Xdp => helpers::kernel::MAP_LOOKUP_ELEM,
        Abi::Ubpf => helpers::ubpf::MAP_LOOKUP,
    };
    let mut out = BTreeMap::new();
    if arrays.is_empty() {
        return out;
    }
    let n = body.len();
    let mut target = vec![false; n + 1];
    for &f in functions {
        target[f.min(n)] = true;
    }
    for (i, ins) in body.iter().enumerate() {
        let rel = if ins.is_jump() {
            i64::from(ins.off)
        } else if ins.is_local_call() {
            i64::from(ins.imm)
        } else {
            continue;
        };
        if i > 0 && body[i - 1].is_ld_imm64() {
            continue;
        }
        if let Ok(t) = usize::try_from(i as i64 + 1 + rel) {
            target[t.min(n)] = true;
        }
    }
    let mut r1 = None;
    let mut i = 0;
    while i < n {
        let ins = body[i];
        if target[i] {
            r1 = None;
        }
        if ins.is_ld_imm64() {
            r1 = if ins.dst == 1 {
                arrays.get(&i).copied()
            } else {
                r1
            };
            // The second slot is not an instruction, and never a jump target of a program
            // that loaded.
            i += 2;
            continue;
        }
        let lookup = ins.is_helper_call() && ins.imm as u32 == lookup_helper;
        match r1 {
            Some((values, stride, entries))
                if lookup && i32::try_from(entries).is_ok() && i32::try_from(stride).is_ok() =>
            {
                out.insert(i, array_lookup(values, stride, entries));
            }
            _ => {}
        }
        let writes_r1 = ins.is_call()
            || (matches!(ins.class(), op::LD | op::LDX | op::ALU | op::ALU64) && ins.dst == 1)
            || (ins.class() == op::STX && ins.code & 0xe0 == op::ATOMIC && ins.src == 1);
        if writes_r1 {
            r1 = None;
        }
        i += 1;
    }
    out
}

/// The instructions of an inlined lookup in an array (see [`inline_array_lookups`]).
fn array_lookup(values: u64, stride: u32, entries: u32) -> Vec<Insn> {
    const JGE: u8 = 0x30;
    const MUL: u8 = 0x20;
    vec![
        Insn::new(op::LDX | op::MEM | op::W, 0, 2, 0, 0),
        // A 32-bit comparison: the key is a u32 (and cranelift compiles 64-bit ones as such).
        Insn::new(op::JMP32 | JGE | op::K, 0, 0, 5, entries as i32),
        Insn::new(op::ALU64 | MUL | op::K, 0, 0, 0, stride as i32),
        Insn::new(op::LD_DW_IMM, 1, 0, 0, values as u32 as i32),
        Insn::new(0, 0, 0, 0, (values >> 32) as u32 as i32),
        Insn::new(op::ALU64 | op::ADD | op::X, 0, 1, 0, 0),
        Insn::new(op::JMP | op::JA, 0, 0, 1, 0),
        Insn::new(op::ALU64 | op::MOV | op::K, 0, 0, 0, 0),
    ]
}

/// Rewrites `le16`/`le32`/`le64` (`BPF_END | BPF_TO_LE`) into the equivalent zero-extension
/// on this little-endian host: `r &= 0xffff`, `w &= 0xffffffff`, nothing. rbpf 0.4.1's x86_64 JIT
/// compiles `le16`/`le32` as no-ops and so leaves the upper bits that the kernel (and rbpf's
/// interpreter) clear.
fn lower_to_le(body: &mut [Insn]) {
    let mut i = 0;
    while i < body.len() {
        let ins = body[i];
        if ins.is_ld_imm64() {
            i += 2;
            continue;
        }
        if ins.code == op::ALU | op::END | op::K {
            body[i] = match ins.imm {
                16 => Insn::new(op::ALU64 | 0x50 | op::K, ins.dst, 0, 0, 0xffff),
                32 => Insn::new(op::ALU | 0x50 | op::K, ins.dst, 0, 0, -1),
                _ => Insn::new(op::ALU64 | op::MOV | op::X, ins.dst, ins.dst, 0, 0),
            };
        }
        i += 1;
    }
}

/// Why rbpf 0.4.1's cranelift back end cannot run `body`, if it cannot: it decides whether a
/// conditional jump is 32-bit with `opcode & BPF_JMP32 != 0`, which is also true of the
/// 64-bit `BPF_JMP` class (0x05 & 0x06 = 0x04), so every 64-bit conditional jump is compiled
/// as a comparison of the low 32 bits. Programs with 64-bit conditional jumps (comparisons of
/// pointers or of 64-bit counters and timestamps) would take wrong branches there.
pub fn cranelift_blocker(body: &[Insn]) -> Option<String> {
    body.iter()
        .position(|i| i.class() == op::JMP && i.is_jump() && i.code & 0xf0 != op::JA)
        .map(|pc| {
            format!(
            "insn {pc} (`{}`) is a 64-bit conditional jump, which rbpf 0.4.1's cranelift back end \
             compiles as a 32-bit comparison",
            body[pc]
        )
        })
}

/// Refuses backward jumps and recursive calls: the interpreter has no instruction budget,
/// so an unverified program must be loop-free to be sure to finish (the verifier proves
/// termination of the bounded loops it accepts).
fn check_loop_free(name: &str, insns: &[Insn], functions: &[usize]) -> Result<(), ExtError> {
    let func_of = |pc: usize| functions.iter().rposition(|&s| s <= pc).unwrap_or(0);
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); functions.len()];
    for (pc, ins) in insns.iter().enumerate() {
        if ins.is_jump() && ins.off < 0 {
            return Err(ExtError::Load {
                program: name.into(),
                insn: pc,
                reason: format!("`{ins}`: backward jump (loops need the verifier's acceptance)"),
            });
        }
        if ins.is_local_call() {
            let target = (pc as i64 + 1 + i64::from(ins.imm)).max(0) as usize;
            edges[func_of(pc)].push(func_of(target));
        }
    }
    // Depth-first search for a cycle in the call graph.
    fn visit(f: usize, edges: &[Vec<usize>], state: &mut [u8]) -> bool {
        if state[f] == 1 {
            return true;
        }
        if state[f] == 2 {
            return false;
        }
        state[f] = 1;
        let cyclic = edges[f].iter().any(|&g| visit(g, edges, state));
        state[f] = 2;
        cyclic
    }
    let mut state = vec![0u8; functions.len()];
    for (f, &start) in functions.iter().enumerate() {
        if visit(f, &edges, &mut state) {
            return Err(ExtError::Load {
                program: name.into(),
                insn: start,
                reason: "recursive bpf-to-bpf calls".into(),
            });
        }
    }
    Ok(())
}

/// Stack bytes each function uses (by a scan of its `r10`-relative accesses), by image
/// index of the function's first instruction.
fn stack_usage(insns: &[Insn], functions: &[usize]) -> Vec<(usize, u16)> {
    let mut out = Vec::new();
    for (k, &start) in functions.iter().enumerate() {
        let end = functions.get(k + 1).copied().unwrap_or(insns.len());
        let mut depth: i64 = 0;
        let mut opaque = false;
        let mut fp_copies = [false; 11];
        for ins in &insns[start..end] {
            match ins.class() {
                op::LDX if ins.src == 10 => depth = depth.max(-i64::from(ins.off)),
                op::ST | op::STX if ins.dst == 10 => depth = depth.max(-i64::from(ins.off)),
                op::ALU64 if ins.code == op::ALU64 | op::MOV | op::X && ins.src == 10 => {
                    fp_copies[ins.dst as usize] = true;
                    continue;
                }
                op::ALU64
                    if ins.code == op::ALU64 | op::ADD | op::K && fp_copies[ins.dst as usize] =>
                {
                    depth = depth.max(-i64::from(ins.imm));
                }
                _ => {}
            }
            if (ins.class() == op::ALU || ins.class() == op::ALU64) && fp_copies[ins.dst as usize] {
                if ins.code != op::ALU64 | op::ADD | op::K {
                    opaque = true;
                }
                fp_copies[ins.dst as usize] = false;
            }
        }
        let depth = if opaque { 256 } else { depth.clamp(0, 512) };
        out.push((start, ((depth + 15) / 16 * 16) as u16));
    }
    out
}

fn stack_usage_calculator(_prog: &[u8], pc: usize, data: &mut dyn Any) -> u16 {
    // rbpf hands over `&mut Box<dyn Any>` coerced to `&mut dyn Any`; accept both shapes.
    let table = match data.downcast_ref::<Box<dyn Any>>() {
        Some(inner) => inner.downcast_ref::<Vec<(usize, u16)>>(),
        None => data.downcast_ref::<Vec<(usize, u16)>>(),
    }
    .expect("stack usage table");
    table
        .iter()
        .rev()
        .find(|(start, _)| *start <= pc)
        .map(|&(_, u)| u)
        .unwrap_or(256)
}

/// A program prepared for execution on the tiers it may use.
pub struct Program {
    // Field order matters: the VMs borrow the images and must drop first.
    interp: EbpfVmMbuff<'static>,
    jit: Option<EbpfVmMbuff<'static>>,
    cranelift: Option<EbpfVmMbuff<'static>>,
    _checked_image: Box<[u8]>,
    _fast_image: Box<[u8]>,
    name: String,
    abi: Abi,
    /// The body after relocation and context rewrite (without prologue).
    body: Vec<Insn>,
    has_local_calls: bool,
    /// Whether the executed image calls any helper.
    calls_helpers: bool,
    ctx_rewrites: Vec<usize>,
    map_region: Range<u64>,
}

// SAFETY: after construction a Program is only read. rbpf's VMs execute through `&self`:
// the interpreter allocates its stack per call, the JIT and cranelift code are immutable
// executable memory, and the helper tables are plain function pointers.
unsafe impl Send for Program {}
// SAFETY: as above; concurrent runs share nothing mutable inside the Program.
unsafe impl Sync for Program {}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.name)
            .field("abi", &self.abi)
            .field("insns", &self.body.len())
            .field("jit", &self.jit.is_some())
            .field("cranelift", &self.cranelift.is_some())
            .finish()
    }
}

fn vm_err(tier: &'static str) -> impl Fn(std::io::Error) -> ExtError {
    move |e| ExtError::Vm {
        tier,
        message: e.to_string(),
    }
}

fn prologue(abi: Abi, checked: bool) -> Vec<Insn> {
    let mut p = Vec::new();
    if checked {
        p.push(Insn::new(op::ALU64 | op::MOV | op::X, 6, 1, 0, 0)); // r6 = r1
        p.push(Insn::new(op::ALU64 | op::MOV | op::X, 1, 10, 0, 0)); // r1 = r10
        p.push(Insn::new(
            op::CALL_INSN,
            0,
            0,
            0,
            RECORD_STACK_HELPER as i32,
        ));
        p.push(Insn::new(op::ALU64 | op::MOV | op::X, 1, 6, 0, 0)); // r1 = r6
    }
    if abi == Abi::Ubpf {
        p.push(Insn::new(op::LDX | op::MEM | op::DW, 2, 1, 8, 0)); // r2 = ctx->data_end
        p.push(Insn::new(op::LDX | op::MEM | op::DW, 1, 1, 0, 0)); // r1 = ctx->data
        p.push(Insn::new(op::ALU64 | op::SUB | op::X, 2, 1, 0, 0)); // r2 -= r1
    }
    p
}

fn make_vm(
    image: &[u8],
    abi: Abi,
    stack: Option<Vec<(usize, u16)>>,
    tier: &'static str,
) -> Result<EbpfVmMbuff<'static>, ExtError> {
    // SAFETY: the image is a boxed slice owned by the same Program as the VM, never mutated
    // or moved, and the VM is dropped before it (field order).
    let image: &'static [u8] = unsafe { std::slice::from_raw_parts(image.as_ptr(), image.len()) };
    let mut vm = EbpfVmMbuff::new(Some(image)).map_err(vm_err(tier))?;
    if tier == "jit" {
        for (id, f) in helpers::jit_table(abi) {
            vm.register_helper(id, f).map_err(vm_err(tier))?;
        }
    } else {
        for (id, _, f) in helpers::table(abi) {
            vm.register_helper(id, f).map_err(vm_err(tier))?;
        }
    }
    if let Some(table) = stack {
        vm.set_stack_usage_calculator(stack_usage_calculator, Box::new(table))
            .map_err(vm_err(tier))?;
    }
    Ok(vm)
}

impl Program {
    /// Prepares `linked` to run with `maps` (created from `linked.maps`, in order). The JIT
    /// tiers are compiled only when `allow_jit` is set, which the caller may do only for
    /// programs the verifier accepted.
    pub fn new(
        linked: &LinkedProgram,
        maps: &MapSet,
        allow_jit: bool,
    ) -> Result<Program, ExtError> {
        let name = linked.name.clone();
        let abi = linked.abi;
        let mut body = linked.insns.clone();
        if body.is_empty() {
            return Err(ExtError::Load {
                program: name,
                insn: 0,
                reason: "empty program".into(),
            });
        }
        // Map relocation; the plain arrays' value layouts by `ld_imm64` index.
        let mut arrays = BTreeMap::new();
        for r in &linked.relocs {
            let map = maps.maps().get(r.map).ok_or_else(|| ExtError::Load {
                program: name.clone(),
                insn: r.insn,
                reason: format!("relocation names map #{} which was not created", r.map),
            })?;
            let addr = match r.kind {
                MapRelocKind::Map => {
                    if let Some(values) = map.array_values() {
                        arrays.insert(r.insn, values);
                    }
                    std::sync::Arc::as_ptr(map) as u64
                }
                MapRelocKind::Value { offset } => {
                    if map.spec().kind.per_worker() || offset >= map.spec().value_size {
                        return Err(ExtError::Load {
                            program: name.clone(),
                            insn: r.insn,
                            reason: format!(
                                "direct value access into map {} at offset {offset}",
                                map.spec().name
                            ),
                        });
                    }
                    map.value0_ptr() as u64 + u64::from(offset)
                }
            };
            body[r.insn].src = 0;
            body[r.insn].imm = addr as u32 as i32;
            body[r.insn + 1].imm = (addr >> 32) as u32 as i32;
        }
        check_instructions(&name, &body, abi)?;
        let ctx_rewrites = if abi == Abi::Xdp {
            rewrite_ctx_accesses(&name, &mut body, &linked.functions)?
        } else {
            Vec::new()
        };
        let has_local_calls = body.iter().any(|i| i.is_local_call());
        if !allow_jit {
            check_loop_free(&name, &body, &linked.functions)?;
        }
        // What the tiers execute: the body with array lookups inlined and rbpf's JIT
        // defects worked around.
        let inlined = inline_array_lookups(&body, &linked.functions, &arrays, abi);
        let (mut exec, exec_functions) =
            expand(&body, &linked.functions, &inlined).map_err(|reason| ExtError::Load {
                program: name.clone(),
                insn: 0,
                reason,
            })?;
        lower_to_le(&mut exec);
        let calls_helpers = exec.iter().any(|i| i.is_helper_call());

        let checked_pro = prologue(abi, true);
        let fast_pro = prologue(abi, false);
        let mut checked: Vec<Insn> = checked_pro.clone();
        checked.extend_from_slice(&exec);
        let mut fast: Vec<Insn> = fast_pro.clone();
        fast.extend_from_slice(&exec);
        let checked_image: Box<[u8]> = encode_all(&checked).into_boxed_slice();
        let fast_image: Box<[u8]> = encode_all(&fast).into_boxed_slice();

        let funcs = |shift: usize| -> Vec<usize> {
            let mut f: Vec<usize> = exec_functions.iter().map(|&s| s + shift).collect();
            f[0] = 0;
            f
        };
        let table = stack_usage(&checked, &funcs(checked_pro.len()));
        let interp = make_vm(&checked_image, abi, Some(table), "interpreter")?;
        let (mut jit, mut cranelift) = (None, None);
        if allow_jit && !has_local_calls {
            let mut vm = make_vm(&fast_image, abi, None, "jit")?;
            vm.jit_compile().map_err(vm_err("jit"))?;
            jit = Some(vm);
            if cranelift_blocker(&body).is_none() {
                let mut vm = make_vm(&fast_image, abi, None, "cranelift")?;
                vm.cranelift_compile().map_err(vm_err("cranelift"))?;
                cranelift = Some(vm);
            }
        }
        let _ = RUNTIME_CTX_PRIVATE_OFFSET;
        Ok(Program {
            interp,
            jit,
            cranelift,
            _checked_image: checked_image,
            _fast_image: fast_image,
            name,
            abi,
            body,
            has_local_calls,
            calls_helpers,
            ctx_rewrites,
            map_region: maps.region_range(),
        })
    }

    /// The program's ABI.
    pub fn abi(&self) -> Abi {
        self.abi
    }

    /// Instructions after relocation and context rewrite (without the loader's prologue).
    pub fn instructions(&self) -> &[Insn] {
        &self.body
    }

    /// Instructions whose context loads were rewritten to the runtime layout.
    pub fn ctx_rewrite_sites(&self) -> Vec<usize> {
        self.ctx_rewrites.clone()
    }

    /// Whether the prepared image calls helpers (an inlined array lookup is no call).
    pub fn calls_helpers(&self) -> bool {
        self.calls_helpers
    }

    /// Whether the program has bpf-to-bpf calls (interpreter only).
    pub fn has_local_calls(&self) -> bool {
        self.has_local_calls
    }

    /// Whether `tier` was prepared, or why not.
    pub fn tier_available(&self, tier: ExecTier) -> Result<(), String> {
        let ok = match tier {
            ExecTier::Interpreter => true,
            ExecTier::Jit => self.jit.is_some(),
            ExecTier::Cranelift => self.cranelift.is_some(),
        };
        if ok {
            Ok(())
        } else if self.has_local_calls {
            Err("bpf-to-bpf calls run on the interpreter only".into())
        } else if let (ExecTier::Cranelift, Some(why), true) =
            (tier, cranelift_blocker(&self.body), self.jit.is_some())
        {
            Err(why)
        } else {
            Err("the program was not verified (JIT tiers need the verifier's acceptance)".into())
        }
    }

    /// Runs the program once on `pkt` with `maps` (the set it was prepared with).
    #[inline]
    pub fn run<P: PacketMem + ?Sized>(
        &self,
        tier: ExecTier,
        maps: &MapSet,
        pkt: &mut P,
        in_port: u32,
        time_ns: Option<u64>,
    ) -> Result<RunOutcome, ExtError> {
        // The common case of an extension action, kept apart from the general path.
        if tier == ExecTier::Jit {
            if let Some(retcode) = self.run_leaf(maps, pkt, in_port) {
                return Ok(RunOutcome {
                    retcode,
                    redirect: None,
                    fault: None,
                });
            }
        }
        self.run_general(tier, maps, pkt, in_port, time_ns)
    }

    /// [`Program::run`] on the JIT for a leaf program (JIT-compiled, calling no helper),
    /// returning `r0`: nothing can move the packet's bounds, redirect it or record a fault.
    /// `None` if the program is not a leaf or the packet lacks [`CTX_RESERVE`] bytes of
    /// headroom (then [`Program::run`] handles it).
    #[inline(always)]
    pub fn run_leaf<P: PacketMem + ?Sized>(
        &self,
        maps: &MapSet,
        pkt: &mut P,
        in_port: u32,
    ) -> Option<u64> {
        assert_eq!(
            maps.region_range(),
            self.map_region,
            "run with the map set the program was prepared with"
        );
        // SAFETY: `maps` is the live map set the program was prepared with (asserted above),
        // borrowed for the call.
        unsafe { self.run_leaf_prepared(pkt, in_port) }
    }

    /// [`Program::run_leaf`] with the map set the program was prepared with, without asking
    /// for it.
    ///
    /// # Safety
    /// That map set must be alive for the call (an [`Extension`](super::Extension) owns the
    /// one its program was prepared with).
    #[inline(always)]
    pub(crate) unsafe fn run_leaf_prepared<P: PacketMem + ?Sized>(
        &self,
        pkt: &mut P,
        in_port: u32,
    ) -> Option<u64> {
        let jit = self.jit.as_ref().filter(|_| !self.calls_helpers)?;
        let (buf, start, end) = pkt.frame();
        if start < CTX_RESERVE || start > end || end > buf.len() {
            return None;
        }
        // No run state: the context's private pointer stays zero.
        let base = buf.as_mut_ptr() as u64;
        write_ctx(buf, base + start as u64, base + end as u64, in_port);
        // SAFETY: the region is the live allocation of the prepared map set (the caller's
        // contract).
        let mem = unsafe { map_memory(&self.map_region) };
        // SAFETY: the JIT tier exists only for programs the verifier accepted, whose accesses
        // stay inside the buffer, the stack and the map values; `buf` is borrowed mutably.
        // rbpf fails only when no code was compiled, and `jit` has code.
        unsafe { jit.execute_program_jit(mem, buf) }.ok()
    }

    /// [`Program::run`] on any tier, with the helpers' run state.
    #[inline(never)]
    fn run_general<P: PacketMem + ?Sized>(
        &self,
        tier: ExecTier,
        maps: &MapSet,
        pkt: &mut P,
        in_port: u32,
        time_ns: Option<u64>,
    ) -> Result<RunOutcome, ExtError> {
        let prepared = match tier {
            ExecTier::Interpreter => true,
            ExecTier::Jit => self.jit.is_some(),
            ExecTier::Cranelift => self.cranelift.is_some(),
        };
        if !prepared {
            return Err(ExtError::TierRefused {
                name: self.name.clone(),
                tier: tier.name(),
                reason: self.tier_available(tier).err().unwrap_or_default(),
            });
        }
        assert_eq!(
            maps.region_range(),
            self.map_region,
            "run with the map set the program was prepared with"
        );
        let (_, start, end) = pkt.frame();
        if start < CTX_RESERVE && end >= start {
            let (buf, start, end) = pkt.frame();
            let frame = buf[start..end.min(buf.len())].to_vec();
            pkt.reset(&frame);
        }
        let (buf, start, end) = pkt.frame();
        if start < CTX_RESERVE || end < start || end > buf.len() {
            return Err(ExtError::Vm {
                tier: tier.name(),
                message: format!(
                    "packet buffer needs {CTX_RESERVE} bytes of headroom (has {start})"
                ),
            });
        }
        let base = buf.as_mut_ptr();
        let blen = buf.len();
        let mut state = RunState {
            buf_start: base as u64,
            buf_end: base as u64 + blen as u64,
            data: base as u64 + start as u64,
            data_end: base as u64 + end as u64,
            ctx: base as u64,
            redirect: None,
            checked: tier == ExecTier::Interpreter,
            stack_top: None,
            maps: maps as *const MapSet,
            abi: self.abi,
            time_ns,
            fault: None,
        };
        write_ctx(buf, state.data, state.data_end, in_port);
        let private = RUNTIME_CTX_PRIVATE_OFFSET as usize;
        buf[private..private + 8]
            .copy_from_slice(&(&state as *const RunState as u64).to_le_bytes());

        let _guard = RunGuard::install(&mut state);
        // SAFETY: the region is the live allocation of `maps` (asserted above); rbpf uses it
        // as the bounds of admitted map-value accesses, and the slices do not outlive the run.
        let mem = unsafe { map_memory(&self.map_region) };
        // SAFETY: the whole packet buffer, borrowed mutably through `pkt` for this call.
        let mbuff: &'static mut [u8] = unsafe { std::slice::from_raw_parts_mut(base, blen) };
        let result = match tier {
            ExecTier::Interpreter => self.interp.execute_program(mem, mbuff),
            // SAFETY: the JIT tier exists only for programs the verifier accepted, whose
            // accesses stay inside the buffer, the stack and the map values.
            ExecTier::Jit => unsafe {
                self.jit
                    .as_ref()
                    .expect("checked")
                    .execute_program_jit(mem, mbuff)
            },
            ExecTier::Cranelift => self
                .cranelift
                .as_ref()
                .expect("checked")
                .execute_program_cranelift(mem, mbuff),
        };
        drop(_guard);
        let (retcode, mut fault) = match result {
            Ok(r) => (r, None),
            Err(e) => (xdp::ABORTED, Some(e.to_string())),
        };
        if state.fault.is_some() {
            fault = state.fault.take();
        }
        let retcode = if fault.is_some() {
            xdp::ABORTED
        } else {
            retcode
        };
        let new_start = (state.data - base as u64) as usize;
        let new_end = (state.data_end - base as u64) as usize;
        pkt.set_data(new_start, new_end);
        Ok(RunOutcome {
            retcode,
            redirect: state.redirect,
            fault,
        })
    }
}

/// Writes the runtime context at the start of `buf` (its first [`CTX_RESERVE`] bytes): data,
/// data_end, data_meta (= data) and the ingress port, every other field zero (see
/// `XDP_CTX_FIELDS`; the caller sets the private pointer if the run has state).
#[inline]
fn write_ctx(buf: &mut [u8], data: u64, data_end: u64, in_port: u32) {
    let ctx = &mut buf[..CTX_RESERVE];
    ctx.fill(0);
    ctx[0..8].copy_from_slice(&data.to_le_bytes());
    ctx[8..16].copy_from_slice(&data_end.to_le_bytes());
    ctx[16..24].copy_from_slice(&data.to_le_bytes());
    ctx[24..28].copy_from_slice(&in_port.to_le_bytes());
}

/// The map-value memory `region` as rbpf's `mem` argument (the bounds of admitted map-value
/// accesses).
///
/// # Safety
/// `region` must be the live allocation of a map set that outlives the returned slice, which
/// must not outlive the run it is passed to.
#[inline]
unsafe fn map_memory<'a>(region: &Range<u64>) -> &'a mut [u8] {
    // SAFETY: by the caller's contract.
    unsafe {
        std::slice::from_raw_parts_mut(
            region.start as *mut u8,
            (region.end - region.start) as usize,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctx_rewrite_follows_copies_and_spills() {
        // r2 = r1; *(u64*)(r10-8) = r1; r3 = *(u64*)(r10-8); r4 = *(u32*)(r3+4); r5 = *(u32*)(r2+0);
        // r0 = *(u32*)(r2+12); exit
        let mut p = vec![
            Insn::new(op::ALU64 | op::MOV | op::X, 2, 1, 0, 0),
            Insn::new(op::STX | op::MEM | op::DW, 10, 1, -8, 0),
            Insn::new(op::LDX | op::MEM | op::DW, 3, 10, -8, 0),
            Insn::new(op::LDX | op::MEM | op::W, 4, 3, 4, 0),
            Insn::new(op::LDX | op::MEM | op::W, 5, 2, 0, 0),
            Insn::new(op::LDX | op::MEM | op::W, 0, 2, 12, 0),
            Insn::new(op::EXIT_INSN, 0, 0, 0, 0),
        ];
        assert_eq!(rewrite_ctx_accesses("t", &mut p, &[0]).unwrap(), [3, 4, 5]);
        assert_eq!(p[3], Insn::new(op::LDX | op::MEM | op::DW, 4, 3, 8, 0));
        assert_eq!(p[4], Insn::new(op::LDX | op::MEM | op::DW, 5, 2, 0, 0));
        assert_eq!(p[5], Insn::new(op::LDX | op::MEM | op::W, 0, 2, 24, 0));
        // The stack load itself is not a context access.
        assert_eq!(p[2], Insn::new(op::LDX | op::MEM | op::DW, 3, 10, -8, 0));
    }

    #[test]
    fn ctx_rewrite_refuses_ambiguous_base_and_writes() {
        // if r2 == 0 goto +1; r1 = r10 (not ctx); r0 = *(u32*)(r1+0); exit
        let mut p = vec![
            Insn::new(op::JMP | 0x10, 2, 0, 1, 0),
            Insn::new(op::ALU64 | op::MOV | op::X, 1, 10, 0, 0),
            Insn::new(op::LDX | op::MEM | op::W, 0, 1, 0, 0),
            Insn::new(op::EXIT_INSN, 0, 0, 0, 0),
        ];
        let e = rewrite_ctx_accesses("t", &mut p, &[0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("insn 2"), "{e}");
        let mut w = vec![
            Insn::new(op::STX | op::MEM | op::W, 1, 2, 0, 0),
            Insn::new(op::EXIT_INSN, 0, 0, 0, 0),
        ];
        assert!(rewrite_ctx_accesses("t", &mut w, &[0])
            .unwrap_err()
            .to_string()
            .contains("read-only"));
        let mut bad = vec![
            Insn::new(op::LDX | op::MEM | op::W, 0, 1, 2, 0),
            Insn::new(op::EXIT_INSN, 0, 0, 0, 0),
        ];
        assert!(rewrite_ctx_accesses("t", &mut bad, &[0])
            .unwrap_err()
            .to_string()
            .contains("offset 2"));
    }
}
