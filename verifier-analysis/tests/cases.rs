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
    assert!(!a.reads_metadata());
}

// ---------------------------------------------------------------- rejections, one per reason

#[test]
fn uninitialised_register() {
    rejected_at(&xdp("r0 = r5\nexit"), 0, |r| {
        matches!(r, RejectReason::UninitRegister { reg: 5 })
    });
    rejected_at(&xdp("exit"), 0, |r| {
        matches!(r, RejectReason::UninitRegister { reg: 0 })
    });
}

#[test]
fn uninitialised_stack() {
    let a = xdp("*(u32 *)(r10 - 8) = 1\nr0 = *(u64 *)(r10 - 8)\nexit");
    rejected_at(&a, 1, |r| {
        matches!(r, RejectReason::UninitStack { off: -8, end: 0 })
    });
}

#[test]
fn packet_access_without_bounds_check() {
    let a = xdp(&format!("{PROLOGUE}\nr0 = *(u8 *)(r1 + 0)\nexit"));
    rejected_at(
        &a,
        2,
        |r| matches!(r, RejectReason::OutOfBounds { region, .. } if region == "packet"),
    );
}

#[test]
fn packet_access_past_the_checked_length() {
    let a = xdp(&format!(
        "{PROLOGUE}
        r3 = r1
        r3 += 14
        if r3 > r2 goto out
        r0 = *(u16 *)(r1 + 13)
    out:
        r0 = 2
        exit"
    ));
    rejected_at(&a, 5, |r| {
        matches!(
            r,
            RejectReason::OutOfBounds {
                lo: 13,
                hi: 15,
                limit: 14,
                ..
            }
        )
    });
}

#[test]
fn access_in_the_wrong_branch_is_rejected() {
    let a = xdp(&format!(
        "{PROLOGUE}
        r3 = r1
        r3 += 14
        if r3 <= r2 goto out
        r0 = *(u8 *)(r1 + 0)
    out:
        r0 = 2
        exit"
    ));
    rejected_at(&a, 5, |r| matches!(r, RejectReason::OutOfBounds { .. }));
}

#[test]
fn stack_out_of_bounds() {
    rejected_at(
        &xdp("*(u64 *)(r10 - 520) = 0\nr0 = 0\nexit"),
        0,
        |r| matches!(r, RejectReason::OutOfBounds { region, .. } if region == "stack"),
    );
    rejected_at(&xdp("*(u32 *)(r10 - 2) = 0\nr0 = 0\nexit"), 0, |r| {
        matches!(r, RejectReason::OutOfBounds { .. })
    });
}

const LOOKUP: &str = "
    *(u32 *)(r10 - 4) = 0
    r2 = r10
    r2 += -4
    r1 = map[0] ll
    call 1
";

#[test]
fn map_value_out_of_bounds() {
    let a = xdp(&format!(
        "{LOOKUP}\nif r0 == 0 goto out\nr1 = *(u64 *)(r0 + 12)\nout:\nr0 = 0\nexit"
    ));
    rejected_at(&a, 7, |r| {
        matches!(
            r,
            RejectReason::OutOfBounds {
                lo: 12,
                hi: 20,
                limit: 16,
                ..
            }
        )
    });
}

#[test]
fn null_map_value_dereference() {
    let a = xdp(&format!("{LOOKUP}\nr1 = *(u64 *)(r0 + 0)\nr0 = 0\nexit"));
    rejected_at(&a, 6, |r| matches!(r, RejectReason::NullDeref { reg: 0 }));
}

#[test]
fn context_out_of_bounds_and_bad_size() {
    rejected_at(&xdp("r0 = *(u32 *)(r1 + 24)\nexit"), 0, |r| {
        matches!(r, RejectReason::BadCtxAccess { .. })
    });
    rejected_at(&xdp("r0 = *(u64 *)(r1 + 0)\nexit"), 0, |r| {
        matches!(r, RejectReason::BadCtxAccess { .. })
    });
    rejected_at(&xdp("r1 += 4\nr0 = *(u32 *)(r1 + 0)\nexit"), 1, |r| {
        matches!(r, RejectReason::BadCtxAccess { .. })
    });
}

#[test]
fn helper_argument_of_wrong_type() {
    let a = xdp("r1 = 0\nr2 = r10\nr2 += -4\ncall 1\nr0 = 0\nexit");
    rejected_at(&a, 3, |r| {
        matches!(r, RejectReason::HelperArg { arg: 1, .. })
    });
    // A key pointing at uninitialised stack.
    let a = xdp("r2 = r10\nr2 += -4\nr1 = map[0] ll\ncall 1\nr0 = 0\nexit");
    rejected_at(&a, 4, |r| matches!(r, RejectReason::UninitStack { .. }));
}

#[test]
fn unknown_helper() {
    rejected_at(&xdp("call 999\nr0 = 0\nexit"), 0, |r| {
        matches!(r, RejectReason::UnknownHelper { id: 999 })
    });
    // Helper 6 is trace_printk for XDP but hash for uBPF; 44 does not exist in uBPF.
    let a = run(Abi::Ubpf, "r1 = 0\nr2 = 0\ncall 44\nr0 = 0\nexit");
    rejected_at(&a, 2, |r| {
        matches!(r, RejectReason::UnknownHelper { id: 44 })
    });
}

#[test]
fn unbounded_loops() {
    // The condition never changes: the second iteration starts in the same state as the
    // first, which is reported at the loop head.
    let a = xdp("r0 = 0\nloop:\nif r0 > 100 goto out\ngoto loop\nout:\nexit");
    rejected_at(&a, 1, |r| {
        matches!(r, RejectReason::UnboundedLoop { head: 1, .. })
    });
    // A countdown that may start at zero wraps around.
    let a = xdp(&format!(
        "{PROLOGUE}
        r3 = r1
        r3 += 1
        if r3 > r2 goto out
        r4 = *(u8 *)(r1 + 0)
    loop:
        r4 += -1
        if r4 != 0 goto loop
    out:
        r0 = 0
        exit"
    ));
    rejected_at(&a, 7, |r| {
        matches!(r, RejectReason::UnboundedLoop { head: 6, .. })
    });
}

#[test]
fn bounded_loops_are_accepted() {
    let a = xdp("r0 = 0\nloop:\nr0 += 1\nif r0 < 10 goto loop\nexit");
    accepted(&a);
    assert_eq!(a.return_value.unwrap().as_const(), Some(10));
    // A loop bounded by a packet byte: at most 255 iterations.
    let a = xdp(&format!(
        "{PROLOGUE}
        r3 = r1
        r3 += 1
        if r3 > r2 goto out
        r4 = *(u8 *)(r1 + 0)
        r0 = 0
    loop:
        if r4 == 0 goto out
        r4 += -1
        r0 += 2
        goto loop
    out:
        r0 = 0
        exit"
    ));
    accepted(&a);
}

#[test]
fn unreachable_code() {
    rejected_at(&xdp("r0 = 0\nexit\nr0 = 1\nexit"), 2, |r| {
        matches!(r, RejectReason::Unreachable)
    });
}

#[test]
fn fall_through_off_the_end() {
    rejected_at(&xdp("r0 = 0"), 0, |r| {
        matches!(r, RejectReason::FallThrough)
    });
    rejected_at(&xdp("r0 = 0\nif r0 == 0 goto -2"), 1, |r| {
        matches!(r, RejectReason::FallThrough)
    });
}

#[test]
fn jumps_out_of_range_or_into_ld_imm64() {
    rejected_at(&xdp("r0 = 0\ngoto +5\nexit"), 1, |r| {
        matches!(r, RejectReason::JumpOutOfRange { target: 7 })
    });
    rejected_at(&xdp("goto +1\nr1 = 0x100000000 ll\nr0 = 0\nexit"), 0, |r| {
        matches!(r, RejectReason::Invalid { .. })
    });
}

#[test]
fn invalid_opcode() {
    let prog = Program::new(
        vec![
            verifier_analysis::insn::Insn::new(0xff, 0, 0, 0, 0),
            verifier_analysis::insn::Insn::new(0x95, 0, 0, 0, 0),
        ],
        Abi::Xdp,
        vec![],
    );
    let a = analyze(&prog, &Platform::xdp());
    rejected_at(&a, 0, |r| matches!(r, RejectReason::Invalid { .. }));
    assert_eq!(
        a.packet_writes,
        AccessSet::Unbounded,
        "a rejected program has unbounded sets"
    );
}

#[test]
fn writes_through_read_only_pointers() {
    rejected_at(&xdp("*(u32 *)(r1 + 0) = 0\nr0 = 0\nexit"), 0, |r| {
        matches!(r, RejectReason::ReadOnlyWrite { .. })
    });
    rejected_at(&xdp("r10 = 0\nr0 = 0\nexit"), 0, |r| {
        matches!(r, RejectReason::ReadOnlyWrite { .. })
    });
    let a = xdp("r1 = map[1][0]+0 ll\n*(u32 *)(r1 + 0) = 1\nr0 = 0\nexit");
    rejected_at(&a, 2, |r| matches!(r, RejectReason::ReadOnlyWrite { .. }));
    // Reading the read-only map is fine and not stateful.
    let a = xdp("r1 = map[1][0]+4 ll\nr0 = *(u32 *)(r1 + 0)\nexit");
    accepted(&a);
    assert!(!a.stateful);
}

#[test]
fn unsafe_pointer_arithmetic() {
    rejected_at(&xdp("r1 *= 2\nr0 = 0\nexit"), 0, |r| {
        matches!(r, RejectReason::PointerArithmetic { .. })
    });
    rejected_at(&xdp(&format!("{LOOKUP}\nr0 += 4\nr0 = 0\nexit")), 6, |r| {
        matches!(r, RejectReason::PointerArithmetic { .. })
    });
    // Adding an unbounded scalar to a packet pointer.
    let a = xdp(&format!("{PROLOGUE}\ncall 5\nr1 += r0\nr0 = 0\nexit"));
    rejected_at(&a, 3, |r| {
        matches!(r, RejectReason::UninitRegister { reg: 1 })
    });
    let a = xdp(&format!(
        "{PROLOGUE}\nr6 = r1\ncall 5\nr6 += r0\nr0 = 0\nexit"
    ));
    rejected_at(&a, 4, |r| {
        matches!(r, RejectReason::PointerArithmetic { .. })
    });
    rejected_at(&xdp("w1 += 1\nr0 = 0\nexit"), 0, |r| {
        matches!(r, RejectReason::PointerArithmetic { .. })
    });
    rejected_at(
        &xdp(&format!(
            "{PROLOGUE}\nr2 += 1\nr0 = 0\nr3 = r1\nr3 += r0\nr1 += r2\nexit"
        )),
        6,
        |r| matches!(r, RejectReason::PointerArithmetic { .. }),
    );
}

#[test]
fn pointer_leaks() {
    // Returning a pointer.
    rejected_at(&xdp("r0 = r1\nexit"), 1, |r| {
        matches!(r, RejectReason::PointerLeak { .. })
    });
    // Storing a pointer into the packet.
    let a = xdp(&format!(
        "{PROLOGUE}
        r3 = r1
        r3 += 8
        if r3 > r2 goto out
        *(u64 *)(r1 + 0) = r1
    out:
        r0 = 0
        exit"
    ));
    rejected_at(&a, 5, |r| matches!(r, RejectReason::PointerLeak { .. }));
    // Storing a pointer into a map value.
    let a = xdp(&format!(
        "{LOOKUP}\nif r0 == 0 goto out\n*(u64 *)(r0 + 0) = r10\nout:\nr0 = 0\nexit"
    ));
    rejected_at(&a, 7, |r| matches!(r, RejectReason::PointerLeak { .. }));
    // A 32-bit copy of a pointer and a partial spill.
    rejected_at(&xdp("w0 = w1\nexit"), 0, |r| {
        matches!(r, RejectReason::PointerLeak { .. })
    });
    rejected_at(&xdp("*(u32 *)(r10 - 8) = r1\nr0 = 0\nexit"), 0, |r| {
        matches!(r, RejectReason::PointerLeak { .. })
    });
    // Reading half of a spilled pointer.
    let a = xdp("*(u64 *)(r10 - 8) = r1\nr0 = *(u32 *)(r10 - 8)\nexit");
    rejected_at(&a, 1, |r| matches!(r, RejectReason::PointerLeak { .. }));
}

#[test]
fn pointer_comparisons() {
    rejected_at(&xdp("if r1 > 5 goto +0\nr0 = 0\nexit"), 0, |r| {
        matches!(r, RejectReason::PointerComparison { .. })
    });
    rejected_at(
        &xdp(&format!("{PROLOGUE}\nif r1 > r10 goto +0\nr0 = 0\nexit")),
        2,
        |r| matches!(r, RejectReason::PointerComparison { .. }),
    );
    // A NULL check is fine.
    accepted(&xdp(&format!("{LOOKUP}\nif r0 != 0 goto +0\nr0 = 0\nexit")));
}

#[test]
fn stale_packet_pointer_after_adjust_head() {
    let a = xdp("r6 = r1
        r7 = *(u32 *)(r1 + 0)
        r2 = 4
        call 44
        r0 = *(u8 *)(r7 + 0)
        exit");
    rejected_at(&a, 4, |r| {
        matches!(r, RejectReason::StalePointer { reg: 7 })
    });
}

#[test]
fn division_by_zero_is_defined() {
    let a = xdp("r0 = 5\nr1 = 0\nr0 /= r1\nr2 = 7\nr2 %= r1\nr0 += r2\nexit");
    accepted(&a);
    assert_eq!(a.return_value.unwrap().as_const(), Some(7));
}

#[test]
fn recursion_and_call_depth() {
    rejected_at(&xdp("call f\nexit\nf:\ncall f\nr0 = 0\nexit"), 2, |r| {
        matches!(r, RejectReason::Call { .. })
    });
}

#[test]
fn mixed_types_on_merged_paths() {
    let a = xdp(&format!(
        "{PROLOGUE}
        r3 = *(u32 *)(r10 - 0)
        exit"
    ));
    rejected_at(&a, 2, |r| matches!(r, RejectReason::OutOfBounds { .. }));
    let a = xdp("r0 = 0
        r3 = r1
        call 7
        if r0 > 5 goto +1
        r3 = 1
        r0 = *(u32 *)(r3 + 0)
        exit");
    rejected_at(&a, 5, |r| {
        matches!(
            r,
            RejectReason::UninitRegister { reg: 3 } | RejectReason::MixedTypes { reg: 3 }
        )
    });
}

// ---------------------------------------------------------------- precision

/// Every comparison form that proves `data + 34 <= data_end`, with the access in the branch
/// where it holds: (condition, whether the safe side is the jump target).
const SAFE_FORMS: &[(&str, bool)] = &[
    ("if r3 > r2 goto L", false),
    ("if r2 < r3 goto L", false),
    ("if r3 <= r2 goto L", true),
    ("if r2 >= r3 goto L", true),
    ("if r3 >= r2 goto L", false),
    ("if r2 <= r3 goto L", false),
    ("if r3 < r2 goto L", true),
    ("if r2 > r3 goto L", true),
];

fn ttl_program(cond: &str, safe_is_target: bool, swap_branches: bool) -> String {
    let write = "r4 = *(u8 *)(r1 + 22)\nr4 += -1\n*(u8 *)(r1 + 22) = r4";
    let (fall, target) = if safe_is_target != swap_branches {
        ("", write)
    } else {
        (write, "")
    };
    format!(
        "{PROLOGUE}
        r3 = r1
        r3 += 34
        {}
        {fall}
        r0 = 2
        exit
    L:
        {target}
        r0 = 1
        exit",
        cond
    )
}

#[test]
fn every_comparison_form_and_operand_order_bounds_the_packet() {
    for &(cond, safe_is_target) in SAFE_FORMS {
        let a = xdp(&ttl_program(cond, safe_is_target, false));
        assert_eq!(a.verdict, Verdict::Accept, "{cond}");
        assert_eq!(a.packet_writes, ranges(&[(22, 23)]), "{cond}");
        // The same access in the other branch is rejected.
        let b = xdp(&ttl_program(cond, safe_is_target, true));
        assert!(
            matches!(
                b.verdict,
                Verdict::Reject {
                    reason: RejectReason::OutOfBounds { .. },
                    ..
                }
            ),
            "{cond}"
        );
    }
}

#[test]
fn ubpf_length_comparisons_bound_the_packet() {
    for (cond, safe_is_target) in [
        ("if r2 < 34 goto L", false),
        ("if r2 >= 34 goto L", true),
        ("if r2 > 33 goto L", true),
        ("if r2 <= 33 goto L", false),
        ("if r2 s< 34 goto L", false),
        ("if w2 < 34 goto L", false),
    ] {
        let write = "*(u8 *)(r1 + 22) = 7";
        let (fall, target) = if safe_is_target {
            ("", write)
        } else {
            (write, "")
        };
        let src = format!("{cond}\n{fall}\nr0 = 1\nexit\nL:\n{target}\nr0 = 0\nexit");
        let a = run(Abi::Ubpf, &src);
        assert_eq!(a.verdict, Verdict::Accept, "{cond}");
        assert_eq!(a.packet_writes, ranges(&[(22, 23)]), "{cond}");
    }
    // The length copied, offset and compared, and a packet-end pointer built from it.
    let a = run(
        Abi::Ubpf,
        "r3 = r2
        r3 += -14
        if r3 < 20 goto drop
        r4 = r1
        r4 += r2
        r5 = r1
        r5 += 40
        if r5 > r4 goto drop
        r0 = *(u32 *)(r1 + 36)
        r0 &= 1
        exit
    drop:
        r0 = 0
        exit",
    );
    accepted(&a);
    assert_eq!(a.packet_reads, ranges(&[(36, 40)]));
    // Without a length check the uBPF packet is empty.
    rejected_at(&run(Abi::Ubpf, "r0 = *(u8 *)(r1 + 0)\nexit"), 0, |r| {
        matches!(r, RejectReason::OutOfBounds { .. })
    });
}

/// A UDP payload write after a variable IPv4 header length.
fn udp_payload_program(check_ihl: &str) -> String {
    format!(
        "{PROLOGUE}
        r3 = r1
        r3 += 34
        if r3 > r2 goto out
        r4 = *(u8 *)(r1 + 23)
        if r4 != 17 goto out
        r5 = *(u8 *)(r1 + 14)
        r5 &= 15
        r5 <<= 2
        r8 = r5
        {check_ihl}
        r6 = r1
        r6 += 14
        r6 += r5
        r7 = r6
        r7 += 12
        if r7 > r2 goto out
        *(u32 *)(r6 + 8) = 0
    out:
        r0 = 2
        exit"
    )
}

#[test]
fn udp_payload_write_after_variable_ihl_excludes_headers() {
    let a = xdp(&udp_payload_program("if r5 < 20 goto out"));
    accepted(&a);
    assert_eq!(a.packet_writes, ranges(&[(42, 86)]));
    assert!(
        !a.packet_writes.intersects(0, 42),
        "no Ethernet, IPv4 or UDP header byte is written"
    );
    assert_eq!(a.packet_reads, ranges(&[(14, 15), (23, 24)]));
    // The check on a copy of the header length is just as good (linked scalars).
    let a = xdp(&udp_payload_program("if r8 < 20 goto out"));
    accepted(&a);
    assert_eq!(a.packet_writes, ranges(&[(42, 86)]));
    // Without it, the write may land in the IPv4 header (IHL < 5 is possible in the bytes).
    let a = xdp(&udp_payload_program(""));
    accepted(&a);
    assert_eq!(a.packet_writes, ranges(&[(22, 86)]));
}

#[test]
fn spills_and_fills_keep_types() {
    let a = xdp(&format!(
        "{PROLOGUE}
        r3 = r1
        r3 += 34
        if r3 > r2 goto out
        *(u64 *)(r10 - 8) = r1
        r6 = *(u8 *)(r1 + 14)
        r6 &= 7
        *(u64 *)(r10 - 16) = r6
        call 5
        r1 = *(u64 *)(r10 - 8)
        r6 = *(u64 *)(r10 - 16)
        r1 += r6
        *(u8 *)(r1 + 20) = 0
    out:
        r0 = 2
        exit"
    ));
    accepted(&a);
    assert_eq!(a.packet_writes, ranges(&[(20, 28)]));
    assert!(a.stateful, "ktime_get_ns makes it stateful");
    // 32-bit spill of a scalar, read back with bounds.
    let a = xdp("r1 = 5\n*(u32 *)(r10 - 4) = r1\nr0 = *(u32 *)(r10 - 4)\nexit");
    accepted(&a);
    assert_eq!(a.return_value.unwrap().as_const(), Some(5));
}

#[test]
fn stateful_results_helpers_and_maps() {
    // Lookup and read only: not stateful.
    let a = xdp(&format!(
        "{LOOKUP}\nif r0 == 0 goto out\nr0 = *(u64 *)(r0 + 8)\nexit\nout:\nr0 = 0\nexit"
    ));
    accepted(&a);
    assert!(!a.stateful);
    assert_eq!(a.maps_used, vec![0]);
    assert_eq!(
        a.helpers_used
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>(),
        ["map_lookup_elem"]
    );
    // Writing through the value pointer: stateful.
    let a = xdp(&format!(
        "{LOOKUP}\nif r0 == 0 goto out\nr1 = 1\nlock *(u64 *)(r0 + 8) += r1\nout:\nr0 = 0\nexit"
    ));
    accepted(&a);
    assert!(a.stateful);
    // Random numbers: stateful.
    let a = xdp("call 7\nr0 &= 3\nexit");
    accepted(&a);
    assert!(a.stateful);
    assert_eq!(
        (a.return_value.unwrap().umin, a.return_value.unwrap().umax),
        (0, 3)
    );
}

#[test]
fn ctx_accesses_are_listed_for_the_loader() {
    let a = xdp("r2 = *(u32 *)(r1 + 4)\nr3 = *(u32 *)(r1 + 0)\nr0 = *(u32 *)(r1 + 12)\nr0 = *(u8 *)(r1 + 16)\nexit");
    accepted(&a);
    assert!(
        a.reads_metadata(),
        "ingress_ifindex and rx_queue_index are metadata"
    );
    let got: Vec<(usize, i16, u8)> = a
        .ctx_accesses
        .iter()
        .map(|c| (c.insn, c.offset, c.size))
        .collect();
    assert_eq!(got, [(0, 4, 4), (1, 0, 4), (2, 12, 4), (3, 16, 1)]);
    let regs = a.states[2].unwrap();
    assert!(
        matches!(regs[3], verifier_analysis::domain::Value::Ptr(p) if p.region == verifier_analysis::domain::Region::Packet)
    );
}

#[test]
fn bpf_to_bpf_calls_are_analysed_in_context() {
    // The callee checks bounds for its caller's packet pointer and writes byte 15.
    let a = xdp(&format!(
        "{PROLOGUE}
        r6 = r1
        call setbyte
        r0 = 2
        exit
    setbyte:
        r3 = r1
        r3 += 16
        if r3 > r2 goto ret
        *(u8 *)(r1 + 15) = 1
    ret:
        r0 = 0
        exit"
    ));
    accepted(&a);
    assert_eq!(a.packet_writes, ranges(&[(15, 16)]));
    // A callee writing its caller's stack through a pointer argument.
    let a = xdp("r1 = r10
        r1 += -8
        call f
        r0 = *(u64 *)(r10 - 8)
        exit
    f:
        *(u64 *)(r1 + 0) = 3
        r0 = 0
        exit");
    accepted(&a);
    assert_eq!(a.return_value.unwrap().as_const(), Some(3));
}

#[test]
fn resizing_makes_offsets_unbounded() {
    let a = xdp("r6 = r1
        r2 = -4
        call 44
        r2 = *(u32 *)(r6 + 4)
        r1 = *(u32 *)(r6 + 0)
        r3 = r1
        r3 += 1
        if r3 > r2 goto out
        *(u8 *)(r1 + 0) = 0
    out:
        r0 = 2
        exit");
    accepted(&a);
    assert!(a.may_resize);
    assert_eq!(a.packet_writes, AccessSet::Unbounded);
}

#[test]
fn checksum_helpers_record_their_field() {
    let a = xdp("r2 = 24\nr3 = 0\nr4 = 0\nr5 = 2\ncall 10\nr0 = 2\nexit");
    accepted(&a);
    assert_eq!(a.packet_writes, ranges(&[(24, 26)]));
}

// ---------------------------------------------------------------- reports

#[test]
fn report_names_fields_and_shows_context() {
    use verifier_analysis::report::{render_text, Report};
    let src = format!(
        "{PROLOGUE}
        r3 = r1
        r3 += 34
        if r3 > r2 goto out
        r4 = *(u8 *)(r1 + 22)
        r4 += -1
        *(u8 *)(r1 + 22) = r4
        *(u16 *)(r1 + 24) = 0
    out:
        r0 = 2
        exit"
    );
    let prog = Program::new(assemble(&src).unwrap(), Abi::Xdp, maps());
    let a = analyze(&prog, &Platform::xdp());
    let text = render_text(&prog, &a);
    assert!(text.contains("verdict: ACCEPT"), "{text}");
    assert!(text.contains("writes ipv4.ttl, ipv4.checksum"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&Report::new(&prog, &a).to_json()).unwrap();
    assert_eq!(
        json["writes_fields_udp"],
        serde_json::json!(["ipv4.ttl", "ipv4.checksum"])
    );
    assert_eq!(json["packet_writes"]["Ranges"][0]["start"], 22);

    let bad = Program::new(
        assemble(&format!(
            "{PROLOGUE}\nr3 = 1\nr4 = 2\nr0 = *(u8 *)(r1 + 0)\nr5 = 3\nexit"
        ))
        .unwrap(),
        Abi::Xdp,
        vec![],
    );
    let a = analyze(&bad, &Platform::xdp());
    let text = render_text(&bad, &a);
    assert!(text.contains("REJECT at instruction 4"), "{text}");
    assert!(text.contains(">    4: r0 = *(u8 *)(r1 + 0)"), "{text}");
    assert!(text.contains("     1: r1 = *(u32 *)(r1 + 0)"), "{text}");
    // The whole analysis serialises too.
    serde_json::to_string(&a).unwrap();
}

#[test]
fn lookups_in_different_maps_merge() {
    // Two lookups whose results meet before a shared tail (clang merges such tails).
    let mut m = maps();
    m.push(MapDescr::new("small", MapType::Array, 4, 8, 1));
    let src = "
        *(u32 *)(r10 - 4) = 0
        r2 = r10
        r2 += -4
        call 7
        if r0 > 5 goto other
        r1 = map[0] ll
        r2 = r10
        r2 += -4
        call 1
        if r0 == 0 goto out
        goto count
    other:
        r1 = map[2] ll
        r2 = r10
        r2 += -4
        call 1
        if r0 == 0 goto out
    count:
        r1 = *(u64 *)(r0 + 0)
        r1 += 1
        *(u64 *)(r0 + 0) = r1
    out:
        r0 = 2
        exit";
    let prog = Program::new(assemble(src).unwrap(), Abi::Xdp, m.clone());
    let a = analyze(&prog, &Platform::xdp());
    accepted(&a);
    assert_eq!(a.maps_used, vec![0, 2]);
    // The smaller value bounds accesses through the merged pointer.
    let src = src.replace("*(u64 *)(r0 + 0) = r1", "*(u64 *)(r0 + 8) = r1");
    let prog = Program::new(assemble(&src).unwrap(), Abi::Xdp, m);
    rejected_at(&analyze(&prog, &Platform::xdp()), 20, |r| {
        matches!(r, RejectReason::OutOfBounds { limit: 8, .. })
    });
}

#[test]
fn joins_never_merge_unrelated_packet_bases() {
    // r6 and r9 have different variable offsets; after the join, a bounds check through r9
    // must not prove anything about r6.
    let a = xdp(&format!(
        "{PROLOGUE}
        r3 = r1
        r3 += 20
        if r3 > r2 goto out
        r5 = *(u8 *)(r1 + 0)
        r5 &= 15
        r6 = r1
        r6 += r5
        r7 = *(u8 *)(r1 + 1)
        r7 &= 15
        r0 = *(u8 *)(r1 + 2)
        if r0 > 100 goto b
        r9 = r1
        r9 += r7
        goto j
    b:
        r9 = r1
        r9 += r7
    j:
        r3 = r9
        r3 += 30
        if r3 > r2 goto out
        r0 = *(u8 *)(r9 + 29)
        r0 = *(u8 *)(r6 + 29)
        exit
    out:
        r0 = 0
        exit"
    ));
    rejected_at(&a, 22, |r| matches!(r, RejectReason::OutOfBounds { .. }));
}

#[test]
fn length_minus_constant_may_wrap() {
    // `len - 14 >= 20` as unsigned 64-bit does not prove len >= 34: a short packet wraps.
    let a = run(Abi::Ubpf, "r3 = r2\nr3 += -14\nif r3 < 20 goto drop\nr0 = *(u8 *)(r1 + 33)\nexit\ndrop:\nr0 = 0\nexit");
    rejected_at(&a, 3, |r| matches!(r, RejectReason::OutOfBounds { .. }));
    // A signed comparison does prove it.
    let a = run(Abi::Ubpf, "r3 = r2\nr3 += -14\nif r3 s< 20 goto drop\nr0 = *(u8 *)(r1 + 33)\nexit\ndrop:\nr0 = 0\nexit");
    accepted(&a);
}

#[test]
fn register_states_render_like_a_verifier_log() {
    let prog = Program::new(
        assemble(&udp_payload_program("if r5 < 20 goto out")).unwrap(),
        Abi::Xdp,
        vec![],
    );
    let a = analyze(&prog, &Platform::xdp());
    let text = verifier_analysis::report::render_states(&prog, &a);
    // Before the payload store: r6 is the UDP header at a variable offset, checked for 26 bytes.
    let line = text
        .lines()
        .find(|l| l.contains("*(u32 *)(r6 + 8) = 0"))
        .unwrap();
    assert!(line.contains("r6=pkt(off=14,var=[20,60],r=26)"), "{line}");
    assert!(line.contains("r2=pkt_end"), "{line}");
}

#[test]
fn large_programs_are_analysed_without_deep_recursion() {
    let mut src = String::from("r0 = 0\n");
    for _ in 0..100_000 {
        src.push_str("r0 += 1\n");
    }
    src.push_str("exit\n");
    let a = xdp(&src);
    accepted(&a);
    assert_eq!(a.return_value.unwrap().as_const(), Some(100_000));
}
