/* SPDX-License-Identifier: Apache-2.0 */
/*
 * icmp_echo: answers ICMP echo requests in place and sends the reply back out of the port it
 * came in on. The Ethernet addresses and the IPv4 addresses are swapped, the type becomes
 * echo reply (0), the TTL is reset to 64, and the ICMP and IPv4 checksums are patched
 * incrementally (swapping the addresses leaves the IPv4 checksum unchanged).
 *
 * Returns XDP_TX for an echo request (untagged IPv4 without options, not a fragment), and
 * XDP_PASS, untouched, for anything else. No maps.
 */
#include "bpfswitch.h"

#define ICMP_ECHO_REQUEST 8
#define ICMP_ECHO_REPLY 0

struct icmp_echo_hdr {
	__u8 type;
	__u8 code;
	__u16 check;
	__be16 id;
	__be16 seq;
};

SEC("xdp")
int icmp_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = ipv4_header(data, data_end);
	struct icmp_echo_hdr *icmp;
	__u8 mac[ETH_ALEN];
	__be32 addr;
	__u16 old_word, new_word;

	if (!ip || ip->ihl != 5 || ip->protocol != IPPROTO_ICMP ||
	    (ip->frag_off & bpf_htons(0x3fff)))
		return XDP_PASS;
	icmp = (void *)(ip + 1);
	if ((void *)(icmp + 1) > data_end)
		return XDP_PASS;
	if (icmp->type != ICMP_ECHO_REQUEST || icmp->code != 0)
		return XDP_PASS;

	/* Type and code form the first 16-bit word of the ICMP header. */
	icmp->type = ICMP_ECHO_REPLY;
	icmp->check = csum_update2(icmp->check, bpf_htons(ICMP_ECHO_REQUEST << 8),
				   bpf_htons(ICMP_ECHO_REPLY << 8));

	/* TTL and protocol form the fifth 16-bit word of the IPv4 header. */
	old_word = bpf_htons((ip->ttl << 8) | ip->protocol);
	ip->ttl = 64;
	new_word = bpf_htons((64 << 8) | ip->protocol);
	ip->check = csum_update2(ip->check, old_word, new_word);

	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;

	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
