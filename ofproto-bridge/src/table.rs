//! Flow tables: rules with ids, counters and timeouts, and the changes that can be made to them.
