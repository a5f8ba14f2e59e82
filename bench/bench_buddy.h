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
 *
 * Built twice from the same sources: bench_buddy against lf_buddy (version
 * 2), and bench_buddy_v3 (BENCH_BUDDY_V3 1) against lf_buddy_units, the
 * buddy sources over units of 32 frames (version 3, docs/design.md 2.7),
 * with the locked buddy compiled in as the baseline. Only the names of the
 * program and of the lock-free impls differ (lf_buddy_v3,
 * lf_buddy_v3_nocache), so that the CSV and the tables say which version
 * ran; what "caches off" means in version 3 is in bench/README.md.
 */
#ifndef BENCH_BUDDY_H
#define BENCH_BUDDY_H

#include "bench.h"

#ifndef BENCH_BUDDY_V3
#define BENCH_BUDDY_V3 0
#endif
/*
 * BENCH_BUDDY_NORSV (version 3 only, repeat and bulk): the context gives
 * up its reservation (buddy_cpu_drain()) each time its thread holds no
 * block, after every pair (repeat) or batch (bulk), so every first
 * allocation reserves anew and every release gives emptied units back to
 * the core: version 3 without a reservation kept, its global path.
 */
#if BENCH_BUDDY_V3
#define BENCH_BUDDY_PROG "bench_buddy_v3"
#define BENCH_BUDDY_LF "lf_buddy_v3"
#define BENCH_BUDDY_NOCACHE "lf_buddy_v3_nocache"
#define BENCH_BUDDY_NORSV "lf_buddy_v3_norsv"
#else
#define BENCH_BUDDY_PROG "bench_buddy"
#define BENCH_BUDDY_LF "lf_buddy"
#define BENCH_BUDDY_NOCACHE "lf_buddy_nocache"
#define BENCH_BUDDY_NORSV "lf_buddy_norsv" /* never run */
#endif

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
#if BENCH_BUDDY_V3
extern const struct bench_impl bench_buddy_repeat_norsv;
extern const struct bench_impl bench_buddy_bulk_norsv;
#endif

/*
 * Print what the allocators did per pair, summed over the repeats of each
 * point (splits, merges, stale stack entries, cache refills and drains,
 * from buddy_zone_stats / buddy_locked_stats): why a figure is what it is.
 * Returns the lock-free buddy's spurious ENOMEMs (bench_buddy_work.c),
 * which it also reports.
 */
uint64_t bench_buddy_work_report(void);

#endif /* BENCH_BUDDY_H */
