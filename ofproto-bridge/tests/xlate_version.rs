//! The bridge's version contract: a change that leaves [`Bridge::version`] where it was never
//! changes a translation. The datapath relies on this to keep cached flows without
//! revalidating them while the version stands still.
//!
//! Random bridges go through random interleavings of every kind of change (flow adds,
//! modifies and deletes, expiry, MAC learning, ports, controller, policy, statistics); after
//! each one whose version did not move, a set of flows must translate exactly as before.

mod xlate_common;

use ofproto_bridge::bridge::{Bridge, Reclassify};
use ofproto_bridge::flow::Flow;
use ofproto_bridge::rule::Match;
use ofproto_bridge::table::RuleSelector;
use ofproto_bridge::xlate::{translate, XlateHooks, XlateParams, Xlation};
use proptest::prelude::*;
use xlate_common::{arb_action, arb_bridge, arb_flow, arb_match, arb_rule, write_set, MACS};

/// Filters that answer from the key alone, so repeated translations agree.
struct Hooks(Flow);

impl XlateHooks for Hooks {
    fn filter(&mut self, name: &str) -> Option<(u32, bool)> {
        let idx = name.strip_prefix("filt")?.parse::<u32>().ok()? + 10;
        Some((idx, self.0.hash_exact(idx as u64) & 1 == 1))
    }
    fn ext_index(&self, name: &str) -> Option<u32> {
        name.strip_prefix("ext")?.parse().ok()
    }
    fn bpf_write_set(&mut self, ext: u32, flow: &Flow, wc: &mut Flow) -> Option<Flow> {
        write_set(ext, flow, wc)
    }
}

#[derive(Clone, Debug)]
enum Change {
    Add(ofproto_bridge::rule::Rule, u16, u16),
    Modify(
        Option<u8>,
        Match,
        Vec<ofproto_bridge::action::Action>,
        Option<u16>,
    ),
    Delete(Option<u8>, Match, Option<u16>),
    Expire(u64),
    Learn(usize, u16, u32),
    Port(u32, bool),
    RemovePort(u32),
    Controller(bool),
    Policy(Reclassify),
    Credit(u64, u64),
}

fn arb_change() -> impl Strategy<Value = Change> {
    let table = prop::option::of(0u8..4);
    prop_oneof![
        3 => (arb_rule(), prop::sample::select(vec![0u16, 0, 1, 3]), prop::sample::select(vec![0u16, 0, 2]))
            .prop_map(|(r, idle, hard)| Change::Add(r, idle, hard)),
        2 => (table.clone(), arb_match(), prop::collection::vec(arb_action(), 0..3), prop::option::of(0u16..4))
            .prop_map(|(t, m, a, p)| Change::Modify(t, m, a, p)),
        2 => (table, arb_match(), prop::option::of(0u16..4)).prop_map(|(t, m, p)| Change::Delete(t, m, p)),
        1 => (0u64..5).prop_map(|s| Change::Expire(s * 1_000_000_000)),
        2 => (0usize..2, prop::sample::select(vec![0u16, 10, 20]), 1u32..5)
            .prop_map(|(m, v, p)| Change::Learn(m, v, p)),
        1 => (1u32..6, any::<bool>()).prop_map(|(p, f)| Change::Port(p, f)),
        1 => (1u32..6).prop_map(Change::RemovePort),
        1 => any::<bool>().prop_map(Change::Controller),
        1 => prop::sample::select(vec![Reclassify::Always, Reclassify::Verifier, Reclassify::NeverUnsafe])
            .prop_map(Change::Policy),
        1 => (0u64..8, 0u64..5).prop_map(|(id, s)| Change::Credit(id, s * 1_000_000_000)),
    ]
}

fn apply(b: &mut Bridge, c: &Change) {
    match c.clone() {
        Change::Add(mut r, idle, hard) => {
            r.idle_timeout = idle;
            r.hard_timeout = hard;
            b.add_flow(r, 0);
        }
        Change::Modify(t, m, a, p) => {
            let sel = match p {
                Some(p) => RuleSelector::strict(t, m, p),
                None => RuleSelector::loose(t, m),
            };
            b.modify_flows(&sel, &a, None, false);
        }
        Change::Delete(t, m, p) => {
            let sel = match p {
                Some(p) => RuleSelector::strict(t, m, p),
                None => RuleSelector::loose(t, m),
            };
            b.delete_flows(&sel);
        }
        Change::Expire(now) => {
            b.expire(now);
        }
        Change::Learn(m, v, p) => {
            b.learn_mac(v, MACS[m], p, 0);
        }
        Change::Port(p, f) => b.add_port(p, f),
        Change::RemovePort(p) => {
            b.remove_port(p);
        }
        Change::Controller(c) => b.set_controller_connected(c),
        Change::Policy(p) => b.set_reclassify(p),
        Change::Credit(id, now) => {
            b.credit(ofproto_bridge::table::RuleId(id), 1, 64, now);
        }
    }
}

fn translations(b: &mut Bridge, flows: &[Flow]) -> Vec<Xlation> {
    flows
        .iter()
        .map(|f| {
            let x = translate(
                b,
                f,
                XlateParams {
                    now_ns: 0,
                    may_learn: false,
                },
                &mut Hooks(*f),
            );
            // Frozen states are interned, so within one bridge equal ids mean equal states.
            Xlation { version: 0, ..x }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn unchanged_version_means_unchanged_translations(
        b in arb_bridge(),
        changes in prop::collection::vec(arb_change(), 1..30),
        flows in prop::collection::vec(arb_flow(), 1..8),
    ) {
        let mut b = b;
        let mut before = translations(&mut b, &flows);
        for c in &changes {
            let v = b.version();
            apply(&mut b, c);
            let after = translations(&mut b, &flows);
            if b.version() == v {
                prop_assert_eq!(&after, &before, "{:?} kept the version but changed a translation", c);
            }
            before = after;
        }
    }
}
