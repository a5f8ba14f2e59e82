/*
 * verify/preempt.c: lf_atomic_interpose() for the single-preemption tests
 * (preempt.h). Single-threaded by design: the "other thread" runs nested.
 */
#include "preempt.h"

#include <setjmp.h>
#include <stddef.h>

#include "lf_atomic.h"

static unsigned long preempt_ops; /* interposed operations counted */
static unsigned long preempt_at;  /* fire at this count; 0: disarmed */
static void (*preempt_fn)(void *);
static void *preempt_arg;
static bool preempt_ran;
static bool preempt_inside;              /* fn is running */
static jmp_buf *preempt_escape;          /* where a blocked nested op goes */
static unsigned long preempt_nested_ops; /* of the nested op running */
static unsigned long preempt_spins_left; /* spin-waits it may still do */

/*
 * A nested operation this long is spinning without lf_platform_pause()
 * (retrying a CAS or a validation that cannot succeed until the preempted
 * thread moves): it is blocked as much as a spin-wait is.
 */
#define PREEMPT_NESTED_LIMIT 100000

void lf_atomic_interpose(const volatile void *addr, enum lf_atomic_op op,
			 lf_order order)
{
	(void)addr;
	(void)order;
	if (preempt_inside) {
		if (preempt_escape == NULL)
			return;
		if (op == LF_OP_SPIN && preempt_spins_left > 0) {
			preempt_spins_left--;
			return;
		}
		if (op == LF_OP_SPIN ||
		    ++preempt_nested_ops > PREEMPT_NESTED_LIMIT)
			longjmp(*preempt_escape, 1);
		return;
	}
	preempt_ops++;
	if (preempt_at == 0 || preempt_ops != preempt_at)
		return;
	preempt_at = 0;
	preempt_inside = true;
	preempt_fn(preempt_arg);
	preempt_inside = false;
	preempt_ran = true;
}

void preempt_arm(unsigned long n, void (*fn)(void *), void *arg)
{
	preempt_ops = 0;
	preempt_at = n;
	preempt_fn = fn;
	preempt_arg = arg;
	preempt_ran = false;
}

bool preempt_disarm(void)
{
	preempt_at = 0;
	return preempt_ran;
}

unsigned long preempt_count(void)
{
	return preempt_ops;
}

void preempt_count_reset(void)
{
	preempt_ops = 0;
}

bool preempt_nested_try(void (*op)(void *), void *arg)
{
	return preempt_nested_try_spins(op, arg, 0);
}

bool preempt_nested_try_spins(void (*op)(void *), void *arg,
			      unsigned long spins)
{
	jmp_buf env;
	jmp_buf *volatile saved = preempt_escape;
	if (setjmp(env) != 0) {
		preempt_escape = saved;
		return false;
	}
	preempt_escape = &env;
	preempt_nested_ops = 0;
	preempt_spins_left = spins;
	op(arg);
	preempt_escape = saved;
	return true;
}
