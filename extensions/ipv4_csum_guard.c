/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ipv4_csum_guard: a port hook that drops IPv4 packets whose header checksum is wrong before
 * they reach classification. Written with bpf-to-bpf calls (two non-inlined functions), so
 * that loaders and verifiers see calls and separate stack frames.
 *
 * `csum_stats` (array, 2 entries, key __u32, value __u64): entry 0 counts IPv4 headers
 * checked, entry 1 those dropped for a bad checksum.
 *
 * Returns XDP_DROP for an untagged IPv4 frame without options whose header checksum does not
 * verify, XDP_PASS for everything else (IPv4 with options is not checked). Never writes the
 * packet.
 */
#include "bpfswitch.h"

#define STAT_CHECKED 0
#define STAT_BAD 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} csum_stats SEC(".maps");

/* Ones' complement sum of the 20-byte header, folded; 0xffff when the checksum verifies. */
static __noinline __u32 ipv4_header_sum(struct iphdr *ip)
{
	__u16 *word = (__u16 *)ip;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += word[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

static __noinline void bump(__u32 stat)
{
	__u64 *n = bpf_map_lookup_elem(&csum_stats, &stat);

	if (n)
		*n += 1;
}

SEC("xdp")
int ipv4_csum_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);

	if (!ip || ip->ihl != 5)
		return XDP_PASS;
	bump(STAT_CHECKED);
	if (ipv4_header_sum(ip) == 0xffff)
		return XDP_PASS;
	bump(STAT_BAD);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
