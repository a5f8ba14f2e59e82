/*
 * test_buddy_units.c: version 3's core over units alone (lf_buddy_units,
 * BUDDY_CORE_SHIFT 5, docs/design.md 2.7): the down and up transitions of
 * a unit (buddy_unit_take: a core unit made LOWER; buddy_unit_give: LOWER
 * -> BUSY, then freed at the core with merging).
 *
 * One thread, two regions with a hole, the second at an odd unit. Every
 * unit is taken once (distinct, unit-aligned, inside a region, LOWER with
 * B1 holding throughout), then the core has nothing left at any order; a
 * LOWER unit refuses alloc_at (EBUSY) and a free at order 5 (EORDER: its
 * first frame heads a smaller block), changing nothing; a block of order 6
 * taken between the units and given back merges; every unit given back in a
 * shuffled order leaves the zone whole and fully coalesced (B6).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buddy_i.h"
#include "buddy_test.h"
#include "check.h"

_Static_assert(BUDDY_CORE_SHIFT == 5, "built over units");

#define U ((uint64_t)1 << BUDDY_CORE_SHIFT) /* frames per unit */

/*
 * The lower level's half of the transitions, for the core's half alone:
 * the first word of a unit made LOWER (B1: a LOWER head's word is
 * nonzero; full here, so that B4 asks no name of it), and the CAS to
 * word 0 before the unit goes up.
 */
static void lower_down(struct buddy_zone *z, uint32_t x)
{
	/* Relaxed: one thread. */
	uint64_t w = bu_make(0, BU_FRAMES, false); /* full: two blocks */
	w = bu_put_block(bu_put_block(w, 0, BU_MAX_ORDER), BU_FRAMES / 2,
			 BU_MAX_ORDER);
	lf_store_u64(&z->lower.word[BU_W(buddy_cx(x))], w, LF_RELAXED);
}

static void lower_up(struct buddy_zone *z, uint32_t x)
{
	/* Relaxed: one thread. */
	lf_store_u64(&z->lower.word[BU_W(buddy_cx(x))], BU_CORE, LF_RELAXED);
}

static void test_core_half(void)
{
	uint64_t f = BUDDY_FRAME_SIZE * U;
	struct buddy_region rg[2] = { { 64 * f, 300 * f },
				      { 401 * f, 77 * f } };
	size_t sz = buddy_meta_size(rg, 2, 1);
	CHECK_FATAL(sz != 0);
	void *meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(meta != NULL);
	struct buddy_zone *z;
	CHECK_FATAL(buddy_zone_init(&z, meta, sz, rg, 2, 1) == BUDDY_OK);
	struct buddy_cpu *c = buddy_zone_cpu(z, 0);
	uint64_t nunits = 300 + 77;
	uint32_t *xs = calloc(nunits, sizeof(*xs));
	uint8_t *seen = calloc(478, 1); /* per unit number */
	CHECK_FATAL(xs && seen);

	/* Down: every unit once. */
	uint64_t n = 0;
	uint32_t x;
	while (buddy_unit_take(c, &x) == BUDDY_OK) {
		lower_down(z, x);
		buddy_busy(c, -1); /* the take's section (nothing to name) */
		CHECK_FATAL(n < nunits);
		CHECK_EQ(x % U, 0);
		uint64_t a = buddy_idx_addr(z, x), un = a / f;
		CHECK((un >= 64 && un < 364) || (un >= 401 && un < 478));
		CHECK_FATAL(un < 478);
		CHECK_EQ(seen[un], 0);
		seen[un] = 1;
		unsigned kind, order;
		/* The core word is LOWER; frames are read from the word. */
		CHECK_EQ(bst_kind(lf_load_u16(buddy_st(z, x), LF_RELAXED)),
			 BK_LOWER);
		CHECK_EQ(buddy_zone_frame(z, a, &kind, &order), BUDDY_OK);
		CHECK_EQ(kind, BK_ALLOC); /* lower_down()'s order-4 block */
		CHECK_EQ(order, BU_MAX_ORDER);
		CHECK_EQ(buddy_zone_frame(z, a + BUDDY_FRAME_SIZE, &kind,
					  &order),
			 BUDDY_OK);
		CHECK_EQ(kind, BK_TAIL);
		xs[n++] = x;
		if (n % 61 == 0)
			CHECK_EQ(check_zone(z, false), 0);
	}
	CHECK_EQ(n, nunits);
	CHECK_EQ(check_zone(z, false), 0);
	struct buddy_stats st;
	buddy_zone_stats(z, &st);
	CHECK_EQ(st.free_frames, 0);
	uint64_t a;
	for (unsigned o = BUDDY_CORE_SHIFT; o <= 9; o++)
		CHECK_EQ(buddy_alloc(c, o, &a), BUDDY_ENOMEM);

	/* A LOWER unit is not the user's: refused, nothing changed. */
	uint64_t a0 = buddy_idx_addr(z, xs[7]);
	CHECK_EQ(buddy_alloc_at(c, a0, BUDDY_CORE_SHIFT), BUDDY_EBUSY);
	CHECK_EQ(buddy_alloc_at(c, a0 & ~(2 * f - 1), BUDDY_CORE_SHIFT + 1),
		 BUDDY_EBUSY);
	/* Its first frame heads an order-4 block: another order. */
	CHECK_EQ(buddy_free(c, a0, BUDDY_CORE_SHIFT), BUDDY_EORDER);
	CHECK_EQ(buddy_free(c, a0, BUDDY_CORE_SHIFT + 1) != BUDDY_OK, 1);
	CHECK_EQ(check_zone(z, false), 0);

	/* Up, in a shuffled order; an order-6 block in between. */
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	for (uint64_t i = n; i > 1; i--) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		uint64_t j = rng % i;
		uint32_t t = xs[i - 1];
		xs[i - 1] = xs[j];
		xs[j] = t;
	}
	uint64_t big = 0;
	bool have_big = false;
	for (uint64_t i = 0; i < n; i++) {
		buddy_busy(c, 1); /* the up's section (design.md 2.7) */
		lower_up(z, xs[i]);
		buddy_unit_give(c, xs[i]);
		buddy_busy(c, -1);
		if (!have_big &&
		    buddy_alloc(c, BUDDY_CORE_SHIFT + 1, &big) == BUDDY_OK)
			have_big = true;
		if (i % 53 == 0)
			CHECK_EQ(check_zone(z, false), 0);
	}
	CHECK(have_big);
	CHECK_EQ(buddy_free(c, big, BUDDY_CORE_SHIFT + 1), BUDDY_OK);
	buddy_zone_drain_all(c);
	CHECK_EQ(check_zone(z, true), 0);
	buddy_zone_stats(z, &st);
	CHECK_EQ(st.free_frames, st.total_frames);
	CHECK_EQ(st.total_frames, nunits * U);

	/* Down and up again from the whole zone: the same units. */
	memset(seen, 0, 478);
	for (n = 0; buddy_unit_take(c, &x) == BUDDY_OK; n++) {
		lower_down(z, x);
		buddy_busy(c, -1);
		xs[n] = x;
	}
	CHECK_EQ(n, nunits);
	for (uint64_t i = 0; i < n; i++) {
		buddy_busy(c, 1);
		lower_up(z, xs[i]);
		buddy_unit_give(c, xs[i]);
		buddy_busy(c, -1);
	}
	buddy_zone_drain_all(c);
	CHECK_EQ(check_zone(z, true), 0);
	free(seen);
	free(xs);
	free(meta);
}

/* The lower level's counter i summed over the zone's contexts. */
static uint64_t lower_sum(struct buddy_zone *z, enum bl_ctr i)
{
	uint64_t n = 0;
	for (uint32_t c = 0; c < z->lower.nctx; c++)
		/* Relaxed: at quiescence. */
		n += lf_load_u64(&z->lower.ctx[c].ctr[i], LF_RELAXED);
	return n;
}

/* Free frames of the lower level: its words scanned (at quiescence). */
static uint64_t lower_free(struct buddy_zone *z)
{
	uint64_t n = 0;
	for (uint32_t u = 0; u < z->lower.nunits; u++) {
		/* Relaxed: at quiescence. */
		uint64_t w = lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED);
		n += w == BU_CORE ? 0 : bu_free_frames(w);
	}
	return n;
}

/* Every unit back at the core: every word 0, the core whole (B6). */
static void check_whole(struct buddy_zone *z, uint64_t frames)
{
	CHECK_EQ(check_zone(z, true), 0);
	CHECK_EQ(lower_free(z), 0);
	for (uint32_t u = 0; u < z->lower.nunits; u++)
		/* Relaxed: at quiescence. */
		CHECK_EQ(lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED),
			 BU_CORE);
	struct buddy_stats st;
	buddy_zone_stats(z, &st);
	CHECK_EQ(st.free_frames, frames);
	CHECK_EQ(st.total_frames, frames);
	CHECK_EQ(lower_sum(z, BL_TAKEN), lower_sum(z, BL_GIVEN));
}

struct blk {
	uint32_t f; /* the lower level's frame number: the core's index */
	unsigned k;
};

/*
 * The lower level over the core, one thread, two contexts: units go down
 * (lines and single units) until every frame is allocated at orders 0-4,
 * then up again as their last frames are freed, merging at the core.
 */
static void test_lower(void)
{
	uint64_t f = BUDDY_FRAME_SIZE * U, nunits = 300 + 77;
	struct buddy_region rg[2] = { { 64 * f, 300 * f },
				      { 401 * f, 77 * f } };
	size_t sz = buddy_meta_size(rg, 2, 2);
	CHECK_FATAL(sz != 0);
	void *meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(meta != NULL);
	struct buddy_zone *z;
	CHECK_FATAL(buddy_zone_init(&z, meta, sz, rg, 2, 2) == BUDDY_OK);
	struct buddy_cpu *cc[2] = { buddy_zone_cpu(z, 0),
				    buddy_zone_cpu(z, 1) };
	struct bl_ctx *lc[2] = { buddy_lower_ctx(cc[0]),
				 buddy_lower_ctx(cc[1]) };
	uint8_t *owner = calloc(z->nidx, 1);
	struct blk *held = calloc(nunits * U, sizeof(*held));
	CHECK_FATAL(owner && held);
	uint64_t rng = 0x2545f4914f6cdd1dull;
	for (unsigned round = 0; round < 2; round++) {
		/* Down: every frame allocated, orders 0-4, two contexts. */
		uint64_t n = 0, frames = 0;
		for (;;) {
			unsigned k = (unsigned)(rnd(&rng) % (BU_MAX_ORDER + 1));
			unsigned i = (unsigned)(rnd(&rng) & 1);
			uint32_t x;
			int rc = bl_alloc(lc[i], k, &x);
			if (rc == BUDDY_ENOMEM && k != 0)
				continue; /* fragments left: order 0 ends it */
			if (rc == BUDDY_ENOMEM)
				break;
			CHECK_FATAL(rc == BUDDY_OK);
			CHECK_FATAL(n < nunits * U);
			CHECK_EQ(x & ((1u << k) - 1), 0);
			CHECK_FATAL(x + (1u << k) <= z->nidx);
			/* In a LOWER unit of a region (B1 across levels). */
			uint16_t s = lf_load_u16(buddy_st(z, x), LF_RELAXED);
			CHECK_EQ(bst_kind(s), BK_LOWER);
			uint64_t a = buddy_idx_addr(z, x), pfn = a / f;
			CHECK((pfn >= 64 && pfn < 364) ||
			      (pfn >= 401 && pfn < 478));
			for (uint32_t y = x; y < x + (1u << k); y++) {
				CHECK_EQ(owner[y], 0); /* B2 */
				owner[y] = 1;
			}
			/*
			 * A fresh zone: the first take is one unit (the
			 * core's best fit; a line only beside another
			 * context's reservation: test_enomem_reserved()).
			 */
			if (n == 0 && round == 0)
				/* Relaxed: one thread. */
				CHECK_EQ(lf_load_u32(&lc[i]->line, LF_RELAXED),
					 BL_NONE);
			held[n++] = (struct blk){ x, k };
			frames += 1u << k;
			if (n % 97 == 0)
				CHECK_EQ(check_zone(z, false), 0);
		}
		/* ENOMEM only when every frame is held (one thread). */
		CHECK_EQ(frames, nunits * U);
		CHECK_EQ(lower_free(z), 0);
		/* Every unit down (a unit may go up and down meanwhile). */
		CHECK_EQ(lower_sum(z, BL_TAKEN) - lower_sum(z, BL_GIVEN),
			 nunits);
		struct buddy_stats st;
		buddy_zone_stats(z, &st);
		CHECK_EQ(st.free_frames, 0);
		uint64_t a;
		CHECK_EQ(buddy_alloc(cc[0], BUDDY_CORE_SHIFT, &a),
			 BUDDY_ENOMEM);
		CHECK_EQ(check_zone(z, false), 0);

		/* Bad frees: refused, every word unchanged. */
		for (uint64_t i = 0; i < n; i++) {
			struct blk b = held[i];
			uint32_t u = buddy_cx(b.f);
			/* Relaxed: one thread. */
			uint64_t w = lf_load_u64(&z->lower.word[BU_W(u)],
						 LF_RELAXED);
			if (b.k > 0) {
				CHECK_EQ(bl_free(lc[i & 1], b.f, b.k - 1),
					 BUDDY_EORDER);
				CHECK_EQ(bl_free(lc[i & 1], b.f + 1, 0),
					 BUDDY_ETAIL);
			}
			if (b.k < BU_MAX_ORDER && !(b.f & ((2u << b.k) - 1)))
				CHECK_EQ(bl_free(lc[i & 1], b.f, b.k + 1),
					 BUDDY_EORDER);
			CHECK_EQ(lf_load_u64(&z->lower.word[BU_W(u)],
					     LF_RELAXED),
				 w);
			if (i > 40)
				break;
		}

		/* Up: every block freed in a shuffled order, cross frees. */
		for (uint64_t i = n; i > 1; i--) {
			uint64_t j = rnd(&rng) % i;
			struct blk t = held[i - 1];
			held[i - 1] = held[j];
			held[j] = t;
		}
		uint64_t big = 0;
		bool have_big = false;
		for (uint64_t i = 0; i < n; i++) {
			struct blk b = held[i];
			for (uint32_t y = b.f; y < b.f + (1u << b.k); y++)
				owner[y] = 0;
			CHECK_EQ(bl_free(lc[rnd(&rng) & 1], b.f, b.k),
				 BUDDY_OK);
			/* A double free: refused. */
			if (i % 13 == 0)
				CHECK(bl_free(lc[0], b.f, b.k) != BUDDY_OK);
			if (!have_big &&
			    buddy_alloc(cc[1], BUDDY_CORE_SHIFT + 1, &big) ==
				    BUDDY_OK)
				have_big = true;
			if (i % 97 == 0)
				CHECK_EQ(check_zone(z, false), 0);
		}
		CHECK(have_big);
		CHECK_EQ(buddy_free(cc[1], big, BUDDY_CORE_SHIFT + 1),
			 BUDDY_OK);
		/* Conservation: every frame free, at one level or the other. */
		buddy_zone_stats(z, &st);
		CHECK_EQ(st.free_frames + lower_free(z), nunits * U);
		CHECK_EQ(check_zone(z, false), 0);
		/*
		 * Reservations whose units are empty again (a frame taken
		 * and freed by each context: its line, or its unit, stays
		 * reserved and entirely free) go back by drain_all.
		 */
		for (unsigned i = 0; i < 2; i++) {
			uint32_t x;
			CHECK_EQ(bl_alloc(lc[i], (unsigned)i, &x), BUDDY_OK);
			CHECK_EQ(bl_free(lc[i], x, (unsigned)i), BUDDY_OK);
			/* Relaxed: one thread. */
			CHECK(lf_load_u32(&lc[i]->res, LF_RELAXED) != BL_NONE);
		}
		CHECK(lower_free(z) != 0);
		buddy_zone_drain_all(cc[round]);
		check_whole(z, nunits * U);
		bl_release(lc[0]);
		bl_release(lc[1]);
		check_whole(z, nunits * U);
	}
	printf("test_buddy_units: %" PRIu64 " units taken, %" PRIu64
	       " given back\n",
	       lower_sum(z, BL_TAKEN), lower_sum(z, BL_GIVEN));
	free(held);
	free(owner);
	free(meta);
}

/*
 * Metadata of lf_buddy_units, everything included (zone, contexts of both
 * levels, the core's arrays and the lower level's): bytes a frame.
 */
static void test_metadata(void)
{
	struct buddy_region one = { 0, (uint64_t)1 << 30 };
	struct buddy_region two = { 0, (uint64_t)2 << 30 };
	size_t m1 = buddy_meta_size(&one, 1, 4),
	       m2 = buddy_meta_size(&two, 1, 4);
	uint64_t fr = one.size / BUDDY_FRAME_SIZE;
	CHECK(m1 != 0 && m2 > m1);
	/*
	 * Per unit: 2 + 4 (core) + 8 + 4 + 2 (lower) + 8 (the cached mask,
	 * docs/v3-status.md item 37) = 28 bytes.
	 */
	CHECK_EQ((m2 - m1) / (fr / U), 28);
	CHECK_EQ((m2 - m1) % (fr / U), 0);
	CHECK(m1 <= fr); /* at most a byte a frame, everything included */
	/*
	 * Per CPU: the core's context and the lower level's, with version 3's
	 * per-CPU block caches since item 37 (64 slots of order 0 since item
	 * 53 and 16 of each order 1-4, 4 bytes each, the cache lock's line):
	 * at most 1.375 KiB (version 2's slots alone were 1 KiB a CPU).
	 */
	size_t cpu = buddy_meta_size(&one, 1, 5) - m1;
	CHECK(cpu <= 1408);
	CHECK(m1 * 100 <= fr * 91); /* 0.91 bytes a frame at most */
	printf("test_buddy_units: metadata %.4f bytes a frame (1 GiB, 4 CPUs:"
	       " %zu bytes; %zu a CPU), %.4f a frame per unit's arrays\n",
	       (double)m1 / (double)fr, m1, cpu,
	       (double)(m2 - m1) / (double)fr);
}

/*
 * Threads on the lower level over the core: allocations of orders 0-4
 * (units going down; through buddy_alloc() or bl_alloc(), frees through
 * buddy_free() or bl_free()), frees by the owner or through a mailbox by
 * another thread (units going up, merging at the core), core allocations of
 * orders 5-7 between them (merges and splits racing the transitions),
 * releases and drain_all (reclaims). An owner stamp per frame (B2); at
 * the end every frame free and the zone whole and coalesced.
 */
#define ST_HELD 64
#define ST_MAIL 64
#define ST_UNITS 512

struct st_blk {
	uint64_t a; /* address */
	unsigned k; /* order */
};

static struct {
	struct buddy_zone *z;
	_Atomic uint64_t mail[ST_MAIL]; /* address | order + 1, or 0 */
	_Atomic uint8_t *owner;         /* per frame: thread + 1 */
	uint64_t base, ops;
	_Atomic uint64_t allocs, lower_allocs, core_allocs, cross;
} ST;

static void st_stamp(uint64_t a, unsigned k, uint8_t t)
{
	uint64_t p = (a - ST.base) / BUDDY_FRAME_SIZE;
	for (uint64_t i = 0; i < (uint64_t)1 << k; i++) {
		uint8_t old = atomic_exchange(&ST.owner[p + i], t);
		if ((t == 0) == (old == 0))
			CHECK_FATAL(!"B2: a frame handed out twice, or freed "
				     "unowned");
	}
}

/* Free block b through context i (either level by its order). */
static void st_free(unsigned i, struct st_blk b)
{
	struct buddy_cpu *c = buddy_zone_cpu(ST.z, i);
	st_stamp(b.a, b.k, 0);
	int rc;
	/* Below a unit: the lower level directly, or the public call. */
	if (b.k < BUDDY_CORE_SHIFT && (b.a >> BUDDY_FRAME_SHIFT) % 2) {
		const struct buddy_rgn *r =
			buddy_rgn_of_pfn(ST.z, b.a >> BUDDY_FRAME_SHIFT);
		rc = bl_free(buddy_lower_ctx(c), buddy_addr_idx(r, b.a), b.k);
	} else {
		rc = buddy_free(c, b.a, b.k);
	}
	CHECK_FATAL(rc == BUDDY_OK);
}

static void *st_thread(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	struct buddy_cpu *c = buddy_zone_cpu(ST.z, i);
	struct bl_ctx *l = buddy_lower_ctx(c);
	struct st_blk held[ST_HELD];
	unsigned n = 0;
	uint64_t rng = 0x9e3779b97f4a7c15ull * (i + 1);
	for (uint64_t op = 0; op < ST.ops; op++) {
		unsigned r = (unsigned)(rnd(&rng) % 100);
		if (r < 45 && n < ST_HELD) {
			unsigned k = (unsigned)(rnd(&rng) % (BU_MAX_ORDER + 1));
			uint32_t x;
			uint64_t a;
			if (rnd(&rng) & 1) {
				if (buddy_alloc(c, k, &a) != BUDDY_OK)
					continue;
			} else {
				if (bl_alloc(l, k, &x) != BUDDY_OK)
					continue;
				a = buddy_idx_addr(ST.z, x);
			}
			st_stamp(a, k, (uint8_t)(i + 1));
			held[n++] = (struct st_blk){ a, k };
			atomic_fetch_add(&ST.lower_allocs, 1);
		} else if (r < 55 && n < ST_HELD) {
			unsigned k =
				BUDDY_CORE_SHIFT + (unsigned)(rnd(&rng) % 3);
			uint64_t a;
			if (buddy_alloc(c, k, &a) != BUDDY_OK)
				continue;
			st_stamp(a, k, (uint8_t)(i + 1));
			held[n++] = (struct st_blk){ a, k };
			atomic_fetch_add(&ST.core_allocs, 1);
		} else if (r < 90 && n > 0) {
			unsigned j = (unsigned)(rnd(&rng) % n);
			struct st_blk b = held[j];
			held[j] = held[--n];
			/* To the mailbox (freed by another thread), or here. */
			unsigned m = (unsigned)(rnd(&rng) % ST_MAIL);
			uint64_t zero = 0;
			if ((rnd(&rng) & 1) &&
			    atomic_compare_exchange_strong(&ST.mail[m], &zero,
							   b.a | (b.k + 1)))
				continue;
			st_free(i, b);
		} else if (r < 97) {
			unsigned m = (unsigned)(rnd(&rng) % ST_MAIL);
			uint64_t v = atomic_exchange(&ST.mail[m], 0);
			if (v != 0) {
				st_free(i, (struct st_blk){ v & ~(uint64_t)63,
							    (unsigned)(v & 63) -
								    1 });
				atomic_fetch_add(&ST.cross, 1);
			}
		} else if (r < 99) {
			bl_release(l);
		} else {
			buddy_zone_drain_all(c);
		}
	}
	while (n > 0)
		st_free(i, held[--n]);
	bl_release(l);
	return NULL;
}

static int stress_lower(unsigned nt, uint64_t ops)
{
	uint64_t f = BUDDY_FRAME_SIZE * U;
	struct buddy_region rg = { 64 * f, ST_UNITS * f };
	size_t sz = buddy_meta_size(&rg, 1, nt);
	CHECK_FATAL(sz != 0 && nt <= 8);
	void *meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(meta != NULL);
	CHECK_FATAL(buddy_zone_init(&ST.z, meta, sz, &rg, 1, nt) == BUDDY_OK);
	ST.owner = calloc(ST_UNITS * U, 1);
	CHECK_FATAL(ST.owner != NULL);
	ST.base = rg.base;
	ST.ops = ops;
	pthread_t th[8];
	for (unsigned i = 0; i < nt; i++)
		CHECK_FATAL(pthread_create(&th[i], NULL, st_thread,
					   (void *)(uintptr_t)i) == 0);
	for (unsigned i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	for (unsigned m = 0; m < ST_MAIL; m++) {
		uint64_t v = atomic_exchange(&ST.mail[m], 0);
		if (v != 0)
			st_free(0, (struct st_blk){ v & ~(uint64_t)63,
						    (unsigned)(v & 63) - 1 });
	}
	for (unsigned i = 0; i < nt; i++)
		bl_release(buddy_lower_ctx(buddy_zone_cpu(ST.z, i)));
	CHECK_EQ(check_zone(ST.z, false), 0);
	buddy_zone_drain_all(buddy_zone_cpu(ST.z, 0));
	check_whole(ST.z, ST_UNITS * U);
	for (uint64_t p = 0; p < ST_UNITS * U; p++)
		CHECK_EQ(atomic_load(&ST.owner[p]), 0);
	printf("stress_buddy_units_lower: %u threads x %" PRIu64
	       " ops: %" PRIu64 " lower allocations, %" PRIu64 " core, %" PRIu64
	       " cross frees; %" PRIu64 " units down, %" PRIu64 " up\n",
	       nt, ops, atomic_load(&ST.lower_allocs),
	       atomic_load(&ST.core_allocs), atomic_load(&ST.cross),
	       lower_sum(ST.z, BL_TAKEN), lower_sum(ST.z, BL_GIVEN));
	/* A torture that did nothing proves nothing. */
	CHECK(atomic_load(&ST.lower_allocs) > ops / 10);
	CHECK(atomic_load(&ST.core_allocs) > 0);
	CHECK(atomic_load(&ST.cross) > 0);
	CHECK(lower_sum(ST.z, BL_GIVEN) > 0);
	free(ST.owner);
	free(meta);
	return check_exit("stress_buddy_units_lower");
}

/* A zone of two lines (16 units) with two contexts. */
static struct buddy_zone *two_lines(void **meta)
{
	struct buddy_region rg = { 0, 16 * U * BUDDY_FRAME_SIZE };
	size_t sz = buddy_meta_size(&rg, 1, 2);
	*meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(sz != 0 && *meta != NULL);
	struct buddy_zone *z;
	CHECK_FATAL(buddy_zone_init(&z, *meta, sz, &rg, 1, 2) == BUDDY_OK);
	return z;
}

/*
 * Everything freed: both contexts drained, then the zone; whole and fully
 * coalesced (B6), every frame free.
 */
static void two_lines_done(struct buddy_zone *z, void *meta)
{
	buddy_cpu_drain(buddy_zone_cpu(z, 0));
	buddy_cpu_drain(buddy_zone_cpu(z, 1));
	buddy_zone_drain_all(buddy_zone_cpu(z, 0));
	uint64_t fr;
	CHECK_EQ(buddy_zone_check(z, true, &fr), 0);
	struct buddy_stats st;
	buddy_zone_stats(z, &st);
	CHECK_EQ(st.free_frames, 16 * U);
	free(meta);
}

/*
 * Exact ENOMEM at order >= 5 over reservations, one thread: context 0
 * reserves unit 0; context 1's unit would share its line of words, so it
 * takes the whole free line 8-15 (unit 1 goes back) and, with one frame
 * allocated, leaves 7 reserved units with every frame free; an order-5
 * allocation through context 0 must take them back (the 7 free units
 * 1-7 at the core, then those 7, then ENOMEM only with every frame
 * held). Then, with
 * every frame of every reserved unit held, a failing order-5 allocation
 * must enter no in-flight section of its own (a reserved unit with a
 * held frame is not worth one): a pass over nothing enters none, or two
 * failing contexts would keep breaking each other's quiet windows.
 */
static void test_enomem_reserved(void)
{
	uint64_t f = BUDDY_FRAME_SIZE * U;
	void *meta;
	struct buddy_zone *z = two_lines(&meta);
	struct buddy_cpu *c0 = buddy_zone_cpu(z, 0), *c1 = buddy_zone_cpu(z, 1);
	uint64_t a, small[16 * U], big[16];
	unsigned ns = 0, nb = 0;
	CHECK_EQ(buddy_alloc(c0, 0, &small[ns++]), BUDDY_OK);
	CHECK_EQ(small[0] / f, 0);
	CHECK_EQ(buddy_alloc(c1, 0, &small[ns++]), BUDDY_OK);
	CHECK_EQ(lf_load_u32(&buddy_lower_ctx(c1)->line, LF_RELAXED), 8);
	/* The 7 free units, then the 7 empty reserved ones taken back. */
	while (buddy_alloc(c0, BU_ORDER, &a) == BUDDY_OK)
		big[nb++] = a;
	CHECK_EQ(nb, 14);
	for (unsigned i = 0; i < nb; i++)
		CHECK_EQ(buddy_free(c0, big[i], BU_ORDER), BUDDY_OK);
	/* Every frame held in reserved units of both contexts. */
	for (unsigned i = 0; ns < 16 * U; i ^= 1)
		if (buddy_alloc(i ? c1 : c0, 0, &a) == BUDDY_OK)
			small[ns++] = a;
		else
			break;
	CHECK_EQ(ns, 16 * U);
	/* Relaxed: one thread. */
	uint32_t busy = lf_load_u32(&c0->busy, LF_RELAXED);
	CHECK_EQ(buddy_alloc(c0, BU_ORDER, &a), BUDDY_ENOMEM);
	CHECK_EQ(lf_load_u32(&c0->busy, LF_RELAXED), busy);
	for (unsigned i = 0; i < ns; i++)
		CHECK_EQ(buddy_free(i & 1 ? c0 : c1, small[i], 0), BUDDY_OK);
	two_lines_done(z, meta);
}

/*
 * alloc_at of order >= 5 over reserved units with no frame allocated: free
 * memory, so it must succeed (EBUSY means a frame of the range is
 * allocated: issue 14), taking the unit back from the reservation first;
 * over a reserved unit with one frame allocated it must say EBUSY with
 * nothing changed. Two lines, one thread, two contexts.
 */
static void test_at_reserved_empty(void)
{
	uint64_t f = BUDDY_FRAME_SIZE * U;
	void *meta;
	struct buddy_zone *z = two_lines(&meta);
	struct buddy_cpu *c0 = buddy_zone_cpu(z, 0), *c1 = buddy_zone_cpu(z, 1);
	uint64_t a, h;
	/*
	 * c0 holds a frame of unit 0; c1's unit would share its line of
	 * words, so c1 takes the whole line 8-15 down and frees its frame:
	 * 8 empty reserved units.
	 */
	CHECK_EQ(buddy_alloc(c0, 0, &h), BUDDY_OK);
	CHECK_EQ(buddy_alloc(c1, 0, &a), BUDDY_OK);
	CHECK_EQ(buddy_free(c1, a, 0), BUDDY_OK);
	for (unsigned u = 8; u < 16; u++)
		/* Relaxed: one thread. */
		CHECK(lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED) !=
		      BU_CORE);
	for (unsigned u = 9; u < 16; u++)
		CHECK_EQ(buddy_alloc_at(c0, u * f, BU_ORDER), BUDDY_OK);
	for (unsigned u = 9; u < 16; u++)
		CHECK_EQ(buddy_free(c0, u * f, BU_ORDER), BUDDY_OK);
	/* One frame held in unit 8: EBUSY there, the word unchanged. */
	CHECK_EQ(buddy_alloc_at(c1, 8 * f + 3 * BUDDY_FRAME_SIZE, 0), BUDDY_OK);
	uint64_t w = lf_load_u64(&z->lower.word[BU_W(8)], LF_RELAXED);
	CHECK_EQ(buddy_alloc_at(c0, 8 * f, BU_ORDER), BUDDY_EBUSY);
	CHECK_EQ(lf_load_u64(&z->lower.word[BU_W(8)], LF_RELAXED), w);
	CHECK_EQ(buddy_free(c1, 8 * f + 3 * BUDDY_FRAME_SIZE, 0), BUDDY_OK);
	CHECK_EQ(buddy_free(c0, h, 0), BUDDY_OK);
	two_lines_done(z, meta);
}

/*
 * Item 16's line rule with no whole free line left (docs/v3-status.md
 * items 40, 42): a zone of 4 lines (one free block of 32 units), 4
 * contexts, one frame each. Context 0's unit splits the block (unit 0;
 * 1, 2-3, 4-7, 8-15 and 16-31 stay free); context 1's unit 1 shares
 * line 0, so it trades it for the whole free line 8-15; then no whole
 * free line is left, only the 2-line block 16-31: contexts 2 and 3 must
 * split it for lines 16-23 and 24-31 (the other line back free), not
 * keep unit 1 or 2 in line 0. Every context's frame in its own line,
 * every frame free or held (free + cached + 4 = total: no line
 * stranded by the split), the zone's invariants, and all whole again
 * once freed.
 */
static void test_line_split(void)
{
	uint64_t lf = BUDDY_FRAME_SIZE * U * BL_LINE; /* bytes of a line */
	struct buddy_region rg = { 0, 4 * lf };
	size_t sz = buddy_meta_size(&rg, 1, 4);
	void *meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(sz != 0 && meta != NULL);
	struct buddy_zone *z;
	CHECK_FATAL(buddy_zone_init(&z, meta, sz, &rg, 1, 4) == BUDDY_OK);
	uint64_t a[4];
	bool line[4] = { false };
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(buddy_alloc(buddy_zone_cpu(z, i), 0, &a[i]), BUDDY_OK);
		CHECK(a[i] / lf < 4 && !line[a[i] / lf]);
		line[a[i] / lf] = true;
	}
	uint64_t fr;
	CHECK_EQ(buddy_zone_check(z, false, &fr), 0);
	struct buddy_stats st;
	buddy_zone_stats(z, &st);
	CHECK_EQ(st.total_frames, 4 * U * BL_LINE);
	/* Free at the core or in unreserved units, cached in reserved ones. */
	CHECK_EQ(st.free_frames + st.cached_frames + 4, st.total_frames);
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(buddy_free(buddy_zone_cpu(z, i), a[i], 0), BUDDY_OK);
	for (unsigned i = 0; i < 4; i++)
		buddy_cpu_drain(buddy_zone_cpu(z, i));
	buddy_zone_drain_all(buddy_zone_cpu(z, 0));
	CHECK_EQ(buddy_zone_check(z, true, &fr), 0);
	buddy_zone_stats(z, &st);
	CHECK_EQ(st.free_frames, 4 * U * BL_LINE);
	free(meta);
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "stress") == 0)
		return stress_lower((unsigned)atoi(argv[2]),
				    strtoull(argv[3], NULL, 10));
	test_core_half();
	test_lower();
	test_enomem_reserved();
	test_at_reserved_empty();
	test_line_split();
	test_metadata();
	return check_exit("test_buddy_units");
}
