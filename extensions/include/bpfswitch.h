/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared definitions for the XDP extensions in extensions/: header parsing that the kernel
 * verifier accepts, and incremental Internet checksum updates (RFC 1624).
 *
 * Every helper here is `static __always_inline`, so each program stays one function (no
 * bpf-to-bpf calls) and the verifier sees every packet access next to its bounds check.
 * All addresses and ports are kept in network byte order, exactly as they sit in the packet.
 */
#ifndef BPFSWITCH_H
#define BPFSWITCH_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* 802.1Q tag as it follows the MAC addresses (TPID first). */
struct vlan_tag {
	__be16 tpid;
	__be16 tci;
};

/* Ones' complement fold of a 32-bit partial sum into a 16-bit checksum field value. */
static __always_inline __u16 csum_fold32(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/*
 * RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), for a 32-bit field changing from `from` to `to`.
 * Values are as loaded from the packet; the ones' complement sum does not depend on the
 * byte order as long as every word is read the same way.
 */
static __always_inline __u16 csum_update4(__u16 check, __u32 from, __u32 to)
{
	__u32 s = (__u16)~check;
	__u32 nf = ~from;

	s += (nf & 0xffff) + (nf >> 16);
	s += (to & 0xffff) + (to >> 16);
	return csum_fold32(s);
}

/* The same for a 16-bit field. */
static __always_inline __u16 csum_update2(__u16 check, __u16 from, __u16 to)
{
	__u32 s = (__u16)~check;

	s += (__u16)~from;
	s += to;
	return csum_fold32(s);
}

/*
 * Returns the IPv4 header of an untagged Ethernet frame carrying IPv4, or NULL.
 * The whole fixed 20-byte header is checked to lie inside the packet.
 */
static __always_inline struct iphdr *ipv4_header(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end)
		return NULL;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	return ip;
}

#endif /* BPFSWITCH_H */
