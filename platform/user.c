/*
 * platform/user.c: the lf_platform.h shim for userspace (tests, benchmarks,
 * the demonstration). Hosted: this file may use libc; the core may not.
 *
 * The "CPU id" of a thread is the participant number it was given with
 * lf_platform_user_set_cpu(); threads that never set one report 0.
 */
#include "lf_platform.h"
#include "platform_user.h"

#include <stdio.h>
#include <stdlib.h>

#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define LF_USER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LF_USER_TSAN 1
#endif
#endif

static _Thread_local unsigned lf_user_cpu;

unsigned lf_platform_cpu_id(void)
{
	return lf_user_cpu;
}

void lf_platform_user_set_cpu(unsigned cpu)
{
	lf_user_cpu = cpu;
}

_Noreturn void lf_platform_panic(const char *file, int line, const char *what)
{
	fprintf(stderr, "lfalloc panic: %s:%d: %s (cpu %u)\n", file, line, what,
		lf_user_cpu);
	fflush(stderr);
	abort();
}

/*
 * The heavy barrier is membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): an IPI
 * to every CPU running a thread of this process, each of which executes a
 * full barrier (threads not running pass through one when switched out).
 * It needs a registration per process, done once here. ThreadSanitizer
 * cannot see the ordering it provides, so a TSan build has none and the
 * core uses symmetric (seq_cst) ordering there, which TSan checks.
 * LF_NO_HEAVY_BARRIER in the environment turns it off too, so that a test
 * or benchmark can run the symmetric fallback of an optimized build.
 * State: 0 unknown, 1 available, 2 unavailable.
 */
#ifndef LF_USER_TSAN
static _Atomic int lf_user_heavy;
#endif

bool lf_platform_heavy_barrier_init(void)
{
#ifdef LF_USER_TSAN
	return false;
#else
	int st = atomic_load_explicit(&lf_user_heavy, memory_order_acquire);
	if (st != 0)
		return st == 1;
	st = 2;
	if (getenv("LF_NO_HEAVY_BARRIER") == NULL) {
		long q = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
		if (q > 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
		    syscall(__NR_membarrier,
			    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
			    0) == 0)
			st = 1;
	}
	/* Release: pairs with the acquire above in a later call. */
	atomic_store_explicit(&lf_user_heavy, st, memory_order_release);
	return st == 1;
#endif
}

bool lf_platform_heavy_barrier_cheap(void)
{
	return true; /* one system call; the kernel sends the IPIs */
}

void lf_platform_heavy_barrier(void)
{
	/*
	 * Only called after lf_platform_heavy_barrier_init() returned true;
	 * a failure then is a broken platform, not bad input.
	 */
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0))
		lf_platform_panic(__FILE__, __LINE__, "membarrier failed");
}

void lf_platform_yield(void)
{
	sched_yield();
}

/* A process has no interrupts to turn off: lf_spin.h's irqsave is a lock. */
lf_irqflags lf_platform_irq_save(void)
{
	return 0;
}

void lf_platform_irq_restore(lf_irqflags flags)
{
	(void)flags;
}
