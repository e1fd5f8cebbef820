//! `bpfswitch replay` on the bundled example: with no arguments (from a directory that is not
//! the repository, as after `cargo install`), with explicit arguments, cacheless and without
//! the exact-match cache, the outputs are byte-identical to `tests/expected/example/`, which
//! `examples/gen_example.py` computed by applying the flow table by hand; tcpdump opens them;
//! the JSON summary's counters add up.

mod cli_common;
use cli_common::*;

fn expected() -> std::path::PathBuf {
    root().join("tests/expected/example")
}

fn example_args(out: &std::path::Path) -> Vec<String> {
    vec![
        "replay".into(),
        "--flows".into(),
        "examples/flows.txt".into(),
        "--in".into(),
        "1=examples/port1.pcap".into(),
        "--in".into(),
        "2=examples/port2.pcap".into(),
        "--out-dir".into(),
        out.display().to_string(),
    ]
}

#[test]
fn no_arguments_runs_the_bundled_example() {
    let cwd = scratch("replay-noargs");
    let o = run_in(Some(&cwd), &["replay"]);
    let text = ok(&o);
    let out = cwd.join("replay-out");
    assert!(text.contains("outputs in replay-out/"), "{text}");
    assert!(text.contains("rx = forwarded + dropped: checked"), "{text}");
    assert!(text.contains("n_packets="), "{text}");
    assert_same_outputs(&out, &expected(), "replay with no arguments");
    if have_tcpdump() {
        for f in outputs(&out) {
            let lines = tcpdump_lines(&out.join(&f));
            assert_eq!(
                lines.len(),
                pcap_records(&out.join(&f)),
                "tcpdump reads every packet of {f}"
            );
        }
        let l = tcpdump_lines(&out.join("port-1.pcap"));
        assert!(
            l.iter().any(|l| l.contains("vlan 101")),
            "the pushed VLAN is visible to tcpdump: {l:?}"
        );
    }
    // A second run into the same directory replaces the captures.
    let o = run_in(Some(&cwd), &["replay", "--no-cache"]);
    ok(&o);
    assert_same_outputs(&out, &expected(), "second run");
    let _ = std::fs::remove_dir_all(&cwd);
}

#[test]
fn cached_cacheless_and_no_emc_runs_agree_with_the_expected_captures() {
    let dir = scratch("replay-modes");
    let mut reports = Vec::new();
    for (mode, extra) in [
        ("default", vec![]),
        ("no-cache", vec!["--no-cache"]),
        ("no-emc", vec!["--no-emc"]),
        ("emc on every hit", vec!["--emc-insert-inv-prob", "1"]),
    ] {
        let out = dir.join(mode.replace(' ', "-"));
        let mut args = example_args(&out);
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("--json".into());
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = ok(&run(&a));
        assert_same_outputs(&out, &expected(), mode);
        let j: serde_json::Value = serde_json::from_str(&text).expect("--json prints JSON");
        reports.push((mode, j));
    }
    for (mode, j) in &reports {
        let rx = j["total_rx"].as_u64().unwrap();
        assert_eq!(rx, 52, "{mode}: every packet of both captures");
        assert_eq!(
            rx,
            j["total_forwarded"].as_u64().unwrap() + j["total_dropped"].as_u64().unwrap()
        );
        let mut tx_by_port = std::collections::BTreeMap::new();
        for p in j["ports"].as_array().unwrap() {
            assert_eq!(
                p["rx"].as_u64().unwrap(),
                p["forwarded"].as_u64().unwrap() + p["dropped"].as_u64().unwrap(),
                "{mode}: port {}",
                p["port"]
            );
            let by_reason: u64 = p["drops"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum();
            assert_eq!(by_reason, p["dropped"].as_u64().unwrap());
            tx_by_port.insert(
                p["port"].as_str().unwrap().to_string(),
                p["tx"].as_u64().unwrap(),
            );
        }
        for (port, n) in &tx_by_port {
            if *n > 0 {
                let f = expected().join(format!("port-{port}.pcap"));
                assert_eq!(*n as usize, pcap_records(&f), "{mode}: tx of port {port}");
            }
        }
        // No controller is connected: the packet-in for an unknown destination is a drop.
        let p2 = &j["ports"].as_array().unwrap()[1];
        assert_eq!(p2["drops"]["no_controller"].as_u64(), Some(1), "{mode}");
        // Every packet hit exactly one table-0 rule.
        let t0: u64 = j["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["table"] == 0)
            .map(|r| r["n_packets"].as_u64().unwrap())
            .sum();
        assert_eq!(t0, rx, "{mode}: table-0 hits");
        let c = &j["cache"];
        let lookups = c["emc_hits"].as_u64().unwrap()
            + c["megaflow_hits"].as_u64().unwrap()
            + c["upcalls"].as_u64().unwrap();
        assert_eq!(
            lookups, rx,
            "{mode}: one lookup per packet (no recirculation here)"
        );
    }
    let by_mode = |m: &str| &reports.iter().find(|(n, _)| *n == m).unwrap().1;
    assert_eq!(by_mode("no-cache")["cache"]["upcalls"].as_u64(), Some(52));
    assert!(
        by_mode("default")["cache"]["megaflow_hits"]
            .as_u64()
            .unwrap()
            > 20
    );
    assert_eq!(by_mode("no-emc")["cache"]["emc_hits"].as_u64(), Some(0));
    assert!(
        by_mode("emc on every hit")["cache"]["emc_hits"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Rule counters do not depend on the caches.
    let hits = |m: &str| -> Vec<u64> {
        by_mode(m)["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["n_packets"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(hits("default"), hits("no-cache"));
    assert_eq!(hits("default"), hits("emc on every hit"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_recording_controller_gets_the_packet_ins() {
    let dir = scratch("replay-controller");
    let mut args = example_args(&dir);
    args.push("--controller".into());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = ok(&run(&a));
    // With a controller, the unknown destination (192.168.5.5, from the uplink) and the two
    // TTL-1 packets that `dec_ttl` met are packet-ins instead of drops.
    assert!(text.contains("port-controller.pcap (3)"), "{text}");
    let j: serde_json::Value = {
        let mut a2 = a.clone();
        a2.push("--json");
        serde_json::from_str(&ok(&run(&a2))).unwrap()
    };
    for p in j["ports"].as_array().unwrap() {
        let d = p["drops"].as_object().unwrap();
        assert!(
            !d.contains_key("no_controller") && !d.contains_key("ttl_exceeded"),
            "{p}"
        );
    }
    // The port captures are unchanged.
    for f in ["port-1.pcap", "port-2.pcap", "port-3.pcap"] {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(expected().join(f)).unwrap(),
            "{f}"
        );
    }
    let ctl = dir.join("port-controller.pcap");
    assert_eq!(pcap_records(&ctl), 3);
    let c = std::fs::read(&ctl).unwrap();
    let mut at = 24;
    let mut dsts = Vec::new();
    while at < c.len() {
        let caplen = u32::from_le_bytes(c[at + 8..at + 12].try_into().unwrap()) as usize;
        let f = &c[at + 16..at + 16 + caplen];
        if f.len() >= 34 && f[12..14] == [8, 0] {
            dsts.push(f[30..34].to_vec());
        }
        at += 16 + caplen;
    }
    assert!(dsts.contains(&vec![192, 168, 5, 5]), "{dsts:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn errors_are_reported_with_context() {
    let dir = scratch("replay-errors");
    let bad = dir.join("bad.txt");
    std::fs::write(
        &bad,
        "table=0,actions=drop\ntable=0,tcp,tp_dst=80,actions=output:2,frob\n",
    )
    .unwrap();
    let out = dir.join("out");
    let o = run(&[
        "replay",
        "--flows",
        bad.to_str().unwrap(),
        "--in",
        "1=examples/port1.pcap",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("line 2") && e.contains("column 40"), "{e}");
    let o = run(&["replay", "--flows", "examples/flows.txt"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--in"), "{}", stderr(&o));
    let o = run(&[
        "replay",
        "--flows",
        "examples/flows.txt",
        "--in",
        "1=/no/such.pcap",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/no/such.pcap"), "{}", stderr(&o));
    // Refuses to write over an input.
    std::fs::copy(root().join("examples/port1.pcap"), dir.join("port-1.pcap")).unwrap();
    let o = run(&[
        "replay",
        "--flows",
        "examples/flows.txt",
        "--in",
        &format!("1={}", dir.join("port-1.pcap").display()),
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(dir.join("port-1.pcap").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
