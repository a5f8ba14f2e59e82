/*
 * bench_harness.c: the harness shared by bench_lockfree and bench_buddy
 * (bench.h): threads pinned to CPUs, a barrier, a stop flag, repeats
 * interleaved, medians with 95% confidence intervals, CSV, and a table with
 * each implementation's ratio to ours. See bench/README.md.
 *
 * For each point (implementation, thread count) it starts the threads, each
 * pinned to one of the CPUs this process may run on (round robin), lets
 * them meet at a barrier, runs them for a fixed time and counts what they
 * did. Each thread times itself, wall clock and its own CPU clock
 * (CLOCK_THREAD_CPUTIME_ID); wall ns/op and cpu ns/op are the threads' time
 * summed over the operations summed, i.e. what one operation costs the
 * thread that does it (equal across thread counts means perfect scaling;
 * bench.h says how the two differ). The points of one
 * repeat run back to back, implementations interleaved, so that drift in
 * the machine hits every implementation alike; the report gives the median
 * over the repeats with its distribution-free 95% confidence interval
 * (bench_median_ci; the minimum and maximum below 6 repeats), and each other
 * implementation's ratio to ours: of the medians, and paired (the median of
 * the ratios within one repeat), for wall and CPU time. The load average
 * is read at the start and the end (printed) and after each point (CSV).
 * A point with more threads than CPUs to pin
 * them to is marked "oversubscribed" in the table.
 *
 * Every implementation checks its data structure after each run (bench.h);
 * a failed check makes the program exit 1.
 *
 * Usage: PROG [--csv PATH] [--seconds S] [--repeats R] [--threads-max N]
 *             [--quick]
 */
#define _GNU_SOURCE
#include "bench.h"

#include "platform_user.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_REPEATS 1000
#define BENCH_MAX_COUNTS 16 /* thread counts in one run */
#define BENCH_IMPL_WIDTH 14 /* the impl column, at least */

struct bench_opts {
	const char *csv;
	double seconds;
	unsigned repeats;
	unsigned threads_max;
	const char *only;  /* --only LIST, or NULL: every benchmark */
	const char *impls; /* --impls LIST, or NULL: every implementation */
};

/* The results of one series (implementation, thread count). */
struct bench_series {
	const char *skipped; /* why it did not run, or NULL */
	double *ns;          /* wall ns/op of each repeat */
	double *cpu;         /* cpu ns/op of each repeat */
	unsigned n;
};

/* Every series: [k * ncounts + ci] for implementation k, count ci. */
struct bench_results {
	const struct bench_prog *prog;
	struct bench_series *s;
	double load_start[3], load_end[3]; /* /proc/loadavg, or -1s */
};

struct bench_worker {
	pthread_t tid;
	unsigned id;
	int cpu; /* -1: not pinned */
	const struct bench_impl *impl;
	pthread_barrier_t *barrier;
	const struct bench_stop *stop;
	uint64_t ops;
	uint64_t ns;     /* wall time, barrier to the return of run() */
	uint64_t cpu_ns; /* this thread's CPU time over the same */
} LF_CACHE_ALIGNED;

static const struct bench_prog *bench_prog;
static unsigned bench_counts[BENCH_MAX_COUNTS];
static unsigned bench_ncounts;
static int bench_cpus[CPU_SETSIZE];
static unsigned bench_ncpus;
static int bench_impl_width;
static lf_atomic_u32 bench_pin_warned;
static bool bench_quick_run;

static uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The calling thread's CPU time (user + system), ns. */
static uint64_t bench_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void bench_sleep(double seconds)
{
	struct timespec ts = {
		.tv_sec = (time_t)seconds,
		.tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9),
	};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: %s [--csv PATH] [--seconds S] "
		"[--repeats R] [--threads-max N] [--quick]\n"
		"  --csv PATH       write every run to PATH (CSV)\n"
		"  --seconds S      measured time per point (default 0.5)\n"
		"  --repeats R      runs per point; the report gives the "
		"median and its 95%% CI (default 10)\n"
		"  --threads-max N  thread counts 1, 2, 4, ... up to N "
		"(default 2)\n"
		"  --quick          0.01 s per point, for smoke tests\n"
		"  --only LIST      run only these, comma-separated: BENCH "
		"(every\n                   implementation of it) or "
		"BENCH/IMPL (BENCH:IMPL too)\n"
		"  --impls LIST     run only these implementations, "
		"comma-separated\n                   (with --only: both "
		"must name a point)\n",
		bench_prog->name);
}

double bench_num(const char *prog, const char *opt, const char *s, double lo,
		 double hi)
{
	char *end;
	double v;

	if (s == NULL) {
		fprintf(stderr, "%s: %s needs a value\n", prog, opt);
		exit(2);
	}
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
		fprintf(stderr, "%s: %s: '%s' is not in [%g, %g]\n", prog, opt,
			s, lo, hi);
		exit(2);
	}
	return v;
}

/* bench_num() for this program's options. */
static double bench_parse_num(const char *opt, const char *s, double lo,
			      double hi)
{
	return bench_num(bench_prog->name, opt, s, lo, hi);
}

static void bench_parse(int argc, char **argv, struct bench_opts *o)
{
	bool quick = false, seconds_set = false;

	*o = (struct bench_opts){ .seconds = 0.5,
				  .repeats = 10,
				  .threads_max = 2 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--csv") == 0 && v != NULL) {
			o->csv = v;
			i++;
		} else if (strcmp(a, "--seconds") == 0) {
			o->seconds = bench_parse_num(a, v, 0.001, 3600);
			seconds_set = true;
			i++;
		} else if (strcmp(a, "--repeats") == 0) {
			o->repeats = (unsigned)bench_parse_num(
				a, v, 1, BENCH_MAX_REPEATS);
			i++;
		} else if (strcmp(a, "--threads-max") == 0) {
			o->threads_max = (unsigned)bench_parse_num(
				a, v, 1, BENCH_MAX_THREADS);
			i++;
		} else if (strcmp(a, "--quick") == 0) {
			quick = true;
		} else if (strcmp(a, "--only") == 0 && v != NULL) {
			o->only = v;
			i++;
		} else if (strcmp(a, "--impls") == 0 && v != NULL) {
			o->impls = v;
			i++;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			bench_usage(stdout);
			exit(0);
		} else {
			fprintf(stderr, "%s: bad argument '%s'\n",
				bench_prog->name, a);
			bench_usage(stderr);
			exit(2);
		}
	}
	if (quick && !seconds_set)
		o->seconds = 0.01;
	bench_quick_run = quick;
}

/* Thread counts 1, 2, 4, ... below max, then max. */
static void bench_set_counts(unsigned max)
{
	bench_ncounts = 0;
	for (unsigned t = 1; t < max; t *= 2)
		bench_counts[bench_ncounts++] = t;
	bench_counts[bench_ncounts++] = max;
}

/* The CPUs this process may run on; the threads are pinned round robin. */
static void bench_find_cpus(void)
{
	cpu_set_t set;

	bench_ncpus = 0;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			bench_cpus[bench_ncpus++] = c;
}

static void bench_pin(int cpu)
{
	cpu_set_t set;
	int rc;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	/* Relaxed: only decides who prints the warning. */
	if (rc != 0 && lf_xchg_u32(&bench_pin_warned, 1, LF_RELAXED) == 0)
		fprintf(stderr,
			"%s: warning: cannot pin to CPU %d (%s); "
			"running unpinned\n",
			bench_prog->name, cpu, strerror(rc));
}

static void *bench_worker_main(void *p)
{
	struct bench_worker *w = p;
	uint64_t t0, c0;

	bench_pin(w->cpu);
	lf_platform_user_set_cpu(w->id);
	w->impl->thread_init(w->id);
	pthread_barrier_wait(w->barrier);
	t0 = bench_now_ns();
	c0 = bench_cpu_ns();
	w->ops = w->impl->run(w->id, w->stop);
	w->cpu_ns = bench_cpu_ns() - c0;
	w->ns = bench_now_ns() - t0;
	w->impl->thread_fini(w->id);
	return NULL;
}

/* Start the threads of one point; they wait on the barrier. */
static void bench_start(struct bench_worker *w, unsigned nthreads,
			const struct bench_impl *impl,
			pthread_barrier_t *barrier,
			const struct bench_stop *stop)
{
	for (unsigned i = 0; i < nthreads; i++) {
		w[i] = (struct bench_worker){
			.id = i,
			.cpu = bench_ncpus ? bench_cpus[i % bench_ncpus] : -1,
			.impl = impl,
			.barrier = barrier,
			.stop = stop,
		};
		int rc = pthread_create(&w[i].tid, NULL, bench_worker_main,
					&w[i]);
		if (rc != 0) {
			fprintf(stderr, "%s: pthread_create: %s\n",
				bench_prog->name, strerror(rc));
			exit(2);
		}
	}
}

/*
 * One run of one point: *ops operations in all, *secs the threads' mean
 * wall time, *cpu_secs their mean CPU time. Returns -1 if the
 * implementation's check failed.
 */
static int bench_point(const struct bench_impl *impl, unsigned nthreads,
		       double seconds, uint64_t *ops, double *secs,
		       double *cpu_secs)
{
	static struct bench_worker w[BENCH_MAX_THREADS];
	static struct bench_stop stop;
	pthread_barrier_t barrier;
	uint64_t ns = 0, cpu_ns = 0;

	*ops = 0;
	*secs = 0;
	*cpu_secs = 0;
	if (impl->setup(nthreads) != 0) {
		fprintf(stderr, "%s: setup failed\n", impl->impl);
		return -1;
	}
	/* Relaxed: pthread_create() orders it before the threads. */
	lf_store_u32(&stop.flag, 0, LF_RELAXED);
	pthread_barrier_init(&barrier, NULL, nthreads + 1);
	bench_start(w, nthreads, impl, &barrier, &stop);
	pthread_barrier_wait(&barrier);
	bench_sleep(seconds);
	lf_store_u32(&stop.flag, 1, LF_RELAXED); /* see bench_stopped() */
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(w[i].tid, NULL);
		*ops += w[i].ops;
		ns += w[i].ns;
		cpu_ns += w[i].cpu_ns;
	}
	pthread_barrier_destroy(&barrier);
	*secs = (double)ns / nthreads / 1e9;
	*cpu_secs = (double)cpu_ns / nthreads / 1e9;
	return impl->check();
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double bench_median(const double *v, unsigned n, double *min, double *max)
{
	double w[BENCH_MAX_REPEATS];

	if (n > BENCH_MAX_REPEATS) {
		fprintf(stderr, "bench_median: %u values, at most %d\n", n,
			BENCH_MAX_REPEATS);
		exit(2);
	}
	memcpy(w, v, n * sizeof(double));
	qsort(w, n, sizeof(double), bench_cmp_double);
	if (min != NULL)
		*min = w[0];
	if (max != NULL)
		*max = w[n - 1];
	if (n % 2)
		return w[n / 2];
	return (w[n / 2 - 1] + w[n / 2]) / 2;
}

bool bench_median_ci(const double *v, unsigned n, double *lo, double *hi)
{
	double w[BENCH_MAX_REPEATS], p, cum = 0;
	unsigned j = 0;

	(void)bench_median(v, n, lo, hi); /* checks n; min and max */
	if (n < 6)
		return false;
	/* p = C(n, i) / 2^n, from i = 0 up (2^-1000 is still a double). */
	p = 1;
	for (unsigned i = 0; i < n; i++)
		p /= 2;
	for (unsigned i = 0; i < n; i++) {
		cum += p;
		if (cum > 0.025)
			break;
		j = i + 1; /* P(X < j) = P(X <= i) <= 0.025 */
		p = p * (n - i) / (i + 1);
	}
	memcpy(w, v, n * sizeof(double));
	qsort(w, n, sizeof(double), bench_cmp_double);
	*lo = w[j - 1];
	*hi = w[n - j];
	return true;
}

static const char *bench_sanitizer(void)
{
	if (bench_under_tsan())
		return "ThreadSanitizer";
#if defined(__SANITIZE_ADDRESS__)
	return "AddressSanitizer";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return "AddressSanitizer";
#endif
#endif
	return "none";
}

/* "0.52 0.61 0.70", or "unknown" where /proc/loadavg is unreadable. */
static const char *bench_load_str(const double la[3], char *buf, size_t n)
{
	if (la[0] < 0)
		snprintf(buf, n, "unknown");
	else
		snprintf(buf, n, "%.2f %.2f %.2f", la[0], la[1], la[2]);
	return buf;
}

static void bench_header(const struct bench_opts *o, const double load[3])
{
	char buf[64];

	printf("%s: %.3g s per point, %u repeats, threads", bench_prog->name,
	       o->seconds, o->repeats);
	for (unsigned i = 0; i < bench_ncounts; i++)
		printf(" %u", bench_counts[i]);
	printf(", pinned round robin to CPUs");
	for (unsigned i = 0; i < bench_ncpus; i++)
		printf(" %d", bench_cpus[i]);
	printf("\ncompiler: %s; sanitizer: %s\n", __VERSION__,
	       bench_sanitizer());
	printf("loadavg: %s (1, 5, 15 min) at the start\n",
	       bench_load_str(load, buf, sizeof(buf)));
	printf("ns/op: the threads' time summed / operations summed (the "
	       "cost of one\n  operation to its thread; flat across thread "
	       "counts = perfect scaling);\n  wall: elapsed (CLOCK_MONOTONIC), "
	       "cpu: the thread's own CPU time\n  "
	       "(CLOCK_THREAD_CPUTIME_ID; wall > cpu: the thread was off its "
	       "CPU,\n  preempted or blocked)\n");
	bench_prog->header();
	printf("\n");
	fflush(stdout);
}

static const struct bench_impl *bench_impl_at(unsigned k)
{
	return bench_prog->impls[k];
}

static struct bench_series *bench_at(const struct bench_results *res,
				     unsigned k, unsigned ci)
{
	return &res->s[k * bench_ncounts + ci];
}

/* The series of our implementation of bench at count ci, or NULL. */
static const struct bench_series *bench_ours(const struct bench_results *res,
					     const char *bench, unsigned ci)
{
	for (unsigned k = 0; k < bench_prog->nimpls; k++) {
		const struct bench_series *s = bench_at(res, k, ci);
		if (bench_impl_at(k)->ours && s->skipped == NULL && s->n > 0 &&
		    strcmp(bench_impl_at(k)->bench, bench) == 0)
			return s;
	}
	return NULL;
}

/* The series of (bench, impl) at nthreads that ran, or NULL. */
static const struct bench_series *bench_find(const struct bench_results *res,
					     const char *bench,
					     const char *impl,
					     unsigned nthreads)
{
	for (unsigned k = 0; k < bench_prog->nimpls; k++) {
		const struct bench_impl *m = bench_impl_at(k);
		if (strcmp(m->bench, bench) != 0 || strcmp(m->impl, impl) != 0)
			continue;
		for (unsigned ci = 0; ci < bench_ncounts; ci++) {
			const struct bench_series *s = bench_at(res, k, ci);
			if (bench_counts[ci] != nthreads ||
			    s->skipped != NULL || s->n == 0)
				continue;
			return s;
		}
	}
	return NULL;
}

/* bench_result() (wall) and bench_result_cpu() (cpu). */
static bool bench_result_of(const struct bench_results *res, const char *bench,
			    const char *impl, unsigned nthreads, bool cpu,
			    double *median, double *min, double *max)
{
	const struct bench_series *s = bench_find(res, bench, impl, nthreads);

	if (s == NULL)
		return false;
	*median = bench_median(cpu ? s->cpu : s->ns, s->n, min, max);
	return true;
}

bool bench_result(const struct bench_results *res, const char *bench,
		  const char *impl, unsigned nthreads, double *median,
		  double *min, double *max)
{
	return bench_result_of(res, bench, impl, nthreads, false, median, min,
			       max);
}

bool bench_result_cpu(const struct bench_results *res, const char *bench,
		      const char *impl, unsigned nthreads, double *median,
		      double *min, double *max)
{
	return bench_result_of(res, bench, impl, nthreads, true, median, min,
			       max);
}

bool bench_result_paired(const struct bench_results *res, const char *bench,
			 const char *impl_a, unsigned nthreads_a,
			 const char *impl_b, unsigned nthreads_b, bool cpu,
			 double *median)
{
	const struct bench_series *a =
		bench_find(res, bench, impl_a, nthreads_a);
	const struct bench_series *b =
		bench_find(res, bench, impl_b, nthreads_b);
	double r[BENCH_MAX_REPEATS];
	unsigned n = 0;

	if (a == NULL || b == NULL)
		return false;
	for (unsigned i = 0; i < a->n && i < b->n; i++) {
		double x = cpu ? a->cpu[i] : a->ns[i];
		double y = cpu ? b->cpu[i] : b->ns[i];
		if (y > 0)
			r[n++] = x / y;
	}
	if (n == 0)
		return false;
	*median = bench_median(r, n, NULL, NULL);
	return true;
}

bool bench_result_load(const struct bench_results *res, double start[3],
		       double end[3])
{
	memcpy(start, res->load_start, sizeof(res->load_start));
	memcpy(end, res->load_end, sizeof(res->load_end));
	return start[0] >= 0 && end[0] >= 0;
}

/*
 * Print " X (paired Y)" for one clock: X is the ratio of the medians, Y
 * the median over the repeats of the ratio within one repeat, whose points
 * ran back to back (less exposed to drift in the machine between repeats).
 */
static void bench_ratio_of(const double *v, unsigned nv, const double *o,
			   unsigned no)
{
	double r[BENCH_MAX_REPEATS], lo, hi, med, ours_med;
	unsigned n = nv < no ? nv : no;

	med = bench_median(v, nv, &lo, &hi);
	ours_med = bench_median(o, no, &lo, &hi);
	for (unsigned i = 0; i < n; i++)
		r[i] = o[i] > 0 ? v[i] / o[i] : 0;
	printf(" %.3gx", ours_med > 0 ? med / ours_med : 0);
	if (n > 1)
		printf(" (paired %.3gx)", bench_median(r, n, &lo, &hi));
}

/* "base / ours = wall X (paired Y), cpu X' (paired Y')". */
static void bench_ratio(const char *impl, const struct bench_series *s,
			const char *ours_name, const struct bench_series *ours)
{
	printf("   %s / %s = wall", impl, ours_name);
	bench_ratio_of(s->ns, s->n, ours->ns, ours->n);
	printf(", cpu");
	bench_ratio_of(s->cpu, s->n, ours->cpu, ours->n);
}

static void bench_table_row(const struct bench_impl *impl, unsigned nthreads,
			    const struct bench_series *s, const char *ours_name,
			    const struct bench_series *ours)
{
	double lo, hi, med, clo, chi, cmed;
	int wd = bench_impl_width;

	if (s->skipped != NULL) {
		printf("%7u  %-*s  skipped: %s\n", nthreads, wd, impl->impl,
		       s->skipped);
		return;
	}
	med = bench_median(s->ns, s->n, NULL, NULL);
	cmed = bench_median(s->cpu, s->n, NULL, NULL);
	(void)bench_median_ci(s->ns, s->n, &lo, &hi);
	(void)bench_median_ci(s->cpu, s->n, &clo, &chi);
	printf("%7u  %-*s %9.3f %9.3f %9.3f  %9.3f %9.3f %9.3f", nthreads, wd,
	       impl->impl, med, lo, hi, cmed, clo, chi);
	if (!impl->ours && ours != NULL)
		bench_ratio(impl->impl, s, ours_name, ours);
	if (bench_ncpus > 0 && nthreads > bench_ncpus)
		printf("   oversubscribed");
	printf("\n");
}

/* Name of our implementation of bench. */
static const char *bench_ours_name(const char *bench)
{
	for (unsigned k = 0; k < bench_prog->nimpls; k++)
		if (bench_impl_at(k)->ours &&
		    strcmp(bench_impl_at(k)->bench, bench) == 0)
			return bench_impl_at(k)->impl;
	return "?";
}

/* The table of one benchmark: every implementation at every count. */
static void bench_table_bench(const struct bench_results *res, const char *b,
			      unsigned repeats)
{
	bool has_ci = repeats >= 6;

	printf("%s: ns/op, wall and cpu, median of %u (%s); ratio > 1: "
	       "the\n  baseline costs more; paired: median of the ratios "
	       "within one repeat\n",
	       b, repeats,
	       has_ci ? "its 95% confidence interval, distribution-free"
		      : "min, max: too few repeats for a 95% interval");
	printf("%7s  %-*s %9s %9s %9s  %9s %9s %9s\n", "threads",
	       bench_impl_width, "impl", "wall", has_ci ? "ci95 lo" : "min",
	       has_ci ? "ci95 hi" : "max", "cpu", has_ci ? "ci95 lo" : "min",
	       has_ci ? "ci95 hi" : "max");
	for (unsigned ci = 0; ci < bench_ncounts; ci++) {
		const struct bench_series *ours = bench_ours(res, b, ci);
		for (unsigned m = 0; m < bench_prog->nimpls; m++) {
			const struct bench_impl *impl = bench_impl_at(m);
			if (strcmp(impl->bench, b) != 0)
				continue;
			bench_table_row(impl, bench_counts[ci],
					bench_at(res, m, ci),
					bench_ours_name(b), ours);
		}
	}
	printf("\n");
}

static void bench_table(const struct bench_results *res, unsigned repeats)
{
	for (unsigned k = 0; k < bench_prog->nimpls; k++) {
		const char *b = bench_impl_at(k)->bench;
		bool seen = false;
		for (unsigned j = 0; j < k; j++)
			seen |= strcmp(bench_impl_at(j)->bench, b) == 0;
		if (!seen)
			bench_table_bench(res, b, repeats);
	}
}

#define BENCH_EMPTY_TRIES 20 /* runs of a point that did nothing, at most */

/* Run one point once, record and print it; -1 if its check failed. */
static int bench_run_one(const struct bench_impl *impl, unsigned nthreads,
			 unsigned r, const struct bench_opts *o,
			 struct bench_series *s, FILE *csv)
{
	uint64_t ops;
	double secs, cpu_secs, ns, cpu, load[3];
	int rc;
	/*
	 * A point that did no operation measured nothing (its threads got no
	 * CPU inside the window: a --quick point is 10 ms, and a loaded host
	 * can keep a thread off the CPU that long). Run it again; one still
	 * empty after BENCH_EMPTY_TRIES tries fails the check below.
	 */
	unsigned tries = 0;
	do
		rc = bench_point(impl, nthreads, o->seconds, &ops, &secs,
				 &cpu_secs);
	while (rc == 0 && ops == 0 && ++tries < BENCH_EMPTY_TRIES);

	ns = ops ? secs * nthreads * 1e9 / (double)ops : 0;
	cpu = ops ? cpu_secs * nthreads * 1e9 / (double)ops : 0;
	s->ns[s->n] = ns;
	s->cpu[s->n++] = cpu;
	if (csv != NULL) {
		bench_loadavg(load); /* -1 where it cannot be read */
		fprintf(csv, "%s,%s,%u,%u,%llu,%.6f,%.4f,%.6f,%.4f,%.2f\n",
			impl->bench, impl->impl, nthreads, r + 1,
			(unsigned long long)ops, secs, ns, cpu_secs, cpu,
			load[0]);
	}
	if (rc != 0 || ops == 0) {
		fprintf(stderr,
			"%s: CHECK FAILED: %s %s, %u threads, repeat "
			"%u\n",
			bench_prog->name, impl->bench, impl->impl, nthreads,
			r + 1);
		return -1;
	}
	return 0;
}

static int bench_run_all(const struct bench_opts *o,
			 const struct bench_results *res, FILE *csv)
{
	int failed = 0;

	for (unsigned r = 0; r < o->repeats; r++) {
		for (unsigned k = 0; k < bench_prog->nimpls; k++) {
			const struct bench_impl *impl = bench_impl_at(k);
			for (unsigned ci = 0; ci < bench_ncounts; ci++) {
				unsigned n = bench_counts[ci];
				struct bench_series *s = bench_at(res, k, ci);
				if (r == 0)
					s->skipped = impl->skip(n);
				if (s->skipped != NULL)
					continue;
				failed |= bench_run_one(impl, n, r, o, s, csv);
			}
		}
		fprintf(stderr, "%s: repeat %u/%u done\n", bench_prog->name,
			r + 1, o->repeats);
	}
	return failed;
}

bool bench_quick(void)
{
	return bench_quick_run;
}

static void bench_oom(void)
{
	fprintf(stderr, "%s: out of memory\n", bench_prog->name);
	exit(2);
}

/* One series per (implementation, thread count), room for every repeat. */
static void bench_alloc(struct bench_results *res, unsigned repeats)
{
	size_t n = bench_prog->nimpls * bench_ncounts;

	res->prog = bench_prog;
	res->s = calloc(n, sizeof(*res->s));
	if (res->s == NULL)
		bench_oom();
	for (size_t i = 0; i < n; i++) {
		res->s[i].ns = calloc(repeats, sizeof(double));
		res->s[i].cpu = calloc(repeats, sizeof(double));
		if (res->s[i].ns == NULL || res->s[i].cpu == NULL)
			bench_oom();
	}
}

static void bench_free(struct bench_results *res)
{
	for (size_t i = 0; i < bench_prog->nimpls * bench_ncounts; i++) {
		free(res->s[i].ns);
		free(res->s[i].cpu);
	}
	free(res->s);
}

/* Width of the impl column: the longest name, at least the default. */
static int bench_width(void)
{
	size_t w = BENCH_IMPL_WIDTH;

	for (unsigned k = 0; k < bench_prog->nimpls; k++)
		if (strlen(bench_impl_at(k)->impl) > w)
			w = strlen(bench_impl_at(k)->impl);
	return (int)w;
}

FILE *bench_csv_create(const char *path, const char *header)
{
	FILE *csv = fopen(path, "w");

	if (csv == NULL) {
		perror(path);
		exit(2);
	}
	fprintf(csv, "%s\n", header);
	return csv;
}

static FILE *bench_csv_open(const char *path)
{
	return bench_csv_create(path, "bench,impl,threads,repeat,ops,seconds,"
				      "ns_per_op,cpu_seconds,cpu_ns_per_op,"
				      "load1");
}

/*
 * True if the item of --only LIST that starts at item (and ends at ',' or
 * the end) names this benchmark, or this benchmark and implementation
 * (BENCH/IMPL or BENCH:IMPL). With bench NULL (an --impls LIST), the item
 * names the implementation alone.
 */
static bool bench_item_matches(const char *item, const char *bench,
			       const char *impl)
{
	size_t len = strcspn(item, ","), ni = strlen(impl), nb;

	if (bench == NULL)
		return len == ni && strncmp(item, impl, ni) == 0;
	nb = strlen(bench);
	if (len == nb)
		return strncmp(item, bench, nb) == 0;
	return len == nb + 1 + ni && strncmp(item, bench, nb) == 0 &&
	       (item[nb] == '/' || item[nb] == ':') &&
	       strncmp(item + nb + 1, impl, ni) == 0;
}

/* Does a comma-separated list name (bench, impl)? As bench_item_matches. */
static bool bench_list_names(const char *list, const char *bench,
			     const char *impl)
{
	for (const char *item = list;; item++) {
		if (bench_item_matches(item, bench, impl))
			return true;
		if ((item = strchr(item, ',')) == NULL)
			return false;
	}
}

bool bench_listed(const char *list, const char *bench, const char *impl)
{
	return list == NULL || bench_list_names(list, bench, impl);
}

static bool bench_partial_run;

bool bench_partial(void)
{
	return bench_partial_run;
}

/*
 * The program's implementations that --only and --impls select, in their
 * order; exits 2 if they select none (a misspelt name must not pass as a
 * run).
 */
static const struct bench_prog *bench_select(const struct bench_prog *prog,
					     const struct bench_opts *o)
{
	static struct bench_prog sel;
	const struct bench_impl **impls;

	if (o->only == NULL && o->impls == NULL)
		return prog;
	bench_partial_run = true;
	sel = *prog;
	impls = calloc(prog->nimpls, sizeof(*impls));
	if (impls == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog->name);
		exit(2);
	}
	sel.nimpls = 0;
	for (unsigned k = 0; k < prog->nimpls; k++) {
		const struct bench_impl *m = prog->impls[k];
		if (bench_listed(o->only, m->bench, m->impl) &&
		    (o->impls == NULL ||
		     bench_list_names(o->impls, NULL, m->impl)))
			impls[sel.nimpls++] = m;
	}
	if (sel.nimpls == 0) {
		fprintf(stderr, "%s: --only %s --impls %s selects nothing\n",
			prog->name, o->only ? o->only : "(all)",
			o->impls ? o->impls : "(all)");
		exit(2);
	}
	sel.impls = impls;
	return &sel;
}

int bench_main(const struct bench_prog *prog, int argc, char **argv)
{
	struct bench_opts o;
	struct bench_results res;
	FILE *csv = NULL;
	char lbuf[64];
	int failed;

	bench_prog = prog;
	bench_parse(argc, argv, &o);
	bench_prog = prog = bench_select(prog, &o);
	bench_impl_width = bench_width();
	bench_set_counts(o.threads_max);
	bench_find_cpus();
	if (o.csv != NULL)
		csv = bench_csv_open(o.csv);
	bench_alloc(&res, o.repeats);
	bench_loadavg(res.load_start);
	bench_header(&o, res.load_start);
	failed = bench_run_all(&o, &res, csv);
	bench_loadavg(res.load_end);
	if (csv != NULL && fclose(csv) != 0) {
		perror(o.csv);
		failed = 1;
	}
	printf("loadavg: %s (1, 5, 15 min) at the end\n\n",
	       bench_load_str(res.load_end, lbuf, sizeof(lbuf)));
	bench_table(&res, o.repeats);
	if (prog->report != NULL)
		prog->report(&res);
	bench_free(&res);
	if (prog->fini != NULL)
		prog->fini();
	if (failed)
		printf("%s: a check FAILED (see above)\n", prog->name);
	return failed ? 1 : 0;
}
