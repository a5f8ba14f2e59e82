/*
 * test_vas_fault.c: the node source failing at every point of a workload.
 *
 * The workload is a fixed sequence (one seed) of a few hundred writes on
 * 3-key nodes: allocations with both policies, alloc_at, frees of whole
 * allocations, heads, tails and middles, some bad input; it grows to
 * about 150 ranges, then shrinks, so nodes are split, merged, freed and
 * reused. Run k fails the k-th get() of the source (counting from the
 * start of the workload), for every k from 1 until a run in which no
 * get() failed. In each run:
 *
 *  - the call during which get() failed, and only it, returns VAS_ENOMEM
 *    (a failed node allocation is never hidden, nor invented);
 *  - after it the vas is exactly as before: the range list, the figures
 *    and vas_check (vt_model.h: model_nomem);
 *  - the workload goes on: the reference model skips the refused
 *    operation, and the vas must agree with it after every later call
 *    (return codes, addresses, lookups; the whole list, rejected[] and
 *    vas_check after each of the 8 calls that follow, then every 8);
 *  - at the end everything is freed and vas_destroy gives every node back.
 *
 * Done for high-water marks 0 and 2 (nodes back to the source at once, or
 * kept for reuse).
 *
 * With --caching, the same with per-context caching on (vas_set_caching):
 * the returns of held ranges (drains before a failing allocation, over the
 * span of alloc_at, replace, unmap and a map's hint, and when caching goes
 * off at the end) get their nodes too, and a failure there is one more
 * VAS_ENOMEM that must change nothing readers see.
 *
 * Usage: test_vas_fault [--ops N] [--k K] [--trace] [--caching]
 *        (K: one run only)
 */
#include "vt_model.h"

#define WORKLOAD_OPS 400

/* One run of the workload; returns how many get() calls failed. */
static unsigned long fault_run(struct model *m, uint64_t seed, uint64_t ops,
			       uint64_t k, unsigned long *gets)
{
	model_init(m, seed, true, k);
	uint64_t last_nomem = UINT64_MAX;
	for (m->op = 0; m->op < ops; m->op++) {
		unsigned long nomem = m->nomem;
		m->target = m->op < ops / 2 ? 150 : 4;
		model_step(m);
		if (m->nomem != nomem)
			last_nomem = m->op; /* model_nomem() verified it */
		/* The whole state: often, and after each op near a fault. */
		if (m->op % 8 == 7 || m->op - last_nomem <= 8)
			model_verify(m);
	}
	unsigned long failed = atomic_load(&m->src.failed);
	*gets = atomic_load(&m->src.gets);
	MREQ(m, m->nomem == failed,
	     "%lu ENOMEM answers for %lu failed node allocations", m->nomem,
	     failed);
	model_finish(m);
	return failed;
}

int main(int argc, char **argv)
{
	/*
	 * The options of model_vas.c (--trace and the rest): each test
	 * program parses its own.
	 */
	uint64_t ops = WORKLOAD_OPS, one = 0;
	bool trace = false, caching = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--trace"))
			trace = true;
		else if (!strcmp(argv[i], "--caching"))
			caching = true;
		else if (i + 1 >= argc)
			break;
		else if (!strcmp(argv[i], "--ops"))
			ops = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--k"))
			one = strtoull(argv[++i], NULL, 0);
	}
	struct model *m = calloc(1, sizeof(*m));
	CHECK_FATAL(m);
	/* Seed 1: high-water 2; seed 2: high-water 0 (see model_init). */
	for (uint64_t seed = 1; seed <= 2; seed++) {
		unsigned long gets = 0, runs = 0, nomem = 0;
		m->trace = trace;
		m->caching = caching;
		fault_run(m, seed, ops, 0, &gets);
		unsigned long clean_gets = gets;
		for (uint64_t k = one ? one : 1; k < 1000000; k++) {
			m->trace = trace;
			m->caching = caching;
			unsigned long failed;
			failed = fault_run(m, seed, ops, k, &gets);
			runs++;
			nomem += failed;
			if (failed == 0) {
				/* Past the last get() of the clean run. */
				CHECK_EQ(k, clean_gets + 1);
				break;
			}
			CHECK_EQ(failed, 1);
			if (one)
				break;
		}
		printf("test_vas_fault: seed %" PRIu64 ": %lu node gets in the "
		       "clean run, %lu runs, %lu ENOMEM answers checked\n",
		       seed, clean_gets, runs, nomem);
	}
	free(m);
	return check_exit("test_vas_fault");
}
