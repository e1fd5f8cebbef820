/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oko_blocklist (uBPF/Oko ABI): an Oko-style filter on a blocklist of IPv4 sources.
 *
 * `blocklist` (Oko hash map, key: the 4 source address bytes as in the packet, value: u64
 * hit counter) — returns 1 (match) for an untagged IPv4 frame whose source is listed, after
 * incrementing its counter, and 0 for anything else.
 */
#include "ubpf.h"

struct ubpf_map_def blocklist = {
	.type = UBPF_MAP_TYPE_HASHMAP,
	.key_size = 4,
	.value_size = 8,
	.max_entries = 1024,
	.nb_hash_functions = 0,
};

uint64_t oko_blocklist(void *pkt, uint64_t len)
{
	uint8_t *p = pkt;
	uint32_t src;
	uint64_t *hits;

	if (!ubpf_is_ipv4(p, len, UBPF_L4))
		return 0;
	src = *(uint32_t *)(p + UBPF_IP_SRC);
	hits = ubpf_map_lookup(&blocklist, &src);
	if (!hits)
		return 0;
	*hits += 1;
	return 1;
}
