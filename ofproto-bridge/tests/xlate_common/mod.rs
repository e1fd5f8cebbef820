//! Shared generators for the translation property tests: random flow tables over a small
//! set of fields and values (so that rules overlap), random flows, a random bridge, and the
//! model extensions (their write sets and their effect on a flow key).

#![allow(dead_code, reason = "each test binary uses a different subset")]

use ofproto_bridge::action::{
    Action, PortNo, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_NORMAL,
};
use ofproto_bridge::bridge::{Bridge, Reclassify};
use ofproto_bridge::field::Field;
use ofproto_bridge::flow::{Flow, Vlan, VLAN_CFI};
use ofproto_bridge::rule::{Match, Rule};
use proptest::prelude::*;

/// Ethernet addresses used by matches, flows and actions (incl. broadcast and multicast).
pub const MACS: [[u8; 6]; 4] = [
    [0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 2],
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    [1, 0, 0x5e, 0, 0, 1],
];
/// Ethertypes used by matches and flows.
pub const DL_TYPES: [u16; 3] = [0x0800, 0x86dd, 0x0806];

/// An Ethernet address as a field value.
pub fn mac_num(m: [u8; 6]) -> u128 {
    m.iter().fold(0u128, |a, b| a << 8 | *b as u128)
}

/// One match field constraint: (field, value, mask) from small sets.
pub fn arb_constraint() -> impl Strategy<Value = (Field, u128, u128)> {
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

/// A random match, sometimes with a filter.
pub fn arb_match() -> impl Strategy<Value = Match> {
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

/// A random action.
pub fn arb_action() -> impl Strategy<Value = Action> {
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

/// A random rule in tables 0..=3.
pub fn arb_rule() -> impl Strategy<Value = Rule> {
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

/// A random flow key with values from the same small sets plus noise elsewhere.
pub fn arb_flow() -> impl Strategy<Value = Flow> {
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

/// A bridge with ports 1..=4 (4 without flooding), random rules, optional catch-all rules
/// per table, a pre-populated MAC table, a random controller state and a policy.
pub fn arb_bridge() -> impl Strategy<Value = Bridge> {
    (
        prop::collection::vec(arb_rule(), 0..24),
        prop::collection::vec(
            prop::option::weighted(0.5, prop::collection::vec(arb_action(), 0..4)),
            4,
        ),
        prop::sample::select(vec![
            Reclassify::Always,
            Reclassify::Verifier,
            Reclassify::NeverUnsafe,
        ]),
        any::<bool>(),
        prop::collection::vec(
            (0usize..2, prop::sample::select(vec![0u16, 10, 20]), 1u32..5),
            0..4,
        ),
    )
        .prop_map(|(rules, catchalls, policy, controller, learned)| {
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
                    let r = Rule {
                        table: table as u8,
                        priority: 0,
                        cookie: 0,
                        idle_timeout: 0,
                        hard_timeout: 0,
                        r#match: Match::catchall(),
                        actions,
                    };
                    b.add_flow(r, 0);
                }
            }
            b
        })
}

/// The model extensions' write sets: ext1 writes nothing the key sees (payload only); ext2
/// writes the TTL of IP packets and the destination MAC of others; ext3 cannot be bounded.
pub fn write_set(ext: u32, flow: &Flow, wc: &mut Flow) -> Option<Flow> {
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

/// What the model extensions do to a packet (as its flow key), within their write sets.
pub fn ext_effect(ext: u32, flow: &mut Flow) {
    match ext {
        2 if flow.is_ip_any() => flow.nw_ttl = flow.nw_ttl.wrapping_mul(3) % 5,
        2 => flow.dl_dst = MACS[(flow.dl_dst[5] as usize + 1) % 2],
        3 => {
            flow.dl_src = MACS[(flow.dl_src[5] as usize + 1) % 2];
            flow.tp_dst = if flow.tp_dst == 80 { 443 } else { 80 };
            flow.nw_dst ^= 1;
        }
        _ => {}
    }
}
