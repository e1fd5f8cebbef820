/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UNSAFE (verifier test): indexes a 16-entry counter array inside a map value with the IPv4
 * protocol byte (0..255) without bounding it. The kernel verifier must reject it: "invalid
 * access to map value".
 */
#include "bpfswitch.h"

struct counters {
	__u64 by_proto[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} proto_counters SEC(".maps");

SEC("xdp")
int map_value_oob(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	struct counters *c;
	__u32 zero = 0;

	if (!ip)
		return XDP_PASS;
	c = bpf_map_lookup_elem(&proto_counters, &zero);
	if (!c)
		return XDP_PASS;
	/* Bug: the protocol goes up to 255, the array has 16 entries. */
	c->by_proto[ip->protocol] += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
