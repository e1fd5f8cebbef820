//! Kernel-oracle differential: every XDP extension, with the same map preloads, runs the same
//! packets in the kernel (`BPF_PROG_TEST_RUN` through `bpfswitch::ext::kernel`) and in the
//! switch's runtime (interpreter, JIT and cranelift), and must give the same return code and output
//! bytes on each packet, and the same map contents at the end.
//!
//! The packets are each case's own steps followed by seeded mutations of them (bytes flipped
//! anywhere, header fields such as the EtherType, IHL, protocol and fragment offset set to
//! random values, truncations), so the comparison also covers the paths the cases do not
//! name. Maps holding time stamps are compared by key only.
//!
//! Needs `bpf()`; says SKIPPED loudly without it, or fails when `BPFSWITCH_REQUIRE_KERNEL=1`.

mod ext_cases;

use bpfswitch::ext::kernel::{self, KernelProgram, RunOptions};
use bpfswitch::ext::{ExecTier, ExtError, Extension, LoadOptions, XdpBuf};
use ext_cases::{hex, ExtCase, Rng};

/// Random packets per case beyond its own steps.
const MUTANTS_PER_CASE: usize = 150;

/// Maps whose values hold `bpf_ktime_get_ns()` stamps, which differ between the two runs.
const TIME_STAMPED_MAPS: &[&str] = &["rl_buckets", "port_windows"];

fn kernel_available() -> bool {
    match kernel::probe() {
        Ok(()) => true,
        Err(e) => {
            if std::env::var("BPFSWITCH_REQUIRE_KERNEL").is_ok_and(|v| v == "1") {
                panic!("BPFSWITCH_REQUIRE_KERNEL=1 but the kernel oracle is unavailable: {e}");
            }
            ext_cases::skip_loudly(
                "kernel differential",
                &format!("the kernel oracle is unavailable: {e}"),
            );
            false
        }
    }
}

/// Seeded mutations of `seed`: one or more bytes flipped, a header field randomised, or the
/// frame truncated (never below the 14 bytes the kernel's test runs require).
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut p = seed.to_vec();
    match rng.next() % 6 {
        0 => {
            for _ in 0..1 + rng.next() % 3 {
                let i = (rng.next() as usize) % p.len();
                p[i] ^= 1 << (rng.next() % 8);
            }
        }
        1 if p.len() > 15 => {
            let n = 14 + (rng.next() as usize) % (p.len() - 14);
            p.truncate(n);
        }
        2 if p.len() > 14 => p[14] = 0x40 | (rng.next() % 16) as u8, // IHL
        3 if p.len() > 23 => p[23] = [1u8, 6, 17, rng.next() as u8][(rng.next() % 4) as usize],
        4 if p.len() > 21 => {
            let frag = (rng.next() as u16) & 0x3fff;
            p[20..22].copy_from_slice(&frag.to_be_bytes());
        }
        _ => {
            let i = (rng.next() as usize) % p.len();
            p[i] = rng.next() as u8;
        }
    }
    p
}

fn switch_load(case: &ExtCase) -> Extension {
    let bytes = std::fs::read(case.object_path()).expect("object readable");
    let opts = LoadOptions {
        section: Some(case.program.to_string()),
        ..Default::default()
    };
    Extension::load(case.name, &bytes, &opts)
        .unwrap_or_else(|e| panic!("{}: switch load: {e}", case.name))
}

/// Why the runtime refuses to run the case's program on `tier`, if it does (asked with a
/// throwaway load).
fn tier_refusal(case: &ExtCase, tier: ExecTier) -> Option<String> {
    let ext = switch_load(case);
    let mut buf = XdpBuf::new(&case.steps[0].packet);
    match ext.run_on(tier, &mut buf, 1, None) {
        Err(e @ ExtError::TierRefused { .. }) => Some(e.to_string()),
        _ => None,
    }
}

/// Runs one case on the kernel and on the switch (one tier); returns the mismatches.
fn differential(case: &ExtCase, tier: ExecTier, seed: u64) -> Vec<String> {
    let mut errors = Vec::new();
    let kern = KernelProgram::load(&case.object_path(), Some(case.program))
        .unwrap_or_else(|e| panic!("{}: kernel load: {e}", case.name));
    let sw = switch_load(case);
    for e in &case.preload {
        kern.map_update(e.map, &e.key, &e.value)
            .expect("kernel preload");
        sw.map(e.map)
            .expect("switch map")
            .update(&e.key, &e.value, 0)
            .expect("switch preload");
    }
    let mut rng = Rng(seed);
    let mut packets: Vec<(Vec<u8>, Option<u32>)> = case
        .steps
        .iter()
        .map(|s| (s.packet.clone(), s.ingress_ifindex))
        .collect();
    for _ in 0..MUTANTS_PER_CASE {
        let s = &case.steps[(rng.next() as usize) % case.steps.len()];
        packets.push((mutate(&mut rng, &s.packet), s.ingress_ifindex));
    }
    for (i, (packet, ifindex)) in packets.iter().enumerate() {
        let k = kern
            .run(
                packet,
                &RunOptions {
                    repeat: 1,
                    ingress_ifindex: *ifindex,
                },
            )
            .unwrap_or_else(|e| panic!("{}: kernel run: {e}", case.name));
        let mut buf = XdpBuf::new(packet);
        let s = sw
            .run_on(tier, &mut buf, ifindex.unwrap_or(1), None)
            .unwrap_or_else(|e| panic!("{}: switch run: {e}", case.name));
        if let Some(fault) = &s.fault {
            errors.push(format!(
                "{} packet {i}: switch faulted: {fault}\n  in {}",
                case.name,
                hex(packet)
            ));
            continue;
        }
        if k.retval as u64 != s.retcode || k.data_out != buf.data() {
            errors.push(format!(
                "{} packet {i}: kernel {} / switch {}\n  in     {}\n  kernel {}\n  switch {}",
                case.name,
                k.retval,
                s.retcode,
                hex(packet),
                hex(&k.data_out),
                hex(buf.data())
            ));
        }
    }
    for m in kern.maps() {
        // libbpf names data-section maps `<object>.bss`; the switch names them `.bss`.
        let name = m.name.find('.').map_or(m.name.as_str(), |i| &m.name[i..]);
        let kd = kern.map_dump(name).expect("kernel dump");
        let mut sd = sw
            .map_dump(name)
            .unwrap_or_else(|e| panic!("{}: switch dump {name}: {e}", case.name));
        sd.sort();
        let same = if TIME_STAMPED_MAPS.contains(&name) {
            kd.iter().map(|e| &e.0).eq(sd.iter().map(|e| &e.0))
        } else {
            kd == sd
        };
        if !same {
            let show = |d: &[(Vec<u8>, Vec<u8>)]| {
                d.iter()
                    .filter(|(_, v)| v.iter().any(|b| *b != 0))
                    .take(8)
                    .map(|(k, v)| format!("{}={}", hex(k), hex(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            errors.push(format!(
                "{}: map {} differs ({} vs {} entries)\n  kernel {}\n  switch {}",
                case.name,
                name,
                kd.len(),
                sd.len(),
                show(&kd),
                show(&sd)
            ));
        }
    }
    errors
}

#[test]
fn kernel_and_switch_agree_on_every_xdp_extension() {
    if !kernel_available() {
        return;
    }
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut refused = 0;
    for (n, case) in ext_cases::xdp_cases().iter().enumerate() {
        for tier in [ExecTier::Interpreter, ExecTier::Jit, ExecTier::Cranelift] {
            if let Some(reason) = tier_refusal(case, tier) {
                eprintln!("NOTE: {} not run on {tier:?}: {reason}", case.name);
                refused += 1;
                continue;
            }
            cases += 1;
            failures.extend(
                differential(case, tier, 0xd1ff_0000 + n as u64)
                    .into_iter()
                    .map(|m| format!("[{tier:?}] {m}")),
            );
        }
    }
    eprintln!("{cases} case runs, each on its steps and {MUTANTS_PER_CASE} mutants; {refused} case/tier pairs refused by the runtime");
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
