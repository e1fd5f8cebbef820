//! The exact-match cache (EMC): the first cache level, keyed by the whole flow key.
//!
//! Open vSwitch's EMC, in shape: a direct-mapped table of [`EMC_ENTRIES`] entries probed at
//! [`EMC_WAYS`] positions derived from the flow key's hash. Each entry holds the full key, its
//! hash and a reference (slot and generation) to the megaflow that answered it; a hit needs
//! the hash and the whole key to be equal and the megaflow to still be the one referenced
//! (a deleted or replaced megaflow bumps its slot's generation, so stale entries miss
//! without being searched for). Insertion replaces the way whose megaflow is gone, or else
//! the second way, as OVS's `emc_insert` does.
//!
//! **Owner:** one [`crate::dpif::Worker`]; no locks. **Invalidation:** by megaflow
//! generation (see above); [`Emc::clear`] when the worker flushes its caches.

use ofproto_bridge::flow::Flow;

use crate::megaflow::MfRef;

/// Number of entries (a power of two). 8192 entries of 144 bytes: about 1.1 MiB per worker,
/// which stays in L2/L3 cache as OVS's 8192-entry EMC does.
pub const EMC_ENTRIES: usize = 8192;
/// Number of positions probed per lookup (OVS's `EM_FLOW_HASH_SEGS`).
pub const EMC_WAYS: usize = 2;
const MASK: usize = EMC_ENTRIES - 1;
const SHIFT: u32 = EMC_ENTRIES.trailing_zeros();

#[derive(Clone, Copy)]
struct Entry {
    hash: u64,
    mf: MfRef,
    key: Flow,
}

/// The exact-match cache. See the module documentation.
pub struct Emc {
    entries: Box<[Entry]>,
    len: usize,
}

impl Default for Emc {
    fn default() -> Self {
        Self::new()
    }
}

impl Emc {
    /// An empty cache.
    pub fn new() -> Emc {
        Emc {
            entries: vec![
                Entry {
                    hash: 0,
                    mf: MfRef::NONE,
                    key: Flow::default(),
                };
                EMC_ENTRIES
            ]
            .into_boxed_slice(),
            len: 0,
        }
    }

    #[inline]
    fn ways(hash: u64) -> [usize; EMC_WAYS] {
        [hash as usize & MASK, (hash >> SHIFT) as usize & MASK]
    }

    /// The megaflow cached for `key` (whose [`Flow::hash_exact`] is `hash`), if any. The
    /// caller checks that the reference is still live.
    #[inline]
    pub fn lookup(&self, key: &Flow, hash: u64) -> Option<MfRef> {
        for i in Self::ways(hash) {
            let e = &self.entries[i];
            if e.hash == hash && !e.mf.is_none() && e.key == *key {
                return Some(e.mf);
            }
        }
        None
    }

    /// Caches `key` → `mf`. `live` says whether a megaflow reference is still valid.
    pub fn insert(&mut self, key: &Flow, hash: u64, mf: MfRef, live: impl Fn(MfRef) -> bool) {
        let ways = Self::ways(hash);
        // The same key already cached: update it in place.
        for &i in &ways {
            let e = &mut self.entries[i];
            if e.hash == hash && !e.mf.is_none() && e.key == *key {
                e.mf = mf;
                return;
            }
        }
        let victim = ways
            .iter()
            .copied()
            .find(|&i| self.entries[i].mf.is_none() || !live(self.entries[i].mf))
            .unwrap_or(ways[EMC_WAYS - 1]);
        let e = &mut self.entries[victim];
        if e.mf.is_none() {
            self.len += 1;
        }
        *e = Entry {
            hash,
            mf,
            key: *key,
        };
    }

    /// Forgets `key` (a hit whose megaflow turned out stale).
    pub fn remove(&mut self, key: &Flow, hash: u64) {
        for i in Self::ways(hash) {
            let e = &mut self.entries[i];
            if e.hash == hash && !e.mf.is_none() && e.key == *key {
                e.mf = MfRef::NONE;
                self.len -= 1;
            }
        }
    }

    /// Number of occupied entries (some may reference megaflows that are gone).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is occupied.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Empties the cache.
    pub fn clear(&mut self) {
        for e in self.entries.iter_mut() {
            e.mf = MfRef::NONE;
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> Flow {
        Flow {
            nw_src: n,
            ..Flow::default()
        }
    }

    #[test]
    fn hit_miss_and_replacement() {
        let mut emc = Emc::new();
        let k = key(1);
        let h = k.hash_exact(0);
        assert_eq!(emc.lookup(&k, h), None);
        let r = MfRef { slot: 3, gen: 1 };
        emc.insert(&k, h, r, |_| true);
        assert_eq!(emc.lookup(&k, h), Some(r));
        // Same hash, different key: never a hit.
        assert_eq!(emc.lookup(&key(2), h), None);
        let r2 = MfRef { slot: 4, gen: 1 };
        emc.insert(&k, h, r2, |_| true);
        assert_eq!(emc.lookup(&k, h), Some(r2));
        assert_eq!(emc.len(), 1);
        emc.remove(&k, h);
        assert_eq!(emc.lookup(&k, h), None);
        assert!(emc.is_empty());
    }

    #[test]
    fn colliding_keys_share_two_ways_and_dead_entries_go_first() {
        let mut emc = Emc::new();
        // Three keys forced onto the same two positions.
        let h = 5u64 | (9u64 << SHIFT);
        let (a, b, c) = (key(1), key(2), key(3));
        let ra = MfRef { slot: 1, gen: 1 };
        let rb = MfRef { slot: 2, gen: 1 };
        let rc = MfRef { slot: 3, gen: 1 };
        emc.insert(&a, h, ra, |_| true);
        emc.insert(&b, h, rb, |_| true);
        assert_eq!(emc.lookup(&a, h), Some(ra));
        assert_eq!(emc.lookup(&b, h), Some(rb));
        // `a`'s megaflow is gone: `c` replaces it, `b` stays.
        emc.insert(&c, h, rc, |r| r != ra);
        assert_eq!(emc.lookup(&a, h), None);
        assert_eq!(emc.lookup(&b, h), Some(rb));
        assert_eq!(emc.lookup(&c, h), Some(rc));
        emc.clear();
        assert_eq!(emc.lookup(&b, h), None);
    }
}
