/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vlan_push: insert an 802.1Q tag after the MAC addresses. The frame grows by 4 bytes at
 * its head (bpf_xdp_adjust_head(ctx, -4)), the MAC addresses move to the new start, and the
 * tag (TPID 0x8100, TCI = PCP << 13 | VID) sits where they were; the original EtherType
 * follows the tag.
 *
 * `vlan_config` (array, 1 entry, key __u32 0, value struct vlan_config {__u16 vid; __u8 pcp;
 * __u8 pad}, host order). VID 0 (the default) or above 4095 means no tag: the frame passes
 * unchanged. Returns XDP_PASS, or XDP_ABORTED when the head cannot grow or the frame is
 * shorter than an Ethernet header.
 */
#include "bpfswitch.h"

struct vlan_config {
	__u16 vid;
	__u8 pcp;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vlan_config);
} vlan_config SEC(".maps");

SEC("xdp")
int vlan_push(struct xdp_md *ctx)
{
	void *data, *data_end;
	struct vlan_config *cfg;
	struct vlan_tag *tag;
	__u8 *mac;
	__u32 zero = 0;
	__u16 tci;
	int i;

	cfg = bpf_map_lookup_elem(&vlan_config, &zero);
	if (!cfg || cfg->vid == 0 || cfg->vid > 4095)
		return XDP_PASS;
	tci = (__u16)((cfg->pcp & 7) << 13) | cfg->vid;

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + ETH_HLEN > data_end)
		return XDP_ABORTED;
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct vlan_tag)))
		return XDP_ABORTED;

	/* The head moved: reload and recheck the packet pointers. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	mac = data;
	if ((void *)(mac + 2 * ETH_ALEN + sizeof(*tag)) > data_end)
		return XDP_ABORTED;
#pragma unroll
	for (i = 0; i < 2 * ETH_ALEN; i++)
		mac[i] = mac[i + sizeof(*tag)];
	tag = (void *)(mac + 2 * ETH_ALEN);
	tag->tpid = bpf_htons(ETH_P_8021Q);
	tag->tci = bpf_htons(tci);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
