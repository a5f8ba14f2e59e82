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
	m->r[0] = (struct vas_range){ base, size, 0, false, 0 };
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
					     old.allocated, old.attr };
	size_t mid = i + k;
	p[k++] = (struct vas_range){ a, size, allocated ? tag : 0, allocated,
				     0 };
	if (e < oe)
		p[k++] = (struct vas_range){ e, oe - e, old.tag, old.allocated,
					     old.attr };
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

static inline int vt_ref_alloc(struct vt_ref *m, uint64_t size, uint64_t align,
			       int policy, uintptr_t tag, uint64_t *addr,
			       bool addr_null)
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

/* ---- the mmap-grade calls (vas_map, replace, unmap, protect, find) ---- */

/* Pieces a write reports: the allocated parts of [a, b), cut to it. */
struct vt_pieces {
	struct vas_range r[16];
	size_t n;       /* all of them (only the first 16 kept) */
	uint64_t bytes; /* their bytes */
};

static inline void vt_ref_pieces(const struct vt_ref *m, uint64_t a, uint64_t b,
				 struct vt_pieces *out)
{
	out->n = 0;
	out->bytes = 0;
	for (size_t i = vt_ref_find(m, a); i < m->n && m->r[i].start < b; i++) {
		struct vas_range r = m->r[i];
		if (!r.allocated)
			continue;
		uint64_t s = r.start > a ? r.start : a, e = vt_ref_rend(&r);
		e = e < b ? e : b;
		r.start = s;
		r.size = e - s;
		if (out->n < 16)
			out->r[out->n] = r;
		out->n++;
		out->bytes += r.size;
	}
}

/* Give [a, b) one state; the rest as it was; free ranges coalesced. */
static inline void vt_ref_set(struct vt_ref *m, uint64_t a, uint64_t b,
			      bool allocated, uint32_t attr, uintptr_t tag)
{
	struct vas_range *o = m->r, *n = malloc((m->n + 3) * sizeof(*n));
	CHECK_FATAL(n);
	size_t k = 0, on = m->n;
	bool put = false;
	for (size_t i = 0; i < on; i++) {
		struct vas_range r = o[i];
		uint64_t e = vt_ref_rend(&r);
		if (r.start < a) {
			n[k] = r;
			n[k++].size = (e < a ? e : a) - r.start;
		}
		if (e > a && r.start < b && !put) {
			n[k++] = (struct vas_range){ a, b - a,
						     allocated ? tag : 0,
						     allocated,
						     allocated ? attr : 0 };
			put = true;
		}
		if (e > b) {
			n[k] = r;
			n[k].start = r.start > b ? r.start : b;
			n[k].size = e - n[k].start;
			k++;
		}
	}
	/* Coalesce free neighbours. */
	size_t j = 0;
	for (size_t i = 0; i < k; i++) {
		if (j > 0 && !n[i].allocated && !n[j - 1].allocated) {
			n[j - 1].size += n[i].size;
			continue;
		}
		n[j++] = n[i];
	}
	free(o);
	m->r = n;
	m->n = j;
	m->cap = on + 3;
}

static inline int vt_ref_replace(struct vt_ref *m, uint64_t addr, uint64_t size,
				 uint32_t attr, uintptr_t tag,
				 struct vt_pieces *out)
{
	if (attr & ~VAS_ATTR_MASK)
		return vt_ref_err(m, VAS_EATTR);
	int rc = vt_ref_span(m, addr, size);
	if (rc)
		return vt_ref_err(m, rc);
	vt_ref_pieces(m, addr, addr + size, out);
	vt_ref_set(m, addr, addr + size, true, attr, tag);
	return VAS_OK;
}

static inline int vt_ref_unmap(struct vt_ref *m, uint64_t addr, uint64_t size,
			       struct vt_pieces *out)
{
	int rc = vt_ref_span(m, addr, size);
	if (rc)
		return vt_ref_err(m, rc);
	vt_ref_pieces(m, addr, addr + size, out);
	vt_ref_set(m, addr, addr + size, false, 0, 0);
	return VAS_OK;
}

/* Split the range holding addr (inside the region) so one starts there. */
static inline void vt_ref_split(struct vt_ref *m, uint64_t addr)
{
	if (addr >= m->end)
		return;
	size_t i = vt_ref_find(m, addr);
	struct vas_range r = m->r[i], p[2] = { r, r };
	if (r.start == addr)
		return;
	p[0].size = addr - r.start;
	p[1].start = addr;
	p[1].size = vt_ref_rend(&r) - addr;
	vt_ref_splice(m, i, p, 2);
}

static inline int vt_ref_protect(struct vt_ref *m, uint64_t addr, uint64_t size,
				 uint32_t mask, uint32_t bits, uintptr_t tag,
				 unsigned flags, struct vt_pieces *out)
{
	if (flags & ~VAS_PROT_TAG)
		return vt_ref_err(m, VAS_EINVAL);
	if ((mask | bits) & ~VAS_ATTR_MASK)
		return vt_ref_err(m, VAS_EATTR);
	int rc = vt_ref_span(m, addr, size);
	if (rc)
		return vt_ref_err(m, rc);
	uint64_t b = addr + size;
	for (size_t i = vt_ref_find(m, addr); i < m->n && m->r[i].start < b;
	     i++)
		if (!m->r[i].allocated)
			return vt_ref_err(m, VAS_ENOTALLOC);
	vt_ref_pieces(m, addr, b, out);
	vt_ref_split(m, addr);
	vt_ref_split(m, b);
	for (size_t i = vt_ref_find(m, addr); i < m->n && m->r[i].start < b;
	     i++) {
		m->r[i].attr = (m->r[i].attr & ~mask) | (bits & mask);
		if (flags & VAS_PROT_TAG)
			m->r[i].tag = tag;
	}
	/* Merge equal allocated neighbours across boundaries in [addr, b]. */
	for (size_t i = 1; i < m->n;) {
		struct vas_range *x = &m->r[i - 1], *y = &m->r[i];
		if (y->start >= addr && y->start <= b && x->allocated &&
		    y->allocated && x->attr == y->attr && x->tag == y->tag) {
			x->size += y->size;
			vt_ref_splice(m, i, NULL, 0);
			continue;
		}
		i++;
	}
	return VAS_OK;
}

/* Where vas_map puts size bytes in free range r cut to [lo, hi). */
static inline bool vt_ref_fit_in(const struct vas_range *r, uint64_t size,
				 uint64_t align, uint64_t lo, uint64_t hi,
				 bool top, uint64_t *at)
{
	if (r->allocated)
		return false;
	uint64_t a = r->start > lo ? r->start : lo;
	uint64_t e = vt_ref_rend(r) < hi ? vt_ref_rend(r) : hi;
	if (a >= e || e - a < size)
		return false;
	if (top) {
		uint64_t x = (e - size) & ~(align - 1);
		if (x < a)
			return false;
		*at = x;
		return true;
	}
	if (a > UINT64_MAX - (align - 1))
		return false;
	uint64_t x = (a + align - 1) & ~(align - 1);
	if (x < a || x > e - size)
		return false;
	*at = x;
	return true;
}

static inline int vt_ref_map(struct vt_ref *m, const struct vas_place *p,
			     uint64_t *addr)
{
	uint64_t q = m->q;
	if (p->size == 0 || (p->align & (p->align - 1)) ||
	    (p->flags & ~VAS_MAP_FLAGS))
		return vt_ref_err(m, VAS_EINVAL);
	if (p->attr & ~VAS_ATTR_MASK)
		return vt_ref_err(m, VAS_EATTR);
	if (p->size % q || p->low % q || p->high % q)
		return vt_ref_err(m, VAS_EALIGN);
	uint64_t lo = p->low, hi = p->high, align = p->align > q ? p->align : q;
	if (lo == 0 && hi == 0) {
		lo = m->base;
		hi = m->end;
	}
	if (lo >= hi || lo < m->base || hi > m->end)
		return vt_ref_err(m, VAS_EWINDOW);
	if (p->size > hi - lo)
		return vt_ref_err(m, VAS_ENOSPC);
	bool top = (p->flags & VAS_MAP_TOPDOWN) != 0;
	uint64_t h = p->hint, at = 0, x;
	if (h != 0 && h % align == 0 && h >= lo && h < hi &&
	    hi - h >= p->size) {
		size_t i = vt_ref_find(m, h);
		if (!m->r[i].allocated &&
		    h + p->size <= vt_ref_rend(&m->r[i])) {
			vt_ref_set(m, h, h + p->size, true, p->attr, p->tag);
			*addr = h;
			return VAS_OK;
		}
	}
	size_t best = SIZE_MAX;
	for (size_t i = 0; i < m->n; i++) {
		if (!vt_ref_fit_in(&m->r[i], p->size, align, lo, hi, top, &x))
			continue;
		if (p->flags & VAS_MAP_BESTFIT) {
			if (best == SIZE_MAX ||
			    m->r[i].size < m->r[best].size) {
				best = i;
				at = x;
			}
			continue;
		}
		best = i;
		at = x;
		if (!top)
			break; /* the lowest; top: the last one wins */
	}
	if (best == SIZE_MAX)
		return vt_ref_err(m, VAS_ENOSPC);
	vt_ref_set(m, at, at + p->size, true, p->attr, p->tag);
	*addr = at;
	return VAS_OK;
}

/* vas_find: the allocated range holding addr or the first above it. */
static inline int vt_ref_find_up(const struct vt_ref *m, uint64_t addr,
				 struct vas_range *out)
{
	if (addr >= m->end)
		return VAS_ENOENT;
	addr = addr < m->base ? m->base : addr;
	for (size_t i = vt_ref_find(m, addr); i < m->n; i++)
		if (m->r[i].allocated) {
			*out = m->r[i];
			return VAS_OK;
		}
	return VAS_ENOENT;
}

/* vas_prev: the allocated range with the greatest start below addr. */
static inline int vt_ref_prev(const struct vt_ref *m, uint64_t addr,
			      struct vas_range *out)
{
	if (addr <= m->base)
		return VAS_ENOENT;
	addr = addr > m->end ? m->end : addr;
	for (size_t i = vt_ref_find(m, addr - 1) + 1; i-- > 0;)
		if (m->r[i].allocated) {
			*out = m->r[i];
			return VAS_OK;
		}
	return VAS_ENOENT;
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
		if (!r->allocated && (r->tag != 0 || r->attr != 0))
			return false;
		if (i && !r->allocated && !m->r[i - 1].allocated)
			return false;
		at += r->size;
	}
	return at == m->end;
}

#endif
