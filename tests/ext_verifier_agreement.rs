//! Agreement between bpfswitch's verifier and the kernel's on every XDP object of the corpus
//! (`extensions/*.o` and `extensions/unsafe/*.o`): prints the matrix (both accept, both
//! reject, we accept and the kernel rejects, the kernel accepts and we reject) with each
//! side's reason, and requires that we never accept what the kernel rejects.
//!
//! The one expected disagreement is `unsafe/uninit_stack.o`: recent kernels let a privileged
//! loader (CAP_PERFMON) read uninitialised stack, so the kernel accepts it when these tests
//! run as root; bpfswitch refuses it, as the kernel does for unprivileged loaders.
//!
//! Needs `bpf()`; says SKIPPED loudly without it, or fails when `BPFSWITCH_REQUIRE_KERNEL=1`.

use bpfswitch::ext::kernel::{self, KernelVerdict};
use bpfswitch::ext::{ExtError, Extension, LoadOptions};
use std::path::{Path, PathBuf};

/// Objects where the kernel (privileged) may accept what we reject, with the reason.
const KERNEL_MORE_PERMISSIVE: &[(&str, &str)] = &[(
    "unsafe/uninit_stack.o",
    "privileged loaders may read uninitialised stack in the kernel",
)];

fn xdp_objects(dir: &Path, sub: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join(sub))
        .expect("extensions directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".o"))
        .map(|n| {
            if sub.is_empty() {
                n
            } else {
                format!("{sub}/{n}")
            }
        })
        .collect();
    v.sort();
    v
}

#[test]
fn our_verifier_never_accepts_what_the_kernel_rejects() {
    if let Err(e) = kernel::probe() {
        if std::env::var("BPFSWITCH_REQUIRE_KERNEL").is_ok_and(|v| v == "1") {
            panic!("BPFSWITCH_REQUIRE_KERNEL=1 but the kernel oracle is unavailable: {e}");
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED verifier agreement: the kernel oracle is unavailable: {e} ***\n"
        );
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("extensions");
    let objects: Vec<String> = xdp_objects(&dir, "")
        .into_iter()
        .chain(xdp_objects(&dir, "unsafe"))
        .collect();
    assert!(objects.len() >= 18, "corpus incomplete: {objects:?}");

    let mut matrix = [[0usize; 2]; 2]; // [ours accepts][kernel accepts]
    let mut problems = Vec::new();
    println!("{:<34} {:<8} {:<8} reasons", "object", "ours", "kernel");
    for rel in &objects {
        let path = dir.join(rel);
        let bytes = std::fs::read(&path).expect("object");
        let (ours, our_reason) = match Extension::load(rel, &bytes, &LoadOptions::default()) {
            Ok(_) => (true, String::new()),
            Err(ExtError::Rejected { insn, reason, .. }) => {
                (false, format!("insn {insn}: {reason}"))
            }
            Err(e) => panic!("{rel}: our load failed before verification: {e}"),
        };
        let verdict = kernel::kernel_verdict(&path, None).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let theirs = verdict == KernelVerdict::Accepted;
        matrix[ours as usize][theirs as usize] += 1;
        let word = |a: bool| if a { "accept" } else { "reject" };
        println!(
            "{rel:<34} {:<8} {:<8} {our_reason} | {}",
            word(ours),
            word(theirs),
            verdict.reason()
        );
        if ours && !theirs {
            problems.push(format!(
                "{rel}: we accept, the kernel rejects: {}",
                verdict.reason()
            ));
        }
        if !ours && theirs && !KERNEL_MORE_PERMISSIVE.iter().any(|(o, _)| o == rel) {
            problems.push(format!(
                "{rel}: the kernel accepts, we reject: {our_reason}"
            ));
        }
        let expect_safe = !rel.starts_with("unsafe/");
        if expect_safe != ours {
            problems.push(format!(
                "{rel}: expected our verifier to {}",
                word(expect_safe)
            ));
        }
    }
    println!(
        "\nagreement matrix ({} objects): both accept {}, both reject {}, we accept/kernel rejects {}, kernel accepts/we reject {}",
        objects.len(),
        matrix[1][1],
        matrix[0][0],
        matrix[1][0],
        matrix[0][1]
    );
    for (o, why) in KERNEL_MORE_PERMISSIVE {
        println!("  kernel accepts/we reject, expected: {o}: {why}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
