//! OpenFlow tables for bpfswitch: the ovs-ofctl flow syntax, the match and action model,
//! flow tables with a tuple-space-search classifier, and translation of a flow key through
//! the tables into datapath actions and a megaflow mask.
//!
//! **Architecture invariant:** this crate does no I/O and never sees packet bytes; it works
//! on [`flow::Flow`] keys and produces [`odp::OdpAction`]s.

pub mod action;
pub mod bridge;
pub mod classifier;
pub mod field;
pub mod flow;
pub mod mac_learning;
pub mod odp;
pub mod ofctl;
pub mod rule;
pub mod table;
pub mod xlate;

pub use action::{Action, PortNo};
pub use field::Field;
pub use flow::Flow;
pub use odp::{DropReason, OdpAction};
pub use rule::{Match, Rule, RuleStats};
