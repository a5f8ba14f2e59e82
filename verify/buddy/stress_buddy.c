/*
 * stress_buddy.c: the lock-free buddy under several threads, for the tsan
 * and asan presets (a sanitizer report fails the test) and the default one.
 *
 * Each thread plays one CPU (its own struct buddy_cpu) and allocates mixed
 * orders, exact addresses, limited addresses and runs. Every allocated frame
 * is stamped with its owner in a shadow array by CAS from "nobody": a frame
 * handed out twice fails the CAS at once. Blocks are freed by their owner
 * or handed to another thread through its mailbox and freed there (frees on
 * other threads than the allocating one). At the end every thread gives
 * everything back and the zone must be whole: every frame free, fully
 * coalesced (buddy_zone_check with caches drained), allocations == frees.
 *
 * A second mode aims at the race of B6 (docs/design.md): two neighbours
 * freed at the same moment can each see the other as busy and both stay
 * unmerged. Each
 * round allocates every frame as order 0 and has the threads free them at
 * the same moment, in address order, each taking the next frame from a
 * shared counter, so that buddies are freed by different threads side by
 * side; with the caches
 * off. Those frees defer coalescing, so the zone must then satisfy B8 (of
 * any two free buddies, one is in a defer slot), and be fully coalesced
 * (B6) after buddy_zone_coalesce(). Each deferral merges the slot's
 * previous block, so most merges here are eager ones racing each other:
 * without the publish-then-recheck of buddy_core.c B8 fails within a few
 * rounds.
 *
 * A third mode checks that no allocation fails while memory is only in
 * flight: each thread holds at most one block of order ORDER at a time in a
 * zone that is otherwise free, caches off, so every free merges all the way
 * up and every allocation splits all the way down; the zone is one block
 * (setup_one_block), so at times all of its memory is BUSY in one thread's
 * split or merge. A BUDDY_ENOMEM there is spurious. A fourth (exhaust)
 * has the threads take the whole zone at once: ENOMEM must come, to each
 * of them, exactly when every frame is held.
 *
 * Usage: stress_buddy THREADS MILLISECONDS FRAMES
 *        stress_buddy pairs THREADS ROUNDS FRAMES
 *        stress_buddy inflight THREADS ITERATIONS ORDER
 *        stress_buddy exhaust THREADS ROUNDS FRAMES
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buddy.h"
#include "check.h"
#include "platform_user.h"

/*
 * Built with STRESS_SHIFT s > 0 (stress_buddy_units), against the core of
 * buddy version 3 alone (lf_buddy_units): the first mode only, every frame
 * number, order and run length scaled by 2^s (FRAMES counts units).
 */
#ifndef STRESS_SHIFT
#define STRESS_SHIFT 0
#endif
#define G ((uint64_t)1 << STRESS_SHIFT) /* frames per stress frame */
/*
 * Built with STRESS_RSHIFT r > 0 (stress_buddy_v3_exhaust,
 * stress_buddy_v3_inflight), against both levels of version 3
 * (lf_buddy_units): the exhaust and inflight modes only. Exhaust: its
 * regions placed in units of 2^r frames (FRAMES counts units) and its
 * orders unscaled, 0-6: 0-4 through the lower level, 5-6 through the core.
 * Inflight: ORDER unscaled (below 5 a unit comes down from the zone's one
 * block and goes up again at every pair: each thread's free is followed
 * by buddy_zone_drain_all(), which takes every empty reserved unit back,
 * its own and the other threads', and merges the zone whole).
 */
#ifndef STRESS_RSHIFT
#define STRESS_RSHIFT 0
#endif
#define RG ((uint64_t)1 << STRESS_RSHIFT) /* frames per region frame */

#define MAXT 16
#define HELD 256
#define MAILBOX 512

struct blk {
	uint64_t addr;
	uint64_t frames;
	unsigned order; /* a run if frames != 2^order */
	bool run;
};

struct mailbox {
	pthread_mutex_t lock;
	struct blk b[MAILBOX];
	unsigned n;
};

static struct buddy_zone *zone;
static struct buddy_region rg[2];
static _Atomic uint32_t *owner; /* per frame of [0, span): thread + 1 */
static uint64_t span;
static struct mailbox mbox[MAXT];
static unsigned nthreads;
static atomic_bool stop;
static pthread_barrier_t done;
static atomic_ulong ops_total, handoffs;

static void own(const struct blk *b, uint32_t from, uint32_t to)
{
	uint64_t pfn = b->addr / BUDDY_FRAME_SIZE;
	CHECK_FATAL(pfn + b->frames <= span);
	for (uint64_t i = 0; i < b->frames; i++) {
		uint32_t exp = from;
		if (!atomic_compare_exchange_strong_explicit(
			    &owner[pfn + i], &exp, to, memory_order_relaxed,
			    memory_order_relaxed)) {
			fprintf(stderr, "frame %" PRIu64 ": owner %u, not %u\n",
				pfn + i, exp, from);
			CHECK_FATAL(!"a frame handed out twice");
		}
	}
}

struct worker {
	unsigned id;
	struct buddy_cpu *c;
	uint64_t rng;
	struct blk held[HELD];
	unsigned nheld;
	unsigned long ops;
};

static uint64_t wrnd(struct worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static void give_back(struct worker *w, struct blk b)
{
	own(&b, w->id + 1, 0);
	int rc = b.run ? buddy_free_run(w->c, b.addr, b.frames)
		       : buddy_free(w->c, b.addr, b.order);
	CHECK_FATAL(rc == BUDDY_OK);
}

static void take(struct worker *w, uint64_t addr, uint64_t frames,
		 unsigned order, bool run)
{
	struct blk b = { addr, frames, order, run };
	own(&b, 0, w->id + 1);
	if (w->nheld == HELD) {
		unsigned i = (unsigned)(wrnd(w) % HELD);
		give_back(w, w->held[i]);
		w->held[i] = b;
		return;
	}
	w->held[w->nheld++] = b;
}

static void do_alloc(struct worker *w)
{
	unsigned r = (unsigned)(wrnd(w) % 100), o;
	uint64_t a;
	if (r < 70) {
		o = STRESS_SHIFT + (unsigned)(wrnd(w) % 4);
		if (buddy_alloc(w->c, o, &a) == BUDDY_OK)
			take(w, a, (uint64_t)1 << o, o, false);
	} else if (r < 85) {
		o = STRESS_SHIFT + 4 + (unsigned)(wrnd(w) % 6);
		if (buddy_alloc(w->c, o, &a) == BUDDY_OK)
			take(w, a, (uint64_t)1 << o, o, false);
	} else if (r < 90) {
		o = STRESS_SHIFT + (unsigned)(wrnd(w) % 3);
		a = (wrnd(w) % span) * BUDDY_FRAME_SIZE;
		a &= ~((BUDDY_FRAME_SIZE << o) - 1);
		if (buddy_alloc_at(w->c, a, o) == BUDDY_OK)
			take(w, a, (uint64_t)1 << o, o, false);
	} else if (r < 95) {
		o = STRESS_SHIFT + (unsigned)(wrnd(w) % 3);
		uint64_t lim = rg[0].base + rg[0].size / 2;
		if (buddy_alloc_below(w->c, o, lim, &a) == BUDDY_OK) {
			CHECK(a + (BUDDY_FRAME_SIZE << o) <= lim);
			take(w, a, (uint64_t)1 << o, o, false);
		}
	} else {
		uint64_t n = (1 + wrnd(w) % 40) * G;
		if (buddy_alloc_run(w->c, n, &a) == BUDDY_OK)
			take(w, a, n, 0, true);
	}
}

/* Free one held block here, or hand it to another thread to free. */
static void do_free(struct worker *w)
{
	if (w->nheld == 0)
		return;
	unsigned i = (unsigned)(wrnd(w) % w->nheld);
	struct blk b = w->held[i];
	w->held[i] = w->held[--w->nheld];
	unsigned to = (unsigned)(wrnd(w) % nthreads);
	if (to == w->id || nthreads == 1) {
		give_back(w, b);
		return;
	}
	struct mailbox *m = &mbox[to];
	pthread_mutex_lock(&m->lock);
	if (m->n < MAILBOX) {
		own(&b, w->id + 1, to + 1);
		m->b[m->n++] = b;
		pthread_mutex_unlock(&m->lock);
		atomic_fetch_add_explicit(&handoffs, 1, memory_order_relaxed);
		return;
	}
	pthread_mutex_unlock(&m->lock);
	give_back(w, b);
}

static void drain_mailbox(struct worker *w)
{
	struct mailbox *m = &mbox[w->id];
	pthread_mutex_lock(&m->lock);
	while (m->n)
		give_back(w, m->b[--m->n]);
	pthread_mutex_unlock(&m->lock);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	lf_platform_user_set_cpu(w->id);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		for (int i = 0; i < 64; i++) {
			if (wrnd(w) % 2)
				do_alloc(w);
			else
				do_free(w);
			w->ops++;
		}
		drain_mailbox(w);
		if (wrnd(w) % 64 == 0)
			buddy_cpu_drain(w->c);
	}
	pthread_barrier_wait(&done);
	drain_mailbox(w);
	while (w->nheld)
		give_back(w, w->held[--w->nheld]);
	atomic_fetch_add(&ops_total, w->ops);
	return NULL;
}

static void setup(uint64_t frames, unsigned ncpus)
{
	/* Two regions with a hole, the second at an odd frame. */
	uint64_t f = BUDDY_FRAME_SIZE * G * RG;
	rg[0] = (struct buddy_region){ 256 * f, frames / 2 * f };
	uint64_t b1 = 256 + frames / 2 + 77;
	rg[1] = (struct buddy_region){ b1 * f, (frames - frames / 2) * f };
	span = (b1 + frames - frames / 2) * G * RG;
	size_t sz = buddy_meta_size(rg, 2, ncpus);
	void *meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	owner = calloc(span, sizeof(*owner));
	CHECK_FATAL(sz && meta && owner);
	CHECK_FATAL(buddy_zone_init(&zone, meta, sz, rg, 2, ncpus) == BUDDY_OK);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_mutex_init(&mbox[i].lock, NULL);
}

static void verify_end(uint64_t frames)
{
	struct buddy_cpu *c = buddy_zone_cpu(zone, 0);
	buddy_zone_drain_all(c);
	uint64_t fr;
	int inv = buddy_zone_check(zone, true, &fr);
	if (inv)
		fprintf(stderr, "invariant B%d broken at %" PRIu64 "\n", inv,
			fr);
	CHECK_EQ(inv, 0);
	struct buddy_stats st;
	buddy_zone_stats(zone, &st);
	CHECK_EQ(st.free_frames, frames);
	CHECK_EQ(st.cached_frames, 0);
	CHECK_EQ(st.allocs, st.frees);
	CHECK(st.allocs > 0); /* a stress that did nothing fails */
	/* Only alloc_at of a random address in a hole may be refused. */
	CHECK_EQ(st.rejected, st.rejected_by[-BUDDY_ERANGE]);
	for (uint64_t i = 0; i < span; i++)
		CHECK_FATAL(atomic_load(&owner[i]) == 0);
	printf("stress_buddy: %u threads, %lu ops, %lu hand-offs, %" PRIu64
	       " allocs, %" PRIu64 " merges, %" PRIu64 " splits, %" PRIu64
	       " stale, %" PRIu64 " moved, %" PRIu64 " sweeps\n",
	       nthreads, atomic_load(&ops_total), atomic_load(&handoffs),
	       st.allocs, st.merges, st.splits, st.stale, st.moved, st.sweeps);
}

static unsigned inflight_order;
static unsigned long inflight_iters;
static atomic_ulong inflight_fails;

static void *inflight_main(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct buddy_cpu *c = buddy_zone_cpu(zone, id);
	lf_platform_user_set_cpu(id);
	buddy_cpu_cache_enable(c, false);
	for (unsigned long i = 0; i < inflight_iters; i++) {
		uint64_t a;
		if (buddy_alloc(c, inflight_order, &a) != BUDDY_OK) {
			atomic_fetch_add(&inflight_fails, 1);
			continue;
		}
		CHECK_FATAL(buddy_free(c, a, inflight_order) == BUDDY_OK);
		/*
		 * Merge the block just freed now (its free was deferred: B8),
		 * so that the next allocation splits the zone's one block again
		 * and the window this mode is for, every frame BUSY in the
		 * other thread's split or merge, comes at every pair (without
		 * it, 7 splits in 400,000 pairs). Over units, the unit of a
		 * small block is reserved, every frame free, after the free:
		 * the drain takes it (and any other thread's empty one) back
		 * up to the core, so that units are in transit down and up
		 * and reservations are reclaimed while the others look.
		 */
		if (STRESS_RSHIFT)
			buddy_zone_drain_all(c);
		else
			buddy_zone_coalesce(c);
	}
	return NULL;
}

/*
 * One region of 2^16 frames at an address aligned to its size: the whole
 * zone is one free block, so while one thread splits or merges it, no
 * other block exists anywhere (the shape that made allocations fail).
 */
static void setup_one_block(void)
{
	/*
	 * A zone and the owner stamps set up as in the main mode: this mode
	 * needs one region and its own size. Over units: the smallest block
	 * that holds one block of the order for each thread, a unit at least
	 * (order 0, 2 threads: one unit, so that while it comes down, goes up
	 * or sits in a reservation, all of the zone's free memory is there).
	 */
	uint64_t frames = (uint64_t)1 << 16;
	if (STRESS_RSHIFT) {
		frames = RG;
		while (frames < (uint64_t)nthreads << inflight_order)
			frames *= 2;
	}
	rg[0] = (struct buddy_region){ frames * BUDDY_FRAME_SIZE,
				       frames * BUDDY_FRAME_SIZE };
	span = 2 * frames;
	size_t sz = buddy_meta_size(rg, 1, nthreads);
	void *meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	owner = calloc(span, sizeof(*owner));
	CHECK_FATAL(sz && meta && owner);
	CHECK_FATAL(buddy_zone_init(&zone, meta, sz, rg, 1, nthreads) ==
		    BUDDY_OK);
}

static int inflight_run(unsigned long iters, unsigned order)
{
	inflight_order = order;
	inflight_iters = iters;
	setup_one_block();
	pthread_t t[MAXT];
	for (unsigned i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, inflight_main,
			       (void *)(uintptr_t)i);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(atomic_load(&inflight_fails), 0);
	/*
	 * The work was done: most pairs split the zone's block (7 levels);
	 * over units every pair allocated (a unit down, or a steal).
	 */
	struct buddy_stats st;
	buddy_zone_stats(zone, &st);
	if (STRESS_RSHIFT)
		CHECK(st.allocs == (uint64_t)nthreads * iters);
	else
		CHECK(st.splits >= (uint64_t)nthreads * iters);
	uint64_t fr;
	CHECK_EQ(buddy_zone_check(zone, false, &fr), 0);
	buddy_zone_coalesce(buddy_zone_cpu(zone, 0));
	CHECK_EQ(buddy_zone_check(zone, true, &fr), 0);
	printf("stress_buddy inflight: %u threads x %lu of order %u, %" PRIu64
	       " splits, %" PRIu64 " merges\n",
	       nthreads, iters, order, st.splits, st.merges);
	return check_exit("stress_buddy inflight");
}

/*
 * Exhaustion: every thread allocates blocks of mixed orders 0-3 (0-6
 * over both levels of version 3: units taken down by the lower level
 * race the core's allocations, and a failing pass of either level must
 * see the other's moves) until order-0 BUDDY_ENOMEM, all at once, caches
 * on for even threads and off for odd ones. ENOMEM is exact, so by then
 * they must hold every frame of the zone between them (nothing stranded
 * in a cache, no false ENOMEM), and each must get there: a retry that
 * waits for a quiet moment must not keep two failing threads waiting for
 * each other (the test would time out). Then they free everything and
 * the zone must be whole, for ROUNDS rounds.
 */
static pthread_barrier_t ex_go, ex_full, ex_end;
static atomic_ulong ex_frames;

static void ex_round(struct buddy_cpu *c, unsigned id, struct blk *held)
{
	unsigned n = 0;
	uint64_t rng = id * 0x9e3779b97f4a7c15ull + 7, frames = 0;
	for (;;) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		unsigned order = STRESS_RSHIFT ? (unsigned)((rng >> 32) % 7)
					       : (unsigned)(rng >> 62);
		uint64_t a;
		int rc = buddy_alloc(c, order, &a);
		if (rc == BUDDY_ENOMEM && order == 0)
			break;
		if (rc == BUDDY_ENOMEM)
			continue; /* a bigger block may be gone: go on smaller
				   */
		CHECK_FATAL(rc == BUDDY_OK && n < (1u << 16));
		held[n++] =
			(struct blk){ a, (uint64_t)1 << order, order, false };
		frames += (uint64_t)1 << order;
	}
	atomic_fetch_add(&ex_frames, frames);
	pthread_barrier_wait(&ex_full);
	pthread_barrier_wait(&ex_end); /* the main thread counted */
	for (unsigned i = 0; i < n; i++)
		CHECK_FATAL(buddy_free(c, held[i].addr, held[i].order) ==
			    BUDDY_OK);
}

static void *ex_main(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct buddy_cpu *c = buddy_zone_cpu(zone, id);
	struct blk *held = calloc(1u << 16, sizeof(*held));
	CHECK_FATAL(held);
	lf_platform_user_set_cpu(id);
	buddy_cpu_cache_enable(c, id % 2 == 0);
	for (;;) {
		pthread_barrier_wait(&ex_go);
		if (atomic_load(&stop))
			break;
		ex_round(c, id, held);
		pthread_barrier_wait(&ex_go);
	}
	free(held);
	return NULL;
}

static int exhaust_main(unsigned rounds, uint64_t frames)
{
	setup(frames, nthreads);
	pthread_barrier_init(&ex_go, NULL, nthreads + 1);
	pthread_barrier_init(&ex_full, NULL, nthreads + 1);
	pthread_barrier_init(&ex_end, NULL, nthreads + 1);
	pthread_t t[MAXT];
	for (unsigned i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, ex_main, (void *)(uintptr_t)i);
	for (unsigned r = 0; r < rounds; r++) {
		atomic_store(&ex_frames, 0);
		pthread_barrier_wait(&ex_go);
		pthread_barrier_wait(&ex_full);
		CHECK_EQ(atomic_load(&ex_frames), frames * RG);
		pthread_barrier_wait(&ex_end);
		pthread_barrier_wait(&ex_go); /* everything freed */
		uint64_t fr;
		buddy_zone_drain_all(buddy_zone_cpu(zone, 0));
		CHECK_EQ(buddy_zone_check(zone, true, &fr), 0);
	}
	atomic_store(&stop, true);
	pthread_barrier_wait(&ex_go);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	printf("stress_buddy exhaust: %u threads, %u rounds of %" PRIu64
	       " frames\n",
	       nthreads, rounds, frames * RG);
	return check_exit("stress_buddy exhaust");
}

static uint64_t *pair_addr;
static uint64_t pair_n;
static atomic_ulong pair_next;
static pthread_barrier_t pair_go, pair_end;

static void *pair_main(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct buddy_cpu *c = buddy_zone_cpu(zone, id);
	lf_platform_user_set_cpu(id);
	buddy_cpu_cache_enable(c, false);
	for (;;) {
		pthread_barrier_wait(&pair_go);
		if (atomic_load(&stop))
			return NULL;
		/* Consecutive frames go to whichever threads ask at once. */
		uint64_t i;
		while ((i = atomic_fetch_add(&pair_next, 1)) < pair_n)
			CHECK_FATAL(buddy_free(c, pair_addr[i], 0) == BUDDY_OK);
		pthread_barrier_wait(&pair_end);
	}
}

static int pair_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Allocate every frame as order 0, from the main thread's context. */
static void pair_fill(struct buddy_cpu *c)
{
	for (uint64_t i = 0; i < pair_n; i++)
		CHECK_FATAL(buddy_alloc(c, 0, &pair_addr[i]) == BUDDY_OK);
	uint64_t a;
	CHECK_FATAL(buddy_alloc(c, 0, &a) == BUDDY_ENOMEM);
	/* Sorted: neighbours are freed one right after the other. */
	qsort(pair_addr, pair_n, sizeof(*pair_addr), pair_cmp);
}

static int pairs_main(unsigned rounds, uint64_t frames)
{
	setup(frames, nthreads + 1); /* the main thread is CPU nthreads */
	pair_n = frames;
	pair_addr = calloc(frames, sizeof(*pair_addr));
	CHECK_FATAL(pair_addr);
	struct buddy_cpu *c0 = buddy_zone_cpu(zone, nthreads);
	buddy_cpu_cache_enable(c0, false);
	pthread_barrier_init(&pair_go, NULL, nthreads + 1);
	pthread_barrier_init(&pair_end, NULL, nthreads + 1);
	pthread_t t[MAXT];
	for (unsigned i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, pair_main, (void *)(uintptr_t)i);
	unsigned bad = 0;
	for (unsigned r = 0; r < rounds && !bad; r++) {
		pair_fill(c0);
		atomic_store(&pair_next, 0);
		pthread_barrier_wait(&pair_go);
		pthread_barrier_wait(&pair_end);
		uint64_t fr;
		/* B8 at once (frees defer), then B6 once coalesced. */
		int inv = buddy_zone_check(zone, false, &fr);
		if (inv == 0) {
			buddy_zone_coalesce(c0);
			inv = buddy_zone_check(zone, true, &fr);
		}
		if (inv) {
			fprintf(stderr,
				"round %u: invariant B%d broken at %" PRIu64
				"\n",
				r, inv, fr);
			bad++;
		}
	}
	atomic_store(&stop, true);
	pthread_barrier_wait(&pair_go);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(bad, 0);
	struct buddy_stats st;
	buddy_zone_stats(zone, &st);
	CHECK_EQ(st.free_frames, frames);
	printf("stress_buddy pairs: %u threads, %u rounds of %" PRIu64
	       " frames, %" PRIu64 " merges\n",
	       nthreads, rounds, frames, st.merges);
	return check_exit("stress_buddy pairs");
}

int main(int argc, char **argv)
{
	/* The other modes use order 0: not the core's alone. */
	CHECK_FATAL(
		STRESS_SHIFT == 0 || argc < 2 ||
		(argv[1][0] != 'p' && argv[1][0] != 'i' && argv[1][0] != 'e'));
	/* Over both levels of version 3: the exhaust and inflight modes. */
	CHECK_FATAL(STRESS_RSHIFT == 0 ||
		    (argc == 5 && (!strcmp(argv[1], "exhaust") ||
				   !strcmp(argv[1], "inflight"))));
	if (argc == 5 && !strcmp(argv[1], "inflight")) {
		nthreads = (unsigned)atoi(argv[2]);
		CHECK_FATAL(nthreads >= 1 && nthreads <= MAXT);
		return inflight_run(strtoul(argv[3], NULL, 0),
				    (unsigned)atoi(argv[4]));
	}
	if (argc == 5 && !strcmp(argv[1], "exhaust")) {
		nthreads = (unsigned)atoi(argv[2]);
		CHECK_FATAL(nthreads >= 1 && nthreads <= MAXT);
		return exhaust_main((unsigned)atoi(argv[3]),
				    strtoull(argv[4], NULL, 0));
	}
	if (argc == 5 && !strcmp(argv[1], "pairs")) {
		nthreads = (unsigned)atoi(argv[2]);
		CHECK_FATAL(nthreads >= 1 && nthreads < MAXT);
		return pairs_main((unsigned)atoi(argv[3]),
				  strtoull(argv[4], NULL, 0));
	}
	nthreads = argc > 1 ? (unsigned)atoi(argv[1]) : 4;
	unsigned ms = argc > 2 ? (unsigned)atoi(argv[2]) : 2000;
	uint64_t frames = argc > 3 ? strtoull(argv[3], NULL, 0) : 4096;
	CHECK_FATAL(nthreads >= 1 && nthreads <= MAXT && frames >= 64);
	setup(frames, nthreads);
	pthread_barrier_init(&done, NULL, nthreads + 1);
	static struct worker w[MAXT];
	pthread_t t[MAXT];
	for (unsigned i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ .id = i,
					.c = buddy_zone_cpu(zone, i),
					.rng = 0x1234567ull * (i + 1) };
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	struct timespec d = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&d, NULL);
	atomic_store(&stop, true);
	pthread_barrier_wait(&done);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	verify_end(frames * G);
	return check_exit("stress_buddy");
}
