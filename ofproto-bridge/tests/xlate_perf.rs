//! Rough cost of a lookup and of a translation, for orientation (not a benchmark suite).
//!
//! Run with `cargo test --release -p ofproto-bridge --test xlate_perf -- --ignored --nocapture`.
//! The table: 1000 rules in table 0 over 8 distinct masks (in_port; in_port+dl_type;
//! ip+nw_dst/24; ip+nw_dst/32; tcp+nw_dst/32+tp_dst; ...) and a second table reached by
//! `goto_table`, the shape of a simple ACL followed by forwarding.

use ofproto_bridge::action::Action;
use ofproto_bridge::bridge::Bridge;
use ofproto_bridge::field::Field;
use ofproto_bridge::flow::Flow;
use ofproto_bridge::rule::{Match, Rule};
use ofproto_bridge::xlate::{translate, NoExtensions, XlateParams};
use std::time::Instant;

fn rule(table: u8, priority: u16, fields: &[(Field, u128, u128)], actions: Vec<Action>) -> Rule {
    let mut m = Match::default();
    for &(f, v, mask) in fields {
        f.or_mask(&mut m.mask, mask);
        let cur = f.get(&m.flow);
        f.set(&mut m.flow, cur | (v & mask));
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

fn build() -> Bridge {
    let mut b = Bridge::new();
    for p in 1..=8 {
        b.add_port(p, true);
    }
    let out = |p| Action::Output {
        port: p,
        max_len: 0,
    };
    let ip = (Field::EthType, 0x0800, 0xffff);
    let tcp = (Field::IpProto, 6, 0xff);
    for i in 0..1000u128 {
        let dst = 0x0a00_0000 | (i << 8);
        let r = match i % 8 {
            0 => rule(
                0,
                10,
                &[(Field::InPort, i % 8 + 1, 0xffff_ffff)],
                vec![Action::GotoTable(1)],
            ),
            1 => rule(
                0,
                20,
                &[ip, (Field::Ipv4Dst, dst, 0xffff_ff00)],
                vec![Action::GotoTable(1)],
            ),
            2 => rule(0, 30, &[ip, (Field::Ipv4Dst, dst | 1, !0)], vec![out(2)]),
            3 => rule(
                0,
                40,
                &[
                    ip,
                    tcp,
                    (Field::Ipv4Dst, dst | 2, !0),
                    (Field::TcpDst, 80, 0xffff),
                ],
                vec![],
            ),
            4 => rule(
                0,
                15,
                &[ip, (Field::Ipv4Src, dst, 0xffff_0000)],
                vec![Action::GotoTable(1)],
            ),
            5 => rule(
                0,
                25,
                &[(Field::EthSrc, i, 0xffff_ffff_ffff)],
                vec![Action::GotoTable(1)],
            ),
            6 => rule(
                0,
                35,
                &[ip, tcp, (Field::TcpSrc, i, 0xffff)],
                vec![Action::DecTtl, out(3)],
            ),
            _ => rule(0, 5, &[(Field::Metadata, i, 0xffff)], vec![out(4)]),
        };
        b.add_flow(r, 0);
    }
    b.add_flow(rule(0, 0, &[], vec![Action::GotoTable(1)]), 0);
    b.add_flow(rule(1, 0, &[], vec![Action::Normal]), 0);
    b
}

#[test]
#[ignore = "timing, run by hand in release mode"]
fn translation_cost() {
    let mut b = build();
    let flows: Vec<Flow> = (0..4096u32)
        .map(|i| Flow {
            in_port: i % 8 + 1,
            dl_type: 0x0800,
            nw_proto: 6,
            nw_dst: 0x0a00_0000 | ((i % 1200) << 8) | (i % 3),
            nw_src: i.wrapping_mul(2_654_435_761),
            tp_src: (i % 2000) as u16,
            tp_dst: 80,
            nw_ttl: 64,
            dl_src: [0, 0, 0, 0, (i >> 8) as u8, i as u8],
            dl_dst: [0, 0, 0, 0, 1, (i % 16) as u8],
            ..Flow::default()
        })
        .collect();
    let t0 = Instant::now();
    let mut hits = 0usize;
    let rounds = 50;
    for _ in 0..rounds {
        for f in &flows {
            let mut wc = Flow::default();
            hits += b.tables().lookup(0, f, &mut wc, &mut |_| true).is_some() as usize;
        }
    }
    let n = rounds * flows.len();
    let lookup_ns = t0.elapsed().as_nanos() as f64 / n as f64;
    let t0 = Instant::now();
    let mut actions = 0usize;
    for _ in 0..rounds {
        for f in &flows {
            let x = translate(
                &mut b,
                f,
                XlateParams {
                    now_ns: 0,
                    may_learn: true,
                },
                &mut NoExtensions,
            );
            actions += x.actions.len();
        }
    }
    let xlate_ns = t0.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "{} subtables; lookup {lookup_ns:.0} ns, translation {xlate_ns:.0} ns ({hits} hits, {actions} actions)",
        b.tables().table(0).n_subtables()
    );
    assert!(hits > 0 && actions > 0);
}
