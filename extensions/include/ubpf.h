/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The uBPF/Oko program ABI, as the switch's `--abi ubpf` loader expects it.
 *
 * The entry point is a global function in `.text`: `uint64_t prog(void *pkt, uint64_t len)`,
 * r1 = the first byte of the Ethernet frame, r2 = its length. There is no context struct:
 * every packet access must be checked against `len`. Non-zero means "match" for a filter.
 *
 * Maps are `struct ubpf_map_def` globals (initialised, so they land in `.data`) with Oko's
 * map type numbers; helpers are called by Oko's numbers (below), not the kernel's, so these
 * programs are not loadable by the kernel.
 */
#ifndef BPFSWITCH_UBPF_H
#define BPFSWITCH_UBPF_H

typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;

/* Oko's map types. */
#define UBPF_MAP_TYPE_ARRAY 1
#define UBPF_MAP_TYPE_BLOOMFILTER 2 /* not supported by bpfswitch */
#define UBPF_MAP_TYPE_COUNTMIN 3 /* not supported by bpfswitch */
#define UBPF_MAP_TYPE_HASHMAP 4

/* A map definition: five u32, 20 bytes. */
struct ubpf_map_def {
	uint32_t type;
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	uint32_t nb_hash_functions;
};

/* Oko's helpers, by number. */
static void *(*ubpf_map_lookup)(const struct ubpf_map_def *map, const void *key) = (void *)1;
static int (*ubpf_map_update)(const struct ubpf_map_def *map, const void *key,
			      const void *value) = (void *)2;
static int (*ubpf_map_delete)(const struct ubpf_map_def *map, const void *key) = (void *)3;
static int (*ubpf_map_add)(const struct ubpf_map_def *map, const void *value) = (void *)4;
static uint64_t (*ubpf_time_get_ns)(void) = (void *)5;
static uint32_t (*ubpf_hash)(const void *data, uint64_t len) = (void *)6;
static void (*ubpf_printf)(const char *fmt, ...) = (void *)7;

/* Frame offsets of an untagged Ethernet + IPv4 (no options) + L4 frame. */
#define UBPF_ETH_TYPE 12
#define UBPF_IP 14
#define UBPF_IP_PROTO (UBPF_IP + 9)
#define UBPF_IP_SRC (UBPF_IP + 12)
#define UBPF_IP_DST (UBPF_IP + 16)
#define UBPF_L4 (UBPF_IP + 20)

/* Is this an untagged IPv4 frame without options, at least `need` bytes long? */
static inline int ubpf_is_ipv4(const uint8_t *p, uint64_t len, uint64_t need)
{
	return len >= need && len >= UBPF_L4 && p[UBPF_ETH_TYPE] == 0x08 &&
	       p[UBPF_ETH_TYPE + 1] == 0x00 && p[UBPF_IP] == 0x45;
}

#endif /* BPFSWITCH_UBPF_H */
