/*
 * coh_main.c: bench_coherence, the coherence accounting mode of the
 * benchmarks (README.md in this folder; bench/README.md).
 *
 * It runs the benchmarks' own implementations (the struct bench_impl lists
 * of bench_buddy.c, bench_vas.c, bench_lockfree.c and bench_kmem.c,
 * compiled in through coh_w_*.c) on 1, 2, 4, ... 64 logical CPUs interleaved at
 * every shared-memory access (coh_sched.h), feeds every access to a simulated
 * coherence directory (coh_dir.h), and reports per operation: coherence
 * misses (line transfers between caches, and upgrades), invalidations,
 * atomic read-modify-writes on a line another CPU touched last, heavy
 * barriers, an estimate of the time the misses cost at a per-line latency
 * given with --line-ns (bench_pingpong measures it), and the simulated time
 * per operation of the scheduler's timing model (coh_sched.h: hits cost
 * --hit-ns, misses --line-ns, the earliest CPU goes next).
 *
 * Each point runs as the harness runs it (setup, thread_init per CPU, run,
 * thread_fini per CPU, check), so the benchmark's own check verifies the
 * allocator after the run; a failed check, a failed setup, or a point that
 * did no operation makes the program exit 1.
 *
 * Usage: bench_coherence [--csv PATH] [--cpus LIST] [--budget-us US]
 *                        [--seed S] [--line-ns NS] [--hit-ns NS]
 *                        [--pause-ns NS] [--only LIST] [--quick]
 */
#include "coh_main.h"
#include "coh_sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COH_MAX_PROGS 4
#define COH_BUDGET_US 200.0 /* simulated time per CPU (a batch at least) */
#define COH_QUICK_BUDGET_US 20.0
#define COH_LINE_NS 80.0 /* bench_pingpong on the 2-vCPU EPYC: 78 ns */
/*
 * An access that hits: the 1-thread CPU time per operation of the timed
 * benchmarks over the accesses per operation counted here is 0.2 to 0.4 ns
 * for the buddy and the stack (the compiled code does a few instructions
 * per access, several per cycle).
 */
#define COH_HIT_NS 0.3
/* PAUSE: about 65 cycles on AMD Zen 2/3 (140 on Intel Skylake and later). */
#define COH_PAUSE_NS 25.0

static const struct bench_prog *coh_progs[COH_MAX_PROGS];
static unsigned coh_nprogs;

int coh_register(const struct bench_prog *prog, int argc, char **argv)
{
	(void)argc, (void)argv;
	if (coh_nprogs < COH_MAX_PROGS)
		coh_progs[coh_nprogs++] = prog;
	return 0;
}

struct coh_opts {
	const char *csv;
	unsigned cpus[COH_MAX_CPUS];
	unsigned ncpus;
	struct coh_timing t;
	const char *only; /* comma-separated prog, bench or bench/impl */
};

static void coh_usage(void)
{
	fprintf(stderr,
		"usage: bench_coherence [--csv PATH] [--cpus 1,2,4,...] "
		"[--budget-us US] [--seed S]\n"
		"                       [--line-ns NS] [--hit-ns NS] "
		"[--pause-ns NS] [--only LIST] [--quick]\n"
		"  --only: comma-separated programs (buddy, vas, lockfree, "
		"kmem), benches (repeat)\n"
		"          or bench/impl (repeat/lf_buddy)\n");
	exit(2);
}

static void coh_parse_cpus(struct coh_opts *o, const char *s)
{
	char *end;

	o->ncpus = 0;
	while (*s != '\0') {
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || v == 0 || v > COH_MAX_CPUS ||
		    o->ncpus == COH_MAX_CPUS)
			coh_usage();
		o->cpus[o->ncpus++] = (unsigned)v;
		s = *end == ',' ? end + 1 : end;
		if (*end != ',' && *end != '\0')
			coh_usage();
	}
	if (o->ncpus == 0)
		coh_usage();
}

static void coh_parse(int argc, char **argv, struct coh_opts *o)
{
	bool quick = false, budget_set = false;

	memset(o, 0, sizeof(*o));
	coh_parse_cpus(o, "1,2,4,8,16,32,64");
	o->t.seed = 1;
	o->t.line_ns = COH_LINE_NS;
	o->t.hit_ns = COH_HIT_NS;
	o->t.pause_ns = COH_PAUSE_NS;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--quick") == 0) {
			quick = true;
			continue;
		}
		if (v == NULL)
			coh_usage();
		i++;
		if (strcmp(a, "--csv") == 0)
			o->csv = v;
		else if (strcmp(a, "--cpus") == 0)
			coh_parse_cpus(o, v);
		else if (strcmp(a, "--budget-us") == 0) {
			o->t.budget_ns = strtod(v, NULL) * 1e3;
			budget_set = true;
		} else if (strcmp(a, "--seed") == 0)
			o->t.seed = strtoull(v, NULL, 10);
		else if (strcmp(a, "--line-ns") == 0)
			o->t.line_ns = strtod(v, NULL);
		else if (strcmp(a, "--hit-ns") == 0)
			o->t.hit_ns = strtod(v, NULL);
		else if (strcmp(a, "--pause-ns") == 0)
			o->t.pause_ns = strtod(v, NULL);
		else if (strcmp(a, "--only") == 0)
			o->only = v;
		else
			coh_usage();
	}
	if (!budget_set)
		o->t.budget_ns =
			(quick ? COH_QUICK_BUDGET_US : COH_BUDGET_US) * 1e3;
	if (!(o->t.budget_ns > 0) || !(o->t.line_ns > 0) ||
	    !(o->t.hit_ns > 0) || !(o->t.pause_ns >= 0))
		coh_usage();
}

/* Is "name" one of the comma-separated items of list? */
static bool coh_listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p != '\0';) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len + (e ? 1 : 0);
	}
	return false;
}

static const char *coh_prog_short(const struct bench_prog *p)
{
	return strncmp(p->name, "bench_", 6) == 0 ? p->name + 6 : p->name;
}

static bool coh_selected(const struct coh_opts *o, const char *prog,
			 const struct bench_impl *im)
{
	char both[128];

	if (o->only == NULL)
		return true;
	snprintf(both, sizeof(both), "%s/%s", im->bench, im->impl);
	return coh_listed(o->only, prog) || coh_listed(o->only, im->bench) ||
	       coh_listed(o->only, both);
}

/*
 * Why an implementation cannot run in this mode (NULL: it can). liburcu
 * keeps each reader's state in thread-local storage, which the logical
 * CPUs, coroutines of one OS thread, would share; a wait inside a
 * library's own compiled code cannot be scheduled; and a library's
 * malloc is not instrumented.
 */
static const char *coh_unsupported(const struct bench_impl *im)
{
	/*
	 * bench_kmem's general-purpose allocators: glibc's malloc and the
	 * dlopen()ed jemalloc, mimalloc and tcmalloc run their own compiled
	 * code, so none of their accesses would be seen (the counts would
	 * be zero, not small), and their per-thread caches would be one
	 * cache shared by all the logical CPUs of the one OS thread.
	 */
	static const char *const general[] = { "glibc", "jemalloc", "mimalloc",
					       "tcmalloc" };

	for (size_t i = 0; i < sizeof(general) / sizeof(general[0]); i++)
		if (strcmp(im->impl, general[i]) == 0)
			return "a general-purpose malloc: not instrumented (no "
			       "access seen), its per-thread caches shared by "
			       "the logical CPUs";
	if (strncmp(im->impl, "urcu_", 5) == 0)
		return "liburcu's reader state is thread-local; the logical "
		       "CPUs share one thread";
	/*
	 * ck_epoch_synchronize() waits in libck's compiled code, which has
	 * none of the instrumentation: a logical CPU waiting there for
	 * another never gives the turn away, and the run never ends.
	 */
	if (strcmp(im->impl, "ck_synchronize") == 0)
		return "ck_epoch_synchronize waits inside libck, which is not "
		       "instrumented: a waiting logical CPU never yields";
	/*
	 * ck's retire is ck_epoch_call() (inline in ck_epoch.h: seen) and
	 * ck_epoch_poll(), which scans every record and moves the global
	 * epoch inside libck: none of that would be counted, so ck would
	 * look free of traffic where lf_epoch pays for its scans.
	 */
	if (strcmp(im->bench, "epoch_retire") == 0 &&
	    strncmp(im->impl, "ck_", 3) == 0)
		return "ck_epoch_poll scans the records inside libck, which is "
		       "not instrumented: its accesses would go uncounted";
	return NULL;
}

struct coh_row {
	uint64_t ops;
	struct coh_counts n;
	uint64_t hottest, heavy;
	double clock_ns; /* the CPUs' simulated time, summed */
};

static int coh_point(const struct bench_impl *im, unsigned n,
		     const struct coh_opts *o, struct coh_row *row)
{
	uint64_t ops[COH_MAX_CPUS];
	double clock[COH_MAX_CPUS];

	if (im->setup != NULL && im->setup(n) != 0)
		return -1;
	for (unsigned id = 0; id < n; id++) {
		coh_sched_set_cpu(id);
		if (im->thread_init != NULL)
			im->thread_init(id);
	}
	struct coh_timing t = o->t;

	t.seed += n;
	if (coh_sched_run(n, &t, im->run, ops, clock) != 0)
		return -1;
	row->ops = 0;
	row->clock_ns = 0;
	for (unsigned id = 0; id < n; id++) {
		row->ops += ops[id];
		row->clock_ns += clock[id];
	}
	row->n = coh_sched_dir.n;
	row->hottest = coh_dir_hottest(&coh_sched_dir);
	row->heavy = coh_sched_heavy;
	for (unsigned id = 0; id < n; id++) {
		coh_sched_set_cpu(id);
		if (im->thread_fini != NULL)
			im->thread_fini(id);
	}
	coh_sched_set_cpu(0);
	if (im->check != NULL && im->check() != 0)
		return -1;
	return 0;
}

static void coh_csv_header(FILE *f)
{
	fprintf(f, "prog,bench,impl,cpus,ops,accesses,reads,writes,rmws,cold,"
		   "transfers,upgrades,invalidations,rmw_remote,hottest,heavy,"
		   "accesses_per_op,transfers_per_op,upgrades_per_op,"
		   "misses_per_op,invalidations_per_op,rmw_per_op,"
		   "rmw_remote_per_op,heavy_per_op,est_ns_per_op,cap_mops,"
		   "sim_ns_per_op,line_ns,hit_ns,pause_ns,budget_us,seed\n");
}

static void coh_csv_row(FILE *f, const char *prog, const struct bench_impl *im,
			unsigned n, const struct coh_row *r,
			const struct coh_opts *o)
{
	double ops = (double)r->ops;
	double misses = (double)(r->n.transfers + r->n.upgrades);
	/* The busiest line's misses are serial: a bound on throughput. */
	double cap = r->hottest
			     ? ops * 1e3 / ((double)r->hottest * o->t.line_ns)
			     : -1;

	fprintf(f,
		"%s,%s,%s,%u,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,"
		"%llu,%llu,%llu,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.6f,%.3f,"
		"%.3f,%.3f,%.2f,%.3f,%.2f,%.1f,%llu\n",
		prog, im->bench, im->impl, n, (unsigned long long)r->ops,
		(unsigned long long)r->n.accesses,
		(unsigned long long)r->n.reads, (unsigned long long)r->n.writes,
		(unsigned long long)r->n.rmws, (unsigned long long)r->n.cold,
		(unsigned long long)r->n.transfers,
		(unsigned long long)r->n.upgrades,
		(unsigned long long)r->n.invalidations,
		(unsigned long long)r->n.rmw_remote,
		(unsigned long long)r->hottest, (unsigned long long)r->heavy,
		(double)r->n.accesses / ops, (double)r->n.transfers / ops,
		(double)r->n.upgrades / ops, misses / ops,
		(double)r->n.invalidations / ops, (double)r->n.rmws / ops,
		(double)r->n.rmw_remote / ops, (double)r->heavy / ops,
		misses / ops * o->t.line_ns, cap, r->clock_ns / ops,
		o->t.line_ns, o->t.hit_ns, o->t.pause_ns, o->t.budget_ns / 1e3,
		(unsigned long long)o->t.seed);
}

static void coh_print_row(const struct bench_impl *im, unsigned n,
			  const struct coh_row *r, const struct coh_opts *o)
{
	double ops = (double)r->ops;

	printf("%-11s %-17s %4u %9llu %9.1f %8.3f %8.3f %8.3f %8.3f %9.1f "
	       "%9.1f\n",
	       im->bench, im->impl, n, (unsigned long long)r->ops,
	       (double)r->n.accesses / ops, (double)r->n.transfers / ops,
	       (double)r->n.upgrades / ops, (double)r->n.invalidations / ops,
	       (double)r->n.rmw_remote / ops,
	       (double)(r->n.transfers + r->n.upgrades) / ops * o->t.line_ns,
	       r->clock_ns / ops);
	fflush(stdout);
}

/* Every selected point of one program; the failures. */
static unsigned coh_prog(const struct bench_prog *p, const struct coh_opts *o,
			 FILE *csv)
{
	const char *name = coh_prog_short(p);
	unsigned failed = 0;

	for (unsigned k = 0; k < p->nimpls; k++) {
		const struct bench_impl *im = p->impls[k];
		const char *why = coh_unsupported(im);

		if (!coh_selected(o, name, im))
			continue;
		if (why != NULL) {
			printf("%-11s %-17s skipped: %s\n", im->bench, im->impl,
			       why);
			continue;
		}
		for (unsigned c = 0; c < o->ncpus; c++) {
			unsigned n = o->cpus[c];
			struct coh_row r;
			int rc;

			why = im->skip != NULL ? im->skip(n) : NULL;
			if (why != NULL) {
				printf("%-11s %-17s %4u skipped: %s\n",
				       im->bench, im->impl, n, why);
				continue;
			}
			memset(&r, 0, sizeof(r));
			rc = coh_point(im, n, o, &r);
			if (rc != 0 || r.ops == 0) {
				fprintf(stderr,
					"bench_coherence: %s/%s at %u "
					"cpus: %s\n",
					im->bench, im->impl, n,
					rc != 0 ? "setup or check failed"
						: "no operation done");
				failed++;
				continue;
			}
			coh_print_row(im, n, &r, o);
			if (csv != NULL)
				coh_csv_row(csv, name, im, n, &r, o);
		}
	}
	return failed;
}

int main(int argc, char **argv)
{
	struct coh_opts o;
	FILE *csv = NULL;
	unsigned failed = 0;
	char *noargs[] = { argv[0], NULL };

	coh_parse(argc, argv, &o);
	coh_main_buddy(1, noargs);
#ifndef COH_BUDDY_ONLY /* bench_coherence_v3: bench_buddy_v3's program only */
	coh_main_vas(1, noargs);
	coh_main_lockfree(1, noargs);
	coh_main_kmem(1, noargs);
#endif
	if (!coh_dir_init(&coh_sched_dir)) {
		fprintf(stderr, "bench_coherence: out of memory\n");
		return 1;
	}
	if (o.csv != NULL) {
		csv = fopen(o.csv, "w");
		if (csv == NULL) {
			perror(o.csv);
			return 2;
		}
		coh_csv_header(csv);
	}
	printf("bench_coherence: logical CPUs interleaved at every access, "
	       "a MESI directory per 64-byte line\n");
	printf("%.0f us of simulated time per CPU, seed %llu; a miss %.1f ns, "
	       "a hit %.2f ns, a pause %.1f ns\n(est: misses x line latency; "
	       "sim: the simulated time per op, all CPUs)\n",
	       o.t.budget_ns / 1e3, (unsigned long long)o.t.seed, o.t.line_ns,
	       o.t.hit_ns, o.t.pause_ns);
	bench_print_load("start");
	printf("%-11s %-17s %4s %9s %9s %8s %8s %8s %8s %9s %9s\n", "bench",
	       "impl", "cpus", "ops", "acc/op", "xfer/op", "upgr/op",
	       "inval/op", "rrmw/op", "est ns/op", "sim ns/op");
	for (unsigned i = 0; i < coh_nprogs; i++)
		failed += coh_prog(coh_progs[i], &o, csv);
	for (unsigned i = 0; i < coh_nprogs; i++)
		if (coh_progs[i]->fini != NULL)
			coh_progs[i]->fini();
	bench_print_load("end");
	if (csv != NULL && fclose(csv) != 0) {
		perror(o.csv);
		failed++;
	}
	coh_dir_fini(&coh_sched_dir);
	if (failed != 0)
		fprintf(stderr, "bench_coherence: %u points FAILED\n", failed);
	return failed != 0;
}
