//! Datapath actions: what translation produces and the datapath executes on packet bytes.
//!
//! Every datapath action is fully specified for the megaflow it belongs to: values that
//! depend on the packet (a decremented TTL, say) were computed during translation, and the
//! fields they depend on were un-wildcarded in the megaflow mask.

use crate::action::PortNo;
use crate::field::Field;
use serde::{Deserialize, Serialize};

/// Why the datapath dropped a packet, for per-port drop counters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DropReason {
    /// A rule's action list was empty or said `drop`.
    Action,
    /// No rule matched (table miss with no table-miss rule).
    TableMiss,
    /// `dec_ttl` found a TTL of 0 or 1 and no controller was reachable.
    TtlExceeded,
    /// The packet was sent to the controller and no controller is connected.
    NoController,
    /// Output to the ingress port (not allowed without `in_port`).
    LoopBack,
    /// Output to a port that does not exist.
    NoSuchPort,
    /// An extension returned XDP_DROP.
    ExtDrop,
    /// An extension returned XDP_ABORTED or faulted.
    ExtAborted,
    /// A port hook extension dropped the packet before classification.
    PortHook,
    /// Translation exceeded the resubmit / recirculation depth limit.
    TooDeep,
    /// The frame could not be parsed far enough to be switched.
    Malformed,
}

/// One datapath action.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum OdpAction {
    /// Transmit a copy of the packet, as it is now, on a port.
    Output(PortNo),
    /// Send a copy to the controller (truncated to `max_len`).
    Userspace {
        /// Bytes of the packet included.
        max_len: u16,
    },
    /// Write a field in the packet's headers (fixing checksums), under a mask.
    SetMasked {
        /// Field written.
        field: Field,
        /// Value written.
        value: u128,
        /// Bits written.
        mask: u128,
    },
    /// Push an 802.1Q/802.1ad tag.
    PushVlan {
        /// Tag protocol identifier.
        tpid: u16,
        /// Tag control information (without the CFI "present" bit).
        tci: u16,
    },
    /// Pop the outermost VLAN tag.
    PopVlan,
    /// Run an extension (by its index in the switch's extension registry) on the packet.
    Bpf(u32),
    /// Re-parse the packet and look it up again with the given recirculation id.
    Recirc(u32),
    /// Drop the packet, with the reason counted. Always the last action; translation emits it
    /// exactly when nothing before it (in this pass or an earlier pass of a recirculated
    /// packet) outputs the packet, and only `Bpf` actions can precede it (an extension may
    /// itself transmit or drop the packet, which then never reaches the `Drop`).
    Drop(DropReason),
}
