/*
 * buddy_lower.c: the lower level of the buddy's version 3 above the unit
 * words (buddy_lower.h, docs/design.md 2.7): reservations, the partial
 * stacks and the listing race, stealing, units going back to the source.
 *
 * Invariants (numbers of docs/design.md 2.7, lower level):
 *   B1  every word is 0 or well formed (bu_valid);
 *   B3  pstk[u] = j + 1 exactly while partial stack j holds u's link (or
 *       the popper that took it has not cleared it yet); set only by the
 *       CAS that sees 0, cleared only by that popper: a link is never on
 *       two stacks;
 *   B4  a unit with a free frame is reserved (R, and a context's res or
 *       line
 *       names it), or listed (pstk != 0: on a partial stack, or
 *       BL_PRING and named by a slot of a context's hand-over ring), or
 *       carried by a context inside an in-flight section.
 */
#include "buddy_lower.h"
#if BUDDY_CORE_SHIFT > 0
#include "buddy_i.h"
#endif

#define BL_NOINLINE __attribute__((noinline))

static inline void bl_ctr(struct bl_ctx *c, enum bl_ctr i, uint64_t v)
{
	/* Relaxed: only this context's thread writes it. */
	lf_store_u64(&c->ctr[i], lf_load_u64(&c->ctr[i], LF_RELAXED) + v,
		     LF_RELAXED);
}

/*
 * Enter (d = 1) or leave (d = -1) an in-flight section, as buddy_busy().
 * Over the core (shift 5) it is buddy_busy() on the core's context of the
 * same CPU: one busy word per CPU for both levels, so that each level's
 * failing pass sees the other's transits (docs/design.md 2.7, "Core <->
 * lower"): a free's CAS to word 0 is inside a section the core's window
 * sees until the unit is at the core, and a free at the core breaks a
 * lower pass that looked at the core before it.
 */
static inline void bl_busy(struct bl_ctx *c, int d)
{
#if BUDDY_CORE_SHIFT > 0
	buddy_busy(c->cpu, d);
#else
	/* Relaxed: only this context's thread writes it. */
	uint32_t w = lf_load_u32(&c->busy, LF_RELAXED);
	w += 256u + (d > 0 ? 1u : (uint32_t)-1);
	/* Release: as buddy_busy(): around the memory carried. */
	lf_store_u32(&c->busy, w, LF_RELEASE);
#endif
}

void bl_zone_init(struct bl_zone *z, lf_atomic_u64 *word, lf_atomic_u32 *plink,
		  lf_atomic_u16 *pstk, uint32_t nunits, struct bl_source src,
		  struct bl_ctx *ctx, uint32_t nctx)
{
	for (unsigned j = 0; j < BL_CLASSES; j++)
		lf_stack_init(&z->partial[j].s);
	z->word = word;
	z->plink = plink;
	z->pstk = pstk;
	z->nunits = nunits;
	z->src = src;
	z->ctx = ctx;
	z->nctx = nctx;
#if BUDDY_CORE_SHIFT > 0
	for (uint32_t i = 0; i < nctx; i++) {
		ctx[i].cpu = buddy_zone_cpu(src.core, i);
		ctx[i].cpu->lower = &ctx[i];
	}
#endif
	for (uint32_t u = 0; u < nunits; u++) {
		lf_init_u64(&word[BU_W(u)], BU_CORE);
		lf_init_u32(&plink[u], LF_STACK_NIL);
		lf_init_u16(&pstk[u], 0);
	}
	for (uint32_t i = 0; i < nctx; i++) {
		struct bl_ctx *c = &ctx[i];
		c->z = z;
		c->word = word;
		c->id = i;
		c->single = 0;
		lf_init_u32(&c->res, BL_NONE);
		lf_init_u32(&c->line, BL_NONE);
		for (unsigned k = 0; k < BL_CLASSES; k++)
			c->hint[k] = BL_NONE;
#if BL_RING
		for (unsigned n = 0; n < BL_RING; n++)
			lf_init_u32(&c->ring[n], BL_NONE);
		c->keeps = 0;
		c->rh = 0;
		c->rn = 0;
		lf_init_u32(&c->rlen, 0);
#endif
#if BUDDY_CORE_SHIFT == 0
		lf_init_u32(&c->busy, 0);
#endif
		for (unsigned n = 0; n < BL_NCTR; n++)
			lf_init_u64(&c->ctr[n], 0);
	}
}

/*
 * The source of whole units, the level below. Over the core (shift 5):
 * direct calls. bl_src_take(): one unit (exact at the core:
 * buddy_unit_take() waits while the core's other contexts are in flight),
 * or, if line, a whole free line (a unit-order-3 block) where that unit
 * would share its line of words with another context (over the core) or
 * whenever one is free (the stand-in source of the tests); *n units from
 * the first, each LOWER and ours,
 * or BL_NONE. On success the caller is inside the take's core section,
 * which bl_src_named() ends once the units are named. bl_src_give(): unit
 * u, whose word our CAS has just made 0, back to the core (up), inside
 * the caller's section, entered before that CAS: bl_busy() is the core's
 * busy word, so that section covers the transit for both levels' windows
 * (docs/design.md 2.7, "Core <-> lower"). bl_src_has(): a snapshot, no
 * section (a pass over nothing enters none).
 */
#if BUDDY_CORE_SHIFT > 0
/*
 * Does another context's reservation (res or line) name a unit of u's
 * line of words? A snapshot (acquire loads of their names), a hint only.
 */
static bool bl_line_shared(const struct bl_ctx *c, uint32_t u)
{
	const struct bl_zone *z = c->z;
	for (uint32_t i = 0; i < z->nctx; i++) {
		if (i == c->id)
			continue;
		/* Acquire: pairs with the stores naming them (a hint). */
		uint32_t r = lf_load_u32(&z->ctx[i].res, LF_ACQUIRE);
		uint32_t l = lf_load_u32(&z->ctx[i].line, LF_ACQUIRE);
		if ((r != BL_NONE && r / BL_LINE == u / BL_LINE) ||
		    (l != BL_NONE && l / BL_LINE == u / BL_LINE))
			return true;
	}
	return false;
}

/*
 * One unit, the core's best fit (the smallest free block first: a whole
 * 2 MiB block is split only when no smaller block is left), so that
 * small blocks gather in the 2 MiB blocks that hold them already. A
 * line of 8 units would be used by this context before any partial unit
 * (bl_alloc_slow() moves res inside its line first): 8 fresh units for
 * each order-4 request that no partial unit serves, and the order-9
 * share of bench_frag_v3 fell to 0.09 with lines split anywhere, 0.11
 * with whole free lines only (bench/README.md). A line is taken only
 * when the unit shares its line of words with another context's
 * reservation (two CPUs' CASes on one cache line): then a line from a
 * free block of at most two lines (a whole free line first; the other
 * line of a split block goes back to the core free, buddy_split_low()),
 * and the unit goes back. Not a larger block: 2 MiB blocks stay whole.
 * Without the split, once the first line was split for a single unit no
 * whole free line was left and the third and fourth CPUs shared line 0
 * (docs/v3-status.md items 40, 42). Not if !line (we keep a line
 * already, or a drain asked for single units, bl_take()).
 */
static uint32_t bl_src_take(struct bl_ctx *c, bool line, uint32_t *n)
{
	uint32_t x, y;
	*n = 1;
	if (buddy_unit_take(c->cpu, &x) != BUDDY_OK)
		return BL_NONE;
	if (!line || !bl_line_shared(c, buddy_cx(x)) ||
	    buddy_unit_take_line(c->cpu, BL_LINE_ORDER, BL_LINE_ORDER + 1,
				 &y) != BUDDY_OK)
		return buddy_cx(x);
	/* A line instead; x back to the core (its word is 0). */
	buddy_unit_give(c->cpu, x);
	buddy_busy(c->cpu, -1); /* the first take's section */
	*n = BL_LINE;
	return buddy_cx(y);
}

static void bl_src_named(struct bl_ctx *c)
{
	buddy_busy(c->cpu, -1); /* the take's, buddy_unit_take*() */
}

static void bl_src_give(struct bl_ctx *c, uint32_t u)
{
	/*
	 * Inside the caller's section (bl_busy(), the core's busy word),
	 * entered before the CAS to 0: no section of its own.
	 */
	buddy_unit_give(c->cpu, buddy_fx(u));
}

static bool bl_src_has(struct bl_ctx *c)
{
	return buddy_unit_has(c->cpu);
}
#else
static uint32_t bl_src_take(struct bl_ctx *c, bool line, uint32_t *n)
{
	const struct bl_source *s = &c->z->src;
	uint32_t u = BL_NONE;
	*n = BL_LINE;
	if (line && s->take_line != NULL)
		u = s->take_line(s->arg);
	if (u == BL_NONE) {
		*n = 1;
		u = s->take(s->arg);
	}
	return u;
}

static void bl_src_named(struct bl_ctx *c)
{
	(void)c;
}

static void bl_src_give(struct bl_ctx *c, uint32_t u)
{
	c->z->src.give(c->z->src.arg, u);
}

static bool bl_src_has(struct bl_ctx *c)
{
	return c->z->src.has(c->z->src.arg);
}
#endif

/* The partial stack of a word with a free frame: its largest free order. */
static unsigned bl_class(uint64_t w)
{
	int m = bu_max_free_order(w);
	LF_ASSERT(m >= 0);
	return m > BU_MAX_ORDER ? BU_MAX_ORDER : (unsigned)m;
}

/*
 * Name unreserved unit u (word w, a free frame in it) on a partial stack,
 * unless a stack holds its link already. Called right after the seq_cst
 * CAS that made w, inside the caller's section.
 */
static void bl_list(struct bl_ctx *c, uint32_t u, uint64_t w)
{
	struct bl_zone *z = c->z;
	/*
	 * Seq_cst, after our seq_cst CAS on the word: against a popper that
	 * clears pstk (seq_cst) and then loads the word (seq_cst), one of
	 * the two sees the other (docs/design.md 2.7, "Listing"): if we see
	 * pstk set, its load sees our free frame and it keeps the unit.
	 * The class only after it: most frees into an unreserved unit find
	 * it listed (mixed: 2 of 3), and bl_class() is the cost of bl_list().
	 */
	uint16_t p = lf_load_u16(&z->pstk[u], LF_SEQ_CST);
	if (p != 0)
		return;
	unsigned j = bl_class(w);
	/* Seq_cst: as the load; a failure means another lister won. */
	if (!lf_cas_u16(&z->pstk[u], &p, (uint16_t)(j + 1), LF_SEQ_CST))
		return;
	lf_stack_push(&z->partial[j].s, z->plink, u);
	bl_ctr(c, BL_LISTED, 1);
}

#if BL_RING
/*
 * The hand-over ring (buddy_lower.h; docs/design.md 2.7, "The hand-over
 * ring"; docs/v3-status.md items 39 and 44). A unit that our release or
 * free would list on a shared partial stack goes into our ring instead,
 * so that our next reservation of its class takes it back (bl_reserve())
 * and the other CPUs' reservations do not pop a unit whose free frames
 * sit beside our blocks; the oldest goes to the shared stacks when the
 * ring is full, and bl_drain() empties it. Every context's failing pass
 * reads every ring (bl_rings_alloc()): exact ENOMEM over the rings. All
 * of it runs inside our in-flight sections.
 */

/* The slot of our n-th oldest entry. */
static inline lf_atomic_u32 *bl_ring_slot(struct bl_ctx *c, unsigned n)
{
	return &c->ring[(c->rh + n) % BL_RING];
}

static inline uint32_t bl_ring_at(struct bl_ctx *c, unsigned n)
{
	/* Relaxed: only we write it. */
	return lf_load_u32(bl_ring_slot(c, n), LF_RELAXED);
}

static inline void bl_ring_set(struct bl_ctx *c, unsigned n, uint32_t u)
{
	/*
	 * Release: inside our section, after its entry (buddy_busy()): a
	 * failing pass whose acquire load reads this store sees our
	 * section at its second look at the busy words.
	 */
	lf_store_u32(bl_ring_slot(c, n), u, LF_RELEASE);
}

/* rn changed: published for the failing passes (bl_rings_alloc()). */
static inline void bl_ring_count(struct bl_ctx *c)
{
	/* Release: as bl_ring_set(). */
	lf_store_u32(&c->rlen, c->rn, LF_RELEASE);
}

/* Is u in our ring? Then *n is its entry (0: the oldest). */
static bool bl_ring_find(struct bl_ctx *c, uint32_t u, unsigned *n)
{
	for (*n = 0; *n < c->rn; (*n)++)
		if (bl_ring_at(c, *n) == u)
			return true;
	return false;
}

/* Our n-th oldest entry out of the ring, the later ones one slot back. */
static void bl_ring_remove(struct bl_ctx *c, unsigned n)
{
	for (; n + 1 < c->rn; n++)
		bl_ring_set(c, n, bl_ring_at(c, n + 1));
	bl_ring_set(c, n, BL_NONE);
	c->rn--;
	bl_ring_count(c);
}

/*
 * Unit u, just out of our ring: its mark cleared (B3: only we clear
 * BL_PRING), then the word loaded: a unit that is still unreserved with a
 * free frame is listed on the shared stacks (a free that saw the mark did
 * not list it); one at the core, reserved or full is left (a free lists
 * it later). The word in *wp.
 */
static void bl_ring_unmark(struct bl_ctx *c, uint32_t u, uint64_t *wp)
{
	struct bl_zone *z = c->z;
	uint16_t p = BL_PRING;
	/* Seq_cst: the clear comes before the load (bl_list()). */
	bool mine = lf_cas_u16(&z->pstk[u], &p, 0, LF_SEQ_CST);
	LF_ASSERT(mine); /* B3: only we clear our ring's marks */
	(void)mine;
	/* Seq_cst: after the clear (bl_list()). */
	*wp = lf_load_u64(&z->word[BU_W(u)], LF_SEQ_CST);
}

/* The oldest entry out of our ring, to the shared stacks. */
static void bl_ring_evict(struct bl_ctx *c)
{
	uint32_t u = bl_ring_at(c, 0);
	uint64_t w;
	bl_ring_set(c, 0, BL_NONE);
	c->rh = (uint8_t)((c->rh + 1) % BL_RING);
	c->rn--;
	bl_ring_count(c);
	bl_ring_unmark(c, u, &w);
	if (w != BU_CORE && !bu_reserved(w) && bu_free_bits(w) != 0)
		bl_list(c, u, w);
}

/*
 * bl_list() into our ring: unreserved unit u (word w, a free frame in it),
 * right after the seq_cst CAS that made w, unless a stack or a ring holds
 * it already; the oldest entry to the shared stacks if the ring is full.
 */
static void bl_ring_list(struct bl_ctx *c, uint32_t u, uint64_t w)
{
	struct bl_zone *z = c->z;
	(void)w;
	/* Seq_cst: as bl_list(). */
	uint16_t p = lf_load_u16(&z->pstk[u], LF_SEQ_CST);
	if (p != 0)
		return;
	/* Seq_cst: as bl_list(); a failure means another lister won. */
	if (!lf_cas_u16(&z->pstk[u], &p, BL_PRING, LF_SEQ_CST))
		return;
	if (c->rn == BL_RING)
		bl_ring_evict(c);
	bl_ring_set(c, c->rn, u);
	c->rn++;
	bl_ring_count(c);
}

/* Every entry of our ring to the shared stacks (bl_drain()). */
static void bl_ring_flush(struct bl_ctx *c)
{
	if (c->rn == 0)
		return;
	bl_busy(c, 1);
	while (c->rn != 0)
		bl_ring_evict(c);
	bl_busy(c, -1);
}
#else
#define bl_ring_list bl_list
#endif

void bl_zone_edge(struct bl_zone *z, uint32_t u, unsigned lo, unsigned hi)
{
	uint64_t w = bu_make(lo, hi, false);
	LF_ASSERT(lo < hi && bu_valid(w));
	unsigned j = bl_class(w);
	lf_init_u64(&z->word[BU_W(u)], w);
	lf_init_u16(&z->pstk[u], (uint16_t)(j + 1)); /* B3: listed below */
	lf_stack_push(&z->partial[j].s, z->plink, u);
	bl_ctr(&z->ctx[0], BL_LFREE, hi - lo);
}

/* Unit u's word went to 0 by our CAS: back to the source. */
static void bl_give(struct bl_ctx *c, uint32_t u)
{
	bl_src_give(c, u);
	bl_ctr(c, BL_GIVEN, 1);
}

/*
 * Forget the hints that name unit u (keep false) or every unit but u
 * (keep true; u BL_NONE: every hint): units we give up. Hygiene, not
 * safety: a stale hint is safe (buddy_lower.h), but would take blocks
 * from a unit that is no longer ours.
 */
static void bl_hints_forget(struct bl_ctx *c, uint32_t u, bool keep)
{
	for (unsigned k = 0; k < BL_CLASSES; k++)
		if (c->hint[k] != BL_NONE &&
		    (c->hint[k] / BU_FRAMES == u) != keep)
			c->hint[k] = BL_NONE;
}

/* R cleared on u; then back to the source or listed. In a section. */
static void bl_release_unit(struct bl_ctx *c, uint32_t u)
{
	uint64_t ow, nw;
	if (bu_cas(&c->z->word[BU_W(u)], BU_OP_RELEASE, 0, 0, &ow, &nw, NULL) !=
	    BUDDY_OK)
		return; /* word 0: the unit is gone already (reclaimed) */
	if (nw == BU_CORE)
		bl_give(c, u);
	else if (bu_free_bits(nw) != 0)
		bl_ring_list(c, u, nw);
}

/* Is u one of the units of line l (BL_NONE: none)? */
static inline bool bl_in_line(uint32_t l, uint32_t u)
{
	return l != BL_NONE && u - l < BL_LINE;
}

void bl_release(struct bl_ctx *c)
{
	/* Relaxed: only we write them. */
	uint32_t u = lf_load_u32(&c->res, LF_RELAXED);
	uint32_t l = lf_load_u32(&c->line, LF_RELAXED);
	if (u == BL_NONE && l == BL_NONE)
		return;
	bl_busy(c, 1);
	if (u != BL_NONE && !bl_in_line(l, u))
		bl_release_unit(c, u);
	for (uint32_t i = 0; l != BL_NONE && i < BL_LINE; i++)
		bl_release_unit(c, l + i);
	/* Release: pairs with the acquire loads of the stealers. */
	lf_store_u32(&c->res, BL_NONE, LF_RELEASE);
	lf_store_u32(&c->line, BL_NONE, LF_RELEASE);
	bl_hints_forget(c, BL_NONE, true);
	bl_busy(c, -1);
}

/* Is u reserved with every frame free (bu_reclaim() would take it)? */
static bool bl_empty_reserved(const struct bl_ctx *c, uint32_t u)
{
	uint64_t nw;
	/* Acquire: pairs with the CAS that wrote the word (a free's). */
	return bu_reclaim(lf_load_u64(&c->z->word[BU_W(u)], LF_ACQUIRE), &nw) ==
	       BUDDY_OK;
}

/*
 * What a context without a cache keeps (docs/design.md 2.7, "Contexts
 * without a cache"): one unit with every frame free, as v2's core keeps
 * the last pair's block unmerged in a spare slot (B8). It stays reserved
 * and named by res alone, so every failing pass finds it where it finds
 * any reserved empty unit: a pass below order 5 steals from it
 * (bl_steal()), the core's failing loop takes it back in each quiet
 * window (bl_reclaim_all() from buddy_zone_reclaim_some()), and
 * buddy_zone_drain_all() takes it back before it coalesces (B6). The
 * rest of the reservation is released as bl_release() does, inside a
 * section. Kept: a pair of allocation and free followed by a drain
 * touches no core word (a line down and up per pair without it: 11.5
 * splits and 15 merges on a coalesced 1 GiB zone, bench/README.md).
 */
void bl_drain(struct bl_ctx *c)
{
	/* Relaxed: only we write them. */
	uint32_t u = lf_load_u32(&c->res, LF_RELAXED);
	uint32_t l = lf_load_u32(&c->line, LF_RELAXED);
	c->single = 1;
	bool keep = u != BL_NONE && bl_empty_reserved(c, u);
	if ((keep && l == BL_NONE) || (u == BL_NONE && l == BL_NONE)) {
#if BL_RING
		bl_ring_flush(c); /* the ring's units to the shared stacks */
#endif
		return; /* only the kept unit, or nothing, is named */
	}
	bl_busy(c, 1);
	if (u != BL_NONE && !keep && !bl_in_line(l, u))
		bl_release_unit(c, u);
	for (uint32_t i = 0; l != BL_NONE && i < BL_LINE; i++)
		if (!keep || l + i != u)
			bl_release_unit(c, l + i);
	/* Release: pairs with the acquire loads of the stealers. */
	lf_store_u32(&c->line, BL_NONE, LF_RELEASE);
	if (!keep)
		/* Release: as above. */
		lf_store_u32(&c->res, BL_NONE, LF_RELEASE);
	bl_hints_forget(c, keep ? u : BL_NONE, true);
	bl_busy(c, -1);
#if BL_RING
	/* After the releases, which may have put units into it. */
	bl_ring_flush(c);
#endif
}

/*
 * Our new res u (R set by us), named inside the section. The hints stay:
 * they name units, not offsets in res.
 */
static void bl_set_res(struct bl_ctx *c, uint32_t u)
{
	/* Release: pairs with the acquire loads of the stealers. */
	lf_store_u32(&c->res, u, LF_RELEASE);
}

/*
 * The end of a re-file (bl_refile(), and bl_ring_take() for a unit out of
 * our ring): unit u, whose mark we have just cleared, word w loaded after
 * the clear (seq_cst). A unit that left the lower level, is reserved or
 * is full is left to a free, which lists it (-1); one of a smaller class
 * than k is listed again at its class (0); else reserved by CAS and named
 * our res (1; 0 if it went to the source meanwhile). Inside our section.
 */
static int bl_claim(struct bl_ctx *c, uint32_t u, uint64_t w, unsigned k)
{
	uint64_t ow, nw;
	if (w == BU_CORE || bu_reserved(w) || bu_free_bits(w) == 0)
		return -1;
	if (bl_class(w) < k) {
		bl_list(c, u, w);
		return 0;
	}
	if (bu_cas(&c->z->word[BU_W(u)], BU_OP_RESERVE, 0, 0, &ow, &nw, NULL) !=
	    BUDDY_OK)
		return 0; /* gone to the source meanwhile */
	bl_set_res(c, u);
	return 1;
}

/*
 * Re-file u, just taken from partial stack j: true if it is now our
 * reservation (a free block of order >= k; k = BL_CLASSES: none wanted).
 * A unit that left the lower level, is reserved or is full is dropped;
 * one of a smaller class than k is listed again at its class. Inside our
 * section.
 */
static bool bl_refile(struct bl_ctx *c, uint32_t u, unsigned j, unsigned k)
{
	struct bl_zone *z = c->z;
	uint16_t p = (uint16_t)(j + 1);
	/* Seq_cst: the clear comes before the load (bl_list()). */
	bool mine = lf_cas_u16(&z->pstk[u], &p, 0, LF_SEQ_CST);
	LF_ASSERT(mine); /* B3: only the popper clears */
	/* Seq_cst: after the clear (bl_list()). */
	uint64_t w = lf_load_u64(&z->word[BU_W(u)], LF_SEQ_CST);
	int r = bl_claim(c, u, w, k);
	if (r < 0)
		bl_ctr(c, BL_DROPPED, 1);
	return r > 0;
}

/*
 * Entries a new reservation looks at on a partial stack (bl_pop()): the
 * fullest of them is taken. bench_frag_v3 (1 thread, 2*10^7
 * replacements): 1 (the top entry) 0.886 of the free memory in order-9
 * blocks, 4 0.899, 16 0.900, 64 0.903; each renewal takes a fuller unit,
 * which fills sooner (bench/README.md, bench_frag_v3).
 */
#define BL_PICK 8
/* Chain u (its link ours, pstk kept) in front of first..last. */
static void bl_chain(struct bl_zone *z, uint32_t u, uint32_t *first,
		     uint32_t *last)
{
	/* Relaxed: pushed by push_chain's release (lf_stack.c S4). */
	lf_store_u32(&z->plink[u], *first, LF_RELAXED);
	*first = u;
	if (*last == LF_STACK_NIL)
		*last = u;
}

/*
 * Our reservation for order k from partial stack j >= k: of its first
 * BL_PICK entries (taken in one CAS), the unit with the fewest free
 * frames that can serve order k: fullest first, so that the emptiest
 * units get no new blocks, drain and go back to the core (the entry on
 * top is only the unit listed last). The others that can serve go back
 * in one chain with their pstk (B3: their links stayed ours, as
 * bl_want_stack()); the rest are re-filed (dropped, or listed at their
 * smaller class). Inside our section: the units taken are carried (B4).
 */
static uint32_t bl_pop(struct bl_ctx *c, unsigned j, unsigned k)
{
	struct bl_zone *z = c->z;
	for (;;) {
		uint32_t n, best = BL_NONE, first = LF_STACK_NIL,
			    last = LF_STACK_NIL;
		uint32_t u = lf_stack_pop_n(&z->partial[j].s, z->plink,
					    z->nunits, BL_PICK, &n);
		unsigned bf = BU_FRAMES + 1;
		if (u == LF_STACK_NIL)
			return BL_NONE;
		while (u != LF_STACK_NIL) {
			/* Relaxed: the chain is ours (pop_n's acquire). */
			uint32_t next = lf_load_u32(&z->plink[u], LF_RELAXED);
			/* Acquire: a hint; bl_refile() loads it again. */
			uint64_t w = lf_load_u64(&z->word[BU_W(u)], LF_ACQUIRE);
			if (w == BU_CORE || bu_reserved(w) ||
			    bu_free_bits(w) == 0 || bl_class(w) < k) {
				(void)bl_refile(c, u, j, BL_CLASSES);
			} else if (bu_free_frames(w) >= bf) {
				bl_chain(z, u, &first, &last);
			} else {
				if (best != BL_NONE)
					bl_chain(z, best, &first, &last);
				best = u;
				bf = bu_free_frames(w);
			}
			u = next;
		}
		if (first != LF_STACK_NIL)
			lf_stack_push_chain(&z->partial[j].s, z->plink, first,
					    last);
		if (best != BL_NONE && bl_refile(c, best, j, k))
			return best;
	}
}

/*
 * Sweep partial stack j < k, whose entries may name units whose class
 * grew since they were listed: take the whole stack in one CAS and
 * re-file every entry (one pop at a time would meet the entries it lists
 * again); the first that can serve order k becomes our reservation.
 */
static uint32_t bl_sweep(struct bl_ctx *c, unsigned j, unsigned k)
{
	struct bl_zone *z = c->z;
	uint32_t u = lf_stack_pop_all(&z->partial[j].s), found = BL_NONE;
	while (u != LF_STACK_NIL) {
		/* Relaxed: the detached chain is ours (pop_all's acquire). */
		uint32_t next = lf_load_u32(&z->plink[u], LF_RELAXED);
		if (bl_refile(c, u, j, found == BL_NONE ? k : BL_CLASSES))
			found = u;
		u = next;
	}
	return found;
}

/*
 * Fresh units from the source (bl_src_take(): one unit, or a line), reserved;
 * the first is our res. Never a line if we keep a line already (a unit for an
 * order the line cannot serve, bl_alloc_slow()) nor after a drain
 * (bl_drain() asks for single units). BL_NONE if the source has none. Inside
 * our section.
 */
static uint32_t bl_take(struct bl_ctx *c)
{
	struct bl_zone *z = c->z;
	/* Relaxed: only we write it. */
	bool line = lf_load_u32(&c->line, LF_RELAXED) == BL_NONE && !c->single;
	uint32_t n, u = bl_src_take(c, line, &n);
	if (u == BL_NONE)
		return BL_NONE;
	c->single = 0;
	for (uint32_t i = 0; i < n; i++)
		/*
		 * A store: the word is 0 and the unit ours; every lower
		 * transition needs a lower word, so nobody CASes it now.
		 * Release: pairs with the acquire load of the word's next
		 * CAS loop.
		 */
		lf_store_u64(&z->word[BU_W(u + i)], bu_make(0, BU_FRAMES, true),
			     LF_RELEASE);
	/* A line is aligned (bl_free_hint()'s test relies on it). */
	LF_ASSERT(n != BL_LINE || u % BL_LINE == 0);
	if (n == BL_LINE)
		/* Release: pairs with the acquire loads of the stealers. */
		lf_store_u32(&c->line, u, LF_RELEASE);
	bl_set_res(c, u);
	bl_src_named(c);
	bl_ctr(c, BL_TAKEN, n);
	return u;
}

/*
 * A new reservation for order k: the partial stacks of classes k and up,
 * those below too if sweep (entries whose unit grew), then the source.
 * The in-flight section is entered before the first pop or take, and
 * only if a stack or the source holds something: a pass over nothing
 * enters none, so two contexts failing on an exhausted zone see each
 * other quiet (as buddy_take_once() in buddy_core.c). Over the core
 * (shift 5) the pops' section ends before the take: the core's take
 * enters its own section before its claim, which bl_take() leaves once
 * the units are named, and buddy_unit_take()'s failing loop, which waits
 * for the other contexts to be quiet, must not run inside a section of
 * ours (our busy word is the core's: two contexts waiting so would see
 * each other in flight forever).
 */
#if BL_RING
/*
 * The fullest unit of our ring of each class j >= k (best[j], BL_NONE if
 * none): one pass over the ring's words (acquire loads: hints, checked
 * again by bl_ring_take()).
 */
static void bl_ring_best(struct bl_ctx *c, unsigned k, uint32_t *best)
{
	struct bl_zone *z = c->z;
	unsigned bf[BL_CLASSES];
	for (unsigned j = 0; j < BL_CLASSES; j++) {
		best[j] = BL_NONE;
		bf[j] = BU_FRAMES + 1;
	}
	for (unsigned n = 0; n < c->rn; n++) {
		uint32_t u = bl_ring_at(c, n);
		/* Acquire: a hint; bl_ring_take() loads it again. */
		uint64_t w = lf_load_u64(&z->word[BU_W(u)], LF_ACQUIRE);
		if (w == BU_CORE || bu_reserved(w) || bu_free_bits(w) == 0)
			continue;
		unsigned j = bl_class(w);
		if (j < k || bu_free_frames(w) >= bf[j])
			continue;
		best[j] = u;
		bf[j] = bu_free_frames(w);
	}
}

/*
 * Unit u of our ring out of it, as our reservation if it still serves
 * order k (a free block of order >= k, unreserved); else left as
 * bl_ring_evict() leaves it (listed at its class, or to a free later).
 * Inside our section. The mark is cleared before the reservation's CAS
 * (B3: a reserved unit carries no ring mark, so its release lists it).
 */
static uint32_t bl_ring_take(struct bl_ctx *c, uint32_t u, unsigned k)
{
	uint64_t w;
	unsigned n;
	bool found = bl_ring_find(c, u, &n);
	LF_ASSERT(found);
	(void)found;
	bl_ring_remove(c, n);
	bl_ring_unmark(c, u, &w);
	return bl_claim(c, u, w, k) > 0 ? u : BL_NONE;
}
#endif

static uint32_t bl_reserve(struct bl_ctx *c, unsigned k, bool sweep)
{
	struct bl_zone *z = c->z;
	uint32_t u = BL_NONE;
	bool in = false;
#if BL_RING
	/*
	 * Our ring's fullest unit of class j before partial stack j, for j =
	 * k, ..., 4 (item 16's order: the class popped, not a larger one,
	 * keeps the order-9 share; docs/v3-status.md item 39).
	 */
	uint32_t best[BL_CLASSES];
	bool ring = c->rn != 0;
	if (ring) {
		bl_busy(c, 1);
		in = true;
		bl_ring_best(c, k, best);
	}
#endif
	for (unsigned i = 0; i < BL_CLASSES && u == BL_NONE; i++) {
		unsigned j = (k + i) % BL_CLASSES; /* k, ..., 4, 0, ..., k-1 */
#if BL_RING
		if (ring && j >= k && best[j] != BL_NONE &&
		    (u = bl_ring_take(c, best[j], k)) != BL_NONE)
			break;
#endif
		if ((j < k && !sweep) || lf_stack_empty(&z->partial[j].s))
			continue;
		if (!in)
			bl_busy(c, 1);
		in = true;
		u = j < k ? bl_sweep(c, j, k) : bl_pop(c, j, k);
	}
#if BUDDY_CORE_SHIFT > 0
	if (in)
		bl_busy(c, -1);
	if (u == BL_NONE && bl_src_has(c))
		u = bl_take(c);
#else
	if (u == BL_NONE && bl_src_has(c)) {
		if (!in)
			bl_busy(c, 1);
		in = true;
		u = bl_take(c);
	}
	if (in)
		bl_busy(c, -1);
#endif
	return u;
}

/*
 * The other contexts' busy words summed (section boundaries crossed), or
 * UINT64_MAX if one is inside a section now: two equal sums around a
 * pass mean nobody entered or left a section meanwhile (buddy_core.c's
 * buddy_others_flight(), the same rule).
 */
static uint64_t bl_others_flight(const struct bl_ctx *c)
{
#if BUDDY_CORE_SHIFT > 0
	return buddy_others_flight(c->cpu); /* the same busy words */
#else
	const struct bl_zone *z = c->z;
	uint64_t sum = 0;
	for (uint32_t i = 0; i < z->nctx; i++) {
		if (i == c->id)
			continue;
		/* Acquire: pairs with the release stores of bl_busy(). */
		uint32_t w = lf_load_u32(&z->ctx[i].busy, LF_ACQUIRE);
		if ((w & 0xffu) != 0)
			return UINT64_MAX;
		sum += w;
	}
	return sum;
#endif
}

/* Allocate order k from one of d's reserved units (its res and line). */
static bool bl_from_ctx(struct bl_ctx *c, const struct bl_ctx *d, unsigned k,
			uint32_t *up, unsigned *off)
{
	struct bl_zone *z = c->z;
	/* Acquire: pair with the release stores naming them. */
	uint32_t u = lf_load_u32(&d->res, LF_ACQUIRE);
	uint32_t l = lf_load_u32(&d->line, LF_ACQUIRE);
	for (uint32_t i = 0; i <= BL_LINE; i++) {
		uint32_t v = i == 0 ? u : l == BL_NONE ? BL_NONE : l + i - 1;
		if (v != BL_NONE && (i == 0 || v != u) &&
		    bu_cas_alloc_m(&z->word[BU_W(v)], k, BU_FRAMES, off, NULL,
				   BL_MASK_OF(c, &z->word[BU_W(v)]),
				   BL_SEEN(c)) == BUDDY_OK) {
			*up = v;
			return true;
		}
	}
	return false;
}

/* Allocate from another context's reservation. */
static bool bl_steal(struct bl_ctx *c, unsigned k, uint32_t *up, unsigned *off)
{
	struct bl_zone *z = c->z;
	for (uint32_t i = 1; i < z->nctx; i++)
		if (bl_from_ctx(c, &z->ctx[(c->id + i) % z->nctx], k, up,
				off)) {
			bl_ctr(c, BL_STOLEN, 1);
			return true;
		}
	return false;
}

/*
 * Allocate order k in a unit that a context's hand-over ring names, ours
 * first, by CAS on its word (the ring stays as it is): a failing pass's
 * look at the rings, as bl_steal()'s at the reservations. A unit enters
 * or leaves a ring only inside its owner's section, and the slots are
 * written with release there (bl_ring_set()): a ring's unit that this
 * pass misses moved inside a section its window sees, so ENOMEM stays
 * exact over the rings (docs/design.md 2.7, "The hand-over ring").
 */
static bool bl_rings_alloc(struct bl_ctx *c, unsigned k, uint32_t *up,
			   unsigned *off)
{
#if BL_RING
	struct bl_zone *z = c->z;
	for (uint32_t i = 0; i < z->nctx; i++) {
		struct bl_ctx *d = &z->ctx[(c->id + i) % z->nctx];
		/* Acquire: pairs with bl_ring_count()'s release. */
		if (lf_load_u32(&d->rlen, LF_ACQUIRE) == 0)
			continue;
		for (unsigned n = 0; n < BL_RING; n++) {
			/* Acquire: pairs with bl_ring_set()'s release. */
			uint32_t u = lf_load_u32(&d->ring[n], LF_ACQUIRE);
			if (u == BL_NONE)
				continue;
			lf_atomic_u64 *a = &z->word[BU_W(u)];
			/* Relaxed: a filter; bu_cas_alloc_m() loads with
			 * acquire. */
			if (bu_free_frames(lf_load_u64(a, LF_RELAXED)) <
			    1u << k)
				continue;
			/* The mask's snapshot with the word, as every
			 * allocation's (bl_mask_clear()). */
			if (bu_cas_alloc_m(a, k, BU_FRAMES, off, NULL,
					   BL_MASK_OF(c, a),
					   BL_SEEN(c)) == BUDDY_OK) {
				*up = u;
				return true;
			}
		}
	}
#else
	(void)c;
	(void)k;
	(void)up;
	(void)off;
#endif
	return false;
}

/*
 * The statistics of a lower allocation or free. Over the core (shift 5)
 * the public call counts it in the core's context (buddy_alloc_done(),
 * buddy_free_done()) and buddy_zone_stats() scans the words for the free
 * frames, so these counters, read by nothing there, are kept at shift 0
 * only (test_buddy_lower's conservation): two counters a call fewer on
 * the per-CPU path (bench_buddy_v3, bench/README.md).
 */
static inline void bl_count(struct bl_ctx *c, enum bl_ctr what, unsigned k)
{
#if BUDDY_CORE_SHIFT == 0
	bl_ctr(c, what, 1);
	bl_ctr(c, BL_LFREE,
	       what == BL_ALLOCS ? -((uint64_t)1 << k) : (uint64_t)1 << k);
#else
	(void)c;
	(void)what;
	(void)k;
#endif
}

/*
 * Order k in a unit of our line l other than res (u), in line order, by
 * the buddy's pick; a unit with fewer than 2^k free frames is passed over
 * on one load (mixed orders: most units cannot serve the larger ones).
 */
static bool bl_from_line(struct bl_ctx *c, uint32_t u, uint32_t l, unsigned k,
			 uint32_t *up, unsigned *off)
{
	for (uint32_t i = 0; l != BL_NONE && i < BL_LINE; i++) {
		lf_atomic_u64 *a = &c->z->word[BU_W(l + i)];
		/* Relaxed: a filter; bu_cas_alloc() loads with acquire. */
		if (l + i == u ||
		    bu_free_frames(lf_load_u64(a, LF_RELAXED)) < 1u << k)
			continue;
		if (bu_cas_alloc_m(a, k, BU_FRAMES, off, NULL, BL_MASK_OF(c, a),
				   BL_SEEN(c)) == BUDDY_OK) {
			*up = l + i;
			return true;
		}
	}
	return false;
}

/* Does a partial stack of class k or up hold an entry? (A hint.) */
static bool bl_partial_has(const struct bl_ctx *c, unsigned k)
{
	for (unsigned j = k; j < BL_CLASSES; j++)
		if (!lf_stack_empty(&c->z->partial[j].s))
			return true;
	return false;
}

/* Does a unit of line l still hold a free frame for us? (A hint.) */
static bool bl_line_free(const struct bl_ctx *c, uint32_t l)
{
	for (uint32_t i = 0; i < BL_LINE; i++) {
		/* Relaxed: a hint; the CASes on the words decide. */
		uint64_t w = lf_load_u64(&c->z->word[BU_W(l + i)], LF_RELAXED);
		if (w != BU_CORE && bu_reserved(w) && bu_free_bits(w) != 0)
			return true;
	}
	return false;
}

/*
 * Neither res (u) nor the rest of our line (l) can serve order k. Mixed
 * orders (bench_buddy's mixed): a line that still has free frames keeps
 * serving the smaller orders, so it is kept and the order gets one extra
 * unit of its own as res, outside the line (bl_take() takes a single
 * unit while a line is kept); an extra unit that cannot serve k either
 * is released (listed: its free frames stay findable) and res goes back
 * to the line. Releasing the whole line each time (before) made every
 * order that did not fit send 8 units to the partial stacks or the core
 * and take new ones: 51 ns a pair on mixed against 15 for version 2.
 * Order 0 or a line without a free frame: everything is released.
 */
static void bl_let_go(struct bl_ctx *c, unsigned k, uint32_t u, uint32_t l)
{
	if (k == 0 || l == BL_NONE || !bl_partial_has(c, k) ||
	    !bl_line_free(c, l)) {
		bl_release(c);
		return;
	}
	if (bl_in_line(l, u))
		return; /* the extra unit will be res, the line named */
	bl_busy(c, 1);
	bl_release_unit(c, u);
	bl_set_res(c, l);
	bl_hints_forget(c, u, false);
	bl_busy(c, -1);
}

/*
 * Over the core: drain every CPU's per-CPU block cache (buddy_cache.c,
 * version 2's exclusion), true if one held a block; a failing pass's
 * ENOMEM needs false inside its window (exact over the caches).
 */
static bool bl_caches_drain(struct bl_ctx *c)
{
#if BUDDY_CORE_SHIFT > 0
	return buddy_zone_drain_some(c->cpu);
#else
	(void)c;
	return false;
#endif
}

/*
 * The drains this context made (of any CPU's cache): a pass during which
 * it drained (the core's failing loop under bl_reserve() drains every
 * cache) moved memory behind its own look and fails only after another
 * pass (others' drains break the window by their sections).
 */
static uint64_t bl_drains(const struct bl_ctx *c)
{
#if BUDDY_CORE_SHIFT > 0
	/* Relaxed: our own counter. */
	return lf_load_u64(&c->cpu->ctr[BC_DRAINS], LF_RELAXED);
#else
	(void)c;
	return 0;
#endif
}

/*
 * bl_alloc() when the hint did not serve (buddy_lower.h): the
 * reservation's pick, the rest of its line, then a new reservation or
 * ENOMEM. Out of line, so that the hint's path saves no registers for it.
 */
BL_NOINLINE int bl_alloc_slow(struct bl_ctx *c, unsigned k, uint32_t *frame)
{
	struct bl_zone *z = c->z;
	/* Relaxed: only we write them. */
	uint32_t u = lf_load_u32(&c->res, LF_RELAXED);
	uint32_t l = lf_load_u32(&c->line, LF_RELAXED), v;
	unsigned off = BU_FRAMES;
	c->hint[k] = BL_NONE; /* it did not serve */
	if (u != BL_NONE) {
		/* The buddy's pick in the reservation. */
		if (bu_cas_alloc_m(&z->word[BU_W(u)], k, BU_FRAMES, &off, NULL,
				   BL_MASK_OF(c, &z->word[BU_W(u)]),
				   BL_SEEN(c)) == BUDDY_OK)
			goto done;
		/*
		 * Another unit of our line: it becomes res (still named),
		 * unless res is an extra unit outside the line (bl_let_go()),
		 * which stays res (named by nothing else).
		 */
		if (bl_from_line(c, u, l, k, &v, &off)) {
			if (bl_in_line(l, u))
				bl_set_res(c, v);
			u = v;
			goto done;
		}
		bl_let_go(c, k, u, l); /* they cannot serve order k now */
	}
	/*
	 * ENOMEM is exact: it comes only after a pass over the partial
	 * stacks (swept), the source and every reservation in a window in
	 * which no other context was in a section or crossed a boundary of
	 * one. Memory moves between those places only inside sections (a
	 * free, a listing, a release, a unit taken or given back, a pop and
	 * its re-filing), so a move that overlaps the window breaks it, one
	 * before it left the memory where the pass looks, one after it moved
	 * memory the pass did not miss. While others are in flight, retry.
	 */
	/*
	 * The first pass sweeps the classes below k too, before it takes a
	 * fresh unit from the source: entries there may name units whose
	 * class grew since they were listed (frees do not list a listed unit
	 * again), and taking fresh units while those wait spreads the small
	 * blocks over ever more units, so that no order-9 block stays whole
	 * (bench_frag_v3 at 60% use: 5,745 of 8,192 units lower, mostly
	 * nearly empty, and 78,585 ENOMEMs at order >= 5 without the sweep;
	 * about 2,400 lower units and 10 ENOMEMs with it; bench/README.md).
	 */
	bool sweep = true;
	for (unsigned attempt = 0;; attempt++) {
		uint64_t before = bl_others_flight(c), drains = bl_drains(c);
		u = bl_reserve(c, k, sweep);
		if (u != BL_NONE) {
			if (bu_cas_alloc_m(&z->word[BU_W(u)], k, BU_FRAMES,
					   &off, NULL,
					   BL_MASK_OF(c, &z->word[BU_W(u)]),
					   BL_SEEN(c)) == BUDDY_OK)
				goto done;
			bl_release(c); /* taken by others meanwhile */
			continue;
		}
		/*
		 * Our own reservation too, inside the window: a kept line
		 * (bl_let_go()) is a place memory may appear in (a remote
		 * free) after our look at it above.
		 */
		if (bl_from_ctx(c, c, k, &u, &off) ||
		    bl_steal(c, k, &u, &off) || bl_rings_alloc(c, k, &u, &off))
			goto done;
		/*
		 * Every CPU's cache seen empty inside the window, before its
		 * second look (a drain found memory: look again).
		 */
		bool empty = before != UINT64_MAX && sweep &&
			     !bl_caches_drain(c) && bl_drains(c) == drains;
		uint64_t after = bl_others_flight(c);
		bool quiet = before != UINT64_MAX && after == before;
		if (quiet && empty)
			return BUDDY_ENOMEM;
		/*
		 * Sweeps (a section when a lower stack holds entries) only
		 * now and then, so that two failing contexts do not keep
		 * breaking each other's windows. A pause only while another
		 * context is in a section now: a window broken by a section
		 * that has ended (the core's failing loop under bl_reserve()
		 * may have waited it out) is looked at again at once.
		 */
		sweep = quiet || attempt == 0 || attempt % 16 == 15;
		if (!sweep && after == UINT64_MAX)
			lf_platform_pause();
	}
done:
	BL_MASK_CLEAR(c, u, bl_mask_bits(off, k), BL_SEEN_V(c));
	*frame = u * BU_FRAMES + off;
	bl_count(c, BL_ALLOCS, k);
	return BUDDY_OK;
}

/*
 * The per-CPU path first: the hint (bl_alloc_hint(), buddy_lower.h);
 * everything else in bl_alloc_slow().
 */
int bl_alloc(struct bl_ctx *c, unsigned k, uint32_t *frame)
{
	if (k > BU_MAX_ORDER)
		return BUDDY_EINVAL;
	if (LF_LIKELY(bl_alloc_hint(c, k, frame))) {
		bl_count(c, BL_ALLOCS, k);
		return BUDDY_OK;
	}
	return bl_alloc_slow(c, k, frame);
}

#if BL_RING
/*
 * Our free's CAS has just made unreserved unit u's word 0 (every frame
 * free), inside our section: the unit is ours until bl_give() hands it
 * to the core, and nobody else changes a word 0 that the core does not
 * hold. A unit of our ring is kept below instead (docs/v3-status.md item
 * 50), as our new res, when our reservation is about to need a successor:
 * res a single unit (no line) with at most BL_KEEP_FREE free frames. It
 * leaves the ring (slot, then mark: B3, as bl_ring_take()), is stored
 * reserved with every frame free (as bl_take() stores a fresh unit) and
 * named by res, and the old res is released as bl_let_go() releases one
 * (into our ring, or nowhere while full). Without it a CPU that holds no
 * line takes a fresh unit from the core and gives an emptied one back for
 * each reservation it fills (bench_buddy_v3's bulk: one of each a batch
 * of 64). Not a unit of no ring or another's (mixed at 2 CPUs: keeping
 * those, one or two a run, moved the row's placement), nor, looked
 * at on every 8th keep (bl_line_shared() reads every context's names),
 * one that shares its line of words with another context's reservation:
 * that one goes to the core, so that our next bl_take() applies the line
 * rule. True if kept.
 */
#define BL_KEEP_FREE (BU_FRAMES / 2)
static bool bl_keep_emptied(struct bl_ctx *c, uint32_t u)
{
	/* Relaxed: only we write them. */
	uint32_t r = lf_load_u32(&c->res, LF_RELAXED);
	if (r == BL_NONE || lf_load_u32(&c->line, LF_RELAXED) != BL_NONE)
		return false;
	/* Acquire: pairs with the CAS that wrote the word (a hint). */
	uint64_t rw = lf_load_u64(&c->z->word[BU_W(r)], LF_ACQUIRE), w;
	unsigned n;
	if (rw == BU_CORE || !bu_reserved(rw) ||
	    bu_free_frames(rw) > BL_KEEP_FREE || !bl_ring_find(c, u, &n))
		return false;
	if (c->keeps++ % 8 == 0 && bl_line_shared(c, u))
		return false;
	bl_ring_remove(c, n);
	bl_ring_unmark(c, u, &w);
	LF_ASSERT(w == BU_CORE); /* ours: nobody changes it */
	/*
	 * A store, as bl_take()'s: the word is 0 and the unit ours. Release:
	 * pairs with the acquire load of the word's next CAS loop.
	 */
	lf_store_u64(&c->z->word[BU_W(u)], bu_make(0, BU_FRAMES, true),
		     LF_RELEASE);
	bl_release_unit(c, r);
	bl_set_res(c, u);
	bl_hints_forget(c, r, false);
	return true;
}
#endif

/*
 * bl_free_cas()'s unit left unreserved (buddy_lower.h). Out of the free's
 * line: a free into its own reservation needs neither.
 */
BL_NOINLINE void bl_free_unreserved(struct bl_ctx *c, uint32_t u, uint64_t nw)
{
#if BL_RING
	if (nw == BU_CORE && bl_keep_emptied(c, u))
		return;
#endif
	if (nw == BU_CORE)
		bl_give(c, u);
	else
		bl_ring_list(c, u, nw);
}

/* The checks, a section around bl_free_cas() (buddy_lower.h), counters. */
int bl_free(struct bl_ctx *c, uint32_t frame, unsigned k)
{
	if (k > BU_MAX_ORDER)
		return BUDDY_EINVAL;
	if (frame / BU_FRAMES >= c->z->nunits)
		return BUDDY_ERANGE;
	if (frame & ((1u << k) - 1))
		return BUDDY_EALIGN;
	/* A section: memory appears (docs/design.md 2.7, "Sections"). */
	bl_busy(c, 1);
	int rc = bl_free_cas(c, frame, k);
	bl_busy(c, -1);
	if (rc != BUDDY_OK)
		return rc;
	bl_count(c, BL_FREES, k);
	return BUDDY_OK;
}

bool bl_reclaim(struct bl_ctx *c, uint32_t u)
{
	uint64_t ow, nw;
	/*
	 * Only a reserved word with every frame free is worth a section, so
	 * that a pass over nothing enters none (the core's failing loop
	 * calls this in each quiet window: buddy_take_global_held()).
	 * Acquire: pairs with the seq_cst CAS that wrote the word (a free
	 * inside its section), so that the failing pass's second look at
	 * the busy words, after this load, sees that section.
	 */
	if (bu_reclaim(lf_load_u64(&c->z->word[BU_W(u)], LF_ACQUIRE), &nw) !=
	    BUDDY_OK)
		return false;
	bl_busy(c, 1);
	bool done = bu_cas(&c->z->word[BU_W(u)], BU_OP_RECLAIM, 0, 0, &ow, &nw,
			   NULL) == BUDDY_OK;
	if (done)
		bl_give(c, u);
	bl_busy(c, -1);
	return done;
}

#if BUDDY_CORE_SHIFT > 0
/*
 * Reserved edge unit u with every frame of its region free (its word as
 * bl_zone_edge() made it, R set): it cannot go back to the core, so R is
 * cleared and the unit listed, as at init: the drain of a cache that
 * cannot be reclaimed (docs/design.md 2.7, B6). The reservation's name
 * goes stale, as a reclaimed unit's does. True if so.
 */
static bool bl_reclaim_edge(struct bl_ctx *c, uint32_t u)
{
	unsigned lo, hi;
	if (!buddy_unit_edge(c->cpu->zone, u, &lo, &hi))
		return false;
	uint64_t w = bu_make(lo, hi, true), nw = bu_make(lo, hi, false);
	/*
	 * Only that word is worth a section, as in bl_reclaim(): the core's
	 * failing loop calls this in each quiet window, and a pass over
	 * nothing must enter none. Acquire: as bl_reclaim()'s load.
	 */
	if (lf_load_u64(&c->z->word[BU_W(u)], LF_ACQUIRE) != w)
		return false;
	bl_busy(c, 1);
	/*
	 * Seq_cst: a change of R, as bu_cas() makes one (bu_release()):
	 * before bl_list()'s seq_cst load of pstk, against a popper's clear
	 * then load (the listing race). Its acquire half pairs with the CAS
	 * that last wrote the word (the owner's free).
	 */
	bool done = lf_cas_u64(&c->z->word[BU_W(u)], &w, nw, LF_SEQ_CST);
	if (done)
		bl_list(c, u, nw);
	bl_busy(c, -1);
	return done;
}
#endif

uint32_t bl_reclaim_all(struct bl_ctx *c)
{
	struct bl_zone *z = c->z;
	uint32_t n = 0;
	for (uint32_t i = 0; i < z->nctx; i++) {
		/* Acquire: pair with the release stores naming them. */
		uint32_t r = lf_load_u32(&z->ctx[i].res, LF_ACQUIRE);
		uint32_t l = lf_load_u32(&z->ctx[i].line, LF_ACQUIRE);
		for (uint32_t j = 0; j <= BL_LINE; j++) {
			uint32_t u = j == 0         ? r
				     : l == BL_NONE ? BL_NONE
						    : l + j - 1;
			if (u == BL_NONE || (j != 0 && u == r))
				continue;
			n += bl_reclaim(c, u);
#if BUDDY_CORE_SHIFT > 0
			/* A reserved word: maybe an edge unit, all free. */
			/* Relaxed: a hint; bl_reclaim_edge()'s CAS decides. */
			if (bu_reserved(
				    lf_load_u64(&z->word[BU_W(u)], LF_RELAXED)))
				(void)bl_reclaim_edge(c, u);
#endif
		}
	}
	return n;
}

/* Is u on partial stack j, exactly once? (Quiescence; O(n).) */
static unsigned bl_on_stack(const struct bl_zone *z, unsigned j, uint32_t u)
{
	/* Relaxed: at quiescence. */
	uint32_t x = lf_stack_word_top(
		lf_load_u64(&z->partial[j].s.head, LF_RELAXED));
	unsigned n = 0;
	for (uint32_t steps = 0; x != LF_STACK_NIL && steps <= z->nunits;
	     steps++) {
		n += x == u;
		x = lf_load_u32(&z->plink[x], LF_RELAXED);
	}
	return n;
}

int bl_zone_check(struct bl_zone *z, uint32_t *unit)
{
	for (uint32_t u = 0; u < z->nunits; u++) {
		*unit = u;
		/* Relaxed: at quiescence. */
		uint64_t w = lf_load_u64(&z->word[BU_W(u)], LF_RELAXED);
		uint16_t p = lf_load_u16(&z->pstk[u], LF_RELAXED);
		if (w != BU_CORE && !bu_valid(w))
			return 1;
		for (unsigned j = 0; j < BL_CLASSES; j++)
			if (bl_on_stack(z, j, u) != (p == j + 1 ? 1u : 0u))
				return 3;
#if BL_RING
		unsigned rings = 0;
		for (uint32_t i = 0; i < z->nctx; i++)
			for (unsigned n = 0; n < BL_RING; n++)
				rings += lf_load_u32(&z->ctx[i].ring[n],
						     LF_RELAXED) == u;
		if (rings != (p == BL_PRING ? 1u : 0u))
			return 3;
#endif
		if (p > BL_CLASSES && p != BL_PRING)
			return 3;
		if (w == BU_CORE || bu_free_bits(w) == 0)
			continue;
		bool named = false;
		for (uint32_t i = 0; i < z->nctx; i++)
			named |= lf_load_u32(&z->ctx[i].res, LF_RELAXED) == u ||
				 bl_in_line(lf_load_u32(&z->ctx[i].line,
							LF_RELAXED),
					    u);
		if (bu_reserved(w) ? !named : p == 0)
			return 4;
	}
#if BL_RING
	for (uint32_t i = 0; i < z->nctx; i++) {
		const struct bl_ctx *c = &z->ctx[i];
		if (lf_load_u32(&c->rlen, LF_RELAXED) != c->rn)
			return 3;
		for (unsigned n = 0; n < BL_RING; n++) {
			/* Relaxed: at quiescence. */
			uint32_t u = lf_load_u32(&c->ring[n], LF_RELAXED);
			bool in = (n + BL_RING - c->rh) % BL_RING < c->rn;
			*unit = u;
			if ((u != BL_NONE) != in ||
			    (u != BL_NONE &&
			     (u >= z->nunits ||
			      lf_load_u16(&z->pstk[u], LF_RELAXED) !=
				      BL_PRING)))
				return 3;
		}
	}
#endif
	return 0;
}

#if BUDDY_CORE_SHIFT > 0
/*
 * Constrained allocations over the core (docs/design.md 2.7,
 * "Constraints"): a block of order k ending by a frame index (alloc_below
 * of orders 0-4) or a run of fewer than 32 frames (bu_run). They take no
 * reservation and leave the context's alone: the block is allocated where
 * it is found, by one CAS on its unit's word, in a reserved unit of any
 * context (ours first), in a listed unit (popped, allocated in, re-filed),
 * or in a unit the core gives down for it (then listed, unreserved).
 * ENOMEM is exact as bl_alloc()'s: only after a pass over all of these
 * places, the partial stacks of every class included, in a window in
 * which no other context was in a section or crossed a boundary of one.
 */
struct bl_want {
	unsigned k;      /* the order of the block (a run's: bu_run_order) */
	unsigned n;      /* a run of n < 32 frames, or 0: a block of order k */
	uint64_t xend;   /* the block ends by this frame index */
	uint64_t climit; /* the core's limit for a unit (buddy_fits()) */
};

/* How far into unit u the block may reach (0-32): the limit's offset. */
static unsigned bl_want_end(const struct bl_want *q, uint32_t u)
{
	uint64_t b = (uint64_t)u * BU_FRAMES;
	if (q->xend <= b)
		return 0;
	return q->xend - b >= BU_FRAMES ? BU_FRAMES : (unsigned)(q->xend - b);
}

/* q's transition on word w (ending by frame end of the unit). */
static int bl_want_apply(const struct bl_want *q, uint64_t w, unsigned end,
			 uint64_t *nw, unsigned *off)
{
	if (q->n != 0)
		return bu_run(w, q->n, nw, off);
	return bu_alloc(w, q->k, end, nw, off);
}

/*
 * q in unit u by CAS: BUDDY_OK (*off), BUDDY_ENOMEM (nothing fits: the
 * unit is wholly above the limit, or its free blocks are too small or
 * too high), or BU_NOT_LOWER. A unit wholly above the limit is not even
 * loaded.
 */
static int bl_want_cas(struct bl_ctx *c, uint32_t u, const struct bl_want *q,
		       unsigned *off)
{
	lf_atomic_u64 *a = &c->z->word[BU_W(u)];
	unsigned end = bl_want_end(q, u);
	if (end < 1u << q->k)
		return BUDDY_ENOMEM;
	/* Acquire: pairs with the CAS or store that wrote the word. */
	uint64_t w = lf_load_u64(a, LF_ACQUIRE), nw = 0;
	for (;;) {
		if (w == BU_CORE)
			return BU_NOT_LOWER;
		int rc = bl_want_apply(q, w, end, &nw, off);
		if (rc != BUDDY_OK)
			return rc;
		/*
		 * Acq_rel: a claim, as bu_cas_alloc(); acquire on failure.
		 * Over units the mask's snapshot compared with the word, as
		 * bu_cas_alloc_m()'s (bu_cas_word_m(): the word's ABA).
		 */
		if (bu_cas_word_m(a, &w, nw, BL_MASK_OF(c, a), BL_SEEN(c),
				  LF_ACQ_REL))
			return BUDDY_OK;
	}
}

/* q in one of d's reserved units (its res and line; d may be c). */
static bool bl_want_ctx(struct bl_ctx *c, const struct bl_ctx *d,
			const struct bl_want *q, uint32_t *up, unsigned *off)
{
	/* Acquire: pair with the release stores naming them. */
	uint32_t u = lf_load_u32(&d->res, LF_ACQUIRE);
	uint32_t l = lf_load_u32(&d->line, LF_ACQUIRE);
	for (uint32_t i = 0; i <= BL_LINE; i++) {
		uint32_t v = i == 0 ? u : l == BL_NONE ? BL_NONE : l + i - 1;
		if (v != BL_NONE && (i == 0 || v != u) &&
		    bl_want_cas(c, v, q, off) == BUDDY_OK) {
			*up = v;
			return true;
		}
	}
	return false;
}

/*
 * Partial stack j, taken whole (one CAS): q in the first entry that can
 * serve it, which is then re-filed; the others that are still partial
 * units of class j go back in one chain (their pstk kept: the stack
 * holds their links again), the rest are re-filed (dropped, or listed at
 * their class). Inside our section.
 */
static uint32_t bl_want_stack(struct bl_ctx *c, unsigned j,
			      const struct bl_want *q, unsigned *off)
{
	struct bl_zone *z = c->z;
	uint32_t u = lf_stack_pop_all(&z->partial[j].s), found = BL_NONE;
	uint32_t first = LF_STACK_NIL, last = LF_STACK_NIL;
	while (u != LF_STACK_NIL) {
		/* Relaxed: the detached chain is ours (pop_all's acquire). */
		uint32_t next = lf_load_u32(&z->plink[u], LF_RELAXED);
		if (found == BL_NONE && bl_want_cas(c, u, q, off) == BUDDY_OK) {
			found = u;
			(void)bl_refile(c, u, j, BL_CLASSES);
		} else {
			/* Acquire: a hint; the link stays ours either way. */
			uint64_t w = lf_load_u64(&z->word[BU_W(u)], LF_ACQUIRE);
			if (w != BU_CORE && !bu_reserved(w) &&
			    bu_free_bits(w) != 0 && bl_class(w) == j) {
				/* Relaxed: pushed by push_chain (S4). */
				lf_store_u32(&z->plink[u], first, LF_RELAXED);
				first = u;
				if (last == LF_STACK_NIL)
					last = u;
			} else {
				(void)bl_refile(c, u, j, BL_CLASSES);
			}
		}
		u = next;
	}
	if (first != LF_STACK_NIL)
		lf_stack_push_chain(&z->partial[j].s, z->plink, first, last);
	return found;
}

/*
 * The partial stacks of classes k and up, those below too if sweep (an
 * entry's class only grows): a section entered only if one holds entries.
 */
static uint32_t bl_want_partial(struct bl_ctx *c, const struct bl_want *q,
				bool sweep, unsigned *off)
{
	struct bl_zone *z = c->z;
	uint32_t u = BL_NONE;
	bool in = false;
	for (unsigned j = 0; j < BL_CLASSES && u == BL_NONE; j++) {
		if ((j < q->k && !sweep) || lf_stack_empty(&z->partial[j].s))
			continue;
		if (!in)
			bl_busy(c, 1);
		in = true;
		u = bl_want_stack(c, j, q, off);
	}
	if (in)
		bl_busy(c, -1);
	return u;
}

/*
 * A unit from the core, below q's limit, made lower with q's block
 * allocated at its start and listed. The core's take waits while other
 * core contexts are in flight and leaves us inside its section, which
 * ends once the unit is named.
 */
static uint32_t bl_want_take(struct bl_ctx *c, const struct bl_want *q,
			     unsigned *off)
{
	uint32_t x;
	if (buddy_unit_take_below(c->cpu, q->climit, &x) != BUDDY_OK)
		return BL_NONE;
	uint64_t w;
	int rc = bl_want_apply(q, bu_make(0, BU_FRAMES, false), BU_FRAMES, &w,
			       off);
	LF_ASSERT(rc == BUDDY_OK && *off == 0);
	bl_adopt(c, buddy_cx(x), w, 0);
#if BUDDY_CORE_SHIFT > 0
	c->seen = 0; /* the mask 0 (bl_adopt()): nothing to clear */
#endif
	bl_src_named(c);
	return buddy_cx(x);
}

/* Every context's reservation, ours first. */
static bool bl_want_steal(struct bl_ctx *c, const struct bl_want *q,
			  uint32_t *up, unsigned *off)
{
	struct bl_zone *z = c->z;
	for (uint32_t i = 0; i < z->nctx; i++)
		if (bl_want_ctx(c, &z->ctx[(c->id + i) % z->nctx], q, up, off))
			return true;
	return false;
}

/*
 * q in a unit that a context's hand-over ring names (the first pass's
 * look at the rings; the later passes scan every word), as
 * bl_rings_alloc().
 */
static bool bl_want_rings(struct bl_ctx *c, const struct bl_want *q,
			  uint32_t *up, unsigned *off)
{
	struct bl_zone *z = c->z;
	for (uint32_t i = 0; i < z->nctx; i++) {
		const struct bl_ctx *d = &z->ctx[(c->id + i) % z->nctx];
		/* Acquire: pairs with bl_ring_count()'s release. */
		if (lf_load_u32(&d->rlen, LF_ACQUIRE) == 0)
			continue;
		for (unsigned n = 0; n < BL_RING; n++) {
			/* Acquire: pairs with bl_ring_set()'s release. */
			uint32_t u = lf_load_u32(&d->ring[n], LF_ACQUIRE);
			if (u != BL_NONE &&
			    bl_want_cas(c, u, q, off) == BUDDY_OK) {
				*up = u;
				return true;
			}
		}
	}
	return false;
}

/*
 * A failing pass's look at the lower level (no section): q in any lower
 * unit below its limit, by a scan of their words (acquire loads, as
 * bl_want_cas()), reserved, listed or neither, allocated by CAS where it
 * fits. O(units below the limit); units wholly above it are not loaded.
 */
static bool bl_want_scan(struct bl_ctx *c, const struct bl_want *q,
			 uint32_t *up, unsigned *off)
{
	for (uint32_t u = 0; u < c->z->nunits; u++) {
		if (bl_want_end(q, u) < 1u << q->k)
			return false; /* so is every later unit: above */
		if (bl_want_cas(c, u, q, off) == BUDDY_OK) {
			*up = u;
			return true;
		}
	}
	return false;
}

/*
 * A failing pass's look at the core (no section): does a free block of
 * the core start at a unit below q's limit (what buddy_unit_take_below()
 * takes)? The core's state words of the unit heads below the limit, in
 * region order (sorted: the first unit past the limit ends the look).
 */
static bool bl_want_core_has(struct bl_ctx *c, const struct bl_want *q)
{
	const struct buddy_zone *z = c->cpu->zone;
	for (uint32_t i = 0; i < z->nrgn; i++) {
		const struct buddy_rgn *r = &z->rgn[i];
		uint32_t x = (r->idx + BU_FRAMES - 1) & ~(BU_FRAMES - 1);
		for (; x < r->idx + r->n; x += BU_FRAMES) {
			if (r->pfn + (x - r->idx) + BU_FRAMES > q->climit)
				return false;
			/*
			 * Acquire: pairs with the release that published the
			 * block; a claim, free or merge of it since was inside
			 * a section our window sees.
			 */
			uint16_t s = lf_load_u16(buddy_st(z, x), LF_ACQUIRE);
			if (bst_kind(s) == BK_FREE)
				return true;
		}
	}
	return false;
}

/*
 * The pass, then the failing loop. The first pass takes the partial
 * stacks of every class whole (sections over them; the placement of
 * bl_want_stack()), the later ones only look: the lower words by
 * bl_want_scan(), the core by bl_want_core_has() before its take, so
 * that a failing pass after the first enters no section of its own and
 * cannot break another's window (docs/design.md 2.7, "Constraints":
 * why this ends). ENOMEM after any pass that found nothing in a quiet
 * window: each pass looks at every place memory below the limit can be
 * (a lower word, reserved or not, or the core; in transit only inside
 * a section).
 */
static int bl_want_alloc(struct bl_ctx *c, const struct bl_want *q,
			 uint32_t *frame)
{
	uint32_t u = BL_NONE;
	unsigned off = 0;
	for (unsigned attempt = 0;; attempt++) {
		uint64_t before = bl_others_flight(c), drains = bl_drains(c);
		if (bl_want_steal(c, q, &u, &off))
			break;
		if (attempt == 0) {
			u = bl_want_partial(c, q, true, &off);
			if (u == BL_NONE && !bl_want_rings(c, q, &u, &off))
				u = BL_NONE;
		} else if (!bl_want_scan(c, q, &u, &off))
			u = BL_NONE;
		if (u != BL_NONE)
			break;
		bool asked = bl_want_core_has(c, q);
		if (asked && (u = bl_want_take(c, q, &off)) != BL_NONE)
			break;
		/* Every CPU's cache seen empty in the window, as above. */
		if (before != UINT64_MAX && !bl_caches_drain(c) &&
		    bl_drains(c) == drains && bl_others_flight(c) == before)
			return BUDDY_ENOMEM;
		/*
		 * The core's failing loop has waited already (its passes after
		 * the first look and pause while others are in flight), and
		 * our window began before its waits: look again at once.
		 */
		if (!asked)
			lf_platform_pause();
	}
	BL_MASK_CLEAR(c, u,
		      q->n != 0 ? (uint32_t)bu_bits(q->n) << off
				: bl_mask_bits(off, q->k),
		      BL_SEEN_V(c));
	*frame = u * BU_FRAMES + off;
	bl_ctr(c, BL_ALLOCS, 1);
	bl_ctr(c, BL_LFREE, -(uint64_t)(q->n != 0 ? q->n : 1u << q->k));
	return BUDDY_OK;
}

int bl_alloc_below(struct bl_ctx *c, unsigned k, uint64_t xend, uint64_t climit,
		   uint32_t *frame)
{
	if (k > BU_MAX_ORDER)
		return BUDDY_EINVAL;
	struct bl_want q = { k, 0, xend, climit };
	return bl_want_alloc(c, &q, frame);
}

int bl_alloc_run(struct bl_ctx *c, unsigned n, uint32_t *frame)
{
	if (n == 0 || n >= BU_FRAMES)
		return BUDDY_EINVAL;
	struct bl_want q = { bu_run_order(n), n, UINT64_MAX, BUDDY_NOLIMIT };
	return bl_want_alloc(c, &q, frame);
}

void bl_adopt(struct bl_ctx *c, uint32_t u, uint64_t w, unsigned held)
{
	/*
	 * Seq_cst: the unit is ours (its core word LOWER, by us) and nobody
	 * CASes a word 0; the store comes before our load of pstk in
	 * bl_list(), as a free's CAS does (a stale entry's popper clears
	 * pstk, then loads the word: one of us sees the other).
	 */
#if BUDDY_CORE_SHIFT > 0
	/*
	 * The cached mask's bits 0 before the word is published, its version
	 * advanced (a clear: buddy_lower.h, BL_MASK_BITS): its blocks were
	 * allocated on a copy, no clear of theirs ran.
	 */
	lf_atomic_u64 *mk = &c->mask[BU_W(u)];
	/* Relaxed: compared by the CAS. */
	uint64_t m = lf_load_u64(mk, LF_RELAXED);
	/*
	 * Release: pairs with a cached free's acquire load of the mask (item
	 * 57): one that reads our version then reads the word as 0 (the
	 * unit's trip to the core, before us) or our store below, never a
	 * word of the unit's life before that trip. Relaxed on failure.
	 */
	while (!lf_cas_u64(mk, &m, (m & ~BL_MASK_BITS) + BU_MASK_VER,
			   LF_RELEASE))
		;
#endif
	lf_store_u64(&c->z->word[BU_W(u)], w, LF_SEQ_CST);
	if (bu_free_bits(w) != 0 && !bu_reserved(w))
		bl_list(c, u, w);
	bl_ctr(c, BL_TAKEN, 1);
	if (held != 0) {
		bl_ctr(c, BL_ALLOCS, 1);
		bl_ctr(c, BL_LFREE, -(uint64_t)held);
	}
}

int bl_alloc_at(struct bl_ctx *c, uint32_t frame, unsigned k)
{
	uint64_t ow, nw, seen = 0;
	lf_atomic_u64 *a = &c->z->word[BU_W(frame / BU_FRAMES)];
	int rc = bu_cas_m(a, BU_OP_ALLOC_AT, frame % BU_FRAMES, k, &ow, &nw,
			  NULL, BL_MASK_OF(c, a), &seen);
	if (rc == BUDDY_OK) {
		BL_MASK_CLEAR(c, frame / BU_FRAMES, bl_mask_bits(frame, k),
			      seen);
		bl_ctr(c, BL_ALLOCS, 1);
		bl_ctr(c, BL_LFREE, -((uint64_t)1 << k));
	}
	return rc;
}

int bl_free_run_cas(struct bl_ctx *c, uint32_t frame, unsigned n, uint64_t *old,
		    uint64_t *nw)
{
	/* The word alone: the pieces' bits are held (buddy_run_hold()). */
	return bu_cas(&c->z->word[BU_W(frame / BU_FRAMES)], BU_OP_FREE_RUN,
		      frame % BU_FRAMES, n, old, nw, NULL);
}

void bl_free_run_done(struct bl_ctx *c, uint32_t frame, unsigned n, uint64_t nw)
{
	uint32_t u = frame / BU_FRAMES;
	if (nw == BU_CORE)
		bl_give(c, u);
	else if (!bu_reserved(nw))
		bl_list(c, u, nw);
	bl_ctr(c, BL_FREES, 1);
	bl_ctr(c, BL_LFREE, n);
}

/* Frames [i, i + n) claimed: both bits of each code set (code 3). */
static inline uint64_t bl_claim_bits(unsigned i, unsigned n)
{
	return bu_run_bits(i, n);
}

int bl_free_run_claim(struct bl_ctx *c, uint32_t frame, unsigned n,
		      uint64_t *old)
{
	lf_atomic_u64 *a = &c->z->word[BU_W(frame / BU_FRAMES)];
	unsigned i = frame % BU_FRAMES;
	LF_ASSERT(i != 0 && i + n == BU_FRAMES); /* frame 0 has no code 3 */
	uint64_t m = bl_claim_bits(i, n), v;
	/* Acquire: pairs with the CAS or store that wrote the word. */
	uint64_t w = lf_load_u64(a, LF_ACQUIRE);
	for (;;) {
		if (w == BU_CORE)
			return BU_NOT_LOWER;
		/* The checks of a free (a claimed piece: EDOUBLE). */
		int rc = bu_free_run(w, i, n, &v);
		if (rc != BUDDY_OK)
			return rc;
		uint64_t seen = w;
		/*
		 * Acq_rel: a claim, as buddy_free_claim(): the pieces' frames
		 * come to us from their owner. Nothing else changes: no frame
		 * appears, so no listing and no ENOMEM window to publish to.
		 */
		if (lf_cas_u64(a, &w, w | m, LF_ACQ_REL)) {
			*old = seen;
			return BUDDY_OK;
		}
	}
}

void bl_free_run_settle(struct bl_ctx *c, uint32_t frame, unsigned n,
			uint64_t old, bool commit)
{
	lf_atomic_u64 *a = &c->z->word[BU_W(frame / BU_FRAMES)];
	unsigned i = frame % BU_FRAMES;
	uint64_t m = bl_claim_bits(i, n), v;
	/* Acquire: pairs with the CAS or store that wrote the word. */
	uint64_t w = lf_load_u64(a, LF_ACQUIRE);
	for (;;) {
		/*
		 * Ours since the claim: nobody else changes a claimed code,
		 * and a word with a claimed frame is never 0 (not free:
		 * bu_settle() keeps it), so this CAS fails only when another
		 * CAS on the word succeeded (lock-free), and it cannot find
		 * the frames taken (the undo of item 12 could).
		 */
		LF_ASSERT(w != BU_CORE && (w & m) == m);
		v = commit ? bu_settle(bu_put_free(w, i, n))
			   : (w & ~m) | (old & m);
		/* Seq_cst: a free (bu_cas()'s orders); an unclaim as well. */
		if (lf_cas_u64(a, &w, v, LF_SEQ_CST))
			break;
	}
	if (commit)
		bl_free_run_done(c, frame, n, v);
}
#endif
