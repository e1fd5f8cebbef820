/* Routing and connection tracking: an LPM trie maps IPv4 destinations to output ports
 * (bpf_redirect), an LRU hash remembers sources, a per-CPU array counts bytes, IPv4
 * packets get their MAC addresses swapped, and packets to 10.9.0.0/16 get a VLAN tag
 * pushed with bpf_xdp_adjust_head. The legacy `maps` section is exercised too. */
#include "common.h"

struct lpm_key { __u32 prefixlen; __u32 addr; };

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_key);
	__type(value, __u32);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 4);
} recent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} bytes SEC(".maps");

struct bpf_map_def_legacy { unsigned int type, key_size, value_size, max_entries, map_flags; };
struct bpf_map_def_legacy SEC("maps") last_port = {
	.type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 1,
};

SEC("xdp")
int xdp_route(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	__u64 *b = bpf_map_lookup_elem(&bytes, &zero);
	if (b)
		*b += (__u64)(end - data);
	struct ethhdr_t *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	if (eth->proto != bpf_htons(0x0800))
		return XDP_PASS;
	struct iphdr_t *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return XDP_DROP;
	__u32 src = ip->saddr, one = ctx->ingress_ifindex;
	bpf_map_update_elem(&recent, &src, &one, BPF_ANY);
	struct lpm_key k = { 32, ip->daddr };
	__u32 *port = bpf_map_lookup_elem(&routes, &k);
	if (!port)
		return XDP_PASS;
	__u32 p = *port;
	bpf_map_update_elem(&last_port, &zero, &p, BPF_ANY);
	unsigned char tmp[6];
	__builtin_memcpy(tmp, eth->dst, 6);
	__builtin_memcpy(eth->dst, eth->src, 6);
	__builtin_memcpy(eth->src, tmp, 6);
	if ((bpf_ntohl(ip->daddr) >> 16) == 0x0a09) {
		if (bpf_xdp_adjust_head(ctx, -4))
			return XDP_ABORTED;
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		if (data + 18 > end)
			return XDP_ABORTED;
		unsigned char *d = data;
		__builtin_memmove(d, d + 4, 12);
		d[12] = 0x81; d[13] = 0x00; d[14] = 0x00; d[15] = 0x07;
	}
	return bpf_redirect(p, 0);
}

char LICENSE[] SEC("license") = "GPL";
