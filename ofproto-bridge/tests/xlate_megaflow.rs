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
//! Recirculated packets are covered too: when `X` ends in `Recirc(id)`, a random flow with
//! that `recirc_id` (the packet as an extension might have rewritten it) is checked the same way.

use ofproto_bridge::action::{
    Action, PortNo, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_NORMAL,
};
use ofproto_bridge::bridge::{Bridge, FrozenState, Reclassify};
use ofproto_bridge::field::Field;
use ofproto_bridge::flow::{Flow, Vlan, VLAN_CFI};
use ofproto_bridge::odp::OdpAction;
use ofproto_bridge::rule::{Match, Rule};
use ofproto_bridge::xlate::{translate, XlateHooks, XlateParams, Xlation};
use proptest::prelude::*;

const MACS: [[u8; 6]; 4] = [
    [0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 2],
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    [1, 0, 0x5e, 0, 0, 1],
];
const DL_TYPES: [u16; 3] = [0x0800, 0x86dd, 0x0806];

fn mac_num(m: [u8; 6]) -> u128 {
    m.iter().fold(0u128, |a, b| a << 8 | *b as u128)
}

/// One match field constraint: (field, value, mask) drawn from small sets.
fn arb_constraint() -> impl Strategy<Value = (Field, u128, u128)> {
    prop_oneof![
        (1u128..5).prop_map(|v| (Field::InPort, v, 0xffff_ffff)),
        (0u128..4, prop::sample::select(vec![1u128, 3])).prop_map(|(v, m)| (Field::Metadata, v, m)),
        (0usize..4).prop_map(|i| (Field::EthDst, mac_num(MACS[i]), 0xffff_ffff_ffff)),
        (0usize..2).prop_map(|i| (Field::EthSrc, mac_num(MACS[i]), 0xffff_ffff_ffff)),
        (0usize..3).prop_map(|i| (Field::EthType, DL_TYPES[i] as u128, 0xffff)),
        prop::sample::select(vec![0u128, 0x1000 | 10, 0x1000 | 20]).prop_map(|v| (
            Field::VlanVid,
            v,
            0x1fff
        )),
        prop::sample::select(vec![6u128, 17]).prop_map(|v| (Field::IpProto, v, 0xff)),
        (
            0u128..4,
            prop::sample::select(vec![0xffff_ffffu128, 0xffff_fffe, 0xffff_ff00])
        )
            .prop_map(|(v, m)| (Field::Ipv4Dst, 0x0a00_0000 | v, m)),
        prop::sample::select(vec![80u128, 443]).prop_map(|v| (Field::TcpDst, v, 0xffff)),
        prop::sample::select(vec![0u128, 1, 2, 64]).prop_map(|v| (Field::NwTtl, v, 0xff)),
    ]
}

fn arb_match() -> impl Strategy<Value = Match> {
    (
        prop::collection::vec(arb_constraint(), 0..3),
        prop::option::weighted(0.15, 0u8..2),
    )
        .prop_map(|(cs, filter)| {
            let mut m = Match::default();
            for (f, v, mask) in cs {
                f.or_mask(&mut m.mask, mask);
                let cur = f.get(&m.flow);
                f.set(&mut m.flow, (cur & !mask) | (v & mask));
            }
            m.flow = m.flow.masked(&m.mask);
            m.bpf_filters = filter.map(|i| format!("filt{i}")).into_iter().collect();
            m
        })
}

fn arb_action() -> impl Strategy<Value = Action> {
    let port = prop::sample::select(vec![
        1,
        2,
        3,
        4,
        5,
        OFPP_IN_PORT,
        OFPP_CONTROLLER,
        OFPP_FLOOD,
        OFPP_NORMAL,
    ]);
    prop_oneof![
        3 => port.prop_map(|p: PortNo| Action::Output { port: p, max_len: 0 }),
        2 => Just(Action::Normal),
        1 => Just(Action::Flood),
        1 => Just(Action::All),
        1 => Just(Action::InPort),
        1 => (0u16..3).prop_map(|l| Action::Controller { max_len: l * 64 }),
        2 => (0usize..2).prop_map(|i| Action::SetField { field: Field::EthSrc, value: mac_num(MACS[i]), mask: 0xffff_ffff_ffff }),
        2 => (0u128..4, prop::sample::select(vec![0xffff_ffffu128, 0xff]))
            .prop_map(|(v, m)| Action::SetField { field: Field::Ipv4Dst, value: 0x0a00_0000 | v, mask: m }),
        1 => prop::sample::select(vec![80u128, 443]).prop_map(|v| Action::SetField { field: Field::TcpDst, value: v, mask: 0xffff }),
        1 => prop::sample::select(vec![10u128, 20]).prop_map(|v| Action::SetField { field: Field::VlanVid, value: 0x1000 | v, mask: 0x1fff }),
        1 => (1u128..4).prop_map(|v| Action::SetField { field: Field::InPort, value: v, mask: 0xffff_ffff }),
        1 => (0u8..3).prop_map(Action::SetNwTtl),
        1 => Just(Action::SetNwTos(0x20)),
        1 => prop::sample::select(vec![10u16, 20]).prop_map(Action::SetVlanVid),
        1 => Just(Action::SetVlanPcp(3)),
        1 => Just(Action::PushVlan(0x8100)),
        1 => Just(Action::PopVlan),
        3 => Just(Action::DecTtl),
        2 => (prop::option::of(1u32..4), prop::option::of(0u8..4)).prop_map(|(p, t)| Action::Resubmit { in_port: p, table: t }),
        2 => (0u64..4, prop::sample::select(vec![1u64, 3])).prop_map(|(v, m)| Action::WriteMetadata { value: v, mask: m }),
        2 => (1u8..4).prop_map(Action::GotoTable),
        4 => prop::sample::select(vec!["ext1", "ext2", "ext2", "ext3", "ext3", "nope"]).prop_map(|n| Action::Bpf(n.to_string())),
    ]
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    let table = prop_oneof![3 => Just(0u8), 2 => 1u8..4];
    (
        table,
        0u16..4,
        arb_match(),
        prop::collection::vec(arb_action(), 0..5),
    )
        .prop_map(|(table, priority, m, mut actions)| {
            // goto_table is an instruction: it comes last.
            if let Some(i) = actions
                .iter()
                .position(|a| matches!(a, Action::GotoTable(_)))
            {
                let g = actions.remove(i);
                actions.push(g);
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
        })
}

fn arb_flow() -> impl Strategy<Value = Flow> {
    (
        (1u32..5, 0u64..4, 0usize..4, 0usize..2, 0usize..3),
        (
            0usize..3,
            0usize..3,
            prop::sample::select(vec![6u8, 17]),
            0u32..4,
            prop::sample::select(vec![80u16, 443, 22]),
        ),
        (prop::sample::select(vec![0u8, 1, 2, 64]), any::<[u64; 4]>()),
    )
        .prop_map(
            |((in_port, meta, dst, src, dl), (v0, v1, proto, nw_dst, tp_dst), (ttl, noise))| {
                let tag = |i: usize| match i {
                    0 => Vlan::default(),
                    1 => Vlan {
                        tpid: 0x8100,
                        tci: VLAN_CFI | 10,
                    },
                    _ => Vlan {
                        tpid: 0x8100,
                        tci: VLAN_CFI | 20 | (5 << 13),
                    },
                };
                let mut f = Flow {
                    in_port,
                    metadata: meta | (noise[0] << 8),
                    dl_dst: MACS[dst],
                    dl_src: MACS[src],
                    dl_type: DL_TYPES[dl],
                    nw_proto: proto,
                    nw_dst: 0x0a00_0000 | nw_dst,
                    nw_src: noise[1] as u32,
                    tp_dst,
                    tp_src: (noise[1] >> 32) as u16,
                    nw_ttl: ttl,
                    nw_tos: (noise[1] >> 48) as u8,
                    ipv6_src: (noise[2] as u128 | (noise[3] as u128) << 64).to_be_bytes(),
                    ..Flow::default()
                };
                f.vlans[0] = tag(v0);
                if v0 != 0 {
                    f.vlans[1] = tag(v1);
                }
                f
            },
        )
}

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
        name.strip_prefix("ext")?.parse().ok()
    }

    /// ext1 writes nothing the key sees; ext2 writes the TTL of IP packets and the
    /// destination MAC otherwise; ext3 cannot be bounded.
    fn bpf_write_set(&mut self, ext: u32, flow: &Flow, wc: &mut Flow) -> Option<Flow> {
        match ext {
            1 => Some(Flow::default()),
            2 => {
                wc.dl_type = !0;
                let mut ws = Flow::default();
                if flow.is_ip_any() {
                    ws.nw_ttl = !0;
                } else {
                    ws.dl_dst = [0xff; 6];
                }
                Some(ws)
            }
            _ => None,
        }
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
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn flows_agreeing_on_the_mask_translate_identically(
        rules in prop::collection::vec(arb_rule(), 0..24),
        catchalls in prop::collection::vec(prop::option::weighted(0.5, prop::collection::vec(arb_action(), 0..4)), 4),
        flows in prop::collection::vec(arb_flow(), 1..6),
        noises in prop::collection::vec(small_noise(), 6),
        policy in prop::sample::select(vec![Reclassify::Always, Reclassify::Verifier, Reclassify::NeverUnsafe]),
        controller in any::<bool>(),
        learned in prop::collection::vec((0usize..2, prop::sample::select(vec![0u16, 10, 20]), 1u32..5), 0..4),
        resumed in arb_flow(),
    ) {
        let mut b = Bridge::new();
        for p in 1..=4 {
            b.add_port(p, p != 4);
        }
        b.set_controller_connected(controller);
        b.set_reclassify(policy);
        for (mac, vlan, port) in learned {
            b.learn_mac(vlan, MACS[mac], port, 0);
        }
        for r in rules {
            b.add_flow(r, 0);
        }
        for (table, actions) in catchalls.into_iter().enumerate() {
            if let Some(actions) = actions {
                let r = Rule { table: table as u8, priority: 0, cookie: 0, idle_timeout: 0, hard_timeout: 0, r#match: Match::catchall(), actions };
                b.add_flow(r, 0);
            }
        }
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
