/*
 * coh_pingpong.c: bench_pingpong, the per-line latency that the coherence
 * accounting mode's estimate multiplies its counts by.
 *
 * Two threads, pinned to the first two CPUs the process may use, pass one
 * cache line back and forth: thread 0 waits until the counter is even and
 * adds one, thread 1 waits until it is odd and adds one (a load, then a
 * store). In the directory's terms (coh_dir.h; its unit test checks it)
 * each handoff is one transfer (the waiter's read pulls the line from the
 * last writer) and one upgrade (its write invalidates the other copy): two
 * coherence misses. So the line latency is the time per handoff / 2.
 *
 * A thread that is not running while its partner spins (a loaded or
 * virtual machine: this one has 2 vCPUs shared with other work) turns one
 * handoff into a scheduler time slice, milliseconds, so the time of a
 * whole repeat over its handoffs says more about the load than about the
 * caches. Thread 0 therefore reads the clock every PP_CHUNK handoffs, and
 * the figure is the median over those samples (all repeats): a sample is
 * slow only when a descheduling falls inside it, which the median ignores
 * as long as the two threads run together most of the time; the 10th and
 * 90th percentiles show the spread. The whole-repeat figures (wall, and
 * each thread's CPU time, which is near the wall time only when both ran
 * throughout) are printed too. Prints one line per repeat and the result;
 * --csv writes the repeats with the sample percentiles and the load.
 *
 * Usage: bench_pingpong [--csv PATH] [--repeats R] [--handoffs N]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PP_REPEATS 11
#define PP_HANDOFFS 200000
#define PP_MAX_REPEATS 101
#define PP_CHUNK 32 /* handoffs per clock sample */

struct pp_line {
	_Alignas(64) _Atomic uint64_t v; /* the counter passed around */
	char pad[64 - sizeof(uint64_t)];
};

static struct pp_line pp_line;
static int pp_cpu[2];
static uint64_t pp_handoffs;
static double *pp_sample; /* ns per handoff, PP_CHUNK at a time */
static uint64_t pp_nsample;

struct pp_thread {
	pthread_t th;
	unsigned id;
	double cpu_ns;
};

static double pp_clock(clockid_t c)
{
	struct timespec t;

	clock_gettime(c, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void *pp_main(void *p)
{
	struct pp_thread *t = p;
	cpu_set_t set;
	double c0;

	CPU_ZERO(&set);
	CPU_SET(pp_cpu[t->id], &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	c0 = pp_clock(CLOCK_THREAD_CPUTIME_ID);
	double last = pp_clock(CLOCK_MONOTONIC);
	for (uint64_t i = t->id; i < pp_handoffs; i += 2) {
		if (t->id == 0 && i % PP_CHUNK == 0 && i != 0) {
			double now = pp_clock(CLOCK_MONOTONIC);

			pp_sample[pp_nsample++] = (now - last) / PP_CHUNK;
			last = now;
		}
		/* Acquire: pairs with the partner's release store below. */
		while (atomic_load_explicit(&pp_line.v, memory_order_acquire) !=
		       i)
			;
		/* Release: pairs with the partner's acquire load above. */
		atomic_store_explicit(&pp_line.v, i + 1, memory_order_release);
	}
	t->cpu_ns = pp_clock(CLOCK_THREAD_CPUTIME_ID) - c0;
	return NULL;
}

static void pp_find_cpus(void)
{
	cpu_set_t set;
	int n = 0;

	pp_cpu[0] = pp_cpu[1] = 0;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return;
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &set))
			pp_cpu[n++] = c;
	if (n < 2)
		pp_cpu[1] = pp_cpu[0];
}

static int pp_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void pp_load(double la[3])
{
	FILE *f = fopen("/proc/loadavg", "r");

	la[0] = la[1] = la[2] = -1;
	if (f != NULL) {
		if (fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3)
			la[0] = la[1] = la[2] = -1;
		fclose(f);
	}
}

int main(int argc, char **argv)
{
	unsigned repeats = PP_REPEATS;
	const char *csv = NULL;
	double wall[PP_MAX_REPEATS], sorted[PP_MAX_REPEATS],
		cpu[PP_MAX_REPEATS];
	double la0[3], la1[3];
	FILE *f = NULL;

	pp_handoffs = PP_HANDOFFS;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--csv") == 0)
			csv = argv[i + 1];
		else if (strcmp(argv[i], "--repeats") == 0)
			repeats = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--handoffs") == 0)
			pp_handoffs = strtoull(argv[i + 1], NULL, 10);
		else
			break;
	}
	if (argc % 2 == 0 || repeats == 0 || repeats > PP_MAX_REPEATS ||
	    pp_handoffs < 2) {
		fprintf(stderr,
			"usage: bench_pingpong [--csv PATH] "
			"[--repeats 1-%d] [--handoffs N>=2]\n",
			PP_MAX_REPEATS);
		return 2;
	}
	pp_find_cpus();
	pp_sample = malloc(sizeof(*pp_sample) *
			   (repeats * (pp_handoffs / PP_CHUNK) + 1));
	if (pp_sample == NULL) {
		perror("malloc");
		return 1;
	}
	pp_load(la0);
	for (unsigned r = 0; r < repeats; r++) {
		struct pp_thread t[2] = { { .id = 0 }, { .id = 1 } };
		double w0;

		atomic_store_explicit(&pp_line.v, 0, memory_order_relaxed);
		w0 = pp_clock(CLOCK_MONOTONIC);
		for (int i = 0; i < 2; i++)
			if (pthread_create(&t[i].th, NULL, pp_main, &t[i])) {
				perror("pthread_create");
				return 1;
			}
		for (int i = 0; i < 2; i++)
			pthread_join(t[i].th, NULL);
		wall[r] =
			(pp_clock(CLOCK_MONOTONIC) - w0) / (double)pp_handoffs;
		cpu[r] = (t[0].cpu_ns + t[1].cpu_ns) / 2 / (double)pp_handoffs;
		sorted[r] = wall[r];
	}
	pp_load(la1);
	qsort(sorted, repeats, sizeof(sorted[0]), pp_cmp);
	if (pp_nsample == 0) {
		fprintf(stderr,
			"bench_pingpong: no sample (--handoffs below "
			"%d)\n",
			2 * PP_CHUNK);
		return 1;
	}
	qsort(pp_sample, pp_nsample, sizeof(pp_sample[0]), pp_cmp);
	double p10 = pp_sample[pp_nsample / 10];
	double p50 = pp_sample[pp_nsample / 2];
	double p90 = pp_sample[pp_nsample * 9 / 10];
	if (csv != NULL && (f = fopen(csv, "w")) == NULL) {
		perror(csv);
		return 1;
	}
	if (f != NULL)
		fprintf(f, "repeat,handoffs,cpu0,cpu1,wall_ns_per_handoff,"
			   "cpu_ns_per_handoff,sample_p10,sample_p50,"
			   "sample_p90,line_ns,load1_start,load1_end\n");
	for (unsigned r = 0; r < repeats; r++) {
		printf("repeat %2u: %8.1f ns a handoff (wall), %8.1f (cpu, "
		       "mean of the two threads)\n",
		       r, wall[r], cpu[r]);
		if (f != NULL)
			fprintf(f,
				"%u,%llu,%d,%d,%.2f,%.2f,%.2f,%.2f,%.2f,"
				"%.2f,%.2f,%.2f\n",
				r, (unsigned long long)pp_handoffs, pp_cpu[0],
				pp_cpu[1], wall[r], cpu[r], p10, p50, p90,
				p50 / 2, la0[0], la1[0]);
	}
	if (f != NULL && fclose(f) != 0) {
		perror(csv);
		return 1;
	}
	printf("cpus %d and %d, %llu handoffs x %u repeats; loadavg %.2f at "
	       "the start, %.2f at the end\n",
	       pp_cpu[0], pp_cpu[1], (unsigned long long)pp_handoffs, repeats,
	       la0[0], la1[0]);
	printf("whole repeats: fastest %.1f ns a handoff, median %.1f ns\n",
	       sorted[0], sorted[repeats / 2]);
	printf("samples of %d handoffs (%llu): p10 %.1f, median %.1f, p90 "
	       "%.1f ns a handoff\n",
	       PP_CHUNK, (unsigned long long)pp_nsample, p10, p50, p90);
	printf("line_ns %.2f (the median handoff / 2)\n", p50 / 2);
	free(pp_sample);
	return 0;
}
