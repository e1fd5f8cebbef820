//! The control thread: the Unix socket server that answers [`Request`]s.
//!
//! Configuration requests (flows, extensions, maps, hooks, policy) go straight to the shared
//! [`Datapath`], whose version counters make the workers revalidate at their next batch.
//! Requests about what the workers hold (counters, megaflows, rule counters not yet
//! credited) are sent to every worker as a [`WorkerMsg`] with a reply channel, and the
//! worker is woken through its eventfd; a worker answers between two batches.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ofproto_bridge::bridge::Reclassify;
use ofproto_bridge::ofctl::{
    format_actions, format_match, parse_flow_mod, FlowMod, FlowModCommand, TABLE_ALL,
};
use ofproto_bridge::table::RuleSelector;
use ofproto_bridge::{Action, PortNo};

use super::pmd::{EventFd, WorkerMsg, WorkerStats};
use super::proto::*;
use crate::dpif::{Datapath, DpStats};
use crate::ext::{Abi, Extension, LoadOptions, Verification};
use crate::port::afpacket::{monotonic_ns, InterfaceInfo};

/// How long the control thread waits for a worker to answer.
const WORKER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client connection may stay idle.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The control thread's link to one worker.
pub struct WorkerLink {
    /// Requests.
    pub tx: Sender<WorkerMsg>,
    /// Wakes it.
    pub wake: Arc<EventFd>,
}

/// What the control thread knows: the datapath, the workers and the switch's description.
pub struct Control {
    /// The datapath.
    pub dp: Arc<Datapath>,
    /// The workers.
    pub workers: Vec<WorkerLink>,
    /// Ports by number, with their interfaces.
    pub ports: Vec<(PortNo, InterfaceInfo)>,
    /// Bridge name.
    pub bridge: String,
    /// Control socket path.
    pub ctl_path: PathBuf,
    /// Start time.
    pub started: Instant,
    /// Set to stop the switch.
    pub stop: Arc<AtomicBool>,
    /// Where each extension was loaded from, as the client said.
    pub sources: Mutex<BTreeMap<String, Option<String>>>,
}

/// Parses a reclassification policy (`verifier`, `always`, `never`).
pub fn parse_reclassify(s: &str) -> Result<Reclassify, String> {
    match s {
        "verifier" => Ok(Reclassify::Verifier),
        "always" => Ok(Reclassify::Always),
        "never" | "never-unsafe" => Ok(Reclassify::NeverUnsafe),
        _ => Err(format!(
            "unknown reclassification policy `{s}` (expected verifier, always or never)"
        )),
    }
}

/// The name of a reclassification policy.
pub fn reclassify_name(r: Reclassify) -> &'static str {
    match r {
        Reclassify::Verifier => "verifier",
        Reclassify::Always => "always",
        Reclassify::NeverUnsafe => "never",
    }
}

/// The names of the extensions a flow mod references (filters and actions).
fn referenced_extensions(fm: &FlowMod) -> Vec<&str> {
    let mut v: Vec<&str> = fm
        .rule
        .r#match
        .bpf_filters
        .iter()
        .map(String::as_str)
        .collect();
    for a in &fm.rule.actions {
        if let Action::Bpf(n) = a {
            v.push(n);
        }
    }
    v
}

/// Refuses flow mods that reference extensions that are not loaded (as an OpenFlow switch
/// refuses a flow naming a group that does not exist).
pub fn check_extensions(dp: &Datapath, fms: &[FlowMod]) -> Result<(), String> {
    for fm in fms {
        if !fm.command.has_actions() {
            continue;
        }
        for name in referenced_extensions(fm) {
            if dp.extension(name).is_none() {
                return Err(format!(
                    "extension `{name}` is not loaded (load it first: bpfswitch ext load {name} FILE.o)"
                ));
            }
        }
    }
    Ok(())
}

fn abi_name(a: Abi) -> &'static str {
    match a {
        Abi::Xdp => "xdp",
        Abi::Ubpf => "ubpf",
    }
}

fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Control {
    /// Accepts connections on `listener` until `stop` is set; one thread per connection.
    pub fn serve(self: Arc<Self>, listener: UnixListener) {
        if let Err(e) = listener.set_nonblocking(true) {
            eprintln!("bpfswitch: control socket: {e}");
            return;
        }
        while !self.stop.load(Ordering::Acquire) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let me = self.clone();
                    let r = std::thread::Builder::new()
                        .name("bpfswitch-ctl-conn".into())
                        .spawn(move || me.connection(stream));
                    if let Err(e) = r {
                        eprintln!("bpfswitch: control connection: {e}");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let mut p = libc::pollfd {
                        fd: listener.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one live pollfd.
                    unsafe { libc::poll(&mut p, 1, 100) };
                }
                Err(e) => {
                    eprintln!("bpfswitch: control socket: accept: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn connection(&self, stream: UnixStream) {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
        let Ok(mut out) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = match (&mut reader)
                .take(MAX_REQUEST_BYTES as u64 + 1)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let resp = if n > MAX_REQUEST_BYTES {
                Response::Error(format!(
                    "request longer than {MAX_REQUEST_BYTES} bytes refused"
                ))
            } else {
                match serde_json::from_slice::<Request>(&line) {
                    Ok(req) => self.handle(req),
                    Err(e) => Response::Error(format!("bad request: {e}")),
                }
            };
            let mut text = serde_json::to_vec(&resp).expect("responses serialise");
            text.push(b'\n');
            if out.write_all(&text).is_err() {
                return;
            }
            if n > MAX_REQUEST_BYTES {
                return;
            }
        }
    }

    /// Answers one request.
    pub fn handle(&self, req: Request) -> Response {
        match self.dispatch(req) {
            Ok(r) => Response::Ok(r),
            Err(e) => Response::Error(e),
        }
    }

    /// Sends a message to every worker and collects the answers.
    fn ask<T>(&self, make: impl Fn(Sender<T>) -> WorkerMsg) -> Result<Vec<T>, String> {
        let mut rxs = Vec::new();
        for (i, w) in self.workers.iter().enumerate() {
            let (tx, rx) = channel();
            w.tx.send(make(tx))
                .map_err(|_| format!("worker {i} has stopped"))?;
            w.wake.notify();
            rxs.push(rx);
        }
        rxs.into_iter()
            .enumerate()
            .map(|(i, rx)| {
                rx.recv_timeout(WORKER_TIMEOUT).map_err(|_| {
                    format!(
                        "worker {i} did not answer within {} s",
                        WORKER_TIMEOUT.as_secs()
                    )
                })
            })
            .collect()
    }

    fn stats(&self) -> Result<Vec<WorkerStats>, String> {
        self.ask(WorkerMsg::Stats)
    }

    fn named(&self, name: &str) -> Result<Arc<Extension>, String> {
        self.dp.extension(name).ok_or_else(|| {
            let names: Vec<String> = self
                .dp
                .extensions()
                .iter()
                .map(|e| e.name().to_string())
                .collect();
            if names.is_empty() {
                format!("no extension `{name}` (none is loaded)")
            } else {
                format!("no extension `{name}` (loaded: {})", names.join(", "))
            }
        })
    }

    /// Resolves a map given by name or by index in the object (Oko's map id).
    fn map_name(&self, ext: &str, map: &str) -> Result<String, String> {
        let e = self.named(ext)?;
        if e.map(map).is_ok() {
            return Ok(map.to_string());
        }
        let maps = e.maps().maps();
        if let Ok(i) = map.parse::<usize>() {
            if let Some(m) = maps.get(i) {
                return Ok(m.spec().name.clone());
            }
        }
        let names: Vec<&str> = maps.iter().map(|m| m.spec().name.as_str()).collect();
        Err(format!(
            "extension `{ext}` has no map `{map}` (its maps, by index: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("{i}={n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))
    }

    fn ext_report(&self, e: &Extension) -> ExtReport {
        let st = e.stats();
        let (verdict, reason) = match e.verification() {
            Verification::Accepted => ("accepted".to_string(), None),
            Verification::Unverified { reason } => ("unverified".to_string(), Some(reason.clone())),
        };
        let mut used_by = self.dp.rules_using(e.name());
        for (no, _) in &self.ports {
            if self.dp.port_hook(*no).as_deref() == Some(e.name()) {
                used_by.push(format!("port hook on port {no}"));
            }
        }
        ExtReport {
            name: e.name().to_string(),
            abi: abi_name(e.abi()).into(),
            section: e.section().into(),
            program: e.program_name().into(),
            source: self
                .sources
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(e.name())
                .cloned()
                .flatten(),
            insns: e.insn_count(),
            maps: e
                .maps()
                .maps()
                .iter()
                .map(|m| {
                    let s = m.spec();
                    MapDesc {
                        name: s.name.clone(),
                        kind: s.kind.name().into(),
                        key_size: s.key_size,
                        value_size: s.value_size,
                        max_entries: s.max_entries,
                    }
                })
                .collect(),
            verdict,
            reason,
            tier: e.tier().name().into(),
            runs: st.runs,
            drops: st.drops,
            faults: st.faults,
            ns_per_run: st.ns_per_run(),
            used_by,
        }
    }

    fn apply(&self, fms: &[FlowMod]) -> Result<usize, String> {
        check_extensions(&self.dp, fms)?;
        let now = monotonic_ns();
        let mut n = 0;
        for fm in fms {
            n += self
                .dp
                .with_bridge(|b| b.apply_flow_mod(fm, now))
                .map_err(|e| e.to_string())?
                .len();
        }
        Ok(n)
    }

    fn dispatch(&self, req: Request) -> Result<Reply, String> {
        let dp = &self.dp;
        let s = |e: crate::dpif::DpError| e.to_string();
        match req {
            Request::Show => {
                let stats = self.stats()?;
                let mut sum = DpStats::default();
                let mut megaflows = 0;
                for w in &stats {
                    sum.merge(&w.dp);
                    megaflows += w.megaflows;
                }
                Ok(Reply::Show(ShowReply {
                    bridge: self.bridge.clone(),
                    pid: std::process::id(),
                    ctl: self.ctl_path.display().to_string(),
                    protocol: PROTOCOL_VERSION,
                    uptime_s: self.started.elapsed().as_secs_f64(),
                    workers: self.workers.len(),
                    reclassify: reclassify_name(dp.reclassify()).into(),
                    ports: self
                        .ports
                        .iter()
                        .map(|(no, i)| PortDesc {
                            port: *no,
                            interface: i.name.clone(),
                            ifindex: i.ifindex,
                            mtu: i.mtu,
                            mac: mac_text(&i.mac),
                            hook: dp.port_hook(*no),
                        })
                        .collect(),
                    flows: dp.dump_flows().len(),
                    extensions: dp
                        .extensions()
                        .iter()
                        .map(|e| e.name().to_string())
                        .collect(),
                    cache: CacheReport {
                        emc_hits: sum.emc_hits,
                        megaflow_hits: sum.megaflow_hits,
                        upcalls: sum.upcalls,
                        megaflows,
                    },
                }))
            }
            Request::ExtLoad {
                name,
                object,
                source,
                section,
                abi,
                replace,
                unverified,
            } => {
                if name.is_empty() || name.contains([',', ' ', '(', ')', '=']) {
                    return Err(format!(
                        "`{name}` cannot name an extension (rules reference it as bpf_filter={name})"
                    ));
                }
                let bytes = hex_decode(&object).map_err(|e| format!("object: {e}"))?;
                let abi = match abi.as_deref() {
                    None => None,
                    Some("xdp") => Some(Abi::Xdp),
                    Some("ubpf") => Some(Abi::Ubpf),
                    Some(a) => return Err(format!("unknown ABI `{a}` (expected xdp or ubpf)")),
                };
                let opts = LoadOptions {
                    section,
                    abi,
                    replace,
                    allow_unverified: unverified,
                    tier: None,
                    workers: self.workers.len(),
                };
                let ext = dp.load_extension(&name, &bytes, &opts).map_err(s)?;
                self.sources
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name, source);
                Ok(Reply::Extensions(vec![self.ext_report(&ext)]))
            }
            Request::ExtList => Ok(Reply::Extensions(
                dp.extensions().iter().map(|e| self.ext_report(e)).collect(),
            )),
            Request::ExtUnload { name } => {
                self.named(&name)?;
                dp.unload_extension(&name).map_err(s)?;
                self.sources
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&name);
                Ok(Reply::Done(String::new()))
            }
            Request::MapDump { ext, map } => {
                let map = self.map_name(&ext, &map)?;
                let e = self.named(&ext)?;
                let m = e.map(&map).map_err(|e| e.to_string())?;
                let sp = m.spec();
                let entries = dp
                    .map_dump(&ext, &map)
                    .map_err(s)?
                    .into_iter()
                    .map(|(k, v)| (hex_encode(&k), hex_encode(&v)))
                    .collect();
                Ok(Reply::Map(MapReport {
                    ext,
                    map: MapDesc {
                        name: sp.name.clone(),
                        kind: sp.kind.name().into(),
                        key_size: sp.key_size,
                        value_size: sp.value_size,
                        max_entries: sp.max_entries,
                    },
                    entries,
                }))
            }
            Request::MapUpdate {
                ext,
                map,
                key,
                value,
            } => {
                let map = self.map_name(&ext, &map)?;
                dp.map_update(&ext, &map, &key, &value).map_err(s)?;
                Ok(Reply::Done(String::new()))
            }
            Request::MapDelete { ext, map, key } => {
                let map = self.map_name(&ext, &map)?;
                dp.map_delete(&ext, &map, &key).map_err(s)?;
                Ok(Reply::Done(String::new()))
            }
            Request::AddFlow { flow } => {
                let fm = parse_flow_mod(&flow, FlowModCommand::Add).map_err(|e| e.to_string())?;
                self.apply(&[fm])?;
                Ok(Reply::Done(String::new()))
            }
            Request::AddFlows { text } => {
                let fms =
                    ofproto_bridge::ofctl::parse_flows_file(&text).map_err(|e| e.to_string())?;
                self.apply(&fms)?;
                Ok(Reply::Done(format!("{} flow mods", fms.len())))
            }
            Request::ModFlows { flow, strict } => {
                let cmd = if strict {
                    FlowModCommand::ModifyStrict
                } else {
                    FlowModCommand::Modify
                };
                let fm = parse_flow_mod(&flow, cmd).map_err(|e| e.to_string())?;
                let n = self.apply(&[fm])?;
                Ok(Reply::Done(format!("{n} flows modified")))
            }
            Request::DelFlows { flow, strict } => {
                let cmd = if strict {
                    FlowModCommand::DeleteStrict
                } else {
                    FlowModCommand::Delete
                };
                let fm = parse_flow_mod(flow.as_deref().unwrap_or(""), cmd)
                    .map_err(|e| e.to_string())?;
                let n = self.apply(&[fm])?;
                Ok(Reply::Done(format!("{n} flows deleted")))
            }
            Request::DumpFlows { flow } => {
                let sel = match flow.as_deref() {
                    None => None,
                    Some(f) => {
                        let fm =
                            parse_flow_mod(f, FlowModCommand::Delete).map_err(|e| e.to_string())?;
                        Some(RuleSelector {
                            table: (fm.rule.table != TABLE_ALL).then_some(fm.rule.table),
                            r#match: fm.rule.r#match.clone(),
                            strict_priority: None,
                            cookie: fm.cookie,
                            cookie_mask: fm.cookie_mask,
                            out_port: fm.out_port,
                        })
                    }
                };
                self.ask(WorkerMsg::Sync)?;
                let now = monotonic_ns();
                let mut rows: Vec<FlowReport> = dp
                    .dump_flows()
                    .into_iter()
                    .filter(|(_, r, _)| sel.as_ref().is_none_or(|s| s.selects(r)))
                    .map(|(_, r, m)| FlowReport {
                        table: m.table,
                        priority: r.priority,
                        cookie: r.cookie,
                        duration_ns: now.saturating_sub(m.created_ns),
                        idle_age_s: now.saturating_sub(m.last_used_ns) / 1_000_000_000,
                        n_packets: m.stats.packets,
                        n_bytes: m.stats.bytes,
                        idle_timeout: r.idle_timeout,
                        hard_timeout: r.hard_timeout,
                        r#match: format_match(&r.r#match, r.priority),
                        actions: format_actions(&r.actions, Some(&r.r#match)),
                    })
                    .collect();
                rows.sort_by(|a, b| a.table.cmp(&b.table).then(b.priority.cmp(&a.priority)));
                Ok(Reply::Flows(rows))
            }
            Request::DumpPorts => {
                let stats = self.stats()?;
                let mut sum = DpStats::default();
                for w in &stats {
                    sum.merge(&w.dp);
                }
                let rows = self
                    .ports
                    .iter()
                    .map(|(no, info)| {
                        let p = sum.ports.get(no).cloned().unwrap_or_default();
                        let mut r = PortReport {
                            port: *no,
                            interface: info.name.clone(),
                            rx_packets: p.rx_packets,
                            rx_bytes: p.rx_bytes,
                            rx_dropped: p.dropped(),
                            forwarded: p.forwarded,
                            tx_packets: p.tx_packets,
                            tx_bytes: p.tx_bytes,
                            drops: p
                                .drops
                                .iter()
                                .map(|(r, n)| (drop_reason_name(*r).to_string(), *n))
                                .collect(),
                            ..PortReport::default()
                        };
                        for w in &stats {
                            if let Some(s) = w.sockets.get(no) {
                                r.add_socket_stats(s);
                            }
                        }
                        r
                    })
                    .collect();
                Ok(Reply::Ports(rows))
            }
            Request::DumpMegaflows => Ok(Reply::Megaflows(
                self.ask(WorkerMsg::Megaflows)?
                    .into_iter()
                    .enumerate()
                    .map(|(worker, flows)| WorkerMegaflows { worker, flows })
                    .collect(),
            )),
            Request::PortHook { port, ext } => {
                if let Some(e) = &ext {
                    self.named(e)?;
                }
                if !self.ports.iter().any(|(no, _)| *no == port) {
                    let nos: Vec<String> = self.ports.iter().map(|(n, _)| n.to_string()).collect();
                    return Err(format!("no port {port} (ports: {})", nos.join(", ")));
                }
                dp.set_port_hook(port, ext.as_deref()).map_err(s)?;
                Ok(Reply::Done(String::new()))
            }
            Request::SetReclassify { policy } => {
                let p = parse_reclassify(&policy)?;
                dp.set_reclassify(p);
                Ok(Reply::Done(String::new()))
            }
            Request::Shutdown => {
                self.stop.store(true, Ordering::Release);
                for w in &self.workers {
                    w.wake.notify();
                }
                Ok(Reply::Done("shutting down".into()))
            }
        }
    }
}
