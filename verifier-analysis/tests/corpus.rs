//! The corpus in `tests/corpus/*.s`: small XDP programs, each with its expected verdict in a
//! header (`# expect: accept` or `# expect: reject <Reason>`). Every program is checked
//! against the analysis, and, where the kernel's `bpf()` is permitted (root with CAP_BPF), also
//! loaded into the kernel verifier; the test prints the agreement matrix. A case where the
//! two differ must say so in its header (`# kernel: ...` and `# why: ...`); "we accept, the
//! kernel rejects" is only allowed with such an explanation, never for memory safety.

use std::path::Path;

use verifier_analysis::asm::assemble;
use verifier_analysis::insn::{Insn, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};
use verifier_analysis::platform::{MapDescr, MapType, Platform};
use verifier_analysis::{analyze, Program, Verdict};

fn maps() -> Vec<MapDescr> {
    let mut ro = MapDescr::new("rodata", MapType::Array, 4, 16, 1);
    ro.read_only = true;
    vec![MapDescr::new("counters", MapType::Hash, 4, 16, 128), ro]
}

struct Case {
    name: String,
    src: String,
    expect: String,
    kernel: Option<String>,
    why: Option<String>,
}

fn header<'a>(src: &'a str, key: &str) -> Option<&'a str> {
    src.lines()
        .find_map(|l| l.strip_prefix(&format!("# {key}:")).map(str::trim))
}

fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().map(|e| e == "s").unwrap_or(false))
        .map(|p| {
            let src = std::fs::read_to_string(&p).expect("read case");
            Case {
                name: p.file_stem().unwrap().to_string_lossy().into_owned(),
                expect: header(&src, "expect")
                    .expect("every case has `# expect:`")
                    .to_string(),
                kernel: header(&src, "kernel").map(str::to_string),
                why: header(&src, "why").map(str::to_string),
                src,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(cases.len() >= 40, "corpus went missing");
    cases
}

fn ours(c: &Case) -> (bool, String) {
    let prog = Program::new(
        assemble(&c.src).unwrap_or_else(|e| panic!("{}: {e}", c.name)),
        verifier_analysis::platform::Abi::Xdp,
        maps(),
    );
    match analyze(&prog, &Platform::xdp()).verdict {
        Verdict::Accept => (true, "accept".into()),
        Verdict::Reject { reason, .. } => {
            let kind = format!("{reason:?}");
            let kind = kind.split([' ', '{', '(']).next().unwrap_or("").to_string();
            (false, format!("reject {kind}"))
        }
    }
}

#[test]
fn corpus_matches_expectations() {
    for c in corpus() {
        let (_, got) = ours(&c);
        assert_eq!(got, c.expect, "case {}", c.name);
    }
}

/// The kernel verifier through the raw `bpf()` system call.
mod kernel {
    use std::io;

    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_XDP: u32 = 6;
    const BPF_F_RDONLY_PROG: u32 = 1 << 7;

    #[repr(C)]
    #[derive(Default)]
    struct MapCreate {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
    }

    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }

    fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<i32> {
        // SAFETY: `attr` is a live, initialised `repr(C)` prefix of `union bpf_attr` for `cmd`,
        // and the size passed is its size; the kernel zero-extends the rest.
        let r =
            unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as i32)
        }
    }

    /// An owned file descriptor.
    pub struct Fd(pub i32);

    impl Drop for Fd {
        fn drop(&mut self) {
            // SAFETY: the descriptor was returned by bpf() and is closed exactly once.
            unsafe { libc::close(self.0) };
        }
    }

    /// Creates a map like `m` (hash or array).
    pub fn create_map(m: &verifier_analysis::platform::MapDescr) -> io::Result<Fd> {
        let mut a = MapCreate {
            map_type: match m.map_type {
                verifier_analysis::platform::MapType::Array => 2,
                _ => 1,
            },
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            map_flags: if m.read_only { BPF_F_RDONLY_PROG } else { 0 },
        };
        bpf(BPF_MAP_CREATE, &mut a).map(Fd)
    }

    /// Loads an XDP program; `Ok(())` if the verifier accepts it, `Err(log)` otherwise.
    pub fn load_xdp(insns: &[u8]) -> Result<Fd, String> {
        let license = b"GPL\0";
        let mut log = vec![0u8; 1 << 16];
        let mut a = ProgLoad {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: (insns.len() / 8) as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            kern_version: 0,
            prog_flags: 0,
            prog_name: [0; 16],
            prog_ifindex: 0,
            expected_attach_type: 0,
        };
        match bpf(BPF_PROG_LOAD, &mut a) {
            Ok(fd) => Ok(Fd(fd)),
            Err(e) => {
                let text = String::from_utf8_lossy(&log);
                let last = text
                    .trim_end_matches('\0')
                    .lines()
                    .rev()
                    .find(|l| {
                        !l.trim().is_empty()
                            && !l.starts_with("processed ")
                            && !l.starts_with("verification time")
                    })
                    .unwrap_or("")
                    .to_string();
                Err(format!("{e}: {last}"))
            }
        }
    }
}

fn kernel_bytes(insns: &[Insn], fds: &[kernel::Fd]) -> Vec<u8> {
    let mut out = insns.to_vec();
    for i in 0..out.len() {
        if out[i].code == 0x18 && matches!(out[i].src, PSEUDO_MAP_FD | PSEUDO_MAP_VALUE) {
            out[i].imm = fds[out[i].imm as usize].0;
        }
    }
    out.iter().flat_map(|i| i.to_bytes()).collect()
}

#[test]
fn agreement_with_the_kernel_verifier() {
    let maps = maps();
    let fds: Vec<kernel::Fd> = match maps
        .iter()
        .map(kernel::create_map)
        .collect::<Result<_, _>>()
    {
        Ok(f) => f,
        Err(e) => {
            println!("\n!!! SKIPPED: the kernel verifier comparison needs bpf() (root with CAP_BPF): {e}\n");
            return;
        }
    };
    let mut matrix = [[0usize; 2]; 2];
    let mut lines = Vec::new();
    let mut unexplained = Vec::new();
    for c in corpus() {
        let (we, ours_text) = ours(&c);
        let insns = assemble(&c.src).unwrap();
        let (kern, log) = match kernel::load_xdp(&kernel_bytes(&insns, &fds)) {
            Ok(_) => (true, String::new()),
            Err(log) => (false, log),
        };
        matrix[we as usize][kern as usize] += 1;
        let expected_kernel = match c.kernel.as_deref() {
            Some(k) => k.starts_with("accept"),
            None => we,
        };
        let mark = if we == kern { "  " } else { "≠ " };
        lines.push(format!(
            "{mark}{:40} ours: {:24} kernel: {}{}",
            c.name,
            ours_text,
            if kern { "accept" } else { "reject" },
            if kern {
                String::new()
            } else {
                format!(" ({log})")
            }
        ));
        if let (false, Some(why)) = (we == kern, &c.why) {
            lines.push(format!("    why: {why}"));
        }
        if kern != expected_kernel {
            unexplained.push(c.name.clone());
        }
    }
    println!(
        "\nagreement with the kernel verifier ({} cases):",
        lines.len()
    );
    for l in &lines {
        println!("{l}");
    }
    println!("                      kernel accepts  kernel rejects");
    println!(
        "  we accept           {:14}  {:14}",
        matrix[1][1], matrix[1][0]
    );
    println!(
        "  we reject           {:14}  {:14}",
        matrix[0][1], matrix[0][0]
    );
    assert!(
        unexplained.is_empty(),
        "kernel verdicts differ from the corpus headers: {unexplained:?}"
    );
}
