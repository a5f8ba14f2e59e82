/*
 * vas_example.c: setting up and using the virtual address range allocator
 * (vaspace/vas.h), as a kernel's vmalloc would.
 *
 *  1. A node source: where the tree's nodes (VAS_NODE_SIZE bytes, page
 *     aligned) come from and go back to; a kernel hands out buddy frames,
 *     here aligned_alloc(). A source may fail: the call then returns
 *     VAS_ENOMEM and the vas is exactly as before.
 *  2. The vas over a region, then one context per thread: each context is
 *     an epoch participant (lockfree/lf_epoch.h), so nodes the tree gives
 *     back are freed only after every lookup that could still read them.
 *  3. Allocation (first fit, best fit, at a fixed address), lookup (of one
 *     address or of several in one call; writes no shared tree memory,
 *     waits only for a write holding a node it needs), partial free,
 *     error handling.
 *
 * ctest runs it (examples/CMakeLists.txt, label example).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform_user.h"
#include "vas.h"

/* 1. The node source: page-aligned nodes, counted to show none leaks. */
static long live_nodes;

static void *node_get(void *arg)
{
	(void)arg;
	void *p = aligned_alloc(4096, VAS_NODE_SIZE);
	if (p != NULL)
		live_nodes++; /* the vas calls get and put under its writer lock
			       */
	return p;             /* NULL: the vas call fails with VAS_ENOMEM */
}

static void node_put(void *arg, void *node)
{
	(void)arg;
	live_nodes--;
	free(node);
}

static void expect(const char *what, int rc, int want)
{
	if (rc != want) {
		fprintf(stderr, "vas_example: %s: %s (expected %s)\n", what,
			vas_strerror(rc), vas_strerror(want));
		exit(1);
	}
}

int main(void)
{
	const uint64_t base = 0xffffc90000000000ull, size = 1ull << 32;
	const struct vas_node_source src = { node_get, node_put, NULL };

	/* 2. The vas (cache-line aligned: not plain malloc) and a context. */
	struct vas *v = aligned_alloc(64, (sizeof(*v) + 63) & ~(size_t)63);
	struct vas_ctx *c = aligned_alloc(64, (sizeof(*c) + 63) & ~(size_t)63);
	memset(c, 0, sizeof(*c)); /* a context is registered zero-filled */
	expect("vas_create", vas_create(v, base, size, 4096, &src, 0, 8),
	       VAS_OK);
	lf_platform_user_set_cpu(0);
	expect("vas_ctx_register", vas_ctx_register(v, c), VAS_OK);

	/* 3. Allocations: tags are the caller's (a kernel: its vm_struct). */
	uint64_t a, b, d;
	expect("first fit", vas_alloc(c, 64 << 10, 0, VAS_FIRST_FIT, 1, &a),
	       VAS_OK);
	expect("best fit, 2 MiB aligned",
	       vas_alloc(c, 4 << 20, 2 << 20, VAS_BEST_FIT, 2, &b), VAS_OK);
	d = base + (1ull << 31);
	expect("at a fixed address", vas_alloc_at(c, d, 1 << 20, 3), VAS_OK);

	/* Lookup: any address inside a range finds the range and its tag. */
	struct vas_range r;
	expect("lookup", vas_lookup(c, b + 12345, &r), VAS_OK);
	if (r.start != b || r.size != (4 << 20) || r.tag != 2) {
		fprintf(stderr, "vas_example: lookup found the wrong range\n");
		return 1;
	}
	expect("lookup of a free address", vas_lookup(c, d - 4096, &r),
	       VAS_ENOENT);

	/* Several addresses at once (a fault-around, a batch of PTEs): one
	 * call, the lookups overlapped; rc[i] as vas_lookup's for addr[i]. */
	uint64_t addrs[3] = { a, d - 4096, b + (1 << 20) };
	struct vas_range rs[3];
	int rcs[3];
	expect("lookup_n: found", vas_lookup_n(c, addrs, 3, rs, rcs), 2);
	if (rcs[0] != VAS_OK || rs[0].tag != 1 || rcs[1] != VAS_ENOENT ||
	    rcs[2] != VAS_OK || rs[2].start != b) {
		fprintf(stderr, "vas_example: lookup_n answered wrong\n");
		return 1;
	}

	/* Errors: each bad call has its own code and changes nothing. */
	expect("overlapping alloc_at", vas_alloc_at(c, d, 4096, 4), VAS_EBUSY);
	expect("unaligned free", vas_free(c, a + 1, 4096), VAS_EALIGN);
	expect("free outside", vas_free(c, base - 4096, 4096), VAS_ERANGE);
	expect("size 0", vas_alloc(c, 0, 0, VAS_FIRST_FIT, 5, &a), VAS_EINVAL);

	/* Partial free (as munmap): the middle goes, head and tail stay. */
	expect("free the middle", vas_free(c, d + 4096, 8192), VAS_OK);
	expect("head stays", vas_lookup(c, d, &r), VAS_OK);
	expect("free twice", vas_free(c, d + 4096, 4096), VAS_ENOTALLOC);

	struct vas_stats st;
	vas_stats(v, &st);
	printf("vas_example: %" PRIu64 " ranges allocated, %" PRIu64
	       " free; %" PRIu64 " tree nodes; %" PRIu64 " bad calls\n",
	       st.ranges, st.free_ranges, st.nodes,
	       st.rejected[-VAS_EBUSY] + st.rejected[-VAS_EALIGN] +
		       st.rejected[-VAS_ERANGE] + st.rejected[-VAS_EINVAL] +
		       st.rejected[-VAS_ENOTALLOC]);
	expect("check", vas_check(v, NULL), 0);

	/* Teardown: contexts first, then the vas gives every node back. */
	expect("vas_ctx_unregister", vas_ctx_unregister(c), VAS_OK);
	expect("vas_destroy", vas_destroy(v), VAS_OK);
	if (live_nodes != 0) {
		fprintf(stderr, "vas_example: %ld nodes leaked\n", live_nodes);
		return 1;
	}
	free(c);
	free(v);
	return 0;
}
