//! The exact-match cache (EMC): the first cache level, keyed by the whole flow key.
//!
//! Open vSwitch's EMC, in shape: a direct-mapped table of [`EMC_ENTRIES`] entries probed at
//! [`EMC_WAYS`] positions derived from the flow key's hash ([`hash`]). Beside the entries, a
//! *signature array* holds 32 bits of each occupied entry's hash (0: empty), 32 KiB that stay
//! in the L1/L2 cache: a probe reads the signature first and touches the entry (the full key
//! and a reference, slot and generation, to the megaflow that answered it) only when the
//! signature agrees, so a miss, the common case when there are more flows than entries, costs
//! two reads of a small hot array instead of two cache misses. A hit needs the signature and
//! the whole key to be equal and the megaflow to still be the one referenced (a deleted or
//! replaced megaflow bumps its slot's generation, so stale entries miss without being searched
//! for). Insertion replaces the way whose megaflow is gone, or else the second way, as OVS's
//! `emc_insert` does.
//!
//! **Owner:** one [`crate::dpif::Worker`]; no locks. **Invalidation:** by megaflow
//! generation (see above); [`Emc::clear`] when the worker flushes its caches.

use ofproto_bridge::flow::{for_common_words, Flow, RARE_WORDS};

use crate::packet::ethertype;

use crate::megaflow::{fold_mul, MfRef, HASH_KEYS, HASH_MUL};

/// Number of entries (a power of two). 8192 entries of 136 bytes: about 1.1 MiB per worker
/// plus 32 KiB of signatures, as OVS's 8192-entry EMC.
pub const EMC_ENTRIES: usize = 8192;
/// Number of positions probed per lookup (OVS's `EM_FLOW_HASH_SEGS`).
pub const EMC_WAYS: usize = 2;
const MASK: usize = EMC_ENTRIES - 1;
const SHIFT: u32 = EMC_ENTRIES.trailing_zeros();

/// The hash the exact-match cache is indexed by: a multilinear hash of the key's words (each
/// times its own odd key, summed modulo 2^64: two keys collide only if their word differences
/// weighted by the keys sum to zero), mixed by one folded 64x64->128-bit multiply. The
/// multiplies are independent one-instruction ones. The words only IPv6, neighbour discovery
/// and ARP fill ([`RARE_WORDS`]) are left out of an IPv4 key's hash: they are zero in every
/// IPv4 key the parser makes (`packet::extract`'s tests check it), and leaving them out of
/// any key would still be a function of the key (all a cache index needs; the probe compares
/// whole keys).
#[inline]
pub fn hash(key: &Flow) -> u64 {
    let w = key.words();
    let term = |i: usize| w[i].wrapping_mul(HASH_KEYS[i] | 1);
    let mut h = 0u64;
    for_common_words(|i| h = h.wrapping_add(term(i)));
    if key.dl_type != ethertype::IPV4 {
        for i in RARE_WORDS {
            h = h.wrapping_add(term(i));
        }
    }
    fold_mul(h, HASH_MUL ^ 0x5851_f42d_4c95_7f2d)
}

/// Whether an IPv4 key's [`RARE_WORDS`] are all zero, as in every key the parser makes.
#[inline]
fn rare_words_zero(key: &Flow) -> bool {
    key.words()[RARE_WORDS].iter().all(|&w| w == 0)
}

/// The 16-byte pieces of a key that hold none of its [`RARE_WORDS`] (words 7 to 13): pieces
/// 4 to 6 hold nothing else, piece 3 holds word 6 beside word 7.
#[cfg(target_arch = "x86_64")]
const COMMON_PIECES: [usize; 5] = [0, 1, 2, 3, 7];
#[cfg(target_arch = "x86_64")]
const _: () = assert!(
    RARE_WORDS.start == 7 && RARE_WORDS.end == 14 && ofproto_bridge::flow::FLOW_WORDS == 16
);

/// Whether a cached key `cached` equals the looked-up key `key`: 16 bytes at a time, without
/// early exit (LLVM turns the portable word loop into a chain of compare-and-branch pairs).
/// An IPv4 key is compared without the pieces that hold only [`RARE_WORDS`]: those are zero
/// in every IPv4 key looked up (parser keys) and cached ([`Emc::insert`] takes no other), and
/// the compared pieces include `dl_type`.
#[inline]
fn same_key(cached: &Flow, key: &Flow) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        const N: usize = std::mem::size_of::<Flow>() / 16;
        debug_assert!(key.dl_type != ethertype::IPV4 || rare_words_zero(key));
        let (pa, pb) = (
            std::ptr::from_ref(cached).cast::<__m128i>(),
            std::ptr::from_ref(key).cast::<__m128i>(),
        );
        // SAFETY: SSE2 is part of the x86_64 baseline; both pointers cover a whole `Flow`
        // (N * 16 bytes) and the loads are unaligned ones.
        unsafe {
            let piece =
                |i: usize| _mm_xor_si128(_mm_loadu_si128(pa.add(i)), _mm_loadu_si128(pb.add(i)));
            let mut d = _mm_setzero_si128();
            for i in COMMON_PIECES {
                d = _mm_or_si128(d, piece(i));
            }
            if key.dl_type != ethertype::IPV4 {
                for i in (0..N).filter(|i| !COMMON_PIECES.contains(i)) {
                    d = _mm_or_si128(d, piece(i));
                }
            }
            _mm_movemask_epi8(_mm_cmpeq_epi8(d, _mm_setzero_si128())) == 0xffff
        }
    }
    // `Flow`'s own equality: an or of the words' xors.
    #[cfg(not(target_arch = "x86_64"))]
    {
        cached == key
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    mf: MfRef,
    key: Flow,
}

/// The exact-match cache. See the module documentation.
pub struct Emc {
    /// Per entry: its signature, 0 when empty. Both arrays have the fixed length
    /// [`EMC_ENTRIES`], so that an index masked by `MASK` needs no bounds check.
    sigs: Box<[u32; EMC_ENTRIES]>,
    entries: Box<[Entry; EMC_ENTRIES]>,
    len: usize,
    /// Insertion candidates since the last insertion ([`Emc::probabilistic_insert`]).
    insert_tick: u32,
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
            sigs: vec![0; EMC_ENTRIES]
                .into_boxed_slice()
                .try_into()
                .expect("EMC_ENTRIES signatures"),
            entries: vec![
                Entry {
                    mf: MfRef::NONE,
                    key: Flow::default(),
                };
                EMC_ENTRIES
            ]
            .into_boxed_slice()
            .try_into()
            .expect("EMC_ENTRIES entries"),
            len: 0,
            insert_tick: 0,
        }
    }

    /// Inserts `key` → `mf` one time in `inv_prob` (Open vSwitch's
    /// `emc_probabilistic_insert`: after a megaflow hit or an upcall, so that a flow seen
    /// once does not evict an established one). The hash is computed only when inserting.
    // Always: on every megaflow hit, and all but one call in `inv_prob` is a counter step.
    #[inline(always)]
    pub fn probabilistic_insert(
        &mut self,
        inv_prob: u32,
        key: &Flow,
        hash: impl FnOnce() -> u64,
        mf: MfRef,
        live: impl Fn(MfRef) -> bool,
    ) {
        self.insert_tick += 1;
        if self.insert_tick >= inv_prob.max(1) {
            self.insert_tick = 0;
            self.insert(key, hash(), mf, live);
        }
    }

    #[inline]
    fn ways(hash: u64) -> [usize; EMC_WAYS] {
        [hash as usize & MASK, (hash >> SHIFT) as usize & MASK]
    }

    /// The signature of `hash`: its high half, never 0 (which marks an empty entry).
    #[inline]
    fn sig(hash: u64) -> u32 {
        ((hash >> 32) as u32).max(1)
    }

    /// The megaflow cached for `key` (whose [`hash`] is `hash`), if any. The caller checks
    /// that the reference is still live.
    #[inline(always)]
    pub fn lookup(&self, key: &Flow, hash: u64) -> Option<MfRef> {
        let sig = Self::sig(hash);
        for i in Self::ways(hash) {
            if self.sigs[i] == sig {
                let e = &self.entries[i];
                if same_key(&e.key, key) {
                    return Some(e.mf);
                }
            }
        }
        None
    }

    /// Asks the CPU to bring the signatures and entries `hash` would probe into the cache.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        #[cfg(target_arch = "x86_64")]
        for i in Self::ways(hash) {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // SAFETY: SSE is part of the x86_64 baseline; a prefetch is a hint that never
            // faults and the pointers are in bounds anyway.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(&self.sigs[i]).cast());
                _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(&self.entries[i]).cast());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = hash;
    }

    /// Caches `key` → `mf`. `live` says whether a megaflow reference is still valid.
    pub fn insert(&mut self, key: &Flow, hash: u64, mf: MfRef, live: impl Fn(MfRef) -> bool) {
        // Not cached: a lookup compares an IPv4 key without its rare words (see `same_key`).
        if key.dl_type == ethertype::IPV4 && !rare_words_zero(key) {
            return;
        }
        let ways = Self::ways(hash);
        let sig = Self::sig(hash);
        // The same key already cached: update it in place.
        for &i in &ways {
            if self.sigs[i] == sig && same_key(&self.entries[i].key, key) {
                self.entries[i].mf = mf;
                return;
            }
        }
        let victim = ways
            .iter()
            .copied()
            .find(|&i| self.sigs[i] == 0 || !live(self.entries[i].mf))
            .unwrap_or(ways[EMC_WAYS - 1]);
        if self.sigs[victim] == 0 {
            self.len += 1;
        }
        self.sigs[victim] = sig;
        self.entries[victim] = Entry { mf, key: *key };
    }

    /// Forgets `key` (a hit whose megaflow turned out stale).
    pub fn remove(&mut self, key: &Flow, hash: u64) {
        let sig = Self::sig(hash);
        for i in Self::ways(hash) {
            if self.sigs[i] == sig && same_key(&self.entries[i].key, key) {
                self.sigs[i] = 0;
                self.entries[i].mf = MfRef::NONE;
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
        self.sigs.fill(0);
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ofproto_bridge::flow::FLOW_WORDS;

    fn key(n: u32) -> Flow {
        Flow {
            nw_src: n,
            ..Flow::default()
        }
    }

    proptest::proptest! {
        /// The hash is the multilinear hash of every word, but for an IPv4 key's rare words.
        #[test]
        fn hash_is_the_multilinear_hash_of_the_words(
            words in proptest::collection::vec(proptest::prelude::any::<u64>(), FLOW_WORDS),
            zero in proptest::collection::vec(proptest::prelude::any::<bool>(), FLOW_WORDS),
            ipv4 in proptest::prelude::any::<bool>(),
        ) {
            let mut k = Flow::default();
            for (i, w) in k.words_mut().iter_mut().enumerate() {
                *w = if zero[i] { 0 } else { words[i] };
            }
            if ipv4 {
                k.dl_type = ethertype::IPV4;
            }
            let h = k
                .words()
                .iter()
                .zip(HASH_KEYS)
                .enumerate()
                .filter(|(i, _)| !(k.dl_type == ethertype::IPV4 && RARE_WORDS.contains(i)))
                .fold(0u64, |h, (_, (w, key))| h.wrapping_add(w.wrapping_mul(key | 1)));
            proptest::prop_assert_eq!(hash(&k), fold_mul(h, HASH_MUL ^ 0x5851_f42d_4c95_7f2d));
        }
    }

    #[test]
    fn keys_differing_in_any_one_bit_are_different() {
        let a = Flow {
            nw_src: 0x0a00_0001,
            tp_dst: 53,
            ..Flow::default()
        };
        assert!(same_key(&a, &a.clone()));
        for byte in 0..std::mem::size_of::<Flow>() {
            for bit in 0..8 {
                let mut b = a;
                bytemuck::bytes_of_mut(&mut b)[byte] ^= 1 << bit;
                assert!(!same_key(&a, &b), "byte {byte} bit {bit}");
                assert!(!same_key(&b, &a), "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn ipv4_keys_differing_in_any_bit_outside_the_rare_words_are_different() {
        let a = Flow {
            dl_type: ethertype::IPV4,
            nw_src: 0x0a00_0001,
            tp_dst: 53,
            ..Flow::default()
        };
        assert!(same_key(&a, &a.clone()));
        for word in (0..FLOW_WORDS).filter(|w| !RARE_WORDS.contains(w)) {
            for bit in 0..64 {
                let mut b = a;
                b.words_mut()[word] ^= 1 << bit;
                if b.dl_type != ethertype::IPV4 {
                    assert!(!same_key(&b, &a), "word {word} bit {bit}");
                    continue;
                }
                assert!(!same_key(&a, &b), "word {word} bit {bit}");
                assert!(!same_key(&b, &a), "word {word} bit {bit}");
            }
        }
    }

    #[test]
    fn an_ipv4_key_with_rare_words_set_is_not_cached() {
        let mut emc = Emc::new();
        let mut k = Flow {
            dl_type: ethertype::IPV4,
            ..key(1)
        };
        k.words_mut()[RARE_WORDS.start] = 1;
        let h = hash(&k);
        emc.insert(&k, h, MfRef { slot: 3, gen: 1 }, |_| true);
        assert!(emc.is_empty());
        // Another kind of key with the same words set is.
        k.dl_type = ethertype::IPV6;
        let h = hash(&k);
        emc.insert(&k, h, MfRef { slot: 3, gen: 1 }, |_| true);
        assert_eq!(emc.lookup(&k, h), Some(MfRef { slot: 3, gen: 1 }));
    }

    #[test]
    fn hit_miss_and_replacement() {
        let mut emc = Emc::new();
        let k = key(1);
        let h = hash(&k);
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

    #[test]
    fn a_hash_with_a_zero_high_half_still_hits() {
        let mut emc = Emc::new();
        let k = key(7);
        let r = MfRef { slot: 1, gen: 1 };
        emc.insert(&k, 0x1234, r, |_| true);
        assert_eq!(emc.lookup(&k, 0x1234), Some(r));
        assert_eq!(emc.len(), 1);
    }

    #[test]
    fn every_key_bit_moves_the_hash() {
        let base = Flow::default();
        let h0 = hash(&base);
        for w in 0..FLOW_WORDS {
            for bit in 0..64 {
                let mut k = base;
                k.words_mut()[w] ^= 1 << bit;
                assert_ne!(hash(&k), h0, "word {w} bit {bit}");
            }
        }
    }
}
