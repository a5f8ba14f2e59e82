/*
 * lf_stack.c: the tagged Treiber stack (R. K. Treiber, "Systems Programming:
 * Coping with Parallelism", IBM RJ 5118, 1986), with the ABA problem closed
 * by a generation tag beside the top index in the one head word, as in IBM
 * System/370's "compare double and swap" usage. The synchronization table
 * is in lf_stack.h; the invariants S1-S5 and the ordering argument (S4, S5:
 * release sequences through the head's CASes) in docs/design.md 1.2.
 */
#include "lf_stack.h"

void lf_stack_init(struct lf_stack *s)
{
	lf_init_u64(&s->head, lf_stack_word(LF_STACK_NIL, 0));
}

int lf_stack_push_chain(struct lf_stack *s, lf_atomic_u32 *links,
			uint32_t first, uint32_t last)
{
	if (first == LF_STACK_NIL || last == LF_STACK_NIL)
		return LF_STACK_EINVAL;
	/* Relaxed: the CAS below re-checks it. */
	uint64_t h = lf_load_u64(&s->head, LF_RELAXED);
	for (;;) {
		/* Relaxed: last is ours until the CAS publishes it. */
		lf_store_u32(&links[last], lf_stack_word_top(h), LF_RELAXED);
		/* Release: pairs with the acquire in lf_stack_pop*(). */
		if (lf_cas_u64(&s->head, &h, lf_stack_word_next(h, first),
			       LF_RELEASE))
			return LF_STACK_OK;
	}
}

int lf_stack_push(struct lf_stack *s, lf_atomic_u32 *links, uint32_t idx)
{
	return lf_stack_push_chain(s, links, idx, idx);
}

uint32_t lf_stack_pop(struct lf_stack *s, lf_atomic_u32 *links)
{
	/* Acquire: pairs with the release CAS in lf_stack_push_chain() (S4). */
	uint64_t h = lf_load_u64(&s->head, LF_ACQUIRE);
	for (;;) {
		uint32_t top = lf_stack_word_top(h);
		if (top == LF_STACK_NIL)
			return LF_STACK_NIL;
		/*
		 * Relaxed: if top was popped meanwhile, this link may be any
		 * value, and the CAS fails because the tag moved (S1).
		 */
		uint32_t below = lf_load_u32(&links[top], LF_RELAXED);
		/*
		 * Acq_rel (acquire on failure too: the next round reads a
		 * link). Acquire: S4. Release: what the caller wrote before
		 * the pop reaches whoever reads this head value, or a later
		 * one, with acquire (S5: the buddy's in-flight word).
		 */
		if (lf_cas_u64(&s->head, &h, lf_stack_word_next(h, below),
			       LF_ACQ_REL))
			return top;
	}
}

/*
 * Walk at most n elements from top; returns the last one taken, or
 * LF_STACK_NIL if a link read out of bounds (the chain changed under us).
 */
static uint32_t lf_stack_pop_n_walk(lf_atomic_u32 *links, uint32_t nlinks,
				    uint32_t top, uint32_t n, uint32_t *count)
{
	uint32_t last = top;
	uint32_t taken = 1;
	while (taken < n) {
		/* Relaxed: trusted only if the caller's CAS succeeds. */
		uint32_t below = lf_load_u32(&links[last], LF_RELAXED);
		if (below == LF_STACK_NIL)
			break;
		if (below >= nlinks)
			return LF_STACK_NIL;
		last = below;
		taken++;
	}
	*count = taken;
	return last;
}

uint32_t lf_stack_pop_n(struct lf_stack *s, lf_atomic_u32 *links,
			uint32_t nlinks, uint32_t n, uint32_t *count)
{
	*count = 0;
	if (n == 0)
		return LF_STACK_NIL;
	/* Acquire: pairs with the release CAS in lf_stack_push_chain() (S4). */
	uint64_t h = lf_load_u64(&s->head, LF_ACQUIRE);
	for (;;) {
		uint32_t top = lf_stack_word_top(h);
		if (top == LF_STACK_NIL)
			return LF_STACK_NIL;
		uint32_t taken;
		uint32_t last =
			lf_stack_pop_n_walk(links, nlinks, top, n, &taken);
		if (last == LF_STACK_NIL) {
			/* Acquire: as above; the walk starts over. */
			h = lf_load_u64(&s->head, LF_ACQUIRE);
			continue;
		}
		/* Relaxed: validated by the CAS, like the walk. */
		uint32_t below = lf_load_u32(&links[last], LF_RELAXED);
		/*
		 * An unchanged head word means no element changed hands since
		 * h was read (S1, S2), so the walked chain is the real one.
		 */
		/* Acq_rel: as in lf_stack_pop() (S4, S5). */
		if (lf_cas_u64(&s->head, &h, lf_stack_word_next(h, below),
			       LF_ACQ_REL)) {
			/* Relaxed: the chain is ours now. */
			lf_store_u32(&links[last], LF_STACK_NIL, LF_RELAXED);
			*count = taken;
			return top;
		}
	}
}

uint32_t lf_stack_pop_all(struct lf_stack *s)
{
	/* Acquire: pairs with the release CAS in lf_stack_push_chain() (S4). */
	uint64_t h = lf_load_u64(&s->head, LF_ACQUIRE);
	for (;;) {
		uint32_t top = lf_stack_word_top(h);
		if (top == LF_STACK_NIL)
			return LF_STACK_NIL;
		/* Acq_rel: as in lf_stack_pop() (S4, S5). */
		if (lf_cas_u64(&s->head, &h,
			       lf_stack_word_next(h, LF_STACK_NIL), LF_ACQ_REL))
			return top;
	}
}

bool lf_stack_empty(const struct lf_stack *s)
{
	/* Relaxed: a snapshot that orders nothing. */
	return lf_stack_word_top(lf_load_u64(&s->head, LF_RELAXED)) ==
	       LF_STACK_NIL;
}
