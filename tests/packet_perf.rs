//! Throughput smoke check of the per-packet fast-path functions (extract, set_masked,
//! push/pop VLAN). Ignored by default; run with
//! `cargo test --release --test packet_perf -- --ignored --nocapture`.

use bpfswitch::execute::{pop_vlan, push_vlan, set_masked};
use bpfswitch::packet::{builder, extract, PacketBuf};
use ofproto_bridge::field::Field;
use ofproto_bridge::flow::Flow;
use std::hint::black_box;
use std::time::Instant;

fn frames() -> Vec<Vec<u8>> {
    (0..64u32)
        .map(|i| {
            if i % 2 == 0 {
                builder::udp4_frame(
                    [2, 0, 0, 0, 0, 1],
                    [2, 0, 0, 0, 0, 2],
                    0x0a00_0000 + i,
                    0x0a01_0001,
                    1024 + i as u16,
                    53,
                    &[0; 18],
                )
            } else {
                builder::tcp4_frame(
                    [2, 0, 0, 0, 0, 1],
                    [2, 0, 0, 0, 0, 2],
                    0x0a00_0000 + i,
                    0x0a01_0001,
                    1024 + i as u16,
                    80,
                    0x10,
                    &[0; 6],
                )
            }
        })
        .collect()
}

#[test]
#[ignore = "timing; run in release with --ignored"]
fn fast_path_throughput() {
    let frames = frames();
    let n = 2_000_000usize;
    let mut flow = Flow::default();
    let t = Instant::now();
    for i in 0..n {
        let l = extract(black_box(&frames[i % frames.len()]), 1, &mut flow);
        black_box((&flow, l));
    }
    let extract_ns = t.elapsed().as_nanos() as f64 / n as f64;

    let mut bufs: Vec<PacketBuf> = frames.iter().map(|f| PacketBuf::from_slice(f)).collect();
    let layouts: Vec<_> = bufs
        .iter()
        .map(|b| extract(b.data(), 1, &mut flow))
        .collect();
    let t = Instant::now();
    for i in 0..n {
        let k = i % bufs.len();
        set_masked(
            &mut bufs[k],
            &layouts[k],
            Field::Ipv4Src,
            i as u128,
            u32::MAX as u128,
        )
        .unwrap();
        set_masked(
            &mut bufs[k],
            &layouts[k],
            Field::NwTtl,
            (i & 0xff) as u128,
            0xff,
        )
        .unwrap();
    }
    let set_ns = t.elapsed().as_nanos() as f64 / n as f64 / 2.0;

    let t = Instant::now();
    for i in 0..n {
        let k = i % bufs.len();
        let l = push_vlan(&mut bufs[k], &layouts[k], 0x8100, 10).unwrap();
        pop_vlan(&mut bufs[k], &l).unwrap();
    }
    let vlan_ns = t.elapsed().as_nanos() as f64 / n as f64;
    println!("extract: {extract_ns:.1} ns/packet; set_masked: {set_ns:.1} ns/field; push+pop vlan: {vlan_ns:.1} ns");
    assert!(
        extract_ns < 1000.0,
        "extract is unreasonably slow: {extract_ns} ns"
    );
}
