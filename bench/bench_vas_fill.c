/*
 * bench_vas_fill.c: the tree layout that bench_vas times and bench_mem
 * weighs (bench_vas.h): n allocated ranges of 1 to BENCH_VAS_MAX_LEN
 * quanta, a free gap of 1 to BENCH_VAS_MAX_LEN quanta after each, drawn
 * from a fixed stream per n, so every implementation (and both programs)
 * holds the same ranges.
 */
#include "bench_vas.h"

#include <stddef.h>

static uint64_t bench_vas_fill_rand(uint64_t *s) /* xorshift64* */
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

uint64_t bench_vas_fill(const struct bench_vas_ops *ops, void *a, uint64_t base,
			uint64_t n, uint64_t *addr, uint8_t *len)
{
	uint64_t rng = 0x9e3779b97f4a7c15ULL ^ n, at = 0;

	for (uint64_t j = 0; j < n; j++) {
		uint64_t r = bench_vas_fill_rand(&rng);
		uint64_t l = 1 + r % BENCH_VAS_MAX_LEN;
		uint64_t start = base + at * BENCH_VAS_QUANTUM;

		if (ops->alloc_at(a, 0, start, l * BENCH_VAS_QUANTUM) != 0)
			return 0;
		if (addr != NULL) {
			addr[j] = start;
			len[j] = (uint8_t)l;
		}
		at += l + 1 + (r >> 32) % BENCH_VAS_MAX_LEN;
	}
	return at;
}
