//! Instructions per packet of the forwarding fast path, for `valgrind --tool=callgrind`:
//! run it under `valgrind --tool=callgrind` with `n=A` and `n=B` packets (after warm-up) and
//! divide the difference of the totals by `B - A` (`scripts/ir-per-packet.sh` does this).
use std::sync::Arc;

use bpfswitch::bench::measure::Rig;
use bpfswitch::bench::traffic::{self, Replay, IN_PORT, OUT_PORT};
use bpfswitch::dpif::{Datapath, DpConfig};
use bpfswitch::ext::LoadOptions;
use ofproto_bridge::bridge::Reclassify;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let nflows: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let decoy = args.iter().any(|a| a == "decoy");
    let emc = !args.iter().any(|a| a == "noemc");
    let dp = Datapath::new(DpConfig {
        emc,
        ..DpConfig::default()
    });
    dp.add_port(IN_PORT);
    dp.add_port(OUT_PORT);
    // `ttl=verifier|always`: the action-ttl workload instead of plain forwarding.
    let ttl = args.iter().find_map(|a| a.strip_prefix("ttl="));
    let mut flows = traffic::FLOWS.to_string();
    if decoy {
        flows.push_str(traffic::DECOY);
    }
    if let Some(policy) = ttl {
        let obj = bpfswitch::bench::scenario::TTL_DEC;
        dp.load_extension(obj.name, obj.bytes, &LoadOptions::default())
            .unwrap();
        flows = traffic::action_flows(obj.name, "10.1.0.0/16");
        dp.set_reclassify(match policy {
            "always" => Reclassify::Always,
            _ => Reclassify::Verifier,
        });
    }
    dp.add_flows(&flows, 0).unwrap();
    let mut rig = Rig::new(&dp, 0, Arc::new(Replay::new(nflows, false)));
    let warm = (nflows as u64 * 3).max(4096);
    rig.run_packets(warm);
    warm_done();
    let n: u64 = args
        .iter()
        .find_map(|a| a.strip_prefix("n=")?.parse().ok())
        .unwrap_or(32 * 1024);
    rig.run_packets(n);
    println!("{n} packets timed");
}

#[inline(never)]
fn warm_done() {
    std::hint::black_box(());
}
