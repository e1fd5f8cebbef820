//! The replay job: captures through a flow table into per-port captures.
