/*
 * lf_stack.h: a tagged lock-free LIFO stack over 32-bit indices.
 *
 * The elements are indices into an array the caller owns; the stack keeps
 * one link per element in a caller-owned array of lf_atomic_u32 (links[i] is
 * the element below i). The stack itself is one 64-bit word: the index of the
 * top element and a generation tag, changed together by one CAS. No memory is
 * allocated, and the link array is never freed while the stack is in use:
 * a pop may read the link of an element that another thread has just popped,
 * which is harmless only because that link still exists (the value read is
 * then discarded by the failing CAS).
 *
 * Synchronization table (which calls may run at the same time):
 *
 *                 push  push_chain  pop  pop_n  pop_all  empty
 *   push           yes     yes      yes   yes    yes      yes
 *   push_chain     yes     yes      yes   yes    yes      yes
 *   pop            yes     yes      yes   yes    yes      yes
 *   pop_n, pop_all yes     yes      yes   yes    yes      yes
 *
 *   init: no other call on the same stack.
 *
 * Every function is lock-free: a CAS fails only because another call
 * succeeded.
 *
 * The invariants S1-S5 (the caller's part: push only an element it owns,
 * never write the link of an element on a stack), the ordering argument
 * and the ABA bound are in docs/design.md 1.2; the sources cite them by
 * number.
 *
 * Example: verify/stress/workload_stack.c (every operation, under load).
 */
#ifndef LF_STACK_H
#define LF_STACK_H

#include <stdbool.h>
#include <stdint.h>

#include "lf_atomic.h"

#define LF_STACK_NIL UINT32_MAX /* no element; not a valid index */

enum lf_stack_err {
	LF_STACK_OK = 0,
	LF_STACK_EINVAL = -1, /* index is LF_STACK_NIL */
};

struct lf_stack {
	lf_atomic_u64 head; /* (a) top index in bits 0-31, tag in bits 32-63 */
};

/* The head word, as pure functions so they can be tested alone. */
static inline uint64_t lf_stack_word(uint32_t top, uint32_t tag)
{
	return (uint64_t)tag << 32 | top;
}
static inline uint32_t lf_stack_word_top(uint64_t w)
{
	return (uint32_t)w;
}
static inline uint32_t lf_stack_word_tag(uint64_t w)
{
	return (uint32_t)(w >> 32);
}
/* The word after a successful operation that leaves new_top on top (S1). */
static inline uint64_t lf_stack_word_next(uint64_t old, uint32_t new_top)
{
	return lf_stack_word(new_top, lf_stack_word_tag(old) + 1);
}

void lf_stack_init(struct lf_stack *s);

/* Push element idx, which the caller owns. */
int lf_stack_push(struct lf_stack *s, lf_atomic_u32 *links, uint32_t idx);

/*
 * Push a chain the caller has linked first -> ... -> last through links[]
 * (the link of last is overwritten), in one CAS: first ends on top.
 */
int lf_stack_push_chain(struct lf_stack *s, lf_atomic_u32 *links,
			uint32_t first, uint32_t last);

/* Pop the top element; LF_STACK_NIL if the stack is empty. */
uint32_t lf_stack_pop(struct lf_stack *s, lf_atomic_u32 *links);

/*
 * Pop up to n elements in one CAS. Returns the top one (LF_STACK_NIL when
 * empty); *count says how many were taken, chained through links[] from the
 * returned element, the link of the last one being LF_STACK_NIL.
 * nlinks bounds the indices: a link read from an element that changed under
 * us is only trusted after the CAS, and must not be used to index past the
 * array before that.
 */
uint32_t lf_stack_pop_n(struct lf_stack *s, lf_atomic_u32 *links,
			uint32_t nlinks, uint32_t n, uint32_t *count);

/* Take the whole stack in one CAS; the chain ends with LF_STACK_NIL. */
uint32_t lf_stack_pop_all(struct lf_stack *s);

/* A snapshot; another thread may change the answer at once. */
bool lf_stack_empty(const struct lf_stack *s);

#endif /* LF_STACK_H */
