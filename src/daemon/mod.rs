//! A running switch: ports on network interfaces, controlled over a Unix socket.
//!
//! `bpfswitch daemon` is to bpfswitch what `ovs-vswitchd` is to Open vSwitch, and the
//! client verbs (`bpfswitch add-flow`, `ext load`, `map update`, `dump-ports`...) are its
//! `ovs-ofctl` and `ovs-appctl`. The pieces:
//!
//! - [`pmd`]: packet-processing threads, each owning a [`crate::dpif::Worker`] and one
//!   AF_PACKET socket per port ([`crate::port::afpacket`]);
//! - [`ctl`]: the control thread, a Unix socket server that applies configuration to the
//!   shared [`crate::dpif::Datapath`] and asks workers for what only they hold;
//! - [`proto`]: the JSON-lines request/response protocol between them and clients;
//! - [`client`]: the client verbs: connect, send one request, print the reply the way
//!   ovs-ofctl, ovs-appctl and bpftool print theirs.
//!
//! The main thread sets everything up, then waits for SIGTERM, SIGINT or SIGHUP (blocked in
//! every thread, taken with `sigtimedwait`) or a `shutdown` request, stops the workers,
//! which credit their last packets to the rules, and removes the socket.
//!
//! **Time:** the datapath runs on the monotonic clock (rule timeouts, `duration=`,
//! packet timestamps and the extensions' `bpf_ktime_get_ns`).

pub mod client;
pub mod ctl;
pub mod pmd;
pub mod proto;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Args;
use ofproto_bridge::PortNo;

use crate::cli::CliError;
use crate::dpif::{Datapath, DpConfig, DpStats};
use crate::ext::LoadOptions;
use crate::port::afpacket::{monotonic_ns, AfPacketOptions, AfPacketPort, Fanout};

/// Default control socket (`$BPFSWITCH_CTL` overrides it, `--ctl` overrides both).
pub const DEFAULT_CTL: &str = "/run/bpfswitch/bpfswitch.ctl";

/// The control socket path: `--ctl`, else `$BPFSWITCH_CTL`, else [`DEFAULT_CTL`].
pub fn ctl_path(arg: Option<&Path>) -> PathBuf {
    if let Some(p) = arg {
        return p.to_path_buf();
    }
    match std::env::var_os("BPFSWITCH_CTL") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_CTL),
    }
}

/// `bpfswitch daemon`: runs the switch on network interfaces.
#[derive(Args, Debug, Clone)]
pub struct DaemonArgs {
    /// An OpenFlow port on a network interface, as NUMBER=IFNAME (repeat for more ports).
    #[arg(long = "port", value_name = "N=IFNAME", required = true)]
    pub ports: Vec<String>,
    /// Flows to install at start, in `ovs-ofctl add-flows` syntax.
    #[arg(long, value_name = "FILE")]
    pub flows: Option<PathBuf>,
    /// Extensions to load at start (before the flows), as NAME=FILE.o (repeatable).
    #[arg(long = "ext", value_name = "NAME=FILE.o")]
    pub exts: Vec<String>,
    /// Control socket [default: $BPFSWITCH_CTL, else /run/bpfswitch/bpfswitch.ctl].
    #[arg(long, value_name = "PATH")]
    pub ctl: Option<PathBuf>,
    /// Packet-processing threads (each with its own caches; the kernel spreads flows over
    /// them with PACKET_FANOUT_HASH).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub workers: usize,
    /// When to reclassify after an extension action: verifier (when its write set touches
    /// what later stages read), always, or never (unsafe; benchmarks only).
    #[arg(long, default_value = "verifier", value_name = "POLICY")]
    pub reclassify: String,
    /// Bridge name, which Oko's verbs (`load-filter-prog BRIDGE ...`) must give.
    #[arg(long, default_value = "br0", value_name = "NAME")]
    pub bridge: String,
    /// Do not put the interfaces into promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,
}

/// Parses `N=IFNAME` port arguments; numbers are OpenFlow port numbers (1 to 65279).
pub fn parse_ports(args: &[String]) -> Result<Vec<(PortNo, String)>, CliError> {
    let mut out: Vec<(PortNo, String)> = Vec::new();
    for a in args {
        let (n, ifname) = a.split_once('=').ok_or_else(|| {
            CliError::Usage(format!("--port {a}: expected NUMBER=IFNAME, e.g. 1=eth0"))
        })?;
        let no: PortNo = n
            .parse()
            .ok()
            .filter(|n| (1..=0xfeff).contains(n))
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "--port {a}: `{n}` is not an OpenFlow port number (1 to 65279)"
                ))
            })?;
        if ifname.is_empty() {
            return Err(CliError::Usage(format!("--port {a}: no interface name")));
        }
        if out.iter().any(|(m, _)| *m == no) {
            return Err(CliError::Usage(format!(
                "--port {a}: port {no} given twice"
            )));
        }
        if out.iter().any(|(_, i)| i == ifname) {
            return Err(CliError::Usage(format!(
                "--port {a}: interface {ifname} given twice"
            )));
        }
        out.push((no, ifname.to_string()));
    }
    Ok(out)
}

/// Binds the control socket at `path`, refusing if a live daemon answers there and
/// replacing a stale socket file.
fn bind_ctl(path: &Path) -> Result<std::os::unix::net::UnixListener, CliError> {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::{UnixListener, UnixStream};
    let fail = |what: &str, e: std::io::Error| {
        CliError::Failed(format!("control socket {}: {what}: {e}", path.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail("creating its directory", e))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(CliError::Failed(format!(
                "control socket {}: another bpfswitch daemon is running there (use --ctl)",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(|e| fail("removing the stale socket", e))?;
    }
    let l = UnixListener::bind(path).map_err(|e| fail("bind", e))?;
    // Owner and group only: the socket controls the switch.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| fail("chmod", e))?;
    Ok(l)
}

/// The signals that stop the daemon, blocked in every thread and taken by the main one.
fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a sigset_t we own.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        set
    }
}

/// Removes the control socket when the daemon ends, however it ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the switch until a signal or a `shutdown` request.
pub fn run(args: &DaemonArgs) -> Result<(), CliError> {
    let ports = parse_ports(&args.ports)?;
    let policy = ctl::parse_reclassify(&args.reclassify).map_err(CliError::Usage)?;
    if args.workers == 0 || args.workers > 64 {
        return Err(CliError::Usage(format!(
            "--workers {}: expected 1 to 64",
            args.workers
        )));
    }
    let ctl_path = ctl_path(args.ctl.as_deref());

    let dp = Datapath::new(DpConfig {
        workers: args.workers,
        ..DpConfig::default()
    });
    for (no, _) in &ports {
        dp.add_port(*no);
    }
    dp.set_reclassify(policy);
    let mut sources = BTreeMap::new();
    for e in &args.exts {
        let (name, file) = e
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--ext {e}: expected NAME=FILE.o")))?;
        let bytes = std::fs::read(file)
            .map_err(|err| CliError::Failed(format!("--ext {e}: {file}: {err}")))?;
        dp.load_extension(name, &bytes, &LoadOptions::default())
            .map_err(|err| CliError::Failed(format!("--ext {e}: {err}")))?;
        sources.insert(name.to_string(), Some(file.to_string()));
    }
    if let Some(f) = &args.flows {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CliError::Failed(format!("--flows {}: {e}", f.display())))?;
        let fms = ofproto_bridge::ofctl::parse_flows_file(&text)
            .map_err(|e| CliError::Failed(format!("--flows {}: {e}", f.display())))?;
        ctl::check_extensions(&dp, &fms)
            .map_err(|e| CliError::Failed(format!("--flows {}: {e}", f.display())))?;
        let now = monotonic_ns();
        for fm in &fms {
            dp.flow_mod(fm, now)
                .map_err(|e| CliError::Failed(format!("--flows {}: {e}", f.display())))?;
        }
    }

    // One socket per worker and port; with several workers, one fanout group per port.
    let mut sockets: Vec<Vec<(PortNo, AfPacketPort)>> =
        (0..args.workers).map(|_| Vec::new()).collect();
    let mut infos = Vec::new();
    for (no, ifname) in &ports {
        let mut group = None;
        for (w, socks) in sockets.iter_mut().enumerate() {
            let fanout = match (args.workers, group) {
                (1, _) => Fanout::None,
                (_, None) => Fanout::New,
                (_, Some(g)) => Fanout::Join(g),
            };
            let opts = AfPacketOptions {
                promiscuous: !args.no_promisc,
                fanout,
            };
            let p = AfPacketPort::open(ifname, &opts)
                .map_err(|e| CliError::Failed(format!("port {no}: {e}{}", hint_for_open(&e))))?;
            if fanout == Fanout::New {
                group = Some(p.fanout_group().ok_or_else(|| {
                    CliError::Failed(format!("port {no}: {ifname}: no fanout group id"))
                })?);
            }
            if w == 0 {
                infos.push((*no, p.info().clone()));
            }
            socks.push((*no, p));
        }
    }

    let listener = bind_ctl(&ctl_path)?;
    let _cleanup = RemoveOnDrop(ctl_path.clone());

    // Block the stop signals before any thread starts, so every thread inherits the mask
    // and only the main thread's sigtimedwait takes them.
    let sigs = stop_signals();
    // SAFETY: `sigs` is an initialised sigset_t; a null old-set pointer is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &sigs, std::ptr::null_mut()) };

    let stop = Arc::new(AtomicBool::new(false));
    let mut links = Vec::new();
    let mut threads = Vec::new();
    for (id, socks) in sockets.into_iter().enumerate() {
        let (tx, rx) = channel();
        let wake =
            Arc::new(pmd::EventFd::new().map_err(|e| CliError::Failed(format!("eventfd: {e}")))?);
        links.push(ctl::WorkerLink {
            tx,
            wake: wake.clone(),
        });
        let (dp, stop) = (dp.clone(), stop.clone());
        let t = std::thread::Builder::new()
            .name(format!("bpfswitch-pmd{id}"))
            .spawn(move || pmd::run(dp, id, socks, rx, wake, stop))
            .map_err(|e| CliError::Failed(format!("starting worker {id}: {e}")))?;
        threads.push(t);
    }
    let control = Arc::new(ctl::Control {
        dp: dp.clone(),
        workers: links,
        ports: infos.clone(),
        bridge: args.bridge.clone(),
        ctl_path: ctl_path.clone(),
        started: Instant::now(),
        stop: stop.clone(),
        sources: Mutex::new(sources),
    });
    let ctl_thread = {
        let c = control.clone();
        std::thread::Builder::new()
            .name("bpfswitch-ctl".into())
            .spawn(move || c.serve(listener))
            .map_err(|e| CliError::Failed(format!("starting the control thread: {e}")))?
    };
    let port_list: Vec<String> = infos
        .iter()
        .map(|(no, i)| format!("{no}={} (ifindex {})", i.name, i.ifindex))
        .collect();
    eprintln!(
        "bpfswitch: bridge {} running: ports {}; {} worker(s); control socket {}",
        args.bridge,
        port_list.join(", "),
        args.workers,
        ctl_path.display()
    );

    let timeout = libc::timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    let mut why = "shutdown request".to_string();
    while !stop.load(Ordering::Acquire) {
        // SAFETY: `sigs` and `timeout` are initialised; a null siginfo pointer is allowed.
        let sig = unsafe { libc::sigtimedwait(&sigs, std::ptr::null_mut(), &timeout) };
        if sig > 0 {
            why = match sig {
                libc::SIGTERM => "SIGTERM",
                libc::SIGINT => "SIGINT",
                _ => "SIGHUP",
            }
            .to_string();
            stop.store(true, Ordering::Release);
        }
    }
    for l in &control.workers {
        l.wake.notify();
    }
    let mut total = DpStats::default();
    for t in threads {
        if let Ok(s) = t.join() {
            total.merge(&s);
        }
    }
    let _ = ctl_thread.join();
    eprintln!(
        "bpfswitch: stopped ({why}): received {}, forwarded {}, dropped {}",
        total.rx(),
        total.forwarded(),
        total.dropped()
    );
    Ok(())
}

/// A hint for the usual reasons an interface cannot be opened.
fn hint_for_open(e: &crate::port::PortError) -> &'static str {
    use std::error::Error;
    let errno = e
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(|io| io.raw_os_error());
    match errno {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            " (AF_PACKET sockets need CAP_NET_RAW: run as root)"
        }
        Some(libc::ENODEV) => " (see `ip link`)",
        _ => "",
    }
}
