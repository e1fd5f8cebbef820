//! Static analysis of eBPF bytecode: a safety verdict plus the packet bytes a program may
//! read and write. **Architecture invariant:** no I/O and no dependency on the switch.
pub mod platform;
