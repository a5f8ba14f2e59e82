/*
 * test_buddy_preempt.c: the lock-free buddy with another CPU's whole call
 * injected before each atomic step of a free (verify/preempt.h: the buddy
 * and lockfree sources are compiled into this test with every atomic
 * operation interposed). Deterministic: every step, every preset. Caches
 * off, so every call goes through the core.
 *
 *   B6  two buddies freed at the same moment: the free of A preempted at
 *       step n by the whole free of its buddy B on another CPU, for every
 *       n: the zone must end fully coalesced, one free block (the race of
 *       HARD-PARTS: "two neighbours freed at the same moment can each see
 *       the other as busy and both stay unmerged");
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
 */
#include <string.h>

#include "buddy.h"
#include "check.h"
#include "preempt.h"

#define NCPUS 2
#define BASE ((uint64_t)0x200000) /* aligned to order 9 */

static struct buddy_zone *z;
static struct buddy_cpu *c0, *c1;
static void *meta;
static uint64_t frames; /* of the one region */
static bool eager;      /* frees merge at once (buddy_free_run) */
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
	return eager ? buddy_free_run(c, a, (uint64_t)1 << order)
		     : buddy_free(c, a, order);
}

static void setup(unsigned order)
{
	frames = (uint64_t)2 << order;
	struct buddy_region rg = {BASE, frames * BUDDY_FRAME_SIZE};
	size_t sz = buddy_meta_size(&rg, 1, NCPUS);
	free(meta);
	meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(meta);
	CHECK_FATAL(buddy_zone_init(&z, meta, sz, &rg, 1, NCPUS) == BUDDY_OK);
	c0 = buddy_zone_cpu(z, 0);
	c1 = buddy_zone_cpu(z, 1);
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
	*p = (struct pair){
	    .order = order, .a = a_lower ? lo : hi, .b = a_lower ? hi : lo};
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
			CHECK_EQ(do_free(c1, p.got, order), BUDDY_OK);
		}
		CHECK(whole(order));
	}
}

int main(void)
{
	static const unsigned orders[] = {0, 3};
	for (int e = 0; e < 2; e++) {
		eager = e;
		for (unsigned i = 0; i < 2; i++) {
			for (int lower = 0; lower < 2; lower++) {
				test_pair(orders[i], lower);
				test_free_vs_alloc(orders[i], lower);
			}
		}
	}
	/* The deferred pass must have deferred (else it tested B6 twice). */
	CHECK(deferred_seen > 0);
	free(meta);
	return check_exit("test_buddy_preempt");
}
