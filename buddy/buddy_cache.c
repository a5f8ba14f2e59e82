/*
 * buddy_cache.c: per-CPU caches of small blocks over the lock-free core, in
 * the style of x15's per-CPU page pools (vm/vm_page.c) and Linux's per-CPU
 * page lists, and the public buddy_alloc() / buddy_free().
 *
 * Each CPU context has, for orders 0 to BUDDY_CACHE_ORDERS - 1, a LIFO of
 * up to BUDDY_CACHE_SLOTS block indices in its own cache lines (slot[],
 * count[]): the fast path writes no line another CPU writes. A cached
 * block's head is CACHED with stk == 0 (B5): no stack holds its link, so no
 * popper writes its word. A block whose link a stack still holds (a stale
 * entry, stk != 0) is never cached; it is freed to the core instead.
 *
 * Who may touch a cache. Its owner (the thread using the context), and a
 * drainer: any context that empties it into the core so that no memory is
 * stranded while an allocation fails (buddy_take_global), the owner itself
 * included (buddy_cpu_drain). Drainers take the cache lock. The owner does
 * one of two things, chosen once per zone (z->asym):
 *
 *  - Symmetric (no heavy barrier: ThreadSanitizer, LF_NO_HEAVY_BARRIER): the
 *    owner takes the cache lock too, an uncontended exchange.
 *  - Asymmetric (lf_platform_heavy_barrier() exists): the owner stores
 *    own = 1 (relaxed), a compiler barrier, then loads lock; if it is 0 it
 *    works on its cache and stores own = 0 (release). A drainer takes the
 *    lock, runs the heavy barrier, then waits for own == 0. Dekker: of the
 *    owner's store of own and the drainer's store of lock, the heavy
 *    barrier makes one visible to the other side's later load, so they are
 *    never both inside (docs/design.md, "The per-CPU caches"). An owner
 *    that sees the lock taken clears own and takes the lock the slow way.
 *
 * The fast paths. Alloc: enter, pop a slot, leave, then a release store of
 * ALLOC into the block's state word: a store, not a CAS, because a CACHED
 * block out of every slot is ours alone (no stack holds its link; a racing
 * double free fails its CAS on CACHED; a drainer only takes what is in a
 * slot). Free: one CAS ALLOC -> CACHED on the block's word (the claim that
 * catches a double free, B2), then enter, push, leave. In asymmetric mode
 * that is one atomic read-modify-write per alloc + free pair, on a state
 * line the CPU owns when it carved the block.
 *
 * Refill takes a batch of blocks of the order from its stack, or else
 * carves one block of order up to max(o + 4, BUDDY_LINE_ORDER): for order
 * 0 that is 32 frames, one whole line of 2-byte state words, so that two
 * CPUs' carves never share a line (each region's indices are laid out so
 * that a pfn-aligned block is line-aligned in st[]: buddy_i.h,
 * BUDDY_LINE_FRAMES). An overflow (a free into a full order) drains a batch
 * through the core.
 */
#include "buddy_i.h"

#if BUDDY_CORE_SHIFT == 0
#define BUDDY_CARVE_ORDERS 4 /* a carve makes 2^4 blocks, or a line's */
#define BUDDY_CARVE_MAX (1u << BUDDY_LINE_ORDER) /* blocks, at most */
/*
 * A refill that popped fewer blocks than this (a stack of stale entries and
 * a few free blocks) carves too: refills of one or two blocks each, with a
 * split and a merge per pair, were the cost of cross-CPU frees.
 */
#define BUDDY_REFILL_LOW (BUDDY_CACHE_BATCH / 2)
_Static_assert(BUDDY_CACHE_BATCH <= BUDDY_CACHE_SLOTS / 2,
	       "an overflow drain leaves room");
#if BUDDY_CORE_SHIFT > 0
_Static_assert(BUDDY_CC_BATCH <= BUDDY_CC_SLOTS &&
		       BUDDY_CC_REFILL < BUDDY_CC_SLOTS &&
		       BUDDY_CC_REFILL0 < BUDDY_CC_SLOTS0 &&
		       BUDDY_CC_REFILL <= BUDDY_CC_REFILL0 &&
		       BUDDY_CC_SLOTS <= BUDDY_CC_SLOTS0 &&
		       BUDDY_CC_REFILL0 < BU_FRAMES,
	       "an overflow drain takes a batch of any order, and a refill "
	       "fits the slots of an order that was empty");
#endif
_Static_assert(BUDDY_CARVE_ORDERS <= BUDDY_LINE_ORDER &&
		       BUDDY_CARVE_MAX + BUDDY_REFILL_LOW <= BUDDY_CACHE_SLOTS,
	       "a refill fits the slots of an order that was empty");

/* The order a refill of order o carves (at most). */
static inline unsigned buddy_carve_order(unsigned o)
{
	unsigned m = o + BUDDY_CARVE_ORDERS;
	return m > BUDDY_LINE_ORDER ? m : BUDDY_LINE_ORDER;
}
#endif /* BUDDY_CORE_SHIFT == 0 */

/* The cache lock (lf_spin.h: acquire pairs with the last holder's release). */
static void buddy_cache_lock(struct buddy_cpu *c)
{
	lf_spin_lock(&c->lock);
}

static void buddy_cache_unlock(struct buddy_cpu *c)
{
	lf_spin_unlock(&c->lock);
}

/*
 * The owner enters its cache: true if by the asymmetric fast way (leave
 * with buddy_own_exit(c, true)), false if it took the lock.
 */
static inline bool buddy_own_enter(struct buddy_cpu *c)
{
	if (LF_LIKELY(c->asym)) {
		/*
		 * Relaxed: a drainer's heavy barrier orders it against our
		 * load of lock below (the compiler barrier keeps the two in
		 * program order).
		 */
		lf_store_u32(&c->own, 1, LF_RELAXED);
		lf_compiler_barrier();
		/*
		 * Acquire: pairs with the release in buddy_cache_unlock() by
		 * the last drainer: its changes to the slots are seen.
		 */
		if (LF_LIKELY(!lf_spin_held(&c->lock, LF_ACQUIRE)))
			return true;
		/* Release: pairs with the drainer's wait in buddy_seize(). */
		lf_store_u32(&c->own, 0, LF_RELEASE);
	}
	buddy_cache_lock(c);
	return false;
}

static inline void buddy_own_exit(struct buddy_cpu *c, bool fast)
{
	if (LF_LIKELY(fast))
		/*
		 * Release: our changes to the slots go to the next drainer;
		 * pairs with the acquire load of own in buddy_seize().
		 */
		lf_store_u32(&c->own, 0, LF_RELEASE);
	else
		buddy_cache_unlock(c);
}

/* Context c takes victim's cache as a drainer (victim may be c). */
static void buddy_seize(struct buddy_cpu *c, struct buddy_cpu *v)
{
	buddy_cache_lock(v);
	if (!v->asym || v == c)
		return; /* the owner is not inside: it is us, or it locks */
	lf_platform_heavy_barrier();
	/* Acquire: pairs with the release stores of own by the owner. */
	while (lf_load_u32(&v->own, LF_ACQUIRE) != 0)
		lf_platform_pause();
}

/*
 * Slot operations, inside the owner's section or under the lock: that
 * exclusion orders them. count is atomic (relaxed) only because statistics
 * and drain_some's hint read it outside; slot[] is plain memory.
 */
static inline uint32_t buddy_slot_pop(struct buddy_cpu *c, unsigned o)
{
	uint32_t n = lf_load_u32(&c->count[o], LF_RELAXED);
	if (n == 0)
		return LF_STACK_NIL;
	lf_store_u32(&c->count[o], n - 1, LF_RELAXED);
	return buddy_slots(c, o)[n - 1];
}

static inline void buddy_slot_push(struct buddy_cpu *c, unsigned o, uint32_t x)
{
	uint32_t n = lf_load_u32(&c->count[o], LF_RELAXED);
	LF_ASSERT(n < BUDDY_CC_CAP(o));
	buddy_slots(c, o)[n] = x;
	lf_store_u32(&c->count[o], n + 1, LF_RELAXED);
}

#if BUDDY_CORE_SHIFT > 0
/*
 * Version 3's overflow: the oldest m blocks of order o (the bottom of the
 * LIFO) to out[], the rest moved down; the number moved. The newest stay:
 * they are the ones the next allocations pop (v3-status item 28's drain
 * of the oldest half). Inside the owner's section; the count's store is
 * release, as buddy_slot_take()'s.
 */
static uint32_t buddy_slot_take_oldest(struct buddy_cpu *c, unsigned o,
				       uint32_t m, uint32_t *out)
{
	uint32_t n = lf_load_u32(&c->count[o], LF_RELAXED);
	uint32_t t = n < m ? n : m, *s = buddy_slots(c, o);
	for (uint32_t i = 0; i < t; i++)
		out[i] = s[i];
	for (uint32_t i = t; i < n; i++)
		s[i - t] = s[i];
	/* Release: as buddy_slot_take()'s. */
	lf_store_u32(&c->count[o], n - t, LF_RELEASE);
	return t;
}
#endif

/*
 * Move the top m blocks of order o to out[]; the number moved. Only drains
 * call it, inside the drainer's in-flight section: the count it stores is
 * release, so that a failing pass that reads it (acquire, in
 * buddy_zone_drain_some()) and finds the cache emptier also sees, at its
 * second look at the busy words, the section entered before (the lock's
 * acquire would let the entry become visible after the count).
 */
static uint32_t buddy_slot_take(struct buddy_cpu *c, unsigned o, uint32_t m,
				uint32_t *out)
{
	uint32_t n = lf_load_u32(&c->count[o], LF_RELAXED);
	uint32_t t = n < m ? n : m, *s = buddy_slots(c, o);
	for (uint32_t i = 0; i < t; i++)
		out[i] = s[n - 1 - i];
	lf_store_u32(&c->count[o], n - t, LF_RELEASE);
	return t;
}

#if BUDDY_CORE_SHIFT == 0
/*
 * Free n blocks of order o (CACHED, out of every slot) to the core, inside
 * the caller's section: those that are buddies of each other merge first,
 * with no atomic operation (buddy_free_batch()), the rest merge and are
 * published one by one (B6), and the pushes onto the stacks are gathered
 * (c->chain) and made in one CAS per order: a drain of 16 blocks moves the
 * stack head's line once, not 16 times (the cost of cross-CPU frees).
 * Sorts xs[].
 */
static void buddy_cache_release(struct buddy_cpu *c, uint32_t *xs, uint32_t n,
				unsigned o)
{
	struct buddy_zone *z = c->zone;
	struct buddy_chain ch;
	for (unsigned k = 0; k < BUDDY_ORDERS; k++)
		ch.first[k] = ch.last[k] = LF_STACK_NIL;
	c->chain = &ch;
	/*
	 * CACHED blocks out of every slot have no other writer (B5: stk is
	 * 0, so no popper writes them; a racing free's CAS expects ALLOC):
	 * the batch free changes them with stores, as the fast path's
	 * CACHED -> ALLOC.
	 */
	buddy_free_batch(c, xs, n, o);
	c->chain = NULL;
	for (unsigned k = 0; k < BUDDY_ORDERS; k++)
		if (ch.first[k] != LF_STACK_NIL)
			lf_stack_push_chain(&z->stacks[k].s, z->link,
					    buddy_cx(ch.first[k]),
					    buddy_cx(ch.last[k]));
}

#else  /* BUDDY_CORE_SHIFT > 0 */
/*
 * Version 3: free n blocks of order o (allocated in their words, out of
 * every slot) into their words, inside the caller's section: sorted by
 * index, grouped by unit, each group freed into a copy of its word and
 * written by one CAS (the drain's transfers are one a unit, not one a
 * block: v3-status item 28). The cached mask is not touched: the blocks'
 * bits go stale, cleared by the allocation that takes the frames next
 * (buddy_lower.h). A unit left unreserved is listed or given back
 * (bl_free_unreserved()), as a free's. Sorts xs[].
 */
static void buddy_cache_release(struct buddy_cpu *c, uint32_t *xs, uint32_t n,
				unsigned o)
{
	struct bl_ctx *l = buddy_lower_ctx(c);
	/*
	 * A whole order drained comes newest first (buddy_slot_take()): a
	 * batch freed in address order arrives descending, the insertion
	 * sort's worst case (64 blocks of order 0 since item 53): reversed
	 * first.
	 */
	if (n > 1 && xs[0] > xs[n - 1])
		for (uint32_t i = 0, j = n - 1; i < j; i++, j--) {
			uint32_t t = xs[i];
			xs[i] = xs[j];
			xs[j] = t;
		}
	for (uint32_t i = 1; i < n; i++) {
		uint32_t v = xs[i], j = i;
		for (; j > 0 && xs[j - 1] > v; j--)
			xs[j] = xs[j - 1];
		xs[j] = v;
	}
	for (uint32_t i = 0; i < n;) {
		uint32_t u = xs[i] / BU_FRAMES, j = i + 1;
		while (j < n && xs[j] / BU_FRAMES == u)
			j++;
		lf_atomic_u64 *a = &l->word[BU_W(u)];
		/* Acquire: pairs with the CAS that wrote the word. */
		uint64_t w = lf_load_u64(a, LF_ACQUIRE), v;
		for (;;) {
			v = w;
			for (uint32_t t = i; t < j; t++) {
				int rc = bu_free(v, xs[t] % BU_FRAMES, o, &v);
				/* B5: allocated in its word. */
				LF_ASSERT(rc == BUDDY_OK);
				(void)rc;
			}
			/*
			 * Seq_cst: a free, as bu_cas(). The word alone: the
			 * blocks' bits are set (cached), so the mask's version
			 * need not advance (buddy_lower.h).
			 */
			if (lf_cas_u64(a, &w, v, LF_SEQ_CST))
				break;
		}
		if (!bu_reserved(v))
			bl_free_unreserved(l, u, v);
		bl_free_hint(l, xs[j - 1], o);
		i = j;
	}
}
#endif /* BUDDY_CORE_SHIFT */

bool buddy_cache_drain_cpu(struct buddy_cpu *c, struct buddy_cpu *victim)
{
	uint32_t xs[BUDDY_CC_TOTAL];
	uint32_t n[BUDDY_CC_ORDERS];
	bool any = false;
	buddy_busy(c, 1); /* the taken blocks are in our hands */
	buddy_seize(c, victim);
	for (unsigned o = 0; o < BUDDY_CC_ORDERS; o++) {
		n[o] = buddy_slot_take(victim, o, BUDDY_CC_CAP(o),
				       &xs[BUDDY_CC_BASE(o)]);
		any |= n[o] != 0;
	}
	buddy_cache_unlock(victim);
	/* An order drained of nothing costs no call (v3-status item 57). */
	for (unsigned o = 0; o < BUDDY_CC_ORDERS; o++)
		if (n[o] != 0)
			buddy_cache_release(c, &xs[BUDDY_CC_BASE(o)], n[o], o);
	buddy_busy(c, -1);
	buddy_ctr_add(c, BC_DRAINS, 1);
	return any;
}

void buddy_cpu_drain(struct buddy_cpu *c)
{
	buddy_cache_drain_cpu(c, c);
#if BUDDY_CORE_SHIFT > 0
	/* Version 3: then the reservation, but one empty unit (bl_drain()). */
	bl_drain(buddy_lower_ctx(c));
#endif
}

void buddy_cpu_cache_enable(struct buddy_cpu *c, bool on)
{
	c->nocache = !on;
	if (!on) /* the cache only (version 3: the reservation stays) */
		(void)buddy_cache_drain_cpu(c, c);
}

void buddy_zone_drain_all(struct buddy_cpu *c)
{
	/* Every CPU's cache first (version 2's exclusion): blocks go home. */
	(void)buddy_zone_drain_some(c);
#if BUDDY_CORE_SHIFT > 0
	/* Version 3: then every empty reserved unit back to the core. */
	(void)bl_reclaim_all(buddy_lower_ctx(c));
#endif
	/* Then every deferred block merges: fully coalesced at quiescence. */
	buddy_zone_coalesce(c);
}

bool buddy_zone_drain_some(struct buddy_cpu *c)
{
	struct buddy_zone *z = c->zone;
	bool any = false;
	for (uint32_t i = 0; i < z->ncpus; i++) {
		/*
		 * Acquire: an empty-looking cache is skipped, and a failing
		 * pass counts it as seen empty; pairs with the release store
		 * of a drain (buddy_slot_take()), whose section the pass's
		 * second look at the busy words must then see.
		 */
		bool held = false;
		for (unsigned o = 0; o < BUDDY_CC_ORDERS; o++)
			held |= lf_load_u32(&z->cpus[i].count[o], LF_ACQUIRE) !=
				0;
		if (held)
			any |= buddy_cache_drain_cpu(c, &z->cpus[i]);
	}
	return any;
}

#if BUDDY_CORE_SHIFT == 0
/*
 * x is BUSY(m), ours: make it 2^(m-o) blocks of order o in the cache. A
 * piece whose link a stack still holds (a stale entry, stk != 0) cannot be
 * cached (B5): it is freed through the core. A refill starts with the
 * cache of order o empty, carves only while it holds fewer than
 * BUDDY_REFILL_LOW blocks, and only the owner adds to it, so the pieces (at
 * most BUDDY_CARVE_MAX) fit.
 */
static void buddy_cache_carve(struct buddy_cpu *c, uint32_t x, unsigned m,
			      unsigned o)
{
	struct buddy_zone *z = c->zone;
	const struct buddy_rgn *r = buddy_rgn_of_idx(z, x);
	uint32_t step = (uint32_t)1 << o, end = x + ((uint32_t)1 << m);
	uint32_t put[BUDDY_CARVE_MAX], n = 0;
	LF_ASSERT(m <= buddy_carve_order(o));
	buddy_ctr_add(c, BC_SPLITS, ((uint64_t)1 << (m - o)) - 1);
	for (uint32_t y = end; y > x;) {
		y -= step;
		/* Relaxed: y is ours; only its stk may change under us. */
		if (bst_stk(lf_load_u16(buddy_st(z, y), LF_RELAXED)) != 0) {
			buddy_st_set(z, y, BK_BUSY, o);
			buddy_free_merge(c, r, y, o);
			continue;
		}
		/*
		 * A store: y is ours and its stk is 0, which only our own
		 * publish could change (B3), so nobody else writes the word.
		 * Release: pairs with the acquire of the free that finds it.
		 */
		lf_store_u16(buddy_st(z, y), bst_make(BK_CACHED, o, 0),
			     LF_RELEASE);
		put[n++] = y;
	}
	bool fast = buddy_own_enter(c);
	for (uint32_t i = 0; i < n; i++)
		buddy_slot_push(c, o, put[i]);
	buddy_own_exit(c, fast);
}

/* Claimed block x (BUSY(m), m >= o) into the cache, split as needed. */
static void buddy_cache_take(struct buddy_cpu *c, uint32_t x, unsigned m,
			     unsigned o)
{
	unsigned top = buddy_carve_order(o);
	if (m > top) {
		buddy_split_low(c, x, m, top);
		m = top;
	}
	buddy_cache_carve(c, x, m, o);
}

/*
 * The cache of order o is empty: fill it with a batch popped from the
 * order's stack in one CAS and, if that gave fewer than BUDDY_REFILL_LOW
 * blocks, by carving one larger block (the smallest listed, as the core
 * takes). False if neither found anything (the caller goes to the core's
 * slow path).
 */
static bool buddy_cache_refill(struct buddy_cpu *c, unsigned o)
{
	struct buddy_zone *z = c->zone;
	uint32_t cnt;
	bool any = false;
	buddy_ctr_add(c, BC_REFILLS, 1);
	if (!lf_stack_empty(&z->stacks[o].s)) {
		buddy_busy(c, 1); /* the popped batch is in our hands */
		uint32_t x = buddy_fx(lf_stack_pop_n(
			&z->stacks[o].s, z->link, (uint32_t)buddy_ncx(z->nidx),
			BUDDY_CACHE_BATCH, &cnt));
		for (uint32_t i = 0; i < cnt; i++) {
			/* Relaxed: the popped chain is ours. */
			uint32_t next = buddy_fx(
				lf_load_u32(buddy_link(z, x), LF_RELAXED));
			unsigned mo;
			if (buddy_pop_take(c, x, o, o, &mo)) {
				buddy_split_low(c, x, mo, o);
				buddy_cache_carve(c, x, o, o);
				buddy_busy(c, -1); /* buddy_pop_take's */
				any = true;
			}
			x = next;
		}
		buddy_busy(c, -1);
		/* Relaxed: our own count (only we add to it). */
		if (lf_load_u32(&c->count[o], LF_RELAXED) >= BUDDY_REFILL_LOW)
			return true;
	}
	unsigned mo;
	uint32_t x = buddy_take(c, o + 1, BUDDY_MAX_ORDER, BUDDY_NOLIMIT, &mo);
	if (x == LF_STACK_NIL)
		return any;
	buddy_cache_take(c, x, mo, o);
	buddy_busy(c, -1); /* buddy_take's */
	return true;
}
#endif /* BUDDY_CORE_SHIFT == 0 */

/*
 * The allocation loop over the core and the caches: the core's passes
 * (buddy_take_once) in a window it reports on (buddy_others_flight), the
 * drains from this layer in between; the core never calls up here.
 *
 * Claim a block of order k (ending by limit), split to k: BUSY(k), ours,
 * and the caller still inside the in-flight section of the claim: it
 * leaves it (buddy_busy(c, -1)) once it has given back what it does not
 * keep (alloc_run's tail), so that no failing pass sees that memory
 * neither free nor in flight.
 *
 * ENOMEM is exact: it is returned only after a pass over every stack that
 * found nothing, moved no entry to another stack (it may have passed that
 * one already), found every CPU's cache empty, and ran in a window in
 * which no other context was in flight or entered a section
 * (buddy_others_flight() the same before and after): then every frame was
 * allocated or ours. Why that suffices: a context that took memory the
 * pass would have found entered its section before the pop or claim; the
 * pop or claim is a release RMW (claims are acq_rel CASes on the state
 * word, pops acq_rel CASes on the stack head, lf_stack.c S5), and the pass
 * reads what it changed with acquire (a stack head in buddy_stack_empty()
 * or a pop, a state word, a spare slot, a cache count), so the second look
 * at the busy words, acquire loads after those reads, sees the entry. An
 * acquire-only pop (as before) let a weakly ordered CPU show the pass the
 * emptied stack and still the busy word from before the section; x86
 * cannot show it (its locked CAS drains the store buffer). A context that moved
 * blocks from a cache to the stacks (its owner's drain, an overflow drain, a
 * drain-all) did so inside a section too: one that overlapped the window
 * changed a busy word; one that ended before it left the blocks where the pass
 * looks; one that began after it moved blocks that were not in that cache when
 * the check inside the window saw it empty. Cached memory is drained (attempt
 * 1, and by that check), and misplaced entries are re-filed by the sweep of
 * attempt 1; a later counting pass looks (buddy_take_look()), which reads
 * the state words, so a stale or misplaced entry hides no block. Over units
 * (version 3), a reservation's unit with every frame free is free memory too:
 * each quiet window takes such units back to the core before its second look
 * (buddy_zone_reclaim_some()) and counts as a failure only if it found none; a
 * unit that became empty during the window did so by a free, inside a section
 * the second look sees, and one named after the first look was named inside the
 * take's section (the lower level's names change only in sections).
 *
 * While others are in flight it retries without a bound: each of their
 * calls ends in a bounded number of its own steps unless another call
 * succeeded meanwhile, so the whole system progresses (lock-free).
 */
#define BUDDY_SWEEP_EVERY 16

/*
 * Version 3: every reserved unit with every frame free (another CPU's
 * line, or a unit of it) back to the core; true if any went. Called inside
 * the quiet window, before the second look at the busy words: a unit
 * that was free memory at every instant of the window, but reserved, is
 * never a reason for ENOMEM (docs/design.md 2.7, "Exact ENOMEM over
 * reservations"). bl_reclaim() enters a section only for such a word, so
 * a pass over nothing enters none and two failing contexts stay quiet.
 */
static inline bool buddy_zone_reclaim_some(struct buddy_cpu *c)
{
#if BUDDY_CORE_SHIFT > 0
	return bl_reclaim_all(buddy_lower_ctx(c)) != 0;
#else
	(void)c;
	return false;
#endif
}

int buddy_take_global_held(struct buddy_cpu *c, unsigned k, uint64_t limit,
			   uint32_t *xp)
{
	unsigned o;
	bool moved, sweep = false;
	for (unsigned attempt = 0;; attempt++) {
		uint64_t before = buddy_others_flight(c);
		/*
		 * Under a limit every pass after the first only looks: popping
		 * the stacks would push back the blocks past the limit, a
		 * section each pass (docs/design.md 2.4, "Constraints").
		 * Without one only attempt 1 sweeps; a later pass that would
		 * sweep (a quiet one's successor, every 16th) looks instead:
		 * a sweep pops and pushes back every stack, a section each, so
		 * two failing calls in lockstep would break each other's
		 * windows at every sweep (docs/design.md 2.4, "Exact ENOMEM").
		 */
		bool look = attempt > 0 &&
			    (limit != BUDDY_NOLIMIT || (sweep && attempt >= 2));
		uint32_t x = LF_STACK_NIL;
		if (look)
			x = buddy_take_look(c, k, limit, &o);
		else
			x = buddy_take_once(c, k, limit, sweep, &o, &moved);
		if (x != LF_STACK_NIL) {
			/* The claim's section (buddy_popped()) stays open. */
			*xp = x;
			return BUDDY_OK;
		}
		bool quiet = before != UINT64_MAX && (look || !moved);
		/*
		 * A quiet failure counts only with a sweep (or a look, which
		 * needs none: it reads the state words, not the stacks) in its
		 * window and every cache seen empty and no reserved unit seen
		 * empty inside it, before the second look.
		 */
		bool empty = quiet && (sweep || look) && attempt >= 2 &&
			     !buddy_zone_drain_some(c) &&
			     !buddy_zone_reclaim_some(c);
		quiet = quiet && buddy_others_flight(c) == before;
		if (quiet && empty)
			return BUDDY_ENOMEM;
		if (attempt == 1)
			buddy_zone_drain_all(c);
		sweep = attempt < 2 || quiet ||
			attempt % BUDDY_SWEEP_EVERY == 0;
		if (!sweep)
			lf_platform_pause();
	}
}

int buddy_take_global(struct buddy_cpu *c, unsigned k, uint64_t limit,
		      uint32_t *xp)
{
	int rc = buddy_take_global_held(c, k, limit, xp);
	if (rc == BUDDY_OK)
		buddy_busy(c, -1); /* the claim's, in buddy_popped() */
	return rc;
}

/* Pop the top block of c's cache of order o, or LF_STACK_NIL. */
static inline uint32_t buddy_cache_get(struct buddy_cpu *c, unsigned o)
{
	bool fast = buddy_own_enter(c);
	uint32_t x = buddy_slot_pop(c, o);
	buddy_own_exit(c, fast);
	return x;
}

/*
 * buddy_cache_push() into a full order (inside the owner's section, fast
 * as buddy_own_enter() returned): a batch taken, x pushed, the section
 * left, the batch released. A function of its own, so that the push's
 * callers keep no batch array and save no register (v3-status item 45).
 */
static BUDDY_NOINLINE void
buddy_cache_push_full(struct buddy_cpu *c, uint32_t x, unsigned o, bool fast)
{
	uint32_t batch[BUDDY_CC_BATCH], n;
	buddy_busy(c, 1); /* the batch is in our hands */
#if BUDDY_CORE_SHIFT > 0
	n = buddy_slot_take_oldest(c, o, BUDDY_CC_BATCH, batch);
#else
	n = buddy_slot_take(c, o, BUDDY_CC_BATCH, batch);
#endif
	buddy_slot_push(c, o, x);
	buddy_own_exit(c, fast);
	if (LF_UNLIKELY(n != 0)) {
		buddy_cache_release(c, batch, n, o);
		buddy_busy(c, -1);
		buddy_ctr_add(c, BC_DRAINS, 1);
	}
}

#if BUDDY_CORE_SHIFT == 0
/*
 * Push x (just made CACHED) on c's cache; drain a batch if it is full.
 * The count read once (relaxed: inside our section) serves the test and
 * the push (buddy_slot_push()'s; its assertion in buddy_cache_push_full()).
 */
static inline void buddy_cache_push(struct buddy_cpu *c, uint32_t x, unsigned o)
{
	bool fast = buddy_own_enter(c);
	/* Relaxed: inside our section. */
	uint32_t n = lf_load_u32(&c->count[o], LF_RELAXED);
	if (LF_UNLIKELY(n >= BUDDY_CC_CAP(o))) {
		buddy_cache_push_full(c, x, o, fast);
		return;
	}
	buddy_slots(c, o)[n] = x;
	/* Relaxed: as buddy_slot_push(). */
	lf_store_u32(&c->count[o], n + 1, LF_RELAXED);
	buddy_own_exit(c, fast);
}

/* Allocate order o < BUDDY_CACHE_ORDERS through the cache: ALLOC, ours. */
static int buddy_cache_alloc(struct buddy_cpu *c, unsigned o, uint32_t *xp)
{
	struct buddy_zone *z = c->zone;
	uint32_t x = buddy_cache_get(c, o);
	if (LF_UNLIKELY(x == LF_STACK_NIL) && buddy_cache_refill(c, o))
		x = buddy_cache_get(c, o); /* NIL if drained meanwhile */
	if (LF_LIKELY(x != LF_STACK_NIL)) {
		/*
		 * Release store, not CAS: a CACHED block out of every slot
		 * has no other writer (B5). Pairs with the acquire of its
		 * free.
		 */
		lf_store_u16(buddy_st(z, x), bst_make(BK_ALLOC, o, 0),
			     LF_RELEASE);
		*xp = x;
		return BUDDY_OK;
	}
	int rc = buddy_take_global(c, o, BUDDY_NOLIMIT, &x);
	if (rc == BUDDY_OK)
		buddy_st_set(z, x, BK_ALLOC, o);
	*xp = x;
	return rc;
}
#endif

/* The end of an allocation: count it, or its failure. */
static inline int buddy_alloc_done(struct buddy_cpu *c, int rc, uint32_t x,
				   uint64_t *addr)
{
	if (LF_UNLIKELY(rc != BUDDY_OK)) {
		buddy_ctr_add(c, BC_FAILED, 1);
		return rc;
	}
	buddy_ctr_add(c, BC_ALLOCS, 1);
	*addr = buddy_idx_addr(c->zone, x);
	return BUDDY_OK;
}

/*
 * buddy_alloc() outside the caches: this context's spares first, then the
 * core's passes. A function of its own, so that neither path pays for
 * the other's registers and stack (the cache path's batch arrays).
 */
static BUDDY_NOINLINE int buddy_alloc_global(struct buddy_cpu *c,
					     unsigned order, uint64_t *addr)
{
	uint32_t x;
	int rc = BUDDY_OK;
	if (LF_UNLIKELY(order > BUDDY_MAX_ORDER))
		return buddy_reject(c, BUDDY_EINVAL);
	x = buddy_take_spare(c, order, BK_ALLOC);
	if (x == LF_STACK_NIL) {
		rc = buddy_take_global(c, order, BUDDY_NOLIMIT, &x);
		if (rc == BUDDY_OK)
			buddy_st_set(c->zone, x, BK_ALLOC, order);
	}
	if (rc == BUDDY_OK)
		c->recent[order] = x;
	return buddy_alloc_done(c, rc, x, addr);
}

#if BUDDY_CORE_SHIFT == 0
/* buddy_alloc() through the cache of order < BUDDY_CACHE_ORDERS. */
static BUDDY_NOINLINE int buddy_alloc_cached(struct buddy_cpu *c,
					     unsigned order, uint64_t *addr)
{
	uint32_t x;
	int rc = buddy_cache_alloc(c, order, &x);
	return buddy_alloc_done(c, rc, x, addr);
}
#endif

#if BUDDY_CORE_SHIFT > 0
/*
 * Version 3 over units (lf_buddy_units): orders below a unit go to the
 * lower level (buddy_lower.c; docs/design.md 2.7), exact ENOMEM over its
 * places and the core (bl_alloc_slow()). Its per-CPU path, the hint, is
 * inline here (bl_alloc_hint()); bl_alloc()'s order check is
 * buddy_alloc()'s (order <= BU_MAX_ORDER) and its counters are ours.
 * Order 0 in a one-region zone is inline in buddy_alloc() and calls
 * nothing (no register to save); every other case is a tail call to a
 * function of its own (docs/v3-status.md item 18).
 */
/*
 * The refill (v3-status items 28, 33): bl_alloc_slow() served x from our
 * reservation res with the cache of order k empty: up to BUDDY_CC_REFILL0
 * (order 0) or BUDDY_CC_REFILL blocks of order k from res's word, by
 * bu_alloc() on a copy and one CAS (none if another CAS on the word won),
 * inside a section (the blocks move from the word, where a failing pass
 * finds them, to the cache). Their cached bits are set by the same CAS,
 * one 16-byte compare-exchange of the word and the mask ("all-set": every
 * cached block has its bit at every instant, so a late second free of one
 * is refused; v3-status item 55: no marks, no window after the CAS), then
 * they are pushed. The mask is compared, not only the word: a CAS of the
 * word alone under the word's ABA would write a mask read before it
 * (v3-status item 54's history), and a free's bit set meanwhile would be
 * lost.
 */
static BUDDY_NOINLINE void buddy_cache_refill_small(struct buddy_cpu *c,
						    unsigned k, uint32_t x)
{
	struct bl_ctx *l = buddy_lower_ctx(c);
	uint32_t u = x / BU_FRAMES;
	/* Relaxed: only we write res, and only we add to our count. */
	if (u != lf_load_u32(&l->res, LF_RELAXED) ||
	    lf_load_u32(&c->count[k], LF_RELAXED) != 0)
		return;
	lf_atomic_u64 *a = &l->word[BU_W(u)];
	/* Acquire: pairs with the CAS that wrote the word (bu_cas()). */
	uint64_t w = lf_load_u64(a, LF_ACQUIRE), v = w;
	uint32_t put[BUDDY_CC_REFILL0], n = 0, heads = 0, frames = 0;
	unsigned off;
	if (!bu_reserved(w))
		return;
	/*
	 * Order 0 from a unit used from its bottom up (cross's and bulk's
	 * reservations): the whole batch in one step, the blocks the picks
	 * below would give (bu_alloc_run0(); v3-status item 49).
	 */
	if (k == 0 && (n = bu_alloc_run0(w, BUDDY_CC_REFILL0, &v, &off)) != 0) {
		heads = frames = (uint32_t)(bu_bits(n) << off);
		for (uint32_t i = 0; i < n; i++)
			put[i] = u * BU_FRAMES + off + i;
	}
	while (n < (k == 0 ? BUDDY_CC_REFILL0 : BUDDY_CC_REFILL) &&
	       bu_alloc(v, k, BU_FRAMES, &v, &off) == BUDDY_OK) {
		put[n++] = u * BU_FRAMES + off;
		heads |= 1u << off;
		frames |= bl_mask_bits(off, k);
	}
	if (n == 0)
		return;
	buddy_busy(c, 1); /* the blocks are in our hands */
	/* Relaxed: compared by the CAS below with the word. */
	uint64_t m = lf_load_u64(a + 1, LF_RELAXED);
	for (;;) {
		/*
		 * One compare-exchange of the word and the mask: the frames
		 * taken, the bits of the mask on them at that instant (stale:
		 * the frames were free) cleared and the heads' bits set, so
		 * that no instant has a refilled block allocated without its
		 * bit (no marks: v3-status item 55), the version advanced
		 * (a clear: buddy_lower.h; item 57). Seq_cst: an allocation,
		 * as bu_cas(); its release half orders the CAS before a free
		 * that reads our bits (refused: a late second free).
		 */
		uint64_t e[2] = { w, m };
		uint64_t d[2] = { v, ((m & ~(uint64_t)frames) | heads) +
					     BU_MASK_VER };
		if (lf_cas2_u64(a, e, d, LF_SEQ_CST)) {
			bool fast = buddy_own_enter(c);
			for (uint32_t i = n; i-- > 0;)
				buddy_slot_push(c, k, put[i]);
			buddy_own_exit(c, fast);
			buddy_ctr_add(c, BC_REFILLS, 1);
			break;
		}
		if (e[0] != w)
			break; /* another CAS on the word won: nothing taken */
		m = e[1];      /* the mask changed: again */
	}
	buddy_busy(c, -1);
}

static BUDDY_NOINLINE int buddy_alloc_small_slow(struct buddy_cpu *c,
						 unsigned order, uint64_t *addr)
{
	uint32_t x = 0;
	int rc = bl_alloc_slow(buddy_lower_ctx(c), order, &x);
	if (rc == BUDDY_OK && !c->nocache)
		buddy_cache_refill_small(c, order, x);
	return buddy_alloc_done(c, rc, x, addr);
}

/*
 * The top block of c's cache of order k, or LF_STACK_NIL: its cached bit
 * cleared before it is handed out. Release: pairs with the acq_rel
 * fetch_or of the block's next free (its new owner's must see the bit
 * clear, and the block ours).
 */
static inline uint32_t buddy_cache_pop_small(struct buddy_cpu *c, unsigned k)
{
	uint32_t x = buddy_cache_get(c, k);
	if (x != LF_STACK_NIL)
		(void)lf_fetch_and_u64(
			&buddy_lower_ctx(c)->mask[BU_W(x / BU_FRAMES)],
			~(1ull << (x % BU_FRAMES)), LF_RELEASE);
	return x;
}

/* The hint served index x in a zone of several regions (a search). */
static BUDDY_NOINLINE int buddy_alloc_small_rgns(struct buddy_cpu *c,
						 uint32_t x, uint64_t *addr)
{
	return buddy_alloc_done(c, BUDDY_OK, x, addr);
}

/* The cache of this order empty: the hint, else the slow path. */
static BUDDY_NOINLINE int buddy_alloc_small_miss(struct buddy_cpu *c,
						 unsigned order, uint64_t *addr)
{
	uint32_t x;
	if (LF_LIKELY(bl_alloc_hint(buddy_lower_ctx(c), order, &x)))
		return buddy_alloc_done(c, BUDDY_OK, x, addr);
	return buddy_alloc_small_slow(c, order, addr);
}

/* Orders 1-4: the same path with the order in a register. */
static BUDDY_NOINLINE int buddy_alloc_small_k(struct buddy_cpu *c,
					      unsigned order, uint64_t *addr)
{
	uint32_t x = buddy_cache_pop_small(c, order);
	if (LF_LIKELY(x != LF_STACK_NIL))
		return buddy_alloc_done(c, BUDDY_OK, x, addr);
	return buddy_alloc_small_miss(c, order, addr);
}

static inline int buddy_alloc_small(struct buddy_cpu *c, unsigned order,
				    uint64_t *addr)
{
	uint32_t x;
	if (LF_UNLIKELY(order != 0))
		return buddy_alloc_small_k(c, order, addr);
	x = buddy_cache_pop_small(c, 0);
	/* A tail call: the hint's x on our stack only there (item 45). */
	if (LF_UNLIKELY(x == LF_STACK_NIL))
		return buddy_alloc_small_miss(c, 0, addr);
	const struct buddy_zone *z = c->zone;
	if (LF_UNLIKELY(z->nrgn != 1))
		return buddy_alloc_small_rgns(c, x, addr);
	buddy_ctr_add(c, BC_ALLOCS, 1);
	*addr = buddy_rgn_addr(&z->rgn[0], x);
	return BUDDY_OK;
}
#else
static inline int buddy_alloc_small(struct buddy_cpu *c, unsigned order,
				    uint64_t *addr)
{
	(void)order;
	(void)addr;
	return buddy_reject(c, BUDDY_EINVAL); /* never: nothing is below */
}
#endif

/*
 * order <= BUDDY_MAX_ORDER && buddy_below_core(order), in one compare
 * (item 45): an order below the core's granule is below its shift.
 */
_Static_assert(BUDDY_CORE_FRAMES == 1u << BUDDY_CORE_SHIFT &&
		       BUDDY_CORE_SHIFT <= BUDDY_MAX_ORDER,
	       "buddy_below_core(o) is o < BUDDY_CORE_SHIFT");
static inline bool buddy_cache_below_core(unsigned order)
{
#if BUDDY_CORE_SHIFT > 0
	return order < BUDDY_CORE_SHIFT;
#else
	(void)order;
	return false; /* buddy_below_core(): nothing is below */
#endif
}

/*
 * Two tail calls: each path sets up only the frame it needs. Orders below
 * the core's granule go to the lower level first (never at shift 0: the
 * test compiles away; over units it also leaves the cache path
 * unreachable).
 */
int buddy_alloc(struct buddy_cpu *c, unsigned order, uint64_t *addr)
{
	if (c == NULL || addr == NULL)
		return BUDDY_EINVAL;
	if (LF_UNLIKELY(buddy_cache_below_core(order)))
		return buddy_alloc_small(c, order, addr);
#if BUDDY_CORE_SHIFT == 0
	if (order < BUDDY_CACHE_ORDERS && !c->nocache)
		return buddy_alloc_cached(c, order, addr);
#endif
	return buddy_alloc_global(c, order, addr);
}

#if BUDDY_CORE_SHIFT == 0
/* Free through the cache if the block's link is free (B5), else the core. */
static int buddy_cache_free(struct buddy_cpu *c, const struct buddy_rgn *r,
			    uint32_t x, unsigned o)
{
	struct buddy_zone *z = c->zone;
	/*
	 * An in-flight section from before the block turns CACHED until it is
	 * listed: memory that appears in a cache breaks any failing context's
	 * quiet window it overlaps, so that a free into a cache that window
	 * already saw empty, crossing a fast allocation from a cache it has
	 * not looked at yet, cannot leave it with no instant at which
	 * nothing was free (ENOMEM exact; the fast allocation needs no
	 * section: it only takes memory away).
	 */
	buddy_busy(c, 1);
	/* Acquire: pairs with the release that made it ALLOC. */
	uint16_t s = lf_load_u16(buddy_st(z, x), LF_ACQUIRE);
	while (bst_is(s, BK_ALLOC, o) && bst_stk(s) == 0) {
		/* Acq_rel: the claim that catches a double free (B2). */
		if (lf_cas_u16(buddy_st(z, x), &s, bst_with(s, BK_CACHED, o),
			       LF_ACQ_REL)) {
			buddy_cache_push(c, x, o);
			buddy_busy(c, -1);
			return BUDDY_OK;
		}
	}
	buddy_busy(c, -1);
	return buddy_free_eager(c, r, x, o);
}
#endif

/* The end of a free: count it, or reject it. */
static inline int buddy_free_done(struct buddy_cpu *c, int rc)
{
	if (LF_UNLIKELY(rc != BUDDY_OK))
		return buddy_reject(c, rc);
	buddy_ctr_add(c, BC_FREES, 1);
	return BUDDY_OK;
}

/* A free of the block this context allocated last: it defers (B8). */
static BUDDY_NOINLINE int buddy_free_recent(struct buddy_cpu *c,
					    const struct buddy_rgn *r,
					    uint32_t x, unsigned order)
{
	int rc = buddy_free_claim(c->zone, r, x, order, BK_BUSY);
	if (rc == BUDDY_OK)
		buddy_free_defer(c, x, order);
	return rc;
}

/* buddy_free() outside the caches (a function of its own: as above). */
static BUDDY_NOINLINE int buddy_free_global(struct buddy_cpu *c, uint64_t addr,
					    unsigned order)
{
	const struct buddy_rgn *r;
	int rc = buddy_addr_check(c->zone, addr, order, &r);
	if (LF_UNLIKELY(rc != BUDDY_OK))
		return buddy_reject(c, rc);
	uint32_t x = buddy_addr_idx(r, addr);
	if (x != c->recent[order])
		rc = buddy_free_eager(c, r, x, order);
	else
		rc = buddy_free_recent(c, r, x, order);
	return buddy_free_done(c, rc);
}

#if BUDDY_CORE_SHIFT == 0
/* buddy_free() through the cache of order < BUDDY_CACHE_ORDERS. */
static BUDDY_NOINLINE int buddy_free_cached(struct buddy_cpu *c, uint64_t addr,
					    unsigned order)
{
	const struct buddy_rgn *r;
	int rc = buddy_addr_check(c->zone, addr, order, &r);
	if (LF_UNLIKELY(rc != BUDDY_OK))
		return buddy_reject(c, rc);
	rc = buddy_cache_free(c, r, buddy_addr_idx(r, addr), order);
	return buddy_free_done(c, rc);
}
#endif

#if BUDDY_CORE_SHIFT > 0
/*
 * A refused free below a unit: counted. A unit that is not lower (word 0)
 * says why from the core's words, as the core's own refusals do
 * (buddy_free_why_small()).
 */
static BUDDY_NOINLINE int buddy_free_small_refused(struct buddy_cpu *c,
						   const struct buddy_rgn *r,
						   uint32_t x, int rc)
{
	struct buddy_zone *z = c->zone;
	/* Relaxed: a diagnosis only. */
	uint64_t w = lf_load_u64(&z->lower.word[BU_W(buddy_cx(x))], LF_RELAXED);
	if (rc == BUDDY_EDOUBLE && w == BU_CORE)
		rc = buddy_free_why_small(z, r, x);
	if ((rc == BUDDY_ETAIL || rc == BUDDY_EORDER) && w != BU_CORE) {
		/*
		 * A frame inside a cached block (its head's bit set) is
		 * inside a block that is free to the caller: EDOUBLE, as
		 * version 2 answers for a tail of a CACHED head (the free's
		 * code for a free block; v3-status item 38).
		 */
		unsigned h = x % BU_FRAMES;
		while (h > 0 && bu_code(w, h) == BU_CODE_T)
			h--;
		/* Relaxed: a diagnosis only. */
		if ((lf_load_u64(&z->lower.mask[BU_W(buddy_cx(x))],
				 LF_RELAXED) >>
		     h) &
		    1)
			rc = BUDDY_EDOUBLE;
	}
	return buddy_reject(c, rc);
}

/*
 * The rest of a free whose CAS left its unit unreserved (word nw, 0 if
 * it goes back to the core), inside its section, out of the fast path's
 * line: bl_free_cas()'s second and third steps, the section left.
 */
static BUDDY_NOINLINE int buddy_free_small_unreserved(struct buddy_cpu *c,
						      uint32_t x,
						      unsigned order,
						      uint64_t nw)
{
	struct bl_ctx *l = buddy_lower_ctx(c);
	bl_free_unreserved(l, x / BU_FRAMES, nw);
	bl_free_hint(l, x, order);
	buddy_busy(c, -1);
	buddy_ctr_add(c, BC_FREES, 1);
	return BUDDY_OK;
}

/*
 * Version 3: a free of an order below a unit, at the lower level, with
 * bl_free()'s work inline (bl_free_cas()'s steps), after the address
 * check (region r, index x). One address check: a block aligned in pfn
 * is aligned in indices (buddy.c, buddy_rgn_first_idx()), and an index
 * of a region is in a unit of the lower level, so bl_free()'s own checks
 * would find nothing more; our counters only. Calls only at its ends
 * (tail calls), so that order 0 inline in buddy_free() saves no register.
 */
static BUDDY_NOINLINE int buddy_free_small_word(struct buddy_cpu *c,
						const struct buddy_rgn *r,
						uint32_t x, unsigned order);

/*
 * buddy_cache_free_small()'s push into a full order: buddy_cache_push()'s
 * overflow (inside the owner's section, fast as buddy_own_enter() said),
 * then the free's section left and the free counted.
 */
static BUDDY_NOINLINE int buddy_cache_free_small_full(struct buddy_cpu *c,
						      uint32_t x, unsigned k,
						      bool fast)
{
	buddy_cache_push_full(c, x, k, fast);
	buddy_busy(c, -1);
	buddy_ctr_add(c, BC_FREES, 1);
	return BUDDY_OK;
}

/*
 * buddy_cache_free_small()'s push of block x of order k, inside its
 * section, the word read again and found to be still that block:
 * buddy_cache_push(), its overflow a tail call.
 */
static BUDDY_INLINE int buddy_cache_free_small_cache(struct buddy_cpu *c,
						     uint32_t x, unsigned k)
{
	bool fast = buddy_own_enter(c);
	/* Relaxed: inside our section. */
	uint32_t n = lf_load_u32(&c->count[k], LF_RELAXED);
	if (LF_UNLIKELY(n >= BUDDY_CC_CAP(k)))
		return buddy_cache_free_small_full(c, x, k, fast);
	buddy_slots(c, k)[n] = x;
	/* Relaxed: as buddy_slot_push(). */
	lf_store_u32(&c->count[k], n + 1, LF_RELAXED);
	buddy_own_exit(c, fast);
	buddy_busy(c, -1);
	buddy_ctr_add(c, BC_FREES, 1);
	return BUDDY_OK;
}

/*
 * A free of order k below a unit with caches on (v3-status items 28, 32,
 * 33, 51; docs/design.md 2.7, "Per-CPU block caches" and "Bits and the
 * lazy clear"): the block must be an allocated head of order k in its
 * word (else the free into the word says why); then its cached bit is
 * set by one compare-exchange of the word and the mask together, which
 * succeeds only while the word is still the one checked (the bit set
 * already: a second free of a cached block, refused, nothing changed; the
 * word changed: checked again), and the block pushed. A section from
 * before the bit until the push: memory that appears in a cache breaks a
 * failing pass's window it overlaps (as version 2's buddy_cache_free()).
 * Setting the bit only on a word that holds the block allocated is what
 * keeps it off a free head: a look older than a free of the block, its
 * frames taken and freed in another shape and the block taken again must
 * not let the bit through to an allocation's snapshot (item 51). Since item 55
 * the bit is set by an 8-byte CAS of the mask alone: the mask's version
 * (advanced by every clear of a bit but a pop's since item 57; by every
 * CAS that freed frames of the word in item 55) stands for the word. Its
 * rare case (a full order) is a call out of line (item 45).
 */
static BUDDY_INLINE int buddy_cache_free_small_in(struct buddy_cpu *c,
						  const struct buddy_rgn *r,
						  uint32_t x, unsigned k)
{
	struct bl_ctx *l = buddy_lower_ctx(c);
	uint32_t u = x / BU_FRAMES, i = x % BU_FRAMES;
	uint64_t bit = 1ull << i;
	lf_atomic_u64 *a = &l->word[BU_W(u)];
	/*
	 * The mask first, then the word (v3-status item 55). Acquire: pairs
	 * with the release write that advanced the version (an allocation's
	 * clear after its CAS, a refill's CAS): the word below is that CAS's
	 * or a later one.
	 */
	uint64_t m = lf_load_u64(a + 1, LF_ACQUIRE);
	/* Acquire: pairs with the CAS that wrote the word (bu_cas()). */
	uint64_t w = lf_load_u64(a, LF_ACQUIRE);
	if (LF_UNLIKELY(bu_block_check(w, i, k) != BUDDY_OK))
		return buddy_free_small_word(c, r, x, k); /* its code */
	buddy_busy(c, 1);
	for (;;) {
		if (LF_UNLIKELY(m & bit)) {
			buddy_busy(c, -1);
			return buddy_reject(c, BUDDY_EDOUBLE);
		}
		uint64_t ver = m >> 32;
		/*
		 * The bit set by an 8-byte CAS of the mask alone: it succeeds
		 * only if the mask is still m, its version unchanged since our
		 * load, so the block is still the allocated head the word read
		 * after that load showed: a free of it sets or keeps its bit
		 * (a cached block's, a hold), which only a write that advances
		 * the version clears, and its frames take no other shape
		 * before it is freed (buddy_lower.h, BL_MASK_BITS). Acq_rel: a
		 * set bit is a cached head's or a hold's (refused) or a stale
		 * one (its block freed, then allocated: that allocation's
		 * release clear comes first, bl_mask_clear()); pairs with the
		 * pop's and the allocations' clears, another free's or a
		 * refill's set, and (acquire on failure) the write that
		 * advanced the version.
		 */
		if (LF_LIKELY(lf_cas_u64(a + 1, &m, m | bit, LF_ACQ_REL)))
			break;
		/* Bits set, or a pop's or a refused hold's clear: again. */
		if ((m >> 32) == ver)
			continue;
		/* Acquire: as above (the failed CAS read the new version). */
		w = lf_load_u64(a, LF_ACQUIRE);
		if (LF_UNLIKELY(bu_block_check(w, i, k) != BUDDY_OK)) {
			buddy_busy(c, -1);
			return buddy_free_small_word(c, r, x, k);
		}
	}
	return buddy_cache_free_small_cache(c, x, k);
}

static BUDDY_NOINLINE int buddy_cache_free_small(struct buddy_cpu *c,
						 const struct buddy_rgn *r,
						 uint32_t x, unsigned k)
{
	return buddy_cache_free_small_in(c, r, x, k);
}

/* Order 0: the word's masks constants (item 45). */
static BUDDY_NOINLINE int buddy_cache_free_small0(struct buddy_cpu *c,
						  const struct buddy_rgn *r,
						  uint32_t x)
{
	return buddy_cache_free_small_in(c, r, x, 0);
}

static BUDDY_INLINE int buddy_free_small_at(struct buddy_cpu *c,
					    const struct buddy_rgn *r,
					    uint32_t x, unsigned order)
{
	if (LF_LIKELY(!c->nocache))
		return buddy_cache_free_small(c, r, x, order);
	return buddy_free_small_word(c, r, x, order);
}

/* The free into the word (caches off, or a refusal's diagnosis). */
static BUDDY_NOINLINE int buddy_free_small_word(struct buddy_cpu *c,
						const struct buddy_rgn *r,
						uint32_t x, unsigned order)
{
	struct bl_ctx *l = buddy_lower_ctx(c);
	uint64_t nw, bit = 1ull << (x % BU_FRAMES);
	lf_atomic_u64 *m = &l->mask[BU_W(x / BU_FRAMES)];
	/*
	 * A section: memory appears (docs/design.md 2.7, "Sections"); the
	 * lower level's sections are this context's (bl_busy()).
	 */
	uint32_t b = buddy_busy_enter(c);
	/*
	 * Not an allocated head of that order: refused with the word's code,
	 * no hold. A unit at the core
	 * (word 0) holds no block of this level: refused, diagnosed from the
	 * core's words (a hold there could outlive the unit's trip down and
	 * let the CAS below free a block taken and cached meanwhile, item 51).
	 * Acquire: pairs with the CAS that wrote the word.
	 */
	lf_atomic_u64 *a = &l->word[BU_W(x / BU_FRAMES)];
	uint64_t w0 = lf_load_u64(a, LF_ACQUIRE);
	/* Relaxed: compared by the CAS below with the word. */
	uint64_t m0 = lf_load_u64(m, LF_RELAXED);
	for (;;) {
		int ck = w0 == BU_CORE
				 ? BUDDY_EDOUBLE
				 : bu_block_check(w0, x % BU_FRAMES, order);
		if (LF_UNLIKELY(ck != BUDDY_OK)) {
			buddy_busy_leave_from(c, b);
			return buddy_free_small_refused(c, r, x, ck);
		}
		/*
		 * The block's cached bit held across the word's CAS, so that a
		 * block in a cache (allocated in its word, its bit set) is not
		 * freed into the word too, and a racing free into a cache
		 * refuses: two RMWs on one mask, one sees the other's bit. Set
		 * with the word compared (as a cached free's), so that it is
		 * never set on a free head (item 51). The bit set (the
		 * block is cached, or held): refused.
		 */
		if (LF_UNLIKELY(m0 & bit)) {
			buddy_busy_leave_from(c, b);
			return buddy_free_small_refused(c, r, x, BUDDY_EDOUBLE);
		}
		uint64_t e[2] = { w0, m0 }, d[2] = { w0, m0 | bit };
		/* Acq_rel: as a cached free's. */
		if (lf_cas2_u64(a, e, d, LF_ACQ_REL))
			break;
		w0 = e[0];
		m0 = e[1];
	}
	int rc = bl_free_word(l, x, order, &nw);
	if (LF_UNLIKELY(rc != BUDDY_OK)) {
		/* Release: after the failed CAS; the frames were not ours. */
		(void)lf_fetch_and_u64(m, ~bit, LF_RELEASE);
		buddy_busy_leave_from(c, b);
		return buddy_free_small_refused(c, r, x, rc);
	}
	/*
	 * Freed: the hold stays, a stale bit on a free head that the next
	 * allocation of the frame clears (bl_mask_clear(): its snapshot
	 * follows our CAS). Released here, it could take the bit of a block
	 * an alloc_at took after our CAS and cached (test
	 * test_buddy_preempt_cache_v3 hold-word; docs/design.md 2.7, "Bits
	 * and the lazy clear").
	 */
	/* BU_CORE has R clear (buddy_lower.h): one test for both. */
	if (LF_UNLIKELY(!bu_reserved(nw)))
		return buddy_free_small_unreserved(c, x, order, nw);
	bl_free_hint(l, x, order);
	buddy_busy_leave_from(c, b);
	buddy_ctr_add(c, BC_FREES, 1);
	return BUDDY_OK;
}

/* Orders 1-4, several regions, and every refused address (diagnosed). */
static BUDDY_NOINLINE int buddy_free_small_k(struct buddy_cpu *c, uint64_t addr,
					     unsigned order)
{
	const struct buddy_rgn *r;
	int rc = buddy_addr_check(c->zone, addr, order, &r);
	if (LF_UNLIKELY(rc != BUDDY_OK))
		return buddy_reject(c, rc);
	return buddy_free_small_at(c, r, buddy_addr_idx(r, addr), order);
}

/*
 * Order 0 in a one-region zone: buddy_addr_check()'s tests in two (a
 * frame is aligned to order 0 once aligned to a frame, and in the region
 * once its pfn is); anything else, or a refusal, goes to
 * buddy_free_small_k(), which finds the same error code.
 */
static inline int buddy_free_small(struct buddy_cpu *c, uint64_t addr,
				   unsigned order)
{
	const struct buddy_zone *z = c->zone;
	if (LF_UNLIKELY(order != 0 || z->nrgn != 1))
		return buddy_free_small_k(c, addr, order);
	const struct buddy_rgn *r = &z->rgn[0];
	uint64_t pfn = addr >> BUDDY_FRAME_SHIFT;
	if (LF_UNLIKELY((addr & (BUDDY_FRAME_SIZE - 1)) != 0 ||
			pfn - r->pfn >= r->n))
		return buddy_free_small_k(c, addr, order);
	if (LF_LIKELY(!c->nocache))
		return buddy_cache_free_small0(c, r, buddy_addr_idx(r, addr));
	return buddy_free_small_word(c, r, buddy_addr_idx(r, addr), 0);
}
#else
static inline int buddy_free_small(struct buddy_cpu *c, uint64_t addr,
				   unsigned order)
{
	(void)addr;
	(void)order;
	return buddy_reject(c, BUDDY_EINVAL); /* never: nothing is below */
}
#endif

/* Two tail calls, and the lower level below the core, as buddy_alloc(). */
int buddy_free(struct buddy_cpu *c, uint64_t addr, unsigned order)
{
	if (c == NULL)
		return BUDDY_EINVAL;
	if (LF_UNLIKELY(buddy_cache_below_core(order)))
		return buddy_free_small(c, addr, order);
#if BUDDY_CORE_SHIFT == 0
	if (order < BUDDY_CACHE_ORDERS && !c->nocache)
		return buddy_free_cached(c, addr, order);
#endif
	return buddy_free_global(c, addr, order);
}
