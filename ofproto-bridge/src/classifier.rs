//! Tuple-space-search classifier: rules grouped into subtables by mask, searched in priority order.
//!
//! # Goal
//!
//! Given a flow key, find the highest-priority rule of one OpenFlow table whose match the key
//! satisfies, and at the same time say which bits of the key the answer depended on. The
//! second output is what makes the datapath's megaflow cache possible: translation ORs the
//! bits into the megaflow mask, and every packet that agrees with the looked-up key on those
//! bits is then handled by the cached actions without another lookup.
//!
//! # The correctness property
//!
//! Let `wc` be the bits un-wildcarded by `lookup(f)`. For every key `g` with
//! `g & wc == f & wc`, `lookup(g)` must return the same rule (and consult the same filters
//! with the same results). Un-wildcarding a bit that did not matter is always safe: the
//! megaflow is merely narrower than it could be, and more packets miss it and go through
//! translation. Forgetting a bit that did matter is a bug: a packet that differs in that bit
//! hits a megaflow whose actions belong to a different rule. Every optimisation below is
//! therefore judged by two questions: does it keep the property, and how many bits does it
//! un-wildcard.
//!
//! # Tuple space search
//!
//! Rules with the same mask form a *subtable*: a hash map from the masked key to the rules
//! with that key, highest rank first. A lookup probes each subtable once with the key under
//! that subtable's mask, so its cost grows with the number of distinct masks, not of rules.
//! The subtable's whole mask is un-wildcarded when it is probed, hit or miss, because the
//! outcome of a hash probe depends on every masked bit. *Cost:* one hash of the key per
//! subtable (over only the 64-bit words the mask uses); workloads with many distinct masks
//! (say, one per CIDR prefix length) pay for each of them.
//!
//! # Priority ordering and early termination
//!
//! Every subtable knows the highest rank among its rules, and the subtables are kept sorted
//! by it. Once a match has been found, the search stops at the first subtable whose best rank
//! is lower: no rule in it or after it can win, so their masks need not be un-wildcarded at
//! all. *Cost:* subtables must be re-sorted when a rule insertion or removal changes one's
//! maximum (insertion and removal are O(subtables), lookups stay allocation-free).
//!
//! # Staged lookup
//!
//! A subtable's mask is split into four stages: metadata (`metadata`, `in_port`,
//! `recirc_id`), L2, L3 and L4 (see [`STAGES`]). For every stage but the last, the subtable
//! keeps a multiset of the hashes of its rules' keys under the mask of that stage and all the
//! earlier ones. A lookup checks these stage by stage; when the key's partial hash is absent,
//! no rule of the subtable can match any key that agrees with this one on the stages
//! consulted so far, so only those stages are un-wildcarded and the subtable is left. This
//! keeps, for example, the L4 ports of a subtable matching `tcp,nw_dst=10.0.0.1,tp_dst=80`
//! out of the megaflow of a packet going to 10.0.0.2. Hash collisions can only make a check
//! pass that should fail, which un-wildcards more bits, never fewer. The stage hashes are one
//! running hash over the mask's words in stage order, checked after each stage, so a word is
//! hashed once however many stages pass (as in Open vSwitch). *Cost:* up to three more hash
//! map probes per probed subtable and one hash map per stage; insertion and removal update them.
//!
//! # Prefix tracking
//!
//! Routing-style tables have one subtable per prefix length of `nw_dst` (or `nw_src`), and
//! probing a `/24` subtable un-wildcards 24 address bits even when the packet's address
//! shares only its first few bits with any rule. For each of the two IPv4 address fields the
//! classifier keeps a binary trie of the prefixes of every rule whose mask on that field is a
//! prefix (as Open vSwitch does). A lookup walks the trie along the key's address once, which
//! yields the set of prefix lengths that some rule matches and the number of leading bits the
//! walk read before it fell off the trie. A subtable whose prefix length is not in that set
//! cannot match; it is skipped with only those leading bits un-wildcarded (any key sharing
//! them walks the same path). A subtable that passes has its own prefix bits un-wildcarded
//! (any key sharing them passes too). *Cost:* a walk of up to 32 steps per field per lookup (only
//! when some subtable can use it), and trie maintenance on insertion and removal.
//!
//! # Ranks and ties
//!
//! OpenFlow leaves the outcome undefined when two overlapping rules have the same priority.
//! Here it is defined: every insertion gets a sequence number and a rule's *rank* is
//! `priority << 48 | sequence`, so among equal priorities the most recently inserted rule
//! wins. Ranks are unique, which is what lets early termination stop on a strict comparison.
//!
//! # Filters
//!
//! A rule may carry eBPF filters (`bpf_filter=NAME`). The caller's `filter` callback decides
//! them; since a filter may be stateful (a rate limiter, a connection tracker), it is asked
//! only about a rule that wins if the filter passes: the search first finds the best rule
//! without filters and collects the rules with filters that outrank it, then asks their
//! filters highest rank first; the first that passes wins, and if none does the rule without
//! filters wins. Filter results are not visible in the mask: the caller records
//! which filters were consulted and what they answered (the megaflow re-checks them).
//!
//! # Versioning and thread safety
//!
//! The classifier is a plain single-owner value (`&self` lookups, `&mut self` updates); the
//! owning [`crate::bridge::Bridge`] carries the version number that caches revalidate against.
//! Rules are shared as `Arc<Rule>` so that translation can keep a rule's actions while it
//! mutates other parts of the bridge.

use crate::flow::{hash_add, hash_finish, word_index, Flow, Vlan, FLOW_WORDS};
use crate::rule::{Match, Rule};
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

/// Stable identity of a rule: never reused within one bridge.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Default)]
pub struct RuleId(pub u64);

/// Number of lookup stages.
pub const N_STAGES: usize = 4;

/// Names of the lookup stages, in order.
pub const STAGES: [&str; N_STAGES] = ["metadata", "l2", "l3", "l4"];

/// The bits of a [`Flow`] that belong to each stage (together they cover the whole key).
pub fn stage_bits() -> &'static [Flow; N_STAGES] {
    static BITS: OnceLock<[Flow; N_STAGES]> = OnceLock::new();
    BITS.get_or_init(|| {
        let mut s = [Flow::default(); N_STAGES];
        s[0].metadata = !0;
        s[0].in_port = !0;
        s[0].recirc_id = !0;
        s[1].dl_dst = [0xff; 6];
        s[1].dl_src = [0xff; 6];
        s[1].dl_type = !0;
        s[1].vlans = [Vlan { tpid: !0, tci: !0 }; 2];
        s[1].mpls_lse = !0;
        s[2].nw_src = !0;
        s[2].nw_dst = !0;
        s[2].ipv6_label = !0;
        s[2].ipv6_src = [0xff; 16];
        s[2].ipv6_dst = [0xff; 16];
        s[2].nw_proto = !0;
        s[2].nw_tos = !0;
        s[2].nw_ttl = !0;
        s[2].nw_frag = !0;
        s[3].nd_target = [0xff; 16];
        s[3].arp_sha = [0xff; 6];
        s[3].arp_tha = [0xff; 6];
        s[3].tp_src = !0;
        s[3].tp_dst = !0;
        s[3].tcp_flags = !0;
        s
    })
}

/// A hasher for keys that already are well-mixed 64-bit hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ *b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashMapId<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;

/// A rule as the classifier stores it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// `priority << 48 | insertion sequence`: unique, higher wins.
    pub rank: u64,
    /// The rule's identity.
    pub id: RuleId,
    /// The rule.
    pub rule: Arc<Rule>,
}

#[derive(Clone, Debug)]
struct Bucket {
    key: Flow,
    /// Highest rank first.
    entries: Vec<Entry>,
}

/// A mask as the list of its non-zero words, so that hashing and comparing under it skip
/// the words it ignores (most masks use a few of the key's 16 words).
#[derive(Clone, Copy, Debug)]
struct SparseMask {
    idx: [u8; FLOW_WORDS],
    bits: [u64; FLOW_WORDS],
    n: usize,
}

impl SparseMask {
    fn new(mask: &Flow) -> SparseMask {
        let mut m = SparseMask {
            idx: [0; FLOW_WORDS],
            bits: [0; FLOW_WORDS],
            n: 0,
        };
        for (i, w) in mask.words().iter().enumerate() {
            if *w != 0 {
                m.idx[m.n] = i as u8;
                m.bits[m.n] = *w;
                m.n += 1;
            }
        }
        m
    }

    /// Whether `flow` under the mask equals `key` (already masked).
    #[inline]
    fn matches(&self, flow: &Flow, key: &Flow) -> bool {
        let (w, k) = (flow.words(), key.words());
        (0..self.n).all(|i| {
            let j = word_index(self.idx[i]);
            w[j] & self.bits[i] == k[j]
        })
    }
}

/// A subtable's mask split into its stages' parts, hashed one part after the other: the
/// running hash after part `k` is the hash of the key under stages `0..=k` (what stage `k`
/// checks), and after the last part the hash the buckets are keyed by, so a lookup hashes
/// each word once however many stages it passes (Open vSwitch hashes its stages the same way).
#[derive(Clone, Copy, Debug)]
struct StageChain {
    /// The parts' non-zero words in stage order (a word shared by two stages, with disjoint
    /// bits, appears once for each) and their bits.
    idx: [u8; CHAIN_WORDS],
    bits: [u64; CHAIN_WORDS],
    /// Where each non-empty part's words end; the last is the total.
    ends: [u8; N_STAGES],
    n_parts: usize,
}

/// Most words a [`StageChain`] lists: every word in every stage.
const CHAIN_WORDS: usize = FLOW_WORDS * N_STAGES;

/// The running hash's starting value.
const HASH_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

impl StageChain {
    /// The chain of a mask's non-empty stage `parts`, in stage order.
    fn new(parts: &[Flow]) -> StageChain {
        let mut c = StageChain {
            idx: [0; CHAIN_WORDS],
            bits: [0; CHAIN_WORDS],
            ends: [0; N_STAGES],
            n_parts: parts.len(),
        };
        let mut n = 0;
        for (k, part) in parts.iter().enumerate() {
            for (i, w) in part.words().iter().enumerate() {
                if *w != 0 {
                    c.idx[n] = i as u8;
                    c.bits[n] = *w;
                    n += 1;
                }
            }
            c.ends[k] = n as u8;
        }
        c
    }

    /// The words of part `k`.
    #[inline]
    fn part(&self, k: usize) -> std::ops::Range<usize> {
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        start..self.ends[k] as usize
    }

    /// The running hash `h` continued over part `k` of `flow` (unfinished).
    #[inline]
    fn continue_hash(&self, mut h: u64, flow: &Flow, k: usize) -> u64 {
        let w = flow.words();
        for i in self.part(k) {
            h = hash_add(h, w[word_index(self.idx[i])] & self.bits[i]);
        }
        h
    }

    /// The hashes of `key` that the stages check (one per part but the last) and its hash
    /// under the whole mask.
    fn hashes(&self, key: &Flow) -> ([u64; N_STAGES], u64) {
        let mut stages = [0; N_STAGES];
        let mut h = HASH_SEED;
        for (k, stage) in stages.iter_mut().enumerate().take(self.n_parts) {
            h = self.continue_hash(h, key, k);
            *stage = hash_finish(h);
        }
        (stages, hash_finish(h))
    }

    /// The hash of `key` under the whole mask.
    fn full_hash(&self, key: &Flow) -> u64 {
        self.hashes(key).1
    }
}

#[derive(Clone, Debug)]
struct Stage {
    /// Subtable mask restricted to this stage and every earlier one.
    mask: Flow,
    /// Hash of each rule key under `mask` (the subtable's chain hash after this stage's
    /// part) -> number of rules with that hash.
    hashes: HashMapId<u32>,
}

#[derive(Clone, Debug)]
struct Subtable {
    mask: Flow,
    /// Prefix length on each [`TrieField`] when the mask there is a prefix.
    plens: [Option<u8>; 2],
    /// `mask` as a list of words, to compare keys under it.
    sparse: SparseMask,
    /// `mask` split by stage, to hash keys under it stage by stage.
    chain: StageChain,
    /// Checks before the final probe (stages with no bits of `mask` are left out): one per
    /// part of `chain` but the last.
    stages: Vec<Stage>,
    /// Keyed by `chain`'s full hash.
    buckets: HashMapId<Vec<Bucket>>,
    ranks: BTreeSet<u64>,
}

impl Subtable {
    fn new(mask: Flow) -> Subtable {
        // The mask's non-empty stage parts, split once: the chain hashes them in order, and
        // every part but the last gets a check of the key under it and the parts before it.
        let parts: Vec<Flow> = stage_bits()
            .iter()
            .map(|b| mask.masked(b))
            .filter(|p| !p.is_zero())
            .collect();
        let mut cum = Flow::default();
        let stages = parts[..parts.len().saturating_sub(1)]
            .iter()
            .map(|part| {
                cum.or_assign(part);
                Stage {
                    mask: cum,
                    hashes: HashMapId::default(),
                }
            })
            .collect();
        Subtable {
            mask,
            plens: TrieField::ALL.map(|f| f.plen(&mask)),
            sparse: SparseMask::new(&mask),
            chain: StageChain::new(&parts),
            stages,
            buckets: HashMapId::default(),
            ranks: BTreeSet::new(),
        }
    }

    fn max_rank(&self) -> u64 {
        self.ranks.last().copied().unwrap_or(0)
    }

    fn insert(&mut self, key: Flow, entry: Entry) {
        let (stage_hashes, full) = self.chain.hashes(&key);
        for (s, h) in self.stages.iter_mut().zip(stage_hashes) {
            *s.hashes.entry(h).or_insert(0) += 1;
        }
        self.ranks.insert(entry.rank);
        let list = self.buckets.entry(full).or_default();
        let bucket = match list.iter_mut().position(|b| b.key == key) {
            Some(i) => &mut list[i],
            None => {
                list.push(Bucket {
                    key,
                    entries: Vec::new(),
                });
                list.last_mut().expect("just pushed")
            }
        };
        let pos = bucket
            .entries
            .iter()
            .position(|e| e.rank < entry.rank)
            .unwrap_or(bucket.entries.len());
        bucket.entries.insert(pos, entry);
    }

    fn remove(&mut self, key: &Flow, id: RuleId) -> Option<Entry> {
        let (stage_hashes, h) = self.chain.hashes(key);
        let list = self.buckets.get_mut(&h)?;
        let bi = list.iter().position(|b| b.key == *key)?;
        let ei = list[bi].entries.iter().position(|e| e.id == id)?;
        let entry = list[bi].entries.remove(ei);
        if list[bi].entries.is_empty() {
            list.swap_remove(bi);
            if list.is_empty() {
                self.buckets.remove(&h);
            }
        }
        for (s, sh) in self.stages.iter_mut().zip(stage_hashes) {
            if let Some(n) = s.hashes.get_mut(&sh) {
                *n -= 1;
                if *n == 0 {
                    s.hashes.remove(&sh);
                }
            }
        }
        self.ranks.remove(&entry.rank);
        Some(entry)
    }

    fn bucket(&self, key: &Flow) -> Option<&Bucket> {
        self.buckets
            .get(&self.chain.full_hash(key))?
            .iter()
            .find(|b| b.key == *key)
    }
}

/// The IPv4 address fields with prefix tracking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TrieField {
    NwDst,
    NwSrc,
}

impl TrieField {
    const ALL: [TrieField; 2] = [TrieField::NwDst, TrieField::NwSrc];

    fn get(self, f: &Flow) -> u32 {
        match self {
            TrieField::NwDst => f.nw_dst,
            TrieField::NwSrc => f.nw_src,
        }
    }

    fn get_mut(self, f: &mut Flow) -> &mut u32 {
        match self {
            TrieField::NwDst => &mut f.nw_dst,
            TrieField::NwSrc => &mut f.nw_src,
        }
    }

    /// The prefix length of `mask` on this field, if it is a non-empty prefix mask.
    fn plen(self, mask: &Flow) -> Option<u8> {
        let m = self.get(mask);
        (m != 0 && m.leading_ones() + m.trailing_zeros() == 32).then(|| m.leading_ones() as u8)
    }
}

/// The mask of the first `n` bits of a 32-bit address.
fn prefix_mask(n: u32) -> u32 {
    if n == 0 {
        0
    } else {
        u32::MAX << (32 - n.min(32))
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct TrieNode {
    /// Children by next bit (0: none; node 0 is the root and never a child).
    child: [u32; 2],
    /// Rules whose prefix ends at this node.
    ends: u32,
    /// Rules whose prefix passes through or ends at this node.
    count: u32,
}

/// A binary trie of rule prefixes on one address field.
#[derive(Clone, Debug)]
struct Trie {
    nodes: Vec<TrieNode>,
    free: Vec<u32>,
}

impl Default for Trie {
    fn default() -> Self {
        Trie {
            nodes: vec![TrieNode::default()],
            free: Vec::new(),
        }
    }
}

impl Trie {
    fn insert(&mut self, addr: u32, plen: u8) {
        let mut n = 0usize;
        self.nodes[0].count += 1;
        for depth in 0..plen as u32 {
            let bit = ((addr >> (31 - depth)) & 1) as usize;
            let mut c = self.nodes[n].child[bit] as usize;
            if c == 0 {
                c = match self.free.pop() {
                    Some(i) => {
                        self.nodes[i as usize] = TrieNode::default();
                        i as usize
                    }
                    None => {
                        self.nodes.push(TrieNode::default());
                        self.nodes.len() - 1
                    }
                };
                self.nodes[n].child[bit] = c as u32;
            }
            n = c;
            self.nodes[n].count += 1;
        }
        self.nodes[n].ends += 1;
    }

    fn remove(&mut self, addr: u32, plen: u8) {
        let mut n = 0usize;
        self.nodes[0].count -= 1;
        for depth in 0..plen as u32 {
            let bit = ((addr >> (31 - depth)) & 1) as usize;
            let c = self.nodes[n].child[bit] as usize;
            debug_assert_ne!(c, 0, "removing a prefix that was never inserted");
            self.nodes[c].count -= 1;
            if self.nodes[c].count == 0 {
                // Nothing else below: unlink the branch and recycle its nodes.
                self.nodes[n].child[bit] = 0;
                self.release(c);
                return;
            }
            n = c;
        }
        self.nodes[n].ends -= 1;
    }

    fn release(&mut self, n: usize) {
        let mut stack = vec![n];
        while let Some(i) = stack.pop() {
            for c in self.nodes[i].child {
                if c != 0 {
                    stack.push(c as usize);
                }
            }
            self.free.push(i as u32);
        }
    }

    /// Walks the trie along `addr`: the set of prefix lengths (bit `l` for length `l`) that
    /// some rule matches, and how many leading bits of `addr` the walk read.
    fn walk(&self, addr: u32) -> (u64, u32) {
        let mut n = 0usize;
        let mut matched = 0u64;
        for depth in 0..32u32 {
            if self.nodes[n].ends > 0 {
                matched |= 1 << depth;
            }
            let bit = ((addr >> (31 - depth)) & 1) as usize;
            let c = self.nodes[n].child[bit] as usize;
            if c == 0 {
                return (matched, depth + 1);
            }
            n = c;
        }
        if self.nodes[n].ends > 0 {
            matched |= 1 << 32;
        }
        (matched, 32)
    }
}

/// Where a rule lives, so that it can be removed without a search.
#[derive(Clone, Copy, Debug)]
struct Location {
    mask: Flow,
    key: Flow,
}

/// One OpenFlow table's rules, organised for tuple space search. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Classifier {
    /// Sorted by maximum rank, highest first.
    subtables: Vec<Subtable>,
    index: HashMap<RuleId, Location>,
    next_seq: u64,
    /// Prefix tries, indexed like [`TrieField::ALL`].
    tries: [Trie; 2],
}

impl Classifier {
    /// An empty classifier.
    pub fn new() -> Classifier {
        Classifier::default()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Number of subtables (distinct masks).
    pub fn n_subtables(&self) -> usize {
        self.subtables.len()
    }

    /// Inserts `rule` under `id` (which must not be present); it outranks every rule of equal
    /// priority already present. Bits of the match's flow outside its mask are ignored.
    pub fn insert(&mut self, id: RuleId, rule: Arc<Rule>) {
        assert!(
            !self.index.contains_key(&id),
            "rule id {id:?} inserted twice"
        );
        let mask = rule.r#match.mask;
        let key = rule.r#match.flow.masked(&mask);
        self.next_seq += 1;
        let rank = (rule.priority as u64) << 48 | (self.next_seq & ((1 << 48) - 1));
        let st = match self.subtables.iter().position(|s| s.mask == mask) {
            Some(i) => i,
            None => {
                self.subtables.push(Subtable::new(mask));
                self.subtables.len() - 1
            }
        };
        for (i, f) in TrieField::ALL.iter().enumerate() {
            if let Some(l) = self.subtables[st].plens[i] {
                self.tries[i].insert(f.get(&key), l);
            }
        }
        self.subtables[st].insert(key, Entry { rank, id, rule });
        self.index.insert(id, Location { mask, key });
        self.sort_subtables();
    }

    /// Removes a rule, returning it.
    pub fn remove(&mut self, id: RuleId) -> Option<Arc<Rule>> {
        let loc = self.index.remove(&id)?;
        let st = self.subtables.iter().position(|s| s.mask == loc.mask)?;
        let entry = self.subtables[st].remove(&loc.key, id)?;
        for (i, f) in TrieField::ALL.iter().enumerate() {
            if let Some(l) = self.subtables[st].plens[i] {
                self.tries[i].remove(f.get(&loc.key), l);
            }
        }
        if self.subtables[st].ranks.is_empty() {
            self.subtables.remove(st);
        } else {
            self.sort_subtables();
        }
        Some(entry.rule)
    }

    /// Replaces the stored rule of `id` by `rule`, which must have the same match and priority
    /// (used to change actions, cookie or timeouts in place). Returns false if `id` is absent.
    pub fn replace(&mut self, id: RuleId, rule: Arc<Rule>) -> bool {
        let Some(loc) = self.index.get(&id).copied() else {
            return false;
        };
        let Some(st) = self.subtables.iter_mut().find(|s| s.mask == loc.mask) else {
            return false;
        };
        let h = st.chain.full_hash(&loc.key);
        let Some(list) = st.buckets.get_mut(&h) else {
            return false;
        };
        for b in list.iter_mut().filter(|b| b.key == loc.key) {
            if let Some(e) = b.entries.iter_mut().find(|e| e.id == id) {
                debug_assert_eq!(e.rule.r#match, rule.r#match);
                debug_assert_eq!(e.rule.priority, rule.priority);
                e.rule = rule;
                return true;
            }
        }
        false
    }

    /// The stored entry of a rule.
    pub fn get(&self, id: RuleId) -> Option<&Entry> {
        let loc = self.index.get(&id)?;
        let st = self.subtables.iter().find(|s| s.mask == loc.mask)?;
        st.bucket(&loc.key)?.entries.iter().find(|e| e.id == id)
    }

    /// The rule with exactly this match (including filters) and priority, if any
    /// (OpenFlow's "strict" selection, and the identity an `add` replaces).
    pub fn find_exact(&self, m: &Match, priority: u16) -> Option<&Entry> {
        let st = self.subtables.iter().find(|s| s.mask == m.mask)?;
        let key = m.flow.masked(&m.mask);
        st.bucket(&key)?
            .entries
            .iter()
            .find(|e| e.rule.priority == priority && e.rule.r#match.bpf_filters == m.bpf_filters)
    }

    /// Every rule, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.subtables.iter().flat_map(|s| {
            s.buckets
                .values()
                .flat_map(|l| l.iter().flat_map(|b| b.entries.iter()))
        })
    }

    fn sort_subtables(&mut self) {
        self.subtables
            .sort_by_key(|s| std::cmp::Reverse(s.max_rank()));
    }

    /// Finds the highest-ranked rule matching `flow` whose filters (if any) `filter` accepts,
    /// OR-ing into `wc` every bit the answer depended on. Does not allocate.
    pub fn lookup(
        &self,
        flow: &Flow,
        wc: &mut Flow,
        filter: &mut dyn FnMut(&Rule) -> bool,
    ) -> Option<RuleId> {
        self.lookup_entry(flow, wc, filter).map(|e| e.id)
    }

    /// Like [`Classifier::lookup`], returning the stored entry.
    pub fn lookup_entry(
        &self,
        flow: &Flow,
        wc: &mut Flow,
        filter: &mut dyn FnMut(&Rule) -> bool,
    ) -> Option<&Entry> {
        // The best rule without filters; rules with filters that outrank it are collected and
        // their filters asked afterwards, highest rank first, so that a filter (which may be
        // stateful) runs only when its rule would win if it passed.
        let mut best: Option<&Entry> = None;
        let mut candidates: Vec<&Entry> = Vec::new();
        // Trie walks, done when a subtable first needs them.
        let mut walks: [Option<(u64, u32)>; 2] = [None, None];
        'subtables: for st in &self.subtables {
            if let Some(b) = best {
                if st.max_rank() < b.rank {
                    break;
                }
            }
            for (i, f) in TrieField::ALL.iter().enumerate() {
                let Some(l) = st.plens[i] else { continue };
                let (matched, read) =
                    *walks[i].get_or_insert_with(|| self.tries[i].walk(f.get(flow)));
                if matched & (1 << l) == 0 {
                    *f.get_mut(wc) |= prefix_mask(read);
                    continue 'subtables;
                }
                // Passing depended on the first `l` bits (any key sharing them reaches the same
                // node); the probe below un-wildcards them too, unless an earlier stage fails.
                *f.get_mut(wc) |= prefix_mask(l as u32);
            }
            // One running hash through the stages' parts: each word is hashed once.
            let mut h = HASH_SEED;
            for (k, stage) in st.stages.iter().enumerate() {
                h = st.chain.continue_hash(h, flow, k);
                if !stage.hashes.contains_key(&hash_finish(h)) {
                    wc.or_assign(&stage.mask);
                    continue 'subtables;
                }
            }
            if st.chain.n_parts > 0 {
                h = st.chain.continue_hash(h, flow, st.chain.n_parts - 1);
            }
            wc.or_assign(&st.mask);
            let Some(list) = st.buckets.get(&hash_finish(h)) else {
                continue;
            };
            let Some(bucket) = list.iter().find(|b| st.sparse.matches(flow, &b.key)) else {
                continue;
            };
            for e in &bucket.entries {
                if best.is_some_and(|b| e.rank < b.rank) {
                    break;
                }
                if e.rule.r#match.bpf_filters.is_empty() {
                    best = Some(e);
                    break;
                }
                candidates.push(e);
            }
        }
        candidates.sort_by_key(|e| std::cmp::Reverse(e.rank));
        for e in candidates {
            if best.is_some_and(|b| e.rank < b.rank) {
                break;
            }
            if filter(&e.rule) {
                return Some(e);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::Field;
    use proptest::prelude::*;

    fn rule(priority: u16, fields: &[(Field, u128, u128)], filters: &[&str]) -> Rule {
        let mut m = Match::default();
        for &(f, v, mask) in fields {
            f.or_mask(&mut m.mask, mask);
            let cur = f.get(&m.flow);
            f.set(&mut m.flow, cur | (v & mask));
        }
        m.bpf_filters = filters.iter().map(|s| s.to_string()).collect();
        Rule {
            table: 0,
            priority,
            cookie: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            r#match: m,
            actions: vec![],
        }
    }

    fn no_filter(_: &Rule) -> bool {
        panic!("no rule has filters")
    }

    #[test]
    fn stages_cover_the_key_once() {
        let mut all = Flow::default();
        for (i, s) in stage_bits().iter().enumerate() {
            for t in &stage_bits()[i + 1..] {
                assert!(s.masked(t).is_zero(), "stages overlap");
            }
            all.or_assign(s);
        }
        assert_eq!(all, Flow::exact_mask());
    }

    proptest! {
        /// A stage's hash depends on the key under that stage's cumulative mask only, and the
        /// full hash on the key under the whole mask only.
        #[test]
        fn chain_hashes_see_only_their_stages(
            mask in proptest::collection::vec(any::<u64>(), FLOW_WORDS),
            a in proptest::collection::vec(any::<u64>(), FLOW_WORDS),
            b in proptest::collection::vec(any::<u64>(), FLOW_WORDS),
            sparse in proptest::collection::vec(any::<bool>(), FLOW_WORDS),
        ) {
            let mut m = Flow::default();
            for (i, w) in m.words_mut().iter_mut().enumerate() {
                // Many masks leave whole stages out.
                *w = if sparse[i] { 0 } else { mask[i] };
            }
            let st = Subtable::new(m);
            let (mut ka, mut kb) = (Flow::default(), Flow::default());
            ka.words_mut().copy_from_slice(&a);
            kb.words_mut().copy_from_slice(&b);
            // kb outside `mask`, ka inside it.
            let blend = |mask: &Flow| {
                let mut k = kb;
                for ((w, a), m) in k.words_mut().iter_mut().zip(ka.words()).zip(mask.words()) {
                    *w = (*w & !m) | (a & m);
                }
                k
            };
            let (ha, fa) = st.chain.hashes(&ka);
            for (k, stage) in st.stages.iter().enumerate() {
                prop_assert_eq!(st.chain.hashes(&blend(&stage.mask)).0[k], ha[k]);
            }
            prop_assert_eq!(st.chain.full_hash(&blend(&m)), fa);
        }
    }

    #[test]
    fn priority_then_recency() {
        let mut c = Classifier::new();
        c.insert(
            RuleId(1),
            Arc::new(rule(10, &[(Field::InPort, 1, 0xffff_ffff)], &[])),
        );
        c.insert(
            RuleId(2),
            Arc::new(rule(20, &[(Field::EthType, 0x800, 0xffff)], &[])),
        );
        c.insert(
            RuleId(3),
            Arc::new(rule(20, &[(Field::NwTtl, 64, 0xff)], &[])),
        );
        let mut f = Flow {
            in_port: 1,
            dl_type: 0x800,
            nw_ttl: 64,
            ..Flow::default()
        };
        let mut wc = Flow::default();
        assert_eq!(c.lookup(&f, &mut wc, &mut no_filter), Some(RuleId(3)));
        f.nw_ttl = 63;
        assert_eq!(c.lookup(&f, &mut wc, &mut no_filter), Some(RuleId(2)));
        f.dl_type = 0x86dd;
        assert_eq!(c.lookup(&f, &mut wc, &mut no_filter), Some(RuleId(1)));
        f.in_port = 2;
        assert_eq!(c.lookup(&f, &mut wc, &mut no_filter), None);
        assert_eq!(c.remove(RuleId(3)).unwrap().priority, 20);
        f = Flow {
            in_port: 1,
            dl_type: 0x800,
            nw_ttl: 64,
            ..Flow::default()
        };
        assert_eq!(c.lookup(&f, &mut wc, &mut no_filter), Some(RuleId(2)));
        assert_eq!(c.n_subtables(), 2);
    }

    #[test]
    fn early_termination_leaves_lower_subtables_wildcarded() {
        let mut c = Classifier::new();
        c.insert(
            RuleId(1),
            Arc::new(rule(100, &[(Field::InPort, 1, 0xffff_ffff)], &[])),
        );
        c.insert(
            RuleId(2),
            Arc::new(rule(1, &[(Field::TcpDst, 80, 0xffff)], &[])),
        );
        let f = Flow {
            in_port: 1,
            tp_dst: 80,
            ..Flow::default()
        };
        let mut wc = Flow::default();
        assert_eq!(c.lookup(&f, &mut wc, &mut no_filter), Some(RuleId(1)));
        assert_eq!(wc.in_port, !0);
        assert_eq!(wc.tp_dst, 0, "the priority-1 subtable was never probed");
    }

    #[test]
    fn staged_lookup_stops_at_the_first_failing_stage() {
        let mut c = Classifier::new();
        c.insert(
            RuleId(1),
            Arc::new(rule(
                5,
                &[
                    (Field::EthType, 0x800, 0xffff),
                    (Field::IpProto, 6, 0xff),
                    (Field::TcpDst, 80, 0xffff),
                ],
                &[],
            )),
        );
        let f = Flow {
            dl_type: 0x800,
            nw_proto: 17,
            tp_dst: 80,
            ..Flow::default()
        };
        let mut wc = Flow::default();
        assert_eq!(c.lookup(&f, &mut wc, &mut no_filter), None);
        assert_eq!(wc.dl_type, 0xffff);
        assert_eq!(wc.nw_proto, 0xff);
        assert_eq!(wc.tp_dst, 0, "L4 stage must not be consulted");
        let f2 = Flow {
            dl_type: 0x86dd,
            ..f
        };
        let mut wc2 = Flow::default();
        assert_eq!(c.lookup(&f2, &mut wc2, &mut no_filter), None);
        assert_eq!(wc2.nw_proto, 0, "L3 stage must not be consulted");
    }

    #[test]
    fn prefix_tries_read_only_the_bits_that_decide() {
        let mut c = Classifier::new();
        let ip = (Field::EthType, 0x800, 0xffff);
        c.insert(
            RuleId(1),
            Arc::new(rule(
                1,
                &[ip, (Field::Ipv4Dst, 0x0a00_0000, 0xff00_0000)],
                &[],
            )),
        );
        c.insert(
            RuleId(2),
            Arc::new(rule(
                2,
                &[ip, (Field::Ipv4Dst, 0x0a01_0200, 0xffff_ff00)],
                &[],
            )),
        );
        // 10.200.0.1 leaves the trie at the first bit of its second octet: the /24 subtable is
        // skipped having read 9 bits, and the /8 one matches.
        let f = Flow {
            dl_type: 0x800,
            nw_dst: 0x0ac8_0001,
            ..Flow::default()
        };
        let mut wc = Flow::default();
        assert_eq!(c.lookup(&f, &mut wc, &mut no_filter), Some(RuleId(1)));
        assert_eq!(wc.nw_dst, 0xff80_0000);
        // 10.1.2.3 matches the /24.
        let mut wc = Flow::default();
        let g = Flow {
            nw_dst: 0x0a01_0203,
            ..f
        };
        assert_eq!(c.lookup(&g, &mut wc, &mut no_filter), Some(RuleId(2)));
        assert_eq!(wc.nw_dst, 0xffff_ff00);
        // Removing the /24 prunes its branch: the /8 alone decides.
        c.remove(RuleId(2));
        let mut wc = Flow::default();
        assert_eq!(c.lookup(&g, &mut wc, &mut no_filter), Some(RuleId(1)));
        assert_eq!(wc.nw_dst, 0xff00_0000);
        // 11.0.0.0 is not in any prefix: read until the walk falls off (the 8th bit).
        c.remove(RuleId(1));
        c.insert(
            RuleId(3),
            Arc::new(rule(
                1,
                &[ip, (Field::Ipv4Dst, 0x0a00_0000, 0xff00_0000)],
                &[],
            )),
        );
        let mut wc = Flow::default();
        assert_eq!(
            c.lookup(
                &Flow {
                    nw_dst: 0x0b00_0000,
                    ..f
                },
                &mut wc,
                &mut no_filter
            ),
            None
        );
        assert_eq!((wc.nw_dst, wc.dl_type), (0xff00_0000, 0));
    }

    #[test]
    fn rejected_filter_lets_lower_candidate_win() {
        let mut c = Classifier::new();
        let m = [(Field::InPort, 1, 0xffff_ffff)];
        c.insert(RuleId(1), Arc::new(rule(10, &m, &["a"])));
        c.insert(RuleId(2), Arc::new(rule(5, &m, &[])));
        c.insert(RuleId(3), Arc::new(rule(7, &[], &["b"])));
        let f = Flow {
            in_port: 1,
            ..Flow::default()
        };
        let mut asked = Vec::new();
        let mut wc = Flow::default();
        let r = c.lookup(&f, &mut wc, &mut |r: &Rule| {
            asked.push(r.r#match.bpf_filters[0].clone());
            false
        });
        assert_eq!(r, Some(RuleId(2)));
        assert_eq!(asked, ["a", "b"]);
        let mut asked = Vec::new();
        let r = c.lookup(&f, &mut wc, &mut |r: &Rule| {
            asked.push(r.r#match.bpf_filters[0].clone());
            true
        });
        assert_eq!(r, Some(RuleId(1)));
        assert_eq!(asked, ["a"], "lower candidates are not asked once one wins");
    }

    #[test]
    fn find_exact_and_replace() {
        let mut c = Classifier::new();
        let r = rule(10, &[(Field::InPort, 1, 0xffff_ffff)], &[]);
        c.insert(RuleId(1), Arc::new(r.clone()));
        assert_eq!(c.find_exact(&r.r#match, 10).map(|e| e.id), Some(RuleId(1)));
        assert!(c.find_exact(&r.r#match, 11).is_none());
        let mut r2 = r.clone();
        r2.cookie = 7;
        assert!(c.replace(RuleId(1), Arc::new(r2)));
        assert_eq!(c.get(RuleId(1)).unwrap().rule.cookie, 7);
        assert_eq!(c.iter().count(), 1);
    }

    // ---- Differential test against a linear classifier ----

    /// Fields and values from small sets, so that rules overlap and share masks.
    fn arb_fields() -> impl Strategy<Value = Vec<(Field, u128, u128)>> {
        let field = prop_oneof![
            (0u128..3).prop_map(|v| (Field::InPort, v, 0xffff_ffff)),
            (0u128..2).prop_map(|v| (Field::EthType, 0x800 + v * 0x85dd, 0xffff)),
            (0u128..4, prop::sample::select(vec![0xffu128, 0xf0, 0x0f])).prop_map(|(v, m)| (
                Field::Ipv4Dst,
                0x0a000000 | v,
                0xffff_ff00 | m
            )),
            (0u128..3).prop_map(|v| (Field::TcpDst, 80 + v, 0xffff)),
            (0u128..2).prop_map(|v| (Field::Metadata, v, 1)),
            // Prefixes of every length over a few addresses that share leading bits.
            (
                0u32..=32,
                prop::sample::select(vec![0x0a00_0000u128, 0x0a01_0000, 0x0a01_0080, 0x0b00_0000])
            )
                .prop_map(|(len, v)| (Field::Ipv4Src, v, prefix_mask(len) as u128)),
            (0u128..3).prop_map(|v| (Field::EthSrc, v, 0xff)),
        ];
        prop::collection::vec(field, 0..4)
    }

    fn arb_flow() -> impl Strategy<Value = Flow> {
        (
            0u32..3,
            0u16..2,
            0u32..300,
            0u16..4,
            0u64..2,
            0u8..4,
            any::<u64>(),
        )
            .prop_map(|(in_port, ip6, dst, tp, meta, src, noise)| {
                let mut f = Flow {
                    in_port,
                    dl_type: if ip6 == 1 { 0x86dd } else { 0x800 },
                    nw_dst: 0x0a000000 | dst,
                    tp_dst: 79 + tp,
                    metadata: meta | (noise & !1),
                    nw_ttl: noise as u8,
                    ..Flow::default()
                };
                f.dl_src[5] = src;
                f.nw_src = [0x0a00_0000, 0x0a01_0000, 0x0a01_0081, 0x0b00_0001]
                    [(noise >> 16) as usize % 4]
                    ^ ((noise >> 24) as u32 & 0x0101);
                f.dl_src[0] = (noise >> 8) as u8;
                f
            })
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u16, Vec<(Field, u128, u128)>, Option<u8>),
        Remove(usize),
    }

    fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            4 => (0u16..4, arb_fields(), prop::option::weighted(0.3, 0u8..3))
                .prop_map(|(p, f, flt)| Op::Insert(p, f, flt)),
            1 => any::<usize>().prop_map(Op::Remove),
        ];
        prop::collection::vec(op, 1..40)
    }

    /// Deterministic stand-in for eBPF filters: the answer depends on the filter and the key.
    fn filter_answer(name: &str, flow: &Flow) -> bool {
        let h = flow.hash_exact(name.len() as u64) ^ name.as_bytes()[1] as u64;
        h & 1 == 1
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn agrees_with_linear_search_and_mask_is_sound(ops in arb_ops(), flows in prop::collection::vec(arb_flow(), 1..8), flips in prop::collection::vec(any::<[u64; 16]>(), 4)) {
            let mut c = Classifier::new();
            // The reference: (id, sequence, rule); highest (priority, sequence) wins.
            let mut linear: Vec<(RuleId, u64, Rule)> = Vec::new();
            let mut next = 0u64;
            for op in ops {
                match op {
                    Op::Insert(p, fields, flt) => {
                        next += 1;
                        let names: Vec<String> = flt.map(|n| format!("f{n}")).into_iter().collect();
                        let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
                        let r = rule(p, &fields, &names);
                        c.insert(RuleId(next), Arc::new(r.clone()));
                        linear.push((RuleId(next), next, r));
                    }
                    Op::Remove(i) if !linear.is_empty() => {
                        let (id, _, _) = linear.remove(i % linear.len());
                        prop_assert!(c.remove(id).is_some());
                    }
                    Op::Remove(_) => {}
                }
            }
            prop_assert_eq!(c.len(), linear.len());
            for f in flows {
                let expect = linear
                    .iter()
                    .filter(|(_, _, r)| r.r#match.matches(&f)
                        && r.r#match.bpf_filters.iter().all(|n| filter_answer(n, &f)))
                    .max_by_key(|(_, seq, r)| (r.priority, *seq))
                    .map(|(id, _, _)| *id);
                let mut wc = Flow::default();
                let mut asked = Vec::new();
                let got = c.lookup(&f, &mut wc, &mut |r: &Rule| {
                    let ok = r.r#match.bpf_filters.iter().all(|n| filter_answer(n, &f));
                    asked.push((r.r#match.bpf_filters.clone(), ok));
                    ok
                });
                prop_assert_eq!(got, expect);
                // Any key that agrees on the un-wildcarded bits gets the same answer, provided
                // the filters consulted answer the same (the megaflow re-checks them).
                for flip in &flips {
                    let mut g = f;
                    for ((w, m), x) in g.words_mut().iter_mut().zip(wc.words()).zip(flip) {
                        *w ^= x & !m;
                    }
                    g.pad = [0; 4];
                    let mut answers = asked.iter();
                    let mut wc2 = Flow::default();
                    let got2 = c.lookup(&g, &mut wc2, &mut |r: &Rule| {
                        let (names, ok) = answers.next().expect("asked more filters than for f");
                        assert_eq!(names, &r.r#match.bpf_filters);
                        *ok
                    });
                    prop_assert_eq!(got2, got);
                    prop_assert_eq!(wc2, wc, "same decisions must consult the same bits");
                }
            }
        }
    }
}
