//! Helper functions callable from extensions, by the kernel's numbers (XDP ABI) and by
//! Oko's numbering (uBPF ABI).
//!
//! rbpf calls helpers through plain `fn(u64, u64, u64, u64, u64) -> u64` pointers, so a
//! helper has no captured state. It reaches:
//! - maps through its arguments: the loader relocates each `ld_imm64` of a map to the
//!   address of the live [`Map`], and the helper checks that address against the maps of
//!   the running extension before using it;
//! - per-run state (packet bounds, redirect port, the set of memory a pointer argument may
//!   point into) through a thread-local [`RunState`] that [`super::vm`] installs for the
//!   duration of one run.
//!
//! When the run is *checked* (the interpreter tier, used for unverified programs), every
//! pointer argument is checked to lie in the packet buffer, the stack, the context or the
//! extension's map values before the helper reads it; the stack's bounds are recorded by a
//! private helper the loader calls in the program's prologue, from the interpreter's own
//! `r10`, so a program cannot forge them. Verified programs (JIT tiers) skip those checks,
//! as the kernel's helpers trust the verifier.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use verifier_analysis::platform::Abi;

use super::maps::{errno, update_flags, Map, MapSet};

/// Kernel helper numbers (`BPF_FUNC_*`) that bpfswitch implements.
pub mod kernel {
    /// `bpf_map_lookup_elem(map, key)`.
    pub const MAP_LOOKUP_ELEM: u32 = 1;
    /// `bpf_map_update_elem(map, key, value, flags)`.
    pub const MAP_UPDATE_ELEM: u32 = 2;
    /// `bpf_map_delete_elem(map, key)`.
    pub const MAP_DELETE_ELEM: u32 = 3;
    /// `bpf_ktime_get_ns()`.
    pub const KTIME_GET_NS: u32 = 5;
    /// `bpf_trace_printk(fmt, fmt_size, ...)`.
    pub const TRACE_PRINTK: u32 = 6;
    /// `bpf_get_prandom_u32()`.
    pub const GET_PRANDOM_U32: u32 = 7;
    /// `bpf_get_smp_processor_id()`: the worker id here.
    pub const GET_SMP_PROCESSOR_ID: u32 = 8;
    /// `bpf_l3_csum_replace(ctx, offset, from, to, flags)`.
    pub const L3_CSUM_REPLACE: u32 = 10;
    /// `bpf_l4_csum_replace(ctx, offset, from, to, flags)`.
    pub const L4_CSUM_REPLACE: u32 = 11;
    /// `bpf_redirect(ifindex, flags)`: the OpenFlow port number here.
    pub const REDIRECT: u32 = 23;
    /// `bpf_csum_diff(from, from_size, to, to_size, seed)`.
    pub const CSUM_DIFF: u32 = 28;
    /// `bpf_xdp_adjust_head(ctx, delta)`.
    pub const XDP_ADJUST_HEAD: u32 = 44;
    /// `bpf_xdp_adjust_tail(ctx, delta)`.
    pub const XDP_ADJUST_TAIL: u32 = 65;
    /// `bpf_ktime_get_boot_ns()`.
    pub const KTIME_GET_BOOT_NS: u32 = 125;
}

/// Oko's uBPF helper numbers.
pub mod ubpf {
    /// `ubpf_map_lookup(map, key)`.
    pub const MAP_LOOKUP: u32 = 1;
    /// `ubpf_map_update(map, key, value)`.
    pub const MAP_UPDATE: u32 = 2;
    /// `ubpf_map_delete(map, key)`.
    pub const MAP_DELETE: u32 = 3;
    /// `ubpf_map_add(map, value)`: bloom filters and count-min sketches only (refused).
    pub const MAP_ADD: u32 = 4;
    /// `ubpf_time_get_ns()`.
    pub const TIME_GET_NS: u32 = 5;
    /// `ubpf_hash(data, len)`.
    pub const HASH: u32 = 6;
    /// `ubpf_printf(fmt, ...)`.
    pub const PRINTF: u32 = 7;
}

/// Private helper the loader calls in the prologue of checked images: records `r10`.
pub const RECORD_STACK_HELPER: u32 = 0x7fff_0001;
/// Bytes of stack the rbpf tiers give a program (its `STACK_SIZE`).
pub const STACK_SIZE: u64 = rbpf::ebpf::STACK_SIZE as u64;
/// Bytes at the start of the packet buffer that hold the runtime context.
pub const CTX_RESERVE: usize = 64;
/// Smallest packet `bpf_xdp_adjust_head`/`_tail` may leave (an Ethernet header).
pub const ETH_HLEN: u64 = 14;
/// Lines per second `bpf_trace_printk` may log before lines are dropped (and counted).
pub const TRACE_LINES_PER_SEC: u64 = 100;

/// State of one program run, reachable from helpers on the running thread.
#[derive(Debug)]
pub struct RunState {
    /// Start of the whole buffer (the context lives at its first bytes).
    pub buf_start: u64,
    /// End of the whole buffer (data plus tailroom).
    pub buf_end: u64,
    /// Current packet start (authoritative; mirrored into the context).
    pub data: u64,
    /// Current packet end.
    pub data_end: u64,
    /// Address of the runtime context.
    pub ctx: u64,
    /// Port set by `bpf_redirect`.
    pub redirect: Option<u32>,
    /// Whether pointer arguments must be checked (unverified program on the interpreter).
    pub checked: bool,
    /// Stack top recorded by the prologue of a checked image.
    pub stack_top: Option<u64>,
    /// The running extension's maps.
    pub maps: *const MapSet,
    /// Which ABI the program uses.
    pub abi: Abi,
    /// Time to report instead of the clock (replays are deterministic).
    pub time_ns: Option<u64>,
    /// Set when a helper met an argument that would be unsafe: the run is aborted.
    pub fault: Option<String>,
}

thread_local! {
    static CURRENT: Cell<*mut RunState> = const { Cell::new(std::ptr::null_mut()) };
    static PRNG: Cell<u64> = Cell::new(seed_prng());
}

fn seed_prng() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let local = 0u8;
    (t ^ (&local as *const u8 as u64).rotate_left(32)) | 1
}

/// Installs `state` as the running thread's run state until the guard drops.
pub struct RunGuard {
    prev: *mut RunState,
}

impl RunGuard {
    /// Installs `state` for the current thread. The state must outlive the guard.
    pub fn install(state: &mut RunState) -> RunGuard {
        let prev = CURRENT.with(|c| c.replace(state as *mut RunState));
        RunGuard { prev }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

fn with_state<R>(f: impl FnOnce(&mut RunState) -> R) -> Option<R> {
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        return None;
    }
    // SAFETY: the pointer was installed by RunGuard from a live &mut RunState that outlives
    // the guard; helpers run on the same thread, inside the run, and do not nest.
    Some(f(unsafe { &mut *p }))
}

fn neg(e: i64) -> u64 {
    (-e) as u64
}

impl RunState {
    /// Whether `[ptr, ptr + len)` is memory a program may hand to a helper.
    fn may_access(&self, ptr: u64, len: u64) -> bool {
        if !self.checked {
            return true;
        }
        let Some(end) = ptr.checked_add(len) else {
            return false;
        };
        let within = |lo: u64, hi: u64| ptr >= lo && end <= hi;
        if within(self.buf_start, self.buf_end) {
            return true;
        }
        // SAFETY: `maps` points to the running extension's map set, alive for the run.
        if let Some(maps) = unsafe { self.maps.as_ref() } {
            let r = maps.region_range();
            if within(r.start, r.end) {
                return true;
            }
        }
        matches!(self.stack_top, Some(top) if within(top - STACK_SIZE, top))
    }

    fn fault(&mut self, what: String) -> u64 {
        if self.fault.is_none() {
            self.fault = Some(what);
        }
        neg(errno::EINVAL)
    }

    fn map(&self, handle: u64) -> Option<&Map> {
        // SAFETY: `maps` points to the running extension's map set, alive for the run.
        let maps = unsafe { self.maps.as_ref() }?;
        if !maps.contains_handle(handle) {
            return None;
        }
        // SAFETY: the handle is the address of one of the set's `Arc<Map>` pointees.
        Some(unsafe { &*(handle as *const Map) })
    }

    /// Borrows `len` bytes at `ptr` after checking them.
    fn bytes(&mut self, ptr: u64, len: u64, what: &str) -> Option<&'static [u8]> {
        if ptr == 0 || !self.may_access(ptr, len) {
            self.fault(format!(
                "helper argument {what}: {len} bytes at {ptr:#x} are outside the program's memory"
            ));
            return None;
        }
        // SAFETY: checked above (or the program is verified): the range is readable memory
        // that lives for the rest of the run; the slice does not escape the helper.
        Some(unsafe { std::slice::from_raw_parts(ptr as *const u8, len as usize) })
    }

    fn set_bounds(&mut self, data: u64, data_end: u64) {
        self.data = data;
        self.data_end = data_end;
        let ctx = self.ctx as *mut u64;
        // SAFETY: ctx points to the runtime context (at least RUNTIME_CTX_SIZE bytes, 8-aligned)
        // at the start of the run's buffer; data, data_end and data_meta are its first words.
        unsafe {
            ctx.write(data);
            ctx.add(1).write(data_end);
            ctx.add(2).write(data);
        }
    }
}

fn map_lookup(map: u64, key: u64, _: u64, _: u64, _: u64) -> u64 {
    with_state(|s| {
        let Some(m) = s.map(map) else {
            return s.fault(format!("map_lookup_elem: {map:#x} is not a map"));
        };
        let ks = u64::from(m.spec().key_size);
        let Some(k) = s.bytes(key, ks, "key") else {
            return 0;
        };
        let m = s.map(map).expect("checked");
        m.lookup_ptr(k).map(|p| p as u64).unwrap_or(0)
    })
    .unwrap_or(0)
}

fn map_update_flags(map: u64, key: u64, value: u64, flags: u64) -> u64 {
    with_state(|s| {
        let Some(m) = s.map(map) else {
            return s.fault(format!("map_update_elem: {map:#x} is not a map"));
        };
        let (ks, vs) = (u64::from(m.spec().key_size), u64::from(m.spec().value_size));
        let Some(k) = s.bytes(key, ks, "key") else {
            return neg(errno::EINVAL);
        };
        let Some(v) = s.bytes(value, vs, "value") else {
            return neg(errno::EINVAL);
        };
        let m = s.map(map).expect("checked");
        match m.update_from_program(k, v, flags) {
            Ok(()) => 0,
            Err(e) => e.errno() as u64,
        }
    })
    .unwrap_or(neg(errno::EINVAL))
}

fn map_update(map: u64, key: u64, value: u64, flags: u64, _: u64) -> u64 {
    map_update_flags(map, key, value, flags)
}

fn ubpf_map_update(map: u64, key: u64, value: u64, _: u64, _: u64) -> u64 {
    map_update_flags(map, key, value, update_flags::ANY)
}

fn map_delete(map: u64, key: u64, _: u64, _: u64, _: u64) -> u64 {
    with_state(|s| {
        let Some(m) = s.map(map) else {
            return s.fault(format!("map_delete_elem: {map:#x} is not a map"));
        };
        let ks = u64::from(m.spec().key_size);
        let Some(k) = s.bytes(key, ks, "key") else {
            return neg(errno::EINVAL);
        };
        let m = s.map(map).expect("checked");
        match m.delete(k) {
            Ok(()) => 0,
            Err(e) => e.errno() as u64,
        }
    })
    .unwrap_or(neg(errno::EINVAL))
}

/// Monotonic nanoseconds since the first call in this process.
pub fn monotonic_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn ktime_get_ns(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    with_state(|s| s.time_ns)
        .flatten()
        .unwrap_or_else(monotonic_ns)
}

/// Seeds the calling thread's `bpf_get_prandom_u32` generator (replays and tests use a
/// fixed seed so that runs repeat exactly).
pub fn seed_prandom(seed: u64) {
    PRNG.with(|p| p.set(seed | 1));
}

fn get_prandom_u32(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    PRNG.with(|p| {
        // xorshift64*
        let mut x = p.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        p.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) & 0xffff_ffff
    })
}

fn get_smp_processor_id(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    super::maps::current_worker() as u64
}

type TraceSink = Box<dyn Fn(&str) + Send + Sync>;
static TRACE_SINK: Mutex<Option<TraceSink>> = Mutex::new(None);
static TRACE_BUDGET: Mutex<(u64, u64)> = Mutex::new((0, 0));
static TRACE_DROPPED: AtomicU64 = AtomicU64::new(0);

/// Sends `bpf_trace_printk`/`ubpf_printf` output to `sink` (the switch log) instead of
/// standard error.
pub fn set_trace_sink(sink: impl Fn(&str) + Send + Sync + 'static) {
    *TRACE_SINK.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(sink));
}

/// Number of trace lines dropped by the rate limit so far.
pub fn trace_lines_dropped() -> u64 {
    TRACE_DROPPED.load(Ordering::Relaxed)
}

fn emit_trace(line: &str) {
    let now_s = monotonic_ns() / 1_000_000_000;
    {
        let mut b = TRACE_BUDGET.lock().unwrap_or_else(|p| p.into_inner());
        if b.0 != now_s {
            *b = (now_s, 0);
        }
        if b.1 >= TRACE_LINES_PER_SEC {
            TRACE_DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        b.1 += 1;
    }
    match &*TRACE_SINK.lock().unwrap_or_else(|p| p.into_inner()) {
        Some(sink) => sink(line),
        None => eprintln!("bpf_trace_printk: {line}"),
    }
}

/// Formats a printk-style format string with up to four integer arguments. `%s`
/// arguments are printed only when they point into memory the run may read.
fn format_printk(s: &mut RunState, fmt: &[u8], args: &[u64]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' {
            out.push(c as char);
            i += 1;
            continue;
        }
        i += 1;
        let mut longs = 0;
        while i < fmt.len() && fmt[i] == b'l' {
            longs += 1;
            i += 1;
        }
        let Some(&conv) = fmt.get(i) else { break };
        i += 1;
        if conv == b'%' {
            out.push('%');
            continue;
        }
        let a = args.next().copied().unwrap_or(0);
        let a32 = longs == 0;
        match conv {
            b'd' | b'i' => out += &(if a32 { i64::from(a as i32) } else { a as i64 }).to_string(),
            b'u' => out += &(if a32 { u64::from(a as u32) } else { a }).to_string(),
            b'x' => out += &format!("{:x}", if a32 { u64::from(a as u32) } else { a }),
            b'X' => out += &format!("{:X}", if a32 { u64::from(a as u32) } else { a }),
            b'p' => out += &format!("{a:#x}"),
            b'c' => out.push(a as u8 as char),
            b's' => {
                let checked = s.checked;
                s.checked = true;
                let mut text = String::from("(?)");
                for len in (1..=64u64).rev() {
                    if s.may_access(a, len) {
                        // SAFETY: the range was checked to lie in the run's memory.
                        let b = unsafe { std::slice::from_raw_parts(a as *const u8, len as usize) };
                        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                        text = String::from_utf8_lossy(&b[..end]).into_owned();
                        break;
                    }
                }
                s.checked = checked;
                out += &text;
            }
            other => {
                out.push('%');
                out.push(other as char);
            }
        }
    }
    out
}

fn trace_printk(fmt: u64, size: u64, a1: u64, a2: u64, a3: u64) -> u64 {
    with_state(|s| {
        if size == 0 || size > 1024 {
            return neg(errno::EINVAL);
        }
        let Some(f) = s.bytes(fmt, size, "format") else {
            return neg(errno::EINVAL);
        };
        let end = f.iter().position(|&c| c == 0).unwrap_or(f.len());
        let line = format_printk(s, &f[..end], &[a1, a2, a3]);
        let line = line.trim_end_matches('\n').to_string();
        let n = line.len() as u64;
        emit_trace(&line);
        n
    })
    .unwrap_or(neg(errno::EINVAL))
}

fn ubpf_printf(fmt: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> u64 {
    with_state(|s| {
        // The format is NUL-terminated; read at most 256 bytes of it.
        let mut len = 0;
        while len < 256 && s.may_access(fmt, len + 1) {
            // SAFETY: byte fmt+len was checked readable.
            if unsafe { *((fmt + len) as *const u8) } == 0 {
                break;
            }
            len += 1;
        }
        let Some(f) = s.bytes(fmt, len.max(1), "format") else {
            return neg(errno::EINVAL);
        };
        let f = &f[..len as usize];
        let line = format_printk(s, f, &[a1, a2, a3, a4]);
        let n = line.len() as u64;
        emit_trace(line.trim_end_matches('\n'));
        n
    })
    .unwrap_or(neg(errno::EINVAL))
}

/// FNV-1a, 64 bits: the hash `ubpf_hash` returns.
pub fn fnv1a64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn ubpf_hash(data: u64, len: u64, _: u64, _: u64, _: u64) -> u64 {
    with_state(|s| match s.bytes(data, len, "data") {
        Some(b) => fnv1a64(b),
        None => 0,
    })
    .unwrap_or(0)
}

fn redirect(port: u64, flags: u64) -> u64 {
    with_state(|s| {
        if flags != 0 {
            return super::vm::xdp::ABORTED;
        }
        s.redirect = Some(port as u32);
        super::vm::xdp::REDIRECT
    })
    .unwrap_or(super::vm::xdp::ABORTED)
}

fn redirect_helper(port: u64, flags: u64, _: u64, _: u64, _: u64) -> u64 {
    redirect(port, flags)
}

/// Adds with end-around carry, 64 bits.
fn add64c(a: u64, b: u64) -> u64 {
    let (s, c) = a.overflowing_add(b);
    s + u64::from(c)
}

/// Adds with end-around carry, 32 bits.
fn add32c(a: u32, b: u32) -> u32 {
    let (s, c) = a.overflowing_add(b);
    s + u32::from(c)
}

/// The x86_64 kernel's `csum_partial` over a buffer of 4-byte words (little-endian loads):
/// a 64-bit ones' complement sum seeded with `seed`, folded to 32 bits.
pub fn csum_partial(words: &[u32], seed: u32) -> u32 {
    let mut acc = u64::from(seed);
    let mut chunks = words.chunks_exact(2);
    for c in &mut chunks {
        acc = add64c(acc, u64::from(c[0]) | (u64::from(c[1]) << 32));
    }
    if let [w] = chunks.remainder() {
        acc = add64c(acc, u64::from(*w));
    }
    add32c((acc >> 32) as u32, acc as u32)
}

/// Folds a 32-bit partial checksum to 16 bits, complemented (`csum_fold`).
pub fn csum_fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

fn csum_diff(from: u64, from_size: u64, to: u64, to_size: u64, seed: u64) -> u64 {
    with_state(|s| {
        let diff_size = from_size.saturating_add(to_size);
        if (from_size | to_size) & 3 != 0
            || diff_size > 512
            || (from == 0 && from_size != 0)
            || (to == 0 && to_size != 0)
        {
            return neg(errno::EINVAL);
        }
        let mut words = [0u32; 128];
        let mut n = 0;
        if from_size > 0 {
            let Some(f) = s.bytes(from, from_size, "from") else {
                return neg(errno::EINVAL);
            };
            for c in f.chunks_exact(4) {
                words[n] = !u32::from_le_bytes(c.try_into().expect("4"));
                n += 1;
            }
        }
        if to_size > 0 {
            let Some(t) = s.bytes(to, to_size, "to") else {
                return neg(errno::EINVAL);
            };
            for c in t.chunks_exact(4) {
                words[n] = u32::from_le_bytes(c.try_into().expect("4"));
                n += 1;
            }
        }
        u64::from(csum_partial(&words[..n], seed as u32))
    })
    .unwrap_or(neg(errno::EINVAL))
}

/// Where a checksum field at `offset` from the packet start lies, if inside the packet.
fn csum_field(s: &RunState, offset: u64) -> Option<*mut u16> {
    let len = s.data_end - s.data;
    (offset <= 0xffff && offset + 2 <= len).then(|| (s.data + offset) as *mut u16)
}

/// Replaces `from` by `to` (2 or 4 bytes, as the program loaded them) in the checksum at
/// `field`, or, for size 0, adds the partial sum `to`.
fn csum_replace(field: *mut u16, size: u64, from: u64, to: u64) {
    // SAFETY: `field` is inside the packet (checked by csum_field).
    let old = unsafe { field.read_unaligned() };
    let diff = match size {
        2 => csum_partial(&[u32::from(!(from as u16)), u32::from(to as u16)], 0),
        4 => csum_partial(&[!(from as u32), to as u32], 0),
        _ => to as u32,
    };
    // csum_fold(csum_add(diff, ~csum_unfold(*sum)))
    let new = csum_fold(add32c(diff, u32::from(!old)));
    // SAFETY: as above.
    unsafe { field.write_unaligned(new) }
}

fn l3_csum_replace(ctx: u64, offset: u64, from: u64, to: u64, flags: u64) -> u64 {
    with_state(|s| {
        if ctx != s.ctx {
            return s.fault("l3_csum_replace: first argument is not the context".into());
        }
        let size = flags & 0xf;
        if flags & !0xf != 0 || !matches!(size, 0 | 2 | 4) || (size == 0 && from != 0) {
            return neg(errno::EINVAL);
        }
        let Some(field) = csum_field(s, offset) else {
            return neg(14);
        };
        csum_replace(field, size, from, to);
        0
    })
    .unwrap_or(neg(errno::EINVAL))
}

fn l4_csum_replace(ctx: u64, offset: u64, from: u64, to: u64, flags: u64) -> u64 {
    const MANGLED_0: u64 = 0x20;
    const ENFORCE: u64 = 0x40;
    const PSEUDO: u64 = 0x10;
    with_state(|s| {
        if ctx != s.ctx {
            return s.fault("l4_csum_replace: first argument is not the context".into());
        }
        let size = flags & 0xf;
        if flags & !(MANGLED_0 | ENFORCE | PSEUDO | 0xf) != 0 || !matches!(size, 0 | 2 | 4) {
            return neg(errno::EINVAL);
        }
        let Some(field) = csum_field(s, offset) else {
            return neg(14);
        };
        let mmzero = flags & MANGLED_0 != 0;
        // SAFETY: field is inside the packet.
        if mmzero && unsafe { field.read_unaligned() } == 0 {
            return 0;
        }
        csum_replace(field, size, from, to);
        // SAFETY: as above.
        if mmzero && unsafe { field.read_unaligned() } == 0 {
            // SAFETY: as above.
            unsafe { field.write_unaligned(0xffff) };
        }
        0
    })
    .unwrap_or(neg(errno::EINVAL))
}

fn xdp_adjust_head(ctx: u64, delta: u64, _: u64, _: u64, _: u64) -> u64 {
    with_state(|s| {
        if ctx != s.ctx {
            return s.fault("xdp_adjust_head: first argument is not the context".into());
        }
        let delta = delta as i32 as i64;
        let data = s.data as i64 + delta;
        let min = (s.buf_start + CTX_RESERVE as u64) as i64;
        if data < min || (s.data_end as i64) - data < ETH_HLEN as i64 {
            return neg(errno::EINVAL);
        }
        s.set_bounds(data as u64, s.data_end);
        0
    })
    .unwrap_or(neg(errno::EINVAL))
}

fn xdp_adjust_tail(ctx: u64, delta: u64, _: u64, _: u64, _: u64) -> u64 {
    with_state(|s| {
        if ctx != s.ctx {
            return s.fault("xdp_adjust_tail: first argument is not the context".into());
        }
        let delta = delta as i32 as i64;
        let end = s.data_end as i64 + delta;
        if end > s.buf_end as i64 || end - (s.data as i64) < ETH_HLEN as i64 {
            return neg(errno::EINVAL);
        }
        if delta > 0 {
            // The kernel hands out zeroed tail bytes when growing.
            // SAFETY: [data_end, end) is inside the buffer (checked above).
            unsafe { std::ptr::write_bytes(s.data_end as *mut u8, 0, delta as usize) };
        }
        s.set_bounds(s.data, end as u64);
        0
    })
    .unwrap_or(neg(errno::EINVAL))
}

fn record_stack(r10: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    with_state(|s| {
        if s.stack_top.is_some() {
            s.fault("the stack-recording helper was called twice".into());
        } else {
            s.stack_top = Some(r10);
        }
        0
    })
    .unwrap_or(0)
}

/// A helper function as rbpf calls it.
pub type HelperFn = rbpf::Helper;

/// rbpf's x86_64 JIT calls helpers with the stack 8 bytes off the 16-byte alignment the
/// System V ABI promises (its prologue pushes five registers, reserves the stack and makes
/// one internal call), and compiled Rust may rely on that alignment. Helpers registered
/// with the JIT therefore go through a trampoline that realigns the stack, calls the
/// helper and restores the stack.
macro_rules! jit_trampoline {
    ($name:ident, $helper:path) => {
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        extern "C" fn $name(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
            extern "C" fn inner(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
                $helper(a, b, c, d, e)
            }
            core::arch::naked_asm!(
                "push rbp",
                "mov rbp, rsp",
                "and rsp, -16",
                "call {f}",
                "mov rsp, rbp",
                "pop rbp",
                "ret",
                f = sym inner,
            )
        }
    };
}

jit_trampoline!(jit_map_lookup, map_lookup);
jit_trampoline!(jit_map_update, map_update);
jit_trampoline!(jit_ubpf_map_update, ubpf_map_update);
jit_trampoline!(jit_map_delete, map_delete);
jit_trampoline!(jit_ktime_get_ns, ktime_get_ns);
jit_trampoline!(jit_trace_printk, trace_printk);
jit_trampoline!(jit_get_prandom_u32, get_prandom_u32);
jit_trampoline!(jit_get_smp_processor_id, get_smp_processor_id);
jit_trampoline!(jit_l3_csum_replace, l3_csum_replace);
jit_trampoline!(jit_l4_csum_replace, l4_csum_replace);
jit_trampoline!(jit_redirect, redirect_helper);
jit_trampoline!(jit_csum_diff, csum_diff);
jit_trampoline!(jit_xdp_adjust_head, xdp_adjust_head);
jit_trampoline!(jit_xdp_adjust_tail, xdp_adjust_tail);
jit_trampoline!(jit_record_stack, record_stack);
jit_trampoline!(jit_ubpf_printf, ubpf_printf);
jit_trampoline!(jit_ubpf_hash, ubpf_hash);

type CHelper = extern "C" fn(u64, u64, u64, u64, u64) -> u64;

/// One helper: number, name, the function for the interpreter and cranelift, and the
/// stack-realigning trampoline for the x86_64 JIT.
type Entry = (u32, &'static str, HelperFn, CHelper);

fn entries(abi: Abi) -> Vec<Entry> {
    let mut t: Vec<Entry> = match abi {
        Abi::Xdp => vec![
            (
                kernel::MAP_LOOKUP_ELEM,
                "map_lookup_elem",
                map_lookup,
                jit_map_lookup,
            ),
            (
                kernel::MAP_UPDATE_ELEM,
                "map_update_elem",
                map_update,
                jit_map_update,
            ),
            (
                kernel::MAP_DELETE_ELEM,
                "map_delete_elem",
                map_delete,
                jit_map_delete,
            ),
            (
                kernel::KTIME_GET_NS,
                "ktime_get_ns",
                ktime_get_ns,
                jit_ktime_get_ns,
            ),
            (
                kernel::KTIME_GET_BOOT_NS,
                "ktime_get_boot_ns",
                ktime_get_ns,
                jit_ktime_get_ns,
            ),
            (
                kernel::TRACE_PRINTK,
                "trace_printk",
                trace_printk,
                jit_trace_printk,
            ),
            (
                kernel::GET_PRANDOM_U32,
                "get_prandom_u32",
                get_prandom_u32,
                jit_get_prandom_u32,
            ),
            (
                kernel::GET_SMP_PROCESSOR_ID,
                "get_smp_processor_id",
                get_smp_processor_id,
                jit_get_smp_processor_id,
            ),
            (
                kernel::L3_CSUM_REPLACE,
                "l3_csum_replace",
                l3_csum_replace,
                jit_l3_csum_replace,
            ),
            (
                kernel::L4_CSUM_REPLACE,
                "l4_csum_replace",
                l4_csum_replace,
                jit_l4_csum_replace,
            ),
            (kernel::REDIRECT, "redirect", redirect_helper, jit_redirect),
            (kernel::CSUM_DIFF, "csum_diff", csum_diff, jit_csum_diff),
            (
                kernel::XDP_ADJUST_HEAD,
                "xdp_adjust_head",
                xdp_adjust_head,
                jit_xdp_adjust_head,
            ),
            (
                kernel::XDP_ADJUST_TAIL,
                "xdp_adjust_tail",
                xdp_adjust_tail,
                jit_xdp_adjust_tail,
            ),
        ],
        Abi::Ubpf => vec![
            (
                ubpf::MAP_LOOKUP,
                "ubpf_map_lookup",
                map_lookup,
                jit_map_lookup,
            ),
            (
                ubpf::MAP_UPDATE,
                "ubpf_map_update",
                ubpf_map_update,
                jit_ubpf_map_update,
            ),
            (
                ubpf::MAP_DELETE,
                "ubpf_map_delete",
                map_delete,
                jit_map_delete,
            ),
            (
                ubpf::TIME_GET_NS,
                "ubpf_time_get_ns",
                ktime_get_ns,
                jit_ktime_get_ns,
            ),
            (ubpf::HASH, "ubpf_hash", ubpf_hash, jit_ubpf_hash),
            (ubpf::PRINTF, "ubpf_printf", ubpf_printf, jit_ubpf_printf),
        ],
    };
    t.push((
        RECORD_STACK_HELPER,
        "(record stack)",
        record_stack,
        jit_record_stack,
    ));
    t
}

/// The helpers of an ABI, by number, with their names, as the interpreter and cranelift
/// call them.
pub fn table(abi: Abi) -> Vec<(u32, &'static str, HelperFn)> {
    entries(abi)
        .into_iter()
        .map(|(n, name, f, _)| (n, name, f))
        .collect()
}

/// The helpers of an ABI as rbpf's x86_64 JIT must call them (through stack-realigning
/// trampolines).
pub fn jit_table(abi: Abi) -> Vec<(u32, HelperFn)> {
    entries(abi)
        .into_iter()
        .map(|(n, _, _, t)| {
            // SAFETY: the JIT only takes the address and calls it with the System V
            // convention (arguments in rdi, rsi, rdx, rcx, r8), which is the trampoline's
            // `extern "C"` convention; the interpreter never calls these.
            let f: HelperFn = unsafe { std::mem::transmute::<CHelper, HelperFn>(t) };
            (n, f)
        })
        .collect()
}

/// Why a helper number is refused for an ABI, or `None` when it is implemented.
pub fn refuse_reason(abi: Abi, id: u32) -> Option<String> {
    if id == RECORD_STACK_HELPER {
        return Some("helper number reserved by bpfswitch".into());
    }
    if abi == Abi::Ubpf && id == ubpf::MAP_ADD {
        return Some(
            "ubpf_map_add needs bloom-filter or count-min maps, which bpfswitch does not support"
                .into(),
        );
    }
    if table(abi).iter().any(|(n, _, _)| *n == id) {
        return None;
    }
    Some(format!(
        "unknown or unsupported helper #{id} for the {abi:?} ABI"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csum_fold_of_ipv4_header() {
        // 45 00 00 73 00 00 40 00 40 11 [b8 61] c0 a8 00 01 c0 a8 00 c7 (checksum b861).
        let hdr: [u8; 20] = [
            0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0,
            0xc7,
        ];
        let words: Vec<u32> = hdr
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let c = csum_fold(csum_partial(&words, 0));
        assert_eq!(c.to_le_bytes(), [0xb8, 0x61]);
    }

    #[test]
    fn csum_replace2_matches_recomputation() {
        // Change the TTL/protocol word of the header above and compare with a fresh sum.
        let mut hdr: [u8; 20] = [
            0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8,
            0, 0xc7,
        ];
        let old = u16::from_le_bytes([hdr[8], hdr[9]]);
        hdr[8] -= 1;
        let new = u16::from_le_bytes([hdr[8], hdr[9]]);
        let field = hdr[10..].as_mut_ptr() as *mut u16;
        csum_replace(field, 2, u64::from(old), u64::from(new));
        let got = [hdr[10], hdr[11]];
        hdr[10] = 0;
        hdr[11] = 0;
        let words: Vec<u32> = hdr
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, csum_fold(csum_partial(&words, 0)).to_le_bytes());
    }

    #[test]
    fn printk_formats_integers() {
        let mut s = RunState {
            buf_start: 0,
            buf_end: 0,
            data: 0,
            data_end: 0,
            ctx: 0,
            redirect: None,
            checked: true,
            stack_top: None,
            maps: std::ptr::null(),
            abi: Abi::Xdp,
            time_ns: None,
            fault: None,
        };
        assert_eq!(
            format_printk(
                &mut s,
                b"a=%d b=%u c=%x %llx %%",
                &[-3i64 as u64, 7, 255, 1 << 40]
            ),
            "a=-3 b=7 c=ff 10000000000 %"
        );
        // An unreadable %s argument prints a placeholder, not memory.
        assert_eq!(format_printk(&mut s, b"%s", &[0x1234]), "(?)");
    }
}
