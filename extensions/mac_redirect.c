/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mac_redirect: an L2 forwarder. Frames whose destination MAC address has an entry in
 * `mac_ports` are redirected to that port with bpf_redirect() (in the switch, an OpenFlow
 * port number; in the kernel, an ifindex); the port's entry counts them. Other frames pass.
 *
 * `mac_ports` (hash, 4096): key struct mac_key {__u8 addr[6]; __u16 pad = 0} (8 bytes),
 * value struct mac_port {__u32 port; __u32 pad; __u64 frames}.
 *
 * Returns XDP_REDIRECT (the value bpf_redirect() gives) or XDP_PASS; never writes the packet.
 */
#include "bpfswitch.h"

struct mac_key {
	__u8 addr[ETH_ALEN];
	__u16 pad;
};

struct mac_port {
	__u32 port;
	__u32 pad;
	__u64 frames;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct mac_key);
	__type(value, struct mac_port);
} mac_ports SEC(".maps");

SEC("xdp")
int mac_redirect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct mac_key key = {};
	struct mac_port *out;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	__builtin_memcpy(key.addr, eth->h_dest, ETH_ALEN);
	out = bpf_map_lookup_elem(&mac_ports, &key);
	if (!out)
		return XDP_PASS;
	out->frames += 1;
	return bpf_redirect(out->port, 0);
}

char LICENSE[] SEC("license") = "GPL";
