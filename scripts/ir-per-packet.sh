#!/usr/bin/env bash
# Instructions per packet of the forwarding fast path (callgrind; repeatable whatever else the
# machine does): ir-per-packet.sh NFLOWS [decoy] [noemc] [ttl|payload|nat=verifier|always]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example ir_per_packet
ir() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/ir_per_packet "$@" 2>&1 |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
a=$(ir "$@" n=16384)
b=$(ir "$@" n=49152)
echo "$* : $(((b - a) / 32768)) instructions/packet"
