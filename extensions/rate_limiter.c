/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rate_limiter: a token bucket per IPv4 source address.
 *
 * Maps:
 * - `rl_config` (array, 1 entry, key __u32 0, value struct rl_config: rate in packets per
 *   second and burst in packets, both __u64 host order). A zero burst drops every IPv4 packet.
 * - `rl_buckets` (LRU hash, key __be32 IPv4 source, value struct rl_bucket: tokens in
 *   nanotokens — 10^9 per packet — and the ktime_get_ns() of the last refill).
 *
 * A source's bucket starts full (burst packets). Each packet first adds elapsed_ns * rate
 * nanotokens (capped at the burst), then spends one token: XDP_PASS when it had one,
 * XDP_DROP when it did not. Non-IPv4 frames pass without touching any bucket.
 */
#include "bpfswitch.h"

#define NANOTOKENS 1000000000ULL
/* Elapsed time is capped so that elapsed * rate cannot overflow (rate up to 10^8 pps). */
#define MAX_ELAPSED_NS (10ULL * NANOTOKENS)
#define MAX_RATE 100000000ULL
#define MAX_BURST 1000000000ULL

struct rl_config {
	__u64 rate_pps;
	__u64 burst;
};

struct rl_bucket {
	__u64 tokens;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rl_config);
} rl_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct rl_bucket);
} rl_buckets SEC(".maps");

SEC("xdp")
int rate_limiter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	struct rl_config *cfg;
	struct rl_bucket *b;
	__u64 now, rate, cap, elapsed, tokens;
	__u32 zero = 0, src;

	if (!ip)
		return XDP_PASS;
	cfg = bpf_map_lookup_elem(&rl_config, &zero);
	if (!cfg)
		return XDP_DROP;
	rate = cfg->rate_pps;
	if (rate > MAX_RATE)
		rate = MAX_RATE;
	cap = cfg->burst;
	if (cap > MAX_BURST)
		cap = MAX_BURST;
	cap *= NANOTOKENS;

	src = ip->saddr;
	now = bpf_ktime_get_ns();
	b = bpf_map_lookup_elem(&rl_buckets, &src);
	if (!b) {
		struct rl_bucket fresh = { .tokens = cap, .last_ns = now };

		if (fresh.tokens < NANOTOKENS)
			return XDP_DROP;
		fresh.tokens -= NANOTOKENS;
		bpf_map_update_elem(&rl_buckets, &src, &fresh, BPF_ANY);
		return XDP_PASS;
	}

	elapsed = now - b->last_ns;
	if (now < b->last_ns)
		elapsed = 0;
	if (elapsed > MAX_ELAPSED_NS)
		elapsed = MAX_ELAPSED_NS;
	tokens = b->tokens + elapsed * rate;
	if (tokens > cap)
		tokens = cap;
	b->last_ns = now;
	if (tokens < NANOTOKENS) {
		b->tokens = tokens;
		return XDP_DROP;
	}
	b->tokens = tokens - NANOTOKENS;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
