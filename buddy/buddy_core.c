/*
 * buddy_core.c: the lock-free heart of the buddy allocator: per-order
 * stacks of free blocks, claims on the per-frame state word, split on
 * allocation and coalescing on free.
 *
 * A block is whatever its head frame's state word says (invariant B2 of
 * docs/design.md); a stack entry is only a hint. Stacks cannot remove an
 * element from the middle, so when a free block is merged into its buddy or
 * claimed by alloc_at, its entry stays where it is and goes stale. The stk
 * field of the state word records which stack holds a frame's link (B3), so
 * a popper, which then owns the link, re-files the entry by its frame's
 * current state: claims it if it is a free block that fits, moves it to the
 * stack of its real order if it is a free block of another order
 * ("misplaced": a merge left the new head's entry on the lower stack), or
 * drops it (stk = 0) otherwise. A frame is pushed only by the CAS that sees
 * stk == 0 and sets it, so no link is ever on two stacks.
 *
 * Spare slots (B4). Below BUDDY_SPARE_ORDERS, a block a context publishes
 * with its link free (a split's upper half, an eager free's block) goes
 * into that context's spare slot of its order if the slot is open, not
 * onto the stack: a store instead of a CAS and a push, and the context's
 * next allocation of the order claims it where it is (buddy_take_spare),
 * instead of a pop and a claim; a merge that claims it as a buddy leaves
 * no stale entry. Every pass of the core looks at its own slots before
 * each stack and, if the stacks have nothing, at every other context's
 * (buddy_take_others), so a spare is found like a listed block and
 * ENOMEM stays exact. A slot is emptied of a free block only by merging
 * or pushing it (buddy_spare_empty), and taken over only when the block
 * it names is no longer free at its order (buddy_spare_open).
 *
 * Coalescing (B6). A free claims its block (ALLOC -> BUSY), then claims free
 * buddies (FREE -> TAIL or BUSY of the next order) one order at a time, and
 * publishes the result (BUSY -> FREE). Two buddies freed at the same moment
 * may each see the other BUSY and stop; so every publish is a seq_cst CAS
 * followed by a seq_cst load of the buddy, and if the buddy is then free of
 * the same order the publisher merges the pair (lower one claimed first, so
 * of two publishers exactly one goes on). In the total order of seq_cst
 * operations, of two publishes the later one's load sees the other block
 * free, unless a third call changed it, which then takes the duty over.
 * Blocks published by a split need no such check: their buddy is the half
 * the splitter keeps. A free whose buddy is not free when it looks claims
 * and publishes its block in one seq_cst CAS (ALLOC -> FREE), then does
 * the same re-check (buddy_free_eager).
 *
 * Memory orders. Claims are acquire (acq_rel CAS) and publishes release or
 * seq_cst: a block's previous owner's writes to the frames happen-before
 * its next owner's, through the head word's release sequence (every change
 * of it is an RMW, or a release store by a sole owner). Stack links are
 * ordered by the stacks themselves (lf_stack.h, S4).
 */
#include "buddy_i.h"

enum buddy_pop { BP_TAKEN, BP_DROPPED, BP_MOVED, BP_REJECTED };

static int buddy_free_why(struct buddy_zone *z, const struct buddy_rgn *r,
			  uint32_t x, uint16_t s);

/*
 * Set kind and order of a frame the caller owns. Others may change its stk
 * while a stack holds its link (a popper drops the stale entry); with stk
 * 0 nobody else writes the word (B3: only the owner's publish sets stk,
 * and every other writer's CAS expects a kind an owned frame has not), so
 * a store does, and saves an atomic read-modify-write on the global path.
 */
static inline void buddy_st_put(struct buddy_zone *z, uint32_t x, unsigned kind,
				unsigned order)
{
	/* Relaxed: the frame is ours; the CAS re-checks a listed one. */
	uint16_t s = lf_load_u16(buddy_st(z, x), LF_RELAXED);
	/*
	 * Release (store or CAS): hands on what the owner did (a split's
	 * halves, the frames' contents); pairs with the acquire of the next
	 * claim.
	 */
	if (bst_stk(s) == 0) {
		lf_store_u16(buddy_st(z, x), bst_with(s, kind, order),
			     LF_RELEASE);
		return;
	}
	while (!lf_cas_u16(buddy_st(z, x), &s, bst_with(s, kind, order),
			   LF_ACQ_REL))
		;
}

void buddy_st_set(struct buddy_zone *z, uint32_t x, unsigned kind,
		  unsigned order)
{
	buddy_st_put(z, x, kind, order);
}

/*
 * Spare slots (buddy_i.h, struct buddy_cpu). Only the owner writes them:
 * inside an in-flight section when a slot comes to name a block, with
 * release stores, so that the section's entry (busy, a release store
 * before them) is visible to whoever reads the slot or the mask with
 * acquire (a failing pass, buddy_take_others() and buddy_take_spare_of()):
 * that pass's second look at the busy words comes after its look at the
 * slots, so a window that saw a slot change also sees the section (on a
 * weakly ordered CPU too: relaxed stores and loads here would let the
 * pass see the slot and still read the busy word from before the
 * section). A window that read the slot before the section saw it as it
 * was; one that reads the busy word after the section reads the slot
 * too.
 */
_Static_assert(BUDDY_ORDERS <= 32, "spare_mask holds a bit per order");
_Static_assert(BUDDY_SPARE_ORDERS <= BUDDY_ORDERS, "spare orders");

static inline void buddy_spare_set(struct buddy_cpu *c, unsigned k, uint32_t y)
{
	/* Relaxed: only the owner writes them (above). */
	uint32_t m = lf_load_u32(&c->spare_mask, LF_RELAXED);
	m = y == BUDDY_SPARE_NONE ? m & ~(1u << k) : m | 1u << k;
	/* Release, both: the section's entry before them (above); pair
	 * with the acquire loads of a failing pass. */
	lf_store_u32(&c->spare[k], y, LF_RELEASE);
	lf_store_u32(&c->spare_mask, m, LF_RELEASE);
}

/* buddy_spare_set(c, k, x) for a block x (not BUDDY_SPARE_NONE). */
static inline void buddy_spare_name(struct buddy_cpu *c, unsigned k, uint32_t x)
{
	/* Relaxed load, release stores: as buddy_spare_set(). */
	uint32_t m = lf_load_u32(&c->spare_mask, LF_RELAXED) | 1u << k;
	lf_store_u32(&c->spare[k], x, LF_RELEASE);
	lf_store_u32(&c->spare_mask, m, LF_RELEASE);
}

/* Empty slot k if it names y, which the caller has just claimed. */
static inline void buddy_spare_forget(struct buddy_cpu *c, unsigned k,
				      uint32_t y)
{
	/* Relaxed: our own slot. */
	if (lf_load_u32(&c->spare[k], LF_RELAXED) == y)
		buddy_spare_set(c, k, BUDDY_SPARE_NONE);
}

/*
 * May slot k take a new block: is it empty, or does it name a block that
 * is no longer FREE(k)? A FREE(k) block with stk 0 that only this slot
 * names was published by this context (every publish of an unlisted
 * block names it in its publisher's slot), so our relaxed load sees that
 * publish or a later change; a block that another context made FREE(k)
 * again is named by that context's slot or is on a stack (B4).
 */
static inline bool buddy_spare_open(struct buddy_cpu *c, unsigned k)
{
	/* Relaxed: our own slot; the word as above. */
	uint32_t y = lf_load_u32(&c->spare[k], LF_RELAXED);
	return y == BUDDY_SPARE_NONE ||
	       !bst_is(lf_load_u16(buddy_st(c->zone, y), LF_RELAXED), BK_FREE,
		       k);
}

/*
 * Is stack j empty now? A snapshot, inline (lf_stack_empty()'s test).
 * Acquire: a failing pass that sees the stack empty must see, at its
 * second look at the busy words, the section of whoever emptied it (the
 * popper entered it before the pop); pairs with the release half of the
 * acq_rel pop CASes (lf_stack.c, S5), through the head's release sequence.
 */
static inline bool buddy_stack_empty(const struct buddy_zone *z, unsigned j)
{
	return lf_stack_word_top(lf_load_u64(&z->stacks[j].s.head,
					     LF_ACQUIRE)) == LF_STACK_NIL;
}

/* Index of the buddy of block x of order k, if it lies in the region. */
static inline bool buddy_buddy_of(const struct buddy_rgn *r, uint32_t x,
				  unsigned k, uint32_t *b)
{
	if (k >= BUDDY_MAX_ORDER)
		return false;
	uint32_t off = x - r->idx, h = (uint32_t)1 << k;
	/* x is the upper half of its parent iff bit k of its pfn is set. */
	if (((r->pfn + off) >> k) & 1) {
		if (off < h)
			return false; /* the buddy starts before the region */
		*b = x - h;
		return true;
	}
	if ((uint64_t)off + 2 * (uint64_t)h > r->n)
		return false; /* the buddy ends after the region */
	*b = x + h;
	return true;
}

/*
 * Claim frame x while it is a free head of order k: FREE(k) -> kind(order).
 * keep_stk: the entry stays where it is (a merge or alloc_at: it goes
 * stale); otherwise the caller popped it and now owns its link.
 */
static inline bool buddy_claim_free(struct buddy_zone *z, uint32_t x,
				    unsigned k, unsigned kind, unsigned order,
				    bool keep_stk)
{
	/* Acquire: pairs with the release/seq_cst CAS that published it. */
	uint16_t s = lf_load_u16(buddy_st(z, x), LF_ACQUIRE);
	for (;;) {
		if (!bst_is(s, BK_FREE, k))
			return false;
		uint16_t n = bst_with(s, kind, order);
		if (!keep_stk)
			n = bst_with_stk(n, 0);
		/* Acq_rel: takes the block (acquire), hands on (release). */
		if (lf_cas_u16(buddy_st(z, x), &s, n, LF_ACQ_REL))
			return true;
	}
}

/*
 * Publish frame x, ours, as a free head of order k: into this context's
 * spare slot of order k if spare is set, x's link is free (stk 0), no
 * drain batch is open and the slot is open (a release or seq_cst store:
 * nobody else writes an owned frame's word with stk 0, B2); else by CAS,
 * pushed if unlisted.
 */
static void buddy_publish_cas(struct buddy_cpu *c, uint32_t x, unsigned k,
			      lf_order o, uint16_t s);

static inline void buddy_publish(struct buddy_cpu *c, uint32_t x, unsigned k,
				 lf_order o, bool spare)
{
	struct buddy_zone *z = c->zone;
	/* Relaxed: the CAS re-checks it. */
	uint16_t s = lf_load_u16(buddy_st(z, x), LF_RELAXED);
	if (spare && bst_stk(s) == 0 && c->chain == NULL &&
	    buddy_spare_open(c, k)) {
		/*
		 * Release (a split's half) or seq_cst (a free, B6), as the
		 * CAS below. Spelled out: a memory order the compiler cannot
		 * see is taken as seq_cst, an exchange on x86.
		 */
		if (o == LF_RELEASE)
			lf_store_u16(buddy_st(z, x), bst_make(BK_FREE, k, 0),
				     LF_RELEASE);
		else
			lf_store_u16(buddy_st(z, x), bst_make(BK_FREE, k, 0),
				     LF_SEQ_CST);
		buddy_spare_name(c, k, x);
		buddy_free_delta(c, k, 1);
		return;
	}
	buddy_publish_cas(c, x, k, o, s);
}

/* buddy_publish() by CAS, pushed if unlisted; s: x's word, as loaded. */
static BUDDY_NOINLINE void buddy_publish_cas(struct buddy_cpu *c, uint32_t x,
					     unsigned k, lf_order o, uint16_t s)
{
	struct buddy_zone *z = c->zone;
	unsigned stk;
	do {
		stk = bst_stk(s);
		/* B3: a listed link stays where it is; its popper re-files it.
		 */
	} while (!lf_cas_u16(buddy_st(z, x), &s,
			     bst_make(BK_FREE, k, stk ? stk : k + 1), o));
	buddy_free_delta(c, k, 1);
	if (stk != 0)
		return;
	struct buddy_chain *ch = c->chain;
	if (ch == NULL) {
		lf_stack_push(&z->stacks[k].s, z->link, buddy_cx(x));
		return;
	}
	/*
	 * A drain's batch: x's link is ours (B3: held by the call pushing
	 * it) until the drain pushes the chain, inside its section, so the
	 * block is in flight, not lost, meanwhile (B4). Relaxed: the push
	 * publishes the link (S4).
	 */
	lf_store_u32(buddy_link(z, x), buddy_cx(ch->first[k]), LF_RELAXED);
	if (ch->first[k] == LF_STACK_NIL)
		ch->last[k] = x;
	ch->first[k] = x;
}

void buddy_publish_half(struct buddy_cpu *c, uint32_t u, unsigned k)
{
	/* Release: pairs with the acquire of whoever claims the half. */
	buddy_publish(c, u, k, LF_RELEASE, k < BUDDY_SPARE_ORDERS);
	buddy_ctr_add(c, BC_SPLITS, 1);
}

/*
 * x is BUSY(k) and ours; if its buddy b is FREE(k), claim it and make the
 * lower of the two the BUSY head of order k + 1. True if merged (the new
 * head is then the lower of x and b), false with nothing changed.
 */
static bool buddy_merge_claim(struct buddy_cpu *c, uint32_t x, uint32_t b,
			      unsigned k)
{
	struct buddy_zone *z = c->zone;
	bool lower = b < x;
	if (!buddy_claim_free(z, b, k, lower ? BK_BUSY : BK_TAIL,
			      lower ? k + 1 : 0, true))
		return false;
	buddy_spare_forget(c, k, b);
	/* x, the head still, keeps BUSY: the publish writes its order. */
	if (lower)
		buddy_st_put(z, x, BK_TAIL, 0);
	buddy_free_delta(c, k, -1);
	buddy_ctr_add(c, BC_MERGES, 1);
	return true;
}

/*
 * The recheck's first look, inline: is b FREE(k)? Seq_cst: pairs with the
 * seq_cst publish of the buddy (B6); buddy_recheck() looks again.
 */
static inline bool buddy_buddy_free(struct buddy_zone *z, uint32_t b,
				    unsigned k)
{
	return bst_is(lf_load_u16(buddy_st(z, b), LF_SEQ_CST), BK_FREE, k);
}

/*
 * After publishing x FREE(k): if its buddy b is FREE(k) too, claim the
 * lower (BUSY) then the upper (TAIL). True with *xp the new BUSY head of
 * order k + 1; false when there is nothing (more) for this call to do.
 */
static bool buddy_recheck(struct buddy_cpu *c, uint32_t x, uint32_t b,
			  unsigned k, uint32_t *xp)
{
	struct buddy_zone *z = c->zone;
	uint32_t lo = x < b ? x : b, hi = x < b ? b : x;
	for (;;) {
		/* Seq_cst: pairs with the seq_cst publish of the buddy (B6). */
		uint16_t sb = lf_load_u16(buddy_st(z, b), LF_SEQ_CST);
		if (!bst_is(sb, BK_FREE, k))
			return false;
		/* The lower first: of two rechecking publishers one goes on. */
		if (!buddy_claim_free(z, lo, k, BK_BUSY, k, true))
			return false;
		buddy_spare_forget(c, k, lo);
		buddy_free_delta(c, k, -1);
		if (buddy_claim_free(z, hi, k, BK_TAIL, 0, true)) {
			buddy_spare_forget(c, k, hi);
			break;
		}
		/* hi was taken meanwhile: give lo back, look again. */
		buddy_publish(c, lo, k, LF_SEQ_CST, k < BUDDY_SPARE_ORDERS);
		x = lo;
		b = hi;
	}
	buddy_free_delta(c, k, -1);
	buddy_st_set(z, lo, BK_BUSY, k + 1);
	buddy_ctr_add(c, BC_MERGES, 1);
	*xp = lo;
	return true;
}

/* x is BUSY(k), ours, inside our section: merge it up and publish it. */
static void buddy_merge_up(struct buddy_cpu *c, const struct buddy_rgn *r,
			   uint32_t x, unsigned k)
{
	uint32_t b;
	bool has;
	for (;;) {
		while ((has = buddy_buddy_of(r, x, k, &b)) &&
		       buddy_merge_claim(c, x, b, k)) {
			x = x < b ? x : b;
			k++;
		}
		/* Seq_cst: pairs with the recheck load of the buddy's freer. */
		buddy_publish(c, x, k, LF_SEQ_CST, k < BUDDY_SPARE_ORDERS);
		/* b: still the buddy of x at order k, if it has one. */
		if (!has || !buddy_buddy_free(c->zone, b, k) ||
		    !buddy_recheck(c, x, b, k, &x))
			break;
		k++;
	}
}

void buddy_free_merge(struct buddy_cpu *c, const struct buddy_rgn *r,
		      uint32_t x, unsigned k)
{
	buddy_busy(c, 1);
	buddy_merge_up(c, r, x, k);
	buddy_busy(c, -1);
}

/*
 * The merging half of buddy_free_eager(): x is ALLOC(k) (*sp its word)
 * and b its buddy. If b is FREE(k), claim it first, as the merge would
 * (the lower of the two becomes BUSY(k + 1), the upper a TAIL), then take
 * x from ALLOC(k) straight to its part of the pair by one CAS: the claim
 * of the free (B2: a racing double free fails one of the two CASes) and
 * the first merge in two read-modify-writes, not three. Then merge on up
 * (true). If x is no longer ALLOC(k) (a double free lost the race), b is
 * given back as it was (published again and its buddy rechecked, B6),
 * and false returns with x's word in *sp; false also if b was not free.
 */
static bool buddy_free_pair(struct buddy_cpu *c, const struct buddy_rgn *r,
			    uint32_t x, uint32_t b, unsigned k, uint16_t *sp)
{
	struct buddy_zone *z = c->zone;
	bool lower = b < x;
	/* Acquire: pairs with the publish of b. */
	uint16_t sb = lf_load_u16(buddy_st(z, b), LF_ACQUIRE);
	do {
		if (!bst_is(sb, BK_FREE, k))
			return false;
		/* Acq_rel: the merge's claim of b (B2); its entry stays. */
	} while (!lf_cas_u16(
		buddy_st(z, b), &sb,
		bst_with(sb, lower ? BK_BUSY : BK_TAIL, lower ? k + 1 : 0),
		LF_ACQ_REL));
	uint16_t s = *sp;
	while (bst_is(s, BK_ALLOC, k)) {
		/* Acq_rel: the claim of the freed block (acquire: the
		 * frames' contents), as buddy_free_claim(). */
		if (!lf_cas_u16(buddy_st(z, x), &s,
				bst_with(s, lower ? BK_TAIL : BK_BUSY,
					 lower ? 0 : k + 1),
				LF_ACQ_REL))
			continue;
		buddy_spare_forget(c, k, b);
		buddy_free_delta(c, k, -1);
		buddy_ctr_add(c, BC_MERGES, 1);
		buddy_merge_up(c, r, lower ? b : x, k + 1);
		return true;
	}
	/*
	 * x was not ours to free: give b back at order k, its link as it
	 * is (a popper may have dropped a stale entry of b meanwhile: then
	 * it is published as any unlisted block), and recheck its buddy.
	 */
	*sp = s;
	uint32_t lo = b;
	buddy_free_delta(c, k, -1); /* the publish counts it again */
	buddy_publish(c, b, k, LF_SEQ_CST, k < BUDDY_SPARE_ORDERS);
	if (buddy_buddy_free(z, x, k) && buddy_recheck(c, b, x, k, &lo))
		buddy_merge_up(c, r, lo, k + 1);
	return false;
}

int buddy_free_eager(struct buddy_cpu *c, const struct buddy_rgn *r, uint32_t x,
		     unsigned k)
{
	struct buddy_zone *z = c->zone;
	uint32_t b = LF_STACK_NIL;
	bool has = buddy_buddy_of(r, x, k, &b);
	/* Acquire: pairs with the release that made it ALLOC. */
	uint16_t s = lf_load_u16(buddy_st(z, x), LF_ACQUIRE);
	if (!bst_is(s, BK_ALLOC, k))
		return buddy_free_why(z, r, x, s); /* nothing changed */
	buddy_busy(c, 1); /* memory appears: a section (exact ENOMEM) */
	if (has && buddy_free_pair(c, r, x, b, k, &s)) {
		buddy_busy(c, -1);
		return BUDDY_OK;
	}
	if (!bst_is(s, BK_ALLOC, k)) {
		buddy_busy(c, -1);
		return buddy_free_why(z, r, x, s); /* nothing changed */
	}
	bool spare = k < BUDDY_SPARE_ORDERS && buddy_spare_open(c, k);
	while (bst_is(s, BK_ALLOC, k)) {
		unsigned stk = bst_stk(s);
		uint16_t n = bst_make(BK_FREE, k,
				      stk     ? stk
				      : spare ? 0
					      : k + 1);
		/*
		 * Seq_cst: the claim (B2: of this and a racing double free
		 * one CAS fails; acquire, the frames' contents) and the
		 * publish (B6: pairs with the recheck load of the buddy's
		 * freer, as buddy_publish()) in one.
		 */
		if (!lf_cas_u16(buddy_st(z, x), &s, n, LF_SEQ_CST))
			continue;
		buddy_free_delta(c, k, 1);
		if (stk == 0 && spare)
			buddy_spare_name(c, k, x);
		else if (stk == 0)
			lf_stack_push(&z->stacks[k].s, z->link, buddy_cx(x));
		/* b is x's buddy at order k, if it has one (B6). */
		if (has && buddy_buddy_free(z, b, k) &&
		    buddy_recheck(c, x, b, k, &x))
			buddy_merge_up(c, r, x, k + 1);
		buddy_busy(c, -1);
		return BUDDY_OK;
	}
	buddy_busy(c, -1);
	return buddy_free_why(z, r, x, s);
}

/*
 * Free a batch of blocks of order o, ours (CACHED or BUSY, stk == 0: no
 * stack holds their links, so no other context writes their words). Those
 * that are buddies of each other merge here first, with plain stores and
 * no atomic read-modify-write: the batch is sorted, and a block's lower
 * buddy, if the batch holds all of it, is the entry just before it once
 * the smaller pieces below have merged, so one pass with a stack of the
 * merged blocks finds every pair. Each block left then goes through
 * buddy_free_merge() (its outside buddies, B6). The frames end as an
 * eager free of each block would leave them, at a fraction of the
 * claims: a drain of 16 neighbouring order-0 blocks is one merge with
 * the outside, not 15 (the cost of a drain, and so of cross-CPU frees).
 * xs[] is sorted in place; n is at most BUDDY_CACHE_SLOTS.
 */
void buddy_free_batch(struct buddy_cpu *c, uint32_t *xs, uint32_t n, unsigned o)
{
	struct buddy_zone *z = c->zone;
	uint8_t ks[BUDDY_CACHE_SLOTS];
	uint32_t m = 0, b;
	LF_ASSERT(n <= BUDDY_CACHE_SLOTS);
	bool down = true; /* a cache's LIFO often gives them descending */
	for (uint32_t i = 1; i < n && down; i++)
		down = xs[i - 1] > xs[i];
	for (uint32_t i = 0; down && i < n / 2; i++) {
		uint32_t t = xs[i];
		xs[i] = xs[n - 1 - i];
		xs[n - 1 - i] = t;
	}
	for (uint32_t i = 1; i < n; i++) /* insertion sort: n is small */
		for (uint32_t j = i; j > 0 && xs[j - 1] > xs[j]; j--) {
			uint32_t t = xs[j];
			xs[j] = xs[j - 1];
			xs[j - 1] = t;
		}
	for (uint32_t i = 0; i < n; i++) {
		xs[m] = xs[i];
		ks[m++] = (uint8_t)o;
		while (m >= 2 && ks[m - 1] == ks[m - 2] &&
		       buddy_buddy_of(buddy_rgn_of_idx(z, xs[m - 2]), xs[m - 2],
				      ks[m - 2], &b) &&
		       b == xs[m - 1]) {
			/*
			 * Release: the upper half's head becomes a tail of
			 * the lower one (as a merge's claim makes it); it is
			 * ours. Pairs with the acquire of whoever claims the
			 * merged block after its publish.
			 */
			lf_store_u16(buddy_st(z, xs[m - 1]),
				     bst_make(BK_TAIL, 0, 0), LF_RELEASE);
			ks[m - 2]++;
			m--;
			buddy_ctr_add(c, BC_MERGES, 1);
		}
	}
	for (uint32_t i = 0; i < m; i++) {
		/* Release: as above; the block is BUSY and ours until
		 * buddy_free_merge() publishes it. */
		lf_store_u16(buddy_st(z, xs[i]), bst_make(BK_BUSY, ks[i], 0),
			     LF_RELEASE);
		buddy_free_merge(c, buddy_rgn_of_idx(z, xs[i]), xs[i], ks[i]);
	}
}

/*
 * Deferred coalescing (B8). A free through buddy_free_defer() publishes its
 * block without merging it and records it in the context's spare slot of
 * its order, after emptying the slot (buddy_spare_empty(): the block it
 * named merges if it is still free and its buddy is free too, else it is
 * pushed onto its stack if no stack holds it). So a pair of allocation and
 * free on a fully coalesced zone splits and merges nothing after the
 * first: the block stays free at its order for the next allocation (the
 * eager cascade cost 2 x 18 levels per pair on a 1 GiB zone). The price
 * is bounded: at quiescence, every pair of free buddies of one order has a
 * member in some context's slot (B8), so at most one unmerged pair per
 * context and order; buddy_zone_undefer() merges them all, and the
 * allocation slow path and buddy_zone_drain_all() call it, so ENOMEM stays
 * exact and a drained zone is fully coalesced.
 *
 * Why B8 holds. A FREE block leaves a slot only in buddy_spare_empty(),
 * which first loads its buddy (seq_cst) and merges the two if it is free
 * (other publishes take a slot only when it is open: empty, or naming a
 * block no longer free at that order). If the buddy is not free then,
 * whoever frees it later either merges it at once (an eager publish
 * rechecks its buddy, B6) or defers it into a slot. The deferring publish
 * is seq_cst like an eager one, so of a deferred block and a concurrently
 * published buddy, one side's seq_cst load sees the other's publish (the
 * argument of B6).
 */

/* If block y is FREE(k) with a FREE(k) buddy, claim y and merge them. */
static bool buddy_undefer_block(struct buddy_cpu *c, uint32_t y, unsigned k)
{
	struct buddy_zone *z = c->zone;
	const struct buddy_rgn *r = buddy_rgn_of_idx(z, y);
	uint32_t b;
	if (!buddy_buddy_of(r, y, k, &b))
		return false;
	/* Seq_cst: pairs with the publish of the buddy (B8, as B6). */
	if (!bst_is(lf_load_u16(buddy_st(z, b), LF_SEQ_CST), BK_FREE, k))
		return false;
	/* y's entry, if listed, stays and goes stale (a merge's claim). */
	if (!buddy_claim_free(z, y, k, BK_BUSY, k, true))
		return false;
	buddy_spare_forget(c, k, y);
	buddy_free_delta(c, k, -1);
	buddy_free_merge(c, r, y, k);
	return true;
}

/*
 * Spare y of order k leaves its slot: if it is FREE(k) and no stack holds
 * it (stk 0), take its link (stk = k + 1) and push it, so that it stays
 * findable (B4). Relaxed CAS, as buddy_move(): the link is ours and the
 * push orders it (S4); the block's word was published before.
 */
static void buddy_spare_push(struct buddy_cpu *c, uint32_t y, unsigned k)
{
	struct buddy_zone *z = c->zone;
	/* Relaxed: the CAS re-checks it. */
	uint16_t s = lf_load_u16(buddy_st(z, y), LF_RELAXED);
	while (bst_is(s, BK_FREE, k) && bst_stk(s) == 0)
		if (lf_cas_u16(buddy_st(z, y), &s, bst_with_stk(s, k + 1),
			       LF_RELAXED)) {
			lf_stack_push(&z->stacks[k].s, z->link, buddy_cx(y));
			return;
		}
}

/*
 * Empty this context's slot k for x (BUSY and ours), inside the caller's
 * section: the block it names merges with a free buddy (B8), or goes onto
 * its stack if nothing holds it (B4). A merge may give a block of order
 * k back into the slot (buddy_recheck()), hence the loop.
 */
static void buddy_spare_empty(struct buddy_cpu *c, unsigned k, uint32_t x)
{
	for (;;) {
		/* Relaxed: our own slot. */
		uint32_t y = lf_load_u32(&c->spare[k], LF_RELAXED);
		if (y == BUDDY_SPARE_NONE || y == x)
			return;
		if (buddy_undefer_block(c, y, k))
			continue;
		buddy_spare_push(c, y, k);
		buddy_spare_set(c, k, BUDDY_SPARE_NONE);
		return;
	}
}

void buddy_free_defer(struct buddy_cpu *c, uint32_t x, unsigned k)
{
	buddy_busy(c, 1); /* x is BUSY and ours until published */
	buddy_spare_empty(c, k, x);
	/* Seq_cst: pairs with the seq_cst loads of buddies (B6, B8). */
	buddy_publish(c, x, k, LF_SEQ_CST, true);
	/*
	 * Named here even if a stack holds it too (stk != 0: the publish
	 * did not take the slot), for B8. Inside the section: see
	 * buddy_spare_set().
	 */
	buddy_spare_name(c, k, x);
	buddy_busy(c, -1);
}

void buddy_zone_coalesce(struct buddy_cpu *c)
{
	(void)buddy_zone_undefer(c);
}

bool buddy_zone_undefer(struct buddy_cpu *c)
{
	struct buddy_zone *z = c->zone;
	bool any = false;
	for (uint32_t i = 0; i < z->ncpus; i++)
		for (unsigned k = 0; k < BUDDY_MAX_ORDER; k++) {
			/*
			 * Relaxed: a hint, ordered as buddy_spare_set() says.
			 */
			uint32_t y =
				lf_load_u32(&z->cpus[i].spare[k], LF_RELAXED);
			if (y != BUDDY_SPARE_NONE)
				any |= buddy_undefer_block(c, y, k);
		}
	return any;
}

/*
 * Claim allocated block x of this order for freeing (ALLOC -> kind), or
 * say why not, changing nothing.
 */
int buddy_free_claim(struct buddy_zone *z, const struct buddy_rgn *r,
		     uint32_t x, unsigned order, unsigned kind)
{
	/* Acquire: pairs with the release that made it ALLOC. */
	uint16_t s = lf_load_u16(buddy_st(z, x), LF_ACQUIRE);
	while (bst_is(s, BK_ALLOC, order)) {
		/* Acq_rel: the frames' contents go to the next owner. */
		if (lf_cas_u16(buddy_st(z, x), &s, bst_with(s, kind, order),
			       LF_ACQ_REL))
			return BUDDY_OK;
	}
	return buddy_free_why(z, r, x, s);
}

/* Why block x, whose word is s, cannot be freed (not ALLOC of the order). */
static int buddy_free_why(struct buddy_zone *z, const struct buddy_rgn *r,
			  uint32_t x, uint16_t s)
{
	if (bst_kind(s) == BK_ALLOC)
		return BUDDY_EORDER;
#if BUDDY_CORE_SHIFT > 0
	if (bst_kind(s) == BK_LOWER) {
		/*
		 * A unit of the lower level, freed at a unit's order or more:
		 * its first frame is the head of a smaller block (EORDER) or
		 * free (EDOUBLE). Relaxed: a diagnosis only.
		 */
		uint64_t w = lf_load_u64(&z->lower.word[BU_W(buddy_cx(x))],
					 LF_RELAXED);
		/*
		 * A head in a per-CPU block cache (its cached bit set) is
		 * free to the caller: EDOUBLE, as version 2's CACHED head
		 * (v3-status items 37, 38). Relaxed: a diagnosis only.
		 */
		uint64_t m = lf_load_u64(&z->lower.mask[BU_W(buddy_cx(x))],
					 LF_RELAXED);
		return w != BU_CORE && !(w & BU_FREE0) && !(m & 1)
			       ? BUDDY_EORDER
			       : BUDDY_EDOUBLE;
	}
#endif
	if (bst_kind(s) != BK_TAIL)
		return BUDDY_EDOUBLE; /* FREE, CACHED, or BUSY in a free */
	/* A tail: of an allocated block (ETAIL) or of a free one (EDOUBLE). */
	uint64_t pfn = r->pfn + (x - r->idx);
	for (unsigned j = 1; j <= BUDDY_MAX_ORDER; j++) {
		uint64_t hp = pfn & ~(((uint64_t)1 << j) - 1);
		if (hp < r->pfn)
			break;
		/* Relaxed: a diagnosis only. */
		uint16_t h = lf_load_u16(buddy_st(z, r->idx + (hp - r->pfn)),
					 LF_RELAXED);
		if (bst_is_head(h) && bst_order(h) >= j)
			return bst_kind(h) == BK_ALLOC ? BUDDY_ETAIL
						       : BUDDY_EDOUBLE;
	}
	/*
	 * A tail no head covers: only a merge in progress leaves one (its
	 * claim of the upper buddy made that a tail before the lower one's
	 * word covers it, buddy_free_pair()), so the frame is free or being
	 * freed: EDOUBLE.
	 */
	return BUDDY_EDOUBLE;
}

/* Does block x of order k (the low part of a bigger one) end by limit? */
static bool buddy_fits(const struct buddy_zone *z, uint32_t x, unsigned k,
		       uint64_t limit)
{
	if (limit == BUDDY_NOLIMIT)
		return true;
	const struct buddy_rgn *r = buddy_rgn_of_idx(z, x);
	return r->pfn + (x - r->idx) + ((uint64_t)1 << k) <= limit;
}

/* Move popped entry x (FREE of order o, held from a stack) to stack o. */
static bool buddy_move(struct buddy_cpu *c, uint32_t x, uint16_t *s, unsigned o)
{
	struct buddy_zone *z = c->zone;
	/* Relaxed: the link is ours; the push orders it (S4). */
	if (!lf_cas_u16(buddy_st(z, x), s, bst_with_stk(*s, o + 1), LF_RELAXED))
		return false;
	lf_stack_push(&z->stacks[o].s, z->link, buddy_cx(x));
	buddy_ctr_add(c, BC_MOVED, 1);
	return true;
}

/*
 * Entry x was popped from stack j; we own its link (stk == j + 1). Take
 * it if it is a free block of order >= k that fits (then BUSY, stk 0, its
 * order in *op); keep it (REJECTED) if it is a free block of order j that
 * does not fit; move it if it is a free block of another order; drop it
 * (stk 0) otherwise.
 */
static enum buddy_pop buddy_popped(struct buddy_cpu *c, uint32_t x, unsigned j,
				   unsigned k, uint64_t limit, unsigned *op)
{
	struct buddy_zone *z = c->zone;
	/* Acquire: pairs with the publish of the block. */
	uint16_t s = lf_load_u16(buddy_st(z, x), LF_ACQUIRE);
	for (;;) {
		LF_ASSERT(bst_stk(s) == j + 1); /* B3 */
		unsigned o = bst_order(s);
		if (bst_kind(s) != BK_FREE) {
			/* Relaxed: only stk changes, and the link is ours. */
			if (!lf_cas_u16(buddy_st(z, x), &s, bst_with_stk(s, 0),
					LF_RELAXED))
				continue;
			buddy_ctr_add(c, BC_STALE, 1);
			return BP_DROPPED;
		}
		if (o >= k && buddy_fits(z, x, k, limit)) {
			buddy_busy(c, 1); /* before the claim: no gap seen */
			/* Acq_rel: the claim (B2). */
			if (!lf_cas_u16(buddy_st(z, x), &s,
					bst_make(BK_BUSY, o, 0), LF_ACQ_REL)) {
				buddy_busy(c, -1);
				continue;
			}
			buddy_free_delta(c, o, -1);
			*op = o;
			return BP_TAKEN;
		}
		if (o == j)
			return BP_REJECTED;
		if (buddy_move(c, x, &s, o))
			return BP_MOVED;
	}
}

/* Entry x popped from stack j: true if taken (BUSY, order in *op). */
bool buddy_pop_take(struct buddy_cpu *c, uint32_t x, unsigned j, unsigned k,
		    unsigned *op)
{
	return buddy_popped(c, x, j, k, BUDDY_NOLIMIT, op) == BP_TAKEN;
}

/*
 * Pop stack j until a block of order >= k that fits is claimed; blocks of
 * order j that do not fit the limit are pushed back in one chain.
 */
uint32_t buddy_take_stack(struct buddy_cpu *c, unsigned j, unsigned k,
			  uint64_t limit, unsigned *op)
{
	struct buddy_zone *z = c->zone;
	uint32_t first = LF_STACK_NIL, last = LF_STACK_NIL, x;
	/* An empty stack: no section, so failing passes stay quiet. */
	if (buddy_stack_empty(z, j))
		return LF_STACK_NIL;
	buddy_busy(c, 1); /* popped entries are in our hands */
	while ((x = buddy_fx(lf_stack_pop(&z->stacks[j].s, z->link))) !=
	       LF_STACK_NIL) {
		enum buddy_pop p = buddy_popped(c, x, j, k, limit, op);
		if (p == BP_TAKEN)
			break;
		if (p != BP_REJECTED)
			continue;
		/* Relaxed: our link until push_chain publishes it. */
		lf_store_u32(buddy_link(z, x), buddy_cx(first), LF_RELAXED);
		first = x;
		if (last == LF_STACK_NIL)
			last = x;
	}
	if (first != LF_STACK_NIL)
		lf_stack_push_chain(&z->stacks[j].s, z->link, buddy_cx(first),
				    buddy_cx(last));
	buddy_busy(c, -1);
	return x;
}

#if BUDDY_CORE_SHIFT > 0
/*
 * Version 3: a take of order 5-8 from the stacks (orders below
 * BUDDY_PICK_TOP: the blocks that split a 2 MiB block, the units that
 * come down for the lower level among them) looks at the first
 * BUDDY_PICK entries of its stack (one pop_n) and claims the free block
 * whose 2 MiB block has the fewest free frames at the core: small blocks
 * gather in the 2 MiB blocks they fill already, and the emptiest ones
 * are left to merge back to order 9 (docs/design.md 2.7, "Placement";
 * v3-status item 26). The stack's top is only the block freed last.
 */
#define BUDDY_PICK 8
#define BUDDY_PICK_TOP 9 /* 2 MiB: orders below it are picked */

/*
 * Frames in free core blocks (FREE heads) of the 2 MiB block that holds
 * frame index x, within x's region: its 16 state words (one cache
 * line), from head to head (a head's order says where the next one is;
 * a tail, seen in a stale view, steps one unit). Relaxed loads: a hint
 * for the pick, which the claim's CAS decides.
 */
static unsigned buddy_huge_free(const struct buddy_zone *z, uint32_t x)
{
	const struct buddy_rgn *r = buddy_rgn_of_idx(z, x);
	uint64_t m = ((uint64_t)1 << BUDDY_PICK_TOP) - 1;
	uint64_t p = r->pfn + (x - r->idx), lo = p & ~m, hi = lo + m + 1;
	unsigned f = 0;
	if (lo < r->pfn)
		lo = r->pfn;
	if (hi > r->pfn + r->n)
		hi = r->pfn + r->n;
	uint32_t u = buddy_cx(r->idx + (uint32_t)(lo - r->pfn));
	uint32_t end = u + (uint32_t)((hi - lo) >> BUDDY_CORE_SHIFT);
	while (u < end) {
		/* Relaxed: a hint (above). */
		uint16_t s = lf_load_u16(&z->st[u], LF_RELAXED);
		unsigned o = bst_order(s) - BUDDY_CORE_SHIFT;
		if (!bst_is_head(s))
			o = 0;
		if (bst_kind(s) == BK_FREE)
			f += 1u << bst_order(s);
		u += 1u << o;
	}
	return f;
}

/*
 * Is y's 2 MiB block fuller (fewer free frames) than that of x, the
 * pick so far, whose free frames are *bf (~0u: not scanned yet)? *bf
 * becomes y's if so.
 */
static bool buddy_pick_fuller(const struct buddy_zone *z, uint32_t y,
			      uint32_t x, unsigned *bf)
{
	if (*bf == ~0u)
		*bf = buddy_huge_free(z, x);
	unsigned f = buddy_huge_free(z, y);
	if (f >= *bf)
		return false;
	*bf = f;
	return true;
}

/*
 * buddy_take_stack() without a limit, for j < BUDDY_PICK_TOP: of the
 * first BUDDY_PICK entries of stack j (one pop_n), the free block of
 * order j whose 2 MiB block has the fewest free frames is claimed; the
 * other free blocks of order j go back in one chain with their stk kept
 * (B3: their links stayed ours, as buddy_take_stack()'s rejected ones),
 * the rest are moved or dropped (buddy_popped()). If the claim fails
 * (taken or changed meanwhile), the stack is popped again. ENOMEM stays
 * exact: the pass ends only on an empty stack, as buddy_take_stack().
 */
static uint32_t buddy_take_pick(struct buddy_cpu *c, unsigned j, unsigned k,
				unsigned *op)
{
	struct buddy_zone *z = c->zone;
	uint32_t x = LF_STACK_NIL;
	/* An empty stack: no section, so failing passes stay quiet. */
	if (buddy_stack_empty(z, j))
		return LF_STACK_NIL;
	buddy_busy(c, 1); /* popped entries are in our hands */
	for (;;) {
		uint32_t n, first = LF_STACK_NIL, last = LF_STACK_NIL;
		unsigned bf = ~0u, o;
		uint32_t u = lf_stack_pop_n(&z->stacks[j].s, z->link,
					    (uint32_t)buddy_ncx(z->nidx),
					    BUDDY_PICK, &n);
		if (u == LF_STACK_NIL)
			break;
		x = LF_STACK_NIL;
		while (u != LF_STACK_NIL) {
			/* Relaxed: the chain is ours (pop_n's acquire). */
			uint32_t next = lf_load_u32(&z->link[u], LF_RELAXED);
			uint32_t y = buddy_fx(u), back = y;
			/* A limit of 0 fits nothing: FREE(j) is kept. */
			if (buddy_popped(c, y, j, BUDDY_ORDERS, 0, &o) ==
			    BP_REJECTED) {
				/* Scans only from the second candidate on. */
				if (x == LF_STACK_NIL) {
					back = LF_STACK_NIL;
					x = y;
				} else if (buddy_pick_fuller(z, y, x, &bf)) {
					back = x;
					x = y;
				}
				if (back != LF_STACK_NIL) {
					/* Relaxed: our link until the push. */
					lf_store_u32(buddy_link(z, back),
						     buddy_cx(first),
						     LF_RELAXED);
					first = back;
					if (last == LF_STACK_NIL)
						last = back;
				}
			}
			u = next;
		}
		if (first != LF_STACK_NIL)
			lf_stack_push_chain(&z->stacks[j].s, z->link,
					    buddy_cx(first), buddy_cx(last));
		/* j >= k and no limit: a FREE(j) block is taken. */
		if (x != LF_STACK_NIL &&
		    buddy_popped(c, x, j, k, BUDDY_NOLIMIT, op) == BP_TAKEN)
			break;
		x = LF_STACK_NIL;
	}
	buddy_busy(c, -1);
	return x;
}

/* The pick (above) for orders below 2 MiB without a limit. */
static inline bool buddy_picks(unsigned j, uint64_t limit)
{
	return j < BUDDY_PICK_TOP && limit == BUDDY_NOLIMIT;
}
#else
static inline uint32_t buddy_take_pick(struct buddy_cpu *c, unsigned j,
				       unsigned k, unsigned *op)
{
	(void)c;
	(void)j;
	(void)k;
	(void)op;
	return LF_STACK_NIL; /* never: version 2 takes the top */
}

static inline bool buddy_picks(unsigned j, uint64_t limit)
{
	(void)j;
	(void)limit;
	return false;
}
#endif

/*
 * Claim o's spare of order j (o may be c) if it is FREE(j) and its low
 * part of order k ends by limit: BUSY(j), ours, with c's in-flight section
 * open (the split gives parts back), or LF_STACK_NIL. c's own slot
 * empties if the block is no longer FREE(j) or is taken.
 */
static BUDDY_INLINE uint32_t buddy_take_spare_of(struct buddy_cpu *c,
						 struct buddy_cpu *o,
						 unsigned j, unsigned k,
						 uint64_t limit)
{
	struct buddy_zone *z = c->zone;
	/* Acquire: a hint, ordered as buddy_spare_set() says; the claim
	 * decides. */
	uint32_t y = lf_load_u32(&o->spare[j], LF_ACQUIRE);
	if (y == BUDDY_SPARE_NONE)
		return LF_STACK_NIL;
	/* Acquire: pairs with the publish of the block. */
	uint16_t s = lf_load_u16(buddy_st(z, y), LF_ACQUIRE);
	for (;;) {
		if (!bst_is(s, BK_FREE, j)) {
			if (o == c)
				buddy_spare_set(c, j, BUDDY_SPARE_NONE);
			return LF_STACK_NIL;
		}
		if (!buddy_fits(z, y, k, limit))
			return LF_STACK_NIL;
		buddy_busy(c, 1); /* before the claim: no gap seen */
		/* Acq_rel: the claim (B2); a stack entry of y goes stale. */
		if (lf_cas_u16(buddy_st(z, y), &s, bst_with(s, BK_BUSY, j),
			       LF_ACQ_REL))
			break;
		buddy_busy(c, -1);
	}
	if (o == c)
		buddy_spare_set(c, j, BUDDY_SPARE_NONE);
	buddy_free_delta(c, j, -1);
	return y;
}

/*
 * Claim a free block of order k..max, the smallest first, at each order
 * this context's spare before the stack (version 3, below 2 MiB without
 * a limit: the stack's pick, buddy_take_pick()).
 */
uint32_t buddy_take(struct buddy_cpu *c, unsigned k, unsigned max,
		    uint64_t limit, unsigned *op)
{
	/* Relaxed: our own mask. */
	uint32_t spares = lf_load_u32(&c->spare_mask, LF_RELAXED);
	for (unsigned j = k; j <= max; j++) {
		uint32_t x = LF_STACK_NIL;
		if (spares & 1u << j)
			x = buddy_take_spare_of(c, c, j, k, limit);
		if (x == LF_STACK_NIL && buddy_picks(j, limit))
			x = buddy_take_pick(c, j, k, op);
		else if (x == LF_STACK_NIL)
			x = buddy_take_stack(c, j, k, limit, op);
		else
			*op = j;
		if (x != LF_STACK_NIL)
			return x;
	}
	return LF_STACK_NIL;
}

/*
 * buddy_split_low() for a block taken from spare slot j when slots k to
 * j - 1 are empty (their mask bits clear): each upper half goes into its
 * order's slot with one release store, as buddy_publish() would put it
 * there, without looking at the slots. A half whose link a stack holds
 * (stk != 0) is published by buddy_publish() (a CAS; no slot).
 */
static void buddy_split_spare(struct buddy_cpu *c, uint32_t x, unsigned o,
			      unsigned k, unsigned kind)
{
	struct buddy_zone *z = c->zone;
	uint32_t add = 0, n = 0;
	for (unsigned j = o; j > k; j--) {
		uint32_t u = x + ((uint32_t)1 << (j - 1));
		/* Relaxed: the half is ours; only its stk may change. */
		uint16_t s = lf_load_u16(buddy_st(z, u), LF_RELAXED);
		if (j - 1 >= BUDDY_SPARE_ORDERS || bst_stk(s) != 0) {
			buddy_publish_half(c, u, j - 1); /* takes no slot */
			continue;
		}
		/*
		 * Release: as buddy_publish_half(); a store, as in
		 * buddy_publish(): the word is ours with stk 0.
		 */
		lf_store_u16(buddy_st(z, u), bst_make(BK_FREE, j - 1, 0),
			     LF_RELEASE);
		/* Release: our own slot, inside the caller's section
		 * (buddy_spare_set()). */
		lf_store_u32(&c->spare[j - 1], u, LF_RELEASE);
		add |= 1u << (j - 1);
		n++;
		buddy_free_delta(c, j - 1, 1);
	}
	buddy_ctr_add(c, BC_SPLITS, n);
	/* Relaxed load: our own mask; release store: buddy_spare_set(). */
	lf_store_u32(&c->spare_mask,
		     lf_load_u32(&c->spare_mask, LF_RELAXED) | add, LF_RELEASE);
	buddy_st_put(z, x, kind, k);
}

uint32_t buddy_take_spare(struct buddy_cpu *c, unsigned k, unsigned kind)
{
	struct buddy_zone *z = c->zone;
	/* Relaxed: our own mask. */
	uint32_t m;
	while ((m = lf_load_u32(&c->spare_mask, LF_RELAXED) >> k) != 0) {
		unsigned j = k + (unsigned)__builtin_ctz(m);
		/* Relaxed: our own slot. */
		uint32_t y = lf_load_u32(&c->spare[j], LF_RELAXED);
		if (j == k) {
			/*
			 * Claim it where it is (FREE -> kind; its stack entry,
			 * if listed, stays and goes stale, as a merge's claim
			 * leaves it): no stack head is touched. Taking memory
			 * away needs no in-flight section. Either way the slot
			 * empties: y is ours now, or no longer FREE(k).
			 */
			bool ok = buddy_claim_free(z, y, k, kind, k, true);
			buddy_spare_set(c, k, BUDDY_SPARE_NONE);
			if (!ok)
				continue;
			buddy_free_delta(c, k, -1);
			return y;
		}
		/*
		 * A larger spare, claimed in a section and split down to k,
		 * unless a stack holds a smaller block: the smallest first,
		 * as buddy_take() (fragmentation).
		 */
		for (unsigned i = k; i < j; i++)
			if (!buddy_stack_empty(z, i))
				return LF_STACK_NIL;
		y = buddy_take_spare_of(c, c, j, k, BUDDY_NOLIMIT);
		if (y == LF_STACK_NIL)
			continue; /* the slot emptied */
		buddy_split_spare(c, y, j, k, kind);
		buddy_busy(c, -1);
		return y;
	}
	return LF_STACK_NIL;
}

/*
 * Every other context's spares of order k..max, for a pass that found
 * nothing on the stacks: a block there is free, and ENOMEM is exact only
 * if the pass looks at it (B4).
 */
static uint32_t buddy_take_others(struct buddy_cpu *c, unsigned k,
				  uint64_t limit, unsigned *op)
{
	struct buddy_zone *z = c->zone;
	for (uint32_t i = 0; i < z->ncpus; i++) {
		struct buddy_cpu *o = &z->cpus[i];
		if (o == c)
			continue;
		/* Acquire: a hint, ordered as buddy_spare_set() says. */
		uint32_t m = lf_load_u32(&o->spare_mask, LF_ACQUIRE) >> k;
		for (unsigned j = k; m != 0; j++, m >>= 1) {
			if (!(m & 1))
				continue;
			uint32_t x = buddy_take_spare_of(c, o, j, k, limit);
			if (x != LF_STACK_NIL) {
				*op = j;
				return x;
			}
		}
	}
	return LF_STACK_NIL;
}

/*
 * x is BUSY(o), ours: give back upper halves until it is BUSY(k). Its own
 * word is written once, at the end: while it is BUSY no other call reads
 * its order for anything but a diagnosis.
 */
void buddy_split_low(struct buddy_cpu *c, uint32_t x, unsigned o, unsigned k)
{
	struct buddy_zone *z = c->zone;
	for (unsigned j = o; j > k; j--)
		/* The half's buddy is the part we keep: no recheck (B6). */
		buddy_publish_half(c, x + ((uint32_t)1 << (j - 1)), j - 1);
	if (o != k)
		buddy_st_set(z, x, BK_BUSY, k);
}

/* Re-file every entry of stack j (see buddy_zone_sweep()). */
static void buddy_sweep_stack(struct buddy_cpu *c, unsigned j)
{
	struct buddy_zone *z = c->zone;
	uint32_t first = LF_STACK_NIL, last = LF_STACK_NIL;
	if (buddy_stack_empty(z, j)) /* acquire: as in buddy_take_stack() */
		return;
	buddy_busy(c, 1); /* the whole stack is in our hands */
	uint32_t x = buddy_fx(lf_stack_pop_all(&z->stacks[j].s));
	while (x != LF_STACK_NIL) {
		/* Relaxed: the chain is ours (popped whole). */
		uint32_t next =
			buddy_fx(lf_load_u32(buddy_link(z, x), LF_RELAXED));
		unsigned o;
		/* A limit of 0 fits nothing: free blocks of order j stay. */
		if (buddy_popped(c, x, j, BUDDY_ORDERS, 0, &o) == BP_REJECTED) {
			lf_store_u32(buddy_link(z, x), buddy_cx(first),
				     LF_RELAXED);
			first = x;
			if (last == LF_STACK_NIL)
				last = x;
		}
		x = next;
	}
	if (first != LF_STACK_NIL)
		lf_stack_push_chain(&z->stacks[j].s, z->link, buddy_cx(first),
				    buddy_cx(last));
	buddy_busy(c, -1);
}

void buddy_zone_sweep(struct buddy_cpu *c)
{
	(void)buddy_zone_undefer(c); /* first: its merges re-file entries */
	for (unsigned j = 0; j <= BUDDY_MAX_ORDER; j++)
		buddy_sweep_stack(c, j);
	buddy_ctr_add(c, BC_SWEEPS, 1);
}

/*
 * The other contexts' busy words summed (section boundaries crossed), or
 * UINT64_MAX if one is in flight now. Two equal sums, neither UINT64_MAX,
 * mean no other context entered a section in between (each count only
 * grows; a wrap needs 2^24 sections inside one window).
 */
#if BUDDY_CORE_SHIFT > 0
int buddy_unit_take(struct buddy_cpu *c, uint32_t *xp)
{
	uint32_t x;
	int rc = buddy_take_global_held(c, BUDDY_CORE_SHIFT, BUDDY_NOLIMIT, &x);
	if (rc != BUDDY_OK)
		return rc;
	/* Down: BUSY -> LOWER, ours (a store, or a CAS if listed: B3). */
	buddy_st_put(c->zone, x, BK_LOWER, BUDDY_CORE_SHIFT);
	*xp = x;
	return BUDDY_OK;
}

int buddy_unit_take_below(struct buddy_cpu *c, uint64_t limit, uint32_t *xp)
{
	uint32_t x;
	int rc = buddy_take_global_held(c, BUDDY_CORE_SHIFT, limit, &x);
	if (rc != BUDDY_OK)
		return rc;
	/* Down, as buddy_unit_take(). */
	buddy_st_put(c->zone, x, BK_LOWER, BUDDY_CORE_SHIFT);
	*xp = x;
	return BUDDY_OK;
}

void buddy_unit_give(struct buddy_cpu *c, uint32_t x)
{
	struct buddy_zone *z = c->zone;
	/* Acquire: pairs with the release that made it LOWER. */
	uint16_t s = lf_load_u16(buddy_st(z, x), LF_ACQUIRE);
	do {
		LF_ASSERT(bst_is(s, BK_LOWER, BUDDY_CORE_SHIFT));
		/*
		 * Acq_rel: up, LOWER -> BUSY: a CAS, since a stale core entry
		 * may change stk meanwhile; takes the frames' contents as a
		 * free's claim does.
		 */
	} while (!lf_cas_u16(buddy_st(z, x), &s,
			     bst_with(s, BK_BUSY, BUDDY_CORE_SHIFT),
			     LF_ACQ_REL));
	buddy_free_merge(c, buddy_rgn_of_idx(z, x), x, BUDDY_CORE_SHIFT);
}

int buddy_free_why_small(struct buddy_zone *z, const struct buddy_rgn *r,
			 uint32_t x)
{
	/* Relaxed: a diagnosis only. */
	uint16_t s = lf_load_u16(buddy_st(z, x), LF_RELAXED);
	/* Inside a unit, or a unit that went lower meanwhile: a tail. */
	if ((x & (BUDDY_CORE_FRAMES - 1)) || bst_kind(s) == BK_LOWER)
		s = bst_make(BK_TAIL, 0, 0);
	return buddy_free_why(z, r, x, s);
}

int buddy_unit_take_line(struct buddy_cpu *c, unsigned lo, unsigned hi,
			 uint32_t *xp)
{
	unsigned o;
	uint32_t x = buddy_take(c, BUDDY_CORE_SHIFT + lo, BUDDY_CORE_SHIFT + hi,
				BUDDY_NOLIMIT, &o);
	if (x == LF_STACK_NIL)
		return BUDDY_ENOMEM;
	buddy_split_low(c, x, o, BUDDY_CORE_SHIFT + lo);
	/*
	 * Down, every unit of the block: BUSY (the head) or TAIL -> LOWER,
	 * ours (a store, or a CAS where a stale entry holds the link: B3).
	 */
	for (uint32_t i = 0; i < 1u << lo; i++)
		buddy_st_put(c->zone, x + (i << BUDDY_CORE_SHIFT), BK_LOWER,
			     BUDDY_CORE_SHIFT);
	*xp = x;
	return BUDDY_OK;
}

/*
 * False only if no unit was free at the core (a stack or a spare slot)
 * over a window in which no other context was in flight or crossed a
 * section's boundary (buddy_take_global_held()'s rule): memory in a
 * merge, a split or a free's transit counts as "may hold", so that the
 * lower level, which enters no section of its own over a source that has
 * nothing, does not fail while a unit is on its way to the core.
 */
bool buddy_unit_has(const struct buddy_cpu *c)
{
	const struct buddy_zone *z = c->zone;
	uint64_t before = buddy_others_flight(c);
	if (before == UINT64_MAX)
		return true;
	for (unsigned j = BUDDY_CORE_SHIFT; j <= BUDDY_MAX_ORDER; j++)
		if (!buddy_stack_empty(z, j)) /* acquire: as there */
			return true;
	for (uint32_t i = 0; i < z->ncpus; i++)
		/* Acquire: pairs with buddy_spare_set()'s release stores. */
		if (lf_load_u32(&z->cpus[i].spare_mask, LF_ACQUIRE) != 0)
			return true;
	return buddy_others_flight(c) != before;
}
#endif

uint64_t buddy_others_flight(const struct buddy_cpu *c)
{
	const struct buddy_zone *z = c->zone;
	uint64_t sum = 0;
	for (uint32_t i = 0; i < z->ncpus; i++) {
		if (&z->cpus[i] == c)
			continue;
		/* Acquire: pairs with the release in buddy_busy(). */
		uint32_t w = lf_load_u32(&z->cpus[i].busy, LF_ACQUIRE);
		if (w & BUDDY_BUSY_DEPTH)
			return UINT64_MAX;
		sum += w >> BUDDY_BUSY_BITS;
	}
	return sum;
}

/*
 * Claim x, whose word s (acquire-loaded) was a FREE head of order >= k,
 * where it is (a stack entry of it stays and goes stale, a spare slot
 * naming it opens, as for a merge's claim): BUSY of its order, ours,
 * inside a section opened before the CAS; false (no section) if it is
 * no longer such a head.
 */
static bool buddy_look_claim(struct buddy_cpu *c, uint32_t x, uint16_t s,
			     unsigned k, unsigned *op)
{
	struct buddy_zone *z = c->zone;
	buddy_busy(c, 1); /* before the claim: no gap seen */
	do {
		if (bst_kind(s) != BK_FREE || bst_order(s) < k) {
			buddy_busy(c, -1);
			return false;
		}
		/* Acq_rel: the claim (B2), as buddy_take_spare_of(). */
	} while (!lf_cas_u16(buddy_st(z, x), &s,
			     bst_with(s, BK_BUSY, bst_order(s)), LF_ACQ_REL));
	*op = bst_order(s);
	buddy_spare_forget(c, *op, x);
	buddy_free_delta(c, *op, -1);
	return true;
}

/*
 * A failing pass under a limit after the first (buddy_take_global_held()
 * calls it instead of buddy_take_once()): it pops no stack and sweeps
 * none, so it enters no section unless it merges a deferred pair
 * (buddy_zone_undefer(), first, inside the window) or claims a block
 * that fits. It looks at the state word of every k-aligned head whose
 * low part of order k ends by the limit (acquire loads: pair with the
 * release or seq_cst publish of the block), skipping an allocated
 * block whole; a FREE head of order >= k there is a block that fits,
 * wherever its entry is (on a stack, misplaced, in a spare slot, or
 * unlisted), and is claimed by CAS where it is. Exact: free memory
 * below the limit is a FREE head there (or cached: the caller's
 * buddy_zone_drain_some() in the window), and a word changes from
 * anything else to FREE, or a FREE block changes its head (split,
 * merge), only inside its writer's section, which the caller's second
 * look at the busy words sees; what changes without a section (a spare
 * claimed by its owner) is memory taken away. O(blocks below the
 * limit) at worst, on the failing path only.
 */
uint32_t buddy_take_look(struct buddy_cpu *c, unsigned k, uint64_t limit,
			 unsigned *op)
{
	struct buddy_zone *z = c->zone;
	uint64_t h = (uint64_t)1 << k;
	(void)buddy_zone_undefer(c);
	for (uint32_t i = 0; i < z->nrgn; i++) {
		const struct buddy_rgn *r = &z->rgn[i];
		uint64_t p = (r->pfn + h - 1) & ~(h - 1), step;
		for (; p + h <= limit && p + h <= r->pfn + r->n; p += step) {
			uint32_t x = r->idx + (uint32_t)(p - r->pfn);
			/* Acquire: pairs with the publish of the block. */
			uint16_t s = lf_load_u16(buddy_st(z, x), LF_ACQUIRE);
			step = h;
			if (bst_kind(s) == BK_ALLOC && bst_order(s) > k)
				step = (uint64_t)1 << bst_order(s);
			if (bst_kind(s) != BK_FREE || bst_order(s) < k ||
			    !buddy_look_claim(c, x, s, k, op))
				continue;
			buddy_split_low(c, x, *op, k);
			return x;
		}
	}
	return LF_STACK_NIL;
}

/*
 * One pass over the stacks from order k. Each stack it pops is a section
 * of its own (buddy_take_stack()); an empty one is only looked at, so that
 * passes over an exhausted zone leave the busy words alone and two failing
 * contexts do not keep each other from a quiet window.
 */
uint32_t buddy_take_once(struct buddy_cpu *c, unsigned k, uint64_t limit,
			 bool sweep, unsigned *op, bool *moved)
{
	uint64_t m0 = lf_load_u64(&c->ctr[BC_MOVED], LF_RELAXED);
	if (sweep)
		buddy_zone_sweep(c); /* inside the window: what it re-files */
	uint32_t x = buddy_take(c, k, BUDDY_MAX_ORDER, limit, op);
	if (x == LF_STACK_NIL)
		x = buddy_take_others(c, k, limit, op);
	if (x != LF_STACK_NIL)
		buddy_split_low(c, x, *op, k);
	/* Relaxed: our own counter. */
	*moved = lf_load_u64(&c->ctr[BC_MOVED], LF_RELAXED) != m0;
	return x;
}
