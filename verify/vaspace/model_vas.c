/*
 * model_vas.c: the vas (vas.h) against a reference model (vt_ref.h: a
 * sorted array of ranges with the placement and error rules written out
 * the obvious way), over random operation sequences from many seeds.
 *
 * Operations: vas_map with every placement (bottom-up, top-down, best
 * fit, a window, a hint, bad flags, attributes and windows), replace and
 * unmap over random spans (ranges and holes mixed, the removed pieces
 * compared), protect inside one allocation or over several (holes:
 * ENOTALLOC; equal neighbours merged), find/next/prev; allocations with
 * both policies, random sizes (up to more
 * than the region) and alignments (below, at and far above the quantum);
 * alloc_at inside free ranges, over allocated ones and anywhere; frees of
 * the whole, head, tail or middle of live allocations; bad input of each
 * class, one thing wrong at a time (free of free space, across two ranges,
 * past the region, misaligned, size 0, bad alignment, bad policy, NULL);
 * lookups; iterations over random intervals with early stops. The number
 * of ranges drifts up and down (a target redrawn every 1500 operations,
 * mostly below 150, up to 1000), so the trees grow, split, shrink, merge
 * and reuse nodes.
 *
 * After every operation the return code, the address chosen and lookups
 * around what it touched must agree with the reference; every 64
 * operations the whole range list (vas_iterate over the region), the
 * figures of vas_stats (rejected[] by code included) and vas_check.
 *
 * The seed picks the node capacity (3, 4, 7, 16 or the largest), the
 * high-water mark (0, 2, 16) and the region: an odd base with large
 * alignments, a tight region at address 0 (ENOSPC often), one just below
 * 2^64 (aligned addresses past it must not wrap), a 57-bit user space of
 * 2^45 pages (size keys in classes past 2^18 quanta), and 2^20 big quanta.
 *
 * With --caching, the vas has per-context caching on (vas_set_caching,
 * docs/design.md 3.3): small allocations come from the context's cached
 * and reserved ranges and every placement is made outside them, so the
 * addresses chosen may differ from the reference's; each must be aligned,
 * in its window and free in the reference (a free hint taken), and the
 * reference is given it. Everything else is compared as without (range
 * lists with free neighbours merged, statistics but the free range count
 * and the largest, which only the caches make differ); at the end caching
 * goes off (every held range returned) and the vas must be one free range.
 *
 * Usage: model_vas [--seeds N] [--ops N] [--seed S] [--trace] [--caching]
 *        (--seed S: replay seed S alone; --trace: print every call)
 */
#include "vt_model.h"

#define VERIFY_EVERY 64
#define TARGET_EVERY 1500

static unsigned long totals[8], calls[8], total_nodes_max;

static void model_run(struct model *m, uint64_t seed, uint64_t ops)
{
	model_init(m, seed, false, 0);
	model_verify(m);
	for (m->op = 0; m->op < ops; m->op++) {
		if (m->op % TARGET_EVERY == 0) { /* mostly small, some big */
			uint64_t most = mrnd_below(m, 4) ? 150 : 1000;
			m->target = 1 + (unsigned)mrnd_below(m, most);
		}
		model_step(m);
		if (m->op % VERIFY_EVERY == VERIFY_EVERY - 1)
			model_verify(m);
	}
	struct vas_stats st;
	vas_stats(m->v, &st);
	CHECK_EQ(st.restarts, 0); /* one thread: nothing to restart for */
	if (m->caching)
		totals[6] += st.local; /* leaf-local writes: some, all seeds */
	if (st.nodes > total_nodes_max)
		total_nodes_max = st.nodes;
	for (int i = 0; i < 8; i++)
		calls[i] += m->calls[i];
	totals[3] += vt_err(&st, VAS_ENOSPC);
	totals[4] += vt_err(&st, VAS_EBUSY);
	totals[5] += st.nodes_retired;
	model_finish(m);
}

int main(int argc, char **argv)
{
	struct check_seeds a = check_seed_args(argc, argv, 60, 20000);
	bool trace = false, caching = false;
	for (int i = 1; i < argc; i++) {
		trace |= !strcmp(argv[i], "--trace");
		caching |= !strcmp(argv[i], "--caching");
	}
	struct model *m = calloc(1, sizeof(*m));
	CHECK_FATAL(m);
	for (uint64_t s = a.first; s <= a.last; s++) {
		m->trace = trace;
		m->caching = caching;
		model_run(m, s, a.ops);
	}
	free(m);
	CHECK(!caching || totals[6] > 0);
	printf("model_vas: %" PRIu64 " seeds x %" PRIu64 " operations: %lu "
	       "allocs, %lu alloc_ats, %lu frees, %lu maps, %lu replaces, "
	       "%lu unmaps, %lu protects; %lu ENOSPC, %lu EBUSY; "
	       "up to %lu nodes, %lu retired, %lu leaf-local\n",
	       a.last - a.first + 1, a.ops, calls[0], calls[1], calls[2],
	       calls[3], calls[4], calls[5], calls[6], totals[3], totals[4],
	       total_nodes_max, totals[5], totals[6]);
	return check_exit("model_vas");
}
