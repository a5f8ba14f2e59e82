/*
 * bench_buddy.h: the interface between bench_buddy.c (the program: its
 * list of implementations, header, targets) and bench_buddy_work.c (the
 * workloads, run on the lock-free buddy and on the locked baseline of
 * buddy/).
 *
 * Five workloads (benches), each on three implementations (impls):
 *   lf_buddy          buddy_alloc/buddy_free, per-CPU caches on (default)
 *   lf_buddy_nocache  the same with buddy_cpu_cache_enable(c, false): every
 *                     call goes to the lock-free stacks (the global path)
 *   locked_buddy      buddy_locked_alloc/free: one spinlock (the baseline)
 * One op is one alloc + free pair. See bench_buddy_work.c.
 */
#ifndef BENCH_BUDDY_H
#define BENCH_BUDDY_H

#include "bench.h"

/* The workloads' parameters, for the header and the README. */
#define BENCH_BUDDY_BULK 64        /* bulk: blocks allocated, then freed */
#define BENCH_BUDDY_HELD 64        /* mixed: blocks held by a thread */
#define BENCH_BUDDY_MIXED_ORDERS 6 /* mixed: orders 0 to 5 */
#define BENCH_BUDDY_HUGE_ORDER 9   /* huge: 2 MiB blocks */
#define BENCH_BUDDY_RING 1024      /* cross: ring entries */
#define BENCH_BUDDY_GIB 1          /* zone: GiB of (fake) physical memory */

extern const struct bench_impl bench_buddy_repeat_lf;
extern const struct bench_impl bench_buddy_repeat_nocache;
extern const struct bench_impl bench_buddy_repeat_locked;
extern const struct bench_impl bench_buddy_bulk_lf;
extern const struct bench_impl bench_buddy_bulk_nocache;
extern const struct bench_impl bench_buddy_bulk_locked;
extern const struct bench_impl bench_buddy_cross_lf;
extern const struct bench_impl bench_buddy_cross_nocache;
extern const struct bench_impl bench_buddy_cross_locked;
extern const struct bench_impl bench_buddy_mixed_lf;
extern const struct bench_impl bench_buddy_mixed_nocache;
extern const struct bench_impl bench_buddy_mixed_locked;
extern const struct bench_impl bench_buddy_huge_lf;
extern const struct bench_impl bench_buddy_huge_nocache;
extern const struct bench_impl bench_buddy_huge_locked;

/*
 * Print what the allocators did per pair, summed over the repeats of each
 * point (splits, merges, stale stack entries, cache refills and drains,
 * from buddy_zone_stats / buddy_locked_stats): why a figure is what it is.
 * Returns the lock-free buddy's spurious ENOMEMs (bench_buddy_work.c),
 * which it also reports.
 */
uint64_t bench_buddy_work_report(void);

#endif /* BENCH_BUDDY_H */
