/*
 * bench.h: the interface between the harness (threads, timing, repeats,
 * report; bench_harness.c), the programs built on it (bench_lockfree.c,
 * bench_buddy.c) and the implementations they time (bench_stack.c,
 * bench_epoch.c, bench_urcu_memb.c, bench_urcu_qsbr.c; bench_buddy_work.c).
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
 * flag between batches, so the flag costs one relaxed load per batch. A
 * run() may go on after the flag is up to finish work another thread hands
 * it (bench_buddy's cross workload: a consumer empties its ring); the
 * thread's time runs until run() returns, and the operations of every thread
 * are summed, so an operation may be counted by whichever thread ends it.
 *
 * Two costs per operation, both from each thread's own clocks over the same
 * interval (the barrier to the return of run()), summed over the threads
 * and divided by the operations summed:
 *   wall ns/op  CLOCK_MONOTONIC: the threads' elapsed time / ops
 *   cpu ns/op   CLOCK_THREAD_CPUTIME_ID: the threads' CPU time / ops
 * Both are the cost of one operation to the thread that does it, so both
 * stay flat across thread counts when an implementation scales perfectly,
 * and the two are equal when every thread has a CPU to itself and never
 * waits off it. They part when the thread is off its CPU: preempted by
 * other work on a loaded host, or blocked in the kernel (a futex, a
 * sleep), which wall time counts and CPU time does not. Spinning (a
 * spinlock, a CAS retry, a consumer polling its ring) is CPU time. So on a
 * shared, noisy machine cpu ns/op is the figure that survives (compare it
 * across thread counts: "CPU time per pair at 2 threads within 1.2x of 1
 * thread"), while throughput (ops per second, all threads: threads x 1e9 /
 * wall ns/op) needs wall time and a quiet machine. Note that neither is
 * the wall time of the run divided by the ops: at T threads that would be
 * wall ns/op / T.
 *
 * The load average (/proc/loadavg, 1, 5 and 15 min) is read at the start
 * and at the end of the program (printed, and in results for a report) and
 * after every point (the 1-minute figure, the CSV's load1 column): what
 * else the machine was doing.
 *
 * One program is one struct bench_prog: its implementations in the order of
 * the report, a header and an optional report after the table (bench_buddy
 * prints its targets there); main() calls bench_main().
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lf_atomic.h"
#include "lf_platform.h"

#define BENCH_BATCH 1024 /* operations between looks at the stop flag */
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
	const char *bench; /* the benchmark, e.g. "stack" or "repeat" */
	const char *impl;  /* the implementation, e.g. "lf_stack" */
	bool ours;         /* the one the others are divided by (one a bench) */
	/* NULL if it runs at this thread count in this build, else why not. */
	const char *(*skip)(unsigned nthreads);
	int (*setup)(unsigned nthreads);  /* main thread; 0 or -1 */
	void (*thread_init)(unsigned id); /* in the thread, before the run */
	/* The timed loop; returns the operations done. */
	uint64_t (*run)(unsigned id, const struct bench_stop *stop);
	void (*thread_fini)(unsigned id); /* in the thread, after the loop */
	int (*check)(void);               /* main thread, after the join */
};

/* A program on the harness. */
struct bench_results;
struct bench_prog {
	const char *name; /* "bench_lockfree": usage and messages */
	const struct bench_impl *const *impls; /* in the order of the report */
	unsigned nimpls;
	void (*header)(void); /* what one op is, after the common lines */
	/* After the table (NULL: nothing); may call bench_result(). */
	void (*report)(const struct bench_results *res);
	void (*fini)(void); /* at the very end (NULL: nothing) */
};

/*
 * Parse the options, run every point, write the CSV, print the table and
 * the report: returns 0, or 1 if a check failed (the exit status); exits 2
 * on bad usage.
 */
int bench_main(const struct bench_prog *prog, int argc, char **argv);

/*
 * True if a --only LIST (comma-separated items, each BENCH, BENCH/IMPL or
 * BENCH:IMPL) names this benchmark and implementation; a NULL list names
 * everything.
 */
bool bench_listed(const char *list, const char *bench, const char *impl);

/*
 * True if --only or --impls left some of the program's points out (a
 * report may then skip what needs every point).
 */
bool bench_partial(void);

/*
 * The median, min and max ns/op of one series, for a report; false if it
 * did not run (skipped, or that thread count was not asked for).
 */
bool bench_result(const struct bench_results *res, const char *bench,
		  const char *impl, unsigned nthreads, double *median,
		  double *min, double *max);

/* The same for CPU ns/op (the threads' CPU time / ops: above). */
bool bench_result_cpu(const struct bench_results *res, const char *bench,
		      const char *impl, unsigned nthreads, double *median,
		      double *min, double *max);

/*
 * The median over the repeats of a's ns/op (CPU ns/op if cpu) divided by
 * b's in the same repeat: a ratio within each repeat, whose points ran
 * back to back, so less exposed than a ratio of medians to a machine
 * whose speed moves between repeats. False if either did not run.
 */
bool bench_result_paired(const struct bench_results *res, const char *bench,
			 const char *impl_a, unsigned nthreads_a,
			 const char *impl_b, unsigned nthreads_b, bool cpu,
			 double *median);

/*
 * The load average (1, 5, 15 min) at the start and at the end of the run
 * of every point; false where /proc/loadavg could not be read (then -1s).
 */
bool bench_result_load(const struct bench_results *res, double start[3],
		       double end[3]);

/*
 * Helpers every benchmark program uses, on the harness or with a driver of
 * its own (bench_frag, bench_mem), so that options, CSV files and medians
 * mean the same everywhere:
 *
 * bench_num: the number in option opt's value s, in [lo, hi]; prints
 * "prog: opt: ..." and exits 2 on a missing, malformed or out-of-range
 * value.
 */
double bench_num(const char *prog, const char *opt, const char *s, double lo,
		 double hi);

/* Median of v[0..n) (1 <= n <= 1000), v left as it is; *min and *max
 * (either may be NULL) get the extremes. */
double bench_median(const double *v, unsigned n, double *min, double *max);

/*
 * The distribution-free 95% confidence interval of the median of v[0..n)
 * (no assumption on the distribution of the repeats): the order
 * statistics x(j) and x(n + 1 - j), j the largest with
 * P(Binomial(n, 1/2) < j) <= 0.025 (for 10 repeats x(2) and x(9), 97.9%
 * coverage). False when n < 6, too few repeats for one: then *lo and *hi
 * are the minimum and the maximum.
 */
bool bench_median_ci(const double *v, unsigned n, double *lo, double *hi);

/* Create the CSV file path with its header line; perror and exit 2 if it
 * cannot be created. */
FILE *bench_csv_create(const char *path, const char *header);

/*
 * /proc/loadavg's 1, 5 and 15 minute figures into la; false (and -1s) if it
 * cannot be read. Cheap (one small read): fine between points.
 */
static inline bool bench_loadavg(double la[3])
{
	FILE *f = fopen("/proc/loadavg", "r");
	int n = 0;

	la[0] = la[1] = la[2] = -1;
	if (f != NULL) {
		n = fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]);
		fclose(f);
	}
	if (n == 3)
		return true;
	la[0] = la[1] = la[2] = -1;
	return false;
}

/* Print "loadavg: 0.52 0.61 0.70 (1, 5, 15 min) at the <when>". */
static inline void bench_print_load(const char *when)
{
	double la[3];

	if (bench_loadavg(la))
		printf("loadavg: %.2f %.2f %.2f (1, 5, 15 min) at the %s\n",
		       la[0], la[1], la[2], when);
	else
		printf("loadavg: unknown (1, 5, 15 min) at the %s\n", when);
	fflush(stdout);
}

/* True when the run was asked for with --quick (a smoke test). */
bool bench_quick(void);

/* bench_lockfree's implementations, in the order of the report. */
extern const struct bench_impl bench_lf_stack;
extern const struct bench_impl bench_ck_stack_upmc;
extern const struct bench_impl bench_ck_stack_mpmc;
extern const struct bench_impl bench_lf_epoch;
extern const struct bench_impl bench_ck_epoch;
extern const struct bench_impl bench_urcu_memb;
extern const struct bench_impl bench_urcu_qsbr;
extern const struct bench_impl bench_lf_epoch_retire;
extern const struct bench_impl bench_ck_epoch_retire;
extern const struct bench_impl bench_lf_epoch_sync;
extern const struct bench_impl bench_lf_epoch_barrier;
extern const struct bench_impl bench_ck_epoch_sync;
extern const struct bench_impl bench_urcu_memb_sync;

/* A line for the report about how an implementation ran (or NULL). */
const char *bench_urcu_memb_note(void);

/* True in a ThreadSanitizer build. */
#if defined(__has_feature)
#define BENCH_HAS_FEATURE(f) __has_feature(f) /* clang */
#else
#define BENCH_HAS_FEATURE(f) 0
#endif
static inline bool bench_under_tsan(void)
{
#if defined(__SANITIZE_THREAD__) || BENCH_HAS_FEATURE(thread_sanitizer)
	return true;
#else
	return false;
#endif
}

/* True in an AddressSanitizer or ThreadSanitizer build. */
static inline bool bench_under_sanitizer(void)
{
#if defined(__SANITIZE_ADDRESS__) || BENCH_HAS_FEATURE(address_sanitizer)
	return true;
#else
	return bench_under_tsan();
#endif
}

#endif /* BENCH_H */
