/*
 * mc_vas.c: the virtual address range allocator (vaspace/) under the
 * model checker: writers allocating and freeing while readers look up,
 * on a region of a few quanta, in nodes of 3 or 4 keys, so that leaves
 * split, merge and borrow, roots grow and shrink, and nodes are reused
 * from the freelist (obsolete, revived) or retired through the epoch
 * domain to the node source, with a handful of ranges.
 *
 * A configuration gives the region (in quanta of 4 KiB), the node size,
 * the freelist's high-water mark, ranges the threads hold at the start
 * (vas_alloc_at in setup, where nothing is scheduled), and a script per
 * thread, each letter with a hexadecimal digit where it takes one:
 *   aN bN  vas_alloc of N quanta, first fit / best fit (a fresh tag)
 *   xQ     vas_alloc_at of quantum Q, one quantum
 *   f      free the oldest range the thread holds
 *   h      free the first quantum of it (a partial free: the rest stays)
 *   rQ uQ  vas_replace / vas_unmap of quanta [Q, Q + 2) (MAP_FIXED, munmap:
 *          over ranges and holes; the thread gives up the ranges it holds,
 *          which the configuration makes the only ones there)
 *   lQ     vas_lookup of quantum Q
 *   mQ     vas_lookup_n of quanta Q and Q + 2 in one call: two lookups,
 *          each linearizable on its own within the call (both recorded
 *          from the call to its return)
 *   nQ     vas_find from quantum Q (the range holding it, or the first
 *          allocated one above)
 *   LQ     the same descent without an epoch section (self-test only)
 *   p      lf_epoch_poll of the thread's record (runs node retirements)
 *   o O    vas_set_caching off / on
 * Every execution checks:
 *   - at every allocation: its quanta are held by nobody (an owner per
 *     quantum, released just before the free is called);
 *   - at every atomic operation: no access to a node that went back to the
 *     node source (E3 of the epoch domain that guards node reuse);
 *   - X1 at every atomic operation (mv_x1()): no thread is inside a
 *     leaf-local write (past the shared side's entry, having touched a
 *     node) while another has written a node outside one and still holds
 *     the writer lock;
 *   - A1-A11 at the end (vas_check);
 *   - linearizability of the history against a sequential vas (below),
 *     lookups included (docs/design.md 3.3: lookups are linearizable),
 *     ending in the state the tree holds (vas_iterate); the model knows
 *     whether caching is on (placement is exact while it is off);
 *   - after everything is freed and vas_destroy: every node back in the
 *     source (none lost, none given back twice).
 *
 * Reduction (mc_test.local): the writer's loads of node memory and of the
 * trees' roots while it holds the writer lock (only the lock holder
 * writes them), the statistics counters (one writer, or commuting
 * fetch_adds, read only at the end) are not scheduling points. Readers'
 * loads and the writer's stores are.
 */
#include <stdio.h>
#include <string.h>

#include "lin.h"
#include "mc.h"
#include "mc_tests.h"
#include "vas_i.h"

#define MV_NQ 32              /* quanta of the largest region */
#define MV_Q ((uint64_t)4096) /* the quantum */
#define MV_BASE ((uint64_t)0x100000)
#define MV_NODES 48                 /* the node source's pool */
#define MV_HELD 6                   /* ranges a thread holds at once */
#define MV_CTX (MC_MAX_THREADS + 1) /* + the checker's */

/*
 * Operation codes and their names for the history, as each harness declares
 * its own (lin.h).
 */
enum { ALLOC, BEST, AT, FREE, LOOKUP, REPLACE, UNMAP, FIND, CACHING };
static const char *const mv_names[] = { "alloc", "alloc_best", "alloc_at",
					"free",  "lookup",     "replace",
					"unmap", "find",       "caching" };
#define MV_SPAN 2 /* quanta a replace or unmap covers */

struct mv_init {
	uint8_t tid, q, n;
};

struct mv_cfg {
	uint8_t nq, keys, high_water;
	bool caching; /* per-context caching on (docs/design.md 3.3) */
	struct mv_init init[6];
	unsigned ninit;
	const char *script[MC_MAX_THREADS];
	const char *need; /* events some execution must have (mv_cover) */
};

struct mv_range {
	uint8_t q, n, tag;
};

/* The node source's memory: nodes are VAS_NODE_SIZE units. */
static _Alignas(4096) unsigned char mv_pool[MV_NODES][VAS_NODE_SIZE];

static struct {
	bool live[MV_NODES];     /* handed out by the source */
	uint8_t stack[MV_NODES]; /* free pool entries */
	unsigned nstack;
	struct vas_node_source src;
	struct vas v;
	struct vas_ctx ctx[MV_CTX];
	uint8_t owner[MV_NQ]; /* thread + 1 holding the quantum, or 0 */
	struct mv_range held[MC_MAX_THREADS][MV_HELD];
	unsigned nheld[MC_MAX_THREADS];
	unsigned ntag[MC_MAX_THREADS];
	/* X1's monitor (mv_x1()): each thread's place in the shared side,
	 * whether it wrote a node outside it since taking the writer lock,
	 * whether it is turning caching off (and has set excl). */
	uint8_t lst[MC_MAX_THREADS];
	bool xdirty[MC_MAX_THREADS];
	bool in_off[MC_MAX_THREADS], off_excl[MC_MAX_THREADS];
	bool off_raced;     /* caching off waited for a leaf-local write */
	uint64_t nodes0[2]; /* nodes of each tree after setup */
	uint32_t height0;   /* of the address tree after setup */
	struct lin_history h;
} S;

static const char *const mv_events[] = { "a tree grew",
					 "a tree shrank",
					 "height changed",
					 "reader restarted",
					 "node retired to the source",
					 "leaf-local write",
					 "caching off while a leaf-local write "
					 "was in" };
static struct mc_cover mv_cover = { .codes = "gshrtco", .names = mv_events };

/* ---- the node source: a fixed pool, poisoned on the way back ---- */

static void *mv_get(void *arg)
{
	(void)arg;
	if (S.nstack == 0)
		return NULL;
	unsigned i = S.stack[--S.nstack];
	S.live[i] = true;
	memset(mv_pool[i], 0xa5, VAS_NODE_SIZE); /* junk, as vt_common.h */
	return mv_pool[i];
}

static unsigned mv_node_of(uintptr_t a)
{
	return (unsigned)((a - (uintptr_t)mv_pool) / VAS_NODE_SIZE);
}

static bool mv_in_pool(uintptr_t a)
{
	return a >= (uintptr_t)mv_pool && a < (uintptr_t)(mv_pool + MV_NODES);
}

static void mv_put(void *arg, void *node)
{
	(void)arg;
	uintptr_t a = (uintptr_t)node;
	if (!mv_in_pool(a) || (a - (uintptr_t)mv_pool) % VAS_NODE_SIZE ||
	    !S.live[mv_node_of(a)])
		mc_fail("node source: put of %p, not a live node", node);
	unsigned i = mv_node_of(a);
	S.live[i] = false;
	memset(mv_pool[i], 0x5a, VAS_NODE_SIZE);
	S.stack[S.nstack++] = (uint8_t)i;
}

/* ---- set-up ---- */

static uint64_t mv_addr(uint64_t q)
{
	return MV_BASE + q * MV_Q;
}

static void mv_hold(unsigned tid, uint64_t q, uint64_t n, unsigned tag)
{
	if (q + n > MV_NQ)
		mc_fail("range at quantum %llu outside the region",
			(unsigned long long)q);
	for (uint64_t i = q; i < q + n; i++) {
		if (S.owner[i] != 0)
			mc_fail("quantum %llu handed to thread %u, held by %u",
				(unsigned long long)i, tid, S.owner[i] - 1);
		S.owner[i] = (uint8_t)(tid + 1);
	}
	if (S.nheld[tid] == MV_HELD)
		mc_fail("harness: thread %u holds too many ranges", tid);
	S.held[tid][S.nheld[tid]++] =
		(struct mv_range){ (uint8_t)q, (uint8_t)n, (uint8_t)tag };
}

static unsigned mv_init_tag(unsigned i)
{
	return 0xf0 + i;
}

static void mv_setup(void)
{
	const struct mv_cfg *cfg = mc_cfg();
	memset(&S, 0, sizeof(S));
	for (unsigned i = 0; i < MV_NODES; i++)
		S.stack[S.nstack++] = (uint8_t)(MV_NODES - 1 - i);
	S.src = (struct vas_node_source){ mv_get, mv_put, NULL };
	if (vas_create(&S.v, MV_BASE, cfg->nq * MV_Q, MV_Q, &S.src, cfg->keys,
		       cfg->high_water) != VAS_OK)
		mc_fail("setup: vas_create");
	for (unsigned i = 0; i < MV_CTX; i++)
		if (vas_ctx_register(&S.v, &S.ctx[i]) != VAS_OK)
			mc_fail("setup: vas_ctx_register");
	if (cfg->caching && vas_set_caching(&S.v, true) != VAS_OK)
		mc_fail("setup: vas_set_caching");
	for (unsigned i = 0; i < cfg->ninit; i++) {
		const struct mv_init *r = &cfg->init[i];
		if (vas_alloc_at(&S.ctx[MC_MAX_THREADS], mv_addr(r->q),
				 r->n * MV_Q, mv_init_tag(i)) != VAS_OK)
			mc_fail("setup: alloc_at(%u, %u)", r->q, r->n);
		mv_hold(r->tid, r->q, r->n, mv_init_tag(i));
	}
	S.nodes0[0] = S.v.addr.nodes;
	S.nodes0[1] = S.v.size.nodes;
	S.height0 = S.v.addr.height;
	lin_reset(&S.h);
}

/* ---- the operations of a script ---- */

static void mv_alloc(unsigned tid, unsigned n, bool best)
{
	unsigned tag = 1 + tid * 0x30 + S.ntag[tid]++;
	struct lin_op *op = lin_call(&S.h, best ? BEST : ALLOC, n, tag);
	uint64_t a = 0;
	int rc = vas_alloc(&S.ctx[tid], n * MV_Q, 0,
			   best ? VAS_BEST_FIT : VAS_FIRST_FIT, tag, &a);
	uint64_t q = rc == VAS_OK ? (a - MV_BASE) / MV_Q : 0;
	if (rc == VAS_OK)
		mv_hold(tid, q, n, tag);
	lin_ret(op, (uint64_t)(int64_t)rc, q);
}

static void mv_alloc_at(unsigned tid, unsigned q)
{
	unsigned tag = 1 + tid * 0x30 + S.ntag[tid]++;
	struct lin_op *op = lin_call(&S.h, AT, q, tag);
	int rc = vas_alloc_at(&S.ctx[tid], mv_addr(q), MV_Q, tag);
	if (rc == VAS_OK)
		mv_hold(tid, q, 1, tag);
	lin_ret(op, (uint64_t)(int64_t)rc, 0);
}

/* Free the oldest held range, or only its first quantum (head). */
static void mv_free(unsigned tid, bool head)
{
	if (S.nheld[tid] == 0)
		return;
	struct mv_range *r = &S.held[tid][0];
	unsigned q = r->q, n = head ? 1 : r->n;
	if (n == r->n)
		memmove(r, r + 1, --S.nheld[tid] * sizeof(*r));
	else
		*r = (struct mv_range){ (uint8_t)(q + 1), (uint8_t)(r->n - 1),
					r->tag };
	for (unsigned i = q; i < q + n; i++)
		S.owner[i] = 0;
	struct lin_op *op = lin_call(&S.h, FREE, q, n);
	int rc = vas_free(&S.ctx[tid], mv_addr(q), n * MV_Q);
	lin_ret(op, (uint64_t)(int64_t)rc, 0);
}

/* Caching on or off (off returns every held range first). */
static void mv_caching(unsigned tid, bool on)
{
	S.in_off[tid] = !on;
	struct lin_op *op = lin_call(&S.h, CACHING, on, 0);
	int rc = vas_set_caching(&S.v, on);
	lin_ret(op, (uint64_t)(int64_t)rc, 0);
	S.in_off[tid] = S.off_excl[tid] = false;
}

/*
 * Replace (or unmap) [q, q + MV_SPAN): the thread's own ranges there are
 * gone from its bookkeeping (the final unmap of the region takes what it
 * mapped).
 */
static void mv_rewrite(unsigned tid, unsigned q, bool unmap)
{
	unsigned tag = unmap ? 0 : 1 + tid * 0x30 + S.ntag[tid]++;
	for (unsigned i = 0; i < S.nheld[tid]; i++)
		for (unsigned j = 0; j < S.held[tid][i].n; j++)
			S.owner[S.held[tid][i].q + j] = 0;
	S.nheld[tid] = 0;
	struct lin_op *op = lin_call(&S.h, unmap ? UNMAP : REPLACE, q, tag);
	int rc = unmap ? vas_unmap(&S.ctx[tid], mv_addr(q), MV_SPAN * MV_Q,
				   NULL, NULL, NULL)
		       : vas_replace(&S.ctx[tid], mv_addr(q), MV_SPAN * MV_Q, 0,
				     tag, NULL, NULL);
	lin_ret(op, (uint64_t)(int64_t)rc, 0);
}

static uint64_t mv_pack(const struct vas_range *r)
{
	uint64_t q = (r->start - MV_BASE) / MV_Q, n = r->size / MV_Q;
	return q | n << 8 | (uint64_t)r->tag << 16;
}

static void mv_lookup(unsigned tid, unsigned q)
{
	struct lin_op *op = lin_call(&S.h, LOOKUP, q, 0);
	struct vas_range r;
	int rc = vas_lookup(&S.ctx[tid], mv_addr(q), &r);
	lin_ret(op, (uint64_t)(int64_t)rc, rc == VAS_OK ? mv_pack(&r) : 0);
}

static void mv_lookup_n(unsigned tid, unsigned q)
{
	struct lin_op *op[2] = { lin_call(&S.h, LOOKUP, q, 0),
				 lin_call(&S.h, LOOKUP, q + 2, 0) };
	uint64_t a[2] = { mv_addr(q), mv_addr(q + 2) };
	struct vas_range r[2];
	int rc[2];
	int hits = vas_lookup_n(&S.ctx[tid], a, 2, r, rc);
	for (unsigned i = 0; i < 2; i++)
		lin_ret(op[i], (uint64_t)(int64_t)rc[i],
			rc[i] == VAS_OK ? mv_pack(&r[i]) : 0);
	if (hits != (rc[0] == VAS_OK) + (rc[1] == VAS_OK))
		mc_fail("vas_lookup_n: %d found, %d answers", hits,
			(rc[0] == VAS_OK) + (rc[1] == VAS_OK));
}

static void mv_find(unsigned tid, unsigned q)
{
	struct lin_op *op = lin_call(&S.h, FIND, q, 0);
	struct vas_range r;
	int rc = vas_find(&S.ctx[tid], mv_addr(q), &r);
	lin_ret(op, (uint64_t)(int64_t)rc, rc == VAS_OK ? mv_pack(&r) : 0);
}

/*
 * The self-test's broken reader: a descent outside any epoch section, so
 * nothing keeps the nodes it reads from going back to the source.
 */
static void mv_lookup_unprotected(unsigned q)
{
	struct vt_ent e;
	uint64_t restarts = 0;
	vt_read_le(&S.v.addr, q, &e, &restarts);
}

static unsigned mv_digit(const char **p)
{
	char c = (*p)[1];
	unsigned d = c >= 'a' ? (unsigned)(c - 'a' + 10) : (unsigned)(c - '0');
	if (c == 0 || d > 15)
		mc_fail("script: '%c' wants a hexadecimal digit", **p);
	(*p)++;
	return d;
}

static void mv_thread(unsigned tid)
{
	const struct mv_cfg *cfg = mc_cfg();
	for (const char *p = cfg->script[tid]; *p; p++) {
		/*
		 * One letter per operation of this harness's scripts; the
		 * others' interpreters look alike (letters, not shared logic).
		 */
		switch (*p) {
		case 'a':
			mv_alloc(tid, mv_digit(&p), false);
			break;
		case 'b':
			mv_alloc(tid, mv_digit(&p), true);
			break;
		case 'x':
			mv_alloc_at(tid, mv_digit(&p));
			break;
		case 'f':
			mv_free(tid, false);
			break;
		case 'h':
			mv_free(tid, true);
			break;
		case 'l':
			mv_lookup(tid, mv_digit(&p));
			break;
		case 'm':
			mv_lookup_n(tid, mv_digit(&p));
			break;
		case 'n':
			mv_find(tid, mv_digit(&p));
			break;
		case 'r':
			mv_rewrite(tid, mv_digit(&p), false);
			break;
		case 'u':
			mv_rewrite(tid, mv_digit(&p), true);
			break;
		case 'L':
			mv_lookup_unprotected(mv_digit(&p));
			break;
		case 'p':
			lf_epoch_poll(&S.ctx[tid].rec);
			break;
		case 'o':
		case 'O':
			mv_caching(tid, *p == 'O');
			break;
		}
	}
}

/* ---- the sequential specification ---- */

/* Quanta with their range's tag (0 free) and the starts of allocations. */
struct mv_model {
	uint8_t tag[MV_NQ];
	uint32_t start;
	bool caching; /* placement is exact while off */
};

static void mv_model_set(struct mv_model *m, unsigned q, unsigned n,
			 unsigned tag)
{
	for (unsigned i = q; i < q + n; i++) {
		m->tag[i] = (uint8_t)tag;
		m->start &= ~(1u << i);
	}
	if (tag)
		m->start |= 1u << q;
}

static void mv_model_init(void *st)
{
	const struct mv_cfg *cfg = mc_cfg();
	struct mv_model *m = st;
	memset(m, 0, sizeof(*m));
	m->caching = cfg->caching;
	for (unsigned i = 0; i < cfg->ninit; i++)
		mv_model_set(m, cfg->init[i].q, cfg->init[i].n, mv_init_tag(i));
}

/* The range holding quantum q: [*s, *e). */
static void mv_model_range(const struct mv_model *m, unsigned q, unsigned *s,
			   unsigned *e)
{
	const struct mv_cfg *cfg = mc_cfg();
	*s = q;
	while (*s > 0 && !(m->start & (1u << *s)) &&
	       (m->tag[*s - 1] != 0) == (m->tag[q] != 0))
		(*s)--;
	*e = q + 1;
	while (*e < cfg->nq && !(m->start & (1u << *e)) &&
	       (m->tag[*e] != 0) == (m->tag[q] != 0))
		(*e)++;
}

/* Where first fit (or best fit) puts n quanta; -1 if nowhere. */
static int mv_model_fit(const struct mv_model *m, unsigned n, bool best)
{
	const struct mv_cfg *cfg = mc_cfg();
	int at = -1;
	unsigned len = ~0u;
	for (unsigned q = 0; q < cfg->nq;) {
		unsigned s, e;
		mv_model_range(m, q, &s, &e);
		if (m->tag[q] == 0 && e - s >= n && (!best || e - s < len)) {
			at = (int)s;
			len = e - s;
			if (!best)
				break;
		}
		q = e;
	}
	return at;
}

/* Quanta [q, q + n) free in the model (and inside the region). */
static bool mv_model_free_at(const struct mv_model *m, uint64_t q, unsigned n)
{
	const struct mv_cfg *cfg = mc_cfg();
	if (q + n > cfg->nq)
		return false;
	for (uint64_t i = q; i < q + n; i++)
		if (m->tag[i] != 0)
			return false;
	return true;
}

/*
 * Exact first or best fit; with caching on, any free place (placement
 * outside the caches, or the caches' own), and VAS_ENOSPC only when
 * nothing fits anywhere (the caches drained before failing).
 */
static bool mv_model_alloc(struct mv_model *m, const struct lin_op *op)
{
	int rc = (int)(int64_t)op->res[0];
	int at = mv_model_fit(m, (unsigned)op->arg[0], op->kind == BEST);
	if (at < 0)
		return rc == VAS_ENOSPC;
	if (m->caching && rc == VAS_OK &&
	    mv_model_free_at(m, op->res[1], (unsigned)op->arg[0]))
		at = (int)op->res[1];
	if (rc != VAS_OK || op->res[1] != (uint64_t)at)
		return false;
	mv_model_set(m, (unsigned)at, (unsigned)op->arg[0],
		     (unsigned)op->arg[1]);
	return true;
}

static bool mv_model_at(struct mv_model *m, const struct lin_op *op)
{
	int rc = (int)(int64_t)op->res[0];
	unsigned q = (unsigned)op->arg[0];
	if (m->tag[q] != 0)
		return rc == VAS_EBUSY;
	if (rc != VAS_OK)
		return false;
	mv_model_set(m, q, 1, (unsigned)op->arg[1]);
	return true;
}

static bool mv_model_free(struct mv_model *m, const struct lin_op *op)
{
	int rc = (int)(int64_t)op->res[0];
	unsigned q = (unsigned)op->arg[0], n = (unsigned)op->arg[1], s, e;
	mv_model_range(m, q, &s, &e);
	if (m->tag[q] == 0 || q + n > e)
		return rc == VAS_ENOTALLOC;
	if (rc != VAS_OK)
		return false;
	mv_model_set(m, q, n, 0);
	if (q + n < e)
		m->start |= 1u << (q + n); /* the tail stays, same tag */
	return true;
}

static bool mv_model_lookup(const struct mv_model *m, const struct lin_op *op)
{
	int rc = (int)(int64_t)op->res[0];
	unsigned q = (unsigned)op->arg[0], s, e;
	if (m->tag[q] == 0)
		return rc == VAS_ENOENT;
	mv_model_range(m, q, &s, &e);
	return rc == VAS_OK &&
	       op->res[1] == (s | (e - s) << 8 | (uint64_t)m->tag[q] << 16);
}

/* The range holding quantum q, or the first allocated one above. */
static bool mv_model_find(const struct mv_model *m, const struct lin_op *op)
{
	const struct mv_cfg *cfg = mc_cfg();
	int rc = (int)(int64_t)op->res[0];
	unsigned q = (unsigned)op->arg[0], s, e;
	while (q < cfg->nq && m->tag[q] == 0)
		q++;
	if (q == cfg->nq)
		return rc == VAS_ENOENT;
	mv_model_range(m, q, &s, &e);
	return rc == VAS_OK &&
	       op->res[1] == (s | (e - s) << 8 | (uint64_t)m->tag[q] << 16);
}

/* [q, q + MV_SPAN) becomes one range of tag (0: free); the rest stays. */
static bool mv_model_rewrite(struct mv_model *m, const struct lin_op *op)
{
	const struct mv_cfg *cfg = mc_cfg();
	unsigned q = (unsigned)op->arg[0], e = q + MV_SPAN;
	if ((int)(int64_t)op->res[0] != VAS_OK)
		return false;
	if (e < cfg->nq && m->tag[e] != 0)
		m->start |= 1u << e; /* what sticks out keeps its tag */
	mv_model_set(m, q, MV_SPAN, (unsigned)op->arg[1]);
	return true;
}

static bool mv_model_apply(void *st, const struct lin_op *op)
{
	struct mv_model *m = st;
	switch (op->kind) {
	case REPLACE:
	case UNMAP:
		return mv_model_rewrite(m, op);
	case ALLOC:
	case BEST:
		return mv_model_alloc(m, op);
	case AT:
		return mv_model_at(m, op);
	case FREE:
		return mv_model_free(m, op);
	case LOOKUP:
		return mv_model_lookup(m, op);
	case FIND:
		return mv_model_find(m, op);
	case CACHING:
		m->caching = op->arg[0] != 0;
		return (int)(int64_t)op->res[0] == VAS_OK;
	}
	return false;
}

/* The model's ranges, one by one, against vas_iterate's. */
struct mv_walk {
	const struct mv_model *m;
	unsigned q;
	bool ok;
};

static bool mv_walk_fn(const struct vas_range *r, void *arg)
{
	struct mv_walk *w = arg;
	unsigned s, e;
	if (w->m->caching && !r->allocated) { /* a piece of free space */
		uint64_t q = (r->start - MV_BASE) / MV_Q, n = r->size / MV_Q;
		w->ok = w->ok && q == w->q &&
			mv_model_free_at(w->m, q, (unsigned)n);
		w->q = (unsigned)(q + n);
		return w->ok;
	}
	mv_model_range(w->m, w->q, &s, &e);
	uint64_t want =
		s | (uint64_t)(e - s) << 8 | (uint64_t)w->m->tag[s] << 16;
	w->ok = w->ok && r->allocated == (w->m->tag[s] != 0) &&
		mv_pack(r) == want;
	w->q = e;
	return w->ok;
}

static bool mv_model_final(const void *st)
{
	const struct mv_cfg *cfg = mc_cfg();
	struct mv_walk w = { st, 0, true };
	vas_iterate(&S.ctx[MC_MAX_THREADS], MV_BASE, mv_addr(cfg->nq),
		    mv_walk_fn, &w);
	return w.ok && w.q == cfg->nq;
}

/*
 * A struct lin_model per harness (lin.h), each with its own sequential
 * specification.
 */
static const struct lin_model mv_model = {
	.size = sizeof(struct mv_model),
	.init = mv_model_init,
	.apply = mv_model_apply,
	.final = mv_model_final,
	.names = mv_names,
};

/* ---- the checks at the end (nothing is scheduled there) ---- */

static void mv_vas_check(const char *when)
{
	uint64_t where = 0;
	int a = vas_check(&S.v, &where);
	if (a != 0)
		mc_fail("A%d broken at key %llu %s", a,
			(unsigned long long)where, when);
}

/* Free everything, tear down: every node must be back in the source. */
static void mv_teardown(void)
{
	/*
	 * Checks the quiescent statistics as mc_epoch.c's check does: each
	 * harness checks its own module's counters.
	 */
	struct vas_ctx *c = &S.ctx[MC_MAX_THREADS];
	for (unsigned t = 0; t < MC_MAX_THREADS; t++)
		for (unsigned i = 0; i < S.nheld[t]; i++) {
			int rc = vas_free(c, mv_addr(S.held[t][i].q),
					  S.held[t][i].n * MV_Q);
			if (rc != VAS_OK)
				mc_fail("final free of quantum %u: %s",
					S.held[t][i].q, vas_strerror(rc));
		}
	/* What replaces mapped: the whole region unmapped. */
	const struct mv_cfg *cfg = mc_cfg();
	if (cfg->caching && vas_set_caching(&S.v, false) != VAS_OK)
		mc_fail("caching off");
	if (vas_unmap(c, MV_BASE, cfg->nq * MV_Q, NULL, NULL, NULL) != VAS_OK)
		mc_fail("final unmap");
	mv_vas_check("with everything freed");
	struct vas_stats st;
	vas_stats(&S.v, &st);
	if (st.ranges != 0 || st.free_ranges != 1)
		mc_fail("everything freed, yet %llu ranges, %llu free",
			(unsigned long long)st.ranges,
			(unsigned long long)st.free_ranges);
	for (unsigned i = 0; i < MV_CTX; i++)
		if (vas_ctx_unregister(&S.ctx[i]) != VAS_OK)
			mc_fail("vas_ctx_unregister");
	if (vas_destroy(&S.v) != VAS_OK)
		mc_fail("vas_destroy");
	if (S.nstack != MV_NODES)
		mc_fail("%u nodes not back in the source", MV_NODES - S.nstack);
}

/* What this execution did to the trees, for the coverage tally. */
static void mv_cover_note(void)
{
	struct vas_stats st;
	vas_stats(&S.v, &st);
	char ev[9], *p = ev;
	if (S.v.addr.nodes > S.nodes0[0] || S.v.size.nodes > S.nodes0[1])
		*p++ = 'g';
	if (S.v.addr.nodes < S.nodes0[0] || S.v.size.nodes < S.nodes0[1])
		*p++ = 's';
	if (S.v.addr.height != S.height0)
		*p++ = 'h';
	if (st.restarts)
		*p++ = 'r';
	if (st.nodes_retired)
		*p++ = 't';
	if (st.local)
		*p++ = 'c';
	if (S.off_raced)
		*p++ = 'o';
	*p = 0;
	mc_cover_add(&mv_cover, ev);
}

static void mv_check(void)
{
	mv_vas_check("at the end");
	lin_check(&S.h, &mv_model);
	mv_cover_note();
	mv_teardown();
}

static bool mv_report(void)
{
	const struct mv_cfg *cfg = mc_cfg();
	return mc_cover_report(&mv_cover, cfg->need);
}

/* ---- the monitor and the reduction ---- */

static bool mv_in(uintptr_t a, const void *lo, size_t len)
{
	return a >= (uintptr_t)lo && a < (uintptr_t)lo + len;
}

/*
 * X1's monitor, from the atomic operations of thread t alone: where t is
 * in the shared side (vas_local_enter()'s store of its flag, its load of
 * excl, then anything but the back-off's store: inside; a node touched
 * inside: writing, which with caching off never happens, the call leaves
 * having read caching), and whether t wrote a node outside it since it
 * took the writer lock (an exclusive writer past its wait; cleared when
 * it leaves the exclusive side: its next write of excl, or of the lock
 * word when caching was off and excl untouched). X1: never both at once.
 */
enum { MV_OUT, MV_ENTER, MV_TRIED, MV_INSIDE, MV_WRITING };

static void mv_x1(unsigned t, uintptr_t a, enum lf_atomic_op op)
{
	const struct vas *v = &S.v;
	uint8_t *st = &S.lst[t];
	bool write = op != LF_OP_LOAD && op != LF_OP_SPIN;
	if (write && mv_in(a, &S.ctx[t].in_local, sizeof(S.ctx[t].in_local)))
		*st = *st == MV_OUT ? MV_ENTER : MV_OUT;
	else if (*st == MV_ENTER && mv_in(a, &v->excl, sizeof(v->excl)))
		*st = MV_TRIED;
	else if (*st == MV_TRIED)
		*st = MV_INSIDE;
	if (*st == MV_INSIDE && mv_in_pool(a))
		*st = MV_WRITING;
	if (write && *st == MV_OUT && mv_in_pool(a))
		S.xdirty[t] = true;
	if (write && (mv_in(a, &v->excl, sizeof(v->excl)) ||
		      mv_in(a, &v->wlock, sizeof(v->wlock))))
		S.xdirty[t] = false;
	if (write && S.in_off[t] && mv_in(a, &v->excl, sizeof(v->excl)))
		S.off_excl[t] = true;
	for (unsigned u = 0; u < MC_MAX_THREADS; u++) {
		if (S.lst[u] != MV_WRITING)
			continue;
		for (unsigned w = 0; w < MC_MAX_THREADS; w++) {
			if (w != u && S.xdirty[w])
				mc_fail("X1: thread %u in a leaf-local write "
					"while thread %u writes exclusively",
					u, w);
			if (w != u && S.off_excl[w])
				S.off_raced = true;
		}
	}
}

static void mv_step(const volatile void *addr, enum lf_atomic_op op)
{
	uintptr_t a = (uintptr_t)addr;
	if (mv_in_pool(a) && !S.live[mv_node_of(a)])
		mc_fail("E3: node %u accessed after it went back to the "
			"source",
			mv_node_of(a));
	mv_x1(mc_self(), a, op);
}

static bool mv_local(const volatile void *addr, enum lf_atomic_op op)
{
	uintptr_t a = (uintptr_t)addr;
	const struct vas *v = &S.v;
	if (mv_in(a, &v->ranges, sizeof(v->ranges)) ||
	    mv_in(a, &v->free_ranges, sizeof(v->free_ranges)) ||
	    mv_in(a, &v->free_q, sizeof(v->free_q)) ||
	    mv_in(a, &v->retired, sizeof(v->retired)) ||
	    mv_in(a, &v->pending_put, sizeof(v->pending_put)))
		return true;
	for (unsigned i = 0; i < MV_CTX; i++)
		if (mv_in(a, &S.ctx[i].restarts, sizeof(S.ctx[i].restarts)) ||
		    mv_in(a, S.ctx[i].rejected, sizeof(S.ctx[i].rejected)) ||
		    mv_in(a, &S.ctx[i].d_ranges, 3 * sizeof(lf_atomic_u64)) ||
		    mv_in(a, &S.ctx[i].lcommits, sizeof(S.ctx[i].lcommits)))
			return true;
	if (op != LF_OP_LOAD || v->wctx != &S.ctx[mc_self()])
		return false;
	return mv_in_pool(a) || mv_in(a, &v->addr, sizeof(v->addr)) ||
	       mv_in(a, &v->size, sizeof(v->size));
}

/* For --trace: nodes, roots, the writer lock by name. */
static void mv_where(const volatile void *addr, char *buf, size_t n)
{
	uintptr_t a = (uintptr_t)addr;
	if (mv_in_pool(a))
		snprintf(buf, n, "node%u+%zu", mv_node_of(a),
			 (size_t)((a - (uintptr_t)mv_pool) % VAS_NODE_SIZE));
	else if (mv_in(a, &S.v.addr, sizeof(S.v.addr)))
		snprintf(buf, n, "addr tree root");
	else if (mv_in(a, &S.v.size, sizeof(S.v.size)))
		snprintf(buf, n, "size tree root");
	else if (a == (uintptr_t)&S.v.wlock)
		snprintf(buf, n, "writer lock");
	else if (mv_in(a, &S.v.epoch, sizeof(S.v.epoch)))
		snprintf(buf, n, "epoch domain");
	for (unsigned i = 0; i < MV_CTX; i++)
		if (mv_in(a, &S.ctx[i], sizeof(S.ctx[i])))
			snprintf(buf, n, "ctx%u+%zu", i,
				 (size_t)(a - (uintptr_t)&S.ctx[i]));
}

/*
 * This harness's configurations: a struct mc_test (MC_TEST_COMMON) with
 * this harness's hooks. The other harnesses' *_TEST macros look alike
 * because they fill the same struct; each names its own functions.
 */
#define MV_TEST(id, nm, desc, nt, b, d, r, ...)                                \
	static const struct mv_cfg id##_cfg = { __VA_ARGS__ };                 \
	static const struct mc_test id = { MC_TEST_COMMON(nm, desc, nt, b, d,  \
							  r),                  \
					   .setup = mv_setup,                  \
					   .thread = mv_thread,                \
					   .check = mv_check,                  \
					   .step = mv_step,                    \
					   .local = mv_local,                  \
					   .where = mv_where,                  \
					   .report = mv_report,                \
					   .cfg = &id##_cfg };

/*
 * Ranges 0, 2, 4 allocated, 1, 3, 5-7 free, in 3-key nodes: the address
 * tree is a root over leaves [0] [1 2] [3 4 5] (keys are quanta).
 */
#define MV_THREE(a, b, c) { { a, 0, 1 }, { b, 2, 1 }, { c, 4, 1 } }, .ninit = 3

/* A lookup racing with an allocation that splits the leaf it reads. */
MV_TEST(mv_split, "vas.split", "lookups vs an alloc that splits a leaf", 2, 3,
	3, 20000, .nq = 8, .keys = 3, .init = MV_THREE(0, 0, 0),
	.script = { "a2", "l5l2" }, .need = "gr")
/* The same split vs a batched lookup of quanta 3 and 5 (the leaf being
 * split): the second descent runs between the first's and the first's leaf
 * validation (docs/design.md 3.2, "Lookups in batches"). */
MV_TEST(mv_nsplit, "vas.batch_split",
	"a batched lookup vs an alloc that splits its leaf", 2, 3, 3, 20000,
	.nq = 8, .keys = 3, .init = MV_THREE(0, 0, 0), .script = { "a2", "m3" },
	.need = "gr")
/* Node reuse (merge, then split) under a batched lookup of 2 and 4. */
MV_TEST(mv_nwriters, "vas.batch_reuse", "a batched lookup vs merge, then split",
	3, 2, 3, 20000, .nq = 8, .keys = 3, .high_water = 2,
	.init = MV_THREE(0, 0, 1), .script = { "ff", "b1a2", "m2" },
	.need = "sr")
/* Four ranges in 12 quanta: the next split splits the root (height 3). */
MV_TEST(mv_grow, "vas.grow", "lookups vs a split that grows the root", 2, 2, 3,
	20000, .nq = 12, .keys = 3,
	.init = { { 0, 0, 1 }, { 0, 2, 1 }, { 0, 4, 1 }, { 0, 6, 1 } },
	.ninit = 4, .script = { "a2", "l7l4" }, .need = "ghr")
/* Two writers free neighbours: leaves merge, the root gives way to its
 * one child (height 1), while a reader looks up. */
MV_TEST(mv_merge, "vas.merge", "frees that merge leaves vs a reader", 3, 2, 3,
	20000, .nq = 8, .keys = 3, .init = MV_THREE(0, 1, 0),
	.script = { "ff", "f", "l4l1" }, .need = "shr")
/* Merges drop nodes to the freelist, and a split takes them back
 * (revived, versions still growing) while a reader may hold them. */
MV_TEST(mv_writers, "vas.writers", "node reuse: merge, then split", 3, 2, 3,
	20000, .nq = 8, .keys = 3, .high_water = 2, .init = MV_THREE(0, 0, 1),
	.script = { "ff", "b1a2", "l5l2" }, .need = "sr")
/* High water 0: a merged-away node is retired through the epoch domain
 * and goes back to the source once the writer's polls see two advances,
 * never while the reader's section can still hold it. */
MV_TEST(mv_reuse, "vas.retire", "node retired to the source vs a reader", 2, 2,
	3, 20000, .nq = 8, .keys = 3, .high_water = 0,
	.init = MV_THREE(0, 0, 1), .script = { "ffpp", "l2l1" }, .need = "srt")
/* Self-test: the same with a reader outside any epoch section; the
 * checker must see it touch a node after it went back to the source. */
MV_TEST(mv_noepoch, "self.vas_noepoch",
	"reader without epoch section:"
	" use after free",
	2, 2, 3, 3000, .nq = 8, .keys = 3, .high_water = 0,
	.init = MV_THREE(0, 0, 1), .script = { "ffpp", "L2L1" })
/* MAP_FIXED over a range and a hole while a reader looks up the page of
 * the range that stays mapped, and the hole's page: each lookup sees the
 * state before or after, never the range gone (W1, docs/design.md 3.3). */
MV_TEST(mv_replace, "vas.replace",
	"replace over a range and a hole vs "
	"lookups",
	2, 2, 3, 20000, .nq = 8, .keys = 3, .init = MV_THREE(0, 0, 1),
	.script = { "r2", "l2l3" }, .need = "r")
/* munmap over a range and a hole, then MAP_FIXED over a hole and a range
 * (across leaves), while a reader looks up. */
MV_TEST(mv_unmap, "vas.unmap", "unmap, replace over holes, lookups", 2, 2, 3,
	20000, .nq = 8, .keys = 3, .init = MV_THREE(0, 0, 0),
	.script = { "u2r3", "l4l2" }, .need = "r")
/* Larger: 16 quanta, 4-key nodes, three threads, partial frees and
 * alloc_at; PCT only. */
MV_TEST(mv_mix, "vas.mix", "alloc, alloc_at, free, lookups, 3 threads", 3, 0, 3,
	30000, .nq = 16, .keys = 4,
	.init = { { 0, 0, 2 }, { 1, 3, 1 }, { 2, 6, 2 }, { 0, 9, 1 } },
	.ninit = 4, .script = { "a2fl6", "x2hb1", "l3l9f" }, .need = "r")

/*
 * Caching on (docs/design.md 3.3): two leaf-local writers (each frees its
 * one-quantum range, cached in its context, and allocates one quantum:
 * the cached range again, if still there) race with an exclusive writer
 * whose alloc_at of thread 0's quantum returns it from thread 0's cache if
 * it is there (taking it off that context's records while the context may
 * be about to reuse it), and with its lookups of both ranges: the
 * exclusion (X1), the records (A10) and linearizability against any-fit
 * placement.
 */
MV_TEST(mv_lwrite, "vas.local",
	"leaf-local writers vs an exclusive one and "
	"lookups",
	3, 2, 3, 20000, .nq = 8, .keys = 3, .caching = true,
	.init = MV_THREE(2, 0, 1), .script = { "fa1", "fa1", "l2x2l4" },
	.need = "c")
/*
 * 32 quanta: a reservation is 2 quanta (a sixteenth). Each thread's first
 * allocation takes a reservation (exclusive: the hole of 2 at quanta 1-2
 * by best fit, or the one at 5-6) and its second carves the rest of it in
 * one leaf (leaf-local), while the third thread frees and looks up.
 */
MV_TEST(mv_carve, "vas.carve",
	"reservations carved leaf-locally vs "
	"frees and lookups",
	3, 2, 3, 20000, .nq = 32, .keys = 4, .caching = true,
	.init = { { 2, 0, 1 }, { 2, 3, 2 }, { 2, 7, 1 } }, .ninit = 3,
	.script = { "a1a1", "a1a1", "l2fl6" }, .need = "c")

/*
 * vas_find over free space that is several entries (caching on): thread 0
 * frees its ranges at quanta 3 and 1 (both cached: held entries between
 * ordinary free ones) and takes them back, 1 then 3, while thread 1 finds
 * from quantum 0, walking free, cached, free, cached... A find that read 1
 * free, then 3 allocated, must not answer 3 (never the answer): the pair
 * check counts leaf-local commits too.
 */
MV_TEST(mv_findrun, "vas.find", "find across cached ranges vs their reuse", 2,
	2, 3, 20000, .nq = 8, .keys = 3, .caching = true,
	.init = { { 0, 3, 1 }, { 0, 1, 1 }, { 1, 6, 1 } }, .ninit = 3,
	.script = { "ffa1a1", "n0n2" }, .need = "c")

/*
 * vas_find's pair check with caching off (docs/design.md 3.3): quanta 0-3
 * free, 4-5 thread 0's range, 6-7 free; thread 0 replaces [3, 5)
 * (MAP_FIXED over the hole's last quantum and the range's first: the
 * range keeps [5, 6)) while thread 1 finds from quantum 0. Before, the
 * answer is [4, 6); after, [3, 5). A find that read the free range [0, 4)
 * before the write and the entry at or above 4 after it would answer
 * [5, 6), never the answer: the commit count must move before the write
 * unlocks its leaf, so that the find reads the pair again.
 */
MV_TEST(mv_findrep, "vas.find_replace",
	"find across a free range vs a replace "
	"that moves its end",
	2, 2, 3, 20000, .nq = 8, .keys = 3, .init = { { 0, 4, 2 } }, .ninit = 1,
	.script = { "r3", "n0n1" }, .need = "r")

/*
 * The caching-off skip (docs/design.md 3.3): thread 0 frees its quantum
 * (leaf-local: cached in its context) and allocates one quantum (that
 * range again if still cached), while thread 1 turns caching off, which
 * must wait for a leaf-local write in flight and return what is cached,
 * and then writes with the writer lock alone (no excl, no wait): it frees
 * quantum 2 (coalescing beside thread 0's), looks up quantum 0 and
 * allocates one quantum by exact first fit. X1 at every step, A10 and A11 at
 * the end, and linearizability with exact placement once the off has taken
 * effect.
 */
MV_TEST(mv_off, "vas.off",
	"caching off vs a leaf-local write, then "
	"writers without the wait",
	2, 2, 3, 20000, .nq = 8, .keys = 3, .caching = true,
	.init = MV_THREE(0, 1, 1), .script = { "fa1", "ofl0a1" }, .need = "co")
/*
 * The same with reservations: 32 quanta, a reservation of 2. Thread 0's
 * first allocation takes one (exclusive), its second carves the rest
 * (leaf-local), then it frees the first (leaf-local: cached); thread 1
 * turns caching off, which returns the reservation and the cached range,
 * looks both up and allocates two quanta by exact first fit.
 */
MV_TEST(mv_offcarve, "vas.off_carve",
	"caching off vs carving and caching, then "
	"exact placement",
	2, 2, 3, 20000, .nq = 32, .keys = 4, .caching = true,
	.init = { { 1, 0, 1 }, { 1, 3, 2 }, { 1, 7, 1 } }, .ninit = 3,
	.script = { "a1a1f", "ol1l2a2" }, .need = "co")

const struct mc_test *const mc_tests_vas[] = {
	&mv_split,    &mv_nsplit,  &mv_nwriters, &mv_grow,    &mv_merge,
	&mv_writers,  &mv_reuse,   &mv_mix,      &mv_replace, &mv_unmap,
	&mv_noepoch,  &mv_lwrite,  &mv_carve,    &mv_findrun, &mv_off,
	&mv_offcarve, &mv_findrep, NULL
};
