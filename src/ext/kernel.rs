//! Kernel oracle: XDP extensions loaded into the running kernel and run with
//! `BPF_PROG_TEST_RUN`.
//!
//! The kernel is the reference for what an XDP program means. This module is the one place
//! where bpfswitch calls `bpf()`, through libbpf: it opens a clang-built object, loads one of
//! its programs as XDP (so the kernel verifier judges it), reads and writes the program's
//! maps as key/value bytes, and runs the program on a packet, returning the return code, the
//! output packet bytes and the time per run. Tests compare the switch's own runtime against
//! it, and [`kernel_verdict`] gives the kernel verifier's verdict next to bpfswitch's own.
//!
//! Anything that needs the kernel goes through [`KernelProgram`] (or [`kernel_verdict`]); the
//! [`ExtensionHost`] trait is the interface a test writes against, so the same cases run on
//! the kernel and on the switch's runtime.
//!
//! `bpf()` needs root or `CAP_BPF` (+ `CAP_PERFMON`, `CAP_NET_ADMIN`). When it is not
//! permitted every entry point returns [`KernelError::NotPermitted`] (checked once, with a
//! one-entry array map), so that a caller can skip and say why.
//!
//! **Architecture invariant:** nothing else in bpfswitch issues `bpf()` system calls.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use libbpf_rs::{
    MapCore, MapFlags, MapHandle, MapType, Object, ObjectBuilder, OpenObject, PrintLevel,
    ProgramAttachType, ProgramInput, ProgramType,
};

/// Largest growth of the packet a program may cause (the kernel's XDP headroom is 256 bytes;
/// `bpf_xdp_adjust_tail` may also grow the tail), used to size the output buffer.
const DATA_OUT_SLACK: usize = 4096;

/// Shortest packet `BPF_PROG_TEST_RUN` accepts for XDP (an Ethernet header).
const MIN_PACKET_LEN: usize = 14;

/// Size of `struct xdp_md`, the context given to the kernel with [`RunOptions::ingress_ifindex`].
const XDP_MD_SIZE: usize = 24;

/// Errors of the kernel oracle.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The kernel refused `bpf()` itself (not root, no `CAP_BPF`, or BPF disabled): callers
    /// skip, saying so.
    #[error("bpf() is not permitted here ({detail}); run as root or with CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN")]
    NotPermitted {
        /// The kernel's error.
        detail: String,
    },
    /// The object file could not be read or parsed by libbpf.
    #[error("{path}: cannot open BPF object: {message}")]
    Open {
        /// The object file.
        path: PathBuf,
        /// libbpf's message and log.
        message: String,
    },
    /// No program of that name or section.
    #[error("no program `{wanted}` in the object; it has: {}", available.join(", "))]
    NoProgram {
        /// What was asked for.
        wanted: String,
        /// The programs the object has (`name (section)`).
        available: Vec<String>,
    },
    /// Several programs and none chosen.
    #[error("several programs in the object, choose one: {}", candidates.join(", "))]
    AmbiguousProgram {
        /// The programs the object has.
        candidates: Vec<String>,
    },
    /// The kernel refused to load the object: the verifier rejected the program, or a map
    /// could not be created. `log` holds libbpf's output, the verifier log included.
    #[error("kernel refused program `{program}`: {error}\n{log}")]
    Rejected {
        /// The program.
        program: String,
        /// The system error (for example "Permission denied" for a verifier rejection).
        error: String,
        /// libbpf's messages, with the verifier log.
        log: String,
    },
    /// No map of that name.
    #[error("no map `{wanted}`; the object has: {}", available.join(", "))]
    NoMap {
        /// What was asked for.
        wanted: String,
        /// The maps the object has.
        available: Vec<String>,
    },
    /// A map operation failed (wrong key or value size, map full, ...).
    #[error("map {map}: {op}: {message}")]
    Map {
        /// The map.
        map: String,
        /// The operation ("update", "lookup", "delete", "dump").
        op: &'static str,
        /// Why.
        message: String,
    },
    /// `BPF_PROG_TEST_RUN` failed.
    #[error("test run of `{program}` failed: {message}")]
    Run {
        /// The program.
        program: String,
        /// Why.
        message: String,
    },
}

/// Checks once per process that `bpf()` is permitted, by creating a one-entry array map.
pub fn probe() -> Result<(), KernelError> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = PROBE.get_or_init(|| {
        let opts = libbpf_rs::libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        MapHandle::create(MapType::Array, Some("bpfsw_probe"), 4, 4, 1, &opts)
            .map(drop)
            .map_err(|e| e.to_string())
    });
    result
        .clone()
        .map_err(|detail| KernelError::NotPermitted { detail })
}

/// The kernel verifier's verdict on one program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelVerdict {
    /// The program loaded.
    Accepted,
    /// The kernel refused it; the verifier log says why.
    Rejected {
        /// The system error.
        error: String,
        /// libbpf's messages with the verifier log.
        log: String,
    },
}

impl KernelVerdict {
    /// The verifier's one-line reason (the last line of its log that is not a statistic),
    /// or "" for an accepted program.
    pub fn reason(&self) -> &str {
        match self {
            KernelVerdict::Accepted => "",
            KernelVerdict::Rejected { log, .. } => verifier_reason(log),
        }
    }
}

/// Picks the verifier's reason out of a load log: the last line before the "processed N insns"
/// statistics, skipping libbpf's own framing lines.
fn verifier_reason(log: &str) -> &str {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let end = lines
        .iter()
        .position(|l| l.starts_with("processed ") || l.contains("-- END PROG LOAD LOG --"))
        .unwrap_or(lines.len());
    lines[..end]
        .iter()
        .rev()
        .find(|l| !l.starts_with("libbpf:") && !l.starts_with("verification time"))
        .or_else(|| lines.last())
        .copied()
        .unwrap_or("")
}

/// Submits one program of an object to the kernel verifier: `Ok(Accepted)` or
/// `Ok(Rejected)`; `Err` only when the kernel cannot be asked (no permission, unreadable
/// object, no such program).
pub fn kernel_verdict(path: &Path, program: Option<&str>) -> Result<KernelVerdict, KernelError> {
    match KernelProgram::load(path, program) {
        Ok(_) => Ok(KernelVerdict::Accepted),
        Err(KernelError::Rejected { error, log, .. }) => Ok(KernelVerdict::Rejected { error, log }),
        Err(e) => Err(e),
    }
}

/// A map's entries as (key, value) byte pairs.
pub type MapEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// Options of one test run.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// How many times the kernel runs the program (0 and 1 both mean once); the duration is
    /// the mean per run. The packet is reset before each run, so a program sees the same input
    /// every time, but map updates accumulate.
    pub repeat: u32,
    /// `xdp_md.ingress_ifindex` to present: it must name an existing interface (1 is the
    /// loopback). `None` leaves the kernel's default, the loopback device.
    pub ingress_ifindex: Option<u32>,
}

/// The result of running a program on one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelRun {
    /// The program's return code (an XDP action, or a filter's verdict).
    pub retval: u32,
    /// The packet after the run (its length changes with `bpf_xdp_adjust_head/tail`).
    pub data_out: Vec<u8>,
    /// Mean time per run, as the kernel measured it.
    pub duration: Duration,
}

/// A map of a loaded program, as the kernel created it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSummary {
    /// Name (data-section maps are named like `proto_st.bss`, after the object; the map
    /// operations also accept the section name, `.bss`).
    pub name: String,
    /// Kernel map type number (`enum bpf_map_type`).
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
}

/// Something that holds one loaded extension and its maps and runs it on packets: the kernel
/// here, the switch's runtime in a differential test.
pub trait ExtensionHost {
    /// The error type.
    type Error: std::fmt::Display;
    /// Runs the program once on `packet`.
    fn run_packet(&mut self, packet: &[u8]) -> Result<(u32, Vec<u8>), Self::Error>;
    /// Inserts or replaces a map entry.
    fn update_map(&mut self, map: &str, key: &[u8], value: &[u8]) -> Result<(), Self::Error>;
    /// Reads a map entry.
    fn lookup_map(&mut self, map: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Self::Error>;
}

/// A program loaded into the kernel as XDP, with its object's maps.
///
/// Dropping it closes the program and map descriptors, which unloads them.
pub struct KernelProgram {
    object: Object,
    program: String,
    section: String,
}

impl std::fmt::Debug for KernelProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelProgram")
            .field("program", &self.program)
            .field("section", &self.section)
            .finish_non_exhaustive()
    }
}

/// libbpf's messages while a load is in progress; loads are serialised so that each sees
/// only its own messages.
static LOAD_LOG: Mutex<Option<String>> = Mutex::new(None);
static LOAD_LOCK: Mutex<()> = Mutex::new(());

fn libbpf_print(level: PrintLevel, msg: String) {
    let mut log = LOAD_LOG.lock().unwrap_or_else(|p| p.into_inner());
    match log.as_mut() {
        Some(buf) => buf.push_str(&msg),
        None if matches!(level, PrintLevel::Warn) => eprint!("{msg}"),
        None => {}
    }
}

/// Runs `f` with libbpf's messages captured; returns its result and the messages.
fn with_captured_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    let _serial = LOAD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    libbpf_rs::set_print(Some((PrintLevel::Info, libbpf_print)));
    *LOAD_LOG.lock().unwrap_or_else(|p| p.into_inner()) = Some(String::new());
    let out = f();
    let log = LOAD_LOG
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_default();
    (out, log)
}

fn open_error(path: &Path, e: impl std::fmt::Display, log: &str) -> KernelError {
    KernelError::Open {
        path: path.to_path_buf(),
        message: format!("{e}\n{log}").trim_end().to_string(),
    }
}

/// Chooses the program to load: by function name or section name, or the only one.
fn choose_program(
    open: &OpenObject,
    wanted: Option<&str>,
) -> Result<(String, String), KernelError> {
    let all: Vec<(String, String)> = open
        .progs()
        .map(|p| {
            (
                p.name().to_string_lossy().into_owned(),
                p.section().to_string_lossy().into_owned(),
            )
        })
        .collect();
    let describe = |v: &[(String, String)]| {
        v.iter()
            .map(|(n, s)| format!("{n} ({s})"))
            .collect::<Vec<_>>()
    };
    match wanted {
        Some(w) => {
            let found: Vec<_> = all
                .iter()
                .filter(|(n, s)| n == w || s == w)
                .cloned()
                .collect();
            match found.len() {
                1 => Ok(found.into_iter().next().expect("one program")),
                0 => Err(KernelError::NoProgram {
                    wanted: w.to_string(),
                    available: describe(&all),
                }),
                _ => Err(KernelError::AmbiguousProgram {
                    candidates: describe(&found),
                }),
            }
        }
        None => match all.len() {
            1 => Ok(all.into_iter().next().expect("one program")),
            0 => Err(KernelError::NoProgram {
                wanted: "(any)".to_string(),
                available: Vec::new(),
            }),
            _ => Err(KernelError::AmbiguousProgram {
                candidates: describe(&all),
            }),
        },
    }
}

impl KernelProgram {
    /// Opens the object at `path` and loads one program (by function or section name, or the
    /// object's only program) as XDP, with every map the object defines. The other programs
    /// of the object are not loaded.
    pub fn load(path: &Path, program: Option<&str>) -> Result<KernelProgram, KernelError> {
        probe()?;
        let ((open, chosen), open_log) = with_captured_log(|| {
            let open = ObjectBuilder::default().open_file(path);
            let chosen = open.as_ref().ok().map(|o| choose_program(o, program));
            (open, chosen)
        });
        let mut open = open.map_err(|e| open_error(path, e, &open_log))?;
        let (name, section) = chosen.expect("chosen when opened")?;

        for mut p in open.progs_mut() {
            let this = p.name().to_string_lossy() == name.as_str();
            p.set_autoload(this);
            if this {
                // SEC("xdp/NAME") is not a section name libbpf knows, so set the type here.
                p.set_prog_type(ProgramType::Xdp);
                p.set_attach_type(ProgramAttachType::Xdp);
            }
        }
        let (object, log) = with_captured_log(|| open.load());
        match object {
            Ok(object) => Ok(KernelProgram {
                object,
                program: name,
                section,
            }),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::PermissionDenied && probe().is_err() => {
                Err(KernelError::NotPermitted {
                    detail: e.to_string(),
                })
            }
            Err(e) => Err(KernelError::Rejected {
                program: name,
                error: e.to_string(),
                log,
            }),
        }
    }

    /// The loaded program's function name.
    pub fn name(&self) -> &str {
        &self.program
    }

    /// The loaded program's ELF section.
    pub fn section(&self) -> &str {
        &self.section
    }

    /// Number of instructions the kernel was given (after libbpf's relocations).
    pub fn insn_count(&self) -> usize {
        self.object
            .progs()
            .find(|p| p.name().to_string_lossy() == self.program.as_str())
            .map(|p| p.insn_cnt())
            .unwrap_or(0)
    }

    /// The object's maps as the kernel created them.
    pub fn maps(&self) -> Vec<MapSummary> {
        self.object
            .maps()
            .map(|m| MapSummary {
                name: m.name().to_string_lossy().into_owned(),
                map_type: m.map_type() as u32,
                key_size: m.key_size(),
                value_size: m.value_size(),
                max_entries: m.max_entries(),
            })
            .collect()
    }

    fn with_map<T>(
        &self,
        map: &str,
        f: impl FnOnce(&libbpf_rs::Map<'_>) -> Result<T, KernelError>,
    ) -> Result<T, KernelError> {
        // libbpf names a data-section map after the object (`proto_st.bss`); the switch names it
        // after the section (`.bss`): accept the section name too.
        let found = self
            .object
            .maps()
            .find(|m| m.name().to_string_lossy() == map)
            .or_else(|| {
                map.starts_with('.')
                    .then(|| {
                        self.object
                            .maps()
                            .find(|m| m.name().to_string_lossy().ends_with(map))
                    })
                    .flatten()
            });
        match found {
            Some(m) if m.map_type().is_percpu() => Err(KernelError::Map {
                map: map.to_string(),
                op: "access",
                message: "per-CPU maps are not supported by the oracle".to_string(),
            }),
            Some(m) => f(&m),
            None => Err(KernelError::NoMap {
                wanted: map.to_string(),
                available: self.maps().into_iter().map(|m| m.name).collect(),
            }),
        }
    }

    /// Inserts or replaces `key` → `value` in `map` (sizes must be the map's).
    pub fn map_update(&self, map: &str, key: &[u8], value: &[u8]) -> Result<(), KernelError> {
        self.with_map(map, |m| {
            check_sizes(m, map, "update", key, Some(value))?;
            m.update(key, value, MapFlags::ANY)
                .map_err(|e| map_error(map, "update", e))
        })
    }

    /// Reads the value of `key` in `map`, `None` when absent.
    pub fn map_lookup(&self, map: &str, key: &[u8]) -> Result<Option<Vec<u8>>, KernelError> {
        self.with_map(map, |m| {
            check_sizes(m, map, "lookup", key, None)?;
            m.lookup(key, MapFlags::ANY)
                .map_err(|e| map_error(map, "lookup", e))
        })
    }

    /// Deletes `key` from `map`; deleting an absent key is not an error. Array entries cannot
    /// be deleted (the kernel refuses).
    pub fn map_delete(&self, map: &str, key: &[u8]) -> Result<(), KernelError> {
        self.with_map(map, |m| {
            check_sizes(m, map, "delete", key, None)?;
            match m.delete(key) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(map_error(map, "delete", e)),
            }
        })
    }

    /// Every entry of `map`, sorted by key bytes. For an array this is every index.
    pub fn map_dump(&self, map: &str) -> Result<MapEntries, KernelError> {
        self.with_map(map, |m| {
            let mut out = Vec::new();
            for key in m.keys() {
                if let Some(v) = m
                    .lookup(&key, MapFlags::ANY)
                    .map_err(|e| map_error(map, "dump", e))?
                {
                    out.push((key, v));
                }
            }
            out.sort();
            Ok(out)
        })
    }

    /// Runs the program on `packet` with `BPF_PROG_TEST_RUN`. The kernel refuses packets
    /// shorter than an Ethernet header (14 bytes).
    pub fn run(&self, packet: &[u8], opts: &RunOptions) -> Result<KernelRun, KernelError> {
        if packet.len() < MIN_PACKET_LEN {
            return Err(KernelError::Run {
                program: self.program.clone(),
                message: format!(
                    "the packet is {} bytes; the kernel's XDP test run needs at least {MIN_PACKET_LEN} (an Ethernet header)",
                    packet.len()
                ),
            });
        }
        let prog = self
            .object
            .progs_mut()
            .find(|p| p.name().to_string_lossy() == self.program.as_str())
            .expect("the loaded program is in its object");
        let mut out = vec![0u8; packet.len() + DATA_OUT_SLACK];
        let mut ctx = [0u8; XDP_MD_SIZE];
        let context_in = match opts.ingress_ifindex {
            Some(ifindex) => {
                // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index,
                // egress_ifindex }: the kernel wants data 0 and data_end the packet length.
                ctx[4..8].copy_from_slice(&(packet.len() as u32).to_ne_bytes());
                ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
                Some(&mut ctx[..])
            }
            None => None,
        };
        let input = ProgramInput {
            context_in,
            data_in: Some(packet),
            data_out: Some(&mut out),
            repeat: opts.repeat,
            ..Default::default()
        };
        let output = prog.test_run(input).map_err(|e| KernelError::Run {
            program: self.program.clone(),
            message: e.to_string(),
        })?;
        let retval = output.return_value;
        let duration = output.duration;
        let data_out = output.data.map(|d| d.to_vec()).unwrap_or_default();
        Ok(KernelRun {
            retval,
            data_out,
            duration,
        })
    }
}

impl ExtensionHost for KernelProgram {
    type Error = KernelError;

    fn run_packet(&mut self, packet: &[u8]) -> Result<(u32, Vec<u8>), KernelError> {
        let r = self.run(packet, &RunOptions::default())?;
        Ok((r.retval, r.data_out))
    }

    fn update_map(&mut self, map: &str, key: &[u8], value: &[u8]) -> Result<(), KernelError> {
        self.map_update(map, key, value)
    }

    fn lookup_map(&mut self, map: &str, key: &[u8]) -> Result<Option<Vec<u8>>, KernelError> {
        self.map_lookup(map, key)
    }
}

fn map_error(map: &str, op: &'static str, e: libbpf_rs::Error) -> KernelError {
    KernelError::Map {
        map: map.to_string(),
        op,
        message: e.to_string(),
    }
}

fn check_sizes(
    m: &libbpf_rs::Map<'_>,
    map: &str,
    op: &'static str,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(), KernelError> {
    if key.len() != m.key_size() as usize {
        return Err(KernelError::Map {
            map: map.to_string(),
            op,
            message: format!(
                "key is {} bytes, the map's keys are {}",
                key.len(),
                m.key_size()
            ),
        });
    }
    if let Some(v) = value {
        if v.len() != m.value_size() as usize {
            return Err(KernelError::Map {
                map: map.to_string(),
                op,
                message: format!(
                    "value is {} bytes, the map's values are {}",
                    v.len(),
                    m.value_size()
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_is_the_last_verifier_line_before_the_statistics() {
        let log = "libbpf: prog 'x': BPF program load failed: Permission denied\n\
                   libbpf: prog 'x': -- BEGIN PROG LOAD LOG --\n\
                   0: R1=ctx() R10=fp0\n\
                   0: (bf) r0 = r2\n\
                   R2 !read_ok\n\
                   processed 1 insns (limit 1000000) max_states_per_insn 0\n\
                   -- END PROG LOAD LOG --\n";
        assert_eq!(verifier_reason(log), "R2 !read_ok");
        assert_eq!(KernelVerdict::Accepted.reason(), "");
    }
}
