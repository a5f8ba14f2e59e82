/*
 * verify/preempt.h: deterministic single preemptions, for tests built with
 * LF_ATOMIC_INTERPOSE (the core sources compiled into the test, every
 * atomic operation and spin-wait routed through lf_atomic_interpose(),
 * which preempt.c implements).
 *
 * preempt_arm(n, fn, arg) makes the n-th interposed operation from then on
 * run fn(arg) just before it happens: as if the thread doing the operation
 * under test were preempted there and another thread ran fn to completion.
 * It runs on the same thread, nested, so the interleaving is exact and the
 * test is deterministic; sweeping n over every operation of a call checks
 * that call against one interfering operation at each of its atomic steps
 * (the model checker, verify/mc/, explores many threads and preemptions;
 * this is the one-preemption slice of it, cheap enough for every preset).
 *
 * While fn runs nothing else fires. fn may call preempt_nested_try(op, a):
 * op runs, but if it would spin-wait (lf_platform_pause()), the thread it
 * stands for would block behind the preempted one, so op is abandoned
 * there (longjmp) and preempt_nested_try returns false; so is an op that
 * runs on for 100,000 operations (retrying something only the preempted
 * thread can unblock). Only operations that have changed nothing when
 * they wait may be abandoned (read_lock, write_lock before its CAS, a
 * writer lock before it is taken).
 */
#ifndef LF_VERIFY_PREEMPT_H
#define LF_VERIFY_PREEMPT_H

#include <stdbool.h>

#ifndef LF_ATOMIC_INTERPOSE
#error "preempt.h: build this test with LF_ATOMIC_INTERPOSE"
#endif

/* Run fn(arg) before the n-th interposed operation from now (n >= 1). */
void preempt_arm(unsigned long n, void (*fn)(void *), void *arg);
/* Disarm; true if fn ran since the last preempt_arm(). */
bool preempt_disarm(void);
/* Interposed operations since the last preempt_arm() or preempt_count_reset().
 */
unsigned long preempt_count(void);
void preempt_count_reset(void);
/* Inside fn: run op(arg); false if it would have blocked (abandoned). */
bool preempt_nested_try(void (*op)(void *), void *arg);
/*
 * As preempt_nested_try(), but op is abandoned only at its spins + 1-th
 * spin-wait: a call that gives up by itself after a bounded number of
 * retries (returning an error while the preempted thread holds what it
 * waits for) returns, and the test sees what it returned.
 */
bool preempt_nested_try_spins(void (*op)(void *), void *arg,
			      unsigned long spins);

#endif
