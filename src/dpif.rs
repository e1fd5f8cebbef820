//! The datapath: caches in front of the bridge, upcalls, action execution and counters.
