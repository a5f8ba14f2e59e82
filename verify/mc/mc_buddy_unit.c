/*
 * mc_buddy_unit.c: the lower level of the buddy's version 3
 * (buddy/buddy_unit.h, docs/design.md 2.7) under the model checker: two
 * or three contexts racing on one unit's word through the CAS loops.
 *
 * A configuration gives the unit's first word (frames [lo, hi) free, the
 * blocks the threads hold at the start allocated, R or not) and a script
 * per thread:
 *   0-4  allocate a block of that order (bu_cas_alloc), held by the thread
 *   @    bu_alloc_at of the configuration's block, held if it succeeds
 *   n    a run of the configuration's count (bu_cas BU_OP_RUN), held
 *   f    free the oldest block the thread holds (a run: BU_OP_FREE_RUN)
 *   o    free the oldest block with a wrong order, one less (or 1 for
 *        order 0): kept, must be refused
 *   d    free again the block this thread freed last (a double free: must
 *        be refused unless another thread got the same block meanwhile,
 *        which the specification decides)
 *   r R  release / reserve the unit; c reclaim it
 * Every execution checks:
 *   - B2 at every allocation: each frame handed out is held by nobody;
 *   - the word well formed (B1 of the lower level) at the end, or 0;
 *   - linearizability against the reference unit (verify/buddy/
 *     buddy_unit_ref.h): every result, refusals and "the unit is at the
 *     core" included, is that of some sequential order of the calls, and
 *     the final word is that order's (nothing changed by a refusal).
 */
#include <stdio.h>
#include <string.h>

#include "../buddy/buddy_unit_ref.h"
#include "buddy_unit.h"
#include "lin.h"
#include "mc.h"
#include "mc_tests.h"

enum {
	U_ALLOC,
	U_AT,
	U_RUN,
	U_FREE,
	U_FREE_RUN,
	U_RESERVE,
	U_RELEASE,
	U_RECLAIM
};
static const char *const mu_names[] = { "alloc",   "alloc_at", "run",
					"free",    "free_run", "reserve",
					"release", "reclaim" };
#define MU_HELD 4

struct mu_hold {
	unsigned tid, at, order; /* a block a thread holds at the start */
};

struct mu_cfg {
	unsigned lo, hi; /* free frames of the first word, before holds */
	bool res;
	struct mu_hold hold[4];
	unsigned nhold;
	unsigned at, at_order; /* '@' */
	unsigned run;          /* 'n' */
	const char *script[MC_MAX_THREADS];
	const char *need; /* coverage events that must happen */
};

struct mu_block {
	unsigned at, n, order;
	bool run;
};

static struct {
	lf_atomic_u64 word;
	struct ref r0; /* the first state, for the specification */
	struct mu_block held[MC_MAX_THREADS][MU_HELD];
	unsigned nheld[MC_MAX_THREADS];
	struct mu_block last[MC_MAX_THREADS]; /* freed last, for 'd' */
	bool freed[MC_MAX_THREADS];
	unsigned owner[BU_FRAMES]; /* 0, or the holding thread + 1 */
	char ev[16];
	struct lin_history h;
} S;

static const char *const mu_events[] = { "double free refused",
					 "wrong order refused",
					 "unit back to the core",
					 "word 0 seen" };
static struct mc_cover mu_cover = { .codes = "dozn", .names = mu_events };

static void mu_event(char e)
{
	size_t n = strlen(S.ev);
	if (strchr(S.ev, e) == NULL && n + 1 < sizeof(S.ev)) {
		S.ev[n] = e;
		S.ev[n + 1] = 0;
	}
}

static void mu_setup(void)
{
	const struct mu_cfg *cfg = mc_cfg();
	memset(&S, 0, sizeof(S));
	lin_reset(&S.h);
	memset(&S.r0, 0, sizeof(S.r0));
	for (unsigned i = 0; i < BU_FRAMES; i++)
		if (i < cfg->lo || i >= cfg->hi)
			ref_put(&S.r0, i, 0);
	uint64_t w = bu_make(cfg->lo, cfg->hi, cfg->res);
	for (unsigned i = 0; i < cfg->nhold; i++) {
		const struct mu_hold *h = &cfg->hold[i];
		MC_ASSERT(bu_alloc_at(w, h->at, h->order, &w) == BUDDY_OK);
		ref_put(&S.r0, h->at, h->order);
		S.held[h->tid][S.nheld[h->tid]++] =
			(struct mu_block){ h->at, 1u << h->order, h->order,
					   false };
		for (unsigned f = h->at; f < h->at + (1u << h->order); f++)
			S.owner[f] = h->tid + 1;
	}
	S.r0.res = cfg->res;
	MC_ASSERT(w == ref_encode(&S.r0) && bu_valid(w));
	lf_init_u64(&S.word, w);
}

/* A block handed out: nobody may hold any of its frames (B2). */
static void mu_take(unsigned tid, unsigned at, unsigned n, unsigned order,
		    bool run)
{
	for (unsigned f = at; f < at + n; f++) {
		if (S.owner[f] != 0)
			mc_fail("B2: frame %u handed to thread %u, held by %u",
				f, tid, S.owner[f] - 1);
		S.owner[f] = tid + 1;
	}
	MC_ASSERT(S.nheld[tid] < MU_HELD);
	S.held[tid][S.nheld[tid]++] = (struct mu_block){ at, n, order, run };
}

/* Before a free is called: its frames are no longer held (if ours). */
static void mu_untake(unsigned tid, const struct mu_block *b)
{
	for (unsigned f = b->at; f < b->at + b->n; f++)
		if (S.owner[f] == tid + 1)
			S.owner[f] = 0;
}

static unsigned mu_rc(int rc)
{
	if (rc == BUDDY_EDOUBLE)
		mu_event('d');
	if (rc == BUDDY_EORDER)
		mu_event('o');
	if (rc == BU_NOT_LOWER)
		mu_event('n');
	return (unsigned)rc;
}

/* Free b with order k (b->order: a legal free) or as a run. */
static int mu_free(unsigned tid, const struct mu_block *b, unsigned k)
{
	uint64_t ow, nw;
	int rc;
	struct lin_op *op;
	if (b->run) {
		op = lin_call(&S.h, U_FREE_RUN, b->at, b->n);
		rc = bu_cas(&S.word, BU_OP_FREE_RUN, b->at, b->n, &ow, &nw,
			    NULL);
	} else {
		op = lin_call(&S.h, U_FREE, b->at, k);
		rc = bu_cas(&S.word, BU_OP_FREE, b->at, k, &ow, &nw, NULL);
	}
	if (rc == BUDDY_OK && nw == BU_CORE)
		mu_event('z');
	lin_ret(op, mu_rc(rc), 0);
	(void)tid;
	return rc;
}

static void mu_unit_op(int kind, enum bu_op bop)
{
	uint64_t ow, nw;
	struct lin_op *op = lin_call(&S.h, kind, 0, 0);
	int rc = bu_cas(&S.word, bop, 0, 0, &ow, &nw, NULL);
	if (rc == BUDDY_OK && nw == BU_CORE)
		mu_event('z');
	lin_ret(op, mu_rc(rc), 0);
}

static void mu_alloc(unsigned tid, unsigned k)
{
	unsigned off = 0;
	struct lin_op *op = lin_call(&S.h, U_ALLOC, k, 0);
	int rc = bu_cas_alloc(&S.word, k, BU_FRAMES, &off, NULL);
	if (rc == BUDDY_OK)
		mu_take(tid, off, 1u << k, k, false);
	lin_ret(op, mu_rc(rc), rc == BUDDY_OK ? off : 0);
}

static void mu_step_script(unsigned tid, char c)
{
	const struct mu_cfg *cfg = mc_cfg();
	uint64_t ow, nw;
	unsigned off = 0;
	struct lin_op *op;
	int rc;
	switch (c) {
	case '@':
		op = lin_call(&S.h, U_AT, cfg->at, cfg->at_order);
		rc = bu_cas(&S.word, BU_OP_ALLOC_AT, cfg->at, cfg->at_order,
			    &ow, &nw, NULL);
		if (rc == BUDDY_OK)
			mu_take(tid, cfg->at, 1u << cfg->at_order,
				cfg->at_order, false);
		lin_ret(op, mu_rc(rc), 0);
		break;
	case 'n':
		op = lin_call(&S.h, U_RUN, cfg->run, 0);
		rc = bu_cas(&S.word, BU_OP_RUN, 0, cfg->run, &ow, &nw, &off);
		if (rc == BUDDY_OK)
			mu_take(tid, off, cfg->run, 0, true);
		lin_ret(op, mu_rc(rc), rc == BUDDY_OK ? off : 0);
		break;
	case 'f':
	case 'o': {
		if (S.nheld[tid] == 0)
			break;
		struct mu_block b = S.held[tid][0];
		if (c == 'o') {
			MC_ASSERT(!b.run);
			(void)mu_free(tid, &b,
				      b.order > 0 ? b.order - 1 : b.order + 1);
			break;
		}
		memmove(&S.held[tid][0], &S.held[tid][1],
			--S.nheld[tid] * sizeof(b));
		mu_untake(tid, &b);
		if (mu_free(tid, &b, b.order) != BUDDY_OK)
			mc_fail("thread %u: free of its block at %u refused",
				tid, b.at);
		S.last[tid] = b;
		S.freed[tid] = true;
		break;
	}
	case 'd':
		if (S.freed[tid])
			(void)mu_free(tid, &S.last[tid], S.last[tid].order);
		break;
	case 'r':
		mu_unit_op(U_RELEASE, BU_OP_RELEASE);
		break;
	case 'R':
		mu_unit_op(U_RESERVE, BU_OP_RESERVE);
		break;
	case 'c':
		mu_unit_op(U_RECLAIM, BU_OP_RECLAIM);
		break;
	default:
		MC_ASSERT(c >= '0' && c <= '4');
		mu_alloc(tid, (unsigned)(c - '0'));
	}
}

static void mu_thread(unsigned tid)
{
	const struct mu_cfg *cfg = mc_cfg();
	for (const char *p = cfg->script[tid]; p != NULL && *p; p++)
		mu_step_script(tid, *p);
}

/* ---- the specification: the reference unit ---- */

static void mu_model_init(void *st)
{
	memcpy(st, &S.r0, sizeof(S.r0));
}

static bool mu_model_apply(void *st, const struct lin_op *op)
{
	struct ref *r = st;
	unsigned off = 0;
	int rc;
	if (r->core) {
		rc = BU_NOT_LOWER;
	} else {
		switch (op->kind) {
		case U_ALLOC:
			rc = ref_alloc(r, (unsigned)op->arg[0], BU_FRAMES,
				       &off);
			break;
		case U_AT:
			rc = ref_alloc_at(r, (unsigned)op->arg[0],
					  (unsigned)op->arg[1]);
			break;
		case U_RUN:
			rc = ref_run(r, (unsigned)op->arg[0], &off);
			break;
		case U_FREE:
			rc = ref_free(r, (unsigned)op->arg[0],
				      (unsigned)op->arg[1]);
			break;
		case U_FREE_RUN:
			rc = ref_free_run(r, (unsigned)op->arg[0],
					  (unsigned)op->arg[1]);
			break;
		case U_RESERVE:
			rc = ref_reserve(r);
			break;
		case U_RELEASE:
			rc = ref_release(r);
			break;
		default:
			rc = ref_reclaim(r);
		}
	}
	return op->res[0] == (uint64_t)(unsigned)rc &&
	       op->res[1] == (rc == BUDDY_OK ? off : 0);
}

static bool mu_model_final(const void *st)
{
	/* Relaxed: at the end, every thread has ended. */
	return ref_encode(st) == lf_load_u64(&S.word, LF_RELAXED);
}

static const struct lin_model mu_model = {
	.size = sizeof(struct ref),
	.init = mu_model_init,
	.apply = mu_model_apply,
	.final = mu_model_final,
	.names = mu_names,
};
_Static_assert(sizeof(struct ref) <= LIN_MAX_STATE, "the model fits");

static void mu_check(void)
{
	/* Relaxed: every thread has ended. */
	uint64_t w = lf_load_u64(&S.word, LF_RELAXED);
	if (w != BU_CORE && !bu_valid(w))
		mc_fail("B1: the word %016llx is not well formed",
			(unsigned long long)w);
	lin_check(&S.h, &mu_model);
	mc_cover_add(&mu_cover, S.ev);
}

static bool mu_report(void)
{
	const struct mu_cfg *cfg = mc_cfg();
	return mc_cover_report(&mu_cover, cfg->need);
}

static void mu_where(const volatile void *addr, char *buf, size_t n)
{
	if ((uintptr_t)addr == (uintptr_t)&S.word)
		snprintf(buf, n, "unit word");
}

#define MU_TEST(id, nm, desc, nt, b, d, r, ...)                                \
	static const struct mu_cfg id##_cfg = { __VA_ARGS__ };                 \
	static const struct mc_test id = { MC_TEST_COMMON(nm, desc, nt, b, d,  \
							  r),                  \
					   .setup = mu_setup,                  \
					   .thread = mu_thread,                \
					   .check = mu_check,                  \
					   .where = mu_where,                  \
					   .report = mu_report,                \
					   .cfg = &id##_cfg };

/*
 * Allocations, a run, frees, a wrong-order free and a double free racing
 * on one reserved edge unit (frames 0 and 1 outside its region) whose frames
 * 8-31 are held: every frame handed out once, every refusal changes
 * nothing.
 */
MU_TEST(mu_unit, "buddy.unit", "allocs, frees, double and wrong-order frees", 3,
	3, 3, 20000, .lo = 2, .hi = BU_FRAMES, .res = true,
	.hold = { { 1, 8, 3 }, { 0, 16, 4 } }, .nhold = 2, .run = 3,
	.script = { "0ffd", "1ofd", "nf" }, .need = "do")
/*
 * An unreserved unit emptied by two frees at once while a third context
 * allocates and runs: the free that empties it writes 0 (the unit goes
 * back to the core in that CAS) and a later call sees word 0.
 */
MU_TEST(mu_empty, "buddy.unit_empty", "the last free gives the unit back", 3, 2,
	3, 20000, .lo = 0, .hi = BU_FRAMES, .res = false,
	.hold = { { 0, 0, 4 }, { 1, 16, 3 }, { 2, 24, 3 } }, .nhold = 3,
	.run = 3, .script = { "f", "f", "fn" }, .need = "zn")
/*
 * A reserved unit that its one block's free empties: reclaim and release
 * race with the free, an allocation and an alloc_at.
 */
MU_TEST(mu_reclaim, "buddy.unit_reclaim", "reclaim and release vs allocs", 2, 3,
	3, 20000, .lo = 0, .hi = BU_FRAMES, .res = true,
	.hold = { { 0, 4, 2 } }, .nhold = 1, .at = 8, .at_order = 3,
	.script = { "f0@", "cr" }, .need = "z")

const struct mc_test *const mc_tests_buddy_unit[] = { &mu_unit, &mu_empty,
						      &mu_reclaim, NULL };
