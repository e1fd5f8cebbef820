//! The ovs-ofctl flow syntax: parsing the text operators type into `ovs-ofctl add-flow`,
//! `add-flows FILE`, `mod-flows` and `del-flows`, and printing rules back in the normalised
//! form `ovs-ofctl -O OpenFlow13 parse-flow` prints.
//!
//! # What "normalised" means
//!
//! A flow is parsed into a [`FlowMod`] whose [`Rule`] is exactly what an OpenFlow 1.3 switch
//! receives when ovs-ofctl sends the flow: the match has every bit outside its mask zeroed and
//! goes through the OXM encoding's VLAN rules (a `vlan_tci` PCP match survives only alongside
//! a VID match, as in Open vSwitch's `nx_put_raw`), and the actions are the ones OpenFlow 1.3
//! carries (`mod_dl_src` becomes a set-field of `eth_src`, `mod_vlan_vid` on an untagged
//! match becomes `push_vlan` plus a set-field, masked set-fields are split into one write per
//! contiguous run of mask bits). Printing such a rule with [`format_rule`] therefore gives the
//! text ovs-ofctl prints, and parsing that text again gives the same rule.
//!
//! # Where bpfswitch is stricter than ovs-ofctl
//!
//! ovs-ofctl silently drops a match field whose prerequisite is missing (`tp_dst=80` without
//! `tcp`); this parser rejects it and names the prerequisite ([`OfctlError::MissingPrerequisite`]).
//! Values too wide for their field are rejected instead of truncated. Actions that need a
//! protocol the match does not guarantee (`dec_ttl` without `ip`) are rejected as ovs-ofctl
//! rejects them for OpenFlow 1.3.
//!
//! ovs-ofctl also reads numbers and addresses with `sscanf`-style parsers that stop at the
//! first unexpected character and ignore the rest (`dl_src=00:11:22:33:44:5x`), and ignores
//! values after port-name actions (`normal:5`); bpfswitch rejects such text.
//!
//! One printing difference remains: a `load` that writes a whole field is printed by
//! ovs-ofctl as a load (`load:0x1->NXM_OF_ETH_DST[]`) and by bpfswitch as the equivalent
//! `set_field:00:00:00:00:00:01->eth_dst`, since the model has one set-field action.
//!
//! # Extensions (not known to ovs-ofctl)
//!
//! * match `bpf_filter=NAME` (alias `filter_prog=ID`, Oko's numeric program id): the rule also
//!   requires the named eBPF filter to return non-zero ([`Match::bpf_filters`]);
//! * action `bpf(NAME)` (alias `prog:ID`): run the named eBPF extension ([`Action::Bpf`]).
//!
//! [`Match::bpf_filters`]: crate::rule::Match::bpf_filters
//! [`Action::Bpf`]: crate::action::Action::Bpf

mod actions;
mod error;
mod format;
mod lex;
mod parse;
mod value;

pub use error::OfctlError;
pub use format::{format_actions, format_flow_mod, format_match, format_rule};
pub use parse::{parse_flow, parse_flow_mod, parse_flows_file};

use crate::action::{PortNo, OFPP_ANY};
use crate::rule::Rule;

/// Table id that stands for "every table" in `mod-flows` and `del-flows` (OpenFlow's `OFPTT_ALL`).
pub const TABLE_ALL: u8 = 255;

/// What a flow-table modification does (OpenFlow's `ofp_flow_mod_command`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FlowModCommand {
    /// `add-flow`: install the rule (replacing an identical match at the same priority).
    Add,
    /// `mod-flows`: change the actions of every rule the match covers.
    Modify,
    /// `mod-flows --strict`: change the actions of the rule with exactly this match and priority.
    ModifyStrict,
    /// `del-flows`: delete every rule the match covers.
    Delete,
    /// `del-flows --strict`: delete the rule with exactly this match and priority.
    DeleteStrict,
}

impl FlowModCommand {
    /// The name ovs-ofctl prints for the command (`ADD`, `MOD`, `MOD_STRICT`, `DEL`, `DEL_STRICT`).
    pub fn ofctl_name(self) -> &'static str {
        match self {
            FlowModCommand::Add => "ADD",
            FlowModCommand::Modify => "MOD",
            FlowModCommand::ModifyStrict => "MOD_STRICT",
            FlowModCommand::Delete => "DEL",
            FlowModCommand::DeleteStrict => "DEL_STRICT",
        }
    }

    /// Parses the verb that may start a line of a flow file (`add`, `modify`, `mod`,
    /// `modify_strict`, `delete`, `del`, `delete_strict`), as `ovs-ofctl --bundle add-flows` accepts.
    pub fn from_verb(verb: &str) -> Option<FlowModCommand> {
        Some(match verb {
            "add" => FlowModCommand::Add,
            "modify" | "mod" => FlowModCommand::Modify,
            "modify_strict" | "mod_strict" => FlowModCommand::ModifyStrict,
            "delete" | "del" => FlowModCommand::Delete,
            "delete_strict" | "del_strict" => FlowModCommand::DeleteStrict,
            _ => return None,
        })
    }

    /// Whether the command carries actions (and therefore requires `actions=`).
    pub fn has_actions(self) -> bool {
        matches!(
            self,
            FlowModCommand::Add | FlowModCommand::Modify | FlowModCommand::ModifyStrict
        )
    }
}

/// Flags of a flow modification (OpenFlow's `ofp_flow_mod_flags`), as ovs-ofctl spells them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct FlowModFlags {
    /// `send_flow_rem`: tell the controller when the rule expires or is deleted.
    pub send_flow_rem: bool,
    /// `check_overlap`: refuse to add a rule that overlaps one of the same priority.
    pub check_overlap: bool,
    /// `reset_counts`: reset the counters of a modified rule.
    pub reset_counts: bool,
    /// `no_packet_counts`: the switch need not count packets.
    pub no_packet_counts: bool,
    /// `no_byte_counts`: the switch need not count bytes.
    pub no_byte_counts: bool,
}

/// One parsed flow-table modification.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FlowMod {
    /// What to do.
    pub command: FlowModCommand,
    /// The rule: table ([`TABLE_ALL`] when a modify/delete names none), priority, match,
    /// timeouts and actions. For [`FlowModCommand::Add`] its cookie is the new rule's cookie.
    pub rule: Rule,
    /// Cookie that rules must have to be modified or deleted (under `cookie_mask`).
    pub cookie: u64,
    /// Significant bits of `cookie`; 0 means "any cookie" (always 0 for an add).
    pub cookie_mask: u64,
    /// For a modify: the cookie to give the modified rules (`cookie=V` without a mask).
    /// OpenFlow 1.3 cannot carry this, so ovs-ofctl does not print it for a modify; the
    /// switch may still apply it.
    pub new_cookie: Option<u64>,
    /// For a delete: only rules that output to this port ([`OFPP_ANY`] for any).
    pub out_port: PortNo,
    /// Flow-mod flags.
    pub flags: FlowModFlags,
    /// Eviction importance (`importance=N`, OpenFlow 1.4; parsed and kept, not printed for 1.3).
    pub importance: u16,
}

impl FlowMod {
    /// A flow mod for `rule` with no cookie filter, no out_port filter and no flags.
    pub fn new(command: FlowModCommand, rule: Rule) -> FlowMod {
        FlowMod {
            command,
            rule,
            cookie: 0,
            cookie_mask: 0,
            new_cookie: None,
            out_port: OFPP_ANY,
            flags: FlowModFlags::default(),
            importance: 0,
        }
    }
}

/// Parses an `add-flow` flow and returns its normalised text, exactly what
/// `ovs-ofctl -O OpenFlow13 parse-flow` prints after `ADD ` (plus the bpfswitch extensions).
/// This is what `bpfswitch parse-flow "<flow>"` prints.
pub fn normalize_flow(text: &str) -> Result<String, OfctlError> {
    let fm = parse_flow_mod(text, FlowModCommand::Add)?;
    Ok(format::flow_mod_body(&fm))
}
