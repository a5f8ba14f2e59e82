/*
 * vt_model.h: a vas driven by random operations side by side with the
 * reference model (vt_ref.h), for model_vas.c and test_vas_fault.c.
 *
 * Every operation goes to the vas first and then to the reference; the
 * two must agree on the return code, on the address an allocation chose,
 * and on lookups probed around what the operation touched (the first and
 * last byte of the range, the bytes just outside it) and at random. With
 * fault injection on (test_vas_fault.c), a call answered VAS_ENOMEM is
 * checked to have been caused by the source failing during that call and
 * to have left the vas exactly as the reference is (the operation is then
 * skipped on the reference, its ENOMEM counted). model_verify() compares
 * the whole range list, the figures (rejected[] by code included) and runs
 * vas_check.
 *
 * A failed comparison prints the seed, the operation number and the fault
 * point, then exits: replay with --seed S (and --trace to see each call).
 */
#ifndef VT_MODEL_H
#define VT_MODEL_H

#include <stdarg.h>

#include "vt_ref.h"

struct model {
	struct vt_src src;
	struct vas *v;
	struct vas_ctx *c;
	struct vt_ref ref;
	uint64_t base, size, end, q;
	uint32_t keys;
	uint64_t high_water;
	uint64_t rng, seed, op, fault_k;
	bool fault;      /* ENOMEM is a legitimate answer */
	bool trace;      /* print every call */
	bool caching;    /* per-context caching on (vas_set_caching) */
	unsigned target; /* ranges the workload drifts towards */
	uintptr_t next_tag;
	unsigned long nomem,
		calls[8]; /* alloc at free map replace unmap prot */
	struct vt_snap snap;
};

static inline _Noreturn void model_die(struct model *m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL model: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr,
		"\n  seed %" PRIu64 " op %" PRIu64 " (keys %u, q %#" PRIx64
		", base %#" PRIx64 ", size %#" PRIx64 ")",
		m->seed, m->op, m->keys, m->q, m->base, m->size);
	if (m->fault)
		fprintf(stderr, " fault at get %" PRIu64, m->fault_k);
	fprintf(stderr, "\n");
	CHECK(!"model mismatch");
	exit(check_exit("model"));
}

#define MREQ(m, cond, ...)                                                     \
	do {                                                                   \
		if (!(cond))                                                   \
			model_die(m, __VA_ARGS__);                             \
		atomic_fetch_add_explicit(&check_count, 1,                     \
					  memory_order_relaxed);               \
	} while (0)

static inline void model_trace(struct model *m, const char *fmt, ...)
{
	if (!m->trace)
		return;
	va_list ap;
	va_start(ap, fmt);
	printf("op %" PRIu64 ": ", m->op);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

static inline uint64_t mrnd(struct model *m)
{
	m->rng ^= m->rng << 13;
	m->rng ^= m->rng >> 7;
	m->rng ^= m->rng << 17;
	return m->rng;
}

static inline uint64_t mrnd_below(struct model *m, uint64_t n)
{
	return n ? mrnd(m) % n : 0;
}

/* The shape of the region and of the tree, by seed. */
static inline void model_shape(struct model *m)
{
	static const uint32_t keys[] = { 3, 4, 7, 16, 0 };
	static const uint64_t hw[] = { 0, 2, 16 };
	m->keys = keys[m->seed % 5];
	m->high_water = hw[m->seed % 3];
	switch ((m->seed / 5) % 5) {
	case 0: /* odd base: large alignments are absolute */
		m->q = 4096;
		m->base = 0x7f0000003000ull;
		m->size = 2048 * m->q;
		break;
	case 1: /* at address 0, tight: ENOSPC often */
		m->q = 4096;
		m->base = 0;
		m->size = 600 * m->q;
		break;
	case 2: /* just below 2^64: aligned addresses past the end wrap */
		m->q = 512;
		m->size = 20000 * m->q;
		m->base = (uint64_t)0 - m->size - 7 * m->q;
		break;
	case 3: /* a 57-bit (LA57) user space: 2^45 - 2 quanta, size keys
		 * past 2^18 quanta in power-of-two classes */
		m->q = 4096;
		m->base = 0x1000;
		m->size = ((uint64_t)1 << 57) - 2 * m->q;
		break;
	default: /* big quantum, 2^20 quanta */
		m->q = 65536;
		m->base = 0x123ull * m->q;
		m->size = ((uint64_t)1 << 20) * m->q;
		break;
	}
	m->end = m->base + m->size;
}

static inline void model_init(struct model *m, uint64_t seed, bool fault,
			      uint64_t fault_k)
{
	bool trace = m->trace, caching = m->caching;
	memset(m, 0, sizeof(*m));
	m->trace = trace;
	m->caching = caching;
	m->seed = seed;
	m->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	m->fault = fault;
	m->fault_k = fault_k;
	m->next_tag = (uintptr_t)seed << 40;
	m->target = 64;
	vt_src_init(&m->src);
	model_shape(m);
	if (fault) {
		m->keys = 3;
		m->high_water = seed % 2 ? 2 : 0;
	}
	m->v = vt_zalloc(sizeof(*m->v));
	m->c = vt_zalloc(sizeof(*m->c));
	int rc = vas_create(m->v, m->base, m->size, m->q, &m->src.ns, m->keys,
			    m->high_water);
	MREQ(m, rc == VAS_OK, "vas_create: %d", rc);
	MREQ(m, vas_ctx_register(m->v, m->c) == VAS_OK, "register");
	if (m->caching)
		MREQ(m, vas_set_caching(m->v, true) == VAS_OK, "caching");
	vt_ref_init(&m->ref, m->base, m->size, m->q);
	/* Count the source's calls from the start of the workload. */
	atomic_store(&m->src.gets, 0);
	atomic_store(&m->src.fail_at, fault_k);
}

static inline void model_verify(struct model *m)
{
	int rc = vt_snap_take(m->c, m->base, m->end, &m->snap);
	MREQ(m, rc == VAS_OK, "iterate: %d", rc);
	if (m->caching)
		m->snap.n = vt_list_merge_free(m->snap.r, m->snap.n);
	MREQ(m, vt_ref_valid(&m->ref), "the reference is broken");
	MREQ(m, vt_list_eq(m->snap.r, m->snap.n, m->ref.r, m->ref.n),
	     "range lists differ");
	uint64_t where = 0;
	int inv = vas_check(m->v, &where);
	MREQ(m, inv == 0, "vas_check: invariant A%d at %#" PRIx64, inv, where);
	struct vas_stats st, want;
	vas_stats(m->v, &st);
	vt_ref_stats(&m->ref, &want);
	if (m->caching) { /* more free entries; the largest outside them */
		MREQ(m, st.free_ranges >= want.free_ranges,
		     "free ranges %" PRIu64 " < %" PRIu64, st.free_ranges,
		     want.free_ranges);
		MREQ(m, st.largest_free <= want.largest_free,
		     "largest free %#" PRIx64 " > %#" PRIx64, st.largest_free,
		     want.largest_free);
		want.free_ranges = st.free_ranges;
		want.largest_free = st.largest_free;
	}
	MREQ(m,
	     vt_stats_same_ranges(
		     &st,
		     &(struct vas_stats){ .ranges = want.ranges,
					  .free_ranges = want.free_ranges,
					  .free_bytes = want.free_bytes,
					  .largest_free = want.largest_free,
					  .height = st.height }),
	     "stats: ranges %" PRIu64 "/%" PRIu64 " free %" PRIu64 "/%" PRIu64
	     " bytes %#" PRIx64 "/%#" PRIx64 " largest %#" PRIx64 "/%#" PRIx64,
	     st.ranges, want.ranges, st.free_ranges, want.free_ranges,
	     st.free_bytes, want.free_bytes, st.largest_free,
	     want.largest_free);
	for (int i = 0; i < VAS_NERR; i++)
		MREQ(m,
		     st.rejected[i] == want.rejected[i] &&
			     st.refused[i] == want.refused[i],
		     "rejected[%d] %" PRIu64 ", expected %" PRIu64, i,
		     st.rejected[i], want.rejected[i]);
	MREQ(m, st.height >= 1 && st.height <= VAS_MAX_HEIGHT,
	     "height %" PRIu64, st.height);
	MREQ(m,
	     st.nodes >= 2 && (uint64_t)atomic_load(&m->src.live) >=
				      st.nodes + st.nodes_free,
	     "nodes %" PRIu64 " + %" PRIu64 " free, %ld from the source",
	     st.nodes, st.nodes_free, atomic_load(&m->src.live));
}

static inline void model_probe(struct model *m, uint64_t addr)
{
	struct vas_range r = { 0 }, w = { 0 };
	int rc = vas_lookup(m->c, addr, &r);
	int rw = vt_ref_lookup(&m->ref, addr, &w);
	if (rc != rw || (rc == VAS_OK && !vt_range_eq(&r, &w))) {
		if (rc == VAS_OK)
			vt_range_print("vas:", &r);
		if (rw == VAS_OK)
			vt_range_print("ref:", &w);
		model_die(m, "lookup %#" PRIx64 ": %d, expected %d", addr, rc,
			  rw);
	}
}

/* Around [a, a + n), and somewhere in the region. */
static inline void model_probe_around(struct model *m, uint64_t a, uint64_t n)
{
	model_probe(m, a);
	model_probe(m, a + n - 1);
	model_probe(m, a + mrnd_below(m, n));
	model_probe(m, a - 1);
	model_probe(m, a + n);
	model_probe(m, m->base + mrnd_below(m, m->size));
}

/*
 * The vas answered rc for a call that the reference answers with ref().
 * ENOMEM under fault injection: the source failed in this call and the
 * vas is as before; the reference only counts it. Returns true if the
 * reference is to do the operation.
 */
static inline bool model_nomem(struct model *m, int rc,
			       unsigned long failed_before)
{
	unsigned long failed = atomic_load(&m->src.failed);
	if (m->fault)
		MREQ(m, (rc == VAS_ENOMEM) == (failed != failed_before),
		     "the source failed %lu times in this call, which "
		     "returned %d",
		     failed - failed_before, rc);
	if (rc != VAS_ENOMEM)
		return true;
	MREQ(m, m->fault, "ENOMEM with no fault injected");
	m->nomem++;
	vt_ref_err(&m->ref, VAS_ENOMEM);
	model_verify(m);
	return false;
}

static inline uintptr_t model_tag(struct model *m)
{
	unsigned r = (unsigned)mrnd_below(m, 100);
	if (r < 4)
		return 0;
	if (r < 8 && m->ref.n > 1) /* the tag of some range, maybe 0 */
		return m->ref.r[mrnd_below(m, m->ref.n)].tag;
	return ++m->next_tag;
}

static inline uint64_t model_size(struct model *m)
{
	unsigned r = (unsigned)mrnd_below(m, 100);
	uint64_t n;
	if (r < 50)
		n = 1 + mrnd_below(m, 4);
	else if (r < 80)
		n = 5 + mrnd_below(m, 28);
	else if (r < 97)
		n = 33 + mrnd_below(m, 224);
	else
		n = 1 + mrnd_below(m, m->size / m->q + m->size / m->q / 4);
	return n * m->q;
}

static inline uint64_t model_align(struct model *m)
{
	unsigned r = (unsigned)mrnd_below(m, 100);
	unsigned qs = (unsigned)__builtin_ctzll(m->q);
	if (r < 45)
		return 0;
	if (r < 55)
		return (uint64_t)1 << mrnd_below(m, qs + 1); /* <= q */
	if (r < 97)
		return m->q << (1 + mrnd_below(m, 12));
	return (uint64_t)1 << (36 + mrnd_below(m, 28));
}

/*
 * With caching on, a placement (not the caches' own, not a hint) may
 * differ from the reference's: [a, a + size) must be aligned, in the
 * window [lo, hi) and free in the reference; the reference is then given
 * that address.
 */
static inline void model_placed(struct model *m, uint64_t a, uint64_t size,
				uint64_t align, uint64_t lo, uint64_t hi)
{
	MREQ(m, a % align == 0 && a >= lo && a < hi && hi - a >= size,
	     "placed at %#" PRIx64 " size %#" PRIx64 ": outside [%#" PRIx64
	     ", %#" PRIx64 ") or not aligned to %#" PRIx64,
	     a, size, lo, hi, align);
	size_t i = vt_ref_find(&m->ref, a);
	MREQ(m, !m->ref.r[i].allocated && a + size <= vt_ref_rend(&m->ref.r[i]),
	     "placed at %#" PRIx64 " size %#" PRIx64 ": not free", a, size);
}

static inline void op_alloc(struct model *m)
{
	uint64_t size = model_size(m), align = model_align(m);
	int pol = (int)mrnd_below(m, 2);
	uintptr_t tag = model_tag(m);
	uint64_t a = 0, ra = 0;
	unsigned long failed = atomic_load(&m->src.failed);
	model_trace(m, "alloc size %#" PRIx64 " align %#" PRIx64 " %s", size,
		    align, pol ? "best" : "first");
	int rc = vas_alloc(m->c, size, align, (enum vas_policy)pol, tag, &a);
	m->calls[0]++;
	if (!model_nomem(m, rc, failed))
		return;
	if (m->caching && rc == VAS_OK) { /* placed outside the caches */
		model_placed(m, a, size, align < m->q ? m->q : align, m->base,
			     m->end);
		MREQ(m, vt_ref_alloc_at(&m->ref, a, size, tag) == VAS_OK,
		     "alloc at %#" PRIx64 ": not free", a);
		model_probe_around(m, a, size);
		return;
	}
	int rr = vt_ref_alloc(&m->ref, size, align, pol, tag, &ra, false);
	MREQ(m, rc == rr && (rc != VAS_OK || a == ra),
	     "alloc size %#" PRIx64 " align %#" PRIx64 " %s: %d at %#" PRIx64
	     ", expected %d at %#" PRIx64,
	     size, align, pol ? "best" : "first", rc, a, rr, ra);
	if (rc == VAS_OK)
		model_probe_around(m, a, size);
}

static inline void model_alloc_at(struct model *m, uint64_t a, uint64_t size,
				  uintptr_t tag)
{
	unsigned long failed = atomic_load(&m->src.failed);
	model_trace(m, "alloc_at %#" PRIx64 " size %#" PRIx64, a, size);
	int rc = vas_alloc_at(m->c, a, size, tag);
	m->calls[1]++;
	if (!model_nomem(m, rc, failed))
		return;
	int rr = vt_ref_alloc_at(&m->ref, a, size, tag);
	MREQ(m, rc == rr,
	     "alloc_at %#" PRIx64 " size %#" PRIx64 ": %d, expected %d", a,
	     size, rc, rr);
	if (size && size < m->size)
		model_probe_around(m, a, size);
}

/* Inside a free range (fits), over an allocated one, or anywhere. */
static inline void op_alloc_at(struct model *m)
{
	const struct vas_range *r = &m->ref.r[mrnd_below(m, m->ref.n)];
	uint64_t nq = r->size / m->q, a, size;
	if (mrnd_below(m, 4)) {
		uint64_t off = mrnd_below(m, nq);
		a = r->start + off * m->q;
		size = (1 + mrnd_below(m, r->allocated ? 8 : nq - off)) * m->q;
	} else {
		int64_t qn = (int64_t)mrnd_below(m, m->size / m->q + 8) - 4;
		a = m->base + (uint64_t)qn * m->q;
		size = model_size(m);
	}
	model_alloc_at(m, a, size, model_tag(m));
}

static inline void model_free(struct model *m, uint64_t a, uint64_t size)
{
	unsigned long failed = atomic_load(&m->src.failed);
	model_trace(m, "free %#" PRIx64 " size %#" PRIx64, a, size);
	int rc = vas_free(m->c, a, size);
	m->calls[2]++;
	if (!model_nomem(m, rc, failed))
		return;
	int rr = vt_ref_free(&m->ref, a, size);
	MREQ(m, rc == rr,
	     "free %#" PRIx64 " size %#" PRIx64 ": %d, expected %d", a, size,
	     rc, rr);
	if (size && size < m->size)
		model_probe_around(m, a, size);
}

/* An allocated range of the reference, or NULL if there is none. */
static inline const struct vas_range *model_pick(struct model *m)
{
	size_t i = mrnd_below(m, m->ref.n);
	if (m->ref.r[i].allocated)
		return &m->ref.r[i];
	if (i + 1 < m->ref.n)
		return &m->ref.r[i + 1];
	if (i > 0)
		return &m->ref.r[i - 1];
	return NULL;
}

/* The whole, the head, the tail or the middle of an allocation. */
static inline void op_free(struct model *m)
{
	const struct vas_range *r = model_pick(m);
	if (!r)
		return;
	uint64_t nq = r->size / m->q, off = 0, n = nq;
	unsigned k = (unsigned)mrnd_below(m, 4);
	if (m->ref.n > m->target && mrnd_below(m, 4)) /* shrinking */
		k = 0;
	if (k == 1 && nq > 1) { /* head */
		n = 1 + mrnd_below(m, nq - 1);
	} else if (k == 2 && nq > 1) { /* tail */
		off = 1 + mrnd_below(m, nq - 1);
		n = nq - off;
	} else if (k == 3 && nq > 2) { /* middle */
		off = 1 + mrnd_below(m, nq - 2);
		n = 1 + mrnd_below(m, nq - off - 1);
	}
	model_free(m, r->start + off * m->q, n * m->q);
}

/* One thing wrong at a time: each class of error of each writer. */
static inline void op_bad(struct model *m)
{
	const struct vas_range *r = &m->ref.r[mrnd_below(m, m->ref.n)];
	uint64_t q = m->q, a = 0, ra = 0;
	unsigned k = (unsigned)mrnd_below(m, 12);
	int rc = 0, rr = 0;
	model_trace(m, "bad input %u near %#" PRIx64, k, r->start);
	switch (k) {
	case 0: /* free of free space, across ranges, past the end */
		model_free(m, r->start, r->size + q * mrnd_below(m, 2));
		return;
	case 1: /* across the boundary with the next range */
		if (r->start + r->size < m->end)
			model_free(m, r->start + r->size - q, 2 * q);
		return;
	case 2:
		model_free(m, r->start + (q > 1 ? 1 + mrnd_below(m, q - 1) : 0),
			   q);
		return;
	case 3:
		model_free(m, r->start, mrnd_below(m, 2) ? 0 : q + q / 2);
		return;
	case 4:
		model_free(m, mrnd_below(m, 2) ? m->end : m->base - q, q);
		return;
	case 5:
		model_alloc_at(m, r->start + mrnd_below(m, q), 0, 1);
		return;
	case 6:
		model_alloc_at(m, r->start, r->size + q, 1);
		return;
	case 7:
		model_alloc_at(m, m->end - q, (uint64_t)0 - m->end + 2 * q, 1);
		return;
	case 8: /* size 0 or not a multiple */
		a = mrnd_below(m, 2) ? 0 : q * 3 + q / 2 + (q == 1 ? 1 : 0);
		rc = vas_alloc(m->c, a, 0, VAS_FIRST_FIT, 1, &ra);
		rr = vt_ref_alloc(&m->ref, a, 0, VAS_FIRST_FIT, 1, &ra, false);
		break;
	case 9: /* alignment not a power of two */
		a = (3 + 2 * mrnd_below(m, 100)) << mrnd_below(m, 20);
		rc = vas_alloc(m->c, q, a, VAS_BEST_FIT, 1, &ra);
		rr = vt_ref_alloc(&m->ref, q, a, VAS_BEST_FIT, 1, &ra, false);
		break;
	case 10: /* bad policy */
		a = 2 + mrnd_below(m, 3);
		rc = vas_alloc(m->c, q, 0, (enum vas_policy)a, 1, &ra);
		rr = vt_ref_alloc(&m->ref, q, 0, (int)a, 1, &ra, false);
		break;
	default:
		rc = vas_alloc(m->c, q, 0, VAS_BEST_FIT, 1, NULL);
		rr = vt_ref_alloc(&m->ref, q, 0, VAS_BEST_FIT, 1, &ra, true);
		break;
	}
	MREQ(m, rc == rr, "bad alloc %u (%#" PRIx64 "): %d, expected %d", k, a,
	     rc, rr);
}

/*
 * vas_lookup_n of up to 20 addresses (several of its groups of 8, and a
 * group's end inside a range's run of probes), each answer against the
 * reference's, and the count it returns against the answers: around
 * ranges (free ones too), just below them, anywhere in 64 bits.
 */
static inline void op_lookup_n(struct model *m)
{
	uint64_t a[20] = { 0 };
	struct vas_range r[20], w = { 0 };
	int rc[20];
	size_t n = (size_t)mrnd_below(m, 21);
	int hits = 0;
	for (size_t i = 0; i < n; i++) {
		const struct vas_range *x = &m->ref.r[mrnd_below(m, m->ref.n)];
		switch (mrnd_below(m, 5)) {
		case 0:
			a[i] = mrnd(m);
			break;
		case 1:
			a[i] = x->start - 1;
			break;
		case 2:
			a[i] = x->start + x->size - 1;
			break;
		default:
			a[i] = x->start + mrnd_below(m, x->size);
		}
	}
	int got = vas_lookup_n(m->c, a, n, r, rc);
	for (size_t i = 0; i < n; i++) {
		int rw = vt_ref_lookup(&m->ref, a[i], &w);
		if (rc[i] != rw || (rw == VAS_OK && !vt_range_eq(&r[i], &w))) {
			if (rc[i] == VAS_OK)
				vt_range_print("vas:", &r[i]);
			if (rw == VAS_OK)
				vt_range_print("ref:", &w);
			model_die(m,
				  "lookup_n [%zu of %zu] %#" PRIx64
				  ": %d, expected %d",
				  i, n, a[i], rc[i], rw);
		}
		hits += rw == VAS_OK;
	}
	MREQ(m, got == hits, "lookup_n of %zu: %d found, expected %d", n, got,
	     hits);
}

static inline void op_lookup(struct model *m)
{
	unsigned k = (unsigned)mrnd_below(m, 6);
	if (k == 0) {
		model_probe(m, mrnd(m));
		return;
	}
	if (k == 1) {
		op_lookup_n(m);
		return;
	}
	const struct vas_range *r = &m->ref.r[mrnd_below(m, m->ref.n)];
	model_probe_around(m, r->start, r->size);
}

struct model_itr {
	struct vas_range r[40];
	unsigned n, stop;
};

static inline bool model_itr_fn(const struct vas_range *r, void *arg)
{
	struct model_itr *it = arg;
	if (it->n < 40)
		it->r[it->n] = *r;
	it->n++;
	return it->stop == 0 || it->n < it->stop;
}

/*
 * With caching on: the whole of [a, b) (no early stop), cut to it, free
 * neighbours merged, against the reference's ranges cut the same way (at
 * most 16 quanta: at most 16 ranges on either side).
 */
static inline void model_iterate_merged(struct model *m, uint64_t a, uint64_t b,
					struct model_itr *it)
{
	struct vas_range want[40];
	size_t nw = 0;
	it->stop = 0;
	int rc = vas_iterate(m->c, a, b, model_itr_fn, it);
	MREQ(m, rc == VAS_OK && it->n <= 40, "iterate: %d, %u ranges", rc,
	     it->n);
	for (size_t i = vt_ref_find(&m->ref, a);
	     i < m->ref.n && m->ref.r[i].start < b && nw < 40; i++)
		want[nw++] = m->ref.r[i];
	vt_list_clip(it->r, it->n, a, b);
	vt_list_clip(want, nw, a, b);
	size_t n = vt_list_merge_free(it->r, it->n);
	MREQ(m, vt_list_eq(it->r, n, want, nw),
	     "iterate [%#" PRIx64 ", %#" PRIx64 ") differs", a, b);
}

/* [a, b) inside the region; the whole ranges overlapping it, in order. */
static inline void op_iterate(struct model *m)
{
	uint64_t a = m->base + mrnd_below(m, m->size);
	uint64_t b = a + 1 + mrnd_below(m, 16 * m->q);
	if (b > m->end || b < a)
		b = m->end;
	struct model_itr it = { .stop = (unsigned)mrnd_below(m, 6) };
	if (m->caching) {
		model_iterate_merged(m, a, b, &it);
		return;
	}
	int rc = vas_iterate(m->c, a, b, model_itr_fn, &it);
	MREQ(m, rc == VAS_OK, "iterate: %d", rc);
	size_t i = vt_ref_find(&m->ref, a);
	unsigned want = 0;
	for (; i < m->ref.n && m->ref.r[i].start < b; i++) {
		if (it.stop && want == it.stop)
			break;
		MREQ(m,
		     want < it.n && (want >= 8 ||
				     vt_range_eq(&it.r[want], &m->ref.r[i])),
		     "iterate [%#" PRIx64 ", %#" PRIx64 ") range %u", a, b,
		     want);
		want++;
	}
	MREQ(m, it.n == want,
	     "iterate [%#" PRIx64 ", %#" PRIx64 "): %u ranges, expected %u", a,
	     b, it.n, want);
}

/* ---- the mmap-grade calls ---- */

static inline void model_piece_fn(const struct vas_range *r, void *arg)
{
	struct vt_pieces *p = arg;
	if (p->n < 16)
		p->r[p->n] = *r;
	p->n++;
	p->bytes += r->size;
}

/* The pieces the vas reported are the reference's. */
static inline void model_pieces_eq(struct model *m, const char *what,
				   const struct vt_pieces *got,
				   const struct vt_pieces *want)
{
	MREQ(m, got->n == want->n && got->bytes == want->bytes,
	     "%s: %zu pieces (%#" PRIx64 " bytes), expected %zu (%#" PRIx64 ")",
	     what, got->n, got->bytes, want->n, want->bytes);
	for (size_t i = 0; i < got->n && i < 16; i++)
		MREQ(m, vt_range_eq(&got->r[i], &want->r[i]),
		     "%s: piece %zu differs", what, i);
}

static inline uint32_t model_attr(struct model *m)
{
	static const uint32_t a[] = { 0, 1, 3, 5, 0x8001 };
	if (mrnd_below(m, 200) == 0)
		return VAS_ATTR_MASK + 1 + (uint32_t)mrnd_below(m, 4); /* bad */
	return a[mrnd_below(m, 5)];
}

/* An address anywhere in the region (quantum-aligned), rarely outside. */
static inline uint64_t model_addr(struct model *m)
{
	int64_t qn = (int64_t)mrnd_below(m, m->size / m->q + 4) - 2;
	if (mrnd_below(m, 100) == 0)
		return m->base + (uint64_t)qn * m->q + 1; /* misaligned */
	return m->base + (uint64_t)qn * m->q;
}

/* A span starting in a random range, often over several ranges. */
static inline void model_span(struct model *m, uint64_t *a, uint64_t *size)
{
	const struct vas_range *r = &m->ref.r[mrnd_below(m, m->ref.n)];
	uint64_t nq = r->size / m->q;
	if (mrnd_below(m, 16) == 0) {
		*a = model_addr(m);
		*size = model_size(m);
		return;
	}
	*a = r->start + mrnd_below(m, nq) * m->q;
	uint64_t n = mrnd_below(m, 3) ? 1 + mrnd_below(m, 2 * nq + 8)
				      : model_size(m) / m->q;
	if (n > (m->end - *a) / m->q)
		n = (m->end - *a) / m->q;
	*size = (n ? n : 1) * m->q;
}

/*
 * The answer of a span call (replace, unmap, protect) against the
 * reference's: the same code and, on success, the same pieces reported.
 * True if both succeeded.
 */
static inline bool model_span_same(struct model *m, const char *what,
				   uint64_t a, uint64_t size, int rc, int rr,
				   const struct vt_pieces *got,
				   const struct vt_pieces *want)
{
	MREQ(m, rc == rr, "%s %#" PRIx64 " size %#" PRIx64 ": %d, expected %d",
	     what, a, size, rc, rr);
	/* A refused call changed nothing: it reported nothing either (its
	 * caller would free or flush what the report names). */
	MREQ(m, rc == VAS_OK || got->n == 0,
	     "%s %#" PRIx64 " size %#" PRIx64 ": refused (%d) after reporting "
	     "%zu pieces",
	     what, a, size, rc, got->n);
	if (rc != VAS_OK)
		return false;
	model_pieces_eq(m, what, got, want);
	return true;
}

static inline void op_map(struct model *m)
{
	struct vas_place p = { .size = model_size(m),
			       .align = model_align(m),
			       .attr = model_attr(m),
			       .tag = model_tag(m) };
	unsigned k = (unsigned)mrnd_below(m, 8);
	p.flags = (unsigned)mrnd_below(m, 4);
	if (mrnd_below(m, 100) == 0)
		p.flags |= 4; /* bad */
	if (k >= 4) {         /* a window */
		p.low = model_addr(m);
		p.high = model_addr(m);
		if (p.low > p.high && mrnd_below(m, 8)) {
			uint64_t t = p.low;
			p.low = p.high;
			p.high = t;
		}
	}
	if (k % 2 == 1) /* a hint: a free range's start, or anywhere */
		p.hint = mrnd_below(m, 2)
				 ? m->ref.r[mrnd_below(m, m->ref.n)].start
				 : model_addr(m);
	uint64_t a = 0, ra = 0;
	unsigned long failed = atomic_load(&m->src.failed);
	model_trace(m,
		    "map size %#" PRIx64 " align %#" PRIx64 " [%#" PRIx64
		    ", %#" PRIx64 ") hint %#" PRIx64 " flags %u",
		    p.size, p.align, p.low, p.high, p.hint, p.flags);
	int rc = vas_map(m->c, &p, &a);
	m->calls[3]++;
	if (!model_nomem(m, rc, failed))
		return;
	if (m->caching && rc == VAS_OK) { /* placed outside the caches */
		uint64_t lo = p.low, hi = p.high;
		uint64_t al = p.align > m->q ? p.align : m->q;
		if (lo == 0 && hi == 0) {
			lo = m->base;
			hi = m->end;
		}
		size_t h = vt_ref_find(&m->ref, p.hint);
		bool hint = p.hint != 0 && p.hint % al == 0 && p.hint >= lo &&
			    p.hint < hi && hi - p.hint >= p.size &&
			    !m->ref.r[h].allocated &&
			    p.hint + p.size <= vt_ref_rend(&m->ref.r[h]);
		MREQ(m, !hint || a == p.hint,
		     "map at %#" PRIx64 ", not at the free hint %#" PRIx64, a,
		     p.hint);
		model_placed(m, a, p.size, al, lo, hi);
		vt_ref_set(&m->ref, a, a + p.size, true, p.attr, p.tag);
		model_probe_around(m, a, p.size);
		return;
	}
	int rr = vt_ref_map(&m->ref, &p, &ra);
	MREQ(m, rc == rr && (rc != VAS_OK || a == ra),
	     "map: %d at %#" PRIx64 ", expected %d at %#" PRIx64, rc, a, rr,
	     ra);
	if (rc == VAS_OK)
		model_probe_around(m, a, p.size);
}

static inline void op_replace(struct model *m)
{
	uint64_t a, size;
	model_span(m, &a, &size);
	uint32_t attr = model_attr(m);
	uintptr_t tag = model_tag(m);
	struct vt_pieces got = { .n = 0 }, want;
	unsigned long failed = atomic_load(&m->src.failed);
	model_trace(m, "replace %#" PRIx64 " size %#" PRIx64, a, size);
	int rc = vas_replace(m->c, a, size, attr, tag, model_piece_fn, &got);
	m->calls[4]++;
	if (!model_nomem(m, rc, failed))
		return;
	int rr = vt_ref_replace(&m->ref, a, size, attr, tag, &want);
	if (model_span_same(m, "replace", a, size, rc, rr, &got, &want))
		model_probe_around(m, a, size);
}

static inline void op_unmap(struct model *m)
{
	uint64_t a, size, removed = 0;
	model_span(m, &a, &size);
	struct vt_pieces got = { .n = 0 }, want;
	unsigned long failed = atomic_load(&m->src.failed);
	model_trace(m, "unmap %#" PRIx64 " size %#" PRIx64, a, size);
	int rc = vas_unmap(m->c, a, size, model_piece_fn, &got, &removed);
	m->calls[5]++;
	if (!model_nomem(m, rc, failed))
		return;
	int rr = vt_ref_unmap(&m->ref, a, size, &want);
	if (model_span_same(m, "unmap", a, size, rc, rr, &got, &want)) {
		MREQ(m, removed == want.bytes, "unmap removed %#" PRIx64,
		     removed);
		model_probe_around(m, a, size);
	}
}

/* Inside one allocation, or over several (holes make it fail). */
static inline void op_protect(struct model *m)
{
	uint64_t a, size;
	const struct vas_range *r = model_pick(m);
	if (r == NULL || mrnd_below(m, 4) == 0) {
		model_span(m, &a, &size);
	} else {
		uint64_t nq = r->size / m->q, off = mrnd_below(m, nq);
		a = r->start + off * m->q;
		size = (1 + mrnd_below(m, nq - off)) * m->q;
	}
	uint32_t mask = mrnd_below(m, 4) ? 0xffff : model_attr(m);
	uint32_t bits = model_attr(m);
	unsigned flags = (unsigned)mrnd_below(m, 2);
	if (mrnd_below(m, 100) == 0)
		flags |= 2; /* bad */
	uintptr_t tag = mrnd_below(m, 2) ? m->ref.r[mrnd_below(m, m->ref.n)].tag
					 : model_tag(m);
	struct vt_pieces got = { .n = 0 }, want;
	unsigned long failed = atomic_load(&m->src.failed);
	model_trace(m, "protect %#" PRIx64 " size %#" PRIx64 " %#x/%#x %u", a,
		    size, bits, mask, flags);
	int rc = vas_protect(m->c, a, size, mask, bits, tag, flags,
			     model_piece_fn, &got);
	m->calls[6]++;
	if (!model_nomem(m, rc, failed))
		return;
	int rr =
		vt_ref_protect(&m->ref, a, size, mask, bits, tag, flags, &want);
	if (model_span_same(m, "protect", a, size, rc, rr, &got, &want))
		model_probe_around(m, a, size);
}

/* find, next and prev at random addresses. */
static inline void op_find(struct model *m)
{
	uint64_t a = mrnd_below(m, 8) ? model_addr(m) : mrnd(m);
	struct vas_range r = { 0 }, w = { 0 };
	unsigned k = (unsigned)mrnd_below(m, 3);
	int rc, rr;
	if (k == 0) {
		rc = vas_find(m->c, a, &r);
		rr = vt_ref_find_up(&m->ref, a, &w);
	} else if (k == 1) {
		rc = vas_prev(m->c, a, &r);
		rr = vt_ref_prev(&m->ref, a, &w);
	} else {
		struct vas_range cur = m->ref.r[mrnd_below(m, m->ref.n)];
		rc = vas_next(m->c, &cur, &r);
		rr = vt_ref_find_up(&m->ref, cur.start + cur.size, &w);
	}
	MREQ(m, rc == rr && (rc != VAS_OK || vt_range_eq(&r, &w)),
	     "find %u at %#" PRIx64 ": %d, expected %d", k, a, rc, rr);
}

/* One operation; the mix drifts the number of ranges towards target. */
static inline void model_step(struct model *m)
{
	/*
	 * An operation picked by weight, as every model test's step does; the
	 * weights are this model's.
	 */
	unsigned r = (unsigned)mrnd_below(m, 100);
	unsigned grow = m->ref.n < m->target ? 44 : 22;
	if (r < grow / 2)
		op_alloc(m);
	else if (r < grow)
		op_map(m);
	else if (r < grow + 6)
		op_alloc_at(m);
	else if (r < grow + 12)
		op_replace(m);
	else if (r < 72)
		op_free(m);
	else if (r < 78)
		op_unmap(m);
	else if (r < 85)
		op_protect(m);
	else if (r < 90 || m->fault) /* faults: writers only */
		op_bad(m);
	else if (r < 94)
		op_lookup(m);
	else if (r < 97)
		op_find(m);
	else
		op_iterate(m);
}

/* Free every allocation (ENOMEM under faults: once more), then destroy. */
static inline void model_finish(struct model *m)
{
	model_verify(m);
	/* Caching off: every held range back to the free ranges. */
	if (m->caching)
		for (int t = 0; t < 8; t++) {
			unsigned long failed = atomic_load(&m->src.failed);
			int rc = vas_set_caching(m->v, false);
			MREQ(m,
			     rc == VAS_OK ||
				     (rc == VAS_ENOMEM && m->fault &&
				      atomic_load(&m->src.failed) != failed),
			     "caching off: %d", rc);
			if (rc == VAS_OK) {
				m->caching = false;
				break;
			}
		}
	MREQ(m, !m->caching, "caching still on");
	model_verify(m);
	for (;;) {
		size_t i = 0;
		while (i < m->ref.n && !m->ref.r[i].allocated)
			i++;
		if (i == m->ref.n)
			break;
		struct vas_range r = m->ref.r[i];
		for (int t = 0; t < 2; t++) {
			unsigned long nomem = m->nomem;
			model_free(m, r.start, r.size);
			if (m->nomem == nomem)
				break;
		}
		i = vt_ref_find(&m->ref, r.start);
		MREQ(m, !m->ref.r[i].allocated, "final free %#" PRIx64,
		     r.start);
	}
	model_verify(m);
	MREQ(m, m->ref.n == 1, "not one free range");
	struct vas_stats st;
	vas_stats(m->v, &st);
	MREQ(m,
	     st.ranges == 0 && st.free_ranges == 1 && st.free_bytes == m->size,
	     "not empty at the end");
	MREQ(m, vas_ctx_unregister(m->c) == VAS_OK, "unregister");
	MREQ(m, vas_destroy(m->v) == VAS_OK, "destroy");
	MREQ(m, atomic_load(&m->src.live) == 0,
	     "%ld nodes not given back by destroy", atomic_load(&m->src.live));
	vt_ref_fini(&m->ref);
	vt_snap_free(&m->snap);
	free(m->v);
	free(m->c);
}

#endif
