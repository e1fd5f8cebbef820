/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttl_dec: decrement the IPv4 TTL and patch the header checksum incrementally (the
 * benchmark's `action-ttl`). Writes only bytes 22 (TTL) and 24-25 (checksum) of an untagged
 * frame. TTL 0 or 1 is dropped, as a router would; anything that is not IPv4 passes untouched.
 */
#include "bpfswitch.h"

SEC("xdp")
int ttl_dec(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	__u32 check;

	if (!ip)
		return XDP_PASS;
	if (ip->ttl <= 1)
		return XDP_DROP;
	ip->ttl--;
	/* The TTL is the high byte of the header's fifth 16-bit word: that word drops by 0x0100. */
	check = ip->check;
	check += bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xffff));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
