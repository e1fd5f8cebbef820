//! bpfswitch: a userspace OpenFlow switch extensible at runtime with eBPF programs.
//!
//! The datapath ([`dpif`]) parses packets ([`packet`]) into flow keys, looks them up in the
//! exact-match cache ([`emc`]) and the megaflow cache ([`megaflow`]), and on a miss makes an
//! upcall into translation in `ofproto-bridge`. Actions are executed on the packet bytes
//! ([`execute`]); extensions ([`ext`]) run in the VM. Ports ([`port`]) read and write captures.
//! The jobs built on it: [`replay`] (captures through a flow table), [`daemon`] (a running
//! switch controlled over a socket), [`bench`](mod@bench) (the flow-cache benchmark); [`cli`] holds the
//! command line's subcommands.

pub mod bench;
pub mod cli;
pub mod daemon;
pub mod dpif;
pub mod emc;
pub mod execute;
pub mod ext;
pub mod megaflow;
pub mod packet;
pub mod port;
pub mod replay;
