/*
 * test_buddy_preempt.c: the lock-free buddy with another CPU's whole call
 * injected before each atomic step of a free (verify/preempt.h: the buddy
 * and lockfree sources are compiled into this test with every atomic
 * operation interposed). Deterministic: every step, every preset. Caches
 * off, so every call goes through the core.
 *
 *   B6  two buddies freed at the same moment: the free of A preempted at
 *       step n by the whole free of its buddy B on another CPU, for every
 *       n: the zone must end fully coalesced, one free block (the race
 *       of B6 in docs/design.md: two neighbours freed at the same moment
 *       can each see the other as busy and both stay unmerged);
 *   B2  a free racing an allocation of its buddy: the free of A preempted
 *       at step n by an allocation of A's order on another CPU (which can
 *       only get B, or A once merged and split again): the block it got
 *       must be allocated to it and stay so (a merge that takes B without
 *       claiming it makes it part of a free block while allocated), the
 *       zone must pass buddy_zone_check, and once the block is freed too,
 *       be whole again.
 * For orders 0 and 3, A the lower or the upper buddy, and each free two
 * ways: buddy_free() of the block each context allocated last, which
 * defers coalescing (the zone must then satisfy B8 at once, every unmerged
 * pair has a member in a defer slot, and be whole after
 * buddy_zone_coalesce()), and buddy_free_run() of the one block, which
 * merges at once (the zone must be whole with no help: the
 * publish-then-recheck of B6).
 *
 * And the placement calls and the exactness of ENOMEM and EBUSY:
 *   run tail  alloc_run of 3 frames in a 4-frame zone preempted at step n
 *             by an order-0 allocation: a frame is free at every instant
 *             (all 4 before the run, its tail after), so the allocation
 *             may wait for the run but never fail with ENOMEM;
 *   window    an allocation on CPU 0 while X sits in CPU 2's cache;
 *             preempted at step n1 by CPU 2 freeing Y into its cache and
 *             taking X (CPU 0's drain put it in the core), and n2 steps
 *             later by CPU 1 draining every cache (Y to the core): a
 *             block is free at every instant, so it must succeed;
 *   at merge  the free of A (merging with its free buddies) preempted at
 *             step n by alloc_at of a range that is free at every
 *             instant: it may wait for the merge, never fail with EBUSY
 *             (allowed 1,000 spins: more than any retry bound);
 *   free_run  free_run of a run of 7 frames preempted at step n by a
 *             double free of one of its later pieces on CPU 1: exactly
 *             one of the two succeeds on that piece, and a free_run that
 *             fails leaves every other piece allocated (it changes
 *             nothing).
 *   double    an eager free whose buddy is free preempted at step n by a
 *             double free of its block (exactly one succeeds) or by a
 *             free of the free buddy (always EDOUBLE, also while the
 *             merge has made the upper buddy a tail no head covers yet).
 */
#include <string.h>

#include "buddy.h"
#include "buddy_i.h"
#include "check.h"
#include "preempt.h"

#define NCPUS 3
#define BASE ((uint64_t)0x200000) /* aligned to order 9 */
#define F BUDDY_FRAME_SIZE

static struct buddy_zone *z;
static struct buddy_cpu *c0, *c1, *c2;
static void *meta;
static uint64_t frames;        /* of the one region */
static bool eager;             /* frees merge at once (buddy_free_run) */
static bool eager_free;        /* ... by buddy_free (buddy_free_eager) */
static unsigned deferred_seen; /* deferred pass: zones not coalesced */

/*
 * Give context c the block at a of this order the way the pass under test
 * needs it: deferred frees defer only the block a context allocated last
 * with buddy_alloc(), so that is how it gets it (the zone hands out its
 * lowest free block of the order first); eager ones take it with alloc_at.
 */
static void do_take(struct buddy_cpu *c, uint64_t a, unsigned order)
{
	if (eager) {
		CHECK_EQ(buddy_alloc_at(c, a, order), BUDDY_OK);
		return;
	}
	uint64_t got = 0;
	CHECK_EQ(buddy_alloc(c, order, &got), BUDDY_OK);
	CHECK_EQ(got, a);
}

/* Free a block of this order the way the pass under test frees. */
static int do_free(struct buddy_cpu *c, uint64_t a, unsigned order)
{
	/* Blocks taken with alloc_at free eagerly through buddy_free. */
	return eager && !eager_free ? buddy_free_run(c, a, (uint64_t)1 << order)
				    : buddy_free(c, a, order);
}

static void setup(unsigned order)
{
	frames = (uint64_t)2 << order;
	struct buddy_region rg = { BASE, frames * BUDDY_FRAME_SIZE };
	size_t sz = buddy_meta_size(&rg, 1, NCPUS);
	free(meta);
	meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(meta);
	CHECK_FATAL(buddy_zone_init(&z, meta, sz, &rg, 1, NCPUS) == BUDDY_OK);
	c0 = buddy_zone_cpu(z, 0);
	c1 = buddy_zone_cpu(z, 1);
	c2 = buddy_zone_cpu(z, 2); /* its cache stays on */
	buddy_cpu_cache_enable(c0, false);
	buddy_cpu_cache_enable(c1, false);
}

/* The zone is one free block again: checked, coalesced, counted. */
static bool whole(unsigned order)
{
	uint64_t f = 0;
	int inv = eager ? 0 : buddy_zone_check(z, false, &f);
	if (inv == 0 && !eager) {
		/* Work done: some pair was left unmerged by a deferral. */
		deferred_seen += buddy_zone_check(z, true, &f) == 6;
		buddy_zone_coalesce(c0);
	}
	if (inv == 0)
		inv = buddy_zone_check(z, true, &f);
	struct buddy_stats st;
	buddy_zone_stats(z, &st);
	if (inv != 0)
		fprintf(stderr, "  zone: invariant B%d broken at %#llx\n", inv,
			(unsigned long long)f);
	return inv == 0 && st.free_frames == frames &&
	       st.free_blocks[order + 1] == 1;
}

struct pair {
	unsigned order;
	uint64_t a, b; /* the two buddies */
	int rc_b;      /* the preempting call's result */
	uint64_t got;  /* what the preempting allocation got */
	bool ran;      /* it completed (was not blocked) */
};

static void pair_init(struct pair *p, unsigned order, bool a_lower)
{
	uint64_t lo = BASE, hi = BASE + (BUDDY_FRAME_SIZE << order);
	*p = (struct pair){ .order = order,
			    .a = a_lower ? lo : hi,
			    .b = a_lower ? hi : lo };
}

/*
 * c0 gets A and, if b_allocated, c1 gets B: each frees its own. In the
 * deferred pass they take them with buddy_alloc() (a free defers only the
 * block its context allocated last), the lower buddy first, as the zone
 * hands out its lowest free block first. A alone as the upper buddy cannot
 * be had that way: alloc_at takes it, and its free merges at once (the B2
 * test checks who owns what, not deferral).
 */
static void pair_take(struct pair *p, bool b_allocated)
{
	bool a_low = p->a < p->b;
	if (b_allocated && !a_low) {
		do_take(c1, p->b, p->order);
		do_take(c0, p->a, p->order);
	} else if (b_allocated) {
		do_take(c0, p->a, p->order);
		do_take(c1, p->b, p->order);
	} else if (a_low || eager) {
		do_take(c0, p->a, p->order);
	} else {
		CHECK_EQ(buddy_alloc_at(c0, p->a, p->order), BUDDY_OK);
	}
}

/* ---- B6: the two buddies freed at the same moment ---- */

static void nested_free_b(void *arg)
{
	struct pair *p = arg;
	p->rc_b = do_free(c1, p->b, p->order);
	p->ran = true;
}

static unsigned long free_ops(struct pair *p, bool b_allocated)
{
	setup(p->order);
	pair_take(p, b_allocated);
	preempt_arm(0, NULL, NULL); /* count only */
	CHECK_EQ(do_free(c0, p->a, p->order), BUDDY_OK);
	unsigned long k = preempt_count();
	CHECK(k > 0);
	return k;
}

static void test_pair(unsigned order, bool a_lower)
{
	struct pair p;
	pair_init(&p, order, a_lower);
	unsigned long k = free_ops(&p, true);
	for (unsigned long n = 1; n <= k + 1; n++) {
		setup(order);
		pair_take(&p, true);
		p.ran = false;
		preempt_arm(n, nested_free_b, &p);
		CHECK_EQ(do_free(c0, p.a, order), BUDDY_OK);
		if (!preempt_disarm())
			nested_free_b(&p);
		CHECK_EQ(p.rc_b, BUDDY_OK);
		if (!whole(order)) {
			fprintf(stderr,
				"B6: order %u, %s free of %s buddy "
				"preempted at step %lu of %lu by the other's "
				"free: not coalesced\n",
				order, eager ? "eager" : "deferred",
				a_lower ? "lower" : "upper", n, k);
			CHECK(!"fully coalesced after both frees");
		}
	}
}

/* ---- B2: a free against an allocation of its buddy ---- */

static void nested_alloc_op(void *arg)
{
	struct pair *p = arg;
	p->rc_b = buddy_alloc(c1, p->order, &p->got);
}

static void nested_alloc(void *arg)
{
	struct pair *p = arg;
	/* Blocked (retrying while A is in flight): abandoned. */
	p->ran = preempt_nested_try(nested_alloc_op, p);
}

static void test_free_vs_alloc(unsigned order, bool a_lower)
{
	struct pair p;
	pair_init(&p, order, a_lower);
	unsigned long k = free_ops(&p, false);
	for (unsigned long n = 1; n <= k + 1; n++) {
		setup(order);
		pair_take(&p, false);
		p.ran = false;
		p.rc_b = BUDDY_ENOMEM;
		preempt_arm(n, nested_alloc, &p);
		CHECK_EQ(do_free(c0, p.a, order), BUDDY_OK);
		if (!preempt_disarm())
			nested_alloc(&p);
		if (p.ran && p.rc_b == BUDDY_OK) {
			unsigned kind = 0, o = 0;
			CHECK_EQ(buddy_zone_frame(z, p.got, &kind, &o),
				 BUDDY_OK);
			if (kind != BUDDY_FRAME_ALLOC || o != order)
				fprintf(stderr,
					"B2: order %u, free of %s "
					"buddy preempted at step %lu of %lu "
					"by an allocation that got %#llx: "
					"now kind %u order %u\n",
					order, a_lower ? "lower" : "upper", n,
					k, (unsigned long long)p.got, kind, o);
			CHECK_EQ(kind, BUDDY_FRAME_ALLOC);
			CHECK_EQ(o, order);
			uint64_t f = 0;
			CHECK_EQ(buddy_zone_check(z, false, &f), 0);
			/*
			 * buddy_free would defer it (c1 allocated it last):
			 * the eager passes free it eagerly, so that the zone
			 * must be whole with no coalescing.
			 */
			CHECK_EQ(eager ? buddy_free_run(c1, p.got,
							(uint64_t)1 << order)
				       : buddy_free(c1, p.got, order),
				 BUDDY_OK);
		}
		CHECK(whole(order));
	}
}

/* ---- ENOMEM: alloc_run gives its tail back inside its section ---- */

struct race {
	unsigned order;
	uint64_t addr; /* the nested call's block */
	int rc;        /* its result */
	bool ran;      /* it completed (was not abandoned) */
};

static void nested_alloc_c1_op(void *arg)
{
	/*
	 * Shaped like nested_alloc_op(): the same injected allocation, by the
	 * race's other context.
	 */
	struct race *q = arg;
	q->rc = buddy_alloc(c1, q->order, &q->addr);
}

static void nested_alloc_c1(void *arg)
{
	struct race *q = arg;
	q->ran = preempt_nested_try(nested_alloc_c1_op, q);
}

static void test_run_tail(void)
{
	uint64_t a;
	setup(1); /* 4 frames, one block of order 2 */
	preempt_arm(0, NULL, NULL);
	CHECK_EQ(buddy_alloc_run(c0, 3, &a), BUDDY_OK);
	unsigned long k = preempt_count();
	for (unsigned long n = 1; n <= k + 1; n++) {
		setup(1);
		struct race q = { .order = 0, .rc = BUDDY_OK };
		preempt_arm(n, nested_alloc_c1, &q);
		int rc = buddy_alloc_run(c0, 3, &a);
		if (!preempt_disarm())
			nested_alloc_c1(&q);
		if (rc != BUDDY_OK) {
			/* The allocation split the block first: fair. */
			CHECK_EQ(rc, BUDDY_ENOMEM);
			CHECK(q.ran && q.rc == BUDDY_OK);
			CHECK_EQ(buddy_free(c1, q.addr, 0), BUDDY_OK);
			CHECK(whole(1));
			continue;
		}
		CHECK_EQ(a, BASE);
		if (q.ran && q.rc != BUDDY_OK) {
			fprintf(stderr,
				"run tail: alloc_run(3) preempted at step %lu "
				"of %lu by an order-0 alloc: %d, with a "
				"frame free at every instant\n",
				n, k, q.rc);
			CHECK(!"no ENOMEM while the run's tail is free");
		}
		if (q.ran && q.rc == BUDDY_OK) {
			CHECK_EQ(q.addr, BASE + 3 * F);
			CHECK_EQ(buddy_free(c1, q.addr, 0), BUDDY_OK);
		}
		CHECK_EQ(buddy_free_run(c0, a, 3), BUDDY_OK);
		CHECK(whole(1));
	}
}

/* ---- ENOMEM: every cache is seen empty inside the quiet window ---- */

static struct {
	unsigned long n2; /* fire the drain this many steps after fn1 */
	bool fn1_done;    /* Y freed into CPU 2's cache, X taken by CPU 2 */
	bool fn2_ran;     /* CPU 1 drained every cache */
	uint64_t x;       /* what CPU 2's order-1 allocation got */
} win;

/* No cache lock held by the preempted call (a nested one would wait). */
static bool cache_locks_free(void)
{
	struct buddy_cpu *cs[] = { c0, c1, c2 };
	for (unsigned i = 0; i < 3; i++)
		/* Relaxed: single-threaded; only a peek at the flag. */
		if (lf_spin_held(&cs[i]->lock, LF_RELAXED))
			return false;
	return true;
}

static void window_drain(void *arg)
{
	(void)arg;
	if (!cache_locks_free())
		return;
	buddy_zone_drain_all(c1);
	win.fn2_ran = true;
}

static void window_alloc_x(void *arg)
{
	(void)arg;
	win.x = 0;
	if (buddy_alloc(c2, 1, &win.x) != BUDDY_OK)
		win.x = 0;
}

static void window_free_take(void *arg)
{
	(void)arg;
	if (!cache_locks_free())
		return;
	/* Y, allocated, freed into CPU 2's cache: free from now on. */
	CHECK_EQ(buddy_free(c2, BASE, 0), BUDDY_OK);
	/* Then X, free (in the core since CPU 0's drain), taken. */
	if (!preempt_nested_try(window_alloc_x, NULL) || win.x != BASE + 2 * F)
		return;
	win.fn1_done = true;
	preempt_arm(win.n2, window_drain, NULL);
}

/* 4 frames: Y (0) and 1 allocated by CPU 2, X (2-3) in CPU 2's cache. */
static void window_setup(void)
{
	setup(1);
	CHECK_EQ(buddy_alloc_at(c2, BASE, 0), BUDDY_OK);
	CHECK_EQ(buddy_alloc_at(c2, BASE + F, 0), BUDDY_OK);
	CHECK_EQ(buddy_alloc_at(c2, BASE + 2 * F, 1), BUDDY_OK);
	buddy_zone_sweep(c2); /* alloc_at's stale entries: X can be cached */
	CHECK_EQ(buddy_free(c2, BASE + 2 * F, 1), BUDDY_OK);
	struct buddy_stats st;
	buddy_zone_stats(z, &st);
	CHECK_FATAL(st.cached_frames == 2);
}

static void test_window(void)
{
	uint64_t a;
	window_setup();
	preempt_arm(0, NULL, NULL);
	CHECK_EQ(buddy_alloc(c0, 0, &a), BUDDY_OK);
	unsigned long k = preempt_count(), cases = 0;
	for (unsigned long n1 = 1; n1 <= k; n1++) {
		for (unsigned long n2 = 1;; n2++) {
			window_setup();
			win.n2 = n2;
			win.fn1_done = win.fn2_ran = false;
			preempt_arm(n1, window_free_take, NULL);
			int rc = buddy_alloc(c0, 0, &a);
			preempt_disarm();
			if (!win.fn1_done)
				break; /* not this n1: X was not in the core */
			cases++;
			if (rc != BUDDY_OK) {
				fprintf(stderr,
					"window: alloc preempted at step %lu "
					"(Y freed, X taken) and %lu steps "
					"later (every cache drained): %d, "
					"with a block free at every instant\n",
					n1, n2, rc);
				CHECK(!"no ENOMEM while a block is free");
			}
			uint64_t f = 0;
			CHECK_EQ(buddy_zone_check(z, false, &f), 0);
			if (!win.fn2_ran)
				break; /* n2 past the end of the call */
		}
	}
	CHECK(cases > 0); /* the scenario happened */
}

/* ---- EBUSY: alloc_at against a merge that holds its range BUSY ---- */

static void nested_at_op(void *arg)
{
	struct race *q = arg;
	q->rc = buddy_alloc_at(c1, q->addr, q->order);
}

static void nested_at(void *arg)
{
	struct race *q = arg;
	q->ran = preempt_nested_try_spins(nested_at_op, q, 1000);
}

static void test_at_merge(uint64_t at, unsigned order)
{
	setup(1); /* 4 frames */
	CHECK_EQ(buddy_alloc_at(c0, BASE, 0), BUDDY_OK);
	preempt_arm(0, NULL, NULL);
	CHECK_EQ(buddy_free(c0, BASE, 0), BUDDY_OK); /* merges up to 2 */
	unsigned long k = preempt_count();
	for (unsigned long n = 1; n <= k + 1; n++) {
		setup(1);
		CHECK_EQ(buddy_alloc_at(c0, BASE, 0), BUDDY_OK);
		struct race q = { .order = order, .addr = at, .rc = BUDDY_OK };
		preempt_arm(n, nested_at, &q);
		CHECK_EQ(buddy_free(c0, BASE, 0), BUDDY_OK);
		if (!preempt_disarm())
			nested_at(&q);
		if (q.ran && q.rc != BUDDY_OK) {
			fprintf(stderr,
				"at merge: free preempted at step %lu of %lu "
				"by alloc_at(%#llx, %u): %d, for a range "
				"free at every instant\n",
				n, k, (unsigned long long)at, order, q.rc);
			CHECK(!"no EBUSY for a range nobody allocated");
		}
		if (q.ran && q.rc == BUDDY_OK)
			CHECK_EQ(buddy_free(c1, at, order), BUDDY_OK);
		else
			CHECK_EQ(buddy_alloc_at(c1, at, order), BUDDY_OK);
		if (!(q.ran && q.rc == BUDDY_OK))
			CHECK_EQ(buddy_free(c1, at, order), BUDDY_OK);
		CHECK(whole(1));
	}
}

/* ---- free_run: a failing free_run changes nothing ---- */

static const struct {
	uint64_t off;
	unsigned order;
} run7[] = { { 0, 2 }, { 4, 1 }, { 6, 0 } }; /* the pieces of a run of 7 */

static void nested_piece_free(void *arg)
{
	struct race *q = arg;
	q->rc = buddy_free(c1, q->addr, q->order);
	q->ran = true;
}

static void test_free_run_race(unsigned victim)
{
	uint64_t a;
	setup(2); /* 8 frames */
	CHECK_EQ(buddy_alloc_run(c0, 7, &a), BUDDY_OK);
	preempt_arm(0, NULL, NULL);
	CHECK_EQ(buddy_free_run(c0, a, 7), BUDDY_OK);
	unsigned long k = preempt_count();
	for (unsigned long n = 1; n <= k + 1; n++) {
		setup(2);
		CHECK_EQ(buddy_alloc_run(c0, 7, &a), BUDDY_OK);
		CHECK_EQ(a, BASE);
		struct race q = { .order = run7[victim].order,
				  .addr = a + run7[victim].off * F,
				  .rc = BUDDY_OK };
		preempt_arm(n, nested_piece_free, &q);
		int rc = buddy_free_run(c0, a, 7);
		if (!preempt_disarm())
			nested_piece_free(&q);
		/* The piece is freed exactly once. */
		CHECK((rc == BUDDY_OK) != (q.rc == BUDDY_OK));
		if (rc == BUDDY_OK)
			CHECK_EQ(q.rc, BUDDY_EDOUBLE);
		if (rc != BUDDY_OK) {
			CHECK_EQ(rc, BUDDY_EDOUBLE);
			for (unsigned i = 0; i < 3; i++) {
				if (i == victim)
					continue;
				uint64_t pa = a + run7[i].off * F;
				unsigned kind = 0, o = 0;
				CHECK_EQ(buddy_zone_frame(z, pa, &kind, &o),
					 BUDDY_OK);
				if (kind != BUDDY_FRAME_ALLOC ||
				    o != run7[i].order) {
					fprintf(stderr,
						"free_run: preempted at step "
						"%lu of %lu by a double free "
						"of piece %u: failed (%d) "
						"but piece %u is now kind %u "
						"order %u\n",
						n, k, victim, rc, i, kind, o);
					CHECK(!"a failed free_run changes "
					       "nothing");
					continue;
				}
				CHECK_EQ(buddy_free(c0, pa, run7[i].order),
					 BUDDY_OK);
			}
		}
		CHECK(whole(2));
	}
}

/*
 * An eager free of X whose buddy is free (buddy_free: it claims the buddy
 * first, then X in one CAS) against a double free of X on another CPU at
 * every atomic step: exactly one succeeds, the other gets EDOUBLE, and if
 * the first lost after claiming the buddy it gave the buddy back, so the
 * zone ends whole (B1, B4, B6).
 */
static void test_free_double(unsigned order, bool x_lower)
{
	uint64_t lo = BASE, hi = BASE + (BUDDY_FRAME_SIZE << order);
	struct race q = { .order = order, .addr = x_lower ? lo : hi };
	setup(order);
	CHECK_EQ(buddy_alloc_at(c0, q.addr, order), BUDDY_OK);
	preempt_arm(0, NULL, NULL);
	CHECK_EQ(buddy_free(c0, q.addr, order), BUDDY_OK);
	unsigned long k = preempt_count();
	CHECK(k > 0);
	for (unsigned long n = 1; n <= k + 1; n++) {
		setup(order);
		CHECK_EQ(buddy_alloc_at(c0, q.addr, order), BUDDY_OK);
		q.rc = BUDDY_OK;
		q.ran = false;
		preempt_arm(n, nested_piece_free, &q);
		int rc = buddy_free(c0, q.addr, order);
		if (!preempt_disarm())
			nested_piece_free(&q);
		CHECK((rc == BUDDY_OK) != (q.rc == BUDDY_OK));
		CHECK(rc == BUDDY_OK || rc == BUDDY_EDOUBLE);
		CHECK(q.rc == BUDDY_OK || q.rc == BUDDY_EDOUBLE);
		if (!whole(order)) {
			fprintf(stderr,
				"eager free of the %s buddy preempted at step "
				"%lu of %lu by a double free: not whole\n",
				x_lower ? "lower" : "upper", n, k);
			CHECK(!"whole after a free and a double free");
		}
	}
}

/*
 * The same eager free of X against a free of its buddy B, which is free
 * all along (bad input: EDOUBLE) on another CPU at every atomic step. The
 * merge makes the upper buddy a tail before the lower one's word covers
 * it: a frame that no head covers, which must read as free (EDOUBLE), not
 * as part of an allocated block (ETAIL, the code of the free_why fallback
 * before). The free of X succeeds and the zone ends whole.
 */
static void test_free_buddy_bogus(unsigned order, bool x_lower)
{
	uint64_t lo = BASE, hi = BASE + (BUDDY_FRAME_SIZE << order);
	uint64_t x = x_lower ? lo : hi;
	struct race q = { .order = order, .addr = x_lower ? hi : lo };
	setup(order);
	CHECK_EQ(buddy_alloc_at(c0, x, order), BUDDY_OK);
	preempt_arm(0, NULL, NULL);
	CHECK_EQ(buddy_free(c0, x, order), BUDDY_OK);
	unsigned long k = preempt_count();
	CHECK(k > 0);
	for (unsigned long n = 1; n <= k + 1; n++) {
		setup(order);
		CHECK_EQ(buddy_alloc_at(c0, x, order), BUDDY_OK);
		q.rc = BUDDY_OK;
		preempt_arm(n, nested_piece_free, &q);
		int rc = buddy_free(c0, x, order);
		if (!preempt_disarm())
			nested_piece_free(&q);
		CHECK_EQ(rc, BUDDY_OK);
		if (q.rc != BUDDY_EDOUBLE) {
			fprintf(stderr,
				"free of the free %s buddy during the eager "
				"free of the other, at step %lu of %lu: %d, "
				"not EDOUBLE\n",
				x_lower ? "upper" : "lower", n, k, q.rc);
			CHECK_EQ(q.rc, BUDDY_EDOUBLE);
		}
		CHECK(whole(order));
	}
}

int main(void)
{
	static const unsigned orders[] = { 0, 3 };
	for (int e = 0; e < 3; e++) {
		eager = e != 0;
		eager_free = e == 2;
		for (unsigned i = 0; i < 2; i++) {
			for (int lower = 0; lower < 2; lower++) {
				test_pair(orders[i], lower);
				test_free_vs_alloc(orders[i], lower);
			}
		}
	}
	/* The deferred pass must have deferred (else it tested B6 twice). */
	CHECK(deferred_seen > 0);
	eager = eager_free = false;
	test_run_tail();
	test_window();
	test_at_merge(BASE + F, 0);
	test_at_merge(BASE + 2 * F, 1);
	test_free_run_race(1);
	test_free_run_race(2);
	for (unsigned i = 0; i < 2; i++) {
		test_free_double(orders[i], true);
		test_free_double(orders[i], false);
		test_free_buddy_bogus(orders[i], true);
		test_free_buddy_bogus(orders[i], false);
	}
	free(meta);
	return check_exit("test_buddy_preempt");
}
