/*
 * main.c: the outside project of examples/consumer: links lfalloc's buddy
 * and vaspace libraries through whichever way it was built, allocates and
 * frees once with each, and exits 0 only if both worked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buddy.h"
#include "vas.h"

static void *node_get(void *arg)
{
	(void)arg;
	return aligned_alloc(4096, VAS_NODE_SIZE);
}

static void node_put(void *arg, void *node)
{
	(void)arg;
	free(node);
}

/* A shadowed name: fine here, an error if lfalloc's -Wshadow leaked in. */
static int shadowed(int x)
{
	int y = x;
	{
		int x = y + 1;
		return x;
	}
}

int main(void)
{
	struct buddy_region rg = { 1u << 20, 8u << 20 };
	size_t need = buddy_meta_size(&rg, 1, 1);
	void *meta = aligned_alloc(64, (need + 63) & ~(size_t)63);
	struct buddy_zone *z;
	uint64_t pa;
	if (buddy_zone_init(&z, meta, need, &rg, 1, 1) != BUDDY_OK ||
	    buddy_alloc(buddy_zone_cpu(z, 0), 3, &pa) != BUDDY_OK ||
	    buddy_free(buddy_zone_cpu(z, 0), pa, 3) != BUDDY_OK) {
		fprintf(stderr, "consumer: buddy failed\n");
		return 1;
	}

	const struct vas_node_source src = { node_get, node_put, NULL };
	struct vas *v = aligned_alloc(64, (sizeof(*v) + 63) & ~(size_t)63);
	struct vas_ctx *c = aligned_alloc(64, (sizeof(*c) + 63) & ~(size_t)63);
	memset(c, 0, sizeof(*c));
	uint64_t va;
	if (vas_create(v, 1ull << 40, 1ull << 30, 4096, &src, 0, 4) != VAS_OK ||
	    vas_ctx_register(v, c) != VAS_OK ||
	    vas_alloc(c, 8192, 0, VAS_FIRST_FIT, 1, &va) != VAS_OK ||
	    vas_free(c, va, 8192) != VAS_OK ||
	    vas_ctx_unregister(c) != VAS_OK || vas_destroy(v) != VAS_OK) {
		fprintf(stderr, "consumer: vas failed\n");
		return 1;
	}
	printf("consumer: buddy block at %#llx, vas range at %#llx: ok (%d)\n",
	       (unsigned long long)pa, (unsigned long long)va, shadowed(0));
	free(c);
	free(v);
	free(meta);
	return 0;
}
