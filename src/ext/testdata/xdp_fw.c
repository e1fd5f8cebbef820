/* Stateless firewall with counters: drops IPv4 sources found in a BTF hash map, counts
 * verdicts in an array, decrements the TTL of passed IPv4 packets (checksum fixed with
 * bpf_csum_diff) and reads a threshold from .rodata and a counter in .bss. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 64);
} blocked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} stats SEC(".maps");

const volatile unsigned char min_ttl = 2;
__u64 seen_ipv4;

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &slot);
	if (v)
		*v += 1;
}

SEC("xdp")
int xdp_fw(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr_t *eth = data;
	if ((void *)(eth + 1) > end) {
		count(0);
		return XDP_ABORTED;
	}
	if (eth->proto != bpf_htons(0x0800)) {
		count(1);
		return XDP_PASS;
	}
	struct iphdr_t *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return XDP_DROP;
	seen_ipv4++;
	__u32 src = ip->saddr;
	__u64 *hits = bpf_map_lookup_elem(&blocked, &src);
	if (hits) {
		*hits += 1;
		count(2);
		return XDP_DROP;
	}
	if (ip->ttl < min_ttl)
		return XDP_DROP;
	__u32 old = *(__u32 *)&ip->ttl;
	ip->ttl--;
	__u32 new = *(__u32 *)&ip->ttl;
	__s64 d = bpf_csum_diff(&old, 4, &new, 4, ~((__u32)ip->check) & 0xffff);
	__u32 s = (__u32)d;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	ip->check = ~s;
	count(3);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
