/*
 * test_buddy_preempt_units.c: test_buddy_preempt's window tests over
 * version 3 (lf_buddy_units' sources at BUDDY_CORE_SHIFT 5 compiled in,
 * every atomic interposed: verify/preempt.h). Version 2's caches are gone
 * there; the question stays: memory moving between the places a failing
 * pass looks at (a unit in transit down or up between the levels, a
 * reservation released or reclaimed) while it looks must not make it fail.
 * Deterministic: every step, every preset. A zone of 2 units (64 frames,
 * one order-6 block), 3 CPUs.
 *
 *   rsv window  an order-5 allocation on CPU 0 while both units sit in
 *               CPUs 1 and 2's reservations with every frame free: its
 *               first two passes fail, its second attempt's drain takes
 *               both back; preempted at step n by CPUs 1 and 2 each taking
 *               a frame and freeing it (a unit down again as each one's
 *               reservation, every frame free once more). At most one
 *               frame is held at any instant, so a whole unit is free
 *               at every instant: it must succeed (the core's failing
 *               loop takes the reservations' empty units back inside each
 *               quiet window, docs/design.md 2.7 "Exact ENOMEM over
 *               reservations");
 *   up          CPU 1's free of the last frame of an unreserved unit (its
 *               word to 0, the unit up to the core and merged) preempted
 *               at step n by CPU 0's order-5 allocation: once the word is
 *               0 the unit is free (in transit, then at the core), so the
 *               allocation may wait for the free (abandoned) but must not
 *               fail;
 *   down        CPU 1's order-0 allocation taking unit 0 down from the
 *               core preempted at step n by CPU 0's order-0 allocation:
 *               31 frames at least are free at every instant (at the core,
 *               in transit down, in CPU 1's reservation): no ENOMEM;
 *   at up       the same free preempted by alloc_at of frame 5 (free at
 *               every instant: lower, in transit, at the core): it may
 *               wait (1,000 spins allowed), never say EBUSY;
 *   at rsv      alloc_at of order 5 (a whole unit) and of order 0 over a
 *               unit reserved by CPU 1 with every frame free, preempted at
 *               each step by CPU 1's allocation of a frame (held): the
 *               range is free when the call starts, so EBUSY only if CPU
 *               1's frame is in it, and that frame never handed out to
 *               both.
 * The zone passes buddy_zone_check after each case and is whole (one
 * order-6 block, every frame free) after everything is freed and drained.
 */
#include <stdio.h>
#include <string.h>

#include "buddy.h"
#include "buddy_i.h"
#include "check.h"
#include "preempt.h"

_Static_assert(BUDDY_CORE_SHIFT == 5, "built over units");

#define NCPUS 3
#define BASE ((uint64_t)0x200000) /* aligned to order 9 */
#define F BUDDY_FRAME_SIZE
#define UNIT (32 * F)
#define UNITS 2

static struct buddy_zone *z;
static struct buddy_cpu *c0, *c1, *c2;
static void *meta;

static void setup(void)
{
	struct buddy_region rg = { BASE, UNITS * UNIT };
	size_t sz = buddy_meta_size(&rg, 1, NCPUS);
	free(meta);
	meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(meta);
	CHECK_FATAL(buddy_zone_init(&z, meta, sz, &rg, 1, NCPUS) == BUDDY_OK);
	c0 = buddy_zone_cpu(z, 0);
	c1 = buddy_zone_cpu(z, 1);
	c2 = buddy_zone_cpu(z, 2);
	/*
	 * Caches off (docs/v3-status.md item 37): this file's subject is the
	 * words, reservations and units in transit that frees of orders
	 * 0-4 reach; with the per-CPU block caches on such a free stays in a
	 * cache (its block allocated in the word). The caches' own windows:
	 * test_buddy_cache_units.
	 */
	for (unsigned i = 0; i < NCPUS; i++)
		buddy_cpu_cache_enable(buddy_zone_cpu(z, i), false);
}

/* Unit u's lower word (the harness's look; single-threaded). */
static uint64_t word(unsigned u)
{
	/* Relaxed: single-threaded. */
	return lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED);
}

/* The zone passes its check now, and is whole once everything is drained. */
static bool whole(void)
{
	uint64_t f = 0;
	int inv = buddy_zone_check(z, false, &f);
	if (inv == 0) {
		for (unsigned i = 0; i < NCPUS; i++)
			buddy_cpu_drain(buddy_zone_cpu(z, i));
		buddy_zone_drain_all(c0);
		inv = buddy_zone_check(z, true, &f);
	}
	struct buddy_stats st;
	buddy_zone_stats(z, &st);
	if (inv != 0)
		fprintf(stderr, "  zone: invariant B%d broken at %#llx\n", inv,
			(unsigned long long)f);
	return inv == 0 && st.free_frames == UNITS * 32 &&
	       st.free_blocks[6] == 1 && word(0) == BU_CORE &&
	       word(1) == BU_CORE;
}

/* ---- rsv window: reservations named again after the second attempt ---- */

struct rsv {
	bool ran[2];  /* each CPU's allocation and free ran */
	uint64_t got; /* CPU 0's block */
};

static void rsv_take_free_op(void *arg)
{
	struct buddy_cpu *c = arg;
	uint64_t a = 0;
	CHECK_EQ(buddy_alloc(c, 0, &a), BUDDY_OK);
	CHECK_EQ(buddy_free(c, a, 0), BUDDY_OK);
}

static void rsv_rename(void *arg)
{
	struct rsv *r = arg;
	r->ran[0] = preempt_nested_try(rsv_take_free_op, c1);
	r->ran[1] = preempt_nested_try(rsv_take_free_op, c2);
}

/* Both units down, each reserved by CPU 1 or 2 with every frame free. */
static void rsv_setup(void)
{
	setup();
	rsv_take_free_op(c1);
	rsv_take_free_op(c2);
	CHECK_FATAL(bu_reserved(word(0)) && bu_reserved(word(1)));
	CHECK_FATAL(bu_free_frames(word(0)) == 32 &&
		    bu_free_frames(word(1)) == 32);
}

static void test_rsv_window(void)
{
	uint64_t a;
	rsv_setup();
	preempt_arm(0, NULL, NULL);
	CHECK_EQ(buddy_alloc(c0, 5, &a), BUDDY_OK);
	unsigned long k = preempt_count(), renamed = 0;
	CHECK_EQ(buddy_free(c0, a, 5), BUDDY_OK);
	CHECK(whole());
	for (unsigned long n = 1; n <= k + 1; n++) {
		rsv_setup();
		struct rsv r = { { false, false }, 0 };
		preempt_arm(n, rsv_rename, &r);
		int rc = buddy_alloc(c0, 5, &r.got);
		if (!preempt_disarm())
			rsv_rename(&r);
		renamed += r.ran[0] && r.ran[1];
		if (rc != BUDDY_OK) {
			fprintf(stderr,
				"rsv window: order-5 alloc preempted at step "
				"%lu of %lu by two reservations named again "
				"(%d %d): %d, with a whole unit free at every "
				"instant\n",
				n, k, r.ran[0], r.ran[1], rc);
			CHECK(!"no ENOMEM while a reserved unit is empty");
			CHECK(whole());
			continue;
		}
		CHECK_EQ(buddy_free(c0, r.got, 5), BUDDY_OK);
		CHECK(whole());
	}
	CHECK(renamed > 0);
	printf("rsv window: %lu steps, %lu renamed\n", k, renamed);
}

/* ---- up: the free that empties an unreserved unit ---- */

struct race {
	unsigned order;
	uint64_t addr; /* the nested call's block (or its frame: alloc_at) */
	int rc;        /* its result */
	bool ran;      /* it completed (was not abandoned) */
	bool free0;    /* unit 0's word was 0 (free) when it started */
};

static void up_alloc_op(void *arg)
{
	struct race *q = arg;
	q->rc = buddy_alloc(c0, q->order, &q->addr);
}

static void up_alloc(void *arg)
{
	struct race *q = arg;
	q->free0 = word(0) == BU_CORE;
	q->ran = preempt_nested_try(up_alloc_op, q);
}

/*
 * CPU 2 holds unit 1 at the core, CPU 1 frame 0 of unit 0, its
 * reservation released (unit 0 unreserved, listed).
 */
static void up_setup(void)
{
	uint64_t a;
	setup();
	CHECK_EQ(buddy_alloc_at(c2, BASE + UNIT, 5), BUDDY_OK);
	CHECK_EQ(buddy_alloc(c1, 0, &a), BUDDY_OK);
	CHECK_EQ(a, BASE);
	bl_release(buddy_lower_ctx(c1));
	CHECK_FATAL(!bu_reserved(word(0)) && word(0) != BU_CORE);
}

static void test_up(void)
{
	up_setup();
	preempt_arm(0, NULL, NULL);
	CHECK_EQ(buddy_free(c1, BASE, 0), BUDDY_OK);
	unsigned long k = preempt_count(), seen = 0;
	CHECK_EQ(word(0), BU_CORE);
	CHECK_EQ(buddy_free(c2, BASE + UNIT, 5), BUDDY_OK);
	CHECK(whole());
	for (unsigned long n = 1; n <= k + 1; n++) {
		up_setup();
		struct race q = { .order = 5, .rc = BUDDY_OK };
		preempt_arm(n, up_alloc, &q);
		CHECK_EQ(buddy_free(c1, BASE, 0), BUDDY_OK);
		if (!preempt_disarm())
			up_alloc(&q);
		seen += q.ran && q.free0;
		if (q.ran && q.free0 && q.rc != BUDDY_OK) {
			fprintf(stderr,
				"up: free of unit 0's last frame preempted at "
				"step %lu of %lu (its word 0) by an order-5 "
				"alloc: %d, with the unit free since\n",
				n, k, q.rc);
			CHECK(!"no ENOMEM while a unit goes up");
		}
		if (q.ran && q.rc == BUDDY_OK) {
			CHECK_EQ(q.addr, BASE);
			CHECK_EQ(buddy_free(c0, q.addr, 5), BUDDY_OK);
		}
		CHECK_EQ(buddy_free(c2, BASE + UNIT, 5), BUDDY_OK);
		CHECK(whole());
	}
	CHECK(seen > 0); /* the free was preempted after its CAS to 0 */
	printf("up: %lu steps, %lu allocations after the CAS to 0\n", k, seen);
}

/* ---- down: a unit taken down against a small allocation ---- */

static void test_down(void)
{
	uint64_t a;
	setup();
	CHECK_EQ(buddy_alloc_at(c2, BASE + UNIT, 5), BUDDY_OK);
	preempt_arm(0, NULL, NULL);
	CHECK_EQ(buddy_alloc(c1, 0, &a), BUDDY_OK);
	unsigned long k = preempt_count(), ran = 0;
	CHECK_EQ(buddy_free(c1, a, 0), BUDDY_OK);
	CHECK_EQ(buddy_free(c2, BASE + UNIT, 5), BUDDY_OK);
	CHECK(whole());
	for (unsigned long n = 1; n <= k + 1; n++) {
		setup();
		CHECK_EQ(buddy_alloc_at(c2, BASE + UNIT, 5), BUDDY_OK);
		struct race q = { .order = 0, .rc = BUDDY_OK };
		preempt_arm(n, up_alloc, &q);
		CHECK_EQ(buddy_alloc(c1, 0, &a), BUDDY_OK);
		if (!preempt_disarm())
			up_alloc(&q);
		ran += q.ran;
		if (q.ran && q.rc != BUDDY_OK) {
			fprintf(stderr,
				"down: order-0 alloc taking unit 0 down "
				"preempted at step %lu of %lu by another "
				"order-0 alloc: %d, 31 frames free at every "
				"instant\n",
				n, k, q.rc);
			CHECK(!"no ENOMEM while a unit comes down");
		}
		if (q.ran && q.rc == BUDDY_OK) {
			CHECK(q.addr != a);
			CHECK(q.addr >= BASE && q.addr < BASE + UNIT);
			CHECK_EQ(buddy_free(c0, q.addr, 0), BUDDY_OK);
		}
		CHECK_EQ(buddy_free(c1, a, 0), BUDDY_OK);
		CHECK_EQ(buddy_free(c2, BASE + UNIT, 5), BUDDY_OK);
		CHECK(whole());
	}
	CHECK(ran > 0);
	printf("down: %lu steps, %lu allocations ran\n", k, ran);
}

/* ---- at up: alloc_at of a free frame whose unit goes up ---- */

static void at_op(void *arg)
{
	struct race *q = arg;
	q->rc = buddy_alloc_at(c0, q->addr, q->order);
}

static void at_up(void *arg)
{
	struct race *q = arg;
	q->ran = preempt_nested_try_spins(at_op, q, 1000);
}

static void test_at_up(void)
{
	up_setup();
	preempt_arm(0, NULL, NULL);
	CHECK_EQ(buddy_free(c1, BASE, 0), BUDDY_OK);
	unsigned long k = preempt_count(), ran = 0;
	CHECK_EQ(buddy_free(c2, BASE + UNIT, 5), BUDDY_OK);
	CHECK(whole());
	for (unsigned long n = 1; n <= k + 1; n++) {
		up_setup();
		struct race q = { .order = 0, .addr = BASE + 5 * F };
		preempt_arm(n, at_up, &q);
		CHECK_EQ(buddy_free(c1, BASE, 0), BUDDY_OK);
		if (!preempt_disarm())
			at_up(&q);
		ran += q.ran;
		if (q.ran && q.rc != BUDDY_OK) {
			fprintf(stderr,
				"at up: free of unit 0's last frame preempted "
				"at step %lu of %lu by alloc_at(frame 5): %d, "
				"for a frame free at every instant\n",
				n, k, q.rc);
			CHECK(!"no EBUSY for a frame nobody allocated");
		}
		if (q.ran && q.rc == BUDDY_OK)
			CHECK_EQ(buddy_free(c0, q.addr, 0), BUDDY_OK);
		CHECK_EQ(buddy_free(c2, BASE + UNIT, 5), BUDDY_OK);
		CHECK(whole());
	}
	CHECK(ran > 0);
	printf("at up: %lu steps, %lu alloc_at ran\n", k, ran);
}

/* ---- at rsv: alloc_at over another CPU's reservation ---- */

struct at_rsv {
	uint64_t got; /* CPU 1's frame, or 0 */
	int rc;       /* its allocation's result */
	bool ran;
};

static void at_rsv_take_op(void *arg)
{
	struct at_rsv *r = arg;
	r->rc = buddy_alloc(c1, 0, &r->got);
}

static void at_rsv_take(void *arg)
{
	struct at_rsv *r = arg;
	r->ran = preempt_nested_try(at_rsv_take_op, r);
}

/*
 * alloc_at(at, order) by CPU 0 while unit 0 is CPU 1's reservation with
 * every frame free (CPU 2 holds unit 1), preempted at every step by CPU
 * 1 taking a frame of it. The range is free when the call starts, so
 * EBUSY only if CPU 1's frame is in it (taken meanwhile: fair); never
 * the same frame to both.
 */
static void test_at_rsv(uint64_t at, unsigned order)
{
	uint64_t a;
	unsigned long k = 0;
	for (int pass = 0; pass < 2; pass++) {
		unsigned long ran = 0;
		for (unsigned long n = pass ? 1 : 0; n <= (pass ? k + 1 : 0);
		     n++) {
			setup();
			CHECK_EQ(buddy_alloc_at(c2, BASE + UNIT, 5), BUDDY_OK);
			CHECK_EQ(buddy_alloc(c1, 0, &a), BUDDY_OK);
			CHECK_EQ(buddy_free(c1, a, 0), BUDDY_OK);
			CHECK_FATAL(bu_reserved(word(0)));
			struct at_rsv r = { 0, BUDDY_OK, false };
			preempt_arm(n, n ? at_rsv_take : NULL, &r);
			int rc = buddy_alloc_at(c0, at, order);
			if (n == 0)
				k = preempt_count();
			else if (!preempt_disarm())
				at_rsv_take(&r);
			/*
			 * CPU 1's frame refused only once CPU 0 took the
			 * whole unit (CPU 2 holds the other).
			 */
			if (r.ran && r.rc != BUDDY_OK) {
				CHECK_EQ(r.rc, BUDDY_ENOMEM);
				CHECK(rc == BUDDY_OK && order == 5);
				r.ran = false;
			}
			ran += r.ran;
			bool in = r.ran && r.got >= at &&
				  r.got < at + (F << order);
			if (rc != BUDDY_OK && !in) {
				fprintf(stderr,
					"at rsv: alloc_at(%#llx, %u) over a "
					"reservation, preempted at step %lu "
					"of %lu by its owner's allocation "
					"(frame %#llx): %d\n",
					(unsigned long long)at, order, n, k,
					(unsigned long long)r.got, rc);
				CHECK(!"no EBUSY for a range nobody holds");
			}
			if (rc == BUDDY_OK)
				CHECK(!in); /* not handed out twice */
			if (rc == BUDDY_OK)
				CHECK_EQ(buddy_free(c0, at, order), BUDDY_OK);
			if (r.ran)
				CHECK_EQ(buddy_free(c1, r.got, 0), BUDDY_OK);
			CHECK_EQ(buddy_free(c2, BASE + UNIT, 5), BUDDY_OK);
			CHECK(whole());
		}
		if (pass) {
			CHECK(ran > 0);
			printf("at rsv %u: %lu steps, %lu takes ran\n", order,
			       k, ran);
		}
	}
}

int main(void)
{
	test_rsv_window();
	test_up();
	test_down();
	test_at_up();
	test_at_rsv(BASE, 5);
	test_at_rsv(BASE + 5 * F, 0);
	test_at_rsv(BASE, 0);
	free(meta);
	return check_exit("test_buddy_preempt_units");
}
