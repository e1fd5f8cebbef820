//! Executes datapath actions that rewrite packet bytes (set field, VLAN push/pop), fixing checksums.
