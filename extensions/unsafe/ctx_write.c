/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UNSAFE (verifier test): writes to the XDP context (moving `data`), which programs may only
 * read. The kernel verifier must reject it: "invalid bpf_context access".
 */
#include "bpfswitch.h"

SEC("xdp")
int ctx_write(struct xdp_md *ctx)
{
	/* Bug: the context is read-only; bpf_xdp_adjust_head is the way to move data. */
	ctx->data = ctx->data + 14;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
