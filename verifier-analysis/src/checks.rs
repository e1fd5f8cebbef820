//! Safety conditions: every memory access (loads, stores, atomics, memory passed to helpers)
//! is checked here against its region's bounds and permissions, and packet accesses are
//! recorded into the read and write sets.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::{MapSet, Pointer, Region, Scalar, State, Value};
use crate::platform::{xdp_ctx_field, Abi, ArgType, MapDescr, Platform, STACK_SIZE, XDP_MD_SIZE};
use crate::{AccessSet, CtxAccess, Program, RejectReason};

/// Largest variable offset accepted in pointer arithmetic (as the kernel's `BPF_MAX_VAR_OFF`).
pub const MAX_VAR_OFF: i64 = 1 << 29;

/// Facts gathered over the whole analysis.
#[derive(Default, Debug)]
pub struct Acc {
    /// Packet bytes read.
    pub reads: AccessSet,
    /// Packet bytes written.
    pub writes: AccessSet,
    /// Helper numbers called.
    pub helpers: BTreeSet<i32>,
    /// Map indices referenced.
    pub maps: BTreeSet<usize>,
    /// Context accesses by instruction.
    pub ctx: BTreeMap<usize, CtxAccess>,
    /// Writes maps or reads time/randomness.
    pub stateful: bool,
    /// Calls a resizing helper.
    pub may_resize: bool,
    /// Possible return values.
    pub ret: Option<Scalar>,
}

/// Everything a check needs besides the state.
pub struct Env<'a> {
    /// The program.
    pub prog: &'a Program,
    /// Its platform.
    pub platform: &'a Platform,
    /// Accumulated facts.
    pub acc: Acc,
}

/// A memory access kind.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// A load.
    Read,
    /// A store of the given value.
    Write(Value),
    /// An atomic read-modify-write.
    Atomic,
}

type R<T> = Result<T, RejectReason>;

fn oob(region: &str, lo: i64, hi: i64, limit: i64, hint: &str) -> RejectReason {
    RejectReason::OutOfBounds {
        region: region.to_string(),
        lo,
        hi,
        limit,
        hint: hint.to_string(),
    }
}

/// Bytes `[lo, hi)` of the packet that an access of `size` bytes at `p + off` may touch,
/// after checking they are proven inside the packet.
pub fn packet_bytes(st: &State, p: &Pointer, off: i64, size: i64) -> R<(i64, i64)> {
    let o = p.off + off;
    let lo = p.var.smin.saturating_add(o);
    let hi = p.var.smax.saturating_add(o).saturating_add(size);
    if lo < 0 {
        return Err(oob(
            "packet",
            lo,
            hi,
            st.min_len,
            " (before the packet start: use an unsigned offset or check it is non-negative)",
        ));
    }
    let ok = o + size <= p.range || hi <= st.min_len;
    if !ok {
        // The proven prefix of the packet, in bytes from its start.
        let limit = if p.fixed() {
            st.min_len.max(p.range)
        } else {
            st.min_len.max(p.var.smin.max(0) + p.range)
        };
        let hint = if p.fixed() {
            " (compare the pointer against data_end first)".to_string()
        } else {
            format!(
                " (variable offset {}..={} from the packet start; compare this pointer against data_end first)",
                p.var.smin, p.var.smax
            )
        };
        return Err(oob("packet", lo, hi, limit, &hint));
    }
    Ok((lo, hi))
}

fn record(set: &mut AccessSet, st: &State, lo: i64, hi: i64) {
    if st.resized {
        set.set_unbounded();
    } else {
        set.add(lo, hi);
    }
}

fn stack_offset(p: &Pointer, off: i64, size: i64) -> R<i64> {
    let Some(v) = p.var.as_const() else {
        return Err(RejectReason::Unsupported {
            detail: "variable-offset stack access".into(),
        });
    };
    let o = p.off + off + v as i64;
    if o < -STACK_SIZE || o + size > 0 {
        return Err(oob("stack", o, o + size, 0, " (the stack is fp-512..fp-1)"));
    }
    Ok(o)
}

/// The maps of a set, as descriptions.
pub fn maps_of<'a>(env: &Env<'a>, set: MapSet) -> impl Iterator<Item = &'a MapDescr> + 'a {
    let maps = &env.prog.maps;
    set.iter().filter_map(move |i| maps.get(i))
}

fn map_value_bytes(env: &Env, p: &Pointer, map: MapSet, off: i64, size: i64) -> R<(i64, i64)> {
    let vs = maps_of(env, map)
        .map(|m| m.value_size as i64)
        .min()
        .unwrap_or(0);
    let o = p.off + off;
    let lo = p.var.smin.saturating_add(o);
    let hi = p.var.smax.saturating_add(o).saturating_add(size);
    if lo < 0 || hi > vs {
        let name = maps_of(env, map)
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(" | ");
        return Err(oob(&format!("map value ({name})"), lo, hi, vs, ""));
    }
    Ok((lo, hi))
}

fn ctx_access(env: &mut Env, pc: usize, p: &Pointer, off: i64, size: u8, acc: Access) -> R<Value> {
    if env.prog.abi != Abi::Xdp {
        return Err(RejectReason::Unsupported {
            detail: "context access in a uBPF program".into(),
        });
    }
    if p.off != 0 || !p.fixed() {
        return Err(RejectReason::BadCtxAccess {
            detail: format!("dereference of modified ctx pointer (offset {})", p.off),
        });
    }
    let bad = |d: String| Err(RejectReason::BadCtxAccess { detail: d });
    if off < 0 || off + size as i64 > XDP_MD_SIZE as i64 {
        return bad(format!("offset {off} size {size} is outside struct xdp_md"));
    }
    let field_off = (off / 4 * 4) as i16;
    let Some(field) = xdp_ctx_field(field_off) else {
        return bad(format!("offset {off} is not a field of struct xdp_md"));
    };
    let is_store = !matches!(acc, Access::Read);
    env.acc.ctx.insert(
        pc,
        CtxAccess {
            insn: pc,
            offset: off as i16,
            size,
            is_store,
        },
    );
    if is_store {
        return Err(RejectReason::ReadOnlyWrite {
            what: format!("context field xdp_md.{}", field.name),
        });
    }
    let pointer_field = matches!(field.name, "data" | "data_end" | "data_meta");
    if pointer_field {
        if size != 4 || off != field_off as i64 {
            return bad(format!(
                "xdp_md.{} must be loaded with a 4-byte load, got {size} bytes at {off}",
                field.name
            ));
        }
        return Ok(Value::Ptr(Pointer::new(match field.name {
            "data" => Region::Packet,
            "data_end" => Region::PacketEnd,
            _ => Region::PacketMeta,
        })));
    }
    if off % size as i64 != 0 || off + size as i64 > field_off as i64 + 4 || size > 4 {
        return bad(format!(
            "misaligned or oversized load of xdp_md.{} ({size} bytes at {off})",
            field.name
        ));
    }
    Ok(Value::scalar(Scalar::of_size(size)))
}

/// Checks a load, store or atomic at `p + off` (`reg` holds `p`) and returns the loaded value.
#[allow(
    clippy::too_many_arguments,
    reason = "each argument is one fact about the access; a struct would only rename them"
)]
pub fn access(
    env: &mut Env,
    st: &mut State,
    pc: usize,
    reg: u8,
    p: &Pointer,
    off: i64,
    size: u8,
    acc: Access,
) -> R<Value> {
    let sz = size as i64;
    match p.region {
        Region::Ctx => ctx_access(env, pc, p, off, size, acc),
        Region::Packet => {
            if acc == Access::Atomic {
                return Err(RejectReason::Unsupported {
                    detail: "atomic operation on packet memory".into(),
                });
            }
            let (lo, hi) = packet_bytes(st, p, off, sz)?;
            match acc {
                Access::Write(v) => {
                    if v.is_pointerish() {
                        return Err(RejectReason::PointerLeak {
                            detail: "storing a pointer into the packet".into(),
                        });
                    }
                    if !env.platform.packet_writable {
                        return Err(RejectReason::ReadOnlyWrite {
                            what: "packet".into(),
                        });
                    }
                    record(&mut env.acc.writes, st, lo, hi);
                }
                _ => record(&mut env.acc.reads, st, lo, hi),
            }
            Ok(Value::scalar(Scalar::of_size(size)))
        }
        Region::Stack { frame } => {
            let o = stack_offset(p, off, sz)?;
            let stack = &mut st.frames[frame as usize].stack;
            match acc {
                Access::Write(v) => {
                    if v.is_pointerish() && size != 8 {
                        return Err(RejectReason::PointerLeak {
                            detail: format!(
                                "{size}-byte store of a pointer (spills must be 8 bytes)"
                            ),
                        });
                    }
                    stack.store(o, size, v);
                    Ok(Value::Uninit)
                }
                Access::Read | Access::Atomic => {
                    if !stack.is_init(o, sz) {
                        return Err(RejectReason::UninitStack {
                            off: o,
                            end: o + sz,
                        });
                    }
                    let exact = stack.cell(o, size).is_some();
                    if !exact && stack.pointer_overlap(o, sz) {
                        return Err(RejectReason::PointerLeak {
                            detail: "partial read of a spilled pointer".into(),
                        });
                    }
                    if acc == Access::Atomic {
                        if exact
                            && stack
                                .cell(o, size)
                                .map(|c| c.value.is_pointerish())
                                .unwrap_or(false)
                        {
                            return Err(RejectReason::PointerLeak {
                                detail: "atomic operation on a spilled pointer".into(),
                            });
                        }
                        stack.store_unknown(o, size);
                        return Ok(Value::scalar(Scalar::of_size(size)));
                    }
                    Ok(stack.load(o, size))
                }
            }
        }
        Region::MapValue { map } => {
            map_value_bytes(env, p, map, off, sz)?;
            if !matches!(acc, Access::Read) {
                if let Some(m) = maps_of(env, map).find(|m| m.read_only) {
                    return Err(RejectReason::ReadOnlyWrite {
                        what: format!("map {} (read-only)", m.name),
                    });
                }
                if let Access::Write(v) = acc {
                    if v.is_pointerish() {
                        return Err(RejectReason::PointerLeak {
                            detail: "storing a pointer into a map value".into(),
                        });
                    }
                }
                env.acc.stateful = true;
            }
            Ok(Value::scalar(Scalar::of_size(size)))
        }
        Region::MapValueOrNull { .. } => Err(RejectReason::NullDeref { reg }),
        Region::PacketEnd | Region::PacketMeta | Region::MapPtr { .. } => {
            Err(RejectReason::BadDeref {
                reg,
                what: p.region.describe(),
            })
        }
    }
}

/// Checks that `size_max` bytes at the pointer in `reg` can be read by a helper (`size_max`
/// is the largest size the program may pass).
pub fn helper_mem(
    env: &mut Env,
    st: &mut State,
    helper: &str,
    reg: u8,
    v: &Value,
    size_max: i64,
    expected: ArgType,
) -> R<()> {
    if size_max == 0 {
        return Ok(());
    }
    let wrong = |got: String| RejectReason::HelperArg {
        helper: helper.to_string(),
        arg: reg,
        expected,
        got,
    };
    let Value::Ptr(p) = v else {
        return Err(wrong(describe(v)));
    };
    match p.region {
        Region::Stack { frame } => {
            let o = stack_offset(p, 0, size_max)?;
            let stack = &st.frames[frame as usize].stack;
            if !stack.is_init(o, size_max) {
                return Err(RejectReason::UninitStack {
                    off: o,
                    end: o + size_max,
                });
            }
            if stack.pointer_overlap(o, size_max) {
                return Err(RejectReason::PointerLeak {
                    detail: format!("stack memory passed to {helper} holds a pointer"),
                });
            }
            Ok(())
        }
        Region::Packet => {
            let (lo, hi) = packet_bytes(st, p, 0, size_max)?;
            record(&mut env.acc.reads, st, lo, hi);
            Ok(())
        }
        Region::MapValue { map } => map_value_bytes(env, p, map, 0, size_max).map(|_| ()),
        Region::MapValueOrNull { .. } => Err(RejectReason::NullDeref { reg }),
        _ => Err(wrong(describe(v))),
    }
}

/// Records a helper's read and write of the two checksum bytes at a packet offset.
pub fn packet_csum_field(env: &mut Env, st: &State, offset: &Scalar) {
    let lo = offset.smin;
    let hi = offset.smax.saturating_add(2);
    if lo < 0 || hi > crate::platform::MAX_PACKET_LEN as i64 || st.resized {
        env.acc.reads.set_unbounded();
        env.acc.writes.set_unbounded();
    } else {
        env.acc.reads.add(lo, hi);
        env.acc.writes.add(lo, hi);
    }
}

/// A short description of a value for messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Uninit => "uninitialised".into(),
        Value::Scalar { n, .. } => match n.as_const() {
            Some(c) => format!("scalar {c}"),
            None => "scalar".into(),
        },
        Value::Ptr(p) => p.region.describe(),
        Value::Stale => "invalidated packet pointer".into(),
        Value::Mixed => "pointer or scalar (paths disagree)".into(),
    }
}
