//! A proptest generator of valid `add-flow` flows, shared by the property tests and the
//! randomised differential test against ovs-ofctl.
//!
//! Flows are built from a protocol (one of the ovs-ofctl shorthands, or none), fields whose
//! prerequisites that protocol meets, with random values in every accepted notation (decimal,
//! hex, CIDR, dotted and bitwise masks, reserved port names), and actions that the protocol
//! and the VLAN state allow, ending with the optional write_metadata / goto_table
//! instructions. Every generated flow is one ovs-ofctl accepts and bpfswitch must accept.

use proptest::prelude::*;
use proptest::sample::select;

/// The protocol a generated flow matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    None,
    Ip,
    Ipv6,
    Tcp,
    Tcp6,
    Udp,
    Udp6,
    Sctp,
    Sctp6,
    Icmp,
    Icmp6,
    Arp,
    Rarp,
    Mpls,
    Mplsm,
}

impl Proto {
    fn shorthand(self) -> Option<&'static str> {
        Some(match self {
            Proto::None => return None,
            Proto::Ip => "ip",
            Proto::Ipv6 => "ipv6",
            Proto::Tcp => "tcp",
            Proto::Tcp6 => "tcp6",
            Proto::Udp => "udp",
            Proto::Udp6 => "udp6",
            Proto::Sctp => "sctp",
            Proto::Sctp6 => "sctp6",
            Proto::Icmp => "icmp",
            Proto::Icmp6 => "icmp6",
            Proto::Arp => "arp",
            Proto::Rarp => "rarp",
            Proto::Mpls => "mpls",
            Proto::Mplsm => "mplsm",
        })
    }
    fn v4(self) -> bool {
        matches!(
            self,
            Proto::Ip | Proto::Tcp | Proto::Udp | Proto::Sctp | Proto::Icmp
        )
    }
    fn v6(self) -> bool {
        matches!(
            self,
            Proto::Ipv6 | Proto::Tcp6 | Proto::Udp6 | Proto::Sctp6 | Proto::Icmp6
        )
    }
    fn ports(self) -> Option<&'static str> {
        match self {
            Proto::Tcp | Proto::Tcp6 => Some("tcp"),
            Proto::Udp | Proto::Udp6 => Some("udp"),
            Proto::Sctp | Proto::Sctp6 => Some("sctp"),
            _ => None,
        }
    }
}

const PROTOS: [Proto; 15] = [
    Proto::None,
    Proto::Ip,
    Proto::Ipv6,
    Proto::Tcp,
    Proto::Tcp6,
    Proto::Udp,
    Proto::Udp6,
    Proto::Sctp,
    Proto::Sctp6,
    Proto::Icmp,
    Proto::Icmp6,
    Proto::Arp,
    Proto::Rarp,
    Proto::Mpls,
    Proto::Mplsm,
];

fn num(max: u64) -> impl Strategy<Value = String> {
    (0..=max, 0..3u8).prop_map(|(v, base)| match base {
        0 => v.to_string(),
        1 => format!("{v:#x}"),
        _ => format!("{v:#X}").replace("0X", "0x"),
    })
}

fn masked_num(max: u64) -> impl Strategy<Value = String> {
    (0..=max, 0..=max, any::<bool>()).prop_map(|(v, m, masked)| {
        if masked {
            format!("{v:#x}/{m:#x}")
        } else {
            v.to_string()
        }
    })
}

fn mac() -> impl Strategy<Value = String> {
    any::<[u8; 6]>().prop_map(|b| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

fn masked_mac() -> impl Strategy<Value = String> {
    (
        mac(),
        prop_oneof![
            Just(None),
            mac().prop_map(Some),
            Just(Some("ff:ff:ff:00:00:00".to_string()))
        ],
    )
        .prop_map(|(a, m)| match m {
            Some(m) => format!("{a}/{m}"),
            None => a,
        })
}

fn ipv4() -> impl Strategy<Value = String> {
    any::<[u8; 4]>().prop_map(|b| format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]))
}

fn masked_ipv4() -> impl Strategy<Value = String> {
    (
        ipv4(),
        prop_oneof![
            Just(None),
            (0..=32u32).prop_map(|n| Some(n.to_string())),
            ipv4().prop_map(Some)
        ],
    )
        .prop_map(|(a, m)| match m {
            Some(m) => format!("{a}/{m}"),
            None => a,
        })
}

fn ipv6() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u128>().prop_map(|v| std::net::Ipv6Addr::from(v).to_string()),
        // Addresses with runs of zeros, and the forms with an embedded IPv4 address.
        (any::<u16>(), any::<u16>(), 0..8usize).prop_map(|(a, b, at)| {
            let mut w = [0u16; 8];
            w[at] = a;
            w[7 - at] = b;
            std::net::Ipv6Addr::new(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]).to_string()
        }),
        ipv4().prop_map(|v4| format!("::ffff:{v4}")),
        select(vec!["::", "::1", "fe80::1", "2001:db8::", "ff02::1:ff00:1"])
            .prop_map(str::to_string),
    ]
}

/// An IPv6 mask in address form. ovs-ofctl reads a mask that starts with a digit as a prefix
/// length, so the first group is kept in a000-ffff.
fn ipv6_mask() -> impl Strategy<Value = String> {
    (any::<u128>(), 0xau128..=0xf).prop_map(|(m, top)| {
        let m = (m & !(0xfu128 << 124)) | (top << 124);
        std::net::Ipv6Addr::from(m).to_string()
    })
}

fn masked_ipv6() -> impl Strategy<Value = String> {
    (
        ipv6(),
        prop_oneof![
            Just(None),
            (0..=128u32).prop_map(|n| Some(n.to_string())),
            ipv6_mask().prop_map(Some)
        ],
    )
        .prop_map(|(a, m)| match m {
            Some(m) => format!("{a}/{m}"),
            None => a,
        })
}

fn port() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (1..0xff00u32).prop_map(|p| p.to_string()),
        1 => select(vec!["LOCAL", "local", "65534", "4294967294"]).prop_map(str::to_string),
    ]
}

fn tcp_flags() -> impl Strategy<Value = String> {
    const NAMES: [&str; 9] = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns"];
    prop_oneof![
        masked_num(0xfff),
        proptest::collection::vec((0..9usize, any::<bool>()), 1..4).prop_map(|v| {
            let mut seen = Vec::new();
            let mut s = String::new();
            for (i, on) in v {
                if !seen.contains(&i) {
                    seen.push(i);
                    s.push(if on { '+' } else { '-' });
                    s.push_str(NAMES[i]);
                }
            }
            s
        }),
        proptest::collection::vec(0..9usize, 1..4).prop_map(|v| {
            let mut v: Vec<&str> = v.into_iter().map(|i| NAMES[i]).collect();
            v.dedup();
            v.join("|")
        }),
    ]
}

/// Match fields (`name=value` strings) valid for `proto`.
fn fields(proto: Proto) -> BoxedStrategy<Vec<String>> {
    let mut options: Vec<BoxedStrategy<String>> = vec![
        port().prop_map(|p| format!("in_port={p}")).boxed(),
        masked_mac().prop_map(|m| format!("dl_src={m}")).boxed(),
        masked_mac().prop_map(|m| format!("eth_dst={m}")).boxed(),
        masked_num(u64::MAX)
            .prop_map(|m| format!("metadata={m}"))
            .boxed(),
        prop_oneof![
            (0..4096u32).prop_map(|v| format!("dl_vlan={v}")),
            (0..8u32).prop_map(|v| format!("dl_vlan_pcp={v}")),
            (0..8u32).prop_map(|v| format!("vlan_pcp={v}")),
            (0..4096u32, 0..8u32).prop_map(|(v, p)| format!("dl_vlan={v},dl_vlan_pcp={p}")),
            (0..4096u32).prop_map(|v| format!("vlan_vid={:#x}", v | 0x1000)),
            (0..4096u32, 0..4096u32).prop_map(|(v, m)| format!(
                "vlan_vid={:#x}/{:#x}",
                v | 0x1000,
                m | 0x1000
            )),
            (0..4096u32, 0..8u32)
                .prop_map(|(v, p)| format!("vlan_tci={:#06x}", v | 0x1000 | p << 13)),
            (0..4096u32).prop_map(|v| format!("vlan_tci={:#06x}/0x1fff", v | 0x1000)),
            Just("vlan_tci=0".to_string()),
            Just("dl_vlan=0xffff".to_string()),
        ]
        .boxed(),
    ];
    if proto.v4() || proto.v6() {
        options.push((0..256u32).prop_map(|t| format!("nw_tos={t}")).boxed());
        options.push((0..64u32).prop_map(|t| format!("ip_dscp={t}")).boxed());
        options.push((0..4u32).prop_map(|t| format!("nw_ecn={t}")).boxed());
        options.push(num(255).prop_map(|t| format!("nw_ttl={t}")).boxed());
        // "later" excludes transport fields; keep it for flows without them.
        let frags = if proto.ports().is_some() || matches!(proto, Proto::Icmp | Proto::Icmp6) {
            vec!["no", "yes", "first", "not_later"]
        } else {
            vec!["no", "yes", "first", "later", "not_later"]
        };
        options.push(select(frags).prop_map(|f| format!("ip_frag={f}")).boxed());
    }
    if proto.v4() {
        options.push(masked_ipv4().prop_map(|a| format!("nw_src={a}")).boxed());
        options.push(masked_ipv4().prop_map(|a| format!("ip_dst={a}")).boxed());
    }
    if proto.v6() {
        options.push(masked_ipv6().prop_map(|a| format!("ipv6_src={a}")).boxed());
        options.push(masked_ipv6().prop_map(|a| format!("ipv6_dst={a}")).boxed());
        options.push(
            masked_num(0xfffff)
                .prop_map(|a| format!("ipv6_label={a}"))
                .boxed(),
        );
    }
    if matches!(proto, Proto::Ip | Proto::Ipv6) {
        options.push(
            select(vec![2u32, 47, 50, 51, 89, 103])
                .prop_map(|p| format!("nw_proto={p}"))
                .boxed(),
        );
    }
    if let Some(l4) = proto.ports() {
        options.push(
            masked_num(0xffff)
                .prop_map(|v| format!("tp_src={v}"))
                .boxed(),
        );
        options.push(
            masked_num(0xffff)
                .prop_map(|v| format!("tp_dst={v}"))
                .boxed(),
        );
        options.push(
            masked_num(0xffff)
                .prop_map(move |v| format!("{l4}_dst={v}"))
                .boxed(),
        );
        if l4 == "tcp" {
            options.push(tcp_flags().prop_map(|f| format!("tcp_flags={f}")).boxed());
        }
    }
    if proto == Proto::Icmp {
        options.push(num(255).prop_map(|v| format!("icmp_code={v}")).boxed());
        options.push(num(255).prop_map(|v| format!("icmp_type={v}")).boxed());
    }
    if proto == Proto::Icmp6 {
        // Neighbour discovery fields need type 135/136 and code 0, so the code is only
        // generated together with a type that is not ND.
        options.push(
            prop_oneof![
                num(255).prop_map(|v| format!("icmp_type={v}")),
                (0..135u32, num(255)).prop_map(|(t, c)| format!("icmp_type={t},icmp_code={c}")),
                (masked_ipv6(), mac())
                    .prop_map(|(t, m)| format!("icmp_type=135,nd_target={t},nd_sll={m}")),
                (masked_ipv6(), masked_mac())
                    .prop_map(|(t, m)| format!("icmpv6_type=136,nd_target={t},nd_tll={m}")),
            ]
            .boxed(),
        );
    }
    if matches!(proto, Proto::Arp | Proto::Rarp) {
        options.push(num(255).prop_map(|v| format!("arp_op={v}")).boxed());
        options.push(masked_ipv4().prop_map(|a| format!("arp_spa={a}")).boxed());
        options.push(masked_ipv4().prop_map(|a| format!("arp_tpa={a}")).boxed());
        options.push(masked_mac().prop_map(|a| format!("arp_sha={a}")).boxed());
        options.push(masked_mac().prop_map(|a| format!("arp_tha={a}")).boxed());
    }
    if matches!(proto, Proto::Mpls | Proto::Mplsm) {
        options.push(num(0xfffff).prop_map(|v| format!("mpls_label={v}")).boxed());
        options.push(num(7).prop_map(|v| format!("mpls_tc={v}")).boxed());
        options.push(num(1).prop_map(|v| format!("mpls_bos={v}")).boxed());
        options.push(num(255).prop_map(|v| format!("mpls_ttl={v}")).boxed());
    }
    if proto == Proto::None {
        options.push(
            select(vec!["0x1234", "0x88cc", "0x8906"])
                .prop_map(|t| format!("dl_type={t}"))
                .boxed(),
        );
    }
    let n = options.len();
    proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 0..=n.min(5))
        .prop_flat_map(move |idx| {
            let picked: Vec<BoxedStrategy<String>> =
                idx.iter().map(|i| options[*i].clone()).collect();
            picked
        })
        .prop_shuffle()
        .boxed()
}

/// Apply-actions valid for `proto` (VLAN actions are generated separately, in order).
fn plain_action(proto: Proto) -> BoxedStrategy<String> {
    let mut options: Vec<BoxedStrategy<String>> = vec![
        port().prop_map(|p| format!("output:{p}")).boxed(),
        (1..0xff00u32).prop_map(|p| p.to_string()).boxed(),
        select(vec![
            "normal",
            "flood",
            "all",
            "in_port",
            "local",
            "controller",
            "NORMAL",
            "LOCAL",
        ])
        .prop_map(str::to_string)
        .boxed(),
        (0..=65535u32)
            .prop_map(|n| format!("controller:{n}"))
            .boxed(),
        (0..=65535u32)
            .prop_map(|n| format!("controller(max_len={n})"))
            .boxed(),
        (port(), 14..=65535u32)
            .prop_map(|(p, n)| format!("output(port={p},max_len={n})"))
            .boxed(),
        mac().prop_map(|m| format!("mod_dl_src:{m}")).boxed(),
        mac().prop_map(|m| format!("mod_dl_dst:{m}")).boxed(),
        masked_mac()
            .prop_map(|m| format!("set_field:{m}->eth_dst"))
            .boxed(),
        masked_num(u64::MAX)
            .prop_map(|m| format!("set_field:{m}->metadata"))
            .boxed(),
        (0..64u32, 0..64u32)
            .prop_flat_map(|(a, b)| {
                // A load of the whole field prints differently (see the ofctl module docs).
                let (lo, hi) = (a.min(b), a.max(b).min(62));
                let lo = lo.min(hi);
                (Just(lo), Just(hi), 0..(1u64 << (hi - lo + 1).min(63)))
            })
            .prop_map(|(lo, hi, v)| format!("load:{v:#x}->OXM_OF_METADATA[{lo}..{hi}]"))
            .boxed(),
        (port(), 0..255u32)
            .prop_map(|(p, t)| format!("resubmit({p},{t})"))
            .boxed(),
        (0..255u32).prop_map(|t| format!("resubmit(,{t})")).boxed(),
        port().prop_map(|p| format!("resubmit:{p}")).boxed(),
        port()
            .prop_map(|p| format!("set_field:{p}->in_port"))
            .boxed(),
    ];
    if proto.v4() || proto.v6() {
        options.push(Just("dec_ttl".to_string()).boxed());
        options.push((0..256u32).prop_map(|t| format!("mod_nw_ttl:{t}")).boxed());
        options.push(
            (0..64u32)
                .prop_map(|t| format!("mod_nw_tos:{}", t << 2))
                .boxed(),
        );
        options.push(
            (0..64u32)
                .prop_map(|t| format!("set_field:{}->nw_tos", t << 2))
                .boxed(),
        );
        options.push((0..4u32).prop_map(|t| format!("mod_nw_ecn:{t}")).boxed());
        options.push(
            (0..64u32)
                .prop_map(|t| format!("set_field:{t}->ip_dscp"))
                .boxed(),
        );
        options.push(
            (0..256u32)
                .prop_map(|t| format!("set_field:{t}->nw_ttl"))
                .boxed(),
        );
    }
    if proto.v4() {
        options.push(ipv4().prop_map(|a| format!("mod_nw_src:{a}")).boxed());
        options.push(ipv4().prop_map(|a| format!("mod_nw_dst:{a}")).boxed());
        options.push(
            masked_ipv4()
                .prop_map(|a| format!("set_field:{a}->ip_dst"))
                .boxed(),
        );
    }
    if proto.v6() {
        options.push(
            masked_ipv6()
                .prop_map(|a| format!("set_field:{a}->ipv6_src"))
                .boxed(),
        );
        options.push(
            masked_num(0xfffff)
                .prop_map(|a| format!("set_field:{a}->ipv6_label"))
                .boxed(),
        );
    }
    if let Some(l4) = proto.ports() {
        options.push(
            (0..65536u32)
                .prop_map(|p| format!("mod_tp_src:{p}"))
                .boxed(),
        );
        options.push(
            (0..65536u32)
                .prop_map(|p| format!("mod_tp_dst:{p}"))
                .boxed(),
        );
        options.push(
            masked_num(0xffff)
                .prop_map(move |p| format!("set_field:{p}->{l4}_src"))
                .boxed(),
        );
    }
    if proto == Proto::Icmp {
        options.push(
            (0..256u32)
                .prop_map(|t| format!("set_field:{t}->icmp_type"))
                .boxed(),
        );
    }
    if proto == Proto::Icmp6 {
        options.push(
            (0..256u32)
                .prop_map(|t| format!("set_field:{t}->icmpv6_code"))
                .boxed(),
        );
    }
    if matches!(proto, Proto::Arp | Proto::Rarp) {
        options.push(
            (0..256u32)
                .prop_map(|t| format!("set_field:{t}->arp_op"))
                .boxed(),
        );
        options.push(
            masked_ipv4()
                .prop_map(|a| format!("set_field:{a}->arp_tpa"))
                .boxed(),
        );
        options.push(
            mac()
                .prop_map(|a| format!("set_field:{a}->arp_sha"))
                .boxed(),
        );
    }
    if matches!(proto, Proto::Mpls | Proto::Mplsm) {
        options.push(
            (0..0x100000u32)
                .prop_map(|t| format!("set_field:{t}->mpls_label"))
                .boxed(),
        );
        options.push(
            (0..8u32)
                .prop_map(|t| format!("set_field:{t}->mpls_tc"))
                .boxed(),
        );
        options.push(
            (0..256u32)
                .prop_map(|t| format!("set_field:{t}->mpls_ttl"))
                .boxed(),
        );
    }
    proptest::strategy::Union::new(options).boxed()
}

/// One VLAN step: what to emit given whether a tag is known to be present.
fn vlan_actions(tagged: bool) -> BoxedStrategy<Vec<String>> {
    proptest::collection::vec(0..6u8, 0..3)
        .prop_flat_map(move |kinds| {
            let mut tags = u8::from(tagged);
            let mut out: Vec<BoxedStrategy<String>> = Vec::new();
            for k in kinds {
                match k {
                    0 if tags < 2 => {
                        tags += 1;
                        out.push(
                            select(vec!["push_vlan:0x8100", "push_vlan:0x88a8"])
                                .prop_map(str::to_string)
                                .boxed(),
                        );
                    }
                    1 if tags > 0 => {
                        tags -= 1;
                        out.push(
                            select(vec!["pop_vlan", "strip_vlan"])
                                .prop_map(str::to_string)
                                .boxed(),
                        );
                    }
                    2 => {
                        tags = tags.max(1);
                        out.push(
                            (0..4096u32)
                                .prop_map(|v| format!("mod_vlan_vid:{v}"))
                                .boxed(),
                        );
                    }
                    3 => {
                        tags = tags.max(1);
                        out.push((0..8u32).prop_map(|v| format!("mod_vlan_pcp:{v}")).boxed());
                    }
                    4 if tags > 0 => out.push(
                        (0..4096u32)
                            .prop_map(|v| format!("set_field:{}->vlan_vid", v | 0x1000))
                            .boxed(),
                    ),
                    5 if tags > 0 => out.push(
                        (0..8u32)
                            .prop_map(|v| format!("set_field:{v}->vlan_pcp"))
                            .boxed(),
                    ),
                    _ => {}
                }
            }
            out
        })
        .boxed()
}

/// A whole valid `add-flow` flow.
pub fn flow() -> impl Strategy<Value = String> {
    (select(PROTOS.to_vec()), proptest::option::of(0..255u8))
        .prop_flat_map(|(proto, table)| {
            let header = (
                proptest::option::of(num(65535).prop_map(|p| format!("priority={p}"))),
                proptest::option::of(num(u64::MAX - 1).prop_map(|c| format!("cookie={c}"))),
                proptest::option::of(num(65535).prop_map(|t| format!("idle_timeout={t}"))),
                proptest::option::of(num(65535).prop_map(|t| format!("hard_timeout={t}"))),
            );
            let goto = match table {
                Some(t) if t < 254 => proptest::option::of(
                    (t as u32 + 1..=254).prop_map(|g| format!("goto_table:{g}")),
                )
                .boxed(),
                None => proptest::option::of((1..=254u32).prop_map(|g| format!("goto_table:{g}")))
                    .boxed(),
                _ => Just(None).boxed(),
            };
            (
                Just(proto),
                Just(table),
                header,
                fields(proto),
                proptest::collection::vec(plain_action(proto), 0..4),
                proptest::option::of(
                    masked_num(u64::MAX).prop_map(|m| format!("write_metadata:{m}")),
                ),
                goto,
                any::<bool>(),
            )
        })
        .prop_flat_map(|(proto, table, header, fields, acts, wm, goto, drop)| {
            let tagged = fields.iter().any(|f| {
                (f.starts_with("dl_vlan=") && f != "dl_vlan=0xffff")
                    || f.contains("pcp=")
                    || f.starts_with("vlan_vid=0x1")
                    || f.starts_with("vlan_tci=0x1")
                    || f.starts_with("vlan_tci=0x3")
                    || f.starts_with("vlan_tci=0x5")
                    || f.starts_with("vlan_tci=0x7")
                    || f.starts_with("vlan_tci=0x9")
                    || f.starts_with("vlan_tci=0xb")
                    || f.starts_with("vlan_tci=0xd")
                    || f.starts_with("vlan_tci=0xf")
            });
            (
                Just((proto, table, header, fields, acts, wm, goto, drop)),
                vlan_actions(tagged),
            )
        })
        .prop_map(
            |((proto, table, header, fields, acts, wm, goto, drop), vlan)| {
                let mut parts: Vec<String> = Vec::new();
                if let Some(t) = table {
                    parts.push(format!("table={t}"));
                }
                let (p, c, i, h) = header;
                parts.extend([p, c, i, h].into_iter().flatten());
                if let Some(s) = proto.shorthand() {
                    parts.push(s.to_string());
                }
                parts.extend(fields);
                let mut actions: Vec<String> = vlan;
                actions.extend(acts);
                actions.extend([wm, goto].into_iter().flatten());
                let actions = if actions.is_empty() {
                    if drop {
                        "drop".to_string()
                    } else {
                        String::new()
                    }
                } else {
                    actions.join(",")
                };
                format!("{},actions={actions}", parts.join(","))
            },
        )
}
