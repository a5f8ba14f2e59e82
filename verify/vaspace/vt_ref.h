/*
 * vt_ref.h: the reference model of vas.h for the model and fault tests: a
 * sorted array of ranges partitioning [base, end), each allocated (with a
 * tag) or free, adjacent free ranges coalesced, and the exact placement
 * and error rules of vas.h written out the slow, obvious way:
 *
 *  - vas_alloc: size 0, align not a power of two (0 allowed), a policy
 *    other than first or best fit, a NULL address: EINVAL; then size not
 *    a multiple of the quantum: EALIGN. align 0 or below the quantum means
 *    the quantum. A candidate is a free range holding an address that is a
 *    multiple of align (an absolute address) with size bytes after it; the
 *    block goes at the lowest such address of the chosen candidate. First
 *    fit chooses the lowest candidate, best fit the shortest (ties: the
 *    lowest). No candidate: ENOSPC.
 *  - vas_alloc_at: size 0: EINVAL; address or size not a multiple of the
 *    quantum: EALIGN; not inside the region (or wrapping): ERANGE; not
 *    inside one free range: EBUSY.
 *  - vas_free: EINVAL, EALIGN, ERANGE as alloc_at; not inside one
 *    allocated range: ENOTALLOC. The rest of that range stays allocated
 *    with its tag (head and tail), the freed part coalesces.
 *  - vas_lookup: outside: ERANGE; free: ENOENT; else the allocated range.
 *
 * Errors of alloc, alloc_at and free are counted by code, as vas_stats'
 * rejected[] counts them.
 */
#ifndef VT_REF_H
#define VT_REF_H

#include "vt_common.h"

struct vt_ref {
	uint64_t base, end, q;
	struct vas_range *r; /* sorted, partition of [base, end) */
	size_t n, cap;
	uint64_t rejected[VAS_NERR];
};

static inline void vt_ref_init(struct vt_ref *m, uint64_t base, uint64_t size,
			       uint64_t q)
{
	memset(m, 0, sizeof(*m));
	m->base = base;
	m->end = base + size;
	m->q = q;
	m->cap = 64;
	m->r = malloc(m->cap * sizeof(*m->r));
	CHECK_FATAL(m->r);
	m->r[0] = (struct vas_range){ base, size, 0, false };
	m->n = 1;
}

static inline void vt_ref_fini(struct vt_ref *m)
{
	free(m->r);
	m->r = NULL;
}

static inline int vt_ref_err(struct vt_ref *m, int err)
{
	if (err < 0)
		m->rejected[-err]++;
	return err;
}

/* Index of the range holding addr (inside the region). */
static inline size_t vt_ref_find(const struct vt_ref *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->r[mid].start <= addr)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static inline uint64_t vt_ref_rend(const struct vas_range *r)
{
	return r->start + r->size;
}

/* Replace range i by the k ranges of p (k may be 0 to 3). */
static inline void vt_ref_splice(struct vt_ref *m, size_t i,
				 const struct vas_range *p, size_t k)
{
	if (m->n + k > m->cap) {
		m->cap = 2 * (m->n + k);
		m->r = realloc(m->r, m->cap * sizeof(*m->r));
		CHECK_FATAL(m->r);
	}
	memmove(&m->r[i + k], &m->r[i + 1], (m->n - i - 1) * sizeof(*m->r));
	if (k)
		memcpy(&m->r[i], p, k * sizeof(*p));
	m->n = m->n + k - 1;
}

/* Merge free range i with its free neighbours. */
static inline void vt_ref_coalesce(struct vt_ref *m, size_t i)
{
	if (i + 1 < m->n && !m->r[i + 1].allocated) {
		m->r[i].size += m->r[i + 1].size;
		vt_ref_splice(m, i + 1, NULL, 0);
	}
	if (i > 0 && !m->r[i - 1].allocated) {
		m->r[i - 1].size += m->r[i].size;
		vt_ref_splice(m, i, NULL, 0);
	}
}

/* Cut [a, a + size) out of range i and give it (allocated, tag) state. */
static inline void vt_ref_carve(struct vt_ref *m, size_t i, uint64_t a,
				uint64_t size, bool allocated, uintptr_t tag)
{
	struct vas_range old = m->r[i], p[3];
	size_t k = 0;
	uint64_t e = a + size, oe = vt_ref_rend(&old);
	if (a > old.start)
		p[k++] = (struct vas_range){ old.start, a - old.start, old.tag,
					     old.allocated };
	size_t mid = i + k;
	p[k++] = (struct vas_range){ a, size, allocated ? tag : 0, allocated };
	if (e < oe)
		p[k++] = (struct vas_range){ e, oe - e, old.tag,
					     old.allocated };
	vt_ref_splice(m, i, p, k);
	if (!allocated)
		vt_ref_coalesce(m, mid);
}

/* The lowest multiple of align >= s, if it leaves size bytes in r. */
static inline bool vt_ref_fit(const struct vas_range *r, uint64_t size,
			      uint64_t align, uint64_t *at)
{
	if (r->allocated || r->start > UINT64_MAX - (align - 1))
		return false;
	uint64_t a = (r->start + align - 1) & ~(align - 1);
	if (a - r->start >= r->size || r->size - (a - r->start) < size)
		return false;
	*at = a;
	return true;
}

static inline int vt_ref_alloc(struct vt_ref *m, uint64_t size,
			       uint64_t align, int policy, uintptr_t tag,
			       uint64_t *addr, bool addr_null)
{
	if (size == 0 || (align & (align - 1)) != 0 ||
	    (policy != VAS_FIRST_FIT && policy != VAS_BEST_FIT) || addr_null)
		return vt_ref_err(m, VAS_EINVAL);
	if (size % m->q)
		return vt_ref_err(m, VAS_EALIGN);
	if (align < m->q)
		align = m->q;
	size_t best = SIZE_MAX;
	uint64_t at = 0, a;
	for (size_t i = 0; i < m->n; i++) {
		if (!vt_ref_fit(&m->r[i], size, align, &a))
			continue;
		if (best == SIZE_MAX || m->r[i].size < m->r[best].size) {
			best = i;
			at = a;
		}
		if (policy == VAS_FIRST_FIT)
			break;
	}
	if (best == SIZE_MAX)
		return vt_ref_err(m, VAS_ENOSPC);
	vt_ref_carve(m, best, at, size, true, tag);
	*addr = at;
	return VAS_OK;
}

/* The checks shared by alloc_at and free. */
static inline int vt_ref_span(const struct vt_ref *m, uint64_t addr,
			      uint64_t size)
{
	if (size == 0)
		return VAS_EINVAL;
	if (addr % m->q || size % m->q)
		return VAS_EALIGN;
	if (addr < m->base || addr >= m->end || size > m->end - addr)
		return VAS_ERANGE;
	return VAS_OK;
}

static inline int vt_ref_alloc_at(struct vt_ref *m, uint64_t addr,
				  uint64_t size, uintptr_t tag)
{
	int rc = vt_ref_span(m, addr, size);
	if (rc)
		return vt_ref_err(m, rc);
	size_t i = vt_ref_find(m, addr);
	if (m->r[i].allocated || addr + size > vt_ref_rend(&m->r[i]))
		return vt_ref_err(m, VAS_EBUSY);
	vt_ref_carve(m, i, addr, size, true, tag);
	return VAS_OK;
}

static inline int vt_ref_free(struct vt_ref *m, uint64_t addr, uint64_t size)
{
	int rc = vt_ref_span(m, addr, size);
	if (rc)
		return vt_ref_err(m, rc);
	size_t i = vt_ref_find(m, addr);
	if (!m->r[i].allocated || addr + size > vt_ref_rend(&m->r[i]))
		return vt_ref_err(m, VAS_ENOTALLOC);
	vt_ref_carve(m, i, addr, size, false, 0);
	return VAS_OK;
}

static inline int vt_ref_lookup(const struct vt_ref *m, uint64_t addr,
				struct vas_range *out)
{
	if (addr < m->base || addr >= m->end)
		return VAS_ERANGE;
	size_t i = vt_ref_find(m, addr);
	if (!m->r[i].allocated)
		return VAS_ENOENT;
	*out = m->r[i];
	return VAS_OK;
}

/* The figures vas_stats must report for the ranges. */
static inline void vt_ref_stats(const struct vt_ref *m, struct vas_stats *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < m->n; i++) {
		if (m->r[i].allocated) {
			s->ranges++;
			continue;
		}
		s->free_ranges++;
		s->free_bytes += m->r[i].size;
		if (m->r[i].size > s->largest_free)
			s->largest_free = m->r[i].size;
	}
	for (int i = 0; i < VAS_NERR; i++) {
		if (vas_err_is_refusal(-i))
			s->refused[i] = m->rejected[i];
		else
			s->rejected[i] = m->rejected[i];
	}
}

/* The reference is itself a partition, sorted, coalesced. */
static inline bool vt_ref_valid(const struct vt_ref *m)
{
	uint64_t at = m->base;
	for (size_t i = 0; i < m->n; i++) {
		const struct vas_range *r = &m->r[i];
		if (r->start != at || r->size == 0 || r->size % m->q)
			return false;
		if (!r->allocated && r->tag != 0)
			return false;
		if (i && !r->allocated && !m->r[i - 1].allocated)
			return false;
		at += r->size;
	}
	return at == m->end;
}

#endif
