/* An Oko-style uBPF filter: entry in .text, r1 = packet, r2 = length; a ubpf_map_def
 * global hash map of allowed UDP destination ports; returns 1 to match, 0 not to. */
typedef unsigned long long uint64_t;

struct ubpf_map_def {
	unsigned int type, key_size, value_size, max_entries, nb_hash_functions;
};

struct ubpf_map_def ports = { .type = 4, .key_size = 2, .value_size = 8, .max_entries = 32 };

static void *(*ubpf_map_lookup)(const void *, const void *) = (void *)1;
static uint64_t (*ubpf_hash)(const void *, uint64_t) = (void *)6;

uint64_t entry(void *pkt, uint64_t len)
{
	unsigned char *p = pkt;
	if (len < 42 || p[12] != 0x08 || p[13] != 0x00 || p[23] != 17)
		return 0;
	unsigned short dport = *(unsigned short *)(p + 36);
	uint64_t *hits = ubpf_map_lookup(&ports, &dport);
	if (!hits)
		return 0;
	*hits += ubpf_hash(p + 26, 4) & 1 ? 1 : 2;
	return 1;
}
