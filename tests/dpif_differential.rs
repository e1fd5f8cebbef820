//! The datapath with its caches against the cacheless reference (every packet translated
//! against the current tables), on random flow tables, random packets and random
//! interleavings of flow-table changes (add, modify, delete, timeouts), with and without
//! extensions (stateless and stateful filters, packet-rewriting actions that recirculate or
//! are translated past).
//!
//! The property: for every packet, the same fate and the same transmitted (port, bytes)
//! sequence; at the end, the same per-rule packet counts and per-port counters, and
//! rx = forwarded + dropped on every port. Given in batches (`Worker::process_batch`: the
//! batch stage, the express pass, compiled plans), the same packets make the same
//! transmitted sequence and the same counters.

use std::sync::Arc;

use bpfswitch::dpif::{Datapath, DpConfig, DpStats, Fate, Worker};
use bpfswitch::ext::LoadOptions;
use bpfswitch::packet::builder::{self, L4};
use bpfswitch::packet::ethernet::{self, VlanTag};
use bpfswitch::packet::{arp, ipv4, tcp, udp, PacketBuf};
use bpfswitch::port::Batch;
use ofproto_bridge::bridge::Reclassify;
use ofproto_bridge::PortNo;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const PORTS: [PortNo; 3] = [1, 2, 3];
const MACS: [[u8; 6]; 3] = [
    [0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 2],
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
];

/// Extensions loaded in the extension variant: (name, object).
const EXTS: [(&str, &str); 5] = [
    ("stateless", "bench_filter.o"),
    ("stateful", "fw_stateful_filter.o"),
    ("ttl", "ttl_dec.o"),
    ("nat", "nat_bench.o"),
    ("mask", "payload_mask.o"),
];

/// A packet description, built into a frame.
#[derive(Clone, Debug)]
struct Pkt {
    in_port: PortNo,
    src: usize,
    dst: usize,
    vlan: Option<u16>,
    kind: u8,
    nw_src: u32,
    nw_dst: u32,
    tp_dst: u16,
    ttl: u8,
}

impl Pkt {
    fn frame(&self) -> Vec<u8> {
        let ethertype = if self.kind == 3 { 0x0806 } else { 0x0800 };
        let payload = match self.kind {
            3 => builder::arp(&arp::Repr {
                op: 1,
                sha: MACS[self.src],
                spa: self.nw_src,
                tha: [0; 6],
                tpa: self.nw_dst,
            }),
            _ => {
                let ip = ipv4::Repr {
                    src: self.nw_src,
                    dst: self.nw_dst,
                    ttl: self.ttl,
                    ..Default::default()
                };
                let l4 = match self.kind {
                    0 | 2 => L4::Udp(udp::Repr {
                        src_port: 1024,
                        dst_port: self.tp_dst,
                    }),
                    _ => L4::Tcp(tcp::Repr {
                        src_port: 1024,
                        dst_port: self.tp_dst,
                        flags: 0x02,
                        window: 1000,
                        ..Default::default()
                    }),
                };
                builder::ipv4(&ip, &l4, &[0x5a; 24])
            }
        };
        let eth = ethernet::Repr {
            dst: MACS[self.dst],
            src: MACS[self.src],
            vlans: [
                self.vlan.map(|vid| VlanTag {
                    tpid: 0x8100,
                    tci: vid,
                }),
                None,
            ],
            ethertype,
        };
        builder::ethernet(&eth, &payload)
    }
}

fn arb_pkt() -> impl Strategy<Value = Pkt> {
    (
        prop::sample::select(PORTS.to_vec()),
        0usize..2,
        0usize..3,
        prop::option::weighted(0.2, prop::sample::select(vec![10u16, 20])),
        0u8..4,
        prop::sample::select(vec![0x0a00_0001u32, 0x0a00_0002, 0x0a01_0005, 0xc0a8_0001]),
        prop::sample::select(vec![0x0a01_0001u32, 0x0a01_0102, 0x0a02_0001, 0x0a00_0001]),
        prop::sample::select(vec![53u16, 80, 443]),
        prop::sample::select(vec![64u8, 2, 1]),
    )
        .prop_map(
            |(in_port, src, dst, vlan, kind, nw_src, nw_dst, tp_dst, ttl)| Pkt {
                in_port,
                src,
                dst,
                vlan,
                kind,
                nw_src,
                nw_dst,
                tp_dst,
                ttl,
            },
        )
}

/// One match constraint, in ovs-ofctl syntax.
fn arb_constraint() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "in_port=1",
        "in_port=2",
        "in_port=3",
        "ip",
        "udp",
        "tcp",
        "arp",
        "dl_dst=00:00:00:00:00:02",
        "dl_src=00:00:00:00:00:01",
        "dl_vlan=10",
        "vlan_tci=0/0x1000",
        "ip,nw_dst=10.1.0.0/16",
        "ip,nw_dst=10.2.0.0/16",
        "ip,nw_src=10.0.0.1",
        "ip,nw_src=10.0.0.0/24",
        "udp,tp_dst=53",
        "tcp,tp_dst=80",
        "ip,nw_ttl=64",
        "metadata=0x1/0x1",
    ])
    .prop_map(str::to_string)
}

fn arb_action(exts: bool) -> BoxedStrategy<String> {
    let mut v = vec![
        "output:1",
        "output:2",
        "output:3",
        "in_port",
        "normal",
        "flood",
        "controller",
        "drop",
        "mod_dl_src:00:00:00:00:00:aa",
        "mod_nw_dst:10.2.0.7",
        "mod_nw_src:10.0.0.2",
        "mod_tp_dst:80",
        "dec_ttl",
        "mod_vlan_vid:20",
        "strip_vlan",
        "push_vlan:0x8100",
        "write_metadata:0x1/0x1",
        "resubmit(,1)",
        "resubmit(,2)",
        "goto_table:1",
        "goto_table:2",
    ];
    if exts {
        v.extend([
            "bpf(ttl)",
            "bpf(nat)",
            "bpf(mask)",
            "bpf(ttl)",
            "bpf(missing)",
        ]);
    }
    prop::sample::select(v).prop_map(str::to_string).boxed()
}

/// A flow-table change or a packet.
#[derive(Clone, Debug)]
enum Op {
    Packet(Pkt),
    Add(String),
    Del(String),
    Mod(String),
    /// Advance the clock by this many milliseconds and run timeouts.
    Tick(u64),
}

fn arb_rule(exts: bool) -> impl Strategy<Value = String> {
    let filters: BoxedStrategy<Option<&str>> = if exts {
        prop::option::weighted(0.3, prop::sample::select(vec!["stateless", "stateful"])).boxed()
    } else {
        Just(None).boxed()
    };
    (
        prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        0u16..4,
        prop::collection::vec(arb_constraint(), 0..3),
        filters,
        prop::collection::vec(arb_action(exts), 0..4),
        prop::option::weighted(0.15, prop::sample::select(vec![1u16, 2])),
        prop::option::weighted(0.1, prop::sample::select(vec![1u16, 3])),
    )
        .prop_map(|(table, prio, cs, filter, acts, idle, hard)| {
            let mut s = format!("table={table},priority={prio}");
            if let Some(t) = idle {
                s.push_str(&format!(",idle_timeout={t}"));
            }
            if let Some(t) = hard {
                s.push_str(&format!(",hard_timeout={t}"));
            }
            for c in cs {
                s.push(',');
                s.push_str(&c);
            }
            if let Some(f) = filter {
                s.push_str(&format!(",bpf_filter={f}"));
            }
            // goto_table must go forward and come last: keep only a final one.
            let mut acts: Vec<String> = acts
                .into_iter()
                .filter(|a| {
                    !a.starts_with("goto_table")
                        || a.trim_start_matches("goto_table:").parse::<u8>().unwrap() > table
                })
                .collect();
            if let Some(i) = acts.iter().position(|a| a.starts_with("goto_table")) {
                acts.truncate(i + 1);
            }
            if acts.len() > 1 {
                acts.retain(|a| a != "drop");
            }
            s.push_str(",actions=");
            s.push_str(&if acts.is_empty() {
                "drop".to_string()
            } else {
                acts.join(",")
            });
            s
        })
}

fn arb_ops(exts: bool) -> impl Strategy<Value = (Vec<String>, Vec<Op>)> {
    let op = prop_oneof![
        12 => arb_pkt().prop_map(|p| vec![Op::Packet(p)]),
        // A burst from one port: a batch of several packets for `process_batch`.
        2 => (prop::sample::select(PORTS.to_vec()), prop::collection::vec(arb_pkt(), 2..40))
            .prop_map(|(port, ps)| {
                ps.into_iter()
                    .map(|p| Op::Packet(Pkt { in_port: port, ..p }))
                    .collect()
            }),
        2 => arb_rule(exts).prop_map(|r| vec![Op::Add(r)]),
        1 => prop::collection::vec(arb_constraint(), 0..2)
            .prop_map(|c| vec![Op::Del(c.join(","))]),
        1 => (prop::collection::vec(arb_constraint(), 0..2), arb_action(exts))
            .prop_map(|(c, a)| vec![Op::Mod(format!("{},actions={a}", c.join(",")))]),
        1 => (100u64..2500).prop_map(|t| vec![Op::Tick(t)]),
    ];
    (
        prop::collection::vec(arb_rule(exts), 1..12),
        prop::collection::vec(op, 1..60).prop_map(|v| v.into_iter().flatten().collect()),
    )
}

fn object(name: &str) -> Vec<u8> {
    let path = format!("{}/extensions/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn datapath(cfg: DpConfig, rules: &[String], exts: bool, policy: Reclassify) -> Arc<Datapath> {
    let dp = Datapath::new(cfg);
    for p in PORTS {
        dp.add_port(p);
    }
    dp.set_reclassify(policy);
    if exts {
        for (name, file) in EXTS {
            dp.load_extension(name, &object(file), &LoadOptions::default())
                .unwrap();
        }
        // The stateful firewall: inside is 10.0.0.0/24.
        dp.map_update(
            "stateful",
            "fw_config",
            "u32:0",
            "u32:0 ip:10.0.0.0 ip:255.255.255.0 u32:0",
        )
        .unwrap();
    }
    // A generated rule may be refused (a missing prerequisite, say): both runs refuse it.
    for r in rules {
        let _ = dp.add_flows(r, 0);
    }
    dp
}

/// What one packet did: its fate and every (port, bytes) it was transmitted as.
type PacketObs = (Fate, Vec<(PortNo, Vec<u8>)>);

/// Everything observable of one run.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    packets: Vec<PacketObs>,
    rule_packets: Vec<(String, u64)>,
    stats: DpStats,
}

/// Applies a flow-table change or a tick at time `now` (advanced by a tick).
fn apply(dp: &Arc<Datapath>, w: &mut Worker, op: &Op, now: &mut u64) {
    match op {
        Op::Packet(_) => unreachable!("packets are run by the caller"),
        Op::Add(r) => {
            let _ = dp.add_flows(r, *now);
        }
        Op::Del(m) => {
            let _ = dp.add_flows(&format!("delete {m}"), *now);
        }
        Op::Mod(m) => {
            let _ = dp.add_flows(&format!("modify {m}"), *now);
        }
        Op::Tick(ms) => {
            *now += ms * 1_000_000;
            w.maintain(*now);
        }
    }
}

/// The rule counters and the port counters at the end of a run (checking rx = forwarded +
/// dropped on every port).
fn counters(dp: &Arc<Datapath>, w: &mut Worker, now: u64) -> (Vec<(String, u64)>, DpStats) {
    w.sync(now);
    let mut rule_packets: Vec<(String, u64)> = dp
        .dump_flows()
        .into_iter()
        .map(|(_, r, m)| (ofproto_bridge::ofctl::format_rule(&r), m.stats.packets))
        .collect();
    rule_packets.sort();
    let stats = w.stats();
    for p in stats.ports.values() {
        assert_eq!(
            p.rx_packets,
            p.forwarded + p.dropped(),
            "rx = forwarded + dropped"
        );
    }
    // Cache counters differ by design; keep what must agree.
    let stats = DpStats {
        ports: stats.ports,
        ..DpStats::default()
    };
    (rule_packets, stats)
}

fn run(dp: &Arc<Datapath>, w: &mut Worker, ops: &[Op]) -> Observed {
    let mut now = 1_000_000_000u64;
    let mut packets = Vec::new();
    for op in ops {
        if let Op::Packet(p) = op {
            now += 1000;
            let mut out = Vec::new();
            let mut sink = |port: PortNo, f: &[u8], _ts: u64| out.push((port, f.to_vec()));
            let mut buf = PacketBuf::from_slice(&p.frame());
            let fate = w.process(p.in_port, &mut buf, now, &mut sink);
            packets.push((fate, out));
        } else {
            apply(dp, w, op, &mut now);
        }
    }
    let (rule_packets, stats) = counters(dp, w, now);
    Observed {
        packets,
        rule_packets,
        stats,
    }
}

/// What a run in batches shows: no fate per packet, but every output in order.
struct Batched {
    outputs: Vec<(PortNo, Vec<u8>)>,
    rule_packets: Vec<(String, u64)>,
    stats: DpStats,
}

/// [`run`] with consecutive packets of one ingress port given to `Worker::process_batch` in
/// batches of up to 32 (the batch stage, its express pass and compiled plans).
fn run_batched(dp: &Arc<Datapath>, w: &mut Worker, ops: &[Op]) -> Batched {
    let mut now = 1_000_000_000u64;
    let mut outputs = Vec::new();
    let mut i = 0;
    while let Some(op) = ops.get(i) {
        let Op::Packet(first) = op else {
            apply(dp, w, op, &mut now);
            i += 1;
            continue;
        };
        let mut batch = Batch::new();
        while let Some(Op::Packet(p)) = ops.get(i) {
            if p.in_port != first.in_port || batch.is_full() {
                break;
            }
            now += 1000;
            assert!(batch.push(&p.frame(), now));
            i += 1;
        }
        let mut sink = |port: PortNo, f: &[u8], _ts: u64| outputs.push((port, f.to_vec()));
        w.process_batch(first.in_port, &mut batch, &mut sink);
    }
    let (rule_packets, stats) = counters(dp, w, now);
    Batched {
        outputs,
        rule_packets,
        stats,
    }
}

fn check(rules: &[String], ops: &[Op], exts: bool, policy: Reclassify) {
    let reference = {
        let dp = datapath(DpConfig::cacheless(), rules, exts, policy);
        let mut w = dp.worker(0);
        run(&dp, &mut w, ops)
    };
    for cfg in [
        DpConfig::default(),
        DpConfig {
            emc_insert_inv_prob: 1,
            emc_bypass: false,
            ..DpConfig::default()
        },
        DpConfig {
            emc: false,
            ..DpConfig::default()
        },
    ] {
        let dp = datapath(cfg.clone(), rules, exts, policy);
        let mut w = dp.worker(0);
        let got = run(&dp, &mut w, ops);
        for (i, (g, r)) in got.packets.iter().zip(&reference.packets).enumerate() {
            assert_eq!(g, r, "packet {i} differs (config {cfg:?})");
        }
        assert_eq!(got, reference, "config {cfg:?}");

        // The same packets in batches: the same frames out, in the same order, and the same
        // counters.
        let dp = datapath(cfg.clone(), rules, exts, policy);
        let mut w = dp.worker(0);
        let got = run_batched(&dp, &mut w, ops);
        let want: Vec<_> = reference
            .packets
            .iter()
            .flat_map(|(_, o)| o.clone())
            .collect();
        assert_eq!(got.outputs, want, "batched outputs (config {cfg:?})");
        assert_eq!(
            got.rule_packets, reference.rule_packets,
            "batched rule counters (config {cfg:?})"
        );
        assert_eq!(
            got.stats, reference.stats,
            "batched port counters (config {cfg:?})"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("DPIF_PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(128),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/dpif_differential.proptest-regressions"
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn cached_datapath_equals_cacheless_reference((rules, ops) in arb_ops(false)) {
        check(&rules, &ops, false, Reclassify::Verifier);
    }

    /// Issue 4's differential: the verifier's reclassification decisions forward every packet
    /// exactly as recirculating after every extension action does, recirculating no more.
    #[test]
    fn verifier_reclassification_forwards_like_always((rules, ops) in arb_ops(true)) {
        let run_policy = |policy| {
            let dp = datapath(DpConfig::default(), &rules, true, policy);
            let mut w = dp.worker(0);
            let obs = run(&dp, &mut w, &ops);
            (obs.packets, obs.stats.ports, obs.rule_packets, w.stats().recirculations)
        };
        let (vp, vports, vrules, vrecirc) = run_policy(Reclassify::Verifier);
        let (ap, aports, arules, arecirc) = run_policy(Reclassify::Always);
        prop_assert_eq!(vp, ap);
        prop_assert_eq!(vports, aports);
        prop_assert_eq!(vrules, arules, "rule counters");
        prop_assert!(vrecirc <= arecirc, "verifier {} > always {}", vrecirc, arecirc);

        // In batches too.
        let batched = |policy| {
            let dp = datapath(DpConfig::default(), &rules, true, policy);
            let mut w = dp.worker(0);
            run_batched(&dp, &mut w, &ops)
        };
        let (v, a) = (batched(Reclassify::Verifier), batched(Reclassify::Always));
        prop_assert_eq!(v.outputs, a.outputs, "batched outputs");
        prop_assert_eq!(v.stats, a.stats, "batched port counters");
        prop_assert_eq!(v.rule_packets, a.rule_packets, "batched rule counters");
    }

    #[test]
    fn with_extensions_cached_equals_cacheless(
        (rules, ops) in arb_ops(true),
        policy in prop::sample::select(vec![Reclassify::Verifier, Reclassify::Always]),
    ) {
        check(&rules, &ops, true, policy);
    }
}
