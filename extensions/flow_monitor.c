/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flow_monitor: read-only per-flow statistics for VXLAN overlays. Never writes the packet;
 * always returns XDP_PASS.
 *
 * A VXLAN frame here is untagged Ethernet, IPv4 without options, UDP to port 4789, the
 * 8-byte VXLAN header (I flag set), then an inner Ethernet frame. For each one, the entry of
 * `vxlan_flows` keyed by the outer and inner addresses is bumped: packets by 1 and bytes by
 * the whole frame's length.
 *
 * Maps:
 * - `vxlan_flows` (hash): key struct vxlan_flow_key {__be32 outer_src, outer_dst; __u32 vni
 *   (host order, 24 bits); __be32 inner_src, inner_dst}, 20 bytes — the inner addresses are 0
 *   when the inner frame is not IPv4 (or too short); value struct flow_stats {__u64 packets,
 *   bytes}.
 * - `other_traffic` (array, 1 entry, key __u32 0, value struct flow_stats): every frame that
 *   is not VXLAN.
 */
#include "bpfswitch.h"

#define VXLAN_PORT 4789

struct vxlanhdr {
	__u8 flags;
	__u8 reserved1[3];
	__u8 vni[3];
	__u8 reserved2;
};

struct vxlan_flow_key {
	__be32 outer_src;
	__be32 outer_dst;
	__u32 vni;
	__be32 inner_src;
	__be32 inner_dst;
};

struct flow_stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct vxlan_flow_key);
	__type(value, struct flow_stats);
} vxlan_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flow_stats);
} other_traffic SEC(".maps");

static __always_inline void count(struct flow_stats *st, __u64 bytes)
{
	st->packets += 1;
	st->bytes += bytes;
}

SEC("xdp")
int flow_monitor(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct iphdr *ip = ipv4_header(data, data_end);
	struct vxlan_flow_key key = {};
	struct flow_stats *st, fresh = { .packets = 1, .bytes = bytes };
	struct vxlanhdr *vx;
	struct ethhdr *inner_eth;
	struct iphdr *inner_ip;
	struct udphdr *udp;
	__u32 zero = 0;

	if (!ip || ip->ihl != 5 || ip->protocol != IPPROTO_UDP ||
	    (ip->frag_off & bpf_htons(0x3fff)))
		goto other;
	udp = (void *)(ip + 1);
	vx = (void *)(udp + 1);
	inner_eth = (void *)(vx + 1);
	if ((void *)(inner_eth + 1) > data_end)
		goto other;
	if (udp->dest != bpf_htons(VXLAN_PORT) || !(vx->flags & 0x08))
		goto other;

	key.outer_src = ip->saddr;
	key.outer_dst = ip->daddr;
	key.vni = ((__u32)vx->vni[0] << 16) | ((__u32)vx->vni[1] << 8) | vx->vni[2];
	inner_ip = (void *)(inner_eth + 1);
	if (inner_eth->h_proto == bpf_htons(ETH_P_IP) && (void *)(inner_ip + 1) <= data_end) {
		key.inner_src = inner_ip->saddr;
		key.inner_dst = inner_ip->daddr;
	}
	st = bpf_map_lookup_elem(&vxlan_flows, &key);
	if (st)
		count(st, bytes);
	else
		bpf_map_update_elem(&vxlan_flows, &key, &fresh, BPF_NOEXIST);
	return XDP_PASS;

other:
	st = bpf_map_lookup_elem(&other_traffic, &zero);
	if (st)
		count(st, bytes);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
