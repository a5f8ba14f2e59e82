/* workload_common.c: threads, time and the report shared by the workloads. */
#include "workload.h"

#include "platform_user.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct wl_thread {
	pthread_t tid;
	unsigned id;
	wl_thread_fn fn;
	void *arg;
};

static void *wl_thread_main(void *p)
{
	struct wl_thread *t = p;
	lf_platform_user_set_cpu(t->id);
	t->fn(t->id, t->arg);
	return NULL;
}

void wl_run_threads(unsigned n, wl_thread_fn fn, void *arg)
{
	struct wl_thread t[WL_MAX_THREADS];
	if (n == 0 || n > WL_MAX_THREADS) {
		fprintf(stderr, "workload: %u threads is out of range\n", n);
		exit(2);
	}
	for (unsigned i = 0; i < n; i++) {
		t[i] = (struct wl_thread){ .id = i, .fn = fn, .arg = arg };
		if (pthread_create(&t[i].tid, NULL, wl_thread_main, &t[i]) !=
		    0) {
			perror("pthread_create");
			exit(2);
		}
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i].tid, NULL);
}

uint64_t wl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void wl_report(const char *workload, const struct wl_config *cfg,
	       const struct wl_result *res)
{
	printf("%-6s %u threads, %u ms: %llu operations (%.2f M/s), "
	       "%llu violations\n",
	       workload, cfg->threads, cfg->ms, (unsigned long long)res->total,
	       cfg->ms ? (double)res->total / cfg->ms / 1000.0 : 0.0,
	       (unsigned long long)res->violations);
	printf("       per thread:");
	for (unsigned i = 0; i < cfg->threads; i++)
		printf(" %llu", (unsigned long long)res->ops[i]);
	printf("\n");
	for (int i = 0; i < 4; i++)
		if (res->name[i] != NULL)
			printf("       %s: %llu\n", res->name[i],
			       (unsigned long long)res->value[i]);
}
