//! OpenFlow flow tables 0..=254: rules with stable ids, counters, timeouts, and the
//! flow-mod operations (add, modify, delete, strict and non-strict) with OpenFlow's semantics.
//!
//! Time is always passed in (nanoseconds since an arbitrary epoch chosen by the caller); this
//! module never reads a clock, so replays are deterministic.

use crate::action::{
    Action, PortNo, MAX_TABLE_ID, OFPP_ALL, OFPP_ANY, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT,
    OFPP_NORMAL,
};
pub use crate::classifier::RuleId;
use crate::classifier::{Classifier, Entry};
use crate::flow::Flow;
use crate::rule::{Match, Rule, RuleStats};
use std::collections::HashMap;
use std::sync::Arc;

/// Number of flow tables.
pub const N_TABLES: usize = MAX_TABLE_ID as usize + 1;

/// Nanoseconds per second (timeouts are in seconds, times in nanoseconds).
const NS_PER_SEC: u64 = 1_000_000_000;

/// Where a rule lives: its table and its identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct RuleRef {
    /// Table id.
    pub table: u8,
    /// Rule identity.
    pub id: RuleId,
}

/// Bookkeeping of one installed rule besides the rule itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RuleMeta {
    /// The table the rule is in.
    pub table: u8,
    /// Packet and byte counters.
    pub stats: RuleStats,
    /// When the rule was installed (for `hard_timeout` and `duration`).
    pub created_ns: u64,
    /// When the rule last had a hit (installation time if never).
    pub last_used_ns: u64,
}

/// Why a rule left its table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum RemovedReason {
    /// `idle_timeout` passed without a hit.
    IdleTimeout,
    /// `hard_timeout` passed since installation.
    HardTimeout,
    /// A delete flow-mod selected it.
    Delete,
    /// An add with the same match and priority replaced it.
    Replaced,
}

/// Which rules a modify or delete applies to (the selection part of an OpenFlow flow-mod).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RuleSelector {
    /// One table, or `None` for every table (`OFPTT_ALL`).
    pub table: Option<u8>,
    /// The match. Non-strict: selects every rule whose match is at least as specific as this
    /// one and agrees with it (and carries at least its filters). Strict: the identical match.
    pub r#match: Match,
    /// `Some(priority)` for a strict selection (match and priority must both be identical).
    pub strict_priority: Option<u16>,
    /// Cookie that selected rules must have under `cookie_mask`.
    pub cookie: u64,
    /// Significant bits of `cookie` (0: any cookie).
    pub cookie_mask: u64,
    /// Only rules with an action that outputs to this port ([`OFPP_ANY`]: any rule).
    pub out_port: PortNo,
}

impl RuleSelector {
    /// A non-strict selection of every rule in `table` (or every table) covered by `m`.
    pub fn loose(table: Option<u8>, m: Match) -> RuleSelector {
        RuleSelector {
            table,
            r#match: m,
            strict_priority: None,
            cookie: 0,
            cookie_mask: 0,
            out_port: OFPP_ANY,
        }
    }

    /// A strict selection of the rule with exactly this match and priority.
    pub fn strict(table: Option<u8>, m: Match, priority: u16) -> RuleSelector {
        RuleSelector {
            strict_priority: Some(priority),
            ..RuleSelector::loose(table, m)
        }
    }

    /// Whether `rule` is selected.
    pub fn selects(&self, rule: &Rule) -> bool {
        if self.table.is_some_and(|t| t != rule.table) {
            return false;
        }
        if (rule.cookie ^ self.cookie) & self.cookie_mask != 0 {
            return false;
        }
        if self.out_port != OFPP_ANY && !outputs_to(&rule.actions, self.out_port) {
            return false;
        }
        let m = &self.r#match;
        match self.strict_priority {
            Some(p) => rule.priority == p && rule.r#match == *m,
            None => {
                let rm = &rule.r#match;
                m.mask.is_subset_of(&rm.mask)
                    && rm.flow.masked(&m.mask) == m.flow.masked(&m.mask)
                    && m.bpf_filters.iter().all(|f| rm.bpf_filters.contains(f))
            }
        }
    }
}

/// Whether an action list outputs to `port` (OpenFlow's `out_port` filter).
pub fn outputs_to(actions: &[Action], port: PortNo) -> bool {
    actions.iter().any(|a| match a {
        Action::Output { port: p, .. } => *p == port,
        Action::Controller { .. } => port == OFPP_CONTROLLER,
        Action::Normal => port == OFPP_NORMAL,
        Action::Flood => port == OFPP_FLOOD,
        Action::All => port == OFPP_ALL,
        Action::InPort => port == OFPP_IN_PORT,
        _ => false,
    })
}

/// The 255 flow tables of a bridge. See the module documentation.
#[derive(Clone, Debug)]
pub struct FlowTables {
    tables: Vec<Classifier>,
    meta: HashMap<RuleId, RuleMeta>,
    next_id: u64,
}

impl Default for FlowTables {
    fn default() -> Self {
        FlowTables::new()
    }
}

impl FlowTables {
    /// 255 empty tables.
    pub fn new() -> FlowTables {
        FlowTables {
            tables: vec![Classifier::new(); N_TABLES],
            meta: HashMap::new(),
            next_id: 0,
        }
    }

    /// Total number of rules.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// Whether every table is empty.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// One table's classifier. Panics if `table` is 255.
    pub fn table(&self, table: u8) -> &Classifier {
        &self.tables[table as usize]
    }

    /// Installs `rule` in `rule.table` at time `now_ns`. A rule with an identical match and
    /// priority in that table is replaced (its counters are not carried over, as OpenFlow's
    /// add says); the replaced rule, if any, is returned second. A rule naming table 255
    /// (`OFPTT_ALL`) cannot be installed and gives `None`.
    pub fn add(&mut self, rule: Rule, now_ns: u64) -> Option<(RuleRef, Option<RuleRef>)> {
        if rule.table > MAX_TABLE_ID {
            return None;
        }
        let t = rule.table;
        let replaced = self.tables[t as usize]
            .find_exact(&rule.r#match, rule.priority)
            .map(|e| e.id);
        if let Some(old) = replaced {
            self.tables[t as usize].remove(old);
            self.meta.remove(&old);
        }
        self.next_id += 1;
        let id = RuleId(self.next_id);
        self.tables[t as usize].insert(id, Arc::new(rule));
        self.meta.insert(
            id,
            RuleMeta {
                table: t,
                stats: RuleStats::default(),
                created_ns: now_ns,
                last_used_ns: now_ns,
            },
        );
        Some((
            RuleRef { table: t, id },
            replaced.map(|id| RuleRef { table: t, id }),
        ))
    }

    fn selected(&self, sel: &RuleSelector) -> Vec<RuleRef> {
        let tables: Vec<u8> = match sel.table {
            Some(t) if t <= MAX_TABLE_ID => vec![t],
            Some(_) | None => (0..=MAX_TABLE_ID).collect(),
        };
        let mut out = Vec::new();
        for t in tables {
            let cls = &self.tables[t as usize];
            if cls.is_empty() {
                continue;
            }
            if let Some(p) = sel.strict_priority {
                if let Some(e) = cls.find_exact(&sel.r#match, p) {
                    if sel.selects(&e.rule) {
                        out.push(RuleRef { table: t, id: e.id });
                    }
                }
            } else {
                out.extend(
                    cls.iter()
                        .filter(|e| sel.selects(&e.rule))
                        .map(|e| RuleRef { table: t, id: e.id }),
                );
            }
        }
        out.sort();
        out
    }

    /// Replaces the actions of every selected rule (OpenFlow 1.1+ modify: nothing is added when
    /// no rule is selected); `new_cookie` also changes their cookie and `reset_counts` zeroes
    /// their counters. Returns the rules modified.
    pub fn modify(
        &mut self,
        sel: &RuleSelector,
        actions: &[Action],
        new_cookie: Option<u64>,
        reset_counts: bool,
    ) -> Vec<RuleRef> {
        let chosen = self.selected(sel);
        for r in &chosen {
            let cls = &mut self.tables[r.table as usize];
            let Some(e) = cls.get(r.id) else { continue };
            let mut rule = Rule::clone(&e.rule);
            rule.actions = actions.to_vec();
            if let Some(c) = new_cookie {
                rule.cookie = c;
            }
            cls.replace(r.id, Arc::new(rule));
            if reset_counts {
                if let Some(m) = self.meta.get_mut(&r.id) {
                    m.stats = RuleStats::default();
                }
            }
        }
        chosen
    }

    /// Deletes every selected rule, returning them with their final counters.
    pub fn delete(&mut self, sel: &RuleSelector) -> Vec<(RuleRef, Arc<Rule>, RuleMeta)> {
        self.selected(sel)
            .into_iter()
            .filter_map(|r| self.remove(r))
            .collect()
    }

    /// Removes one rule by reference.
    pub fn remove(&mut self, r: RuleRef) -> Option<(RuleRef, Arc<Rule>, RuleMeta)> {
        let rule = self.tables.get_mut(r.table as usize)?.remove(r.id)?;
        let meta = self.meta.remove(&r.id)?;
        Some((r, rule, meta))
    }

    /// Removes every rule whose idle or hard timeout has passed at `now_ns`.
    pub fn expire(&mut self, now_ns: u64) -> Vec<(RuleRef, RemovedReason)> {
        let mut gone = Vec::new();
        for (t, cls) in self.tables.iter().enumerate() {
            for e in cls.iter() {
                let r = &e.rule;
                if r.idle_timeout == 0 && r.hard_timeout == 0 {
                    continue;
                }
                let Some(m) = self.meta.get(&e.id) else {
                    continue;
                };
                let reason = if r.hard_timeout != 0
                    && now_ns.saturating_sub(m.created_ns) >= r.hard_timeout as u64 * NS_PER_SEC
                {
                    RemovedReason::HardTimeout
                } else if r.idle_timeout != 0
                    && now_ns.saturating_sub(m.last_used_ns) >= r.idle_timeout as u64 * NS_PER_SEC
                {
                    RemovedReason::IdleTimeout
                } else {
                    continue;
                };
                gone.push((
                    RuleRef {
                        table: t as u8,
                        id: e.id,
                    },
                    reason,
                ));
            }
        }
        gone.sort();
        for (r, _) in &gone {
            self.remove(*r);
        }
        gone
    }

    /// Adds `packets` and `bytes` to a rule's counters and marks it used at `now_ns`.
    /// Returns false when the rule no longer exists (its stats are then lost, as in OpenFlow).
    pub fn credit(&mut self, id: RuleId, packets: u64, bytes: u64, now_ns: u64) -> bool {
        match self.meta.get_mut(&id) {
            Some(m) => {
                m.stats.packets += packets;
                m.stats.bytes += bytes;
                if packets > 0 {
                    m.last_used_ns = m.last_used_ns.max(now_ns);
                }
                true
            }
            None => false,
        }
    }

    /// A rule's bookkeeping.
    pub fn meta(&self, id: RuleId) -> Option<&RuleMeta> {
        self.meta.get(&id)
    }

    /// A rule by identity.
    pub fn get(&self, id: RuleId) -> Option<&Arc<Rule>> {
        let m = self.meta.get(&id)?;
        self.tables[m.table as usize].get(id).map(|e| &e.rule)
    }

    /// Looks `flow` up in one table (see [`Classifier::lookup_entry`]).
    pub fn lookup(
        &self,
        table: u8,
        flow: &Flow,
        wc: &mut Flow,
        filter: &mut dyn FnMut(&Rule) -> bool,
    ) -> Option<&Entry> {
        self.tables
            .get(table as usize)?
            .lookup_entry(flow, wc, filter)
    }

    /// Every rule, ordered by table, then priority (highest first), then age (newest first):
    /// the order `ovs-ofctl dump-flows` users expect and the order lookups prefer.
    pub fn rules(&self) -> Vec<(RuleRef, Arc<Rule>, RuleMeta)> {
        let mut out = Vec::with_capacity(self.meta.len());
        for (t, cls) in self.tables.iter().enumerate() {
            let mut es: Vec<&Entry> = cls.iter().collect();
            es.sort_by_key(|e| std::cmp::Reverse(e.rank));
            for e in es {
                if let Some(m) = self.meta.get(&e.id) {
                    out.push((
                        RuleRef {
                            table: t as u8,
                            id: e.id,
                        },
                        e.rule.clone(),
                        *m,
                    ));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::Field;

    fn rule(table: u8, priority: u16, in_port: Option<u32>, actions: Vec<Action>) -> Rule {
        let mut m = Match::default();
        if let Some(p) = in_port {
            Field::InPort.set(&mut m.flow, p as u128);
            Field::InPort.set(&mut m.mask, u32::MAX as u128);
        }
        Rule {
            table,
            priority,
            cookie: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            r#match: m,
            actions,
        }
    }

    fn out(p: u32) -> Action {
        Action::Output {
            port: p,
            max_len: 0,
        }
    }

    fn hit(t: &FlowTables, table: u8, in_port: u32) -> Option<RuleId> {
        let f = Flow {
            in_port,
            ..Flow::default()
        };
        t.lookup(table, &f, &mut Flow::default(), &mut |_| true)
            .map(|e| e.id)
    }

    #[test]
    fn add_replaces_identical_match_and_priority() {
        let mut t = FlowTables::new();
        let (a, none) = t.add(rule(0, 10, Some(1), vec![out(2)]), 0).unwrap();
        assert!(none.is_none());
        t.credit(a.id, 3, 300, 5);
        let (b, replaced) = t.add(rule(0, 10, Some(1), vec![out(3)]), 7).unwrap();
        assert_eq!(replaced, Some(a));
        assert_ne!(a.id, b.id, "ids are never reused");
        assert_eq!(t.len(), 1);
        assert_eq!(t.meta(b.id).unwrap().stats, RuleStats::default());
        // Different priority: a second rule.
        t.add(rule(0, 11, Some(1), vec![]), 7).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t.add(rule(255, 1, None, vec![]), 0).is_none());
    }

    #[test]
    fn modify_strict_and_loose() {
        let mut t = FlowTables::new();
        let (a, _) = t.add(rule(0, 10, Some(1), vec![out(2)]), 0).unwrap();
        let (b, _) = t.add(rule(0, 20, Some(1), vec![out(2)]), 0).unwrap();
        let (c, _) = t.add(rule(1, 20, None, vec![out(2)]), 0).unwrap();
        t.credit(a.id, 1, 64, 1);
        let strict = RuleSelector::strict(Some(0), rule(0, 10, Some(1), vec![]).r#match, 10);
        assert_eq!(t.modify(&strict, &[out(9)], None, false), vec![a]);
        assert_eq!(t.get(a.id).unwrap().actions, vec![out(9)]);
        assert_eq!(t.get(b.id).unwrap().actions, vec![out(2)]);
        assert_eq!(
            t.meta(a.id).unwrap().stats.packets,
            1,
            "modify keeps counters"
        );
        // Loose catch-all over every table selects everything.
        let all = RuleSelector::loose(None, Match::catchall());
        assert_eq!(t.modify(&all, &[], Some(5), true), vec![a, b, c]);
        assert_eq!(t.meta(a.id).unwrap().stats.packets, 0);
        assert_eq!(t.get(c.id).unwrap().cookie, 5);
        // A loose match on in_port=2 selects nothing: no add happens.
        let none = RuleSelector::loose(Some(0), rule(0, 0, Some(2), vec![]).r#match);
        assert!(t.modify(&none, &[out(1)], None, false).is_empty());
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn delete_with_cookie_and_out_port() {
        let mut t = FlowTables::new();
        let mut r1 = rule(0, 10, Some(1), vec![out(2)]);
        r1.cookie = 0xab;
        let (a, _) = t.add(r1, 0).unwrap();
        let (b, _) = t.add(rule(0, 10, Some(2), vec![out(3)]), 0).unwrap();
        let (c, _) = t.add(rule(0, 5, None, vec![Action::Normal]), 0).unwrap();
        let mut sel = RuleSelector::loose(Some(0), Match::catchall());
        sel.out_port = 3;
        assert_eq!(
            t.delete(&sel).iter().map(|d| d.0).collect::<Vec<_>>(),
            vec![b]
        );
        let mut sel = RuleSelector::loose(None, Match::catchall());
        sel.cookie = 0xab;
        sel.cookie_mask = 0xff;
        assert_eq!(
            t.delete(&sel).iter().map(|d| d.0).collect::<Vec<_>>(),
            vec![a]
        );
        assert_eq!(hit(&t, 0, 1), Some(c.id));
        let sel = RuleSelector::strict(Some(0), Match::catchall(), 6);
        assert!(t.delete(&sel).is_empty());
        let mut sel = RuleSelector::strict(Some(0), Match::catchall(), 5);
        sel.out_port = OFPP_NORMAL;
        assert_eq!(t.delete(&sel).len(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn loose_selection_requires_at_least_as_specific() {
        let specific = rule(0, 1, Some(1), vec![]);
        let sel = RuleSelector::loose(Some(0), Match::catchall());
        assert!(sel.selects(&specific));
        let sel = RuleSelector::loose(Some(0), specific.r#match.clone());
        assert!(
            !sel.selects(&rule(0, 1, None, vec![])),
            "a wider rule is not covered"
        );
        assert!(!sel.selects(&rule(0, 1, Some(2), vec![])));
        assert!(!sel.selects(&rule(1, 1, Some(1), vec![])), "other table");
    }

    #[test]
    fn timeouts_expire_with_passed_in_time() {
        let mut t = FlowTables::new();
        let mut idle = rule(0, 1, Some(1), vec![]);
        idle.idle_timeout = 10;
        let mut hard = rule(0, 1, Some(2), vec![]);
        hard.hard_timeout = 5;
        hard.idle_timeout = 100;
        let (i, _) = t.add(idle, 0).unwrap();
        let (h, _) = t.add(hard, 0).unwrap();
        let (_p, _) = t.add(rule(0, 1, Some(3), vec![]), 0).unwrap();
        assert!(t.expire(4 * NS_PER_SEC).is_empty());
        assert!(t.credit(i.id, 1, 60, 4 * NS_PER_SEC));
        t.credit(h.id, 1, 60, 4 * NS_PER_SEC);
        assert_eq!(
            t.expire(5 * NS_PER_SEC),
            vec![(h, RemovedReason::HardTimeout)]
        );
        assert!(
            t.expire(13 * NS_PER_SEC).is_empty(),
            "the hit at 4 s restarted the idle timer"
        );
        assert_eq!(
            t.expire(14 * NS_PER_SEC),
            vec![(i, RemovedReason::IdleTimeout)]
        );
        assert_eq!(t.len(), 1);
        assert!(
            !t.credit(i.id, 1, 60, 15 * NS_PER_SEC),
            "expired rules take no credit"
        );
        assert_eq!(hit(&t, 0, 1), None);
    }

    #[test]
    fn rules_are_listed_in_dump_order() {
        let mut t = FlowTables::new();
        let (a, _) = t.add(rule(1, 5, None, vec![]), 0).unwrap();
        let (b, _) = t.add(rule(0, 5, Some(1), vec![]), 0).unwrap();
        let (c, _) = t.add(rule(0, 9, Some(2), vec![]), 0).unwrap();
        let order: Vec<RuleRef> = t.rules().into_iter().map(|r| r.0).collect();
        assert_eq!(order, vec![c, b, a]);
    }
}
