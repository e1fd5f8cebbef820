//! bpfswitch: a userspace OpenFlow switch extensible at runtime with eBPF programs.
