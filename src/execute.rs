//! Executes datapath actions that rewrite packet bytes (set field, VLAN push/pop), fixing
//! checksums.
//!
//! Every rewrite is located through the [`Layout`] that [`extract`] returned for the frame,
//! so no header is parsed twice on the fast path. Checksums are updated incrementally
//! (RFC 1624) from the bytes that changed: the IPv4 header checksum, and the TCP, UDP and
//! ICMPv6 checksums including their pseudo-headers when an address changes. A UDP checksum
//! of zero ("not computed") stays zero, and a computed one never becomes zero. SCTP's CRC32c
//! cannot be updated incrementally and is recomputed, preserving any error the packet
//! arrived with (as Open vSwitch does), so a corrupt packet is not silently repaired.
//!
//! Errors are `Copy` and never allocate; a failed action leaves the frame unchanged.

use crate::packet::{
    self, arp, ethertype, extract, icmpv6, ip_proto, ipv4, ipv6, sctp, tcp, udp, BufError, Layout,
    PacketBuf,
};
use ofproto_bridge::field::Field;
use ofproto_bridge::flow::{Flow, MAX_VLAN_HEADERS, VLAN_CFI};
use ofproto_bridge::{DropReason, OdpAction, PortNo};

/// Why an action could not be executed on a frame. Cheap to copy; never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The field is not part of the packet bytes (e.g. `in_port`) or cannot be rewritten
    /// (e.g. `ip_proto`, `ip_frag`, `eth_type`).
    #[error("field {0:?} cannot be written into a packet")]
    NotSettable(Field),
    /// The frame has no header carrying the field (e.g. `tcp_src` on a UDP packet).
    #[error("packet has no header for field {0:?}")]
    MissingHeader(Field),
    /// The layout points past the end of the frame (a stale layout).
    #[error("frame shorter than its layout says")]
    Truncated,
    /// Not enough headroom to push a header.
    #[error("not enough headroom to push a header")]
    NoHeadroom,
    /// A header offset would no longer fit the layout's 16-bit offsets.
    #[error("frame too long for the layout")]
    TooLong,
}

impl From<BufError> for ExecError {
    fn from(e: BufError) -> Self {
        match e {
            BufError::NoHeadroom { .. } => ExecError::NoHeadroom,
            BufError::TooShort { .. } => ExecError::Truncated,
        }
    }
}

/// A checksum field to update when bytes change.
#[derive(Clone, Copy)]
struct Csum {
    /// Offset of the 16-bit checksum field in the frame.
    at: usize,
    /// UDP rule: a zero checksum means "none" and stays zero; a computed zero becomes 0xffff.
    udp: bool,
}

/// Longest field rewritten at once (an IPv6 address) plus alignment slack.
const MAX_REWRITE: usize = 18;

/// Writes `new` at `at`, updating each checksum in `csums` incrementally. `base` is an offset
/// whose parity is that of the checksummed data's start (16-bit word alignment).
fn rewrite(
    buf: &mut [u8],
    at: usize,
    new: &[u8],
    base: usize,
    csums: &[Option<Csum>],
) -> Result<(), ExecError> {
    let end = at + new.len();
    if end > buf.len() {
        return Err(ExecError::Truncated);
    }
    for c in csums.iter().flatten() {
        if c.at + 2 > buf.len() {
            return Err(ExecError::Truncated);
        }
    }
    // Widen the range to whole 16-bit words of the checksummed data.
    let ws = at - ((at + base) & 1);
    let we = (end + ((end + base) & 1)).min(buf.len());
    let n = we - ws;
    debug_assert!(n <= MAX_REWRITE);
    let mut old = [0u8; MAX_REWRITE];
    old[..n].copy_from_slice(&buf[ws..we]);
    buf[at..end].copy_from_slice(new);
    for c in csums.iter().flatten() {
        let cur = packet::get16(buf, c.at);
        if c.udp && cur == 0 {
            continue;
        }
        let mut v = packet::checksum::update_bytes(cur, &old[..n], &buf[ws..we]);
        if c.udp && v == 0 {
            v = 0xffff;
        }
        packet::put16(buf, c.at, v);
    }
    Ok(())
}

/// Reads `len` (at most 16) bytes at `at` as a big-endian number.
fn read_be(buf: &[u8], at: usize, len: usize) -> Result<u128, ExecError> {
    let b = buf.get(at..at + len).ok_or(ExecError::Truncated)?;
    Ok(b.iter().fold(0u128, |a, x| a << 8 | *x as u128))
}

/// Masked write of a big-endian bit field: the `len` bytes at `at` get `value` under `mask`,
/// both shifted left by `shift`.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site per field kind; a struct would only rename the arguments"
)]
fn write_bits(
    buf: &mut [u8],
    at: usize,
    len: usize,
    shift: u32,
    value: u128,
    mask: u128,
    base: usize,
    csums: &[Option<Csum>],
) -> Result<(), ExecError> {
    if len <= 8 {
        return write_bits64(buf, at, len, shift, value, mask, base, csums);
    }
    let old = read_be(buf, at, len)?;
    let m = mask << shift;
    let new = (old & !m) | ((value << shift) & m);
    if new == old {
        return Ok(());
    }
    let bytes = new.to_be_bytes();
    rewrite(buf, at, &bytes[16 - len..], base, csums)
}

/// [`write_bits`] for fields of at most 8 bytes (all but IPv6 addresses), in 64-bit
/// arithmetic; bits beyond the field's `len` bytes are dropped, as there.
#[allow(
    clippy::too_many_arguments,
    reason = "the arguments of write_bits, which it serves"
)]
#[inline]
fn write_bits64(
    buf: &mut [u8],
    at: usize,
    len: usize,
    shift: u32,
    value: u128,
    mask: u128,
    base: usize,
    csums: &[Option<Csum>],
) -> Result<(), ExecError> {
    debug_assert!((1..=8).contains(&len) && shift < 64);
    let field = buf.get_mut(at..at + len).ok_or(ExecError::Truncated)?;
    let mut w = [0u8; 8];
    w[8 - len..].copy_from_slice(field);
    let old = u64::from_be_bytes(w);
    let m = (mask << shift) as u64;
    let new = (old & !m) | (((value << shift) as u64) & m);
    if new == old {
        return Ok(());
    }
    let bytes = new.to_be_bytes();
    if csums.is_empty() {
        field.copy_from_slice(&bytes[8 - len..]);
        return Ok(());
    }
    rewrite(buf, at, &bytes[8 - len..], base, csums)
}

/// The transport checksum covering the pseudo-header, if the transport header is present.
fn l4_pseudo_csum(l: &Layout) -> Option<Csum> {
    let l4 = l.l4_payload().and(l.l4())?;
    match l.nw_proto {
        ip_proto::TCP => Some(Csum {
            at: l4 + tcp::CHECKSUM_OFFSET,
            udp: false,
        }),
        ip_proto::UDP => Some(Csum {
            at: l4 + udp::CHECKSUM_OFFSET,
            udp: true,
        }),
        ip_proto::ICMPV6 if l.is_ipv6() => Some(Csum {
            at: l4 + icmpv6::CHECKSUM_OFFSET,
            udp: false,
        }),
        _ => None,
    }
}

/// End of the IP datagram (padding excluded), clamped to the frame.
fn l3_end(buf: &[u8], l: &Layout, l3: usize) -> usize {
    let end = if l.is_ipv4() {
        l3 + read_be(buf, l3 + 2, 2).unwrap_or(0) as usize
    } else {
        l3 + ipv6::HEADER_LEN + read_be(buf, l3 + 4, 2).unwrap_or(0) as usize
    };
    end.min(buf.len())
}

/// Rewrites an SCTP port and recomputes the CRC32c, keeping any pre-existing error.
fn set_sctp_port(
    buf: &mut [u8],
    l: &Layout,
    l3: usize,
    l4: usize,
    off: usize,
    value: u128,
    mask: u128,
) -> Result<(), ExecError> {
    let end = l3_end(buf, l, l3);
    if l4 + sctp::HEADER_LEN > end {
        return Err(ExecError::Truncated);
    }
    let (stored, old_correct) = {
        let p = sctp::Packet::new_unchecked(&buf[l4..end]);
        (p.checksum(), p.compute_checksum())
    };
    write_bits(buf, l4 + off, 2, 0, value, mask, l4, &[])?;
    let mut p = sctp::Packet::new_unchecked(&mut buf[l4..end]);
    let new_correct = p.compute_checksum();
    p.set_checksum(stored ^ old_correct ^ new_correct);
    Ok(())
}

/// Writes `value` under `mask` (both in the field's own units, as in [`Field::get`]) into the
/// frame's headers located by `layout`, fixing checksums.
///
/// The frame's size and header positions do not change. Fails, leaving the frame unchanged,
/// when the frame has no header for `field` or the field is not writable. Open vSwitch's
/// datapath silently skips a set action whose header is absent (a later IP fragment has no
/// ports to rewrite), so a datapath mirroring it treats [`ExecError::MissingHeader`] as a
/// no-op.
#[inline]
pub fn set_masked<B: AsMut<[u8]> + ?Sized>(
    buf: &mut B,
    layout: &Layout,
    field: Field,
    value: u128,
    mask: u128,
) -> Result<(), ExecError> {
    let buf = buf.as_mut();
    if let Some(r) = set_fast(buf, layout, field, value, mask) {
        return r;
    }
    set_general(buf, layout, field, value, mask)
}

/// The rewrites nearly every forwarding flow carries (a whole MAC address, an IPv4 TTL), in
/// straight-line code; `None` hands the action to [`set_general`], which gives the same bytes.
#[inline]
fn set_fast(
    buf: &mut [u8],
    layout: &Layout,
    field: Field,
    value: u128,
    mask: u128,
) -> Option<Result<(), ExecError>> {
    fast_step(layout, field, value, mask)?
        .write_fast(buf)
        .map(Ok)
}

/// The straight-line step for a rewrite of `field` in frames laid out as `layout`: a whole
/// MAC address, or an IPv4 TTL; `None` for every other rewrite.
#[inline]
fn fast_step(layout: &Layout, field: Field, value: u128, mask: u128) -> Option<Step> {
    const MAC: u128 = 0xffff_ffff_ffff;
    match field {
        Field::EthDst | Field::EthSrc if mask & MAC == MAC && layout.l3().is_some() => {
            Some(Step::Mac {
                at: if field == Field::EthDst { 0 } else { 6 },
                mac: mac_bytes(value),
            })
        }
        Field::NwTtl if mask & 0xff == 0xff && layout.is_ipv4() => Some(Step::Ttl {
            l3: u16::try_from(layout.l3()?).ok()?,
            ttl: value as u8,
        }),
        _ => None,
    }
}

/// The six bytes of a MAC address held in the low 48 bits of `value`.
#[inline]
fn mac_bytes(value: u128) -> [u8; 6] {
    let b = (value as u64).to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// Sets the TTL of the IPv4 header `h` to `new`, updating the header checksum.
#[inline]
fn set_ipv4_ttl(h: &mut [u8; ipv4::HEADER_LEN], new: u8) {
    let old = h[ipv4::TTL_OFFSET];
    if old != new {
        let proto = h[ipv4::TTL_OFFSET + 1];
        h[ipv4::TTL_OFFSET] = new;
        let at = ipv4::CHECKSUM_OFFSET;
        // In native byte order: the one's-complement sum commutes with swapping the bytes of
        // every word (RFC 1071 section 2), so the stored checksum comes out the same.
        let cs = packet::checksum::update16(
            u16::from_ne_bytes([h[at], h[at + 1]]),
            u16::from_ne_bytes([old, proto]),
            u16::from_ne_bytes([new, proto]),
        );
        [h[at], h[at + 1]] = cs.to_ne_bytes();
    }
}

/// A megaflow's actions compiled for one packet layout: the rewrites at fixed offsets, the
/// extension runs, the outputs with their counter slots, what happens at the end. Compiled
/// when every action is a field rewrite, an extension action, an output, or a final drop or
/// recirculation (a VLAN push or pop or a controller copy leave the actions to
/// [`Worker::execute`]); run only on a frame with the same layout and at least
/// [`Plan::min_len`] bytes, on which it writes the same bytes and makes the same outputs as
/// executing the actions one by one, provided no extension in [`Plan::relayout_checks`]
/// can move headers of the frame (the runner asks before it starts).
///
/// [`Worker::execute`]: crate::dpif::Worker
#[derive(Clone, Debug)]
pub struct Plan {
    /// The layout the offsets are for.
    pub layout: Layout,
    /// The shortest frame every step fits in.
    pub min_len: u32,
    /// The steps, in action order.
    pub steps: smallvec::SmallVec<[Step; 4]>,
    /// The extensions whose writes, if they could move headers, would misplace a later
    /// rewrite step (their indices).
    pub relayout_checks: Box<[u32]>,
    /// Whether a step runs an extension.
    pub exts: bool,
    /// Whether a run of packets may go through the plan's steps after its lead extension (all
    /// of them if it has none) a step at a time, each step on every packet before the next
    /// ([`Plan::rewrite_all`]): no other extension, at most one output and no recirculation,
    /// so every frame is transmitted in the order packet by packet gives.
    pub batch: bool,
    /// Whether no step outputs the packet.
    pub quiet: bool,
    /// The extension of the first step, when it is the plan's only extension step and no
    /// relayout check applies: the runner may run it, then the rest as a forwarding plan.
    pub lead_ext: Option<u32>,
    /// What happens after the last step.
    pub end: PlanEnd,
}

/// Whether an extension's writes can move headers of the frames a [`Plan`] fits, as known
/// when the plan is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relayout {
    /// They cannot: the rewrites after the extension keep their offsets.
    Never,
    /// They can: no plan is compiled.
    Can,
    /// It depends on the frame: the runner asks before every run.
    Ask,
}

/// What a [`Plan`] does after its last step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanEnd {
    /// The pass ends; the packet is dropped for this reason unless a step output it.
    Drop(DropReason),
    /// The packet goes through the caches again with this recirculation id.
    Recirc(u32),
}

/// One step of a [`Plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Write a whole MAC address at byte `at` (0: destination, 6: source).
    Mac {
        /// Offset in the frame.
        at: u8,
        /// The address.
        mac: [u8; 6],
    },
    /// Set the TTL of the IPv4 header at `l3`, fixing its checksum.
    Ttl {
        /// Offset of the IPv4 header.
        l3: u16,
        /// The new TTL.
        ttl: u8,
    },
    /// Any other rewrite: the `SetMasked` action at this index, through [`set_masked`].
    Set(u16),
    /// Run the extension with this index; `ordinal` numbers it among the plan's extension
    /// steps (which one stopped the packet, for the megaflow's counters).
    Ext {
        /// The extension's index.
        idx: u32,
        /// Its ordinal among the `Bpf` actions.
        ordinal: u16,
    },
    /// Transmit the frame as it is now on `port`, counted in the caller's counter `slot`.
    Output {
        /// The port.
        port: PortNo,
        /// The caller's index for the port's counters.
        slot: u32,
    },
}

impl Step {
    /// The frame length a MAC or TTL step writes up to (0 for the others).
    #[inline]
    fn end(self) -> usize {
        match self {
            Step::Mac { at, .. } => at as usize + 6,
            Step::Ttl { l3, .. } => l3 as usize + ipv4::HEADER_LEN,
            Step::Set(_) | Step::Ext { .. } | Step::Output { .. } => 0,
        }
    }

    /// Writes a MAC or TTL step into `frame`; `None` if the frame is shorter than the step
    /// needs or the step is another kind.
    #[inline]
    fn write_fast(self, frame: &mut [u8]) -> Option<()> {
        match self {
            Step::Mac { at, mac } => {
                let at = at as usize;
                frame.get_mut(at..at + 6)?.copy_from_slice(&mac);
            }
            Step::Ttl { l3, ttl } => {
                let l3 = l3 as usize;
                set_ipv4_ttl(frame.get_mut(l3..)?.first_chunk_mut()?, ttl);
            }
            Step::Set(_) | Step::Ext { .. } | Step::Output { .. } => return None,
        }
        Some(())
    }
}

impl Plan {
    /// Compiles `actions` for frames laid out as `layout`; `slot` gives each output port's
    /// counter index, `relayout` what is known about an extension (by index) that a rewrite
    /// follows. `None` if an action needs the general executor.
    pub fn compile(
        actions: &[OdpAction],
        layout: &Layout,
        mut slot: impl FnMut(PortNo) -> u32,
        mut relayout: impl FnMut(u32) -> Relayout,
    ) -> Option<Plan> {
        let mut steps = smallvec::SmallVec::<[Step; 4]>::new();
        let mut min_len = 0usize;
        let mut end = PlanEnd::Drop(DropReason::Action);
        let mut ordinal = 0u16;
        for (i, a) in actions.iter().enumerate() {
            let last = i + 1 == actions.len();
            let step = match *a {
                OdpAction::Output(port) => Step::Output {
                    port,
                    slot: slot(port),
                },
                OdpAction::SetMasked { field, value, mask } => {
                    match fast_step(layout, field, value, mask) {
                        Some(step) => {
                            min_len = min_len.max(step.end());
                            step
                        }
                        None => Step::Set(u16::try_from(i).ok()?),
                    }
                }
                OdpAction::Bpf(idx) => {
                    let step = Step::Ext { idx, ordinal };
                    ordinal = ordinal.checked_add(1)?;
                    step
                }
                // Translation puts a drop or a recirculation last.
                OdpAction::Drop(reason) if last => {
                    end = PlanEnd::Drop(reason);
                    continue;
                }
                OdpAction::Recirc(id) if last => {
                    end = PlanEnd::Recirc(id);
                    continue;
                }
                _ => return None,
            };
            steps.push(step);
        }
        // An extension followed by a rewrite must not have moved the headers it rewrites.
        let mut relayout_checks = Vec::new();
        let mut rewrite_after = false;
        for step in steps.iter().rev() {
            match *step {
                Step::Ext { idx, .. } if rewrite_after && !relayout_checks.contains(&idx) => {
                    match relayout(idx) {
                        Relayout::Never => {}
                        Relayout::Can => return None,
                        Relayout::Ask => relayout_checks.push(idx),
                    }
                }
                Step::Mac { .. } | Step::Ttl { .. } | Step::Set(_) => rewrite_after = true,
                _ => {}
            }
        }
        let lead_ext = match steps.first() {
            Some(&Step::Ext { idx, .. }) if ordinal == 1 && relayout_checks.is_empty() => Some(idx),
            _ => None,
        };
        let outputs = steps
            .iter()
            .filter(|s| matches!(s, Step::Output { .. }))
            .count();
        let batch = (ordinal == 0 || ordinal == 1 && lead_ext.is_some())
            && matches!(end, PlanEnd::Drop(_))
            && outputs <= 1;
        Some(Plan {
            layout: *layout,
            min_len: u32::try_from(min_len).ok()?,
            steps,
            relayout_checks: relayout_checks.into(),
            exts: ordinal > 0,
            lead_ext,
            batch,
            quiet: outputs == 0,
            end,
        })
    }

    /// Whether the plan applies to a frame of `len` bytes laid out as `layout`.
    #[inline]
    pub fn fits(&self, layout: &Layout, len: usize) -> bool {
        self.layout == *layout && len >= self.min_len as usize
    }

    /// Runs the rewrite `step` (not an output or an extension) on `frame`, which the plan [`fits`](Plan::fits);
    /// `actions` are the ones the plan was compiled from.
    #[inline]
    pub fn rewrite(&self, step: Step, actions: &[OdpAction], frame: &mut [u8]) {
        match step {
            Step::Mac { .. } | Step::Ttl { .. } => {
                // The plan fits the frame: it is at least `step.end()` bytes long.
                let _ = step.write_fast(frame);
            }
            Step::Set(i) => {
                if let Some(&OdpAction::SetMasked { field, value, mask }) = actions.get(i as usize)
                {
                    // A header the packet lacks is skipped silently, as Open vSwitch does.
                    let _ = set_masked(frame, &self.layout, field, value, mask);
                }
            }
            Step::Ext { .. } | Step::Output { .. } => {}
        }
    }

    /// [`Plan::rewrite`] on every packet of `pkts`, all of which the plan fits: the step is
    /// told apart once, not once a packet.
    #[inline]
    pub fn rewrite_all(&self, step: Step, actions: &[OdpAction], pkts: &mut [PacketBuf]) {
        match step {
            Step::Mac { at, mac } => {
                let at = at as usize;
                for p in pkts {
                    if let Some(d) = p.data_mut().get_mut(at..at + 6) {
                        d.copy_from_slice(&mac);
                    }
                }
            }
            Step::Ttl { l3, ttl } => {
                let l3 = l3 as usize;
                for p in pkts {
                    if let Some(h) = p.data_mut().get_mut(l3..).and_then(|h| h.first_chunk_mut()) {
                        set_ipv4_ttl(h, ttl);
                    }
                }
            }
            Step::Set(_) => {
                for p in pkts {
                    self.rewrite(step, actions, p.data_mut());
                }
            }
            Step::Ext { .. } | Step::Output { .. } => {}
        }
    }
}

/// [`set_masked`] for every field and mask.
#[inline(never)]
fn set_general(
    buf: &mut [u8],
    layout: &Layout,
    field: Field,
    value: u128,
    mask: u128,
) -> Result<(), ExecError> {
    use Field::*;
    let mask = mask & field.full_mask();
    if mask == 0 {
        return Ok(());
    }
    let missing = ExecError::MissingHeader(field);
    let l3 = layout.l3();
    let ip4 = layout.is_ipv4();
    let ip6 = layout.is_ipv6();
    let ip_csum = |l3: usize| {
        Some(Csum {
            at: l3 + ipv4::CHECKSUM_OFFSET,
            udp: false,
        })
    };
    match field {
        InPort | Metadata | EthType | IpProto | IpFrag => Err(ExecError::NotSettable(field)),
        EthDst | EthSrc => {
            l3.ok_or(missing)?;
            let at = if field == EthDst { 0 } else { 6 };
            write_bits(buf, at, 6, 0, value, mask, 0, &[])
        }
        VlanTci | VlanVid | VlanPcp => {
            if layout.n_vlans == 0 {
                return Err(missing);
            }
            // The flow key's CFI bit means "present"; in the tag that bit is DEI, which a
            // whole-TCI write clears (as Open vSwitch's pop-then-push does).
            let cfi = VLAN_CFI as u128;
            let (shift, v, m) = match field {
                VlanTci => (0, value & !cfi, mask),
                VlanVid => (0, value, mask & 0x0fff),
                _ => (13, value, mask),
            };
            write_bits(buf, 14, 2, shift, v, m, 0, &[])
        }
        IpDscp | IpEcn => {
            let shift = if field == IpDscp { 2 } else { 0 };
            if ip4 {
                let l3 = l3.ok_or(missing)?;
                write_bits(
                    buf,
                    l3 + ipv4::TOS_OFFSET,
                    1,
                    shift,
                    value,
                    mask,
                    l3,
                    &[ip_csum(l3)],
                )
            } else if ip6 {
                let l3 = l3.ok_or(missing)?;
                write_bits(buf, l3, 4, 20 + shift, value, mask, l3, &[])
            } else {
                Err(missing)
            }
        }
        NwTtl => {
            let l3 = l3.ok_or(missing)?;
            if ip4 {
                write_bits(
                    buf,
                    l3 + ipv4::TTL_OFFSET,
                    1,
                    0,
                    value,
                    mask,
                    l3,
                    &[ip_csum(l3)],
                )
            } else if ip6 {
                write_bits(buf, l3 + ipv6::HOP_LIMIT_OFFSET, 1, 0, value, mask, l3, &[])
            } else {
                Err(missing)
            }
        }
        Ipv4Src | Ipv4Dst if ip4 => {
            let l3 = l3.ok_or(missing)?;
            let at = l3
                + if field == Ipv4Src {
                    ipv4::SRC_OFFSET
                } else {
                    ipv4::DST_OFFSET
                };
            write_bits(
                buf,
                at,
                4,
                0,
                value,
                mask,
                l3,
                &[ip_csum(l3), l4_pseudo_csum(layout)],
            )
        }
        Ipv6Src | Ipv6Dst if ip6 => {
            let l3 = l3.ok_or(missing)?;
            let at = l3
                + if field == Ipv6Src {
                    ipv6::SRC_OFFSET
                } else {
                    ipv6::DST_OFFSET
                };
            write_bits(buf, at, 16, 0, value, mask, l3, &[l4_pseudo_csum(layout)])
        }
        Ipv6Label if ip6 => write_bits(buf, l3.ok_or(missing)?, 4, 0, value, mask, 0, &[]),
        TcpSrc | TcpDst | TcpFlags
            if layout.nw_proto == ip_proto::TCP && layout.l4_payload().is_some() =>
        {
            let l4 = layout.l4().ok_or(missing)?;
            let cs = [Some(Csum {
                at: l4 + tcp::CHECKSUM_OFFSET,
                udp: false,
            })];
            match field {
                TcpSrc => write_bits(buf, l4, 2, 0, value, mask, l4, &cs),
                TcpDst => write_bits(buf, l4 + 2, 2, 0, value, mask, l4, &cs),
                _ => write_bits(buf, l4 + tcp::OFF_FLAGS_OFFSET, 2, 0, value, mask, l4, &cs),
            }
        }
        UdpSrc | UdpDst if layout.nw_proto == ip_proto::UDP && layout.l4_payload().is_some() => {
            let l4 = layout.l4().ok_or(missing)?;
            let cs = [Some(Csum {
                at: l4 + udp::CHECKSUM_OFFSET,
                udp: true,
            })];
            let off = if field == UdpSrc { 0 } else { 2 };
            write_bits(buf, l4 + off, 2, 0, value, mask, l4, &cs)
        }
        SctpSrc | SctpDst if layout.nw_proto == ip_proto::SCTP && layout.l4_payload().is_some() => {
            let (l3, l4) = (l3.ok_or(missing)?, layout.l4().ok_or(missing)?);
            set_sctp_port(
                buf,
                layout,
                l3,
                l4,
                if field == SctpSrc { 0 } else { 2 },
                value,
                mask,
            )
        }
        Icmpv4Type | Icmpv4Code
            if ip4 && layout.nw_proto == ip_proto::ICMP && layout.l4_payload().is_some() =>
        {
            let l4 = layout.l4().ok_or(missing)?;
            let cs = [Some(Csum {
                at: l4 + 2,
                udp: false,
            })];
            write_bits(
                buf,
                l4 + (field == Icmpv4Code) as usize,
                1,
                0,
                value,
                mask,
                l4,
                &cs,
            )
        }
        Icmpv6Type | Icmpv6Code
            if ip6 && layout.nw_proto == ip_proto::ICMPV6 && layout.l4_payload().is_some() =>
        {
            let l4 = layout.l4().ok_or(missing)?;
            let cs = [Some(Csum {
                at: l4 + icmpv6::CHECKSUM_OFFSET,
                udp: false,
            })];
            write_bits(
                buf,
                l4 + (field == Icmpv6Code) as usize,
                1,
                0,
                value,
                mask,
                l4,
                &cs,
            )
        }
        ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha
            if matches!(layout.dl_type, ethertype::ARP | ethertype::RARP) =>
        {
            let l3 = l3.ok_or(missing)?;
            let ok = buf
                .get(l3..)
                .map(|b| arp::Packet::new_checked(b).map(|p| p.is_ethernet_ipv4()));
            if ok != Some(Ok(true)) {
                return Err(missing);
            }
            let (off, len) = match field {
                ArpOp => (6, 2),
                ArpSha => (8, 6),
                ArpSpa => (14, 4),
                ArpTha => (18, 6),
                _ => (24, 4),
            };
            write_bits(buf, l3 + off, len, 0, value, mask, l3, &[])
        }
        NdTarget | NdSll | NdTll
            if ip6 && layout.nw_proto == ip_proto::ICMPV6 && layout.l4_payload().is_some() =>
        {
            let l4 = layout.l4().ok_or(missing)?;
            let end = l3_end(buf, layout, l3.ok_or(missing)?);
            if l4 > end {
                return Err(ExecError::Truncated);
            }
            let cs = [Some(Csum {
                at: l4 + icmpv6::CHECKSUM_OFFSET,
                udp: false,
            })];
            let at = {
                let m = icmpv6::Packet::new_checked(&buf[l4..end]).map_err(|_| missing)?;
                if !m.is_nd() || m.nd_target().is_none() {
                    return Err(missing);
                }
                match field {
                    NdTarget => l4 + icmpv6::ND_TARGET_OFFSET,
                    _ => {
                        let kind = if field == NdSll {
                            icmpv6::OPT_SOURCE_LLADDR
                        } else {
                            icmpv6::OPT_TARGET_LLADDR
                        };
                        let opt = m
                            .nd_options()
                            .find(|o| o.kind == kind && o.lladdr().is_some())
                            .ok_or(missing)?;
                        l4 + icmpv6::ND_OPTIONS_OFFSET + opt.offset + icmpv6::ND_OPT_LLADDR_OFFSET
                    }
                }
            };
            let len = if field == NdTarget { 16 } else { 6 };
            write_bits(buf, at, len, 0, value, mask, l4, &cs)
        }
        MplsLabel | MplsTc | MplsBos | MplsTtl => {
            let at = layout.l2_5().ok_or(missing)?;
            let shift = match field {
                MplsLabel => 12,
                MplsTc => 9,
                MplsBos => 8,
                _ => 0,
            };
            write_bits(buf, at, 4, shift, value, mask, 0, &[])
        }
        _ => Err(missing),
    }
}

/// Re-extracts the layout of a frame whose tag count may exceed what the layout records.
fn relayout(buf: &PacketBuf) -> Layout {
    let mut scratch = Flow::default();
    extract(buf.data(), 0, &mut scratch)
}

/// Pushes a VLAN tag (`tpid`, `tci` without the CFI "present" bit, which is cleared as Open
/// vSwitch does) in front of any existing tags, using the buffer's headroom. Returns the new
/// layout.
pub fn push_vlan(
    buf: &mut PacketBuf,
    layout: &Layout,
    tpid: u16,
    tci: u16,
) -> Result<Layout, ExecError> {
    if buf.len() < packet::ethernet::HEADER_LEN {
        return Err(ExecError::MissingHeader(Field::VlanTci));
    }
    let new_layout = if (layout.n_vlans as usize) < MAX_VLAN_HEADERS {
        let mut l = layout.shifted(4).ok_or(ExecError::TooLong)?;
        l.n_vlans += 1;
        Some(l)
    } else {
        None
    };
    buf.push_head(4)?;
    let d = buf.data_mut();
    d.copy_within(4..16, 0);
    packet::put16(d, 12, tpid);
    packet::put16(d, 14, tci & !VLAN_CFI);
    Ok(match new_layout {
        Some(l) => l,
        None => relayout(buf),
    })
}

/// Pops the outermost VLAN tag, if the frame has one (otherwise the frame is unchanged).
/// Returns the new layout.
pub fn pop_vlan(buf: &mut PacketBuf, layout: &Layout) -> Result<Layout, ExecError> {
    if layout.n_vlans == 0 {
        return Ok(*layout);
    }
    if buf.len() < packet::ethernet::HEADER_LEN + 4 {
        return Err(ExecError::Truncated);
    }
    let d = buf.data_mut();
    d.copy_within(0..12, 4);
    buf.pull_head(4)?;
    if layout.n_vlans == 1 {
        let mut l = layout.shifted(-4).ok_or(ExecError::Truncated)?;
        l.n_vlans = 0;
        Ok(l)
    } else {
        Ok(relayout(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::builder::{self, L4};
    use crate::packet::{checksum, ethernet, icmpv4};
    use proptest::prelude::*;

    /// The frame with every checksum recomputed from scratch (a zero UDP checksum stays zero).
    fn recomputed(f: &[u8]) -> Vec<u8> {
        let mut b = f.to_vec();
        let mut flow = Flow::default();
        let l = extract(&b, 0, &mut flow);
        let Some(l3) = l.l3() else { return b };
        if l.is_ipv4() {
            ipv4::Packet::new_unchecked(&mut b[l3..]).fill_checksum();
        }
        let (Some(l4), Some(_)) = (l.l4(), l.l4_payload()) else {
            return b;
        };
        let end = l3_end(&b, &l, l3);
        let len = (end - l4) as u32;
        let pseudo = if l.is_ipv4() {
            checksum::pseudo_v4(
                flow.nw_src.to_be_bytes(),
                flow.nw_dst.to_be_bytes(),
                l.nw_proto,
                len,
            )
        } else {
            checksum::pseudo_v6(&flow.ipv6_src, &flow.ipv6_dst, l.nw_proto, len)
        };
        let seg = &mut b[l4..end];
        match l.nw_proto {
            ip_proto::TCP => tcp::Packet::new_unchecked(seg).fill_checksum(pseudo),
            ip_proto::UDP => {
                let mut u = udp::Packet::new_unchecked(seg);
                if u.checksum() != 0 {
                    u.fill_checksum(pseudo);
                }
            }
            ip_proto::ICMP => icmpv4::Packet::new_unchecked(seg).fill_checksum(),
            ip_proto::ICMPV6 => icmpv6::Packet::new_unchecked(seg).fill_checksum(pseudo),
            ip_proto::SCTP => sctp::Packet::new_unchecked(seg).fill_checksum(),
            _ => {}
        }
        b
    }

    /// Checks every checksum of the frame from scratch (IPv4 header, TCP/UDP/ICMP/ICMPv6, SCTP).
    fn checksums_ok(f: &[u8]) -> Result<(), String> {
        let mut flow = Flow::default();
        let l = extract(f, 0, &mut flow);
        let Some(l3) = l.l3() else { return Ok(()) };
        if l.is_ipv4() {
            let ip = ipv4::Packet::new_checked(&f[l3..]).unwrap();
            if !ip.verify_checksum() {
                return Err("ipv4 header checksum".into());
            }
        }
        let (Some(l4), Some(_)) = (l.l4(), l.l4_payload()) else {
            return Ok(());
        };
        let end = l3_end(f, &l, l3);
        let seg = &f[l4..end];
        let pseudo = if l.is_ipv4() {
            checksum::pseudo_v4(
                flow.nw_src.to_be_bytes(),
                flow.nw_dst.to_be_bytes(),
                l.nw_proto,
                seg.len() as u32,
            )
        } else {
            checksum::pseudo_v6(&flow.ipv6_src, &flow.ipv6_dst, l.nw_proto, seg.len() as u32)
        };
        let ok = match l.nw_proto {
            ip_proto::TCP => tcp::Packet::new_checked(seg)
                .unwrap()
                .verify_checksum(pseudo),
            ip_proto::UDP => udp::Packet::new_checked(seg)
                .unwrap()
                .verify_checksum(pseudo),
            ip_proto::ICMP => icmpv4::Packet::new_checked(seg).unwrap().verify_checksum(),
            ip_proto::ICMPV6 => icmpv6::Packet::new_checked(seg)
                .unwrap()
                .verify_checksum(pseudo),
            ip_proto::SCTP => sctp::Packet::new_checked(seg).unwrap().verify_checksum(),
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("l4 checksum proto {}", l.nw_proto))
        }
    }

    fn eth(vlans: [Option<ethernet::VlanTag>; 2], et: u16) -> ethernet::Repr {
        ethernet::Repr {
            dst: [2, 0, 0, 0, 0, 2],
            src: [2, 0, 0, 0, 0, 1],
            vlans,
            ethertype: et,
        }
    }

    /// One frame per protocol the rewrites touch.
    fn frames() -> Vec<Vec<u8>> {
        let ip4 = ipv4::Repr {
            src: 0x0a00_0001,
            dst: 0xc0a8_0101,
            ttl: 64,
            tos: 0x10,
            ..Default::default()
        };
        let ip6 = ipv6::Repr {
            src: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            dst: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            hop_limit: 255,
            traffic_class: 0x22,
            flow_label: 0x12345,
            ..Default::default()
        };
        let tcp = L4::Tcp(tcp::Repr {
            src_port: 1000,
            dst_port: 80,
            flags: 0x18,
            seq: 7,
            ..Default::default()
        });
        let udp = L4::Udp(udp::Repr {
            src_port: 5000,
            dst_port: 53,
        });
        let udp0 = L4::UdpNoChecksum(udp::Repr {
            src_port: 5000,
            dst_port: 53,
        });
        let sctp = L4::Sctp(sctp::Repr {
            src_port: 36412,
            dst_port: 36412,
            verification_tag: 9,
        });
        let icmp = L4::Icmpv4(icmpv4::Repr {
            msg_type: 8,
            code: 0,
            rest: [0, 1, 0, 2],
        });
        let nd = L4::Nd(icmpv6::NdRepr {
            msg_type: icmpv6::NEIGHBOR_ADVERT,
            flags: 0x6000_0000,
            target: ip6.src,
            sll: Some([1, 2, 3, 4, 5, 6]),
            tll: Some([7, 8, 9, 10, 11, 12]),
        });
        let tag = Some(ethernet::VlanTag {
            tpid: 0x8100,
            tci: 0x2064,
        });
        let payload = b"0123456789abcdefg";
        let mut v = vec![];
        for l4 in [tcp, udp, udp0, sctp, icmp] {
            v.push(builder::ethernet(
                &eth([None, None], 0x0800),
                &builder::ipv4(&ip4, &l4, payload),
            ));
            v.push(builder::ethernet(
                &eth([tag, None], 0x0800),
                &builder::ipv4(&ip4, &l4, &payload[..3]),
            ));
        }
        for l4 in [tcp, udp, sctp, nd] {
            v.push(builder::ethernet(
                &eth([None, None], 0x86dd),
                &builder::ipv6(&ip6, &[], &l4, payload),
            ));
        }
        let a = arp::Repr {
            op: 1,
            sha: [1; 6],
            spa: 1,
            tha: [0; 6],
            tpa: 2,
        };
        v.push(builder::ethernet(
            &eth([tag, None], 0x0806),
            &builder::arp(&a),
        ));
        let m = builder::mpls(
            &[packet::mpls::Repr {
                label: 100,
                tc: 2,
                bos: true,
                ttl: 9,
            }],
            &builder::ipv4(&ip4, &udp, b""),
        );
        v.push(builder::ethernet(&eth([None, None], 0x8847), &m));
        v
    }

    #[test]
    fn sample_frames_have_valid_checksums() {
        for f in frames() {
            checksums_ok(&f).unwrap();
            assert_eq!(recomputed(&f), f);
        }
    }

    #[test]
    fn not_settable_and_missing() {
        let f = &frames()[0];
        let mut b = f.clone();
        let mut flow = Flow::default();
        let l = extract(&b, 0, &mut flow);
        assert_eq!(
            set_masked(&mut b[..], &l, Field::InPort, 1, !0),
            Err(ExecError::NotSettable(Field::InPort))
        );
        assert_eq!(
            set_masked(&mut b[..], &l, Field::UdpSrc, 1, !0),
            Err(ExecError::MissingHeader(Field::UdpSrc))
        );
        assert_eq!(
            set_masked(&mut b[..], &l, Field::VlanVid, 1, !0),
            Err(ExecError::MissingHeader(Field::VlanVid))
        );
        assert_eq!(
            set_masked(&mut b[..], &l, Field::Ipv6Src, 1, !0),
            Err(ExecError::MissingHeader(Field::Ipv6Src))
        );
        assert_eq!(&b, f);
        // A stale layout pointing past the frame is refused, not a panic.
        assert_eq!(
            set_masked(&mut b[..40], &l, Field::TcpDst, 1, !0),
            Err(ExecError::Truncated)
        );
    }

    #[test]
    fn udp_zero_checksum_stays_zero() {
        let f = &frames()[4];
        let mut b = f.clone();
        let mut flow = Flow::default();
        let l = extract(&b, 0, &mut flow);
        let l4 = l.l4().unwrap();
        assert_eq!(packet::get16(&b, l4 + 6), 0);
        set_masked(&mut b[..], &l, Field::UdpDst, 99, 0xffff).unwrap();
        set_masked(&mut b[..], &l, Field::Ipv4Src, 0x01020304, !0).unwrap();
        assert_eq!(packet::get16(&b, l4 + 6), 0);
        extract(&b, 0, &mut flow);
        assert_eq!((flow.tp_dst, flow.nw_src), (99, 0x01020304));
    }

    #[test]
    fn sctp_keeps_a_bad_crc_bad() {
        let mut b = frames()[6].clone();
        let mut flow = Flow::default();
        let l = extract(&b, 0, &mut flow);
        assert_eq!(l.nw_proto, ip_proto::SCTP);
        let l4 = l.l4().unwrap();
        b[l4 + 8] ^= 0x55;
        set_masked(&mut b[..], &l, Field::SctpDst, 1, 0xffff).unwrap();
        assert!(checksums_ok(&b).is_err());
        b[l4 + 8] ^= 0x55;
        assert!(checksums_ok(&b).is_ok());
    }

    #[test]
    fn push_pop_vlan() {
        let f = &frames()[0];
        let mut pb = PacketBuf::from_slice(f);
        let mut flow = Flow::default();
        let l0 = extract(pb.data(), 0, &mut flow);
        let l1 = push_vlan(&mut pb, &l0, 0x88a8, 0x3005 | VLAN_CFI).unwrap();
        assert_eq!(l1, extract(pb.data(), 0, &mut flow));
        assert_eq!(flow.vlans[0].tpid, 0x88a8);
        assert_eq!(flow.vlans[0].tci, 0x3005 | VLAN_CFI);
        let l2 = push_vlan(&mut pb, &l1, 0x8100, 7).unwrap();
        assert_eq!(l2, extract(pb.data(), 0, &mut flow));
        // A third tag: the flow key records two, and the layout follows extract().
        let l3 = push_vlan(&mut pb, &l2, 0x8100, 8).unwrap();
        assert_eq!(l3, extract(pb.data(), 0, &mut flow));
        // Tags are now 0x8100, 0x8100, 0x88a8: the third TPID is read as the Ethertype.
        assert_eq!(flow.dl_type, 0x88a8);
        let mut l = l3;
        for _ in 0..3 {
            l = pop_vlan(&mut pb, &l).unwrap();
            assert_eq!(l, extract(pb.data(), 0, &mut flow));
        }
        assert_eq!(pb.data(), &f[..]);
        assert_eq!(pop_vlan(&mut pb, &l).unwrap(), l);
        assert_eq!(pb.data(), &f[..]);
        assert_eq!(pb.headroom(), packet::HEADROOM);
    }

    #[test]
    fn push_vlan_without_headroom() {
        let f = &frames()[0];
        let mut pb = PacketBuf::from_slice(f);
        let mut flow = Flow::default();
        let l = extract(pb.data(), 0, &mut flow);
        pb.set_bounds(2, 2 + f.len()).unwrap();
        pb.data_mut().copy_from_slice(f);
        assert_eq!(
            push_vlan(&mut pb, &l, 0x8100, 1),
            Err(ExecError::NoHeadroom)
        );
        assert_eq!(pb.data(), &f[..]);
    }

    fn settable() -> impl Strategy<Value = Field> {
        use Field::*;
        prop::sample::select(vec![
            EthDst, EthSrc, VlanTci, VlanVid, VlanPcp, IpDscp, IpEcn, NwTtl, Ipv4Src, Ipv4Dst,
            Ipv6Src, Ipv6Dst, Ipv6Label, TcpSrc, TcpDst, TcpFlags, UdpSrc, UdpDst, SctpSrc,
            SctpDst, Icmpv4Type, Icmpv4Code, Icmpv6Type, Icmpv6Code, ArpOp, ArpSpa, ArpTpa, ArpSha,
            ArpTha, NdTarget, NdSll, NdTll, MplsLabel, MplsTc, MplsBos, MplsTtl,
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// A plan that fits a frame writes the bytes, and makes the outputs (of the frame as
        /// it is at each), that executing its actions one by one makes; a frame the plan
        /// does not fit is left to the general executor.
        #[test]
        fn plans_execute_as_the_actions(i in 0usize..32,
                                        sets in prop::collection::vec(
                                            (prop_oneof![Just(Field::EthDst), Just(Field::EthSrc),
                                                         Just(Field::NwTtl), settable()],
                                             any::<u128>(), any::<bool>(), any::<u128>(),
                                             any::<bool>()), 0..5),
                                        end in 0u8..3, ext_at in prop::option::of(0usize..12),
                                        known in prop::sample::select(vec![
                                            Relayout::Never, Relayout::Can, Relayout::Ask]),
                                        cut in 0usize..40) {
            let all = frames();
            let f = &all[i % all.len()];
            let l = extract(f, 0, &mut Flow::default());
            let mut actions = Vec::new();
            for (n, &(field, value, full, mask, out)) in sets.iter().enumerate() {
                let mask = if full { u128::MAX } else { mask };
                actions.push(OdpAction::SetMasked { field, value, mask });
                if out {
                    actions.push(OdpAction::Output(n as u32 + 1));
                }
            }
            if let Some(at) = ext_at {
                actions.insert(at.min(actions.len()), OdpAction::Bpf(7));
            }
            let want_end = match end {
                0 => PlanEnd::Drop(DropReason::Action),
                1 => PlanEnd::Drop(DropReason::TableMiss),
                _ => PlanEnd::Recirc(9),
            };
            match want_end {
                PlanEnd::Drop(DropReason::Action) => {}
                PlanEnd::Drop(r) => actions.push(OdpAction::Drop(r)),
                PlanEnd::Recirc(id) => actions.push(OdpAction::Recirc(id)),
            }
            // The extension is a step of its own; when a rewrite follows it, what is known
            // about its relayout decides whether the plan exists and checks it.
            let ext = actions.iter().position(|a| matches!(a, OdpAction::Bpf(_)));
            let rewrite_after = ext.is_some_and(|a| {
                actions[a..].iter().any(|a| matches!(a, OdpAction::SetMasked { .. }))
            });
            let plan = Plan::compile(&actions, &l, |p| p + 100, |i| {
                assert_eq!(i, 7, "asked about the extension");
                known
            });
            if rewrite_after && known == Relayout::Can {
                prop_assert!(plan.is_none());
                return Ok(());
            }
            let plan = plan.expect("only plannable actions");
            prop_assert_eq!(plan.end, want_end);
            let ext_step = plan.steps.iter().position(|s| matches!(s, Step::Ext { .. }));
            prop_assert_eq!(ext.is_some(), ext_step.is_some());
            if let (Some(_), Some(s)) = (ext, ext_step) {
                prop_assert_eq!(plan.steps[s], Step::Ext { idx: 7, ordinal: 0 });
                prop_assert_eq!(plan.relayout_checks.to_vec(),
                                if rewrite_after && known == Relayout::Ask {
                                    vec![7]
                                } else {
                                    vec![]
                                });
            } else {
                prop_assert!(plan.relayout_checks.is_empty());
            }
            prop_assert_eq!(plan.lead_ext.is_some(),
                            ext_step == Some(0) && plan.relayout_checks.is_empty());
            prop_assert!(plan.lead_ext.is_none_or(|x| x == 7));
            // Frames of other lengths: shorter ones may not fit the plan.
            let frame = if i >= all.len() { &f[..f.len().saturating_sub(cut)] } else { &f[..] };
            if !plan.fits(&l, frame.len()) {
                prop_assert!(frame.len() < plan.min_len as usize);
                return Ok(());
            }
            let (mut a, mut b) = (frame.to_vec(), frame.to_vec());
            let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
            for &step in &plan.steps {
                match step {
                    Step::Output { port, slot } => {
                        prop_assert_eq!(slot, port + 100);
                        out_a.push((port, a.clone()));
                    }
                    Step::Ext { .. } => {}
                    _ => plan.rewrite(step, &actions, &mut a),
                }
            }
            for act in &actions {
                match *act {
                    OdpAction::SetMasked { field, value, mask } => {
                        let _ = set_masked(&mut b[..], &l, field, value, mask);
                    }
                    OdpAction::Output(p) => out_b.push((p, b.clone())),
                    _ => {}
                }
            }
            prop_assert_eq!(a, b);
            prop_assert_eq!(out_a, out_b);
        }

        /// Actions a plan cannot hold leave them to the general executor.
        #[test]
        fn plans_refuse_what_they_cannot_hold(i in 0usize..8, at in 0usize..3,
                                              which in 0usize..5) {
            let all = frames();
            let l = extract(&all[i % all.len()], 0, &mut Flow::default());
            // A drop or a recirculation anywhere but last, a VLAN push or pop, a controller
            // copy.
            let other = [
                OdpAction::Recirc(1),
                OdpAction::PushVlan { tpid: 0x8100, tci: 1 },
                OdpAction::PopVlan,
                OdpAction::Userspace { max_len: 0 },
                OdpAction::Drop(DropReason::Action),
            ][which].clone();
            let mut actions = vec![OdpAction::Output(1), OdpAction::Output(2)];
            actions.insert(at.min(1), other);
            prop_assert!(Plan::compile(&actions, &l, |_| 0, |_| Relayout::Ask).is_none());
        }

        /// The fast paths write exactly the bytes the general path writes.
        #[test]
        fn fast_paths_equal_the_general_path(i in 0usize..32,
                                             field in prop::sample::select(vec![
                                                 Field::EthDst, Field::EthSrc, Field::NwTtl]),
                                             value in any::<u128>(), full in any::<bool>(),
                                             mask in any::<u128>()) {
            let all = frames();
            let f = &all[i % all.len()];
            let mut l = extract(f, 0, &mut Flow::default());
            if i >= all.len() {
                // A layout that no longer fits the frame (a stale one).
                l.l3 = f.len() as u16;
            }
            let mask = if full { u128::MAX } else { mask };
            let (mut a, mut b) = (f.clone(), f.clone());
            let fast = set_masked(&mut a[..], &l, field, value, mask);
            let general = set_general(&mut b[..], &l, field, value, mask);
            prop_assert_eq!(fast, general);
            prop_assert_eq!(a, b);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// After any rewrite, every checksum equals a full recomputation, extract() shows the
        /// new value under the mask, and no other flow field changed.
        #[test]
        fn rewrite_fixes_checksums_and_shows_in_flow(i in 0usize..16, field in settable(),
                                                     value in any::<u128>(), mask in any::<u128>(),
                                                     full in any::<bool>()) {
            let all = frames();
            let f = &all[i % all.len()];
            let mut b = f.clone();
            let mut before = Flow::default();
            let l = extract(&b, 0, &mut before);
            let mask = if full { field.full_mask() } else { mask & field.full_mask() };
            match set_masked(&mut b[..], &l, field, value, mask) {
                Err(ExecError::MissingHeader(_)) => { prop_assert_eq!(&b, f); return Ok(()); }
                Err(e) => { prop_assert!(false, "{:?}", e); }
                Ok(()) => {}
            }
            if mask == 0 {
                prop_assert_eq!(&b, f);
                return Ok(());
            }
            prop_assert!(checksums_ok(&b).is_ok(), "{:?} {:?}", field, checksums_ok(&b));
            // Byte for byte, the incremental updates equal a full recomputation.
            prop_assert_eq!(&b, &recomputed(&b), "{:?}", field);
            let mut after = Flow::default();
            let l2 = extract(&b, 0, &mut after);
            // Header positions do not move, except that clearing MPLS bottom-of-stack makes
            // extract() read further label stack entries.
            if field != Field::MplsBos {
                prop_assert_eq!(l2, l);
            }
            // The expected key: the field's bits under the mask replaced. Fields that alias
            // the same flow bits (ARP op / nw_proto) and the VLAN CFI bit are special.
            let mut want = before;
            let old = field.get(&before);
            let mut m = mask;
            if matches!(field, Field::VlanTci | Field::VlanVid) {
                m &= !(VLAN_CFI as u128);
            }
            field.set(&mut want, (old & !m) | (value & m));
            if field == Field::ArpOp {
                let op = (old & !m) | (value & m);
                want.nw_proto = if op <= 0xff { op as u8 } else { 0 };
            }
            if matches!(field, Field::Icmpv6Type | Field::Icmpv6Code)
                && !(want.tp_dst == 0 && matches!(want.tp_src, 135 | 136))
            {
                // No longer neighbour discovery: no ND fields.
                want.nd_target = [0; 16];
                want.arp_sha = [0; 6];
                want.arp_tha = [0; 6];
            }
            prop_assert_eq!(after, want, "{:?}", field);
        }
    }
}
