//! The extension corpus's test cases as data: packets, map preloads, expected verdicts,
//! output bytes and map contents.
//!
//! Each [`ExtCase`] names an object in `extensions/`, the maps to fill before the first
//! packet, a sequence of [`Step`]s (a packet, the expected return code and output) and the
//! map entries expected afterwards. The cases hold no knowledge of where they run:
//! [`run_case`] drives any [`ExtensionHost`] — the kernel in `tests/kernel_extensions.rs`,
//! the switch's runtime in a differential test — so the same traffic checks both.
//!
//! Expected outputs are built independently of the programs: the packet is built again with
//! the fields the program should have set, and its checksums are computed from scratch by
//! [`pkt`], never incrementally.
//!
//! Use it from another test file with `mod ext_cases;`.

#![allow(
    dead_code,
    reason = "each test target that includes this module uses a different part"
)]

use bpfswitch::ext::kernel::ExtensionHost;
use std::path::PathBuf;

pub mod pkt;

use pkt::{Ip4, L4};

/// XDP return codes.
pub const XDP_ABORTED: u32 = 0;
/// Drop the packet.
pub const XDP_DROP: u32 = 1;
/// Continue.
pub const XDP_PASS: u32 = 2;
/// Send back out of the ingress port.
pub const XDP_TX: u32 = 3;
/// Send to the port chosen with `bpf_redirect`.
pub const XDP_REDIRECT: u32 = 4;

/// One map entry written before the first step.
#[derive(Clone, Debug)]
pub struct MapEntry {
    /// Map name as in the object.
    pub map: &'static str,
    /// Key bytes.
    pub key: Vec<u8>,
    /// Value bytes.
    pub value: Vec<u8>,
}

/// What the packet should look like after a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Byte for byte the input.
    Unchanged,
    /// Exactly these bytes.
    Bytes(Vec<u8>),
}

/// One packet through the program.
#[derive(Clone, Debug)]
pub struct Step {
    /// What this step checks, for failure messages.
    pub what: &'static str,
    /// The input frame.
    pub packet: Vec<u8>,
    /// `xdp_md.ingress_ifindex` to present (the kernel's default is the loopback, 1).
    pub ingress_ifindex: Option<u32>,
    /// Expected return code.
    pub retval: u32,
    /// Expected output.
    pub output: Output,
}

/// An expected map entry after the last step.
#[derive(Clone, Debug)]
pub struct MapCheck {
    /// Map name.
    pub map: &'static str,
    /// Key bytes.
    pub key: Vec<u8>,
    /// `None`: the key must be absent. `Some(v)`: the value must start with `v` (a prefix, so
    /// that time stamps after it can be left out).
    pub value_prefix: Option<Vec<u8>>,
}

/// A test case of one program.
#[derive(Clone, Debug)]
pub struct ExtCase {
    /// Case name.
    pub name: &'static str,
    /// Object path relative to the repository root.
    pub object: &'static str,
    /// Program (function) name.
    pub program: &'static str,
    /// Map entries to write first.
    pub preload: Vec<MapEntry>,
    /// Packets, in order (state carries over between them).
    pub steps: Vec<Step>,
    /// Map entries expected at the end.
    pub map_checks: Vec<MapCheck>,
    /// The outcome depends on elapsed time (only in ways that hold on any machine: a rate of
    /// 10^8 packets/s refilling between two runs, a one-second window not ending between
    /// consecutive runs); a differential test with a simulated clock may want to skip these.
    pub time_sensitive: bool,
}

impl ExtCase {
    /// The object's absolute path.
    pub fn object_path(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(self.object)
    }
}

/// Runs `case` on `host` (a fresh load of the case's program): preloads, steps, map checks.
/// Returns every mismatch, each naming the case and step.
pub fn run_case<H: ExtensionHost>(
    case: &ExtCase,
    host: &mut H,
    mut run: impl FnMut(&mut H, &Step) -> Result<(u32, Vec<u8>), H::Error>,
) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    for e in &case.preload {
        if let Err(err) = host.update_map(e.map, &e.key, &e.value) {
            errors.push(format!(
                "{}: preload {} {}: {err}",
                case.name,
                e.map,
                hex(&e.key)
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for (i, step) in case.steps.iter().enumerate() {
        let (retval, out) = match run(host, step) {
            Ok(r) => r,
            Err(err) => {
                errors.push(format!(
                    "{} step {i} ({}): run failed: {err}",
                    case.name, step.what
                ));
                continue;
            }
        };
        if retval != step.retval {
            errors.push(format!(
                "{} step {i} ({}): return code {retval}, expected {}",
                case.name, step.what, step.retval
            ));
        }
        let want = match &step.output {
            Output::Unchanged => &step.packet,
            Output::Bytes(b) => b,
        };
        if &out != want {
            errors.push(format!(
                "{} step {i} ({}): output differs\n  got  {}\n  want {}",
                case.name,
                step.what,
                hex(&out),
                hex(want)
            ));
        }
    }
    for c in &case.map_checks {
        match (host.lookup_map(c.map, &c.key), &c.value_prefix) {
            (Err(err), _) => errors.push(format!(
                "{}: lookup {} {}: {err}",
                case.name,
                c.map,
                hex(&c.key)
            )),
            (Ok(None), None) => {}
            (Ok(Some(v)), None) => errors.push(format!(
                "{}: map {} key {} should be absent, has {}",
                case.name,
                c.map,
                hex(&c.key),
                hex(&v)
            )),
            (Ok(None), Some(_)) => errors.push(format!(
                "{}: map {} key {} missing",
                case.name,
                c.map,
                hex(&c.key)
            )),
            (Ok(Some(v)), Some(p)) => {
                if !v.starts_with(p) {
                    errors.push(format!(
                        "{}: map {} key {}: value {}, expected it to start with {}",
                        case.name,
                        c.map,
                        hex(&c.key),
                        hex(&v),
                        hex(p)
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Says loudly that a test is skipped and why: written straight to the process's stderr, so
/// the test harness's output capture does not hide it in a passing run.
pub fn skip_loudly(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {test}: {why} ***\n");
}

/// Lower-case hex, for messages.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn step(what: &'static str, packet: Vec<u8>, retval: u32, output: Output) -> Step {
    Step {
        what,
        packet,
        ingress_ifindex: None,
        retval,
        output,
    }
}

fn entry(map: &'static str, key: Vec<u8>, value: Vec<u8>) -> MapEntry {
    MapEntry { map, key, value }
}

fn check(map: &'static str, key: Vec<u8>, value_prefix: Option<Vec<u8>>) -> MapCheck {
    MapCheck {
        map,
        key,
        value_prefix,
    }
}

fn case(name: &'static str, object: &'static str, program: &'static str) -> ExtCase {
    ExtCase {
        name,
        object,
        program,
        preload: Vec::new(),
        steps: Vec::new(),
        map_checks: Vec::new(),
        time_sensitive: false,
    }
}

fn u32le(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn u64le(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Deterministic generator (splitmix64) so that failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// A random IPv4/UDP or TCP packet (random addresses, ports, TTL 2..=255, id, payload).
    pub fn ip4(&mut self) -> Ip4 {
        let r = self.next();
        let payload = self.bytes((r % 40) as usize);
        let sport = (self.next() >> 16) as u16;
        let dport = (self.next() >> 16) as u16;
        let l4 = match r % 3 {
            0 => L4::Udp {
                sport,
                dport,
                payload,
                csum: true,
            },
            1 => L4::Udp {
                sport,
                dport,
                payload,
                csum: false,
            },
            _ => L4::Tcp {
                sport,
                dport,
                payload,
            },
        };
        let mut ip = Ip4::new(self.addr(), self.addr(), l4);
        ip.ttl = 2 + (self.next() % 254) as u8;
        ip.id = self.next() as u16;
        ip.tos = self.next() as u8;
        ip
    }

    fn addr(&mut self) -> [u8; 4] {
        (self.next() as u32).to_be_bytes()
    }
}

/// The benchmark frame of WORKLOADS.md for flow `f`.
pub fn bench_frame(f: u32) -> Ip4 {
    let src = ((10u32 << 24) | (f & 0x00ff_ffff)).to_be_bytes();
    let mut ip = Ip4::new(
        src,
        [10, 1, 0, 1],
        L4::Udp {
            sport: 1024 + (f % 60000) as u16,
            dport: 53,
            payload: vec![0; 18],
            csum: false,
        },
    );
    ip.id = 1;
    ip
}

/// A non-IP frame (ARP request) and an IPv6 frame, which every program must pass untouched.
pub fn non_ipv4_frames() -> Vec<(&'static str, Vec<u8>)> {
    let mut arp = pkt::eth_header(0x0806);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&[0, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    let mut v6 = pkt::eth_header(0x86dd);
    v6.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 17, 64]);
    v6.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v6.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    v6.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
    let runt = pkt::eth_header(0x0800); // 14 bytes: Ethernet header only (the kernel's minimum).
    vec![
        ("ARP frame", arp),
        ("IPv6 frame", v6),
        ("Ethernet header only", runt),
    ]
}

fn passes_non_ipv4(c: &mut ExtCase, retval: u32) {
    for (what, frame) in non_ipv4_frames() {
        c.steps.push(step(what, frame, retval, Output::Unchanged));
    }
}

/// ttl_dec: TTL decremented with a valid checksum; TTL 0 and 1 dropped; others untouched.
fn ttl_dec() -> Vec<ExtCase> {
    let mut c = case("ttl_dec", "extensions/ttl_dec.o", "ttl_dec");
    let p = bench_frame(7);
    let mut want = p.clone();
    want.ttl = 63;
    c.steps.push(step(
        "benchmark frame",
        p.frame(),
        XDP_PASS,
        Output::Bytes(want.frame()),
    ));
    for ttl in [0u8, 1] {
        let mut p = bench_frame(1);
        p.ttl = ttl;
        c.steps.push(step(
            "TTL 0/1 dropped",
            p.frame(),
            XDP_DROP,
            Output::Unchanged,
        ));
    }
    let mut p = bench_frame(1);
    p.ttl = 2;
    let mut want = p.clone();
    want.ttl = 1;
    c.steps.push(step(
        "TTL 2 becomes 1",
        p.frame(),
        XDP_PASS,
        Output::Bytes(want.frame()),
    ));
    // Checksums at the wrap-around points of the incremental update (0x0000, 0xfeff, 0xffff
    // before the update) are reached by searching the id.
    for target in [0x0000u16, 0xfeff, 0xfeffu16.wrapping_sub(1), 0x0100] {
        if let Some(p) = (0..=0xffffu16)
            .map(|id| Ip4 {
                id,
                ..bench_frame(3)
            })
            .find(|p| p.header_checksum() == target)
        {
            let want = Ip4 {
                ttl: p.ttl - 1,
                ..p.clone()
            };
            c.steps.push(step(
                "checksum wrap-around",
                p.frame(),
                XDP_PASS,
                Output::Bytes(want.frame()),
            ));
        }
    }
    let mut rng = Rng(0x7711);
    for _ in 0..32 {
        let p = rng.ip4();
        let want = Ip4 {
            ttl: p.ttl - 1,
            ..p.clone()
        };
        c.steps.push(step(
            "random IPv4",
            p.frame(),
            XDP_PASS,
            Output::Bytes(want.frame()),
        ));
    }
    let mut opts = bench_frame(2);
    opts.options = vec![1, 1, 1, 0]; // NOP NOP NOP EOL
    let want = Ip4 {
        ttl: 63,
        ..opts.clone()
    };
    c.steps.push(step(
        "IPv4 with options",
        opts.frame(),
        XDP_PASS,
        Output::Bytes(want.frame()),
    ));
    passes_non_ipv4(&mut c, XDP_PASS);
    vec![c]
}

/// nat_bench: destination becomes 10.2.0.1 with valid IPv4 and L4 checksums.
fn nat_bench() -> Vec<ExtCase> {
    let mut c = case("nat_bench", "extensions/nat_bench.o", "nat_bench");
    let natted = |p: &Ip4| Ip4 {
        dst: [10, 2, 0, 1],
        ..p.clone()
    };
    let p = bench_frame(9);
    c.steps.push(step(
        "benchmark frame (UDP checksum 0 stays 0)",
        p.frame(),
        XDP_PASS,
        Output::Bytes(natted(&p).frame()),
    ));
    let mut rng = Rng(0x4a7);
    for _ in 0..32 {
        let p = rng.ip4();
        c.steps.push(step(
            "random UDP/TCP",
            p.frame(),
            XDP_PASS,
            Output::Bytes(natted(&p).frame()),
        ));
    }
    let done = natted(&bench_frame(1));
    c.steps.push(step(
        "already 10.2.0.1",
        done.frame(),
        XDP_PASS,
        Output::Unchanged,
    ));
    let icmp = Ip4::new(
        [10, 0, 0, 1],
        [10, 1, 0, 1],
        L4::Icmp {
            payload: vec![8, 0, 0xf7, 0xff, 0, 0, 0, 0],
        },
    );
    c.steps.push(step(
        "ICMP: only the IPv4 header changes",
        icmp.frame(),
        XDP_PASS,
        Output::Bytes(natted(&icmp).frame()),
    ));
    passes_non_ipv4(&mut c, XDP_PASS);
    vec![c]
}

fn nat_key(daddr: [u8; 4], dport: u16, proto: u8) -> Vec<u8> {
    cat(&[&daddr, &dport.to_be_bytes(), &[proto, 0]])
}

fn nat_target(daddr: [u8; 4], dport: u16) -> Vec<u8> {
    cat(&[&daddr, &dport.to_be_bytes(), &[0, 0]])
}

/// nat: rules from the map; address and port rewritten; checksums valid.
fn nat() -> Vec<ExtCase> {
    let mut c = case("nat", "extensions/nat.o", "nat");
    let vip = [203, 0, 113, 10];
    let backend = [192, 168, 1, 10];
    c.preload.push(entry(
        "nat_rules",
        nat_key(vip, 80, 6),
        nat_target(backend, 8080),
    ));
    c.preload.push(entry(
        "nat_rules",
        nat_key(vip, 53, 17),
        nat_target(backend, 5353),
    ));
    let translate = |p: &Ip4, port: u16| {
        let mut q = p.clone();
        q.dst = backend;
        q.l4.set_dport(port);
        q
    };
    let tcp = Ip4::new(
        [198, 51, 100, 7],
        vip,
        L4::Tcp {
            sport: 40000,
            dport: 80,
            payload: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        },
    );
    c.steps.push(step(
        "TCP to the VIP",
        tcp.frame(),
        XDP_PASS,
        Output::Bytes(translate(&tcp, 8080).frame()),
    ));
    let udp = Ip4::new(
        [198, 51, 100, 7],
        vip,
        L4::Udp {
            sport: 5000,
            dport: 53,
            payload: vec![0xab; 29],
            csum: true,
        },
    );
    c.steps.push(step(
        "UDP with checksum",
        udp.frame(),
        XDP_PASS,
        Output::Bytes(translate(&udp, 5353).frame()),
    ));
    let udp0 = Ip4::new(
        [198, 51, 100, 8],
        vip,
        L4::Udp {
            sport: 5001,
            dport: 53,
            payload: vec![1, 2, 3],
            csum: false,
        },
    );
    c.steps.push(step(
        "UDP without checksum",
        udp0.frame(),
        XDP_PASS,
        Output::Bytes(translate(&udp0, 5353).frame()),
    ));
    let mut opts = tcp.clone();
    opts.options = vec![0x94, 0x04, 0, 0, 1, 1, 1, 0]; // Router Alert, NOP NOP NOP EOL
    c.steps.push(step(
        "TCP with IPv4 options",
        opts.frame(),
        XDP_PASS,
        Output::Bytes(translate(&opts, 8080).frame()),
    ));
    let mut rng = Rng(0x5eed);
    for _ in 0..16 {
        let mut p = rng.ip4();
        p.dst = vip;
        let port = match &mut p.l4 {
            L4::Tcp { dport, .. } => {
                *dport = 80;
                8080
            }
            L4::Udp { dport, .. } => {
                *dport = 53;
                5353
            }
            _ => unreachable!("Rng::ip4 makes UDP or TCP"),
        };
        c.steps.push(step(
            "random to the VIP",
            p.frame(),
            XDP_PASS,
            Output::Bytes(translate(&p, port).frame()),
        ));
    }
    let other_port = Ip4::new(
        [198, 51, 100, 7],
        vip,
        L4::Tcp {
            sport: 40000,
            dport: 443,
            payload: vec![],
        },
    );
    c.steps.push(step(
        "no rule for the port",
        other_port.frame(),
        XDP_PASS,
        Output::Unchanged,
    ));
    let wrong_proto = Ip4::new(
        [198, 51, 100, 7],
        vip,
        L4::Udp {
            sport: 1,
            dport: 80,
            payload: vec![],
            csum: true,
        },
    );
    c.steps.push(step(
        "rule is for TCP only",
        wrong_proto.frame(),
        XDP_PASS,
        Output::Unchanged,
    ));
    let mut frag = udp.clone();
    frag.frag = 0x0010; // offset 128 bytes: no L4 header here
    c.steps.push(step(
        "non-first fragment",
        frag.frame(),
        XDP_PASS,
        Output::Unchanged,
    ));
    let icmp = Ip4::new(
        [198, 51, 100, 7],
        vip,
        L4::Icmp {
            payload: vec![8, 0, 0xf7, 0xff, 0, 0, 0, 0],
        },
    );
    c.steps
        .push(step("ICMP", icmp.frame(), XDP_PASS, Output::Unchanged));
    passes_non_ipv4(&mut c, XDP_PASS);
    vec![c]
}

/// fw_stateless and its filter build: blocked sources dropped (matched) and counted.
fn fw_stateless() -> Vec<ExtCase> {
    let mut out = Vec::new();
    for (name, object, program, blocked, allowed) in [
        (
            "fw_stateless",
            "extensions/fw_stateless.o",
            "fw_stateless",
            XDP_DROP,
            XDP_PASS,
        ),
        (
            "fw_stateless_filter",
            "extensions/fw_stateless_filter.o",
            "fw_stateless_filter",
            1,
            0,
        ),
    ] {
        let mut c = case(name, object, program);
        let bad = [192, 0, 2, 66];
        c.preload.push(entry("blocked_src", bad.to_vec(), u64le(0)));
        c.preload
            .push(entry("blocked_src", vec![192, 0, 2, 67], u64le(100)));
        let from = |src: [u8; 4]| {
            Ip4 {
                src,
                ..bench_frame(1)
            }
            .frame()
        };
        c.steps.push(step(
            "blocked source",
            from(bad),
            blocked,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "allowed source",
            from([192, 0, 2, 65]),
            allowed,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "blocked source again",
            from(bad),
            blocked,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "destination is not looked at",
            Ip4 {
                dst: bad,
                ..bench_frame(2)
            }
            .frame(),
            allowed,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "second blocked source",
            from([192, 0, 2, 67]),
            blocked,
            Output::Unchanged,
        ));
        passes_non_ipv4(&mut c, allowed);
        c.map_checks
            .push(check("blocked_src", bad.to_vec(), Some(u64le(2))));
        c.map_checks
            .push(check("blocked_src", vec![192, 0, 2, 67], Some(u64le(101))));
        c.map_checks
            .push(check("blocked_src", vec![192, 0, 2, 65], None));
        out.push(c);
    }
    out
}

fn flow5(saddr: [u8; 4], daddr: [u8; 4], sport: u16, dport: u16, proto: u8) -> Vec<u8> {
    cat(&[
        &saddr,
        &daddr,
        &sport.to_be_bytes(),
        &dport.to_be_bytes(),
        &[proto, 0, 0, 0],
    ])
}

fn fw_config(inside_ifindex: u32, net: [u8; 4], mask: [u8; 4]) -> Vec<u8> {
    cat(&[&inside_ifindex.to_le_bytes(), &net, &mask, &[0; 4]])
}

/// fw_stateful and its filter build: replies pass only for connections seen outbound.
fn fw_stateful() -> Vec<ExtCase> {
    let mut out = Vec::new();
    for (name, object, program, deny, allow) in [
        (
            "fw_stateful",
            "extensions/fw_stateful.o",
            "fw_stateful",
            XDP_DROP,
            XDP_PASS,
        ),
        (
            "fw_stateful_filter",
            "extensions/fw_stateful_filter.o",
            "fw_stateful_filter",
            0,
            1,
        ),
    ] {
        let inside = [192, 168, 1, 2];
        let server = [8, 8, 8, 8];
        let udp = |src, dst, sport, dport| {
            Ip4::new(
                src,
                dst,
                L4::Udp {
                    sport,
                    dport,
                    payload: vec![7; 12],
                    csum: true,
                },
            )
            .frame()
        };
        let tcp = |src, dst, sport, dport| {
            Ip4::new(
                src,
                dst,
                L4::Tcp {
                    sport,
                    dport,
                    payload: vec![],
                },
            )
            .frame()
        };
        let icmp = |src, dst| {
            Ip4::new(
                src,
                dst,
                L4::Icmp {
                    payload: vec![8, 0, 0xf7, 0xff, 0, 0, 0, 0],
                },
            )
            .frame()
        };

        // Direction by address: 192.168.0.0/16 is inside.
        let mut c = case(name, object, program);
        c.preload.push(entry(
            "fw_config",
            u32le(0),
            fw_config(0, [192, 168, 0, 0], [255, 255, 0, 0]),
        ));
        c.steps.push(step(
            "unsolicited inbound UDP",
            udp(server, inside, 53, 5000),
            deny,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "outbound UDP",
            udp(inside, server, 5000, 53),
            allow,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "UDP reply",
            udp(server, inside, 53, 5000),
            allow,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "inbound to another port",
            udp(server, inside, 53, 5001),
            deny,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "inbound from another port",
            udp(server, inside, 54, 5000),
            deny,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "TCP reply before the SYN",
            tcp(server, inside, 443, 33000),
            deny,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "outbound TCP",
            tcp(inside, server, 33000, 443),
            allow,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "TCP reply",
            tcp(server, inside, 443, 33000),
            allow,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "UDP reply does not match the TCP connection",
            udp(server, inside, 443, 33000),
            deny,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "outbound ping",
            icmp(inside, server),
            allow,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "ping reply",
            icmp(server, inside),
            allow,
            Output::Unchanged,
        ));
        c.steps.push(step(
            "inside to inside is outbound",
            udp(inside, [192, 168, 9, 9], 1, 2),
            allow,
            Output::Unchanged,
        ));
        passes_non_ipv4(&mut c, allow);
        c.map_checks.push(check(
            "conntrack",
            flow5(inside, server, 5000, 53, 17),
            Some(u64le(2)),
        ));
        c.map_checks.push(check(
            "conntrack",
            flow5(inside, server, 33000, 443, 6),
            Some(u64le(2)),
        ));
        c.map_checks.push(check(
            "conntrack",
            flow5(server, inside, 53, 5000, 17),
            None,
        ));
        out.push(c);

        // Direction by ingress interface: the loopback (ifindex 1) is the inside port, so
        // even a packet from an outside address is outbound.
        let mut c = case(name, object, program);
        c.preload.push(entry(
            "fw_config",
            u32le(0),
            fw_config(1, [192, 168, 0, 0], [255, 255, 0, 0]),
        ));
        let mut s = step(
            "from the inside port",
            udp(server, inside, 53, 5000),
            allow,
            Output::Unchanged,
        );
        s.ingress_ifindex = Some(1);
        c.steps.push(s);
        c.map_checks.push(check(
            "conntrack",
            flow5(server, inside, 53, 5000, 17),
            Some(u64le(1)),
        ));
        out.push(c);

        // An inside port no packet arrives on: every packet is inbound, whatever its address.
        let mut c = case(name, object, program);
        c.preload.push(entry(
            "fw_config",
            u32le(0),
            fw_config(0x7fff_fff0, [192, 168, 0, 0], [255, 255, 0, 0]),
        ));
        let mut s = step(
            "inside address, outside port",
            udp(inside, server, 5000, 53),
            deny,
            Output::Unchanged,
        );
        s.ingress_ifindex = Some(1);
        c.steps.push(s);
        out.push(c);
    }
    out
}

fn rl_config(rate: u64, burst: u64) -> Vec<u8> {
    cat(&[&rate.to_le_bytes(), &burst.to_le_bytes()])
}

/// rate_limiter: a full bucket of `burst` packets, then drops; per source.
fn rate_limiter() -> Vec<ExtCase> {
    let from = |a: u8| {
        Ip4 {
            src: [10, 0, 0, a],
            ..bench_frame(1)
        }
        .frame()
    };
    let mut c = case("rate_limiter", "extensions/rate_limiter.o", "rate_limiter");
    c.preload
        .push(entry("rl_config", u32le(0), rl_config(0, 3)));
    for _ in 0..3 {
        c.steps.push(step(
            "within the burst",
            from(1),
            XDP_PASS,
            Output::Unchanged,
        ));
    }
    c.steps
        .push(step("bucket empty", from(1), XDP_DROP, Output::Unchanged));
    c.steps.push(step(
        "still empty (rate 0 never refills)",
        from(1),
        XDP_DROP,
        Output::Unchanged,
    ));
    c.steps.push(step(
        "another source has its own bucket",
        from(2),
        XDP_PASS,
        Output::Unchanged,
    ));
    passes_non_ipv4(&mut c, XDP_PASS);
    c.map_checks
        .push(check("rl_buckets", vec![10, 0, 0, 1], Some(u64le(0))));
    c.map_checks.push(check(
        "rl_buckets",
        vec![10, 0, 0, 2],
        Some(u64le(2_000_000_000)),
    ));
    c.map_checks
        .push(check("rl_buckets", vec![10, 0, 0, 3], None));
    let mut out = vec![c];

    let mut c = case("rate_limiter", "extensions/rate_limiter.o", "rate_limiter");
    c.steps.push(step(
        "no configuration: burst 0 drops",
        from(1),
        XDP_DROP,
        Output::Unchanged,
    ));
    out.push(c);

    // A burst of 5 is 5 * 10^9 nanotokens, more than 32 bits hold: every comparison of the
    // bucket must be a 64-bit one.
    let mut c = case("rate_limiter", "extensions/rate_limiter.o", "rate_limiter");
    c.preload
        .push(entry("rl_config", u32le(0), rl_config(0, 5)));
    for _ in 0..5 {
        c.steps.push(step(
            "burst of 5 (nanotokens beyond 32 bits)",
            from(9),
            XDP_PASS,
            Output::Unchanged,
        ));
    }
    c.steps
        .push(step("sixth packet", from(9), XDP_DROP, Output::Unchanged));
    c.map_checks
        .push(check("rl_buckets", vec![10, 0, 0, 9], Some(u64le(0))));
    out.push(c);

    // 10^8 packets/s refills one token every 10 ns: a burst of one never runs dry between
    // two runs.
    let mut c = case("rate_limiter", "extensions/rate_limiter.o", "rate_limiter");
    c.time_sensitive = true;
    c.preload
        .push(entry("rl_config", u32le(0), rl_config(100_000_000, 1)));
    for _ in 0..3 {
        c.steps.push(step(
            "refilled between runs",
            from(1),
            XDP_PASS,
            Output::Unchanged,
        ));
    }
    out.push(c);
    out
}

/// vlan_push: a tag after the MAC addresses, from the configuration.
fn vlan_push() -> Vec<ExtCase> {
    let cfg = |vid: u16, pcp: u8| cat(&[&vid.to_le_bytes(), &[pcp, 0]]);
    let tagged = |frame: &[u8], tci: u16| {
        cat(&[
            &frame[..12],
            &[0x81, 0x00],
            &tci.to_be_bytes(),
            &frame[12..],
        ])
    };
    let mut c = case("vlan_push", "extensions/vlan_push.o", "vlan_push");
    c.preload.push(entry("vlan_config", u32le(0), cfg(100, 5)));
    let f = bench_frame(1).frame();
    c.steps.push(step(
        "IPv4 frame",
        f.clone(),
        XDP_PASS,
        Output::Bytes(tagged(&f, (5 << 13) | 100)),
    ));
    for (what, frame) in non_ipv4_frames() {
        let want = tagged(&frame, (5 << 13) | 100);
        c.steps
            .push(step(what, frame, XDP_PASS, Output::Bytes(want)));
    }
    let once = tagged(&f, (5 << 13) | 100);
    c.steps.push(step(
        "tagged frame gets a second tag",
        once.clone(),
        XDP_PASS,
        Output::Bytes(tagged(&once, (5 << 13) | 100)),
    ));
    let mut out = vec![c];

    let mut c = case("vlan_push", "extensions/vlan_push.o", "vlan_push");
    c.preload.push(entry("vlan_config", u32le(0), cfg(4095, 0)));
    c.steps.push(step(
        "VID 4095",
        f.clone(),
        XDP_PASS,
        Output::Bytes(tagged(&f, 4095)),
    ));
    out.push(c);

    for (vid, what) in [(0u16, "VID 0: no tag"), (4096, "VID 4096: no tag")] {
        let mut c = case("vlan_push", "extensions/vlan_push.o", "vlan_push");
        c.preload.push(entry("vlan_config", u32le(0), cfg(vid, 3)));
        c.steps
            .push(step(what, f.clone(), XDP_PASS, Output::Unchanged));
        out.push(c);
    }
    let mut c = case("vlan_push", "extensions/vlan_push.o", "vlan_push");
    c.steps.push(step(
        "no configuration: no tag",
        f,
        XDP_PASS,
        Output::Unchanged,
    ));
    out.push(c);
    out
}

fn mask_config(len: u32, fill: u8) -> Vec<u8> {
    cat(&[&len.to_le_bytes(), &[fill, 0, 0, 0]])
}

/// payload_mask: only UDP payload bytes change.
fn payload_mask() -> Vec<ExtCase> {
    let numbered = |n: usize| {
        Ip4::new(
            [10, 0, 0, 1],
            [10, 1, 0, 1],
            L4::Udp {
                sport: 1024,
                dport: 53,
                payload: (1..=n as u8).collect(),
                csum: false,
            },
        )
    };
    let masked = |p: &Ip4, n: usize, fill: u8| {
        let mut q = p.clone();
        if let L4::Udp { payload, .. } = &mut q.l4 {
            for b in payload.iter_mut().take(n) {
                *b = fill;
            }
        }
        q.frame()
    };
    let mut c = case("payload_mask", "extensions/payload_mask.o", "payload_mask");
    let p = numbered(18);
    c.steps.push(step(
        "default: 16 bytes zeroed",
        p.frame(),
        XDP_PASS,
        Output::Bytes(masked(&p, 16, 0)),
    ));
    let b = bench_frame(4);
    c.steps.push(step(
        "benchmark frame (zeros stay zeros)",
        b.frame(),
        XDP_PASS,
        Output::Unchanged,
    ));
    let short = numbered(5);
    c.steps.push(step(
        "payload shorter than the mask",
        short.frame(),
        XDP_PASS,
        Output::Bytes(masked(&short, 5, 0)),
    ));
    // The UDP length says 3 payload bytes; the rest of the frame is Ethernet padding.
    let mut padded = numbered(3).frame();
    padded.extend_from_slice(&[0xee; 12]);
    let mut want = padded.clone();
    want[42..45].fill(0);
    c.steps.push(step(
        "Ethernet padding is not payload",
        padded,
        XDP_PASS,
        Output::Bytes(want),
    ));
    let with_csum = Ip4::new(
        [10, 0, 0, 1],
        [10, 1, 0, 1],
        L4::Udp {
            sport: 1,
            dport: 2,
            payload: vec![9; 20],
            csum: true,
        },
    );
    c.steps.push(step(
        "UDP with a checksum is left alone",
        with_csum.frame(),
        XDP_PASS,
        Output::Unchanged,
    ));
    let tcp = Ip4::new(
        [10, 0, 0, 1],
        [10, 1, 0, 1],
        L4::Tcp {
            sport: 1,
            dport: 2,
            payload: vec![9; 20],
        },
    );
    c.steps
        .push(step("TCP", tcp.frame(), XDP_PASS, Output::Unchanged));
    let mut opts = numbered(18);
    opts.options = vec![1, 1, 1, 0];
    c.steps.push(step(
        "IPv4 options",
        opts.frame(),
        XDP_PASS,
        Output::Unchanged,
    ));
    passes_non_ipv4(&mut c, XDP_PASS);
    let mut out = vec![c];

    let mut c = case("payload_mask", "extensions/payload_mask.o", "payload_mask");
    c.preload
        .push(entry("mask_config", u32le(0), mask_config(4, 0xaa)));
    let p = numbered(18);
    c.steps.push(step(
        "4 bytes of 0xaa",
        p.frame(),
        XDP_PASS,
        Output::Bytes(masked(&p, 4, 0xaa)),
    ));
    out.push(c);

    let mut c = case("payload_mask", "extensions/payload_mask.o", "payload_mask");
    c.preload
        .push(entry("mask_config", u32le(0), mask_config(1000, 0x55)));
    let p = numbered(30);
    c.steps.push(step(
        "length capped at 16",
        p.frame(),
        XDP_PASS,
        Output::Bytes(masked(&p, 16, 0x55)),
    ));
    out.push(c);
    out
}

fn vxlan_key(outer: (&[u8; 4], &[u8; 4]), vni: u32, inner: (&[u8; 4], &[u8; 4])) -> Vec<u8> {
    cat(&[outer.0, outer.1, &vni.to_le_bytes(), inner.0, inner.1])
}

fn stats(packets: u64, bytes: u64) -> Vec<u8> {
    cat(&[&packets.to_le_bytes(), &bytes.to_le_bytes()])
}

/// flow_monitor: counts VXLAN packets by outer and inner addresses; never writes the packet.
fn flow_monitor() -> Vec<ExtCase> {
    let (o1, o2) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let (i1, i2) = ([172, 16, 0, 1], [172, 16, 0, 2]);
    let vxlan = |vni: u32, inner: Vec<u8>| {
        let mut payload = vec![0x08, 0, 0, 0];
        payload.extend_from_slice(&(vni << 8).to_be_bytes());
        payload.extend_from_slice(&inner);
        Ip4::new(
            o1,
            o2,
            L4::Udp {
                sport: 49152,
                dport: 4789,
                payload,
                csum: false,
            },
        )
        .frame()
    };
    let inner_ip = Ip4::new(
        i1,
        i2,
        L4::Udp {
            sport: 1,
            dport: 2,
            payload: vec![1; 10],
            csum: true,
        },
    )
    .frame();
    let inner_arp = non_ipv4_frames().remove(0).1;

    let mut c = case("flow_monitor", "extensions/flow_monitor.o", "flow_monitor");
    let a = vxlan(42, inner_ip.clone());
    let b = vxlan(43, inner_ip.clone());
    let arp = vxlan(42, inner_arp);
    c.steps.push(step(
        "VXLAN, VNI 42",
        a.clone(),
        XDP_PASS,
        Output::Unchanged,
    ));
    c.steps.push(step(
        "VXLAN, VNI 42 again",
        a.clone(),
        XDP_PASS,
        Output::Unchanged,
    ));
    c.steps.push(step(
        "VXLAN, VNI 43",
        b.clone(),
        XDP_PASS,
        Output::Unchanged,
    ));
    c.steps.push(step(
        "VXLAN carrying ARP",
        arp.clone(),
        XDP_PASS,
        Output::Unchanged,
    ));
    let plain = bench_frame(1).frame();
    c.steps.push(step(
        "not VXLAN",
        plain.clone(),
        XDP_PASS,
        Output::Unchanged,
    ));
    let mut no_flag = a.clone();
    no_flag[42] = 0; // VXLAN I flag clear
    c.steps.push(step(
        "VXLAN without the I flag",
        no_flag.clone(),
        XDP_PASS,
        Output::Unchanged,
    ));
    let mut other = vec![plain.len() as u64, no_flag.len() as u64];
    for (_, f) in non_ipv4_frames() {
        other.push(f.len() as u64);
        c.steps
            .push(step("non-IPv4", f, XDP_PASS, Output::Unchanged));
    }
    c.map_checks.push(check(
        "vxlan_flows",
        vxlan_key((&o1, &o2), 42, (&i1, &i2)),
        Some(stats(2, 2 * a.len() as u64)),
    ));
    c.map_checks.push(check(
        "vxlan_flows",
        vxlan_key((&o1, &o2), 43, (&i1, &i2)),
        Some(stats(1, b.len() as u64)),
    ));
    c.map_checks.push(check(
        "vxlan_flows",
        vxlan_key((&o1, &o2), 42, (&[0; 4], &[0; 4])),
        Some(stats(1, arp.len() as u64)),
    ));
    c.map_checks.push(check(
        "other_traffic",
        u32le(0),
        Some(stats(other.len() as u64, other.iter().sum())),
    ));
    vec![c]
}

fn flood_config(threshold: u64, window_ns: u64) -> Vec<u8> {
    cat(&[&threshold.to_le_bytes(), &window_ns.to_le_bytes()])
}

/// udp_flood_drop: blocklisted ports dropped; more than the threshold per window dropped.
fn udp_flood_drop() -> Vec<ExtCase> {
    let to = |dport: u16, src: u8| {
        Ip4::new(
            [10, 0, 0, src],
            [10, 1, 0, 1],
            L4::Udp {
                sport: 1000,
                dport,
                payload: vec![0; 8],
                csum: false,
            },
        )
        .frame()
    };
    let mut c = case(
        "udp_flood_drop",
        "extensions/udp_flood_drop.o",
        "udp_flood_drop",
    );
    c.time_sensitive = true;
    c.preload.push(entry("blocked_ports", u32le(19), u32le(1))); // chargen
    c.preload.push(entry(
        "flood_config",
        u32le(0),
        flood_config(2, 60_000_000_000),
    ));
    c.steps.push(step(
        "blocklisted port",
        to(19, 1),
        XDP_DROP,
        Output::Unchanged,
    ));
    c.steps.push(step(
        "1st to port 53",
        to(53, 1),
        XDP_PASS,
        Output::Unchanged,
    ));
    c.steps.push(step(
        "2nd to port 53 (other source)",
        to(53, 2),
        XDP_PASS,
        Output::Unchanged,
    ));
    c.steps.push(step(
        "3rd to port 53: over the threshold",
        to(53, 3),
        XDP_DROP,
        Output::Unchanged,
    ));
    c.steps.push(step(
        "another port has its own count",
        to(54, 1),
        XDP_PASS,
        Output::Unchanged,
    ));
    let tcp = Ip4::new(
        [10, 0, 0, 1],
        [10, 1, 0, 1],
        L4::Tcp {
            sport: 1,
            dport: 53,
            payload: vec![],
        },
    )
    .frame();
    c.steps
        .push(step("TCP is not counted", tcp, XDP_PASS, Output::Unchanged));
    passes_non_ipv4(&mut c, XDP_PASS);
    c.map_checks
        .push(check("flood_drops", u32le(0), Some(u64le(2))));
    c.map_checks
        .push(check("port_windows", u32le(53), Some(Vec::new())));
    let mut out = vec![c];

    let mut c = case(
        "udp_flood_drop",
        "extensions/udp_flood_drop.o",
        "udp_flood_drop",
    );
    c.preload.push(entry("blocked_ports", u32le(19), u32le(0)));
    for _ in 0..5 {
        c.steps.push(step(
            "threshold 0: no rate check",
            to(53, 1),
            XDP_PASS,
            Output::Unchanged,
        ));
    }
    c.steps.push(step(
        "zero entry does not block",
        to(19, 1),
        XDP_PASS,
        Output::Unchanged,
    ));
    c.map_checks
        .push(check("flood_drops", u32le(0), Some(u64le(0))));
    out.push(c);
    out
}

/// bench_filter: true for the benchmark frames only.
fn bench_filter() -> Vec<ExtCase> {
    let mut c = case("bench_filter", "extensions/bench_filter.o", "bench_filter");
    for f in [0u32, 1, 65535, 1 << 20] {
        c.steps.push(step(
            "benchmark frame",
            bench_frame(f).frame(),
            1,
            Output::Unchanged,
        ));
    }
    let mut vary = bench_frame(5);
    vary.dst = [10, 1, 0xff, 0xfe];
    c.steps
        .push(step("vary-dst frame", vary.frame(), 1, Output::Unchanged));
    let miss = |what, p: Ip4| step(what, p.frame(), 0, Output::Unchanged);
    c.steps.push(miss(
        "other /16",
        Ip4 {
            dst: [10, 2, 0, 1],
            ..bench_frame(1)
        },
    ));
    c.steps.push(miss(
        "TTL 1",
        Ip4 {
            ttl: 1,
            ..bench_frame(1)
        },
    ));
    c.steps.push(miss(
        "IPv4 options",
        Ip4 {
            options: vec![1, 1, 1, 0],
            ..bench_frame(1)
        },
    ));
    let mut port = bench_frame(1);
    port.l4.set_dport(54);
    c.steps.push(miss("port 54", port));
    c.steps.push(miss(
        "TCP port 53",
        Ip4::new(
            [10, 0, 0, 1],
            [10, 1, 0, 1],
            L4::Tcp {
                sport: 1,
                dport: 53,
                payload: vec![],
            },
        ),
    ));
    let mut truncated = bench_frame(1).frame();
    truncated.truncate(38);
    c.steps.push(step(
        "truncated UDP header",
        truncated,
        0,
        Output::Unchanged,
    ));
    passes_non_ipv4(&mut c, 0);
    vec![c]
}

/// mac_redirect: frames to a known MAC address are redirected to its port and counted.
fn mac_redirect() -> Vec<ExtCase> {
    let mut c = case("mac_redirect", "extensions/mac_redirect.o", "mac_redirect");
    let mac_key = |m: [u8; 6]| cat(&[&m, &[0, 0]]);
    let port = |p: u32, frames: u64| cat(&[&p.to_le_bytes(), &[0; 4], &frames.to_le_bytes()]);
    c.preload
        .push(entry("mac_ports", mac_key(pkt::DST_MAC), port(7, 0)));
    c.preload
        .push(entry("mac_ports", mac_key([2, 0, 0, 0, 0, 9]), port(3, 40)));
    let f = bench_frame(1).frame();
    c.steps.push(step(
        "known destination",
        f.clone(),
        XDP_REDIRECT,
        Output::Unchanged,
    ));
    for (what, frame) in non_ipv4_frames() {
        c.steps
            .push(step(what, frame, XDP_REDIRECT, Output::Unchanged));
    }
    let mut other = f.clone();
    other[..6].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
    c.steps.push(step(
        "second known destination",
        other,
        XDP_REDIRECT,
        Output::Unchanged,
    ));
    let mut unknown = f.clone();
    unknown[5] = 0x77;
    c.steps.push(step(
        "unknown destination",
        unknown,
        XDP_PASS,
        Output::Unchanged,
    ));
    let mut by_source = f;
    by_source[..6].copy_from_slice(&[0, 0, 0, 0, 0, 0x55]);
    by_source[6..12].copy_from_slice(&pkt::DST_MAC);
    c.steps.push(step(
        "known address as source only",
        by_source,
        XDP_PASS,
        Output::Unchanged,
    ));
    c.map_checks
        .push(check("mac_ports", mac_key(pkt::DST_MAC), Some(port(7, 4))));
    c.map_checks.push(check(
        "mac_ports",
        mac_key([2, 0, 0, 0, 0, 9]),
        Some(port(3, 41)),
    ));
    vec![c]
}

/// icmp_echo: echo requests answered in place (XDP_TX), everything else untouched.
fn icmp_echo() -> Vec<ExtCase> {
    let mut c = case("icmp_echo", "extensions/icmp_echo.o", "icmp_echo");
    let echo = |ty: u8, code: u8, data: &[u8]| cat(&[&[ty, code, 0, 0, 0x12, 0x34, 0, 7], data]);
    let swap_macs = |mut f: Vec<u8>| {
        let (dst, src) = (f[..6].to_vec(), f[6..12].to_vec());
        f[..6].copy_from_slice(&src);
        f[6..12].copy_from_slice(&dst);
        f
    };
    let reply_to = |req: &Ip4| {
        let mut r = Ip4 {
            src: req.dst,
            dst: req.src,
            ttl: 64,
            ..req.clone()
        };
        if let L4::Icmp { payload } = &mut r.l4 {
            payload[0] = 0;
        }
        swap_macs(r.frame())
    };
    let mut req = Ip4::new(
        [10, 0, 0, 1],
        [10, 1, 0, 1],
        L4::Icmp {
            payload: echo(8, 0, b"abcdefgh"),
        },
    );
    req.ttl = 17;
    req.id = 0x4242;
    c.steps.push(step(
        "echo request",
        req.frame(),
        XDP_TX,
        Output::Bytes(reply_to(&req)),
    ));
    let mut rng = Rng(0xec40);
    for _ in 0..16 {
        let n = (rng.next() % 64) as usize;
        let data = rng.bytes(n);
        let mut r = Ip4::new(
            [172, 16, 0, rng.next() as u8],
            [192, 168, 1, 1],
            L4::Icmp {
                payload: echo(8, 0, &data),
            },
        );
        r.ttl = 1 + (rng.next() % 255) as u8;
        r.id = rng.next() as u16;
        c.steps.push(step(
            "random echo request",
            r.frame(),
            XDP_TX,
            Output::Bytes(reply_to(&r)),
        ));
    }
    let reply = Ip4::new(
        [10, 0, 0, 1],
        [10, 1, 0, 1],
        L4::Icmp {
            payload: echo(0, 0, b"x"),
        },
    );
    c.steps.push(step(
        "echo reply",
        reply.frame(),
        XDP_PASS,
        Output::Unchanged,
    ));
    let code1 = Ip4::new(
        [10, 0, 0, 1],
        [10, 1, 0, 1],
        L4::Icmp {
            payload: echo(8, 1, b"x"),
        },
    );
    c.steps.push(step(
        "echo request with code 1",
        code1.frame(),
        XDP_PASS,
        Output::Unchanged,
    ));
    let mut frag = req.clone();
    frag.frag = 0x2000; // more fragments
    c.steps.push(step(
        "first fragment",
        frag.frame(),
        XDP_PASS,
        Output::Unchanged,
    ));
    let mut opts = req.clone();
    opts.options = vec![1, 1, 1, 0];
    c.steps.push(step(
        "IPv4 options",
        opts.frame(),
        XDP_PASS,
        Output::Unchanged,
    ));
    let mut short = req.frame();
    short.truncate(40);
    c.steps.push(step(
        "truncated ICMP header",
        short,
        XDP_PASS,
        Output::Unchanged,
    ));
    c.steps.push(step(
        "UDP",
        bench_frame(1).frame(),
        XDP_PASS,
        Output::Unchanged,
    ));
    passes_non_ipv4(&mut c, XDP_PASS);
    vec![c]
}

/// The `.bss` value of proto_stats after `frames` (layout from proto_stats.c).
fn proto_stats_bss(frames: &[Vec<u8>], low_ttl_max: u8) -> Vec<u8> {
    let mut bss = vec![0u8; 4112];
    let mut add = |at: usize, v: u64| {
        let old = u64::from_le_bytes(bss[at..at + 8].try_into().expect("8 bytes"));
        bss[at..at + 8].copy_from_slice(&(old + v).to_le_bytes());
    };
    for f in frames {
        if f.len() < 34 || f[12..14] != [8, 0] {
            add(0, 1);
            continue;
        }
        let proto = usize::from(f[23]);
        add(8 + 8 * proto, 1);
        add(2056 + 8 * proto, f.len() as u64);
        if f[22] <= low_ttl_max {
            add(4104, 1);
        }
    }
    bss
}

/// proto_stats: counters in `.bss`, a tunable in `.data`, read-only packet.
fn proto_stats() -> Vec<ExtCase> {
    let mut frames = vec![
        bench_frame(1).frame(),
        bench_frame(2).frame(),
        Ip4::new(
            [10, 0, 0, 1],
            [10, 1, 0, 1],
            L4::Tcp {
                sport: 1,
                dport: 2,
                payload: vec![5; 33],
            },
        )
        .frame(),
        Ip4 {
            ttl: 1,
            ..Ip4::new(
                [10, 0, 0, 1],
                [10, 1, 0, 1],
                L4::Icmp {
                    payload: vec![8, 0, 0, 0, 0, 1, 0, 1],
                },
            )
        }
        .frame(),
    ];
    let mut odd = bench_frame(3).frame();
    odd[23] = 250; // an unassigned protocol number, near the end of the arrays
    frames.push(odd);
    frames.extend(non_ipv4_frames().into_iter().map(|(_, f)| f));

    let mut c = case("proto_stats", "extensions/proto_stats.o", "proto_stats");
    for f in &frames {
        c.steps.push(step(
            "counted, untouched",
            f.clone(),
            XDP_PASS,
            Output::Unchanged,
        ));
    }
    c.map_checks
        .push(check(".bss", u32le(0), Some(proto_stats_bss(&frames, 1))));
    c.map_checks.push(check(".data", u32le(0), Some(u32le(1))));
    let mut out = vec![c];

    let mut c = case("proto_stats", "extensions/proto_stats.o", "proto_stats");
    c.preload.push(entry(".data", u32le(0), u32le(64)));
    for f in &frames {
        c.steps.push(step(
            "TTL threshold 64 from .data",
            f.clone(),
            XDP_PASS,
            Output::Unchanged,
        ));
    }
    c.map_checks
        .push(check(".bss", u32le(0), Some(proto_stats_bss(&frames, 64))));
    out.push(c);
    out
}

/// ipv4_csum_guard: bad IPv4 header checksums dropped and counted (bpf-to-bpf calls).
fn ipv4_csum_guard() -> Vec<ExtCase> {
    let mut c = case(
        "ipv4_csum_guard",
        "extensions/ipv4_csum_guard.o",
        "ipv4_csum_guard",
    );
    let mut checked = 0u64;
    let mut bad = 0u64;
    let mut rng = Rng(0xc5c5);
    for _ in 0..12 {
        let f = rng.ip4().frame();
        c.steps.push(step(
            "valid checksum",
            f.clone(),
            XDP_PASS,
            Output::Unchanged,
        ));
        let mut broken = f;
        let i = 14 + (rng.next() % 20) as usize;
        broken[i] ^= 1 << (rng.next() % 8);
        if broken[14] == 0x45 && broken[12..14] == [8, 0] {
            c.steps.push(step(
                "one header bit flipped",
                broken,
                XDP_DROP,
                Output::Unchanged,
            ));
            checked += 2;
            bad += 1;
        } else {
            c.steps.push(step(
                "flip changed the IHL: not checked",
                broken,
                XDP_PASS,
                Output::Unchanged,
            ));
            checked += 1;
        }
    }
    let mut zero_sum = bench_frame(1).frame();
    zero_sum[24..26].copy_from_slice(&[0, 0]);
    c.steps.push(step(
        "checksum zeroed",
        zero_sum,
        XDP_DROP,
        Output::Unchanged,
    ));
    checked += 1;
    bad += 1;
    let mut payload_flip = bench_frame(1).frame();
    payload_flip[50] ^= 0xff;
    c.steps.push(step(
        "payload is not covered",
        payload_flip,
        XDP_PASS,
        Output::Unchanged,
    ));
    checked += 1;
    let mut opts = bench_frame(1);
    opts.options = vec![1, 1, 1, 0];
    let mut opts = opts.frame();
    opts[24] ^= 1;
    c.steps.push(step(
        "IPv4 options are not checked",
        opts,
        XDP_PASS,
        Output::Unchanged,
    ));
    passes_non_ipv4(&mut c, XDP_PASS);
    c.map_checks
        .push(check("csum_stats", u32le(0), Some(u64le(checked))));
    c.map_checks
        .push(check("csum_stats", u32le(1), Some(u64le(bad))));
    vec![c]
}

/// oko_blocklist (uBPF/Oko ABI): 1 for a listed IPv4 source, with its counter bumped.
fn oko_blocklist() -> Vec<ExtCase> {
    let mut c = case(
        "oko_blocklist",
        "extensions/ubpf/oko_blocklist.o",
        "oko_blocklist",
    );
    let bad = [198, 51, 100, 1];
    c.preload.push(entry("blocklist", bad.to_vec(), u64le(10)));
    let from = |src: [u8; 4]| {
        Ip4 {
            src,
            ..bench_frame(1)
        }
        .frame()
    };
    c.steps
        .push(step("listed source", from(bad), 1, Output::Unchanged));
    c.steps.push(step(
        "other source",
        from([198, 51, 100, 2]),
        0,
        Output::Unchanged,
    ));
    c.steps
        .push(step("listed source again", from(bad), 1, Output::Unchanged));
    c.steps.push(step(
        "listed address as destination",
        Ip4 {
            dst: bad,
            ..bench_frame(1)
        }
        .frame(),
        0,
        Output::Unchanged,
    ));
    let mut opts = Ip4 {
        src: bad,
        ..bench_frame(1)
    };
    opts.options = vec![1, 1, 1, 0];
    c.steps.push(step(
        "IPv4 with options is not parsed",
        opts.frame(),
        0,
        Output::Unchanged,
    ));
    let mut short = from(bad);
    short.truncate(33);
    c.steps.push(step(
        "frame too short for the IPv4 header",
        short,
        0,
        Output::Unchanged,
    ));
    passes_non_ipv4(&mut c, 0);
    c.map_checks
        .push(check("blocklist", bad.to_vec(), Some(u64le(12))));
    c.map_checks
        .push(check("blocklist", vec![198, 51, 100, 2], None));
    vec![c]
}

/// oko_heavy_hitter (uBPF/Oko ABI): 1 once a source has sent more than the threshold.
fn oko_heavy_hitter() -> Vec<ExtCase> {
    let from = |a: u8| {
        Ip4 {
            src: [10, 9, 0, a],
            ..bench_frame(1)
        }
        .frame()
    };
    let mut c = case(
        "oko_heavy_hitter",
        "extensions/ubpf/oko_heavy_hitter.o",
        "oko_heavy_hitter",
    );
    c.preload.push(entry("hh_config", u32le(0), u64le(3)));
    for _ in 0..3 {
        c.steps
            .push(step("up to the threshold", from(1), 0, Output::Unchanged));
    }
    c.steps
        .push(step("over the threshold", from(1), 1, Output::Unchanged));
    c.steps
        .push(step("still over", from(1), 1, Output::Unchanged));
    c.steps
        .push(step("another source", from(2), 0, Output::Unchanged));
    passes_non_ipv4(&mut c, 0);
    c.map_checks
        .push(check("hh_sources", vec![10, 9, 0, 1], Some(u64le(5))));
    c.map_checks
        .push(check("hh_sources", vec![10, 9, 0, 2], Some(u64le(1))));
    let mut out = vec![c];

    let mut c = case(
        "oko_heavy_hitter",
        "extensions/ubpf/oko_heavy_hitter.o",
        "oko_heavy_hitter",
    );
    for _ in 0..100 {
        c.steps
            .push(step("default threshold 100", from(7), 0, Output::Unchanged));
    }
    c.steps
        .push(step("101st packet", from(7), 1, Output::Unchanged));
    out.push(c);
    out
}

/// Every case of the uBPF/Oko programs in `extensions/ubpf/` (the switch only: the kernel
/// cannot run them).
pub fn ubpf_cases() -> Vec<ExtCase> {
    [oko_blocklist(), oko_heavy_hitter()].concat()
}

/// Cases of the legacy-`maps` programs in `extensions/legacy/` (the switch only: libbpf 1.x
/// refuses legacy map definitions): fw_stateless's, on its legacy twin.
pub fn legacy_cases() -> Vec<ExtCase> {
    let mut c = fw_stateless().remove(0);
    assert_eq!(c.program, "fw_stateless");
    c.name = "fw_stateless_legacy";
    c.object = "extensions/legacy/fw_stateless_legacy.o";
    c.program = "fw_stateless_legacy";
    vec![c]
}

/// The legacy-`maps` objects.
pub const LEGACY_OBJECTS: &[&str] = &["extensions/legacy/fw_stateless_legacy.o"];

/// Every case of every XDP program in `extensions/`.
pub fn xdp_cases() -> Vec<ExtCase> {
    [
        ttl_dec(),
        nat_bench(),
        nat(),
        fw_stateless(),
        fw_stateful(),
        rate_limiter(),
        vlan_push(),
        payload_mask(),
        flow_monitor(),
        udp_flood_drop(),
        bench_filter(),
        mac_redirect(),
        icmp_echo(),
        proto_stats(),
        ipv4_csum_guard(),
    ]
    .concat()
}

/// The XDP objects of the corpus that must load (one program each), relative to the
/// repository root.
pub const XDP_OBJECTS: &[&str] = &[
    "extensions/bench_filter.o",
    "extensions/flow_monitor.o",
    "extensions/fw_stateful.o",
    "extensions/fw_stateful_filter.o",
    "extensions/fw_stateless.o",
    "extensions/fw_stateless_filter.o",
    "extensions/icmp_echo.o",
    "extensions/ipv4_csum_guard.o",
    "extensions/mac_redirect.o",
    "extensions/nat.o",
    "extensions/nat_bench.o",
    "extensions/payload_mask.o",
    "extensions/proto_stats.o",
    "extensions/rate_limiter.o",
    "extensions/ttl_dec.o",
    "extensions/udp_flood_drop.o",
    "extensions/vlan_push.o",
];

/// The deliberately unsafe objects, with the kernel verifier's expected message (a fragment)
/// when run privileged; `None`: a privileged loader accepts it (see extensions/README.md).
pub const UNSAFE_OBJECTS: &[(&str, Option<&str>)] = &[
    (
        "extensions/unsafe/oob_read.o",
        Some("invalid access to packet"),
    ),
    (
        "extensions/unsafe/null_deref.o",
        Some("invalid mem access 'map_value_or_null'"),
    ),
    (
        "extensions/unsafe/unbounded_loop.o",
        Some("BPF program is too large"),
    ),
    ("extensions/unsafe/uninit_reg.o", Some("R2 !read_ok")),
    ("extensions/unsafe/uninit_stack.o", None),
    (
        "extensions/unsafe/ctx_write.o",
        Some("invalid bpf_context access"),
    ),
    (
        "extensions/unsafe/rodata_write.o",
        Some("write into map forbidden"),
    ),
    (
        "extensions/unsafe/map_value_oob.o",
        Some("invalid access to map value"),
    ),
    (
        "extensions/unsafe/stack_oob.o",
        Some("invalid variable-offset write to stack"),
    ),
    (
        "extensions/unsafe/unknown_helper.o",
        Some("invalid func unknown#999"),
    ),
    (
        "extensions/unsafe/helper_arg_type.o",
        Some("R1 type=pkt expected=map_ptr"),
    ),
];

/// The uBPF/Oko objects (not loadable by the kernel: Oko's helper numbers, entry in `.text`).
pub const UBPF_OBJECTS: &[&str] = &[
    "extensions/ubpf/oko_blocklist.o",
    "extensions/ubpf/oko_heavy_hitter.o",
];
