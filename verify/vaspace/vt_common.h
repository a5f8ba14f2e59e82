/*
 * vt_common.h: shared pieces of the vaspace tests: a counting node source
 * that can fail on demand (leak check, fault injection), cache-aligned
 * allocation of struct vas and struct vas_ctx, and a snapshot of the whole
 * range list taken with vas_iterate, with its comparison.
 *
 * The node source hands out VAS_NODE_SIZE bytes aligned to 4096 filled
 * with junk (so a node read before it is written shows garbage, not
 * zeroes) and counts the nodes the vas holds: after vas_destroy() the
 * count must be zero.
 */
#ifndef VT_COMMON_H
#define VT_COMMON_H

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "vas.h"

struct vt_src {
	atomic_long live;     /* nodes the vas holds */
	atomic_ulong gets;    /* get() calls, failed ones included */
	atomic_ulong puts;    /* put() calls */
	atomic_ulong fail_at; /* fail the get() with this number; 0: none */
	atomic_ulong failed;  /* get() calls failed on purpose */
	atomic_bool fail_all; /* fail every get() */
	struct vas_node_source ns;
};

static inline void *vt_get(void *arg)
{
	struct vt_src *s = arg;
	unsigned long n = atomic_fetch_add(&s->gets, 1) + 1;
	if (atomic_load(&s->fail_all) || n == atomic_load(&s->fail_at)) {
		atomic_fetch_add(&s->failed, 1);
		return NULL;
	}
	void *p = aligned_alloc(4096, VAS_NODE_SIZE);
	CHECK_FATAL(p);
	memset(p, 0xa5, VAS_NODE_SIZE);
	atomic_fetch_add(&s->live, 1);
	return p;
}

static inline void vt_put(void *arg, void *node)
{
	struct vt_src *s = arg;
	CHECK_FATAL(node != NULL);
	CHECK_FATAL(((uintptr_t)node & 4095) == 0);
	atomic_fetch_add(&s->puts, 1);
	long live = atomic_fetch_sub(&s->live, 1) - 1;
	CHECK(live >= 0);
	memset(node, 0x5a, VAS_NODE_SIZE);
	free(node);
}

static inline void vt_src_init(struct vt_src *s)
{
	memset(s, 0, sizeof(*s));
	s->ns.get = vt_get;
	s->ns.put = vt_put;
	s->ns.arg = s;
}

/* struct vas and struct vas_ctx are cache-line aligned: not calloc. */
static inline void *vt_zalloc(size_t size)
{
	size_t sz = (size + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, sz);
	CHECK_FATAL(p);
	memset(p, 0, sz);
	return p;
}

/*
 * A stress test's vas: nq quanta of q from base, nodes of keys entries from
 * src (high water 2), and a context registered for the calling thread.
 */
static inline struct vas *vt_stress_vas(struct vt_src *src, uint64_t base,
					uint64_t nq, uint64_t q, uint32_t keys,
					struct vas_ctx **ctx)
{
	vt_src_init(src);
	struct vas *v = vt_zalloc(sizeof(*v));
	CHECK_FATAL(vas_create(v, base, nq * q, q, &src->ns, keys, 2) ==
		    VAS_OK);
	*ctx = vt_zalloc(sizeof(**ctx));
	CHECK_FATAL(vas_ctx_register(v, *ctx) == VAS_OK);
	return v;
}

/* The whole range list, as vas_iterate reports it. */
struct vt_snap {
	struct vas_range *r;
	size_t n, cap;
};

static inline bool vt_snap_fn(const struct vas_range *r, void *arg)
{
	struct vt_snap *s = arg;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->r = realloc(s->r, s->cap * sizeof(*s->r));
		CHECK_FATAL(s->r);
	}
	s->r[s->n++] = *r;
	return true;
}

static inline int vt_snap_take(struct vas_ctx *c, uint64_t a, uint64_t b,
			       struct vt_snap *s)
{
	s->n = 0;
	return vas_iterate(c, a, b, vt_snap_fn, s);
}

static inline void vt_snap_free(struct vt_snap *s)
{
	free(s->r);
	memset(s, 0, sizeof(*s));
}

static inline bool vt_range_eq(const struct vas_range *a,
			       const struct vas_range *b)
{
	return a->start == b->start && a->size == b->size &&
	       a->allocated == b->allocated && a->tag == b->tag &&
	       a->attr == b->attr;
}

static inline void vt_range_print(const char *what, const struct vas_range *r)
{
	fprintf(stderr,
		"  %s [%#" PRIx64 ", +%#" PRIx64 ") %s tag %#" PRIxPTR
		" attr %#x\n",
		what, r->start, r->size, r->allocated ? "allocated" : "free",
		r->tag, r->attr);
}

/* Equal lists; on the first difference print both and return false. */
static inline bool vt_list_eq(const struct vas_range *a, size_t na,
			      const struct vas_range *b, size_t nb)
{
	size_t i;
	for (i = 0; i < na && i < nb; i++)
		if (!vt_range_eq(&a[i], &b[i]))
			break;
	if (i == na && i == nb)
		return true;
	fprintf(stderr, "  range lists differ at %zu (%zu vs %zu ranges)\n", i,
		na, nb);
	if (i < na)
		vt_range_print("vas:", &a[i]);
	if (i < nb)
		vt_range_print("ref:", &b[i]);
	return false;
}

/*
 * With caching on, free space may be several entries (ranges held by a
 * context beside ordinary free ones, docs/design.md 3.3): merge free
 * neighbours in r[0..n); the new count.
 */
static inline size_t vt_list_merge_free(struct vas_range *r, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && !r[i].allocated && !r[k - 1].allocated &&
		    r[k - 1].start + r[k - 1].size == r[i].start) {
			r[k - 1].size += r[i].size;
			continue;
		}
		r[k++] = r[i];
	}
	return k;
}

/* Cut r[0..n) to [a, b) (each overlaps it). */
static inline void vt_list_clip(struct vas_range *r, size_t n, uint64_t a,
				uint64_t b)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t e = r[i].start + r[i].size;
		uint64_t s = r[i].start > a ? r[i].start : a;
		r[i].start = s;
		r[i].size = (e < b ? e : b) - s;
	}
}

/* The stats that describe the ranges (not nodes nor counters). */
static inline bool vt_stats_same_ranges(const struct vas_stats *a,
					const struct vas_stats *b)
{
	return a->ranges == b->ranges && a->free_ranges == b->free_ranges &&
	       a->free_bytes == b->free_bytes &&
	       a->largest_free == b->largest_free && a->height == b->height;
}

/* Calls that failed with err, refused or rejected (vas_err_is_refusal). */
static inline uint64_t vt_err(const struct vas_stats *s, int err)
{
	return s->refused[-err] + s->rejected[-err];
}

/* Every failed call, refusals and bad input. */
static inline uint64_t vt_rejected(const struct vas_stats *s)
{
	uint64_t n = 0;
	for (int i = 0; i < VAS_NERR; i++)
		n += s->rejected[i] + s->refused[i];
	return n;
}

/* Each code counted on its side only: refusals apart from bad input. */
static inline bool vt_err_split_ok(const struct vas_stats *s)
{
	for (int i = 0; i < VAS_NERR; i++)
		if ((vas_err_is_refusal(-i) ? s->rejected[i] : s->refused[i]))
			return false;
	return true;
}

#endif
