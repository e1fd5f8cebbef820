//! A small assembler for the syntax the disassembler prints (`llvm-objdump` style), with
//! labels, so tests and tools can write programs as text:
//!
//! ```text
//!     r2 = *(u32 *)(r1 + 4)
//!     r1 = *(u32 *)(r1 + 0)
//!     r3 = r1
//!     r3 += 23
//!     if r3 > r2 goto drop
//!     *(u8 *)(r1 + 22) = 63
//!     r0 = 2
//!     exit
//! drop:
//!     r0 = 1
//!     exit
//! ```
//!
//! Jump targets are labels or relative offsets (`+3`); `call N` calls helper N, `call NAME`
//! calls the bpf-to-bpf function at label NAME; `rD = map[N] ll` loads map N and
//! `rD = map[N][0]+OFF ll` a pointer into its value. Comments start with `;`, `//` or `#`.

use std::collections::HashMap;

use crate::insn::{Insn, PSEUDO_CALL, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};

/// An assembly error with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct AsmError {
    /// Line number.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

enum Target {
    Rel(i64),
    Label(String),
}

struct Pending {
    slot: usize,
    target: Target,
    line: usize,
    is_call: bool,
}

fn parse_reg(s: &str) -> Option<(u8, bool)> {
    let s = s.trim();
    let (is64, n) = if let Some(n) = s.strip_prefix('r') {
        (true, n)
    } else if let Some(n) = s.strip_prefix('w') {
        (false, n)
    } else {
        return None;
    };
    let r: u8 = n.parse().ok()?;
    (r <= 10).then_some((r, is64))
}

fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let v = if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()? as i64
    } else {
        s.parse::<u64>().ok()? as i64
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

fn size_code(ty: &str) -> Option<u8> {
    Some(match ty {
        "u8" => 0x10,
        "u16" => 0x08,
        "u32" => 0x00,
        "u64" => 0x18,
        _ => return None,
    })
}

/// Parses `*(uN *)(rB + OFF)` into (size code, base, offset).
fn parse_mem(s: &str) -> Option<(u8, u8, i16)> {
    let s = s.trim().strip_prefix("*(")?;
    let (ty, rest) = s.split_once('*')?;
    let size = size_code(ty.trim())?;
    let rest = rest
        .trim()
        .strip_prefix(")")?
        .trim()
        .strip_prefix('(')?
        .strip_suffix(')')?;
    let (base, off) = if let Some((b, o)) = rest.split_once('+') {
        (b, parse_int(o)?)
    } else if let Some((b, o)) = rest.split_once('-') {
        (b, -parse_int(o)?)
    } else {
        (rest, 0)
    };
    let (b, _) = parse_reg(base)?;
    Some((size, b, i16::try_from(off).ok()?))
}

fn alu_code(op: &str) -> Option<u8> {
    Some(match op {
        "+=" => 0x00,
        "-=" => 0x10,
        "*=" => 0x20,
        "/=" => 0x30,
        "|=" => 0x40,
        "&=" => 0x50,
        "<<=" => 0x60,
        ">>=" => 0x70,
        "%=" => 0x90,
        "^=" => 0xa0,
        "=" => 0xb0,
        "s>>=" => 0xc0,
        _ => return None,
    })
}

fn jmp_code(op: &str) -> Option<u8> {
    Some(match op {
        "==" => 0x10,
        ">" => 0x20,
        ">=" => 0x30,
        "&" => 0x40,
        "!=" => 0x50,
        "s>" => 0x60,
        "s>=" => 0x70,
        "<" => 0xa0,
        "<=" => 0xb0,
        "s<" => 0xc0,
        "s<=" => 0xd0,
        _ => return None,
    })
}

fn parse_target(s: &str) -> Target {
    let s = s.trim();
    if s.starts_with('+') || s.starts_with('-') {
        if let Some(v) = parse_int(s.trim_start_matches('+')) {
            return Target::Rel(v);
        }
    }
    Target::Label(s.to_string())
}

/// Assembles `src` into instruction slots.
pub fn assemble(src: &str) -> Result<Vec<Insn>, AsmError> {
    let mut out: Vec<Insn> = Vec::new();
    let mut labels: HashMap<String, usize> = HashMap::new();
    let mut pending: Vec<Pending> = Vec::new();
    for (ln, raw) in src.lines().enumerate() {
        let line = ln + 1;
        let err = |m: &str| AsmError {
            line,
            msg: format!("{m}: `{}`", raw.trim()),
        };
        let mut text = raw;
        for c in [";", "//", "#"] {
            if let Some((a, _)) = text.split_once(c) {
                // `call name#N` uses '#': keep it when it follows a name.
                if c == "#" && a.trim_start().starts_with("call") {
                    continue;
                }
                text = a;
            }
        }
        let mut t = text.trim();
        if let Some((l, rest)) = t.split_once(':') {
            if !l.contains(' ') && !l.contains('(') {
                labels.insert(l.trim().to_string(), out.len());
                t = rest.trim();
            }
        }
        if t.is_empty() {
            continue;
        }
        let slot = out.len();
        if t == "exit" {
            out.push(Insn::new(0x95, 0, 0, 0, 0));
            continue;
        }
        if let Some(rest) = t.strip_prefix("goto ") {
            out.push(Insn::new(0x05, 0, 0, 0, 0));
            pending.push(Pending {
                slot,
                target: parse_target(rest),
                line,
                is_call: false,
            });
            continue;
        }
        if let Some(rest) = t.strip_prefix("call ") {
            let rest = rest.trim();
            let num = rest.rsplit('#').next().and_then(parse_int);
            if let Some(pcrel) = rest.strip_prefix("pc") {
                out.push(Insn::new(0x85, 0, PSEUDO_CALL, 0, 0));
                pending.push(Pending {
                    slot,
                    target: parse_target(pcrel),
                    line,
                    is_call: true,
                });
            } else if let Some(id) = num {
                out.push(Insn::new(0x85, 0, 0, 0, id as i32));
            } else {
                out.push(Insn::new(0x85, 0, PSEUDO_CALL, 0, 0));
                pending.push(Pending {
                    slot,
                    target: Target::Label(rest.to_string()),
                    line,
                    is_call: true,
                });
            }
            continue;
        }
        if let Some(rest) = t.strip_prefix("if ") {
            let (cond, target) = rest
                .split_once(" goto ")
                .ok_or_else(|| err("missing goto"))?;
            let parts: Vec<&str> = cond.split_whitespace().collect();
            if parts.len() != 3 {
                return Err(err("expected `if A OP B goto T`"));
            }
            let (d, is64) = parse_reg(parts[0]).ok_or_else(|| err("bad register"))?;
            let op = jmp_code(parts[1]).ok_or_else(|| err("bad comparison"))?;
            let class = if is64 { 0x05 } else { 0x06 };
            let insn = match parse_reg(parts[2]) {
                Some((s, _)) => Insn::new(class | op | 0x08, d, s, 0, 0),
                None => {
                    let v = parse_int(parts[2]).ok_or_else(|| err("bad operand"))?;
                    Insn::new(class | op, d, 0, 0, v as i32)
                }
            };
            out.push(insn);
            pending.push(Pending {
                slot,
                target: parse_target(target),
                line,
                is_call: false,
            });
            continue;
        }
        if let Some(rest) = t.strip_prefix("lock ") {
            let (m, r) = rest
                .split_once("+=")
                .ok_or_else(|| err("only `lock ... += rS` is supported"))?;
            let (size, base, off) = parse_mem(m).ok_or_else(|| err("bad memory operand"))?;
            let (s, _) = parse_reg(r).ok_or_else(|| err("bad register"))?;
            out.push(Insn::new(0xc3 | size, base, s, off, 0));
            continue;
        }
        if t.starts_with("*(") {
            let (m, v) = t
                .rsplit_once(" = ")
                .ok_or_else(|| err("expected `*(..) = ..`"))?;
            let (size, base, off) = parse_mem(m).ok_or_else(|| err("bad memory operand"))?;
            match parse_reg(v) {
                Some((s, _)) => out.push(Insn::new(0x63 | size, base, s, off, 0)),
                None => {
                    let imm = parse_int(v).ok_or_else(|| err("bad value"))?;
                    out.push(Insn::new(0x62 | size, base, 0, off, imm as i32));
                }
            }
            continue;
        }
        // Register destinations: `rD OP src`.
        let (dst, rest) = t
            .split_once(' ')
            .ok_or_else(|| err("unknown instruction"))?;
        let (d, is64) = parse_reg(dst).ok_or_else(|| err("bad destination register"))?;
        let rest = rest.trim();
        let (op, operand) = rest.split_once(' ').ok_or_else(|| err("missing operand"))?;
        let operand = operand.trim();
        let class = if is64 { 0x07 } else { 0x04 };
        if op == "=" {
            if let Some(r) = operand.strip_prefix('-').and_then(parse_reg) {
                if r.0 != d {
                    return Err(err("negation must be in place"));
                }
                out.push(Insn::new(class | 0x80, d, 0, 0, 0));
                continue;
            }
            if operand.starts_with("*(") {
                let (size, base, off) =
                    parse_mem(operand).ok_or_else(|| err("bad memory operand"))?;
                out.push(Insn::new(0x61 | size, d, base, off, 0));
                continue;
            }
            for (pfx, be) in [("be", true), ("le", false)] {
                if let Some(w) = operand.strip_prefix(pfx) {
                    if let Some((width, _)) = w.split_once(' ') {
                        let width = parse_int(width).ok_or_else(|| err("bad width"))?;
                        out.push(Insn::new(
                            0xd4 | if be { 0x08 } else { 0 },
                            d,
                            0,
                            0,
                            width as i32,
                        ));
                        break;
                    }
                }
            }
            if out.len() > slot {
                continue;
            }
            if let Some(v) = operand.strip_suffix(" ll") {
                let v = v.trim();
                if let Some(m) = v.strip_prefix("map[") {
                    let (idx, tail) = m.split_once(']').ok_or_else(|| err("bad map reference"))?;
                    let idx = parse_int(idx).ok_or_else(|| err("bad map index"))?;
                    if let Some(off) = tail.strip_prefix("[0]+") {
                        let off = parse_int(off).ok_or_else(|| err("bad value offset"))?;
                        out.push(Insn::new(0x18, d, PSEUDO_MAP_VALUE, 0, idx as i32));
                        out.push(Insn::new(0, 0, 0, 0, off as i32));
                    } else {
                        out.push(Insn::new(0x18, d, PSEUDO_MAP_FD, 0, idx as i32));
                        out.push(Insn::new(0, 0, 0, 0, 0));
                    }
                } else {
                    let v = parse_int(v).ok_or_else(|| err("bad constant"))? as u64;
                    out.push(Insn::new(0x18, d, 0, 0, v as u32 as i32));
                    out.push(Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32));
                }
                continue;
            }
        }
        let code = alu_code(op).ok_or_else(|| err("unknown operator"))?;
        match parse_reg(operand) {
            Some((s, _)) => out.push(Insn::new(class | code | 0x08, d, s, 0, 0)),
            None => {
                let v = parse_int(operand).ok_or_else(|| err("bad operand"))?;
                out.push(Insn::new(class | code, d, 0, 0, v as i32));
            }
        }
    }
    for p in pending {
        let target = match p.target {
            Target::Rel(r) => p.slot as i64 + 1 + r,
            Target::Label(l) => *labels.get(&l).ok_or_else(|| AsmError {
                line: p.line,
                msg: format!("unknown label `{l}`"),
            })? as i64,
        };
        let rel = target - p.slot as i64 - 1;
        if p.is_call {
            out[p.slot].imm = rel as i32;
        } else {
            out[p.slot].off = i16::try_from(rel).map_err(|_| AsmError {
                line: p.line,
                msg: "jump too far".into(),
            })?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::decode_all;

    #[test]
    fn assembles_what_the_disassembler_prints() {
        let src = "
            r2 = *(u32 *)(r1 + 4)
            r1 = *(u32 *)(r1 + 0)
            r3 = r1
            r3 += 23
            if r3 > r2 goto drop
            *(u8 *)(r1 + 22) = 63
            w0 = 2
            r4 = map[1] ll
            r5 = map[0][0]+8 ll
            lock *(u64 *)(r10 - 8) += r1
            r1 = be16 r1
            r1 s>>= 3
            call 1
            exit
        drop:
            r0 = 1
            exit";
        let prog = assemble(src).unwrap();
        let text: Vec<String> = decode_all(&prog).iter().map(|i| i.to_string()).collect();
        let again = assemble(
            &text
                .iter()
                .filter(|l| !l.starts_with('('))
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .unwrap();
        assert_eq!(prog, again);
        assert_eq!(text[4], "if r3 > r2 goto +11");
        assert_eq!(text[7], "r4 = map[1] ll");
    }
}
