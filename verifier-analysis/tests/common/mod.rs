//! A reference eBPF interpreter for the soundness tests: every memory access is checked
//! against the region it falls in (packet, stacks, context, map values), reads of
//! uninitialised registers and stack bytes are faults, and helpers behave as the platform
//! describes. It never trusts the analysis: any fault in a program the analysis accepted
//! is a soundness bug.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use verifier_analysis::insn::{decode_all, AluOp, AtomicOp, Insn, Instr, JmpOp, Operand};
use verifier_analysis::platform::{Abi, MapDescr};

/// Address of the first packet byte.
pub const PKT: u64 = 0x1000_0000;
/// Base of frame 0's stack (frame i at `STACK + i * STACK_STRIDE`).
pub const STACK: u64 = 0x2000_0000;
const STACK_STRIDE: u64 = 0x1_0000;
/// Address of `struct xdp_md`.
pub const CTX: u64 = 0x3000_0000;
/// Base of map 0's value (map m at `MAPV + m * 0x1_0000`).
pub const MAPV: u64 = 0x4000_0000;
/// Map handles loaded by `ld_imm64`.
pub const MAPH: u64 = 0x5000_0000;

/// Why execution stopped abnormally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Access outside every region (or writing a read-only one).
    Memory {
        pc: usize,
        addr: u64,
        size: u64,
        write: bool,
    },
    /// A read of a register never written.
    UninitReg { pc: usize, reg: u8 },
    /// A read of stack bytes never written.
    UninitStack { pc: usize, addr: u64 },
    /// More steps than the budget.
    Steps,
    /// A helper the interpreter does not know, or a bad helper argument.
    Helper { pc: usize, id: i32 },
    /// Malformed control flow.
    Control { pc: usize },
}

struct Frame {
    stack: Vec<u8>,
    init: Vec<bool>,
    saved: [u64; 4],
    saved_init: [bool; 4],
    ret: usize,
}

/// The interpreter's machine.
pub struct Machine<'a> {
    instrs: Vec<Instr>,
    abi: Abi,
    maps: &'a [MapDescr],
    /// Packet bytes (mutated by the program).
    pub pkt: Vec<u8>,
    /// Map values, one per map.
    pub values: Vec<Vec<u8>>,
    regs: [u64; 11],
    init: [bool; 11],
    frames: Vec<Frame>,
    clock: u64,
    rng: u64,
    /// Steps allowed.
    pub budget: usize,
}

fn u(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..v.len()].copy_from_slice(v);
    u64::from_le_bytes(b)
}

impl<'a> Machine<'a> {
    /// A machine ready to run `insns` on `pkt`.
    pub fn new(insns: &[Insn], abi: Abi, maps: &'a [MapDescr], pkt: Vec<u8>, seed: u64) -> Self {
        let values = maps
            .iter()
            .enumerate()
            .map(|(i, m)| {
                (0..m.value_size)
                    .map(|j| (j as u8).wrapping_mul(7).wrapping_add(i as u8))
                    .collect()
            })
            .collect();
        Machine {
            instrs: decode_all(insns),
            abi,
            maps,
            pkt,
            values,
            regs: [0; 11],
            init: [false; 11],
            frames: Vec::new(),
            clock: 1_000_000,
            rng: seed | 1,
            budget: 2_000_000,
        }
    }

    fn stack_base(i: usize) -> u64 {
        STACK + i as u64 * STACK_STRIDE
    }

    fn push_frame(&mut self, ret: usize) {
        let i = self.frames.len();
        let mut saved = [0; 4];
        let mut saved_init = [false; 4];
        saved.copy_from_slice(&self.regs[6..10]);
        saved_init.copy_from_slice(&self.init[6..10]);
        self.frames.push(Frame {
            stack: vec![0; 512],
            init: vec![false; 512],
            saved,
            saved_init,
            ret,
        });
        self.regs[10] = Self::stack_base(i) + 512;
        self.init[10] = true;
        for r in 6..10 {
            self.init[r] = false;
        }
    }

    fn ctx_bytes(&self) -> [u8; 24] {
        let mut c = [0u8; 24];
        let end = PKT + self.pkt.len() as u64;
        c[0..4].copy_from_slice(&(PKT as u32).to_le_bytes());
        c[4..8].copy_from_slice(&(end as u32).to_le_bytes());
        c[8..12].copy_from_slice(&(PKT as u32).to_le_bytes());
        c[12..16].copy_from_slice(&3u32.to_le_bytes());
        c[16..20].copy_from_slice(&1u32.to_le_bytes());
        c
    }

    fn mem(&mut self, pc: usize, addr: u64, size: u64, write: Option<u64>) -> Result<u64, Fault> {
        let fault = Fault::Memory {
            pc,
            addr,
            size,
            write: write.is_some(),
        };
        let in_range = |base: u64, len: u64| {
            addr >= base
                && addr
                    .checked_add(size)
                    .map(|e| e <= base + len)
                    .unwrap_or(false)
        };
        if in_range(PKT, self.pkt.len() as u64) {
            let o = (addr - PKT) as usize;
            let s = &mut self.pkt[o..o + size as usize];
            return Ok(match write {
                Some(v) => {
                    s.copy_from_slice(&v.to_le_bytes()[..size as usize]);
                    0
                }
                None => u(s),
            });
        }
        for i in 0..self.frames.len() {
            let base = Self::stack_base(i);
            if in_range(base, 512) {
                let o = (addr - base) as usize;
                let f = &mut self.frames[i];
                return Ok(match write {
                    Some(v) => {
                        f.stack[o..o + size as usize]
                            .copy_from_slice(&v.to_le_bytes()[..size as usize]);
                        f.init[o..o + size as usize]
                            .iter_mut()
                            .for_each(|b| *b = true);
                        0
                    }
                    None => {
                        if !f.init[o..o + size as usize].iter().all(|b| *b) {
                            return Err(Fault::UninitStack { pc, addr });
                        }
                        u(&f.stack[o..o + size as usize])
                    }
                });
            }
        }
        if in_range(CTX, 24) {
            if write.is_some() {
                return Err(fault);
            }
            let o = (addr - CTX) as usize;
            return Ok(u(&self.ctx_bytes()[o..o + size as usize]));
        }
        for m in 0..self.values.len() {
            let base = MAPV + m as u64 * 0x1_0000;
            if in_range(base, self.values[m].len() as u64) {
                let o = (addr - base) as usize;
                let s = &mut self.values[m][o..o + size as usize];
                return Ok(match write {
                    Some(v) => {
                        if self.maps[m].read_only {
                            return Err(fault);
                        }
                        s.copy_from_slice(&v.to_le_bytes()[..size as usize]);
                        0
                    }
                    None => u(s),
                });
            }
        }
        Err(fault)
    }

    fn read_bytes(&mut self, pc: usize, addr: u64, len: u64) -> Result<Vec<u8>, Fault> {
        (0..len)
            .map(|i| self.mem(pc, addr + i, 1, None).map(|b| b as u8))
            .collect()
    }

    fn reg(&self, pc: usize, r: u8) -> Result<u64, Fault> {
        if !self.init[r as usize] {
            return Err(Fault::UninitReg { pc, reg: r });
        }
        Ok(self.regs[r as usize])
    }

    fn set(&mut self, r: u8, v: u64) {
        self.regs[r as usize] = v;
        self.init[r as usize] = true;
    }

    fn next_rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn map_of(&self, pc: usize, id: i32, h: u64) -> Result<usize, Fault> {
        let m = h.wrapping_sub(MAPH) as usize;
        if m < self.maps.len() {
            Ok(m)
        } else {
            Err(Fault::Helper { pc, id })
        }
    }

    fn lookup(&mut self, pc: usize, id: i32) -> Result<u64, Fault> {
        let m = self.map_of(pc, id, self.reg(pc, 1)?)?;
        let key = self.read_bytes(pc, self.reg(pc, 2)?, self.maps[m].key_size as u64)?;
        // Deterministic in the key: present when the key's bytes sum to an even number.
        let sum: u32 = key.iter().map(|&b| b as u32).sum();
        Ok(if sum.is_multiple_of(2) {
            MAPV + m as u64 * 0x1_0000
        } else {
            0
        })
    }

    fn helper(&mut self, pc: usize, id: i32) -> Result<u64, Fault> {
        let ubpf = self.abi == Abi::Ubpf;
        Ok(match (ubpf, id) {
            (_, 1) => self.lookup(pc, id)?,
            (false, 2) | (true, 2) => {
                let m = self.map_of(pc, id, self.reg(pc, 1)?)?;
                self.read_bytes(pc, self.reg(pc, 2)?, self.maps[m].key_size as u64)?;
                self.read_bytes(pc, self.reg(pc, 3)?, self.maps[m].value_size as u64)?;
                if !ubpf {
                    self.reg(pc, 4)?;
                }
                0
            }
            (_, 3) => {
                let m = self.map_of(pc, id, self.reg(pc, 1)?)?;
                self.read_bytes(pc, self.reg(pc, 2)?, self.maps[m].key_size as u64)?;
                0
            }
            (true, 4) => {
                let m = self.map_of(pc, id, self.reg(pc, 1)?)?;
                self.read_bytes(pc, self.reg(pc, 2)?, self.maps[m].value_size as u64)?;
                0
            }
            (_, 5) => {
                self.clock += 1234;
                self.clock
            }
            (false, 6) | (true, 6) => {
                let len = self.reg(pc, 2)?;
                let b = self.read_bytes(pc, self.reg(pc, 1)?, len)?;
                if ubpf {
                    b.iter()
                        .fold(2166136261u32, |h, &x| (h ^ x as u32).wrapping_mul(16777619))
                        as u64
                } else {
                    0
                }
            }
            (true, 7) => {
                self.reg(pc, 1)?;
                0
            }
            (false, 7) => self.next_rand() & 0xffff_ffff,
            (false, 10) | (false, 11) => {
                self.reg(pc, 1)?;
                let off = self.reg(pc, 2)?;
                let from = self.reg(pc, 3)?;
                let to = self.reg(pc, 4)?;
                self.reg(pc, 5)?;
                if off
                    .checked_add(2)
                    .map(|e| e <= self.pkt.len() as u64)
                    .unwrap_or(false)
                {
                    let o = off as usize;
                    let old = u16::from_be_bytes([self.pkt[o], self.pkt[o + 1]]);
                    let new = old.wrapping_add((from ^ to) as u16);
                    self.pkt[o..o + 2].copy_from_slice(&new.to_be_bytes());
                    0
                } else {
                    (-14i64) as u64
                }
            }
            (false, 23) => {
                self.reg(pc, 1)?;
                self.reg(pc, 2)?;
                4
            }
            (false, 28) => {
                let (a, al, b, bl) = (
                    self.reg(pc, 1)?,
                    self.reg(pc, 2)?,
                    self.reg(pc, 3)?,
                    self.reg(pc, 4)?,
                );
                let seed = self.reg(pc, 5)?;
                let x = if al > 0 {
                    self.read_bytes(pc, a, al)?
                } else {
                    vec![]
                };
                let y = if bl > 0 {
                    self.read_bytes(pc, b, bl)?
                } else {
                    vec![]
                };
                x.iter()
                    .chain(&y)
                    .fold(seed, |s, &v| s.wrapping_add(v as u64))
            }
            (false, 44) | (false, 65) => {
                self.reg(pc, 1)?;
                self.reg(pc, 2)?;
                (-22i64) as u64
            }
            _ => return Err(Fault::Helper { pc, id }),
        })
    }

    /// Runs the program; returns r0.
    pub fn run(&mut self) -> Result<u64, Fault> {
        self.push_frame(0);
        match self.abi {
            Abi::Xdp => self.set(1, CTX),
            Abi::Ubpf => {
                self.set(1, PKT);
                self.set(2, self.pkt.len() as u64);
            }
        }
        let mut pc = 0usize;
        let mut steps = 0usize;
        loop {
            steps += 1;
            if steps > self.budget {
                return Err(Fault::Steps);
            }
            let Some(&ins) = self.instrs.get(pc) else {
                return Err(Fault::Control { pc });
            };
            let mut next = pc + 1;
            match ins {
                Instr::Alu { is64, op, dst, src } => {
                    let s = match src {
                        Operand::Reg(r) => self.reg(pc, r)?,
                        Operand::Imm(i) => {
                            if is64 {
                                i as u64
                            } else {
                                i as u32 as u64
                            }
                        }
                    };
                    let d = if op == AluOp::Mov {
                        0
                    } else {
                        self.reg(pc, dst)?
                    };
                    let v = if is64 {
                        match op {
                            AluOp::Add => d.wrapping_add(s),
                            AluOp::Sub => d.wrapping_sub(s),
                            AluOp::Mul => d.wrapping_mul(s),
                            AluOp::Div => d.checked_div(s).unwrap_or(0),
                            AluOp::Mod => d.checked_rem(s).unwrap_or(d),
                            AluOp::Or => d | s,
                            AluOp::And => d & s,
                            AluOp::Xor => d ^ s,
                            AluOp::Lsh => d << (s & 63),
                            AluOp::Rsh => d >> (s & 63),
                            AluOp::Arsh => ((d as i64) >> (s & 63)) as u64,
                            AluOp::Neg => d.wrapping_neg(),
                            AluOp::Mov => s,
                            AluOp::End => return Err(Fault::Control { pc }),
                        }
                    } else {
                        let (d, s) = (d as u32, s as u32);
                        (match op {
                            AluOp::Add => d.wrapping_add(s),
                            AluOp::Sub => d.wrapping_sub(s),
                            AluOp::Mul => d.wrapping_mul(s),
                            AluOp::Div => d.checked_div(s).unwrap_or(0),
                            AluOp::Mod => d.checked_rem(s).unwrap_or(d),
                            AluOp::Or => d | s,
                            AluOp::And => d & s,
                            AluOp::Xor => d ^ s,
                            AluOp::Lsh => d << (s & 31),
                            AluOp::Rsh => d >> (s & 31),
                            AluOp::Arsh => ((d as i32) >> (s & 31)) as u32,
                            AluOp::Neg => d.wrapping_neg(),
                            AluOp::Mov => s,
                            AluOp::End => return Err(Fault::Control { pc }),
                        }) as u64
                    };
                    self.set(dst, v);
                }
                Instr::Endian { dst, width, to_be } => {
                    let d = self.reg(pc, dst)?;
                    let v = match (width, to_be) {
                        (16, false) => d & 0xffff,
                        (32, false) => d & 0xffff_ffff,
                        (64, false) => d,
                        (16, true) => (d as u16).swap_bytes() as u64,
                        (32, true) => (d as u32).swap_bytes() as u64,
                        _ => d.swap_bytes(),
                    };
                    self.set(dst, v);
                }
                Instr::LoadImm64 {
                    dst,
                    pseudo,
                    imm_lo,
                    imm_hi,
                } => {
                    let v = match pseudo {
                        0 => ((imm_hi as u32 as u64) << 32) | imm_lo as u32 as u64,
                        1 => MAPH + imm_lo as u32 as u64,
                        2 => MAPV + imm_lo as u32 as u64 * 0x1_0000 + imm_hi as u32 as u64,
                        _ => return Err(Fault::Control { pc }),
                    };
                    self.set(dst, v);
                    next = pc + 2;
                }
                Instr::Load {
                    size,
                    dst,
                    src,
                    off,
                } => {
                    let a = self.reg(pc, src)?.wrapping_add(off as i64 as u64);
                    let v = self.mem(pc, a, size as u64, None)?;
                    self.set(dst, v);
                }
                Instr::Store {
                    size,
                    dst,
                    off,
                    src,
                } => {
                    let a = self.reg(pc, dst)?.wrapping_add(off as i64 as u64);
                    let v = match src {
                        Operand::Reg(r) => self.reg(pc, r)?,
                        Operand::Imm(i) => i as u64,
                    };
                    self.mem(pc, a, size as u64, Some(v))?;
                }
                Instr::Atomic {
                    size,
                    dst,
                    off,
                    src,
                    op,
                } => {
                    let a = self.reg(pc, dst)?.wrapping_add(off as i64 as u64);
                    let s = self.reg(pc, src)?;
                    let old = self.mem(pc, a, size as u64, None)?;
                    let mask = if size == 8 { u64::MAX } else { 0xffff_ffff };
                    let (new, fetch) = match op {
                        AtomicOp::Add { fetch } => (old.wrapping_add(s), fetch),
                        AtomicOp::Or { fetch } => (old | s, fetch),
                        AtomicOp::And { fetch } => (old & s, fetch),
                        AtomicOp::Xor { fetch } => (old ^ s, fetch),
                        AtomicOp::Xchg => (s, true),
                        AtomicOp::Cmpxchg => {
                            let r0 = self.reg(pc, 0)?;
                            let new = if r0 & mask == old { s } else { old };
                            self.mem(pc, a, size as u64, Some(new & mask))?;
                            self.set(0, old);
                            pc = next;
                            continue;
                        }
                    };
                    self.mem(pc, a, size as u64, Some(new & mask))?;
                    if fetch {
                        self.set(src, old);
                    }
                }
                Instr::Ja { off } => next = (pc as i64 + 1 + off as i64) as usize,
                Instr::Jump {
                    is32,
                    op,
                    dst,
                    src,
                    off,
                } => {
                    let a = self.reg(pc, dst)?;
                    let b = match src {
                        Operand::Reg(r) => self.reg(pc, r)?,
                        Operand::Imm(i) => i as u64,
                    };
                    let (a, b, sa, sb) = if is32 {
                        (
                            a as u32 as u64,
                            b as u32 as u64,
                            a as i32 as i64,
                            b as i32 as i64,
                        )
                    } else {
                        (a, b, a as i64, b as i64)
                    };
                    let t = match op {
                        JmpOp::Eq => a == b,
                        JmpOp::Ne => a != b,
                        JmpOp::Gt => a > b,
                        JmpOp::Ge => a >= b,
                        JmpOp::Lt => a < b,
                        JmpOp::Le => a <= b,
                        JmpOp::Set => a & b != 0,
                        JmpOp::Sgt => sa > sb,
                        JmpOp::Sge => sa >= sb,
                        JmpOp::Slt => sa < sb,
                        JmpOp::Sle => sa <= sb,
                    };
                    if t {
                        next = (pc as i64 + 1 + off as i64) as usize;
                    }
                }
                Instr::Call { id } => {
                    let v = self.helper(pc, id)?;
                    for r in 1..6 {
                        self.init[r] = false;
                    }
                    self.set(0, v);
                }
                Instr::CallLocal { off } => {
                    if self.frames.len() >= 8 {
                        return Err(Fault::Control { pc });
                    }
                    self.push_frame(pc + 1);
                    next = (pc as i64 + 1 + off as i64) as usize;
                }
                Instr::Exit => {
                    let r0 = self.reg(pc, 0)?;
                    let f = self.frames.pop().expect("frame");
                    if self.frames.is_empty() {
                        return Ok(r0);
                    }
                    self.regs[6..10].copy_from_slice(&f.saved);
                    self.init[6..10].copy_from_slice(&f.saved_init);
                    self.regs[10] = Self::stack_base(self.frames.len() - 1) + 512;
                    for r in 1..6 {
                        self.init[r] = false;
                    }
                    next = f.ret;
                }
                _ => return Err(Fault::Control { pc }),
            }
            pc = next;
        }
    }
}
