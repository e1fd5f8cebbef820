//! Hand-written bytecode cases, PREVAIL style: each is a program, the platform and maps it
//! runs with, and the expected verdict and read/write sets.

use verifier_analysis::asm::assemble;
use verifier_analysis::platform::{Abi, MapDescr, MapType, Platform};
use verifier_analysis::{analyze, AccessSet, Analysis, ByteRange, Program, RejectReason, Verdict};

fn maps() -> Vec<MapDescr> {
    let mut ro = MapDescr::new("rodata", MapType::Array, 4, 16, 1);
    ro.read_only = true;
    vec![MapDescr::new("counters", MapType::Hash, 4, 16, 128), ro]
}

fn run(abi: Abi, src: &str) -> Analysis {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}"));
    let prog = Program::new(insns, abi, maps());
    analyze(&prog, &Platform::for_abi(abi))
}

fn xdp(src: &str) -> Analysis {
    run(Abi::Xdp, src)
}

#[track_caller]
fn accepted(a: &Analysis) {
    assert_eq!(a.verdict, Verdict::Accept, "expected accept");
}

#[track_caller]
fn rejected_at(a: &Analysis, insn: usize, pred: impl Fn(&RejectReason) -> bool) {
    match &a.verdict {
        Verdict::Reject { insn: i, reason } => {
            assert!(pred(reason), "wrong reason at {i}: {reason}");
            assert_eq!(*i, insn, "wrong instruction for: {reason}");
        }
        Verdict::Accept => panic!("expected a rejection"),
    }
}

fn ranges(v: &[(u32, u32)]) -> AccessSet {
    AccessSet::Ranges(
        v.iter()
            .map(|&(start, end)| ByteRange { start, end })
            .collect(),
    )
}

/// data in r1, data_end in r2 (XDP prologue).
const PROLOGUE: &str = "
    r2 = *(u32 *)(r1 + 4)
    r1 = *(u32 *)(r1 + 0)
";

#[test]
fn minimal_program_is_accepted() {
    let a = xdp("r0 = 2\nexit");
    accepted(&a);
    assert!(a.packet_reads.is_empty() && a.packet_writes.is_empty());
    assert!(!a.stateful && !a.may_resize);
    assert_eq!(a.return_value.unwrap().as_const(), Some(2));
}

#[test]
fn ttl_write_after_bounds_check_is_byte_22() {
    let a = xdp(&format!(
        "{PROLOGUE}
        r3 = r1
        r3 += 34
        if r3 > r2 goto out
        r4 = *(u8 *)(r1 + 22)
        r4 += -1
        *(u8 *)(r1 + 22) = r4
    out:
        r0 = 2
        exit"
    ));
    accepted(&a);
    assert_eq!(a.packet_writes, ranges(&[(22, 23)]));
    assert_eq!(a.packet_reads, ranges(&[(22, 23)]));
    assert_eq!(a.ctx_accesses.len(), 2);
}
