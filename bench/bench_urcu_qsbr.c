/*
 * bench_urcu_qsbr.c: the read-side benchmark for liburcu's urcu-qsbr flavour,
 * beside lf_epoch and ck_epoch in bench_epoch.c.
 *
 * In QSBR, rcu_read_lock() and rcu_read_unlock() compile to nothing (they
 * only assert, in debug builds): a reader instead reports a quiescent state
 * from time to time, and that is the cost it pays. For a fair count, one
 * operation here is rcu_read_lock() then rcu_read_unlock(), and every
 * BENCH_BATCH (1024) operations the thread calls rcu_quiescent_state();
 * the figure is that call's cost spread over 1024 sections. A real reader
 * would choose how often to report, trading read-side cost against grace
 * period length.
 *
 * Built with _LGPL_SOURCE (inline fast paths; LGPL-2.1 code inlined into
 * this benchmark program only).
 */
/*
 * The same harness as bench_urcu_memb.c for liburcu's QSBR flavour: the
 * flavours are separate APIs (their own header and symbols), so each has its
 * own file.
 */
#define _LGPL_SOURCE
#include <urcu/urcu-qsbr.h>

#include "bench.h"

#include <stdio.h>

static lf_atomic_u64 bench_qsbr_errors;

static const char *bench_qsbr_skip(unsigned nthreads)
{
	(void)nthreads;
	return NULL;
}

static int bench_qsbr_setup(unsigned nthreads)
{
	(void)nthreads;
	lf_init_u64(&bench_qsbr_errors, 0);
	return 0;
}

static void bench_qsbr_thread_init(unsigned id)
{
	(void)id;
	urcu_qsbr_register_thread(); /* registered threads start online */
}

static uint64_t bench_qsbr_run(unsigned id, const struct bench_stop *stop)
{
	uint64_t ops = 0;

	(void)id;
	do {
		for (unsigned i = 0; i < BENCH_BATCH; i++) {
			urcu_qsbr_read_lock();
			urcu_qsbr_read_unlock();
		}
		urcu_qsbr_quiescent_state();
		ops += BENCH_BATCH;
	} while (!bench_stopped(stop));
	/* Still online (in QSBR, "ongoing" means online). */
	if (!urcu_qsbr_read_ongoing())
		lf_fetch_add_u64(&bench_qsbr_errors, 1, LF_RELAXED);
	return ops;
}

static void bench_qsbr_thread_fini(unsigned id)
{
	(void)id;
	urcu_qsbr_unregister_thread();
}

static int bench_qsbr_check(void)
{
	/* Relaxed: the threads were joined. */
	if (lf_load_u64(&bench_qsbr_errors, LF_RELAXED) != 0) {
		fprintf(stderr, "urcu_qsbr: a thread went offline\n");
		return -1;
	}
	return 0;
}

/*
 * One struct bench_impl per implementation (bench.h): the tables share their
 * shape by design.
 */
const struct bench_impl bench_urcu_qsbr = {
	.bench = "epoch",
	.impl = "urcu_qsbr",
	.skip = bench_qsbr_skip,
	.setup = bench_qsbr_setup,
	.thread_init = bench_qsbr_thread_init,
	.run = bench_qsbr_run,
	.thread_fini = bench_qsbr_thread_fini,
	.check = bench_qsbr_check,
};
