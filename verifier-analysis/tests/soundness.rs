//! Soundness and robustness, property-tested against the checked reference interpreter in
//! `common`:
//!
//! * arbitrary instruction sequences never make the analysis panic, and any it accepts run
//!   without faults;
//! * generated packet programs (bounds checks in every form, fixed and variable offsets,
//!   spills, loops, map lookups, helpers, bpf-to-bpf calls) that the analysis accepts
//!   (a) never fault on random packets, (b) change only bytes inside the predicted write
//!   set, and (c) when not stateful, give the same result when bytes outside the read set
//!   change.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Fault, Machine};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use verifier_analysis::asm::assemble;
use verifier_analysis::insn::Insn;
use verifier_analysis::platform::{Abi, MapDescr, MapType, Platform};
use verifier_analysis::{analyze, Analysis, Program, Verdict};

fn maps() -> Vec<MapDescr> {
    let mut ro = MapDescr::new("rodata", MapType::Array, 4, 16, 1);
    ro.read_only = true;
    vec![MapDescr::new("flows", MapType::Hash, 4, 16, 64), ro]
}

#[derive(Debug, Clone)]
enum Src {
    Reg(u8),
    Imm(i32),
}

#[derive(Debug, Clone)]
enum Block {
    Check {
        k: u8,
        form: u8,
    },
    LenCheck {
        k: u8,
        form: u8,
    },
    Read {
        off: u8,
        size: u8,
        dst: u8,
    },
    Write {
        off: u8,
        size: u8,
        src: Src,
    },
    Alu {
        op: u8,
        dst: u8,
        src: Src,
        is64: bool,
    },
    Var {
        boff: u8,
        mask: u8,
        k: u8,
        form: u8,
        woff: u8,
        size: u8,
        write: bool,
        dst: u8,
    },
    Skip {
        reg: u8,
        imm: u8,
        op: u8,
        len: u8,
    },
    Spill {
        reg: u8,
        reg2: u8,
        slot: u8,
        size: u8,
    },
    PtrSpill {
        slot: u8,
    },
    Loop {
        n: u8,
        dst: u8,
    },
    Lookup {
        from_pkt: bool,
        koff: u8,
        write: bool,
        voff: u8,
    },
    Helper {
        random: bool,
    },
    Csum {
        off: u8,
    },
    LocalCall {
        k: u8,
        woff: u8,
    },
}

const SCALARS: [u8; 3] = [4, 5, 8];

fn src() -> impl Strategy<Value = Src> {
    prop_oneof![
        (0usize..3).prop_map(|i| Src::Reg(SCALARS[i])),
        (-20i32..300).prop_map(Src::Imm)
    ]
}

fn scalar() -> impl Strategy<Value = u8> {
    (0usize..3).prop_map(|i| SCALARS[i])
}

fn size() -> impl Strategy<Value = u8> {
    prop_oneof![Just(1u8), Just(2), Just(4), Just(8)]
}

fn block() -> impl Strategy<Value = Block> {
    prop_oneof![
        3 => (8u8..72, 0u8..8).prop_map(|(k, form)| Block::Check { k, form }),
        1 => (8u8..72, 0u8..8).prop_map(|(k, form)| Block::LenCheck { k, form }),
        3 => (0u8..64, size(), scalar()).prop_map(|(off, size, dst)| Block::Read { off, size, dst }),
        3 => (0u8..64, size(), src()).prop_map(|(off, size, src)| Block::Write { off, size, src }),
        3 => (0u8..12, scalar(), src(), any::<bool>()).prop_map(|(op, dst, src, is64)| Block::Alu { op, dst, src, is64 }),
        2 => (0u8..40, prop_oneof![Just(3u8), Just(7), Just(15), Just(0x3c), Just(0xff)], 1u8..24, 0u8..8, 0u8..16, size(), any::<bool>(), scalar())
            .prop_map(|(boff, mask, k, form, woff, size, write, dst)| Block::Var { boff, mask, k, form, woff, size, write, dst }),
        2 => (scalar(), 0u8..200, 0u8..6, 1u8..3).prop_map(|(reg, imm, op, len)| Block::Skip { reg, imm, op, len }),
        1 => (scalar(), scalar(), 1u8..6, size()).prop_map(|(reg, reg2, slot, size)| Block::Spill { reg, reg2, slot, size }),
        1 => (1u8..6).prop_map(|slot| Block::PtrSpill { slot }),
        1 => (1u8..12, scalar()).prop_map(|(n, dst)| Block::Loop { n, dst }),
        1 => (any::<bool>(), 0u8..40, any::<bool>(), 0u8..12).prop_map(|(from_pkt, koff, write, voff)| Block::Lookup { from_pkt, koff, write, voff }),
        1 => any::<bool>().prop_map(|random| Block::Helper { random }),
        1 => (10u8..50).prop_map(|off| Block::Csum { off }),
        1 => (1u8..60, 0u8..60).prop_map(|(k, woff)| Block::LocalCall { k, woff }),
    ]
}

fn ty(size: u8) -> &'static str {
    match size {
        1 => "u8",
        2 => "u16",
        4 => "u32",
        _ => "u64",
    }
}

fn src_text(s: &Src, is64: bool) -> String {
    match s {
        Src::Reg(r) => format!("{}{r}", if is64 { "r" } else { "w" }),
        Src::Imm(i) => format!("{i}"),
    }
}

/// `a` is within bounds when `a <= end`; emits a check that jumps to `out` otherwise.
fn check(out: &mut String, a: &str, end: &str, form: u8, n: usize) {
    let s = match form % 8 {
        0 => format!("if {a} > {end} goto out"),
        1 => format!("if {end} < {a} goto out"),
        2 => format!("if {a} <= {end} goto ok{n}\ngoto out\nok{n}:"),
        3 => format!("if {end} >= {a} goto ok{n}\ngoto out\nok{n}:"),
        4 => format!("{a} += -1\nif {a} >= {end} goto out"),
        5 => format!("{a} += -1\nif {end} <= {a} goto out"),
        6 => format!("{a} += -1\nif {a} < {end} goto ok{n}\ngoto out\nok{n}:"),
        _ => format!("{a} += -1\nif {end} > {a} goto ok{n}\ngoto out\nok{n}:"),
    };
    out.push_str(&s);
    out.push('\n');
}

fn restore(abi: Abi) -> &'static str {
    match abi {
        Abi::Xdp => "r2 = *(u32 *)(r6 + 4)\nr1 = *(u32 *)(r6 + 0)\nr4 = r0\nr5 = 0\n",
        Abi::Ubpf => "r1 = r6\nr2 = r7\nr4 = r0\nr5 = 0\nr0 = r2\nr0 -= r1\n",
    }
}

fn render(abi: Abi, blocks: &[Block]) -> String {
    let mut s = String::new();
    s.push_str(match abi {
        Abi::Xdp => "r6 = r1\nr2 = *(u32 *)(r6 + 4)\nr1 = *(u32 *)(r6 + 0)\n",
        Abi::Ubpf => "r0 = r2\nr2 += r1\nr6 = r1\nr7 = r2\n",
    });
    s.push_str("r4 = 0\nr5 = 0\nr8 = 0\n");
    let mut pending: Vec<(usize, String)> = Vec::new();
    let mut funcs = String::new();
    for (n, b) in blocks.iter().enumerate() {
        match b {
            Block::Check { k, form } => {
                s.push_str(&format!("r3 = r1\nr3 += {k}\n"));
                check(&mut s, "r3", "r2", *form, n);
            }
            Block::LenCheck { k, form } => {
                if abi == Abi::Ubpf {
                    let c = match form {
                        0 => format!("if r0 < {k} goto out"),
                        1 => format!("if r0 <= {} goto out", k - 1),
                        2 => format!("if r0 >= {k} goto ok{n}\ngoto out\nok{n}:"),
                        3 => format!("if r0 > {} goto ok{n}\ngoto out\nok{n}:", k - 1),
                        4 => format!("if w0 < {k} goto out"),
                        5 => format!(
                            "r3 = r0\nr3 += -14\nif r3 < {} goto out",
                            k.saturating_sub(14)
                        ),
                        6 => format!(
                            "r3 = r0\nr3 += -14\nif r3 s< {} goto out",
                            k.saturating_sub(14)
                        ),
                        _ => format!("if r0 s< {k} goto out"),
                    };
                    s.push_str(&c);
                    s.push('\n');
                } else {
                    s.push_str(&format!("r3 = r1\nr3 += {k}\n"));
                    check(&mut s, "r3", "r2", *form, n);
                }
            }
            Block::Read { off, size, dst } => {
                s.push_str(&format!("r{dst} = *({} *)(r1 + {off})\n", ty(*size)))
            }
            Block::Write { off, size, src } => s.push_str(&format!(
                "*({} *)(r1 + {off}) = {}\n",
                ty(*size),
                src_text(src, true)
            )),
            Block::Alu { op, dst, src, is64 } => {
                let ops = [
                    "+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "%=", "^=", "s>>=", "=",
                ];
                let op = ops[*op as usize % ops.len()];
                let src = match (op, src) {
                    ("<<=" | ">>=" | "s>>=", Src::Imm(i)) => Src::Imm(i.rem_euclid(32)),
                    (_, s) => s.clone(),
                };
                let r = if *is64 { "r" } else { "w" };
                s.push_str(&format!("{r}{dst} {op} {}\n", src_text(&src, *is64)));
            }
            Block::Var {
                boff,
                mask,
                k,
                form,
                woff,
                size,
                write,
                dst,
            } => {
                s.push_str(&format!(
                    "r9 = *(u8 *)(r1 + {boff})\nr9 &= {mask}\nr9 += r1\nr3 = r9\nr3 += {k}\n"
                ));
                check(&mut s, "r3", "r2", *form, n);
                if *write {
                    s.push_str(&format!("*({} *)(r9 + {woff}) = r{dst}\n", ty(*size)));
                } else {
                    s.push_str(&format!("r{dst} = *({} *)(r9 + {woff})\n", ty(*size)));
                }
            }
            Block::Skip { reg, imm, op, len } => {
                let ops = [">", "<", "==", "!=", "s>", "&"];
                s.push_str(&format!(
                    "if r{reg} {} {imm} goto skip{n}\n",
                    ops[*op as usize % ops.len()]
                ));
                pending.push((n + *len as usize, format!("skip{n}:\n")));
            }
            Block::Spill {
                reg,
                reg2,
                slot,
                size,
            } => {
                let o = *slot as i32 * 8;
                s.push_str(&format!(
                    "*({t} *)(r10 - {o}) = r{reg}\nr{reg2} = *({t} *)(r10 - {o})\n",
                    t = ty(*size)
                ));
            }
            Block::PtrSpill { slot } => {
                let o = *slot as i32 * 8;
                s.push_str(&format!(
                    "*(u64 *)(r10 - {o}) = r1\nr1 = *(u64 *)(r10 - {o})\n"
                ));
            }
            Block::Loop { n: count, dst } => {
                s.push_str(&format!(
                    "r9 = 0\nloop{n}:\nr{dst} += 3\nr9 += 1\nif r9 < {count} goto loop{n}\n"
                ));
            }
            Block::Lookup {
                from_pkt,
                koff,
                write,
                voff,
            } => {
                if *from_pkt {
                    s.push_str(&format!("r2 = r1\nr2 += {koff}\n"));
                } else {
                    s.push_str("*(u32 *)(r10 - 4) = r4\nr2 = r10\nr2 += -4\n");
                }
                s.push_str("r1 = map[0] ll\ncall 1\n");
                s.push_str(&format!("if r0 == 0 goto lu{n}\n"));
                if *write {
                    s.push_str(&format!("*(u32 *)(r0 + {voff}) = r8\n"));
                } else {
                    s.push_str(&format!("r8 = *(u32 *)(r0 + {voff})\n"));
                }
                s.push_str(&format!("lu{n}:\n"));
                s.push_str(restore(abi));
                s.push_str("r4 = 0\n");
            }
            Block::Helper { random } => {
                let id = if *random && abi == Abi::Xdp { 7 } else { 5 };
                s.push_str(&format!("call {id}\n"));
                s.push_str(restore(abi));
            }
            Block::Csum { off } => {
                if abi == Abi::Xdp {
                    s.push_str(&format!(
                        "r1 = r6\nr2 = {off}\nr3 = r4\nr4 = r5\nr5 = 2\ncall 10\n"
                    ));
                    s.push_str(restore(abi));
                }
            }
            Block::LocalCall { k, woff } => {
                s.push_str(&format!("call fn{n}\n"));
                s.push_str(restore(abi));
                funcs.push_str(&format!(
                    "fn{n}:\nr3 = r1\nr3 += {k}\nif r3 > r2 goto fn{n}_ret\n*(u8 *)(r1 + {woff}) = 9\nfn{n}_ret:\nr0 = 0\nexit\n"
                ));
            }
        }
        pending.retain(|(at, label)| {
            if *at == n {
                s.push_str(label);
                false
            } else {
                true
            }
        });
    }
    for (_, label) in pending {
        s.push_str(&label);
    }
    s.push_str("if r5 == 0x7fff goto out\nr0 = r4\nr0 ^= r5\nr0 ^= r8\nexit\nout:\nr0 = 1\nexit\n");
    s.push_str(&funcs);
    s
}

fn packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..34),
        3 => proptest::collection::vec(any::<u8>(), 34..120),
    ]
}

fn run(insns: &[Insn], abi: Abi, maps: &[MapDescr], pkt: &[u8]) -> Result<(u64, Vec<u8>), Fault> {
    let mut m = Machine::new(insns, abi, maps, pkt.to_vec(), 99);
    let r = m.run()?;
    Ok((r, m.pkt))
}

/// Checks (a), (b), (c) for one accepted program on one packet.
/// Packets on which the program changed some byte, and stateless programs' variant runs.
static CHANGED: AtomicUsize = AtomicUsize::new(0);
static VARIANTS: AtomicUsize = AtomicUsize::new(0);

fn check_properties(
    insns: &[Insn],
    abi: Abi,
    a: &Analysis,
    pkt: &[u8],
    noise: &[u8],
    src: &str,
) -> Result<(), TestCaseError> {
    let maps = maps();
    let (ret, out) = run(insns, abi, &maps, pkt)
        .map_err(|f| TestCaseError::fail(format!("accepted program faulted: {f:?}\n{src}")))?;
    if pkt != &out[..] {
        CHANGED.fetch_add(1, Ordering::Relaxed);
    }
    for (i, (x, y)) in pkt.iter().zip(&out).enumerate() {
        if x != y && !a.packet_writes.contains(i as u32) {
            return Err(TestCaseError::fail(format!(
                "byte {i} changed outside the write set {:?}\n{src}",
                a.packet_writes
            )));
        }
    }
    if !a.stateful {
        let mut other = pkt.to_vec();
        for (i, b) in other.iter_mut().enumerate() {
            if !a.packet_reads.contains(i as u32) {
                *b ^= noise[i % noise.len()];
            }
        }
        VARIANTS.fetch_add(1, Ordering::Relaxed);
        let (ret2, out2) = run(insns, abi, &maps, &other).map_err(|f| {
            TestCaseError::fail(format!(
                "accepted program faulted on a variant: {f:?}\n{src}"
            ))
        })?;
        if ret != ret2 {
            return Err(TestCaseError::fail(format!(
                "return value changed ({ret} vs {ret2}) when only bytes outside the read set {:?} changed\n{src}",
                a.packet_reads
            )));
        }
        for i in 0..pkt.len() {
            let same = out[i] == out2[i] || (out[i] == pkt[i] && out2[i] == other[i]);
            if !same {
                return Err(TestCaseError::fail(format!(
                    "output byte {i} depends on bytes outside the read set\n{src}"
                )));
            }
        }
    }
    Ok(())
}

fn generated(abi: Abi) {
    let accepted = AtomicUsize::new(0);
    let with_writes = AtomicUsize::new(0);
    let total = AtomicUsize::new(0);
    let reasons = std::sync::Mutex::new(std::collections::BTreeMap::<String, usize>::new());
    let mut runner = TestRunner::new(Config {
        cases: 600,
        ..Config::default()
    });
    let strat = (
        (
            34u8..72,
            0u8..8,
            any::<bool>(),
            proptest::collection::vec(block(), 1..12),
        )
            .prop_map(|(k, form, len, mut b)| {
                b.insert(
                    0,
                    if len {
                        Block::LenCheck { k, form }
                    } else {
                        Block::Check { k, form }
                    },
                );
                b
            }),
        proptest::collection::vec(packet(), 12),
        proptest::collection::vec(1u8..=255, 1..16),
    );
    runner
        .run(&strat, |(blocks, pkts, noise)| {
            total.fetch_add(1, Ordering::Relaxed);
            let src = render(abi, &blocks);
            let insns = assemble(&src).map_err(|e| TestCaseError::fail(format!("{e}\n{src}")))?;
            let prog = Program::new(insns.clone(), abi, maps());
            let a = analyze(&prog, &Platform::for_abi(abi));
            if let Verdict::Reject { reason, .. } = &a.verdict {
                let kind = format!("{reason:?}");
                let kind = kind.split([' ', '{', '(']).next().unwrap_or("").to_string();
                *reasons.lock().unwrap().entry(kind).or_insert(0usize) += 1;
                if std::env::var("SHOW_REJECTS").is_ok() {
                    println!("---- {reason}\n{src}");
                }
                return Ok(());
            }
            accepted.fetch_add(1, Ordering::Relaxed);
            if !a.packet_writes.is_empty() {
                with_writes.fetch_add(1, Ordering::Relaxed);
            }
            // Half the packets are sized right at a bounds check (k - 1, k, k + 1), where
            // off-by-one errors in learnt bounds show.
            let ks: Vec<usize> = blocks
                .iter()
                .filter_map(|b| match b {
                    Block::Check { k, .. } | Block::LenCheck { k, .. } => Some(*k as usize),
                    _ => None,
                })
                .collect();
            for (i, pkt) in pkts.iter().enumerate() {
                let mut pkt = pkt.clone();
                if i % 2 == 0 {
                    let k = ks[noise[i % noise.len()] as usize % ks.len()];
                    pkt.resize(k + (i / 2) % 3 - 1, 0xa5);
                }
                check_properties(&insns, abi, &a, &pkt, &noise, &src)?;
            }
            Ok(())
        })
        .unwrap();
    let (acc, tot, wr) = (
        accepted.into_inner(),
        total.into_inner(),
        with_writes.into_inner(),
    );
    println!("{abi:?}: {acc} of {tot} generated programs accepted, {wr} with packet writes");
    println!("rejections by reason: {:?}", reasons.into_inner().unwrap());
    let (changed, variants) = (
        CHANGED.load(Ordering::Relaxed),
        VARIANTS.load(Ordering::Relaxed),
    );
    println!("runs that changed the packet: {changed}; read-set variant runs: {variants}");
    assert!(
        changed >= 100 && variants >= 100,
        "properties (b) and (c) were hardly exercised"
    );
    assert!(
        acc * 5 >= tot,
        "too few accepted programs ({acc} of {tot}) for the test to mean anything"
    );
    assert!(
        wr * 10 >= tot,
        "too few accepted programs with writes ({wr} of {tot})"
    );
}

#[test]
fn generated_xdp_programs_are_sound() {
    generated(Abi::Xdp);
}

#[test]
fn generated_ubpf_programs_are_sound() {
    generated(Abi::Ubpf);
}

/// Opcodes the decoder knows, so random programs get past decoding often.
const OPCODES: &[u8] = &[
    0x07, 0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77, 0x7f,
    0x87, 0x97, 0x9f, 0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34,
    0x3c, 0x44, 0x4c, 0x54, 0x5c, 0x64, 0x6c, 0x74, 0x7c, 0x84, 0x94, 0x9c, 0xa4, 0xac, 0xb4, 0xbc,
    0xc4, 0xcc, 0xd4, 0xdc, 0x18, 0x61, 0x69, 0x71, 0x79, 0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73,
    0x7b, 0xc3, 0xdb, 0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d, 0x55, 0x5d, 0x65, 0x6d,
    0x75, 0x7d, 0xa5, 0xad, 0xb5, 0xbd, 0xc5, 0xcd, 0xd5, 0xdd, 0x16, 0x1e, 0x26, 0x2e, 0xa6, 0xae,
    0x85, 0x95, 0x95, 0x95,
];

fn raw_insn() -> impl Strategy<Value = Insn> {
    (
        prop_oneof![9 => (0..OPCODES.len()).prop_map(|i| OPCODES[i]), 1 => any::<u8>()],
        0u8..11,
        prop_oneof![9 => 0u8..11, 1 => 0u8..16],
        -8i16..8,
        prop_oneof![
            Just(0i32),
            Just(1),
            Just(2),
            Just(5),
            Just(7),
            -64i32..64,
            any::<i32>()
        ],
    )
        .prop_map(|(code, dst, src, off, imm)| {
            // Small helper numbers and local-call targets are what make calls interesting.
            let imm = if code == 0x85 {
                imm.rem_euclid(12)
            } else {
                imm
            };
            Insn::new(code, dst, src, off, imm)
        })
}

proptest! {
    #![proptest_config(Config { cases: 3000, ..Config::default() })]

    #[test]
    fn random_instructions_never_panic_and_accepted_ones_never_fault(
        mut insns in proptest::collection::vec(raw_insn(), 1..40),
        xdp in any::<bool>(),
        pkts in proptest::collection::vec(packet(), 3),
    ) {
        // Give most programs a proper end.
        let n = insns.len();
        insns[n - 1] = Insn::new(0x95, 0, 0, 0, 0);
        let abi = if xdp { Abi::Xdp } else { Abi::Ubpf };
        let maps = maps();
        let prog = Program::new(insns.clone(), abi, maps.clone());
        let a = analyze(&prog, &Platform::for_abi(abi));
        let _ = verifier_analysis::report::render_text(&prog, &a);
        if a.verdict == Verdict::Accept {
            for pkt in &pkts {
                let r = run(&insns, abi, &maps, pkt);
                prop_assert!(r.is_ok(), "accepted program faulted: {:?}\n{}", r, verifier_analysis::report::disassemble(&prog).iter().map(|l| format!("{}: {}", l.insn, l.text)).collect::<Vec<_>>().join("\n"));
                let (_, out) = r.unwrap();
                for (i, (x, y)) in pkt.iter().zip(&out).enumerate() {
                    prop_assert!(x == y || a.packet_writes.contains(i as u32), "byte {} changed outside {:?}", i, a.packet_writes);
                }
            }
        }
    }
}

/// A longer run of the random-instruction property (`FUZZ_CASES`, default 200000):
/// `cargo test -p verifier-analysis --release --test soundness -- --ignored`.
#[test]
#[ignore = "long fuzzing run; run explicitly"]
fn fuzz_random_instructions_long() {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let strat = (
        proptest::collection::vec(raw_insn(), 1..60),
        any::<bool>(),
        proptest::collection::vec(packet(), 2),
    );
    let accepted = AtomicUsize::new(0);
    runner
        .run(&strat, |(mut insns, xdp, pkts)| {
            let n = insns.len();
            insns[n - 1] = Insn::new(0x95, 0, 0, 0, 0);
            let abi = if xdp { Abi::Xdp } else { Abi::Ubpf };
            let maps = maps();
            let prog = Program::new(insns.clone(), abi, maps.clone());
            let a = analyze(&prog, &Platform::for_abi(abi));
            if a.verdict == Verdict::Accept {
                accepted.fetch_add(1, Ordering::Relaxed);
                for pkt in &pkts {
                    let r = run(&insns, abi, &maps, pkt);
                    prop_assert!(r.is_ok(), "accepted program faulted: {:?}", r);
                }
            }
            Ok(())
        })
        .unwrap();
    println!(
        "{} of {cases} random programs accepted",
        accepted.into_inner()
    );
}

proptest! {
    #![proptest_config(Config { cases: 1500, ..Config::default() })]

    /// Generated programs with a few instructions replaced at random: mutants stay close to
    /// real programs, so many are accepted, and every accepted one must still be safe and
    /// keep its writes inside the predicted set.
    #[test]
    fn mutated_programs_are_sound(
        (k, mut blocks) in (34u8..72, proptest::collection::vec(block(), 1..10)),
        xdp in any::<bool>(),
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, -4i32..5, raw_insn()), 1..4),
        pkts in proptest::collection::vec(packet(), 6),
    ) {
        let abi = if xdp { Abi::Xdp } else { Abi::Ubpf };
        blocks.insert(0, Block::Check { k, form: 0 });
        let src = render(abi, &blocks);
        let mut insns = assemble(&src).unwrap();
        for (at, kind, delta, raw) in &mutations {
            let i = at.index(insns.len());
            let x = &mut insns[i];
            match kind {
                // Nudge an offset or an immediate: off-by-a-few bounds and constants.
                0 => x.off = x.off.wrapping_add(*delta as i16),
                1 => x.imm = x.imm.wrapping_add(*delta),
                // Another comparison, or another access size.
                2 if matches!(x.code & 7, 5 | 6) && !matches!(x.code >> 4, 0 | 8 | 9) => {
                    const OPS: [u8; 11] = [1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13];
                    x.code = (x.code & 0x0f) | (OPS[delta.rem_euclid(11) as usize] << 4);
                }
                2 if matches!(x.code & 7, 1..=3) => x.code = (x.code & !0x18) | ((delta.rem_euclid(4) as u8) << 3),
                _ => *x = *raw,
            }
        }
        let maps = maps();
        let prog = Program::new(insns.clone(), abi, maps.clone());
        let a = analyze(&prog, &Platform::for_abi(abi));
        if a.verdict == Verdict::Accept {
            for pkt in &pkts {
                let r = run(&insns, abi, &maps, pkt);
                prop_assert!(r.is_ok(), "accepted mutant faulted: {:?}\n{}", r,
                    verifier_analysis::report::disassemble(&prog).iter().map(|l| format!("{}: {}", l.insn, l.text)).collect::<Vec<_>>().join("\n"));
                let (_, out) = r.unwrap();
                for (i, (x, y)) in pkt.iter().zip(&out).enumerate() {
                    prop_assert!(x == y || a.packet_writes.contains(i as u32), "byte {} changed outside {:?}", i, a.packet_writes);
                }
            }
        }
    }
}
