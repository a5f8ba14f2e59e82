#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sched.h>
#include "buddy.h"
static double cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}
int main(int argc, char **argv)
{
	int zones = atoi(argv[1]), reps = atoi(argv[2]);
	long n = atol(argv[3]);
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(0, &s);
	sched_setaffinity(0, sizeof s, &s);
	struct buddy_region rg = { 1ull << 30, 1ull << 30 };
	for (int zi = 0; zi < zones; zi++) {
		size_t sz = buddy_meta_size(&rg, 1, 2);
		void *m = aligned_alloc(64, (sz + 63) / 64 * 64);
		struct buddy_zone *z;
		if (buddy_zone_init(&z, m, sz, &rg, 1, 2)) {
			puts("init");
			return 1;
		}
		struct buddy_cpu *c = buddy_zone_cpu(z, 0);
		printf("zone %d meta %p:", zi, m);
		for (int r = 0; r < reps; r++) {
			uint64_t a;
			double t0 = cpu_ns();
			for (long i = 0; i < n; i++) {
				buddy_alloc(c, 0, &a);
				buddy_free(c, a, 0);
			}
			printf(" %.2f", (cpu_ns() - t0) / n);
		}
		printf("\n");
		free(m);
	}
}
