//! eBPF instruction encoding: the 8-byte instruction, opcode constants and a short
//! disassembler used in error messages.

use std::fmt;

/// Size in bytes of one eBPF instruction slot.
pub const INSN_SIZE: usize = 8;

/// One eBPF instruction slot (an `ld_imm64` takes two slots).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Insn {
    /// Opcode byte: class, size/source and operation.
    pub code: u8,
    /// Destination register (0..=10).
    pub dst: u8,
    /// Source register (0..=10), or a pseudo marker for `ld_imm64` and `call`.
    pub src: u8,
    /// Signed 16-bit offset.
    pub off: i16,
    /// Signed 32-bit immediate.
    pub imm: i32,
}

/// Opcode classes and fields (the kernel's `BPF_*` names).
#[allow(
    missing_docs,
    reason = "the names are the kernel's, documented in linux/bpf_common.h"
)]
pub mod op {
    pub const LD: u8 = 0x00;
    pub const LDX: u8 = 0x01;
    pub const ST: u8 = 0x02;
    pub const STX: u8 = 0x03;
    pub const ALU: u8 = 0x04;
    pub const JMP: u8 = 0x05;
    pub const JMP32: u8 = 0x06;
    pub const ALU64: u8 = 0x07;

    pub const W: u8 = 0x00;
    pub const H: u8 = 0x08;
    pub const B: u8 = 0x10;
    pub const DW: u8 = 0x18;

    pub const IMM: u8 = 0x00;
    pub const ABS: u8 = 0x20;
    pub const IND: u8 = 0x40;
    pub const MEM: u8 = 0x60;
    pub const MEMSX: u8 = 0x80;
    pub const ATOMIC: u8 = 0xc0;

    pub const K: u8 = 0x00;
    pub const X: u8 = 0x08;

    pub const ADD: u8 = 0x00;
    pub const SUB: u8 = 0x10;
    pub const MOV: u8 = 0xb0;
    pub const END: u8 = 0xd0;

    pub const JA: u8 = 0x00;
    pub const CALL: u8 = 0x80;
    pub const EXIT: u8 = 0x90;

    /// `ld_imm64` opcode (`BPF_LD | BPF_DW | BPF_IMM`).
    pub const LD_DW_IMM: u8 = LD | DW | IMM;
    /// `call` opcode.
    pub const CALL_INSN: u8 = JMP | CALL;
    /// `exit` opcode.
    pub const EXIT_INSN: u8 = JMP | EXIT;

    /// `ld_imm64` source marker: the immediate is a map file descriptor.
    pub const PSEUDO_MAP_FD: u8 = 1;
    /// `ld_imm64` source marker: map file descriptor plus offset into its value.
    pub const PSEUDO_MAP_VALUE: u8 = 2;
    /// `call` source marker: bpf-to-bpf call, the immediate is a relative offset.
    pub const PSEUDO_CALL: u8 = 1;
}

impl Insn {
    /// Builds an instruction from its fields.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// Decodes one little-endian instruction slot.
    pub fn from_bytes(b: &[u8; INSN_SIZE]) -> Self {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encodes the instruction as a little-endian slot.
    pub fn to_bytes(self) -> [u8; INSN_SIZE] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.src << 4) | (self.dst & 0x0f),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// Instruction class (`code & 7`).
    pub const fn class(self) -> u8 {
        self.code & 0x07
    }

    /// Whether this is the first slot of an `ld_imm64`.
    pub const fn is_ld_imm64(self) -> bool {
        self.code == op::LD_DW_IMM
    }

    /// Whether this is a `call` (helper or bpf-to-bpf).
    pub const fn is_call(self) -> bool {
        self.code == op::CALL_INSN
    }

    /// Whether this is a bpf-to-bpf call.
    pub const fn is_local_call(self) -> bool {
        self.code == op::CALL_INSN && self.src == op::PSEUDO_CALL
    }

    /// Whether this is a helper call.
    pub const fn is_helper_call(self) -> bool {
        self.code == op::CALL_INSN && self.src == 0
    }

    /// Whether this is a jump with a relative target in `off` (not call or exit).
    pub const fn is_jump(self) -> bool {
        let class = self.class();
        (class == op::JMP || class == op::JMP32)
            && (self.code & 0xf0) != op::CALL
            && (self.code & 0xf0) != op::EXIT
    }

    /// Access size in bytes of a load or store (`ldx`, `st`, `stx`).
    pub const fn mem_size(self) -> usize {
        match self.code & 0x18 {
            op::W => 4,
            op::H => 2,
            op::B => 1,
            _ => 8,
        }
    }
}

/// Decodes a byte string of instruction slots; trailing bytes that do not fill a slot are
/// reported as an error by the caller (this returns `None`).
pub fn decode_all(bytes: &[u8]) -> Option<Vec<Insn>> {
    if !bytes.len().is_multiple_of(INSN_SIZE) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(INSN_SIZE)
            .map(|c| Insn::from_bytes(c.try_into().expect("chunk of INSN_SIZE")))
            .collect(),
    )
}

/// Encodes instructions into a byte string.
pub fn encode_all(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

impl fmt::Display for Insn {
    /// A compact, kernel-verifier-like rendering, for error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = match self.code & 0x18 {
            op::W => "u32",
            op::H => "u16",
            op::B => "u8",
            _ => "u64",
        };
        match self.class() {
            op::LDX if self.code & 0xe0 == op::MEM => {
                write!(
                    f,
                    "r{} = *({} *)(r{} {:+})",
                    self.dst, size, self.src, self.off
                )
            }
            op::STX if self.code & 0xe0 == op::MEM => {
                write!(
                    f,
                    "*({} *)(r{} {:+}) = r{}",
                    size, self.dst, self.off, self.src
                )
            }
            op::ST if self.code & 0xe0 == op::MEM => {
                write!(
                    f,
                    "*({} *)(r{} {:+}) = {}",
                    size, self.dst, self.off, self.imm
                )
            }
            _ if self.is_ld_imm64() => write!(
                f,
                "r{} = imm64 (src {}) {:#x}...",
                self.dst, self.src, self.imm
            ),
            _ if self.is_helper_call() => write!(f, "call helper #{}", self.imm),
            _ if self.is_local_call() => write!(f, "call pc{:+}", self.imm),
            _ if self.code == op::EXIT_INSN => write!(f, "exit"),
            _ => write!(
                f,
                "op {:#04x} dst r{} src r{} off {} imm {}",
                self.code, self.dst, self.src, self.off, self.imm
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let i = Insn::new(op::LDX | op::MEM | op::W, 2, 1, 4, -7);
        assert_eq!(Insn::from_bytes(&i.to_bytes()), i);
        assert_eq!(i.to_bytes(), [0x61, 0x12, 4, 0, 0xf9, 0xff, 0xff, 0xff]);
        assert_eq!(i.mem_size(), 4);
        assert_eq!(i.to_string(), "r2 = *(u32 *)(r1 +4)");
    }
}
