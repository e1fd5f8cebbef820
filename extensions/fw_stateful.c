/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fw_stateful: a connection-tracking firewall that lets in only replies to connections
 * opened from the inside.
 *
 * Direction: a packet is outbound when it arrived on the inside port (`fw_config.inside_ifindex`,
 * the XDP ingress_ifindex; the switch passes the OpenFlow in_port there) or, when that is 0,
 * when its IPv4 source lies in `inside_net/inside_mask`. Every other packet is inbound.
 *
 * Maps:
 * - `fw_config` (array, 1 entry, key __u32 0, value struct fw_config below, all fields in
 *   network byte order except inside_ifindex);
 * - `conntrack` (LRU hash, key struct flow5 {saddr, daddr, sport, dport, proto, pad[3]},
 *   16 bytes, as seen on the outbound packet; value __u64 packets seen in both directions).
 *
 * Outbound IPv4 packets record their 5-tuple and pass. Inbound IPv4 packets pass only when
 * the reversed 5-tuple is recorded. Ports are those of TCP and UDP (0 for other protocols,
 * for IPv4 headers with options and for non-first fragments). Non-IPv4 frames pass.
 *
 * As an action (fw_stateful.o): XDP_PASS or XDP_DROP. As a filter (-DAS_FILTER,
 * fw_stateful_filter.o): 1 when the packet is allowed, 0 when it is not.
 */
#include "bpfswitch.h"

struct fw_config {
	__u32 inside_ifindex;
	__be32 inside_net;
	__be32 inside_mask;
	__u32 pad;
};

struct flow5 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fw_config);
} fw_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow5);
	__type(value, __u64);
} conntrack SEC(".maps");

#ifdef AS_FILTER
#define VERDICT_DENY 0
#define VERDICT_ALLOW 1
#define PROG_NAME fw_stateful_filter
#else
#define VERDICT_DENY XDP_DROP
#define VERDICT_ALLOW XDP_PASS
#define PROG_NAME fw_stateful
#endif

SEC("xdp")
int PROG_NAME(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	struct fw_config *cfg;
	struct flow5 key = {};
	__be16 sport = 0, dport = 0;
	__u32 zero = 0;
	__u64 *seen;
	int outbound;

	if (!ip)
		return VERDICT_ALLOW;
	cfg = bpf_map_lookup_elem(&fw_config, &zero);
	if (!cfg)
		return VERDICT_DENY;

	if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) && ip->ihl == 5 &&
	    !(ip->frag_off & bpf_htons(0x1fff))) {
		/* TCP and UDP both start with the source and destination ports. */
		struct udphdr *l4 = (void *)(ip + 1);

		if ((void *)(l4 + 1) > data_end)
			return VERDICT_DENY;
		sport = l4->source;
		dport = l4->dest;
	}

	if (cfg->inside_ifindex)
		outbound = ctx->ingress_ifindex == cfg->inside_ifindex;
	else
		outbound = (ip->saddr & cfg->inside_mask) == cfg->inside_net;

	key.proto = ip->protocol;
	if (outbound) {
		__u64 one = 1;

		key.saddr = ip->saddr;
		key.daddr = ip->daddr;
		key.sport = sport;
		key.dport = dport;
		seen = bpf_map_lookup_elem(&conntrack, &key);
		if (seen)
			*seen += 1;
		else
			bpf_map_update_elem(&conntrack, &key, &one, BPF_ANY);
		return VERDICT_ALLOW;
	}

	key.saddr = ip->daddr;
	key.daddr = ip->saddr;
	key.sport = dport;
	key.dport = sport;
	seen = bpf_map_lookup_elem(&conntrack, &key);
	if (!seen)
		return VERDICT_DENY;
	*seen += 1;
	return VERDICT_ALLOW;
}

char LICENSE[] SEC("license") = "GPL";
