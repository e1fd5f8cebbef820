/* Shared definitions for the runtime's test programs (no kernel headers beyond linux/bpf.h). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct ethhdr_t { unsigned char dst[6], src[6]; unsigned short proto; };
struct iphdr_t {
	unsigned char ihl_ver, tos; unsigned short tot_len, id, frag;
	unsigned char ttl, protocol; unsigned short check; unsigned int saddr, daddr;
};
struct udphdr_t { unsigned short source, dest, len, check; };
