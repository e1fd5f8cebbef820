//! AF_PACKET ports: a raw packet socket bound to one Linux network interface.
//!
//! This is the port type of the running switch (`bpfswitch daemon`), in the manner of Open
//! vSwitch's `netdev-linux` ports: the socket is opened with protocol 0 and then bound to
//! the interface with `ETH_P_ALL`, so it never sees another interface's traffic; the
//! interface is put into promiscuous mode through a packet-socket membership (which the
//! kernel drops when the socket closes, so a crashed switch leaves no interface
//! promiscuous); frames the host itself sends on the interface (`PACKET_OUTGOING`, including
//! the switch's own transmissions) are ignored, with `PACKET_IGNORE_OUTGOING` where the
//! kernel has it and by the packet type otherwise. VLAN tags the kernel stripped into
//! metadata (`PACKET_AUXDATA`) are put back into the frame, as the datapath must see the
//! frame as it was on the wire.
//!
//! **Receiving never blocks:** [`Port::recv_batch`] returns what is waiting (possibly
//! nothing); the caller sleeps in `poll(2)` on [`AfPacketPort::fd`]. Frames longer than the
//! interface's MTU allows (for example GSO super-frames when segmentation offloads are on,
//! as they are by default on veth devices) do not fit the receive buffers and are counted
//! as receive errors, like a NIC drops frames above its MRU; turn the offloads off on such
//! interfaces (`ethtool -K IFACE gro off gso off tso off`), as Open vSwitch's documentation
//! advises for its userspace datapath.
//!
//! With several workers, each opens its own socket per interface and the sockets of one
//! interface join a `PACKET_FANOUT_HASH` group, so the kernel spreads flows over the workers
//! and keeps each flow on one worker (its caches and per-worker maps stay coherent).

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed, MaybeUninit};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use serde::Serialize;

use super::{Batch, Port, PortError};
use crate::packet::buf::{HEADROOM, TAILROOM};

/// Bytes of Ethernet header and up to two VLAN tags on top of the MTU.
const L2_OVERHEAD: usize = 14 + 8;
/// Receive buffer asked of the kernel for each socket (bytes; the kernel doubles it).
const RCVBUF: libc::c_int = 4 << 20;

/// Counters an AF_PACKET port keeps besides the datapath's (`dump-ports` shows them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AfPacketStats {
    /// Received frames too long for the receive buffer (dropped).
    pub rx_oversize: u64,
    /// Frames the kernel dropped because the socket's receive queue was full
    /// (`PACKET_STATISTICS`' `tp_drops`: the switch did not keep up).
    pub rx_kernel_drops: u64,
    /// Frames not sent for lack of socket buffers (`ENOBUFS`, `EAGAIN`).
    pub tx_dropped: u64,
    /// Frames not sent for any other reason (interface down, frame above the MTU...).
    pub tx_errors: u64,
}

impl AfPacketStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &AfPacketStats) {
        self.rx_oversize += other.rx_oversize;
        self.rx_kernel_drops += other.rx_kernel_drops;
        self.tx_dropped += other.tx_dropped;
        self.tx_errors += other.tx_errors;
    }
}

/// What [`AfPacketPort::open`] sets up besides binding the socket.
#[derive(Clone, Copy, Debug)]
pub struct AfPacketOptions {
    /// Put the interface into promiscuous mode (for as long as the socket is open).
    pub promiscuous: bool,
    /// Whether the socket shares the interface's traffic with others (one socket per
    /// worker).
    pub fanout: Fanout,
}

impl Default for AfPacketOptions {
    fn default() -> Self {
        AfPacketOptions {
            promiscuous: true,
            fanout: Fanout::None,
        }
    }
}

/// Membership in a `PACKET_FANOUT_HASH` group: the kernel hands each flow's frames to one
/// socket of the group (IP fragments are reassembled first, so they hash with their flow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fanout {
    /// The socket receives every frame of the interface.
    None,
    /// Create a group with an id the kernel picks (`PACKET_FANOUT_FLAG_UNIQUEID`); the
    /// other sockets join it with [`AfPacketPort::fanout_group`].
    New,
    /// Join the group with this id.
    Join(u16),
}

/// Facts about a network interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InterfaceInfo {
    /// Interface name.
    pub name: String,
    /// Kernel interface index.
    pub ifindex: u32,
    /// MTU in bytes.
    pub mtu: u32,
    /// Hardware address.
    pub mac: [u8; 6],
}

/// A switch port on a Linux network interface. See the module documentation.
pub struct AfPacketPort {
    info: InterfaceInfo,
    fd: OwnedFd,
    /// Largest frame received (longer ones are counted as oversize).
    frame_cap: usize,
    /// Zeros to size a fresh batch buffer with (allocates once per buffer).
    zeros: Vec<u8>,
    /// Whether the kernel filters outgoing frames for us.
    kernel_ignores_outgoing: bool,
    stats: AfPacketStats,
}

impl std::fmt::Debug for AfPacketPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfPacketPort")
            .field("info", &self.info)
            .field("fd", &self.fd)
            .finish()
    }
}

fn os_err(port: &str, op: &'static str) -> PortError {
    PortError::Os {
        port: port.to_string(),
        op,
        source: io::Error::last_os_error(),
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` points to a live `T` of `size_of::<T>()` bytes for the duration of the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An `ifreq` naming `name` (the name must be shorter than `IFNAMSIZ`).
fn ifreq(name: &str) -> Option<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return None;
    }
    // SAFETY: `ifreq` is plain old data; all zeros is a valid value.
    let mut r: libc::ifreq = unsafe { zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Some(r)
}

/// Looks up interface `name` (index, MTU, MAC address) with `fd` as the ioctl socket.
fn interface_info_on(fd: RawFd, name: &str) -> Result<InterfaceInfo, PortError> {
    let bad_name = || PortError::Os {
        port: name.to_string(),
        op: "interface name",
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a valid interface name"),
    };
    let cname = CString::new(name).map_err(|_| bad_name())?;
    // SAFETY: `cname` is a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        return Err(PortError::Os {
            port: name.to_string(),
            op: "no such network interface",
            source: io::Error::last_os_error(),
        });
    }
    let mut req = ifreq(name).ok_or_else(bad_name)?;
    // SAFETY: SIOCGIFMTU reads the name and writes `ifru_mtu` of a valid `ifreq`.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut req) } != 0 {
        return Err(os_err(name, "SIOCGIFMTU"));
    }
    // SAFETY: the kernel filled the `ifru_mtu` member.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu }.max(0) as u32;
    let mut req = ifreq(name).ok_or_else(bad_name)?;
    // SAFETY: SIOCGIFHWADDR reads the name and writes `ifru_hwaddr` of a valid `ifreq`.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req) } != 0 {
        return Err(os_err(name, "SIOCGIFHWADDR"));
    }
    // SAFETY: the kernel filled the `ifru_hwaddr` member.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(InterfaceInfo {
        name: name.to_string(),
        ifindex,
        mtu,
        mac,
    })
}

/// Looks up a network interface by name (index, MTU, MAC address).
pub fn interface_info(name: &str) -> Result<InterfaceInfo, PortError> {
    // SAFETY: plain socket(2) call; the result is checked and owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_err(name, "socket"));
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    interface_info_on(fd.as_raw_fd(), name)
}

/// Nanoseconds on the monotonic clock (the clock of the daemon's datapath, as `ktime`).
pub fn monotonic_ns() -> u64 {
    let mut ts = MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: `clock_gettime` writes a `timespec` to the valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, ts.as_mut_ptr()) };
    // SAFETY: initialised by the call above (CLOCK_MONOTONIC cannot fail).
    let ts = unsafe { ts.assume_init() };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl AfPacketPort {
    /// Opens a raw socket on interface `ifname` and binds it (needs `CAP_NET_RAW`).
    pub fn open(ifname: &str, opts: &AfPacketOptions) -> Result<AfPacketPort, PortError> {
        // Protocol 0: the socket receives nothing until it is bound to the interface below.
        // SAFETY: plain socket(2) call; the result is checked and owned below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(os_err(ifname, "socket(AF_PACKET)"));
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = fd.as_raw_fd();
        let info = interface_info_on(raw, ifname)?;

        // SAFETY: `sockaddr_ll` is plain old data; all zeros is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = info.ifindex as i32;
        // SAFETY: `sll` is a valid `sockaddr_ll` of the length passed.
        let r = unsafe {
            libc::bind(
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(os_err(ifname, "bind"));
        }
        if opts.promiscuous {
            // SAFETY: `packet_mreq` is plain old data; all zeros is a valid value.
            let mut mr: libc::packet_mreq = unsafe { zeroed() };
            mr.mr_ifindex = info.ifindex as i32;
            mr.mr_type = libc::PACKET_MR_PROMISC as u16;
            setsockopt(raw, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mr).map_err(|e| {
                PortError::Os {
                    port: ifname.into(),
                    op: "PACKET_ADD_MEMBERSHIP (promiscuous mode)",
                    source: e,
                }
            })?;
        }
        let one: libc::c_int = 1;
        setsockopt(raw, libc::SOL_PACKET, libc::PACKET_AUXDATA, &one).map_err(|e| {
            PortError::Os {
                port: ifname.into(),
                op: "PACKET_AUXDATA",
                source: e,
            }
        })?;
        // Kernels before 4.20 lack it; the packet type check in `recv_batch` covers them.
        let kernel_ignores_outgoing =
            setsockopt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one).is_ok();
        // A larger queue absorbs bursts while a worker is busy; best effort (the kernel caps
        // it at net.core.rmem_max without CAP_NET_ADMIN).
        if setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RCVBUF).is_err() {
            let _ = setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &RCVBUF);
        }
        let mode = libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG;
        // The low 16 bits are the group id, the high 16 the mode and flags.
        let arg = match opts.fanout {
            Fanout::None => None,
            Fanout::New => Some((mode | libc::PACKET_FANOUT_FLAG_UNIQUEID) << 16),
            Fanout::Join(id) => Some(u32::from(id) | mode << 16),
        };
        if let Some(arg) = arg {
            let arg = arg as libc::c_int;
            setsockopt(raw, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg).map_err(|e| {
                PortError::Os {
                    port: ifname.into(),
                    op: "PACKET_FANOUT",
                    source: e,
                }
            })?;
        }
        let frame_cap = info.mtu as usize + L2_OVERHEAD;
        let mut port = AfPacketPort {
            zeros: vec![0; frame_cap + 4],
            frame_cap,
            info,
            fd,
            kernel_ignores_outgoing,
            stats: AfPacketStats::default(),
        };
        // Counters start now, not at socket creation.
        port.read_kernel_stats();
        port.stats = AfPacketStats::default();
        Ok(port)
    }

    /// The interface.
    pub fn info(&self) -> &InterfaceInfo {
        &self.info
    }

    /// The socket, to wait for received frames with `poll(2)`.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The id of the fanout group the socket is in, if any.
    pub fn fanout_group(&self) -> Option<u16> {
        let mut arg: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `arg` and `len` are valid for writes; the kernel writes an int.
        let r = unsafe {
            libc::getsockopt(
                self.fd(),
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                (&mut arg as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        // Not in a group: the kernel reports 0.
        (r == 0 && arg != 0).then_some((arg as u32 & 0xffff) as u16)
    }

    /// Whether the kernel drops outgoing frames before they reach the socket
    /// (`PACKET_IGNORE_OUTGOING`; otherwise they are skipped by packet type).
    pub fn kernel_ignores_outgoing(&self) -> bool {
        self.kernel_ignores_outgoing
    }

    /// The port's counters (reads the kernel's drop counter first).
    pub fn stats(&mut self) -> AfPacketStats {
        self.read_kernel_stats();
        self.stats
    }

    fn read_kernel_stats(&mut self) {
        // SAFETY: `tpacket_stats` is plain old data; all zeros is a valid value.
        let mut st: libc::tpacket_stats = unsafe { zeroed() };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `st` and `len` are valid for writes; the kernel writes at most `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        // Reading the counters resets them in the kernel, so they are accumulated.
        if r == 0 {
            self.stats.rx_kernel_drops += u64::from(st.tp_drops);
        }
    }

    /// Receives one frame into `buf` at `HEADROOM`; returns its length, `Ok(None)` when
    /// nothing is waiting, `Ok(Some(0))` for a frame that was skipped.
    fn recv_one(&mut self, buf: &mut crate::packet::PacketBuf) -> Result<Option<usize>, PortError> {
        let need = HEADROOM + self.frame_cap + 4 + TAILROOM;
        if buf.raw_parts_mut().0.len() < need {
            buf.load(&self.zeros);
        }
        let (storage, _, _) = buf.raw_parts_mut();
        let cap = self.frame_cap;
        let mut iov = libc::iovec {
            iov_base: storage[HEADROOM..].as_mut_ptr().cast(),
            iov_len: cap,
        };
        // SAFETY: plain old data; all zeros is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        // Room for one `tpacket_auxdata` control message, 8-byte aligned.
        let mut control = [0u64; 8];
        // SAFETY: plain old data; all zeros is a valid value.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 8]>();
        let n = loop {
            // SAFETY: every pointer in `msg` refers to a live buffer of the length given;
            // the iovec covers `cap` bytes of `storage` after the headroom, which `need`
            // guarantees exist.
            let n =
                unsafe { libc::recvmsg(self.fd(), &mut msg, libc::MSG_DONTWAIT | libc::MSG_TRUNC) };
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(None),
                // The interface went down or away: nothing to receive for now.
                Some(libc::ENETDOWN) | Some(libc::ENXIO) => return Ok(None),
                _ => {
                    return Err(PortError::Os {
                        port: self.info.name.clone(),
                        op: "recvmsg",
                        source: e,
                    })
                }
            }
        };
        if sll.sll_pkttype == libc::PACKET_OUTGOING {
            return Ok(Some(0));
        }
        if n > cap || msg.msg_flags & libc::MSG_TRUNC != 0 {
            self.stats.rx_oversize += 1;
            return Ok(Some(0));
        }
        let mut len = n;
        if let Some(aux) = auxdata(&msg) {
            let tagged = aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 || aux.tp_vlan_tci != 0;
            if tagged && len >= 12 {
                let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                    aux.tp_vlan_tpid
                } else {
                    0x8100
                };
                let f = &mut storage[HEADROOM..HEADROOM + len + 4];
                f.copy_within(12..len, 16);
                f[12..14].copy_from_slice(&tpid.to_be_bytes());
                f[14..16].copy_from_slice(&aux.tp_vlan_tci.to_be_bytes());
                len += 4;
            }
        }
        buf.set_bounds(HEADROOM, HEADROOM + len)
            .expect("the buffer was sized for the frame");
        Ok(Some(len))
    }
}

/// The `PACKET_AUXDATA` control message of a received frame, if any.
fn auxdata(msg: &libc::msghdr) -> Option<libc::tpacket_auxdata> {
    // SAFETY: `msg` was filled by recvmsg; the CMSG macros walk its control buffer within
    // `msg_controllen`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA {
                let p = libc::CMSG_DATA(c).cast::<libc::tpacket_auxdata>();
                return Some(p.read_unaligned());
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

impl Port for AfPacketPort {
    fn name(&self) -> &str {
        &self.info.name
    }

    /// Fills `batch` with the frames waiting on the socket, never blocking; zero means
    /// nothing is waiting right now. Timestamps are the monotonic clock at the call.
    fn recv_batch(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        batch.clear();
        let ts = monotonic_ns();
        while let Some(slot) = batch.slot() {
            match self.recv_one(slot)? {
                None => break,
                Some(0) => continue,
                Some(_) => batch.commit(ts),
            }
        }
        Ok(batch.len())
    }

    /// Sends one frame; failures are counted ([`AfPacketStats`]) and returned.
    fn send(&mut self, frame: &[u8], _ts_ns: u64) -> Result<(), PortError> {
        loop {
            // SAFETY: `frame` is a live slice of the length passed.
            let r = unsafe {
                libc::send(
                    self.fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if r >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) => self.stats.tx_dropped += 1,
                _ => self.stats.tx_errors += 1,
            }
            return Err(PortError::Os {
                port: self.info.name.clone(),
                op: "send",
                source: e,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_interface_is_named_in_the_error() {
        let e = interface_info("bpfsw-nonexistent0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bpfsw-nonexistent0"), "{e}");
        assert!(e.contains("no such network interface"), "{e}");
        let e = interface_info("this-name-is-far-too-long-for-linux")
            .unwrap_err()
            .to_string();
        assert!(e.contains("too-long"), "{e}");
    }

    #[test]
    fn loopback_info() {
        // Every Linux network namespace has `lo`.
        let i = interface_info("lo").expect("lo exists");
        assert_eq!(i.name, "lo");
        assert!(i.ifindex > 0);
        assert!(i.mtu >= 1500);
    }
}
