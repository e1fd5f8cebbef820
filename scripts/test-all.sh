#!/usr/bin/env bash
# Runs bpfswitch's whole test suite on a Debian 12 machine, installing what the tests need
# (clang for BPF objects, bpftool/libbpf for the kernel oracle, ovs-ofctl for the flow-syntax
# and packet-parsing differentials, tcpdump to check written captures).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev pkg-config openvswitch-common tcpdump)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "== installing test dependencies: ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

start=$SECONDS
stamp() { echo "== [$((SECONDS - start)) s] $*"; }
stamp "cargo fmt --check"
cargo fmt --all -- --check
stamp "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
stamp "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast --failure-output final --success-output never
    cargo test --workspace --doc --quiet
else
    cargo test --workspace --no-fail-fast
fi
stamp "done"
