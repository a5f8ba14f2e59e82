/*
 * bench_vas_lf.c: vaspace/ behind bench_vas's table of operations
 * (bench_vas.h). Nodes come from aligned_alloc (the userspace node
 * source); each benchmark thread has its own registered context, so a
 * lookup writes nothing but its own epoch announcement. vas_pc is the same
 * vas with per-context caching on (vas_set_caching, docs/design.md 3.3):
 * a free of a small range and the allocation after it are leaf-local
 * writes, without the writer lock.
 */
#include "bench.h"
#include "bench_arena.h"
#include "bench_vas.h"
#include "vas.h"

#include <stdio.h>
#include <stdlib.h>

struct bench_vas_lf {
	struct vas v;
	struct bench_arena nodes;
	struct vas_node_source src;
	struct vas_ctx ctx[BENCH_MAX_THREADS];
	unsigned nctx;
};

static void *bench_vas_lf_get(void *arg)
{
	return bench_arena_get(arg);
}

static void bench_vas_lf_put(void *arg, void *node)
{
	bench_arena_put(arg, node);
}

static void *bench_vas_lf_create(uint64_t base, uint64_t size, unsigned nth);

static void *bench_vas_pc_create(uint64_t base, uint64_t size, unsigned nth)
{
	struct bench_vas_lf *a = bench_vas_lf_create(base, size, nth);

	if (a != NULL && vas_set_caching(&a->v, true) != VAS_OK)
		abort(); /* turning it on needs no node */
	return a;
}

static void *bench_vas_lf_create(uint64_t base, uint64_t size, unsigned nth)
{
	struct bench_vas_lf *a = calloc(1, sizeof(*a));

	if (a == NULL || nth > BENCH_MAX_THREADS)
		goto fail;
	bench_arena_init(&a->nodes, VAS_NODE_SIZE, 4096);
	a->src = (struct vas_node_source){ .get = bench_vas_lf_get,
					   .put = bench_vas_lf_put,
					   .arg = &a->nodes };
	/* Widest nodes; keep up to 64 spare nodes before giving any back. */
	if (vas_create(&a->v, base, size, BENCH_VAS_QUANTUM, &a->src, 0, 64) !=
	    VAS_OK) {
		bench_arena_destroy(&a->nodes);
		goto fail;
	}
	for (a->nctx = 0; a->nctx < nth; a->nctx++)
		if (vas_ctx_register(&a->v, &a->ctx[a->nctx]) != VAS_OK)
			abort(); /* cannot fail on a zeroed context */
	return a;
fail:
	free(a);
	return NULL;
}

static void bench_vas_lf_destroy(void *p)
{
	struct bench_vas_lf *a = p;

	for (unsigned i = 0; i < a->nctx; i++)
		vas_ctx_unregister(&a->ctx[i]);
	if (vas_destroy(&a->v) != VAS_OK)
		abort();
	bench_arena_destroy(&a->nodes);
	free(a);
}

static int bench_vas_lf_lookup(void *p, unsigned id, uint64_t addr,
			       uint64_t *start)
{
	struct bench_vas_lf *a = p;
	struct vas_range r;

	if (vas_lookup(&a->ctx[id], addr, &r) != VAS_OK)
		return -1;
	*start = r.start;
	return 0;
}

static unsigned bench_vas_lf_lookup_n(void *p, unsigned id,
				      const uint64_t *addr, unsigned n,
				      uint64_t *start)
{
	struct bench_vas_lf *a = p;
	struct vas_range r[BENCH_VAS_LOOKUP_N];
	int rc[BENCH_VAS_LOOKUP_N];
	int hits;

	if (n > BENCH_VAS_LOOKUP_N)
		abort();
	hits = vas_lookup_n(&a->ctx[id], addr, n, r, rc);
	if (hits < 0)
		abort();
	for (unsigned i = 0; i < n; i++)
		start[i] = rc[i] == VAS_OK ? r[i].start : UINT64_MAX;
	return (unsigned)hits;
}

static int bench_vas_lf_alloc(void *p, unsigned id, uint64_t size,
			      uint64_t *addr)
{
	struct bench_vas_lf *a = p;

	return vas_alloc(&a->ctx[id], size, 0, VAS_BEST_FIT, 1, addr) == VAS_OK
		       ? 0
		       : -1;
}

static int bench_vas_lf_alloc_at(void *p, unsigned id, uint64_t addr,
				 uint64_t size)
{
	struct bench_vas_lf *a = p;

	return vas_alloc_at(&a->ctx[id], addr, size, 1) == VAS_OK ? 0 : -1;
}

static int bench_vas_lf_free(void *p, unsigned id, uint64_t addr, uint64_t size)
{
	struct bench_vas_lf *a = p;

	return vas_free(&a->ctx[id], addr, size) == VAS_OK ? 0 : -1;
}

static int bench_vas_lf_check(void *p, uint64_t nranges)
{
	struct bench_vas_lf *a = p;
	struct vas_stats st;
	uint64_t where = 0;
	int bad = vas_check(&a->v, &where);

	vas_stats(&a->v, &st);
	if (bad == 0 && st.ranges == nranges)
		return 0;
	fprintf(stderr,
		"vas: invariant A%d broken near %#llx; %llu ranges, "
		"%llu expected\n",
		bad, (unsigned long long)where, (unsigned long long)st.ranges,
		(unsigned long long)nranges);
	return -1;
}

static uint64_t bench_vas_lf_bytes(void *p)
{
	struct bench_vas_lf *a = p;
	struct vas_stats st;

	vas_stats(&a->v, &st);
	return (st.nodes + st.nodes_free) * VAS_NODE_SIZE;
}

/* The two variants differ only in how the vas is created. */
#define BENCH_VAS_LF_OPS(make)                                                 \
	{                                                                      \
		.create = make, .destroy = bench_vas_lf_destroy,               \
		.lookup = bench_vas_lf_lookup,                                 \
		.lookup_n = bench_vas_lf_lookup_n,                             \
		.alloc = bench_vas_lf_alloc,                                   \
		.alloc_at = bench_vas_lf_alloc_at, .free = bench_vas_lf_free,  \
		.check = bench_vas_lf_check, .bytes = bench_vas_lf_bytes,      \
	}

const struct bench_vas_ops bench_vas_ops_vas =
	BENCH_VAS_LF_OPS(bench_vas_lf_create);
const struct bench_vas_ops bench_vas_ops_vas_pc =
	BENCH_VAS_LF_OPS(bench_vas_pc_create);
