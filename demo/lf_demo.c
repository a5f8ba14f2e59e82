/*
 * lf_demo.c: `make demo`. Runs the lockfree core's
 * three workloads (verify/stress/workload.h) on every online CPU, one after
 * another, prints what each did, and exits non-zero if any property failed.
 *   lf_demo [--seconds S] [--threads N] [--seed X]
 */
#include "workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [--seconds S] [--threads N] [--seed X]\n",
		argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct wl_config cfg = { .threads = cpus > 0 ? (unsigned)cpus : 1,
				 .ms = 3000,
				 .seed = 1 };
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage(argv[0]);
		if (strcmp(argv[i], "--seconds") == 0)
			cfg.ms = (unsigned)(atof(argv[++i]) * 1000);
		else if (strcmp(argv[i], "--threads") == 0)
			cfg.threads = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--seed") == 0)
			cfg.seed = strtoull(argv[++i], NULL, 0);
		else
			usage(argv[0]);
	}
	if (cfg.threads == 0 || cfg.threads > WL_MAX_THREADS || cfg.ms == 0)
		usage(argv[0]);
	unsigned each = cfg.ms / 3 ? cfg.ms / 3 : 1;
	printf("lfalloc demo: the lockfree core on %u threads (%ld CPUs "
	       "online), %u ms per workload\n\n",
	       cfg.threads, cpus, each);

	static const struct {
		const char *name;
		int (*run)(const struct wl_config *, struct wl_result *);
		unsigned size;
		const char *what;
	} wl[] = {
		{ "stack", wl_stack_run, 64,
		  "tagged stack: pops claim elements by CAS; none handed out "
		  "twice, all back at the end" },
		{ "epoch", wl_epoch_run, 256,
		  "epoch reclamation: readers never reach a reclaimed object; "
		  "every retired object reclaimed once" },
		{ "vlock", wl_vlock_run, 0,
		  "version lock: optimistic readers never validate a torn "
		  "pair" },
	};
	int failed = 0;
	for (size_t i = 0; i < sizeof(wl) / sizeof(wl[0]); i++) {
		struct wl_config c = cfg;
		static struct wl_result res;
		c.ms = each;
		c.size = wl[i].size;
		printf("%s\n", wl[i].what);
		int rc = wl[i].run(&c, &res);
		wl_report(wl[i].name, &c, &res);
		printf("       => %s\n\n", rc == 0 ? "PASS" : "FAIL");
		failed += rc != 0;
	}
	printf("lfalloc demo: %s\n", failed ? "FAILED" : "all checks passed");
	return failed ? 1 : 0;
}
