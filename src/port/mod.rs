//! Ports: where packets enter and leave the switch (pcap files, in-memory ports for tests).
