//! eBPF extensions: loading objects, maps, helpers and the VM tiers that run them.
