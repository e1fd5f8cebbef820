//! Instructions per packet of the forwarding fast path, for `valgrind --tool=callgrind`:
//! run it under `valgrind --tool=callgrind` with `n=A` and `n=B` packets (after warm-up) and
//! divide the difference of the totals by `B - A` (`scripts/ir-per-packet.sh` does this).
use std::sync::Arc;

use bpfswitch::bench::measure::{self, Rig};
use bpfswitch::bench::scenario;
use bpfswitch::bench::traffic::{self, Replay, IN_PORT, OUT_PORT};
use bpfswitch::dpif::{Datapath, DpConfig};
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
    // `ttl=P`, `payload=P` or `nat=P` (P: verifier or always): the action-ttl, action-payload
    // or action-nat workload under reclassify=P instead of plain forwarding.
    let action = [
        ("ttl=", scenario::TTL_DEC, "10.1.0.0/16"),
        ("payload=", scenario::PAYLOAD_MASK, "10.1.0.0/16"),
        ("nat=", scenario::NAT_BENCH, "10.2.0.0/16"),
    ]
    .into_iter()
    .find_map(|(k, obj, dst)| Some((args.iter().find_map(|a| a.strip_prefix(k))?, obj, dst)));
    let mut flows = traffic::FLOWS.to_string();
    if decoy {
        flows.push_str(traffic::DECOY);
    }
    if let Some((policy, obj, dst)) = action {
        measure::load(&dp, obj).unwrap();
        flows = traffic::action_flows(obj.name, dst);
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
