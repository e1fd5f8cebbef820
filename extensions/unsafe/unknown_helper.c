/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UNSAFE (verifier test): calls helper number 999, which does not exist. The kernel verifier
 * must reject it: "invalid func unknown#999".
 */
#include "bpfswitch.h"

static long (*no_such_helper)(void *ctx) = (void *)999;

SEC("xdp")
int unknown_helper(struct xdp_md *ctx)
{
	return no_such_helper(ctx) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
