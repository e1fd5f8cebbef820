/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UNSAFE (verifier test): increments a per-source counter through the result of
 * bpf_map_lookup_elem without checking it for NULL (a source with no entry). The kernel
 * verifier must reject it: "invalid mem access 'map_value_or_null'".
 */
#include "bpfswitch.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} src_counters SEC(".maps");

SEC("xdp")
int null_deref(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	__u32 src;
	__u64 *count;

	if (!ip)
		return XDP_PASS;
	src = ip->saddr;
	count = bpf_map_lookup_elem(&src_counters, &src);
	/* Bug: count is NULL for a source without an entry. */
	*count += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
