//! The extension corpus in the kernel: every XDP program in `extensions/` passes the kernel
//! verifier and, run with `BPF_PROG_TEST_RUN` on crafted packets, gives the expected verdict,
//! output bytes and map contents (the cases in `tests/ext_cases`); the unsafe programs are
//! refused with the expected reason; the uBPF programs are not kernel programs.
//!
//! These tests need `bpf()` (root or CAP_BPF). Without it they print a loud SKIPPED line and
//! pass, unless `BPFSWITCH_REQUIRE_KERNEL=1` is set (as CI does), in which case they fail.

mod ext_cases;

use bpfswitch::ext::kernel::{self, KernelError, KernelProgram, KernelVerdict, RunOptions};
use ext_cases::{pkt, ExtCase, Output, Rng, XDP_PASS};
use std::path::PathBuf;

/// Returns false (after saying why, loudly) when the kernel cannot be used.
fn kernel_available(test: &str) -> bool {
    match kernel::probe() {
        Ok(()) => true,
        Err(e) => {
            if std::env::var("BPFSWITCH_REQUIRE_KERNEL").is_ok_and(|v| v == "1") {
                panic!(
                    "{test}: BPFSWITCH_REQUIRE_KERNEL=1 but the kernel oracle is unavailable: {e}"
                );
            }
            ext_cases::skip_loudly(test, &format!("the kernel oracle is unavailable: {e}"));
            false
        }
    }
}

fn root(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn load(case: &ExtCase) -> KernelProgram {
    KernelProgram::load(&case.object_path(), Some(case.program))
        .unwrap_or_else(|e| panic!("{}: load failed: {e}", case.name))
}

fn run_in_kernel(case: &ExtCase) -> Result<(), Vec<String>> {
    let mut prog = load(case);
    ext_cases::run_case(case, &mut prog, |p, step| {
        let opts = RunOptions {
            repeat: 1,
            ingress_ifindex: step.ingress_ifindex,
        };
        p.run(&step.packet, &opts).map(|r| (r.retval, r.data_out))
    })
}

#[test]
fn every_xdp_extension_passes_the_kernel_verifier() {
    if !kernel_available("every_xdp_extension_passes_the_kernel_verifier") {
        return;
    }
    for obj in ext_cases::XDP_OBJECTS {
        match kernel::kernel_verdict(&root(obj), None) {
            Ok(KernelVerdict::Accepted) => {}
            Ok(KernelVerdict::Rejected { error, log }) => panic!("{obj}: rejected: {error}\n{log}"),
            Err(e) => panic!("{obj}: {e}"),
        }
    }
}

#[test]
fn unsafe_programs_are_rejected_with_the_expected_reason() {
    if !kernel_available("unsafe_programs_are_rejected_with_the_expected_reason") {
        return;
    }
    for (obj, expected) in ext_cases::UNSAFE_OBJECTS {
        let verdict =
            kernel::kernel_verdict(&root(obj), None).unwrap_or_else(|e| panic!("{obj}: {e}"));
        match (expected, &verdict) {
            (Some(reason), KernelVerdict::Rejected { log, .. }) => {
                assert!(
                    log.contains(reason),
                    "{obj}: rejected, but the log lacks `{reason}`:\n{log}"
                );
                eprintln!("{obj}: rejected: {}", verdict.reason());
            }
            (Some(_), KernelVerdict::Accepted) => {
                panic!("{obj}: the kernel accepted an unsafe program")
            }
            // Privileged loaders may read uninitialised stack (kernel >= 6.x): either verdict
            // is the kernel's to give; report it.
            (None, v) => eprintln!("{obj}: kernel verdict for a privileged loader: {v:?}"),
        }
    }
}

#[test]
fn ubpf_programs_are_not_kernel_programs() {
    if !kernel_available("ubpf_programs_are_not_kernel_programs") {
        return;
    }
    for obj in ext_cases::UBPF_OBJECTS {
        match KernelProgram::load(&root(obj), None) {
            Err(KernelError::NoProgram { .. }) | Err(KernelError::Rejected { .. }) => {}
            Err(e) => panic!("{obj}: unexpected error: {e}"),
            Ok(_) => panic!("{obj}: a uBPF program loaded as XDP"),
        }
    }
}

#[test]
fn legacy_map_definitions_are_refused_by_libbpf_with_a_clear_error() {
    if !kernel_available("legacy_map_definitions_are_refused_by_libbpf_with_a_clear_error") {
        return;
    }
    for obj in ext_cases::LEGACY_OBJECTS {
        match KernelProgram::load(&root(obj), None) {
            Err(e @ KernelError::Open { .. }) => {
                assert!(
                    e.to_string().contains("legacy map definitions"),
                    "{obj}: {e}"
                )
            }
            Err(e) => panic!("{obj}: unexpected error: {e}"),
            Ok(_) => panic!("{obj}: libbpf loaded legacy map definitions"),
        }
    }
}

#[test]
fn every_case_gives_the_expected_verdict_output_and_maps() {
    if !kernel_available("every_case_gives_the_expected_verdict_output_and_maps") {
        return;
    }
    let cases = ext_cases::xdp_cases();
    let mut failures = Vec::new();
    let mut steps = 0;
    for case in &cases {
        steps += case.steps.len();
        if let Err(e) = run_in_kernel(case) {
            failures.extend(e);
        }
    }
    eprintln!("{} cases, {steps} packets run in the kernel", cases.len());
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_xdp_object_has_cases() {
    let cases = ext_cases::xdp_cases();
    for obj in ext_cases::XDP_OBJECTS {
        assert!(
            cases.iter().any(|c| c.object == *obj),
            "{obj} has no test case"
        );
    }
}

/// Programs that rewrite headers keep every checksum valid on random packets (checked by a
/// from-scratch verification, not against an expected frame).
#[test]
fn rewriting_programs_keep_checksums_valid_on_random_packets() {
    if !kernel_available("rewriting_programs_keep_checksums_valid_on_random_packets") {
        return;
    }
    let ttl = KernelProgram::load(&root("extensions/ttl_dec.o"), None).expect("ttl_dec loads");
    let nat_bench =
        KernelProgram::load(&root("extensions/nat_bench.o"), None).expect("nat_bench loads");
    let mut rng = Rng(0xc0ffee);
    for _ in 0..500 {
        let p = rng.ip4();
        let frame = p.frame();
        for (name, prog) in [("ttl_dec", &ttl), ("nat_bench", &nat_bench)] {
            let r = prog.run(&frame, &RunOptions::default()).expect("test run");
            assert_eq!(r.retval, XDP_PASS, "{name}");
            assert_eq!(r.data_out.len(), frame.len(), "{name}");
            pkt::verify_checksums(&r.data_out).unwrap_or_else(|e| {
                panic!(
                    "{name}: {e}\n in  {}\n out {}",
                    ext_cases::hex(&frame),
                    ext_cases::hex(&r.data_out)
                )
            });
        }
    }
}

/// payload_mask writes nothing outside the UDP payload, on random UDP packets.
#[test]
fn payload_mask_writes_only_payload_bytes() {
    if !kernel_available("payload_mask_writes_only_payload_bytes") {
        return;
    }
    let prog =
        KernelProgram::load(&root("extensions/payload_mask.o"), None).expect("payload_mask loads");
    prog.map_update(
        "mask_config",
        &0u32.to_le_bytes(),
        &[16, 0, 0, 0, 0xa5, 0, 0, 0],
    )
    .expect("config");
    let mut rng = Rng(0xbeef);
    for _ in 0..300 {
        let n = (rng.next() % 40) as usize;
        let payload = rng.bytes(n);
        let p = pkt::Ip4::new(
            [10, 0, 0, 1],
            [10, 1, 0, 1],
            pkt::L4::Udp {
                sport: 1,
                dport: 2,
                payload,
                csum: false,
            },
        );
        let frame = p.frame();
        let r = prog.run(&frame, &RunOptions::default()).expect("test run");
        assert_eq!(r.data_out.len(), frame.len());
        for (i, (a, b)) in frame.iter().zip(&r.data_out).enumerate() {
            if a != b {
                assert!(
                    (42..58).contains(&i),
                    "byte {i} changed outside the payload's first 16 bytes"
                );
                assert_eq!(*b, 0xa5);
            }
        }
    }
}

#[test]
fn map_errors_name_the_problem() {
    if !kernel_available("map_errors_name_the_problem") {
        return;
    }
    let prog = KernelProgram::load(&root("extensions/fw_stateless.o"), None).expect("loads");
    let names: Vec<String> = prog.maps().into_iter().map(|m| m.name).collect();
    assert!(names.iter().any(|n| n == "blocked_src"), "{names:?}");
    let e = prog
        .map_update("blocked_src", &[1, 2, 3], &[0; 8])
        .unwrap_err()
        .to_string();
    assert!(e.contains("key is 3 bytes") && e.contains('4'), "{e}");
    let e = prog.map_lookup("nope", &[0; 4]).unwrap_err().to_string();
    assert!(
        e.contains("no map `nope`") && e.contains("blocked_src"),
        "{e}"
    );
    prog.map_update("blocked_src", &[1, 2, 3, 4], &7u64.to_le_bytes())
        .expect("update");
    assert_eq!(
        prog.map_dump("blocked_src").expect("dump"),
        vec![(vec![1, 2, 3, 4], 7u64.to_le_bytes().to_vec())]
    );
    prog.map_delete("blocked_src", &[1, 2, 3, 4])
        .expect("delete");
    prog.map_delete("blocked_src", &[1, 2, 3, 4])
        .expect("deleting an absent key is fine");
    assert_eq!(
        prog.map_lookup("blocked_src", &[1, 2, 3, 4])
            .expect("lookup"),
        None
    );
    let e = KernelProgram::load(&root("extensions/fw_stateless.o"), Some("nope"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("fw_stateless (xdp)"), "{e}");
}

#[test]
fn repeat_runs_report_a_duration() {
    if !kernel_available("repeat_runs_report_a_duration") {
        return;
    }
    let prog = KernelProgram::load(&root("extensions/bench_filter.o"), None).expect("loads");
    assert!(
        prog.insn_count() >= 20 && prog.insn_count() <= 40,
        "bench_filter has {} instructions",
        prog.insn_count()
    );
    let frame = ext_cases::bench_frame(1).frame();
    let r = prog
        .run(
            &frame,
            &RunOptions {
                repeat: 1000,
                ingress_ifindex: None,
            },
        )
        .expect("run");
    assert_eq!(r.retval, 1);
    assert!(
        r.duration.as_nanos() > 0 && r.duration.as_micros() < 100,
        "{:?}",
        r.duration
    );
    assert_eq!(r.data_out, frame);
    let e = prog
        .run(&frame[..13], &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("13 bytes") && e.contains("at least 14"), "{e}");
}

#[test]
fn outputs_are_unchanged_where_the_case_says_so() {
    // The cases are data: make sure an `Unchanged` step really compares with the input, and
    // that no case expects a frame identical to its input via `Bytes` by accident of
    // construction (which would make a no-op program pass).
    for case in ext_cases::xdp_cases() {
        for s in &case.steps {
            if let Output::Bytes(b) = &s.output {
                assert_ne!(
                    b, &s.packet,
                    "{}: step `{}` expects its input; use Output::Unchanged",
                    case.name, s.what
                );
            }
        }
    }
}

/// The switch's XDP context layout (`verifier_analysis::platform::XDP_CTX_FIELDS`, shared by
/// the verifier and the runtime) is the `struct xdp_md` the extensions were compiled against,
/// as recorded in their BTF. Needs no kernel.
#[test]
fn the_context_layout_matches_the_extensions_btf() {
    use libbpf_rs::btf::types::{MemberAttr, Struct};
    use libbpf_rs::btf::HasSize;
    use verifier_analysis::platform::{XDP_CTX_FIELDS, XDP_MD_SIZE};

    for obj in ext_cases::XDP_OBJECTS {
        let btf =
            libbpf_rs::Btf::from_path(root(obj)).unwrap_or_else(|e| panic!("{obj}: BTF: {e}"));
        let md: Struct<'_> = btf
            .type_by_name("xdp_md")
            .unwrap_or_else(|| panic!("{obj}: no struct xdp_md in BTF"));
        assert_eq!(
            md.size(),
            XDP_MD_SIZE as usize,
            "{obj}: sizeof(struct xdp_md)"
        );
        let members: Vec<(String, u32)> = md
            .iter()
            .map(|m| {
                let bits = match m.attr {
                    MemberAttr::Normal { offset } | MemberAttr::BitField { offset, .. } => offset,
                };
                (
                    m.name
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    bits / 8,
                )
            })
            .collect();
        for f in XDP_CTX_FIELDS {
            let found = members.iter().find(|(n, _)| n == f.name);
            assert_eq!(
                found.map(|(_, off)| *off as i16),
                Some(f.xdp_offset),
                "{obj}: xdp_md.{} in {members:?}",
                f.name
            );
        }
        assert_eq!(
            members.len(),
            XDP_CTX_FIELDS.len(),
            "{obj}: xdp_md has fields the platform does not describe: {members:?}"
        );
    }
}
