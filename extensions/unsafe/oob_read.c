/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UNSAFE (verifier test): reads the IPv4 protocol byte (offset 23) after checking only that
 * the Ethernet header (14 bytes) is in the packet. The kernel verifier must reject it:
 * "invalid access to packet".
 */
#include "bpfswitch.h"

SEC("xdp")
int oob_read(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	/* Bug: nothing checked that the IPv4 header is inside the packet. */
	if (ip->protocol == IPPROTO_UDP)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
