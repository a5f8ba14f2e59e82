/*
 * test_buddy_units.c: version 3's core over units alone (lf_buddy_units,
 * BUDDY_CORE_SHIFT 5, docs/design.md 2.7): the down and up transitions of
 * a unit (buddy_unit_take: a core unit made LOWER; buddy_unit_give: LOWER
 * -> BUSY, then freed at the core with merging).
 *
 * One thread, two regions with a hole, the second at an odd unit. Every
 * unit is taken once (distinct, unit-aligned, inside a region, LOWER with
 * B1 holding throughout), then the core has nothing left at any order; a
 * LOWER unit refuses alloc_at (EBUSY) and a free at order 5 (EDOUBLE),
 * changing nothing; a block of order 6 taken between the units and given
 * back merges; every unit given back in a shuffled order leaves the zone
 * whole and fully coalesced (B6).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buddy_i.h"
#include "check.h"

_Static_assert(BUDDY_CORE_SHIFT == 5, "built over units");

#define U ((uint64_t)1 << BUDDY_CORE_SHIFT) /* frames per unit */

static int check_zone(struct buddy_zone *z, bool coalesced)
{
	uint64_t fr;
	int inv = buddy_zone_check(z, coalesced, &fr);
	if (inv)
		fprintf(stderr, "invariant B%d broken at %" PRIu64 "\n", inv,
			fr);
	return inv;
}

int main(void)
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
		buddy_busy(c, -1); /* the take's section (nothing to name) */
		CHECK_FATAL(n < nunits);
		CHECK_EQ(x % U, 0);
		uint64_t a = buddy_idx_addr(z, x), un = a / f;
		CHECK((un >= 64 && un < 364) || (un >= 401 && un < 478));
		CHECK_FATAL(un < 478);
		CHECK_EQ(seen[un], 0);
		seen[un] = 1;
		unsigned kind, order;
		CHECK_EQ(buddy_zone_frame(z, a, &kind, &order), BUDDY_OK);
		CHECK_EQ(kind, BK_LOWER);
		CHECK_EQ(order, BUDDY_CORE_SHIFT);
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
	CHECK_EQ(buddy_free(c, a0, BUDDY_CORE_SHIFT), BUDDY_EDOUBLE);
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
		buddy_busy(c, -1);
		xs[n] = x;
	}
	CHECK_EQ(n, nunits);
	for (uint64_t i = 0; i < n; i++) {
		buddy_busy(c, 1);
		buddy_unit_give(c, xs[i]);
		buddy_busy(c, -1);
	}
	buddy_zone_drain_all(c);
	CHECK_EQ(check_zone(z, true), 0);
	free(seen);
	free(xs);
	free(meta);
	return check_exit("test_buddy_units");
}
