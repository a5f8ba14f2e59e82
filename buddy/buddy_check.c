/*
 * buddy_check.c: buddy_zone_check(), the invariants of docs/design.md
 * ("The buddy allocator") verified over a whole zone at quiescence. The
 * return value is the number of the first invariant found broken:
 *
 *   B1  the heads' blocks tile every region: each head (FREE, ALLOC,
 *       CACHED) is aligned to its order and its block lies in its region;
 *       every other frame is a TAIL; nothing is BUSY at quiescence
 *   B3  stack links: every entry of stack j has stk == j + 1, no frame is on
 *       a stack twice or on two stacks, every frame with stk != 0 is on its
 *       stack
 *   B4  every FREE head can be found: it has stk != 0 (a stack holds
 *       it), or some context's spare slot of its order names it
 *   B5  a CACHED head has stk == 0 and is in exactly one cache slot of
 *       its order
 *   B6  (coalesced) no two free buddies of the same order, no CACHED block
 *   B7  the free-block counts summed over contexts equal the FREE heads
 *   B8  (not coalesced) of two free buddies of the same order, one is in
 *       some context's spare slot of that order
 *
 * Over units (BUDDY_CORE_SHIFT 5) also version 3's lower level
 * (docs/design.md 2.7): B1 the core's heads tile each region's whole
 * units, a unit's word is nonzero, and well formed, exactly when its core
 * word is a LOWER head, and each edge unit (a region's partial unit) is
 * LOWER with every frame outside the region an allocated head of order 0
 * in its word; B3 and B4 of the lower level (bl_zone_check(): pstk and
 * the partial stacks, every free frame reserved and named or listed); B6
 * (coalesced) no lower unit entirely free (an edge unit never is), no
 * edge unit reserved with all its region's frames free. The frame reported is
 * the unit's first (an edge unit's outside frame).
 *
 * (B2, no block handed out twice, is a property of histories; the stress
 * and model tests check it with an owner per frame.) A mark bit in each
 * state word finds duplicates; the check leaves every mark clear.
 */
#include "buddy_i.h"

struct buddy_ck {
	struct buddy_zone *z;
	uint64_t frame;
	uint64_t free_blocks[BUDDY_ORDERS];
	uint64_t cached;
	uint64_t listed; /* frames with stk != 0 */
};

/* Relaxed throughout: quiescence is the caller's promise. */
static uint16_t buddy_ck_st(struct buddy_ck *k, uint64_t x)
{
	return lf_load_u16(buddy_st(k->z, x), LF_RELAXED);
}

static int buddy_ck_fail(struct buddy_ck *k, uint64_t x, int inv)
{
	k->frame = x;
	return inv;
}

/* Is x named by some context's spare slot of order o? */
static bool buddy_ck_spare(struct buddy_ck *k, uint64_t x, unsigned o)
{
	/* Relaxed: the check runs with no call in flight. */
	for (uint32_t i = 0; i < k->z->ncpus; i++)
		if (lf_load_u32(&k->z->cpus[i].spare[o], LF_RELAXED) == x)
			return true;
	return false;
}

/* B1, B4, counts: walk region r's whole granules head by head. */
static int buddy_ck_region(struct buddy_ck *k, const struct buddy_rgn *r)
{
	uint64_t x, end;
	buddy_rgn_whole(r, &x, &end); /* over units: edge units apart */
	while (x < end) {
		uint16_t s = buddy_ck_st(k, x);
		unsigned o = bst_order(s), kind = bst_kind(s);
		uint64_t pfn = r->pfn + (x - r->idx);
		if (!bst_is_head(s) || kind == BK_BUSY || buddy_below_core(o) ||
		    (kind == BK_LOWER && o != BUDDY_CORE_SHIFT) ||
		    (pfn & (((uint64_t)1 << o) - 1)) ||
		    x + ((uint64_t)1 << o) > end)
			return buddy_ck_fail(k, x, 1);
		if (kind == BK_FREE && bst_stk(s) == 0 &&
		    !buddy_ck_spare(k, x, o))
			return buddy_ck_fail(k, x, 4);
		if (kind == BK_FREE)
			k->free_blocks[o]++;
		if (kind == BK_CACHED)
			k->cached++;
		/* The tails: one word per core index (buddy_i.h). */
		for (uint64_t t = x + BUDDY_CORE_FRAMES;
		     t < x + ((uint64_t)1 << o); t += BUDDY_CORE_FRAMES)
			if (bst_kind(buddy_ck_st(k, t)) != BK_TAIL)
				return buddy_ck_fail(k, t, 1);
		x += (uint64_t)1 << o;
	}
	return 0;
}

/* Toggle the mark of x; false if it was already set (a duplicate). */
static bool buddy_ck_mark(struct buddy_ck *k, uint64_t x)
{
	uint16_t s = buddy_ck_st(k, x);
	if (s & BST_MARK)
		return false;
	/* Relaxed: the check runs at quiescence; nothing else writes it. */
	lf_store_u16(buddy_st(k->z, x), (uint16_t)(s | BST_MARK), LF_RELAXED);
	return true;
}

static void buddy_ck_unmark_all(struct buddy_ck *k)
{
	for (uint64_t x = 0; x < k->z->nidx; x += 1u << BUDDY_CORE_SHIFT) {
		uint16_t s = buddy_ck_st(k, x);
		lf_store_u16(buddy_st(k->z, x), (uint16_t)(s & ~BST_MARK),
			     LF_RELAXED);
	}
}

/* B3: walk every stack, marking; then every stk != 0 must be marked. */
static int buddy_ck_stacks(struct buddy_ck *k)
{
	struct buddy_zone *z = k->z;
	for (unsigned j = 0; j < BUDDY_ORDERS; j++) {
		uint64_t w = lf_load_u64(&z->stacks[j].s.head, LF_RELAXED);
		uint32_t x = buddy_fx(lf_stack_word_top(w));
		for (; x != LF_STACK_NIL;
		     x = buddy_fx(lf_load_u32(buddy_link(z, x), LF_RELAXED))) {
			if (x >= z->nidx ||
			    bst_stk(buddy_ck_st(k, x)) != j + 1 ||
			    !buddy_ck_mark(k, x))
				return buddy_ck_fail(k, x, 3);
		}
	}
	for (uint64_t x = 0; x < z->nidx; x += 1u << BUDDY_CORE_SHIFT) {
		uint16_t s = buddy_ck_st(k, x);
		if (bst_stk(s) != 0 && !(s & BST_MARK))
			return buddy_ck_fail(k, x, 3);
	}
	return 0;
}

/*
 * B5: every cache slot holds a CACHED head of its order, once. Over units
 * (no caches) B5 says that no head is CACHED.
 */
static int buddy_ck_caches(struct buddy_ck *k)
{
	uint64_t total = 0;
	struct buddy_zone *z = k->z;
	for (uint32_t i = 0; i < z->ncpus; i++) {
		struct buddy_cpu *c = &z->cpus[i];
		for (unsigned o = 0; o < BUDDY_CC_ORDERS; o++) {
			uint32_t n = lf_load_u32(&c->count[o], LF_RELAXED);
			if (n > BUDDY_CC_CAP(o))
				return buddy_ck_fail(k, i, 5);
			for (uint32_t j = 0; j < n; j++) {
				uint32_t x = buddy_slots(c, o)[j];
				if (x >= z->nidx)
					return buddy_ck_fail(k, x, 5);
#if BUDDY_CORE_SHIFT == 0
				uint16_t s = buddy_ck_st(k, x);
				if (!bst_is(s, BK_CACHED, o) ||
				    bst_stk(s) != 0 || !buddy_ck_mark(k, x))
					return buddy_ck_fail(k, x, 5);
#else
				/*
				 * Version 3: an allocated head of order o in
				 * its word, its cached bit set, once (the bit
				 * is cleared as the mark, set again below).
				 */
				uint32_t u = x / BU_FRAMES, b = 1u << (x % 32);
				uint64_t w = lf_load_u64(
					&z->lower.word[BU_W(u)], LF_RELAXED);
				uint64_t m = lf_load_u64(
					&z->lower.mask[BU_W(u)], LF_RELAXED);
				if (w == BU_CORE ||
				    bu_block_check(w, x % BU_FRAMES, o) !=
					    BUDDY_OK ||
				    !(m & b))
					return buddy_ck_fail(k, x, 5);
				lf_store_u64(&z->lower.mask[BU_W(u)],
					     m & ~(uint64_t)b, LF_RELAXED);
#endif
			}
			total += n;
		}
	}
#if BUDDY_CORE_SHIFT > 0
	/* The marks undone: every cached head's bit set again. */
	for (uint32_t i = 0; i < z->ncpus; i++)
		for (unsigned o = 0; o < BUDDY_CC_ORDERS; o++)
			for (uint32_t j = 0;
			     j < lf_load_u32(&z->cpus[i].count[o], LF_RELAXED);
			     j++) {
				uint32_t x = buddy_slots(&z->cpus[i], o)[j];
				lf_store_u64(
					&z->lower.mask[BU_W(x / BU_FRAMES)],
					lf_load_u64(&z->lower.mask[BU_W(
							    x / BU_FRAMES)],
						    LF_RELAXED) |
						(1ull << (x % BU_FRAMES)),
					LF_RELAXED);
			}
	k->cached = total; /* no CACHED state word over units */
#endif
	return total == k->cached ? 0 : buddy_ck_fail(k, 0, 5);
}

/*
 * B6 (coalesced), else B8: no FREE head whose buddy is a FREE head of the
 * same order, unless (B8) one of the two is in a spare slot.
 */
static int buddy_ck_coalesced(struct buddy_ck *k, bool coalesced)
{
	struct buddy_zone *z = k->z;
	if (coalesced && k->cached)
		return buddy_ck_fail(k, 0, 6);
	for (uint32_t i = 0; i < z->nrgn; i++) {
		const struct buddy_rgn *r = &z->rgn[i];
		uint64_t x, end;
		buddy_rgn_whole(r, &x, &end);
		while (x < end) {
			uint16_t s = buddy_ck_st(k, x);
			unsigned o = bst_order(s);
			uint64_t pfn = r->pfn + (x - r->idx);
			uint64_t bp = pfn ^ ((uint64_t)1 << o);
			uint64_t b = r->idx + (bp - r->pfn);
			if (bst_kind(s) == BK_FREE && o < BUDDY_MAX_ORDER &&
			    bp >= r->pfn &&
			    bp + ((uint64_t)1 << o) <= r->pfn + r->n &&
			    bst_is(buddy_ck_st(k, b), BK_FREE, o)) {
				if (coalesced)
					return buddy_ck_fail(k, x, 6);
				if (!buddy_ck_spare(k, x, o) &&
				    !buddy_ck_spare(k, b, o))
					return buddy_ck_fail(k, x, 8);
			}
			x += (uint64_t)1 << o;
		}
	}
	return 0;
}

/* B7: the counted free blocks of each order. */
static int buddy_ck_counts(struct buddy_ck *k)
{
	struct buddy_stats st;
	buddy_zone_stats(k->z, &st);
#if BUDDY_CORE_SHIFT > 0
	/* The lower level's blocks are counted from its words too. */
	struct buddy_stats lo = { 0 };
	buddy_lower_stats(k->z, &lo);
	for (unsigned o = 0; o < BUDDY_ORDERS; o++)
		k->free_blocks[o] += lo.free_blocks[o];
#endif
	for (unsigned o = 0; o < BUDDY_ORDERS; o++)
		if (st.free_blocks[o] != k->free_blocks[o])
			return buddy_ck_fail(k, o, 7);
	return 0;
}

#if BUDDY_CORE_SHIFT > 0
/*
 * B1 of an edge unit u of region r: a LOWER head at the core (unit order
 * 0), and in its word every frame outside r an allocated head of order 0
 * (the next frame not a tail). Its frames of r are checked as any lower
 * unit's (bu_valid(), B4). B6 (coalesced, after drain_all): not reserved
 * with every frame of r free (the drain released it; it is never
 * entirely free, so never goes up).
 */
static int buddy_ck_edge(struct buddy_ck *k, const struct buddy_rgn *r,
			 uint32_t u, bool coalesced)
{
	uint64_t x = (uint64_t)u << BUDDY_CORE_SHIFT;
	unsigned lo = buddy_rgn_edge_lo(r, u), hi = buddy_rgn_edge_hi(r, u);
	/* Relaxed: at quiescence, as buddy_ck_st(). */
	uint64_t w = lf_load_u64(&k->z->lower.word[BU_W(u)], LF_RELAXED);
	if (!bst_is(buddy_ck_st(k, x), BK_LOWER, BUDDY_CORE_SHIFT) ||
	    w == BU_CORE)
		return buddy_ck_fail(k, x, 1);
	for (unsigned i = 0; i < BU_FRAMES; i++)
		if ((i < lo || i >= hi) &&
		    (bu_code(w, i) != BU_CODE_H ||
		     (i + 1 < BU_FRAMES && bu_code(w, i + 1) == BU_CODE_T)))
			return buddy_ck_fail(k, x + i, 1);
	if (coalesced && w == bu_make(lo, hi, true))
		return buddy_ck_fail(k, x, 6);
	return 0;
}

static int buddy_ck_lower(struct buddy_ck *k, bool coalesced)
{
	struct buddy_zone *z = k->z;
	for (uint64_t u = 0; u < buddy_ncx(z->nidx); u++) {
		uint64_t x = u << BUDDY_CORE_SHIFT;
		/* Relaxed: at quiescence, as buddy_ck_st(). */
		uint64_t w = lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED);
		bool lower = bst_kind(buddy_ck_st(k, x)) == BK_LOWER;
		if (lower != (w != BU_CORE) || (lower && !bu_valid(w)))
			return buddy_ck_fail(k, x, 1);
		if (coalesced && lower && bu_free_bits(w) == BU_ALL_FREE)
			return buddy_ck_fail(k, x, 6);
	}
	for (uint32_t i = 0; i < z->nrgn; i++) {
		uint32_t e[2];
		unsigned n = buddy_rgn_edge_units(&z->rgn[i], e);
		for (unsigned j = 0; j < n; j++) {
			int inv = buddy_ck_edge(k, &z->rgn[i], e[j], coalesced);
			if (inv != 0)
				return inv;
		}
	}
	uint32_t u;
	int inv = bl_zone_check(&z->lower, &u);
	if (inv != 0)
		return buddy_ck_fail(k, (uint64_t)u << BUDDY_CORE_SHIFT, inv);
	return 0;
}
#endif

int buddy_zone_check(struct buddy_zone *z, bool coalesced, uint64_t *frame)
{
	struct buddy_ck k = { .z = z };
	int rc = 0;
	for (uint32_t i = 0; i < z->nrgn && rc == 0; i++)
		rc = buddy_ck_region(&k, &z->rgn[i]);
	if (rc == 0)
		rc = buddy_ck_stacks(&k);
	buddy_ck_unmark_all(&k);
	if (rc == 0)
		rc = buddy_ck_caches(&k);
	buddy_ck_unmark_all(&k);
	if (rc == 0)
		rc = buddy_ck_coalesced(&k, coalesced);
	if (rc == 0)
		rc = buddy_ck_counts(&k);
#if BUDDY_CORE_SHIFT > 0
	if (rc == 0)
		rc = buddy_ck_lower(&k, coalesced);
#endif
	if (frame)
		*frame = k.frame;
	return rc;
}
