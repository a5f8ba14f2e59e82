/*
 * bench_frag.c: the fragmentation benchmark. How much of the free memory
 * is still there as 2 MiB (order-9) blocks after a long random workload of
 * mixed orders, for the lock-free buddy of buddy/ (with its per-CPU caches
 * and without) and the classic locked buddy, the baseline, in the same
 * program on the same workload.
 *
 * Workload: a fresh zone (one region at 1 GiB, --zone-mib MiB, fully
 * coalesced as after boot). T threads hold B blocks in all (B / T slots
 * each), B chosen so that they hold about --fill of the zone (60% by
 * default): orders 0-9, order k with probability 2^-(k+1), order 9 with
 * what is left (2^-9), 5.5 frames a block on average. The threads first
 * fill their slots, then, --ops times in all, each picks a random slot,
 * frees its block and allocates one of a random order in its place
 * (random lifetimes). An allocation that fails with BUDDY_ENOMEM (a real
 * outcome of fragmentation: no free block of that order or above) leaves
 * the slot empty and is counted; the next pick of the slot refills it.
 *
 * Samples: the threads run --samples phases of equal length; between two
 * phases they meet at a barrier, thread 0 samples the zone alone, and they
 * meet again, so every sample is taken at quiescence (and sample 0 right
 * after the fill). A sample is the share of the free memory that is free
 * as order-9 blocks: frames in free blocks of order >= 9 (buddy_zone_stats
 * / buddy_locked_stats, free_blocks[]) divided by all free frames. Frames
 * in per-CPU caches count as free but not as order-9: they are not
 * available as 2 MiB blocks without a drain, and draining at each sample
 * would change the workload. After the last sample the zone's caches are
 * drained (buddy_zone_drain_all) and the share taken once more ("final
 * after drain"): what the caches hide.
 *
 * Seeds: repeat r, thread t draws from the same stream for every
 * allocator, so at one thread the three see the same sequence of (slot,
 * order) requests; they differ only where an allocation failed on one and
 * not on another. At two threads the interleaving differs from run to run.
 * Threads are not pinned (nothing here is timed); the lock-free zone has
 * one CPU context per thread.
 *
 * Checks (exit 1 on a failure): at each sample, free + cached + held
 * frames equal the zone's frames and the share is in [0, 1]; no call fails
 * but for ENOMEM; at one thread an ENOMEM while a free block of that order
 * or above is counted as spurious and fails the run (no concurrency can
 * explain it); at the end every block is freed, the caches drained, the
 * allocator's own check passes (buddy_zone_check with full coalescing,
 * buddy_locked_check) and every frame is free.
 *
 * Output: the load average (/proc/loadavg) at the start and the end, a
 * table (mean share over samples 1..S and final share for each allocator),
 * the target (lf_buddy's final share at least 0.99, at each thread count;
 * a missed target does not fail the run) and, with --csv, one row per
 * sample:
 *   bench,impl,threads,repeat,sample,ops,free_frames,cached_frames,
 *   order9_frames,share,enomem,load1
 * (bench is "frag"; free_frames includes cached_frames; enomem is the
 * allocations failed so far; load1 the 1-minute load average at the end
 * of that run, -1 if unreadable). See bench/README.md.
 *
 * Usage: bench_frag [--csv PATH] [--ops N] [--samples S] [--repeats R]
 *                   [--threads LIST] [--zone-mib M] [--fill F] [--seed X]
 *                   [--quick]
 */
#include "bench.h"

#include "buddy.h"
#include "buddy_locked.h"
#include "platform_user.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_FRAG_BASE ((uint64_t)1 << 30) /* physical base of the zone */
#define BENCH_FRAG_HUGE 9       /* order 9: 2 MiB, the top order drawn */
#define BENCH_FRAG_MEAN 5.5     /* mean frames of a drawn block */
#define BENCH_FRAG_EMPTY 0xff   /* a slot holding no block */
#define BENCH_FRAG_MAX_COUNTS 8 /* thread counts in one run */
#define BENCH_FRAG_MAX_REPEATS 100
#define BENCH_FRAG_MAX_SAMPLES 100000
#define BENCH_FRAG_TARGET 0.99 /* lf_buddy's final share, at least */

enum bench_frag_kind {
	BENCH_FRAG_LF,
	BENCH_FRAG_NOCACHE,
	BENCH_FRAG_LOCKED,
	BENCH_FRAG_NKINDS
};

/*
 * Built twice: bench_frag against lf_buddy (version 2), and bench_frag_v3
 * (BENCH_FRAG_V3 1) against lf_buddy_units (version 3, docs/design.md
 * 2.7: orders 0-4 in reserved units, whose free frames are its cached
 * ones), the locked buddy compiled in; only the names differ.
 */
#ifndef BENCH_FRAG_V3
#define BENCH_FRAG_V3 0
#endif
#if BENCH_FRAG_V3
#define BENCH_FRAG_PROG "bench_frag_v3"
#define BENCH_FRAG_NAME_LF "lf_buddy_v3"
#define BENCH_FRAG_NAME_NOCACHE "lf_buddy_v3_nocache"
#else
#define BENCH_FRAG_PROG "bench_frag"
#define BENCH_FRAG_NAME_LF "lf_buddy"
#define BENCH_FRAG_NAME_NOCACHE "lf_buddy_nocache"
#endif

static const char *const bench_frag_name[BENCH_FRAG_NKINDS] = {
	BENCH_FRAG_NAME_LF,
	BENCH_FRAG_NAME_NOCACHE,
	"locked_buddy",
};

struct bench_frag_opts {
	const char *csv;
	uint64_t ops;     /* all threads, after the fill */
	unsigned samples; /* phases, so samples + 1 rows a run */
	unsigned repeats;
	uint64_t zone_mib;
	double fill; /* share of the zone held, on average */
	uint64_t seed;
	unsigned counts[BENCH_FRAG_MAX_COUNTS]; /* thread counts */
	unsigned ncounts;
};

/* One thread; the main thread reads it only at the barriers and joins. */
struct bench_frag_thread {
	pthread_t tid;
	unsigned id;
	struct buddy_cpu *cpu; /* NULL: the locked buddy */
	uint64_t rng;          /* xorshift64* state */
	uint64_t *addr;        /* [nslots] the blocks held */
	uint8_t *order;        /* [nslots] their orders, or EMPTY */
	unsigned nslots;
	uint64_t held;     /* frames held */
	uint64_t enomem;   /* allocations failed with ENOMEM */
	uint64_t spurious; /* of those, with a large enough block free */
	uint64_t errors;   /* other failed calls */
	int first_err;
} LF_CACHE_ALIGNED;

struct bench_frag_sample {
	uint64_t ops, free, cached, order9, enomem;
};

/* One run's summary, for the table. */
struct bench_frag_sum {
	double mean, final, drained;
	uint64_t enomem;
};

/*
 * The run in progress: set by the main thread before the threads start
 * (pthread_create orders it); samples written by thread 0 between the two
 * barriers of a sample, read by the main thread after the join.
 */
static struct {
	enum bench_frag_kind kind;
	unsigned nthreads;
	uint64_t frames;
	uint64_t per_phase; /* ops a thread does between samples */
	unsigned samples;
	void *meta;
	struct buddy_zone *zone;
	struct buddy_locked *locked;
	pthread_barrier_t barrier;
	struct bench_frag_sample *s; /* [samples + 1] */
	unsigned taken;
	int bad; /* a sample's check failed */
} bench_frag_cur;

static struct bench_frag_thread bench_frag_threads[BENCH_MAX_THREADS];
static struct bench_frag_sum bench_frag_sums[BENCH_FRAG_NKINDS]
					    [BENCH_FRAG_MAX_COUNTS]
					    [BENCH_FRAG_MAX_REPEATS];

/* ---- random draws ---- */

static uint64_t bench_frag_rand(struct bench_frag_thread *t)
{
	/* xorshift64* (Vigna). */
	t->rng ^= t->rng >> 12;
	t->rng ^= t->rng << 25;
	t->rng ^= t->rng >> 27;
	return t->rng * 0x2545f4914f6cdd1dull;
}

/* The seed of thread t in repeat r: the same for every allocator. */
static uint64_t bench_frag_seed(uint64_t seed, unsigned r, unsigned t)
{
	/* splitmix64's finalizer: distinct nonzero streams. */
	uint64_t z = seed + 0x9e3779b97f4a7c15ull * ((uint64_t)r << 8 | t);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z != 0 ? z : 1;
}

/* Order k with probability 2^-(k+1), order 9 with the 2^-9 left. */
static unsigned bench_frag_rand_order(uint64_t r)
{
	return (unsigned)__builtin_ctzll(r | (uint64_t)1 << BENCH_FRAG_HUGE);
}

/* ---- the allocators, behind one call ---- */

static int bench_frag_alloc(struct bench_frag_thread *t, unsigned order,
			    uint64_t *a)
{
	if (t->cpu == NULL)
		return buddy_locked_alloc(bench_frag_cur.locked, order, a);
	return buddy_alloc(t->cpu, order, a);
}

static int bench_frag_free(struct bench_frag_thread *t, uint64_t a,
			   unsigned order)
{
	if (t->cpu == NULL)
		return buddy_locked_free(bench_frag_cur.locked, a, order);
	return buddy_free(t->cpu, a, order);
}

static void bench_frag_stats(struct buddy_stats *st)
{
	if (bench_frag_cur.locked != NULL)
		buddy_locked_stats(bench_frag_cur.locked, st);
	else
		buddy_zone_stats(bench_frag_cur.zone, st);
}

/* Frames in free blocks of order k and above. */
static uint64_t bench_frag_free_from(const struct buddy_stats *st, unsigned k)
{
	uint64_t n = 0;

	for (unsigned o = k; o < BUDDY_ORDERS; o++)
		n += st->free_blocks[o] << o;
	return n;
}

/*
 * Count a failed call. An ENOMEM at one thread with a free block of that
 * order or above (the stats are exact then: nothing else runs) is
 * spurious.
 */
static void bench_frag_failed(struct bench_frag_thread *t, unsigned order,
			      int rc)
{
	struct buddy_stats st;

	if (rc != BUDDY_ENOMEM) {
		if (t->errors++ == 0)
			t->first_err = rc;
		return;
	}
	t->enomem++;
	if (bench_frag_cur.nthreads != 1)
		return;
	bench_frag_stats(&st);
	if (bench_frag_free_from(&st, order) != 0)
		t->spurious++;
}

/* ---- the workload ---- */

static void bench_frag_slot_fill(struct bench_frag_thread *t, unsigned s,
				 uint64_t r)
{
	unsigned o = bench_frag_rand_order(r);
	int rc = bench_frag_alloc(t, o, &t->addr[s]);

	if (LF_UNLIKELY(rc != BUDDY_OK)) {
		t->order[s] = BENCH_FRAG_EMPTY;
		bench_frag_failed(t, o, rc);
		return;
	}
	t->order[s] = (uint8_t)o;
	t->held += (uint64_t)1 << o;
}

static void bench_frag_slot_empty(struct bench_frag_thread *t, unsigned s)
{
	unsigned o = t->order[s];
	int rc;

	if (o == BENCH_FRAG_EMPTY)
		return;
	rc = bench_frag_free(t, t->addr[s], o);
	if (LF_UNLIKELY(rc != BUDDY_OK))
		bench_frag_failed(t, o, rc);
	t->order[s] = BENCH_FRAG_EMPTY;
	t->held -= (uint64_t)1 << o;
}

/* n times: free the block of a random slot, allocate one in its place. */
static void bench_frag_phase(struct bench_frag_thread *t, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = bench_frag_rand(t);
		/* High bits pick the slot, low bits the order. */
		unsigned s = (unsigned)(((r >> 32) * t->nslots) >> 32);

		bench_frag_slot_empty(t, s);
		bench_frag_slot_fill(t, s, r);
	}
}

/* ---- sampling, on thread 0 while the others wait ---- */

static double bench_frag_share(const struct bench_frag_sample *x)
{
	return x->free != 0 ? (double)x->order9 / (double)x->free : 0;
}

/* Every frame free or held, order-9 frames among the free ones. */
static void bench_frag_take_check(const struct bench_frag_sample *x,
				  uint64_t held)
{
	if (x->free + held == bench_frag_cur.frames && x->order9 <= x->free)
		return;
	fprintf(stderr,
		"bench_frag: sample %u: %llu free + %llu held != "
		"%llu frames, or %llu order-9 frames\n",
		bench_frag_cur.taken, (unsigned long long)x->free,
		(unsigned long long)held,
		(unsigned long long)bench_frag_cur.frames,
		(unsigned long long)x->order9);
	bench_frag_cur.bad = 1;
}

static void bench_frag_take(uint64_t ops)
{
	struct bench_frag_sample *x = &bench_frag_cur.s[bench_frag_cur.taken];
	uint64_t held = 0, enomem = 0;
	struct buddy_stats st;

	bench_frag_stats(&st);
	for (unsigned i = 0; i < bench_frag_cur.nthreads; i++) {
		held += bench_frag_threads[i].held;
		enomem += bench_frag_threads[i].enomem;
	}
	*x = (struct bench_frag_sample){
		.ops = ops,
		.free = st.free_frames + st.cached_frames,
		.cached = st.cached_frames,
		.order9 = bench_frag_free_from(&st, BENCH_FRAG_HUGE),
		.enomem = enomem,
	};
	bench_frag_take_check(x, held);
	bench_frag_cur.taken++;
}

/* Meet, let thread 0 sample the quiescent zone, meet again. */
static void bench_frag_sync(unsigned id, uint64_t ops)
{
	pthread_barrier_wait(&bench_frag_cur.barrier);
	if (id == 0)
		bench_frag_take(ops);
	pthread_barrier_wait(&bench_frag_cur.barrier);
}

static void *bench_frag_thread_main(void *p)
{
	struct bench_frag_thread *t = p;
	uint64_t per = bench_frag_cur.per_phase;
	uint64_t all = per * bench_frag_cur.nthreads;

	lf_platform_user_set_cpu(t->id);
	for (unsigned s = 0; s < t->nslots; s++)
		bench_frag_slot_fill(t, s, bench_frag_rand(t));
	bench_frag_sync(t->id, 0);
	for (unsigned k = 1; k <= bench_frag_cur.samples; k++) {
		bench_frag_phase(t, per);
		bench_frag_sync(t->id, all * k);
	}
	return NULL;
}

/* ---- one run: setup, threads, checks ---- */

static int bench_frag_zone(enum bench_frag_kind kind, uint64_t bytes,
			   unsigned nthreads)
{
	const struct buddy_region rg = { .base = BENCH_FRAG_BASE,
					 .size = bytes };
	bool locked = kind == BENCH_FRAG_LOCKED;
	size_t size = locked ? buddy_locked_meta_size(&rg, 1)
			     : buddy_meta_size(&rg, 1, nthreads);
	int rc;

	size = (size + LF_CACHELINE - 1) & ~(size_t)(LF_CACHELINE - 1);
	bench_frag_cur.meta = size ? aligned_alloc(LF_CACHELINE, size) : NULL;
	if (bench_frag_cur.meta == NULL)
		return -1;
	if (locked)
		rc = buddy_locked_init(&bench_frag_cur.locked,
				       bench_frag_cur.meta, size, &rg, 1);
	else
		rc = buddy_zone_init(&bench_frag_cur.zone, bench_frag_cur.meta,
				     size, &rg, 1, nthreads);
	if (rc != BUDDY_OK)
		fprintf(stderr, "bench_frag: init: %s\n", buddy_strerror(rc));
	return rc == BUDDY_OK ? 0 : -1;
}

static int bench_frag_thread_init(struct bench_frag_thread *t, unsigned id,
				  unsigned nslots, uint64_t seed)
{
	*t = (struct bench_frag_thread){
		.id = id, .nslots = nslots, .rng = seed, .first_err = BUDDY_OK
	};
	if (bench_frag_cur.zone != NULL) {
		t->cpu = buddy_zone_cpu(bench_frag_cur.zone, id);
		if (bench_frag_cur.kind == BENCH_FRAG_NOCACHE)
			buddy_cpu_cache_enable(t->cpu, false);
	}
	t->addr = malloc(nslots * sizeof(*t->addr));
	t->order = malloc(nslots);
	return t->addr != NULL && t->order != NULL ? 0 : -1;
}

static int bench_frag_setup(enum bench_frag_kind kind, unsigned nthreads,
			    unsigned r, const struct bench_frag_opts *o)
{
	uint64_t frames = o->zone_mib << (20 - BUDDY_FRAME_SHIFT);
	uint64_t blocks =
		(uint64_t)((double)frames * o->fill / BENCH_FRAG_MEAN);
	unsigned nslots = (unsigned)(blocks / nthreads);

	memset(&bench_frag_cur, 0, sizeof(bench_frag_cur));
	bench_frag_cur.kind = kind;
	bench_frag_cur.nthreads = nthreads;
	bench_frag_cur.frames = frames;
	bench_frag_cur.samples = o->samples;
	bench_frag_cur.per_phase = o->ops / o->samples / nthreads;
	bench_frag_cur.s = calloc(o->samples + 1, sizeof(*bench_frag_cur.s));
	if (bench_frag_cur.s == NULL || nslots == 0 ||
	    bench_frag_zone(kind, o->zone_mib << 20, nthreads) != 0)
		return -1;
	for (unsigned i = 0; i < nthreads; i++)
		if (bench_frag_thread_init(&bench_frag_threads[i], i, nslots,
					   bench_frag_seed(o->seed, r, i)) != 0)
			return -1;
	return 0;
}

static void bench_frag_spawn(void)
{
	unsigned n = bench_frag_cur.nthreads;

	pthread_barrier_init(&bench_frag_cur.barrier, NULL, n);
	for (unsigned i = 0; i < n; i++) {
		int rc = pthread_create(&bench_frag_threads[i].tid, NULL,
					bench_frag_thread_main,
					&bench_frag_threads[i]);
		if (rc != 0) {
			fprintf(stderr, "bench_frag: pthread_create: %s\n",
				strerror(rc));
			exit(2);
		}
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(bench_frag_threads[i].tid, NULL);
	pthread_barrier_destroy(&bench_frag_cur.barrier);
}

/* The share after draining every cache (the threads are joined). */
static double bench_frag_drained(void)
{
	struct buddy_stats st;
	uint64_t fr;

	if (bench_frag_cur.zone != NULL)
		buddy_zone_drain_all(bench_frag_threads[0].cpu);
	bench_frag_stats(&st);
	fr = st.free_frames + st.cached_frames;
	return fr != 0 ? (double)bench_frag_free_from(&st, BENCH_FRAG_HUGE) /
				 (double)fr
		       : 0;
}

/* Free every block on its thread's context (one at a time: joined). */
static void bench_frag_release(void)
{
	for (unsigned i = 0; i < bench_frag_cur.nthreads; i++) {
		struct bench_frag_thread *t = &bench_frag_threads[i];

		for (unsigned s = 0; s < t->nslots; s++)
			bench_frag_slot_empty(t, s);
	}
	if (bench_frag_cur.zone != NULL)
		buddy_zone_drain_all(bench_frag_threads[0].cpu);
}

/* The allocator's own check; 0, or -1 after saying what is wrong. */
static int bench_frag_verify(void)
{
	uint64_t frame = 0;
	int rc;

	if (bench_frag_cur.zone != NULL)
		rc = buddy_zone_check(bench_frag_cur.zone, true, &frame);
	else
		rc = buddy_locked_check(bench_frag_cur.locked, &frame);
	if (rc != 0)
		fprintf(stderr,
			"bench_frag: %s: check %d failed at frame "
			"%llu\n",
			bench_frag_name[bench_frag_cur.kind], rc,
			(unsigned long long)frame);
	return rc != 0 ? -1 : 0;
}

/* Every call accounted for, every frame free, the structure sound. */
static int bench_frag_check(void)
{
	struct buddy_stats st;
	int rc = bench_frag_verify();

	if (bench_frag_cur.bad)
		rc = -1;
	bench_frag_stats(&st);
	if (st.free_frames != bench_frag_cur.frames || st.cached_frames != 0) {
		fprintf(stderr,
			"bench_frag: %llu of %llu frames free at the "
			"end\n",
			(unsigned long long)st.free_frames,
			(unsigned long long)bench_frag_cur.frames);
		rc = -1;
	}
	for (unsigned i = 0; i < bench_frag_cur.nthreads; i++) {
		const struct bench_frag_thread *t = &bench_frag_threads[i];
		if (t->errors == 0 && t->spurious == 0)
			continue;
		fprintf(stderr,
			"bench_frag: thread %u: %llu calls failed "
			"(first: %s), %llu spurious ENOMEMs\n",
			i, (unsigned long long)t->errors,
			buddy_strerror(t->first_err),
			(unsigned long long)t->spurious);
		rc = -1;
	}
	return rc;
}

static void bench_frag_teardown(void)
{
	for (unsigned i = 0; i < bench_frag_cur.nthreads; i++) {
		free(bench_frag_threads[i].addr);
		free(bench_frag_threads[i].order);
		bench_frag_threads[i].addr = NULL;
		bench_frag_threads[i].order = NULL;
	}
	free(bench_frag_cur.s);
	free(bench_frag_cur.meta);
	bench_frag_cur.s = NULL;
	bench_frag_cur.meta = NULL;
}

/* ---- results ---- */

static void bench_frag_csv_rows(FILE *csv, unsigned r)
{
	double load[3];

	bench_loadavg(load); /* -1 where it cannot be read */
	for (unsigned k = 0; k < bench_frag_cur.taken; k++) {
		const struct bench_frag_sample *x = &bench_frag_cur.s[k];

		fprintf(csv,
			"frag,%s,%u,%u,%u,%llu,%llu,%llu,%llu,%.6f,%llu,"
			"%.2f\n",
			bench_frag_name[bench_frag_cur.kind],
			bench_frag_cur.nthreads, r + 1, k,
			(unsigned long long)x->ops, (unsigned long long)x->free,
			(unsigned long long)x->cached,
			(unsigned long long)x->order9, bench_frag_share(x),
			(unsigned long long)x->enomem, load[0]);
	}
}

/* Mean share over samples 1..S (the workload, not the fill) and last. */
static void bench_frag_summarize(struct bench_frag_sum *sum, double drained)
{
	unsigned n = bench_frag_cur.taken;
	double total = 0;

	for (unsigned k = 1; k < n; k++)
		total += bench_frag_share(&bench_frag_cur.s[k]);
	sum->mean = n > 1 ? total / (n - 1) : 0;
	sum->final = n > 0 ? bench_frag_share(&bench_frag_cur.s[n - 1]) : 0;
	sum->drained = drained;
	sum->enomem = n > 0 ? bench_frag_cur.s[n - 1].enomem : 0;
}

/* One run of one allocator; 0, or -1 if a check failed. */
static int bench_frag_one(enum bench_frag_kind kind, unsigned ci, unsigned r,
			  const struct bench_frag_opts *o, FILE *csv)
{
	unsigned n = o->counts[ci];
	int rc = -1;

	if (bench_frag_setup(kind, n, r, o) != 0) {
		fprintf(stderr, "bench_frag: setup failed (out of memory?)\n");
	} else {
		bench_frag_spawn();
		bench_frag_summarize(&bench_frag_sums[kind][ci][r],
				     bench_frag_drained());
		bench_frag_release();
		rc = bench_frag_check();
		if (csv != NULL)
			bench_frag_csv_rows(csv, r);
	}
	if (rc != 0)
		fprintf(stderr,
			"bench_frag: CHECK FAILED: %s, %u threads, "
			"repeat %u\n",
			bench_frag_name[kind], n, r + 1);
	bench_frag_teardown();
	return rc;
}

/* Median over the repeats of one field of the summaries. */
static double bench_frag_median(unsigned kind, unsigned ci, unsigned reps,
				size_t off)
{
	double v[BENCH_FRAG_MAX_REPEATS];

	for (unsigned r = 0; r < reps; r++)
		memcpy(&v[r], (const char *)&bench_frag_sums[kind][ci][r] + off,
		       sizeof(double));
	return bench_median(v, reps, NULL, NULL);
}

static void bench_frag_table_row(unsigned kind, unsigned ci,
				 const struct bench_frag_opts *o)
{
	uint64_t enomem = 0;

	for (unsigned r = 0; r < o->repeats; r++)
		enomem += bench_frag_sums[kind][ci][r].enomem;
	printf("%-19s %7u %8.4f %8.4f %8.4f %10llu\n", bench_frag_name[kind],
	       o->counts[ci],
	       bench_frag_median(kind, ci, o->repeats,
				 offsetof(struct bench_frag_sum, mean)),
	       bench_frag_median(kind, ci, o->repeats,
				 offsetof(struct bench_frag_sum, final)),
	       bench_frag_median(kind, ci, o->repeats,
				 offsetof(struct bench_frag_sum, drained)),
	       (unsigned long long)enomem);
}

static void bench_frag_table(const struct bench_frag_opts *o)
{
	printf("\norder-9 share of free memory (frames in free blocks of "
	       "order >= 9 / all free\n  frames, cached ones included), "
	       "median of %u repeats; mean: over samples\n  1..%u; drained: "
	       "the final state with every cache drained; enomem:\n  failed "
	       "allocations, all repeats\n",
	       o->repeats, o->samples);
	printf("%-19s %7s %8s %8s %8s %10s\n", "impl", "threads", "mean",
	       "final", "drained", "enomem");
	for (unsigned ci = 0; ci < o->ncounts; ci++)
		for (unsigned k = 0; k < BENCH_FRAG_NKINDS; k++)
			bench_frag_table_row(k, ci, o);
}

/*
 * The target: at least 0.99 of the free memory in order-9 blocks after the
 * workload, for lf_buddy as the workload leaves it (its final sample,
 * cached frames counted as free and not order-9), median of the repeats.
 */
static void bench_frag_targets(const struct bench_frag_opts *o)
{
	char what[96];

	printf("\ntargets (medians; a missed target does not fail the "
	       "run):\n");
	for (unsigned ci = 0; ci < o->ncounts; ci++) {
		double v = bench_frag_median(
			BENCH_FRAG_LF, ci, o->repeats,
			offsetof(struct bench_frag_sum, final));
		snprintf(what, sizeof(what),
			 "order-9 share after workload: "
			 "%s, %u thr, final",
			 BENCH_FRAG_NAME_LF, o->counts[ci]);
		printf("  %-56s %7.4g %-7s (%s): %s\n", what, v, "share",
		       ">= 0.99", v >= BENCH_FRAG_TARGET ? "met" : "NOT met");
	}
}

/* ---- options ---- */

static void bench_frag_usage(FILE *f)
{
	fprintf(f,
		"usage: bench_frag [--csv PATH] [--ops N] [--samples S] "
		"[--repeats R]\n"
		"                  [--threads LIST] [--zone-mib M] [--fill F] "
		"[--seed X] [--quick]\n"
		"  --csv PATH      one row per sample to PATH (CSV)\n"
		"  --ops N         free + alloc replacements per run, all "
		"threads (default 2e7)\n"
		"  --samples S     samples after the fill (default 100)\n"
		"  --repeats R     runs per allocator, seeds r = 1..R "
		"(default 1)\n"
		"  --threads LIST  thread counts, e.g. 1,2 (default 1)\n"
		"  --zone-mib M    zone size, a power of two >= 4 "
		"(default 1024)\n"
		"  --fill F        share of the zone held (default 0.6)\n"
		"  --seed X        base seed (default 1)\n"
		"  --quick         64 MiB, 5000 ops, 50 samples: a smoke "
		"test\n");
}

/* A number in [lo, hi] (bench.h); exit 2 on anything else. */
static double bench_frag_num(const char *opt, const char *s, double lo,
			     double hi)
{
	return bench_num("bench_frag", opt, s, lo, hi);
}

/* "1,2": thread counts; exit 2 on a bad list. */
static void bench_frag_counts(const char *s, struct bench_frag_opts *o)
{
	char buf[128], *save = NULL;

	if (s == NULL || strlen(s) >= sizeof(buf)) {
		fprintf(stderr, "bench_frag: --threads needs a list\n");
		exit(2);
	}
	strcpy(buf, s);
	o->ncounts = 0;
	for (char *p = strtok_r(buf, ",", &save); p != NULL;
	     p = strtok_r(NULL, ",", &save)) {
		if (o->ncounts == BENCH_FRAG_MAX_COUNTS) {
			fprintf(stderr, "bench_frag: too many counts\n");
			exit(2);
		}
		o->counts[o->ncounts++] = (unsigned)bench_frag_num(
			"--threads", p, 1, BENCH_MAX_THREADS);
	}
	if (o->ncounts == 0) {
		fprintf(stderr, "bench_frag: --threads: empty list\n");
		exit(2);
	}
}

/* An option without a value; 1, or 0 if a is none. */
static int bench_frag_flag(const char *a, bool *quick)
{
	if (strcmp(a, "--quick") == 0) {
		*quick = true;
		return 1;
	}
	if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
		bench_frag_usage(stdout);
		exit(0);
	}
	return 0;
}

/* Option a with value v (or NULL); the arguments it took, 0 if none. */
static int bench_frag_opt(const char *a, const char *v,
			  struct bench_frag_opts *o, bool *quick)
{
	if (strcmp(a, "--csv") == 0 && v != NULL)
		o->csv = v;
	else if (strcmp(a, "--ops") == 0)
		o->ops = (uint64_t)bench_frag_num(a, v, 1, 1e12);
	else if (strcmp(a, "--samples") == 0)
		o->samples = (unsigned)bench_frag_num(a, v, 1,
						      BENCH_FRAG_MAX_SAMPLES);
	else if (strcmp(a, "--repeats") == 0)
		o->repeats = (unsigned)bench_frag_num(a, v, 1,
						      BENCH_FRAG_MAX_REPEATS);
	else if (strcmp(a, "--threads") == 0)
		bench_frag_counts(v, o);
	else if (strcmp(a, "--zone-mib") == 0)
		o->zone_mib = (uint64_t)bench_frag_num(a, v, 4, 16384);
	else if (strcmp(a, "--fill") == 0)
		o->fill = bench_frag_num(a, v, 0.01, 0.95);
	else if (strcmp(a, "--seed") == 0)
		o->seed = (uint64_t)bench_frag_num(a, v, 0, 1e15);
	else
		return bench_frag_flag(a, quick);
	return 2;
}

/* Combinations the options cannot express alone; exit 2 on a bad one. */
static void bench_frag_validate(const struct bench_frag_opts *o)
{
	if ((o->zone_mib & (o->zone_mib - 1)) != 0) {
		fprintf(stderr,
			"bench_frag: --zone-mib: %llu is not a power "
			"of two\n",
			(unsigned long long)o->zone_mib);
		exit(2);
	}
	for (unsigned ci = 0; ci < o->ncounts; ci++) {
		if (o->ops / o->samples / o->counts[ci] == 0) {
			fprintf(stderr, "bench_frag: --ops must be at least "
					"samples x threads\n");
			exit(2);
		}
	}
}

static void bench_frag_parse(int argc, char **argv, struct bench_frag_opts *o)
{
	bool quick = false;
	int took;

	*o = (struct bench_frag_opts){ .ops = 20000000,
				       .samples = 100,
				       .repeats = 1,
				       .zone_mib = 1024,
				       .fill = 0.6,
				       .seed = 1,
				       .counts = { 1 },
				       .ncounts = 1 };
	for (int i = 1; i < argc; i += took) {
		took = bench_frag_opt(
			argv[i], i + 1 < argc ? argv[i + 1] : NULL, o, &quick);
		if (took == 0) {
			fprintf(stderr, "bench_frag: bad argument '%s'\n",
				argv[i]);
			bench_frag_usage(stderr);
			exit(2);
		}
	}
	if (quick) {
		o->ops = 5000;
		o->samples = 50;
		o->repeats = 1;
		o->zone_mib = 64;
	}
	bench_frag_validate(o);
}

static void bench_frag_header(const struct bench_frag_opts *o)
{
	uint64_t frames = o->zone_mib << (20 - BUDDY_FRAME_SHIFT);

	printf(BENCH_FRAG_PROG
	       ": a %llu MiB zone (%llu frames, one region, fully "
	       "coalesced at the\n  start), blocks held: %.0f%% of it on "
	       "average (%llu blocks of orders 0-9,\n  order k with p = "
	       "2^-(k+1)); %llu free + alloc replacements per run in %u\n"
	       "  phases, a sample after the fill and after each phase; %u "
	       "repeat(s), seed %llu\n",
	       (unsigned long long)o->zone_mib, (unsigned long long)frames,
	       o->fill * 100,
	       (unsigned long long)((double)frames * o->fill / BENCH_FRAG_MEAN),
	       (unsigned long long)o->ops, o->samples, o->repeats,
	       (unsigned long long)o->seed);
#if BENCH_FRAG_V3
	printf("lf_buddy_v3: version 3 (the free frames of reserved units "
	       "count as cached:\n  free, not order-9); lf_buddy_v3_nocache: "
	       "buddy_cpu_cache_enable(false) first\n  (no cache in version 3: "
	       "the reservation released once); locked_buddy: one\n  spinlock "
	       "(the baseline)\n");
#else
	printf("lf_buddy: per-CPU caches on (cached frames count as free, "
	       "not as order-9);\n  lf_buddy_nocache: off; locked_buddy: one "
	       "spinlock (the baseline)\n");
#endif
	fflush(stdout);
}

static FILE *bench_frag_csv_open(const char *path)
{
	return bench_csv_create(path, "bench,impl,threads,repeat,sample,ops,"
				      "free_frames,cached_frames,order9_frames,"
				      "share,enomem,load1");
}

/* Repeats outermost, allocators interleaved within a repeat. */
static int bench_frag_all(const struct bench_frag_opts *o, FILE *csv)
{
	int failed = 0;

	for (unsigned r = 0; r < o->repeats; r++) {
		for (unsigned ci = 0; ci < o->ncounts; ci++)
			for (unsigned k = 0; k < BENCH_FRAG_NKINDS; k++)
				failed |= bench_frag_one(k, ci, r, o, csv);
		fprintf(stderr, "bench_frag: repeat %u/%u done\n", r + 1,
			o->repeats);
	}
	return failed;
}

int main(int argc, char **argv)
{
	struct bench_frag_opts o;
	FILE *csv = NULL;
	int failed;

	bench_frag_parse(argc, argv, &o);
	if (o.csv != NULL)
		csv = bench_frag_csv_open(o.csv);
	bench_frag_header(&o);
	bench_print_load("start");
	failed = bench_frag_all(&o, csv);
	if (csv != NULL && fclose(csv) != 0) {
		perror(o.csv);
		failed = 1;
	}
	bench_print_load("end");
	bench_frag_table(&o);
	bench_frag_targets(&o);
	if (failed)
		printf("bench_frag: a check FAILED (see above)\n");
	return failed ? 1 : 0;
}
