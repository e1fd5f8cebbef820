//! Printing rules, matches and actions the way `ovs-ofctl -O OpenFlow13 parse-flow` prints
//! them (Open vSwitch's `match_format`, `ofpacts_format` and `ofputil_flow_mod_format`).
//!
//! Field order, shorthand selection (`tcp6` for IPv6 with `nw_proto=6`, ...), number bases and
//! address forms follow ovs-ofctl exactly, so that the differential test can compare strings.

use super::actions::{mask_runs, ones};
use super::value::{port_name, TCP_FLAGS_ALL, TCP_FLAG_NAMES};
use super::{FlowMod, FlowModCommand};
use crate::action::{Action, PortNo, OFPP_ANY, OFPP_CONTROLLER};
use crate::field::{Field, FieldFormat, Prerequisite};
use crate::flow::{FRAG_ANY, FRAG_LATER, VLAN_CFI, VLAN_PCP_MASK, VLAN_PCP_SHIFT, VLAN_VID_MASK};
use crate::rule::{Match, Rule, DEFAULT_PRIORITY};
use std::fmt::Write;

/// `%#x` as C prints it: `0` for zero, `0x...` otherwise.
fn hex_c(v: u128) -> String {
    if v == 0 {
        "0".to_string()
    } else {
        format!("{v:#x}")
    }
}

/// An OpenFlow port as ovs-ofctl prints it: reserved names, OpenFlow 1.0 numbers for the
/// unnamed reserved range, decimal otherwise.
pub(crate) fn port(p: PortNo) -> String {
    if let Some(n) = port_name(p) {
        return n.to_string();
    }
    if p >= 0xffff_ff00 {
        return (p - 0xffff_0000).to_string();
    }
    p.to_string()
}

fn mac(v: u128) -> String {
    let b = (v as u64).to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    )
}

fn ipv4(v: u32) -> String {
    std::net::Ipv4Addr::from(v).to_string()
}

/// An IPv6 address as glibc's `inet_ntop` writes it (RFC 5952 compression of the first
/// longest run of two or more zero groups, and the IPv4-mapped/compatible dotted forms).
fn ipv6(v: u128) -> String {
    let words: Vec<u16> = (0..8).map(|i| (v >> (112 - 16 * i)) as u16).collect();
    // Longest run of zero words (first one on ties), at least two long.
    // Runs are (first word, length).
    let mut best: Option<(usize, usize)> = None;
    let mut cur: Option<(usize, usize)> = None;
    for (i, w) in words.iter().enumerate() {
        if *w == 0 {
            cur = Some(match cur {
                Some((b, l)) => (b, l + 1),
                None => (i, 1),
            });
            if let Some((b, l)) = cur {
                if best.is_none_or(|(_, bl)| l > bl) {
                    best = Some((b, l));
                }
            }
        } else {
            cur = None;
        }
    }
    let best = best.filter(|(_, l)| *l >= 2);
    let mut s = String::new();
    let mut i = 0;
    while i < 8 {
        if let Some((b, l)) = best {
            if i == b {
                if i == 0 {
                    s.push(':');
                }
                s.push(':');
                i += l;
                continue;
            }
        }
        // The last 32 bits as a dotted quad: "::a.b.c.d" and "::ffff:a.b.c.d".
        if i == 6 {
            if let Some((0, l)) = best {
                if l == 6 || (l == 5 && words[5] == 0xffff) {
                    let _ = write!(s, "{}", ipv4(v as u32));
                    break;
                }
            }
        }
        let _ = write!(s, "{:x}", words[i]);
        if i < 7 {
            s.push(':');
        }
        i += 1;
    }
    s
}

fn cidr_len(mask: u128, width: u32) -> Option<u32> {
    let full = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    let ones = mask.count_ones();
    (ones <= width && super::value::prefix_mask(ones, width) == mask & full).then_some(ones)
}

fn ipv4_masked(v: u32, m: u32) -> String {
    if m == u32::MAX {
        return ipv4(v);
    }
    match cidr_len(m as u128, 32) {
        Some(n) => format!("{}/{n}", ipv4(v)),
        None => format!("{}/{}", ipv4(v), ipv4(m)),
    }
}

fn ipv6_masked(v: u128, m: u128) -> String {
    if m == u128::MAX {
        return ipv6(v);
    }
    match cidr_len(m, 128) {
        Some(n) => format!("{}/{n}", ipv6(v)),
        None => format!("{}/{}", ipv6(v), ipv6(m)),
    }
}

fn mac_masked(v: u128, m: u128) -> String {
    if m == Field::EthSrc.full_mask() {
        mac(v)
    } else {
        format!("{}/{}", mac(v), mac(m))
    }
}

/// TCP flags as ovs-ofctl prints them: `syn|ack` when all bits are significant, else
/// `+syn-ack` listing each significant bit.
fn tcp_flags(v: u16, m: u16) -> String {
    let name = |bit: u16| -> String {
        match TCP_FLAG_NAMES.iter().find(|(_, b)| *b == bit) {
            Some((n, _)) => n.to_string(),
            None => format!("[{bit:x}]"),
        }
    };
    let bits = (0..12).map(|i| 1u16 << i);
    if m & TCP_FLAGS_ALL == TCP_FLAGS_ALL {
        if v == 0 {
            return "0".to_string();
        }
        return bits
            .filter(|b| v & b != 0)
            .map(name)
            .collect::<Vec<_>>()
            .join("|");
    }
    bits.filter(|b| m & b != 0)
        .map(|b| format!("{}{}", if v & b != 0 { '+' } else { '-' }, name(b)))
        .collect()
}

/// A field value as `set_field` prints it.
fn field_value(field: Field, v: u128) -> String {
    match field.format() {
        FieldFormat::Decimal => v.to_string(),
        FieldFormat::Hex => hex_c(v),
        FieldFormat::Ethernet => mac(v),
        FieldFormat::Ipv4 => ipv4(v as u32),
        FieldFormat::Ipv6 => ipv6(v),
        FieldFormat::Port => port(v as PortNo),
        FieldFormat::TcpFlags => tcp_flags(v as u16, TCP_FLAGS_ALL),
        FieldFormat::Frag => v.to_string(),
    }
}

/// A 16-bit transport field (`format_be16_masked`): decimal when exact, hex/hex otherwise.
fn be16_masked(out: &mut String, name: &str, v: u16, m: u16) {
    if m == 0 {
        return;
    }
    if m == u16::MAX {
        let _ = write!(out, "{name}={v},");
    } else {
        let _ = write!(out, "{name}={v:#x}/{m:#x},");
    }
}

/// Prints a match (with `priority=N` first unless it is the default), as ovs-ofctl's
/// `match_format` does, followed by the bpfswitch `bpf_filter=` extension fields.
pub fn format_match(m: &Match, priority: u16) -> String {
    let f = &m.flow.masked(&m.mask);
    let w = &m.mask;
    let mut s = String::new();
    if priority != DEFAULT_PRIORITY {
        let _ = write!(s, "priority={priority},");
    }
    let dl_type = if w.dl_type != 0 {
        Some(f.dl_type)
    } else {
        None
    };
    let mut skip_type = false;
    let mut skip_proto = false;
    if let Some(t) = dl_type {
        skip_type = true;
        let proto = (w.nw_proto != 0).then_some(f.nw_proto);
        let l4 = |v6: bool| match (v6, proto) {
            (false, Some(1)) => Some("icmp"),
            (true, Some(58)) => Some("icmp6"),
            (false, Some(6)) => Some("tcp"),
            (true, Some(6)) => Some("tcp6"),
            (false, Some(17)) => Some("udp"),
            (true, Some(17)) => Some("udp6"),
            (false, Some(132)) => Some("sctp"),
            (true, Some(132)) => Some("sctp6"),
            _ => None,
        };
        let name = match t {
            0x0800 | 0x86dd => {
                let v6 = t == 0x86dd;
                let n = l4(v6);
                skip_proto = n.is_some();
                n.or(Some(if v6 { "ipv6" } else { "ip" }))
            }
            0x0806 => Some("arp"),
            0x8035 => Some("rarp"),
            0x8847 => Some("mpls"),
            0x8848 => Some("mplsm"),
            _ => None,
        };
        match name {
            Some(n) => {
                s.push_str(n);
                s.push(',');
            }
            None => skip_type = false,
        }
    }
    if w.metadata != 0 {
        let _ = write!(s, "metadata={}", hex_c(f.metadata as u128));
        if w.metadata != u64::MAX {
            let _ = write!(s, "/{:#x}", w.metadata);
        }
        s.push(',');
    }
    if w.in_port != 0 {
        let _ = write!(s, "in_port={},", port(f.in_port));
    }
    let (tci, tci_mask) = (f.vlans[0].tci, w.vlans[0].tci);
    if tci_mask != 0 {
        let vid_mask = tci_mask & VLAN_VID_MASK;
        let pcp_mask = tci_mask & VLAN_PCP_MASK;
        let cfi = tci_mask & VLAN_CFI;
        if cfi != 0
            && tci & VLAN_CFI != 0
            && (vid_mask == 0 || vid_mask == VLAN_VID_MASK)
            && (pcp_mask == 0 || pcp_mask == VLAN_PCP_MASK)
            && (vid_mask != 0 || pcp_mask != 0)
        {
            if vid_mask != 0 {
                let _ = write!(s, "dl_vlan={},", tci & VLAN_VID_MASK);
            }
            if pcp_mask != 0 {
                let _ = write!(
                    s,
                    "dl_vlan_pcp={},",
                    (tci & VLAN_PCP_MASK) >> VLAN_PCP_SHIFT
                );
            }
        } else if tci_mask == 0xffff {
            let _ = write!(s, "vlan_tci={tci:#06x},");
        } else {
            let _ = write!(s, "vlan_tci={tci:#06x}/{tci_mask:#06x},");
        }
    }
    let eth = |s: &mut String, name: &str, field: Field| {
        let mv = field.get(w);
        if mv != 0 {
            let _ = write!(s, "{name}={},", mac_masked(field.get(f), mv));
        }
    };
    eth(&mut s, "dl_src", Field::EthSrc);
    eth(&mut s, "dl_dst", Field::EthDst);
    if !skip_type && w.dl_type != 0 {
        let _ = write!(s, "dl_type={:#06x},", f.dl_type);
    }
    let is_arp = matches!(dl_type, Some(0x0806) | Some(0x8035));
    if dl_type == Some(0x86dd) {
        for (name, field) in [("ipv6_src", Field::Ipv6Src), ("ipv6_dst", Field::Ipv6Dst)] {
            let mv = field.get(w);
            if mv != 0 {
                let _ = write!(s, "{name}={},", ipv6_masked(field.get(f), mv));
            }
        }
        if w.ipv6_label != 0 {
            if w.ipv6_label == 0xfffff {
                let _ = write!(s, "ipv6_label={:#07x},", f.ipv6_label);
            } else {
                let _ = write!(s, "ipv6_label={:#07x}/{:#07x},", f.ipv6_label, w.ipv6_label);
            }
        }
    } else {
        let (src, dst) = if is_arp {
            ("arp_spa", "arp_tpa")
        } else {
            ("nw_src", "nw_dst")
        };
        if w.nw_src != 0 {
            let _ = write!(s, "{src}={},", ipv4_masked(f.nw_src, w.nw_src));
        }
        if w.nw_dst != 0 {
            let _ = write!(s, "{dst}={},", ipv4_masked(f.nw_dst, w.nw_dst));
        }
    }
    if !skip_proto && w.nw_proto != 0 {
        let name = if is_arp { "arp_op" } else { "nw_proto" };
        let _ = write!(s, "{name}={},", f.nw_proto);
    }
    if is_arp {
        eth(&mut s, "arp_sha", Field::ArpSha);
        eth(&mut s, "arp_tha", Field::ArpTha);
    }
    if w.nw_tos & 0xfc != 0 {
        let _ = write!(s, "nw_tos={},", f.nw_tos & 0xfc);
    }
    if w.nw_tos & 0x03 != 0 {
        let _ = write!(s, "nw_ecn={},", f.nw_tos & 0x03);
    }
    if w.nw_ttl != 0 {
        let _ = write!(s, "nw_ttl={},", f.nw_ttl);
    }
    for (name, field) in [
        ("mpls_label", Field::MplsLabel),
        ("mpls_tc", Field::MplsTc),
        ("mpls_ttl", Field::MplsTtl),
        ("mpls_bos", Field::MplsBos),
    ] {
        if field.get(w) != 0 {
            let _ = write!(s, "{name}={},", field.get(f));
        }
    }
    let both = FRAG_ANY | FRAG_LATER;
    let frag = f.nw_frag;
    let frag_name = match w.nw_frag & both {
        x if x == both => Some(if frag & FRAG_ANY != 0 {
            if frag & FRAG_LATER != 0 {
                "later"
            } else {
                "first"
            }
        } else if frag & FRAG_LATER != 0 {
            "<error>"
        } else {
            "no"
        }),
        FRAG_ANY => Some(if frag & FRAG_ANY != 0 { "yes" } else { "no" }),
        FRAG_LATER => Some(if frag & FRAG_LATER != 0 {
            "later"
        } else {
            "not_later"
        }),
        _ => None,
    };
    if let Some(n) = frag_name {
        let _ = write!(s, "nw_frag={n},");
    }
    let icmp4 = Prerequisite::Icmpv4.is_met(f, w);
    let icmp6 = Prerequisite::Icmpv6.is_met(f, w);
    if icmp4 || icmp6 {
        // ICMP type and code are exact-match fields; any significant bit means "exact".
        if w.tp_src != 0 {
            let _ = write!(s, "icmp_type={},", f.tp_src & 0xff);
        }
        if w.tp_dst != 0 {
            let _ = write!(s, "icmp_code={},", f.tp_dst & 0xff);
        }
        if icmp6 {
            let mv = Field::NdTarget.get(w);
            if mv != 0 {
                let _ = write!(s, "nd_target={},", ipv6_masked(Field::NdTarget.get(f), mv));
            }
            eth(&mut s, "nd_sll", Field::NdSll);
            eth(&mut s, "nd_tll", Field::NdTll);
        }
    } else {
        be16_masked(&mut s, "tp_src", f.tp_src, w.tp_src);
        be16_masked(&mut s, "tp_dst", f.tp_dst, w.tp_dst);
    }
    if Prerequisite::Tcp.is_met(f, w) && w.tcp_flags != 0 {
        let _ = write!(s, "tcp_flags={},", tcp_flags(f.tcp_flags, w.tcp_flags));
    }
    for name in &m.bpf_filters {
        let _ = write!(s, "bpf_filter={name},");
    }
    if s.ends_with(',') {
        s.pop();
    }
    s
}

/// A partial write of `field` as ovs-ofctl prints it: `load:VALUE->NAME[lo..hi]`, one per
/// contiguous run of mask bits.
fn load(out: &mut Vec<String>, field: Field, value: u128, mask: u128) {
    for (lo, hi) in mask_runs(mask, field.width()) {
        let v = (value & ones(lo, hi)) >> lo;
        let range = if lo == hi {
            format!("[{lo}]")
        } else {
            format!("[{lo}..{hi}]")
        };
        out.push(format!("load:{}->{}{range}", hex_c(v), field.nxm_name()));
    }
}

/// Prints an action list as ovs-ofctl prints it for OpenFlow 1.3 (`drop` when empty).
///
/// Actions that OpenFlow 1.3 does not carry as such are printed as their 1.3 equivalents
/// (`SetNwTos` as a set-field of `nw_tos`; `SetVlanVid`/`SetVlanPcp` as a set-field, preceded
/// by `push_vlan` when the match has no tag). This needs the match for context; without one
/// (`None`) a tag is assumed absent.
pub fn format_actions(actions: &[Action], m: Option<&Match>) -> String {
    if actions.is_empty() {
        return "drop".to_string();
    }
    let mut tags = m.map_or(0u8, |m| {
        u8::from(Prerequisite::Vlan.is_met(&m.flow, &m.mask))
    });
    let mut out: Vec<String> = Vec::new();
    let set_field = |out: &mut Vec<String>, field: Field, value: u128, mask: u128| {
        if mask == field.full_mask() {
            out.push(format!(
                "set_field:{}->{}",
                field_value(field, value),
                field.name()
            ));
        } else {
            load(out, field, value, mask);
        }
    };
    for a in actions {
        match a {
            Action::Output { port: p, max_len } => {
                if *p == OFPP_CONTROLLER {
                    out.push(format!("CONTROLLER:{max_len}"));
                } else if *max_len != 0 {
                    out.push(format!("output(port={},max_len={max_len})", port(*p)));
                } else if let Some(n) = port_name(*p) {
                    out.push(n.to_string());
                } else {
                    out.push(format!("output:{}", port(*p)));
                }
            }
            Action::Controller { max_len } => out.push(format!("CONTROLLER:{max_len}")),
            Action::Normal => out.push("NORMAL".into()),
            Action::Flood => out.push("FLOOD".into()),
            Action::All => out.push("ALL".into()),
            Action::InPort => out.push("IN_PORT".into()),
            Action::SetField { field, value, mask } => set_field(&mut out, *field, *value, *mask),
            Action::SetNwTos(tos) => out.push(format!("set_field:{}->nw_tos", tos & 0xfc)),
            Action::SetNwTtl(ttl) => out.push(format!("mod_nw_ttl:{ttl}")),
            Action::SetVlanVid(vid) => {
                if tags == 0 {
                    out.push("push_vlan:0x8100".into());
                    tags = 1;
                }
                let v = (*vid & VLAN_VID_MASK | VLAN_CFI) as u128;
                set_field(&mut out, Field::VlanVid, v, Field::VlanVid.full_mask());
            }
            Action::SetVlanPcp(pcp) => {
                if tags == 0 {
                    out.push("push_vlan:0x8100".into());
                    tags = 1;
                }
                set_field(
                    &mut out,
                    Field::VlanPcp,
                    (*pcp & 7) as u128,
                    Field::VlanPcp.full_mask(),
                );
            }
            Action::PushVlan(tpid) => {
                tags = tags.saturating_add(1);
                out.push(format!("push_vlan:{tpid:#x}"));
            }
            Action::PopVlan => {
                tags = tags.saturating_sub(1);
                out.push("pop_vlan".into());
            }
            Action::DecTtl => out.push("dec_ttl".into()),
            Action::Resubmit { in_port, table } => {
                let p = in_port.map(port).unwrap_or_default();
                match table {
                    None => out.push(format!("resubmit:{p}")),
                    Some(t) => out.push(format!("resubmit({p},{t})")),
                }
            }
            Action::WriteMetadata { value, mask } => {
                if *mask == u64::MAX {
                    out.push(format!("write_metadata:{}", hex_c(*value as u128)));
                } else {
                    out.push(format!(
                        "write_metadata:{}/{}",
                        hex_c(*value as u128),
                        hex_c(*mask as u128)
                    ));
                }
            }
            Action::GotoTable(t) => out.push(format!("goto_table:{t}")),
            Action::Bpf(name) => out.push(format!("bpf({name})")),
        }
    }
    out.join(",")
}

/// Prints a rule as `ovs-ofctl -O OpenFlow13 parse-flow` prints an added flow after `ADD `:
/// `[table:N ][match ][cookie:0xC ][idle:N ][hard:N ]actions=...`.
pub fn format_rule(rule: &Rule) -> String {
    let mut fm = FlowMod::new(FlowModCommand::Add, rule.clone());
    fm.new_cookie = Some(rule.cookie);
    flow_mod_body(&fm)
}

/// Prints a flow mod as ovs-ofctl's `ofputil_flow_mod_format` does, starting with the command
/// name (`ADD`, `MOD`, `MOD_STRICT`, `DEL`, `DEL_STRICT`).
pub fn format_flow_mod(fm: &FlowMod) -> String {
    format!("{} {}", fm.command.ofctl_name(), flow_mod_body(fm))
}

pub(crate) fn flow_mod_body(fm: &FlowMod) -> String {
    let r = &fm.rule;
    let mut s = String::new();
    if r.table != 0 {
        let _ = write!(s, "table:{} ", r.table);
    }
    let m = format_match(&r.r#match, r.priority);
    if !m.is_empty() {
        s.push_str(&m);
        s.push(' ');
    }
    // OpenFlow 1.3 carries a new cookie only in an add; a modify's `cookie=V` (without a
    // mask) does not survive the encoding, so ovs-ofctl does not print it.
    if fm.command == FlowModCommand::Add && r.cookie != 0 && r.cookie != u64::MAX {
        let _ = write!(s, "cookie:{:#x} ", r.cookie);
    }
    if fm.cookie_mask != 0 {
        let _ = write!(s, "cookie:{:#x}/{:#x} ", fm.cookie, fm.cookie_mask);
    }
    if r.idle_timeout != 0 {
        let _ = write!(s, "idle:{} ", r.idle_timeout);
    }
    if r.hard_timeout != 0 {
        let _ = write!(s, "hard:{} ", r.hard_timeout);
    }
    if fm.out_port != OFPP_ANY {
        let _ = write!(s, "out_port:{} ", port(fm.out_port));
    }
    let f = &fm.flags;
    for (on, name) in [
        (f.send_flow_rem, "send_flow_rem"),
        (f.check_overlap, "check_overlap"),
        (f.reset_counts, "reset_counts"),
        (f.no_packet_counts, "no_packet_counts"),
        (f.no_byte_counts, "no_byte_counts"),
    ] {
        if on {
            s.push_str(name);
            s.push(' ');
        }
    }
    // Deletions have no actions, which ovs-ofctl prints as "actions=drop".
    s.push_str("actions=");
    s.push_str(&format_actions(&r.actions, Some(&r.r#match)));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_like_inet_ntop() {
        let p = |s: &str| u128::from(s.parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(ipv6(p("2001:db8::1")), "2001:db8::1");
        assert_eq!(ipv6(p("::1")), "::1");
        assert_eq!(ipv6(0), "::");
        assert_eq!(ipv6(p("1:0:0:2:0:0:0:3")), "1:0:0:2::3");
        assert_eq!(ipv6(p("1:0:2:3:4:5:6:7")), "1:0:2:3:4:5:6:7");
        assert_eq!(ipv6(p("::ffff:1.2.3.4")), "::ffff:1.2.3.4");
        assert_eq!(ipv6(p("::1:2")), "::0.1.0.2");
        assert_eq!(ipv6(p("fe80::")), "fe80::");
        assert_eq!(ipv6(p("2001::ffff:0:0")), "2001::ffff:0:0");
    }

    #[test]
    fn tcp_flag_printing() {
        assert_eq!(tcp_flags(0x012, 0xfff), "syn|ack");
        assert_eq!(tcp_flags(0, 0xfff), "0");
        assert_eq!(tcp_flags(0x002, 0x012), "+syn-ack");
        assert_eq!(tcp_flags(0x200, 0x200), "+[200]");
    }

    #[test]
    fn ports_print_like_ovs() {
        assert_eq!(port(crate::action::OFPP_LOCAL), "LOCAL");
        assert_eq!(port(0xffff_ff00), "65280");
        assert_eq!(port(7), "7");
    }
}
