/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_filter: the benchmark's stateless `filter` (WORKLOADS.md): reads the Ethernet, IPv4
 * and UDP headers and returns 1 for the benchmark traffic (untagged IPv4 without options,
 * TTL above 1, UDP to 10.1.0.0/16 port 53) and 0 for anything else. No maps, no helpers.
 */
#include "bpfswitch.h"

SEC("xdp")
int bench_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	struct udphdr *udp;

	if (!ip || ip->ihl != 5 || ip->protocol != IPPROTO_UDP || ip->ttl <= 1)
		return 0;
	if ((ip->daddr & bpf_htonl(0xffff0000)) != bpf_htonl(0x0a010000))
		return 0;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return 0;
	return udp->dest == bpf_htons(53);
}

char LICENSE[] SEC("license") = "GPL";
