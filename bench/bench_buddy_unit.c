/*
 * bench_buddy_unit.c: the per-CPU fast path of the buddy's version 3
 * (docs/design.md 2.7), measured before it is integrated: a prototype of
 * buddy_alloc() and buddy_free() of order-0 blocks through a CPU's
 * reserved unit (buddy/buddy_unit.h), beside version 2's real per-CPU
 * path (lf_buddy, the repeat workload of bench_buddy) in the same run.
 *
 *   repeat/v3_proto   per pair: the allocation's bu_cas_alloc() on the
 *                     thread's reserved unit word (one CAS), the free's
 *                     address checks, in-flight section (two stores to
 *                     the context's busy word) and bu_cas() (one CAS),
 *                     and the statistics v3 keeps (allocs, frees, the
 *                     lower free-frame delta: relaxed load + store each),
 *                     as docs/design.md 2.7 "Per-CPU caches become
 *                     reservations" describes; a thread whose unit is
 *                     full reserves a fresh one (never, on repeat).
 *   repeat/v3_proto_half  the same with the upper half of the thread's
 *                     unit held as one order-4 block: the word is never
 *                     the empty reserved unit, and each allocation looks
 *                     at all five levels of free blocks (bu_pick's worst
 *                     case) instead of the empty unit's shortcut.
 *   repeat/lf_buddy   version 2's buddy_alloc() + buddy_free() through
 *                     the per-CPU cache (bench_buddy_work.c), the
 *                     baseline of the same run.
 *
 * What the prototype leaves out, all off the repeat path: listing of
 * unreserved units, the core below the units, reclaim. The check verifies
 * that every word is well formed and every frame is free after the run,
 * and that the thread did as many frees as allocations.
 *
 * Usage: bench_buddy_unit [--seconds S] [--repeats R] [--threads-max N]
 */
#include "bench_buddy.h"

#include "buddy.h"
#include "buddy_unit.h"

#include <stdio.h>
#include <stdlib.h>

#define BP_BASE_PFN ((uint64_t)1 << 18) /* 1 GiB */
#define BP_UNITS 8192u                  /* 1 GiB of frames */

struct bp_ctx {
	uint32_t res;       /* (o) the reserved unit */
	uint32_t line_left; /* (o) units of the reserved line not yet used */
	uint32_t used;      /* (o) one past the highest unit it reserved */
	uint32_t hint;      /* (o) the last order-0 frame it freed in res */
	lf_atomic_u32 busy; /* (o) in-flight sections, as struct buddy_cpu */
	lf_atomic_u64 allocs, frees; /* (o) statistics */
	lf_atomic_u64 lfree;         /* (o) lower free frames, a delta */
	uint64_t errors;
} LF_CACHE_ALIGNED;

static struct {
	lf_atomic_u64 *words; /* (a) one per unit */
	bool half;            /* v3_proto_half: the upper half held */
	lf_atomic_u32 next;   /* (a) the next fresh unit */
	unsigned nthreads;
	struct bp_ctx ctx[BENCH_MAX_THREADS];
} bp;

/* Relaxed load + store: only the context's thread writes it. */
static inline void bp_add(lf_atomic_u64 *a, uint64_t v)
{
	lf_store_u64(a, lf_load_u64(a, LF_RELAXED) + v, LF_RELAXED);
}

static inline void bp_busy(struct bp_ctx *c, uint32_t d)
{
	/* Relaxed load: ours. Release: as buddy_busy() (buddy_i.h). */
	uint32_t w = lf_load_u32(&c->busy, LF_RELAXED);
	lf_store_u32(&c->busy, w + 256 + d, LF_RELEASE);
}

/*
 * A fresh unit, reserved by c; false if none is left. A context reserves
 * a line of BP_LINE units (one cache line of words) and uses them in
 * turn, so that two contexts' reserved words never share a line (docs/
 * design.md 2.7: the reservation is one line of unit words).
 */
#define BP_LINE 8u
static bool bp_reserve(struct bp_ctx *c)
{
	uint32_t u = c->res + 1;
	if (c->line_left == 0) {
		/* Relaxed: a counter handing out distinct lines. */
		u = lf_fetch_add_u32(&bp.next, BP_LINE, LF_RELAXED);
		if (u >= BP_UNITS)
			return false;
		c->line_left = BP_LINE;
	}
	c->line_left--;
	/* Release: pairs with the acquire load of bu_cas_alloc(). */
	lf_store_u64(&bp.words[u], bu_make(0, BU_FRAMES, true), LF_RELEASE);
	c->res = u;
	c->used = u + 1 > c->used ? u + 1 : c->used;
	return true;
}

static inline int bp_alloc(struct bp_ctx *c, unsigned k, uint64_t *addr)
{
	unsigned off = c->hint;
	uint64_t ow, nw;
	/*
	 * The block this context freed last in its reserved unit, if still
	 * free: taken back by alloc_at (LIFO, as version 2's caches), no
	 * search; else the buddy's choice (bu_pick).
	 */
	if (k == 0 && off < BU_FRAMES &&
	    bu_cas(&bp.words[c->res], BU_OP_ALLOC_AT, off, 0, &ow, &nw, NULL) ==
		    BUDDY_OK) {
		c->hint = BU_FRAMES;
		goto done;
	}
	while (bu_cas_alloc(&bp.words[c->res], k, BU_FRAMES, &off, NULL) !=
	       BUDDY_OK)
		if (!bp_reserve(c))
			return BUDDY_ENOMEM;
done:
	bp_add(&c->allocs, 1);
	bp_add(&c->lfree, -((uint64_t)1 << k));
	*addr = (BP_BASE_PFN + ((uint64_t)c->res << BU_ORDER) + off)
		<< BUDDY_FRAME_SHIFT;
	return BUDDY_OK;
}

static inline int bp_free(struct bp_ctx *c, uint64_t addr, unsigned k)
{
	if (k > BU_MAX_ORDER)
		return BUDDY_EINVAL;
	uint64_t pfn = addr >> BUDDY_FRAME_SHIFT;
	if (pfn - BP_BASE_PFN >= (uint64_t)BP_UNITS << BU_ORDER)
		return BUDDY_ERANGE;
	if ((addr & (BUDDY_FRAME_SIZE - 1)) || (pfn & ((1u << k) - 1)))
		return BUDDY_EALIGN;
	uint64_t x = pfn - BP_BASE_PFN, ow, nw;
	bp_busy(c, 1);
	int rc = bu_cas(&bp.words[x >> BU_ORDER], BU_OP_FREE,
			(unsigned)x & (BU_FRAMES - 1), k, &ow, &nw, NULL);
	bp_busy(c, (uint32_t)-1);
	if (LF_UNLIKELY(rc != BUDDY_OK))
		return rc;
	if (k == 0 && x >> BU_ORDER == c->res)
		c->hint = (unsigned)x & (BU_FRAMES - 1);
	bp_add(&c->frees, 1);
	bp_add(&c->lfree, (uint64_t)1 << k);
	return BUDDY_OK;
}

static const char *bp_never_skip(unsigned nthreads)
{
	(void)nthreads;
	return NULL;
}

static int bp_setup_mode(unsigned nthreads, bool half)
{
	bp.half = half;
	bp.words = aligned_alloc(64, BP_UNITS * sizeof(*bp.words));
	if (bp.words == NULL)
		return -1;
	for (unsigned u = 0; u < BP_UNITS; u++)
		lf_init_u64(&bp.words[u], BU_CORE);
	lf_init_u32(&bp.next, 0);
	bp.nthreads = nthreads;
	for (unsigned i = 0; i < nthreads; i++) {
		struct bp_ctx *c = &bp.ctx[i];
		lf_init_u32(&c->busy, 0);
		lf_init_u64(&c->allocs, 0);
		lf_init_u64(&c->frees, 0);
		lf_init_u64(&c->lfree, 0);
		c->errors = 0;
		c->line_left = 0;
		c->used = 0;
		c->hint = BU_FRAMES;
		if (!bp_reserve(c))
			return -1;
		uint64_t ow, nw;
		if (half && bu_cas(&bp.words[c->res], BU_OP_ALLOC_AT, 16, 4,
				   &ow, &nw, NULL) != BUDDY_OK)
			return -1;
	}
	return 0;
}

static int bp_setup(unsigned nthreads)
{
	return bp_setup_mode(nthreads, false);
}

static int bp_setup_half(unsigned nthreads)
{
	return bp_setup_mode(nthreads, true);
}

static void bp_thread_init(unsigned id)
{
	(void)id;
}

static uint64_t bp_run(unsigned id, const struct bench_stop *stop)
{
	struct bp_ctx *c = &bp.ctx[id];
	uint64_t ops = 0;
	while (!bench_stopped(stop)) {
		for (unsigned i = 0; i < BENCH_BATCH; i++) {
			uint64_t a;
			if (bp_alloc(c, 0, &a) != BUDDY_OK ||
			    bp_free(c, a, 0) != BUDDY_OK)
				c->errors++;
		}
		ops += BENCH_BATCH;
	}
	return ops;
}

static void bp_thread_fini(unsigned id)
{
	(void)id;
}

static int bp_check(void)
{
	int rc = 0;
	for (uint32_t u = 0; u < BP_UNITS; u++) {
		/* Relaxed: after the join. */
		uint64_t w = lf_load_u64(&bp.words[u], LF_RELAXED);
		bool mine = false;
		for (unsigned i = 0; i < bp.nthreads; i++)
			mine |= u / BP_LINE == (bp.ctx[i].used - 1) / BP_LINE &&
				u < bp.ctx[i].used;
		uint64_t empty = BU_ALL_FREE | BU_RES;
		if (mine && bp.half && u % BP_LINE == 0)
			empty = bu_put_block(empty, 16, 4);
		if (mine ? w != empty : w != BU_CORE) {
			fprintf(stderr, "bench_buddy_unit: unit %u: %016llx\n",
				u, (unsigned long long)w);
			rc = -1;
		}
	}
	for (unsigned i = 0; i < bp.nthreads; i++) {
		struct bp_ctx *c = &bp.ctx[i];
		if (c->errors != 0 || lf_load_u64(&c->lfree, LF_RELAXED) != 0 ||
		    lf_load_u64(&c->allocs, LF_RELAXED) !=
			    lf_load_u64(&c->frees, LF_RELAXED)) {
			fprintf(stderr, "bench_buddy_unit: thread %u broken\n",
				i);
			rc = -1;
		}
	}
	free(bp.words);
	bp.words = NULL;
	return rc;
}

static const struct bench_impl bp_impl = {
	.bench = "repeat",
	.impl = "v3_proto",
	.ours = true,
	.skip = bp_never_skip,
	.setup = bp_setup,
	.thread_init = bp_thread_init,
	.run = bp_run,
	.thread_fini = bp_thread_fini,
	.check = bp_check,
};

static const struct bench_impl bp_impl_half = {
	.bench = "repeat",
	.impl = "v3_proto_half",
	.ours = false,
	.skip = bp_never_skip,
	.setup = bp_setup_half,
	.thread_init = bp_thread_init,
	.run = bp_run,
	.thread_fini = bp_thread_fini,
	.check = bp_check,
};

static void bp_header(void)
{
	printf("repeat: alloc + free of one order-0 block; v3_proto: the "
	       "fast path of docs/design.md 2.7 on a reserved unit's word; "
	       "v3_proto_half: the same, half the unit held; lf_buddy: version "
	       "2's per-CPU cache\n");
}

int main(int argc, char **argv)
{
	/* Static: the harness may keep the pointers. */
	static struct bench_impl v2;
	static const struct bench_impl *impls[3];
	static struct bench_prog prog;
	v2 = bench_buddy_repeat_lf;
	v2.ours = false;
	impls[0] = &bp_impl;
	impls[1] = &bp_impl_half;
	impls[2] = &v2;
	prog.name = "bench_buddy_unit";
	prog.impls = impls;
	prog.nimpls = 3;
	prog.header = bp_header;
	return bench_main(&prog, argc, argv);
}
