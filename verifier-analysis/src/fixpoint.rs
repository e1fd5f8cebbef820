//! The forward analysis: abstract interpretation over the CFG from the entry state.
//!
//! Analysis points are an instruction plus a context: the chain of bpf-to-bpf call sites
//! (callees are analysed inline, once per calling context, up to
//! [`MAX_CALL_FRAMES`](crate::platform::MAX_CALL_FRAMES)) and, for each loop (component of
//! the weak topological order) enclosing the instruction, the iteration number. States from
//! different paths into the same point are joined; a back edge leads to the next iteration's
//! point instead of widening. Loops are therefore unrolled, which is what makes "this loop
//! terminates" a proven fact rather than an approximation: a loop whose back edge is still
//! feasible after [`Limits::max_loop_iterations`] iterations is rejected as unbounded, as
//! the kernel's verifier rejects loops it cannot walk to their exit. A loop whose head state
//! repeats exactly from one iteration to the next is rejected at once (it makes no progress
//! the analysis can see, so no number of iterations would prove it terminates). Points form a DAG, so
//! processing them in key order (calling context and WTO position, iteration-major) visits
//! each point once, after all its predecessors.

use std::collections::BTreeMap;

use crate::cfg::Cfg;
use crate::checks::{Acc, Env};
use crate::domain::{join_value, IdMap, State, Value};
use crate::insn::decode_all;
use crate::platform::Platform;
use crate::transfer::{entry_state, step, Out};
use crate::{AccessSet, Analysis, HelperUse, Program, RejectReason, Verdict};

/// Bounds on the analysis effort.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Analysis points processed before giving up ("too complex"), like the kernel's
    /// one million processed instructions.
    pub max_visits: usize,
    /// Iterations of one loop explored before it is declared unbounded.
    pub max_loop_iterations: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_visits: 1_000_000,
            max_loop_iterations: 1 << 15,
        }
    }
}

/// Loop iteration numbers for the loops enclosing a frame's current instruction.
type Iters = Vec<(usize, u32)>;

struct Point {
    pc: usize,
    ctx: Vec<Iters>,
    state: State,
}

fn key(cfg: &Cfg, pc: usize, ctx: &[Iters], st: &State) -> Vec<u64> {
    let mut k = Vec::new();
    for (i, iters) in ctx.iter().enumerate() {
        let fpc = if i + 1 == ctx.len() {
            pc
        } else {
            st.frames[i + 1].callsite
        };
        for &(h, it) in iters {
            k.push(((cfg.pos[h] as u64) << 32) | it as u64);
        }
        k.push((cfg.pos[fpc] as u64) << 32);
        if i + 1 < ctx.len() {
            k.push(u64::MAX);
        }
    }
    k
}

/// The iteration numbers after the edge `from -> to` in one function.
fn step_iters(
    cfg: &Cfg,
    from: usize,
    iters: &Iters,
    to: usize,
    max: u32,
) -> Result<Iters, RejectReason> {
    let mut out = Vec::with_capacity(cfg.heads[to].len());
    for &h in &cfg.heads[to] {
        let it = match iters.iter().find(|(x, _)| *x == h) {
            Some(&(_, it)) if h == to => {
                let n = it + 1;
                if n >= max {
                    return Err(RejectReason::UnboundedLoop {
                        head: h,
                        iterations: n,
                    });
                }
                n
            }
            Some(&(_, it)) => it,
            None => 0,
        };
        out.push((h, it));
    }
    let _ = from;
    Ok(out)
}

fn entry_iters(cfg: &Cfg, pc: usize) -> Iters {
    cfg.heads[pc].iter().map(|&h| (h, 0)).collect()
}

fn reject(
    prog: &Program,
    insn: usize,
    reason: RejectReason,
    acc: Acc,
    states: Vec<Option<[Value; 11]>>,
    visits: usize,
) -> Analysis {
    let mut a = finish(prog, acc, states, visits, Verdict::Reject { insn, reason });
    a.packet_reads = AccessSet::Unbounded;
    a.packet_writes = AccessSet::Unbounded;
    a
}

fn finish(
    prog: &Program,
    acc: Acc,
    states: Vec<Option<[Value; 11]>>,
    visits: usize,
    verdict: Verdict,
) -> Analysis {
    let platform = Platform::for_abi(prog.abi);
    Analysis {
        verdict,
        packet_reads: acc.reads,
        packet_writes: acc.writes,
        may_resize: acc.may_resize,
        stateful: acc.stateful,
        helpers_used: acc
            .helpers
            .iter()
            .map(|&id| HelperUse {
                id,
                name: platform
                    .helper(id)
                    .map(|h| h.name.to_string())
                    .unwrap_or_else(|| format!("helper#{id}")),
            })
            .collect(),
        maps_used: acc.maps.into_iter().collect(),
        ctx_accesses: acc.ctx.into_values().collect(),
        states,
        return_value: acc.ret,
        visits,
    }
}

/// Runs the analysis (see the module documentation).
pub fn run(prog: &Program, platform: &Platform, limits: &Limits) -> Analysis {
    let n = prog.insns.len();
    let mut states: Vec<Option<[Value; 11]>> = vec![None; n];
    let cfg = match Cfg::build(decode_all(&prog.insns)) {
        Ok(c) => c,
        Err((pc, reason)) => return reject(prog, pc, reason, Acc::default(), states, 0),
    };
    let mut env = Env {
        prog,
        platform,
        acc: Acc::default(),
    };
    let function_of = |pc: usize| cfg.function_of(pc);
    let mut work: BTreeMap<Vec<u64>, Point> = BTreeMap::new();
    let init = entry_state(prog.abi);
    let ctx0 = vec![entry_iters(&cfg, 0)];
    work.insert(
        key(&cfg, 0, &ctx0, &init),
        Point {
            pc: 0,
            ctx: ctx0,
            state: init,
        },
    );
    let mut visits = 0usize;
    let mut heads_seen: std::collections::HashMap<Vec<u64>, (u32, State)> =
        std::collections::HashMap::new();
    while let Some((_, pt)) = work.pop_first() {
        visits += 1;
        let Point { pc, ctx, state } = pt;
        // A loop head whose state repeats from one iteration to the next makes no progress:
        // every later iteration would be the same, so the loop is not proven to terminate.
        let top = ctx.len() - 1;
        if let Some(&(_, it)) = ctx[top].iter().find(|(h, _)| *h == pc) {
            let mut generic = ctx.clone();
            for e in generic[top].iter_mut().filter(|(h, _)| *h == pc) {
                e.1 = u32::MAX;
            }
            let k = key(&cfg, pc, &generic, &state);
            if it > 0
                && heads_seen
                    .get(&k)
                    .map(|(i, s)| *i + 1 == it && *s == state)
                    .unwrap_or(false)
            {
                return reject(
                    prog,
                    pc,
                    RejectReason::UnboundedLoop {
                        head: pc,
                        iterations: it,
                    },
                    env.acc,
                    states,
                    visits,
                );
            }
            heads_seen.insert(k, (it, state.clone()));
        }
        if visits > limits.max_visits {
            return reject(
                prog,
                pc,
                RejectReason::TooComplex {
                    budget: limits.max_visits,
                },
                env.acc,
                states,
                visits,
            );
        }
        let regs = state.top().regs;
        states[pc] = Some(match states[pc] {
            None => regs,
            Some(old) => {
                let mut ids = IdMap::new();
                let mut out = [Value::Uninit; 11];
                for i in 0..11 {
                    out[i] = join_value(&old[i], &regs[i], 0, 0, &mut ids);
                }
                out
            }
        });
        let outs = match step(&mut env, &cfg.instrs, &function_of, pc, state) {
            Ok(o) => o,
            Err(reason) => return reject(prog, pc, reason, env.acc, states, visits),
        };
        for out in outs {
            let (to, new_ctx, st) = match out {
                Out::Exit => continue,
                Out::Next(to, st) => {
                    let mut c = ctx.clone();
                    let top = c.len() - 1;
                    match step_iters(&cfg, pc, &c[top], to, limits.max_loop_iterations) {
                        Ok(it) => c[top] = it,
                        Err(reason) => return reject(prog, pc, reason, env.acc, states, visits),
                    }
                    (to, c, st)
                }
                Out::Call(entry, st) => {
                    let mut c = ctx.clone();
                    c.push(entry_iters(&cfg, entry));
                    (entry, c, st)
                }
                Out::Return(callsite, st) => {
                    let mut c = ctx.clone();
                    c.pop();
                    let top = c.len() - 1;
                    let to = callsite + 1;
                    match step_iters(&cfg, callsite, &c[top], to, limits.max_loop_iterations) {
                        Ok(it) => c[top] = it,
                        Err(reason) => return reject(prog, pc, reason, env.acc, states, visits),
                    }
                    (to, c, st)
                }
            };
            let k = key(&cfg, to, &new_ctx, &st);
            match work.get_mut(&k) {
                Some(p) => p.state = p.state.join(&st),
                None => {
                    work.insert(
                        k,
                        Point {
                            pc: to,
                            ctx: new_ctx,
                            state: st,
                        },
                    );
                }
            }
        }
    }
    finish(prog, env.acc, states, visits, Verdict::Accept)
}
