/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UNSAFE (verifier test): writes a 64-byte stack buffer at an index taken from the packet
 * (0..255) without bounding it. The kernel verifier must reject the out-of-bounds stack
 * write (a variable-offset stack access beyond the buffer).
 */
#include "bpfswitch.h"

SEC("xdp")
int stack_oob(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	volatile __u8 seen[64] = {};

	if (!ip)
		return XDP_PASS;
	/* Bug: ip->ttl can be up to 255. */
	seen[ip->ttl] = 1;
	return seen[0] ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
