//! Human-readable and JSON reports of an analysis: the verdict, the offending instruction
//! disassembled in context, and the read and write sets, named as header fields where they
//! fall on one under the common layout Ethernet (14 bytes) + IPv4 (20 bytes, no options) +
//! UDP or TCP.

use std::fmt::Write as _;

use serde::Serialize;

use crate::domain::{Region, Scalar, Value};
use crate::insn::{decode_all, disasm, Instr, Names};
use crate::platform::{xdp_ctx_field, Abi, MapType, Platform};
use crate::{AccessSet, Analysis, ByteRange, Program, Verdict};

/// A named packet field at a fixed offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct HeaderField {
    /// `layer.field`.
    pub name: &'static str,
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

const fn f(name: &'static str, start: u32, end: u32) -> HeaderField {
    HeaderField { name, start, end }
}

/// Ethernet and IPv4 (no options) fields, shared by both transport layouts.
const ETH_IPV4: &[HeaderField] = &[
    f("eth.dst", 0, 6),
    f("eth.src", 6, 12),
    f("eth.type", 12, 14),
    f("ipv4.version_ihl", 14, 15),
    f("ipv4.tos", 15, 16),
    f("ipv4.total_len", 16, 18),
    f("ipv4.id", 18, 20),
    f("ipv4.frag_off", 20, 22),
    f("ipv4.ttl", 22, 23),
    f("ipv4.proto", 23, 24),
    f("ipv4.checksum", 24, 26),
    f("ipv4.src", 26, 30),
    f("ipv4.dst", 30, 34),
];

/// UDP header fields after Ethernet + IPv4; the payload starts at 42.
pub const UDP_FIELDS: &[HeaderField] = &[
    f("udp.src_port", 34, 36),
    f("udp.dst_port", 36, 38),
    f("udp.len", 38, 40),
    f("udp.checksum", 40, 42),
];

/// TCP header fields (no options) after Ethernet + IPv4; the payload starts at 54.
pub const TCP_FIELDS: &[HeaderField] = &[
    f("tcp.src_port", 34, 36),
    f("tcp.dst_port", 36, 38),
    f("tcp.seq", 38, 42),
    f("tcp.ack", 42, 46),
    f("tcp.data_off", 46, 47),
    f("tcp.flags", 47, 48),
    f("tcp.window", 48, 50),
    f("tcp.checksum", 50, 52),
    f("tcp.urgent", 52, 54),
];

/// Transport layer assumed when naming bytes past the IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum L4 {
    /// UDP (payload from byte 42).
    Udp,
    /// TCP without options (payload from byte 54).
    Tcp,
}

/// Names the bytes of `set` as header fields under Ethernet + IPv4 + `l4`. Partly covered
/// fields are named with the bytes covered (`ipv4.src[2..4]`); bytes after the transport
/// header are `udp.payload[a..b]` (offsets from the payload start).
pub fn field_names(set: &AccessSet, l4: L4) -> Vec<String> {
    let ranges = match set {
        AccessSet::Unbounded => return vec!["anywhere (unbounded)".to_string()],
        AccessSet::Ranges(r) => r,
    };
    let (l4_fields, payload_start, payload) = match l4 {
        L4::Udp => (UDP_FIELDS, 42, "udp.payload"),
        L4::Tcp => (TCP_FIELDS, 54, "tcp.payload"),
    };
    let mut out = Vec::new();
    for r in ranges {
        for fl in ETH_IPV4.iter().chain(l4_fields) {
            let s = r.start.max(fl.start);
            let e = r.end.min(fl.end);
            if s < e {
                if s == fl.start && e == fl.end {
                    out.push(fl.name.to_string());
                } else {
                    out.push(format!("{}[{}..{}]", fl.name, s - fl.start, e - fl.start));
                }
            }
        }
        if r.end > payload_start {
            let s = r.start.max(payload_start) - payload_start;
            out.push(format!("{payload}[{s}..{}]", r.end - payload_start));
        }
    }
    out.dedup();
    out
}

fn fmt_ranges(set: &AccessSet) -> String {
    match set {
        AccessSet::Unbounded => "unbounded".to_string(),
        AccessSet::Ranges(r) if r.is_empty() => "none".to_string(),
        AccessSet::Ranges(r) => r
            .iter()
            .map(|ByteRange { start, end }| format!("[{start}, {end})"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

struct ProgNames<'a> {
    prog: &'a Program,
    platform: Platform,
}

impl Names for ProgNames<'_> {
    fn helper_name(&self, id: i32) -> Option<String> {
        self.platform.helper(id).map(|h| h.name.to_string())
    }
    fn map_name(&self, idx: i64) -> Option<String> {
        self.prog
            .maps
            .get(usize::try_from(idx).ok()?)
            .map(|m| m.name.clone())
    }
}

/// One disassembled instruction.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    /// Instruction index.
    pub insn: usize,
    /// Disassembly.
    pub text: String,
}

/// Disassembles the whole program (second `ld_imm64` slots omitted), naming helpers and maps.
pub fn disassemble(prog: &Program) -> Vec<Line> {
    let names = ProgNames {
        prog,
        platform: Platform::for_abi(prog.abi),
    };
    decode_all(&prog.insns)
        .iter()
        .enumerate()
        .filter(|(_, i)| !matches!(i, Instr::Imm64Tail))
        .map(|(pc, i)| {
            let mut text = disasm(i, &names);
            // A reference the loader resolved (an ELF relocation) is not in the encoding.
            if let Some(r) = prog.map_refs.get(&pc) {
                let name = names
                    .map_name(r.map as i64)
                    .unwrap_or_else(|| format!("#{}", r.map));
                match r.value_offset {
                    None => text.push_str(&format!("  ; map {name}")),
                    Some(off) => text.push_str(&format!("  ; &{name}[{off}]")),
                }
            }
            Line { insn: pc, text }
        })
        .collect()
}

/// Everything a report shows, in serialisable form (the JSON output of `bpfswitch verify`).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// "accept" or "reject".
    pub verdict: &'static str,
    /// Offending instruction (rejections).
    pub insn: Option<usize>,
    /// The reason, structured (rejections).
    pub reason: Option<crate::RejectReason>,
    /// The reason as a sentence (rejections).
    pub message: Option<String>,
    /// Instructions around the offending one.
    pub context: Vec<Line>,
    /// Packet read set.
    pub packet_reads: AccessSet,
    /// Packet write set.
    pub packet_writes: AccessSet,
    /// Read set as fields, UDP layout.
    pub reads_fields_udp: Vec<String>,
    /// Read set as fields, TCP layout.
    pub reads_fields_tcp: Vec<String>,
    /// Write set as fields, UDP layout.
    pub writes_fields_udp: Vec<String>,
    /// Write set as fields, TCP layout.
    pub writes_fields_tcp: Vec<String>,
    /// May resize the packet.
    pub may_resize: bool,
    /// Stateful.
    pub stateful: bool,
    /// Helpers called.
    pub helpers_used: Vec<crate::HelperUse>,
    /// Maps referenced, by name.
    pub maps_used: Vec<String>,
    /// Context accesses.
    pub ctx_accesses: Vec<crate::CtxAccess>,
    /// Possible return values `[min, max]` (unsigned).
    pub return_range: Option<(u64, u64)>,
    /// Instructions in the program.
    pub instructions: usize,
    /// Analysis points visited.
    pub visits: usize,
}

/// Instructions shown before and after the offending one.
pub const CONTEXT_LINES: usize = 3;

impl Report {
    /// Builds the report of `analysis` on `prog`.
    pub fn new(prog: &Program, analysis: &Analysis) -> Report {
        let (verdict, insn, reason) = match &analysis.verdict {
            Verdict::Accept => ("accept", None, None),
            Verdict::Reject { insn, reason } => ("reject", Some(*insn), Some(reason.clone())),
        };
        let context = match insn {
            Some(pc) => disassemble(prog)
                .into_iter()
                .filter(|l| l.insn + CONTEXT_LINES >= pc && l.insn <= pc + CONTEXT_LINES)
                .collect(),
            None => Vec::new(),
        };
        Report {
            verdict,
            insn,
            message: reason.as_ref().map(|r| r.to_string()),
            reason,
            context,
            reads_fields_udp: field_names(&analysis.packet_reads, L4::Udp),
            reads_fields_tcp: field_names(&analysis.packet_reads, L4::Tcp),
            writes_fields_udp: field_names(&analysis.packet_writes, L4::Udp),
            writes_fields_tcp: field_names(&analysis.packet_writes, L4::Tcp),
            packet_reads: analysis.packet_reads.clone(),
            packet_writes: analysis.packet_writes.clone(),
            may_resize: analysis.may_resize,
            stateful: analysis.stateful,
            helpers_used: analysis.helpers_used.clone(),
            maps_used: analysis
                .maps_used
                .iter()
                .map(|&m| {
                    prog.maps
                        .get(m)
                        .map(|d| d.name.clone())
                        .unwrap_or_else(|| format!("map{m}"))
                })
                .collect(),
            ctx_accesses: analysis.ctx_accesses.clone(),
            return_range: analysis.return_value.map(|s| (s.umin, s.umax)),
            instructions: prog.insns.len(),
            visits: analysis.visits,
        }
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serialises")
    }
}

fn map_type(t: MapType) -> String {
    match t {
        MapType::Hash => "hash".into(),
        MapType::Array => "array".into(),
        MapType::PerCpuHash => "percpu_hash".into(),
        MapType::PerCpuArray => "percpu_array".into(),
        MapType::LruHash => "lru_hash".into(),
        MapType::LpmTrie => "lpm_trie".into(),
        MapType::Other(n) => format!("type {n}"),
    }
}

fn field_line(out: &mut String, what: &str, udp: &[String], tcp: &[String]) {
    if udp.is_empty() {
        return;
    }
    if udp == tcp {
        let _ = writeln!(out, "  {what} {}", udp.join(", "));
    } else {
        let _ = writeln!(out, "  {what} {} (if UDP)", udp.join(", "));
        let _ = writeln!(out, "  {what} {} (if TCP)", tcp.join(", "));
    }
}

/// The report as text, for people.
pub fn render_text(prog: &Program, analysis: &Analysis) -> String {
    let r = Report::new(prog, analysis);
    let mut out = String::new();
    match (&r.insn, &r.message) {
        (Some(pc), Some(msg)) => {
            let _ = writeln!(out, "verdict: REJECT at instruction {pc}: {msg}");
            for l in &r.context {
                let mark = if l.insn == *pc { ">" } else { " " };
                let _ = writeln!(out, "  {mark} {:4}: {}", l.insn, l.text);
            }
        }
        _ => {
            let _ = writeln!(
                out,
                "verdict: ACCEPT ({} instructions, {} analysis steps)",
                r.instructions, r.visits
            );
        }
    }
    let _ = writeln!(out, "packet reads:  {}", fmt_ranges(&r.packet_reads));
    field_line(&mut out, "reads", &r.reads_fields_udp, &r.reads_fields_tcp);
    let _ = writeln!(out, "packet writes: {}", fmt_ranges(&r.packet_writes));
    field_line(
        &mut out,
        "writes",
        &r.writes_fields_udp,
        &r.writes_fields_tcp,
    );
    let yn = |b: bool| if b { "yes" } else { "no" };
    let _ = writeln!(out, "may resize packet: {}", yn(r.may_resize));
    let _ = writeln!(out, "stateful: {}", yn(r.stateful));
    let helpers: Vec<String> = r
        .helpers_used
        .iter()
        .map(|h| format!("{}#{}", h.name, h.id))
        .collect();
    let _ = writeln!(
        out,
        "helpers: {}",
        if helpers.is_empty() {
            "none".into()
        } else {
            helpers.join(", ")
        }
    );
    let maps: Vec<String> = analysis
        .maps_used
        .iter()
        .filter_map(|&m| prog.maps.get(m))
        .map(|m| {
            format!(
                "{} ({}, key {}, value {}, max {}{})",
                m.name,
                map_type(m.map_type),
                m.key_size,
                m.value_size,
                m.max_entries,
                if m.read_only { ", read-only" } else { "" }
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "maps: {}",
        if maps.is_empty() {
            "none".into()
        } else {
            maps.join("; ")
        }
    );
    if !r.ctx_accesses.is_empty() {
        let ctx: Vec<String> = r
            .ctx_accesses
            .iter()
            .map(|c| {
                let name = xdp_ctx_field(c.offset / 4 * 4)
                    .map(|f| f.name)
                    .unwrap_or("?");
                format!(
                    "{}: xdp_md.{name}{}",
                    c.insn,
                    if c.is_store { " (store)" } else { "" }
                )
            })
            .collect();
        let _ = writeln!(out, "context accesses: {}", ctx.join(", "));
    }
    if let Some((lo, hi)) = r.return_range {
        let names = if prog.abi == Abi::Xdp && hi <= 4 {
            const XDP: [&str; 5] = [
                "XDP_ABORTED",
                "XDP_DROP",
                "XDP_PASS",
                "XDP_TX",
                "XDP_REDIRECT",
            ];
            format!(" ({})", XDP[lo as usize..=hi as usize].join(", "))
        } else {
            String::new()
        };
        if lo == hi {
            let _ = writeln!(out, "returns: {lo}{names}");
        } else {
            let _ = writeln!(out, "returns: {lo}..={hi}{names}");
        }
    }
    out
}

/// A compact description of an abstract value, in the spirit of the kernel's verifier log
/// (`pkt(off=14,var=[0,60],r=26)`, `[0,255]`, `7`).
pub fn describe_value(v: &Value) -> String {
    fn scalar(n: &Scalar) -> String {
        match n.as_const() {
            Some(c) if c < 1 << 32 => format!("{c}"),
            Some(c) => format!("{c:#x}"),
            None if n.umax == u64::MAX && n.smin == i64::MIN => "scalar".to_string(),
            None if n.smin < 0 && n.smax >= 0 => format!("[{},{}]", n.smin, n.smax),
            None => format!("[{},{}]", n.umin, n.umax),
        }
    }
    match v {
        Value::Uninit => "?".to_string(),
        Value::Stale => "stale".to_string(),
        Value::Mixed => "mixed".to_string(),
        Value::Scalar { n, len, .. } => match len {
            Some(k) => format!("len{k:+}"),
            None => scalar(n),
        },
        Value::Ptr(p) => {
            let mut parts = Vec::new();
            if p.off != 0 {
                parts.push(format!("off={}", p.off));
            }
            if !p.fixed() {
                parts.push(format!("var={}", scalar(&p.var)));
            }
            if p.region == Region::Packet && p.range > 0 {
                parts.push(format!("r={}", p.range));
            }
            if parts.is_empty() {
                p.region.describe()
            } else {
                format!("{}({})", p.region.describe(), parts.join(","))
            }
        }
    }
}

/// The program disassembled with the registers known before each instruction, for
/// debugging a verdict (`-` marks instructions the analysis never reached).
pub fn render_states(prog: &Program, analysis: &Analysis) -> String {
    let mut out = String::new();
    for l in disassemble(prog) {
        let regs = match analysis.states.get(l.insn).copied().flatten() {
            None => "-".to_string(),
            Some(regs) => regs
                .iter()
                .enumerate()
                .filter(|(i, v)| *i != 10 && **v != Value::Uninit)
                .map(|(i, v)| format!("r{i}={}", describe_value(v)))
                .collect::<Vec<_>>()
                .join(" "),
        };
        let _ = writeln!(out, "{:5}: {:40} ; {regs}", l.insn, l.text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[(u32, u32)]) -> AccessSet {
        AccessSet::Ranges(
            v.iter()
                .map(|&(start, end)| ByteRange { start, end })
                .collect(),
        )
    }

    #[test]
    fn names_header_fields() {
        assert_eq!(
            field_names(&set(&[(22, 23), (24, 26)]), L4::Udp),
            ["ipv4.ttl", "ipv4.checksum"]
        );
        assert_eq!(field_names(&set(&[(28, 30)]), L4::Udp), ["ipv4.src[2..4]"]);
        assert_eq!(
            field_names(&set(&[(40, 46)]), L4::Udp),
            ["udp.checksum", "udp.payload[0..4]"]
        );
        assert_eq!(
            field_names(&set(&[(40, 46)]), L4::Tcp),
            ["tcp.seq[2..4]", "tcp.ack"]
        );
        assert_eq!(
            field_names(&AccessSet::Unbounded, L4::Tcp),
            ["anywhere (unbounded)"]
        );
    }
}
