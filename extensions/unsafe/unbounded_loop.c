/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UNSAFE (verifier test): spins for a number of iterations read from a map value, a 64-bit
 * number nothing bounds. The kernel verifier must reject it (it cannot prove termination
 * within its instruction budget: "BPF program is too large").
 */
#include "bpfswitch.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} spin_config SEC(".maps");

SEC("xdp")
int unbounded_loop(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&spin_config, &zero);
	__u64 i = 0;

	if (!n)
		return XDP_PASS;
	/* Bug: the trip count is an unbounded 64-bit value. The empty asm keeps clang from
	 * replacing the loop with its result. */
	while (i < *n) {
		i++;
		asm volatile("" : "+r"(i));
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
