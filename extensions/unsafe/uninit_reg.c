/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UNSAFE (verifier test): returns a register that no instruction wrote (r2 is not an
 * argument of an XDP program). Written in BPF assembly because C cannot express it. The
 * kernel verifier must reject it: "R2 !read_ok".
 */
#include "bpfswitch.h"

SEC("xdp")
__attribute__((naked)) int uninit_reg(struct xdp_md *ctx)
{
	asm volatile("r0 = r2;"
		     "r0 &= 3;"
		     "exit;");
}

char LICENSE[] SEC("license") = "GPL";
