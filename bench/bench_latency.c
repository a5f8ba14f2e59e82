/*
 * bench_latency.c: the latency of single operations, p50 / p99 / p99.9,
 * for the buddy allocators and the address range allocators, alone and
 * while other threads write. Throughput hides what lock-freedom is for: a
 * thread that is preempted holding a lock makes every other thread wait
 * for it, which shows in the tail of the others' latencies, not in their
 * mean.
 *
 * Implementations (the same as bench_buddy and bench_vas):
 *   buddy: lf_buddy (per-CPU caches on), lf_buddy_nocache (the lock-free
 *          stacks), locked_buddy (one spinlock); order-0 blocks
 *   vas:   vas (the OLC B+-tree), vas_pc (the same with per-context
 *          caching of small ranges on), rb_rwlock, rb_mutex (red-black trees
 *          under a pthread rwlock or mutex: bench_vas.h)
 *
 * Scenarios:
 *   alone    one thread, the measured one
 *   writers  the measured thread and --writers others (default: the other
 *            online CPUs, at least 1) that write the same allocator all
 *            the time: buddy writers allocate 256 order-0 blocks and free
 *            them again (their caches overflow and refill through the
 *            shared stacks, or take the lock 512 times); vas writers
 *            allocate and free ranges of their own
 *
 * The measured thread, buddy: keeps 64 blocks in a ring; each step frees
 * the oldest (timed: "free") and allocates one (timed: "alloc"). vas: on a
 * tree filled with --ranges ranges (bench_vas_fill), each step looks up a
 * random filled address (timed: "lookup"); every 8th step it also frees a
 * range it allocated before (timed: "free") and allocates one (timed:
 * "alloc"). Each timed operation is read from the time stamp counter
 * (x86-64: rdtsc, converted to ns by a calibration against
 * CLOCK_MONOTONIC at start-up; elsewhere CLOCK_MONOTONIC itself), so a
 * figure includes the clock's own cost: the "timer" row (two reads, no
 * operation between them) says how much that is.
 *
 * Repeats: each (bench, impl, scenario) runs --repeats times on a fresh
 * allocator, implementations interleaved; a repeat gives the percentiles
 * of its --ops measured steps; the table gives their median over the
 * repeats and the 95% confidence interval of the median p99.9
 * (bench_median_ci). Threads are pinned round robin to the CPUs this
 * process may use (the measured one to the first).
 *
 * Checks (exit 1): every step succeeded (no ENOMEM: the zone and the
 * region are large), the measured thread did all its steps and every
 * writer at least one operation (a scenario whose writers never ran
 * measured nothing), and after each repeat, everything freed, the
 * allocator's own check passes (buddy_zone_check with full coalescing and
 * every frame free; buddy_locked_check; the vas checks with exactly the
 * filled ranges left).
 *
 * Output: the load average at the start and the end, the table, and with
 * --csv one row per (bench, impl, scenario, op, repeat):
 *   bench,impl,scenario,op,repeat,samples,p50_ns,p99_ns,p999_ns,max_ns,
 *   writer_ops,load1
 *
 * Usage: bench_latency [--csv PATH] [--ops N] [--repeats R] [--writers W]
 *                      [--ranges N] [--quick]
 */
#define _GNU_SOURCE
#include "bench.h"
#include "bench_vas.h"

#include "buddy.h"
#include "buddy_locked.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BL_PROG "bench_latency"
#define BL_RING 64         /* buddy: blocks the measured thread holds */
#define BL_WRITER_RING 256 /* buddy: blocks a writer takes, then frees */
#define BL_VAS_EVERY 8     /* vas: a free + alloc every 8th step */
#define BL_VAS_HELD 64     /* vas: ranges the measured thread holds */
#define BL_MAX_WRITERS 63
#define BL_BASE ((uint64_t)1 << 30) /* buddy zone, vas region base */
#define BL_ZONE ((uint64_t)1 << 30) /* 1 GiB zone */

enum bl_op { BL_ALLOC, BL_FREE, BL_LOOKUP, BL_TIMER, BL_NOPS };
static const char *const bl_op_name[BL_NOPS] = { "alloc", "free", "lookup",
						 "timer" };
enum bl_impl {
	BL_LF,
	BL_NOCACHE,
	BL_LOCKED,
	BL_VAS,
	BL_VAS_PC,
	BL_RB_RWLOCK,
	BL_RB_MUTEX,
	BL_NIMPLS
};
static const char *const bl_impl_name[BL_NIMPLS] = {
	"lf_buddy", "lf_buddy_nocache", "locked_buddy", "vas",
	"vas_pc",   "rb_rwlock",        "rb_mutex"
};

static struct {
	uint64_t ops;
	unsigned repeats, writers;
	uint64_t ranges;
	const char *csv;
} bl_opt = { 200000, 10, 0, 10000, NULL };

/* ---- the clock ---- */

static double bl_ns_per_tick = 1.0;

static inline uint64_t bl_now(void)
{
#if defined(__x86_64__)
	return __builtin_ia32_rdtsc();
#else
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
#endif
}

static double bl_mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Ticks per ns of bl_now(), against CLOCK_MONOTONIC over about 50 ms. */
static void bl_calibrate(void)
{
#if defined(__x86_64__)
	double t0 = bl_mono();
	uint64_t c0 = bl_now();
	while (bl_mono() - t0 < 5e7)
		;
	double t1 = bl_mono();
	uint64_t c1 = bl_now();
	bl_ns_per_tick = (t1 - t0) / (double)(c1 - c0);
#endif
}

/* ---- the allocators ---- */

struct bl_ctx {
	enum bl_impl impl;
	unsigned nthreads;
	/* buddy */
	void *meta;
	struct buddy_zone *zone;
	struct buddy_locked *locked;
	/* vas */
	const struct bench_vas_ops *vops;
	void *vas;
	uint64_t vspanq; /* quanta filled */
	uint64_t *vaddr;
	uint8_t *vlen;
};

static bool bl_is_buddy(enum bl_impl i)
{
	return i <= BL_LOCKED;
}

static int bl_setup(struct bl_ctx *x, enum bl_impl impl, unsigned nthreads)
{
	memset(x, 0, sizeof(*x));
	x->impl = impl;
	x->nthreads = nthreads;
	const struct buddy_region rg = { .base = BL_BASE, .size = BL_ZONE };
	if (impl == BL_LF || impl == BL_NOCACHE) {
		size_t sz = buddy_meta_size(&rg, 1, nthreads);
		x->meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
		if (x->meta == NULL ||
		    buddy_zone_init(&x->zone, x->meta, sz, &rg, 1, nthreads))
			return -1;
		for (unsigned i = 0; i < nthreads; i++)
			buddy_cpu_cache_enable(buddy_zone_cpu(x->zone, i),
					       impl == BL_LF);
		return 0;
	}
	if (impl == BL_LOCKED) {
		size_t sz = buddy_locked_meta_size(&rg, 1);
		x->meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
		if (x->meta == NULL ||
		    buddy_locked_init(&x->locked, x->meta, sz, &rg, 1))
			return -1;
		return 0;
	}
	x->vops = impl == BL_VAS         ? &bench_vas_ops_vas
		  : impl == BL_VAS_PC    ? &bench_vas_ops_vas_pc
		  : impl == BL_RB_RWLOCK ? &bench_vas_ops_rb_rwlock
					 : &bench_vas_ops_rb_mutex;
	/* The fill, then room for the threads' own ranges above it. */
	uint64_t size = 2 * BENCH_VAS_FILL_SIZE(bl_opt.ranges) +
			(uint64_t)(nthreads + 1) * BL_WRITER_RING *
				BENCH_VAS_MAX_LEN * BENCH_VAS_QUANTUM * 4;
	x->vas = x->vops->create(BL_BASE, size, nthreads);
	x->vaddr = malloc(bl_opt.ranges * sizeof(*x->vaddr));
	x->vlen = malloc(bl_opt.ranges);
	if (x->vas == NULL || x->vaddr == NULL || x->vlen == NULL)
		return -1;
	x->vspanq = bench_vas_fill(x->vops, x->vas, BL_BASE, bl_opt.ranges,
				   x->vaddr, x->vlen);
	return x->vspanq == 0 ? -1 : 0;
}

/* Alloc one order-0 block (buddy) as thread id; 0 or -1. */
static inline int bl_balloc(struct bl_ctx *x, unsigned id, uint64_t *a)
{
	if (x->impl == BL_LOCKED)
		return buddy_locked_alloc(x->locked, 0, a) == BUDDY_OK ? 0 : -1;
	return buddy_alloc(buddy_zone_cpu(x->zone, id), 0, a) == BUDDY_OK ? 0
									  : -1;
}

static inline int bl_bfree(struct bl_ctx *x, unsigned id, uint64_t a)
{
	if (x->impl == BL_LOCKED)
		return buddy_locked_free(x->locked, a, 0) == BUDDY_OK ? 0 : -1;
	return buddy_free(buddy_zone_cpu(x->zone, id), a, 0) == BUDDY_OK ? 0
									 : -1;
}

/* Quiescent: everything was freed; 0 or -1 (printed). */
static int bl_check(struct bl_ctx *x)
{
	uint64_t f = 0;
	if (x->impl == BL_LF || x->impl == BL_NOCACHE) {
		struct buddy_stats st;
		buddy_zone_drain_all(buddy_zone_cpu(x->zone, 0));
		int rc = buddy_zone_check(x->zone, true, &f);
		buddy_zone_stats(x->zone, &st);
		if (rc != 0 || st.free_frames != st.total_frames) {
			fprintf(stderr,
				"%s: %s: check %d at frame %llu, %llu of "
				"%llu frames free\n",
				BL_PROG, bl_impl_name[x->impl], rc,
				(unsigned long long)f,
				(unsigned long long)st.free_frames,
				(unsigned long long)st.total_frames);
			return -1;
		}
		return 0;
	}
	if (x->impl == BL_LOCKED) {
		struct buddy_stats st;
		int rc = buddy_locked_check(x->locked, &f);
		buddy_locked_stats(x->locked, &st);
		if (rc != 0 || st.free_frames != st.total_frames) {
			fprintf(stderr, "%s: locked_buddy: check %d\n", BL_PROG,
				rc);
			return -1;
		}
		return 0;
	}
	return x->vops->check(x->vas, bl_opt.ranges);
}

static void bl_teardown(struct bl_ctx *x)
{
	if (x->vops != NULL && x->vas != NULL)
		x->vops->destroy(x->vas);
	free(x->vaddr);
	free(x->vlen);
	free(x->meta);
}

/* ---- threads ---- */

struct bl_run {
	struct bl_ctx *x;
	lf_atomic_u32 stop;    /* (a) writers stop when 1 */
	lf_atomic_u32 started; /* (a) writers running */
	lf_atomic_u64 writer_ops[BL_MAX_WRITERS + 1]; /* (a) per writer */
	lf_atomic_u32 failed;   /* (a) a step that should not fail did */
	uint32_t *lat[BL_NOPS]; /* measured thread's samples, ticks */
	uint64_t nlat[BL_NOPS];
};

static int bl_cpus[CPU_SETSIZE];
static unsigned bl_ncpus;

static void bl_pin(unsigned id)
{
	if (bl_ncpus == 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(bl_cpus[id % bl_ncpus], &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

struct bl_warg {
	struct bl_run *r;
	unsigned id; /* 1..writers */
};

static void *bl_writer(void *p)
{
	struct bl_warg *w = p;
	struct bl_run *r = w->r;
	struct bl_ctx *x = r->x;
	uint64_t held[BL_WRITER_RING], n = 0;
	uint8_t len[BL_WRITER_RING];
	bl_pin(w->id);
	/* Relaxed: a counter; the main thread reads it after the join. */
	lf_fetch_add_u32(&r->started, 1, LF_RELAXED);
	/* Relaxed: the flag carries no data (the join does). */
	while (lf_load_u32(&r->stop, LF_RELAXED) == 0) {
		unsigned got = 0;
		for (unsigned i = 0; i < BL_WRITER_RING; i++) {
			int rc;
			if (bl_is_buddy(x->impl)) {
				rc = bl_balloc(x, w->id, &held[got]);
			} else {
				len[got] =
					(uint8_t)(1 +
						  (i + n) % BENCH_VAS_MAX_LEN);
				rc = x->vops->alloc(
					x->vas, w->id,
					len[got] * (uint64_t)BENCH_VAS_QUANTUM,
					&held[got]);
			}
			if (rc != 0)
				break;
			got++;
		}
		for (unsigned i = 0; i < got; i++) {
			int rc =
				bl_is_buddy(x->impl)
					? bl_bfree(x, w->id, held[i])
					: x->vops->free(
						  x->vas, w->id, held[i],
						  len[i] *
							  (uint64_t)
								  BENCH_VAS_QUANTUM);
			if (rc != 0)
				/* Relaxed: read after the join. */
				lf_store_u32(&r->failed, 1, LF_RELAXED);
		}
		if (got == 0)
			lf_store_u32(&r->failed, 1, LF_RELAXED);
		n += 2 * got;
		/* Relaxed: read after the join. */
		lf_store_u64(&r->writer_ops[w->id], n, LF_RELAXED);
	}
	return NULL;
}

static inline void bl_sample(struct bl_run *r, enum bl_op op, uint64_t t0,
			     uint64_t t1)
{
	uint64_t d = t1 - t0;
	r->lat[op][r->nlat[op]++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void bl_fail(struct bl_run *r, const char *what)
{
	fprintf(stderr, "%s: %s: %s failed\n", BL_PROG,
		bl_impl_name[r->x->impl], what);
	/* Relaxed: read by this thread later. */
	lf_store_u32(&r->failed, 1, LF_RELAXED);
}

/* The measured thread's steps: buddy. */
static void bl_measure_buddy(struct bl_run *r)
{
	struct bl_ctx *x = r->x;
	uint64_t ring[BL_RING];
	unsigned head = 0, n = 0;
	for (uint64_t s = 0; s < bl_opt.ops; s++) {
		uint64_t t0, t1;
		int rc;
		if (n == BL_RING) {
			t0 = bl_now();
			rc = bl_bfree(x, 0, ring[head]);
			t1 = bl_now();
			if (rc != 0)
				bl_fail(r, "free");
			bl_sample(r, BL_FREE, t0, t1);
			n--;
		}
		t0 = bl_now();
		rc = bl_balloc(x, 0, &ring[head]);
		t1 = bl_now();
		if (rc != 0) {
			bl_fail(r, "alloc");
			return;
		}
		bl_sample(r, BL_ALLOC, t0, t1);
		head = (head + 1) % BL_RING;
		n++;
	}
	for (; n > 0; n--) {
		if (bl_bfree(x, 0, ring[head]) != 0)
			bl_fail(r, "free");
		head = (head + 1) % BL_RING;
	}
}

static inline uint64_t bl_rand(uint64_t *s)
{
	/* xorshift64* (Vigna) */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/*
 * The measured thread's steps: vas. The ring of held allocations is
 * bl_measure_buddy()'s, over the vas's calls: each measured loop is written
 * out so that nothing but the call sits between the two clock reads.
 */
static void bl_measure_vas(struct bl_run *r, uint64_t seed)
{
	struct bl_ctx *x = r->x;
	uint64_t ring[BL_VAS_HELD], rng = seed | 1;
	uint8_t rlen[BL_VAS_HELD];
	unsigned head = 0, n = 0;
	for (uint64_t s = 0; s < bl_opt.ops; s++) {
		uint64_t j = bl_rand(&rng) % bl_opt.ranges, start, t0, t1;
		uint64_t a = x->vaddr[j] + (bl_rand(&rng) % x->vlen[j]) *
						   (uint64_t)BENCH_VAS_QUANTUM;
		t0 = bl_now();
		int rc = x->vops->lookup(x->vas, 0, a, &start);
		t1 = bl_now();
		if (rc != 0 || start != x->vaddr[j])
			bl_fail(r, "lookup");
		bl_sample(r, BL_LOOKUP, t0, t1);
		if (s % BL_VAS_EVERY != 0)
			continue;
		if (n == BL_VAS_HELD) {
			t0 = bl_now();
			rc = x->vops->free(x->vas, 0, ring[head],
					   rlen[head] *
						   (uint64_t)BENCH_VAS_QUANTUM);
			t1 = bl_now();
			if (rc != 0)
				bl_fail(r, "free");
			bl_sample(r, BL_FREE, t0, t1);
			n--;
		}
		rlen[head] = (uint8_t)(1 + s % BENCH_VAS_MAX_LEN);
		t0 = bl_now();
		rc = x->vops->alloc(x->vas, 0,
				    rlen[head] * (uint64_t)BENCH_VAS_QUANTUM,
				    &ring[head]);
		t1 = bl_now();
		if (rc != 0) {
			bl_fail(r, "alloc");
			return;
		}
		bl_sample(r, BL_ALLOC, t0, t1);
		head = (head + 1) % BL_VAS_HELD;
		n++;
	}
	for (; n > 0; n--) {
		if (x->vops->free(x->vas, 0, ring[head],
				  rlen[head] * (uint64_t)BENCH_VAS_QUANTUM) !=
		    0)
			bl_fail(r, "free");
		head = (head + 1) % BL_VAS_HELD;
	}
}

/* ---- results ---- */

struct bl_pct {
	double p50, p99, p999, max;
	uint64_t n;
};

static int bl_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static struct bl_pct bl_percentiles(uint32_t *v, uint64_t n)
{
	struct bl_pct p = { 0, 0, 0, 0, n };
	if (n == 0)
		return p;
	qsort(v, n, sizeof(*v), bl_cmp_u32);
	p.p50 = v[(n - 1) * 50 / 100] * bl_ns_per_tick;
	p.p99 = v[(n - 1) * 99 / 100] * bl_ns_per_tick;
	p.p999 = v[(n - 1) * 999 / 1000] * bl_ns_per_tick;
	p.max = v[n - 1] * bl_ns_per_tick;
	return p;
}

#define BL_NSCEN 2
static const char *const bl_scen_name[BL_NSCEN] = { "alone", "writers" };
/* [impl][scenario][op][repeat] */
static struct bl_pct *bl_res;
static uint64_t *bl_wops; /* [impl][scenario][repeat]: writers' ops */

static struct bl_pct *bl_at(unsigned i, unsigned s, unsigned op, unsigned r)
{
	return &bl_res[((i * BL_NSCEN + s) * BL_NOPS + op) * bl_opt.repeats +
		       r];
}

/* One repeat of (impl, scenario): 0, or -1 if a check failed. */
static int bl_point(enum bl_impl impl, unsigned scen, unsigned rep, FILE *csv)
{
	unsigned nw = scen == 0 ? 0 : bl_opt.writers;
	struct bl_ctx x;
	struct bl_run r;
	pthread_t th[BL_MAX_WRITERS];
	struct bl_warg wa[BL_MAX_WRITERS];
	int bad = 0;

	memset(&r, 0, sizeof(r));
	r.x = &x;
	if (bl_setup(&x, impl, nw + 1) != 0) {
		fprintf(stderr, "%s: %s: setup failed\n", BL_PROG,
			bl_impl_name[impl]);
		bl_teardown(&x);
		return -1;
	}
	for (unsigned op = 0; op < BL_NOPS; op++) {
		r.lat[op] = malloc(bl_opt.ops * sizeof(uint32_t));
		if (r.lat[op] == NULL) {
			perror(BL_PROG);
			exit(2);
		}
	}
	for (unsigned i = 0; i < nw; i++) {
		wa[i] = (struct bl_warg){ &r, i + 1 };
		if (pthread_create(&th[i], NULL, bl_writer, &wa[i]) != 0) {
			perror(BL_PROG);
			exit(2);
		}
	}
	/* Relaxed: only a count; wait until every writer runs. */
	while (lf_load_u32(&r.started, LF_RELAXED) < nw)
		sched_yield();
	/* The clock's own cost: two reads, nothing between. */
	for (uint64_t s = 0; s < bl_opt.ops; s++) {
		uint64_t t0 = bl_now(), t1 = bl_now();
		bl_sample(&r, BL_TIMER, t0, t1);
	}
	if (bl_is_buddy(impl))
		bl_measure_buddy(&r);
	else
		bl_measure_vas(&r, 0x9e3779b97f4a7c15ull * (rep + 1));
	/* Relaxed: the join publishes everything. */
	lf_store_u32(&r.stop, 1, LF_RELAXED);
	for (unsigned i = 0; i < nw; i++)
		pthread_join(th[i], NULL);
	uint64_t wops = 0;
	for (unsigned i = 1; i <= nw; i++) {
		uint64_t w = lf_load_u64(&r.writer_ops[i], LF_RELAXED);
		if (w == 0) {
			fprintf(stderr, "%s: %s: writer %u did nothing\n",
				BL_PROG, bl_impl_name[impl], i);
			bad = -1;
		}
		wops += w;
	}
	if (lf_load_u32(&r.failed, LF_RELAXED) != 0)
		bad = -1;
	if (bl_check(&x) != 0)
		bad = -1;
	bl_wops[(impl * BL_NSCEN + scen) * bl_opt.repeats + rep] = wops;
	double la[3];
	bench_loadavg(la);
	for (unsigned op = 0; op < BL_NOPS; op++) {
		struct bl_pct p = bl_percentiles(r.lat[op], r.nlat[op]);
		*bl_at(impl, scen, op, rep) = p;
		if (op != BL_TIMER && op != BL_LOOKUP && r.nlat[op] == 0) {
			fprintf(stderr, "%s: %s: no %s measured\n", BL_PROG,
				bl_impl_name[impl], bl_op_name[op]);
			bad = -1;
		}
		if (csv != NULL && p.n > 0)
			fprintf(csv,
				"%s,%s,%s,%s,%u,%llu,%.1f,%.1f,%.1f,%.1f,"
				"%llu,%.2f\n",
				bl_is_buddy(impl) ? "buddy" : "vas",
				bl_impl_name[impl], bl_scen_name[scen],
				bl_op_name[op], rep + 1,
				(unsigned long long)p.n, p.p50, p.p99, p.p999,
				p.max, (unsigned long long)wops, la[0]);
		free(r.lat[op]);
	}
	bl_teardown(&x);
	return bad;
}

static void bl_table(void)
{
	double v[4][1000], lo, hi;
	bool ci = bl_opt.repeats >= 6;

	printf("ns per operation, median over %u repeats of each repeat's "
	       "percentile;\n  p99.9 %s: its 95%% confidence interval "
	       "(distribution-free)%s\n",
	       bl_opt.repeats, ci ? "[lo, hi]" : "[min, max]",
	       ci ? "" : ", too few repeats: min and max");
	printf("%-6s %-7s %-17s %-8s %8s %8s %8s %17s %9s\n", "bench", "op",
	       "impl", "scen", "p50", "p99", "p99.9", "p99.9 interval", "max");
	for (unsigned b = 0; b < 2; b++)
		for (unsigned op = 0; op < BL_NOPS; op++)
			for (unsigned i = b ? BL_VAS : 0;
			     i < (b ? BL_NIMPLS : BL_VAS); i++)
				for (unsigned s = 0; s < BL_NSCEN; s++) {
					if (bl_at(i, s, op, 0)->n == 0)
						continue;
					if (op == BL_TIMER &&
					    (s != 0 || i % 3 != 0))
						continue;
					for (unsigned r = 0; r < bl_opt.repeats;
					     r++) {
						struct bl_pct *p =
							bl_at(i, s, op, r);
						v[0][r] = p->p50;
						v[1][r] = p->p99;
						v[2][r] = p->p999;
						v[3][r] = p->max;
					}
					unsigned n = bl_opt.repeats;
					double m50 = bench_median(v[0], n, NULL,
								  NULL);
					double m99 = bench_median(v[1], n, NULL,
								  NULL);
					double m999 = bench_median(v[2], n,
								   NULL, NULL);
					double mx = bench_median(v[3], n, NULL,
								 NULL);
					(void)bench_median_ci(v[2], n, &lo,
							      &hi);
					printf("%-6s %-7s %-17s %-8s %8.0f "
					       "%8.0f "
					       "%8.0f  [%6.0f, %6.0f] %9.0f\n",
					       b ? "vas" : "buddy",
					       bl_op_name[op], bl_impl_name[i],
					       bl_scen_name[s], m50, m99, m999,
					       lo, hi, mx);
				}
}

static void bl_usage(FILE *f)
{
	fprintf(f,
		"usage: %s [--csv PATH] [--ops N] [--repeats R] "
		"[--writers W] [--ranges N] [--quick]\n",
		BL_PROG);
}

int main(int argc, char **argv)
{
	FILE *csv = NULL;
	bool writers_set = false;
	cpu_set_t set;

	/* --quick first: it sets defaults the other options then override. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--quick") == 0) {
			bl_opt.ops = 2000;
			bl_opt.repeats = 2;
			bl_opt.ranges = 1000;
		}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--quick") == 0)
			continue;
		if (strcmp(a, "--help") == 0) {
			bl_usage(stdout);
			return 0;
		}
		if (v == NULL) {
			bl_usage(stderr);
			return 2;
		}
		i++;
		if (strcmp(a, "--csv") == 0)
			bl_opt.csv = v;
		else if (strcmp(a, "--ops") == 0)
			bl_opt.ops =
				(uint64_t)bench_num(BL_PROG, a, v, 100, 1e8);
		else if (strcmp(a, "--repeats") == 0)
			bl_opt.repeats =
				(unsigned)bench_num(BL_PROG, a, v, 1, 1000);
		else if (strcmp(a, "--writers") == 0) {
			bl_opt.writers = (unsigned)bench_num(BL_PROG, a, v, 1,
							     BL_MAX_WRITERS);
			writers_set = true;
		} else if (strcmp(a, "--ranges") == 0)
			bl_opt.ranges =
				(uint64_t)bench_num(BL_PROG, a, v, 100, 1e7);
		else {
			bl_usage(stderr);
			return 2;
		}
	}
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set))
				bl_cpus[bl_ncpus++] = c;
	if (!writers_set) {
		unsigned on = bl_ncpus > 1 ? bl_ncpus - 1 : 1;
		bl_opt.writers = on > BL_MAX_WRITERS ? BL_MAX_WRITERS : on;
	}
	bl_calibrate();
	bl_res = calloc((size_t)BL_NIMPLS * BL_NSCEN * BL_NOPS * bl_opt.repeats,
			sizeof(*bl_res));
	bl_wops = calloc((size_t)BL_NIMPLS * BL_NSCEN * bl_opt.repeats,
			 sizeof(*bl_wops));
	if (bl_res == NULL || bl_wops == NULL) {
		perror(BL_PROG);
		return 2;
	}
	if (bl_opt.csv != NULL)
		csv = bench_csv_create(
			bl_opt.csv, "bench,impl,scenario,op,repeat,samples,"
				    "p50_ns,p99_ns,p999_ns,max_ns,writer_ops,"
				    "load1");
	printf("%s: %llu measured steps a repeat, %u repeats, %u writer(s) in "
	       "the writers scenario,\n  %llu ranges in the vas; clock: %s "
	       "(%.4f ns a tick)\n",
	       BL_PROG, (unsigned long long)bl_opt.ops, bl_opt.repeats,
	       bl_opt.writers, (unsigned long long)bl_opt.ranges,
#if defined(__x86_64__)
	       "rdtsc",
#else
	       "CLOCK_MONOTONIC",
#endif
	       bl_ns_per_tick);
	bench_print_load("start");
	int failed = 0;
	for (unsigned r = 0; r < bl_opt.repeats; r++) {
		for (unsigned i = 0; i < BL_NIMPLS; i++)
			for (unsigned s = 0; s < BL_NSCEN; s++)
				if (bl_point((enum bl_impl)i, s, r, csv) != 0)
					failed = 1;
		fprintf(stderr, "%s: repeat %u/%u done\n", BL_PROG, r + 1,
			bl_opt.repeats);
	}
	if (csv != NULL)
		fclose(csv);
	bench_print_load("end");
	printf("\n");
	bl_table();
	if (failed)
		printf("%s: a check FAILED (see above)\n", BL_PROG);
	return failed;
}
