/* SPDX-License-Identifier: Apache-2.0 */
/*
 * udp_flood_drop: a port-hook fast drop of UDP floods, meant to run on every received
 * packet before classification.
 *
 * A UDP datagram is dropped when its destination port is blocklisted, or when more than
 * `threshold` datagrams to that port arrived in the current window of `window_ns`
 * nanoseconds (a fixed window per port that restarts at the first datagram after it ends).
 *
 * Maps:
 * - `flood_config` (array, 1 entry, key __u32 0, value struct flood_config {__u64 threshold;
 *   __u64 window_ns}, host order): threshold 0 (the default) disables the rate check; a
 *   window of 0 means one second.
 * - `blocked_ports` (array, 65536 entries, key __u32 destination port in host order,
 *   value __u32: non-zero blocks the port).
 * - `port_windows` (array, 65536 entries, key __u32 destination port in host order,
 *   value struct port_window {__u64 start_ns; __u64 count}).
 * - `flood_drops` (array, 1 entry, key __u32 0, value __u64 datagrams dropped).
 *
 * Returns XDP_DROP or XDP_PASS; non-UDP frames, IPv4 with options and non-first fragments
 * pass without being counted.
 */
#include "bpfswitch.h"

#define DEFAULT_WINDOW_NS 1000000000ULL

struct flood_config {
	__u64 threshold;
	__u64 window_ns;
};

struct port_window {
	__u64 start_ns;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flood_config);
} flood_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} blocked_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct port_window);
} port_windows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} flood_drops SEC(".maps");

static __always_inline int drop(void)
{
	__u32 zero = 0;
	__u64 *drops = bpf_map_lookup_elem(&flood_drops, &zero);

	if (drops)
		*drops += 1;
	return XDP_DROP;
}

SEC("xdp")
int udp_flood_drop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	struct flood_config *cfg;
	struct port_window *w;
	struct udphdr *udp;
	__u32 port, zero = 0, *blocked;
	__u64 now, window;

	if (!ip || ip->protocol != IPPROTO_UDP || ip->ihl != 5 ||
	    (ip->frag_off & bpf_htons(0x1fff)))
		return XDP_PASS;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	port = bpf_ntohs(udp->dest);

	blocked = bpf_map_lookup_elem(&blocked_ports, &port);
	if (blocked && *blocked)
		return drop();

	cfg = bpf_map_lookup_elem(&flood_config, &zero);
	if (!cfg || cfg->threshold == 0)
		return XDP_PASS;
	window = cfg->window_ns ? cfg->window_ns : DEFAULT_WINDOW_NS;
	w = bpf_map_lookup_elem(&port_windows, &port);
	if (!w)
		return XDP_PASS;
	now = bpf_ktime_get_ns();
	if (w->count == 0 || now - w->start_ns >= window) {
		w->start_ns = now;
		w->count = 0;
	}
	w->count += 1;
	if (w->count > cfg->threshold)
		return drop();
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
