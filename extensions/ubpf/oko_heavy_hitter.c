/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oko_heavy_hitter (uBPF/Oko ABI): a stateful filter that matches the packets of IPv4
 * sources that have sent more than a threshold of packets.
 *
 * Maps:
 * - `hh_config` (Oko array, 1 entry, key u32 0, value u64 threshold; 0, the default,
 *   means 100);
 * - `hh_sources` (Oko hash, key: the 4 source address bytes as in the packet, value
 *   struct source_stats {u64 packets; u64 last_ns}), created on a source's first packet with
 *   ubpf_map_update and stamped with ubpf_time_get_ns.
 *
 * Returns 1 (match) once a source's packet count, this packet included, exceeds the
 * threshold; 0 before that and for anything that is not untagged IPv4.
 */
#include "ubpf.h"

#define DEFAULT_THRESHOLD 100

struct source_stats {
	uint64_t packets;
	uint64_t last_ns;
};

struct ubpf_map_def hh_config = {
	.type = UBPF_MAP_TYPE_ARRAY,
	.key_size = 4,
	.value_size = 8,
	.max_entries = 1,
	.nb_hash_functions = 0,
};

struct ubpf_map_def hh_sources = {
	.type = UBPF_MAP_TYPE_HASHMAP,
	.key_size = 4,
	.value_size = sizeof(struct source_stats),
	.max_entries = 4096,
	.nb_hash_functions = 0,
};

uint64_t oko_heavy_hitter(void *pkt, uint64_t len)
{
	uint8_t *p = pkt;
	uint32_t src, zero = 0;
	uint64_t threshold = DEFAULT_THRESHOLD, *cfg;
	struct source_stats *st, fresh;

	if (!ubpf_is_ipv4(p, len, UBPF_L4))
		return 0;
	cfg = ubpf_map_lookup(&hh_config, &zero);
	if (cfg && *cfg)
		threshold = *cfg;

	src = *(uint32_t *)(p + UBPF_IP_SRC);
	st = ubpf_map_lookup(&hh_sources, &src);
	if (!st) {
		fresh.packets = 1;
		fresh.last_ns = ubpf_time_get_ns();
		ubpf_map_update(&hh_sources, &src, &fresh);
		return fresh.packets > threshold;
	}
	st->packets += 1;
	st->last_ns = ubpf_time_get_ns();
	return st->packets > threshold;
}
