//! Matches and rules: what a flow-table entry is.

use crate::action::Action;
use crate::flow::Flow;
use serde::{Deserialize, Serialize};

/// A match: a flow key and a mask; bits of `flow` outside `mask` are always zero.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Match {
    /// Values of the significant bits.
    pub flow: Flow,
    /// Significant bits.
    pub mask: Flow,
    /// eBPF filter extensions that must also return non-zero (`bpf_filter=NAME`), in order.
    pub bpf_filters: Vec<String>,
}

impl Match {
    /// The match that matches every packet.
    pub fn catchall() -> Match {
        Match::default()
    }

    /// Whether `flow` satisfies the header part of this match (filters are not consulted).
    pub fn matches(&self, flow: &Flow) -> bool {
        flow.words()
            .iter()
            .zip(self.mask.words())
            .zip(self.flow.words())
            .all(|((f, m), v)| f & m == *v)
    }
}

/// Everything in a flow-table entry except its counters.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Rule {
    /// Table id (0..=254).
    pub table: u8,
    /// Priority (higher wins); ovs-ofctl's default is 32768.
    pub priority: u16,
    /// Opaque controller cookie.
    pub cookie: u64,
    /// Seconds without a hit before the rule expires (0: never).
    pub idle_timeout: u16,
    /// Seconds after installation before the rule expires (0: never).
    pub hard_timeout: u16,
    /// The match.
    pub r#match: Match,
    /// Actions and instructions, in order; empty means drop.
    pub actions: Vec<Action>,
}

/// Counters of one rule.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct RuleStats {
    /// Packets that hit the rule.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
}

/// Default priority of a rule that names none.
pub const DEFAULT_PRIORITY: u16 = 32768;
