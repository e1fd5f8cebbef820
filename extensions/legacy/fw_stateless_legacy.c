/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fw_stateless_legacy: fw_stateless (see ../fw_stateless.c) with its map declared the
 * pre-BTF way, as a `struct bpf_map_def` in the legacy `maps` section, as older XDP programs
 * and Oko-era examples do. bpfswitch loads it; libbpf 1.x (and so the kernel oracle) no
 * longer accepts legacy map definitions.
 *
 * `blocked_src` (hash, 4096): key __be32 IPv4 source, value __u64 hit counter. Returns
 * XDP_DROP for a listed source, XDP_PASS otherwise.
 */
#include "bpfswitch.h"

/* The legacy map definition (five __u32), no longer shipped by libbpf's headers. */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") blocked_src = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 4096,
	.map_flags = 0,
};

SEC("xdp")
int fw_stateless_legacy(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	__u32 src;
	__u64 *hits;

	if (!ip)
		return XDP_PASS;
	src = ip->saddr;
	hits = bpf_map_lookup_elem(&blocked_src, &src);
	if (!hits)
		return XDP_PASS;
	*hits += 1;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
