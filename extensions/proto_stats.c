/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proto_stats: per-IP-protocol packet and byte counters kept in global variables, i.e. in
 * the object's data sections, which loaders turn into one-entry array maps. Never writes the
 * packet; always returns XDP_PASS.
 *
 * - `.rodata`: `only_proto` (__u8, const volatile): when non-zero, only that protocol is
 *   counted. Fixed at load time (0: every protocol).
 * - `.data`: `low_ttl_max` (__u32, initially 1): IPv4 packets with a TTL at or below it are
 *   also counted in `low_ttl`.
 * - `.bss`: `proto_packets[256]`, `proto_bytes[256]` (__u64, indexed by the IPv4 protocol
 *   number), `low_ttl` (__u64) and `not_ipv4` (__u64, frames that are not IPv4).
 *
 * In the `.bss` map's single value (key __u32 0, 4112 bytes) clang 14 places not_ipv4 at
 * byte 0, proto_packets at 8, proto_bytes at 2056 and low_ttl at 4104 (`llvm-objdump -t`
 * shows the offsets of any build).
 */
#include "bpfswitch.h"

const volatile __u8 only_proto = 0;
__u32 low_ttl_max = 1;

__u64 proto_packets[256];
__u64 proto_bytes[256];
__u64 low_ttl;
__u64 not_ipv4;

SEC("xdp")
int proto_stats(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	__u8 proto;

	if (!ip) {
		not_ipv4 += 1;
		return XDP_PASS;
	}
	proto = ip->protocol;
	if (only_proto && proto != only_proto)
		return XDP_PASS;
	proto_packets[proto] += 1;
	proto_bytes[proto] += data_end - data;
	if (ip->ttl <= low_ttl_max)
		low_ttl += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
