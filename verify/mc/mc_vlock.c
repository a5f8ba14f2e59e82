/*
 * mc_vlock.c: the optimistic version lock (lockfree/lf_vlock.h) under the
 * model checker.
 *
 * A lock guards two fields x and y that every write section sets equal.
 * Thread scripts: w write section (write_lock, x = y = k, unlock),
 * r optimistic read (read_lock, load x and y, validate), u increment
 * through upgrade (read_lock, load x, upgrade, x = y = x + 1, unlock),
 * o write section that ends obsolete, v revive it (by the thread that made
 * it obsolete) and write. Every execution checks:
 *   - V1 and V3 at every scheduling point: the word never decreases, and
 *     is never obsolete and locked at once;
 *   - V2 in each section: nobody else holds the lock;
 *   - V4 at each validated read: x == y;
 *   - linearizability against a register with an obsolete flag: a
 *     validated read returns the value of the last write, a failed
 *     read_lock means obsolete, a failed validation or upgrade is always
 *     allowed (and changes nothing).
 */
#include <string.h>

#include "lf_vlock.h"
#include "lin.h"
#include "mc.h"
#include "mc_tests.h"

enum { WRITE, READ, INC, OBS, REVIVE };
static const char *const mcv_names[] = { "write", "read", "inc", "obsolete",
					 "revive" };
#define R_RETRY 0xfff0ull /* validation or upgrade failed */
#define R_OBS 0xfff1ull   /* the lock was obsolete */

struct mcv_cfg {
	const char *script[MC_MAX_THREADS];
};

static struct {
	struct lf_vlock l;
	lf_atomic_u64 x, y;
	int holder;
	uint64_t last_word;
	struct lin_history h;
} S;

static void mcv_setup(void)
{
	memset(&S, 0, sizeof(S));
	lf_vlock_init(&S.l);
	lf_init_u64(&S.x, 0);
	lf_init_u64(&S.y, 0);
	S.holder = -1;
	lin_reset(&S.h);
}

static void mcv_step(const volatile void *addr, enum lf_atomic_op op)
{
	(void)addr;
	(void)op;
	uint64_t w = atomic_load_explicit(&S.l.word.v, LF_RELAXED);
	if (w < S.last_word)
		mc_fail("V1: word went from %llx to %llx",
			(unsigned long long)S.last_word, (unsigned long long)w);
	if (lf_vlock_word_locked(w) && lf_vlock_word_obsolete(w))
		mc_fail("V3: word %llx obsolete and locked",
			(unsigned long long)w);
	S.last_word = w;
}

static void mcv_enter(unsigned tid)
{
	if (S.holder != -1)
		mc_fail("V2: thread %u got the lock held by %d", tid, S.holder);
	S.holder = (int)tid;
}

/* Inside the section: set both fields, with a scheduling point between. */
static void mcv_set(unsigned tid, uint64_t k)
{
	lf_olc_store_u64(&S.x, k);
	lf_olc_store_u64(&S.y, k);
	if (S.holder != (int)tid)
		mc_fail("V2: thread %u lost the lock to %d", tid, S.holder);
}

/* Right after the unlock: no scheduling point since it took effect. */
static void mcv_leave(void)
{
	S.holder = -1;
}

static void mcv_write(unsigned tid, uint64_t k, bool obsolete)
{
	struct lin_op *op = lin_call(&S.h, obsolete ? OBS : WRITE, k, 0);
	if (lf_vlock_write_lock(&S.l) != LF_VLOCK_OK) {
		lin_ret(op, R_OBS, 0);
		return;
	}
	mcv_enter(tid);
	mcv_set(tid, k);
	if (obsolete)
		MC_ASSERT(lf_vlock_write_unlock_obsolete(&S.l) == LF_VLOCK_OK);
	else
		MC_ASSERT(lf_vlock_write_unlock(&S.l) == LF_VLOCK_OK);
	mcv_leave();
	lin_ret(op, 0, 0);
}

static void mcv_revive(unsigned tid, uint64_t k)
{
	struct lin_op *op = lin_call(&S.h, REVIVE, k, 0);
	MC_ASSERT(lf_vlock_revive_locked(&S.l) == LF_VLOCK_OK);
	mcv_enter(tid);
	mcv_set(tid, k);
	MC_ASSERT(lf_vlock_write_unlock(&S.l) == LF_VLOCK_OK);
	mcv_leave();
	lin_ret(op, 0, 0);
}

static void mcv_read(void)
{
	struct lin_op *op = lin_call(&S.h, READ, 0, 0);
	uint64_t v;
	if (!lf_vlock_read_lock(&S.l, &v)) {
		lin_ret(op, R_OBS, 0);
		return;
	}
	uint64_t x = lf_olc_load_u64(&S.x);
	uint64_t y = lf_olc_load_u64(&S.y);
	if (!lf_vlock_validate(&S.l, v)) {
		lin_ret(op, R_RETRY, 0);
		return;
	}
	if (x != y)
		mc_fail("V4: validated read saw x=%llu y=%llu",
			(unsigned long long)x, (unsigned long long)y);
	lin_ret(op, x, 0);
}

static void mcv_inc(unsigned tid)
{
	/*
	 * Opens like mcv_read() (a read_lock that may fail), then upgrades
	 * instead of validating.
	 */
	struct lin_op *op = lin_call(&S.h, INC, 0, 0);
	uint64_t v;
	if (!lf_vlock_read_lock(&S.l, &v)) {
		lin_ret(op, R_OBS, 0);
		return;
	}
	uint64_t x = lf_olc_load_u64(&S.x);
	if (!lf_vlock_upgrade(&S.l, v)) {
		lin_ret(op, R_RETRY, 0);
		return;
	}
	mcv_enter(tid);
	mcv_set(tid, x + 1);
	MC_ASSERT(lf_vlock_write_unlock(&S.l) == LF_VLOCK_OK);
	mcv_leave();
	lin_ret(op, x, 0);
}

static void mcv_thread(unsigned tid)
{
	const struct mcv_cfg *cfg = mc_cfg();
	uint64_t k = 100 * (tid + 1);
	for (const char *p = cfg->script[tid]; *p; p++, k++) {
		/*
		 * One letter per operation of this harness's scripts; the
		 * others' interpreters look alike (letters, not shared logic).
		 */
		switch (*p) {
		case 'w':
			mcv_write(tid, k, false);
			break;
		case 'o':
			mcv_write(tid, k, true);
			break;
		case 'v':
			mcv_revive(tid, k);
			break;
		case 'r':
			mcv_read();
			break;
		case 'u':
			mcv_inc(tid);
			break;
		}
	}
}

struct mcv_model {
	uint64_t val;
	bool obsolete;
};

static void mcv_model_init(void *st)
{
	*(struct mcv_model *)st = (struct mcv_model){ 0, false };
}

static bool mcv_model_apply(void *st, const struct lin_op *op)
{
	struct mcv_model *m = st;
	uint64_t r = op->res[0];
	if (r == R_RETRY)
		return true;
	if (r == R_OBS)
		return m->obsolete;
	switch (op->kind) {
	case WRITE:
	case OBS:
		if (m->obsolete)
			return false;
		m->val = op->arg[0];
		m->obsolete = op->kind == OBS;
		return true;
	case REVIVE:
		if (!m->obsolete)
			return false;
		m->val = op->arg[0];
		m->obsolete = false;
		return true;
	case READ:
		return !m->obsolete && r == m->val;
	case INC:
		if (m->obsolete || r != m->val)
			return false;
		m->val++;
		return true;
	}
	return false;
}

static bool mcv_model_final(const void *st)
{
	const struct mcv_model *m = st;
	uint64_t w = atomic_load_explicit(&S.l.word.v, LF_RELAXED);
	return m->val == atomic_load_explicit(&S.x.v, LF_RELAXED) &&
	       m->obsolete == lf_vlock_word_obsolete(w) &&
	       !lf_vlock_word_locked(w);
}

/*
 * A struct lin_model per harness (lin.h), each with its own sequential
 * specification.
 */
static const struct lin_model mcv_model = {
	.size = sizeof(struct mcv_model),
	.init = mcv_model_init,
	.apply = mcv_model_apply,
	.final = mcv_model_final,
	.names = mcv_names,
};

static void mcv_check(void)
{
	lin_check(&S.h, &mcv_model);
}

/*
 * This harness's configurations: a struct mc_test (MC_TEST_COMMON) with
 * this harness's hooks. The other harnesses' *_TEST macros look alike
 * because they fill the same struct; each names its own functions.
 */
#define MCV_TEST(id, nm, desc, nt, b, d, r, ...)                               \
	static const struct mcv_cfg id##_cfg = { { __VA_ARGS__ } };            \
	static const struct mc_test id = { MC_TEST_COMMON(nm, desc, nt, b, d,  \
							  r),                  \
					   .setup = mcv_setup,                 \
					   .thread = mcv_thread,               \
					   .check = mcv_check,                 \
					   .step = mcv_step,                   \
					   .cfg = &id##_cfg };

MCV_TEST(mcv_rw, "vlock.rw", "writers, readers and an upgrader", 3, 2, 3, 10000,
	 "ww", "rr", "ur")
MCV_TEST(mcv_up, "vlock.upgrade", "two upgraders and a reader", 3, 3, 3, 10000,
	 "uu", "ur", "rr")
MCV_TEST(mcv_obs, "vlock.obsolete", "obsolete, revive vs readers, writer", 3, 2,
	 3, 10000, "ov", "rw", "ru")

const struct mc_test *const mc_tests_vlock[] = { &mcv_rw, &mcv_up, &mcv_obs,
						 NULL };
