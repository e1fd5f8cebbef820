//! The OpenFlow bridge: ports, flow tables, MAC learning, frozen translation states for
//! recirculation, and the version that caches revalidate against.
//!
//! **Version contract.** [`Bridge::version`] increases whenever something changes that can
//! alter the result of [`crate::xlate::translate`] for some flow: a flow-table change (add,
//! modify, delete, expiry), a port change, a MAC learning change (new entry, move, eviction,
//! expiry), the controller connection, or the reclassification policy. A refreshed MAC
//! entry does not bump it. A datapath that cached a translation made at version `v` may keep
//! using it while the version is still `v`; otherwise it must revalidate (translate the
//! cached flow key again and compare actions and mask) or drop the entry. The extension
//! registry lives outside the bridge, so whoever loads, replaces or unloads an extension calls
//! [`Bridge::bump_version`].
//!
//! **Frozen states.** A `bpf(NAME)` action that requires reclassification ends translation
//! with a recirculation: the rest of the translation is frozen here under a recirculation
//! id, and a later translation of a flow whose `recirc_id` is that id resumes it. Identical
//! states get the same id (they are interned), so re-translating a flow yields the same
//! actions and revalidation works. Ids stay valid until [`Bridge::retain_frozen`] drops them.

use crate::action::{Action, PortNo};
use crate::mac_learning::{Learned, MacLearning};
use crate::odp::DropReason;
use crate::ofctl::{FlowMod, FlowModCommand, TABLE_ALL};
use crate::rule::Rule;
use crate::table::{FlowTables, RemovedReason, RuleId, RuleMeta, RuleRef, RuleSelector};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Why a flow-table modification was refused (OpenFlow's flow-mod failed errors).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum FlowModError {
    /// An add named table 255 (`OFPTT_ALL`), which holds no rules.
    #[error("cannot add a rule to table 255 (all tables)")]
    BadTable,
    /// `check_overlap` was given and a rule of the same priority in the table overlaps.
    #[error("the rule overlaps {0:?}, which has the same priority (check_overlap)")]
    Overlap(RuleRef),
}

/// One bridge port as translation sees it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Port {
    /// OpenFlow port number.
    pub no: PortNo,
    /// Whether `flood` (and `normal` flooding) sends to this port (`no-flood` clears it).
    pub flood: bool,
}

/// When translation reclassifies after a `bpf(NAME)` action (issue 4's per-bridge policy).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub enum Reclassify {
    /// Continue past the action when the extension's write set (from the verifier, through
    /// [`crate::xlate::XlateHooks::bpf_write_set`]) misses every bit the rest of the
    /// translation consults; otherwise recirculate.
    #[default]
    Verifier,
    /// Always recirculate after an extension action (SoftFlow's default).
    Always,
    /// Never recirculate: later stages see the flow key as it was before the extension ran.
    /// Unsafe (a rewritten packet may be forwarded by the wrong rule); for benchmarks only.
    NeverUnsafe,
}

/// One level of a frozen translation: the actions still to run and the table they belong to.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct FrozenFrame {
    /// The table whose rule these actions came from (for `resubmit(,)` with no table).
    pub table: u8,
    /// The pipeline's ingress port for these actions (a `resubmit(N,)` may have changed it).
    pub in_port: PortNo,
    /// Remaining actions, run in order.
    pub actions: Vec<Action>,
}

/// The rest of a translation, frozen at a recirculation (Open vSwitch's `frozen_state`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct FrozenState {
    /// Levels to run one after the other, innermost (the frozen rule's own remainder) first.
    pub frames: Vec<FrozenFrame>,
    /// The metadata register at the time of freezing.
    pub metadata: u64,
    /// Number of recirculations this packet has already made.
    pub recirc_depth: u32,
    /// Whether an earlier pass already output the packet (then a pass that outputs nothing
    /// does not count a drop).
    pub output_seen: bool,
    /// The most recent drop reason met before freezing (reported if no pass outputs).
    pub drop_reason: Option<DropReason>,
}

/// The OpenFlow bridge. See the module documentation.
#[derive(Clone, Debug)]
pub struct Bridge {
    ports: BTreeMap<PortNo, Port>,
    tables: FlowTables,
    mac: MacLearning,
    version: u64,
    controller: bool,
    reclassify: Reclassify,
    frozen_by_id: HashMap<u32, Arc<FrozenState>>,
    frozen_ids: HashMap<Arc<FrozenState>, u32>,
    next_recirc_id: u32,
}

impl Default for Bridge {
    fn default() -> Self {
        Bridge::new()
    }
}

impl Bridge {
    /// A bridge with no ports, empty tables, default MAC learning, no controller.
    pub fn new() -> Bridge {
        Bridge {
            ports: BTreeMap::new(),
            tables: FlowTables::new(),
            mac: MacLearning::default(),
            version: 1,
            controller: false,
            reclassify: Reclassify::default(),
            frozen_by_id: HashMap::new(),
            frozen_ids: HashMap::new(),
            next_recirc_id: 1,
        }
    }

    /// The current version (see the module documentation).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Marks that something outside the bridge (the extension registry) changed.
    pub fn bump_version(&mut self) {
        self.version += 1;
    }

    // ---- Ports ----

    /// Adds (or updates) a port.
    pub fn add_port(&mut self, no: PortNo, flood: bool) {
        if self.ports.insert(no, Port { no, flood }) != Some(Port { no, flood }) {
            self.version += 1;
        }
    }

    /// Removes a port and forgets the MAC addresses learnt on it.
    pub fn remove_port(&mut self, no: PortNo) -> bool {
        let had = self.ports.remove(&no).is_some();
        let flushed = self.mac.flush_port(no);
        if had || flushed > 0 {
            self.version += 1;
        }
        had
    }

    /// One port.
    pub fn port(&self, no: PortNo) -> Option<&Port> {
        self.ports.get(&no)
    }

    /// Every port, by number.
    pub fn ports(&self) -> impl Iterator<Item = &Port> + '_ {
        self.ports.values()
    }

    // ---- Controller and policy ----

    /// Whether a controller is connected (`controller` actions then become upcalls to it;
    /// otherwise they count as drops with reason `NoController`).
    pub fn controller_connected(&self) -> bool {
        self.controller
    }

    /// Connects or disconnects the controller.
    pub fn set_controller_connected(&mut self, connected: bool) {
        if self.controller != connected {
            self.controller = connected;
            self.version += 1;
        }
    }

    /// The reclassification policy after extension actions.
    pub fn reclassify(&self) -> Reclassify {
        self.reclassify
    }

    /// Sets the reclassification policy.
    pub fn set_reclassify(&mut self, policy: Reclassify) {
        if self.reclassify != policy {
            self.reclassify = policy;
            self.version += 1;
        }
    }

    // ---- Flow tables ----

    /// The flow tables (read-only; changes go through the bridge so the version follows).
    pub fn tables(&self) -> &FlowTables {
        &self.tables
    }

    /// Installs a rule (`add-flow`); see [`FlowTables::add`].
    pub fn add_flow(&mut self, rule: Rule, now_ns: u64) -> Option<(RuleRef, Option<RuleRef>)> {
        let r = self.tables.add(rule, now_ns);
        if r.is_some() {
            self.version += 1;
        }
        r
    }

    /// Changes the actions of the selected rules (`mod-flows`); see [`FlowTables::modify`].
    pub fn modify_flows(
        &mut self,
        sel: &RuleSelector,
        actions: &[Action],
        new_cookie: Option<u64>,
        reset_counts: bool,
    ) -> Vec<RuleRef> {
        let r = self.tables.modify(sel, actions, new_cookie, reset_counts);
        if !r.is_empty() {
            self.version += 1;
        }
        r
    }

    /// Deletes the selected rules (`del-flows`); see [`FlowTables::delete`].
    pub fn delete_flows(&mut self, sel: &RuleSelector) -> Vec<(RuleRef, Arc<Rule>, RuleMeta)> {
        let r = self.tables.delete(sel);
        if !r.is_empty() {
            self.version += 1;
        }
        r
    }

    /// Expires rules past their timeouts and MAC entries past their age at `now_ns`.
    pub fn expire(&mut self, now_ns: u64) -> Vec<(RuleRef, RemovedReason)> {
        let r = self.tables.expire(now_ns);
        let macs = self.mac.expire(now_ns);
        if !r.is_empty() || macs > 0 {
            self.version += 1;
        }
        r
    }

    /// Credits a rule with packets and bytes seen at `now_ns` (false if it no longer exists).
    /// Statistics never change translations, so the version does not move.
    pub fn credit(&mut self, id: RuleId, packets: u64, bytes: u64, now_ns: u64) -> bool {
        self.tables.credit(id, packets, bytes, now_ns)
    }

    /// Applies one flow-table modification as parsed from ovs-ofctl syntax
    /// ([`crate::ofctl::parse_flows_file`]) at `now_ns`; returns the rules added, modified or
    /// deleted (for an add, the new rule first, then the replaced one if any).
    pub fn apply_flow_mod(
        &mut self,
        fm: &FlowMod,
        now_ns: u64,
    ) -> Result<Vec<RuleRef>, FlowModError> {
        let table = (fm.rule.table != TABLE_ALL).then_some(fm.rule.table);
        let select = || RuleSelector {
            table,
            r#match: fm.rule.r#match.clone(),
            strict_priority: None,
            cookie: fm.cookie,
            cookie_mask: fm.cookie_mask,
            out_port: fm.out_port,
        };
        let strict = || RuleSelector {
            strict_priority: Some(fm.rule.priority),
            ..select()
        };
        match fm.command {
            FlowModCommand::Add => {
                if table.is_none() {
                    return Err(FlowModError::BadTable);
                }
                if fm.flags.check_overlap {
                    let m = &fm.rule.r#match;
                    let t = self.tables.table(fm.rule.table);
                    if let Some(e) = t.iter().find(|e| {
                        e.rule.priority == fm.rule.priority
                            && e.rule.r#match != *m
                            && overlaps(&e.rule.r#match, m)
                    }) {
                        return Err(FlowModError::Overlap(RuleRef {
                            table: fm.rule.table,
                            id: e.id,
                        }));
                    }
                }
                let (new, old) = self
                    .add_flow(fm.rule.clone(), now_ns)
                    .ok_or(FlowModError::BadTable)?;
                Ok(std::iter::once(new).chain(old).collect())
            }
            FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
                let sel = if fm.command == FlowModCommand::Modify {
                    select()
                } else {
                    strict()
                };
                Ok(self.modify_flows(&sel, &fm.rule.actions, fm.new_cookie, fm.flags.reset_counts))
            }
            FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
                let sel = if fm.command == FlowModCommand::Delete {
                    select()
                } else {
                    strict()
                };
                Ok(self
                    .delete_flows(&sel)
                    .into_iter()
                    .map(|(r, _, _)| r)
                    .collect())
            }
        }
    }

    /// Credits every rule a translation hit (its [`crate::xlate::Xlation::rules`]) with the
    /// packets and bytes of a cache entry; rules deleted since are skipped.
    pub fn credit_rules(&mut self, rules: &[RuleRef], packets: u64, bytes: u64, now_ns: u64) {
        for r in rules {
            self.tables.credit(r.id, packets, bytes, now_ns);
        }
    }

    // ---- MAC learning ----

    /// The MAC learning table.
    pub fn mac_learning(&self) -> &MacLearning {
        &self.mac
    }

    /// Learns that `mac` on `vlan` is on `port`; bumps the version when that changes anything.
    pub fn learn_mac(&mut self, vlan: u16, mac: [u8; 6], port: PortNo, now_ns: u64) -> Learned {
        let l = self.mac.learn(vlan, mac, port, now_ns);
        if l.changed() {
            self.version += 1;
        }
        l
    }

    /// Sets the MAC table's capacity and entry lifetime (entries beyond capacity go at the
    /// next learning).
    pub fn configure_mac_learning(&mut self, capacity: usize, idle_ns: u64) {
        self.mac.capacity = capacity.max(1);
        self.mac.idle_ns = idle_ns;
    }

    // ---- Frozen states ----

    /// The recirculation id of `state`, interning it if new.
    pub fn freeze(&mut self, state: FrozenState) -> u32 {
        if let Some(&id) = self.frozen_ids.get(&state) {
            return id;
        }
        let mut id = self.next_recirc_id;
        while id == 0 || self.frozen_by_id.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_recirc_id = id.wrapping_add(1);
        let state = Arc::new(state);
        self.frozen_by_id.insert(id, state.clone());
        self.frozen_ids.insert(state, id);
        id
    }

    /// The frozen state of a recirculation id.
    pub fn frozen(&self, recirc_id: u32) -> Option<&Arc<FrozenState>> {
        self.frozen_by_id.get(&recirc_id)
    }

    /// Number of frozen states held.
    pub fn frozen_len(&self) -> usize {
        self.frozen_by_id.len()
    }

    /// Keeps only the frozen states whose ids `keep` accepts (the datapath calls this with the
    /// ids its cached flows still use). Dropping a state that is still referenced makes those
    /// packets miss (they are dropped as a table miss).
    pub fn retain_frozen(&mut self, mut keep: impl FnMut(u32) -> bool) {
        self.frozen_by_id.retain(|id, _| keep(*id));
        let by_id = &self.frozen_by_id;
        self.frozen_ids.retain(|_, id| by_id.contains_key(id));
    }
}

/// Whether some packet matches both `a` and `b` (their header parts; filters aside).
pub fn overlaps(a: &crate::rule::Match, b: &crate::rule::Match) -> bool {
    let both = a.mask.masked(&b.mask);
    a.flow.masked(&both) == b.flow.masked(&both)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Match;

    fn drop_rule() -> Rule {
        Rule {
            table: 0,
            priority: 1,
            cookie: 0,
            idle_timeout: 1,
            hard_timeout: 0,
            r#match: Match::catchall(),
            actions: vec![],
        }
    }

    #[test]
    fn version_follows_changes_that_matter() {
        let mut b = Bridge::new();
        let v0 = b.version();
        b.add_port(1, true);
        assert!(b.version() > v0);
        let v = b.version();
        b.add_port(1, true);
        assert_eq!(
            b.version(),
            v,
            "re-adding an identical port changes nothing"
        );
        let (r, _) = b.add_flow(drop_rule(), 0).unwrap();
        let v = b.version();
        b.credit(r.id, 1, 60, 0);
        assert_eq!(b.version(), v, "statistics do not change translations");
        let sel = RuleSelector::loose(None, Match::catchall());
        assert!(b
            .modify_flows(
                &RuleSelector {
                    out_port: 7,
                    ..sel.clone()
                },
                &[],
                None,
                false
            )
            .is_empty());
        assert_eq!(
            b.version(),
            v,
            "a modify that selects nothing changes nothing"
        );
        b.learn_mac(0, [2, 0, 0, 0, 0, 1], 1, 0);
        let v = b.version();
        assert!(v > 0);
        b.learn_mac(0, [2, 0, 0, 0, 0, 1], 1, 5);
        assert_eq!(b.version(), v, "a refresh changes nothing");
        b.learn_mac(0, [2, 0, 0, 0, 0, 1], 2, 5);
        assert!(b.version() > v, "a move does");
        let v = b.version();
        assert_eq!(b.expire(1_000_000_000).len(), 1);
        assert!(b.version() > v);
        let v = b.version();
        assert_eq!(b.expire(2_000_000_000).len(), 0);
        assert_eq!(b.version(), v);
        b.remove_port(2);
        assert!(b.version() > v);
        assert_eq!(
            b.mac_learning().len(),
            0,
            "addresses on a removed port are forgotten"
        );
    }

    #[test]
    fn flow_mods_apply_with_openflow_semantics() {
        use crate::field::Field;
        let mut b = Bridge::new();
        let mut r = drop_rule();
        r.idle_timeout = 0;
        Field::InPort.set(&mut r.r#match.flow, 1);
        Field::InPort.set(&mut r.r#match.mask, 0xffff_ffff);
        let added = b
            .apply_flow_mod(&FlowMod::new(FlowModCommand::Add, r.clone()), 0)
            .unwrap();
        assert_eq!(added.len(), 1);
        // check_overlap: a catch-all at the same priority overlaps; at another, it does not.
        let mut fm = FlowMod::new(FlowModCommand::Add, drop_rule());
        fm.flags.check_overlap = true;
        assert_eq!(
            b.apply_flow_mod(&fm, 0),
            Err(FlowModError::Overlap(added[0]))
        );
        fm.rule.priority = 2;
        assert!(b.apply_flow_mod(&fm, 0).is_ok());
        // Replacing add returns the old rule second.
        let again = b
            .apply_flow_mod(&FlowMod::new(FlowModCommand::Add, r.clone()), 0)
            .unwrap();
        assert_eq!(again[1], added[0]);
        // mod-flows with table 255 and a catch-all match modifies both.
        let mut m = r.clone();
        m.table = TABLE_ALL;
        m.r#match = Match::catchall();
        m.actions = vec![Action::Normal];
        assert_eq!(
            b.apply_flow_mod(&FlowMod::new(FlowModCommand::Modify, m.clone()), 0)
                .unwrap()
                .len(),
            2
        );
        // del-flows --strict needs the exact match and priority.
        m.priority = 1;
        assert!(b
            .apply_flow_mod(&FlowMod::new(FlowModCommand::DeleteStrict, m.clone()), 0)
            .unwrap()
            .is_empty());
        m.priority = 2;
        assert_eq!(
            b.apply_flow_mod(&FlowMod::new(FlowModCommand::DeleteStrict, m.clone()), 0)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            b.apply_flow_mod(&FlowMod::new(FlowModCommand::Delete, m), 0)
                .unwrap()
                .len(),
            1
        );
        assert!(b.tables().is_empty());
        let mut bad = r;
        bad.table = TABLE_ALL;
        assert_eq!(
            b.apply_flow_mod(&FlowMod::new(FlowModCommand::Add, bad), 0),
            Err(FlowModError::BadTable)
        );
    }

    #[test]
    fn frozen_states_are_interned() {
        let mut b = Bridge::new();
        let s = FrozenState {
            frames: vec![FrozenFrame {
                table: 3,
                in_port: 1,
                actions: vec![Action::Normal],
            }],
            metadata: 7,
            recirc_depth: 1,
            output_seen: false,
            drop_reason: None,
        };
        let a = b.freeze(s.clone());
        assert_ne!(a, 0);
        assert_eq!(b.freeze(s.clone()), a);
        let c = b.freeze(FrozenState {
            metadata: 8,
            ..s.clone()
        });
        assert_ne!(c, a);
        assert_eq!(b.frozen(a).unwrap().metadata, 7);
        b.retain_frozen(|id| id == c);
        assert!(b.frozen(a).is_none());
        assert_eq!(b.frozen_len(), 1);
        assert_ne!(b.freeze(s), c);
    }
}
