/*
 * mc_self.c: self-tests of the model checker: small broken algorithms
 * that it must catch (ctest runs them with --expect-fail, which also
 * replays the schedule printed for the failure), and one correct one that
 * it must pass. A checker that passed everything would fail here.
 *
 *   self.counter   increment as load then store: a lost update
 *   self.lock      test-then-set lock (load, then store): two owners
 *   self.deadlock  two spin locks taken in opposite orders: livelock report
 *   self.ok        the same counter with fetch_add: must pass, exhaustively
 *   self.stale_mp  message passing read with a relaxed flag load: the data
 *                  load, named stale (mc.c, "Stale loads"), may come
 *                  before it and read the data's old value
 *   self.stale_mp_acq  the same with an acquire flag load: must pass
 * (self.stack_aba, the untagged stack, is in mc_stack.c.)
 */
#include <string.h>

#include "lf_atomic.h"
#include "lf_platform.h"
#include "mc.h"
#include "mc_tests.h"

static struct {
	lf_atomic_u32 counter;
	lf_atomic_u32 lock[2];
	unsigned inside;
	lf_atomic_u32 data, flag; /* self.stale_mp */
} S;

static void self_setup(void)
{
	memset(&S, 0, sizeof(S));
}

static void counter_thread(unsigned tid)
{
	(void)tid;
	for (int i = 0; i < 2; i++) {
		uint32_t v = lf_load_u32(&S.counter, LF_RELAXED);
		lf_store_u32(&S.counter, v + 1, LF_RELAXED);
	}
}

static void ok_thread(unsigned tid)
{
	(void)tid;
	for (int i = 0; i < 2; i++)
		lf_fetch_add_u32(&S.counter, 1, LF_RELAXED);
}

static void counter_check(void)
{
	uint32_t v = atomic_load_explicit(&S.counter.v, LF_RELAXED);
	if (v != 4)
		mc_fail("counter is %u after 4 increments", v);
}

/*
 * Test-then-set: check and set are two atomic operations. Broken on
 * purpose (the checker must find two owners), unlike the lock it looks
 * like in bench/bench_kmem.c.
 */
static void bad_lock(lf_atomic_u32 *l)
{
	while (lf_load_u32(l, LF_ACQUIRE) != 0)
		lf_platform_pause();
	lf_store_u32(l, 1, LF_RELAXED);
}

static void good_lock(lf_atomic_u32 *l)
{
	while (lf_xchg_u32(l, 1, LF_ACQUIRE) != 0)
		while (lf_load_u32(l, LF_RELAXED) != 0)
			lf_platform_pause();
}

static void unlock(lf_atomic_u32 *l)
{
	lf_store_u32(l, 0, LF_RELEASE);
}

static void lock_thread(unsigned tid)
{
	(void)tid;
	bad_lock(&S.lock[0]);
	if (S.inside++ != 0)
		mc_fail("two threads hold the lock");
	lf_load_u32(&S.counter, LF_RELAXED); /* a scheduling point inside */
	S.inside--;
	unlock(&S.lock[0]);
}

static void deadlock_thread(unsigned tid)
{
	good_lock(&S.lock[tid]);
	good_lock(&S.lock[1 - tid]);
	unlock(&S.lock[1 - tid]);
	unlock(&S.lock[tid]);
}

static void ok_check(void)
{
	uint32_t v = atomic_load_explicit(&S.counter.v, LF_RELAXED);
	if (v != 6)
		mc_fail("counter is %u after 6 increments", v);
}

static void no_check(void)
{
}

/*
 * self.stale_mp: thread 0 writes the data, then the flag with release;
 * thread 1 reads the flag, then the data. With the flag read relaxed the
 * data's load may be satisfied first (load-load reordering), and read 0
 * after the flag read 1; with acquire it may not.
 */
static void mp_thread(unsigned tid, lf_order flag_order)
{
	if (tid == 0) {
		/* Relaxed: ordered by the flag's release. */
		lf_store_u32(&S.data, 1, LF_RELAXED);
		/* Release: pairs with thread 1's flag load (when acquire). */
		lf_store_u32(&S.flag, 1, LF_RELEASE);
		return;
	}
	uint32_t f = lf_load_u32(&S.flag, flag_order);
	/* Acquire: as strong as a load gets short of seq_cst. */
	uint32_t d = lf_load_u32(&S.data, LF_ACQUIRE);
	if (f == 1 && d == 0)
		mc_fail("the flag read 1, the data 0");
}

static void mp_relaxed_thread(unsigned tid)
{
	mp_thread(tid, LF_RELAXED);
}

static void mp_acquire_thread(unsigned tid)
{
	mp_thread(tid, LF_ACQUIRE);
}

static unsigned mp_stale(const volatile void *addr)
{
	return addr == &S.data.v ? 4 : 0;
}

/*
 * A self-test: nt threads of thread, then check, bounded by b and d.
 * The other harnesses' *_TEST macros look alike because they fill
 * the same struct (MC_TEST_COMMON); each names its own hooks.
 */
#define SELF_TEST(id, nm, desc, nt, thr, chk, b, d, r)                         \
	static const struct mc_test id = {                                     \
		MC_TEST_COMMON(nm, desc, nt, b, d, r), .setup = self_setup,    \
		.thread = thr, .check = chk                                    \
	}

SELF_TEST(self_counter, "self.counter", "non-atomic increment: lost update", 2,
	  counter_thread, counter_check, 2, 2, 2000);
SELF_TEST(self_lock, "self.lock", "test-then-set lock: two owners", 2,
	  lock_thread, no_check, 2, 3, 2000);
SELF_TEST(self_deadlock, "self.deadlock", "locks in opposite orders: livelock",
	  2, deadlock_thread, no_check, 2, 2, 2000);
SELF_TEST(self_ok, "self.ok", "fetch_add counter: must pass", 3, ok_thread,
	  ok_check, 3, 2, 200);

static const struct mc_test self_stale_mp = {
	MC_TEST_COMMON("self.stale_mp",
		       "a relaxed flag load: the data load read stale", 2, 1, 2,
		       200),
	.setup = self_setup, .thread = mp_relaxed_thread, .check = no_check,
	.stale = mp_stale
};
static const struct mc_test self_stale_mp_acq = {
	MC_TEST_COMMON("self.stale_mp_acq",
		       "an acquire flag load: must pass, exhaustively", 2, 2, 2,
		       200),
	.setup = self_setup, .thread = mp_acquire_thread, .check = no_check,
	.stale = mp_stale
};

const struct mc_test *const mc_tests_self[] = {
	&self_counter, &self_lock,     &self_deadlock,
	&self_ok,      &self_stale_mp, &self_stale_mp_acq,
	NULL
};
