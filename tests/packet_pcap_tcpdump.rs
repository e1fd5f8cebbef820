//! Captures written by `PcapWriter` are read back by tcpdump (same packets, same timestamps),
//! and captures tcpdump reads are read the same by `PcapReader`. Skips loudly when tcpdump is
//! not installed.

use bpfswitch::packet::builder;
use bpfswitch::port::pcap::{PcapReader, PcapWriter, Precision, DEFAULT_SNAPLEN};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::process::Command;

fn tcpdump(args: &[&str], file: &Path) -> Option<Vec<String>> {
    let out = Command::new("tcpdump")
        .args(args)
        .arg("-r")
        .arg(file)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "tcpdump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

fn have_tcpdump() -> bool {
    if Command::new("tcpdump").arg("--version").output().is_ok() {
        return true;
    }
    eprintln!("\n*** SKIPPED: `tcpdump` is not installed (apt-get install tcpdump); captures were NOT checked with tcpdump. ***\n");
    false
}

fn frames() -> Vec<(u64, Vec<u8>)> {
    (0..300u64)
        .map(|i| {
            let ts = 1_700_000_000_000_000_000 + i * 1_234_567_891;
            let f = if i % 2 == 0 {
                builder::udp4_frame(
                    [2, 0, 0, 0, 0, 1],
                    [2, 0, 0, 0, 0, 2],
                    0x0a00_0001,
                    0x0a00_0000 + i as u32,
                    1000 + i as u16,
                    9999,
                    &vec![0x41; i as usize],
                )
            } else {
                builder::tcp4_frame(
                    [2, 0, 0, 0, 0, 3],
                    [2, 0, 0, 0, 0, 4],
                    0xc0a8_0001,
                    0xc0a8_0002,
                    40000,
                    80,
                    0x02,
                    b"",
                )
            };
            (ts, f)
        })
        .collect()
}

#[test]
fn tcpdump_reads_what_we_write() {
    if !have_tcpdump() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("bpfswitch-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let micro = dir.join("micro.pcap");
    let nano = dir.join("nano.pcap");
    let mut w = PcapWriter::create(&micro).unwrap();
    let mut wn = PcapWriter::with_options(
        BufWriter::new(File::create(&nano).unwrap()),
        &nano,
        Precision::Nano,
        DEFAULT_SNAPLEN,
    )
    .unwrap();
    for (ts, f) in frames() {
        w.write(&f, ts).unwrap();
        wn.write(&f, ts).unwrap();
    }
    w.flush().unwrap();
    wn.flush().unwrap();
    drop((w, wn));

    let lines = tcpdump(&["-nn", "-tt"], &micro).unwrap();
    assert_eq!(lines.len(), 300, "tcpdump sees every packet");
    for (i, ((ts, _), line)) in frames().iter().zip(&lines).enumerate() {
        let want = format!("{}.{:06}", ts / 1_000_000_000, ts % 1_000_000_000 / 1000);
        assert!(
            line.starts_with(&want),
            "packet {i}: {line} should start with {want}"
        );
        if i % 2 == 0 {
            assert!(
                line.contains(&format!("10.0.0.1.{} > ", 1000 + i))
                    && line.contains(&format!("UDP, length {i}")),
                "{line}"
            );
        } else {
            assert!(
                line.contains("192.168.0.1.40000 > 192.168.0.2.80: Flags [S]"),
                "{line}"
            );
        }
    }
    let lines = tcpdump(&["-nn", "-tt", "--time-stamp-precision=nano"], &nano).unwrap();
    assert_eq!(lines.len(), 300);
    for ((ts, _), line) in frames().iter().zip(&lines) {
        let want = format!("{}.{:09}", ts / 1_000_000_000, ts % 1_000_000_000);
        assert!(line.starts_with(&want), "{line} should start with {want}");
    }
    // And our reader agrees with what we wrote (nanoseconds kept, micro rounded down).
    let back = PcapReader::open(&nano).unwrap().read_all().unwrap();
    assert_eq!(back, frames());
    let back = PcapReader::open(&micro).unwrap().read_all().unwrap();
    assert_eq!(back.len(), 300);
    assert!(back
        .iter()
        .zip(frames())
        .all(|((t, f), (t0, f0))| *f == f0 && *t == t0 / 1000 * 1000));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn we_read_what_tcpdump_reads() {
    if !have_tcpdump() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for dir in ["examples", "tests/expected/example"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("pcap") {
                continue;
            }
            let ours = PcapReader::open(&p).unwrap().read_all().unwrap();
            let theirs = tcpdump(&["-nn", "-tt"], &p).unwrap();
            assert_eq!(ours.len(), theirs.len(), "{}", p.display());
            for ((ts, _), line) in ours.iter().zip(&theirs) {
                let want = format!("{}.{:06}", ts / 1_000_000_000, ts % 1_000_000_000 / 1000);
                assert!(line.starts_with(&want), "{}: {line} vs {want}", p.display());
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no bundled captures found to compare");
}

/// tcpdump verifies IPv4, TCP, UDP and ICMPv6 checksums independently of our code: frames
/// built by `builder` and then rewritten by `execute::set_masked` must all check out.
#[test]
fn tcpdump_agrees_with_our_checksums_after_rewrites() {
    use bpfswitch::execute::{push_vlan, set_masked};
    use bpfswitch::packet::builder::L4;
    use bpfswitch::packet::{ethernet, extract, icmpv6, ipv4, ipv6, tcp, udp, PacketBuf};
    use ofproto_bridge::field::Field;
    use ofproto_bridge::flow::Flow;
    if !have_tcpdump() {
        return;
    }
    let eth = |et| ethernet::Repr {
        dst: [2, 0, 0, 0, 0, 2],
        src: [2, 0, 0, 0, 0, 1],
        vlans: [None, None],
        ethertype: et,
    };
    let ip4 = ipv4::Repr {
        src: 0x0a00_0001,
        dst: 0x0a00_0002,
        ttl: 64,
        ..Default::default()
    };
    let ip6 = ipv6::Repr {
        src: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        dst: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        hop_limit: 64,
        ..Default::default()
    };
    let tcp_l4 = L4::Tcp(tcp::Repr {
        src_port: 1234,
        dst_port: 8080,
        flags: tcp::SYN,
        seq: 1,
        window: 1000,
        ..Default::default()
    });
    let udp_l4 = L4::Udp(udp::Repr {
        src_port: 1234,
        dst_port: 9999,
    });
    let nd = L4::Nd(icmpv6::NdRepr {
        msg_type: icmpv6::NEIGHBOR_SOLICIT,
        flags: 0,
        target: ip6.dst,
        sll: Some([2, 0, 0, 0, 0, 1]),
        tll: None,
    });
    let bases = vec![
        builder::ethernet(&eth(0x0800), &builder::ipv4(&ip4, &tcp_l4, b"hello")),
        builder::ethernet(&eth(0x0800), &builder::ipv4(&ip4, &udp_l4, b"hello!")),
        builder::ethernet(&eth(0x86dd), &builder::ipv6(&ip6, &[], &tcp_l4, b"hello")),
        builder::ethernet(&eth(0x86dd), &builder::ipv6(&ip6, &[], &udp_l4, b"hi")),
        builder::ethernet(&eth(0x86dd), &builder::ipv6(&ip6, &[], &nd, b"")),
    ];
    let rewrites: &[(Field, u128)] = &[
        (Field::Ipv4Src, 0xc0a8_0a0b),
        (Field::Ipv4Dst, 0x0808_0808),
        (Field::NwTtl, 3),
        (Field::IpDscp, 46),
        (Field::TcpSrc, 4321),
        (Field::TcpDst, 443),
        (Field::TcpFlags, 0x12),
        (Field::UdpSrc, 7),
        (Field::UdpDst, 0xfffe),
        (Field::Ipv6Src, 0xfe80_0000_0000_0000_0000_0000_0000_0001),
        (Field::Ipv6Dst, 0x2001_0db8_ffff_0000_0000_0000_0000_0009),
        (Field::NdTarget, 0x2001_0db8_0000_0000_0000_0000_0000_0077),
        (Field::NdSll, 0x0203_0405_0607),
    ];
    let mut out = Vec::new();
    for base in &bases {
        for (field, value) in rewrites {
            let mut pb = PacketBuf::from_slice(base);
            let mut flow = Flow::default();
            let l = extract(pb.data(), 0, &mut flow);
            if set_masked(&mut pb, &l, *field, *value, field.full_mask()).is_ok() {
                let l = push_vlan(&mut pb, &l, 0x8100, 10).unwrap();
                set_masked(&mut pb, &l, Field::VlanPcp, 5, 7).unwrap();
                out.push(pb.data().to_vec());
            }
        }
    }
    assert!(out.len() >= 25, "rewrites applied: {}", out.len());
    let dir = std::env::temp_dir().join(format!("bpfswitch-csum-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rewritten.pcap");
    let mut w = PcapWriter::create(&path).unwrap();
    for (i, f) in out.iter().enumerate() {
        w.write(f, i as u64 * 1000).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let lines = tcpdump(&["-nn", "-vv", "-e"], &path).unwrap().join("\n");
    std::fs::remove_dir_all(&dir).ok();
    for bad in [
        "incorrect",
        "bad cksum",
        "bad udp cksum",
        "bad icmp6 cksum",
        "wrong",
    ] {
        assert!(
            !lines.contains(bad),
            "tcpdump reports a bad checksum ({bad}):\n{lines}"
        );
    }
    let good = lines.matches("(correct)").count() + lines.matches("sum ok").count();
    assert!(
        good >= out.len(),
        "tcpdump confirmed only {good} checksums for {} frames:\n{lines}",
        out.len()
    );
    assert_eq!(lines.matches("vlan 10, p 5").count(), out.len(), "{lines}");
}
