//! Parsing action lists, and checking them against the match the way Open vSwitch's
//! `ofpacts_check` does for OpenFlow 1.3.
//!
//! Actions are checked in order against what the packet is known to be: the match, as
//! changed by earlier actions (`push_vlan` adds a tag, `pop_vlan` removes one). An action that
//! needs something the packet is not known to have (`mod_nw_src` without `ip`, `pop_vlan`
//! without a tag) is rejected with the missing prerequisite.
//!
//! The actions produced are those OpenFlow 1.3 carries, so that printing them gives what
//! ovs-ofctl prints (see the module documentation of [`super`]).

use super::error::OfctlError;
use super::lex::{pairs, Pair};
use super::parse::parse_field_value;
use super::value::{self, uint_bits};
use crate::action::{
    Action, PortNo, MAX_TABLE_ID, OFPP_ALL, OFPP_ANY, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT,
    OFPP_LOCAL, OFPP_NORMAL, OFPP_TABLE,
};
use crate::field::{Field, Prerequisite};
use crate::flow::{Flow, VLAN_CFI};
use crate::rule::Match;

/// Maximum number of VLAN tags a packet may carry after `push_vlan` (as in Open vSwitch).
const MAX_VLAN_TAGS: u8 = 2;

/// First OpenFlow 1.1+ reserved port number; the named ones are handled one by one.
const FIRST_RESERVED_PORT: PortNo = 0xffff_ff00;

/// Smallest `max_len` of a truncating output (an Ethernet header).
const MIN_TRUNC_LEN: u128 = 14;

/// Ethertype `push_vlan` uses when `mod_vlan_vid`/`mod_vlan_pcp` must add a tag.
const ETH_TYPE_VLAN_8021Q: u16 = 0x8100;

/// What the packet is known to be while the action list is checked.
struct Ctx {
    flow: Flow,
    mask: Flow,
    vlan_tags: u8,
}

impl Ctx {
    fn new(m: &Match) -> Ctx {
        let vlan_tags = u8::from(Prerequisite::Vlan.is_met(&m.flow, &m.mask));
        Ctx {
            flow: m.flow,
            mask: m.mask,
            vlan_tags,
        }
    }

    fn met(&self, pre: Prerequisite) -> bool {
        match pre {
            Prerequisite::Vlan => self.vlan_tags > 0,
            _ => pre.is_met(&self.flow, &self.mask),
        }
    }
}

/// Instruction ordering of OpenFlow 1.1+: apply-actions, then write-metadata, then goto-table.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Apply,
    WriteMetadata,
    Goto,
}

struct ActionParser<'a> {
    input: &'a str,
    table: u8,
    ctx: Ctx,
    phase: Phase,
    out: Vec<Action>,
}

/// Parses the text after `actions=` for a rule in `table` with match `m`. `input` is the
/// whole flow text (for columns).
pub(crate) fn parse_actions(
    input: &str,
    text: &str,
    table: u8,
    m: &Match,
) -> Result<Vec<Action>, OfctlError> {
    let ps = pairs(text);
    if let Some(d) = ps.iter().find(|p| p.key.eq_ignore_ascii_case("drop")) {
        if ps.len() > 1 {
            return Err(OfctlError::syntax(
                input,
                d.key,
                "\"drop\" must not be accompanied by any other action or instruction",
            ));
        }
        if d.has_value {
            return Err(OfctlError::syntax(input, d.text, "drop takes no argument"));
        }
        return Ok(Vec::new());
    }
    let mut ap = ActionParser {
        input,
        table,
        ctx: Ctx::new(m),
        phase: Phase::Apply,
        out: Vec::new(),
    };
    for p in &ps {
        ap.action(p)?;
    }
    Ok(ap.out)
}

impl<'a> ActionParser<'a> {
    fn err(&self, token: &str, msg: impl Into<String>) -> OfctlError {
        OfctlError::syntax(self.input, token, msg)
    }

    fn inconsistent(&self, p: &Pair<'_>, pre: Prerequisite) -> OfctlError {
        OfctlError::InconsistentAction {
            action: p.text.to_string(),
            column: super::error::column_of(self.input, p.text),
            prerequisite: pre.describe().to_string(),
        }
    }

    fn require(&self, p: &Pair<'_>, pre: Prerequisite) -> Result<(), OfctlError> {
        if self.ctx.met(pre) {
            Ok(())
        } else {
            Err(self.inconsistent(p, pre))
        }
    }

    fn arg<'b>(&self, p: &Pair<'b>) -> Result<&'b str, OfctlError> {
        if p.value.is_empty() {
            return Err(self.err(p.text, format!("action {} needs an argument", p.key)));
        }
        Ok(p.value)
    }

    fn no_arg(&self, p: &Pair<'_>) -> Result<(), OfctlError> {
        if p.has_value {
            return Err(self.err(p.text, format!("action {} takes no argument", p.key)));
        }
        Ok(())
    }

    fn num(&self, v: &str, bits: u32, what: &str) -> Result<u128, OfctlError> {
        uint_bits(v, bits, what).map_err(|m| self.err(v, m))
    }

    fn push(&mut self, p: &Pair<'_>, a: Action) -> Result<(), OfctlError> {
        let phase = match a {
            Action::WriteMetadata { .. } => Phase::WriteMetadata,
            Action::GotoTable(_) => Phase::Goto,
            _ => Phase::Apply,
        };
        if phase < self.phase || (phase == self.phase && phase != Phase::Apply) {
            let what = match phase {
                Phase::Apply => "apply actions",
                Phase::WriteMetadata => "write_metadata",
                Phase::Goto => "goto_table",
            };
            let msg = if phase == self.phase {
                format!("{what} may appear only once")
            } else {
                format!(
                    "invalid instruction ordering: {what} must appear before {}, for OpenFlow 1.1+ compatibility",
                    if self.phase == Phase::Goto { "goto_table" } else { "write_metadata" }
                )
            };
            return Err(self.err(p.text, msg));
        }
        self.phase = phase;
        self.out.push(a);
        Ok(())
    }

    /// Output to `port`, using the dedicated action for reserved ports.
    fn output(&mut self, p: &Pair<'_>, port: PortNo, tok: &str) -> Result<(), OfctlError> {
        let a = match port {
            OFPP_NORMAL => Action::Normal,
            OFPP_FLOOD => Action::Flood,
            OFPP_ALL => Action::All,
            OFPP_IN_PORT => Action::InPort,
            OFPP_CONTROLLER => Action::Controller { max_len: u16::MAX },
            OFPP_ANY => return Err(self.err(tok, format!("{tok}: cannot output to port ANY"))),
            OFPP_TABLE => {
                return Err(self.err(
                    tok,
                    format!("{tok}: output to TABLE is only valid in packet-out"),
                ))
            }
            _ if port >= FIRST_RESERVED_PORT && port != OFPP_LOCAL => {
                return Err(self.err(
                    tok,
                    format!(
                    "{tok}: port {port:#x} is a reserved port number with no meaning as an output"
                ),
                ))
            }
            _ => Action::Output { port, max_len: 0 },
        };
        self.push(p, a)
    }

    fn set_field(
        &mut self,
        p: &Pair<'_>,
        field: Field,
        value: u128,
        mask: u128,
    ) -> Result<(), OfctlError> {
        self.writable(p, field, field.name())?;
        let pre = match field {
            // Writing the VID or PCP needs a tag; vlan_tci (a load) may also create or clear one.
            Field::VlanVid | Field::VlanPcp => Prerequisite::Vlan,
            f => f.prerequisite(),
        };
        self.require(p, pre)?;
        if field == Field::VlanVid && mask & VLAN_CFI as u128 != 0 && value & VLAN_CFI as u128 == 0
        {
            return Err(self.err(
                p.value,
                format!(
                    "{}: vlan_vid value must include 0x1000 (OFPVID_PRESENT)",
                    p.value
                ),
            ));
        }
        if mask == field.full_mask() {
            self.push(p, Action::SetField { field, value, mask })?;
            return Ok(());
        }
        // OpenFlow 1.3 writes part of a field with one NXAST_REG_LOAD per run of mask bits
        // (so a zero mask writes nothing: Open vSwitch drops such an action, and so does this).
        for (lo, hi) in mask_runs(mask, field.width()) {
            let run = ones(lo, hi);
            self.push(
                p,
                Action::SetField {
                    field,
                    value: value & run,
                    mask: run,
                },
            )?;
        }
        if field == Field::VlanTci
            && value & mask & VLAN_CFI as u128 == 0
            && mask & VLAN_CFI as u128 != 0
        {
            self.ctx.vlan_tags = self.ctx.vlan_tags.saturating_sub(1);
        }
        Ok(())
    }

    fn writable(&self, p: &Pair<'_>, field: Field, name: &str) -> Result<(), OfctlError> {
        if !field.writable() {
            return Err(self.err(p.text, format!("{name} is read-only")));
        }
        Ok(())
    }

    fn action(&mut self, p: &Pair<'a>) -> Result<(), OfctlError> {
        if !p.closed {
            return Err(self.err(p.text, format!("{}(: missing `)`", p.key)));
        }
        let key = p.key.to_ascii_lowercase();
        // A bare port number is an output.
        if let Some(c) = p.key.chars().next() {
            if (c.is_ascii_digit() || c == '+') && p.has_value {
                return Err(self.err(
                    p.text,
                    format!(
                        "output to port {} takes no value (write output:{})",
                        p.key, p.key
                    ),
                ));
            }
        }
        if !p.has_value {
            if let Some(c) = p.key.chars().next() {
                if c.is_ascii_digit() || c == '+' {
                    let port = value::port(p.key).map_err(|m| self.err(p.key, m))?;
                    return self.output(p, port, p.key);
                }
            }
        }
        match key.as_str() {
            "output" => {
                if p.parenthesised {
                    return self.output_trunc(p);
                }
                let v = self.arg(p)?;
                let port = value::port(v)
                    .map_err(|_| self.err(v, format!("{v}: output to unknown port")))?;
                self.output(p, port, v)
            }
            "normal" | "flood" | "all" | "in_port" | "local" | "table" | "any" | "none" => {
                // ovs-ofctl ignores a value after a port name ("normal:5"); it is refused here.
                self.no_arg(p)?;
                let port = value::port(p.key).map_err(|m| self.err(p.key, m))?;
                self.output(p, port, p.key)
            }
            "controller" => {
                // "controller:" with nothing after it is plain "controller", as in ovs-ofctl.
                let max_len = if !p.has_value || (!p.parenthesised && p.value.is_empty()) {
                    u16::MAX as u128
                } else if p.parenthesised {
                    let mut max_len = u16::MAX as u128;
                    for kv in pairs(p.value) {
                        match kv.key {
                            "max_len" => {
                                let v = self.arg(&kv)?;
                                max_len = self.num(v, 16, "controller max_len")?;
                            }
                            _ => {
                                return Err(self.err(
                                    kv.text,
                                    format!(
                                        "controller argument {} is not supported by bpfswitch",
                                        kv.key
                                    ),
                                ))
                            }
                        }
                    }
                    max_len
                } else {
                    let v = self.arg(p)?;
                    self.num(v, 16, "controller max_len")?
                };
                self.push(
                    p,
                    Action::Controller {
                        max_len: max_len as u16,
                    },
                )
            }
            "mod_dl_src" | "mod_dl_dst" => {
                let v = self.arg(p)?;
                let mac = value::mac(v).map_err(|m| self.err(v, m))?;
                let f = if key == "mod_dl_src" {
                    Field::EthSrc
                } else {
                    Field::EthDst
                };
                self.set_field(p, f, mac, f.full_mask())
            }
            "mod_nw_src" | "mod_nw_dst" => {
                let v = self.arg(p)?;
                let ip = value::ipv4(v).map_err(|m| self.err(v, m))?;
                let f = if key == "mod_nw_src" {
                    Field::Ipv4Src
                } else {
                    Field::Ipv4Dst
                };
                self.set_field(p, f, ip as u128, f.full_mask())
            }
            "mod_nw_tos" => {
                let v = self.arg(p)?;
                let tos = self.num(v, 8, "TOS")?;
                if tos & 3 != 0 {
                    return Err(self.err(
                        v,
                        format!("{v}: not a valid TOS (the two ECN bits must be 0)"),
                    ));
                }
                self.require(p, Prerequisite::IpAny)?;
                self.set_field(p, Field::IpDscp, tos >> 2, Field::IpDscp.full_mask())
            }
            "mod_nw_ecn" => {
                let v = self.arg(p)?;
                let ecn = uint_bits(v, 2, "ECN")
                    .map_err(|_| self.err(v, format!("{v}: not a valid ECN")))?;
                self.require(p, Prerequisite::IpAny)?;
                self.set_field(p, Field::IpEcn, ecn, 3)
            }
            "mod_nw_ttl" => {
                let v = self.arg(p)?;
                let ttl = self.num(v, 8, "TTL")?;
                self.require(p, Prerequisite::IpAny)?;
                self.push(p, Action::SetNwTtl(ttl as u8))
            }
            "dec_ttl" => {
                if p.has_value {
                    return Err(self.err(
                        p.text,
                        "dec_ttl with controller ids is not supported by bpfswitch",
                    ));
                }
                self.require(p, Prerequisite::IpAny)?;
                self.push(p, Action::DecTtl)
            }
            "mod_tp_src" | "mod_tp_dst" => {
                let v = self.arg(p)?;
                let port = self.num(v, 16, "transport port")?;
                let src = key == "mod_tp_src";
                let f = if self.ctx.met(Prerequisite::Tcp) {
                    if src {
                        Field::TcpSrc
                    } else {
                        Field::TcpDst
                    }
                } else if self.ctx.met(Prerequisite::Udp) {
                    if src {
                        Field::UdpSrc
                    } else {
                        Field::UdpDst
                    }
                } else if self.ctx.met(Prerequisite::Sctp) {
                    if src {
                        Field::SctpSrc
                    } else {
                        Field::SctpDst
                    }
                } else {
                    return Err(OfctlError::InconsistentAction {
                        action: p.text.to_string(),
                        column: super::error::column_of(self.input, p.text),
                        prerequisite: "tcp, udp or sctp (nw_proto=6, 17 or 132)".to_string(),
                    });
                };
                self.set_field(p, f, port, 0xffff)
            }
            "mod_vlan_vid" | "mod_vlan_pcp" => {
                let v = self.arg(p)?;
                let (field, value) = if key == "mod_vlan_vid" {
                    let vid = uint_bits(v, 12, "VLAN VID")
                        .map_err(|_| self.err(v, format!("{v}: not a valid VLAN VID")))?;
                    (Field::VlanVid, vid | VLAN_CFI as u128)
                } else {
                    let pcp = uint_bits(v, 3, "VLAN PCP")
                        .map_err(|_| self.err(v, format!("{v}: not a valid VLAN PCP")))?;
                    (Field::VlanPcp, pcp)
                };
                if self.ctx.vlan_tags == 0 {
                    // The OpenFlow 1.0 action adds a tag when there is none; 1.3 needs a push.
                    self.push(p, Action::PushVlan(ETH_TYPE_VLAN_8021Q))?;
                    self.ctx.vlan_tags = 1;
                }
                self.set_field(p, field, value, field.full_mask())
            }
            "push_vlan" => {
                let v = self.arg(p)?;
                let tpid = self.num(v, 16, "ethertype")? as u16;
                if tpid != 0x8100 && tpid != 0x88a8 {
                    return Err(self.err(v, format!("{v}: not a valid VLAN ethertype")));
                }
                if self.ctx.vlan_tags >= MAX_VLAN_TAGS {
                    return Err(self.err(
                        p.text,
                        format!("push_vlan: at most {MAX_VLAN_TAGS} VLAN tags are supported"),
                    ));
                }
                self.ctx.vlan_tags += 1;
                self.push(p, Action::PushVlan(tpid))
            }
            "pop_vlan" | "strip_vlan" => {
                self.no_arg(p)?;
                self.require(p, Prerequisite::Vlan)?;
                self.ctx.vlan_tags -= 1;
                self.push(p, Action::PopVlan)
            }
            "set_field" => self.parse_set_field(p),
            "load" => self.parse_load(p),
            "resubmit" => self.parse_resubmit(p),
            "goto_table" => {
                let v = self.arg(p)?;
                let t = value::table_id(v).map_err(|m| self.err(v, m))? as u128;
                if t > MAX_TABLE_ID as u128 {
                    return Err(self.err(v, format!("{v}: goto_table to a table that does not exist (0 through {MAX_TABLE_ID})")));
                }
                if self.table != super::TABLE_ALL && t as u8 <= self.table {
                    return Err(self.err(
                        v,
                        format!(
                            "goto_table:{t} must name a later table than this rule's table {}",
                            self.table
                        ),
                    ));
                }
                self.push(p, Action::GotoTable(t as u8))
            }
            "write_metadata" => {
                let v = self.arg(p)?;
                let (val, m) = value::split_mask(v);
                let value = self.num(val, 64, "metadata")? as u64;
                let mask = match m {
                    Some(m) => self.num(m, 64, "metadata mask")? as u64,
                    None => u64::MAX,
                };
                // Open vSwitch keeps the value as written, bits outside the mask included.
                self.push(p, Action::WriteMetadata { value, mask })
            }
            "bpf" => {
                let v = self.arg(p)?;
                let name = value::ext_name(v).map_err(|m| self.err(v, m))?;
                self.push(p, Action::Bpf(name.to_string()))
            }
            "prog" => {
                let v = self.arg(p)?;
                let id = self.num(v, 32, "extension program id")?;
                self.push(p, Action::Bpf(id.to_string()))
            }
            "clear_actions" | "write_actions" | "meter" | "group" | "set_queue" | "enqueue"
            | "pop_queue" | "note" | "learn" | "ct" | "ct_clear" | "nat" | "multipath"
            | "bundle" | "bundle_load" | "sample" | "conjunction" | "clone" | "exit"
            | "fin_timeout" | "move" | "push_mpls" | "pop_mpls" | "set_mpls_label"
            | "set_mpls_tc" | "set_mpls_ttl" | "dec_mpls_ttl" | "set_tunnel" | "set_tunnel64"
            | "output_reg" | "check_pkt_larger" | "encap" | "decap" | "delete_field" => Err(self
                .err(
                    p.text,
                    format!(
                        "action {} is valid in ovs-ofctl but not supported by bpfswitch",
                        p.key
                    ),
                )),
            _ => Err(self.err(p.text, format!("unknown action {}", p.key))),
        }
    }

    fn output_trunc(&mut self, p: &Pair<'_>) -> Result<(), OfctlError> {
        let (mut port, mut max_len) = (None, None);
        for kv in pairs(p.value) {
            match kv.key {
                "port" => {
                    let v = self.arg(&kv)?;
                    port = Some(
                        value::port(v)
                            .map_err(|_| self.err(v, format!("{v}: output to unknown port")))?,
                    );
                }
                "max_len" => {
                    let v = self.arg(&kv)?;
                    max_len = Some(self.num(v, 16, "max_len")?);
                }
                _ => return Err(self.err(kv.text, format!("output: unknown argument {}", kv.key))),
            }
        }
        let Some(port) = port else {
            return Err(self.err(p.text, "output(...) needs port=PORT"));
        };
        let Some(max_len) = max_len else {
            return Err(self.err(p.text, "output(...) needs max_len=N (or write output:PORT)"));
        };
        if max_len < MIN_TRUNC_LEN {
            return Err(self.err(
                p.text,
                format!("max_len {max_len} is less than the minimum value {MIN_TRUNC_LEN}"),
            ));
        }
        // Truncation applies to ports that transmit one copy: physical ports, LOCAL, IN_PORT.
        if port >= FIRST_RESERVED_PORT && port != OFPP_LOCAL && port != OFPP_IN_PORT {
            return Err(self.err(
                p.text,
                format!(
                    "output to unsupported truncate port: {} (for the controller, use controller(max_len=N))",
                    super::format::port(port)
                ),
            ));
        }
        self.push(
            p,
            Action::Output {
                port,
                max_len: max_len as u16,
            },
        )
    }

    fn parse_set_field(&mut self, p: &Pair<'_>) -> Result<(), OfctlError> {
        let v = self.arg(p)?;
        let Some((val, name)) = v.rsplit_once("->") else {
            return Err(self.err(v, format!("{v}: missing `->` in set_field:VALUE->FIELD")));
        };
        let (field, val_text, tos) = match name {
            "nw_tos" => (Field::IpDscp, val, true),
            "tp_src" => (Field::TcpSrc, val, false),
            "tp_dst" => (Field::TcpDst, val, false),
            "vlan_tci" | "dl_vlan" | "dl_vlan_pcp" => {
                return Err(self.err(
                    name,
                    format!("{name}: use vlan_vid or vlan_pcp with set_field"),
                ))
            }
            _ => match Field::from_name(name) {
                Some(f) => (f, val, false),
                None => return Err(self.err(name, format!("{name} is not a valid OXM field name"))),
            },
        };
        if tos {
            // Open vSwitch keeps `set_field:V->nw_tos` as a write of the whole TOS byte's DSCP bits.
            let t = uint_bits(val_text, 8, "field nw_tos").map_err(|m| self.err(val_text, m))?;
            if t & 3 != 0 {
                return Err(self.err(
                    val_text,
                    format!("{t} is not a valid value for field nw_tos"),
                ));
            }
            self.require(p, Prerequisite::IpAny)?;
            return self.push(p, Action::SetNwTos(t as u8));
        }
        self.writable(p, field, name)?;
        let (value, mask) =
            { parse_field_value(field, val_text).map_err(|m| self.err(val_text, m))? };
        let mask = match mask {
            Some(m) if m != field.full_mask() && !field.maskable() => {
                return Err(self.err(
                    val_text,
                    format!("{val_text}: field {name} does not support masking"),
                ))
            }
            Some(m) => m,
            None => field.full_mask(),
        };
        self.set_field(p, field, value & mask, mask)
    }

    fn parse_load(&mut self, p: &Pair<'_>) -> Result<(), OfctlError> {
        let v = self.arg(p)?;
        let Some((val, dst)) = v.split_once("->") else {
            return Err(self.err(v, format!("{v}: missing `->` in load:VALUE->FIELD[..]")));
        };
        let (name, range) = match dst.find('[') {
            Some(i) => (&dst[..i], &dst[i..]),
            None => (dst, "[]"),
        };
        let Some(field) = Field::from_nxm_name(name) else {
            return Err(self.err(
                name,
                format!("{name}: unknown or unsupported NXM/OXM field"),
            ));
        };
        self.writable(p, field, name)?;
        let width = field.width();
        let (lo, hi) = match value::bit_range(range).map_err(|m| self.err(range, m))? {
            Some((lo, hi)) => (lo, hi),
            None => (0, width - 1),
        };
        if hi >= width {
            return Err(self.err(
                range,
                format!("{range}: bits beyond the {width}-bit field {name}"),
            ));
        }
        let n = hi - lo + 1;
        let value = uint_bits(val, n, "load value").map_err(|m| self.err(val, m))?;
        self.set_field(p, field, value << lo, ones(lo, hi))
    }

    fn parse_resubmit(&mut self, p: &Pair<'_>) -> Result<(), OfctlError> {
        let v = self.arg(p)?;
        let (port_text, table_text) = if p.parenthesised {
            // Arguments may be padded with white space, as strtoul allows.
            let mut parts = v.split(',').map(str::trim);
            let a = parts.next().unwrap_or("");
            let b = parts.next();
            // ovs-ofctl accepts an empty third argument ("resubmit(,9,)").
            if let Some(extra) = parts.next().filter(|e| !e.is_empty()) {
                return Err(self.err(
                    extra,
                    format!("resubmit: argument {extra} is not supported by bpfswitch"),
                ));
            }
            (a, b)
        } else {
            (v, None)
        };
        let in_port = match port_text {
            "" => None,
            t if t.eq_ignore_ascii_case("in_port") => None,
            t => Some(value::port(t).map_err(|m| self.err(t, m))?),
        };
        let table = match table_text {
            None | Some("") => None,
            Some(t) => {
                let n = value::table_id(t).map_err(|m| self.err(t, m))? as u128;
                if n > MAX_TABLE_ID as u128 {
                    return Err(self.err(t, format!("{t}: resubmit to unknown table")));
                }
                Some(n as u8)
            }
        };
        if in_port.is_none() && table.is_none() {
            return Err(self.err(
                p.text,
                "at least one \"in_port\" or \"table\" must be specified on resubmit",
            ));
        }
        self.push(p, Action::Resubmit { in_port, table })
    }
}

/// A mask with bits `lo..=hi` set.
pub(crate) fn ones(lo: u32, hi: u32) -> u128 {
    let n = hi - lo + 1;
    let run = if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    };
    run << lo
}

/// The runs of consecutive one bits in `mask` (within `width` bits), lowest first, as
/// inclusive `(lo, hi)` bit positions, each at most 64 bits long (a longer run is cut into
/// 64-bit pieces from its low end, as Open vSwitch cuts `NXAST_REG_LOAD`s, whose value is
/// 64 bits).
pub(crate) fn mask_runs(mask: u128, width: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for (lo, hi) in contiguous_runs(mask, width) {
        let mut start = lo;
        while start <= hi {
            let end = hi.min(start + 63);
            out.push((start, end));
            start = end + 1;
        }
    }
    out
}

fn contiguous_runs(mask: u128, width: u32) -> Vec<(u32, u32)> {
    let mut runs = Vec::new();
    let mut bit = 0;
    while bit < width {
        if mask >> bit & 1 == 1 {
            let lo = bit;
            while bit < width && mask >> bit & 1 == 1 {
                bit += 1;
            }
            runs.push((lo, bit - 1));
        } else {
            bit += 1;
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_mask_bits() {
        assert_eq!(mask_runs(0xf0f, 64), vec![(0, 3), (8, 11)]);
        assert_eq!(mask_runs(0, 64), vec![]);
        assert_eq!(mask_runs(u128::MAX, 128), vec![(0, 63), (64, 127)]);
        assert_eq!(mask_runs(ones(32, 127), 128), vec![(32, 95), (96, 127)]);
        assert_eq!(ones(8, 11), 0xf00);
        assert_eq!(ones(0, 127), u128::MAX);
    }
}
