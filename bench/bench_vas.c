/*
 * bench_vas.c: the address range allocator benchmark. vaspace/ (lookups
 * lock-free, writers take turns) against the same allocator on red-black
 * trees under a reader-writer lock and under a mutex (bench_vas_rb.c), in
 * the same program under the same harness (bench_harness.c), so that
 * they are compared in one run.
 *
 * Every implementation is filled once per tree size with the same n
 * allocated ranges, 1 to 4 quanta long with free gaps of 1 to 4 quanta
 * between them (so n allocated and n free ranges), and kept for the whole
 * run. Each point runs one mix:
 *   lookup  lookups only, at addresses drawn uniformly over the filled span
 *           (about half of them land in an allocated range)
 *   lookup8 the same lookups, 8 addresses a call (vas_lookup_n; the
 *           red-black trees look up the 8 under one lock acquisition)
 *   mix90   90% lookups, 10% writes
 *   mix50   50% lookups, 50% writes
 * A write frees one of the thread's own ranges (thread i owns the ranges
 * i, i + T, i + 2T, ...) and allocates one of the same length, best fit: a
 * free that coalesces with both neighbours, then a fit that splits a free
 * range; n stays the same. One op is one lookup or one write.
 *
 * After every point the implementation's structural check runs (vas_check
 * for vas) and must count exactly n allocated ranges; every lookup that
 * hits must return a range that can hold the address; every write must
 * succeed. After the table: tree bytes per live range, what backs the
 * nodes (how much of the process's memory huge pages back), the machine's
 * memory latency (a dependent load over as many bytes as the largest
 * tree: the floor under any lookup that misses the caches), and the
 * targets of the vaspace issue, each "met" or "NOT met" (a missed target
 * does not fail the run: targets live in benchmarks, never in tests).
 *
 * Usage: bench_vas [--csv PATH] [--seconds S] [--repeats R]
 *                  [--threads-max N] [--quick] [--only LIST] [--impls LIST]
 * --quick (the smoke test) runs the 10^3 and 10^4 sizes only; --only and
 * --impls (the harness's) run some benchmarks (e.g. lookup_1e6) or
 * implementations of them (lookup_1e6/vas), and the rest is neither run
 * nor filled.
 */
#include "bench.h"
#include "bench_arena.h"
#include "bench_vas.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BV_SIZES 4 /* 10^3 .. 10^6 live ranges */
#define BV_MIN_EXP 3
#define BV_QUICK_EXP 4               /* --quick stops at 10^4 */
#define BV_MAX_LEN BENCH_VAS_MAX_LEN /* quanta: range, gap */
#define BV_BASE (1ULL << 40)
#define BV_LOOKUP_NS 150.0  /* lookup, 10^6, vas, 1 thread, at most */
#define BV_LOOKUP_SCALE 1.9 /* lookup, 10^6, vas, 2 / 1 thread throughput */
#define BV_MIX_RATIO 2.0    /* mix90, 2 threads, rb_rwlock / vas ns */
#define BV_MUTEX_RATIO 1.0  /* mix50, mix90, 2 threads, rb_mutex / vas cpu */

enum bv_kind { BV_VAS, BV_RB_RWLOCK, BV_RB_MUTEX, BV_VAS_PC, BV_KINDS };

static const struct bench_vas_ops *const bv_ops[BV_KINDS] = {
	&bench_vas_ops_vas,
	&bench_vas_ops_rb_rwlock,
	&bench_vas_ops_rb_mutex,
	&bench_vas_ops_vas_pc,
};
static const char *const bv_kind_name[BV_KINDS] = { "vas", "rb_rwlock",
						    "rb_mutex", "vas_pc" };

/* One filled allocator, kept across the points of its size. */
struct bv_inst {
	void *a;
	uint64_t n;     /* live ranges */
	uint64_t *addr; /* [n]: slot j's range; written by its owner only */
	uint8_t *len;   /* [n]: its length in quanta */
	uint64_t spanq; /* quanta filled, where lookups land */
	uint64_t bytes_filled; /* tree bytes right after the fill */
};

struct bv_thread {
	uint64_t errors; /* failed writes, impossible lookup answers */
	uint64_t hits;   /* lookups that found a range */
} LF_CACHE_ALIGNED;

static struct bv_inst bv_inst[BV_KINDS][BV_SIZES];
static struct bv_thread bv_thread[BENCH_MAX_THREADS];
static uint64_t bv_point; /* seeds: a new stream every point */
static struct {
	struct bv_inst *in;
	const struct bench_vas_ops *ops;
	unsigned nthreads;
	unsigned wpct; /* writes in 100 ops */
	unsigned nb;   /* lookups a call: 1, or BENCH_VAS_LOOKUP_N */
} bv_cur;

static uint64_t bv_rand(uint64_t *s) /* xorshift64* */
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static uint64_t bv_count(unsigned si)
{
	uint64_t n = 1;

	for (unsigned e = 0; e < si + BV_MIN_EXP; e++)
		n *= 10;
	return n;
}

/* Fill an allocator with n ranges (the same layout for every kind). */
static int bv_fill(struct bv_inst *in, const struct bench_vas_ops *ops,
		   uint64_t n)
{
	in->n = n;
	in->addr = malloc(n * sizeof(*in->addr));
	in->len = malloc(n);
	in->a = ops->create(BV_BASE, BENCH_VAS_FILL_SIZE(n), BENCH_MAX_THREADS);
	if (in->addr == NULL || in->len == NULL || in->a == NULL)
		return -1;
	in->spanq = bench_vas_fill(ops, in->a, BV_BASE, n, in->addr, in->len);
	if (in->spanq == 0)
		return -1;
	in->bytes_filled = ops->bytes(in->a);
	return 0;
}

static const char *bv_skip(unsigned si)
{
	if (bench_quick() && si + BV_MIN_EXP > BV_QUICK_EXP)
		return "--quick runs 10^3 and 10^4 ranges only";
	return NULL;
}

static int bv_setup(unsigned kind, unsigned si, unsigned wpct, unsigned nb,
		    unsigned nthreads)
{
	struct bv_inst *in = &bv_inst[kind][si];

	if (in->a == NULL && bv_fill(in, bv_ops[kind], bv_count(si)) != 0) {
		fprintf(stderr, "bench_vas: cannot fill %s\n",
			bv_kind_name[kind]);
		return -1;
	}
	for (unsigned i = 0; i < nthreads; i++)
		bv_thread[i] = (struct bv_thread){ 0 };
	bv_cur.in = in;
	bv_cur.ops = bv_ops[kind];
	bv_cur.nthreads = nthreads;
	bv_cur.wpct = wpct;
	bv_cur.nb = nb;
	bv_point++;
	return 0;
}

static void bv_thread_nop(unsigned id)
{
	(void)id;
}

/* Free the thread's range in slot j, allocate one as long. */
static void bv_write(unsigned id, uint64_t j, struct bv_thread *t)
{
	struct bv_inst *in = bv_cur.in;
	uint64_t len = in->len[j] * (uint64_t)BENCH_VAS_QUANTUM;

	if (bv_cur.ops->free(in->a, id, in->addr[j], len) != 0 ||
	    bv_cur.ops->alloc(in->a, id, len, &in->addr[j]) != 0)
		t->errors++;
}

/* The address a lookup draws from r (bits 32-63: the quantum, 0-11: the
 * offset in it), uniform over the filled span. */
static uint64_t bv_addr(uint64_t r, uint64_t spanq)
{
	return BV_BASE + (((r >> 32) * spanq) >> 32) * BENCH_VAS_QUANTUM +
	       (r & (BENCH_VAS_QUANTUM - 1));
}

/* A hit must be a range that can hold the address. */
static bool bv_hit_bad(uint64_t addr, uint64_t start)
{
	return start > addr ||
	       addr - start >= BV_MAX_LEN * (uint64_t)BENCH_VAS_QUANTUM;
}

static void bv_lookup(unsigned id, uint64_t addr, struct bv_thread *t)
{
	struct bv_inst *in = bv_cur.in;
	uint64_t start;

	if (bv_cur.ops->lookup(in->a, id, addr, &start) != 0)
		return;
	t->hits++;
	if (bv_hit_bad(addr, start))
		t->errors++;
}

/* nb lookups in one call, at addresses drawn as bv_lookup()'s are. */
static void bv_lookup_n(unsigned id, unsigned nb, uint64_t spanq, uint64_t *rng,
			struct bv_thread *t)
{
	struct bv_inst *in = bv_cur.in;
	uint64_t addr[BENCH_VAS_LOOKUP_N], start[BENCH_VAS_LOOKUP_N];
	unsigned hits = 0;

	for (unsigned i = 0; i < nb; i++)
		addr[i] = bv_addr(bv_rand(rng), spanq);
	unsigned got = bv_cur.ops->lookup_n(in->a, id, addr, nb, start);
	for (unsigned i = 0; i < nb; i++) {
		if (start[i] == UINT64_MAX)
			continue;
		hits++;
		if (bv_hit_bad(addr[i], start[i]))
			t->errors++;
	}
	if (got != hits) /* the count returned is the hits reported */
		t->errors++;
	t->hits += hits;
}

static uint64_t bv_run(unsigned id, const struct bench_stop *stop)
{
	struct bv_thread *t = &bv_thread[id];
	unsigned nth = bv_cur.nthreads, wpct = bv_cur.wpct;
	uint64_t mine = (bv_cur.in->n - id + nth - 1) / nth;
	uint64_t spanq = bv_cur.in->spanq, ops = 0;
	uint64_t rng = (bv_point << 8 | id) * 0x9e3779b97f4a7c15ULL + 1;

	if (bv_cur.nb > 1) {
		while (!bench_stopped(stop)) {
			for (unsigned b = 0; b < BENCH_BATCH; b += bv_cur.nb)
				bv_lookup_n(id, bv_cur.nb, spanq, &rng, t);
			ops += BENCH_BATCH;
		}
		return ops;
	}
	while (!bench_stopped(stop)) {
		for (unsigned b = 0; b < BENCH_BATCH; b++) {
			uint64_t r = bv_rand(&rng);
			/* Bits 0-15: the mix; 16-47: the slot; 32-63: q. */
			if ((((r & 0xffff) * 100) >> 16) < wpct)
				bv_write(id,
					 id + nth * ((((r >> 16) & 0xffffffff) *
						      mine) >>
						     32),
					 t);
			else
				bv_lookup(id, bv_addr(r, spanq), t);
		}
		ops += BENCH_BATCH;
	}
	return ops;
}

static int bv_check(void)
{
	uint64_t errors = 0;

	for (unsigned i = 0; i < bv_cur.nthreads; i++)
		errors += bv_thread[i].errors;
	if (errors != 0)
		fprintf(stderr,
			"bench_vas: %llu failed writes or wrong "
			"lookups\n",
			(unsigned long long)errors);
	return bv_cur.ops->check(bv_cur.in->a, bv_cur.in->n) == 0 && errors == 0
		       ? 0
		       : -1;
}

/* One implementation per (mix, size, kind): setup knows which. */
#define BV_IMPL(mix, wpct, nb, si, exp, kind, name, is_ours)                   \
	static const char *bv_skip_##mix##_##si##_##kind(unsigned nthreads)    \
	{                                                                      \
		(void)nthreads;                                                \
		if (kind == BV_VAS_PC && wpct == 0)                            \
			return "lookups only: the reader of vas";              \
		return bv_skip(si);                                            \
	}                                                                      \
	static int bv_setup_##mix##_##si##_##kind(unsigned nthreads)           \
	{                                                                      \
		return bv_setup(kind, si, wpct, nb, nthreads);                 \
	}                                                                      \
	static const struct bench_impl bv_##mix##_##si##_##kind = {            \
		.bench = #mix "_1e" #exp,                                      \
		.impl = name,                                                  \
		.ours = is_ours,                                               \
		.skip = bv_skip_##mix##_##si##_##kind,                         \
		.setup = bv_setup_##mix##_##si##_##kind,                       \
		.thread_init = bv_thread_nop,                                  \
		.run = bv_run,                                                 \
		.thread_fini = bv_thread_nop,                                  \
		.check = bv_check,                                             \
	};
#define BV_IMPLS3(mix, wpct, nb, si, exp)                                      \
	BV_IMPL(mix, wpct, nb, si, exp, BV_VAS, "vas", true)                   \
	BV_IMPL(mix, wpct, nb, si, exp, BV_RB_RWLOCK, "rb_rwlock", false)      \
	BV_IMPL(mix, wpct, nb, si, exp, BV_RB_MUTEX, "rb_mutex", false)        \
	BV_IMPL(mix, wpct, nb, si, exp, BV_VAS_PC, "vas_pc", true)
#define BV_IMPLS(mix, wpct, nb)                                                \
	BV_IMPLS3(mix, wpct, nb, 0, 3)                                         \
	BV_IMPLS3(mix, wpct, nb, 1, 4)                                         \
	BV_IMPLS3(mix, wpct, nb, 2, 5)                                         \
	BV_IMPLS3(mix, wpct, nb, 3, 6)

BV_IMPLS(lookup, 0, 1)
BV_IMPLS(lookup8, 0, BENCH_VAS_LOOKUP_N)
BV_IMPLS(mix90, 10, 1)
BV_IMPLS(mix50, 50, 1)

#define BV_LIST3(mix, si)                                                      \
	&bv_##mix##_##si##_BV_VAS, &bv_##mix##_##si##_BV_RB_RWLOCK,            \
		&bv_##mix##_##si##_BV_RB_MUTEX, &bv_##mix##_##si##_BV_VAS_PC
#define BV_LIST(mix)                                                           \
	BV_LIST3(mix, 0), BV_LIST3(mix, 1), BV_LIST3(mix, 2), BV_LIST3(mix, 3)

static const struct bench_impl *const bv_impls[] = {
	BV_LIST(lookup),
	BV_LIST(lookup8),
	BV_LIST(mix90),
	BV_LIST(mix50),
};

static void bv_header(void)
{
	printf("one op = one lookup, or one write (free one of the thread's "
	       "ranges, then\n  allocate one as long, best fit); n live "
	       "ranges of 1-%d quanta, free gaps\n  of 1-%d quanta between "
	       "them; lookups uniform over the filled span\n",
	       BV_MAX_LEN, BV_MAX_LEN);
	printf("lookup_1eK: lookups only; lookup8_1eK: the same, 8 a call "
	       "(vas_lookup_n;\n  the trees under one lock acquisition); "
	       "mix90_1eK: 10%% writes;\n  mix50_1eK: 50%% writes; n = 10^K\n");
	printf("vas: vaspace/ (OLC B+-tree, lock-free lookups, writers take "
	       "turns);\n  rb_rwlock: the same allocator on red-black trees "
	       "under a pthread\n  rwlock (the baseline); rb_mutex: under one "
	       "pthread mutex;\n  vas_pc: vas with per-context caching of "
	       "small "
	       "ranges (a small free\n  and alloc write one leaf, no writer "
	       "lock)\n");
}

static void bv_target(const char *what, bool ok, double v, const char *unit,
		      const char *target)
{
	printf("  %-46s %7.4g %-5s (%s): %s\n", what, v, unit, target,
	       ok ? "met" : "NOT met");
}

/* Median ns/op of one series; false if it did not run. */
static bool bv_ns(const struct bench_results *res, const char *b,
		  const char *impl, unsigned n, double *ns)
{
	double lo, hi;

	return bench_result(res, b, impl, n, ns, &lo, &hi) && *ns > 0;
}

/*
 * Writers (the vaspace issue's "writers that scale"): at 2 threads, vas
 * no slower than the red-black tree under a mutex, in CPU ns per op, at
 * every size.
 */
static void bv_targets_mutex(const struct bench_results *res, const char *mix,
			     const char *impl)
{
	char w[64], b[32];
	double a, c, lo, hi;

	for (unsigned e = BV_MIN_EXP; e < BV_MIN_EXP + BV_SIZES; e++) {
		snprintf(b, sizeof(b), "%s_1e%u", mix, e);
		snprintf(w, sizeof(w),
			 "%s, 10^%u ranges, 2 thr, rb_mutex / %s cpu", mix, e,
			 impl);
		if (bench_result_cpu(res, b, "rb_mutex", 2, &a, &lo, &hi) &&
		    bench_result_cpu(res, b, impl, 2, &c, &lo, &hi) && c > 0)
			bv_target(w, a / c >= BV_MUTEX_RATIO, a / c, "x",
				  ">= 1x");
		else
			printf("  %-46s not measured in this run\n", w);
	}
}

static void bv_targets(const struct bench_results *res)
{
	const char *w1 = "lookup, 10^6 ranges, vas, 1 thread";
	const char *w2 = "lookup, 10^6 ranges, vas, 2 / 1 threads";
	const char *w1n = "lookup8, 10^6 ranges, vas, 1 thread, a lookup";
	char w3[64], b[32];
	double a, c;

	printf("targets (medians; a missed target does not fail the run):\n");
	if (bv_ns(res, "lookup_1e6", "vas", 1, &a))
		bv_target(w1, a <= BV_LOOKUP_NS, a, "ns", "<= 150");
	else
		printf("  %-46s not measured in this run\n", w1);
	/* The same target for callers with several addresses at once. */
	if (bv_ns(res, "lookup8_1e6", "vas", 1, &a))
		bv_target(w1n, a <= BV_LOOKUP_NS, a, "ns", "<= 150");
	else
		printf("  %-46s not measured in this run\n", w1n);
	/* Throughput is threads / (ns per op): 2 a / c. */
	if (bv_ns(res, "lookup_1e6", "vas", 1, &a) &&
	    bv_ns(res, "lookup_1e6", "vas", 2, &c))
		bv_target(w2, 2 * a / c >= BV_LOOKUP_SCALE, 2 * a / c, "x",
			  ">= 1.9x");
	else
		printf("  %-46s not measured in this run\n", w2);
	for (unsigned e = BV_MIN_EXP; e < BV_MIN_EXP + BV_SIZES; e++) {
		snprintf(b, sizeof(b), "mix90_1e%u", e);
		snprintf(w3, sizeof(w3),
			 "mix90, 10^%u ranges, 2 thr, rb_rwlock / vas", e);
		if (bv_ns(res, b, "rb_rwlock", 2, &a) &&
		    bv_ns(res, b, "vas", 2, &c))
			bv_target(w3, a / c >= BV_MIX_RATIO, a / c, "x",
				  ">= 2x");
		else
			printf("  %-46s not measured in this run\n", w3);
	}
	bv_targets_mutex(res, "mix50", "vas");
	bv_targets_mutex(res, "mix90", "vas");
	bv_targets_mutex(res, "mix50", "vas_pc");
	bv_targets_mutex(res, "mix90", "vas_pc");
}

/* Tree memory per live range, as the trees stand after the run. */
static void bv_memory(void)
{
	printf("tree bytes per live range, nodes in use and spare (after the "
	       "fill / after\n  the run):\n");
	for (unsigned si = 0; si < BV_SIZES; si++) {
		if (bv_inst[0][si].a == NULL)
			continue;
		printf("  10^%u:", si + BV_MIN_EXP);
		for (unsigned k = 0; k < BV_KINDS; k++) {
			struct bv_inst *in = &bv_inst[k][si];
			if (in->a != NULL)
				printf("  %s %.1f / %.1f", bv_kind_name[k],
				       (double)in->bytes_filled / (double)in->n,
				       (double)bv_ops[k]->bytes(in->a) /
					       (double)in->n);
		}
		printf("\n");
	}
}

/*
 * The value of the "Name:   N kB" line of a /proc file, in kB; -1 if the
 * file or the line is missing (not Linux, or an older kernel).
 */
static long bv_proc_kb(const char *path, const char *name)
{
	FILE *f = fopen(path, "r");
	char line[256];
	long kb = -1;
	size_t len = strlen(name);

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, len) == 0 && line[len] == ':') {
			kb = strtol(line + len + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

/*
 * What backs the trees' nodes (docs/design.md 3.2: a lookup at 10^6
 * ranges costs a page walk per leaf on 4 KiB pages): every tree takes its
 * nodes from a bench_arena (64 MiB chunks, 2 MiB-aligned, madvised
 * MADV_HUGEPAGE, as a kernel's nodes come from its direct map's large
 * pages), and the kernel may or may not grant huge pages; so the report
 * says how much of the process's anonymous memory they back now, with
 * the trees still filled, and the kernel's transparent huge page mode.
 */
static void bv_pages(void)
{
	long anon = bv_proc_kb("/proc/self/smaps_rollup", "Anonymous");
	long huge = bv_proc_kb("/proc/self/smaps_rollup", "AnonHugePages");
	char mode[128] = "unknown";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (f != NULL) {
		char line[128];
		char *a, *b;
		if (fgets(line, sizeof(line), f) != NULL &&
		    (a = strchr(line, '[')) != NULL &&
		    (b = strchr(a, ']')) != NULL) {
			*b = '\0';
			snprintf(mode, sizeof(mode), "%s", a + 1);
		}
		fclose(f);
	}
	printf("node source: huge-page arenas (MADV_HUGEPAGE; transparent "
	       "huge pages: %s):\n",
	       mode);
	if (anon > 0 && huge >= 0)
		printf("  huge pages back %.1f of the process's %.1f MiB of "
		       "anonymous memory (%.0f%%)\n",
		       huge / 1024.0, anon / 1024.0, 100.0 * huge / anon);
	else
		printf("  how much of it huge pages back: unknown "
		       "(no /proc/self/smaps_rollup)\n");
}

/*
 * ns per dependent load, chasing a random cyclic permutation of the
 * 64-byte lines of a bytes-long huge-page buffer for about 0.2 s of the
 * thread's CPU time, as the lookups' cpu column is: in wall time a
 * loaded machine's preemptions put the floor above the lookups it bounds
 * (507 ns wall against lookups of 291 ns cpu at loadavg 10).
 */
static double bv_chase(uint64_t bytes)
{
	struct bench_arena ar;
	uint64_t n = bytes / 64, rng = 42, loads = 0;
	struct timespec t0, t1;
	void **p, **lines;

	bench_arena_init(&ar, bytes, 4096);
	lines = bench_arena_get(&ar);
	if (lines == NULL || n < 2)
		return 0;
	/* Sattolo's shuffle: one cycle through every line. */
	for (uint64_t i = 0; i < n; i++)
		lines[i * 8] = &lines[i * 8];
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = bv_rand(&rng) % i;
		void *t = lines[i * 8];
		lines[i * 8] = lines[j * 8];
		lines[j * 8] = t;
	}
	p = lines;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	do {
		for (unsigned k = 0; k < 100000; k++)
			p = *p;
		loads += 100000;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	} while ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec) <
		 2e8);
	if (p == NULL) /* keeps the chase from being optimized away */
		printf("?\n");
	bench_arena_destroy(&ar);
	return ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) /
	       (double)loads;
}

static void bv_latency(void)
{
	uint64_t most = 0;

	for (unsigned si = 0; si < BV_SIZES; si++)
		if (bv_inst[BV_VAS][si].a != NULL)
			most = bv_ops[BV_VAS]->bytes(bv_inst[BV_VAS][si].a);
	if (most == 0)
		return;
	printf("memory latency (cpu): %.1f ns per dependent load over %.0f "
	       "MiB (the largest vas tree):\n  the floor under a lookup that "
	       "misses the caches\n",
	       bv_chase(most), (double)most / (1 << 20));
	/* The same chase inside L2 (1 MiB a core), L3 (32 MiB), and beyond. */
	printf("  and over 512 KiB (L2) %.1f ns, 8 MiB (L3) %.1f ns, 64 MiB "
	       "(memory) %.1f ns\n",
	       bv_chase(512 << 10), bv_chase(8 << 20), bv_chase(64 << 20));
}

static void bv_report(const struct bench_results *res)
{
	bv_memory();
	bv_pages();
	bv_latency();
	bv_targets(res);
}

static void bv_fini(void)
{
	for (unsigned k = 0; k < BV_KINDS; k++)
		for (unsigned si = 0; si < BV_SIZES; si++) {
			struct bv_inst *in = &bv_inst[k][si];
			if (in->a != NULL)
				bv_ops[k]->destroy(in->a);
			free(in->addr);
			free(in->len);
			*in = (struct bv_inst){ 0 };
		}
}

/* One struct bench_prog per program (bench.h), shaped like bench_buddy.c's. */
static const struct bench_prog bench_vas = {
	.name = "bench_vas",
	.impls = bv_impls,
	.nimpls = sizeof(bv_impls) / sizeof(bv_impls[0]),
	.header = bv_header,
	.report = bv_report,
	.fini = bv_fini,
};

int main(int argc, char **argv)
{
	return bench_main(&bench_vas, argc, argv);
}
