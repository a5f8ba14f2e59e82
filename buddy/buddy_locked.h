/*
 * buddy_locked.h: the classic locked buddy allocator, with the same calls
 * and error codes as buddy.h: doubly linked free lists per order under one
 * spinlock, as Linux's zone lock and Unikraft's ukallocbuddy do it.
 *
 * It is the oracle of the model tests (verify/buddy/) and the baseline of
 * the benchmarks (bench/). It has no per-CPU caches: every call takes the
 * zone lock. Freestanding like the rest of buddy/; metadata in caller memory
 * (buddy_locked_meta_size()), never in the frames.
 *
 * Synchronization table: every call may run at the same time as any other
 * (they serialize on the lock), except buddy_locked_init (before anything
 * else) and buddy_locked_check (at quiescence).
 */
#ifndef BUDDY_LOCKED_H
#define BUDDY_LOCKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buddy.h"

struct buddy_locked;

/* Bytes of metadata for these regions; 0 if the regions are invalid. */
size_t buddy_locked_meta_size(const struct buddy_region *regions,
			      unsigned nregions);

/* As buddy_zone_init(), without CPUs. */
int buddy_locked_init(struct buddy_locked **lp, void *meta, size_t meta_size,
		      const struct buddy_region *regions, unsigned nregions);

int buddy_locked_alloc(struct buddy_locked *l, unsigned order, uint64_t *addr);
int buddy_locked_alloc_below(struct buddy_locked *l, unsigned order,
			     uint64_t limit, uint64_t *addr);
int buddy_locked_alloc_at(struct buddy_locked *l, uint64_t addr,
			  unsigned order);
int buddy_locked_alloc_run(struct buddy_locked *l, uint64_t nframes,
			   uint64_t *addr);
int buddy_locked_free(struct buddy_locked *l, uint64_t addr, unsigned order);
int buddy_locked_free_run(struct buddy_locked *l, uint64_t addr,
			  uint64_t nframes);

/* As buddy_zone_stats(); the cache fields are 0. */
void buddy_locked_stats(struct buddy_locked *l, struct buddy_stats *out);

/* As buddy_zone_frame(); kinds FREE, ALLOC and TAIL only. */
int buddy_locked_frame(struct buddy_locked *l, uint64_t addr, unsigned *kind,
		       unsigned *order);

/*
 * Verify the lists and the per-frame orders at quiescence: every free block
 * on the list of its order once, aligned, inside one region, fully
 * coalesced, counts matching. 0 or a nonzero code; *frame as in buddy.h.
 */
int buddy_locked_check(struct buddy_locked *l, uint64_t *frame);

#endif /* BUDDY_LOCKED_H */
