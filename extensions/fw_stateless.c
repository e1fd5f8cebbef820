/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fw_stateless: a stateless firewall on IPv4 source addresses.
 *
 * `blocked_src` (hash, key: __be32 IPv4 source as in the packet, value: __u64 hit counter)
 * lists the blocked sources; each hit increments the entry's counter.
 *
 * Built as an action (fw_stateless.o): XDP_DROP for a blocked source, XDP_PASS for anything
 * else (non-IPv4 included). Built with -DAS_FILTER (fw_stateless_filter.o): returns 1 (the
 * rule matches) for a blocked source and 0 otherwise, for `bpf_filter=` matches.
 */
#include "bpfswitch.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} blocked_src SEC(".maps");

#ifdef AS_FILTER
#define VERDICT_BLOCKED 1
#define VERDICT_ALLOWED 0
#define PROG_NAME fw_stateless_filter
#else
#define VERDICT_BLOCKED XDP_DROP
#define VERDICT_ALLOWED XDP_PASS
#define PROG_NAME fw_stateless
#endif

SEC("xdp")
int PROG_NAME(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	__u32 src;
	__u64 *hits;

	if (!ip)
		return VERDICT_ALLOWED;
	src = ip->saddr;
	hits = bpf_map_lookup_elem(&blocked_src, &src);
	if (!hits)
		return VERDICT_ALLOWED;
	*hits += 1;
	return VERDICT_BLOCKED;
}

char LICENSE[] SEC("license") = "GPL";
