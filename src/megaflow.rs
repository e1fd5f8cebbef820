//! The megaflow cache: the second cache level, cached translations valid under a mask
//! (Open vSwitch's `dpcls`).
//!
//! A megaflow is a translation ([`Xlation`]) together with the flow key that produced it; it
//! answers every packet whose key agrees with that key on the translation's mask. Megaflows
//! with the same mask share a *subtable*: a hash table from masked key to megaflow. A lookup
//! tries subtables in rank order (most hits first, re-ranked every [`RERANK_INTERVAL`]
//! lookups, as `dpcls_sort_subtable_vector` does) and hashes and compares only the words of
//! the key its mask uses. The first hit is the answer: megaflows installed from translations
//! of the current tables never disagree on a packet that two of them match.
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
use std::hash::{BuildHasherDefault, Hash, Hasher};

use ofproto_bridge::flow::{hash_add, hash_finish, Flow, FLOW_WORDS};
use ofproto_bridge::xlate::Xlation;

use crate::packet::Layout;

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
    /// The translation.
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
    /// Packets already credited to the rules.
    pub credited_packets: u64,
    /// Bytes already credited to the rules.
    pub credited_bytes: u64,
    /// Timestamp of the last hit (ns).
    pub used_ns: u64,
}

impl Megaflow {
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
            credited_packets: 0,
            credited_bytes: 0,
            used_ns: 0,
        }
    }
}

/// A masked key with its precomputed hash (the hash map hashes only the hash).
#[derive(Clone, Copy)]
struct HKey {
    hash: u64,
    key: Flow,
}

impl PartialEq for HKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}
impl Eq for HKey {}
impl Hash for HKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
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

struct Subtable {
    mask: Flow,
    /// Indices of the mask's non-zero words.
    words: Vec<u8>,
    map: HashMap<HKey, u32, BuildHasherDefault<PassThrough>>,
    hits: u64,
}

impl Subtable {
    #[inline]
    fn masked(&self, flow: &Flow) -> HKey {
        let mut key = Flow::default();
        let mut h = 0u64;
        let (fw, mw) = (flow.words(), self.mask.words());
        let kw = key.words_mut();
        for &i in &self.words {
            let i = i as usize;
            let w = fw[i] & mw[i];
            kw[i] = w;
            h = hash_add(h, w);
        }
        HKey {
            hash: hash_finish(h),
            key,
        }
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

    /// The megaflow that matches `flow`, if any.
    #[inline]
    pub fn lookup(&mut self, flow: &Flow) -> Option<MfRef> {
        self.lookups += 1;
        if self.lookups >= RERANK_INTERVAL {
            self.rerank();
        }
        for &st in &self.order {
            let sub = &mut self.subtables[st as usize];
            let k = sub.masked(flow);
            if let Some(&slot) = sub.map.get(&k) {
                sub.hits += 1;
                return Some(MfRef {
                    slot,
                    gen: self.slots[slot as usize].gen,
                });
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

    /// Installs `mf` under `mf.mask`, replacing a megaflow with the same mask and masked
    /// key (which is returned, so that its statistics are not lost). Gives the megaflow back
    /// (and installs nothing) when the cache is full.
    pub fn insert(&mut self, mf: Megaflow) -> Result<(MfRef, Option<Megaflow>), Box<Megaflow>> {
        let st = match self.subtables.iter().position(|s| s.mask == mf.mask) {
            Some(i) => i,
            None => {
                let words = (0..FLOW_WORDS)
                    .filter(|&i| mf.mask.words()[i] != 0)
                    .map(|i| i as u8)
                    .collect();
                self.subtables.push(Subtable {
                    mask: mf.mask,
                    words,
                    map: HashMap::default(),
                    hits: 0,
                });
                self.subtables.len() - 1
            }
        };
        if self.subtables[st].map.is_empty() && !self.order.contains(&(st as u32)) {
            self.order.push(st as u32);
        }
        let k = self.subtables[st].masked(&mf.flow);
        if let Some(&old) = self.subtables[st].map.get(&k) {
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
        self.subtables[st].map.insert(k, slot);
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
        let k = self.subtables[st].masked(&mf.flow);
        self.subtables[st].map.remove(&k);
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
