/*
 * stress_buddy_v3_enomem.c: threads that try to make version 3
 * (lf_buddy_units, both levels) say ENOMEM at order 5 (or below) while a
 * whole unit of 32 frames is free: the guarantee of docs/design.md 2.7,
 * "Exact ENOMEM over reservations" (a reserved unit with every frame free
 * is free memory; the core's failing loop takes such units back inside
 * each quiet window).
 *
 * The threads fill a small zone with blocks of orders 0-4 (lower level:
 * each takes a reservation, often a line of 8 units of which it uses one
 * frame) and 5-7 (core), free them (own frees and cross frees through a
 * mailbox: units go up, core blocks merge), release reservations, and keep
 * the zone at its edge. A budget makes every ENOMEM of order <= 5 a false
 * one: before an allocation a thread adds its cost in units to a shared
 * count of claimed units (1 for orders 0-5, 2^(k-5) above) and gives up if
 * that would exceed the zone; the cost comes off only after the block's
 * free has returned. A held block touches at most its cost in units, so
 * while an allocation of order <= 5 runs, the other claims touch at most
 * N - 1 units: some unit has no frame held at every instant of the call
 * (at the core, in transit, or reserved with every frame free), and ENOMEM
 * there is false. Orders 6-7 may fail legitimately (no two adjacent free
 * units): those failures are only counted. Every frame allocated is
 * stamped with its owner by CAS (nothing handed out twice, B2); at the end
 * everything is freed and drained: the zone whole and fully coalesced.
 * The test fails if it did no allocation at the edge (claims at N when an
 * order-5 allocation ran) or no cross free.
 *
 *
 * Then a race phase (race_run(), below) aims at the one history that
 * the general phase hardly ever produces: a line taken down as another
 * CPU's reservation after an order-5 allocation's first two failing
 * passes, then quiet.
 *
 * Usage: stress_buddy_v3_enomem THREADS OPS_PER_THREAD UNITS RACE_ITERS
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buddy.h"
#include "check.h"
#include "platform_user.h"

#define UNIT_ORDER 5
#define UNIT_FRAMES (1u << UNIT_ORDER)
#define MAXT 8
#define HELD 64
#define MAILBOX 64

struct blk {
	uint64_t addr;
	unsigned order;
};

struct mailbox {
	pthread_mutex_t lock;
	struct blk b[MAILBOX];
	unsigned n;
};

static struct buddy_zone *zone;
static uint64_t units;
static _Atomic uint32_t *owner; /* per frame: thread + 1, or 0 */
static atomic_ulong claims;     /* units claimed by held blocks (budget) */
static struct mailbox mbox[MAXT];
static unsigned nthreads;
static atomic_ulong n_small, n_core, n_edge, n_fail_big, n_cross, n_false;
static atomic_bool finished[MAXT]; /* the thread left its loop */

struct worker {
	unsigned id;
	struct buddy_cpu *c;
	uint64_t rng;
	struct blk held[HELD];
	unsigned nheld;
};

static uint64_t wrnd(struct worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static unsigned long cost(unsigned order)
{
	return order <= UNIT_ORDER ? 1ul : 1ul << (order - UNIT_ORDER);
}

/* Claim cost(order) units of the budget; false if the zone is claimed. */
static bool budget_take(unsigned order)
{
	unsigned long c = cost(order), v = atomic_load(&claims);
	do {
		if (v + c > units)
			return false;
	} while (!atomic_compare_exchange_weak(&claims, &v, v + c));
	return true;
}

static void stamp(const struct blk *b, uint32_t from, uint32_t to)
{
	uint64_t pfn = b->addr / BUDDY_FRAME_SIZE;
	CHECK_FATAL(pfn + (1u << b->order) <= units * UNIT_FRAMES);
	for (uint64_t i = 0; i < 1u << b->order; i++) {
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

/* Free b (its stamp cleared first), then give its cost back. */
static void give_back(struct worker *w, struct blk b, uint32_t stamped)
{
	stamp(&b, stamped, 0);
	CHECK_FATAL(buddy_free(w->c, b.addr, b.order) == BUDDY_OK);
	atomic_fetch_sub(&claims, cost(b.order));
}

static void drain_mailbox(struct worker *w, unsigned i);

static void do_alloc(struct worker *w)
{
	unsigned r = (unsigned)(wrnd(w) % 100);
	/* Half below the core (0-4), most of the rest order 5. */
	unsigned o = r < 50   ? (unsigned)(wrnd(w) % 5)
		     : r < 85 ? UNIT_ORDER
			      : UNIT_ORDER + 1 + (unsigned)(wrnd(w) % 2);
	if (w->nheld == HELD)
		return;
	if (!budget_take(o)) {
		/* The zone claimed: free what waits in a mailbox. */
		drain_mailbox(w, (unsigned)(wrnd(w) % nthreads));
		return;
	}
	bool edge = atomic_load(&claims) == units;
	uint64_t a;
	int rc = buddy_alloc(w->c, o, &a);
	if (rc == BUDDY_OK) {
		struct blk b = { a, o };
		stamp(&b, 0, w->id + 1);
		w->held[w->nheld++] = b;
		atomic_fetch_add(o < UNIT_ORDER ? &n_small : &n_core, 1);
		if (edge && o == UNIT_ORDER)
			atomic_fetch_add(&n_edge, 1);
		return;
	}
	CHECK_EQ(rc, BUDDY_ENOMEM);
	atomic_fetch_sub(&claims, cost(o));
	if (o > UNIT_ORDER) {
		atomic_fetch_add(&n_fail_big, 1);
		return;
	}
	/* A unit had no frame held at every instant of the call. */
	if (atomic_fetch_add(&n_false, 1) < 10)
		fprintf(stderr,
			"false ENOMEM: thread %u, order %u, claims %lu of "
			"%" PRIu64 " units\n",
			w->id, o, atomic_load(&claims), units);
	CHECK(!"false ENOMEM at order <= 5");
}

/* Free a held block here, or hand it to another thread to free. */
static void do_free(struct worker *w)
{
	if (w->nheld == 0)
		return;
	unsigned i = (unsigned)(wrnd(w) % w->nheld);
	struct blk b = w->held[i];
	w->held[i] = w->held[--w->nheld];
	unsigned to = (unsigned)(wrnd(w) % nthreads);
	/* Not to a thread that left its loop: it frees only at the end. */
	if (to != w->id && !atomic_load(&finished[to])) {
		struct mailbox *m = &mbox[to];
		pthread_mutex_lock(&m->lock);
		bool put = m->n < MAILBOX;
		if (put)
			m->b[m->n++] = b;
		pthread_mutex_unlock(&m->lock);
		if (put)
			return; /* still claimed and stamped: freed there */
	}
	give_back(w, b, w->id + 1);
}

/*
 * Free what mailbox i holds (stamped by the threads that allocated it):
 * any thread's, so that blocks handed to a thread the host does not run
 * now do not keep the budget full.
 */
static void drain_mailbox(struct worker *w, unsigned i)
{
	struct mailbox *m = &mbox[i];
	struct blk b[MAILBOX];
	pthread_mutex_lock(&m->lock);
	unsigned n = m->n;
	memcpy(b, m->b, n * sizeof(b[0]));
	m->n = 0;
	pthread_mutex_unlock(&m->lock);
	for (unsigned j = 0; j < n; j++) {
		uint64_t pfn = b[j].addr / BUDDY_FRAME_SIZE;
		uint32_t who =
			atomic_load_explicit(&owner[pfn], memory_order_relaxed);
		give_back(w, b[j], who);
		if (who != w->id + 1)
			atomic_fetch_add(&n_cross, 1);
	}
}

static unsigned long ops_per_thread;
static pthread_barrier_t all_start, all_done;

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	lf_platform_user_set_cpu(w->id);
	pthread_barrier_wait(&all_start);
	for (unsigned long n = 0; n < ops_per_thread; n++) {
		unsigned r = (unsigned)(wrnd(w) % 100);
		if (r < 50)
			do_alloc(w);
		else if (r < 85)
			do_free(w);
		else if (r < 95)
			sched_yield(); /* quiet: others' windows may close */
		else if (r < 98)
			drain_mailbox(w, (unsigned)(wrnd(w) % nthreads));
		else
			buddy_cpu_drain(w->c); /* the reservation released */
	}
	atomic_store(&finished[w->id], true);
	/* Everything back: own blocks, then what others hand over. */
	while (w->nheld > 0) {
		struct blk b = w->held[--w->nheld];
		give_back(w, b, w->id + 1);
	}
	pthread_barrier_wait(&all_done);
	drain_mailbox(w, w->id);
	buddy_cpu_drain(w->c);
	return NULL;
}

/*
 * The race phase, aimed at the history of mc buddy.units_enomem_line: one
 * line of 8 units is left free (main holds the rest with alloc_at).
 * Thread B (context 1) allocates a frame (the line taken down as its
 * reservation: 7 units reserved with every frame free), waits, frees it
 * and releases the reservation (the units go up and merge back into the
 * line), waits; thread A allocates order 5 through context 0 and frees it
 * at once through context 2 (an eager free: it merges, so that the line
 * forms again; a free through context 0 would be deferred). At most two
 * units hold a frame at any instant, so neither ever gets ENOMEM; A's
 * failing passes overlap B's takes and releases (sections) and B's waits
 * (quiet windows).
 */
static atomic_bool race_stop;
static atomic_ulong race_a, race_b, race_false;

static void race_wait(uint64_t *rng, unsigned max)
{
	*rng ^= *rng << 13;
	*rng ^= *rng >> 7;
	*rng ^= *rng << 17;
	for (unsigned i = (unsigned)(*rng % max); i > 0; i--)
		lf_platform_pause();
}

static void *race_a_main(void *arg)
{
	unsigned long iters = (unsigned long)(uintptr_t)arg;
	struct buddy_cpu *c = buddy_zone_cpu(zone, 0);
	struct buddy_cpu *f = buddy_zone_cpu(zone, 2);
	uint64_t rng = 0x2545f4914f6cdd1dull, a;
	lf_platform_user_set_cpu(0);
	for (unsigned long n = 0; n < iters; n++) {
		int rc = buddy_alloc(c, UNIT_ORDER, &a);
		if (rc == BUDDY_OK) {
			atomic_fetch_add(&race_a, 1);
			race_wait(&rng, 64);
			CHECK_FATAL(buddy_free(f, a, UNIT_ORDER) == BUDDY_OK);
			continue;
		}
		CHECK_EQ(rc, BUDDY_ENOMEM);
		if (atomic_fetch_add(&race_false, 1) < 10)
			fprintf(stderr, "race: false ENOMEM at order 5\n");
	}
	atomic_store(&race_stop, true);
	return NULL;
}

static void *race_b_main(void *arg)
{
	(void)arg;
	struct buddy_cpu *c = buddy_zone_cpu(zone, 1);
	uint64_t rng = 0x9e3779b97f4a7c15ull, a;
	lf_platform_user_set_cpu(1);
	while (!atomic_load(&race_stop)) {
		int rc = buddy_alloc(c, 0, &a);
		if (rc == BUDDY_OK) {
			atomic_fetch_add(&race_b, 1);
			race_wait(&rng, 512);
			CHECK_FATAL(buddy_free(c, a, 0) == BUDDY_OK);
		} else {
			CHECK_EQ(rc, BUDDY_ENOMEM);
			if (atomic_fetch_add(&race_false, 1) < 10)
				fprintf(stderr,
					"race: false ENOMEM at order 0\n");
		}
		buddy_cpu_drain(c); /* the line goes up */
		race_wait(&rng, 512);
	}
	return NULL;
}

static void race_run(unsigned long iters)
{
	struct buddy_cpu *m = buddy_zone_cpu(zone, 3);
	const uint64_t ub = (uint64_t)UNIT_FRAMES * BUDDY_FRAME_SIZE;
	for (uint64_t u = 8; u < units; u++)
		CHECK_FATAL(buddy_alloc_at(m, u * ub, UNIT_ORDER) == BUDDY_OK);
	pthread_t ta, tb;
	pthread_create(&tb, NULL, race_b_main, NULL);
	pthread_create(&ta, NULL, race_a_main, (void *)(uintptr_t)iters);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	for (uint64_t u = 8; u < units; u++)
		CHECK_FATAL(buddy_free(m, u * ub, UNIT_ORDER) == BUDDY_OK);
	printf("stress_buddy_v3_enomem: race: %lu order-5 allocations, %lu "
	       "lines down, %lu false ENOMEM\n",
	       atomic_load(&race_a), atomic_load(&race_b),
	       atomic_load(&race_false));
	CHECK_EQ(atomic_load(&race_false), 0);
	CHECK(atomic_load(&race_a) > 0 && atomic_load(&race_b) > 0);
}

int main(int argc, char **argv)
{
	CHECK_FATAL(argc == 5);
	nthreads = (unsigned)atoi(argv[1]);
	ops_per_thread = strtoul(argv[2], NULL, 0);
	units = strtoull(argv[3], NULL, 0);
	unsigned long race_iters = strtoul(argv[4], NULL, 0);
	CHECK_FATAL(nthreads >= 4 && nthreads <= MAXT && ops_per_thread > 0 &&
		    race_iters > 0);
	CHECK_FATAL(units >= 16 && units % 8 == 0);
	struct buddy_region rg = { 0, units * UNIT_FRAMES * BUDDY_FRAME_SIZE };
	size_t need = buddy_meta_size(&rg, 1, nthreads);
	CHECK_FATAL(need != 0);
	void *meta = aligned_alloc(64, (need + 63) & ~(size_t)63);
	owner = calloc(units * UNIT_FRAMES, sizeof(*owner));
	CHECK_FATAL(meta != NULL && owner != NULL);
	CHECK_FATAL(buddy_zone_init(&zone, meta, need, &rg, 1, nthreads) ==
		    BUDDY_OK);
	static struct worker w[MAXT];
	pthread_t t[MAXT];
	pthread_barrier_init(&all_start, NULL, nthreads);
	pthread_barrier_init(&all_done, NULL, nthreads);
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_mutex_init(&mbox[i].lock, NULL);
		w[i] = (struct worker){ .id = i,
					.c = buddy_zone_cpu(zone, i),
					.rng = 0x9e3779b97f4a7c15ull *
					       (i + 1) };
	}
	for (unsigned i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	/* The zone whole: every frame free, fully coalesced, no claim. */
	CHECK_EQ(atomic_load(&claims), 0);
	for (uint64_t f = 0; f < units * UNIT_FRAMES; f++)
		CHECK_EQ(atomic_load(&owner[f]), 0);
	buddy_zone_drain_all(buddy_zone_cpu(zone, 0));
	race_run(race_iters);
	buddy_zone_drain_all(buddy_zone_cpu(zone, 0));
	uint64_t fr;
	CHECK_EQ(buddy_zone_check(zone, true, &fr), 0);
	struct buddy_stats st;
	buddy_zone_stats(zone, &st);
	CHECK_EQ(st.free_frames, units * UNIT_FRAMES);
	printf("stress_buddy_v3_enomem: %u threads x %lu ops, %" PRIu64
	       " units: %lu small and %lu core allocations (%lu of order 5 "
	       "with the zone claimed), %lu cross frees, %lu ENOMEM above "
	       "order 5, %lu false ENOMEM\n",
	       nthreads, ops_per_thread, units, atomic_load(&n_small),
	       atomic_load(&n_core), atomic_load(&n_edge),
	       atomic_load(&n_cross), atomic_load(&n_fail_big),
	       atomic_load(&n_false));
	/* A torture that did nothing, or never reached the edge, fails. */
	CHECK(atomic_load(&n_small) > 0 && atomic_load(&n_core) > 0);
	CHECK(atomic_load(&n_edge) > 0);
	CHECK(atomic_load(&n_cross) > 0);
	free(owner);
	free(meta);
	return check_exit("stress_buddy_v3_enomem");
}
