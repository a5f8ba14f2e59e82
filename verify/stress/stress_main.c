/*
 * stress_main.c: run one workload of workload.h and fail on any violation.
 *   stress_main WORKLOAD THREADS MILLISECONDS [SIZE] [SEED]
 * ctest registers it once per workload (verify/CMakeLists.txt); the same
 * binary runs under the default, tsan and asan presets.
 */
#include "workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr,
			"usage: %s stack|epoch|vlock THREADS MS "
			"[SIZE] [SEED]\n",
			argv[0]);
		return 2;
	}
	struct wl_config cfg = {
		.threads = (unsigned)atoi(argv[2]),
		.ms = (unsigned)atoi(argv[3]),
		.size = argc > 4 ? (unsigned)atoi(argv[4]) : 0,
		.seed = argc > 5 ? strtoull(argv[5], NULL, 0) : 1,
	};
	static struct wl_result res;
	int rc;
	if (strcmp(argv[1], "stack") == 0)
		rc = wl_stack_run(&cfg, &res);
	else if (strcmp(argv[1], "epoch") == 0)
		rc = wl_epoch_run(&cfg, &res);
	else if (strcmp(argv[1], "vlock") == 0)
		rc = wl_vlock_run(&cfg, &res);
	else {
		fprintf(stderr, "unknown workload '%s'\n", argv[1]);
		return 2;
	}
	wl_report(argv[1], &cfg, &res);
	/* A run that did nothing proves nothing. */
	for (unsigned i = 0; i < cfg.threads; i++) {
		if (res.ops[i] == 0) {
			fprintf(stderr, "thread %u did no operation\n", i);
			rc = 1;
		}
	}
	printf("%s: %s\n", argv[1], rc == 0 ? "PASS" : "FAIL");
	return rc;
}
