/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nat: destination NAT from a map. For a TCP or UDP packet whose (destination address,
 * destination port, protocol) has an entry in `nat_rules`, rewrite the destination address
 * and port, and patch the IPv4 header checksum and the L4 checksum incrementally (the L4
 * checksum covers the pseudo-header's address and the port). A zero UDP checksum ("none")
 * stays zero; a UDP checksum that comes out as zero is sent as 0xffff.
 *
 * `nat_rules` (hash): key struct nat_key {__be32 daddr; __be16 dport; __u8 proto; __u8 pad},
 * 8 bytes, pad 0; value struct nat_target {__be32 daddr; __be16 dport; __u16 pad}, 8 bytes.
 *
 * Always returns XDP_PASS (translated or not). IPv4 options are allowed (the L4 header is
 * found from the IHL); non-first fragments, non-IPv4 frames and packets without a rule pass
 * untouched.
 */
#include "bpfswitch.h"

struct nat_key {
	__be32 daddr;
	__be16 dport;
	__u8 proto;
	__u8 pad;
};

struct nat_target {
	__be32 daddr;
	__be16 dport;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct nat_key);
	__type(value, struct nat_target);
} nat_rules SEC(".maps");

SEC("xdp")
int nat(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	struct nat_key key = {};
	struct nat_target *to;
	struct udphdr *ports;
	__u16 *l4_check;
	__u32 ihl_bytes;
	__be32 old_daddr;
	__be16 old_dport;
	int is_udp;

	if (!ip)
		return XDP_PASS;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x1fff))
		return XDP_PASS;
	ihl_bytes = ip->ihl * 4;
	if (ihl_bytes < sizeof(*ip))
		return XDP_PASS;
	is_udp = ip->protocol == IPPROTO_UDP;

	/* TCP and UDP both start with the ports; the checksum is at 6 (UDP) or 16 (TCP). */
	ports = (void *)ip + ihl_bytes;
	if (is_udp) {
		if ((void *)ports + sizeof(struct udphdr) > data_end)
			return XDP_PASS;
		l4_check = &ports->check;
	} else {
		struct tcphdr *tcp = (void *)ports;

		if ((void *)tcp + sizeof(struct tcphdr) > data_end)
			return XDP_PASS;
		l4_check = &tcp->check;
	}

	key.daddr = ip->daddr;
	key.dport = ports->dest;
	key.proto = ip->protocol;
	to = bpf_map_lookup_elem(&nat_rules, &key);
	if (!to)
		return XDP_PASS;

	old_daddr = ip->daddr;
	old_dport = ports->dest;
	ip->daddr = to->daddr;
	ports->dest = to->dport;
	ip->check = csum_update4(ip->check, old_daddr, to->daddr);
	if (is_udp && *l4_check == 0)
		return XDP_PASS;
	*l4_check = csum_update4(*l4_check, old_daddr, to->daddr);
	*l4_check = csum_update2(*l4_check, old_dport, to->dport);
	if (is_udp && *l4_check == 0)
		*l4_check = 0xffff;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
