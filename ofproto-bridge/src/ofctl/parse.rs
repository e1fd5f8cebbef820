//! Parsing flows: the match part, the flow-mod keywords, files of flows.
//!
//! The order of work mirrors ovs-ofctl's `parse_ofp_str`: the actions are cut off at the first
//! `action...=`; the rest is split into `key[=value]` pairs and applied in order (a later
//! value for the same field wins); then this parser adds what ovs-ofctl leaves to the switch:
//! prerequisite checks, the OpenFlow 1.3 (OXM) normalisation of the VLAN match, and zeroing of
//! wildcarded bits.

use super::actions::parse_actions;
use super::error::{column_of, OfctlError};
use super::lex::{pairs, Pair};
use super::value::{self, uint_bits};
use super::{FlowMod, FlowModCommand, TABLE_ALL};
use crate::action::MAX_TABLE_ID;
use crate::field::{Field, FieldFormat, Prerequisite};
use crate::flow::{Flow, FRAG_LATER, VLAN_CFI, VLAN_PCP_MASK, VLAN_PCP_SHIFT, VLAN_VID_MASK};
use crate::rule::{Match, Rule, DEFAULT_PRIORITY};

/// Parses one `add-flow` flow into a rule (the flow-mod flags, if any, are dropped).
pub fn parse_flow(text: &str) -> Result<Rule, OfctlError> {
    parse_flow_mod(text, FlowModCommand::Add).map(|fm| fm.rule)
}

/// Parses one flow for the given command (`add-flow`, `mod-flows [--strict]`,
/// `del-flows [--strict]`).
pub fn parse_flow_mod(text: &str, command: FlowModCommand) -> Result<FlowMod, OfctlError> {
    let (match_text, actions_text) = if command.has_actions() {
        let (m, a) = split_actions(text)?;
        (m, Some(a))
    } else {
        (text, None)
    };

    let mut fm = FlowMod::new(
        command,
        Rule {
            table: if command == FlowModCommand::Add {
                0
            } else {
                TABLE_ALL
            },
            priority: DEFAULT_PRIORITY,
            cookie: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            r#match: Match::default(),
            actions: Vec::new(),
        },
    );
    let mut mb = MatchBuilder::new(text);
    for p in pairs(match_text) {
        if !command.has_actions() && p.key.starts_with("action") {
            return Err(OfctlError::syntax(
                text,
                p.key,
                format!("{} flow mods take no actions", command.ofctl_name()),
            ));
        }
        if !flow_mod_keyword(&mut fm, text, &p)? {
            mb.apply(&p)?;
        }
    }
    fm.rule.r#match = mb.finish()?;
    if command == FlowModCommand::Add {
        fm.rule.cookie = fm.new_cookie.unwrap_or(0);
    }
    if let Some(a) = actions_text {
        fm.rule.actions = parse_actions(text, a, fm.rule.table, &fm.rule.r#match)?;
    }
    Ok(fm)
}

/// Parses a flow file as `ovs-ofctl add-flows` reads it: one flow per line, `#` starts a
/// comment that runs to the end of the line, blank lines are skipped. A line may start with a
/// verb (`add`, `modify`, `modify_strict`, `delete`, `delete_strict`), as with
/// `ovs-ofctl --bundle add-flows`; otherwise it is an add. Errors carry the 1-based line number.
pub fn parse_flows_file(text: &str) -> Result<Vec<FlowMod>, OfctlError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = match raw.find('#') {
            Some(at) => &raw[..at],
            None => raw,
        };
        if line.trim().is_empty() {
            continue;
        }
        let trimmed = line.trim_start();
        let (command, body) = match trimmed.split_once([' ', '\t']) {
            Some((verb, rest)) => match FlowModCommand::from_verb(verb) {
                Some(c) => (c, rest),
                None => (FlowModCommand::Add, line),
            },
            // A verb alone ("delete") applies to every flow.
            None => match FlowModCommand::from_verb(trimmed.trim_end()) {
                Some(c) => (c, &trimmed[trimmed.len()..]),
                None => (FlowModCommand::Add, line),
            },
        };
        // Re-slice so that columns count from the start of the line.
        let start = body.as_ptr() as usize - raw.as_ptr() as usize;
        let body = &raw[..start + body.len()];
        let fm = parse_flow_mod_at(body, start, command).map_err(|e| OfctlError::Line {
            line: i + 1,
            source: Box::new(e),
        })?;
        out.push(fm);
    }
    Ok(out)
}

/// Parses `line[start..]` as a flow, reporting columns relative to the whole line.
fn parse_flow_mod_at(
    line: &str,
    start: usize,
    command: FlowModCommand,
) -> Result<FlowMod, OfctlError> {
    if start == 0 {
        return parse_flow_mod(line, command);
    }
    // Blank out the verb so columns stay those of the line.
    let padded = format!("{}{}", " ".repeat(start), &line[start..]);
    parse_flow_mod(&padded, command)
}

/// Cuts the text at the first `action` keyword, as ovs-ofctl does: everything after the `=`
/// that follows it is the action list.
fn split_actions(text: &str) -> Result<(&str, &str), OfctlError> {
    let at = text.find("action").ok_or(OfctlError::MissingActions)?;
    let eq = text[at..].find('=').ok_or(OfctlError::MissingActions)? + at;
    Ok((&text[..at], &text[eq + 1..]))
}

fn need_value<'a>(input: &str, p: &Pair<'a>) -> Result<&'a str, OfctlError> {
    if p.value.is_empty() {
        return Err(OfctlError::syntax(
            input,
            p.key,
            format!("field {} missing value", p.key),
        ));
    }
    Ok(p.value)
}

fn no_value(input: &str, p: &Pair<'_>) -> Result<(), OfctlError> {
    if p.has_value {
        return Err(OfctlError::syntax(
            input,
            p.text,
            format!("{} takes no value", p.key),
        ));
    }
    Ok(())
}

/// Handles the keywords that belong to the flow mod rather than the match. Returns whether
/// `p` was one of them.
fn flow_mod_keyword(fm: &mut FlowMod, input: &str, p: &Pair<'_>) -> Result<bool, OfctlError> {
    use FlowModCommand::*;
    let cmd = fm.command;
    let not_for = |what: &str| {
        OfctlError::syntax(
            input,
            p.key,
            format!(
                "{} is not allowed in a {} flow mod ({what})",
                p.key,
                cmd.ofctl_name()
            ),
        )
    };
    let num = |bits: u32| -> Result<u128, OfctlError> {
        let v = need_value(input, p)?;
        uint_bits(v, bits, p.key).map_err(|m| OfctlError::syntax(input, v, m))
    };
    match p.key {
        "table" => {
            let v = need_value(input, p)?;
            let t = value::table_id(v).map_err(|m| OfctlError::syntax(input, v, m))?;
            if cmd == Add && t > MAX_TABLE_ID {
                return Err(OfctlError::syntax(
                    input,
                    v,
                    format!("table {t} does not exist (flow tables are 0 through {MAX_TABLE_ID})"),
                ));
            }
            fm.rule.table = t;
        }
        "priority" => {
            if cmd == Delete {
                return Err(not_for("delete ignores priorities; use delete_strict"));
            }
            fm.rule.priority = num(16)? as u16;
        }
        "cookie" => {
            let v = need_value(input, p)?;
            let (c, m) = value::split_mask(v);
            let cookie = uint_bits(c, 64, "cookie").map_err(|e| OfctlError::syntax(input, c, e))?;
            match m {
                Some(m) => {
                    if cmd == Add {
                        return Err(OfctlError::syntax(
                            input,
                            v,
                            "flow additions cannot use a cookie mask",
                        ));
                    }
                    let mask = uint_bits(m, 64, "cookie mask")
                        .map_err(|e| OfctlError::syntax(input, m, e))?;
                    fm.cookie = (cookie as u64) & mask as u64;
                    fm.cookie_mask = mask as u64;
                }
                None => fm.new_cookie = Some(cookie as u64),
            }
        }
        // "idle:N" and "hard:N" are how ovs-ofctl prints timeouts; accept its output back.
        "idle_timeout" | "hard_timeout" | "idle" | "hard" => {
            if matches!(cmd, Delete | DeleteStrict) {
                return Err(not_for("timeouts only apply to added or modified rules"));
            }
            let t = num(16)? as u16;
            if p.key.starts_with("idle") {
                fm.rule.idle_timeout = t;
            } else {
                fm.rule.hard_timeout = t;
            }
        }
        "importance" => {
            if cmd != Add {
                return Err(not_for("importance only applies to added rules"));
            }
            fm.importance = num(16)? as u16;
        }
        "out_port" => {
            if !matches!(cmd, Delete | DeleteStrict) {
                return Err(not_for("out_port only filters deletions"));
            }
            let v = need_value(input, p)?;
            fm.out_port = value::port(v).map_err(|m| OfctlError::syntax(input, v, m))?;
        }
        "send_flow_rem" | "check_overlap" | "reset_counts" | "no_packet_counts"
        | "no_byte_counts" => {
            if matches!(cmd, Delete | DeleteStrict) {
                return Err(not_for("flags only apply to added or modified rules"));
            }
            no_value(input, p)?;
            let f = &mut fm.flags;
            match p.key {
                "send_flow_rem" => f.send_flow_rem = true,
                "check_overlap" => f.check_overlap = true,
                "reset_counts" => f.reset_counts = true,
                "no_packet_counts" => f.no_packet_counts = true,
                _ => f.no_byte_counts = true,
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Protocol shorthands: `(name, dl_type, nw_proto)`.
const SHORTHANDS: [(&str, u16, Option<u8>); 14] = [
    ("ip", 0x0800, None),
    ("ipv6", 0x86dd, None),
    ("icmp", 0x0800, Some(1)),
    ("icmp6", 0x86dd, Some(58)),
    ("tcp", 0x0800, Some(6)),
    ("tcp6", 0x86dd, Some(6)),
    ("udp", 0x0800, Some(17)),
    ("udp6", 0x86dd, Some(17)),
    ("sctp", 0x0800, Some(132)),
    ("sctp6", 0x86dd, Some(132)),
    ("arp", 0x0806, None),
    ("rarp", 0x8035, None),
    ("mpls", 0x8847, None),
    ("mplsm", 0x8848, None),
];

/// A field name whose meaning depends on the protocol the match ends up with. Its bits are
/// written at once (in order with the other fields); the protocol is checked at the end.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Generic {
    /// `tp_src`/`tp_dst`: TCP, UDP or SCTP ports, or ICMP type/code.
    Transport,
    /// `icmp_type`/`icmp_code`: ICMPv4 or ICMPv6 type/code.
    Icmp,
}

/// What to verify at the end about a field the text named.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Check {
    /// A field with its own meta-flow prerequisite.
    Field(Field),
    /// A protocol-generic name that wrote the bits of this field.
    Generic(Generic, Field),
}

impl Check {
    fn field(self) -> Field {
        match self {
            Check::Field(f) | Check::Generic(_, f) => f,
        }
    }
}

/// Builds a match from pairs, remembering where each field was named for error messages.
struct MatchBuilder<'a> {
    input: &'a str,
    flow: Flow,
    mask: Flow,
    filters: Vec<String>,
    /// Fields set, with the name token that set them (for prerequisite errors).
    seen: Vec<(Check, &'a str)>,
}

impl<'a> MatchBuilder<'a> {
    fn new(input: &'a str) -> MatchBuilder<'a> {
        MatchBuilder {
            input,
            flow: Flow::default(),
            mask: Flow::default(),
            filters: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn set(&mut self, field: Field, value: u128, mask: u128) {
        field.set(&mut self.mask, mask);
        field.set(&mut self.flow, value & mask);
    }

    fn apply(&mut self, p: &Pair<'a>) -> Result<(), OfctlError> {
        let input = self.input;
        if p.parenthesised {
            return Err(OfctlError::syntax(
                input,
                p.text,
                format!(
                    "{}(...): a match field takes `=VALUE`, not parentheses",
                    p.key
                ),
            ));
        }
        if let Some((_, dl_type, proto)) = SHORTHANDS.iter().find(|(n, _, _)| *n == p.key) {
            no_value(input, p)?;
            self.set(Field::EthType, *dl_type as u128, 0xffff);
            if let Some(proto) = proto {
                self.set(Field::IpProto, *proto as u128, 0xff);
            }
            return Ok(());
        }
        let generic = match p.key {
            "tp_src" => Some((Generic::Transport, Field::TcpSrc)),
            "tp_dst" => Some((Generic::Transport, Field::TcpDst)),
            "icmp_type" => Some((Generic::Icmp, Field::Icmpv4Type)),
            "icmp_code" => Some((Generic::Icmp, Field::Icmpv4Code)),
            _ => None,
        };
        if let Some((g, field)) = generic {
            let v = need_value(input, p)?;
            return self.apply_field(field, p.key, v, Check::Generic(g, field));
        }
        match p.key {
            "bpf_filter" | "filter_prog" => {
                let v = need_value(input, p)?;
                let name = if p.key == "filter_prog" {
                    let id = uint_bits(v, 32, "filter program id")
                        .map_err(|m| OfctlError::syntax(input, v, m))?;
                    id.to_string()
                } else {
                    value::ext_name(v)
                        .map_err(|m| OfctlError::syntax(input, v, m))?
                        .to_string()
                };
                if !self.filters.contains(&name) {
                    self.filters.push(name);
                }
            }
            "dl_vlan" => {
                let v = need_value(input, p)?;
                let vid =
                    uint_bits(v, 16, "dl_vlan").map_err(|m| OfctlError::syntax(input, v, m))?;
                if vid == 0xffff {
                    // OpenFlow 1.0's OFP_VLAN_NONE: match only untagged packets.
                    self.set(Field::VlanTci, 0, 0xffff);
                } else if vid > VLAN_VID_MASK as u128 {
                    return Err(OfctlError::syntax(
                        input,
                        v,
                        format!("{v}: VLAN ID must be 0 through 4095 (or 0xffff for no VLAN)"),
                    ));
                } else {
                    self.set(
                        Field::VlanVid,
                        vid | VLAN_CFI as u128,
                        (VLAN_VID_MASK | VLAN_CFI) as u128,
                    );
                }
                self.seen.push((Check::Field(Field::VlanVid), p.key));
            }
            "dl_vlan_pcp" | "vlan_pcp" => {
                let v = need_value(input, p)?;
                let pcp =
                    uint_bits(v, 3, "VLAN PCP").map_err(|m| OfctlError::syntax(input, v, m))?;
                // Matching a PCP implies a tag is present, as in Open vSwitch.
                let tci = &mut self.flow.vlans[0].tci;
                *tci = (*tci & !VLAN_PCP_MASK) | ((pcp as u16) << VLAN_PCP_SHIFT) | VLAN_CFI;
                self.mask.vlans[0].tci |= VLAN_PCP_MASK | VLAN_CFI;
                self.seen.push((Check::Field(Field::VlanPcp), p.key));
            }
            "nw_tos" => {
                let v = need_value(input, p)?;
                let (val, m) = value::split_mask(v);
                let tos = uint_bits(val, 8, "field nw_tos")
                    .map_err(|e| OfctlError::syntax(input, v, e))?;
                if let Some(m) = m {
                    let mm =
                        uint_bits(m, 8, "mask").map_err(|e| OfctlError::syntax(input, v, e))?;
                    if mm != 0xff {
                        return Err(OfctlError::syntax(
                            input,
                            v,
                            format!("{v}: invalid mask for field nw_tos (it is not maskable)"),
                        ));
                    }
                }
                // nw_tos names the DSCP bits of the TOS byte; the ECN bits are ignored.
                self.set(Field::IpDscp, tos >> 2, 0x3f);
                self.seen.push((Check::Field(Field::IpDscp), p.key));
            }
            _ => {
                let Some(field) = Field::from_name(p.key) else {
                    let msg = if p.key.is_empty() {
                        "empty keyword (stray `=` or `:`?)".to_string()
                    } else {
                        format!("unknown keyword {}", p.key)
                    };
                    return Err(OfctlError::syntax(input, p.text, msg));
                };
                let v = need_value(input, p)?;
                self.apply_field(field, p.key, v, Check::Field(field))?;
            }
        }
        Ok(())
    }

    fn apply_field(
        &mut self,
        field: Field,
        name: &'a str,
        v: &'a str,
        check: Check,
    ) -> Result<(), OfctlError> {
        let (value, mask) =
            parse_field_value(field, v).map_err(|m| OfctlError::syntax(self.input, v, m))?;
        let full = field.full_mask();
        let mask = match mask {
            Some(m) if m != full && !field.maskable() => {
                return Err(OfctlError::syntax(
                    self.input,
                    v,
                    format!("{v}: invalid mask for field {name} (it is not maskable)"),
                ))
            }
            Some(m) => m,
            None => full,
        };
        self.set(field, value, mask);
        self.seen.push((check, name));
        Ok(())
    }

    fn missing(&self, name: &str, prerequisite: &str) -> OfctlError {
        OfctlError::MissingPrerequisite {
            field: name.to_string(),
            column: column_of(self.input, name),
            prerequisite: prerequisite.to_string(),
        }
    }

    fn check_prerequisites(&self) -> Result<(), OfctlError> {
        let later = self.mask.nw_frag & FRAG_LATER != 0 && self.flow.nw_frag & FRAG_LATER != 0;
        let (f, m) = (&self.flow, &self.mask);
        let icmp = Prerequisite::Icmpv4.is_met(f, m) || Prerequisite::Icmpv6.is_met(f, m);
        for (check, name) in &self.seen {
            if check.field().get(&self.mask) == 0 {
                continue;
            }
            let pre = match *check {
                Check::Field(field) => field.prerequisite(),
                Check::Generic(Generic::Transport, _) => {
                    let ports = [Prerequisite::Tcp, Prerequisite::Udp, Prerequisite::Sctp];
                    if !icmp && !ports.iter().any(|p| p.is_met(f, m)) {
                        return Err(self.missing(
                            name,
                            "tcp, udp or sctp (nw_proto=6, 17 or 132 with ip or ipv6)",
                        ));
                    }
                    Prerequisite::Tcp
                }
                Check::Generic(Generic::Icmp, _) => {
                    if !icmp {
                        return Err(self
                            .missing(name, "icmp or icmp6 (nw_proto=1 with ip, or 58 with ipv6)"));
                    }
                    Prerequisite::Icmpv4
                }
            };
            if matches!(check, Check::Field(_)) && !pre.is_met(f, m) {
                return Err(self.missing(name, pre.describe()));
            }
            let l4 = matches!(
                pre,
                Prerequisite::Tcp
                    | Prerequisite::Udp
                    | Prerequisite::Sctp
                    | Prerequisite::Icmpv4
                    | Prerequisite::Icmpv6
                    | Prerequisite::Nd
                    | Prerequisite::NdSolicit
                    | Prerequisite::NdAdvert
            );
            if l4 && later {
                return Err(OfctlError::MissingPrerequisite {
                    field: name.to_string(),
                    column: column_of(self.input, name),
                    prerequisite: "a packet with a transport header, which ip_frag=later excludes"
                        .to_string(),
                });
            }
        }
        Ok(())
    }

    /// In an ICMP match the transport fields are the (8-bit, exact-match) ICMP type and code,
    /// however they were named (`tp_src`, `icmp_type`, `icmpv6_type`).
    fn normalize_icmp(&mut self) -> Result<(), OfctlError> {
        let (f, m) = (&self.flow, &self.mask);
        let v6 = Prerequisite::Icmpv6.is_met(f, m);
        if !v6 && !Prerequisite::Icmpv4.is_met(f, m) {
            return Ok(());
        }
        for (ty, src) in [(Field::Icmpv4Type, true), (Field::Icmpv4Code, false)] {
            let (mask, value) = if src {
                (self.mask.tp_src, self.flow.tp_src)
            } else {
                (self.mask.tp_dst, self.flow.tp_dst)
            };
            if mask == 0 {
                continue;
            }
            let name = self
                .seen
                .iter()
                .rev()
                .find(|(c, _)| {
                    let cf = c.field();
                    cf == ty
                        || (src && matches!(cf, Field::TcpSrc | Field::Icmpv6Type))
                        || (!src && matches!(cf, Field::TcpDst | Field::Icmpv6Code))
                })
                .map_or(ty.name(), |(_, n)| n);
            let what = if src { "ICMP type" } else { "ICMP code" };
            if mask & 0xff != 0xff {
                return Err(
                    self.missing(name, &format!("an exact value: the {what} is not maskable"))
                );
            }
            if value > 0xff {
                return Err(OfctlError::syntax(
                    self.input,
                    name,
                    format!("{value}: value too large for the 8-bit {what}"),
                ));
            }
            ty.set(&mut self.mask, 0xff);
            if src {
                self.mask.tp_src = 0xff;
            } else {
                self.mask.tp_dst = 0xff;
            }
        }
        Ok(())
    }

    /// OXM carries a PCP match only with a VID match whose "present" bit is matched as 1
    /// (Open vSwitch's decoder rejects anything else with `OFPBMC_BAD_PREREQ`).
    fn check_vlan_pcp(&self) -> Result<(), OfctlError> {
        let (tci, m) = (
            self.flow.vlans[0].tci & self.mask.vlans[0].tci,
            self.mask.vlans[0].tci,
        );
        let vid = tci & (VLAN_VID_MASK | VLAN_CFI);
        if m & VLAN_PCP_MASK != 0 && vid != 0 && (m & VLAN_CFI == 0 || tci & VLAN_CFI == 0) {
            let name = self
                .seen
                .iter()
                .rev()
                .find(|(c, _)| {
                    matches!(c.field(), Field::VlanTci | Field::VlanVid | Field::VlanPcp)
                })
                .map_or("vlan_tci", |(_, n)| n);
            return Err(OfctlError::MissingPrerequisite {
                field: name.to_string(),
                column: column_of(self.input, name),
                prerequisite: format!(
                    "{} for its PCP bits to be matched",
                    Prerequisite::Vlan.describe()
                ),
            });
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Match, OfctlError> {
        self.check_prerequisites()?;
        self.normalize_icmp()?;
        self.check_vlan_pcp()?;
        oxm_normalize_vlan(&mut self.flow, &mut self.mask);
        let flow = self.flow.masked(&self.mask);
        Ok(Match {
            flow,
            mask: self.mask,
            bpf_filters: self.filters,
        })
    }
}

/// Parses a field's value (and mask, if written) according to the field's format, checking
/// that it fits the field.
pub(crate) fn parse_field_value(field: Field, v: &str) -> Result<(u128, Option<u128>), String> {
    let name = field.name();
    match field.format() {
        FieldFormat::Port => Ok((value::port(v)? as u128, None)),
        FieldFormat::Ethernet => {
            let (a, m) = value::split_mask(v);
            let a = value::mac(a)?;
            let m = m.map(value::mac).transpose()?;
            Ok((a, m))
        }
        FieldFormat::Ipv4 => {
            let (a, m) = value::ipv4_masked(v)?;
            Ok((a as u128, (m != u32::MAX).then_some(m as u128)))
        }
        FieldFormat::Ipv6 => {
            let (a, m) = value::ipv6_masked(v)?;
            Ok((a, (m != u128::MAX).then_some(m)))
        }
        FieldFormat::TcpFlags => {
            let (a, m) = value::tcp_flags(v)?;
            Ok((a as u128, Some(m as u128)))
        }
        FieldFormat::Frag => {
            let (a, m) = value::frag(v)?;
            Ok((a as u128, Some(m as u128)))
        }
        FieldFormat::Decimal | FieldFormat::Hex => {
            let width = field.width();
            let what = format!("field {name}");
            let (a, m) = value::split_mask(v);
            if m == Some("") {
                return Err(format!("{v}: bad syntax for {name} mask"));
            }
            let a = uint_bits(a, width, &what)?;
            let m = m.map(|m| uint_bits(m, field.width(), &what)).transpose()?;
            Ok((a, m))
        }
    }
}

/// Applies what OpenFlow 1.3's OXM encoding does to a VLAN match (Open vSwitch's `nx_put_raw`
/// followed by decoding): the VID and its "present" bit survive under their mask; a PCP
/// match survives only if the VID part is non-zero, becomes exact, and implies a tag.
fn oxm_normalize_vlan(flow: &mut Flow, mask: &mut Flow) {
    let tci = flow.vlans[0].tci & mask.vlans[0].tci;
    let m = mask.vlans[0].tci;
    if m == 0 {
        return;
    }
    let vid_mask = m & (VLAN_VID_MASK | VLAN_CFI);
    let vid = tci & vid_mask;
    let (mut new_tci, mut new_mask) = (vid, vid_mask);
    if vid != 0 && m & VLAN_PCP_MASK != 0 {
        new_tci |= (tci & VLAN_PCP_MASK) | VLAN_CFI;
        new_mask |= VLAN_PCP_MASK | VLAN_CFI;
    }
    flow.vlans[0].tci = new_tci;
    mask.vlans[0].tci = new_mask;
}
