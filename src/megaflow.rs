//! The megaflow cache: the second cache level, cached translations valid under a mask
//! (Open vSwitch's `dpcls`).
//!
//! A megaflow is a translation ([`Xlation`]) together with the flow key that produced it; it
//! answers every packet whose key agrees with that key on the translation's mask. Megaflows
//! with the same mask share a *subtable*: a hash table from the hash of the masked key to the
//! megaflows under it (confirmed against each megaflow's own key, which a hit reads anyway). A lookup
//! tries subtables in rank order (most hits first, re-ranked every [`RERANK_INTERVAL`]
//! lookups, as `dpcls_sort_subtable_vector` does) and hashes and compares the words of the
//! key its mask uses: the nine words outside the rare ones whole, unrolled, for a mask that
//! uses no IPv6, neighbour discovery or ARP word and at least four words (as Open vSwitch
//! specialises its subtable lookup by miniflow shape), else the mask's non-zero words
//! through an index list. The
//! first hit whose recorded conditions hold (filter results, layout) is the answer:
//! megaflows installed from translations of the current tables never disagree on a packet
//! that two of them match and whose conditions hold. Megaflows with the same mask and key
//! but different recorded filter results live side by side (the filter result is part of
//! the key, as in Oko).
//!
//! Megaflows live in a slab of slots; a [`MfRef`] names a slot and its generation, which
//! changes whenever the slot's megaflow is removed, so references held by the exact-match
//! cache go stale safely.
//!
//! **Capacity:** at most the configured number of megaflows ([`DEFAULT_CAPACITY`], Open
//! vSwitch's default flow limit); when full, an upcall's result is executed without being
//! installed. **Owner:** one [`crate::dpif::Worker`]; no locks. **Invalidation:** the worker
//! revalidates every megaflow when the bridge version changes (re-translating its key and
//! replacing or deleting it), and flushes the cache when extension maps change under cached
//! filter results.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use ofproto_bridge::flow::{for_common_words, word_index, Flow, FLOW_WORDS, RARE_WORDS};
use ofproto_bridge::xlate::Xlation;

use crate::execute::{Plan, Relayout};
use crate::packet::Layout;
use ofproto_bridge::{OdpAction, PortNo};
use smallvec::SmallVec;

/// Default maximum number of megaflows per worker (Open vSwitch's flow limit).
pub const DEFAULT_CAPACITY: usize = 200_000;
/// Lookups between two re-rankings of the subtables.
pub const RERANK_INTERVAL: u32 = 1024;

/// A reference to a megaflow slot at a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MfRef {
    /// Slot index.
    pub slot: u32,
    /// Generation of the slot when the reference was taken.
    pub gen: u32,
}

impl MfRef {
    /// A reference to nothing.
    pub const NONE: MfRef = MfRef {
        slot: u32::MAX,
        gen: 0,
    };
    /// Whether this is [`MfRef::NONE`].
    #[inline]
    pub fn is_none(self) -> bool {
        self.slot == u32::MAX
    }
}

/// Conditions besides the mask under which a megaflow's recorded results of stateless filters
/// can be reused without running them: the packet's header layout and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Guard {
    /// The header layout the filter results were computed on.
    pub layout: Layout,
    /// The packet length they were computed on.
    pub len: u32,
}

/// One cached translation. See the module documentation.
#[derive(Clone, Debug)]
pub struct Megaflow {
    /// The (unmasked) key of the packet whose upcall installed it, re-translated on
    /// revalidation.
    pub flow: Flow,
    /// The translation. Its actions never change once the megaflow exists (a changed
    /// translation is installed as a new megaflow): the compiled plan relies on that.
    pub xlation: Xlation,
    /// The mask the megaflow is installed under: the translation's, plus the bits that make
    /// cached filter results reusable.
    pub mask: Flow,
    /// When set, a packet meeting the guard may reuse the results of the filters marked in
    /// `cached_filters` instead of running them.
    pub guard: Option<Guard>,
    /// Bit `i` set: the `i`th entry of `xlation.filters` is a stateless filter whose result
    /// holds for every packet that matches this megaflow and meets the guard.
    pub cached_filters: u64,
    /// Whether the layout used to map extension write sets onto fields must equal
    /// `write_layout` for the translation to hold (speculation past an extension action).
    pub write_layout: Option<Layout>,
    /// The frame whose layout `write_layout` is, for revalidation to map write sets again.
    pub write_frame: Option<Box<[u8]>>,
    /// Packets that hit it.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
    /// Packets and bytes not yet credited to the rules, by where the packet stopped: index
    /// `k` for the `k`th extension action (it dropped, transmitted or redirected the packet),
    /// the last index for packets that went through every action.
    pub uncredited: SmallVec<[(u64, u64); 2]>,
    /// Timestamp of the last hit (ns).
    pub used_ns: u64,
    /// The actions compiled for the layout of the first cache hit that ran them.
    plan: Planned,
}

/// Whether a megaflow's actions were compiled.
#[derive(Clone, Debug)]
enum Planned {
    /// Not tried yet.
    Untried,
    /// The actions need the general executor.
    No,
    /// Compiled.
    Yes(Plan),
}

impl Megaflow {
    /// Counts one packet of `len` bytes that stopped at extension action `stopped_at`
    /// (`None`: it went through every action).
    #[inline]
    pub fn count(&mut self, len: u64, stopped_at: Option<usize>, now_ns: u64) {
        self.count_n(1, len, stopped_at, now_ns);
    }

    /// Counts `packets` packets of `bytes` bytes in all that stopped at `stopped_at`, the
    /// last of them at `now_ns`.
    #[inline]
    pub fn count_n(&mut self, packets: u64, bytes: u64, stopped_at: Option<usize>, now_ns: u64) {
        self.packets += packets;
        self.bytes += bytes;
        self.used_ns = now_ns;
        let n = self.xlation.bpf_marks.len();
        if self.uncredited.len() <= n {
            self.uncredited.resize(n + 1, (0, 0));
        }
        let u = &mut self.uncredited[stopped_at.unwrap_or(n).min(n)];
        u.0 += packets;
        u.1 += bytes;
    }

    /// Whether the megaflow holds for a packet that meets `guard` without running anything:
    /// its write-set layout (if any) is the packet's, and every filter result it recorded is
    /// a stateless one reusable under the guard. Gives the number of reused filter results;
    /// `None` means a filter must run or the layout differs.
    #[inline]
    pub fn holds_as_recorded(&self, guard: &Guard) -> Option<u64> {
        if self.write_layout.is_some_and(|l| l != guard.layout) {
            return None;
        }
        let n = self.xlation.filters.len();
        if n == 0 {
            return Some(0);
        }
        let all = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        (n <= 64 && self.cached_filters & all == all && self.guard.as_ref() == Some(guard))
            .then_some(n as u64)
    }

    /// A megaflow for `xlation` of `flow`, installed under `xlation.mask`.
    pub fn new(flow: Flow, xlation: Xlation) -> Megaflow {
        Megaflow {
            flow,
            mask: xlation.mask,
            xlation,
            guard: None,
            cached_filters: 0,
            write_layout: None,
            write_frame: None,
            packets: 0,
            bytes: 0,
            uncredited: SmallVec::new(),
            used_ns: 0,
            plan: Planned::Untried,
        }
    }

    /// Whether the actions were not compiled yet ([`Megaflow::compile_plan`]).
    #[inline]
    pub fn plan_untried(&self) -> bool {
        matches!(self.plan, Planned::Untried)
    }

    /// Compiles the actions for frames laid out as `layout`, with `slot` for output counters
    /// and `relayout` for extensions (see [`Plan::compile`]); once, before the first
    /// [`Megaflow::plan`].
    #[cold]
    #[inline(never)]
    pub fn compile_plan(
        &mut self,
        layout: &Layout,
        slot: impl FnMut(PortNo) -> u32,
        relayout: impl FnMut(u32) -> Relayout,
    ) {
        self.plan = match Plan::compile(&self.xlation.actions, layout, slot, relayout) {
            Some(p) => Planned::Yes(p),
            None => Planned::No,
        };
    }

    /// The compiled actions, whatever frames they fit, with the actions they were compiled
    /// from; `None` when they need the general executor or were not compiled yet.
    #[inline]
    pub fn compiled(&self) -> Option<(&Plan, &[OdpAction])> {
        match &self.plan {
            Planned::Yes(p) => Some((p, &self.xlation.actions)),
            _ => None,
        }
    }

    /// The compiled actions for a frame of `len` bytes laid out as `layout`, with the actions
    /// they were compiled from; `None` when they need the general executor, were compiled
    /// for another layout, or were not compiled yet.
    #[inline]
    pub fn plan(&self, layout: &Layout, len: usize) -> Option<(&Plan, &[OdpAction])> {
        match &self.plan {
            Planned::Yes(p) if p.fits(layout, len) => Some((p, &self.xlation.actions)),
            _ => None,
        }
    }
}

/// Per-word keys of the flow hashes ([`crate::emc::hash`] and the subtables' masked hash).
pub(crate) const HASH_KEYS: [u64; FLOW_WORDS] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6c,
    0xc0ac_29b7_c97c_50dd,
    0x3f84_d5b5_b547_0917,
    0x9216_d5d9_8979_fb1b,
    0xd131_0ba6_98df_b5ac,
    0x2ffd_72db_d01a_dfb7,
    0xb8e1_afed_6a26_7e96,
    0xba7c_9045_f12c_7f99,
    0x24a1_9947_b391_6cf7,
    0x0801_f2e2_858e_fc16,
    0x6369_20d8_7157_4e69,
];
/// The multiplier of the flow hashes.
pub(crate) const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// The folded multiply of wyhash and foldhash: the 128-bit product's halves, xored.
#[inline(always)]
pub(crate) fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// A hasher that passes a precomputed 64-bit hash through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Megaflows that share a mask. The table maps the hash of a masked key to the slots of the
/// megaflows with that hash, in insertion order (almost always one; several when filters
/// answered differently for the same masked key); a candidate is confirmed by comparing the
/// key with the megaflow's own key on the mask's words, which the hit reads anyway, so the
/// table stores no key copies.
struct Subtable {
    mask: Flow,
    /// The words the hash and the comparison read.
    span: Span,
    /// Masked-key hash → the megaflows under it: one per masked key and distinct set of
    /// recorded filter results (and, rarely, several masked keys with the same hash).
    map: HashMap<u64, SmallVec<[u32; 2]>, BuildHasherDefault<PassThrough>>,
    hits: u64,
}

/// The words of a key a subtable reads. Either way the hash is the sum over every word of
/// the masked word times its key, and the comparison covers every masked bit: a word the mask
/// zeroes adds nothing to either.
#[derive(Debug, PartialEq)]
enum Span {
    /// Every word outside [`RARE_WORDS`], read whole in a loop of constant length that the
    /// compiler unrolls: for a mask that uses no rare word (as no mask matching only
    /// Ethernet, IPv4 and transport fields does) and at least [`COMMON_FROM`] words.
    Common,
    /// The mask's non-zero words, by index (the mask uses a rare word, or few words).
    Sparse(Vec<u8>),
}

/// The fewest used words for which [`Span::Common`] is the cheaper walk: about 4
/// instructions a word for its nine against about 9 for a listed word (callgrind, the
/// benchmark's IPv4 UDP mask: 624 -> 569 instructions a packet with the EMC off).
const COMMON_FROM: usize = 4;

impl Span {
    /// The span of `mask`.
    fn of(mask: &Flow) -> Span {
        let mw = mask.words();
        let used: Vec<u8> = (0..FLOW_WORDS)
            .filter(|&i| mw[i] != 0)
            .map(|i| i as u8)
            .collect();
        if used.len() >= COMMON_FROM && mw[RARE_WORDS].iter().all(|&w| w == 0) {
            Span::Common
        } else {
            Span::Sparse(used)
        }
    }

    /// Calls `f` with the index of every word of the span.
    #[inline(always)]
    fn for_each(&self, mut f: impl FnMut(usize)) {
        match self {
            Span::Common => for_common_words(f),
            Span::Sparse(words) => words.iter().for_each(|&i| f(word_index(i))),
        }
    }
}

impl Subtable {
    /// The hash of `flow` under the mask: the words, masked, each times its own odd key,
    /// summed (a multilinear hash: independent one-instruction multiplies), then mixed.
    #[inline]
    fn hash(&self, flow: &Flow) -> u64 {
        let (fw, mw) = (flow.words(), self.mask.words());
        let term = |i: usize| (fw[i] & mw[i]).wrapping_mul(HASH_KEYS[i] | 1);
        let mut h = 0u64;
        self.span.for_each(|i| h = h.wrapping_add(term(i)));
        #[cfg(test)]
        if tests::COLLIDE.with(|c| c.get()) {
            return h & 3;
        }
        fold_mul(h, HASH_MUL ^ 0x2545_f491_4f6c_dd1d)
    }

    /// Whether `a` and `b` agree under the mask.
    #[inline]
    fn agree(&self, a: &Flow, b: &Flow) -> bool {
        let (aw, bw, mw) = (a.words(), b.words(), self.mask.words());
        let diff = |i: usize| (aw[i] ^ bw[i]) & mw[i];
        let mut d = 0u64;
        self.span.for_each(|i| d |= diff(i));
        d == 0
    }
}

struct Slot {
    gen: u32,
    subtable: u32,
    mf: Option<Megaflow>,
}

/// The megaflow cache. See the module documentation.
pub struct MegaflowCache {
    slots: Vec<Slot>,
    free: Vec<u32>,
    subtables: Vec<Subtable>,
    /// Subtable indices in rank order.
    order: Vec<u32>,
    lookups: u32,
    len: usize,
    capacity: usize,
}

impl MegaflowCache {
    /// An empty cache holding at most `capacity` megaflows.
    pub fn new(capacity: usize) -> MegaflowCache {
        MegaflowCache {
            slots: Vec::new(),
            free: Vec::new(),
            subtables: Vec::new(),
            order: Vec::new(),
            lookups: 0,
            len: 0,
            capacity,
        }
    }

    /// Number of megaflows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of subtables (distinct masks).
    pub fn subtables(&self) -> usize {
        self.order.len()
    }

    /// Whether `r` still names a megaflow.
    #[inline]
    pub fn is_live(&self, r: MfRef) -> bool {
        self.slots
            .get(r.slot as usize)
            .is_some_and(|s| s.gen == r.gen && s.mf.is_some())
    }

    /// The megaflow `r` names, if it is still there.
    #[inline]
    pub fn get(&self, r: MfRef) -> Option<&Megaflow> {
        self.slots
            .get(r.slot as usize)
            .filter(|s| s.gen == r.gen)
            .and_then(|s| s.mf.as_ref())
    }

    /// Mutable access to the megaflow `r` names.
    #[inline]
    pub fn get_mut(&mut self, r: MfRef) -> Option<&mut Megaflow> {
        self.slots
            .get_mut(r.slot as usize)
            .filter(|s| s.gen == r.gen)
            .and_then(|s| s.mf.as_mut())
    }

    /// The first megaflow that matches `flow`, if any.
    #[inline]
    pub fn lookup(&mut self, flow: &Flow) -> Option<MfRef> {
        self.lookup_with(flow, |_, _| true)
    }

    /// The first megaflow that matches `flow` and that `accept` accepts (its recorded filter
    /// results hold for the packet, say), trying every matching megaflow in rank order.
    // Always: called with a closure over the caller's state, which a call makes it store.
    #[inline(always)]
    pub fn lookup_with(
        &mut self,
        flow: &Flow,
        mut accept: impl FnMut(MfRef, &Megaflow) -> bool,
    ) -> Option<MfRef> {
        self.lookups += 1;
        if self.lookups >= RERANK_INTERVAL {
            self.rerank();
        }
        for &st in &self.order {
            let sub = &mut self.subtables[st as usize];
            let Some(slots) = sub.map.get(&sub.hash(flow)) else {
                continue;
            };
            for &slot in slots {
                let s = &self.slots[slot as usize];
                let r = MfRef { slot, gen: s.gen };
                let mf = s.mf.as_ref().expect("indexed slots are live");
                if sub.agree(flow, &mf.flow) && accept(r, mf) {
                    sub.hits += 1;
                    return Some(r);
                }
            }
        }
        None
    }

    fn rerank(&mut self) {
        self.lookups = 0;
        let subs = &mut self.subtables;
        self.order
            .sort_by_key(|&i| std::cmp::Reverse(subs[i as usize].hits));
        // Halve the counts so the ranking follows the recent traffic.
        for &i in &self.order {
            subs[i as usize].hits /= 2;
        }
    }

    /// Installs `mf` under `mf.mask`, replacing a megaflow with the same mask, masked key and
    /// recorded filter results (which is returned, so that its statistics are not lost);
    /// megaflows whose filters answered differently live side by side. Gives the megaflow back
    /// (and installs nothing) when the cache is full.
    pub fn insert(&mut self, mf: Megaflow) -> Result<(MfRef, Option<Megaflow>), Box<Megaflow>> {
        let st = match self.subtables.iter().position(|s| s.mask == mf.mask) {
            Some(i) => i,
            None => {
                self.subtables.push(Subtable {
                    mask: mf.mask,
                    span: Span::of(&mf.mask),
                    map: HashMap::default(),
                    hits: 0,
                });
                self.subtables.len() - 1
            }
        };
        if self.subtables[st].map.is_empty() && !self.order.contains(&(st as u32)) {
            self.order.push(st as u32);
        }
        let sub = &self.subtables[st];
        let k = sub.hash(&mf.flow);
        if let Some(slots) = sub.map.get(&k) {
            let same = slots.iter().copied().find(|&i| {
                self.slots[i as usize].mf.as_ref().is_some_and(|o| {
                    sub.agree(&o.flow, &mf.flow) && o.xlation.filters == mf.xlation.filters
                })
            });
            if let Some(old) = same {
                let slot = &mut self.slots[old as usize];
                slot.gen = slot.gen.wrapping_add(1);
                let replaced = slot.mf.replace(mf);
                return Ok((
                    MfRef {
                        slot: old,
                        gen: slot.gen,
                    },
                    replaced,
                ));
            }
        }
        if self.len >= self.capacity {
            return Err(Box::new(mf));
        }
        let slot = match self.free.pop() {
            Some(s) => {
                let sl = &mut self.slots[s as usize];
                sl.subtable = st as u32;
                sl.mf = Some(mf);
                s
            }
            None => {
                self.slots.push(Slot {
                    gen: 1,
                    subtable: st as u32,
                    mf: Some(mf),
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.subtables[st].map.entry(k).or_default().push(slot);
        self.len += 1;
        Ok((
            MfRef {
                slot,
                gen: self.slots[slot as usize].gen,
            },
            None,
        ))
    }

    /// Removes the megaflow `r` names; returns it.
    pub fn remove(&mut self, r: MfRef) -> Option<Megaflow> {
        let slot = self.slots.get_mut(r.slot as usize)?;
        if slot.gen != r.gen {
            return None;
        }
        let mf = slot.mf.take()?;
        slot.gen = slot.gen.wrapping_add(1);
        let st = slot.subtable as usize;
        let k = self.subtables[st].hash(&mf.flow);
        if let Some(slots) = self.subtables[st].map.get_mut(&k) {
            slots.retain(|i| *i != r.slot);
            if slots.is_empty() {
                self.subtables[st].map.remove(&k);
            }
        }
        if self.subtables[st].map.is_empty() {
            // Keep the subtable (its index is referenced by slots) but stop searching it.
            self.order.retain(|&i| i as usize != st);
        }
        self.free.push(r.slot);
        self.len -= 1;
        Some(mf)
    }

    /// References to every megaflow.
    pub fn refs(&self) -> Vec<MfRef> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.mf.is_some())
            .map(|(i, s)| MfRef {
                slot: i as u32,
                gen: s.gen,
            })
            .collect()
    }

    /// Every megaflow.
    pub fn iter(&self) -> impl Iterator<Item = &Megaflow> + '_ {
        self.slots.iter().filter_map(|s| s.mf.as_ref())
    }

    /// Removes every megaflow (generations move on, so outside references go stale).
    pub fn clear(&mut self) {
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.mf.take().is_some() {
                s.gen = s.gen.wrapping_add(1);
                self.free.push(i as u32);
            }
        }
        self.subtables.clear();
        self.order.clear();
        for s in self.slots.iter_mut() {
            s.subtable = 0;
        }
        self.len = 0;
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Makes every masked hash one of four values, so that chains get long.
        pub(super) static COLLIDE: Cell<bool> = const { Cell::new(false) };
    }

    fn mf(src: u32, mask_bits: u32, tag: u32) -> Megaflow {
        let flow = Flow {
            nw_src: src,
            nw_dst: tag,
            ..Flow::default()
        };
        let mask = Flow {
            nw_src: !0u32 << (32 - mask_bits),
            ..Flow::default()
        };
        let x = Xlation {
            actions: Vec::new(),
            mask,
            rules: Vec::new(),
            filters: Vec::new(),
            drop: None,
            recirc: None,
            recircs_avoided: 0,
            version: 0,
            learns: Vec::new(),
            bpf_marks: Vec::new(),
        };
        Megaflow::new(flow, x)
    }

    fn key(src: u32) -> Flow {
        Flow {
            nw_src: src,
            ..Flow::default()
        }
    }

    /// Inserts, looks up, replaces and removes against a list of (masked key) → tag, with
    /// and without forced hash collisions.
    fn against_reference(collide: bool) {
        COLLIDE.with(|c| c.set(collide));
        let mut c = MegaflowCache::new(10_000);
        let mut refs = Vec::new();
        for i in 0..300u32 {
            let (r, old) = c.insert(mf(i << 8, 24, i)).unwrap();
            assert!(old.is_none());
            refs.push(r);
        }
        assert_eq!(c.len(), 300);
        assert_eq!(c.subtables(), 1);
        for i in 0..300u32 {
            let r = c.lookup(&key((i << 8) | 0x7f)).expect("hit");
            assert_eq!(r, refs[i as usize]);
            assert_eq!(c.get(r).unwrap().flow.nw_dst, i);
        }
        assert_eq!(c.lookup(&key(300 << 8)), None);
        // Replacing keeps the slot, moves the generation and gives the old one back.
        let (r, old) = c.insert(mf(5 << 8 | 1, 24, 1000)).unwrap();
        assert_eq!(old.unwrap().flow.nw_dst, 5);
        assert_eq!(r.slot, refs[5].slot);
        assert!(!c.is_live(refs[5]));
        refs[5] = r;
        // Remove every third, from heads, middles and tails of the chains.
        for i in (0..300u32).step_by(3) {
            assert!(c.remove(refs[i as usize]).is_some());
            assert!(c.remove(refs[i as usize]).is_none(), "stale reference");
        }
        for i in 0..300u32 {
            let got = c.lookup(&key(i << 8));
            if i % 3 == 0 {
                assert_eq!(got, None, "{i} removed");
            } else {
                let want = if i == 5 { 1000 } else { i };
                assert_eq!(c.get(got.expect("kept")).unwrap().flow.nw_dst, want);
            }
        }
        // Slots are reused; a second mask makes a second subtable.
        let (r, _) = c.insert(mf(0, 24, 77)).unwrap();
        assert!(r.slot < 300);
        c.insert(mf(0xff00_0000, 8, 78)).unwrap();
        assert_eq!(c.subtables(), 2);
        let r = c.lookup(&key(0xff12_3456)).unwrap();
        assert_eq!(c.get(r).unwrap().flow.nw_dst, 78);
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.lookup(&key(1 << 8)), None);
        COLLIDE.with(|c| c.set(false));
    }

    #[test]
    fn insert_lookup_replace_remove() {
        against_reference(false);
    }

    #[test]
    fn hash_chains_survive_collisions() {
        against_reference(true);
    }

    fn flow_of(words: [u64; FLOW_WORDS]) -> Flow {
        let mut f = Flow::default();
        f.words_mut().copy_from_slice(&words);
        f
    }

    proptest::proptest! {
        /// Whichever span a mask gets, a subtable hashes as the sum over every word and agrees
        /// exactly when the keys are equal on every masked bit (masks with and without rare
        /// words, half of them without; the second key differs from the first in one word,
        /// each word in turn).
        #[test]
        fn both_spans_hash_and_compare_every_masked_word(
            mask in proptest::array::uniform16(proptest::prelude::any::<u64>()),
            used in proptest::array::uniform16(proptest::prelude::any::<bool>()),
            a in proptest::array::uniform16(proptest::prelude::any::<u64>()),
            flip in 1..u64::MAX,
            common in proptest::prelude::any::<bool>(),
        ) {
            let mut mask = mask;
            for (i, (w, u)) in mask.iter_mut().zip(used).enumerate() {
                *w = if u && !(common && RARE_WORDS.contains(&i)) { *w } else { 0 };
            }
            let (mask, fa) = (flow_of(mask), flow_of(a));
            let sub = |span| Subtable { mask, span, map: HashMap::default(), hits: 0 };
            let sparse = Span::Sparse(
                (0..FLOW_WORDS as u8).filter(|&i| mask.words()[i as usize] != 0).collect(),
            );
            let (chosen, listed) = (sub(Span::of(&mask)), sub(sparse));
            let rare = mask.words()[RARE_WORDS].iter().any(|&w| w != 0);
            let used = mask.words().iter().filter(|&&w| w != 0).count();
            proptest::prop_assert_eq!(chosen.span == Span::Common, !rare && used >= COMMON_FROM);
            let h = (0..FLOW_WORDS).fold(0u64, |h, i| {
                h.wrapping_add((a[i] & mask.words()[i]).wrapping_mul(HASH_KEYS[i] | 1))
            });
            let h = fold_mul(h, HASH_MUL ^ 0x2545_f491_4f6c_dd1d);
            proptest::prop_assert_eq!(chosen.hash(&fa), h);
            proptest::prop_assert_eq!(listed.hash(&fa), h);
            for i in 0..FLOW_WORDS {
                let mut b = a;
                b[i] ^= flip;
                let same = flip & mask.words()[i] == 0;
                proptest::prop_assert_eq!(chosen.agree(&fa, &flow_of(b)), same, "word {}", i);
                proptest::prop_assert_eq!(listed.agree(&fa, &flow_of(b)), same, "word {}", i);
            }
        }
    }

    #[test]
    fn a_full_cache_gives_the_megaflow_back() {
        let mut c = MegaflowCache::new(2);
        c.insert(mf(1 << 8, 24, 1)).unwrap();
        c.insert(mf(2 << 8, 24, 2)).unwrap();
        assert!(c.insert(mf(3 << 8, 24, 3)).is_err());
        // Replacing needs no room.
        assert!(c.insert(mf(1 << 8, 24, 9)).is_ok());
    }
}
