/*
 * bench_mem.c: what the allocators cost in memory, ours beside the
 * baselines, in the same program. Nothing is timed.
 *
 *   buddy_meta  metadata bytes per managed 4 KiB frame of the lock-free
 *               buddy (buddy_meta_size(): 6 bytes a frame, the zone and one
 *               context per CPU) for zones of 64 MiB, 1 GiB and 16 GiB with
 *               1, 4 and 16 CPUs, and of the locked buddy
 *               (buddy_locked_meta_size(), no CPUs), from their APIs. The
 *               64 MiB figures are checked: buddy_zone_init() and
 *               buddy_locked_init() succeed in exactly that many bytes and
 *               refuse one byte less with BUDDY_ENOSPC.
 *   vas_tree    tree bytes per live range of vaspace/ and of the red-black
 *               tree baseline of bench_vas (the same trees under either
 *               lock: rb_tree), filled with 10^3 .. 10^6 ranges in
 *               bench_vas's layout (bench_vas_fill(): ranges of 1-4 quanta
 *               with free gaps of 1-4 quanta, so n allocated and n free
 *               ranges), nodes in use and spare, right after the fill. Each
 *               filled tree must pass its structural check and hold n
 *               ranges.
 *
 * Output: the load average (/proc/loadavg) at the start and the end
 * (nothing is timed, but every result says what the machine was doing), a
 * table, the target (lf_buddy's metadata, everything included: the frames,
 * the zone and a context per CPU, at most 1 byte per frame, at the zones of
 * 1 GiB and 16 GiB with the most CPUs of the table; a missed target does
 * not fail the run) and, with --csv, one row per figure:
 *   what,impl,param,units,bytes,per
 * (units: frames or live ranges; per = bytes / units). A failed check
 * exits 1. See bench/README.md.
 *
 * Usage: bench_mem [--csv PATH] [--quick]
 * --quick (the smoke test) weighs the trees at 10^3 and 10^4 ranges only.
 */
#include "bench.h"
#include "bench_vas.h"

#include "buddy.h"
#include "buddy_locked.h"
#include "lf_platform.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_MEM_BASE ((uint64_t)1 << 32) /* zone base: 4 GiB */
#define BENCH_MEM_VAS_BASE (1ULL << 40)
#define BENCH_MEM_MIN_EXP 3 /* 10^3 ranges */
#define BENCH_MEM_MAX_EXP 6 /* 10^6 ranges */
#define BENCH_MEM_QUICK_EXP 4
#define BENCH_MEM_TARGET 1.0 /* lf_buddy metadata bytes per frame, at most */

/*
 * Built twice: bench_mem against lf_buddy (version 2), and bench_mem_v3
 * (BENCH_MEM_V3 1) against lf_buddy_units (version 3, docs/design.md
 * 2.7), the locked buddy compiled in: its buddy rows are named
 * lf_buddy_v3, and it weighs no trees (bench_mem's are the same).
 */
#ifndef BENCH_MEM_V3
#define BENCH_MEM_V3 0
#endif
#if BENCH_MEM_V3
#define BENCH_MEM_LF "lf_buddy_v3"
#else
#define BENCH_MEM_LF "lf_buddy"
#endif
#define BENCH_MEM_TARGET_MIB 1024 /* zones from this size on are targeted */

static const uint64_t bench_mem_zone_mib[] = { 64, 1024, 16384 };
static const unsigned bench_mem_cpus[] = { 1, 4, 16 };

static const struct {
	const char *name;
	const struct bench_vas_ops *ops;
} bench_mem_trees[] = {
	{ "vas", &bench_vas_ops_vas },
	{ "rb_tree", &bench_vas_ops_rb_rwlock },
};

#define BENCH_MEM_N(a) (sizeof(a) / sizeof((a)[0]))

static FILE *bench_mem_csv;

/* lf_buddy bytes per frame at the most CPUs, per zone, for the target. */
static double bench_mem_lf_per[sizeof(bench_mem_zone_mib) /
			       sizeof(bench_mem_zone_mib[0])];

/* One figure: a table line and a CSV row. */
static void bench_mem_row(const char *what, const char *impl, const char *param,
			  uint64_t units, uint64_t bytes)
{
	double per = (double)bytes / (double)units;

	printf("  %-12s %-14s %-22s %10llu %12llu %9.3f\n", what, impl, param,
	       (unsigned long long)units, (unsigned long long)bytes, per);
	if (bench_mem_csv != NULL)
		fprintf(bench_mem_csv, "%s,%s,%s,%llu,%llu,%.4f\n", what, impl,
			param, (unsigned long long)units,
			(unsigned long long)bytes, per);
}

static void bench_mem_columns(void)
{
	printf("  %-12s %-14s %-22s %10s %12s %9s\n", "what", "impl", "param",
	       "units", "bytes", "per");
}

/* ---- buddy metadata ---- */

/*
 * Init in exactly need bytes must succeed, in one byte less must fail
 * with ENOSPC; ncpus 0: the locked buddy. 0, or -1 after a message.
 */
static int bench_mem_buddy_init(const struct buddy_region *rg, unsigned ncpus,
				size_t need)
{
	size_t size = (need + LF_CACHELINE - 1) & ~(size_t)(LF_CACHELINE - 1);
	void *meta = aligned_alloc(LF_CACHELINE, size);
	struct buddy_locked *l;
	struct buddy_zone *z;
	int full, less;

	if (meta == NULL)
		return -1;
	full = ncpus ? buddy_zone_init(&z, meta, need, rg, 1, ncpus)
		     : buddy_locked_init(&l, meta, need, rg, 1);
	less = ncpus ? buddy_zone_init(&z, meta, need - 1, rg, 1, ncpus)
		     : buddy_locked_init(&l, meta, need - 1, rg, 1);
	free(meta);
	if (full == BUDDY_OK && less == BUDDY_ENOSPC)
		return 0;
	fprintf(stderr,
		"bench_mem: init with %zu bytes, %u CPUs: %s; one "
		"byte less: %s\n",
		need, ncpus, buddy_strerror(full), buddy_strerror(less));
	return -1;
}

/* The figures of one zone size; -1 if a check failed. */
static int bench_mem_buddy_zone(unsigned zi)
{
	uint64_t mib = bench_mem_zone_mib[zi];
	const struct buddy_region rg = { .base = BENCH_MEM_BASE,
					 .size = mib << 20 };
	uint64_t frames = rg.size >> BUDDY_FRAME_SHIFT;
	size_t need = buddy_locked_meta_size(&rg, 1);
	char param[48];
	int rc = 0;

	for (unsigned i = 0; i < BENCH_MEM_N(bench_mem_cpus); i++) {
		unsigned n = bench_mem_cpus[i];
		size_t lf = buddy_meta_size(&rg, 1, n);

		snprintf(param, sizeof(param), "zone_%lluMiB_cpus_%u",
			 (unsigned long long)mib, n);
		bench_mem_row("buddy_meta", BENCH_MEM_LF, param, frames, lf);
		/* the last, the most CPUs, stays: the target's figure */
		bench_mem_lf_per[zi] = (double)lf / (double)frames;
		if (lf == 0 || (mib == bench_mem_zone_mib[0] &&
				bench_mem_buddy_init(&rg, n, lf) != 0))
			rc = -1;
	}
	snprintf(param, sizeof(param), "zone_%lluMiB", (unsigned long long)mib);
	bench_mem_row("buddy_meta", "locked_buddy", param, frames, need);
	if (need == 0 || (mib == bench_mem_zone_mib[0] &&
			  bench_mem_buddy_init(&rg, 0, need) != 0))
		rc = -1;
	return rc;
}

static int bench_mem_buddy(void)
{
	int rc = 0;

#if BENCH_MEM_V3
	printf("buddy metadata per 4 KiB frame (lf_buddy_v3: 20 bytes a unit "
	       "of 32 frames +\n  the zone + a context per CPU; locked_buddy: "
	       "no CPU part):\n");
#else
	printf("buddy metadata per 4 KiB frame (lf_buddy: %d bytes a frame + "
	       "the zone + a\n  context per CPU; locked_buddy: no CPU "
	       "part):\n",
	       BUDDY_META_FRAME_BYTES);
#endif
	bench_mem_columns();
	for (unsigned i = 0; i < BENCH_MEM_N(bench_mem_zone_mib); i++)
		rc |= bench_mem_buddy_zone(i);
	return rc;
}

/* ---- vaspace tree bytes ---- */

/* Fill one tree with n ranges and weigh it; -1 if a check failed. */
static int bench_mem_tree(unsigned k, uint64_t n, unsigned e)
{
	const struct bench_vas_ops *ops = bench_mem_trees[k].ops;
	void *a = ops->create(BENCH_MEM_VAS_BASE, BENCH_VAS_FILL_SIZE(n), 1);
	char param[32];
	int rc = -1;

	if (a == NULL) {
		fprintf(stderr, "bench_mem: cannot create %s\n",
			bench_mem_trees[k].name);
		return -1;
	}
	if (bench_vas_fill(ops, a, BENCH_MEM_VAS_BASE, n, NULL, NULL) != 0 &&
	    ops->check(a, n) == 0) {
		snprintf(param, sizeof(param), "ranges_1e%u", e);
		bench_mem_row("vas_tree", bench_mem_trees[k].name, param, n,
			      ops->bytes(a));
		rc = 0;
	} else {
		fprintf(stderr,
			"bench_mem: %s: fill of %llu ranges or its "
			"check failed\n",
			bench_mem_trees[k].name, (unsigned long long)n);
	}
	ops->destroy(a);
	return rc;
}

static int bench_mem_vas(bool quick)
{
	unsigned top = quick ? BENCH_MEM_QUICK_EXP : BENCH_MEM_MAX_EXP;
	uint64_t n = 1;
	int rc = 0;

	printf("\ntree bytes per live range, nodes in use and spare, after a "
	       "fill of n ranges\n  with a free gap after each (rb_tree: the "
	       "red-black trees of bench_vas's\n  rb_rwlock and rb_mutex):\n");
	bench_mem_columns();
	for (unsigned e = 0; e < BENCH_MEM_MIN_EXP; e++)
		n *= 10;
	for (unsigned e = BENCH_MEM_MIN_EXP; e <= top; e++, n *= 10)
		for (unsigned k = 0; k < BENCH_MEM_N(bench_mem_trees); k++)
			rc |= bench_mem_tree(k, n, e);
	return rc;
}

/* ---- targets ---- */

/* One line per targeted zone: "met" or "NOT met" (never a failure). */
static void bench_mem_targets(void)
{
	unsigned ncpus = bench_mem_cpus[BENCH_MEM_N(bench_mem_cpus) - 1];
	char what[96];

	printf("\ntargets (a missed target does not fail the run):\n");
	for (unsigned i = 0; i < BENCH_MEM_N(bench_mem_zone_mib); i++) {
		double v = bench_mem_lf_per[i];

		if (bench_mem_zone_mib[i] < BENCH_MEM_TARGET_MIB)
			continue;
		snprintf(what, sizeof(what),
			 "buddy meta, all included: "
			 "%s, %llu MiB, %u CPUs",
			 BENCH_MEM_LF,
			 (unsigned long long)bench_mem_zone_mib[i], ncpus);
		printf("  %-56s %7.4g %-7s (%s): %s\n", what, v, "B/frame",
		       "<= 1", v <= BENCH_MEM_TARGET ? "met" : "NOT met");
	}
}

/* ---- main ---- */

static void bench_mem_usage(FILE *f)
{
	fprintf(f, "usage: bench_mem [--csv PATH] [--quick]\n"
		   "  --csv PATH  one row per figure to PATH (CSV)\n"
		   "  --quick     trees at 10^3 and 10^4 ranges only\n");
}

/* The options; exits 0 on --help, 2 on a bad one. */
static bool bench_mem_parse(int argc, char **argv, const char **csv)
{
	bool quick = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
			*csv = argv[++i];
		} else if (strcmp(argv[i], "--quick") == 0) {
			quick = true;
		} else if (strcmp(argv[i], "--help") == 0) {
			bench_mem_usage(stdout);
			exit(0);
		} else {
			fprintf(stderr, "bench_mem: bad argument '%s'\n",
				argv[i]);
			bench_mem_usage(stderr);
			exit(2);
		}
	}
	return quick;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	bool quick = bench_mem_parse(argc, argv, &path);
	int rc;

	if (path != NULL)
		bench_mem_csv = bench_csv_create(
			path, "what,impl,param,units,bytes,per");
	bench_print_load("start");
	rc = bench_mem_buddy();
	if (!BENCH_MEM_V3)
		rc |= bench_mem_vas(quick);
	bench_print_load("end");
	bench_mem_targets();
	if (bench_mem_csv != NULL && fclose(bench_mem_csv) != 0) {
		perror(path);
		rc = -1;
	}
	if (rc != 0)
		printf("bench_mem: a check FAILED (see above)\n");
	return rc != 0 ? 1 : 0;
}
