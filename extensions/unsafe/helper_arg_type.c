/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UNSAFE (verifier test): passes a packet pointer where bpf_map_lookup_elem expects a map.
 * The kernel verifier must reject it: "R1 type=pkt expected=map_ptr".
 */
#include "bpfswitch.h"

SEC("xdp")
int helper_arg_type(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 key = 0;

	if (data + 64 > data_end)
		return XDP_PASS;
	/* Bug: the first argument must be a map. */
	if (bpf_map_lookup_elem(data, &key))
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
