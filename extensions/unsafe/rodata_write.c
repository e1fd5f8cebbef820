/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UNSAFE (verifier test): writes to a `const volatile` global, which lives in the read-only
 * `.rodata` map (frozen by the loader). The kernel verifier must reject it: "write into map
 * forbidden".
 */
#include "bpfswitch.h"

const volatile __u32 packets_seen = 0;

SEC("xdp")
int rodata_write(struct xdp_md *ctx)
{
	/* Bug: casting away const does not make the map writable. */
	*(volatile __u32 *)&packets_seen += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
