//! The benchmark traffic and flow tables of `benches/workloads/WORKLOADS.md`, generated in
//! memory: the same frames byte for byte as `benches/workloads/gen_pcap.py` writes.

/// Length of every benchmark frame (64 bytes on the wire with the FCS).
pub const FRAME_LEN: usize = 60;

/// The port the traffic arrives on.
pub const IN_PORT: u32 = 1;
/// The port the flow table forwards to.
pub const OUT_PORT: u32 = 2;

/// The standard flow table (port 1 in, port 2 out).
pub const FLOWS: &str = "\
table=0,priority=100,in_port=1,udp,nw_dst=10.1.0.0/16,tp_dst=53,actions=mod_dl_dst:00:00:00:00:00:aa,dec_ttl,output:2
table=0,priority=0,actions=drop
";

/// The decoy rule of the many-megaflows cases: no packet matches it, but every lookup must
/// consult the source address (a switch with prefix tries consults only the bits that decide).
pub const DECOY: &str = "table=0,priority=200,ip,nw_src=10.255.255.255,actions=drop\n";

/// The decoy rule of the `upcall` scenario: no benchmark packet has UDP source port 0, and
/// ports have no prefix tries, so every megaflow is exact on the source port and each of the
/// 60000 source ports of the traffic is its own megaflow.
pub const PORT_DECOY: &str = "table=0,priority=200,udp,tp_src=0,actions=drop\n";

/// Distinct UDP source ports of the traffic (`1024 + f % 60000`).
pub const SOURCE_PORTS: u32 = 60_000;

/// The extension workloads' first table: `{ACTIONS}` is replaced by the actions.
pub const EXT_TABLE0: &str = "\
table=0,priority=100,in_port=1,udp,nw_dst=10.1.0.0/16,tp_dst=53,{MATCH}actions={ACTIONS}
table=0,priority=0,actions=drop
";

/// The standard table with `bpf_filter=NAME` on the forwarding rule.
pub fn filter_flows(name: &str) -> String {
    EXT_TABLE0
        .replace("{MATCH}", &format!("bpf_filter={name},"))
        .replace("{ACTIONS}", "mod_dl_dst:00:00:00:00:00:aa,dec_ttl,output:2")
}

/// The `action-*` tables: `bpf(NAME),goto_table:1` in table 0, and table 1 forwarding what
/// has its destination in `table1_dst` (`10.1.0.0/16`, or `10.2.0.0/16` after NAT).
pub fn action_flows(name: &str, table1_dst: &str) -> String {
    let mut t = EXT_TABLE0
        .replace("{MATCH}", "")
        .replace("{ACTIONS}", &format!("bpf({name}),goto_table:1"));
    t.push_str(&format!(
        "table=1,priority=10,ip,nw_dst={table1_dst},actions=mod_dl_dst:00:00:00:00:00:aa,output:2\n"
    ));
    t
}

/// The Internet checksum of `bytes` (an even number of them).
fn ip_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks_exact(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    sum = (sum >> 16) + (sum & 0xffff);
    sum += sum >> 16;
    !(sum as u16)
}

/// The frame of flow `flow`: UDP from `10.0.0.0 | flow` port `1024 + flow % 60000` to
/// `10.1.0.1` (with `vary_dst`, `10.1.0.0 | (flow & 0xffff)`) port 53, 18 zero bytes.
pub fn frame(flow: u32, vary_dst: bool) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&[0, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let src = (10u32 << 24) | flow;
    let dst = (10u32 << 24) | (1 << 16) | if vary_dst { flow & 0xffff } else { 1 };
    {
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[1] = 0;
        ip[2..4].copy_from_slice(&46u16.to_be_bytes());
        ip[4..6].copy_from_slice(&1u16.to_be_bytes());
        ip[6..8].copy_from_slice(&0u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&src.to_be_bytes());
        ip[16..20].copy_from_slice(&dst.to_be_bytes());
        let c = ip_checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let sport = 1024 + (flow % SOURCE_PORTS) as u16;
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&53u16.to_be_bytes());
    f[38..40].copy_from_slice(&26u16.to_be_bytes());
    // UDP checksum 0 and 18 zero payload bytes are already there.
    f
}

/// Frames looped from memory, as DPDK's `net_pcap` loops a capture: packet `i` is the frame
/// of flow `i % nflows`.
pub struct Replay {
    data: Vec<u8>,
    frames: usize,
    nflows: u32,
}

/// At least this many frames are kept, so that even one flow is replayed from a buffer larger
/// than a few cache lines, as a looped capture would be.
const MIN_REPLAY_FRAMES: usize = 1024;

impl Replay {
    /// The traffic of `nflows` flows (at least 1).
    pub fn new(nflows: u32, vary_dst: bool) -> Replay {
        let nflows = nflows.max(1);
        let n = nflows as usize;
        let frames = n * MIN_REPLAY_FRAMES.div_ceil(n);
        let mut data = Vec::with_capacity(frames * FRAME_LEN);
        for i in 0..frames {
            data.extend_from_slice(&frame((i % n) as u32, vary_dst));
        }
        Replay {
            data,
            frames,
            nflows,
        }
    }

    /// Number of flows.
    pub fn nflows(&self) -> u32 {
        self.nflows
    }

    /// Number of frames in the loop (a multiple of the number of flows).
    pub fn len(&self) -> usize {
        self.frames
    }

    /// Whether the loop is empty (never: there is at least one flow).
    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Packet `i` of the loop (`i < len()`).
    #[inline]
    pub fn get(&self, i: usize) -> &[u8] {
        &self.data[i * FRAME_LEN..(i + 1) * FRAME_LEN]
    }
}
