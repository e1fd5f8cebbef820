//! The running switch end to end: `bpfswitch daemon` on veth pairs in a network namespace,
//! raw frames from two hosts, and the client verbs changing its behaviour at runtime
//! (flows, filter extensions, maps, Oko's verbs, port hooks), without a restart.
//!
//! Needs root (network namespaces, AF_PACKET); see `daemon_support` for the bed and for
//! how a missing privilege is reported.

mod daemon_support;

use std::time::Duration;

use daemon_support::*;

/// How long to keep listening for frames that must not arrive, after the switch's counters
/// say it has handled them (the veth hand-off is asynchronous).
const QUIET: Duration = Duration::from_millis(300);
/// How long to wait for frames that must arrive.
const ARRIVE: Duration = Duration::from_secs(5);

const BASE_FLOWS: &str = "\
priority=100,in_port=1,actions=output:2
priority=100,in_port=2,actions=output:1
";

fn is_test(f: &[u8]) -> bool {
    marker(f).is_some()
}

/// Sends `frames` on host A and returns the marked frames host B received (waiting for all
/// of `expect` of them, then for silence).
fn a_to_b(bed: &Bed, frames: &[Vec<u8>], rx_before: u64, expect: usize) -> Vec<Vec<u8>> {
    for f in frames {
        bed.a.send(f);
    }
    bed.wait_rx(1, rx_before + frames.len() as u64);
    let mut got = bed.b.collect(expect, ARRIVE, is_test);
    // Anything beyond what was expected would show up now.
    got.extend(bed.b.collect(usize::MAX, QUIET, is_test));
    got
}

fn markers(frames: &[Vec<u8>]) -> Vec<u32> {
    let mut m: Vec<u32> = frames.iter().filter_map(|f| marker(f)).collect();
    m.sort_unstable();
    m
}

fn flow_packets(bed: &Bed, flow: &str) -> u64 {
    let v = bed.json(&["dump-flows", flow]);
    v["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["n_packets"].as_u64().unwrap())
        .sum()
}

#[test]
fn forwards_per_the_flow_table_and_changes_at_runtime() {
    let Some(mut bed) = Bed::new("forwarding") else {
        return;
    };
    bed.start(
        &format!(
            "{BASE_FLOWS}priority=200,in_port=1,udp,tp_dst=9,actions=drop\n\
             priority=5,in_port=2,udp,tp_dst=7,hard_timeout=1,actions=drop\n"
        ),
        &[],
    );
    let show = bed.ctl(&["show"]);
    assert!(
        show.contains("port 1: sa") && show.contains("port 2: sb"),
        "{show}"
    );

    // A to B: port 9 is dropped by the table, the rest forwarded byte for byte.
    let frames: Vec<Vec<u8>> = (0..20u32)
        .map(|i| udp_a_to_b(IP_A, 1000 + i as u16, if i % 2 == 0 { 9 } else { 5678 }, i))
        .collect();
    let got = a_to_b(&bed, &frames, 0, 10);
    assert_eq!(
        markers(&got),
        (0..20).filter(|i| i % 2 == 1).collect::<Vec<_>>()
    );
    for f in &got {
        let i = marker(f).unwrap() as usize;
        assert_eq!(f, &frames[i], "frame {i} changed on the way");
    }
    // B to A.
    for i in 0..5 {
        bed.b.send(&udp_b_to_a(5678, 1000, 100 + i));
    }
    bed.wait_rx(2, 5);
    let back = bed.a.collect(5, ARRIVE, is_test);
    assert_eq!(markers(&back), vec![100, 101, 102, 103, 104]);

    // Counters: per rule, per port, rx = forwarded + dropped.
    let dump = bed.ctl(&["dump-flows"]);
    assert!(
        dump.contains("n_packets=10, n_bytes=")
            && dump.contains("priority=200,udp,in_port=1,tp_dst=9 actions=drop"),
        "{dump}"
    );
    assert_eq!(flow_packets(&bed, "in_port=1,udp,tp_dst=9"), 10);
    assert_eq!(flow_packets(&bed, "in_port=2"), 5);
    let p1 = bed.port_stats(1);
    assert_eq!(p1["rx_packets"], 20);
    assert_eq!(p1["forwarded"], 10);
    assert_eq!(p1["rx_dropped"], 10);
    assert_eq!(p1["drops"]["action"], 10);
    assert_eq!(p1["tx_packets"], 5);
    let p2 = bed.port_stats(2);
    assert_eq!(p2["tx_packets"], 10);
    let ports = bed.ctl(&["dump-ports"]);
    assert!(ports.contains("  port  1: rx pkts=20, bytes="), "{ports}");
    assert!(ports.contains("drops: action=10"), "{ports}");
    let mf = bed.ctl(&["dpctl-dump-flows"]);
    assert!(mf.contains("in_port=1") && mf.contains("actions:2"), "{mf}");
    assert!(mf.contains("actions:drop"), "{mf}");

    // A higher-priority drop added at runtime takes effect on cached flows...
    bed.ctl(&[
        "add-flow",
        "priority=300,in_port=1,udp,tp_dst=5678,actions=drop",
    ]);
    let frames: Vec<Vec<u8>> = (0..5)
        .map(|i| udp_a_to_b(IP_A, 1001, 5678, 200 + i))
        .collect();
    assert!(a_to_b(&bed, &frames, 20, 0).is_empty());
    // ...and deleting it restores forwarding.
    bed.ctl(&[
        "del-flows",
        "--strict",
        "priority=300,in_port=1,udp,tp_dst=5678",
    ]);
    let frames: Vec<Vec<u8>> = (0..5)
        .map(|i| udp_a_to_b(IP_A, 1001, 5678, 300 + i))
        .collect();
    assert_eq!(
        markers(&a_to_b(&bed, &frames, 25, 5)),
        vec![300, 301, 302, 303, 304]
    );

    // Errors are reported as `bpfswitch: ...` with exit code 1.
    let e = bed.ctl_fails(&["add-flow", "priority=1,tp_dst=80,actions=drop"]);
    assert!(e.contains("tp_dst"), "{e}");
    let e = bed.ctl_fails(&["port-hook", "7", "none"]);
    assert!(e.contains("no port 7"), "{e}");

    // The hard timeout expires the rule without any traffic (workers maintain the tables).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while bed.ctl(&["dump-flows"]).contains("hard_timeout=1") {
        assert!(
            std::time::Instant::now() < deadline,
            "hard_timeout=1 did not expire"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let st = bed.shutdown();
    assert!(st.success(), "{st}\n{}", bed.log());
    assert!(!bed.ctl_exists(), "the control socket is removed at exit");
    assert!(
        bed.log()
            .contains("stopped (shutdown request): received 35"),
        "{}",
        bed.log()
    );
    let e = bed.ctl_fails(&["show"]);
    assert!(e.contains("cannot connect"), "{e}");
}

#[test]
fn sigterm_stops_the_daemon_cleanly() {
    let Some(mut bed) = Bed::new("sigterm") else {
        return;
    };
    bed.start(BASE_FLOWS, &[]);
    bed.signal(libc::SIGTERM);
    let st = bed.wait_exit();
    assert!(st.success(), "{st}\n{}", bed.log());
    assert!(!bed.ctl_exists());
    assert!(bed.log().contains("stopped (SIGTERM)"), "{}", bed.log());
}

#[test]
fn two_workers_share_the_traffic_by_flow() {
    let Some(mut bed) = Bed::new("workers") else {
        return;
    };
    bed.start(BASE_FLOWS, &["--workers", "2"]);
    let frames: Vec<Vec<u8>> = (0..64u32)
        .map(|i| udp_a_to_b(IP_A, 2000 + i as u16, 5678, i))
        .collect();
    let got = a_to_b(&bed, &frames, 0, 64);
    assert_eq!(markers(&got), (0..64).collect::<Vec<_>>());
    let v = bed.json(&["dpctl-dump-flows"]);
    let workers = v["megaflows"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    assert!(bed.ctl(&["show"]).contains("2 workers"));
    assert_eq!(flow_packets(&bed, "in_port=1"), 64);
}

#[test]
fn filter_extension_and_map_updates_change_behaviour_at_runtime() {
    let Some(mut bed) = Bed::new("filter") else {
        return;
    };
    bed.start(BASE_FLOWS, &[]);
    let fw = ext_path("fw_stateless_filter.o");
    let out = bed.ctl(&["ext", "load", "fw", &fw]);
    assert!(out.contains("loaded fw: xdp program"), "{out}");
    // A rule cannot reference an extension that is not loaded.
    let e = bed.ctl_fails(&[
        "add-flow",
        "priority=200,in_port=1,ip,bpf_filter=nope,actions=drop",
    ]);
    assert!(e.contains("`nope` is not loaded"), "{e}");
    bed.ctl(&[
        "add-flow",
        "priority=200,in_port=1,ip,bpf_filter=fw,actions=drop",
    ]);

    let ip3 = 0x0a00_0003;
    let mixed = |base: u32| -> Vec<Vec<u8>> {
        (0..10u32)
            .map(|i| udp_a_to_b(if i % 2 == 0 { IP_A } else { ip3 }, 1234, 5678, base + i))
            .collect()
    };
    // The map is empty: everything passes.
    assert_eq!(a_to_b(&bed, &mixed(0), 0, 10).len(), 10);

    // Blocking 10.0.0.1 drops its packets from now on, without a restart.
    bed.ctl(&["map", "update", "fw", "blocked_src", "ip:10.0.0.1", "u64:0"]);
    let got = a_to_b(&bed, &mixed(100), 10, 5);
    assert_eq!(markers(&got), vec![101, 103, 105, 107, 109]);
    // The filter counts its hits in the map value.
    let dump = bed.ctl(&["map", "dump", "fw", "blocked_src"]);
    assert_eq!(
        dump,
        "key: 0a 00 00 01  value: 05 00 00 00 00 00 00 00\nFound 1 element\n"
    );
    assert_eq!(flow_packets(&bed, "in_port=1,ip,bpf_filter=fw"), 5);
    let list = bed.json(&["ext", "list"]);
    let e = &list["extensions"][0];
    assert_eq!(e["name"], "fw");
    assert_eq!(e["verdict"], "accepted");
    assert!(e["runs"].as_u64().unwrap() >= 20, "{e}");
    assert_eq!(e["used_by"].as_array().unwrap().len(), 1);
    let table = bed.ctl(&["ext", "list"]);
    assert!(
        table.starts_with("NAME") && table.contains("blocked_src"),
        "{table}"
    );

    // Deleting the key lets 10.0.0.1 through again.
    bed.ctl(&["map", "delete", "fw", "blocked_src", "ip:10.0.0.1"]);
    assert_eq!(a_to_b(&bed, &mixed(200), 20, 10).len(), 10);

    // Unloading is refused while the rule references it, naming the rule...
    let e = bed.ctl_fails(&["ext", "unload", "fw"]);
    assert!(
        e.contains("priority=200,ip,in_port=1,bpf_filter=fw actions=drop"),
        "{e}"
    );
    // ...and accepted once the rule is gone.
    bed.ctl(&["del-flows", "bpf_filter=fw"]);
    bed.ctl(&["ext", "unload", "fw"]);
    assert_eq!(bed.ctl(&["ext", "list"]), "no extensions loaded\n");
    assert_eq!(a_to_b(&bed, &mixed(300), 30, 10).len(), 10);

    // A program the verifier rejects is refused, or runs on the interpreter on request.
    let bad = ext_path("unsafe/oob_read.o");
    let e = bed.ctl_fails(&["ext", "load", "bad", &bad]);
    assert!(e.contains("rejected by the verifier"), "{e}");
    let out = bed.ctl(&["ext", "load", "bad", &bad, "--unverified"]);
    assert!(
        out.contains("loaded unverified, tier: interpreter"),
        "{out}"
    );
    let list = bed.json(&["ext", "list"]);
    let e = &list["extensions"][0];
    assert_eq!(
        (&e["verdict"], &e["tier"]),
        (&"unverified".into(), &"interpreter".into())
    );
    assert!(
        e["reason"].as_str().unwrap().contains("out of bounds"),
        "{e}"
    );
    let e = bed.ctl_fails(&["ext", "load", "bad", &bad, "--unverified"]);
    assert!(e.contains("bad"), "{e}");
    bed.ctl(&[
        "ext",
        "load",
        "bad",
        &ext_path("fw_stateless_filter.o"),
        "--replace",
    ]);
    assert_eq!(bed.json(&["ext", "list"])["extensions"][0]["tier"], "jit");
}

#[test]
fn oko_verbs_are_aliases() {
    let Some(mut bed) = Bed::new("oko") else {
        return;
    };
    bed.start(BASE_FLOWS, &[]);
    let obj = ext_path("ubpf/oko_blocklist.o");
    let e = bed.ctl_fails(&["load-filter-prog", "br9", "1", &obj]);
    assert!(e.contains("no bridge named br9"), "{e}");
    let out = bed.ctl(&["load-filter-prog", "br0", "1", &obj]);
    assert!(out.contains("loaded 1: ubpf program"), "{out}");
    bed.ctl(&[
        "add-flow",
        "priority=200,in_port=1,ip,filter_prog=1,actions=drop",
    ]);
    // Oko's own syntax: map 0 of program 1, key and value as decimal bytes.
    bed.ctl(&[
        "update-map",
        "br0",
        "1",
        "0",
        "key",
        "10",
        "0",
        "0",
        "1",
        "value",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
    ]);
    let ip3 = 0x0a00_0003;
    let frames: Vec<Vec<u8>> = (0..6u32)
        .map(|i| udp_a_to_b(if i < 3 { IP_A } else { ip3 }, 1234, 5678, i))
        .collect();
    assert_eq!(markers(&a_to_b(&bed, &frames, 0, 3)), vec![3, 4, 5]);
    let dump = bed.ctl(&["dump-map", "br0", "1", "0"]);
    assert!(
        dump.starts_with("key: 0a 00 00 01  value: 03 00 00 00"),
        "{dump}"
    );
    // The typed form works through the alias too.
    bed.ctl(&[
        "update-map",
        "br0",
        "1",
        "blocklist",
        "ip:10.0.0.3",
        "u64:0",
    ]);
    let frames: Vec<Vec<u8>> = (0..2u32)
        .map(|i| udp_a_to_b(ip3, 1234, 5678, 10 + i))
        .collect();
    assert!(a_to_b(&bed, &frames, 6, 0).is_empty());
    let e = bed.ctl_fails(&["dump-map", "br0", "1", "7"]);
    assert!(e.contains("no map `7`") && e.contains("0=blocklist"), "{e}");
}

#[test]
fn port_hook_drops_a_udp_flood_before_classification() {
    let Some(mut bed) = Bed::new("porthook") else {
        return;
    };
    bed.start(BASE_FLOWS, &[]);
    bed.ctl(&["ext", "load", "flood", &ext_path("udp_flood_drop.o")]);
    bed.ctl(&[
        "map",
        "update",
        "flood",
        "blocked_ports",
        "u32:9999",
        "u32:1",
    ]);
    bed.ctl(&["port-hook", "1", "flood"]);
    assert!(bed.ctl(&["show"]).contains("port 1: sa") && bed.ctl(&["show"]).contains("hook flood"));

    let mut frames: Vec<Vec<u8>> = (0..200u32)
        .map(|i| udp_a_to_b(IP_A, 3000 + (i % 50) as u16, 9999, 1000 + i))
        .collect();
    frames.extend((0..10u32).map(|i| udp_a_to_b(IP_A, 4000, 5678, i)));
    let got = a_to_b(&bed, &frames, 0, 10);
    assert_eq!(markers(&got), (0..10).collect::<Vec<_>>());
    let p1 = bed.port_stats(1);
    assert_eq!(p1["drops"]["port_hook"], 200, "{p1}");
    assert_eq!(p1["forwarded"], 10);
    // Dropped before classification: the rule saw only the 10 that passed.
    assert_eq!(flow_packets(&bed, "in_port=1"), 10);
    let ports = bed.ctl(&["dump-ports", "1"]);
    assert!(
        ports.contains("drop=200") && ports.contains("port_hook=200"),
        "{ports}"
    );
    let list = bed.json(&["ext", "list"]);
    assert_eq!(list["extensions"][0]["runs"], 210);
    assert_eq!(list["extensions"][0]["drops"], 200);

    let e = bed.ctl_fails(&["ext", "unload", "flood"]);
    assert!(e.contains("port hook on port 1"), "{e}");
    bed.ctl(&["port-hook", "1", "none"]);
    let frames: Vec<Vec<u8>> = (0..5u32)
        .map(|i| udp_a_to_b(IP_A, 3000, 9999, 2000 + i))
        .collect();
    assert_eq!(a_to_b(&bed, &frames, 210, 5).len(), 5);
    bed.ctl(&["ext", "unload", "flood"]);
}

#[test]
fn vlan_tags_survive_the_kernel_and_are_matched() {
    let Some(mut bed) = Bed::new("vlan") else {
        return;
    };
    // The kernel moves a received frame's outer tag into packet metadata; the port puts it
    // back, so rules see it and it leaves as it came.
    bed.start(
        "priority=300,in_port=1,dl_vlan=10,actions=output:2\n\
         priority=200,in_port=1,dl_vlan=20,actions=pop_vlan,output:2\n\
         priority=100,in_port=1,actions=drop\n",
        &[],
    );
    let f10 = tagged(&udp_a_to_b(IP_A, 1, 2, 1), 10, 5);
    let f20 = tagged(&udp_a_to_b(IP_A, 1, 2, 2), 20, 0);
    let untagged = udp_a_to_b(IP_A, 1, 2, 3);
    let got = a_to_b(&bed, &[f10.clone(), f20, untagged.clone()], 0, 2);
    assert_eq!(
        markers(&got),
        vec![1, 2],
        "untagged frames hit the drop rule"
    );
    let g10 = got.iter().find(|f| marker(f) == Some(1)).unwrap();
    assert_eq!(g10, &f10, "VLAN 10 forwarded with its tag");
    let g20 = got.iter().find(|f| marker(f) == Some(2)).unwrap();
    assert_eq!(g20, &udp_a_to_b(IP_A, 1, 2, 2), "pop_vlan removed the tag");
}
