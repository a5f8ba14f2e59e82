/*
 * bench.h: the interface between the harness of bench_lockfree (threads,
 * timing, repeats, report; bench_lockfree.c) and the implementations it
 * times (bench_stack.c, bench_epoch.c, bench_urcu_memb.c,
 * bench_urcu_qsbr.c).
 *
 * One implementation is one struct bench_impl. For every point (benchmark,
 * implementation, thread count, repeat) the harness calls setup() on the
 * main thread, starts the threads pinned to CPUs, and in each thread calls
 * thread_init(), waits on a barrier with the others, calls run() until the
 * stop flag is up, then thread_fini(). After the join it calls check(),
 * which must verify the data structure and return -1 if anything is wrong:
 * the program then exits non-zero.
 *
 * run() does its operation in batches of BENCH_BATCH and looks at the stop
 * flag between batches, so the flag costs one relaxed load per batch.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "lf_atomic.h"
#include "lf_platform.h"

#define BENCH_BATCH 1024      /* operations between looks at the stop flag */
#define BENCH_MAX_THREADS 64

/* Raised by the main thread when the measured time is over. */
struct bench_stop {
	lf_atomic_u32 flag; /* (a) 0 while running, 1 to stop */
} LF_CACHE_ALIGNED;

static inline bool bench_stopped(const struct bench_stop *stop)
{
	/*
	 * Relaxed: the flag carries no data; what a thread measured reaches
	 * the main thread through pthread_join().
	 */
	return lf_load_u32(&stop->flag, LF_RELAXED) != 0;
}

struct bench_impl {
	const char *bench; /* the benchmark: "stack" or "epoch" */
	const char *impl;  /* the implementation, e.g. "lf_stack" */
	bool ours;         /* the one the baselines are divided by */
	/* NULL if it runs at this thread count in this build, else why not. */
	const char *(*skip)(unsigned nthreads);
	int (*setup)(unsigned nthreads);  /* main thread; 0 or -1 */
	void (*thread_init)(unsigned id); /* in the thread, before the run */
	/* The timed loop; returns the operations done. */
	uint64_t (*run)(unsigned id, const struct bench_stop *stop);
	void (*thread_fini)(unsigned id); /* in the thread, after the loop */
	int (*check)(void);               /* main thread, after the join */
};

/* The implementations, in the order of the report. */
extern const struct bench_impl bench_lf_stack;
extern const struct bench_impl bench_ck_stack_upmc;
extern const struct bench_impl bench_ck_stack_mpmc;
extern const struct bench_impl bench_lf_epoch;
extern const struct bench_impl bench_ck_epoch;
extern const struct bench_impl bench_urcu_memb;
extern const struct bench_impl bench_urcu_qsbr;

/* A line for the report about how an implementation ran (or NULL). */
const char *bench_urcu_memb_note(void);

/* True in a ThreadSanitizer build. */
static inline bool bench_under_tsan(void)
{
#if defined(__SANITIZE_THREAD__)
	return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
	return true;
#else
	return false;
#endif
#else
	return false;
#endif
}

#endif /* BENCH_H */
