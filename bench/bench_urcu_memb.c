/*
 * bench_urcu_memb.c: the read-side benchmark for liburcu's urcu-memb flavour
 * (one operation: rcu_read_lock() then rcu_read_unlock(), an empty section
 * on a registered thread), beside lf_epoch and ck_epoch in bench_epoch.c.
 *
 * Built with _LGPL_SOURCE, so the read side is liburcu's inline fast path
 * (as liburcu recommends for speed) rather than a call into the library;
 * that inlines LGPL-2.1 code into this benchmark program only.
 *
 * urcu-memb moves the cost of ordering to the updater: when the kernel has
 * the membarrier system call, synchronize_rcu() makes every reader CPU
 * execute a barrier, and the read side needs only compiler barriers around
 * a thread-local counter update. Where membarrier is missing (some
 * containers filter it) liburcu falls back to full fences on the read side;
 * bench_urcu_memb_note() says which one ran. No updater runs here.
 */
#define _LGPL_SOURCE
#include <urcu/urcu-memb.h>

#include "bench.h"

#include <stdio.h>

static lf_atomic_u64 bench_memb_errors;

static const char *bench_memb_skip(unsigned nthreads)
{
	(void)nthreads;
	return NULL;
}

static int bench_memb_setup(unsigned nthreads)
{
	(void)nthreads;
	lf_init_u64(&bench_memb_errors, 0);
	return 0;
}

static void bench_memb_thread_init(unsigned id)
{
	(void)id;
	urcu_memb_register_thread();
}

static uint64_t bench_memb_run(unsigned id, const struct bench_stop *stop)
{
	uint64_t ops = 0;

	(void)id;
	do {
		for (unsigned i = 0; i < BENCH_BATCH; i++) {
			urcu_memb_read_lock();
			urcu_memb_read_unlock();
		}
		ops += BENCH_BATCH;
	} while (!bench_stopped(stop));
	/* Every section was closed: the nesting count is back to 0. */
	if (urcu_memb_read_ongoing())
		lf_fetch_add_u64(&bench_memb_errors, 1, LF_RELAXED);
	return ops;
}

static void bench_memb_thread_fini(unsigned id)
{
	(void)id;
	urcu_memb_unregister_thread();
}

static int bench_memb_check(void)
{
	/* Relaxed: the threads were joined. */
	if (lf_load_u64(&bench_memb_errors, LF_RELAXED) != 0) {
		fprintf(stderr, "urcu_memb: a read-side section was left "
				"open\n");
		return -1;
	}
	return 0;
}

const char *bench_urcu_memb_note(void)
{
	return urcu_memb_has_sys_membarrier
		       ? "urcu_memb: membarrier available: the read side uses "
			 "compiler barriers only"
		       : "urcu_memb: membarrier NOT available: the read side "
			 "falls back to full fences";
}

/*
 * One struct bench_impl per implementation (bench.h): the tables share their
 * shape by design.
 */
const struct bench_impl bench_urcu_memb = {
	.bench = "epoch",
	.impl = "urcu_memb",
	.skip = bench_memb_skip,
	.setup = bench_memb_setup,
	.thread_init = bench_memb_thread_init,
	.run = bench_memb_run,
	.thread_fini = bench_memb_thread_fini,
	.check = bench_memb_check,
};

/*
 * epoch_sync: one op = synchronize_rcu() on an idle flavour (bench_epoch.c);
 * its loop and table have the shape of bench_epoch.c's wait series: one
 * struct bench_impl per implementation, no indirect call in a timed loop.
 */
static uint64_t bench_memb_sync_run(unsigned id, const struct bench_stop *stop)
{
	uint64_t ops = 0;

	(void)id;
	do {
		for (unsigned i = 0; i < 64; i++)
			urcu_memb_synchronize_rcu();
		ops += 64;
	} while (!bench_stopped(stop));
	return ops;
}

const struct bench_impl bench_urcu_memb_sync = {
	.bench = "epoch_sync",
	.impl = "urcu_memb_sync",
	.skip = bench_memb_skip,
	.setup = bench_memb_setup,
	.thread_init = bench_memb_thread_init,
	.run = bench_memb_sync_run,
	.thread_fini = bench_memb_thread_fini,
	.check = bench_memb_check,
};
