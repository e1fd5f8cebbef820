//! Platform facts as data: program ABIs, context layouts and helper numbering.
//!
//! This is the one definition of the extension context shared by the verifier, the switch's
//! runtime and (by a test that checks them) the C headers in `extensions/`.

/// A program ABI: how the program is entered and what its context looks like.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub enum Abi {
    /// Kernel XDP: r1 points to a `struct xdp_md`; returns an XDP action code.
    Xdp,
    /// uBPF/Oko: r1 is the packet pointer and r2 the packet length; returns a verdict.
    Ubpf,
}

/// One field of `struct xdp_md` and where the switch's runtime context keeps it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
pub struct CtxField {
    /// Field name as in `linux/bpf.h`.
    pub name: &'static str,
    /// Offset in `struct xdp_md` (every field there is a `__u32`).
    pub xdp_offset: i16,
    /// Offset in the runtime context.
    pub runtime_offset: i16,
    /// Size in bytes of the runtime context field (8: a pointer, 4: a u32).
    pub runtime_size: u8,
}

/// `struct xdp_md` as programs see it, mapped onto the runtime context
/// ([`RUNTIME_CTX_SIZE`] bytes, 8-byte aligned). The loader rewrites each 32-bit context load
/// at `xdp_offset` into a load of `runtime_size` bytes at `runtime_offset`, as the kernel does
/// after verification.
pub const XDP_CTX_FIELDS: &[CtxField] = &[
    CtxField {
        name: "data",
        xdp_offset: 0,
        runtime_offset: 0,
        runtime_size: 8,
    },
    CtxField {
        name: "data_end",
        xdp_offset: 4,
        runtime_offset: 8,
        runtime_size: 8,
    },
    CtxField {
        name: "data_meta",
        xdp_offset: 8,
        runtime_offset: 16,
        runtime_size: 8,
    },
    CtxField {
        name: "ingress_ifindex",
        xdp_offset: 12,
        runtime_offset: 24,
        runtime_size: 4,
    },
    CtxField {
        name: "rx_queue_index",
        xdp_offset: 16,
        runtime_offset: 28,
        runtime_size: 4,
    },
    CtxField {
        name: "egress_ifindex",
        xdp_offset: 20,
        runtime_offset: 32,
        runtime_size: 4,
    },
];

/// Size of `struct xdp_md` as the program sees it.
pub const XDP_MD_SIZE: i16 = 24;
/// Offset in the runtime context of the switch-private pointer to per-run state (helpers
/// that take the context, such as `bpf_xdp_adjust_head`, reach their state through it).
pub const RUNTIME_CTX_PRIVATE_OFFSET: i16 = 40;
/// Size of the runtime context.
pub const RUNTIME_CTX_SIZE: usize = 48;

/// XDP return codes.
pub mod xdp_action {
    /// Error: drop and count as aborted.
    pub const ABORTED: u64 = 0;
    /// Drop the packet.
    pub const DROP: u64 = 1;
    /// Continue normal processing.
    pub const PASS: u64 = 2;
    /// Send back out the ingress port.
    pub const TX: u64 = 3;
    /// Send to the port chosen by `bpf_redirect`.
    pub const REDIRECT: u64 = 4;
}

/// Largest packet the runtime hands to a program; offsets and lengths derived from the packet
/// are bounded by it.
pub const MAX_PACKET_LEN: u64 = 0xffff;
/// Size of each function's stack frame in bytes.
pub const STACK_SIZE: i64 = 512;
/// Deepest bpf-to-bpf call chain accepted (frames, including the entry function).
pub const MAX_CALL_FRAMES: usize = 8;

/// Returns the `struct xdp_md` field at `xdp_offset`, if any.
pub fn xdp_ctx_field(xdp_offset: i16) -> Option<&'static CtxField> {
    XDP_CTX_FIELDS.iter().find(|f| f.xdp_offset == xdp_offset)
}

/// Kinds of maps a program may reference.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub enum MapType {
    /// `BPF_MAP_TYPE_HASH`.
    Hash,
    /// `BPF_MAP_TYPE_ARRAY` (also `.data`, `.rodata`, `.bss`).
    Array,
    /// `BPF_MAP_TYPE_PERCPU_HASH` (per worker in the switch).
    PerCpuHash,
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` (per worker in the switch).
    PerCpuArray,
    /// `BPF_MAP_TYPE_LRU_HASH`.
    LruHash,
    /// `BPF_MAP_TYPE_LPM_TRIE`.
    LpmTrie,
    /// Any other kernel map type, by number.
    Other(u32),
}

impl MapType {
    /// Maps the kernel's `enum bpf_map_type` number.
    pub fn from_kernel(n: u32) -> MapType {
        match n {
            1 => MapType::Hash,
            2 => MapType::Array,
            5 => MapType::PerCpuHash,
            6 => MapType::PerCpuArray,
            9 => MapType::LruHash,
            11 => MapType::LpmTrie,
            n => MapType::Other(n),
        }
    }
}

/// What the analysis needs to know about a map a program references.
#[derive(Clone, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub struct MapDescr {
    /// Map name (for reports).
    pub name: String,
    /// Map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// The program may not write the values (`.rodata`, or `BPF_F_RDONLY_PROG`).
    pub read_only: bool,
}

impl MapDescr {
    /// A writable map with the given shape.
    pub fn new(
        name: &str,
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> Self {
        MapDescr {
            name: name.to_string(),
            map_type,
            key_size,
            value_size,
            max_entries,
            read_only: false,
        }
    }
}

/// Type a helper expects for one argument.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
pub enum ArgType {
    /// Any initialised value.
    Anything,
    /// An initialised scalar (a pointer here would leak an address).
    Scalar,
    /// A map reference from `ld_imm64`.
    MapPtr,
    /// Readable memory of the key size of the map in argument 1.
    MapKey,
    /// Readable memory of the value size of the map in argument 1.
    MapValue,
    /// The program's context pointer, unmodified.
    Ctx,
    /// Readable memory whose size is the next argument.
    Mem,
    /// Like [`ArgType::Mem`] but may also be the constant zero (NULL) when the size is zero.
    MemOrNull,
    /// Size of the preceding memory argument: a bounded non-negative scalar.
    MemSize,
    /// A byte offset into the packet at which the helper reads and writes two bytes (the
    /// checksum field of `l3/l4_csum_replace`).
    PacketCsumOffset,
}

/// What a helper returns in r0.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
pub enum RetType {
    /// An integer with no known bounds.
    Integer,
    /// An integer in `0..=max`.
    Bounded(u64),
    /// A pointer to a value of the map in argument 1, or NULL.
    MapValueOrNull,
}

/// A helper's prototype and side effects, as data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
pub struct HelperProto {
    /// Helper number as the program calls it.
    pub id: i32,
    /// Name (kernel style, without the `bpf_` prefix).
    pub name: &'static str,
    /// Argument types for r1..r5; arguments past the slice's length are not read.
    pub args: &'static [ArgType],
    /// Result type.
    pub ret: RetType,
    /// Changes state that outlives the run (map writes), or observes time or randomness.
    pub stateful: bool,
    /// May change the packet's length or start (invalidates packet pointers).
    pub resizes: bool,
}

use ArgType as A;

const fn h(
    id: i32,
    name: &'static str,
    args: &'static [ArgType],
    ret: RetType,
    stateful: bool,
    resizes: bool,
) -> HelperProto {
    HelperProto {
        id,
        name,
        args,
        ret,
        stateful,
        resizes,
    }
}

/// Kernel helpers available to XDP programs, with the kernel's numbers.
pub const XDP_HELPERS: &[HelperProto] = &[
    h(
        1,
        "map_lookup_elem",
        &[A::MapPtr, A::MapKey],
        RetType::MapValueOrNull,
        false,
        false,
    ),
    h(
        2,
        "map_update_elem",
        &[A::MapPtr, A::MapKey, A::MapValue, A::Scalar],
        RetType::Integer,
        true,
        false,
    ),
    h(
        3,
        "map_delete_elem",
        &[A::MapPtr, A::MapKey],
        RetType::Integer,
        true,
        false,
    ),
    h(5, "ktime_get_ns", &[], RetType::Integer, true, false),
    h(
        6,
        "trace_printk",
        &[A::Mem, A::MemSize],
        RetType::Integer,
        false,
        false,
    ),
    h(
        7,
        "get_prandom_u32",
        &[],
        RetType::Bounded(u32::MAX as u64),
        true,
        false,
    ),
    h(
        10,
        "l3_csum_replace",
        &[A::Ctx, A::PacketCsumOffset, A::Scalar, A::Scalar, A::Scalar],
        RetType::Integer,
        false,
        false,
    ),
    h(
        11,
        "l4_csum_replace",
        &[A::Ctx, A::PacketCsumOffset, A::Scalar, A::Scalar, A::Scalar],
        RetType::Integer,
        false,
        false,
    ),
    h(
        23,
        "redirect",
        &[A::Scalar, A::Scalar],
        RetType::Bounded(4),
        false,
        false,
    ),
    h(
        28,
        "csum_diff",
        &[
            A::MemOrNull,
            A::MemSize,
            A::MemOrNull,
            A::MemSize,
            A::Scalar,
        ],
        RetType::Integer,
        false,
        false,
    ),
    h(
        44,
        "xdp_adjust_head",
        &[A::Ctx, A::Scalar],
        RetType::Integer,
        false,
        true,
    ),
    h(
        65,
        "xdp_adjust_tail",
        &[A::Ctx, A::Scalar],
        RetType::Integer,
        false,
        true,
    ),
];

/// Oko's uBPF helpers, with Oko's numbers.
pub const UBPF_HELPERS: &[HelperProto] = &[
    h(
        1,
        "map_lookup",
        &[A::MapPtr, A::MapKey],
        RetType::MapValueOrNull,
        false,
        false,
    ),
    h(
        2,
        "map_update",
        &[A::MapPtr, A::MapKey, A::MapValue],
        RetType::Integer,
        true,
        false,
    ),
    h(
        3,
        "map_delete",
        &[A::MapPtr, A::MapKey],
        RetType::Integer,
        true,
        false,
    ),
    h(
        4,
        "map_add",
        &[A::MapPtr, A::MapValue],
        RetType::Integer,
        true,
        false,
    ),
    h(5, "time_get_ns", &[], RetType::Integer, true, false),
    h(
        6,
        "hash",
        &[A::Mem, A::MemSize],
        RetType::Bounded(u32::MAX as u64),
        false,
        false,
    ),
    h(7, "printf", &[A::Anything], RetType::Integer, false, false),
];

/// Everything the analysis knows about the environment a program runs in.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Platform {
    /// Entry ABI.
    pub abi: Abi,
    /// Callable helpers.
    pub helpers: &'static [HelperProto],
    /// The program may write packet bytes.
    pub packet_writable: bool,
}

impl Platform {
    /// The kernel XDP environment as the switch provides it.
    pub fn xdp() -> Platform {
        Platform {
            abi: Abi::Xdp,
            helpers: XDP_HELPERS,
            packet_writable: true,
        }
    }

    /// Oko's uBPF environment: r1 = packet, r2 = length.
    pub fn ubpf() -> Platform {
        Platform {
            abi: Abi::Ubpf,
            helpers: UBPF_HELPERS,
            packet_writable: true,
        }
    }

    /// The default platform for an ABI.
    pub fn for_abi(abi: Abi) -> Platform {
        match abi {
            Abi::Xdp => Platform::xdp(),
            Abi::Ubpf => Platform::ubpf(),
        }
    }

    /// The prototype of helper `id`, if the platform has it.
    pub fn helper(&self, id: i32) -> Option<&'static HelperProto> {
        self.helpers.iter().find(|h| h.id == id)
    }
}
