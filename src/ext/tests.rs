//! Tests of the whole runtime on the clang-built programs in `src/ext/testdata/`
//! (built with `make -C src/ext/testdata`; the objects are checked in).

use super::registry::{run_once, LoadOptions};
use super::vm::{xdp, ExecTier, XdpBuf};
use super::{Abi, BpfObject, Extension};

const XDP_FW: &[u8] = include_bytes!("testdata/xdp_fw.o");
const XDP_ROUTE: &[u8] = include_bytes!("testdata/xdp_route.o");
const XDP_CALLS: &[u8] = include_bytes!("testdata/xdp_calls.o");
const UBPF_FILTER: &[u8] = include_bytes!("testdata/ubpf_filter.o");

/// An Ethernet + IPv4 + UDP packet.
pub(crate) fn udp_packet(src: [u8; 4], dst: [u8; 4], ttl: u8, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let tot = 20 + 8 + payload.len();
    let mut ip = vec![0x45, 0, (tot >> 8) as u8, tot as u8, 0, 1, 0x40, 0, ttl, 17, 0, 0];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let sum: u32 = ip.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    let sum = (sum & 0xffff) + (sum >> 16);
    let c = !((sum & 0xffff) + (sum >> 16)) as u16;
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&ip);
    let ulen = 8 + payload.len();
    p.extend_from_slice(&[0x30, 0x39, (dport >> 8) as u8, dport as u8, (ulen >> 8) as u8, ulen as u8, 0, 0]);
    p.extend_from_slice(payload);
    p
}

fn ipv4_checksum_ok(pkt: &[u8]) -> bool {
    let sum: u32 = pkt[14..34].chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    let sum = (sum & 0xffff) + (sum >> 16);
    (sum & 0xffff) + (sum >> 16) == 0xffff
}

fn trusted() -> LoadOptions {
    LoadOptions { assume_verified: true, ..Default::default() }
}

#[test]
fn objects_parse_with_their_maps() {
    let fw = BpfObject::parse(XDP_FW).unwrap();
    let p = fw.select(None).unwrap();
    assert_eq!((p.name.as_str(), p.section.as_str(), p.abi_hint), ("xdp_fw", "xdp", Some(Abi::Xdp)));
    let l = fw.link(&p, Abi::Xdp).unwrap();
    let names: Vec<_> = l.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["blocked", "stats", ".rodata", ".bss"]);
    assert_eq!((l.maps[0].key_size, l.maps[0].value_size, l.maps[0].max_entries), (4, 8, 64));
    assert_eq!(l.maps[2].initial.as_deref(), Some(&[2u8][..]));
    assert!(l.maps[2].readonly);

    let route = BpfObject::parse(XDP_ROUTE).unwrap();
    let l = route.link(&route.select(Some("xdp")).unwrap(), Abi::Xdp).unwrap();
    let names: Vec<_> = l.maps.iter().map(|m| (m.name.as_str(), m.map_type)).collect();
    assert_eq!(names, [("routes", 11), ("recent", 9), ("bytes", 6), ("last_port", 2)]);

    let calls = BpfObject::parse(XDP_CALLS).unwrap();
    let l = calls.link(&calls.select(None).unwrap(), Abi::Xdp).unwrap();
    assert_eq!(l.functions.len(), 2, "callee appended");

    let ub = BpfObject::parse(UBPF_FILTER).unwrap();
    let p = ub.select(None).unwrap();
    assert_eq!((p.name.as_str(), p.abi_hint), ("entry", Some(Abi::Ubpf)));
    let l = ub.link(&p, Abi::Ubpf).unwrap();
    assert!(l.maps.iter().any(|m| m.name == "ports" && m.map_type == 1 && m.key_size == 2));
}

#[test]
fn firewall_drops_blocked_sources_and_decrements_ttl() {
    for tier in [ExecTier::Interpreter, ExecTier::Jit, ExecTier::Cranelift] {
        let ext = Extension::load("fw", XDP_FW, &LoadOptions { tier: Some(tier), ..trusted() }).unwrap();
        ext.map_update_str("blocked", "ip:10.0.0.66", "u64:0").unwrap();
        let pass = udp_packet([10, 0, 0, 1], [10, 0, 0, 2], 64, 53, b"hello");
        let r = run_once(&ext, &pass, 1).unwrap();
        assert_eq!(r.retcode, xdp::PASS, "{tier:?} {r:?}");
        assert_eq!(r.output[22], 63, "{tier:?}: TTL decremented");
        assert!(ipv4_checksum_ok(&r.output), "{tier:?}: checksum fixed");
        let blocked = udp_packet([10, 0, 0, 66], [10, 0, 0, 2], 64, 53, b"x");
        assert_eq!(run_once(&ext, &blocked, 1).unwrap().retcode, xdp::DROP, "{tier:?}");
        assert_eq!(run_once(&ext, &blocked[..10], 1).unwrap().retcode, xdp::ABORTED, "{tier:?}");
        let low_ttl = udp_packet([10, 0, 0, 1], [10, 0, 0, 2], 1, 53, b"x");
        assert_eq!(run_once(&ext, &low_ttl, 1).unwrap().retcode, xdp::DROP, "{tier:?}: .rodata min_ttl");
        let hits = ext.map("blocked").unwrap().lookup(&[10, 0, 0, 66]).unwrap().unwrap();
        assert_eq!(hits, 1u64.to_le_bytes());
        let stats = ext.map_dump("stats").unwrap();
        let count = |i: usize| u64::from_le_bytes(stats[i].1[..8].try_into().unwrap());
        assert_eq!((count(0), count(1), count(2), count(3)), (1, 0, 1, 1), "{tier:?}");
        let bss = ext.map(".bss").unwrap().lookup(&0u32.to_le_bytes()).unwrap().unwrap();
        assert_eq!(bss, 3u64.to_le_bytes(), "{tier:?}: .bss counter");
        assert_eq!(ext.stats().runs, 4);
        assert_eq!(ext.stats().drops, 3);
    }
}

#[test]
fn route_redirects_by_longest_prefix_and_pushes_vlan() {
    for tier in [ExecTier::Interpreter, ExecTier::Jit, ExecTier::Cranelift] {
        let ext = Extension::load("route", XDP_ROUTE, &LoadOptions { tier: Some(tier), ..trusted() }).unwrap();
        ext.map_update_str("routes", "lpm:10.0.0.0/8", "u32:7").unwrap();
        ext.map_update_str("routes", "lpm:10.9.0.0/16", "u32:9").unwrap();
        let p = udp_packet([1, 2, 3, 4], [10, 1, 2, 3], 64, 53, b"abc");
        let r = run_once(&ext, &p, 3).unwrap();
        assert_eq!((r.retcode, r.redirect), (xdp::REDIRECT, Some(7)), "{tier:?} {r:?}");
        assert_eq!(&r.output[0..6], &p[6..12], "MACs swapped");
        let p2 = udp_packet([1, 2, 3, 5], [10, 9, 2, 3], 64, 53, b"abc");
        let r = run_once(&ext, &p2, 4).unwrap();
        assert_eq!((r.retcode, r.redirect), (xdp::REDIRECT, Some(9)), "{tier:?} {r:?}");
        assert_eq!(r.output.len(), p2.len() + 4);
        assert_eq!(&r.output[12..16], &[0x81, 0, 0, 7], "VLAN tag pushed");
        assert_eq!(&r.output[16..], &p2[12..]);
        let p3 = udp_packet([1, 2, 3, 6], [192, 168, 0, 1], 64, 53, b"abc");
        assert_eq!(run_once(&ext, &p3, 5).unwrap().retcode, xdp::PASS);
        // LRU remembers the sources with their ingress ports.
        let recent = ext.map_dump("recent").unwrap();
        assert_eq!(recent.len(), 3);
        assert_eq!(recent[0], (vec![1, 2, 3, 4], 3u32.to_le_bytes().to_vec()));
        let last = ext.map("last_port").unwrap().lookup(&[0; 4]).unwrap().unwrap();
        assert_eq!(last, 9u32.to_le_bytes());
        let bytes = ext.map("bytes").unwrap().lookup(&[0; 4]).unwrap().unwrap();
        assert_eq!(u64::from_le_bytes(bytes[..8].try_into().unwrap()), (p.len() + p2.len() + p3.len()) as u64);
    }
}

#[test]
fn bpf_to_bpf_calls_run_on_the_interpreter_only() {
    let ext = Extension::load("calls", XDP_CALLS, &trusted()).unwrap();
    assert_eq!(ext.tier(), ExecTier::Interpreter);
    assert!(ext.program().tier_available(ExecTier::Jit).is_err());
    let pkt = [1u8, 0, 0, 0, 2, 0, 0, 0, 9, 9];
    let (a, b) = (1u32, 2u32);
    let want = ((a * 31 + b * 7 + (a ^ b) + (a + b)) + 5 + 6) % 4 + 1;
    assert_eq!(run_once(&ext, &pkt, 0).unwrap().retcode, u64::from(want));
    assert_eq!(run_once(&ext, &pkt[..4], 0).unwrap().retcode, xdp::PASS);
}

#[test]
fn ubpf_filter_reads_packet_and_length() {
    for tier in [ExecTier::Interpreter, ExecTier::Jit, ExecTier::Cranelift] {
        let ext = Extension::load("f", UBPF_FILTER, &LoadOptions { tier: Some(tier), ..trusted() }).unwrap();
        assert_eq!(ext.abi(), Abi::Ubpf);
        ext.map_update_str("ports", "be16:53", "u64:0").unwrap();
        let hit = udp_packet([10, 0, 0, 1], [10, 0, 0, 2], 64, 53, b"");
        let miss = udp_packet([10, 0, 0, 1], [10, 0, 0, 2], 64, 54, b"");
        assert_eq!(run_once(&ext, &hit, 0).unwrap().retcode, 1, "{tier:?}");
        assert_eq!(run_once(&ext, &miss, 0).unwrap().retcode, 0, "{tier:?}");
        assert_eq!(run_once(&ext, &hit[..41], 0).unwrap().retcode, 0, "{tier:?}: length honoured");
        let v = ext.map("ports").unwrap().lookup(&[0, 53]).unwrap().unwrap();
        assert!(matches!(u64::from_le_bytes(v.try_into().unwrap()), 1 | 2));
    }
}

#[test]
fn unverified_programs_get_the_interpreter_only() {
    let ext = Extension::load("fw", XDP_FW, &LoadOptions::default()).unwrap();
    assert_eq!(ext.tier(), ExecTier::Interpreter);
    assert!(!ext.verification().allows_jit());
    let e = Extension::load("fw", XDP_FW, &LoadOptions { tier: Some(ExecTier::Jit), ..Default::default() });
    assert!(e.unwrap_err().to_string().contains("jit tier refused"));
    let mut buf = XdpBuf::new(&udp_packet([1, 1, 1, 1], [2, 2, 2, 2], 9, 1, b""));
    assert!(ext.run_on(ExecTier::Cranelift, &mut buf, 0, None).is_err());
}
