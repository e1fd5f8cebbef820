//! Transfer functions: the effect of each instruction on an abstract [`State`], including
//! branch refinement (bounds learnt from comparisons against `data_end`, the uBPF length and
//! constants, NULL checks of lookup results) and the rules on pointer arithmetic.

use crate::checks::{self, describe, Access, Env, MAX_VAR_OFF};
use crate::domain::{Frame, MapSet, Pointer, Region, Scalar, Stack, State, Value};
use crate::insn::{AluOp, AtomicOp, Instr, JmpOp, Operand, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};
use crate::platform::{Abi, ArgType, RetType, MAX_CALL_FRAMES, MAX_PACKET_LEN};
use crate::{MapRef, RejectReason};

type R<T> = Result<T, RejectReason>;

/// Where control goes after an instruction.
#[derive(Debug)]
pub enum Out {
    /// To instruction `.0` in the same function.
    Next(usize, State),
    /// Into the function at `.0` (the state already has the callee's frame).
    Call(usize, State),
    /// Back to the caller, after the `call` at `.0` (the callee's frame is popped).
    Return(usize, State),
    /// The program returned.
    Exit,
}

/// The state on entry for an ABI.
pub fn entry_state(abi: Abi) -> State {
    let mut regs = [Value::Uninit; 11];
    regs[10] = Value::Ptr(Pointer::new(Region::Stack { frame: 0 }));
    match abi {
        Abi::Xdp => regs[1] = Value::Ptr(Pointer::new(Region::Ctx)),
        Abi::Ubpf => {
            regs[1] = Value::Ptr(Pointer::new(Region::Packet));
            regs[2] = Value::Scalar {
                n: Scalar::urange(0, MAX_PACKET_LEN),
                id: 0,
                len: Some(0),
            };
        }
    }
    State {
        frames: vec![Frame {
            regs,
            stack: Stack::default(),
            callsite: 0,
        }],
        min_len: 0,
        resized: false,
        next_id: 1,
    }
}

fn read(st: &State, r: u8) -> R<Value> {
    match st.top().regs[r as usize] {
        Value::Uninit => Err(RejectReason::UninitRegister { reg: r }),
        v => Ok(v),
    }
}

fn usable(v: &Value, r: u8) -> R<()> {
    match v {
        Value::Uninit => Err(RejectReason::UninitRegister { reg: r }),
        Value::Stale => Err(RejectReason::StalePointer { reg: r }),
        Value::Mixed => Err(RejectReason::MixedTypes { reg: r }),
        _ => Ok(()),
    }
}

fn set(st: &mut State, r: u8, v: Value) {
    st.top_mut().regs[r as usize] = v;
}

fn arith(msg: impl Into<String>) -> RejectReason {
    RejectReason::PointerArithmetic { detail: msg.into() }
}

/// Applies one instruction at `pc` to `st`.
pub fn step(
    env: &mut Env,
    instrs: &[Instr],
    function_of: &dyn Fn(usize) -> usize,
    pc: usize,
    mut st: State,
) -> R<Vec<Out>> {
    let next = pc + 1;
    match instrs[pc] {
        Instr::Alu { is64, op, dst, src } => {
            alu(&mut st, is64, op, dst, src)?;
            Ok(vec![Out::Next(next, st)])
        }
        Instr::Endian { dst, width, to_be } => {
            if dst == 10 {
                return Err(RejectReason::ReadOnlyWrite {
                    what: "frame pointer r10".into(),
                });
            }
            let v = read(&st, dst)?;
            usable(&v, dst)?;
            let Value::Scalar { n, .. } = v else {
                return Err(arith("byte swap of a pointer"));
            };
            let r = if to_be {
                n.bswap(width)
            } else {
                n.truncate(width / 8)
            };
            set(&mut st, dst, Value::scalar(r));
            Ok(vec![Out::Next(next, st)])
        }
        Instr::LoadImm64 {
            dst,
            pseudo,
            imm_lo,
            imm_hi,
        } => {
            if dst == 10 {
                return Err(RejectReason::ReadOnlyWrite {
                    what: "frame pointer r10".into(),
                });
            }
            let mref = match env.prog.map_refs.get(&pc) {
                Some(m) => Some(*m),
                None => match pseudo {
                    0 => None,
                    PSEUDO_MAP_FD => Some(MapRef {
                        map: imm_lo as u32 as usize,
                        value_offset: None,
                    }),
                    PSEUDO_MAP_VALUE => Some(MapRef {
                        map: imm_lo as u32 as usize,
                        value_offset: Some(imm_hi as u32),
                    }),
                    p => {
                        return Err(RejectReason::Unsupported {
                            detail: format!("ld_imm64 pseudo source {p}"),
                        })
                    }
                },
            };
            let v = match mref {
                None => Value::constant(((imm_hi as u32 as u64) << 32) | imm_lo as u32 as u64),
                Some(m) => {
                    let Some(def) = env.prog.maps.get(m.map) else {
                        return Err(RejectReason::Invalid {
                            detail: format!(
                                "ld_imm64 refers to map {} but the program has {}",
                                m.map,
                                env.prog.maps.len()
                            ),
                        });
                    };
                    if m.map >= MapSet::CAPACITY {
                        return Err(RejectReason::Unsupported {
                            detail: format!("more than {} maps", MapSet::CAPACITY),
                        });
                    }
                    env.acc.maps.insert(m.map);
                    let map = MapSet::single(m.map);
                    match m.value_offset {
                        None => Value::Ptr(Pointer::new(Region::MapPtr { map })),
                        Some(off) => {
                            if off >= def.value_size {
                                return Err(RejectReason::Invalid {
                                    detail: format!(
                                        "offset {off} is past the value of map {}",
                                        def.name
                                    ),
                                });
                            }
                            let mut p = Pointer::new(Region::MapValue { map });
                            p.off = off as i64;
                            Value::Ptr(p)
                        }
                    }
                }
            };
            set(&mut st, dst, v);
            Ok(vec![Out::Next(pc + 2, st)])
        }
        Instr::Load {
            size,
            dst,
            src,
            off,
        } => {
            if dst == 10 {
                return Err(RejectReason::ReadOnlyWrite {
                    what: "frame pointer r10".into(),
                });
            }
            let b = read(&st, src)?;
            usable(&b, src)?;
            let Value::Ptr(p) = b else {
                return Err(RejectReason::BadDeref {
                    reg: src,
                    what: describe(&b),
                });
            };
            let v = checks::access(env, &mut st, pc, src, &p, off as i64, size, Access::Read)?;
            set(&mut st, dst, v);
            Ok(vec![Out::Next(next, st)])
        }
        Instr::Store {
            size,
            dst,
            off,
            src,
        } => {
            let b = read(&st, dst)?;
            usable(&b, dst)?;
            let v = match src {
                Operand::Reg(r) => {
                    let v = read(&st, r)?;
                    let spill = matches!(
                        b,
                        Value::Ptr(Pointer {
                            region: Region::Stack { .. },
                            ..
                        })
                    ) && size == 8;
                    if !spill {
                        usable(&v, r)?;
                    }
                    v
                }
                Operand::Imm(i) => Value::constant(i as u64),
            };
            let Value::Ptr(p) = b else {
                return Err(RejectReason::BadDeref {
                    reg: dst,
                    what: describe(&b),
                });
            };
            checks::access(
                env,
                &mut st,
                pc,
                dst,
                &p,
                off as i64,
                size,
                Access::Write(v),
            )?;
            Ok(vec![Out::Next(next, st)])
        }
        Instr::Atomic {
            size,
            dst,
            off,
            src,
            op,
        } => {
            let b = read(&st, dst)?;
            usable(&b, dst)?;
            let v = read(&st, src)?;
            usable(&v, src)?;
            if v.is_pointerish() {
                return Err(RejectReason::PointerLeak {
                    detail: "atomic operation with a pointer operand".into(),
                });
            }
            if op == AtomicOp::Cmpxchg {
                let r0 = read(&st, 0)?;
                usable(&r0, 0)?;
                if r0.is_pointerish() {
                    return Err(RejectReason::PointerLeak {
                        detail: "cmpxchg with a pointer in r0".into(),
                    });
                }
            }
            let Value::Ptr(p) = b else {
                return Err(RejectReason::BadDeref {
                    reg: dst,
                    what: describe(&b),
                });
            };
            if !matches!(
                p.region,
                Region::Stack { .. } | Region::MapValue { .. } | Region::MapValueOrNull { .. }
            ) {
                return Err(RejectReason::Unsupported {
                    detail: format!("atomic operation on {}", p.region.describe()),
                });
            }
            checks::access(env, &mut st, pc, dst, &p, off as i64, size, Access::Atomic)?;
            let fetched = Value::scalar(Scalar::of_size(size));
            match op {
                AtomicOp::Cmpxchg => set(&mut st, 0, fetched),
                AtomicOp::Xchg
                | AtomicOp::Add { fetch: true }
                | AtomicOp::Or { fetch: true }
                | AtomicOp::And { fetch: true }
                | AtomicOp::Xor { fetch: true } => set(&mut st, src, fetched),
                _ => {}
            }
            Ok(vec![Out::Next(next, st)])
        }
        Instr::Ja { off } => Ok(vec![Out::Next((next as i64 + off as i64) as usize, st)]),
        Instr::Jump {
            is32,
            op,
            dst,
            src,
            off,
        } => {
            let target = (next as i64 + off as i64) as usize;
            let a = read(&st, dst)?;
            usable(&a, dst)?;
            let (b, breg) = match src {
                Operand::Reg(r) => {
                    let v = read(&st, r)?;
                    usable(&v, r)?;
                    (v, Some(r))
                }
                Operand::Imm(i) => {
                    let v = if is32 { i as u32 as u64 } else { i as u64 };
                    (Value::constant(v), None)
                }
            };
            let taken = branch(&st, Cond::Op(op), is32, dst, &a, breg, &b)?;
            let not = match op.negate() {
                Some(n) => Cond::Op(n),
                None => Cond::NotSet,
            };
            let fall = branch(&st, not, is32, dst, &a, breg, &b)?;
            let mut out = Vec::new();
            if let Some(s) = fall {
                out.push(Out::Next(next, s));
            }
            if let Some(s) = taken {
                out.push(Out::Next(target, s));
            }
            Ok(out)
        }
        Instr::Call { id } => {
            call_helper(env, &mut st, id)?;
            Ok(vec![Out::Next(next, st)])
        }
        Instr::CallLocal { off } => {
            let entry = (next as i64 + off as i64) as usize;
            if st.frames.len() >= MAX_CALL_FRAMES {
                return Err(RejectReason::Call {
                    detail: format!("call chain deeper than {MAX_CALL_FRAMES} frames"),
                });
            }
            let mut active = vec![function_of(pc)];
            for f in &st.frames[1..] {
                active.push(function_of(f.callsite));
            }
            if active.contains(&entry) {
                return Err(RejectReason::Call {
                    detail: format!("recursive call of the function at {entry}"),
                });
            }
            let depth = st.frames.len();
            let mut regs = [Value::Uninit; 11];
            regs[1..6].copy_from_slice(&st.top().regs[1..6]);
            regs[10] = Value::Ptr(Pointer::new(Region::Stack { frame: depth as u8 }));
            st.frames.push(Frame {
                regs,
                stack: Stack::default(),
                callsite: pc,
            });
            Ok(vec![Out::Call(entry, st)])
        }
        Instr::Exit => {
            let r0 = read(&st, 0)?;
            if st.frames.len() == 1 {
                match r0 {
                    Value::Scalar { n, .. } => {
                        env.acc.ret = Some(match env.acc.ret {
                            Some(r) => r.join(&n),
                            None => n,
                        });
                        Ok(vec![Out::Exit])
                    }
                    _ => Err(RejectReason::PointerLeak {
                        detail: format!("the program returns a pointer ({})", describe(&r0)),
                    }),
                }
            } else {
                let top = st.frames.len() - 1;
                if let Value::Ptr(Pointer {
                    region: Region::Stack { frame },
                    ..
                }) = r0
                {
                    if frame as usize == top {
                        return Err(RejectReason::PointerLeak {
                            detail: "returning a pointer to the callee's stack".into(),
                        });
                    }
                }
                let popped = st.frames.pop().expect("callee frame");
                st.for_each_value(|v| {
                    if let Value::Ptr(Pointer {
                        region: Region::Stack { frame },
                        ..
                    }) = v
                    {
                        if *frame as usize == top {
                            *v = Value::Mixed;
                        }
                    }
                });
                let regs = &mut st.top_mut().regs;
                regs[0] = r0;
                for r in regs[1..6].iter_mut() {
                    *r = Value::Uninit;
                }
                Ok(vec![Out::Return(popped.callsite, st)])
            }
        }
        Instr::Imm64Tail | Instr::Invalid { .. } | Instr::LegacyPacketLoad { .. } => {
            Err(RejectReason::Invalid {
                detail: "not an executable instruction".into(),
            })
        }
    }
}

fn scalar_alu(op: AluOp, is64: bool, a: &Scalar, b: &Scalar) -> Scalar {
    let (a, b) = if is64 {
        (*a, *b)
    } else {
        (a.truncate(4), b.truncate(4))
    };
    let r = match op {
        AluOp::Add => a.add(&b),
        AluOp::Sub => a.sub(&b),
        AluOp::Mul => a.mul(&b),
        AluOp::Div => a.div(&b),
        AluOp::Or => a.or(&b),
        AluOp::And => a.and(&b),
        AluOp::Lsh => {
            if is64 {
                a.lsh(&b)
            } else if b.umax < 32 {
                match b.as_const() {
                    Some(_) => a.lsh(&b),
                    None => Scalar::unknown(),
                }
            } else {
                Scalar::unknown()
            }
        }
        AluOp::Rsh => a.rsh(&b),
        AluOp::Neg => a.neg(),
        AluOp::Mod => a.rem(&b),
        AluOp::Xor => a.xor(&b),
        AluOp::Mov => b,
        AluOp::Arsh => {
            if is64 {
                a.arsh(&b)
            } else {
                let sext = if a.umax <= 0x7fff_ffff {
                    a
                } else if a.umin >= 0x8000_0000 {
                    a.or(&Scalar::constant(0xffff_ffff_0000_0000))
                } else {
                    Scalar::unknown()
                };
                if b.umax < 32 {
                    sext.arsh(&b)
                } else {
                    Scalar::unknown()
                }
            }
        }
        AluOp::End => Scalar::unknown(),
    };
    if is64 {
        r
    } else {
        r.truncate(4)
    }
}

fn alu(st: &mut State, is64: bool, op: AluOp, dst: u8, src: Operand) -> R<()> {
    if dst == 10 {
        return Err(RejectReason::ReadOnlyWrite {
            what: "frame pointer r10".into(),
        });
    }
    let width = if is64 { 64 } else { 32 };
    let s = match src {
        Operand::Reg(r) => read(st, r)?,
        Operand::Imm(i) => {
            if matches!(op, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh) && !(0..width).contains(&i) {
                return Err(RejectReason::Invalid {
                    detail: format!("shift by {i} is out of range for {width}-bit operands"),
                });
            }
            Value::constant(if is64 { i as u64 } else { i as u32 as u64 })
        }
    };
    if op == AluOp::Mov {
        if !is64 {
            usable(&s, src_reg(src))?;
            let Value::Scalar { n, .. } = s else {
                return Err(RejectReason::PointerLeak {
                    detail: "32-bit copy of a pointer".into(),
                });
            };
            set(st, dst, Value::scalar(n.truncate(4)));
            return Ok(());
        }
        let mut v = s;
        if let (Operand::Reg(r), Value::Scalar { n, id: 0, len }) = (src, s) {
            if n.as_const().is_none() {
                let id = st.fresh_id();
                v = Value::Scalar { n, id, len };
                set(st, r, v);
            }
        }
        set(st, dst, v);
        return Ok(());
    }
    let d = read(st, dst)?;
    usable(&d, dst)?;
    if op != AluOp::Neg {
        usable(&s, src_reg(src))?;
    }
    match (d, s) {
        (Value::Scalar { n: a, len: la, .. }, Value::Scalar { n: b, len: lb, .. }) => {
            let n = if op == AluOp::Neg {
                scalar_alu(op, is64, &a, &a)
            } else {
                scalar_alu(op, is64, &a, &b)
            };
            let len = match (op, la, lb, b.as_const(), a.as_const()) {
                _ if !is64 => None,
                (AluOp::Add, Some(k), None, Some(c), _) => k.checked_add(c as i64),
                (AluOp::Sub, Some(k), None, Some(c), _) => k.checked_sub(c as i64),
                (AluOp::Add, None, Some(k), _, Some(c)) => k.checked_add(c as i64),
                _ => None,
            }
            .filter(|k| k.abs() <= MAX_VAR_OFF);
            set(st, dst, Value::Scalar { n, id: 0, len });
            Ok(())
        }
        (Value::Ptr(p), _) | (_, Value::Ptr(p)) if !is64 => {
            let _ = p;
            Err(arith("32-bit arithmetic on a pointer"))
        }
        (Value::Ptr(p), Value::Scalar { n, len, .. }) if op == AluOp::Add || op == AluOp::Sub => {
            let v = ptr_add(st, &p, &n, len, op == AluOp::Sub)?;
            set(st, dst, v);
            Ok(())
        }
        (Value::Scalar { n, len, .. }, Value::Ptr(p)) if op == AluOp::Add => {
            let v = ptr_add(st, &p, &n, len, false)?;
            set(st, dst, v);
            Ok(())
        }
        (Value::Ptr(p), Value::Ptr(q)) if op == AluOp::Sub => {
            let v = ptr_diff(st, &p, &q)?;
            set(st, dst, v);
            Ok(())
        }
        (Value::Ptr(_), Value::Ptr(_)) => Err(arith(
            "arithmetic between two pointers other than subtraction",
        )),
        (Value::Scalar { .. }, Value::Ptr(_)) if op == AluOp::Sub => {
            Err(arith("subtracting a pointer from a scalar"))
        }
        (Value::Ptr(p), _) | (_, Value::Ptr(p)) => Err(arith(format!(
            "{op:?} on a pointer ({}); only adding or subtracting a scalar is allowed",
            p.region.describe()
        ))),
        _ => Err(RejectReason::Invalid {
            detail: "unexpected operand".into(),
        }),
    }
}

fn src_reg(src: Operand) -> u8 {
    match src {
        Operand::Reg(r) => r,
        Operand::Imm(_) => 0,
    }
}

fn ptr_add(st: &mut State, p: &Pointer, n: &Scalar, len: Option<i64>, neg: bool) -> R<Value> {
    let mut q = *p;
    match p.region {
        Region::MapValueOrNull { .. } => {
            return Err(arith(
                "arithmetic on a map value that may be NULL; check it against 0 first",
            ))
        }
        Region::MapPtr { .. } => return Err(arith("arithmetic on a map reference")),
        Region::PacketMeta => return Err(arith("arithmetic on data_meta")),
        _ => {}
    }
    if let (Region::Packet, Some(k), false) = (p.region, len, neg) {
        if p.fixed() {
            return Ok(Value::Ptr(Pointer {
                region: Region::PacketEnd,
                off: p.off + k,
                ..Pointer::new(Region::PacketEnd)
            }));
        }
    }
    if let Some(c) = n.as_const() {
        let c = c as i64;
        q.off = if neg {
            p.off.checked_sub(c)
        } else {
            p.off.checked_add(c)
        }
        .filter(|o| o.abs() <= MAX_VAR_OFF)
        .ok_or_else(|| {
            arith(format!(
                "constant offset {c} makes the pointer out of range"
            ))
        })?;
        return Ok(Value::Ptr(q));
    }
    match p.region {
        Region::Packet | Region::MapValue { .. } => {
            if n.smin < -MAX_VAR_OFF || n.smax > MAX_VAR_OFF {
                return Err(arith(format!(
                    "adding a scalar with unbounded range [{}, {}] to a {} pointer; bound it first (mask or compare)",
                    n.smin,
                    n.smax,
                    p.region.describe()
                )));
            }
            q.var = if neg { p.var.sub(n) } else { p.var.add(n) };
            if q.var.smin < -MAX_VAR_OFF || q.var.smax > MAX_VAR_OFF {
                return Err(arith("accumulated variable offset out of range"));
            }
            if p.region == Region::Packet {
                q.id = st.fresh_id();
                q.range = 0;
            }
            Ok(Value::Ptr(q))
        }
        _ => Err(arith(format!(
            "variable offset added to a {} pointer",
            p.region.describe()
        ))),
    }
}

fn ptr_diff(st: &State, p: &Pointer, q: &Pointer) -> R<Value> {
    let same = p.region == q.region
        && matches!(
            p.region,
            Region::Packet | Region::MapValue { .. } | Region::Stack { .. } | Region::PacketEnd
        );
    if same {
        let n = Scalar::constant((p.off - q.off) as u64).add(&p.var.sub(&q.var));
        return Ok(Value::scalar(n));
    }
    if p.region == Region::PacketEnd && q.region == Region::Packet && q.fixed() {
        let k = p.off - q.off;
        let n = Scalar::srange(st.min_len + k, MAX_PACKET_LEN as i64 + k);
        return Ok(Value::Scalar {
            n,
            id: 0,
            len: Some(k),
        });
    }
    Err(arith(format!(
        "subtracting pointers into different regions ({} - {})",
        p.region.describe(),
        q.region.describe()
    )))
}

/// A branch condition.
#[derive(Clone, Copy, Debug)]
enum Cond {
    Op(JmpOp),
    NotSet,
}

fn refine_scalars(cond: Cond, a: Scalar, b: Scalar) -> Option<(Scalar, Scalar)> {
    let mut a = a;
    let mut b = b;
    match cond {
        Cond::Op(JmpOp::Eq) => {
            let m = a.meet(&b)?;
            return Some((m, m));
        }
        Cond::Op(JmpOp::Ne) => {
            if let (Some(x), Some(y)) = (a.as_const(), b.as_const()) {
                return (x != y).then_some((a, b));
            }
            if let Some(c) = b.as_const() {
                a = exclude(a, c)?;
            }
            if let Some(c) = a.as_const() {
                b = exclude(b, c)?;
            }
        }
        Cond::Op(JmpOp::Gt) => {
            a.umin = a.umin.max(b.umin.checked_add(1)?);
            b.umax = b.umax.min(a.umax.checked_sub(1)?);
        }
        Cond::Op(JmpOp::Ge) => {
            a.umin = a.umin.max(b.umin);
            b.umax = b.umax.min(a.umax);
        }
        Cond::Op(JmpOp::Lt) => {
            let (y, x) = refine_scalars(Cond::Op(JmpOp::Gt), b, a)?;
            return Some((x, y));
        }
        Cond::Op(JmpOp::Le) => {
            let (y, x) = refine_scalars(Cond::Op(JmpOp::Ge), b, a)?;
            return Some((x, y));
        }
        Cond::Op(JmpOp::Sgt) => {
            a.smin = a.smin.max(b.smin.checked_add(1)?);
            b.smax = b.smax.min(a.smax.checked_sub(1)?);
        }
        Cond::Op(JmpOp::Sge) => {
            a.smin = a.smin.max(b.smin);
            b.smax = b.smax.min(a.smax);
        }
        Cond::Op(JmpOp::Slt) => {
            let (y, x) = refine_scalars(Cond::Op(JmpOp::Sgt), b, a)?;
            return Some((x, y));
        }
        Cond::Op(JmpOp::Sle) => {
            let (y, x) = refine_scalars(Cond::Op(JmpOp::Sge), b, a)?;
            return Some((x, y));
        }
        Cond::Op(JmpOp::Set) => {
            if let Some(c) = b.as_const() {
                if (a.tnum.value | a.tnum.mask) & c == 0 {
                    return None;
                }
                if c.count_ones() == 1 {
                    a.tnum.value |= c;
                    a.tnum.mask &= !c;
                }
            }
        }
        Cond::NotSet => {
            if let Some(c) = b.as_const() {
                if a.tnum.value & c != 0 {
                    return None;
                }
                a.tnum.mask &= !c;
            }
        }
    }
    Some((a.sync()?, b.sync()?))
}

fn exclude(a: Scalar, c: u64) -> Option<Scalar> {
    let mut a = a;
    if a.as_const() == Some(c) {
        return None;
    }
    if a.umin == c {
        a.umin += 1;
    }
    if a.umax == c {
        a.umax -= 1;
    }
    if a.smin == c as i64 {
        a.smin += 1;
    }
    if a.smax == c as i64 {
        a.smax -= 1;
    }
    a.sync()
}

/// Replaces the numeric part of `reg` and every value linked to it by id.
fn assign_scalar(st: &mut State, reg: u8, n: Scalar) {
    let Value::Scalar { id, len, .. } = st.top().regs[reg as usize] else {
        return;
    };
    st.top_mut().regs[reg as usize] = Value::Scalar { n, id, len };
    if id != 0 {
        st.for_each_value(|v| {
            if let Value::Scalar { id: j, n: m, .. } = v {
                if *j == id {
                    *m = n;
                }
            }
        });
    }
}

/// Updates the known packet length from scalars tied to it (value = length + k); `false` if
/// contradictory.
fn propagate_len(st: &mut State) -> bool {
    let mut min_len = st.min_len;
    st.for_each_value(|v| {
        if let Value::Scalar {
            n, len: Some(k), ..
        } = v
        {
            // The value is len + k as an integer (|k| and the length are small, so the
            // signed view never wraps); the unsigned view may have wrapped when k < 0.
            min_len = min_len.max(n.smin.saturating_sub(*k));
        }
    });
    st.min_len = min_len;
    min_len <= MAX_PACKET_LEN as i64
}

fn cond_name(cond: Cond) -> String {
    match cond {
        Cond::Op(op) => format!("{op:?}"),
        Cond::NotSet => "!Set".into(),
    }
}

/// The state where `a cond b` holds, `None` if it cannot.
fn branch(
    st: &State,
    cond: Cond,
    is32: bool,
    areg: u8,
    a: &Value,
    breg: Option<u8>,
    b: &Value,
) -> R<Option<State>> {
    let mut s = st.clone();
    match (a, b) {
        (Value::Scalar { n: x, .. }, Value::Scalar { n: y, .. }) => {
            let fits32 = |v: &Scalar| v.umax <= u32::MAX as u64;
            let (refined, cond) = if !is32 {
                (true, cond)
            } else if fits32(x) && fits32(y) {
                // Signed 32-bit comparisons agree with unsigned ones on non-negative values.
                let nonneg = x.umax <= i32::MAX as u64 && y.umax <= i32::MAX as u64;
                let c = match cond {
                    Cond::Op(JmpOp::Sgt)
                    | Cond::Op(JmpOp::Sge)
                    | Cond::Op(JmpOp::Slt)
                    | Cond::Op(JmpOp::Sle)
                        if !nonneg =>
                    {
                        return Ok(Some(s));
                    }
                    Cond::Op(JmpOp::Sgt) => Cond::Op(JmpOp::Gt),
                    Cond::Op(JmpOp::Sge) => Cond::Op(JmpOp::Ge),
                    Cond::Op(JmpOp::Slt) => Cond::Op(JmpOp::Lt),
                    Cond::Op(JmpOp::Sle) => Cond::Op(JmpOp::Le),
                    c => c,
                };
                (true, c)
            } else {
                (false, cond)
            };
            if !refined {
                return Ok(Some(s));
            }
            let Some((nx, ny)) = refine_scalars(cond, *x, *y) else {
                return Ok(None);
            };
            assign_scalar(&mut s, areg, nx);
            if let Some(r) = breg {
                assign_scalar(&mut s, r, ny);
            }
            if !propagate_len(&mut s) {
                return Ok(None);
            }
            Ok(Some(s))
        }
        (Value::Ptr(p), Value::Scalar { n, .. }) | (Value::Scalar { n, .. }, Value::Ptr(p)) => {
            let null_check = n.as_const() == Some(0)
                && !is32
                && matches!(cond, Cond::Op(JmpOp::Eq) | Cond::Op(JmpOp::Ne));
            if !null_check {
                return Err(RejectReason::PointerComparison {
                    detail: format!(
                        "{} compared with a scalar ({})",
                        p.region.describe(),
                        cond_name(cond)
                    ),
                });
            }
            let is_null = matches!(cond, Cond::Op(JmpOp::Eq));
            if let Region::MapValueOrNull { .. } = p.region {
                let id = p.id;
                let pv = *p;
                s.for_each_value(|v| {
                    if let Value::Ptr(q) = v {
                        let qmap = match q.region {
                            Region::MapValueOrNull { map } => Some(map),
                            _ => None,
                        };
                        if let Some(map) = qmap.filter(|_| q.id == id && id != 0 || *q == pv) {
                            *v = if is_null {
                                Value::constant(0)
                            } else {
                                Value::Ptr(Pointer {
                                    region: Region::MapValue { map },
                                    id: 0,
                                    ..*q
                                })
                            };
                        }
                    }
                });
                Ok(Some(s))
            } else if is_null {
                Ok(None)
            } else {
                Ok(Some(s))
            }
        }
        (Value::Ptr(p), Value::Ptr(q)) => {
            if is32 {
                return Err(RejectReason::PointerComparison {
                    detail: "32-bit comparison of pointers".into(),
                });
            }
            match (p.region, q.region) {
                (Region::Packet, Region::PacketEnd) => Ok(learn_packet(s, p, q.off, cond)),
                (Region::PacketEnd, Region::Packet) => {
                    let c = match cond {
                        Cond::Op(op) => Cond::Op(op.swap()),
                        c => c,
                    };
                    Ok(learn_packet(s, q, p.off, c))
                }
                (x, y) if x == y => Ok(Some(s)),
                (
                    Region::Packet | Region::PacketMeta | Region::PacketEnd,
                    Region::Packet | Region::PacketMeta | Region::PacketEnd,
                ) => Ok(Some(s)),
                (x, y) => Err(RejectReason::PointerComparison {
                    detail: format!(
                        "pointers into different regions ({} and {})",
                        x.describe(),
                        y.describe()
                    ),
                }),
            }
        }
        _ => Err(RejectReason::Invalid {
            detail: "unexpected comparison operands".into(),
        }),
    }
}

/// The branch where `p cond (data_end + k)` holds.
fn learn_packet(mut s: State, p: &Pointer, k: i64, cond: Cond) -> Option<State> {
    let r = match cond {
        Cond::Op(JmpOp::Le) | Cond::Op(JmpOp::Eq) => p.off - k,
        Cond::Op(JmpOp::Lt) => p.off - k + 1,
        _ => return Some(s),
    };
    if p.fixed() {
        s.min_len = s.min_len.max(r);
    } else {
        let id = p.id;
        s.for_each_value(|v| {
            if let Value::Ptr(q) = v {
                if q.region == Region::Packet && q.id == id && id != 0 {
                    q.range = q.range.max(r);
                }
            }
        });
        if p.var.smin >= 0 {
            s.min_len = s.min_len.max(p.var.smin + r);
        }
    }
    (s.min_len <= MAX_PACKET_LEN as i64).then_some(s)
}

fn call_helper(env: &mut Env, st: &mut State, id: i32) -> R<()> {
    let Some(proto) = env.platform.helper(id) else {
        return Err(RejectReason::UnknownHelper { id });
    };
    env.acc.helpers.insert(id);
    let mut map: Option<MapSet> = None;
    let wrong = |arg: usize, expected: ArgType, v: &Value| RejectReason::HelperArg {
        helper: proto.name.to_string(),
        arg: arg as u8,
        expected,
        got: describe(v),
    };
    for (i, &ty) in proto.args.iter().enumerate() {
        let reg = (i + 1) as u8;
        let v = read(st, reg)?;
        if ty != ArgType::MemSize {
            usable(&v, reg)?;
        }
        match ty {
            ArgType::Anything => {}
            ArgType::Scalar | ArgType::MemSize => {
                if v.as_scalar().is_none() {
                    return Err(wrong(i + 1, ty, &v));
                }
            }
            ArgType::PacketCsumOffset => {
                let Some(n) = v.as_scalar() else {
                    return Err(wrong(i + 1, ty, &v));
                };
                let n = *n;
                checks::packet_csum_field(env, st, &n);
            }
            ArgType::MapPtr => match v {
                Value::Ptr(Pointer {
                    region: Region::MapPtr { map: m },
                    ..
                }) => {
                    map = Some(m);
                    env.acc.maps.extend(m.iter());
                }
                _ => return Err(wrong(i + 1, ty, &v)),
            },
            ArgType::MapKey | ArgType::MapValue => {
                let Some(m) = map else {
                    return Err(RejectReason::Invalid {
                        detail: format!("{} needs a map argument", proto.name),
                    });
                };
                let sizes = checks::maps_of(env, m).map(|d| {
                    if ty == ArgType::MapKey {
                        d.key_size
                    } else {
                        d.value_size
                    }
                });
                let size = sizes.max().unwrap_or(0) as i64;
                if size == 0 {
                    return Err(wrong(i + 1, ty, &v));
                }
                checks::helper_mem(env, st, proto.name, reg, &v, size, ty)?;
            }
            ArgType::Ctx => match v {
                Value::Ptr(p) if p.region == Region::Ctx && p.off == 0 && p.fixed() => {}
                _ => return Err(wrong(i + 1, ty, &v)),
            },
            ArgType::Mem | ArgType::MemOrNull => {
                let sreg = reg + 1;
                let sv = read(st, sreg)?;
                let Some(size) = sv.as_scalar() else {
                    return Err(wrong(i + 2, ArgType::MemSize, &sv));
                };
                if size.smin < 0 || size.umax > MAX_PACKET_LEN {
                    return Err(RejectReason::HelperArg {
                        helper: proto.name.to_string(),
                        arg: sreg,
                        expected: ArgType::MemSize,
                        got: format!(
                            "scalar in [{}, {}] (bound it to [0, {MAX_PACKET_LEN}])",
                            size.smin, size.smax
                        ),
                    });
                }
                let null = v.as_scalar().and_then(|n| n.as_const()) == Some(0);
                if null && ty == ArgType::MemOrNull && size.umax == 0 {
                    continue;
                }
                if size.umax == 0 && ty == ArgType::Mem {
                    return Err(wrong(i + 2, ArgType::MemSize, &sv));
                }
                checks::helper_mem(env, st, proto.name, reg, &v, size.umax as i64, ty)?;
            }
        }
    }
    if proto.stateful {
        env.acc.stateful = true;
    }
    if proto.resizes {
        env.acc.may_resize = true;
        st.resized = true;
        st.min_len = 0;
        st.for_each_value(|v| match v {
            Value::Ptr(p)
                if matches!(
                    p.region,
                    Region::Packet | Region::PacketEnd | Region::PacketMeta
                ) =>
            {
                *v = Value::Stale
            }
            Value::Scalar { len, .. } => *len = None,
            _ => {}
        });
    }
    let ret = match proto.ret {
        RetType::Integer => Value::scalar(Scalar::unknown()),
        RetType::Bounded(max) => Value::scalar(Scalar::urange(0, max)),
        RetType::MapValueOrNull => {
            let m = map.ok_or_else(|| RejectReason::Invalid {
                detail: "lookup without a map".into(),
            })?;
            let id = st.fresh_id();
            Value::Ptr(Pointer {
                id,
                ..Pointer::new(Region::MapValueOrNull { map: m })
            })
        }
    };
    let regs = &mut st.top_mut().regs;
    regs[0] = ret;
    for r in regs[1..6].iter_mut() {
        *r = Value::Uninit;
    }
    Ok(())
}
