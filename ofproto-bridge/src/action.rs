//! OpenFlow actions and instructions as a rule carries them (Open vSwitch's "ofpacts").

use crate::field::Field;
use serde::{Deserialize, Serialize};

/// An OpenFlow port number (1..0xfeff are physical ports; the rest are reserved).
pub type PortNo = u32;

/// Reserved port: send back out the ingress port.
pub const OFPP_IN_PORT: PortNo = 0xffff_fff8;
/// Reserved port: submit to the flow table (only valid in packet-out).
pub const OFPP_TABLE: PortNo = 0xffff_fff9;
/// Reserved port: L2 switching (`normal`).
pub const OFPP_NORMAL: PortNo = 0xffff_fffa;
/// Reserved port: every port except the ingress port and those with flooding disabled.
pub const OFPP_FLOOD: PortNo = 0xffff_fffb;
/// Reserved port: every port except the ingress port.
pub const OFPP_ALL: PortNo = 0xffff_fffc;
/// Reserved port: the controller.
pub const OFPP_CONTROLLER: PortNo = 0xffff_fffd;
/// Reserved port: the local (bridge) port.
pub const OFPP_LOCAL: PortNo = 0xffff_fffe;
/// Reserved port: "no port" / wildcard.
pub const OFPP_ANY: PortNo = 0xffff_ffff;

/// Maximum table id (tables are 0..=254).
pub const MAX_TABLE_ID: u8 = 254;

/// One OpenFlow action or instruction.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Action {
    /// Output to a port (physical or one of the reserved `OFPP_*` ports).
    Output {
        /// Port number.
        port: PortNo,
        /// Bytes to send to the controller when `port` is `OFPP_CONTROLLER`; for any other
        /// port, 0 sends the whole packet and a non-zero value truncates it to that many
        /// bytes (ovs-ofctl's `output(port=N,max_len=M)`). The ofctl parser produces
        /// [`Action::Controller`] rather than an output to `OFPP_CONTROLLER`.
        max_len: u16,
    },
    /// Send to the controller (`controller[:max_len]`).
    Controller {
        /// Maximum bytes of the packet included.
        max_len: u16,
    },
    /// MAC-learning L2 switching.
    Normal,
    /// Flood to every port but the ingress port.
    Flood,
    /// Output to every port but the ingress port.
    All,
    /// Output back out the ingress port.
    InPort,
    /// Set a field to a value under a mask (`set_field:V/M->F`, `mod_dl_src:...`, ...).
    SetField {
        /// The field written.
        field: Field,
        /// The value written (only bits set in `mask` matter).
        value: u128,
        /// Which bits are written.
        mask: u128,
    },
    /// `mod_nw_tos:TOS` (Open vSwitch keeps this distinct from `set_field:->ip_dscp`).
    SetNwTos(u8),
    /// `mod_nw_ttl:TTL`.
    SetNwTtl(u8),
    /// `mod_vlan_vid:VID`: sets the VID, pushing a tag if there is none.
    SetVlanVid(u16),
    /// `mod_vlan_pcp:PCP`: sets the PCP, pushing a tag if there is none.
    SetVlanPcp(u8),
    /// `push_vlan:TPID`.
    PushVlan(u16),
    /// `pop_vlan` / `strip_vlan`.
    PopVlan,
    /// `dec_ttl` (packets whose TTL would reach zero go to the controller, or are dropped).
    DecTtl,
    /// `resubmit([port],[table])`: look up again in `table` as if received on `port`.
    Resubmit {
        /// Ingress port to pretend, or `None` for the packet's own.
        in_port: Option<PortNo>,
        /// Table to search, or `None` for the current one.
        table: Option<u8>,
    },
    /// `write_metadata:V[/M]` instruction.
    WriteMetadata {
        /// Value written.
        value: u64,
        /// Bits written.
        mask: u64,
    },
    /// `goto_table:N` instruction (always last).
    GotoTable(u8),
    /// Run an eBPF extension on the packet (`bpf(NAME)`, alias `prog:ID`).
    Bpf(String),
}
