/*
 * buddy_place.c: allocations with a placement constraint, on top of the
 * lock-free core: below an address limit (a DMA32-style zone), at an exact
 * address (device memory; a slow path), and runs of N frames that are not a
 * power of two (allocate the order, give back the tail).
 *
 * These bypass the per-CPU caches, except that they drain them before they
 * fail, so that no memory held in a cache makes them fail. Over units
 * (version 3, docs/design.md 2.7, "Constraints") the orders and pieces
 * below a unit go to the lower level: alloc_below by bl_alloc_below(),
 * alloc_at by a CAS on the unit's word or the unit brought down from the
 * core, a run's last piece below a unit in one unit's word (bu_run),
 * committed by one CAS on free.
 */
#include "buddy_i.h"

#if BUDDY_CORE_SHIFT > 0
/*
 * The frame index below which a frame's pfn is below lp: the regions are
 * sorted and their indices grow with them, so "pfn < lp" is "index <
 * this" for every frame of every region.
 */
static uint64_t buddy_limit_idx(const struct buddy_zone *z, uint64_t lp)
{
	for (uint32_t i = 0; i < z->nrgn; i++) {
		const struct buddy_rgn *r = &z->rgn[i];
		if (lp <= r->pfn)
			return r->idx;
		if (lp - r->pfn < r->n)
			return r->idx + (lp - r->pfn);
	}
	return z->nidx;
}

/*
 * Version 3: orders 0-4 below a limit at the lower level
 * (bl_alloc_below(): bu_alloc with the limit's offset in a unit that
 * straddles it, units wholly above skipped), the core's search for a
 * unit with the limit moved by a unit less the block: a unit fits when
 * its first 2^order frames end by the limit.
 */
static BUDDY_NOINLINE int buddy_below_small(struct buddy_cpu *c, unsigned order,
					    uint64_t limit, uint64_t *addr)
{
	uint64_t lp = limit >> BUDDY_FRAME_SHIFT;
	uint32_t x = 0;
	int rc = bl_alloc_below(buddy_lower_ctx(c), order,
				buddy_limit_idx(c->zone, lp),
				lp + BUDDY_CORE_FRAMES - (1u << order), &x);
	if (rc != BUDDY_OK) {
		buddy_ctr_add(c, BC_FAILED, 1);
		return rc;
	}
	buddy_ctr_add(c, BC_ALLOCS, 1);
	*addr = buddy_idx_addr(c->zone, x);
	return BUDDY_OK;
}
#else
static inline int buddy_below_small(struct buddy_cpu *c, unsigned order,
				    uint64_t limit, uint64_t *addr)
{
	(void)order;
	(void)limit;
	(void)addr;
	return buddy_reject(c, BUDDY_EINVAL); /* never: nothing is below */
}
#endif

int buddy_alloc_below(struct buddy_cpu *c, unsigned order, uint64_t limit,
		      uint64_t *addr)
{
	if (c == NULL || addr == NULL)
		return BUDDY_EINVAL;
	if (order > BUDDY_MAX_ORDER)
		return buddy_reject(c, BUDDY_EINVAL);
	if (buddy_below_core(order))
		return buddy_below_small(c, order, limit, addr);
	uint32_t x;
	int rc = buddy_take_global(c, order, limit >> BUDDY_FRAME_SHIFT, &x);
	if (rc != BUDDY_OK) {
		buddy_ctr_add(c, BC_FAILED, 1);
		return rc;
	}
	buddy_st_set(c->zone, x, BK_ALLOC, order);
	buddy_ctr_add(c, BC_ALLOCS, 1);
	*addr = buddy_idx_addr(c->zone, x);
	return BUDDY_OK;
}

/*
 * The head of the block that holds frame x, if that block covers the
 * aligned range of order k at x; else LF_STACK_NIL. Its state in *sp.
 */
static uint32_t buddy_at_head(const struct buddy_zone *z,
			      const struct buddy_rgn *r, uint32_t x, unsigned k,
			      uint16_t *sp)
{
	uint64_t pfn = r->pfn + (x - r->idx);
	for (unsigned j = k; j <= BUDDY_MAX_ORDER; j++) {
		uint64_t hp = pfn & ~(((uint64_t)1 << j) - 1);
		if (hp < r->pfn)
			break;
		uint32_t h = r->idx + (uint32_t)(hp - r->pfn);
		/* Acquire: pairs with the publish; the CAS re-checks it. */
		uint16_t s = lf_load_u16(buddy_st(z, h), LF_ACQUIRE);
		if (!bst_is_head(s))
			continue;
		if (bst_kind(s) != BK_BUSY && bst_order(s) < j)
			return LF_STACK_NIL; /* split below the range's order */
		*sp = s;
		return h;
	}
	return LF_STACK_NIL;
}

/* h is BUSY(o), ours, and holds x: split until x is BUSY(k), ours. */
static void buddy_at_split(struct buddy_cpu *c, uint32_t h, unsigned o,
			   uint32_t x, unsigned k)
{
	struct buddy_zone *z = c->zone;
	for (unsigned j = o; j > k; j--) {
		uint32_t half = (uint32_t)1 << (j - 1);
		if (x < h + half) {
			buddy_st_set(z, h, BK_BUSY, j - 1);
			buddy_publish_half(c, h + half, j - 1);
		} else {
			buddy_st_set(z, h + half, BK_BUSY, j - 1);
			buddy_publish_half(c, h, j - 1);
			h += half;
		}
	}
}

/* What one look at [x, x + 2^k) found, besides OK and EBUSY. */
#define BUDDY_AT_AGAIN 1  /* a block in transition, or a stale walk */
#define BUDDY_AT_CACHED 2 /* a frame in a CPU cache: drain, then again */

/*
 * Is a block inside [x, x + 2^k) allocated (EBUSY) or cached now, or
 * neither (AGAIN)? The walk of buddy_at_head() reads one frame per level
 * at different moments, so a head "split below the range" may come from
 * a stale view.
 */
static int buddy_at_taken(const struct buddy_zone *z, uint32_t x, unsigned k)
{
	int rc = BUDDY_AT_AGAIN;
	for (uint32_t y = x; y < x + ((uint32_t)1 << k);
	     y += BUDDY_CORE_FRAMES) {
		/* Acquire: as buddy_at_head(). */
		unsigned kind =
			bst_kind(lf_load_u16(buddy_st(z, y), LF_ACQUIRE));
		/*
		 * A LOWER unit (version 3) is allocated from the core's point
		 * of view; looking inside its word is step 5's (v3-status).
		 */
		if (kind == BK_ALLOC || kind == BK_LOWER)
			return BUDDY_EBUSY;
		if (kind == BK_CACHED)
			rc = BUDDY_AT_CACHED;
	}
	return rc;
}

/*
 * One attempt at claiming [x, x + 2^k): OK; EBUSY when a block that
 * overlaps the range was allocated when looked at (a moment inside the
 * call: EBUSY is exact); AT_CACHED when one is in a CPU cache (free to
 * the caller: drain and look again); AT_AGAIN when one is in transition
 * in another call (BUSY in a split, merge, claim or free) or the walk saw
 * a stale view.
 */
static int buddy_at_try(struct buddy_cpu *c, const struct buddy_rgn *r,
			uint32_t x, unsigned k)
{
	struct buddy_zone *z = c->zone;
	uint16_t s;
	uint32_t h = buddy_at_head(z, r, x, k, &s);
	if (h == LF_STACK_NIL)
		return buddy_at_taken(z, x, k);
	if (bst_kind(s) == BK_BUSY)
		return BUDDY_AT_AGAIN;
	if (bst_kind(s) == BK_CACHED)
		return BUDDY_AT_CACHED;
	if (bst_kind(s) != BK_FREE)
		return BUDDY_EBUSY; /* ALLOC, and it covers the range */
	unsigned o = bst_order(s);
	buddy_busy(c, 1); /* the split gives part back: a section */
	/* Acq_rel: the claim (B2); a stack entry of h goes stale. */
	if (!lf_cas_u16(buddy_st(z, h), &s, bst_with(s, BK_BUSY, o),
			LF_ACQ_REL)) {
		buddy_busy(c, -1);
		return BUDDY_AT_AGAIN;
	}
	buddy_free_delta(c, o, -1);
	buddy_at_split(c, h, o, x, k);
	buddy_st_set(z, x, BK_ALLOC, k);
	buddy_busy(c, -1);
	return BUDDY_OK;
}

#if BUDDY_CORE_SHIFT > 0
/*
 * Version 3, order k <= 4 at frame x: one look. Its unit lower: the range
 * allocated by one CAS on the word (EBUSY exactly when a frame of it is a
 * head or a tail then: a free frame of a reservation is free, nothing to
 * drain). Its unit at the core (word 0): the core block covering the unit
 * claimed if free, split down to the unit, which goes down (LOWER) with
 * the range allocated and is listed, inside the claim's section; EBUSY if
 * an allocated core block covers it; AGAIN while a block is in another
 * call's hands or the unit moves between the levels (then its word is
 * looked at again).
 */
/*
 * bl_alloc_at() found a frame of [x, x + 2^k) not free: was each block
 * that holds one cached (an allocated head with its cached bit: in a
 * CPU's cache, or on its way in or out, buddy_cache.c)? Then AT_CACHED:
 * free to the caller, drained and looked at again, as version 2's
 * CACHED. The range free again: AGAIN. Else EBUSY: a block of the range
 * was allocated (a refilled head has its bit from the refill's CAS on,
 * v3-status item 55).
 */
static int buddy_at_small_cached(struct buddy_cpu *c, uint32_t x, unsigned k)
{
	struct bl_ctx *l = buddy_lower_ctx(c);
	uint32_t u = x / BU_FRAMES;
	unsigned i = x % BU_FRAMES, n = 1u << k;
	/*
	 * Acquire: pairs with the CAS that wrote the word (a refill's sets
	 * its heads' bits in the same 16-byte CAS, so our load of the mask
	 * after it sees them); the mask's acquire pairs with the release
	 * clears and sets.
	 */
	uint64_t w = lf_load_u64(&l->word[BU_W(u)], LF_ACQUIRE);
	uint64_t m = lf_load_u64(&l->mask[BU_W(u)], LF_ACQUIRE);
	if (w == BU_CORE)
		return BUDDY_AT_AGAIN;
	bool held = false;
	for (unsigned f = i; f < i + n; f++) {
		unsigned code = bu_code(w, f);
		if (code == BU_CODE_F)
			continue;
		if (code == BU_CODE_CLAIM)
			return BUDDY_EBUSY; /* a run's piece being freed */
		unsigned h = f;
		while (bu_code(w, h) == BU_CODE_T) /* frame 0 is never T */
			h--;
		if (!(m & (1ull << h)))
			return BUDDY_EBUSY; /* allocated, not cached */
		held = true;
	}
	return held ? BUDDY_AT_CACHED : BUDDY_AT_AGAIN;
}

static int buddy_at_small_try(struct buddy_cpu *c, const struct buddy_rgn *r,
			      uint32_t x, unsigned k)
{
	struct buddy_zone *z = c->zone;
	int rc = bl_alloc_at(buddy_lower_ctx(c), x, k);
	if (rc == BUDDY_EBUSY)
		return buddy_at_small_cached(c, x, k);
	if (rc != BU_NOT_LOWER)
		return rc;
	uint32_t xu = x & ~(BUDDY_CORE_FRAMES - 1);
	uint16_t s;
	uint32_t h = buddy_at_head(z, r, xu, BUDDY_CORE_SHIFT, &s);
	if (h == LF_STACK_NIL)
		return BUDDY_AT_AGAIN; /* a stale walk */
	if (bst_kind(s) == BK_ALLOC)
		return BUDDY_EBUSY; /* it covers the unit */
	if (bst_kind(s) != BK_FREE)
		return BUDDY_AT_AGAIN; /* BUSY, or LOWER again: its word */
	unsigned o = bst_order(s);
	buddy_busy(c, 1); /* the split gives part back, the unit goes down */
	/* Acq_rel: the claim (B2); a stack entry of h goes stale. */
	if (!lf_cas_u16(buddy_st(z, h), &s, bst_with(s, BK_BUSY, o),
			LF_ACQ_REL)) {
		buddy_busy(c, -1);
		return BUDDY_AT_AGAIN;
	}
	buddy_free_delta(c, o, -1);
	buddy_at_split(c, h, o, xu, BUDDY_CORE_SHIFT);
	/* Down: BUSY -> LOWER, ours; then its first word, and listed. */
	buddy_st_set(z, xu, BK_LOWER, BUDDY_CORE_SHIFT);
	uint64_t w;
	rc = bu_alloc_at(bu_make(0, BU_FRAMES, false), x - xu, k, &w);
	LF_ASSERT(rc == BUDDY_OK);
	bl_adopt(buddy_lower_ctx(c), buddy_cx(xu), w, 1u << k);
	buddy_busy(c, -1);
	return BUDDY_OK;
}

/*
 * EBUSY only when a frame of the range was allocated at a moment of the
 * call (a look that found it so); a look that found the range in
 * transition is retried: it lasts while another call progresses.
 */
static BUDDY_NOINLINE int buddy_at_small(struct buddy_cpu *c,
					 const struct buddy_rgn *r, uint32_t x,
					 unsigned k)
{
	int rc;
	while ((rc = buddy_at_small_try(c, r, x, k)) == BUDDY_AT_AGAIN ||
	       rc == BUDDY_AT_CACHED)
		/*
		 * A cached block: every CPU's cache drained (version 2's
		 * exclusion), then again; nothing drained: on its way into a
		 * cache or out of one, waited for like AGAIN.
		 */
		if (rc != BUDDY_AT_CACHED || !buddy_zone_drain_some(c))
			lf_platform_pause();
	buddy_ctr_add(c, rc == BUDDY_OK ? BC_ALLOCS : BC_FAILED, 1);
	return rc;
}
#else
static inline int buddy_at_small(struct buddy_cpu *c, const struct buddy_rgn *r,
				 uint32_t x, unsigned k)
{
	(void)r;
	(void)x;
	(void)k;
	return buddy_reject(c, BUDDY_EINVAL); /* never: nothing is below */
}
#endif

#if BUDDY_CORE_SHIFT > 0
/*
 * Order >= 5 over units: buddy_at_try() said EBUSY. Is every allocated
 * block of the range's lower units cached (an allocated head with its
 * cached bit, buddy_at_small_cached()), and at least one? Then the range
 * is free to the caller once the caches are drained and the units
 * reclaimed or given back: true; a reserved unit with every frame free
 * (emptied since the first reclaim) too. An edge unit never goes (its
 * outside frames are allocated heads with no bit): EBUSY. A unit's word and
 * mask are read as buddy_at_small_cached() reads them.
 */
static bool buddy_at_units_cached(struct buddy_cpu *c, uint32_t x,
				  unsigned order)
{
	struct bl_ctx *l = buddy_lower_ctx(c);
	bool cached = false;
	for (uint32_t u = buddy_cx(x); u <= buddy_cx(x + (1u << order) - 1);
	     u++) {
		/* Acquire: as buddy_at_small_cached(). */
		uint64_t w = lf_load_u64(&l->word[BU_W(u)], LF_ACQUIRE);
		uint64_t m = lf_load_u64(&l->mask[BU_W(u)], LF_ACQUIRE);
		if (w == BU_CORE)
			continue;
		if (bu_free_frames(w) == BU_FRAMES) {
			/*
			 * A reserved unit emptied since the first reclaim (a
			 * drain's): looked at again after the reclaim below.
			 */
			cached = true;
			continue;
		}
		uint64_t hb = bu_head_bits(w);
		if (bu_bad_bits(w) != 0)
			return false; /* a run's piece being freed */
		for (unsigned f = 0; f < BU_FRAMES; f++) {
			if (!((hb >> (2 * f)) & 1))
				continue;
			if (!(m & (1ull << f)))
				return false; /* allocated, not cached */
			cached = true;
		}
	}
	return cached;
}
#endif

/*
 * EBUSY only when a frame of the range was allocated at some moment of
 * the call. A BUSY block is retried without a bound: BUSY lasts a bounded
 * number of its owner's steps (B1), so alloc_at waits only while another
 * call progresses (lock-free, like buddy_take_global()); a cached block
 * is drained to the core and looked at again: it is cached again only by
 * a refill or a free, steps of other calls that complete (or it is not
 * listed yet: a refill's carve in flight, waited for like BUSY).
 */
int buddy_alloc_at(struct buddy_cpu *c, uint64_t addr, unsigned order)
{
	if (c == NULL)
		return BUDDY_EINVAL;
	const struct buddy_rgn *r;
	int rc = buddy_addr_check(c->zone, addr, order, &r);
	if (rc != BUDDY_OK)
		return buddy_reject(c, rc);
	uint32_t x = buddy_addr_idx(r, addr);
	if (buddy_below_core(order))
		return buddy_at_small(c, r, x, order);
#if BUDDY_CORE_SHIFT > 0
	/*
	 * Version 3: the range's reserved empty units are a cache, drained
	 * first (back to the core); a lower unit with an allocated frame,
	 * or lower again meanwhile, makes buddy_at_try() say EBUSY.
	 */
	for (uint32_t u = buddy_cx(x); u <= buddy_cx(x + (1u << order) - 1);
	     u++)
		(void)bl_reclaim(buddy_lower_ctx(c), u);
#endif
	for (;;) {
		rc = buddy_at_try(c, r, x, order);
#if BUDDY_CORE_SHIFT > 0
		if (rc == BUDDY_EBUSY && buddy_at_units_cached(c, x, order)) {
			/*
			 * Lower units whose allocated blocks were all cached:
			 * the caches drained (then a unit left empty goes
			 * back to the core, or is reclaimed here), again.
			 */
			if (!buddy_zone_drain_some(c))
				lf_platform_pause();
			for (uint32_t u = buddy_cx(x);
			     u <= buddy_cx(x + (1u << order) - 1); u++)
				(void)bl_reclaim(buddy_lower_ctx(c), u);
			continue;
		}
#endif
		if (rc == BUDDY_OK || rc == BUDDY_EBUSY)
			break;
		/* Free pieces below its order: deferred ones merge (B8). */
		if (rc == BUDDY_AT_AGAIN && buddy_zone_undefer(c))
			continue;
		/* Nothing drained: cached by a carve not yet listed. */
		if (rc != BUDDY_AT_CACHED || !buddy_zone_drain_some(c))
			lf_platform_pause();
	}
	if (rc != BUDDY_OK) {
		buddy_ctr_add(c, BC_FAILED, 1);
		return BUDDY_EBUSY;
	}
	buddy_ctr_add(c, BC_ALLOCS, 1);
	return BUDDY_OK;
}

/* The order of the largest power of two <= n (n > 0). */
static unsigned buddy_log2_floor(uint64_t n)
{
	return 63u - (unsigned)__builtin_clzll(n);
}

/*
 * x is BUSY(K), ours, 2^(K-1) < n <= 2^K: leave [x, x + n) allocated as the
 * pieces of n's binary decomposition, from the largest, and publish the
 * rest: each free piece is an upper half whose buddy holds allocated
 * frames, so nothing can coalesce with it. Over units (version 3), pieces
 * below a unit are not the core's: the unit that holds them is left BUSY
 * and ours, and returned (else LF_STACK_NIL; always at shift 0).
 */
static uint32_t buddy_run_split(struct buddy_cpu *c, uint32_t x, unsigned k,
				uint64_t n)
{
	struct buddy_zone *z = c->zone;
	while (n != ((uint64_t)1 << k) && k > BUDDY_CORE_SHIFT) {
		uint32_t half = (uint32_t)1 << (k - 1);
		k--;
		if (n <= half) {
			buddy_st_set(z, x, BK_BUSY, k);
			buddy_publish_half(c, x + half, k);
			continue;
		}
		buddy_st_set(z, x, BK_ALLOC, k);
		x += half;
		n -= half;
		buddy_st_set(z, x, BK_BUSY, k);
	}
	if (n != ((uint64_t)1 << k))
		return x; /* the unit of the pieces below a unit */
	buddy_st_set(z, x, BK_ALLOC, k);
	return LF_STACK_NIL;
}

#if BUDDY_CORE_SHIFT > 0
/*
 * Version 3: the run's last n < 32 frames are unit t's (BUSY(5), ours,
 * inside the claim's section): it goes down with them allocated from its
 * start as bu_run() lays them out, the rest of it free, and is listed in
 * the same section: no tail in transit outside one.
 */
static void buddy_run_tail(struct buddy_cpu *c, uint32_t t, unsigned n)
{
	buddy_st_set(c->zone, t, BK_LOWER, BUDDY_CORE_SHIFT);
	bl_adopt(buddy_lower_ctx(c), buddy_cx(t),
		 bu_put_run(bu_make(0, BU_FRAMES, false), 0, n), n);
}

/* Version 3: a run of n < 32 frames, inside one unit (bl_alloc_run()). */
static BUDDY_NOINLINE int buddy_run_small(struct buddy_cpu *c, unsigned n,
					  uint64_t *addr)
{
	uint32_t x = 0;
	int rc = bl_alloc_run(buddy_lower_ctx(c), n, &x);
	if (rc != BUDDY_OK) {
		buddy_ctr_add(c, BC_FAILED, 1);
		return rc;
	}
	buddy_ctr_add(c, BC_ALLOCS, 1);
	*addr = buddy_idx_addr(c->zone, x);
	return BUDDY_OK;
}
#else
static inline void buddy_run_tail(struct buddy_cpu *c, uint32_t t, unsigned n)
{
	(void)c;
	(void)t;
	(void)n;
}

static inline int buddy_run_small(struct buddy_cpu *c, unsigned n,
				  uint64_t *addr)
{
	(void)n;
	(void)addr;
	return buddy_reject(c, BUDDY_EINVAL); /* never: runs of a frame up */
}
#endif

int buddy_alloc_run(struct buddy_cpu *c, uint64_t nframes, uint64_t *addr)
{
	if (c == NULL || addr == NULL)
		return BUDDY_EINVAL;
	if (nframes == 0 || nframes > ((uint64_t)1 << BUDDY_MAX_ORDER))
		return buddy_reject(c, BUDDY_EINVAL);
	if (nframes < BUDDY_CORE_FRAMES) /* version 3: inside a unit */
		return buddy_run_small(c, (unsigned)nframes, addr);
	unsigned k = buddy_log2_floor(nframes);
	if (nframes & (nframes - 1))
		k++;
	uint32_t x;
	int rc = buddy_take_global_held(c, k, BUDDY_NOLIMIT, &x);
	if (rc != BUDDY_OK) {
		buddy_ctr_add(c, BC_FAILED, 1);
		return rc;
	}
	/* The tail goes back inside the claim's section: ENOMEM stays exact. */
	uint32_t t = buddy_run_split(c, x, k, nframes);
	if (t != LF_STACK_NIL)
		buddy_run_tail(c, t,
			       (unsigned)(nframes & (BUDDY_CORE_FRAMES - 1)));
	buddy_busy(c, -1);
	buddy_ctr_add(c, BC_ALLOCS, 1);
	*addr = buddy_idx_addr(c->zone, x);
	return BUDDY_OK;
}

/* The next piece of a run at frame offset *off: its order, or -1. */
static int buddy_run_next(uint64_t nframes, uint64_t *off)
{
	uint64_t rest = nframes - *off;
	if (rest == 0)
		return -1;
	unsigned o = buddy_log2_floor(rest);
	*off += (uint64_t)1 << o;
	return (int)o;
}

#if BUDDY_CORE_SHIFT > 0
/* Version 3: a piece below a unit checked as buddy_free() would. */
static int buddy_run_check_small(struct buddy_zone *z,
				 const struct buddy_rgn *r, uint32_t x,
				 unsigned o)
{
	/* Acquire: as bu_cas(); the commit's CAS checks again. */
	uint64_t w = lf_load_u64(&z->lower.word[BU_W(buddy_cx(x))], LF_ACQUIRE);
	if (w == BU_CORE)
		return buddy_free_why_small(z, r, x);
	return bu_block_check(w, x % BU_FRAMES, o);
}

/*
 * A free_run's hold on group [x, x + n) of one unit (its pieces' cached
 * bits, bits): set by one compare-exchange of the word and the mask, only
 * while the word holds the group's pieces allocated (bu_free_run()'s
 * checks), as a free into the word sets its hold (buddy_cache.c;
 * docs/v3-status.md item 51: a hold set on free frames after a stale look
 * went to an allocation's snapshot, and the run's CAS freed a piece taken
 * and cached meanwhile). OK; EDOUBLE if a piece's bit is set (in a cache);
 * a piece's check code; BU_NOT_LOWER for a unit at the core.
 */
static int buddy_run_hold(struct bl_ctx *l, uint32_t x, unsigned n,
			  uint64_t bits)
{
	lf_atomic_u64 *a = &l->word[BU_W(x / BU_FRAMES)];
	/* Acquire: as bu_cas(). */
	uint64_t w = lf_load_u64(a, LF_ACQUIRE), v;
	/* Relaxed: compared by the CAS below with the word. */
	uint64_t mk = lf_load_u64(a + 1, LF_RELAXED);
	for (;;) {
		if (w == BU_CORE)
			return BU_NOT_LOWER;
		int rc = bu_free_run(w, x % BU_FRAMES, n, &v);
		if (rc != BUDDY_OK)
			return rc;
		if (mk & bits)
			return BUDDY_EDOUBLE; /* a piece in a cache */
		uint64_t e[2] = { w, mk }, d[2] = { w, mk | bits };
		/* Acq_rel: as a cached free's. */
		if (lf_cas2_u64(a, e, d, LF_ACQ_REL))
			return BUDDY_OK;
		w = e[0];
		mk = e[1];
	}
}

/*
 * Version 3: the run's pieces below a unit, n < 32 frames from a, freed
 * by one CAS on their unit's word, the commit point of buddy_free_run():
 * the first bad piece's error and nothing changed, or OK with the unit
 * given back or listed. Pieces are aligned, so none crosses a unit; a
 * run below 32 frames not made by buddy_alloc_run() (blocks allocated
 * one by one) may span two units: the first unit's pieces are claimed
 * first (bl_free_run_claim(): neither free nor allocated, a racing free
 * of one says EDOUBLE), then the second unit's CAS commits, then the
 * claim is settled: freed if the commit succeeded, else given back as
 * it was. Neither settling can fail, so a failing free_run changes
 * nothing (docs/design.md 2.7, "Constraints").
 */
static int buddy_run_free_small(struct buddy_cpu *c, uint64_t a, uint64_t n)
{
	struct buddy_zone *z = c->zone;
	struct bl_ctx *l = buddy_lower_ctx(c);
	uint32_t x[2];
	unsigned m[2], g;
	uint64_t ow[2], nw[2], done = 0, held[2] = { 0, 0 };
	int rc = BUDDY_OK;
	for (g = 0; g < 2 && done < n; g++) {
		const struct buddy_rgn *r;
		uint64_t ga = a + (done << BUDDY_FRAME_SHIFT);
		rc = buddy_addr_check(z, ga, 0, &r); /* checked already */
		LF_ASSERT(rc == BUDDY_OK);
		x[g] = buddy_addr_idx(r, ga);
		unsigned room = BU_FRAMES - x[g] % BU_FRAMES;
		m[g] = n - done < room ? (unsigned)(n - done) : room;
		/*
		 * The group's cached bits held across its CAS, as a free into
		 * the word holds its block's (buddy_cache.c): a piece in a
		 * CPU's cache (a racing free of it) has its bit set, and of
		 * the two, exactly one sees the other's bit. The run's frames
		 * carry no bit otherwise (their allocation cleared them). Set
		 * only on the group's pieces allocated (buddy_run_hold()); a
		 * unit at the core (word 0) holds no piece of this level:
		 * refused, diagnosed from the core's words.
		 */
		uint64_t bits = bu_bits(m[g]) << (x[g] % BU_FRAMES);
		rc = buddy_run_hold(l, x[g], m[g], bits);
		if (rc == BU_NOT_LOWER)
			rc = buddy_free_why_small(z, r, x[g]);
		if (rc != BUDDY_OK)
			break;
		held[g] = bits;
		/* A first group that does not end the run: claimed only. */
		if (g == 0 && m[g] < n)
			rc = bl_free_run_claim(l, x[g], m[g], &ow[g]);
		else
			rc = bl_free_run_cas(l, x[g], m[g], &ow[g], &nw[g]);
		if (rc == BU_NOT_LOWER)
			rc = buddy_free_why_small(z, r, x[g]);
		if (rc != BUDDY_OK)
			break;
		done += m[g];
	}
	if (g == 2 || (g == 1 && rc != BUDDY_OK)) /* a claim to settle */
		bl_free_run_settle(l, x[0], m[0], ow[0], rc == BUDDY_OK);
	if (g == 2)
		bl_free_run_done(l, x[1], m[1], nw[1]);
	else if (g == 1 && rc == BUDDY_OK)
		bl_free_run_done(l, x[0], m[0], nw[0]);
	/*
	 * Release: after the refusal (nothing freed); our bits only. Freed,
	 * the holds stay, stale bits on free frames that the next
	 * allocation of each clears, as a free into the word's
	 * (buddy_cache.c; test_buddy_preempt_cache_v3 hold-run).
	 */
	for (unsigned i = 0; i < 2 && rc != BUDDY_OK; i++)
		if (held[i] != 0)
			(void)lf_fetch_and_u64(&l->mask[BU_W(x[i] / BU_FRAMES)],
					       ~held[i], LF_RELEASE);
	return rc;
}
#else
static inline int buddy_run_check_small(struct buddy_zone *z,
					const struct buddy_rgn *r, uint32_t x,
					unsigned o)
{
	(void)z;
	(void)r;
	(void)x;
	(void)o;
	return BUDDY_EINVAL; /* never: nothing is below */
}

static inline int buddy_run_free_small(struct buddy_cpu *c, uint64_t a,
				       uint64_t n)
{
	(void)c;
	(void)a;
	(void)n;
	return BUDDY_EINVAL; /* never: nothing is below */
}
#endif

/* Check every piece as buddy_free() would; the first error, or OK. */
static int buddy_run_check(struct buddy_zone *z, uint64_t addr,
			   uint64_t nframes)
{
	uint64_t off = 0, at = 0;
	int o;
	while ((o = buddy_run_next(nframes, &off)) >= 0) {
		const struct buddy_rgn *r;
		uint64_t a = addr + (at << BUDDY_FRAME_SHIFT);
		int rc = buddy_addr_check(z, a, (unsigned)o, &r);
		if (rc == BUDDY_OK && buddy_below_core((unsigned)o)) {
			rc = buddy_run_check_small(z, r, buddy_addr_idx(r, a),
						   (unsigned)o);
		} else if (rc == BUDDY_OK) {
			uint32_t x = buddy_addr_idx(r, a);
			/* Acquire: as buddy_free_claim(); re-checked there. */
			uint16_t s = lf_load_u16(buddy_st(z, x), LF_ACQUIRE);
			if (!bst_is(s, BK_ALLOC, (unsigned)o))
				rc = buddy_free_claim(z, r, x, (unsigned)o,
						      BK_ALLOC);
		}
		if (rc != BUDDY_OK)
			return rc;
		at = off;
	}
	return BUDDY_OK;
}

/* The piece of order o at frame offset at of the run at addr: its index
 * in *xp, its region in *rp. */
static void buddy_run_piece(struct buddy_zone *z, uint64_t addr, uint64_t at,
			    unsigned o, uint32_t *xp,
			    const struct buddy_rgn **rp)
{
	uint64_t a = addr + (at << BUDDY_FRAME_SHIFT);
	/* Checked by buddy_run_check(); each piece in its own region. */
	int rc = buddy_addr_check(z, a, o, rp);
	LF_ASSERT(rc == BUDDY_OK);
	*xp = buddy_addr_idx(*rp, a);
}

/*
 * All or nothing: every piece is claimed (ALLOC -> BUSY) before any is
 * merged; if a claim fails (a racing double free of a piece), the pieces
 * claimed are given back (BUSY -> ALLOC) and the call fails having
 * changed nothing. The claims and merges form one in-flight section: the
 * claimed pieces come back free.
 */
int buddy_free_run(struct buddy_cpu *c, uint64_t addr, uint64_t nframes)
{
	if (c == NULL)
		return BUDDY_EINVAL;
	if (nframes == 0 || nframes > ((uint64_t)1 << BUDDY_MAX_ORDER))
		return buddy_reject(c, BUDDY_EINVAL);
	struct buddy_zone *z = c->zone;
	const struct buddy_rgn *r;
	int rc = buddy_addr_check(z, addr, buddy_log2_floor(nframes), &r);
	if (rc == BUDDY_OK)
		rc = buddy_run_check(z, addr, nframes);
	if (rc != BUDDY_OK)
		return buddy_reject(c, rc);
	uint64_t off = 0, at = 0;
	uint32_t x;
	int o;
	buddy_busy(c, 1);
	while ((o = buddy_run_next(nframes, &off)) >= 0 &&
	       !buddy_below_core((unsigned)o)) {
		buddy_run_piece(z, addr, at, (unsigned)o, &x, &r);
		/* A racing double free of a piece fails here. */
		rc = buddy_free_claim(z, r, x, (unsigned)o, BK_BUSY);
		if (rc != BUDDY_OK)
			break;
		at = off;
	}
	/*
	 * Version 3: the pieces below a unit come last, in one unit; their
	 * CAS is the commit point (a failure gives the core pieces back).
	 */
	if (rc == BUDDY_OK && at < nframes)
		rc = buddy_run_free_small(c, addr + (at << BUDDY_FRAME_SHIFT),
					  nframes - at);
	uint64_t end = at; /* the core pieces claimed */
	off = at = 0;
	while (at < end && (o = buddy_run_next(nframes, &off)) >= 0) {
		buddy_run_piece(z, addr, at, (unsigned)o, &x, &r);
		if (rc == BUDDY_OK)
			buddy_free_merge(c, r, x, (unsigned)o);
		else
			/* Ours since the claim: back to its owner's hands. */
			buddy_st_set(z, x, BK_ALLOC, (unsigned)o);
		at = off;
	}
	buddy_busy(c, -1);
	if (rc != BUDDY_OK)
		return buddy_reject(c, rc);
	buddy_ctr_add(c, BC_FREES, 1);
	return BUDDY_OK;
}
