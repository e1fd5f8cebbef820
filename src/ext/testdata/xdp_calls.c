/* bpf-to-bpf calls: a non-inlined function computes a checksum-like sum over the first
 * bytes of the packet using its own stack frame. */
#include "common.h"

static __attribute__((noinline)) __u32 mix(__u32 a, __u32 b)
{
	volatile __u32 buf[4] = { a, b, a ^ b, a + b };
	return buf[0] * 31 + buf[1] * 7 + buf[2] + buf[3];
}

SEC("xdp")
int xdp_calls(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	volatile __u32 keep[2] = { 5, 6 };
	if (data + 8 > end)
		return XDP_PASS;
	__u32 v = mix(*(__u32 *)data, *(__u32 *)(data + 4));
	return (v + keep[0] + keep[1]) % 4 + 1;
}

char LICENSE[] SEC("license") = "GPL";
