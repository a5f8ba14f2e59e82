/*
 * bench_buddy.c: the buddy allocator benchmark. The lock-free buddy of
 * buddy/ (with its per-CPU caches, and without: the global path) against
 * the classic locked buddy, the baseline, in the same program under the
 * same harness (../shared/STYLE.md rule 12; bench_harness.c). The
 * workloads are in bench_buddy_work.c; see bench/README.md.
 *
 * After the table it prints what the allocators did per pair, then the
 * targets of the issue that asked for this benchmark, each with the
 * measured figure and "met" or "NOT met". A missed target does not fail
 * the program: targets live in benchmarks, never in tests. Only a failed
 * check does (exit 1).
 *
 * Usage: bench_buddy [--csv PATH] [--seconds S] [--repeats R]
 *                    [--threads-max N] [--quick]
 */
#include "bench_buddy.h"

#include <stdio.h>

#define BENCH_BUDDY_PERCPU_NS 15.0 /* repeat, lf_buddy, 1 thread, at most */
#define BENCH_BUDDY_GLOBAL_NS 60.0 /* repeat, nocache, 1 thread, at most */
#define BENCH_BUDDY_SCALE 1.8      /* repeat, 2 / 1 thread throughput */
#define BENCH_BUDDY_CROSS 3.0      /* cross, 2 threads, locked / ours */

static const struct bench_impl *const bench_buddy_impls[] = {
	&bench_buddy_repeat_lf, &bench_buddy_repeat_nocache,
	&bench_buddy_repeat_locked, &bench_buddy_bulk_lf,
	&bench_buddy_bulk_nocache, &bench_buddy_bulk_locked,
	&bench_buddy_cross_lf, &bench_buddy_cross_nocache,
	&bench_buddy_cross_locked, &bench_buddy_mixed_lf,
	&bench_buddy_mixed_nocache, &bench_buddy_mixed_locked,
	&bench_buddy_huge_lf, &bench_buddy_huge_nocache,
	&bench_buddy_huge_locked,
};

static void bench_buddy_header(void)
{
	printf("one op = one alloc + free pair; a fresh %d GiB zone (one "
	       "region, fully\n  coalesced, frames never touched) per point; "
	       "lf_buddy: per-CPU caches on,\n  lf_buddy_nocache: off (every "
	       "call on the lock-free stacks), locked_buddy:\n  one spinlock "
	       "(the baseline)\n", BENCH_BUDDY_GIB);
	printf("repeat: alloc + free of one order-0 block\n");
	printf("bulk: alloc %d order-0 blocks, then free them\n",
	       BENCH_BUDDY_BULK);
	printf("cross: thread 2i allocs order 0, thread 2i+1 frees (SPSC "
	       "ring of %d);\n  a thread without a partner fills its ring, "
	       "then empties it\n", BENCH_BUDDY_RING);
	printf("mixed: %d blocks held per thread, orders 0-%d (order k with "
	       "p = 2^-(k+1)),\n  a random one freed and replaced\n",
	       BENCH_BUDDY_HELD, BENCH_BUDDY_MIXED_ORDERS - 1);
	printf("huge: alloc + free of one order-%d block (2 MiB)\n",
	       BENCH_BUDDY_HUGE_ORDER);
}

/* One target line: "met" if v is at most (or at least) the target. */
static void bench_buddy_target(const char *what, bool ok, double v,
			       const char *unit, const char *target)
{
	printf("  %-49s %7.4g %-7s (%s): %s\n", what, v, unit, target,
	       ok ? "met" : "NOT met");
}

static void bench_buddy_unmeasured(const char *what)
{
	printf("  %-49s not measured in this run\n", what);
}

/* Median ns per pair of one series; false if it did not run. */
static bool bench_buddy_ns(const struct bench_results *res, const char *b,
			   const char *impl, unsigned n, double *ns)
{
	double lo, hi;

	return bench_result(res, b, impl, n, ns, &lo, &hi) && *ns > 0;
}

static void bench_buddy_targets(const struct bench_results *res)
{
	const char *w1 = "per-CPU path (repeat, lf_buddy, 1 thread)";
	const char *w2 = "global path (repeat, lf_buddy_nocache, 1 thread)";
	const char *w3 = "scaling (repeat, lf_buddy, 2 / 1 threads)";
	const char *w4 = "cross, 2 threads (locked_buddy / lf_buddy)";
	double a, b;

	printf("targets (medians; a missed target does not fail the run):\n");
	if (bench_buddy_ns(res, "repeat", "lf_buddy", 1, &a))
		bench_buddy_target(w1, a <= BENCH_BUDDY_PERCPU_NS, a, "ns/pair",
				   "<= 15");
	else
		bench_buddy_unmeasured(w1);
	if (bench_buddy_ns(res, "repeat", "lf_buddy_nocache", 1, &a))
		bench_buddy_target(w2, a <= BENCH_BUDDY_GLOBAL_NS, a, "ns/pair",
				   "<= 60");
	else
		bench_buddy_unmeasured(w2);
	/* Throughput is threads / (ns per pair): 2 a / b. */
	if (bench_buddy_ns(res, "repeat", "lf_buddy", 1, &a) &&
	    bench_buddy_ns(res, "repeat", "lf_buddy", 2, &b))
		bench_buddy_target(w3, 2 * a / b >= BENCH_BUDDY_SCALE,
				   2 * a / b, "x", ">= 1.8x");
	else
		bench_buddy_unmeasured(w3);
	if (bench_buddy_ns(res, "cross", "locked_buddy", 2, &a) &&
	    bench_buddy_ns(res, "cross", "lf_buddy", 2, &b))
		bench_buddy_target(w4, a / b >= BENCH_BUDDY_CROSS, a / b, "x",
				   ">= 3x");
	else
		bench_buddy_unmeasured(w4);
}

static void bench_buddy_report(const struct bench_results *res)
{
	uint64_t enomem = bench_buddy_work_report();

	bench_buddy_targets(res);
	if (enomem != 0)
		printf("  and %llu false ENOMEMs (a failed check: see above)\n",
		       (unsigned long long)enomem);
}

static const struct bench_prog bench_buddy = {
	.name = "bench_buddy",
	.impls = bench_buddy_impls,
	.nimpls = sizeof(bench_buddy_impls) / sizeof(bench_buddy_impls[0]),
	.header = bench_buddy_header,
	.report = bench_buddy_report,
};

int main(int argc, char **argv)
{
	return bench_main(&bench_buddy, argc, argv);
}
