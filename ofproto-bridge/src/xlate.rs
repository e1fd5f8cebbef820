//! Translation: running a flow key through the OpenFlow tables to produce datapath actions
//! and the megaflow mask (Open vSwitch's ofproto-dpif-xlate).
//!
//! [`translate`] starts at table 0 (or, for a recirculated packet, resumes a frozen
//! translation), executes the matched rules' actions on a *working* copy of the flow key,
//! and emits [`OdpAction`]s. Header rewrites are not emitted where they occur: they change
//! the working flow (so later tables see the new values) and are committed as
//! [`OdpAction::SetMasked`] just before the next action that lets the packet be observed
//! (output, controller, extension, recirculation), and only for fields whose value actually
//! changes, as Open vSwitch's `commit_odp_actions` does.
//!
//! # The megaflow mask
//!
//! Every bit of the flow key that a lookup consulted or an action's outcome depended on is
//! un-wildcarded in [`Xlation::mask`]; the property (tested in `tests/xlate_megaflow.rs`) is
//! that any flow agreeing with the translated one on the mask translates to the same actions.
//! Rules of thumb: lookups add what the classifier reports; `normal` adds `in_port`,
//! `dl_src`, `dl_dst` and the VLAN ID; output adds `in_port` (output to the ingress port is
//! refused); `dec_ttl` adds `dl_type` and `nw_ttl`; a set-field adds its prerequisites and,
//! when committed, the bits it wrote (whether the packet already had that value decides
//! whether an action is emitted); VLAN pushes and pops add the whole VLAN stack, because they
//! shift tags between the key's slots; `recirc_id` is always exact.
//!
//! `normal` learns source addresses as it goes: later lookups of the same translation see
//! them, and they reach the bridge's MAC table when the translation ends (only if
//! [`XlateParams::may_learn`]; the result is the same either way).
//!
//! # Drops
//!
//! A translation that sends the packet nowhere ends with [`OdpAction::Drop`] and a reason
//! (the most recent one met: table miss, empty actions, TTL exceeded, loop back, ...), so
//! that the datapath can count `rx = tx + drops`. Only extension runs precede such a `Drop`
//! (an extension may itself transmit or drop the packet). A translation error (too deep)
//! discards every action and drops with that reason. A controller upcall counts as output.
//! A `bpf(NAME)` naming no loaded extension stops the pipeline as if the extension had
//! aborted (reason `ExtAborted`); what was output before stays output. A recirculated pass of
//! a packet that an earlier pass already output ends without a `Drop` (its actions may then
//! be empty): the packet was counted as transmitted.
//!
//! # Extensions and recirculation
//!
//! `bpf(NAME)` emits [`OdpAction::Bpf`]. The program may rewrite the packet, so what
//! follows may have to see the new headers. Whether it must is decided in one place,
//! `Ctx::after_bpf`, from the bridge's [`Reclassify`] policy:
//! - *recirculate*: the rest of the translation (the remaining actions of this rule and of
//!   every rule that resubmitted to it, each with its table and ingress port, plus the
//!   metadata) is frozen in the bridge under a recirculation id and [`OdpAction::Recirc`]
//!   ends the actions; the datapath re-parses the packet and translates the new key, whose
//!   `recirc_id` names the frozen state, from where it stopped;
//! - *continue speculatively* (policy `Verifier`, when [`XlateHooks::bpf_write_set`] gives a
//!   bounded write set): translation goes on with the old header values while collecting
//!   the bits it consults from then on; if none of them may have been written, the result
//!   stands and one recirculation was avoided; otherwise (or if the rest runs a filter or
//!   another extension, whose reads the write set does not cover) the translation is redone
//!   with a recirculation at that action, replaying the filter answers already obtained so
//!   that no filter runs twice (the bits the abandoned continuation consulted stay in the
//!   mask: they are what made it fail);
//! - *continue* (policy `NeverUnsafe`, or an empty write set).
//!
//! Filters read packet bytes, and translation sees the packet as it arrived. So when a
//! lookup needs a filter after the actions have changed the packet (a header write, pending
//! or emitted, a VLAN push or pop, an extension run), translation recirculates first and the
//! action that led to the lookup runs again on the re-parsed packet. (Policy `NeverUnsafe`
//! skips this too: its filters see the packet as it arrived.)

use crate::action::{
    Action, PortNo, MAX_TABLE_ID, OFPP_ALL, OFPP_ANY, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT,
    OFPP_NORMAL, OFPP_TABLE,
};
use crate::bridge::{Bridge, FrozenFrame, FrozenState, Reclassify};
use crate::field::{Field, Prerequisite};
use crate::flow::{Flow, Vlan, FRAG_LATER, VLAN_CFI, VLAN_PCP_MASK, VLAN_PCP_SHIFT, VLAN_VID_MASK};
use crate::odp::{DropReason, OdpAction};
use crate::rule::Rule;
use crate::table::RuleRef;

/// Maximum nesting of `resubmit`/`goto_table` (Open vSwitch's limit).
pub const MAX_DEPTH: u32 = 64;
/// Maximum number of table lookups in one translation (Open vSwitch's resubmit limit).
pub const MAX_RESUBMITS: u32 = MAX_DEPTH * MAX_DEPTH;
/// Maximum number of recirculations of one packet.
pub const MAX_RECIRC_DEPTH: u32 = 16;

/// What translation needs from the extension runtime. The datapath implements it for the
/// packet being translated.
pub trait XlateHooks {
    /// Runs filter extension `name` on the packet: `Some((ext_index, passed))`, or `None`
    /// when no such extension is loaded (the rule then does not match).
    fn filter(&mut self, name: &str) -> Option<(u32, bool)>;

    /// The registry index of extension `name`, or `None` if none is loaded (a `bpf(NAME)`
    /// action then stops the pipeline, with [`DropReason::ExtAborted`] if nothing was output).
    fn ext_index(&self, name: &str) -> Option<u32>;

    /// The bits of the flow key that extension `ext_index` may write when run on this packet
    /// (its verified packet write set mapped onto the header fields of the packet's layout),
    /// or `None` when it cannot be bounded (unverified program, writes at unbounded offsets,
    /// packet resizing). The layout fields consulted to map the write set must be OR-ed into
    /// `wc`. The default is `None`: always recirculate.
    fn bpf_write_set(&mut self, ext_index: u32, flow: &Flow, wc: &mut Flow) -> Option<Flow> {
        let _ = (ext_index, flow, wc);
        None
    }
}

/// Hooks for a switch with no extensions loaded.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoExtensions;

impl XlateHooks for NoExtensions {
    fn filter(&mut self, _name: &str) -> Option<(u32, bool)> {
        None
    }
    fn ext_index(&self, _name: &str) -> Option<u32> {
        None
    }
}

/// Inputs of a translation besides the flow key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XlateParams {
    /// Current time in nanoseconds (for MAC learning ages).
    pub now_ns: u64,
    /// Whether `normal` may write what it learns into the bridge's MAC table (true when
    /// handling a packet's upcall, false when revalidating a cached flow). The translation
    /// itself is the same either way: later lookups of the same translation see what earlier
    /// `normal` actions learnt.
    pub may_learn: bool,
}

/// The result of a translation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Xlation {
    /// Datapath actions, in order. Ends with `Drop` when the packet goes nowhere and with
    /// `Recirc` when translation continues after re-parsing.
    pub actions: Vec<OdpAction>,
    /// The megaflow mask: the bits of the input key the result depends on.
    pub mask: Flow,
    /// Every rule hit, in order (each is credited with the megaflow's statistics).
    pub rules: Vec<RuleRef>,
    /// Every filter run, in order, with its result; a cache hit must re-run them (or reuse a
    /// stateless filter's cached result) and fall back to translation if one differs.
    pub filters: Vec<(u32, bool)>,
    /// The drop reason when `actions` ends with `Drop`.
    pub drop: Option<DropReason>,
    /// The recirculation id when `actions` ends with `Recirc`.
    pub recirc: Option<u32>,
    /// Extension actions translated past without recirculating thanks to their write set.
    pub recircs_avoided: u32,
    /// The bridge version this translation reflects (after its own MAC learning).
    pub version: u64,
    /// What its `normal` actions learn, as (VLAN, MAC, port), whether or not
    /// [`XlateParams::may_learn`] let it reach the bridge. A cache hit does not learn, so a
    /// datapath must refresh these entries for the packets its cached flows handle, and must
    /// not keep a cached flow whose learning the bridge's MAC table does not reflect.
    pub learns: Vec<(u16, [u8; 6], PortNo)>,
    /// For the `k`th `Bpf` action, how many of [`Xlation::rules`] were hit before it: a
    /// packet the extension stops there (drop, abort, TX, redirect) is credited to those rules
    /// only, as it would be if translation had recirculated after the action.
    pub bpf_marks: Vec<u32>,
}

/// Translates `flow` through `bridge`'s tables. See the module documentation.
///
/// `flow` is the datapath's key of the packet (with `recirc_id` set for a recirculated one).
/// MAC learning done by `normal` is applied to the bridge (bumping its version when the
/// table changes); recirculations intern frozen states in it.
pub fn translate(
    bridge: &mut Bridge,
    flow: &Flow,
    params: XlateParams,
    hooks: &mut dyn XlateHooks,
) -> Xlation {
    let mut ctx = Ctx::new(bridge, hooks, flow, params, None, Vec::new());
    ctx.run();
    if let Some(spec) = ctx.failed_speculation() {
        let log = std::mem::take(&mut ctx.filter_log);
        let mut consulted = ctx.wc;
        // The bits the abandoned continuation consulted decided that it failed, and so did
        // the write set (and the layout bits its mapping read, which the redo does not ask
        // for again): a flow that differs in them might not fail, so they belong in this
        // megaflow's mask too.
        consulted.or_assign(&spec.wc_before);
        let mut redo = Ctx::new(ctx.bridge, ctx.hooks, flow, params, Some(spec), log);
        redo.wc = consulted;
        redo.run();
        return redo.finish();
    }
    ctx.finish()
}

/// What [`revalidate`] concluded about a cached translation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revalidation {
    /// The tables still give the same actions, mask, rules and filters: keep the entry.
    Unchanged,
    /// The tables now give this translation instead (update or replace the entry; if the
    /// mask changed, the entry must be reinstalled under the new mask).
    Changed(Box<Xlation>),
    /// The translation now consults filters the entry did not record: delete the entry (the
    /// next packet makes an upcall and runs the filters on real packet bytes).
    Invalid,
}

/// Re-translates the flow key `flow` of a cached entry whose translation was `cached`,
/// answering filters with the results the entry recorded (so that no stateful filter runs
/// during revalidation). `hooks` supplies extension indexes (filters' too) and write sets;
/// its `filter` is never called.
///
/// Pass `params.may_learn = true` for an entry that saw packets since its last revalidation:
/// like Open vSwitch's revalidators pushing statistics, that refreshes the age of the MAC
/// addresses its `normal` actions learnt (which a cache hit never does), without changing
/// the translation. Otherwise pass `false`.
pub fn revalidate(
    bridge: &mut Bridge,
    flow: &Flow,
    cached: &Xlation,
    params: XlateParams,
    hooks: &mut dyn XlateHooks,
) -> Revalidation {
    let mut replay = ReplayFilters {
        inner: hooks,
        answers: &cached.filters,
        next: 0,
        diverged: false,
    };
    let x = translate(bridge, flow, params, &mut replay);
    if replay.diverged {
        Revalidation::Invalid
    } else if x.actions == cached.actions
        && x.mask == cached.mask
        && x.rules == cached.rules
        && x.filters == cached.filters
    {
        Revalidation::Unchanged
    } else {
        Revalidation::Changed(Box::new(x))
    }
}

/// Hooks that answer filters from a recorded list, in order, and delegate the rest.
pub struct ReplayFilters<'a> {
    /// Hooks for everything but filter results.
    pub inner: &'a mut dyn XlateHooks,
    /// Recorded `(ext_index, result)` answers.
    pub answers: &'a [(u32, bool)],
    /// Index of the next answer.
    pub next: usize,
    /// Set when a filter was asked that the recording does not have at that position.
    pub diverged: bool,
}

impl XlateHooks for ReplayFilters<'_> {
    fn filter(&mut self, name: &str) -> Option<(u32, bool)> {
        let want = self.inner.ext_index(name);
        match self.answers.get(self.next) {
            Some(&(idx, ok)) if Some(idx) == want => {
                self.next += 1;
                Some((idx, ok))
            }
            _ => {
                self.diverged = true;
                want.map(|idx| (idx, false))
            }
        }
    }
    fn ext_index(&self, name: &str) -> Option<u32> {
        self.inner.ext_index(name)
    }
    fn bpf_write_set(&mut self, ext_index: u32, flow: &Flow, wc: &mut Flow) -> Option<Flow> {
        self.inner.bpf_write_set(ext_index, flow, wc)
    }
}

/// A speculative continuation past an extension action.
#[derive(Clone, Copy, Debug)]
struct Speculation {
    /// Ordinal of the extension action in this translation.
    ordinal: u32,
    /// Bits the extension may write.
    write_set: Flow,
    /// The mask accumulated before the action (the context's mask restarts from zero).
    wc_before: Flow,
    /// Set when the rest did something the write set cannot vouch for.
    aborted: bool,
}

/// What to do after an extension action.
enum AfterBpf {
    Recirculate,
    Continue,
    Speculate(Flow),
}

struct Ctx<'a> {
    bridge: &'a mut Bridge,
    hooks: &'a mut dyn XlateHooks,
    params: XlateParams,
    /// The key as the actions so far have made it (what lookups and actions see).
    flow: Flow,
    /// The key as the emitted datapath actions have made it.
    base: Flow,
    /// Bits written by set-field actions and not yet committed.
    dirty: Flow,
    wc: Flow,
    actions: Vec<OdpAction>,
    rules: Vec<RuleRef>,
    filters: Vec<(u32, bool)>,
    /// Every answer of `hooks.filter`, in order (for a redo).
    filter_log: Vec<Option<(u32, bool)>>,
    /// Answers to hand out instead of asking the hooks (in a redo).
    replay: Vec<Option<(u32, bool)>>,
    replay_pos: usize,
    pending_learns: Vec<(u16, [u8; 6], PortNo)>,
    table: u8,
    depth: u32,
    lookups: u32,
    recirc_depth: u32,
    output_seen: bool,
    drop_reason: Option<DropReason>,
    error: Option<DropReason>,
    /// Whether the packet's bytes differ from the ones translation started with (header
    /// writes emitted or pending, VLAN pushes or pops, extension runs).
    packet_changed: bool,
    /// Set with `freezing` when the action being executed must itself run again after the
    /// recirculation (a lookup that needs a filter on the changed packet).
    refreeze_current: bool,
    /// Set when the pipeline stops for good (an unknown extension), keeping what was emitted.
    halted: bool,
    /// Frames collected while unwinding to a recirculation.
    freezing: Option<Vec<FrozenFrame>>,
    bpf_count: u32,
    /// In a redo: recirculate at the extension action with this ordinal.
    force_recirc_at: Option<u32>,
    spec: Option<Speculation>,
    recircs_avoided: u32,
    /// For each emitted `Bpf` action, the number of rules hit before it.
    bpf_marks: Vec<u32>,
}

impl<'a> Ctx<'a> {
    fn new(
        bridge: &'a mut Bridge,
        hooks: &'a mut dyn XlateHooks,
        flow: &Flow,
        params: XlateParams,
        redo_of: Option<Speculation>,
        replay: Vec<Option<(u32, bool)>>,
    ) -> Ctx<'a> {
        Ctx {
            bridge,
            hooks,
            params,
            flow: *flow,
            base: *flow,
            dirty: Flow::default(),
            wc: Flow::default(),
            // Nearly every translation emits actions and hits a rule or two: allocated once
            // up front instead of grown from empty.
            actions: Vec::with_capacity(8),
            rules: Vec::with_capacity(4),
            filters: Vec::new(),
            filter_log: Vec::new(),
            replay,
            replay_pos: 0,
            pending_learns: Vec::new(),
            table: 0,
            depth: 0,
            lookups: 0,
            recirc_depth: 0,
            output_seen: false,
            drop_reason: None,
            error: None,
            halted: false,
            packet_changed: false,
            refreeze_current: false,
            freezing: None,
            bpf_count: 0,
            force_recirc_at: redo_of.map(|s| s.ordinal),
            spec: None,
            recircs_avoided: 0,
            bpf_marks: Vec::new(),
        }
    }

    fn stopped(&self) -> bool {
        self.error.is_some()
            || self.halted
            || self.freezing.is_some()
            || self.spec.is_some_and(|s| s.aborted)
    }

    fn note_drop(&mut self, reason: DropReason) {
        self.drop_reason = Some(reason);
    }

    fn run(&mut self) {
        self.wc.recirc_id = !0;
        if self.flow.recirc_id == 0 {
            self.xlate_table(0, true);
            self.end_freeze(&[]);
            return;
        }
        let Some(state) = self.bridge.frozen(self.flow.recirc_id).cloned() else {
            self.note_drop(DropReason::TableMiss);
            return;
        };
        if state.recirc_depth >= MAX_RECIRC_DEPTH {
            self.error = Some(DropReason::TooDeep);
            return;
        }
        self.recirc_depth = state.recirc_depth;
        self.output_seen = state.output_seen;
        self.drop_reason = state.drop_reason;
        self.flow.metadata = state.metadata;
        for (i, frame) in state.frames.iter().enumerate() {
            self.flow.in_port = frame.in_port;
            self.table = frame.table;
            self.do_actions(&frame.actions);
            if self.stopped() {
                self.end_freeze(&state.frames[i + 1..]);
                return;
            }
        }
    }

    /// If translation is unwinding to a recirculation, adds `outer` frames and freezes.
    fn end_freeze(&mut self, outer: &[FrozenFrame]) {
        let Some(mut frames) = self.freezing.take() else {
            return;
        };
        frames.extend(outer.iter().cloned());
        frames.retain(|f| !f.actions.is_empty());
        if frames.is_empty() {
            // Nothing follows the extension: no need to look at the rewritten packet.
            return;
        }
        // The re-parsed packet must carry every change made so far.
        self.commit();
        // The continuation carries the metadata and each level's ingress port.
        self.wc.metadata = !0;
        self.wc.in_port = !0;
        let state = FrozenState {
            frames,
            metadata: self.flow.metadata,
            recirc_depth: self.recirc_depth + 1,
            output_seen: self.output_seen,
            drop_reason: self.drop_reason,
        };
        let id = self.bridge.freeze(state);
        self.actions.push(OdpAction::Recirc(id));
    }

    fn failed_speculation(&self) -> Option<Speculation> {
        let s = self.spec?;
        let post = self.wc;
        if s.aborted || !post.masked(&s.write_set).is_zero() {
            Some(s)
        } else {
            None
        }
    }

    fn finish(mut self) -> Xlation {
        if let Some(s) = self.spec {
            debug_assert!(!s.aborted);
            self.wc.or_assign(&s.wc_before);
            self.recircs_avoided += 1;
        }
        if self.params.may_learn {
            for &(vlan, mac, port) in &self.pending_learns {
                self.bridge.learn_mac(vlan, mac, port, self.params.now_ns);
            }
        }
        let mut drop = None;
        let mut recirc = None;
        if let Some(reason) = self.error {
            self.actions.clear();
            self.bpf_marks.clear();
            self.actions.push(OdpAction::Drop(reason));
            drop = Some(reason);
        } else if let Some(OdpAction::Recirc(id)) = self.actions.last() {
            recirc = Some(*id);
        } else {
            // Header changes after the last observable action have no effect.
            let keep = self
                .actions
                .iter()
                .rposition(|a| {
                    matches!(
                        a,
                        OdpAction::Output(_) | OdpAction::Userspace { .. } | OdpAction::Bpf(_)
                    )
                })
                .map_or(0, |i| i + 1);
            self.actions.truncate(keep);
            if !self.output_seen {
                let reason = self.drop_reason.unwrap_or(DropReason::Action);
                self.actions.push(OdpAction::Drop(reason));
                drop = Some(reason);
            }
        }
        self.wc.pad = [0; 4];
        Xlation {
            learns: self.pending_learns,
            actions: self.actions,
            mask: self.wc,
            rules: self.rules,
            filters: self.filters,
            drop,
            recirc,
            recircs_avoided: self.recircs_avoided,
            version: self.bridge.version(),
            bpf_marks: self.bpf_marks,
        }
    }

    // ---- Tables ----

    /// Looks the working flow up in `table` and runs the matched rule's actions. A miss
    /// drops when `honor_miss` (initial lookup, `goto_table`), and does nothing otherwise
    /// (`resubmit`).
    fn xlate_table(&mut self, table: u8, honor_miss: bool) {
        if self.depth >= MAX_DEPTH || self.lookups >= MAX_RESUBMITS {
            if let Some(s) = self.spec.as_mut() {
                // The error would discard the extension run too, which recirculating runs
                // first: give the speculation up.
                s.aborted = true;
                return;
            }
            self.error = Some(DropReason::TooDeep);
            return;
        }
        self.lookups += 1;
        if table > MAX_TABLE_ID {
            if honor_miss {
                self.note_drop(DropReason::TableMiss);
            }
            return;
        }
        let found = {
            let hooks = &mut *self.hooks;
            let filters = &mut self.filters;
            let log = &mut self.filter_log;
            let replay = &self.replay;
            let pos = &mut self.replay_pos;
            let spec = &mut self.spec;
            // A filter reads packet bytes, and translation runs on the packet as it arrived:
            // once actions have changed it, the filter must wait for a recirculation.
            let check_stale = self.bridge.reclassify() != Reclassify::NeverUnsafe;
            let (changed, pending) = (self.packet_changed, !self.dirty.is_zero());
            let (flow, base, dirty) = (&self.flow, &self.base, &self.dirty);
            let mut read_dirty = false;
            let mut stale = || {
                // Pending writes matter only where they change a value; that comparison
                // reads the written bits.
                read_dirty |= !changed && pending;
                changed || (pending && !flow.masked(dirty).eq(&base.masked(dirty)))
            };
            let mut recirc_first = false;
            let mut filter = |r: &Rule| -> bool {
                for name in &r.r#match.bpf_filters {
                    if let Some(s) = spec.as_mut() {
                        // The filter would read the packet as the extension left it.
                        s.aborted = true;
                        return false;
                    }
                    if check_stale && stale() {
                        recirc_first = true;
                        return false;
                    }
                    let answer = if *pos < replay.len() {
                        *pos += 1;
                        replay[*pos - 1]
                    } else {
                        hooks.filter(name)
                    };
                    log.push(answer);
                    match answer {
                        Some((idx, ok)) => {
                            filters.push((idx, ok));
                            if !ok {
                                return false;
                            }
                        }
                        None => return false,
                    }
                }
                true
            };
            let found = self
                .bridge
                .tables()
                .lookup(table, &self.flow, &mut self.wc, &mut filter)
                .map(|e| (RuleRef { table, id: e.id }, e.rule.clone()));
            if read_dirty {
                self.wc.or_assign(&self.dirty);
            }
            if recirc_first {
                // Freeze so that the action that led here runs again after the packet, with
                // every change applied, has been re-parsed.
                self.freezing = Some(Vec::new());
                self.refreeze_current = true;
            }
            found
        };
        if self.stopped() {
            return;
        }
        let Some((rref, rule)) = found else {
            if honor_miss {
                self.note_drop(DropReason::TableMiss);
            }
            return;
        };
        self.rules.push(rref);
        if rule.actions.is_empty() {
            self.note_drop(DropReason::Action);
        }
        let saved = self.table;
        self.table = table;
        self.depth += 1;
        self.do_actions(&rule.actions);
        self.depth -= 1;
        self.table = saved;
    }

    // ---- Actions ----

    fn do_actions(&mut self, acts: &[Action]) {
        for (i, a) in acts.iter().enumerate() {
            if self.stopped() {
                return;
            }
            match a {
                Action::Output { port, max_len } => self.output(*port, *max_len),
                Action::Controller { max_len } => self.controller(*max_len),
                Action::Normal => self.normal(),
                Action::Flood => self.flood(true),
                Action::All => self.flood(false),
                Action::InPort => self.output_port(self.flow.in_port, true),
                Action::SetField { field, value, mask } => self.set_field(*field, *value, *mask),
                Action::SetNwTos(tos) => self.set_field(Field::IpDscp, (*tos >> 2) as u128, 0x3f),
                Action::SetNwTtl(ttl) => self.set_field(Field::NwTtl, *ttl as u128, 0xff),
                Action::SetVlanVid(vid) => self.set_vlan(*vid & VLAN_VID_MASK, VLAN_VID_MASK),
                Action::SetVlanPcp(pcp) => self.set_vlan(
                    ((*pcp as u16) << VLAN_PCP_SHIFT) & VLAN_PCP_MASK,
                    VLAN_PCP_MASK,
                ),
                Action::PushVlan(tpid) => self.push_vlan(*tpid, 0),
                Action::PopVlan => self.pop_vlan(),
                Action::DecTtl => {
                    if self.dec_ttl() {
                        // Like Open vSwitch: stop processing this rule's actions.
                        return;
                    }
                }
                Action::Resubmit { in_port, table } => {
                    let saved = self.flow.in_port;
                    let fake = in_port.filter(|p| *p != OFPP_IN_PORT);
                    if let Some(p) = fake {
                        self.flow.in_port = p;
                    }
                    self.xlate_table(table.unwrap_or(self.table), false);
                    if fake.is_some() {
                        self.flow.in_port = saved;
                    }
                }
                Action::WriteMetadata { value, mask } => {
                    self.flow.metadata = (self.flow.metadata & !mask) | (value & mask);
                }
                Action::GotoTable(t) => self.xlate_table(*t, true),
                Action::Bpf(name) => self.bpf(name),
            }
            if let Some(frames) = self.freezing.as_mut() {
                let from = if std::mem::take(&mut self.refreeze_current) {
                    i
                } else {
                    i + 1
                };
                frames.push(FrozenFrame {
                    table: self.table,
                    in_port: self.flow.in_port,
                    actions: acts[from..].to_vec(),
                });
                return;
            }
        }
    }

    fn output(&mut self, port: PortNo, max_len: u16) {
        match port {
            OFPP_IN_PORT => self.output_port(self.flow.in_port, true),
            OFPP_NORMAL => self.normal(),
            OFPP_FLOOD => self.flood(true),
            OFPP_ALL => self.flood(false),
            OFPP_CONTROLLER => self.controller(max_len),
            OFPP_TABLE => self.xlate_table(0, true),
            OFPP_ANY => self.note_drop(DropReason::NoSuchPort),
            p => self.output_port(p, false),
        }
    }

    fn output_port(&mut self, port: PortNo, allow_in_port: bool) {
        self.wc.in_port = !0;
        if port == self.flow.in_port && !allow_in_port {
            self.note_drop(DropReason::LoopBack);
            return;
        }
        if self.bridge.port(port).is_none() {
            self.note_drop(DropReason::NoSuchPort);
            return;
        }
        self.commit();
        self.actions.push(OdpAction::Output(port));
        self.output_seen = true;
    }

    fn flood(&mut self, flood_only: bool) {
        self.wc.in_port = !0;
        self.commit();
        let in_port = self.flow.in_port;
        let before = self.actions.len();
        for p in self.bridge.ports() {
            if p.no != in_port && (p.flood || !flood_only) {
                self.actions.push(OdpAction::Output(p.no));
            }
        }
        if self.actions.len() > before {
            self.output_seen = true;
        } else {
            self.note_drop(DropReason::LoopBack);
        }
    }

    fn controller(&mut self, max_len: u16) {
        if self.bridge.controller_connected() {
            self.commit();
            self.actions.push(OdpAction::Userspace { max_len });
            self.output_seen = true;
        } else {
            self.note_drop(DropReason::NoController);
        }
    }

    /// The `normal` action: a MAC-learning L2 switch in which every port is a trunk.
    fn normal(&mut self) {
        self.wc.in_port = !0;
        self.wc.dl_src = [0xff; 6];
        self.wc.dl_dst = [0xff; 6];
        self.wc.vlans[0].tci |= VLAN_VID_MASK | VLAN_CFI;
        let vlan = if self.flow.has_vlan() {
            self.flow.vlans[0].tci & VLAN_VID_MASK
        } else {
            0
        };
        let (src, dst, in_port) = (self.flow.dl_src, self.flow.dl_dst, self.flow.in_port);
        if src[0] & 1 != 0 {
            // A multicast source address is invalid: drop, as Open vSwitch does.
            self.note_drop(DropReason::Action);
            return;
        }
        // What is learnt is computed the same way whether or not this translation may write
        // it to the bridge (`may_learn`), so that revalidation agrees with the upcall.
        if self.bridge.port(in_port).is_some() {
            if let Some(s) = self.spec.as_mut() {
                // Learning is a side effect of a packet that reaches `normal`; the extension
                // before it may still drop the packet, so only a recirculated pass may learn.
                s.aborted = true;
                return;
            }
            self.pending_learns.push((vlan, src, in_port));
        }
        if dst[0] & 1 != 0 {
            self.flood(true);
            return;
        }
        // Learning reaches the bridge when translation ends (a translation that is redone
        // must start from the same table), but later lookups of this one already see it.
        let learned = self
            .pending_learns
            .iter()
            .rev()
            .find(|(v, m, _)| (*v, *m) == (vlan, dst))
            .map(|e| e.2)
            .or_else(|| self.bridge.mac_learning().lookup(vlan, dst));
        match learned {
            Some(p) if p == in_port => self.note_drop(DropReason::LoopBack),
            Some(p) => self.output_port(p, false),
            None => self.flood(true),
        }
    }

    /// Checks a prerequisite on the working flow, un-wildcarding what the check reads.
    fn prereq_ok(&mut self, p: Prerequisite) -> bool {
        use Prerequisite as P;
        match p {
            P::None => return true,
            P::Vlan => self.wc.vlans[0].tci |= VLAN_CFI,
            P::Mpls | P::Ipv4 | P::Ipv6 | P::IpAny | P::Arp => self.wc.dl_type = !0,
            P::Tcp | P::Udp | P::Sctp | P::Icmpv4 | P::Icmpv6 => {
                self.wc.dl_type = !0;
                self.wc.nw_proto = !0;
                self.wc.nw_frag |= FRAG_LATER;
            }
            P::Nd | P::NdSolicit | P::NdAdvert => {
                self.wc.dl_type = !0;
                self.wc.nw_proto = !0;
                self.wc.nw_frag |= FRAG_LATER;
                self.wc.tp_src |= 0xff;
            }
        }
        let l4 = !matches!(p, P::Vlan | P::Mpls | P::Ipv4 | P::Ipv6 | P::IpAny | P::Arp);
        if l4 && self.flow.nw_frag & FRAG_LATER != 0 {
            // A later fragment has no L4 header to match or rewrite.
            return false;
        }
        p.is_met(&self.flow, &Flow::exact_mask())
    }

    fn set_field(&mut self, field: Field, value: u128, mask: u128) {
        let mut mask = mask & field.full_mask();
        match field {
            Field::InPort | Field::Metadata => {
                let cur = field.get(&self.flow);
                field.set(&mut self.flow, (cur & !mask) | (value & mask));
                return;
            }
            Field::VlanTci | Field::VlanVid => {
                // Setting the VLAN fields never adds or removes a tag.
                if !self.prereq_ok(Prerequisite::Vlan) {
                    return;
                }
                mask &= !(VLAN_CFI as u128);
            }
            f if !f.writable() => return,
            f => {
                if !self.prereq_ok(f.prerequisite()) {
                    return;
                }
            }
        }
        let cur = field.get(&self.flow);
        field.set(&mut self.flow, (cur & !mask) | (value & mask));
        field.or_mask(&mut self.dirty, mask);
    }

    /// `mod_vlan_vid` / `mod_vlan_pcp`: rewrite the outer tag's bits, pushing a tag if none.
    fn set_vlan(&mut self, bits: u16, mask: u16) {
        if self.prereq_ok(Prerequisite::Vlan) {
            self.flow.vlans[0].tci = (self.flow.vlans[0].tci & !mask) | bits;
            self.dirty.vlans[0].tci |= mask;
        } else {
            self.push_vlan(0x8100, bits);
        }
    }

    fn unwildcard_vlans(&mut self) {
        self.wc.vlans = [Vlan { tpid: !0, tci: !0 }; 2];
    }

    fn push_vlan(&mut self, tpid: u16, tci: u16) {
        // Tags shift between the key's slots: every slot's bits now matter.
        self.unwildcard_vlans();
        self.commit();
        self.packet_changed = true;
        self.actions.push(OdpAction::PushVlan {
            tpid,
            tci: tci & !VLAN_CFI,
        });
        let tag = Vlan {
            tpid,
            tci: tci | VLAN_CFI,
        };
        for f in [&mut self.flow, &mut self.base] {
            f.vlans[1] = f.vlans[0];
            f.vlans[0] = tag;
        }
    }

    fn pop_vlan(&mut self) {
        self.unwildcard_vlans();
        if !self.flow.has_vlan() {
            return;
        }
        self.commit();
        self.packet_changed = true;
        self.actions.push(OdpAction::PopVlan);
        for f in [&mut self.flow, &mut self.base] {
            f.vlans[0] = f.vlans[1];
            f.vlans[1] = Vlan::default();
        }
    }

    /// `dec_ttl`; returns true when the rule's remaining actions must be skipped.
    fn dec_ttl(&mut self) -> bool {
        if !self.prereq_ok(Prerequisite::IpAny) {
            return false;
        }
        self.wc.nw_ttl = !0;
        if self.flow.nw_ttl > 1 {
            self.flow.nw_ttl -= 1;
            self.dirty.nw_ttl = !0;
            return false;
        }
        // TTL exceeded: to the controller with reason "invalid TTL", if there is one.
        if self.bridge.controller_connected() {
            self.commit();
            self.actions
                .push(OdpAction::Userspace { max_len: u16::MAX });
            self.output_seen = true;
        } else {
            self.note_drop(DropReason::TtlExceeded);
        }
        true
    }

    /// Emits `SetMasked` for every written field whose value differs from the packet's.
    fn commit(&mut self) {
        if self.dirty.is_zero() {
            return;
        }
        let dirty = std::mem::take(&mut self.dirty);
        // The field names chosen depend on the protocol, which set-field's prerequisite
        // checks already un-wildcarded.
        let l3: &[Field] = match self.flow.dl_type {
            0x0800 => &[
                Field::IpDscp,
                Field::IpEcn,
                Field::NwTtl,
                Field::Ipv4Src,
                Field::Ipv4Dst,
            ],
            0x86dd => &[
                Field::IpDscp,
                Field::IpEcn,
                Field::NwTtl,
                Field::Ipv6Src,
                Field::Ipv6Dst,
                Field::Ipv6Label,
            ],
            0x0806 | 0x8035 => &[
                Field::ArpOp,
                Field::ArpSpa,
                Field::ArpTpa,
                Field::ArpSha,
                Field::ArpTha,
            ],
            0x8847 | 0x8848 => &[Field::MplsLabel, Field::MplsTc, Field::MplsTtl],
            _ => &[],
        };
        let l4: &[Field] = match (self.flow.dl_type, self.flow.nw_proto) {
            (0x0800 | 0x86dd, 6) => &[Field::TcpSrc, Field::TcpDst],
            (0x0800 | 0x86dd, 17) => &[Field::UdpSrc, Field::UdpDst],
            (0x0800 | 0x86dd, 132) => &[Field::SctpSrc, Field::SctpDst],
            (0x0800, 1) => &[Field::Icmpv4Type, Field::Icmpv4Code],
            (0x86dd, 58) => &[
                Field::Icmpv6Type,
                Field::Icmpv6Code,
                Field::NdTarget,
                Field::NdSll,
                Field::NdTll,
            ],
            _ => &[],
        };
        let l2 = [Field::EthDst, Field::EthSrc, Field::VlanTci];
        let mut covered = Flow::default();
        // Most fields are clean: skipped by the words they lie in, without reading them.
        let dirty_words = dirty.nonzero_words();
        for fields in [&l2[..], l3, l4] {
            for &field in fields {
                if field.flow_words() & dirty_words != 0 {
                    self.commit_field(field, &dirty, &mut covered);
                }
            }
        }
        debug_assert_eq!(
            covered.masked(&dirty),
            dirty,
            "a written field was not committed"
        );
    }

    /// Emits `SetMasked` for `field` if its bits written (`dirty`) differ from the packet's;
    /// records them in `covered` (debug builds check that every written bit is committed).
    #[inline]
    fn commit_field(&mut self, field: Field, dirty: &Flow, covered: &mut Flow) {
        let m = field.get(dirty);
        if m == 0 {
            return;
        }
        if cfg!(debug_assertions) {
            field.or_mask(covered, m);
        }
        // Whether an action is emitted depends on the packet's current bits.
        field.or_mask(&mut self.wc, m);
        let new = field.get(&self.flow) & m;
        let old = field.get(&self.base) & m;
        if new != old {
            self.packet_changed = true;
            self.actions.push(OdpAction::SetMasked {
                field,
                value: new,
                mask: m,
            });
            let b = field.get(&self.base);
            field.set(&mut self.base, (b & !m) | new);
        }
    }

    // ---- Extensions ----

    fn bpf(&mut self, name: &str) {
        let Some(ext) = self.hooks.ext_index(name) else {
            // As if the extension had aborted: the pipeline stops here (what was already
            // output stays output, exactly as when a loaded extension aborts at run time).
            self.note_drop(DropReason::ExtAborted);
            self.halted = true;
            return;
        };
        self.bpf_count += 1;
        if let Some(s) = self.spec.as_mut() {
            // A second extension after a speculative continuation would run on the packet as
            // the first one left it: give up and recirculate at the first.
            s.aborted = true;
            return;
        }
        self.commit();
        self.packet_changed = true;
        self.bpf_marks.push(self.rules.len() as u32);
        self.actions.push(OdpAction::Bpf(ext));
        match self.after_bpf(ext) {
            AfterBpf::Recirculate => self.freezing = Some(Vec::new()),
            AfterBpf::Continue => {}
            AfterBpf::Speculate(write_set) => {
                self.spec = Some(Speculation {
                    ordinal: self.bpf_count,
                    write_set,
                    wc_before: std::mem::take(&mut self.wc),
                    aborted: false,
                });
            }
        }
    }

    /// The one place that decides whether translation may go on past an extension action.
    fn after_bpf(&mut self, ext: u32) -> AfterBpf {
        if self.force_recirc_at == Some(self.bpf_count) {
            return AfterBpf::Recirculate;
        }
        match self.bridge.reclassify() {
            Reclassify::Always => AfterBpf::Recirculate,
            Reclassify::NeverUnsafe => AfterBpf::Continue,
            Reclassify::Verifier => match self.hooks.bpf_write_set(ext, &self.flow, &mut self.wc) {
                None => AfterBpf::Recirculate,
                // Even an empty write set is a speculation: the rest may still do what only
                // a packet that survived the extension may do (MAC learning).
                Some(ws) => AfterBpf::Speculate(ws),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Match;
    use crate::table::RuleSelector;

    /// Builds a rule from (field, value) pairs matched exactly.
    fn rule(table: u8, priority: u16, fields: &[(Field, u128)], actions: Vec<Action>) -> Rule {
        let mut m = Match::default();
        for &(f, v) in fields {
            f.set(&mut m.flow, v);
            f.or_mask(&mut m.mask, f.full_mask());
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

    fn out(p: PortNo) -> Action {
        Action::Output {
            port: p,
            max_len: 0,
        }
    }

    fn bridge(ports: &[PortNo]) -> Bridge {
        let mut b = Bridge::new();
        for &p in ports {
            b.add_port(p, true);
        }
        b
    }

    fn ipv4(in_port: PortNo) -> Flow {
        Flow {
            in_port,
            dl_type: 0x0800,
            dl_src: [0, 0, 0, 0, 0, 1],
            dl_dst: [0, 0, 0, 0, 0, 2],
            nw_src: 0x0a000001,
            nw_dst: 0x0a000002,
            nw_proto: 6,
            nw_ttl: 64,
            tp_src: 1234,
            tp_dst: 80,
            ..Flow::default()
        }
    }

    fn xl(b: &mut Bridge, f: &Flow) -> Xlation {
        translate(
            b,
            f,
            XlateParams {
                now_ns: 0,
                may_learn: true,
            },
            &mut NoExtensions,
        )
    }

    #[test]
    fn output_and_mask() {
        let mut b = bridge(&[1, 2, 3]);
        b.add_flow(rule(0, 10, &[(Field::InPort, 1)], vec![out(2), out(3)]), 0);
        let x = xl(&mut b, &ipv4(1));
        assert_eq!(x.actions, vec![OdpAction::Output(2), OdpAction::Output(3)]);
        let mut expect = Flow {
            in_port: !0,
            recirc_id: !0,
            ..Flow::default()
        };
        expect.pad = [0; 4];
        assert_eq!(x.mask, expect);
        assert_eq!(x.rules.len(), 1);
        assert_eq!(x.drop, None);
    }

    #[test]
    fn table_miss_empty_actions_and_loopback() {
        let mut b = bridge(&[1, 2]);
        let x = xl(&mut b, &ipv4(1));
        assert_eq!(x.actions, vec![OdpAction::Drop(DropReason::TableMiss)]);
        b.add_flow(rule(0, 10, &[(Field::InPort, 1)], vec![]), 0);
        assert_eq!(
            xl(&mut b, &ipv4(1)).actions,
            vec![OdpAction::Drop(DropReason::Action)]
        );
        b.add_flow(rule(0, 10, &[(Field::InPort, 2)], vec![out(2)]), 0);
        assert_eq!(
            xl(&mut b, &ipv4(2)).actions,
            vec![OdpAction::Drop(DropReason::LoopBack)]
        );
        b.add_flow(rule(0, 10, &[(Field::InPort, 2)], vec![Action::InPort]), 0);
        assert_eq!(xl(&mut b, &ipv4(2)).actions, vec![OdpAction::Output(2)]);
        b.add_flow(rule(0, 10, &[(Field::InPort, 2)], vec![out(9)]), 0);
        assert_eq!(
            xl(&mut b, &ipv4(2)).actions,
            vec![OdpAction::Drop(DropReason::NoSuchPort)]
        );
    }

    #[test]
    fn goto_table_and_resubmit() {
        let mut b = bridge(&[1, 2, 3, 4]);
        b.add_flow(
            rule(
                0,
                1,
                &[],
                vec![
                    Action::WriteMetadata {
                        value: 5,
                        mask: 0xff,
                    },
                    Action::Resubmit {
                        in_port: None,
                        table: Some(2),
                    },
                    out(3),
                    Action::GotoTable(1),
                ],
            ),
            0,
        );
        b.add_flow(rule(1, 1, &[(Field::Metadata, 5)], vec![out(4)]), 0);
        b.add_flow(rule(2, 1, &[(Field::EthType, 0x0800)], vec![out(2)]), 0);
        let x = xl(&mut b, &ipv4(1));
        assert_eq!(
            x.actions,
            vec![
                OdpAction::Output(2),
                OdpAction::Output(3),
                OdpAction::Output(4)
            ]
        );
        assert_eq!(
            x.rules.iter().map(|r| r.table).collect::<Vec<_>>(),
            vec![0, 2, 1]
        );
        assert_eq!(x.mask.dl_type, 0xffff);
        // A resubmit miss does nothing; a goto_table miss drops only if nothing was output.
        b.delete_flows(&RuleSelector::loose(Some(2), Match::catchall()));
        b.delete_flows(&RuleSelector::loose(Some(1), Match::catchall()));
        assert_eq!(xl(&mut b, &ipv4(1)).actions, vec![OdpAction::Output(3)]);
    }

    #[test]
    fn resubmit_with_in_port_and_depth_limit() {
        let mut b = bridge(&[1, 2, 3]);
        b.add_flow(
            rule(
                0,
                5,
                &[(Field::InPort, 1)],
                vec![
                    Action::Resubmit {
                        in_port: Some(3),
                        table: None,
                    },
                    out(3),
                ],
            ),
            0,
        );
        b.add_flow(rule(0, 5, &[(Field::InPort, 3)], vec![out(2)]), 0);
        let x = xl(&mut b, &ipv4(1));
        assert_eq!(
            x.actions,
            vec![OdpAction::Output(2), OdpAction::Output(3)],
            "in_port restored"
        );
        // An infinite resubmit loop.
        b.add_flow(
            rule(
                0,
                5,
                &[(Field::InPort, 2)],
                vec![
                    out(1),
                    Action::Resubmit {
                        in_port: None,
                        table: Some(0),
                    },
                ],
            ),
            0,
        );
        assert_eq!(
            xl(&mut b, &ipv4(2)).actions,
            vec![OdpAction::Drop(DropReason::TooDeep)]
        );
    }

    #[test]
    fn set_field_is_committed_lazily_and_only_when_changed() {
        let mut b = bridge(&[1, 2, 3]);
        let set_dst = |v| Action::SetField {
            field: Field::Ipv4Dst,
            value: v,
            mask: 0xffff_ffff,
        };
        b.add_flow(
            rule(
                0,
                5,
                &[(Field::InPort, 1), (Field::EthType, 0x800)],
                vec![set_dst(0x0a000009), Action::GotoTable(1)],
            ),
            0,
        );
        // Table 1 sees the new value.
        b.add_flow(
            rule(
                1,
                5,
                &[(Field::EthType, 0x800), (Field::Ipv4Dst, 0x0a000009)],
                vec![out(2), out(3)],
            ),
            0,
        );
        let x = xl(&mut b, &ipv4(1));
        assert_eq!(
            x.actions,
            vec![
                OdpAction::SetMasked {
                    field: Field::Ipv4Dst,
                    value: 0x0a000009,
                    mask: 0xffff_ffff
                },
                OdpAction::Output(2),
                OdpAction::Output(3),
            ]
        );
        assert_eq!(x.mask.nw_dst, !0);
        // Already the value: nothing emitted.
        let mut f = ipv4(1);
        f.nw_dst = 0x0a000009;
        assert_eq!(
            xl(&mut b, &f).actions,
            vec![OdpAction::Output(2), OdpAction::Output(3)]
        );
        // Prerequisite not met (not IPv4): the set is skipped.
        let mut f = ipv4(1);
        f.dl_type = 0x86dd;
        b.add_flow(
            rule(0, 5, &[(Field::InPort, 1)], vec![set_dst(1), out(2)]),
            0,
        );
        let x = xl(&mut b, &f);
        assert_eq!(x.actions, vec![OdpAction::Output(2)]);
        assert_eq!(x.mask.dl_type, 0xffff);
    }

    #[test]
    fn tcp_port_rewrite_names_the_protocol() {
        let mut b = bridge(&[1, 2]);
        b.add_flow(
            rule(
                0,
                5,
                &[],
                vec![
                    Action::SetField {
                        field: Field::TcpDst,
                        value: 8080,
                        mask: 0xffff,
                    },
                    out(2),
                ],
            ),
            0,
        );
        let x = xl(&mut b, &ipv4(1));
        assert_eq!(
            x.actions[0],
            OdpAction::SetMasked {
                field: Field::TcpDst,
                value: 8080,
                mask: 0xffff
            }
        );
        assert_eq!(
            (x.mask.nw_proto, x.mask.dl_type, x.mask.tp_dst),
            (0xff, 0xffff, 0xffff)
        );
        let mut udp = ipv4(1);
        udp.nw_proto = 17;
        assert_eq!(xl(&mut b, &udp).actions, vec![OdpAction::Output(2)]);
    }

    #[test]
    fn dec_ttl() {
        let mut b = bridge(&[1, 2]);
        b.add_flow(rule(0, 5, &[], vec![Action::DecTtl, out(2)]), 0);
        let x = xl(&mut b, &ipv4(1));
        assert_eq!(
            x.actions,
            vec![
                OdpAction::SetMasked {
                    field: Field::NwTtl,
                    value: 63,
                    mask: 0xff
                },
                OdpAction::Output(2)
            ]
        );
        assert_eq!((x.mask.nw_ttl, x.mask.dl_type), (0xff, 0xffff));
        let mut f = ipv4(1);
        f.nw_ttl = 1;
        assert_eq!(
            xl(&mut b, &f).actions,
            vec![OdpAction::Drop(DropReason::TtlExceeded)]
        );
        b.set_controller_connected(true);
        assert_eq!(
            xl(&mut b, &f).actions,
            vec![OdpAction::Userspace { max_len: u16::MAX }]
        );
        // Not IP: dec_ttl does nothing.
        let arp = Flow {
            in_port: 1,
            dl_type: 0x0806,
            nw_ttl: 1,
            ..Flow::default()
        };
        let x = xl(&mut b, &arp);
        assert_eq!(x.actions, vec![OdpAction::Output(2)]);
        assert_eq!(x.mask.nw_ttl, 0);
    }

    #[test]
    fn controller_needs_a_connection() {
        let mut b = bridge(&[1]);
        b.add_flow(
            rule(0, 5, &[], vec![Action::Controller { max_len: 128 }]),
            0,
        );
        assert_eq!(
            xl(&mut b, &ipv4(1)).actions,
            vec![OdpAction::Drop(DropReason::NoController)]
        );
        b.set_controller_connected(true);
        assert_eq!(
            xl(&mut b, &ipv4(1)).actions,
            vec![OdpAction::Userspace { max_len: 128 }]
        );
    }

    #[test]
    fn flood_and_all() {
        let mut b = bridge(&[1, 2, 3]);
        b.add_port(4, false);
        b.add_flow(rule(0, 5, &[(Field::InPort, 1)], vec![Action::Flood]), 0);
        b.add_flow(rule(0, 5, &[(Field::InPort, 2)], vec![Action::All]), 0);
        let outs = |x: Xlation| x.actions;
        assert_eq!(
            outs(xl(&mut b, &ipv4(1))),
            vec![OdpAction::Output(2), OdpAction::Output(3)]
        );
        assert_eq!(
            outs(xl(&mut b, &ipv4(2))),
            vec![
                OdpAction::Output(1),
                OdpAction::Output(3),
                OdpAction::Output(4)
            ]
        );
    }

    #[test]
    fn normal_learns_and_forwards() {
        let mut b = bridge(&[1, 2, 3]);
        b.add_flow(rule(0, 5, &[], vec![Action::Normal]), 0);
        let mut f = ipv4(1);
        let v0 = b.version();
        let x = xl(&mut b, &f);
        assert_eq!(
            x.actions,
            vec![OdpAction::Output(2), OdpAction::Output(3)],
            "unknown: flood"
        );
        assert!(b.version() > v0, "learning bumps the version");
        assert_eq!(x.version, b.version());
        assert_eq!(x.mask.dl_src, [0xff; 6]);
        assert_eq!(x.mask.dl_dst, [0xff; 6]);
        assert_eq!(x.mask.in_port, !0);
        assert_eq!(x.mask.nw_dst, 0);
        // The reply goes straight to port 1 and teaches where 00:..:02 is.
        let reply = Flow {
            in_port: 2,
            dl_src: f.dl_dst,
            dl_dst: f.dl_src,
            ..f
        };
        assert_eq!(xl(&mut b, &reply).actions, vec![OdpAction::Output(1)]);
        assert_eq!(xl(&mut b, &f).actions, vec![OdpAction::Output(2)]);
        // Broadcast floods; a multicast source is dropped; to the ingress port is dropped.
        f.dl_dst = [0xff; 6];
        assert_eq!(
            xl(&mut b, &f).actions,
            vec![OdpAction::Output(2), OdpAction::Output(3)]
        );
        f.dl_src = [1, 0, 0, 0, 0, 9];
        assert_eq!(
            xl(&mut b, &f).actions,
            vec![OdpAction::Drop(DropReason::Action)]
        );
        let hairpin = Flow {
            in_port: 2,
            dl_dst: reply.dl_src,
            ..reply
        };
        let hairpin = Flow {
            dl_src: [0, 0, 0, 0, 0, 7],
            ..hairpin
        };
        assert_eq!(
            xl(&mut b, &hairpin).actions,
            vec![OdpAction::Drop(DropReason::LoopBack)]
        );
        // A VLAN is a separate learning domain.
        let mut tagged = ipv4(3);
        tagged.vlans[0] = Vlan {
            tpid: 0x8100,
            tci: VLAN_CFI | 10,
        };
        tagged.dl_src = [0, 0, 0, 0, 0, 3];
        tagged.dl_dst = [0, 0, 0, 0, 0, 1];
        assert_eq!(
            xl(&mut b, &tagged).actions,
            vec![OdpAction::Output(1), OdpAction::Output(2)]
        );
        // Without learning (revalidation), nothing changes.
        let v = b.version();
        let stranger = Flow {
            dl_src: [0, 0, 0, 0, 0, 0x55],
            ..ipv4(3)
        };
        translate(
            &mut b,
            &stranger,
            XlateParams {
                now_ns: 0,
                may_learn: false,
            },
            &mut NoExtensions,
        );
        assert_eq!(b.version(), v);
    }

    #[test]
    fn vlan_push_pop_and_mod_vid() {
        let mut b = bridge(&[1, 2]);
        b.add_flow(
            rule(
                0,
                5,
                &[(Field::InPort, 1)],
                vec![Action::SetVlanVid(10), out(2)],
            ),
            0,
        );
        let x = xl(&mut b, &ipv4(1));
        assert_eq!(
            x.actions,
            vec![
                OdpAction::PushVlan {
                    tpid: 0x8100,
                    tci: 10
                },
                OdpAction::Output(2)
            ]
        );
        let mut tagged = ipv4(1);
        tagged.vlans[0] = Vlan {
            tpid: 0x8100,
            tci: VLAN_CFI | (3 << VLAN_PCP_SHIFT) | 20,
        };
        let x = xl(&mut b, &tagged);
        assert_eq!(
            x.actions,
            vec![
                OdpAction::SetMasked {
                    field: Field::VlanTci,
                    value: 10,
                    mask: VLAN_VID_MASK as u128
                },
                OdpAction::Output(2)
            ]
        );
        b.add_flow(
            rule(
                0,
                5,
                &[(Field::InPort, 2)],
                vec![Action::PopVlan, Action::PushVlan(0x88a8), out(1)],
            ),
            0,
        );
        let x = xl(
            &mut b,
            &Flow {
                in_port: 2,
                ..tagged
            },
        );
        assert_eq!(
            x.actions,
            vec![
                OdpAction::PopVlan,
                OdpAction::PushVlan {
                    tpid: 0x88a8,
                    tci: 0
                },
                OdpAction::Output(1)
            ]
        );
        // Pop on an untagged packet does nothing.
        assert_eq!(
            xl(&mut b, &ipv4(2)).actions,
            vec![
                OdpAction::PushVlan {
                    tpid: 0x88a8,
                    tci: 0
                },
                OdpAction::Output(1)
            ]
        );
    }

    #[test]
    fn tos_pcp_table_port_and_later_fragments() {
        let mut b = bridge(&[1, 2]);
        b.add_flow(
            rule(
                0,
                5,
                &[(Field::InPort, 1)],
                vec![
                    Action::SetNwTos(0xb8),
                    Action::SetVlanPcp(5),
                    Action::Output {
                        port: OFPP_TABLE,
                        max_len: 0,
                    },
                ],
            ),
            0,
        );
        b.add_flow(rule(0, 5, &[(Field::InPort, 2)], vec![out(1)]), 0);
        b.add_flow(
            rule(
                0,
                9,
                &[(Field::InPort, 1), (Field::IpDscp, 0x2e)],
                vec![out(2)],
            ),
            0,
        );
        let mut f = ipv4(1);
        f.nw_tos = 0x03; // ECN bits survive mod_nw_tos.
        f.vlans[0] = Vlan {
            tpid: 0x8100,
            tci: VLAN_CFI | 7,
        };
        let x = xl(&mut b, &f);
        // mod_nw_tos keeps ECN; output:TABLE re-enters table 0, where the new DSCP matches.
        assert_eq!(
            x.actions,
            vec![
                OdpAction::SetMasked {
                    field: Field::VlanTci,
                    value: 5 << VLAN_PCP_SHIFT,
                    mask: VLAN_PCP_MASK as u128
                },
                OdpAction::SetMasked {
                    field: Field::IpDscp,
                    value: 0x2e,
                    mask: 0x3f
                },
                OdpAction::Output(2),
            ]
        );
        // An L4 rewrite skips a later fragment (it has no L4 header), and the mask says so.
        let mut b = bridge(&[1, 2]);
        b.add_flow(
            rule(
                0,
                5,
                &[],
                vec![
                    Action::SetField {
                        field: Field::TcpSrc,
                        value: 1,
                        mask: 0xffff,
                    },
                    out(2),
                ],
            ),
            0,
        );
        let mut frag = ipv4(1);
        frag.nw_frag = crate::flow::FRAG_ANY | FRAG_LATER;
        let x = xl(&mut b, &frag);
        assert_eq!(x.actions, vec![OdpAction::Output(2)]);
        assert_eq!(x.mask.nw_frag & FRAG_LATER, FRAG_LATER);
        // output:NORMAL is the normal action.
        let mut b = bridge(&[1, 2, 3]);
        b.add_flow(
            rule(
                0,
                5,
                &[],
                vec![Action::Output {
                    port: OFPP_NORMAL,
                    max_len: 0,
                }],
            ),
            0,
        );
        assert_eq!(
            xl(&mut b, &ipv4(1)).actions,
            vec![OdpAction::Output(2), OdpAction::Output(3)]
        );
    }

    #[test]
    fn trailing_header_changes_are_dropped_with_the_packet() {
        let mut b = bridge(&[1, 2]);
        b.add_flow(
            rule(0, 5, &[], vec![Action::PushVlan(0x8100), Action::DecTtl]),
            0,
        );
        assert_eq!(
            xl(&mut b, &ipv4(1)).actions,
            vec![OdpAction::Drop(DropReason::Action)]
        );
    }

    /// Hooks with named extensions and configurable filters / write sets.
    struct TestHooks {
        filters: Vec<(&'static str, bool)>,
        runs: Vec<String>,
        write_set: Option<Flow>,
    }

    impl XlateHooks for TestHooks {
        fn filter(&mut self, name: &str) -> Option<(u32, bool)> {
            self.runs.push(name.to_string());
            let i = self.filters.iter().position(|(n, _)| *n == name)?;
            Some((i as u32 + 100, self.filters[i].1))
        }
        fn ext_index(&self, name: &str) -> Option<u32> {
            name.strip_prefix("ext").and_then(|n| n.parse().ok())
        }
        fn bpf_write_set(&mut self, _ext: u32, _flow: &Flow, wc: &mut Flow) -> Option<Flow> {
            wc.dl_type = !0;
            self.write_set
        }
    }

    fn hooks(filters: Vec<(&'static str, bool)>, write_set: Option<Flow>) -> TestHooks {
        TestHooks {
            filters,
            runs: Vec::new(),
            write_set,
        }
    }

    #[test]
    fn filters_are_consulted_and_recorded() {
        let mut b = bridge(&[1, 2, 3]);
        let mut r = rule(0, 10, &[], vec![out(2)]);
        r.r#match.bpf_filters = vec!["fw".into()];
        b.add_flow(r, 0);
        b.add_flow(rule(0, 5, &[], vec![out(3)]), 0);
        let p = XlateParams::default();
        let x = translate(&mut b, &ipv4(1), p, &mut hooks(vec![("fw", true)], None));
        assert_eq!(
            (x.actions, x.filters),
            (vec![OdpAction::Output(2)], vec![(100, true)])
        );
        let x = translate(&mut b, &ipv4(1), p, &mut hooks(vec![("fw", false)], None));
        assert_eq!(
            (x.actions, x.filters),
            (vec![OdpAction::Output(3)], vec![(100, false)])
        );
        let x = translate(&mut b, &ipv4(1), p, &mut hooks(vec![], None));
        assert_eq!(
            x.actions,
            vec![OdpAction::Output(3)],
            "unknown filter: no match"
        );
    }

    #[test]
    fn bpf_freezes_and_resumes() {
        let mut b = bridge(&[1, 2, 3]);
        b.set_reclassify(Reclassify::Always);
        b.add_flow(
            rule(
                0,
                5,
                &[],
                vec![
                    Action::SetField {
                        field: Field::EthSrc,
                        value: 0x99,
                        mask: 0xffff_ffff_ffff,
                    },
                    Action::WriteMetadata {
                        value: 7,
                        mask: 0xff,
                    },
                    Action::Resubmit {
                        in_port: None,
                        table: Some(1),
                    },
                    out(3),
                ],
            ),
            0,
        );
        b.add_flow(
            rule(
                1,
                5,
                &[],
                vec![Action::Bpf("ext4".into()), Action::GotoTable(2)],
            ),
            0,
        );
        b.add_flow(rule(2, 5, &[(Field::Metadata, 7)], vec![out(2)]), 0);
        let p = XlateParams::default();
        let x = translate(&mut b, &ipv4(1), p, &mut hooks(vec![], None));
        let id = x.recirc.expect("recirculates");
        assert_eq!(
            x.actions,
            vec![
                OdpAction::SetMasked {
                    field: Field::EthSrc,
                    value: 0x99,
                    mask: 0xffff_ffff_ffff
                },
                OdpAction::Bpf(4),
                OdpAction::Recirc(id)
            ]
        );
        // Same flow again: same id (revalidation compares equal).
        assert_eq!(
            translate(&mut b, &ipv4(1), p, &mut hooks(vec![], None)).actions,
            x.actions
        );
        // Resume: the goto_table of table 1, then the resubmitter's output:3.
        let mut again = ipv4(1);
        again.recirc_id = id;
        let y = translate(&mut b, &again, p, &mut hooks(vec![], None));
        assert_eq!(y.actions, vec![OdpAction::Output(2), OdpAction::Output(3)]);
        assert_eq!(y.mask.recirc_id, !0);
        assert_eq!(y.rules.iter().map(|r| r.table).collect::<Vec<_>>(), vec![2]);
        // Unknown recirculation id.
        again.recirc_id = 999;
        assert_eq!(
            translate(&mut b, &again, p, &mut hooks(vec![], None)).actions,
            vec![OdpAction::Drop(DropReason::TableMiss)]
        );
        // Unknown extension.
        b.add_flow(rule(1, 5, &[], vec![Action::Bpf("nope".into())]), 0);
        assert_eq!(
            translate(&mut b, &ipv4(1), p, &mut hooks(vec![], None)).actions,
            vec![OdpAction::Drop(DropReason::ExtAborted)]
        );
    }

    #[test]
    fn revalidation_follows_table_changes_and_replays_filters() {
        let mut b = bridge(&[1, 2, 3]);
        let mut r = rule(0, 10, &[(Field::InPort, 1)], vec![out(2)]);
        r.r#match.bpf_filters = vec!["fw".into()];
        b.add_flow(r, 0);
        b.add_flow(rule(0, 5, &[], vec![out(3)]), 0);
        let mut h = hooks(vec![("fw", true), ("other", true)], None);
        let f = ipv4(1);
        let x = translate(&mut b, &f, XlateParams::default(), &mut h);
        assert_eq!(x.actions, vec![OdpAction::Output(2)]);
        // Extension indexes as `hooks` gives them; filters must come from the recording.
        struct Idx;
        impl XlateHooks for Idx {
            fn filter(&mut self, _: &str) -> Option<(u32, bool)> {
                panic!("revalidation must not run filters")
            }
            fn ext_index(&self, name: &str) -> Option<u32> {
                match name {
                    "fw" => Some(100),
                    "other" => Some(101),
                    _ => None,
                }
            }
        }
        assert_eq!(
            revalidate(&mut b, &f, &x, XlateParams::default(), &mut Idx),
            Revalidation::Unchanged
        );
        b.modify_flows(
            &RuleSelector::loose(Some(0), Match::catchall()),
            &[out(3)],
            None,
            false,
        );
        let Revalidation::Changed(y) = revalidate(&mut b, &f, &x, XlateParams::default(), &mut Idx)
        else {
            panic!("actions changed")
        };
        assert_eq!(y.actions, vec![OdpAction::Output(3)]);
        // A new higher-priority rule with another filter: the recording cannot answer it.
        let mut r = rule(0, 20, &[], vec![out(2)]);
        r.r#match.bpf_filters = vec!["other".into()];
        b.add_flow(r, 0);
        assert_eq!(
            revalidate(&mut b, &f, &x, XlateParams::default(), &mut Idx),
            Revalidation::Invalid
        );
    }

    #[test]
    fn filters_after_a_rewrite_wait_for_a_recirculation() {
        let mut b = bridge(&[1, 2, 3]);
        b.add_flow(
            rule(
                0,
                5,
                &[],
                vec![
                    Action::SetField {
                        field: Field::EthDst,
                        value: 7,
                        mask: 0xffff_ffff_ffff,
                    },
                    Action::Resubmit {
                        in_port: Some(2),
                        table: Some(1),
                    },
                    out(3),
                ],
            ),
            0,
        );
        let mut r = rule(1, 5, &[], vec![out(1)]);
        r.r#match.bpf_filters = vec!["fw".into()];
        b.add_flow(r, 0);
        let p = XlateParams::default();
        let mut h = hooks(vec![("fw", true)], None);
        let x = translate(&mut b, &ipv4(1), p, &mut h);
        let id = x.recirc.expect("recirculates before the filter");
        assert_eq!(
            x.actions,
            vec![
                OdpAction::SetMasked {
                    field: Field::EthDst,
                    value: 7,
                    mask: 0xffff_ffff_ffff
                },
                OdpAction::Recirc(id)
            ]
        );
        assert!(
            h.runs.is_empty(),
            "the filter did not run on the stale packet"
        );
        let state = b.frozen(id).unwrap();
        assert_eq!(
            state.frames[0].actions[0],
            Action::Resubmit {
                in_port: Some(2),
                table: Some(1)
            }
        );
        assert_eq!(state.frames[0].in_port, 1);
        let y = translate(
            &mut b,
            &Flow {
                recirc_id: id,
                ..ipv4(1)
            },
            p,
            &mut h,
        );
        assert_eq!(y.actions, vec![OdpAction::Output(1), OdpAction::Output(3)]);
        assert_eq!(h.runs, vec!["fw"]);
        // Unchanged packet: the filter runs in the first pass.
        let x = translate(
            &mut b,
            &Flow {
                dl_dst: [0, 0, 0, 0, 0, 7],
                ..ipv4(1)
            },
            p,
            &mut h,
        );
        assert_eq!(x.actions, vec![OdpAction::Output(1), OdpAction::Output(3)]);
    }

    #[test]
    fn bpf_at_the_end_needs_no_recirculation() {
        let mut b = bridge(&[1, 2]);
        b.set_reclassify(Reclassify::Always);
        b.add_flow(rule(0, 5, &[], vec![Action::Bpf("ext1".into())]), 0);
        let x = translate(
            &mut b,
            &ipv4(1),
            XlateParams::default(),
            &mut hooks(vec![], None),
        );
        assert_eq!(
            x.actions,
            vec![OdpAction::Bpf(1), OdpAction::Drop(DropReason::Action)]
        );
        assert_eq!(b.frozen_len(), 0);
    }

    #[test]
    fn verifier_policy_continues_when_writes_do_not_matter() {
        let mut b = bridge(&[1, 2, 3]);
        b.add_flow(
            rule(
                0,
                5,
                &[],
                vec![Action::Bpf("ext1".into()), Action::GotoTable(1)],
            ),
            0,
        );
        b.add_flow(rule(1, 5, &[(Field::TcpDst, 80)], vec![out(2)]), 0);
        b.add_flow(rule(1, 1, &[], vec![out(3)]), 0);
        let p = XlateParams::default();
        // Writes the payload only: continue, one recirculation avoided.
        let x = translate(
            &mut b,
            &ipv4(1),
            p,
            &mut hooks(vec![], Some(Flow::default())),
        );
        assert_eq!(
            (x.actions.clone(), x.recircs_avoided),
            (vec![OdpAction::Bpf(1), OdpAction::Output(2)], 1)
        );
        // Writes the IPv4 TTL, which table 1 does not read: continue speculatively.
        let ttl = Flow {
            nw_ttl: 0xff,
            ..Flow::default()
        };
        let x = translate(&mut b, &ipv4(1), p, &mut hooks(vec![], Some(ttl)));
        assert_eq!(
            (x.actions.clone(), x.recircs_avoided),
            (vec![OdpAction::Bpf(1), OdpAction::Output(2)], 1)
        );
        assert_eq!(
            x.mask.dl_type, 0xffff,
            "the write-set mapping's reads are kept"
        );
        assert_eq!(
            x.mask.tp_dst, 0xffff,
            "the post-extension lookup's reads are kept"
        );
        // Writes tp_dst, which table 1 matches on: recirculate.
        let port = Flow {
            tp_dst: 0xffff,
            ..Flow::default()
        };
        let x = translate(&mut b, &ipv4(1), p, &mut hooks(vec![], Some(port)));
        assert!(x.recirc.is_some());
        assert_eq!(x.recircs_avoided, 0);
        assert_eq!(
            x.mask.tp_dst, 0xffff,
            "the abandoned speculation's reads decided the outcome"
        );
        // A filter after the extension forces a recirculation, and runs only once overall.
        let mut r = rule(0, 9, &[], vec![Action::GotoTable(1)]);
        r.r#match.bpf_filters = vec!["pre".into()];
        b.add_flow(r, 0);
        b.add_flow(
            rule(
                0,
                8,
                &[],
                vec![Action::Bpf("ext1".into()), Action::GotoTable(2)],
            ),
            0,
        );
        let mut r = rule(2, 5, &[], vec![out(2)]);
        r.r#match.bpf_filters = vec!["post".into()];
        b.add_flow(r, 0);
        let mut h = hooks(vec![("pre", false), ("post", true)], Some(ttl));
        let x = translate(&mut b, &ipv4(1), p, &mut h);
        assert!(x.recirc.is_some());
        assert_eq!(
            h.runs,
            vec!["pre"],
            "no filter ran twice or on a stale packet"
        );
        assert_eq!(x.filters, vec![(100, false)]);
    }
}
