//! Platform facts as data: program ABIs, context layouts and helper numbering.
//!
//! This is the one definition of the extension context shared by the verifier, the switch's
//! runtime and (by a test that checks them) the C headers in `extensions/`.

/// A program ABI: how the program is entered and what its context looks like.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Abi {
    /// Kernel XDP: r1 points to a `struct xdp_md`; returns an XDP action code.
    Xdp,
    /// uBPF/Oko: r1 is the packet pointer and r2 the packet length; returns a verdict.
    Ubpf,
}

/// One field of `struct xdp_md` and where the switch's runtime context keeps it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
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
    CtxField { name: "data", xdp_offset: 0, runtime_offset: 0, runtime_size: 8 },
    CtxField { name: "data_end", xdp_offset: 4, runtime_offset: 8, runtime_size: 8 },
    CtxField { name: "data_meta", xdp_offset: 8, runtime_offset: 16, runtime_size: 8 },
    CtxField { name: "ingress_ifindex", xdp_offset: 12, runtime_offset: 24, runtime_size: 4 },
    CtxField { name: "rx_queue_index", xdp_offset: 16, runtime_offset: 28, runtime_size: 4 },
    CtxField { name: "egress_ifindex", xdp_offset: 20, runtime_offset: 32, runtime_size: 4 },
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
