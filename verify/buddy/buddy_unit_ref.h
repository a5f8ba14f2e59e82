/*
 * buddy_unit_ref.h: a reference model of one unit of the buddy's lower
 * level (buddy/buddy_unit.h, docs/design.md 2.7), written out frame by
 * frame: per frame free / allocated head / tail and each head's order,
 * allocation as a naive buddy (the smallest maximal free block that fits,
 * the lowest among equals, its low part kept). The oracle of
 * test_buddy_unit and the sequential specification of the model
 * checker's buddy.unit configurations.
 */
#ifndef BUDDY_UNIT_REF_H
#define BUDDY_UNIT_REF_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "buddy_unit.h"

enum { RF = 0, RA = 1, RT = 2 }; /* free, allocated head, tail */

struct ref {
	uint8_t st[BU_FRAMES];
	uint8_t ord[BU_FRAMES]; /* heads */
	bool res;
	bool core; /* the unit went back to the core (word 0) */
};

static inline bool ref_all_free(const struct ref *r, unsigned p, unsigned n)
{
	for (unsigned i = p; i < p + n; i++)
		if (r->st[i] != RF)
			return false;
	return true;
}

/* The word of a reference state, written out frame by frame. */
static inline uint64_t ref_encode(const struct ref *r)
{
	if (r->core)
		return 0;
	uint64_t w = (r->st[0] == RF ? 1u : 0u) | (r->res ? 2u : 0u);
	for (unsigned i = 1; i < BU_FRAMES; i++) {
		uint64_t c = r->st[i] == RF ? 1 : r->st[i] == RA ? 2 : 0;
		w |= c << (2 * i);
	}
	return w;
}

static inline void ref_settle(struct ref *r)
{
	if (!r->res && ref_all_free(r, 0, BU_FRAMES))
		r->core = true;
}

static inline void ref_put(struct ref *r, unsigned p, unsigned k)
{
	r->st[p] = RA;
	r->ord[p] = (uint8_t)k;
	for (unsigned i = p + 1; i < p + (1u << k); i++)
		r->st[i] = RT;
}

static inline void ref_clear(struct ref *r, unsigned p, unsigned n)
{
	for (unsigned i = p; i < p + n; i++)
		r->st[i] = RF;
}

/* The naive buddy's choice: smallest maximal free block, lowest first. */
static inline int ref_pick(const struct ref *r, unsigned k, unsigned end)
{
	for (unsigned j = k; j <= BU_ORDER; j++)
		for (unsigned p = 0; p < BU_FRAMES; p += 1u << j) {
			if (!ref_all_free(r, p, 1u << j) || p + (1u << k) > end)
				continue;
			unsigned q = j < BU_ORDER ? p & ~((2u << j) - 1) : 0;
			if (j == BU_ORDER || !ref_all_free(r, q, 2u << j))
				return (int)p;
		}
	return -1;
}

static inline int ref_alloc(struct ref *r, unsigned k, unsigned end,
			    unsigned *off)
{
	if (k > BU_MAX_ORDER)
		return BUDDY_EINVAL;
	int p = end > BU_FRAMES ? -1 : ref_pick(r, k, end);
	if (p < 0)
		return BUDDY_ENOMEM;
	ref_put(r, (unsigned)p, k);
	*off = (unsigned)p;
	return BUDDY_OK;
}

static inline int ref_alloc_at(struct ref *r, unsigned i, unsigned k)
{
	if (k > BU_MAX_ORDER || i >= BU_FRAMES)
		return BUDDY_EINVAL;
	if (i % (1u << k))
		return BUDDY_EALIGN;
	if (!ref_all_free(r, i, 1u << k))
		return BUDDY_EBUSY;
	ref_put(r, i, k);
	return BUDDY_OK;
}

static inline int ref_check_block(const struct ref *r, unsigned i, unsigned k)
{
	if (r->st[i] == RF)
		return BUDDY_EDOUBLE;
	if (r->st[i] == RT)
		return BUDDY_ETAIL;
	return r->ord[i] == k ? BUDDY_OK : BUDDY_EORDER;
}

static inline int ref_free(struct ref *r, unsigned i, unsigned k)
{
	if (k > BU_MAX_ORDER || i >= BU_FRAMES)
		return BUDDY_EINVAL;
	if (i % (1u << k))
		return BUDDY_EALIGN;
	int rc = ref_check_block(r, i, k);
	if (rc == BUDDY_OK) {
		ref_clear(r, i, 1u << k);
		ref_settle(r);
	}
	return rc;
}

static inline void ref_put_run(struct ref *r, unsigned p, unsigned n)
{
	for (int b = BU_MAX_ORDER; b >= 0; b--)
		if (n & (1u << b)) {
			ref_put(r, p, (unsigned)b);
			p += 1u << b;
		}
}

static inline int ref_run(struct ref *r, unsigned n, unsigned *off)
{
	if (n == 0 || n >= BU_FRAMES)
		return BUDDY_EINVAL;
	unsigned k = 0;
	while ((1u << k) < n)
		k++;
	int p = ref_pick(r, k, BU_FRAMES);
	if (p < 0)
		return BUDDY_ENOMEM;
	ref_put_run(r, (unsigned)p, n);
	*off = (unsigned)p;
	return BUDDY_OK;
}

static inline int ref_free_run(struct ref *r, unsigned i, unsigned n)
{
	if (n == 0 || n >= BU_FRAMES || i >= BU_FRAMES)
		return BUDDY_EINVAL;
	if (i + n > BU_FRAMES)
		return BUDDY_ERANGE;
	unsigned p = i;
	for (int b = BU_MAX_ORDER; b >= 0; b--)
		if (n & (1u << b)) {
			if (p % (1u << b))
				return BUDDY_EALIGN;
			int rc = ref_check_block(r, p, (unsigned)b);
			if (rc != BUDDY_OK)
				return rc;
			p += 1u << b;
		}
	ref_clear(r, i, n);
	ref_settle(r);
	return BUDDY_OK;
}

static inline int ref_reclaim(struct ref *r)
{
	if (!r->res || !ref_all_free(r, 0, BU_FRAMES))
		return BUDDY_EBUSY;
	r->core = true;
	return BUDDY_OK;
}

static inline unsigned ref_free_count(const struct ref *r)
{
	unsigned n = 0;
	for (unsigned i = 0; i < BU_FRAMES; i++)
		n += r->st[i] == RF;
	return n;
}

static inline int ref_max_free_order(const struct ref *r)
{
	for (int j = BU_ORDER; j >= 0; j--)
		for (unsigned p = 0; p < BU_FRAMES; p += 1u << j)
			if (ref_all_free(r, p, 1u << j))
				return j;
	return -1;
}

static inline int ref_reserve(struct ref *r)
{
	r->res = true;
	return BUDDY_OK;
}

static inline int ref_release(struct ref *r)
{
	r->res = false;
	ref_settle(r);
	return BUDDY_OK;
}

#endif /* BUDDY_UNIT_REF_H */
