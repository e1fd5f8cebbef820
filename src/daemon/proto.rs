//! The control protocol: JSON lines over a Unix stream socket.
//!
//! A client connects, writes one [`Request`] as a JSON object on one line, and reads one
//! [`Response`] line back; it may send further requests on the same connection. Requests are
//! internally tagged by `"op"` (kebab-case), responses are `{"ok": REPLY}` or
//! `{"error": "message"}`. The protocol is meant to be typed by hand too:
//!
//! ```text
//! $ echo '{"op":"dump-flows"}' | socat - UNIX-CONNECT:/run/bpfswitch/bpfswitch.ctl
//! $ echo '{"op":"map-update","ext":"fw","map":"blocked_src","key":"ip:10.0.0.1","value":"u64:0"}' \
//!     | socat - UNIX-CONNECT:/run/bpfswitch/bpfswitch.ctl
//! ```
//!
//! **Extension objects travel as bytes** (hex in [`Request::ExtLoad`]'s `object`): the
//! client reads the file, so a relative path means what the operator meant, the daemon needs
//! no access to the client's files (another mount namespace, another user's home), and what
//! runs is exactly what the client read, as with Oko's `LOAD_FILTER_PROG` OpenFlow message.
//!
//! Keys and values of map requests are text in [`crate::ext::parse_typed_bytes`] syntax
//! (typed items or hex); map dumps come back as hex strings.

use std::collections::BTreeMap;

use ofproto_bridge::DropReason;
use serde::{Deserialize, Serialize};

use crate::port::afpacket::AfPacketStats;

/// Version of the protocol, reported by `show`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line the daemon reads (an extension object of up to 32 MiB, hex-encoded).
pub const MAX_REQUEST_BYTES: usize = 64 << 20;

/// One request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Switch overview: ports, workers, configuration, counts.
    Show,
    /// Loads an extension object.
    ExtLoad {
        /// Name rules reference it by (`bpf_filter=NAME`, `bpf(NAME)`).
        name: String,
        /// The ELF object, hex-encoded.
        object: String,
        /// Where the client read it from (for `ext list`).
        #[serde(default)]
        source: Option<String>,
        /// Program section or function name.
        #[serde(default)]
        section: Option<String>,
        /// `xdp` or `ubpf`, when the section name does not tell.
        #[serde(default)]
        abi: Option<String>,
        /// Replace an extension of the same name.
        #[serde(default)]
        replace: bool,
        /// Load even if the verifier rejects it (bounds-checked interpreter only).
        #[serde(default)]
        unverified: bool,
    },
    /// Every loaded extension with its counters.
    ExtList,
    /// Unloads an extension (refused while rules or port hooks reference it).
    ExtUnload {
        /// Extension name.
        name: String,
    },
    /// Every entry of a map.
    MapDump {
        /// Extension name.
        ext: String,
        /// Map name, or its index in the object (Oko's map id).
        map: String,
    },
    /// Creates or overwrites a map entry.
    MapUpdate {
        /// Extension name.
        ext: String,
        /// Map name or index.
        map: String,
        /// Key, typed or hex.
        key: String,
        /// Value, typed or hex.
        value: String,
    },
    /// Deletes a map entry.
    MapDelete {
        /// Extension name.
        ext: String,
        /// Map name or index.
        map: String,
        /// Key, typed or hex.
        key: String,
    },
    /// Adds one flow (`ovs-ofctl add-flow` syntax).
    AddFlow {
        /// The flow.
        flow: String,
    },
    /// Applies a flow file (`ovs-ofctl add-flows` syntax); nothing is applied if a line
    /// does not parse.
    AddFlows {
        /// The file's text.
        text: String,
    },
    /// Changes the actions of the flows a match selects (`ovs-ofctl mod-flows`).
    ModFlows {
        /// Match and actions.
        flow: String,
        /// Only the flow with exactly this match and priority.
        #[serde(default)]
        strict: bool,
    },
    /// Deletes the flows a match selects, or every flow (`ovs-ofctl del-flows`).
    DelFlows {
        /// The match; none deletes every flow.
        #[serde(default)]
        flow: Option<String>,
        /// Only the flow with exactly this match and priority.
        #[serde(default)]
        strict: bool,
    },
    /// Flows with their counters (`ovs-ofctl dump-flows`), optionally only those a match
    /// selects.
    DumpFlows {
        /// The match.
        #[serde(default)]
        flow: Option<String>,
    },
    /// Port counters (`ovs-ofctl dump-ports`).
    DumpPorts,
    /// Every worker's megaflows (`ovs-appctl dpctl/dump-flows`).
    DumpMegaflows,
    /// Attaches an extension to a port as a hook run before classification, or detaches.
    PortHook {
        /// OpenFlow port number.
        port: u32,
        /// Extension name; none detaches.
        #[serde(default)]
        ext: Option<String>,
    },
    /// Sets when the pipeline reclassifies after an extension action.
    SetReclassify {
        /// `verifier`, `always` or `never`.
        policy: String,
    },
    /// Stops the switch.
    Shutdown,
}

/// One response: a reply or an error message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    /// The request succeeded.
    Ok(Reply),
    /// The request failed; the message is for the operator.
    Error(String),
}

/// What a successful request returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    /// Done; a one-line summary.
    Done(String),
    /// `show`.
    Show(ShowReply),
    /// `ext list`, or the extension just loaded (one entry).
    Extensions(Vec<ExtReport>),
    /// `map dump`.
    Map(MapReport),
    /// `dump-flows`.
    Flows(Vec<FlowReport>),
    /// `dump-ports`.
    Ports(Vec<PortReport>),
    /// `dpctl-dump-flows`.
    Megaflows(Vec<WorkerMegaflows>),
}

/// One port as `show` describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortDesc {
    /// OpenFlow port number.
    pub port: u32,
    /// Interface name.
    pub interface: String,
    /// Kernel interface index.
    pub ifindex: u32,
    /// MTU.
    pub mtu: u32,
    /// Hardware address, `xx:xx:xx:xx:xx:xx`.
    pub mac: String,
    /// Port hook extension, if any.
    pub hook: Option<String>,
}

/// The reply to `show`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShowReply {
    /// Bridge name (what Oko's verbs call BRIDGE).
    pub bridge: String,
    /// Daemon process id.
    pub pid: u32,
    /// Control socket path.
    pub ctl: String,
    /// Protocol version.
    pub protocol: u32,
    /// Seconds since start.
    pub uptime_s: f64,
    /// Packet-processing workers.
    pub workers: usize,
    /// Reclassification policy (`verifier`, `always`, `never`).
    pub reclassify: String,
    /// Ports.
    pub ports: Vec<PortDesc>,
    /// Installed OpenFlow rules.
    pub flows: usize,
    /// Loaded extensions, by name.
    pub extensions: Vec<String>,
    /// Cache counters summed over workers.
    pub cache: CacheReport,
}

/// Cache counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheReport {
    /// Exact-match cache hits.
    pub emc_hits: u64,
    /// Megaflow cache hits.
    pub megaflow_hits: u64,
    /// Upcalls (misses translated through the tables).
    pub upcalls: u64,
    /// Megaflows installed now, over all workers.
    pub megaflows: usize,
}

/// One map of an extension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapDesc {
    /// Map name.
    pub name: String,
    /// Kind (`hash`, `array`, `lru_hash`...).
    pub kind: String,
    /// Key bytes.
    pub key_size: u32,
    /// Value bytes.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
}

/// One extension as `ext list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtReport {
    /// Name.
    pub name: String,
    /// `xdp` or `ubpf`.
    pub abi: String,
    /// ELF section of the program.
    pub section: String,
    /// Program (function) name.
    pub program: String,
    /// Where the object was read from, as the client said.
    pub source: Option<String>,
    /// Instructions.
    pub insns: usize,
    /// Maps, in object order (their index is Oko's map id).
    pub maps: Vec<MapDesc>,
    /// `accepted` or `unverified`.
    pub verdict: String,
    /// Why the verifier rejected it, when unverified.
    pub reason: Option<String>,
    /// Execution tier: `jit`, `cranelift` or `interpreter`.
    pub tier: String,
    /// Runs.
    pub runs: u64,
    /// Runs that dropped (XDP DROP/ABORTED, uBPF 0).
    pub drops: u64,
    /// Runs that faulted.
    pub faults: u64,
    /// Mean nanoseconds per run (sampled).
    pub ns_per_run: u64,
    /// Rules (in ovs-ofctl syntax) and port hooks that reference it.
    pub used_by: Vec<String>,
}

/// The reply to `map dump`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapReport {
    /// Extension name.
    pub ext: String,
    /// The map.
    pub map: MapDesc,
    /// Entries as (key, value) in hex, in key order (arrays: index order).
    pub entries: Vec<(String, String)>,
}

/// One rule as `dump-flows` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowReport {
    /// Table.
    pub table: u8,
    /// Priority.
    pub priority: u16,
    /// Cookie.
    pub cookie: u64,
    /// Nanoseconds since installation.
    pub duration_ns: u64,
    /// Whole seconds since the last hit (or installation).
    pub idle_age_s: u64,
    /// Packets.
    pub n_packets: u64,
    /// Bytes.
    pub n_bytes: u64,
    /// Idle timeout in seconds (0: none).
    pub idle_timeout: u16,
    /// Hard timeout in seconds (0: none).
    pub hard_timeout: u16,
    /// The match in ovs-ofctl syntax, with the priority (`priority=100,in_port=1`).
    pub r#match: String,
    /// The actions in ovs-ofctl syntax.
    pub actions: String,
}

/// Counters of one port: the datapath's and the interface socket's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortReport {
    /// OpenFlow port number.
    pub port: u32,
    /// Interface name.
    pub interface: String,
    /// Frames received and handed to the datapath.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Received frames the switch dropped (all reasons in `drops`).
    pub rx_dropped: u64,
    /// Received frames too long for the port's buffers (never reached the datapath).
    pub rx_errors: u64,
    /// Frames the kernel dropped because the socket's queue was full.
    pub rx_over: u64,
    /// Received frames forwarded at least once.
    pub forwarded: u64,
    /// Frames transmitted on this port.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Transmissions dropped for lack of socket buffers.
    pub tx_dropped: u64,
    /// Transmissions that failed otherwise.
    pub tx_errors: u64,
    /// Received frames dropped, by reason (`port_hook`, `table_miss`, `action`...).
    pub drops: BTreeMap<String, u64>,
}

impl PortReport {
    /// Adds the socket's counters.
    pub fn add_socket_stats(&mut self, s: &AfPacketStats) {
        self.rx_errors += s.rx_oversize;
        self.rx_over += s.rx_kernel_drops;
        self.tx_dropped += s.tx_dropped;
        self.tx_errors += s.tx_errors;
    }
}

/// The megaflows of one worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerMegaflows {
    /// Worker index.
    pub worker: usize,
    /// One line per megaflow, as `ovs-appctl dpctl/dump-flows` prints them.
    pub flows: Vec<String>,
}

/// The counter name of a drop reason (`port_hook`, `table_miss`...).
pub fn drop_reason_name(r: DropReason) -> &'static str {
    match r {
        DropReason::Action => "action",
        DropReason::TableMiss => "table_miss",
        DropReason::TtlExceeded => "ttl_exceeded",
        DropReason::NoController => "no_controller",
        DropReason::LoopBack => "loop_back",
        DropReason::NoSuchPort => "no_such_port",
        DropReason::ExtDrop => "ext_drop",
        DropReason::ExtAborted => "ext_aborted",
        DropReason::PortHook => "port_hook",
        DropReason::TooDeep => "too_deep",
        DropReason::Malformed => "malformed",
    }
}

/// Lower-case hex of `bytes`, no separators.
pub fn hex_encode(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

/// Decodes [`hex_encode`]'s output.
pub fn hex_decode(text: &str) -> Result<Vec<u8>, String> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    let nib = |c: u8| -> Result<u8, String> {
        (c as char)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or_else(|| format!("`{}` is not a hex digit", c as char))
    };
    t.chunks(2)
        .map(|p| Ok(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_kebab_case_json_lines() {
        let r = Request::MapUpdate {
            ext: "fw".into(),
            map: "blocked_src".into(),
            key: "ip:10.0.0.1".into(),
            value: "u64:0".into(),
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"op":"map-update","ext":"fw","map":"blocked_src","key":"ip:10.0.0.1","value":"u64:0"}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        // Optional fields may be left out by hand-written requests.
        let r: Request = serde_json::from_str(r#"{"op":"del-flows"}"#).unwrap();
        assert_eq!(
            r,
            Request::DelFlows {
                flow: None,
                strict: false
            }
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"show"}"#).unwrap(),
            Request::Show
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"reboot"}"#).is_err());
    }

    #[test]
    fn responses() {
        let ok = Response::Ok(Reply::Done("2 flows deleted".into()));
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"ok":{"done":"2 flows deleted"}}"#
        );
        let e = Response::Error("no such extension".into());
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"error":"no such extension"}"#
        );
    }

    #[test]
    fn hex_round_trip() {
        let b = [0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(hex_encode(&b), "00017f80ff");
        assert_eq!(hex_decode("00017f80ff").unwrap(), b);
        assert_eq!(hex_decode("00017F80FF").unwrap(), b);
        assert!(hex_decode("0").is_err());
        assert!(hex_decode("zz").is_err());
    }
}
