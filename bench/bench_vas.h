/*
 * bench_vas.h: the address range allocators that bench_vas times, behind
 * one table of operations, so that the workloads (bench_vas.c) are the same
 * code for every implementation:
 *
 *   vas        vaspace/: the OLC B+-tree; lookups lock nothing
 *   vas_pc     the same with per-context caching of small ranges on: a
 *              small free and allocation write one leaf, no writer lock
 *   rb_rwlock  the baseline (bench_vas_rb.c): the same allocator on
 *              red-black trees (BSD sys/tree.h from libbsd), lookups under
 *              the read side of a pthread reader-writer lock, writers under
 *              its write side
 *   rb_mutex   the same red-black trees under one pthread mutex
 *
 * All three keep every range of the region, allocated or free, in a tree by
 * start address, and the free ranges in a second tree by (length, start):
 * best fit is the first entry at or above (length, 0), O(log n); adjacent
 * free ranges are coalesced on free. Only the synchronization differs.
 */
#ifndef BENCH_VAS_H
#define BENCH_VAS_H

#include <stdint.h>

#define BENCH_VAS_QUANTUM 4096u
#define BENCH_VAS_LOOKUP_N 8 /* addresses a lookup_n call takes, at most */
#define BENCH_VAS_MAX_LEN 4  /* quanta, of a filled range and of a gap */
/* Bytes of region that bench_vas_fill() of n ranges needs (with room). */
#define BENCH_VAS_FILL_SIZE(n)                                                 \
	((uint64_t)3 * BENCH_VAS_MAX_LEN * (n)*BENCH_VAS_QUANTUM)

enum bench_vas_lock { BENCH_VAS_RWLOCK, BENCH_VAS_MUTEX };

struct bench_vas_ops {
	/* A region [base, base + size) with nthreads_max thread handles. */
	void *(*create)(uint64_t base, uint64_t size, unsigned nthreads_max);
	void (*destroy)(void *a);
	/* 0 and the start of the allocated range holding addr, or -1. */
	int (*lookup)(void *a, unsigned id, uint64_t addr, uint64_t *start);
	/*
	 * n lookups in one call (vas_lookup_n; the red-black trees under one
	 * lock acquisition): start[i] the start of the allocated range
	 * holding addr[i], or UINT64_MAX; returns how many were found.
	 */
	unsigned (*lookup_n)(void *a, unsigned id, const uint64_t *addr,
			     unsigned n, uint64_t *start);
	/* Best fit; 0 or -1. */
	int (*alloc)(void *a, unsigned id, uint64_t size, uint64_t *addr);
	int (*alloc_at)(void *a, unsigned id, uint64_t addr, uint64_t size);
	/* Free the whole allocated range [addr, addr + size); 0 or -1. */
	int (*free)(void *a, unsigned id, uint64_t addr, uint64_t size);
	/*
	 * Quiescent: the structure is sound and holds nranges allocated
	 * ranges; 0, or -1 after printing what is wrong.
	 */
	int (*check)(void *a, uint64_t nranges);
	/* Bytes of tree memory (nodes) in use now. */
	uint64_t (*bytes)(void *a);
};

/*
 * Fill a fresh allocator a (region at base, BENCH_VAS_FILL_SIZE(n) bytes)
 * with n allocated ranges of 1 to BENCH_VAS_MAX_LEN quanta, each followed
 * by a free gap of 1 to BENCH_VAS_MAX_LEN quanta, from a fixed stream per
 * n: the same layout for every implementation (bench_vas_fill.c). Range j
 * goes to addr[j] and len[j] (quanta) unless addr is NULL. Returns the
 * quanta spanned, 0 if an alloc_at failed.
 */
uint64_t bench_vas_fill(const struct bench_vas_ops *ops, void *a, uint64_t base,
			uint64_t n, uint64_t *addr, uint8_t *len);

extern const struct bench_vas_ops bench_vas_ops_vas;
extern const struct bench_vas_ops bench_vas_ops_vas_pc;
extern const struct bench_vas_ops bench_vas_ops_rb_rwlock;
extern const struct bench_vas_ops bench_vas_ops_rb_mutex;

#endif /* BENCH_VAS_H */
