//! eBPF instructions: decoding of the 8-byte encoding (including the two-slot `ld_imm64` and
//! its pseudo map references) and a disassembler printing the syntax of `llvm-objdump -d` and
//! `bpftool prog dump xlated`.

use std::fmt;

use serde::Serialize;

/// Instruction classes (low three bits of the opcode).
pub mod class {
    /// Non-standard loads (`ld_imm64`, legacy packet loads).
    pub const LD: u8 = 0x00;
    /// Register loads from memory.
    pub const LDX: u8 = 0x01;
    /// Stores of an immediate.
    pub const ST: u8 = 0x02;
    /// Stores of a register (and atomic operations).
    pub const STX: u8 = 0x03;
    /// 32-bit arithmetic.
    pub const ALU: u8 = 0x04;
    /// 64-bit jumps, calls and exit.
    pub const JMP: u8 = 0x05;
    /// 32-bit jumps.
    pub const JMP32: u8 = 0x06;
    /// 64-bit arithmetic.
    pub const ALU64: u8 = 0x07;
}

/// Size of an instruction slot in bytes.
pub const INSN_SIZE: usize = 8;
/// `src_reg` of an `ld_imm64` whose immediate names a map (the loader's map index or fd).
pub const PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of an `ld_imm64` whose immediate names a map and whose second immediate is an
/// offset into the map's (single) value, as used for `.data`, `.rodata` and `.bss`.
pub const PSEUDO_MAP_VALUE: u8 = 2;
/// `src_reg` of a `call` that calls a bpf-to-bpf function at a relative offset.
pub const PSEUDO_CALL: u8 = 1;

/// One raw instruction slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize)]
pub struct Insn {
    /// Opcode byte.
    pub code: u8,
    /// Destination register (low nibble of byte 1).
    pub dst: u8,
    /// Source register (high nibble of byte 1).
    pub src: u8,
    /// Signed 16-bit offset.
    pub off: i16,
    /// Signed 32-bit immediate.
    pub imm: i32,
}

impl Insn {
    /// Decodes one little-endian slot.
    pub fn from_bytes(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encodes the slot back into its little-endian bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        let o = self.off.to_le_bytes();
        let i = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst & 0x0f) | (self.src << 4),
            o[0],
            o[1],
            i[0],
            i[1],
            i[2],
            i[3],
        ]
    }

    /// Builds a slot from its fields.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// The instruction class.
    pub fn class(self) -> u8 {
        self.code & 0x07
    }

    /// True for the first slot of a 16-byte `ld_imm64`.
    pub fn is_ld_imm64(self) -> bool {
        self.code == 0x18
    }
}

/// Decodes a byte string into instruction slots; trailing bytes that do not fill a slot are
/// reported as an error by returning `None`.
pub fn decode(bytes: &[u8]) -> Option<Vec<Insn>> {
    if !bytes.len().is_multiple_of(INSN_SIZE) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(INSN_SIZE)
            .map(|c| Insn::from_bytes(c.try_into().expect("chunk of 8")))
            .collect(),
    )
}

/// Arithmetic operations (high four bits of an ALU opcode).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub enum AluOp {
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// `/=` (unsigned; division by zero gives zero)
    Div,
    /// `|=`
    Or,
    /// `&=`
    And,
    /// `<<=`
    Lsh,
    /// `>>=` (logical)
    Rsh,
    /// Negation.
    Neg,
    /// `%=` (unsigned; modulo by zero leaves the destination unchanged)
    Mod,
    /// `^=`
    Xor,
    /// `=`
    Mov,
    /// `s>>=` (arithmetic)
    Arsh,
    /// Byte swap (`be16` / `le32` ...).
    End,
}

impl AluOp {
    fn from_code(code: u8) -> Option<AluOp> {
        Some(match code >> 4 {
            0x0 => AluOp::Add,
            0x1 => AluOp::Sub,
            0x2 => AluOp::Mul,
            0x3 => AluOp::Div,
            0x4 => AluOp::Or,
            0x5 => AluOp::And,
            0x6 => AluOp::Lsh,
            0x7 => AluOp::Rsh,
            0x8 => AluOp::Neg,
            0x9 => AluOp::Mod,
            0xa => AluOp::Xor,
            0xb => AluOp::Mov,
            0xc => AluOp::Arsh,
            0xd => AluOp::End,
            _ => return None,
        })
    }

    fn symbol(self) -> &'static str {
        match self {
            AluOp::Add => "+=",
            AluOp::Sub => "-=",
            AluOp::Mul => "*=",
            AluOp::Div => "/=",
            AluOp::Or => "|=",
            AluOp::And => "&=",
            AluOp::Lsh => "<<=",
            AluOp::Rsh => ">>=",
            AluOp::Neg => "= -",
            AluOp::Mod => "%=",
            AluOp::Xor => "^=",
            AluOp::Mov => "=",
            AluOp::Arsh => "s>>=",
            AluOp::End => "= bswap",
        }
    }
}

/// Conditional jump operations (high four bits of a JMP opcode).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub enum JmpOp {
    /// `==`
    Eq,
    /// `>` unsigned
    Gt,
    /// `>=` unsigned
    Ge,
    /// `&` (jump if any common bit)
    Set,
    /// `!=`
    Ne,
    /// `s>`
    Sgt,
    /// `s>=`
    Sge,
    /// `<` unsigned
    Lt,
    /// `<=` unsigned
    Le,
    /// `s<`
    Slt,
    /// `s<=`
    Sle,
}

impl JmpOp {
    fn from_code(code: u8) -> Option<JmpOp> {
        Some(match code >> 4 {
            0x1 => JmpOp::Eq,
            0x2 => JmpOp::Gt,
            0x3 => JmpOp::Ge,
            0x4 => JmpOp::Set,
            0x5 => JmpOp::Ne,
            0x6 => JmpOp::Sgt,
            0x7 => JmpOp::Sge,
            0xa => JmpOp::Lt,
            0xb => JmpOp::Le,
            0xc => JmpOp::Slt,
            0xd => JmpOp::Sle,
            _ => return None,
        })
    }

    /// The comparison that holds when this one does not.
    pub fn negate(self) -> Option<JmpOp> {
        Some(match self {
            JmpOp::Eq => JmpOp::Ne,
            JmpOp::Ne => JmpOp::Eq,
            JmpOp::Gt => JmpOp::Le,
            JmpOp::Le => JmpOp::Gt,
            JmpOp::Ge => JmpOp::Lt,
            JmpOp::Lt => JmpOp::Ge,
            JmpOp::Sgt => JmpOp::Sle,
            JmpOp::Sle => JmpOp::Sgt,
            JmpOp::Sge => JmpOp::Slt,
            JmpOp::Slt => JmpOp::Sge,
            JmpOp::Set => return None,
        })
    }

    /// The same comparison with its operands swapped (`a < b` is `b > a`).
    pub fn swap(self) -> JmpOp {
        match self {
            JmpOp::Gt => JmpOp::Lt,
            JmpOp::Lt => JmpOp::Gt,
            JmpOp::Ge => JmpOp::Le,
            JmpOp::Le => JmpOp::Ge,
            JmpOp::Sgt => JmpOp::Slt,
            JmpOp::Slt => JmpOp::Sgt,
            JmpOp::Sge => JmpOp::Sle,
            JmpOp::Sle => JmpOp::Sge,
            other => other,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            JmpOp::Eq => "==",
            JmpOp::Gt => ">",
            JmpOp::Ge => ">=",
            JmpOp::Set => "&",
            JmpOp::Ne => "!=",
            JmpOp::Sgt => "s>",
            JmpOp::Sge => "s>=",
            JmpOp::Lt => "<",
            JmpOp::Le => "<=",
            JmpOp::Slt => "s<",
            JmpOp::Sle => "s<=",
        }
    }
}

/// Second operand of an ALU, store or jump instruction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub enum Operand {
    /// A register.
    Reg(u8),
    /// A sign-extended immediate.
    Imm(i64),
}

/// Atomic read-modify-write operations (`imm` of a `BPF_ATOMIC` store).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub enum AtomicOp {
    /// `lock +=` (XADD), optionally fetching the old value into `src`.
    Add {
        /// Whether the old value is loaded into the source register.
        fetch: bool,
    },
    /// `lock |=`.
    Or {
        /// Whether the old value is loaded into the source register.
        fetch: bool,
    },
    /// `lock &=`.
    And {
        /// Whether the old value is loaded into the source register.
        fetch: bool,
    },
    /// `lock ^=`.
    Xor {
        /// Whether the old value is loaded into the source register.
        fetch: bool,
    },
    /// Exchange with `src`.
    Xchg,
    /// Compare with r0 and exchange with `src`; old value in r0.
    Cmpxchg,
}

/// A decoded instruction: what the analysis and the disassembler work on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub enum Instr {
    /// Arithmetic on `dst`. For `End`, the operand is the byte-swap width (16, 32 or 64) and
    /// `to_be` says whether it converts to big endian.
    Alu {
        /// 64-bit (`rN`) or 32-bit (`wN`, zero-extending the result).
        is64: bool,
        /// Operation.
        op: AluOp,
        /// Destination register.
        dst: u8,
        /// Second operand.
        src: Operand,
    },
    /// Byte swap of `dst` to or from big endian (or unconditional with `bswap`).
    Endian {
        /// Destination register.
        dst: u8,
        /// Width in bits (16, 32, 64).
        width: u8,
        /// True for `be`, false for `le`.
        to_be: bool,
    },
    /// 64-bit immediate load (two slots). `pseudo` is the `src_reg` of the first slot
    /// (0: plain constant; [`PSEUDO_MAP_FD`]; [`PSEUDO_MAP_VALUE`]).
    LoadImm64 {
        /// Destination register.
        dst: u8,
        /// Pseudo kind.
        pseudo: u8,
        /// Low 32 bits (first slot's imm).
        imm_lo: i32,
        /// High 32 bits (second slot's imm).
        imm_hi: i32,
    },
    /// `dst = *(size *)(src + off)`.
    Load {
        /// Access size in bytes (1, 2, 4, 8).
        size: u8,
        /// Destination register.
        dst: u8,
        /// Base register.
        src: u8,
        /// Offset added to the base.
        off: i16,
    },
    /// `*(size *)(dst + off) = src`.
    Store {
        /// Access size in bytes.
        size: u8,
        /// Base register.
        dst: u8,
        /// Offset added to the base.
        off: i16,
        /// Stored value.
        src: Operand,
    },
    /// Atomic read-modify-write at `*(size *)(dst + off)` with `src`.
    Atomic {
        /// Access size (4 or 8).
        size: u8,
        /// Base register.
        dst: u8,
        /// Offset added to the base.
        off: i16,
        /// Operand register.
        src: u8,
        /// Operation.
        op: AtomicOp,
    },
    /// Legacy socket-filter packet load (`LD_ABS`/`LD_IND`), not supported by the platforms.
    LegacyPacketLoad {
        /// Access size.
        size: u8,
    },
    /// Unconditional jump by `off` slots relative to the next instruction.
    Ja {
        /// Relative offset.
        off: i32,
    },
    /// Conditional jump.
    Jump {
        /// Compare the low 32 bits only.
        is32: bool,
        /// Comparison.
        op: JmpOp,
        /// Left operand register.
        dst: u8,
        /// Right operand.
        src: Operand,
        /// Relative offset of the target from the next instruction.
        off: i16,
    },
    /// Call of helper number `id`.
    Call {
        /// Helper number.
        id: i32,
    },
    /// bpf-to-bpf call to the function starting `off` slots after the next instruction.
    CallLocal {
        /// Relative offset of the callee.
        off: i32,
    },
    /// Return from the function (r0 is the result).
    Exit,
    /// Second slot of an `ld_imm64`; never executed.
    Imm64Tail,
    /// A slot that is not a valid instruction.
    Invalid {
        /// The offending opcode.
        code: u8,
    },
}

fn size_of(code: u8) -> u8 {
    match code & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

/// Decodes the slot at `pc`; the second slot of an `ld_imm64` decodes to
/// [`Instr::Imm64Tail`] when the caller already consumed it.
pub fn decode_at(insns: &[Insn], pc: usize) -> Instr {
    let i = insns[pc];
    let invalid = Instr::Invalid { code: i.code };
    if i.dst > 10 || i.src > 10 {
        return invalid;
    }
    match i.class() {
        class::ALU | class::ALU64 => {
            let is64 = i.class() == class::ALU64;
            let Some(op) = AluOp::from_code(i.code) else {
                return invalid;
            };
            let use_reg = i.code & 0x08 != 0;
            // A non-zero offset selects the ISA v4 signed division/modulo and sign-extending
            // moves, which the platforms do not provide.
            if i.off != 0 {
                return invalid;
            }
            if op == AluOp::End {
                let width = match i.imm {
                    16 | 32 | 64 => i.imm as u8,
                    _ => return invalid,
                };
                return Instr::Endian {
                    dst: i.dst,
                    width,
                    to_be: use_reg || is64,
                };
            }
            let src = if use_reg {
                Operand::Reg(i.src)
            } else {
                Operand::Imm(i.imm as i64)
            };
            Instr::Alu {
                is64,
                op,
                dst: i.dst,
                src,
            }
        }
        class::LD => {
            if i.is_ld_imm64() {
                match insns.get(pc + 1) {
                    Some(n) if n.code == 0 && n.dst == 0 && n.src == 0 && n.off == 0 => {
                        Instr::LoadImm64 {
                            dst: i.dst,
                            pseudo: i.src,
                            imm_lo: i.imm,
                            imm_hi: n.imm,
                        }
                    }
                    _ => invalid,
                }
            } else if matches!(i.code & 0xe0, 0x20 | 0x40) {
                Instr::LegacyPacketLoad {
                    size: size_of(i.code),
                }
            } else {
                invalid
            }
        }
        class::LDX => {
            if i.code & 0xe0 != 0x60 {
                return invalid;
            }
            Instr::Load {
                size: size_of(i.code),
                dst: i.dst,
                src: i.src,
                off: i.off,
            }
        }
        class::ST => {
            if i.code & 0xe0 != 0x60 {
                return invalid;
            }
            Instr::Store {
                size: size_of(i.code),
                dst: i.dst,
                off: i.off,
                src: Operand::Imm(i.imm as i64),
            }
        }
        class::STX => match i.code & 0xe0 {
            0x60 => Instr::Store {
                size: size_of(i.code),
                dst: i.dst,
                off: i.off,
                src: Operand::Reg(i.src),
            },
            0xc0 => {
                let size = size_of(i.code);
                if size != 4 && size != 8 {
                    return invalid;
                }
                let fetch = i.imm & 0x01 != 0;
                let op = match i.imm {
                    0x00 | 0x01 => AtomicOp::Add { fetch },
                    0x40 | 0x41 => AtomicOp::Or { fetch },
                    0x50 | 0x51 => AtomicOp::And { fetch },
                    0xa0 | 0xa1 => AtomicOp::Xor { fetch },
                    0xe1 => AtomicOp::Xchg,
                    0xf1 => AtomicOp::Cmpxchg,
                    _ => return invalid,
                };
                Instr::Atomic {
                    size,
                    dst: i.dst,
                    off: i.off,
                    src: i.src,
                    op,
                }
            }
            _ => invalid,
        },
        class::JMP | class::JMP32 => {
            let is32 = i.class() == class::JMP32;
            match i.code >> 4 {
                0x0 if !is32 => Instr::Ja { off: i.off as i32 },
                0x0 => Instr::Ja { off: i.imm },
                0x8 if !is32 => {
                    if i.src == PSEUDO_CALL {
                        Instr::CallLocal { off: i.imm }
                    } else if i.src == 0 {
                        Instr::Call { id: i.imm }
                    } else {
                        invalid
                    }
                }
                0x9 if !is32 => Instr::Exit,
                _ => {
                    let Some(op) = JmpOp::from_code(i.code) else {
                        return invalid;
                    };
                    let src = if i.code & 0x08 != 0 {
                        Operand::Reg(i.src)
                    } else {
                        Operand::Imm(i.imm as i64)
                    };
                    Instr::Jump {
                        is32,
                        op,
                        dst: i.dst,
                        src,
                        off: i.off,
                    }
                }
            }
        }
        _ => invalid,
    }
}

/// Decodes every slot, marking the second slot of each `ld_imm64` as [`Instr::Imm64Tail`].
pub fn decode_all(insns: &[Insn]) -> Vec<Instr> {
    let mut out = Vec::with_capacity(insns.len());
    let mut pc = 0;
    while pc < insns.len() {
        let d = decode_at(insns, pc);
        out.push(d);
        if matches!(d, Instr::LoadImm64 { .. }) {
            out.push(Instr::Imm64Tail);
            pc += 2;
        } else {
            pc += 1;
        }
    }
    out
}

/// Returns the slot count of an instruction (2 for `ld_imm64`, 1 otherwise).
pub fn slots(i: &Instr) -> usize {
    if matches!(i, Instr::LoadImm64 { .. }) {
        2
    } else {
        1
    }
}

fn reg(is64: bool, r: u8) -> String {
    if is64 {
        format!("r{r}")
    } else {
        format!("w{r}")
    }
}

fn mem(size: u8, base: u8, off: i16) -> String {
    let ty = match size {
        1 => "u8",
        2 => "u16",
        4 => "u32",
        _ => "u64",
    };
    if off < 0 {
        format!("*({ty} *)(r{base} - {})", -(off as i32))
    } else {
        format!("*({ty} *)(r{base} + {off})")
    }
}

fn rel(off: i64) -> String {
    if off < 0 {
        format!("-{}", -off)
    } else {
        format!("+{off}")
    }
}

/// Names used when disassembling: helper names by number and map names by index.
pub trait Names {
    /// Name of helper `id`, if known.
    fn helper_name(&self, id: i32) -> Option<String>;
    /// Name of map number `idx`, if known.
    fn map_name(&self, idx: i64) -> Option<String>;
}

/// No names: helpers print as `call N`, maps as `map[N]`.
pub struct NoNames;

impl Names for NoNames {
    fn helper_name(&self, _id: i32) -> Option<String> {
        None
    }
    fn map_name(&self, _idx: i64) -> Option<String> {
        None
    }
}

/// Disassembles one decoded instruction in `llvm-objdump` syntax (helpers and maps named as
/// `bpftool` does when `names` knows them).
pub fn disasm(i: &Instr, names: &dyn Names) -> String {
    match *i {
        Instr::Alu { is64, op, dst, src } => {
            let d = reg(is64, dst);
            let s = match src {
                Operand::Reg(r) => reg(is64, r),
                Operand::Imm(v) => format!("{v}"),
            };
            match op {
                AluOp::Neg => format!("{d} = -{d}"),
                _ => format!("{d} {} {s}", op.symbol()),
            }
        }
        Instr::Endian { dst, width, to_be } => {
            format!("r{dst} = {}{width} r{dst}", if to_be { "be" } else { "le" })
        }
        Instr::LoadImm64 {
            dst,
            pseudo,
            imm_lo,
            imm_hi,
        } => match pseudo {
            PSEUDO_MAP_FD => {
                let n = names
                    .map_name(imm_lo as i64)
                    .unwrap_or_else(|| format!("{imm_lo}"));
                format!("r{dst} = map[{n}] ll")
            }
            PSEUDO_MAP_VALUE => {
                let n = names
                    .map_name(imm_lo as i64)
                    .unwrap_or_else(|| format!("{imm_lo}"));
                format!("r{dst} = map[{n}][0]+{imm_hi} ll")
            }
            _ => {
                let v = ((imm_hi as u32 as u64) << 32) | imm_lo as u32 as u64;
                format!("r{dst} = {v:#x} ll")
            }
        },
        Instr::Load {
            size,
            dst,
            src,
            off,
        } => format!("r{dst} = {}", mem(size, src, off)),
        Instr::Store {
            size,
            dst,
            off,
            src,
        } => {
            let s = match src {
                Operand::Reg(r) => format!("r{r}"),
                Operand::Imm(v) => format!("{v}"),
            };
            format!("{} = {s}", mem(size, dst, off))
        }
        Instr::Atomic {
            size,
            dst,
            off,
            src,
            op,
        } => {
            let m = mem(size, dst, off);
            let r = reg(size == 8, src);
            let (sym, fetch) = match op {
                AtomicOp::Add { fetch } => ("+=", fetch),
                AtomicOp::Or { fetch } => ("|=", fetch),
                AtomicOp::And { fetch } => ("&=", fetch),
                AtomicOp::Xor { fetch } => ("^=", fetch),
                AtomicOp::Xchg => return format!("{r} = xchg({m}, {r})"),
                AtomicOp::Cmpxchg => {
                    return format!(
                        "{} = cmpxchg({m}, {}, {r})",
                        reg(size == 8, 0),
                        reg(size == 8, 0)
                    )
                }
            };
            if fetch {
                format!("{r} = atomic_fetch_{}({m}, {r})", &sym[..1])
            } else {
                format!("lock {m} {sym} {r}")
            }
        }
        Instr::LegacyPacketLoad { size } => format!("r0 = *(u{} *)skb[...]", size as u32 * 8),
        Instr::Ja { off } => format!("goto {}", rel(off as i64)),
        Instr::Jump {
            is32,
            op,
            dst,
            src,
            off,
        } => {
            let s = match src {
                Operand::Reg(r) => reg(!is32, r),
                Operand::Imm(v) => format!("{v}"),
            };
            format!(
                "if {} {} {s} goto {}",
                reg(!is32, dst),
                op.symbol(),
                rel(off as i64)
            )
        }
        Instr::Call { id } => match names.helper_name(id) {
            Some(n) => format!("call {n}#{id}"),
            None => format!("call {id}"),
        },
        Instr::CallLocal { off } => format!("call pc{}", rel(off as i64)),
        Instr::Exit => "exit".to_string(),
        Instr::Imm64Tail => "(ld_imm64 second slot)".to_string(),
        Instr::Invalid { code } => format!("(invalid opcode {code:#04x})"),
    }
}

impl fmt::Display for Instr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&disasm(self, &NoNames))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bytes() {
        let i = Insn::new(0x61, 2, 1, 4, 0);
        assert_eq!(Insn::from_bytes(i.to_bytes()), i);
        let j = Insn::new(0x18, 1, PSEUDO_MAP_FD, 0, 7);
        assert_eq!(Insn::from_bytes(j.to_bytes()), j);
    }

    #[test]
    fn disassembles_like_llvm_objdump() {
        let prog = [
            Insn::new(0x61, 2, 1, 4, 0),
            Insn::new(0xbf, 3, 2, 0, 0),
            Insn::new(0x07, 3, 0, 0, 14),
            Insn::new(0x2d, 3, 2, 3, 0),
            Insn::new(0x73, 1, 3, -1, 0),
            Insn::new(0x18, 1, 0, 0, 0x1234),
            Insn::new(0, 0, 0, 0, 1),
            Insn::new(0xdc, 1, 0, 0, 16),
            Insn::new(0xb4, 0, 0, 0, 2),
            Insn::new(0xdb, 10, 1, -8, 0),
            Insn::new(0x85, 0, 0, 0, 1),
            Insn::new(0x95, 0, 0, 0, 0),
        ];
        let text: Vec<String> = decode_all(&prog).iter().map(|i| i.to_string()).collect();
        assert_eq!(
            text,
            [
                "r2 = *(u32 *)(r1 + 4)",
                "r3 = r2",
                "r3 += 14",
                "if r3 > r2 goto +3",
                "*(u8 *)(r1 - 1) = r3",
                "r1 = 0x100001234 ll",
                "(ld_imm64 second slot)",
                "r1 = be16 r1",
                "w0 = 2",
                "lock *(u64 *)(r10 - 8) += r1",
                "call 1",
                "exit",
            ]
        );
    }

    #[test]
    fn isa_v4_signed_alu_forms_are_invalid() {
        // sdiv (off 1) and movsx (off 8) must not be read as div and mov.
        assert!(matches!(
            decode_at(&[Insn::new(0x3f, 1, 2, 1, 0)], 0),
            Instr::Invalid { .. }
        ));
        assert!(matches!(
            decode_at(&[Insn::new(0xbf, 1, 2, 8, 0)], 0),
            Instr::Invalid { .. }
        ));
    }

    #[test]
    fn truncated_ld_imm64_is_invalid() {
        let prog = [Insn::new(0x18, 1, 0, 0, 5)];
        assert!(matches!(decode_at(&prog, 0), Instr::Invalid { .. }));
    }
}
