//! The extension scenario (`examples/ext/`): a firewall with NAT built from eBPF filters
//! (`bpf_filter=`), actions (`bpf(NAME)`) and a port hook, replayed with the exact command
//! the README documents (`examples/ext/run.sh`). Its outputs must be byte-identical to
//! `tests/expected/ext/`, which `examples/ext/gen_ext.py` computed independently, under
//! `--reclassify verifier` (default) and `always`, cached and cacheless; the verifier must
//! avoid recirculations that `always` makes; `never` (unsafe) must visibly differ.

mod cli_common;
use cli_common::*;
use std::path::Path;
use std::process::Command;

fn expected() -> std::path::PathBuf {
    root().join("tests/expected/ext")
}

/// Runs `examples/ext/run.sh --out-dir OUT --json EXTRA...` with the test's binary.
fn run_scenario(out: &Path, extra: &[&str]) -> serde_json::Value {
    let o = Command::new(root().join("examples/ext/run.sh"))
        .env("BPFSWITCH", bin())
        .arg("--out-dir")
        .arg(out)
        .arg("--json")
        .args(extra)
        .output()
        .expect("run examples/ext/run.sh");
    let text = ok(&o);
    serde_json::from_str(&text).expect("--json prints JSON")
}

fn counter(j: &serde_json::Value, name: &str) -> u64 {
    j["cache"][name].as_u64().unwrap()
}

fn drops(j: &serde_json::Value, port: usize, reason: &str) -> u64 {
    j["ports"][port]["drops"][reason].as_u64().unwrap_or(0)
}

#[test]
fn the_scenario_gives_the_expected_captures_under_every_mode() {
    let dir = scratch("replay-ext");
    let verifier = run_scenario(&dir.join("verifier"), &[]);
    assert_same_outputs(&dir.join("verifier"), &expected(), "reclassify=verifier");
    let always = run_scenario(&dir.join("always"), &["--reclassify", "always"]);
    assert_same_outputs(&dir.join("always"), &expected(), "reclassify=always");
    let verifier_nc = run_scenario(&dir.join("verifier-nc"), &["--no-cache"]);
    assert_same_outputs(&dir.join("verifier-nc"), &expected(), "verifier, no cache");
    let always_nc = run_scenario(
        &dir.join("always-nc"),
        &["--reclassify", "always", "--no-cache"],
    );
    assert_same_outputs(&dir.join("always-nc"), &expected(), "always, no cache");

    for (mode, j) in [
        ("verifier", &verifier),
        ("always", &always),
        ("verifier-nc", &verifier_nc),
        ("always-nc", &always_nc),
    ] {
        assert_eq!(j["total_rx"].as_u64(), Some(75), "{mode}");
        assert_eq!(
            j["total_rx"].as_u64().unwrap(),
            j["total_forwarded"].as_u64().unwrap() + j["total_dropped"].as_u64().unwrap()
        );
        // Port 1 (inside): the TTL-1 packet is dropped by ttl_dec; port 2 (uplink): the
        // SSDP flood by the port hook (1 + 10 in the burst).
        assert_eq!(drops(j, 0, "ext_drop"), 1, "{mode}");
        assert_eq!(drops(j, 1, "port_hook"), 11, "{mode}");
        let exts = j["extensions"].as_array().unwrap();
        assert_eq!(exts.len(), 6, "{mode}");
        for e in exts {
            assert!(e["verified"].as_bool().unwrap(), "{mode}: {e}");
            assert!(
                e["runs"].as_u64().unwrap() > 0,
                "{mode}: every extension ran: {e}"
            );
            assert_eq!(e["faults"].as_u64(), Some(0), "{mode}: {e}");
        }
        let nat = exts.iter().find(|e| e["name"] == "nat").unwrap();
        assert_eq!(nat["used_as"], serde_json::json!(["action"]));
        assert_eq!(
            nat["runs"].as_u64(),
            Some(11),
            "{mode}: one NAT run per web request"
        );
        let fw = exts.iter().find(|e| e["name"] == "fw").unwrap();
        assert_eq!(fw["used_as"], serde_json::json!(["filter"]));
    }

    // The verifier knows ttl_dec writes only the TTL and checksum: after it, no
    // recirculation. nat writes ipv4.dst, which table 1 matches: recirculated.
    let rv = counter(&verifier, "recirculations");
    let ra = counter(&always, "recirculations");
    assert!(rv > 0, "the NAT path recirculates under the verifier too");
    assert!(rv < ra, "verifier {rv} recirculations, always {ra}");
    assert!(counter(&verifier, "recirculations_avoided") > 0);
    assert_eq!(counter(&always, "recirculations_avoided"), 0);
    assert_eq!(
        counter(&verifier_nc, "recirculations"),
        11,
        "cacheless: exactly the 11 NAT'd packets recirculate"
    );
    // Rule counters do not depend on the caches or the policy.
    let hits = |j: &serde_json::Value| -> Vec<u64> {
        j["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["n_packets"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(hits(&verifier), hits(&always));
    assert_eq!(hits(&verifier), hits(&verifier_nc));
    assert_eq!(hits(&verifier), hits(&always_nc));

    if have_tcpdump() {
        let out = dir.join("verifier");
        for f in outputs(&out) {
            assert_eq!(
                tcpdump_lines(&out.join(&f)).len(),
                pcap_records(&out.join(&f)),
                "{f}"
            );
        }
        let dmz = tcpdump_lines(&out.join("port-3.pcap"));
        assert!(
            dmz.iter()
                .any(|l| l.contains("198.51.100.7.50000 > 10.3.0.5.80")),
            "NAT'd requests reach the web server: {dmz:?}"
        );
        let up = tcpdump_lines(&out.join("port-2.pcap"));
        assert!(
            up.iter()
                .any(|l| l.contains("203.0.113.10.8080 > 198.51.100.7.50000")),
            "replies leave with the published address: {up:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn never_is_unsafe_and_says_so() {
    let dir = scratch("replay-ext-never");
    let o = Command::new(root().join("examples/ext/run.sh"))
        .env("BPFSWITCH", bin())
        .arg("--out-dir")
        .arg(&dir)
        .args(["--reclassify", "never"])
        .output()
        .unwrap();
    let text = ok(&o);
    assert!(text.contains("UNSAFE"), "{text}");
    // Without reclassification, table 1 sees the pre-NAT destination: the web requests are
    // not routed to the DMZ.
    let got = std::fs::read(dir.join("port-3.pcap")).unwrap_or_default();
    let want = std::fs::read(expected().join("port-3.pcap")).unwrap();
    assert_ne!(got, want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn extension_errors_name_the_extension() {
    let dir = scratch("replay-ext-errors");
    let base = |extra: &[&str]| {
        let mut a = vec![
            "replay",
            "--flows",
            "examples/ext/flows.txt",
            "--in",
            "1=examples/ext/inside.pcap",
            "--out-dir",
        ];
        a.push(dir.to_str().unwrap());
        a.extend_from_slice(extra);
        run(&a)
    };
    // A rejected program is refused unless --unverified.
    let o = base(&["--ext", "bad=extensions/unsafe/oob_read.o"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("--ext bad=") && e.contains("rejected by the verifier"),
        "{e}"
    );
    // An unknown map.
    let o = base(&[
        "--ext",
        "nat=extensions/nat.o",
        "--map-update",
        "nat",
        "no_such_map",
        "u32:0",
        "u32:0",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no_such_map"), "{}", stderr(&o));
    // Flows naming extensions that are not loaded.
    let o = base(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`blocklist`, which is not loaded"),
        "{}",
        stderr(&o)
    );
    // A hook naming an extension that is not loaded (with flows that need none).
    let o = run(&[
        "replay",
        "--flows",
        "examples/flows.txt",
        "--in",
        "1=examples/port1.pcap",
        "--out-dir",
        dir.to_str().unwrap(),
        "--port-hook",
        "1=nothing",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nothing"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
