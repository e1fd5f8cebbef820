//! The extension corpus in the switch's runtime: every case of `tests/ext_cases` (the same
//! packets, map preloads and expectations the kernel test checks) run through
//! `bpfswitch::ext::Extension`, on each execution tier the program may use.
//!
//! `xdp_md.ingress_ifindex` is the OpenFlow in_port in the switch; a step that does not set it
//! runs with in_port 1, which is what the kernel's test runs present (the loopback device).

mod ext_cases;

use bpfswitch::ext::kernel::ExtensionHost;
use bpfswitch::ext::{ExecTier, ExtError, Extension, LoadOptions, XdpBuf};
use ext_cases::ExtCase;

/// One extension loaded in the switch's runtime, run on one tier.
struct SwitchHost {
    ext: Extension,
    tier: ExecTier,
}

impl SwitchHost {
    fn run_step(&mut self, packet: &[u8], in_port: u32) -> Result<(u32, Vec<u8>), ExtError> {
        let mut buf = XdpBuf::new(packet);
        let out = self.ext.run_on(self.tier, &mut buf, in_port, None)?;
        if let Some(fault) = out.fault {
            return Err(ExtError::Vm {
                tier: "run",
                message: fault,
            });
        }
        Ok((out.retcode as u32, buf.data().to_vec()))
    }
}

impl ExtensionHost for SwitchHost {
    type Error = ExtError;

    fn run_packet(&mut self, packet: &[u8]) -> Result<(u32, Vec<u8>), ExtError> {
        self.run_step(packet, 1)
    }

    fn update_map(&mut self, map: &str, key: &[u8], value: &[u8]) -> Result<(), ExtError> {
        self.ext
            .map(map)?
            .update(key, value, 0)
            .map_err(|source| ExtError::Map {
                map: map.into(),
                source,
            })
    }

    fn lookup_map(&mut self, map: &str, key: &[u8]) -> Result<Option<Vec<u8>>, ExtError> {
        self.ext
            .map(map)?
            .lookup(key)
            .map_err(|source| ExtError::Map {
                map: map.into(),
                source,
            })
    }
}

fn load(case: &ExtCase) -> Result<Extension, ExtError> {
    let bytes = std::fs::read(case.object_path()).expect("object readable");
    let opts = LoadOptions {
        section: Some(case.program.to_string()),
        ..Default::default()
    };
    Extension::load(case.name, &bytes, &opts)
}

/// Why the runtime refuses to run the case's program on `tier`, if it does (asked with a
/// throwaway load, so the case's own maps stay untouched).
fn tier_refusal(case: &ExtCase, tier: ExecTier) -> Option<String> {
    let ext = load(case).ok()?;
    let mut buf = XdpBuf::new(&case.steps[0].packet);
    match ext.run_on(tier, &mut buf, 1, None) {
        Err(e @ ExtError::TierRefused { .. }) => Some(e.to_string()),
        _ => None,
    }
}

fn tiers() -> Vec<ExecTier> {
    vec![ExecTier::Interpreter, ExecTier::Jit, ExecTier::Cranelift]
}

#[test]
fn every_case_gives_the_expected_verdict_output_and_maps_in_the_switch() {
    let mut failures = Vec::new();
    let mut runs = 0;
    let mut refused = 0;
    for case in ext_cases::xdp_cases()
        .into_iter()
        .chain(ext_cases::ubpf_cases())
        .chain(ext_cases::legacy_cases())
    {
        for tier in tiers() {
            let ext = match load(&case) {
                Ok(e) => e,
                Err(e) => {
                    failures.push(format!("{}: load failed: {e}", case.name));
                    break;
                }
            };
            if tier != ExecTier::Interpreter && !ext.verification().allows_jit() {
                failures.push(format!(
                    "{} ({tier:?}): not verified: {:?}",
                    case.name,
                    ext.verification()
                ));
                continue;
            }
            if let Some(reason) = tier_refusal(&case, tier) {
                eprintln!("NOTE: {} not run on {tier:?}: {reason}", case.name);
                refused += 1;
                continue;
            }
            let mut host = SwitchHost { ext, tier };
            runs += case.steps.len();
            let result = ext_cases::run_case(&case, &mut host, |h, step| {
                h.run_step(&step.packet, step.ingress_ifindex.unwrap_or(1))
            });
            if let Err(e) = result {
                failures.extend(e.into_iter().map(|m| format!("[{tier:?}] {m}")));
            }
        }
    }
    eprintln!("{runs} packet runs in the switch's runtime; {refused} case/tier pairs refused by the runtime");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
