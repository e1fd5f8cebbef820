#!/usr/bin/env bash
# Installs what bpfswitch needs to build and test on Debian 12: libelf/zlib/pkg-config for the
# vendored libbpf that libbpf-rs builds, clang/llvm to compile the BPF extensions, bpftool and
# libbpf-dev for the kernel oracle, ovs-ofctl for the flow-syntax differentials, tcpdump to
# check written captures. Does nothing when they are all present.
set -euo pipefail

packages=(clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev pkg-config openvswitch-common tcpdump)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "== installing dependencies: ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi
