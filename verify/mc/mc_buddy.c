/*
 * mc_buddy.c: the lock-free buddy allocator (buddy/) under the model
 * checker, on a zone of 4 to 32 frames, each thread playing one CPU.
 *
 * A configuration gives the regions (in frames from pfn 0), which CPUs
 * have their cache off, blocks the threads hold at the start (taken with
 * buddy_alloc_at in setup, where nothing is scheduled; those marked cached
 * are then freed into their thread's CPU cache, after a sweep that drops
 * the stale entries alloc_at left, so they start free but cached), and a
 * script per thread:
 *   0-4  buddy_alloc of that order (orders 0-3 go through the cache)
 *   f l  free the oldest / newest block the thread holds (buddy_free: a
 *        free outside the caches of the block its context allocated last
 *        defers its coalescing, B8)
 *   F    free the oldest block with buddy_free_run of its 2^order frames,
 *        which merges at once (the eager path of B6); the same operation
 *        for the specification
 *   @    buddy_alloc_at of the configuration's block
 *   r    buddy_alloc_run of 3 frames (freed by f/l with buddy_free_run)
 *   d D  drain this CPU's cache / every cache
 *   s    buddy_zone_sweep
 * Every execution checks:
 *   - B2 at every allocation: each frame handed out is held by nobody
 *     (an owner per frame, released just before the free is called);
 *   - B1, B3, B4, B5, B7 at the end (buddy_zone_check at quiescence), then
 *     B6 with every cache drained (fully coalesced), then, everything
 *     freed and drained, B6 again and every frame free (nothing lost);
 *   - linearizability of the history against a sequential buddy (below):
 *     an allocation gets an aligned block whose frames are all free, and
 *     fails only if no aligned free block of its order exists; alloc_at
 *     succeeds exactly when its block is free; a free succeeds on a block
 *     allocated with that order. The model is a specification, not one
 *     allocator: it accepts any block, so the choice the stacks make is
 *     free, but not a failure while memory is available (memory stranded
 *     in a cache while an allocation fails is a bug: docs/design.md 2.4).
 *
 * Reduction (mc_test.local): the per-CPU statistics counters (one writer,
 * read at the end), the cache counts (under the cache lock), an owner's
 * loads of its own free-block and busy counts (only it writes them), and
 * the stacks of orders no block of this zone can have (never written)
 * are not scheduling points.
 */
#include <stdio.h>
#include <string.h>

#include "buddy.h"
#include "buddy_i.h"
#include "lin.h"
#include "mc.h"
#include "mc_tests.h"

#define MB_NF 32  /* frames: pfn 0 to MB_NF - 1 */
#define MB_HELD 6 /* blocks a thread holds at once */
#define MB_RUN 3  /* frames of an 'r' run: order 2, one frame back */
#define MB_META 32768

enum { ALLOC, FREE, AT, RUN, FREE_RUN };
static const char *const mb_names[] = { "alloc", "free", "alloc_at",
					"alloc_run", "free_run" };

struct mb_hold {
	uint8_t tid, pfn, order;
};

struct mb_cfg {
	uint8_t rg[2][2]; /* regions: first pfn, frames; frames 0 ends */
	uint8_t nocache;  /* bit i: CPU i's cache off */
	uint8_t at_pfn, at_order; /* the '@' block */
	struct mb_hold hold[4];
	unsigned nhold;
	uint8_t cached; /* bit i: hold i freed in setup, into its CPU's cache */
	const char *script[MC_MAX_THREADS];
	bool shared;      /* self-test: every thread on CPU 0 */
	bool buffer_busy; /* the busy words go through store buffers */
	bool symmetric;   /* caches in the symmetric mode (the cache lock) */
	const char *need; /* events some execution must have (mb_cover) */
};

struct mb_block {
	uint32_t pfn, n; /* first frame, frames */
	unsigned order;  /* a block's order; a run's is ceil(log2 n) */
	bool run;
};

static struct {
	_Alignas(64) unsigned char meta[MB_META];
	struct buddy_zone *z;
	unsigned maxo;        /* the largest order a block can have */
	uint8_t owner[MB_NF]; /* thread + 1 holding the frame, or 0 */
	struct mb_block held[MC_MAX_THREADS][MB_HELD];
	unsigned nheld[MC_MAX_THREADS];
	struct buddy_stats st0; /* after setup: the coverage baseline */
	struct lin_history h;
} S;

static const char *const mb_events[] = { "merge",        "split",
					 "cache refill", "cache drain",
					 "stale entry",  "entry moved",
					 "failed alloc" };
static struct mc_cover mb_cover = { .codes = "msrdxvn", .names = mb_events };

static uint64_t mb_addr(uint32_t pfn)
{
	return (uint64_t)pfn << BUDDY_FRAME_SHIFT;
}

static struct buddy_cpu *mb_cpu(unsigned tid)
{
	const struct mb_cfg *cfg = mc_cfg();
	return buddy_zone_cpu(S.z, cfg->shared ? 0 : tid);
}

static unsigned mb_regions(const struct mb_cfg *cfg, struct buddy_region *r)
{
	unsigned n = 0;
	while (n < 2 && cfg->rg[n][1] != 0) {
		r[n] = (struct buddy_region){ mb_addr(cfg->rg[n][0]),
					      mb_addr(cfg->rg[n][1]) };
		n++;
	}
	return n;
}

/* Record that thread tid now holds [pfn, pfn + n): B2 if anyone did. */
static void mb_take(unsigned tid, const struct mb_block *b)
{
	if (b->pfn + b->n > MB_NF)
		mc_fail("block at pfn %u outside the zone", b->pfn);
	for (uint32_t f = b->pfn; f < b->pfn + b->n; f++) {
		if (S.owner[f] != 0)
			mc_fail("B2: frame %u handed to thread %u, held by %u",
				f, tid, S.owner[f] - 1);
		S.owner[f] = (uint8_t)(tid + 1);
	}
	if (S.nheld[tid] == MB_HELD)
		mc_fail("harness: thread %u holds too many blocks", tid);
	S.held[tid][S.nheld[tid]++] = *b;
}

static void mb_setup_hold(const struct mb_cfg *cfg)
{
	for (unsigned i = 0; i < cfg->nhold; i++) {
		const struct mb_hold *h = &cfg->hold[i];
		if (buddy_alloc_at(mb_cpu(h->tid), mb_addr(h->pfn), h->order) !=
		    BUDDY_OK)
			mc_fail("setup: alloc_at(%u, %u)", h->pfn, h->order);
		if (cfg->cached & (1u << i))
			continue;
		struct mb_block b = { h->pfn, 1u << h->order, h->order, false };
		mb_take(h->tid, &b);
	}
	if (cfg->cached == 0)
		return;
	/* Stale entries of the claimed frames dropped: each can be cached. */
	buddy_zone_sweep(mb_cpu(0));
	for (unsigned i = 0; i < cfg->nhold; i++) {
		const struct mb_hold *h = &cfg->hold[i];
		if (!(cfg->cached & (1u << i)))
			continue;
		struct buddy_stats st0, st1;
		buddy_zone_stats(S.z, &st0);
		int rc = buddy_free(mb_cpu(h->tid), mb_addr(h->pfn), h->order);
		buddy_zone_stats(S.z, &st1);
		if (rc != BUDDY_OK ||
		    st1.cached_frames != st0.cached_frames + (1u << h->order))
			mc_fail("setup: pfn %u not cached", h->pfn);
	}
}

static void mb_setup(void)
{
	const struct mb_cfg *cfg = mc_cfg();
	memset(&S, 0, sizeof(S));
	struct buddy_region rg[2];
	unsigned nrg = mb_regions(cfg, rg);
	size_t need = buddy_meta_size(rg, nrg, MC_MAX_THREADS);
	if (need == 0 || need > MB_META)
		mc_fail("setup: metadata %zu bytes", need);
	if (buddy_zone_init(&S.z, S.meta, MB_META, rg, nrg, MC_MAX_THREADS) !=
	    BUDDY_OK)
		mc_fail("setup: buddy_zone_init");
	for (unsigned i = 0; i < MC_MAX_THREADS; i++)
		if (cfg->nocache & (1u << i))
			buddy_cpu_cache_enable(buddy_zone_cpu(S.z, i), false);
	if (cfg->symmetric) {
		/* As on a platform without a cheap heavy barrier: (i) fields,
		 * set before any thread runs. */
		S.z->asym = false;
		for (unsigned i = 0; i < MC_MAX_THREADS; i++)
			buddy_zone_cpu(S.z, i)->asym = false;
	}
	for (unsigned i = 0; i < nrg; i++)
		while ((2u << S.maxo) <= cfg->rg[i][1])
			S.maxo++;
	mb_setup_hold(cfg);
	buddy_zone_stats(S.z, &S.st0);
	lin_reset(&S.h);
}

/* ---- the operations of a script ---- */

static void mb_alloc(unsigned tid, unsigned order)
{
	struct lin_op *op = lin_call(&S.h, ALLOC, order, 0);
	uint64_t a = 0;
	int rc = buddy_alloc(mb_cpu(tid), order, &a);
	uint32_t pfn = (uint32_t)(a >> BUDDY_FRAME_SHIFT);
	struct mb_block b = { pfn, 1u << order, order, false };
	if (rc == BUDDY_OK)
		mb_take(tid, &b);
	lin_ret(op, (uint64_t)(int64_t)rc, pfn);
}

static void mb_alloc_run(unsigned tid)
{
	struct lin_op *op = lin_call(&S.h, RUN, MB_RUN, 0);
	uint64_t a = 0;
	int rc = buddy_alloc_run(mb_cpu(tid), MB_RUN, &a);
	uint32_t pfn = (uint32_t)(a >> BUDDY_FRAME_SHIFT);
	struct mb_block b = { pfn, MB_RUN, 2, true };
	if (rc == BUDDY_OK)
		mb_take(tid, &b);
	lin_ret(op, (uint64_t)(int64_t)rc, pfn);
}

static void mb_alloc_at(unsigned tid)
{
	const struct mb_cfg *cfg = mc_cfg();
	struct lin_op *op = lin_call(&S.h, AT, cfg->at_pfn, cfg->at_order);
	int rc = buddy_alloc_at(mb_cpu(tid), mb_addr(cfg->at_pfn),
				cfg->at_order);
	struct mb_block b = { cfg->at_pfn, 1u << cfg->at_order, cfg->at_order,
			      false };
	if (rc == BUDDY_OK)
		mb_take(tid, &b);
	lin_ret(op, (uint64_t)(int64_t)rc, cfg->at_pfn);
}

/*
 * Free a held block; the frames are released before the call. eager: a
 * block (not a run) goes through buddy_free_run(), which merges at once.
 */
static void mb_free(unsigned tid, bool newest, bool eager)
{
	unsigned n = S.nheld[tid];
	if (n == 0)
		return;
	unsigned i = newest ? n - 1 : 0;
	struct mb_block b = S.held[tid][i];
	memmove(&S.held[tid][i], &S.held[tid][i + 1], (n - 1 - i) * sizeof(b));
	S.nheld[tid] = n - 1;
	for (uint32_t f = b.pfn; f < b.pfn + b.n; f++)
		S.owner[f] = 0;
	struct lin_op *op = lin_call(&S.h, b.run ? FREE_RUN : FREE, b.pfn,
				     b.run ? b.n : b.order);
	int rc = b.run || eager
			 ? buddy_free_run(mb_cpu(tid), mb_addr(b.pfn), b.n)
			 : buddy_free(mb_cpu(tid), mb_addr(b.pfn), b.order);
	lin_ret(op, (uint64_t)(int64_t)rc, 0);
}

static void mb_thread(unsigned tid)
{
	const struct mb_cfg *cfg = mc_cfg();
	struct buddy_cpu *c = mb_cpu(tid);
	for (const char *p = cfg->script[tid]; *p; p++) {
		/*
		 * One letter per operation of this harness's scripts; the
		 * others' interpreters look alike (letters, not shared logic).
		 */
		switch (*p) {
		case '0':
		case '1':
		case '2':
		case '3':
		case '4':
			mb_alloc(tid, (unsigned)(*p - '0'));
			break;
		case 'f':
			mb_free(tid, false, false);
			break;
		case 'l':
			mb_free(tid, true, false);
			break;
		case 'F':
			mb_free(tid, false, true);
			break;
		case '@':
			mb_alloc_at(tid);
			break;
		case 'r':
			mb_alloc_run(tid);
			break;
		case 'd':
			buddy_cpu_drain(c);
			break;
		case 'D':
			buddy_zone_drain_all(c);
			break;
		case 's':
			buddy_zone_sweep(c);
			break;
		}
	}
}

/* ---- the sequential specification ---- */

struct mb_model {
	uint32_t used;       /* bit pfn: allocated */
	uint8_t head[MB_NF]; /* 1 + order of a block, 0x80 | n of a run */
};

static void mb_model_init(void *st)
{
	const struct mb_cfg *cfg = mc_cfg();
	struct mb_model *m = st;
	memset(m, 0, sizeof(*m));
	for (unsigned i = 0; i < cfg->nhold; i++) {
		const struct mb_hold *h = &cfg->hold[i];
		if (cfg->cached & (1u << i))
			continue; /* cached: free as far as callers can tell */
		m->used |= ((1u << (1u << h->order)) - 1) << h->pfn;
		m->head[h->pfn] = (uint8_t)(1 + h->order);
	}
}

static uint32_t mb_mask(uint64_t pfn, uint64_t n)
{
	return (uint32_t)(((1ull << n) - 1) << pfn);
}

/* Is [pfn, pfn + n) inside one region, aligned to 2^order? */
static bool mb_model_valid(uint64_t pfn, uint64_t n, unsigned order)
{
	const struct mb_cfg *cfg = mc_cfg();
	if (pfn & ((1ull << order) - 1))
		return false;
	for (unsigned i = 0; i < 2 && cfg->rg[i][1]; i++)
		if (pfn >= cfg->rg[i][0] &&
		    pfn + (1ull << order) <= cfg->rg[i][0] + cfg->rg[i][1])
			return pfn + n <= MB_NF;
	return false;
}

/* Does some aligned block of this order lie free in a region? */
static bool mb_model_fits(const struct mb_model *m, unsigned order)
{
	for (uint64_t p = 0; p + (1ull << order) <= MB_NF; p += 1ull << order)
		if (mb_model_valid(p, 1ull << order, order) &&
		    (m->used & mb_mask(p, 1ull << order)) == 0)
			return true;
	return false;
}

/* An allocation of n frames aligned to 2^order with result rc, at pfn. */
static bool mb_model_alloc(struct mb_model *m, const struct lin_op *op,
			   uint64_t n, unsigned order, uint8_t head)
{
	int rc = (int)(int64_t)op->res[0];
	uint64_t pfn = op->res[1];
	if (rc == BUDDY_ENOMEM)
		return !mb_model_fits(m, order);
	if (rc != BUDDY_OK || !mb_model_valid(pfn, n, order) ||
	    (m->used & mb_mask(pfn, n)))
		return false;
	m->used |= mb_mask(pfn, n);
	m->head[pfn] = head;
	return true;
}

static bool mb_model_at(struct mb_model *m, const struct lin_op *op)
{
	int rc = (int)(int64_t)op->res[0];
	uint64_t pfn = op->arg[0], n = 1ull << op->arg[1];
	bool busy = (m->used & mb_mask(pfn, n)) != 0;
	if (rc == BUDDY_EBUSY)
		return busy;
	if (rc != BUDDY_OK || busy)
		return false;
	m->used |= mb_mask(pfn, n);
	m->head[pfn] = (uint8_t)(1 + op->arg[1]);
	return true;
}

static bool mb_model_free(struct mb_model *m, const struct lin_op *op,
			  uint64_t n, uint8_t head)
{
	uint64_t pfn = op->arg[0];
	if (op->res[0] != BUDDY_OK || m->head[pfn] != head)
		return false;
	m->used &= ~mb_mask(pfn, n);
	m->head[pfn] = 0;
	return true;
}

static bool mb_model_apply(void *st, const struct lin_op *op)
{
	struct mb_model *m = st;
	switch (op->kind) {
	case ALLOC:
		return mb_model_alloc(m, op, 1ull << op->arg[0],
				      (unsigned)op->arg[0],
				      (uint8_t)(1 + op->arg[0]));
	case RUN:
		return mb_model_alloc(m, op, op->arg[0], 2,
				      (uint8_t)(0x80 | op->arg[0]));
	case AT:
		return mb_model_at(m, op);
	case FREE:
		return mb_model_free(m, op, 1ull << op->arg[1],
				     (uint8_t)(1 + op->arg[1]));
	case FREE_RUN:
		return mb_model_free(m, op, op->arg[1],
				     (uint8_t)(0x80 | op->arg[1]));
	}
	return false;
}

/* The model ends holding exactly what the threads hold. */
static bool mb_model_final(const void *st)
{
	const struct mb_model *m = st;
	uint32_t held = 0;
	for (unsigned f = 0; f < MB_NF; f++)
		if (S.owner[f])
			held |= 1u << f;
	return m->used == held;
}

/*
 * A struct lin_model per harness (lin.h), each with its own sequential
 * specification.
 */
static const struct lin_model mb_model = {
	.size = sizeof(struct mb_model),
	.init = mb_model_init,
	.apply = mb_model_apply,
	.final = mb_model_final,
	.names = mb_names,
};

/* ---- the checks at the end (nothing is scheduled there) ---- */

static void mb_zone_check(bool coalesced, const char *when)
{
	uint64_t f = 0;
	int b = buddy_zone_check(S.z, coalesced, &f);
	if (b != 0)
		mc_fail("B%d broken at frame %llu %s", b, (unsigned long long)f,
			when);
}

/* Frames free, cached and held add up to the zone. */
static void mb_count_check(void)
{
	struct buddy_stats st;
	buddy_zone_stats(S.z, &st);
	uint64_t held = 0;
	for (unsigned f = 0; f < MB_NF; f++)
		held += S.owner[f] != 0;
	if (st.free_frames + st.cached_frames + held != st.total_frames)
		mc_fail("frames lost: %llu free + %llu cached + %llu held of "
			"%llu",
			(unsigned long long)st.free_frames,
			(unsigned long long)st.cached_frames,
			(unsigned long long)held,
			(unsigned long long)st.total_frames);
}

static void mb_free_all(void)
{
	for (unsigned t = 0; t < MC_MAX_THREADS; t++)
		while (S.nheld[t] > 0) {
			struct mb_block *b = &S.held[t][--S.nheld[t]];
			int rc = b->run ? buddy_free_run(mb_cpu(t),
							 mb_addr(b->pfn), b->n)
					: buddy_free(mb_cpu(t), mb_addr(b->pfn),
						     b->order);
			if (rc != BUDDY_OK)
				mc_fail("final free of pfn %u: %d", b->pfn, rc);
			for (uint32_t f = b->pfn; f < b->pfn + b->n; f++)
				S.owner[f] = 0;
		}
}

/* What this execution did, for the coverage tally. */
static void mb_cover_note(void)
{
	struct buddy_stats st;
	buddy_zone_stats(S.z, &st);
	const struct buddy_stats *b = &S.st0;
	const uint64_t n[] = { st.merges - b->merges,   st.splits - b->splits,
			       st.refills - b->refills, st.drains - b->drains,
			       st.stale - b->stale,     st.moved - b->moved,
			       st.failed - b->failed };
	char ev[8], *p = ev;
	for (unsigned i = 0; i < sizeof(n) / sizeof(n[0]); i++)
		if (n[i] != 0)
			*p++ = mb_cover.codes[i];
	*p = 0;
	mc_cover_add(&mb_cover, ev);
}

static bool mb_report(void)
{
	const struct mb_cfg *cfg = mc_cfg();
	return mc_cover_report(&mb_cover, cfg->need);
}

static void mb_check(void)
{
	mb_zone_check(false, "at the end");
	lin_check(&S.h, &mb_model);
	mb_count_check();
	mb_cover_note();
	buddy_zone_drain_all(mb_cpu(0));
	mb_zone_check(true, "with the caches drained");
	mb_free_all();
	buddy_zone_drain_all(mb_cpu(0));
	mb_zone_check(true, "with everything freed");
	mb_count_check();
}

/* ---- the reduction ---- */

static bool mb_in(uintptr_t a, const void *lo, size_t len)
{
	return a >= (uintptr_t)lo && a < (uintptr_t)lo + len;
}

static bool mb_local(const volatile void *addr, enum lf_atomic_op op)
{
	const struct mb_cfg *cfg = mc_cfg();
	uintptr_t a = (uintptr_t)addr;
	if (mb_in(a, &S.z->stacks[S.maxo + 1],
		  (BUDDY_MAX_ORDER - S.maxo) * sizeof(S.z->stacks[0])))
		return true; /* never written: no block of these orders */
	if (cfg->shared)
		return false;
	for (unsigned i = 0; i < MC_MAX_THREADS; i++) {
		const struct buddy_cpu *c = buddy_zone_cpu(S.z, i);
		if (mb_in(a, c->ctr, sizeof(c->ctr)) ||
		    mb_in(a, c->count, sizeof(c->count)))
			return true;
		if (i == mc_self() && op == LF_OP_LOAD &&
		    (mb_in(a, c->free_delta, sizeof(c->free_delta)) ||
		     mb_in(a, &c->busy, sizeof(c->busy))))
			return true;
	}
	return false;
}

/*
 * Store buffers (mc.c): with buffer_busy, each CPU's busy word, so that a
 * context's entry into an in-flight section may become visible after its
 * later writes that are not release (what C11 and a weakly ordered CPU
 * allow): a failing pass must still see the section of whoever emptied
 * what it looked at (docs/design.md 2.4, "What a failing pass must see").
 */
static unsigned mb_buffered(const volatile void *addr)
{
	const struct mb_cfg *cfg = mc_cfg();
	if (!cfg->buffer_busy)
		return 0;
	for (unsigned i = 0; i < MC_MAX_THREADS; i++)
		if (addr == &buddy_zone_cpu(S.z, i)->busy)
			return sizeof(lf_atomic_u32);
	return 0;
}

/* For --trace: state words, links, stacks and CPU fields by name. */
static void mb_where(const volatile void *addr, char *buf, size_t n)
{
	uintptr_t a = (uintptr_t)addr;
	const struct buddy_zone *z = S.z;
	if (mb_in(a, z->st, MB_NF * sizeof(z->st[0])))
		snprintf(buf, n, "st[%zu]", (size_t)(a - (uintptr_t)z->st) / 2);
	else if (mb_in(a, z->link, MB_NF * sizeof(z->link[0])))
		snprintf(buf, n, "link[%zu]",
			 (size_t)(a - (uintptr_t)z->link) / 4);
	else if (mb_in(a, z->stacks, sizeof(z->stacks)))
		snprintf(buf, n, "stack[%zu]",
			 (size_t)(a - (uintptr_t)z->stacks) /
				 sizeof(z->stacks[0]));
	for (unsigned i = 0; i < MC_MAX_THREADS; i++) {
		const struct buddy_cpu *c = buddy_zone_cpu(S.z, i);
		if (mb_in(a, c, sizeof(*c)))
			snprintf(buf, n, "cpu%u+%zu%s", i,
				 (size_t)(a - (uintptr_t)c),
				 a == (uintptr_t)&c->lock   ? " lock"
				 : a == (uintptr_t)&c->busy ? " busy"
							    : "");
	}
}

/*
 * This harness's configurations: a struct mc_test (MC_TEST_COMMON) with
 * this harness's hooks. The other harnesses' *_TEST macros look alike
 * because they fill the same struct; each names its own functions.
 */
#define MB_TEST(id, nm, desc, nt, b, d, r, ...)                                \
	static const struct mb_cfg id##_cfg = { __VA_ARGS__ };                 \
	static const struct mc_test id = { MC_TEST_COMMON(nm, desc, nt, b, d,  \
							  r),                  \
					   .setup = mb_setup,                  \
					   .thread = mb_thread,                \
					   .check = mb_check,                  \
					   .local = mb_local,                  \
					   .buffered = mb_buffered,            \
					   .where = mb_where,                  \
					   .report = mb_report,                \
					   .cfg = &id##_cfg };

#define NOCACHE 0xf

/* Two buddies freed at once must coalesce (the B6 race, docs/design.md),
 * while a third thread takes and gives back the other half. */
MB_TEST(mb_merge, "buddy.merge", "buddies freed at once vs alloc (B6)", 3, 3, 3,
	20000, .need = "m", .rg = { { 0, 4 } }, .nocache = NOCACHE,
	.hold = { { 0, 0, 0 }, { 1, 1, 0 } }, .nhold = 2,
	.script = { "F", "F", "1F" })
/* Deferred coalescing: two threads each allocate a frame and free it (a
 * free of the block a context allocated last defers), while a third asks
 * for the whole zone, which it gets only by merging the deferred pieces:
 * B8 at the end, and ENOMEM exact against the specification. */
MB_TEST(mb_defer, "buddy.defer",
	"deferred frees vs a merge-needing alloc"
	" (B8, exact ENOMEM)",
	3, 2, 3, 20000, .need = "m", .rg = { { 0, 4 } }, .nocache = NOCACHE,
	.script = { "0l", "0l", "2f" })
/* Splits racing with merges on 8 free frames, no caches. */
MB_TEST(mb_split, "buddy.split", "allocs split while frees merge", 3, 2, 3,
	20000, .need = "msx", .rg = { { 0, 8 } }, .nocache = NOCACHE,
	.script = { "0f", "1f", "0l" })
/*
 * Spare slots: thread 0's split leaves its halves free in its own slots,
 * on no stack; the others' allocations must find them there (exact
 * ENOMEM: 4 frames, at most 3 held at once) while its owner takes them
 * back, merges them and defers into them.
 */
MB_TEST(mb_spare, "buddy.spare", "spares taken by other contexts vs ENOMEM", 3,
	2, 3, 20000, .need = "ms", .rg = { { 0, 4 } }, .nocache = NOCACHE,
	.script = { "00ff", "1f", "0l" })
/* alloc_at against an allocation and a free of its buddy. */
MB_TEST(mb_at, "buddy.at", "alloc_at vs alloc and free", 3, 2, 3, 20000,
	.need = "msn", .rg = { { 0, 8 } }, .nocache = NOCACHE, .at_pfn = 2,
	.at_order = 1, .hold = { { 1, 0, 1 } }, .nhold = 1,
	.script = { "@f", "f", "1f" })
/* Per-CPU caches: a refill carves the whole zone into CPU 0's cache;
 * CPU 1 must drain it to get an order-2 block. */
MB_TEST(mb_cache, "buddy.cache", "cache refill, drain by another CPU", 2, 2, 3,
	20000, .need = "rd", .rg = { { 0, 8 } }, .script = { "00ff", "2f" })
/* Cache free and drain vs a core allocation and a run. */
MB_TEST(mb_drain, "buddy.drain", "cache frees, drain, runs, sweep", 3, 2, 3,
	20000, .need = "rd", .rg = { { 0, 8 } }, .nocache = 0x4,
	.hold = { { 0, 0, 0 }, { 0, 1, 0 } }, .nhold = 2,
	.script = { "ffd", "r0l", "2s" })
/* Two regions whose blocks are buddies by number but must not merge. */
MB_TEST(mb_twor, "buddy.regions", "adjacent regions never merge", 3, 2, 3,
	20000, .need = "n", .rg = { { 0, 4 }, { 4, 4 } }, .nocache = NOCACHE,
	.hold = { { 0, 0, 2 }, { 1, 4, 2 } }, .nhold = 2,
	.script = { "f", "f", "2" })
/* alloc_run gives back the tail of its block inside its in-flight
 * section: an order-0 allocation racing with it never sees a quiet empty
 * zone, though every frame but the run's is free at every instant. */
MB_TEST(mb_runtail, "buddy.run_tail", "alloc_run's tail vs a failing alloc", 2,
	2, 3, 20000, .need = "s", .rg = { { 0, 4 } }, .nocache = NOCACHE,
	.script = { "rf", "0f" })
/* A cache drained after a failing allocation's quiet pass: the pass must
 * see every cache empty inside its window. X (pfn 2, order 1) starts in
 * CPU 2's cache; CPU 0's drain moves it to the core, CPU 2 frees Y into
 * its cache and takes X, CPU 1 drains Y into the core: a block is free at
 * every instant, so CPU 0's order-0 allocation must not fail. */
MB_TEST(mb_window, "buddy.drain_window",
	"a drain after the quiet pass vs "
	"ENOMEM",
	3, 2, 3, 20000, .need = "rd", .rg = { { 0, 4 } }, .nocache = 0x1,
	.hold = { { 2, 0, 0 }, { 2, 1, 0 }, { 2, 2, 1 } }, .nhold = 3,
	.cached = 0x4, .script = { "0", "D", "f1" })
/*
 * The same with the caches in the symmetric mode (no heavy barrier to
 * drain the store buffers) and the busy words buffered: a drain's entry
 * into its section must reach the failing pass with the cache count it
 * lowered (a release store, buddy_slot_take()), or the pass sees the
 * cache empty and nobody in flight.
 */
MB_TEST(mb_window_sym, "buddy.drain_window_sym",
	"drain_window, symmetric caches, busy words buffered", 3, 1, 3, 20000,
	.need = "rd", .rg = { { 0, 4 } }, .nocache = 0x1,
	.hold = { { 2, 0, 0 }, { 2, 1, 0 }, { 2, 2, 1 } }, .nhold = 3,
	.cached = 0x4, .buffer_busy = true, .symmetric = true,
	.script = { "0", "D", "f1" })
/* alloc_at of a cached frame: its drain puts the frame in the core, where
 * another CPU's refill may carve it into its cache again: still free, so
 * alloc_at drains again instead of failing with EBUSY. The four frames
 * start in CPU 1's cache; its allocation takes the first or the last of
 * the four it carves, and frame 1 stays cached. */
MB_TEST(mb_atcached, "buddy.at_cached",
	"alloc_at vs a refill that caches "
	"its range",
	2, 2, 3, 20000, .need = "rd", .rg = { { 0, 4 } }, .nocache = 0x1,
	.at_pfn = 1, .at_order = 0,
	.hold = { { 1, 0, 0 }, { 1, 1, 0 }, { 1, 2, 0 }, { 1, 3, 0 } },
	.nhold = 4, .cached = 0xf, .script = { "@", "0" })
/*
 * A failing pass must see the section of a context that emptied a stack
 * (the pops are release RMWs, lf_stack.c S5). Frame 3 is the only free
 * block, on stack 0 (thread 0's alloc_at of frame 2 pushed it: its slot 0
 * held frame 1, which it then took). Thread 1's sweep pops the stack
 * whole, holds the entry and pushes it back, inside its section; its busy
 * word goes through a store buffer. Thread 0's allocation must not fail:
 * frame 3 is free at every instant. With an acquire-only pop the entry
 * into the section stays buffered past the pop, and the allocation sees
 * the stack empty and everyone quiet: ENOMEM.
 */
MB_TEST(mb_popwin, "buddy.pop_window",
	"a sweep's pop vs a failing alloc,"
	" busy words buffered",
	2, 2, 3, 20000, .rg = { { 0, 4 } }, .nocache = NOCACHE,
	.hold = { { 0, 0, 0 }, { 0, 2, 0 }, { 0, 1, 0 } }, .nhold = 3,
	.buffer_busy = true, .script = { "0", "s" })
/* Self-test: threads sharing one CPU context (against its contract)
 * lose updates of its free-block counts: B7 must be caught. */
MB_TEST(mb_shared, "self.buddy_shared",
	"one CPU context on two threads:"
	" lost count (B7)",
	2, 2, 3, 3000, .rg = { { 0, 4 } }, .nocache = NOCACHE,
	.hold = { { 0, 0, 0 }, { 1, 2, 1 } }, .nhold = 2, .shared = true,
	.script = { "F", "F" })

const struct mc_test *const mc_tests_buddy[] = {
	&mb_merge,    &mb_defer,  &mb_split,      &mb_spare,   &mb_at,
	&mb_cache,    &mb_drain,  &mb_twor,       &mb_runtail, &mb_window,
	&mb_atcached, &mb_popwin, &mb_window_sym, &mb_shared,  NULL
};
