/*
 * bench_buddy_work.c: the workloads of bench_buddy, each run on the
 * lock-free buddy (buddy.h) with and without its per-CPU caches and on the
 * locked buddy (buddy_locked.h), the baseline, under the harness of
 * bench_harness.c. One op is one alloc + free pair.
 *
 *   repeat  alloc an order-0 block, free it, again;
 *   bulk    alloc BENCH_BUDDY_BULK order-0 blocks, then free them;
 *   cross   threads in pairs: the even one allocates order-0 blocks and
 *           passes them through a single-producer single-consumer ring to
 *           the odd one, which frees them; a thread without a partner (1
 *           thread, or the last of an odd count) plays both roles, filling
 *           its ring then emptying it (BENCH_BUDDY_RING blocks at a time);
 *   mixed   each thread holds BENCH_BUDDY_HELD blocks of random orders 0-5
 *           (order k with probability 2^-(k+1), 5 with 1/32) and, again
 *           and again, frees a random one and allocates a new one in its
 *           place (LLFree's "random" style);
 *   huge    alloc an order-9 block (2 MiB), free it, again.
 *
 * Each point gets a fresh zone of BENCH_BUDDY_GIB GiB of fake physical
 * memory in one region (the allocators never touch the frames; only their
 * metadata is real, from aligned_alloc), fully coalesced as after boot.
 * The lock-free zone has one CPU context per thread (buddy_zone_cpu(z, id)).
 *
 * After each run every thread frees what it holds, and check() fails (-1)
 * unless no call failed, and, for the lock-free zone with every cache
 * drained (buddy_zone_drain_all), buddy_zone_check() finds every invariant
 * of docs/design.md including full coalescing, every frame is free and
 * allocations equal frees; for the locked one, buddy_locked_check() passes
 * and every frame is free. So a broken allocator cannot be timed silently.
 *
 * ENOMEM. No workload holds more than a small part of the zone: per
 * thread, at most BENCH_BUDDY_HELD blocks of 32 frames or a ring, plus its
 * cache, under 3,100 frames of the 262,144 (in practice a few hundred), so
 * a BUDDY_ENOMEM would be false: the lock-free buddy's ENOMEM is exact
 * (docs/design.md 2.4), and one fails the check like any other error. The
 * lock-free ones are also counted apart (the enomem column of the work
 * table), as the allocator's own failed counter must be.
 */
#include "bench_buddy.h"

#include "buddy.h"
#include "buddy_locked.h"

#include <stdio.h>
#include <stdlib.h>

#define BB_BASE ((uint64_t)1 << 30) /* physical base of the zone */
#define BB_SIZE ((uint64_t)BENCH_BUDDY_GIB << 30)
#define BB_RING_PUBLISH 16 /* cross: ring indices published this often */
#define BB_EMPTY 0xff      /* mixed: a slot holding no block */

enum bb_work { BB_REPEAT, BB_BULK, BB_CROSS, BB_MIXED, BB_HUGE, BB_NWORK };
/* BB_NORSV: bench_buddy_v3 only (repeat, bulk; see bench_buddy.h). */
enum bb_alloc { BB_LF, BB_NOCACHE, BB_LOCKED, BB_NORSV, BB_NALLOC };

static const char *const bb_work_name[BB_NWORK] = {
	"repeat", "bulk", "cross", "mixed", "huge",
};
static const char *const bb_alloc_name[BB_NALLOC] = {
	BENCH_BUDDY_LF,
	BENCH_BUDDY_NOCACHE,
	"locked_buddy",
	BENCH_BUDDY_NORSV,
};

/*
 * A bounded single-producer single-consumer ring of block addresses. The
 * producer writes slot[tail % N], then publishes tail with a release store;
 * the consumer reads slots below the tail it loaded with acquire, then
 * publishes head with a release store, which the producer loads with
 * acquire before it reuses those slots. Each side keeps its own index in a
 * local and publishes it every BB_RING_PUBLISH entries (and before it
 * waits), so the two index lines move between CPUs once per batch.
 */
struct bb_ring {
	lf_atomic_u64 head LF_CACHE_ALIGNED; /* (a) consumer: next to free */
	lf_atomic_u64 tail LF_CACHE_ALIGNED; /* (a) producer: next to fill */
	lf_atomic_u32 closed; /* (a) producer: no entry will follow */
	/* Ordered by head and tail as above. */
	uint64_t slot[BENCH_BUDDY_RING] LF_CACHE_ALIGNED;
};

/* One thread's state; touched by the main thread only around the run. */
struct bb_thread {
	struct buddy_cpu *cpu; /* NULL: the locked buddy */
	struct bb_ring *out;   /* cross: the ring it fills, or NULL */
	struct bb_ring *in;    /* cross: the ring it empties, or NULL */
	uint64_t rng;          /* mixed: xorshift64* state */
	uint64_t errors;       /* calls that failed */
	uint64_t enomem;       /* lock-free allocations that got ENOMEM */
	int first_err;         /* the first error code, for the message */
	uint64_t pairs;        /* what run() returned */
	uint64_t held[BENCH_BUDDY_RING]; /* blocks held (bulk, mixed, cross) */
	uint8_t held_order[BENCH_BUDDY_HELD]; /* mixed: order, or BB_EMPTY */
} LF_CACHE_ALIGNED;

/* What the allocator did at one point, summed over its repeats. */
struct bb_tally {
	uint64_t runs, pairs, splits, merges, stale, moved, refills, drains,
		sweeps, enomem;
};

/*
 * The point being run: set by setup() on the main thread before the
 * threads start (pthread_create orders it), read by them, and by check()
 * after the join.
 */
static struct {
	enum bb_work work;
	enum bb_alloc alloc;
	unsigned nthreads;
	void *meta;
	struct buddy_zone *zone;
	struct buddy_locked *locked;
} bb;

static struct bb_thread bb_threads[BENCH_MAX_THREADS];
static struct bb_ring bb_rings[BENCH_MAX_THREADS / 2];
static struct bb_tally bb_tally[BB_NWORK][BB_NALLOC][BENCH_MAX_THREADS + 1];

/* ---- the allocators, behind one call ---- */

static inline int bb_alloc(struct bb_thread *t, unsigned order, uint64_t *a)
{
	if (t->cpu == NULL)
		return buddy_locked_alloc(bb.locked, order, a);
	return buddy_alloc(t->cpu, order, a);
}

static inline int bb_free(struct bb_thread *t, uint64_t a, unsigned order)
{
	if (t->cpu == NULL)
		return buddy_locked_free(bb.locked, a, order);
	return buddy_free(t->cpu, a, order);
}

/* Count a failed call (a lock-free ENOMEM also apart: see the top). */
static void bb_error(struct bb_thread *t, int rc)
{
	if (rc == BUDDY_ENOMEM && t->cpu != NULL)
		t->enomem++;
	if (t->errors++ == 0)
		t->first_err = rc;
}

/* Alloc one block into *a; false (and counted) if the call failed. */
static inline bool bb_get(struct bb_thread *t, unsigned order, uint64_t *a)
{
	int rc = bb_alloc(t, order, a);

	if (LF_UNLIKELY(rc != BUDDY_OK)) {
		bb_error(t, rc);
		return false;
	}
	return true;
}

static inline void bb_put(struct bb_thread *t, uint64_t a, unsigned order)
{
	int rc = bb_free(t, a, order);

	if (LF_UNLIKELY(rc != BUDDY_OK))
		bb_error(t, rc);
}

/* ---- repeat, huge: alloc + free of one block ---- */

static uint64_t bb_run_pairs(struct bb_thread *t, unsigned order,
			     const struct bench_stop *stop)
{
	uint64_t n = 0, a;

	do {
		for (unsigned i = 0; i < BENCH_BATCH; i++) {
			if (LF_UNLIKELY(!bb_get(t, order, &a)))
				continue;
			bb_put(t, a, order);
			n++;
		}
	} while (!bench_stopped(stop));
	return n;
}

#if BENCH_BUDDY_V3
/* repeat with the reservation given up after every pair (NORSV). */
static uint64_t bb_run_pairs_norsv(struct bb_thread *t, unsigned order,
				   const struct bench_stop *stop)
{
	uint64_t n = 0, a;

	do {
		for (unsigned i = 0; i < BENCH_BATCH; i++) {
			if (LF_UNLIKELY(!bb_get(t, order, &a)))
				continue;
			bb_put(t, a, order);
			buddy_cpu_drain(t->cpu);
			n++;
		}
	} while (!bench_stopped(stop));
	return n;
}
#endif

/* ---- bulk: alloc BENCH_BUDDY_BULK, then free them ---- */

/* Take count order-0 blocks (as many as there are), then give them back. */
static inline unsigned bb_take_give(struct bb_thread *t, unsigned count)
{
	unsigned got = 0;
	for (unsigned j = 0; j < count; j++)
		got += bb_get(t, 0, &t->held[got]);
	for (unsigned j = 0; j < got; j++)
		bb_put(t, t->held[j], 0);
	return got;
}

static uint64_t bb_run_bulk(struct bb_thread *t, const struct bench_stop *stop)
{
	uint64_t n = 0;

	do {
		for (unsigned i = 0; i < BENCH_BATCH / BENCH_BUDDY_BULK; i++)
			n += bb_take_give(t, BENCH_BUDDY_BULK);
	} while (!bench_stopped(stop));
	return n;
}

#if BENCH_BUDDY_V3
/* bulk with the reservation given up after every batch (NORSV). */
static uint64_t bb_run_bulk_norsv(struct bb_thread *t,
				  const struct bench_stop *stop)
{
	uint64_t n = 0;

	do {
		for (unsigned i = 0; i < BENCH_BATCH / BENCH_BUDDY_BULK; i++) {
			n += bb_take_give(t, BENCH_BUDDY_BULK);
			buddy_cpu_drain(t->cpu);
		}
	} while (!bench_stopped(stop));
	return n;
}
#endif

/* ---- mixed: random orders, random frees ---- */

static inline uint64_t bb_rand(struct bb_thread *t)
{
	/* xorshift64* (Vigna): fast, and good enough to pick slots. */
	t->rng ^= t->rng >> 12;
	t->rng ^= t->rng << 25;
	t->rng ^= t->rng >> 27;
	return t->rng * 0x2545f4914f6cdd1dull;
}

/* Order k with probability 2^-(k+1), the last one with what is left. */
static inline unsigned bb_rand_order(uint64_t r)
{
	unsigned top = BENCH_BUDDY_MIXED_ORDERS - 1;
	return (unsigned)__builtin_ctzll(r | (uint64_t)1 << top);
}

/* Fill slot s with a block of a random order; false if it stays empty. */
static inline bool bb_mixed_fill(struct bb_thread *t, unsigned s, uint64_t r)
{
	unsigned o = bb_rand_order(r);
	bool ok = bb_get(t, o, &t->held[s]);

	t->held_order[s] = ok ? (uint8_t)o : BB_EMPTY;
	return ok;
}

static inline void bb_mixed_empty(struct bb_thread *t, unsigned s)
{
	if (t->held_order[s] != BB_EMPTY)
		bb_put(t, t->held[s], t->held_order[s]);
	t->held_order[s] = BB_EMPTY;
}

static uint64_t bb_run_mixed(struct bb_thread *t, const struct bench_stop *stop)
{
	uint64_t n = 0;

	do {
		for (unsigned i = 0; i < BENCH_BATCH; i++) {
			uint64_t r = bb_rand(t);
			unsigned s = (unsigned)(r >> 58) % BENCH_BUDDY_HELD;
			bb_mixed_empty(t, s);
			n += bb_mixed_fill(t, s, r);
		}
	} while (!bench_stopped(stop));
	return n;
}

/* ---- cross: frees done by another thread ---- */

static void bb_ring_init(struct bb_ring *r)
{
	lf_init_u64(&r->head, 0);
	lf_init_u64(&r->tail, 0);
	lf_init_u32(&r->closed, 0);
}

static void bb_ring_publish_tail(struct bb_ring *r, uint64_t tail)
{
	/* Release: the slots below tail; pairs with the consumer's acquire. */
	lf_store_u64(&r->tail, tail, LF_RELEASE);
}

static void bb_ring_publish_head(struct bb_ring *r, uint64_t head)
{
	/*
	 * Release: we are done with the slots below head; pairs with the
	 * producer's acquire load before it writes them again.
	 */
	lf_store_u64(&r->head, head, LF_RELEASE);
}

/* The producer: alloc into the ring until the stop, then close it. */
static uint64_t bb_cross_produce(struct bb_thread *t, struct bb_ring *r,
				 const struct bench_stop *stop)
{
	uint64_t tail = 0, head = 0, published = 0;

	do {
		for (unsigned i = 0; i < BENCH_BATCH; i++) {
			if (tail - head == BENCH_BUDDY_RING) {
				bb_ring_publish_tail(r, tail);
				published = tail;
				/* Acquire: pairs with bb_ring_publish_head. */
				head = lf_load_u64(&r->head, LF_ACQUIRE);
				if (tail - head == BENCH_BUDDY_RING) {
					lf_platform_pause();
					continue;
				}
			}
			if (!bb_get(t, 0, &r->slot[tail % BENCH_BUDDY_RING]))
				continue;
			if (++tail - published >= BB_RING_PUBLISH) {
				bb_ring_publish_tail(r, tail);
				published = tail;
			}
		}
	} while (!bench_stopped(stop));
	bb_ring_publish_tail(r, tail);
	/* Release: after the last tail; pairs with the consumer's acquire. */
	lf_store_u32(&r->closed, 1, LF_RELEASE);
	return 0; /* the consumer counts the pairs */
}

/*
 * Wait for entries beyond head; false once the ring is closed and empty.
 * bench_kmem.c's producer-consumer ring (struct kb_ring) waits the same
 * way on a ring of another element type (object pointers, not block
 * addresses) and size; each benchmark keeps its ring beside its workload.
 */
static bool bb_cross_wait(struct bb_ring *r, uint64_t head, uint64_t *tail)
{
	bb_ring_publish_head(r, head);
	for (;;) {
		/* Acquire: pairs with bb_ring_publish_tail(). */
		*tail = lf_load_u64(&r->tail, LF_ACQUIRE);
		if (*tail != head)
			return true;
		/* Acquire: pairs with the release in bb_cross_produce(). */
		if (lf_load_u32(&r->closed, LF_ACQUIRE) != 0) {
			/* Acquire: the last tail, stored before closed. */
			*tail = lf_load_u64(&r->tail, LF_ACQUIRE);
			return *tail != head;
		}
		lf_platform_pause();
	}
}

/* The consumer: free what comes out of the ring until it is closed. */
static uint64_t bb_cross_consume(struct bb_thread *t, struct bb_ring *r)
{
	uint64_t head = 0, tail = 0;

	while (head != tail || bb_cross_wait(r, head, &tail)) {
		bb_put(t, r->slot[head % BENCH_BUDDY_RING], 0);
		if (++head % BB_RING_PUBLISH == 0)
			bb_ring_publish_head(r, head);
	}
	return head;
}

/* A thread without a partner: fill its ring, then empty it, again. */
static uint64_t bb_cross_alone(struct bb_thread *t,
			       const struct bench_stop *stop)
{
	uint64_t n = 0;

	do
		n += bb_take_give(t, BENCH_BUDDY_RING);
	while (!bench_stopped(stop));
	return n;
}

static uint64_t bb_run_cross(struct bb_thread *t, const struct bench_stop *stop)
{
	if (t->out != NULL)
		return bb_cross_produce(t, t->out, stop);
	if (t->in != NULL)
		return bb_cross_consume(t, t->in);
	return bb_cross_alone(t, stop);
}

/* ---- the harness's calls ---- */

static const char *bb_never_skip(unsigned nthreads)
{
	(void)nthreads;
	return NULL;
}

/* A fresh zone (or locked buddy) for this point. */
static int bb_setup(enum bb_work w, enum bb_alloc a, unsigned nthreads)
{
	const struct buddy_region rg = { .base = BB_BASE, .size = BB_SIZE };
	size_t size = a == BB_LOCKED ? buddy_locked_meta_size(&rg, 1)
				     : buddy_meta_size(&rg, 1, nthreads);
	int rc;

	bb.work = w;
	bb.alloc = a;
	bb.nthreads = nthreads;
	size = (size + LF_CACHELINE - 1) & ~(size_t)(LF_CACHELINE - 1);
	bb.meta = size ? aligned_alloc(LF_CACHELINE, size) : NULL;
	if (bb.meta == NULL)
		return -1;
	if (a == BB_LOCKED)
		rc = buddy_locked_init(&bb.locked, bb.meta, size, &rg, 1);
	else
		rc = buddy_zone_init(&bb.zone, bb.meta, size, &rg, 1, nthreads);
	if (rc != BUDDY_OK) {
		fprintf(stderr, BENCH_BUDDY_PROG ": init: %s\n",
			buddy_strerror(rc));
		free(bb.meta);
		bb.meta = NULL;
		return -1;
	}
	for (unsigned i = 0; i < nthreads / 2; i++)
		bb_ring_init(&bb_rings[i]);
	return 0;
}

/* Roles in cross: 2i fills ring i, 2i + 1 empties it, a last odd one both. */
static void bb_cross_roles(struct bb_thread *t, unsigned id)
{
	t->out = NULL;
	t->in = NULL;
	if (bb.work != BB_CROSS)
		return;
	if (id % 2 == 1)
		t->in = &bb_rings[id / 2];
	else if (id + 1 < bb.nthreads)
		t->out = &bb_rings[id / 2];
}

static void bb_thread_init(unsigned id)
{
	struct bb_thread *t = &bb_threads[id];

	t->cpu = bb.alloc == BB_LOCKED ? NULL : buddy_zone_cpu(bb.zone, id);
	if (bb.alloc == BB_NOCACHE)
		buddy_cpu_cache_enable(t->cpu, false);
	t->errors = 0;
	t->enomem = 0;
	t->first_err = BUDDY_OK;
	t->pairs = 0;
	t->rng = 0x9e3779b97f4a7c15ull * (id + 1);
	bb_cross_roles(t, id);
	for (unsigned s = 0; s < BENCH_BUDDY_HELD; s++)
		t->held_order[s] = BB_EMPTY;
	if (bb.work == BB_MIXED)
		for (unsigned s = 0; s < BENCH_BUDDY_HELD; s++)
			bb_mixed_fill(t, s, bb_rand(t));
}

static uint64_t bb_run(unsigned id, const struct bench_stop *stop)
{
	struct bb_thread *t = &bb_threads[id];
	uint64_t n = 0;

	switch (bb.work) {
	case BB_REPEAT:
#if BENCH_BUDDY_V3
		if (bb.alloc == BB_NORSV) {
			n = bb_run_pairs_norsv(t, 0, stop);
			break;
		}
#endif
		n = bb_run_pairs(t, 0, stop);
		break;
	case BB_BULK:
#if BENCH_BUDDY_V3
		if (bb.alloc == BB_NORSV) {
			n = bb_run_bulk_norsv(t, stop);
			break;
		}
#endif
		n = bb_run_bulk(t, stop);
		break;
	case BB_CROSS:
		n = bb_run_cross(t, stop);
		break;
	case BB_MIXED:
		n = bb_run_mixed(t, stop);
		break;
	case BB_HUGE:
		n = bb_run_pairs(t, BENCH_BUDDY_HUGE_ORDER, stop);
		break;
	case BB_NWORK:
		break;
	}
	t->pairs = n;
	return n;
}

/* Free what the thread still holds (mixed), on its own context. */
static void bb_thread_fini(unsigned id)
{
	struct bb_thread *t = &bb_threads[id];

	for (unsigned s = 0; s < BENCH_BUDDY_HELD; s++)
		bb_mixed_empty(t, s);
}

/* Add the allocator's statistics to the tally of this point. */
static void bb_count(const struct buddy_stats *st)
{
	struct bb_tally *y = &bb_tally[bb.work][bb.alloc][bb.nthreads];

	y->runs++;
	for (unsigned i = 0; i < bb.nthreads; i++) {
		y->pairs += bb_threads[i].pairs;
		y->enomem += bb_threads[i].enomem;
	}
	y->splits += st->splits;
	y->merges += st->merges;
	y->stale += st->stale;
	y->moved += st->moved;
	y->refills += st->refills;
	y->drains += st->drains;
	y->sweeps += st->sweeps;
}

static int bb_fail(const char *what, unsigned long long v)
{
	fprintf(stderr, BENCH_BUDDY_PROG ": %s %s, %u threads: %s (%llu)\n",
		bb_work_name[bb.work], bb_alloc_name[bb.alloc], bb.nthreads,
		what, v);
	return -1;
}

/* Every frame free, every allocation freed, every failure accounted. */
static int bb_check_stats(const struct buddy_stats *st)
{
	uint64_t enomem = 0;

	for (unsigned i = 0; i < bb.nthreads; i++)
		enomem += bb_threads[i].enomem;
	if (st->total_frames != BB_SIZE >> BUDDY_FRAME_SHIFT)
		return bb_fail("wrong frame count", st->total_frames);
	if (st->free_frames != st->total_frames)
		return bb_fail("frames not free at the end",
			       st->total_frames - st->free_frames);
	if (st->allocs != st->frees)
		return bb_fail("allocations minus frees",
			       st->allocs - st->frees);
	if (st->failed != enomem)
		return bb_fail("failed calls counted by the allocator",
			       st->failed);
	if (st->rejected != 0)
		return bb_fail("calls rejected", st->rejected);
	return 0;
}

static int bb_check_lf(void)
{
	struct buddy_cpu *c = buddy_zone_cpu(bb.zone, 0);
	struct buddy_stats st;
	uint64_t frame = 0;
	int inv;

	buddy_zone_stats(bb.zone, &st);
	bb_count(&st);
	buddy_zone_drain_all(c);
	inv = buddy_zone_check(bb.zone, true, &frame);
	if (inv != 0) {
		fprintf(stderr,
			BENCH_BUDDY_PROG ": invariant B%d broken at frame "
					 "%llu\n",
			inv, (unsigned long long)frame);
		return bb_fail("buddy_zone_check failed", (unsigned)inv);
	}
	buddy_zone_stats(bb.zone, &st);
	if (st.cached_frames != 0)
		return bb_fail("frames left in caches", st.cached_frames);
	return bb_check_stats(&st);
}

static int bb_check_locked(void)
{
	struct buddy_stats st;
	uint64_t frame = 0;
	int rc = buddy_locked_check(bb.locked, &frame);

	if (rc != 0) {
		fprintf(stderr,
			BENCH_BUDDY_PROG ": locked buddy broken at frame "
					 "%llu\n",
			(unsigned long long)frame);
		return bb_fail("buddy_locked_check failed", (unsigned)rc);
	}
	buddy_locked_stats(bb.locked, &st);
	bb_count(&st);
	return bb_check_stats(&st);
}

static int bb_check(void)
{
	int rc = bb.alloc == BB_LOCKED ? bb_check_locked() : bb_check_lf();

	for (unsigned i = 0; i < bb.nthreads; i++) {
		const struct bb_thread *t = &bb_threads[i];
		if (t->errors == 0)
			continue;
		fprintf(stderr,
			BENCH_BUDDY_PROG ": thread %u: %llu calls failed, "
					 "the first with %s\n",
			i, (unsigned long long)t->errors,
			buddy_strerror(t->first_err));
		rc = bb_fail("calls failed", t->errors);
	}
	free(bb.meta);
	bb.meta = NULL;
	bb.zone = NULL;
	bb.locked = NULL;
	return rc;
}

/* ---- the report of what the allocators did ---- */

static double bb_per(uint64_t v, uint64_t pairs)
{
	return pairs ? (double)v / (double)pairs : 0;
}

static void bb_report_row(enum bb_work w, enum bb_alloc a, unsigned n)
{
	const struct bb_tally *y = &bb_tally[w][a][n];

	if (y->runs == 0)
		return;
	printf("%-7s %7u  %-19s %8.3f %8.3f", bb_work_name[w], n,
	       bb_alloc_name[a], bb_per(y->splits, y->pairs),
	       bb_per(y->merges, y->pairs));
	if (a == BB_LOCKED) {
		printf("\n");
		return;
	}
	printf(" %8.3f %8.3f %8.3f %8.3f %8.3f %8llu\n",
	       bb_per(y->stale, y->pairs), bb_per(y->moved, y->pairs),
	       bb_per(y->refills, y->pairs), bb_per(y->drains, y->pairs),
	       bb_per(y->sweeps, y->pairs), (unsigned long long)y->enomem);
}

/* Spurious ENOMEMs of the lock-free buddy, all points, all repeats. */
static uint64_t bb_enomem_total(void)
{
	uint64_t n = 0;

	for (unsigned w = 0; w < BB_NWORK; w++)
		for (unsigned a = 0; a < BB_NALLOC; a++)
			for (unsigned t = 0; t <= BENCH_MAX_THREADS; t++)
				n += bb_tally[w][a][t].enomem;
	return n;
}

uint64_t bench_buddy_work_report(void)
{
	uint64_t enomem = bb_enomem_total();

	printf("work per pair, all repeats: splits and merges of blocks; "
	       "lock-free only: stale\n  and moved stack entries, cache "
	       "refills and drains, stack sweeps, and\n  enomem: allocations "
	       "that failed with BUDDY_ENOMEM (a count, not per pair)\n");
	printf("%-7s %7s  %-19s %8s %8s %8s %8s %8s %8s %8s %8s\n", "bench",
	       "threads", "impl", "splits", "merges", "stale", "moved",
	       "refills", "drains", "sweeps", "enomem");
	for (unsigned w = 0; w < BB_NWORK; w++)
		for (unsigned n = 1; n <= BENCH_MAX_THREADS; n++)
			for (unsigned a = 0; a < BB_NALLOC; a++)
				bb_report_row(w, a, n);
	if (enomem != 0)
		printf("FAILED: the lock-free buddy failed %llu allocations "
		       "with BUDDY_ENOMEM while\n  the zone was almost all "
		       "free: false ENOMEMs\n",
		       (unsigned long long)enomem);
	printf("\n");
	return enomem;
}

/* ---- the implementations ---- */

#define BB_IMPL(var, w, a, wname, aname, is_ours)                              \
	static int var##_setup(unsigned nthreads)                              \
	{                                                                      \
		return bb_setup(w, a, nthreads);                               \
	}                                                                      \
	const struct bench_impl var = {                                        \
		.bench = wname,                                                \
		.impl = aname,                                                 \
		.ours = is_ours,                                               \
		.skip = bb_never_skip,                                         \
		.setup = var##_setup,                                          \
		.thread_init = bb_thread_init,                                 \
		.run = bb_run,                                                 \
		.thread_fini = bb_thread_fini,                                 \
		.check = bb_check,                                             \
	}

#define BB_IMPLS(w, wname)                                                     \
	BB_IMPL(bench_buddy_##wname##_lf, w, BB_LF, #wname, BENCH_BUDDY_LF,    \
		true);                                                         \
	BB_IMPL(bench_buddy_##wname##_nocache, w, BB_NOCACHE, #wname,          \
		BENCH_BUDDY_NOCACHE, false);                                   \
	BB_IMPL(bench_buddy_##wname##_locked, w, BB_LOCKED, #wname,            \
		"locked_buddy", false)

BB_IMPLS(BB_REPEAT, repeat);
BB_IMPLS(BB_BULK, bulk);
BB_IMPLS(BB_CROSS, cross);
BB_IMPLS(BB_MIXED, mixed);
BB_IMPLS(BB_HUGE, huge);
#if BENCH_BUDDY_V3
BB_IMPL(bench_buddy_repeat_norsv, BB_REPEAT, BB_NORSV, "repeat",
	BENCH_BUDDY_NORSV, false);
BB_IMPL(bench_buddy_bulk_norsv, BB_BULK, BB_NORSV, "bulk", BENCH_BUDDY_NORSV,
	false);
#endif
