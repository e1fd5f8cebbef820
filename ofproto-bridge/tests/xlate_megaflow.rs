//! The megaflow property of translation, property-tested.
//!
//! For random flow tables (matches over a small set of fields and values, so that rules
//! overlap; actions including `goto_table`, `resubmit`, set-field, `dec_ttl`, `normal`, VLAN
//! pushes and pops, filters and extension actions under every reclassification policy) and a
//! random flow `f` with translation `X`, every flow `g` that agrees with `f` on `X.mask`
//! translates to the same actions, rules, drop reason and mask, given that the filters it
//! consults answer as they did for `f` (which is what a megaflow hit re-checks). Each
//! translation starts from a clone of the same bridge, so MAC learning done by one does not
//! leak into the other; learning is on and the MAC table is pre-populated.
//!
//! Revalidation of each translation against the bridge it left behind finds it unchanged,
//! unless its own MAC learning changed the bridge's version.
//!
//! Recirculated packets are covered too: when `X` ends in `Recirc(id)`, a random flow with
//! that `recirc_id` (the packet as an extension might have rewritten it) is checked the same way.

mod xlate_common;

use ofproto_bridge::bridge::{Bridge, FrozenState};
use ofproto_bridge::flow::Flow;
use ofproto_bridge::odp::OdpAction;
use ofproto_bridge::xlate::{
    revalidate, translate, Revalidation, XlateHooks, XlateParams, Xlation,
};
use proptest::prelude::*;
use xlate_common::{arb_bridge, arb_flow, write_set};

/// Filter answers: computed from the flow for `f`, replayed in order for `g`.
struct Hooks {
    flow: Flow,
    replay: Option<Vec<(String, u32, bool)>>,
    log: Vec<(String, u32, bool)>,
}

impl XlateHooks for Hooks {
    fn filter(&mut self, name: &str) -> Option<(u32, bool)> {
        let idx = name.strip_prefix("filt")?.parse::<u32>().ok()? + 10;
        let ok = match &self.replay {
            Some(r) => {
                let (n, i, ok) = r
                    .get(self.log.len())
                    .expect("g ran more filters than f")
                    .clone();
                assert_eq!(
                    (n.as_str(), i),
                    (name, idx),
                    "g ran different filters than f"
                );
                ok
            }
            None => self.flow.hash_exact(idx as u64) & 1 == 1,
        };
        self.log.push((name.to_string(), idx, ok));
        Some((idx, ok))
    }

    fn ext_index(&self, name: &str) -> Option<u32> {
        match name.strip_prefix("filt") {
            Some(n) => Some(n.parse::<u32>().ok()? + 10),
            None => name.strip_prefix("ext")?.parse().ok(),
        }
    }

    fn bpf_write_set(&mut self, ext: u32, flow: &Flow, wc: &mut Flow) -> Option<Flow> {
        write_set(ext, flow, wc)
    }
}

type FilterLog = Vec<(String, u32, bool)>;

/// Translates `f` on a copy of `b`; also returns the filter answers and the frozen state
/// the translation recirculates to (ids are per bridge copy, so states are what to compare).
fn xlate(
    b: &Bridge,
    f: &Flow,
    replay: Option<FilterLog>,
) -> (Xlation, FilterLog, Option<FrozenState>) {
    let mut b = b.clone();
    let mut h = Hooks {
        flow: *f,
        replay,
        log: Vec::new(),
    };
    let x = translate(
        &mut b,
        f,
        XlateParams {
            now_ns: 1,
            may_learn: true,
        },
        &mut h,
    );
    let frozen = x
        .recirc
        .map(|id| FrozenState::clone(b.frozen(id).expect("recirc id is frozen")));
    (x, h.log, frozen)
}

/// `f` with every bit outside `mask` replaced by the corresponding bit of `noise`.
fn vary(f: &Flow, mask: &Flow, noise: &[u64; 16]) -> Flow {
    let mut g = *f;
    for ((w, m), n) in g.words_mut().iter_mut().zip(mask.words()).zip(noise) {
        *w = (*w & m) | (n & !m);
    }
    g.pad = [0; 4];
    g
}

fn check(bridge: &Bridge, f: &Flow, noises: &[[u64; 16]]) -> Result<Xlation, TestCaseError> {
    let (x, log, frozen) = xlate(bridge, f, None);
    prop_assert_eq!(x.filters.len(), log.len());
    // Determinism first: the same flow again.
    let (x2, _, frozen2) = xlate(bridge, f, Some(log.clone()));
    prop_assert_eq!(&x2, &x);
    prop_assert_eq!(&frozen2, &frozen);
    // Whether the translation may write its MAC learning to the bridge changes nothing else.
    let mut quiet = bridge.clone();
    let mut h = Hooks {
        flow: *f,
        replay: Some(log.clone()),
        log: Vec::new(),
    };
    let xq = translate(
        &mut quiet,
        f,
        XlateParams {
            now_ns: 1,
            may_learn: false,
        },
        &mut h,
    );
    prop_assert_eq!(
        (&xq.actions, &xq.mask, &xq.rules, &xq.filters),
        (&x.actions, &x.mask, &x.rules, &x.filters)
    );
    prop_assert_eq!(quiet.version(), bridge.version());
    // Revalidating the entry against the bridge as its translation left it (learning done,
    // continuation frozen) finds it unchanged, without running any filter.
    let mut after = bridge.clone();
    let mut h = Hooks {
        flow: *f,
        replay: Some(log.clone()),
        log: Vec::new(),
    };
    let x3 = translate(
        &mut after,
        f,
        XlateParams {
            now_ns: 1,
            may_learn: true,
        },
        &mut h,
    );
    let mut h = Hooks {
        flow: *f,
        replay: Some(Vec::new()),
        log: Vec::new(),
    };
    let rv = revalidate(
        &mut after,
        f,
        &x3,
        XlateParams {
            now_ns: 2,
            may_learn: true,
        },
        &mut h,
    );
    if x3.version == bridge.version() {
        prop_assert_eq!(rv, Revalidation::Unchanged);
    }
    // Otherwise the translation's own MAC learning changed the table (and the version), and
    // a second look may legitimately differ: a later `normal` in the same pipeline did not
    // see that learning.

    for noise in noises {
        // Half the variations only touch a few words, so g is often "close" to f.
        let g = vary(f, &x.mask, noise);
        prop_assert_eq!(g.masked(&x.mask), f.masked(&x.mask));
        let (y, _, gfrozen) = xlate(bridge, &g, Some(log.clone()));
        prop_assert_eq!(
            &y.actions,
            &x.actions,
            "f={:?}\ng={:?}\nmask={:?}",
            f,
            g,
            x.mask
        );
        prop_assert_eq!(
            &gfrozen,
            &frozen,
            "the continuation must not depend on wildcarded bits"
        );
        prop_assert_eq!(&y.rules, &x.rules);
        prop_assert_eq!(&y.filters, &x.filters);
        prop_assert_eq!(y.drop, x.drop);
        prop_assert_eq!(y.mask, x.mask, "same decisions consult the same bits");
    }
    Ok(x)
}

fn small_noise() -> impl Strategy<Value = [u64; 16]> {
    prop_oneof![
        any::<[u64; 16]>(),
        // Sparse noise: mostly the original bits, a few flipped (random values rarely hit the
        // small value sets the rules use; flipping single bits does).
        (any::<[u64; 16]>(), any::<[u64; 16]>()).prop_map(|(a, b)| {
            let mut o = [0u64; 16];
            for i in 0..16 {
                o[i] = a[i] & b[i] & (a[i] >> 7);
            }
            o
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn flows_agreeing_on_the_mask_translate_identically(
        b in arb_bridge(),
        flows in prop::collection::vec(arb_flow(), 1..6),
        noises in prop::collection::vec(small_noise(), 4),
        others in prop::collection::vec(arb_flow(), 4),
        resumed in arb_flow(),
    ) {
        for f in flows {
            // Noise is relative to f: XOR it in so that sparse noise flips few bits.
            let noises: Vec<[u64; 16]> = noises
                .iter()
                .map(|n| {
                    let mut o = *n;
                    for (o, w) in o.iter_mut().zip(f.words()) {
                        *o ^= w;
                    }
                    o
                })
                // Other flows from the same value sets: wildcarded fields then take values
                // the rules care about (random bits rarely hit an Ethertype or a port).
                .chain(others.iter().map(|o| *o.words()))
                .collect();
            let mut fb = b.clone();
            let x = check(&b, &f, &noises)?;
            if let Some(id) = x.recirc {
                // The recirculated packet, possibly rewritten: resume from a bridge that holds
                // the frozen state.
                translate(&mut fb, &f, XlateParams { now_ns: 1, may_learn: true }, &mut Hooks { flow: f, replay: None, log: Vec::new() });
                prop_assert!(fb.frozen(id).is_some());
                let r = Flow { recirc_id: id, ..resumed };
                let y = check(&fb, &r, &noises)?;
                prop_assert!(!matches!(y.actions.first(), Some(OdpAction::Recirc(_))));
            }
        }
    }
}
