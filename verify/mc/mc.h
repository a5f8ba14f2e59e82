/*
 * mc.h: a controlled scheduler for systematic exploration of thread
 * interleavings (stateless model checking in the manner of CHESS,
 * Musuvathi et al., OSDI 2008, and of Loom and Shuttle), built into the
 * project so it needs no external tool.
 *
 * The code under test is the unchanged core compiled with
 * LF_ATOMIC_INTERPOSE: every atomic operation and every spin-wait
 * (lf_platform_pause) first calls lf_atomic_interpose(), which is a
 * scheduling point here. The threads of a test are coroutines on one OS
 * thread (ucontext), so exactly one runs at a time, a scheduling point that
 * does not switch costs a few nanoseconds, and every execution is a
 * sequentially consistent interleaving of the atomic operations (weak-memory
 * reorderings are out of reach: see README.md).
 *
 * Each execution starts from a fresh state (setup), runs the threads under
 * the scheduler's choices, then checks (check). Search modes:
 *
 *   MC_DFS     every schedule with at most `bound` preemptions (a switch
 *              away from a thread that could have gone on), depth first;
 *              reports whether the bounded search was exhaustive.
 *   MC_PCT     randomized priority scheduling with d - 1 priority change
 *              points (Burckhardt et al., ASPLOS 2010), `runs` executions
 *              from `seed`.
 *   MC_REPLAY  one execution following a schedule string printed by a
 *              failing run.
 *
 * Spin-waits. A thread at LF_OP_SPIN gives the turn away for free (not a
 * preemption); it is then "parked" until another thread changes one of the
 * locations it read since its previous spin, so a spin loop costs one
 * iteration per change of what it waits on, not one per scheduling point.
 * If every live thread is parked, nothing can ever change: a livelock (or
 * deadlock), reported as a failure. An execution longer than max_steps
 * scheduling points is reported too (a loop that never spins).
 *
 * A failing execution prints its schedule: the thread chosen at each
 * scheduling point that had a choice, run-length encoded ("0*12.1*3.0");
 * `--replay STRING` runs exactly that execution again.
 */
#ifndef MC_H
#define MC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_atomic.h"

#define MC_MAX_THREADS 4

/*
 * The fields every configuration sets, for the harnesses' *_TEST macros:
 * each adds its own setup, thread, check, hooks and configuration.
 */
#define MC_TEST_COMMON(nm, desc, nt, b, d, r)                                  \
	.name = (nm), .what = (desc), .nthreads = (nt), .bound = (b),          \
	.depth = (d), .runs = (r)

struct mc_test {
	const char *name;
	const char *what; /* one line, for --list */
	unsigned nthreads;
	void (*setup)(void);          /* fresh state; no scheduling */
	void (*thread)(unsigned tid); /* body of thread tid */
	void (*check)(void);          /* after every thread ended */
	/*
	 * Optional: before every atomic operation (a monitor), in the state
	 * in which it happens: after the scheduling decision that let the
	 * thread go on, so a thread that resumes is checked against what the
	 * others did while it was paused.
	 */
	void (*step)(const volatile void *addr, enum lf_atomic_op op);
	/*
	 * Optional: the width in bytes of a location whose relaxed and
	 * release stores go into the writer's store buffer (mc.c, "Store
	 * buffers"), 0 for the others.
	 */
	unsigned (*buffered)(const volatile void *addr);
	/*
	 * Optional: the width in bytes of a location whose plain loads may
	 * return its value before the last write by another thread (mc.c,
	 * "Stale loads"), 0 for the others.
	 */
	unsigned (*stale)(const volatile void *addr);
	/*
	 * Optional: true if this operation of the running thread commutes
	 * with everything the other threads can do before its next
	 * scheduling point (a location only it uses, or one guarded by a
	 * lock it holds); then it is not a scheduling point. A reduction
	 * that loses no behaviour if the claim holds: see README.md.
	 */
	bool (*local)(const volatile void *addr, enum lf_atomic_op op);
	/*
	 * Optional: after the searches of a run (not a replay), print what
	 * their executions covered and reset the tally; false if something
	 * the configuration must exercise never happened (the harness has
	 * drifted).
	 */
	bool (*report)(void);
	/* Optional, for --trace: name the location at addr into buf. */
	void (*where)(const volatile void *addr, char *buf, size_t n);
	const void *cfg; /* harness configuration */
	/* Defaults for ctest: DFS bound, PCT depth and runs. */
	unsigned bound, depth, runs;
};

enum mc_mode { MC_DFS, MC_PCT, MC_REPLAY };

struct mc_opts {
	enum mc_mode mode;
	unsigned bound;     /* DFS: preemptions */
	unsigned depth;     /* PCT: bug depth d */
	uint64_t runs;      /* PCT: executions; DFS: give up after this many */
	uint64_t seed;      /* PCT */
	uint64_t max_steps; /* per execution */
	const char *replay; /* MC_REPLAY */
	bool quiet;         /* no failure report on stdout (self-tests) */
	bool trace;         /* print every scheduling point (replay) */
};

struct mc_result {
	uint64_t executions;
	uint64_t steps;       /* scheduling points, all executions */
	uint64_t max_steps;   /* the most in one execution */
	uint64_t max_choices; /* decisions with a choice, most in one */
	bool exhaustive;      /* DFS: the bounded search completed */
	bool failed;
	char msg[512];  /* the first failure */
	char *schedule; /* its schedule (malloc'd), or NULL */
};

/* Explore t; fills *r; returns true if no execution failed. */
bool mc_explore(const struct mc_test *t, const struct mc_opts *o,
		struct mc_result *r);
void mc_result_free(struct mc_result *r);

/* From setup, a thread, check or step: this execution fails. No return. */
_Noreturn void mc_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
#define MC_ASSERT(c)                                                           \
	do {                                                                   \
		if (!(c))                                                      \
			mc_fail("%s:%d: %s", __FILE__, __LINE__, #c);          \
	} while (0)

/* With --trace: print a line about the execution (harness events). */
void mc_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The running thread (0 outside a thread). */
unsigned mc_self(void);
/* The configuration of the test being explored. */
const void *mc_cfg(void);
/* A counter that orders the events of one execution (histories). */
uint64_t mc_tick(void);

/*
 * Coverage of a harness: events (one letter each) counted over the
 * executions of a search, so a test can demand that its configuration
 * really exercises what it is for (a split, a drain, a restart).
 */
struct mc_cover {
	const char *codes;        /* one letter per event */
	const char *const *names; /* the event's name, by position */
	uint64_t hits[16];        /* executions in which it happened */
	uint64_t execs;
};
/* Count one execution and the events in `happened` (letters of codes). */
void mc_cover_add(struct mc_cover *c, const char *happened);
/* Print the tally, check that each event of `need` happened, reset. */
bool mc_cover_report(struct mc_cover *c, const char *need);

#endif /* MC_H */
