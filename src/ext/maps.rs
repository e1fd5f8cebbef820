//! Extension maps: hash, array, per-worker hash and array, LRU hash and LPM trie, with the
//! kernel's semantics for update flags, `max_entries` and LPM keys.
//!
//! # Storage and pointer stability
//!
//! Programs keep pointers into map values (a lookup returns the address of the value, and
//! `ld_imm64` of a global yields an address inside a data-section map), so a value must not
//! move while its entry lives. Every map therefore preallocates its values in one fixed
//! *arena* of `max_entries` slots (times the number of workers for per-worker maps), as
//! the kernel's preallocated maps do; an index (a hash table, an LRU order or a prefix
//! table) maps keys to slots. A deleted entry's slot goes to the back of a free list, and
//! the arena lives as long as the map, so a stale pointer still points into the map's own
//! memory (the kernel makes the same promise through RCU).
//!
//! All maps of one extension share one [`MapRegion`]: a single allocation, so that the
//! bounds-checked interpreter can admit map-value accesses with one range check.
//!
//! # Threads
//!
//! A map is shared by every rule that references its extension and by every worker. The
//! key index is behind a mutex; value bytes are read and written in place without locks,
//! exactly as eBPF programs do in the kernel (concurrent updates of one value race; use
//! per-worker maps for counters). Per-worker maps give each worker its own arena row,
//! chosen by [`set_current_worker`].

use std::alloc::Layout;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

/// Map type numbers (the kernel's `BPF_MAP_TYPE_*`).
pub mod map_type {
    /// `BPF_MAP_TYPE_HASH`.
    pub const HASH: u32 = 1;
    /// `BPF_MAP_TYPE_ARRAY`.
    pub const ARRAY: u32 = 2;
    /// `BPF_MAP_TYPE_PERCPU_HASH` (per worker here).
    pub const PERCPU_HASH: u32 = 5;
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` (per worker here).
    pub const PERCPU_ARRAY: u32 = 6;
    /// `BPF_MAP_TYPE_LRU_HASH`.
    pub const LRU_HASH: u32 = 9;
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH` (per worker here).
    pub const LRU_PERCPU_HASH: u32 = 10;
    /// `BPF_MAP_TYPE_LPM_TRIE`.
    pub const LPM_TRIE: u32 = 11;
}

/// Update flags (the kernel's `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`).
pub mod update_flags {
    /// Create or replace.
    pub const ANY: u64 = 0;
    /// Create only; fail if the key exists.
    pub const NOEXIST: u64 = 1;
    /// Replace only; fail if the key is absent.
    pub const EXIST: u64 = 2;
}

/// Largest total size of one extension's maps.
pub const MAX_REGION_BYTES: usize = 512 << 20;

/// Kernel errno values returned (negated) by map helpers.
pub mod errno {
    /// No such entry.
    pub const ENOENT: i64 = 2;
    /// Argument list too long: the map is full, or an array index is out of range.
    pub const E2BIG: i64 = 7;
    /// Entry exists.
    pub const EEXIST: i64 = 17;
    /// Invalid argument.
    pub const EINVAL: i64 = 22;
    /// Operation not permitted (read-only map).
    pub const EPERM: i64 = 1;
}

thread_local! {
    static CURRENT_WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Sets which worker the calling thread is (selects the row of per-worker maps that
/// programs run on this thread see).
pub fn set_current_worker(worker: usize) {
    CURRENT_WORKER.with(|w| w.set(worker));
}

/// The worker id of the calling thread (0 unless [`set_current_worker`] was called).
pub fn current_worker() -> usize {
    CURRENT_WORKER.with(|w| w.get())
}

/// The kinds of map bpfswitch implements.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MapKind {
    /// Hash table.
    Hash,
    /// Array indexed by a `u32`.
    Array,
    /// Hash table with one value per worker.
    PerWorkerHash,
    /// Array with one value per worker.
    PerWorkerArray,
    /// Hash table evicting the least recently used entry when full.
    LruHash,
    /// LRU hash table with one value per worker.
    LruPerWorkerHash,
    /// Longest-prefix-match trie; keys are `{ u32 prefixlen; u8 data[] }`.
    LpmTrie,
}

impl MapKind {
    /// The kind for a kernel map type number.
    pub fn from_type(t: u32) -> Option<MapKind> {
        Some(match t {
            map_type::HASH => MapKind::Hash,
            map_type::ARRAY => MapKind::Array,
            map_type::PERCPU_HASH => MapKind::PerWorkerHash,
            map_type::PERCPU_ARRAY => MapKind::PerWorkerArray,
            map_type::LRU_HASH => MapKind::LruHash,
            map_type::LRU_PERCPU_HASH => MapKind::LruPerWorkerHash,
            map_type::LPM_TRIE => MapKind::LpmTrie,
            _ => return None,
        })
    }

    /// Whether values are per worker.
    pub fn per_worker(self) -> bool {
        matches!(
            self,
            MapKind::PerWorkerHash | MapKind::PerWorkerArray | MapKind::LruPerWorkerHash
        )
    }

    /// Whether the map is an array (every index exists; entries cannot be deleted).
    pub fn is_array(self) -> bool {
        matches!(self, MapKind::Array | MapKind::PerWorkerArray)
    }

    /// A short name as `bpftool` prints it.
    pub fn name(self) -> &'static str {
        match self {
            MapKind::Hash => "hash",
            MapKind::Array => "array",
            MapKind::PerWorkerHash => "percpu_hash",
            MapKind::PerWorkerArray => "percpu_array",
            MapKind::LruHash => "lru_hash",
            MapKind::LruPerWorkerHash => "lru_percpu_hash",
            MapKind::LpmTrie => "lpm_trie",
        }
    }
}

/// Errors of map operations, each with the errno a helper returns for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The key is not in the map.
    #[error("no such entry")]
    NotFound,
    /// `BPF_NOEXIST` and the key exists.
    #[error("entry exists (BPF_NOEXIST)")]
    Exists,
    /// The map is full, or an array index is past `max_entries`.
    #[error("map is full or index out of range (max_entries {max_entries})")]
    Full {
        /// The map's `max_entries`.
        max_entries: u32,
    },
    /// A bad argument: flags, sizes, prefix length, deleting from an array.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The map is read-only (a frozen `.rodata`).
    #[error("map is read-only")]
    ReadOnly,
}

impl MapError {
    /// The negative errno a helper returns for this error.
    pub fn errno(&self) -> i64 {
        -match self {
            MapError::NotFound => errno::ENOENT,
            MapError::Exists => errno::EEXIST,
            MapError::Full { .. } => errno::E2BIG,
            MapError::Invalid(_) => errno::EINVAL,
            MapError::ReadOnly => errno::EPERM,
        }
    }
}

/// A map's definition as the switch creates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec {
    /// Map name.
    pub name: String,
    /// Kind.
    pub kind: MapKind,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// Map flags as declared (`BPF_F_*`); kept for display.
    pub flags: u32,
    /// Whether user space may not update it (a frozen `.rodata`).
    pub readonly: bool,
}

impl MapSpec {
    /// Checks the definition as the kernel does at map creation.
    pub fn validate(&self) -> Result<(), MapError> {
        let bad = |m: &str| Err(MapError::Invalid(format!("map {}: {m}", self.name)));
        if self.max_entries == 0 {
            return bad("max_entries is 0");
        }
        if self.value_size == 0 {
            return bad("value_size is 0");
        }
        if self.kind.is_array() && self.key_size != 4 {
            return bad("array maps need a 4-byte key");
        }
        if self.key_size == 0 || self.key_size > 512 {
            return bad("key_size must be 1..=512");
        }
        if self.kind == MapKind::LpmTrie && !(5..=260).contains(&self.key_size) {
            return bad("LPM trie keys are a u32 prefix length plus 1..=256 data bytes");
        }
        if self.value_size > 1 << 20 {
            return bad("value_size larger than 1 MiB");
        }
        Ok(())
    }

    fn stride(&self) -> usize {
        (self.value_size as usize).div_ceil(8) * 8
    }

    /// Bytes of arena this map needs with `workers` workers.
    pub fn arena_bytes(&self, workers: usize) -> Option<usize> {
        let rows = if self.kind.per_worker() {
            workers.max(1)
        } else {
            1
        };
        self.stride()
            .checked_mul(self.max_entries as usize)?
            .checked_mul(rows)
    }
}

/// One zeroed allocation holding the value arenas of a set of maps.
pub struct MapRegion {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the region is a plain heap allocation; all access goes through raw pointers whose
// synchronisation is the maps' business (index under a mutex, values racy as in the kernel).
unsafe impl Send for MapRegion {}
// SAFETY: as above; the region itself has no interior state besides the bytes.
unsafe impl Sync for MapRegion {}

impl MapRegion {
    /// Allocates `bytes` zeroed bytes (plus 8 bytes of padding), 8-byte aligned.
    pub fn new(bytes: usize) -> Result<Arc<MapRegion>, MapError> {
        if bytes > MAX_REGION_BYTES {
            return Err(MapError::Invalid(format!(
                "maps need {bytes} bytes, more than the limit of {MAX_REGION_BYTES}"
            )));
        }
        let layout =
            Layout::from_size_align(bytes + 8, 8).map_err(|e| MapError::Invalid(e.to_string()))?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr)
            .ok_or_else(|| MapError::Invalid(format!("out of memory for {bytes} bytes")))?;
        Ok(Arc::new(MapRegion { ptr, layout }))
    }

    /// The address range of the region's bytes (without the padding).
    pub fn range(&self) -> Range<u64> {
        let start = self.ptr.as_ptr() as u64;
        start..start + (self.layout.size() - 8) as u64
    }
}

impl Drop for MapRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Hash tables of map indexes: a fast hash with a per-process random seed (keys come from
/// packets, so the seed keeps collisions from being chosen by senders, as the kernel's
/// seeded jhash does).
type KeyMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The key index of a map.
enum Index {
    /// Arrays need none.
    Array,
    /// Hash maps: key to slot.
    Hash {
        slots: KeyMap<Box<[u8]>, u32>,
        free: VecDeque<u32>,
    },
    /// LRU hash maps: key to (slot, last use), and use order.
    Lru {
        slots: KeyMap<Box<[u8]>, (u32, u64)>,
        order: BTreeMap<u64, Box<[u8]>>,
        free: VecDeque<u32>,
        tick: u64,
    },
    /// LPM tries: (prefix length, masked data) to slot, and a count per prefix length.
    Lpm {
        slots: KeyMap<(u32, Box<[u8]>), u32>,
        lens: BTreeMap<u32, usize>,
        free: VecDeque<u32>,
    },
}

/// A live map.
pub struct Map {
    spec: MapSpec,
    workers: usize,
    stride: usize,
    base: *mut u8,
    _region: Arc<MapRegion>,
    index: Mutex<Index>,
}

// SAFETY: `base` points into `_region`, which the map keeps alive; the index is behind a
// mutex and value bytes are accessed through raw pointers only (see the module doc).
unsafe impl Send for Map {}
// SAFETY: as above.
unsafe impl Sync for Map {}

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("spec", &self.spec)
            .field("workers", &self.workers)
            .finish()
    }
}

fn mask_prefix(data: &[u8], plen: u32) -> Box<[u8]> {
    let mut out = data.to_vec();
    let full = (plen / 8) as usize;
    let rem = plen % 8;
    for (i, b) in out.iter_mut().enumerate() {
        if i < full {
            continue;
        }
        if i == full && rem != 0 {
            *b &= 0xffu8 << (8 - rem);
        } else {
            *b = 0;
        }
    }
    out.into_boxed_slice()
}

impl Map {
    /// Creates a map in `region` at byte `offset` (8-aligned; the caller sized the region
    /// with [`MapSpec::arena_bytes`]).
    pub fn new(
        spec: MapSpec,
        workers: usize,
        region: Arc<MapRegion>,
        offset: usize,
    ) -> Result<Map, MapError> {
        spec.validate()?;
        let workers = if spec.kind.per_worker() {
            workers.max(1)
        } else {
            1
        };
        let need = spec
            .arena_bytes(workers)
            .ok_or_else(|| MapError::Invalid("map too large".into()))?;
        let avail = (region.range().end - region.range().start) as usize;
        assert!(
            offset.is_multiple_of(8) && offset + need <= avail,
            "map arena outside its region"
        );
        // SAFETY: offset + need is within the region's allocation (checked just above).
        let base = unsafe { region.ptr.as_ptr().add(offset) };
        let all: VecDeque<u32> = (0..spec.max_entries).collect();
        let index = match spec.kind {
            MapKind::Array | MapKind::PerWorkerArray => Index::Array,
            MapKind::Hash | MapKind::PerWorkerHash => Index::Hash {
                slots: KeyMap::default(),
                free: all,
            },
            MapKind::LruHash | MapKind::LruPerWorkerHash => Index::Lru {
                slots: KeyMap::default(),
                order: BTreeMap::new(),
                free: all,
                tick: 0,
            },
            MapKind::LpmTrie => Index::Lpm {
                slots: KeyMap::default(),
                lens: BTreeMap::new(),
                free: all,
            },
        };
        Ok(Map {
            stride: spec.stride(),
            spec,
            workers,
            base,
            _region: region,
            index: Mutex::new(index),
        })
    }

    /// Creates a map with its own region (tests, tools).
    pub fn standalone(spec: MapSpec, workers: usize) -> Result<Map, MapError> {
        spec.validate()?;
        let w = if spec.kind.per_worker() {
            workers.max(1)
        } else {
            1
        };
        let bytes = spec
            .arena_bytes(w)
            .ok_or_else(|| MapError::Invalid("map too large".into()))?;
        let region = MapRegion::new(bytes)?;
        Map::new(spec, workers, region, 0)
    }

    /// The map's definition.
    pub fn spec(&self) -> &MapSpec {
        &self.spec
    }

    /// Number of value rows (workers for per-worker maps, else 1).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Bytes between the values of two workers in a user-space per-worker value (the
    /// kernel's layout: each worker's value rounded up to 8 bytes).
    pub fn value_stride(&self) -> usize {
        self.stride
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slot_ptr(&self, worker: usize, slot: u32) -> *mut u8 {
        let row = worker % self.workers;
        let off = (row * self.spec.max_entries as usize + slot as usize) * self.stride;
        // SAFETY: row < workers and slot < max_entries, so the offset is inside the arena.
        unsafe { self.base.add(off) }
    }

    fn check_key(&self, key: &[u8]) -> Result<(), MapError> {
        if key.len() != self.spec.key_size as usize {
            return Err(MapError::Invalid(format!(
                "map {}: key is {} bytes, the map's key_size is {}",
                self.spec.name,
                key.len(),
                self.spec.key_size
            )));
        }
        Ok(())
    }

    fn array_index(&self, key: &[u8]) -> Option<u32> {
        let i = u32::from_le_bytes(key[..4].try_into().expect("4-byte key"));
        (i < self.spec.max_entries).then_some(i)
    }

    fn lpm_split<'k>(&self, key: &'k [u8]) -> (u32, &'k [u8]) {
        (
            u32::from_le_bytes(key[..4].try_into().expect("lpm key")),
            &key[4..],
        )
    }

    /// Finds the slot of `key` (LPM: longest matching prefix), refreshing LRU order.
    fn find(&self, idx: &mut Index, key: &[u8]) -> Option<u32> {
        match idx {
            Index::Array => self.array_index(key),
            Index::Hash { slots, .. } => slots.get(key).copied(),
            Index::Lru {
                slots, order, tick, ..
            } => {
                let e = slots.get_mut(key)?;
                *tick += 1;
                let k = order.remove(&e.1).expect("lru order has the key");
                order.insert(*tick, k);
                e.1 = *tick;
                Some(e.0)
            }
            Index::Lpm { slots, lens, .. } => {
                let (plen, data) = self.lpm_split(key);
                let max = plen.min(data.len() as u32 * 8);
                lens.range(..=max)
                    .rev()
                    .find_map(|(&l, _)| slots.get(&(l, mask_prefix(data, l))).copied())
            }
        }
    }

    /// Address of the calling worker's value for `key` (what `bpf_map_lookup_elem` returns),
    /// or `None`. `key` must be `key_size` bytes.
    pub fn lookup_ptr(&self, key: &[u8]) -> Option<*mut u8> {
        if key.len() != self.spec.key_size as usize {
            return None;
        }
        if self.spec.kind.is_array() {
            return self
                .array_index(key)
                .map(|s| self.slot_ptr(current_worker(), s));
        }
        let slot = self.find(&mut self.lock(), key)?;
        Some(self.slot_ptr(current_worker(), slot))
    }

    /// Where a plain (not per-worker) array keeps its values: the address of entry 0's,
    /// the bytes from one entry's to the next and the number of entries; `None` otherwise.
    pub fn array_values(&self) -> Option<(u64, u32, u32)> {
        (self.spec.kind == MapKind::Array).then(|| {
            (
                self.base as u64,
                u32::try_from(self.stride).expect("array stride fits a u32"),
                self.spec.max_entries,
            )
        })
    }

    /// Address of entry 0's value (data-section globals).
    pub fn value0_ptr(&self) -> *mut u8 {
        self.slot_ptr(0, 0)
    }

    fn read_slot(&self, slot: u32) -> Vec<u8> {
        let vs = self.spec.value_size as usize;
        if !self.spec.kind.per_worker() {
            let mut v = vec![0u8; vs];
            // SAFETY: the slot holds value_size bytes inside the arena.
            unsafe { std::ptr::copy_nonoverlapping(self.slot_ptr(0, slot), v.as_mut_ptr(), vs) };
            return v;
        }
        let mut v = vec![0u8; self.stride * self.workers];
        for w in 0..self.workers {
            // SAFETY: as above, for each worker row.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.slot_ptr(w, slot),
                    v.as_mut_ptr().add(w * self.stride),
                    vs,
                )
            };
        }
        v
    }

    /// Writes `value` into `slot`: for per-worker maps either for `worker` only, or, when
    /// `value` holds every worker's value, for all of them.
    fn write_slot(&self, slot: u32, value: &[u8], worker: Option<usize>) {
        let vs = self.spec.value_size as usize;
        match worker {
            Some(w) => {
                // SAFETY: value has value_size bytes (checked by callers); the slot too.
                unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), self.slot_ptr(w, slot), vs) }
            }
            None => {
                for w in 0..self.workers {
                    let src = if value.len() >= self.stride * self.workers
                        && self.spec.kind.per_worker()
                    {
                        &value[w * self.stride..w * self.stride + vs]
                    } else {
                        &value[..vs]
                    };
                    // SAFETY: src has vs bytes; the slot has room for vs bytes.
                    unsafe {
                        std::ptr::copy_nonoverlapping(src.as_ptr(), self.slot_ptr(w, slot), vs)
                    }
                }
            }
        }
    }

    fn zero_slot(&self, slot: u32) {
        for w in 0..self.workers {
            // SAFETY: the slot has room for `stride` bytes in every worker row.
            unsafe { std::ptr::write_bytes(self.slot_ptr(w, slot), 0, self.stride) }
        }
    }

    /// Inserts or replaces; `worker` selects the per-worker row a program writes (None: all).
    fn update_inner(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        worker: Option<usize>,
    ) -> Result<(), MapError> {
        self.check_key(key)?;
        if flags > update_flags::EXIST {
            return Err(MapError::Invalid(format!("update flags {flags:#x}")));
        }
        let vs = self.spec.value_size as usize;
        let ok_len = value.len() == vs
            || (self.spec.kind.per_worker()
                && worker.is_none()
                && value.len() == self.stride * self.workers);
        if !ok_len {
            return Err(MapError::Invalid(format!(
                "map {}: value is {} bytes, the map's value_size is {}{}",
                self.spec.name,
                value.len(),
                vs,
                if self.spec.kind.per_worker() {
                    format!(" (or {} for all workers)", self.stride * self.workers)
                } else {
                    String::new()
                }
            )));
        }
        let max = self.spec.max_entries;
        let mut idx = self.lock();
        match &mut *idx {
            Index::Array => {
                let slot = self
                    .array_index(key)
                    .ok_or(MapError::Full { max_entries: max })?;
                if flags == update_flags::NOEXIST {
                    return Err(MapError::Exists);
                }
                self.write_slot(slot, value, worker);
                Ok(())
            }
            Index::Hash { slots, free } => {
                match slots.get(key) {
                    Some(&slot) => {
                        if flags == update_flags::NOEXIST {
                            return Err(MapError::Exists);
                        }
                        self.write_slot(slot, value, worker);
                    }
                    None => {
                        if flags == update_flags::EXIST {
                            return Err(MapError::NotFound);
                        }
                        let slot = free
                            .pop_front()
                            .ok_or(MapError::Full { max_entries: max })?;
                        self.zero_slot(slot);
                        self.write_slot(slot, value, worker);
                        slots.insert(key.into(), slot);
                    }
                }
                Ok(())
            }
            Index::Lru {
                slots,
                order,
                free,
                tick,
            } => {
                *tick += 1;
                let now = *tick;
                if let Some(e) = slots.get_mut(key) {
                    if flags == update_flags::NOEXIST {
                        return Err(MapError::Exists);
                    }
                    let k = order.remove(&e.1).expect("lru order");
                    order.insert(now, k);
                    e.1 = now;
                    let slot = e.0;
                    self.write_slot(slot, value, worker);
                    return Ok(());
                }
                if flags == update_flags::EXIST {
                    return Err(MapError::NotFound);
                }
                let slot = match free.pop_front() {
                    Some(s) => s,
                    None => {
                        let (_, victim) = order.pop_first().expect("full LRU map has entries");
                        slots.remove(&victim).expect("victim indexed").0
                    }
                };
                self.zero_slot(slot);
                self.write_slot(slot, value, worker);
                slots.insert(key.into(), (slot, now));
                order.insert(now, key.into());
                Ok(())
            }
            Index::Lpm { slots, lens, free } => {
                let (plen, data) = self.lpm_split(key);
                if plen > data.len() as u32 * 8 {
                    return Err(MapError::Invalid(format!(
                        "LPM prefix length {plen} exceeds {} bits of key data",
                        data.len() * 8
                    )));
                }
                let k = (plen, mask_prefix(data, plen));
                match slots.get(&k) {
                    Some(&slot) => {
                        if flags == update_flags::NOEXIST {
                            return Err(MapError::Exists);
                        }
                        self.write_slot(slot, value, worker);
                    }
                    None => {
                        if flags == update_flags::EXIST {
                            return Err(MapError::NotFound);
                        }
                        let slot = free
                            .pop_front()
                            .ok_or(MapError::Full { max_entries: max })?;
                        self.zero_slot(slot);
                        self.write_slot(slot, value, worker);
                        slots.insert(k, slot);
                        *lens.entry(plen).or_insert(0) += 1;
                    }
                }
                Ok(())
            }
        }
    }

    /// User-space update (`bpf_map_update_elem` from a tool). For per-worker maps `value`
    /// is either one value (written for every worker) or every worker's value, each
    /// rounded up to 8 bytes.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        if self.spec.readonly {
            return Err(MapError::ReadOnly);
        }
        self.update_inner(key, value, flags, None)
    }

    /// A program's update: per-worker maps change the calling worker's value only.
    pub fn update_from_program(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        let w = self.spec.kind.per_worker().then(current_worker);
        self.update_inner(key, value, flags, w.or(Some(0)))
    }

    /// Deletes `key` (LPM: the exact prefix). Arrays refuse with `EINVAL`, as in the kernel.
    pub fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.check_key(key)?;
        let mut idx = self.lock();
        match &mut *idx {
            Index::Array => Err(MapError::Invalid(
                "array map entries cannot be deleted".into(),
            )),
            Index::Hash { slots, free } => {
                let slot = slots.remove(key).ok_or(MapError::NotFound)?;
                free.push_back(slot);
                Ok(())
            }
            Index::Lru {
                slots, order, free, ..
            } => {
                let (slot, t) = slots.remove(key).ok_or(MapError::NotFound)?;
                order.remove(&t);
                free.push_back(slot);
                Ok(())
            }
            Index::Lpm { slots, lens, free } => {
                let (plen, data) = self.lpm_split(key);
                if plen > data.len() as u32 * 8 {
                    return Err(MapError::Invalid(format!("LPM prefix length {plen}")));
                }
                let slot = slots
                    .remove(&(plen, mask_prefix(data, plen)))
                    .ok_or(MapError::NotFound)?;
                free.push_back(slot);
                let c = lens.get_mut(&plen).expect("count for present length");
                *c -= 1;
                if *c == 0 {
                    lens.remove(&plen);
                }
                Ok(())
            }
        }
    }

    /// User-space lookup: the value (every worker's, 8-byte aligned, for per-worker maps).
    /// LPM lookups match the longest prefix, as from a program.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        self.check_key(key)?;
        let slot = if self.spec.kind.is_array() {
            self.array_index(key)
        } else {
            self.find(&mut self.lock(), key)
        };
        Ok(slot.map(|s| self.read_slot(s)))
    }

    /// Number of entries (arrays: `max_entries`).
    pub fn len(&self) -> usize {
        match &*self.lock() {
            Index::Array => self.spec.max_entries as usize,
            Index::Hash { slots, .. } => slots.len(),
            Index::Lru { slots, .. } => slots.len(),
            Index::Lpm { slots, .. } => slots.len(),
        }
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry as (key, value), sorted by key bytes (LPM keys are `prefixlen ‖ data`).
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let idx = self.lock();
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = match &*idx {
            Index::Array => (0..self.spec.max_entries)
                .map(|i| (i.to_le_bytes().to_vec(), self.read_slot(i)))
                .collect(),
            Index::Hash { slots, .. } => slots
                .iter()
                .map(|(k, &s)| (k.to_vec(), self.read_slot(s)))
                .collect(),
            Index::Lru { slots, .. } => slots
                .iter()
                .map(|(k, &(s, _))| (k.to_vec(), self.read_slot(s)))
                .collect(),
            Index::Lpm { slots, .. } => slots
                .iter()
                .map(|((l, d), &s)| {
                    let mut k = l.to_le_bytes().to_vec();
                    k.extend_from_slice(d);
                    (k, self.read_slot(s))
                })
                .collect(),
        };
        if !self.spec.kind.is_array() {
            out.sort();
        }
        out
    }
}

/// The maps of one extension, in one region, in the order of the object's definitions.
pub struct MapSet {
    maps: Vec<Arc<Map>>,
    region: Arc<MapRegion>,
}

impl std::fmt::Debug for MapSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.maps.iter().map(|m| &m.spec.name))
            .finish()
    }
}

impl MapSet {
    /// Creates every map of `specs` (with initial values for entry 0 where given) in one
    /// region, for `workers` workers.
    pub fn create(
        specs: &[(MapSpec, Option<Vec<u8>>)],
        workers: usize,
    ) -> Result<MapSet, MapError> {
        let mut offsets = Vec::new();
        let mut total = 0usize;
        for (s, _) in specs {
            s.validate()?;
            offsets.push(total);
            let w = if s.kind.per_worker() {
                workers.max(1)
            } else {
                1
            };
            let b = s
                .arena_bytes(w)
                .ok_or_else(|| MapError::Invalid(format!("map {} too large", s.name)))?;
            total = total
                .checked_add(b)
                .filter(|&t| t <= MAX_REGION_BYTES)
                .ok_or_else(|| {
                    MapError::Invalid(format!(
                        "maps larger than {MAX_REGION_BYTES} bytes in total"
                    ))
                })?;
        }
        let region = MapRegion::new(total)?;
        let mut maps = Vec::new();
        for ((s, init), off) in specs.iter().zip(offsets) {
            let m = Map::new(s.clone(), workers, region.clone(), off)?;
            if let Some(init) = init {
                let n = init.len().min(s.value_size as usize);
                // SAFETY: entry 0 has value_size bytes; n is at most that.
                unsafe { std::ptr::copy_nonoverlapping(init.as_ptr(), m.value0_ptr(), n) };
            }
            maps.push(Arc::new(m));
        }
        Ok(MapSet { maps, region })
    }

    /// The maps, in definition order.
    pub fn maps(&self) -> &[Arc<Map>] {
        &self.maps
    }

    /// The map called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Map>> {
        self.maps.iter().find(|m| m.spec.name == name)
    }

    /// Address range of every value of every map in the set.
    pub fn region_range(&self) -> Range<u64> {
        self.region.range()
    }

    /// Whether `addr` is the address of one of these maps (a map handle a program passes).
    pub fn contains_handle(&self, addr: u64) -> bool {
        self.maps.iter().any(|m| Arc::as_ptr(m) as u64 == addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap as Model;

    fn spec(kind: MapKind, key: u32, val: u32, max: u32) -> MapSpec {
        MapSpec {
            name: "m".into(),
            kind,
            key_size: key,
            value_size: val,
            max_entries: max,
            flags: 0,
            readonly: false,
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Update(u8, u8, u64),
        Delete(u8),
        Lookup(u8),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        proptest::collection::vec(
            prop_oneof![
                (0u8..12, any::<u8>(), 0u64..4).prop_map(|(k, v, f)| Op::Update(k, v, f)),
                (0u8..12).prop_map(Op::Delete),
                (0u8..12).prop_map(Op::Lookup),
            ],
            0..80,
        )
    }

    fn key4(k: u8) -> [u8; 4] {
        u32::from(k).to_le_bytes()
    }

    proptest! {
        /// Hash maps behave as a bounded dictionary with the kernel's flag semantics.
        #[test]
        fn hash_matches_model(ops in ops()) {
            let m = Map::standalone(spec(MapKind::Hash, 4, 2, 6), 1).unwrap();
            let mut model: Model<u8, u8> = Model::new();
            for op in ops {
                match op {
                    Op::Update(k, v, f) => {
                        let got = m.update(&key4(k), &[v, !v], f);
                        let want = if f > 2 { Err(-22) }
                            else if model.contains_key(&k) { if f == 1 { Err(-17) } else { model.insert(k, v); Ok(()) } }
                            else if f == 2 { Err(-2) }
                            else if model.len() >= 6 { Err(-7) }
                            else { model.insert(k, v); Ok(()) };
                        prop_assert_eq!(got.map_err(|e| e.errno()), want);
                    }
                    Op::Delete(k) => {
                        let want = if model.remove(&k).is_some() { Ok(()) } else { Err(-2) };
                        prop_assert_eq!(m.delete(&key4(k)).map_err(|e| e.errno()), want);
                    }
                    Op::Lookup(k) => {
                        prop_assert_eq!(m.lookup(&key4(k)).unwrap(), model.get(&k).map(|&v| vec![v, !v]));
                        if let Some(&v) = model.get(&k) {
                            let p = m.lookup_ptr(&key4(k)).unwrap();
                            // SAFETY: the pointer is to a live 2-byte value.
                            prop_assert_eq!(unsafe { *p }, v);
                        }
                    }
                }
                prop_assert_eq!(m.len(), model.len());
            }
        }

        /// Arrays: every index below max_entries exists; NOEXIST always fails; no delete.
        #[test]
        fn array_matches_model(ops in ops()) {
            let m = Map::standalone(spec(MapKind::Array, 4, 1, 8), 1).unwrap();
            let mut model = [0u8; 8];
            for op in ops {
                match op {
                    Op::Update(k, v, f) => {
                        let got = m.update(&key4(k), &[v], f).map_err(|e| e.errno());
                        let want = if f > 2 { Err(-22) } else if k >= 8 { Err(-7) } else if f == 1 { Err(-17) }
                            else { model[k as usize] = v; Ok(()) };
                        prop_assert_eq!(got, want);
                    }
                    Op::Delete(k) => prop_assert_eq!(m.delete(&key4(k)).map_err(|e| e.errno()), Err(-22)),
                    Op::Lookup(k) => prop_assert_eq!(m.lookup(&key4(k)).unwrap(), (k < 8).then(|| vec![model[k as usize]])),
                }
            }
        }

        /// LRU: like a hash map, but a full map evicts the least recently used entry
        /// (lookups and updates count as use).
        #[test]
        fn lru_matches_model(ops in ops()) {
            let m = Map::standalone(spec(MapKind::LruHash, 4, 1, 4), 1).unwrap();
            let mut model: Vec<(u8, u8)> = Vec::new(); // most recent last
            for op in ops {
                match op {
                    Op::Update(k, v, f) => {
                        let pos = model.iter().position(|e| e.0 == k);
                        let want = if f > 2 { Err(-22) } else { match pos {
                            Some(_) if f == 1 => Err(-17),
                            Some(p) => { model.remove(p); model.push((k, v)); Ok(()) }
                            None if f == 2 => Err(-2),
                            None => { if model.len() == 4 { model.remove(0); } model.push((k, v)); Ok(()) }
                        }};
                        prop_assert_eq!(m.update(&key4(k), &[v], f).map_err(|e| e.errno()), want);
                    }
                    Op::Delete(k) => {
                        let want = match model.iter().position(|e| e.0 == k) { Some(p) => { model.remove(p); Ok(()) } None => Err(-2) };
                        prop_assert_eq!(m.delete(&key4(k)).map_err(|e| e.errno()), want);
                    }
                    Op::Lookup(k) => {
                        let want = model.iter().position(|e| e.0 == k).map(|p| { let e = model.remove(p); model.push(e); vec![e.1] });
                        prop_assert_eq!(m.lookup(&key4(k)).unwrap(), want);
                    }
                }
            }
        }

        /// LPM: lookup returns the value of the longest stored prefix covering the address.
        #[test]
        fn lpm_matches_model(
            prefixes in proptest::collection::vec((0u32..=16, any::<u16>(), any::<u8>()), 0..12),
            probes in proptest::collection::vec(any::<u16>(), 1..20),
            deletes in proptest::collection::vec(0usize..12, 0..4),
        ) {
            let m = Map::standalone(spec(MapKind::LpmTrie, 6, 1, 64), 1).unwrap();
            let mut model: Model<(u32, u16), u8> = Model::new();
            let mask = |a: u16, l: u32| if l == 0 { 0 } else { a & (u16::MAX << (16 - l)) };
            let key = |l: u32, a: u16| { let mut k = l.to_le_bytes().to_vec(); k.extend_from_slice(&a.to_be_bytes()); k };
            for &(l, a, v) in &prefixes {
                m.update(&key(l, a), &[v], 0).unwrap();
                model.insert((l, mask(a, l)), v);
            }
            for &d in &deletes {
                if let Some(&(l, a, _)) = prefixes.get(d) {
                    let want = if model.remove(&(l, mask(a, l))).is_some() { Ok(()) } else { Err(-2) };
                    prop_assert_eq!(m.delete(&key(l, a)).map_err(|e| e.errno()), want);
                }
            }
            for &p in &probes {
                let want = (0..=16u32).rev().find_map(|l| model.get(&(l, mask(p, l))).copied());
                prop_assert_eq!(m.lookup(&key(16, p)).unwrap(), want.map(|v| vec![v]));
                // A probe's own prefix length bounds the match.
                let want8 = (0..=8u32).rev().find_map(|l| model.get(&(l, mask(p, l))).copied());
                prop_assert_eq!(m.lookup(&key(8, p)).unwrap(), want8.map(|v| vec![v]));
            }
            prop_assert_eq!(m.len(), model.len());
        }
    }

    #[test]
    fn per_worker_values_are_separate() {
        let m = Map::standalone(spec(MapKind::PerWorkerArray, 4, 4, 2), 3).unwrap();
        m.update(&key4(1), &7u32.to_le_bytes(), 0).unwrap();
        set_current_worker(2);
        m.update_from_program(&key4(1), &9u32.to_le_bytes(), 0)
            .unwrap();
        // SAFETY: the pointer is to worker 2's live 4-byte value.
        assert_eq!(
            unsafe { *(m.lookup_ptr(&key4(1)).unwrap() as *const u32) },
            9
        );
        set_current_worker(0);
        let v = m.lookup(&key4(1)).unwrap().unwrap();
        assert_eq!(v.len(), 24);
        assert_eq!(&v[0..4], &7u32.to_le_bytes());
        assert_eq!(&v[8..12], &7u32.to_le_bytes());
        assert_eq!(&v[16..20], &9u32.to_le_bytes());

        let h = Map::standalone(spec(MapKind::PerWorkerHash, 4, 4, 2), 2).unwrap();
        set_current_worker(1);
        h.update_from_program(&key4(5), &3u32.to_le_bytes(), 0)
            .unwrap();
        set_current_worker(0);
        assert_eq!(
            h.lookup(&key4(5)).unwrap().unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn values_stay_put_while_the_entry_lives() {
        let m = Map::standalone(spec(MapKind::Hash, 4, 8, 100), 1).unwrap();
        m.update(&key4(1), &[1; 8], 0).unwrap();
        let p = m.lookup_ptr(&key4(1)).unwrap();
        for k in 2..90 {
            m.update(&key4(k), &[k; 8], 0).unwrap();
        }
        m.update(&key4(1), &[42; 8], update_flags::EXIST).unwrap();
        assert_eq!(m.lookup_ptr(&key4(1)).unwrap(), p);
        // SAFETY: p points to the live value of key 1.
        assert_eq!(unsafe { *p }, 42);
    }

    #[test]
    fn definitions_are_validated() {
        assert!(Map::standalone(spec(MapKind::Array, 8, 4, 4), 1).is_err());
        assert!(Map::standalone(spec(MapKind::Hash, 4, 4, 0), 1).is_err());
        assert!(Map::standalone(spec(MapKind::LpmTrie, 4, 4, 4), 1).is_err());
        let lpm = Map::standalone(spec(MapKind::LpmTrie, 8, 4, 4), 1).unwrap();
        let mut k = 33u32.to_le_bytes().to_vec();
        k.extend_from_slice(&[10, 0, 0, 1]);
        assert_eq!(lpm.update(&k, &[0; 4], 0).map_err(|e| e.errno()), Err(-22));
        let ro = MapSpec {
            readonly: true,
            ..spec(MapKind::Array, 4, 4, 1)
        };
        assert_eq!(
            Map::standalone(ro, 1).unwrap().update(&key4(0), &[0; 4], 0),
            Err(MapError::ReadOnly)
        );
    }
}
