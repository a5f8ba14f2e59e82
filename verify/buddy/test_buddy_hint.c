/*
 * test_buddy_hint.c: the hints of version 3's lower level (lf_buddy_units,
 * BUDDY_CORE_SHIFT 5; docs/design.md 2.7, "The hint"). One thread, two
 * contexts used in turn, over a zone of one line (8 units, 256 frames).
 *
 * - A hint names a unit and a block: a free into any unit of the
 *   context's line, not only res, is what its next allocation of that
 *   order takes back (LIFO), at that address.
 * - A stale hint (its unit taken back to the core by another context's
 *   exact ENOMEM pass, or down again in another context's reservation)
 *   serves only through the word's CAS: never a frame of a unit at the
 *   core, never a frame another context holds; a frame that is free in
 *   another context's unit may be taken (a steal). Every frame handed
 *   out once (an owner map), the zone whole and coalesced at the end.
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
/*
 * Two lines: a context takes a line only where its unit would share a
 * line of words with another context's reservation, and then a whole
 * free line (docs/design.md 2.7, "Placement").
 */
#define ZONE_FRAMES (2 * LINE_FRAMES)
#define ZONE_ORDER (BUDDY_CORE_SHIFT + BL_LINE_ORDER + 1) /* the whole zone */
#define MAXB 64 /* blocks held at once */

struct env {
	void *meta;
	struct buddy_zone *z;
	struct buddy_cpu *c[2];
	uint8_t owner[ZONE_FRAMES]; /* 0 free, else 1 + the context */
	uint64_t addr[MAXB];
	unsigned order[MAXB], nb;
};

static void env_init(struct env *e)
{
	struct buddy_region rg = { 0, ZONE_FRAMES * BUDDY_FRAME_SIZE };
	size_t sz = buddy_meta_size(&rg, 1, 2);
	e->meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(sz != 0 && e->meta != NULL);
	CHECK_FATAL(buddy_zone_init(&e->z, e->meta, sz, &rg, 1, 2) == BUDDY_OK);
	e->c[0] = buddy_zone_cpu(e->z, 0);
	e->c[1] = buddy_zone_cpu(e->z, 1);
	/*
	 * Caches off (docs/v3-status.md item 37): this file's subject is the
	 * hint, which frees of orders 0-4 into a reservation set; with the
	 * per-CPU block caches on such a free stays in a cache (its block
	 * allocated in the word). The caches' own windows:
	 * test_buddy_cache_units.
	 */
	buddy_cpu_cache_enable(e->c[0], false);
	buddy_cpu_cache_enable(e->c[1], false);
	for (unsigned i = 0; i < ZONE_FRAMES; i++)
		e->owner[i] = 0;
	e->nb = 0;
}

static uint64_t word(struct buddy_zone *z, uint32_t u)
{
	/* Relaxed: one thread. */
	return lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED);
}

/* Context i allocates order k: its first frame; every frame owned once. */
static uint64_t get(struct env *e, unsigned i, unsigned k)
{
	uint64_t a = 0;
	CHECK_FATAL(buddy_alloc(e->c[i], k, &a) == BUDDY_OK);
	uint64_t f = a / BUDDY_FRAME_SIZE;
	CHECK_FATAL(f + (1u << k) <= ZONE_FRAMES && f % (1u << k) == 0);
	for (uint64_t x = f; x < f + (1u << k); x++) {
		CHECK_EQ(e->owner[x], 0); /* B2: nothing handed out twice */
		e->owner[x] = (uint8_t)(i + 1);
	}
	CHECK_FATAL(e->nb < MAXB);
	e->addr[e->nb] = a;
	e->order[e->nb++] = k;
	return f;
}

/* Context i frees the block at frame f (held, of its recorded order). */
static void put(struct env *e, unsigned i, uint64_t f)
{
	unsigned b = 0;
	while (b < e->nb && e->addr[b] != f * BUDDY_FRAME_SIZE)
		b++;
	CHECK_FATAL(b < e->nb);
	unsigned k = e->order[b];
	for (uint64_t x = f; x < f + (1u << k); x++)
		e->owner[x] = 0;
	CHECK_EQ(buddy_free(e->c[i], e->addr[b], k), BUDDY_OK);
	e->addr[b] = e->addr[--e->nb];
	e->order[b] = e->order[e->nb];
}

/* Everything freed by context 0, drained: whole and coalesced (B6). */
static void env_done(struct env *e)
{
	while (e->nb > 0)
		put(e, 0, e->addr[0] / BUDDY_FRAME_SIZE);
	buddy_zone_drain_all(e->c[1]);
	CHECK_EQ(check_zone(e->z, true), 0);
	struct buddy_stats st;
	buddy_zone_stats(e->z, &st);
	CHECK_EQ(st.free_frames, ZONE_FRAMES);
	for (uint32_t u = 0; u < 2 * BL_LINE; u++)
		CHECK_EQ(word(e->z, u), BU_CORE);
	free(e->meta);
}

/*
 * Frees into a unit of the line other than res, orders 0 and 2. Context
 * 1 takes unit 0; the core's best fit for context 0 is unit 1, in
 * context 1's line of words, so context 0 takes the whole free line 1
 * (units 8-15, frames L = 256 on).
 */
static void test_hint_line(void)
{
	struct env e;
	env_init(&e);
	const uint64_t L = LINE_FRAMES;
	CHECK_EQ(get(&e, 1, 0), 0);
	CHECK_EQ(get(&e, 0, 2), L); /* the line comes down: frames L..L+3 */
	for (unsigned i = 0; i < U - 4 + 8; i++)
		get(&e, 0, 0); /* unit 8 full, then unit 9 (res) */
	struct bl_ctx *l = buddy_lower_ctx(e.c[0]);
	/* Relaxed: one thread. */
	CHECK_EQ(lf_load_u32(&l->line, LF_RELAXED), BL_LINE);
	CHECK_EQ(lf_load_u32(&l->res, LF_RELAXED), BL_LINE + 1);
	put(&e, 0, L + 9); /* into unit 8, not res */
	CHECK_EQ(get(&e, 0, 0), L + 9);
	put(&e, 0, L); /* order 2 into unit 8 */
	CHECK_EQ(get(&e, 0, 2), L);
	put(&e, 0, L + 12);
	put(&e, 0, L);
	CHECK_EQ(get(&e, 0, 0), L + 12); /* one hint an order: the last free */
	CHECK_EQ(get(&e, 0, 2), L);
	CHECK_EQ(check_zone(e.z, false), 0);
	env_done(&e);
}

/*
 * Context 0's hints: order 2 names frames 0-3 of its empty unit 0 (frames
 * 4-7, then 0-3 freed). Context 1 takes the whole zone (its exact ENOMEM
 * pass reclaims context 0's empty reserved units): context 0's
 * allocation of order 2 must fail, its hint naming a unit inside context
 * 1's order-8 block.
 */
static void test_hint_stale_core(void)
{
	struct env e;
	env_init(&e);
	CHECK_EQ(get(&e, 0, 2), 0);
	CHECK_EQ(get(&e, 0, 2), 4);
	put(&e, 0, 4);
	put(&e, 0, 0);
	uint64_t a, b;
	CHECK_EQ(buddy_alloc(e.c[1], ZONE_ORDER, &a), BUDDY_OK);
	CHECK_EQ(word(e.z, 0), BU_CORE);
	struct bl_ctx *l = buddy_lower_ctx(e.c[0]);
	CHECK_EQ(l->hint[2], 0); /* stale: names a unit at the core */
	CHECK_EQ(buddy_alloc(e.c[0], 2, &b), BUDDY_ENOMEM);
	CHECK_EQ(buddy_alloc(e.c[0], 0, &b), BUDDY_ENOMEM);
	CHECK_EQ(buddy_free(e.c[1], a, ZONE_ORDER), BUDDY_OK);
	env_done(&e);
}

/*
 * The same hint, its unit gone up to the core and down again for
 * context 1, which holds frame 0: context 0's order-2 hint (frames
 * 0-3) must fail on the word and be forgotten; a hint naming a block
 * free in context 1's unit may serve (a steal, by CAS), and context 1
 * never gets those frames.
 */
static void test_hint_stale_cpu(void)
{
	struct env e;
	env_init(&e);
	CHECK_EQ(get(&e, 0, 2), 0);
	CHECK_EQ(get(&e, 0, 2), 4);
	put(&e, 0, 4);
	put(&e, 0, 0); /* hint of order 2: frame 0 */
	uint64_t a;
	CHECK_EQ(buddy_alloc(e.c[1], ZONE_ORDER, &a), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c[1], a, ZONE_ORDER), BUDDY_OK);
	/* Unit 0 down again, frame 0 context 1's (alloc_at: bl_adopt()). */
	CHECK_EQ(buddy_alloc_at(e.c[1], 0, 0), BUDDY_OK);
	e.owner[0] = 2;
	e.addr[e.nb] = 0;
	e.order[e.nb++] = 0;
	struct bl_ctx *l = buddy_lower_ctx(e.c[0]);
	CHECK_EQ(l->hint[2], 0); /* stale: names context 1's unit */
	uint64_t f = get(&e, 0, 2);
	CHECK(f != 0);                 /* B2 (get()'s owner map says it too) */
	CHECK_EQ(l->hint[2], BL_NONE); /* it failed: forgotten */
	/* A stale hint on a free block of context 1's unit: a steal. */
	l->hint[1] = 2; /* frames 2-3: free in context 1's unit 0 */
	CHECK_EQ(get(&e, 0, 1), 2);
	for (unsigned i = 0; i < 5; i++)
		CHECK(get(&e, 1, 0) / 2 != 1); /* never frames 2-3 */
	CHECK_EQ(check_zone(e.z, false), 0);
	env_done(&e);
}

int main(void)
{
	test_hint_line();
	test_hint_stale_core();
	test_hint_stale_cpu();
	return check_exit("test_buddy_hint");
}
