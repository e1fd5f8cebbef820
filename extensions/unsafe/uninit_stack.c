/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UNSAFE (verifier test): builds a 5-tuple key on the stack but fills in only the addresses,
 * then hands the whole 16-byte key to bpf_map_lookup_elem, which reads the uninitialised
 * ports, protocol and padding. The kernel verifier must reject it: "invalid indirect read
 * from stack".
 */
#include "bpfswitch.h"

struct flow5 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow5);
	__type(value, __u64);
} flows SEC(".maps");

SEC("xdp")
int uninit_stack(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	struct flow5 key; /* Bug: not zeroed, and sport/dport/proto/pad never written. */

	if (!ip)
		return XDP_PASS;
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	if (bpf_map_lookup_elem(&flows, &key))
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
