#!/bin/sh
# Replays the extension scenario (examples/ext/flows.txt): loads the extensions, fills their
# maps, attaches the port hook, and runs the three captures through the switch.
#
# usage: examples/ext/run.sh [more replay options: --out-dir DIR, --json, --reclassify always,
#                             --no-cache, ...]
# BPFSWITCH names the binary to run (default: `cargo run --release` of this checkout).
set -eu
R="$(dirname "$0")/../.."
E="$R/extensions"
X="$R/examples/ext"
if [ -n "${BPFSWITCH:-}" ]; then
    set -- "$BPFSWITCH" replay "$@"
else
    set -- cargo run --quiet --release --manifest-path "$R/Cargo.toml" -- replay "$@"
fi
exec "$@" \
    --flows "$X/flows.txt" \
    --in 1="$X/inside.pcap" --in 2="$X/uplink.pcap" --in 3="$X/dmz.pcap" \
    --ext blocklist="$E/fw_stateless_filter.o" \
    --ext fw="$E/fw_stateful_filter.o" \
    --ext dns_ok="$E/bench_filter.o" \
    --ext nat="$E/nat.o" \
    --ext ttl="$E/ttl_dec.o" \
    --ext flood="$E/udp_flood_drop.o" \
    --map-update blocklist blocked_src ip:198.51.100.66 u64:0 \
    --map-update fw fw_config u32:0 "u32:1 ip:0.0.0.0 ip:0.0.0.0 u32:0" \
    --map-update nat nat_rules "ip:203.0.113.10 be16:8080 u8:6 u8:0" "ip:10.3.0.5 be16:80 u16:0" \
    --map-update flood blocked_ports u32:1900 u32:1 \
    --port-hook 2=flood
