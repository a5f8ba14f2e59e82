/*
 * coh_platform.c: what the code under test needs from its surroundings in
 * the coherence accounting mode: the platform shim (lockfree/lf_platform.h)
 * with the logical CPU as the CPU id (and platform_user.h's setter, which
 * bench_kmem calls), the pthread locks of coh_pthread.h,
 * and the few harness functions (bench.h) that the benchmarks' own files
 * call. Not instrumented: the accesses it records, it records explicitly.
 */
#include "coh_pthread.h"
#include "coh_sched.h"

#include "bench.h"
#include "lf_platform.h"
#include "platform_user.h"

#include <stdio.h>
#include <stdlib.h>

unsigned lf_platform_cpu_id(void)
{
	return coh_sched_cpu();
}

/*
 * bench_kmem's thread_init() names its thread's CPU, as a thread of the
 * timed run must (platform/user.c). Here the scheduler has already made
 * that logical CPU current (coh_point() in coh_main.c), so the two must
 * agree.
 */
void lf_platform_user_set_cpu(unsigned cpu)
{
	if (cpu != coh_sched_cpu())
		lf_platform_panic(__FILE__, __LINE__,
				  "set_cpu: not the current logical CPU");
}

_Noreturn void lf_platform_panic(const char *file, int line, const char *what)
{
	fprintf(stderr, "lfalloc panic: %s:%d: %s (logical cpu %u)\n", file,
		line, what, coh_sched_cpu());
	fflush(stderr);
	abort();
}

/*
 * The heavy barrier exists here, as membarrier does where the timed
 * benchmarks run, so the code takes the same paths as there. The scheduler
 * runs one logical CPU at a time, each access sequentially consistent, so
 * the ordering it promises holds trivially; its cost on hardware (an
 * interrupt to every CPU) is not a line transfer, so it is counted apart.
 */
bool lf_platform_heavy_barrier_init(void)
{
	return true;
}

/* Cheap as membarrier is where the timed benchmarks run (lf_platform.h):
 * the buddy's caches take the asymmetric path there, and so here. */
bool lf_platform_heavy_barrier_cheap(void)
{
	return true;
}

void lf_platform_heavy_barrier(void)
{
	if (coh_sched_running())
		coh_sched_heavy++;
}

/*
 * The code under test is built with LF_ATOMIC_INTERPOSE (lf_atomic.h), for
 * its spin-waits: lf_platform_pause() calls this with LF_OP_SPIN, which
 * costs the CPU a pause. Every other atomic operation is seen, and
 * counted, through the ThreadSanitizer entry points (coh_tsan.c), so it
 * is ignored here.
 */
void lf_atomic_interpose(const volatile void *addr, enum lf_atomic_op op,
			 lf_order order)
{
	(void)addr, (void)order;
	if (op == LF_OP_SPIN)
		coh_sched_pause();
}

/* A yield costs the simulated CPU a pause, as a spin-wait step does. */
void lf_platform_yield(void)
{
	lf_platform_pause();
}

/* ---- pthread locks (coh_pthread.h) ---- */

static volatile uint32_t *coh_lock_word(void *lock)
{
	return (volatile uint32_t *)lock;
}

/* Read the word, pausing, until none of busy_mask is set (a waiter). */
static void coh_lock_wait(volatile uint32_t *w, uint32_t busy_mask)
{
	for (;;) {
		coh_sched_access(w, sizeof(*w), COH_READ);
		if ((*w & busy_mask) == 0)
			return;
		coh_sched_pause();
	}
}

/* Compare-exchange *w from an idle value: true if it was idle. */
static bool coh_lock_try(volatile uint32_t *w, uint32_t busy_mask, uint32_t add)
{
	coh_sched_access(w, sizeof(*w), COH_RMW);
	if ((*w & busy_mask) != 0)
		return false;
	*w += add;
	return true;
}

/* Waits until no bit of busy_mask is set in the word, then adds add: a
 * mutex and a rwlock's writer take 0 to 1 (busy: any bit), a reader adds
 * 2 while no writer holds bit 0. */
static int coh_lock_take(volatile uint32_t *w, uint32_t busy_mask, uint32_t add)
{
	while (!coh_lock_try(w, busy_mask, add))
		coh_lock_wait(w, busy_mask);
	return 0;
}

int coh_pthread_mutex_lock(pthread_mutex_t *m)
{
	return coh_lock_take(coh_lock_word(m), ~(uint32_t)0, 1);
}

int coh_pthread_mutex_unlock(pthread_mutex_t *m)
{
	volatile uint32_t *w = coh_lock_word(m);

	coh_sched_access(w, sizeof(*w), COH_RMW);
	*w = 0;
	return 0;
}

int coh_pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
	return coh_lock_take(coh_lock_word(l), 1, 2);
}

int coh_pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
	return coh_lock_take(coh_lock_word(l), ~(uint32_t)0, 1);
}

int coh_pthread_rwlock_unlock(pthread_rwlock_t *l)
{
	volatile uint32_t *w = coh_lock_word(l);

	coh_sched_access(w, sizeof(*w), COH_RMW);
	if (*w & 1)
		*w = 0;
	else
		*w -= 2;
	return 0;
}

/* ---- the harness functions the benchmarks' files call (bench.h) ---- */

/*
 * Quick: bench_vas then runs its 10^3 and 10^4 sizes only. Its bigger trees
 * take seconds each to fill under the instrumentation, at every point, and
 * the traffic of an operation depends on the tree's depth only slightly.
 */
bool bench_quick(void)
{
	return true;
}

/*
 * Partial: this mode selects with its own --only (coh_main.c) and never
 * calls the programs' reports, the only readers of this answer.
 */
bool bench_partial(void)
{
	return false;
}

/*
 * No timed results exist in this mode: the programs' report functions,
 * which read them, are never called, and would find nothing.
 */
bool bench_result(const struct bench_results *res, const char *bench,
		  const char *impl, unsigned nthreads, double *median,
		  double *min, double *max)
{
	(void)res, (void)bench, (void)impl, (void)nthreads;
	*median = *min = *max = -1;
	return false;
}

bool bench_result_cpu(const struct bench_results *res, const char *bench,
		      const char *impl, unsigned nthreads, double *median,
		      double *min, double *max)
{
	return bench_result(res, bench, impl, nthreads, median, min, max);
}

bool bench_result_paired(const struct bench_results *res, const char *bench,
			 const char *impl_a, unsigned nthreads_a,
			 const char *impl_b, unsigned nthreads_b, bool cpu,
			 double *median)
{
	(void)res, (void)bench, (void)impl_a, (void)nthreads_a, (void)impl_b;
	(void)nthreads_b, (void)cpu;
	*median = -1;
	return false;
}

bool bench_result_load(const struct bench_results *res, double start[3],
		       double end[3])
{
	(void)res;
	for (int i = 0; i < 3; i++)
		start[i] = end[i] = -1;
	return false;
}
