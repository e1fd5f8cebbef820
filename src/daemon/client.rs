//! The client verbs: each connects to the daemon's control socket, sends one request and
//! prints the reply the way the tool operators know prints it (`ovs-ofctl dump-flows`,
//! `ovs-ofctl dump-ports`, `ovs-appctl dpctl/dump-flows`, `bpftool map dump`). Every verb
//! takes `--ctl PATH` (default `$BPFSWITCH_CTL`, else `/run/bpfswitch/bpfswitch.ctl`) and
//! `--json` (print the reply as JSON instead).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::proto::*;
use crate::cli::CliError;

/// How long a client waits for the daemon's reply (loading an extension runs the verifier
/// and the JIT).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Options every client verb takes.
#[derive(Args, Debug, Clone, Default)]
pub struct Conn {
    /// The daemon's control socket [default: $BPFSWITCH_CTL, else /run/bpfswitch/bpfswitch.ctl].
    #[arg(long, value_name = "PATH")]
    pub ctl: Option<PathBuf>,
    /// Print the reply as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of loading an extension.
#[derive(Args, Debug, Clone, Default)]
pub struct LoadOpts {
    /// Program to load, by section or function name (when the object has several).
    #[arg(long, value_name = "S")]
    pub section: Option<String>,
    /// Program ABI, when the section name does not tell: xdp or ubpf.
    #[arg(long, value_name = "xdp|ubpf")]
    pub abi: Option<String>,
    /// Replace the extension of that name (rules referencing it switch to the new one).
    #[arg(long)]
    pub replace: bool,
    /// Load even if the verifier rejects it (runs on the bounds-checked interpreter only).
    #[arg(long)]
    pub unverified: bool,
}

/// `bpfswitch ext ...` verbs served by the running switch.
#[derive(Subcommand, Debug, Clone)]
pub enum ExtVerb {
    /// Loads an eBPF object into the running switch under NAME (the client reads FILE and
    /// sends its bytes).
    Load {
        /// Name rules reference it by: bpf_filter=NAME, bpf(NAME), port-hook PORT NAME.
        name: String,
        /// The object (clang -O2 -target bpf -c prog.c -o prog.o).
        file: PathBuf,
        #[command(flatten)]
        opts: LoadOpts,
        #[command(flatten)]
        conn: Conn,
    },
    /// Lists the loaded extensions with the verifier's verdict, tier and counters.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Unloads an extension (refused while a rule or port hook references it).
    Unload {
        /// Extension name.
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// `bpfswitch map ...` verbs: the maps of the running switch's extensions.
#[derive(Subcommand, Debug, Clone)]
pub enum MapVerb {
    /// Prints every entry of a map, keys and values in hex (as `bpftool map dump`).
    Dump {
        /// Extension name.
        ext: String,
        /// Map name (or its index in the object).
        map: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Creates or overwrites an entry. KEY and VALUE are hex (`0a000001`, `0a 00 00 01`)
    /// or typed items: ip:10.0.0.1, ip6:ADDR, mac:ADDR, u8/u16/u32/u64:N (little-endian),
    /// be16/be32/be64:N, lpm:10.0.0.0/8, concatenated with commas.
    Update {
        /// Extension name.
        ext: String,
        /// Map name (or its index in the object).
        map: String,
        /// Key.
        key: String,
        /// Value.
        value: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Deletes an entry.
    Delete {
        /// Extension name.
        ext: String,
        /// Map name (or its index in the object).
        map: String,
        /// Key.
        key: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// The running switch's top-level verbs (ovs-ofctl's and ovs-appctl's, and Oko's).
#[derive(Subcommand, Debug, Clone)]
pub enum SwitchVerb {
    /// Adds a flow (ovs-ofctl add-flow syntax).
    AddFlow {
        /// The flow, e.g. "priority=100,in_port=1,ip,actions=output:2".
        flow: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Adds the flows of a file (ovs-ofctl add-flows syntax; `-` reads standard input).
    AddFlows {
        /// The flow file.
        file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Changes the actions of the flows a match selects (ovs-ofctl mod-flows).
    ModFlows {
        /// Match and actions.
        flow: String,
        /// Only the flow with exactly this match and priority.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Deletes the flows a match selects, or every flow (ovs-ofctl del-flows).
    DelFlows {
        /// The match (none: every flow).
        flow: Option<String>,
        /// Only the flow with exactly this match and priority.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Prints the flows with their counters (ovs-ofctl dump-flows).
    DumpFlows {
        /// Only the flows this match selects.
        flow: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Prints port counters (ovs-ofctl dump-ports), with drops by reason.
    DumpPorts {
        /// Only this port.
        port: Option<u32>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Prints the workers' megaflows (ovs-appctl dpctl/dump-flows).
    DpctlDumpFlows {
        #[command(flatten)]
        conn: Conn,
    },
    /// Attaches extension NAME to PORT as a hook run on every received packet before
    /// classification (`none` detaches).
    PortHook {
        /// OpenFlow port number.
        port: u32,
        /// Extension name, or `none`.
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Sets when the pipeline reclassifies after an extension action: verifier, always or
    /// never (unsafe; benchmarks only).
    SetReclassify {
        /// The policy.
        policy: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Prints the switch: ports, workers, policy, flows, extensions, cache counters.
    Show {
        #[command(flatten)]
        conn: Conn,
    },
    /// Stops the running switch.
    Shutdown {
        #[command(flatten)]
        conn: Conn,
    },
    /// Oko's verb: loads FILE.o under the name ID, referenced as filter_prog=ID or prog:ID.
    LoadFilterProg {
        /// Bridge name (must be the daemon's, default br0).
        bridge: String,
        /// Program id.
        id: String,
        /// The object.
        file: PathBuf,
        #[command(flatten)]
        opts: LoadOpts,
        #[command(flatten)]
        conn: Conn,
    },
    /// Oko's verb: writes a map entry of program ID: `update-map BRIDGE ID MAP KEY VALUE`
    /// (typed or hex) or Oko's `update-map BRIDGE ID MAP key B... value B...` (decimal bytes).
    UpdateMap {
        /// Bridge name.
        bridge: String,
        /// Program id.
        id: String,
        /// Map name or index (Oko's map id).
        map: String,
        /// KEY VALUE, or `key B... value B...`.
        #[arg(required = true, num_args = 2..)]
        entry: Vec<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Oko's verb: prints a map of program ID (as `map dump`).
    DumpMap {
        /// Bridge name.
        bridge: String,
        /// Program id.
        id: String,
        /// Map name or index (Oko's map id).
        map: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Sends one request to the daemon at `conn`'s socket and returns its reply.
pub fn request(conn: &Conn, req: &Request) -> Result<Reply, CliError> {
    let path = super::ctl_path(conn.ctl.as_deref());
    let stream = UnixStream::connect(&path).map_err(|e| {
        CliError::Failed(format!(
            "cannot connect to {}: {e} (is `bpfswitch daemon` running? its socket is set \
             with --ctl or BPFSWITCH_CTL)",
            path.display()
        ))
    })?;
    let io = |e: std::io::Error| CliError::Failed(format!("{}: {e}", path.display()));
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(io)?;
    let mut line = serde_json::to_vec(req).expect("requests serialise");
    line.push(b'\n');
    (&stream).write_all(&line).map_err(io)?;
    let mut reader = BufReader::new(&stream);
    let mut resp = String::new();
    let n = reader.read_line(&mut resp).map_err(io)?;
    if n == 0 {
        return Err(CliError::Failed(format!(
            "{}: the daemon closed the connection without answering",
            path.display()
        )));
    }
    match serde_json::from_str::<Response>(&resp) {
        Ok(Response::Ok(r)) => Ok(r),
        Ok(Response::Error(e)) => Err(CliError::Failed(e)),
        Err(e) => Err(CliError::Failed(format!(
            "{}: unreadable reply: {e}",
            path.display()
        ))),
    }
}

fn print_json(r: &Reply) {
    println!(
        "{}",
        serde_json::to_string_pretty(r).expect("replies serialise")
    );
}

/// Sends a request and prints its reply with `text` (or as JSON with `--json`).
fn exchange(conn: &Conn, req: Request, text: impl Fn(&Reply) -> String) -> Result<(), CliError> {
    let r = request(conn, &req)?;
    if conn.json {
        print_json(&r);
    } else {
        let t = text(&r);
        if !t.is_empty() {
            print!("{t}");
            if !t.ends_with('\n') {
                println!();
            }
        }
    }
    Ok(())
}

fn load_request(name: &str, file: &std::path::Path, opts: &LoadOpts) -> Result<Request, CliError> {
    let bytes =
        std::fs::read(file).map_err(|e| CliError::Failed(format!("{}: {e}", file.display())))?;
    Ok(Request::ExtLoad {
        name: name.to_string(),
        object: hex_encode(&bytes),
        source: Some(file.display().to_string()),
        section: opts.section.clone(),
        abi: opts.abi.clone(),
        replace: opts.replace,
        unverified: opts.unverified,
    })
}

/// Runs an `ext` verb.
pub fn ext(v: &ExtVerb) -> Result<(), CliError> {
    match v {
        ExtVerb::Load {
            name,
            file,
            opts,
            conn,
        } => exchange(conn, load_request(name, file, opts)?, format_loaded),
        ExtVerb::List { conn } => exchange(conn, Request::ExtList, |r| match r {
            Reply::Extensions(v) => format_ext_list(v),
            _ => String::new(),
        }),
        ExtVerb::Unload { name, conn } => {
            exchange(conn, Request::ExtUnload { name: name.clone() }, |_| {
                String::new()
            })
        }
    }
}

/// Runs a `map` verb.
pub fn map(v: &MapVerb) -> Result<(), CliError> {
    match v {
        MapVerb::Dump { ext, map, conn } => exchange(
            conn,
            Request::MapDump {
                ext: ext.clone(),
                map: map.clone(),
            },
            format_map,
        ),
        MapVerb::Update {
            ext,
            map,
            key,
            value,
            conn,
        } => exchange(
            conn,
            Request::MapUpdate {
                ext: ext.clone(),
                map: map.clone(),
                key: key.clone(),
                value: value.clone(),
            },
            |_| String::new(),
        ),
        MapVerb::Delete {
            ext,
            map,
            key,
            conn,
        } => exchange(
            conn,
            Request::MapDelete {
                ext: ext.clone(),
                map: map.clone(),
                key: key.clone(),
            },
            |_| String::new(),
        ),
    }
}

/// Checks that `bridge` names the daemon's bridge (Oko's verbs name one).
fn check_bridge(conn: &Conn, bridge: &str) -> Result<(), CliError> {
    match request(conn, &Request::Show)? {
        Reply::Show(s) if s.bridge == bridge => Ok(()),
        Reply::Show(s) => Err(CliError::Failed(format!(
            "no bridge named {bridge} (this switch's bridge is {})",
            s.bridge
        ))),
        _ => Err(CliError::Failed("unexpected reply to show".into())),
    }
}

/// Turns `update-map`'s entry arguments into (key, value) text: `KEY VALUE` as given, or
/// Oko's `key B... value B...` with decimal bytes as hex.
pub fn oko_entry(args: &[String]) -> Result<(String, String), CliError> {
    if args.first().map(String::as_str) != Some("key") {
        return match args {
            [k, v] => Ok((k.clone(), v.clone())),
            _ => Err(CliError::Usage(
                "update-map: expected KEY VALUE, or key B... value B... (decimal bytes, as Oko)"
                    .into(),
            )),
        };
    }
    let at = args.iter().position(|a| a == "value").ok_or_else(|| {
        CliError::Usage("update-map: `key B...` must be followed by `value B...`".into())
    })?;
    let bytes = |part: &[String], what: &str| -> Result<String, CliError> {
        if part.is_empty() {
            return Err(CliError::Usage(format!("update-map: no {what} bytes")));
        }
        let v = part
            .iter()
            .map(|b| {
                b.parse::<u8>().map_err(|_| {
                    CliError::Usage(format!(
                        "update-map: {what} byte `{b}` is not a decimal number from 0 to 255"
                    ))
                })
            })
            .collect::<Result<Vec<u8>, _>>()?;
        Ok(format!("hex:{}", hex_encode(&v)))
    };
    Ok((
        bytes(&args[1..at], "key")?,
        bytes(&args[at + 1..], "value")?,
    ))
}

/// Runs one of the top-level verbs.
pub fn switch(v: &SwitchVerb) -> Result<(), CliError> {
    let none = |_: &Reply| String::new();
    match v {
        SwitchVerb::AddFlow { flow, conn } => {
            exchange(conn, Request::AddFlow { flow: flow.clone() }, none)
        }
        SwitchVerb::AddFlows { file, conn } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| CliError::Failed(format!("standard input: {e}")))?
            } else {
                std::fs::read_to_string(file)
                    .map_err(|e| CliError::Failed(format!("{}: {e}", file.display())))?
            };
            exchange(conn, Request::AddFlows { text }, none)
        }
        SwitchVerb::ModFlows { flow, strict, conn } => exchange(
            conn,
            Request::ModFlows {
                flow: flow.clone(),
                strict: *strict,
            },
            none,
        ),
        SwitchVerb::DelFlows { flow, strict, conn } => exchange(
            conn,
            Request::DelFlows {
                flow: flow.clone(),
                strict: *strict,
            },
            none,
        ),
        SwitchVerb::DumpFlows { flow, conn } => exchange(
            conn,
            Request::DumpFlows { flow: flow.clone() },
            |r| match r {
                Reply::Flows(v) => format_flows(v),
                _ => String::new(),
            },
        ),
        SwitchVerb::DumpPorts { port, conn } => {
            let mut r = request(conn, &Request::DumpPorts)?;
            if let (Some(p), Reply::Ports(v)) = (port, &mut r) {
                v.retain(|x| x.port == *p);
                if v.is_empty() {
                    return Err(CliError::Failed(format!("no port {p}")));
                }
            }
            if conn.json {
                print_json(&r);
            } else if let Reply::Ports(v) = &r {
                print!("{}", format_ports(v));
            }
            Ok(())
        }
        SwitchVerb::DpctlDumpFlows { conn } => {
            exchange(conn, Request::DumpMegaflows, |r| match r {
                Reply::Megaflows(v) => format_megaflows(v),
                _ => String::new(),
            })
        }
        SwitchVerb::PortHook { port, name, conn } => exchange(
            conn,
            Request::PortHook {
                port: *port,
                ext: (name != "none").then(|| name.clone()),
            },
            none,
        ),
        SwitchVerb::SetReclassify { policy, conn } => exchange(
            conn,
            Request::SetReclassify {
                policy: policy.clone(),
            },
            none,
        ),
        SwitchVerb::Show { conn } => exchange(conn, Request::Show, |r| match r {
            Reply::Show(s) => format_show(s),
            _ => String::new(),
        }),
        SwitchVerb::Shutdown { conn } => exchange(conn, Request::Shutdown, none),
        SwitchVerb::LoadFilterProg {
            bridge,
            id,
            file,
            opts,
            conn,
        } => {
            check_bridge(conn, bridge)?;
            exchange(conn, load_request(id, file, opts)?, format_loaded)
        }
        SwitchVerb::UpdateMap {
            bridge,
            id,
            map,
            entry,
            conn,
        } => {
            let (key, value) = oko_entry(entry)?;
            check_bridge(conn, bridge)?;
            exchange(
                conn,
                Request::MapUpdate {
                    ext: id.clone(),
                    map: map.clone(),
                    key,
                    value,
                },
                none,
            )
        }
        SwitchVerb::DumpMap {
            bridge,
            id,
            map,
            conn,
        } => {
            check_bridge(conn, bridge)?;
            exchange(
                conn,
                Request::MapDump {
                    ext: id.clone(),
                    map: map.clone(),
                },
                format_map,
            )
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What `ext load` prints.
pub fn format_loaded(r: &Reply) -> String {
    let Reply::Extensions(v) = r else {
        return String::new();
    };
    let Some(e) = v.first() else {
        return String::new();
    };
    let mut s = format!(
        "loaded {}: {} program {} (section {}), {}, {}; ",
        e.name,
        e.abi,
        e.program,
        e.section,
        plural(e.insns, "instruction", "instructions"),
        plural(e.maps.len(), "map", "maps")
    );
    match &e.reason {
        None => s.push_str(&format!("verifier: accepted; tier: {}\n", e.tier)),
        Some(reason) => s.push_str(&format!(
            "verifier: rejected ({reason}); loaded unverified, tier: {}\n",
            e.tier
        )),
    }
    s
}

/// Lays out rows as left-aligned columns separated by two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What `ext list` prints: one row per extension, then the reasons of unverified ones.
pub fn format_ext_list(v: &[ExtReport]) -> String {
    if v.is_empty() {
        return "no extensions loaded\n".into();
    }
    let mut rows = vec![[
        "NAME", "ABI", "SECTION", "INSNS", "MAPS", "VERDICT", "TIER", "RUNS", "DROPS", "NS/RUN",
        "USERS",
    ]
    .map(String::from)
    .to_vec()];
    for e in v {
        let maps = if e.maps.is_empty() {
            "-".to_string()
        } else {
            e.maps
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        rows.push(vec![
            e.name.clone(),
            e.abi.clone(),
            e.section.clone(),
            e.insns.to_string(),
            maps,
            e.verdict.clone(),
            e.tier.clone(),
            e.runs.to_string(),
            e.drops.to_string(),
            e.ns_per_run.to_string(),
            e.used_by.len().to_string(),
        ]);
    }
    let mut s = table(&rows);
    for e in v {
        if let Some(r) = &e.reason {
            s.push_str(&format!("{}: unverified: {r}\n", e.name));
        }
    }
    s
}

/// What `map dump` prints, as `bpftool map dump` does.
pub fn format_map(r: &Reply) -> String {
    let Reply::Map(m) = r else {
        return String::new();
    };
    let spaced = |h: &str| {
        h.as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap_or("??"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = String::new();
    for (k, v) in &m.entries {
        s.push_str(&format!("key: {}  value: {}\n", spaced(k), spaced(v)));
    }
    s.push_str(&format!(
        "Found {}\n",
        plural(m.entries.len(), "element", "elements")
    ));
    s
}

/// What `dump-flows` prints, as `ovs-ofctl dump-flows` does.
pub fn format_flows(v: &[FlowReport]) -> String {
    let mut s = String::new();
    for f in v {
        s.push_str(&format!(
            " cookie={:#x}, duration={:.3}s, table={}, n_packets={}, n_bytes={}, ",
            f.cookie,
            f.duration_ns as f64 / 1e9,
            f.table,
            f.n_packets,
            f.n_bytes
        ));
        if f.idle_timeout != 0 {
            s.push_str(&format!("idle_timeout={}, ", f.idle_timeout));
        }
        if f.hard_timeout != 0 {
            s.push_str(&format!("hard_timeout={}, ", f.hard_timeout));
        }
        s.push_str(&format!("idle_age={}, ", f.idle_age_s));
        if !f.r#match.is_empty() {
            s.push_str(&f.r#match);
            s.push(' ');
        }
        s.push_str("actions=");
        s.push_str(&f.actions);
        s.push('\n');
    }
    s
}

/// What `dump-ports` prints, as `ovs-ofctl dump-ports` does, plus a line of drops by reason.
pub fn format_ports(v: &[PortReport]) -> String {
    let mut s = format!("port stats: {}\n", plural(v.len(), "port", "ports"));
    for p in v {
        let pad = if p.port < 10 { " " } else { "" };
        s.push_str(&format!(
            "  port {pad}{}: rx pkts={}, bytes={}, drop={}, errs={}, frame=0, over={}, crc=0\n",
            p.port, p.rx_packets, p.rx_bytes, p.rx_dropped, p.rx_errors, p.rx_over
        ));
        s.push_str(&format!(
            "           tx pkts={}, bytes={}, drop={}, errs={}, coll=0\n",
            p.tx_packets, p.tx_bytes, p.tx_dropped, p.tx_errors
        ));
        let drops: Vec<String> = p.drops.iter().map(|(r, n)| format!("{r}={n}")).collect();
        s.push_str(&format!(
            "           ({}) forwarded={}, drops: {}\n",
            p.interface,
            p.forwarded,
            if drops.is_empty() {
                "none".to_string()
            } else {
                drops.join(", ")
            }
        ));
    }
    s
}

/// What `dpctl-dump-flows` prints, as `ovs-appctl dpctl/dump-flows` does (one section per
/// worker when there are several, as Open vSwitch prints one per PMD thread).
pub fn format_megaflows(v: &[WorkerMegaflows]) -> String {
    let mut s = String::new();
    for w in v {
        if v.len() > 1 {
            s.push_str(&format!("flow-dump from worker {}:\n", w.worker));
        }
        for f in &w.flows {
            s.push_str(f);
            s.push('\n');
        }
    }
    s
}

/// What `show` prints.
pub fn format_show(r: &ShowReply) -> String {
    let mut s = format!(
        "bridge {}: pid {}, up {:.1}s, {}, reclassify={}, control socket {}\n",
        r.bridge,
        r.pid,
        r.uptime_s,
        plural(r.workers, "worker", "workers"),
        r.reclassify,
        r.ctl
    );
    for p in &r.ports {
        s.push_str(&format!(
            "  port {}: {} (ifindex {}, mtu {}, mac {}){}\n",
            p.port,
            p.interface,
            p.ifindex,
            p.mtu,
            p.mac,
            p.hook
                .as_ref()
                .map(|h| format!(", hook {h}"))
                .unwrap_or_default()
        ));
    }
    s.push_str(&format!(
        "  flows: {}; extensions: {}\n",
        r.flows,
        if r.extensions.is_empty() {
            "none".to_string()
        } else {
            r.extensions.join(", ")
        }
    ));
    s.push_str(&format!(
        "  caches: emc hits {}, megaflow hits {}, upcalls {}, megaflows {}\n",
        r.cache.emc_hits, r.cache.megaflow_hits, r.cache.upcalls, r.cache.megaflows
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn oko_entries() {
        assert_eq!(
            oko_entry(&args("key 14 0 16 172 value 1 0 0 0")).unwrap(),
            ("hex:0e0010ac".to_string(), "hex:01000000".to_string())
        );
        assert_eq!(
            oko_entry(&args("ip:10.0.0.1 u64:0")).unwrap(),
            ("ip:10.0.0.1".to_string(), "u64:0".to_string())
        );
        assert!(oko_entry(&args("key 1 2")).is_err());
        assert!(oko_entry(&args("key 256 value 1")).is_err());
        assert!(oko_entry(&args("key value 1")).is_err());
        assert!(oko_entry(&args("a b c")).is_err());
    }

    #[test]
    fn flows_print_like_ovs_ofctl() {
        let f = FlowReport {
            table: 0,
            priority: 100,
            cookie: 0,
            duration_ns: 1_234_567_890,
            idle_age_s: 1,
            n_packets: 3,
            n_bytes: 180,
            idle_timeout: 0,
            hard_timeout: 0,
            r#match: "priority=100,in_port=1".into(),
            actions: "output:2".into(),
        };
        assert_eq!(
            format_flows(&[f]),
            " cookie=0x0, duration=1.235s, table=0, n_packets=3, n_bytes=180, idle_age=1, \
             priority=100,in_port=1 actions=output:2\n"
        );
    }

    #[test]
    fn maps_print_like_bpftool() {
        let r = Reply::Map(MapReport {
            ext: "fw".into(),
            map: MapDesc {
                name: "blocked_src".into(),
                kind: "hash".into(),
                key_size: 4,
                value_size: 8,
                max_entries: 4096,
            },
            entries: vec![("0a000001".into(), "0500000000000000".into())],
        });
        assert_eq!(
            format_map(&r),
            "key: 0a 00 00 01  value: 05 00 00 00 00 00 00 00\nFound 1 element\n"
        );
    }
}
