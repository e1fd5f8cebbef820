#!/usr/bin/env bash
# Runs bpfswitch's whole test suite on a Debian 12 machine, installing what the tests need
# (clang for BPF objects, bpftool/libbpf for the kernel oracle, ovs-ofctl for the flow-syntax
# and packet-parsing differentials, tcpdump to check written captures).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

start=$SECONDS
stamp() { echo "== [$((SECONDS - start)) s] $*"; }
stamp "cargo fmt --check"
cargo fmt --all -- --check
stamp "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
stamp "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items --quiet
stamp "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast --failure-output final --success-output never
    cargo test --workspace --doc --quiet
else
    cargo test --workspace --no-fail-fast
fi
stamp "done"
