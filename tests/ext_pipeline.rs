//! The extension corpus THROUGH THE SWITCH: every program of `extensions/` loaded into a
//! `Datapath` and used by OpenFlow rules as a match filter (`bpf_filter=NAME`, Oko's
//! `filter_prog=ID`), as an action (`bpf(NAME)`, `prog:ID`, followed by further actions and
//! tables that match on the rewritten fields) or as a port hook, on crafted traffic.
//!
//! Each test checks the effect on what the switch transmits (port and exact bytes, checksums
//! recomputed from scratch here), on drops counted by reason, and on map contents; and every
//! scenario runs four times (caches on / `DpConfig::cacheless()`, × `reclassify=verifier` /
//! `always`), which must agree on all of it (`sw::each_mode`). Where the verifier's write
//! set decides recirculation, the counters say which way it went.
//!
//! Time-dependent programs get time from the `ts_ns` passed to `Worker::process`.

#[path = "ext_pipeline/net.rs"]
mod net;
#[path = "ext_pipeline/sw.rs"]
mod sw;

use bpfswitch::dpif::Fate;
use ofproto_bridge::bridge::Reclassify;
use ofproto_bridge::DropReason;

use net::*;
use sw::{each_mode, run_in, Sent, Sw};

fn u64le(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Asserts that `s` is exactly one transmission of `frame` on `port`.
#[track_caller]
fn assert_out(s: &Sent, port: u32, frame: &[u8], what: &str) {
    assert_eq!(s.fate, Fate::Forwarded, "{what}: fate");
    assert_eq!(s.out.len(), 1, "{what}: one transmission, got {:?}", s.out);
    assert_eq!(s.out[0].0, port, "{what}: output port");
    assert_eq!(s.out[0].1, frame, "{what}: output bytes");
}

/// Asserts that `s` was dropped for `reason` without any transmission.
#[track_caller]
fn assert_dropped(s: &Sent, reason: DropReason, what: &str) {
    assert_eq!(s.fate, Fate::Dropped(reason), "{what}: fate");
    assert!(s.out.is_empty(), "{what}: nothing sent, got {:?}", s.out);
}

// ---------------------------------------------------------------------------------------
// Stateless firewall
// ---------------------------------------------------------------------------------------

#[test]
fn fw_stateless_action_drops_listed_sources_counts_hits_and_passes_the_rest() {
    let bad = ip(10, 0, 0, 66);
    let good = ip(10, 0, 0, 1);
    let runs = each_mode(|sw| {
        sw.load("fw", "fw_stateless.o")
            .flows(
                "priority=10,in_port=1,actions=bpf(fw),output:2\n\
                 priority=0,actions=drop",
            )
            .map("fw", "blocked_src", "ip:10.0.0.66", "u64:0");
        let mut sent = Vec::new();
        for i in 0..9u16 {
            let src = if i % 3 == 0 { bad } else { good };
            sent.push(sw.send(1, &udp(src, ip(10, 1, 0, 1), 1000 + i % 2, 53, b"x"), 0));
        }
        sent.push(sw.send(1, &arp(), 0));
        (sent, sw.dump("fw", "blocked_src"))
    });
    let (sent, map) = &runs[0].result;
    for (i, s) in sent[..9].iter().enumerate() {
        let src = if i % 3 == 0 { bad } else { good };
        let f = udp(src, ip(10, 1, 0, 1), 1000 + i as u16 % 2, 53, b"x");
        if i % 3 == 0 {
            assert_dropped(s, DropReason::ExtDrop, "listed source");
        } else {
            assert_out(s, 2, &f, "unlisted source, untouched");
        }
    }
    assert_out(&sent[9], 2, &arp(), "ARP is not IPv4: passes");
    assert_eq!(
        map,
        &vec![(vec![10, 0, 0, 66], u64le(3))],
        "hit counter = listed packets, cache or not"
    );
    for r in &runs {
        assert_eq!(
            r.stats.ports[&1].drops[&DropReason::ExtDrop],
            3,
            "{:?}",
            r.mode
        );
    }
    // It never writes the packet: under the verifier no pass recirculates.
    for cached in [true, false] {
        let v = run_in(&runs, cached, Reclassify::Verifier);
        let a = run_in(&runs, cached, Reclassify::Always);
        assert_eq!(v.stats.recirculations, 0, "{:?}", v.mode);
        assert!(v.stats.recircs_avoided > 0, "{:?}", v.mode);
        // Always: every packet the extension passed was recirculated once.
        assert_eq!(a.stats.recirculations, 7, "{:?}", a.mode);
    }
    assert_eq!(
        run_in(&runs, false, Reclassify::Verifier)
            .stats
            .recircs_avoided,
        10,
        "cacheless: one avoided recirculation per packet"
    );
}

#[test]
fn fw_stateless_filter_is_a_match_field_and_sees_map_updates_through_the_cache() {
    let src = |i: u8| ip(10, 0, 0, i);
    let frame = |i: u8| udp(src(i), ip(10, 1, 0, 1), 5000, 53, b"payload");
    let runs = each_mode(|sw| {
        sw.load("fwf", "fw_stateless_filter.o")
            .flows(
                "priority=20,ip,bpf_filter=fwf,actions=drop\n\
                 priority=10,actions=output:2",
            )
            .map("fwf", "blocked_src", "ip:10.0.0.66", "u64:0");
        let mut sent = Vec::new();
        for _ in 0..3 {
            sent.push(sw.send(1, &frame(66), 0));
            sent.push(sw.send(1, &frame(7), 0));
        }
        // Block 10.0.0.7 while its flow is cached; unblock 10.0.0.66.
        sw.map("fwf", "blocked_src", "ip:10.0.0.7", "u64:0");
        sw.dp
            .map_delete("fwf", "blocked_src", "ip:10.0.0.66")
            .expect("delete");
        for _ in 0..2 {
            sent.push(sw.send(1, &frame(66), 0));
            sent.push(sw.send(1, &frame(7), 0));
        }
        (sent, sw.dump("fwf", "blocked_src"))
    });
    let (sent, map) = &runs[0].result;
    for i in 0..3 {
        assert_dropped(
            &sent[2 * i],
            DropReason::Action,
            "listed: the drop rule matches",
        );
        assert_out(
            &sent[2 * i + 1],
            2,
            &frame(7),
            "unlisted: the filter says no",
        );
    }
    for i in 3..5 {
        assert_out(&sent[2 * i], 2, &frame(66), "no longer listed");
        assert_dropped(&sent[2 * i + 1], DropReason::Action, "newly listed");
    }
    assert_eq!(map, &vec![(vec![10, 0, 0, 7], u64le(2))]);
    let cached = run_in(&runs, true, Reclassify::Verifier);
    assert!(
        cached.stats.megaflow_hits + cached.stats.emc_hits > 0,
        "the cache was used"
    );
    // It counts hits, so it is stateful: it ran on every packet, cache hit or not.
    assert_eq!(cached.stats.filter_runs, 10);
    assert_eq!(cached.stats.filter_cached, 0);
}

#[test]
fn fw_stateless_legacy_map_definition_works_in_the_pipeline() {
    let runs = each_mode(|sw| {
        sw.load("fwl", "legacy/fw_stateless_legacy.o")
            .flows("in_port=1,actions=bpf(fwl),output:2")
            .map("fwl", "blocked_src", "ip:192.0.2.9", "u64:0");
        let a = sw.send(1, &tcp(ip(192, 0, 2, 9), ip(10, 0, 0, 1), 1, 2, b""), 0);
        let b = sw.send(1, &tcp(ip(192, 0, 2, 8), ip(10, 0, 0, 1), 1, 2, b""), 0);
        (a, b, sw.dump("fwl", "blocked_src"))
    });
    let (a, b, map) = &runs[0].result;
    assert_dropped(a, DropReason::ExtDrop, "listed");
    assert_out(
        b,
        2,
        &tcp(ip(192, 0, 2, 8), ip(10, 0, 0, 1), 1, 2, b""),
        "unlisted",
    );
    assert_eq!(map, &vec![(vec![192, 0, 2, 9], u64le(1))]);
}

// ---------------------------------------------------------------------------------------
// Stateful firewall
// ---------------------------------------------------------------------------------------

/// conntrack key of a TCP/UDP 5-tuple as seen outbound.
fn ct_key(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, proto: u8) -> Vec<u8> {
    let mut k = Vec::new();
    k.extend_from_slice(&src);
    k.extend_from_slice(&dst);
    k.extend_from_slice(&sport.to_be_bytes());
    k.extend_from_slice(&dport.to_be_bytes());
    k.extend_from_slice(&[proto, 0, 0, 0]);
    k
}

#[test]
fn fw_stateful_filter_state_is_shared_by_every_rule_that_references_it() {
    let inside = ip(10, 0, 0, 1);
    let outside = ip(192, 0, 2, 1);
    let out_syn = tcp(inside, outside, 40000, 80, b"GET /");
    let reply = tcp(outside, inside, 80, 40000, b"200 OK");
    let stranger = tcp(outside, inside, 81, 40000, b"hello");
    let runs = each_mode(|sw| {
        // Two rules, one per direction, both consult the same filter: the outbound rule's
        // run records the connection, the inbound rule's run finds it.
        sw.load("fw", "fw_stateful_filter.o")
            .flows(
                "priority=20,in_port=1,ip,bpf_filter=fw,actions=output:2\n\
                 priority=20,in_port=2,ip,bpf_filter=fw,actions=output:1\n\
                 priority=0,actions=drop",
            )
            .map(
                "fw",
                "fw_config",
                "u32:0",
                "u32:1 ip:0.0.0.0 ip:0.0.0.0 u32:0",
            );
        let sent = vec![
            sw.send(2, &reply, 0),
            sw.send(1, &out_syn, 1),
            sw.send(2, &reply, 2),
            sw.send(2, &stranger, 3),
            sw.send(2, &reply, 4),
            sw.send(1, &out_syn, 5),
        ];
        (sent, sw.dump("fw", "conntrack"))
    });
    let (sent, ct) = &runs[0].result;
    assert_dropped(
        &sent[0],
        DropReason::Action,
        "a reply before any outbound packet",
    );
    assert_out(&sent[1], 2, &out_syn, "outbound");
    assert_out(
        &sent[2],
        1,
        &reply,
        "the reply, once the connection is recorded",
    );
    assert_dropped(&sent[3], DropReason::Action, "inbound from another port");
    assert_out(&sent[4], 1, &reply, "the reply again (cached megaflow)");
    assert_out(&sent[5], 2, &out_syn, "outbound again");
    assert_eq!(
        ct,
        &vec![(
            ct_key([10, 0, 0, 1], [192, 0, 2, 1], 40000, 80, 6),
            u64le(4)
        )],
        "one connection, 4 packets in both directions"
    );
    let c = run_in(&runs, true, Reclassify::Verifier);
    assert!(
        c.stats.filter_mismatches > 0,
        "the cached deny of the reply was re-checked"
    );
}

#[test]
fn fw_stateful_action_by_inside_network_drops_unsolicited_inbound() {
    let runs = each_mode(|sw| {
        sw.load("fw", "fw_stateful.o")
            .flows(
                "in_port=1,actions=bpf(fw),output:2\n\
                 in_port=2,actions=bpf(fw),output:1",
            )
            .map(
                "fw",
                "fw_config",
                "u32:0",
                "u32:0 ip:10.0.0.0 ip:255.0.0.0 u32:0",
            );
        let q = udp(ip(10, 9, 9, 9), ip(198, 51, 100, 53), 3333, 53, b"query");
        let a = udp(ip(198, 51, 100, 53), ip(10, 9, 9, 9), 53, 3333, b"answer");
        let spoof = udp(ip(198, 51, 100, 53), ip(10, 9, 9, 9), 53, 3334, b"spoofed");
        // The inside network decides direction, not the port: an "outbound" packet that
        // enters on port 2 still records its connection.
        let q2 = udp(ip(10, 1, 1, 1), ip(203, 0, 113, 1), 7, 7, b"echo");
        let a2 = udp(ip(203, 0, 113, 1), ip(10, 1, 1, 1), 7, 7, b"echo");
        let sent = vec![
            sw.send(2, &a, 0),
            sw.send(1, &q, 1),
            sw.send(2, &a, 2),
            sw.send(2, &spoof, 3),
            sw.send(2, &q2, 4),
            sw.send(1, &a2, 5),
        ];
        (sent, sw.dump("fw", "conntrack"), [q, a, q2, a2])
    });
    let (sent, ct, [q, a, q2, a2]) = &runs[0].result;
    assert_dropped(&sent[0], DropReason::ExtDrop, "unsolicited answer");
    assert_out(&sent[1], 2, q, "query");
    assert_out(&sent[2], 1, a, "answer");
    assert_dropped(&sent[3], DropReason::ExtDrop, "answer to another port");
    assert_out(&sent[4], 1, q2, "outbound by source");
    assert_out(&sent[5], 2, a2, "its answer");
    assert_eq!(
        ct,
        &vec![
            (ct_key([10, 1, 1, 1], [203, 0, 113, 1], 7, 7, 17), u64le(2)),
            (
                ct_key([10, 9, 9, 9], [198, 51, 100, 53], 3333, 53, 17),
                u64le(2)
            ),
        ]
    );
    for r in &runs {
        assert_eq!(
            r.stats.ports[&2].drops[&DropReason::ExtDrop],
            2,
            "{:?}",
            r.mode
        );
    }
}

// ---------------------------------------------------------------------------------------
// Rate limiter
// ---------------------------------------------------------------------------------------

#[test]
fn rate_limiter_spends_the_burst_and_refills_from_the_packet_timestamps() {
    const MS: u64 = 1_000_000;
    let a = udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 1, 2, b"a");
    let b = udp(ip(10, 0, 0, 2), ip(10, 1, 0, 1), 1, 2, b"b");
    let runs = each_mode(|sw| {
        // 10 packets/s, burst 3.
        sw.load("rl", "rate_limiter.o")
            .flows("in_port=1,ip,actions=bpf(rl),output:2")
            .map("rl", "rl_config", "u32:0", "u64:10 u64:3");
        let t0 = 1_000 * MS;
        let mut sent = Vec::new();
        for i in 0..5 {
            sent.push(sw.send(1, &a, t0 + i)); // the burst, then out of tokens
        }
        sent.push(sw.send(1, &b, t0 + 5)); // another source has its own bucket
        sent.push(sw.send(1, &a, t0 + 100 * MS)); // 100 ms at 10/s: one more token
        sent.push(sw.send(1, &a, t0 + 100 * MS + 1));
        let mid = sw
            .lookup("rl", "rl_buckets", "ip:10.0.0.1")
            .expect("bucket");
        for i in 0..4 {
            sent.push(sw.send(1, &a, t0 + 10_000 * MS + i)); // refilled up to the burst only
        }
        (sent, mid, sw.dump("rl", "rl_buckets"))
    });
    let (sent, mid, buckets) = &runs[0].result;
    let verdicts: Vec<bool> = sent.iter().map(|s| s.fate == Fate::Forwarded).collect();
    assert_eq!(
        verdicts,
        [true, true, true, false, false, true, true, false, true, true, true, false],
        "{sent:?}"
    );
    for s in sent {
        match s.fate {
            Fate::Forwarded => assert_eq!(s.out.len(), 1),
            f => assert_eq!(f, Fate::Dropped(DropReason::ExtDrop)),
        }
    }
    assert_out(&sent[5], 2, &b, "bytes untouched");
    // At t0 the bucket starts full (3e9 nanotokens) and pays 1e9; each ns adds 10. After
    // t0+2 it holds 20, t0+3 and t0+4 drop (30, 40); at t0+100 ms it has earned exactly
    // 1e9 more (99_999_996 ns x 10 + 40), pays it, and t0+100 ms+1 drops with 10 left.
    let t0 = 1_000 * MS;
    assert_eq!(
        get_u64(mid, 8),
        t0 + 100 * MS + 1,
        "last_ns is the packet's timestamp"
    );
    assert_eq!(get_u64(mid, 0), 10, "nanotokens left");
    assert_eq!(buckets.len(), 2);
    let a_bucket = &buckets[0].1;
    // 10 s later the refill is capped at the burst: three pass, the fourth drops.
    assert_eq!(get_u64(a_bucket, 8), t0 + 10_000 * MS + 3);
    assert_eq!(get_u64(a_bucket, 0), 30);
    for r in &runs {
        assert_eq!(
            r.stats.ports[&1].drops[&DropReason::ExtDrop],
            4,
            "{:?}",
            r.mode
        );
    }
}

// ---------------------------------------------------------------------------------------
// NAT
// ---------------------------------------------------------------------------------------

/// `frame` with the IPv4 destination and L4 destination port rewritten (checksums fixed
/// from scratch, a zero UDP checksum left zero).
fn rewritten_dst(frame: &[u8], daddr: [u8; 4], dport: u16) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[30..34].copy_from_slice(&daddr);
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    fix_checksums(&mut f);
    f
}

#[test]
fn nat_rewrites_destination_fixes_checksums_and_later_tables_match_the_new_address() {
    let vip = ip(10, 0, 0, 100);
    let client = ip(172, 16, 0, 5);
    let frames = [
        udp(client, vip, 5555, 80, b"udp with checksum"),
        udp_nocsum(client, vip, 5556, 80, b"udp without checksum"),
        tcp(client, vip, 5557, 80, b"tcp"),
        udp(client, vip, 5558, 81, b"no rule for this port"),
        udp(client, ip(10, 0, 0, 101), 5559, 80, b"nor for this address"),
    ];
    let runs = each_mode(|sw| {
        sw.load("nat", "nat.o")
            .flows(
                "table=0,priority=10,in_port=1,ip,actions=bpf(nat),goto_table:1\n\
                 table=1,priority=20,udp,nw_dst=192.168.1.10,tp_dst=8080,actions=output:4\n\
                 table=1,priority=10,ip,nw_dst=192.168.1.10,actions=output:2\n\
                 table=1,priority=0,actions=output:3",
            )
            .map(
                "nat",
                "nat_rules",
                "ip:10.0.0.100 be16:80 u8:17 u8:0",
                "ip:192.168.1.10 be16:8080 u16:0",
            )
            .map(
                "nat",
                "nat_rules",
                "ip:10.0.0.100 be16:80 u8:6 u8:0",
                "ip:192.168.1.10 be16:8080 u16:0",
            );
        // Twice each: the second time from the caches.
        let mut sent = Vec::new();
        for f in frames.iter().chain(frames.iter()) {
            sent.push(sw.send(1, f, 0));
        }
        sent
    });
    let sent = &runs[0].result;
    let real = [192, 168, 1, 10];
    for round in 0..2 {
        let s = &sent[round * 5..];
        let udp_out = rewritten_dst(&frames[0], real, 8080);
        assert_out(
            &s[0],
            4,
            &udp_out,
            "UDP: table 1 sees nw_dst and tp_dst rewritten",
        );
        assert_checksums_ok(&s[0].out[0].1, "UDP");
        let nocsum = rewritten_dst(&frames[1], real, 8080);
        assert_eq!(&nocsum[40..42], &[0, 0]);
        assert_out(&s[1], 4, &nocsum, "a zero UDP checksum stays zero");
        let tcp_out = rewritten_dst(&frames[2], real, 8080);
        assert_out(&s[2], 2, &tcp_out, "TCP");
        assert_checksums_ok(&s[2].out[0].1, "TCP");
        assert_out(&s[3], 3, &frames[3], "other port: untouched");
        assert_out(&s[4], 3, &frames[4], "other address: untouched");
    }
    // The rewrite hits fields table 1 matches: the verifier must not skip the
    // recirculation (one per packet, as under `always`).
    for cached in [true, false] {
        let v = run_in(&runs, cached, Reclassify::Verifier);
        let a = run_in(&runs, cached, Reclassify::Always);
        assert_eq!(v.stats.recirculations, 10, "{:?}", v.mode);
        assert_eq!(a.stats.recirculations, 10, "{:?}", a.mode);
    }
}

#[test]
fn nat_bench_rewrites_to_its_fixed_address() {
    let f = tcp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 1234, 80, b"data");
    let runs = each_mode(|sw| {
        sw.load("nb", "nat_bench.o").flows(
            "table=0,in_port=1,actions=bpf(nb),goto_table:1\n\
             table=1,ip,nw_dst=10.2.0.1,actions=output:2\n\
             table=1,priority=0,actions=output:3",
        );
        sw.send(1, &f, 0)
    });
    let mut want = f.clone();
    want[30..34].copy_from_slice(&[10, 2, 0, 1]);
    fix_checksums(&mut want);
    assert_out(&runs[0].result, 2, &want, "nat_bench");
    assert_checksums_ok(&runs[0].result.out[0].1, "nat_bench");
}

// ---------------------------------------------------------------------------------------
// TTL decrement
// ---------------------------------------------------------------------------------------

#[test]
fn ttl_dec_then_a_table_on_nw_dst_continues_without_recirculating() {
    let f = |d: u8| udp(ip(10, 0, 0, 1), ip(10, 1, 0, d), 1000, 53, b"q");
    let runs = each_mode(|sw| {
        sw.load("ttl", "ttl_dec.o").flows(
            "table=0,in_port=1,ip,actions=bpf(ttl),goto_table:1\n\
             table=1,priority=10,ip,nw_dst=10.1.0.0/24,actions=output:2\n\
             table=1,priority=0,actions=output:3",
        );
        let mut sent = Vec::new();
        for i in 0..6 {
            sent.push(sw.send(1, &f(i % 2), 0));
        }
        sent.push(sw.send(1, &with_ttl(&f(0), 1), 0));
        sent.push(sw.send(1, &with_ttl(&f(0), 0), 0));
        sent.push(sw.send(1, &with_ttl(&f(0), 2), 0));
        sent
    });
    let sent = &runs[0].result;
    for (i, s) in sent[..6].iter().enumerate() {
        let want = with_ttl(&f(i as u8 % 2), 63);
        assert_out(s, 2, &want, "TTL 64 -> 63");
        assert_checksums_ok(&s.out[0].1, "ttl_dec");
        // The incremental update gives the same checksum as a recomputation.
        assert_eq!(s.out[0].1[24..26], want[24..26]);
    }
    assert_dropped(&sent[6], DropReason::ExtDrop, "TTL 1");
    assert_dropped(&sent[7], DropReason::ExtDrop, "TTL 0");
    assert_out(&sent[8], 2, &with_ttl(&f(0), 1), "TTL 2 -> 1");
    for cached in [true, false] {
        let v = run_in(&runs, cached, Reclassify::Verifier);
        let a = run_in(&runs, cached, Reclassify::Always);
        assert_eq!(
            v.stats.recirculations, 0,
            "{:?}: ttl_dec writes bytes 22, 24-25 only",
            v.mode
        );
        assert!(v.stats.recircs_avoided > 0, "{:?}", v.mode);
        assert_eq!(a.stats.recirculations, 7, "{:?}", a.mode);
    }
    assert_eq!(
        run_in(&runs, false, Reclassify::Verifier)
            .stats
            .recircs_avoided,
        9
    );
}

#[test]
fn ttl_dec_then_a_table_on_nw_ttl_or_dec_ttl_must_see_the_new_ttl() {
    let f = udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 1000, 53, b"q");
    let runs = each_mode(|sw| {
        sw.load("ttl", "ttl_dec.o").flows(
            "table=0,in_port=1,ip,actions=bpf(ttl),goto_table:1\n\
             table=0,in_port=2,ip,actions=bpf(ttl),dec_ttl,output:4\n\
             table=1,priority=20,ip,nw_ttl=63,actions=output:2\n\
             table=1,priority=0,actions=output:3",
        );
        vec![
            sw.send(1, &f, 0),
            sw.send(1, &f, 0),
            sw.send(1, &with_ttl(&f, 65), 0),
            sw.send(2, &f, 0),
            sw.send(2, &f, 0),
            sw.send(2, &with_ttl(&f, 2), 0),
        ]
    });
    let s = &runs[0].result;
    assert_out(
        &s[0],
        2,
        &with_ttl(&f, 63),
        "table 1 matches the decremented TTL",
    );
    assert_out(&s[1], 2, &with_ttl(&f, 63), "cached");
    assert_out(&s[2], 3, &with_ttl(&f, 64), "65 -> 64 misses nw_ttl=63");
    assert_out(
        &s[3],
        4,
        &with_ttl(&f, 62),
        "bpf then dec_ttl: decremented twice",
    );
    assert_out(&s[4], 4, &with_ttl(&f, 62), "cached");
    assert_dropped(
        &s[5],
        DropReason::TtlExceeded,
        "2 -> 1 by bpf, then dec_ttl drops",
    );
    assert_checksums_ok(&s[3].out[0].1, "bpf + dec_ttl");
    for cached in [true, false] {
        let v = run_in(&runs, cached, Reclassify::Verifier);
        assert_eq!(
            v.stats.recirculations, 6,
            "{:?}: the TTL write matters here, recirculate",
            v.mode
        );
    }
}

// ---------------------------------------------------------------------------------------
// VLAN push
// ---------------------------------------------------------------------------------------

#[test]
fn vlan_push_tags_the_frame_and_later_tables_match_the_new_tag() {
    let f = udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 1000, 53, b"q");
    let runs = each_mode(|sw| {
        sw.load("vlan", "vlan_push.o").flows(
            "table=0,in_port=1,actions=bpf(vlan),goto_table:1\n\
             table=1,priority=20,dl_vlan=100,dl_vlan_pcp=3,actions=output:2,strip_vlan,output:3\n\
             table=1,priority=0,actions=output:4",
        );
        let untagged_cfg = sw.send(1, &f, 0); // VID 0: no tag
        sw.map("vlan", "vlan_config", "u32:0", "u16:100 u8:3 u8:0");
        let a = sw.send(1, &f, 1);
        let b = sw.send(1, &f, 2);
        let arp_tagged = sw.send(1, &arp(), 3);
        let double = sw.send(1, &tagged(&f, 7), 4);
        (untagged_cfg, a, b, arp_tagged, double)
    });
    let (none, a, b, arpt, double) = &runs[0].result;
    assert_out(none, 4, &f, "VID 0 pushes nothing");
    let want = tagged(&f, 3 << 13 | 100);
    for s in [a, b] {
        assert_eq!(s.fate, Fate::Forwarded);
        assert_eq!(
            s.out,
            vec![(2, want.clone()), (3, f.clone())],
            "tagged on 2, stripped again on 3"
        );
    }
    assert_eq!(
        arpt.out,
        vec![(2, tagged(&arp(), 3 << 13 | 100)), (3, arp())],
        "any frame is tagged"
    );
    assert_eq!(
        double.out,
        vec![
            (2, tagged(&tagged(&f, 7), 3 << 13 | 100)),
            (3, tagged(&f, 7))
        ],
        "a tagged frame gets a second, outer tag"
    );
    for cached in [true, false] {
        let v = run_in(&runs, cached, Reclassify::Verifier);
        assert_eq!(
            v.stats.recirculations, 5,
            "{:?}: a program that resizes the packet always recirculates",
            v.mode
        );
    }
}

// ---------------------------------------------------------------------------------------
// Payload masking
// ---------------------------------------------------------------------------------------

#[test]
fn payload_mask_rewrites_only_payload_and_needs_no_recirculation() {
    let payload: Vec<u8> = (0..32).collect();
    let plain = udp_nocsum(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 1000, 53, &payload);
    let short = udp_nocsum(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 1000, 53, b"abc");
    let with_csum = udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 1000, 53, &payload);
    let runs = each_mode(|sw| {
        sw.load("mask", "payload_mask.o")
            .flows(
                "table=0,in_port=1,udp,actions=bpf(mask),goto_table:1\n\
                 table=1,priority=10,udp,nw_dst=10.1.0.1,tp_dst=53,actions=output:2\n\
                 table=1,priority=0,actions=output:3",
            )
            .map(
                "mask",
                "mask_config",
                "u32:0",
                "u32:8 u8:0xaa u8:0 u8:0 u8:0",
            );
        vec![
            sw.send(1, &plain, 0),
            sw.send(1, &plain, 0),
            sw.send(1, &short, 0),
            sw.send(1, &with_csum, 0),
        ]
    });
    let s = &runs[0].result;
    let mut want = plain.clone();
    want[42..50].fill(0xaa);
    assert_out(&s[0], 2, &want, "first 8 payload bytes masked");
    assert_out(&s[1], 2, &want, "cached");
    assert_eq!(&s[0].out[0].1[..42], &plain[..42], "no header byte changed");
    let mut want_short = short.clone();
    want_short[42..45].fill(0xaa);
    assert_out(&s[2], 2, &want_short, "never beyond the UDP length");
    assert_out(&s[3], 2, &with_csum, "a checksummed datagram is left alone");
    for cached in [true, false] {
        let v = run_in(&runs, cached, Reclassify::Verifier);
        let a = run_in(&runs, cached, Reclassify::Always);
        assert_eq!(v.stats.recirculations, 0, "{:?}: payload writes", v.mode);
        assert!(v.stats.recircs_avoided > 0);
        assert_eq!(a.stats.recirculations, 4, "{:?}", a.mode);
    }
}

// ---------------------------------------------------------------------------------------
// Flow monitor (VXLAN)
// ---------------------------------------------------------------------------------------

fn vxlan_key(o: [[u8; 4]; 2], vni: u32, i: [[u8; 4]; 2]) -> Vec<u8> {
    let mut k = Vec::new();
    k.extend_from_slice(&o[0]);
    k.extend_from_slice(&o[1]);
    k.extend_from_slice(&vni.to_le_bytes());
    k.extend_from_slice(&i[0]);
    k.extend_from_slice(&i[1]);
    k
}

#[test]
fn flow_monitor_counts_vxlan_flows_and_never_changes_the_packet() {
    let inner1 = udp(ip(192, 168, 0, 1), ip(192, 168, 0, 2), 1, 2, b"inner one");
    let inner2 = arp();
    let v1 = vxlan(ip(10, 0, 0, 1), ip(10, 0, 0, 2), 5000, &inner1);
    let v2 = vxlan(ip(10, 0, 0, 1), ip(10, 0, 0, 2), 0x123456, &inner2);
    let plain = udp(ip(10, 0, 0, 1), ip(10, 0, 0, 2), 1, 53, b"not vxlan");
    let runs = each_mode(|sw| {
        sw.load("mon", "flow_monitor.o").flows(
            "table=0,in_port=1,actions=bpf(mon),goto_table:1\n\
             table=1,udp,tp_dst=4789,actions=output:2\n\
             table=1,priority=0,actions=output:3",
        );
        let mut sent = Vec::new();
        for f in [&v1, &v1, &v2, &plain, &v1] {
            sent.push(sw.send(1, f, 0));
        }
        (
            sent,
            sw.dump("mon", "vxlan_flows"),
            sw.dump("mon", "other_traffic"),
        )
    });
    let (sent, flows, other) = &runs[0].result;
    for (s, f, port) in [
        (&sent[0], &v1, 2),
        (&sent[1], &v1, 2),
        (&sent[2], &v2, 2),
        (&sent[3], &plain, 3),
        (&sent[4], &v1, 2),
    ] {
        assert_out(s, port, f, "read-only");
    }
    let pb = |p: u64, b: u64| [u64le(p), u64le(b)].concat();
    let mut want = vec![
        (
            vxlan_key(
                [[10, 0, 0, 1], [10, 0, 0, 2]],
                5000,
                [[192, 168, 0, 1], [192, 168, 0, 2]],
            ),
            pb(3, 3 * v1.len() as u64),
        ),
        (
            vxlan_key([[10, 0, 0, 1], [10, 0, 0, 2]], 0x123456, [[0; 4], [0; 4]]),
            pb(1, v2.len() as u64),
        ),
    ];
    want.sort();
    assert_eq!(flows, &want);
    assert_eq!(other, &vec![(vec![0; 4], pb(1, plain.len() as u64))]);
    for cached in [true, false] {
        let v = run_in(&runs, cached, Reclassify::Verifier);
        assert_eq!(v.stats.recirculations, 0, "{:?}: writes nothing", v.mode);
    }
}

// ---------------------------------------------------------------------------------------
// Port hooks: UDP flood fast-drop, IPv4 checksum guard
// ---------------------------------------------------------------------------------------

#[test]
fn udp_flood_drop_port_hook_drops_before_classification() {
    const MS: u64 = 1_000_000;
    let to = |port: u16| udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 9, port, b"flood");
    let runs = each_mode(|sw| {
        sw.load("flood", "udp_flood_drop.o")
            .flows("priority=10,actions=output:4")
            .map("flood", "blocked_ports", "u32:53", "u32:1")
            .map("flood", "flood_config", "u32:0", "u64:3 u64:1000000");
        sw.dp.set_port_hook(1, Some("flood")).expect("hook");
        assert_eq!(sw.dp.port_hook(1).as_deref(), Some("flood"));
        let mut sent = vec![sw.send(1, &to(53), 0), sw.send(2, &to(53), 0)];
        for i in 0..5 {
            sent.push(sw.send(1, &to(9999), i * 100)); // 3 per 1 ms window
        }
        sent.push(sw.send(1, &to(9998), 600)); // another port, another window
        sent.push(sw.send(1, &to(9999), 2 * MS)); // a new window
        sent.push(sw.send(1, &tcp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 9, 53, b""), 0));
        let drops = sw.dump("flood", "flood_drops");
        sw.dp.set_port_hook(1, None).expect("detach");
        sent.push(sw.send(1, &to(53), 3 * MS));
        (sent, drops)
    });
    let (sent, drops) = &runs[0].result;
    assert_dropped(&sent[0], DropReason::PortHook, "blocklisted port");
    assert_out(&sent[1], 4, &to(53), "no hook on port 2");
    let v: Vec<bool> = sent[2..7]
        .iter()
        .map(|s| s.fate == Fate::Forwarded)
        .collect();
    assert_eq!(
        v,
        [true, true, true, false, false],
        "threshold 3 per window"
    );
    for s in &sent[5..7] {
        assert_dropped(s, DropReason::PortHook, "over the threshold");
    }
    assert_out(&sent[7], 4, &to(9998), "separate window per port");
    assert_out(&sent[8], 4, &to(9999), "window restarted");
    assert_out(
        &sent[9],
        4,
        &tcp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 9, 53, b""),
        "TCP passes",
    );
    assert_out(&sent[10], 4, &to(53), "detached");
    assert_eq!(drops, &vec![(vec![0; 4], u64le(3))]);
    for r in &runs {
        assert_eq!(
            r.stats.ports[&1].drops[&DropReason::PortHook],
            3,
            "{:?}",
            r.mode
        );
        // Hook drops never reach the tables: only upcalls of packets that passed.
        if !r.mode.cached {
            assert_eq!(r.stats.upcalls, 8, "{:?}", r.mode);
        }
    }
}

/// `frame` with a corrupted IPv4 header checksum.
fn bad_ip_csum(frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[24] ^= 0x5a;
    f
}

#[test]
fn ipv4_csum_guard_port_hook_drops_bad_headers_and_counts() {
    let good = udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 1, 2, b"good");
    let bad = bad_ip_csum(&good);
    let runs = each_mode(|sw| {
        sw.load("guard", "ipv4_csum_guard.o")
            .flows("in_port=1,actions=output:2");
        for p in [1, 3] {
            sw.dp.set_port_hook(p, Some("guard")).expect("hook");
        }
        let sent = vec![
            sw.send(1, &good, 0),
            sw.send(1, &bad, 0),
            sw.send(1, &arp(), 0),
            sw.send(1, &good, 0),
            sw.send(3, &bad, 0),
        ];
        (sent, sw.dump("guard", "csum_stats"))
    });
    let (sent, stats) = &runs[0].result;
    assert_out(&sent[0], 2, &good, "good header");
    assert_dropped(&sent[1], DropReason::PortHook, "bad header checksum");
    assert_out(&sent[2], 2, &arp(), "not IPv4");
    assert_out(&sent[3], 2, &good, "good header");
    assert_dropped(&sent[4], DropReason::PortHook, "same hook on port 3");
    assert_eq!(
        stats,
        &vec![
            (0u32.to_le_bytes().to_vec(), u64le(4)),
            (1u32.to_le_bytes().to_vec(), u64le(2))
        ],
        "4 headers checked, 2 dropped"
    );
}

// ---------------------------------------------------------------------------------------
// mac_redirect (bpf_redirect), icmp_echo (XDP_TX)
// ---------------------------------------------------------------------------------------

fn with_dst_mac(frame: &[u8], mac: [u8; 6]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[..6].copy_from_slice(&mac);
    f
}

#[test]
fn mac_redirect_outputs_to_the_map_port_as_action_and_as_hook() {
    let f = udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 1, 2, b"l2");
    let known = with_dst_mac(&f, [0x02, 0, 0, 0, 0, 0xaa]);
    let unknown = with_dst_mac(&f, [0x02, 0, 0, 0, 0, 0xbb]);
    let to_missing = with_dst_mac(&f, [0x02, 0, 0, 0, 0, 0xcc]);
    let runs = each_mode(|sw| {
        sw.load("l2", "mac_redirect.o")
            .flows(
                "in_port=1,actions=bpf(l2),output:3\n\
                 in_port=2,actions=output:4",
            )
            .map(
                "l2",
                "mac_ports",
                "mac:02:00:00:00:00:aa u16:0",
                "u32:2 u32:0 u64:0",
            )
            .map(
                "l2",
                "mac_ports",
                "mac:02:00:00:00:00:cc u16:0",
                "u32:77 u32:0 u64:0",
            );
        let mut sent = vec![
            sw.send(1, &known, 0),
            sw.send(1, &known, 0),
            sw.send(1, &unknown, 0),
            sw.send(1, &to_missing, 0),
        ];
        // As a hook on port 2: redirects before classification (port 2's rule says 4).
        sw.dp.set_port_hook(2, Some("l2")).expect("hook");
        sent.push(sw.send(2, &known, 0));
        sent.push(sw.send(2, &unknown, 0));
        (
            sent,
            sw.lookup("l2", "mac_ports", "mac:02:00:00:00:00:aa u16:0"),
        )
    });
    let (sent, entry) = &runs[0].result;
    assert_out(&sent[0], 2, &known, "redirected, not sent to 3");
    assert_out(&sent[1], 2, &known, "cached");
    assert_out(&sent[2], 3, &unknown, "unknown MAC passes to output:3");
    assert_dropped(
        &sent[3],
        DropReason::NoSuchPort,
        "redirect to a missing port",
    );
    assert_out(&sent[4], 2, &known, "hook redirect");
    assert_out(&sent[5], 4, &unknown, "hook pass: classified");
    let entry = entry.as_ref().expect("entry");
    assert_eq!(get_u64(entry, 8), 3, "frames counted");
}

#[test]
fn icmp_echo_answers_out_of_the_ingress_port_with_valid_checksums() {
    let host = ip(10, 0, 0, 1);
    let me = ip(10, 0, 0, 254);
    let data: Vec<u8> = (0..24).collect();
    let req = icmp(host, me, 8, 0x4242, 7, &data);
    let reply_in = icmp(host, me, 0, 0x4242, 7, &data);
    let runs = each_mode(|sw| {
        sw.load("echo", "icmp_echo.o").flows(
            "priority=10,in_port=1,icmp,actions=bpf(echo),output:2\n\
             priority=0,actions=drop",
        );
        sw.dp.set_port_hook(3, Some("echo")).expect("hook");
        vec![
            sw.send(1, &req, 0),
            sw.send(1, &req, 0),
            sw.send(1, &reply_in, 0),
            sw.send(3, &req, 0),
        ]
    });
    let s = &runs[0].result;
    // The answer built from scratch: addresses swapped, type 0, TTL 64, checksums fresh.
    let mut want = icmp(me, host, 0, 0x4242, 7, &data);
    want[..6].copy_from_slice(&SRC_MAC);
    want[6..12].copy_from_slice(&DST_MAC);
    assert_out(&s[0], 1, &want, "XDP_TX: back out of in_port 1");
    assert_out(&s[1], 1, &want, "cached");
    assert_checksums_ok(&s[0].out[0].1, "echo reply");
    assert_out(&s[2], 2, &reply_in, "a reply passes untouched to output:2");
    assert_out(&s[3], 3, &want, "as a port hook: TX on port 3");
}

// ---------------------------------------------------------------------------------------
// proto_stats (data-section maps)
// ---------------------------------------------------------------------------------------

#[test]
fn proto_stats_counts_in_bss_and_honours_data_section_tunables() {
    let u = udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 1, 2, b"u");
    let t = tcp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 1, 2, b"tt");
    let low = with_ttl(&u, 1);
    let i = icmp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 8, 1, 1, b"");
    let runs = each_mode(|sw| {
        sw.load("ps", "proto_stats.o")
            .flows("in_port=1,actions=bpf(ps),output:2");
        let mut sent = Vec::new();
        for f in [&u, &u, &t, &low, &i, &arp()] {
            sent.push(sw.send(1, f, 0));
        }
        // Raise low_ttl_max (in .data) to 64: every IPv4 packet is now "low".
        sw.map("ps", ".data", "u32:0", "u32:64");
        sent.push(sw.send(1, &t, 0));
        (sent, sw.dump("ps", ".bss"))
    });
    let (sent, bss) = &runs[0].result;
    for (s, f) in sent.iter().zip([&u, &u, &t, &low, &i, &arp(), &t]) {
        assert_out(s, 2, f, "never written");
    }
    assert_eq!(bss.len(), 1);
    let b = &bss[0].1;
    assert_eq!(b.len(), 4112);
    let pk = |p: usize| get_u64(b, 8 + 8 * p);
    let by = |p: usize| get_u64(b, 2056 + 8 * p);
    assert_eq!(get_u64(b, 0), 1, "not_ipv4: the ARP frame");
    assert_eq!((pk(17), by(17)), (3, 3 * u.len() as u64));
    assert_eq!((pk(6), by(6)), (2, 2 * t.len() as u64));
    assert_eq!((pk(1), by(1)), (1, i.len() as u64));
    assert_eq!(
        (0..256).map(pk).sum::<u64>(),
        6,
        "nothing counted elsewhere"
    );
    assert_eq!(
        get_u64(b, 4104),
        2,
        "low_ttl: TTL 1, then TTL 64 under max 64"
    );
}

// ---------------------------------------------------------------------------------------
// uBPF/Oko programs: filter_prog=ID and prog:ID
// ---------------------------------------------------------------------------------------

#[test]
fn oko_blocklist_as_filter_prog_and_as_prog_action() {
    let bad = udp(ip(10, 6, 6, 6), ip(10, 1, 0, 1), 1, 2, b"x");
    let ok = udp(ip(10, 7, 7, 7), ip(10, 1, 0, 1), 1, 2, b"x");
    let runs = each_mode(|sw| {
        // Oko's syntax: load-filter-prog br0 1 prog.o; filter_prog=1. The same object
        // under "2" as an action: returning 0 drops.
        sw.load("1", "ubpf/oko_blocklist.o")
            .load("2", "ubpf/oko_blocklist.o")
            .flows(
                "priority=20,in_port=1,ip,filter_prog=1,actions=drop\n\
                 priority=10,in_port=1,actions=output:2\n\
                 priority=10,in_port=3,actions=prog:2,output:4",
            )
            .map("1", "blocklist", "ip:10.6.6.6", "u64:0")
            .map("2", "blocklist", "ip:10.6.6.6", "u64:0");
        let sent = vec![
            sw.send(1, &bad, 0),
            sw.send(1, &ok, 0),
            sw.send(1, &bad, 0),
            sw.send(1, &arp(), 0),
            sw.send(3, &bad, 0),
            sw.send(3, &ok, 0),
        ];
        (sent, sw.dump("1", "blocklist"), sw.dump("2", "blocklist"))
    });
    let (sent, m1, m2) = &runs[0].result;
    assert_dropped(&sent[0], DropReason::Action, "listed: filter matches");
    assert_out(&sent[1], 2, &ok, "unlisted");
    assert_dropped(&sent[2], DropReason::Action, "listed again (cached)");
    assert_out(&sent[3], 2, &arp(), "not IPv4");
    assert_out(&sent[4], 4, &bad, "action: listed returns 1, continue");
    assert_dropped(&sent[5], DropReason::ExtDrop, "action: 0 drops");
    assert_eq!(m1, &vec![(vec![10, 6, 6, 6], u64le(2))]);
    assert_eq!(
        m2,
        &vec![(vec![10, 6, 6, 6], u64le(1))],
        "separate loads, separate maps"
    );
}

#[test]
fn oko_heavy_hitter_stateful_filter_flips_after_the_threshold() {
    let from = |s: u8| udp(ip(10, 0, 0, s), ip(10, 1, 0, 1), 1, 2, b"x");
    let runs = each_mode(|sw| {
        sw.load("1", "ubpf/oko_heavy_hitter.o")
            .flows(
                "priority=20,ip,filter_prog=1,actions=drop\n\
                 priority=10,actions=output:2",
            )
            .map("1", "hh_config", "u32:0", "u64:3");
        let mut sent = Vec::new();
        for i in 0..6u64 {
            sent.push(sw.send(1, &from(1), 1000 + i));
        }
        sent.push(sw.send(1, &from(2), 2000));
        (sent, sw.dump("1", "hh_sources"))
    });
    let (sent, m) = &runs[0].result;
    for s in &sent[..3] {
        assert_out(s, 2, &from(1), "at or under the threshold");
    }
    for s in &sent[3..6] {
        assert_dropped(s, DropReason::Action, "a heavy hitter");
    }
    assert_out(&sent[6], 2, &from(2), "another source");
    let val = |p: u64, t: u64| [u64le(p), u64le(t)].concat();
    assert_eq!(
        m,
        &vec![
            (vec![10, 0, 0, 1], val(6, 1005)),
            (vec![10, 0, 0, 2], val(1, 2000))
        ],
        "counts and last-seen stamps from the packet timestamps"
    );
    let c = run_in(&runs, true, Reclassify::Verifier);
    assert!(
        c.stats.filter_mismatches >= 1,
        "the cached 0 result flipped to 1"
    );
}

// ---------------------------------------------------------------------------------------
// Stateless filter caching: bench_filter
// ---------------------------------------------------------------------------------------

#[test]
fn bench_filter_is_stateless_so_cache_hits_do_not_run_it() {
    let hit = |i: u16| udp(ip(10, 0, 0, 1), ip(10, 1, 0, 9), 1000 + i, 53, b"dns");
    let miss = udp(ip(10, 0, 0, 1), ip(10, 2, 0, 9), 1000, 53, b"dns");
    let low_ttl = with_ttl(&hit(0), 1);
    let runs = each_mode(|sw| {
        sw.load("bf", "bench_filter.o").flows(
            "priority=20,in_port=1,bpf_filter=bf,actions=output:2\n\
             priority=10,in_port=1,actions=output:3",
        );
        let mut sent = Vec::new();
        for i in 0..20 {
            sent.push(sw.send(1, &hit(i % 2), 0));
        }
        sent.push(sw.send(1, &miss, 0));
        sent.push(sw.send(1, &low_ttl, 0));
        sent.push(sw.send(1, &miss, 0));
        sent
    });
    let s = &runs[0].result;
    for (i, x) in s[..20].iter().enumerate() {
        assert_out(x, 2, &hit(i as u16 % 2), "filter matches");
    }
    assert_out(&s[20], 3, &miss, "outside 10.1.0.0/16");
    assert_out(&s[21], 3, &low_ttl, "TTL 1");
    assert_out(&s[22], 3, &miss, "outside 10.1.0.0/16, cached");
    let c = run_in(&runs, true, Reclassify::Verifier);
    let u = run_in(&runs, false, Reclassify::Verifier);
    assert_eq!(u.stats.filter_runs, 23, "cacheless: runs on every packet");
    assert!(
        c.stats.filter_runs < 10 && c.stats.filter_cached > 0,
        "cached: megaflow hits reuse the result ({:?})",
        c.stats
    );
}

// ---------------------------------------------------------------------------------------
// Extension life cycle: replace, unload
// ---------------------------------------------------------------------------------------

#[test]
fn replacing_an_extension_takes_effect_for_existing_rules() {
    let f = udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 1000, 53, b"q");
    let runs = each_mode(|sw| {
        sw.load("act", "ttl_dec.o")
            .load("flt", "fw_stateless_filter.o")
            .flows(
                "table=0,priority=20,in_port=2,bpf_filter=flt,actions=drop\n\
                 table=0,priority=10,in_port=2,actions=output:3\n\
                 table=0,priority=10,in_port=1,actions=bpf(act),goto_table:1\n\
                 table=1,ip,nw_dst=10.2.0.1,actions=output:4\n\
                 table=1,priority=0,actions=output:2",
            )
            .map("flt", "blocked_src", "ip:10.0.0.1", "u64:0");
        let before = (sw.send(1, &f, 0), sw.send(2, &f, 0), sw.send(1, &f, 0));
        // Swap the action for nat_bench (rewrites nw_dst to 10.2.0.1) and the filter for a
        // fresh load of the same object: new, empty maps.
        sw.replace("act", "nat_bench.o");
        sw.replace("flt", "fw_stateless_filter.o");
        let after = (sw.send(1, &f, 1), sw.send(2, &f, 1));
        (before, after, sw.dump("flt", "blocked_src"))
    });
    let ((b1, b2, b3), (a1, a2), map) = &runs[0].result;
    assert_out(b1, 2, &with_ttl(&f, 63), "ttl_dec");
    assert_dropped(b2, DropReason::Action, "blocked by the filter");
    assert_out(b3, 2, &with_ttl(&f, 63), "ttl_dec, cached");
    let mut nat = f.clone();
    nat[30..34].copy_from_slice(&[10, 2, 0, 1]);
    fix_checksums(&mut nat);
    assert_out(a1, 4, &nat, "the same rule now runs nat_bench");
    assert_out(a2, 3, &f, "the replaced filter has an empty blocklist");
    assert!(map.is_empty());
}

#[test]
fn unload_is_refused_while_a_rule_or_hook_references_the_extension() {
    let sw = Sw::new(sw::MODES[0]);
    sw.load("fw", "fw_stateless_filter.o")
        .load("ttl", "ttl_dec.o")
        .load("1", "ubpf/oko_blocklist.o")
        .flows(
            "priority=20,in_port=1,ip,bpf_filter=fw,actions=drop\n\
             priority=10,in_port=1,actions=bpf(ttl),output:2\n\
             priority=5,in_port=3,filter_prog=1,actions=drop",
        );
    sw.dp.set_port_hook(4, Some("ttl")).expect("hook");
    let err = sw
        .dp
        .unload_extension("fw")
        .expect_err("in use")
        .to_string();
    assert!(err.contains("bpf_filter=fw"), "error names the rule: {err}");
    assert!(err.contains("in_port=1"), "{err}");
    let err = sw
        .dp
        .unload_extension("ttl")
        .expect_err("in use")
        .to_string();
    assert!(err.contains("bpf(ttl)"), "error names the rule: {err}");
    assert!(err.contains("port hook on port 4"), "and the hook: {err}");
    let err = sw.dp.unload_extension("1").expect_err("in use").to_string();
    assert!(
        err.contains("bpf_filter=1"),
        "Oko's alias is the same filter: {err}"
    );
    assert!(sw.dp.unload_extension("nope").is_err());

    sw.flows("delete in_port=1,ip,bpf_filter=fw");
    sw.dp
        .unload_extension("fw")
        .expect("no rule references it any more");
    assert!(sw.dp.extension("fw").is_none());
    sw.flows("delete in_port=1");
    assert!(
        sw.dp.unload_extension("ttl").is_err(),
        "the hook still references it"
    );
    sw.dp.set_port_hook(4, None).expect("detach");
    sw.dp.unload_extension("ttl").expect("unreferenced");
    assert!(sw.dp.extension("ttl").is_none());
}

// ---------------------------------------------------------------------------------------
// Interactions: filters after rewrites, chained extensions, set-fields after extensions
// ---------------------------------------------------------------------------------------

#[test]
fn a_filter_in_a_later_table_sees_the_packet_as_the_extension_left_it() {
    let client = ip(172, 16, 0, 5);
    let to_vip = udp(client, ip(10, 0, 0, 100), 4000, 80, b"q");
    let direct = udp(client, ip(10, 1, 0, 7), 4000, 53, b"q");
    let to_vip_81 = udp(client, ip(10, 0, 0, 100), 4000, 81, b"q");
    let runs = each_mode(|sw| {
        // nat maps the VIP onto 10.1.0.5:53, which is what bench_filter accepts.
        sw.load("nat", "nat.o")
            .load("bf", "bench_filter.o")
            .flows(
                "table=0,in_port=1,ip,actions=bpf(nat),goto_table:1\n\
                 table=1,priority=20,bpf_filter=bf,actions=output:2\n\
                 table=1,priority=0,actions=output:3",
            )
            .map(
                "nat",
                "nat_rules",
                "ip:10.0.0.100 be16:80 u8:17 u8:0",
                "ip:10.1.0.5 be16:53 u16:0",
            );
        let mut sent = Vec::new();
        for _ in 0..2 {
            sent.push(sw.send(1, &to_vip, 0));
            sent.push(sw.send(1, &direct, 0));
            sent.push(sw.send(1, &to_vip_81, 0));
        }
        sent
    });
    let s = &runs[0].result;
    for r in 0..2 {
        let s = &s[3 * r..];
        assert_out(
            &s[0],
            2,
            &rewritten_dst(&to_vip, [10, 1, 0, 5], 53),
            "the filter matched the rewritten destination",
        );
        assert_out(&s[1], 2, &direct, "already a match");
        assert_out(&s[2], 3, &to_vip_81, "not rewritten, no match");
    }
}

#[test]
fn a_stateful_filter_after_ttl_dec_runs_once_per_packet_on_the_new_ttl() {
    let f = |src: u8, ttl: u8| with_ttl(&udp(ip(10, 0, 0, src), ip(10, 1, 0, 1), 7, 53, b"x"), ttl);
    let runs = each_mode(|sw| {
        sw.load("ttl", "ttl_dec.o")
            .load("fwf", "fw_stateless_filter.o")
            .load("bf", "bench_filter.o")
            .flows(
                "table=0,in_port=1,ip,actions=bpf(ttl),goto_table:1\n\
                 table=1,priority=30,bpf_filter=fwf,actions=drop\n\
                 table=1,priority=20,bpf_filter=bf,actions=output:2\n\
                 table=1,priority=0,actions=output:3",
            )
            .map("fwf", "blocked_src", "ip:10.0.0.66", "u64:0");
        let mut sent = Vec::new();
        for _ in 0..3 {
            sent.push(sw.send(1, &f(66, 64), 0));
            sent.push(sw.send(1, &f(1, 64), 0));
            sent.push(sw.send(1, &f(1, 2), 0));
        }
        (sent, sw.dump("fwf", "blocked_src"))
    });
    let (s, map) = &runs[0].result;
    for r in 0..3 {
        let s = &s[3 * r..];
        assert_dropped(&s[0], DropReason::Action, "blocked source");
        assert_out(&s[1], 2, &f(1, 63), "bench_filter: TTL 63 > 1");
        assert_out(
            &s[2],
            3,
            &f(1, 1),
            "bench_filter saw TTL 1, not the 2 that arrived",
        );
    }
    assert_eq!(
        map,
        &vec![(vec![10, 0, 0, 66], u64le(3))],
        "the stateful filter ran exactly once per blocked packet"
    );
    for cached in [true, false] {
        let v = run_in(&runs, cached, Reclassify::Verifier);
        assert_eq!(
            v.stats.recirculations, 9,
            "{:?}: filters after a rewrite need the re-parsed packet",
            v.mode
        );
    }
}

#[test]
fn chained_extension_actions_and_outputs_before_them() {
    let f = udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 7, 53, b"x");
    let runs = each_mode(|sw| {
        sw.load("ttl", "ttl_dec.o").flows(
            "table=0,in_port=1,ip,actions=output:4,bpf(ttl),bpf(ttl),goto_table:1\n\
             table=1,priority=20,ip,nw_ttl=62,actions=output:2\n\
             table=1,priority=0,actions=output:3",
        );
        vec![
            sw.send(1, &f, 0),
            sw.send(1, &f, 0),
            sw.send(1, &with_ttl(&f, 2), 0),
            sw.send(1, &with_ttl(&f, 3), 0),
        ]
    });
    let s = &runs[0].result;
    for x in &s[..2] {
        assert_eq!(x.fate, Fate::Forwarded);
        assert_eq!(x.out, vec![(4, f.clone()), (2, with_ttl(&f, 62))]);
    }
    assert_eq!(
        s[2],
        Sent {
            fate: Fate::Forwarded,
            out: vec![(4, with_ttl(&f, 2))]
        },
        "the second ttl_dec drops (TTL 1), but the packet was already output"
    );
    assert_eq!(s[3].out, vec![(4, with_ttl(&f, 3)), (3, with_ttl(&f, 1))]);
    for r in &runs {
        assert!(r.stats.ports[&1].drops.is_empty(), "{:?}", r.mode);
    }
}

#[test]
fn set_fields_after_an_extension_action_use_the_packet_as_it_left() {
    let u = udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 7, 53, b"payload");
    let runs = each_mode(|sw| {
        sw.load("ttl", "ttl_dec.o")
            .load("vlan", "vlan_push.o")
            .flows(
                "in_port=1,udp,actions=bpf(ttl),mod_nw_dst:10.9.9.9,mod_tp_dst:5353,output:2\n\
                 in_port=3,ip,actions=bpf(vlan),mod_nw_dst:10.9.9.9,output:4",
            )
            .map("vlan", "vlan_config", "u32:0", "u16:42 u8:0 u8:0");
        vec![
            sw.send(1, &u, 0),
            sw.send(1, &u, 0),
            sw.send(3, &u, 0),
            sw.send(3, &u, 0),
        ]
    });
    let s = &runs[0].result;
    let mut want = with_ttl(&u, 63);
    want[30..34].copy_from_slice(&[10, 9, 9, 9]);
    want[36..38].copy_from_slice(&5353u16.to_be_bytes());
    fix_checksums(&mut want);
    assert_out(&s[0], 2, &want, "ttl_dec then set-fields");
    assert_out(&s[1], 2, &want, "cached");
    assert_checksums_ok(&s[0].out[0].1, "ttl_dec + set-fields");
    let mut want = u.clone();
    want[30..34].copy_from_slice(&[10, 9, 9, 9]);
    fix_checksums(&mut want);
    let want = tagged(&want, 42);
    assert_out(&s[2], 4, &want, "the set-field lands behind the pushed tag");
    assert_out(&s[3], 4, &want, "cached");
    assert_checksums_ok(&s[2].out[0].1, "vlan_push + set-field");
}

#[test]
fn extension_faults_and_missing_extensions_are_counted_as_ext_aborted() {
    let known = udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 7, 53, b"x");
    let unknown = udp(ip(10, 0, 0, 2), ip(10, 1, 0, 1), 7, 53, b"x");
    let runs = each_mode(|sw| {
        // unsafe/null_deref.o increments through a lookup result without a NULL check:
        // loaded unverified (interpreter only), it faults for a source without an entry.
        let opts = bpfswitch::ext::LoadOptions {
            allow_unverified: true,
            ..Default::default()
        };
        sw.dp
            .load_extension("nd", &sw::object("unsafe/null_deref.o"), &opts)
            .expect("loads for the interpreter");
        sw.flows(
            "in_port=1,actions=bpf(nd),output:2\n\
             in_port=2,actions=output:3,bpf(nd),output:4\n\
             in_port=3,actions=bpf(missing),output:4\n\
             in_port=4,actions=output:1",
        )
        .map("nd", "src_counters", "ip:10.0.0.1", "u64:0");
        sw.dp.set_port_hook(4, Some("nd")).expect("hook");
        let sent = vec![
            sw.send(1, &known, 0),
            sw.send(1, &unknown, 0),
            sw.send(1, &unknown, 0),
            sw.send(2, &unknown, 0),
            sw.send(3, &known, 0),
            sw.send(4, &unknown, 0),
            sw.send(4, &known, 0),
        ];
        (sent, sw.dump("nd", "src_counters"))
    });
    let (s, map) = &runs[0].result;
    assert_out(&s[0], 2, &known, "an entry: no fault");
    assert_dropped(&s[1], DropReason::ExtAborted, "NULL dereference faults");
    assert_dropped(&s[2], DropReason::ExtAborted, "again (cached)");
    assert_eq!(
        s[3],
        Sent {
            fate: Fate::Forwarded,
            out: vec![(3, unknown.clone())]
        },
        "a fault after an output stops the pipeline; the packet was output"
    );
    assert_dropped(&s[4], DropReason::ExtAborted, "no such extension");
    assert_dropped(&s[5], DropReason::PortHook, "a faulting hook drops");
    assert_out(&s[6], 1, &known, "the hook passes, the rule outputs");
    assert_eq!(
        map,
        &vec![(vec![10, 0, 0, 1], u64le(2))],
        "two runs found the entry"
    );
    for r in &runs {
        assert_eq!(
            r.stats.ports[&1].drops[&DropReason::ExtAborted],
            2,
            "{:?}",
            r.mode
        );
        assert_eq!(
            r.stats.ports[&3].drops[&DropReason::ExtAborted],
            1,
            "{:?}",
            r.mode
        );
        assert_eq!(
            r.stats.ports[&4].drops[&DropReason::PortHook],
            1,
            "{:?}",
            r.mode
        );
    }
}

#[test]
fn a_rule_with_two_filters_needs_both() {
    let f = |src: u8, dport: u16| udp(ip(10, 0, 0, src), ip(10, 1, 0, 1), 7, dport, b"x");
    let runs = each_mode(|sw| {
        sw.load("fwf", "fw_stateless_filter.o")
            .load("bf", "bench_filter.o")
            .flows(
                "priority=20,bpf_filter=fwf,bpf_filter=bf,actions=output:2\n\
                 priority=0,actions=output:3",
            )
            .map("fwf", "blocked_src", "ip:10.0.0.66", "u64:0");
        let mut sent = Vec::new();
        for _ in 0..2 {
            for x in [f(66, 53), f(66, 54), f(1, 53), f(1, 54)] {
                sent.push(sw.send(1, &x, 0));
            }
        }
        sent
    });
    let s = &runs[0].result;
    for r in 0..2 {
        assert_out(&s[4 * r], 2, &f(66, 53), "both match");
        assert_out(&s[4 * r + 1], 3, &f(66, 54), "bench_filter says no");
        assert_out(&s[4 * r + 2], 3, &f(1, 53), "fw says no");
        assert_out(&s[4 * r + 3], 3, &f(1, 54), "neither");
    }
}

#[test]
fn flow_table_changes_revalidate_cached_flows_behind_extension_actions() {
    let u = udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 7, 53, b"x");
    let runs = each_mode(|sw| {
        sw.load("ttl", "ttl_dec.o").flows(
            "table=0,in_port=1,ip,actions=bpf(ttl),goto_table:1\n\
             table=1,priority=10,ip,nw_dst=10.1.0.1,actions=output:2",
        );
        let a = (sw.send(1, &u, 0), sw.send(1, &u, 0));
        sw.flows("table=1,priority=20,ip,nw_dst=10.1.0.1,actions=output:3");
        let b = (sw.send(1, &u, 1), sw.send(1, &u, 1));
        sw.flows("table=1,priority=30,ip,nw_ttl=63,actions=output:4");
        let c = (sw.send(1, &u, 2), sw.send(1, &u, 2));
        (a, b, c)
    });
    let ((a1, a2), (b1, b2), (c1, c2)) = &runs[0].result;
    let want = with_ttl(&u, 63);
    assert_out(a1, 2, &want, "before");
    assert_out(a2, 2, &want, "before, cached");
    assert_out(b1, 3, &want, "a higher-priority rule in table 1");
    assert_out(b2, 3, &want, "cached");
    assert_out(c1, 4, &want, "a rule on the written TTL: recirculate");
    assert_out(c2, 4, &want, "cached");
    // Revalidation has no packet bytes to map write sets with; the new nw_dst rule does
    // not read what ttl_dec writes, so after it the flow must still go on without a
    // recirculation (the upcall that maps the write set again is allowed), and only the
    // nw_ttl rule makes it recirculate.
    for cached in [true, false] {
        let v = run_in(&runs, cached, Reclassify::Verifier);
        assert_eq!(v.stats.recirculations, 2, "{:?}: {:?}", v.mode, v.stats);
    }
}

#[test]
fn filters_run_on_a_copy_and_never_change_the_packet() {
    let u = udp(ip(10, 0, 0, 1), ip(10, 1, 0, 1), 7, 53, b"x");
    let runs = each_mode(|sw| {
        // ttl_dec and vlan_push return non-zero (PASS or DROP) for every frame: as filters
        // they always match, and what they write must not reach the output.
        sw.load("ttl", "ttl_dec.o")
            .load("vlan", "vlan_push.o")
            .flows(
                "priority=20,in_port=1,bpf_filter=ttl,actions=output:2\n\
                 priority=20,in_port=3,bpf_filter=vlan,actions=output:4",
            )
            .map("vlan", "vlan_config", "u32:0", "u16:9 u8:0 u8:0");
        vec![
            sw.send(1, &u, 0),
            sw.send(1, &with_ttl(&u, 1), 0),
            sw.send(1, &u, 0),
            sw.send(3, &u, 0),
            sw.send(3, &u, 0),
        ]
    });
    let s = &runs[0].result;
    assert_out(&s[0], 2, &u, "TTL untouched");
    assert_out(&s[1], 2, &with_ttl(&u, 1), "XDP_DROP is non-zero: a match");
    assert_out(&s[2], 2, &u, "cached");
    assert_out(&s[3], 4, &u, "no tag pushed");
    assert_out(&s[4], 4, &u, "cached");
}

/// A UDP/TCP frame with `n` bytes of IPv4 options with the destination address and port
/// rewritten (checksums from scratch).
fn rewritten_dst_opts(frame: &[u8], daddr: [u8; 4], dport: u16) -> Vec<u8> {
    let mut f = frame.to_vec();
    let l4 = 14 + usize::from(f[14] & 0x0f) * 4;
    f[30..34].copy_from_slice(&daddr);
    f[l4 + 2..l4 + 4].copy_from_slice(&dport.to_be_bytes());
    fix_checksums(&mut f);
    f
}

#[test]
fn nat_handles_ipv4_options_and_mixed_layouts_share_no_wrong_cache_entry() {
    let vip = ip(10, 0, 0, 100);
    let client = ip(172, 16, 0, 5);
    // Router alert (4 bytes) and a 12-byte run of NOPs ending in EOL.
    let ra = [0x94, 0x04, 0, 0];
    let nops = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0];
    let plain = udp(client, vip, 5555, 80, b"options test");
    let frames = [
        plain.clone(),
        with_ip_options(&plain, &ra),
        with_ip_options(&plain, &nops),
        with_ip_options(&tcp(client, vip, 5555, 80, b"tcp"), &ra),
    ];
    let runs = each_mode(|sw| {
        sw.load("nat", "nat.o")
            .load("mask", "payload_mask.o")
            .flows(
                "table=0,in_port=1,ip,actions=bpf(nat),goto_table:1\n\
                 table=0,in_port=2,udp,actions=bpf(mask),goto_table:2\n\
                 table=1,priority=10,udp,nw_dst=192.168.1.10,tp_dst=8080,actions=output:2\n\
                 table=1,priority=10,tcp,nw_dst=192.168.1.10,tp_dst=8080,actions=output:2\n\
                 table=1,priority=0,actions=output:3\n\
                 table=2,priority=10,udp,tp_dst=80,actions=output:4\n\
                 table=2,priority=0,actions=output:1",
            )
            .map(
                "nat",
                "nat_rules",
                "ip:10.0.0.100 be16:80 u8:17 u8:0",
                "ip:192.168.1.10 be16:8080 u16:0",
            )
            .map(
                "nat",
                "nat_rules",
                "ip:10.0.0.100 be16:80 u8:6 u8:0",
                "ip:192.168.1.10 be16:8080 u16:0",
            );
        let mut sent = Vec::new();
        for _ in 0..2 {
            for f in &frames {
                sent.push(sw.send(1, f, 0));
            }
        }
        // payload_mask's write set (bytes 42..58) is payload without options and IPv4
        // options or UDP header with them: the same megaflow key, different layouts.
        let nocsum = udp_nocsum(client, vip, 5555, 80, &[0x11; 24]);
        for _ in 0..2 {
            sent.push(sw.send(2, &nocsum, 0));
            sent.push(sw.send(2, &with_ip_options(&nocsum, &nops), 0));
        }
        (sent, nocsum)
    });
    let (s, nocsum) = &runs[0].result;
    for r in 0..2 {
        for (i, f) in frames.iter().enumerate() {
            let x = &s[4 * r + i];
            let want = rewritten_dst_opts(f, [192, 168, 1, 10], 8080);
            assert_out(x, 2, &want, &format!("frame {i}"));
            assert_checksums_ok(&x.out[0].1, &format!("frame {i}"));
        }
    }
    let mut masked = nocsum.clone();
    masked[42..58].fill(0);
    for r in 0..2 {
        assert_out(&s[8 + 2 * r], 4, &masked, "masked");
        assert_out(
            &s[9 + 2 * r],
            4,
            &with_ip_options(nocsum, &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]),
            "options: untouched",
        );
    }
}

#[test]
fn verifier_keeps_one_megaflow_for_ipv4_with_and_without_options_behind_extensions() {
    // The flow key has no IHL: plain IPv4 and IPv4 with options share megaflows. Behind
    // an extension that writes nothing (flow_monitor) the write set maps to no field in any
    // layout, and behind one whose write set forces a recirculation anyway (nat), the
    // translation does not depend on the layout either: alternating layouts must keep
    // hitting the cache under `reclassify=verifier`, as they do under `always`.
    let plain = udp(ip(10, 0, 0, 1), ip(10, 0, 0, 100), 5555, 80, b"layouts");
    let opts = with_ip_options(&plain, &[0x94, 0x04, 0, 0]);
    let runs = each_mode(|sw| {
        sw.load("mon", "flow_monitor.o")
            .load("nat", "nat.o")
            .flows(
                "table=0,in_port=1,actions=bpf(mon),output:2\n\
                 table=0,in_port=3,ip,actions=bpf(nat),goto_table:1\n\
                 table=1,udp,nw_dst=192.168.1.10,tp_dst=8080,actions=output:4",
            )
            .map(
                "nat",
                "nat_rules",
                "ip:10.0.0.100 be16:80 u8:17 u8:0",
                "ip:192.168.1.10 be16:8080 u16:0",
            );
        let mut sent = Vec::new();
        for port in [1, 3] {
            for i in 0..8 {
                sent.push(sw.send(port, if i % 2 == 0 { &plain } else { &opts }, 0));
            }
        }
        sent
    });
    let s = &runs[0].result;
    for i in 0..8 {
        let f = if i % 2 == 0 { &plain } else { &opts };
        assert_out(&s[i], 2, f, "read-only");
        assert_out(
            &s[8 + i],
            4,
            &rewritten_dst_opts(f, [192, 168, 1, 10], 8080),
            "nat",
        );
    }
    let v = run_in(&runs, true, Reclassify::Verifier);
    let a = run_in(&runs, true, Reclassify::Always);
    // flow_monitor: 1 upcall (no recirculation); nat: 2 (the first pass and the second).
    assert_eq!(v.stats.upcalls, 3, "verifier: {:?}", v.stats);
    assert_eq!(a.stats.upcalls, 4, "always: {:?}", a.stats);
    assert_eq!(v.stats.recirculations, 8, "only nat recirculates");
}
