/* SPDX-License-Identifier: Apache-2.0 */
/*
 * payload_mask: overwrite the first bytes of a UDP payload with a fill byte (the
 * benchmark's `action-payload`). Only payload bytes are ever written, never a header byte:
 * the write set is bytes 42..58 of an untagged IPv4/UDP frame.
 *
 * Because the UDP checksum (a header field) would have to change, only datagrams sent
 * without a checksum (0) are masked; others pass untouched, as do non-UDP frames, IPv4 with
 * options and fragments other than the first.
 *
 * `mask_config` (array, 1 entry, key __u32 0, value struct mask_config {__u32 len; __u8 fill;
 * __u8 pad[3]}): mask min(len, 16) bytes (len 0, the default, means 16) with `fill`
 * (default 0); a payload shorter than that is masked to its end (bounded by the UDP length
 * and by the frame). A whole 16-byte mask is written as two 8-byte stores, a shorter one
 * byte by byte. Always returns XDP_PASS.
 */
#include "bpfswitch.h"

#define MASK_MAX 16

struct mask_config {
	__u32 len;
	__u8 fill;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mask_config);
} mask_config SEC(".maps");

SEC("xdp")
int payload_mask(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	struct mask_config *cfg;
	struct udphdr *udp;
	__u8 *payload;
	__u32 zero = 0, len, udp_payload;
	__u8 fill;
	int i;

	if (!ip || ip->protocol != IPPROTO_UDP || ip->ihl != 5 ||
	    (ip->frag_off & bpf_htons(0x1fff)))
		return XDP_PASS;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end || udp->check != 0)
		return XDP_PASS;

	cfg = bpf_map_lookup_elem(&mask_config, &zero);
	len = MASK_MAX;
	fill = 0;
	if (cfg) {
		if (cfg->len && cfg->len < MASK_MAX)
			len = cfg->len;
		fill = cfg->fill;
	}
	udp_payload = bpf_ntohs(udp->len);
	if (udp_payload < sizeof(*udp))
		return XDP_PASS;
	udp_payload -= sizeof(*udp);
	if (udp_payload < len)
		len = udp_payload;

	payload = (void *)(udp + 1);
	if (len == MASK_MAX && (void *)(payload + MASK_MAX) <= data_end) {
		/* The whole mask fits: two 8-byte stores (XDP allows unaligned packet access on
		 * the architectures it JIT-compiles for, as x86_64 and arm64). */
		__u64 word = fill * 0x0101010101010101ULL;

		*(__u64 *)payload = word;
		*(__u64 *)(payload + 8) = word;
		return XDP_PASS;
	}
#pragma unroll
	for (i = 0; i < MASK_MAX; i++) {
		if (i < len && (void *)(payload + i + 1) <= data_end)
			payload[i] = fill;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
