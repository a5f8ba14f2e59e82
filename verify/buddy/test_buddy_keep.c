/*
 * test_buddy_keep.c: what a context of version 3 keeps (lf_buddy_units,
 * BUDDY_CORE_SHIFT 5; docs/design.md 2.7, "Contexts without a cache"),
 * and its reservation's line kept for mixed orders. One thread, contexts
 * used in turn, over one line of 8 units (256 frames, one order-8 block).
 *
 * - buddy_cpu_drain() keeps one unit with every frame free, reserved and
 *   named by res alone; pairs of allocation and free each followed by a
 *   drain take nothing from the core and give nothing back. What it
 *   keeps must stay free memory for everyone: the other context's
 *   allocation of the whole zone (order 8) must succeed, taking it back
 *   (exact ENOMEM at order >= 5), and its allocations of order 0 must
 *   get every frame of the zone (stealing from it below order 5);
 *   buddy_zone_drain_all() leaves the zone fully coalesced (B6) with
 *   every word 0. The next unit a drained context takes from the core is
 *   a single one, not a line.
 * - A line that cannot serve order k but still has free frames is kept:
 *   the order gets a unit of its own outside it, and every frame stays
 *   findable (B4, B5, conservation).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "buddy_i.h"
#include "buddy_test.h"
#include "check.h"

_Static_assert(BUDDY_CORE_SHIFT == 5, "built over units");

#define U ((uint64_t)1 << BUDDY_CORE_SHIFT) /* frames per unit */
#define LINE_FRAMES (BL_LINE * U)
#define ZONE_ORDER (BUDDY_CORE_SHIFT + BL_LINE_ORDER) /* the whole zone */

struct env {
	void *meta;
	struct buddy_zone *z;
	struct buddy_cpu *c0, *c1;
	unsigned lines; /* the zone's lines of 8 units */
};

static void env_init(struct env *e, unsigned lines)
{
	e->lines = lines;
	struct buddy_region rg = { 0, lines * LINE_FRAMES * BUDDY_FRAME_SIZE };
	size_t sz = buddy_meta_size(&rg, 1, 2);
	e->meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(sz != 0 && e->meta != NULL);
	CHECK_FATAL(buddy_zone_init(&e->z, e->meta, sz, &rg, 1, 2) == BUDDY_OK);
	e->c0 = buddy_zone_cpu(e->z, 0);
	e->c1 = buddy_zone_cpu(e->z, 1);
}

/* Relaxed loads below: one thread. */
static uint32_t res_of(struct buddy_cpu *c)
{
	return lf_load_u32(&buddy_lower_ctx(c)->res, LF_RELAXED);
}

static uint32_t line_of(struct buddy_cpu *c)
{
	return lf_load_u32(&buddy_lower_ctx(c)->line, LF_RELAXED);
}

static uint64_t taken(struct buddy_zone *z)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < 2; i++)
		n += lf_load_u64(&z->lower.ctx[i].ctr[BL_TAKEN], LF_RELAXED);
	return n;
}

static uint64_t word(struct buddy_zone *z, uint32_t u)
{
	return lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED);
}

/* The end of every test: drained, fully coalesced, every word 0. */
static void env_done(struct env *e)
{
	buddy_zone_drain_all(e->c1);
	CHECK_EQ(check_zone(e->z, true), 0);
	struct buddy_stats st;
	buddy_zone_stats(e->z, &st);
	CHECK_EQ(st.free_frames, e->lines * LINE_FRAMES);
	CHECK_EQ(st.cached_frames, 0);
	for (uint32_t u = 0; u < e->lines * BL_LINE; u++)
		CHECK_EQ(word(e->z, u), BU_CORE);
	free(e->meta);
}

/* c0: a pair, then a drain; the unit it keeps, checked. */
static uint32_t pair_drain(struct env *e)
{
	uint64_t a;
	CHECK_EQ(buddy_alloc(e->c0, 0, &a), BUDDY_OK);
	CHECK_EQ(buddy_free(e->c0, a, 0), BUDDY_OK);
	buddy_cpu_drain(e->c0);
	uint32_t u = res_of(e->c0);
	CHECK_FATAL(u != BL_NONE && u < BL_LINE);
	CHECK_EQ(line_of(e->c0), BL_NONE);
	CHECK_EQ(word(e->z, u), BU_ALL_FREE | BU_RES);
	for (uint32_t v = 0; v < BL_LINE; v++)
		if (v != u)
			CHECK_EQ(word(e->z, v), BU_CORE);
	return u;
}

static void test_keep_pairs(void)
{
	struct env e;
	env_init(&e, 1);
	uint32_t u = pair_drain(&e);
	struct buddy_stats st;
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.cached_frames, U);
	CHECK_EQ(st.free_frames + st.cached_frames, LINE_FRAMES);
	CHECK_EQ(check_zone(e.z, false), 0);
	uint64_t fr;
	CHECK_EQ(buddy_zone_check(e.z, true, &fr), 6); /* the check sees it */
	/* Pairs and drains: the same unit, nothing taken from the core. */
	uint64_t t = taken(e.z);
	for (unsigned i = 0; i < 100; i++)
		CHECK_EQ(pair_drain(&e), u);
	CHECK_EQ(taken(e.z), t);
	/* Exact ENOMEM at order >= 5: the whole zone for the other CPU. */
	uint64_t a;
	CHECK_EQ(buddy_alloc(e.c1, ZONE_ORDER, &a), BUDDY_OK);
	CHECK_EQ(word(e.z, u), BU_CORE);
	uint64_t b;
	CHECK_EQ(buddy_alloc(e.c0, 0, &b), BUDDY_ENOMEM);
	CHECK_EQ(buddy_free(e.c1, a, ZONE_ORDER), BUDDY_OK);
	/* c0's res names a word 0: its next pair takes a (single) unit. */
	CHECK_EQ(pair_drain(&e), 0);
	env_done(&e);
}

static void test_keep_steal(void)
{
	struct env e;
	env_init(&e, 1);
	uint32_t u = pair_drain(&e);
	/* Exact ENOMEM below order 5: every frame for the other CPU. */
	static uint64_t held[LINE_FRAMES];
	unsigned n = 0;
	while (n < LINE_FRAMES && buddy_alloc(e.c1, 0, &held[n]) == BUDDY_OK)
		n++;
	CHECK_EQ(n, LINE_FRAMES);
	uint64_t a;
	CHECK_EQ(buddy_alloc(e.c1, 0, &a), BUDDY_ENOMEM);
	CHECK_EQ(buddy_alloc(e.c0, 0, &a), BUDDY_ENOMEM);
	CHECK_EQ(bu_free_bits(word(e.z, u)), 0);
	CHECK_EQ(check_zone(e.z, false), 0);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(buddy_free(e.c1, held[i], 0), BUDDY_OK);
	buddy_cpu_drain(e.c1);
	CHECK_EQ(check_zone(e.z, false), 0);
	env_done(&e);
}

/* After a drain, the next unit from the core is one unit, not a line. */
static void test_keep_single(void)
{
	struct env e;
	env_init(&e, 1);
	uint32_t u = pair_drain(&e);
	uint64_t t = taken(e.z), held[U + 1];
	for (unsigned i = 0; i <= U; i++)
		CHECK_EQ(buddy_alloc(e.c0, 0, &held[i]), BUDDY_OK);
	CHECK_EQ(taken(e.z), t + 1);
	CHECK_EQ(line_of(e.c0), BL_NONE);
	CHECK(res_of(e.c0) != u);
	for (unsigned i = 0; i <= U; i++)
		CHECK_EQ(buddy_free(e.c0, held[i], 0), BUDDY_OK);
	CHECK_EQ(check_zone(e.z, false), 0);
	env_done(&e);
}

/*
 * Mixed orders, two lines, one reserved by each context: c1 then holds
 * frame 0 of a unit listed at class 4 (its line released); c0's line gets frame
 * 16 and frames 0-7 of every unit allocated, so that none of it can serve order
 * 4 but each unit still serves order 3. Order 4 then comes from a unit of its
 * own (the listed one, reserved as c0's res outside its line) and the line is
 * kept: order 3 is served by it again, every frame findable (B4, B5).
 */
static void test_line_kept(void)
{
	struct env e;
	env_init(&e, 2);
	/* Caches off: the subject is the reservation's line, which frees
	 * into the words reach (a cached free stays allocated in its word:
	 * docs/v3-status.md item 37). */
	buddy_cpu_cache_enable(e.c0, false);
	buddy_cpu_cache_enable(e.c1, false);
	uint64_t a, h, b[BL_LINE], c[BL_LINE];
	/*
	 * c1 takes unit 0; the core's best fit for c0 is unit 1, in c1's
	 * line of words, so c0 takes a whole free line instead (docs/
	 * design.md 2.7, "Placement").
	 */
	CHECK_EQ(buddy_alloc(e.c1, 0, &h), BUDDY_OK);
	CHECK_EQ(buddy_alloc(e.c0, 0, &a), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c0, a, 0), BUDDY_OK);
	uint32_t l = line_of(e.c0);
	/* h's unit listed, class 4: released, and not left in c1's hand-over
	 * ring (docs/v3-status.md item 44): the drain empties it. */
	buddy_cpu_drain(e.c1);
	uint32_t hu = (uint32_t)(h / BUDDY_FRAME_SIZE / U);
	CHECK_EQ(lf_load_u16(&e.z->lower.pstk[hu], LF_RELAXED), 5);
	CHECK_FATAL(l != BL_NONE && !(hu >= l && hu < l + BL_LINE));
	for (uint32_t i = 0; i < BL_LINE; i++) {
		b[i] = ((l + i) * U + 16) * BUDDY_FRAME_SIZE;
		c[i] = ((l + i) * U) * BUDDY_FRAME_SIZE;
		CHECK_EQ(buddy_alloc_at(e.c0, b[i], 0), BUDDY_OK);
		CHECK_EQ(buddy_alloc_at(e.c0, c[i], 3), BUDDY_OK);
	}
	/* Frames 8-15 of each unit free: order 3 yes, order 4 no. */
	uint64_t big;
	CHECK_EQ(buddy_alloc(e.c0, 4, &big), BUDDY_OK);
	CHECK_EQ(big / BUDDY_FRAME_SIZE / U, hu);
	CHECK_EQ(line_of(e.c0), l);
	CHECK_EQ(res_of(e.c0), hu);
	CHECK_EQ(check_zone(e.z, false), 0);
	/* The line still serves order 3, in every unit; res stays hu. */
	uint64_t s[BL_LINE + 1];
	for (uint32_t i = 0; i <= BL_LINE; i++)
		CHECK_EQ(buddy_alloc(e.c0, 3, &s[i]), BUDDY_OK);
	CHECK_EQ(line_of(e.c0), l);
	CHECK_EQ(res_of(e.c0), hu);
	CHECK_EQ(check_zone(e.z, false), 0);
	/*
	 * Order 4 now fits neither res (hu: frames 1-7 free) nor the line
	 * (frames 0-7 and 16 of each unit held), and a listed unit has it
	 * (c1's new unit, released): bl_let_go() releases the extra unit hu
	 * (listed, its free frames findable) and names the line again; the
	 * order takes the listed unit. B4 (no reserved unit without a name)
	 * is checked at once: mutant buddy-lower-let-go-extra-kept leaves
	 * hu reserved with no name.
	 */
	uint64_t y, x;
	CHECK_EQ(buddy_alloc(e.c1, 0, &y), BUDDY_OK);
	buddy_cpu_drain(e.c1); /* listed, as above */
	CHECK_EQ(buddy_alloc(e.c0, 4, &x), BUDDY_OK);
	CHECK(x / BUDDY_FRAME_SIZE / U != hu);
	CHECK(res_of(e.c0) != hu);
	CHECK_EQ(check_zone(e.z, false), 0);
	CHECK_EQ(buddy_free(e.c0, x, 4), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c1, y, 0), BUDDY_OK);
	CHECK_EQ(check_zone(e.z, false), 0);
	for (uint32_t i = 0; i <= BL_LINE; i++)
		CHECK_EQ(buddy_free(e.c0, s[i], 3), BUDDY_OK);
	for (uint32_t i = 0; i < BL_LINE; i++) {
		CHECK_EQ(buddy_free(e.c0, c[i], 3), BUDDY_OK);
		CHECK_EQ(buddy_free(e.c0, b[i], 0), BUDDY_OK);
	}
	CHECK_EQ(buddy_free(e.c0, big, 4), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c1, h, 0), BUDDY_OK);
	CHECK_EQ(check_zone(e.z, false), 0);
	env_done(&e);
}

/*
 * Mixed orders over a larger zone: random orders 0-4 held and replaced,
 * as bench_buddy's mixed, through two contexts with drains now and
 * then; B1-B7 every 64 steps, every frame once (an owner map), and at
 * the end the zone whole and coalesced.
 */
#define MIX_UNITS 64
#define MIX_HELD 96

static void test_mixed_random(void)
{
	uint64_t f = U * BUDDY_FRAME_SIZE;
	struct buddy_region rg = { 0, MIX_UNITS * f };
	size_t sz = buddy_meta_size(&rg, 1, 2);
	void *meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(sz != 0 && meta != NULL);
	struct buddy_zone *z;
	CHECK_FATAL(buddy_zone_init(&z, meta, sz, &rg, 1, 2) == BUDDY_OK);
	static unsigned char owner[MIX_UNITS * U];
	uint64_t held[MIX_HELD], rng = 0x1234567;
	unsigned order[MIX_HELD];
	for (unsigned i = 0; i < MIX_HELD; i++)
		order[i] = 99;
	for (unsigned step = 0; step < 200000; step++) {
		struct buddy_cpu *c = buddy_zone_cpu(z, (step >> 10) & 1);
		uint64_t r = rnd(&rng);
		unsigned i = (unsigned)(r % MIX_HELD);
		if (order[i] != 99) {
			uint64_t p = held[i] / BUDDY_FRAME_SIZE;
			for (uint64_t y = p; y < p + (1u << order[i]); y++)
				owner[y] = 0;
			CHECK_EQ(buddy_free(c, held[i], order[i]), BUDDY_OK);
			order[i] = 99;
		}
		unsigned k = (unsigned)__builtin_ctzll((r >> 16) | 1u << 4);
		if (buddy_alloc(c, k, &held[i]) == BUDDY_OK) {
			uint64_t p = held[i] / BUDDY_FRAME_SIZE;
			for (uint64_t y = p; y < p + (1u << k); y++) {
				CHECK_FATAL(owner[y] == 0);
				owner[y] = 1;
			}
			order[i] = k;
		}
		if ((r >> 40) % 512 == 0)
			buddy_cpu_drain(c);
		if (step % 64 == 0)
			CHECK_FATAL(check_zone(z, false) == 0);
	}
	for (unsigned i = 0; i < MIX_HELD; i++)
		if (order[i] != 99)
			CHECK_EQ(buddy_free(buddy_zone_cpu(z, 0), held[i],
					    order[i]),
				 BUDDY_OK);
	buddy_zone_drain_all(buddy_zone_cpu(z, 0));
	CHECK_EQ(check_zone(z, true), 0);
	struct buddy_stats st;
	buddy_zone_stats(z, &st);
	CHECK_EQ(st.free_frames, MIX_UNITS * U);
	free(meta);
}

/*
 * A drain of a context that holds a line (taken beside another context's
 * reservation, two lines): it keeps its empty res, named by res alone, and
 * gives the line's other units back; while it is kept the other context
 * allocates every other frame of the zone and then the kept unit's frames
 * too (the steal of a reserved unit with every frame free), and B4 of the
 * lower level holds throughout (every reserved unit named).
 */
static void test_keep_line_drain(void)
{
	struct env e;
	env_init(&e, 2);
	uint64_t h, a;
	CHECK_EQ(buddy_alloc(e.c1, 0, &h), BUDDY_OK); /* unit 0, c1's res */
	CHECK_EQ(buddy_alloc(e.c0, 0, &a), BUDDY_OK); /* line 1 for c0 */
	uint32_t l = line_of(e.c0);
	CHECK_FATAL(l == BL_LINE);
	CHECK_EQ(buddy_free(e.c0, a, 0), BUDDY_OK);
	uint32_t u = res_of(e.c0);
	CHECK_FATAL(u >= l && u < l + BL_LINE);
	buddy_cpu_drain(e.c0);
	CHECK_EQ(res_of(e.c0), u); /* kept, and named */
	CHECK_EQ(line_of(e.c0), BL_NONE);
	CHECK_EQ(word(e.z, u), BU_ALL_FREE | BU_RES);
	for (uint32_t v = l; v < l + BL_LINE; v++)
		if (v != u)
			CHECK_EQ(word(e.z, v), BU_CORE);
	CHECK_EQ(check_zone(e.z, false), 0);
	/* c1 takes every frame: the kept unit's last (no ENOMEM before). */
	uint64_t n = 0;
	while (buddy_alloc(e.c1, 0, &a) == BUDDY_OK)
		n++;
	CHECK_EQ(n, 2 * LINE_FRAMES - 1);
	CHECK_EQ(check_zone(e.z, false), 0);
	for (uint64_t f = 0; f < 2 * LINE_FRAMES; f++)
		CHECK_EQ(buddy_free(e.c1, f * BUDDY_FRAME_SIZE, 0), BUDDY_OK);
	env_done(&e);
}

int main(void)
{
	test_keep_pairs();
	test_keep_steal();
	test_keep_single();
	test_line_kept();
	test_keep_line_drain();
	test_mixed_random();
	return check_exit("test_buddy_keep");
}
