//! Packet buffers and zero-copy header parsing into flow keys.
