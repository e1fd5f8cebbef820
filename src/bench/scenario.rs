//! The scenarios of issue 5, their targets and the Open vSwitch figures they stand beside.

use serde::Serialize;

/// An extension object of the corpus, embedded in the binary so that the harness runs from
/// any directory (cargo rebuilds it when an object changes).
#[derive(Clone, Copy, Debug)]
pub struct Object {
    /// The name it is loaded under (as referenced by `bpf_filter=` and `bpf()`).
    pub name: &'static str,
    /// The ELF object.
    pub bytes: &'static [u8],
}

/// The benchmark's stateless filter (30 instructions).
pub const BENCH_FILTER: Object = Object {
    name: "bench_filter",
    bytes: include_bytes!("../../extensions/bench_filter.o"),
};
/// The stateful firewall, filter build.
pub const FW_STATEFUL_FILTER: Object = Object {
    name: "fw_stateful_filter",
    bytes: include_bytes!("../../extensions/fw_stateful_filter.o"),
};
/// TTL decrement with an incremental checksum update.
pub const TTL_DEC: Object = Object {
    name: "ttl_dec",
    bytes: include_bytes!("../../extensions/ttl_dec.o"),
};
/// Overwrites the first 16 bytes of a UDP payload.
pub const PAYLOAD_MASK: Object = Object {
    name: "payload_mask",
    bytes: include_bytes!("../../extensions/payload_mask.o"),
};
/// Rewrites the IPv4 destination to 10.2.0.1.
pub const NAT_BENCH: Object = Object {
    name: "nat_bench",
    bytes: include_bytes!("../../extensions/nat_bench.o"),
};

/// Every extension of the extension workloads, in the order `interp-vs-jit` reports them.
pub const OBJECTS: [Object; 5] = [
    BENCH_FILTER,
    FW_STATEFUL_FILTER,
    TTL_DEC,
    PAYLOAD_MASK,
    NAT_BENCH,
];

/// What a scenario runs.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// The standard table (with the decoy rule when `decoy`), `nflows` flows.
    Forward {
        /// Flows, round robin.
        nflows: u32,
        /// Add [`super::traffic::DECOY`].
        decoy: bool,
        /// Exact-match cache on.
        emc: bool,
    },
    /// Every packet a new megaflow (see [`super::traffic::PORT_DECOY`]).
    Upcall,
    /// fwd-1flow with `bpf_filter=` on the forwarding rule, against fwd-1flow.
    Filter(Object),
    /// `bpf(action),goto_table:1` under both reclassification policies.
    Action {
        /// The action.
        object: Object,
        /// Table 1's destination prefix.
        table1_dst: &'static str,
    },
    /// Each extension on each execution tier.
    Tiers,
    /// fwd-64k-1mf on several workers against one.
    Workers,
}

/// A target of issue 5 (shown next to the result, never asserted).
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Target {
    /// At least this many Mpps.
    MinMpps(f64),
    /// At least this many flow set-ups per second.
    MinSetupsPerSec(f64),
    /// At most this many ns per packet above the baseline.
    MaxNsAbove(f64),
    /// reclassify=verifier at least this many times reclassify=always, identical outputs.
    MinSpeedup(f64),
    /// reclassify=verifier recirculates every packet, identical outputs.
    MustRecirculate,
    /// N workers at least this many times one worker.
    MinScaling(f64),
    /// Reported only.
    Report,
}

impl Target {
    /// The target as the table shows it.
    pub fn describe(&self) -> String {
        match self {
            Target::MinMpps(x) => format!(">= {x} Mpps"),
            Target::MinSetupsPerSec(x) => format!(">= {:.1} M setups/s", x / 1e6),
            Target::MaxNsAbove(x) => format!("<= +{x} ns/pkt"),
            Target::MinSpeedup(x) => format!(">= {x}x always, same out"),
            Target::MustRecirculate => "recirculates, same out".into(),
            Target::MinScaling(x) => format!(">= {x}x one worker"),
            Target::Report => "report".into(),
        }
    }
}

/// A row of the Open vSwitch table in WORKLOADS.md.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct OvsFigure {
    /// Traffic and cache configuration, as the table says.
    pub config: &'static str,
    /// Mpps.
    pub mpps: f64,
    /// Cycles per packet.
    pub cycles: u32,
}

/// One scenario.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// Its name on the command line.
    pub name: &'static str,
    /// One line saying what it measures.
    pub what: &'static str,
    /// What it runs.
    pub kind: Kind,
    /// Issue 5's target.
    pub target: Target,
    /// The Open vSwitch figure measured on the same workload, if any.
    pub ovs: Option<OvsFigure>,
}

const fn fwd(
    name: &'static str,
    what: &'static str,
    nflows: u32,
    decoy: bool,
    emc: bool,
    target: Target,
    ovs: Option<OvsFigure>,
) -> Scenario {
    Scenario {
        name,
        what,
        kind: Kind::Forward { nflows, decoy, emc },
        target,
        ovs,
    }
}

const fn ovs(config: &'static str, mpps: f64, cycles: u32) -> Option<OvsFigure> {
    Some(OvsFigure {
        config,
        mpps,
        cycles,
    })
}

/// Every scenario, in the order they run.
pub const SCENARIOS: &[Scenario] = &[
    fwd(
        "fwd-1flow",
        "1 flow, exact-match cache on",
        1,
        false,
        true,
        Target::MinMpps(30.0),
        ovs("1 flow, EMC (default)", 13.7, 190),
    ),
    fwd(
        "fwd-1flow-megaflow",
        "1 flow, exact-match cache off",
        1,
        false,
        false,
        Target::MinMpps(20.0),
        ovs("1 flow, EMC off", 8.5, 305),
    ),
    fwd(
        "fwd-1k-1mf",
        "1000 flows, 1 megaflow",
        1000,
        false,
        true,
        Target::Report,
        None,
    ),
    fwd(
        "fwd-10k-1mf",
        "10000 flows, 1 megaflow",
        10_000,
        false,
        true,
        Target::Report,
        ovs("10k flows, 1 megaflow", 8.2, 317),
    ),
    fwd(
        "fwd-64k-1mf",
        "65536 flows, 1 megaflow",
        65_536,
        false,
        true,
        Target::MinMpps(15.0),
        ovs("64k flows, 1 megaflow", 5.2, 496),
    ),
    fwd(
        "fwd-64k-1mf-noemc",
        "65536 flows, 1 megaflow, exact-match cache off",
        65_536,
        false,
        false,
        Target::Report,
        ovs("64k flows, 1 megaflow, EMC off", 6.1, 428),
    ),
    fwd(
        "fwd-1k-1kmf",
        "1000 flows, decoy rule (up to 1000 megaflows)",
        1000,
        true,
        true,
        Target::Report,
        None,
    ),
    fwd(
        "fwd-10k-10kmf",
        "10000 flows, decoy rule (up to 10000 megaflows)",
        10_000,
        true,
        true,
        Target::Report,
        ovs("10k flows, 10k megaflows (decoy)", 4.7, 550),
    ),
    fwd(
        "fwd-64k-64kmf",
        "65536 flows, decoy rule (up to 65536 megaflows)",
        65_536,
        true,
        true,
        Target::MinMpps(8.0),
        ovs("64k flows, 64k megaflows (decoy)", 1.85, 1406),
    ),
    fwd(
        "fwd-64k-64kmf-noemc",
        "65536 flows, decoy rule, exact-match cache off",
        65_536,
        true,
        false,
        Target::Report,
        ovs("64k flows, 64k megaflows (decoy), EMC off", 2.23, 1165),
    ),
    Scenario {
        name: "upcall",
        what: "every packet a new megaflow (60000 source ports, decoy on tp_src)",
        kind: Kind::Upcall,
        target: Target::MinSetupsPerSec(1e6),
        ovs: None,
    },
    Scenario {
        name: "filter-jit",
        what: "fwd-1flow plus bench_filter (30 insns, stateless) as bpf_filter",
        kind: Kind::Filter(BENCH_FILTER),
        target: Target::MaxNsAbove(10.0),
        ovs: None,
    },
    Scenario {
        name: "filter-stateful",
        what: "fwd-1flow plus fw_stateful_filter (conntrack) as bpf_filter",
        kind: Kind::Filter(FW_STATEFUL_FILTER),
        target: Target::Report,
        ovs: None,
    },
    Scenario {
        name: "action-ttl",
        what: "bpf(ttl_dec),goto_table:1; table 1 matches ip,nw_dst",
        kind: Kind::Action {
            object: TTL_DEC,
            table1_dst: "10.1.0.0/16",
        },
        target: Target::MinSpeedup(1.8),
        ovs: None,
    },
    Scenario {
        name: "action-payload",
        what: "bpf(payload_mask),goto_table:1; table 1 matches ip,nw_dst",
        kind: Kind::Action {
            object: PAYLOAD_MASK,
            table1_dst: "10.1.0.0/16",
        },
        target: Target::MinSpeedup(1.8),
        ovs: None,
    },
    Scenario {
        name: "action-nat",
        what: "bpf(nat_bench),goto_table:1; table 1 matches the rewritten nw_dst",
        kind: Kind::Action {
            object: NAT_BENCH,
            table1_dst: "10.2.0.0/16",
        },
        target: Target::MustRecirculate,
        ovs: None,
    },
    Scenario {
        name: "interp-vs-jit",
        what: "each extension on the interpreter, the JIT and cranelift",
        kind: Kind::Tiers,
        target: Target::Report,
        ovs: None,
    },
    Scenario {
        name: "workers-2",
        what: "fwd-64k-1mf on N workers (--workers, default 2) over one datapath",
        kind: Kind::Workers,
        target: Target::MinScaling(1.8),
        ovs: None,
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// The flow counts of the throughput-against-flows plot, with the scenarios measuring them
/// (one megaflow, and the decoy rule).
pub const FLOW_SWEEP: [(u32, &str, &str); 4] = [
    (1, "fwd-1flow", "fwd-1flow"),
    (1000, "fwd-1k-1mf", "fwd-1k-1kmf"),
    (10_000, "fwd-10k-1mf", "fwd-10k-10kmf"),
    (65_536, "fwd-64k-1mf", "fwd-64k-64kmf"),
];
