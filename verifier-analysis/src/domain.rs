//! Abstract domains: what the analysis knows about a register or stack slot at one point.
//!
//! * [`Tnum`]: known bits (a value and a mask of unknown bits), as the kernel verifier uses.
//! * [`Scalar`]: a reduced product of a signed interval, an unsigned interval and a [`Tnum`].
//! * [`Value`]: uninitialised, a scalar, or a typed pointer ([`Pointer`], [`Region`]).
//! * [`State`]: the registers and stack of every active call frame, plus the packet length
//!   known to be safe ("the packet is at least `min_len` bytes long").
//!
//! Packet pointers follow the kernel's representation: a pointer is `data + var + off` where
//! `off` is a constant and `var` a bounded scalar; pointers with the same non-zero `id` share
//! the same `var`, so a bounds check on one of them (`if p + 8 > data_end`) proves the bytes
//! `[data + var, data + var + range)` readable for all of them.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::platform::{MAX_PACKET_LEN, STACK_SIZE};

/// Known bits of a 64-bit value: bits set in `mask` are unknown; the others equal `value`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub struct Tnum {
    /// Known bit values (zero where unknown).
    pub value: u64,
    /// Unknown bits.
    pub mask: u64,
}

#[allow(
    clippy::should_implement_trait,
    reason = "abstract operations on sets of values, not numeric operators"
)]
impl Tnum {
    /// Nothing known.
    pub const UNKNOWN: Tnum = Tnum {
        value: 0,
        mask: u64::MAX,
    };

    /// Exactly `v`.
    pub const fn constant(v: u64) -> Tnum {
        Tnum { value: v, mask: 0 }
    }

    /// The tightest tnum containing every value in `min..=max`.
    pub fn range(min: u64, max: u64) -> Tnum {
        let chi = min ^ max;
        let bits = 64 - chi.leading_zeros();
        if bits >= 64 {
            return Tnum::UNKNOWN;
        }
        let delta = (1u64 << bits) - 1;
        Tnum {
            value: min & !delta,
            mask: delta,
        }
    }

    /// Whether every bit is known.
    pub fn is_const(self) -> bool {
        self.mask == 0
    }

    /// Whether `v` is one of the values described.
    pub fn contains(self, v: u64) -> bool {
        v & !self.mask == self.value
    }

    /// Sum.
    pub fn add(self, o: Tnum) -> Tnum {
        let sm = self.mask.wrapping_add(o.mask);
        let sv = self.value.wrapping_add(o.value);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | self.mask | o.mask;
        Tnum {
            value: sv & !mu,
            mask: mu,
        }
    }

    /// Difference.
    pub fn sub(self, o: Tnum) -> Tnum {
        let dv = self.value.wrapping_sub(o.value);
        let alpha = dv.wrapping_add(self.mask);
        let beta = dv.wrapping_sub(o.mask);
        let chi = alpha ^ beta;
        let mu = chi | self.mask | o.mask;
        Tnum {
            value: dv & !mu,
            mask: mu,
        }
    }

    /// Bitwise and.
    pub fn and(self, o: Tnum) -> Tnum {
        let alpha = self.value | self.mask;
        let beta = o.value | o.mask;
        let v = self.value & o.value;
        Tnum {
            value: v,
            mask: alpha & beta & !v,
        }
    }

    /// Bitwise or.
    pub fn or(self, o: Tnum) -> Tnum {
        let v = self.value | o.value;
        let mu = self.mask | o.mask;
        Tnum {
            value: v,
            mask: mu & !v,
        }
    }

    /// Bitwise exclusive or.
    pub fn xor(self, o: Tnum) -> Tnum {
        let v = self.value ^ o.value;
        let mu = self.mask | o.mask;
        Tnum {
            value: v & !mu,
            mask: mu,
        }
    }

    /// Left shift by a known amount (< 64).
    pub fn lsh(self, k: u32) -> Tnum {
        Tnum {
            value: self.value << k,
            mask: self.mask << k,
        }
    }

    /// Logical right shift by a known amount (< 64).
    pub fn rsh(self, k: u32) -> Tnum {
        Tnum {
            value: self.value >> k,
            mask: self.mask >> k,
        }
    }

    /// Arithmetic right shift by a known amount (< 64).
    pub fn arsh(self, k: u32) -> Tnum {
        Tnum {
            value: ((self.value as i64) >> k) as u64,
            mask: ((self.mask as i64) >> k) as u64,
        }
    }

    /// Product.
    pub fn mul(self, o: Tnum) -> Tnum {
        let mut a = self;
        let mut b = o;
        let acc_v = a.value.wrapping_mul(b.value);
        let mut acc_m = Tnum::constant(0);
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                acc_m = acc_m.add(Tnum {
                    value: 0,
                    mask: b.mask,
                });
            } else if a.mask & 1 != 0 {
                acc_m = acc_m.add(Tnum {
                    value: 0,
                    mask: b.value | b.mask,
                });
            }
            a = a.rsh(1);
            b = b.lsh(1);
        }
        Tnum::constant(acc_v).add(acc_m)
    }

    /// Values described by both (the caller checks emptiness via the intervals).
    pub fn intersect(self, o: Tnum) -> Tnum {
        let v = self.value | o.value;
        let mu = self.mask & o.mask;
        Tnum {
            value: v & !mu,
            mask: mu,
        }
    }

    /// Least tnum containing both.
    pub fn union(self, o: Tnum) -> Tnum {
        let mu = self.mask | o.mask | (self.value ^ o.value);
        Tnum {
            value: self.value & !mu,
            mask: mu,
        }
    }

    /// Keeps the low `bytes` bytes.
    pub fn cast(self, bytes: u8) -> Tnum {
        if bytes >= 8 {
            return self;
        }
        let m = (1u64 << (bytes as u32 * 8)) - 1;
        Tnum {
            value: self.value & m,
            mask: self.mask & m,
        }
    }

    /// Whether the two sets of values cannot overlap.
    pub fn disjoint(self, o: Tnum) -> bool {
        let known = !self.mask & !o.mask;
        (self.value ^ o.value) & known != 0
    }
}

/// Abstract 64-bit scalar: intervals (unsigned and signed) and known bits, kept consistent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub struct Scalar {
    /// Unsigned lower bound.
    pub umin: u64,
    /// Unsigned upper bound.
    pub umax: u64,
    /// Signed lower bound.
    pub smin: i64,
    /// Signed upper bound.
    pub smax: i64,
    /// Known bits.
    pub tnum: Tnum,
}

impl Scalar {
    /// Any 64-bit value.
    pub const fn unknown() -> Scalar {
        Scalar {
            umin: 0,
            umax: u64::MAX,
            smin: i64::MIN,
            smax: i64::MAX,
            tnum: Tnum::UNKNOWN,
        }
    }

    /// Exactly `v`.
    pub const fn constant(v: u64) -> Scalar {
        Scalar {
            umin: v,
            umax: v,
            smin: v as i64,
            smax: v as i64,
            tnum: Tnum::constant(v),
        }
    }

    /// Any value in `min..=max` (unsigned).
    pub fn urange(min: u64, max: u64) -> Scalar {
        let mut s = Scalar {
            umin: min,
            umax: max,
            ..Scalar::unknown()
        };
        s.tnum = Tnum::range(min, max);
        s.sync().unwrap_or(Scalar::unknown())
    }

    /// Any value in `min..=max` (signed).
    pub fn srange(min: i64, max: i64) -> Scalar {
        let s = Scalar {
            smin: min,
            smax: max,
            ..Scalar::unknown()
        };
        s.sync().unwrap_or(Scalar::unknown())
    }

    /// Any value of `bytes` bytes, zero-extended.
    pub fn of_size(bytes: u8) -> Scalar {
        if bytes >= 8 {
            Scalar::unknown()
        } else {
            Scalar::urange(0, (1u64 << (bytes as u32 * 8)) - 1)
        }
    }

    /// Builds a scalar from known bits only.
    pub fn from_tnum(t: Tnum) -> Scalar {
        Scalar {
            tnum: t,
            ..Scalar::unknown()
        }
        .sync()
        .unwrap_or(Scalar::unknown())
    }

    /// The value, if exactly known.
    pub fn as_const(&self) -> Option<u64> {
        (self.umin == self.umax).then_some(self.umin)
    }

    /// Whether `v` is a possible value.
    pub fn contains(&self, v: u64) -> bool {
        v >= self.umin
            && v <= self.umax
            && (v as i64) >= self.smin
            && (v as i64) <= self.smax
            && self.tnum.contains(v)
    }

    /// Tightens the three components against each other; `None` when no value remains.
    pub fn sync(mut self) -> Option<Scalar> {
        for _ in 0..3 {
            // Intervals from known bits.
            let t = self.tnum;
            self.umin = self.umin.max(t.value);
            self.umax = self.umax.min(t.value | t.mask);
            let sign = 1u64 << 63;
            self.smin = self.smin.max((t.value | (t.mask & sign)) as i64);
            self.smax = self.smax.min((t.value | (t.mask & !sign)) as i64);
            if self.umin > self.umax || self.smin > self.smax {
                return None;
            }
            // Signed from unsigned when the unsigned range does not cross the sign bit.
            if (self.umin as i64) <= (self.umax as i64) {
                self.smin = self.smin.max(self.umin as i64);
                self.smax = self.smax.min(self.umax as i64);
            }
            // Unsigned from signed when the signed range does not cross zero.
            if self.smin >= 0 || self.smax < 0 {
                self.umin = self.umin.max(self.smin as u64);
                self.umax = self.umax.min(self.smax as u64);
            }
            if self.umin > self.umax || self.smin > self.smax {
                return None;
            }
            let nt = self.tnum.intersect(Tnum::range(self.umin, self.umax));
            if self.tnum.disjoint(Tnum::range(self.umin, self.umax)) {
                return None;
            }
            self.tnum = nt;
        }
        if !self.tnum.contains(self.umin) && self.umin == self.umax {
            return None;
        }
        Some(self)
    }

    fn or_unknown(s: Scalar) -> Scalar {
        s.sync().unwrap_or(Scalar::unknown())
    }

    /// Least scalar containing both.
    pub fn join(&self, o: &Scalar) -> Scalar {
        Scalar {
            umin: self.umin.min(o.umin),
            umax: self.umax.max(o.umax),
            smin: self.smin.min(o.smin),
            smax: self.smax.max(o.smax),
            tnum: self.tnum.union(o.tnum),
        }
    }

    /// Values in both; `None` if none.
    pub fn meet(&self, o: &Scalar) -> Option<Scalar> {
        if self.tnum.disjoint(o.tnum) {
            return None;
        }
        Scalar {
            umin: self.umin.max(o.umin),
            umax: self.umax.min(o.umax),
            smin: self.smin.max(o.smin),
            smax: self.smax.min(o.smax),
            tnum: self.tnum.intersect(o.tnum),
        }
        .sync()
    }

    /// 64-bit wrapping sum.
    pub fn add(&self, o: &Scalar) -> Scalar {
        let mut r = Scalar::unknown();
        r.tnum = self.tnum.add(o.tnum);
        if let (Some(lo), Some(hi)) = (self.umin.checked_add(o.umin), self.umax.checked_add(o.umax))
        {
            r.umin = lo;
            r.umax = hi;
        }
        if let (Some(lo), Some(hi)) = (self.smin.checked_add(o.smin), self.smax.checked_add(o.smax))
        {
            r.smin = lo;
            r.smax = hi;
        }
        Scalar::or_unknown(r)
    }

    /// 64-bit wrapping difference.
    pub fn sub(&self, o: &Scalar) -> Scalar {
        let mut r = Scalar::unknown();
        r.tnum = self.tnum.sub(o.tnum);
        if self.umin >= o.umax {
            r.umin = self.umin - o.umax;
            r.umax = self.umax - o.umin;
        }
        if let (Some(lo), Some(hi)) = (self.smin.checked_sub(o.smax), self.smax.checked_sub(o.smin))
        {
            r.smin = lo;
            r.smax = hi;
        }
        Scalar::or_unknown(r)
    }

    /// 64-bit wrapping product.
    pub fn mul(&self, o: &Scalar) -> Scalar {
        let mut r = Scalar::unknown();
        r.tnum = self.tnum.mul(o.tnum);
        if let (Some(lo), Some(hi)) = (self.umin.checked_mul(o.umin), self.umax.checked_mul(o.umax))
        {
            r.umin = lo;
            r.umax = hi;
        }
        Scalar::or_unknown(r)
    }

    /// Bitwise and.
    pub fn and(&self, o: &Scalar) -> Scalar {
        let t = self.tnum.and(o.tnum);
        let mut r = Scalar::unknown();
        r.tnum = t;
        r.umax = self.umax.min(o.umax);
        if self.smin >= 0 || o.smin >= 0 {
            r.smin = 0;
        }
        Scalar::or_unknown(r)
    }

    /// Bitwise or.
    pub fn or(&self, o: &Scalar) -> Scalar {
        let mut r = Scalar::unknown();
        r.tnum = self.tnum.or(o.tnum);
        r.umin = self.umin.max(o.umin);
        Scalar::or_unknown(r)
    }

    /// Bitwise exclusive or.
    pub fn xor(&self, o: &Scalar) -> Scalar {
        Scalar::from_tnum(self.tnum.xor(o.tnum))
    }

    /// Left shift by `o` (the caller guarantees `o < 64` or accepts an unknown result).
    pub fn lsh(&self, o: &Scalar) -> Scalar {
        match o.as_const() {
            Some(k) if k < 64 => {
                let k = k as u32;
                let mut r = Scalar::unknown();
                r.tnum = self.tnum.lsh(k);
                if self.umax.leading_zeros() >= k {
                    r.umin = self.umin << k;
                    r.umax = self.umax << k;
                }
                Scalar::or_unknown(r)
            }
            _ => Scalar::unknown(),
        }
    }

    /// Logical right shift.
    pub fn rsh(&self, o: &Scalar) -> Scalar {
        match o.as_const() {
            Some(k) if k < 64 => {
                let k = k as u32;
                let mut r = Scalar::unknown();
                r.tnum = self.tnum.rsh(k);
                r.umin = self.umin >> k;
                r.umax = self.umax >> k;
                Scalar::or_unknown(r)
            }
            _ if o.umin >= 1 && o.umax < 64 => Scalar::urange(0, self.umax >> o.umin),
            _ => Scalar::urange(0, self.umax),
        }
    }

    /// Arithmetic right shift.
    pub fn arsh(&self, o: &Scalar) -> Scalar {
        match o.as_const() {
            Some(k) if k < 64 => {
                let k = k as u32;
                let mut r = Scalar::unknown();
                r.tnum = self.tnum.arsh(k);
                r.smin = self.smin >> k;
                r.smax = self.smax >> k;
                Scalar::or_unknown(r)
            }
            _ => Scalar::unknown(),
        }
    }

    /// Unsigned division; division by zero yields zero (eBPF semantics).
    pub fn div(&self, o: &Scalar) -> Scalar {
        match o.as_const() {
            Some(0) => Scalar::constant(0),
            Some(c) => Scalar::urange(self.umin / c, self.umax / c),
            None if o.umin > 0 => Scalar::urange(self.umin / o.umax, self.umax / o.umin),
            None => Scalar::urange(0, self.umax),
        }
    }

    /// Unsigned remainder; modulo zero leaves the dividend unchanged (eBPF semantics).
    pub fn rem(&self, o: &Scalar) -> Scalar {
        match o.as_const() {
            Some(0) => *self,
            Some(c) if self.umax < c => *self,
            Some(c) => Scalar::urange(0, c - 1),
            None if o.umin > 0 => Scalar::urange(0, self.umax.min(o.umax - 1)),
            None => Scalar::urange(0, self.umax),
        }
    }

    /// Two's complement negation.
    pub fn neg(&self) -> Scalar {
        Scalar::constant(0).sub(self)
    }

    /// Zero-extension of the low `bytes` bytes.
    pub fn truncate(&self, bytes: u8) -> Scalar {
        if bytes >= 8 {
            return *self;
        }
        let max = (1u64 << (bytes as u32 * 8)) - 1;
        if self.umax <= max {
            return *self;
        }
        Scalar::from_tnum(self.tnum.cast(bytes))
    }

    /// Byte swap of the low `width` bits, zero-extended (`be16` etc. on a little-endian host).
    pub fn bswap(&self, width: u8) -> Scalar {
        let bytes = width / 8;
        match self.as_const() {
            Some(v) => {
                let r = match width {
                    16 => (v as u16).swap_bytes() as u64,
                    32 => (v as u32).swap_bytes() as u64,
                    _ => v.swap_bytes(),
                };
                Scalar::constant(r)
            }
            None => Scalar::of_size(bytes),
        }
    }
}

/// A set of map indices (a program may reference up to 64 maps); pointers merged from paths
/// that looked up different maps point into any of them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub struct MapSet(pub u64);

impl MapSet {
    /// The largest number of maps a program may reference.
    pub const CAPACITY: usize = 64;

    /// Map `i` alone (`i` < [`MapSet::CAPACITY`]).
    pub fn single(i: usize) -> MapSet {
        MapSet(1 << i)
    }

    /// Both sets.
    pub fn union(self, o: MapSet) -> MapSet {
        MapSet(self.0 | o.0)
    }

    /// The indices in the set.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..Self::CAPACITY).filter(move |i| self.0 & (1 << i) != 0)
    }
}

impl std::fmt::Display for MapSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v: Vec<String> = self.iter().map(|i| format!("map {i}")).collect();
        f.write_str(&v.join(" | "))
    }
}

/// What a pointer points into.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub enum Region {
    /// The program context (`struct xdp_md`).
    Ctx,
    /// Packet data (`data + var + off`).
    Packet,
    /// One past the last packet byte (`data_end`), plus `off`.
    PacketEnd,
    /// `data_meta` (metadata area before the packet; never dereferenced here).
    PacketMeta,
    /// The stack of call frame `frame` (0 is the entry function).
    Stack {
        /// Frame index.
        frame: u8,
    },
    /// A value of map number `map` (non-null).
    MapValue {
        /// The maps it may point into.
        map: MapSet,
    },
    /// A map value pointer returned by a lookup and not yet checked against NULL.
    MapValueOrNull {
        /// The maps it may point into.
        map: MapSet,
    },
    /// A map reference (for helper arguments).
    MapPtr {
        /// The maps it may refer to.
        map: MapSet,
    },
}

impl Region {
    /// A short human name.
    pub fn describe(&self) -> String {
        match self {
            Region::Ctx => "ctx".into(),
            Region::Packet => "pkt".into(),
            Region::PacketEnd => "pkt_end".into(),
            Region::PacketMeta => "pkt_meta".into(),
            Region::Stack { frame } => format!("fp{frame}"),
            Region::MapValue { map } => format!("map_value({map})"),
            Region::MapValueOrNull { map } => format!("map_value_or_null({map})"),
            Region::MapPtr { map } => format!("map_ptr({map})"),
        }
    }
}

/// A typed pointer: `base(region) + var + off`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub struct Pointer {
    /// Region pointed into.
    pub region: Region,
    /// Constant offset.
    pub off: i64,
    /// Variable offset (constant zero for most pointers).
    pub var: Scalar,
    /// For packet pointers: pointers with the same non-zero id share `var`. For
    /// map-value-or-null pointers: copies of the same lookup result share the id.
    pub id: u32,
    /// For packet pointers: bytes `[data + var, data + var + range)` are known to be inside
    /// the packet.
    pub range: i64,
}

impl Pointer {
    /// A pointer to the start of `region`.
    pub fn new(region: Region) -> Pointer {
        Pointer {
            region,
            off: 0,
            var: Scalar::constant(0),
            id: 0,
            range: 0,
        }
    }

    /// Whether the variable part is the constant zero.
    pub fn fixed(&self) -> bool {
        self.var.as_const() == Some(0)
    }
}

/// The abstract value of a register or stack slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub enum Value {
    /// Never written.
    Uninit,
    /// A number. `id` links copies made by `mov` (a comparison on one refines all);
    /// `len` = `Some(k)` means the value is the packet length plus `k` (uBPF).
    Scalar {
        /// Numeric bounds.
        n: Scalar,
        /// Copy link (0: none).
        id: u32,
        /// Relation to the packet length.
        len: Option<i64>,
    },
    /// A typed pointer.
    Ptr(Pointer),
    /// A packet pointer made stale by a helper that may move the packet.
    Stale,
    /// A pointer on one path and something else on another (or pointers that cannot be
    /// merged); any use is rejected.
    Mixed,
}

impl Value {
    /// A scalar with no links.
    pub fn scalar(n: Scalar) -> Value {
        Value::Scalar {
            n,
            id: 0,
            len: None,
        }
    }

    /// A known constant.
    pub fn constant(v: u64) -> Value {
        Value::scalar(Scalar::constant(v))
    }

    /// The numeric part, if a scalar.
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match self {
            Value::Scalar { n, .. } => Some(n),
            _ => None,
        }
    }

    /// The pointer, if one.
    pub fn as_ptr(&self) -> Option<&Pointer> {
        match self {
            Value::Ptr(p) => Some(p),
            _ => None,
        }
    }

    /// Whether the value is (or may be) a pointer.
    pub fn is_pointerish(&self) -> bool {
        matches!(self, Value::Ptr(_) | Value::Stale | Value::Mixed)
    }
}

/// What an id links, so ids of different meanings never share a renaming.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum IdKind {
    /// Packet pointers sharing a variable offset.
    Packet,
    /// Copies of one lookup result (both sides possibly NULL).
    Lookup,
    /// A lookup result on the first side, NULL on the second.
    LookupOrNull,
    /// NULL on the first side, a lookup result on the second.
    NullOrLookup,
    /// Copies of one scalar.
    Scalar,
    /// Any other pointer.
    Other,
}

/// Renames ids when joining two states so that registers sharing an id on both paths still
/// share one afterwards, and no others do.
#[derive(Default)]
pub struct IdMap {
    map: HashMap<(IdKind, u32, u32, i64), u32>,
    next: u32,
}

impl IdMap {
    /// A renaming starting at fresh id 1.
    pub fn new() -> IdMap {
        IdMap {
            map: HashMap::new(),
            next: 1,
        }
    }

    /// The id on the joined side for a value with id `a` on one side and `b` on the other
    /// (`d`: a distinguishing difference, such as the packet offset difference). Every key
    /// gets its own fresh id, so values share an id afterwards only if they did on both sides.
    fn get(&mut self, kind: IdKind, a: u32, b: u32, d: i64) -> u32 {
        let next = &mut self.next;
        *self.map.entry((kind, a, b, d)).or_insert_with(|| {
            let v = *next;
            *next += 1;
            v
        })
    }

    /// The first id not handed out.
    pub fn next(&self) -> u32 {
        self.next
    }
}

fn join_ptr(a: &Pointer, b: &Pointer, a_len: i64, b_len: i64, ids: &mut IdMap) -> Value {
    let merged = match (a.region, b.region) {
        (Region::MapValue { map: x }, Region::MapValue { map: y }) => {
            Some(Region::MapValue { map: x.union(y) })
        }
        (Region::Packet, Region::Packet) => Some(Region::Packet),
        _ => None,
    };
    match (a.region, b.region) {
        _ if merged.is_some() => {
            let region = merged.expect("checked");
            let off = a.off.min(b.off);
            let va = a.var.add(&Scalar::constant((a.off - off) as u64));
            let vb = b.var.add(&Scalar::constant((b.off - off) as u64));
            let var = va.join(&vb);
            let id = if var.as_const() == Some(0) || region != Region::Packet {
                0
            } else {
                ids.get(IdKind::Packet, a.id, b.id, a.off - b.off)
            };
            let mut range = 0;
            if a.region == Region::Packet {
                let head = |p: &Pointer, len: i64| {
                    let mut r = p.range;
                    if p.fixed() {
                        r = r.max(len);
                    }
                    r - p.off
                };
                range = (off + head(a, a_len).min(head(b, b_len))).max(0);
            }
            Value::Ptr(Pointer {
                region,
                off,
                var,
                id,
                range,
            })
        }
        (Region::MapValueOrNull { map: x }, Region::MapValueOrNull { map: y })
        | (Region::MapValueOrNull { map: x }, Region::MapValue { map: y })
        | (Region::MapValue { map: x }, Region::MapValueOrNull { map: y })
            if a.off == b.off && a.var == b.var =>
        {
            let id = ids.get(IdKind::Lookup, a.id, b.id, 0);
            Value::Ptr(Pointer {
                region: Region::MapValueOrNull { map: x.union(y) },
                id,
                ..*a
            })
        }
        (Region::MapPtr { map: x }, Region::MapPtr { map: y }) => Value::Ptr(Pointer {
            region: Region::MapPtr { map: x.union(y) },
            ..*a
        }),
        _ if a.region == b.region && a.off == b.off && a.var == b.var => Value::Ptr(Pointer {
            id: if a.id == 0 && b.id == 0 {
                0
            } else {
                ids.get(IdKind::Other, a.id, b.id, 0)
            },
            range: a.range.min(b.range),
            ..*a
        }),
        _ => Value::Mixed,
    }
}

fn null_joins(p: &Pointer) -> Option<Pointer> {
    match p.region {
        Region::MapValueOrNull { .. } | Region::MapValue { .. } if p.off == 0 && p.fixed() => {
            let (Region::MapValueOrNull { map } | Region::MapValue { map }) = p.region else {
                return None;
            };
            Some(Pointer {
                region: Region::MapValueOrNull { map },
                ..*p
            })
        }
        _ => None,
    }
}

/// Least upper bound of two values. `a_len`/`b_len` are the packet lengths known on each side.
pub fn join_value(a: &Value, b: &Value, a_len: i64, b_len: i64, ids: &mut IdMap) -> Value {
    match (a, b) {
        (Value::Uninit, _) | (_, Value::Uninit) => Value::Uninit,
        (
            Value::Scalar {
                n: x,
                id: i,
                len: l,
            },
            Value::Scalar {
                n: y,
                id: j,
                len: m,
            },
        ) => Value::Scalar {
            n: x.join(y),
            id: if *i == 0 || *j == 0 {
                0
            } else {
                ids.get(IdKind::Scalar, *i, *j, 0)
            },
            len: if l == m { *l } else { None },
        },
        (Value::Ptr(p), Value::Ptr(q)) => join_ptr(p, q, a_len, b_len, ids),
        (Value::Ptr(p), Value::Scalar { n, .. }) | (Value::Scalar { n, .. }, Value::Ptr(p))
            if n.as_const() == Some(0) =>
        {
            match null_joins(p) {
                Some(q) => {
                    let kind = if matches!(a, Value::Ptr(_)) {
                        IdKind::LookupOrNull
                    } else {
                        IdKind::NullOrLookup
                    };
                    Value::Ptr(Pointer {
                        id: ids.get(kind, q.id, 0, 0),
                        ..q
                    })
                }
                None => Value::Mixed,
            }
        }
        (Value::Stale, Value::Stale)
        | (Value::Stale, Value::Ptr(_))
        | (Value::Ptr(_), Value::Stale) => Value::Stale,
        _ => Value::Mixed,
    }
}

/// One stack slot holding a value written by a single store.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct Cell {
    /// Bytes covered.
    pub size: u8,
    /// The stored value (scalars truncated to `size`; pointers only with size 8).
    pub value: Value,
}

/// A call frame's 512-byte stack: which bytes are initialised, and typed cells for values
/// stored whole (spills keep pointer types and scalar bounds).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize)]
pub struct Stack {
    /// Initialised bytes; bit `i` of word `w` is byte `-(512) + 64 * w + i`.
    pub init: [u64; 8],
    /// Typed cells by offset from the frame pointer (negative).
    pub cells: BTreeMap<i64, Cell>,
}

fn byte_index(off: i64) -> usize {
    (off + STACK_SIZE) as usize
}

impl Stack {
    /// Whether every byte of `[off, off + size)` is initialised.
    pub fn is_init(&self, off: i64, size: i64) -> bool {
        (off..off + size).all(|o| {
            let i = byte_index(o);
            self.init[i / 64] & (1 << (i % 64)) != 0
        })
    }

    fn set_init(&mut self, off: i64, size: i64, v: bool) {
        for o in off..off + size {
            let i = byte_index(o);
            if v {
                self.init[i / 64] |= 1 << (i % 64);
            } else {
                self.init[i / 64] &= !(1 << (i % 64));
            }
        }
    }

    fn overlapping(&self, off: i64, size: i64) -> Vec<i64> {
        self.cells
            .range(off - 8..off + size)
            .filter(|(o, c)| **o < off + size && **o + c.size as i64 > off)
            .map(|(o, _)| *o)
            .collect()
    }

    /// Stores `value` into `[off, off + size)`. Pointer cells partly overwritten lose their
    /// remaining bytes (they become uninitialised), so no pointer byte can be read back as a
    /// number.
    pub fn store(&mut self, off: i64, size: u8, value: Value) {
        for o in self.overlapping(off, size as i64) {
            let c = self.cells.remove(&o).expect("overlapping cell");
            let partial = o < off || o + (c.size as i64) > off + size as i64;
            if partial && c.value.is_pointerish() {
                self.set_init(o, c.size as i64, false);
            }
        }
        self.set_init(off, size as i64, true);
        let value = match value {
            Value::Scalar { n, id, len } => {
                if size >= 8 {
                    Value::Scalar { n, id, len }
                } else {
                    Value::scalar(n.truncate(size))
                }
            }
            v => v,
        };
        self.cells.insert(off, Cell { size, value });
    }

    /// Marks `[off, off + size)` as holding unknown initialised bytes.
    pub fn store_unknown(&mut self, off: i64, size: u8) {
        self.store(off, size, Value::scalar(Scalar::of_size(size)));
    }

    /// The cell exactly at `off` of `size`, if any.
    pub fn cell(&self, off: i64, size: u8) -> Option<&Cell> {
        self.cells.get(&off).filter(|c| c.size == size)
    }

    /// Cells overlapping `[off, off + size)` that hold pointers (or may).
    pub fn pointer_overlap(&self, off: i64, size: i64) -> bool {
        self.overlapping(off, size)
            .iter()
            .any(|o| self.cells[o].value.is_pointerish())
    }

    /// The value of `size` bytes read at `off` (the caller checked initialisation and
    /// pointer overlap).
    pub fn load(&self, off: i64, size: u8) -> Value {
        if let Some(c) = self.cell(off, size) {
            return c.value;
        }
        // A constant stored in a wider cell can be sliced.
        for o in self.overlapping(off, size as i64) {
            let c = &self.cells[&o];
            if o <= off && o + c.size as i64 >= off + size as i64 {
                if let Some(v) = c.value.as_scalar().and_then(|s| s.as_const()) {
                    let shift = ((off - o) * 8) as u32;
                    let v = if shift >= 64 { 0 } else { v >> shift };
                    return Value::scalar(Scalar::constant(v).truncate(size));
                }
            }
        }
        Value::scalar(Scalar::of_size(size))
    }

    fn join(&self, o: &Stack, a_len: i64, b_len: i64, ids: &mut IdMap) -> Stack {
        let mut init = [0u64; 8];
        for (i, w) in init.iter_mut().enumerate() {
            *w = self.init[i] & o.init[i];
        }
        let mut cells = BTreeMap::new();
        let mut out = Stack {
            init,
            cells: BTreeMap::new(),
        };
        for (off, c) in &self.cells {
            if let Some(d) = o.cells.get(off) {
                if d.size == c.size {
                    let v = join_value(&c.value, &d.value, a_len, b_len, ids);
                    if v != Value::Uninit {
                        cells.insert(
                            *off,
                            Cell {
                                size: c.size,
                                value: v,
                            },
                        );
                    }
                    continue;
                }
            }
            // A pointer present on one side only must not be readable as bytes.
            if c.value.is_pointerish() {
                out.set_init(*off, c.size as i64, false);
            }
        }
        for (off, d) in &o.cells {
            let matched = self
                .cells
                .get(off)
                .map(|c| c.size == d.size)
                .unwrap_or(false);
            if !matched && d.value.is_pointerish() {
                out.set_init(*off, d.size as i64, false);
            }
        }
        cells.retain(|off, c| out.is_init(*off, c.size as i64));
        out.cells = cells;
        out
    }
}

/// Registers and stack of one call frame.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Frame {
    /// r0..r10.
    pub regs: [Value; 11],
    /// The frame's stack.
    pub stack: Stack,
    /// Index of the `call` instruction that created the frame (0 for the entry frame).
    pub callsite: usize,
}

/// The abstract machine state at one program point in one calling context.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct State {
    /// Active frames, entry function first.
    pub frames: Vec<Frame>,
    /// The packet is known to be at least this many bytes long.
    pub min_len: i64,
    /// A helper may have moved the packet start or end since entry.
    pub resized: bool,
    /// Next unused id.
    pub next_id: u32,
}

impl State {
    /// The innermost frame.
    pub fn top(&self) -> &Frame {
        self.frames.last().expect("at least one frame")
    }

    /// The innermost frame, mutably.
    pub fn top_mut(&mut self) -> &mut Frame {
        self.frames.last_mut().expect("at least one frame")
    }

    /// A fresh id.
    pub fn fresh_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Visits every value in every frame (registers and stack cells).
    pub fn for_each_value(&mut self, mut f: impl FnMut(&mut Value)) {
        for fr in &mut self.frames {
            for r in fr.regs.iter_mut() {
                f(r);
            }
            for c in fr.stack.cells.values_mut() {
                f(&mut c.value);
            }
        }
    }

    /// Least upper bound (both states must have the same frames).
    pub fn join(&self, o: &State) -> State {
        let mut ids = IdMap::new();
        let (al, bl) = (self.min_len, o.min_len);
        let frames = self
            .frames
            .iter()
            .zip(&o.frames)
            .map(|(a, b)| {
                let mut regs = [Value::Uninit; 11];
                for (i, r) in regs.iter_mut().enumerate() {
                    *r = join_value(&a.regs[i], &b.regs[i], al, bl, &mut ids);
                }
                Frame {
                    regs,
                    stack: a.stack.join(&b.stack, al, bl, &mut ids),
                    callsite: a.callsite,
                }
            })
            .collect();
        State {
            frames,
            min_len: al.min(bl),
            resized: self.resized || o.resized,
            next_id: ids.next(),
        }
    }

    /// Bytes known to be valid at and after packet pointer `p` (`None` if none).
    pub fn packet_headroom(&self, p: &Pointer) -> i64 {
        let mut r = p.range;
        if p.fixed() {
            r = r.max(self.min_len);
        }
        r - p.off
    }
}

/// Upper bound used for offsets derived from packet lengths.
pub const MAX_PACKET_OFF: i64 = MAX_PACKET_LEN as i64;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member(s: &Scalar, v: u64) -> bool {
        s.contains(v)
    }

    fn scalar_containing() -> impl Strategy<Value = (Scalar, u64)> {
        (any::<u64>(), 0u32..64, any::<u64>()).prop_map(|(v, bits, noise)| {
            let width = if bits == 0 {
                0
            } else {
                u64::MAX >> (64 - bits)
            };
            let lo = v & !width;
            let hi = lo | width;
            let x = lo | (noise & width);
            (Scalar::urange(lo, hi), x)
        })
    }

    proptest! {
        #[test]
        fn arithmetic_is_sound((a, x) in scalar_containing(), (b, y) in scalar_containing()) {
            prop_assert!(member(&a.add(&b), x.wrapping_add(y)));
            prop_assert!(member(&a.sub(&b), x.wrapping_sub(y)));
            prop_assert!(member(&a.mul(&b), x.wrapping_mul(y)));
            prop_assert!(member(&a.and(&b), x & y));
            prop_assert!(member(&a.or(&b), x | y));
            prop_assert!(member(&a.xor(&b), x ^ y));
            prop_assert!(member(&a.div(&b), x.checked_div(y).unwrap_or(0)));
            let r = if y == 0 { x } else { x % y };
            prop_assert!(member(&a.rem(&b), r));
            let k = Scalar::constant(y & 63);
            prop_assert!(member(&a.lsh(&k), x << (y & 63)));
            prop_assert!(member(&a.rsh(&k), x >> (y & 63)));
            prop_assert!(member(&a.arsh(&k), ((x as i64) >> (y & 63)) as u64));
            prop_assert!(member(&a.rsh(&b), x.checked_shr(y as u32).unwrap_or(0)) || y >= 64);
            prop_assert!(member(&a.neg(), x.wrapping_neg()));
            prop_assert!(member(&a.truncate(4), x as u32 as u64));
            prop_assert!(member(&a.join(&b), x) && member(&a.join(&b), y));
        }

        #[test]
        fn signed_ranges_are_sound(lo in any::<i64>(), span in 0u64..1000, pick in 0u64..1000, c in any::<i64>()) {
            let hi = lo.saturating_add(span as i64);
            let x = lo.saturating_add((pick % (span + 1)) as i64);
            let a = Scalar::srange(lo, hi);
            prop_assert!(member(&a, x as u64));
            let k = Scalar::constant(c as u64);
            prop_assert!(member(&a.add(&k), x.wrapping_add(c) as u64));
            prop_assert!(member(&a.sub(&k), x.wrapping_sub(c) as u64));
        }
    }

    #[test]
    fn ihl_times_four_is_bounded() {
        let b = Scalar::of_size(1);
        let ihl = b.and(&Scalar::constant(0x0f)).lsh(&Scalar::constant(2));
        assert_eq!((ihl.umin, ihl.umax), (0, 60));
        assert_eq!(ihl.tnum.value & 3, 0);
        assert_eq!(ihl.tnum.mask & 3, 0);
    }

    #[test]
    fn stack_spill_keeps_pointer_and_partial_overwrite_poisons() {
        let mut s = Stack::default();
        let p = Value::Ptr(Pointer::new(Region::Packet));
        s.store(-8, 8, p);
        assert_eq!(s.load(-8, 8), p);
        s.store(-8, 1, Value::constant(3));
        assert!(!s.is_init(-7, 7));
        assert!(s.is_init(-8, 1));
    }
}
