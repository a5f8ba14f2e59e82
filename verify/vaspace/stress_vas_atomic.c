/*
 * stress_vas_atomic.c: a test whose only purpose is to break the atomicity
 * of the mmap-grade writers (vas.h: each call is one step for readers).
 *
 * The region has two halves. Every page of the lower half Z is mapped at
 * the start and stays mapped to the end: writer threads keep replacing
 * random spans of Z (vas_replace over one or many ranges: MAP_FIXED over
 * mappings, as a dynamic loader does) and changing their attributes and
 * tags (vas_protect, splitting at the edges and merging equal neighbours),
 * so the ranges of Z are cut, merged and re-keyed all the time, while a
 * page of Z is never unmapped under Linux semantics. In the upper half Y
 * they unmap spans over ranges and holes, map with every placement, and
 * replace, so that the trees split, merge and reuse nodes.
 *
 * Reader threads look up random pages of Z, and call vas_find and
 * vas_prev there: each must find an allocated range holding the page (a
 * lookup that ever answers "not found" for a page of Z saw a state that
 * neither the state before nor after some write had), with a tag some
 * writer gave. Writers go on past their operations until the readers did
 * 100 lookups per writer operation, so reads overlap writes even when the
 * machine is loaded; a run with no lookup, or a writer that did nothing,
 * fails. At the end: vas_check, Z one or more
 * allocated ranges covering it exactly, the node source balanced.
 *
 * Usage: stress_vas_atomic WRITERS READERS OPS_PER_WRITER [NODE_KEYS]
 */
#include <pthread.h>

#include "platform_user.h"
#include "vt_common.h"

#define Q ((uint64_t)4096)
#define NQ ((uint64_t)2048)
#define BASE ((uint64_t)0x7000000000)
#define ZEND (BASE + NQ / 2 * Q) /* Z = [BASE, ZEND), Y = [ZEND, END) */
#define END (BASE + NQ * Q)
#define MAXT 16
#define TAG_BASE ((uintptr_t)1 << 40)

static struct vas *vas;
static struct vt_src src;
static atomic_bool stop;
static atomic_ulong lookups, misses, writes, writers_left;
static unsigned long min_lookups; /* writers go on until readers did these */

static uint64_t xrnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static bool tag_ok(uintptr_t tag)
{
	return tag >= TAG_BASE;
}

/* A random span of [lo, hi), up to 64 pages. */
static void span(uint64_t *rng, uint64_t lo, uint64_t hi, uint64_t *a,
		 uint64_t *size)
{
	uint64_t n = (hi - lo) / Q;
	uint64_t off = xrnd(rng) % n, len = 1 + xrnd(rng) % 64;
	if (len > n - off)
		len = n - off;
	*a = lo + off * Q;
	*size = len * Q;
}

struct worker {
	unsigned id;
	struct vas_ctx *c;
	uint64_t rng, ops;
};

static uintptr_t new_tag(struct worker *w)
{
	return TAG_BASE + ((uintptr_t)w->id << 32) + (uintptr_t)(++w->ops);
}

/* A write that keeps every page of Z mapped, or anything in Y. */
static void writer_step(struct worker *w)
{
	uint64_t a, size, got;
	unsigned k = (unsigned)(xrnd(&w->rng) % 8);
	uint32_t attr = (uint32_t)(xrnd(&w->rng) % 3);
	if (k < 3) {
		span(&w->rng, BASE, ZEND, &a, &size);
		CHECK_EQ(vas_replace(w->c, a, size, attr, new_tag(w), NULL,
				     NULL),
			 VAS_OK);
	} else if (k < 5) {
		span(&w->rng, BASE, ZEND, &a, &size);
		/* A few tags only, so that neighbours merge. */
		uintptr_t tag = TAG_BASE + xrnd(&w->rng) % 2;
		CHECK_EQ(vas_protect(w->c, a, size, VAS_ATTR_MASK, attr, tag,
				     VAS_PROT_TAG, NULL, NULL),
			 VAS_OK);
	} else if (k < 6) {
		span(&w->rng, ZEND, END, &a, &size);
		CHECK_EQ(vas_unmap(w->c, a, size, NULL, NULL, NULL), VAS_OK);
	} else if (k < 7) {
		span(&w->rng, ZEND, END, &a, &size);
		CHECK_EQ(vas_replace(w->c, a, size, attr, new_tag(w), NULL,
				     NULL),
			 VAS_OK);
	} else {
		struct vas_place p = { .size = Q * (1 + xrnd(&w->rng) % 8),
				       .low = ZEND,
				       .high = END,
				       .flags = (unsigned)(xrnd(&w->rng) % 4),
				       .tag = new_tag(w) };
		int rc = vas_map(w->c, &p, &got);
		CHECK(rc == VAS_OK || rc == VAS_ENOSPC);
		CHECK(rc != VAS_OK || (got >= ZEND && got + p.size <= END));
	}
	atomic_fetch_add_explicit(&writes, 1, memory_order_relaxed);
}

static void *writer_main(void *arg)
{
	struct worker *w = arg;
	CHECK_FATAL(vas_ctx_register(vas, w->c) == VAS_OK);
	uint64_t n = w->ops;
	w->ops = 0;
	/* Readers must run while writes do: on a loaded machine they may not
	 * get a CPU during the first n writes. */
	for (uint64_t i = 0;
	     i < n ||
	     atomic_load_explicit(&lookups, memory_order_relaxed) < min_lookups;
	     i++)
		writer_step(w);
	CHECK_EQ(vas_ctx_unregister(w->c), VAS_OK);
	if (atomic_fetch_sub(&writers_left, 1) == 1)
		atomic_store(&stop, true);
	return NULL;
}

static void miss(const char *what, uint64_t addr, int rc,
		 const struct vas_range *r)
{
	if (atomic_fetch_add(&misses, 1) < 5)
		fprintf(stderr,
			"  %s %#" PRIx64 ": %d [%#" PRIx64 ", +%#" PRIx64
			") tag %#" PRIxPTR "\n",
			what, addr, rc, r->start, r->size, r->tag);
}

static bool holds(const struct vas_range *r, uint64_t addr)
{
	return r->allocated && r->start <= addr && addr - r->start < r->size &&
	       tag_ok(r->tag);
}

static void reader_step(struct worker *w)
{
	uint64_t addr = BASE + xrnd(&w->rng) % (ZEND - BASE);
	struct vas_range r = { 0 };
	unsigned k = (unsigned)(xrnd(&w->rng) % 4);
	int rc;
	if (k < 2) {
		rc = vas_lookup(w->c, addr, &r);
		if (rc != VAS_OK || !holds(&r, addr))
			miss("lookup", addr, rc, &r);
	} else if (k == 2) {
		rc = vas_find(w->c, addr, &r);
		if (rc != VAS_OK || !holds(&r, addr))
			miss("find", addr, rc, &r);
	} else {
		/* The range with the greatest start below addr + 1: holds it.
		 */
		rc = vas_prev(w->c, addr + 1, &r);
		if (rc != VAS_OK || !holds(&r, addr))
			miss("prev", addr, rc, &r);
	}
	atomic_fetch_add_explicit(&lookups, 1, memory_order_relaxed);
}

static void *reader_main(void *arg)
{
	struct worker *w = arg;
	CHECK_FATAL(vas_ctx_register(vas, w->c) == VAS_OK);
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		reader_step(w);
	CHECK_EQ(vas_ctx_unregister(w->c), VAS_OK);
	return NULL;
}

static bool z_fn(const struct vas_range *r, void *arg)
{
	uint64_t *at = arg;
	CHECK(r->allocated && r->start == *at && tag_ok(r->tag));
	*at = r->start + r->size;
	return true;
}

int main(int argc, char **argv)
{
	unsigned nw = argc > 1 ? (unsigned)atoi(argv[1]) : 2;
	unsigned nr = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
	uint64_t ops = argc > 3 ? strtoull(argv[3], NULL, 0) : 20000;
	uint32_t keys = argc > 4 ? (uint32_t)atoi(argv[4]) : 4;
	min_lookups = 100 * ops;
	CHECK_FATAL(nw >= 1 && nr >= 1 && nw + nr <= MAXT);
	struct vas_ctx *mc;
	vas = vt_stress_vas(&src, BASE, NQ, Q, keys, &mc);
	/* Map Z in pieces of 1 to 8 pages, all with distinct tags. */
	uint64_t rng = 0x243f6a8885a308d3ull;
	for (uint64_t a = BASE, i = 0; a < ZEND; i++) {
		uint64_t n = 1 + xrnd(&rng) % 8;
		n = n > (ZEND - a) / Q ? (ZEND - a) / Q : n;
		CHECK_FATAL(vas_replace(mc, a, n * Q, 0, TAG_BASE + 2 + i, NULL,
					NULL) == VAS_OK);
		a += n * Q;
	}
	static struct worker w[MAXT];
	pthread_t t[MAXT];
	atomic_store(&writers_left, nw);
	for (unsigned i = 0; i < nw + nr; i++) {
		w[i] = (struct worker){ .id = i + 1,
					.c = vt_zalloc(sizeof(struct vas_ctx)),
					.rng = 0x9e3779b97f4a7c15ull * (i + 1),
					.ops = ops };
		pthread_create(&t[i], NULL, i < nw ? writer_main : reader_main,
			       &w[i]);
	}
	for (unsigned i = 0; i < nw + nr; i++)
		pthread_join(t[i], NULL);
	uint64_t where = 0, at = BASE;
	CHECK_EQ(vas_check(vas, &where), 0);
	CHECK_EQ(vas_iterate(mc, BASE, ZEND, z_fn, &at), VAS_OK);
	CHECK_EQ(at, ZEND);
	struct vas_stats st;
	vas_stats(vas, &st);
	printf("stress_vas_atomic: %u writers x %" PRIu64 " ops (%lu done), "
	       "%u readers: %lu lookups, %lu misses, %" PRIu64 " restarts, "
	       "%" PRIu64 " commits\n",
	       nw, ops, atomic_load(&writes), nr, atomic_load(&lookups),
	       atomic_load(&misses), st.restarts, st.commits);
	CHECK_EQ(atomic_load(&misses), 0);
	CHECK(atomic_load(&lookups) > 0);
	CHECK(atomic_load(&writes) >= nw * ops);
	CHECK(atomic_load(&lookups) >= min_lookups);
	CHECK(vt_rejected(&st) == st.refused[-VAS_ENOSPC]);
	CHECK_EQ(vas_ctx_unregister(mc), VAS_OK);
	CHECK_EQ(vas_destroy(vas), VAS_OK);
	CHECK_EQ(atomic_load(&src.live), 0);
	for (unsigned i = 0; i < nw + nr; i++)
		free(w[i].c);
	free(mc);
	free(vas);
	return check_exit("stress_vas_atomic");
}
