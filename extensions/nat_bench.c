/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nat_bench: rewrite the IPv4 destination address to 10.2.0.1 and patch the IPv4 header
 * checksum and the TCP/UDP checksum incrementally (the benchmark's `action-nat`). A zero UDP
 * checksum ("none") stays zero. No maps. Non-IPv4 frames pass untouched.
 */
#include "bpfswitch.h"

#define NAT_BENCH_DST 0x0a020001 /* 10.2.0.1 */

SEC("xdp")
int nat_bench(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	__u32 old_dst, new_dst = bpf_htonl(NAT_BENCH_DST);

	if (!ip)
		return XDP_PASS;
	old_dst = ip->daddr;
	if (old_dst == new_dst)
		return XDP_PASS;
	ip->daddr = new_dst;
	ip->check = csum_update4(ip->check, old_dst, new_dst);

	/* The L4 checksum covers the pseudo-header, so it changes too (first fragment only). */
	if (ip->ihl != 5 || (ip->frag_off & bpf_htons(0x1fff)))
		return XDP_PASS;
	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);

		if ((void *)(udp + 1) > data_end || udp->check == 0)
			return XDP_PASS;
		udp->check = csum_update4(udp->check, old_dst, new_dst);
		if (udp->check == 0)
			udp->check = 0xffff;
	} else if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);

		if ((void *)(tcp + 1) > data_end)
			return XDP_PASS;
		tcp->check = csum_update4(tcp->check, old_dst, new_dst);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
