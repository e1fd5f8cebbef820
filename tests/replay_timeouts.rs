//! Capture time is the replay's clock: `hard_timeout` and `idle_timeout` expire by the
//! packets' timestamps, idle times count hits answered by the caches, and transmitted packets
//! keep the timestamps of the packets they came from.

mod cli_common;
use bpfswitch::packet::builder::udp4_frame;
use bpfswitch::port::pcap::{PcapReader, PcapWriter};
use cli_common::*;
use std::path::Path;

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn capture(path: &Path, times: &[u64]) {
    let mut w = PcapWriter::create(path).unwrap();
    for (i, t) in times.iter().enumerate() {
        let f = udp4_frame(
            [2, 0, 0, 0, 0, 2],
            [2, 0, 0, 0, 0, 1],
            0x0a00_0001,
            0x0a00_0002,
            1000 + i as u16,
            53,
            &[0x55; 18],
        );
        w.write(&f, T0 + t).unwrap();
    }
    w.flush().unwrap();
}

fn times_of(path: &Path) -> Vec<u64> {
    if !path.exists() {
        return Vec::new();
    }
    PcapReader::open(path)
        .unwrap()
        .read_all()
        .unwrap()
        .into_iter()
        .map(|(t, _)| t - T0)
        .collect()
}

fn replay(dir: &Path, flows: &str, times: &[u64], cache: bool) -> serde_json::Value {
    std::fs::write(dir.join("flows.txt"), flows).unwrap();
    capture(&dir.join("in.pcap"), times);
    let out = dir.join(if cache { "out" } else { "out-nc" });
    let mut args = vec![
        "replay".to_string(),
        "--flows".into(),
        dir.join("flows.txt").display().to_string(),
        "--in".into(),
        format!("1={}", dir.join("in.pcap").display()),
        "--out-dir".into(),
        out.display().to_string(),
        "--json".into(),
    ];
    if !cache {
        args.push("--no-cache".into());
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    serde_json::from_str(&ok(&run(&a))).unwrap()
}

#[test]
fn hard_timeouts_expire_by_capture_time() {
    let dir = scratch("replay-hard");
    let flows =
        "priority=100,in_port=1,hard_timeout=1,actions=output:2\npriority=0,actions=output:3\n";
    let times = [0, SEC / 2, SEC * 3 / 2, 2 * SEC];
    for cache in [true, false] {
        let j = replay(&dir, flows, &times, cache);
        let out = dir.join(if cache { "out" } else { "out-nc" });
        assert_eq!(
            times_of(&out.join("port-2.pcap")),
            vec![0, SEC / 2],
            "cache={cache}"
        );
        assert_eq!(
            times_of(&out.join("port-3.pcap")),
            vec![SEC * 3 / 2, 2 * SEC],
            "cache={cache}"
        );
        assert_eq!(j["expired_rules"], 1);
        assert_eq!(
            j["rules"].as_array().unwrap().len(),
            1,
            "the expired rule is gone"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn idle_timeouts_count_cached_hits() {
    let dir = scratch("replay-idle");
    let flows =
        "priority=100,in_port=1,idle_timeout=1,actions=output:2\npriority=0,actions=output:3\n";
    // A packet every 0.4 s for 3 s keeps the rule alive (most are megaflow hits, which must
    // refresh its idle time); after a 2.5 s gap it has expired.
    let mut times: Vec<u64> = (0..8).map(|i| i * SEC * 2 / 5).collect();
    let last = *times.last().unwrap();
    times.push(last + SEC * 5 / 2);
    for cache in [true, false] {
        let j = replay(&dir, flows, &times, cache);
        let out = dir.join(if cache { "out" } else { "out-nc" });
        assert_eq!(
            times_of(&out.join("port-2.pcap")),
            times[..8].to_vec(),
            "cache={cache}"
        );
        assert_eq!(
            times_of(&out.join("port-3.pcap")),
            vec![times[8]],
            "cache={cache}"
        );
        assert_eq!(j["expired_rules"], 1, "cache={cache}");
        if cache {
            assert!(
                j["cache"]["megaflow_hits"].as_u64().unwrap() >= 6,
                "{}",
                j["cache"]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
