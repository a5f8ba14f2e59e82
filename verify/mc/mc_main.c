/*
 * mc_main.c: the model checker's command line.
 *
 *   mc_run --list
 *   mc_run --registered NAME...   (every test is one of NAME..., and back)
 *   mc_run TEST [--dfs BOUND] [--pct DEPTH] [--runs N] [--seed S]
 *               [--max-execs N] [--max-steps N] [--long] [--expect-fail]
 *   mc_run TEST --replay SCHEDULE [--trace]
 *
 * With neither --dfs nor --pct, a test runs its defaults: DFS at its
 * preemption bound, then PCT at its depth for its number of runs. --long
 * raises the bound by one and multiplies the PCT runs by 20 (make
 * verify-long). Each search prints one line: executions explored, whether
 * the bounded search was exhaustive, the longest execution, the time.
 *
 * --trace, with --replay, prints every scheduling point (thread, operation,
 * location) and the harness's calls and returns.
 *
 * --expect-fail is for the self-tests (broken algorithms the checker must
 * catch): the search must fail, and replaying the schedule it printed must
 * fail again with the same message.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mc.h"
#include "mc_tests.h"

#ifdef MC_UNITS
/* mc_run_units: the buddy sources built over units (BUDDY_CORE_SHIFT 5). */
static const struct mc_test *const *mc_tables[] = { mc_tests_buddy_units };
#else
static const struct mc_test *const *mc_tables[] = {
	mc_tests_self,        mc_tests_stack, mc_tests_vlock,
	mc_tests_epoch,       mc_tests_buddy, mc_tests_buddy_unit,
	mc_tests_buddy_lower, mc_tests_vas,   mc_tests_kmem,
};
#endif

/* The program's name for replay lines (mc_run, or mc_run_units). */
static const char *mc_prog = "mc_run";

static const struct mc_test *mc_find(const char *name)
{
	for (size_t i = 0; i < sizeof(mc_tables) / sizeof(mc_tables[0]); i++)
		for (const struct mc_test *const *t = mc_tables[i]; *t; t++)
			if (strcmp((*t)->name, name) == 0)
				return *t;
	return NULL;
}

static void mc_list(void)
{
	for (size_t i = 0; i < sizeof(mc_tables) / sizeof(mc_tables[0]); i++)
		for (const struct mc_test *const *t = mc_tables[i]; *t; t++)
			printf("%-22s %u threads, dfs %u, pct %u x %u: %s\n",
			       (*t)->name, (*t)->nthreads, (*t)->bound,
			       (*t)->depth, (*t)->runs, (*t)->what);
}

/* Every test of the tables is among names[] and vice versa (ctest). */
static int mc_registered(int n, char **names)
{
	int bad = 0;
	for (int i = 0; i < n; i++)
		if (mc_find(names[i]) == NULL) {
			printf("registered, but no such test: %s\n", names[i]);
			bad = 1;
		}
	for (size_t i = 0; i < sizeof(mc_tables) / sizeof(mc_tables[0]); i++)
		for (const struct mc_test *const *t = mc_tables[i]; *t; t++) {
			int k = 0;
			while (k < n && strcmp(names[k], (*t)->name) != 0)
				k++;
			if (k == n) {
				printf("not registered with ctest: %s\n",
				       (*t)->name);
				bad = 1;
			}
		}
	return bad;
}

static double mc_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void mc_describe(const struct mc_opts *o, char *buf, size_t n)
{
	if (o->mode == MC_DFS)
		snprintf(buf, n, "dfs bound %u", o->bound);
	else if (o->mode == MC_PCT)
		snprintf(buf, n, "pct depth %u seed %" PRIu64, o->depth,
			 o->seed);
	else
		snprintf(buf, n, "replay");
}

/* One search; prints its line; returns the result (caller frees). */
static bool mc_search(const struct mc_test *t, const struct mc_opts *o,
		      struct mc_result *r)
{
	char how[64];
	mc_describe(o, how, sizeof(how));
	double t0 = mc_now();
	mc_explore(t, o, r);
	double dt = mc_now() - t0;
	printf("%s: %s: %" PRIu64 " executions, exhaustive %s, "
	       "%" PRIu64 " steps max, %" PRIu64 " choices max, %.2f s%s\n",
	       t->name, how, r->executions,
	       o->mode == MC_DFS ? (r->exhaustive ? "yes" : "no") : "n/a",
	       r->max_steps, r->max_choices, dt, r->failed ? ": FAILED" : "");
	if (r->failed && !o->quiet) {
		printf("  failure: %s\n", r->msg);
		if (r->schedule)
			printf("  replay: %s %s --replay %s\n", mc_prog,
			       t->name, r->schedule);
	}
	fflush(stdout);
	return !r->failed;
}

/* A self-test: the search must fail, and its schedule must replay. */
static int mc_expect_fail(const struct mc_test *t, struct mc_opts *o)
{
	struct mc_result r, rr;
	o->quiet = true;
	if (mc_search(t, o, &r)) {
		printf("%s: the checker missed a known bug\n", t->name);
		return 1;
	}
	printf("  found: %s\n  schedule: %s\n", r.msg,
	       r.schedule ? r.schedule : "-");
	struct mc_opts ro = *o;
	ro.mode = MC_REPLAY;
	ro.replay = r.schedule ? r.schedule : "";
	mc_search(t, &ro, &rr);
	int bad = !rr.failed || strcmp(rr.msg, r.msg) != 0;
	printf("  replay %s\n", bad ? "DID NOT reproduce it" : "reproduces it");
	if (bad)
		printf("  replay said: %s\n", rr.failed ? rr.msg : "(passed)");
	mc_result_free(&r);
	mc_result_free(&rr);
	return bad;
}

static int mc_usage(void)
{
	fprintf(stderr,
		"usage: mc_run --list\n"
		"       mc_run TEST [--dfs BOUND] [--pct DEPTH] [--runs N] "
		"[--seed S]\n"
		"              [--max-execs N] [--max-steps N] [--long] "
		"[--expect-fail]\n"
		"       mc_run TEST --replay SCHEDULE [--trace]\n");
	return 2;
}

/* The command line of one test. */
struct mc_args {
	struct mc_opts o;
	bool dfs, pct, lng, expect;
	uint64_t max_execs;
	const char *replay;
};

/* An option with a value: set it; false if a is no such option. */
static bool mc_parse_value(struct mc_args *m, const char *a, const char *v)
{
	if (strcmp(a, "--dfs") == 0) {
		m->dfs = true;
		m->o.bound = (unsigned)strtoul(v, NULL, 0);
	} else if (strcmp(a, "--pct") == 0) {
		m->pct = true;
		m->o.depth = (unsigned)strtoul(v, NULL, 0);
	} else if (strcmp(a, "--runs") == 0) {
		m->o.runs = strtoull(v, NULL, 0);
	} else if (strcmp(a, "--seed") == 0) {
		m->o.seed = strtoull(v, NULL, 0);
	} else if (strcmp(a, "--max-execs") == 0) {
		m->max_execs = strtoull(v, NULL, 0);
	} else if (strcmp(a, "--max-steps") == 0) {
		m->o.max_steps = strtoull(v, NULL, 0);
	} else if (strcmp(a, "--replay") == 0) {
		m->replay = v;
	} else {
		return false;
	}
	return true;
}

/* Parse argv[2..]; false on a usage error. */
static bool mc_parse(int argc, char **argv, const struct mc_test *t,
		     struct mc_args *m)
{
	*m = (struct mc_args){ .o = { .bound = t->bound,
				      .depth = t->depth,
				      .runs = t->runs,
				      .seed = 1,
				      .max_steps = 200000 },
			       .max_execs = 5000000 };
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--long") == 0)
			m->lng = true;
		else if (strcmp(a, "--expect-fail") == 0)
			m->expect = true;
		else if (strcmp(a, "--trace") == 0)
			m->o.trace = true;
		else if (i + 1 == argc || !mc_parse_value(m, a, argv[++i]))
			return false;
	}
	if (!m->dfs && !m->pct)
		m->dfs = m->pct = true;
	if (m->lng) {
		m->o.bound++;
		m->o.runs *= 20;
	}
	return true;
}

/* One search in this mode (no trace); 1 if it went wrong. */
static int mc_run_mode(const struct mc_test *t, const struct mc_args *m,
		       enum mc_mode mode)
{
	struct mc_opts o = m->o;
	o.mode = mode;
	o.trace = false;
	if (mode == MC_DFS)
		o.runs = m->max_execs;
	if (m->expect)
		return mc_expect_fail(t, &o);
	struct mc_result r;
	int bad = !mc_search(t, &o, &r);
	mc_result_free(&r);
	return bad;
}

static int mc_replay(const struct mc_test *t, const struct mc_args *m)
{
	struct mc_opts o = m->o;
	o.mode = MC_REPLAY;
	o.replay = m->replay;
	struct mc_result r;
	bool ok = mc_search(t, &o, &r);
	mc_result_free(&r);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc > 0 && argv[0] != NULL) {
		const char *slash = strrchr(argv[0], '/');
		mc_prog = slash != NULL ? slash + 1 : argv[0];
	}
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		mc_list();
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--registered") == 0)
		return mc_registered(argc - 2, argv + 2);
	if (argc < 2)
		return mc_usage();
	const struct mc_test *t = mc_find(argv[1]);
	if (t == NULL) {
		fprintf(stderr, "mc_run: no test %s (see --list)\n", argv[1]);
		return 2;
	}
	struct mc_args m;
	if (!mc_parse(argc, argv, t, &m))
		return mc_usage();
	if (m.replay)
		return mc_replay(t, &m);
	int bad = 0;
	if (m.dfs)
		bad |= mc_run_mode(t, &m, MC_DFS);
	if (m.pct && m.o.runs > 0 && m.o.depth > 0)
		bad |= mc_run_mode(t, &m, MC_PCT);
	/* What the executions of both searches covered. */
	if (!bad && !m.expect && t->report && !t->report())
		bad = 1;
	return bad;
}
