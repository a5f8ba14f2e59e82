/*
 * mc_epoch.c: epoch-based reclamation (lockfree/lf_epoch.c) under the model
 * checker.
 *
 * A shared slot points to an object; readers dereference it inside
 * sections, writers swap in a new object and retire the old one, whose
 * callback marks it freed. Thread scripts: r section (enter, load the slot,
 * load the object twice, exit), n nested section (the object is loaded in
 * the inner and again in the outer one), s swap and retire, y synchronize,
 * b barrier, p poll, a try_advance, u unregister (pending callbacks go to
 * the orphan list), g register again. A configuration runs the domain in
 * the asymmetric mode (the model's heavy barrier drains store buffers) or
 * the fenced one; either way the records' state and own words are
 * buffered locations (mc.c, "Store buffers"): an announcement is invisible
 * to the others until a fence or a heavy barrier drains it, as on real
 * hardware. Every execution checks:
 *   - E3 at every scheduling point: no access to an object whose callback
 *     has run (the monitor sees every atomic's address), and in the
 *     callback: the global epoch is at least the retire stamp + 2;
 *   - E1 at every scheduling point: the epoch only grows, by one at a time;
 *   - E2 at every scheduling point: while a record is in a section
 *     announced at epoch L, the global epoch is at most max(L, G) + 1,
 *     G the epoch when the announcement became visible. enter reads the
 *     epoch before it announces, so L may be stale (L < G); and an
 *     advancer whose scan passed the record just before the announcement
 *     may still move G to G + 1, so the bound L + 1 of docs/design.md
 *     holds only for a fresh L (found by this checker at bound 3; E3
 *     does not suffer: anything retired after the announcement is
 *     stamped G or later and waits for G + 2);
 *   - E6 when a barrier returns: every object whose retire had returned
 *     when the barrier was called has had its callback run, including
 *     one that a concurrent poll of another thread holds in its hands;
 *   - E4, E5 at the end: after a final barrier every retired object's
 *     callback ran exactly once, orphans included.
 * The monitor runs after each scheduling decision (mc.h), so a reader
 * paused before a load is checked against what was freed meanwhile.
 * Epoch reclamation has no sequential specification worth the name; these
 * invariants are its specification.
 */
#include <stddef.h>
#include <string.h>

#include "lf_epoch.h"
#include "mc.h"
#include "mc_tests.h"

#define NOBJ 8

struct mce_obj {
	struct lf_epoch_entry e;
	lf_atomic_u64 val;
	bool retired, freed;
	bool done; /* its retire() returned */
	unsigned runs;
};

struct mce_cfg {
	const char *script[MC_MAX_THREADS];
	uint32_t poll_every;
	enum lf_epoch_mode mode;
	/*
	 * retire()'s polls advance from this many stamped entries (E7); 0
	 * means 1, so that they advance whenever a bucket waits and the
	 * model explores advances from retire with few operations.
	 */
	uint64_t advance_at;
};

static struct {
	struct lf_epoch_domain d;
	struct lf_epoch_record rec[MC_MAX_THREADS + 1]; /* + the checker's */
	lf_atomic_ptr slot;
	struct mce_obj obj[NOBJ];
	unsigned next;
	uint64_t last_epoch;
	uint64_t g_at_enter[MC_MAX_THREADS];
	bool was_active[MC_MAX_THREADS];
} S;

static void mce_setup(void)
{
	const struct mce_cfg *cfg = mc_cfg();
	memset(&S, 0, sizeof(S));
	lf_epoch_domain_init_mode(&S.d, cfg->poll_every, cfg->mode);
	lf_epoch_domain_set_advance_at(&S.d, cfg->advance_at);
	MC_ASSERT(lf_epoch_domain_asymmetric(&S.d) ==
		  (cfg->mode == LF_EPOCH_AUTO));
	for (unsigned i = 0; i <= MC_MAX_THREADS; i++)
		MC_ASSERT(lf_epoch_register(&S.d, &S.rec[i]) == LF_EPOCH_OK);
	for (unsigned i = 0; i < NOBJ; i++)
		lf_init_u64(&S.obj[i].val, i);
	lf_init_ptr(&S.slot, &S.obj[0]);
	S.next = 1;
}

static uint64_t mce_epoch(void)
{
	return atomic_load_explicit(&S.d.epoch.v, LF_RELAXED);
}

/* E1, E2, E3 (use after free) before every atomic operation. */
static void mce_step(const volatile void *addr, enum lf_atomic_op op)
{
	(void)op;
	uintptr_t a = (uintptr_t)addr;
	for (unsigned i = 0; i < NOBJ; i++)
		if (S.obj[i].freed && a >= (uintptr_t)&S.obj[i] &&
		    a < (uintptr_t)(&S.obj[i] + 1))
			mc_fail("E3: object %u accessed after its callback", i);
	uint64_t g = mce_epoch();
	if (g < S.last_epoch || g > S.last_epoch + 1)
		mc_fail("E1: epoch went from %llu to %llu",
			(unsigned long long)S.last_epoch,
			(unsigned long long)g);
	S.last_epoch = g;
	for (unsigned t = 0; t < MC_MAX_THREADS; t++) {
		uint64_t s =
			atomic_load_explicit(&S.rec[t].state.v, LF_RELAXED);
		bool active = (s & LF_EPOCH_ACTIVE) != 0;
		if (active && !S.was_active[t])
			S.g_at_enter[t] = g;
		S.was_active[t] = active;
		uint64_t l = lf_epoch_state_epoch(s);
		uint64_t lim = (l > S.g_at_enter[t] ? l : S.g_at_enter[t]) + 1;
		if (active && g > lim)
			mc_fail("E2: epoch %llu while thread %u is in a "
				"section "
				"announced at %llu",
				(unsigned long long)g, t,
				(unsigned long long)l);
	}
}

/* The records' announcement and own words go through store buffers. */
static unsigned mce_buffered(const volatile void *addr)
{
	for (unsigned t = 0; t <= MC_MAX_THREADS; t++) {
		if (addr == &S.rec[t].state.v)
			return sizeof(S.rec[t].state.v);
		if (addr == &S.rec[t].own.v)
			return sizeof(S.rec[t].own.v);
	}
	return 0;
}

static void mce_free(struct lf_epoch_entry *e)
{
	struct mce_obj *o =
		(struct mce_obj *)((char *)e - offsetof(struct mce_obj, e));
	if (o->freed || !o->retired)
		mc_fail("E4: callback of object %ld ran twice or unretired",
			(long)(o - S.obj));
	if (mce_epoch() < e->epoch + 2)
		mc_fail("E3: callback at epoch %llu of an entry retired at "
			"%llu",
			(unsigned long long)mce_epoch(),
			(unsigned long long)e->epoch);
	o->freed = true;
	o->runs++;
}

static void mce_read(struct lf_epoch_record *r, bool nested)
{
	MC_ASSERT(lf_epoch_enter(r) == LF_EPOCH_OK);
	if (nested)
		MC_ASSERT(lf_epoch_enter(r) == LF_EPOCH_OK);
	/* Acquire: pairs with the exchange in mce_swap(). */
	struct mce_obj *o = lf_load_ptr(&S.slot, LF_ACQUIRE);
	lf_load_u64(&o->val, LF_RELAXED);
	if (nested)
		MC_ASSERT(lf_epoch_exit(r) == LF_EPOCH_OK);
	lf_load_u64(&o->val, LF_RELAXED);
	MC_ASSERT(lf_epoch_exit(r) == LF_EPOCH_OK);
}

static void mce_swap(struct lf_epoch_record *r)
{
	MC_ASSERT(S.next < NOBJ);
	struct mce_obj *n = &S.obj[S.next++];
	/* Acq_rel: publishes n, and takes the old object over. */
	struct mce_obj *old = lf_xchg_ptr(&S.slot, n, LF_ACQ_REL);
	old->retired = true;
	MC_ASSERT(lf_epoch_retire(r, &old->e, mce_free) == LF_EPOCH_OK);
	old->done = true;
}

/* E6: what was retired before the barrier has run when it returns. */
static void mce_barrier(struct lf_epoch_record *r)
{
	bool before[NOBJ];
	for (unsigned i = 0; i < NOBJ; i++)
		before[i] = S.obj[i].done;
	MC_ASSERT(lf_epoch_barrier(r) == LF_EPOCH_OK);
	for (unsigned i = 0; i < NOBJ; i++)
		if (before[i] && !S.obj[i].freed)
			mc_fail("E6: barrier returned before the callback of "
				"object %u, retired before it was called",
				i);
}

static void mce_thread(unsigned tid)
{
	const struct mce_cfg *cfg = mc_cfg();
	struct lf_epoch_record *r = &S.rec[tid];
	for (const char *p = cfg->script[tid]; *p; p++) {
		/*
		 * One letter per operation of this harness's scripts; the
		 * others' interpreters look alike (letters, not shared logic).
		 */
		switch (*p) {
		case 'r':
			mce_read(r, false);
			break;
		case 'n':
			mce_read(r, true);
			break;
		case 's':
			mce_swap(r);
			break;
		case 'y':
			MC_ASSERT(lf_epoch_synchronize(r) == 0);
			break;
		case 'b':
			mce_barrier(r);
			break;
		case 'p':
			MC_ASSERT(lf_epoch_poll(r) >= 0);
			break;
		case 'a':
			lf_epoch_try_advance(&S.d);
			break;
		case 'u':
			MC_ASSERT(lf_epoch_unregister(r) == 0);
			break;
		case 'g':
			MC_ASSERT(lf_epoch_register(&S.d, r) == 0);
			break;
		}
	}
}

static void mce_check(void)
{
	struct lf_epoch_record *r = &S.rec[MC_MAX_THREADS];
	MC_ASSERT(lf_epoch_barrier(r) == LF_EPOCH_OK);
	for (unsigned t = 0; t < MC_MAX_THREADS; t++)
		if (atomic_load_explicit(&S.rec[t].in_use.v, LF_RELAXED))
			MC_ASSERT(lf_epoch_barrier(&S.rec[t]) == LF_EPOCH_OK);
	for (unsigned i = 0; i < NOBJ; i++)
		if (S.obj[i].runs != (S.obj[i].retired ? 1u : 0u))
			mc_fail("E4/E5: object %u retired %d, callback ran %u "
				"times",
				i, S.obj[i].retired, S.obj[i].runs);
	struct lf_epoch_stats st;
	lf_epoch_stats(&S.d, &st);
	if (st.pending != 0 || st.active != 0)
		mc_fail("E5: %llu callbacks pending, %llu active at the end",
			(unsigned long long)st.pending,
			(unsigned long long)st.active);
}

/*
 * This harness's configurations: a struct mc_test (MC_TEST_COMMON) with
 * this harness's hooks. The other harnesses' *_TEST macros look alike
 * because they fill the same struct; each names its own functions.
 */
#define MCE_TEST_AT(id, nm, desc, nt, b, d, r, pe, mo, at, ...)                \
	static const struct mce_cfg id##_cfg = {                               \
		{ __VA_ARGS__ }, pe, mo, at                                    \
	};                                                                     \
	static const struct mc_test id = { MC_TEST_COMMON(nm, desc, nt, b, d,  \
							  r),                  \
					   .setup = mce_setup,                 \
					   .thread = mce_thread,               \
					   .check = mce_check,                 \
					   .step = mce_step,                   \
					   .buffered = mce_buffered,           \
					   .cfg = &id##_cfg };
#define MCE_TEST_MODE(id, nm, desc, nt, b, d, r, pe, mo, ...)                  \
	MCE_TEST_AT(id, nm, desc, nt, b, d, r, pe, mo, 0, __VA_ARGS__)
#define MCE_TEST(id, nm, desc, nt, b, d, r, pe, ...)                           \
	MCE_TEST_MODE(id, nm, desc, nt, b, d, r, pe, LF_EPOCH_AUTO, __VA_ARGS__)

MCE_TEST(mce_reader, "epoch.reader", "retire and barrier against readers", 3, 2,
	 3, 10000, 1, "rr", "sb", "n")
MCE_TEST(mce_advance, "epoch.advance",
	 "advance while a participant is inside; poll from retire", 3, 2, 3,
	 10000, 1, "n", "aaa", "sps")
MCE_TEST(mce_sync, "epoch.sync", "synchronize, then poll, vs readers", 3, 2, 3,
	 10000, 2, "r", "sysp", "r")
MCE_TEST(mce_unreg, "epoch.unregister",
	 "unregister with callbacks pending, orphans polled", 3, 2, 3, 10000, 4,
	 "sug", "r", "ppa")

MCE_TEST(mce_held, "epoch.held",
	 "barrier while another owner's poll holds ready callbacks (E6)", 2, 2,
	 3, 10000, 1, "sppp", "b")
MCE_TEST_MODE(mce_reader_f, "epoch.reader_fenced",
	      "epoch.reader in the fenced mode (seq_cst fence at enter)", 3, 2,
	      3, 10000, 1, LF_EPOCH_FENCED, "rr", "sb", "n")
MCE_TEST_MODE(mce_advance_f, "epoch.advance_fenced",
	      "epoch.advance in the fenced mode", 3, 2, 3, 10000, 1,
	      LF_EPOCH_FENCED, "n", "aaa", "sps")
MCE_TEST_MODE(mce_held_f, "epoch.held_fenced", "epoch.held in the fenced mode",
	      2, 2, 3, 10000, 1, LF_EPOCH_FENCED, "sppp", "b")
/*
 * E7's batches: retire()'s polls advance only from 2 stamped entries, so
 * the first retire's poll skips its advance and the next one makes it,
 * beside a reader and an advancer whose try_advance may find the epoch
 * moved while it scanned (and skips its heavy barrier).
 */
MCE_TEST_AT(mce_batch, "epoch.batch",
	    "retire's polls advance in batches of 2, beside a reader and an "
	    "advancer",
	    3, 2, 3, 10000, 1, LF_EPOCH_AUTO, 2, "n", "sss", "aa")

/*
 * An advance that another one served: the advancer (a) reads the epoch,
 * and the retire's poll (s, advance_at 1) may find it moved during its
 * own scan and give up without a heavy barrier. Taking the new epoch and
 * advancing it without one (mutant epoch-served-advances) misses the
 * reader (r) that entered after the first advancer's barrier, its
 * announcement still buffered: found at preemption bound 3.
 */
MCE_TEST_AT(mce_served, "epoch.served",
	    "an advancer whose scan sees the epoch moved, beside a reader and "
	    "a retire that advances",
	    3, 3, 3, 10000, 1, LF_EPOCH_AUTO, 1, "r", "s", "a")

const struct mc_test *const mc_tests_epoch[] = {
	&mce_reader,   &mce_advance,   &mce_sync,   &mce_unreg, &mce_held,
	&mce_reader_f, &mce_advance_f, &mce_held_f, &mce_batch, &mce_served,
	NULL
};
