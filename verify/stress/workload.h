/*
 * workload.h: the concurrent workloads on the lockfree core. Each one runs
 * for a fixed time on N threads and checks its property as it goes; the
 * stress tests (verify/stress/stress_*.c) run them under every preset, and
 * `make demo` (demo/lf_demo.c) runs them on every core. One copy of each.
 */
#ifndef LF_WORKLOAD_H
#define LF_WORKLOAD_H

#include <stdint.h>

#define WL_MAX_THREADS 64

struct wl_config {
	unsigned threads; /* 1 .. WL_MAX_THREADS */
	unsigned ms;      /* how long to run */
	uint64_t seed;
	unsigned size; /* elements, objects or slots; 0 = the default */
};

struct wl_result {
	uint64_t ops[WL_MAX_THREADS]; /* operations done by each thread */
	uint64_t total;
	uint64_t violations; /* property failures seen; must be 0 */
	/* Workload-specific counters, named for the report. */
	const char *name[4];
	uint64_t value[4];
};

/*
 * Stack: threads pop, push, pop_n, push_chain and pop_all on one shared
 * stack of cfg->size elements; each element has an owner word that a pop
 * claims by CAS (a failed claim = handed out twice). At the end every
 * element is on the stack exactly once.
 */
int wl_stack_run(const struct wl_config *cfg, struct wl_result *res);

/*
 * Epoch: writers replace objects in shared slots and retire the old ones;
 * the callback poisons an object and returns it to a free pool (no
 * allocator); readers inside sections must never see poison. Some threads
 * nest sections, and unregister/recycle their records as they go. At the
 * end every object is in a slot or in the pool, and every retired object's
 * callback ran exactly once.
 */
int wl_epoch_run(const struct wl_config *cfg, struct wl_result *res);

/*
 * Version lock: writers keep two protected fields equal (and sometimes make
 * the lock obsolete and revive it); optimistic readers must never validate
 * a pair that differs.
 */
int wl_vlock_run(const struct wl_config *cfg, struct wl_result *res);

/* Helpers shared by the workloads (workload_common.c). */
typedef void (*wl_thread_fn)(unsigned id, void *arg);
void wl_run_threads(unsigned n, wl_thread_fn fn, void *arg);
uint64_t wl_now_ns(void);
static inline uint64_t wl_rand(uint64_t *s)
{
	/* xorshift64*: fast, good enough to pick operations. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}
void wl_report(const char *workload, const struct wl_config *cfg,
	       const struct wl_result *res);

#endif
