//! Test bed for the running switch: a network namespace with two veth pairs, the daemon
//! binary on the switch ends, raw sockets on the host ends, and the client verbs.
//!
//! ```text
//!   test ── a0 ═══ sa ── bpfswitch daemon (port 1 = sa, port 2 = sb) ── sb ═══ b0 ── test
//! ```
//!
//! Everything lives in one namespace per test (unique name), so tests run in parallel; IPv6
//! is disabled in it so the kernel sends nothing of its own on the links. [`Bed`]'s `Drop`
//! stops the daemon and deletes the namespace (and with it the veths) even when a test
//! fails. Creating the namespace needs root; without it [`Bed::new`] prints a loud SKIPPED
//! line and returns `None`, unless `BPFSWITCH_REQUIRE_NETNS=1` is set, which makes it fail.

#![allow(dead_code, reason = "each test file uses a different part of the bed")]

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The bpfswitch binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_bpfswitch");

/// MAC addresses of the two hosts.
pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
/// Host B's MAC address.
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
/// Host A's IPv4 address, 10.0.0.1.
pub const IP_A: u32 = 0x0a00_0001;
/// Host B's IPv4 address, 10.0.0.2.
pub const IP_B: u32 = 0x0a00_0002;

/// The extensions directory.
pub fn ext_path(name: &str) -> String {
    format!("{}/extensions/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Says loudly that a test is skipped and why, straight to stderr so the harness's capture
/// cannot hide it.
pub fn skip_loudly(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {test}: {why} ***\n");
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn ip(args: &[&str]) -> Result<(), String> {
    let o = run(Command::new("ip").args(args));
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// A raw AF_PACKET socket on a host-side interface of the bed, independent of the switch's
/// own port code.
pub struct RawSock {
    fd: OwnedFd,
}

impl RawSock {
    /// Sends one frame.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is a live slice of the length passed.
        let r = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            r,
            frame.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Receives one incoming frame, waiting at most `timeout`. A VLAN tag the kernel took
    /// out of the frame (into `PACKET_AUXDATA`) is put back, so frames compare as on the wire.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut p = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one live pollfd.
            let n = unsafe { libc::poll(&mut p, 1, left.as_millis() as libc::c_int) };
            if n <= 0 {
                return None;
            }
            // SAFETY: plain old data; zeroes are valid.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let mut control = [0u64; 8];
            // SAFETY: plain old data; zeroes are valid.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control);
            // SAFETY: every pointer in `msg` refers to a live buffer of the length given.
            let r = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
            if r < 0 {
                continue;
            }
            // Our own transmissions show up as outgoing: skip them.
            if sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let mut frame = buf[..r as usize].to_vec();
            // SAFETY: the CMSG macros walk the control buffer recvmsg filled.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA
                    {
                        let aux = libc::CMSG_DATA(c)
                            .cast::<libc::tpacket_auxdata>()
                            .read_unaligned();
                        if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 && frame.len() >= 12 {
                            let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                                aux.tp_vlan_tpid
                            } else {
                                0x8100
                            };
                            let mut tag = tpid.to_be_bytes().to_vec();
                            tag.extend_from_slice(&aux.tp_vlan_tci.to_be_bytes());
                            frame.splice(12..12, tag);
                        }
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            return Some(frame);
        }
    }

    /// Every incoming frame that `keep` accepts, until `want` of them arrived or nothing
    /// arrived for `quiet`.
    pub fn collect(
        &self,
        want: usize,
        quiet: Duration,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        while got.len() < want {
            match self.recv(quiet) {
                Some(f) if keep(&f) => got.push(f),
                Some(_) => {}
                None => break,
            }
        }
        got
    }
}

/// Opens a raw socket on `ifname` inside namespace `ns` (a thread enters the namespace,
/// opens the socket and ends; the socket stays bound to the namespace's interface).
fn raw_socket(ns: &str, ifname: &str) -> RawSock {
    let (ns, ifname) = (ns.to_string(), ifname.to_string());
    std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("netns file");
        // SAFETY: setns on this thread only, with a valid namespace descriptor.
        assert_eq!(
            unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) },
            0,
            "setns: {}",
            std::io::Error::last_os_error()
        );
        let proto = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
        // SAFETY: plain socket(2) call; checked below.
        let fd =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let c = std::ffi::CString::new(ifname.clone()).unwrap();
        // SAFETY: valid C string.
        let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
        assert!(idx > 0, "no interface {ifname}");
        // SAFETY: plain old data; zeroes are valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = idx as i32;
        // SAFETY: valid sockaddr_ll of the size passed.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
        let one: libc::c_int = 1;
        // SAFETY: a live int of the size passed.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_AUXDATA,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "PACKET_AUXDATA: {}", std::io::Error::last_os_error());
        RawSock { fd }
    })
    .join()
    .expect("raw socket thread")
}

/// The test bed: namespace, veths, host sockets and (once started) the daemon.
pub struct Bed {
    /// Namespace name.
    pub ns: String,
    /// Scratch directory (control socket, daemon log, flow files).
    pub dir: PathBuf,
    /// Control socket.
    pub ctl: PathBuf,
    /// Host A's socket (on a0, wired to switch port 1).
    pub a: RawSock,
    /// Host B's socket (on b0, wired to switch port 2).
    pub b: RawSock,
    daemon: Option<Child>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Bed {
    /// Creates the namespace and the veths, or returns `None` (after saying so loudly)
    /// when namespaces cannot be created here.
    pub fn new(test: &str) -> Option<Bed> {
        let ns = format!(
            "bpfsw-{}-{}-{}",
            test.chars().take(12).collect::<String>(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        if let Err(e) = ip(&["netns", "add", &ns]) {
            if std::env::var_os("BPFSWITCH_REQUIRE_NETNS").is_some_and(|v| v == "1") {
                panic!("BPFSWITCH_REQUIRE_NETNS=1 but a network namespace cannot be created: {e}");
            }
            skip_loudly(
                test,
                &format!("cannot create a network namespace (needs root): {e}"),
            );
            return None;
        }
        let dir = std::env::temp_dir().join(&ns);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The guard exists from here on, so a failure below still cleans up.
        let mut guard = NsGuard {
            ns: ns.clone(),
            dir: dir.clone(),
        };
        let setup = || -> Result<(), String> {
            let sysctl = run(Command::new("ip").args([
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]));
            if !sysctl.status.success() {
                return Err(String::from_utf8_lossy(&sysctl.stderr).into());
            }
            for (host, sw) in [("a0", "sa"), ("b0", "sb")] {
                ip(&[
                    "-n", &ns, "link", "add", host, "type", "veth", "peer", "name", sw,
                ])?;
                for i in [host, sw] {
                    ip(&["-n", &ns, "link", "set", i, "up"])?;
                }
            }
            Ok(())
        };
        if let Err(e) = setup() {
            panic!("setting up namespace {ns}: {e}");
        }
        let a = raw_socket(&ns, "a0");
        let b = raw_socket(&ns, "b0");
        let ctl = dir.join("bpfswitch.ctl");
        // The bed takes over the cleanup.
        guard.ns.clear();
        Some(Bed {
            ns,
            dir,
            ctl,
            a,
            b,
            daemon: None,
        })
    }

    /// Starts the daemon with ports 1=sa and 2=sb, the given flows and extra arguments, and
    /// waits until its control socket answers.
    pub fn start(&mut self, flows: &str, extra: &[&str]) {
        let flow_file = self.dir.join("flows.txt");
        std::fs::write(&flow_file, flows).unwrap();
        let log = std::fs::File::create(self.dir.join("daemon.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, BIN, "daemon"])
            .args(["--port", "1=sa", "--port", "2=sb"])
            .arg("--flows")
            .arg(&flow_file)
            .arg("--ctl")
            .arg(&self.ctl)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning the daemon");
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::os::unix::net::UnixStream::connect(&self.ctl).is_ok() {
                return;
            }
            if let Some(st) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("the daemon exited ({st}) at start:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the daemon's control socket did not appear:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// Runs a client verb (with `--ctl`) and returns its output.
    pub fn ctl_output(&self, args: &[&str]) -> Output {
        let mut c = Command::new(BIN);
        c.args(args).arg("--ctl").arg(&self.ctl);
        run(&mut c)
    }

    /// Runs a client verb that must succeed; returns its stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let o = self.ctl_output(args);
        assert!(
            o.status.success(),
            "bpfswitch {} failed ({}):\n{}\ndaemon log:\n{}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs a client verb that must fail with exit code 1; returns its stderr.
    pub fn ctl_fails(&self, args: &[&str]) -> String {
        let o = self.ctl_output(args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "bpfswitch {} should have failed; stdout:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout)
        );
        let e = String::from_utf8(o.stderr).unwrap();
        assert!(e.starts_with("bpfswitch: "), "{e}");
        e
    }

    /// A verb's `--json` reply.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ctl(&a)).expect("JSON reply")
    }

    /// `dump-ports` counters of `port` (from the JSON reply).
    pub fn port_stats(&self, port: u32) -> serde_json::Value {
        let v = self.json(&["dump-ports"]);
        v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == port)
            .cloned()
            .unwrap_or_else(|| panic!("no port {port} in {v}"))
    }

    /// Waits until the switch has received `n` frames on `port` (so it has processed
    /// everything sent there); panics after a few seconds.
    pub fn wait_rx(&self, port: u32, n: u64) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let p = self.port_stats(port);
            let rx = p["rx_packets"].as_u64().unwrap();
            if rx >= n {
                assert_eq!(rx, n, "more frames than sent on port {port}: {p}");
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "port {port} received {rx} of {n} frames:\n{p}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the daemon with a `shutdown` request and returns its exit status.
    pub fn shutdown(&mut self) -> std::process::ExitStatus {
        self.ctl(&["shutdown"]);
        self.wait_exit()
    }

    /// Waits (a few seconds at most) for the daemon to exit.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let child = self.daemon.as_mut().expect("started");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.daemon = None;
                return st;
            }
            assert!(Instant::now() < deadline, "the daemon did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal to the daemon (the `ip netns exec` wrapper execs it, so the child's
    /// pid is the daemon's).
    pub fn signal(&self, sig: libc::c_int) {
        let pid = self.daemon.as_ref().expect("started").id() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    /// Whether the control socket file exists.
    pub fn ctl_exists(&self) -> bool {
        Path::new(&self.ctl).exists()
    }
}

/// Deletes the namespace and scratch directory unless disarmed (empty name).
struct NsGuard {
    ns: String,
    dir: PathBuf,
}

impl Drop for NsGuard {
    fn drop(&mut self) {
        if !self.ns.is_empty() {
            let _ = ip(&["netns", "del", &self.ns]);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = ip(&["netns", "del", &self.ns]);
        if std::thread::panicking() {
            eprintln!("daemon log of {}:\n{}", self.ns, self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A UDP frame from host A (10.0.0.1, or `src` when given) to host B with a marker payload.
pub fn udp_a_to_b(src_ip: u32, sport: u16, dport: u16, marker: u32) -> Vec<u8> {
    let mut payload = b"bpfswitch-test:".to_vec();
    payload.extend_from_slice(&marker.to_be_bytes());
    bpfswitch::packet::builder::udp4_frame(MAC_A, MAC_B, src_ip, IP_B, sport, dport, &payload)
}

/// [`udp_a_to_b`]'s frame with an 802.1Q tag (VLAN `vid`, priority `pcp`).
pub fn tagged(frame: &[u8], vid: u16, pcp: u8) -> Vec<u8> {
    let tci = u16::from(pcp) << 13 | vid;
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&0x8100u16.to_be_bytes());
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// A UDP frame from host B to host A with a marker payload.
pub fn udp_b_to_a(sport: u16, dport: u16, marker: u32) -> Vec<u8> {
    let mut payload = b"bpfswitch-test:".to_vec();
    payload.extend_from_slice(&marker.to_be_bytes());
    bpfswitch::packet::builder::udp4_frame(MAC_B, MAC_A, IP_B, IP_A, sport, dport, &payload)
}

/// The marker of a test frame, if it is one.
pub fn marker(frame: &[u8]) -> Option<u32> {
    let tag = b"bpfswitch-test:";
    let at = frame.windows(tag.len()).position(|w| w == tag)? + tag.len();
    Some(u32::from_be_bytes(frame.get(at..at + 4)?.try_into().ok()?))
}
