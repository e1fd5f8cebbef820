//! Control-flow structure: functions (the entry plus every bpf-to-bpf call target), the
//! structural checks the kernel does before abstract interpretation (valid opcodes, jumps
//! inside their function and not into an `ld_imm64`, no fall-through off a function's end,
//! every instruction reachable), and a weak topological order (Bourdoncle) per function that
//! gives the fixpoint its iteration order and loop heads.

use crate::insn::{slots, Instr};
use crate::RejectReason;

/// The control-flow facts the fixpoint needs.
#[derive(Clone, Debug)]
pub struct Cfg {
    /// Decoded instructions (one per slot; second `ld_imm64` slots are `Imm64Tail`).
    pub instrs: Vec<Instr>,
    /// Function entry points, sorted; the first is 0.
    pub functions: Vec<usize>,
    /// Position of each instruction in the weak topological order (unique across functions).
    pub pos: Vec<u32>,
    /// Loop heads enclosing each instruction, outermost first (including the instruction
    /// itself when it is a head).
    pub heads: Vec<Vec<usize>>,
}

/// Successors of `pc` within its function (calls fall through; exits have none).
pub fn successors(instrs: &[Instr], pc: usize) -> Vec<usize> {
    let next = pc + slots(&instrs[pc]);
    match instrs[pc] {
        Instr::Exit => vec![],
        Instr::Ja { off } => vec![(next as i64 + off as i64) as usize],
        Instr::Jump { off, .. } => {
            let t = (next as i64 + off as i64) as usize;
            if t == next {
                vec![next]
            } else {
                vec![next, t]
            }
        }
        _ => vec![next],
    }
}

fn target(pc: usize, rel: i64) -> i64 {
    pc as i64 + 1 + rel
}

impl Cfg {
    /// The function containing `pc`.
    pub fn function_of(&self, pc: usize) -> usize {
        match self.functions.binary_search(&pc) {
            Ok(i) => self.functions[i],
            Err(i) => self.functions[i - 1],
        }
    }

    /// Builds the CFG, or returns the first structural error with its instruction.
    pub fn build(instrs: Vec<Instr>) -> Result<Cfg, (usize, RejectReason)> {
        let n = instrs.len();
        if n == 0 {
            return Err((
                0,
                RejectReason::Invalid {
                    detail: "empty program".into(),
                },
            ));
        }
        // Opcodes and jump targets.
        let mut functions = vec![0usize];
        for (pc, i) in instrs.iter().enumerate() {
            let check_target = |t: i64| -> Result<usize, (usize, RejectReason)> {
                if t < 0 || t >= n as i64 {
                    return Err((pc, RejectReason::JumpOutOfRange { target: t }));
                }
                if matches!(instrs[t as usize], Instr::Imm64Tail) {
                    return Err((
                        pc,
                        RejectReason::Invalid {
                            detail: format!("jump into the middle of ld_imm64 at {}", t - 1),
                        },
                    ));
                }
                Ok(t as usize)
            };
            match *i {
                Instr::Invalid { code } => {
                    return Err((
                        pc,
                        RejectReason::Invalid {
                            detail: format!("unknown opcode {code:#04x}"),
                        },
                    ))
                }
                Instr::LegacyPacketLoad { .. } => {
                    return Err((
                        pc,
                        RejectReason::Unsupported {
                            detail: "legacy LD_ABS/LD_IND packet loads are for socket filters"
                                .into(),
                        },
                    ))
                }
                Instr::Ja { off } => {
                    check_target(target(pc, off as i64))?;
                }
                Instr::Jump { off, .. } => {
                    check_target(target(pc, off as i64))?;
                }
                Instr::CallLocal { off } => {
                    let t = check_target(target(pc, off as i64))?;
                    functions.push(t);
                }
                _ => {}
            }
        }
        functions.sort_unstable();
        functions.dedup();
        let mut cfg = Cfg {
            pos: vec![u32::MAX; n],
            heads: vec![Vec::new(); n],
            instrs,
            functions,
        };
        // Edges stay inside their function; no fall-through past a function's end.
        for pc in 0..n {
            if matches!(cfg.instrs[pc], Instr::Imm64Tail) {
                continue;
            }
            let f = cfg.function_of(pc);
            let end = cfg.functions.iter().copied().find(|&e| e > f).unwrap_or(n);
            let next = pc + slots(&cfg.instrs[pc]);
            let falls = !matches!(cfg.instrs[pc], Instr::Exit | Instr::Ja { .. });
            if falls && next >= end {
                return Err((pc, RejectReason::FallThrough));
            }
            let jump = match cfg.instrs[pc] {
                Instr::Ja { off } => Some(target(pc, off as i64)),
                Instr::Jump { off, .. } => Some(target(pc, off as i64)),
                _ => None,
            };
            if let Some(t) = jump {
                if t < f as i64 || t >= end as i64 {
                    return Err((pc, RejectReason::JumpOutOfRange { target: t }));
                }
            }
        }
        // Reachability from the entry, following calls.
        let mut seen = vec![false; n];
        let mut work = vec![0usize];
        while let Some(pc) = work.pop() {
            if seen[pc] {
                continue;
            }
            seen[pc] = true;
            work.extend(successors(&cfg.instrs, pc));
            if let Instr::CallLocal { off } = cfg.instrs[pc] {
                work.push(target(pc, off as i64) as usize);
            }
        }
        for (pc, reached) in seen.iter().enumerate() {
            if !reached && !matches!(cfg.instrs[pc], Instr::Imm64Tail) {
                return Err((pc, RejectReason::Unreachable));
            }
        }
        // Weak topological order per function.
        let mut counter = 0u32;
        for &f in &cfg.functions.clone() {
            let mut w = Wto::new(&cfg.instrs);
            let order = w.run(f);
            for (pc, heads) in order {
                cfg.pos[pc] = counter;
                counter += 1;
                cfg.heads[pc] = heads;
            }
        }
        Ok(cfg)
    }
}

/// Bourdoncle's recursive strategy, run with an explicit stack (programs may have a million
/// instructions), producing each instruction in order with the heads of the components
/// enclosing it.
struct Wto {
    succ: Vec<Vec<usize>>,
    dfn: Vec<u32>,
    stack: Vec<usize>,
    num: u32,
}

/// A WTO element: a vertex or a component (head plus nested elements).
#[derive(Debug, PartialEq, Eq)]
enum Elem {
    Vertex(usize),
    Component(usize, Vec<Elem>),
}

/// A suspended call of the recursive algorithm.
enum Call {
    /// `visit(v)`: scanning successor `i`; `waiting` while a child visit of it runs.
    Visit {
        v: usize,
        i: usize,
        head: u32,
        is_loop: bool,
        part: usize,
        waiting: bool,
    },
    /// The component of `v`: visiting its successors into partition `inner`.
    Component {
        v: usize,
        i: usize,
        head: u32,
        part: usize,
        inner: usize,
    },
}

impl Wto {
    fn new(instrs: &[Instr]) -> Self {
        let succ = (0..instrs.len())
            .map(|pc| {
                if matches!(instrs[pc], Instr::Imm64Tail) {
                    Vec::new()
                } else {
                    successors(instrs, pc)
                }
            })
            .collect();
        Wto::from_succ(succ)
    }

    fn from_succ(succ: Vec<Vec<usize>>) -> Self {
        let n = succ.len();
        Wto {
            succ,
            dfn: vec![0; n],
            stack: Vec::new(),
            num: 0,
        }
    }

    fn run(&mut self, entry: usize) -> Vec<(usize, Vec<usize>)> {
        let part = self.partition(entry);
        let mut out = Vec::new();
        flatten(&part, &mut Vec::new(), &mut out);
        out
    }

    fn enter(&mut self, v: usize, part: usize, calls: &mut Vec<Call>) {
        self.stack.push(v);
        self.num += 1;
        self.dfn[v] = self.num;
        calls.push(Call::Visit {
            v,
            i: 0,
            head: self.num,
            is_loop: false,
            part,
            waiting: false,
        });
    }

    fn partition(&mut self, entry: usize) -> Vec<Elem> {
        let mut parts: Vec<Vec<Elem>> = vec![Vec::new()];
        let mut calls: Vec<Call> = Vec::new();
        let mut ret: Option<u32> = None;
        self.enter(entry, 0, &mut calls);
        while let Some(call) = calls.last_mut() {
            match call {
                Call::Visit {
                    v,
                    i,
                    head,
                    is_loop,
                    part,
                    waiting,
                } => {
                    let (v, part) = (*v, *part);
                    if *waiting {
                        let min = ret.take().expect("child visit returned");
                        if min <= *head {
                            *head = min;
                            *is_loop = true;
                        }
                        *waiting = false;
                        *i += 1;
                    }
                    let mut descend = None;
                    while *i < self.succ[v].len() {
                        let w = self.succ[v][*i];
                        if self.dfn[w] == 0 {
                            descend = Some(w);
                            break;
                        }
                        if self.dfn[w] <= *head {
                            *head = self.dfn[w];
                            *is_loop = true;
                        }
                        *i += 1;
                    }
                    if let Some(w) = descend {
                        *waiting = true;
                        self.enter(w, part, &mut calls);
                        continue;
                    }
                    let (head, is_loop) = (*head, *is_loop);
                    calls.pop();
                    if head == self.dfn[v] {
                        self.dfn[v] = u32::MAX;
                        let mut e = self.stack.pop().expect("stack holds v");
                        if is_loop {
                            while e != v {
                                self.dfn[e] = 0;
                                e = self.stack.pop().expect("stack holds v");
                            }
                            parts.push(Vec::new());
                            calls.push(Call::Component {
                                v,
                                i: 0,
                                head,
                                part,
                                inner: parts.len() - 1,
                            });
                            continue;
                        }
                        parts[part].push(Elem::Vertex(v));
                    }
                    ret = Some(head);
                }
                Call::Component {
                    v,
                    i,
                    head,
                    part,
                    inner,
                } => {
                    let (v, inner_id) = (*v, *inner);
                    ret = None;
                    let mut descend = None;
                    while *i < self.succ[v].len() {
                        let w = self.succ[v][*i];
                        *i += 1;
                        if self.dfn[w] == 0 {
                            descend = Some(w);
                            break;
                        }
                    }
                    if let Some(w) = descend {
                        self.enter(w, inner_id, &mut calls);
                        continue;
                    }
                    let (head, part) = (*head, *part);
                    calls.pop();
                    let mut inner = std::mem::take(&mut parts[inner_id]);
                    inner.reverse();
                    parts[part].push(Elem::Component(v, inner));
                    ret = Some(head);
                }
            }
        }
        let mut top = std::mem::take(&mut parts[0]);
        top.reverse();
        top
    }

    /// The textbook recursive form, kept as the reference for the iterative one.
    #[cfg(test)]
    fn visit_recursive(&mut self, v: usize, part: &mut Vec<Elem>) -> u32 {
        self.stack.push(v);
        self.num += 1;
        self.dfn[v] = self.num;
        let mut head = self.num;
        let mut is_loop = false;
        for w in self.succ[v].clone() {
            let min = if self.dfn[w] == 0 {
                self.visit_recursive(w, part)
            } else {
                self.dfn[w]
            };
            if min <= head {
                head = min;
                is_loop = true;
            }
        }
        if head == self.dfn[v] {
            self.dfn[v] = u32::MAX;
            let mut e = self.stack.pop().expect("stack holds v");
            if is_loop {
                while e != v {
                    self.dfn[e] = 0;
                    e = self.stack.pop().expect("stack holds v");
                }
                let mut inner = Vec::new();
                for w in self.succ[v].clone() {
                    if self.dfn[w] == 0 {
                        self.visit_recursive(w, &mut inner);
                    }
                }
                inner.reverse();
                part.push(Elem::Component(v, inner));
            } else {
                part.push(Elem::Vertex(v));
            }
        }
        head
    }
}

fn flatten(elems: &[Elem], heads: &mut Vec<usize>, out: &mut Vec<(usize, Vec<usize>)>) {
    for e in elems {
        match e {
            Elem::Vertex(v) => out.push((*v, heads.clone())),
            Elem::Component(h, inner) => {
                heads.push(*h);
                out.push((*h, heads.clone()));
                flatten(inner, heads, out);
                heads.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::{decode_all, Insn};

    proptest::proptest! {
        #[test]
        fn iterative_wto_equals_recursive(edges in proptest::collection::vec((0usize..12, 0usize..12), 0..30)) {
            let mut succ = vec![Vec::new(); 12];
            for (a, b) in edges {
                if !succ[a].contains(&b) {
                    succ[a].push(b);
                }
            }
            let mut it = Wto::from_succ(succ.clone());
            let got = it.partition(0);
            let mut rec = Wto::from_succ(succ);
            let mut want = Vec::new();
            rec.visit_recursive(0, &mut want);
            want.reverse();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn deep_straight_line_code_does_not_overflow_the_stack() {
        let n = 300_000;
        let mut succ: Vec<Vec<usize>> = (0..n).map(|i| vec![i + 1]).collect();
        succ[n - 1] = vec![0];
        let order = Wto::from_succ(succ).run(0);
        assert_eq!(order.len(), n);
        assert_eq!(order[5].1, vec![0]);
    }

    #[test]
    fn loop_heads_and_order() {
        // 0: r0 = 0; 1: r0 += 1; 2: if r0 < 10 goto 1; 3: exit
        let p = [
            Insn::new(0xb7, 0, 0, 0, 0),
            Insn::new(0x07, 0, 0, 0, 1),
            Insn::new(0xa5, 0, 0, -2, 10),
            Insn::new(0x95, 0, 0, 0, 0),
        ];
        let cfg = Cfg::build(decode_all(&p)).unwrap();
        assert_eq!(cfg.heads[0], Vec::<usize>::new());
        assert_eq!(cfg.heads[1], vec![1]);
        assert_eq!(cfg.heads[2], vec![1]);
        assert!(cfg.heads[3].is_empty());
        assert!(cfg.pos[0] < cfg.pos[1] && cfg.pos[1] < cfg.pos[2] && cfg.pos[2] < cfg.pos[3]);
    }
}
