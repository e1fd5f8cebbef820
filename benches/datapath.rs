//! Micro-benchmarks of the datapath's parts, so that a regression `bpfswitch bench` shows is
//! found where it is: flow-key extraction, the exact-match cache, the megaflow cache (one and
//! many subtables), translation, each benchmark extension on each execution tier, and one
//! batch through a worker. The traffic is WORKLOADS.md's (`bpfswitch::bench::traffic`).
//!
//! `cargo bench` runs them all in a few minutes (short measurement times);
//! `cargo bench -- megaflow` runs one group.

use std::hint::black_box;
use std::time::Duration;

use bpfswitch::bench::scenario::OBJECTS;
use bpfswitch::bench::traffic::{self, frame, Replay, FLOWS, IN_PORT};
use bpfswitch::dpif::{Datapath, DpConfig, TxSink};
use bpfswitch::emc::Emc;
use bpfswitch::ext::{ExecTier, Extension, LoadOptions};
use bpfswitch::megaflow::{Megaflow, MegaflowCache, MfRef};
use bpfswitch::packet::{extract, PacketBuf};
use bpfswitch::port::Batch;
use criterion::{criterion_group, criterion_main, Criterion};
use ofproto_bridge::bridge::Bridge;
use ofproto_bridge::flow::Flow;
use ofproto_bridge::ofctl::parse_flows_file;
use ofproto_bridge::xlate::{translate, NoExtensions, XlateParams, Xlation};

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

fn key(f: u32) -> Flow {
    let mut flow = Flow::default();
    extract(&frame(f, false), IN_PORT, &mut flow);
    flow
}

fn bridge(flows: &str) -> Bridge {
    let mut b = Bridge::new();
    b.add_port(1, true);
    b.add_port(2, true);
    for fm in parse_flows_file(flows).expect("flows parse") {
        b.apply_flow_mod(&fm, 0).expect("flow mod applies");
    }
    b
}

fn xlation(b: &mut Bridge, flow: &Flow) -> Xlation {
    translate(b, flow, XlateParams::default(), &mut NoExtensions)
}

fn parse(c: &mut Criterion) {
    let f = frame(7, false);
    let mut flow = Flow::default();
    c.bench_function("parse/extract_udp4", |b| {
        b.iter(|| black_box(extract(black_box(&f), IN_PORT, &mut flow)))
    });
}

fn emc(c: &mut Criterion) {
    let keys: Vec<(Flow, u64)> = (0..4096)
        .map(|f| {
            let k = key(f);
            let h = bpfswitch::emc::hash(&k);
            (k, h)
        })
        .collect();
    let mut emc = Emc::new();
    for (i, (k, h)) in keys.iter().enumerate() {
        emc.insert(
            k,
            *h,
            MfRef {
                slot: i as u32,
                gen: 1,
            },
            |_| true,
        );
    }
    let mut i = 0;
    c.bench_function("emc/hash_and_lookup_hit", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            let k = &keys[i].0;
            black_box(emc.lookup(k, bpfswitch::emc::hash(k)))
        })
    });
    c.bench_function("emc/lookup_hit", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            let (k, h) = &keys[i];
            black_box(emc.lookup(k, *h))
        })
    });
    let miss = key(100_000);
    let hm = bpfswitch::emc::hash(&miss);
    c.bench_function("emc/lookup_miss", |b| {
        b.iter(|| black_box(emc.lookup(black_box(&miss), hm)))
    });
}

fn megaflow(c: &mut Criterion) {
    let mut b = bridge(FLOWS);
    let k = key(3);
    let x = xlation(&mut b, &k);
    // One subtable holding the workload's megaflow.
    let mut one = MegaflowCache::new(1024);
    one.insert(Megaflow::new(k, x.clone())).expect("room");
    let keys: Vec<Flow> = (0..1024).map(key).collect();
    let mut i = 0;
    c.bench_function("megaflow/lookup_1_subtable", |bn| {
        bn.iter(|| {
            i = (i + 1) & 1023;
            black_box(one.lookup(&keys[i]))
        })
    });
    // 32 subtables (the translation's mask plus nw_src prefixes /1../31 of a source no
    // packet has). The workload's megaflow starts ranked last; after the first re-ranking
    // (every RERANK_INTERVAL lookups) its subtable is probed first, so this measures the
    // ranked steady state, and the miss below probes all 32.
    let mut many = MegaflowCache::new(1024);
    let mut other = k;
    other.nw_src = 0xc0a8_0001;
    for len in 1..32u32 {
        let mut x2 = x.clone();
        x2.mask.nw_src = !0u32 << (32 - len);
        many.insert(Megaflow::new(other, x2)).expect("room");
    }
    for _ in 0..2048 {
        many.lookup(&other);
    }
    many.insert(Megaflow::new(k, x)).expect("room");
    c.bench_function("megaflow/lookup_32_subtables_hit_ranked", |bn| {
        bn.iter(|| {
            i = (i + 1) & 1023;
            black_box(many.lookup(&keys[i]))
        })
    });
    // Another destination port: every subtable is probed and none matches.
    let mut miss = key(5);
    miss.tp_dst ^= 0xff;
    c.bench_function("megaflow/lookup_32_subtables_miss", |bn| {
        bn.iter(|| black_box(many.lookup(black_box(&miss))))
    });
}

fn xlate(c: &mut Criterion) {
    let mut b = bridge(FLOWS);
    let k = key(3);
    c.bench_function("xlate/translate_fwd", |bn| {
        bn.iter(|| black_box(xlation(&mut b, black_box(&k))))
    });
    let mut decoy = bridge(&format!("{FLOWS}{}", traffic::DECOY));
    c.bench_function("xlate/translate_fwd_decoy", |bn| {
        bn.iter(|| black_box(xlation(&mut decoy, black_box(&k))))
    });
}

fn extensions(c: &mut Criterion) {
    let f = frame(0, false);
    for obj in OBJECTS {
        let ext = Extension::load(obj.name, obj.bytes, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", obj.name));
        if obj.name == "fw_stateful_filter" {
            let mut v = [0u8; 16];
            v[0..4].copy_from_slice(&IN_PORT.to_le_bytes());
            ext.map("fw_config")
                .unwrap()
                .update(&0u32.to_le_bytes(), &v, 0)
                .unwrap();
        }
        for tier in [ExecTier::Interpreter, ExecTier::Jit, ExecTier::Cranelift] {
            let mut buf = PacketBuf::from_slice(&f);
            if let Err(e) = ext.run_on(tier, &mut buf, IN_PORT, Some(0)) {
                eprintln!("SKIPPED: ext/{}/{}: {e}", obj.name, tier.name());
                continue;
            }
            // A fresh copy of the frame each run (ttl_dec would otherwise count down to a
            // drop), into the same buffer as a worker's batch reuses its buffers.
            c.bench_function(&format!("ext/{}/{}", obj.name, tier.name()), |b| {
                b.iter(|| {
                    buf.load(&f);
                    black_box(ext.run_on(tier, &mut buf, IN_PORT, Some(0)))
                })
            });
        }
    }
}

struct Null;
impl TxSink for Null {
    fn transmit(&mut self, _: u32, frame: &[u8], _: u64) {
        black_box(frame);
    }
}

fn batch(c: &mut Criterion) {
    for (name, nflows, emc) in [
        ("worker/batch32_1flow", 1, true),
        ("worker/batch32_1flow_noemc", 1, false),
        ("worker/batch32_64kflows", 65_536, true),
    ] {
        let dp = Datapath::new(DpConfig {
            emc,
            ..DpConfig::default()
        });
        dp.add_port(1);
        dp.add_port(2);
        dp.add_flows(FLOWS, 0).unwrap();
        let mut w = dp.worker(0);
        let replay = Replay::new(nflows, false);
        let mut batch = Batch::new();
        let mut pos = 0;
        let mut ts = 1;
        let mut fill = |batch: &mut Batch| {
            batch.clear();
            for _ in 0..32 {
                batch.push(replay.get(pos), ts);
                pos = (pos + 1) % replay.len();
            }
            ts += 1000;
        };
        for _ in 0..(2 * replay.len() / 32 + 64) {
            fill(&mut batch);
            w.process_batch(IN_PORT, &mut batch, &mut Null);
        }
        c.bench_function(name, |b| {
            b.iter(|| {
                fill(&mut batch);
                w.process_batch(IN_PORT, &mut batch, &mut Null);
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = parse, emc, megaflow, xlate, extensions, batch
}
criterion_main!(benches);
