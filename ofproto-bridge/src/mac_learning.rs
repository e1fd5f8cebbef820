//! The MAC learning table behind the `normal` action, in the spirit of Open vSwitch's
//! lib/mac-learning: which port a (VLAN, Ethernet address) pair was last seen on.
//!
//! Entries age out after [`MacLearning::idle_ns`] without being seen (Open vSwitch's default is
//! 300 seconds) and the table holds at most [`MacLearning::capacity`] entries (default 2048, as
//! Open vSwitch's `mac-table-size`); when it is full, the entry seen longest ago is evicted.
//! Time is passed in, in nanoseconds. Any change that can alter a translation (a new entry, a
//! move to another port, an eviction or an expiry) is reported to the caller, who bumps the
//! bridge's version so that cached megaflows are revalidated.

use crate::action::PortNo;
use std::collections::{BTreeSet, HashMap};

/// Default entry lifetime without traffic: 300 seconds.
pub const DEFAULT_IDLE_NS: u64 = 300 * 1_000_000_000;
/// Default capacity in entries.
pub const DEFAULT_CAPACITY: usize = 2048;

/// Key of an entry: the VLAN ID (0 for untagged) and the Ethernet address.
pub type MacKey = (u16, [u8; 6]);

/// What [`MacLearning::learn`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Learned {
    /// The entry existed with the same port; only its age was refreshed.
    Refreshed,
    /// A new entry was created (possibly evicting the oldest one).
    New,
    /// The address moved from another port.
    Moved {
        /// The port it was on before.
        from: PortNo,
    },
}

impl Learned {
    /// Whether the table changed in a way that can alter a translation.
    pub fn changed(self) -> bool {
        self != Learned::Refreshed
    }
}

#[derive(Clone, Copy, Debug)]
struct MacEntry {
    port: PortNo,
    seen_ns: u64,
}

/// The MAC learning table. See the module documentation.
#[derive(Clone, Debug)]
pub struct MacLearning {
    entries: HashMap<MacKey, MacEntry>,
    /// Entries ordered by last-seen time, for eviction and expiry.
    by_age: BTreeSet<(u64, MacKey)>,
    /// Maximum number of entries.
    pub capacity: usize,
    /// Lifetime of an entry without traffic, in nanoseconds.
    pub idle_ns: u64,
}

impl Default for MacLearning {
    fn default() -> Self {
        MacLearning::new(DEFAULT_CAPACITY, DEFAULT_IDLE_NS)
    }
}

impl MacLearning {
    /// An empty table.
    pub fn new(capacity: usize, idle_ns: u64) -> MacLearning {
        MacLearning {
            entries: HashMap::new(),
            by_age: BTreeSet::new(),
            capacity: capacity.max(1),
            idle_ns,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records that `mac` on `vlan` was seen on `port` at `now_ns`.
    pub fn learn(&mut self, vlan: u16, mac: [u8; 6], port: PortNo, now_ns: u64) -> Learned {
        let key = (vlan, mac);
        if let Some(e) = self.entries.get_mut(&key) {
            self.by_age.remove(&(e.seen_ns, key));
            let old = e.port;
            e.port = port;
            e.seen_ns = e.seen_ns.max(now_ns);
            self.by_age.insert((e.seen_ns, key));
            return if old == port {
                Learned::Refreshed
            } else {
                Learned::Moved { from: old }
            };
        }
        while self.entries.len() >= self.capacity {
            let Some(oldest) = self.by_age.pop_first() else {
                break;
            };
            self.entries.remove(&oldest.1);
        }
        self.entries.insert(
            key,
            MacEntry {
                port,
                seen_ns: now_ns,
            },
        );
        self.by_age.insert((now_ns, key));
        Learned::New
    }

    /// The port `mac` on `vlan` was learnt on, if it is known.
    pub fn lookup(&self, vlan: u16, mac: [u8; 6]) -> Option<PortNo> {
        self.entries.get(&(vlan, mac)).map(|e| e.port)
    }

    /// Removes entries not seen for [`MacLearning::idle_ns`]; returns how many.
    pub fn expire(&mut self, now_ns: u64) -> usize {
        let mut n = 0;
        while let Some(&(seen, key)) = self.by_age.first() {
            if now_ns.saturating_sub(seen) < self.idle_ns {
                break;
            }
            self.by_age.pop_first();
            self.entries.remove(&key);
            n += 1;
        }
        n
    }

    /// Forgets every address learnt on `port` (when the port goes away); returns how many.
    pub fn flush_port(&mut self, port: PortNo) -> usize {
        let keys: Vec<(u64, MacKey)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.port == port)
            .map(|(k, e)| (e.seen_ns, *k))
            .collect();
        for (seen, k) in &keys {
            self.entries.remove(k);
            self.by_age.remove(&(*seen, *k));
        }
        keys.len()
    }

    /// Every entry as (vlan, mac, port, last seen), oldest first (like `ovs-appctl fdb/show`).
    pub fn entries(&self) -> Vec<(u16, [u8; 6], PortNo, u64)> {
        self.by_age
            .iter()
            .map(|&(seen, (vlan, mac))| (vlan, mac, self.entries[&(vlan, mac)].port, seen))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [0, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [0, 0, 0, 0, 0, 0xb];
    const C: [u8; 6] = [0, 0, 0, 0, 0, 0xc];

    #[test]
    fn learn_move_refresh() {
        let mut m = MacLearning::default();
        assert_eq!(m.learn(0, A, 1, 0), Learned::New);
        assert_eq!(m.learn(0, A, 1, 5), Learned::Refreshed);
        assert!(!Learned::Refreshed.changed());
        assert_eq!(m.learn(0, A, 2, 6), Learned::Moved { from: 1 });
        assert_eq!(m.lookup(0, A), Some(2));
        assert_eq!(m.lookup(7, A), None, "VLANs are separate");
        assert_eq!(m.learn(7, A, 3, 6), Learned::New);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn capacity_evicts_least_recently_seen() {
        let mut m = MacLearning::new(2, DEFAULT_IDLE_NS);
        m.learn(0, A, 1, 10);
        m.learn(0, B, 2, 20);
        m.learn(0, A, 1, 30); // A is now the most recent.
        m.learn(0, C, 3, 40);
        assert_eq!(m.lookup(0, B), None);
        assert_eq!(m.lookup(0, A), Some(1));
        assert_eq!(m.lookup(0, C), Some(3));
    }

    #[test]
    fn aging_and_flush() {
        let mut m = MacLearning::new(10, 100);
        m.learn(0, A, 1, 0);
        m.learn(0, B, 1, 50);
        m.learn(0, C, 2, 60);
        assert_eq!(m.expire(99), 0);
        assert_eq!(m.expire(100), 1);
        assert_eq!(m.lookup(0, A), None);
        assert_eq!(m.flush_port(1), 1);
        assert_eq!(m.entries(), vec![(0, C, 2, 60)]);
    }
}
